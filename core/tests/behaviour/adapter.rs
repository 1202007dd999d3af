//! Protocol adapters on the fake transport: the Chanx adapter's keepalive,
//! messages, fire-and-forget sends and close codes; the contract's app
//! messages; an adapter without keepalive.

use crate::common::*;
use tether_core::{
    Adapter, AuthErrorCode, AuthOutcome, ChanxAuth, Config, Connection, ConnectionError,
    ConnectionState, Effect, Event, Input, RawJson, Secret,
};

const OK: &str = r#"{"action": "authentication", "payload": {"status_code": 200, "status_text": "OK", "data": {"detail": "OK"}}}"#;

fn chanx() -> Harness {
    let mut h = Harness {
        conn: Connection::with_adapter(Config::default(), Box::new(ChanxAuth::query())),
        now: 1_000,
    };
    h.input(Input::SetToken {
        token: Secret::new("tok"),
        expires_in: None,
    });
    h
}

fn chanx_online() -> Harness {
    let mut h = chanx();
    h.input(Input::Connect);
    h.input(Input::Opened);
    h.frame(OK);
    assert_eq!(h.conn.state(), ConnectionState::Connected);
    h
}

fn texts(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::SendFrame(text) => Some(text.clone()),
            _ => None,
        })
        .collect()
}

fn chanx_pong(reference: &str) -> String {
    format!(r#"{{"action": "pong", "payload": null, "version": 1, "ref": "{reference}"}}"#)
}

#[test]
fn chanx_keepalive_pings_with_a_ref_and_its_pong_keeps_the_link() {
    let mut h = chanx_online();
    for round in 1..=3 {
        let fx = h.run_until(h.now + 5_000);
        assert_eq!(
            texts(&fx),
            [format!(
                r#"{{"action":"ping","ref":"tether-ping-{round}"}}"#
            )]
        );
        let fx = h.frame(chanx_pong(&format!("tether-ping-{round}")));
        assert!(events(&fx).iter().any(|e| matches!(e, Event::Pong { .. })));
        assert!(errors(&fx).is_empty(), "{fx:?}");
    }
    assert_eq!(h.conn.state(), ConnectionState::Connected);
}

#[test]
fn chanx_withheld_pongs_are_a_dead_link() {
    let mut h = chanx_online();
    let fx = h.run_until(h.now + 5_000);
    assert_eq!(texts(&fx).len(), 1);
    // A pong for someone else's ping does not count.
    h.frame(chanx_pong("app-ref"));
    let fx = h.run_until(h.now + 4_000);
    assert!(
        errors(&fx)
            .iter()
            .any(|e| matches!(e, ConnectionError::KeepaliveTimeout { .. }))
    );
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::CloseSocket {
            code: tether_core::CLOSE_TIMEOUT,
            ..
        }
    )));
    assert_eq!(scheduled(&fx).len(), 1, "reconnects");
}

