//! Topics: the per-topic state machine, recovery and ordering (contract
//! "Topics", rules 1-3, 5 and 6).

use crate::common::*;
use serde_json::json;
use std::time::Duration;
use tether_core::{
    Backoff, ChanxAuth, Config, Connection, Input, Position, Secret, SubscribeErrorCode,
    SubscribeOptions, TopicError, TopicEvent, TopicFailure, TopicState, UnsubscribedCode,
};

const ROOM: &str = "room:lobby";

fn pos(epoch: &str, offset: u64) -> Position {
    Position {
        epoch: epoch.into(),
        offset,
    }
}

fn not_recovered(fx: &[tether_core::Effect]) -> Vec<(String, String)> {
    topic_events(fx)
        .into_iter()
        .filter_map(|e| match e {
            TopicEvent::NotRecovered { topic, epoch } => Some((topic, epoch)),
            _ => None,
        })
        .collect()
}

/// Online, `ROOM` subscribed in epoch `e1` at offset 10 (no replay), its
/// subscribe sent with `last` 0.
fn live() -> Harness {
    let mut h = Harness::with_token();
    h.online();
    h.subscribe(ROOM, 0);
    h.frame(subscribed(ROOM, "e1", 10, 11, None));
    assert_eq!(h.topic_state(ROOM), Some(TopicState::Subscribed));
    h
}

#[test]
fn subscribes_go_out_only_after_auth_success_with_last_on_the_first() {
    let mut h = Harness::with_token();
    let fx = h.subscribe(ROOM, 50);
    assert!(frames(&fx).is_empty(), "nothing is sent before connecting");
    assert_eq!(
        topic_states(&fx),
        [(ROOM.to_owned(), TopicState::Subscribing)]
    );
    let mut fx = h.input(Input::Connect);
    fx.extend(h.input(Input::Opened));
    assert_eq!(
        frame_types(&fx),
        ["auth"],
        "no subscribe before auth_success"
    );
    let fx = h.frame(auth_success(900));
    assert_eq!(
        sent_of(&fx, "subscribe"),
        [json!({"topic": ROOM, "last": 50})],
        "the first subscribe asks for `last`, with no `since`"
    );
    assert_eq!(h.topic_state(ROOM), Some(TopicState::Subscribing));
}

#[test]
fn a_subscribe_while_connected_goes_out_at_once_and_twice_is_once() {
    let mut h = Harness::with_token();
    h.online();
    let fx = h.subscribe(ROOM, 0);
    assert_eq!(sent_of(&fx, "subscribe"), [json!({"topic": ROOM})]);
    let fx = h.subscribe(ROOM, 5);
    assert!(frames(&fx).is_empty() && events(&fx).is_empty(), "{fx:?}");
}

#[test]
fn subscribed_starts_the_stream_with_presence_and_position() {
    let mut h = Harness::with_token();
    h.online();
    h.subscribe(ROOM, 2);
    let fx = h.frame(subscribed_with(ROOM, "e1", 9, 8, None, &[ALICE, BOB]));
    assert_eq!(
        topic_states(&fx),
        [(ROOM.to_owned(), TopicState::Subscribed)]
    );
    assert!(topic_events(&fx).contains(&TopicEvent::Presence {
        topic: ROOM.into(),
        present: vec![user(ALICE), user(BOB)],
        joined: vec![user(ALICE), user(BOB)],
        left: vec![],
    }));
    assert!(
        not_recovered(&fx).is_empty(),
        "no since, nothing to recover"
    );
    let snap = h.conn.topic(ROOM).unwrap();
    assert_eq!(snap.presence, [user(ALICE), user(BOB)]);
    assert_eq!(snap.position, Some(pos("e1", 7)), "just before `from`");
    // The two replayed messages, then a live one.
    let mut fx = h.frame(topic_message(ROOM, 8));
    fx.extend(h.frame(topic_message(ROOM, 9)));
    fx.extend(h.frame(topic_message(ROOM, 10)));
    assert_eq!(
        applied(&fx),
        [
            (ROOM.into(), 8, true),
            (ROOM.into(), 9, true),
            (ROOM.into(), 10, false)
        ]
    );
    assert_eq!(h.conn.topic(ROOM).unwrap().position, Some(pos("e1", 10)));
}

