//! Live fan-out across instances: one pub/sub connection per instance,
//! subscribed to the channels of the users and topics it holds sockets for
//! (and to the control channel), delivering every message to the local
//! hubs ([`crate::notifications::Feeds`], [`crate::topics::Topics`]).
//!
//! A channel is subscribed (and the subscription confirmed) before the
//! socket that needs it reads history, and unsubscribed when the last local
//! socket goes ([`PubSub::acquire`], [`PubSub::release`]). Pub/sub is
//! lossy: when the connection breaks, the subscriber task reconnects with
//! backoff, subscribes again to everything held, and then treats every held
//! user and topic as possibly behind ([`crate::AppState::resync`]).

use super::streams::LiveEvent;
use super::{RESPONSE_TIMEOUT, Redis};
use crate::{AppState, Shared};
use futures_util::StreamExt as _;
use redis::aio::PubSubSink;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{Mutex, Notify, watch};

/// The shortest and longest wait between reconnect attempts.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(20), Duration::from_secs(2));

#[derive(Debug, Default)]
struct Channels {
    /// The current connection's command half (`None` while disconnected).
    sink: Option<PubSubSink>,
    /// Held channels and how many local holders each has.
    refs: HashMap<String, usize>,
}

/// The instance's pub/sub subscriptions.
#[derive(Debug)]
pub struct PubSub {
    redis: Redis,
    channels: Mutex<Channels>,
    /// Asks the subscriber task to drop its connection (a test hook, and
    /// what a failed subscribe does).
    disconnect: Notify,
    /// How many times the subscriber has (re)connected and resynced.
    connections: watch::Sender<u64>,
}

impl PubSub {
    /// Subscriptions on `redis` (none yet; see [`PubSub::spawn`]).
    pub fn new(redis: Redis) -> Self {
        Self {
            redis,
            channels: Mutex::default(),
            disconnect: Notify::new(),
            connections: watch::Sender::new(0),
        }
    }

    /// The store.
    pub fn redis(&self) -> &Redis {
        &self.redis
    }

    /// The control channel (`<prefix>control`).
    pub fn control_channel(&self) -> String {
        self.redis.channel("control")
    }

    /// Holds `channel`: subscribes to it if no local holder had, waiting
    /// for Redis to confirm. While disconnected it is only recorded: the
    /// subscriber subscribes to every held channel when it reconnects, and
    /// then resyncs every socket.
    pub async fn acquire(&self, channel: &str) {
        let mut channels = self.channels.lock().await;
        let count = channels.refs.entry(channel.to_owned()).or_insert(0);
        *count += 1;
        if *count > 1 {
            return;
        }
        if let Some(sink) = channels.sink.as_mut() {
            let confirmed = tokio::time::timeout(RESPONSE_TIMEOUT, sink.subscribe(channel)).await;
            if !matches!(confirmed, Ok(Ok(()))) {
                tracing::info!("pub/sub subscribe failed: reconnecting");
                channels.sink = None;
                self.disconnect.notify_one();
            }
        }
    }

    /// Lets go of `channel` (in the background: sockets release in `Drop`);
    /// unsubscribes when it was the last local holder.
    pub fn release(self: &Arc<Self>, channel: String) {
        let this = self.clone();
        let release = async move {
            let mut channels = this.channels.lock().await;
            let Some(count) = channels.refs.get_mut(&channel) else {
                return;
            };
            *count -= 1;
            if *count > 0 {
                return;
            }
            channels.refs.remove(&channel);
            if let Some(sink) = channels.sink.as_mut() {
                let _ = tokio::time::timeout(RESPONSE_TIMEOUT, sink.unsubscribe(&channel)).await;
            }
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(release);
        }
    }

    /// The channels held now (tests).
    pub async fn held(&self) -> Vec<String> {
        let mut held: Vec<String> = self.channels.lock().await.refs.keys().cloned().collect();
        held.sort();
        held
    }

    /// Drops the subscriber's connection, as a network failure would (a
    /// dev/test hook): it reconnects and resyncs.
    pub fn drop_connection(&self) {
        self.disconnect.notify_one();
    }

    /// Changes each time the subscriber has connected, subscribed to every
    /// held channel and resynced the local sockets (tests await it).
    pub fn watch_connections(&self) -> watch::Receiver<u64> {
        self.connections.subscribe()
    }

