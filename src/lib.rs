//! # tether
//!
//! An authenticated, self-healing WebSocket connection for
//! [Leptos](https://leptos.dev) apps: one socket per page, however many
//! components use it, exposed as read-only signals and typed events.
//!
//! It connects with the access token, authenticates with an `auth` frame
//! right after open, keeps the link alive with ping/pong and notices a dead
//! link within 10 s, reconnects with exponential backoff and full jitter,
//! follows the browser's `online`/`offline` and page-visibility events,
//! refreshes the token before it expires and re-authenticates in place,
//! replays missed notifications exactly once, delivers messages sent while
//! offline once it is back (or reports them failed), and on a final
//! authentication failure clears the stored token and navigates to `/login`.
//! The wire contract is `shared/PROTOCOL.md`; the logic lives in the sans-IO
//! [`tether_core`] machine, this crate runs it in the browser.
//!
//! ## Use it in your app
//!
//! ```no_run
//! use leptos::prelude::*;
//! use tether::prelude::*;
//!
//! #[component]
//! fn App() -> impl IntoView {
//!     // Once, at the root: the one connection of the page.
//!     provide_connection_manager(ConnectionOptions::default());
//!     view! { <Status/> }
//! }
//!
//! #[component]
//! fn Status() -> impl IntoView {
//!     // Anywhere below: a Copy handle with read-only signals.
//!     let conn = use_connection_manager();
//!     use_connection_event(EventKind::Notification, |event| leptos::logging::log!("{event:?}"));
//!     view! {
//!         <p>{move || conn.state().get().to_string()}</p>
//!         <button on:click=move |_| { let _ = conn.send(&serde_json::json!({"hi": 1})); }>"Send"</button>
//!         <button on:click=move |_| conn.sign_out()>"Sign out"</button>
//!     }
//! }
//!
//! fn main() {
//!     leptos::mount::mount_to_body(App);
//! }
//! ```
//!
//! ## Topics in your app
//!
//! A typed handle on a topic (`room:42`), exactly once and in order across
//! reconnects; see [`use_topic`] and [`Topic`]:
//!
//! ```no_run
//! use leptos::prelude::*;
//! use serde::Deserialize;
//! use tether::prelude::*;
//!
//! /// The app's own messages: a topic message's `event` + `data`.
//! #[derive(Debug, Clone, Deserialize)]
//! #[serde(tag = "event", content = "data", rename_all = "snake_case")]
//! enum Chat {
//!     Said { text: String },
//!     Typing,
//! }
//!
//! #[derive(Deserialize)]
//! struct Invoice { total: u64 }
//!
//! #[component]
//! fn Room(#[prop(into)] id: Signal<String>) -> impl IntoView {
//!     // Joins `room:<id>` (and follows `id`: the old room is left), with the
//!     // last 50 messages first. Handles on one topic share one subscription.
//!     let name = Signal::derive(move || format!("room:{}", id.get()));
//!     let room = use_topic_with_options::<Chat>(name, TopicOptions::default().last(50));
//!     let lines = RwSignal::new(Vec::<String>::new());
//!     // Every message, decoded, once and in order (also across reconnects).
//!     room.on_message(move |m| {
//!         if let Chat::Said { text } = &m.event {
//!             lines.update(|l| l.push(format!("#{} {text}", m.offset)));
//!         }
//!     });
//!     // Undecodable messages, lost history, failed publishes.
//!     room.on_error(|e| leptos::logging::warn!("{e}"));
//!     room.on_published(|id, offset| leptos::logging::log!("{id} is #{offset}"));
//!     // The app's own frame types (`{"type":"billing.invoice","payload":{..}}`).
//!     use_frame::<Invoice>("billing.invoice", |i| leptos::logging::log!("{}", i.total));
//!     let say = move |_| {
//!         let _ = room.publish("said", &serde_json::json!({ "text": "hi" }));
//!     };
//!     view! {
//!         <p>{move || format!("{:?}", room.state().get())}</p>
//!         <p>{move || format!("{} here", room.presence().get().len())}</p>
//!         <ul>{move || lines.get().into_iter().map(|l| view! { <li>{l}</li> }).collect_view()}</ul>
//!         <button on:click=say>"Say hi"</button>
//!     }
//! }
//!
//! fn main() {
//!     leptos::mount::mount_to_body(|| {
//!         provide_connection_manager(ConnectionOptions::default());
//!         view! { <Room id="lobby"/> }
//!     });
//! }
//! ```
//!
//! Depend on it with `default-features = false` to leave out the demo SPA
//! (the `app` feature), and turn on leptos's `csr` (or `hydrate` and `ssr`)
//! in your app: the library chooses none of them.
//!
//! ## Server-side rendering
//!
//! Built for the server (or any target without a browser window), every
//! handle method works and does nothing: the state stays INITIAL and
//! [`ConnectionManager::send`] returns [`SendError::NotInBrowser`]. In the
//! browser the stored token is read and the connection starts in an effect,
//! after the first render (after hydration), so the hydrated page matches
//! the server's HTML. See `examples/ssr` in the repository.
#![deny(missing_docs)]

mod browser;
mod decode;
mod events;
mod manager;
mod options;
mod token;
mod topic;

#[cfg(feature = "app")]
pub mod app;
#[cfg(feature = "passkeys")]
pub mod passkeys;

pub use browser::{UrlError, resolve_socket_url};
pub use events::{Event, EventKind, EventStream, Subscription};
pub use manager::{
    ConnectionManager, provide_connection_manager, use_connection_event, use_connection_manager,
    use_frame,
};
pub use options::{AuthFactory, Backoff, Config, ConnectionOptions, Keepalive, Navigate};
pub use tether_core::{
    Adapter, AuthOutcome, ChanxAuth, CloseInfo, ConnectionError, ConnectionState, ContractAuth,
    Delivery, Detail, Incoming, MessageId, SendError, Snapshot, StopReason,
};
pub use tether_core::{
    Position, SubscribeErrorCode, SubscribeOptions, TopicEvent, TopicFailure, TopicSnapshot,
    TopicState, UnsubscribedCode, User,
};
pub use tether_protocol::{AuthErrorCode, NackCode, Notification, RawJson, Secret};
pub use token::{
    DEFAULT_STORAGE_KEY, FreshToken, RefreshError, RefreshFailure, RefreshFn, TokenRefresh,
    TokenStorage,
};
pub use topic::{Topic, TopicError, TopicMessage, TopicOptions, use_topic, use_topic_with_options};

/// The sans-IO connection machine, for tests and custom drivers.
pub use tether_core as machine;
/// The wire types shared with the server.
pub use tether_protocol as protocol;

use leptos::prelude::*;

/// Provides the page's [`ConnectionManager`] to `children`: the component
/// form of [`provide_connection_manager`].
#[component]
pub fn ConnectionProvider(
    /// Options; see [`ConnectionOptions`] for each default.
    #[prop(optional)]
    options: Option<ConnectionOptions>,
    children: Children,
) -> impl IntoView {
    provide_connection_manager(options.unwrap_or_default());
    children()
}

/// `use tether::prelude::*;` brings in everything an app needs.
pub mod prelude {
    pub use crate::{
        ConnectionManager, ConnectionOptions, ConnectionProvider, ConnectionState, Event,
        EventKind, MessageId, RawJson, SendError, TokenStorage, Topic, TopicError, TopicMessage,
        TopicOptions, TopicState, provide_connection_manager, use_connection_event,
        use_connection_manager, use_frame, use_topic, use_topic_with_options,
    };
}
