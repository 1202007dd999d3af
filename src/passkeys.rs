//! Passkeys (WebAuthn) against the contract's endpoints
//! (`shared/PROTOCOL.md`, "Passkeys (WebAuthn) and sessions"), behind the
//! `passkeys` cargo feature.
//!
//! [`passkey_support`] says whether the browser has WebAuthn (the reason to
//! enable or disable passkey buttons); [`platform_authenticator_available`]
//! adds whether a built-in authenticator (Touch ID, Windows Hello, a phone's
//! screen lock) is there, as extra information only: a security key or a
//! phone nearby works without one. [`register_passkey`] and
//! [`sign_in_with_passkey`] run a whole ceremony and hand the token to the
//! [`ConnectionManager`], like a password sign-in. The signed-in account's
//! passkeys: [`add_passkey`], [`list_passkeys`], [`delete_passkey`];
//! [`sign_out_everywhere`] ends every session of the user.
//!
//! ```no_run
//! # async fn run(conn: tether::ConnectionManager) {
//! use tether::passkeys::{passkey_support, sign_in_with_passkey};
//!
//! if passkey_support().webauthn {
//!     match sign_in_with_passkey(conn, None).await {
//!         Ok(()) => { /* connected: go to the app */ }
//!         Err(err) => leptos::logging::log!("{}", err.message()),
//!     }
//! }
//! # }
//! ```
//!
//! The browser's WebAuthn calls take binary fields: the options' base64url
//! fields are decoded for it, and its answer is encoded back as the JSON the
//! server reads (plain `fetch` and `navigator.credentials`, no extra
//! client crate).

use crate::ConnectionManager;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use js_sys::{Array, ArrayBuffer, Object, Reflect, Uint8Array};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;
use tether_protocol::{Secret, TokenResponse};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// `POST {"username"}`: start creating an account with a passkey.
pub const REGISTER_START_PATH: &str = "/api/auth/passkey/register/start";
/// `POST <credential>`: finish a registration.
pub const REGISTER_FINISH_PATH: &str = "/api/auth/passkey/register/finish";
/// `POST {}` or `{"username"}`: start signing in.
pub const LOGIN_START_PATH: &str = "/api/auth/passkey/login/start";
/// `POST <assertion>`: finish signing in.
pub const LOGIN_FINISH_PATH: &str = "/api/auth/passkey/login/finish";
/// `POST` (start adding) / `GET` (list) / `DELETE .../{id}`, Bearer.
pub const PASSKEYS_PATH: &str = "/api/auth/passkeys";
/// `DELETE`, Bearer: ends every session of the user.
pub const SESSION_PATH: &str = "/api/auth/session";

/// Why a passkey action failed. None of them is retried by the library;
/// [`PasskeyError::message`] is a sentence for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasskeyError {
    /// The browser has no WebAuthn (or this is not a browser).
    #[error("this browser does not support passkeys")]
    NotSupported,
    /// The user closed or let the passkey prompt time out (the browser says
    /// `NotAllowedError` and does not tell the two apart, nor a failed user
    /// verification).
    #[error("the passkey prompt was cancelled")]
    Cancelled,
    /// The browser refused the ceremony for this page (`SecurityError`: the
    /// relying party id does not match the page's host, or the page is not
    /// a secure context).
    #[error("passkeys are not allowed on this page")]
    NotAllowed,
    /// The authenticator already holds a passkey for this account
    /// (`InvalidStateError` on registration).
    #[error("this authenticator already holds a passkey for this account")]
    AlreadyRegistered,
    /// The server did not accept the passkey (HTTP 401 on a finish: unknown
    /// or deleted credential, wrong origin, a signature counter that went
    /// backwards).
    #[error("the passkey was not accepted")]
    VerificationFailed,
    /// The server refused the request.
    #[error("the server refused the request (HTTP {status}, {code})")]
    ServerRefused {
        /// The HTTP status.
        status: u16,
        /// The `error` field of the body (`conflict`, `invalid_ceremony`,
        /// `no_passkey`...), empty when there was none.
        code: String,
    },
    /// No answer, or an answer that is not the expected JSON.
    #[error("the server cannot be reached")]
    Unreachable,
}

