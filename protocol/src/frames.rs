//! Socket frames: `{"type": "...", "payload": {...}}`, decoded and encoded
//! by hand with [`crate::json`] (see there for why not serde). The payload
//! structs also derive serde's traits for servers that embed them in other
//! JSON (the reference server's `/api/notifications`).

use crate::Secret;
use crate::json::{self, RawJson, Value};
use serde::{Deserialize, Serialize};

/// A frame the client sends to the server.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientMessage {
    /// Authenticate (first frame after open) or re-authenticate in place.
    Auth(Auth),
    /// Keepalive probe; the server answers [`ServerMessage::Pong`] at once.
    Ping(Ping),
    /// A message with a delivery guarantee; the server answers [`ServerMessage::Ack`].
    Send(Outgoing),
}

/// A frame the server sends to the client.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerMessage {
    /// The `auth` frame was accepted.
    AuthSuccess(AuthSuccess),
    /// The `auth` frame was refused, or the session ended; a 4001 close follows.
    AuthError(AuthError),
    /// Answer to a [`ClientMessage::Ping`] with the same `seq`.
    Pong(Pong),
    /// A notification for the authenticated user.
    Notification(Notification),
    /// A [`ClientMessage::Send`] with this id was processed (at most once).
    Ack(Ack),
    /// A [`ClientMessage::Send`] with this id was refused: its body could
    /// not be taken exactly as sent, or the server will not apply it.
    Nack(Nack),
    /// An error that does not end the session.
    Error(ErrorPayload),
}

/// Payload of the `auth` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// The access token. Servers also accept it as `access_token`.
    pub token: Option<Secret>,
    /// The highest notification `seq` the client has seen; the server replays
    /// everything after it. `null` on a first connection.
    pub last_seq: Option<u64>,
}

/// Payload of the `ping` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// Sequence number, echoed in the pong.
    pub seq: u64,
}

/// Payload of the `pong` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    /// The `seq` of the ping this answers.
    pub seq: u64,
}

/// Payload of the `send` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Client-chosen unique id (a UUID); the server acks it and applies it at most once.
    pub id: String,
    /// Any JSON value, as text.
    pub body: RawJson,
}

/// Payload of the `auth_success` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthSuccess {
    /// The user's id (a UUID).
    pub user_id: String,
    /// When the server accepted the token, RFC 3339.
    pub authenticated_at: String,
    /// When the token expires, RFC 3339; refresh before then.
    pub expires_at: String,
    /// The largest frame, in bytes, the server takes from this client; absent
    /// on the wire when the server keeps the contract's default
    /// ([`crate::MAX_FRAME_BYTES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_frame: Option<u64>,
}

/// Payload of the `auth_error` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthError {
    /// Machine-readable reason.
    pub code: AuthErrorCode,
    /// Human-readable text. Never contains the token.
    #[serde(default)]
    pub message: String,
}

/// The `code` of an `auth_error` frame.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
#[non_exhaustive]
pub enum AuthErrorCode {
    /// No token in the query nor in the `auth` frame.
    MissingToken,
    /// The token's signature or shape is wrong.
    InvalidToken,
    /// The token's `exp` has passed.
    ExpiredToken,
    /// The session was revoked (logout).
    Revoked,
    /// A frame other than `auth` arrived before authentication.
    NotAuthenticated,
    /// No `auth` frame arrived within the server's auth timeout.
    AuthTimeout,
    /// A code this version does not know, kept verbatim.
    Other(String),
}

impl AuthErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::MissingToken => "missing_token",
            Self::InvalidToken => "invalid_token",
            Self::ExpiredToken => "expired_token",
            Self::Revoked => "revoked",
            Self::NotAuthenticated => "not_authenticated",
            Self::AuthTimeout => "auth_timeout",
            Self::Other(other) => other,
        }
    }
}

impl From<String> for AuthErrorCode {
    fn from(value: String) -> Self {
        match value.as_str() {
            "missing_token" => Self::MissingToken,
            "invalid_token" => Self::InvalidToken,
            "expired_token" => Self::ExpiredToken,
            "revoked" => Self::Revoked,
            "not_authenticated" => Self::NotAuthenticated,
            "auth_timeout" => Self::AuthTimeout,
            _ => Self::Other(value),
        }
    }
}

