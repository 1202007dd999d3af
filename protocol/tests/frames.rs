//! Frames checked against serde_json's own reading of them on generated
//! input: every frame encodes to the JSON the contract shows, decodes back to
//! itself, no input panics, and no error repeats a string of the frame.

use proptest::prelude::*;
use serde_json::{Value as Serde, json};
use tether_protocol::*;

fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        ".*",
        "[\"\\\\/\u{0}-\u{1f}a-z\u{7f}\u{e9}\u{1F600}\u{2028}]{0,12}",
    ]
}

fn any_json() -> impl Strategy<Value = Serde> {
    let leaf = prop_oneof![
        Just(Serde::Null),
        any::<bool>().prop_map(Serde::Bool),
        any::<u64>().prop_map(|n| json!(n)),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e300f64..1e300).prop_map(|n| json!(n)),
        any_string().prop_map(Serde::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Serde::Array),
            prop::collection::btree_map(any_string(), inner, 0..6)
                .prop_map(|m| Serde::Object(m.into_iter().collect())),
        ]
    })
}

/// Text that is often almost JSON: pieces of JSON glued at random.
fn json_ish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("{"),
        Just("}"),
        Just("["),
        Just("]"),
        Just(","),
        Just(":"),
        Just("\""),
        Just("\\"),
        Just("\\u"),
        Just("d83d"),
        Just("\\ude00"),
        Just("00e9"),
        Just("0"),
        Just("1"),
        Just("-"),
        Just("."),
        Just("e"),
        Just("E+"),
        Just("12"),
        Just("true"),
        Just("null"),
        Just("fals"),
        Just(" "),
        Just("\n"),
        Just("\t"),
        Just("a"),
        Just("\u{1}"),
        Just("é"),
        Just("\"k\":"),
        Just("\"v\""),
    ];
    prop::collection::vec(piece, 0..14).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn server_frames_round_trip_through_serde_json(
        seq in any::<u64>(), a in any_string(), b in any_string(), c in any_string(),
    ) {
        let frames = [
            ServerMessage::AuthSuccess(AuthSuccess { user_id: a.clone(), authenticated_at: b.clone(), expires_at: c.clone(), max_frame: Some(seq) }),
            ServerMessage::AuthError(AuthError { code: AuthErrorCode::from(a.clone()), message: b.clone() }),
            ServerMessage::Pong(Pong { seq }),
            ServerMessage::Notification(Notification { seq, id: a.clone(), title: b.clone(), body: c.clone(), created_at: a.clone() }),
            ServerMessage::Ack(Ack { id: c.clone(), topic: None, offset: None }),
            ServerMessage::Ack(Ack { id: a.clone(), topic: Some(b.clone()), offset: Some(seq) }),
            ServerMessage::Nack(Nack { id: a.clone(), code: NackCode::from(b.clone()), message: c.clone() }),
            ServerMessage::Error(ErrorPayload { code: a.clone(), message: c.clone() }),
        ];
        for frame in frames {
            let text = frame.encode();
            prop_assert_eq!(ServerMessage::decode_with_limit(&text, usize::MAX).unwrap(), frame.clone());
            let serde: Serde = serde_json::from_str(&text).unwrap();
            let expected = match &frame {
                ServerMessage::AuthSuccess(_) => json!({"type": "auth_success", "payload": {"user_id": a, "authenticated_at": b, "expires_at": c, "max_frame": seq}}),
                ServerMessage::AuthError(_) => json!({"type": "auth_error", "payload": {"code": a, "message": b}}),
                ServerMessage::Pong(_) => json!({"type": "pong", "payload": {"seq": seq}}),
                ServerMessage::Notification(_) => json!({"type": "notification", "payload": {"seq": seq, "id": a, "title": b, "body": c, "created_at": a}}),
                ServerMessage::Ack(Ack { topic: None, .. }) => json!({"type": "ack", "payload": {"id": c}}),
                ServerMessage::Ack(_) => json!({"type": "ack", "payload": {"id": a, "topic": b, "offset": seq}}),
                ServerMessage::Nack(_) => json!({"type": "nack", "payload": {"id": a, "code": b, "message": c}}),
                _ => json!({"type": "error", "payload": {"code": a, "message": c}}),
            };
            prop_assert_eq!(serde, expected);
        }
    }

    #[test]
    fn client_frames_round_trip_through_serde_json(
        seq in any::<u64>(), token in prop::option::of(any_string()), last_seq in prop::option::of(any::<u64>()),
        id in any_string(), body in any_json(),
    ) {
        let body_text = serde_json::to_string(&body).unwrap();
        let body: Serde = serde_json::from_str(&body_text).unwrap(); // as serde_json reads it
        let frames = [
            ClientMessage::Auth(Auth { token: token.clone().map(Secret::new), last_seq }),
            ClientMessage::Ping(Ping { seq }),
            ClientMessage::Send(Outgoing { id: id.clone(), body: RawJson::new(body_text).unwrap() }),
        ];
        for frame in frames {
            let text = frame.encode();
            let decoded = ClientMessage::decode_with_limit(&text, usize::MAX).unwrap();
            let serde: Serde = serde_json::from_str(&text).unwrap();
            let expected = match &frame {
                ClientMessage::Auth(_) => json!({"type": "auth", "payload": {"token": token, "last_seq": last_seq}}),
                ClientMessage::Ping(_) => json!({"type": "ping", "payload": {"seq": seq}}),
                _ => json!({"type": "send", "payload": {"id": id, "body": body}}),
            };
            prop_assert_eq!(serde, expected);
            // The body comes back byte for byte.
            prop_assert_eq!(&decoded, &frame);
        }
    }

    #[test]
    fn no_input_panics_and_errors_never_echo_strings(text in json_ish(), secret in "[a-z]{12}") {
        let framed = format!(r#"{{"type":"auth","payload":{{"token":{{"x":"{secret}"}},"last_seq":"{secret}"}}}}{text}"#);
        for input in [text.as_str(), framed.as_str()] {
            if let Err(err) = ServerMessage::decode(input) {
                prop_assert!(!err.to_string().contains(&secret));
            }
            if let Err(err) = ClientMessage::decode(input) {
                prop_assert!(!err.to_string().contains(&secret));
                let debug = format!("{err:?}");
                prop_assert!(!debug.contains(&secret));
            }
        }
    }
}

