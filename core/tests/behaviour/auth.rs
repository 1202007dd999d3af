//! Auth first, and final authentication failures.

use crate::common::*;
use serde_json::json;
use tether_core::{
    AuthErrorCode, Config, ConnectionState, Detail, Effect, Event, Input, SendError, StopReason,
};

#[test]
fn socket_url_carries_the_token_and_auth_is_the_first_frame() {
    let mut h = Harness::with_token();
    let fx = h.input(Input::Connect);
    assert_eq!(opens(&fx), ["/api/ws/notification?token=tok"]);
    assert_eq!(h.conn.state(), ConnectionState::Connecting);
    assert!(frames(&fx).is_empty());

    let fx = h.input(Input::Opened);
    assert_eq!(
        frames(&fx),
        [json!({"type": "auth", "payload": {"token": "tok", "last_seq": null}})]
    );
    let snap = h.conn.snapshot();
    assert!(snap.authenticating());
    assert_eq!(snap.detail, Detail::Authenticating { attempt: 0 });
    assert_eq!(snap.state(), ConnectionState::Connecting);
}

#[test]
fn token_is_appended_to_an_existing_query_and_percent_encoded() {
    let config = Config {
        url: "ws://h/ws?v=1".into(),
        ..Config::default()
    };
    let mut h = Harness::new(config);
    h.input(Input::SetToken {
        token: "a+b/c".into(),
        expires_in: None,
    });
    let fx = h.input(Input::Connect);
    assert_eq!(opens(&fx), ["ws://h/ws?v=1&token=a%2Bb%2Fc"]);
    let debug = format!("{fx:?}");
    assert!(!debug.contains("a%2Bb"), "{debug}");

    let config = Config {
        token_in_query: false,
        ..Config::default()
    };
    let mut h = Harness::with_token_config(config);
    assert_eq!(opens(&h.input(Input::Connect)), ["/api/ws/notification"]);
}

#[test]
fn nothing_but_auth_is_sent_before_auth_success() {
    let mut h = Harness::with_token();
    h.send(json!({"queued": 1}));
    h.input(Input::Connect);
    let mut fx = h.input(Input::Opened);
    h.send(json!({"queued": 2}));
    fx.extend(h.input(Input::Visible));
    fx.extend(h.run_until(h.now + 9_000)); // past several ping intervals
    fx.extend(h.drain());
    assert_eq!(frame_types(&fx), ["auth"]);

    let fx = h.frame(auth_success(900));
    assert_eq!(frame_types(&fx), ["send", "send"]);
    let ev = events(&fx);
    assert!(ev.contains(&Event::Connected {
        user_id: USER.into()
    }));
    assert!(ev.contains(&Event::StateChanged {
        from: ConnectionState::Connecting,
        to: ConnectionState::Connected
    }));
    assert!(matches!(ev[0], Event::AuthSuccess { reauth: false, .. }));
}

#[test]
fn connect_without_a_token_is_a_final_missing_token_failure() {
    let mut h = Harness::new(Config::default());
    let fx = h.input(Input::Connect);
    assert!(opens(&fx).is_empty());
    assert!(fx.contains(&Effect::ClearToken));
    assert!(fx.contains(&Effect::Navigate("/login".into())));
    assert!(events(&fx).contains(&Event::AuthError {
        code: AuthErrorCode::MissingToken,
        message: "no access token; sign in".into()
    }));
    assert_eq!(
        h.conn.snapshot().detail,
        Detail::Stopped(StopReason::AuthFailed(AuthErrorCode::MissingToken))
    );
}

#[test]
fn auth_error_then_4001_is_one_final_failure() {
    let mut h = Harness::with_token();
    let id = h.send(json!("x"));
    h.input(Input::Connect);
    h.input(Input::Opened);
    let mut fx = h.frame(auth_error("invalid_token"));
    fx.extend(h.input(closed(4001)));
    assert_eq!(count(&fx, |e| *e == Effect::ClearToken), 1);
    assert_eq!(
        count(&fx, |e| matches!(e, Effect::Navigate(r) if r == "/login")),
        1
    );
    let auth_errors: Vec<_> = events(&fx)
        .into_iter()
        .filter(|e| matches!(e, Event::AuthError { .. }))
        .collect();
    assert_eq!(
        auth_errors,
        [Event::AuthError {
            code: AuthErrorCode::InvalidToken,
            message: "nope".into()
        }]
    );
    assert!(events(&fx).contains(&Event::SendFailed {
        id,
        error: SendError::AuthFailed
    }));
    assert_eq!(h.conn.state(), ConnectionState::Disconnected);
    assert_eq!(h.conn.snapshot().pending, 0);
    assert_eq!(
        h.conn.send(h.now, raw(json!(1))),
        Err(SendError::AuthFailed),
        "no queueing for a dead session"
    );

    // Nothing brings it back but Connect.
    let mut later = h.wait(120_000);
    later.extend(h.input(Input::Online));
    later.extend(h.input(Input::Visible));
    later.extend(h.wait(600_000));
    assert!(opens(&later).is_empty(), "{later:?}");
    assert_eq!(h.conn.deadline(), None);

    // After a new login, Connect works again.
    h.input(Input::SetToken {
        token: "tok2".into(),
        expires_in: None,
    });
    let fx = h.input(Input::Connect);
    assert_eq!(opens(&fx), ["/api/ws/notification?token=tok2"]);
}

#[test]
fn closes_4001_4003_1008_are_final() {
    for (code, name) in [
        (4001, "unauthorized"),
        (4003, "forbidden"),
        (1008, "policy_violation"),
    ] {
        let mut h = Harness::with_token();
        h.online();
        let fx = h.input(closed(code));
        assert!(fx.contains(&Effect::ClearToken), "{code}");
        assert!(fx.contains(&Effect::Navigate("/login".into())), "{code}");
        assert!(events(&fx).iter().any(
            |e| matches!(e, Event::AuthError { code: AuthErrorCode::Other(c), .. } if c == name)
        ));
        assert!(scheduled(&fx).is_empty());
        assert!(opens(&h.wait(60_000)).is_empty());
    }
}

#[test]
fn final_failure_while_authenticating_also_closes_our_socket() {
    let mut h = Harness::with_token();
    h.input(Input::Connect);
    h.input(Input::Opened);
    let fx = h.frame(auth_error("revoked"));
    assert!(fx.iter().any(|e| matches!(e, Effect::CloseSocket { .. })));
    assert_eq!(
        h.conn.snapshot().detail,
        Detail::Stopped(StopReason::AuthFailed(AuthErrorCode::Revoked))
    );
}

#[test]
fn secrets_never_show_in_debug_output() {
    let mut h = Harness::new(Config::default());
    let secret = "eyJhbGciOiJIUzI1NiJ9.secret";
    let mut fx = h.input(Input::SetToken {
        token: secret.into(),
        expires_in: None,
    });
    fx.extend(h.input(Input::Connect));
    fx.retain(|e| !matches!(e, Effect::SendFrame(_))); // the auth frame carries it, by design
    let debug = format!("{fx:?} {:?} {:?}", h.conn, h.conn.snapshot());
    assert!(!debug.contains("secret"), "{debug}");
}
