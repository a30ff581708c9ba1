//! Progress reporting for long work: model fits, and the evaluation runner's scoring of users. The work
//! calls [`Progress::update`] after each unit (an iteration, an epoch, a user); what happens then is
//! the caller's choice: nothing ([`Silent`]), a log line (a closure), or a terminal bar (the CLI's).
//! Drawing belongs to the binaries, so this crate stays free of terminal code.

/// Receives `(stage, done, total)` as work advances. `done` counts finished units out of `total`; a
/// stage is finished when `done` reaches `total`. Calls for one stage come in increasing `done`.
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
