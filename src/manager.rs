//! The reactive store: [`provide_connection_manager`], [`use_connection_manager`]
//! and the [`ConnectionManager`] handle they return.

use crate::browser::{Driver, Settings};
use crate::events::{Event, EventKind, EventStream, Subscription};
use crate::options::ConnectionOptions;
use leptos::prelude::*;
use leptos::reactive::owner::WeakOwner;
use std::cell::{OnceCell, RefCell};
use std::rc::{Rc, Weak};
use std::time::Duration;
use tether_core::{
    CloseInfo, ConnectionError, ConnectionState, Detail, MessageId, SendError, Snapshot,
};
use tether_protocol::{RawJson, Secret};

/// What makes two providers the same connection: the socket URL and the
/// token's storage key.
type SharedKey = (String, String);

thread_local! {
    /// The drivers of this page, one per (socket URL, token storage key). A
    /// second provider with the same configuration (another mount, a second
    /// app root) shares the driver instead of opening a second socket.
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
    /// `None` once the provider is cleaned up.
    driver: Option<Rc<Driver>>,
    /// The provider's owner: the per-field memos are created under it, so
    /// they live as long as the provider whoever asks for them first.
    owner: Option<WeakOwner>,
    fields: Fields,
}

impl std::fmt::Debug for ConnectionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionManager")
            .field("snapshot", &self.snapshot.try_get_untracked())
            .finish()
    }
}

/// Creates the page's connection manager (or joins the existing one), puts
/// it in context for [`use_connection_manager`], and returns it. Call it
/// once in your root component; the connection lives as long as that
/// component.
///
/// However often it is called (nested, or in two separately mounted roots),
/// there is exactly one socket per page for a given socket URL and token
/// storage key: later calls share the first manager's connection and their
/// other `options` are ignored.
pub fn provide_connection_manager(options: ConnectionOptions) -> ConnectionManager {
    if let Some(existing) = use_context::<ConnectionManager>()
        && existing.inner.with_value(|inner| inner.driver.is_some())
    {
        return existing;
    }
    let origin = web_sys::window().and_then(|w| w.location().origin().ok());
    // 2^53: a double's random bits, without `powi` (a compiler-runtime call).
    let seed = (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64
        ^ crate::browser::now().rotate_left(32);
    let config = options.to_core(origin.as_deref(), seed);
    let key = (config.url.clone(), options.storage_key.clone());
    let shared = SHARED.with(|shared| {
        let mut shared = shared.borrow_mut();
        shared.retain(|(_, d)| d.upgrade().is_some_and(|d| !d.is_destroyed()));
        shared
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, d)| d.upgrade())
    });
    let driver = shared.unwrap_or_else(|| {
        let settings = Settings {
            storage_key: options.storage_key.clone(),
            refresh_url: options.refresh_url.clone(),
            navigate: options.navigate.clone(),
        };
        let driver = Driver::new(config, (options.auth)(), settings);
        SHARED.with(|s| s.borrow_mut().push((key, Rc::downgrade(&driver))));
        driver.start();
        if options.connect_on_mount {
            driver.connect();
        }
        driver
    });

    let snapshot = RwSignal::from(driver.state());
    let inner = StoredValue::new_local(Inner {
        driver: Some(driver),
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

    fn with_driver<R>(&self, f: impl FnOnce(&Rc<Driver>) -> R) -> Option<R> {
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
    /// refresh) and connects with it.
    pub fn sign_in(&self, token: Secret, expires_in: Option<Duration>) {
        self.with_driver(|d| {
            crate::browser::storage::store_token(d.storage_key(), &token);
            d.set_token(token, expires_in);
            d.connect();
        });
    }

    /// Sends `body`, serialized as JSON, with a delivery guarantee: queued
    /// while not connected, resent after reconnects until the server acks
    /// it. Each accepted message ends in exactly one [`Event::Ack`] or
    /// [`Event::SendFailed`].
    ///
    /// # Errors
    /// [`SendError`] when the message was not accepted (not serializable,
    /// queue full, too large, manager destroyed): nothing was queued.
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
        self.with_driver(|d| d.send(body))
            .unwrap_or(Err(SendError::Destroyed))
    }

    /// Calls `callback` for each event of `kind` until the returned
    /// [`Subscription`] is dropped.
    pub fn on(&self, kind: EventKind, callback: impl Fn(&Event) + 'static) -> Subscription {
        self.subscribe(Some(kind), Rc::new(callback))
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
