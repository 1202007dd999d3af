//! Topics (`room:<id>`) over real sockets: every rule of "Topics" in
//! shared/PROTOCOL.md, frame by frame. Frames are read as JSON values, so
//! the tests check the wire itself.

use crate::common::*;
use futures_util::SinkExt;
use serde_json::{Value, json};
use tether_server::Config;
use tokio_tungstenite::tungstenite::Message;

/// The next text frame as JSON.
async fn next_json(ws: &mut Ws) -> Value {
    match next_message(ws).await {
        Some(Ok(Message::Text(text))) => serde_json::from_str(text.as_str()).unwrap(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// The next frame, which must be of type `kind`; returns its payload.
async fn expect(ws: &mut Ws, kind: &str) -> Value {
    let frame = next_json(ws).await;
    assert_eq!(frame["type"], kind, "expected {kind}, got {frame}");
    frame["payload"].clone()
}

async fn send_json(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string())).await.unwrap();
}

async fn subscribe(ws: &mut Ws, topic: &str, since: Value, last: Value) {
    send_json(
        ws,
        json!({"type": "subscribe", "payload": {"topic": topic, "since": since, "last": last}}),
    )
    .await;
}

/// Subscribes with neither `since` nor `last`; returns the `subscribed`.
async fn join(ws: &mut Ws, topic: &str) -> Value {
    send_json(
        ws,
        json!({"type": "subscribe", "payload": {"topic": topic}}),
    )
    .await;
    let subscribed = expect(ws, "subscribed").await;
    assert_eq!(subscribed["topic"], topic);
    subscribed
}

async fn publish(ws: &mut Ws, id: &str, topic: &str, data: &str) {
    let text = format!(
        r#"{{"type":"publish","payload":{{"id":"{id}","topic":"{topic}","event":"chat.say","data":{data}}}}}"#
    );
    send_text(ws, &text).await;
}

async fn expect_subscribe_error(ws: &mut Ws, topic: &str, code: &str) {
    let error = expect(ws, "subscribe_error").await;
    assert_eq!(error["topic"], topic);
    assert_eq!(error["code"], code, "{error}");
    assert_eq!(error["retry"], false);
    assert!(!error["message"].as_str().unwrap().is_empty());
}

async fn expect_nack(ws: &mut Ws, id: &str, code: &str) {
    let nack = expect(ws, "nack").await;
    assert_eq!(nack["id"], id);
    assert_eq!(nack["code"], code, "{nack}");
}

/// Expects the `message` at `offset`; returns it.
async fn expect_message(ws: &mut Ws, topic: &str, offset: u64) -> Value {
    let message = expect(ws, "message").await;
    assert_eq!(message["topic"], topic);
    assert_eq!(message["offset"], offset, "{message}");
    message
}

/// Creates a room owned by `token`'s user with `members`; returns its topic.
async fn room(server: &Server, token: &str, members: &[&str]) -> String {
    let response = server
        .http
        .post(server.url("/api/rooms"))
        .bearer_auth(token)
        .json(&json!({"name": "room", "members": members}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let room: Value = response.json().await.unwrap();
    format!("room:{}", room["id"].as_str().unwrap())
}

/// `count` server messages through the dev route; returns the last offset.
async fn dev_publish(server: &Server, topic: &str, count: u64) -> u64 {
    let response = server
        .post_json(
            &format!("/api/admin/topics/{topic}/publish"),
            json!({"event": "tick", "count": count}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["published"], count);
    body["offset"].as_u64().unwrap()
}

async fn user(server: &Server, name: &str) -> Value {
    let account = server.state.accounts.by_name(name).await.unwrap().unwrap();
    json!({"user_id": account.id.to_string(), "username": name})
}

#[tokio::test]
async fn subscribe_before_auth_is_not_authenticated() {
    let server = dev().await;
    let mut ws = server.connect(None).await;
    send_json(
        &mut ws,
        json!({"type": "subscribe", "payload": {"topic": "room:x"}}),
    )
    .await;
    expect_auth_error(&mut ws, tether_protocol::AuthErrorCode::NotAuthenticated).await;
}

#[tokio::test]
async fn every_subscribe_error_code_is_final_and_the_socket_stays() {
    let server = dev().await;
    let (mut alice, login) = server.authed("alice", "wonderland").await;
    let (mut bob, _) = server.authed("bob", "builder").await;
    let topic = room(&server, &login.token, &[]).await;
    let long = format!("room:{}", "x".repeat(124));
    for bad in ["room", "room:", ":x", "room:a b", "room:a:b", long.as_str()] {
        subscribe(&mut alice, bad, Value::Null, Value::Null).await;
        expect_subscribe_error(&mut alice, bad, "invalid_topic").await;
    }
    for missing in ["room:nope", "chat:1", &format!("room:{}", "0".repeat(32))] {
        subscribe(&mut alice, missing, Value::Null, Value::Null).await;
        expect_subscribe_error(&mut alice, missing, "not_found").await;
    }
    subscribe(&mut bob, &topic, Value::Null, Value::Null).await;
    expect_subscribe_error(&mut bob, &topic, "forbidden").await;
    for (since, last) in [
        (json!({"epoch": "e"}), Value::Null),
        (json!({"epoch": 1, "offset": 1}), Value::Null),
        (json!({"epoch": "e", "offset": -1}), Value::Null),
        (json!("e:1"), Value::Null),
        (Value::Null, json!(1001)),
        (Value::Null, json!(-1)),
        (Value::Null, json!("5")),
        (Value::Null, json!(2.5)),
    ] {
        subscribe(&mut alice, &topic, since, last).await;
        expect_subscribe_error(&mut alice, &topic, "bad_request").await;
    }
    // A subscribe without a string topic cannot be answered for a topic.
    send_json(
        &mut alice,
        json!({"type": "subscribe", "payload": {"topic": 7}}),
    )
    .await;
    expect_error(&mut alice, "malformed_frame").await;
    assert_alive(&mut alice, 1).await;
    assert_alive(&mut bob, 1).await;
}

#[tokio::test]
async fn over_100_topics_on_one_socket_is_too_many_topics() {
    let server = dev().await;
    let (mut ws, login) = server.authed("alice", "wonderland").await;
    let mut topics = Vec::new();
    for _ in 0..=tether_server::topics::MAX_TOPICS_PER_SOCKET {
        topics.push(room(&server, &login.token, &[]).await);
    }
    let (extra, first) = (topics.pop().unwrap(), topics[0].clone());
    for topic in &topics {
        join(&mut ws, topic).await;
    }
    subscribe(&mut ws, &extra, Value::Null, Value::Null).await;
    expect_subscribe_error(&mut ws, &extra, "too_many_topics").await;
    // Subscribing again to one of the 100 replaces it; leaving one makes room.
    join(&mut ws, &first).await;
    send_json(
        &mut ws,
        json!({"type": "unsubscribe", "payload": {"topic": first}}),
    )
    .await;
    let unsubscribed = expect(&mut ws, "unsubscribed").await;
    assert_eq!(unsubscribed["code"], "unsubscribed");
    join(&mut ws, &extra).await;
    // Another socket has its own 100.
    let (mut other, _) = server.authed("alice", "wonderland").await;
    join(&mut other, &first).await;
}

#[tokio::test]
async fn members_publish_and_every_subscriber_gets_the_exact_data_in_order() {
    let server = dev().await;
    let (mut alice, login) = server.authed("alice", "wonderland").await;
    let (mut bob, _) = server.authed("bob", "builder").await;
    let topic = room(&server, &login.token, &["bob"]).await;
    let subscribed = join(&mut alice, &topic).await;
    assert_eq!(subscribed["offset"], 0);
    assert_eq!(subscribed["from"], 1);
    assert!(subscribed.get("recovered").is_none(), "{subscribed}");
    assert!(!subscribed["epoch"].as_str().unwrap().is_empty());
    join(&mut bob, &topic).await;
    expect(&mut alice, "presence").await;
    // The data is kept byte for byte (spacing, 1.50, key order).
    let data = r#"{"text": "hi", "x": 1.50, "a": [1,2]}"#;
    publish(&mut alice, "p-1", &topic, data).await;
    let ack = expect(&mut alice, "ack").await;
    assert_eq!(ack, json!({"id": "p-1", "topic": topic, "offset": 1}));
    for ws in [&mut alice, &mut bob] {
        let raw = match next_message(ws).await {
            Some(Ok(Message::Text(text))) => text.as_str().to_owned(),
            other => panic!("{other:?}"),
        };
        assert!(raw.contains(&format!(r#""data":{data}"#)), "{raw}");
        let message: Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(message["type"], "message");
        let message = &message["payload"];
        assert_eq!(message["offset"], 1);
        assert_eq!(message["event"], "chat.say");
        assert_eq!(message["from"], user(&server, "alice").await);
        assert!(uuid::Uuid::parse_str(message["id"].as_str().unwrap()).is_ok());
        assert!(
            tether_protocol::time::parse_rfc3339(message["created_at"].as_str().unwrap()).is_some()
        );
    }
    for i in 2..=20u64 {
        publish(&mut bob, &format!("b-{i}"), &topic, &i.to_string()).await;
        assert_eq!(expect(&mut bob, "ack").await["offset"], i);
        // The publisher gets its own message like every subscriber.
        assert_eq!(expect_message(&mut bob, &topic, i).await["data"], i);
    }
    for i in 2..=20u64 {
        let message = expect_message(&mut alice, &topic, i).await;
        assert_eq!(message["data"], i);
        assert_eq!(message["from"]["username"], "bob");
    }
}

#[tokio::test]
async fn publish_is_refused_with_each_nack_code() {
    let server = dev().await;
    let (mut alice, login) = server.authed("alice", "wonderland").await;
    let (mut bob, _) = server.authed("bob", "builder").await;
    let topic = room(&server, &login.token, &[]).await;
    // forbidden: not a member, no such room, not a topic at all.
    publish(&mut bob, "b-1", &topic, "1").await;
    expect_nack(&mut bob, "b-1", "forbidden").await;
    for missing in ["room:nope", "chat:1", "nonsense"] {
        publish(&mut alice, "a-x", missing, "1").await;
        expect_nack(&mut alice, "a-x", "forbidden").await;
    }
    // not_subscribed: a member whose socket has not subscribed (yet).
    publish(&mut alice, "a-1", &topic, "1").await;
    expect_nack(&mut alice, "a-1", "not_subscribed").await;
    join(&mut alice, &topic).await;
    // malformed_body: numbers the server cannot keep exactly.
    for (id, data) in [("a-2", "1e400"), ("a-3", r#"{"n":18446744073709551616}"#)] {
        publish(&mut alice, id, &topic, data).await;
        expect_nack(&mut alice, id, "malformed_body").await;
    }
    // A refused id was not applied: it can be published now.
    publish(&mut alice, "a-1", &topic, "1").await;
    assert_eq!(expect(&mut alice, "ack").await["offset"], 1);
    expect_message(&mut alice, &topic, 1).await;
    // A bad id or a payload of the wrong shape is a malformed frame.
    publish(&mut alice, "", &topic, "1").await;
    expect_error(&mut alice, "malformed_frame").await;
    send_json(
        &mut alice,
        json!({"type": "publish", "payload": {"id": "x", "topic": topic}}),
    )
    .await;
    expect_error(&mut alice, "malformed_frame").await;
    assert_alive(&mut alice, 1).await;
    assert_eq!(server.state.topics.head(&topic).await.unwrap().offset, 1);
}

#[tokio::test]
async fn duplicate_publish_ids_are_acked_with_the_original_offset_and_applied_once() {
    let server = dev().await;
    let (mut first, login) = server.authed("alice", "wonderland").await;
    let (mut second, _) = server.authed("alice", "wonderland").await;
    let (mut bob, _) = server.authed("bob", "builder").await;
    let topic = room(&server, &login.token, &["bob"]).await;
    join(&mut first, &topic).await;
    join(&mut second, &topic).await;
    join(&mut bob, &topic).await;
    for ws in [&mut first, &mut second] {
        expect(ws, "presence").await;
    }
    publish(&mut first, "same", &topic, r#""once""#).await;
    assert_eq!(expect(&mut first, "ack").await["offset"], 1);
    expect_message(&mut first, &topic, 1).await;
    // Again on the same socket, and from the user's other socket (a resend
    // after a reconnect), even with other data: acked with offset 1.
    publish(&mut first, "same", &topic, r#""again""#).await;
    assert_eq!(expect(&mut first, "ack").await["offset"], 1);
    expect_message(&mut second, &topic, 1).await;
    publish(&mut second, "same", &topic, r#""again""#).await;
    let ack = expect(&mut second, "ack").await;
    assert_eq!(ack, json!({"id": "same", "topic": topic, "offset": 1}));
    // Another user's id space is their own.
    expect_message(&mut bob, &topic, 1).await;
    publish(&mut bob, "same", &topic, r#""bob""#).await;
    assert_eq!(expect(&mut bob, "ack").await["offset"], 2);
    // Every subscriber saw offset 1 once, then bob's 2: nothing in between.
    assert_eq!(expect_message(&mut bob, &topic, 2).await["data"], "bob");
    assert_eq!(expect_message(&mut first, &topic, 2).await["data"], "bob");
    assert_eq!(expect_message(&mut second, &topic, 2).await["data"], "bob");
    assert_eq!(server.state.topics.head(&topic).await.unwrap().offset, 2);
}

#[tokio::test]
async fn since_recovers_from_the_next_offset_or_says_not_recovered() {
    let server = dev().await;
    let (mut ws, login) = server.authed("alice", "wonderland").await;
    let topic = room(&server, &login.token, &[]).await;
    assert_eq!(dev_publish(&server, &topic, 5).await, 5);
    let epoch = server.state.topics.head(&topic).await.unwrap().epoch;
    // Same epoch, all retained: recovered from since.offset + 1, the replay
    // first, then live messages.
    subscribe(
        &mut ws,
        &topic,
        json!({"epoch": epoch, "offset": 2}),
        json!(1),
    )
    .await;
    let subscribed = expect(&mut ws, "subscribed").await;
    assert_eq!(
        subscribed,
        json!({"topic": topic, "epoch": epoch, "offset": 5, "from": 3, "recovered": true,
               "presence": [user(&server, "alice").await]})
    );
    dev_publish(&server, &topic, 1).await;
    for offset in 3..=6 {
        let message = expect_message(&mut ws, &topic, offset).await;
        assert_eq!(message["from"], Value::Null);
    }
    // Up to date: nothing to replay.
    subscribe(
        &mut ws,
        &topic,
        json!({"epoch": epoch, "offset": 6}),
        Value::Null,
    )
    .await;
    let subscribed = expect(&mut ws, "subscribed").await;
    assert_eq!(
        (subscribed["from"].clone(), subscribed["recovered"].clone()),
        (json!(7), json!(true))
    );
    // Another epoch: not recovered, continues as if since were null (with
    // `last`, the newest `last` messages).
    subscribe(
        &mut ws,
        &topic,
        json!({"epoch": "other", "offset": 2}),
        json!(2),
    )
    .await;
    let subscribed = expect(&mut ws, "subscribed").await;
    assert_eq!(subscribed["recovered"], false);
    assert_eq!(subscribed["from"], 5);
    expect_message(&mut ws, &topic, 5).await;
    expect_message(&mut ws, &topic, 6).await;
    subscribe(
        &mut ws,
        &topic,
        json!({"epoch": "other", "offset": 2}),
        Value::Null,
    )
    .await;
    let subscribed = expect(&mut ws, "subscribed").await;
    assert_eq!(
        (subscribed["from"].clone(), subscribed["recovered"].clone()),
        (json!(7), json!(false))
    );
    // An offset beyond the topic's is not honoured either.
    subscribe(
        &mut ws,
        &topic,
        json!({"epoch": epoch, "offset": 99}),
        Value::Null,
    )
    .await;
    assert_eq!(expect(&mut ws, "subscribed").await["recovered"], false);
    send_json(
        &mut ws,
        json!({"type": "unsubscribe", "payload": {"topic": topic}}),
    )
    .await;
    expect(&mut ws, "unsubscribed").await;
    // Trimmed past since: the same epoch, but not recovered.
    let retention = tether_server::topics::TOPIC_RETENTION as u64;
    let last = dev_publish(&server, &topic, retention + 10).await;
    assert_eq!(last, retention + 16);
    subscribe(
        &mut ws,
        &topic,
        json!({"epoch": epoch, "offset": 6}),
        Value::Null,
    )
    .await;
    let subscribed = expect(&mut ws, "subscribed").await;
    assert_eq!(subscribed["epoch"], epoch.as_str());
    assert_eq!(subscribed["recovered"], false);
    assert_eq!(subscribed["from"], last + 1);
    // The oldest retained one is still recoverable.
    let oldest = last - retention + 1;
    subscribe(
        &mut ws,
        &topic,
        json!({"epoch": epoch, "offset": oldest - 1}),
        Value::Null,
    )
    .await;
    let subscribed = expect(&mut ws, "subscribed").await;
    assert_eq!(
        (subscribed["from"].clone(), subscribed["recovered"].clone()),
        (json!(oldest), json!(true))
    );
    for offset in oldest..=last {
        expect_message(&mut ws, &topic, offset).await;
    }
    assert_alive(&mut ws, 1).await;
}

#[tokio::test]
async fn last_replays_the_newest_retained_messages() {
    let server = dev().await;
    let (mut ws, login) = server.authed("alice", "wonderland").await;
    let topic = room(&server, &login.token, &[]).await;
    subscribe(&mut ws, &topic, Value::Null, json!(50)).await;
    let empty = expect(&mut ws, "subscribed").await;
    assert_eq!(
        (empty["offset"].clone(), empty["from"].clone()),
        (json!(0), json!(1))
    );
    send_json(
        &mut ws,
        json!({"type": "unsubscribe", "payload": {"topic": topic}}),
    )
    .await;
    expect(&mut ws, "unsubscribed").await;
    let retention = tether_server::topics::TOPIC_RETENTION as u64;
    let last = dev_publish(&server, &topic, retention + 200).await;
    subscribe(&mut ws, &topic, Value::Null, json!(3)).await;
    let subscribed = expect(&mut ws, "subscribed").await;
    assert_eq!(
        (subscribed["offset"].clone(), subscribed["from"].clone()),
        (json!(last), json!(last - 2))
    );
    assert!(subscribed.get("recovered").is_none());
    for offset in last - 2..=last {
        let message = expect_message(&mut ws, &topic, offset).await;
        assert_eq!(message["data"], json!({"n": offset}));
    }
    // `last` beyond what is retained: everything retained.
    subscribe(&mut ws, &topic, Value::Null, json!(1000)).await;
    let subscribed = expect(&mut ws, "subscribed").await;
    assert_eq!(subscribed["from"], last - retention + 1);
    for offset in last - retention + 1..=last {
        expect_message(&mut ws, &topic, offset).await;
    }
    // Without `last`: nothing replayed, the next live one follows.
    subscribe(&mut ws, &topic, Value::Null, Value::Null).await;
    assert_eq!(expect(&mut ws, "subscribed").await["from"], last + 1);
    dev_publish(&server, &topic, 1).await;
    expect_message(&mut ws, &topic, last + 1).await;
}

#[tokio::test]
async fn presence_counts_users_once_and_reports_joins_and_leaves() {
    let server = dev().await;
    let login = server.login("alice", "wonderland").await;
    let topic = room(&server, &login.token, &["bob"]).await;
    let (alice, bob) = (user(&server, "alice").await, user(&server, "bob").await);
    let (mut a1, _) = server.authed("alice", "wonderland").await;
    let (mut a2, _) = server.authed("alice", "wonderland").await;
    let (mut b1, _) = server.authed("bob", "builder").await;
    assert_eq!(join(&mut a1, &topic).await["presence"], json!([alice]));
    // Alice's second socket: she is already here, no join.
    assert_eq!(join(&mut a2, &topic).await["presence"], json!([alice]));
    assert_eq!(join(&mut b1, &topic).await["presence"], json!([alice, bob]));
    for ws in [&mut a1, &mut a2] {
        // The first frame after alice's second subscribe: bob's join.
        let presence = expect(ws, "presence").await;
        assert_eq!(
            presence,
            json!({"topic": topic, "joined": [bob], "left": []})
        );
    }
    // A resubscribe on the same socket replaces it: no leave, no join.
    join(&mut a2, &topic).await;
    // Alice leaves one of two sockets: still here.
    send_json(
        &mut a2,
        json!({"type": "unsubscribe", "payload": {"topic": topic}}),
    )
    .await;
    expect(&mut a2, "unsubscribed").await;
    // Her last socket closes: she left. Bob's first frame since his join.
    a1.close(None).await.unwrap();
    let presence = expect(&mut b1, "presence").await;
    assert_eq!(
        presence,
        json!({"topic": topic, "joined": [], "left": [alice]})
    );
    // She joins again with her next subscription; bob's unsubscribe is a leave.
    assert_eq!(join(&mut a2, &topic).await["presence"], json!([alice, bob]));
    assert_eq!(expect(&mut b1, "presence").await["joined"], json!([alice]));
    send_json(
        &mut b1,
        json!({"type": "unsubscribe", "payload": {"topic": topic}}),
    )
    .await;
    expect(&mut b1, "unsubscribed").await;
    assert_eq!(expect(&mut a2, "presence").await["left"], json!([bob]));
}

#[tokio::test]
async fn a_removed_member_gets_unsubscribed_removed_on_every_socket() {
    let server = dev().await;
    let (mut alice, login) = server.authed("alice", "wonderland").await;
    let (mut b1, bob_login) = server.authed("bob", "builder").await;
    let (mut b2, _) = server.authed("bob", "builder").await;
    let topic = room(&server, &login.token, &["bob"]).await;
    let id = topic.strip_prefix("room:").unwrap();
    join(&mut alice, &topic).await;
    join(&mut b1, &topic).await;
    join(&mut b2, &topic).await;
    expect(&mut alice, "presence").await;
    let response = server
        .http
        .delete(server.url(&format!("/api/rooms/{id}/members/bob")))
        .bearer_auth(&login.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    for ws in [&mut b1, &mut b2] {
        let unsubscribed = expect(ws, "unsubscribed").await;
        assert_eq!(unsubscribed["topic"], topic);
        assert_eq!(unsubscribed["code"], "removed");
        assert!(unsubscribed.get("epoch").is_none());
    }
    assert_eq!(
        expect(&mut alice, "presence").await["left"],
        json!([user(&server, "bob").await])
    );
    // Bob receives nothing more of the room, may not rejoin or publish.
    publish(&mut alice, "a-1", &topic, "1").await;
    expect(&mut alice, "ack").await;
    expect_message(&mut alice, &topic, 1).await;
    publish(&mut b1, "b-1", &topic, "1").await;
    expect_nack(&mut b1, "b-1", "forbidden").await;
    subscribe(&mut b2, &topic, Value::Null, Value::Null).await;
    expect_subscribe_error(&mut b2, &topic, "forbidden").await;
    // His room list no longer has it.
    let rooms: Value = server
        .http
        .get(server.url("/api/rooms"))
        .bearer_auth(&bob_login.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rooms, json!([]));
}

#[tokio::test]
async fn re_auth_as_another_user_ends_subscriptions_with_user_changed() {
    let server = dev().await;
    let (mut ws, alice) = server.authed("alice", "wonderland").await;
    let bob = server.login("bob", "builder").await;
    let shared = room(&server, &alice.token, &["bob"]).await;
    let private = room(&server, &alice.token, &[]).await;
    join(&mut ws, &shared).await;
    join(&mut ws, &private).await;
    // The same user again: every subscription stays.
    let again = server.login("alice", "wonderland").await;
    send(&mut ws, auth(&again.token, None)).await;
    expect(&mut ws, "auth_success").await;
    dev_publish(&server, &private, 1).await;
    expect_message(&mut ws, &private, 1).await;
    // Another user: auth_success first, then user_changed for each topic.
    send(&mut ws, auth(&bob.token, None)).await;
    let success = expect(&mut ws, "auth_success").await;
    assert_eq!(success["user_id"], user(&server, "bob").await["user_id"]);
    let mut ended = Vec::new();
    for _ in 0..2 {
        let unsubscribed = expect(&mut ws, "unsubscribed").await;
        assert_eq!(unsubscribed["code"], "user_changed");
        ended.push(unsubscribed["topic"].as_str().unwrap().to_owned());
    }
    ended.sort();
    let mut expected = vec![shared.clone(), private.clone()];
    expected.sort();
    assert_eq!(ended, expected);
    // Nothing of the old subscriptions arrives; resubscribing is checked
    // for bob.
    dev_publish(&server, &private, 1).await;
    subscribe(&mut ws, &private, Value::Null, Value::Null).await;
    expect_subscribe_error(&mut ws, &private, "forbidden").await;
    let subscribed = join(&mut ws, &shared).await;
    assert_eq!(subscribed["presence"], json!([user(&server, "bob").await]));
}

#[tokio::test]
async fn the_reset_route_drops_history_live_with_a_new_epoch() {
    let server = dev().await;
    let (mut ws, login) = server.authed("alice", "wonderland").await;
    let topic = room(&server, &login.token, &[]).await;
    let old = join(&mut ws, &topic).await["epoch"].clone();
    dev_publish(&server, &topic, 3).await;
    for offset in 1..=3 {
        expect_message(&mut ws, &topic, offset).await;
    }
    let response = server
        .post_json(&format!("/api/admin/topics/{topic}/reset"), json!({}))
        .await;
    assert_eq!(response.status(), 200);
    let reset: Value = response.json().await.unwrap();
    assert_eq!(reset["subscribers"], 1);
    assert_ne!(reset["epoch"], old);
    let unsubscribed = expect(&mut ws, "unsubscribed").await;
    assert_eq!(unsubscribed["code"], "reset");
    assert_eq!(unsubscribed["epoch"], reset["epoch"]);
    // The client's answer: since {new epoch, 0}, recovered from offset 1.
    subscribe(
        &mut ws,
        &topic,
        json!({"epoch": reset["epoch"], "offset": 0}),
        Value::Null,
    )
    .await;
    let subscribed = expect(&mut ws, "subscribed").await;
    assert_eq!(subscribed["epoch"], reset["epoch"]);
    assert_eq!(subscribed["offset"], 0);
    assert_eq!(
        (subscribed["from"].clone(), subscribed["recovered"].clone()),
        (json!(1), json!(true))
    );
    dev_publish(&server, &topic, 1).await;
    expect_message(&mut ws, &topic, 1).await;
    // The old epoch is not honoured any more.
    subscribe(
        &mut ws,
        &topic,
        json!({"epoch": old, "offset": 3}),
        Value::Null,
    )
    .await;
    assert_eq!(expect(&mut ws, "subscribed").await["recovered"], false);
    // The dev topic routes answer 404 for other topics, and follow the
    // cookie rule of the other admin routes.
    for path in ["reset", "publish"] {
        let response = server
            .post_json(
                &format!("/api/admin/topics/room:nope/{path}"),
                json!({"event": "x", "data": 1}),
            )
            .await;
        assert_eq!(response.status(), 404);
        let cross_site = reqwest::Client::new()
            .post(server.url(&format!("/api/admin/topics/{topic}/{path}")))
            .header("origin", "https://evil.example")
            .json(&json!({"event": "x", "data": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(cross_site.status(), 403);
    }
    let production = start(Config::production()).await;
    let response = production
        .post_json(&format!("/api/admin/topics/{topic}/reset"), json!({}))
        .await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn the_dev_publish_route_sends_one_message_as_the_server() {
    let server = dev().await;
    let (mut ws, login) = server.authed("alice", "wonderland").await;
    let topic = room(&server, &login.token, &[]).await;
    join(&mut ws, &topic).await;
    let response = server
        .post_json(
            &format!("/api/admin/topics/{topic}/publish"),
            json!({"event": "app.notice", "data": {"text": "hello"}}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"published": 1, "offset": 1})
    );
    let message = expect_message(&mut ws, &topic, 1).await;
    assert_eq!(message["event"], "app.notice");
    assert_eq!(message["data"], json!({"text": "hello"}));
    assert_eq!(message["from"], Value::Null);
    let bad = server
        .post_json(
            &format!("/api/admin/topics/{topic}/publish"),
            json!({"event": "x"}),
        )
        .await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_is_closed_with_1013_and_catches_up_with_since() {
    let mut config = Config::dev();
    config.queue.frames = 8;
    let server = start(config).await;
    let (mut ws, login) = server.authed("alice", "wonderland").await;
    let topic = room(&server, &login.token, &[]).await;
    let epoch = join(&mut ws, &topic).await["epoch"].clone();
    dev_publish(&server, &topic, 5).await;
    for offset in 1..=5 {
        expect_message(&mut ws, &topic, offset).await;
    }
    // The socket stops reading (as far as the server can tell); 50 live
    // messages do not fit its 8-frame queue.
    let stalled = server
        .post_json(
            "/api/admin/stall-sockets",
            json!({"username": "alice", "seconds": 30}),
        )
        .await;
    assert_eq!(stalled.status(), 200);
    dev_publish(&server, &topic, 50).await;
    let mut applied = 5;
    loop {
        match next_message(&mut ws).await {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(text.as_str()).unwrap();
                assert_eq!(frame["payload"]["offset"], applied + 1, "{frame}");
                applied += 1;
            }
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 1013);
                break;
            }
            other => panic!("expected messages then close 1013, got {other:?}"),
        }
    }
    assert!(applied < 55, "the queue bound was not hit");
    // Reconnect and resubscribe from the last applied position: the rest,
    // in order, nothing missing.
    let (mut ws, _) = server.authed("alice", "wonderland").await;
    subscribe(
        &mut ws,
        &topic,
        json!({"epoch": epoch, "offset": applied}),
        Value::Null,
    )
    .await;
    let subscribed = expect(&mut ws, "subscribed").await;
    assert_eq!(
        (subscribed["from"].clone(), subscribed["recovered"].clone()),
        (json!(applied + 1), json!(true))
    );
    for offset in applied + 1..=55 {
        expect_message(&mut ws, &topic, offset).await;
    }
    assert_alive(&mut ws, 1).await;
}

#[tokio::test]
async fn a_signed_out_user_leaves_every_topic() {
    let server = dev().await;
    let (mut alice, login) = server.authed("alice", "wonderland").await;
    let (mut b1, bob) = server.authed("bob", "builder").await;
    let (mut b2, _) = server.authed("bob", "builder").await;
    let topic = room(&server, &login.token, &["bob"]).await;
    join(&mut alice, &topic).await;
    join(&mut b1, &topic).await;
    join(&mut b2, &topic).await;
    assert_eq!(
        expect(&mut alice, "presence").await["joined"],
        json!([user(&server, "bob").await])
    );
    let out = server
        .http
        .post(server.url("/api/auth/logout"))
        .bearer_auth(&bob.token)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    for ws in [&mut b1, &mut b2] {
        expect_auth_error(ws, tether_protocol::AuthErrorCode::Revoked).await;
    }
    // Both of bob's sockets closed: one leave.
    let presence = expect(&mut alice, "presence").await;
    assert_eq!(
        presence,
        json!({"topic": topic, "joined": [], "left": [user(&server, "bob").await]})
    );
    publish(&mut alice, "a-1", &topic, "1").await;
    expect(&mut alice, "ack").await;
    expect_message(&mut alice, &topic, 1).await;
}

#[tokio::test]
async fn the_reset_route_with_restart_drops_the_subscribers_as_a_restart_would() {
    let server = dev().await;
    let (mut ws, login) = server.authed("alice", "wonderland").await;
    let (mut other, _) = server.authed("alice", "wonderland").await;
    let topic = room(&server, &login.token, &[]).await;
    let private = room(&server, &login.token, &[]).await;
    let old = join(&mut ws, &topic).await["epoch"].clone();
    join(&mut other, &private).await;
    dev_publish(&server, &topic, 2).await;
    for offset in 1..=2 {
        expect_message(&mut ws, &topic, offset).await;
    }
    let response = server
        .post_json(
            &format!("/api/admin/topics/{topic}/reset"),
            json!({"restart": true}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let reset: Value = response.json().await.unwrap();
    assert_eq!(reset["subscribers"], 1);
    // No unsubscribed frame: the connection just ends (no close frame).
    match next_message(&mut ws).await {
        Some(Err(_)) | None => {}
        other => panic!("expected the connection to drop, got {other:?}"),
    }
    // The client comes back with its old position: not recovered.
    let (mut ws, _) = server.authed("alice", "wonderland").await;
    subscribe(
        &mut ws,
        &topic,
        json!({"epoch": old, "offset": 2}),
        Value::Null,
    )
    .await;
    let subscribed = expect(&mut ws, "subscribed").await;
    assert_eq!(subscribed["epoch"], reset["epoch"]);
    assert_eq!(
        (
            subscribed["offset"].clone(),
            subscribed["recovered"].clone()
        ),
        (json!(0), json!(false))
    );
    // Sockets not subscribed to that topic are untouched.
    dev_publish(&server, &private, 1).await;
    expect_message(&mut other, &private, 1).await;
}

#[tokio::test]
async fn subscribes_and_publishes_over_the_rate_are_answered_rate_limited_for_their_topic_or_id() {
    let mut config = Config::dev();
    config.frames_per_second = 10;
    let server = start(config).await;
    let (mut ws, login) = server.authed("alice", "wonderland").await;
    let topic = room(&server, &login.token, &[]).await;
    // 30 subscribes at once: each gets exactly one answer, some of them
    // `subscribe_error rate_limited` with retry (the client tries again).
    for _ in 0..30 {
        subscribe(&mut ws, &topic, Value::Null, Value::Null).await;
    }
    let (mut subscribed, mut limited) = (0, 0);
    for _ in 0..30 {
        let frame = next_json(&mut ws).await;
        match frame["type"].as_str().unwrap() {
            "subscribed" => subscribed += 1,
            "subscribe_error" => {
                assert_eq!(frame["payload"]["topic"], topic.as_str());
                assert_eq!(frame["payload"]["code"], "rate_limited");
                assert_eq!(frame["payload"]["retry"], true);
                limited += 1;
            }
            _ => panic!("{frame}"),
        }
    }
    assert!(subscribed > 0 && limited > 0, "{subscribed} {limited}");
    // 30 publishes at once: each id is acked or nacked rate_limited.
    for i in 0..30 {
        publish(&mut ws, &format!("p-{i}"), &topic, "1").await;
    }
    let (mut acked, mut limited, mut messages) = (Vec::new(), 0, 0);
    while acked.len() + limited < 30 || messages < acked.len() {
        let frame = next_json(&mut ws).await;
        match frame["type"].as_str().unwrap() {
            "ack" => acked.push(frame["payload"]["offset"].as_u64().unwrap()),
            "message" => messages += 1,
            "nack" => {
                assert_eq!(frame["payload"]["code"], "rate_limited");
                limited += 1;
            }
            _ => panic!("{frame}"),
        }
    }
    assert!(limited > 0, "none limited");
    let expected: Vec<u64> = (1..=acked.len() as u64).collect();
    assert_eq!(acked, expected, "the acked ones were applied, gapless");
    assert_eq!(
        server.state.topics.head(&topic).await.unwrap().offset,
        acked.len() as u64
    );
}
