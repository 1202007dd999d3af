//! Browser benchmarks of the ConnectionManager against the real reference
//! server. Not a test suite: `scripts/test` never runs it (it only runs
//! `--test web`); `scripts/bench` runs it in headless Chromium, release
//! build, and reads the one `BENCH_JSON {...}` line it logs. Nothing here
//! asserts on a wall-clock figure; a panic only means the harness broke
//! (server not reachable, no connection within a generous bound).
//!
//! Compile-time environment: `TETHER_TEST_SERVER` (the server's base URL),
//! optionally `BENCH_FRAMES` (frames per throughput round, default 100,000)
//! and `BENCH_CYCLES` (reconnect cycles for the memory figure, default 1,000).
#![cfg(target_arch = "wasm32")]

use futures::future::{Either, select};
use leptos::prelude::*;
use serde_json::{Value, json};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use tether::prelude::*;
use tether::{Secret, Subscription};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const SERVER: &str = match option_env!("TETHER_TEST_SERVER") {
    Some(url) => url,
    None => "http://127.0.0.1:3001",
};

fn env_number(value: Option<&str>, default: u32) -> u32 {
    value.and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn frames() -> u32 {
    env_number(option_env!("BENCH_FRAMES"), 100_000)
}

fn cycles() -> u32 {
    env_number(option_env!("BENCH_CYCLES"), 1_000)
}

fn ws_url() -> String {
    format!("{}/api/ws/notification", SERVER.replacen("http", "ws", 1))
}

thread_local! {
    static PERFORMANCE: web_sys::Performance =
        web_sys::window().unwrap().performance().unwrap();
}

/// `performance.now()`, with the `Performance` object looked up once (the
/// handlers under measurement call it per frame).
fn now_ms() -> f64 {
    PERFORMANCE.with(web_sys::Performance::now)
}

fn random_suffix() -> u64 {
    (js_sys::Math::random() * 1e12) as u64
}

async fn sleep_ms(ms: u32) {
    gloo_timers::future::TimeoutFuture::new(ms).await;
}

/// `fut`, or a panic naming `what` after `secs` seconds.
async fn within<T>(what: &str, secs: u32, fut: impl Future<Output = T>) -> T {
    let timeout = gloo_timers::future::TimeoutFuture::new(secs * 1000);
    match select(Box::pin(fut), Box::pin(timeout)).await {
        Either::Left((value, _)) => value,
        Either::Right(_) => panic!("bench harness: no {what} within {secs} s"),
    }
}

/// Polls `done` every 5 ms for at most `secs` seconds.
async fn until(what: &str, secs: u32, done: impl Fn() -> bool) {
    within(what, secs, async {
        while !done() {
            sleep_ms(5).await;
        }
    })
    .await;
}

async fn post(path: &str, body: Value) -> gloo_net::http::Response {
    let response = gloo_net::http::Request::post(&format!("{SERVER}{path}"))
        .credentials(web_sys::RequestCredentials::Include)
        .json(&body)
        .expect("a JSON body")
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: is the server running at {SERVER}? {e}"));
    assert!(response.ok(), "POST {path}: HTTP {}", response.status());
    response
}

/// A fresh user (so no two measurements share sockets) and its token.
async fn user(prefix: &str) -> (String, Secret) {
    let name = format!("bench-{prefix}-{}", random_suffix());
    let body = json!({"username": name, "password": "bench password"});
    post("/api/admin/users", body.clone()).await;
    let login: tether::protocol::TokenResponse = post("/api/auth/login", body)
        .await
        .json()
        .await
        .expect("a token response");
    (name, login.access_token)
}

fn storage() -> web_sys::Storage {
    web_sys::window().unwrap().local_storage().unwrap().unwrap()
}

/// Default options, pointed at the bench server, with the token stored
/// under `key`.
fn options(key: &str) -> ConnectionOptions {
    ConnectionOptions::default()
        .url(ws_url())
        .refresh_url(format!("{SERVER}/api/auth/refresh"))
        .storage_key(key)
        .navigate(|_| {})
        .connect_on_mount(false)
}

/// A manager in its own reactive owner.
struct Mounted {
    owner: Owner,
    conn: ConnectionManager,
    key: String,
}

impl Mounted {
    fn new(token: &Secret) -> Self {
        let key = format!("tether.bench.{}", random_suffix());
        storage().set_item(&key, token.expose()).unwrap();
        let owner = Owner::new();
        let conn = owner.with(|| provide_connection_manager(options(&key)));
        Mounted { owner, conn, key }
    }

    fn state(&self) -> ConnectionState {
        self.conn.state().get_untracked()
    }

    async fn connect(&self) {
        self.conn.connect();
        let conn = self.conn;
        until("CONNECTED", 30, move || {
            conn.state().get_untracked() == ConnectionState::Connected
        })
        .await;
    }

    fn teardown(self) {
        self.conn.destroy();
        self.owner.cleanup();
        let _ = storage().remove_item(&self.key);
    }
}

/// When the state last entered or left CONNECTED (performance.now() ms),
/// recorded in the event callback itself, so polling adds no error.
#[derive(Default)]
struct Transitions {
    left_connected: Cell<Option<f64>>,
    entered_connected: Cell<Option<f64>>,
}

fn watch(conn: &ConnectionManager) -> (Rc<Transitions>, Subscription) {
    let seen = Rc::new(Transitions::default());
    let record = seen.clone();
    let subscription = conn.on(EventKind::StateChanged, move |event| {
        if let Event::StateChanged { from, to } = event {
            if *from == ConnectionState::Connected {
                record.left_connected.set(Some(now_ms()));
            }
            if *to == ConnectionState::Connected {
                record.entered_connected.set(Some(now_ms()));
            }
        }
    });
    (seen, subscription)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

// ----- throughput -------------------------------------------------------------

/// Frames per second from the first to the last arrival.
fn rate(count: u32, first: f64, last: f64) -> f64 {
    if count < 2 || last <= first {
        return f64::NAN;
    }
    f64::from(count - 1) / ((last - first) / 1000.0)
}

/// The flood into the manager's typed `Notification` handler.
async fn manager_round(n: u32) -> f64 {
    let (name, token) = user("tput").await;
    let m = Mounted::new(&token);
    m.connect().await;
    let count = Rc::new(Cell::new(0u32));
    let first = Rc::new(Cell::new(0f64));
    let last = Rc::new(Cell::new(0f64));
    let (c, f, l) = (count.clone(), first.clone(), last.clone());
    let subscription = m.conn.on(EventKind::Notification, move |event| {
        if let Event::Notification(_) = event {
            let t = now_ms();
            if c.get() == 0 {
                f.set(t);
            }
            l.set(t);
            c.set(c.get() + 1);
        }
    });
    post("/api/admin/flood", json!({"username": name, "count": n})).await;
    let seen = count.clone();
    until("every flood frame (manager)", 600, move || seen.get() >= n).await;
    drop(subscription);
    m.teardown();
    rate(count.get(), first.get(), last.get())
}

/// The same flood into a plain JavaScript WebSocket whose `onmessage` does
/// `JSON.parse` and counts: the baseline is JS work, not Rust.
const RAW_SOCKET_JS: &str = r#"
const s = { count: 0, first: 0, last: 0, authed: false };
const ws = new WebSocket(url);
s.ws = ws;
ws.onopen = () => ws.send(JSON.stringify({ type: "auth", payload: { token, last_seq: null } }));
ws.onmessage = (e) => {
  const m = JSON.parse(e.data);
  if (m.type === "notification") {
    const t = performance.now();
    if (s.count === 0) s.first = t;
    s.last = t;
    s.count++;
  } else if (m.type === "auth_success") {
    s.authed = true;
  }
};
return s;
"#;

fn field(object: &JsValue, name: &str) -> f64 {
    js_sys::Reflect::get(object, &JsValue::from_str(name))
        .ok()
        .and_then(|v| v.as_f64().or_else(|| v.as_bool().map(f64::from)))
        .unwrap_or(0.0)
}

async fn raw_round(n: u32) -> f64 {
    let (name, token) = user("raw").await;
    let open = js_sys::Function::new_with_args("url, token", RAW_SOCKET_JS);
    let state = open
        .call2(
            &JsValue::NULL,
            &JsValue::from_str(&ws_url()),
            &JsValue::from_str(token.expose()),
        )
        .expect("the raw socket opens");
    let s = state.clone();
    until("auth_success (raw socket)", 30, move || {
        field(&s, "authed") > 0.0
    })
    .await;
    post("/api/admin/flood", json!({"username": name, "count": n})).await;
    let s = state.clone();
    until("every flood frame (raw socket)", 600, move || {
        field(&s, "count") >= f64::from(n)
    })
    .await;
    let ws: web_sys::WebSocket = js_sys::Reflect::get(&state, &JsValue::from_str("ws"))
        .unwrap()
        .unchecked_into();
    ws.set_onmessage(None);
    let _ = ws.close();
    rate(
        field(&state, "count") as u32,
        field(&state, "first"),
        field(&state, "last"),
    )
}

/// Alternating rounds per side; the best of each is reported (interference
/// from other processes only ever slows a round down).
const ROUNDS: usize = 3;

async fn throughput() -> Value {
    let n = frames();
    // Warm up both paths (JIT, allocator, server) with a small flood.
    raw_round(n / 20).await;
    manager_round(n / 20).await;
    let mut raw = Vec::new();
    let mut manager = Vec::new();
    for _ in 0..ROUNDS {
        raw.push(raw_round(n).await);
        manager.push(manager_round(n).await);
    }
    let best = |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::max);
    let (raw_best, manager_best) = (best(&raw), best(&manager));
    json!({
        "frames": n,
        "rounds": ROUNDS,
        "raw_fps": raw.iter().map(|x| x.round()).collect::<Vec<_>>(),
        "manager_fps": manager.iter().map(|x| x.round()).collect::<Vec<_>>(),
        "raw_best_fps": raw_best.round(),
        "manager_best_fps": manager_best.round(),
        "ratio": (manager_best / raw_best * 1000.0).round() / 1000.0,
    })
}

// ----- topic throughput -------------------------------------------------------

/// Messages per batch of a topic flood: the server's topic publish does not
/// wait for slow sockets (a socket past its queue bound of 1,024 frames is
/// closed with 1013), so the flood goes in batches the socket can hold,
/// each published once the previous one has arrived.
const TOPIC_BATCH: u32 = 500;

/// The bench's message type, as an app would write it.
#[derive(serde::Deserialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
enum BenchEvent {
    Tick {
        #[allow(dead_code)]
        n: u64,
    },
}

/// A room of the user with `token`, as its topic name.
async fn bench_room(token: &Secret) -> String {
    let response = gloo_net::http::Request::post(&format!("{SERVER}/api/rooms"))
        .header("Authorization", &format!("Bearer {}", token.expose()))
        .json(&json!({"name": "bench", "members": []}))
        .expect("a JSON body")
        .send()
        .await
        .expect("POST /api/rooms");
    assert_eq!(response.status(), 201, "POST /api/rooms");
    let room: Value = response.json().await.expect("a room");
    format!("room:{}", room["id"].as_str().expect("a room id"))
}

/// Per batch, the first and last arrival (performance.now() ms); the rate
/// is the messages after each batch's first over the time they took, so
/// the HTTP round trips between batches do not count.
#[derive(Default)]
struct Batches {
    count: Cell<u32>,
    spans: RefCell<Vec<(f64, f64)>>,
}

impl Batches {
    fn arrived(&self, offset: u64, t: f64) {
        let batch = ((offset - 1) / u64::from(TOPIC_BATCH)) as usize;
        let mut spans = self.spans.borrow_mut();
        if spans.len() <= batch {
            spans.resize(batch + 1, (t, t));
        }
        spans[batch].1 = t;
        self.count.set(self.count.get() + 1);
    }

    fn rate(&self) -> f64 {
        let spans = self.spans.borrow();
        let ms: f64 = spans.iter().map(|(a, b)| b - a).sum();
        let frames = self.count.get().saturating_sub(spans.len() as u32);
        f64::from(frames) / (ms / 1000.0)
    }
}

/// Publishes `batches` batches to `topic`, each after `seen` reached the
/// previous one's end.
async fn topic_flood(topic: &str, batches: u32, seen: impl Fn() -> u32) {
    for b in 1..=batches {
        post(
            &format!("/api/admin/topics/{topic}/publish"),
            json!({"event": "tick", "count": TOPIC_BATCH}),
        )
        .await;
        until("a topic batch", 600, || seen() >= b * TOPIC_BATCH).await;
    }
}

/// The flood into a typed [`Topic`] handler (`on_message`, decoded into
/// `BenchEvent`).
async fn topic_manager_round(batches: u32) -> f64 {
    let (_, token) = user("topic").await;
    let topic = bench_room(&token).await;
    let m = Mounted::new(&token);
    m.connect().await;
    let handle = m.owner.with(|| m.conn.topic::<BenchEvent>(topic.clone()));
    let subscribed = handle.state();
    until("the topic subscribed", 30, move || {
        subscribed.get_untracked() == tether::TopicState::Subscribed
    })
    .await;
    let seen = Rc::new(Batches::default());
    let record = seen.clone();
    handle.on_message(move |message| {
        let BenchEvent::Tick { .. } = message.event;
        record.arrived(message.offset, now_ms());
    });
    topic_flood(&topic, batches, || seen.count.get()).await;
    let rate = seen.rate();
    m.teardown();
    rate
}

/// The same flood into a plain JavaScript WebSocket that subscribes and
/// does `JSON.parse` per frame.
const RAW_TOPIC_JS: &str = r#"
const s = { count: 0, spans: [], authed: false, subscribed: false };
const ws = new WebSocket(url);
s.ws = ws;
ws.onopen = () => ws.send(JSON.stringify({ type: "auth", payload: { token, last_seq: null } }));
ws.onmessage = (e) => {
  const m = JSON.parse(e.data);
  if (m.type === "message") {
    const t = performance.now();
    const b = Math.floor((m.payload.offset - 1) / batch);
    if (s.spans[b] === undefined) s.spans[b] = [t, t];
    s.spans[b][1] = t;
    s.count++;
  } else if (m.type === "auth_success") {
    s.authed = true;
    ws.send(JSON.stringify({ type: "subscribe", payload: { topic } }));
  } else if (m.type === "subscribed") {
    s.subscribed = true;
  }
};
s.rate = () => {
  let ms = 0;
  for (const [a, b] of s.spans) ms += b - a;
  return (s.count - s.spans.length) / (ms / 1000);
};
return s;
"#;

async fn topic_raw_round(batches: u32) -> f64 {
    let (_, token) = user("topic-raw").await;
    let topic = bench_room(&token).await;
    let open = js_sys::Function::new_with_args("url, token, topic, batch", RAW_TOPIC_JS);
    let args = js_sys::Array::of4(
        &JsValue::from_str(&ws_url()),
        &JsValue::from_str(token.expose()),
        &JsValue::from_str(&topic),
        &JsValue::from(TOPIC_BATCH),
    );
    let state = open
        .apply(&JsValue::NULL, &args)
        .expect("the raw socket opens");
    let s = state.clone();
    until("subscribed (raw socket)", 30, move || {
        field(&s, "subscribed") > 0.0
    })
    .await;
    let s = state.clone();
    topic_flood(&topic, batches, move || field(&s, "count") as u32).await;
    let rate: js_sys::Function = js_sys::Reflect::get(&state, &JsValue::from_str("rate"))
        .unwrap()
        .unchecked_into();
    let rate = rate
        .call0(&JsValue::NULL)
        .unwrap()
        .as_f64()
        .unwrap_or(f64::NAN);
    let ws: web_sys::WebSocket = js_sys::Reflect::get(&state, &JsValue::from_str("ws"))
        .unwrap()
        .unchecked_into();
    ws.set_onmessage(None);
    let _ = ws.close();
    rate
}

/// Topic messages per second into the typed handler against the raw
/// socket, alternating rounds, best of each (as [`throughput`]).
async fn topic_throughput() -> Value {
    let batches = (frames() / 5).div_ceil(TOPIC_BATCH).max(2);
    topic_raw_round(2).await;
    topic_manager_round(2).await;
    let mut raw = Vec::new();
    let mut manager = Vec::new();
    for _ in 0..ROUNDS {
        raw.push(topic_raw_round(batches).await);
        manager.push(topic_manager_round(batches).await);
    }
    let best = |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::max);
    let (raw_best, manager_best) = (best(&raw), best(&manager));
    json!({
        "messages": batches * TOPIC_BATCH,
        "batch": TOPIC_BATCH,
        "rounds": ROUNDS,
        "raw_fps": raw.iter().map(|x| x.round()).collect::<Vec<_>>(),
        "manager_fps": manager.iter().map(|x| x.round()).collect::<Vec<_>>(),
        "raw_best_fps": raw_best.round(),
        "manager_best_fps": manager_best.round(),
        "ratio": (manager_best / raw_best * 1000.0).round() / 1000.0,
    })
}

