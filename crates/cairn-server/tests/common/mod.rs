//! The harness every HTTP test file shares: the real server on 127.0.0.1:0 over an engine on a
//! temporary directory, on its own runtime thread, stopped when dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use cairn_core::{Event, Item};
use cairn_engine::{Config, Engine};

pub struct Running {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    dir: Option<tempfile::TempDir>,
}

impl Running {
    /// `configure` adjusts the default configuration; `prepare` writes to the engine before
    /// serving starts.
    #[allow(dead_code)] // Not every test file starts the default engine.
    pub fn start(configure: impl FnOnce(&mut Config), prepare: impl FnOnce(&Engine)) -> Running {
        Self::start_opened(
            configure,
            |c| Engine::open(c).expect("engine opens"),
            prepare,
        )
    }

    /// [`Running::start`], with the engine opened by `open` (e.g. over a store whose disk fails).
    pub fn start_opened(
        configure: impl FnOnce(&mut Config),
        open: impl FnOnce(Config) -> Engine,
        prepare: impl FnOnce(&Engine),
    ) -> Running {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        configure(&mut config);
        let engine = open(config);
        prepare(&engine);
        Self::launch(dir, Arc::new(engine), Vec::new())
    }

    /// [`Running::start`] with the apps `configure` declares (`[apps.NAME]`) served beside the
    /// default app at `/v1/apps/NAME/`, each over its own store under the data directory.
    #[allow(dead_code)] // Only the apps tests serve several apps.
    pub fn start_apps(configure: impl FnOnce(&mut Config)) -> Running {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        configure(&mut config);
        let apps = Engine::open_apps(&config)
            .expect("apps open")
            .into_iter()
            .map(|(name, engine)| (name, Arc::new(engine)))
            .collect();
        let engine = Arc::new(Engine::open(config).expect("engine opens"));
        Self::launch(dir, engine, apps)
    }

    fn launch(
        dir: tempfile::TempDir,
        engine: Arc<Engine>,
        apps: Vec<(String, Arc<Engine>)>,
    ) -> Running {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel::<SocketAddr>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                let shutdown = async move {
                    let _ = stop_rx.await;
                };
                cairn_server::serve_apps(engine, apps, listener, shutdown)
                    .await
                    .expect("serve");
            });
        });
        let addr = addr_rx.recv().expect("server started");
        Running {
            base: format!("http://{addr}"),
            stop: Some(stop_tx),
            thread: Some(thread),
            dir: Some(dir),
        }
    }

    /// Stops the server (closing the store) and hands over its data directory.
    #[allow(dead_code)] // Not every test file looks at the files a server left.
    pub fn stop(mut self) -> tempfile::TempDir {
        self.shutdown();
        self.dir.take().expect("data dir")
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("server thread");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A blocking HTTP client with a timeout long enough for a training request.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client")
}

/// 120 users in 3 taste groups of 20 items; each views 10 of their group's items.
#[allow(dead_code)] // not every test file seeds this shop
pub fn seed(engine: &Engine) {
    let items = (0..60).map(|i| Item::new(format!("i{i}"))).collect();
    engine.put_items(items).unwrap();
    let mut events = Vec::new();
    for u in 0..120usize {
        let g = u % 3;
        for n in 0..10usize {
            let item = g * 20 + (u * 7 + n * 3) % 20;
            events.push(
                Event::new(format!("u{u}"), format!("i{item}"), "view")
                    .at(1_700_000_000 + (u * 20 + n) as i64),
            );
        }
    }
    engine.add_events(events).unwrap();
}
