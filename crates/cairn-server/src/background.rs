//! Training outside requests: once at startup when events wait for a first model, and periodically
//! when new events arrived since the served model.

use std::sync::Arc;
use std::time::Duration;

use cairn_engine::{Engine, EngineError, Progress, TrainReport, TRAINING_STAGE};
use tokio::task::JoinHandle;
use tokio::time::{interval_at, Instant, MissedTickBehavior};

/// Trains when there are events the served model has not seen (or no model but some events).
/// `Ok(None)` when there was nothing new.
pub fn train_if_new_events(engine: &Engine) -> Result<Option<TrainReport>, EngineError> {
    train_if_new_events_with(engine, "scheduler", &|_: &str, _: usize, _: usize| {})
}

/// [`train_if_new_events`], telling `progress` how the training advances.
fn train_if_new_events_with(
    engine: &Engine,
    who: &str,
    progress: &dyn Progress,
) -> Result<Option<TrainReport>, EngineError> {
    if !engine.has_new_events()? {
        return Ok(None);
    }
    engine.train_by(who, progress).map(Some)
}

/// Whether the store holds any event (read on the blocking pool); false when that cannot be read.
pub async fn has_events(engine: &Arc<Engine>) -> bool {
    let engine = Arc::clone(engine);
    match tokio::task::spawn_blocking(move || engine.stats()).await {
        Ok(Ok(stats)) => stats.events > 0,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot read store statistics");
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "reading store statistics panicked");
            false
        }
    }
}

/// Logs a training's progress: each of the pipeline's steps (with the engine's percent) and each
/// piece of work as it starts (`ranker cut 1 of 3: refit models`, `item-knn`, `content`, ...) at
/// info; model iterations at debug.
struct LogProgress<'a> {
    engine: &'a Engine,
    why: &'static str,
}

impl Progress for LogProgress<'_> {
    fn update(&self, stage: &str, done: usize, total: usize) {
        let percent = self.engine.training_status().map_or(0, |s| s.percent);
        if stage == TRAINING_STAGE {
            tracing::info!(
                why = self.why,
                percent,
                "training: {done} of {total} steps done"
            );
        } else if total == 1 && done == 0 {
            tracing::info!(why = self.why, percent, "training: {stage}");
        } else if total > 1 {
            tracing::debug!(why = self.why, percent, "training: {stage} {done}/{total}");
        }
    }
}

/// Runs [`train_if_new_events`] on the blocking pool, logging its progress and its outcome; never
/// fails.
pub async fn train_in_background(engine: Arc<Engine>, why: &'static str) {
    let train = move || {
        train_if_new_events_with(
            &engine,
            why,
            &LogProgress {
                engine: &engine,
                why,
            },
        )
    };
    match tokio::task::spawn_blocking(train).await {
        Ok(Ok(Some(report))) => tracing::info!(
            why,
            version = %report.version,
            seconds = report.seconds,
            serving = report.serving,
            refused = %report.refused.join("; "),
            "background training done"
        ),
        Ok(Ok(None)) => tracing::debug!(why, "no new events; training skipped"),
        Ok(Err(EngineError::TrainingBusy)) => {
            tracing::debug!(why, "a training is already running; skipped")
        }
        Ok(Err(EngineError::TrainerElsewhere)) => {
            tracing::debug!(why, "another replica holds the trainer lease; skipped")
        }
        Ok(Err(e)) => tracing::warn!(why, error = %e, "background training failed"),
        Err(e) => tracing::error!(why, error = %e, "background training panicked"),
    }
}

/// Every `every`, retrains when new events arrived. The first run is one period after the start.
/// A zero period disables retraining (the task ends at once). Must be called inside a tokio runtime;
/// abort the returned handle to stop it.
pub fn spawn_retrainer(engine: Arc<Engine>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        if every.is_zero() {
            tracing::info!("background retraining disabled");
            return;
        }
        let mut ticker = interval_at(Instant::now() + every, every);
        // A long training must not be followed by a burst of catch-up runs.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            train_in_background(Arc::clone(&engine), "periodic").await;
        }
    })
}

