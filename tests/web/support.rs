//! Helpers of the browser tests: the reference server's URL, sign-up and
//! login through its API, a manager mounted in its own reactive owner, and
//! awaiting events with a bound (never sleeping to synchronise).

use futures::StreamExt;
use futures::future::{Either, select};
use leptos::prelude::*;
use serde_json::{Value, json};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use tether::prelude::*;
use tether::{EventStream, Secret, Snapshot};
use tether_protocol::TokenResponse;
use web_sys::RequestCredentials;

/// The reference server `scripts/test` started (set at compile time).
pub const SERVER: &str = match option_env!("TETHER_TEST_SERVER") {
    Some(url) => url,
    None => "http://127.0.0.1:3001",
};

pub fn ws_url() -> String {
    format!("{}/api/ws/notification", SERVER.replacen("http", "ws", 1))
}

pub async fn post(path: &str, body: Value) -> gloo_net::http::Response {
    gloo_net::http::Request::post(&format!("{SERVER}{path}"))
        .credentials(RequestCredentials::Include)
        .json(&body)
        .expect("a JSON body")
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!("POST {path} failed: is the reference server running at {SERVER}? {e}")
        })
}

pub async fn get_json(path: &str) -> Value {
    gloo_net::http::Request::get(&format!("{SERVER}{path}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path} failed: {e}"))
        .json()
        .await
        .expect("a JSON body")
}

/// A fresh user on the server, so tests do not disturb each other.
pub struct User {
    pub name: String,
    pub id: String,
    pub password: String,
}

pub async fn sign_up(prefix: &str) -> User {
    let name = format!("{prefix}-{}", (js_sys::Math::random() * 1e12) as u64);
    let password = "correct horse battery staple".to_owned();
    let response = post(
        "/api/admin/users",
        json!({"username": name, "password": password}),
    )
    .await;
    assert_eq!(
        response.status(),
        201,
        "creating a user needs the server in --dev mode"
    );
    let body: Value = response.json().await.unwrap();
    User {
        id: body["id"].as_str().expect("a user id").to_owned(),
        name,
        password,
    }
}

/// Logs in (the refresh cookie lands in the browser) and returns the token.
pub async fn log_in(user: &User) -> TokenResponse {
    let response = post(
        "/api/auth/login",
        json!({"username": user.name, "password": user.password}),
    )
    .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

pub async fn admin(path: &str, body: Value) {
    let response = post(&format!("/api/admin/{path}"), body).await;
    assert!(response.ok(), "admin {path}: HTTP {}", response.status());
}

/// Sockets of `user` the server has registered (authenticated).
pub async fn server_sockets(user: &User) -> usize {
    let list = get_json("/api/admin/connections").await;
    list.as_array()
        .expect("a list of connections")
        .iter()
        .filter(|c| c["user_id"] == user.id.as_str())
        .count()
}

/// A manager mounted in its own reactive owner, torn down on drop.
pub struct Fixture {
    pub owner: Owner,
    pub conn: ConnectionManager,
    pub events: EventStream,
    pub navigations: Rc<RefCell<Vec<String>>>,
    pub storage_key: String,
}

pub fn options(storage_key: &str, navigations: &Rc<RefCell<Vec<String>>>) -> ConnectionOptions {
    let seen = navigations.clone();
    ConnectionOptions::default()
        .url(ws_url())
        .refresh_url(format!("{SERVER}/api/auth/refresh"))
        .storage_key(storage_key)
        .navigate(move |route| seen.borrow_mut().push(route.to_owned()))
}

impl Fixture {
    /// Stores `token` and mounts a manager that connects with it.
    pub fn start(
        token: Option<&Secret>,
        tweak: impl FnOnce(ConnectionOptions) -> ConnectionOptions,
    ) -> Self {
        // Providers start (stored token, connect) in an effect; the tests
        // run without `mount`, which would set up leptos's executor.
        let _ = any_spawner::Executor::init_wasm_bindgen();
        let storage_key = format!("tether.test.{}", (js_sys::Math::random() * 1e12) as u64);
        let storage = web_sys::window().unwrap().local_storage().unwrap().unwrap();
        if let Some(token) = token {
            storage.set_item(&storage_key, token.expose()).unwrap();
        }
        let navigations = Rc::new(RefCell::new(Vec::new()));
        let owner = Owner::new();
        let options = tweak(options(&storage_key, &navigations).connect_on_mount(false));
        let conn = owner.with(|| provide_connection_manager(options));
        let events = conn.events();
        conn.connect();
        Fixture {
            owner,
            conn,
            events,
            navigations,
            storage_key,
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        self.conn.snapshot().get_untracked()
    }

    pub fn stored_token(&self) -> Option<String> {
        let storage = web_sys::window().unwrap().local_storage().unwrap().unwrap();
        storage.get_item(&self.storage_key).unwrap()
    }

    /// Waits at most `within` for an event matching `pred`; panics naming
    /// `what` otherwise. Events before it are consumed.
    pub async fn wait_for(
        &mut self,
        what: &str,
        within: Duration,
        pred: impl Fn(&Event) -> bool,
    ) -> Event {
        let found = async {
            while let Some(event) = self.events.next().await {
                if pred(&event) {
                    return Some(event);
                }
            }
            None
        };
        let timeout = gloo_timers::future::sleep(within);
        match select(Box::pin(found), Box::pin(timeout)).await {
            Either::Left((Some(event), _)) => event,
            Either::Left((None, _)) => panic!("event stream ended while waiting for {what}"),
            Either::Right(_) => panic!(
                "no {what} within {within:?}; state: {:?}",
                self.conn.snapshot().get_untracked()
            ),
        }
    }

    pub async fn connected(&mut self) {
        self.wait_for("Connected", Duration::from_secs(15), |e| {
            matches!(e, Event::Connected { .. })
        })
        .await;
        assert_eq!(self.snapshot().state(), ConnectionState::Connected);
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.conn.destroy();
        self.owner.cleanup();
        if let Some(storage) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
            let _ = storage.remove_item(&self.storage_key);
        }
    }
}

/// Fires a plain DOM event at the window, as the browser does for
/// `online` / `offline`.
pub fn fire_window_event(name: &str) {
    let window = web_sys::window().unwrap();
    let event = web_sys::Event::new(name).unwrap();
    window.dispatch_event(&event).unwrap();
}
