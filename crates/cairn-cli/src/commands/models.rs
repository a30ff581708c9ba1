//! `cairn models list|show|history|promote|rollback|pin|unpin`: the model registry of the data
//! directory. It reads and appends the registry's files in `data_dir/models` without opening the
//! store, so it works while `cairn serve` runs; the server notices a moved champion within
//! `models.watch_interval_ms` (it watches the alias history) and serves it.

use anyhow::Context as _;
use cairn_engine::registry::{Alias, HistoryEntry, Registry, VersionStatus, VersionView};
use cairn_engine::ModelSet;
use clap::{Args, Subcommand};

use super::Context;

#[derive(Args)]
pub struct ModelsArgs {
    #[command(subcommand)]
    command: ModelsCommand,
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Every version, oldest first: status, aliases, NDCG@k on the held-out slice, gate verdict.
    List,
    /// Everything recorded about one version (JSON).
    Show { version: String },
    /// The alias history: who moved which alias when, and why.
    History,
    /// Make a version the champion (it serves) or, with --challenger, the challenger.
    Promote {
        version: String,
        /// Why; recorded in the history.
        #[arg(long)]
        reason: String,
        #[arg(long)]
        challenger: bool,
    },
    /// Move the champion back to the one promoted before it.
    Rollback {
        /// Why; recorded in the history.
        #[arg(long)]
        reason: String,
    },
    /// Keep a version's model file whatever pruning would do.
    Pin {
        version: String,
        #[arg(long)]
        reason: String,
    },
    /// Let pruning delete a pinned version again (unless it holds an alias).
    Unpin {
        version: String,
        #[arg(long)]
        reason: String,
    },
}

pub fn run(ctx: &Context, args: ModelsArgs) -> anyhow::Result<()> {
    let config = ctx.config()?;
    let dir = config.models_dir();
    let registry = Registry::new(&dir);
    let context = || format!("the model registry in {}", dir.display());
    if let ModelsCommand::Promote { reason, .. }
    | ModelsCommand::Rollback { reason }
    | ModelsCommand::Pin { reason, .. }
    | ModelsCommand::Unpin { reason, .. } = &args.command
    {
        if reason.trim().is_empty() {
            anyhow::bail!("--reason must say why; it is recorded in the model history");
        }
    }
    match args.command {
        ModelsCommand::List => {
            let versions = registry.list().with_context(context)?;
            if versions.is_empty() {
                eprintln!(
                    "no model versions in {}; train one with `cairn train`",
                    dir.display()
                );
            }
            for v in versions {
                println!("{}", line(&v));
            }
        }
        ModelsCommand::Show { version } => {
            let v = registry.show(&version).with_context(context)?;
            println!("{}", serde_json::to_string_pretty(&v.meta)?);
            println!(
                "aliases: {}{}{}; model file {}",
                if v.champion { "champion " } else { "" },
                if v.challenger { "challenger " } else { "" },
                if v.pinned { "(pinned)" } else { "" },
                if v.artifact_present { "kept" } else { "pruned" }
            );
        }
        ModelsCommand::History => {
            for e in registry.history().with_context(context)? {
                println!("{}", history_line(&e));
            }
        }
        ModelsCommand::Promote {
            version,
            reason,
            challenger,
        } => {
            let alias = if challenger {
                Alias::Challenger
            } else {
                Alias::Champion
            };
            let meta = registry.check_servable(&version).with_context(context)?;
            // A file that does not load must not become the champion.
            let path = dir.join(&meta.file);
            ModelSet::load(&path)?;
            let entry = registry
                .promote(&version, alias, "cli", &reason)
                .with_context(context)?;
            if alias == Alias::Champion {
                ModelSet::point_latest(&path)?;
            }
            println!("{}", history_line(&entry));
            eprintln!("{}", pickup_note(&config));
        }
        ModelsCommand::Rollback { reason } => {
            let entry = registry.rollback("cli", &reason).with_context(context)?;
            let meta = registry.check_servable(&entry.version)?;
            ModelSet::point_latest(&dir.join(&meta.file))?;
            println!("{}", history_line(&entry));
            eprintln!("{}", pickup_note(&config));
        }
        ModelsCommand::Pin { version, reason } => {
            let entry = registry
                .pin(&version, true, "cli", &reason)
                .with_context(context)?;
            println!("{}", history_line(&entry));
        }
        ModelsCommand::Unpin { version, reason } => {
            let entry = registry
                .pin(&version, false, "cli", &reason)
                .with_context(context)?;
            println!("{}", history_line(&entry));
        }
    }
    Ok(())
}

fn pickup_note(config: &cairn_engine::Config) -> String {
    match config.models.watch_interval_ms {
        0 => "a running `cairn serve` does not watch the history (models.watch_interval_ms = 0): \
              restart it to serve the new champion"
            .into(),
        ms => format!(
            "a running `cairn serve` on this data directory serves the new champion within {ms} ms \
             (models.watch_interval_ms); a stopped one serves it when it starts"
        ),
    }
}

fn line(v: &VersionView) -> String {
    let m = &v.meta;
    let status = match m.status {
        VersionStatus::Passed => "passed",
        VersionStatus::Refused => "REFUSED",
        VersionStatus::Adopted => "adopted",
    };
    let mut aliases = Vec::new();
    if v.champion {
        aliases.push("champion");
    }
    if v.challenger {
        aliases.push("challenger");
    }
    if v.pinned {
        aliases.push("pinned");
    }
    if !v.artifact_present {
        aliases.push("pruned");
    }
    let ndcg = m
        .metrics
        .as_ref()
        .and_then(|x| x.ndcg.map(|n| (x.k, n)))
        .map_or_else(
            || "ndcg -".to_string(),
            |(k, n)| {
                format!(
                    "ndcg@{k} {:.4} [{:.4}, {:.4}] n={}",
                    n.mean, n.ci_low, n.ci_high, n.n
                )
            },
        );
    let reasons = m
        .gate
        .as_ref()
        .filter(|_| m.status == VersionStatus::Refused)
        .map(|g| format!("\t{}", g.reasons().join("; ")))
        .unwrap_or_default();
    format!(
        "{}\t{status}\t{}\t{ndcg}\tevents {}\t{} bytes{reasons}",
        m.version,
        if aliases.is_empty() {
            "-".to_string()
        } else {
            aliases.join(",")
        },
        m.data.as_ref().map_or(0, |d| d.events),
        m.artifact_bytes
    )
}

fn history_line(e: &HistoryEntry) -> String {
    let action = serde_json::to_value(e.action)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    format!(
        "#{}\t{}\t{}\t{action} {}{}\t{}",
        e.seq,
        e.at,
        e.who,
        e.version,
        e.previous
            .as_ref()
            .map(|p| format!(" (was {p})"))
            .unwrap_or_default(),
        e.reason
    )
}
