//! The dashboard's Passkeys panel: add a passkey to this account, the list
//! with delete, and "Sign out everywhere".

use crate::app::api;
use crate::app::store::use_store;
use crate::passkeys::{self, PasskeyInfo};
use crate::prelude::*;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::NavigateOptions;
use leptos_router::hooks::use_navigate;

/// The signed-in account's passkeys.
#[component]
pub fn PasskeysPanel() -> impl IntoView {
    let conn = use_connection_manager();
    let store = use_store();
    let navigate = use_navigate();
    let items = RwSignal::new(Vec::<PasskeyInfo>::new());
    let loaded = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let supported = passkeys::passkey_support().webauthn;

    let reload = move || {
        spawn_local(async move {
            let Some(token) = conn.token() else { return };
            match passkeys::list_passkeys(&token).await {
                Ok(list) => {
                    items.set(list);
                    loaded.set(true);
                }
                Err(e) => error.set(Some(e.message())),
            }
        });
    };
    reload();

    let add = move |_| {
        if busy.get_untracked() {
            return;
        }
        let Some(token) = conn.token() else { return };
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            match passkeys::add_passkey(&token).await {
                Ok(_) => reload(),
                Err(e) => error.set(Some(e.message())),
            }
            busy.set(false);
        });
    };

    let remove = move |id: String| {
        let Some(token) = conn.token() else { return };
        error.set(None);
        spawn_local(async move {
            match passkeys::delete_passkey(&token, &id).await {
                Ok(()) => reload(),
                Err(e) => error.set(Some(e.message())),
            }
        });
    };

    let everywhere = move |_| {
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        let navigate = navigate.clone();
        spawn_local(async move {
            match passkeys::sign_out_everywhere(conn).await {
                Ok(()) => {
                    api::forget_username();
                    store.clear();
                    navigate("/login", NavigateOptions::default());
                }
                Err(e) => {
                    error.set(Some(e.message()));
                    busy.set(false);
                }
            }
        });
    };

    view! {
        <section class="card passkeys" aria-labelledby="passkeys-title">
            <div class="card-head">
                <h2 id="passkeys-title">"Passkeys"</h2>
            </div>
            <ul class="passkey-list">
                <For
                    each=move || items.get()
                    key=|item| item.id.clone()
                    children=move |item| {
                        let id = item.id.clone();
                        view! {
                            <li data-testid="passkey-item">
                                <span>
                                    "Added " {when(item.created)} ", "
                                    {match item.last_used {
                                        Some(ms) => format!("last used {}", when(ms)),
                                        None => "never used".to_owned(),
                                    }}
                                </span>
                                <button
                                    class="ghost"
                                    data-testid="passkey-delete"
                                    on:click=move |_| remove(id.clone())
                                >
                                    "Delete"
                                </button>
                            </li>
                        }
                    }
                />
            </ul>
            {move || {
                (loaded.get() && items.with(Vec::is_empty))
                    .then(|| view! { <p class="muted">"No passkey yet."</p> })
            }}
            <p class="form-error" role="alert" aria-live="assertive">
                {move || {
                    error.get().map(|e| view! { <span data-testid="passkey-error">{e}</span> })
                }}
            </p>
            <div class="actions">
                <button
                    data-testid="passkey-add"
                    on:click=add
                    disabled=move || !supported || busy.get()
                >
                    "Add a passkey"
                </button>
                <button
                    class="ghost"
                    data-testid="sign-out-everywhere"
                    on:click=everywhere
                    disabled=move || busy.get()
                >
                    "Sign out everywhere"
                </button>
            </div>
            {(!supported)
                .then(|| {
                    view! {
                        <p class="hint muted" data-testid="passkey-unsupported">
                            "This browser does not support passkeys."
                        </p>
                    }
                })}
        </section>
    }
}

/// A time in the browser's locale.
fn when(ms: i64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    String::from(date.to_locale_string("default", &wasm_bindgen::JsValue::UNDEFINED))
}
