//! How far a running training is: the engine records the pipeline's progress reports so that the
//! server can say it (`/readyz` while the first model trains) and forwards them to the caller's own
//! [`Progress`] (the CLI's lines).

use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::time::Instant;

use cairn_models::Progress;
use cairn_pipeline::fit::TRAINING_STAGE;

use crate::EngineError;

/// The stage the engine reports while it reads the event log, before the pipeline's steps.
pub(crate) const READING_EVENTS: &str = "reading events";

/// A snapshot of the running training's progress.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingStatus {
    /// Unix seconds when the training started.
    pub started_at: i64,
    /// Share of the training's steps done, 0 to 100. Steps are the pipeline's (one per cut of the
    /// log the ranker learns from, one for its trees, one for the served models), each advanced by
    /// its factor model's iterations; it never goes back.
    pub percent: u8,
    /// What runs now, as the pipeline names it, with its count when it has one (`als 7/15`), or
    /// the last piece of work that finished (`ranker cut 1 of 3: refit models: done`).
    pub stage: String,
}

/// The state behind [`TrainingStatus`], updated from progress reports.
#[derive(Debug)]
pub(crate) struct Tracker {
    started_at: i64,
    /// Steps done and total, from [`TRAINING_STAGE`] reports; total 0 before the pipeline starts.
    step: (usize, usize),
    /// The latest other stage: name, done, total.
    stage: Option<(String, usize, usize)>,
    percent: u8,
}

impl Tracker {
    pub(crate) fn new(started_at: i64) -> Self {
        Tracker {
            started_at,
            step: (0, 0),
            stage: None,
            percent: 0,
        }
    }

    fn update(&mut self, stage: &str, done: usize, total: usize) {
        if stage == TRAINING_STAGE {
            self.step = (done, total);
        } else {
            self.stage = Some((stage.to_string(), done, total));
        }
        let (step, steps) = self.step;
        if steps == 0 {
            return;
        }
        // Within a step, only stages with several units (iterations) say how far the step is;
        // one-unit stages mark where the step is, not how much of it is done.
        let within = match &self.stage {
            Some((_, done, total)) if *total > 1 && step < steps => {
                (*done).min(*total) as f64 / *total as f64
            }
            _ => 0.0,
        };
        let percent = ((step.min(steps) as f64 + within) / steps as f64 * 100.0).floor() as u8;
        self.percent = self.percent.max(percent.min(100));
    }

    pub(crate) fn status(&self) -> TrainingStatus {
        let stage = match &self.stage {
            Some((name, done, total)) if *total > 1 => format!("{name} {done}/{total}"),
            Some((name, done, total)) if done >= total => format!("{name}: done"),
            Some((name, _, _)) => name.clone(),
            None => "starting".to_string(),
        };
        TrainingStatus {
            started_at: self.started_at,
            percent: self.percent,
            stage,
        }
    }
}

/// Records every report in the engine's slot, then passes it on to the caller's observer; past
/// `deadline` (`train.max_secs`), abandons the training (see [`abandon_past_deadline`]).
pub(crate) struct Recorder<'a> {
    pub(crate) slot: &'a Mutex<Option<Tracker>>,
    pub(crate) observer: &'a dyn Progress,
    pub(crate) deadline: Option<Instant>,
}

impl Recorder<'_> {
    /// Past the deadline, unwinds out of the training with [`DeadlinePassed`].
    pub(crate) fn check_deadline(&self) {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            // `resume_unwind` rather than `panic!`: no panic hook runs, so nothing is printed.
            std::panic::resume_unwind(Box::new(DeadlinePassed));
        }
    }
}

impl Progress for Recorder<'_> {
    fn update(&self, stage: &str, done: usize, total: usize) {
        if let Some(tracker) = self.slot.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            tracker.update(stage, done, total);
        }
        self.observer.update(stage, done, total);
        self.check_deadline();
    }
}

/// What a training past its deadline unwinds with.
struct DeadlinePassed;

