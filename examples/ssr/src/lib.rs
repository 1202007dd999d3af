//! A server-rendered, hydrated Leptos page that shows tether's connection
//! state. The server renders `INITIAL` (there is no browser there); the
//! browser hydrates the same HTML, then, after hydration, the manager reads
//! the stored token and connects.
//!
//! The socket URL comes from a `<meta name="tether-socket">` the server
//! writes into the page, so the example can talk to a reference server on
//! another port. A token in the URL fragment (`#token=...`, never sent to
//! the server) is signed in after hydration, as an OAuth implicit flow
//! would hand it over.

use leptos::prelude::*;
use tether::prelude::*;

/// The socket URL the page connects to, from its `<meta name="tether-socket">`
/// (in the browser; the server does not connect, so any value will do there).
fn socket_url() -> String {
    #[cfg(target_arch = "wasm32")]
    {
        let meta = leptos::prelude::document()
            .query_selector(r#"meta[name="tether-socket"]"#)
            .ok()
            .flatten();
        if let Some(url) = meta.and_then(|m| m.get_attribute("content")) {
            return url;
        }
    }
    tether::protocol::WS_PATH.to_owned()
}

/// The page: the connection state, rendered on the server and hydrated.
#[component]
pub fn App() -> impl IntoView {
    let options = ConnectionOptions::default()
        .url(socket_url())
        .connect_on_mount(false);
    let conn = provide_connection_manager(options);
    // After hydration (effects never run on the server): a token handed over
    // in the fragment signs in and connects; otherwise connect with the
    // stored one.
    Effect::new(move |_| {
        #[cfg(target_arch = "wasm32")]
        if let Ok(hash) = leptos::prelude::window().location().hash()
            && let Some(token) = hash.strip_prefix("#token=")
        {
            return conn.sign_in(tether::Secret::new(token), None);
        }
        conn.connect();
    });
    view! {
        <main>
            <h1>"tether, server-rendered"</h1>
            <p>"Connection: " <strong id="state">{move || conn.state().get().to_string()}</strong></p>
            <p>"Signed in: " <span id="signed-in">{move || conn.is_signed_in().get().to_string()}</span></p>
        </main>
    }
}

/// The HTML document around [`App`], for the server. `socket` goes into the
/// page for the browser.
pub fn shell(options: LeptosOptions, socket: String) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                // Keeps what the page logs as errors, for the test to read.
                <script>
                    "window.__errors = []; for (const level of ['error', 'warn']) { \
                     const log = console[level].bind(console); \
                     console[level] = (...args) => { window.__errors.push(args.map(String).join(' ')); log(...args); }; }"
                </script>
                <meta name="tether-socket" content=socket/>
                <title>"tether SSR example"</title>
                <HydrationScripts options/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The browser's entry point: hydrates the server's HTML.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
