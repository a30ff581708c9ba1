//! `cairn check`: read the whole data directory back (the store file row by row, every saved
//! model) and say what is damaged; `--repair` copies what still reads into a new store file.
//! Runs with the server stopped: the store is single-process.

use std::path::Path;

use anyhow::Context as _;
use cairn_pipeline::ModelSet;
use cairn_store::EmbeddedStore;
use clap::Args;

use super::Context;

#[derive(Args)]
pub struct CheckArgs {
    /// Copy every row that can still be read into a new store file, keeping the damaged one
    /// beside it as `cairn.redb.damaged-<time>`.
    #[arg(long)]
    repair: bool,
}

pub fn run(ctx: &Context, args: CheckArgs) -> anyhow::Result<()> {
    let config = ctx.config()?;
    let dir = config.data_dir.clone();
    let mut healthy = check_store(&dir, args.repair)?;
    healthy &= check_models(&config.models_dir());
    if !healthy {
        anyhow::bail!(
            "{} has damage (above); `cairn check --repair` salvages the store file, and a damaged \
             model is replaced by the next `cairn train`",
            dir.display()
        );
    }
    println!("{}: no damage found", dir.display());
    Ok(())
}

fn check_store(dir: &Path, repair: bool) -> anyhow::Result<bool> {
    let report = EmbeddedStore::check(dir)?;
    for (table, rows, bad) in &report.tables {
        println!("store: {table}: {rows} rows, {bad} unreadable");
    }
    for problem in &report.problems {
        println!("store: problem: {problem}");
    }
    if !report.integrity_ok {
        println!("store: redb's integrity check failed (page checksums or allocator state)");
    }
    if report.is_healthy() {
        return Ok(true);
    }
    if !repair {
        return Ok(false);
    }
    let repaired = EmbeddedStore::repair(dir, cairn_core::now_unix())
        .with_context(|| format!("repairing the store in {}", dir.display()))?;
    println!(
        "store: repaired: copied {} items, {} users, {} events; {} unreadable rows left behind; \
         the damaged file is kept as {}",
        repaired.items,
        repaired.users,
        repaired.events,
        repaired.lost,
        repaired.damaged_copy.display()
    );
    Ok(repaired.lost == 0)
}

/// Loads every model file; true when the one that would serve is the newest.
fn check_models(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        println!("models: none saved yet");
        return true;
    };
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cairn"))
        .collect();
    paths.sort();
    let mut healthy = true;
    for path in &paths {
        match ModelSet::load(path) {
            Ok(m) => println!("models: {}: ok (version {})", path.display(), m.version),
            Err(e) => {
                healthy = false;
                println!("models: {e}");
            }
        }
    }
    match ModelSet::load_served(dir) {
        Ok(Some((m, skipped))) => {
            println!("models: `cairn serve` would serve version {}", m.version);
            if let Some(e) = skipped {
                println!("models: passed over the newest: {e}");
            }
        }
        Ok(None) => println!("models: none saved yet"),
        Err(e) => println!("models: none can be served: {e}"),
    }
    healthy
}