impl From<AuthErrorCode> for String {
    fn from(value: AuthErrorCode) -> Self {
        match value {
            AuthErrorCode::Other(other) => other,
            known => known.as_str().to_owned(),
        }
    }
}

impl std::fmt::Display for AuthErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Payload of the `notification` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Per-user sequence number, increasing by one.
    pub seq: u64,
    /// Unique id (a UUID).
    pub id: String,
    /// Short title.
    pub title: String,
    /// Body text.
    pub body: String,
    /// Creation time, RFC 3339.
    pub created_at: String,
}

/// Payload of the `ack` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The id of the acknowledged `send`.
    pub id: String,
}

/// Payload of the `nack` frame: the `send` with this id was not applied, and
/// will not be (except for [`NackCode::RateLimited`] and
/// [`NackCode::NotSubscribed`], which the client resends later).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nack {
    /// The id of the refused `send`.
    pub id: String,
    /// Machine-readable reason.
    pub code: NackCode,
    /// Human-readable text.
    #[serde(default)]
    pub message: String,
}

/// The `code` of a `nack` frame.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
#[non_exhaustive]
pub enum NackCode {
    /// The body could not be taken exactly as sent (a number out of range,
    /// too deep, too large). Final.
    MalformedBody,
    /// The user may not send or publish this. Final.
    Forbidden,
    /// A publish to a topic the socket is not subscribed to (now); the
    /// client resends after the topic's next `subscribed`.
    NotSubscribed,
    /// Too many messages; the client resends after a backoff.
    RateLimited,
    /// A code this version does not know, kept verbatim. Final.
    Other(String),
}

impl NackCode {
    /// The code as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::MalformedBody => "malformed_body",
            Self::Forbidden => "forbidden",
            Self::NotSubscribed => "not_subscribed",
            Self::RateLimited => "rate_limited",
            Self::Other(other) => other,
        }
    }
}

impl From<String> for NackCode {
    fn from(value: String) -> Self {
        match value.as_str() {
            "malformed_body" => Self::MalformedBody,
            "forbidden" => Self::Forbidden,
            "not_subscribed" => Self::NotSubscribed,
            "rate_limited" => Self::RateLimited,
            _ => Self::Other(value),
        }
    }
}

impl From<NackCode> for String {
    fn from(value: NackCode) -> Self {
        match value {
            NackCode::Other(other) => other,
            known => known.as_str().to_owned(),
        }
    }
}

impl std::fmt::Display for NackCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Payload of the `error` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorPayload {
    /// Machine-readable code, e.g. `malformed_frame`, `frame_too_large`, `rate_limited`.
    pub code: String,
    /// Human-readable text.
    #[serde(default)]
    pub message: String,
}

/// Codes of `error` frames the reference server sends.
pub mod error_code {
    /// The frame was not a JSON object with a string `type`, or its payload
    /// did not fit the type.
    pub const MALFORMED_FRAME: &str = "malformed_frame";
    /// The frame exceeded the size limit.
    pub const FRAME_TOO_LARGE: &str = "frame_too_large";
    /// The frame's `type` is not one this side knows.
    pub const UNKNOWN_TYPE: &str = "unknown_type";
    /// Too many frames in too short a time.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// A binary frame; the contract is JSON text only.
    pub const UNSUPPORTED_DATA: &str = "unsupported_data";
}

/// Why a text frame could not be decoded. None of the messages contains the
/// frame's string values, so a token cannot leak through them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame is larger than the receiver's limit.
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Size of the frame in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// Not JSON, or not an object with a string `type`.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A well-formed frame whose `type` this side does not know.
    #[error("unknown frame type `{0}`")]
    UnknownType(String),
    /// A known `type` whose payload does not have the expected shape.
    #[error("invalid `{kind}` payload: {reason}")]
    InvalidPayload {
        /// The frame's type.
        kind: String,
        /// What was wrong.
        reason: String,
    },
}

