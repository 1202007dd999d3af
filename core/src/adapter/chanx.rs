//! The adapter of Chanx (Django Channels with DRF authentication).

use super::{Adapter, AuthOutcome, Delivery, Incoming, check_size};
use crate::MessageId;
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use tether_protocol::{AuthErrorCode, DecodeError, RawJson, Secret};

/// The `ref` prefix of the adapter's own pings.
const PING_REF: &str = "tether-ping-";

/// The protocol of a [Chanx](https://pypi.org/project/chanx/) server
/// (`AsyncJsonWebsocketConsumer` with a `DjangoAuthenticator`):
///
/// - **auth**: the token travels in the URL query (or a cookie, with
///   [`cookie`](Self::cookie)); the client sends nothing, and right after
///   open the server sends `{"action":"authentication","payload":
///   {"status_code":200,…}}`, or the HTTP status of the refusal and then a
///   close with 4000 + status. 401 and 403 are final (the same token fails
///   again); other statuses (503, 500, 429) are retried with backoff. A new
///   token needs a new socket, so refresh is off by default.
/// - **keepalive**: `{"action":"ping","ref":"tether-ping-N"}`, answered by
///   `{"action":"pong",…,"ref":"tether-ping-N"}`.
/// - **messages**: the app's own `{"action":…,"payload":…}` object, sent as
///   it is. Chanx never acks, so they are fire-and-forget.
/// - **incoming**: every frame has an `action`; `pong` and `authentication`
///   are the adapter's, `error` is an error, everything else is the app's
///   message (its `payload` as JSON; envelope keys such as `ref` are left out).
/// - **final closes**: 4401 and 4403 (Chanx's 4000 + HTTP status).
/// - **topics**: none; [`Connection::subscribe`](crate::Connection::subscribe)
///   fails with [`TopicError::Unsupported`](crate::TopicError::Unsupported).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChanxAuth {
    /// The server authenticates with a cookie: connect even without a token.
    /// Defaults to false (the token is needed, and goes in the query).
    pub cookie: bool,
}

impl ChanxAuth {
    /// The adapter for a server that reads the token from the `?token=`
    /// query (through a middleware such as the test app's `QueryTokenMiddleware`).
    pub const fn query() -> Self {
        Self { cookie: false }
    }

    /// The adapter for a server that reads the token from a cookie.
    pub const fn cookie() -> Self {
        Self { cookie: true }
    }
}

/// A Chanx frame: an `action`, its `payload`, and the `ref` of a pong.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(default)]
    payload: Option<RawJson>,
    #[serde(default, rename = "ref")]
    reference: Option<Value>,
}

/// The payload of an `authentication` frame.
#[derive(Deserialize)]
struct Authentication {
    status_code: u64,
    #[serde(default)]
    data: Option<Value>,
}

impl Authentication {
    /// The payload of `frame` when it is an `authentication` frame.
    fn of(frame: &Frame<'_>) -> Option<Self> {
        if frame.action != "authentication" {
            return None;
        }
        serde_json::from_str(frame.payload.as_ref()?.as_str()).ok()
    }

    /// `data.detail`, when it is a string.
    fn detail(&self) -> Option<&str> {
        self.data.as_ref()?.get("detail")?.as_str()
    }