#[test]
fn final_subscribe_errors_fail_the_topic_and_are_not_retried_after_a_reconnect() {
    for (wire, code, retry) in [
        ("forbidden", SubscribeErrorCode::Forbidden, false),
        ("not_found", SubscribeErrorCode::NotFound, false),
        ("invalid_topic", SubscribeErrorCode::InvalidTopic, false),
        ("bad_request", SubscribeErrorCode::BadRequest, false),
        ("too_many_topics", SubscribeErrorCode::TooManyTopics, false),
        // A final code stays final even if `retry` says otherwise.
        ("forbidden", SubscribeErrorCode::Forbidden, true),
        (
            "new_code",
            SubscribeErrorCode::Other("new_code".into()),
            false,
        ),
    ] {
        let mut h = Harness::with_token();
        h.online();
        h.subscribe(ROOM, 0);
        let fx = h.frame(subscribe_error(ROOM, wire, retry));
        let failed = TopicState::Failed(TopicFailure::Refused {
            code: code.clone(),
            message: "no".into(),
        });
        assert_eq!(
            topic_states(&fx),
            [(ROOM.to_owned(), failed.clone())],
            "{wire}"
        );
        assert_eq!(h.topic_state(ROOM), Some(failed.clone()), "{wire}");
        assert_eq!(
            h.conn.deadline(),
            Some(h.now + 5_000),
            "only the ping is due ({wire})"
        );
        let fx = h.wait(5_000);
        assert_eq!(frame_types(&fx), ["ping"], "{wire}: not retried");
        let fx = h.reconnect();
        assert!(
            sent_of(&fx, "subscribe").is_empty(),
            "{wire}: not after a reconnect"
        );
        assert_eq!(h.topic_state(ROOM), Some(failed), "{wire}");
        // The app subscribing again tries again.
        let fx = h.subscribe(ROOM, 0);
        assert_eq!(sent_of(&fx, "subscribe").len(), 1, "{wire}");
        assert_eq!(h.topic_state(ROOM), Some(TopicState::Subscribing), "{wire}");
    }
}

#[test]
fn rate_limited_and_unavailable_are_retried_with_backoff() {
    for (wire, retry) in [
        ("rate_limited", true),
        ("unavailable", true),
        ("busy_now", true),
    ] {
        let backoff = Backoff {
            initial: Duration::from_secs(4),
            ..Backoff::default()
        };
        let mut h = Harness::with_token_config(Config {
            backoff,
            ..Config::default()
        });
        h.online();
        h.subscribe(ROOM, 0);
        let before = h.now;
        let fx = h.frame(subscribe_error(ROOM, wire, retry));
        assert!(topic_states(&fx).is_empty(), "{wire}: still subscribing");
        assert_eq!(h.topic_state(ROOM), Some(TopicState::Subscribing));
        // The retry is due within the first backoff cap; nothing goes out before it.
        let mut at = None;
        let mut t = before;
        while t <= before + 4_000 {
            let fx = h.tick_at(t);
            let subs = sent_of(&fx, "subscribe");
            if !subs.is_empty() {
                assert_eq!(subs, [json!({"topic": ROOM})], "{wire}");
                at = Some(t);
                break;
            }
            t += 100;
        }
        assert!(at.is_some(), "{wire}: resubscribed within the 4 s cap");
        // The answer makes it subscribed; the count of failures starts over.
        h.frame(subscribed(ROOM, "e1", 0, 1, None));
        assert_eq!(h.topic_state(ROOM), Some(TopicState::Subscribed), "{wire}");
    }
}

