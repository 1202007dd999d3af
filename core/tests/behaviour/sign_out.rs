//! Signing out, and the snapshot's derived fields.

use crate::common::*;
use serde_json::json;
use tether_core::{
    ChanxAuth, Config, Connection, ConnectionState, Detail, Effect, Event, Input, SendError,
    StopReason,
};

#[test]
fn sign_out_closes_with_1000_clears_the_token_and_stays_down() {
    let mut h = Harness::with_token();
    h.online();
    assert!(h.conn.snapshot().signed_in);
    let pending = h.send(json!("unacked"));
    let fx = h.input(Input::SignOut);
    assert!(fx.contains(&Effect::CloseSocket {
        code: 1000,
        reason: "Signed out".into()
    }));
    assert!(fx.contains(&Effect::ClearToken));
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::Navigate(_))),
        "navigation is the app's choice"
    );
    let ev = events(&fx);
    assert!(ev.contains(&Event::SignedOut));
    assert!(ev.contains(&Event::SendFailed {
        id: pending,
        error: SendError::SignedOut
    }));
    let snap = h.conn.snapshot();
    assert_eq!(snap.detail, Detail::Stopped(StopReason::SignedOut));
    assert_eq!(snap.state(), ConnectionState::Disconnected);
    assert!(!snap.signed_in);
    assert_eq!(h.conn.deadline(), None, "nothing scheduled");
    // Nothing brings it back by itself: not the close, not the network, not
    // the page becoming visible.
    for input in [closed(1000), Input::Offline, Input::Online, Input::Visible] {
        assert!(opens(&h.input(input)).is_empty());
    }
    assert!(opens(&h.run_until(h.now + 600_000)).is_empty());
    // A new sign-in does, without resuming the old user's position.
    h.input(Input::SetToken {
        token: "t2".into(),
        expires_in: None,
    });
    assert!(h.conn.snapshot().signed_in);
    assert_eq!(
        opens(&h.input(Input::Connect)),
        ["/api/ws/notification?token=t2"]
    );
    let auth = frames(&h.input(Input::Opened));
    assert_eq!(auth[0]["payload"]["last_seq"], serde_json::Value::Null);
}

#[test]
fn sign_out_while_retrying_or_idle_cancels_the_retry() {
    let mut h = Harness::with_token();
    h.online();
    let (_, _, at) = scheduled(&h.input(closed(1006)))[0];
    let fx = h.input(Input::SignOut);
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::CloseSocket { .. })),
        "no socket to close"
    );
    assert!(opens(&h.run_until(at + 60_000)).is_empty());

    let mut idle = Harness::with_token();
    let fx = idle.input(Input::SignOut);
    assert!(fx.contains(&Effect::ClearToken));
    assert!(events(&fx).contains(&Event::SignedOut));
    assert!(!idle.conn.snapshot().signed_in);
}

#[test]
fn a_refresh_answer_after_sign_out_does_not_sign_back_in() {
    let mut h = Harness::with_token();
    h.input(Input::Connect);
    h.input(Input::Opened);
    h.frame(auth_success(100));
    // Refresh is due at half the lifetime; nothing answers it yet.
    let due = h.now + 50_000;
    h.now = due;
    let fx = h.input(Input::Tick);
    assert!(fx.contains(&Effect::RefreshToken), "{fx:?}");
    h.input(Input::SignOut);
    let fx = h.input(Input::TokenRefreshed {
        token: "fresh".into(),
        expires_in: None,
    });
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::StoreToken(_))),
        "{fx:?}"
    );
    assert!(!h.conn.snapshot().signed_in);
    assert_eq!(h.conn.state(), ConnectionState::Disconnected);
}

#[test]
fn messages_sent_after_sign_out_wait_for_the_next_sign_in() {
    let mut h = Harness::with_token();
    h.input(Input::SignOut);
    let id = h.send(json!("later"));
    h.input(Input::SetToken {
        token: "t2".into(),
        expires_in: None,
    });
    h.input(Input::Connect);
    h.input(Input::Opened);
    let fx = h.frame(auth_success(900));
    assert!(
        frames(&fx)
            .iter()
            .any(|f| f["payload"]["id"] == id.as_str())
    );
}

#[test]
fn a_cookie_handshake_counts_as_signed_in_until_it_fails_or_signs_out() {
    let mut conn =
        Connection::with_adapter(Config::default(), Box::new(ChanxAuth { cookie: true }));
    assert!(conn.snapshot().signed_in);
    conn.handle(0, Input::SignOut);
    assert!(!conn.snapshot().signed_in);
}

#[test]
fn the_snapshots_derived_fields_follow_its_detail() {
    let mut h = Harness::with_token();
    let snap = h.conn.snapshot();
    assert_eq!(
        (snap.state(), snap.attempt(), snap.next_retry_at()),
        (ConnectionState::Initial, 0, None)
    );
    h.input(Input::Connect);
    h.input(Input::Opened);
    let snap = h.conn.snapshot();
    assert!(snap.authenticating());
    assert_eq!(snap.state(), ConnectionState::Connecting);
    h.frame(auth_success(900));
    let (attempt, _, at) = scheduled(&h.input(closed(1006)))[0];
    let snap = h.conn.snapshot();
    assert!(!snap.authenticating());
    assert_eq!(snap.attempt(), attempt);
    assert_eq!(snap.next_retry_at(), Some(at));
    h.tick_at(at);
    let snap = h.conn.snapshot();
    assert_eq!(snap.detail, Detail::Opening { attempt });
    assert_eq!((snap.attempt(), snap.next_retry_at()), (attempt, None));
    h.input(Input::Disconnect);
    assert_eq!(h.conn.snapshot().state(), ConnectionState::Disconnecting);
}
