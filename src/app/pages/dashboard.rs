use super::login::replace;
use crate::app::api;
use crate::app::components::{ConnectionPanel, Notifications, PasskeysPanel, SendBox, Timeline};
use crate::app::store::use_store;
use crate::prelude::*;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::NavigateOptions;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_navigate;

/// `/`: the live dashboard. Not signed in: on to the login page.
#[component]
pub fn Dashboard() -> impl IntoView {
    let conn = use_connection_manager();
    if conn.token().is_none() {
        return view! { <Redirect path="/login" options=replace()/> }.into_any();
    }
    let store = use_store();
    let navigate = use_navigate();
    let signing_out = RwSignal::new(false);

    let sign_out = move |_| {
        if signing_out.get_untracked() {
            return;
        }
        signing_out.set(true);
        let navigate = navigate.clone();
        spawn_local(async move {
            let token = conn.token();
            // Sign out here first (socket closed, token gone), so the
            // revocation that follows is not reported as an authentication
            // failure.
            conn.sign_out();
            if let Some(token) = token {
                api::logout(&token).await;
            }
            api::forget_username();
            store.clear();
            navigate("/login", NavigateOptions::default());
        });
    };

    view! {
        <header class="topbar">
            <div class="brand">
                <img src="/favicon.svg" alt="" width="28" height="28"/>
                <span class="name">"tether"</span>
                <span class="muted tagline">"self-healing WebSocket demo"</span>
            </div>
            <nav class="nav">
                <a href="/rooms" data-testid="nav-rooms">"Rooms"</a>
            </nav>
            <button
                class="ghost"
                data-testid="sign-out"
                on:click=sign_out
                disabled=move || signing_out.get()
            >
                "Sign out"
            </button>
        </header>
        <main class="dashboard">
            <ConnectionPanel/>
            <SendBox/>
            <Notifications/>
            <Timeline/>
            <PasskeysPanel/>
        </main>
    }
    .into_any()
}
