use leptos::prelude::*;
use leptos_router::components::A;

/// Any path the router does not know.
#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <main class="centered">
            <section class="card narrow">
                <p class="big-code" aria-hidden="true">"404"</p>
                <h1>"Page not found"</h1>
                <p class="muted">"There is nothing at this address."</p>
                <A href="/" attr:class="button primary">"Go to the dashboard"</A>
            </section>
        </main>
    }
}
