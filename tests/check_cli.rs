//! `haft check` as a CI sees it: its exit status for each outcome, the
//! counterexample formats, a closed pipe, and random walks.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[path = "common/haft_command.rs"]
mod haft_command;
use haft_command::haft;

const FORGET_TOO_EARLY: &[&str] = &[
    "check",
    "two-phase",
    "-p",
    "participants=2",
    "-p",
    "variant=forget-too-early",
];

fn with(base: &[&'static str], more: &[&'static str]) -> Vec<&'static str> {
    base.iter().chain(more).copied().collect()
}

#[test]
fn exit_0_when_every_property_holds_and_the_search_completes() {
    let (code, out, _) = haft(&["check", "commit-spec", "-p", "rms=4"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("✓ TCConsistent"), "{out}");
}

#[test]
fn a_property_the_configuration_cannot_judge_is_said_so_and_leaves_exit_0() {
    let (code, out, _) = haft(&["check", "cluster"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("? a read after a restart (unknown)"), "{out}");
    assert!(
        out.contains("`a read after a restart` is not judged: no node restarts when crashes=0."),
        "{out}"
    );
}

#[test]
fn exit_1_with_a_readable_counterexample_when_a_property_is_violated() {
    let (code, out, _) = haft(FORGET_TOO_EARLY);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✗ AC1 agreement"), "{out}");
    assert!(
        out.contains("`AC1 agreement` (always) is violated. Counterexample:"),
        "{out}"
    );
    // Each step shows only what changed, as `path: before → after` lines.
    assert!(
        out.contains("actor_states[1].machine.record.txns[t0.1.0]: + Prepared {"),
        "{out}"
    );
    assert!(out.contains("→ Decided(Abort)"), "{out}");
}

#[test]
fn exit_3_when_the_search_stops_early_without_a_violation() {
    let (code, out, _) = haft(&["check", "two-phase", "--max-states", "500"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("(incomplete: state limit)"), "{out}");
    assert!(out.contains("? AC1 agreement (not refuted in"), "{out}");
    // Only what was witnessed shows ✓; nothing unrefuted does.
    assert!(!out.contains("✓ AC1"), "{out}");
    assert!(!out.contains("✓ refines"), "{out}");

    let (code, out, _) = haft(&["check", "two-phase", "--timeout", "20ms"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("(incomplete: timeout)"), "{out}");
}

#[test]
fn exit_2_on_a_usage_error() {
    for args in [
        &["check", "no-such-model"][..],
        &["check", "two-phase", "-p", "participants=9"],
        &["check", "two-phase", "--timeout", "5 fortnights"],
        &[
            "check",
            "commit-spec",
            "--expect-violated",
            "no such property",
        ],
        &["check", "--no-such-flag"],
    ] {
        let (code, _, err) = haft(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn expect_violated_exits_0_exactly_when_those_properties_are_violated() {
    let both = with(
        FORGET_TOO_EARLY,
        &[
            "--expect-violated",
            "AC1 agreement",
            "--expect-violated",
            "refines TwoPhase",
        ],
    );
    let (code, out, _) = haft(&both);
    assert_eq!(code, 0, "{out}");
    // `refines TwoPhase` is violated too, and not expected.
    let one = with(FORGET_TOO_EARLY, &["--expect-violated", "AC1 agreement"]);
    assert_eq!(haft(&one).0, 1);
    // A property that holds cannot be expected to be violated.
    let holds = with(&both, &["--expect-violated", "AC2 irrevocable"]);
    let (code, out, _) = haft(&holds);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("expected `AC2 irrevocable` to be violated"),
        "{out}"
    );
}

#[test]
fn a_closed_pipe_ends_the_run_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_haft"))
        .args(["check", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("haft runs");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut first)
        .expect("one line");
    // The reader is gone, as after `| head -1`.
    let output = child.wait_with_output().expect("haft exits");
    let json: serde_json::Value = serde_json::from_str(&first).expect("a JSON line");
    assert_eq!(json["model"], "commit-spec");
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(output.status.code(), Some(0), "{err}");
}

#[test]
fn json_reports_and_traces_carry_states_as_structures() {
    let (code, out, _) = haft(&with(FORGET_TOO_EARLY, &["--json"]));
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(report["complete"], true);
    assert!(report["phases"][0]["seconds"].is_number());
    let ac1 = &report["properties"][0];
    assert_eq!(ac1["name"], "AC1 agreement");
    assert_eq!(ac1["status"], "violated");
    let steps = ac1["counterexample"].as_array().unwrap();
    assert_eq!(steps[0]["action"], "initial state");
    // The state is an object, not a Debug string.
    assert_eq!(
        steps[0]["state"]["crashed"],
        serde_json::json!([false, false, false])
    );
    let last = steps.last().unwrap();
    assert!(
        last["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["after"] == "Decided(Abort)"),
        "{last}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("traces.json");
    let file_arg = file.to_str().unwrap();
    let args = [
        FORGET_TOO_EARLY,
        &["--trace-format", "json", "--trace-out", file_arg],
    ]
    .concat();
    let (code, out, _) = haft(&args);
    assert_eq!(code, 1);
    assert!(!out.contains("Counterexample"), "{out}");
    let written = std::fs::read_to_string(&file).unwrap();
    let traces: Vec<serde_json::Value> = written
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(traces.len(), 2);
    assert_eq!(traces[1]["property"], "refines TwoPhase");
    assert!(traces[1]["steps"].as_array().unwrap().len() > 5);
}

#[test]
fn mermaid_draws_the_messages_of_a_counterexample() {
    let (code, out, _) = haft(&with(FORGET_TOO_EARLY, &["--trace-format", "mermaid"]));
    assert_eq!(code, 1);
    assert!(out.contains("sequenceDiagram"), "{out}");
    assert!(out.contains("participant pId0 as Id(0)"), "{out}");
    assert!(out.contains("pId1->>pId0: Query(t0.1.0)"), "{out}");
    assert!(out.contains("pId0->>pId1: Outcome(t0.1.0, Abort)"), "{out}");
}

#[test]
fn random_walks_refute_a_variant_too_large_to_exhaust_reproducibly() {
    // Five participants, two crashes, a lossy network: far beyond an
    // exhaustive search (three participants with one crash are 1.9 million
    // states). A prepared participant that aborts alone breaks agreement.
    let args = [
        "check",
        "two-phase",
        "-p",
        "participants=5",
        "-p",
        "crashes=2",
        "-p",
        "lossy=true",
        "-p",
        "variant=abort-after-yes",
        "--simulate",
        "--seed",
        "3",
        "--runs",
        "400",
        "--depth",
        "60",
    ];
    let (code, out, _) = haft(&args);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("✗ AC1 agreement"), "{out}");
    assert!(out.contains("states/s"), "{out}");
    assert!(out.contains("Uncertain(t0.1.0)"), "{out}");
    // The same seed walks the same way (the table's timing aside).
    let traces = |out: &str| out.split_once("\n\n").map(|(_, t)| t.to_string());
    assert_eq!(traces(&haft(&args).1), traces(&out));
}
