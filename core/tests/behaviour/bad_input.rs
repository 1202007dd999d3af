//! Bad frames: reported, never fatal, never acted on before auth.

use crate::common::*;
use serde_json::json;
use tether_core::{Config, ConnectionError, ConnectionState, Event, Input};
use tether_protocol::DecodeError;

#[test]
fn bad_frames_are_errors_and_the_connection_stays() {
    let config = Config {
        max_frame_bytes: 1_000,
        ..Config::default()
    };
    let mut h = Harness::with_token_config(config);
    h.online();
    type Check = fn(&ConnectionError) -> bool;
    let cases: Vec<(Input, Check)> = vec![
        (Input::Frame("not json".into()), |e| {
            matches!(e, ConnectionError::Decode(DecodeError::Malformed(_)))
        }),
        (
            Input::Frame(r#"{"type":"ack","payload":{"id":7}}"#.into()),
            |e| {
                matches!(
                    e,
                    ConnectionError::Decode(DecodeError::InvalidPayload { .. })
                )
            },
        ),
        (Input::Frame(r#"{"type":"ack","payload":{}}"#.into()), |e| {
            matches!(
                e,
                ConnectionError::Decode(DecodeError::InvalidPayload { .. })
            )
        }),
        (
            Input::Frame(format!(r#"{{"type":"x","p":"{}"}}"#, "y".repeat(2_000))),
            |e| matches!(e, ConnectionError::Decode(DecodeError::TooLarge { .. })),
        ),
        (Input::BinaryFrame { len: 12 }, |e| {
            *e == ConnectionError::BinaryFrame { len: 12 }
        }),
        (
            Input::Frame(
                json!({"type":"error","payload":{"code":"rate_limited","message":"slow"}})
                    .to_string(),
            ),
            |e| matches!(e, ConnectionError::Server { code, .. } if code == "rate_limited"),
        ),
    ];
    for (input, check) in cases {
        let fx = h.input(input);
        let errs = errors(&fx);
        assert_eq!(errs.len(), 1, "{fx:?}");
        assert!(check(&errs[0]), "{errs:?}");
        assert_eq!(h.conn.snapshot().last_error.as_ref(), Some(&errs[0]));
        assert_eq!(h.conn.state(), ConnectionState::Connected);
        assert!(frames(&fx).is_empty());
    }
}

#[test]
fn frames_of_types_the_contract_does_not_define_are_the_apps_messages() {
    let mut h = Harness::with_token();
    h.online();
    let fx = h.input(Input::Frame(r#"{"type":"party","payload":[1, 2]}"#.into()));
    assert!(errors(&fx).is_empty(), "{fx:?}");
    assert_eq!(
        events(&fx),
        [Event::Message {
            kind: "party".into(),
            payload: tether_protocol::RawJson::new("[1, 2]").unwrap(),
        }]
    );
    assert_eq!(h.conn.state(), ConnectionState::Connected);
}

#[test]
fn frames_before_auth_success_are_reported_and_never_acted_on() {
    let mut h = Harness::with_token();
    let id = h.send(json!(1));
    h.input(Input::Connect);
    h.input(Input::Opened);
    let mut fx = h.frame(notification(1));
    fx.extend(h.frame(ack(id.as_str())));
    fx.extend(h.frame(pong(1)));
    let ev = events(&fx);
    assert_eq!(ev.len(), 3, "{ev:?}");
    assert!(
        ev.iter()
            .all(|e| matches!(e, Event::Error(ConnectionError::NotAuthenticated { .. })))
    );
    assert_eq!(h.conn.snapshot().pending, 1);
    assert_eq!(h.conn.state(), ConnectionState::Connecting);
    // auth_success before the socket even opened is not trusted either.
    let mut h = Harness::with_token();
    h.input(Input::Connect);
    let fx = h.frame(auth_success(900));
    assert_eq!(h.conn.state(), ConnectionState::Connecting);
    assert_eq!(errors(&fx).len(), 1);
}

#[test]
fn arbitrary_garbage_never_panics() {
    let mut h = Harness::with_token();
    h.online();
    for s in [
        "",
        "{",
        "null",
        "[]",
        "\u{0}",
        "{\"type\":null}",
        "{\"type\":\"auth_success\"}",
    ] {
        h.frame(s);
    }
    assert_eq!(h.conn.state(), ConnectionState::Connected);
}
