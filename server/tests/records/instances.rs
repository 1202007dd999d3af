//! Two instances (two `AppState`s, each serving HTTP and sockets) on one
//! Redis with the same prefix: what one of them records, the other sees.
//!
//! Control events reach the other instance through its subscriber task
//! (`redis::pubsub`), which hands them to `control::apply`.

use crate::TestRedis;
use crate::common::{Login, Server, WAIT, auth, expect_auth_error, expect_close, recv, send};
use serde_json::{Value, json};
use tether_protocol::{
    AuthErrorCode, ClientMessage, NackCode, Outgoing, RawJson, ServerMessage, Subscribe,
    UnsubscribedCode,
};
use tether_server::redis::RedisConfig;
use tether_server::{AppState, Config};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &[u8] = b"one secret shared by the instances";

/// Starts an instance on `redis` and waits until its control subscriber
/// listens.
async fn instance(redis: &RedisConfig) -> Server {
    let mut config = Config::dev();
    config.fast_password_hashing = true;
    config.jwt_secret = Some(SECRET.to_vec());
    config.redis = Some(redis.clone());
    let state = AppState::connect(config).await.expect("redis answers");
    // Its subscriber task (control events included) is connected.
    let mut connections = state.pubsub.as_ref().unwrap().watch_connections();
    tokio::time::timeout(WAIT, connections.wait_for(|n| *n >= 1))
        .await
        .expect("the subscriber connects")
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = state.clone();
    tokio::spawn(async move {
        tether_server::serve(listener, served, std::future::pending())
            .await
            .unwrap()
    });
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "sec-fetch-site",
        reqwest::header::HeaderValue::from_static("same-origin"),
    );
    Server {
        base: format!("http://{addr}"),
        http: reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap(),
        state,
    }
}

/// Creates a user on `server` (admin route); returns name and password.
async fn new_user(server: &Server) -> (String, String) {
    server.new_user().await
}

fn send_frame(id: &str, body: &str) -> ClientMessage {
    ClientMessage::Send(Outgoing {
        id: id.to_owned(),
        body: RawJson::new(body).unwrap(),
    })
}

