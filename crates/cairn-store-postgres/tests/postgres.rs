//! What only the PostgreSQL backend does: migrations, atomic batches against a refusing database,
//! `VACUUM FULL` compaction, backups into a data directory, calls from inside a tokio runtime.
//! Skipped, saying why, without `CAIRN_TEST_POSTGRES_URL`.

#[path = "../../cairn-store/tests/suite/mod.rs"]
#[macro_use]
mod suite;

mod common;

use cairn_core::{Event, Item, Timestamp, User};
use cairn_store::{EmbeddedStore, Store};
use cairn_store_postgres::PostgresStore;

#[test]
fn migrations_are_applied_once_and_recorded() {
    let Some((store, _guard)) = common::store("migrations_once") else {
        return;
    };
    assert_eq!(store.schema_versions().unwrap(), [1]);
    assert!(store.migrate().unwrap().is_empty(), "nothing left to apply");
    store
        .append_events(&[Event::new("u", "a", "view")], Timestamp(1))
        .unwrap();
    // Connecting again applies nothing and keeps the data.
    let url = std::env::var(common::URL_VAR).unwrap();
    let again =
        PostgresStore::connect_in_schema(&url, Some(&common::schema_name("migrations_once")))
            .unwrap();
    assert_eq!(again.schema_versions().unwrap(), [1]);
    assert_eq!(again.stats().unwrap().events, 1);
}

#[test]
fn stores_that_start_together_migrate_once() {
    let Some(url) = common::url("migrate_together") else {
        return;
    };
    let schema = common::schema_name("migrate_together");
    let (store, _guard) = common::store("migrate_together").unwrap();
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    c.batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .unwrap();
    drop(store);
    let versions: Vec<Vec<i32>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    PostgresStore::connect_in_schema(&url, Some(&schema))
                        .unwrap()
                        .schema_versions()
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(versions, vec![vec![1]; 4]);
}

#[test]
fn a_database_newer_than_the_binary_is_refused() {
    let Some((_store, _guard)) = common::store("newer_schema") else {
        return;
    };
    let url = std::env::var(common::URL_VAR).unwrap();
    let schema = common::schema_name("newer_schema");
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    c.batch_execute(&format!(
        "INSERT INTO \"{schema}\".cairn_migrations (version, name) VALUES (99, 'future')"
    ))
    .unwrap();
    let err = PostgresStore::connect_in_schema(&url, Some(&schema))
        .err()
        .expect("refused");
    assert!(err.to_string().contains("version 99"), "{err}");
}

#[test]
fn a_batch_the_database_refuses_stores_nothing() {
    let Some((s, _guard)) = common::store("refused_batch") else {
        return;
    };
    s.append_events(&[Event::new("u", "a", "view")], Timestamp(1))
        .unwrap();
    // PostgreSQL's text cannot hold a NUL: the fourth event fails the whole batch.
    let batch: Vec<Event> = ["b", "c", "d", "e\0"]
        .iter()
        .map(|item| Event::new("u", *item, "view"))
        .collect();
    assert!(s.append_events(&batch, Timestamp(2)).is_err());
    let stats = s.stats().unwrap();
    assert_eq!((stats.events, stats.last_seq), (1, 1));
    assert_eq!(s.user_items("u").unwrap(), ["a"]);
    assert!(s.put_items(&[Item::new("ok"), Item::new("bad\0")]).is_err());
    assert_eq!(s.get_item("ok").unwrap(), None);
    // The store goes on.
    let out = s
        .append_events(&[Event::new("u", "b", "view")], Timestamp(3))
        .unwrap();
    assert_eq!(out.stored, [2]);
}

#[test]
fn compaction_rewrites_the_tables_from_their_live_rows() {
    let Some((s, _guard)) = common::store("compaction") else {
        return;
    };
    s.put_users(&[User::new("gone"), User::new("kept")])
        .unwrap();
    let events: Vec<Event> = (0..2_000)
        .map(|i| {
            Event::new(
                if i % 4 == 0 { "kept" } else { "gone" },
                format!("i{}", i % 50),
                "view",
            )
        })
        .collect();
    s.append_events(&events, Timestamp(1)).unwrap();
    s.delete_user("gone").unwrap();
    let report = s.compact().unwrap();
    assert_eq!((report.users, report.events), (1, 500));
    assert!(
        report.bytes_after < report.bytes_before,
        "{} -> {}",
        report.bytes_before,
        report.bytes_after
    );
    // The kept user's events are every fourth: 25 distinct items.
    assert_eq!(s.user_items("kept").unwrap().len(), 25);
}

