//! `tether-load`: opens many authenticated sockets against a `--dev`
//! tether-server and measures connect+auth time, server memory per socket and
//! broadcast latency (a notification to every user, or with `--topic` one
//! room's topic fan-out). See `--help`.

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tether_protocol::{Auth, ClientMessage, Ping, Secret, ServerMessage, TokenResponse};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Load generator for tether-server (needs a server started with --dev).
///
/// Opens N sockets, authenticates each (one login per user, several sockets
/// per user), pings each every few seconds, then measures the latency of one
/// `POST /api/admin/notify` broadcast to its arrival on all N sockets.
///
/// With `--topic`: the first user creates one room with every user as a
/// member, every socket subscribes to its topic, and the latency measured
/// is that of one publish (`POST /api/admin/topics/{topic}/publish`) to its
/// `message` on all N sockets.
///
/// File descriptors: each socket costs one fd here and one in the server.
/// Raise the limit in BOTH shells first, e.g. `ulimit -n 65536` (N=10,000
/// needs more than 10,100 per process). Loopback ephemeral ports
/// (/proc/sys/net/ipv4/ip_local_port_range) bound N to about 28,000 per
/// server address.
///
/// Several instances: repeat `--url` (one per instance, all on one Redis).
/// The sockets go to them in turn, `--users` at a time (every user has
/// sockets on every instance); users, the room and the
/// publish go to the first, so the fan-out to the others' sockets crosses
/// Redis. (A proxy in front would need two descriptors per socket, 20,000
/// for N=10,000, which is the hard limit on some machines.)
///
/// Example: `tether-server --dev --addr 127.0.0.1:3001 & tether-load --n 10000
/// --server-pid $!`
#[derive(Debug, Parser)]
struct Args {
    /// Base URL of the server (repeatable: the sockets are split between
    /// the instances in turn).
    #[arg(long = "url", default_value = "http://127.0.0.1:3001")]
    urls: Vec<String>,
    /// Number of sockets.
    #[arg(long, default_value_t = 10_000)]
    n: usize,
    /// Number of users the sockets are spread over (created via /api/admin/users).
    #[arg(long, default_value_t = 100)]
    users: usize,
    /// Pid of the server, to read its VmRSS from /proc/<pid>/status.
    /// Repeatable: with several instances (behind a proxy) the RSS is their
    /// sum.
    #[arg(long)]
    server_pid: Vec<u32>,
    /// Seconds between pings on each socket.
    #[arg(long, default_value_t = 5.0)]
    ping_interval: f64,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// Seconds to keep all sockets open (pinging) before the broadcast.
    #[arg(long, default_value_t = 5.0)]
    hold: f64,
    /// Give up after this many seconds in total.
    #[arg(long, default_value_t = 300.0)]
    max_seconds: f64,
    /// Measure a topic fan-out (one room, every socket subscribed) instead
    /// of the notification broadcast.
    #[arg(long)]
    topic: bool,
}

fn rss_kib(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter()
        .map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .sum()
}

fn fd_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[derive(Default)]
struct Counters {
    pongs: AtomicU64,
    pings: AtomicU64,
    errors: AtomicU64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let deadline = Duration::from_secs_f64(args.max_seconds);
    match tokio::time::timeout(deadline, run(args)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            eprintln!("tether-load: {e}");
            std::process::exit(1);
        }
        Err(_) => {
            eprintln!("tether-load: gave up after --max-seconds");
            std::process::exit(2);
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    if let Some(limit) = fd_limit()
        && limit < args.n as u64 + 100
    {
        eprintln!(
            "warning: this process may open {limit} files, fewer than --n {} needs; run `ulimit -n 65536` first",
            args.n
        );
    }
    // The admin routes want the app's own origin (the cookie rule).
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "sec-fetch-site",
        reqwest::header::HeaderValue::from_static("same-origin"),
    );
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .map_err(|e| format!("http client: {e}"))?;
    let ws_bases: Vec<String> = args
        .urls
        .iter()
        .map(|url| format!("{}/api/ws/notification", url.replacen("http", "ws", 1)))
        .collect();
    let url = args.urls.first().ok_or("no --url")?;
    let rss_before = rss_kib(&args.server_pid);

