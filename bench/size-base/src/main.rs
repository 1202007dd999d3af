//! Size benchmark, baseline: a minimal Leptos CSR app with a router and a
//! (static) status line with a button. Built by `scripts/bench` exactly like
//! `bench/size-manager`, which is the same app with the ConnectionManager
//! behind the status line and the button; the difference in gzip bytes is
//! the manager's cost.

#[path = "../../size-pages.rs"]
mod pages;

#[path = "../../size-json.rs"]
mod json;

use leptos::prelude::*;
use pages::Pages;

/// The same view as size-manager's `Status`: a text rendered by a closure
/// and a button with a click handler. That view code is the app's, not the
/// manager's, so both builds have it, as does the JSON round trip of
/// `size-json.rs` that every JSON-speaking app has. It holds no signal: whatever reactive
/// state the manager brings is counted as the manager's.
#[component]
fn Status() -> impl IntoView {
    view! {
        <p>{move || "INITIAL".to_string()}</p>
        <button on:click=move |_| {
            let _ = json::round_trip(r#"{"hi":1}"#);
        }>"Send"</button>
    }
}

#[component]
fn App() -> impl IntoView {
    view! { <Pages/> }
}

fn main() {
    leptos::mount::mount_to_body(App);
}
