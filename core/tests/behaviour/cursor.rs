//! Whose replay cursor it is: a token of another user (by its JWT `sub`)
//! does not resume the previous user's feed.

use crate::common::*;
use serde_json::{Value, json};
use tether_core::{Event, Input, Secret};

const OTHER: &str = "2f0c1e9a-0000-4000-8000-000000000002";

/// An unsigned JWT whose payload is `claims` (the machine never verifies).
fn jwt(claims: Value) -> Secret {
    fn b64url(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    }
    let header = b64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = b64url(claims.to_string().as_bytes());
    Secret::new(format!("{header}.{payload}.c2ln"))
}

fn set_token(h: &mut Harness, token: Secret) {
    h.input(Input::SetToken {
        token,
        expires_in: None,
    });
}

fn auth_last_seqs(effects: &[tether_core::Effect]) -> Vec<Value> {
    frames(effects)
        .into_iter()
        .filter(|f| f["type"] == "auth")
        .map(|f| f["payload"]["last_seq"].clone())
        .collect()
}

fn notifications(effects: &[tether_core::Effect]) -> Vec<u64> {
    events(effects)
        .into_iter()
        .filter_map(|e| match e {
            Event::Notification(n) => Some(n.seq),
            _ => None,
        })
        .collect()
}

/// Online as `USER` with `token`, having seen notifications 1..=`seen`,
/// then disconnected.
fn seen_then_disconnected(token: Secret, seen: u64) -> Harness {
    let mut h = Harness::new(tether_core::Config::default());
    set_token(&mut h, token);
    h.online();
    for seq in 1..=seen {
        h.frame(notification(seq));
    }
    h.input(Input::Disconnect);
    h.input(closed(1000));
    h
}

#[test]
fn a_token_of_another_subject_does_not_send_the_previous_users_last_seq() {
    let mut h = seen_then_disconnected(jwt(json!({"sub": "alice", "exp": 4_000_000_000u64})), 5);
    set_token(&mut h, jwt(json!({"sub": "bob", "exp": 4_000_000_000u64})));
    h.input(Input::Connect);
    let fx = h.input(Input::Opened);
    assert_eq!(auth_last_seqs(&fx), [Value::Null], "bob's first auth");
    // Bob's feed from seq 1 reaches the app (it is not taken for a replay).
    h.frame(auth_success_for(OTHER, 900));
    let mut fx = Vec::new();
    for seq in 1..=2 {
        fx.extend(h.frame(notification(seq)));
    }
    assert_eq!(notifications(&fx), [1, 2]);
}

#[test]
fn another_subjects_token_while_connected_reauths_without_the_cursor() {
    let mut h = Harness::new(tether_core::Config::default());
    set_token(&mut h, jwt(json!({"sub": "alice"})));
    h.online();
    h.frame(notification(1));
    h.frame(notification(2));
    let fx = h.input(Input::SetToken {
        token: jwt(json!({"sub": "bob"})),
        expires_in: None,
    });
    assert_eq!(auth_last_seqs(&fx), [Value::Null]);
}

#[test]
fn a_new_token_of_the_same_subject_keeps_the_cursor() {
    let mut h = seen_then_disconnected(jwt(json!({"sub": "alice", "n": 1})), 3);
    set_token(&mut h, jwt(json!({"sub": "alice", "n": 2})));
    h.input(Input::Connect);
    assert_eq!(auth_last_seqs(&h.input(Input::Opened)), [json!(3)]);
}

/// A token whose `sub` cannot be read keeps today's behaviour: the cursor
/// goes out, and an `auth_success` for another user resets it.
#[test]
fn a_token_without_a_readable_sub_resets_the_cursor_on_auth_success_for_another_user() {
    let mut h = seen_then_disconnected(jwt(json!({"sub": "alice"})), 3);
    set_token(&mut h, Secret::new("opaque"));
    h.input(Input::Connect);
    assert_eq!(auth_last_seqs(&h.input(Input::Opened)), [json!(3)]);
    h.frame(auth_success_for(OTHER, 900));
    assert_eq!(notifications(&h.frame(notification(1))), [1]);
}
