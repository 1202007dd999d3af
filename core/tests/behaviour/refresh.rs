//! Token refresh before expiry, re-auth in place, refresh failures.

use crate::common::*;
use serde_json::json;
use std::time::Duration;
use tether_core::{
    AuthErrorCode, Config, ConnectionError, ConnectionState, Detail, Effect, Event, Input,
    RefreshFailure, StopReason,
};

fn refreshes(fx: &[Effect]) -> usize {
    count(fx, |e| *e == Effect::RefreshToken)
}

#[test]
fn refreshes_lead_before_expiry_and_reauths_in_place() {
    let mut h = Harness::with_token();
    h.online(); // lifetime 15 min, measured from now (server clock ignored)
    let t0 = h.now;
    assert_eq!(h.conn.snapshot().token_expires_at, Some(t0 + 900_000));
    let due = t0 + 900_000 - 60_000;
    // Keep the link alive with pongs until the refresh is due.
    let mut fx = Vec::new();
    while h.now < due {
        let step = h.run_until(h.now + 5_000);
        for f in frames(&step) {
            if f["type"] == "ping" {
                h.frame(pong(f["payload"]["seq"].as_u64().unwrap()));
            }
        }
        fx.extend(step);
    }
    assert_eq!(refreshes(&fx), 1);
    // At most one in flight, however many ticks.
    assert_eq!(refreshes(&h.wait(1_000)), 0);
    assert_eq!(refreshes(&h.wait(1_000)), 0);

    let fx = h.input(Input::TokenRefreshed {
        token: "tok2".into(),
        expires_in: Some(Duration::from_secs(900)),
    });
    assert!(fx.contains(&Effect::StoreToken("tok2".into())));
    assert_eq!(
        frames(&fx),
        [json!({"type": "auth", "payload": {"token": "tok2", "last_seq": null}})]
    );
    assert!(opens(&fx).is_empty());
    assert!(!fx.iter().any(|e| matches!(e, Effect::CloseSocket { .. })));
    assert_eq!(h.conn.state(), ConnectionState::Connected);
    let fx = h.frame(auth_success(900));
    assert!(
        events(&fx)
            .iter()
            .any(|e| matches!(e, Event::AuthSuccess { reauth: true, .. }))
    );
    assert!(
        !events(&fx)
            .iter()
            .any(|e| matches!(e, Event::StateChanged { .. }))
    );
}

/// A config whose keepalive stays out of the way of refresh timing.
fn quiet() -> Config {
    Config {
        keepalive: tether_core::Keepalive {
            interval: Duration::from_secs(3_600),
            ..Default::default()
        },
        ..Config::default()
    }
}

#[test]
fn lead_is_clamped_to_half_the_lifetime() {
    let mut h = Harness::with_token_config(quiet());
    h.input(Input::Connect);
    h.input(Input::Opened);
    h.frame(auth_success(60));
    let t0 = h.now;
    assert_eq!(h.conn.deadline(), Some(t0 + 30_000));
    assert_eq!(refreshes(&h.tick_at(t0 + 29_999)), 0);
    assert_eq!(refreshes(&h.tick_at(t0 + 30_000)), 1);
}

#[test]
fn expires_in_schedules_a_refresh_even_before_auth_success() {
    let mut h = Harness::new(quiet());
    h.input(Input::SetToken {
        token: "t".into(),
        expires_in: Some(Duration::from_secs(600)),
    });
    let t0 = h.now;
    h.input(Input::Connect);
    h.input(Input::Opened);
    // The connect timeout (10 s) comes first; the refresh is due at 540 s.
    assert_eq!(h.conn.deadline(), Some(t0 + 10_000));
    h.frame(auth_success(600));
    assert_eq!(h.conn.deadline(), Some(t0 + 540_000));
}

#[test]
fn expired_token_at_connect_refreshes_before_opening() {
    let mut h = Harness::new(Config::default());
    h.input(Input::SetToken {
        token: "old".into(),
        expires_in: Some(Duration::from_secs(1)),
    });
    h.now += 5_000;
    let fx = h.input(Input::Connect);
    assert_eq!(refreshes(&fx), 1);
    assert!(opens(&fx).is_empty());
    assert_eq!(h.conn.snapshot().detail, Detail::Refreshing { attempt: 0 });
    assert_eq!(h.conn.state(), ConnectionState::Connecting);
    let fx = h.input(Input::TokenRefreshed {
        token: "new".into(),
        expires_in: Some(Duration::from_secs(900)),
    });
    assert!(fx.contains(&Effect::StoreToken("new".into())));
    assert_eq!(opens(&fx), ["/api/ws/notification?token=new"]);
    assert_eq!(
        frames(&h.input(Input::Opened))[0]["payload"]["token"],
        "new"
    );
}

