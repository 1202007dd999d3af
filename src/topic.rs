//! Typed topics: [`use_topic`], [`ConnectionManager::topic`] and the
//! [`Topic`] handle they return.
//!
//! A topic (`room:42`) is a named stream of messages with gapless offsets
//! that the core keeps exactly once and in order across reconnects
//! (contract, "Topics"). This module gives an app a typed view of one:
//! signals for its state, presence and position, a callback for every
//! message decoded into the app's own type, and `publish`.
//!
//! Every handle on one topic of one connection shares one wire
//! subscription: the page's [`Registry`] counts the handles and leaves the
//! topic when the last one is dropped.

use crate::browser::Driver;
use crate::manager::ConnectionManager;
use leptos::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::rc::{Rc, Weak};
use tether_core::{MessageId, Position, SendError, TopicEvent, TopicState, User};
use tether_protocol::RawJson;

/// Options of [`use_topic_with_options`] and
/// [`ConnectionManager::topic_with_options`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TopicOptions {
    /// How many of the topic's latest messages to replay when it is first
    /// joined (at most [`MAX_LAST`](tether_protocol::MAX_LAST)); later
    /// resubscribes continue from the last applied position instead. When
    /// several handles share the topic, the first one's value counts.
    /// Defaults to `0`.
    pub last: u32,
}

impl TopicOptions {
    /// Sets [`last`](Self::last).
    #[must_use]
    pub fn last(mut self, last: u32) -> Self {
        self.last = last;
        self
    }
}

/// One message of a topic, its `event` + `data` decoded into the app's
/// type `E`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TopicMessage<E> {
    /// The decoded `event` and `data`.
    pub event: E,
    /// Its offset in the topic (1, 2, 3, ... per epoch).
    pub offset: u64,
    /// Whether it was sent before this subscription started (history
    /// asked for with [`TopicOptions::last`], or caught up after a
    /// reconnect), rather than live.
    pub replayed: bool,
    /// Who published it; `None` for the server itself.
    pub from: Option<User>,
    /// The server's id of the message.
    pub id: String,
    /// When the server took it (RFC 3339).
    pub created_at: String,
}

/// Something went wrong on a topic; the topic and the connection stay.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// A message did not decode into the handle's type. It is skipped for
    /// this handle (the topic's position moves on; it is not redelivered).
    #[error("message {offset} (`{event}`) does not decode into the app's type: {reason}")]
    Undecodable {
        /// Its offset.
        offset: u64,
        /// Its `event` name.
        event: String,
        /// Its `data`, exactly as received.
        data: RawJson,
        /// What serde reported.
        reason: String,
    },
    /// The server could not continue from this client's position (it
    /// restarted, the topic was reset, or the history was trimmed past
    /// it): messages before the ones that follow may be missing.
    #[error("earlier messages of the topic may be missing (epoch {epoch})")]
    NotRecovered {
        /// The topic's epoch from now on.
        epoch: String,
    },
    /// A publish failed for good (a `nack`, the frame limit, sign-out...).
    #[error("publish {id} failed: {error}")]
    PublishFailed {
        /// The id [`Topic::publish`] returned.
        id: MessageId,
        /// Why.
        error: SendError,
    },
}

/// A handle's listener on its entry.
pub(crate) type EventListener = Rc<dyn Fn(&TopicEvent)>;

/// One topic of one connection, shared by every handle on it.
pub(crate) struct Entry {
    name: String,
    /// The first handle's options: used again when the session restarts.
    options: TopicOptions,
    /// Handles holding it: the topic is left when this drops to 0.
    users: Cell<usize>,
    state: ArcRwSignal<TopicState>,
    presence: ArcRwSignal<Vec<User>>,
    position: ArcRwSignal<Option<Position>>,
    listeners: RefCell<Vec<(u64, EventListener)>>,
    next_listener: Cell<u64>,
}

impl Entry {
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn options(&self) -> TopicOptions {
        self.options
    }

    pub(crate) fn set_state(&self, state: TopicState) {
        self.state.set(state);
    }

    /// Adds a handle's listener; returns its id.
    pub(crate) fn listen(&self, listener: EventListener) -> u64 {
        let id = self.next_listener.get();
        self.next_listener.set(id + 1);
        self.listeners.borrow_mut().push((id, listener));
        id
    }

    fn signals(&self) -> Signals {
        Signals {
            state: self.state.clone(),
            presence: self.presence.clone(),
            position: self.position.clone(),
        }
    }
}

