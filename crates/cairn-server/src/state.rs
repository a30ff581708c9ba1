//! What every handler shares, and the one way handlers call the engine.

use std::sync::Arc;

use cairn_engine::{Engine, EngineError};

use crate::auth::RateLimiter;
use crate::error::ApiError;
use crate::metrics::HttpMetrics;
use crate::scoring::ScoringPool;

#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub metrics: Arc<HttpMetrics>,
    pub scoring: Arc<ScoringPool>,
    /// Whether requests are answered without a key while no key exists (loopback, or `insecure`).
    pub keyless_open: bool,
    /// The Redis stream consumer's figures, when `stream.redis_url` is set.
    pub stream: Option<Arc<crate::stream::StreamStats>>,
    /// Per-key request limits: a key's own, else `auth.rate_limit_per_sec` (0: none).
    pub rate_limiter: Arc<RateLimiter>,
}

impl AppState {
    /// Runs an engine operation on tokio's blocking pool.
    ///
    /// Why every call goes there: engine operations read and write the embedded store, and writes
    /// fsync; run on an async worker, one slow disk operation would stall every other request on that
    /// worker. The hop costs microseconds, far below a store access, so there is no point in sorting
    /// calls into "quick enough" and "not".
    pub async fn run<T, F>(&self, op: F) -> Result<T, ApiError>
    where
        F: FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
        T: Send + 'static,
    {
        let engine = Arc::clone(&self.engine);
        match tokio::task::spawn_blocking(move || op(&engine)).await {
            Ok(result) => result.map_err(ApiError::from),
            Err(join) => Err(ApiError::internal(format!(
                "the operation did not complete ({join}); nothing was acknowledged"
            ))),
        }
    }

    /// Runs a read-only scoring operation (recommendations, similar items, lists) on the scoring
    /// threads, in arrival order (see [`ScoringPool`]).
    pub async fn score<T, F>(&self, op: F) -> Result<T, ApiError>
    where
        F: FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
        T: Send + 'static,
    {
        let engine = Arc::clone(&self.engine);
        self.scoring.run(move || op(&engine)).await
    }
}