impl DecodeError {
    /// The `error` frame code that reports this error to the peer.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => error_code::FRAME_TOO_LARGE,
            Self::UnknownType(_) => error_code::UNKNOWN_TYPE,
            Self::Malformed(_) | Self::InvalidPayload { .. } => error_code::MALFORMED_FRAME,
        }
    }
}

/// The payload of a frame of a known `type`, with typed field access whose
/// errors name the field but never echo its value.
struct Payload<'v, 'a> {
    kind: &'v str,
    fields: Option<&'v Value<'a>>,
}

impl<'v, 'a> Payload<'v, 'a> {
    fn invalid(&self, reason: &str, field: &str) -> DecodeError {
        DecodeError::InvalidPayload {
            kind: self.kind.to_owned(),
            reason: format!("{reason} `{field}`"),
        }
    }

    /// A field that may be absent or `null`.
    fn optional(&self, field: &str) -> Option<&'v Value<'a>> {
        self.fields
            .and_then(|fields| fields.get(field))
            .filter(|v| !v.is_null())
    }

    fn opt_string(&self, field: &str) -> Result<Option<String>, DecodeError> {
        self.optional(field)
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| self.invalid("expected a string in", field))
            })
            .transpose()
    }

    fn string(&self, field: &str) -> Result<String, DecodeError> {
        self.opt_string(field)?
            .ok_or_else(|| self.invalid("missing field", field))
    }

    fn opt_u64(&self, field: &str) -> Result<Option<u64>, DecodeError> {
        self.optional(field)
            .map(|v| {
                v.as_u64()
                    .ok_or_else(|| self.invalid("expected an unsigned integer in", field))
            })
            .transpose()
    }

    fn u64(&self, field: &str) -> Result<u64, DecodeError> {
        self.opt_u64(field)?
            .ok_or_else(|| self.invalid("missing field", field))
    }
}

/// Parses the envelope, tells unknown types apart, and hands the payload of
/// a known `type` to `decode`.
fn decode<T>(
    text: &str,
    limit: usize,
    known: &[&str],
    decode: impl FnOnce(&Payload<'_, '_>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    if text.len() > limit {
        return Err(DecodeError::TooLarge {
            size: text.len(),
            limit,
        });
    }
    let frame = json::parse(text).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    let Some(kind) = frame.get("type").and_then(Value::as_str) else {
        return Err(DecodeError::Malformed(
            "expected an object with a string `type`".into(),
        ));
    };
    if !known.contains(&kind) {
        let mut end = kind.len().min(64);
        while !kind.is_char_boundary(end) {
            end -= 1;
        }
        let mut unknown = kind[..end].to_owned();
        if end < kind.len() {
            unknown.push('…');
        }
        return Err(DecodeError::UnknownType(unknown));
    }
    let fields = frame.get("payload").filter(|p| !p.is_null());
    let payload = Payload { kind, fields };
    if fields.is_some_and(|p| !matches!(p, Value::Object(_))) {
        return Err(payload.invalid("expected an object in", "payload"));
    }
    decode(&payload)
}

/// The value of one payload member, as [`frame`] writes it.
enum Field<'a> {
    Str(&'a str),
    U64(u64),
    Null,
    /// JSON text written as it is.
    Raw(&'a str),
}

impl<'a> From<Option<&'a str>> for Field<'a> {
    fn from(value: Option<&'a str>) -> Self {
        value.map_or(Self::Null, Self::Str)
    }
}

impl From<Option<u64>> for Field<'_> {
    fn from(value: Option<u64>) -> Self {
        value.map_or(Self::Null, Self::U64)
    }
}

