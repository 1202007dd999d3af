//! Socket frames: `{"type": "...", "payload": {...}}`, encoded and decoded
//! with serde derive and serde_json.
//!
//! Decoding reads the frame once: the `type` picks the payload's struct and
//! serde_json fills it straight from the text (a payload that comes before
//! the `type` is kept as raw text and read when the type is known). Bodies
//! and topic data stay [`RawJson`], the exact bytes that were sent.

use crate::topics::{
    Presence, Publish, Subscribe, SubscribeError, Subscribed, TopicMessage, Unsubscribe,
    Unsubscribed,
};
use crate::{Position, RawJson, Secret};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::fmt;

/// Declares a wire code: an enum of the codes this version knows plus
/// `Other(String)` for any other, kept verbatim, (de)serialized as its string.
macro_rules! wire_code {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(from = "String", into = "String")]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A code this version does not know, kept verbatim.
            Other(String),
        }

        impl $name {
            /// The code as it appears on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)*
                    Self::Other(other) => other,
                }
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                match value.as_str() {
                    $($wire => Self::$variant,)*
                    _ => Self::Other(value),
                }
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                match value {
                    $name::Other(other) => other,
                    known => known.as_str().to_owned(),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use wire_code;

/// Reads a member whose `null` means the same as its absence (a third-party
/// server may write `"message": null`): the type's default.
pub(crate) fn or_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

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
    /// Subscribe to a topic; answered by [`ServerMessage::Subscribed`] or
    /// [`ServerMessage::SubscribeError`].
    Subscribe(Subscribe),
    /// End a subscription; answered by [`ServerMessage::Unsubscribed`].
    Unsubscribe(Unsubscribe),
    /// Publish to a topic; answered by [`ServerMessage::Ack`] (with the
    /// offset) or [`ServerMessage::Nack`].
    Publish(Publish),
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
    /// A [`ClientMessage::Send`] or [`ClientMessage::Publish`] with this id
    /// was processed (at most once).
    Ack(Ack),
    /// A [`ClientMessage::Send`] or [`ClientMessage::Publish`] with this id
    /// was refused: its body could not be taken exactly as sent, or the
    /// server will not apply it.
    Nack(Nack),
    /// An error that does not end the session.
    Error(ErrorPayload),
    /// A subscription is live.
    Subscribed(Subscribed),
    /// A subscription was refused.
    SubscribeError(SubscribeError),
    /// A subscription ended.
    Unsubscribed(Unsubscribed),
    /// A message of a subscribed topic.
    Message(TopicMessage),
    /// Users joined or left a subscribed topic.
    Presence(Presence),
    /// A frame of a type the contract does not define: the application's
    /// own (section 9), handed to the app, never an error.
    App(AppFrame),
}

/// A frame whose `type` the contract does not define: the application's own
/// (apps use dotted names such as `chat.typing`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppFrame {
    /// The frame's `type`.
    pub kind: String,
    /// The frame's `payload` as sent (`null` when absent).
    pub payload: RawJson,
}

/// Payload of the `auth` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auth {
    /// The access token. Servers also accept it as `access_token`.
    #[serde(default, alias = "access_token")]
    pub token: Option<Secret>,
    /// The highest notification `seq` the client has seen; the server replays
    /// everything after it. `null` on a first connection.
    #[serde(default)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    /// Client-chosen unique id (a UUID); the server acks it and applies it at most once.
    pub id: String,
    /// Any JSON value (`null` included), kept as the exact text sent.
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
    #[serde(default, deserialize_with = "crate::frames::or_default")]
    pub message: String,
}

