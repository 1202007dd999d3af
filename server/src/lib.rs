//! The reference server of the tether notification socket
//! (`shared/PROTOCOL.md`): login/refresh/logout over HTTP, the authenticated
//! WebSocket at `/api/ws/notification`, per-user notification feeds with
//! replay, at-most-once `send` delivery, rooms and their `room:<id>` topics
//! (see [`rooms`], [`topics`]), and (with `--dev`) admin routes that inject
//! faults for tests.
//!
//! Routes: `POST /api/auth/{login,refresh,logout}`, `DELETE /api/auth/session`,
//! the passkey routes of [`passkeys`], `POST /api/notifications`,
//! `GET /api/ws/notification`, `GET /api/health`, `GET/POST /api/rooms`,
//! `PUT/DELETE /api/rooms/{id}/members/{username}`; with `--dev` also
//! `GET /api/admin/{connections,received?user=}`, `POST /api/admin/{users,
//! drop-sockets,withhold-pongs,refuse-sockets,expire-tokens,notify,flood,close,
//! stall-sockets,raw}` and `POST /api/admin/topics/{topic}/{reset,publish}`
//! (see [`admin`]). What one user or socket can make the server hold is
//! bounded (see [`delivery`], [`registry::QueueLimits`], README "Server
//! limits").
//!
//! ```no_run
//! use tether_server::{AppState, Config, app};
//!
//! # async fn run() -> std::io::Result<()> {
//! let state = AppState::new(Config::dev());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! axum::serve(listener, app(state)).await
//! # }
//! ```
#![deny(missing_docs)]

pub mod accounts;
pub mod admin;
pub mod auth;
pub mod delivery;
pub mod error;
pub mod faults;
pub mod http_api;
pub mod logging;
pub mod notifications;
pub mod origin;
pub mod passkeys;
pub mod redis;
pub mod registry;
pub mod rooms;
pub mod socket;
pub mod tokens;
pub mod topics;

use axum::Router;
use axum::http::{HeaderValue, Method, Request, header};
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use origin::{AllowedOrigins, OriginPattern};

/// Server settings (the command-line flags of `tether-server`).
#[derive(Debug, Clone)]
pub struct Config {
    /// Origins allowed by CORS and the socket handshake.
    pub allowed_origins: AllowedOrigins,
    /// Lifetime of access tokens. Defaults to 300 s.
    pub token_ttl: Duration,
    /// Time a socket has to send its `auth` frame. Defaults to 10 s.
    pub auth_timeout: Duration,
    /// Enables `/api/admin/*` and cheap password hashing.
    pub dev: bool,
    /// Tiny argon2 costs (for `--dev` and tests); passwords are hashed anyway.
    pub fast_password_hashing: bool,
    /// HMAC key of the access tokens; random when `None`.
    pub jwt_secret: Option<Vec<u8>>,
    /// Adds `Secure` to the refresh cookie (when served over HTTPS).
    pub secure_cookie: bool,
    /// Frames per second a socket may send (token bucket, burst of the same size).
    pub frames_per_second: u32,
    /// Serve this directory (a built SPA, e.g. `dist/`) on the same origin as
    /// `/api`, with `index.html` for unknown paths (client-side routes).
    pub static_dir: Option<std::path::PathBuf>,
    /// Time a connection has to send a complete request head, counted from
    /// the accept and, on a kept-alive connection, from the end of the
    /// previous response (slowloris, idle connections that never upgrade).
    /// Defaults to 10 s.
    pub header_read_timeout: Duration,
    /// Longest time one HTTP request may take, body included (408 after).
    /// Defaults to 30 s.
    pub request_timeout: Duration,
    /// Longest time one socket write may wait for the peer to read; the
    /// connection is dropped after it. Defaults to 10 s.
    pub write_timeout: Duration,
    /// Bound of each socket's queue of live frames; a socket further
    /// behind is closed with 1013. Defaults to 1,024 frames and 1 MiB.
    pub queue: registry::QueueLimits,
    /// The WebAuthn relying party id: a host name, never an IP address
    /// (browsers refuse WebAuthn there). Defaults to `localhost`.
    pub rp_id: String,
    /// The origins passkey ceremonies may come from (the SPA's). Defaults
    /// to `http://localhost:8080` (the dev proxy); `tether-server` adds its
    /// own address as `localhost`.
    pub rp_origins: Vec<url::Url>,
    /// How long a passkey ceremony (its challenge) stays valid. Defaults to
    /// 5 minutes.
    pub passkey_ceremony_ttl: Duration,
    /// The shared store of several instances (`--redis-url`); `None`: this
    /// process's memory (the default).
    pub redis: Option<redis::RedisConfig>,
}

