//! The browser driver: runs the sans-IO [`tether_core::Connection`] on real
//! browser events and executes its effects. It owns the one socket, the one
//! timer and the window listeners; dropping it (or [`Driver::destroy`])
//! removes them all.
//!
//! Re-entrancy: inputs wait in a FIFO queue and effects in the machine's own,
//! both drained by one loop, so a subscriber that calls `send()` from inside
//! an event callback is queued behind the effects already produced, never
//! run out of order and never against a borrowed machine.

mod refresh;
mod socket;
mod storage;
mod url;

pub use url::{UrlError, resolve_socket_url};

use crate::events::{EventKind, Subscribers};
use crate::token::{TokenRefresh, TokenStorage};
use futures::future::LocalBoxFuture;
use gloo_events::EventListener;
use gloo_timers::callback::Timeout;
use leptos::prelude::{ArcRwSignal, Set, WithUntracked};
use socket::{Socket, SocketEvent};
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use tether_core::{
    Connection, Detail, Effect, Event, Input, MessageId, Millis, SendError, Snapshot, StopReason,
};
use tether_protocol::Secret;
use wasm_bindgen::JsValue;

/// Wall-clock milliseconds: the core judges deadlines by this, so a laptop
/// that slept for an hour sees its keepalive deadline as long passed.
pub(crate) fn now() -> Millis {
    js_sys::Date::now() as Millis
}

/// What the driver needs beyond the core's configuration.
pub(crate) struct Settings {
    pub storage: TokenStorage,
    pub refresh: TokenRefresh,
    pub navigate: Option<crate::options::Navigate>,
    pub protocols: Vec<String>,
}

#[derive(Default)]
struct Io {
    socket: Option<Socket>,
    /// Incremented for every socket; events of older sockets are dropped.
    socket_generation: u64,
    /// The one wake-up timer and the deadline it was armed for. A timer
    /// that has fired stays here (it is not dropped inside its own
    /// callback) with its deadline cleared.
    timer: Option<(Option<Millis>, Timeout)>,
    listeners: Vec<EventListener>,
}

/// Where the driver's loop is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    /// Waiting for the next browser event.
    Idle,
    /// Inside [`Driver::pump`]: a re-entrant call only queues its input.
    Pumping,
    /// [`Driver::destroy`] ran: every call is ignored.
    Destroyed,
}

pub(crate) struct Driver {
    this: Weak<Driver>,
    machine: RefCell<Connection>,
    settings: Settings,
    io: RefCell<Io>,
    inputs: RefCell<Vec<Input>>,
    run: Cell<Run>,
    /// The token the core was last given, to notice a newer one in storage.
    token: RefCell<Option<Secret>>,
    pub(crate) subscribers: Subscribers,
    /// The topics the app's handles are on, shared by every handle.
    topics: crate::topic::Registry,
    /// The core's public state as last published. Every provider of this
    /// driver wraps this one signal (an `RwSignal` in its own owner), so a
    /// change is compared and stored once, never cloned per provider.
    state: ArcRwSignal<Snapshot>,
}

impl Driver {
    pub(crate) fn new(
        config: tether_core::Config,
        adapter: Box<dyn tether_core::Adapter>,
        settings: Settings,
    ) -> Rc<Self> {
        let machine = Connection::with_adapter(config, adapter);
        let snapshot = machine.snapshot();
        Rc::new_cyclic(|this| Driver {
            this: this.clone(),
            machine: RefCell::new(machine),
            settings,
            io: RefCell::default(),
            inputs: RefCell::default(),
            run: Cell::new(Run::Idle),
            token: RefCell::new(None),
            subscribers: Subscribers::default(),
            topics: crate::topic::Registry::default(),
            state: ArcRwSignal::new(snapshot),
        })
    }

