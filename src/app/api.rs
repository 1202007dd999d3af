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
