//! Network and page lifecycle, manual disconnect, destroy.

use crate::common::*;
use serde_json::json;
use tether_core::{
    Backoff, Config, ConnectionState, Detail, Effect, Event, Input, SendError, StopReason,
};

fn stopped(h: &Harness) -> Option<StopReason> {
    match h.conn.snapshot().detail {
        Detail::Stopped(r) => Some(r),
        _ => None,
    }
}

#[test]
fn offline_closes_and_stops_retrying_online_reconnects_at_once() {
    let mut h = Harness::with_token();
    h.online();
    let fx = h.input(Input::Offline);
    assert!(fx.contains(&Effect::CloseSocket {
        code: 1000,
        reason: "Network offline".into()
    }));
    assert_eq!(stopped(&h), Some(StopReason::Offline));
    assert_eq!(h.conn.state(), ConnectionState::Disconnected);
    assert!(opens(&h.wait(120_000)).is_empty());
    assert!(opens(&h.input(Input::Visible)).is_empty());
    let fx = h.input(Input::Online);
    assert_eq!(opens(&fx).len(), 1);
    assert_eq!(h.conn.snapshot().detail, Detail::Opening { attempt: 0 });
}

#[test]
fn offline_cancels_a_pending_retry_and_failures_while_offline_do_not_retry() {
    let mut h = Harness::with_token();
    h.online();
    h.input(closed(1006));
    assert!(h.conn.snapshot().next_retry_at().is_some());
    h.input(Input::Offline);
    assert_eq!(h.conn.snapshot().next_retry_at(), None);
    assert_eq!(h.conn.deadline(), None);
    // The user insists while offline; the attempt fails; no retry loop.
    h.input(Input::Connect);
    let fx = h.input(closed(1006));
    assert!(scheduled(&fx).is_empty());
    assert_eq!(stopped(&h), Some(StopReason::Offline));
}

#[test]
fn online_restarts_after_giving_up_but_not_after_manual_or_auth_failure() {
    let config = Config {
        backoff: Backoff {
            max_attempts: Some(0),
            ..Backoff::default()
        },
        ..Config::default()
    };
    let mut h = Harness::with_token_config(config);
    h.input(Input::Connect);
    let fx = h.input(closed(1006));
    assert!(events(&fx).contains(&Event::ReconnectFailed { attempts: 0 }));
    assert_eq!(stopped(&h), Some(StopReason::GaveUp { attempts: 0 }));
    assert_eq!(opens(&h.input(Input::Online)).len(), 1);

    let mut h = Harness::with_token();
    h.online();
    h.input(Input::Disconnect);
    h.input(closed(1000));
    assert!(opens(&h.input(Input::Online)).is_empty());

    let mut h = Harness::with_token();
    h.online();
    h.frame(auth_error("revoked"));
    assert!(opens(&h.input(Input::Online)).is_empty());
}

#[test]
fn visible_with_a_retry_pending_retries_now() {
    let mut h = Harness::with_token();
    h.online();
    let (attempt, _, _) = scheduled(&h.input(closed(1006)))[0];
    let fx = h.input(Input::Visible);
    assert_eq!(opens(&fx).len(), 1);
    assert_eq!(h.conn.snapshot().detail, Detail::Opening { attempt });
}

#[test]
fn manual_disconnect_closes_then_stays_down_until_connect() {
    let mut h = Harness::with_token();
    h.online();
    let fx = h.input(Input::Disconnect);
    assert!(fx.contains(&Effect::CloseSocket {
        code: 1000,
        reason: "Client disconnect".into()
    }));
    assert_eq!(h.conn.state(), ConnectionState::Disconnecting);
    assert!(events(&fx).contains(&Event::StateChanged {
        from: ConnectionState::Connected,
        to: ConnectionState::Disconnecting
    }));
    let id = h.send(json!("later")); // queued, not sent
    let fx = h.input(closed(1000));
    assert!(events(&fx).contains(&Event::StateChanged {
        from: ConnectionState::Disconnecting,
        to: ConnectionState::Disconnected
    }));
    assert_eq!(stopped(&h), Some(StopReason::Manual));
    let mut later = h.input(Input::Online);
    later.extend(h.input(Input::Visible));
    later.extend(h.wait(600_000));
    assert!(opens(&later).is_empty());
    assert!(frames(&later).is_empty());
    assert_eq!(h.conn.snapshot().pending, 1);

    h.input(Input::Connect);
    h.input(Input::Opened);
    let fx = h.frame(auth_success(900));
    assert_eq!(frames(&fx)[0]["payload"]["id"], id.as_str());
}

#[test]
fn disconnect_without_a_socket_is_immediate_and_a_lost_close_does_not_hang() {
    let mut h = Harness::with_token();
    let fx = h.input(Input::Disconnect);
    assert_eq!(stopped(&h), Some(StopReason::Manual));
    assert!(events(&fx).contains(&Event::StateChanged {
        from: ConnectionState::Initial,
        to: ConnectionState::Disconnected
    }));

    let mut h = Harness::with_token();
    h.online();
    h.input(Input::Disconnect);
    h.run_until(h.now + 10_000); // the close event never came
    assert_eq!(stopped(&h), Some(StopReason::Manual));
}

#[test]
fn destroy_fails_pending_messages_and_ignores_everything_after() {
    let mut h = Harness::with_token();
    let id = h.send(json!(1));
    h.online();
    let fx = h.input(Input::Destroy);
    assert!(fx.iter().any(|e| matches!(e, Effect::CloseSocket { .. })));
    assert!(events(&fx).contains(&Event::SendFailed {
        id,
        error: SendError::Destroyed
    }));
    assert!(h.input(Input::Connect).is_empty());
    assert_eq!(h.conn.send(h.now, raw(json!(2))), Err(SendError::Destroyed));
}

#[test]
fn every_state_change_is_announced_and_the_timer_tracks_the_deadline() {
    let mut h = Harness::with_token();
    let mut fx = h.online();
    fx.extend(h.input(closed(1006)));
    fx.extend(h.run_until(h.now + 1_000));
    fx.extend(h.input(Input::Opened));
    fx.extend(h.frame(auth_success(900)));
    let states: Vec<_> = events(&fx)
        .into_iter()
        .filter_map(|e| match e {
            Event::StateChanged { from, to } => Some((from.as_str(), to.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        [
            ("INITIAL", "CONNECTING"),
            ("CONNECTING", "CONNECTED"),
            ("CONNECTED", "DISCONNECTED"),
            ("DISCONNECTED", "CONNECTING"),
            ("CONNECTING", "CONNECTED"),
        ]
    );
    assert_eq!(ConnectionState::Connected.to_string(), "CONNECTED");
}