    /// Installs the window and document listeners. (They change nothing the
    /// page renders until the stored token is loaded.)
    pub(crate) fn listen(&self) {
        let Some(window) = web_sys::window() else {
            return;
        };
        // One closure type for all of them (each type is its own code).
        let listen = |target: &web_sys::EventTarget,
                      name: &'static str,
                      on: fn(&Driver, &web_sys::Event)| {
            let this = self.this.clone();
            EventListener::new(target, name, move |e| {
                if let Some(driver) = this.upgrade() {
                    on(&driver, e);
                }
            })
        };
        let mut listeners = vec![
            listen(&window, "online", |d, _| d.dispatch(Input::Online)),
            listen(&window, "offline", |d, _| d.dispatch(Input::Offline)),
            listen(&window, "pageshow", |d, _| d.dispatch(Input::Visible)),
            listen(&window, "pagehide", |d, _| d.dispatch(Input::Hidden)),
            // Another tab signed in or out: follow it at once.
            listen(&window, "storage", |d, e| {
                if let Some(e) = wasm_bindgen::JsCast::dyn_ref::<web_sys::StorageEvent>(e) {
                    d.on_storage(e);
                }
            }),
        ];
        if let Some(document) = window.document() {
            listeners.push(listen(&document, "visibilitychange", |d, _| {
                let hidden = web_sys::window()
                    .and_then(|w| w.document())
                    .is_some_and(|doc| doc.visibility_state() == web_sys::VisibilityState::Hidden);
                d.dispatch(if hidden {
                    Input::Hidden
                } else {
                    Input::Visible
                });
            }));
        }
        self.io.borrow_mut().listeners = listeners;
    }

    /// Another tab changed the stored token: a new token is used at once
    /// (and reconnects a session that had ended); a removed one signs this
    /// tab out too.
    fn on_storage(&self, event: &web_sys::StorageEvent) {
        match storage::change(&self.settings.storage, event) {
            Some(storage::Change::Token(token)) => {
                if self.token.borrow().as_ref() == Some(&token) {
                    return;
                }
                self.set_stored_token(token);
                let ended = matches!(
                    self.machine.borrow().snapshot().detail,
                    Detail::Stopped(StopReason::SignedOut | StopReason::AuthFailed(_))
                );
                if ended {
                    self.dispatch(Input::Connect);
                }
            }
            Some(storage::Change::Removed) if self.machine.borrow().snapshot().signed_in => {
                self.dispatch(Input::SignOut);
            }
            Some(storage::Change::Removed) | None => {}
        }
    }

    /// The token the core holds (as last given or stored), else the stored one.
    pub(crate) fn token(&self) -> Option<Secret> {
        let held = self.token.borrow().clone();
        held.or_else(|| storage::load_token(&self.settings.storage))
    }

    /// Gives the core the stored token if it is not the one it already has.
    pub(crate) fn reload_token(&self) {
        if let Some(stored) = storage::load_token(&self.settings.storage)
            && self.token.borrow().as_ref() != Some(&stored)
        {
            self.set_stored_token(stored);
        }
    }

    /// A token from storage has no known lifetime unless it is a JWT, whose
    /// `exp` lets the core refresh it before connecting (after a reload or a
    /// long sleep) rather than being refused with `expired_token`.
    fn set_stored_token(&self, token: Secret) {
        let expires_in = tether_core::jwt::remaining(token.expose(), now());
        self.set_token(token, expires_in);
    }

    pub(crate) fn set_token(&self, token: Secret, expires_in: Option<std::time::Duration>) {
        *self.token.borrow_mut() = Some(token.clone());
        self.dispatch(Input::SetToken { token, expires_in });
    }

    pub(crate) fn connect(&self) {
        self.reload_token();
        self.dispatch(Input::Connect);
    }

    pub(crate) fn send(&self, body: tether_protocol::RawJson) -> Result<MessageId, SendError> {
        if self.is_destroyed() {
            return Err(SendError::Destroyed);
        }
        let result = self.machine.borrow_mut().send(now(), body);
        self.pump();
        result
    }

    /// Counts one more handle on the topic `name`, subscribing on the first
    /// one, and adds the handle's listener; returns the shared entry and the
    /// listener's id.
    pub(crate) fn join_topic(
        &self,
        name: &str,
        options: crate::topic::TopicOptions,
        listener: crate::topic::EventListener,
    ) -> (Rc<crate::topic::Entry>, u64) {
        let state = self.topic_state(name);
        let (entry, first) = self.topics.acquire(name, options, state);
        let id = entry.listen(listener);
        if first {
            self.subscribe_topic(&entry);
        }
        (entry, id)
    }

    fn subscribe_topic(&self, entry: &crate::topic::Entry) {
        if self.is_destroyed() {
            return;
        }
        let name = entry.name();
        let options = tether_core::SubscribeOptions {
            last: entry.options().last,
        };
        let result = self.machine.borrow_mut().subscribe(now(), name, options);
        match result {
            Ok(()) => entry.set_state(self.topic_state(name)),
            Err(error) => entry.set_state(crate::topic::refused(&error)),
        }
        self.pump();
    }

