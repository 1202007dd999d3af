use crate::app::api;
use crate::prelude::*;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::NavigateOptions;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_navigate;
use std::time::Duration;

/// `/login`: the sign-in form. Already signed in: on to the dashboard.
#[component]
pub fn Login() -> impl IntoView {
    let conn = use_connection_manager();
    if conn.token().is_some() {
        return view! { <Redirect path="/" options=replace()/> }.into_any();
    }
    let navigate = use_navigate();
    let username = RwSignal::new(api::stored_username().unwrap_or_default());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let name = username.get_untracked().trim().to_owned();
        let pass = password.get_untracked();
        if name.is_empty() || pass.is_empty() {
            error.set(Some("Enter your username and password.".into()));
            return;
        }
        busy.set(true);
        error.set(None);
        let navigate = navigate.clone();
        spawn_local(async move {
            match api::login(name.clone(), pass).await {
                Ok(token) => {
                    api::store_username(&name);
                    conn.sign_in(
                        token.access_token,
                        Some(Duration::from_secs(token.expires_in)),
                    );
                    navigate("/", NavigateOptions::default());
                }
                Err(e) => {
                    error.set(Some(e.message()));
                    password.set(String::new());
                    busy.set(false);
                }
            }
        });
    };

    view! {
        <main class="centered">
            <form class="card narrow login" on:submit=submit novalidate>
                <div class="brand">
                    <img src="/favicon.svg" alt="" width="40" height="40"/>
                    <div>
                        <h1>"tether"</h1>
                        <p class="muted">"Sign in to watch your connection live."</p>
                    </div>
                </div>
                <label for="login-username">"Username"</label>
                <input
                    id="login-username"
                    data-testid="login-username"
                    name="username"
                    autocomplete="username"
                    autocapitalize="none"
                    spellcheck="false"
                    required
                    prop:value=move || username.get()
                    on:input=move |ev| username.set(event_target_value(&ev))
                />
                <label for="login-password">"Password"</label>
                <input
                    id="login-password"
                    data-testid="login-password"
                    name="password"
                    type="password"
                    autocomplete="current-password"
                    required
                    prop:value=move || password.get()
                    on:input=move |ev| password.set(event_target_value(&ev))
                />
                <p class="form-error" role="alert" aria-live="assertive">
                    {move || {
                        error
                            .get()
                            .map(|e| view! { <span data-testid="login-error">{e}</span> })
                    }}
                </p>
                <button
                    type="submit"
                    class="primary"
                    data-testid="login-submit"
                    disabled=move || busy.get()
                >
                    {move || if busy.get() { "Signing in…" } else { "Sign in" }}
                </button>
                <p class="hint muted">"Demo users: alice / wonderland, bob / builder"</p>
            </form>
        </main>
    }
    .into_any()
}

/// Navigation that replaces the current history entry (redirects).
pub(super) fn replace() -> NavigateOptions {
    NavigateOptions {
        replace: true,
        ..NavigateOptions::default()
    }
}
