//! `haft check`: run the models, print the verdicts, exit with a status a CI can
//! read (see the `Check` command's doc in main.rs).

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use haft::checker::{SimulationOptions, Status, memory};
use haft::models::{self, CheckOptions, CheckReport, ModelEntry, Progress, Strategy};

use crate::UsageError;
use crate::trace::{self, TraceFormat};

/// `haft check`.
#[derive(Args)]
pub struct CheckArgs {
    /// The model to check; all models at their default sizes if omitted.
    model: Option<String>,
    /// A parameter, as key=value (repeatable); see --list.
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// List the models, their parameters, defaults and allowed values.
    #[arg(long)]
    list: bool,
    /// Explore one canonical representative per symmetry class.
    #[arg(long)]
    symmetry: bool,
    /// Checker threads (default: the machine's cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Breadth-first search (keeps every frontier state in memory).
    #[arg(long, conflicts_with = "dfs")]
    bfs: bool,
    /// Depth-first search (the default: faster and leaner on haft's models).
    #[arg(long)]
    dfs: bool,
    /// Stop each model after this long: 90s, 5m, 1h30m (the report then says
    /// incomplete, exit 3 unless a property is violated).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// Stop each model once it knows this many distinct states.
    #[arg(long, value_name = "N")]
    max_states: Option<usize>,
    /// Stop cleanly once the process uses this much memory: 800M, 4G, 2GiB
    /// (default: three quarters of the machine's memory).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_memory: Option<u64>,
    /// Exit 0 exactly when this property is violated and all others hold
    /// (repeatable): a variant check in one line of CI.
    #[arg(long, value_name = "PROPERTY")]
    expect_violated: Vec<String>,
    /// Print one JSON object per model instead of the table.
    #[arg(long)]
    json: bool,
    /// How to print counterexamples.
    #[arg(long, value_enum, default_value_t = TraceFormat::Text)]
    trace_format: TraceFormat,
    /// Write counterexamples to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    trace_out: Option<PathBuf>,
    /// Random walks instead of an exhaustive search, for sizes too large to
    /// exhaust (never complete: exit 1 on a violation, else 3).
    #[arg(long)]
    simulate: bool,
    /// The seed of the random walks.
    #[arg(long, value_name = "S", default_value_t = 0, requires = "simulate")]
    seed: u64,
    /// Steps per random walk at most.
    #[arg(long, value_name = "D", default_value_t = 100, requires = "simulate")]
    depth: usize,
    /// Random walks.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10_000,
        requires = "simulate"
    )]
    runs: usize,
}

/// A duration as people write it: `90s`, `5m`, `1h`, `1h30m`, `250ms`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|error| format!("`{text}` is not a duration ({error}); write it as 90s, 5m or 1h"))
}

/// A size in bytes: `1024`, `800M`, `4G`, `2GiB`, `1.5GB` (powers of 1024).
fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || format!("`{text}` is not a size; write it as 800M, 4G or 2GiB");
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let scale: u64 = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    let bytes = number * scale as f64;
    if !bytes.is_finite() || bytes < 1.0 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// The verdict of a whole `haft check`, as an exit status.
fn exit_status(reports: &[CheckReport], expected: &BTreeSet<String>) -> u8 {
    let refuted = |p: &models::PropertyReport| p.refuted();
    let mut unexpected_violation = false;
    let mut incomplete = false;
    let mut expected_seen = BTreeSet::new();
    for report in reports {
        for property in &report.properties {
            let is_expected = expected.contains(property.name);
            if refuted(property) {
                if is_expected {
                    expected_seen.insert(property.name.to_string());
                } else {
                    unexpected_violation = true;
                }
            } else if property.status == Status::Unknown
                && !(report.complete && property.note.is_some())
            {
                // A property the configuration cannot judge (its note says
                // why) leaves a complete search complete.
                incomplete = true;
            }
        }
        incomplete |= !report.complete && report.simulation.is_none();
        incomplete |= report.simulation.is_some();
    }
    let missing_expected = expected.iter().any(|name| !expected_seen.contains(name));
    if unexpected_violation || missing_expected && !incomplete {
        1
    } else if incomplete || missing_expected {
        3
    } else {
        0
    }
}