wire_code! {
    /// The `code` of an `auth_error` frame.
    AuthErrorCode {
        /// No token in the query nor in the `auth` frame.
        MissingToken = "missing_token",
        /// The token's signature or shape is wrong.
        InvalidToken = "invalid_token",
        /// The token's `exp` has passed.
        ExpiredToken = "expired_token",
        /// The session was revoked (logout).
        Revoked = "revoked",
        /// A frame other than `auth` arrived before authentication.
        NotAuthenticated = "not_authenticated",
        /// No `auth` frame arrived within the server's auth timeout.
        AuthTimeout = "auth_timeout",
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
    /// The id of the acknowledged `send` or `publish`.
    pub id: String,
    /// For a `publish`: its topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// For a `publish`: the offset the message got in its topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

/// Payload of the `nack` frame: the `send` or `publish` with this id was not
/// applied, and will not be (except for [`NackCode::RateLimited`] and
/// [`NackCode::NotSubscribed`], which the client resends later).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nack {
    /// The id of the refused `send` or `publish`.
    pub id: String,
    /// Machine-readable reason.
    pub code: NackCode,
    /// Human-readable text.
    #[serde(default, deserialize_with = "crate::frames::or_default")]
    pub message: String,
}

wire_code! {
    /// The `code` of a `nack` frame.
    NackCode {
        /// The body could not be taken exactly as sent (a number out of range,
        /// too deep, too large). Final.
        MalformedBody = "malformed_body",
        /// The user may not send or publish this. Final.
        Forbidden = "forbidden",
        /// A publish to a topic the socket is not subscribed to (now); the
        /// client resends after the topic's next `subscribed`.
        NotSubscribed = "not_subscribed",
        /// Too many messages; the client resends after a backoff.
        RateLimited = "rate_limited",
    }
}

/// Payload of the `error` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorPayload {
    /// Machine-readable code, e.g. `malformed_frame`, `frame_too_large`, `rate_limited`.
    pub code: String,
    /// Human-readable text.
    #[serde(default, deserialize_with = "crate::frames::or_default")]
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
    /// A well-formed client frame whose `type` the contract does not define
    /// (server frames of such types decode to [`ServerMessage::App`]).
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
    /// A `subscribe` with a string `topic` whose `since` or `last` is
    /// malformed: the server answers `subscribe_error` `bad_request`.
    #[error("invalid `since` or `last` in the subscribe to `{topic}`")]
    InvalidSubscribe {
        /// The topic the frame named.
        topic: String,
    },
}

impl DecodeError {
    /// The `error` frame code that reports this error to the peer.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => error_code::FRAME_TOO_LARGE,
            Self::UnknownType(_) => error_code::UNKNOWN_TYPE,
            Self::Malformed(_) | Self::InvalidPayload { .. } | Self::InvalidSubscribe { .. } => {
                error_code::MALFORMED_FRAME
            }
        }
    }
}

/// What serde_json said, without the values it quotes: its messages echo
/// the offending string ("invalid type: string \"eyJ...\""), and that string
/// could be a token.
fn describe(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match error.classify() {
        Category::Io => "unreadable".to_owned(),
        Category::Syntax => "not valid JSON".to_owned(),
        Category::Eof => "truncated JSON".to_owned(),
        Category::Data => sanitize(&error.to_string()),
    };
    match error.column() {
        0 => what,
        column => format!("{what} at column {column}"),
    }
}

/// The part of a serde error text that names no input: a missing field is
/// one of this crate's names, and what was expected is this crate's type,
/// but what was found may be any string of the frame.
fn sanitize(text: &str) -> String {
    let text = text.split(" at line").next().unwrap_or_default();
    if text.starts_with("missing field") {
        text.to_owned()
    } else if let Some((_, expected)) = text.split_once(", expected ") {
        format!("unexpected value, expected {expected}")
    } else {
        "unexpected value".to_owned()
    }
}

/// The frame types of one direction: how each payload is read.
trait Frames: Sized {
    /// The `type` names this side knows.
    const TYPES: &'static [&'static str];

    /// Reads the payload of a known `kind` (`TYPES` contains it). A failure
    /// that is more than a malformed payload is left in `failure`.
    fn payload<'de, D: Deserializer<'de>>(
        kind: &str,
        payload: D,
        failure: &mut Option<DecodeError>,
    ) -> Result<Self, D::Error>;

    /// The frame for a `type` this side does not know.
    fn unknown(kind: &str, payload: Option<RawJson>) -> Result<Self, DecodeError>;
}

/// Serializes `{"type":"<kind>","payload":<payload>}`.
fn frame<S: Serializer, P: Serialize + ?Sized>(
    serializer: S,
    kind: &str,
    payload: &P,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(2))?;
    map.serialize_entry("type", kind)?;
    map.serialize_entry("payload", payload)?;
    map.end()
}

/// Writes a frame as JSON text.
fn encode(frame: &impl Serialize) -> String {
    // Payloads are strings, integers, booleans and raw JSON, which
    // serde_json always serializes.
    serde_json::to_string(frame).expect("frames serialize")
}

/// Reads a frame of `F` from `text`, in one pass over it.
fn decode<F: Frames>(text: &str, limit: usize) -> Result<F, DecodeError> {
    if text.len() > limit {
        return Err(DecodeError::TooLarge {
            size: text.len(),
            limit,
        });
    }
    let mut failure = None;
    let mut reader = serde_json::Deserializer::from_str(text);
    let read = FrameSeed::<F> {
        failure: &mut failure,
        frames: std::marker::PhantomData,
    }
    .deserialize(&mut reader)
    .and_then(|frame| reader.end().map(|()| frame));
    match (read, failure) {
        (_, Some(failure)) => Err(failure),
        (Ok(frame), None) => Ok(frame),
        (Err(error), None) => Err(DecodeError::Malformed(describe(&error))),
    }
}

