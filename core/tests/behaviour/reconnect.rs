//! Backoff, attempts, giving up, the socket identity rule.

use crate::common::*;
use serde_json::json;
use std::time::Duration;
use tether_core::{
    Backoff, Config, ConnectionError, ConnectionState, Detail, Effect, Event, Input, SendError,
    StopReason,
};

fn config(max_attempts: Option<u32>) -> Config {
    Config {
        backoff: Backoff {
            max_attempts,
            ..Backoff::default()
        },
        ..Config::default()
    }
}

#[test]
fn abnormal_closes_reconnect_with_full_jitter_backoff() {
    for code in [1000, 1001, 1006, 1009, 4000, 3000] {
        let mut h = Harness::with_token();
        h.online();
        let fx = h.input(closed(code));
        let s = scheduled(&fx);
        assert_eq!(s.len(), 1, "{code}");
        let (attempt, delay, at) = s[0];
        assert_eq!(attempt, 1);
        assert!(delay <= Duration::from_millis(500));
        assert_eq!(at, h.now + delay.as_millis() as u64);
        assert!(events(&fx).contains(&Event::Disconnected {
            code,
            reason: String::new()
        }));
        let snap = h.conn.snapshot();
        assert_eq!(snap.state(), ConnectionState::Disconnected);
        assert_eq!(snap.detail, Detail::RetryScheduled { attempt: 1, at });
        assert_eq!(snap.next_retry_at(), Some(at));
        assert_eq!(snap.attempt(), 1);
        assert_eq!(h.conn.deadline(), Some(at));
        assert_eq!(
            errors(&fx).contains(&ConnectionError::MessageTooBig),
            code == 1009
        );
        // The timer fires: a new socket with the same token.
        let fx = h.tick_at(at);
        assert_eq!(opens(&fx), ["/api/ws/notification?token=tok"]);
        assert_eq!(h.conn.snapshot().detail, Detail::Opening { attempt: 1 });
    }
}

#[test]
fn failed_opens_back_off_exponentially_then_give_up() {
    let mut h = Harness::with_token_config(config(Some(4)));
    let id = h.send(json!("m"));
    let fx = h.input(Input::Connect);
    assert_eq!(opens(&fx).len(), 1);
    let mut attempts = Vec::new();
    let mut all = Vec::new();
    loop {
        let fx = h.input(closed(1006)); // the open failed
        all.extend(fx.clone());
        let Some(&(attempt, delay, at)) = scheduled(&fx).first() else {
            break;
        };
        let cap = Backoff::default().cap(attempt);
        assert!(delay <= cap, "attempt {attempt}: {delay:?} > {cap:?}");
        attempts.push(attempt);
        let fx = h.tick_at(at);
        assert_eq!(opens(&fx).len(), 1);
    }
    assert_eq!(attempts, [1, 2, 3, 4]);
    let ev = events(&all);
    assert!(ev.contains(&Event::ReconnectFailed { attempts: 4 }));
    assert!(ev.contains(&Event::SendFailed {
        id,
        error: SendError::GaveUp
    }));
    assert_eq!(
        h.conn.snapshot().detail,
        Detail::Stopped(StopReason::GaveUp { attempts: 4 })
    );
    assert!(opens(&h.wait(600_000)).is_empty());
    // Connect starts over.
    assert_eq!(opens(&h.input(Input::Connect)).len(), 1);
    assert_eq!(h.conn.snapshot().attempt(), 0);
}

#[test]
fn jitter_spreads_delays_and_depends_on_the_seed() {
    let delays = |seed| {
        let mut h = Harness::with_token_config(Config {
            seed,
            ..config(None)
        });
        h.input(Input::Connect);
        let mut out = Vec::new();
        for _ in 0..8 {
            let (_, delay, at) = scheduled(&h.input(closed(1006)))[0];
            out.push(delay);
            h.tick_at(at);
        }
        out
    };
    let a = delays(1);
    assert_eq!(a, delays(1), "deterministic per seed");
    assert_ne!(a, delays(2));
    assert!(a.iter().all(|d| *d <= Duration::from_secs(30)));
    assert!(a[7] > Duration::ZERO);
}

#[test]
fn attempts_reset_after_auth_success_not_on_open() {
    let mut h = Harness::with_token();
    h.input(Input::Connect);
    h.input(Input::Opened);
    let (attempt, _, at) = scheduled(&h.input(closed(1000)))[0];
    assert_eq!(attempt, 1);
    h.tick_at(at);
    h.input(Input::Opened); // accepted, then closed again: no reset
    let (attempt, _, at) = scheduled(&h.input(closed(1000)))[0];
    assert_eq!(attempt, 2);
    h.tick_at(at);
    h.input(Input::Opened);
    h.frame(auth_success(900));
    assert_eq!(h.conn.snapshot().attempt(), 0);
    let (attempt, _, _) = scheduled(&h.input(closed(1001)))[0];
    assert_eq!(attempt, 1);
}

#[test]
fn connect_resets_attempts_and_is_a_no_op_when_connecting_or_connected() {
    let mut h = Harness::with_token();
    h.input(Input::Connect);
    assert!(opens(&h.input(Input::Connect)).is_empty());
    assert_eq!(scheduled(&h.input(closed(1006)))[0].0, 1);
    // While waiting, Connect retries at once with attempt 0.
    let fx = h.input(Input::Connect);
    assert_eq!(opens(&fx).len(), 1);
    assert_eq!(h.conn.snapshot().detail, Detail::Opening { attempt: 0 });
    h.input(Input::Opened);
    h.frame(auth_success(900));
    assert!(opens(&h.input(Input::Connect)).is_empty());
    assert_eq!(h.conn.state(), ConnectionState::Connected);
}

#[test]
fn a_late_close_of_an_abandoned_socket_is_ignored() {
    let mut h = Harness::with_token();
    h.online();
    let fx = h.run_until(h.now + 9_000); // ping at +5 s, no pong by +9 s
    assert!(fx.contains(&Effect::CloseSocket {
        code: 4000,
        reason: "Keepalive timeout".into()
    }));
    let (_, _, at) = scheduled(&fx)[0];
    let before = h.conn.snapshot();
    // The old socket's close event trickles in: nothing changes.
    let fx = h.input(closed(1006));
    assert!(events(&fx).is_empty(), "{fx:?}");
    assert_eq!(h.conn.snapshot(), before);
    // The retry opens a new socket; old frames are not forwarded by the
    // driver, and the machine still waits for Opened of the new one.
    let fx = h.tick_at(at);
    assert_eq!(opens(&fx).len(), 1);
}

#[test]
fn connect_timeout_abandons_a_hanging_open() {
    let mut h = Harness::with_token();
    h.input(Input::Connect);
    let fx = h.run_until(h.now + 10_000);
    assert!(fx.contains(&Effect::CloseSocket {
        code: 4000,
        reason: "Connect timeout".into()
    }));
    assert_eq!(scheduled(&fx)[0].0, 1);
}