pub fn check(args: CheckArgs) -> Result<ExitCode, UsageError> {
    if args.list {
        print_list();
        return Ok(ExitCode::SUCCESS);
    }
    let runs: Vec<(&ModelEntry, models::Params)> = match &args.model {
        Some(name) => {
            let entry = models::find(name)?;
            vec![(entry, entry.params(&args.params)?)]
        }
        None => {
            if !args.params.is_empty() {
                return Err(UsageError(
                    "-p applies to one model: name it, as in `haft check two-phase -p lossy=true`"
                        .into(),
                ));
            }
            models::registry()
                .iter()
                .map(|entry| (entry, entry.default_params()))
                .collect()
        }
    };
    let expected: BTreeSet<String> = args.expect_violated.iter().cloned().collect();
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );
    let show_progress = std::io::stderr().is_terminal();
    let mut reports = Vec::new();
    let mut traces = Vec::new();
    for (entry, params) in runs {
        let bar = show_progress.then(|| progress_bar(entry.name));
        let bar_for_callback = bar.clone();
        let options = CheckOptions {
            symmetry: args.symmetry,
            threads,
            strategy: if args.bfs {
                Strategy::Bfs
            } else {
                Strategy::Dfs
            },
            timeout: args.timeout,
            max_states: args.max_states,
            max_memory: args.max_memory.or_else(memory::default_limit),
            progress: bar_for_callback.map(|bar| {
                Box::new(move |p: &Progress| update_bar(&bar, p)) as models::harness::ProgressFn
            }),
            progress_every: Duration::from_millis(200),
            simulation: args.simulate.then_some(SimulationOptions {
                seed: args.seed,
                depth: args.depth,
                runs: args.runs,
                threads,
                timeout: args.timeout,
            }),
        };
        let report = entry.check(&params, &options)?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        if args.json {
            println!("{}", trace::report_json(&report));
        }
        reports.push(report);
        crate::out::set_status_if_closed(exit_status(&reports, &BTreeSet::new()));
    }
    if !args.json {
        print_table(&reports);
    }
    for report in &reports {
        traces.extend(trace::render(report, args.trace_format, args.json));
    }
    check_expected_names(&reports, &expected)?;
    let status = exit_status(&reports, &expected);
    crate::out::set_status_if_closed(status);
    match &args.trace_out {
        Some(path) => {
            std::fs::write(path, traces.concat()).map_err(|error| {
                UsageError(format!(
                    "cannot write the traces to {}: {error}",
                    path.display()
                ))
            })?;
        }
        None => {
            for text in &traces {
                print!("{text}");
            }
        }
    }
    if !args.json {
        print_summary(&reports, &expected, status);
    }
    crate::out::flush();
    Ok(ExitCode::from(status))
}

