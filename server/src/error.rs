//! HTTP error responses: `{"error": "...", "message": "..."}` bodies.

use crate::redis::StoreError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::time::Duration;
use tether_protocol::ApiError;

/// An error answer of the HTTP API. Messages never contain secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiFailure {
    /// 400: the body is not the expected JSON.
    #[error("malformed request body")]
    BadRequest(String),
    /// 401: wrong username or password.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// 401: the refresh cookie is missing, unknown, stale or revoked.
    #[error("the refresh token is missing or invalid")]
    InvalidRefresh,
    /// 401: no valid bearer token.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// 429: too many failed logins; retry after this long.
    #[error("too many failed logins, retry later")]
    RateLimited(Duration),
    /// 404: the named user does not exist.
    #[error("no such user")]
    UnknownUser,
    /// 409: the username is taken.
    #[error("the username is taken")]
    Conflict,
    /// 403: the request does not come from the app's own origin.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// 400 with its own `error` code: a well-formed request the server
    /// refuses (a bad room name, an unknown member, the owner leaving).
    #[error("{message}")]
    Invalid {
        /// The `error` code.
        code: &'static str,
        /// Human text.
        message: String,
    },
    /// 404: no such thing (a room).
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// 415: the request must be `Content-Type: application/json`.
    #[error("the request must have Content-Type: application/json")]
    UnsupportedMediaType,
    /// 503 `store_unavailable`: the shared store (Redis) did not answer;
    /// nothing was changed that the client is told about. Retried by the
    /// client later.
    #[error("the store is unavailable; retry later")]
    StoreUnavailable,
    /// 500 `store_corrupt`: the shared store holds a value that does not
    /// parse. Not retried.
    #[error("the store holds a value that does not parse: {0}")]
    StoreCorrupt(String),
}

impl From<StoreError> for ApiFailure {
    fn from(err: StoreError) -> Self {
        tracing::warn!(%err, "store failure");
        match err {
            StoreError::Corrupt(detail) => Self::StoreCorrupt(detail),
            _ => Self::StoreUnavailable,
        }
    }
}

impl ApiFailure {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            Self::InvalidRefresh => (StatusCode::UNAUTHORIZED, "invalid_refresh"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::UnknownUser => (StatusCode::NOT_FOUND, "unknown_user"),
            Self::Conflict => (StatusCode::CONFLICT, "conflict"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::Invalid { code, .. } => (StatusCode::BAD_REQUEST, code),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::StoreUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            Self::StoreCorrupt(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store_corrupt"),
        }
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let message = match &self {
            Self::BadRequest(detail) => format!("malformed request body: {detail}"),
            other => other.to_string(),
        };
        let mut response = (
            status,
            Json(ApiError {
                error: code.to_owned(),
                message,
            }),
        )
            .into_response();
        if let Self::RateLimited(retry) = self {
            let secs = retry.as_secs().max(1);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Parses a JSON body, mapping every failure (syntax, shape, content type)
/// to 400. The serde message is scrubbed of quoted values.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiFailure> {
    serde_json::from_slice(body).map_err(|e| {
        let message = e.to_string();
        // serde quotes offending values (`invalid type: string "..."`),
        // which could be a password: keep only the unquoted parts.
        let scrubbed: String = message
            .split('"')
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, s)| s)
            .collect::<Vec<_>>()
            .join("\"…\"");
        ApiFailure::BadRequest(scrubbed)
    })
}