#[test]
fn a_retry_waits_for_the_connection() {
    let mut h = Harness::with_token();
    h.online();
    h.subscribe(ROOM, 0);
    h.frame(subscribe_error(ROOM, "unavailable", true));
    let mut fx = h.input(closed(1006));
    fx.extend(h.run_until(h.now + 40_000));
    assert!(
        sent_of(&fx, "subscribe").is_empty(),
        "no socket, no subscribe"
    );
    assert_eq!(h.topic_state(ROOM), Some(TopicState::Subscribing));
}

#[test]
fn every_reconnect_resubscribes_subscribed_and_subscribing_topics_from_their_position() {
    let mut h = Harness::with_token();
    h.online();
    h.subscribe("room:a", 0);
    h.subscribe("room:b", 5); // never answered
    h.subscribe("room:c", 0);
    h.frame(subscribe_error("room:c", "forbidden", false));
    h.frame(subscribed("room:a", "e1", 3, 4, None));
    h.frame(topic_message("room:a", 4));
    for round in 0..3 {
        let fx = h.reconnect();
        let states = topic_states(&fx);
        assert!(
            states.contains(&("room:a".to_owned(), TopicState::Subscribing)),
            "{states:?}"
        );
        let subs = sent_of(&fx, "subscribe");
        let expected_a = json!({"topic": "room:a", "since": {"epoch": "e1", "offset": 4 + round}});
        assert_eq!(
            subs,
            [expected_a, json!({"topic": "room:b", "last": 5})],
            "round {round}: a from its position, b still first (its `last`), c not at all"
        );
        let fx = h.frame(subscribed("room:a", "e1", 4 + round, 5 + round, Some(true)));
        assert!(not_recovered(&fx).is_empty());
        let fx = h.frame(topic_message("room:a", 5 + round));
        assert_eq!(applied(&fx), [("room:a".into(), 5 + round, false)]);
    }
}

#[test]
fn a_reauth_in_place_as_the_same_user_keeps_the_topics() {
    let mut h = live();
    let mut fx = h.input(Input::SetToken {
        token: Secret::new("tok2"),
        expires_in: None,
    });
    fx.extend(h.frame(auth_success(900)));
    assert_eq!(frame_types(&fx), ["auth"], "no resubscribe");
    assert!(topic_events(&fx).is_empty(), "{fx:?}");
    assert_eq!(h.topic_state(ROOM), Some(TopicState::Subscribed));
    let fx = h.frame(topic_message(ROOM, 11));
    assert_eq!(applied(&fx), [(ROOM.into(), 11, false)]);
}

#[test]
fn user_changed_resubscribes_from_the_position() {
    let mut h = live();
    h.frame(topic_message(ROOM, 11));
    let fx = h.frame(unsubscribed(ROOM, "user_changed", None));
    assert_eq!(
        sent_of(&fx, "subscribe"),
        [json!({"topic": ROOM, "since": {"epoch": "e1", "offset": 11}})]
    );
    assert_eq!(
        topic_states(&fx),
        [(ROOM.to_owned(), TopicState::Subscribing)]
    );
    assert!(not_recovered(&fx).is_empty());
    // Stale messages before the new `subscribed` are not applied.
    assert!(applied(&h.frame(topic_message(ROOM, 12))).is_empty());
    let mut fx = h.frame(subscribed(ROOM, "e1", 12, 12, Some(true)));
    fx.extend(h.frame(topic_message(ROOM, 12)));
    assert_eq!(applied(&fx), [(ROOM.into(), 12, true)]);
    assert_eq!(h.topic_state(ROOM), Some(TopicState::Subscribed));
}

