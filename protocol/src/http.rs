//! Bodies of the HTTP API under `/api`.

use crate::Secret;
use serde::{Deserialize, Serialize};

/// Path of the login endpoint.
pub const LOGIN_PATH: &str = "/api/auth/login";
/// Path of the refresh endpoint (uses the `refresh_token` cookie).
pub const REFRESH_PATH: &str = "/api/auth/refresh";
/// Path of the logout endpoint.
pub const LOGOUT_PATH: &str = "/api/auth/logout";
/// Path for creating a notification for the caller.
pub const NOTIFICATIONS_PATH: &str = "/api/notifications";
/// Name of the HTTP-only refresh cookie.
pub const REFRESH_COOKIE: &str = "refresh_token";

/// Body of `POST /api/auth/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRequest {
    /// Account name.
    pub username: String,
    /// Password.
    pub password: Secret,
}

/// Success body of login and refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The access token (a JWT).
    pub access_token: Secret,
    /// Always `"Bearer"`.
    pub token_type: String,
    /// Lifetime of the access token in seconds.
    pub expires_in: u64,
}

/// Error body of the HTTP API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Machine-readable code, e.g. `invalid_credentials`, `invalid_refresh`, `rate_limited`.
    pub error: String,
    /// Human-readable text.
    #[serde(default)]
    pub message: String,
}

/// Body of `POST /api/notifications`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewNotification {
    /// Short title.
    pub title: String,
    /// Body text.
    #[serde(default)]
    pub body: String,
}

impl TokenResponse {
    /// Reads a login or refresh response body; `None` when it is not a
    /// token response.
    ///
    /// ```
    /// use tether_protocol::TokenResponse;
    /// let body = r#"{"access_token":"t","token_type":"Bearer","expires_in":900}"#;
    /// assert_eq!(TokenResponse::decode(body).unwrap().expires_in, 900);
    /// assert!(TokenResponse::decode(r#"{"error":"invalid_refresh"}"#).is_none());
    /// ```
    pub fn decode(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}
