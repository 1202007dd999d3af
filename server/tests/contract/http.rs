use crate::common::*;
use tether_protocol::ApiError;
use tether_server::{AllowedOrigins, Config, OriginPattern};

#[tokio::test]
async fn login_succeeds_and_sets_a_strict_http_only_cookie() {
    let server = dev().await;
    let login = server.login("alice", "wonderland").await;
    assert_eq!(login.token.split('.').count(), 3);
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/api/auth"] {
        assert!(login.set_cookie.contains(attr), "{}", login.set_cookie);
    }
    assert!(login.cookie.starts_with("refresh_token="));
    let bob = server.try_login("bob", "builder").await;
    assert_eq!(bob.status(), 200);
}

#[tokio::test]
async fn wrong_password_is_401_and_malformed_body_is_400() {
    let server = dev().await;
    let wrong = server.try_login("alice", "nope").await;
    assert_eq!(wrong.status(), 401);
    let body: ApiError = wrong.json().await.unwrap();
    assert_eq!(body.error, "invalid_credentials");
    let unknown = server.try_login("nobody", "nope").await;
    assert_eq!(unknown.status(), 401);
    for bad in [
        "{",
        "[]",
        r#"{"username":"alice"}"#,
        "",
        r#"{"username":1,"password":"x"}"#,
    ] {
        let response = server
            .http
            .post(server.url("/api/auth/login"))
            .header("content-type", "application/json")
            .body(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        let body: ApiError = response.json().await.unwrap();
        assert_eq!(body.error, "bad_request");
    }
}

#[tokio::test]
async fn five_failures_within_a_minute_give_429() {
    let server = dev().await;
    for _ in 0..5 {
        assert_eq!(server.try_login("bob", "wrong").await.status(), 401);
    }
    let throttled = server.try_login("bob", "builder").await;
    assert_eq!(throttled.status(), 429);
    assert!(throttled.headers().contains_key("retry-after"));
    let body: ApiError = throttled.json().await.unwrap();
    assert_eq!(body.error, "rate_limited");
    // Other usernames are not affected.
    assert_eq!(server.try_login("alice", "wonderland").await.status(), 200);
}

#[tokio::test]
async fn refresh_rotates_the_cookie_and_refuses_the_old_one() {
    let server = dev().await;
    let first = server.login("alice", "wonderland").await;
    let response = server.refresh(&first.cookie).await;
    assert_eq!(response.status(), 200);
    let second = login_from(response).await;
    assert_ne!(second.cookie, first.cookie);
    assert_ne!(second.token, first.token);
    let third = server.refresh(&second.cookie).await;
    assert_eq!(third.status(), 200);
    // The stale cookie is refused (and revokes the session: see
    // hardening::reusing_a_rotated_refresh_token_revokes_the_session).
    let stale = server.refresh(&first.cookie).await;
    assert_eq!(stale.status(), 401);
    let body: ApiError = stale.json().await.unwrap();
    assert_eq!(body.error, "invalid_refresh");
    let none = server
        .http
        .post(server.url("/api/auth/refresh"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
}

#[tokio::test]
async fn logout_needs_credentials_and_revokes_refresh() {
    let server = dev().await;
    let anonymous = server
        .http
        .post(server.url("/api/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let by_cookie = server.login("alice", "wonderland").await;
    let response = server
        .http
        .post(server.url("/api/auth/logout"))
        .header("cookie", &by_cookie.cookie)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(server.refresh(&by_cookie.cookie).await.status(), 401);
    let by_bearer = server.login("alice", "wonderland").await;
    let response = server
        .http
        .post(server.url("/api/auth/logout"))
        .bearer_auth(&by_bearer.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(server.refresh(&by_bearer.cookie).await.status(), 401);
}

#[tokio::test]
async fn notifications_endpoint_creates_for_the_caller() {
    let server = dev().await;
    let login = server.login("alice", "wonderland").await;
    let response = server
        .http
        .post(server.url("/api/notifications"))
        .bearer_auth(&login.token)
        .json(&serde_json::json!({"title": "hi", "body": "there"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let n: tether_protocol::Notification = response.json().await.unwrap();
    assert_eq!((n.seq, n.title.as_str()), (1, "hi"));
    let anonymous = server
        .post_json("/api/notifications", serde_json::json!({"title": "x"}))
        .await;
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn admin_routes_are_404_without_dev() {
    let server = start(Config::production()).await;
    for path in [
        "/api/admin/users",
        "/api/admin/drop-sockets",
        "/api/admin/withhold-pongs",
        "/api/admin/refuse-sockets",
        "/api/admin/expire-tokens",
        "/api/admin/notify",
        "/api/admin/flood",
        "/api/admin/close",
        "/api/admin/raw",
    ] {
        let response = server.post_json(path, serde_json::json!({})).await;
        assert_eq!(response.status(), 404, "{path}");
    }
    for path in ["/api/admin/connections", "/api/admin/received?user=alice"] {
        let response = server.http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    // The public API still works.
    assert_eq!(server.try_login("alice", "wonderland").await.status(), 200);
}

#[tokio::test]
async fn cors_allows_listed_origins_with_credentials() {
    let mut config = Config::production();
    config.allowed_origins = AllowedOrigins::new(vec![
        OriginPattern::parse("http://localhost:8080").unwrap(),
        OriginPattern::parse("http://127.0.0.1:*").unwrap(),
    ]);
    let server = start(config).await;
    for (origin, allowed) in [
        ("http://localhost:8080", true),
        ("http://127.0.0.1:43123", true),
        ("http://localhost:8081", false),
        ("http://evil.example", false),
    ] {
        let response = server
            .http
            .request(reqwest::Method::OPTIONS, server.url("/api/auth/login"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .unwrap();
        let echoed = response
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_owned());
        if allowed {
            assert_eq!(echoed.as_deref(), Some(origin));
            assert_eq!(
                response.headers()["access-control-allow-credentials"],
                "true"
            );
        } else {
            assert_eq!(echoed, None, "{origin}");
        }
    }
}

#[tokio::test]
async fn admin_users_and_connections() {
    let server = dev().await;
    let (name, password) = server.new_user().await;
    let dup = server
        .post_json(
            "/api/admin/users",
            serde_json::json!({"username": name, "password": "x"}),
        )
        .await;
    assert_eq!(dup.status(), 409);
    let (mut ws, _) = server.authed(&name, &password).await;
    let rows: Vec<serde_json::Value> = server
        .http
        .get(server.url("/api/admin/connections"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["username"], name.as_str());
    assert!(rows[0]["authenticated_at"].is_string());
    assert_alive(&mut ws, 1).await;
    drop(ws);
    // Unregistered once the server sees the socket close.
    tokio::time::timeout(WAIT, async {
        while !server.state.registry.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the socket is unregistered");
}

#[tokio::test]
async fn static_dir_serves_the_spa_with_index_fallback() {
    let dir = std::env::temp_dir().join(format!("tether-static-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "<!doctype html><p>spa</p>").unwrap();
    std::fs::write(dir.join("app.js"), "console.log(1)").unwrap();
    let mut config = Config::dev();
    config.static_dir = Some(dir.clone());
    let server = start(config).await;
    for (path, body) in [
        ("/", "spa"),
        ("/login", "spa"),
        ("/app.js", "console.log(1)"),
    ] {
        let response = server.http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert!(response.text().await.unwrap().contains(body), "{path}");
    }
    // The API still answers as the API.
    let login = server.try_login("alice", "nope").await;
    assert_eq!(login.status(), 401);
    std::fs::remove_dir_all(dir).unwrap();
}
