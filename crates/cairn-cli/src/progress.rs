//! Progress on stderr: [`Bars`], the CLI's one implementation of [`cairn_models::Progress`] for
//! evaluation (a bar per stage on a terminal, plain lines without ANSI codes when stderr is a log or
//! a pipe); the byte-count bar of an import (quiet when stderr is not a terminal); and
//! [`Training`], a training's percent, as a bar on a terminal and as plain lines elsewhere.

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_models::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub fn bytes(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:40}] {percent:>3}% {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// One bar per stage (e.g. a model fitted, then scored, on one split stage): a new stage name starts a
/// new bar, and the bar is cleared when its stage is done. The bar shows the time elapsed and ticks on
/// its own, so a stage without intermediate counts (fitting a model) still shows that it is running.
/// When stderr is not a terminal, each stage is one plain line when it starts and one with its
/// duration when it is done.
pub struct Bars {
    current: Mutex<Option<Current>>,
    plain: bool,
}

struct Current {
    stage: String,
    started: Instant,
    bar: Option<ProgressBar>,
}

impl Default for Bars {
    fn default() -> Self {
        Bars {
            current: Mutex::new(None),
            plain: !std::io::stderr().is_terminal(),
        }
    }
}

fn stage_bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template(
            "{elapsed:>4} [{bar:30}] {percent:>3}% {pos}/{len} (eta {eta}) {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb.enable_steady_tick(Duration::from_millis(250));
    pb
}

impl Progress for Bars {
    fn update(&self, stage: &str, done: usize, total: usize) {
        let Ok(mut slot) = self.current.lock() else {
            return;
        };
        if slot.as_ref().is_none_or(|c| c.stage != stage) {
            if let Some(Current { bar: Some(old), .. }) = slot.take() {
                old.finish_and_clear();
            }
            let bar = if self.plain {
                eprintln!("{stage} ...");
                None
            } else {
                Some(stage_bar(total as u64, stage))
            };
            *slot = Some(Current {
                stage: stage.to_string(),
                started: Instant::now(),
                bar,
            });
        }
        if let Some(Current { bar: Some(bar), .. }) = slot.as_ref() {
            bar.set_position(done as u64);
        }
        if done >= total {
            if let Some(finished) = slot.take() {
                if let Some(bar) = finished.bar {
                    bar.finish_and_clear();
                } else {
                    eprintln!(
                        "{stage}: done in {:.1} s",
                        finished.started.elapsed().as_secs_f64()
                    );
                }
            }
        }
    }
}

/// A training's progress on stderr: on a terminal one bar of the engine's percent with the current
/// stage beside it; elsewhere (a pipe, a log file, CI) plain lines without escape codes, one per
/// step of the pipeline and one per piece of work as it starts.
pub struct Training<'a> {
    engine: &'a cairn_engine::Engine,
    bar: Option<ProgressBar>,
}

impl<'a> Training<'a> {
    pub fn new(engine: &'a cairn_engine::Engine) -> Self {
        let bar = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
            let pb = ProgressBar::with_draw_target(Some(100), ProgressDrawTarget::stderr());
            pb.set_style(
                ProgressStyle::with_template("training [{bar:40}] {pos:>3}% {msg} ({elapsed})")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            pb
        });
        Training { engine, bar }
    }

    /// Removes the bar (the caller prints the outcome).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress for Training<'_> {
    fn update(&self, stage: &str, done: usize, total: usize) {
        let percent = self.engine.training_status().map_or(0, |s| s.percent);
        match &self.bar {
            Some(bar) => {
                bar.set_position(u64::from(percent));
                if stage != cairn_engine::TRAINING_STAGE {
                    bar.set_message(if total > 1 {
                        format!("{stage} {done}/{total}")
                    } else {
                        stage.to_string()
                    });
                }
            }
            None if stage == cairn_engine::TRAINING_STAGE => {
                eprintln!("training: {done} of {total} steps done ({percent}%)")
            }
            None if total == 1 && done == 0 => eprintln!("training: {stage}"),
            None => {}
        }
    }
}
