//! Protocol adapters: everything about the wire that differs between servers.
//!
//! The machine owns *when* things happen (authenticate right after open,
//! ping on an interval, resend after a reconnect, retry with backoff); an
//! [`Adapter`] owns *what* goes over the wire and what a received frame or
//! a close code means:
//!
//! | method | decides |
//! |---|---|
//! | [`requires_token`](Adapter::requires_token) | whether connecting needs a token (not with a cookie) |
//! | [`auth_frame`](Adapter::auth_frame) | the frame sent after open, or none when the server speaks first |
//! | [`auth_response`](Adapter::auth_response) | which frame answers it, and whether it accepts or refuses for good |
//! | [`reauth_in_place`](Adapter::reauth_in_place) | whether a fresh token goes on the open socket or needs a new one |
//! | [`ping_frame`](Adapter::ping_frame) | the keepalive ping, or none (no client keepalive) |
//! | [`message_frame`](Adapter::message_frame) | the envelope of an outgoing message |
//! | [`delivery`](Adapter::delivery) | whether the server acks messages (kept in the outbox until then) or not (sent once) |
//! | [`decode`](Adapter::decode) | what a received frame is: pong, app message, error, a contract frame, a reply to send |
//! | [`final_close`](Adapter::final_close) | which close codes end the session (no retry) |
//! | [`refresh`](Adapter::refresh) | whether token refresh is on by default |
//! | [`topics`](Adapter::topics) | whether the server has topics (the contract's; Chanx has none) |
//! | [`topic_frame`](Adapter::topic_frame) | the frames of `subscribe`, `unsubscribe` and `publish` |
//!
//! Two adapters ship: [`ContractAuth`] (the default, `shared/PROTOCOL.md`)
//! and [`ChanxAuth`] ([Chanx](https://pypi.org/project/chanx/), Django
//! Channels with DRF authentication). Modelled on WebsockexNova's
//! `AuthHandler` behaviour, grown to the whole protocol.
//!
//! ```
//! use tether_core::adapter::{Adapter, AuthOutcome, ChanxAuth, Incoming};
//!
//! let chanx = ChanxAuth::default();
//! assert_eq!(chanx.auth_frame(None, None), None); // the server speaks first
//! let answer = r#"{"action":"authentication","payload":{"status_code":200}}"#;
//! assert!(matches!(chanx.auth_response(answer), Some(AuthOutcome::Accepted { .. })));
//! let pushed = r#"{"action":"notification","payload":{"id":1,"title":"Hi"}}"#;
//! assert!(matches!(chanx.decode(pushed, 1 << 16), Incoming::Message { kind, .. } if kind == "notification"));
//! ```

use crate::MessageId;
use std::fmt;
use std::time::Duration;
use tether_protocol::RawJson;
use tether_protocol::{AuthErrorCode, ClientMessage, DecodeError, Secret, ServerMessage};

mod chanx;
mod contract;

pub use chanx::ChanxAuth;
pub use contract::ContractAuth;

/// What an authentication answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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

/// Whether the server acknowledges messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Delivery {
    /// Every message is answered with an ack (or nack) carrying its id: it
    /// stays in the outbox, and is resent after every reconnect, until then.
    Acked,
    /// The server never acks: a message is sent once (queued until the
    /// socket is connected, then dropped from the outbox) and gets no
    /// [`Event::Ack`](crate::Event::Ack).
    FireAndForget,
}

/// What a received frame is, as [`Adapter::decode`] sees it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Incoming {
    /// A frame of `shared/PROTOCOL.md` (notification, ack, nack, pong,
    /// error, an auth answer): the machine handles it as the contract says.
    Contract(ServerMessage),
    /// The answer to a keepalive ping: the one with this sequence number,
    /// or (`None`) whichever ping is outstanding.
    Pong {
        /// The `seq` given to [`Adapter::ping_frame`], if the answer carries it.
        seq: Option<u64>,
    },
    /// A server-driven keepalive (the server pinged): send this frame back.
    /// It counts as a sign of life.
    Reply(String),
    /// The application's own message, handed to it as
    /// [`Event::Message`](crate::Event::Message).
    Message {
        /// Its type name (`type` in the contract, `action` in Chanx).
        kind: String,
        /// Its payload, as JSON (`null` when it has none).
        payload: RawJson,
    },
    /// An error that does not end the session.
    Error {
        /// Machine-readable code.
        code: String,
        /// Human-readable text.
        message: String,
    },
    /// Nothing for the machine or the app (e.g. a protocol frame that needs
    /// no action).
    Ignore,
    /// Not a frame of this protocol.
    Malformed(DecodeError),
}

/// The wire side of a server's protocol. Implement it to speak to a server
/// whose frames differ from the contract's (each method not implemented
/// speaks the contract); pass it with
/// [`Connection::with_adapter`](crate::Connection::with_adapter).
pub trait Adapter: fmt::Debug {
    /// Whether a token is needed to connect at all. An adapter that
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
    /// is the answer, `None` to let the machine treat it as an ordinary frame
    /// (through [`decode`](Self::decode)). An answer that is not final (a
    /// server error worth a retry) should be `None`: the close that follows
    /// decides, through [`final_close`](Self::final_close).
    fn auth_response(&self, frame: &str) -> Option<AuthOutcome>;

