//! Refused messages (`nack`), the server's `max_frame`, the outbox's
//! give-up age and bounds, close 1013 (contract sections 7 and 10).

use crate::common::*;
use serde_json::json;
use std::time::Duration;
use tether_core::{
    Backoff, Config, ConnectionState, Effect, Event, Input, Keepalive, MessageId, NackCode,
    SendError,
};

fn nack(id: &str, code: &str) -> String {
    json!({"type": "nack", "payload": {"id": id, "code": code, "message": "refused"}}).to_string()
}

fn auth_success_max_frame(max_frame: u64) -> String {
    let mut frame: serde_json::Value = serde_json::from_str(&auth_success(900)).unwrap();
    frame["payload"]["max_frame"] = json!(max_frame);
    frame.to_string()
}

fn sent_ids(effects: &[Effect]) -> Vec<String> {
    frames(effects)
        .iter()
        .filter(|f| f["type"] == "send")
        .map(|f| f["payload"]["id"].as_str().unwrap().to_owned())
        .collect()
}

fn failed(effects: &[Effect]) -> Vec<(MessageId, SendError)> {
    events(effects)
        .into_iter()
        .filter_map(|e| match e {
            Event::SendFailed { id, error } => Some((id, error)),
            _ => None,
        })
        .collect()
}

/// Drops the socket and lets the reconnect authenticate; the effects of the
/// new session.
fn reconnect(h: &mut Harness) -> Vec<Effect> {
    let (_, _, at) = scheduled(&h.input(closed(1006)))[0];
    h.tick_at(at);
    h.input(Input::Opened);
    h.frame(auth_success(900))
}

#[test]
fn a_final_nack_fails_the_message_for_good_and_says_why() {
    for (wire, code) in [
        ("malformed_body", NackCode::MalformedBody),
        ("forbidden", NackCode::Forbidden),
        ("not_subscribed", NackCode::NotSubscribed),
        ("something_new", NackCode::Other("something_new".into())),
    ] {
        let mut h = Harness::with_token();
        h.online();
        let id = h.send(json!({"n": 1e300}));
        let kept = h.send(json!("kept"));
        h.drain();
        let fx = h.frame(nack(id.as_str(), wire));
        let expected = SendError::Nacked {
            code: code.clone(),
            message: "refused".into(),
        };
        assert_eq!(failed(&fx), [(id.clone(), expected)], "{wire}");
        assert_eq!(h.conn.snapshot().pending, 1, "{wire}");
        // Never resent: after a reconnect only the other message goes again.
        assert_eq!(sent_ids(&reconnect(&mut h)), [kept.to_string()], "{wire}");
        // A nack for an id that is no longer pending changes nothing.
        assert!(events(&h.frame(nack(id.as_str(), wire))).is_empty());
        assert_eq!(h.conn.state(), ConnectionState::Connected);
    }
}

#[test]
fn a_rate_limited_nack_resends_after_a_backoff() {
    let backoff = Backoff {
        initial: Duration::from_secs(2),
        ..Backoff::default()
    };
    let mut h = Harness::with_token_config(Config {
        backoff,
        ..Config::default()
    });
    h.online();
    let id = h.send(json!("again"));
    h.drain();
    let start = h.now;
    let fx = h.frame(nack(id.as_str(), "rate_limited"));
    assert!(failed(&fx).is_empty(), "not a failure: {fx:?}");
    assert!(sent_ids(&fx).is_empty(), "not at once");
    assert_eq!(h.conn.snapshot().pending, 1);
    let due = h.conn.deadline().unwrap();
    assert!(due <= start + 2_000, "within the first backoff cap: {due}");
    let fx = h.run_until(start + 2_000);
    assert_eq!(sent_ids(&fx), [id.to_string()]);
    // Rate limited again: held again, with a larger cap; then acked.
    h.frame(nack(id.as_str(), "rate_limited"));
    let fx = h.run_until(h.now + 4_000);
    assert_eq!(sent_ids(&fx), [id.to_string()]);
    assert_eq!(events(&h.frame(ack(id.as_str()))), [Event::Ack { id }]);
    assert_eq!(h.conn.snapshot().pending, 0);
}

#[test]
fn a_held_message_waits_for_its_time_also_across_a_reconnect() {
    let backoff = Backoff {
        initial: Duration::from_secs(20),
        ..Backoff::default()
    };
    // No pings in the way: the only deadline is the release.
    let keepalive = Keepalive {
        interval: Duration::from_secs(3600),
        timeout: Duration::from_secs(3600),
        probe_timeout: Duration::from_secs(3600),
    };
    let mut h = Harness::with_token_config(Config {
        backoff,
        keepalive,
        ..Config::default()
    });
    h.online();
    let held = h.send(json!("held"));
    let other = h.send(json!("other"));
    h.drain();
    // Rate limited until well after the reconnect below (the jitter may
    // pick a short delay; retry until it does not).
    loop {
        h.frame(nack(held.as_str(), "rate_limited"));
        if h.conn.deadline().unwrap() > h.now + 5_000 {
            break;
        }
        h.run_until(h.conn.deadline().unwrap());
    }
    let release = h.conn.deadline().unwrap();
    let fx = reconnect(&mut h);
    assert_eq!(sent_ids(&fx), [other.to_string()]);
    assert!(h.now < release);
    let fx = h.run_until(release + 20_000);
    assert!(sent_ids(&fx).contains(&held.to_string()), "{fx:?}");
}

