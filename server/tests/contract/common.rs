//! Helpers: an in-process server on 127.0.0.1:0 (on memory, or on the Redis
//! of `TETHER_TEST_REDIS_URL`), HTTP calls, socket frames awaited with a
//! bounded timeout.

use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tether_protocol::{
    Auth, AuthErrorCode, ClientMessage, Ping, Secret, ServerMessage, TokenResponse,
};
use tether_server::{AppState, Config};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Longest wait for any expected event.
pub const WAIT: Duration = Duration::from_secs(5);

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct Server {
    pub base: String,
    pub http: reqwest::Client,
    pub state: AppState,
}

/// Starts a server with `config` (fast hashing forced on). With
/// `TETHER_TEST_REDIS_URL` set, on that Redis under a prefix of its own:
/// the whole suite then runs against the Redis store (scripts/test runs it
/// both ways).
pub async fn start(mut config: Config) -> Server {
    config.fast_password_hashing = true;
    if let Ok(url) = std::env::var("TETHER_TEST_REDIS_URL") {
        config.redis = Some(tether_server::redis::RedisConfig {
            url,
            prefix: format!("contract-{}:", uuid::Uuid::new_v4().simple()),
        });
    }
    let state = AppState::connect(config)
        .await
        .expect("the test's redis-server is up");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = state.clone();
    tokio::spawn(async move {
        tether_server::serve(listener, served, std::future::pending())
            .await
            .unwrap()
    });
    // As a browser on the app's own page: the cookie rule's header (tests of
    // that rule use a client without it).
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "sec-fetch-site",
        reqwest::header::HeaderValue::from_static("same-origin"),
    );
    Server {
        base: format!("http://{addr}"),
        http: reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap(),
        state,
    }
}

/// A `--dev` server.
pub async fn dev() -> Server {
    start(Config::dev()).await
}

pub struct Login {
    pub token: String,
    /// `refresh_token=<value>`, ready for a `Cookie` header.
    pub cookie: String,
    pub set_cookie: String,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn ws_url(&self, query_token: Option<&str>) -> String {
        let base = self.base.replacen("http://", "ws://", 1);
        match query_token {
            Some(t) => format!("{base}/api/ws/notification?token={t}"),
            None => format!("{base}/api/ws/notification"),
        }
    }

    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn try_login(&self, username: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/api/auth/login",
            serde_json::json!({"username": username, "password": password}),
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> Login {
        let response = self.try_login(username, password).await;
        assert_eq!(response.status(), 200);
        login_from(response).await
    }

    pub async fn refresh(&self, cookie: &str) -> reqwest::Response {
        self.http
            .post(self.url("/api/auth/refresh"))
            .header("cookie", cookie)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap()
    }

    /// Creates a user through the admin route.
    pub async fn new_user(&self) -> (String, String) {
        let name = format!("u-{}", uuid::Uuid::new_v4().simple());
        let response = self
            .post_json(
                "/api/admin/users",
                serde_json::json!({"username": name, "password": "pw"}),
            )
            .await;
        assert_eq!(response.status(), 201);
        (name, "pw".into())
    }

    /// Opens a socket without an `Origin` header.
    pub async fn connect(&self, query_token: Option<&str>) -> Ws {
        self.try_connect(query_token, None).await.unwrap()
    }

    pub async fn try_connect(
        &self,
        query_token: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Ws, tungstenite::Error> {
        let mut request = self.ws_url(query_token).into_client_request().unwrap();
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", HeaderValue::from_str(origin).unwrap());
        }
        tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("connect timed out")
            .map(|(ws, _)| ws)
    }

    /// Logs in, opens a socket and authenticates it.
    pub async fn authed(&self, username: &str, password: &str) -> (Ws, Login) {
        let login = self.login(username, password).await;
        let mut ws = self.connect(None).await;
        send(&mut ws, auth(&login.token, None)).await;
        let frame = recv(&mut ws).await;
        assert!(matches!(frame, ServerMessage::AuthSuccess(_)), "{frame:?}");
        (ws, login)
    }
}

pub async fn login_from(response: reqwest::Response) -> Login {
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .expect("a refresh cookie")
        .to_str()
        .unwrap()
        .to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let body: TokenResponse = response.json().await.unwrap();
    assert_eq!(body.token_type, "Bearer");
    Login {
        token: body.access_token.expose().to_owned(),
        cookie,
        set_cookie,
    }
}

pub fn auth(token: &str, last_seq: Option<u64>) -> ClientMessage {
    ClientMessage::Auth(Auth {
        token: Some(Secret::new(token)),
        last_seq,
    })
}

pub fn ping(seq: u64) -> ClientMessage {
    ClientMessage::Ping(Ping { seq })
}

pub async fn send(ws: &mut Ws, message: ClientMessage) {
    ws.send(Message::text(message.encode())).await.unwrap();
}

pub async fn send_text(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text.to_owned())).await.unwrap();
}

/// The next data message (skipping WebSocket pings/pongs), within [`WAIT`].
pub async fn next_message(ws: &mut Ws) -> Option<Result<Message, tungstenite::Error>> {
    tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("no message within the timeout")
}

/// The next server frame, within [`WAIT`].
pub async fn recv(ws: &mut Ws) -> ServerMessage {
    match next_message(ws).await {
        Some(Ok(Message::Text(text))) => ServerMessage::decode(text.as_str()).unwrap(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// Expects a close frame with `code`.
pub async fn expect_close(ws: &mut Ws, code: u16) {
    match next_message(ws).await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), code),
        other => panic!("expected close {code}, got {other:?}"),
    }
}

/// Expects `auth_error` with `code`, then a 4001 close.
pub async fn expect_auth_error(ws: &mut Ws, code: AuthErrorCode) {
    match recv(ws).await {
        ServerMessage::AuthError(error) => {
            assert_eq!(error.code, code);
            assert!(!error.message.is_empty());
        }
        other => panic!("expected auth_error {code}, got {other:?}"),
    }
    expect_close(ws, 4001).await;
}

/// Expects an `error` frame with `code`.
pub async fn expect_error(ws: &mut Ws, code: &str) {
    match recv(ws).await {
        ServerMessage::Error(error) => assert_eq!(error.code, code),
        other => panic!("expected error {code}, got {other:?}"),
    }
}

/// Sends a ping and expects the pong: proves the socket is still usable.
pub async fn assert_alive(ws: &mut Ws, seq: u64) {
    send(ws, ping(seq)).await;
    match recv(ws).await {
        ServerMessage::Pong(pong) => assert_eq!(pong.seq, seq),
        other => panic!("expected pong, got {other:?}"),
    }
}

/// The HTTP status of a refused handshake.
pub fn refused_status(result: Result<Ws, tungstenite::Error>) -> u16 {
    match result {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("the handshake was accepted"),
    }
}