#[test]
fn payload_errors_name_the_field_and_keep_unknown_types_apart() {
    let cases = [
        (
            r#"{"type":"pong","payload":{"seq":"7"}}"#,
            "invalid `pong` payload: unexpected value, expected u64",
        ),
        (
            r#"{"type":"pong","payload":{"seq":-1}}"#,
            "invalid `pong` payload: unexpected value, expected u64",
        ),
        (
            r#"{"type":"pong","payload":{}}"#,
            "invalid `pong` payload: missing field `seq`",
        ),
        (
            r#"{"type":"pong"}"#,
            "invalid `pong` payload: missing field `seq`",
        ),
        (
            r#"{"type":"ack","payload":[1]}"#,
            "invalid `ack` payload: unexpected value, expected a string",
        ),
        (
            r#"{"payload":{}}"#,
            "malformed frame: unexpected value at column 14",
        ),
        (
            r#"{"type":"pong","payload":{"seq":1}"#,
            "malformed frame: truncated JSON at column 34",
        ),
        (
            r#"[1]"#,
            "malformed frame: unexpected value, expected an object with a string `type`",
        ),
    ];
    for (frame, message) in cases {
        assert_eq!(
            ServerMessage::decode(frame).unwrap_err().to_string(),
            message,
            "{frame}"
        );
    }
    assert_eq!(
        ClientMessage::decode(r#"{"type":"wat","payload":5}"#)
            .unwrap_err()
            .to_string(),
        "unknown frame type `wat`"
    );
    // Unknown fields are ignored, `message` defaults to empty, `null` is absent.
    assert_eq!(
        ServerMessage::decode(
            r#"{"type":"error","payload":{"code":"c","message":null,"extra":[{}]},"more":1}"#
        )
        .unwrap(),
        ServerMessage::Error(ErrorPayload {
            code: "c".into(),
            message: String::new()
        })
    );
}

#[test]
fn a_payload_before_its_type_is_read_the_same() {
    let both = [
        r#"{"type":"pong","payload":{"seq":3}}"#,
        r#"{"payload":{"seq":3},"type":"pong"}"#,
        r#"{"x":[1,{"y":2}],"payload":{"seq":3},"z":null,"type":"pong"}"#,
    ];
    for frame in both {
        assert_eq!(
            ServerMessage::decode(frame).unwrap(),
            ServerMessage::Pong(Pong { seq: 3 }),
            "{frame}"
        );
    }
    assert!(matches!(
        ServerMessage::decode(r#"{"payload":{"seq":"x"},"type":"pong"}"#),
        Err(DecodeError::InvalidPayload { kind, .. }) if kind == "pong"
    ));
    assert!(matches!(
        ServerMessage::decode(r#"{"type":"pong","type":"ack","payload":{"seq":3}}"#),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn server_frames_of_other_types_are_the_apps_own() {
    let app = ServerMessage::decode(r#"{"type":"chat.typing","payload":{"who":"ann", "n":1e400}}"#)
        .unwrap();
    assert_eq!(
        app,
        ServerMessage::App(AppFrame {
            kind: "chat.typing".into(),
            payload: RawJson::new(r#"{"who":"ann", "n":1e400}"#).unwrap(),
        })
    );
    assert_eq!(
        app.encode(),
        r#"{"type":"chat.typing","payload":{"who":"ann", "n":1e400}}"#
    );
    let bare = ServerMessage::decode(r#"{"type":"later"}"#).unwrap();
    assert!(
        matches!(bare, ServerMessage::App(f) if f.kind == "later" && f.payload.as_str() == "null")
    );
}

#[test]
fn topic_frames_match_the_contract() {
    let ann = User {
        user_id: "u1".into(),
        username: "ann".into(),
    };
    let server = [
        (
            ServerMessage::Subscribed(Subscribed {
                topic: "room:a".into(),
                epoch: "e1".into(),
                offset: 7,
                from: 5,
                recovered: Some(true),
                presence: vec![ann.clone()],
            }),
            json!({"type":"subscribed","payload":{"topic":"room:a","epoch":"e1","offset":7,"from":5,"recovered":true,"presence":[{"user_id":"u1","username":"ann"}]}}),
        ),
        (
            ServerMessage::SubscribeError(SubscribeError {
                topic: "room:a".into(),
                code: SubscribeErrorCode::TooManyTopics,
                message: "m".into(),
                retry: false,
            }),
            json!({"type":"subscribe_error","payload":{"topic":"room:a","code":"too_many_topics","message":"m","retry":false}}),
        ),
        (
            ServerMessage::Unsubscribed(Unsubscribed {
                topic: "room:a".into(),
                code: UnsubscribedCode::Reset,
                message: "m".into(),
                epoch: Some("e2".into()),
            }),
            json!({"type":"unsubscribed","payload":{"topic":"room:a","code":"reset","message":"m","epoch":"e2"}}),
        ),
        (
            ServerMessage::Message(TopicMessage {
                topic: "room:a".into(),
                offset: 8,
                event: "chat.said".into(),
                data: RawJson::new(r#"{"text":"hi"}"#).unwrap(),
                from: None,
                id: "m1".into(),
                created_at: "2026-01-01T00:00:00.000Z".into(),
            }),
            json!({"type":"message","payload":{"topic":"room:a","offset":8,"event":"chat.said","data":{"text":"hi"},"from":null,"id":"m1","created_at":"2026-01-01T00:00:00.000Z"}}),
        ),
        (
            ServerMessage::Presence(Presence {
                topic: "room:a".into(),
                joined: vec![],
                left: vec![ann],
            }),
            json!({"type":"presence","payload":{"topic":"room:a","joined":[],"left":[{"user_id":"u1","username":"ann"}]}}),
        ),
    ];
    for (frame, wire) in server {
        let text = frame.encode();
        assert_eq!(serde_json::from_str::<Serde>(&text).unwrap(), wire);
        assert_eq!(ServerMessage::decode(&text).unwrap(), frame);
    }
    let client = [
        (
            ClientMessage::Subscribe(Subscribe {
                topic: "room:a".into(),
                since: Some(Position {
                    epoch: "e1".into(),
                    offset: 4,
                }),
                last: None,
            }),
            json!({"type":"subscribe","payload":{"topic":"room:a","since":{"epoch":"e1","offset":4}}}),
        ),
        (
            ClientMessage::Subscribe(Subscribe {
                topic: "room:a".into(),
                since: None,
                last: Some(50),
            }),
            json!({"type":"subscribe","payload":{"topic":"room:a","last":50}}),
        ),
        (
            ClientMessage::Unsubscribe(Unsubscribe {
                topic: "room:a".into(),
            }),
            json!({"type":"unsubscribe","payload":{"topic":"room:a"}}),
        ),
        (
            ClientMessage::Publish(Publish {
                id: "p1".into(),
                topic: "room:a".into(),
                event: "chat.said".into(),
                data: RawJson::new("[1, 2.50]").unwrap(),
            }),
            json!({"type":"publish","payload":{"id":"p1","topic":"room:a","event":"chat.said","data":[1,2.5]}}),
        ),
    ];
    for (frame, wire) in client {
        let text = frame.encode();
        assert_eq!(serde_json::from_str::<Serde>(&text).unwrap(), wire);
        assert_eq!(ClientMessage::decode(&text).unwrap(), frame);
    }
    // Data is kept byte for byte: `2.50` stays `2.50`.
    let ClientMessage::Publish(publish) = ClientMessage::decode(
        r#"{"type":"publish","payload":{"id":"p","topic":"room:a","event":"e","data":[1, 2.50]}}"#,
    )
    .unwrap() else {
        panic!("expected a publish")
    };
    assert_eq!(publish.data.as_str(), "[1, 2.50]");
}

#[test]
fn a_malformed_since_or_last_names_its_topic() {
    for payload in [
        r#"{"topic":"room:a","since":{"epoch":"e"}}"#,
        r#"{"topic":"room:a","since":7}"#,
        r#"{"topic":"room:a","last":-1}"#,
        r#"{"topic":"room:a","last":"5"}"#,
    ] {
        let frame = format!(r#"{{"type":"subscribe","payload":{payload}}}"#);
        assert_eq!(
            ClientMessage::decode(&frame),
            Err(DecodeError::InvalidSubscribe {
                topic: "room:a".into()
            }),
            "{frame}"
        );
    }
    // Without a string topic there is nothing to answer for.
    assert!(matches!(
        ClientMessage::decode(r#"{"type":"subscribe","payload":{"topic":5}}"#),
        Err(DecodeError::InvalidPayload { .. })
    ));
    // `null` is absent.
    assert!(matches!(
        ClientMessage::decode(
            r#"{"type":"subscribe","payload":{"topic":"room:a","since":null,"last":null}}"#
        ),
        Ok(ClientMessage::Subscribe(Subscribe {
            since: None,
            last: None,
            ..
        }))
    ));
}

#[test]
fn deep_frames_are_refused_not_overflowed() {
    let deep = format!(
        r#"{{"type":"send","payload":{{"id":"1","body":{}{}}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert!(matches!(
        ClientMessage::decode_with_limit(&deep, usize::MAX),
        Err(DecodeError::InvalidPayload { kind, .. }) if kind == "send"
    ));
    let deep_frame = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(matches!(
        ServerMessage::decode_with_limit(&deep_frame, usize::MAX),
        Err(DecodeError::Malformed(_))
    ));
    let limit = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert!(RawJson::new(limit.clone()).is_ok());
    assert!(RawJson::new(format!("[{limit}]")).is_err());
    // Brackets inside strings do not count.
    assert!(RawJson::new(format!(r#"["{}\"{}"]"#, "[".repeat(500), "{".repeat(500))).is_ok());
}

#[test]
fn send_bodies_may_be_any_json_but_must_be_present() {
    let decoded =
        ClientMessage::decode(r#"{"type":"send","payload":{"id":"1","body":null}}"#).unwrap();
    assert!(matches!(decoded, ClientMessage::Send(o) if o.body.as_str() == "null"));
    assert_eq!(
        ClientMessage::decode(r#"{"type":"send","payload":{"id":"1"}}"#)
            .unwrap_err()
            .to_string(),
        "invalid `send` payload: missing field `body`"
    );
}
