//! Two server instances (two `AppState`s in this process) on one Redis with
//! the same prefix: a socket on A gets what is published on B, exactly
//! once and in order, also across a forced pub/sub reconnect, a topic reset
//! and Redis losing its data.

#[path = "support/redis.rs"]
mod redis_server;

use futures_util::{SinkExt as _, StreamExt as _};
use redis_server::RedisServer;
use std::time::Duration;
use tether_protocol::{
    Auth, ClientMessage, Position, Secret, ServerMessage, Subscribe, TokenResponse,
    UnsubscribedCode,
};
use tether_server::redis::RedisConfig;
use tether_server::{AppState, Config};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Longest wait for any expected event.
const WAIT: Duration = Duration::from_secs(10);

struct Instance {
    base: String,
    state: AppState,
}

async fn instance(redis: &RedisServer, prefix: &str) -> Instance {
    let mut config = Config::dev();
    // Instances behind one load balancer share the token key.
    config.jwt_secret = Some(b"a test secret shared by the instances".to_vec());
    config.redis = Some(RedisConfig {
        url: redis.url.clone(),
        prefix: prefix.to_owned(),
    });
    let state = AppState::connect(config).await.expect("redis is up");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = state.clone();
    tokio::spawn(async move {
        tether_server::serve(listener, served, std::future::pending())
            .await
            .unwrap()
    });
    // The subscriber task is connected (and has resynced nothing) once.
    let mut connections = state.pubsub.as_ref().unwrap().watch_connections();
    tokio::time::timeout(WAIT, connections.wait_for(|n| *n >= 1))
        .await
        .expect("the subscriber connects")
        .unwrap();
    Instance {
        base: format!("http://{addr}"),
        state,
    }
}

