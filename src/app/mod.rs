//! The demo single-page app: sign-in, a live connection dashboard and
//! chat rooms (typed topics).
//!
//! `pages/` holds one component per route, `components/` the pieces of the
//! dashboard, [`store`] the app-wide lists fed by connection events and
//! [`api`] the few HTTP calls (sign in, sign out).

mod api;
mod components;
mod pages;
mod store;

use crate::prelude::*;
use leptos::prelude::*;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

/// The root component of the demo SPA.
#[component]
pub fn App() -> impl IntoView {
    view! {
        <Router>
            <Shell/>
        </Router>
    }
}

/// Everything under the router: the page's one connection, the event
/// store, and the routes.
#[component]
fn Shell() -> impl IntoView {
    // Without a stored token there is nothing to connect with: connecting
    // would only report `missing_token` and bounce to /login.
    let conn = provide_connection_manager(ConnectionOptions::default().connect_on_mount(false));
    if conn.token().is_some() {
        Effect::new(move |_| conn.connect());
    }
    store::provide_store(conn);
    view! {
        <Routes fallback=pages::NotFound>
            <Route path=path!("/") view=pages::Dashboard/>
            <Route path=path!("/login") view=pages::Login/>
            <Route path=path!("/rooms") view=pages::Rooms/>
            <Route path=path!("/rooms/:id") view=pages::Rooms/>
        </Routes>
    }
}

/// `hh:mm:ss` in local time for milliseconds since the Unix epoch.
fn clock(ms: f64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms));
    format!(
        "{:02}:{:02}:{:02}",
        date.get_hours(),
        date.get_minutes(),
        date.get_seconds()
    )
}
