//! The reactive store: [`provide_connection_manager`], [`use_connection_manager`]
//! and the [`ConnectionManager`] handle they return.

use crate::browser::{Driver, Settings};
use crate::events::{Event, EventKind, EventStream, Subscription};
use crate::options::ConnectionOptions;
use crate::token::TokenStorage;
use leptos::prelude::*;
use leptos::reactive::owner::WeakOwner;
use std::cell::{OnceCell, RefCell};
use std::rc::{Rc, Weak};
use std::time::Duration;
use tether_core::{
    CloseInfo, ConnectionError, ConnectionState, Detail, MessageId, SendError, Snapshot,
};
use tether_protocol::{RawJson, Secret};

/// What makes two providers the same connection: the resolved socket URL
/// and where the token lives.
type SharedKey = (String, TokenStorage);

thread_local! {
    /// The drivers of this page, one per (socket URL, token storage). A
    /// second provider with the same configuration (nested, another mount, a
    /// second app root) shares the driver instead of opening a second socket.
    static SHARED: RefCell<Vec<(SharedKey, Weak<Driver>)>> = const { RefCell::new(Vec::new()) };
}

/// A `Copy` handle on the page's one connection, with read-only signals for
/// its state and methods to control it. Get it with
/// [`use_connection_manager`] under a [`provide_connection_manager`] (or
/// [`ConnectionProvider`](crate::ConnectionProvider)).
#[derive(Clone, Copy)]
pub struct ConnectionManager {
    snapshot: RwSignal<Snapshot>,
    inner: StoredValue<Inner, LocalStorage>,
}

/// What a provider keeps besides the snapshot signal.
struct Inner {
    /// `None` on the server (no browser), and once the provider is cleaned up.
    driver: Option<Rc<Driver>>,
    /// Whether this handle runs where there is no browser.
    place: Place,
    /// The provider's owner: the per-field memos are created under it, so
    /// they live as long as the provider whoever asks for them first.
    owner: Option<WeakOwner>,
    fields: Fields,
}

/// Where a manager runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// In a browser page: a real connection.
    Browser,
    /// On the server (server-side rendering) or anywhere without a browser
    /// window: the state stays INITIAL and nothing connects.
    Server,
}

impl std::fmt::Debug for ConnectionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionManager")
            .field("snapshot", &self.snapshot.try_get_untracked())
            .finish()
    }
}

/// Whether this code runs in a browser window (not on a server, not in a
/// worker).
fn in_browser() -> bool {
    cfg!(target_arch = "wasm32") && web_sys::window().is_some()
}

/// Creates the connection manager for `options` (or joins the existing one
/// with the same socket URL and token storage), puts it in context for
/// [`use_connection_manager`] below, and returns it. Call it once in your
/// root component; the connection lives as long as that component.
///
/// - **One socket per configuration**: however often it is called (nested,
///   or in two separately mounted roots), providers with the same socket URL
///   and [`TokenStorage`] share one connection, and the later ones' other
///   options are ignored. A provider with another URL or storage (nested
///   under the first, or not) gets its own manager, which its subtree sees.
/// - **After the first render**: the stored token is read and the
///   connection starts (with [`connect_on_mount`](ConnectionOptions::connect_on_mount))
///   in an effect, once the component has rendered, so components
///   subscribed in that render hear the first events, and a hydrated page
///   renders exactly what the server rendered.
/// - **On the server** (server-side rendering, any non-browser target) it
///   returns a handle whose state stays INITIAL: nothing connects, methods
///   do nothing and `send` returns [`SendError::NotInBrowser`].
pub fn provide_connection_manager(options: ConnectionOptions) -> ConnectionManager {
    let (driver, place) = if in_browser() {
        (Some(browser_driver(options)), Place::Browser)
    } else {
        (None, Place::Server)
    };
    let snapshot = match &driver {
        Some(driver) => RwSignal::from(driver.state()),
        None => RwSignal::new(Snapshot::default()),
    };
    let inner = StoredValue::new_local(Inner {
        driver,
        place,
        owner: Owner::current().map(|owner| owner.downgrade()),
        fields: Fields::default(),
    });
    on_cleanup(move || {
        // The last provider to go drops the driver, which closes the socket
        // and removes every listener and timer.
        inner.try_update_value(|inner| inner.driver.take());
    });
    let manager = ConnectionManager { snapshot, inner };
    provide_context(manager);
    manager
}

