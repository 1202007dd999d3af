//! The demo single-page app: sign-in and a live connection dashboard.

use crate::prelude::*;
use leptos::prelude::*;

/// The root component of the demo SPA.
#[component]
pub fn App() -> impl IntoView {
    let conn = provide_connection_manager(ConnectionOptions::default());
    view! {
        <main>
            <h1>"tether"</h1>
            <p data-testid="connection-state">{move || conn.state().get().to_string()}</p>
        </main>
    }
}
