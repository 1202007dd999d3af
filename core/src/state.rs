//! The public state: what the UI shows.

use crate::{ConnectionError, Millis};
use std::fmt;
use std::time::Duration;
use tether_protocol::AuthErrorCode;

/// The coarse connection state, as in the browser's `WebSocket.readyState`
/// plus `INITIAL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ConnectionState {
    /// Never connected.
    #[default]
    Initial,
    /// Refreshing the token, opening the socket or authenticating.
    Connecting,
    /// Authenticated; frames flow.
    Connected,
    /// The user asked to disconnect; waiting for the socket to close.
    Disconnecting,
    /// No socket: waiting to retry, or stopped (see [`Detail`]).
    Disconnected,
}

impl ConnectionState {
    /// `"INITIAL"`, `"CONNECTING"`, `"CONNECTED"`, `"DISCONNECTING"` or `"DISCONNECTED"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initial => "INITIAL",
            Self::Connecting => "CONNECTING",
            Self::Connected => "CONNECTED",
            Self::Disconnecting => "DISCONNECTING",
            Self::Disconnected => "DISCONNECTED",
        }
    }
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What exactly the machine is doing, with the data that goes with it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Detail {
    /// Never connected (`INITIAL`).
    #[default]
    Idle,
    /// The token had expired: waiting for the refresh before opening
    /// (`CONNECTING`).
    Refreshing {
        /// Reconnect attempt that opens after the refresh.
        attempt: u32,
    },
    /// Waiting for the socket to open (`CONNECTING`); `attempt` 0 is the
    /// first try, 1.. are reconnect attempts.
    Opening {
        /// Reconnect attempt.
        attempt: u32,
    },
    /// Socket open, `auth` sent, waiting for `auth_success` (`CONNECTING`).
    Authenticating {
        /// Reconnect attempt.
        attempt: u32,
    },
    /// Authenticated since `since` (`CONNECTED`).
    Online {
        /// When `auth_success` arrived.
        since: Millis,
    },
    /// Waiting to retry (`DISCONNECTED`).
    RetryScheduled {
        /// The reconnect attempt that will run.
        attempt: u32,
        /// When it will run.
        at: Millis,
    },
    /// Closing the socket at the user's request (`DISCONNECTING`).
    Closing,
    /// Not connected and not going to reconnect by itself (`DISCONNECTED`).
    Stopped(StopReason),
}

impl Detail {
    /// The coarse state this detail belongs to.
    pub fn state(&self) -> ConnectionState {
        match self {
            Self::Idle => ConnectionState::Initial,
            Self::Refreshing { .. } | Self::Opening { .. } | Self::Authenticating { .. } => {
                ConnectionState::Connecting
            }
            Self::Online { .. } => ConnectionState::Connected,
            Self::Closing => ConnectionState::Disconnecting,
            Self::RetryScheduled { .. } | Self::Stopped(_) => ConnectionState::Disconnected,
        }
    }
}

/// Why the machine stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The user disconnected; only [`crate::Input::Connect`] reconnects.
    Manual,
    /// The browser went offline; [`crate::Input::Online`] reconnects.
    Offline,
    /// Authentication failed for good; the token was cleared and the user
    /// sent to the login route. Only [`crate::Input::Connect`] (after a new
    /// [`crate::Input::SetToken`]) reconnects.
    AuthFailed(AuthErrorCode),
    /// Every reconnect attempt failed; [`crate::Input::Connect`],
    /// [`crate::Input::Online`] or [`crate::Input::Visible`] start over.
    GaveUp {
        /// How many reconnect attempts were made.
        attempts: u32,
    },
    /// The app signed the user out ([`crate::Input::SignOut`]): the token
    /// is gone; only a new [`crate::Input::SetToken`] and
    /// [`crate::Input::Connect`] reconnect.
    SignedOut,
    /// [`crate::Input::Destroy`]: every further input is ignored.
    Destroyed,
}

/// How a socket ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    /// The close code (1006 when the socket dropped without a close frame;
    /// 4000 when the machine closed it after a timeout).
    pub code: u16,
    /// The close reason.
    pub reason: String,
}

/// The public state for the UI: cheap to clone and compare. The coarse
/// state, the attempt and the next retry are read from [`Snapshot::detail`]
/// by methods, so they cannot disagree with it.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Snapshot {
    /// The fine state, with data.
    pub detail: Detail,
    /// Whether the user is signed in: the machine holds a token (or its
    /// handshake needs none) and no sign-out or final authentication
    /// failure has ended the session since.
    pub signed_in: bool,
    /// How the last socket ended.
    pub last_close: Option<CloseInfo>,
    /// The last error reported with [`crate::Event::Error`].
    pub last_error: Option<ConnectionError>,
    /// The last measured ping round trip.
    pub rtt: Option<Duration>,
    /// Messages accepted by `send` and `publish` and not yet acknowledged
    /// (nor failed).
    pub pending: usize,
    /// The authenticated user, once known.
    pub user_id: Option<String>,
    /// When the current access token expires (caller's clock), if known.
    pub token_expires_at: Option<Millis>,
}

impl Snapshot {
    /// The coarse state.
    pub fn state(&self) -> ConnectionState {
        self.detail.state()
    }

    /// Whether the socket is open and the answer to `auth` is awaited.
    pub fn authenticating(&self) -> bool {
        matches!(self.detail, Detail::Authenticating { .. })
    }

    /// The current reconnect attempt: 0 when connected, stopped or on the
    /// first try.
    pub fn attempt(&self) -> u32 {
        match self.detail {
            Detail::Refreshing { attempt }
            | Detail::Opening { attempt }
            | Detail::Authenticating { attempt }
            | Detail::RetryScheduled { attempt, .. } => attempt,
            Detail::Idle | Detail::Online { .. } | Detail::Closing | Detail::Stopped(_) => 0,
        }
    }

    /// When the scheduled reconnect runs, if one is scheduled.
    pub fn next_retry_at(&self) -> Option<Millis> {
        match self.detail {
            Detail::RetryScheduled { at, .. } => Some(at),
            _ => None,
        }
    }
}
