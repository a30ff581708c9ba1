//! `cairn serve`. (Being written; this placeholder only keeps the workspace compiling.)

use clap::Args;

use super::Context;

#[derive(Args)]
pub struct ServeArgs {}

pub fn run(_ctx: &Context, _args: ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("`cairn serve` is not available yet")
}