#[test]
fn chanx_app_frames_are_messages_and_errors_keep_the_socket() {
    let mut h = chanx_online();
    let fx = h.frame(
        r#"{"action": "notification", "payload": {"id": 1, "title": "Hi", "body": "th\u00e9re"}}"#,
    );
    assert_eq!(
        events(&fx),
        [Event::Message {
            kind: "notification".into(),
            payload: RawJson::new(r#"{"id": 1, "title": "Hi", "body": "th\u00e9re"}"#).unwrap(),
        }]
    );
    let fx = h.frame(r#"{"action": "error", "payload": [{"type": "union_tag_invalid", "loc": [], "msg": "Input tag 'nope' found"}], "version": 1, "ref": "r2"}"#);
    assert_eq!(
        errors(&fx),
        [ConnectionError::Server {
            code: "union_tag_invalid".into(),
            message: "Input tag 'nope' found".into()
        }]
    );
    assert!(!fx.iter().any(|e| matches!(e, Effect::CloseSocket { .. })));
    let fx = h.frame(r#"{"type":"ping"}"#);
    assert!(matches!(
        errors(&fx)[..],
        [ConnectionError::Decode(
            tether_protocol::DecodeError::Malformed(_)
        )]
    ));
    assert_eq!(h.conn.state(), ConnectionState::Connected);
}

#[test]
fn chanx_app_frames_before_authentication_are_not_delivered() {
    let mut h = chanx();
    h.input(Input::Connect);
    h.input(Input::Opened);
    let fx = h.frame(r#"{"action":"notification","payload":{"id":1}}"#);
    assert!(
        !events(&fx)
            .iter()
            .any(|e| matches!(e, Event::Message { .. }))
    );
    assert!(matches!(
        errors(&fx)[..],
        [ConnectionError::NotAuthenticated { .. }]
    ));
}

#[test]
fn chanx_sends_are_the_apps_frame_sent_once_and_never_kept() {
    let mut h = chanx();
    h.input(Input::Connect);
    // Queued while connecting: sent once on connect.
    let body = serde_json::json!({"action": "echo", "payload": {"text": "héllo"}});
    h.send(body.clone());
    assert_eq!(h.conn.snapshot().pending, 1);
    h.input(Input::Opened);
    let fx = h.frame(OK);
    assert_eq!(texts(&fx), [body.to_string()]);
    assert_eq!(h.conn.snapshot().pending, 0, "nothing will ack it");
    // Sent at once while connected, and not kept either.
    let fx_send = {
        h.send(serde_json::json!({"action": "ping"}));
        h.drain()
    };
    assert_eq!(texts(&fx_send), [r#"{"action":"ping"}"#]);
    assert_eq!(h.conn.snapshot().pending, 0);
    // A reconnect resends nothing.
    h.input(closed(1006));
    let fx = h.run_until(h.conn.deadline().unwrap());
    assert_eq!(opens(&fx).len(), 1);
    h.input(Input::Opened);
    let fx = h.frame(OK);
    assert!(texts(&fx).is_empty(), "{fx:?}");
    assert!(!events(&fx).iter().any(|e| matches!(e, Event::Ack { .. })));
}

#[test]
fn chanx_close_4401_and_4403_are_final() {
    for code in [4401, 4403] {
        let mut h = chanx_online();
        let fx = h.input(closed(code));
        assert!(
            events(&fx)
                .iter()
                .any(|e| matches!(e, Event::AuthError { .. })),
            "{code}: {fx:?}"
        );
        assert!(fx.contains(&Effect::ClearToken));
        assert!(scheduled(&fx).is_empty());
        assert!(opens(&h.run_until(h.now + 600_000)).is_empty());
        assert!(opens(&h.input(Input::Online)).is_empty());
    }
}

#[test]
fn chanx_401_frame_is_final_without_waiting_for_the_close() {
    let mut h = chanx();
    h.input(Input::Connect);
    h.input(Input::Opened);
    let fx = h.frame(r#"{"action": "authentication", "payload": {"status_code": 401, "status_text": "Unauthorized", "data": {"detail": "Invalid token."}}}"#);
    assert!(events(&fx).contains(&Event::AuthError {
        code: AuthErrorCode::InvalidToken,
        message: "Invalid token.".into()
    }));
    let fx = h.input(closed(4401)); // the server's close, late
    assert!(fx.is_empty(), "{fx:?}");
    assert!(opens(&h.run_until(h.now + 600_000)).is_empty());
}

#[test]
fn chanx_outage_503_then_4503_is_retried_with_the_same_token() {
    let mut h = chanx();
    h.input(Input::Connect);
    h.input(Input::Opened);
    let fx = h.frame(r#"{"action": "authentication", "payload": {"status_code": 503, "status_text": "Service Unavailable", "data": {"detail": "Authentication is temporarily unavailable."}}}"#);
    assert!(
        !events(&fx)
            .iter()
            .any(|e| matches!(e, Event::AuthError { .. }))
    );
    assert_eq!(
        errors(&fx),
        [ConnectionError::Server {
            code: "status_503".into(),
            message: "Authentication is temporarily unavailable.".into()
        }]
    );
    let fx = h.input(closed(4503));
    assert_eq!(scheduled(&fx).len(), 1);
    assert!(!fx.contains(&Effect::ClearToken));
    let fx = h.run_until(h.conn.deadline().unwrap());
    assert_eq!(opens(&fx), ["/api/ws/notification?token=tok"]);
    h.input(Input::Opened);
    h.frame(OK);
    assert_eq!(h.conn.state(), ConnectionState::Connected);
}

#[test]
fn the_contract_hands_dotted_frame_types_to_the_app() {
    let mut h = Harness::with_token();
    h.online();
    let fx = h.frame(r#"{"type":"chat.typing","payload":{"who":"ann"}}"#);
    assert_eq!(
        events(&fx),
        [Event::Message {
            kind: "chat.typing".into(),
            payload: RawJson::new(r#"{"who":"ann"}"#).unwrap(),
        }]
    );
}

/// An adapter whose server keeps the link alive itself: it pings with
/// `"tick"`, which is answered with `"tock"`; the client sends no pings.
#[derive(Debug)]
struct ServerPings;

impl Adapter for ServerPings {
    fn auth_frame(&self, _token: Option<&Secret>, _last_seq: Option<u64>) -> Option<String> {
        None
    }

    fn auth_response(&self, frame: &str) -> Option<AuthOutcome> {
        (frame == "hi").then(|| AuthOutcome::Accepted {
            user_id: "u".into(),
            lifetime: None,
            max_frame: None,
        })
    }

    fn ping_frame(&self, _seq: u64) -> Option<String> {
        None
    }

    fn decode(&self, frame: &str, limit: usize) -> tether_core::Incoming {
        if frame == "tick" {
            return tether_core::Incoming::Reply("tock".into());
        }
        tether_core::ContractAuth.decode(frame, limit)
    }
}

#[test]
fn an_adapter_without_client_keepalive_sends_no_pings_and_answers_the_servers() {
    let mut h = Harness {
        conn: Connection::with_adapter(Config::default(), Box::new(ServerPings)),
        now: 1_000,
    };
    h.input(Input::SetToken {
        token: Secret::new("t"),
        expires_in: None,
    });
    h.input(Input::Connect);
    h.input(Input::Opened);
    h.frame("hi");
    let fx = h.run_until(h.now + 120_000);
    assert!(texts(&fx).is_empty(), "{fx:?}");
    assert_eq!(h.conn.state(), ConnectionState::Connected);
    assert_eq!(h.conn.deadline(), None);
    let fx = h.frame("tick");
    assert_eq!(texts(&fx), ["tock"]);
    // A visible page probes nothing either.
    let fx = h.input(Input::Visible);
    assert!(texts(&fx).is_empty());
    assert_eq!(h.conn.state(), ConnectionState::Connected);
}
