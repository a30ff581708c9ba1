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
    /// Fill an empty data directory with the generated demo shop before serving (the first model
    /// then trains in the background while the server answers).
    #[arg(long)]
    demo: bool,
    /// Serve a non-loopback address although no API key exists, open to anyone who can reach it
    /// (sets `auth.insecure`). Without it, such a start is refused.
    #[arg(long)]
    insecure: bool,
}

pub fn run(ctx: &Context, args: ServeArgs) -> anyhow::Result<()> {
    let mut config = ctx.config()?;
    if let Some(host) = args.host {
        config.server.host = host;
    }
    if let Some(port) = args.port {
        config.server.port = port;
    }
    config.auth.insecure |= args.insecure;
    let data_dir = config.data_dir.clone();
    let engine = cairn_engine::Engine::open(config)
        .with_context(|| format!("opening the data directory {}", data_dir.display()))?;
    if args.demo {
        let opts = cairn_import::demo::DemoOptions::default();
        match super::demo::load_demo_if_empty(&engine, &opts)? {
            Some(s) => {
                eprintln!(
                    "demo shop stored in {}: {} items, {} users, {} events",
                    data_dir.display(),
                    s.items,
                    s.users,
                    s.events
                );
                // No training here: the server starts at once and trains its first model in the
                // background (`/readyz` says how far it is).
                eprintln!("the first model trains in the background; GET /readyz says how far");
            }
            None => eprintln!(
                "{} already holds events; serving them (the demo is only loaded into an empty store)",
                data_dir.display()
            ),
        }
    }
    serve(Arc::new(engine))
}

/// Runs the server until Ctrl-C or SIGTERM.
pub fn serve(engine: Arc<cairn_engine::Engine>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let kept = Arc::clone(&engine);
    runtime.block_on(async move {
        let server = &engine.config().server;
        let address = format!("{}:{}", server.host, server.port);
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        let bound = listener.local_addr()?;
        // Printed on stdout, one line, so scripts and tests can find the port when it was 0.
        let scheme = if server.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        println!("cairn listening on {scheme}://{bound}");
        let every = Duration::from_secs(engine.config().train.interval_secs);
        let retrainer = cairn_server::spawn_retrainer(Arc::clone(&engine), every);
        let retention = cairn_server::spawn_retention(Arc::clone(&engine));
        cairn_server::serve(
            Arc::clone(&engine),
            listener,
            cairn_server::shutdown_signal(),
        )
        .await?;
        retrainer.abort();
        retention.abort();
        anyhow::Ok(())
    })?;
    // A training runs on a blocking thread, which dropping the runtime would wait for; stop
    // without it (the model file is written atomically, so an abandoned training leaves none).
    runtime.shutdown_timeout(Duration::from_millis(500));
    // Erased or expired data may still sit in the store file's free pages: a clean stop rewrites
    // the file so that its bytes leave the disk too.
    if kept.compaction_due() {
        match kept.compact() {
            Ok(c) => eprintln!(
                "store compacted after erasures: {} -> {} bytes",
                c.bytes_before, c.bytes_after
            ),
            Err(e) => eprintln!("compacting the store after erasures failed: {e}"),
        }
    }
    Ok(())
}
