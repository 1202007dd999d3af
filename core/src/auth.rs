//! Pluggable authentication handshakes.
//!
//! The machine owns *when* to authenticate (right after open, again with a
//! refreshed token, never before the answer); an [`AuthHandler`] owns *what*
//! the handshake looks like on the wire: which frame to send, which frame is
//! the answer and what it means, and whether a fresh token can be presented
//! on the open socket. Modelled on WebsockexNova's `AuthHandler` behaviour.
//!
//! Two handlers ship: [`ContractAuth`] (the default, `shared/PROTOCOL.md`)
//! and [`ChanxAuth`] (servers where the *server* speaks first, with
//! `{"action":"authentication","payload":{"status_code":200}}`).
//!
//! ```
//! use tether_core::auth::{AuthHandler, AuthOutcome, ChanxAuth};
//!
//! let chanx = ChanxAuth::default();
//! assert_eq!(chanx.auth_frame(None, None), None); // the server speaks first
//! let answer = r#"{"action":"authentication","payload":{"status_code":200}}"#;
//! assert!(matches!(chanx.auth_response(answer), Some(AuthOutcome::Accepted { .. })));
//! ```

use std::fmt;
use std::time::Duration;
use tether_protocol::json::Value;
use tether_protocol::time::parse_rfc3339;
use tether_protocol::{Auth, AuthErrorCode, ClientMessage, Secret, ServerMessage};

/// What an authentication answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Authenticated. `lifetime` is how long the token stays valid from now,
    /// if the server said; the machine refreshes the token before then.
    Accepted {
        /// The authenticated user's id (empty if the server does not say).
        user_id: String,
        /// Remaining token lifetime, if known.
        lifetime: Option<Duration>,
        /// The largest frame the server takes, in bytes, if it said
        /// (`max_frame`); the machine then refuses larger messages itself.
        max_frame: Option<u64>,
    },
    /// Refused: a final authentication failure (token cleared, login route).
    Refused {
        /// Why.
        code: AuthErrorCode,
        /// Human-readable text; must not contain the token.
        message: String,
    },
}

/// The wire side of an authentication handshake. Implement it to speak to a
/// server whose handshake differs from the contract's; pass it with
/// [`Connection::with_auth`](crate::Connection::with_auth).
pub trait AuthHandler: fmt::Debug {
    /// Whether a token is needed to connect at all. A handler that
    /// authenticates with a cookie returns false, and connecting without a
    /// token is then no `missing_token` failure. Defaults to true.
    fn requires_token(&self) -> bool {
        true
    }

    /// The frame to send right after the socket opens (and, when
    /// [`reauth_in_place`](Self::reauth_in_place), with each refreshed
    /// token). `None` when the server authenticates from the URL or a cookie
    /// and speaks first.
    fn auth_frame(&self, token: Option<&Secret>, last_seq: Option<u64>) -> Option<String>;

    /// Looks at a frame received while an answer is pending: `Some` when it
    /// is the answer, `None` to let the machine treat it as an ordinary frame.
    fn auth_response(&self, frame: &str) -> Option<AuthOutcome>;

    /// Whether a refreshed token is presented on the open socket (no
    /// reconnect). When false the machine reconnects with the new token,
    /// which briefly leaves CONNECTED. Defaults to true.
    fn reauth_in_place(&self) -> bool {
        true
    }
}

/// The handshake of `shared/PROTOCOL.md`: the client sends
/// `{"type":"auth","payload":{"token","last_seq"}}` and the server answers
/// `auth_success` or `auth_error`; re-authentication in place with a new
/// `auth` frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContractAuth;

impl AuthHandler for ContractAuth {
    fn auth_frame(&self, token: Option<&Secret>, last_seq: Option<u64>) -> Option<String> {
        let auth = Auth {
            token: token.cloned(),
            last_seq,
        };
        Some(ClientMessage::Auth(auth).encode())
    }

    fn auth_response(&self, frame: &str) -> Option<AuthOutcome> {
        // Cheap pre-check: only answers are parsed twice. (A byte scan, not
        // `str::contains`, whose substring searcher is ~1.5 KiB of wasm.)
        if !frame.as_bytes().windows(6).any(|w| w == b"\"auth_") {
            return None;
        }
        match ServerMessage::decode(frame).ok()? {
            ServerMessage::AuthSuccess(ok) => {
                // The lifetime as the server sees it, so a skewed client
                // clock does not matter.
                let lifetime = parse_rfc3339(&ok.expires_at)
                    .zip(parse_rfc3339(&ok.authenticated_at))
                    .map(|(exp, at)| Duration::from_millis(u64::try_from(exp - at).unwrap_or(0)));
                Some(AuthOutcome::Accepted {
                    user_id: ok.user_id,
                    lifetime,
                    max_frame: ok.max_frame,
                })
            }
            ServerMessage::AuthError(err) => Some(AuthOutcome::Refused {
                code: err.code,
                message: err.message,
            }),
            _ => None,
        }
    }
}