    /// Starts the subscriber task of `state` (it ends when the state is
    /// dropped).
    pub fn spawn(state: &AppState) {
        let Some(pubsub) = state.pubsub.clone() else {
            return;
        };
        let weak = Arc::downgrade(&state.0);
        tokio::spawn(run(pubsub, weak));
    }
}

async fn run(pubsub: Arc<PubSub>, state: Weak<Shared>) {
    let mut backoff = BACKOFF.0;
    let control = pubsub.control_channel();
    loop {
        if state.strong_count() == 0 {
            return;
        }
        let connected =
            tokio::time::timeout(RESPONSE_TIMEOUT, pubsub.redis.client().get_async_pubsub()).await;
        let Ok(Ok(connection)) = connected else {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF.1);
            continue;
        };
        let (mut sink, mut stream) = connection.split();
        let held = {
            let mut channels = pubsub.channels.lock().await;
            let mut all: Vec<&str> = channels.refs.keys().map(String::as_str).collect();
            all.push(&control);
            let subscribed = tokio::time::timeout(RESPONSE_TIMEOUT, sink.subscribe(&all)).await;
            if !matches!(subscribed, Ok(Ok(()))) {
                drop(channels);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF.1);
                continue;
            }
            channels.sink = Some(sink);
            !channels.refs.is_empty()
        };
        tracing::debug!("pub/sub connected");
        backoff = BACKOFF.0;
        // The command connection reconnects on its own, after its first
        // failed command: wait for it before reading the streams.
        let deadline = tokio::time::Instant::now() + 2 * RESPONSE_TIMEOUT;
        let mut answered = false;
        while !answered && tokio::time::Instant::now() < deadline {
            answered = redis::cmd("PING")
                .query_async::<String>(&mut pubsub.redis.conn())
                .await
                .is_ok();
            if !answered {
                tokio::time::sleep(BACKOFF.0).await;
            }
        }
        if !answered {
            pubsub.channels.lock().await.sink = None;
            continue;
        }
        // Whatever was published while no connection was subscribed is
        // only in the streams: every held user and topic may be behind
        // (nothing is when no channel was held).
        match state.upgrade() {
            Some(shared) if held => AppState(shared).resync().await,
            Some(_) => {}
            None => return,
        }
        pubsub.connections.send_modify(|n| *n += 1);
        loop {
            tokio::select! {
                message = stream.next() => match message {
                    Some(message) => match state.upgrade() {
                        Some(shared) => dispatch(&AppState(shared), &pubsub, &control, &message).await,
                        None => return,
                    },
                    None => break,
                },
                () = pubsub.disconnect.notified() => break,
            }
        }
        tracing::info!("pub/sub connection lost: reconnecting");
        pubsub.channels.lock().await.sink = None;
    }
}

/// Hands one message to the hub it is for.
async fn dispatch(state: &AppState, pubsub: &PubSub, control: &str, message: &redis::Msg) {
    let channel = message.get_channel_name();
    let payload = message.get_payload_bytes();
    if channel == control {
        match serde_json::from_slice::<super::control::ControlEvent>(payload) {
            Ok(event) => state.on_control(event).await,
            Err(err) => tracing::warn!(%err, "a malformed control event"),
        }
        return;
    }
    let Some(name) = channel
        .strip_prefix(pubsub.redis.config().prefix.as_str())
        .and_then(|c| c.strip_suffix(":live"))
    else {
        return;
    };
    let event = match LiveEvent::parse(payload) {
        Ok(event) => event,
        Err(err) => {
            tracing::warn!(%err, "a malformed live message");
            return;
        }
    };
    if let Some(user) = name.strip_prefix("{u:").and_then(|n| n.strip_suffix('}')) {
        if let (
            Ok(user),
            LiveEvent::Appended {
                epoch,
                offset,
                frame,
            },
        ) = (user.parse::<uuid::Uuid>(), event)
        {
            state.feeds.deliver(user, &epoch, offset, frame);
        }
    } else if let Some(topic) = name.strip_prefix("{t:").and_then(|n| n.strip_suffix('}')) {
        state.topics.deliver(topic, event);
    }
}
