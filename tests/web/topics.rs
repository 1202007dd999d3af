//! Typed topics (issue 17) through the library's public API, against the
//! real server's rooms: two users' managers in one page sharing a room, one
//! wire subscription for many handles, exactly-once delivery across dropped
//! sockets, a forbidden room that stays failed across reconnects, a reset
//! topic reported as not recovered, switching rooms by a signal, messages
//! that do not decode, and the app's own frame types.

use crate::spy::SendSpy;
use crate::support::*;
use futures::channel::mpsc::{UnboundedReceiver, unbounded};
use futures::future::{Either, select};
use futures::{FutureExt, StreamExt};
use leptos::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;
use tether::prelude::*;
use tether::{
    ConnectionError, Secret, SubscribeErrorCode, TopicEvent, TopicFailure, protocol::DecodeError,
};
use wasm_bindgen_test::*;

/// The test's own message type, as an app would write it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
enum Chat {
    Said { text: String },
    Tick { n: u64 },
}

/// `POST /api/rooms` as `token`'s user; returns the room's topic.
async fn create_room(token: &Secret, members: &[&str]) -> String {
    let response = gloo_net::http::Request::post(&format!("{SERVER}/api/rooms"))
        .header("Authorization", &format!("Bearer {}", token.expose()))
        .json(&json!({"name": "test room", "members": members}))
        .unwrap()
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), 201, "POST /api/rooms");
    let room: Value = response.json().await.unwrap();
    format!("room:{}", room["id"].as_str().expect("a room id"))
}

/// The server publishes one message `event` + `data` to `topic`.
async fn server_publish(topic: &str, event: &str, data: Value) {
    admin(
        &format!("topics/{topic}/publish"),
        json!({"event": event, "data": data}),
    )
    .await;
}

/// The server publishes `count` messages `event` with data `{"n": 1}` to
/// `{"n": count}` to `topic`.
async fn server_publish_many(topic: &str, event: &str, count: u32) {
    admin(
        &format!("topics/{topic}/publish"),
        json!({"event": event, "count": count}),
    )
    .await;
}

/// Waits at most `within` for the next item of `rx`.
async fn next<T>(rx: &mut UnboundedReceiver<T>, what: &str, within: Duration) -> T {
    let timeout = gloo_timers::future::sleep(within);
    match select(rx.next(), Box::pin(timeout)).await {
        Either::Left((Some(item), _)) => item,
        Either::Left((None, _)) => panic!("the channel closed while waiting for {what}"),
        Either::Right(_) => panic!("no {what} within {within:?}"),
    }
}

/// Every message of `topic`, decoded, in a channel.
fn messages(topic: Topic<Chat>) -> UnboundedReceiver<TopicMessage<Chat>> {
    let (tx, rx) = unbounded();
    topic.on_message(move |m| {
        let _ = tx.unbounded_send(m.clone());
    });
    rx
}

/// Every error of `topic` in a channel.
fn errors<E: serde::de::DeserializeOwned>(topic: Topic<E>) -> UnboundedReceiver<TopicError> {
    let (tx, rx) = unbounded();
    topic.on_error(move |e| {
        let _ = tx.unbounded_send(e.clone());
    });
    rx
}

fn is_state(event: &Event, topic: &str, want: fn(&TopicState) -> bool) -> bool {
    matches!(event, Event::Topic(TopicEvent::State { topic: t, state }) if t == topic && want(state))
}

/// Waits for `topic` to be subscribed on `f`'s connection (or already be).
async fn subscribed<E: serde::de::DeserializeOwned>(f: &mut Fixture, topic: Topic<E>) {
    if topic.state().get_untracked() == TopicState::Subscribed {
        return;
    }
    let name = topic.name();
    f.wait_for("subscribed", Duration::from_secs(15), |e| {
        is_state(e, &name, |s| *s == TopicState::Subscribed)
    })
    .await;
    assert_eq!(topic.state().get_untracked(), TopicState::Subscribed);
}

/// Waits until `check` holds, re-checking after every event of `f`.
async fn until(f: &mut Fixture, what: &str, check: impl Fn() -> bool) {
    if check() {
        return;
    }
    f.wait_for(what, Duration::from_secs(15), |_| check()).await;
}

fn names(users: &[tether::User]) -> Vec<String> {
    let mut names: Vec<String> = users.iter().map(|u| u.username.clone()).collect();
    names.sort();
    names
}

