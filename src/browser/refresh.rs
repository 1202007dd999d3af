//! `POST /api/auth/refresh` with the HTTP-only cookie, turned into a core input.

use std::time::Duration;
use tether_core::{Input, RefreshFailure};
use tether_protocol::TokenResponse;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{RequestCredentials, RequestInit, Response};

/// Asks the server for a fresh access token. Never fails: every outcome is
/// an input for the core, which decides what it means. (Plain `fetch`, not
/// an HTTP client crate: this is the library's only request.)
pub(crate) async fn refresh(url: &str) -> Input {
    let failed = |message: &str| Input::RefreshFailed {
        failure: RefreshFailure::Transient,
        message: message.into(),
    };
    let Some(response) = post(url).await else {
        return failed("network error during token refresh");
    };
    if !response.ok() {
        let status = response.status();
        return Input::RefreshFailed {
            failure: if matches!(status, 400 | 401 | 403) {
                RefreshFailure::Rejected
            } else {
                RefreshFailure::Transient
            },
            message: format!("refresh refused with HTTP {status}"),
        };
    }
    let text = match response.text() {
        Ok(promise) => JsFuture::from(promise)
            .await
            .ok()
            .and_then(|t| t.as_string()),
        Err(_) => None,
    };
    match text.as_deref().and_then(TokenResponse::decode) {
        Some(body) => Input::TokenRefreshed {
            token: body.access_token,
            expires_in: Some(Duration::from_secs(body.expires_in)),
        },
        None => failed("the refresh response was not a token"),
    }
}

/// `fetch(url, {method: "POST", credentials: "include"})`; `None` on a
/// network error.
async fn post(url: &str) -> Option<Response> {
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_credentials(RequestCredentials::Include);
    let promise = web_sys::window()?.fetch_with_str_and_init(url, &init);
    JsFuture::from(promise).await.ok()?.dyn_into().ok()
}
