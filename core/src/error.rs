//! Errors: why a message could not be delivered, and what went wrong on the link.

use std::time::Duration;
use tether_protocol::{DecodeError, NackCode};

/// Why a message passed to [`crate::Connection::send`] was refused, or
/// later failed ([`crate::Event::SendFailed`]). The machine never retries a
/// message that failed; the application may send it again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The outbox already holds `capacity` unacknowledged messages. Returned
    /// by `send`; not retried: try again once acks have drained the outbox.
    #[error("the outbox is full ({capacity} unacknowledged messages)")]
    QueueFull {
        /// The configured [`crate::Config::outbox_capacity`].
        capacity: usize,
    },
    /// The encoded `send` frame is larger than the frame limit in force
    /// ([`crate::Config::max_frame_bytes`], or the server's `max_frame`).
    /// Returned by `send`, or reported with [`crate::Event::SendFailed`] for
    /// a queued message when the server announces a smaller `max_frame`; not
    /// retried (it would never fit).
    #[error("the message is {size} bytes encoded, over the limit of {limit} bytes")]
    TooLarge {
        /// Size of the encoded frame in bytes.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The server refused the message for good with a `nack` (its body could
    /// not be taken exactly as sent, or the user may not send it). Not
    /// retried: the server will refuse it again. (`rate_limited` nacks are
    /// not reported: the message is resent after a backoff.)
    #[error("the server refused the message ({code}): {message}")]
    Nacked {
        /// The nack's code.
        code: NackCode,
        /// The nack's text.
        message: String,
    },
    /// The message was not acknowledged within
    /// [`crate::Config::outbox_max_age`] of being queued. Not retried: the
    /// server may have forgotten its id by then, so a resend could be
    /// applied twice.
    #[error("not acknowledged within {max_age:?}; given up")]
    Expired {
        /// The configured [`crate::Config::outbox_max_age`].
        max_age: Duration,
    },
    /// The body could not be turned into JSON (a `Serialize` impl failed, or
    /// a map had non-string keys). Returned by `send`; nothing was queued.
    #[error("the message body is not JSON: {reason}")]
    NotJson {
        /// What the serializer or the JSON reader reported.
        reason: String,
    },
    /// Authentication failed for good (the user must sign in again); every
    /// pending message fails with this, and `send` returns it until the next
    /// [`crate::Input::Connect`]. Not retried.
    #[error("authentication failed; sign in again")]
    AuthFailed,
    /// The user signed out ([`crate::Input::SignOut`]); every pending
    /// message fails with this (it must not go out as the next user). Not
    /// retried. `send` still queues new messages for the next sign-in.
    #[error("signed out")]
    SignedOut,
    /// The machine gave up reconnecting after the configured number of
    /// attempts; pending messages fail with this, and `send` returns it until
    /// the next connect. Not retried.
    #[error("gave up reconnecting")]
    GaveUp,
    /// The connection was destroyed ([`crate::Input::Destroy`]). Not retried.
    #[error("the connection was destroyed")]
    Destroyed,
    /// A publish to a topic the app has not subscribed to (or whose
    /// subscription failed for good: see its [`crate::TopicState`]).
    /// Returned by [`crate::Connection::publish`]; nothing was queued. Not
    /// retried: subscribe first.
    #[error("not subscribed to topic `{topic}`")]
    NotSubscribed {
        /// The topic.
        topic: String,
    },
    /// The topic ended before the publish was acknowledged: the app
    /// unsubscribed, or the server refused or ended the subscription for
    /// good (the topic's [`crate::TopicState::Failed`] says why). Reported
    /// with [`crate::TopicEvent::PublishFailed`]; not retried.
    #[error("topic `{topic}` ended before the publish was acknowledged")]
    TopicEnded {
        /// The topic.
        topic: String,
    },
    /// The manager runs where there is no browser (server-side rendering):
    /// nothing was queued. Not retried; send from the browser (an event
    /// handler, an effect).
    #[error("not in a browser (server-side rendering): nothing was sent or queued")]
    NotInBrowser,
}

/// Why [`crate::Connection::subscribe`] refused a topic. Nothing was sent
/// and nothing is retried: the app's input (or the adapter) is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// The name is not `<kind>:<id>` (ASCII letters, digits, `-`, `_`,
    /// `.`; one `:`; at most [`tether_protocol::MAX_TOPIC_BYTES`] bytes).
    #[error("`{topic}` is not a topic name (`<kind>:<id>`, at most 128 bytes)")]
    InvalidTopic {
        /// The refused name.
        topic: String,
    },
    /// [`crate::SubscribeOptions::last`] is over [`tether_protocol::MAX_LAST`].
    #[error("last = {last} is over the maximum of {max}")]
    InvalidLast {
        /// The refused value.
        last: u32,
        /// The maximum.
        max: u32,
    },
    /// The app already subscribed to the most topics one socket may hold
    /// ([`tether_protocol::MAX_TOPICS_PER_SOCKET`]; failed ones do not count).
    #[error("already subscribed to {limit} topics, the most one socket may hold")]
    TooManyTopics {
        /// The limit.
        limit: usize,
    },
    /// The adapter's protocol has no topics (Chanx:
    /// [`crate::adapter::Adapter::topics`] is false).
    #[error("this server's protocol has no topics")]
    Unsupported,
    /// The connection was destroyed ([`crate::Input::Destroy`]).
    #[error("the connection was destroyed")]
    Destroyed,
}

/// Something went wrong on the link. Reported with [`crate::Event::Error`]
/// and kept in [`crate::Snapshot::last_error`]; unless the socket itself
/// closed, the connection stays up. No message contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// A text frame from the server could not be decoded (not JSON, unknown
    /// `type`, bad payload, over the size limit). The frame is dropped; the
    /// connection stays, nothing is retried.
    #[error("bad frame from the server: {0}")]
    Decode(#[from] DecodeError),
    /// The server sent an `error` frame (e.g. `rate_limited`). The connection
    /// stays; nothing is retried automatically.
    #[error("server error `{code}`: {message}")]
    Server {
        /// Machine-readable code.
        code: String,
        /// Human-readable text.
        message: String,
    },
    /// The server sent a binary frame; the contract is JSON text only. The
    /// frame is dropped; the connection stays.
    #[error("unexpected binary frame of {len} bytes")]
    BinaryFrame {
        /// Length of the frame in bytes.
        len: usize,
    },
    /// The server closed the socket with 1009 (message too big). The
    /// connection is retried with backoff.
    #[error("the server closed the socket: message too big")]
    MessageTooBig,
    /// A frame other than `auth_success`/`auth_error` arrived before the
    /// socket was authenticated. It is ignored (never acted on); the
    /// connection stays.
    #[error("unexpected `{kind}` frame before authentication")]
    NotAuthenticated {
        /// The frame's `type`.
        kind: String,
    },
    /// No pong arrived in time: the link is dead. The socket is closed with
    /// 4000 and a reconnect is scheduled at once (retried).
    #[error("no pong within {after:?}; the link is dead")]
    KeepaliveTimeout {
        /// How long the machine waited.
        after: Duration,
    },
    /// Opening the socket and authenticating took too long. The socket is
    /// closed with 4000 and the attempt is retried with backoff.
    #[error("no authenticated socket within {after:?}")]
    ConnectTimeout {
        /// [`crate::Config::connect_timeout`].
        after: Duration,
    },
    /// Refreshing the access token failed but the token is still valid; the
    /// refresh is retried with backoff until the token expires.
    #[error("token refresh failed: {message}")]
    RefreshFailed {
        /// What the driver reported.
        message: String,
    },
}