/// CPU cost per notification frame without the network, in µs: the core
/// machine alone (decode, dedupe, emit, drain its effects), frame decoding
/// alone (and, for reference, serde_json into a derived enum), and `JSON.parse` of the same text in JS. This splits the
/// throughput figure into the manager's own work and the browser's.
fn cpu_cost() -> Value {
    use tether::machine::{Config, Connection, Input};
    let n: u32 = 20_000;
    let frame = |seq: u32| {
        format!(
            r##"{{"type":"notification","payload":{{"seq":{seq},"id":"6f1c1c9e-8a51-4d0e-9a57-1b2f9d1c0e{:02}","title":"flood","body":"#{seq}","created_at":"2026-11-23T13:44:28.194Z"}}}}"##,
            seq % 100
        )
    };
    let texts: Vec<String> = (1..=n).map(frame).collect();

    let online = || {
        let mut machine = Connection::new(Config {
            url: ws_url(),
            ..Config::default()
        });
        let now = js_sys::Date::now() as u64;
        machine.handle(
            now,
            Input::SetToken {
                token: Secret::new("t"),
                expires_in: None,
            },
        );
        machine.handle(now, Input::Connect);
        machine.handle(now, Input::Opened);
        let ok = r#"{"type":"auth_success","payload":{"user_id":"u","authenticated_at":"2026-11-23T13:44:28Z","expires_at":"2026-11-23T13:59:28Z"}}"#;
        machine.handle(now, Input::Frame(ok.to_owned()));
        while machine.poll_effect().is_some() {}
        assert_eq!(machine.state(), ConnectionState::Connected);
        (machine, now)
    };
    let per_frame = |t: f64| (now_ms() - t) * 1000.0 / f64::from(n);
    // Each figure is the second of two passes: the first one runs while V8
    // still tiers the code up.
    let (mut core_us, mut decode_us, mut serde_us, mut snapshot_us) = (0.0, 0.0, 0.0, 0.0);
    for _ in 0..2 {
        let (mut machine, now) = online();
        let t = now_ms();
        let mut emitted = 0u32;
        for text in texts.iter().cloned() {
            machine.handle(now, Input::Frame(text));
            while let Some(effect) = machine.poll_effect() {
                emitted += u32::from(matches!(effect, tether::machine::Effect::Emit(_)));
            }
        }
        core_us = per_frame(t);
        assert_eq!(emitted, n);

        let published = machine.snapshot();
        let t = now_ms();
        let mut same = 0u32;
        for _ in 0..n {
            same += u32::from(machine.snapshot() == published);
        }
        snapshot_us = per_frame(t);
        assert_eq!(same, n);

        let t = now_ms();
        for text in &texts {
            let _ = std::hint::black_box(tether::protocol::ServerMessage::decode(text));
        }
        decode_us = per_frame(t);

        // The same frames through serde_json into a derived enum of the
        // same shape: the reference the hand-written decoder replaced.
        #[derive(serde::Deserialize)]
        #[serde(tag = "type", content = "payload", rename_all = "snake_case")]
        enum Reference {
            Notification(#[allow(dead_code)] tether::Notification),
        }
        let t = now_ms();
        for text in &texts {
            let _ = std::hint::black_box(serde_json::from_str::<Reference>(text));
        }
        serde_us = per_frame(t);
    }

    let parse = js_sys::Function::new_with_args(
        "texts",
        "const t = performance.now(); for (const s of texts) JSON.parse(s); return performance.now() - t;",
    );
    let array: js_sys::Array = texts.iter().map(|s| JsValue::from_str(s)).collect();
    let js_ms = parse
        .call1(&JsValue::NULL, &array)
        .unwrap()
        .as_f64()
        .unwrap_or(f64::NAN);
    let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
    json!({
        "frames": n,
        "core_handle_us": round3(core_us),
        "snapshot_compare_us": round3(snapshot_us),
        "frame_decode_us": round3(decode_us),
        "serde_json_decode_us": round3(serde_us),
        "js_json_parse_us": round3(js_ms * 1000.0 / f64::from(n)),
    })
}

// ----- dead link and recovery ---------------------------------------------------

fn fire_window_event(name: &str) {
    let window = web_sys::window().unwrap();
    window
        .dispatch_event(&web_sys::Event::new(name).unwrap())
        .unwrap();
}

/// Withholding pongs until the state leaves CONNECTED.
async fn dead_link() -> f64 {
    let (name, token) = user("dead").await;
    let m = Mounted::new(&token);
    m.connect().await;
    let (seen, _subscription) = watch(&m.conn);
    post(
        "/api/admin/withhold-pongs",
        json!({"username": name, "seconds": 30}),
    )
    .await;
    let t0 = now_ms();
    let s = seen.clone();
    until("leaving CONNECTED", 60, move || {
        s.left_connected.get().is_some()
    })
    .await;
    m.teardown();
    seen.left_connected.get().unwrap() - t0
}

/// Dropping the server's sockets until CONNECTED again.
async fn drop_recovery() -> f64 {
    let (name, token) = user("drop").await;
    let m = Mounted::new(&token);
    m.connect().await;
    let (seen, _subscription) = watch(&m.conn);
    let t0 = now_ms();
    post("/api/admin/drop-sockets", json!({"username": name})).await;
    let s = seen.clone();
    until("CONNECTED again after the drop", 60, move || {
        s.left_connected.get().is_some() && s.entered_connected.get().is_some()
    })
    .await;
    m.teardown();
    seen.entered_connected.get().unwrap() - t0
}

/// A window `online` event (after `offline`) until CONNECTED again.
async fn online_recovery() -> f64 {
    let (_, token) = user("online").await;
    let m = Mounted::new(&token);
    m.connect().await;
    let (seen, _subscription) = watch(&m.conn);
    fire_window_event("offline");
    assert_ne!(m.state(), ConnectionState::Connected, "offline disconnects");
    let t0 = now_ms();
    fire_window_event("online");
    let s = seen.clone();
    until("CONNECTED again after online", 60, move || {
        s.entered_connected.get().is_some()
    })
    .await;
    m.teardown();
    seen.entered_connected.get().unwrap() - t0
}

async fn recovery() -> Value {
    let trials = 3;
    let mut dead = Vec::new();
    let mut dropped = Vec::new();
    let mut online = Vec::new();
    for _ in 0..trials {
        dead.push(dead_link().await);
        dropped.push(drop_recovery().await);
        online.push(online_recovery().await);
    }
    let all = |v: &[f64]| v.iter().map(|x| round1(*x)).collect::<Vec<_>>();
    json!({
        "trials": trials,
        "dead_link_ms": all(&dead),
        "drop_to_connected_ms": all(&dropped),
        "online_to_connected_ms": all(&online),
        "dead_link_median_ms": round1(median(&mut dead)),
        "drop_to_connected_median_ms": round1(median(&mut dropped)),
        "online_to_connected_median_ms": round1(median(&mut online)),
    })
}

// ----- memory -----------------------------------------------------------------

/// Runs a full collection when Chromium exposes `gc()` (`--js-flags=--expose-gc`).
async fn collect_garbage() -> bool {
    // Let pending closes and microtasks settle first.
    sleep_ms(200).await;
    let global = js_sys::global();
    let gc = js_sys::Reflect::get(&global, &JsValue::from_str("gc")).ok();
    let exposed = match gc.and_then(|f| f.dyn_into::<js_sys::Function>().ok()) {
        Some(gc) => {
            let _ = gc.call0(&JsValue::NULL);
            true
        }
        None => false,
    };
    sleep_ms(50).await;
    exposed
}

fn wasm_memory_bytes() -> f64 {
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
    memory
        .buffer()
        .unchecked_into::<js_sys::ArrayBuffer>()
        .byte_length()
        .into()
}

/// `performance.memory.usedJSHeapSize` (Chromium only; null elsewhere).
fn js_heap_bytes() -> Option<f64> {
    let performance = web_sys::window()?.performance()?;
    let memory = js_sys::Reflect::get(&performance, &JsValue::from_str("memory")).ok()?;
    js_sys::Reflect::get(&memory, &JsValue::from_str("usedJSHeapSize"))
        .ok()?
        .as_f64()
}

/// One full cycle: provide in a fresh owner, connect, await CONNECTED,
/// destroy and clean the owner up.
async fn cycle(key: &str) {
    let owner = Owner::new();
    let conn = owner.with(|| provide_connection_manager(options(key)));
    let connected = Rc::new(RefCell::new(None::<futures::channel::oneshot::Sender<()>>));
    let (tx, rx) = futures::channel::oneshot::channel();
    *connected.borrow_mut() = Some(tx);
    let fire = connected.clone();
    let subscription = conn.on(EventKind::Connected, move |_| {
        if let Some(tx) = fire.borrow_mut().take() {
            let _ = tx.send(());
        }
    });
    conn.connect();
    within("CONNECTED (memory cycle)", 30, rx)
        .await
        .expect("connected");
    drop(subscription);
    conn.destroy();
    owner.cleanup();
}

/// The raw baseline of the memory figure: `count` open/auth/close cycles of
/// a plain JavaScript WebSocket, one after another, with no wasm involved.
/// Rejects if a socket closes before `auth_success`.
const RAW_CYCLES_JS: &str = r#"
return (async () => {
  for (let i = 0; i < count; i++) {
    await new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      let authed = false;
      ws.onopen = () => ws.send(JSON.stringify({ type: "auth", payload: { token, last_seq: null } }));
      ws.onmessage = (e) => {
        if (JSON.parse(e.data).type === "auth_success") {
          authed = true;
          ws.close(1000, "Client closed");
        }
      };
      ws.onclose = (e) => authed ? resolve() : reject(new Error("closed before auth: " + e.code));
    });
  }
})();
"#;

