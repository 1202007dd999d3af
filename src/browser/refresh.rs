//! `POST /api/auth/refresh` with the HTTP-only cookie, turned into a core input.

use std::time::Duration;
use tether_core::Input;
use tether_protocol::TokenResponse;
use web_sys::RequestCredentials;

/// Asks the server for a fresh access token. Never fails: every outcome is
/// an input for the core, which decides what it means.
pub(crate) async fn refresh(url: &str) -> Input {
    let response = gloo_net::http::Request::post(url)
        .credentials(RequestCredentials::Include)
        .send()
        .await;
    match response {
        Ok(r) if r.ok() => match r
            .text()
            .await
            .ok()
            .as_deref()
            .and_then(TokenResponse::decode)
        {
            Some(body) => Input::TokenRefreshed {
                token: body.access_token,
                expires_in: Some(Duration::from_secs(body.expires_in)),
            },
            None => Input::RefreshFailed {
                unauthorized: false,
                message: "the refresh response was not a token".into(),
            },
        },
        Ok(r) => Input::RefreshFailed {
            unauthorized: matches!(r.status(), 400 | 401 | 403),
            message: format!("refresh refused with HTTP {}", r.status()),
        },
        Err(_) => Input::RefreshFailed {
            unauthorized: false,
            message: "network error during token refresh".into(),
        },
    }
}