    // Users and one token each.
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let users = args.users.clamp(1, args.n.max(1));
    let mut tokens = Vec::with_capacity(users);
    let mut usernames = Vec::with_capacity(users);
    for i in 0..users {
        let username = format!("load-{}-{i}", &run_id[..8]);
        let body = serde_json::json!({"username": username, "password": "load"});
        let created = http
            .post(format!("{url}/api/admin/users"))
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("creating users: {e}"))?;
        if created.status() != 201 {
            return Err(format!(
                "creating users: HTTP {} (is the server running with --dev?)",
                created.status()
            ));
        }
        let login: TokenResponse = http
            .post(format!("{url}/api/auth/login"))
            .json(&body)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("login: {e}"))?
            .json()
            .await
            .map_err(|e| format!("login body: {e}"))?;
        tokens.push(login.access_token);
        usernames.push(username);
    }
    let topic = if args.topic {
        let response = http
            .post(format!("{url}/api/rooms"))
            .bearer_auth(tokens[0].expose())
            .json(&serde_json::json!({"name": "load", "members": &usernames[1..]}))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("creating the room: {e}"))?;
        let room: serde_json::Value = response
            .json()
            .await
            .map_err(|e| format!("room body: {e}"))?;
        let id = room["id"].as_str().ok_or("the room has no id")?;
        Some(format!("room:{id}"))
    } else {
        None
    };

    let counters = Arc::new(Counters::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (authed_tx, mut authed_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    let (arrival_tx, mut arrival_rx) = mpsc::unbounded_channel::<Instant>();
    let marker = format!("load-broadcast-{run_id}");
    let permits = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let ping_every = Duration::from_secs_f64(args.ping_interval.max(0.1));

    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.n);
    for i in 0..args.n {
        let token = tokens[i % users].clone();
        let socket = SocketTask {
            // In runs of `users` sockets, so that every user has sockets
            // on every instance.
            url: ws_bases[(i / users) % ws_bases.len()].clone(),
            token,
            permits: permits.clone(),
            authed: authed_tx.clone(),
            arrivals: arrival_tx.clone(),
            stop: stop_rx.clone(),
            counters: counters.clone(),
            marker: marker.clone(),
            topic: topic.clone(),
            ping_every,
            offset: ping_every.mul_f64((i % 1000) as f64 / 1000.0),
        };
        tasks.push(tokio::spawn(socket.run()));
    }
    drop(authed_tx);
    let mut ok = 0usize;
    let mut failed = 0usize;
    let mut first_error = None;
    while ok + failed < args.n {
        match authed_rx.recv().await {
            Some(Ok(())) => ok += 1,
            Some(Err(e)) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
            None => break,
        }
    }
    let connect_time = started.elapsed();
    println!(
        "connected+authenticated: {ok}/{} sockets in {:.2} s ({:.0}/s), {failed} failed{}",
        args.n,
        connect_time.as_secs_f64(),
        ok as f64 / connect_time.as_secs_f64(),
        first_error
            .map(|e| format!(" (first error: {e})"))
            .unwrap_or_default()
    );

    tokio::time::sleep(Duration::from_secs_f64(args.hold)).await;
    let rss_after = rss_kib(&args.server_pid);
    match (rss_before, rss_after) {
        (Some(before), Some(after)) => println!(
            "server RSS: {:.1} MiB before, {:.1} MiB with {ok} sockets, {:.1} KiB per socket",
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            (after.saturating_sub(before)) as f64 / ok.max(1) as f64
        ),
        _ => println!("server RSS: unknown (pass --server-pid)"),
    }

    // Broadcast latency.
    while arrival_rx.try_recv().is_ok() {}
    let sent = Instant::now();
    let response = match &topic {
        None => {
            http.post(format!("{url}/api/admin/notify"))
                .json(&serde_json::json!({"title": marker, "body": "latency probe"}))
                .send()
                .await
        }
        Some(topic) => {
            http.post(format!("{url}/api/admin/topics/{topic}/publish"))
                .json(&serde_json::json!({"event": marker, "data": {"probe": true}}))
                .send()
                .await
        }
    }
    .map_err(|e| format!("publish: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("publish: HTTP {}", response.status()));
    }
    let mut latencies = Vec::with_capacity(ok);
    let collect = tokio::time::timeout(Duration::from_secs(60), async {
        while latencies.len() < ok {
            match arrival_rx.recv().await {
                Some(at) => latencies.push(at.duration_since(sent)),
                None => break,
            }
        }
    })
    .await;
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{} to {} sockets{}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        if topic.is_some() {
            "topic fan-out"
        } else {
            "broadcast"
        },
        latencies.len(),
        if collect.is_err() { " (timed out)" } else { "" },
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "pings sent {}, pongs received {}, socket errors {}",
        counters.pings.load(Ordering::Relaxed),
        counters.pongs.load(Ordering::Relaxed),
        counters.errors.load(Ordering::Relaxed)
    );

    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        for task in tasks {
            let _ = task.await;
        }
    })
    .await;
    Ok(())
}

