//! `cairn train`. (Being written; this placeholder only keeps the workspace compiling.)

use clap::Args;

use super::Context;

#[derive(Args)]
pub struct TrainArgs {}

pub fn run(_ctx: &Context, _args: TrainArgs) -> anyhow::Result<()> {
    anyhow::bail!("`cairn train` is not available yet")
}
