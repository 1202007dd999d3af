//! Tokens and passwords never reach the server's logs: captures every
//! tracing event (level TRACE) of a full session and searches it.

use futures_util::{SinkExt, StreamExt};
use std::io::Write;
use std::sync::{Arc, Mutex};
use tether_protocol::{Auth, ClientMessage, Secret, TokenResponse};
use tether_server::{AppState, Config, app};
use tokio_tungstenite::tungstenite::Message;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn tokens_and_passwords_never_appear_in_logs() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let mut config = Config::dev();
    config.fast_password_hashing = true;
    let state = AppState::new(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app(state)).await.unwrap() });
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");

    let password = "wonderland";
    let response = http
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({"username": "alice", "password": password}))
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    let refresh_secret = cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('.')
        .unwrap()
        .1
        .to_owned();
    let token = response.json::<TokenResponse>().await.unwrap().access_token;
    let token = token.expose().to_owned();
    // A failed login whose body echoes a secret-looking value.
    let bad = http
        .post(format!("{base}/api/auth/login"))
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

    // Socket with the token in the query and in the auth frame.
    let url = format!("ws://{addr}/api/ws/notification?token={token}");
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let frame = ClientMessage::Auth(Auth {
        token: Some(Secret::new(token.clone())),
        last_seq: None,
    });
    ws.send(Message::text(frame.encode())).await.unwrap();
    let reply = ws.next().await.unwrap().unwrap();
    assert!(reply.to_text().unwrap().contains("auth_success"));
    // A token of the wrong type in a frame: the error frame must not echo it.
    let (mut ws2, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/ws/notification"))
        .await
        .unwrap();
    ws2.send(Message::text(format!(
        r#"{{"type":"auth","payload":{{"token":["{token}"]}}}}"#
    )))
    .await
    .unwrap();
    let reply = ws2.next().await.unwrap().unwrap();
    assert!(!reply.to_text().unwrap().contains(&token));
    // Invalid token in the query: the auth_error must not echo it.
    let (mut ws3, _) = tokio_tungstenite::connect_async(format!(
        "ws://{addr}/api/ws/notification?token=not-a-token-SECRETX"
    ))
    .await
    .unwrap();
    ws3.send(Message::text(r#"{"type":"auth","payload":{}}"#))
        .await
        .unwrap();
    let reply = ws3.next().await.unwrap().unwrap();
    let reply = reply.to_text().unwrap();
    assert!(reply.contains("invalid_token"), "{reply}");
    assert!(!reply.contains("SECRETX"), "{reply}");
    // Logout with the bearer token.
    let response = http
        .post(format!("{base}/api/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let reply = ws.next().await.unwrap().unwrap();
    assert!(reply.to_text().unwrap().contains("revoked"));

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("/api/ws/notification"),
        "the capture works: {logs}"
    );
    for secret in [
        token.as_str(),
        password,
        "hunter2-secret",
        "12345678",
        "SECRETX",
        refresh_secret.as_str(),
        "token=",
    ] {
        assert!(
            !logs.contains(secret),
            "`{secret}` leaked into the logs:\n{logs}"
        );
    }
}