    /// Whether a refreshed token is presented on the open socket (no
    /// reconnect). When false the machine reconnects with the new token,
    /// which briefly leaves CONNECTED. Defaults to true.
    fn reauth_in_place(&self) -> bool {
        true
    }

    /// The keepalive ping with this sequence number, sent every
    /// [`Keepalive::interval`](crate::Keepalive::interval) while connected;
    /// `None` when the client sends no keepalive (the server pings, or
    /// nothing does), and then no dead link is noticed by the client.
    /// Defaults to the contract's `{"type":"ping","payload":{"seq":N}}`.
    fn ping_frame(&self, seq: u64) -> Option<String> {
        ContractAuth.ping_frame(seq)
    }

    /// The frame that carries an app message `body`, whose id is `id`.
    /// Defaults to the contract's `send` envelope.
    fn message_frame(&self, id: &MessageId, body: &RawJson) -> String {
        ContractAuth.message_frame(id, body)
    }

    /// Whether the server acks messages. Defaults to [`Delivery::Acked`].
    fn delivery(&self) -> Delivery {
        Delivery::Acked
    }

    /// What a received frame is; `limit` is the largest frame to accept,
    /// in bytes. Defaults to the contract's frames.
    fn decode(&self, frame: &str, limit: usize) -> Incoming {
        ContractAuth.decode(frame, limit)
    }

    /// The authentication error a close with `code` stands for when it ends
    /// the session (no reconnect until the user signs in again), or `None`
    /// for an ordinary drop, retried with backoff. Defaults to the
    /// contract's: 4001, 4003 and 1008 are final.
    fn final_close(&self, code: u16) -> Option<AuthErrorCode> {
        ContractAuth.final_close(code)
    }

    /// Whether the server speaks the contract's topics (`subscribe`,
    /// `publish`, ...). When false, [`Connection::subscribe`](crate::Connection::subscribe)
    /// fails with [`TopicError::Unsupported`](crate::TopicError::Unsupported)
    /// and no topic frame is ever sent. Defaults to true.
    fn topics(&self) -> bool {
        true
    }

    /// The frame of a topic request: [`ClientMessage::Subscribe`],
    /// [`ClientMessage::Unsubscribe`] or [`ClientMessage::Publish`] (only
    /// asked for when [`topics`](Self::topics) is true). Defaults to the
    /// contract's encoding.
    fn topic_frame(&self, message: &ClientMessage) -> String {
        message.encode()
    }

    /// Whether token refresh is on unless the app says otherwise: false
    /// for servers whose tokens do not expire or that cannot take a new
    /// token on an open socket. Defaults to true.
    fn refresh(&self) -> bool {
        true
    }
}

/// Refuses a frame over `limit` bytes.
pub(crate) fn check_size(frame: &str, limit: usize) -> Result<(), DecodeError> {
    if frame.len() > limit {
        return Err(DecodeError::TooLarge {
            size: frame.len(),
            limit,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An adapter that implements only what it must: every other method
    /// speaks the contract.
    #[derive(Debug)]
    struct Minimal;

    impl Adapter for Minimal {
        fn auth_frame(&self, _token: Option<&Secret>, _last_seq: Option<u64>) -> Option<String> {
            None
        }

        fn auth_response(&self, _frame: &str) -> Option<AuthOutcome> {
            None
        }
    }

    #[test]
    fn the_defaults_speak_the_contract() {
        assert!(Minimal.requires_token() && Minimal.reauth_in_place());
        assert!(Minimal.topics() && Minimal.refresh());
        assert_eq!(Minimal.delivery(), Delivery::Acked);
        assert_eq!(
            Minimal.ping_frame(3).as_deref(),
            Some(r#"{"type":"ping","payload":{"seq":3}}"#)
        );
        let body = RawJson::new("[1, 2]").unwrap();
        assert_eq!(
            Minimal.message_frame(&MessageId::new("m1".into()), &body),
            r#"{"type":"send","payload":{"id":"m1","body":[1, 2]}}"#
        );
        for code in [4001, 4003, 1008] {
            assert!(Minimal.final_close(code).is_some(), "{code}");
        }
        for code in [1000, 1006, 1013, 4000] {
            assert_eq!(Minimal.final_close(code), None, "{code}");
        }
        assert_eq!(
            Minimal.decode(r#"{"type":"pong","payload":{"seq":1}}"#, 100),
            Incoming::Contract(ServerMessage::Pong(tether_protocol::Pong { seq: 1 }))
        );
    }

    #[test]
    fn a_frame_of_exactly_the_limit_fits() {
        assert_eq!(check_size("abc", 3), Ok(()));
        assert!(matches!(
            check_size("abcd", 3),
            Err(DecodeError::TooLarge { size: 4, limit: 3 })
        ));
    }
}
