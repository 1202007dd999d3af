//! RFC 3339 timestamps as milliseconds since the Unix epoch, without a
//! date-time dependency (the client bundle stays small).

/// The whole milliseconds of a decimal fraction, given the digits after
/// the point: `5` is 500 ms, `0509` is 50 ms; digits past the third are
/// dropped. `None` when one of the first three is not a digit.
///
/// ```
/// use tether_protocol::time::fraction_millis;
/// assert_eq!(fraction_millis(b"5"), Some(500));
/// assert_eq!(fraction_millis(b"0509"), Some(50));
/// assert_eq!(fraction_millis(b"x"), None);
/// ```
pub fn fraction_millis(digits: &[u8]) -> Option<u64> {
    digits
        .iter()
        .chain(b"00")
        .take(3)
        .try_fold(0, |ms, &c| Some(ms * 10 + crate::json::digit(c)?))
}

/// Parses an RFC 3339 timestamp (`2026-11-23T12:00:00Z`,
/// `2026-11-23T12:00:00.250+01:00`) into milliseconds since the Unix epoch.
///
/// ```
/// use tether_protocol::time::parse_rfc3339;
/// assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), Some(1500));
/// assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0));
/// assert_eq!(parse_rfc3339("yesterday"), None);
/// ```
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| crate::json::decimal(b.get(r)?).map(|n| n as i64);
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        millis = fraction_millis(&frac.as_bytes()[..digits])? as i64;
        rest = &frac[digits..];
    }
    let offset_minutes = match rest.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digit = |c: &u8| c.is_ascii_digit().then(|| i64::from(c - b'0'));
            let minutes = (digit(h1)? * 10 + digit(h2)?) * 60 + digit(m1)? * 10 + digit(m2)?;
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
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
pub fn format_rfc3339(millis: i64) -> String {
    let secs = millis.div_euclid(1_000);
    let ms = millis.rem_euclid(1_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        sod / 3_600,
        sod % 3_600 / 60,
        sod % 60
    )
}

// Howard Hinnant's days_from_civil / civil_from_days algorithms.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
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
