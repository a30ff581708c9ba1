//! `cairn demo`. (Being written; this placeholder only keeps the workspace compiling.)

use clap::Args;

use super::Context;

#[derive(Args)]
pub struct DemoArgs {}

pub fn run(_ctx: &Context, _args: DemoArgs) -> anyhow::Result<()> {
    anyhow::bail!("`cairn demo` is not available yet")
}
