//! Which caller may do what, from the permissions Microsoft documents for data policy operations.
//!
//! - Exporting (`exportPersonalData`, and creating, changing or deleting an operation): `User.Export.All`,
//!   delegated or application. With delegated permission the signed-in user must also be a company
//!   administrator (Global Administrator). Microsoft's older pages also listed `User.Read.All`; the current
//!   page lists `User.Export.All` alone ("higher privileged: not available"), and dpo follows it.
//! - Reading operations (get, list, `$count`): `User.Export.All` or `User.Read.All`, delegated or
//!   application.
//! - Reading the audit trail (`/auditLogs/directoryAudits`): `AuditLog.Read.All`, as Graph documents it for
//!   directoryAudit. With delegated permission the signed-in user must also hold one of the directory
//!   roles Graph names for reading audit logs ([`AUDIT_READER_ROLES`]).
//! - Subject rights requests: `SubjectRightsRequest.Read.All` to read, list and download them and their
//!   notes, `SubjectRightsRequest.ReadWrite.All` to create, update, add notes and act. Delegated, for a
//!   user in a role that handles them ([`REQUEST_WRITER_ROLES`], [`REQUEST_READER_ROLES`]); and, a dpo edit
//!   (Graph offers these only delegated), as application permissions.

use super::{AuthError, Caller, Identity, USER_EXPORT_ALL, USER_READ_ALL};

/// The permission to read subject rights requests (list, get, notes, the report and the zip).
pub const REQUESTS_READ_ALL: &str = "SubjectRightsRequest.Read.All";
/// The permission to create and change subject rights requests (update, notes, actions).
pub const REQUESTS_READ_WRITE_ALL: &str = "SubjectRightsRequest.ReadWrite.All";

/// Role template ids (in `wids`) that may change subject rights requests with delegated permission:
/// Global Administrator, Compliance Administrator and Compliance Data Administrator (the directory roles
/// that hold Microsoft Purview's privacy management).
pub const REQUEST_WRITER_ROLES: [&str; 3] =
    [super::GLOBAL_ADMINISTRATOR, "17315797-102d-40b4-93e0-432062caca18", "e6d1a23a-da11-4be4-9570-befc86d067a7"];

/// Role template ids that may read subject rights requests with delegated permission: the writers', and
/// Global Reader.
pub const REQUEST_READER_ROLES: [&str; 4] = [
    super::GLOBAL_ADMINISTRATOR,
    "17315797-102d-40b4-93e0-432062caca18",
    "e6d1a23a-da11-4be4-9570-befc86d067a7",
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
];

/// The permission to read audit logs.
pub const AUDIT_LOG_READ_ALL: &str = "AuditLog.Read.All";

/// Role template ids (in `wids`) that may read audit logs with delegated permission: Global
/// Administrator, Global Reader, Security Administrator, Security Reader, Reports Reader.
pub const AUDIT_READER_ROLES: [&str; 5] = [
    super::GLOBAL_ADMINISTRATOR,
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
    "194ae4cb-b126-40b2-bd5b-6091b380977d",
    "5d6b6bb7-de71-4623-b4af-96380a352509",
    "4a5d8f65-41da-4de4-8968-e035b65339cf",
];

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read operations.
    Read,
    /// Start, change or remove exports.
    Export,
    /// Read the audit trail.
    ReadAudit,
    /// Read subject rights requests.
    ReadRequests,
    /// Create and change subject rights requests.
    WriteRequests,
}

