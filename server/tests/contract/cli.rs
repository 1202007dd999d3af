//! The `tether-server` binary: flags and the `listening on` line.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_prints_its_address_and_serves() {
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_tether-server"))
            .args([
                "--dev",
                "--addr",
                "127.0.0.1:0",
                "--allowed-origin",
                "http://localhost:8080",
                "--token-ttl",
                "60",
                "--auth-timeout",
                "0.5",
            ])
            .env("TETHER_JWT_SECRET", "test-secret")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
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
    assert!(
        base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"),
        "{base}"
    );
    let http = reqwest::Client::new();
    let login = http
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({"username": "alice", "password": "wonderland"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let body: tether_protocol::TokenResponse = login.json().await.unwrap();
    assert_eq!(body.expires_in, 60);
    // --allowed-origin replaces the dev defaults.
    let url = format!("{}/api/ws/notification", base.replacen("http", "ws", 1));
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", "http://127.0.0.1:9".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_err());
    let mut request = url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", "http://localhost:8080".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    // --auth-timeout 0.5
    crate::common::expect_auth_error(&mut ws, tether_protocol::AuthErrorCode::AuthTimeout).await;
}
