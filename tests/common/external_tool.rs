//! Finding the outside programs a test drives haft with (Redis clients, a
//! browser), where `verification/install-test-deps` puts them. A missing one
//! fails the test, unless the test's environment variable allows skipping: a
//! loud skip, never a silent one.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// `path` if running it with `probe` succeeds; else `None` (after a loud
/// message) when `$allow_missing` is `1`, or a panic naming the variable.
pub fn tool(what: &str, path: PathBuf, probe: &[&str], allow_missing: &str) -> Option<PathBuf> {
    let works = Command::new(&path)
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if works {
        return Some(path);
    }
    let message = format!(
        "{what} is not usable at {}; run verification/install-test-deps",
        path.display()
    );
    if std::env::var(allow_missing).as_deref() == Ok("1") {
        eprintln!("\n!!!!! SKIPPED: {message} ({allow_missing}=1) !!!!!\n");
        None
    } else {
        panic!("{message} (or set {allow_missing}=1 to skip)");
    }
}

/// The test virtual environment's python (or `$HAFT_TEST_PYTHON`).
pub fn test_python() -> PathBuf {
    let default = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    std::env::var_os("HAFT_TEST_PYTHON").map_or(default, PathBuf::from)
}