#[test]
fn reset_resubscribes_from_the_new_epochs_start_and_reports_not_recovered() {
    let mut h = live();
    h.frame(topic_message(ROOM, 11));
    let fx = h.frame(unsubscribed(ROOM, "reset", Some("e2")));
    assert_eq!(not_recovered(&fx), [(ROOM.into(), "e2".into())]);
    assert_eq!(
        sent_of(&fx, "subscribe"),
        [json!({"topic": ROOM, "since": {"epoch": "e2", "offset": 0}})]
    );
    assert_eq!(h.conn.topic(ROOM).unwrap().position, Some(pos("e2", 0)));
    let mut fx = h.frame(subscribed(ROOM, "e2", 1, 1, Some(true)));
    assert!(not_recovered(&fx).is_empty(), "reported once");
    fx.extend(h.frame(topic_message(ROOM, 1)));
    fx.extend(h.frame(topic_message(ROOM, 2)));
    assert_eq!(
        applied(&fx),
        [(ROOM.into(), 1, true), (ROOM.into(), 2, false)],
        "offsets start again in the new epoch"
    );
}

#[test]
fn recovered_false_and_another_epoch_are_reported_as_not_recovered() {
    let mut h = live();
    h.frame(topic_message(ROOM, 11));
    // Trimmed past the position: same epoch, recovered false.
    let fx = h.reconnect();
    assert_eq!(
        sent_of(&fx, "subscribe")[0]["since"],
        json!({"epoch": "e1", "offset": 11})
    );
    let fx = h.frame(subscribed(ROOM, "e1", 3000, 3001, Some(false)));
    assert_eq!(not_recovered(&fx), [(ROOM.into(), "e1".into())]);
    assert_eq!(h.conn.topic(ROOM).unwrap().position, Some(pos("e1", 3000)));
    let fx = h.frame(topic_message(ROOM, 3001));
    assert_eq!(applied(&fx), [(ROOM.into(), 3001, false)]);
    // A restarted server: another epoch (even without `recovered`).
    h.reconnect();
    let fx = h.frame(subscribed(ROOM, "e9", 0, 1, None));
    assert_eq!(not_recovered(&fx), [(ROOM.into(), "e9".into())]);
    let fx = h.frame(topic_message(ROOM, 1));
    assert_eq!(applied(&fx), [(ROOM.into(), 1, false)]);
    // The server's word counts even when the offsets look continuous.
    h.reconnect();
    let fx = h.frame(subscribed(ROOM, "e9", 1, 2, Some(false)));
    assert_eq!(not_recovered(&fx), [(ROOM.into(), "e9".into())]);
    // Recovered: nothing reported.
    h.reconnect();
    let fx = h.frame(subscribed(ROOM, "e9", 1, 2, Some(true)));
    assert!(not_recovered(&fx).is_empty());
}

