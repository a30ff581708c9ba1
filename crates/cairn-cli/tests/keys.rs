//! `cairn keys create|list|revoke` on a data directory, and the error while a server holds it.

use std::process::{Command, Output};

fn cairn(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("CAIRN_LOG", "error")
        .output()
        .expect("cairn runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn keys_are_created_listed_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let out = cairn(
        dir.path(),
        &["keys", "create", "--scope", "admin", "--name", "ops"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_string();
    assert!(token.starts_with("cairn_") && token.len() == 70, "{token}");
    assert!(text(&out.stderr).contains("shown only now"));

    let out = cairn(dir.path(), &["keys", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    let line = listing.lines().next().expect("one key");
    assert!(line.contains("\tadmin\tops\t"), "{listing}");
    assert!(!listing.contains(&token), "the token is never listed");
    let id = line.split('\t').next().unwrap().to_string();
    assert!(id.starts_with("key_"), "{id}");

    let out = cairn(
        dir.path(),
        &["keys", "create", "--scope", "root", "--name", "x"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("read, ingest or admin"),
        "{}",
        text(&out.stderr)
    );

    let out = cairn(dir.path(), &["keys", "revoke", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&id));
    let out = cairn(dir.path(), &["keys", "revoke", &id]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("does not exist"),
        "{}",
        text(&out.stderr)
    );
    let out = cairn(dir.path(), &["keys", "list"]);
    assert!(text(&out.stdout).trim().is_empty());
}

#[test]
fn a_store_in_use_is_named_with_the_api_to_use_instead() {
    let dir = tempfile::tempdir().unwrap();
    let _held = cairn_store::EmbeddedStore::open(dir.path()).unwrap();
    let out = cairn(dir.path(), &["keys", "list"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("in use") && err.contains("/v1/keys"), "{err}");
}
