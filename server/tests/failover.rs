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

/// Redis is restarted empty (its data lost) while a client is connected
/// to each instance. While it is down, every publish is refused with a
/// clear error: HTTP 503 `store_unavailable` (admin notify, `POST
/// /api/notifications`, the topic publish route), `nack rate_limited` on
/// the socket (publish, send). Once it is back the instances reconnect by
/// themselves; the clients are told the topic's history was lost (`unsubscribed
/// reset` or `recovered: false`), and every notification and message
/// accepted (200/201/ack) reaches both clients, with a `seq` above what
/// they had (a contract client drops a lower one as a duplicate), while
/// nothing refused ever shows up.
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
    let publish_path = format!("/api/admin/topics/{topic}/publish");
    for i in 1..=3 {
        let (status, body) = cluster
            .post(
                &cluster.a,
                "/api/admin/notify",
                json!({"username": user, "title": format!("before {i}")}),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = cluster
            .post(
                &cluster.b,
                &publish_path,
                json!({"event": "tick", "data": {"before": i}}),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    for client in &mut clients {
        client
            .until("the first three of each", Instant::now() + WAIT, |f| {
                f.notifications.len() == 3 && f.messages.len() == 3
            })
            .await;
    }
    let old_epoch = clients[0].position.clone().expect("a position").0;

    cluster.redis.stop();
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
        on_a.until("the publish's nack", deadline, |f| {
            f.answer("nack", &publish_id).is_some() || f.answer("ack", &publish_id).is_some()
        })
        .await;
        on_b.until("the send's nack", deadline, |f| {
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
    // The instances reconnect by themselves: publishing works again within
    // the bound. Every refused attempt is remembered: none may arrive.
    let mut refused_titles = vec!["refused notify".to_owned(), "refused http".to_owned()];
    let mut accepted_titles = Vec::new();
    let deadline = Instant::now() + WAIT;
    for k in 1.. {
        let title = format!("after {k}");
        let (status, body) = cluster
            .post(
                &cluster.a,
                "/api/admin/notify",
                json!({"username": user, "title": title}),
                None,
            )
            .await;
        match status {
            200 => {
                accepted_titles.push(title);
                break;
            }
            503 => refused_titles.push(title),
            _ => panic!("notify after the restart: {status} {body}"),
        }
        assert!(Instant::now() < deadline, "A never recovered: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut accepted_data = Vec::new();
    let deadline = Instant::now() + WAIT;
    for k in 1.. {
        let data = json!({"after": k});
        let (status, body) = cluster
            .post(
                &cluster.b,
                &publish_path,
                json!({"event": "tick", "data": data}),
                None,
            )
            .await;
        match status {
            200 => {
                accepted_data.push(data);
                break;
            }
            503 => {}
            _ => panic!("publish after the restart: {status} {body}"),
        }
        assert!(Instant::now() < deadline, "B never recovered: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Both instances take both kinds now, at once.
    for (n, on) in [&cluster.a, &cluster.b].into_iter().enumerate() {
        let title = format!("steady {n}");
        let (status, body) = cluster
            .post(
                on,
                "/api/admin/notify",
                json!({"username": user, "title": title}),
                None,
            )
            .await;
        assert_eq!(status, 200, "notify on {} after recovery: {body}", on.name);
        accepted_titles.push(title);
        let data = json!({"steady": n});
        let (status, body) = cluster
            .post(
                on,
                &publish_path,
                json!({"event": "tick", "data": data}),
                None,
            )
            .await;
        assert_eq!(status, 200, "publish on {} after recovery: {body}", on.name);
        accepted_data.push(data);
    }

    for client in &mut clients {
        let (titles, datas) = (accepted_titles.clone(), accepted_data.clone());
        client
            .until(
                "every accepted notification and message after the restart",
                Instant::now() + Duration::from_secs(15),
                move |f| {
                    titles
                        .iter()
                        .all(|t| f.notifications.iter().any(|(_, n)| n == t))
                        && datas
                            .iter()
                            .all(|d| f.messages.iter().any(|m| &m.data == d))
                },
            )
            .await;
        for title in &accepted_titles {
            let seqs: Vec<u64> = client
                .notifications
                .iter()
                .filter(|(_, t)| t == title)
                .map(|(s, _)| *s)
                .collect();
            assert_eq!(seqs.len(), 1, "{title:?} once: {:?}", client.notifications);
            assert!(
                seqs[0] > 3,
                "{title:?} has seq {} although the client had seen seq 3: a contract \
                 client drops it as a duplicate (all: {:?})",
                seqs[0],
                client.notifications
            );
        }
        for data in &accepted_data {
            let copies: Vec<_> = client.messages.iter().filter(|m| &m.data == data).collect();
            assert_eq!(copies.len(), 1, "{data} once: {:?}", client.messages);
            assert_ne!(copies[0].epoch, old_epoch, "after the loss, a new epoch");
        }
        for title in &refused_titles {
            assert!(
                !client.notifications.iter().any(|(_, t)| t == title),
                "refused {title:?} was delivered: {:?}",
                client.notifications
            );
        }
        assert!(
            !client
                .messages
                .iter()
                .any(|m| m.data.get("refused").is_some()),
            "a refused publish was delivered: {:?}",
            client.messages
        );
        let told = client.unsubscribed.iter().any(|u| u["code"] == "reset")
            || client.subscribed.iter().any(|s| s["recovered"] == false);
        assert!(
            told,
            "the client was told the topic's history was lost: subscribed {:?}, \
             unsubscribed {:?}",
            client.subscribed, client.unsubscribed
        );
    }

    // A socket publish is acked again, and the ack is true: it arrives.
    let id = uuid::Uuid::new_v4().to_string();
    let [on_a, on_b] = &mut clients;
    on_a.send(&json!({"type": "publish", "payload": {
        "id": id, "topic": topic, "event": "tick", "data": {"socket": "after"}}}))
        .await
        .unwrap();
    on_a.until("the publish's ack", Instant::now() + WAIT, |f| {
        f.answer("ack", &id).is_some() || f.answer("nack", &id).is_some()
    })
    .await;
    let ack = on_a.answer("ack", &id).cloned().unwrap_or_else(|| {
        panic!("nack after recovery: {:?}", on_a.answer("nack", &id));
    });
    for client in [on_a, on_b] {
        client
            .until("the acked socket publish", Instant::now() + WAIT, |f| {
                f.messages
                    .iter()
                    .any(|m| m.data == json!({"socket": "after"}))
            })
            .await;
        let message = client
            .messages
            .iter()
            .find(|m| m.data == json!({"socket": "after"}))
            .unwrap();
        assert_eq!(json!(message.offset), ack["offset"], "the ack's offset");
    }
}
