//! The demo SPA that `trunk serve` mounts.

fn main() {
    console_error_panic_hook::set_once();
    let _ = console_log::init_with_level(log::Level::Info);
    leptos::mount::mount_to_body(tether::app::App);
}