    /// Counts one handle less on `entry`'s topic, leaving it after the last.
    pub(crate) fn leave_topic(&self, entry: &crate::topic::Entry) {
        if self.topics.release(entry) && !self.is_destroyed() {
            self.machine.borrow_mut().unsubscribe(now(), entry.name());
            self.pump();
        }
    }

    fn topic_state(&self, name: &str) -> tether_core::TopicState {
        self.machine
            .borrow()
            .topic(name)
            .map_or(tether_core::TopicState::Unsubscribed, |t| t.state)
    }

    pub(crate) fn publish_topic(
        &self,
        topic: &str,
        event: &str,
        data: tether_protocol::RawJson,
    ) -> Result<MessageId, SendError> {
        if self.is_destroyed() {
            return Err(SendError::Destroyed);
        }
        let result = self.machine.borrow_mut().publish(now(), topic, event, data);
        self.pump();
        result
    }

    /// The published state, for a provider to wrap in its own `RwSignal`.
    pub(crate) fn state(&self) -> ArcRwSignal<Snapshot> {
        self.state.clone()
    }

    pub(crate) fn is_destroyed(&self) -> bool {
        self.run.get() == Run::Destroyed
    }

    /// Tells the core (which closes the socket and reports every pending
    /// message as failed), then cancels the timer and removes every listener
    /// and subscriber. Nothing fires afterwards; inputs are ignored.
    pub(crate) fn destroy(&self) {
        if self.is_destroyed() {
            return;
        }
        self.dispatch(Input::Destroy);
        self.run.set(Run::Destroyed);
        let io = std::mem::take(&mut *self.io.borrow_mut());
        drop(io); // Socket::drop removes its handlers and closes it.
        self.inputs.borrow_mut().clear();
        self.subscribers.clear();
    }

    /// Feeds one input to the core and executes what it asks for.
    pub(crate) fn dispatch(&self, input: Input) {
        if self.is_destroyed() {
            return;
        }
        self.inputs.borrow_mut().push(input);
        self.pump();
    }

    fn pump(&self) {
        match self.run.get() {
            Run::Idle => self.run.set(Run::Pumping),
            // The outer loop will get to it, in order.
            Run::Pumping | Run::Destroyed => return,
        }
        // The machine is borrowed only for each step, so that an effect's
        // callback can call back into the driver.
        while !self.is_destroyed() {
            let effect = self.machine.borrow_mut().poll_effect();
            if let Some(effect) = effect {
                self.execute(effect);
                continue;
            }
            let input = {
                let mut inputs = self.inputs.borrow_mut();
                (!inputs.is_empty()).then(|| inputs.remove(0))
            };
            let Some(input) = input else { break };
            self.machine.borrow_mut().handle(now(), input);
        }
        if self.run.get() == Run::Pumping {
            self.run.set(Run::Idle);
        }
        // The one timer follows the machine's deadline, re-read after every
        // call (like quinn's `poll_timeout`). That also covers a browser
        // timer that fires a millisecond before the deadline as `Date.now()`
        // sees it (Firefox jitters it): the deadline is unchanged, so the
        // timer is armed again.
        if !self.is_destroyed() {
            let deadline = self.machine.borrow().deadline();
            let armed = self.io.borrow().timer.as_ref().and_then(|(at, _)| *at);
            if deadline != armed {
                self.arm_timer(deadline);
            }
        }
        self.publish();
    }

    /// Arms the one wake-up timer for `at` (replacing and so cancelling the
    /// previous one), or clears it.
    fn arm_timer(&self, at: Option<Millis>) {
        let timer = at.map(|at| {
            let delay = at.saturating_sub(now()).min(i32::MAX as u64) as u32;
            let this = self.this.clone();
            let timeout = Timeout::new(delay, move || {
                if let Some(driver) = this.upgrade() {
                    if let Some((armed, _)) = driver.io.borrow_mut().timer.as_mut() {
                        *armed = None; // spent
                    }
                    driver.dispatch(Input::Tick);
                }
            });
            (Some(at), timeout)
        });
        self.io.borrow_mut().timer = timer;
    }

    /// Publishes the core's public state, if it changed.
    fn publish(&self) {
        if self.is_destroyed() {
            return;
        }
        let snapshot = self.machine.borrow().snapshot();
        if self
            .state
            .with_untracked(|published| *published != snapshot)
        {
            self.state.set(snapshot);
        }
    }