#[test]
fn max_frame_from_auth_success_refuses_larger_messages_at_once() {
    let mut h = Harness::with_token();
    let queued_small = h.send(json!("s"));
    let queued_big = h.send(json!("x".repeat(400)));
    h.input(Input::Connect);
    h.input(Input::Opened);
    let fx = h.frame(auth_success_max_frame(300));
    // The queued message the server would not take fails at once, unsent.
    let failures = failed(&fx);
    assert_eq!(failures.len(), 1, "{fx:?}");
    assert_eq!(failures[0].0, queued_big);
    assert!(matches!(failures[0].1, SendError::TooLarge { limit: 300, size } if size > 400));
    assert_eq!(sent_ids(&fx), [queued_small.to_string()]);
    // A new one over the limit is refused by `send`, nothing queued.
    let err = h.conn.send(h.now, raw(json!("y".repeat(300)))).unwrap_err();
    assert!(
        matches!(err, SendError::TooLarge { limit: 300, .. }),
        "{err}"
    );
    assert_eq!(h.conn.snapshot().pending, 1);
    assert!(h.conn.send(h.now, raw(json!("fits"))).is_ok());
}

#[test]
fn a_larger_max_frame_allows_larger_messages_and_frames() {
    let mut h = Harness::with_token();
    h.input(Input::Connect);
    h.input(Input::Opened);
    h.frame(auth_success_max_frame(256 * 1024));
    let big = "z".repeat(100 * 1024);
    assert!(h.conn.send(h.now, raw(json!(big))).is_ok());
    // Server frames are taken up to twice the limit in force.
    let mut note: serde_json::Value = serde_json::from_str(&notification(1)).unwrap();
    note["payload"]["body"] = json!("n".repeat(400 * 1024));
    let fx = h.frame(note.to_string());
    assert!(
        events(&fx)
            .iter()
            .any(|e| matches!(e, Event::Notification(n) if n.seq == 1)),
        "{:?}",
        errors(&fx)
    );
    // A session that announces nothing is back to the configured limit.
    reconnect(&mut h);
    let err = h.conn.send(h.now, raw(json!(big))).unwrap_err();
    assert!(matches!(err, SendError::TooLarge { limit: 65_536, .. }));
}

#[test]
fn the_outbox_gives_up_after_its_max_age_and_never_resends_then() {
    let mut h = Harness::with_token_config(Config {
        outbox_max_age: Duration::from_secs(60),
        ..Config::default()
    });
    h.online();
    let t0 = h.now;
    let old = h.send(json!("old"));
    h.wait(30_000);
    let young = h.send(json!("young"));
    // Link down for a while: nothing is acked.
    h.input(Input::Offline);
    assert!(h.conn.deadline().is_some_and(|d| d <= t0 + 60_000));
    let fx = h.run_until(t0 + 60_000);
    assert_eq!(
        failed(&fx),
        [(
            old.clone(),
            SendError::Expired {
                max_age: Duration::from_secs(60)
            }
        )]
    );
    assert_eq!(h.conn.snapshot().pending, 1);
    h.input(Input::Online);
    h.input(Input::Opened);
    let fx = h.frame(auth_success(900));
    assert_eq!(sent_ids(&fx), [young.to_string()]);
    let fx = h.run_until(t0 + 90_000);
    assert_eq!(failed(&fx).len(), 1, "the young one expires in its turn");
    assert_eq!(h.conn.snapshot().pending, 0);
}

#[test]
fn the_outbox_bounds_stay_inside_the_servers_dedup_window() {
    let default = Config::default();
    assert!(default.outbox_capacity < tether_protocol::DEDUP_WINDOW_IDS);
    assert!(default.outbox_max_age < tether_protocol::DEDUP_WINDOW / 2);
    let mut h = Harness::with_token_config(Config {
        outbox_capacity: 50_000,
        outbox_max_age: Duration::from_secs(48 * 3600),
        ..Config::default()
    });
    for i in 0..9_999 {
        h.conn.send(h.now, raw(json!(i))).expect("within the bound");
    }
    assert_eq!(
        h.conn.send(h.now, raw(json!("one more"))),
        Err(SendError::QueueFull { capacity: 9_999 })
    );
    let t0 = h.now;
    assert!(failed(&h.run_until(t0 + 12 * 3600 * 1000 - 1)).is_empty());
    let fx = h.run_until(t0 + 12 * 3600 * 1000);
    assert_eq!(failed(&fx).len(), 9_999);
    assert!(failed(&fx).iter().all(|(_, e)| matches!(
        e,
        SendError::Expired { max_age } if *max_age == Duration::from_secs(12 * 3600)
    )));
}

#[test]
fn close_1013_reconnects_with_backoff_and_keeps_the_token() {
    let mut h = Harness::with_token();
    h.online();
    let id = h.send(json!("kept"));
    h.drain();
    let fx = h.input(closed(tether_protocol::close_code::TRY_AGAIN_LATER));
    assert!(!fx.contains(&Effect::ClearToken));
    assert!(
        !events(&fx)
            .iter()
            .any(|e| matches!(e, Event::AuthError { .. }))
    );
    let (attempt, _, at) = scheduled(&fx)[0];
    assert_eq!(attempt, 1);
    h.tick_at(at);
    let auth = frames(&h.input(Input::Opened));
    assert_eq!(auth[0]["type"], "auth");
    let fx = h.frame(auth_success(900));
    assert_eq!(sent_ids(&fx), [id.to_string()]);
}