impl PasskeyError {
    /// What a form says, in plain words.
    pub fn message(&self) -> String {
        match self {
            Self::NotSupported => "This browser does not support passkeys.".into(),
            Self::Cancelled => "The passkey prompt was cancelled.".into(),
            Self::NotAllowed => "Passkeys are not allowed on this page.".into(),
            Self::AlreadyRegistered => {
                "This device already holds a passkey for this account.".into()
            }
            Self::VerificationFailed => "The passkey was not accepted.".into(),
            Self::ServerRefused { code, status } => match code.as_str() {
                "conflict" => "That username is taken.".into(),
                "no_passkey" => "This account has no passkey.".into(),
                "invalid_ceremony" => "The passkey request expired. Try again.".into(),
                "too_many_passkeys" => "This account holds the most passkeys allowed.".into(),
                "bad_request" => "Enter a username of 1 to 64 characters.".into(),
                "unauthorized" => "Your session has ended. Sign in again.".into(),
                _ => format!("The server refused the request (HTTP {status})."),
            },
            Self::Unreachable => {
                "The server cannot be reached. Check your connection and try again.".into()
            }
        }
    }
}

/// What the browser offers for passkeys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PasskeySupport {
    /// WebAuthn is present (`window.PublicKeyCredential` and
    /// `navigator.credentials`): passkey buttons work. `false` on the server.
    pub webauthn: bool,
}

/// Whether this browser can use passkeys at all (see [`PasskeySupport`]).
pub fn passkey_support() -> PasskeySupport {
    PasskeySupport {
        webauthn: webauthn_present(),
    }
}

fn webauthn_present() -> bool {
    if !cfg!(target_arch = "wasm32") {
        return false;
    }
    let Some(window) = web_sys::window() else {
        return false;
    };
    let has_class = Reflect::get(&window, &JsValue::from_str("PublicKeyCredential"))
        .is_ok_and(|v| v.is_function());
    let navigator = window.navigator();
    let has_container =
        Reflect::get(&navigator, &JsValue::from_str("credentials")).is_ok_and(|v| v.is_object());
    has_class && has_container
}

/// Whether a user-verifying platform authenticator is available (extra
/// information, never a reason to disable passkeys: security keys and
/// phones work without one). `false` where WebAuthn is missing.
pub async fn platform_authenticator_available() -> bool {
    if !webauthn_present() {
        return false;
    }
    let promise =
        web_sys::PublicKeyCredential::is_user_verifying_platform_authenticator_available();
    JsFuture::from(promise)
        .await
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

/// One passkey of the signed-in account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PasskeyInfo {
    /// Its id for [`delete_passkey`] (not the credential id).
    pub id: String,
    /// When it was registered, milliseconds since the Unix epoch.
    pub created: i64,
    /// When it last signed in, milliseconds since the Unix epoch.
    pub last_used: Option<i64>,
}

/// Creates the account `username` with a new passkey and signs in: the
/// token goes to `conn` ([`ConnectionManager::sign_in`]), which connects.
///
/// # Errors
/// [`PasskeyError`]; `ServerRefused` with code `conflict` when the username
/// is taken. Nothing is signed in on an error.
pub async fn register_passkey(conn: ConnectionManager, username: &str) -> Result<(), PasskeyError> {
    ensure_supported()?;
    let options = call(
        "POST",
        REGISTER_START_PATH,
        Some(&json!({ "username": username })),
        None,
    )
    .await?;
    let credential = create(&options).await?;
    let body = call("POST", REGISTER_FINISH_PATH, Some(&credential), None).await?;
    hand_over(conn, body)
}

/// Signs in with a passkey: without a username (`None`: the browser offers
/// the passkeys it holds for this site) or with one (its passkeys only).
/// The token goes to `conn`, which connects.
///
/// # Errors
/// [`PasskeyError`]; `VerificationFailed` when the server does not accept
/// the passkey. Nothing is signed in on an error.
pub async fn sign_in_with_passkey(
    conn: ConnectionManager,
    username: Option<&str>,
) -> Result<(), PasskeyError> {
    ensure_supported()?;
    let start = match username {
        Some(username) => json!({ "username": username }),
        None => json!({}),
    };
    let options = call("POST", LOGIN_START_PATH, Some(&start), None).await?;
    let assertion = get(&options).await?;
    let body = call("POST", LOGIN_FINISH_PATH, Some(&assertion), None).await?;
    hand_over(conn, body)
}

/// Adds a passkey to the signed-in account (`token`: its access token,
/// [`ConnectionManager::token`]).
///
/// # Errors
/// [`PasskeyError`]; `AlreadyRegistered` when this authenticator already
/// holds one for the account.
pub async fn add_passkey(token: &Secret) -> Result<PasskeyInfo, PasskeyError> {
    ensure_supported()?;
    let options = call("POST", PASSKEYS_PATH, Some(&json!({})), Some(token)).await?;
    let credential = create(&options).await?;
    let body = call("POST", REGISTER_FINISH_PATH, Some(&credential), None).await?;
    serde_json::from_value(body).map_err(|_| PasskeyError::Unreachable)
}

