//! The core stays sans-IO: no browser crates, no platform clock or randomness.

#[test]
fn the_manifest_has_no_browser_dependencies() {
    let manifest = include_str!("../../Cargo.toml");
    for banned in [
        "web-sys",
        "wasm-bindgen",
        "js-sys",
        "leptos",
        "gloo",
        "getrandom",
        "rand",
    ] {
        let found = manifest.lines().any(|l| l.trim_start().starts_with(banned));
        assert!(!found, "tether-core must not depend on {banned}");
    }
}

#[test]
fn the_sources_use_no_platform_clock_or_randomness() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for banned in [
            "Instant",
            "SystemTime",
            "thread_rng",
            "web_sys",
            "wasm_bindgen",
        ] {
            assert!(!text.contains(banned), "{} uses {banned}", path.display());
        }
    }
}