impl Config {
    /// The defaults of the command line, without `--dev`.
    pub fn production() -> Self {
        Self {
            allowed_origins: AllowedOrigins::default(),
            token_ttl: Duration::from_secs(300),
            auth_timeout: Duration::from_secs(10),
            dev: false,
            fast_password_hashing: false,
            jwt_secret: None,
            secure_cookie: false,
            frames_per_second: 200,
            static_dir: None,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(10),
            queue: registry::QueueLimits::default(),
            rp_id: "localhost".to_owned(),
            rp_origins: vec![url::Url::parse("http://localhost:8080").expect("valid url")],
            passkey_ceremony_ttl: Duration::from_secs(300),
            redis: None,
        }
    }

    /// `--dev`: admin routes, fast hashing, local origins on any port.
    pub fn dev() -> Self {
        Self {
            allowed_origins: AllowedOrigins::local_dev(),
            dev: true,
            fast_password_hashing: true,
            ..Self::production()
        }
    }
}

/// Everything the handlers share.
#[derive(Debug)]
pub struct Shared {
    /// The settings.
    pub config: Config,
    /// Accounts and login throttling.
    pub accounts: accounts::Accounts,
    /// Sessions, tokens, revocation.
    pub sessions: auth::Sessions,
    /// Authenticated sockets.
    pub registry: registry::Registry,
    /// Notification feeds.
    pub feeds: notifications::Feeds,
    /// Applied `send` frames and publish ids.
    pub inbox: delivery::Inbox,
    /// Rooms and their members.
    pub rooms: rooms::Rooms,
    /// Topic subscriptions and history.
    pub topics: topics::Topics,
    /// Fault switches.
    pub faults: faults::Faults,
    /// Passkeys and passkey ceremonies.
    pub passkeys: passkeys::Passkeys,
    /// The shared store, when `config.redis` is set.
    pub redis: Option<redis::Redis>,
    next_socket_id: std::sync::atomic::AtomicU64,
}