async fn raw_cycles(token: &Secret, count: u32) {
    let run = js_sys::Function::new_with_args("url, token, count", RAW_CYCLES_JS);
    let promise = run
        .call3(
            &JsValue::NULL,
            &JsValue::from_str(&ws_url()),
            &JsValue::from_str(token.expose()),
            &JsValue::from(count),
        )
        .expect("the raw cycles start");
    let done = wasm_bindgen_futures::JsFuture::from(promise.unchecked_into::<js_sys::Promise>());
    within("raw WebSocket cycles", 600, done)
        .await
        .expect("every raw cycle authenticates");
}

/// The heap figures after `done` cycles, with a full collection first.
async fn sample(done: u32) -> (bool, Value) {
    let gc = collect_garbage().await;
    let sample = json!({
        "cycles": done,
        "wasm_bytes": wasm_memory_bytes(),
        "js_heap_bytes": js_heap_bytes(),
    });
    (gc, sample)
}

async fn memory() -> Value {
    let (_, token) = user("memory").await;
    let key = format!("tether.bench.{}", random_suffix());
    storage().set_item(&key, token.expose()).unwrap();
    let total = cycles();
    let mut samples = Vec::new();
    let mut done = 0;
    let mut gc = false;
    for target in [0, 10, total] {
        while done < target {
            cycle(&key).await;
            done += 1;
        }
        let (exposed, taken) = sample(done).await;
        gc = exposed;
        samples.push(taken);
    }
    let _ = storage().remove_item(&key);
    // The same number of cycles with a plain JS WebSocket: what the browser
    // itself keeps per connection (compiled code, caches), for comparison.
    let mut raw_samples = Vec::new();
    let mut done = 0;
    for target in [10, total] {
        raw_cycles(&token, target - done).await;
        done = target;
        raw_samples.push(sample(done).await.1);
    }
    json!({"gc_exposed": gc, "samples": samples, "raw_samples": raw_samples})
}