/// The page's driver for `options`: the shared one, or a new one that starts
/// (listeners, stored token, connect) after the current render.
fn browser_driver(options: ConnectionOptions) -> Rc<Driver> {
    let page = web_sys::window().and_then(|w| w.location().href().ok());
    let mut config = options.config;
    if let Some(page) = page {
        match crate::browser::resolve_socket_url(&config.url, &page) {
            Ok(url) => config.url = url,
            // Opening it fails and is reported (a 1006 close and backoff);
            // say why here, once.
            Err(error) => web_sys::console::error_1(&format!("tether: {error}").into()),
        }
    }
    // 2^53: a double's random bits, without `powi` (a compiler-runtime call).
    config.seed = (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64
        ^ crate::browser::now().rotate_left(32);
    let key = (config.url.clone(), options.storage.clone());
    let shared = SHARED.with(|shared| {
        let mut shared = shared.borrow_mut();
        shared.retain(|(_, d)| d.upgrade().is_some_and(|d| !d.is_destroyed()));
        shared
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, d)| d.upgrade())
    });
    if let Some(driver) = shared {
        return driver;
    }
    let settings = Settings {
        storage: options.storage,
        refresh: options.refresh,
        navigate: options.navigate,
        protocols: options.protocols,
    };
    let driver = Driver::new(config, (options.auth)(), settings);
    SHARED.with(|s| s.borrow_mut().push((key, Rc::downgrade(&driver))));
    driver.listen();
    let connect = options.connect_on_mount;
    let starting = Rc::downgrade(&driver);
    // The stored token changes what the page shows (`is_signed_in`), so it
    // is read in an effect, after the first render (after hydration in a
    // hydrated app), like the connection itself.
    Effect::new(move |_| {
        if let Some(driver) = starting.upgrade() {
            driver.reload_token();
            if connect {
                driver.connect();
            }
        }
    });
    driver
}

/// The connection manager provided by an ancestor.
///
/// # Panics
/// When no ancestor called [`provide_connection_manager`] (or rendered a
/// [`ConnectionProvider`](crate::ConnectionProvider)).
#[track_caller]
pub fn use_connection_manager() -> ConnectionManager {
    use_context::<ConnectionManager>().expect(
        "use_connection_manager() found no ConnectionManager: wrap your root in \
         <ConnectionProvider> or call provide_connection_manager(options) in the root component",
    )
}

/// Runs `callback` for every event of `kind` for as long as the calling
/// component lives.
pub fn use_connection_event(kind: EventKind, callback: impl Fn(&Event) + 'static) {
    let subscription = use_connection_manager().on(kind, callback);
    // Dropped (unsubscribing) when the component's owner is cleaned up.
    StoredValue::new_local(subscription);
}

/// Runs `callback` with the decoded payload of every frame of the app's
/// own type `kind` for as long as the calling component lives (the hook
/// form of [`ConnectionManager::on_frame`]).
pub fn use_frame<T: serde::de::DeserializeOwned + 'static>(
    kind: &str,
    callback: impl Fn(T) + 'static,
) {
    let subscription = use_connection_manager().on_frame(kind, callback);
    StoredValue::new_local(subscription);
}

