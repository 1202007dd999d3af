//! Two `tether-server` instances on one Redis behind a round-robin TCP
//! proxy (issue 19 "Tests"): real processes, a real `redis-server` on a
//! free loopback port, a contract client through the proxy. An instance is
//! killed with SIGKILL (no shutdown, no close frames), or Redis restarted
//! empty, while clients are connected; the tests check what the clients
//! got on the wire: every message exactly once and in order, ids applied
//! at most once, sign-outs and room changes made on the other instance,
//! and clear errors (never a false ack) while Redis is away.
//!
//! Every process is stopped by PID when its guard drops, also when a test
//! fails. Logs of the instances: `target/tmp/failover-logs/`.

#[allow(dead_code)]
#[path = "failover/client.rs"]
mod client;
#[allow(dead_code)]
#[path = "failover/cluster.rs"]
mod cluster;
#[allow(dead_code)]
#[path = "support/proxy.rs"]
mod proxy;
#[path = "support/redis.rs"]
mod redis;

use client::{Follower, assert_alive, authed, expect, expect_close, send};
use cluster::{Cluster, WAIT, poll};
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Notifications and topic messages of the streaming test, each.
const STREAM: u64 = 500;

/// A client streams 500 notifications and 500 topic messages, published
/// alternately on A and B; A (the instance its socket is on) is killed
/// with SIGKILL midway while publishing goes on through B. The client
/// reconnects through the proxy (to B, the only one left) with `last_seq`
/// and `since`, and ends with every notification and every message exactly
/// once, in order, with the content published at that position: the two
/// instances hand out one gapless sequence, and B replays from Redis what
/// the client missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_streams_through_an_instance_kill_with_every_message_once_in_order() {
    let mut cluster = Cluster::start("stream").await;
    let user = cluster.new_user(&cluster.b).await;
    let token = cluster.login(&cluster.b, &user).await;
    let (_, topic) = cluster.room(&cluster.a, &token, &[]).await;

    let mut follower = Follower::new(cluster.ws_url(), token.clone(), Some(topic.clone()));
    follower.connect(Instant::now() + WAIT).await;
    // The proxy sent the first (and so far only) connection to A.
    assert_eq!(cluster.proxy.history(), [Some(0)]);
    cluster.wait_socket_on(&cluster.a, &user).await;
    let progress = follower.progress.clone();
    let reader = tokio::spawn(async move {
        follower
            .until(
                "every notification and message",
                Instant::now() + Duration::from_secs(40),
                |f| f.notifications.len() as u64 >= STREAM && f.messages.len() as u64 >= STREAM,
            )
            .await;
        follower
    });

    let mut killed_at = None;
    for i in 1..=STREAM {
        if i == STREAM / 2 + 1 {
            // Midway: once the client is visibly streaming, kill A.
            poll("the client to be streaming", || async {
                progress.notifications.load(Ordering::Relaxed) >= 100
                    && progress.messages.load(Ordering::Relaxed) >= 100
            })
            .await;
            cluster.a.kill();
            killed_at = Some((
                progress.notifications.load(Ordering::Relaxed),
                progress.messages.load(Ordering::Relaxed),
            ));
        }
        let on = if cluster.a.is_running() && i % 2 == 1 {
            &cluster.a
        } else {
            &cluster.b
        };
        let (status, body) = cluster
            .post(
                on,
                "/api/admin/notify",
                json!({"username": user, "title": format!("n{i}"), "body": "streamed"}),
                None,
            )
            .await;
        assert_eq!(status, 200, "notify #{i} on {}: {body}", on.name);
        let (status, body) = cluster
            .post(
                on,
                &format!("/api/admin/topics/{topic}/publish"),
                json!({"event": "tick", "data": {"i": i}}),
                None,
            )
            .await;
        assert_eq!(status, 200, "publish #{i} on {}: {body}", on.name);
        assert_eq!(
            body["offset"], i,
            "the offset of publish #{i} on {}",
            on.name
        );
    }

    let follower = tokio::time::timeout(Duration::from_secs(45), reader)
        .await
        .expect("the reader finishes")
        .expect("the reader does not panic");
    assert_eq!(follower.ended, None, "the session never ended");
    let (notes_then, messages_then) = killed_at.expect("A was killed");
    assert!(
        (notes_then as u64) < STREAM && (messages_then as u64) < STREAM,
        "A was killed midway ({notes_then} notifications, {messages_then} messages received then)"
    );
    let expected_notes: Vec<(u64, String)> = (1..=STREAM).map(|i| (i, format!("n{i}"))).collect();
    assert_eq!(
        follower.notifications, expected_notes,
        "every notification exactly once, in order"
    );
    let offsets: Vec<u64> = follower.messages.iter().map(|m| m.offset).collect();
    assert_eq!(
        offsets,
        (1..=STREAM).collect::<Vec<_>>(),
        "every topic message exactly once, in order"
    );
    for message in &follower.messages {
        assert_eq!(message.data, json!({"i": message.offset}), "{message:?}");
    }
    let epochs: std::collections::BTreeSet<&str> =
        follower.messages.iter().map(|m| m.epoch.as_str()).collect();
    assert_eq!(epochs.len(), 1, "one epoch throughout: {epochs:?}");
    assert!(
        follower.connections >= 2,
        "the client reconnected after the kill"
    );
    // Every resubscribe after the first was honoured from `since`.
    for subscribed in &follower.subscribed[1..] {
        assert_eq!(subscribed["recovered"], true, "{subscribed}");
    }
    // Every connection after the kill went to B.
    let history = cluster.proxy.history();
    assert_eq!(history[0], Some(0));
    assert!(
        history[1..].iter().all(|h| *h == Some(1)),
        "reconnects go to B: {history:?}"
    );
    cluster.wait_socket_on(&cluster.b, &user).await;
}

