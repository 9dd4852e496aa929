//! The `haft` command: check and explore the models; run a node and talk to it.
// The binary's allocator (src/cli/alloc.rs) is the only unsafe code.
#![deny(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Small blocks from mimalloc, large ones from the system (src/cli/alloc.rs).
#[global_allocator]
static ALLOCATOR: alloc::SplitAllocator = alloc::SplitAllocator;

/// `println!` and `print!` for the whole binary that never panic: when
/// standard output is closed (a pipe into `head`), haft stops quietly with the
/// exit status of what it has reported so far (see [`out`]).
macro_rules! println {
    () => { $crate::out::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::out::write(format_args!("{}\n", format_args!($($arg)*))) };
}

/// See [`println`].
#[allow(unused_macros)]
macro_rules! print {
    ($($arg:tt)*) => { $crate::out::write(format_args!($($arg)*)) };
}

/// `eprintln!` that ignores a closed standard error instead of panicking.
macro_rules! eprintln {
    ($($arg:tt)*) => { $crate::out::write_error(format_args!("{}\n", format_args!($($arg)*))) };
}

#[path = "cli/alloc.rs"]
#[allow(unsafe_code)]
mod alloc;
#[path = "cli/bench.rs"]
mod bench;
#[path = "cli/check.rs"]
mod check;
#[path = "cli/explore.rs"]
mod explore;
#[path = "cli/out.rs"]
mod out;
#[path = "cli/run.rs"]
mod run;
#[path = "cli/trace.rs"]
mod trace;

/// haft: distributed-systems protocols as explicit, model-checked state machines.
#[derive(Parser)]
#[command(name = "haft", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check models exhaustively (or by random walks): every model at its
    /// default size, or one model.
    ///
    /// Exit status: 0 every property holds (or is not judged by the
    /// configuration, which says why) and every search completed; 1 a
    /// property is violated (a counterexample exists, or a `sometimes` property
    /// was never witnessed in a complete search); 3 incomplete (timeout, state
    /// or memory limit, or a simulation) with no violation found; 2 usage error.
    Check(check::CheckArgs),
    /// Serve haft's Explorer in the browser: a model's properties with the
    /// checker's verdicts, its states step by step, counterexamples as links,
    /// and a sequence diagram of the path.
    Explore(explore::ExploreArgs),
    /// Run one node of a cluster until SIGINT or SIGTERM.
    Node(run::NodeArgs),
    /// Run a transaction: `haft txn --node ADDR set k1=v1 k2=v2` (exit 1 if aborted).
    Txn(run::TxnArgs),
    /// Read a key's committed value (exit 1 if it has none).
    Get(run::GetArgs),
    /// A node's membership view and counters.
    Status(run::StatusArgs),
    /// Make a member hand its keys to the others and leave the ring, with
    /// progress; the node stops once its keys are handed over.
    Leave(run::LeaveArgs),
    /// Remove a member that is gone for good (dead, or its disk lost): its
    /// keys are copied to their new holders from the surviving replicas.
    Remove(run::RemoveArgs),
    /// Print the durable record in a node's data directory as JSON.
    Inspect(run::InspectArgs),
    /// Measure UDP round trip, durable-save latency, and commit latency and
    /// throughput of a 3-node cluster on loopback.
    Bench(bench::BenchArgs),
}

/// A usage error: exit status 2, like clap's own.
struct UsageError(String);

impl<E: std::fmt::Display> From<E> for UsageError {
    fn from(error: E) -> Self {
        UsageError(error.to_string())
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version go to standard output (exit 0); errors exit 2.
            let code = if error.use_stderr() { 2 } else { 0 };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    let outcome = match cli.command {
        Command::Check(args) => check::check(args),
        Command::Explore(args) => explore::explore(args),
        Command::Node(args) => run::node(args),
        Command::Txn(args) => run::txn(args),
        Command::Get(args) => run::get(args),
        Command::Status(args) => run::status(args),
        Command::Leave(args) => run::leave(args),
        Command::Remove(args) => run::remove(args),
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
