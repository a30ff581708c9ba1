//! Ingestion through the `Store` trait, embedded and PostgreSQL side by side: `threads` writers
//! append `events` synthetic events (each with an event id, as the HTTP route stores them) in
//! batches of `batch`, then one scan reads the log back. Prints one line per backend; the figures
//! of docs/POSTGRES.md come from it.
//!
//!   scripts/with-postgres.sh cargo run --release -p cairn-store-postgres --example ingest -- \
//!       EVENTS BATCH THREADS
//!
//! Without `CAIRN_TEST_POSTGRES_URL` only the embedded store is measured.

use std::time::Instant;

use cairn_core::{Event, Timestamp};
use cairn_store::{EmbeddedStore, Store};
use cairn_store_postgres::PostgresStore;

fn measure(name: &str, store: &dyn Store, events: usize, batch: usize, threads: usize) {
    let per_thread = events / threads;
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                let mut n = 0;
                while n < per_thread {
                    let b: Vec<Event> = (n..(n + batch).min(per_thread))
                        .map(|i| {
                            let mut e = Event::new(
                                format!("u{}", (i * 7 + t) % 5_000),
                                format!("i{}", (i * 13) % 2_000),
                                "view",
                            );
                            e.event_id = Some(format!("t{t}-{i}"));
                            e
                        })
                        .collect();
                    n += b.len();
                    store.append_events(&b, Timestamp(1)).expect("append");
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let stored = per_thread * threads;
    let start = Instant::now();
    let mut scanned = 0u64;
    store
        .scan_events(0, &mut |_| {
            scanned += 1;
            true
        })
        .expect("scan");
    let scan_secs = start.elapsed().as_secs_f64();
    println!(
        "{name}: {stored} events in batches of {batch} from {threads} thread(s): {secs:.2} s, \
         {:.0} events/s; scan of {scanned}: {scan_secs:.2} s, {:.0} events/s",
        stored as f64 / secs,
        scanned as f64 / scan_secs
    );
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("EVENTS BATCH THREADS are numbers"))
        .collect();
    let events = args.first().copied().unwrap_or(100_000);
    let batch = args.get(1).copied().unwrap_or(100).max(1);
    let threads = args.get(2).copied().unwrap_or(1).max(1);

    let dir = tempfile::tempdir().expect("temporary folder");
    let embedded = EmbeddedStore::open(dir.path()).expect("embedded store");
    measure("embedded", &embedded, events, batch, threads);

    match std::env::var("CAIRN_TEST_POSTGRES_URL") {
        Ok(url) => {
            let schema = format!("ingest_{}", std::process::id());
            let pg = PostgresStore::connect_in_schema(&url, Some(&schema)).expect("postgres");
            measure("postgres", &pg, events, batch, threads);
            let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
            c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                .expect("drop the schema");
        }
        Err(_) => println!("postgres: skipped, CAIRN_TEST_POSTGRES_URL is not set"),
    }
}
