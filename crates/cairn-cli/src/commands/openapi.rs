//! `cairn openapi`: print the API's OpenAPI document (the same one the server serves).

use clap::Args;

use super::Context;

#[derive(Args)]
pub struct OpenapiArgs {}

pub fn run(_ctx: &Context, _args: OpenapiArgs) -> anyhow::Result<()> {
    println!("{}", cairn_server::openapi().to_pretty_json()?);
    Ok(())
}