/// The signed-in account's passkeys, oldest first.
///
/// # Errors
/// [`PasskeyError::ServerRefused`] (401: the token is no longer valid) or
/// `Unreachable`.
pub async fn list_passkeys(token: &Secret) -> Result<Vec<PasskeyInfo>, PasskeyError> {
    let body = call("GET", PASSKEYS_PATH, None, Some(token)).await?;
    serde_json::from_value(body).map_err(|_| PasskeyError::Unreachable)
}

/// Deletes one of the signed-in account's passkeys: it no longer signs in.
///
/// # Errors
/// [`PasskeyError::ServerRefused`] (404: no such passkey, 401) or
/// `Unreachable`.
pub async fn delete_passkey(token: &Secret, id: &str) -> Result<(), PasskeyError> {
    let path = format!("{PASSKEYS_PATH}/{id}");
    call("DELETE", &path, None, Some(token)).await.map(drop)
}

/// Ends every session of the signed-in user (`DELETE /api/auth/session`):
/// every browser and tab of theirs is signed out by the server (their
/// sockets get `revoked`), then this one signs out locally. Signs out
/// locally also when the server says the session had already ended (401).
///
/// # Errors
/// `Unreachable` or another refusal: then nothing changed here; try again.
pub async fn sign_out_everywhere(conn: ConnectionManager) -> Result<(), PasskeyError> {
    let Some(token) = conn.token() else {
        return Ok(());
    };
    match call("DELETE", SESSION_PATH, None, Some(&token)).await {
        Ok(_) | Err(PasskeyError::ServerRefused { status: 401, .. }) => {
            conn.sign_out();
            Ok(())
        }
        Err(err) => Err(err),
    }
}

fn ensure_supported() -> Result<(), PasskeyError> {
    if webauthn_present() {
        Ok(())
    } else {
        Err(PasskeyError::NotSupported)
    }
}

fn hand_over(conn: ConnectionManager, body: Value) -> Result<(), PasskeyError> {
    let token: TokenResponse =
        serde_json::from_value(body).map_err(|_| PasskeyError::Unreachable)?;
    conn.sign_in(
        token.access_token,
        Some(Duration::from_secs(token.expires_in)),
    );
    Ok(())
}

/// `fetch` of a same-origin JSON endpoint: the body on 2xx (`null` for
/// 204), a typed error otherwise. A 401 of a ceremony finish is
/// `VerificationFailed`.
async fn call(
    method: &str,
    path: &str,
    body: Option<&Value>,
    bearer: Option<&Secret>,
) -> Result<Value, PasskeyError> {
    let window = web_sys::window().ok_or(PasskeyError::NotSupported)?;
    let headers = web_sys::Headers::new().map_err(|_| PasskeyError::Unreachable)?;
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    init.set_credentials(web_sys::RequestCredentials::Include);
    // The cookie rule: JSON content type on every request with a body.
    if let Some(body) = body {
        headers
            .set("Content-Type", "application/json")
            .map_err(|_| PasskeyError::Unreachable)?;
        init.set_body(&JsValue::from_str(&body.to_string()));
    }
    if let Some(token) = bearer {
        headers
            .set("Authorization", &format!("Bearer {}", token.expose()))
            .map_err(|_| PasskeyError::Unreachable)?;
    }
    init.set_headers(&headers);
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str_and_init(path, &init))
        .await
        .map_err(|_| PasskeyError::Unreachable)?
        .dyn_into()
        .map_err(|_| PasskeyError::Unreachable)?;
    let status = response.status();
    let text = match response.text() {
        Ok(promise) => JsFuture::from(promise)
            .await
            .ok()
            .and_then(|t| t.as_string()),
        Err(_) => None,
    }
    .unwrap_or_default();
    let parsed: Option<Value> = serde_json::from_str(&text).ok();
    if response.ok() {
        return Ok(parsed.unwrap_or(Value::Null));
    }
    let finish = path == REGISTER_FINISH_PATH || path == LOGIN_FINISH_PATH;
    if status == 401 && finish {
        return Err(PasskeyError::VerificationFailed);
    }
    if status >= 500 {
        return Err(PasskeyError::Unreachable);
    }
    let code = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Err(PasskeyError::ServerRefused { status, code })
}

fn credentials() -> Result<web_sys::CredentialsContainer, PasskeyError> {
    let window = web_sys::window().ok_or(PasskeyError::NotSupported)?;
    Ok(window.navigator().credentials())
}

