//! The threads that compute recommendations, first come first served.
//!
//! Why not tokio's blocking pool, as for store operations: that pool starts a thread per waiting
//! call (up to 512), so under load dozens of CPU-bound scorings share the cores by time slices and
//! every one of them finishes late: at 64 concurrent clients the 99th percentile was 20× the median.
//! A queue in front of as many threads as there are cores finishes each request in one go, in
//! arrival order, so a request waits only for those ahead of it; and a request whose caller has
//! already given up (timeout, closed connection) is dropped from the queue without being computed.

use cairn_engine::EngineError;
use tokio::sync::oneshot;

use crate::error::ApiError;

pub struct ScoringPool {
    pool: rayon::ThreadPool,
}

impl ScoringPool {
    /// `threads` 0 means one per core.
    pub fn new(threads: usize) -> Result<Self, String> {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("cairn-scoring-{i}"))
            // Without a handler a panic in a spawned job aborts the process; with one, the job's
            // sender is dropped and its request is answered 500.
            .panic_handler(|_| tracing::error!("a scoring job panicked"))
            .build()
            .map_err(|e| format!("starting {threads} scoring threads: {e}"))?;
        Ok(ScoringPool { pool })
    }

    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Runs `op` on the next free scoring thread, after every call queued before it.
    pub async fn run<T, F>(&self, op: F) -> Result<T, ApiError>
    where
        F: FnOnce() -> Result<T, EngineError> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.pool.spawn_fifo(move || {
            if !tx.is_closed() {
                let _ = tx.send(op());
            }
        });
        match rx.await {
            Ok(result) => result.map_err(ApiError::from),
            Err(_) => Err(ApiError::internal(
                "the recommendation could not be computed (the scoring job failed; see the server log)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc, Mutex};
    use std::time::Duration;

    #[test]
    fn zero_threads_means_one_per_core() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(ScoringPool::new(0).unwrap().threads(), cores);
        assert_eq!(ScoringPool::new(3).unwrap().threads(), 3);
    }

    /// Occupies the pool's only thread until the returned sender is dropped or sent to.
    fn block(pool: &ScoringPool) -> mpsc::Sender<()> {
        let (release, wait) = mpsc::channel::<()>();
        let (started, running) = mpsc::channel();
        pool.pool.spawn_fifo(move || {
            started.send(()).unwrap();
            let _ = wait.recv();
        });
        running.recv().unwrap();
        release
    }

    #[tokio::test]
    async fn queued_calls_run_in_arrival_order() {
        let pool = Arc::new(ScoringPool::new(1).unwrap());
        let release = block(&pool);
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut calls = Vec::new();
        for k in 0..5 {
            let (pool, order) = (pool.clone(), order.clone());
            calls.push(tokio::spawn(async move {
                pool.run(move || {
                    order.lock().unwrap().push(k);
                    Ok(k)
                })
                .await
            }));
            // Each call reaches the queue before the next is made.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        release.send(()).unwrap();
        for (k, call) in calls.into_iter().enumerate() {
            assert_eq!(call.await.unwrap().unwrap(), k);
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn a_call_abandoned_while_queued_is_never_computed() {
        let pool = ScoringPool::new(1).unwrap();
        let release = block(&pool);
        let computed = Arc::new(AtomicBool::new(false));
        let flag = computed.clone();
        let abandoned = tokio::time::timeout(
            Duration::from_millis(50),
            pool.run(move || {
                flag.store(true, Ordering::SeqCst);
                Ok(())
            }),
        )
        .await;
        assert!(abandoned.is_err(), "the call should still be queued");
        release.send(()).unwrap();
        // A call queued after it completes only once the abandoned one was dequeued.
        pool.run(|| Ok(())).await.unwrap();
        assert!(!computed.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_panicking_call_is_an_internal_error_and_the_pool_goes_on() {
        let pool = ScoringPool::new(1).unwrap();
        let err = pool
            .run(|| -> Result<(), EngineError> { panic!("boom") })
            .await
            .unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(pool.run(|| Ok(7)).await.unwrap(), 7);
    }
}
