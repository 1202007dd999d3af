//! The topic frames of the contract ("Topics" in `shared/PROTOCOL.md`) as the
//! server writes and reads them, with the names of `tether-protocol`'s
//! topic types.

use axum::extract::ws::Utf8Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Longest topic name, in bytes.
pub const MAX_TOPIC_BYTES: usize = 128;
/// Most topics one socket may be subscribed to at once.
pub const MAX_TOPICS_PER_SOCKET: usize = 100;
/// Largest `last` of a `subscribe`.
pub const MAX_LAST: u32 = 1000;
/// Messages each topic retains at least.
pub const TOPIC_RETENTION: usize = 1000;

/// Whether `name` is a topic name: `<kind>:<id>`, a non-empty kind and a
/// non-empty id of ASCII letters, digits, `-`, `_` and `.`, one `:` between
/// them, at most [`MAX_TOPIC_BYTES`].
pub fn is_valid_topic(name: &str) -> bool {
    let part = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    name.len() <= MAX_TOPIC_BYTES
        && name
            .split_once(':')
            .is_some_and(|(kind, id)| part(kind) && part(id))
}

/// A user as the wire shows them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct User {
    /// The account id (UUID).
    pub user_id: String,
    /// The login name.
    pub username: String,
}

/// A client's place in a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The topic's epoch.
    pub epoch: String,
    /// The last applied offset.
    pub offset: u64,
}

/// Payload of `subscribed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subscribed {
    /// The topic.
    pub topic: String,
    /// Its epoch.
    pub epoch: String,
    /// Its latest offset now.
    pub offset: u64,
    /// Offset of the first message that follows.
    pub from: u64,
    /// Whether `since` was honoured; only when it was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovered: Option<bool>,
    /// The users subscribed now, the subscriber included.
    pub presence: Vec<User>,
}

/// The `code` of a `subscribe_error` the reference server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscribeErrorCode {
    /// The user may not subscribe (not a member). Final.
    Forbidden,
    /// No such topic. Final.
    NotFound,
    /// Not a topic name. Final.
    InvalidTopic,
    /// A malformed `since` or `last`. Final.
    BadRequest,
    /// Over [`MAX_TOPICS_PER_SOCKET`] topics on the socket. Final.
    TooManyTopics,
}

impl SubscribeErrorCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::InvalidTopic => "invalid_topic",
            Self::BadRequest => "bad_request",
            Self::TooManyTopics => "too_many_topics",
        }
    }
}

/// Payload of `subscribe_error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscribeError {
    /// The topic.
    pub topic: String,
    /// Why.
    #[serde(serialize_with = "code_str")]
    pub code: SubscribeErrorCode,
    /// Human text.
    pub message: String,
    /// Whether the client retries (never, for these codes).
    pub retry: bool,
}

fn code_str<S: serde::Serializer>(code: &SubscribeErrorCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(code.as_str())
}

/// The `code` of an `unsubscribed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnsubscribedCode {
    /// Answer to the client's `unsubscribe`.
    Unsubscribed,
    /// The user lost permission (removed from the room). Final.
    Removed,
    /// The topic's history was dropped; carries the new epoch.
    Reset,
    /// The socket re-authenticated as another user.
    UserChanged,
}

impl UnsubscribedCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unsubscribed => "unsubscribed",
            Self::Removed => "removed",
            Self::Reset => "reset",
            Self::UserChanged => "user_changed",
        }
    }
}

/// Payload of `unsubscribed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unsubscribed {
    /// The topic.
    pub topic: String,
    /// Why.
    #[serde(serialize_with = "unsubscribed_str")]
    pub code: UnsubscribedCode,
    /// Human text.
    pub message: String,
    /// The new epoch (only with [`UnsubscribedCode::Reset`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
}

fn unsubscribed_str<S: serde::Serializer>(
    code: &UnsubscribedCode,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(code.as_str())
}

/// Payload of `message`.
#[derive(Debug, Clone, Serialize)]
pub struct TopicMessage<'a> {
    /// The topic.
    pub topic: &'a str,
    /// Its offset in the topic.
    pub offset: u64,
    /// The event name.
    pub event: &'a str,
    /// The data, exactly the JSON text that was published.
    pub data: &'a RawValue,
    /// The publisher; `None` for the server itself.
    pub from: Option<&'a User>,
    /// Server-chosen id (UUID).
    pub id: String,
    /// When it was published, RFC 3339.
    pub created_at: String,
}

/// Payload of `presence`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Presence {
    /// The topic.
    pub topic: String,
    /// Users who joined.
    pub joined: Vec<User>,
    /// Users who left.
    pub left: Vec<User>,
}

/// Payload of a topic publish's `ack`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicAck {
    /// The publish id.
    pub id: String,
    /// The topic.
    pub topic: String,
    /// The offset the message got.
    pub offset: u64,
}

