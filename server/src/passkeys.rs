//! Passkeys (WebAuthn): sign up, sign in (with or without a username), and
//! the signed-in user's list of passkeys (`shared/PROTOCOL.md`, "Passkeys
//! (WebAuthn) and sessions").
//!
//! Verification is `webauthn-rs`'s. The state of a ceremony (its challenge)
//! stays here, keyed by a random value in the HTTP-only, SameSite=Strict
//! [`CEREMONY_COOKIE`]; a ceremony is used at most once and expires after
//! [`crate::Config::passkey_ceremony_ttl`]. Registration asks for a
//! discoverable credential (resident key required) and user verification;
//! a credential id belongs to one account only; a signature counter that
//! does not increase is refused (`webauthn-rs` checks it; the 0/0 of synced
//! passkeys passes).

use crate::error::{ApiFailure, parse_json};
use crate::http_api::{authenticated_user, require_own_origin, token_response};
use crate::{AppState, Config};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tether_protocol::ApiError;
use uuid::Uuid;
use webauthn_rs::prelude::{
    CreationChallengeResponse, DiscoverableAuthentication, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url, Webauthn,
    WebauthnBuilder, WebauthnError,
};
use webauthn_rs_proto::ResidentKeyRequirement;

/// Name of the ceremony cookie (`Path=/api/auth/passkey`).
pub const CEREMONY_COOKIE: &str = "passkey_ceremony";
/// `POST {"username"}`: start creating an account with a passkey.
pub const REGISTER_START_PATH: &str = "/api/auth/passkey/register/start";
/// `POST <credential>`: finish a registration (new account or added passkey).
pub const REGISTER_FINISH_PATH: &str = "/api/auth/passkey/register/finish";
/// `POST {}` or `{"username"}`: start signing in.
pub const LOGIN_START_PATH: &str = "/api/auth/passkey/login/start";
/// `POST <assertion>`: finish signing in.
pub const LOGIN_FINISH_PATH: &str = "/api/auth/passkey/login/finish";
/// `POST` (start adding a passkey) / `GET` (list), Bearer.
pub const PASSKEYS_PATH: &str = "/api/auth/passkeys";
/// Ceremonies in progress the server holds at most (the oldest is dropped).
pub const MAX_CEREMONIES: usize = 10_000;
/// Passkeys one account may hold.
pub const MAX_PASSKEYS_PER_USER: usize = 32;

/// One passkey of the signed-in account, as `GET /api/auth/passkeys` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyInfo {
    /// Id for `DELETE /api/auth/passkeys/{id}` (not the credential id).
    pub id: Uuid,
    /// When it was registered, milliseconds since the Unix epoch.
    pub created: i64,
    /// When it last signed in, milliseconds since the Unix epoch.
    pub last_used: Option<i64>,
}

#[derive(Debug)]
struct StoredPasskey {
    id: Uuid,
    user_id: Uuid,
    passkey: Passkey,
    created: i64,
    last_used: Option<i64>,
}

impl StoredPasskey {
    fn info(&self) -> PasskeyInfo {
        PasskeyInfo {
            id: self.id,
            created: self.created,
            last_used: self.last_used,
        }
    }
}

#[derive(Debug)]
enum Ceremony {
    /// Registration of a passkey: for a new account `username` (created
    /// at the finish), or added to the existing account `user_id`.
    Register {
        user_id: Uuid,
        new_account: Option<String>,
        state: PasskeyRegistration,
    },
    /// Sign-in with one of `user_id`'s passkeys (a username was given).
    Login {
        user_id: Uuid,
        state: PasskeyAuthentication,
    },
    /// Sign-in without a username: the credential names its user.
    Discoverable { state: DiscoverableAuthentication },
}

/// The passkey store: the relying party, credentials, ceremonies in progress.
pub struct Passkeys {
    webauthn: Webauthn,
    ceremony_ttl: Duration,
    /// By credential id (unique across accounts).
    credentials: Mutex<HashMap<Vec<u8>, StoredPasskey>>,
    ceremonies: Mutex<HashMap<String, (Instant, Ceremony)>>,
}

