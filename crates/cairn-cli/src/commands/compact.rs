//! `cairn compact`: rewrite the store file from its live rows (server stopped), so that erased
//! users and expired events leave no bytes in it. A running server does the same on
//! `POST /v1/compact`, and by itself at a clean stop after an erasure.

use anyhow::Context as _;
use clap::Args;

use super::Context;

#[derive(Args)]
pub struct CompactArgs {}

pub fn run(ctx: &Context, _args: CompactArgs) -> anyhow::Result<()> {
    let engine = ctx.open_engine()?;
    let c = engine.compact().with_context(|| {
        format!(
            "compacting the store in {}",
            engine.config().data_dir.display()
        )
    })?;
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "bytes_before": c.bytes_before,
            "bytes_after": c.bytes_after,
            "items": c.items,
            "users": c.users,
            "events": c.events,
        }))?
    );
    Ok(())
}