/// Encodes `{"type": kind, "payload": payload}`.
pub fn encode<T: Serialize>(kind: &str, payload: &T) -> Utf8Bytes {
    #[derive(Serialize)]
    struct Frame<'a, T> {
        #[serde(rename = "type")]
        kind: &'a str,
        payload: &'a T,
    }
    let text = serde_json::to_string(&Frame { kind, payload })
        .expect("topic frames serialize (string keys, no floats)");
    Utf8Bytes::from(text)
}

/// A `subscribe` payload as read: `since` and `last` are checked after the
/// topic so that a malformed one can be answered for that topic.
#[derive(Debug, Deserialize)]
pub struct SubscribeFrame {
    /// The payload.
    pub payload: SubscribePayload,
}

/// See [`SubscribeFrame`].
#[derive(Debug, Deserialize)]
pub struct SubscribePayload {
    /// The topic.
    pub topic: String,
    /// `{"epoch","offset"}`, null or absent.
    #[serde(default)]
    pub since: Option<Box<RawValue>>,
    /// `0..=1000`, null or absent.
    #[serde(default)]
    pub last: Option<Box<RawValue>>,
}

/// A `subscribe` whose `since` and `last` are well-formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// The topic.
    pub topic: String,
    /// Where the client is, if anywhere.
    pub since: Option<Position>,
    /// How many retained messages to replay without (or past) `since`.
    pub last: u32,
}

impl SubscribePayload {
    /// Checks `since` and `last`; `Err` says what is malformed.
    pub fn check(self) -> Result<Subscribe, (String, &'static str)> {
        let since = match self.since.as_deref().map(RawValue::get) {
            None | Some("null") => None,
            Some(text) => match serde_json::from_str::<Position>(text) {
                Ok(position) => Some(position),
                Err(_) => {
                    return Err((
                        self.topic,
                        "`since` must be null or {\"epoch\": <string>, \"offset\": <integer >= 0>}",
                    ));
                }
            },
        };
        let last = match self.last.as_deref().map(RawValue::get) {
            None | Some("null") => 0,
            Some(text) => match serde_json::from_str::<u32>(text) {
                Ok(last) if last <= MAX_LAST => last,
                _ => return Err((self.topic, "`last` must be an integer from 0 to 1000")),
            },
        };
        Ok(Subscribe {
            topic: self.topic,
            since,
            last,
        })
    }
}

/// An `unsubscribe` as read.
#[derive(Debug, Deserialize)]
pub struct UnsubscribeFrame {
    /// The payload.
    pub payload: UnsubscribePayload,
}

/// See [`UnsubscribeFrame`].
#[derive(Debug, Deserialize)]
pub struct UnsubscribePayload {
    /// The topic.
    pub topic: String,
}

/// A `publish` as read: `data` stays the exact text that arrived.
#[derive(Debug, Deserialize)]
pub struct PublishFrame {
    /// The payload.
    pub payload: Publish,
}

/// Payload of `publish`.
#[derive(Debug, Deserialize)]
pub struct Publish {
    /// Client-chosen id.
    pub id: String,
    /// The topic.
    pub topic: String,
    /// The event name.
    pub event: String,
    /// The data, exactly as sent.
    pub data: Box<RawValue>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        for ok in [
            "room:1",
            "a:b",
            "room:A-b_c.d",
            &format!("k:{}", "x".repeat(126)),
        ] {
            assert!(is_valid_topic(ok), "{ok}");
        }
        for bad in [
            "",
            "room",
            "room:",
            ":1",
            "room:a:b",
            "room:a b",
            "röom:1",
            &format!("k:{}", "x".repeat(127)),
        ] {
            assert!(!is_valid_topic(bad), "{bad}");
        }
    }

    #[test]
    fn since_and_last_are_checked() {
        let parse = |text: &str| {
            serde_json::from_str::<SubscribeFrame>(text)
                .unwrap()
                .payload
                .check()
        };
        let ok =
            parse(r#"{"payload":{"topic":"room:1","since":{"epoch":"e","offset":3},"last":5}}"#)
                .unwrap();
        assert_eq!(
            ok.since,
            Some(Position {
                epoch: "e".into(),
                offset: 3
            })
        );
        assert_eq!(ok.last, 5);
        assert_eq!(
            parse(r#"{"payload":{"topic":"t","since":null,"last":null}}"#)
                .unwrap()
                .last,
            0
        );
        for bad in [
            r#"{"payload":{"topic":"t","since":{"epoch":"e","offset":-1}}}"#,
            r#"{"payload":{"topic":"t","since":{"offset":1}}}"#,
            r#"{"payload":{"topic":"t","since":5}}"#,
            r#"{"payload":{"topic":"t","last":1001}}"#,
            r#"{"payload":{"topic":"t","last":"3"}}"#,
            r#"{"payload":{"topic":"t","last":1.5}}"#,
        ] {
            assert_eq!(parse(bad).unwrap_err().0, "t", "{bad}");
        }
    }
}
