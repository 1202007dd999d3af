//! App-wide lists fed by the connection's events: the timeline, the
//! notifications and the messages sent. They live in the root so that
//! nothing is missed while the router switches pages.

use crate::prelude::*;
use leptos::prelude::*;
use std::collections::VecDeque;
use tether_protocol::Notification;

/// How many events the timeline keeps.
pub const TIMELINE_LEN: usize = 50;
/// How many sent messages the list keeps.
const MESSAGES_LEN: usize = 50;

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineItem {
    /// Unique, increasing.
    pub key: u64,
    /// When it happened, ms since the Unix epoch.
    pub at: f64,
    /// The event's variant name (`Connected`, `Disconnected`…).
    pub kind: &'static str,
    /// Its data, in words.
    pub text: String,
}

/// Where a sent message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendStatus {
    /// Accepted while not connected; goes out on the next connection.
    Queued,
    /// On the wire (or about to be), waiting for the ack.
    Sent,
    /// The server acknowledged it.
    Acked,
    /// Refused or failed for good.
    Failed,
}

impl SendStatus {
    /// `queued`, `sent`, `acked` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Acked => "acked",
            Self::Failed => "failed",
        }
    }
}

/// A message from the send box.
#[derive(Debug, Clone)]
pub struct SentMessage {
    /// Unique, increasing.
    pub key: u64,
    /// The id `send` returned (none when it was refused).
    pub id: Option<MessageId>,
    /// What the user typed.
    pub text: String,
    /// When it was sent, ms since the Unix epoch.
    pub at: f64,
    /// Its current status.
    pub status: ArcRwSignal<SendStatus>,
    /// Why it failed, if it did.
    pub error: ArcRwSignal<Option<String>>,
}

/// The lists, as a `Copy` handle in context.
#[derive(Debug, Clone, Copy)]
pub struct Store {
    /// Newest first, at most [`TIMELINE_LEN`].
    pub timeline: RwSignal<VecDeque<TimelineItem>>,
    /// Newest (highest `seq`) first, one per `seq`.
    pub notifications: RwSignal<Vec<Notification>>,
    /// Notification events received, duplicates included.
    pub received: RwSignal<usize>,
    /// Newest first.
    pub messages: RwSignal<VecDeque<SentMessage>>,
    state: Signal<ConnectionState>,
    next_key: StoredValue<u64>,
}

impl Store {
    fn key(&self) -> u64 {
        let key = self.next_key.get_value();
        self.next_key.set_value(key + 1);
        key
    }

    /// Sends `text` as `{"text": ...}` and tracks it.
    pub fn send(&self, conn: ConnectionManager, text: String) -> Result<(), SendError> {
        let result = conn.send(&serde_json::json!({ "text": text }));
        let (id, status, error) = match &result {
            Ok(id) => {
                let status = if self.state.get_untracked() == ConnectionState::Connected {
                    SendStatus::Sent
                } else {
                    SendStatus::Queued
                };
                (Some(id.clone()), status, None)
            }
            Err(e) => (None, SendStatus::Failed, Some(e.to_string())),
        };
        let message = SentMessage {
            key: self.key(),
            id,
            text,
            at: js_sys::Date::now(),
            status: ArcRwSignal::new(status),
            error: ArcRwSignal::new(error),
        };
        self.messages.update(|list| {
            list.push_front(message);
            list.truncate(MESSAGES_LEN);
        });
        result.map(|_| ())
    }

    /// Empties every list (on sign-out).
    pub fn clear(&self) {
        self.timeline.update(VecDeque::clear);
        self.notifications.update(Vec::clear);
        self.received.set(0);
        self.messages.update(VecDeque::clear);
    }

