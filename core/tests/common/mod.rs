//! A virtual-clock harness: feed inputs at given times, collect effects.
#![allow(dead_code)]

use serde_json::Value;
use std::time::Duration;
use tether_core::{
    Config, Connection, ConnectionState, Effect, Event, Input, MessageId, Millis, Secret,
};

/// The most timer firings [`Harness::run_until`] allows: far more than any
/// test's span needs (a ping every 5 s is 720 firings an hour).
pub const MAX_TIMER_FIRINGS: usize = 10_000;

pub const USER: &str = "2f0c1e9a-0000-4000-8000-000000000001";

/// A connection on a virtual clock.
pub struct Harness {
    pub conn: Connection,
    pub now: Millis,
}

impl Harness {
    pub fn new(config: Config) -> Self {
        Self {
            conn: Connection::new(config),
            now: 1_000,
        }
    }

    /// Default config with a token `tok` of unknown lifetime.
    pub fn with_token() -> Self {
        Self::with_token_config(Config::default())
    }

    pub fn with_token_config(config: Config) -> Self {
        let mut h = Self::new(config);
        h.input(Input::SetToken {
            token: Secret::new("tok"),
            expires_in: None,
        });
        h
    }

    /// Feeds `input` at the current time and returns the effects.
    pub fn input(&mut self, input: Input) -> Vec<Effect> {
        self.conn.handle(self.now, input);
        self.drain()
    }

    pub fn drain(&mut self) -> Vec<Effect> {
        std::iter::from_fn(|| self.conn.poll_effect()).collect()
    }

    /// Moves the clock to `t` and ticks.
    pub fn tick_at(&mut self, t: Millis) -> Vec<Effect> {
        self.now = t;
        self.input(Input::Tick)
    }

    /// Moves the clock forward by `ms` and ticks.
    pub fn wait(&mut self, ms: u64) -> Vec<Effect> {
        self.tick_at(self.now + ms)
    }

    /// Fires the armed timer as a well-behaved driver would, until `t`.
    /// Panics after [`MAX_TIMER_FIRINGS`] firings: a machine whose deadline
    /// never moves past `t` (a lost timeout, a deadline in the past) fails
    /// the test instead of running it forever.
    pub fn run_until(&mut self, t: Millis) -> Vec<Effect> {
        let mut all = Vec::new();
        let mut fired = 0;
        while let Some(d) = self.conn.deadline() {
            if d > t {
                break;
            }
            fired += 1;
            assert!(
                fired <= MAX_TIMER_FIRINGS,
                "the timer fired {MAX_TIMER_FIRINGS} times before {t} and is due again at {d} (now {})",
                self.now
            );
            self.now = self.now.max(d);
            all.extend(self.input(Input::Tick));
        }
        self.now = self.now.max(t);
        all.extend(self.input(Input::Tick));
        all
    }

    pub fn frame(&mut self, text: impl Into<String>) -> Vec<Effect> {
        self.input(Input::Frame(text.into()))
    }

    pub fn send(&mut self, body: Value) -> MessageId {
        self.conn.send(self.now, raw(body)).expect("send accepted")
    }

    /// Connect, open, authenticate (token lifetime 15 min).
    pub fn online(&mut self) -> Vec<Effect> {
        let mut all = self.input(Input::Connect);
        all.extend(self.input(Input::Opened));
        all.extend(self.frame(auth_success(15 * 60)));
        assert_eq!(self.conn.state(), ConnectionState::Connected, "{all:#?}");
        all
    }
}

pub fn auth_success(lifetime_s: i64) -> String {
    auth_success_for(USER, lifetime_s)
}

pub fn auth_success_for(user: &str, lifetime_s: i64) -> String {
    let at = 1_767_225_600_000_i64; // 2026-01-01T00:00:00Z
    serde_json::json!({"type": "auth_success", "payload": {
        "user_id": user,
        "authenticated_at": tether_protocol::time::format_rfc3339(at),
        "expires_at": tether_protocol::time::format_rfc3339(at + lifetime_s * 1000),
    }})
    .to_string()
}

