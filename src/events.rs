//! Typed events and subscriptions that end when dropped.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
pub use tether_core::Event;

/// The kind of an [`Event`], for subscribing to one kind only with
/// [`ConnectionManager::on`](crate::ConnectionManager::on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// [`Event::StateChanged`]
    StateChanged,
    /// [`Event::Connected`]
    Connected,
    /// [`Event::AuthSuccess`]
    AuthSuccess,
    /// [`Event::AuthError`]
    AuthError,
    /// [`Event::Disconnected`]
    Disconnected,
    /// [`Event::ReconnectScheduled`]
    ReconnectScheduled,
    /// [`Event::ReconnectFailed`]
    ReconnectFailed,
    /// [`Event::SignedOut`]
    SignedOut,
    /// [`Event::Notification`]
    Notification,
    /// [`Event::Ack`]
    Ack,
    /// [`Event::SendFailed`]
    SendFailed,
    /// [`Event::Pong`]
    Pong,
    /// [`Event::Message`]: the app's own message.
    Message,
    /// [`Event::Error`]
    Error,
    /// [`Event::Topic`]: anything about a topic (state, messages, presence,
    /// publish outcomes). [`Topic`](crate::Topic) handles are the typed view.
    Topic,
    /// An event added to the core after this version.
    Other,
}

impl EventKind {
    /// The kind of `event`.
    pub fn of(event: &Event) -> Self {
        match event {
            Event::StateChanged { .. } => Self::StateChanged,
            Event::Connected { .. } => Self::Connected,
            Event::AuthSuccess { .. } => Self::AuthSuccess,
            Event::AuthError { .. } => Self::AuthError,
            Event::Disconnected { .. } => Self::Disconnected,
            Event::ReconnectScheduled { .. } => Self::ReconnectScheduled,
            Event::ReconnectFailed { .. } => Self::ReconnectFailed,
            Event::SignedOut => Self::SignedOut,
            Event::Notification(_) => Self::Notification,
            Event::Ack { .. } => Self::Ack,
            Event::SendFailed { .. } => Self::SendFailed,
            Event::Pong { .. } => Self::Pong,
            Event::Message { .. } => Self::Message,
            Event::Error(_) => Self::Error,
            Event::Topic(_) => Self::Topic,
            #[allow(unreachable_patterns)]
            _ => Self::Other,
        }
    }
}

pub(crate) type Callback = Rc<dyn Fn(&Event)>;
type List = RefCell<Vec<(u64, Option<EventKind>, Callback)>>;

/// The driver's list of event callbacks.
#[derive(Default)]
pub(crate) struct Subscribers {
    next: Cell<u64>,
    list: Rc<List>,
}

impl Subscribers {
    pub(crate) fn add(&self, kind: Option<EventKind>, callback: Callback) -> Subscription {
        let id = self.next.get();
        self.next.set(id + 1);
        self.list.borrow_mut().push((id, kind, callback));
        Subscription {
            id,
            list: Rc::downgrade(&self.list),
        }
    }

    /// The callbacks for `kind`, cloned so that they run with no borrow held
    /// (a callback may subscribe, unsubscribe or send).
    pub(crate) fn matching(&self, kind: EventKind) -> Vec<Callback> {
        self.list
            .borrow()
            .iter()
            .filter(|(_, k, _)| k.is_none_or(|k| k == kind))
            .map(|(_, _, cb)| cb.clone())
            .collect()
    }

    pub(crate) fn clear(&self) {
        self.list.borrow_mut().clear();
    }
}

/// A subscription to connection events. Dropping it unsubscribes; keep it
/// for as long as you want the callback to run, or use
/// [`use_connection_event`](crate::use_connection_event) in a component to
/// tie it to the component's lifetime.
#[must_use = "dropping a Subscription unsubscribes at once"]
pub struct Subscription {
    id: u64,
    list: Weak<List>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(list) = self.list.upgrade() {
            list.borrow_mut().retain(|(id, _, _)| *id != self.id);
        }
    }
}

/// A stream of every connection event, from [`ConnectionManager::events`](crate::ConnectionManager::events).
/// Unsubscribes when dropped. Events are buffered without bound while
/// nobody polls, so poll it (or drop it).
pub struct EventStream {
    pub(crate) receiver: futures::channel::mpsc::UnboundedReceiver<Event>,
    pub(crate) _subscription: Option<Subscription>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream").finish_non_exhaustive()
    }
}

impl futures::Stream for EventStream {
    type Item = Event;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Event>> {
        std::pin::Pin::new(&mut self.receiver).poll_next(cx)
    }
}
