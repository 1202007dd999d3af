//! Pluggable handshakes: the Chanx server-initiated one and a custom handler.

use crate::common::*;
use std::time::Duration;
use tether_core::{
    Adapter, AuthErrorCode, AuthOutcome, ChanxAuth, Config, Connection, ConnectionState, Effect,
    Event, Input, Secret,
};

fn chanx(cookie: bool) -> Harness {
    Harness {
        conn: Connection::with_adapter(Config::default(), Box::new(ChanxAuth { cookie })),
        now: 1_000,
    }
}

const CHANX_OK: &str = r#"{"action":"authentication","payload":{"status_code":200,"data":{"detail":"OK","user_id":"u1"}}}"#;

#[test]
fn chanx_waits_for_the_server_to_speak_first() {
    let mut h = chanx(false);
    h.input(Input::SetToken {
        token: Secret::new("tok"),
        expires_in: None,
    });
    assert_eq!(
        opens(&h.input(Input::Connect)),
        ["/api/ws/notification?token=tok"]
    );
    let fx = h.input(Input::Opened);
    assert!(frames(&fx).is_empty(), "the client sends nothing first");
    assert!(h.conn.snapshot().authenticating());
    let fx = h.frame(CHANX_OK);
    assert!(events(&fx).contains(&Event::Connected {
        user_id: "u1".into()
    }));
    assert_eq!(h.conn.state(), ConnectionState::Connected);
}

#[test]
fn chanx_refusal_is_final() {
    let mut h = chanx(false);
    h.input(Input::SetToken {
        token: Secret::new("tok"),
        expires_in: None,
    });
    h.input(Input::Connect);
    h.input(Input::Opened);
    let fx = h.frame(r#"{"action":"authentication","payload":{"status_code":401}}"#);
    assert!(fx.contains(&Effect::ClearToken));
    assert!(fx.contains(&Effect::Navigate("/login".into())));
    assert!(events(&fx).iter().any(|e| matches!(
        e,
        Event::AuthError {
            code: AuthErrorCode::InvalidToken,
            ..
        }
    )));
    assert_eq!(h.conn.state(), ConnectionState::Disconnected);
    assert!(
        opens(&h.input(Input::Online)).is_empty(),
        "no reconnect after a final refusal"
    );
}

#[test]
fn chanx_with_cookies_connects_without_a_token() {
    let mut h = chanx(true);
    let fx = h.input(Input::Connect);
    assert_eq!(opens(&fx), ["/api/ws/notification"]);
    h.input(Input::Opened);
    h.frame(CHANX_OK);
    assert_eq!(h.conn.state(), ConnectionState::Connected);
    // The contract's handler, by contrast, needs a token.
    let mut contract = Harness::new(Config::default());
    let fx = contract.input(Input::Connect);
    assert!(opens(&fx).is_empty());
    assert!(events(&fx).iter().any(|e| matches!(
        e,
        Event::AuthError {
            code: AuthErrorCode::MissingToken,
            ..
        }
    )));
}

#[test]
fn chanx_takes_a_refreshed_token_by_reconnecting() {
    let mut h = chanx(false);
    h.input(Input::SetToken {
        token: Secret::new("old"),
        expires_in: None,
    });
    h.input(Input::Connect);
    h.input(Input::Opened);
    h.frame(CHANX_OK);
    let fx = h.input(Input::TokenRefreshed {
        token: Secret::new("new"),
        expires_in: Some(Duration::from_secs(300)),
    });
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::CloseSocket { code: 1000, .. }))
    );
    assert_eq!(opens(&fx), ["/api/ws/notification?token=new"]);
    assert!(frames(&fx).is_empty());
}

/// A handler of one's own: a `hello` frame with the token, answered by
/// `welcome` or `go_away`.
#[derive(Debug)]
struct Hello;

impl Adapter for Hello {
    fn auth_frame(&self, token: Option<&Secret>, _last_seq: Option<u64>) -> Option<String> {
        Some(format!(r#"{{"hello":"{}"}}"#, token?.expose()))
    }

    fn auth_response(&self, frame: &str) -> Option<AuthOutcome> {
        match frame {
            "welcome" => Some(AuthOutcome::Accepted {
                user_id: "me".into(),
                lifetime: Some(Duration::from_secs(100)),
                max_frame: None,
            }),
            "go_away" => Some(AuthOutcome::Refused {
                code: AuthErrorCode::Revoked,
                message: "bye".into(),
            }),
            _ => None,
        }
    }
}

#[test]
fn a_custom_handler_drives_the_handshake_and_the_token_lifetime() {
    let mut h = Harness {
        conn: Connection::with_adapter(Config::default(), Box::new(Hello)),
        now: 1_000,
    };
    h.input(Input::SetToken {
        token: Secret::new("t"),
        expires_in: None,
    });
    h.input(Input::Connect);
    let fx = h.input(Input::Opened);
    assert_eq!(sent_texts(&fx), [r#"{"hello":"t"}"#]);
    h.frame("welcome");
    assert_eq!(h.conn.state(), ConnectionState::Connected);
    // The handler's lifetime schedules the refresh.
    assert_eq!(h.conn.snapshot().token_expires_at, Some(101_000));
    // In-place re-auth by default, then a refusal is final.
    let fx = h.input(Input::TokenRefreshed {
        token: Secret::new("t2"),
        expires_in: None,
    });
    assert_eq!(sent_texts(&fx), [r#"{"hello":"t2"}"#]);
    let fx = h.frame("go_away");
    assert!(fx.contains(&Effect::Navigate("/login".into())));
}

fn sent_texts(effects: &[Effect]) -> Vec<&str> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::SendFrame(text) => Some(text.as_str()),
            _ => None,
        })
        .collect()
}