/// Subscribe frames the page sent for `topic`.
fn subscribes(spy: &SendSpy, topic: &str) -> usize {
    spy.frames_of("subscribe")
        .iter()
        .filter(|(_, f)| f["payload"]["topic"] == topic)
        .count()
}

#[wasm_bindgen_test]
async fn two_users_share_a_room_and_handles_share_one_subscription() {
    let spy = SendSpy::install();
    let alice = sign_up("alice").await;
    let bob = sign_up("bob").await;
    let alice_token = log_in(&alice).await.access_token;
    let bob_token = log_in(&bob).await.access_token;
    let topic = create_room(&alice_token, &[&bob.name]).await;
    // Two managers in one page: different token storage, different sockets.
    let mut a = Fixture::start(Some(&alice_token), |o| o);
    let mut b = Fixture::start(Some(&bob_token), |o| o);
    let first = a.owner.with(Owner::new);
    let second = a.owner.with(Owner::new);
    let a1 = first.with(|| a.conn.topic::<Chat>(topic.clone()));
    let a2 = second.with(|| use_topic::<Chat>(topic.clone()));
    let b1 = b.owner.with(|| b.conn.topic::<Chat>(topic.clone()));
    let mut a1_messages = messages(a1);
    let mut a2_messages = messages(a2);
    let mut b1_messages = messages(b1);
    let (acked_tx, mut acked) = unbounded();
    a1.on_published(move |id, offset| {
        let _ = acked_tx.unbounded_send((id.clone(), offset));
    });
    subscribed(&mut a, a1).await;
    subscribed(&mut b, b1).await;
    assert_eq!(a2.state().get_untracked(), TopicState::Subscribed);
    assert_eq!(
        subscribes(&spy, &topic),
        2,
        "one subscription per manager, not per handle"
    );

    let both = vec![alice.name.clone(), bob.name.clone()];
    let mut both = both;
    both.sort();
    until(&mut a, "both present for alice", || {
        names(&a1.presence().get_untracked()) == both
    })
    .await;
    until(&mut b, "both present for bob", || {
        names(&b1.presence().get_untracked()) == both
    })
    .await;

    let id = a1
        .publish("said", &json!({"text": "hi bob"}))
        .expect("accepted");
    let got = next(&mut b1_messages, "bob's message", Duration::from_secs(10)).await;
    assert_eq!(
        got.event,
        Chat::Said {
            text: "hi bob".into()
        }
    );
    assert_eq!(got.offset, 1);
    assert!(!got.replayed);
    assert_eq!(
        got.from.as_ref().map(|u| u.username.as_str()),
        Some(alice.name.as_str())
    );
    let (acked_id, offset) = next(&mut acked, "the publish's ack", Duration::from_secs(10)).await;
    assert_eq!((acked_id, offset), (id, 1));
    // Each of alice's handles hears her message once.
    for rx in [&mut a1_messages, &mut a2_messages] {
        let own = next(rx, "alice's own message", Duration::from_secs(10)).await;
        assert_eq!(own.offset, 1);
    }
    let position = a1.position().get_untracked().expect("a position");
    assert_eq!(position.offset, 1);
    assert_eq!(b1.position().get_untracked(), Some(position));

    // One handle goes: the subscription stays for the other.
    second.cleanup();
    assert!(spy.frames_of("unsubscribe").is_empty());
    b1.publish("said", &json!({"text": "still there?"}))
        .unwrap();
    let got = next(&mut a1_messages, "bob's answer", Duration::from_secs(10)).await;
    assert_eq!(
        got.event,
        Chat::Said {
            text: "still there?".into()
        }
    );
    assert_eq!(got.offset, 2);
    assert!(
        a2_messages.try_recv().is_err(),
        "a dropped handle hears nothing more"
    );
    // The last one goes: alice leaves the topic, and bob sees her go.
    first.cleanup();
    let unsubscribes = spy.frames_of("unsubscribe");
    assert_eq!(unsubscribes.len(), 1, "{unsubscribes:?}");
    assert_eq!(unsubscribes[0].1["payload"]["topic"], topic.as_str());
    until(&mut b, "alice gone for bob", || {
        names(&b1.presence().get_untracked()) == vec![bob.name.clone()]
    })
    .await;
}