pub fn auth_error(code: &str) -> String {
    serde_json::json!({"type": "auth_error", "payload": {"code": code, "message": "nope"}})
        .to_string()
}

pub fn notification(seq: u64) -> String {
    serde_json::json!({"type": "notification", "payload": {
        "seq": seq, "id": format!("n{seq}"), "title": "t", "body": "b",
        "created_at": "2026-01-01T00:00:00Z"}})
    .to_string()
}

pub fn ack(id: &str) -> String {
    serde_json::json!({"type": "ack", "payload": {"id": id}}).to_string()
}

pub fn pong(seq: u64) -> String {
    serde_json::json!({"type": "pong", "payload": {"seq": seq}}).to_string()
}

pub fn closed(code: u16) -> Input {
    Input::Closed {
        code,
        reason: String::new(),
    }
}

/// The JSON frames sent.
pub fn frames(effects: &[Effect]) -> Vec<Value> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::SendFrame(text) => Some(serde_json::from_str(text).expect("frames are JSON")),
            _ => None,
        })
        .collect()
}

pub fn frame_types(effects: &[Effect]) -> Vec<String> {
    frames(effects)
        .iter()
        .map(|f| f["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

pub fn events(effects: &[Effect]) -> Vec<Event> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Emit(event) => Some(event.clone()),
            _ => None,
        })
        .collect()
}

pub fn opens(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::OpenSocket { url } => Some(url.expose().to_owned()),
            _ => None,
        })
        .collect()
}

pub fn count(effects: &[Effect], pred: impl Fn(&Effect) -> bool) -> usize {
    effects.iter().filter(|e| pred(e)).count()
}

pub fn scheduled(effects: &[Effect]) -> Vec<(u32, Duration, Millis)> {
    events(effects)
        .into_iter()
        .filter_map(|e| match e {
            Event::ReconnectScheduled { attempt, delay, at } => Some((attempt, delay, at)),
            _ => None,
        })
        .collect()
}

pub fn errors(effects: &[Effect]) -> Vec<tether_core::ConnectionError> {
    events(effects)
        .into_iter()
        .filter_map(|e| match e {
            Event::Error(err) => Some(err),
            _ => None,
        })
        .collect()
}

/// A `send` body from a `json!` value.
pub fn raw(body: Value) -> tether_protocol::RawJson {
    tether_protocol::RawJson::new(body.to_string()).expect("json! is JSON")
}

// ----- topics ---------------------------------------------------------------

pub const ALICE: (&str, &str) = ("2f0c1e9a-0000-4000-8000-00000000000a", "alice");
pub const BOB: (&str, &str) = ("2f0c1e9a-0000-4000-8000-00000000000b", "bob");

pub fn user(u: (&str, &str)) -> tether_core::User {
    tether_core::User {
        user_id: u.0.into(),
        username: u.1.into(),
    }
}

fn users_json(users: &[(&str, &str)]) -> Value {
    users
        .iter()
        .map(|(id, name)| serde_json::json!({"user_id": id, "username": name}))
        .collect()
}

/// `subscribed` with `recovered` (absent when `None`) and no one present.
pub fn subscribed(
    topic: &str,
    epoch: &str,
    offset: u64,
    from: u64,
    recovered: Option<bool>,
) -> String {
    subscribed_with(topic, epoch, offset, from, recovered, &[])
}

pub fn subscribed_with(
    topic: &str,
    epoch: &str,
    offset: u64,
    from: u64,
    recovered: Option<bool>,
    presence: &[(&str, &str)],
) -> String {
    let mut payload = serde_json::json!({"topic": topic, "epoch": epoch, "offset": offset,
        "from": from, "presence": users_json(presence)});
    if let Some(recovered) = recovered {
        payload["recovered"] = recovered.into();
    }
    serde_json::json!({"type": "subscribed", "payload": payload}).to_string()
}

pub fn subscribe_error(topic: &str, code: &str, retry: bool) -> String {
    serde_json::json!({"type": "subscribe_error", "payload": {"topic": topic, "code": code,
        "message": "no", "retry": retry}})
    .to_string()
}

