//! Size benchmark, for comparison only: `bench/size-manager` with
//! leptos-use's `use_websocket` in place of the ConnectionManager. The same
//! router app, the hook called once at the root and shared by context, and
//! the same `Status` component: it shows the connection state and sends a
//! serde-derived message as JSON text. Built by `scripts/bench` exactly like
//! the other two; its difference from `bench/size-base` is the hook's cost.
//!
//! `use_websocket` with its default options does much less than the
//! manager: no auth message, no token refresh, no keepalive (its heartbeat
//! option is off), a fixed reconnect interval (3 tries), no outbox, no
//! decoding of the protocol's frames. It is here as the floor for a
//! reactive Leptos WebSocket wrapper, not as an equal.

#[path = "../../size-pages.rs"]
mod pages;

#[path = "../../size-json.rs"]
mod json;

use std::sync::Arc;

use codee::string::FromToStringCodec;
use leptos::prelude::*;
use leptos_use_websocket::{ConnectionReadyState, UseWebSocketReturn, use_websocket};
use pages::Pages;

use json::Hello;

/// What the root shares with its components.
#[derive(Clone)]
struct Socket {
    state: Signal<ConnectionReadyState>,
    send: Arc<dyn Fn(&String) + Send + Sync>,
}

#[component]
fn Status() -> impl IntoView {
    let socket = expect_context::<Socket>();
    let send = socket.send.clone();
    view! {
        <p>{move || match socket.state.get() {
            ConnectionReadyState::Connecting => "connecting",
            ConnectionReadyState::Open => "open",
            ConnectionReadyState::Closing => "closing",
            ConnectionReadyState::Closed => "closed",
        }}</p>
        <button on:click=move |_| {
            let _ = json::round_trip(r#"{"hi":1}"#);
            if let Ok(text) = serde_json::to_string(&Hello { hi: 1 }) {
                send(&text);
            }
        }>"Send"</button>
    }
}

#[component]
fn App() -> impl IntoView {
    let UseWebSocketReturn {
        ready_state, send, ..
    } = use_websocket::<String, String, FromToStringCodec>("ws://127.0.0.1:9/ws");
    provide_context(Socket {
        state: ready_state,
        send: Arc::new(send),
    });
    view! { <Pages/> }
}

fn main() {
    leptos::mount::mount_to_body(App);
}
