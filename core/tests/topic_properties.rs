//! Property tests of topics: the machine against a model server, over
//! random interleavings of reconnects, duplicated, reordered and replayed
//! frames, epoch changes (`reset`), removals, refusals and publishes on
//! several topics. Checked: each message reaches the app at most once and
//! in offset order; every gap is either filled or reported
//! (`NotRecovered`); no publish id is lost or reported twice.
//!
//! Case counts stay moderate so the core suite stays fast; `scripts/bench`
//! may run more with `PROPTEST_CASES`.

mod common;

use common::USER;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;
use tether_core::{
    Backoff, Config, Connection, Effect, Event, Input, Keepalive, Millis, RawJson, Secret,
    SubscribeOptions, TopicEvent, TopicState,
};

const TOPICS: [&str; 3] = ["room:a", "room:b", "room:c"];
/// How many messages the model server retains per topic: a client further
/// behind gets `recovered: false`.
const RETAIN: usize = 6;

#[derive(Debug, Clone)]
enum Op {
    AppSubscribe(usize, u32),
    AppUnsubscribe(usize),
    AppPublish(usize),
    /// The server publishes to a topic (another user).
    ServerPublish(usize),
    /// Deliver this many queued frames, in order.
    Deliver(usize),
    /// Deliver the next frame twice when it is a `message`.
    Duplicate,
    /// Swap the next two frames when both are `message`s.
    ///
    /// (A socket neither duplicates nor reorders frames; a server may send
    /// a topic's messages again or out of order, as its replays overlap. The
    /// answers to `subscribe`, which carry no request id, are counted by
    /// the machine and so are delivered once and in order here.)
    Reorder,
    /// Deliver again a `message` already delivered on this socket.
    Replay(usize),
    /// The server drops the socket; the machine reconnects.
    Reconnect,
    /// The topic's history is lost under the subscription.
    Reset(usize),
    /// The user loses the topic (`unsubscribed removed`).
    Remove(usize),
    /// The next `subscribe` is refused with `rate_limited`.
    RefuseNext,
    /// The next `publish` is refused with `rate_limited`.
    RateLimitNextPublish,
    /// A re-authentication in place as another user: `unsubscribed
    /// user_changed` for the topic.
    UserChanged(usize),
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..3usize, prop_oneof![Just(0u32), 1..8u32]).prop_map(|(t, l)| Op::AppSubscribe(t, l)),
        1 => (0..3usize).prop_map(Op::AppUnsubscribe),
        3 => (0..3usize).prop_map(Op::AppPublish),
        5 => (0..3usize).prop_map(Op::ServerPublish),
        8 => (1..6usize).prop_map(Op::Deliver),
        2 => Just(Op::Duplicate),
        2 => Just(Op::Reorder),
        1 => (0..20usize).prop_map(Op::Replay),
        2 => Just(Op::Reconnect),
        1 => (0..3usize).prop_map(Op::Reset),
        1 => (0..3usize).prop_map(Op::Remove),
        1 => Just(Op::RefuseNext),
        1 => Just(Op::RateLimitNextPublish),
        1 => (0..3usize).prop_map(Op::UserChanged),
        2 => prop_oneof![0u64..500, 0u64..5_000].prop_map(Op::Wait),
    ]
}

#[derive(Debug, Default)]
struct ServerTopic {
    epoch: u32,
    /// Messages of the current epoch: offset `i + 1` is `log[i]`, a message id.
    log: Vec<String>,
}

/// The reference server as far as one user's one socket sees it.
#[derive(Debug, Default)]
struct Server {
    topics: BTreeMap<String, ServerTopic>,
    /// This socket's subscriptions.
    subs: BTreeSet<String>,
    /// Frames to the client, in order.
    queue: VecDeque<String>,
    /// `message` frames delivered on this socket (for replays).
    delivered: Vec<String>,
    /// Publish id -> (topic, offset): applied at most once.
    applied: BTreeMap<String, (String, u64)>,
    refuse_next: bool,
    rate_limit_next: bool,
    next_id: u64,
}

