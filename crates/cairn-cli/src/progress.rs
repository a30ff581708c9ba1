//! Progress bars that stay quiet when stderr is not a terminal (CI logs, pipes): [`Bars`], the CLI's
//! one implementation of [`cairn_models::Progress`], and the byte-count bar of an import.

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
