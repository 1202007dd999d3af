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
    let mut dirs = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))];
    let mut files = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    assert!(files.len() > 10, "the core's sources were not found");
    for path in files {
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

/// Every byte of the core ships in the browser build: its runtime
/// dependencies are an allow-list (serde and serde_json, the one JSON
/// library of both sides; nothing else without a reason).
#[test]
fn the_runtime_dependencies_are_an_allow_list() {
    let manifest = include_str!("../../Cargo.toml");
    let mut section = "";
    let mut deps = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if section == "[dependencies]" && !line.is_empty() && !line.starts_with('#') {
            deps.push(line.split(['=', '.', ' ']).next().unwrap_or(line));
        }
    }
    assert_eq!(
        deps,
        ["tether-protocol", "serde", "serde_json", "thiserror"],
        "tether-core's [dependencies]"
    );
    assert!(
        !manifest.contains("[dependencies."),
        "a dependency declared as a table"
    );
}
