//! `cairn`: one binary for the whole life cycle. Each subcommand lives in its own module under
//! `commands/`; this file only parses arguments and dispatches.

mod commands;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cairn",
    version,
    about = "Cairn: a self-hosted recommendation engine"
)]
struct Cli {
    /// Configuration file (TOML). Every key can also be set with `CAIRN_<SECTION>__<KEY>` variables.
    #[arg(long, short, global = true, env = "CAIRN_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (overrides the configuration's `data_dir`).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Work on this app (a `[apps.NAME]` table of the configuration: its own store, models and
    /// keys) instead of the default one. `serve` serves every app and takes no `--app`.
    #[arg(long, global = true)]
    app: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API from the latest model, retraining on a schedule.
    Serve(commands::serve::ServeArgs),
    /// Import items, users or events from CSV, JSONL or MovieLens files into the data directory.
    Import(commands::import::ImportArgs),
    /// Train the configured models on the stored events and save them for `serve`.
    Train(commands::train::TrainArgs),
    /// Fill the data directory with a generated demo shop (catalog, users, events).
    Demo(commands::demo::DemoArgs),
    /// Evaluate models offline on a split (protocols, metrics, reports).
    Eval(commands::eval::EvalArgs),
    /// Search a model's hyperparameters on a validation split and save the best setting.
    Tune(commands::tune::TuneArgs),
    /// Create, list and revoke API keys (while the server is stopped).
    Keys(commands::keys::KeysArgs),
    /// Print the HTTP API's OpenAPI document (JSON).
    Openapi(commands::openapi::OpenapiArgs),
    /// Read the data directory back (store file, saved models) and report damage; `--repair`
    /// salvages a damaged store file. Run with the server stopped.
    Check(commands::check::CheckArgs),
    /// Write a consistent copy of the data directory (store and served model) into an empty
    /// folder; with --url, from a running server.
    Backup(commands::backup::BackupArgs),
    /// Put a backup into the data directory (server stopped).
    Restore(commands::backup::RestoreArgs),
    /// Rewrite the store file from its live rows so that erased or expired data leaves no bytes
    /// in it (server stopped; a running server: POST /v1/compact).
    Compact(commands::compact::CompactArgs),
    /// Write every item, user or event as JSON lines that `cairn import` reads back.
    Export(commands::export::ExportArgs),
    /// List model versions, show one, promote one, roll back the champion (works while `cairn
    /// serve` runs: it picks the change up within `models.watch_interval_ms`).
    Models(commands::models::ModelsArgs),
    /// Move the stored data (items, users, events with their positions and ids, API keys, the
    /// audit log) between a data directory and PostgreSQL (`postgres://…`), either way (server
    /// stopped).
    Migrate(commands::migrate::MigrateArgs),
    /// Probe a running server (`/healthz` by default); exits 0 only on HTTP 200. For health checks.
    Health(commands::health::HealthArgs),
    /// List online experiments, show one, read its results, stop it or ship a variant (over the
    /// HTTP API of a running server).
    Experiments(commands::experiments::ExperimentsArgs),
}

/// mimalloc rather than glibc's malloc: under the soak (docs/reliability/soak.md), glibc's
/// per-thread arenas kept 3-5 times the live heap after each training and the server's RSS grew
/// with every one; mimalloc returns freed pages to the system.
/// Wrapped in a counter of the live heap (`cairn_heap_live_bytes`), which tells a leak (the live
/// heap grows) from pages the allocator keeps (only the RSS grows).
#[global_allocator]
static ALLOCATOR: cairn_engine::memory::CountingAllocator<mimalloc::MiMalloc> =
    cairn_engine::memory::CountingAllocator::new(mimalloc::MiMalloc);

extern "C" {
    /// mimalloc's own: frees what its heaps hold unused and returns those pages to the system
    /// (`force`: also the pages it would keep for reuse). Linked in by the `mimalloc` crate.
    fn mi_collect(force: bool);
}

fn release_mimalloc_pages() {
    // SAFETY: mi_collect takes no pointer; mimalloc makes it safe to call from any thread.
    unsafe { mi_collect(true) }
}

fn main() -> ExitCode {
    cairn_engine::memory::set_release_hook(release_mimalloc_pages);
    let cli = Cli::parse();
    commands::init_tracing();
    let ctx = commands::Context {
        config_path: cli.config,
        data_dir: cli.data_dir,
        app: cli.app,
    };
    let result = match cli.command {
        Command::Serve(a) => commands::serve::run(&ctx, a),
        Command::Import(a) => match commands::import::run(&ctx, a) {
            Ok(code) => return code,
            Err(e) => Err(e),
        },
        Command::Train(a) => commands::train::run(&ctx, a),
        Command::Models(a) => commands::models::run(&ctx, a),
        Command::Demo(a) => commands::demo::run(&ctx, a),
        Command::Eval(a) => commands::eval::run(&ctx, a),
        Command::Openapi(a) => commands::openapi::run(&ctx, a),
        Command::Tune(a) => commands::tune::run(&ctx, a),
        Command::Check(a) => commands::check::run(&ctx, a),
        Command::Backup(a) => commands::backup::backup(&ctx, a),
        Command::Restore(a) => commands::backup::restore(&ctx, a),
        Command::Compact(a) => commands::compact::run(&ctx, a),
        Command::Export(a) => commands::export::run(&ctx, a),
        Command::Keys(a) => commands::keys::run(&ctx, a),
        Command::Health(a) => commands::health::run(&ctx, a),
        Command::Experiments(a) => commands::experiments::run(&ctx, a),
        Command::Migrate(a) => commands::migrate::run(&ctx, a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
