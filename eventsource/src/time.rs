//! Timestamps: UTC, microsecond precision everywhere, so that every backend round-trips
//! them exactly.

use chrono::{DateTime, SubsecRound, Utc};

/// Now, truncated to the microsecond.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Formats as RFC 3339 with exactly six fractional digits and `Z`
/// (`2026-11-27T11:06:23.123456Z`): sorts lexicographically, as SQLite's `TEXT` needs.
pub fn format(ts: &DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Parses RFC 3339 (any offset, normalised to UTC, truncated to the microsecond).
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc).trunc_subsecs(6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_to_the_microsecond() {
        let t = now();
        assert_eq!(parse(&format(&t)), Some(t));
        assert!(format(&t).ends_with('Z'));
        assert_eq!(format(&t).len(), "2026-11-27T11:06:23.123456Z".len());
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse("yesterday"), None);
    }
}
