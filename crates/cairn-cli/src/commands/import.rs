//! `cairn import`. (Being written; this placeholder only keeps the workspace compiling.)

use clap::Args;

use super::Context;

#[derive(Args)]
pub struct ImportArgs {}

pub fn run(_ctx: &Context, _args: ImportArgs) -> anyhow::Result<()> {
    anyhow::bail!("`cairn import` is not available yet")
}
