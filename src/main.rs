//! The `haft` command: check and explore the models; run a node and talk to it.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use haft::models::{self, CheckOptions, CheckReport, ModelEntry, Progress, Strategy};

#[path = "cli/bench.rs"]
mod bench;
#[path = "cli/run.rs"]
mod run;

/// haft: distributed-systems protocols as explicit, model-checked state machines.
#[derive(Parser)]
#[command(name = "haft", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check models exhaustively: every model at its default size, or one model.
    Check(CheckArgs),
    /// Serve stateright's Explorer for a model in the browser.
    Explore(ExploreArgs),
    /// Run one node of a cluster until SIGINT or SIGTERM.
    Node(run::NodeArgs),
    /// Run a transaction: `haft txn --node ADDR set k1=v1 k2=v2` (exit 1 if aborted).
    Txn(run::TxnArgs),
    /// Read a key's committed value (exit 1 if it has none).
    Get(run::GetArgs),
    /// A node's membership view and counters.
    Status(run::StatusArgs),
    /// Print the durable record in a node's data directory as JSON.
    Inspect(run::InspectArgs),
    /// Measure UDP round trip, durable-save latency, and commit latency and
    /// throughput of a 3-node cluster on loopback.
    Bench(bench::BenchArgs),
}

#[derive(Args)]
struct CheckArgs {
    /// The model to check; all models at their default sizes if omitted.
    model: Option<String>,
    /// A parameter, as key=value (repeatable); see --list.
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// List the models, their parameters, defaults and allowed values.
    #[arg(long)]
    list: bool,
    /// Explore one representative state per symmetry class (searches depth first).
    #[arg(long, conflicts_with = "bfs")]
    symmetry: bool,
    /// Checker threads (default: the machine's cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Breadth-first search (the default; shortest counterexamples on one thread).
    #[arg(long, conflicts_with = "dfs")]
    bfs: bool,
    /// Depth-first search.
    #[arg(long)]
    dfs: bool,
    /// Stop each model after this many seconds (the report then says incomplete).
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u64>,
    /// Print one JSON object per model instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ExploreArgs {
    /// The model to explore.
    model: String,
    /// A parameter, as key=value (repeatable).
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// Where to serve the Explorer.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
}

/// A usage error: exit status 2, like clap's own.
struct UsageError(String);

impl<E: std::fmt::Display> From<E> for UsageError {
    fn from(error: E) -> Self {
        UsageError(error.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Check(args) => check(args),
        Command::Explore(args) => explore(args),
        Command::Node(args) => run::node(args),
        Command::Txn(args) => run::txn(args),
        Command::Get(args) => run::get(args),
        Command::Status(args) => run::status(args),
        Command::Inspect(args) => run::inspect(args),
        Command::Bench(args) => bench::bench(args),
    };
    match outcome {
        Ok(code) => code,
        Err(UsageError(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn check(args: CheckArgs) -> Result<ExitCode, UsageError> {
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
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );
    let options = CheckOptions {
        symmetry: args.symmetry,
        threads,
        strategy: if args.dfs {
            Strategy::Dfs
        } else {
            Strategy::Bfs
        },
        timeout: args.timeout.map(Duration::from_secs),
        max_states: None,
        max_memory: None,
        progress: Some(Box::new(print_progress)),
        progress_every: Duration::from_secs(3),
    };
    let mut reports = Vec::new();
    for (entry, params) in runs {
        let report = entry.check(&params, &options)?;
        if args.json {
            println!(
                "{}",
                serde_json::to_string(&report).expect("reports serialise")
            );
        }
        reports.push(report);
    }
    if !args.json {
        print_table(&reports);
        print_failures(&reports);
    }
    Ok(if reports.iter().all(CheckReport::passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn explore(args: ExploreArgs) -> Result<ExitCode, UsageError> {
    let entry = models::find(&args.model)?;
    let params = entry.params(&args.params)?;
    eprintln!(
        "Explorer for {} ({params}) on http://{}/ — Ctrl-C to stop",
        entry.name, args.addr
    );
    entry.explore(&params, args.addr)?;
    Ok(ExitCode::SUCCESS)
}

fn print_progress(progress: &Progress) {
    eprintln!(
        "  … {}: {} states ({} unique), depth {}, {:.0}s",
        progress.model,
        progress.total_states,
        progress.unique_states,
        progress.max_depth,
        progress.elapsed.as_secs_f64()
    );
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
                .map(|p| format!("{} {}", if p.holds { "✓" } else { "✗" }, p.name))
                .collect::<Vec<_>>()
                .join("  ");
            let seconds = if r.complete {
                format!("{:.2}", r.seconds)
            } else {
                format!("{:.2} (incomplete)", r.seconds)
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

fn print_failures(reports: &[CheckReport]) {
    for report in reports {
        if !report.complete {
            println!(
                "\n{} ({}): stopped by --timeout before the whole space was explored.",
                report.model, report.params
            );
        }
        for property in report.properties.iter().filter(|p| !p.holds) {
            println!();
            match &property.counterexample {
                Some(steps) => {
                    println!(
                        "✗ {} ({}): `{}` ({}) is violated. Counterexample:",
                        report.model, report.params, property.name, property.expectation
                    );
                    for (i, step) in steps.iter().enumerate() {
                        println!("  {i:>3}. {}", step.action);
                    }
                    if let Some(last) = steps.last() {
                        println!("  final state: {}", last.state);
                    }
                }
                None => println!(
                    "✗ {} ({}): `{}` ({}) was never witnessed.",
                    report.model, report.params, property.name, property.expectation
                ),
            }
        }
    }
}