/// The topics of one connection (one driver), by name.
#[derive(Default)]
pub(crate) struct Registry {
    entries: RefCell<HashMap<String, Rc<Entry>>>,
}

impl Registry {
    /// The entry of `name`, counted once more; `true` when it is new (the
    /// caller subscribes).
    pub(crate) fn acquire(
        &self,
        name: &str,
        options: TopicOptions,
        state: TopicState,
    ) -> (Rc<Entry>, bool) {
        let mut entries = self.entries.borrow_mut();
        if let Some(entry) = entries.get(name) {
            entry.users.set(entry.users.get() + 1);
            return (entry.clone(), false);
        }
        let entry = Rc::new(Entry {
            name: name.to_owned(),
            options,
            users: Cell::new(1),
            state: ArcRwSignal::new(state),
            presence: ArcRwSignal::new(Vec::new()),
            position: ArcRwSignal::new(None),
            listeners: RefCell::default(),
            next_listener: Cell::new(0),
        });
        entries.insert(name.to_owned(), entry.clone());
        (entry, true)
    }

    /// Counts one handle less; `true` when it was the last (the caller
    /// unsubscribes).
    pub(crate) fn release(&self, entry: &Entry) -> bool {
        let users = entry.users.get().saturating_sub(1);
        entry.users.set(users);
        if users == 0 {
            self.entries.borrow_mut().remove(&entry.name);
        }
        users == 0
    }

    /// Updates the topic's signals and runs its handles' listeners.
    /// `position` reads the core's position of the topic (for the epoch).
    /// Returns the entry when the core dropped a topic that handles still
    /// hold (the session ended: sign-out, a final authentication failure),
    /// for the driver to subscribe again, held until the next session.
    pub(crate) fn dispatch(
        &self,
        event: &TopicEvent,
        position: impl Fn(&str) -> Option<Position>,
    ) -> Option<Rc<Entry>> {
        let topic = topic_of(event)?;
        let entry = self.entries.borrow().get(topic).cloned()?;
        match event {
            TopicEvent::State { state, .. } => {
                entry.state.set(state.clone());
                entry.position.set(position(topic));
            }
            TopicEvent::Presence { present, .. } => entry.presence.set(present.clone()),
            TopicEvent::Message { message, .. } => {
                let moved = entry.position.try_update(|p| match p {
                    Some(p) => {
                        p.offset = message.offset;
                        true
                    }
                    None => false,
                });
                if moved != Some(true) {
                    entry.position.set(position(topic));
                }
            }
            TopicEvent::NotRecovered { .. } => entry.position.set(position(topic)),
            _ => {}
        }
        // No borrow is held while a listener runs: it may drop handles (and
        // so listeners). One listed while this runs is not called for it.
        let count = entry.listeners.borrow().len();
        for index in 0..count {
            let listener = entry.listeners.borrow().get(index).map(|(_, l)| l.clone());
            match listener {
                Some(listener) => listener(event),
                None => break,
            }
        }
        let dropped = matches!(
            event,
            TopicEvent::State {
                state: TopicState::Unsubscribed,
                ..
            }
        );
        (dropped && entry.users.get() > 0).then_some(entry)
    }
}

/// The state of a topic the core refused to subscribe to at once (a bad
/// name, too many topics...): failed, as if the server had refused it, so
/// that the app sees why in the one place it looks.
pub(crate) fn refused(error: &tether_core::TopicError) -> TopicState {
    use tether_core::{SubscribeErrorCode as Code, TopicError};
    let code = match error {
        TopicError::InvalidTopic { .. } => Code::InvalidTopic,
        TopicError::InvalidLast { .. } => Code::BadRequest,
        TopicError::TooManyTopics { .. } => Code::TooManyTopics,
        other => Code::Other(match other {
            TopicError::Unsupported => "unsupported".into(),
            TopicError::Destroyed => "destroyed".into(),
            _ => "refused".into(),
        }),
    };
    TopicState::Failed(tether_core::TopicFailure::Refused {
        code,
        message: error.to_string(),
    })
}

/// The topic an event is about.
fn topic_of(event: &TopicEvent) -> Option<&str> {
    Some(match event {
        TopicEvent::State { topic, .. }
        | TopicEvent::NotRecovered { topic, .. }
        | TopicEvent::Presence { topic, .. }
        | TopicEvent::Published { topic, .. }
        | TopicEvent::PublishFailed { topic, .. } => topic,
        TopicEvent::Message { message, .. } => &message.topic,
        #[allow(unreachable_patterns)]
        _ => return None,
    })
}

