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

async fn received(server: &Server, user: &str) -> (u64, String) {
    let text = server
        .http
        .get(server.url(&format!("/api/admin/received?user={user}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    (value["count"].as_u64().unwrap(), text)
}

fn send_frame(id: &str, body: &str) -> String {
    format!(r#"{{"type":"send","payload":{{"id":"{id}","body":{body}}}}}"#)
}

/// A server that lets a test send frames as fast as it can.
fn unthrottled() -> Config {
    let mut config = Config::dev();
    config.frames_per_second = 1_000_000;
    config
}

#[tokio::test]
async fn bodies_are_acked_only_when_taken_exactly_as_sent() {
    let server = dev().await;
    let (name, password) = server.new_user().await;
    let (mut ws, _) = server.authed(&name, &password).await;
    let huge_integer = "9".repeat(400);
    for (id, body) in [
        ("overflow", "1e400"),
        ("digits", huge_integer.as_str()),
        ("u64-plus-one", "18446744073709551617"),
        ("underflow", "1e-400"),
        ("nested", r#"{"ok":[1,2],"bad":[-1e400]}"#),
    ] {
        send_text(&mut ws, &send_frame(id, body)).await;
        match recv(&mut ws).await {
            tether_protocol::ServerMessage::Nack(nack) => {
                assert_eq!(nack.id, id);
                assert_eq!(nack.code, tether_protocol::NackCode::MalformedBody);
                assert!(!nack.message.is_empty());
            }
            other => panic!("{id}: expected nack, got {other:?}"),
        }
    }
    // Kept byte for byte: spacing, number spelling, key order, escapes.
    let exact = r#"{ "b" : [1 , 2.50, -0.0, 1E2, 18446744073709551615], "a":"\u00e9\n" }"#;
    send_text(&mut ws, &send_frame("exact", exact)).await;
    match recv(&mut ws).await {
        tether_protocol::ServerMessage::Ack(ack) => assert_eq!(ack.id, "exact"),
        other => panic!("expected ack, got {other:?}"),
    }
    let (count, text) = received(&server, &name).await;
    assert_eq!(count, 1, "nothing nacked was applied");
    assert!(text.contains(exact), "{text}");
}

#[tokio::test]
async fn what_one_user_can_make_the_server_hold_is_bounded() {
    let server = start(unthrottled()).await;
    let (name, password) = server.new_user().await;
    let user = server
        .state
        .accounts
        .by_name(&name)
        .await
        .unwrap()
        .unwrap()
        .id;
    let (mut ws, _) = server.authed(&name, &password).await;
    // Ids longer than 128 bytes are refused, not remembered.
    let long_id = "i".repeat(60_000);
    send_text(&mut ws, &send_frame(&long_id, "1")).await;
    expect_error(&mut ws, tether_protocol::error_code::MALFORMED_FRAME).await;
    assert_eq!(received(&server, &name).await.0, 0);
    // 200 bodies of nearly 64 KiB of `[{},{},...]`: acked, and what stays
    // is the newest 1 MiB of raw text, not 200 parsed trees.
    let body = format!("[{}{{}}]", "{},".repeat(20_000));
    for i in 0..200 {
        send_text(&mut ws, &send_frame(&format!("big-{i}"), &body)).await;
    }
    for i in 0..200 {
        match recv(&mut ws).await {
            tether_protocol::ServerMessage::Ack(ack) => assert_eq!(ack.id, format!("big-{i}")),
            other => panic!("expected ack, got {other:?}"),
        }
    }
    let held = server.state.inbox.held_bytes(user);
    let sent = 200 * body.len();
    println!(
        "200 sends of {} B: {sent} B sent, {held} B held",
        body.len()
    );
    assert!(
        held <= tether_server::delivery::KEPT_BYTES + 200 * 64,
        "{held} B held"
    );
    assert_eq!(received(&server, &name).await.0, 200);
}

#[tokio::test]
async fn an_id_is_not_applied_again_after_10000_newer_ones() {
    let server = start(unthrottled()).await;
    let (name, password) = server.new_user().await;
    let (mut ws, _) = server.authed(&name, &password).await;
    let ids: Vec<String> = (0..=tether_protocol::DEDUP_WINDOW_IDS)
        .map(|i| format!("id-{i}"))
        .collect();
    for chunk in ids.chunks(500) {
        for id in chunk {
            send_text(&mut ws, &send_frame(id, "1")).await;
        }
        for id in chunk {
            match recv(&mut ws).await {
                tether_protocol::ServerMessage::Ack(ack) => assert_eq!(&ack.id, id),
                other => panic!("expected ack, got {other:?}"),
            }
        }
    }
    // The first id again, 10,000 ids later: acked, not applied twice.
    send_text(&mut ws, &send_frame("id-0", "2")).await;
    match recv(&mut ws).await {
        tether_protocol::ServerMessage::Ack(ack) => assert_eq!(ack.id, "id-0"),
        other => panic!("expected ack, got {other:?}"),
    }
    assert_eq!(
        received(&server, &name).await.0,
        tether_protocol::DEDUP_WINDOW_IDS as u64 + 1
    );
}

/// Reads notifications until the socket closes; returns their seqs and
/// the close code (`None`: the connection ended without a close frame).
async fn read_until_close(ws: &mut Ws) -> (Vec<u64>, Option<u16>) {
    let mut seqs = Vec::new();
    loop {
        match next_message(ws).await {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) => {
                match tether_protocol::ServerMessage::decode_with_limit(text.as_str(), usize::MAX)
                    .unwrap()
                {
                    tether_protocol::ServerMessage::Notification(n) => seqs.push(n.seq),
                    other => panic!("unexpected {other:?}"),
                }
            }
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => {
                return (seqs, frame.map(|f| u16::from(f.code)));
            }
            Some(Ok(other)) => panic!("unexpected {other:?}"),
            Some(Err(_)) | None => return (seqs, None),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_is_closed_with_1013_and_catches_up_by_replay() {
    let mut config = Config::dev();
    config.queue.frames = 8;
    let server = start(config).await;
    let (name, password) = server.new_user().await;
    let user = server
        .state
        .accounts
        .by_name(&name)
        .await
        .unwrap()
        .unwrap()
        .id;
    let (mut ws, login) = server.authed(&name, &password).await;
    // 300 notifications of 100 KB (30 MB) while the client reads nothing:
    // more than the socket buffers and the 8-frame queue hold.
    let big = "n".repeat(100_000);
    for _ in 0..300 {
        server.state.feeds.publish(user, "big", &big).await.unwrap();
        tokio::task::yield_now().await;
    }
    let (seqs, code) = read_until_close(&mut ws).await;
    assert_eq!(code, Some(tether_protocol::close_code::TRY_AGAIN_LATER));
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "what arrived before the close is gapless");
    assert!(seqs.len() < 300);
    println!("closed with 1013 after {} of 300 frames", seqs.len());
    // Reconnect with last_seq: the replay brings the rest, nothing missing.
    let mut ws = server.connect(None).await;
    send(
        &mut ws,
        auth(&login.token, Some(seqs.last().copied().unwrap_or(0))),
    )
    .await;
    assert!(matches!(
        recv(&mut ws).await,
        tether_protocol::ServerMessage::AuthSuccess(_)
    ));
    let mut next = seqs.len() as u64 + 1;
    while next <= 300 {
        match next_message(&mut ws).await {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) => {
                match tether_protocol::ServerMessage::decode_with_limit(text.as_str(), usize::MAX)
                    .unwrap()
                {
                    tether_protocol::ServerMessage::Notification(n) => {
                        assert_eq!(n.seq, next);
                        next += 1;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_alive(&mut ws, 1).await;
}

#[tokio::test]
async fn a_client_that_never_reads_is_dropped_after_the_write_timeout() {
    let mut config = Config::dev();
    config.write_timeout = Duration::from_secs(1);
    let server = start(config).await;
    let (name, password) = server.new_user().await;
    let user = server
        .state
        .accounts
        .by_name(&name)
        .await
        .unwrap()
        .unwrap()
        .id;
    let (_ws, _) = server.authed(&name, &password).await;
    let mut sockets = server.state.registry.watch_len();
    assert_eq!(*sockets.borrow(), 1);
    let big = "n".repeat(100_000);
    for _ in 0..300 {
        server.state.feeds.publish(user, "big", &big).await.unwrap();
    }
    // Never read: the server gives up on the socket and forgets it.
    tokio::time::timeout(WAIT, sockets.wait_for(|n| *n == 0))
        .await
        .expect("the socket is still registered")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flood_waits_for_a_reader_that_keeps_up_and_delivers_everything() {
    let mut config = Config::dev();
    config.queue.frames = 8;
    let server = start(config).await;
    let (name, password) = server.new_user().await;
    let (mut ws, _) = server.authed(&name, &password).await;
    let count = 20_000u64;
    let flood = {
        let http = server.http.clone();
        let url = server.url("/api/admin/flood");
        let name = name.clone();
        tokio::spawn(async move {
            http.post(url)
                .json(&serde_json::json!({"username": name, "count": count}))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    // 20,000 frames through an 8-frame queue: only back-pressure gets them
    // all through without a 1013.
    for seq in 1..=count {
        match recv(&mut ws).await {
            tether_protocol::ServerMessage::Notification(n) => assert_eq!(n.seq, seq),
            other => panic!("expected notification {seq}, got {other:?}"),
        }
    }
    assert_eq!(flood.await.unwrap(), 200);
    assert_alive(&mut ws, 1).await;
}
