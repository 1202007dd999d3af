use crate::common::*;
use futures_util::{SinkExt, StreamExt};
use tether_protocol::{ClientMessage, Outgoing, RawJson, ServerMessage, error_code};
use tether_server::Config;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn bad_frames_get_errors_and_the_socket_stays() {
    let server = dev().await;
    let (mut ws, _) = server.authed("alice", "wonderland").await;
    send_text(&mut ws, "not json").await;
    expect_error(&mut ws, error_code::MALFORMED_FRAME).await;
    send_text(&mut ws, r#"{"type":"ping","payload":{"seq":"x"}}"#).await;
    expect_error(&mut ws, error_code::MALFORMED_FRAME).await;
    send_text(&mut ws, r#"{"type":"party","payload":{}}"#).await;
    expect_error(&mut ws, error_code::UNKNOWN_TYPE).await;
    ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    expect_error(&mut ws, error_code::UNSUPPORTED_DATA).await;
    let big = format!(
        r#"{{"type":"send","payload":{{"id":"big","body":"{}"}}}}"#,
        "x".repeat(tether_protocol::MAX_FRAME_BYTES)
    );
    send_text(&mut ws, &big).await;
    expect_error(&mut ws, error_code::FRAME_TOO_LARGE).await;
    assert_alive(&mut ws, 9).await;
}

#[tokio::test]
async fn pings_are_answered_with_the_same_seq() {
    let server = dev().await;
    let (mut ws, _) = server.authed("alice", "wonderland").await;
    for seq in [0, 1, u64::MAX] {
        assert_alive(&mut ws, seq).await;
    }
}

#[tokio::test]
async fn frames_beyond_the_rate_are_refused() {
    let mut config = Config::dev();
    config.frames_per_second = 20;
    let server = start(config).await;
    let (mut ws, _) = server.authed("alice", "wonderland").await;
    for seq in 0..100 {
        send(&mut ws, ping(seq)).await;
    }
    let mut limited = 0;
    let mut pongs = 0;
    while limited + pongs < 100 {
        match recv(&mut ws).await {
            ServerMessage::Pong(_) => pongs += 1,
            ServerMessage::Error(e) if e.code == error_code::RATE_LIMITED => limited += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!(limited > 0 && pongs >= 10, "{limited} {pongs}");
}

#[tokio::test]
async fn duplicate_send_ids_are_acked_but_applied_once() {
    let server = dev().await;
    let (mut ws, _) = server.authed("alice", "wonderland").await;
    let id = uuid::Uuid::new_v4().to_string();
    for attempt in 0..3 {
        send(
            &mut ws,
            ClientMessage::Send(Outgoing {
                id: id.clone(),
                body: RawJson::new(serde_json::json!({"attempt": attempt}).to_string()).unwrap(),
            }),
        )
        .await;
        match recv(&mut ws).await {
            ServerMessage::Ack(ack) => assert_eq!(ack.id, id),
            other => panic!("{other:?}"),
        }
    }
    // A reconnect does not reset the dedup set.
    drop(ws);
    let (mut ws, _) = server.authed("alice", "wonderland").await;
    send(
        &mut ws,
        ClientMessage::Send(Outgoing {
            id: id.clone(),
            body: RawJson::new(serde_json::json!({"attempt": 3}).to_string()).unwrap(),
        }),
    )
    .await;
    assert!(matches!(recv(&mut ws).await, ServerMessage::Ack(_)));
    let received: serde_json::Value = server
        .http
        .get(server.url("/api/admin/received?user=alice"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(received["count"], 1);
    assert_eq!(received["items"][0]["body"]["attempt"], 0);
}

async fn notification_seq(ws: &mut Ws) -> u64 {
    match recv(ws).await {
        ServerMessage::Notification(n) => n.seq,
        other => panic!("expected a notification, got {other:?}"),
    }
}

async fn notify(server: &Server, username: &str) {
    let response = server
        .post_json(
            "/api/admin/notify",
            serde_json::json!({"username": username, "title": "t", "body": "b"}),
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn replay_after_reconnect_has_no_gap_and_no_duplicate() {
    let server = dev().await;
    let (name, password) = server.new_user().await;
    let (mut ws, login) = server.authed(&name, &password).await;
    for expected in 1..=3 {
        notify(&server, &name).await;
        assert_eq!(notification_seq(&mut ws).await, expected);
    }
    drop(ws);
    for _ in 0..3 {
        notify(&server, &name).await;
    }
    let mut ws = server.connect(None).await;
    send(&mut ws, auth(&login.token, Some(3))).await;
    assert!(matches!(recv(&mut ws).await, ServerMessage::AuthSuccess(_)));
    for expected in 4..=6 {
        assert_eq!(notification_seq(&mut ws).await, expected);
    }
    drop(ws);

    // Reconnect while a flood is being published: replay and live pushes
    // must join without a gap or a duplicate.
    let flood = {
        let http = server.http.clone();
        let url = server.url("/api/admin/flood");
        let name = name.clone();
        tokio::spawn(async move {
            http.post(url)
                .json(&serde_json::json!({"username": name, "count": 2_000}))
                .send()
                .await
                .unwrap()
        })
    };
    let mut ws = server.connect(None).await;
    send(&mut ws, auth(&login.token, Some(6))).await;
    assert!(matches!(recv(&mut ws).await, ServerMessage::AuthSuccess(_)));
    assert_eq!(flood.await.unwrap().status(), 200);
    let last = 6 + 2_000;
    let first = notification_seq(&mut ws).await;
    // At least the last 1,000 are retained; older ones may be gone.
    assert!(first <= last - 999, "{first}");
    let mut expected = first + 1;
    while expected <= last {
        assert_eq!(notification_seq(&mut ws).await, expected);
        expected += 1;
    }
    assert_alive(&mut ws, 1).await;
}

#[tokio::test]
async fn live_notifications_reach_every_socket_of_the_user() {
    let server = dev().await;
    let (mut a1, login) = server.authed("alice", "wonderland").await;
    let (mut a2, _) = server.authed("alice", "wonderland").await;
    let (mut bob, _) = server.authed("bob", "builder").await;
    let response = server
        .http
        .post(server.url("/api/notifications"))
        .bearer_auth(&login.token)
        .json(&serde_json::json!({"title": "hello", "body": "world"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    for ws in [&mut a1, &mut a2] {
        match recv(ws).await {
            ServerMessage::Notification(n) => {
                assert_eq!(
                    (n.seq, n.title.as_str(), n.body.as_str()),
                    (1, "hello", "world")
                );
                assert!(tether_protocol::time::parse_rfc3339(&n.created_at).is_some());
            }
            other => panic!("{other:?}"),
        }
    }
    // Bob got nothing: his next frame is the pong.
    assert_alive(&mut bob, 5).await;
    // A broadcast reaches everyone.
    let response = server
        .post_json("/api/admin/notify", serde_json::json!({"title": "all"}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(notification_seq(&mut bob).await, 1);
    assert_eq!(notification_seq(&mut a1).await, 2);
}

#[tokio::test]
async fn drop_sockets_gives_an_abnormal_close() {
    let server = dev().await;
    let (mut alice, _) = server.authed("alice", "wonderland").await;
    let (mut bob, _) = server.authed("bob", "builder").await;
    let response = server
        .post_json(
            "/api/admin/drop-sockets",
            serde_json::json!({"username": "alice"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let end = tokio::time::timeout(WAIT, alice.next())
        .await
        .expect("the socket ends");
    assert!(
        !matches!(end, Some(Ok(Message::Close(_)))),
        "a close frame was sent: {end:?}"
    );
    assert!(matches!(end, None | Some(Err(_))), "{end:?}");
    assert_alive(&mut bob, 1).await;
}

#[tokio::test]
async fn admin_close_sends_the_requested_code() {
    let server = dev().await;
    let (mut ws, _) = server.authed("alice", "wonderland").await;
    let response = server
        .post_json(
            "/api/admin/close",
            serde_json::json!({"code": 1001, "reason": "restart", "username": "alice"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    expect_close(&mut ws, 1001).await;
    let bad = server
        .post_json("/api/admin/close", serde_json::json!({"code": 1006}))
        .await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn withheld_pongs_are_not_sent() {
    let server = dev().await;
    let (mut alice, _) = server.authed("alice", "wonderland").await;
    let (mut bob, _) = server.authed("bob", "builder").await;
    server
        .post_json(
            "/api/admin/withhold-pongs",
            serde_json::json!({"username": "alice", "seconds": 60.0}),
        )
        .await;
    send(&mut alice, ping(1)).await;
    send(
        &mut alice,
        ClientMessage::Send(Outgoing {
            id: "after-ping".into(),
            body: RawJson::new("null").unwrap(),
        }),
    )
    .await;
    // Frames are handled in order: the ack comes first, no pong before it.
    match recv(&mut alice).await {
        ServerMessage::Ack(ack) => assert_eq!(ack.id, "after-ping"),
        other => panic!("expected the ack, got {other:?}"),
    }
    assert_alive(&mut bob, 1).await;
}

#[tokio::test]
async fn refused_sockets_get_503() {
    let server = dev().await;
    let alice = server.login("alice", "wonderland").await;
    let bob = server.login("bob", "builder").await;
    server
        .post_json(
            "/api/admin/refuse-sockets",
            serde_json::json!({"username": "alice", "seconds": 60.0}),
        )
        .await;
    assert_eq!(
        refused_status(server.try_connect(Some(&alice.token), None).await),
        503
    );
    assert!(server.try_connect(Some(&bob.token), None).await.is_ok());
    server
        .post_json(
            "/api/admin/refuse-sockets",
            serde_json::json!({"seconds": 60.0}),
        )
        .await;
    assert_eq!(refused_status(server.try_connect(None, None).await), 503);
    server
        .post_json(
            "/api/admin/refuse-sockets",
            serde_json::json!({"seconds": 0.0}),
        )
        .await;
    server
        .post_json(
            "/api/admin/refuse-sockets",
            serde_json::json!({"username": "alice", "seconds": 0.0}),
        )
        .await;
    assert!(server.try_connect(Some(&alice.token), None).await.is_ok());
}

#[tokio::test]
async fn raw_admin_frames_reach_only_the_scoped_user() {
    let server = dev().await;
    let (mut alice, _) = server.authed("alice", "wonderland").await;
    let (mut bob, _) = server.authed("bob", "builder").await;
    let response = server
        .post_json(
            "/api/admin/raw",
            serde_json::json!({"username": "alice", "text": "{not json"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let frame = tokio::time::timeout(WAIT, alice.next())
        .await
        .expect("a frame arrives")
        .expect("the socket is open")
        .expect("no error");
    assert_eq!(frame, Message::Text("{not json".into()));
    assert_alive(&mut alice, 7).await;
    assert_alive(&mut bob, 1).await;
    let missing = server
        .post_json("/api/admin/raw", serde_json::json!({"username": "alice"}))
        .await;
    assert_eq!(missing.status(), 400);
}

#[tokio::test]
async fn a_client_close_is_answered_with_a_close_frame() {
    // Without the reply the browser sees an unclean 1006 for its own normal
    // close (and Firefox then delays reconnects to the host).
    let server = dev().await;
    let (mut ws, _) = server.authed("alice", "wonderland").await;
    ws.close(None).await.unwrap();
    let reply = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("the server answers the close");
    assert!(matches!(reply, Some(Ok(Message::Close(_)))), "{reply:?}");
}
