//! Topics (contract section "Topics"): each topic the app subscribed to is a
//! small state machine, with its position in the topic's stream, its
//! presence list, and the ordering rules that make every message reach the
//! app exactly once, in offset order, across reconnects.
//!
//! The machine ([`crate::Connection`]) feeds this module the topic frames
//! and the socket's comings and goings; it answers with [`Action`]s (frames
//! to send, events for the app, publishes to release or fail) that the
//! machine turns into effects. Nothing here knows about sockets or clocks.

use crate::{MessageId, Millis, SendError};
use tether_protocol::{
    Position, Presence, Subscribe, SubscribeError, SubscribeErrorCode, Subscribed, TopicMessage,
    Unsubscribe, Unsubscribed, UnsubscribedCode, User,
};

/// How to subscribe to a topic ([`crate::Connection::subscribe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubscribeOptions {
    /// How many of the topic's retained messages the server replays on the
    /// first subscribe (0 to [`tether_protocol::MAX_LAST`]); they arrive
    /// with `replayed: true`. Later subscribes (after a reconnect, a gap)
    /// carry the topic's position (`since`) instead, so nothing is replayed
    /// twice. Defaults to 0.
    pub last: u32,
}

/// The state of one topic, as the app sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicState {
    /// Not subscribed: the app never subscribed, unsubscribed, or the
    /// session ended (sign-out, a final authentication failure, destroy).
    Unsubscribed,
    /// Wanted but not (yet, or no longer) streaming: waiting for the
    /// connection, for the answer to a `subscribe`, for a retry after a
    /// `rate_limited`/`unavailable` refusal, or resubscribing after a gap,
    /// a `reset` or a change of user.
    Subscribing,
    /// The server confirmed the subscription (`subscribed`): messages flow.
    Subscribed,
    /// The server refused or ended the subscription for good; the machine
    /// does not try again until the app subscribes again.
    Failed(TopicFailure),
}

/// Why a topic failed for good ([`TopicState::Failed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopicFailure {
    /// The server refused the `subscribe` with a final code (`forbidden`,
    /// `not_found`, `invalid_topic`, `bad_request`, `too_many_topics`, or an
    /// unknown code with `retry: false`).
    Refused {
        /// The `subscribe_error` code.
        code: SubscribeErrorCode,
        /// The server's text.
        message: String,
    },
    /// The server ended a live subscription (`unsubscribed` `removed` or
    /// `topic_deleted`, or a code this version does not know).
    Ended {
        /// The `unsubscribed` code.
        code: UnsubscribedCode,
        /// The server's text.
        message: String,
    },
}

/// One topic at a glance ([`crate::Connection::topic`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicSnapshot {
    /// The topic's state.
    pub state: TopicState,
    /// Who is subscribed to the topic, as of the last `subscribed` and
    /// `presence` frames (kept while resubscribing; replaced by the next
    /// `subscribed`).
    pub presence: Vec<User>,
    /// Where the topic's stream is: the epoch and the offset of the last
    /// message applied (or, before the first one, the offset just before
    /// the first message to come). `None` before the first `subscribed`.
    /// It is the `since` of the next resubscribe.
    pub position: Option<Position>,
}

/// What the app hears about a topic, inside [`crate::Event::Topic`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TopicEvent {
    /// The topic's state changed.
    State {
        /// The topic.
        topic: String,
        /// Its new state.
        state: TopicState,
    },
    /// A message of the topic, applied: each offset reaches the app at most
    /// once and in offset order, across reconnects and resubscribes.
    Message {
        /// The message.
        message: TopicMessage,
        /// Whether it was already in the topic when the subscription
        /// started (its offset is at most the `offset` of its `subscribed`):
        /// history, not live.
        replayed: bool,
    },
    /// The topic's earlier messages may be missing: the server could not
    /// resume from the topic's position (`recovered: false`, another epoch,
    /// a `reset`). Messages continue after this event.
    NotRecovered {
        /// The topic.
        topic: String,
        /// The epoch the topic continues in.
        epoch: String,
    },
    /// Who is subscribed to the topic changed (or was stated afresh by a
    /// `subscribed`).
    Presence {
        /// The topic.
        topic: String,
        /// Everyone subscribed now.
        present: Vec<User>,
        /// Who arrived since the last presence event.
        joined: Vec<User>,
        /// Who left since the last presence event.
        left: Vec<User>,
    },
    /// The server applied a publish (its `ack`).
    Published {
        /// The id `publish` returned.
        id: MessageId,
        /// The topic.
        topic: String,
        /// The offset of the published message in the topic (0 if the
        /// server's ack did not say).
        offset: u64,
    },
    /// A publish failed for good and will not be resent.
    PublishFailed {
        /// The id `publish` returned.
        id: MessageId,
        /// The topic.
        topic: String,
        /// Why.
        error: SendError,
    },
}

