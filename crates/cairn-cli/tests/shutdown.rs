//! SIGTERM stops the server promptly even while a training runs: the training is abandoned and
//! leaves no model file behind. Runs the real binary.

use std::process::Command;
use std::time::{Duration, Instant};

mod common;

#[test]
#[cfg(unix)]
fn sigterm_during_a_training_stops_the_server_without_a_new_model() {
    let dir = tempfile::tempdir().unwrap();
    common::cairn_ok(dir.path(), &["demo"]);

    let models = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(dir.join("models"))
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|x| x == "cairn"));
        files.sort();
        files
    };
    let before = models(dir.path());
    let (mut server, base) = common::serve(dir.path());
    // A forced training on the demo's 50,000 events, in flight when the signal comes.
    let train = std::thread::spawn(move || {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .unwrap();
        client
            .post(format!("{base}/v1/train"))
            .send()
            .map(|r| r.status().as_u16())
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!train.is_finished(), "the training ended before the signal");

    let sent = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        if sent.elapsed() > Duration::from_secs(120) {
            server.kill().unwrap();
            panic!("still running 120 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    // It did not wait for the training: no new model was saved, and the request got no 200.
    assert_eq!(models(dir.path()), before);
    assert!(!matches!(train.join().unwrap(), Ok(200)));
    eprintln!(
        "stopped {:.1} s after SIGTERM",
        sent.elapsed().as_secs_f64()
    );
}
