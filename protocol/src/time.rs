//! RFC 3339 timestamps as milliseconds since the Unix epoch, read and
//! written with the `time` crate.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Parses an RFC 3339 timestamp (`2026-11-23T12:00:00Z`,
/// `2026-11-23T12:00:00.250+01:00`) into milliseconds since the Unix epoch;
/// digits of the fraction past the millisecond are dropped.
///
/// ```
/// use tether_protocol::time::parse_rfc3339;
/// assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), Some(1500));
/// assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0));
/// assert_eq!(parse_rfc3339("yesterday"), None);
/// ```
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let at = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

/// Formats milliseconds since the Unix epoch as RFC 3339 in UTC with
/// millisecond precision.
///
/// ```
/// use tether_protocol::time::{format_rfc3339, parse_rfc3339};
/// assert_eq!(format_rfc3339(1_500), "1970-01-01T00:00:01.500Z");
/// let t = 1_795_000_123_456;
/// assert_eq!(parse_rfc3339(&format_rfc3339(t)), Some(t));
/// ```
///
/// # Panics
/// When `millis` is outside the years -9999 to 9999.
pub fn format_rfc3339(millis: i64) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .expect("a time within the years -9999 to 9999");
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00Z"), Some(951_868_800_000));
        assert_eq!(
            parse_rfc3339("2026-11-23T12:52:21.123456Z"),
            Some(1_795_438_341_123)
        );
        assert_eq!(format_rfc3339(951_868_800_000), "2000-03-01T00:00:00.000Z");
    }

    #[test]
    fn fractions_are_read_to_the_millisecond() {
        for (fraction, ms) in [
            ("5", 500),
            ("05", 50),
            ("0509", 50),
            ("999999", 999),
            ("000", 0),
        ] {
            let s = format!("1970-01-01T00:00:01.{fraction}+00:00");
            assert_eq!(parse_rfc3339(&s), Some(1_000 + ms), "{s}");
        }
    }

    #[test]
    fn round_trips_across_centuries() {
        let mut t = -2_000_000_000_000_i64;
        while t < 5_000_000_000_000 {
            assert_eq!(parse_rfc3339(&format_rfc3339(t)), Some(t));
            t += 86_399_997;
        }
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "2026-13-01T00:00:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00+0100",
            "2026-01-01T00:00:00.Z",
            "２０２６-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(s), None, "{s}");
        }
    }
}
