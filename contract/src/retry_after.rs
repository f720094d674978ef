//! `Retry-After` (RFC 9110, 10.2.3) as a wait: delay-seconds or an HTTP date. dpo's client and its HTTP
//! data sources read it the same way.

use chrono::{DateTime, Utc};
use std::time::Duration;

/// The wait `value` asks for, counted from `now` when it is a date (a date already past is no wait);
/// `None` when it is neither form.
pub fn wait(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.with_timezone(&Utc) - now).to_std().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_dates_are_waits_and_anything_else_is_none() {
        let now = DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(wait(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(wait("Sun, 06 Dec 2026 10:00:30 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(wait("Sun, 06 Dec 2026 09:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(wait("-1", now), None);
        assert_eq!(wait("soon", now), None);
    }
}
