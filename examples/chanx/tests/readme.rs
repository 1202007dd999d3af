//! The README's section "Another server: Chanx" shows this app's files as
//! they are, so what it shows is what compiles.

#[test]
fn the_readme_shows_this_app_verbatim() {
    let readme = include_str!("../../../README.md");
    for (name, text) in [
        ("Cargo.toml", include_str!("../Cargo.toml")),
        ("src/main.rs", include_str!("../src/main.rs")),
    ] {
        assert!(
            readme.contains(text),
            "README.md does not show examples/chanx/{name} as it is"
        );
    }
}