#[wasm_bindgen_test]
async fn five_hundred_messages_arrive_exactly_once_in_order_across_dropped_sockets() {
    let user = sign_up("stream").await;
    let token = log_in(&user).await.access_token;
    let topic = create_room(&token, &[]).await;
    let mut f = Fixture::start(Some(&token), |o| o);
    let room = f.owner.with(|| f.conn.topic::<Chat>(topic.clone()));
    let mut rx = messages(room);
    subscribed(&mut f, room).await;

    server_publish_many(&topic, "tick", 250).await;
    // The stream is under way...
    let first = next(&mut rx, "the first message", Duration::from_secs(10)).await;
    assert_eq!(first.offset, 1);
    // ...when the server drops every socket of the user, and goes on.
    admin("drop-sockets", json!({"username": user.name})).await;
    server_publish_many(&topic, "tick", 250).await;

    let mut got = vec![(first.offset, first.event)];
    while got.len() < 500 {
        let m = next(&mut rx, "the next message", Duration::from_secs(30)).await;
        got.push((m.offset, m.event));
    }
    // Offsets 1..=500, and the data of each batch's messages n = 1..=250.
    let want: Vec<(u64, Chat)> = (1..=500)
        .map(|offset| {
            (
                offset,
                Chat::Tick {
                    n: (offset - 1) % 250 + 1,
                },
            )
        })
        .collect();
    assert_eq!(got, want, "each once, in order");
    let mut disconnects = 0;
    while let Some(Some(event)) = f.events.next().now_or_never() {
        disconnects += usize::from(matches!(event, Event::Disconnected { .. }));
    }
    assert!(disconnects >= 1, "the socket was dropped under the stream");
    // Nothing more is delivered after the 500th (no duplicates trailing).
    server_publish(&topic, "tick", json!({"n": 501})).await;
    let after = next(&mut rx, "the 501st", Duration::from_secs(10)).await;
    assert_eq!(after.offset, 501);
    assert_eq!(room.position().get_untracked().map(|p| p.offset), Some(501));
}

#[wasm_bindgen_test]
async fn a_forbidden_room_ends_failed_and_is_not_retried_after_a_reconnect() {
    let spy = SendSpy::install();
    let owner = sign_up("owner").await;
    let outsider = sign_up("outsider").await;
    let owner_token = log_in(&owner).await.access_token;
    let outsider_token = log_in(&outsider).await.access_token;
    let closed = create_room(&owner_token, &[]).await;
    let open = create_room(&owner_token, &[&outsider.name]).await;
    let mut f = Fixture::start(Some(&outsider_token), |o| o);
    let forbidden = f.owner.with(|| f.conn.topic::<Chat>(closed.clone()));
    let allowed = f.owner.with(|| f.conn.topic::<Chat>(open.clone()));
    f.wait_for("forbidden", Duration::from_secs(15), |e| {
        is_state(e, &closed, |s| matches!(s, TopicState::Failed(_)))
    })
    .await;
    let TopicState::Failed(TopicFailure::Refused { code, .. }) = forbidden.state().get_untracked()
    else {
        panic!("{:?}", forbidden.state().get_untracked());
    };
    assert_eq!(code, SubscribeErrorCode::Forbidden);
    subscribed(&mut f, allowed).await;
    assert_eq!(subscribes(&spy, &closed), 1);
    assert_eq!(subscribes(&spy, &open), 1);

    admin("drop-sockets", json!({"username": outsider.name})).await;
    f.wait_for("the reconnect", Duration::from_secs(15), |e| {
        matches!(e, Event::Connected { .. })
    })
    .await;
    // The room it may see is subscribed again; the forbidden one is not.
    f.wait_for("resubscribed", Duration::from_secs(15), |e| {
        is_state(e, &open, |s| *s == TopicState::Subscribed)
    })
    .await;
    assert_eq!(subscribes(&spy, &open), 2);
    assert_eq!(
        subscribes(&spy, &closed),
        1,
        "a final refusal is not retried"
    );
    assert!(matches!(
        forbidden.state().get_untracked(),
        TopicState::Failed(_)
    ));
    assert_eq!(f.conn.state().get_untracked(), ConnectionState::Connected);
}