/// A `send` applied through A (acked), then A killed: the client resends
/// the same id through the proxy, to B, as a client whose ack was lost
/// would. B acks it again but does not apply it: B's applied list has it
/// once. A new id through B is applied (the list is not merely stuck).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_id_resent_to_b_after_a_dies_is_applied_once() {
    let mut cluster = Cluster::start("send-once").await;
    let user = cluster.new_user(&cluster.a).await;
    let token = cluster.login(&cluster.a, &user).await;
    let (mut ws, _) = authed(&cluster.ws_url(), &token, None).await;
    assert!(cluster.sockets_on(&cluster.a).await.contains(&user));

    let id = uuid::Uuid::new_v4().to_string();
    let frame = json!({"type": "send", "payload": {"id": id, "body": {"text": "once"}}});
    send(&mut ws, &frame).await.unwrap();
    assert_eq!(expect(&mut ws, "ack").await["id"], id.as_str());

    cluster.a.kill();
    // The socket on A is gone; the client reconnects through the proxy.
    expect_end(&mut ws).await;
    let (mut ws, _) = authed(&cluster.ws_url(), &token, None).await;
    assert_eq!(cluster.proxy.history().last(), Some(&Some(1)), "to B");
    send(&mut ws, &frame).await.unwrap();
    assert_eq!(
        expect(&mut ws, "ack").await["id"],
        id.as_str(),
        "a duplicate is acked again"
    );
    let fresh = uuid::Uuid::new_v4().to_string();
    send(
        &mut ws,
        &json!({"type": "send", "payload": {"id": fresh, "body": {"text": "fresh"}}}),
    )
    .await
    .unwrap();
    assert_eq!(expect(&mut ws, "ack").await["id"], fresh.as_str());

    let (status, received) = cluster
        .get(&cluster.b, &format!("/api/admin/received?user={user}"))
        .await;
    assert_eq!(status, 200, "{received}");
    let ids: Vec<&str> = received["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|item| item["id"].as_str())
        .collect();
    assert_eq!(ids, [id.as_str(), fresh.as_str()], "{received}");
    assert_eq!(received["count"], 2, "{received}");
    assert_eq!(
        received["items"][0]["body"],
        json!({"text": "once"}),
        "{received}"
    );
}

/// The end of a socket whose instance was killed: no frame, no close
/// code (the proxy closes the client's side when the backend resets).
async fn expect_end(ws: &mut client::Ws) {
    match client::read(ws, Instant::now() + WAIT).await {
        Some(client::Read::Closed(None)) => {}
        other => panic!("expected the socket to end without a close frame, got {other:?}"),
    }
}

