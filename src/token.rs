//! Where the access token lives ([`TokenStorage`]) and how a fresh one is
//! obtained ([`TokenRefresh`]).

use futures::future::LocalBoxFuture;
use std::rc::Rc;
use std::time::Duration;
pub use tether_core::RefreshFailure;
use tether_protocol::Secret;

/// Where the manager keeps the access token between page loads.
///
/// ```
/// use tether::{ConnectionOptions, TokenStorage};
///
/// // A session token that ends with the tab (as in passkey flows):
/// let options = ConnectionOptions::default()
///     .storage(TokenStorage::Session("my-app.token".into()));
/// assert_eq!(options.storage, TokenStorage::Session("my-app.token".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenStorage {
    /// `localStorage` under this key: survives reloads and is shared by the
    /// browser's tabs, which follow each other's sign-in and sign-out (the
    /// `storage` event). The default, with key `"tether.access_token"`.
    Local(String),
    /// `sessionStorage` under this key: survives reloads of this tab only
    /// and ends with it.
    Session(String),
    /// In memory only: gone with the page (sign in again after a reload, or
    /// let the refresh cookie get a new token).
    Memory,
    /// Nothing is stored and no token is expected: for servers that
    /// authenticate the socket by cookie. Pair it with a handshake that needs
    /// no token, such as `ChanxAuth { cookie: true }`.
    None,
}

impl Default for TokenStorage {
    fn default() -> Self {
        Self::Local(DEFAULT_STORAGE_KEY.to_owned())
    }
}

/// The default `localStorage` key of the access token.
pub const DEFAULT_STORAGE_KEY: &str = "tether.access_token";

/// A token from a refresh: the new access token and, if known, its lifetime
/// from now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreshToken {
    /// The new access token.
    pub token: Secret,
    /// How long it is valid from now (`expires_in`), if known; the manager
    /// refreshes again before then.
    pub expires_in: Option<Duration>,
}

/// Why a refresh failed. The message must not contain a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RefreshError {
    /// [`RefreshFailure::Rejected`] ends the session (the user must sign in
    /// again); [`RefreshFailure::Transient`] is retried with backoff while
    /// the token is still valid.
    pub failure: RefreshFailure,
    /// What went wrong, for the error event.
    pub message: String,
}

impl RefreshError {
    /// The server refused: the session is over. Not retried.
    pub fn rejected(message: impl Into<String>) -> Self {
        Self {
            failure: RefreshFailure::Rejected,
            message: message.into(),
        }
    }

    /// It could not be done now (network, server error). Retried with
    /// backoff while the token is valid.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            failure: RefreshFailure::Transient,
            message: message.into(),
        }
    }
}

/// An app-provided refresh: returns a fresh token or why not.
pub type RefreshFn = Rc<dyn Fn() -> LocalBoxFuture<'static, Result<FreshToken, RefreshError>>>;

/// How the manager gets a fresh access token before the current one
/// expires (or when a stored one has expired).
#[derive(Clone)]
#[non_exhaustive]
pub enum TokenRefresh {
    /// `POST` this URL with the browser's cookies (`credentials: "include"`),
    /// `Content-Type: application/json` and a `{}` body, and read the
    /// contract's token body (`{"access_token", "expires_in", ...}`). HTTP
    /// 400, 401 and 403 end the session; anything else is retried. The
    /// default, with URL `"/api/auth/refresh"`.
    Url(String),
    /// Call the app's own function (see
    /// [`ConnectionOptions::refresh_with`](crate::ConnectionOptions::refresh_with)).
    Custom(RefreshFn),
    /// No refresh: a token that expires ends the session.
    Off,
}

impl Default for TokenRefresh {
    fn default() -> Self {
        Self::Url(tether_protocol::REFRESH_PATH.to_owned())
    }
}

impl std::fmt::Debug for TokenRefresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Url(url) => f.debug_tuple("Url").field(url).finish(),
            Self::Custom(_) => f.write_str("Custom(..)"),
            Self::Off => f.write_str("Off"),
        }
    }
}