/// Allows or refuses `action` to `caller`.
pub fn authorize(caller: &Caller, action: Action) -> Result<(), AuthError> {
    let accepted: &[&str] = match action {
        Action::Read => &[USER_EXPORT_ALL, USER_READ_ALL],
        Action::Export => &[USER_EXPORT_ALL],
        Action::ReadAudit => &[AUDIT_LOG_READ_ALL],
        Action::ReadRequests => &[REQUESTS_READ_ALL, REQUESTS_READ_WRITE_ALL],
        Action::WriteRequests => &[REQUESTS_READ_WRITE_ALL],
    };
    let (granted, kind) = match &caller.identity {
        Identity::User { scopes, .. } => (scopes, "delegated"),
        Identity::App { roles, .. } => (roles, "application"),
    };
    if !granted.iter().any(|g| accepted.contains(&g.as_str())) {
        return Err(AuthError::Forbidden(format!(
            "Insufficient privileges to complete the operation: it needs the {kind} permission {}",
            accepted.join(" or ")
        )));
    }
    if let (Action::ReadAudit, Identity::User { roles, .. }) = (action, &caller.identity)
        && !roles.iter().any(|r| AUDIT_READER_ROLES.contains(&r.as_str()))
    {
        return Err(AuthError::Forbidden(
            "Insufficient privileges to complete the operation: with delegated permissions, reading audit logs \
             also needs a directory role that may read them (Global Administrator, Global Reader, Security \
             Administrator, Security Reader or Reports Reader)"
                .into(),
        ));
    }
    let request_roles: Option<&[&str]> = match action {
        Action::ReadRequests => Some(&REQUEST_READER_ROLES),
        Action::WriteRequests => Some(&REQUEST_WRITER_ROLES),
        _ => None,
    };
    if let (Some(allowed), Identity::User { roles, .. }) = (request_roles, &caller.identity)
        && !roles.iter().any(|r| allowed.contains(&r.as_str()))
    {
        return Err(AuthError::Forbidden(
            "Insufficient privileges to complete the operation: with delegated permissions, subject rights \
             requests also need a directory role that may handle them (Global Administrator, Compliance \
             Administrator or Compliance Data Administrator; Global Reader may read them)"
                .into(),
        ));
    }
    if let (Action::Export, Identity::User { admin: false, .. }) = (action, &caller.identity) {
        return Err(AuthError::Forbidden(
            "Insufficient privileges to complete the operation: with delegated permissions, only a company \
             administrator can export users' data"
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(scopes: &[&str], admin: bool) -> Caller {
        Caller {
            tenant: "t".into(),
            identity: Identity::User {
                id: "u".into(),
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                admin,
                roles: if admin { vec![crate::auth::GLOBAL_ADMINISTRATOR.into()] } else { Vec::new() },
                app: None,
            },
        }
    }

    fn app(roles: &[&str]) -> Caller {
        Caller {
            tenant: "t".into(),
            identity: Identity::App { id: "a".into(), roles: roles.iter().map(|s| s.to_string()).collect() },
        }
    }

    #[test]
    fn the_documented_rules() {
        assert!(authorize(&user(&[USER_EXPORT_ALL], true), Action::Export).is_ok());
        assert!(authorize(&user(&[USER_EXPORT_ALL], false), Action::Export).is_err(), "delegated needs an admin");
        assert!(authorize(&user(&[USER_READ_ALL], true), Action::Export).is_err(), "User.Read.All cannot export");
        assert!(authorize(&user(&[USER_READ_ALL], false), Action::Read).is_ok());
        assert!(authorize(&app(&[USER_EXPORT_ALL]), Action::Export).is_ok());
        assert!(authorize(&app(&[USER_READ_ALL]), Action::Read).is_ok());
        assert!(authorize(&app(&[USER_READ_ALL]), Action::Export).is_err());
        assert!(authorize(&app(&[]), Action::Read).is_err());
        assert!(authorize(&user(&["Mail.Read"], true), Action::Read).is_err());
    }

    #[test]
    fn reading_the_audit_trail_needs_audit_log_read_all_and_delegated_an_audit_role() {
        assert!(authorize(&app(&[AUDIT_LOG_READ_ALL]), Action::ReadAudit).is_ok());
        assert!(authorize(&app(&[USER_EXPORT_ALL]), Action::ReadAudit).is_err());
        assert!(authorize(&user(&[AUDIT_LOG_READ_ALL], true), Action::ReadAudit).is_ok());
        assert!(authorize(&user(&[AUDIT_LOG_READ_ALL], false), Action::ReadAudit).is_err(), "no role");
        let mut reader = user(&[AUDIT_LOG_READ_ALL], false);
        if let Identity::User { roles, .. } = &mut reader.identity {
            roles.push(AUDIT_READER_ROLES[4].into()); // Reports Reader
        }
        assert!(authorize(&reader, Action::ReadAudit).is_ok());
        assert!(authorize(&reader, Action::Export).is_err(), "a reports reader cannot export");
    }
}
