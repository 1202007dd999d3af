//! The Rooms HTTP API of the reference server ("Rooms" in
//! shared/PROTOCOL.md), over real HTTP.

use crate::common::*;
use serde_json::{Value, json};

async fn call(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = server.http.request(method, server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn user(server: &Server, name: &str) -> Value {
    let account = server.state.accounts.by_name(name).await.unwrap().unwrap();
    json!({"user_id": account.id.to_string(), "username": name})
}

#[tokio::test]
async fn rooms_are_created_listed_and_their_members_managed() {
    use reqwest::Method;
    let server = dev().await;
    let alice = server.login("alice", "wonderland").await.token;
    let bob = server.login("bob", "builder").await.token;
    let (carol_name, carol_pw) = server.new_user().await;
    let carol = server.login(&carol_name, &carol_pw).await.token;

    // Create: the caller is owner and member; members by username.
    let (status, room) = call(
        &server,
        Method::POST,
        "/api/rooms",
        Some(&alice),
        Some(json!({"name": "Lobby", "members": ["bob"]})),
    )
    .await;
    assert_eq!(status, 201);
    let id = room["id"].as_str().unwrap().to_owned();
    assert!(tether_server::topics::is_valid_topic(&format!("room:{id}")));
    assert_eq!(
        room,
        json!({"id": id, "name": "Lobby", "owner": user(&server, "alice").await,
               "members": [user(&server, "alice").await, user(&server, "bob").await]})
    );
    // Failures: bad names, unknown users, no token.
    for name in ["", "   ", &"x".repeat(101)] {
        let (status, error) = call(
            &server,
            Method::POST,
            "/api/rooms",
            Some(&alice),
            Some(json!({"name": name})),
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(error["error"], "invalid_name");
    }
    let (status, error) = call(
        &server,
        Method::POST,
        "/api/rooms",
        Some(&alice),
        Some(json!({"name": "x", "members": ["nobody"]})),
    )
    .await;
    assert_eq!(
        (status, error["error"].clone()),
        (400, json!("unknown_user"))
    );
    let (status, _) = call(
        &server,
        Method::POST,
        "/api/rooms",
        None,
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = call(
        &server,
        Method::POST,
        "/api/rooms",
        Some(&alice),
        Some(json!([1])),
    )
    .await;
    assert_eq!(status, 400);

    // List: only the caller's rooms.
    let (status, rooms) = call(&server, Method::GET, "/api/rooms", Some(&bob), None).await;
    assert_eq!((status, rooms.as_array().unwrap().len()), (200, 1));
    assert_eq!(rooms[0]["id"], id.as_str());
    let (_, rooms) = call(&server, Method::GET, "/api/rooms", Some(&carol), None).await;
    assert_eq!(rooms, json!([]));
    let (status, _) = call(&server, Method::GET, "/api/rooms", Some("nope"), None).await;
    assert_eq!(status, 401);

    // Add: owner only; 404 for an unknown room or user.
    let member = |name: &str| format!("/api/rooms/{id}/members/{name}");
    let (status, _) = call(&server, Method::PUT, &member(&carol_name), Some(&bob), None).await;
    assert_eq!(status, 403);
    let (status, _) = call(&server, Method::PUT, &member("nobody"), Some(&alice), None).await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &server,
        Method::PUT,
        "/api/rooms/nope/members/bob",
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &server,
        Method::PUT,
        &member(&carol_name),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, rooms) = call(&server, Method::GET, "/api/rooms", Some(&carol), None).await;
    assert_eq!(rooms[0]["members"].as_array().unwrap().len(), 3);

    // Remove: the owner cannot leave; others may not remove anyone but
    // themselves; a member may leave.
    let (status, error) = call(
        &server,
        Method::DELETE,
        &member("alice"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(
        (status, error["error"].clone()),
        (400, json!("owner_cannot_leave"))
    );
    let (status, _) = call(
        &server,
        Method::DELETE,
        &member(&carol_name),
        Some(&bob),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(&server, Method::DELETE, &member("alice"), Some(&bob), None).await;
    assert_eq!(status, 403);
    let (status, _) = call(
        &server,
        Method::DELETE,
        "/api/rooms/nope/members/bob",
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &server,
        Method::DELETE,
        &member("nobody"),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &server,
        Method::DELETE,
        &member(&carol_name),
        Some(&carol),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(
        &server,
        Method::DELETE,
        &member(&carol_name),
        Some(&alice),
        None,
    )
    .await;
    assert_eq!(status, 404, "no longer a member");
    let (status, _) = call(&server, Method::DELETE, &member("bob"), Some(&alice), None).await;
    assert_eq!(status, 204);
    let (_, rooms) = call(&server, Method::GET, "/api/rooms", Some(&alice), None).await;
    assert_eq!(rooms[0]["members"], json!([user(&server, "alice").await]));
}