/// Reads one frame; errors that are not JSON syntax are left in `failure`,
/// so they keep their kind through serde's error type.
struct FrameSeed<'f, F> {
    failure: &'f mut Option<DecodeError>,
    frames: std::marker::PhantomData<F>,
}

impl<'de, F: Frames> DeserializeSeed<'de> for FrameSeed<'_, F> {
    type Value = F;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<F, D::Error> {
        deserializer.deserialize_map(self)
    }
}

/// The members of a frame object.
enum Member {
    Type,
    Payload,
    Other,
}

impl<'de> Deserialize<'de> for Member {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl Visitor<'_> for Name {
            type Value = Member;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Member, E> {
                Ok(match name {
                    "type" => Member::Type,
                    "payload" => Member::Payload,
                    _ => Member::Other,
                })
            }
        }
        deserializer.deserialize_identifier(Name)
    }
}

/// A frame's `type`, borrowed from the text when it has no escapes.
struct Kind<'de>(std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for Kind<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl<'de> Visitor<'de> for Text {
            type Value = Kind<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string `type`")
            }
            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Kind<'de>, E> {
                Ok(Kind(text.into()))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Kind<'de>, E> {
                Ok(Kind(text.to_owned().into()))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

/// Reads the payload of a known type straight into its struct; `null` is an
/// empty payload (every field absent).
struct PayloadSeed<'k, 'f, F> {
    kind: &'k str,
    failure: &'f mut Option<DecodeError>,
    frames: std::marker::PhantomData<F>,
}

impl<'de, F: Frames> DeserializeSeed<'de> for PayloadSeed<'_, '_, F> {
    type Value = F;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<F, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, F: Frames> Visitor<'de> for PayloadSeed<'_, '_, F> {
    type Value = F;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the payload of a `{}` frame", self.kind)
    }

    fn visit_none<E: de::Error>(self) -> Result<F, E> {
        empty_payload(self.kind, self.failure).map_err(|e| E::custom(describe(&e)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<F, E> {
        self.visit_none()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<F, D::Error> {
        F::payload(self.kind, deserializer, self.failure)
    }
}

/// The payload of a `kind` frame that has none (or `null`): every field
/// absent.
fn empty_payload<F: Frames>(
    kind: &str,
    failure: &mut Option<DecodeError>,
) -> Result<F, serde_json::Error> {
    F::payload(kind, &mut serde_json::Deserializer::from_str("{}"), failure)
}

impl<'de, F: Frames> Visitor<'de> for FrameSeed<'_, F> {
    type Value = F;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with a string `type`")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<F, A::Error> {
        let mut kind: Option<Kind<'de>> = None;
        let mut early_payload: Option<Box<RawValue>> = None;
        let mut frame = None;
        while let Some(member) = map.next_key::<Member>()? {
            match member {
                Member::Type if kind.is_none() => {
                    let name = map.next_value::<Kind<'de>>()?;
                    if let Some(raw) = early_payload.take() {
                        frame = Some(self.read_raw(&name.0, Some(raw))?);
                    }
                    kind = Some(name);
                }
                Member::Payload if frame.is_none() && early_payload.is_none() => match &kind {
                    Some(name) if F::TYPES.contains(&&*name.0) => {
                        let seed = PayloadSeed::<F> {
                            kind: &name.0,
                            failure: &mut *self.failure,
                            frames: std::marker::PhantomData,
                        };
                        match map.next_value_seed(seed) {
                            Ok(read) => frame = Some(read),
                            Err(error) => {
                                if self.failure.is_none() {
                                    *self.failure = Some(DecodeError::InvalidPayload {
                                        kind: name.0.to_string(),
                                        reason: sanitize(&error.to_string()),
                                    });
                                }
                                return Err(error);
                            }
                        }
                    }
                    Some(name) => {
                        let raw = map.next_value::<Box<RawValue>>()?;
                        frame = Some(self.read_raw(&name.0, Some(raw))?);
                    }
                    None => early_payload = Some(map.next_value()?),
                },
                Member::Type | Member::Payload => {
                    return Err(de::Error::custom("a `type` or `payload` member twice"));
                }
                Member::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        match (frame, kind) {
            (Some(frame), _) => Ok(frame),
            (None, Some(name)) => self.read_raw(&name.0, early_payload),
            (None, None) => Err(de::Error::custom("expected an object with a string `type`")),
        }
    }
}

impl<F: Frames> FrameSeed<'_, F> {
    /// Reads a frame whose payload is raw text (or absent): an unknown type,
    /// or a payload that came before the `type`.
    fn read_raw<E: de::Error>(&mut self, kind: &str, raw: Option<Box<RawValue>>) -> Result<F, E> {
        let result = if F::TYPES.contains(&kind) {
            let read = match &raw {
                Some(raw) => F::payload(
                    kind,
                    &mut serde_json::Deserializer::from_str(raw.get()),
                    self.failure,
                ),
                None => empty_payload(kind, self.failure),
            };
            read.map_err(|error| {
                self.failure.take().unwrap_or(DecodeError::InvalidPayload {
                    kind: kind.to_owned(),
                    reason: match raw {
                        Some(_) => describe(&error),
                        None => sanitize(&error.to_string()),
                    },
                })
            })
        } else {
            F::unknown(kind, raw.map(RawJson::from))
        };
        result.map_err(|failure| {
            let message = failure.to_string();
            *self.failure = Some(failure);
            E::custom(message)
        })
    }
}

/// The longest unknown `type` an error repeats, in bytes.
const UNKNOWN_TYPE_SHOWN: usize = 64;

/// `kind`, cut to [`UNKNOWN_TYPE_SHOWN`] bytes on a character boundary.
fn shorten(kind: &str) -> String {
    let mut end = kind.len().min(UNKNOWN_TYPE_SHOWN);
    while !kind.is_char_boundary(end) {
        end -= 1;
    }
    let mut shown = kind[..end].to_owned();
    if end < kind.len() {
        shown.push('…');
    }
    shown
}

/// The `subscribe` payload as read first: `since` and `last` are checked
/// apart from the topic, so a malformed one is answered for its topic.
#[derive(Deserialize)]
struct SubscribeWire<'a> {
    topic: String,
    #[serde(default, borrow)]
    since: Option<&'a RawValue>,
    #[serde(default, borrow)]
    last: Option<&'a RawValue>,
}

impl SubscribeWire<'_> {
    fn read(self) -> Result<Subscribe, DecodeError> {
        fn field<T: serde::de::DeserializeOwned>(raw: Option<&RawValue>) -> Option<Option<T>> {
            raw.map_or(Some(None), |raw| serde_json::from_str(raw.get()).ok())
        }
        let (since, last) = match (field::<Position>(self.since), field::<u32>(self.last)) {
            (Some(since), Some(last)) => (since, last),
            _ => return Err(DecodeError::InvalidSubscribe { topic: self.topic }),
        };
        Ok(Subscribe {
            topic: self.topic,
            since,
            last,
        })
    }
}

