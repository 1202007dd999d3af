//! Passkeys over real HTTP against an in-process server (127.0.0.1, port
//! 0), with 1Password's software authenticator (`passkey-client` +
//! `passkey-authenticator`) playing the browser and the platform
//! authenticator. The relying party is `localhost` (WebAuthn refuses IP
//! addresses); the HTTP requests go to 127.0.0.1, the ceremonies say
//! `http://localhost:<port>`, as a browser on the SPA's page would.

use futures_util::StreamExt;
use passkey_authenticator::{Authenticator, UiHint, UserCheck, UserValidationMethod};
use passkey_client::{Client, DefaultClientData};
use passkey_crypto::AvailableBackend;
use passkey_types::Passkey as StoredKey;
use passkey_types::ctap2::{Aaguid, Ctap2Error};
use passkey_types::webauthn::{CredentialCreationOptions, CredentialRequestOptions};
use serde_json::{Value, json};
use std::time::Duration;
use tether_server::passkeys::PasskeyInfo;
use tether_server::{AppState, Config};
use url::Url;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(5);

/// A user who is present and verified (a fingerprint that always matches).
struct VerifiedUser;

#[async_trait::async_trait]
impl UserValidationMethod for VerifiedUser {
    type PasskeyItem = StoredKey;

    async fn check_user<'a>(
        &self,
        _hint: UiHint<'a, StoredKey>,
        presence: bool,
        verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck {
            presence,
            verification,
        })
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(true)
    }
}

/// An authenticator holding one passkey (`Option<Passkey>` is the store
/// `passkey-authenticator` offers for discoverable credentials).
type Software =
    Client<Option<StoredKey>, VerifiedUser, AvailableBackend, public_suffix::PublicSuffixList, ()>;

/// A software authenticator with its own credential store; `counter`: it
/// keeps a signature counter (a hardware key) rather than 0 (synced).
fn authenticator(store: Option<StoredKey>, counter: bool) -> Software {
    let mut authenticator =
        Authenticator::new(Aaguid::new_empty(), store, VerifiedUser, AvailableBackend);
    authenticator.set_make_credentials_with_signature_counter(counter);
    Client::new(authenticator).allows_insecure_localhost(true)
}

struct Server {
    base: String,
    /// The SPA's origin, `http://localhost:<port>`.
    origin: Url,
    /// As a browser on the app's own page (`Sec-Fetch-Site: same-origin`).
    http: reqwest::Client,
    state: AppState,
}

async fn start_with(ceremony_ttl: Duration) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let origin = Url::parse(&format!("http://localhost:{port}")).unwrap();
    let config = Config {
        rp_id: "localhost".into(),
        rp_origins: vec![origin.clone()],
        passkey_ceremony_ttl: ceremony_ttl,
        ..Config::dev()
    };
    let state = AppState::new(config);
    let served = state.clone();
    tokio::spawn(async move {
        tether_server::serve(listener, served, std::future::pending())
            .await
            .unwrap()
    });
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "sec-fetch-site",
        reqwest::header::HeaderValue::from_static("same-origin"),
    );
    Server {
        base: format!("http://127.0.0.1:{port}"),
        origin,
        http: reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap(),
        state,
    }
}

async fn start() -> Server {
    start_with(Duration::from_secs(300)).await
}

/// The value of the `name` cookie a response sets, as `name=value`.
fn set_cookie(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap().to_owned())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

/// A ceremony's options and the cookie that names it.
struct Started {
    options: Value,
    cookie: String,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn post(
        &self,
        path: &str,
        body: &Value,
        cookie: Option<&str>,
        bearer: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.http.post(self.url(path)).json(body);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    async fn started(&self, path: &str, body: Value, bearer: Option<&str>) -> Started {
        let response = self.post(path, &body, None, bearer).await;
        assert_eq!(response.status(), 200, "{path}");
        let cookie = set_cookie(&response, "passkey_ceremony");
        let set = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict"),
            "{set}"
        );
        assert!(set.contains("Max-Age=300"), "{set}");
        Started {
            options: response.json().await.unwrap(),
            cookie,
        }
    }