/// A user's socket on A; the user signs out with a request to B: A closes
/// that socket at once with `auth_error revoked` and 4001, leaves another
/// user's socket on A alone, and refuses the old token from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_out_sent_to_b_closes_the_socket_on_a_with_4001() {
    let cluster = Cluster::start("sign-out").await;
    let user = cluster.new_user(&cluster.b).await;
    let other = cluster.new_user(&cluster.b).await;
    let token = cluster.login(&cluster.b, &user).await;
    let other_token = cluster.login(&cluster.b, &other).await;
    // Round robin: the first socket through the proxy goes to A, the
    // second to B, the third to A.
    let (mut ws, _) = authed(&cluster.ws_url(), &token, None).await;
    let (mut on_b, _) = authed(&cluster.ws_url(), &token, None).await;
    let (mut bystander, _) = authed(&cluster.ws_url(), &other_token, None).await;
    assert_eq!(cluster.proxy.history(), [Some(0), Some(1), Some(0)]);
    cluster.wait_socket_on(&cluster.a, &user).await;
    cluster.wait_socket_on(&cluster.a, &other).await;

    let (status, body) = cluster
        .post(&cluster.b, "/api/auth/logout", json!({}), Some(&token))
        .await;
    assert_eq!(status, 204, "{body}");
    for socket in [&mut ws, &mut on_b] {
        let error = expect(socket, "auth_error").await;
        assert_eq!(error["code"], "revoked", "{error}");
        expect_close(socket, 4001).await;
    }
    assert_alive(&mut bystander, 1).await;

    // The token is refused on A too (its session is gone from Redis).
    let mut again = client::connect(&format!("ws://{}/api/ws/notification", cluster.a.addr))
        .await
        .unwrap();
    send(&mut again, &client::auth_frame(&token, None))
        .await
        .unwrap();
    let error = expect(&mut again, "auth_error").await;
    assert_eq!(error["code"], "revoked", "{error}");
    expect_close(&mut again, 4001).await;
}