impl Frames for ClientMessage {
    const TYPES: &'static [&'static str] = &[
        "auth",
        "ping",
        "send",
        "subscribe",
        "unsubscribe",
        "publish",
    ];

    fn payload<'de, D: Deserializer<'de>>(
        kind: &str,
        payload: D,
        failure: &mut Option<DecodeError>,
    ) -> Result<Self, D::Error> {
        Ok(match kind {
            "auth" => Self::Auth(Deserialize::deserialize(payload)?),
            "ping" => Self::Ping(Deserialize::deserialize(payload)?),
            "send" => Self::Send(Deserialize::deserialize(payload)?),
            "subscribe" => match SubscribeWire::deserialize(payload)?.read() {
                Ok(subscribe) => Self::Subscribe(subscribe),
                Err(error) => {
                    let message = error.to_string();
                    *failure = Some(error);
                    return Err(de::Error::custom(message));
                }
            },
            "unsubscribe" => Self::Unsubscribe(Deserialize::deserialize(payload)?),
            _ => Self::Publish(Deserialize::deserialize(payload)?),
        })
    }

    fn unknown(kind: &str, _payload: Option<RawJson>) -> Result<Self, DecodeError> {
        Err(DecodeError::UnknownType(shorten(kind)))
    }
}

impl ClientMessage {
    /// The `type` names of client frames.
    pub const TYPES: &'static [&'static str] = <Self as Frames>::TYPES;

    /// Decodes a text frame, accepting at most [`crate::MAX_FRAME_BYTES`].
    ///
    /// # Errors
    /// [`DecodeError`] when the frame is too large, not a JSON object with a
    /// string `type`, of an unknown type, or its payload does not fit.
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        Self::decode_with_limit(text, crate::MAX_FRAME_BYTES)
    }

    /// Decodes a text frame, accepting at most `limit` bytes.
    ///
    /// # Errors
    /// As [`ClientMessage::decode`].
    pub fn decode_with_limit(text: &str, limit: usize) -> Result<Self, DecodeError> {
        decode(text, limit)
    }

    /// Encodes the frame as JSON text.
    pub fn encode(&self) -> String {
        encode(self)
    }
}

