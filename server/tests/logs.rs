//! Tokens and passwords never reach the server's logs: runs the real
//! `tether-server` binary (its own logging setup) with `RUST_LOG=trace`,
//! drives a full session over real sockets, and searches its stderr.

use futures_util::{SinkExt, StreamExt};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tether_protocol::{Auth, ClientMessage, Secret, TokenResponse};
use tokio_tungstenite::tungstenite::Message;

/// Longest wait for any expected event.
const WAIT: Duration = Duration::from_secs(10);

/// The server process, killed (by its PID) and reaped however the test ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text frame, within [`WAIT`].
async fn next_text(ws: &mut Ws) -> String {
    tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => return text.as_str().to_owned(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    })
    .await
    .expect("no frame within the timeout")
}

#[tokio::test]
async fn tokens_and_passwords_never_appear_in_the_trace_log() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tether-server"))
        .args(["--dev", "--addr", "127.0.0.1:0"])
        .env("RUST_LOG", "trace")
        .env_remove("TETHER_JWT_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut server = Server(child);
    let captured = Arc::new(Mutex::new(Vec::new()));
    let sink = captured.clone();
    let reader = std::thread::spawn(move || {
        let mut stderr = stderr;
        let mut buf = [0u8; 8192];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    let addr = base.strip_prefix("http://").unwrap().to_owned();
    let http = reqwest::Client::builder().timeout(WAIT).build().unwrap();

    let password = "wonderland";
    let response = http
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({"username": "alice", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let refresh_secret = cookie.split_once('.').unwrap().1.to_owned();
    let token = response.json::<TokenResponse>().await.unwrap().access_token;
    let token = token.expose().to_owned();
    // A failed login whose body echoes a secret-looking value.
    let bad = http
        .post(format!("{base}/api/auth/login"))
        .header("content-type", "application/json")
        .body(r#"{"username":"alice","password":12345678}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let bad = http
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({"username": "alice", "password": "hunter2-secret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    assert!(!bad.text().await.unwrap().contains("hunter2-secret"));

    // Socket with the token in the query and in the auth frame, then a
    // ping and a send: every frame tungstenite reads goes through its trace
    // logging.
    let url = format!("ws://{addr}/api/ws/notification?token={token}");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let frame = ClientMessage::Auth(Auth {
        token: Some(Secret::new(token.clone())),
        last_seq: None,
    });
    ws.send(Message::text(frame.encode())).await.unwrap();
    assert!(next_text(&mut ws).await.contains("auth_success"));
    ws.send(Message::text(r#"{"type":"ping","payload":{"seq":7}}"#))
        .await
        .unwrap();
    assert!(next_text(&mut ws).await.contains("pong"));
    // A token of the wrong type in a frame: the error frame must not echo it.
    let (mut ws2, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/ws/notification"))
        .await
        .unwrap();
    ws2.send(Message::text(format!(
        r#"{{"type":"auth","payload":{{"token":["{token}"]}}}}"#
    )))
    .await
    .unwrap();
    assert!(!next_text(&mut ws2).await.contains(&token));
    // Invalid token in the query: the auth_error must not echo it.
    let (mut ws3, _) = tokio_tungstenite::connect_async(format!(
        "ws://{addr}/api/ws/notification?token=not-a-token-SECRETX"
    ))
    .await
    .unwrap();
    ws3.send(Message::text(r#"{"type":"auth","payload":{}}"#))
        .await
        .unwrap();
    let reply = next_text(&mut ws3).await;
    assert!(reply.contains("invalid_token"), "{reply}");
    assert!(!reply.contains("SECRETX"), "{reply}");
    // Refresh with the cookie (from the app's origin), then logout with the
    // bearer token.
    let refreshed = http
        .post(format!("{base}/api/auth/refresh"))
        .header("cookie", &cookie)
        .header("origin", "http://127.0.0.1:8080")
        .header("sec-fetch-site", "same-origin")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    let new_refresh = refreshed.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .split_once('.')
        .unwrap()
        .1
        .to_owned();
    let new_token = refreshed
        .json::<TokenResponse>()
        .await
        .unwrap()
        .access_token;
    let new_token = new_token.expose().to_owned();
    let response = http
        .post(format!("{base}/api/auth/logout"))
        .bearer_auth(&new_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(next_text(&mut ws).await.contains("revoked"));

    let _ = server.0.kill();
    let _ = server.0.wait();
    reader.join().unwrap();
    let logs = String::from_utf8_lossy(&captured.lock().unwrap()).into_owned();
    assert!(
        logs.contains("/api/ws/notification") && logs.contains("DEBUG"),
        "the capture works at a verbose level: {logs}"
    );
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    let hex_spaced = |s: &str| {
        s.bytes()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for secret in [
        token.as_str(),
        new_token.as_str(),
        password,
        "hunter2-secret",
        "12345678",
        "SECRETX",
        refresh_secret.as_str(),
        new_refresh.as_str(),
        "token=",
    ] {
        assert!(
            !logs.contains(secret),
            "`{secret}` leaked into the logs:\n{logs}"
        );
        // Frame dumps print payloads as hex; the first 16 bytes suffice.
        let head: String = secret.chars().take(16).collect();
        for dump in [hex(&head), hex_spaced(&head)] {
            assert!(
                !logs.to_ascii_lowercase().contains(&dump),
                "`{secret}` leaked as hex into the logs:\n{logs}"
            );
        }
    }
}