impl std::fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passkeys")
            .field("rp_id", &self.webauthn.get_allowed_origins())
            .field("ceremony_ttl", &self.ceremony_ttl)
            .finish_non_exhaustive()
    }
}

/// Why `--rp-id` / `--rp-origin` were refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid relying party: --rp-id must be a host name (not an IP address) and the host, or a parent domain of the host, of every --rp-origin"
)]
pub struct RelyingPartyError;

impl Passkeys {
    /// The store for `config.rp_id` and `config.rp_origins`.
    pub fn new(config: &Config) -> Result<Self, RelyingPartyError> {
        let (first, rest) = config.rp_origins.split_first().ok_or(RelyingPartyError)?;
        let mut builder = WebauthnBuilder::new(&config.rp_id, first)
            .map_err(|_| RelyingPartyError)?
            .rp_name("tether");
        for origin in rest {
            builder = builder.append_allowed_origin(origin);
        }
        let webauthn = builder.build().map_err(|_| RelyingPartyError)?;
        Ok(Self {
            webauthn,
            ceremony_ttl: config.passkey_ceremony_ttl,
            credentials: Mutex::default(),
            ceremonies: Mutex::default(),
        })
    }

    fn begin(&self, ceremony: Ceremony) -> String {
        let key = base64_url(&crate::random_bytes::<32>());
        let now = Instant::now();
        let mut ceremonies = self.ceremonies.lock().expect("lock");
        ceremonies.retain(|_, (expires, _)| *expires > now);
        if ceremonies.len() >= MAX_CEREMONIES
            && let Some(oldest) = ceremonies
                .iter()
                .min_by_key(|(_, (expires, _))| *expires)
                .map(|(k, _)| k.clone())
        {
            ceremonies.remove(&oldest);
        }
        ceremonies.insert(key.clone(), (now + self.ceremony_ttl, ceremony));
        key
    }

    /// Takes the ceremony of this cookie value: single use, unexpired.
    fn take(&self, key: &str) -> Option<Ceremony> {
        let (expires, ceremony) = self.ceremonies.lock().expect("lock").remove(key)?;
        (Instant::now() < expires).then_some(ceremony)
    }

    fn ids_of(&self, user_id: Uuid) -> Vec<Vec<u8>> {
        self.credentials
            .lock()
            .expect("lock")
            .iter()
            .filter(|(_, s)| s.user_id == user_id)
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn passkeys_of(&self, user_id: Uuid) -> Vec<Passkey> {
        self.credentials
            .lock()
            .expect("lock")
            .values()
            .filter(|s| s.user_id == user_id)
            .map(|s| s.passkey.clone())
            .collect()
    }

    /// The account's passkeys, oldest first.
    pub fn list(&self, user_id: Uuid) -> Vec<PasskeyInfo> {
        let mut list: Vec<_> = self
            .credentials
            .lock()
            .expect("lock")
            .values()
            .filter(|s| s.user_id == user_id)
            .map(StoredPasskey::info)
            .collect();
        list.sort_by_key(|p| (p.created, p.id));
        list
    }

    /// Deletes one of the account's passkeys; false when it has no such one.
    pub fn delete(&self, user_id: Uuid, id: Uuid) -> bool {
        let mut credentials = self.credentials.lock().expect("lock");
        let before = credentials.len();
        credentials.retain(|_, s| !(s.user_id == user_id && s.id == id));
        credentials.len() != before
    }

    /// Starts a registration for `user_id` (a fresh id for a new account).
    fn start_registration(
        &self,
        user_id: Uuid,
        username: &str,
        new_account: bool,
    ) -> Result<(CreationChallengeResponse, String), PasskeyFailure> {
        let existing = self.ids_of(user_id);
        if existing.len() >= MAX_PASSKEYS_PER_USER {
            return Err(PasskeyFailure::TooMany);
        }
        let exclude = (!existing.is_empty()).then_some(existing);
        let (mut options, state) = self
            .webauthn
            .start_passkey_registration(user_id, username, username, exclude)
            .map_err(|_| PasskeyFailure::Api(ApiFailure::BadRequest("invalid username".into())))?;
        // A discoverable credential, so that sign-in works without a
        // username. `start_passkey_registration` leaves it preferred; the
        // verification at the finish does not depend on it.
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.resident_key = Some(ResidentKeyRequirement::Required);
            selection.require_resident_key = true;
        }
        let key = self.begin(Ceremony::Register {
            user_id,
            new_account: new_account.then(|| username.to_owned()),
            state,
        });
        Ok((options, key))
    }
}