/// A handle's hold on an entry: dropping it removes the handle's listener
/// and, for the last handle, leaves the topic.
struct Lease {
    driver: Weak<Driver>,
    entry: Rc<Entry>,
    listener: u64,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.entry
            .listeners
            .borrow_mut()
            .retain(|(id, _)| *id != self.listener);
        if let Some(driver) = self.driver.upgrade() {
            driver.leave_topic(&self.entry);
        }
    }
}

/// The shared signals of the entry a handle is on.
#[derive(Clone)]
struct Signals {
    state: ArcRwSignal<TopicState>,
    presence: ArcRwSignal<Vec<User>>,
    position: ArcRwSignal<Option<Position>>,
}

type MessageCallback<E> = Rc<dyn Fn(&TopicMessage<E>)>;
type ErrorCallback = Rc<dyn Fn(&TopicError)>;
type PublishedCallback = Rc<dyn Fn(&MessageId, u64)>;

/// The callbacks of one handle.
struct Callbacks<E> {
    messages: RefCell<Vec<MessageCallback<E>>>,
    errors: RefCell<Vec<ErrorCallback>>,
    published: RefCell<Vec<PublishedCallback>>,
}

impl<E> Default for Callbacks<E> {
    fn default() -> Self {
        Self {
            messages: RefCell::default(),
            errors: RefCell::default(),
            published: RefCell::default(),
        }
    }
}

impl<E: DeserializeOwned + 'static> Callbacks<E> {
    fn on_event(&self, event: &TopicEvent) {
        match event {
            TopicEvent::Message { message, replayed } => {
                if self.messages.borrow().is_empty() {
                    return;
                }
                match crate::decode::event::<E>(&message.event, message.data.as_str()) {
                    Ok(decoded) => {
                        let message = TopicMessage {
                            event: decoded,
                            offset: message.offset,
                            replayed: *replayed,
                            from: message.from.clone(),
                            id: message.id.clone(),
                            created_at: message.created_at.clone(),
                        };
                        each(&self.messages, |callback| callback(&message));
                    }
                    Err(error) => self.error(&TopicError::Undecodable {
                        offset: message.offset,
                        event: message.event.clone(),
                        data: message.data.clone(),
                        reason: error.to_string(),
                    }),
                }
            }
            TopicEvent::NotRecovered { epoch, .. } => self.error(&TopicError::NotRecovered {
                epoch: epoch.clone(),
            }),
            TopicEvent::Published { id, offset, .. } => {
                each(&self.published, |callback| callback(id, *offset));
            }
            TopicEvent::PublishFailed { id, error, .. } => self.error(&TopicError::PublishFailed {
                id: id.clone(),
                error: error.clone(),
            }),
            _ => {}
        }
    }

    fn error(&self, error: &TopicError) {
        if self.errors.borrow().is_empty() {
            web_sys::console::warn_1(&format!("tether: {error}").into());
        }
        each(&self.errors, |callback| callback(error));
    }
}

/// Runs `call` on each callback of `list` with no borrow held while it
/// runs (a callback may add callbacks; those run from the next event on).
fn each<C: Clone>(list: &RefCell<Vec<C>>, call: impl Fn(C)) {
    let count = list.borrow().len();
    for index in 0..count {
        let callback = list.borrow().get(index).cloned();
        if let Some(callback) = callback {
            call(callback);
        }
    }
}

/// What a [`Topic`] keeps.
struct Handle<E> {
    manager: ConnectionManager,
    options: TopicOptions,
    /// The topic it is on (none on the server, or when the name is empty).
    lease: Option<Lease>,
    /// The name it is on, also when it could not join (on the server).
    name: String,
    callbacks: Rc<Callbacks<E>>,
}

/// A `Copy` handle on one topic of the connection, with read-only signals
/// and callbacks typed by the app's message type `E` (see [`use_topic`]).
/// Get it with [`use_topic`] in a component or
/// [`ConnectionManager::topic`]. Every handle on one topic shares one
/// subscription; the topic is left when the last handle goes (its owner,
/// the component, is cleaned up).
pub struct Topic<E: 'static> {
    inner: StoredValue<Handle<E>, LocalStorage>,
    current: RwSignal<Option<Signals>>,
    state: Signal<TopicState>,
    presence: Signal<Vec<User>>,
    position: Signal<Option<Position>>,
    _type: PhantomData<fn() -> E>,
}

impl<E> Clone for Topic<E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for Topic<E> {}

