use crate::app::clock;
use crate::app::store::use_store;
use crate::prelude::*;
use leptos::prelude::*;

/// A text box whose messages are delivered with a guarantee, each shown as
/// queued, sent, acked or failed.
#[component]
pub fn SendBox() -> impl IntoView {
    let conn = use_connection_manager();
    let store = use_store();
    let text = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = text.get_untracked().trim().to_owned();
        if body.is_empty() {
            return;
        }
        match store.send(conn, body) {
            Ok(()) => {
                text.set(String::new());
                error.set(None);
            }
            Err(e) => error.set(Some(format!("Not sent: {e}."))),
        }
    };

    view! {
        <section class="card send" aria-labelledby="send-title">
            <h2 id="send-title">"Send a message"</h2>
            <form class="send-form" on:submit=submit>
                <label for="send-input" class="visually-hidden">"Message"</label>
                <input
                    id="send-input"
                    data-testid="send-input"
                    placeholder="Type a message…"
                    autocomplete="off"
                    maxlength="2000"
                    prop:value=move || text.get()
                    on:input=move |ev| text.set(event_target_value(&ev))
                />
                <button type="submit" class="primary" data-testid="send-submit">
                    "Send"
                </button>
            </form>
            <p class="form-error" role="alert">{move || error.get()}</p>
            <p class="muted small">
                "Sent while offline? It waits in the queue and goes out once connected."
            </p>
            <ul class="messages">
                <For
                    each=move || store.messages.get()
                    key=|m| m.key
                    children=|m| {
                        let status = m.status.clone();
                        let class_status = m.status.clone();
                        let error = m.error.clone();
                        view! {
                            <li class="message">
                                <span class="text">{m.text}</span>
                                <time class="muted mono">{clock(m.at)}</time>
                                <span
                                    class=move || format!("status status-{}", class_status.get().as_str())
                                    data-testid="send-status"
                                    title=move || error.get().unwrap_or_default()
                                >
                                    {move || status.get().as_str()}
                                </span>
                            </li>
                        }
                    }
                />
            </ul>
        </section>
    }
}