/// An error answer of the passkey routes (`{"error","message"}` bodies).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasskeyFailure {
    /// One of the common failures (400 body, 401 bearer, 403/415 cookie rule, 409).
    #[error(transparent)]
    Api(#[from] ApiFailure),
    /// 400: no ceremony cookie, or its ceremony is unknown, expired or used.
    #[error("the passkey ceremony is missing, expired or already used; start again")]
    Ceremony,
    /// 400: the username has no passkey.
    #[error("this account has no passkey")]
    NoPasskey,
    /// 401: the credential is unknown, or its verification failed (wrong
    /// origin or challenge, bad signature, no user verification, a
    /// signature counter that did not increase).
    #[error("the passkey was not accepted")]
    Refused,
    /// 404: the account has no passkey with this id.
    #[error("no such passkey")]
    NotFound,
    /// 409: this credential is already registered (to any account).
    #[error("this passkey is already registered")]
    Duplicate,
    /// 409: the account already holds [`MAX_PASSKEYS_PER_USER`] passkeys.
    #[error("this account holds the most passkeys allowed")]
    TooMany,
}

impl IntoResponse for PasskeyFailure {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            Self::Api(api) => return api.clone().into_response(),
            Self::Ceremony => (StatusCode::BAD_REQUEST, "invalid_ceremony"),
            Self::NoPasskey => (StatusCode::BAD_REQUEST, "no_passkey"),
            Self::Refused => (StatusCode::UNAUTHORIZED, "passkey_refused"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::Duplicate => (StatusCode::CONFLICT, "duplicate_credential"),
            Self::TooMany => (StatusCode::CONFLICT, "too_many_passkeys"),
        };
        let body = ApiError {
            error: code.to_owned(),
            message: self.to_string(),
        };
        (status, Json(body)).into_response()
    }
}

/// The passkey routes (see the module docs).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(REGISTER_START_PATH, post(register_start))
        .route(REGISTER_FINISH_PATH, post(register_finish))
        .route(LOGIN_START_PATH, post(login_start))
        .route(LOGIN_FINISH_PATH, post(login_finish))
        .route(PASSKEYS_PATH, post(add_start).get(list))
        .route("/api/auth/passkeys/{id}", delete(remove))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsernameBody {
    username: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginStartBody {
    #[serde(default)]
    username: Option<String>,
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn ceremony_cookie(state: &AppState, value: &str, max_age: u64) -> HeaderValue {
    let secure = if state.config.secure_cookie {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{CEREMONY_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/api/auth/passkey; Max-Age={max_age}{secure}"
    ))
    .expect("ceremony cookies are base64url")
}

fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim_matches('"'))
}