/// While the store refuses writes (a full or failing disk), tries a small test write every
/// `every` on the blocking pool, so writes and `/readyz` come back by themselves once the disk
/// takes writes again. Logs each change of state. Abort the handle to stop it.
pub fn spawn_storage_probe(engine: Arc<Engine>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every.max(Duration::from_millis(100)));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut was_failing = false;
        loop {
            ticker.tick().await;
            let failure = match engine.store_write_failure() {
                None => None,
                Some(failure) => {
                    let engine = Arc::clone(&engine);
                    tokio::task::spawn_blocking(move || engine.retry_store_writes())
                        .await
                        .unwrap_or(Some(failure))
                }
            };
            match (&failure, was_failing) {
                (Some(f), false) => tracing::error!(
                    kind = ?f.kind,
                    error = %f.message,
                    "the disk refuses the store's writes: writes are answered 507/503 and \
                     /readyz 503 until a test write works; reads are served"
                ),
                (None, true) => tracing::info!("the store takes writes again"),
                _ => {}
            }
            was_failing = failure.is_some();
        }
    })
}

/// Every `privacy.retention_check_secs`, deletes the events older than `privacy.retention_days`
/// (the first pass at once); ends at once when retention is off. Abort the handle to stop it.
pub fn spawn_retention(engine: Arc<Engine>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let privacy = &engine.config().privacy;
        if privacy.retention_days == 0 {
            return;
        }
        let every = Duration::from_secs(privacy.retention_check_secs.max(1));
        let mut ticker = interval_at(Instant::now(), every);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let e = Arc::clone(&engine);
            let pass = tokio::task::spawn_blocking(move || e.expire_events(cairn_core::now_unix()));
            match pass.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "deleting expired events failed"),
                Err(e) => tracing::error!(error = %e, "deleting expired events panicked"),
            }
        }
    })
}

/// Closes drift windows on time (a quiet server still gets its windows and gauges) and, when
/// `drift.retrain_on_alarm` is on and a closed window raised an input alarm, starts a training
/// at once: the periodic retrainer would otherwise wait up to `train.interval_secs`. The training
/// still runs only when events arrived since the served model (`train_if_new_events`), so an alarm
/// that persists does not retrain on the same data again. Ticks every second, or every window when
/// shorter. Ends at once when drift monitoring is off.
pub fn spawn_drift_ticker(engine: Arc<Engine>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let drift = &engine.config().drift;
        if !drift.enabled {
            return;
        }
        let every = Duration::from_secs(drift.window_secs).min(Duration::from_secs(1));
        let mut ticker = interval_at(Instant::now() + every, every);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let e = Arc::clone(&engine);
            let due = tokio::task::spawn_blocking(move || e.drift_tick())
                .await
                .unwrap_or(false);
            if due {
                tracing::info!("drift alarm: training now (drift.retrain_on_alarm)");
                tokio::spawn(train_in_background(Arc::clone(&engine), "drift"));
            }
        }
    })
}

/// Every `every`, serves the champion the alias history names if another process moved it
/// (`cairn models promote|rollback` on this models folder, or another replica sharing it), and
/// asks for the trainer lease (so that over PostgreSQL a replica takes it over soon after its
/// holder died; a training asks again anyway). A zero period disables it.
pub fn spawn_champion_watcher(engine: Arc<Engine>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        if every.is_zero() {
            return;
        }
        let mut ticker = interval_at(Instant::now() + every, every);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let engine = Arc::clone(&engine);
            let sync = move || {
                if let Err(e) = engine.take_trainer_lease() {
                    tracing::warn!(error = %e, "cannot ask for the trainer lease");
                }
                engine.sync_champion()
            };
            match tokio::task::spawn_blocking(sync).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot serve the champion the model history names")
                }
                Err(e) => tracing::error!(error = %e, "the champion watcher panicked"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use cairn_core::{Event, Item};
    use cairn_engine::Config;

    use super::*;

    #[test]
    fn trains_only_when_events_are_new() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let engine = Engine::open(config).unwrap();
        assert!(
            train_if_new_events(&engine).unwrap().is_none(),
            "no events, no model"
        );
        engine
            .put_items(vec![Item::new("a"), Item::new("b")])
            .unwrap();
        engine
            .add_events(vec![
                Event::new("u", "a", "view"),
                Event::new("u", "b", "view"),
            ])
            .unwrap();
        let first = train_if_new_events(&engine).unwrap();
        assert!(first.is_some());
        assert!(
            train_if_new_events(&engine).unwrap().is_none(),
            "nothing new since"
        );
        engine
            .add_events(vec![Event::new("v", "a", "view")])
            .unwrap();
        assert!(train_if_new_events(&engine).unwrap().is_some());
    }
}
