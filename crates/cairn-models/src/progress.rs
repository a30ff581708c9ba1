//! Progress reporting for long fits. Models call [`Progress::update`] after each unit of work (an
//! iteration, an epoch); what happens then is the caller's choice: nothing, a log line, or a terminal
//! bar ([`TerminalProgress`], behind the `progress-bar` feature).

/// Receives `(stage, done, total)` as a fit advances. `done` counts finished units out of `total`.
pub trait Progress: Sync {
    fn update(&self, stage: &str, done: usize, total: usize);
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn update(&self, _stage: &str, _done: usize, _total: usize) {}
}

impl<F: Fn(&str, usize, usize) + Sync> Progress for F {
    fn update(&self, stage: &str, done: usize, total: usize) {
        self(stage, done, total)
    }
}

/// A bar on stderr, drawn only when stderr is a terminal, so that logs and CI output stay clean.
#[cfg(feature = "progress-bar")]
pub struct TerminalProgress {
    bar: indicatif::ProgressBar,
}

#[cfg(feature = "progress-bar")]
impl TerminalProgress {
    pub fn new() -> Self {
        use std::io::IsTerminal;
        let bar = if std::io::stderr().is_terminal() {
            indicatif::ProgressBar::new(0)
        } else {
            indicatif::ProgressBar::hidden()
        };
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} {elapsed}")
        {
            bar.set_style(style);
        }
        TerminalProgress { bar }
    }
}

#[cfg(feature = "progress-bar")]
impl Default for TerminalProgress {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "progress-bar")]
impl Progress for TerminalProgress {
    fn update(&self, stage: &str, done: usize, total: usize) {
        self.bar.set_message(stage.to_string());
        self.bar.set_length(total as u64);
        self.bar.set_position(done as u64);
        if done >= total {
            self.bar.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn closures_receive_every_update() {
        let seen = Mutex::new(Vec::new());
        let report = |stage: &str, done: usize, total: usize| {
            seen.lock().unwrap().push((stage.to_string(), done, total));
        };
        report.update("als", 1, 2);
        report.update("als", 2, 2);
        assert_eq!(
            *seen.lock().unwrap(),
            vec![("als".to_string(), 1, 2), ("als".to_string(), 2, 2)]
        );
    }
}
