//! Reading the `exp` and `sub` claims of a JWT access token, without verifying it.
//!
//! A token loaded from storage (after a reload, or a laptop that slept) has
//! no known lifetime. If it is a JWT, its `exp` says when it expires, so the
//! machine can refresh it *before* connecting instead of being refused with
//! `expired_token` and sending the user to the login page. The claim is only
//! a scheduling hint: the server still verifies everything. Its `sub` claim
//! likewise tells the machine that a new token is another user's, so that
//! user's first `auth` does not carry the previous user's replay cursor.

use serde::Deserialize;
use serde_json::value::RawValue;
use std::time::Duration;

/// The `exp` claim of a JWT, in ms since the Unix epoch; `None` when `token`
/// is not a JWT with a numeric `exp` (opaque tokens are fine, they simply
/// have no known expiry).
///
/// ```
/// use tether_core::jwt::expires_at;
/// // {"alg":"HS256"} . {"sub":"u","exp":1700000000} . signature
/// let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1IiwiZXhwIjoxNzAwMDAwMDAwfQ.c2ln";
/// assert_eq!(expires_at(token), Some(1_700_000_000_000));
/// assert_eq!(expires_at("opaque-token"), None);
/// ```
pub fn expires_at(token: &str) -> Option<u64> {
    // NumericDate: seconds, possibly with a fraction (kept to the ms).
    let exp: serde_json::Number = claims(token)?.read(|c| c.exp)?;
    match exp.as_u64() {
        Some(seconds) => seconds.checked_mul(1000),
        None => exp
            .as_f64()
            .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1.8e16)
            // Within range by the filter; the fraction past the ms is dropped.
            .map(|seconds| (seconds * 1000.0) as u64),
    }
}

/// The `sub` claim of a JWT: whose token it is. `None` when `token` is not
/// a JWT with a non-empty string `sub`. The machine uses it to tell that a
/// new token belongs to another user before the server says so.
///
/// ```
/// use tether_core::jwt::subject;
/// // {"alg":"HS256"} . {"sub":"u","exp":1700000000} . signature
/// let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1IiwiZXhwIjoxNzAwMDAwMDAwfQ.c2ln";
/// assert_eq!(subject(token).as_deref(), Some("u"));
/// assert_eq!(subject("opaque-token"), None);
/// ```
pub fn subject(token: &str) -> Option<String> {
    claims(token)?
        .read(|c| c.sub)
        .filter(|sub: &String| !sub.is_empty())
}

/// The claims the machine reads, as raw JSON (any other is ignored): each is
/// read on its own, so a claim of an unexpected type does not hide the other.
#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    exp: Option<Box<RawValue>>,
    #[serde(default)]
    sub: Option<Box<RawValue>>,
}

impl Claims {
    /// The claim `pick` returns, read as a `T`; `None` when absent or not one.
    fn read<T: serde::de::DeserializeOwned>(
        self,
        pick: impl FnOnce(Self) -> Option<Box<RawValue>>,
    ) -> Option<T> {
        serde_json::from_str(pick(self)?.get()).ok()
    }
}

/// The claims of the JWT `token`; `None` when `token` is not a JWT with a
/// JSON object payload.
fn claims(token: &str) -> Option<Claims> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    serde_json::from_slice(&base64url_decode(payload)?).ok()
}

/// How long `token` has left at `now` (ms since the epoch): zero when its
/// `exp` has passed, `None` when unknown.
pub fn remaining(token: &str, now: u64) -> Option<Duration> {
    expires_at(token).map(|exp| Duration::from_millis(exp.saturating_sub(now)))
}

fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in text.bytes().take_while(|&c| c != b'=') {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_base64url_with_and_without_padding() {
        assert_eq!(base64url_decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(base64url_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64url_decode("-_8").unwrap(), [0xfb, 0xff]);
        assert_eq!(base64url_decode("a b"), None);
    }

    #[test]
    fn remaining_is_zero_once_expired_and_none_for_opaque_tokens() {
        let token = "e30.eyJleHAiOjEwMH0.x"; // {} . {"exp":100}
        assert_eq!(expires_at(token), Some(100_000));
        assert_eq!(remaining(token, 40_000), Some(Duration::from_secs(60)));
        assert_eq!(remaining(token, 200_000), Some(Duration::ZERO));
        // NumericDate may have a fraction: {"exp":1.5}
        assert_eq!(expires_at("e30.eyJleHAiOjEuNX0.x"), Some(1_500));
        // {"exp":1.2345}: kept to the ms.
        assert_eq!(expires_at("e30.eyJleHAiOjEuMjM0NX0.x"), Some(1_234));
        // An exponent is a number like any other: {"exp":1e3}, {"exp":1.2345e3}.
        assert_eq!(expires_at("e30.eyJleHAiOjFlM30.x"), Some(1_000_000));
        assert_eq!(expires_at("e30.eyJleHAiOjEuMjM0NWUzfQ.x"), Some(1_234_500));
        // {"exp":18446744073709552}: seconds that overflow in ms.
        assert_eq!(expires_at("e30.eyJleHAiOjE4NDQ2NzQ0MDczNzA5NTUyfQ.x"), None);
        for opaque in [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "e30.e30.x",
            "e30.eyJleHAiOiJzb29uIn0.x",
            "e30.eyJleHAiOi0xfQ.x", // {"exp":-1}
        ] {
            assert_eq!(expires_at(opaque), None, "{opaque}");
        }
    }

    #[test]
    fn subject_is_a_non_empty_string_sub() {
        // {} . {"sub":"alice"}
        assert_eq!(
            subject("e30.eyJzdWIiOiJhbGljZSJ9.x").as_deref(),
            Some("alice")
        );
        for opaque in [
            "opaque",
            "e30.e30.x",               // no sub
            "e30.eyJzdWIiOiIifQ.x",    // {"sub":""}
            "e30.eyJzdWIiOjd9.x",      // {"sub":7}
            "e30.eyJzdWIiOiJhIn0.x.y", // four parts
        ] {
            assert_eq!(subject(opaque), None, "{opaque}");
        }
    }
}
