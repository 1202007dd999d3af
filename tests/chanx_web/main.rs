//! Browser tests of the Chanx adapter: the real ConnectionManager in
//! headless Chromium and Firefox against the real Chanx app of
//! `tests/chanx` (Django, Channels, chanx 2.13, daphne), which `scripts/test`
//! starts and passes here as `TETHER_CHANX_SERVER` at compile time.
#![cfg(target_arch = "wasm32")]

use futures::StreamExt;
use futures::future::{Either, select};
use leptos::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use tether::prelude::*;
use tether::{
    AuthErrorCode, Backoff, ChanxAuth, ConnectionError, Detail, EventStream, Keepalive, Secret,
    StopReason,
};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The Chanx server `scripts/test` started (set at compile time).
const SERVER: &str = match option_env!("TETHER_CHANX_SERVER") {
    Some(url) => url,
    None => "http://127.0.0.1:8000",
};

/// A keepalive interval short enough to see three of them quickly.
const INTERVAL: Duration = Duration::from_millis(300);

/// The app's own message types, as an app would declare them.
#[derive(Debug, Deserialize, PartialEq)]
struct Notice {
    id: u64,
    title: String,
    body: String,
}

#[derive(Debug, Deserialize, PartialEq)]
struct EchoReply {
    text: String,
}

async fn post(path: &str, body: Value) -> (u16, Value) {
    let response = gloo_net::http::Request::post(&format!("{SERVER}{path}"))
        .json(&body)
        .expect("a JSON body")
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!("POST {path} failed: is the Chanx server running at {SERVER}? {e}")
        });
    let status = response.status();
    (status, response.json().await.expect("a JSON answer"))
}

/// A fresh user and their DRF token.
struct User {
    name: String,
    token: Secret,
}

async fn new_user() -> User {
    let (status, answer) = post("/test/token", json!({})).await;
    assert_eq!(status, 201, "{answer}");
    User {
        name: answer["username"].as_str().unwrap().to_owned(),
        token: Secret::new(answer["token"].as_str().unwrap()),
    }
}

/// A manager speaking Chanx, mounted in its own owner, torn down on drop.
struct Fixture {
    owner: Owner,
    conn: ConnectionManager,
    events: EventStream,
    navigations: Rc<RefCell<Vec<String>>>,
    storage_key: String,
}