/// What the topics ask the machine to do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    /// Send this `subscribe`.
    Subscribe(Subscribe),
    /// Send this `unsubscribe`.
    Unsubscribe(Unsubscribe),
    /// Tell the app.
    Emit(TopicEvent),
    /// The topic is subscribed: send the publishes held for it.
    Flush(String),
    /// The topic ended: its pending publishes fail.
    End(String),
}

/// Where one topic is.
#[derive(Debug, Clone, PartialEq)]
enum Phase {
    /// Wanted; nothing sent on the current socket (not connected yet, or
    /// the socket went away).
    Waiting,
    /// A `subscribe` went out on the current socket; its answer is awaited.
    Requested,
    /// Subscribed: the next message to apply is `next`; those up to
    /// `replayed_until` were in the topic before the subscription.
    Live { next: u64, replayed_until: u64 },
    /// Refused with a code worth a retry: subscribe again at `at`.
    Backoff { at: Millis },
    /// Refused or ended for good.
    Failed(TopicFailure),
}

#[derive(Debug, Clone)]
struct Topic {
    name: String,
    /// `last` of the first subscribe.
    last: u32,
    phase: Phase,
    position: Option<Position>,
    presence: Vec<User>,
    /// Retryable refusals in a row (the backoff exponent).
    failures: u32,
}

impl Topic {
    fn state(&self) -> TopicState {
        match &self.phase {
            Phase::Waiting | Phase::Requested | Phase::Backoff { .. } => TopicState::Subscribing,
            Phase::Live { .. } => TopicState::Subscribed,
            Phase::Failed(failure) => TopicState::Failed(failure.clone()),
        }
    }

    /// The `subscribe` for this topic now: `since` its position once it has
    /// one, `last` only before that.
    fn request(&self) -> Subscribe {
        Subscribe {
            topic: self.name.clone(),
            since: self.position.clone(),
            last: (self.position.is_none() && self.last > 0).then_some(self.last),
        }
    }

    /// Whether the server holds (or is about to hold) a subscription of
    /// this socket for the topic.
    fn on_wire(&self) -> bool {
        matches!(self.phase, Phase::Requested | Phase::Live { .. })
    }
}

/// Every topic the app subscribed to, in subscription order.
#[derive(Debug, Default)]
pub(crate) struct Topics {
    topics: Vec<Topic>,
    /// Topics whose `unsubscribe` went out on this socket, unanswered (a
    /// name once per `unsubscribe`).
    unsubscribing: Vec<String>,
    /// Topics whose `subscribe` went out on this socket, unanswered (a name
    /// once per `subscribe`). Answers come in order: only the answer to a
    /// topic's latest `subscribe` counts.
    awaiting: Vec<String>,
    /// What the machine must do, in order; drained after every call.
    pub(crate) out: Vec<Action>,
}

impl Topics {
    fn find(&self, name: &str) -> Option<&Topic> {
        self.topics.iter().find(|t| t.name == name)
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.topics.iter().position(|t| t.name == name)
    }

    /// Topics that count against the per-socket limit (not failed).
    fn active(&self) -> usize {
        self.topics
            .iter()
            .filter(|t| !matches!(t.phase, Phase::Failed(_)))
            .count()
    }

    /// Moves topic `i` to `phase`, telling the app when its state changes.
    fn set(&mut self, i: usize, phase: Phase) {
        let topic = &mut self.topics[i];
        let before = topic.state();
        topic.phase = phase;
        let state = topic.state();
        if state != before {
            let topic = topic.name.clone();
            self.out
                .push(Action::Emit(TopicEvent::State { topic, state }));
        }
    }

