//! Timestamps: UTC, microsecond precision everywhere, so that every backend round-trips
//! them exactly.

use chrono::{DateTime, SubsecRound, Utc};

/// Now, truncated to the microsecond.
#[must_use]
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Formats as RFC 3339 with exactly six fractional digits and `Z`
/// (`2026-11-27T11:06:23.123456Z`): sorts lexicographically, as SQLite's `TEXT` needs.
#[must_use]
pub fn format(ts: &DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Parses RFC 3339 (any offset, normalised to UTC, truncated to the microsecond).
///
/// Our own format ([`format()`](fn@format)) takes a fast path that reads the digits in place; anything
/// else goes through chrono's general parser.
#[must_use]
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    parse_canonical(text).or_else(|| {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&Utc).trunc_subsecs(6))
    })
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, exactly; `None` for anything else (or an invalid date).
fn parse_canonical(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    if b.len() != 27
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[26] != b'Z'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let date = chrono::NaiveDate::from_ymd_opt(i32::try_from(num(0, 4)?).ok()?, num(5, 7)?, num(8, 10)?)?;
    let time = chrono::NaiveTime::from_hms_micro_opt(num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 26)?)?;
    Some(date.and_time(time).and_utc())
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
    fn the_fast_path_agrees_with_chrono() {
        for text in [
            "2026-11-27T11:06:23.123456Z",
            "1999-12-31T23:59:59.999999Z",
            "2024-02-29T00:00:00.000000Z",
        ] {
            let general = DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).ok();
            assert_eq!(parse_canonical(text), general, "{text}");
        }
        // Not canonical: the general parser handles them.
        assert_eq!(parse_canonical("2026-11-27T11:06:23+02:00"), None);
        assert_eq!(
            parse("2026-11-27T13:06:23.5+02:00").map(|t| format(&t)),
            Some("2026-11-27T11:06:23.500000Z".into())
        );
        // Invalid dates and non-digits are refused, not wrapped.
        assert_eq!(parse("2023-02-29T00:00:00.000000Z"), None);
        assert_eq!(parse("2026-1x-27T11:06:23.123456Z"), None);
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse("yesterday"), None);
    }
}
