//! The HTTP calls of the SPA (relative URLs, same origin as the page) and
//! the user name it shows. The token is the manager's (`sign_in`,
//! `sign_out`, `token`).

use gloo_net::http::Request;
use tether_protocol::{LOGIN_PATH, LOGOUT_PATH, LoginRequest, Secret, TokenResponse};

/// `localStorage` key of the signed-in user's name (display only).
const USERNAME_KEY: &str = "tether.username";

/// Why signing in failed, each with the sentence the form shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginError {
    /// 401: wrong username or password.
    InvalidCredentials,
    /// 429: too many failed attempts.
    TooManyAttempts,
    /// No answer, or a 5xx.
    Unreachable,
    /// 400 or anything unexpected.
    Rejected(u16),
}

impl LoginError {
    /// What the login form says.
    pub fn message(&self) -> String {
        match self {
            Self::InvalidCredentials => "Wrong username or password.".into(),
            Self::TooManyAttempts => {
                "Too many sign-in attempts. Wait a minute, then try again.".into()
            }
            Self::Unreachable => {
                "The server cannot be reached. Check your connection and try again.".into()
            }
            Self::Rejected(status) => format!("Sign-in was refused (HTTP {status})."),
        }
    }
}

/// `POST /api/auth/login`.
pub async fn login(username: String, password: String) -> Result<TokenResponse, LoginError> {
    let body = LoginRequest {
        username,
        password: Secret::new(password),
    };
    let request = Request::post(LOGIN_PATH)
        .json(&body)
        .map_err(|_| LoginError::Rejected(0))?;
    let response = request.send().await.map_err(|_| LoginError::Unreachable)?;
    match response.status() {
        200 => response
            .json::<TokenResponse>()
            .await
            .map_err(|_| LoginError::Unreachable),
        401 => Err(LoginError::InvalidCredentials),
        429 => Err(LoginError::TooManyAttempts),
        status if status >= 500 => Err(LoginError::Unreachable),
        status => Err(LoginError::Rejected(status)),
    }
}

/// `POST /api/auth/logout` with the token as Bearer and a JSON body (the
/// contract's cookie rule); errors are ignored (the session ends locally
/// either way).
pub async fn logout(token: &Secret) {
    let request = Request::post(LOGOUT_PATH)
        .header("Authorization", &format!("Bearer {}", token.expose()))
        .json(&serde_json::json!({}));
    if let Ok(request) = request {
        let _ = request.send().await;
    }
}

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// Forgets who signed in (the token itself is the manager's: `sign_out`).
pub fn forget_username() {
    if let Some(storage) = local_storage() {
        let _ = storage.remove_item(USERNAME_KEY);
    }
}

/// Remembers who signed in, for display.
pub fn store_username(name: &str) {
    if let Some(storage) = local_storage() {
        let _ = storage.set_item(USERNAME_KEY, name);
    }
}

/// Who signed in on this browser, if known.
pub fn stored_username() -> Option<String> {
    local_storage()?.get_item(USERNAME_KEY).ok().flatten()
}

/// The Rooms API (contract, "Rooms").
const ROOMS_PATH: &str = "/api/rooms";

/// A room as the Rooms API returns it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Room {
    /// The room's id: its topic is `room:<id>`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Who created it (a member, who may add and remove members).
    pub owner: Member,
    /// Everyone who may read and write in it, the owner included.
    pub members: Vec<Member>,
}

/// A user as the Rooms API shows them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Member {
    /// The user's id.
    pub user_id: String,
    /// The user's name.
    pub username: String,
}

/// Why a Rooms API call failed, each with the sentence the page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomsError {
    /// 401: the session ended.
    SignedOut,
    /// 400: a bad name or an unknown user; the server's own words.
    Invalid(String),
    /// 403: not allowed (not the owner).
    Forbidden,
    /// 404: no such room or user.
    NotFound,
    /// No answer, a 5xx, or an answer that is not what the API promises.
    Unreachable,
}

impl RoomsError {
    /// What the page says.
    pub fn message(&self) -> String {
        match self {
            Self::SignedOut => "Your session has ended. Sign in again.".into(),
            Self::Invalid(message) => format!("The server refused it: {message}"),
            Self::Forbidden => "Only the room's owner can do that.".into(),
            Self::NotFound => "There is no such room or user.".into(),
            Self::Unreachable => {
                "The server cannot be reached. Check your connection and try again.".into()
            }
        }
    }
}

/// The `{"error","message"}` body of a refused call.
#[derive(serde::Deserialize)]
struct ApiError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    message: String,
}

async fn refused(response: gloo_net::http::Response) -> RoomsError {
    match response.status() {
        401 => RoomsError::SignedOut,
        403 => RoomsError::Forbidden,
        404 => RoomsError::NotFound,
        400 | 409 | 422 => {
            let body = response.json::<ApiError>().await.ok();
            RoomsError::Invalid(match body {
                Some(b) if !b.message.is_empty() => b.message,
                Some(b) if !b.error.is_empty() => b.error,
                _ => format!("HTTP {}", response.status()),
            })
        }
        _ => RoomsError::Unreachable,
    }
}

fn bearer(token: &Secret) -> String {
    format!("Bearer {}", token.expose())
}

/// `GET /api/rooms`: the rooms I belong to.
pub async fn rooms(token: &Secret) -> Result<Vec<Room>, RoomsError> {
    let response = Request::get(ROOMS_PATH)
        .header("Authorization", &bearer(token))
        .send()
        .await
        .map_err(|_| RoomsError::Unreachable)?;
    if response.status() != 200 {
        return Err(refused(response).await);
    }
    response.json().await.map_err(|_| RoomsError::Unreachable)
}

/// `POST /api/rooms`: a new room with me as owner and `members` (usernames).
pub async fn create_room(
    token: &Secret,
    name: &str,
    members: &[String],
) -> Result<Room, RoomsError> {
    let body = serde_json::json!({ "name": name, "members": members });
    let response = Request::post(ROOMS_PATH)
        .header("Authorization", &bearer(token))
        .json(&body)
        .map_err(|_| RoomsError::Unreachable)?
        .send()
        .await
        .map_err(|_| RoomsError::Unreachable)?;
    if response.status() != 201 {
        return Err(refused(response).await);
    }
    response.json().await.map_err(|_| RoomsError::Unreachable)
}

/// `DELETE /api/rooms/{id}/members/{username}`: the owner removes a member.
pub async fn remove_member(token: &Secret, room: &str, username: &str) -> Result<(), RoomsError> {
    let path = format!(
        "{}/{}/members/{}",
        ROOMS_PATH,
        String::from(js_sys::encode_uri_component(room)),
        String::from(js_sys::encode_uri_component(username))
    );
    let response = Request::delete(&path)
        .header("Authorization", &bearer(token))
        .send()
        .await
        .map_err(|_| RoomsError::Unreachable)?;
    match response.status() {
        204 => Ok(()),
        _ => Err(refused(response).await),
    }
}