impl Serialize for ClientMessage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Auth(p) => frame(serializer, "auth", p),
            Self::Ping(p) => frame(serializer, "ping", p),
            Self::Send(p) => frame(serializer, "send", p),
            Self::Subscribe(p) => frame(serializer, "subscribe", p),
            Self::Unsubscribe(p) => frame(serializer, "unsubscribe", p),
            Self::Publish(p) => frame(serializer, "publish", p),
        }
    }
}

impl Frames for ServerMessage {
    const TYPES: &'static [&'static str] = &[
        "auth_success",
        "auth_error",
        "pong",
        "notification",
        "ack",
        "nack",
        "error",
        "subscribed",
        "subscribe_error",
        "unsubscribed",
        "message",
        "presence",
    ];

    fn payload<'de, D: Deserializer<'de>>(
        kind: &str,
        payload: D,
        _failure: &mut Option<DecodeError>,
    ) -> Result<Self, D::Error> {
        Ok(match kind {
            "auth_success" => Self::AuthSuccess(Deserialize::deserialize(payload)?),
            "auth_error" => Self::AuthError(Deserialize::deserialize(payload)?),
            "pong" => Self::Pong(Deserialize::deserialize(payload)?),
            "notification" => Self::Notification(Deserialize::deserialize(payload)?),
            "ack" => Self::Ack(Deserialize::deserialize(payload)?),
            "nack" => Self::Nack(Deserialize::deserialize(payload)?),
            "error" => Self::Error(Deserialize::deserialize(payload)?),
            "subscribed" => Self::Subscribed(Deserialize::deserialize(payload)?),
            "subscribe_error" => Self::SubscribeError(Deserialize::deserialize(payload)?),
            "unsubscribed" => Self::Unsubscribed(Deserialize::deserialize(payload)?),
            "message" => Self::Message(Deserialize::deserialize(payload)?),
            _ => Self::Presence(Deserialize::deserialize(payload)?),
        })
    }

    fn unknown(kind: &str, payload: Option<RawJson>) -> Result<Self, DecodeError> {
        Ok(Self::App(AppFrame {
            kind: kind.to_owned(),
            payload: payload.unwrap_or_else(RawJson::null),
        }))
    }
}

impl ServerMessage {
    /// The `type` names of server frames this contract defines (any other
    /// decodes to [`ServerMessage::App`]).
    pub const TYPES: &'static [&'static str] = <Self as Frames>::TYPES;

    /// Decodes a text frame, accepting at most [`crate::MAX_FRAME_BYTES`].
    ///
    /// # Errors
    /// [`DecodeError`] when the frame is too large, not a JSON object with a
    /// string `type`, or the payload of a known type does not fit.
    pub fn decode(text: &str) -> Result<Self, DecodeError> {
        Self::decode_with_limit(text, crate::MAX_FRAME_BYTES)
    }

    /// Decodes a text frame, accepting at most `limit` bytes.
    ///
    /// # Errors
    /// As [`ServerMessage::decode`].
    pub fn decode_with_limit(text: &str, limit: usize) -> Result<Self, DecodeError> {
        decode(text, limit)
    }

    /// Encodes the frame as JSON text.
    pub fn encode(&self) -> String {
        encode(self)
    }
}

impl Serialize for ServerMessage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::AuthSuccess(p) => frame(serializer, "auth_success", p),
            Self::AuthError(p) => frame(serializer, "auth_error", p),
            Self::Pong(p) => frame(serializer, "pong", p),
            Self::Notification(p) => frame(serializer, "notification", p),
            Self::Ack(p) => frame(serializer, "ack", p),
            Self::Nack(p) => frame(serializer, "nack", p),
            Self::Error(p) => frame(serializer, "error", p),
            Self::Subscribed(p) => frame(serializer, "subscribed", p),
            Self::SubscribeError(p) => frame(serializer, "subscribe_error", p),
            Self::Unsubscribed(p) => frame(serializer, "unsubscribed", p),
            Self::Message(p) => frame(serializer, "message", p),
            Self::Presence(p) => frame(serializer, "presence", p),
            Self::App(app) => frame(serializer, &app.kind, &app.payload),
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
            ClientMessage::decode(r#"{"type":"wat"}"#),
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
        let DecodeError::UnknownType(kind) = ClientMessage::decode(&frame).unwrap_err() else {
            panic!("expected UnknownType");
        };
        assert!(kind.len() <= 67);
    }
}