/// The options as JSON with the ceremony cookie.
fn options_response(state: &AppState, options: impl Serialize, key: &str) -> Response {
    let secs = state.config.passkey_ceremony_ttl.as_secs();
    let mut response = Json(options).into_response();
    let headers = response.headers_mut();
    headers.insert(header::SET_COOKIE, ceremony_cookie(state, key, secs));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Takes the ceremony named by the request's cookie.
fn take_ceremony(state: &AppState, headers: &HeaderMap) -> Result<Ceremony, PasskeyFailure> {
    let key = cookie_value(headers, CEREMONY_COOKIE).ok_or(PasskeyFailure::Ceremony)?;
    state.passkeys.take(key).ok_or(PasskeyFailure::Ceremony)
}

fn clear_ceremony_cookie(state: &AppState, response: &mut Response) {
    response
        .headers_mut()
        .append(header::SET_COOKIE, ceremony_cookie(state, "", 0));
}

fn refused(err: &WebauthnError) -> PasskeyFailure {
    // The error names a check (origin, challenge, counter...), never a secret.
    tracing::info!(%err, "passkey refused");
    PasskeyFailure::Refused
}

async fn register_start(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PasskeyFailure> {
    require_own_origin(&state, &headers, true)?;
    let UsernameBody { username } = parse_json(&body)?;
    if !crate::accounts::valid_username(&username) {
        return Err(ApiFailure::BadRequest("the username must be 1 to 64 bytes".into()).into());
    }
    if state
        .accounts
        .by_name(&username)
        .await
        .map_err(ApiFailure::from)?
        .is_some()
    {
        return Err(ApiFailure::Conflict.into());
    }
    let (options, key) = state
        .passkeys
        .start_registration(Uuid::new_v4(), &username, true)?;
    Ok(options_response(&state, options, &key))
}

/// `POST /api/auth/passkeys` (Bearer): start adding a passkey to the account.
async fn add_start(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PasskeyFailure> {
    let user_id = authenticated_user(&state, &headers).await?;
    require_own_origin(&state, &headers, true)?;
    let user = state
        .accounts
        .by_id(user_id)
        .await
        .map_err(ApiFailure::from)?
        .ok_or(ApiFailure::Unauthorized)?;
    let (options, key) = state
        .passkeys
        .start_registration(user.id, &user.username, false)?;
    Ok(options_response(&state, options, &key))
}

async fn register_finish(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PasskeyFailure> {
    require_own_origin(&state, &headers, true)?;
    let credential: RegisterPublicKeyCredential = parse_json(&body)?;
    let Ceremony::Register {
        user_id,
        new_account,
        state: registration,
    } = take_ceremony(&state, &headers)?
    else {
        return Err(PasskeyFailure::Ceremony);
    };
    let passkey = state
        .passkeys
        .webauthn
        .finish_passkey_registration(&credential, &registration)
        .map_err(|e| refused(&e))?;
    let cred_id = passkey.cred_id().clone();
    if state
        .passkeys
        .credentials
        .lock()
        .expect("lock")
        .contains_key(&cred_id)
    {
        return Err(PasskeyFailure::Duplicate);
    }
    if let Some(username) = &new_account {
        state
            .accounts
            .create_passwordless(user_id, username)
            .await
            .map_err(ApiFailure::from)?
            .map_err(|e| match e {
                crate::accounts::CreateUserError::Exists => ApiFailure::Conflict,
                _ => ApiFailure::BadRequest("invalid username".into()),
            })?;
    } else if state
        .accounts
        .by_id(user_id)
        .await
        .map_err(ApiFailure::from)?
        .is_none()
    {
        return Err(ApiFailure::Unauthorized.into());
    }
    let stored = StoredPasskey {
        id: Uuid::new_v4(),
        user_id,
        passkey,
        created: crate::now_ms(),
        last_used: None,
    };
    let info = stored.info();
    {
        let mut credentials = state.passkeys.credentials.lock().expect("lock");
        if credentials.contains_key(&cred_id) {
            return Err(PasskeyFailure::Duplicate);
        }
        credentials.insert(cred_id, stored);
    }
    tracing::info!(%user_id, new_account = new_account.is_some(), "passkey registered");
    let mut response = if new_account.is_some() {
        token_response(
            &state,
            state
                .sessions
                .login(user_id)
                .await
                .map_err(ApiFailure::from)?,
        )
    } else {
        (StatusCode::CREATED, Json(info)).into_response()
    };
    clear_ceremony_cookie(&state, &mut response);
    Ok(response)
}

async fn login_start(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PasskeyFailure> {
    require_own_origin(&state, &headers, true)?;
    let request: LoginStartBody = if body.is_empty() {
        LoginStartBody::default()
    } else {
        parse_json(&body)?
    };
    let webauthn = &state.passkeys.webauthn;
    let (options, ceremony) = match request.username {
        Some(username) => {
            let user = state
                .accounts
                .by_name(&username)
                .await
                .map_err(ApiFailure::from)?
                .ok_or(PasskeyFailure::NoPasskey)?;
            let passkeys = state.passkeys.passkeys_of(user.id);
            if passkeys.is_empty() {
                return Err(PasskeyFailure::NoPasskey);
            }
            let (options, auth) = webauthn
                .start_passkey_authentication(&passkeys)
                .map_err(|_| PasskeyFailure::NoPasskey)?;
            (
                options,
                Ceremony::Login {
                    user_id: user.id,
                    state: auth,
                },
            )
        }
        None => {
            let (mut options, auth) = webauthn
                .start_discoverable_authentication()
                .map_err(|_| PasskeyFailure::Ceremony)?;
            // webauthn-rs asks for conditional mediation (autofill); the SPA
            // asks on a button press, so the browser's modal prompt it is.
            options.mediation = None;
            (options, Ceremony::Discoverable { state: auth })
        }
    };
    let key = state.passkeys.begin(ceremony);
    Ok(options_response(&state, options, &key))
}

async fn login_finish(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PasskeyFailure> {
    require_own_origin(&state, &headers, true)?;
    let credential: PublicKeyCredential = parse_json(&body)?;
    let ceremony = take_ceremony(&state, &headers)?;
    let webauthn = &state.passkeys.webauthn;
    let cred_id = credential.get_credential_id().to_vec();
    // The credentials' lock is not held across the awaits below.
    let user_id = {
        let mut credentials = state.passkeys.credentials.lock().expect("lock");
        let stored = credentials
            .get_mut(&cred_id)
            .ok_or(PasskeyFailure::Refused)?;
        let result = match ceremony {
            Ceremony::Login { user_id, state } => {
                if stored.user_id != user_id {
                    return Err(PasskeyFailure::Refused);
                }
                webauthn.finish_passkey_authentication(&credential, &state)
            }
            Ceremony::Discoverable { state } => {
                let (user_id, _) = webauthn
                    .identify_discoverable_authentication(&credential)
                    .map_err(|e| refused(&e))?;
                if stored.user_id != user_id {
                    return Err(PasskeyFailure::Refused);
                }
                webauthn.finish_discoverable_authentication_v2(&credential, state, &stored.passkey)
            }
            Ceremony::Register { .. } => return Err(PasskeyFailure::Ceremony),
        }
        .map_err(|e| refused(&e))?;
        stored.passkey.update_credential(&result);
        stored.last_used = Some(crate::now_ms());
        stored.user_id
    };
    if state
        .accounts
        .by_id(user_id)
        .await
        .map_err(ApiFailure::from)?
        .is_none()
    {
        return Err(PasskeyFailure::Refused);
    }
    tracing::info!(%user_id, "passkey login");
    let issued = state
        .sessions
        .login(user_id)
        .await
        .map_err(ApiFailure::from)?;
    let mut response = token_response(&state, issued);
    clear_ceremony_cookie(&state, &mut response);
    Ok(response)
}

async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<PasskeyInfo>>, PasskeyFailure> {
    let user_id = authenticated_user(&state, &headers).await?;
    Ok(Json(state.passkeys.list(user_id)))
}

async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, PasskeyFailure> {
    let user_id = authenticated_user(&state, &headers).await?;
    let id = Uuid::parse_str(&id).map_err(|_| PasskeyFailure::NotFound)?;
    if state.passkeys.delete(user_id, id) {
        tracing::info!(%user_id, passkey = %id, "passkey deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(PasskeyFailure::NotFound)
    }
}

/// The `--rp-origin` default: the server's own address as `localhost`, and
/// the dev proxy (`trunk serve` on `http://localhost:8080`).
pub fn default_rp_origins(port: u16) -> Vec<Url> {
    let mut origins = vec![Url::parse(&format!("http://localhost:{port}")).expect("valid url")];
    if port != 8080 {
        origins.push(Url::parse("http://localhost:8080").expect("valid url"));
    }
    origins
}
