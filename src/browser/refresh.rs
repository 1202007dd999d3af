//! The default token refresh: `POST` the refresh URL with the HTTP-only
//! cookie, as the contract's cookie rule asks (same origin, JSON).

use crate::token::{FreshToken, RefreshError};
use std::time::Duration;
use tether_protocol::TokenResponse;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, RequestCredentials, RequestInit, Response};

/// Asks the server at `url` for a fresh access token. HTTP 400, 401 and 403
/// end the session; a network error, another status or a body that is not
/// a token are transient. (Plain `fetch`, not an HTTP client crate: this is
/// the library's only request.)
pub(crate) async fn refresh(url: &str) -> Result<FreshToken, RefreshError> {
    let Some(response) = post(url).await else {
        return Err(RefreshError::transient(
            "network error during token refresh",
        ));
    };
    if !response.ok() {
        let status = response.status();
        let message = format!("refresh refused with HTTP {status}");
        return Err(if matches!(status, 400 | 401 | 403) {
            RefreshError::rejected(message)
        } else {
            RefreshError::transient(message)
        });
    }
    let text = match response.text() {
        Ok(promise) => JsFuture::from(promise)
            .await
            .ok()
            .and_then(|t| t.as_string()),
        Err(_) => None,
    };
    match text.as_deref().and_then(TokenResponse::decode) {
        Some(body) => Ok(FreshToken {
            token: body.access_token,
            expires_in: Some(Duration::from_secs(body.expires_in)),
        }),
        None => Err(RefreshError::transient(
            "the refresh response was not a token",
        )),
    }
}

/// `fetch(url, {method: "POST", credentials: "include", headers:
/// {"Content-Type": "application/json"}, body: "{}"})`; `None` on a network
/// error. The browser adds `Sec-Fetch-Site` and `Origin` itself.
async fn post(url: &str) -> Option<Response> {
    let headers = Headers::new().ok()?;
    headers.set("Content-Type", "application/json").ok()?;
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_credentials(RequestCredentials::Include);
    init.set_headers(&headers);
    init.set_body(&JsValue::from_str("{}"));
    let promise = web_sys::window()?.fetch_with_str_and_init(url, &init);
    JsFuture::from(promise).await.ok()?.dyn_into().ok()
}