#[test]
fn messages_apply_in_offset_order_from_from_and_duplicates_are_dropped() {
    let mut h = live();
    let mut fx = Vec::new();
    for offset in [11, 11, 12, 10, 12, 13, 1] {
        fx.extend(h.frame(topic_message(ROOM, offset)));
    }
    assert_eq!(
        applied(&fx),
        [
            (ROOM.into(), 11, false),
            (ROOM.into(), 12, false),
            (ROOM.into(), 13, false)
        ]
    );
    assert!(
        sent_of(&fx, "subscribe").is_empty(),
        "duplicates are no gap"
    );
    let TopicEvent::Message { message, .. } = &topic_events(&h.frame(topic_message(ROOM, 14)))[0]
    else {
        panic!("a message")
    };
    assert_eq!(message.data.as_str(), r#"{"n":14}"#);
    assert_eq!(message.event, "chat.text");
    assert_eq!(message.from, Some(user(BOB)));
}

#[test]
fn a_gap_resubscribes_from_the_last_applied_offset() {
    let mut h = live();
    h.frame(topic_message(ROOM, 11));
    let fx = h.frame(topic_message(ROOM, 13));
    assert!(applied(&fx).is_empty(), "13 is not applied before 12");
    assert_eq!(
        sent_of(&fx, "subscribe"),
        [json!({"topic": ROOM, "since": {"epoch": "e1", "offset": 11}})]
    );
    assert_eq!(
        topic_states(&fx),
        [(ROOM.to_owned(), TopicState::Subscribing)]
    );
    // Until the answer, the old subscription's frames are dropped.
    assert!(applied(&h.frame(topic_message(ROOM, 14))).is_empty());
    let mut fx = h.frame(subscribed(ROOM, "e1", 14, 12, Some(true)));
    for offset in [12, 13, 14, 15] {
        fx.extend(h.frame(topic_message(ROOM, offset)));
    }
    let offsets: Vec<u64> = applied(&fx).into_iter().map(|(_, o, _)| o).collect();
    assert_eq!(offsets, [12, 13, 14, 15]);
    assert!(not_recovered(&fx).is_empty(), "the gap was filled");
}

#[test]
fn a_gap_before_any_message_resubscribes_from_from_minus_one() {
    let mut h = Harness::with_token();
    h.online();
    h.subscribe(ROOM, 0);
    h.frame(subscribed(ROOM, "e1", 4, 5, None));
    let fx = h.frame(topic_message(ROOM, 6));
    assert_eq!(
        sent_of(&fx, "subscribe"),
        [json!({"topic": ROOM, "since": {"epoch": "e1", "offset": 4}})]
    );
}

#[test]
fn a_later_subscribed_never_applies_an_offset_twice_and_reports_a_hole() {
    let mut h = live();
    h.frame(topic_message(ROOM, 11));
    h.frame(topic_message(ROOM, 12));
    // The server replays from further back than asked: 11 and 12 are not applied again.
    h.reconnect();
    let mut fx = h.frame(subscribed(ROOM, "e1", 13, 11, Some(true)));
    for offset in [11, 12, 13] {
        fx.extend(h.frame(topic_message(ROOM, offset)));
    }
    assert_eq!(applied(&fx), [(ROOM.into(), 13, true)]);
    assert!(not_recovered(&fx).is_empty());
    // A stream that starts after a hole is reported, even when `recovered` says true.
    h.reconnect();
    let fx = h.frame(subscribed(ROOM, "e1", 20, 18, Some(true)));
    assert_eq!(not_recovered(&fx), [(ROOM.into(), "e1".into())]);
}

#[test]
fn removed_and_topic_deleted_end_the_topic_for_good() {
    for (wire, code) in [
        ("removed", UnsubscribedCode::Removed),
        ("topic_deleted", UnsubscribedCode::TopicDeleted),
        (
            "gone_fishing",
            UnsubscribedCode::Other("gone_fishing".into()),
        ),
        // Not the answer to an `unsubscribe` of the app's: the server ended it.
        ("unsubscribed", UnsubscribedCode::Unsubscribed),
    ] {
        let mut h = live();
        let fx = h.frame(unsubscribed(ROOM, wire, None));
        let failed = TopicState::Failed(TopicFailure::Ended {
            code,
            message: "bye".into(),
        });
        assert_eq!(
            topic_states(&fx),
            [(ROOM.to_owned(), failed.clone())],
            "{wire}"
        );
        assert!(frames(&fx).is_empty(), "{wire}: no resubscribe");
        assert!(
            applied(&h.frame(topic_message(ROOM, 11))).is_empty(),
            "{wire}"
        );
        let fx = h.reconnect();
        assert!(sent_of(&fx, "subscribe").is_empty(), "{wire}");
        assert_eq!(h.topic_state(ROOM), Some(failed), "{wire}");
    }
}

#[test]
fn the_apps_unsubscribe_tells_the_server_only_when_it_holds_the_subscription() {
    let mut h = live();
    let fx = h.unsubscribe(ROOM);
    assert_eq!(sent_of(&fx, "unsubscribe"), [json!({"topic": ROOM})]);
    assert_eq!(
        topic_states(&fx),
        [(ROOM.to_owned(), TopicState::Unsubscribed)]
    );
    assert_eq!(h.conn.topic(ROOM), None);
    // Its answer, and frames in flight, change nothing.
    let mut fx = h.frame(unsubscribed(ROOM, "unsubscribed", None));
    fx.extend(h.frame(topic_message(ROOM, 11)));
    fx.extend(h.frame(subscribed(ROOM, "e1", 11, 12, None)));
    assert!(events(&fx).is_empty() && frames(&fx).is_empty(), "{fx:?}");
    // Not connected: nothing to tell.
    let mut h = Harness::with_token();
    h.subscribe(ROOM, 0);
    let fx = h.unsubscribe(ROOM);
    assert!(frames(&fx).is_empty());
    assert_eq!(
        topic_states(&fx),
        [(ROOM.to_owned(), TopicState::Unsubscribed)]
    );
    assert!(sent_of(&h.online(), "subscribe").is_empty());
    // A subscribe in flight is answered by the server: unsubscribe it too.
    h.subscribe(ROOM, 0);
    assert_eq!(sent_of(&h.unsubscribe(ROOM), "unsubscribe").len(), 1);
    // Unknown topics: nothing.
    assert!(h.unsubscribe("room:never").is_empty());
}

#[test]
fn unsubscribing_and_subscribing_again_ignores_the_old_answer() {
    let mut h = live();
    h.unsubscribe(ROOM);
    let fx = h.subscribe(ROOM, 3);
    assert_eq!(
        sent_of(&fx, "subscribe"),
        [json!({"topic": ROOM, "last": 3})]
    );
    h.frame(unsubscribed(ROOM, "unsubscribed", None));
    assert_eq!(h.topic_state(ROOM), Some(TopicState::Subscribing));
    h.frame(subscribed(ROOM, "e1", 12, 10, None));
    assert_eq!(h.topic_state(ROOM), Some(TopicState::Subscribed));
    // The answer was counted once: another one is the server's doing.
    h.frame(unsubscribed(ROOM, "unsubscribed", None));
    assert!(matches!(h.topic_state(ROOM), Some(TopicState::Failed(_))));
}

#[test]
fn presence_frames_update_the_snapshot_and_are_reported() {
    let mut h = Harness::with_token();
    h.online();
    h.subscribe(ROOM, 0);
    h.frame(subscribed_with(ROOM, "e1", 0, 1, None, &[ALICE]));
    let fx = h.frame(presence(ROOM, &[BOB], &[]));
    assert_eq!(
        topic_events(&fx),
        [TopicEvent::Presence {
            topic: ROOM.into(),
            present: vec![user(ALICE), user(BOB)],
            joined: vec![user(BOB)],
            left: vec![],
        }]
    );
    // A join of someone present and a leave of someone absent change nothing.
    let fx = h.frame(presence(ROOM, &[BOB], &[("nobody", "x")]));
    assert!(topic_events(&fx).is_empty());
    let fx = h.frame(presence(ROOM, &[], &[ALICE]));
    assert_eq!(
        topic_events(&fx),
        [TopicEvent::Presence {
            topic: ROOM.into(),
            present: vec![user(BOB)],
            joined: vec![],
            left: vec![user(ALICE)],
        }]
    );
    assert_eq!(h.conn.topic(ROOM).unwrap().presence, [user(BOB)]);
    // After a reconnect, `subscribed` states the list afresh, as a change.
    h.reconnect();
    let fx = h.frame(subscribed_with(ROOM, "e1", 0, 1, Some(true), &[ALICE]));
    assert!(topic_events(&fx).contains(&TopicEvent::Presence {
        topic: ROOM.into(),
        present: vec![user(ALICE)],
        joined: vec![user(ALICE)],
        left: vec![user(BOB)],
    }));
}

#[test]
fn sign_out_and_destroy_end_every_topic() {
    for input in [Input::SignOut, Input::Destroy] {
        let mut h = live();
        h.subscribe("room:b", 0);
        let fx = h.input(input.clone());
        let states = topic_states(&fx);
        assert_eq!(
            states,
            [
                (ROOM.to_owned(), TopicState::Unsubscribed),
                ("room:b".to_owned(), TopicState::Unsubscribed)
            ],
            "{input:?}"
        );
        assert_eq!(h.conn.topic(ROOM), None, "{input:?}");
        assert!(
            !sent_of(&fx, "unsubscribe").iter().any(|_| true),
            "the socket closes instead"
        );
    }
    // After a sign-out, a new sign-in starts with no topics.
    let mut h = live();
    h.input(Input::SignOut);
    h.input(Input::SetToken {
        token: Secret::new("tok"),
        expires_in: None,
    });
    assert!(sent_of(&h.online(), "subscribe").is_empty());
}

#[test]
fn a_final_auth_failure_ends_every_topic() {
    let mut h = live();
    let fx = h.frame(auth_error("revoked"));
    assert_eq!(
        topic_states(&fx),
        [(ROOM.to_owned(), TopicState::Unsubscribed)]
    );
}

#[test]
fn bad_names_and_options_are_refused_at_once() {
    let mut h = Harness::with_token();
    h.online();
    for name in [
        "lobby",
        "room:",
        ":x",
        "room:a:b",
        "room:caf\u{e9}",
        &format!("r:{}", "x".repeat(127)),
    ] {
        assert_eq!(
            h.conn.subscribe(h.now, name, SubscribeOptions::default()),
            Err(TopicError::InvalidTopic {
                topic: name.to_owned()
            })
        );
    }
    assert!(
        h.conn
            .subscribe(
                h.now,
                &format!("r:{}", "x".repeat(126)),
                SubscribeOptions::default()
            )
            .is_ok()
    );
    assert_eq!(
        h.conn
            .subscribe(h.now, ROOM, SubscribeOptions { last: 1001 }),
        Err(TopicError::InvalidLast {
            last: 1001,
            max: 1000
        })
    );
    assert!(
        h.conn
            .subscribe(h.now, ROOM, SubscribeOptions { last: 1000 })
            .is_ok()
    );
    let fx = h.drain();
    assert_eq!(sent_of(&fx, "subscribe").len(), 2, "only the accepted ones");
    assert_eq!(h.conn.topic("lobby"), None);
}

#[test]
fn at_most_one_hundred_topics_failed_ones_not_counted() {
    let mut h = Harness::with_token();
    h.online();
    for i in 0..100 {
        h.subscribe(&format!("room:{i}"), 0);
    }
    assert_eq!(
        h.conn
            .subscribe(h.now, "room:100", SubscribeOptions::default()),
        Err(TopicError::TooManyTopics { limit: 100 })
    );
    assert_eq!(h.conn.topic("room:100"), None);
    h.frame(subscribe_error("room:7", "forbidden", false));
    assert!(
        h.conn
            .subscribe(h.now, "room:100", SubscribeOptions::default())
            .is_ok()
    );
    // Re-subscribing the failed one would make 101.
    assert_eq!(
        h.conn
            .subscribe(h.now, "room:7", SubscribeOptions::default()),
        Err(TopicError::TooManyTopics { limit: 100 })
    );
    h.unsubscribe("room:0");
    assert!(
        h.conn
            .subscribe(h.now, "room:7", SubscribeOptions::default())
            .is_ok()
    );
}

#[test]
fn the_chanx_adapter_has_no_topics() {
    let mut conn = Connection::with_adapter(Config::default(), Box::new(ChanxAuth::query()));
    assert_eq!(
        conn.subscribe(0, ROOM, SubscribeOptions::default()),
        Err(TopicError::Unsupported)
    );
    assert_eq!(conn.topic(ROOM), None);
    assert!(std::iter::from_fn(|| conn.poll_effect()).next().is_none());
}

#[test]
fn after_destroy_subscribe_is_refused() {
    let mut h = Harness::with_token();
    h.input(Input::Destroy);
    assert_eq!(
        h.conn.subscribe(h.now, ROOM, SubscribeOptions::default()),
        Err(TopicError::Destroyed)
    );
}

#[test]
fn topic_frames_are_not_acted_on_before_authentication() {
    let mut h = Harness::with_token();
    h.subscribe(ROOM, 0);
    h.input(Input::Connect);
    h.input(Input::Opened);
    let fx = h.frame(subscribed(ROOM, "e1", 0, 1, None));
    assert!(topic_events(&fx).is_empty());
    assert_eq!(errors(&fx).len(), 1, "reported as not authenticated");
    assert_eq!(h.topic_state(ROOM), Some(TopicState::Subscribing));
    // Answers for topics nobody subscribed to are ignored.
    h.frame(auth_success(900));
    let mut fx = h.frame(subscribed("room:other", "e1", 0, 1, None));
    fx.extend(h.frame(topic_message("room:other", 1)));
    fx.extend(h.frame(subscribe_error("room:other", "forbidden", false)));
    fx.extend(h.frame(presence("room:other", &[ALICE], &[])));
    fx.extend(h.frame(unsubscribed("room:other", "removed", None)));
    assert!(events(&fx).is_empty() && frames(&fx).is_empty(), "{fx:?}");
}

#[test]
fn only_the_answer_to_the_latest_subscribe_counts() {
    // Found by topic_properties: subscribe, unsubscribe, subscribe again
    // (refused). The first `subscribed` must not make the topic live.
    let mut h = Harness::with_token();
    h.online();
    h.subscribe(ROOM, 0);
    h.unsubscribe(ROOM);
    h.subscribe(ROOM, 0);
    h.frame(subscribed(ROOM, "e1", 3, 4, None));
    assert_eq!(
        h.topic_state(ROOM),
        Some(TopicState::Subscribing),
        "a stale answer"
    );
    h.frame(unsubscribed(ROOM, "unsubscribed", None));
    h.frame(subscribe_error(ROOM, "rate_limited", true));
    assert!(
        h.conn.deadline() < Some(h.now + 5_000),
        "the retry is due before the ping"
    );
    let fx = h.tick_at(h.conn.deadline().unwrap());
    assert_eq!(sent_of(&fx, "subscribe").len(), 1, "retried");
    // A reset while a subscribe is in flight: only the second answer counts.
    h.frame(unsubscribed(ROOM, "reset", Some("e2")));
    let fx = h.frame(subscribed(ROOM, "e1", 3, 4, None));
    assert!(topic_events(&fx).is_empty(), "{fx:?}");
    h.frame(subscribed(ROOM, "e2", 0, 1, Some(true)));
    assert_eq!(h.topic_state(ROOM), Some(TopicState::Subscribed));
    // An answer nobody asked for (a duplicate) changes nothing.
    let fx = h.frame(subscribed(ROOM, "e2", 5, 1, Some(false)));
    assert!(topic_events(&fx).is_empty(), "{fx:?}");
}

#[test]
fn a_manual_disconnect_or_going_offline_keeps_the_topics_for_the_next_connect() {
    for (down, up) in [
        (Input::Disconnect, Input::Connect),
        (Input::Offline, Input::Online),
    ] {
        let mut h = live();
        h.frame(topic_message(ROOM, 11));
        let mut fx = h.input(down.clone());
        fx.extend(h.input(closed(1000)));
        assert_eq!(
            topic_states(&fx),
            [(ROOM.to_owned(), TopicState::Subscribing)],
            "{down:?}"
        );
        assert!(sent_of(&fx, "unsubscribe").is_empty(), "{down:?}");
        let mut fx = h.input(up.clone());
        fx.extend(h.input(Input::Opened));
        fx.extend(h.frame(auth_success(900)));
        assert_eq!(
            sent_of(&fx, "subscribe"),
            [json!({"topic": ROOM, "since": {"epoch": "e1", "offset": 11}})],
            "{up:?}"
        );
    }
}