struct SocketTask {
    url: String,
    token: Secret,
    permits: Arc<Semaphore>,
    authed: mpsc::UnboundedSender<Result<(), String>>,
    arrivals: mpsc::UnboundedSender<Instant>,
    stop: watch::Receiver<bool>,
    counters: Arc<Counters>,
    marker: String,
    /// Subscribe to this topic after auth (and count its `message`s).
    topic: Option<String>,
    ping_every: Duration,
    offset: Duration,
}

impl SocketTask {
    async fn run(mut self) {
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        let connected = {
            let _permit = self.permits.acquire().await.expect("semaphore open");
            // A socket that is not connected, authenticated and (with
            // --topic) subscribed within 30 s counts as failed, so that one
            // lost handshake cannot stall the whole run.
            let setup = async {
                let (mut ws, _) = tokio_tungstenite::connect_async_with_config(
                    self.url.as_str(),
                    Some(config),
                    true,
                )
                .await
                .map_err(|e| format!("connect: {e}"))?;
                let auth = ClientMessage::Auth(Auth {
                    token: Some(self.token.clone()),
                    last_seq: None,
                });
                ws.send(Message::text(auth.encode()))
                    .await
                    .map_err(|e| format!("send auth: {e}"))?;
                match ws.next().await {
                    Some(Ok(Message::Text(t))) if t.as_str().contains("\"auth_success\"") => {}
                    other => return Err(format!("auth: {other:?}")),
                }
                if let Some(topic) = &self.topic {
                    let subscribe =
                        serde_json::json!({"type": "subscribe", "payload": {"topic": topic}});
                    ws.send(Message::text(subscribe.to_string()))
                        .await
                        .map_err(|e| format!("send subscribe: {e}"))?;
                    // Presence frames of earlier subscribers may come first.
                    loop {
                        let frame = match ws.next().await {
                            Some(Ok(Message::Text(t))) => ServerMessage::decode(t.as_str()),
                            other => return Err(format!("subscribe: {other:?}")),
                        };
                        match frame {
                            Ok(ServerMessage::Subscribed(_)) => break,
                            Ok(ServerMessage::Presence(_)) => {}
                            other => return Err(format!("subscribe: {other:?}")),
                        }
                    }
                }
                Ok(ws)
            };
            tokio::time::timeout(Duration::from_secs(30), setup)
                .await
                .unwrap_or_else(|_| Err("no auth_success (or subscribed) within 30 s".to_owned()))
        };
        let mut ws = match connected {
            Ok(ws) => {
                let _ = self.authed.send(Ok(()));
                ws
            }
            Err(e) => {
                let _ = self.authed.send(Err(e));
                return;
            }
        };
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + self.offset, self.ping_every);
        let mut seq = 0;
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    seq += 1;
                    self.counters.pings.fetch_add(1, Ordering::Relaxed);
                    if ws.send(Message::text(ClientMessage::Ping(Ping { seq }).encode())).await.is_err() {
                        self.counters.errors.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
                incoming = ws.next() => match incoming {
                    Some(Ok(Message::Text(text))) => match ServerMessage::decode(text.as_str()) {
                        Ok(ServerMessage::Pong(_)) => {
                            self.counters.pongs.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(ServerMessage::Notification(n)) if n.title == self.marker => {
                            let _ = self.arrivals.send(Instant::now());
                        }
                        Ok(ServerMessage::Message(m)) if m.event == self.marker => {
                            let _ = self.arrivals.send(Instant::now());
                        }
                        _ => {}
                    },
                    Some(Ok(_)) => {}
                    _ => {
                        self.counters.errors.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                },
                _ = self.stop.changed() => {
                    let _ = ws.close(None).await;
                    return;
                }
            }
        }
    }
}