    /// `data.user_id`, a string or a number.
    fn user_id(&self) -> Option<String> {
        match self.data.as_ref()?.get("user_id")? {
            Value::String(id) => Some(id.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// Code and text of an `error` frame's payload: a list of pydantic errors
/// (`type`, `loc`, `msg`) or an object (`detail`, maybe `reason`).
fn error_text(payload: Option<&RawJson>) -> (String, String) {
    let payload = payload.and_then(|p| serde_json::from_str::<Value>(p.as_str()).ok());
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    match payload {
        Some(Value::Array(items)) => {
            let code = items.first().and_then(|e| text(e, "type"));
            let message: Vec<String> = items.iter().filter_map(|e| text(e, "msg")).collect();
            (code.unwrap_or_else(|| "error".into()), message.join("; "))
        }
        Some(object @ Value::Object(_)) => (
            text(&object, "reason").unwrap_or_else(|| "error".into()),
            text(&object, "detail").unwrap_or_default(),
        ),
        _ => ("error".into(), String::new()),
    }
}

impl Adapter for ChanxAuth {
    fn requires_token(&self) -> bool {
        !self.cookie
    }

    fn auth_frame(&self, _token: Option<&Secret>, _last_seq: Option<u64>) -> Option<String> {
        None
    }

    fn auth_response(&self, frame: &str) -> Option<AuthOutcome> {
        let frame = serde_json::from_str::<Frame<'_>>(frame).ok()?;
        let auth = Authentication::of(&frame)?;
        let status = auth.status_code;
        let why = || {
            auth.detail().map_or_else(
                || format!("the server refused authentication ({status})"),
                str::to_owned,
            )
        };
        match status {
            200..=299 => Some(AuthOutcome::Accepted {
                // Chanx itself sends no user identity; an app's
                // authenticator may add `user_id` to `data`.
                user_id: auth.user_id().unwrap_or_default(),
                lifetime: None,
                max_frame: None,
            }),
            401 => Some(AuthOutcome::Refused {
                code: AuthErrorCode::InvalidToken,
                message: why(),
            }),
            403 => Some(AuthOutcome::Refused {
                code: AuthErrorCode::Other("forbidden".into()),
                message: why(),
            }),
            // Not final: the close (4000 + status) follows and is retried.
            _ => None,
        }
    }

    fn reauth_in_place(&self) -> bool {
        false
    }

    fn ping_frame(&self, seq: u64) -> Option<String> {
        Some(format!(r#"{{"action":"ping","ref":"{PING_REF}{seq}"}}"#))
    }

    fn message_frame(&self, _id: &MessageId, body: &RawJson) -> String {
        body.as_str().to_owned()
    }

    fn delivery(&self) -> Delivery {
        Delivery::FireAndForget
    }

    fn decode(&self, frame: &str, limit: usize) -> Incoming {
        if let Err(err) = check_size(frame, limit) {
            return Incoming::Malformed(err);
        }
        let message = match serde_json::from_str::<Frame<'_>>(frame) {
            Ok(message) => message,
            Err(err) if err.is_data() => {
                return Incoming::Malformed(DecodeError::Malformed(
                    "not an object with a string `action`".into(),
                ));
            }
            Err(_) => return Incoming::Malformed(DecodeError::Malformed("not valid JSON".into())),
        };
        match &*message.action {
            "pong" => match &message.reference {
                None => Incoming::Pong { seq: None },
                Some(reference) => match reference
                    .as_str()
                    .and_then(|r| r.strip_prefix(PING_REF))
                    .and_then(|n| n.parse().ok())
                {
                    Some(seq) => Incoming::Pong { seq: Some(seq) },
                    // The answer to someone else's ping.
                    None => Incoming::Ignore,
                },
            },
            "authentication" => match Authentication::of(&message) {
                Some(auth) if (200..=299).contains(&auth.status_code) => Incoming::Ignore,
                Some(auth) => Incoming::Error {
                    code: format!("status_{}", auth.status_code),
                    message: auth.detail().unwrap_or_default().to_owned(),
                },
                None => Incoming::Malformed(DecodeError::InvalidPayload {
                    kind: "authentication".into(),
                    reason: "no `status_code`".into(),
                }),
            },
            "error" => {
                let (code, message) = error_text(message.payload.as_ref());
                Incoming::Error { code, message }
            }
            // `SEND_COMPLETION`: a handler finished.
            "complete" => Incoming::Ignore,
            kind => Incoming::Message {
                kind: kind.to_owned(),
                payload: message.payload.unwrap_or_else(RawJson::null),
            },
        }
    }

    fn final_close(&self, code: u16) -> Option<AuthErrorCode> {
        match code {
            4401 => Some(AuthErrorCode::Other("unauthorized".into())),
            4403 => Some(AuthErrorCode::Other("forbidden".into())),
            _ => None,
        }
    }

    fn refresh(&self) -> bool {
        false
    }

    /// Chanx has no topics of the contract's kind (its group channels are
    /// the server app's business): subscribing fails at once with
    /// [`TopicError::Unsupported`](crate::TopicError::Unsupported).
    fn topics(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 1 << 16;

    #[test]
    fn chanx_answers() {
        let chanx = ChanxAuth::query();
        assert!(chanx.requires_token() && !chanx.reauth_in_place() && !chanx.refresh());
        assert!(!ChanxAuth::cookie().requires_token());
        let ok = r#"{"action": "authentication", "payload": {"status_code": 200, "status_text": "OK", "data": {"detail": "OK"}}}"#;
        assert!(matches!(
            chanx.auth_response(ok),
            Some(AuthOutcome::Accepted { .. })
        ));
        let no = r#"{"action": "authentication", "payload": {"status_code": 403, "status_text": "Forbidden", "data": {"detail": "You may not receive notifications."}}}"#;
        assert_eq!(
            chanx.auth_response(no),
            Some(AuthOutcome::Refused {
                code: AuthErrorCode::Other("forbidden".into()),
                message: "You may not receive notifications.".into()
            })
        );
        let outage = r#"{"action": "authentication", "payload": {"status_code": 503, "status_text": "Service Unavailable", "data": {"detail": "down"}}}"#;
        assert_eq!(chanx.auth_response(outage), None, "503 is not final");
        assert!(
            matches!(chanx.decode(outage, LIMIT), Incoming::Error { code, .. } if code == "status_503")
        );
        assert_eq!(
            chanx.auth_response(r#"{"action":"chat","payload":{}}"#),
            None
        );
        assert_eq!(chanx.auth_response("garbage"), None);
        // An app's authenticator may add the user's id, a string or a number.
        for (id, expected) in [(r#""u-7""#, "u-7"), ("42", "42")] {
            let frame = format!(
                r#"{{"action":"authentication","payload":{{"status_code":200,"data":{{"user_id":{id}}}}}}}"#
            );
            assert!(
                matches!(chanx.auth_response(&frame), Some(AuthOutcome::Accepted { user_id, .. }) if user_id == expected),
                "{frame}"
            );
        }
        // After the answer, a success frame is nothing more to do.
        assert_eq!(chanx.decode(ok, LIMIT), Incoming::Ignore);
    }

    #[test]
    fn chanx_bad_frames_say_what_is_wrong() {
        let chanx = ChanxAuth::query();
        assert_eq!(
            chanx.decode("not json", LIMIT),
            Incoming::Malformed(DecodeError::Malformed("not valid JSON".into()))
        );
        assert_eq!(
            chanx.decode(r#"{"type":"pong"}"#, LIMIT),
            Incoming::Malformed(DecodeError::Malformed(
                "not an object with a string `action`".into()
            ))
        );
    }

    #[test]
    fn chanx_frames() {
        let chanx = ChanxAuth::query();
        assert_eq!(
            chanx.ping_frame(7).unwrap(),
            r#"{"action":"ping","ref":"tether-ping-7"}"#
        );
        let pong = r#"{"action": "pong", "payload": null, "version": 1, "ref": "tether-ping-7"}"#;
        assert_eq!(chanx.decode(pong, LIMIT), Incoming::Pong { seq: Some(7) });
        assert_eq!(
            chanx.decode(r#"{"action": "pong", "payload": null}"#, LIMIT),
            Incoming::Pong { seq: None }
        );
        assert_eq!(
            chanx.decode(r#"{"action":"pong","payload":null,"ref":"mine"}"#, LIMIT),
            Incoming::Ignore
        );
        let echo = r#"{"action": "echo_reply", "payload": {"text": "h\u00e9llo"}, "version": 1, "ref": "m-1"}"#;
        assert_eq!(
            chanx.decode(echo, LIMIT),
            Incoming::Message {
                kind: "echo_reply".into(),
                // Kept exactly as sent, escapes and spaces included.
                payload: RawJson::new(r#"{"text": "h\u00e9llo"}"#).unwrap(),
            }
        );
        let error = r#"{"action": "error", "payload": [{"type": "missing", "loc": ["echo", "payload"], "msg": "Field required"}], "version": 1, "ref": "m-2"}"#;
        assert_eq!(
            chanx.decode(error, LIMIT),
            Incoming::Error {
                code: "missing".into(),
                message: "Field required".into()
            }
        );
        let topic = r#"{"action": "error", "payload": {"reason": "not_subscribed", "detail": "Not subscribed to 'x'"}}"#;
        assert_eq!(
            chanx.decode(topic, LIMIT),
            Incoming::Error {
                code: "not_subscribed".into(),
                message: "Not subscribed to 'x'".into()
            }
        );
        assert!(matches!(
            chanx.decode(r#"{"type":"ping"}"#, LIMIT),
            Incoming::Malformed(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            chanx.decode(&"x".repeat(20), 10),
            Incoming::Malformed(DecodeError::TooLarge { .. })
        ));
        let body = RawJson::new(r#"{"action":"echo","payload":{"text":"x"}}"#).unwrap();
        let id = MessageId::new("i".into());
        assert_eq!(chanx.message_frame(&id, &body), body.as_str());
        assert_eq!(chanx.delivery(), Delivery::FireAndForget);
        assert!(chanx.final_close(4401).is_some() && chanx.final_close(4403).is_some());
        assert_eq!(chanx.final_close(4503), None);
        assert_eq!(chanx.final_close(1006), None);
    }
}
