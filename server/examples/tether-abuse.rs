//! `tether-abuse`: the hostile clients of issue 15 against a running
//! `--dev` tether-server, with the server's memory (VmRSS) before and after
//! each. See `--help`.

use clap::{Parser, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tether_protocol::{Auth, ClientMessage, Secret, TokenResponse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

/// Hostile-client scenarios against a tether-server started with --dev;
/// prints what each made the server hold.
///
/// Example: `tether-server --dev & tether-abuse --server-pid $! bodies`
#[derive(Debug, Parser)]
struct Args {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:3001")]
    url: String,
    /// Pid of the server, to read its VmRSS from /proc/<pid>/status.
    #[arg(long)]
    server_pid: u32,
    /// Scenario to run.
    scenario: Scenario,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Scenario {
    /// 200 sends of a 64 KiB `[{},{},...]` body.
    Bodies,
    /// 200 sends with 60 KB ids.
    Ids,
    /// 200,000 notifications to a socket that never reads.
    NeverRead,
    /// 200 TCP connections that send half a request head, or nothing.
    Slowloris,
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the server runs");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Client {
    url: String,
    http: reqwest::Client,
    username: String,
}

impl Client {
    async fn new(url: &str) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "sec-fetch-site",
            reqwest::header::HeaderValue::from_static("same-origin"),
        );
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap();
        let username = format!("abuse-{}", uuid::Uuid::new_v4().simple());
        let created = http
            .post(format!("{url}/api/admin/users"))
            .json(&serde_json::json!({"username": username, "password": "pw"}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201, "is the server running with --dev?");
        Self {
            url: url.to_owned(),
            http,
            username,
        }
    }

    async fn socket(&self) -> Ws {
        let login: TokenResponse = self
            .http
            .post(format!("{}/api/auth/login", self.url))
            .json(&serde_json::json!({"username": self.username, "password": "pw"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ws_url = format!("{}/api/ws/notification", self.url.replacen("http", "ws", 1));
        let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
        let auth = ClientMessage::Auth(Auth {
            token: Some(Secret::new(login.access_token.expose())),
            last_seq: None,
        });
        ws.send(Message::text(auth.encode())).await.unwrap();
        let reply = ws.next().await.unwrap().unwrap();
        assert!(reply.to_text().unwrap().contains("auth_success"));
        ws
    }

    async fn connections(&self) -> usize {
        let list: serde_json::Value = self
            .http
            .get(format!("{}/api/admin/connections", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .filter(|c| c["username"] == self.username.as_str())
            .count()
    }
}

/// Sends `frames`, reading every answer; returns (acks, other answers).
async fn send_all(ws: &mut Ws, frames: Vec<String>) -> (usize, usize) {
    let n = frames.len();
    let (mut acks, mut other) = (0, 0);
    for frame in frames {
        ws.send(Message::text(frame)).await.unwrap();
    }
    for _ in 0..n {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.as_str().contains("\"ack\"") => acks += 1,
            Some(Ok(_)) => other += 1,
            _ => break,
        }
    }
    (acks, other)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let before = rss_kib(args.server_pid);
    let started = Instant::now();
    let summary = match args.scenario {
        Scenario::Bodies => {
            let client = Client::new(&args.url).await;
            let mut ws = client.socket().await;
            let body = format!("[{}{{}}]", "{},".repeat(21_000));
            let frames = (0..200)
                .map(|i| format!(r#"{{"type":"send","payload":{{"id":"b-{i}","body":{body}}}}}"#))
                .collect();
            let (acks, other) = send_all(&mut ws, frames).await;
            format!(
                "200 sends of {} B ({} KiB in all): {acks} acked, {other} other answers",
                body.len(),
                200 * body.len() / 1024
            )
        }
        Scenario::Ids => {
            let client = Client::new(&args.url).await;
            let mut ws = client.socket().await;
            let frames = (0..200)
                .map(|i| {
                    let id = format!("{i}-{}", "i".repeat(60_000));
                    format!(r#"{{"type":"send","payload":{{"id":"{id}","body":1}}}}"#)
                })
                .collect();
            let (acks, other) = send_all(&mut ws, frames).await;
            format!("200 sends with 60 KB ids: {acks} acked, {other} refused")
        }
        Scenario::NeverRead => {
            let client = Client::new(&args.url).await;
            let _ws = client.socket().await;
            let response = client
                .http
                .post(format!("{}/api/admin/notify", args.url))
                .json(&serde_json::json!({"username": client.username, "count": 200_000}))
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success());
            let published = started.elapsed();
            let mut still = client.connections().await;
            while still > 0 && started.elapsed() < Duration::from_secs(120) {
                tokio::time::sleep(Duration::from_millis(100)).await;
                still = client.connections().await;
            }
            format!(
                "200,000 notifications published in {:.1} s; socket {} {:.1} s after the start",
                published.as_secs_f64(),
                if still == 0 {
                    "unregistered"
                } else {
                    "STILL registered"
                },
                started.elapsed().as_secs_f64()
            )
        }
        Scenario::Slowloris => {
            let authority = args.url.strip_prefix("http://").unwrap().to_owned();
            let mut tasks = Vec::new();
            for i in 0..200 {
                let authority = authority.clone();
                tasks.push(tokio::spawn(async move {
                    let mut stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
                    if i % 2 == 0 {
                        stream
                            .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                            .await
                            .unwrap();
                    }
                    let opened = Instant::now();
                    let mut buf = [0u8; 1024];
                    loop {
                        match tokio::time::timeout(Duration::from_secs(120), stream.read(&mut buf))
                            .await
                        {
                            Ok(Ok(0) | Err(_)) => return Some(opened.elapsed()),
                            Ok(Ok(_)) => {}
                            Err(_) => return None,
                        }
                    }
                }));
            }
            let mut closed = Vec::new();
            let mut open = 0;
            for task in tasks {
                match task.await.unwrap() {
                    Some(after) => closed.push(after.as_secs_f64()),
                    None => open += 1,
                }
            }
            closed.sort_by(f64::total_cmp);
            format!(
                "200 half-open connections: {} closed (after {:.2} to {:.2} s), {open} still open after 120 s",
                closed.len(),
                closed.first().copied().unwrap_or(f64::NAN),
                closed.last().copied().unwrap_or(f64::NAN)
            )
        }
    };
    // Let the allocator settle before the second reading.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib(args.server_pid);
    println!(
        "{summary}; server RSS {:.1} MiB -> {:.1} MiB ({:+.1} MiB)",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        (after as f64 - before as f64) / 1024.0
    );
}
