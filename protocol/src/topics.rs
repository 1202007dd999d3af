//! Topics (rooms, channels): the frames of the contract's "Topics" section.
//!
//! A socket subscribes to named topics after `auth_success`; every topic has
//! its own gapless `offset` and an `epoch` that changes only when the server
//! lost the topic's history. See [`Subscribed`] for where a stream starts.

use crate::RawJson;
use serde::{Deserialize, Serialize};

/// Longest topic name, in bytes.
pub const MAX_TOPIC_BYTES: usize = 128;
/// Most topics one socket may be subscribed to; one more gets
/// `subscribe_error` `too_many_topics`.
pub const MAX_TOPICS_PER_SOCKET: usize = 100;
/// Largest `last` of a `subscribe`: how many retained messages a first
/// subscription may ask to be replayed.
pub const MAX_LAST: u32 = 1000;
/// How many of a topic's most recent messages a server retains at least.
pub const TOPIC_RETENTION: usize = 1000;

/// Whether `name` is a topic name: `<kind>:<id>`, a non-empty kind and a
/// non-empty id of ASCII letters, digits, `-`, `_` and `.`, one `:` between
/// them, at most [`MAX_TOPIC_BYTES`] bytes.
///
/// ```
/// use tether_protocol::is_valid_topic;
/// assert!(is_valid_topic("room:lobby-1"));
/// assert!(!is_valid_topic("room:"));
/// assert!(!is_valid_topic("room:a:b"));
/// assert!(!is_valid_topic("lobby"));
/// assert!(!is_valid_topic("room:caf\u{e9}"));
/// ```
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

/// A user as the topic frames show them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct User {
    /// The user's id (a UUID).
    pub user_id: String,
    /// The user's name.
    pub username: String,
}

/// A client's place in a topic: the epoch and the last offset it applied.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position {
    /// The topic's epoch when the message at `offset` was applied.
    pub epoch: String,
    /// The offset of the last applied message (0: none yet in this epoch).
    pub offset: u64,
}

/// Payload of the `subscribe` frame (client to server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribe {
    /// The topic's name.
    pub topic: String,
    /// Resume after this position; `None` on a first subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Position>,
    /// On a first subscription, how many retained messages to replay (0 to
    /// [`MAX_LAST`]); `None` is 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<u32>,
}

/// Payload of the `subscribed` frame: the subscription is live, and the
/// messages that follow start at offset `from`, without a gap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscribed {
    /// The topic's name.
    pub topic: String,
    /// The topic's epoch now.
    pub epoch: String,
    /// The topic's latest offset now (replayed messages end there).
    pub offset: u64,
    /// The offset of the first message that follows.
    pub from: u64,
    /// Only when the `subscribe` had a `since`: whether it was honoured.
    /// `Some(false)`: earlier messages may be missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<bool>,
    /// Who is subscribed now, the subscriber included.
    #[serde(default, deserialize_with = "crate::frames::or_default")]
    pub presence: Vec<User>,
}

/// Payload of the `subscribe_error` frame: the subscription was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeError {
    /// The topic's name.
    pub topic: String,
    /// Machine-readable reason.
    pub code: SubscribeErrorCode,
    /// Human-readable text.
    #[serde(default, deserialize_with = "crate::frames::or_default")]
    pub message: String,
    /// Whether the client should retry (with backoff).
    pub retry: bool,
}

crate::frames::wire_code! {
    /// The `code` of a `subscribe_error` frame.
    SubscribeErrorCode {
        /// The user may not subscribe to this topic. Final.
        Forbidden = "forbidden",
        /// No such topic. Final.
        NotFound = "not_found",
        /// Not a topic name. Final.
        InvalidTopic = "invalid_topic",
        /// A malformed `since` or `last`. Final.
        BadRequest = "bad_request",
        /// Over [`MAX_TOPICS_PER_SOCKET`] topics on one socket. Final.
        TooManyTopics = "too_many_topics",
        /// Too many subscribes; retried with backoff.
        RateLimited = "rate_limited",
        /// The server cannot serve the topic now; retried with backoff.
        Unavailable = "unavailable",
    }
}

impl SubscribeErrorCode {
    /// Whether the client stops trying the topic until the app subscribes
    /// again. Codes this version does not know are final.
    ///
    /// ```
    /// use tether_protocol::SubscribeErrorCode;
    /// assert!(SubscribeErrorCode::Forbidden.is_final());
    /// assert!(!SubscribeErrorCode::Unavailable.is_final());
    /// ```
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::RateLimited | Self::Unavailable)
    }
}

/// Payload of the `unsubscribe` frame (client to server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unsubscribe {
    /// The topic's name.
    pub topic: String,
}

/// Payload of the `unsubscribed` frame: the subscription ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unsubscribed {
    /// The topic's name.
    pub topic: String,
    /// Why it ended.
    pub code: UnsubscribedCode,
    /// Human-readable text.
    #[serde(default, deserialize_with = "crate::frames::or_default")]
    pub message: String,
    /// With [`UnsubscribedCode::Reset`]: the topic's new epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
}

crate::frames::wire_code! {
    /// The `code` of an `unsubscribed` frame.
    UnsubscribedCode {
        /// The client asked (`unsubscribe`).
        Unsubscribed = "unsubscribed",
        /// The user lost permission (removed from a room). Final.
        Removed = "removed",
        /// The topic no longer exists. Final.
        TopicDeleted = "topic_deleted",
        /// The topic's history was lost under a live subscription; the
        /// client resubscribes at once from `{new epoch, 0}`.
        Reset = "reset",
        /// A re-authentication in place as another user; the client
        /// resubscribes with its position, checked for the new user.
        UserChanged = "user_changed",
    }
}

/// Payload of the `publish` frame (client to server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publish {
    /// Client-chosen unique id (a UUID); applied at most once per user.
    pub id: String,
    /// The topic's name.
    pub topic: String,
    /// The app's event name.
    pub event: String,
    /// The app's data, any JSON, kept as sent.
    pub data: RawJson,
}

/// Payload of the `message` frame: one message of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMessage {
    /// The topic's name.
    pub topic: String,
    /// The message's offset in the topic (gapless, from 1 per epoch).
    pub offset: u64,
    /// The app's event name.
    pub event: String,
    /// The app's data, any JSON, kept as sent.
    pub data: RawJson,
    /// Who published it; `None` for the server itself.
    pub from: Option<User>,
    /// The server's id of the message (a UUID).
    pub id: String,
    /// When the server took it, RFC 3339.
    pub created_at: String,
}

/// Payload of the `presence` frame: who joined and left a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// The topic's name.
    pub topic: String,
    /// Users whose first subscription on the topic began.
    #[serde(default, deserialize_with = "crate::frames::or_default")]
    pub joined: Vec<User>,
    /// Users whose last subscription on the topic ended.
    #[serde(default, deserialize_with = "crate::frames::or_default")]
    pub left: Vec<User>,
}
