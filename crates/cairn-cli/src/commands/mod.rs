//! One module per subcommand. Shared here: the context every command gets (config and data directory)
//! and logging setup.

pub mod backup;
pub mod check;
pub mod compact;
pub mod demo;
pub mod eval;
pub mod experiments;
pub mod export;
pub mod health;
pub mod import;
pub mod import_factors;
pub mod keys;
pub mod migrate;
pub mod models;
pub mod openapi;
pub mod pipeline_model;
pub mod serve;
pub mod train;
pub mod tune;

use std::path::PathBuf;

use anyhow::Context as _;
use cairn_engine::{Config, Engine};

pub struct Context {
    pub config_path: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    /// `--app`: the app to work on instead of the default one.
    pub app: Option<String>,
}

impl Context {
    /// The configuration: defaults, then the file, then `CAIRN_*` variables, then `--data-dir`;
    /// with `--app`, that app's configuration ([`Config::app`]).
    pub fn config(&self) -> anyhow::Result<Config> {
        let config = self.deployment_config()?;
        match &self.app {
            None => Ok(config),
            Some(app) => Ok(config.app(app)?),
        }
    }

    /// The whole deployment's configuration (the default app's, with every `[apps.NAME]`), as
    /// `serve` needs it: [`Context::config`] without `--app`.
    pub fn deployment_config(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config_path.as_deref())?;
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        Ok(config)
    }

    pub fn open_engine(&self) -> anyhow::Result<Engine> {
        let config = self.config()?;
        let dir = config.data_dir.clone();
        Engine::open(config)
            .with_context(|| format!("opening the data directory {}", dir.display()))
    }
}

pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("CAIRN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only on a terminal: a log redirected to a file or collected by a supervisor gets plain
    // text, not escape codes.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
