//! Wire types of the tether notification socket and its HTTP API.
//!
//! This crate is the single source of truth for `shared/PROTOCOL.md` in code:
//! the browser client (`tether`, `tether-core`) and the reference server
//! (`tether-server`) both use it, so the two can never drift apart. It does
//! no I/O. Frames and HTTP bodies are serde derive + serde_json.
//!
//! Every frame is one JSON object `{"type": "...", "payload": {...}}`.
//!
//! ```
//! use tether_protocol::{ClientMessage, ServerMessage, Ping, Secret};
//!
//! let ping = ClientMessage::Ping(Ping { seq: 7 });
//! assert_eq!(ping.encode(), r#"{"type":"ping","payload":{"seq":7}}"#);
//!
//! let pong = ServerMessage::decode(r#"{"type":"pong","payload":{"seq":7}}"#).unwrap();
//! assert!(matches!(pong, ServerMessage::Pong(p) if p.seq == 7));
//!
//! // A server frame of a type this contract does not define is the app's own.
//! let app = ServerMessage::decode(r#"{"type":"chat.typing","payload":{"who":"ann"}}"#).unwrap();
//! assert!(matches!(app, ServerMessage::App(f) if f.kind == "chat.typing"));
//!
//! // A client frame of an unknown type is a typed error, never a panic.
//! let err = ClientMessage::decode(r#"{"type":"party"}"#).unwrap_err();
//! assert_eq!(err.to_string(), "unknown frame type `party`");
//!
//! // Tokens never show up in Debug output.
//! assert_eq!(format!("{:?}", Secret::new("abc")), "Secret(***)");
//! ```
#![deny(missing_docs)]

mod frames;
mod http;
mod raw;
mod secret;
pub mod time;
mod topics;

pub use frames::*;
pub use http::*;
pub use raw::{MAX_DEPTH, RawJson};
pub use secret::Secret;
pub use topics::*;

/// Path of the notification socket, relative to the API origin.
pub const WS_PATH: &str = "/api/ws/notification";

/// Largest text frame, in bytes, that either side accepts by default.
/// Larger frames are answered with an `error` frame `frame_too_large`.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// How long a server remembers the ids of applied `send`s at least (contract
/// section 7): a client never resends an id older than this.
pub const DEDUP_WINDOW: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// How many of a user's most recent `send` ids a server remembers at least
/// (contract section 7): a client's outbox holds fewer.
pub const DEDUP_WINDOW_IDS: usize = 10_000;

/// WebSocket close codes used by the contract.
pub mod close_code {
    /// Normal closure, asked for by either side.
    pub const NORMAL: u16 = 1000;
    /// Going away (server restart, page unload).
    pub const GOING_AWAY: u16 = 1001;
    /// Abnormal closure: the connection dropped without a close frame.
    pub const ABNORMAL: u16 = 1006;
    /// Policy violation: final, the client must sign in again.
    pub const POLICY: u16 = 1008;
    /// Message too big: reconnect with backoff and surface an error.
    pub const TOO_BIG: u16 = 1009;
    /// Try again later (a slow consumer, an overloaded server): not final;
    /// reconnect with backoff and catch up by replay.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// Unauthorized: final, the client must sign in again.
    pub const UNAUTHORIZED: u16 = 4001;
    /// Forbidden: final, the client must sign in again.
    pub const FORBIDDEN: u16 = 4003;

    /// Whether a close with this code ends the session for good: no
    /// reconnect until the user signs in again.
    pub fn is_final(code: u16) -> bool {
        matches!(code, POLICY | UNAUTHORIZED | FORBIDDEN)
    }
}