#[wasm_bindgen_test]
async fn a_reset_topic_is_reported_as_not_recovered() {
    let user = sign_up("reset").await;
    let token = log_in(&user).await.access_token;
    let topic = create_room(&token, &[]).await;
    let mut f = Fixture::start(Some(&token), |o| o);
    let room = f.owner.with(|| f.conn.topic::<Chat>(topic.clone()));
    let mut rx = messages(room);
    let mut errs = errors(room);
    subscribed(&mut f, room).await;
    server_publish_many(&topic, "tick", 3).await;
    for offset in 1..=3 {
        assert_eq!(
            next(&mut rx, "a message", Duration::from_secs(10))
                .await
                .offset,
            offset
        );
    }
    let before = room.position().get_untracked().expect("a position");
    assert_eq!(before.offset, 3);

    // The dev route loses the topic's history: a new epoch.
    admin(&format!("topics/{topic}/reset"), json!({})).await;
    let error = next(&mut errs, "not recovered", Duration::from_secs(15)).await;
    let TopicError::NotRecovered { epoch } = error else {
        panic!("{error:?}")
    };
    assert_ne!(epoch, before.epoch);
    subscribed(&mut f, room).await;
    server_publish(&topic, "tick", json!({"n": 4})).await;
    let m = next(
        &mut rx,
        "the first message of the new epoch",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(m.offset, 1, "offsets start again");
    let after = room.position().get_untracked().expect("a position");
    assert_eq!((after.epoch, after.offset), (epoch, 1));
}

#[wasm_bindgen_test]
async fn a_name_signal_switches_rooms() {
    let spy = SendSpy::install();
    let user = sign_up("switch").await;
    let token = log_in(&user).await.access_token;
    let first = create_room(&token, &[]).await;
    let second = create_room(&token, &[]).await;
    let mut f = Fixture::start(Some(&token), |o| o);
    let name = RwSignal::new(first.clone());
    let room = f.owner.with(|| f.conn.topic::<Chat>(name));
    let mut rx = messages(room);
    subscribed(&mut f, room).await;
    assert_eq!(room.name(), first);

    name.set(second.clone());
    f.wait_for("the second room", Duration::from_secs(15), |e| {
        is_state(e, &second, |s| *s == TopicState::Subscribed)
    })
    .await;
    assert_eq!(room.name(), second);
    assert_eq!(room.state().get_untracked(), TopicState::Subscribed);
    let left: Vec<Value> = spy
        .frames_of("unsubscribe")
        .into_iter()
        .map(|(_, f)| f["payload"]["topic"].clone())
        .collect();
    assert_eq!(
        left,
        vec![Value::from(first.as_str())],
        "the old room is left"
    );
    // Only the new room's messages reach the handle.
    server_publish(&first, "said", json!({"text": "old"})).await;
    server_publish(&second, "said", json!({"text": "new"})).await;
    let m = next(&mut rx, "the new room's message", Duration::from_secs(10)).await;
    assert_eq!(m.event, Chat::Said { text: "new".into() });
    assert!(rx.try_recv().is_err());
}

#[wasm_bindgen_test]
async fn a_message_that_does_not_decode_is_a_topic_error_and_the_topic_stays() {
    let user = sign_up("undecodable").await;
    let token = log_in(&user).await.access_token;
    let topic = create_room(&token, &[]).await;
    let mut f = Fixture::start(Some(&token), |o| o);
    let room = f.owner.with(|| f.conn.topic::<Chat>(topic.clone()));
    let mut rx = messages(room);
    let mut errs = errors(room);
    subscribed(&mut f, room).await;
    server_publish(&topic, "party", json!({"hats": 3})).await;
    server_publish(&topic, "said", json!({"text": 42})).await;
    server_publish(&topic, "said", json!({"text": "fine"})).await;
    let error = next(&mut errs, "an unknown event", Duration::from_secs(10)).await;
    let TopicError::Undecodable {
        offset,
        event,
        data,
        reason,
    } = error
    else {
        panic!("{error:?}")
    };
    assert_eq!((offset, event.as_str()), (1, "party"));
    assert_eq!(
        data.as_str(),
        r#"{"hats":3}"#,
        "the data is kept as received"
    );
    assert!(reason.contains("party"), "{reason}");
    let error = next(&mut errs, "a wrong shape", Duration::from_secs(10)).await;
    assert!(
        matches!(error, TopicError::Undecodable { offset: 2, .. }),
        "{error:?}"
    );
    let m = next(&mut rx, "the good message", Duration::from_secs(10)).await;
    assert_eq!(
        (m.offset, m.event),
        (
            3,
            Chat::Said {
                text: "fine".into()
            }
        )
    );
    assert_eq!(room.state().get_untracked(), TopicState::Subscribed);
    assert_eq!(f.conn.state().get_untracked(), ConnectionState::Connected);
}

#[derive(Debug, PartialEq, Deserialize)]
struct Typing {
    user: String,
}

#[wasm_bindgen_test]
async fn the_apps_own_frames_arrive_typed_and_a_bad_payload_is_an_error_event() {
    let user = sign_up("frames").await;
    let token = log_in(&user).await.access_token;
    let mut f = Fixture::start(Some(&token), |o| o);
    let (tx, mut typing) = unbounded();
    let _subscription = f.conn.on_frame::<Typing>("chat.typing", move |t| {
        let _ = tx.unbounded_send(t);
    });
    f.connected().await;
    let push = |text: &str| admin("raw", json!({"username": user.name, "text": text}));
    push(r#"{"type":"chat.typing","payload":{"user":5}}"#).await;
    push(r#"{"type":"chat.other","payload":{"user":"not this one"}}"#).await;
    push(r#"{"type":"chat.typing","payload":{"user":"zed"}}"#).await;
    let event = f
        .wait_for("the decode error", Duration::from_secs(10), |e| {
            matches!(e, Event::Error(ConnectionError::Decode(_)))
        })
        .await;
    let Event::Error(ConnectionError::Decode(DecodeError::InvalidPayload { kind, .. })) = event
    else {
        panic!("{event:?}")
    };
    assert_eq!(kind, "chat.typing");
    let t = next(&mut typing, "a typing frame", Duration::from_secs(10)).await;
    assert_eq!(t, Typing { user: "zed".into() });
    assert!(
        typing.try_recv().is_err(),
        "other types are not this handler's"
    );
    assert_eq!(f.conn.state().get_untracked(), ConnectionState::Connected);
}

/// Signing out ends the core's topics; the handles still mounted want
/// theirs, so the library subscribes them again for the next session
/// (afresh: a new session starts from the live end, with `last`).
#[wasm_bindgen_test]
async fn mounted_topics_are_joined_again_when_a_new_session_starts() {
    let user = sign_up("session").await;
    let token = log_in(&user).await.access_token;
    let topic = create_room(&token, &[]).await;
    let mut f = Fixture::start(Some(&token), |o| o);
    let room = f.owner.with(|| f.conn.topic::<Chat>(topic.clone()));
    let mut rx = messages(room);
    subscribed(&mut f, room).await;
    f.conn.sign_out();
    f.wait_for("SignedOut", Duration::from_secs(5), |e| {
        matches!(e, Event::SignedOut)
    })
    .await;
    assert_eq!(
        room.state().get_untracked(),
        TopicState::Subscribing,
        "wanted, held"
    );
    server_publish(&topic, "said", json!({"text": "while away"})).await;
    f.conn.sign_in(token, None);
    subscribed(&mut f, room).await;
    server_publish(&topic, "said", json!({"text": "back"})).await;
    let m = next(
        &mut rx,
        "a message of the new session",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        (m.offset, m.event),
        (
            2,
            Chat::Said {
                text: "back".into()
            }
        )
    );
}

/// What an in-memory server's restart looks like to a subscriber (the dev
/// route's `restart`: a new epoch, nobody told, every socket dropped): the
/// client reconnects, resubscribes from its position in the old epoch, and
/// reports that earlier messages may be missing.
#[wasm_bindgen_test]
async fn a_restarted_servers_new_epoch_is_reported_as_not_recovered() {
    let user = sign_up("restart").await;
    let token = log_in(&user).await.access_token;
    let topic = create_room(&token, &[]).await;
    let mut f = Fixture::start(Some(&token), |o| o);
    let room = f.owner.with(|| f.conn.topic::<Chat>(topic.clone()));
    let mut rx = messages(room);
    let mut errs = errors(room);
    subscribed(&mut f, room).await;
    server_publish_many(&topic, "tick", 2).await;
    for offset in 1..=2 {
        assert_eq!(
            next(&mut rx, "a message", Duration::from_secs(10))
                .await
                .offset,
            offset
        );
    }
    let before = room.position().get_untracked().expect("a position");

    admin(&format!("topics/{topic}/reset"), json!({"restart": true})).await;
    f.wait_for("the dropped socket", Duration::from_secs(10), |e| {
        matches!(e, Event::Disconnected { .. })
    })
    .await;
    let error = next(&mut errs, "not recovered", Duration::from_secs(30)).await;
    let TopicError::NotRecovered { epoch } = error else {
        panic!("{error:?}")
    };
    assert_ne!(epoch, before.epoch, "a new epoch");
    subscribed(&mut f, room).await;
    server_publish(&topic, "said", json!({"text": "after the restart"})).await;
    let m = next(
        &mut rx,
        "the first message after the restart",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        (m.offset, m.event),
        (
            1,
            Chat::Said {
                text: "after the restart".into()
            }
        )
    );
    assert_eq!(
        room.position().get_untracked().map(|p| p.epoch),
        Some(epoch)
    );
}