fn frame(kind: &str, payload: Value) -> String {
    json!({"type": kind, "payload": payload}).to_string()
}

impl Server {
    fn topic(&mut self, name: &str) -> &mut ServerTopic {
        self.topics.entry(name.to_owned()).or_default()
    }

    fn epoch(&mut self, name: &str) -> String {
        format!("E{}", self.topic(name).epoch)
    }

    fn message_frame(&mut self, name: &str, offset: u64) -> String {
        let epoch = self.epoch(name);
        let id = self.topic(name).log[offset as usize - 1].clone();
        frame(
            "message",
            json!({"topic": name, "offset": offset, "event": "e", "data": {"id": id},
                "from": null, "id": format!("{epoch}/{offset}/{id}"),
                "created_at": "2026-01-01T00:00:00Z"}),
        )
    }

    /// Appends a message; subscribers get it.
    fn append(&mut self, name: &str, id: String) -> u64 {
        let topic = self.topic(name);
        topic.log.push(id);
        let offset = topic.log.len() as u64;
        if self.subs.contains(name) {
            let f = self.message_frame(name, offset);
            self.queue.push_back(f);
        }
        offset
    }

    fn socket_gone(&mut self) {
        self.subs.clear();
        self.queue.clear();
        self.delivered.clear();
    }

    /// A frame from the client.
    fn on_client(&mut self, text: &str) -> Option<String> {
        let f: Value = serde_json::from_str(text).expect("the client sends JSON");
        let p = &f["payload"];
        match f["type"].as_str().unwrap() {
            "auth" => return Some(common::auth_success(900)),
            "ping" => return Some(frame("pong", json!({"seq": p["seq"]}))),
            "subscribe" => self.on_subscribe(p),
            "unsubscribe" => {
                let name = p["topic"].as_str().unwrap().to_owned();
                self.subs.remove(&name);
                self.queue.push_back(frame(
                    "unsubscribed",
                    json!({"topic": name, "code": "unsubscribed", "message": ""}),
                ));
            }
            "publish" => {
                let id = p["id"].as_str().unwrap().to_owned();
                let name = p["topic"].as_str().unwrap().to_owned();
                let answer = if std::mem::take(&mut self.rate_limit_next) {
                    frame(
                        "nack",
                        json!({"id": id, "code": "rate_limited", "message": ""}),
                    )
                } else if let Some((topic, offset)) = self.applied.get(&id) {
                    frame("ack", json!({"id": id, "topic": topic, "offset": offset}))
                } else if !self.subs.contains(&name) {
                    frame(
                        "nack",
                        json!({"id": id, "code": "not_subscribed", "message": ""}),
                    )
                } else {
                    let offset = self.append(&name, id.clone());
                    self.applied.insert(id.clone(), (name.clone(), offset));
                    frame("ack", json!({"id": id, "topic": name, "offset": offset}))
                };
                self.queue.push_back(answer);
            }
            other => panic!("unexpected client frame {other}"),
        }
        None
    }

    /// Rule 2.
    fn on_subscribe(&mut self, p: &Value) {
        let name = p["topic"].as_str().unwrap().to_owned();
        if std::mem::take(&mut self.refuse_next) {
            self.queue.push_back(frame(
                "subscribe_error",
                json!({"topic": name, "code": "rate_limited", "message": "", "retry": true}),
            ));
            return;
        }
        let epoch = self.epoch(&name);
        let latest = self.topic(&name).log.len() as u64;
        let oldest_retained = latest.saturating_sub(RETAIN as u64) + 1;
        let (from, recovered) = match p.get("since").filter(|s| !s.is_null()) {
            Some(since) => {
                let offset = since["offset"].as_u64().unwrap();
                let ok = since["epoch"] == epoch.as_str()
                    && offset <= latest
                    && offset + 1 >= oldest_retained;
                if ok {
                    (offset + 1, Some(true))
                } else {
                    (latest + 1, Some(false))
                }
            }
            None => {
                let last = p["last"].as_u64().unwrap_or(0).min(RETAIN as u64);
                (latest + 1 - last.min(latest), None)
            }
        };
        let mut payload = json!({"topic": name, "epoch": epoch, "offset": latest, "from": from,
                "presence": [{"user_id": USER, "username": "me"}]});
        if let Some(recovered) = recovered {
            payload["recovered"] = recovered.into();
        }
        self.subs.insert(name.clone());
        self.queue.push_back(frame("subscribed", payload));
        for offset in from..=latest {
            let f = self.message_frame(&name, offset);
            self.queue.push_back(f);
        }
    }
}

