use crate::app::api;
use crate::passkeys::{self, PasskeyError};
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

    // Passkeys: both buttons are disabled, with a line saying why, where the
    // browser has no WebAuthn.
    let supported = passkeys::passkey_support().webauthn;
    let new_username = RwSignal::new(String::new());
    let passkey_error = RwSignal::new(None::<String>);
    let passkey_busy = RwSignal::new(false);
    let passkey_done = {
        let navigate = navigate.clone();
        move |result: Result<Option<String>, PasskeyError>| match result {
            Ok(name) => {
                match name {
                    Some(name) => api::store_username(&name),
                    None => api::forget_username(),
                }
                navigate("/", NavigateOptions::default());
            }
            Err(e) => {
                passkey_error.set(Some(e.message()));
                passkey_busy.set(false);
            }
        }
    };
    let passkey_sign_in = {
        let done = passkey_done.clone();
        move |_| {
            if passkey_busy.get_untracked() {
                return;
            }
            passkey_busy.set(true);
            passkey_error.set(None);
            let done = done.clone();
            spawn_local(async move {
                done(
                    passkeys::sign_in_with_passkey(conn, None)
                        .await
                        .map(|()| None),
                );
            });
        }
    };
    let passkey_register = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if passkey_busy.get_untracked() {
            return;
        }
        let name = new_username.get_untracked().trim().to_owned();
        if name.is_empty() {
            passkey_error.set(Some("Choose a username for the new account.".into()));
            return;
        }
        passkey_busy.set(true);
        passkey_error.set(None);
        let done = passkey_done.clone();
        spawn_local(async move {
            let result = passkeys::register_passkey(conn, &name).await;
            done(result.map(|()| Some(name)));
        });
    };

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
            <div class="narrow" style="display: grid; gap: 1rem">
            <form class="card login" on:submit=submit novalidate>
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
                <button
                    type="button"
                    data-testid="passkey-sign-in"
                    disabled=move || !supported || passkey_busy.get()
                    on:click=passkey_sign_in
                >
                    "Sign in with a passkey"
                </button>
                <p class="hint muted">"Demo users: alice / wonderland, bob / builder"</p>
            </form>
            <form class="card login" on:submit=passkey_register novalidate>
                <label for="passkey-username">"New account with a passkey"</label>
                <input
                    id="passkey-username"
                    data-testid="passkey-username"
                    name="new-username"
                    autocomplete="username webauthn"
                    autocapitalize="none"
                    spellcheck="false"
                    placeholder="Choose a username"
                    disabled=!supported
                    prop:value=move || new_username.get()
                    on:input=move |ev| new_username.set(event_target_value(&ev))
                />
                <button
                    type="submit"
                    data-testid="passkey-register"
                    disabled=move || !supported || passkey_busy.get()
                >
                    "Create an account with a passkey"
                </button>
                {(!supported)
                    .then(|| {
                        view! {
                            <p class="hint muted" data-testid="passkey-unsupported">
                                "This browser does not support passkeys: sign in with a password."
                            </p>
                        }
                    })}
                <p class="form-error" role="alert" aria-live="assertive">
                    {move || {
                        passkey_error
                            .get()
                            .map(|e| view! { <span data-testid="passkey-error">{e}</span> })
                    }}
                </p>
            </form>
            </div>
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
