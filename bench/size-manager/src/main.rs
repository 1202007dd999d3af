//! Size benchmark: `bench/size-base` plus the ConnectionManager, i.e.
//! `provide_connection_manager` at the root and one component that reads
//! `state()` and calls `send` with a serde-derived message. Built by `scripts/bench` exactly like the
//! baseline; the difference in gzip bytes is the manager's cost.

use leptos::prelude::*;
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::path;
use tether::prelude::*;

/// What the app sends: a typed message, the usual way with serde.
#[derive(serde::Serialize)]
struct Hello {
    hi: u32,
}

#[component]
fn Status() -> impl IntoView {
    let conn = use_connection_manager();
    view! {
        <p>{move || conn.state().get().to_string()}</p>
        <button on:click=move |_| {
            let _ = conn.send(&Hello { hi: 1 });
        }>"Send"</button>
    }
}

#[component]
fn Home() -> impl IntoView {
    view! {
        <h1>"Home"</h1>
        <Status/>
        <A href="/about">"About"</A>
    }
}

#[component]
fn About() -> impl IntoView {
    view! {
        <h1>"About"</h1>
        <A href="/">"Home"</A>
    }
}

#[component]
fn App() -> impl IntoView {
    provide_connection_manager(ConnectionOptions::default());
    view! {
        <Router>
            <main>
                <Routes fallback=|| "Not found">
                    <Route path=path!("/") view=Home/>
                    <Route path=path!("/about") view=About/>
                </Routes>
            </main>
        </Router>
    }
}

fn main() {
    leptos::mount::mount_to_body(App);
}