// ----- the one run --------------------------------------------------------------

/// Whether to run `section` (all unless the compile-time `BENCH_ONLY` lists
/// some, comma-separated: memory, recovery, cpu, throughput, topics).
fn enabled(section: &str) -> bool {
    option_env!("BENCH_ONLY").is_none_or(|only| only.split(',').any(|s| s.trim() == section))
}

#[wasm_bindgen_test]
async fn bench() {
    let started = now_ms();
    let mut report = serde_json::Map::new();
    // Memory first, while the heap is not yet shaped by 400,000 frames.
    if enabled("memory") {
        report.insert("memory".into(), memory().await);
    }
    if enabled("recovery") {
        report.insert("recovery".into(), recovery().await);
    }
    if enabled("cpu") {
        report.insert("cpu_per_frame".into(), cpu_cost());
    }
    if enabled("throughput") {
        report.insert("throughput".into(), throughput().await);
    }
    if enabled("topics") {
        report.insert("topic_throughput".into(), topic_throughput().await);
    }
    let agent = web_sys::window().unwrap().navigator().user_agent().ok();
    report.insert("user_agent".into(), json!(agent));
    report.insert(
        "seconds".into(),
        json!(round1((now_ms() - started) / 1000.0)),
    );
    web_sys::console::log_1(&format!("BENCH_JSON {}", Value::Object(report)).into());
}
