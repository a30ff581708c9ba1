//! `cairn migrate`: a data directory moved to PostgreSQL and back holds what it held (items,
//! users, the event log with its positions, holes and ids, API keys, the audit log), and a target
//! that holds data is refused. Needs `CAIRN_TEST_POSTGRES_URL` (scripts/with-postgres.sh); skipped,
//! saying why, without it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use cairn_core::{Event, Item, PropertyValue, StoredEvent, Timestamp, User};
use cairn_store::{AuditRecord, EmbeddedStore, KeyRecord, Store};

fn cairn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .env("CAIRN_LOG", "error")
        .output()
        .expect("cairn runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Items, users, events, keys, the audit log and the log's end.
type Contents = (
    Vec<Item>,
    Vec<User>,
    Vec<StoredEvent>,
    Vec<KeyRecord>,
    Vec<AuditRecord>,
    u64,
);

/// Everything a store holds, for comparison.
fn contents(s: &dyn Store) -> Contents {
    let mut events = Vec::new();
    s.scan_events(0, &mut |e| {
        events.push(e);
        true
    })
    .unwrap();
    (
        s.list_items(None, usize::MAX).unwrap(),
        s.list_users(None, usize::MAX).unwrap(),
        events,
        s.list_keys().unwrap(),
        s.list_audit(None, usize::MAX).unwrap(),
        s.stats().unwrap().last_seq,
    )
}

fn fill(dir: &Path) {
    let s = EmbeddedStore::open(dir).unwrap();
    let mut item = Item::new("i1");
    item.categories = vec!["jazz".into()];
    item.properties
        .insert("price".into(), PropertyValue::Number(9.5));
    s.put_items(&[item, Item::new("i2"), Item::new("é")])
        .unwrap();
    s.put_users(&[User::new("u1"), User::new("gone")]).unwrap();
    let events: Vec<Event> = (0..300)
        .map(|i| {
            let user = ["u1", "u2", "gone"][i % 3];
            let mut e = Event::new(user, ["i1", "i2", "é"][i % 2], "view").at(i as i64);
            if i % 2 == 0 {
                e.event_id = Some(format!("ev-{i}"));
            }
            if i % 7 == 0 {
                e.context = BTreeMap::from([("page".into(), PropertyValue::String("home".into()))]);
                e.recommendation_id = Some(format!("rec-{i}"));
            }
            e
        })
        .collect();
    for chunk in events.chunks(64) {
        s.append_events(chunk, Timestamp(1)).unwrap();
    }
    s.put_key(&KeyRecord {
        id: "key_a".into(),
        name: "ops".into(),
        scope: "admin".into(),
        digest: "cd".repeat(32),
        created_at: 7,
        last_used_at: Some(9),
        rate_limit_per_sec: None,
        rate_limit_burst: None,
    })
    .unwrap();
    for action in [
        "GET /v1/users/gone",
        "DELETE /v1/items/i3",
        "GET /v1/users/u1",
    ] {
        s.append_audit(&AuditRecord {
            seq: 0,
            at: 5,
            key_id: "key_a".into(),
            key_name: "ops".into(),
            action: action.into(),
            target: None,
            status: 200,
        })
        .unwrap();
    }
    // Holes in the log, and an end past the last stored event.
    s.delete_user("gone").unwrap();
}

#[test]
fn a_data_directory_moves_to_postgres_and_back_unchanged() {
    let Ok(base) = std::env::var("CAIRN_TEST_POSTGRES_URL") else {
        eprintln!(
            "skipped: CAIRN_TEST_POSTGRES_URL is not set (run `scripts/with-postgres.sh cargo \
             test -p cairn-cli --test migrate` to start a throwaway PostgreSQL)"
        );
        return;
    };
    let schema = format!("cli_migrate_{}", std::process::id());
    let mut admin = postgres::Client::connect(&base, postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");

    let first = tempfile::tempdir().unwrap();
    fill(first.path());
    let first_dir = first.path().to_str().unwrap();
    let out = cairn(&["migrate", "--from", first_dir, "--to", &url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["events"], 200);
    assert_eq!(report["last_seq"], 300);

    // Into a database that holds data: refused, nothing changed.
    let out = cairn(&["migrate", "--from", first_dir, "--to", &url]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not empty"),
        "{}",
        text(&out.stderr)
    );

    let back = tempfile::tempdir().unwrap();
    let back_dir = back.path().join("data");
    let out = cairn(&[
        "migrate",
        "--from",
        &url,
        "--to",
        back_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // And not over a store.
    let out = cairn(&[
        "migrate",
        "--from",
        &url,
        "--to",
        back_dir.to_str().unwrap(),
    ]);
    assert!(!out.status.success());

    let original = EmbeddedStore::open(first.path()).unwrap();
    let returned = EmbeddedStore::open(&back_dir).unwrap();
    let want = contents(&original);
    assert_eq!(want.2.len(), 200);
    assert_eq!(want.4[2].action, "GET /v1/users/[erased]");
    assert_eq!(contents(&returned), want);
    assert_eq!(returned.stats().unwrap(), original.stats().unwrap());
    for user in ["u1", "u2", "gone"] {
        assert_eq!(
            returned.user_items(user).unwrap(),
            original.user_items(user).unwrap()
        );
    }
    // Ids stay idempotent; new positions continue after the source's end.
    let mut again = Event::new("u1", "i1", "view");
    again.event_id = Some("ev-0".into());
    assert_eq!(
        returned
            .append_events(&[again], Timestamp(2))
            .unwrap()
            .duplicates,
        1
    );
    let new = returned
        .append_events(&[Event::new("u1", "i1", "view")], Timestamp(2))
        .unwrap();
    assert_eq!(new.stored, [301]);
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .unwrap();
}
