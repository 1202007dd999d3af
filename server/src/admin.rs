//! Dev-only admin routes (`--dev`): test users, fault injection, and views of
//! the server's state. Each fault takes an optional `username` that scopes it
//! to one user, so parallel tests do not disturb each other.

use crate::AppState;
use crate::error::{ApiFailure, parse_json};
use crate::registry::Outbound;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

/// The admin routes, each under the cookie rule's checks
/// ([`crate::http_api::require_own_origin`]): same origin, and JSON on POSTs.
/// A cross-site page cannot drive them even on a `--dev` server.
pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/api/admin/connections", get(connections))
        .route("/api/admin/received", get(received))
        .route("/api/admin/users", post(create_user))
        .route("/api/admin/drop-sockets", post(drop_sockets))
        .route("/api/admin/withhold-pongs", post(withhold_pongs))
        .route("/api/admin/refuse-sockets", post(refuse_sockets))
        .route("/api/admin/expire-tokens", post(expire_tokens))
        .route("/api/admin/notify", post(notify))
        .route("/api/admin/flood", post(flood))
        .route("/api/admin/close", post(close))
        .route("/api/admin/stall-sockets", post(stall_sockets))
        .route("/api/admin/raw", post(raw))
        .route("/api/admin/topics/{topic}/reset", post(reset_topic))
        .route("/api/admin/topics/{topic}/publish", post(publish_topic))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            own_origin,
        ))
}

async fn own_origin(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let json = request.method() == axum::http::Method::POST;
    match crate::http_api::require_own_origin(&state, request.headers(), json) {
        Ok(()) => next.run(request).await,
        Err(failure) => failure.into_response(),
    }
}

#[derive(Debug, Default, Deserialize)]
struct Scoped {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    seconds: Option<f64>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    code: Option<u16>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

/// Parses an optional JSON body (empty = `{}`).
fn scoped(body: &[u8]) -> Result<Scoped, ApiFailure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Scoped::default());
    }
    parse_json(body)
}

/// The user id of the scope (`None` = everyone); 404 for an unknown name.
async fn scope_user(state: &AppState, scoped: &Scoped) -> Result<Option<Uuid>, ApiFailure> {
    match &scoped.username {
        None => Ok(None),
        Some(name) => state
            .accounts
            .by_name(name)
            .await?
            .map(|u| Some(u.id))
            .ok_or(ApiFailure::UnknownUser),
    }
}

fn seconds(scoped: &Scoped) -> Result<Duration, ApiFailure> {
    let secs = scoped
        .seconds
        .ok_or_else(|| ApiFailure::BadRequest("`seconds` is required".into()))?;
    Duration::try_from_secs_f64(secs)
        .map_err(|_| ApiFailure::BadRequest("`seconds` must be a non-negative number".into()))
}

async fn connections(State(state): State<AppState>) -> Response {
    Json(state.registry.list()).into_response()
}

#[derive(Debug, Deserialize)]
struct ReceivedQuery {
    user: String,
}

async fn received(
    State(state): State<AppState>,
    Query(query): Query<ReceivedQuery>,
) -> Result<Response, ApiFailure> {
    let user = state
        .accounts
        .by_name(&query.user)
        .await?
        .ok_or(ApiFailure::UnknownUser)?;
    /// Bodies are written out exactly as they arrived.
    #[derive(serde::Serialize)]
    struct Item<'a> {
        id: &'a str,
        body: &'a serde_json::value::RawValue,
        received_at: &'a str,
    }
    #[derive(serde::Serialize)]
    struct Received<'a> {
        user: &'a str,
        count: u64,
        items: Vec<Item<'a>>,
    }
    let (count, items) = state.inbox.applied(user.id).await?;
    let items = items
        .iter()
        .map(|a| Item {
            id: &a.id,
            body: &a.body,
            received_at: &a.received_at,
        })
        .collect();
    Ok(Json(Received {
        user: &user.username,
        count,
        items,
    })
    .into_response())
}

#[derive(Debug, Deserialize)]
struct NewUser {
    username: String,
    password: tether_protocol::Secret,
}