impl<E> std::fmt::Debug for Topic<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topic")
            .field("name", &self.inner.try_with_value(|h| h.name.clone()))
            .finish_non_exhaustive()
    }
}

/// A typed handle on the topic `name` of the page's connection, for as
/// long as the calling component lives. `name` may be a signal: when it
/// changes, the handle leaves the old topic and joins the new one (an
/// empty name joins nothing). `E` is the app's type for a message's
/// `event` + `data`, typically an enum:
///
/// ```no_run
/// use leptos::prelude::*;
/// use serde::Deserialize;
/// use tether::prelude::*;
///
/// #[derive(Debug, Clone, Deserialize)]
/// #[serde(tag = "event", content = "data", rename_all = "snake_case")]
/// enum Chat {
///     Said { text: String },
///     Typing,
/// }
///
/// #[component]
/// fn Room(id: String) -> impl IntoView {
///     let room = use_topic::<Chat>(format!("room:{id}"));
///     let lines = RwSignal::new(Vec::new());
///     room.on_message(move |m| {
///         if let Chat::Said { text } = &m.event {
///             lines.update(|l| l.push(text.clone()));
///         }
///     });
///     let say = move |_| {
///         let _ = room.publish("said", &serde_json::json!({"text": "hi"}));
///     };
///     view! {
///         <p>{move || format!("{:?}, {} here", room.state().get(), room.presence().get().len())}</p>
///         <ul>{move || lines.get().into_iter().map(|l| view! { <li>{l}</li> }).collect_view()}</ul>
///         <button on:click=say>"Say hi"</button>
///     }
/// }
/// ```
///
/// Without a browser (server-side rendering) the handle is inert: the
/// state stays [`TopicState::Unsubscribed`] and `publish` returns
/// [`SendError::NotInBrowser`].
///
/// # Panics
/// When no ancestor provides a connection manager (as
/// [`use_connection_manager`](crate::use_connection_manager)).
#[track_caller]
pub fn use_topic<E: DeserializeOwned + 'static>(name: impl Into<Signal<String>>) -> Topic<E> {
    use_topic_with_options(name, TopicOptions::default())
}

/// [`use_topic`] with [`TopicOptions`] (e.g. the latest messages to start with).
///
/// # Panics
/// As [`use_topic`].
#[track_caller]
pub fn use_topic_with_options<E: DeserializeOwned + 'static>(
    name: impl Into<Signal<String>>,
    options: TopicOptions,
) -> Topic<E> {
    crate::use_connection_manager().topic_with_options(name, options)
}

impl ConnectionManager {
    /// A typed handle on the topic `name`, owned by the current reactive
    /// owner (the topic is left when it is cleaned up and no other handle
    /// is on it). See [`use_topic`].
    pub fn topic<E: DeserializeOwned + 'static>(
        &self,
        name: impl Into<Signal<String>>,
    ) -> Topic<E> {
        self.topic_with_options(name, TopicOptions::default())
    }

    /// [`topic`](Self::topic) with [`TopicOptions`].
    pub fn topic_with_options<E: DeserializeOwned + 'static>(
        &self,
        name: impl Into<Signal<String>>,
        options: TopicOptions,
    ) -> Topic<E> {
        let name = name.into();
        let current = RwSignal::new(None::<Signals>);
        let topic = Topic {
            inner: StoredValue::new_local(Handle {
                manager: *self,
                options,
                lease: None,
                name: String::new(),
                callbacks: Rc::default(),
            }),
            current,
            state: Signal::derive(move || {
                current
                    .with(|c| c.as_ref().map(|s| s.state.get()))
                    .unwrap_or(TopicState::Unsubscribed)
            }),
            presence: Signal::derive(move || {
                current
                    .with(|c| c.as_ref().map(|s| s.presence.get()))
                    .unwrap_or_default()
            }),
            position: Signal::derive(move || {
                current.with(|c| c.as_ref().and_then(|s| s.position.get()))
            }),
            _type: PhantomData,
        };
        // Joined at once, so that a publish right after this call is held
        // for the topic; later names are followed by an effect.
        topic.switch(name.get_untracked());
        // (Without a browser nothing is joined, so there is nothing to follow.)
        if self.in_browser() {
            Effect::new(move |_| topic.switch(name.get()));
        }
        topic
    }
}