macro_rules! derived {
    ($($(#[$doc:meta])* $name:ident -> $ty:ty = |$s:ident| $body:expr;)*) => {
        /// One memo per field of the snapshot, so that a component that
        /// reads `state()` only reruns when the state changes. Each is
        /// created on first use, once per provider: a field nobody reads
        /// costs nothing, not even code (each memo type is its own
        /// monomorphised code, ~1 KiB of wasm). They are kept as `Signal`s
        /// because converting a memo into a `Signal` allocates, which the
        /// accessors must not do per call.
        #[derive(Default)]
        struct Fields {
            snapshot: OnceCell<Signal<Snapshot>>,
            $($name: OnceCell<Signal<$ty>>,)*
        }

        impl ConnectionManager {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> Signal<$ty> {
                    self.field(|f| &f.$name, |$s| $body)
                }
            )*
        }
    };
}

derived! {
    /// One of the five states: INITIAL, CONNECTING, CONNECTED, DISCONNECTING, DISCONNECTED.
    state -> ConnectionState = |s| s.state();
    /// What the state is doing right now (authenticating, waiting to retry, why it stopped…).
    detail -> Detail = |s| s.detail.clone();
    /// Open and authenticated.
    is_connected -> bool = |s| s.state() == ConnectionState::Connected;
    /// The socket is open and the `auth` reply is pending.
    authenticating -> bool = |s| s.authenticating();
    /// The current reconnect attempt; 0 when connected.
    attempt -> u32 = |s| s.attempt();
    /// When the next reconnect attempt happens, in ms since the Unix epoch.
    next_retry_at -> Option<u64> = |s| s.next_retry_at();
    /// The last close code and reason.
    last_close -> Option<CloseInfo> = |s| s.last_close.clone();
    /// The last error (bad frame, server error, refused message…).
    last_error -> Option<ConnectionError> = |s| s.last_error.clone();
    /// Round-trip time of the last ping.
    rtt -> Option<Duration> = |s| s.rtt;
    /// Messages accepted by [`send`](Self::send) and not yet acknowledged.
    pending -> usize = |s| s.pending;
    /// The authenticated user's id.
    user -> Option<String> = |s| s.user_id.clone();
    /// Signed in: a token is held (or the handshake needs none) and no
    /// sign-out or final authentication failure has ended the session.
    /// False in the first render (the stored token is read after it) and
    /// on the server.
    is_signed_in -> bool = |s| s.signed_in;
}

impl ConnectionManager {
    /// Everything at once, as one signal.
    pub fn snapshot(&self) -> Signal<Snapshot> {
        let snapshot = self.snapshot;
        self.lazy(|f| &f.snapshot, move || snapshot.read_only().into())
    }

    /// The memo of one field, created under the provider's owner on first use.
    fn field<T>(
        &self,
        slot: fn(&Fields) -> &OnceCell<Signal<T>>,
        project: fn(&Snapshot) -> T,
    ) -> Signal<T>
    where
        T: Clone + PartialEq + Send + Sync + 'static,
    {
        let snapshot = self.snapshot;
        self.lazy(slot, move || {
            Memo::new(move |_| snapshot.with(project)).into()
        })
    }

    /// The signal in `slot`, made by `make` under the provider's owner the
    /// first time.
    fn lazy<T>(
        &self,
        slot: fn(&Fields) -> &OnceCell<Signal<T>>,
        make: impl Fn() -> Signal<T> + Copy,
    ) -> Signal<T>
    where
        T: Send + Sync + 'static,
    {
        self.inner
            .try_with_value(|inner| {
                *slot(&inner.fields).get_or_init(|| {
                    match inner.owner.as_ref().and_then(WeakOwner::upgrade) {
                        Some(owner) => owner.with(make),
                        None => make(),
                    }
                })
            })
            // The provider is gone: a signal of its disposed snapshot, as
            // inert as the rest of this handle.
            .unwrap_or_else(make)
    }

    /// Whether this handle runs in a browser (else every method is a no-op).
    pub(crate) fn in_browser(&self) -> bool {
        self.inner.try_with_value(|inner| inner.place) == Some(Place::Browser)
    }

    pub(crate) fn with_driver<R>(&self, f: impl FnOnce(&Rc<Driver>) -> R) -> Option<R> {
        let driver = self
            .inner
            .try_with_value(|inner| inner.driver.clone())
            .flatten()?;
        (!driver.is_destroyed()).then(|| f(&driver))
    }

    /// Connects with the stored token (no-op when connecting or connected);
    /// also the way back after a manual disconnect or a final auth failure.
    pub fn connect(&self) {
        self.with_driver(|d| d.connect());
    }

    /// Closes the connection; it stays closed (no reconnect on `online` or
    /// page visibility) until [`connect`](Self::connect).
    pub fn disconnect(&self) {
        self.with_driver(|d| d.dispatch(tether_core::Input::Disconnect));
    }

    /// Stores a token obtained by signing in (and its lifetime, for timely
    /// refresh) in the configured [`TokenStorage`] and connects with it.
    pub fn sign_in(&self, token: Secret, expires_in: Option<Duration>) {
        self.with_driver(|d| {
            d.set_token(token, expires_in);
            d.connect();
        });
    }

    /// The access token: the one the connection holds, else the stored one
    /// (for your own `Authorization: Bearer` calls, or to decide at start
    /// whether the user is signed in). `None` on the server.
    pub fn token(&self) -> Option<Secret> {
        self.with_driver(|d| d.token()).flatten()
    }

    /// Signs out here: closes the socket with 1000, removes the stored
    /// token (so other tabs sharing `localStorage` sign out too), stops
    /// reconnecting and emits [`Event::SignedOut`]; messages not yet acked
    /// fail with [`SendError::SignedOut`]. It does not navigate (do it
    /// yourself if you want to) and does not tell the server: call your
    /// logout endpoint as well to end the session there.
    pub fn sign_out(&self) {
        self.with_driver(|d| d.dispatch(tether_core::Input::SignOut));
    }

    /// Sends `body`, serialized as JSON, with a delivery guarantee: queued
    /// while not connected, resent after reconnects until the server acks
    /// it. Each accepted message ends in exactly one [`Event::Ack`] or
    /// [`Event::SendFailed`].
    ///
    /// # Errors
    /// [`SendError`] when the message was not accepted (not serializable,
    /// queue full, too large, manager destroyed, on the server): nothing was
    /// queued.
    pub fn send<T: serde::Serialize + ?Sized>(&self, body: &T) -> Result<MessageId, SendError> {
        let text = serde_json::to_string(body).map_err(|e| SendError::NotJson {
            reason: e.to_string(),
        })?;
        let body = RawJson::new(text).map_err(|e| SendError::NotJson {
            reason: e.to_string(),
        })?;
        self.send_raw(body)
    }

    /// [`send`](Self::send) for a body that is already JSON text, for apps
    /// that do not use serde (`RawJson::new` checks the text).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_raw(&self, body: RawJson) -> Result<MessageId, SendError> {
        let place = self.inner.try_with_value(|inner| inner.place);
        if place == Some(Place::Server) {
            return Err(SendError::NotInBrowser);
        }
        self.with_driver(|d| d.send(body))
            .unwrap_or(Err(SendError::Destroyed))
    }

    /// Calls `callback` for each event of `kind` until the returned
    /// [`Subscription`] is dropped.
    pub fn on(&self, kind: EventKind, callback: impl Fn(&Event) + 'static) -> Subscription {
        self.subscribe(Some(kind), Rc::new(callback))
    }

    /// Calls `callback` with the payload, decoded into `T`, of every frame
    /// of the app's own type `kind` (contract section 9: a type the
    /// protocol does not define, like `chat.typing`), until the returned
    /// [`Subscription`] is dropped. A payload that does not decode into `T`
    /// is reported as an [`Event::Error`] with
    /// [`ConnectionError::Decode`] (`InvalidPayload` naming `kind`) to the
    /// connection's event subscribers, and the connection stays.
    ///
    /// ```no_run
    /// # use tether::prelude::*;
    /// #[derive(serde::Deserialize)]
    /// struct Typing { user: String }
    ///
    /// let conn = use_connection_manager();
    /// let _typing = conn.on_frame::<Typing>("chat.typing", |t| leptos::logging::log!("{} types", t.user));
    /// ```
    pub fn on_frame<T: serde::de::DeserializeOwned + 'static>(
        &self,
        kind: &str,
        callback: impl Fn(T) + 'static,
    ) -> Subscription {
        let kind = kind.to_owned();
        let driver = self.with_driver(Rc::downgrade);
        self.on(EventKind::Message, move |event| {
            let Event::Message { kind: got, payload } = event else {
                return;
            };
            if *got != kind {
                return;
            }
            match crate::decode::payload::<T>(payload.as_str()) {
                Ok(value) => callback(value),
                Err(error) => {
                    let error = tether_protocol::DecodeError::InvalidPayload {
                        kind: kind.clone(),
                        reason: error.to_string(),
                    };
                    if let Some(driver) = driver.as_ref().and_then(Weak::upgrade) {
                        driver.report(&Event::Error(ConnectionError::Decode(error)));
                    }
                }
            }
        })
    }

    /// Calls `callback` for every event until the returned [`Subscription`] is dropped.
    pub fn on_any(&self, callback: impl Fn(&Event) + 'static) -> Subscription {
        self.subscribe(None, Rc::new(callback))
    }

    fn subscribe(&self, kind: Option<EventKind>, callback: Rc<dyn Fn(&Event)>) -> Subscription {
        match self.with_driver(|d| d.subscribers.add(kind, callback)) {
            Some(subscription) => subscription,
            None => crate::events::Subscribers::default().add(None, Rc::new(|_| {})),
        }
    }

    /// Every event from now on, as a [`futures::Stream`].
    pub fn events(&self) -> EventStream {
        let (sender, receiver) = futures::channel::mpsc::unbounded();
        let subscription = self.with_driver(|d| {
            d.subscribers.add(
                None,
                Rc::new(move |event: &Event| {
                    let _ = sender.unbounded_send(event.clone());
                }),
            )
        });
        EventStream {
            receiver,
            _subscription: subscription,
        }
    }

    /// Tears the connection down for good: closes the socket, cancels every
    /// timer, removes every listener and subscriber. Afterwards the handle
    /// is inert: `send` fails with [`SendError::Destroyed`].
    pub fn destroy(&self) {
        self.with_driver(|d| d.destroy());
    }
}
