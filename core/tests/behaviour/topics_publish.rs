//! Publishing to topics through the acked outbox (contract "Topics" rule 4,
//! section 7).

use crate::common::*;
use serde_json::json;
use std::time::Duration;
use tether_core::{
    Backoff, Config, Effect, Event, Input, MessageId, NackCode, SendError, SubscribeOptions,
    TopicEvent,
};

const ROOM: &str = "room:lobby";

fn published_ids(effects: &[Effect]) -> Vec<String> {
    sent_of(effects, "publish")
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

fn publish_failed(effects: &[Effect]) -> Vec<(MessageId, String, SendError)> {
    topic_events(effects)
        .into_iter()
        .filter_map(|e| match e {
            TopicEvent::PublishFailed { id, topic, error } => Some((id, topic, error)),
            _ => None,
        })
        .collect()
}

fn live_with(config: Config) -> Harness {
    let mut h = Harness::with_token_config(config);
    h.online();
    h.subscribe(ROOM, 0);
    h.frame(subscribed(ROOM, "e1", 10, 11, None));
    h
}

fn live() -> Harness {
    live_with(Config::default())
}

#[test]
fn a_publish_is_held_until_the_topic_is_subscribed_then_sent_once() {
    let mut h = Harness::with_token();
    h.subscribe(ROOM, 0);
    let id = h.publish(ROOM, 1);
    assert_eq!(h.conn.snapshot().pending, 1);
    let fx = h.online();
    assert!(published_ids(&fx).is_empty(), "not before `subscribed`");
    let fx = h.frame(subscribed(ROOM, "e1", 0, 1, None));
    assert_eq!(
        sent_of(&fx, "publish"),
        [json!({"id": id.as_str(), "topic": ROOM, "event": "chat.text", "data": {"n": 1}})]
    );
    // Held while subscribing again after a gap, sent once after.
    h.frame(topic_message(ROOM, 1));
    h.frame(topic_message(ROOM, 3));
    let late = h.publish(ROOM, 2);
    assert!(published_ids(&h.drain()).is_empty());
    let fx = h.frame(subscribed(ROOM, "e1", 3, 2, Some(true)));
    assert_eq!(
        published_ids(&fx),
        [late.to_string()],
        "only the unsent one"
    );
}

#[test]
fn a_publish_to_a_subscribed_topic_goes_out_at_once_and_its_ack_says_the_offset() {
    let mut h = live();
    let id = h.publish(ROOM, 1);
    assert_eq!(published_ids(&h.drain()), [id.to_string()]);
    let fx = h.frame(publish_ack(id.as_str(), ROOM, 11));
    assert_eq!(
        topic_events(&fx),
        [TopicEvent::Published {
            id: id.clone(),
            topic: ROOM.into(),
            offset: 11
        }]
    );
    assert!(
        !events(&fx).iter().any(|e| matches!(e, Event::Ack { .. })),
        "a publish is not a send"
    );
    assert_eq!(h.conn.snapshot().pending, 0);
    // A second ack of the same id changes nothing.
    assert!(events(&h.frame(publish_ack(id.as_str(), ROOM, 11))).is_empty());
}

#[test]
fn publishes_are_resent_after_a_reconnect_after_the_new_subscribed() {
    let mut h = live();
    let a = h.publish(ROOM, 1);
    let b = h.publish(ROOM, 2);
    let sent = h.send(json!("plain"));
    h.frame(publish_ack(a.as_str(), ROOM, 11));
    let fx = h.reconnect();
    assert!(
        published_ids(&fx).is_empty(),
        "not before the topic's `subscribed`"
    );
    assert_eq!(
        sent_of(&fx, "send")[0]["id"],
        json!(sent.as_str()),
        "a plain send goes at once"
    );
    let fx = h.frame(subscribed(ROOM, "e1", 11, 12, Some(true)));
    assert_eq!(
        published_ids(&fx),
        [b.to_string()],
        "only the unacked one, once"
    );
    // Twice over: again after the next reconnect.
    h.reconnect();
    let fx = h.frame(subscribed(ROOM, "e1", 11, 12, Some(true)));
    assert_eq!(published_ids(&fx), [b.to_string()]);
}

#[test]
fn a_final_nack_fails_the_publish_for_good() {
    for (wire, code) in [
        ("forbidden", NackCode::Forbidden),
        ("malformed_body", NackCode::MalformedBody),
        ("whatever", NackCode::Other("whatever".into())),
    ] {
        let mut h = live();
        let id = h.publish(ROOM, 1);
        h.drain();
        let fx = h.frame(nack(id.as_str(), wire));
        let error = SendError::Nacked {
            code,
            message: "refused".into(),
        };
        assert_eq!(
            publish_failed(&fx),
            [(id, ROOM.to_owned(), error)],
            "{wire}"
        );
        assert_eq!(h.conn.snapshot().pending, 0, "{wire}");
        h.reconnect();
        let fx = h.frame(subscribed(ROOM, "e1", 10, 11, Some(true)));
        assert!(published_ids(&fx).is_empty(), "{wire}: never resent");
    }
}

#[test]
fn a_rate_limited_publish_is_resent_after_a_backoff() {
    let backoff = Backoff {
        initial: Duration::from_secs(2),
        ..Backoff::default()
    };
    let mut h = live_with(Config {
        backoff,
        ..Config::default()
    });
    let id = h.publish(ROOM, 1);
    h.drain();
    let fx = h.frame(nack(id.as_str(), "rate_limited"));
    assert!(topic_events(&fx).is_empty(), "not reported");
    assert_eq!(h.conn.snapshot().pending, 1);
    let mut resent = Vec::new();
    let start = h.now;
    while h.now < start + 2_000 && resent.is_empty() {
        h.frame(pong(0)); // keep the link alive
        resent = published_ids(&h.wait(50));
    }
    assert_eq!(resent, [id.to_string()], "resent within the 2 s cap");
    // Held back while the topic is not subscribed: it waits for `subscribed`.
    h.frame(nack(id.as_str(), "rate_limited"));
    h.frame(unsubscribed(ROOM, "user_changed", None));
    let fx = h.run_until(h.now + 4_000);
    assert!(published_ids(&fx).is_empty(), "the topic is resubscribing");
    let fx = h.frame(subscribed(ROOM, "e1", 10, 11, Some(true)));
    assert_eq!(published_ids(&fx), [id.to_string()]);
}

#[test]
fn a_not_subscribed_publish_is_resent_after_the_topics_next_subscribed() {
    let mut h = live();
    let id = h.publish(ROOM, 1);
    h.drain();
    // A reset in flight: the server refused the publish before we knew.
    let fx = h.frame(nack(id.as_str(), "not_subscribed"));
    assert!(topic_events(&fx).is_empty() && frames(&fx).is_empty());
    h.frame(unsubscribed(ROOM, "reset", Some("e2")));
    let fx = h.frame(subscribed(ROOM, "e2", 0, 1, Some(true)));
    assert_eq!(published_ids(&fx), [id.to_string()]);
    let fx = h.frame(publish_ack(id.as_str(), ROOM, 1));
    assert!(matches!(
        &topic_events(&fx)[..],
        [TopicEvent::Published { offset: 1, .. }]
    ));
}

#[test]
fn a_not_subscribed_publish_fails_when_the_topic_ends() {
    // The app unsubscribes, a final `unsubscribed`, a final `subscribe_error`.
    for end in 0..3 {
        let mut h = live();
        let id = h.publish(ROOM, 1);
        h.drain();
        h.frame(nack(id.as_str(), "not_subscribed"));
        let fx = match end {
            0 => h.unsubscribe(ROOM),
            1 => h.frame(unsubscribed(ROOM, "removed", None)),
            _ => {
                h.frame(unsubscribed(ROOM, "user_changed", None));
                h.frame(subscribe_error(ROOM, "forbidden", false))
            }
        };
        let error = SendError::TopicEnded { topic: ROOM.into() };
        assert_eq!(
            publish_failed(&fx),
            [(id, ROOM.to_owned(), error)],
            "end {end}"
        );
        assert_eq!(h.conn.snapshot().pending, 0, "end {end}");
    }
}

#[test]
fn a_plain_send_nacked_not_subscribed_stays_final() {
    let mut h = live();
    let id = h.send(json!(1));
    let fx = h.frame(nack(id.as_str(), "not_subscribed"));
    assert!(
        events(&fx)
            .iter()
            .any(|e| matches!(e, Event::SendFailed { id: failed, .. } if *failed == id))
    );
}

#[test]
fn unsubscribing_fails_the_pending_publishes_of_that_topic_only() {
    let mut h = live();
    h.subscribe("room:b", 0);
    let a = h.publish(ROOM, 1);
    let b = h.publish("room:b", 2);
    let fx = h.unsubscribe(ROOM);
    let error = SendError::TopicEnded { topic: ROOM.into() };
    assert_eq!(publish_failed(&fx), [(a, ROOM.to_owned(), error)]);
    assert_eq!(h.conn.snapshot().pending, 1);
    let fx = h.frame(subscribed("room:b", "e1", 0, 1, None));
    assert_eq!(published_ids(&fx), [b.to_string()]);
}

#[test]
fn a_publish_over_the_frame_limit_fails_at_once_locally() {
    let mut h = Harness::with_token_config(Config {
        max_frame_bytes: 200,
        ..Config::default()
    });
    h.subscribe(ROOM, 0);
    let data = raw(json!("x".repeat(80)));
    let ok = h.conn.publish(h.now, ROOM, "e", data.clone());
    assert!(ok.is_ok());
    let big = raw(json!("x".repeat(150)));
    let err = h.conn.publish(h.now, ROOM, "chat.text", big).unwrap_err();
    assert!(
        matches!(err, SendError::TooLarge { limit: 200, size } if size > 200),
        "{err:?}"
    );
    assert_eq!(
        h.conn.snapshot().pending,
        1,
        "nothing queued for the big one"
    );
    // The whole frame counts: exactly at the limit is accepted, one byte
    // over is not.
    let SendError::TooLarge { size, .. } = err else {
        unreachable!()
    };
    let fits = 150 - (size - 200);
    let at_limit = raw(json!("x".repeat(fits)));
    assert!(h.conn.publish(h.now, ROOM, "chat.text", at_limit).is_ok());
    let over = raw(json!("x".repeat(fits + 1)));
    assert!(matches!(
        h.conn.publish(h.now, ROOM, "chat.text", over),
        Err(SendError::TooLarge { size: 201, .. })
    ));
    assert_eq!(h.conn.snapshot().pending, 2);
    // A server `max_frame` smaller than a queued publish fails it on auth_success.
    let mut frame: serde_json::Value = serde_json::from_str(&auth_success(900)).unwrap();
    frame["payload"]["max_frame"] = json!(100);
    h.input(Input::Connect);
    h.input(Input::Opened);
    let fx = h.frame(frame.to_string());
    let failed = publish_failed(&fx);
    assert_eq!(failed.len(), 2, "both queued publishes are over 100 bytes");
    assert!(
        failed
            .iter()
            .all(|f| matches!(f.2, SendError::TooLarge { limit: 100, .. }))
    );
}

#[test]
fn publishing_to_a_topic_not_subscribed_fails_at_once() {
    let mut h = live();
    let data = || raw(json!(1));
    let not = |topic: &str| SendError::NotSubscribed {
        topic: topic.into(),
    };
    assert_eq!(
        h.conn.publish(h.now, "room:never", "e", data()),
        Err(not("room:never"))
    );
    h.subscribe("room:no", 0);
    h.frame(subscribe_error("room:no", "forbidden", false));
    assert_eq!(
        h.conn.publish(h.now, "room:no", "e", data()),
        Err(not("room:no"))
    );
    h.unsubscribe(ROOM);
    assert_eq!(h.conn.publish(h.now, ROOM, "e", data()), Err(not(ROOM)));
    assert_eq!(h.conn.snapshot().pending, 0);
    assert!(frames(&h.drain()).is_empty());
}

#[test]
fn sign_out_fails_pending_publishes_as_publishes() {
    let mut h = live();
    let id = h.publish(ROOM, 1);
    let fx = h.input(Input::SignOut);
    assert_eq!(
        publish_failed(&fx),
        [(id, ROOM.to_owned(), SendError::SignedOut)]
    );
    assert!(
        !events(&fx)
            .iter()
            .any(|e| matches!(e, Event::SendFailed { .. }))
    );
}

#[test]
fn an_unacked_publish_expires_like_a_send() {
    let mut h = Harness::with_token_config(Config {
        outbox_max_age: Duration::from_secs(60),
        ..Config::default()
    });
    h.subscribe(ROOM, 0);
    let id = h.publish(ROOM, 1);
    let fx = h.run_until(h.now + 60_000);
    assert_eq!(
        publish_failed(&fx),
        [(
            id,
            ROOM.to_owned(),
            SendError::Expired {
                max_age: Duration::from_secs(60)
            }
        )]
    );
}

#[test]
fn publish_ids_are_unique_and_share_the_outbox_with_sends() {
    let mut h = Harness::with_token_config(Config {
        outbox_capacity: 3,
        ..Config::default()
    });
    h.conn
        .subscribe(h.now, ROOM, SubscribeOptions::default())
        .unwrap();
    let a = h.publish(ROOM, 1);
    let b = h.send(json!(2));
    let c = h.publish(ROOM, 3);
    assert!(a != b && b != c && a != c);
    assert_eq!(
        h.conn.publish(h.now, ROOM, "e", raw(json!(4))),
        Err(SendError::QueueFull { capacity: 3 })
    );
}