/// Cheaply clonable handle on the server state.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// State in this process's memory for `config`, with the demo users
    /// `alice` and `bob`.
    ///
    /// # Panics
    /// If `config.rp_id` / `config.rp_origins` are not a valid relying
    /// party (check first with [`passkeys::Passkeys::new`]), or if
    /// `config.redis` is set (use [`AppState::connect`]).
    pub fn new(config: Config) -> Self {
        assert!(
            config.redis.is_none(),
            "AppState::new is memory-only: use AppState::connect with a Redis config"
        );
        Self::build(config, None)
    }

    /// State for `config`: on the shared Redis store when `config.redis` is
    /// set (connecting first), else as [`AppState::new`].
    ///
    /// # Errors
    /// [`redis::StoreError::Unavailable`] when Redis cannot be reached.
    ///
    /// # Panics
    /// As [`AppState::new`], for an invalid relying party.
    pub async fn connect(config: Config) -> Result<Self, redis::StoreError> {
        let redis = match &config.redis {
            Some(settings) => Some(redis::Redis::connect(settings).await?),
            None => None,
        };
        Ok(Self::build(config, redis))
    }

    fn build(config: Config, redis: Option<redis::Redis>) -> Self {
        let passkeys = passkeys::Passkeys::new(&config).expect("a valid relying party");
        let key = match &config.jwt_secret {
            Some(secret) => tokens::TokenKey::new(secret.clone()),
            None => tokens::TokenKey::random(),
        };
        Self(Arc::new(Shared {
            accounts: accounts::Accounts::new(config.fast_password_hashing),
            sessions: auth::Sessions::new(key, config.token_ttl),
            registry: registry::Registry::default(),
            feeds: notifications::Feeds::default(),
            inbox: delivery::Inbox::default(),
            rooms: rooms::Rooms::default(),
            topics: topics::Topics::default(),
            faults: faults::Faults::default(),
            passkeys,
            redis,
            next_socket_id: std::sync::atomic::AtomicU64::new(1),
            config,
        }))
    }

    /// A fresh socket id.
    pub fn next_socket_id(&self) -> u64 {
        self.next_socket_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Publishes one notification to every user (the `--demo-feed` tick and
    /// the admin broadcast); returns how many users got one.
    pub fn broadcast(&self, title: &str, body: &str) -> usize {
        let users = self.accounts.all();
        for user in &users {
            self.feeds.publish(user.id, title, body);
        }
        users.len()
    }

    /// Asks every socket to close with 1001 (going away), for shutdown.
    pub fn close_all(&self, reason: &str) -> usize {
        self.registry.send_to(
            None,
            &registry::Outbound::Close {
                code: tether_protocol::close_code::GOING_AWAY,
                reason: reason.to_owned(),
            },
        )
    }
}

/// The router: `/api/auth/*`, `/api/notifications`, `/api/ws/notification`,
/// `/api/health`, `/api/rooms*`, and `/api/admin/*` when `config.dev`.
pub fn app(state: AppState) -> Router {
    let origins = state.config.allowed_origins.clone();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin.to_str().is_ok_and(|o| origins.allows(o))
        }))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION]);
    // Spans carry the path only: the query may hold `token=...`.
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request<_>| {
            tracing::info_span!("http", method = %request.method(), path = %request.uri().path())
        })
        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO));
    let timeout = tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        state.config.request_timeout,
    );
    let mut router = http_api::routes()
        .merge(rooms::routes())
        .merge(passkeys::routes());
    if state.config.dev {
        router = router.merge(admin::routes(&state));
    }
    if let Some(dir) = &state.config.static_dir {
        let index = tower_http::services::ServeFile::new(dir.join("index.html"));
        router = router.fallback_service(tower_http::services::ServeDir::new(dir).fallback(index));
    }
    router
        .layer(timeout)
        .layer(cors)
        .layer(trace)
        .with_state(state)
}

/// Serves [`app`] on `listener` until `shutdown` resolves, then waits for
/// the HTTP connections in progress (not the upgraded sockets: close those
/// first, see [`AppState::close_all`]).
///
/// Unlike `axum::serve` this applies [`Config::header_read_timeout`] (a
/// connection that sends nothing, half a request head, or idles between
/// requests is closed after it) and hands each request the peer address as
/// [`axum::extract::ConnectInfo`] (the per-client login limit). HTTP/1.1
/// only.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::Service as _;

    let header_read_timeout = state.config.header_read_timeout;
    let router = app(state);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Per-connection errors (the peer reset before the accept,
                // too many open files): keep serving.
                Err(err) => {
                    tracing::debug!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service =
            hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                router.clone().call(request)
            });
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(err) = result {
                        tracing::debug!(%err, "connection ended");
                    }
                    return;
                }
                _ = stop.changed() => connection.as_mut().graceful_shutdown(),
            }
            if let Err(err) = connection.await {
                tracing::debug!(%err, "connection ended");
            }
        });
    }
    drop(listener);
    drop(stop_rx);
    let _ = stop_tx.send(());
    stop_tx.closed().await;
    Ok(())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// `N` bytes from the operating system's random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    bytes
}
