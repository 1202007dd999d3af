//! The reference server against a hostile client (issue 15), over real
//! sockets and real HTTP: half-open connections, old tokens, reused refresh
//! cookies, cross-site requests, lockouts.

use crate::common::*;
use std::time::{Duration, Instant};
use tether_protocol::AuthErrorCode;
use tether_server::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection (EOF or reset) and returns
/// what it sent; panics if it is still open after [`WAIT`].
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    tokio::time::timeout(WAIT, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server kept the connection open");
    received
}

#[tokio::test]
async fn connections_that_send_nothing_half_a_request_or_idle_are_closed() {
    let mut config = Config::dev();
    config.header_read_timeout = Duration::from_secs(1);
    let server = start(config).await;
    let addr = server.base.strip_prefix("http://").unwrap().to_owned();
    let started = Instant::now();
    let mut silent = Vec::new();
    let mut half = Vec::new();
    let mut idle = Vec::new();
    for _ in 0..20 {
        silent.push(TcpStream::connect(&addr).await.unwrap());
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream
            .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        half.push(stream);
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream
            .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        idle.push(stream);
    }
    for stream in &mut silent {
        assert!(read_until_closed(stream).await.is_empty());
    }
    for stream in &mut half {
        let answer = read_until_closed(stream).await;
        assert!(
            !answer.starts_with(b"HTTP/1.1 200"),
            "a half request was served"
        );
    }
    for stream in &mut idle {
        // Served once, then closed while idling for the next request.
        let answer = read_until_closed(stream).await;
        assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    }
    println!(
        "60 half-open or idle connections closed {:.2} s after opening (header_read_timeout 1 s)",
        started.elapsed().as_secs_f64()
    );
    // The server still serves.
    assert_eq!(server.try_login("alice", "wonderland").await.status(), 200);
}

