//! The example's server: renders the page with leptos_axum and serves the
//! hydrate bundle from `pkg/`.
//!
//! ```sh
//! tether-example-ssr --addr 127.0.0.1:3000 --site target/ssr-site --socket ws://127.0.0.1:3001/api/ws/notification
//! ```

use axum::Router;
use leptos::prelude::*;
use leptos_axum::render_app_to_stream;
use tether_example_ssr::shell;
use tower_http::services::ServeDir;

/// `--name value` from the command line, or `default`.
fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

// One thread: a rendered page's reactive values stay on the thread that made them.
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    // Leptos spawns its rendering tasks on tokio.
    let _ = any_spawner::Executor::init_tokio();
    let addr = arg("--addr", "127.0.0.1:3000");
    let site = arg("--site", "target/ssr-site");
    let socket = arg("--socket", tether::protocol::WS_PATH);
    let options = LeptosOptions::builder()
        .output_name("tether_example_ssr")
        .site_root(site.clone())
        .site_pkg_dir("pkg")
        .build();
    let page = render_app_to_stream(move || shell(options.clone(), socket.clone()));
    let app = Router::new()
        .route("/", axum::routing::get(page))
        .nest_service("/pkg", ServeDir::new(format!("{site}/pkg")));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