impl<E: DeserializeOwned + 'static> Topic<E> {
    /// Leaves the current topic (if any) and joins `name`.
    fn switch(&self, name: String) {
        let same = self.inner.try_with_value(|h| h.name == name);
        if same != Some(false) {
            return;
        }
        // Leave first: the new lease is taken with nothing held, so a
        // switch back and forth never counts the old topic twice.
        let old = self.inner.try_update_value(|h| {
            h.name = name.clone();
            h.lease.take()
        });
        drop(old);
        let Some((manager, options, callbacks)) = self
            .inner
            .try_with_value(|h| (h.manager, h.options, Rc::downgrade(&h.callbacks)))
        else {
            return;
        };
        let lease = if name.is_empty() {
            None
        } else {
            manager.with_driver(|driver| {
                let listener: EventListener = Rc::new(move |event: &TopicEvent| {
                    if let Some(callbacks) = callbacks.upgrade() {
                        callbacks.on_event(event);
                    }
                });
                let (entry, listener) = driver.join_topic(&name, options, listener);
                Lease {
                    driver: Rc::downgrade(driver),
                    entry,
                    listener,
                }
            })
        };
        let signals = lease.as_ref().map(|l| l.entry.signals());
        self.inner.try_update_value(|h| h.lease = lease);
        self.current.try_set(signals);
    }

    /// The topic's name (empty before a signal name has one).
    pub fn name(&self) -> String {
        self.inner
            .try_with_value(|h| h.name.clone())
            .unwrap_or_default()
    }

    /// The topic's state: unsubscribed, subscribing, subscribed, or failed
    /// with the server's code (not a member: `forbidden`; removed from the
    /// room: `removed`; ...).
    pub fn state(&self) -> Signal<TopicState> {
        self.state
    }

    /// Who is on the topic now (the user included once subscribed).
    pub fn presence(&self) -> Signal<Vec<User>> {
        self.presence
    }

    /// The last applied position (epoch and offset); `None` before the
    /// first `subscribed`.
    pub fn position(&self) -> Signal<Option<Position>> {
        self.position
    }

    /// Calls `callback` with every message of the topic, in offset order
    /// and exactly once, decoded into `E`, for as long as the handle lives
    /// (across name changes). A message that does not decode goes to
    /// [`on_error`](Self::on_error) instead.
    pub fn on_message(&self, callback: impl Fn(&TopicMessage<E>) + 'static) {
        self.inner
            .try_with_value(|h| h.callbacks.messages.borrow_mut().push(Rc::new(callback)));
    }

    /// Calls `callback` for each [`TopicError`]: a message that does not
    /// decode into `E`, a position the server could not continue from, a
    /// publish that failed. Without any, errors are logged to the console.
    pub fn on_error(&self, callback: impl Fn(&TopicError) + 'static) {
        self.inner
            .try_with_value(|h| h.callbacks.errors.borrow_mut().push(Rc::new(callback)));
    }

    /// Calls `callback` with the id and the topic offset of each publish
    /// the server acknowledged (the publisher receives its message through
    /// [`on_message`](Self::on_message) too; the offset says which one).
    pub fn on_published(&self, callback: impl Fn(&MessageId, u64) + 'static) {
        self.inner
            .try_with_value(|h| h.callbacks.published.borrow_mut().push(Rc::new(callback)));
    }

    /// Publishes `event` with `data` (serialized as JSON) to the topic,
    /// with a delivery guarantee: held until the topic is subscribed, resent
    /// after reconnects until the server acks it. Each accepted publish
    /// ends in exactly one [`on_published`](Self::on_published) or
    /// [`TopicError::PublishFailed`].
    ///
    /// # Errors
    /// [`SendError`] when it was not accepted (not serializable, queue
    /// full, too large, not on a topic, on the server): nothing was queued.
    pub fn publish<D: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &D,
    ) -> Result<MessageId, SendError> {
        let text = serde_json::to_string(data).map_err(|e| SendError::NotJson {
            reason: e.to_string(),
        })?;
        let data = RawJson::new(text).map_err(|e| SendError::NotJson {
            reason: e.to_string(),
        })?;
        self.publish_raw(event, data)
    }

    /// [`publish`](Self::publish) for data that is already JSON text.
    ///
    /// # Errors
    /// As [`publish`](Self::publish).
    pub fn publish_raw(&self, event: &str, data: RawJson) -> Result<MessageId, SendError> {
        let Some((manager, name)) = self.inner.try_with_value(|h| (h.manager, h.name.clone()))
        else {
            return Err(SendError::Destroyed);
        };
        if !manager.in_browser() {
            return Err(SendError::NotInBrowser);
        }
        manager
            .with_driver(|driver| driver.publish_topic(&name, event, data))
            .unwrap_or(Err(SendError::Destroyed))
    }
}
