//! `audit verify` and `audit head`.

use crate::{cli::AuditCommand, stores::open_audit};
use anyhow::bail;

/// `audit verify` and `audit head`: every tenant's chain (or one), checked from its first event.
pub(crate) fn run(command: AuditCommand) -> anyhow::Result<()> {
    let (tenant, head, store, verify) = match command {
        AuditCommand::Verify { tenant, head, store } => (tenant, head, store, true),
        AuditCommand::Head { tenant, store } => (tenant, None, store, false),
    };
    let log = open_audit(&store)?;
    let tenants = match tenant {
        Some(tenant) => vec![tenant],
        None => log.audit_tenants()?,
    };
    let mut broken = 0;
    for tenant in &tenants {
        match dpo_server::audit_trail::verify(log.as_ref(), tenant, head.as_deref()) {
            Ok(chain) if verify => println!("{tenant}: {} events, intact; head {}", chain.events, chain.head),
            Ok(chain) => println!("{tenant} {} {}", chain.head, chain.events),
            Err(e) => {
                println!("{e}");
                broken += 1;
            }
        }
    }
    if broken > 0 {
        bail!("{broken} of {} audit chains are broken", tenants.len());
    }
    Ok(())
}
