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