pub fn unsubscribed(topic: &str, code: &str, epoch: Option<&str>) -> String {
    let mut payload = serde_json::json!({"topic": topic, "code": code, "message": "bye"});
    if let Some(epoch) = epoch {
        payload["epoch"] = epoch.into();
    }
    serde_json::json!({"type": "unsubscribed", "payload": payload}).to_string()
}

/// A `message` at `offset` whose data is `{"n": offset}`.
pub fn topic_message(topic: &str, offset: u64) -> String {
    serde_json::json!({"type": "message", "payload": {"topic": topic, "offset": offset,
        "event": "chat.text", "data": {"n": offset}, "from": {"user_id": BOB.0, "username": BOB.1},
        "id": format!("m-{topic}-{offset}"), "created_at": "2026-01-01T00:00:00Z"}})
    .to_string()
}

pub fn presence(topic: &str, joined: &[(&str, &str)], left: &[(&str, &str)]) -> String {
    serde_json::json!({"type": "presence", "payload": {"topic": topic,
        "joined": users_json(joined), "left": users_json(left)}})
    .to_string()
}

pub fn publish_ack(id: &str, topic: &str, offset: u64) -> String {
    serde_json::json!({"type": "ack", "payload": {"id": id, "topic": topic, "offset": offset}})
        .to_string()
}

pub fn nack(id: &str, code: &str) -> String {
    serde_json::json!({"type": "nack", "payload": {"id": id, "code": code, "message": "refused"}})
        .to_string()
}

pub fn topic_events(effects: &[Effect]) -> Vec<tether_core::TopicEvent> {
    events(effects)
        .into_iter()
        .filter_map(|e| match e {
            Event::Topic(event) => Some(event),
            _ => None,
        })
        .collect()
}

/// The messages applied: (topic, offset, replayed).
pub fn applied(effects: &[Effect]) -> Vec<(String, u64, bool)> {
    topic_events(effects)
        .into_iter()
        .filter_map(|e| match e {
            tether_core::TopicEvent::Message { message, replayed } => {
                Some((message.topic, message.offset, replayed))
            }
            _ => None,
        })
        .collect()
}

/// The payloads of the frames of this `type` sent.
pub fn sent_of(effects: &[Effect], kind: &str) -> Vec<Value> {
    frames(effects)
        .into_iter()
        .filter(|f| f["type"] == kind)
        .map(|f| f["payload"].clone())
        .collect()
}

/// The topic state changes: (topic, state).
pub fn topic_states(effects: &[Effect]) -> Vec<(String, tether_core::TopicState)> {
    topic_events(effects)
        .into_iter()
        .filter_map(|e| match e {
            tether_core::TopicEvent::State { topic, state } => Some((topic, state)),
            _ => None,
        })
        .collect()
}

impl Harness {
    pub fn subscribe(&mut self, topic: &str, last: u32) -> Vec<Effect> {
        self.conn
            .subscribe(self.now, topic, tether_core::SubscribeOptions { last })
            .expect("subscribe accepted");
        self.drain()
    }

    pub fn unsubscribe(&mut self, topic: &str) -> Vec<Effect> {
        self.conn.unsubscribe(self.now, topic);
        self.drain()
    }

    pub fn publish(&mut self, topic: &str, n: u64) -> MessageId {
        self.conn
            .publish(
                self.now,
                topic,
                "chat.text",
                raw(serde_json::json!({"n": n})),
            )
            .expect("publish accepted")
    }

    pub fn topic_state(&self, topic: &str) -> Option<tether_core::TopicState> {
        self.conn.topic(topic).map(|t| t.state)
    }

    /// Drops the socket (1006) and lets the reconnect authenticate; the
    /// effects from the drop on.
    pub fn reconnect(&mut self) -> Vec<Effect> {
        let mut all = self.input(closed(1006));
        let (_, _, at) = scheduled(&all)[0];
        all.extend(self.tick_at(at));
        all.extend(self.input(Input::Opened));
        all.extend(self.frame(auth_success(900)));
        all
    }
}
