use crate::app::clock;
use crate::app::store::{TIMELINE_LEN, use_store};
use leptos::prelude::*;

/// The last connection events, newest first.
#[component]
pub fn Timeline() -> impl IntoView {
    let store = use_store();
    view! {
        <section class="card timeline" aria-labelledby="timeline-title">
            <div class="card-head">
                <h2 id="timeline-title">"Timeline"</h2>
                <span class="muted">{format!("last {TIMELINE_LEN} events")}</span>
            </div>
            <Show when=move || store.timeline.with(|t| t.is_empty())>
                <p class="empty muted">"No events yet."</p>
            </Show>
            <ol class="events">
                <For
                    each=move || store.timeline.get()
                    key=|item| item.key
                    children=|item| {
                        view! {
                            <li
                                data-testid="event"
                                data-kind=item.kind
                                class=format!("event kind-{}", item.kind.to_lowercase())
                            >
                                <time class="mono">{clock(item.at)}</time>
                                <span class="kind">{item.kind}</span>
                                <span class="text">{item.text}</span>
                            </li>
                        }
                    }
                />
            </ol>
        </section>
    }
}
