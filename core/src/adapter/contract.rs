//! The adapter of `shared/PROTOCOL.md`.

use super::{Adapter, AuthOutcome, Incoming};
use crate::MessageId;
use std::time::Duration;
use tether_protocol::time::parse_rfc3339;
use tether_protocol::{
    Auth, AuthErrorCode, ClientMessage, Outgoing, Ping, RawJson, Secret, ServerMessage, close_code,
};

/// The protocol of `shared/PROTOCOL.md`: the client sends
/// `{"type":"auth","payload":{"token","last_seq"}}` and the server answers
/// `auth_success` or `auth_error` (re-authentication in place with a new
/// `auth` frame); keepalive `ping`/`pong` with a `seq`; messages in a `send`
/// envelope, acked by id; frame types the contract does not define are the
/// app's own messages (section 9); closes 4001, 4003 and 1008 are final.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContractAuth;

impl Adapter for ContractAuth {
    fn auth_frame(&self, token: Option<&Secret>, last_seq: Option<u64>) -> Option<String> {
        let auth = Auth {
            token: token.cloned(),
            last_seq,
        };
        Some(ClientMessage::Auth(auth).encode())
    }

    fn auth_response(&self, frame: &str) -> Option<AuthOutcome> {
        // Only asked while an answer is pending: a few frames per connection.
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

    fn ping_frame(&self, seq: u64) -> Option<String> {
        Some(ClientMessage::Ping(Ping { seq }).encode())
    }

    fn message_frame(&self, id: &MessageId, body: &RawJson) -> String {
        ClientMessage::Send(Outgoing {
            id: id.as_str().to_owned(),
            body: body.clone(),
        })
        .encode()
    }

    fn decode(&self, frame: &str, limit: usize) -> Incoming {
        match ServerMessage::decode_with_limit(frame, limit) {
            // Section 9: a type this page does not define is the app's own.
            Ok(ServerMessage::App(app)) => Incoming::Message {
                kind: app.kind,
                payload: app.payload,
            },
            Ok(message) => Incoming::Contract(message),
            Err(err) => Incoming::Malformed(err),
        }
    }

    fn final_close(&self, code: u16) -> Option<AuthErrorCode> {
        let name = match code {
            close_code::UNAUTHORIZED => "unauthorized",
            close_code::FORBIDDEN => "forbidden",
            close_code::POLICY => "policy_violation",
            _ => return None,
        };
        Some(AuthErrorCode::Other(name.into()))
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
    fn contract_app_types_are_messages() {
        let frame = r#"{"type":"chat.typing","payload":{"who":"ann","n":[1,2]}}"#;
        assert_eq!(
            ContractAuth.decode(frame, 1 << 16),
            Incoming::Message {
                kind: "chat.typing".into(),
                payload: RawJson::new(r#"{"who":"ann","n":[1,2]}"#).unwrap(),
            }
        );
        // Undotted names are reserved for the contract, but a newer
        // server's type is still handed over, never an error.
        assert_eq!(
            ContractAuth.decode(r#"{"type":"party"}"#, 1 << 16),
            Incoming::Message {
                kind: "party".into(),
                payload: RawJson::null(),
            }
        );
        assert_eq!(ContractAuth.final_close(4002), None);
        assert!(ContractAuth.final_close(4001).is_some());
    }
}