#[test]
fn reconnect_uses_the_newest_token() {
    let mut h = Harness::with_token();
    h.online();
    h.input(Input::TokenRefreshed {
        token: "fresh".into(),
        expires_in: None,
    });
    let (_, _, at) = scheduled(&h.input(closed(1006)))[0];
    assert_eq!(opens(&h.tick_at(at)), ["/api/ws/notification?token=fresh"]);
    assert_eq!(
        frames(&h.input(Input::Opened))[0]["payload"]["token"],
        "fresh"
    );
}

#[test]
fn a_token_refreshed_during_auth_is_used_right_after_auth_success() {
    let mut h = Harness::with_token();
    h.input(Input::Connect);
    h.input(Input::Opened);
    h.input(Input::TokenRefreshed {
        token: "fresh".into(),
        expires_in: Some(Duration::from_secs(900)),
    });
    let t0 = h.now;
    let fx = h.frame(auth_success(30)); // answers the old token
    let f = frames(&fx);
    assert_eq!(f.last().unwrap()["payload"]["token"], "fresh");
    // The expiry is the new token's, not the old one's.
    assert_eq!(h.conn.snapshot().token_expires_at, Some(t0 + 900_000));
}

#[test]
fn refresh_401_is_a_final_auth_failure() {
    let mut h = Harness::with_token();
    h.online();
    let fx = h.input(Input::RefreshFailed {
        failure: RefreshFailure::Rejected,
        message: "invalid_refresh".into(),
    });
    assert!(fx.contains(&Effect::ClearToken));
    assert!(fx.contains(&Effect::Navigate("/login".into())));
    assert!(fx.iter().any(|e| matches!(e, Effect::CloseSocket { .. })));
    assert!(matches!(
        h.conn.snapshot().detail,
        Detail::Stopped(StopReason::AuthFailed(_))
    ));
    assert!(opens(&h.wait(100_000)).is_empty());
}

#[test]
fn transient_refresh_failures_retry_while_valid_and_are_final_once_expired() {
    let mut h = Harness::with_token_config(quiet());
    h.input(Input::Connect);
    h.input(Input::Opened);
    h.frame(auth_success(120));
    let t0 = h.now;
    assert_eq!(refreshes(&h.tick_at(t0 + 60_000)), 1);
    for _ in 0..3 {
        let fx = h.input(Input::RefreshFailed {
            failure: RefreshFailure::Transient,
            message: "network".into(),
        });
        assert!(errors(&fx).contains(&ConnectionError::RefreshFailed {
            message: "network".into()
        }));
        assert_eq!(refreshes(&fx), 0);
        assert!(!fx.contains(&Effect::ClearToken));
        let due = h.conn.deadline().unwrap();
        assert!(due <= h.now + 30_000);
        assert_eq!(refreshes(&h.tick_at(due)), 1);
        assert_eq!(h.conn.state(), ConnectionState::Connected);
    }
    h.now = t0 + 120_001;
    let fx = h.input(Input::RefreshFailed {
        failure: RefreshFailure::Transient,
        message: "network".into(),
    });
    assert!(fx.contains(&Effect::ClearToken));
    assert!(fx.contains(&Effect::Navigate("/login".into())));
    assert!(events(&fx).iter().any(|e| matches!(
        e,
        Event::AuthError {
            code: AuthErrorCode::ExpiredToken,
            ..
        }
    )));
}

// ----- `expired_token` for a token of unknown expiry ------------------------

fn auth_errors(fx: &[Effect]) -> Vec<AuthErrorCode> {
    events(fx)
        .into_iter()
        .filter_map(|e| match e {
            Event::AuthError { code, .. } => Some(code),
            _ => None,
        })
        .collect()
}

fn is_final(fx: &[Effect]) -> bool {
    fx.contains(&Effect::ClearToken) || fx.iter().any(|e| matches!(e, Effect::Navigate(_)))
}

/// A stored token (no known expiry) refused with `expired_token`, then 4001.
fn refused_as_expired() -> (Harness, Vec<Effect>) {
    let mut h = Harness::with_token();
    h.input(Input::Connect);
    h.input(Input::Opened);
    let mut fx = h.frame(auth_error("expired_token"));
    fx.extend(h.input(closed(4001)));
    (h, fx)
}

