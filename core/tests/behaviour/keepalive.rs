//! Ping/pong, dead links, late timers, RTT.

use crate::common::*;
use std::time::Duration;
use tether_core::{ConnectionError, ConnectionState, Effect, Event, Input};

#[test]
fn pings_every_interval_and_measures_rtt() {
    let mut h = Harness::with_token();
    h.online();
    let t0 = h.now;
    assert_eq!(h.conn.deadline(), Some(t0 + 5_000));
    let fx = h.tick_at(t0 + 5_000);
    assert_eq!(
        frames(&fx),
        [serde_json::json!({"type": "ping", "payload": {"seq": 1}})]
    );
    h.now += 30;
    let fx = h.frame(pong(1));
    assert!(events(&fx).contains(&Event::Pong {
        rtt: Duration::from_millis(30)
    }));
    assert_eq!(h.conn.snapshot().rtt, Some(Duration::from_millis(30)));
    let fx = h.tick_at(t0 + 10_000);
    assert_eq!(frame_types(&fx), ["ping"]);
    assert_eq!(frames(&fx)[0]["payload"]["seq"], 2);
    // A pong with the wrong seq does not count.
    let fx = h.frame(pong(1));
    assert!(events(&fx).is_empty());
    assert_eq!(h.conn.state(), ConnectionState::Connected);
}

#[test]
fn a_dead_link_is_noticed_within_ten_seconds_and_reconnected_after_the_first_backoff() {
    let mut h = Harness::with_token();
    h.online();
    let t0 = h.now;
    let fx = h.run_until(t0 + 9_000); // ping at +5 s, pong overdue at +9 s
    let close_at = fx
        .iter()
        .position(|e| matches!(e, Effect::CloseSocket { code: 4000, .. }))
        .expect("closed");
    assert_eq!(h.conn.state(), ConnectionState::Disconnected);
    // A reconnect is scheduled right away, without waiting for Closed,
    // after the first backoff delay only...
    let after_close = scheduled(&fx[close_at..]);
    assert_eq!(after_close.len(), 1);
    let (attempt, delay, at) = after_close[0];
    assert_eq!(attempt, 1);
    assert!(delay <= tether_core::Backoff::default().cap(1), "{delay:?}");
    // ...and then a new socket opens, though the dead one never reported
    // its close.
    assert!(errors(&fx).contains(&ConnectionError::KeepaliveTimeout {
        after: Duration::from_secs(4)
    }));
    assert!(events(&fx).contains(&Event::Disconnected {
        code: 4000,
        reason: "Keepalive timeout".into()
    }));
    let fx = h.tick_at(at);
    assert_eq!(opens(&fx), ["/api/ws/notification?token=tok"]);
    assert_eq!(h.conn.state(), ConnectionState::Connecting);
}

#[test]
fn a_tick_sixty_seconds_late_still_detects_the_dead_link() {
    let mut h = Harness::with_token();
    h.online();
    let t0 = h.now;
    h.tick_at(t0 + 5_000); // ping sent
    let fx = h.tick_at(t0 + 65_000); // throttled tab: the 9 s timer fired at 65 s
    assert!(fx.contains(&Effect::CloseSocket {
        code: 4000,
        reason: "Keepalive timeout".into()
    }));
    let (attempt, _, at) = scheduled(&fx)[0];
    assert_eq!(attempt, 1);
    assert!(at >= t0 + 65_000);
}

#[test]
fn any_input_judges_deadlines_by_now() {
    let mut h = Harness::with_token();
    h.online();
    let t0 = h.now;
    h.tick_at(t0 + 5_000);
    h.now = t0 + 30_000;
    let fx = h.input(Input::Hidden);
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::CloseSocket { code: 4000, .. }))
    );
}

#[test]
fn visible_probes_with_the_short_timeout() {
    let mut h = Harness::with_token();
    h.online();
    h.now += 1_000;
    let fx = h.input(Input::Visible);
    assert_eq!(frame_types(&fx), ["ping"]);
    assert_eq!(h.conn.deadline(), Some(h.now + 2_000));
    let fx = h.wait(2_000);
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::CloseSocket { code: 4000, .. }))
    );
    assert_eq!(scheduled(&fx).len(), 1);
}

#[test]
fn visible_probe_answered_keeps_the_connection() {
    let mut h = Harness::with_token();
    h.online();
    h.now += 1_000;
    let seq = frames(&h.input(Input::Visible))[0]["payload"]["seq"]
        .as_u64()
        .unwrap();
    h.now += 50;
    let fx = h.frame(pong(seq));
    assert!(events(&fx).contains(&Event::Pong {
        rtt: Duration::from_millis(50)
    }));
    h.wait(3_000);
    assert_eq!(h.conn.state(), ConnectionState::Connected);
}

#[test]
fn hidden_changes_nothing_and_keepalive_continues() {
    let mut h = Harness::with_token();
    h.online();
    let fx = h.input(Input::Hidden);
    assert!(fx.is_empty(), "{fx:?}");
    assert_eq!(frame_types(&h.wait(5_000)), ["ping"]);
}
