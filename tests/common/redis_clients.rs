//! The real Redis clients the RESP tests drive haft with, found where
//! `verification/install-test-deps` puts them (or at `$HAFT_REDIS_CLI` and
//! `$HAFT_TEST_PYTHON`). Shared by tests/resp.rs and tests/resp_cluster.rs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[path = "external_tool.rs"]
mod external_tool;
use external_tool::{test_python, tool};

const ALLOW_MISSING: &str = "HAFT_ALLOW_MISSING_REDIS_CLIENTS";

/// redis-cli, or `None` when it is missing and skipping is allowed.
pub fn redis_cli() -> Option<PathBuf> {
    let path = std::env::var_os("HAFT_REDIS_CLI").map_or_else(|| "redis-cli".into(), PathBuf::from);
    tool("redis-cli", path, &["--version"], ALLOW_MISSING)
}

/// A python with redis-py, or `None` when it is missing and skipping is allowed.
pub fn python() -> Option<PathBuf> {
    tool(
        "python with redis-py",
        test_python(),
        &["-c", "import redis"],
        ALLOW_MISSING,
    )
}

/// Runs redis-cli at `tool` against `port` with `args` (authenticating with
/// `password`, and `input` on stdin); returns its stdout and stderr.
pub fn run_redis_cli(
    tool: &Path,
    port: u16,
    password: Option<&str>,
    args: &[&str],
    input: &str,
) -> String {
    let mut command = Command::new(tool);
    command.args(["-p", &port.to_string(), "--no-raw"]);
    if let Some(password) = password {
        command.args(["-a", password, "--no-auth-warning"]);
    }
    let mut child = command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("redis-cli starts");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("write stdin");
    drop(stdin);
    let output = child.wait_with_output().expect("redis-cli ends");
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}