impl Fixture {
    fn start(token: &Secret, keepalive: Keepalive) -> Self {
        // Providers start (stored token, connect) in an effect; the tests
        // run without `mount`, which would set up leptos's executor.
        let _ = any_spawner::Executor::init_wasm_bindgen();
        let storage_key = format!("tether.chanx.{}", (js_sys::Math::random() * 1e12) as u64);
        let storage = web_sys::window().unwrap().local_storage().unwrap().unwrap();
        storage.set_item(&storage_key, token.expose()).unwrap();
        let navigations = Rc::new(RefCell::new(Vec::new()));
        let seen = navigations.clone();
        let options = ConnectionOptions::default()
            .url(format!(
                "{}/ws/notifications/",
                SERVER.replacen("http", "ws", 1)
            ))
            .adapter(ChanxAuth::query())
            .keepalive(keepalive)
            .backoff(Backoff {
                initial: Duration::from_millis(200),
                max: Duration::from_secs(1),
                ..Backoff::default()
            })
            .storage_key(storage_key.clone())
            .navigate(move |route| seen.borrow_mut().push(route.to_owned()))
            .connect_on_mount(false);
        let owner = Owner::new();
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

    fn state(&self) -> tether::Snapshot {
        self.conn.snapshot().get_untracked()
    }

    fn stored_token(&self) -> Option<String> {
        let storage = web_sys::window().unwrap().local_storage().unwrap().unwrap();
        storage.get_item(&self.storage_key).unwrap()
    }

    /// Waits at most `within` for an event matching `pred`, returning it and
    /// every event before it.
    async fn wait_for(
        &mut self,
        what: &str,
        within: Duration,
        pred: impl Fn(&Event) -> bool,
    ) -> (Event, Vec<Event>) {
        let mut before = Vec::new();
        let found = async {
            while let Some(event) = self.events.next().await {
                if pred(&event) {
                    return Some(event);
                }
                before.push(event);
            }
            None
        };
        let timeout = gloo_timers::future::sleep(within);
        let result = match select(Box::pin(found), Box::pin(timeout)).await {
            Either::Left((Some(event), _)) => Some(event),
            Either::Left((None, _)) => panic!("event stream ended while waiting for {what}"),
            Either::Right(_) => None,
        };
        match result {
            Some(event) => (event, before),
            None => panic!(
                "no {what} within {within:?}; events: {before:?}; state: {:?}",
                self.state()
            ),
        }
    }

    async fn connected(&mut self) -> Vec<Event> {
        let (_, before) = self
            .wait_for("Connected", Duration::from_secs(15), |e| {
                matches!(e, Event::Connected { .. })
            })
            .await;
        assert_eq!(self.state().state(), ConnectionState::Connected);
        before
    }

    /// The next app message of type `kind`, decoded into `T`.
    async fn message<T: serde::de::DeserializeOwned>(&mut self, kind: &str) -> T {
        let (event, _) = self
            .wait_for(
                kind,
                Duration::from_secs(15),
                |e| matches!(e, Event::Message { kind: k, .. } if k == kind),
            )
            .await;
        let Event::Message { payload, .. } = event else {
            unreachable!()
        };
        serde_json::from_str(payload.as_str())
            .unwrap_or_else(|e| panic!("{kind} payload {payload} does not decode: {e}"))
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

fn short_keepalive(timeout: Duration) -> Keepalive {
    Keepalive {
        interval: INTERVAL,
        timeout,
        ..Keepalive::default()
    }
}

fn is_error(event: &Event) -> bool {
    matches!(
        event,
        Event::Error(_) | Event::Disconnected { .. } | Event::AuthError { .. }
    )
}

#[wasm_bindgen_test]
async fn chanx_stays_connected_through_three_keepalive_intervals() {
    let user = new_user().await;
    let mut f = Fixture::start(&user.token, short_keepalive(Duration::from_secs(2)));
    let before = f.connected().await;
    assert!(!before.iter().any(is_error), "{before:?}");
    for round in 1..=3 {
        let (pong, before) = f
            .wait_for(&format!("pong {round}"), Duration::from_secs(10), |e| {
                matches!(e, Event::Pong { .. })
            })
            .await;
        assert!(!before.iter().any(is_error), "round {round}: {before:?}");
        let Event::Pong { rtt } = pong else {
            unreachable!()
        };
        assert!(rtt < Duration::from_secs(2), "{rtt:?}");
    }
    let snapshot = f.state();
    assert!(
        matches!(snapshot.detail, Detail::Online { .. }),
        "{snapshot:?}"
    );
    assert!(snapshot.rtt.is_some());
    assert_eq!(snapshot.last_error, None, "{snapshot:?}");
    assert_eq!(snapshot.last_close, None, "{snapshot:?}");
    assert!(f.stored_token().is_some());
}

#[wasm_bindgen_test]
async fn chanx_pushed_notification_is_decoded_into_the_apps_type() {
    let user = new_user().await;
    let mut f = Fixture::start(&user.token, Keepalive::default());
    f.connected().await;
    let (status, answer) = post(
        "/test/push",
        json!({"username": user.name, "title": "Hi ✓", "body": "th\u{e9}re"}),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let notice: Notice = f.message("notification").await;
    assert_eq!(
        notice,
        Notice {
            id: answer["id"].as_u64().unwrap(),
            title: "Hi ✓".into(),
            body: "thére".into(),
        }
    );
}

#[wasm_bindgen_test]
async fn chanx_message_sent_is_answered_and_not_kept() {
    let user = new_user().await;
    let mut f = Fixture::start(&user.token, Keepalive::default());
    f.connected().await;
    f.conn
        .send(&json!({"action": "echo", "payload": {"text": "héllo ✓"}}))
        .expect("send accepted");
    let reply: EchoReply = f.message("echo_reply").await;
    assert_eq!(reply.text, "héllo ✓");
    assert_eq!(
        f.state().pending,
        0,
        "nothing waits for an ack Chanx never sends"
    );
    // A message Chanx refuses is an error, and the socket stays.
    f.conn
        .send(&json!({"action": "nope"}))
        .expect("send accepted");
    let (error, _) = f
        .wait_for("error", Duration::from_secs(15), |e| {
            matches!(e, Event::Error(_))
        })
        .await;
    assert!(
        matches!(&error, Event::Error(ConnectionError::Server { code, .. }) if code == "union_tag_invalid"),
        "{error:?}"
    );
    f.conn
        .send(&json!({"action": "echo", "payload": {"text": "still here"}}))
        .unwrap();
    let reply: EchoReply = f.message("echo_reply").await;
    assert_eq!(reply.text, "still here");
    assert_eq!(f.state().state(), ConnectionState::Connected);
}

#[wasm_bindgen_test]
async fn chanx_dead_link_is_noticed_and_reconnected() {
    let user = new_user().await;
    let mut f = Fixture::start(&user.token, short_keepalive(Duration::from_secs(1)));
    f.connected().await;
    let (status, answer) = post(
        "/test/pongs",
        json!({"username": user.name, "withhold": true}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (timeout, _) = f
        .wait_for("keepalive timeout", Duration::from_secs(10), |e| {
            matches!(e, Event::Error(ConnectionError::KeepaliveTimeout { .. }))
        })
        .await;
    assert_eq!(
        timeout,
        Event::Error(ConnectionError::KeepaliveTimeout {
            after: Duration::from_secs(1)
        })
    );
    let (closed, _) = f
        .wait_for("Disconnected", Duration::from_secs(5), |e| {
            matches!(e, Event::Disconnected { .. })
        })
        .await;
    assert!(
        matches!(closed, Event::Disconnected { code: 4000, .. }),
        "{closed:?}"
    );
    let (status, _) = post(
        "/test/pongs",
        json!({"username": user.name, "withhold": false}),
    )
    .await;
    assert_eq!(status, 200);
    f.connected().await;
    f.wait_for("pong after the reconnect", Duration::from_secs(10), |e| {
        matches!(e, Event::Pong { .. })
    })
    .await;
}

#[wasm_bindgen_test]
async fn chanx_bad_token_401_is_final_with_no_retry() {
    let mut f = Fixture::start(&Secret::new("0".repeat(40)), Keepalive::default());
    let (error, before) = f
        .wait_for("AuthError", Duration::from_secs(15), |e| {
            matches!(e, Event::AuthError { .. })
        })
        .await;
    assert!(
        matches!(&error, Event::AuthError { code: AuthErrorCode::InvalidToken, message } if message == "Invalid token."),
        "{error:?}"
    );
    assert!(
        !before
            .iter()
            .any(|e| matches!(e, Event::ReconnectScheduled { .. })),
        "{before:?}"
    );
    let snapshot = f.state();
    assert!(
        matches!(snapshot.detail, Detail::Stopped(StopReason::AuthFailed(_))),
        "{snapshot:?}"
    );
    assert_eq!(f.stored_token(), None, "the refused token is forgotten");
    assert_eq!(*f.navigations.borrow(), ["/login"]);
    assert!(!format!("{snapshot:?}{error:?}").contains(&"0".repeat(40)));
}

#[wasm_bindgen_test]
async fn chanx_close_4401_without_a_frame_is_final() {
    let user = new_user().await;
    let mut f = Fixture::start(&user.token, Keepalive::default());
    f.connected().await;
    let (status, answer) = post("/test/close", json!({"username": user.name, "code": 4401})).await;
    assert_eq!(status, 202, "{answer}");
    let (error, before) = f
        .wait_for("AuthError", Duration::from_secs(15), |e| {
            matches!(e, Event::AuthError { .. })
        })
        .await;
    assert!(
        before
            .iter()
            .any(|e| matches!(e, Event::Disconnected { code: 4401, .. })),
        "{before:?}"
    );
    assert!(
        matches!(&error, Event::AuthError { code, .. } if code.as_str() == "unauthorized"),
        "{error:?}"
    );
    assert!(matches!(
        f.state().detail,
        Detail::Stopped(StopReason::AuthFailed(_))
    ));
    assert_eq!(f.stored_token(), None);
}

#[wasm_bindgen_test]
async fn chanx_auth_outage_4503_is_retried_until_it_ends() {
    let user = new_user().await;
    let (status, _) = post("/test/outage", json!({"on": true})).await;
    assert_eq!(status, 200);
    let mut f = Fixture::start(&user.token, Keepalive::default());
    let (closed, before) = f
        .wait_for("Disconnected", Duration::from_secs(15), |e| {
            matches!(e, Event::Disconnected { .. })
        })
        .await;
    // Over before anything can fail, so no other test meets the outage.
    let (status, _) = post("/test/outage", json!({"on": false})).await;
    assert_eq!(status, 200);
    assert!(
        matches!(closed, Event::Disconnected { code: 4503, .. }),
        "{closed:?}"
    );
    assert!(
        before.iter().any(|e| matches!(e, Event::Error(ConnectionError::Server { code, .. }) if code == "status_503")),
        "{before:?}"
    );
    let (scheduled, _) = f
        .wait_for("ReconnectScheduled", Duration::from_secs(5), |e| {
            matches!(
                e,
                Event::ReconnectScheduled { .. } | Event::AuthError { .. }
            )
        })
        .await;
    assert!(
        matches!(scheduled, Event::ReconnectScheduled { attempt: 1, .. }),
        "{scheduled:?}"
    );
    let before = f.connected().await;
    assert!(
        !before.iter().any(|e| matches!(e, Event::AuthError { .. })),
        "{before:?}"
    );
    assert_eq!(f.stored_token().as_deref(), Some(user.token.expose()));
}