    fn on_event(&self, event: &Event) {
        match event {
            Event::StateChanged {
                to: ConnectionState::Connected,
                ..
            } => self.messages.with_untracked(|list| {
                for m in list {
                    if m.status.get_untracked() == SendStatus::Queued {
                        m.status.set(SendStatus::Sent);
                    }
                }
            }),
            Event::Ack { id } => self.set_status(id, SendStatus::Acked, None),
            Event::SendFailed { id, error } => {
                self.set_status(id, SendStatus::Failed, Some(error.to_string()));
            }
            Event::Notification(n) => {
                self.received.update(|r| *r += 1);
                let fresh = self
                    .notifications
                    .with_untracked(|list| list.iter().all(|x| x.seq != n.seq));
                if fresh {
                    self.notifications.update(|list| {
                        let at = list.partition_point(|x| x.seq > n.seq);
                        list.insert(at, n.clone());
                    });
                }
            }
            _ => {}
        }
        // Pongs arrive every few seconds; the RTT shows them.
        if let Some((kind, text)) = describe(event) {
            let item = TimelineItem {
                key: self.key(),
                at: js_sys::Date::now(),
                kind,
                text,
            };
            self.timeline.update(|list| {
                list.push_front(item);
                list.truncate(TIMELINE_LEN);
            });
        }
    }

    fn set_status(&self, id: &MessageId, status: SendStatus, error: Option<String>) {
        self.messages.with_untracked(|list| {
            if let Some(m) = list.iter().find(|m| m.id.as_ref() == Some(id)) {
                m.status.set(status);
                if error.is_some() {
                    m.error.set(error);
                }
            }
        });
    }
}

/// The event's name and data in words; `None` for pongs.
fn describe(event: &Event) -> Option<(&'static str, String)> {
    Some(match event {
        Event::StateChanged { from, to } => ("StateChanged", format!("{from} → {to}")),
        Event::Connected { user_id } => ("Connected", format!("as {}…", short_id(user_id))),
        Event::AuthSuccess { reauth, .. } => (
            "AuthSuccess",
            if *reauth {
                "re-authenticated in place".into()
            } else {
                "token accepted".into()
            },
        ),
        Event::AuthError { code, message } => ("AuthError", format!("{code}: {message}")),
        Event::Disconnected { code, reason } if reason.is_empty() => {
            ("Disconnected", format!("code {code}"))
        }
        Event::Disconnected { code, reason } => ("Disconnected", format!("code {code}, {reason}")),
        Event::ReconnectScheduled { attempt, delay, .. } => (
            "ReconnectScheduled",
            format!("attempt {attempt} in {} ms", delay.as_millis()),
        ),
        Event::ReconnectFailed { attempts } => (
            "ReconnectFailed",
            format!("gave up after {attempts} attempts"),
        ),
        Event::SignedOut => ("SignedOut", String::new()),
        Event::Notification(n) => ("Notification", format!("#{} {}", n.seq, n.title)),
        Event::Ack { id } => ("Ack", short_id(id.as_str())),
        Event::SendFailed { id, error } => {
            ("SendFailed", format!("{}: {error}", short_id(id.as_str())))
        }
        Event::Pong { .. } => return None,
        // A room's messages and presence show in the room; the timeline
        // keeps what changes a topic's standing.
        Event::Topic(crate::TopicEvent::State { topic, state }) => {
            ("Topic", format!("{topic}: {state:?}"))
        }
        Event::Topic(crate::TopicEvent::NotRecovered { topic, epoch }) => (
            "Topic",
            format!("{topic}: earlier messages may be missing (epoch {epoch})"),
        ),
        Event::Topic(_) => return None,
        Event::Error(error) => ("Error", error.to_string()),
        _ => ("Other", format!("{event:?}")),
    })
}

/// The first block of a UUID.
pub fn short_id(id: &str) -> String {
    id.split('-').next().unwrap_or(id).to_owned()
}

/// Creates the store, subscribes it to every event for as long as the
/// calling component lives, and puts it in context.
pub fn provide_store(conn: ConnectionManager) -> Store {
    let store = Store {
        timeline: RwSignal::new(VecDeque::new()),
        notifications: RwSignal::new(Vec::new()),
        received: RwSignal::new(0),
        messages: RwSignal::new(VecDeque::new()),
        state: conn.state(),
        next_key: StoredValue::new(0),
    };
    let subscription = conn.on_any(move |event| store.on_event(event));
    // Dropped, and so unsubscribed, when the owner is cleaned up.
    StoredValue::new_local(subscription);
    provide_context(store);
    store
}

/// The store provided by the app root.
pub fn use_store() -> Store {
    expect_context::<Store>()
}