#[test]
fn expired_token_for_a_stored_token_refreshes_once_and_reconnects_with_the_fresh_one() {
    let (mut h, fx) = refused_as_expired();
    let id = h.send(json!({"queued": 1}));
    assert_eq!(refreshes(&fx), 1);
    assert!(!is_final(&fx), "{fx:#?}");
    assert!(auth_errors(&fx).is_empty());
    assert!(fx.iter().any(|e| matches!(e, Effect::CloseSocket { .. })));
    assert_eq!(h.conn.snapshot().detail, Detail::Refreshing { attempt: 0 });
    assert_eq!(h.conn.state(), ConnectionState::Connecting);
    assert!(h.conn.snapshot().signed_in);
    // Nothing more until the refresh answers.
    assert_eq!(refreshes(&h.wait(60_000)), 0);

    let fx = h.input(Input::TokenRefreshed {
        token: "fresh".into(),
        expires_in: Some(Duration::from_secs(900)),
    });
    assert!(fx.contains(&Effect::StoreToken("fresh".into())));
    assert_eq!(opens(&fx), ["/api/ws/notification?token=fresh"]);
    assert_eq!(
        frames(&h.input(Input::Opened))[0]["payload"]["token"],
        "fresh"
    );
    let fx = h.frame(auth_success(900));
    assert_eq!(h.conn.state(), ConnectionState::Connected);
    assert_eq!(frames(&fx)[0]["payload"]["id"], id.as_str());

    // Recovered: a later `expired_token` (an admin expired the token on the
    // open socket) gets its own refresh.
    let fx = h.frame(auth_error("expired_token"));
    assert_eq!(refreshes(&fx), 1);
    assert!(!is_final(&fx), "{fx:#?}");
}

#[test]
fn a_second_expired_token_right_after_the_refresh_is_final() {
    let (mut h, _) = refused_as_expired();
    h.input(Input::TokenRefreshed {
        token: "fresh".into(),
        expires_in: None,
    });
    h.input(Input::Opened);
    let mut fx = h.frame(auth_error("expired_token"));
    fx.extend(h.input(closed(4001)));
    assert_eq!(refreshes(&fx), 0, "no loop");
    assert!(fx.contains(&Effect::ClearToken));
    assert!(fx.contains(&Effect::Navigate("/login".into())));
    assert_eq!(auth_errors(&fx), [AuthErrorCode::ExpiredToken]);
    assert_eq!(
        h.conn.snapshot().detail,
        Detail::Stopped(StopReason::AuthFailed(AuthErrorCode::ExpiredToken))
    );
    let later = h.wait(600_000);
    assert!(opens(&later).is_empty() && refreshes(&later) == 0);
}

#[test]
fn a_rejected_refresh_after_expired_token_is_final() {
    let (mut h, _) = refused_as_expired();
    let fx = h.input(Input::RefreshFailed {
        failure: RefreshFailure::Rejected,
        message: "invalid_refresh".into(),
    });
    assert!(fx.contains(&Effect::ClearToken));
    assert!(fx.contains(&Effect::Navigate("/login".into())));
    assert_eq!(
        auth_errors(&fx),
        [AuthErrorCode::Other("invalid_refresh".into())]
    );
    assert!(opens(&h.wait(600_000)).is_empty());
}

/// With refresh off the driver answers at once with a transient failure:
/// the token has expired, so that is final, as before.
#[test]
fn without_a_refresh_means_expired_token_stays_final() {
    let (mut h, _) = refused_as_expired();
    let fx = h.input(Input::RefreshFailed {
        failure: RefreshFailure::Transient,
        message: "token refresh is off".into(),
    });
    assert!(fx.contains(&Effect::ClearToken));
    assert!(fx.contains(&Effect::Navigate("/login".into())));
    assert_eq!(auth_errors(&fx), [AuthErrorCode::ExpiredToken]);
    assert!(opens(&h.wait(600_000)).is_empty());
}

#[test]
fn other_auth_errors_stay_final_without_a_refresh() {
    for code in ["invalid_token", "revoked"] {
        let mut h = Harness::with_token();
        h.input(Input::Connect);
        h.input(Input::Opened);
        let fx = h.frame(auth_error(code));
        assert_eq!(refreshes(&fx), 0, "{code}");
        assert!(is_final(&fx), "{code}");
    }
}
