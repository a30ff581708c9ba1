//! `cairn eval`. (Being written; this placeholder only keeps the workspace compiling.)

use clap::Args;

use super::Context;

#[derive(Args)]
pub struct EvalArgs {}

pub fn run(_ctx: &Context, _args: EvalArgs) -> anyhow::Result<()> {
    anyhow::bail!("`cairn eval` is not available yet")
}
