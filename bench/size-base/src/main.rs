//! Size benchmark, baseline: a minimal Leptos CSR app with a router. Built
//! by `scripts/bench` exactly like `bench/size-manager`, which adds the
//! ConnectionManager; the difference in gzip bytes is the manager's cost.

use leptos::prelude::*;
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::path;

#[component]
fn Home() -> impl IntoView {
    view! {
        <h1>"Home"</h1>
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