/// What the app saw, checked as it happens.
#[derive(Debug, Default)]
struct App {
    /// Topic -> (epoch, offset) of the last applied message.
    last: BTreeMap<String, (String, u64)>,
    /// Topic -> a NotRecovered came since the last applied message.
    reported: BTreeSet<String>,
    /// (topic, message id) applied, the id being `epoch/offset/publish id`:
    /// at most once per subscription of the app.
    seen: BTreeSet<(String, String)>,
    /// Publish ids accepted by `publish`, and their outcomes.
    published: BTreeMap<String, Vec<String>>,
    subscribed: BTreeSet<String>,
}

impl App {
    fn on_event(&mut self, event: TopicEvent) -> Result<(), TestCaseError> {
        match event {
            TopicEvent::Message { message, .. } => {
                let id = message.id.clone();
                prop_assert!(
                    self.seen.insert((message.topic.clone(), id.clone())),
                    "{id} applied twice"
                );
                let mut parts = id.split('/');
                let epoch = parts.next().unwrap().to_owned();
                let offset: u64 = parts.next().unwrap().parse().unwrap();
                prop_assert_eq!(offset, message.offset);
                let reported = self.reported.remove(&message.topic);
                match self.last.get(&message.topic) {
                    Some((e, o)) if *e == epoch => {
                        prop_assert!(offset > *o, "{id} after offset {o}: out of order");
                        prop_assert!(
                            offset == o + 1 || reported,
                            "{id} after offset {o}: a gap neither filled nor reported"
                        );
                    }
                    Some((e, _)) => prop_assert!(reported, "{id} after epoch {e}, unreported"),
                    None => {}
                }
                self.last.insert(message.topic, (epoch, offset));
            }
            TopicEvent::NotRecovered { topic, .. } => {
                self.reported.insert(topic);
            }
            TopicEvent::Published { id, .. } => {
                let outcomes = self.published.get_mut(id.as_str());
                prop_assert!(outcomes.is_some(), "an ack for an unknown id");
                outcomes.unwrap().push("published".into());
            }
            TopicEvent::PublishFailed { id, error, .. } => {
                let outcomes = self.published.get_mut(id.as_str());
                prop_assert!(outcomes.is_some(), "a failure for an unknown id");
                outcomes.unwrap().push(format!("failed: {error}"));
            }
            TopicEvent::State { .. } | TopicEvent::Presence { .. } => {}
            _ => {}
        }
        Ok(())
    }
}

struct World {
    conn: Connection,
    now: Millis,
    server: Server,
    app: App,
}

impl World {
    fn new(seed: u64) -> Self {
        let config = Config {
            seed,
            backoff: Backoff {
                max_attempts: None,
                ..Backoff::default()
            },
            keepalive: Keepalive {
                interval: Duration::from_secs(3_600),
                ..Keepalive::default()
            },
            ..Config::default()
        };
        let mut w = Self {
            conn: Connection::new(config),
            now: 1_000,
            server: Server::default(),
            app: App::default(),
        };
        w.conn.handle(
            w.now,
            Input::SetToken {
                token: Secret::new("tok"),
                expires_in: None,
            },
        );
        w
    }

    fn input(&mut self, input: Input) -> Result<(), TestCaseError> {
        self.conn.handle(self.now, input);
        self.effects()
    }

