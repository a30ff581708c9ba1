//! `cairn migrate --from SOURCE --to TARGET`: moves a deployment's stored data (items, users, the
//! event log with its positions and event ids, API keys, the audit log) between a data directory
//! (the embedded store) and a PostgreSQL database (`postgres://…`), either way. Run it with the
//! server stopped. Models stay in the data directory, which a PostgreSQL deployment still uses for
//! them (`data_dir`). The target must hold nothing yet.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use cairn_engine::is_postgres_url;
use cairn_store::{copy_store, BackupReport, EmbeddedStore, Store};
use cairn_store_postgres::PostgresStore;
use clap::Args;

use super::Context;

#[derive(Args)]
pub struct MigrateArgs {
    /// Where the data is now: a data directory, or a PostgreSQL URL (`postgres://…`).
    #[arg(long)]
    from: String,
    /// Where it goes: an empty (or new) data directory, or a PostgreSQL URL whose database
    /// holds no Cairn data yet (the schema is created there).
    #[arg(long)]
    to: String,
}

/// One end of a migration.
enum End {
    Dir(PathBuf),
    Postgres(String),
}

impl End {
    fn parse(s: &str) -> End {
        if is_postgres_url(s) {
            End::Postgres(s.to_string())
        } else {
            End::Dir(PathBuf::from(s))
        }
    }

    fn describe(&self) -> String {
        match self {
            End::Dir(d) => format!("the data directory {}", d.display()),
            End::Postgres(_) => "the PostgreSQL database".to_string(),
        }
    }

    fn open(&self, must_exist: bool) -> anyhow::Result<Arc<dyn Store>> {
        Ok(match self {
            End::Dir(d) => {
                if must_exist && !d.join("cairn.redb").exists() {
                    bail!("{} holds no store (no cairn.redb)", d.display());
                }
                Arc::new(
                    EmbeddedStore::open(d)
                        .with_context(|| format!("opening {}", self.describe()))?,
                )
            }
            End::Postgres(url) => Arc::new(
                PostgresStore::connect(url)
                    .with_context(|| format!("connecting to {}", self.describe()))?,
            ),
        })
    }
}

pub fn run(_ctx: &Context, args: MigrateArgs) -> anyhow::Result<()> {
    let from = End::parse(&args.from);
    let to = End::parse(&args.to);
    let report: BackupReport = match (&from, &to) {
        // One consistent moment of the database, written as a data directory's store.
        (End::Postgres(url), End::Dir(dir)) => {
            refuse_existing_store(dir)?;
            let source = PostgresStore::connect(url)
                .with_context(|| format!("connecting to {}", from.describe()))?;
            source
                .backup(dir)
                .with_context(|| format!("writing {}", to.describe()))?
        }
        _ => {
            if let End::Dir(dir) = &to {
                refuse_existing_store(dir)?;
            }
            let source = from.open(true)?;
            let target = to.open(false)?;
            copy_store(source.as_ref(), target.as_ref())
                .with_context(|| format!("copying {} into {}", from.describe(), to.describe()))?
        }
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "from": from.describe(),
            "to": to.describe(),
            "items": report.items,
            "users": report.users,
            "events": report.events,
            "last_seq": report.last_seq,
        }))?
    );
    Ok(())
}

fn refuse_existing_store(dir: &Path) -> anyhow::Result<()> {
    if dir.join("cairn.redb").exists() {
        bail!(
            "{} already holds a store (cairn.redb): migrate into a new data directory",
            dir.display()
        );
    }
    Ok(())
}
