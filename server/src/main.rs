//! `tether-server`: the reference server. See `--help`.

use clap::Parser;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;
use tether_server::{AllowedOrigins, AppState, Config, OriginPattern};

/// Reference server of the tether notification socket (shared/PROTOCOL.md).
///
/// Prints exactly one line `listening on http://<addr>` to stdout once bound.
/// Logs go to stderr; filter with RUST_LOG (default `info,tower_http=info`);
/// the frame-level logs of tungstenite and hyper stay off whatever it says.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:3001")]
    addr: SocketAddr,
    /// An origin allowed by CORS and the socket handshake, exact
    /// (`http://localhost:8080`) or any port (`http://127.0.0.1:*`).
    /// Repeatable. With --dev and none given: http://127.0.0.1:* and
    /// http://localhost:*.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    allowed_origins: Vec<OriginPattern>,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, value_name = "SECONDS", default_value = "300", value_parser = seconds)]
    token_ttl: Duration,
    /// Time a socket has to send its `auth` frame, in seconds (fractions allowed).
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = seconds)]
    auth_timeout: Duration,
    /// Development mode: /api/admin/* routes, cheap password hashing, local origins.
    #[arg(long)]
    dev: bool,
    /// Send a notification to every user every SECONDS.
    #[arg(long, value_name = "SECONDS", value_parser = seconds)]
    demo_feed: Option<Duration>,
    /// HMAC key of the access tokens; random per start when unset.
    #[arg(long, env = "TETHER_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Mark the refresh cookie `Secure` (when served over HTTPS).
    #[arg(long)]
    secure_cookie: bool,
    /// Serve a built SPA (e.g. `dist/`) from this directory on the same
    /// origin as /api, with index.html for client-side routes.
    #[arg(long, value_name = "DIR")]
    static_dir: Option<std::path::PathBuf>,
    /// The WebAuthn relying party id of passkeys: a host name (browsers
    /// refuse WebAuthn on an IP address), the host or a parent domain of
    /// every --rp-origin.
    #[arg(long, value_name = "HOST", default_value = "localhost")]
    rp_id: String,
    /// An origin passkey ceremonies may come from (the SPA's page).
    /// Repeatable. Default: http://localhost:<port of --addr> and the dev
    /// proxy http://localhost:8080.
    #[arg(long = "rp-origin", value_name = "ORIGIN")]
    rp_origins: Vec<url::Url>,
    /// Share state with other instances on this Redis
    /// (`redis://[:password@]host:port[/db]`); without it everything lives
    /// in this process's memory. See README "Scaling out".
    #[arg(
        long,
        value_name = "URL",
        env = "TETHER_REDIS_URL",
        hide_env_values = true
    )]
    redis_url: Option<String>,
    /// Prefix of every Redis key and channel: instances that share state
    /// use the same one.
    #[arg(long, value_name = "PREFIX", default_value = tether_server::redis::RedisConfig::DEFAULT_PREFIX)]
    redis_prefix: String,
}

fn seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{e}"))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tether_server::logging::init().expect("no other logger is installed");
    let args = Args::parse();
    let allowed_origins = if args.allowed_origins.is_empty() && args.dev {
        AllowedOrigins::local_dev()
    } else {
        AllowedOrigins::new(args.allowed_origins)
    };
    if allowed_origins.patterns().is_empty() {
        tracing::warn!("no --allowed-origin: browsers cannot use this server");
    }
    // Bound first: the default --rp-origin names the port picked for 0.
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let addr = listener.local_addr()?;
    let rp_origins = if args.rp_origins.is_empty() {
        tether_server::passkeys::default_rp_origins(addr.port())
    } else {
        args.rp_origins
    };
    let config = Config {
        rp_id: args.rp_id,
        rp_origins,
        allowed_origins,
        token_ttl: args.token_ttl,
        auth_timeout: args.auth_timeout,
        dev: args.dev,
        fast_password_hashing: args.dev,
        jwt_secret: args.jwt_secret.map(String::into_bytes),
        secure_cookie: args.secure_cookie,
        static_dir: args.static_dir,
        redis: args.redis_url.map(|url| tether_server::redis::RedisConfig {
            url,
            prefix: args.redis_prefix,
        }),
        ..Config::production()
    };
    if let Err(err) = tether_server::passkeys::Passkeys::new(&config) {
        eprintln!("error: {err}");
        std::process::exit(2);
    }
    let store = config.redis.as_ref().map(|r| r.redacted());
    let state = match AppState::connect(config).await {
        Ok(state) => state,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::exit(2);
        }
    };
    if let Some(store) = &store {
        tracing::info!(%store, "sharing state on Redis");
    }
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{addr}")?;
        stdout.flush()?;
    }
    tracing::info!(%addr, dev = args.dev, "server started");
    if let Some(period) = args.demo_feed.filter(|p| !p.is_zero()) {
        let feed_state = state.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            ticker.tick().await;
            let mut n = 0u64;
            loop {
                ticker.tick().await;
                n += 1;
                feed_state.broadcast("Demo", &format!("Demo notification #{n}"));
            }
        });
    }
    let shutdown_state = state.clone();
    tether_server::serve(listener, state, async move {
        shutdown_signal().await;
        let closed = shutdown_state.close_all("server restart");
        tracing::info!(closed, "shutting down");
        // Give sockets a moment to send their 1001 close frames.
        tokio::time::sleep(Duration::from_millis(300)).await;
    })
    .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
