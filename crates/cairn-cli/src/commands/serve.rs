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
    if let Some(app) = &ctx.app {
        anyhow::bail!(
            "serve takes no --app (it serves the default app and every [apps.NAME] table, `{app}` \
             at /v1/apps/{app}/); run it without --app"
        );
    }
    let mut config = ctx.deployment_config()?;
    if let Some(host) = args.host {
        config.server.host = host;
    }
    if let Some(port) = args.port {
        config.server.port = port;
    }
    config.auth.insecure |= args.insecure;
    let data_dir = config.data_dir.clone();
    let apps = cairn_engine::Engine::open_apps(&config)
        .with_context(|| format!("opening the apps under {}", data_dir.join("apps").display()))?;
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
    let apps = apps
        .into_iter()
        .map(|(name, engine)| (name, Arc::new(engine)))
        .collect();
    serve(Arc::new(engine), apps)
}

/// Runs the server until Ctrl-C or SIGTERM, with `apps` served beside the default app at
/// `/v1/apps/{name}/`, each retrained, expired and compacted on its own.
fn serve(
    engine: Arc<cairn_engine::Engine>,
    apps: Vec<(String, Arc<cairn_engine::Engine>)>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let kept: Vec<_> = std::iter::once(Arc::clone(&engine))
        .chain(apps.iter().map(|(_, e)| Arc::clone(e)))
        .collect();
    let everyone = kept.clone();
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
        // Each app retrains on its own schedule and expires its own events.
        let mut tasks = Vec::new();
        for e in &everyone {
            let every = Duration::from_secs(e.config().train.interval_secs);
            tasks.push(cairn_server::spawn_retrainer(Arc::clone(e), every));
            tasks.push(cairn_server::spawn_retention(Arc::clone(e)));
        }
        cairn_server::serve_apps(
            Arc::clone(&engine),
            apps,
            listener,
            cairn_server::shutdown_signal(),
        )
        .await?;
        for task in tasks {
            task.abort();
        }
        anyhow::Ok(())
    })?;
    // A training runs on a blocking thread, which dropping the runtime would wait for; stop
    // without it (the model file is written atomically, so an abandoned training leaves none).
    runtime.shutdown_timeout(Duration::from_millis(500));
    // Erased or expired data may still sit in the store file's free pages: a clean stop rewrites
    // the file so that its bytes leave the disk too.
    for engine in kept {
        if engine.compaction_due() {
            let dir = engine.config().data_dir.display().to_string();
            match engine.compact() {
                Ok(c) => eprintln!(
                    "store {dir} compacted after erasures: {} -> {} bytes",
                    c.bytes_before, c.bytes_after
                ),
                Err(e) => eprintln!("compacting the store {dir} after erasures failed: {e}"),
            }
        }
    }
    Ok(())
}