/// Runs `train`, turning the unwind of a [`Recorder`] past its deadline into
/// [`EngineError::TrainingTimedOut`]; any other panic goes on unwinding.
///
/// The pipeline offers no cancellation point of its own, but reports progress after every model
/// iteration and stage, so the report is where a training is stopped. Unwinding drops only what
/// the training built (its snapshot and half-fitted models): the engine's state changes only after
/// the model file is written, which comes after the last deadline check. That is the same
/// guarantee a SIGTERM relies on: no model file, the served model unchanged.
pub(crate) fn abandon_past_deadline<T>(
    limit_secs: u64,
    train: impl FnOnce() -> Result<T, EngineError>,
) -> Result<T, EngineError> {
    match std::panic::catch_unwind(AssertUnwindSafe(train)) {
        Ok(result) => result,
        Err(payload) if payload.is::<DeadlinePassed>() => {
            Err(EngineError::TrainingTimedOut { limit_secs })
        }
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_counts_steps_and_iterations_and_never_goes_back() {
        let mut t = Tracker::new(7);
        assert_eq!(t.status().percent, 0);
        assert_eq!(t.status().stage, "starting");
        t.update(READING_EVENTS, 0, 1);
        assert_eq!(t.status().stage, READING_EVENTS);
        t.update(TRAINING_STAGE, 0, 4);
        t.update("ranker cut 1 of 2: refit models", 0, 1);
        t.update("als", 5, 10);
        // Half of the first of four steps.
        assert_eq!(t.status().percent, 12);
        assert_eq!(t.status().stage, "als 5/10");
        t.update("als", 10, 10);
        assert_eq!(t.status().percent, 25);
        // A one-unit stage marks a place in the step: the percent stays where it was.
        t.update("content", 1, 1);
        assert_eq!(t.status().percent, 25);
        assert_eq!(t.status().stage, "content: done");
        t.update(TRAINING_STAGE, 1, 4);
        t.update("ranker cut 2 of 2: refit models", 0, 1);
        assert_eq!(t.status().percent, 25);
        t.update(TRAINING_STAGE, 4, 4);
        assert_eq!(t.status().percent, 100);
        assert_eq!(t.status().started_at, 7);
    }

    #[test]
    fn the_recorder_records_and_forwards() {
        let slot = Mutex::new(Some(Tracker::new(0)));
        let forwarded = Mutex::new(Vec::new());
        let observer = |stage: &str, done: usize, total: usize| {
            forwarded
                .lock()
                .unwrap()
                .push((stage.to_string(), done, total));
        };
        let recorder = Recorder {
            slot: &slot,
            observer: &observer,
            deadline: None,
        };
        recorder.update(TRAINING_STAGE, 1, 2);
        assert_eq!(slot.lock().unwrap().as_ref().unwrap().status().percent, 50);
        assert_eq!(
            *forwarded.lock().unwrap(),
            vec![(TRAINING_STAGE.to_string(), 1, 2)]
        );
    }
}

#[cfg(test)]
mod engine_tests {
    use std::time::Duration;

    use cairn_core::{Event, Item};

    use super::*;
    use crate::{Config, Engine, EngineError};

    #[test]
    fn training_reports_its_stages_and_clears_its_status_when_done() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        })
        .unwrap();
        engine
            .put_items(vec![Item::new("a"), Item::new("b")])
            .unwrap();
        engine
            .add_events(vec![
                Event::new("u", "a", "view"),
                Event::new("v", "b", "view"),
            ])
            .unwrap();
        assert_eq!(engine.training_status(), None);
        let seen = Mutex::new(Vec::new());
        let observer = |stage: &str, done: usize, total: usize| {
            // The engine's own status is readable while it trains, from the observer too.
            let percent = engine.training_status().map(|s| s.percent);
            seen.lock()
                .unwrap()
                .push((stage.to_string(), done, total, percent));
        };
        engine.train_with_progress(&observer).unwrap();
        let seen = seen.into_inner().unwrap();
        assert_eq!(
            seen.first().map(|s| s.0.as_str()),
            Some(READING_EVENTS),
            "{seen:?}"
        );
        let last = seen.last().unwrap();
        assert_eq!((last.0.as_str(), last.1 == last.2), (TRAINING_STAGE, true));
        assert_eq!(last.3, Some(100));
        assert!(seen.iter().all(|s| s.3.is_some()));
        assert_eq!(engine.training_status(), None, "cleared after training");
    }

    #[test]
    fn a_training_past_train_max_secs_is_abandoned_and_the_served_model_stays() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let first = {
            let engine = Engine::open(config.clone()).unwrap();
            engine
                .put_items(vec![Item::new("a"), Item::new("b")])
                .unwrap();
            engine
                .add_events(vec![
                    Event::new("u", "a", "view"),
                    Event::new("v", "b", "view"),
                ])
                .unwrap();
            engine.train().unwrap().version
        };
        let files = || {
            let mut names: Vec<_> = std::fs::read_dir(dir.path().join("models"))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            names
        };
        let before = files();

        let mut limited = config;
        limited.train.max_secs = 1;
        let engine = Engine::open(limited).unwrap();
        engine
            .add_events(vec![Event::new("w", "a", "view")])
            .unwrap();
        // The caller's observer is slow: the first report takes longer than the limit.
        let slow = |_: &str, _: usize, _: usize| std::thread::sleep(Duration::from_millis(1100));
        let err = engine.train_with_progress(&slow).unwrap_err();
        assert!(
            matches!(err, EngineError::TrainingTimedOut { limit_secs: 1 }),
            "{err}"
        );
        assert_eq!(err.code(), "training_timeout");
        assert_eq!(engine.trainings_abandoned(), 1);
        assert_eq!(files(), before, "no model file written");
        assert_eq!(engine.model_info().unwrap().version, first);
        assert_eq!(engine.training_status(), None);
        // Not stuck: the next training runs (and is abandoned the same way).
        assert!(matches!(
            engine.train_with_progress(&slow),
            Err(EngineError::TrainingTimedOut { .. })
        ));
        assert_eq!(engine.trainings_abandoned(), 2);
    }
}