    /// Sends topic `i`'s `subscribe` (it is `Requested` afterwards).
    fn request(&mut self, i: usize) {
        let request = self.topics[i].request();
        self.awaiting.push(request.topic.clone());
        self.out.push(Action::Subscribe(request));
        self.set(i, Phase::Requested);
    }

    /// Fails topic `i` for good and ends its publishes.
    fn fail(&mut self, i: usize, failure: TopicFailure) {
        self.set(i, Phase::Failed(failure));
        self.out.push(Action::End(self.topics[i].name.clone()));
    }

    // ----- the app --------------------------------------------------------

    /// The app subscribes. Valid name and `last` are checked by the caller.
    /// Subscribing to a topic already wanted changes nothing; a failed one
    /// is tried again from its position.
    pub(crate) fn subscribe(
        &mut self,
        name: &str,
        options: SubscribeOptions,
        online: bool,
        limit: usize,
    ) -> Result<(), crate::TopicError> {
        let existing = self.index(name);
        if let Some(i) = existing
            && !matches!(self.topics[i].phase, Phase::Failed(_))
        {
            return Ok(());
        }
        if self.active() >= limit {
            return Err(crate::TopicError::TooManyTopics { limit });
        }
        let i = existing.unwrap_or_else(|| {
            self.topics.push(Topic {
                name: name.to_owned(),
                last: options.last,
                phase: Phase::Waiting,
                position: None,
                presence: Vec::new(),
                failures: 0,
            });
            self.topics.len() - 1
        });
        let topic = &mut self.topics[i];
        topic.last = options.last;
        topic.failures = 0;
        topic.phase = Phase::Waiting;
        self.out.push(Action::Emit(TopicEvent::State {
            topic: name.to_owned(),
            state: TopicState::Subscribing,
        }));
        if online {
            self.request(i);
        }
        Ok(())
    }

    /// The app unsubscribes: `unsubscribe` goes out if the server holds a
    /// subscription, the topic's publishes fail, the topic is forgotten.
    pub(crate) fn unsubscribe(&mut self, name: &str) {
        let Some(i) = self.index(name) else { return };
        let topic = self.topics.remove(i);
        if topic.on_wire() {
            self.unsubscribing.push(topic.name.clone());
            self.out.push(Action::Unsubscribe(Unsubscribe {
                topic: topic.name.clone(),
            }));
        }
        self.out.push(Action::End(topic.name.clone()));
        self.out.push(Action::Emit(TopicEvent::State {
            topic: topic.name,
            state: TopicState::Unsubscribed,
        }));
    }

    /// The session ended (sign-out, final authentication failure,
    /// destroy): every topic is forgotten. Their publishes are failed by
    /// the caller with the session's reason.
    pub(crate) fn end_all(&mut self) {
        for topic in std::mem::take(&mut self.topics) {
            self.out.push(Action::Emit(TopicEvent::State {
                topic: topic.name,
                state: TopicState::Unsubscribed,
            }));
        }
    }

    // ----- the socket -----------------------------------------------------

    /// A fresh socket authenticated: every waiting topic subscribes, from
    /// its position.
    pub(crate) fn connected(&mut self) {
        for i in 0..self.topics.len() {
            if self.topics[i].phase == Phase::Waiting {
                self.request(i);
            }
        }
    }

    /// The socket went away: what was subscribed or being subscribed waits
    /// for the next one (a retry backoff keeps running).
    pub(crate) fn disconnected(&mut self) {
        self.unsubscribing.clear();
        self.awaiting.clear();
        for i in 0..self.topics.len() {
            if self.topics[i].on_wire() {
                self.set(i, Phase::Waiting);
            }
        }
    }

    /// When the next retry of a refused topic is due.
    pub(crate) fn next_retry(&self) -> Option<Millis> {
        self.topics
            .iter()
            .filter_map(|t| match t.phase {
                Phase::Backoff { at } => Some(at),
                _ => None,
            })
            .min()
    }

