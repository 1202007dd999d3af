//! The pages every size app shares, included by each with
//! `#[path = "../../size-pages.rs"] mod pages;`. The apps then differ only in
//! their `Status` component and in what their `App` does before it shows
//! [`Pages`], which is what a size comparison must hold fixed.

use leptos::prelude::*;
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::path;

use crate::Status;

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

/// The router with the two pages; `Home` shows the app's `Status`.
#[component]
pub fn Pages() -> impl IntoView {
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
