//! The real Redis clients the RESP tests drive haft with, found where
//! `verification/install-test-deps` puts them (or at `$HAFT_REDIS_CLI` and
//! `$HAFT_TEST_PYTHON`). Shared by tests/resp.rs and tests/resp_cluster.rs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const ALLOW_MISSING: &str = "HAFT_ALLOW_MISSING_REDIS_CLIENTS";

/// A client program, or `None` (after a loud message) when it is missing and
/// skipping is allowed; panics when it is missing and skipping is not.
fn tool(what: &str, path: PathBuf, probe: &[&str]) -> Option<PathBuf> {
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
    if std::env::var(ALLOW_MISSING).as_deref() == Ok("1") {
        eprintln!("\n!!!!! SKIPPED: {message} ({ALLOW_MISSING}=1) !!!!!\n");
        None
    } else {
        panic!("{message} (or set {ALLOW_MISSING}=1 to skip)");
    }
}

/// redis-cli, or `None` when it is missing and skipping is allowed.
pub fn redis_cli() -> Option<PathBuf> {
    let path = std::env::var_os("HAFT_REDIS_CLI").map_or_else(|| "redis-cli".into(), PathBuf::from);
    tool("redis-cli", path, &["--version"])
}

/// A python with redis-py, or `None` when it is missing and skipping is allowed.
pub fn python() -> Option<PathBuf> {
    let default = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    let path = std::env::var_os("HAFT_TEST_PYTHON").map_or(default, PathBuf::from);
    tool("python with redis-py", path, &["-c", "import redis"])
}
