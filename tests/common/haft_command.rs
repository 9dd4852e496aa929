//! Runs the `haft` binary as a user would, for the tests of its commands
//! (tests/check_cli.rs, tests/cluster.rs).

use std::process::Command;

/// Runs `haft ARGS` to its end: its exit status, standard output and
/// standard error. Every run must exit with a status, never by a signal, and
/// must not panic whatever it was given.
pub fn haft(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_haft"))
        .args(args)
        .output()
        .expect("haft runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "haft {args:?} panicked: {stderr}"
    );
    (
        output.status.code().expect("haft exits with a status"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr,
    )
}
