//! The README's library example is `crates/xprune/examples/quickstart.rs` (compiled by
//! `cargo test`); this keeps the copy in the README identical to it, and the README's two
//! commands in place.

const README: &str = include_str!("../../../README.md");
const EXAMPLE: &str = include_str!("../../../crates/xprune/examples/quickstart.rs");

#[test]
fn readme_shows_the_compiled_example() {
    let body = &EXAMPLE[EXAMPLE.find("use xprune::").expect("example has imports")..];
    assert!(
        README.contains(body),
        "README.md's library example differs from crates/xprune/examples/quickstart.rs"
    );
}

#[test]
fn readme_has_the_two_commands() {
    assert!(README.contains("cargo run -p xprune-cli -- demo --output xprune-demo"));
    assert!(README.contains("cargo test --workspace"));
    let ci = include_str!("../../../.ci/run");
    assert!(
        ci.contains("cargo test --workspace"),
        ".ci/run runs the README's test command"
    );
}