/// `--expect-violated` must name properties the checked models have.
fn check_expected_names(
    reports: &[CheckReport],
    expected: &BTreeSet<String>,
) -> Result<(), UsageError> {
    let known: BTreeSet<&str> = reports
        .iter()
        .flat_map(|r| r.properties.iter().map(|p| p.name))
        .collect();
    for name in expected {
        if !known.contains(name.as_str()) {
            return Err(UsageError(format!(
                "--expect-violated `{name}`: no checked model has that property; they have: {}",
                known.iter().copied().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    Ok(())
}

fn progress_bar(model: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {prefix}: {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.set_prefix(model.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn update_bar(bar: &indicatif::ProgressBar, p: &Progress) {
    let seconds = p.elapsed.as_secs_f64().max(1e-3);
    bar.set_message(format!(
        "{} states, {} unique, depth {}, {:.0} states/s, {:.0}s",
        p.total_states,
        p.unique_states,
        p.max_depth,
        p.total_states as f64 / seconds,
        p.elapsed.as_secs_f64()
    ));
}

fn print_list() {
    for entry in models::registry() {
        let symmetry = if entry.symmetry { "; --symmetry" } else { "" };
        println!("{} — {}{symmetry}", entry.name, entry.summary);
        for spec in entry.params {
            println!(
                "    -p {}=…  default {}, allowed {}: {}",
                spec.name, spec.default, spec.kind, spec.help
            );
        }
    }
}

/// A property's cell in the table.
fn property_cell(report: &CheckReport, property: &models::PropertyReport) -> String {
    let name = property.name;
    match property.status {
        Status::Holds => format!("✓ {name}"),
        Status::Violated => format!("✗ {name}"),
        Status::NotWitnessed => format!("✗ {name} (never witnessed)"),
        Status::Unknown => match &report.simulation {
            Some(simulation) => format!("? {name} (not refuted in {} walks)", simulation.runs),
            None if report.complete => format!("? {name} (unknown)"),
            None => format!("? {name} (not refuted in {} states)", report.unique_states),
        },
    }
}

fn print_table(reports: &[CheckReport]) {
    let header = [
        "model",
        "params",
        "unique",
        "total",
        "depth",
        "seconds",
        "properties",
    ];
    let rows: Vec<[String; 7]> = reports
        .iter()
        .map(|r| {
            let properties = r
                .properties
                .iter()
                .map(|p| property_cell(r, p))
                .collect::<Vec<_>>()
                .join("  ");
            let seconds = match (r.stopped, &r.simulation) {
                (_, Some(s)) => format!(
                    "{:.2} (simulation, {:.0} states/s)",
                    r.seconds, s.states_per_second
                ),
                (None, None) => format!("{:.2}", r.seconds),
                (Some(why), None) => format!(
                    "{:.2} (incomplete: {})",
                    r.seconds,
                    match why {
                        haft::checker::Stop::Timeout => "timeout",
                        haft::checker::Stop::StateLimit => "state limit",
                        haft::checker::Stop::MemoryLimit => "memory limit",
                    }
                ),
            };
            [
                r.model.to_string(),
                r.params.to_string(),
                r.unique_states.to_string(),
                r.total_states.to_string(),
                r.max_depth.to_string(),
                seconds,
                properties,
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, width))| {
                let pad = width - cell.chars().count();
                // Numbers are right-aligned.
                if (2..=4).contains(&i) {
                    format!("{}{cell}", " ".repeat(pad))
                } else {
                    format!("{cell}{}", " ".repeat(pad))
                }
            })
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(&header.map(String::from));
    for row in &rows {
        line(row);
    }
}

fn print_summary(reports: &[CheckReport], expected: &BTreeSet<String>, status: u8) {
    for report in reports {
        if let Some(why) = report.stopped {
            println!(
                "\n{} ({}): stopped ({}) after {} states; the properties it did not refute are \
                 not proved.",
                report.model,
                report.params,
                match why {
                    haft::checker::Stop::Timeout => "--timeout",
                    haft::checker::Stop::StateLimit => "--max-states",
                    haft::checker::Stop::MemoryLimit => "--max-memory",
                },
                report.unique_states
            );
        }
        for property in &report.properties {
            if let (Status::Unknown, Some(note)) = (property.status, &property.note) {
                if report.complete {
                    println!(
                        "\n? {} ({}): `{}` is not judged: {note}.",
                        report.model, report.params, property.name
                    );
                }
            }
        }
    }
    for name in expected {
        let refuted = reports
            .iter()
            .filter_map(|r| r.property(name))
            .any(|p| p.refuted());
        if !refuted {
            println!("\nexpected `{name}` to be violated, but it was not refuted.");
        }
    }
    let verdict = match status {
        0 if expected.is_empty() => "every property holds",
        0 => "exactly the expected properties are violated",
        1 => "a property is violated",
        _ => "incomplete: no violation found, but not everything was explored",
    };
    println!("\nexit {status}: {verdict}");
}
