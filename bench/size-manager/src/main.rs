//! Size benchmark: `bench/size-base` plus the ConnectionManager, i.e.
//! `provide_connection_manager` at the root and one component that reads
//! `state()` and calls `send` with a serde-derived message. Built by `scripts/bench` exactly like the
//! baseline; the difference in gzip bytes is the manager's cost.

#[path = "../../size-pages.rs"]
mod pages;

#[path = "../../size-json.rs"]
mod json;

use leptos::prelude::*;
use pages::Pages;
use tether::prelude::*;

use json::Hello;

#[component]
fn Status() -> impl IntoView {
    let conn = use_connection_manager();
    view! {
        <p>{move || conn.state().get().to_string()}</p>
        <button on:click=move |_| {
            let _ = json::round_trip(r#"{"hi":1}"#);
            let _ = conn.send(&Hello { hi: 1 });
        }>"Send"</button>
    }
}

#[component]
fn App() -> impl IntoView {
    provide_connection_manager(ConnectionOptions::default());
    view! { <Pages/> }
}

fn main() {
    leptos::mount::mount_to_body(App);
}
