//! What goes into the machine ([`Input`]) and what comes out ([`Effect`], [`Event`]).

use crate::{CloseInfo, ConnectionError, ConnectionState, MessageId, SendError, SocketUrl};
use std::time::Duration;
use tether_protocol::{AuthErrorCode, Notification, Secret};

/// Something that happened in the browser, fed with [`crate::Connection::handle`].
///
/// **Socket events.** `Opened`, `Frame`, `BinaryFrame` and `Closed` always
/// refer to the socket of the most recent [`Effect::OpenSocket`]: the driver
/// treats every `OpenSocket` as replacing the previous socket (closing it if
/// it is still open) and drops the events of any older socket. The machine
/// itself ignores socket events when it has no socket of its own (after it
/// emitted [`Effect::CloseSocket`] because of a timeout, going offline or an
/// `auth_error`), so a late `Closed` of an abandoned socket changes nothing.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Input {
    /// A token after login or from storage. Does not connect by itself; the
    /// machine answers with [`Effect::StoreToken`]. Re-authenticates in place
    /// when connected.
    SetToken {
        /// The access token.
        token: Secret,
        /// Its lifetime from now, if known (`expires_in` of the login answer).
        expires_in: Option<Duration>,
    },
    /// The user (or the app at start) asks to connect. Resets the reconnect
    /// attempts; does nothing when already connecting or connected.
    Connect,
    /// The user asks to disconnect: `DISCONNECTING` (close 1000
    /// `"Client disconnect"`), then `DISCONNECTED` on `Closed`. Never
    /// reconnects by itself until the next `Connect`; queued messages stay queued.
    Disconnect,
    /// The socket's `open` event.
    Opened,
    /// A text frame.
    Frame(String),
    /// A binary frame (the contract is text only): reported as an error.
    BinaryFrame {
        /// Its length in bytes.
        len: usize,
    },
    /// The socket's `close` event (code 1006 when it dropped), also when
    /// opening failed.
    Closed {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// A timer fired. Deadlines are judged by `now`, so a late or spurious
    /// tick is harmless; every other input also runs due timers first.
    Tick,
    /// The window's `online` event.
    Online,
    /// The window's `offline` event.
    Offline,
    /// The page became visible (`visibilitychange`, `pageshow`).
    Visible,
    /// The page was hidden. Nothing happens: keepalive continues.
    Hidden,
    /// Answer to [`Effect::RefreshToken`]: a fresh token.
    TokenRefreshed {
        /// The new access token.
        token: Secret,
        /// Its lifetime from now, if known.
        expires_in: Option<Duration>,
    },
    /// Answer to [`Effect::RefreshToken`]: the refresh failed; `failure`
    /// says whether the session is over.
    RefreshFailed {
        /// Final or transient.
        failure: RefreshFailure,
        /// What went wrong, for the error event. Must not contain a token.
        message: String,
    },
    /// The user signs out (or another tab did: the stored token was
    /// removed). The socket is closed with 1000 `"Signed out"`, the token
    /// forgotten ([`Effect::ClearToken`]), pending messages fail with
    /// [`SendError::SignedOut`] and [`Event::SignedOut`] is emitted. No
    /// reconnect until a new [`Input::SetToken`] and [`Input::Connect`]; no
    /// navigation (the app decides).
    SignOut,
    /// The manager is going away: close the socket, fail every pending
    /// message with [`SendError::Destroyed`] and ignore every later input.
    Destroy,
}

/// Why a token refresh failed ([`Input::RefreshFailed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefreshFailure {
    /// The server refused to refresh (the refresh credential is invalid,
    /// expired or revoked: HTTP 400, 401 or 403): the session is over, a
    /// final authentication failure (`invalid_refresh`).
    Rejected,
    /// The refresh could not be done now (network error, server error, an
    /// answer that is not a token): retried with backoff while the token is
    /// still valid; final (`expired_token`) once it has expired.
    Transient,
}