    /// Subscribes again every refused topic whose backoff is over.
    pub(crate) fn retry_due(&mut self, now: Millis) {
        for i in 0..self.topics.len() {
            if matches!(self.topics[i].phase, Phase::Backoff { at } if at <= now) {
                self.request(i);
            }
        }
    }

    // ----- frames ---------------------------------------------------------

    /// An answer to a `subscribe` of `topic` arrived: whether it answers the
    /// latest one (an earlier one's answer, or one nobody asked for, does
    /// not count).
    fn answer(&mut self, topic: &str) -> bool {
        let Some(at) = self.awaiting.iter().position(|t| t == topic) else {
            return false;
        };
        self.awaiting.remove(at);
        !self.awaiting.iter().any(|t| t == topic)
    }

    /// `subscribed`: the stream starts at `from` (rule 2), or right after
    /// the topic's position when the server replays from earlier in the
    /// same epoch, so nothing is applied twice. A lost position (another
    /// epoch, `recovered: false`, a hole before `from`) is reported.
    pub(crate) fn on_subscribed(&mut self, s: Subscribed) {
        if !self.answer(&s.topic) {
            return;
        }
        let Some(i) = self.index(&s.topic) else {
            return;
        };
        let topic = &mut self.topics[i];
        if !topic.on_wire() {
            return; // the answer to a subscribe that no longer counts
        }
        let mut next = s.from;
        let mut lost = s.recovered == Some(false);
        if let Some(position) = &topic.position {
            if position.epoch == s.epoch {
                let after = position.offset.saturating_add(1);
                lost |= s.from > after;
                next = next.max(after);
            } else {
                lost = true;
            }
        }
        topic.position = Some(Position {
            epoch: s.epoch.clone(),
            offset: next.saturating_sub(1),
        });
        topic.failures = 0;
        let joined = missing(&s.presence, &topic.presence);
        let left = missing(&topic.presence, &s.presence);
        topic.presence = s.presence;
        let present = topic.presence.clone();
        if lost {
            self.out.push(Action::Emit(TopicEvent::NotRecovered {
                topic: s.topic.clone(),
                epoch: s.epoch,
            }));
        }
        self.set(
            i,
            Phase::Live {
                next,
                replayed_until: s.offset,
            },
        );
        self.out.push(Action::Emit(TopicEvent::Presence {
            topic: s.topic.clone(),
            present,
            joined,
            left,
        }));
        self.out.push(Action::Flush(s.topic));
    }

    /// `subscribe_error`: final codes fail the topic for good (rule 1);
    /// `rate_limited`, `unavailable` and unknown codes with `retry: true`
    /// are retried at `retry_at(failures)`.
    pub(crate) fn on_subscribe_error(
        &mut self,
        e: SubscribeError,
        retry_at: impl FnOnce(u32) -> Millis,
    ) {
        if !self.answer(&e.topic) {
            return;
        }
        let Some(i) = self.index(&e.topic) else {
            return;
        };
        if self.topics[i].phase != Phase::Requested {
            return;
        }
        let retry = match &e.code {
            SubscribeErrorCode::RateLimited | SubscribeErrorCode::Unavailable => true,
            // A code this version does not know: the server's `retry` says.
            SubscribeErrorCode::Other(_) => e.retry,
            // forbidden, not_found, invalid_topic, bad_request,
            // too_many_topics, and any code a later version names.
            _ => false,
        };
        if retry {
            let topic = &mut self.topics[i];
            topic.failures = topic.failures.saturating_add(1);
            let at = retry_at(topic.failures);
            self.set(i, Phase::Backoff { at });
        } else {
            let failure = TopicFailure::Refused {
                code: e.code,
                message: e.message,
            };
            self.fail(i, failure);
        }
    }

