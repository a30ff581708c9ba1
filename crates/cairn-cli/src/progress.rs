//! Progress on stderr: [`Bars`], one bar per stage, that stay quiet when stderr is not a terminal (CI
//! logs, pipes); the byte-count bar of an import; and [`Training`], a training's percent, as a bar on
//! a terminal and as plain lines elsewhere.

use std::sync::Mutex;

use cairn_models::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:40}] {percent:>3}% {pos}/{len} ({per_sec}, eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

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

/// One bar per stage (e.g. a model scored on one split stage): a new stage name starts a new bar, and
/// the bar is cleared when its stage is done.
#[derive(Default)]
pub struct Bars {
    current: Mutex<Option<(String, ProgressBar)>>,
}

impl Progress for Bars {
    fn update(&self, stage: &str, done: usize, total: usize) {
        let Ok(mut slot) = self.current.lock() else {
            return;
        };
        if slot.as_ref().is_none_or(|(name, _)| name != stage) {
            *slot = Some((stage.to_string(), bar(total as u64, stage)));
        }
        if let Some((_, current)) = slot.as_ref() {
            current.set_position(done as u64);
        }
        if done >= total {
            if let Some((_, finished)) = slot.take() {
                finished.finish_and_clear();
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
