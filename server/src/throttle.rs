//! Throttling as Microsoft Graph does it: each tenant, and each caller (user or application) within it,
//! may send so many requests a second (token buckets, GCRA, via `governor`); beyond that the answer is
//! `429 TooManyRequests` with `Retry-After`, which Graph's SDKs wait for and then ask again.

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
}

/// The server's rate limiters.
pub struct Throttle {
    tenants: Option<DefaultKeyedRateLimiter<String>>,
    callers: Option<DefaultKeyedRateLimiter<(String, String)>>,
}

/// A request over a limit: which one, and how long to wait before the next would pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttled {
    /// `tenant` or `caller`.
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
        }
    }

    /// Counts one request of `caller` against its own limit, then its tenant's; `Err` at the first it is
    /// over (a request refused for the caller's limit does not count against its tenant's).
    pub fn check(&self, caller: &Caller) -> Result<(), Throttled> {
        let clock = governor::clock::DefaultClock::default();
        let wait = |not_until: governor::NotUntil<_>| {
            let wait = not_until.wait_time_from(clock.now());
            Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(Duration::from_secs(1))
        };
        let who = match &caller.identity {
            Identity::User { id, .. } => format!("user:{id}"),
            Identity::App { id, .. } => format!("app:{id}"),
        };
        if let Some(callers) = &self.callers {
            callers
                .check_key(&(caller.tenant.clone(), who))
                .map_err(|n| Throttled { scope: "caller", retry_after: wait(n) })?;
        }
        if let Some(tenants) = &self.tenants {
            tenants.check_key(&caller.tenant).map_err(|n| Throttled { scope: "tenant", retry_after: wait(n) })?;
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(tenant: &str, id: &str) -> Caller {
        Caller {
            tenant: tenant.into(),
            identity: Identity::User { id: id.into(), scopes: Vec::new(), admin: true, roles: Vec::new() },
        }
    }

    #[test]
    fn each_caller_and_each_tenant_has_its_own_budget() {
        let throttle = Throttle::new(ThrottleLimits { per_tenant: NonZeroU32::new(5), per_caller: NonZeroU32::new(3) });
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
}