/// Something the driver must do, drained with [`crate::Connection::poll_effect`] in order.
///
/// Besides these, the driver keeps one wake-up timer armed at
/// [`crate::Connection::deadline`], re-read after every call into the
/// machine (`handle`, `send`, `subscribe`, `unsubscribe`, `publish`), and
/// feeds [`Input::Tick`] when it fires.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Effect {
    /// Open a socket to this URL, replacing (and closing) any previous one.
    OpenSocket {
        /// The URL, token included.
        url: SocketUrl,
    },
    /// Send this JSON text frame on the current socket.
    SendFrame(String),
    /// Close the current socket with this code and reason. The driver may
    /// forward its `close` event; the machine ignores it if it has moved on.
    CloseSocket {
        /// 1000, or 4000 after a timeout.
        code: u16,
        /// A short reason.
        reason: String,
    },
    /// Get a fresh access token (by default `POST /api/auth/refresh` with
    /// the refresh cookie) and answer with
    /// [`Input::TokenRefreshed`] or [`Input::RefreshFailed`]. Never more than
    /// one is outstanding.
    RefreshToken,
    /// Persist this token.
    StoreToken(Secret),
    /// Remove the stored token.
    ClearToken,
    /// Navigate to this route (the login page).
    Navigate(String),
    /// Tell the application.
    Emit(Event),
}

/// What the application hears about.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The public state changed.
    StateChanged {
        /// The previous state.
        from: ConnectionState,
        /// The new state.
        to: ConnectionState,
    },
    /// Reached `CONNECTED`.
    Connected {
        /// The authenticated user.
        user_id: String,
    },
    /// The server accepted an `auth` frame.
    AuthSuccess {
        /// The authenticated user.
        user_id: String,
        /// When the token expires, on the caller's clock (0 if unknown).
        expires_at: crate::Millis,
        /// Whether this was a re-authentication in place on an open socket.
        reauth: bool,
    },
    /// Authentication failed for good: the token is cleared and the user is
    /// sent to the login route. Emitted once per failure.
    AuthError {
        /// The reason. Besides the server's codes: `missing_token` when
        /// connecting without a token, `unauthorized`/`forbidden`/
        /// `policy_violation` for closes 4001/4003/1008 without an
        /// `auth_error` frame, `invalid_refresh` when the refresh answered
        /// 401, `expired_token` when the token expired and could not be refreshed.
        code: AuthErrorCode,
        /// Human-readable text.
        message: String,
    },
    /// The socket went away (closed by the peer or by the machine).
    Disconnected {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// A reconnect is scheduled.
    ReconnectScheduled {
        /// The 1-based reconnect attempt.
        attempt: u32,
        /// The jittered delay.
        delay: Duration,
        /// When it will run (caller's clock).
        at: crate::Millis,
    },
    /// Every allowed reconnect attempt failed; the machine stopped.
    ReconnectFailed {
        /// How many reconnect attempts were made.
        attempts: u32,
    },
    /// The user signed out ([`Input::SignOut`]); the token is cleared.
    SignedOut,
    /// A notification, delivered exactly once across reconnects and replays.
    Notification(Notification),
    /// The server acknowledged a message (once per id).
    Ack {
        /// The message's id, as returned by `send`.
        id: MessageId,
    },
    /// A pending message failed for good.
    SendFailed {
        /// The message's id, as returned by `send`.
        id: MessageId,
        /// Why.
        error: SendError,
    },
    /// The application's own message: a frame type the protocol does not
    /// define (contract section 9: a dotted `type`; Chanx: any `action`
    /// but its own). Decode `payload` into the app's type.
    Message {
        /// Its type name (`type` in the contract, `action` in Chanx).
        kind: String,
        /// Its payload as JSON (`null` when it has none).
        payload: tether_protocol::RawJson,
    },
    /// Something happened on a topic the app subscribed to (its state, a
    /// message, a gap it could not fill, presence, a publish's outcome).
    Topic(crate::TopicEvent),
    /// A pong arrived.
    Pong {
        /// The round trip of its ping.
        rtt: Duration,
    },
    /// Something went wrong; the connection stays unless a socket event
    /// says otherwise.
    Error(ConnectionError),
}

impl From<CloseInfo> for Event {
    fn from(close: CloseInfo) -> Self {
        Self::Disconnected {
            code: close.code,
            reason: close.reason,
        }
    }
}
