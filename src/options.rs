//! [`ConnectionOptions`]: everything configurable, each with a default.

use crate::token::{FreshToken, RefreshError, TokenRefresh, TokenStorage};
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;
pub use tether_core::{Adapter, Backoff, Config, Keepalive};

/// A navigation callback: called with the route to go to.
pub type Navigate = Rc<dyn Fn(&str)>;

/// Makes the [`Adapter`] of a new connection.
pub type AuthFactory = Rc<dyn Fn() -> Box<dyn Adapter>>;

/// Options of [`provide_connection_manager`](crate::provide_connection_manager).
///
/// The connection machine's own settings live in [`config`](Self::config)
/// (one [`tether_core::Config`], not a copy of its fields); the setters
/// below write into it.
///
/// ```
/// use std::time::Duration;
/// use tether::{ConnectionOptions, TokenStorage};
///
/// let options = ConnectionOptions::default()
///     .url("wss://api.example.com/api/ws/notification")
///     .storage_key("my-app.token")
///     .refresh_url("/api/auth/refresh")
///     .connect_timeout(Duration::from_secs(5))
///     .protocols(["v1.tether"]);
/// assert_eq!(options.config.login_route, "/login");
/// assert_eq!(options.storage, TokenStorage::Local("my-app.token".into()));
///
/// // A Chanx server instead of the contract's (refresh goes off with it):
/// let chanx = ConnectionOptions::default().adapter(tether::ChanxAuth::query());
/// assert!(format!("{chanx:?}").contains("ChanxAuth"));
/// assert!(matches!(chanx.refresh, tether::TokenRefresh::Off));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct ConnectionOptions {
    /// The connection machine's settings, each documenting its default:
    /// socket URL (`/api/ws/notification`; resolved against the page the
    /// way the browser resolves links, `http(s)` mapped to `ws(s)`), token
    /// in the query (on), backoff, keepalive, refresh lead, outbox bounds,
    /// frame limit, connect timeout, login route. Its `seed` is replaced by
    /// real randomness when the manager starts. Defaults to
    /// [`Config::default`].
    pub config: Config,
    /// Where the access token lives. Defaults to
    /// `TokenStorage::Local("tether.access_token")`.
    pub storage: TokenStorage,
    /// How a fresh token is obtained. Defaults to
    /// `TokenRefresh::Url("/api/auth/refresh")`.
    pub refresh: TokenRefresh,
    /// How navigation to the login route happens after a final
    /// authentication failure. `None` pushes the route onto the History API
    /// and fires `popstate`, which leptos_router (and any History-based
    /// router) follows. Defaults to `None`.
    pub navigate: Option<Navigate>,
    /// Connect once the provider's component has rendered (with the stored
    /// token, if any). Defaults to `true`.
    pub connect_on_mount: bool,
    /// WebSocket subprotocols offered in the handshake
    /// (`Sec-WebSocket-Protocol`). Defaults to none.
    pub protocols: Vec<String>,
    /// The wire protocol (handshake, keepalive, message envelope, acks,
    /// incoming frames, final closes); set it with
    /// [`adapter`](Self::adapter). Defaults to
    /// [`ContractAuth`](tether_core::ContractAuth), `shared/PROTOCOL.md`;
    /// [`ChanxAuth`](tether_core::ChanxAuth) speaks Chanx.
    pub auth: AuthFactory,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        Self {
            config: Config::default(),
            storage: TokenStorage::default(),
            refresh: TokenRefresh::default(),
            navigate: None,
            connect_on_mount: true,
            protocols: Vec::new(),
            auth: Rc::new(|| Box::new(tether_core::ContractAuth)),
        }
    }
}

impl std::fmt::Debug for ConnectionOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionOptions")
            .field("config", &self.config)
            .field("storage", &self.storage)
            .field("refresh", &self.refresh)
            .field("navigate", &self.navigate.as_ref().map(|_| "custom"))
            .field("connect_on_mount", &self.connect_on_mount)
            .field("protocols", &self.protocols)
            .field("auth", &(self.auth)())
            .finish()
    }
}

macro_rules! config_setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {
        impl ConnectionOptions {
            $(
                $(#[$doc])*
                pub fn $name(mut self, value: impl Into<$ty>) -> Self {
                    self.config.$name = value.into();
                    self
                }
            )*
        }
    };
}

