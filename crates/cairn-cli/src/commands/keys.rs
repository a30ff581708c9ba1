//! `cairn keys create|list|revoke`: API keys in the data directory, while the server is stopped (the
//! embedded store is single-process; a running server manages keys through `/v1/keys` instead).

use anyhow::Context as _;
use cairn_engine::{Engine, RateLimit, Scope};
use clap::{Args, Subcommand};

use super::Context;

#[derive(Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key and print its token (shown this once; only its SHA-256 digest is stored).
    Create {
        /// read (recommendations, item reads), ingest (+ events, items, users writes) or admin
        /// (everything: training, deletion, user data, keys, the audit log).
        #[arg(long)]
        scope: Scope,
        /// What the key is for, e.g. `backend`.
        #[arg(long)]
        name: String,
        /// The key's own rate limit, requests per second (0: not limited); without it the
        /// configured default (auth.rate_limit_per_sec) applies to the key.
        #[arg(long)]
        rate_limit_per_sec: Option<f64>,
        /// Requests the key may make at once (with --rate-limit-per-sec; by default that rate
        /// rounded up).
        #[arg(long, requires = "rate_limit_per_sec")]
        burst: Option<u32>,
    },
    /// List the keys (never their tokens).
    List,
    /// Revoke a key by id (`key_...`, see `cairn keys list`).
    Revoke { id: String },
}

pub fn run(ctx: &Context, args: KeysArgs) -> anyhow::Result<()> {
    let engine = open(ctx)?;
    match args.command {
        KeysCommand::Create {
            scope,
            name,
            rate_limit_per_sec,
            burst,
        } => {
            let limit = RateLimit::from_request(rate_limit_per_sec, burst)?;
            let created = engine.create_key_limited(&name, scope, limit)?;
            eprintln!(
                "created {} key {} ({}); the token below is shown only now, store it safely:",
                created.key.scope, created.key.id, created.key.name
            );
            println!("{}", created.token);
        }
        KeysCommand::List => {
            let keys = engine.list_keys();
            if keys.is_empty() {
                eprintln!(
                    "no API keys: the server answers without one, on loopback only; create one with \
                     `cairn keys create --scope admin --name ops`"
                );
            }
            for k in keys {
                let used = k.last_used_at.map_or_else(|| "never".to_string(), rfc3339);
                let limit = match k.rate_limit {
                    None => "default".to_string(),
                    Some(l) if l.per_sec == 0.0 => "none".to_string(),
                    Some(l) => format!("{}/s burst {}", l.per_sec, l.burst),
                };
                println!(
                    "{}\t{}\t{}\tcreated {}\tlast used {}\trate limit {}",
                    k.id,
                    k.scope,
                    k.name,
                    rfc3339(k.created_at),
                    used,
                    limit
                );
            }
        }
        KeysCommand::Revoke { id } => {
            let key = engine.revoke_key(&id)?;
            println!("revoked {} key {} ({})", key.scope, key.id, key.name);
        }
    }
    Ok(())
}

fn rfc3339(t: i64) -> String {
    cairn_core::Timestamp(t).to_rfc3339()
}

fn open(ctx: &Context) -> anyhow::Result<Engine> {
    ctx.open_engine().context(
        "`cairn keys` works on the data directory while the server is stopped; against a running \
         server use its API (POST/GET /v1/keys, DELETE /v1/keys/{id}) with an admin key",
    )
}
