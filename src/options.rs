//! [`ConnectionOptions`]: everything configurable, each with a default.

use std::rc::Rc;
use std::time::Duration;
pub use tether_core::{AuthHandler, Backoff, Keepalive};

/// A navigation callback: called with the route to go to.
pub type Navigate = Rc<dyn Fn(&str)>;

/// Makes the [`AuthHandler`] of a new connection.
pub type AuthFactory = Rc<dyn Fn() -> Box<dyn AuthHandler>>;

/// Options of [`provide_connection_manager`](crate::provide_connection_manager).
///
/// ```
/// use std::time::Duration;
/// use tether::ConnectionOptions;
///
/// let options = ConnectionOptions::default()
///     .url("wss://api.example.com/api/ws/notification")
///     .storage_key("my-app.token")
///     .refresh_lead(Duration::from_secs(30));
/// assert_eq!(options.login_route, "/login");
///
/// // A server that speaks the Chanx handshake instead of the contract's:
/// let chanx = ConnectionOptions::default().auth_handler(tether::ChanxAuth { cookie: false });
/// assert!(format!("{chanx:?}").contains("ChanxAuth"));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct ConnectionOptions {
    /// Socket URL. A path (`/api/...`) is resolved against the page's origin,
    /// `http(s)://` becomes `ws(s)://`. Defaults to `"/api/ws/notification"`.
    pub url: String,
    /// Append `?token=<access token>` to the socket URL. URLs end up in proxy
    /// and server access logs, so turn this off if your server reads the
    /// token from the `auth` frame only (the contract allows both).
    /// Defaults to `true`.
    pub token_in_query: bool,
    /// `localStorage` key of the access token. Defaults to `"tether.access_token"`.
    pub storage_key: String,
    /// Endpoint that trades the HTTP-only refresh cookie for a new access
    /// token; `None` disables refresh. Defaults to `Some("/api/auth/refresh")`.
    pub refresh_url: Option<String>,
    /// Route to navigate to after a final authentication failure.
    /// Defaults to `"/login"`.
    pub login_route: String,
    /// How navigation to [`login_route`](Self::login_route) happens. `None`
    /// pushes the route onto the History API and fires `popstate`, which
    /// leptos_router (and any History-based router) follows.
    /// Defaults to `None`.
    pub navigate: Option<Navigate>,
    /// Reconnect backoff. Defaults to 500 ms × 2 per attempt, capped at
    /// 30 s, full jitter, at most 10 attempts.
    pub backoff: Backoff,
    /// Ping interval and pong timeouts. Defaults to a ping every 5 s and
    /// 4 s to answer, so a dead link is noticed within 10 s.
    pub keepalive: Keepalive,
    /// Refresh the token this long before it expires (at most half its
    /// lifetime). Defaults to 60 s.
    pub refresh_lead: Duration,
    /// Messages accepted by `send` and not yet acked, at most. Defaults to 1,000.
    pub outbox_capacity: usize,
    /// Largest frame accepted or sent, in bytes. Defaults to 64 KiB.
    pub max_frame_bytes: usize,
    /// Connect as soon as the provider mounts (if a token is stored).
    /// Defaults to `true`.
    pub connect_on_mount: bool,
    /// The wire side of the authentication handshake; set it with
    /// [`auth_handler`](Self::auth_handler). Defaults to
    /// [`ContractAuth`](tether_core::ContractAuth), the `auth` frame of
    /// `shared/PROTOCOL.md`; [`ChanxAuth`](tether_core::ChanxAuth) speaks
    /// the Chanx server-initiated handshake.
    pub auth: AuthFactory,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        let core = tether_core::Config::default();
        Self {
            url: tether_protocol::WS_PATH.to_owned(),
            token_in_query: true,
            storage_key: "tether.access_token".to_owned(),
            refresh_url: Some(tether_protocol::REFRESH_PATH.to_owned()),
            login_route: core.login_route,
            navigate: None,
            backoff: core.backoff,
            keepalive: core.keepalive,
            refresh_lead: core.refresh_lead,
            outbox_capacity: core.outbox_capacity,
            max_frame_bytes: core.max_frame_bytes,
            connect_on_mount: true,
            auth: Rc::new(|| Box::new(tether_core::ContractAuth)),
        }
    }
}