    fn execute(&self, effect: Effect) {
        if self.is_destroyed() {
            return;
        }
        match effect {
            Effect::OpenSocket { url } => {
                let generation = {
                    let mut io = self.io.borrow_mut();
                    io.socket = None; // drops the previous socket's handlers
                    io.socket_generation += 1;
                    io.socket_generation
                };
                let this = self.this.clone();
                let protocols = &self.settings.protocols;
                let socket = Socket::open(url.expose(), protocols, move |event| {
                    if let Some(driver) = this.upgrade() {
                        driver.on_socket(generation, event);
                    }
                });
                self.io.borrow_mut().socket = socket;
            }
            Effect::SendFrame(text) => {
                if let Some(socket) = &self.io.borrow().socket {
                    socket.send(&text);
                }
            }
            Effect::CloseSocket { code, reason } => {
                if let Some(socket) = &self.io.borrow().socket {
                    socket.close(code, &reason);
                }
            }
            Effect::RefreshToken => {
                let refresh: LocalBoxFuture<'static, _> = match &self.settings.refresh {
                    TokenRefresh::Url(url) => {
                        let url = url.clone();
                        Box::pin(async move { refresh::refresh(&url).await })
                    }
                    TokenRefresh::Custom(refresh) => refresh(),
                    TokenRefresh::Off => {
                        self.inputs.borrow_mut().push(Input::RefreshFailed {
                            failure: tether_core::RefreshFailure::Transient,
                            message: "token refresh is off".into(),
                        });
                        return;
                    }
                };
                let this = self.this.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let input = match refresh.await {
                        Ok(fresh) => Input::TokenRefreshed {
                            token: fresh.token,
                            expires_in: fresh.expires_in,
                        },
                        Err(error) => Input::RefreshFailed {
                            failure: error.failure,
                            message: error.message,
                        },
                    };
                    if let Some(driver) = this.upgrade() {
                        driver.dispatch(input);
                    }
                });
            }
            Effect::StoreToken(token) => {
                storage::store_token(&self.settings.storage, &token);
                *self.token.borrow_mut() = Some(token);
            }
            Effect::ClearToken => {
                storage::clear_token(&self.settings.storage);
                *self.token.borrow_mut() = None;
            }
            Effect::Navigate(route) => match &self.settings.navigate {
                Some(navigate) => navigate(&route),
                None => default_navigate(&route),
            },
            Effect::Emit(event) => self.emit(&event),
            // A newer core's effect this driver does not know: nothing to do.
            _ => {}
        }
    }

    /// Hands an event the library itself found (an app frame that does not
    /// decode) to the subscribers.
    pub(crate) fn report(&self, event: &Event) {
        if !self.is_destroyed() {
            self.emit(event);
        }
    }

    fn emit(&self, event: &Event) {
        if let Event::Topic(topic) = event {
            let dropped = self.topics.dispatch(topic, |name| {
                self.machine.borrow().topic(name).and_then(|t| t.position)
            });
            // The session ended under mounted handles: they still want the
            // topic, so it is subscribed again for the next session.
            if let Some(entry) = dropped {
                self.subscribe_topic(&entry);
            }
        }
        let kind = EventKind::of(event);
        for callback in self.subscribers.matching(kind) {
            callback(event);
        }
    }

    fn on_socket(&self, generation: u64, event: SocketEvent) {
        if self.io.borrow().socket_generation != generation {
            return; // a socket we already replaced
        }
        let input = match event {
            SocketEvent::Open => Input::Opened,
            SocketEvent::Text(text) => Input::Frame(text),
            SocketEvent::Binary { len } => Input::BinaryFrame { len },
            SocketEvent::Close { code, reason } => Input::Closed { code, reason },
        };
        self.dispatch(input);
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.destroy();
    }
}

/// Client-side navigation that any History-API router (leptos_router
/// included) follows: push the route, then tell the router with `popstate`.
/// Without a router this only changes the URL, so apps without one should
/// pass their own `navigate` option.
fn default_navigate(route: &str) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let pushed = window
        .history()
        .and_then(|h| h.push_state_with_url(&JsValue::NULL, "", Some(route)))
        .is_ok();
    if pushed {
        if let Ok(event) = web_sys::PopStateEvent::new("popstate") {
            let _ = window.dispatch_event(&event);
        }
    } else {
        let _ = window.location().assign(route);
    }
}
