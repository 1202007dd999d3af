//! The hand-written JSON codec checked against `serde_json` on generated
//! input: it accepts exactly what serde_json accepts, reads the same values,
//! and every frame it writes is JSON that serde_json reads back to the same
//! fields.

use proptest::prelude::*;
use serde_json::{Value as Serde, json};
use tether_protocol::json::{self, Value};
use tether_protocol::*;

/// Our value as a serde_json value (numbers re-read from their text).
fn to_serde(value: &Value<'_>) -> Serde {
    match value {
        Value::Null => Serde::Null,
        Value::Bool(b) => Serde::Bool(*b),
        Value::Number(n) => serde_json::from_str(n).expect("serde reads our number"),
        Value::String(s) => Serde::String(s.to_string()),
        Value::Array(items) => Serde::Array(items.iter().map(to_serde).collect()),
        Value::Object(members) => Serde::Object(
            members
                .iter()
                .map(|(k, v)| (k.to_string(), to_serde(v)))
                .collect(),
        ),
    }
}

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
    fn reads_what_serde_json_writes(value in any_json()) {
        for text in [serde_json::to_string(&value).unwrap(), serde_json::to_string_pretty(&value).unwrap()] {
            // (Compared with serde_json's own reading of the text: without
            // its `float_roundtrip` feature it may not return the very float
            // it wrote.)
            let serde: Serde = serde_json::from_str(&text).unwrap();
            let ours = json::parse(&text).expect("valid JSON is accepted");
            prop_assert_eq!(to_serde(&ours), serde.clone());
            // And what we write, serde_json reads back to the same value.
            let mut written = String::new();
            json::write(&mut written, &ours);
            prop_assert_eq!(serde_json::from_str::<Serde>(&written).unwrap(), serde);
        }
    }

    #[test]
    fn accepts_exactly_what_serde_json_accepts(text in json_ish()) {
        let serde = serde_json::from_str::<Serde>(&text);
        let ours = json::parse(&text);
        // serde_json also refuses numbers beyond f64; we keep them as text.
        let out_of_range = serde.as_ref().is_err_and(|e| e.to_string().contains("out of range"));
        if !out_of_range {
            prop_assert_eq!(ours.is_ok(), serde.is_ok(), "{:?}: ours {:?}, serde {:?}", text, ours, serde);
        }
        if let (Ok(ours), Ok(serde)) = (ours, serde) {
            prop_assert_eq!(to_serde(&ours), serde);
        }
    }

    #[test]
    fn server_frames_round_trip_through_serde_json(
        seq in any::<u64>(), a in any_string(), b in any_string(), c in any_string(),
    ) {
        let frames = [
            ServerMessage::AuthSuccess(AuthSuccess { user_id: a.clone(), authenticated_at: b.clone(), expires_at: c.clone(), max_frame: Some(seq) }),
            ServerMessage::AuthError(AuthError { code: AuthErrorCode::from(a.clone()), message: b.clone() }),
            ServerMessage::Pong(Pong { seq }),
            ServerMessage::Notification(Notification { seq, id: a.clone(), title: b.clone(), body: c.clone(), created_at: a.clone() }),
            ServerMessage::Ack(Ack { id: c.clone() }),
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
                ServerMessage::Ack(_) => json!({"type": "ack", "payload": {"id": c}}),
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
            match (decoded, &frame) {
                // The body comes back as equivalent (compact) JSON text.
                (ClientMessage::Send(d), ClientMessage::Send(f)) => {
                    prop_assert_eq!(&d.id, &f.id);
                    prop_assert_eq!(
                        serde_json::from_str::<Serde>(d.body.as_str()).unwrap(),
                        body.clone()
                    );
                }
                (decoded, frame) => prop_assert_eq!(&decoded, frame),
            }
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
            "invalid `pong` payload: expected an unsigned integer in `seq`",
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
            "invalid `ack` payload: expected an object in `payload`",
        ),
        (
            r#"{"type":"ack","payload":{"id":null}}"#,
            "invalid `ack` payload: missing field `id`",
        ),
        (
            r#"{"payload":{}}"#,
            "malformed frame: expected an object with a string `type`",
        ),
        (
            r#"{"type":"pong","payload":{"seq":1}"#,
            "malformed frame: invalid JSON at byte 34: expected `,` or `}`",
        ),
        (r#"{"type":"wat","payload":5}"#, "unknown frame type `wat`"),
    ];
    for (frame, message) in cases {
        assert_eq!(
            ServerMessage::decode(frame).unwrap_err().to_string(),
            message,
            "{frame}"
        );
    }
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
