//! Server behaviours a mutation review found no test for: a token whose user
//! is gone, re-authentication in place as another user or with a bad token,
//! binary frames and the close reason's length limit.

use crate::common::*;
use futures_util::SinkExt;
use tether_protocol::{AuthErrorCode, ServerMessage, error_code};
use tokio_tungstenite::tungstenite::Message;

async fn notify(server: &Server, username: &str, title: &str) {
    let response = server
        .post_json(
            "/api/admin/notify",
            serde_json::json!({"username": username, "title": title, "body": "b"}),
        )
        .await;
    assert_eq!(response.status(), 200);
}

async fn expect_notification(ws: &mut Ws) -> tether_protocol::Notification {
    match recv(ws).await {
        ServerMessage::Notification(n) => n,
        other => panic!("expected a notification, got {other:?}"),
    }
}

async fn user_id(server: &Server, username: &str) -> String {
    server
        .state
        .accounts
        .by_name(username)
        .await
        .unwrap()
        .expect("a user")
        .id
        .to_string()
}

#[tokio::test]
async fn a_valid_token_of_a_user_that_does_not_exist_is_invalid() {
    let server = dev().await;
    // A correctly signed token with a live session, for a user id the
    // accounts store does not know (as after the account was removed).
    let ghost = uuid::Uuid::new_v4();
    let issued = server.state.sessions.login(ghost).await.unwrap();
    assert_eq!(
        server
            .state
            .sessions
            .authenticate(&issued.access_token)
            .await
            .unwrap()
            .expect("the token itself is valid")
            .sub,
        ghost
    );
    let mut ws = server.connect(None).await;
    send(&mut ws, auth(&issued.access_token, None)).await;
    expect_auth_error(&mut ws, AuthErrorCode::InvalidToken).await;
}

#[tokio::test]
async fn reauth_in_place_as_another_user_switches_the_feed() {
    let server = dev().await;
    let (alice, alice_pw) = server.new_user().await;
    let (bob, bob_pw) = server.new_user().await;
    let (mut ws, _) = server.authed(&alice, &alice_pw).await;
    notify(&server, &alice, "for alice").await;
    assert_eq!(expect_notification(&mut ws).await.title, "for alice");

    let bob_login = server.login(&bob, &bob_pw).await;
    send(&mut ws, auth(&bob_login.token, None)).await;
    let ServerMessage::AuthSuccess(ok) = recv(&mut ws).await else {
        panic!("expected auth_success");
    };
    assert_eq!(ok.user_id, user_id(&server, &bob).await);
    // Alice's feed is no longer this socket's: her next notification is not
    // delivered here, bob's is (and it is the first frame that arrives).
    notify(&server, &alice, "for alice again").await;
    notify(&server, &bob, "for bob").await;
    let n = expect_notification(&mut ws).await;
    assert_eq!((n.title.as_str(), n.seq), ("for bob", 1));
    assert_alive(&mut ws, 9).await;
    // The server lists the socket under bob now.
    let connections: serde_json::Value = server
        .http
        .get(server.url("/api/admin/connections"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let users: Vec<&str> = connections
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["username"].as_str())
        .filter(|name| *name == alice || *name == bob)
        .collect();
    assert_eq!(users, [bob.as_str()], "{connections}");
}

#[tokio::test]
async fn reauth_in_place_with_an_invalid_token_ends_the_session() {
    let server = dev().await;
    let (mut ws, _) = server.authed("alice", "wonderland").await;
    send(&mut ws, auth("garbage", None)).await;
    expect_auth_error(&mut ws, AuthErrorCode::InvalidToken).await;
}

#[tokio::test]
async fn reauth_in_place_with_a_revoked_token_ends_the_session() {
    let server = dev().await;
    let (mut ws, _) = server.authed("alice", "wonderland").await;
    // Bob signs out: his token is revoked (alice's socket is not his).
    let bob = server.login("bob", "builder").await;
    let response = server
        .http
        .post(server.url("/api/auth/logout"))
        .bearer_auth(&bob.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_alive(&mut ws, 1).await;
    send(&mut ws, auth(&bob.token, None)).await;
    expect_auth_error(&mut ws, AuthErrorCode::Revoked).await;
}

#[tokio::test]
async fn a_binary_frame_before_auth_is_not_authenticated() {
    let server = dev().await;
    let mut ws = server.connect(None).await;
    ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    expect_auth_error(&mut ws, AuthErrorCode::NotAuthenticated).await;
}

#[tokio::test]
async fn a_binary_frame_after_auth_is_an_error_and_the_socket_stays() {
    let server = dev().await;
    let (mut ws, _) = server.authed("alice", "wonderland").await;
    ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    expect_error(&mut ws, error_code::UNSUPPORTED_DATA).await;
    assert_alive(&mut ws, 3).await;
}

#[tokio::test]
async fn a_long_close_reason_is_cut_to_120_bytes_on_a_char_boundary() {
    let server = dev().await;
    let (name, password) = server.new_user().await;
    let (mut ws, _) = server.authed(&name, &password).await;
    // 119 ASCII bytes, then two-byte characters: byte 120 is inside one.
    let reason = format!("{}{}", "r".repeat(119), "é".repeat(40));
    let response = server
        .post_json(
            "/api/admin/close",
            serde_json::json!({"code": 4999, "reason": reason, "username": name}),
        )
        .await;
    assert_eq!(response.status(), 200);
    match next_message(&mut ws).await {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(u16::from(frame.code), 4999);
            let sent = frame.reason.as_str();
            assert_eq!(sent, &reason[..119], "cut before the split character");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    // A reason that fits is sent whole.
    let (mut ws, _) = server.authed(&name, &password).await;
    let fits = "é".repeat(60); // exactly 120 bytes
    server
        .post_json(
            "/api/admin/close",
            serde_json::json!({"code": 4999, "reason": fits, "username": name}),
        )
        .await;
    match next_message(&mut ws).await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.reason.as_str(), fits),
        other => panic!("expected a close frame, got {other:?}"),
    }
}
