//! The real Redis clients the RESP tests drive haft with, found where
//! `verification/install-test-deps` puts them (or at `$HAFT_REDIS_CLI` and
//! `$HAFT_TEST_PYTHON`). Shared by tests/resp.rs and tests/resp_cluster.rs.

use std::path::PathBuf;

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
