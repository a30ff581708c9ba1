//! `cairn demo`: fills the data directory with a generated demo shop (see `cairn_import::demo`) and
//! trains on it, so that `cairn serve` has something to recommend at once.

use anyhow::{bail, Context as _};
use cairn_engine::Engine;
use cairn_import::demo::{generate, DemoOptions};
use clap::Args;

use super::Context;

#[derive(Args)]
pub struct DemoArgs {
    /// Number of users.
    #[arg(long, default_value_t = 1000)]
    users: usize,
    /// Number of catalog items.
    #[arg(long, default_value_t = 2000)]
    items: usize,
    /// Number of events, spread over the last 60 days.
    #[arg(long, default_value_t = 50_000)]
    events: usize,
    /// Seed of the generator: the same seed gives the same shop.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Add the demo even if the data directory already holds events.
    #[arg(long)]
    force: bool,
}

/// What [`load_demo`] stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoSummary {
    pub items: usize,
    pub users: usize,
    pub events: usize,
    /// Events already present from an earlier load of the same seed.
    pub duplicates: usize,
}

/// Records per atomic write.
const BATCH: usize = 10_000;

/// Generates the demo shop and stores it through the engine. Events carry ids derived from the seed,
/// so loading the same demo twice stores its events once. Does not train.
pub fn load_demo(engine: &Engine, opts: &DemoOptions) -> anyhow::Result<DemoSummary> {
    let data = generate(opts);
    let mut summary = DemoSummary {
        items: data.items.len(),
        users: data.users.len(),
        events: 0,
        duplicates: 0,
    };
    for chunk in data.items.chunks(BATCH) {
        engine
            .put_items(chunk.to_vec())
            .context("storing demo items")?;
    }
    for chunk in data.users.chunks(BATCH) {
        engine
            .put_users(chunk.to_vec())
            .context("storing demo users")?;
    }
    for chunk in data.events.chunks(BATCH) {
        let outcome = engine
            .add_events(chunk.to_vec())
            .context("storing demo events")?;
        summary.events += outcome.stored;
        summary.duplicates += outcome.duplicates;
    }
    Ok(summary)
}

/// [`load_demo`] when the store holds no events yet (the case of a first `serve --demo`); `None`
/// when it already holds some, which are then left alone.
pub fn load_demo_if_empty(
    engine: &Engine,
    opts: &DemoOptions,
) -> anyhow::Result<Option<DemoSummary>> {
    if engine.stats()?.events > 0 {
        return Ok(None);
    }
    load_demo(engine, opts).map(Some)
}

pub fn run(ctx: &Context, args: DemoArgs) -> anyhow::Result<()> {
    let engine = ctx.open_engine()?;
    let opts = DemoOptions {
        users: args.users,
        items: args.items,
        events: args.events,
        seed: args.seed,
        ..DemoOptions::default()
    };
    let loaded = if args.force {
        Some(load_demo(&engine, &opts)?)
    } else {
        load_demo_if_empty(&engine, &opts)?
    };
    let Some(summary) = loaded else {
        bail!(
            "the data directory {} already holds {} events; pass --force to add the demo to them, \
             or use an empty --data-dir",
            engine.config().data_dir.display(),
            engine.stats()?.events
        );
    };
    println!(
        "demo shop stored in {}: {} items, {} users, {} events ({} duplicates)",
        engine.config().data_dir.display(),
        summary.items,
        summary.users,
        summary.events,
        summary.duplicates
    );
    let progress = crate::progress::Training::new(&engine);
    let report = engine.train_by("cli", &progress);
    progress.finish();
    let report = report.context("training on the demo data")?;
    println!(
        "trained model {} on {} users, {} items, {} interactions in {:.1}s",
        report.version, report.users, report.items, report.interactions, report.seconds
    );
    Ok(())
}