    /// The authenticator's answer to a registration ceremony.
    async fn create(&self, client: &mut Software, started: &Started) -> Value {
        let options: CredentialCreationOptions =
            serde_json::from_value(started.options.clone()).unwrap();
        let created = client
            .register(&self.origin, options, DefaultClientData)
            .await
            .expect("the authenticator creates a credential");
        serde_json::to_value(created).unwrap()
    }

    /// The authenticator's answer to a sign-in ceremony, from `origin`.
    async fn assert(&self, client: &mut Software, started: &Started, origin: &Url) -> Value {
        let options: CredentialRequestOptions =
            serde_json::from_value(started.options.clone()).unwrap();
        let asserted = client
            .authenticate(origin, options, DefaultClientData)
            .await
            .expect("the authenticator signs");
        serde_json::to_value(asserted).unwrap()
    }

    /// Creates an account `username` with a passkey; its access token.
    async fn sign_up(&self, client: &mut Software, username: &str) -> String {
        let started = self
            .started(
                "/api/auth/passkey/register/start",
                json!({ "username": username }),
                None,
            )
            .await;
        let credential = self.create(client, &started).await;
        let response = self
            .post(
                "/api/auth/passkey/register/finish",
                &credential,
                Some(&started.cookie),
                None,
            )
            .await;
        assert_eq!(response.status(), 200);
        set_cookie(&response, "refresh_token");
        token(response).await
    }

    /// Runs a sign-in ceremony (`body` `{}` or `{"username"}`) to its finish.
    async fn sign_in(&self, client: &mut Software, body: Value) -> reqwest::Response {
        let started = self
            .started("/api/auth/passkey/login/start", body, None)
            .await;
        let assertion = self.assert(client, &started, &self.origin).await;
        self.post(
            "/api/auth/passkey/login/finish",
            &assertion,
            Some(&started.cookie),
            None,
        )
        .await
    }

    async fn user_of(&self, token: &str) -> Uuid {
        self.state
            .sessions
            .authenticate(token)
            .await
            .unwrap()
            .unwrap()
            .sub
    }