async fn create_user(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiFailure> {
    let new: NewUser = parse_json(&body)?;
    let created = state
        .accounts
        .create(&new.username, new.password.expose())
        .await?;
    match created {
        Ok(user) => Ok((
            StatusCode::CREATED,
            Json(json!({"id": user.id, "username": user.username})),
        )
            .into_response()),
        Err(crate::accounts::CreateUserError::Exists) => Err(ApiFailure::Conflict),
        Err(err) => Err(ApiFailure::BadRequest(err.to_string())),
    }
}

async fn drop_sockets(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiFailure> {
    let scoped = scoped(&body)?;
    let user = scope_user(&state, &scoped).await?;
    let dropped = state.registry.send_to(user, &Outbound::Drop);
    Ok(Json(json!({"dropped": dropped})).into_response())
}

async fn withhold_pongs(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiFailure> {
    let scoped = scoped(&body)?;
    let user = scope_user(&state, &scoped).await?;
    state.faults.withhold_pongs.set(user, seconds(&scoped)?);
    Ok(Json(json!({"ok": true})).into_response())
}

async fn refuse_sockets(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, ApiFailure> {
    let scoped = scoped(&body)?;
    let user = scope_user(&state, &scoped).await?;
    state.faults.refuse_sockets.set(user, seconds(&scoped)?);
    Ok(Json(json!({"ok": true})).into_response())
}

async fn expire_tokens(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiFailure> {
    let scoped = scoped(&body)?;
    let user = scope_user(&state, &scoped).await?;
    state.sessions.expire_tokens(user).await?;
    let closed = crate::redis::control::announce(
        &state,
        state.redis.as_ref(),
        crate::redis::control::ControlEvent::Expired { user_id: user },
    )
    .await;
    Ok(Json(json!({"closed": closed})).into_response())
}

/// `POST /api/admin/notify {"username"?, "title"?, "body"?, "count"?}`:
/// publishes `count` (default 1) notifications at once, as live traffic
/// does: a socket that cannot take them is closed with 1013.
async fn notify(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiFailure> {
    let scoped = scoped(&body)?;
    let user = scope_user(&state, &scoped).await?;
    let title = scoped.title.as_deref().unwrap_or("Notification");
    let text = scoped.body.as_deref().unwrap_or("");
    let mut notified = 0;
    for i in 0..scoped.count.unwrap_or(1) {
        if i % 1_000 == 999 {
            tokio::task::yield_now().await;
        }
        notified = match user {
            Some(user) => {
                state.feeds.publish(user, title, text).await?;
                1
            }
            None => state.broadcast(title, text).await?,
        };
    }
    Ok(Json(json!({"notified": notified})).into_response())
}

/// `POST /api/admin/flood {"username", "count"?}`: publishes `count`
/// (default 1,000) notifications as fast as the user's sockets take them:
/// it waits whenever a socket's queue is half full (back-pressure), so a
/// client that reads as fast as it can gets every one of them live.
async fn flood(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiFailure> {
    let scoped = scoped(&body)?;
    let user = scope_user(&state, &scoped)
        .await?
        .ok_or_else(|| ApiFailure::BadRequest("`username` is required".into()))?;
    let count = scoped.count.unwrap_or(1_000);
    let mut last_seq = 0;
    for i in 0..count {
        for outbox in state.feeds.subscribers(user) {
            outbox.wait_for_room().await;
        }
        if i % 1_000 == 999 {
            tokio::task::yield_now().await;
        }
        last_seq = state
            .feeds
            .publish(user, "flood", &format!("#{}", i + 1))
            .await?
            .seq;
        // On Redis the frames reach the queues by pub/sub: at most a few
        // in flight, so that the room waited for above stays enough.
        state
            .feeds
            .wait_delivered(user, last_seq.saturating_sub(2))
            .await;
    }
    Ok(Json(json!({"published": count, "last_seq": last_seq})).into_response())
}

/// `POST /api/admin/stall-sockets {"username"?, "seconds"}`: the sockets
/// open now stop sending their queued live frames for `seconds`, as if
/// their clients had stopped reading; sockets opened later are not
/// affected. Past its queue bound such a socket closes with 1013.
async fn stall_sockets(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiFailure> {
    let scoped = scoped(&body)?;
    let user = scope_user(&state, &scoped).await?;
    let stalled = state
        .registry
        .send_to(user, &Outbound::Stall(seconds(&scoped)?));
    Ok(Json(json!({"stalled": stalled})).into_response())
}

async fn close(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiFailure> {
    let scoped = scoped(&body)?;
    let user = scope_user(&state, &scoped).await?;
    let code = scoped.code.unwrap_or(tether_protocol::close_code::NORMAL);
    // Codes a close frame may carry (RFC 6455 §7.4).
    let sendable = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
    if !sendable {
        return Err(ApiFailure::BadRequest(format!(
            "close code {code} cannot be sent in a close frame"
        )));
    }
    let closed = state.registry.send_to(
        user,
        &Outbound::Close {
            code,
            reason: scoped.reason.unwrap_or_default(),
        },
    );
    Ok(Json(json!({"closed": closed})).into_response())
}

/// `POST /api/admin/raw {"text", "username"?}`: sends `text` verbatim as a
/// text frame to the matching authenticated sockets, so client tests can see
/// how they handle malformed frames and unknown types.
async fn raw(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiFailure> {
    let scoped = scoped(&body)?;
    let user = scope_user(&state, &scoped).await?;
    let text = scoped
        .text
        .ok_or_else(|| ApiFailure::BadRequest("`text` is required".into()))?;
    let sent = state.registry.send_to(user, &Outbound::Frame(text.into()));
    Ok(Json(json!({"sent": sent})).into_response())
}

/// The topic of a dev topic route: a room's topic (404 otherwise).
async fn room_topic(state: &AppState, topic: &str) -> Result<(), ApiFailure> {
    if crate::topics::is_valid_topic(topic) && state.rooms.of_topic(topic).await?.is_some() {
        Ok(())
    } else {
        Err(ApiFailure::NotFound("no such topic"))
    }
}

#[derive(Debug, Default, Deserialize)]
struct TopicReset {
    #[serde(default)]
    restart: bool,
}

/// `POST /api/admin/topics/{topic}/reset {"restart"?}`: drops the topic's
/// history live: a new epoch, offsets from 1 again, and every subscribed
/// socket gets `unsubscribed reset` with the new epoch. With `"restart":
/// true` it looks like a restart of the in-memory server instead: the
/// subscribers are not told, their sockets are dropped (1006). Answers
/// `{"epoch", "subscribers"}`.
async fn reset_topic(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    body: Bytes,
) -> Result<Response, ApiFailure> {
    room_topic(&state, &topic).await?;
    let reset: TopicReset = if body.iter().all(u8::is_ascii_whitespace) {
        TopicReset::default()
    } else {
        parse_json(&body)?
    };
    let (head, subscribers) = state.topics.reset(&topic, reset.restart).await?;
    Ok(Json(json!({"epoch": head.epoch, "subscribers": subscribers})).into_response())
}

#[derive(Debug, Deserialize)]
struct TopicPublish {
    event: String,
    #[serde(default, deserialize_with = "present")]
    data: Option<tether_protocol::RawJson>,
    #[serde(default)]
    count: Option<u64>,
}

/// A field that is present, `null` included.
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<tether_protocol::RawJson>, D::Error> {
    tether_protocol::RawJson::deserialize(deserializer).map(Some)
}

/// `POST /api/admin/topics/{topic}/publish`: publishes as the server
/// (`from: null`), either one message `{"event", "data"}` or `count`
/// messages `{"event", "count": N}` with data `{"n": 1}` to `{"n": N}`,
/// as live traffic does (a subscriber that cannot take them is closed with
/// 1013). Answers `{"published", "offset"}` (the last offset).
async fn publish_topic(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    body: Bytes,
) -> Result<Response, ApiFailure> {
    room_topic(&state, &topic).await?;
    let publish: TopicPublish = parse_json(&body)?;
    let mut offset = 0;
    let published = match (publish.data, publish.count) {
        (Some(data), None) => {
            crate::delivery::check_numbers(data.as_str())
                .map_err(|e| ApiFailure::BadRequest(e.to_string()))?;
            offset = state
                .topics
                .publish_as_server(&topic, &publish.event, &data)
                .await?;
            1
        }
        (None, Some(count)) => {
            for n in 1..=count {
                if n % 1_000 == 0 {
                    tokio::task::yield_now().await;
                }
                let data = tether_protocol::RawJson::from_value(&json!({"n": n}))
                    .expect("an object of one integer serializes");
                offset = state
                    .topics
                    .publish_as_server(&topic, &publish.event, &data)
                    .await?;
            }
            count
        }
        _ => {
            return Err(ApiFailure::BadRequest(
                "give either `data` or `count`".into(),
            ));
        }
    };
    Ok(Json(json!({"published": published, "offset": offset})).into_response())
}
