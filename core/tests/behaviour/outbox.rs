//! Messages with a delivery guarantee; notification replay.

use crate::common::*;
use serde_json::json;
use tether_core::{Config, ConnectionState, Event, Input, SendError};

#[test]
fn sends_at_once_when_connected_and_acks_once() {
    let mut h = Harness::with_token();
    h.online();
    let id = h.send(json!({"hello": "world"}));
    let fx = h.drain();
    assert_eq!(
        frames(&fx),
        [json!({"type": "send", "payload": {"id": id.as_str(), "body": {"hello": "world"}}})]
    );
    assert_eq!(h.conn.snapshot().pending, 1);
    let fx = h.frame(ack(id.as_str()));
    assert_eq!(events(&fx), [Event::Ack { id: id.clone() }]);
    assert_eq!(h.conn.snapshot().pending, 0);
    // A duplicate ack, an unknown ack: nothing.
    assert!(events(&h.frame(ack(id.as_str()))).is_empty());
    assert!(events(&h.frame(ack("who-knows"))).is_empty());
}

#[test]
fn ids_are_uuid_v4() {
    let mut h = Harness::with_token();
    let a = h.send(json!(1));
    let b = h.send(json!(2));
    assert_ne!(a, b);
    for id in [a, b] {
        let s = id.to_string();
        assert_eq!(s.len(), 36);
        assert_eq!(s.as_bytes()[14], b'4');
    }
}

#[test]
fn unacked_messages_are_resent_in_order_after_every_reconnect() {
    let mut h = Harness::with_token();
    let a = h.send(json!("a"));
    h.online();
    let b = h.send(json!("b"));
    let c = h.send(json!("c"));
    h.frame(ack(b.as_str()));
    for _ in 0..2 {
        let (_, _, at) = scheduled(&h.input(closed(1006)))[0];
        h.tick_at(at);
        h.input(Input::Opened);
        let fx = h.frame(auth_success(900));
        let ids: Vec<_> = frames(&fx)
            .iter()
            .filter(|f| f["type"] == "send")
            .map(|f| f["payload"]["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids, [a.to_string(), c.to_string()]);
    }
    h.frame(ack(a.as_str()));
    h.frame(ack(c.as_str()));
    assert_eq!(h.conn.snapshot().pending, 0);
}

#[test]
fn too_large_and_queue_full_are_refused_never_dropped() {
    let config = Config {
        outbox_capacity: 2,
        max_frame_bytes: 200,
        ..Config::default()
    };
    let mut h = Harness::with_token_config(config);
    let err = h.conn.send(h.now, raw(json!("x".repeat(300)))).unwrap_err();
    assert!(matches!(err, SendError::TooLarge { limit: 200, size } if size > 300));
    h.send(json!(1));
    let second = h.send(json!(2));
    assert_eq!(
        h.conn.send(h.now, raw(json!(3))),
        Err(SendError::QueueFull { capacity: 2 })
    );
    // Acked messages free their slot; capacity counts unacked, sent or not.
    h.online();
    assert_eq!(
        h.conn.send(h.now, raw(json!(3))),
        Err(SendError::QueueFull { capacity: 2 })
    );
    h.frame(ack(second.as_str()));
    assert!(h.conn.send(h.now, raw(json!(3))).is_ok());
    assert_eq!(h.conn.snapshot().pending, 2);
}

#[test]
fn notifications_are_delivered_exactly_once_across_replays() {
    let mut h = Harness::with_token();
    h.online();
    let mut fx = h.frame(notification(1));
    fx.extend(h.frame(notification(2)));
    fx.extend(h.frame(notification(2))); // duplicate
    let (_, _, at) = scheduled(&h.input(closed(1006)))[0];
    h.tick_at(at);
    let auth = frames(&h.input(Input::Opened));
    assert_eq!(auth[0]["payload"]["last_seq"], 2);
    fx.extend(h.frame(auth_success(900)));
    for seq in [1, 2, 3, 4] {
        fx.extend(h.frame(notification(seq))); // the server replays generously
    }
    let seqs: Vec<u64> = events(&fx)
        .into_iter()
        .filter_map(|e| match e {
            Event::Notification(n) => Some(n.seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(h.conn.state(), ConnectionState::Connected);
}

#[test]
fn a_new_session_after_a_final_failure_does_not_resume_but_still_deduplicates() {
    let mut h = Harness::with_token();
    h.online();
    h.frame(notification(5));
    h.frame(auth_error("revoked"));
    h.input(Input::SetToken {
        token: "t2".into(),
        expires_in: None,
    });
    h.input(Input::Connect);
    let auth = frames(&h.input(Input::Opened));
    assert_eq!(auth[0]["payload"]["last_seq"], serde_json::Value::Null);
    h.frame(auth_success(900));
    let mut fx = h.frame(notification(5));
    fx.extend(h.frame(notification(6)));
    assert_eq!(
        events(&fx)
            .iter()
            .filter(|e| matches!(e, Event::Notification(_)))
            .count(),
        1
    );
}

/// The browser driver polls one effect at a time and may call `send` in
/// between (a subscriber reacting to an event): what was queued first still
/// comes out first.
#[test]
fn effects_stay_in_order_when_sends_come_between_polls() {
    let mut h = Harness::with_token();
    let queued: Vec<_> = (0..3).map(|i| h.send(json!(i))).collect();
    h.input(Input::Connect);
    h.input(Input::Opened);
    h.conn.handle(h.now, Input::Frame(auth_success(900)));
    let first = h.conn.poll_effect().expect("an effect after auth_success");
    let late = h.send(json!("late"));
    let mut fx = vec![first];
    fx.extend(h.drain());
    let ids: Vec<_> = frames(&fx)
        .iter()
        .filter(|f| f["type"] == "send")
        .map(|f| f["payload"]["id"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<_> = queued
        .iter()
        .chain([&late])
        .map(|id| id.to_string())
        .collect();
    assert_eq!(ids, expected);
}