/// Logs alice in on `at`: her token and user id there.
async fn login(at: &Instance) -> (String, Uuid) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/auth/login", at.base))
        .json(&serde_json::json!({"username": "alice", "password": "wonderland"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: TokenResponse = response.json().await.unwrap();
    let token = body.access_token.expose().to_owned();
    let user = at
        .state
        .accounts
        .by_name("alice")
        .await
        .unwrap()
        .unwrap()
        .id;
    (token, user)
}

/// A room of alice's on `at`: its topic.
async fn room(at: &Instance, token: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}/api/rooms", at.base))
        .bearer_auth(token)
        .json(&serde_json::json!({"name": "r", "members": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let room: serde_json::Value = response.json().await.unwrap();
    format!("room:{}", room["id"].as_str().unwrap())
}

async fn send(ws: &mut Ws, message: ClientMessage) {
    ws.send(Message::text(message.encode())).await.unwrap();
}

async fn recv(ws: &mut Ws) -> ServerMessage {
    let message = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("a frame within the timeout");
    match message {
        Some(Ok(Message::Text(text))) => {
            ServerMessage::decode_with_limit(text.as_str(), usize::MAX).unwrap()
        }
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// Connects to `at`, authenticates (replaying after `last_seq`) and
/// subscribes to `topic`: `subscribed` proves the feed's channel is held
/// too (the socket handles its frames in order).
async fn socket(at: &Instance, token: &str, topic: &str, since: Option<Position>) -> Ws {
    let url = format!("{}/api/ws/notification", at.base.replacen("http", "ws", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    send(
        &mut ws,
        ClientMessage::Auth(Auth {
            token: Some(Secret::new(token)),
            last_seq: Some(0),
        }),
    )
    .await;
    assert!(matches!(recv(&mut ws).await, ServerMessage::AuthSuccess(_)));
    subscribe(&mut ws, topic, since).await;
    ws
}

async fn subscribe(
    ws: &mut Ws,
    topic: &str,
    since: Option<Position>,
) -> tether_protocol::Subscribed {
    send(
        ws,
        ClientMessage::Subscribe(Subscribe {
            topic: topic.to_owned(),
            since,
            last: None,
        }),
    )
    .await;
    match recv(ws).await {
        ServerMessage::Subscribed(subscribed) => subscribed,
        other => panic!("expected subscribed, got {other:?}"),
    }
}

/// What the socket received, in order: notifications by seq and messages by
/// offset, until both reach the expected counts.
async fn collect(ws: &mut Ws, seqs: u64, offsets: u64) -> (Vec<u64>, Vec<u64>) {
    let (mut got_seqs, mut got_offsets) = (Vec::new(), Vec::new());
    while (got_seqs.len() as u64) < seqs || (got_offsets.len() as u64) < offsets {
        match recv(ws).await {
            ServerMessage::Notification(n) => got_seqs.push(n.seq),
            ServerMessage::Message(m) => got_offsets.push(m.offset),
            ServerMessage::Presence(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    (got_seqs, got_offsets)
}

async fn publish_both(on: &Instance, user: Uuid, topic: &str, count: u64) {
    let data = tether_protocol::RawJson::new("{\"n\":1}").unwrap();
    for _ in 0..count {
        on.state.feeds.publish(user, "t", "b").await.unwrap();
        on.state
            .topics
            .publish_as_server(topic, "e", &data)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_on_a_gets_what_b_publishes_exactly_once_in_order_across_a_reconnect() {
    let redis = RedisServer::start();
    let prefix = format!("test-{}:", Uuid::new_v4().simple());
    let (a, b) = (
        instance(&redis, &prefix).await,
        instance(&redis, &prefix).await,
    );
    let (token, user) = login(&a).await;
    let topic = room(&a, &token).await;
    let mut ws = socket(&a, &token, &topic, None).await;

    publish_both(&b, user, &topic, 30).await;
    let (seqs, offsets) = collect(&mut ws, 30, 30).await;
    assert_eq!(seqs, (1..=30).collect::<Vec<u64>>());
    assert_eq!(offsets, (1..=30).collect::<Vec<u64>>());

    // The subscriber connection of A breaks while B publishes: what A's
    // pub/sub missed comes from the streams, nothing twice.
    let pubsub = a.state.pubsub.clone().unwrap();
    let mut connections = pubsub.watch_connections();
    let before = *connections.borrow_and_update();
    pubsub.drop_connection();
    publish_both(&b, user, &topic, 30).await;
    tokio::time::timeout(WAIT, connections.wait_for(|n| *n > before))
        .await
        .expect("the subscriber reconnects")
        .unwrap();
    publish_both(&b, user, &topic, 30).await;
    let (seqs, offsets) = collect(&mut ws, 60, 60).await;
    assert_eq!(seqs, (31..=90).collect::<Vec<u64>>());
    assert_eq!(offsets, (31..=90).collect::<Vec<u64>>());
    // Nothing more was queued: the next frames are the next ones.
    publish_both(&b, user, &topic, 1).await;
    assert_eq!(collect(&mut ws, 1, 1).await, (vec![91], vec![91]));

    // A reset made on B reaches the subscriber on A.
    let (head, _) = b.state.topics.reset(&topic, false).await.unwrap();
    match recv(&mut ws).await {
        ServerMessage::Unsubscribed(u) => {
            assert_eq!(u.code, UnsubscribedCode::Reset);
            assert_eq!(u.epoch, Some(head.epoch.clone()));
        }
        other => panic!("expected unsubscribed reset, got {other:?}"),
    }
    let since = Position {
        epoch: head.epoch.clone(),
        offset: 0,
    };
    let subscribed = subscribe(&mut ws, &topic, Some(since)).await;
    assert_eq!(subscribed.recovered, Some(true));
    publish_both(&b, user, &topic, 1).await;
    assert_eq!(collect(&mut ws, 1, 1).await, (vec![92], vec![1]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_resets_topics_and_publishing_resumes() {
    let mut redis = RedisServer::start();
    let prefix = format!("test-{}:", Uuid::new_v4().simple());
    let (a, b) = (
        instance(&redis, &prefix).await,
        instance(&redis, &prefix).await,
    );
    let (token, user) = login(&a).await;
    let topic = room(&a, &token).await;
    let mut ws = socket(&a, &token, &topic, None).await;
    publish_both(&b, user, &topic, 3).await;
    let epoch = a.state.topics.head(&topic).await.unwrap().epoch;
    assert_eq!(collect(&mut ws, 3, 3).await, (vec![1, 2, 3], vec![1, 2, 3]));

    let mut connections = a.state.pubsub.as_ref().unwrap().watch_connections();
    let before = *connections.borrow_and_update();
    redis.stop();
    // While Redis is down nothing is reported published.
    let data = tether_protocol::RawJson::new("1").unwrap();
    assert!(b.state.feeds.publish(user, "t", "b").await.is_err());
    assert!(
        b.state
            .topics
            .publish_as_server(&topic, "e", &data)
            .await
            .is_err()
    );
    redis.restart_empty();
    tokio::time::timeout(WAIT, connections.wait_for(|n| *n > before))
        .await
        .expect("the subscriber reconnects")
        .unwrap();
    // The topic's history is gone: its subscriber is told, with the new
    // epoch, and recovers nothing it did not have.
    let new_epoch = match recv(&mut ws).await {
        ServerMessage::Unsubscribed(u) => {
            assert_eq!(u.code, UnsubscribedCode::Reset);
            u.epoch.expect("a reset carries the new epoch")
        }
        other => panic!("expected unsubscribed reset, got {other:?}"),
    };
    assert_ne!(new_epoch, epoch);
    // The room went with the data (production Redis runs with
    // `appendonly yes`): resubscribing is refused, finally.
    send(
        &mut ws,
        ClientMessage::Subscribe(Subscribe {
            topic: topic.clone(),
            since: Some(Position { epoch, offset: 3 }),
            last: None,
        }),
    )
    .await;
    match recv(&mut ws).await {
        ServerMessage::SubscribeError(e) => {
            assert_eq!(e.code, tether_protocol::SubscribeErrorCode::NotFound);
        }
        other => panic!("expected subscribe_error not_found, got {other:?}"),
    }
    // Publishing works again: the feed starts above every seq issued
    // before the loss (the store's feed floor) and the socket follows it.
    let deadline = tokio::time::Instant::now() + WAIT;
    let seq = loop {
        match b.state.feeds.publish(user, "t", "b").await {
            Ok(n) => break n.seq,
            Err(_) => {
                assert!(tokio::time::Instant::now() < deadline, "publishing resumes");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    assert!(seq > 1_000_000, "seq {seq} is above the floor");
    assert_eq!(collect(&mut ws, 1, 0).await, (vec![seq], vec![]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_publishing_fails_clearly_and_nothing_is_taken() {
    let mut redis = RedisServer::start();
    let prefix = format!("test-{}:", Uuid::new_v4().simple());
    let a = instance(&redis, &prefix).await;
    let (token, _) = login(&a).await;
    let topic = room(&a, &token).await;
    let other = room(&a, &token).await;
    let mut ws = socket(&a, &token, &topic, None).await;
    redis.stop();

    // HTTP: 503 store_unavailable.
    let response = reqwest::Client::new()
        .post(format!("{}/api/notifications", a.base))
        .bearer_auth(&token)
        .json(&serde_json::json!({"title": "t", "body": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "store_unavailable");
    assert!(!body["message"].as_str().unwrap().contains(&redis.url));

    // A publish: nack rate_limited (the client resends).
    let publish = ClientMessage::Publish(tether_protocol::Publish {
        id: Uuid::new_v4().to_string(),
        topic: topic.clone(),
        event: "e".into(),
        data: tether_protocol::RawJson::new("1").unwrap(),
    });
    send(&mut ws, publish.clone()).await;
    match recv(&mut ws).await {
        ServerMessage::Nack(nack) => {
            assert_eq!(nack.code, tether_protocol::NackCode::RateLimited);
        }
        other => panic!("expected nack rate_limited, got {other:?}"),
    }
    // A subscribe: subscribe_error unavailable, retried.
    send(
        &mut ws,
        ClientMessage::Subscribe(Subscribe {
            topic: other.clone(),
            since: None,
            last: None,
        }),
    )
    .await;
    match recv(&mut ws).await {
        ServerMessage::SubscribeError(error) => {
            assert_eq!(error.code, tether_protocol::SubscribeErrorCode::Unavailable);
            assert!(error.retry);
        }
        other => panic!("expected subscribe_error unavailable, got {other:?}"),
    }

    // Nothing was taken: the topic holds nothing once Redis is back
    // (empty: its subscription of the lost epoch ends), and the feed
    // resumes from 1.
    let mut connections = a.state.pubsub.as_ref().unwrap().watch_connections();
    let before = *connections.borrow_and_update();
    redis.restart_empty();
    tokio::time::timeout(WAIT, connections.wait_for(|n| *n > before))
        .await
        .expect("the subscriber reconnects")
        .unwrap();
    match recv(&mut ws).await {
        ServerMessage::Unsubscribed(u) => assert_eq!(u.code, UnsubscribedCode::Reset),
        other => panic!("expected unsubscribed reset, got {other:?}"),
    }
    assert_eq!(a.state.topics.head(&topic).await.unwrap().offset, 0);
    let user = a.state.registry.list()[0].user_id;
    let seq = a.state.feeds.publish(user, "t", "b").await.unwrap().seq;
    assert!(seq > 1_000_000, "seq {seq} is above the floor");
    assert_eq!(collect(&mut ws, 1, 0).await, (vec![seq], vec![]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_lost_by_pub_sub_is_read_from_the_store_before_the_next_one() {
    use tether_server::topics::TOPIC_RETENTION;
    let redis = RedisServer::start();
    let prefix = format!("test-{}:", Uuid::new_v4().simple());
    let (a, b) = (
        instance(&redis, &prefix).await,
        instance(&redis, &prefix).await,
    );
    let (token, user) = login(&a).await;
    let topic = room(&a, &token).await;
    let mut ws = socket(&a, &token, &topic, None).await;
    publish_both(&b, user, &topic, 2).await;
    assert_eq!(collect(&mut ws, 2, 2).await, (vec![1, 2], vec![1, 2]));
    // Appended to the streams but announced on a channel nobody hears: as
    // if pub/sub had lost them.
    let store = b.state.redis.clone().unwrap();
    for _ in 0..2 {
        let mut feed = store.feed_log(user, tether_server::notifications::RETAINED);
        feed.channel = format!("{prefix}nowhere");
        let id = Uuid::new_v4().to_string();
        store
            .append(&feed, &mut |seq| {
                let n = tether_protocol::Notification {
                    seq,
                    id: id.clone(),
                    title: "lost".into(),
                    body: String::new(),
                    created_at: "2026-01-01T00:00:00Z".into(),
                };
                axum::extract::ws::Utf8Bytes::from(ServerMessage::Notification(n).encode())
            })
            .await
            .unwrap();
        let mut log = store.topic_log(&topic, TOPIC_RETENTION);
        log.channel = format!("{prefix}nowhere");
        let id = Uuid::new_v4();
        store
            .append(&log, &mut |offset| {
                axum::extract::ws::Utf8Bytes::from(format!(
                    r#"{{"type":"message","payload":{{"topic":"{topic}","offset":{offset},"event":"lost","data":null,"from":null,"id":"{id}","created_at":"2026-01-01T00:00:00Z"}}}}"#
                ))
            })
            .await
            .unwrap();
    }
    // The next live ones come after the missing ones, read from the store.
    publish_both(&b, user, &topic, 1).await;
    assert_eq!(collect(&mut ws, 3, 3).await, (vec![3, 4, 5], vec![3, 4, 5]));
    // Nothing twice: the next frames are the next ones.
    publish_both(&b, user, &topic, 1).await;
    assert_eq!(collect(&mut ws, 1, 1).await, (vec![6], vec![6]));
}

/// Logs `name` in on `at`: a token.
async fn login_as(at: &Instance, name: &str, password: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}/api/auth/login", at.base))
        .json(&serde_json::json!({"username": name, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: TokenResponse = response.json().await.unwrap();
    body.access_token.expose().to_owned()
}

async fn presence(ws: &mut Ws) -> (Vec<String>, Vec<String>) {
    match recv(ws).await {
        ServerMessage::Presence(p) => (
            p.joined.into_iter().map(|u| u.username).collect(),
            p.left.into_iter().map(|u| u.username).collect(),
        ),
        other => panic!("expected presence, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_counts_a_user_once_across_instances() {
    let redis = RedisServer::start();
    let prefix = format!("test-{}:", Uuid::new_v4().simple());
    let (a, b) = (
        instance(&redis, &prefix).await,
        instance(&redis, &prefix).await,
    );
    let (alice, _) = login(&a).await;
    let response = reqwest::Client::new()
        .post(format!("{}/api/rooms", a.base))
        .bearer_auth(&alice)
        .json(&serde_json::json!({"name": "r", "members": ["bob"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let room: serde_json::Value = response.json().await.unwrap();
    let topic = format!("room:{}", room["id"].as_str().unwrap());
    let mut alice_a = socket(&a, &alice, &topic, None).await;

    // Bob on B sees alice (subscribed on A) and himself; alice is told.
    let bob = login_as(&b, "bob", "builder").await;
    let url = format!("{}/api/ws/notification", b.base.replacen("http", "ws", 1));
    let (mut bob_b, _) = tokio_tungstenite::connect_async(url.clone()).await.unwrap();
    send(
        &mut bob_b,
        ClientMessage::Auth(Auth {
            token: Some(Secret::new(&bob)),
            last_seq: None,
        }),
    )
    .await;
    assert!(matches!(
        recv(&mut bob_b).await,
        ServerMessage::AuthSuccess(_)
    ));
    let subscribed = subscribe(&mut bob_b, &topic, None).await;
    let names: Vec<&str> = subscribed
        .presence
        .iter()
        .map(|u| u.username.as_str())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(presence(&mut alice_a).await, (vec!["bob".into()], vec![]));

    // Alice's second socket, on B: she is present already, no join. Her
    // first one ends: she is still present, no leave. Her last one ends:
    // bob is told she left, and that is the first presence he gets.
    let (mut alice_b, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    send(
        &mut alice_b,
        ClientMessage::Auth(Auth {
            token: Some(Secret::new(&alice)),
            last_seq: None,
        }),
    )
    .await;
    assert!(matches!(
        recv(&mut alice_b).await,
        ServerMessage::AuthSuccess(_)
    ));
    subscribe(&mut alice_b, &topic, None).await;
    for ws in [&mut alice_a, &mut alice_b] {
        send(
            ws,
            ClientMessage::Unsubscribe(tether_protocol::Unsubscribe {
                topic: topic.clone(),
            }),
        )
        .await;
        assert!(matches!(recv(ws).await, ServerMessage::Unsubscribed(_)));
    }
    assert_eq!(presence(&mut bob_b).await, (vec![], vec!["alice".into()]));
}