#[test]
fn a_backup_is_a_data_directory_the_embedded_store_opens() {
    let Some((s, _guard)) = common::store("backup_dir") else {
        return;
    };
    s.put_items(&[Item::new("a")]).unwrap();
    s.put_users(&[User::new("u")]).unwrap();
    let mut e = Event::new("u", "a", "view").at(5);
    e.event_id = Some("e1".into());
    s.append_events(&[e.clone(), Event::new("v", "a", "view")], Timestamp(1))
        .unwrap();
    s.delete_user("v").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let report = s.backup(dir.path()).unwrap();
    assert_eq!(
        (report.items, report.users, report.events, report.last_seq),
        (1, 1, 1, 2)
    );
    assert!(s.backup(dir.path()).is_err(), "never over a store");
    let copy = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(copy.stats().unwrap(), s.stats().unwrap());
    assert_eq!(
        copy.user_events("u", 5).unwrap(),
        s.user_events("u", 5).unwrap()
    );
    assert_eq!(
        copy.append_events(&[e], Timestamp(1)).unwrap().duplicates,
        1
    );
}

#[test]
fn calls_from_inside_a_tokio_runtime_work() {
    let Some((s, _guard)) = common::store("inside_tokio") else {
        return;
    };
    let s = std::sync::Arc::new(s);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let stored = runtime.block_on(async {
        let on_worker = tokio::spawn({
            let s = s.clone();
            async move {
                s.append_events(&[Event::new("u", "a", "view")], Timestamp(1))
                    .unwrap()
                    .stored
            }
        });
        let on_blocking = tokio::task::spawn_blocking({
            let s = s.clone();
            move || {
                s.append_events(&[Event::new("u", "b", "view")], Timestamp(1))
                    .unwrap()
                    .stored
            }
        });
        let mut all = on_worker.await.unwrap();
        all.extend(on_blocking.await.unwrap());
        all.sort();
        all
    });
    assert_eq!(stored, [1, 2]);
}

/// Waits (up to 10 s) until `store` takes the trainer lease: a session PostgreSQL ends releases its
/// advisory locks a moment after the call that ends it returns.
fn takes_lease_soon(store: &PostgresStore) -> bool {
    for _ in 0..200 {
        if store.trainer_lease().unwrap() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

#[test]
fn one_process_of_a_schema_holds_the_trainer_lease_until_its_session_ends() {
    let Some((first, _guard)) = common::store("trainer_lease") else {
        return;
    };
    let url = std::env::var(common::URL_VAR).unwrap();
    let schema = common::schema_name("trainer_lease");
    let second = PostgresStore::connect_in_schema(&url, Some(&schema)).unwrap();
    assert!(first.trainer_lease().unwrap(), "the first to ask takes it");
    assert!(first.trainer_lease().unwrap(), "and keeps it");
    assert!(
        !second.trainer_lease().unwrap(),
        "a second process does not"
    );
    assert!(!second.trainer_lease().unwrap());
    // Another schema (another deployment in the same database) elects its own trainer.
    let (other, _other_guard) = common::store("trainer_lease_other").unwrap();
    assert!(other.trainer_lease().unwrap());

    // The holder's session ends as it does when its process is killed: the lock goes with it.
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let ended: i64 = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks \
             WHERE locktype = 'advisory' AND objsubid = 2 AND classid::bigint = $1 \
             AND objid::bigint = (hashtext($2)::bigint & 4294967295) AND granted",
            &[&i64::from(cairn_store_postgres::TRAINER_LOCK), &schema],
        )
        .unwrap()
        .get(0);
    assert_eq!(ended, 1, "one session held the lease");
    assert!(takes_lease_soon(&second), "the second takes it over");
    assert!(
        !first.trainer_lease().unwrap(),
        "the first, connected again, no longer holds it"
    );
    drop(second);
    assert!(takes_lease_soon(&first), "a dropped holder lets it go");
}
