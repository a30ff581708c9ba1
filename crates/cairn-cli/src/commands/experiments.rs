//! `cairn experiments list|show|results|stop|ship`: the online experiments of a running server,
//! over its HTTP API (the server holds the experiments' state in memory, so the files of
//! `data_dir/experiments` are not changed behind its back). Prints the server's JSON answer.

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::Context;

#[derive(Args)]
pub struct ExperimentsArgs {
    /// The running server, e.g. http://127.0.0.1:8080.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An API key (read for list, show and results; admin for stop and ship), if the server has
    /// keys.
    #[arg(long, env = "CAIRN_API_KEY", hide_env_values = true)]
    key: Option<String>,
    #[command(subcommand)]
    command: ExperimentsCommand,
}

#[derive(Subcommand)]
enum ExperimentsCommand {
    /// Every experiment, in creation order.
    List,
    /// One experiment's definition and state.
    Show { id: String },
    /// Counts per variant and position, and the analysis (intervals, SRM, decision).
    Results { id: String },
    /// Stop an experiment: its users get the default lists again.
    Stop {
        id: String,
        /// Why; recorded in the experiments' history.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Ship a variant: promote its model version, make its placement the default.
    Ship {
        id: String,
        #[arg(long)]
        variant: String,
        /// Why; recorded in the experiments' history and the model alias history.
        #[arg(long, default_value = "")]
        reason: String,
    },
}

pub fn run(_ctx: &Context, args: ExperimentsArgs) -> anyhow::Result<()> {
    let base = args.url.trim_end_matches('/');
    let (method, path, body) = match &args.command {
        ExperimentsCommand::List => ("GET", "/v1/experiments".to_string(), None),
        ExperimentsCommand::Show { id } => ("GET", format!("/v1/experiments/{id}"), None),
        ExperimentsCommand::Results { id } => {
            ("GET", format!("/v1/experiments/{id}/results"), None)
        }
        ExperimentsCommand::Stop { id, reason } => (
            "POST",
            format!("/v1/experiments/{id}/stop"),
            Some(json!({ "reason": reason })),
        ),
        ExperimentsCommand::Ship {
            id,
            variant,
            reason,
        } => (
            "POST",
            format!("/v1/experiments/{id}/ship"),
            Some(json!({ "variant": variant, "reason": reason })),
        ),
    };
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(120))
        .build()?;
    let url = format!("{base}{path}");
    let mut request = match body {
        Some(b) => client.post(&url).json(&b),
        None if method == "GET" => client.get(&url),
        None => client.post(&url),
    };
    if let Some(key) = &args.key {
        request = request.bearer_auth(key);
    }
    let response = request.send().with_context(|| format!("{method} {url}"))?;
    let status = response.status();
    let body: Value = response
        .json()
        .with_context(|| format!("reading the answer of {method} {url}"))?;
    if !status.is_success() {
        anyhow::bail!("{method} {url} failed ({status}): {body}");
    }
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(())
}