#[tokio::test]
async fn logout_with_an_expired_or_revoked_token_signs_nobody_out() {
    let server = dev().await;
    let (name, password) = server.new_user().await;
    // A revoked token.
    let old = server.login(&name, &password).await;
    let out = server
        .http
        .post(server.url("/api/auth/logout"))
        .bearer_auth(&old.token)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    // An expired one.
    let expiring = server.login(&name, &password).await;
    let expired = server
        .post_json(
            "/api/admin/expire-tokens",
            serde_json::json!({"username": name}),
        )
        .await;
    assert_eq!(expired.status(), 200);
    let (mut ws, _) = server.authed(&name, &password).await;
    for token in [&old.token, &expiring.token] {
        let response = server
            .http
            .post(server.url("/api/auth/logout"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    // The newer session is untouched.
    assert_alive(&mut ws, 1).await;
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_session() {
    let server = dev().await;
    let (name, password) = server.new_user().await;
    let first = server.login(&name, &password).await;
    let second = login_from(server.refresh(&first.cookie).await).await;
    let mut ws = server.connect(None).await;
    send(&mut ws, auth(&second.token, None)).await;
    assert!(matches!(
        recv(&mut ws).await,
        tether_protocol::ServerMessage::AuthSuccess(_)
    ));
    // Another session of the same user (another device) is not the one
    // whose token was copied.
    let (mut other, _) = server.authed(&name, &password).await;

    // The thief (or the victim, whoever is second) presents the rotated one.
    let reused = server.refresh(&first.cookie).await;
    assert_eq!(reused.status(), 401);
    // The whole session is gone: its newest cookie, its access token, its
    // socket.
    assert_eq!(server.refresh(&second.cookie).await.status(), 401);
    expect_auth_error(&mut ws, AuthErrorCode::Revoked).await;
    let notify = server
        .http
        .post(server.url("/api/notifications"))
        .bearer_auth(&second.token)
        .json(&serde_json::json!({"title": "t", "body": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(notify.status(), 401);
    assert_alive(&mut other, 2).await;
}

#[tokio::test]
async fn cookie_requests_and_admin_routes_must_come_from_the_app_origin() {
    let server = dev().await;
    // A client that sends what a browser would, and nothing by default.
    let plain = reqwest::Client::new();
    let login = server.login("alice", "wonderland").await;
    let (mut ws, _) = server.authed("alice", "wonderland").await;
    let refresh = |site: Option<&'static str>, origin: Option<&'static str>, json: bool| {
        let mut request = plain
            .post(server.url("/api/auth/refresh"))
            .header("cookie", &login.cookie);
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request = if json {
            request.json(&serde_json::json!({}))
        } else {
            request
                .header("content-type", "application/x-www-form-urlencoded")
                .body("a=b")
        };
        request.send()
    };
    let evil = Some("http://evil.example");
    let app = Some("http://localhost:8080");
    for (site, origin, json, status) in [
        (Some("cross-site"), evil, true, 403),
        (None, evil, true, 403),
        (None, None, true, 403),
        (Some("same-site"), evil, true, 403),
        (Some("same-origin"), None, false, 415),
        (None, app, false, 415),
    ] {
        let response = refresh(site, origin, json).await.unwrap();
        assert_eq!(
            response.status(),
            status,
            "sec-fetch-site {site:?}, origin {origin:?}, json {json}"
        );
    }
    // Logout by cookie from another site: refused, nobody is signed out.
    let logout = plain
        .post(server.url("/api/auth/logout"))
        .header("cookie", &login.cookie)
        .header("sec-fetch-site", "cross-site")
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 403);
    assert_alive(&mut ws, 1).await;
    // A cross-site form post to a dev route does nothing.
    for (site, content_type, status) in [
        ("cross-site", "application/x-www-form-urlencoded", 403),
        ("cross-site", "application/json", 403),
        ("same-origin", "text/plain", 415),
    ] {
        let response = plain
            .post(server.url("/api/admin/drop-sockets"))
            .header("sec-fetch-site", site)
            .header("content-type", content_type)
            .body(r#"{"username":"alice"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{site} {content_type}");
    }
    let read = plain
        .get(server.url("/api/admin/connections"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 403);
    assert_alive(&mut ws, 2).await;
    // The app's own requests pass, with or without Sec-Fetch-Site.
    let ok = refresh(None, app, true).await.unwrap();
    assert_eq!(ok.status(), 200);
    let ok = login_from(ok).await;
    let ok = plain
        .post(server.url("/api/auth/refresh"))
        .header("cookie", &ok.cookie)
        .header("sec-fetch-site", "same-origin")
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

/// An HTTP client whose connections come from `ip` (any 127.x.y.z is
/// loopback on Linux): another client, as far as the server can tell.
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(ip))
        .build()
        .unwrap()
}

async fn try_login_from(
    server: &Server,
    client: &reqwest::Client,
    username: &str,
    password: &str,
) -> u16 {
    client
        .post(server.url("/api/auth/login"))
        .json(&serde_json::json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn one_client_can_neither_lock_out_a_user_nor_try_many_accounts() {
    let server = dev().await;
    let (victim, password) = server.new_user().await;
    let attacker = client_from([127, 0, 0, 2]);
    let user = client_from([127, 0, 0, 3]);
    for _ in 0..tether_server::accounts::MAX_FAILURES {
        assert_eq!(
            try_login_from(&server, &attacker, &victim, "guess").await,
            401
        );
    }
    assert_eq!(
        try_login_from(&server, &attacker, &victim, "guess").await,
        429
    );
    // The attacker is locked out of that account; its owner is not.
    assert_eq!(
        try_login_from(&server, &user, &victim, &password).await,
        200
    );

    // Spreading guesses over accounts: locked out of all of them.
    let spray = client_from([127, 0, 0, 4]);
    for i in 0..tether_server::accounts::MAX_CLIENT_FAILURES {
        let name = format!("nobody-{i}");
        assert_eq!(try_login_from(&server, &spray, &name, "guess").await, 401);
    }
    assert_eq!(try_login_from(&server, &spray, "bob", "builder").await, 429);
    assert_eq!(try_login_from(&server, &user, "bob", "builder").await, 200);
}

#[tokio::test]
async fn a_frame_over_what_the_server_reads_is_closed_with_1009() {
    let server = dev().await;
    let (mut ws, _) = server.authed("alice", "wonderland").await;
    let huge = format!(
        r#"{{"type":"send","payload":{{"id":"huge","body":"{}"}}}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    send_text(&mut ws, &huge).await;
    expect_close(&mut ws, tether_protocol::close_code::TOO_BIG).await;
    // Nothing of it was applied.
    let received: serde_json::Value = server
        .http
        .get(server.url("/api/admin/received?user=alice"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(received["count"], 0);
}