    async fn list(&self, token: &str) -> Vec<PasskeyInfo> {
        let response = self
            .http
            .get(self.url("/api/auth/passkeys"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}

async fn token(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["error"].as_str().unwrap().to_owned()
}

fn name() -> String {
    format!("p-{}", Uuid::new_v4().simple())
}

#[tokio::test]
async fn register_asks_for_a_discoverable_verified_credential_and_signs_in() {
    let server = start().await;
    let started = server
        .started(
            "/api/auth/passkey/register/start",
            json!({"username": name()}),
            None,
        )
        .await;
    let selection = &started.options["publicKey"]["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required", "{selection}");
    assert_eq!(selection["requireResidentKey"], true);
    assert_eq!(selection["userVerification"], "required");
    assert_eq!(started.options["publicKey"]["rp"]["id"], "localhost");

    let mut client = authenticator(None, false);
    let username = name();
    let token = server.sign_up(&mut client, &username).await;
    let user = server
        .state
        .accounts
        .by_name(&username)
        .await
        .unwrap()
        .expect("the account exists");
    assert_eq!(server.user_of(&token).await, user.id);
    let listed = server.list(&token).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_used, None);
    // The account has no password.
    let response = server
        .post(
            "/api/auth/login",
            &json!({"username": username, "password": ""}),
            None,
            None,
        )
        .await;
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_taken_username_is_refused_with_409() {
    let server = start().await;
    let response = server
        .post(
            "/api/auth/passkey/register/start",
            &json!({"username": "alice"}),
            None,
            None,
        )
        .await;
    assert_eq!(response.status(), 409);
    for bad in [json!({"username": ""}), json!({"name": "x"}), json!([])] {
        let response = server
            .post("/api/auth/passkey/register/start", &bad, None, None)
            .await;
        assert_eq!(response.status(), 400, "{bad}");
    }
}

#[tokio::test]
async fn sign_in_without_a_username() {
    let server = start().await;
    let mut client = authenticator(None, false);
    let first = server.sign_up(&mut client, &name()).await;
    let user = server.user_of(&first).await;
    let started = server
        .started("/api/auth/passkey/login/start", json!({}), None)
        .await;
    // Discoverable: no credential is named, and the browser's modal prompt
    // (not autofill) is asked for.
    assert!(
        started.options["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty)
    );
    assert!(started.options.get("mediation").is_none());
    let assertion = server.assert(&mut client, &started, &server.origin).await;
    let response = server
        .post(
            "/api/auth/passkey/login/finish",
            &assertion,
            Some(&started.cookie),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    set_cookie(&response, "refresh_token");
    let second = token(response).await;
    assert_eq!(server.user_of(&second).await, user);
    assert!(server.list(&second).await[0].last_used.is_some());
}

#[tokio::test]
async fn sign_in_by_username() {
    let server = start().await;
    let mut client = authenticator(None, false);
    let username = name();
    let first = server.sign_up(&mut client, &username).await;
    let response = server
        .sign_in(&mut client, json!({ "username": username }))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        server.user_of(&token(response).await).await,
        server.user_of(&first).await
    );
    // A user without passkeys gets nothing to sign.
    let response = server
        .post(
            "/api/auth/passkey/login/start",
            &json!({"username": "bob"}),
            None,
            None,
        )
        .await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn an_assertion_for_another_origin_is_refused() {
    let server = start().await;
    let mut client = authenticator(None, false);
    server.sign_up(&mut client, &name()).await;
    let started = server
        .started("/api/auth/passkey/login/start", json!({}), None)
        .await;
    let elsewhere = Url::parse("http://localhost:1").unwrap();
    let assertion = server.assert(&mut client, &started, &elsewhere).await;
    let response = server
        .post(
            "/api/auth/passkey/login/finish",
            &assertion,
            Some(&started.cookie),
            None,
        )
        .await;
    assert_eq!(response.status(), 401);
    assert_eq!(error_code(response).await, "passkey_refused");
}

#[tokio::test]
async fn a_replayed_ceremony_is_refused() {
    let server = start().await;
    let mut client = authenticator(None, false);
    server.sign_up(&mut client, &name()).await;
    let started = server
        .started("/api/auth/passkey/login/start", json!({}), None)
        .await;
    let assertion = server.assert(&mut client, &started, &server.origin).await;
    let finish = || {
        server.post(
            "/api/auth/passkey/login/finish",
            &assertion,
            Some(&started.cookie),
            None,
        )
    };
    assert_eq!(finish().await.status(), 200);
    let replayed = finish().await;
    assert_eq!(replayed.status(), 400);
    assert_eq!(error_code(replayed).await, "invalid_ceremony");
    // And without the cookie there is no ceremony at all.
    let response = server
        .post("/api/auth/passkey/login/finish", &assertion, None, None)
        .await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn an_expired_ceremony_is_refused() {
    // A ceremony lifetime of zero: every ceremony has expired by its finish.
    let server = start_with(Duration::ZERO).await;
    let mut client = authenticator(None, false);
    let response = server
        .post(
            "/api/auth/passkey/register/start",
            &json!({"username": name()}),
            None,
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    let started = Started {
        cookie: set_cookie(&response, "passkey_ceremony"),
        options: response.json().await.unwrap(),
    };
    let credential = server.create(&mut client, &started).await;
    let response = server
        .post(
            "/api/auth/passkey/register/finish",
            &credential,
            Some(&started.cookie),
            None,
        )
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(response).await, "invalid_ceremony");
}

#[tokio::test]
async fn a_cloned_authenticators_counter_is_refused() {
    let server = start().await;
    let mut original = authenticator(None, true);
    let username = name();
    server.sign_up(&mut original, &username).await;
    let mut clone = authenticator(original.authenticator().store().clone(), true);
    // The original signs in (its counter moves on), then the copy presents
    // the same counter value again.
    let response = server.sign_in(&mut original, json!({})).await;
    assert_eq!(response.status(), 200);
    let response = server.sign_in(&mut clone, json!({})).await;
    assert_eq!(response.status(), 401);
    // The original still works: its counter still increases.
    let response = server
        .sign_in(&mut original, json!({ "username": username }))
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn counterless_synced_passkeys_sign_in_repeatedly() {
    // Synced passkeys report 0 every time: 0/0 is not a clone.
    let server = start().await;
    let mut client = authenticator(None, false);
    server.sign_up(&mut client, &name()).await;
    for _ in 0..3 {
        assert_eq!(server.sign_in(&mut client, json!({})).await.status(), 200);
    }
}

#[tokio::test]
async fn cross_site_cookie_requests_are_refused_with_403() {
    let server = start().await;
    let mut client = authenticator(None, false);
    server.sign_up(&mut client, &name()).await;
    let started = server
        .started("/api/auth/passkey/login/start", json!({}), None)
        .await;
    let assertion = server.assert(&mut client, &started, &server.origin).await;
    // A page of another site posting to the finish with the victim's cookie.
    let other_site = reqwest::Client::new();
    let response = other_site
        .post(server.url("/api/auth/passkey/login/finish"))
        .header("cookie", &started.cookie)
        .header("origin", "http://evil.example")
        .header("sec-fetch-site", "cross-site")
        .json(&assertion)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    for path in [
        "/api/auth/passkey/register/start",
        "/api/auth/passkey/login/start",
        "/api/auth/passkey/register/finish",
    ] {
        let response = other_site
            .post(server.url(path))
            .header("origin", "http://evil.example")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
    }
    // A form post (no JSON content type) from the app's own origin.
    let response = server
        .http
        .post(server.url("/api/auth/passkey/login/finish"))
        .header("cookie", &started.cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("a=b")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    // The refused requests did not use up the ceremony.
    let response = server
        .post(
            "/api/auth/passkey/login/finish",
            &assertion,
            Some(&started.cookie),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    let refresh = set_cookie(&response, "refresh_token");
    // DELETE /api/auth/session by cookie from another site.
    let response = other_site
        .delete(server.url("/api/auth/session"))
        .header("cookie", &refresh)
        .header("origin", "http://evil.example")
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn a_deleted_passkey_no_longer_signs_in() {
    let server = start().await;
    let mut client = authenticator(None, false);
    let mine = server.sign_up(&mut client, &name()).await;
    let listed = server.list(&mine).await;
    assert_eq!(listed.len(), 1);
    let path = format!("/api/auth/passkeys/{}", listed[0].id);
    // Another account cannot delete it.
    let alice = server
        .post(
            "/api/auth/login",
            &json!({"username": "alice", "password": "wonderland"}),
            None,
            None,
        )
        .await;
    let alice = token(alice).await;
    let delete = |bearer: String| {
        let request = server.http.delete(server.url(&path)).bearer_auth(bearer);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(delete(alice).await, 404);
    assert_eq!(delete(mine.clone()).await, 204);
    assert_eq!(delete(mine.clone()).await, 404);
    assert!(server.list(&mine).await.is_empty());
    let response = server.sign_in(&mut client, json!({})).await;
    assert_eq!(response.status(), 401);
    let response = server
        .http
        .get(server.url("/api/auth/passkeys"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_password_account_adds_a_passkey_and_signs_in_with_it() {
    let server = start().await;
    let response = server
        .post(
            "/api/auth/login",
            &json!({"username": "bob", "password": "builder"}),
            None,
            None,
        )
        .await;
    let bob = token(response).await;
    let response = server
        .post("/api/auth/passkeys", &json!({}), None, None)
        .await;
    assert_eq!(response.status(), 401);
    let started = server
        .started("/api/auth/passkeys", json!({}), Some(&bob))
        .await;
    assert_eq!(started.options["publicKey"]["user"]["name"], "bob");
    let mut client = authenticator(None, false);
    let credential = server.create(&mut client, &started).await;
    let response = server
        .post(
            "/api/auth/passkey/register/finish",
            &credential,
            Some(&started.cookie),
            None,
        )
        .await;
    assert_eq!(response.status(), 201);
    let added: PasskeyInfo = response.json().await.unwrap();
    assert_eq!(server.list(&bob).await, vec![added]);
    // Adding again lists the existing one to exclude.
    let again = server
        .started("/api/auth/passkeys", json!({}), Some(&bob))
        .await;
    assert_eq!(
        again.options["publicKey"]["excludeCredentials"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let response = server.sign_in(&mut client, json!({})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        server.user_of(&token(response).await).await,
        tether_server::accounts::BOB_ID
    );
    // And the password still works.
    let response = server
        .post(
            "/api/auth/login",
            &json!({"username": "bob", "password": "builder"}),
            None,
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn delete_session_ends_every_session_and_revokes_sockets() {
    let server = start().await;
    let mut client = authenticator(None, false);
    let first = server.sign_up(&mut client, &name()).await;
    let response = server.sign_in(&mut client, json!({})).await;
    let refresh = set_cookie(&response, "refresh_token");
    let second = token(response).await;

    let ws_url = format!(
        "{}/api/ws/notification",
        server.base.replacen("http://", "ws://", 1)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    use futures_util::SinkExt as _;
    let auth = json!({"type": "auth", "payload": {"token": second, "last_seq": null}});
    ws.send(tungstenite::Message::text(auth.to_string()))
        .await
        .unwrap();
    let frame = next_text(&mut ws).await;
    assert!(frame.contains("auth_success"), "{frame}");

    let response = server
        .http
        .delete(server.url("/api/auth/session"))
        .bearer_auth(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let cleared = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.starts_with("refresh_token=;") && cleared.contains("Max-Age=0"));

    let frame = next_text(&mut ws).await;
    let frame: Value = serde_json::from_str(&frame).unwrap();
    assert_eq!(frame["type"], "auth_error");
    assert_eq!(frame["payload"]["code"], "revoked");
    let close = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(tungstenite::Message::Close(frame))) => {
                    break frame.map(|f| u16::from(f.code));
                }
                Some(Ok(_)) => {}
                other => panic!("{other:?}"),
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(close, Some(4001));
    for token in [&first, &second] {
        let response = server
            .http
            .get(server.url("/api/auth/passkeys"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    let response = server
        .post("/api/auth/refresh", &json!({}), Some(&refresh), None)
        .await;
    assert_eq!(response.status(), 401);
    // A second DELETE has nothing to end.
    let response = server
        .http
        .delete(server.url("/api/auth/session"))
        .bearer_auth(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_text(ws: &mut Ws) -> String {
    tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(tungstenite::Message::Text(text))) => break text.to_string(),
                Some(Ok(_)) => {}
                other => panic!("{other:?}"),
            }
        }
    })
    .await
    .expect("a frame within 5 s")
}

#[test]
fn the_relying_party_must_be_a_host_name_matching_the_origins() {
    let config = |rp_id: &str, origin: &str| Config {
        rp_id: rp_id.into(),
        rp_origins: vec![Url::parse(origin).unwrap()],
        ..Config::dev()
    };
    use tether_server::passkeys::Passkeys;
    assert!(Passkeys::new(&config("localhost", "http://localhost:8080")).is_ok());
    assert!(Passkeys::new(&config("example.com", "https://app.example.com")).is_ok());
    // Browsers refuse WebAuthn on an IP address.
    assert!(Passkeys::new(&config("127.0.0.1", "http://127.0.0.1:8080")).is_err());
    assert!(Passkeys::new(&config("example.com", "https://example.org")).is_err());
    assert!(
        Passkeys::new(&Config {
            rp_origins: Vec::new(),
            ..Config::dev()
        })
        .is_err()
    );
}
