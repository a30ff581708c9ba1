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

#[test]
fn keys_carry_their_own_rate_limit_in_the_listing() {
    let dir = tempfile::tempdir().unwrap();
    let out = cairn(
        dir.path(),
        &[
            "keys",
            "create",
            "--scope",
            "ingest",
            "--name",
            "app",
            "--rate-limit-per-sec",
            "50",
            "--burst",
            "100",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cairn(
        dir.path(),
        &["keys", "create", "--scope", "read", "--name", "web"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A burst needs a rate; a negative rate is refused.
    for bad in [&["--burst", "5"][..], &["--rate-limit-per-sec", "-1"][..]] {
        let mut args = vec!["keys", "create", "--scope", "read", "--name", "x"];
        args.extend_from_slice(bad);
        let out = cairn(dir.path(), &args);
        assert!(!out.status.success(), "{bad:?}");
    }

    let listing = text(&cairn(dir.path(), &["keys", "list"]).stdout);
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 2, "{listing}");
    let app = lines.iter().find(|l| l.contains("\tapp\t")).unwrap();
    assert!(
        app.ends_with("\tlast used never\trate limit 50/s burst 100"),
        "{app}"
    );
    let web = lines.iter().find(|l| l.contains("\tweb\t")).unwrap();
    assert!(web.ends_with("\trate limit default"), "{web}");
}