/// `navigator.credentials.create` with the server's options.
async fn create(options: &Value) -> Result<Value, PasskeyError> {
    let public_key = to_js(options.get("publicKey"))?;
    decode_field(&public_key, "challenge")?;
    if let Ok(user) = Reflect::get(&public_key, &JsValue::from_str("user")) {
        decode_field(&user, "id")?;
    }
    decode_descriptors(&public_key, "excludeCredentials")?;
    let request = Object::new();
    set(&request, "publicKey", &public_key)?;
    let promise = credentials()?
        .create_with_options(request.unchecked_ref())
        .map_err(|e| dom_error(&e))?;
    let credential: web_sys::PublicKeyCredential = JsFuture::from(promise)
        .await
        .map_err(|e| dom_error(&e))?
        .dyn_into()
        .map_err(|_| PasskeyError::NotSupported)?;
    let response: web_sys::AuthenticatorAttestationResponse =
        credential.response().unchecked_into();
    let transports: Vec<String> =
        if Reflect::has(&response, &JsValue::from_str("getTransports")).unwrap_or(false) {
            response
                .get_transports()
                .iter()
                .filter_map(|t| t.as_string())
                .collect()
        } else {
            Vec::new()
        };
    Ok(json!({
        "id": credential.id(),
        "rawId": encode(&credential.raw_id()),
        "type": "public-key",
        "response": {
            "clientDataJSON": encode(&response.client_data_json()),
            "attestationObject": encode(&response.attestation_object()),
            "transports": transports,
        },
        "clientExtensionResults": {},
    }))
}

/// `navigator.credentials.get` with the server's options.
async fn get(options: &Value) -> Result<Value, PasskeyError> {
    let public_key = to_js(options.get("publicKey"))?;
    decode_field(&public_key, "challenge")?;
    decode_descriptors(&public_key, "allowCredentials")?;
    let request = Object::new();
    set(&request, "publicKey", &public_key)?;
    let promise = credentials()?
        .get_with_options(request.unchecked_ref())
        .map_err(|e| dom_error(&e))?;
    let credential: web_sys::PublicKeyCredential = JsFuture::from(promise)
        .await
        .map_err(|e| dom_error(&e))?
        .dyn_into()
        .map_err(|_| PasskeyError::NotSupported)?;
    let response: web_sys::AuthenticatorAssertionResponse = credential.response().unchecked_into();
    Ok(json!({
        "id": credential.id(),
        "rawId": encode(&credential.raw_id()),
        "type": "public-key",
        "response": {
            "clientDataJSON": encode(&response.client_data_json()),
            "authenticatorData": encode(&response.authenticator_data()),
            "signature": encode(&response.signature()),
            "userHandle": response.user_handle().map(|h| encode(&h)),
        },
        "clientExtensionResults": {},
    }))
}

/// What the browser's rejection means for the user.
fn dom_error(error: &JsValue) -> PasskeyError {
    let name = error
        .dyn_ref::<web_sys::DomException>()
        .map(web_sys::DomException::name)
        .unwrap_or_default();
    match name.as_str() {
        "NotAllowedError" | "AbortError" => PasskeyError::Cancelled,
        "SecurityError" => PasskeyError::NotAllowed,
        "InvalidStateError" => PasskeyError::AlreadyRegistered,
        _ => PasskeyError::NotSupported,
    }
}

fn to_js(value: Option<&Value>) -> Result<JsValue, PasskeyError> {
    let value = value
        .filter(|v| v.is_object())
        .ok_or(PasskeyError::Unreachable)?;
    js_sys::JSON::parse(&value.to_string()).map_err(|_| PasskeyError::Unreachable)
}

fn set(target: &JsValue, key: &str, value: &JsValue) -> Result<(), PasskeyError> {
    Reflect::set(target, &JsValue::from_str(key), value)
        .map(drop)
        .map_err(|_| PasskeyError::Unreachable)
}

/// Replaces the base64url string `target[key]` by its bytes.
fn decode_field(target: &JsValue, key: &str) -> Result<(), PasskeyError> {
    let Some(text) = Reflect::get(target, &JsValue::from_str(key))
        .ok()
        .and_then(|v| v.as_string())
    else {
        return Ok(());
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| PasskeyError::Unreachable)?;
    set(target, key, &Uint8Array::from(bytes.as_slice()))
}

/// Decodes the `id` of each credential descriptor in `target[key]`.
fn decode_descriptors(target: &JsValue, key: &str) -> Result<(), PasskeyError> {
    let Ok(list) = Reflect::get(target, &JsValue::from_str(key)) else {
        return Ok(());
    };
    if let Some(list) = list.dyn_ref::<Array>() {
        for descriptor in list.iter() {
            decode_field(&descriptor, "id")?;
        }
    }
    Ok(())
}

fn encode(buffer: &ArrayBuffer) -> String {
    URL_SAFE_NO_PAD.encode(Uint8Array::new(buffer).to_vec())
}
