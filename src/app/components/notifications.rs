use crate::app::clock;
use crate::app::store::use_store;
use leptos::prelude::*;
use tether_protocol::time::parse_rfc3339;

/// Notifications, newest first, one per `seq`.
#[component]
pub fn Notifications() -> impl IntoView {
    let store = use_store();
    let count = move || store.notifications.with(Vec::len);
    view! {
        <section class="card notifications" aria-labelledby="notifications-title">
            <div class="card-head">
                <h2 id="notifications-title">"Notifications"</h2>
                <span class="count" aria-label="notifications received">{count}</span>
            </div>
            <Show when=move || count() == 0>
                <p class="empty muted">"Nothing yet. New notifications appear here live."</p>
            </Show>
            <ul class="notes" data-received=move || store.received.get()>
                <For
                    each=move || store.notifications.get()
                    key=|n| n.seq
                    children=|n| {
                        let at = parse_rfc3339(&n.created_at)
                            .map(|ms| clock(ms as f64))
                            .unwrap_or_default();
                        view! {
                            <li class="note" data-testid="notification" data-seq=n.seq>
                                <div class="note-head">
                                    <strong>{n.title}</strong>
                                    <span class="muted mono">{format!("#{} · {at}", n.seq)}</span>
                                </div>
                                <p>{n.body}</p>
                            </li>
                        }
                    }
                />
            </ul>
        </section>
    }
}