async fn received(server: &Server, user: &str) -> Value {
    let response = server
        .http
        .get(server.url(&format!("/api/admin/received?user={user}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn expect_ack(ws: &mut crate::common::Ws, id: &str) {
    match recv(ws).await {
        ServerMessage::Ack(ack) => assert_eq!(ack.id, id),
        other => panic!("expected ack {id}, got {other:?}"),
    }
}

#[tokio::test]
async fn a_send_id_applied_on_a_and_resent_on_b_is_applied_once() {
    let redis = TestRedis::start();
    let (a, b) = (instance(&redis.config).await, instance(&redis.config).await);
    // An account made on A signs in on B.
    let (name, password) = new_user(&a).await;
    let (mut on_a, _) = a.authed(&name, &password).await;
    let (mut on_b, _) = b.authed(&name, &password).await;
    send(&mut on_a, send_frame("m-1", r#"{"n": 1}"#)).await;
    expect_ack(&mut on_a, "m-1").await;
    send(&mut on_b, send_frame("m-1", r#"{"n": 1}"#)).await;
    expect_ack(&mut on_b, "m-1").await;
    send(&mut on_b, send_frame("m-2", "2")).await;
    expect_ack(&mut on_b, "m-2").await;
    for server in [&a, &b] {
        let got = received(server, &name).await;
        assert_eq!(got["count"], 2, "{got}");
        let ids: Vec<&str> = got["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["m-1", "m-2"]);
    }
}

#[tokio::test]
async fn applied_ids_and_accounts_survive_an_instance_restart() {
    let redis = TestRedis::start();
    let a = instance(&redis.config).await;
    let (name, password) = new_user(&a).await;
    let (mut ws, _) = a.authed(&name, &password).await;
    send(&mut ws, send_frame("once", "1")).await;
    expect_ack(&mut ws, "once").await;
    drop(ws);
    drop(a);
    // A new instance (as after a restart) on the same Redis.
    let restarted = instance(&redis.config).await;
    let alice = restarted.state.accounts.by_name("alice").await.unwrap();
    assert_eq!(alice.unwrap().id, tether_server::accounts::ALICE_ID);
    let (mut ws, _) = restarted.authed(&name, &password).await;
    send(&mut ws, send_frame("once", "1")).await;
    expect_ack(&mut ws, "once").await;
    assert_eq!(received(&restarted, &name).await["count"], 1);
}

#[tokio::test]
async fn a_logout_on_b_closes_the_socket_on_a_with_4001() {
    let redis = TestRedis::start();
    let (a, b) = (instance(&redis.config).await, instance(&redis.config).await);
    let (name, password) = new_user(&a).await;
    let (mut on_a, login) = a.authed(&name, &password).await;
    let (mut other_user, _) = a.authed("bob", "builder").await;
    let response = b
        .http
        .post(b.url("/api/auth/logout"))
        .bearer_auth(&login.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    expect_auth_error(&mut on_a, AuthErrorCode::Revoked).await;
    // The session is gone on A too, and other users' sockets stay.
    let mut again = a.connect(None).await;
    send(&mut again, auth(&login.token, None)).await;
    expect_auth_error(&mut again, AuthErrorCode::Revoked).await;
    crate::common::assert_alive(&mut other_user, 1).await;
}

#[tokio::test]
async fn a_reused_refresh_token_on_b_closes_that_session_on_a() {
    let redis = TestRedis::start();
    let (a, b) = (instance(&redis.config).await, instance(&redis.config).await);
    let (name, password) = new_user(&a).await;
    let (mut first, login) = a.authed(&name, &password).await;
    let (mut second, _) = a.authed(&name, &password).await;
    // Rotated on A, the old cookie replayed on B.
    let rotated = a.refresh(&login.cookie).await;
    assert_eq!(rotated.status(), 200);
    let reused = b.refresh(&login.cookie).await;
    assert_eq!(reused.status(), 401);
    expect_auth_error(&mut first, AuthErrorCode::Revoked).await;
    // The user's other session is not that one.
    crate::common::assert_alive(&mut second, 1).await;
}

async fn create_room(server: &Server, login: &Login, members: &[&str]) -> String {
    let response = server
        .http
        .post(server.url("/api/rooms"))
        .bearer_auth(&login.token)
        .json(&json!({"name": "Lobby", "members": members}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let room: Value = response.json().await.unwrap();
    room["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_member_removed_via_b_is_unsubscribed_on_a() {
    let redis = TestRedis::start();
    let (a, b) = (instance(&redis.config).await, instance(&redis.config).await);
    let owner = b.login("alice", "wonderland").await;
    let room = create_room(&b, &owner, &["bob"]).await;
    let topic = format!("room:{room}");
    // The room made on B is on A too.
    let (mut bob, _) = a.authed("bob", "builder").await;
    send(
        &mut bob,
        ClientMessage::Subscribe(Subscribe {
            topic: topic.clone(),
            since: None,
            last: None,
        }),
    )
    .await;
    match recv(&mut bob).await {
        ServerMessage::Subscribed(s) => assert_eq!(s.topic, topic),
        other => panic!("expected subscribed, got {other:?}"),
    }
    let removed = b
        .http
        .delete(b.url(&format!("/api/rooms/{room}/members/bob")))
        .bearer_auth(&owner.token)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    match recv(&mut bob).await {
        ServerMessage::Unsubscribed(u) => {
            assert_eq!(
                (u.topic.as_str(), u.code),
                (topic.as_str(), UnsubscribedCode::Removed)
            );
        }
        other => panic!("expected unsubscribed removed, got {other:?}"),
    }
    // And subscribing again is refused on either instance.
    send(
        &mut bob,
        ClientMessage::Subscribe(Subscribe {
            topic: topic.clone(),
            since: None,
            last: None,
        }),
    )
    .await;
    assert!(matches!(
        recv(&mut bob).await,
        ServerMessage::SubscribeError(_)
    ));
}

#[tokio::test]
async fn with_redis_down_http_answers_503_a_send_is_nacked_and_auth_closes_1013() {
    let mut redis = TestRedis::start();
    let a = instance(&redis.config).await;
    let (name, password) = new_user(&a).await;
    let (mut ws, login) = a.authed(&name, &password).await;
    redis.server.stop();
    send(&mut ws, send_frame("while-down", "1")).await;
    // Never an ack: `nack rate_limited`, or (when the socket's own feed
    // lost the store first) a 1013 close that has the client reconnect.
    match crate::common::next_message(&mut ws).await {
        Some(Ok(Message::Text(text))) => match ServerMessage::decode(text.as_str()).unwrap() {
            ServerMessage::Nack(nack) => {
                assert_eq!(
                    (nack.id.as_str(), nack.code),
                    ("while-down", NackCode::RateLimited)
                );
                assert!(nack.message.contains("unavailable"), "{}", nack.message);
            }
            other => panic!("expected nack rate_limited, got {other:?}"),
        },
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1013),
        other => panic!("expected nack rate_limited or a 1013 close, got {other:?}"),
    }
    let response = a.try_login(&name, &password).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "store_unavailable");
    assert!(!body["message"].as_str().unwrap().contains("127.0.0.1"));
    let rooms = a
        .http
        .get(a.url("/api/rooms"))
        .bearer_auth(&login.token)
        .send()
        .await
        .unwrap();
    assert_eq!(rooms.status(), 503);
    // A socket whose session cannot be checked is told to try again later.
    let mut fresh = a.connect(None).await;
    send(&mut fresh, auth(&login.token, None)).await;
    tokio::time::timeout(WAIT, expect_close(&mut fresh, 1013))
        .await
        .unwrap();
}

#[tokio::test]
async fn expire_tokens_on_b_closes_the_sockets_on_a_as_expired() {
    let redis = TestRedis::start();
    let (a, b) = (instance(&redis.config).await, instance(&redis.config).await);
    let (name, password) = new_user(&a).await;
    let (mut on_a, login) = a.authed(&name, &password).await;
    let (mut bob, _) = a.authed("bob", "builder").await;
    let response = b
        .post_json("/api/admin/expire-tokens", json!({"username": name}))
        .await;
    assert_eq!(response.status(), 200);
    expect_auth_error(&mut on_a, AuthErrorCode::ExpiredToken).await;
    let mut again = a.connect(None).await;
    send(&mut again, auth(&login.token, None)).await;
    expect_auth_error(&mut again, AuthErrorCode::ExpiredToken).await;
    // The refresh cookie still works, on either instance.
    assert_eq!(a.refresh(&login.cookie).await.status(), 200);
    crate::common::assert_alive(&mut bob, 1).await;
}

#[tokio::test]
async fn one_username_created_at_once_on_two_instances_is_one_account() {
    let redis = TestRedis::start();
    let (a, b) = (instance(&redis.config).await, instance(&redis.config).await);
    let name = format!("u-{}", uuid::Uuid::new_v4().simple());
    let body = json!({"username": name, "password": "pw"});
    let (on_a, on_b) = tokio::join!(
        a.post_json("/api/admin/users", body.clone()),
        b.post_json("/api/admin/users", body.clone()),
    );
    let mut statuses = [on_a.status().as_u16(), on_b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [201, 409]);
    let id_a = a.state.accounts.by_name(&name).await.unwrap().unwrap().id;
    let id_b = b.state.accounts.by_name(&name).await.unwrap().unwrap().id;
    assert_eq!(id_a, id_b);
    // Both instances start with the same demo users.
    for server in [&a, &b] {
        let alice = server.state.accounts.by_name("alice").await.unwrap();
        assert_eq!(alice.unwrap().id, tether_server::accounts::ALICE_ID);
    }
}

/// Redis restarted without its data (what `appendonly yes` prevents): the
/// records are gone for every instance alike, and each loss is told
/// clearly: a lost session is `revoked` (the client signs in again), a
/// lost room is not found, a lost account is unknown on both instances;
/// the demo users come back by themselves.
#[tokio::test]
async fn after_redis_lost_its_data_every_loss_is_told_clearly_and_alike() {
    let mut redis = TestRedis::start();
    let (a, b) = (instance(&redis.config).await, instance(&redis.config).await);
    let (name, password) = new_user(&a).await;
    let (_ws, login) = a.authed(&name, &password).await;
    let alice = a.login("alice", "wonderland").await;
    let room = create_room(&a, &alice, &[]).await;
    redis.server.restart_empty();
    // The instances reconnect by themselves (bounded wait); the demo
    // users sign in again on both.
    let mut relogin = None;
    for server in [&a, &b] {
        let deadline = tokio::time::Instant::now() + WAIT;
        relogin = Some(loop {
            let response = server.try_login("alice", "wonderland").await;
            if response.status() == 200 {
                break crate::common::login_from(response).await;
            }
            assert_eq!(response.status(), 503);
            assert!(tokio::time::Instant::now() < deadline, "never reconnected");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        });
    }
    let relogin = relogin.expect("logged in");
    for server in [&a, &b] {
        assert_eq!(server.try_login(&name, &password).await.status(), 401);
        let mut ws = server.connect(None).await;
        send(&mut ws, auth(&login.token, None)).await;
        expect_auth_error(&mut ws, AuthErrorCode::Revoked).await;
        let rooms = server
            .http
            .get(server.url("/api/rooms"))
            .bearer_auth(&relogin.token)
            .send()
            .await
            .unwrap();
        assert_eq!(rooms.status(), 200);
        assert_eq!(rooms.json::<Value>().await.unwrap(), json!([]));
        let removed = server
            .http
            .delete(server.url(&format!("/api/rooms/{room}/members/bob")))
            .bearer_auth(&relogin.token)
            .send()
            .await
            .unwrap();
        assert_eq!(removed.status(), 404);
    }
}
