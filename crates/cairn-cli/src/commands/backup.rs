//! `cairn backup` and its inverse `cairn restore`. A backup folder is a data directory: the store
//! file and the served model.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use super::Context;

#[derive(Args)]
pub struct BackupArgs {
    /// An empty or new folder to write the backup into (on the server's machine with --url).
    dir: PathBuf,
    /// A running server to take the backup from (its store is locked while it serves), e.g.
    /// http://127.0.0.1:8080. Without it the data directory is opened directly.
    #[arg(long)]
    url: Option<String>,
    /// An admin API key for --url, if the server has keys.
    #[arg(long, env = "CAIRN_API_KEY", hide_env_values = true)]
    key: Option<String>,
}

#[derive(Args)]
pub struct RestoreArgs {
    /// A folder written by `cairn backup` (or `POST /v1/backup`).
    dir: PathBuf,
    /// Restore over a data directory that already holds a store, keeping the old file beside it
    /// as `cairn.redb.before-restore-<time>`.
    #[arg(long)]
    replace: bool,
}

pub fn backup(ctx: &Context, args: BackupArgs) -> anyhow::Result<()> {
    let summary = match &args.url {
        Some(url) => remote_backup(url, &args)?,
        None => {
            let engine = ctx.open_engine()?;
            let b = engine
                .backup(&args.dir)
                .with_context(|| format!("backing up into {}", args.dir.display()))?;
            serde_json::to_value(&b)?
        }
    };
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

fn remote_backup(url: &str, args: &BackupArgs) -> anyhow::Result<serde_json::Value> {
    let dir = std::path::absolute(&args.dir)
        .with_context(|| format!("resolving {}", args.dir.display()))?;
    let client = reqwest::blocking::Client::builder().timeout(None).build()?;
    let mut request = client
        .post(format!("{}/v1/backup", url.trim_end_matches('/')))
        .json(&serde_json::json!({ "path": dir.display().to_string() }));
    if let Some(key) = &args.key {
        request = request.bearer_auth(key);
    }
    let response = request
        .send()
        .with_context(|| format!("asking the server at {url} for a backup"))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .with_context(|| format!("reading the answer of {url}"))?;
    if !status.is_success() {
        anyhow::bail!("the server refused the backup ({status}): {body}");
    }
    Ok(body)
}

pub fn restore(ctx: &Context, args: RestoreArgs) -> anyhow::Result<()> {
    let data_dir = ctx.config()?.data_dir;
    let target =
        cairn_engine::backup::restore(&args.dir, &data_dir, args.replace, cairn_core::now_unix())
            .with_context(|| {
            format!(
                "restoring {} into {}",
                args.dir.display(),
                data_dir.display()
            )
        })?;
    println!("restored {} into {}", args.dir.display(), target.display());
    Ok(())
}
