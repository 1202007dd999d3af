//! The sans-IO connection machine of tether: the client side of the
//! authenticated notification socket described in `shared/PROTOCOL.md`.
//!
//! A [`Connection`] is a plain value. The browser driver feeds it
//! [`Input`]s (socket events, timer ticks, window events, token refresh
//! results) together with the current time in milliseconds, and executes
//! the [`Effect`]s it queues (open or close a socket, send a frame, refresh
//! or store the token, navigate, tell the app), and keeps one timer armed at
//! [`Connection::deadline`] (read after every call, like quinn's
//! `poll_timeout`). It owns no socket, no timer and no clock, so tests
//! drive it on a virtual clock, thousands of scenarios a second.
//!
//! What it does:
//! - **auth first**: the token goes in the URL (`?token=`) and in the first
//!   frame; nothing else is sent before `auth_success`;
//! - **self-healing**: reconnects with exponential backoff and full jitter,
//!   notices a dead link with ping/pong, reacts to online/offline and page
//!   visibility;
//! - **token refresh** before expiry, re-authenticating in place;
//! - **final auth failures** (`auth_error`, close 4001/4003/1008) clear the
//!   token and navigate to the login route, without reconnecting;
//! - **delivery**: messages passed to [`Connection::send`] are resent after
//!   every reconnect until acked; notifications reach the app exactly once
//!   across reconnects (`last_seq` replay plus de-duplication);
//! - **topics** ([`Connection::subscribe`], [`Connection::publish`]): each
//!   topic is a small state machine ([`TopicState`]) resubscribed from its
//!   position after every reconnect; its messages reach the app exactly
//!   once, in offset order ([`TopicEvent::Message`]), and a gap that cannot
//!   be filled is reported ([`TopicEvent::NotRecovered`]); publishes go
//!   through the acked outbox. See [`Connection::subscribe`] for an example.
//!
//! ```
//! use tether_core::{Config, Connection, ConnectionState, Effect, Event, Input, Secret};
//!
//! let mut conn = Connection::new(Config::default());
//! conn.handle(0, Input::SetToken { token: Secret::new("tok"), expires_in: None });
//! conn.handle(0, Input::Connect);
//! let effects: Vec<Effect> = std::iter::from_fn(|| conn.poll_effect()).collect();
//! let url = effects.iter().find_map(|e| match e {
//!     Effect::OpenSocket { url } => Some(url.clone()),
//!     _ => None,
//! });
//! assert_eq!(url.unwrap().expose(), "/api/ws/notification?token=tok");
//! assert_eq!(conn.state(), ConnectionState::Connecting);
//!
//! // The socket opened: the machine authenticates first.
//! conn.handle(10, Input::Opened);
//! let effects: Vec<Effect> = std::iter::from_fn(|| conn.poll_effect()).collect();
//! assert!(effects.contains(&Effect::SendFrame(
//!     r#"{"type":"auth","payload":{"token":"tok","last_seq":null}}"#.into()
//! )));
//!
//! conn.handle(20, Input::Frame(r#"{"type":"auth_success","payload":{"user_id":"u1",
//!     "authenticated_at":"2026-01-01T00:00:00Z","expires_at":"2026-01-01T00:15:00Z"}}"#.into()));
//! let effects: Vec<Effect> = std::iter::from_fn(|| conn.poll_effect()).collect();
//! assert!(effects.contains(&Effect::Emit(Event::Connected { user_id: "u1".into() })));
//! assert_eq!(conn.state(), ConnectionState::Connected);
//! // Refresh is due 60 s before the token's 15 minutes run out; the next
//! // ping is due sooner.
//! assert_eq!(conn.snapshot().token_expires_at, Some(20 + 15 * 60_000));
//! assert_eq!(conn.deadline(), Some(20 + 5_000));
//! ```
#![deny(missing_docs)]

pub mod adapter;
mod backoff;
mod config;
mod error;
mod io;
pub mod jwt;
mod machine;
mod outbox;
mod rng;
mod state;
mod topics;
mod url;

pub use adapter::{Adapter, AuthOutcome, ChanxAuth, ContractAuth, Delivery, Incoming};
pub use config::{Backoff, Config, Keepalive};
pub use error::{ConnectionError, SendError, TopicError};
pub use io::{Effect, Event, Input, RefreshFailure};
pub use machine::{CLOSE_TIMEOUT, Connection};
pub use outbox::MessageId;
pub use state::{CloseInfo, ConnectionState, Detail, Snapshot, StopReason};
pub use tether_protocol::{
    AuthErrorCode, NackCode, Notification, Position, RawJson, Secret, SubscribeErrorCode,
    TopicMessage, UnsubscribedCode, User,
};
pub use topics::{SubscribeOptions, TopicEvent, TopicFailure, TopicSnapshot, TopicState};
pub use url::SocketUrl;

/// A point in time on the caller's clock, in milliseconds (the browser
/// passes `Date.now()`). It may jump forward (a sleeping laptop, a throttled
/// tab); deadlines are judged against it, never by counting ticks.
pub type Millis = u64;
