//! `cairn check` reads a data directory back and says what is damaged; `--repair` salvages the
//! store file. Runs the real binary.

mod common;
use common::{cairn, text};

#[test]
fn check_finds_a_damaged_model_and_store_and_repair_salvages_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let demo = cairn(
        dir.path(),
        &["demo", "--users", "60", "--items", "80", "--events", "3000"],
    );
    assert!(demo.status.success(), "{}", text(&demo));
    let train = cairn(dir.path(), &["train"]);
    assert!(train.status.success(), "{}", text(&train));

    let clean = cairn(dir.path(), &["check"]);
    assert!(clean.status.success(), "{}", text(&clean));
    assert!(text(&clean).contains("no damage found"), "{}", text(&clean));

    // Garbage appended to the model file: named, and the check fails.
    let models = dir.path().join("models");
    let model = std::fs::read_dir(&models)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "cairn"))
        .unwrap();
    let mut bytes = std::fs::read(&model).unwrap();
    bytes.extend_from_slice(b"garbage");
    std::fs::write(&model, &bytes).unwrap();
    let out = cairn(dir.path(), &["check"]);
    assert!(!out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("damaged") && said.contains(".cairn"),
        "{said}"
    );
    std::fs::remove_file(&model).unwrap();

    // Flipped bytes in the store file: found, then repaired, then clean.
    let store = dir.path().join("cairn.redb");
    let mut bytes = std::fs::read(&store).unwrap();
    let n = bytes.len();
    for k in 0..20 {
        bytes[n / 2 + k * (n / 2 - 1) / 20] ^= 0x5a;
    }
    std::fs::write(&store, bytes).unwrap();
    let out = cairn(dir.path(), &["check"]);
    assert!(!out.status.success(), "{}", text(&out));
    let out = cairn(dir.path(), &["check", "--repair"]);
    assert!(text(&out).contains("repaired"), "{}", text(&out));
    let out = cairn(dir.path(), &["check"]);
    assert!(out.status.success(), "{}", text(&out));
    let events = text(&out);
    assert!(
        events.contains("events: 3000 rows, 0 unreadable"),
        "{events}"
    );
}
