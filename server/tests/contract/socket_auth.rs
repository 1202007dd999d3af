use crate::common::*;
use std::time::Duration;
use tether_protocol::time::parse_rfc3339;
use tether_protocol::{AuthErrorCode, ServerMessage};
use tether_server::tokens::{Claims, TokenKey};
use tether_server::{AllowedOrigins, Config, OriginPattern};

#[tokio::test]
async fn auth_success_carries_user_and_times() {
    let server = dev().await;
    let login = server.login("alice", "wonderland").await;
    let mut ws = server.connect(None).await;
    send(&mut ws, auth(&login.token, None)).await;
    let ServerMessage::AuthSuccess(ok) = recv(&mut ws).await else {
        panic!("expected auth_success");
    };
    assert_eq!(ok.user_id, "a11ce000-0000-4000-8000-000000000001");
    let at = parse_rfc3339(&ok.authenticated_at).unwrap();
    let exp = parse_rfc3339(&ok.expires_at).unwrap();
    assert!(exp - at >= 299_000 && exp - at <= 301_000, "{at} {exp}");
    assert_alive(&mut ws, 7).await;
}

#[tokio::test]
async fn access_token_alias_and_handshake_tokens_are_accepted() {
    let server = dev().await;
    let login = server.login("bob", "builder").await;
    let mut ws = server.connect(None).await;
    let frame = format!(
        r#"{{"type":"auth","payload":{{"access_token":"{}","last_seq":null}}}}"#,
        login.token
    );
    send_text(&mut ws, &frame).await;
    assert!(matches!(recv(&mut ws).await, ServerMessage::AuthSuccess(_)));
    // Query token, auth frame without a token.
    let mut ws = server.connect(Some(&login.token)).await;
    send_text(&mut ws, r#"{"type":"auth","payload":{"last_seq":null}}"#).await;
    assert!(matches!(recv(&mut ws).await, ServerMessage::AuthSuccess(_)));
    // Authorization header.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = server.ws_url(None).into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", login.token).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    send_text(&mut ws, r#"{"type":"auth","payload":{}}"#).await;
    assert!(matches!(recv(&mut ws).await, ServerMessage::AuthSuccess(_)));
}

#[tokio::test]
async fn missing_token() {
    let server = dev().await;
    let mut ws = server.connect(None).await;
    send_text(&mut ws, r#"{"type":"auth","payload":{"last_seq":null}}"#).await;
    expect_auth_error(&mut ws, AuthErrorCode::MissingToken).await;
    let mut ws = server.connect(None).await;
    send_text(&mut ws, r#"{"type":"auth","payload":{"token":""}}"#).await;
    expect_auth_error(&mut ws, AuthErrorCode::MissingToken).await;
}

#[tokio::test]
async fn invalid_token() {
    let server = dev().await;
    let login = server.login("alice", "wonderland").await;
    let mut tampered = login.token.clone();
    tampered.pop();
    tampered.push(if login.token.ends_with('A') { 'B' } else { 'A' });
    for token in ["garbage", "a.b.c", tampered.as_str()] {
        let mut ws = server.connect(None).await;
        send(&mut ws, auth(token, None)).await;
        expect_auth_error(&mut ws, AuthErrorCode::InvalidToken).await;
    }
    let mut ws = server.connect(None).await;
    send_text(&mut ws, r#"{"type":"auth","payload":{"token":42}}"#).await;
    expect_auth_error(&mut ws, AuthErrorCode::InvalidToken).await;
}

#[tokio::test]
async fn expired_token() {
    let server = dev().await;
    let login = server.login("alice", "wonderland").await;
    let expired = server
        .post_json(
            "/api/admin/expire-tokens",
            serde_json::json!({"username": "alice"}),
        )
        .await;
    assert_eq!(expired.status(), 200);
    let mut ws = server.connect(None).await;
    send(&mut ws, auth(&login.token, None)).await;
    expect_auth_error(&mut ws, AuthErrorCode::ExpiredToken).await;
    // The refresh cookie still works and gives a usable token.
    let fresh = login_from(server.refresh(&login.cookie).await).await;
    let mut ws = server.connect(None).await;
    send(&mut ws, auth(&fresh.token, None)).await;
    assert!(matches!(recv(&mut ws).await, ServerMessage::AuthSuccess(_)));
}

#[tokio::test]
async fn revoked_token() {
    let server = dev().await;
    let login = server.login("alice", "wonderland").await;
    let response = server
        .http
        .post(server.url("/api/auth/logout"))
        .bearer_auth(&login.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let mut ws = server.connect(None).await;
    send(&mut ws, auth(&login.token, None)).await;
    expect_auth_error(&mut ws, AuthErrorCode::Revoked).await;
}

#[tokio::test]
async fn frames_before_auth_are_not_authenticated() {
    let server = dev().await;
    for frame in [
        ping(1).encode(),
        r#"{"type":"send","payload":{"id":"x","body":1}}"#.to_owned(),
        r#"{"type":"party"}"#.to_owned(),
    ] {
        let mut ws = server.connect(None).await;
        send_text(&mut ws, &frame).await;
        expect_auth_error(&mut ws, AuthErrorCode::NotAuthenticated).await;
    }
}

/// A socket that sends nothing gets `auth_timeout`; one that authenticated
/// in time is not timed out. Ordered by events, not by the clock: the
/// authenticated socket opened first, so its auth deadline passed before
/// the silent one's did.
#[tokio::test]
async fn auth_timeout() {
    let mut config = Config::dev();
    config.auth_timeout = Duration::from_millis(300);
    let server = start(config).await;
    let (mut authed, _) = server.authed("alice", "wonderland").await;
    let mut silent = server.connect(None).await;
    expect_auth_error(&mut silent, AuthErrorCode::AuthTimeout).await;
    assert_alive(&mut authed, 1).await;
}

#[tokio::test]
async fn origin_allow_list_is_checked_before_upgrade() {
    let mut config = Config::dev();
    config.allowed_origins = AllowedOrigins::new(vec![
        OriginPattern::parse("http://localhost:8080").unwrap(),
        OriginPattern::parse("http://127.0.0.1:*").unwrap(),
    ]);
    let server = start(config).await;
    for origin in ["http://evil.example", "http://localhost:8081", "null"] {
        let refused = server.try_connect(None, Some(origin)).await;
        assert_eq!(refused_status(refused), 403, "{origin}");
    }
    for origin in ["http://localhost:8080", "http://127.0.0.1:5173"] {
        assert!(
            server.try_connect(None, Some(origin)).await.is_ok(),
            "{origin}"
        );
    }
    // Non-browser clients send no Origin.
    assert!(server.try_connect(None, None).await.is_ok());
}

#[tokio::test]
async fn invalid_query_token_gets_auth_error_not_a_refused_handshake() {
    // Browsers cannot see a 401 on the handshake (it looks like 1006), so the
    // server upgrades and answers the auth frame with a final auth_error.
    let server = dev().await;
    let mut ws = server.connect(Some("garbage")).await;
    send(&mut ws, auth("garbage", None)).await;
    expect_auth_error(&mut ws, AuthErrorCode::InvalidToken).await; // then 4001
    // An auth frame without a token falls back to the (invalid) query token.
    let mut ws = server.connect(Some("garbage")).await;
    send_text(&mut ws, r#"{"type":"auth","payload":{"last_seq":null}}"#).await;
    expect_auth_error(&mut ws, AuthErrorCode::InvalidToken).await;
    let login = server.login("alice", "wonderland").await;
    assert!(server.try_connect(Some(&login.token), None).await.is_ok());
}

/// A re-authentication in place moves the socket's expiry to the new
/// token's. The new token is signed by the test with the server's key (same
/// session, an hour more), so no second has to pass for a later `exp`; the
/// first token's expiry is observed on a second socket that holds it.
#[tokio::test]
async fn reauth_in_place_extends_the_session() {
    let secret = b"a test key for socket_auth".to_vec();
    let mut config = Config::dev();
    config.token_ttl = Duration::from_secs(2);
    config.jwt_secret = Some(secret.clone());
    let server = start(config).await;
    let login = server.login("alice", "wonderland").await;
    let key = TokenKey::new(secret);
    let claims = key.verify(&login.token, 0, true).expect("the server's key");
    let later = key.sign(&Claims {
        exp: claims.exp + 3_600,
        ..claims.clone()
    });

    let mut ws = server.connect(None).await;
    send(&mut ws, auth(&login.token, None)).await;
    let ServerMessage::AuthSuccess(first) = recv(&mut ws).await else {
        panic!("expected auth_success");
    };
    let mut witness = server.connect(None).await;
    send(&mut witness, auth(&login.token, None)).await;
    assert!(matches!(
        recv(&mut witness).await,
        ServerMessage::AuthSuccess(_)
    ));

    send(&mut ws, auth(&later, None)).await;
    let ServerMessage::AuthSuccess(second) = recv(&mut ws).await else {
        panic!("expected auth_success");
    };
    let (old_exp, new_exp) = (
        parse_rfc3339(&first.expires_at).unwrap(),
        parse_rfc3339(&second.expires_at).unwrap(),
    );
    assert_eq!(new_exp - old_exp, 3_600_000, "{first:?} {second:?}");
    // The first token's expiry passes: the socket that kept it is closed...
    expect_auth_error(&mut witness, AuthErrorCode::ExpiredToken).await;
    // ...and the re-authenticated one is still open.
    assert_alive(&mut ws, 2).await;
}

#[tokio::test]
async fn token_expiry_on_an_open_socket_closes_it() {
    let mut config = Config::dev();
    config.token_ttl = Duration::from_secs(1);
    let server = start(config).await;
    let (mut ws, _) = server.authed("alice", "wonderland").await;
    expect_auth_error(&mut ws, AuthErrorCode::ExpiredToken).await;
}

#[tokio::test]
async fn admin_expire_tokens_closes_open_sockets() {
    let server = dev().await;
    let (mut alice, _) = server.authed("alice", "wonderland").await;
    let (mut bob, _) = server.authed("bob", "builder").await;
    server
        .post_json(
            "/api/admin/expire-tokens",
            serde_json::json!({"username": "alice"}),
        )
        .await;
    expect_auth_error(&mut alice, AuthErrorCode::ExpiredToken).await;
    assert_alive(&mut bob, 1).await;
}

#[tokio::test]
async fn logout_closes_that_users_sockets_only() {
    let server = dev().await;
    let (mut a1, login) = server.authed("alice", "wonderland").await;
    let (mut a2, _) = server.authed("alice", "wonderland").await;
    let (mut bob, _) = server.authed("bob", "builder").await;
    let response = server
        .http
        .post(server.url("/api/auth/logout"))
        .bearer_auth(&login.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    expect_auth_error(&mut a1, AuthErrorCode::Revoked).await;
    expect_auth_error(&mut a2, AuthErrorCode::Revoked).await;
    assert_alive(&mut bob, 3).await;
}
