//! Records `git describe` of the source tree (when git and a repository are there) as
//! `CAIRN_GIT_DESCRIBE`, the code version each trained model version records. Without git the
//! crate version alone is recorded.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-env-changed=CAIRN_GIT_DESCRIBE");
    // Rebuilt when HEAD moves (a commit, a checkout), not on every edit.
    for path in ["HEAD", "logs/HEAD"] {
        if let Some(p) = git(&["rev-parse", "--git-path", path]) {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    let describe = std::env::var("CAIRN_GIT_DESCRIBE")
        .ok()
        .or_else(|| git(&["describe", "--always", "--dirty", "--tags"]));
    if let Some(d) = describe {
        println!("cargo:rustc-env=CAIRN_GIT_DESCRIBE={d}");
    }
}