/// A member subscribed to a room's topic on A is removed from the room by
/// its owner with a request to B: A sends that member `unsubscribed
/// removed` at once and refuses their next subscribe (`forbidden`), while
/// another member (on B) keeps getting the room's messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_through_b_is_unsubscribed_on_a() {
    let cluster = Cluster::start("removed").await;
    let owner = cluster.new_user(&cluster.a).await;
    let member = cluster.new_user(&cluster.a).await;
    let stays = cluster.new_user(&cluster.b).await;
    let owner_token = cluster.login(&cluster.a, &owner).await;
    let member_token = cluster.login(&cluster.b, &member).await;
    let stays_token = cluster.login(&cluster.a, &stays).await;
    let (room, topic) = cluster
        .room(&cluster.a, &owner_token, &[&member, &stays])
        .await;

    let (mut removed, _) = authed(&cluster.ws_url(), &member_token, None).await;
    let (mut remaining, _) = authed(&cluster.ws_url(), &stays_token, None).await;
    assert_eq!(cluster.proxy.history(), [Some(0), Some(1)]);
    cluster.wait_socket_on(&cluster.a, &member).await;
    for ws in [&mut removed, &mut remaining] {
        send(ws, &client::subscribe_frame(&topic, None))
            .await
            .unwrap();
        let subscribed = expect(ws, "subscribed").await;
        assert_eq!(subscribed["topic"], topic.as_str());
    }

    let (status, body) = cluster
        .delete(
            &cluster.b,
            &format!("/api/rooms/{room}/members/{member}"),
            &owner_token,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    // Presence may report the member leaving on the other socket first.
    let unsubscribed = expect_skipping(&mut removed, "unsubscribed", &["presence"]).await;
    assert_eq!(unsubscribed["topic"], topic.as_str());
    assert_eq!(unsubscribed["code"], "removed", "{unsubscribed}");

    send(&mut removed, &client::subscribe_frame(&topic, None))
        .await
        .unwrap();
    let refused = expect(&mut removed, "subscribe_error").await;
    assert_eq!(refused["code"], "forbidden", "{refused}");

    let (status, body) = cluster
        .post(
            &cluster.b,
            &format!("/api/admin/topics/{topic}/publish"),
            json!({"event": "after", "data": {"n": 1}}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let message = expect_skipping(&mut remaining, "message", &["presence"]).await;
    assert_eq!(message["event"], "after", "{message}");
    assert_alive(&mut removed, 7).await;
}

/// The next frame of type `kind`, skipping frames of the `skip` types.
async fn expect_skipping(ws: &mut client::Ws, kind: &str, skip: &[&str]) -> Value {
    loop {
        let frame = client::next_frame(ws).await;
        let t = frame["type"].as_str().unwrap_or_default();
        if t == kind {
            return frame["payload"].clone();
        }
        assert!(skip.contains(&t), "expected {kind}, got {frame}");
    }
}

/// The status and JSON body of a call that must be refused because the
/// store is away: 503 `{"error":"store_unavailable","message":...}`.
fn assert_store_unavailable(what: &str, (status, body): (u16, Value)) {
    assert_eq!(status, 503, "{what} while Redis is down: {body}");
    assert_eq!(body["error"], "store_unavailable", "{what}: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: a message says why: {body}"
    );
}

/// Redis is restarted empty (every record lost: accounts, sessions, rooms,
/// histories) while a client is connected to each instance.
///
/// While it is down, every publish is refused with a clear error: HTTP 503
/// `store_unavailable` (admin notify, `POST /api/notifications`, the topic
/// publish route), `nack rate_limited` on the socket (publish and send).
/// Once it is back, the instances reconnect by themselves (nothing is
/// restarted): the connected clients are told their topic's history was
/// lost (`unsubscribed reset` with a new epoch, or `recovered: false`),
/// nothing refused ever reaches them (they have exactly what was accepted
/// before), and a new user works end to end on both instances: every
/// notification and message accepted (200, 201, ack) arrives once, in
/// order, the ack's offset true.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_refuses_clearly_then_recovers_without_false_deliveries() {
    let mut cluster = Cluster::start("redis-restart").await;
    let user = cluster.new_user(&cluster.b).await;
    let token = cluster.login(&cluster.b, &user).await;
    let (_, topic) = cluster.room(&cluster.a, &token, &[]).await;
    let mut clients = [
        Follower::new(cluster.ws_url(), token.clone(), Some(topic.clone())),
        Follower::new(cluster.ws_url(), token.clone(), Some(topic.clone())),
    ];
    for client in &mut clients {
        client.connect(Instant::now() + WAIT).await;
    }
    assert_eq!(
        cluster.proxy.history(),
        [Some(0), Some(1)],
        "one on A, one on B"
    );
    publish_both(&cluster, &user, &topic, "before").await;
    for client in &mut clients {
        client
            .until("the first three of each", Instant::now() + WAIT, |f| {
                f.notifications.len() == 3 && f.messages.len() == 3
            })
            .await;
    }
    let old_epoch = clients[0].position.clone().expect("a position").0;

    cluster.redis.stop();
    let publish_path = format!("/api/admin/topics/{topic}/publish");
    assert_store_unavailable(
        "admin notify on A",
        cluster
            .post(
                &cluster.a,
                "/api/admin/notify",
                json!({"username": user, "title": "refused notify"}),
                None,
            )
            .await,
    );
    assert_store_unavailable(
        "POST /api/notifications on B",
        cluster
            .post(
                &cluster.b,
                "/api/notifications",
                json!({"title": "refused http", "body": "x"}),
                Some(&token),
            )
            .await,
    );
    assert_store_unavailable(
        "topic publish on A",
        cluster
            .post(
                &cluster.a,
                &publish_path,
                json!({"event": "tick", "data": {"refused": "admin"}}),
                None,
            )
            .await,
    );
    let publish_id = uuid::Uuid::new_v4().to_string();
    let send_id = uuid::Uuid::new_v4().to_string();
    {
        let [on_a, on_b] = &mut clients;
        on_a.send(&json!({"type": "publish", "payload": {
            "id": publish_id, "topic": topic, "event": "tick", "data": {"refused": "socket"}}}))
            .await
            .unwrap();
        on_b.send(
            &json!({"type": "send", "payload": {"id": send_id, "body": {"refused": "send"}}}),
        )
        .await
        .unwrap();
        let deadline = Instant::now() + WAIT;
        on_a.until("the publish's answer", deadline, |f| {
            f.answer("nack", &publish_id).is_some() || f.answer("ack", &publish_id).is_some()
        })
        .await;
        on_b.until("the send's answer", deadline, |f| {
            f.answer("nack", &send_id).is_some() || f.answer("ack", &send_id).is_some()
        })
        .await;
        for (client, id) in [(on_a, &publish_id), (on_b, &send_id)] {
            assert!(
                client.answer("ack", id).is_none(),
                "no ack while Redis is down"
            );
            let nack = client.answer("nack", id).expect("a nack");
            assert_eq!(nack["code"], "rate_limited", "{nack}");
            assert!(
                nack["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{nack}"
            );
        }
    }

    cluster.redis.restart_empty();
    // The connected clients are told the topic's history is gone, and
    // their resubscribe (from the new epoch) is answered, not left
    // hanging: `subscribed` if the room survived (an instance may write
    // back what it knew), else a final `subscribe_error not_found`.
    for client in &mut clients {
        client
            .until(
                "the news that the topic was lost",
                Instant::now() + WAIT,
                |f| {
                    f.unsubscribed
                        .iter()
                        .any(|u| u["code"] == "reset" && u["epoch"] != old_epoch.as_str())
                        || f.subscribed.iter().any(|s| s["recovered"] == false)
                },
            )
            .await;
        client
            .until(
                "the answer to the resubscribe",
                Instant::now() + WAIT,
                |f| {
                    f.subscribed.len() > 1
                        || f.others.iter().any(|o| o["type"] == "subscribe_error")
                },
            )
            .await;
        match client.subscribed.get(1) {
            Some(again) => assert_ne!(again["epoch"], old_epoch.as_str(), "{again}"),
            None => {
                let refused = client
                    .others
                    .iter()
                    .find(|o| o["type"] == "subscribe_error")
                    .map(|o| &o["payload"])
                    .expect("a subscribe_error");
                assert_eq!(refused["code"], "not_found", "{refused}");
                assert_eq!(refused["retry"], false, "{refused}");
            }
        }
    }
    // The instances reconnect by themselves: a new user can be made on A
    // within the bound (503 until then, nothing else).
    let deadline = Instant::now() + WAIT;
    let fresh = loop {
        let name = format!("u-{}", cluster::random_hex());
        let (status, body) = cluster
            .post(
                &cluster.a,
                "/api/admin/users",
                json!({"username": name, "password": "pw"}),
                None,
            )
            .await;
        match status {
            201 => break name,
            503 => assert!(Instant::now() < deadline, "A never recovered: {body}"),
            _ => panic!("create user after the restart: {status} {body}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // Publishing to the user and the topic of before: refused as unknown
    // (404: Redis lost them) or accepted, and then it must reach both
    // clients.
    let (status, body) = cluster
        .post(
            &cluster.a,
            "/api/admin/notify",
            json!({"username": user, "title": "after loss"}),
            None,
        )
        .await;
    assert!(
        matches!(status, 200 | 404),
        "notify after the loss: {status} {body}"
    );
    let note_taken = status == 200;
    let (status, body) = cluster
        .post(
            &cluster.b,
            &publish_path,
            json!({"event": "tick", "data": {"after": "loss"}}),
            None,
        )
        .await;
    assert!(
        matches!(status, 200 | 404),
        "publish after the loss: {status} {body}"
    );
    let message_taken = status == 200;
    for client in &mut clients {
        let resubscribed = client.subscribed.len() > 1;
        client
            .until(
                "what was accepted after the loss",
                Instant::now() + WAIT,
                |f| {
                    (!note_taken || f.notifications.len() == 4)
                        && (!message_taken || !resubscribed || f.messages.len() == 4)
                },
            )
            .await;
        // Nothing refused reached them: exactly what was accepted.
        let mut titles: Vec<String> = (1..=3).map(|i| format!("before {i}")).collect();
        if note_taken {
            titles.push("after loss".into());
        }
        let got: Vec<&str> = client
            .notifications
            .iter()
            .map(|(_, t)| t.as_str())
            .collect();
        assert_eq!(got, titles, "no refused notification, every accepted one");
        // (Their `seq`: see the next test.)
        let mut data = vec![
            json!({"before": 1}),
            json!({"before": 2}),
            json!({"before": 3}),
        ];
        if message_taken && resubscribed {
            data.push(json!({"after": "loss"}));
        }
        let got: Vec<Value> = client.messages.iter().map(|m| m.data.clone()).collect();
        assert_eq!(got, data, "no refused message, every accepted one");
        assert!(client.messages[..3].iter().all(|m| m.epoch == old_epoch));
        if let Some(after) = client.messages.get(3) {
            assert_ne!(after.epoch, old_epoch, "a new epoch after the loss");
            assert_eq!(after.offset, 1, "offsets start again in the new epoch");
        }
    }

    // And a new user works end to end on both instances.
    let fresh_token = cluster.login(&cluster.b, &fresh).await;
    let (_, fresh_topic) = cluster.room(&cluster.a, &fresh_token, &[]).await;
    let mut follower = Follower::new(cluster.ws_url(), fresh_token, Some(fresh_topic.clone()));
    follower.connect(Instant::now() + WAIT).await;
    publish_both(&cluster, &fresh, &fresh_topic, "after").await;
    let id = uuid::Uuid::new_v4().to_string();
    follower
        .send(&json!({"type": "publish", "payload": {
            "id": id, "topic": fresh_topic, "event": "tick", "data": {"socket": "after"}}}))
        .await
        .unwrap();
    follower
        .until(
            "everything published after the restart",
            Instant::now() + WAIT,
            |f| {
                f.notifications.len() == 3
                    && f.messages.len() == 4
                    && f.answer("ack", &id).is_some()
            },
        )
        .await;
    assert_eq!(follower.ended, None);
    // A feed made after the loss starts above every seq issued before it
    // (the store's feed floor), then counts by one.
    let first = follower.notifications[0].0;
    assert!(first > 1_000_000, "seq {first} is above the floor");
    let titles: Vec<(u64, String)> = (0..3)
        .map(|i| (first + i, format!("after {}", i + 1)))
        .collect();
    assert_eq!(follower.notifications, titles);
    let offsets: Vec<u64> = follower.messages.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, [1, 2, 3, 4]);
    assert_eq!(follower.messages[3].data, json!({"socket": "after"}));
    assert_eq!(
        follower.answer("ack", &id).unwrap()["offset"],
        4,
        "the ack's offset"
    );
}

/// Redis loses its data (restarted empty) under a connected client that
/// has seen seq 1 to 3, of an account that outlives the loss: the demo
/// user `alice`, whom the instances create again (same id) when Redis
/// lost her. Notifications accepted after that must have a seq above 3: a
/// contract client drops a seq at or below its `last_seq` as a duplicate
/// (core's machine does), so a feed that starts again from 1 loses the
/// next three notifications for that user without a word, and a reconnect
/// with `last_seq = 3` would not replay them either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_after_redis_lost_its_data_keep_a_seq_above_what_clients_have() {
    let mut cluster = Cluster::start("seq-after-loss").await;
    let user = "alice";
    let token = cluster.login_with(&cluster.b, user, "wonderland").await;
    let mut client = Follower::new(cluster.ws_url(), token, None);
    client.connect(Instant::now() + WAIT).await;
    for i in 1..=3 {
        let (status, body) = cluster
            .post(
                &cluster.b,
                "/api/admin/notify",
                json!({"username": user, "title": format!("before {i}")}),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    client
        .until("three notifications", Instant::now() + WAIT, |f| {
            f.notifications.len() == 3
        })
        .await;
    assert_eq!(client.last_seq, Some(3));

    cluster.redis.restart_empty();
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = cluster
            .post(
                &cluster.a,
                "/api/admin/notify",
                json!({"username": user, "title": "after"}),
                None,
            )
            .await;
        match status {
            200 => break,
            503 => assert!(Instant::now() < deadline, "A never recovered: {body}"),
            _ => panic!("notify after the loss: {status} {body}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client
        .until(
            "the notification after the loss",
            Instant::now() + WAIT,
            |f| f.notifications.len() == 4,
        )
        .await;
    let (seq, title) = &client.notifications[3];
    assert_eq!(title, "after");
    assert!(
        *seq > 3,
        "seq {seq} after the loss, although the client has seen 3: a contract client \
         drops it as a duplicate ({:?})",
        client.notifications
    );
}

/// Three notifications to `user` and three messages to `topic`, titled
/// and numbered `<label> 1..3`, alternately through A and B; each must
/// be accepted.
async fn publish_both(cluster: &Cluster, user: &str, topic: &str, label: &str) {
    for i in 1..=3u64 {
        let (on, other) = if i % 2 == 1 {
            (&cluster.a, &cluster.b)
        } else {
            (&cluster.b, &cluster.a)
        };
        let (status, body) = cluster
            .post(
                on,
                "/api/admin/notify",
                json!({"username": user, "title": format!("{label} {i}")}),
                None,
            )
            .await;
        assert_eq!(status, 200, "notify on {}: {body}", on.name);
        let (status, body) = cluster
            .post(
                other,
                &format!("/api/admin/topics/{topic}/publish"),
                json!({"event": "tick", "data": {label: i}}),
                None,
            )
            .await;
        assert_eq!(status, 200, "publish on {}: {body}", other.name);
    }
}
