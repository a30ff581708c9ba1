//! `cairn serve`: the HTTP API on the embedded store, retraining in the background.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use super::Context;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on (overrides `server.host`).
    #[arg(long)]
    host: Option<String>,
    /// Port to listen on; 0 picks a free one (overrides `server.port`).
    #[arg(long)]
    port: Option<u16>,
}

pub fn run(ctx: &Context, args: ServeArgs) -> anyhow::Result<()> {
    let mut config = ctx.config()?;
    if let Some(host) = args.host {
        config.server.host = host;
    }
    if let Some(port) = args.port {
        config.server.port = port;
    }
    let data_dir = config.data_dir.clone();
    let engine = cairn_engine::Engine::open(config)
        .with_context(|| format!("opening the data directory {}", data_dir.display()))?;
    serve(Arc::new(engine))
}

/// Runs the server until Ctrl-C or SIGTERM.
pub fn serve(engine: Arc<cairn_engine::Engine>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let server = &engine.config().server;
        let address = format!("{}:{}", server.host, server.port);
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        let bound = listener.local_addr()?;
        // Printed on stdout, one line, so scripts and tests can find the port when it was 0.
        println!("cairn listening on http://{bound}");
        let every = Duration::from_secs(engine.config().train.interval_secs);
        let retrainer = cairn_server::spawn_retrainer(Arc::clone(&engine), every);
        cairn_server::serve(engine, listener, cairn_server::shutdown_signal()).await?;
        retrainer.abort();
        Ok(())
    })
}