impl std::fmt::Debug for ConnectionOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionOptions")
            .field("url", &self.url)
            .field("token_in_query", &self.token_in_query)
            .field("storage_key", &self.storage_key)
            .field("refresh_url", &self.refresh_url)
            .field("login_route", &self.login_route)
            .field("navigate", &self.navigate.as_ref().map(|_| "custom"))
            .field("backoff", &self.backoff)
            .field("keepalive", &self.keepalive)
            .field("refresh_lead", &self.refresh_lead)
            .field("outbox_capacity", &self.outbox_capacity)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("connect_on_mount", &self.connect_on_mount)
            .field("auth", &(self.auth)())
            .finish()
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {
        impl ConnectionOptions {
            $(
                $(#[$doc])*
                pub fn $name(mut self, value: impl Into<$ty>) -> Self {
                    self.$name = value.into();
                    self
                }
            )*
        }
    };
}

setters! {
    /// Sets [`url`](Self::url).
    url: String,
    /// Sets [`token_in_query`](Self::token_in_query).
    token_in_query: bool,
    /// Sets [`storage_key`](Self::storage_key).
    storage_key: String,
    /// Sets [`refresh_url`](Self::refresh_url).
    refresh_url: Option<String>,
    /// Sets [`login_route`](Self::login_route).
    login_route: String,
    /// Sets [`backoff`](Self::backoff).
    backoff: Backoff,
    /// Sets [`keepalive`](Self::keepalive).
    keepalive: Keepalive,
    /// Sets [`refresh_lead`](Self::refresh_lead).
    refresh_lead: Duration,
    /// Sets [`outbox_capacity`](Self::outbox_capacity).
    outbox_capacity: usize,
    /// Sets [`max_frame_bytes`](Self::max_frame_bytes).
    max_frame_bytes: usize,
    /// Sets [`connect_on_mount`](Self::connect_on_mount).
    connect_on_mount: bool,
}

impl ConnectionOptions {
    /// Uses `handler` for the authentication handshake, e.g.
    /// `ChanxAuth { cookie: false }` for a Chanx server.
    pub fn auth_handler<H: AuthHandler + Clone + 'static>(mut self, handler: H) -> Self {
        self.auth = Rc::new(move || Box::new(handler.clone()));
        self
    }

    /// Sets [`navigate`](Self::navigate), e.g. to leptos_router's
    /// `use_navigate()` when you need navigation options.
    pub fn navigate(mut self, navigate: impl Fn(&str) + 'static) -> Self {
        self.navigate = Some(Rc::new(navigate));
        self
    }

    /// The core's configuration, with the URL resolved against `origin`
    /// (`"https://app.example.com"`), and the given seed.
    pub(crate) fn to_core(&self, origin: Option<&str>, seed: u64) -> tether_core::Config {
        tether_core::Config {
            url: resolve_ws_url(&self.url, origin),
            token_in_query: self.token_in_query,
            backoff: self.backoff,
            keepalive: self.keepalive,
            refresh_lead: self.refresh_lead,
            outbox_capacity: self.outbox_capacity,
            max_frame_bytes: self.max_frame_bytes,
            login_route: self.login_route.clone(),
            seed,
            ..tether_core::Config::default()
        }
    }
}

/// Turns a configured URL into a WebSocket URL.
fn resolve_ws_url(url: &str, origin: Option<&str>) -> String {
    if url.starts_with("ws://") || url.starts_with("wss://") {
        return url.to_owned();
    }
    if let Some(rest) = url.strip_prefix("http://") {
        return format!("ws://{rest}");
    }
    if let Some(rest) = url.strip_prefix("https://") {
        return format!("wss://{rest}");
    }
    match origin {
        Some(origin) => {
            let base = resolve_ws_url(origin.trim_end_matches('/'), None);
            let sep = if url.starts_with('/') { "" } else { "/" };
            format!("{base}{sep}{url}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::resolve_ws_url;

    #[test]
    fn urls_resolve_against_the_page() {
        let cases = [
            (
                "/api/ws/notification",
                Some("http://localhost:8080"),
                "ws://localhost:8080/api/ws/notification",
            ),
            (
                "/api/ws/notification",
                Some("https://app.example"),
                "wss://app.example/api/ws/notification",
            ),
            (
                "wss://x.example/ws",
                Some("http://localhost"),
                "wss://x.example/ws",
            ),
            ("https://x.example/ws", None, "wss://x.example/ws"),
            (
                "http://127.0.0.1:3001/api/ws/notification",
                None,
                "ws://127.0.0.1:3001/api/ws/notification",
            ),
        ];
        for (url, origin, expected) in cases {
            assert_eq!(resolve_ws_url(url, origin), expected);
        }
    }
}