    /// Runs the effects: the socket opens at once, a token refresh succeeds
    /// at once, and the server answers `auth` and `ping` at once; every
    /// other answer waits in its queue.
    fn effects(&mut self) -> Result<(), TestCaseError> {
        while let Some(effect) = self.conn.poll_effect() {
            match effect {
                Effect::OpenSocket { .. } => {
                    self.server.socket_gone();
                    self.conn.handle(self.now, Input::Opened);
                }
                Effect::CloseSocket { .. } => {
                    self.server.socket_gone();
                    self.conn.handle(
                        self.now,
                        Input::Closed {
                            code: 1000,
                            reason: String::new(),
                        },
                    );
                }
                Effect::SendFrame(text) => {
                    if let Some(answer) = self.server.on_client(&text) {
                        self.conn.handle(self.now, Input::Frame(answer));
                    }
                }
                Effect::RefreshToken => self.conn.handle(
                    self.now,
                    Input::TokenRefreshed {
                        token: Secret::new("tok"),
                        expires_in: None,
                    },
                ),
                Effect::Emit(Event::Topic(event)) => self.app.on_event(event)?,
                Effect::Emit(Event::SendFailed { .. } | Event::Ack { .. }) => {
                    prop_assert!(false, "a publish reported as a send");
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn deliver(&mut self, text: String) -> Result<(), TestCaseError> {
        if text.contains(r#""type":"message""#) {
            self.server.delivered.push(text.clone());
        }
        self.input(Input::Frame(text))
    }

    fn tick_to_deadline(&mut self) -> Result<(), TestCaseError> {
        if let Some(at) = self.conn.deadline() {
            self.now = self.now.max(at);
        }
        self.input(Input::Tick)
    }

    fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::AppSubscribe(t, last) => {
                let name = TOPICS[t];
                self.conn
                    .subscribe(self.now, name, SubscribeOptions { last })
                    .unwrap();
                self.app.subscribed.insert(name.into());
                self.effects()?;
            }
            Op::AppUnsubscribe(t) => {
                let name = TOPICS[t];
                self.conn.unsubscribe(self.now, name);
                self.app.subscribed.remove(name);
                // A new subscription starts a new stream for the app.
                self.app.last.remove(name);
                self.app.reported.remove(name);
                self.app.seen.retain(|(t, _)| t != name);
                self.effects()?;
            }
            Op::AppPublish(t) => {
                let data = RawJson::new("{}").unwrap();
                if let Ok(id) = self.conn.publish(self.now, TOPICS[t], "e", data) {
                    self.app.published.insert(id.to_string(), Vec::new());
                }
                self.effects()?;
            }
            Op::ServerPublish(t) => {
                self.server.next_id += 1;
                let id = format!("s{}", self.server.next_id);
                self.server.append(TOPICS[t], id);
            }
            Op::Deliver(n) => {
                for _ in 0..n {
                    let Some(f) = self.server.queue.pop_front() else {
                        break;
                    };
                    self.deliver(f)?;
                }
            }
            Op::Duplicate => {
                if let Some(f) = self.server.queue.front().cloned()
                    && f.contains(r#""type":"message""#)
                {
                    self.deliver(f)?;
                }
            }
            Op::Reorder => {
                let q = &mut self.server.queue;
                if q.len() >= 2 && q.iter().take(2).all(|f| f.contains(r#""type":"message""#)) {
                    q.swap(0, 1);
                }
            }
            Op::Replay(i) => {
                if !self.server.delivered.is_empty() {
                    let f = self.server.delivered[i % self.server.delivered.len()].clone();
                    // A socket never carries an old epoch's message after a
                    // reset (a message has no epoch the client could check).
                    let v: Value = serde_json::from_str(&f).unwrap();
                    let name = v["payload"]["topic"].as_str().unwrap();
                    let epoch = self.server.epoch(name);
                    let id = v["payload"]["id"].as_str().unwrap();
                    if id.starts_with(&format!("{epoch}/")) {
                        self.input(Input::Frame(f))?;
                    }
                }
            }
            Op::Reconnect => {
                if self.conn.state() == tether_core::ConnectionState::Connected {
                    self.server.socket_gone();
                    self.input(Input::Closed {
                        code: 1006,
                        reason: String::new(),
                    })?;
                    // A retry due at once has run already.
                    if self.conn.state() != tether_core::ConnectionState::Connected {
                        self.tick_to_deadline()?;
                    }
                }
            }
            Op::Reset(t) => {
                let name = TOPICS[t];
                let topic = self.server.topic(name);
                topic.epoch += 1;
                topic.log.clear();
                if self.server.subs.remove(name) {
                    let epoch = self.server.epoch(name);
                    self.server.queue.push_back(frame(
                        "unsubscribed",
                        json!({"topic": name, "code": "reset", "message": "", "epoch": epoch}),
                    ));
                }
            }
            Op::Remove(t) => {
                let name = TOPICS[t];
                if self.server.subs.remove(name) {
                    self.server.queue.push_back(frame(
                        "unsubscribed",
                        json!({"topic": name, "code": "removed", "message": ""}),
                    ));
                }
            }
            Op::RefuseNext => self.server.refuse_next = true,
            Op::RateLimitNextPublish => self.server.rate_limit_next = true,
            Op::UserChanged(t) => {
                let name = TOPICS[t];
                if self.server.subs.remove(name) {
                    self.server.queue.push_back(frame(
                        "unsubscribed",
                        json!({"topic": name, "code": "user_changed", "message": ""}),
                    ));
                }
            }
            Op::Wait(ms) => {
                self.now += ms;
                self.input(Input::Tick)?;
            }
        }
        Ok(())
    }

    /// Delivers everything and lets every retry run until the topics the app
    /// still wants are subscribed and nothing is in flight.
    fn settle(&mut self) -> Result<(), TestCaseError> {
        for _ in 0..200 {
            while let Some(f) = self.server.queue.pop_front() {
                self.deliver(f)?;
            }
            let waiting = self
                .app
                .subscribed
                .iter()
                .any(|t| self.conn.topic(t).map(|s| s.state) == Some(TopicState::Subscribing));
            let connected = self.conn.state() == tether_core::ConnectionState::Connected;
            let idle = self.server.queue.is_empty() && self.conn.snapshot().pending == 0;
            if connected && !waiting && idle {
                return Ok(());
            }
            self.tick_to_deadline()?;
        }
        prop_assert!(false, "did not settle: {:?}", self.conn.snapshot());
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn messages_reach_the_app_once_in_order_gaps_filled_or_reported_publishes_resolved(
        seed in any::<u64>(),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let mut w = World::new(seed);
        w.input(Input::Connect)?;
        for op in ops {
            w.apply(op)?;
        }
        w.settle()?;
        // One more message on every topic: a trailing gap shows now.
        for t in TOPICS {
            w.server.next_id += 1;
            let id = format!("s{}", w.server.next_id);
            w.server.append(t, id);
        }
        w.settle()?;
        for t in w.app.subscribed.clone() {
            let snap = w.conn.topic(&t).unwrap();
            if snap.state != TopicState::Subscribed {
                // Removed: failed for good, as it should be.
                prop_assert!(matches!(snap.state, TopicState::Failed(_)), "{t}: {:?}", snap.state);
                continue;
            }
            let server = w.server.topic(&t);
            let latest = server.log.len() as u64;
            let epoch = format!("E{}", server.epoch);
            let position = snap.position.unwrap();
            prop_assert_eq!((&position.epoch, position.offset), (&epoch, latest), "{} is behind", t);
            // The app has every message up to there, or was told it may not.
            let last = w.app.last.get(&t).cloned();
            if latest > 0 {
                prop_assert_eq!(last, Some((epoch, latest)), "{} last applied", t);
            }
        }
        // Every publish got exactly one outcome; an acked one was applied by the server once.
        prop_assert_eq!(w.conn.snapshot().pending, 0);
        for (id, outcomes) in &w.app.published {
            prop_assert_eq!(outcomes.len(), 1, "{}: {:?}", id, outcomes);
            if outcomes[0] == "published" {
                prop_assert!(w.server.applied.contains_key(id));
            }
        }
    }
}