config_setters! {
    /// Sets the socket URL ([`Config::url`]): `ws(s)://` as it is,
    /// `http(s)://` mapped, `//host/path`, absolute and relative paths
    /// resolved against the page.
    url: String,
    /// Sets [`Config::token_in_query`]. URLs end up in proxy and server
    /// access logs, so turn it off if your server reads the token from the
    /// `auth` frame only.
    token_in_query: bool,
    /// Sets [`Config::login_route`].
    login_route: String,
    /// Sets [`Config::backoff`].
    backoff: Backoff,
    /// Sets [`Config::keepalive`].
    keepalive: Keepalive,
    /// Sets [`Config::refresh_lead`].
    refresh_lead: Duration,
    /// Sets [`Config::outbox_capacity`].
    outbox_capacity: usize,
    /// Sets [`Config::outbox_max_age`].
    outbox_max_age: Duration,
    /// Sets [`Config::max_frame_bytes`].
    max_frame_bytes: usize,
    /// Sets [`Config::connect_timeout`].
    connect_timeout: Duration,
}

impl ConnectionOptions {
    /// Sets [`config`](Self::config) as a whole.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Sets [`storage`](Self::storage).
    pub fn storage(mut self, storage: TokenStorage) -> Self {
        self.storage = storage;
        self
    }

    /// Keeps the token under `key`: in `sessionStorage` if that is the
    /// storage already chosen, otherwise in `localStorage`.
    pub fn storage_key(mut self, key: impl Into<String>) -> Self {
        self.storage = match self.storage {
            TokenStorage::Session(_) => TokenStorage::Session(key.into()),
            _ => TokenStorage::Local(key.into()),
        };
        self
    }

    /// Refreshes by `POST`ing `url` with the refresh cookie
    /// ([`TokenRefresh::Url`]).
    pub fn refresh_url(mut self, url: impl Into<String>) -> Self {
        self.refresh = TokenRefresh::Url(url.into());
        self
    }

    /// Turns token refresh off ([`TokenRefresh::Off`]).
    pub fn no_refresh(mut self) -> Self {
        self.refresh = TokenRefresh::Off;
        self
    }

    /// Refreshes with the app's own async function ([`TokenRefresh::Custom`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tether::{ConnectionOptions, FreshToken, RefreshError, Secret};
    ///
    /// let options = ConnectionOptions::default().refresh_with(|| async {
    ///     // ... ask your auth provider ...
    ///     let ok = true;
    ///     if ok {
    ///         Ok(FreshToken { token: Secret::new("new token"), expires_in: Some(Duration::from_secs(300)) })
    ///     } else {
    ///         Err(RefreshError::rejected("the session ended"))
    ///     }
    /// });
    /// assert!(format!("{options:?}").contains("Custom"));
    /// ```
    pub fn refresh_with<F, Fut>(mut self, refresh: F) -> Self
    where
        F: Fn() -> Fut + 'static,
        Fut: Future<Output = Result<FreshToken, RefreshError>> + 'static,
    {
        self.refresh = TokenRefresh::Custom(Rc::new(move || Box::pin(refresh())));
        self
    }

    /// Sets [`connect_on_mount`](Self::connect_on_mount).
    pub fn connect_on_mount(mut self, connect: bool) -> Self {
        self.connect_on_mount = connect;
        self
    }

    /// Sets [`protocols`](Self::protocols).
    pub fn protocols<I>(mut self, protocols: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Speaks `adapter`'s protocol, e.g. `ChanxAuth::query()` for a Chanx
    /// server. When the adapter says refresh makes no sense
    /// ([`Adapter::refresh`], false for Chanx) this also turns
    /// [`refresh`](Self::refresh) off; call a `refresh_*` setter afterwards
    /// to turn it back on.
    pub fn adapter<A: Adapter + Clone + 'static>(mut self, adapter: A) -> Self {
        if !adapter.refresh() {
            self.refresh = TokenRefresh::Off;
        }
        self.auth = Rc::new(move || Box::new(adapter.clone()));
        self
    }

    /// Sets [`navigate`](Self::navigate), e.g. to leptos_router's
    /// `use_navigate()` when you need navigation options.
    pub fn navigate(mut self, navigate: impl Fn(&str) + 'static) -> Self {
        self.navigate = Some(Rc::new(navigate));
        self
    }
}
