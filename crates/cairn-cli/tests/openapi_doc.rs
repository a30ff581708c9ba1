//! docs/openapi.json is the generated API reference; it must match what the code generates.

#[test]
fn committed_openapi_document_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    let committed = std::fs::read_to_string(path).expect("docs/openapi.json exists");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("openapi")
        .output()
        .expect("cairn openapi runs");
    assert!(output.status.success());
    let generated = String::from_utf8(output.stdout).unwrap();
    assert!(
        committed.trim() == generated.trim(),
        "docs/openapi.json is stale: regenerate it with `cargo run -- openapi > docs/openapi.json`"
    );
}