/// The Chanx server-initiated handshake: the token travels in the URL query
/// (or a cookie, with [`cookie`](Self::cookie)), and right after open the
/// server sends `{"action":"authentication","payload":{"status_code":200,…}}`,
/// or a 4xx status code when it refuses. A refreshed token needs a new
/// socket. Frames after the handshake that are not in the contract's format
/// surface as `Event::Error`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChanxAuth {
    /// The server authenticates with a cookie: connect even without a token.
    pub cookie: bool,
}

impl AuthHandler for ChanxAuth {
    fn requires_token(&self) -> bool {
        !self.cookie
    }

    fn auth_frame(&self, _token: Option<&Secret>, _last_seq: Option<u64>) -> Option<String> {
        None
    }

    fn auth_response(&self, frame: &str) -> Option<AuthOutcome> {
        let message = tether_protocol::json::parse(frame).ok()?;
        if message.get("action").and_then(Value::as_str) != Some("authentication") {
            return None;
        }
        let payload = message.get("payload")?;
        let status = payload.get("status_code").and_then(Value::as_u64)?;
        let text = |key: &str| payload.get(key).and_then(Value::as_str);
        if (200..300).contains(&status) {
            let user_id = text("user_id")
                .or_else(|| {
                    payload
                        .get("user")
                        .and_then(|user| user.get("id"))
                        .and_then(Value::as_str)
                })
                .unwrap_or_default()
                .to_owned();
            return Some(AuthOutcome::Accepted {
                user_id,
                lifetime: None,
                max_frame: None,
            });
        }
        let code = match status {
            401 => AuthErrorCode::InvalidToken,
            403 => AuthErrorCode::Other("forbidden".into()),
            other => AuthErrorCode::Other(format!("status_{other}")),
        };
        let message = text("message").or_else(|| text("status")).map_or_else(
            || format!("the server refused authentication ({status})"),
            str::to_owned,
        );
        Some(AuthOutcome::Refused { code, message })
    }

    fn reauth_in_place(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_frames_and_answers() {
        let frame = ContractAuth
            .auth_frame(Some(&Secret::new("t")), Some(4))
            .unwrap();
        assert_eq!(
            frame,
            r#"{"type":"auth","payload":{"token":"t","last_seq":4}}"#
        );
        let ok = r#"{"type":"auth_success","payload":{"user_id":"u","authenticated_at":"2026-01-01T00:00:00Z","expires_at":"2026-01-01T00:05:00Z"}}"#;
        assert_eq!(
            ContractAuth.auth_response(ok),
            Some(AuthOutcome::Accepted {
                user_id: "u".into(),
                lifetime: Some(Duration::from_secs(300)),
                max_frame: None,
            })
        );
        let refused = r#"{"type":"auth_error","payload":{"code":"revoked","message":"m"}}"#;
        assert!(matches!(
            ContractAuth.auth_response(refused),
            Some(AuthOutcome::Refused {
                code: AuthErrorCode::Revoked,
                ..
            })
        ));
        assert_eq!(
            ContractAuth.auth_response(r#"{"type":"pong","payload":{"seq":1}}"#),
            None
        );
    }

    #[test]
    fn chanx_answers() {
        let chanx = ChanxAuth::default();
        assert!(chanx.requires_token() && !chanx.reauth_in_place());
        assert!(!ChanxAuth { cookie: true }.requires_token());
        let ok = r#"{"action":"authentication","payload":{"status_code":200,"user":{"id":"u7"}}}"#;
        assert_eq!(
            chanx.auth_response(ok),
            Some(AuthOutcome::Accepted {
                user_id: "u7".into(),
                lifetime: None,
                max_frame: None,
            })
        );
        let no =
            r#"{"action":"authentication","payload":{"status_code":403,"status":"forbidden"}}"#;
        assert_eq!(
            chanx.auth_response(no),
            Some(AuthOutcome::Refused {
                code: AuthErrorCode::Other("forbidden".into()),
                message: "forbidden".into()
            })
        );
        assert_eq!(
            chanx.auth_response(r#"{"action":"chat","payload":{}}"#),
            None
        );
        assert_eq!(chanx.auth_response("garbage"), None);
    }
}
