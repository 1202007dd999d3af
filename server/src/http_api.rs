//! The public HTTP routes: login, refresh, logout, notifications, health and
//! the socket upgrade.

use crate::AppState;
use crate::accounts::{ClientKey, LoginOutcome};
use crate::auth::{Issued, RefreshFailure};
use crate::error::{ApiFailure, parse_json};
use crate::redis::control::{self, ControlEvent};
use axum::Router;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json};
use std::net::SocketAddr;
use tether_protocol::{
    LOGIN_PATH, LOGOUT_PATH, LoginRequest, NOTIFICATIONS_PATH, NewNotification, REFRESH_COOKIE,
    REFRESH_PATH, Secret, TokenResponse, WS_PATH,
};

/// `DELETE` (Bearer or cookie): ends every session of the user, as logout.
pub const SESSION_PATH: &str = "/api/auth/session";

/// Lifetime of the refresh cookie.
pub const REFRESH_MAX_AGE_SECS: u64 = 7 * 24 * 3600;

/// The public routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(LOGIN_PATH, post(login))
        .route(REFRESH_PATH, post(refresh))
        .route(LOGOUT_PATH, post(logout))
        .route(SESSION_PATH, delete(logout))
        .route(NOTIFICATIONS_PATH, post(create_notification))
        .route("/api/health", get(|| async { "ok" }))
        .route(WS_PATH, get(crate::socket::upgrade))
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The value of the `refresh_token` cookie.
pub fn refresh_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == REFRESH_COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
}

fn cookie_header(state: &AppState, value: &str, max_age: u64) -> HeaderValue {
    let secure = if state.config.secure_cookie {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{REFRESH_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/api/auth; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&cookie).expect("cookie values are base64url and uuids")
}

/// 200 with the login body and the refresh cookie of a new session.
pub fn token_response(state: &AppState, issued: Issued) -> Response {
    let body = TokenResponse {
        access_token: Secret::new(issued.access_token),
        token_type: "Bearer".to_owned(),
        expires_in: state.sessions.ttl().as_secs(),
    };
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookie_header(state, &issued.refresh, REFRESH_MAX_AGE_SECS),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Bytes,
) -> Result<Response, ApiFailure> {
    let request: LoginRequest = parse_json(&body)?;
    let client = peer.map_or_else(ClientKey::unknown, |Extension(ConnectInfo(addr))| {
        ClientKey::of(addr.ip())
    });
    let outcome = state
        .accounts
        .login(&request.username, request.password.expose(), client)
        .await?;
    match outcome {
        LoginOutcome::Ok(user) => {
            tracing::info!(user_id = %user.id, "login");
            Ok(token_response(&state, state.sessions.login(user.id).await?))
        }
        LoginOutcome::Invalid => {
            tracing::info!(username_len = request.username.len(), "login failed");
            Err(ApiFailure::InvalidCredentials)
        }
        LoginOutcome::Throttled(retry) => Err(ApiFailure::RateLimited(retry)),
    }
}

async fn refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiFailure> {
    require_own_origin(&state, &headers, true)?;
    let cookie = refresh_cookie(&headers).ok_or(ApiFailure::InvalidRefresh)?;
    match state.sessions.refresh(cookie).await? {
        Ok(issued) => Ok(token_response(&state, issued)),
        Err(RefreshFailure::Reused {
            user_id,
            session_id,
        }) => {
            let closed = control::announce(
                &state,
                state.redis.as_ref(),
                ControlEvent::Revoked {
                    user_id,
                    session_id: Some(session_id),
                },
            )
            .await;
            tracing::warn!(%user_id, %session_id, closed, "rotated refresh token reused: session revoked");
            Err(ApiFailure::InvalidRefresh)
        }
        Err(_) => Err(ApiFailure::InvalidRefresh),
    }
}

/// `POST /api/auth/logout` and `DELETE /api/auth/session`: a currently
/// valid bearer token, or else the refresh cookie (then under the cookie
/// rule). Every session of the user ends and their sockets get `revoked`.
/// An expired or revoked token signs nobody out.
async fn logout(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiFailure> {
    let by_token = match bearer(&headers) {
        Some(token) => state.sessions.authenticate(token).await?.ok(),
        None => None,
    }
    .map(|claims| claims.sub);
    let user = match by_token {
        Some(user) => user,
        None => {
            let cookie = refresh_cookie(&headers).ok_or(ApiFailure::Unauthorized)?;
            // The cookie rule: a JSON body is required of POSTs only.
            require_own_origin(&state, &headers, method == Method::POST)?;
            state
                .sessions
                .refresh_owner(cookie)
                .await?
                .ok_or(ApiFailure::Unauthorized)?
        }
    };
    state.sessions.revoke_user(user).await?;
    let closed = control::announce(
        &state,
        state.redis.as_ref(),
        ControlEvent::Revoked {
            user_id: user,
            session_id: None,
        },
    )
    .await;
    tracing::info!(user_id = %user, closed, "logout");
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie_header(&state, "", 0));
    Ok(response)
}

/// The cookie rule of the contract ("Passkeys (WebAuthn) and sessions"):
/// a request that a cookie alone authenticates, and every dev admin
/// request, must come from the app's own origin: `Sec-Fetch-Site:
/// same-origin`, or else an `Origin` on the allow-list (the origins that
/// CORS lets read answers; a page of any other site is refused with 403).
/// The allow-list also admits the app's own origin when the browser calls
/// it `same-site` or `cross-site` (the SPA on one port of 127.0.0.1 or
/// localhost and the API on another, in development). With `json`, the
/// request must also say `Content-Type: application/json` (415 otherwise):
/// an HTML form cannot send that, and a script on another origin cannot
/// without a CORS preflight, which the allow-list answers.
pub fn require_own_origin(
    state: &AppState,
    headers: &HeaderMap,
    json: bool,
) -> Result<(), ApiFailure> {
    let same_origin = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| site.eq_ignore_ascii_case("same-origin"));
    let allowed = same_origin
        || headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|o| state.config.allowed_origins.allows(o));
    if !allowed {
        return Err(ApiFailure::Forbidden("cross-site request refused"));
    }
    if json {
        let is_json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiFailure::UnsupportedMediaType);
        }
    }
    Ok(())
}

/// The user of a valid (unexpired, unrevoked) bearer token; 503 when the
/// session store cannot tell.
pub async fn authenticated_user(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<uuid::Uuid, ApiFailure> {
    let token = bearer(headers).ok_or(ApiFailure::Unauthorized)?;
    state
        .sessions
        .authenticate(token)
        .await?
        .map(|claims| claims.sub)
        .map_err(|_| ApiFailure::Unauthorized)
}

async fn create_notification(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiFailure> {
    let user = authenticated_user(&state, &headers).await?;
    let new: NewNotification = parse_json(&body)?;
    let notification = state.feeds.publish(user, &new.title, &new.body).await?;
    Ok((StatusCode::CREATED, Json(notification)).into_response())
}