    /// `unsubscribed`: the answer to the app's own `unsubscribe` (nothing
    /// to do: the topic is already forgotten), the end of the topic
    /// (`removed`, `topic_deleted`, an unknown code, an `unsubscribed` not
    /// asked for), or a resubscribe (`reset` from the new epoch's start,
    /// reported as not recovered; `user_changed` from the position).
    pub(crate) fn on_unsubscribed(&mut self, u: Unsubscribed) {
        if u.code == UnsubscribedCode::Unsubscribed
            && let Some(at) = self.unsubscribing.iter().position(|t| *t == u.topic)
        {
            // The answer to the app's `unsubscribe` (the app may have
            // subscribed again since: that `subscribe` follows on the wire).
            self.unsubscribing.remove(at);
            return;
        }
        let Some(i) = self.index(&u.topic) else {
            return;
        };
        if !self.topics[i].on_wire() {
            return;
        }
        match u.code {
            UnsubscribedCode::Reset => {
                let epoch = u.epoch.unwrap_or_default();
                self.topics[i].position = Some(Position {
                    epoch: epoch.clone(),
                    offset: 0,
                });
                self.out.push(Action::Emit(TopicEvent::NotRecovered {
                    topic: u.topic,
                    epoch,
                }));
                self.request(i);
            }
            UnsubscribedCode::UserChanged => self.request(i),
            // `removed`, `topic_deleted`, an `unsubscribed` not asked for,
            // a code this version does not know: the server ended it.
            code => {
                let failure = TopicFailure::Ended {
                    code,
                    message: u.message,
                };
                self.fail(i, failure);
            }
        }
    }

    /// `message`: applied only at the next expected offset (rule 3); a
    /// lower one is a duplicate and dropped; a higher one means lost
    /// continuity: resubscribe from the position.
    pub(crate) fn on_message(&mut self, m: TopicMessage) {
        let Some(i) = self.index(&m.topic) else {
            return;
        };
        let topic = &mut self.topics[i];
        let Phase::Live {
            next,
            replayed_until,
        } = &mut topic.phase
        else {
            return; // not streaming: the resubscribe will bring it again
        };
        if m.offset < *next {
            return; // a duplicate
        }
        if m.offset > *next {
            return self.request(i);
        }
        *next = m.offset.saturating_add(1);
        let replayed = m.offset <= *replayed_until;
        if let Some(position) = &mut topic.position {
            position.offset = m.offset;
        }
        self.out.push(Action::Emit(TopicEvent::Message {
            message: m,
            replayed,
        }));
    }

    /// `presence`: who joined and left a subscribed topic (rule 5).
    pub(crate) fn on_presence(&mut self, p: Presence) {
        let Some(i) = self.index(&p.topic) else {
            return;
        };
        let topic = &mut self.topics[i];
        if !matches!(topic.phase, Phase::Live { .. }) {
            return; // the next `subscribed` states the list afresh
        }
        let mut joined = Vec::new();
        for user in p.joined {
            if !topic.presence.iter().any(|u| u.user_id == user.user_id) {
                topic.presence.push(user.clone());
                joined.push(user);
            }
        }
        let mut left = Vec::new();
        for user in p.left {
            if let Some(at) = topic
                .presence
                .iter()
                .position(|u| u.user_id == user.user_id)
            {
                left.push(topic.presence.remove(at));
            }
        }
        if joined.is_empty() && left.is_empty() {
            return;
        }
        let present = topic.presence.clone();
        self.out.push(Action::Emit(TopicEvent::Presence {
            topic: p.topic,
            present,
            joined,
            left,
        }));
    }

    // ----- queries --------------------------------------------------------

    /// The topic's snapshot; `None` when the app has not subscribed to it.
    pub(crate) fn snapshot(&self, name: &str) -> Option<TopicSnapshot> {
        self.find(name).map(|t| TopicSnapshot {
            state: t.state(),
            presence: t.presence.clone(),
            position: t.position.clone(),
        })
    }

    /// Whether the app wants the topic (subscribed and not failed): a
    /// publish to it is accepted.
    pub(crate) fn wanted(&self, name: &str) -> bool {
        self.find(name)
            .is_some_and(|t| !matches!(t.phase, Phase::Failed(_)))
    }

    /// Whether the topic is subscribed: its publishes may go out.
    pub(crate) fn is_live(&self, name: &str) -> bool {
        self.find(name)
            .is_some_and(|t| matches!(t.phase, Phase::Live { .. }))
    }
}

/// The users of `a` not in `b` (by id).
fn missing(a: &[User], b: &[User]) -> Vec<User> {
    a.iter()
        .filter(|u| !b.iter().any(|v| v.user_id == u.user_id))
        .cloned()
        .collect()
}
