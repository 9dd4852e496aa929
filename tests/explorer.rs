//! `haft explore` in a real headless browser: Debian's Chromium driven by
//! Playwright (tests/explorer/browser.py), both installed by
//! `verification/install-test-deps`. The page must show the model by name,
//! every property `haft check` lists with its verdict, and follow a seeded
//! bug's counterexample link to the checker's own path and its sequence
//! diagram.
//!
//! Chromium is found at /usr/bin/chromium (or `$HAFT_CHROMIUM`), Playwright in
//! target/test-venv (or `$HAFT_TEST_PYTHON`). Either missing fails the test
//! unless `HAFT_ALLOW_MISSING_BROWSER=1`, which turns it into a loud skip.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[path = "common/external_tool.rs"]
mod external_tool;
use external_tool::{test_python, tool};

const ALLOW_MISSING: &str = "HAFT_ALLOW_MISSING_BROWSER";

/// Generous, for a loaded CI machine: the browser script has its own
/// per-step timeouts, well under this.
const PATIENCE: Duration = Duration::from_secs(600);

/// A child process, killed when dropped (also when the test fails).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `haft explore` with `args` on a free port; returns it and its URL.
fn start_explorer(args: &[&str]) -> (Killed, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_haft"))
        .arg("explore")
        .args(args)
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("haft explore starts");
    let stderr = child.stderr.take().expect("its stderr");
    let child = Killed(child);
    // Its first line names the address it serves on.
    let (line_tx, line_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("haft explore: {line}");
            let _ = line_tx.send(line);
        }
    });
    let line = line_rx
        .recv_timeout(PATIENCE)
        .expect("haft explore prints its address");
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in `{line}`"))
        .to_string();
    (child, url)
}

#[test]
fn the_explorer_follows_a_counterexample_in_a_browser() {
    let chromium =
        std::env::var_os("HAFT_CHROMIUM").map_or_else(|| "/usr/bin/chromium".into(), PathBuf::from);
    let Some(chromium) = tool("Chromium", chromium, &["--version"], ALLOW_MISSING) else {
        return;
    };
    let python = test_python();
    let probe = ["-c", "import playwright.sync_api"];
    let Some(python) = tool("python with Playwright", python, &probe, ALLOW_MISSING) else {
        return;
    };
    let (_explorer, url) = start_explorer(&["two-phase", "-p", "participants=2"]);
    let work = tempfile::tempdir().expect("a temporary directory");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/explorer/browser.py");
    // Its output goes to files: a pipe nobody reads could fill and stall it.
    let output = |name: &str| std::fs::File::create(work.path().join(name)).expect("a log file");
    let browser = Command::new(python)
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_haft"))
        .arg(&url)
        .arg(chromium)
        .arg(work.path())
        .stdout(output("stdout"))
        .stderr(output("stderr"))
        .spawn()
        .expect("python starts");
    let mut browser = Killed(browser);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = browser.0.try_wait().expect("the script's status") {
            break status;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the browser test took over {PATIENCE:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let read = |name: &str| std::fs::read_to_string(work.path().join(name)).unwrap_or_default();
    let (stdout, stderr) = (read("stdout"), read("stderr"));
    if !status.success() {
        // Kept for a look: the logs and the failure screenshot.
        let kept = work.keep();
        panic!(
            "the browser test failed ({status}); its files are in {}:\n{stdout}{stderr}",
            kept.display()
        );
    }
    eprint!("{stdout}");
}
