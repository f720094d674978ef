//! Throttling as Microsoft Graph does it: each tenant, each application within it (Graph's per-app,
//! per-tenant limit: an application acting as itself, or the one users signed in to), and each caller (a
//! user or an application) may send so many requests a second (token buckets, GCRA, via `governor`);
//! beyond that the answer is `429 TooManyRequests` with `Retry-After`, which Graph's SDKs wait for and then
//! ask again.

use crate::auth::{Caller, Identity};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};
use std::{num::NonZeroU32, time::Duration};

/// Requests a second, with bursts of as many, for a tenant and for one caller; `None`: no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThrottleLimits {
    /// Per tenant, every caller together.
    pub per_tenant: Option<NonZeroU32>,
    /// Per caller (a user's `oid` or an application's `appid`) within its tenant.
    pub per_caller: Option<NonZeroU32>,
    /// Per application within its tenant, all its users together (`appid`/`azp` of the token).
    pub per_app: Option<NonZeroU32>,
}

/// The server's rate limiters.
pub struct Throttle {
    tenants: Option<DefaultKeyedRateLimiter<String>>,
    callers: Option<DefaultKeyedRateLimiter<(String, String)>>,
    apps: Option<DefaultKeyedRateLimiter<(String, String)>>,
    /// The limiters' clock, made once: making one calibrates the CPU's counter, which per request took
    /// more than a quarter of a small GET's time.
    clock: governor::clock::DefaultClock,
}

/// A request over a limit: which one, and how long to wait before the next would pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttled {
    /// `tenant`, `app` or `caller`.
    pub scope: &'static str,
    /// The wait, at least a second (what `Retry-After` says).
    pub retry_after: Duration,
}

impl Throttle {
    /// Limiters for `limits`.
    pub fn new(limits: ThrottleLimits) -> Throttle {
        Throttle {
            tenants: limits.per_tenant.map(|n| RateLimiter::keyed(Quota::per_second(n))),
            callers: limits.per_caller.map(|n| RateLimiter::keyed(Quota::per_second(n))),
            apps: limits.per_app.map(|n| RateLimiter::keyed(Quota::per_second(n))),
            clock: governor::clock::DefaultClock::default(),
        }
    }

    /// Counts one request of `caller` against its own limit, then its application's, then its tenant's;
    /// `Err` at the first it is over (a request refused by one limit does not count against the next).
    pub fn check(&self, caller: &Caller) -> Result<(), Throttled> {
        let wait = |not_until: governor::NotUntil<_>| {
            let wait = not_until.wait_time_from(self.clock.now());
            Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(Duration::from_secs(1))
        };
        // Ids are GUIDs, which tokens may spell in either case: one caller, one budget. A token that names no
        // application shares the budget of every other such token of its tenant, instead of having none.
        let tenant = caller.tenant.to_ascii_lowercase();
        if let Some(callers) = &self.callers {
            let who = match &caller.identity {
                Identity::User { id, .. } => format!("user:{}", id.to_ascii_lowercase()),
                Identity::App { id, .. } => format!("app:{}", id.to_ascii_lowercase()),
            };
            callers
                .check_key(&(tenant.clone(), who))
                .map_err(|n| Throttled { scope: "caller", retry_after: wait(n) })?;
        }
        if let Some(apps) = &self.apps {
            let app = match &caller.identity {
                Identity::User { app, .. } => app.as_deref().unwrap_or_default(),
                Identity::App { id, .. } => id.as_str(),
            };
            apps.check_key(&(tenant.clone(), app.to_ascii_lowercase()))
                .map_err(|n| Throttled { scope: "app", retry_after: wait(n) })?;
        }
        if let Some(tenants) = &self.tenants {
            tenants.check_key(&tenant).map_err(|n| Throttled { scope: "tenant", retry_after: wait(n) })?;
        }
        Ok(())
    }

    /// Forgets callers and tenants whose buckets are full again (bounds the memory of keys).
    pub fn forget_idle(&self) {
        if let Some(tenants) = &self.tenants {
            tenants.retain_recent();
        }
        if let Some(callers) = &self.callers {
            callers.retain_recent();
        }
        if let Some(apps) = &self.apps {
            apps.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(tenant: &str, id: &str) -> Caller {
        Caller {
            tenant: tenant.into(),
            identity: Identity::User { id: id.into(), scopes: Vec::new(), admin: true, roles: Vec::new(), app: None },
        }
    }

    #[test]
    fn each_caller_and_each_tenant_has_its_own_budget() {
        let limits = ThrottleLimits { per_tenant: NonZeroU32::new(5), per_caller: NonZeroU32::new(3), per_app: None };
        let throttle = Throttle::new(limits);
        for _ in 0..3 {
            assert!(throttle.check(&user("t1", "a")).is_ok());
        }
        let over = throttle.check(&user("t1", "a")).unwrap_err();
        assert_eq!((over.scope, over.retry_after), ("caller", Duration::from_secs(1)));
        assert!(throttle.check(&user("t1", "b")).is_ok() && throttle.check(&user("t1", "b")).is_ok());
        assert_eq!(throttle.check(&user("t1", "c")).unwrap_err().scope, "tenant", "t1 used its 5");
        assert!(throttle.check(&user("t2", "a")).is_ok(), "another tenant, another budget");
        assert!(Throttle::new(ThrottleLimits::default()).check(&user("t1", "a")).is_ok(), "no limits");
    }

    #[test]
    fn the_users_of_one_application_share_its_budget() {
        let throttle = Throttle::new(ThrottleLimits { per_app: NonZeroU32::new(2), ..ThrottleLimits::default() });
        let signed_in = |id: &str, app: &str| Caller {
            tenant: "t1".into(),
            identity: Identity::User {
                id: id.into(),
                scopes: Vec::new(),
                admin: false,
                roles: Vec::new(),
                app: Some(app.into()),
            },
        };
        assert!(throttle.check(&signed_in("a", "crm")).is_ok());
        assert!(throttle.check(&signed_in("b", "crm")).is_ok());
        assert_eq!(throttle.check(&signed_in("c", "crm")).unwrap_err().scope, "app", "crm used its 2");
        assert!(throttle.check(&signed_in("c", "hr-portal")).is_ok(), "another application");
        let crm = Caller { tenant: "t1".into(), identity: Identity::App { id: "crm".into(), roles: Vec::new() } };
        assert_eq!(throttle.check(&crm).unwrap_err().scope, "app", "the application acting as itself, too");
        let elsewhere = Caller { tenant: "t2".into(), ..signed_in("a", "crm") };
        assert!(throttle.check(&elsewhere).is_ok(), "the same application in another tenant");
        let unnamed = |id: &str| user("t1", id);
        assert!(throttle.check(&unnamed("d")).is_ok());
        assert!(throttle.check(&unnamed("e")).is_ok());
        assert_eq!(
            throttle.check(&unnamed("f")).unwrap_err().scope,
            "app",
            "tokens without appid or azp share one budget, they do not escape it"
        );
    }

    #[test]
    fn ids_in_another_case_are_the_same_caller() {
        let limits = ThrottleLimits { per_tenant: None, per_caller: NonZeroU32::new(2), per_app: None };
        let throttle = Throttle::new(limits);
        assert!(throttle.check(&user("T1", "ABCDEF01-0000-0000-0000-000000000001")).is_ok());
        assert!(throttle.check(&user("t1", "abcdef01-0000-0000-0000-000000000001")).is_ok());
        let third = throttle.check(&user("t1", "AbCdEf01-0000-0000-0000-000000000001"));
        assert_eq!(third.unwrap_err().scope, "caller", "one caller in any spelling");
    }
}