/// Builds a frame: `{"type":"<kind>","payload":{<fields>}}`.
fn frame(kind: &str, fields: &[(&str, Field<'_>)]) -> String {
    let mut out = String::with_capacity(64);
    out.push_str("{\"type\":\"");
    out.push_str(kind);
    out.push_str("\",\"payload\":{");
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(name);
        out.push_str("\":");
        match value {
            Field::Str(text) => json::write_str(&mut out, text),
            Field::U64(n) => json::write_u64(&mut out, *n),
            Field::Null => out.push_str("null"),
            Field::Raw(text) => out.push_str(text),
        }
    }
    out.push_str("}}");
    out
}

impl ClientMessage {
    /// The `type` names of client frames.
    pub const TYPES: [&'static str; 3] = ["auth", "ping", "send"];

    /// Decodes a text frame, accepting at most [`crate::MAX_FRAME_BYTES`].
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        Self::decode_with_limit(text, crate::MAX_FRAME_BYTES)
    }

    /// Decodes a text frame, accepting at most `limit` bytes.
    pub fn decode_with_limit(text: &str, limit: usize) -> Result<Self, DecodeError> {
        decode(text, limit, &Self::TYPES, |p| {
            Ok(match p.kind {
                "auth" => Self::Auth(Auth {
                    token: match p.opt_string("token")? {
                        Some(token) => Some(token),
                        None => p.opt_string("access_token")?,
                    }
                    .map(Secret::new),
                    last_seq: p.opt_u64("last_seq")?,
                }),
                "ping" => Self::Ping(Ping { seq: p.u64("seq")? }),
                _ => Self::Send(Outgoing {
                    id: p.string("id")?,
                    // Any JSON, `null` included; only absence is an error.
                    body: match p.fields.and_then(|f| f.get("body")) {
                        Some(body) => {
                            let mut text = String::new();
                            json::write(&mut text, body);
                            RawJson::trusted(text)
                        }
                        None => return Err(p.invalid("missing field", "body")),
                    },
                }),
            })
        })
    }

    /// Encodes the frame as JSON text.
    pub fn encode(&self) -> String {
        match self {
            Self::Auth(auth) => frame(
                "auth",
                &[
                    ("token", auth.token.as_ref().map(Secret::expose).into()),
                    ("last_seq", auth.last_seq.into()),
                ],
            ),
            Self::Ping(ping) => frame("ping", &[("seq", Field::U64(ping.seq))]),
            Self::Send(send) => frame(
                "send",
                &[
                    ("id", Field::Str(&send.id)),
                    ("body", Field::Raw(send.body.as_str())),
                ],
            ),
        }
    }
}

impl ServerMessage {
    /// The `type` names of server frames.
    pub const TYPES: [&'static str; 7] = [
        "auth_success",
        "auth_error",
        "pong",
        "notification",
        "ack",
        "nack",
        "error",
    ];

    /// Decodes a text frame, accepting at most [`crate::MAX_FRAME_BYTES`].
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        Self::decode_with_limit(text, crate::MAX_FRAME_BYTES)
    }

    /// Decodes a text frame, accepting at most `limit` bytes.
    pub fn decode_with_limit(text: &str, limit: usize) -> Result<Self, DecodeError> {
        decode(text, limit, &Self::TYPES, |p| {
            Ok(match p.kind {
                "auth_success" => Self::AuthSuccess(AuthSuccess {
                    user_id: p.string("user_id")?,
                    authenticated_at: p.string("authenticated_at")?,
                    expires_at: p.string("expires_at")?,
                    max_frame: p.opt_u64("max_frame")?,
                }),
                "auth_error" => Self::AuthError(AuthError {
                    code: AuthErrorCode::from(p.string("code")?),
                    message: p.opt_string("message")?.unwrap_or_default(),
                }),
                "pong" => Self::Pong(Pong { seq: p.u64("seq")? }),
                "notification" => Self::Notification(Notification {
                    seq: p.u64("seq")?,
                    id: p.string("id")?,
                    title: p.string("title")?,
                    body: p.string("body")?,
                    created_at: p.string("created_at")?,
                }),
                "ack" => Self::Ack(Ack {
                    id: p.string("id")?,
                }),
                "nack" => Self::Nack(Nack {
                    id: p.string("id")?,
                    code: NackCode::from(p.string("code")?),
                    message: p.opt_string("message")?.unwrap_or_default(),
                }),
                _ => Self::Error(ErrorPayload {
                    code: p.string("code")?,
                    message: p.opt_string("message")?.unwrap_or_default(),
                }),
            })
        })
    }

    /// Encodes the frame as JSON text.
    pub fn encode(&self) -> String {
        match self {
            Self::AuthSuccess(a) => {
                let fields = [
                    ("user_id", Field::Str(&a.user_id)),
                    ("authenticated_at", Field::Str(&a.authenticated_at)),
                    ("expires_at", Field::Str(&a.expires_at)),
                    ("max_frame", a.max_frame.into()),
                ];
                // `max_frame` is optional on the wire: left out when unset.
                let len = if a.max_frame.is_some() { 4 } else { 3 };
                frame("auth_success", &fields[..len])
            }
            Self::AuthError(e) => frame(
                "auth_error",
                &[
                    ("code", Field::Str(e.code.as_str())),
                    ("message", Field::Str(&e.message)),
                ],
            ),
            Self::Pong(pong) => frame("pong", &[("seq", Field::U64(pong.seq))]),
            Self::Notification(n) => frame(
                "notification",
                &[
                    ("seq", Field::U64(n.seq)),
                    ("id", Field::Str(&n.id)),
                    ("title", Field::Str(&n.title)),
                    ("body", Field::Str(&n.body)),
                    ("created_at", Field::Str(&n.created_at)),
                ],
            ),
            Self::Ack(ack) => frame("ack", &[("id", Field::Str(&ack.id))]),
            Self::Nack(nack) => frame(
                "nack",
                &[
                    ("id", Field::Str(&nack.id)),
                    ("code", Field::Str(nack.code.as_str())),
                    ("message", Field::Str(&nack.message)),
                ],
            ),
            Self::Error(e) => frame(
                "error",
                &[
                    ("code", Field::Str(&e.code)),
                    ("message", Field::Str(&e.message)),
                ],
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_frame_matches_the_contract() {
        let auth = ClientMessage::Auth(Auth {
            token: Some(Secret::new("t0k")),
            last_seq: None,
        });
        assert_eq!(
            auth.encode(),
            r#"{"type":"auth","payload":{"token":"t0k","last_seq":null}}"#
        );
        let with_seq = ClientMessage::decode(
            r#"{"type":"auth","payload":{"access_token":"x","last_seq":41}}"#,
        )
        .unwrap();
        assert_eq!(
            with_seq,
            ClientMessage::Auth(Auth {
                token: Some(Secret::new("x")),
                last_seq: Some(41)
            })
        );
    }

    #[test]
    fn server_frames_round_trip() {
        let frames = [
            r#"{"type":"auth_success","payload":{"user_id":"u","authenticated_at":"2026-01-01T00:00:00Z","expires_at":"2026-01-01T00:15:00Z"}}"#,
            r#"{"type":"auth_error","payload":{"code":"expired_token","message":"m"}}"#,
            r#"{"type":"auth_error","payload":{"code":"brand_new","message":"m"}}"#,
            r#"{"type":"pong","payload":{"seq":3}}"#,
            r#"{"type":"notification","payload":{"seq":1,"id":"i","title":"t","body":"b","created_at":"c"}}"#,
            r#"{"type":"auth_success","payload":{"user_id":"u","authenticated_at":"2026-01-01T00:00:00Z","expires_at":"2026-01-01T00:15:00Z","max_frame":131072}}"#,
            r#"{"type":"ack","payload":{"id":"a"}}"#,
            r#"{"type":"nack","payload":{"id":"a","code":"malformed_body","message":"out of range"}}"#,
            r#"{"type":"nack","payload":{"id":"a","code":"rate_limited","message":""}}"#,
            r#"{"type":"nack","payload":{"id":"a","code":"brand_new","message":"m"}}"#,
            r#"{"type":"error","payload":{"code":"rate_limited","message":"slow down"}}"#,
        ];
        for frame in frames {
            let decoded = ServerMessage::decode(frame).unwrap();
            assert_eq!(decoded.encode(), frame);
        }
    }

    #[test]
    fn auth_error_codes_parse() {
        let m =
            ServerMessage::decode(r#"{"type":"auth_error","payload":{"code":"revoked"}}"#).unwrap();
        assert!(matches!(
            m,
            ServerMessage::AuthError(AuthError {
                code: AuthErrorCode::Revoked,
                ..
            })
        ));
    }

    #[test]
    fn nack_codes_and_max_frame_parse() {
        let nack = |code: &str| {
            let text = format!(r#"{{"type":"nack","payload":{{"id":"m1","code":"{code}"}}}}"#);
            match ServerMessage::decode(&text).unwrap() {
                ServerMessage::Nack(nack) => {
                    assert_eq!(nack.id, "m1");
                    assert_eq!(nack.message, "");
                    nack.code
                }
                other => panic!("expected a nack, got {other:?}"),
            }
        };
        assert_eq!(nack("malformed_body"), NackCode::MalformedBody);
        assert_eq!(nack("forbidden"), NackCode::Forbidden);
        assert_eq!(nack("not_subscribed"), NackCode::NotSubscribed);
        assert_eq!(nack("rate_limited"), NackCode::RateLimited);
        assert_eq!(nack("later"), NackCode::Other("later".into()));
        assert_eq!(String::from(NackCode::RateLimited), "rate_limited");
        assert_eq!(
            serde_json::to_string(&NackCode::MalformedBody).unwrap(),
            r#""malformed_body""#
        );
        assert!(matches!(
            ServerMessage::decode(r#"{"type":"nack","payload":{"code":"forbidden"}}"#),
            Err(DecodeError::InvalidPayload { .. })
        ));

        let ok = r#"{"type":"auth_success","payload":{"user_id":"u","authenticated_at":"a","expires_at":"b"}}"#;
        let ServerMessage::AuthSuccess(ok) = ServerMessage::decode(ok).unwrap() else {
            panic!("expected auth_success");
        };
        assert_eq!(ok.max_frame, None);
        let big = r#"{"type":"auth_success","payload":{"user_id":"u","authenticated_at":"a","expires_at":"b","max_frame":1048576}}"#;
        let ServerMessage::AuthSuccess(big) = ServerMessage::decode(big).unwrap() else {
            panic!("expected auth_success");
        };
        assert_eq!(big.max_frame, Some(1 << 20));
        assert!(!crate::close_code::is_final(
            crate::close_code::TRY_AGAIN_LATER
        ));
        // serde (used by servers that embed payloads) also leaves it out when unset.
        assert!(!serde_json::to_string(&ok).unwrap().contains("max_frame"));
        assert!(
            ServerMessage::decode(
                r#"{"type":"auth_success","payload":{"user_id":"u","authenticated_at":"a","expires_at":"b","max_frame":-1}}"#
            )
            .is_err()
        );
    }

    #[test]
    fn bad_frames_are_told_apart() {
        assert!(matches!(
            ServerMessage::decode("not json"),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            ServerMessage::decode("[1,2]"),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            ServerMessage::decode(r#"{"payload":{}}"#),
            Err(DecodeError::Malformed(_))
        ));
        assert_eq!(
            ServerMessage::decode(r#"{"type":"pong","payload":{"seq":"x"}}"#)
                .unwrap_err()
                .code(),
            "malformed_frame"
        );
        assert_eq!(
            ServerMessage::decode(r#"{"type":"wat"}"#),
            Err(DecodeError::UnknownType("wat".into()))
        );
        let big = format!(
            r#"{{"type":"pong","payload":{{"seq":1,"pad":"{}"}}}}"#,
            "x".repeat(100)
        );
        assert_eq!(
            ServerMessage::decode_with_limit(&big, 50),
            Err(DecodeError::TooLarge {
                size: big.len(),
                limit: 50
            })
        );
    }

    #[test]
    fn decode_errors_never_echo_string_values() {
        for frame in [
            r#""eyJsecret""#,
            r#"{"type":"auth","payload":"eyJsecret"}"#,
            r#"{"type":"auth","payload":{"token":{"x":"eyJsecret"},"last_seq":"eyJsecret"}}"#,
        ] {
            let err = ClientMessage::decode(frame).unwrap_err();
            assert!(!err.to_string().contains("eyJsecret"), "{err}");
            assert!(!format!("{err:?}").contains("eyJsecret"), "{err:?}");
        }
    }

    #[test]
    fn long_unknown_types_are_truncated() {
        let frame = format!(r#"{{"type":"{}"}}"#, "é".repeat(100));
        let DecodeError::UnknownType(kind) = ServerMessage::decode(&frame).unwrap_err() else {
            panic!("expected UnknownType");
        };
        assert!(kind.len() <= 67);
    }
}
