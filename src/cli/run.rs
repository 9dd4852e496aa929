//! The runtime commands of `haft`: `node`, `txn`, `get`, `status`, `inspect`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use bytes::Bytes;
use clap::{Args, ValueEnum};
use haft::commit::{Outcome, TxnRecord, show};
use haft::node::{MemberStatus, NodeRecord, Reply, Request};
use haft::resp::{ClusterBackend, RespConfig, RespServer};
use haft::runtime::client::{Client, ClientError, ClientOptions};
use haft::runtime::codec::ClusterKey;
use haft::runtime::config::RawConfig;
use haft::runtime::node;
use haft::storage::stored_node_id;

use crate::UsageError;

/// `haft node`: run one node until SIGINT or SIGTERM.
#[derive(Args)]
pub struct NodeArgs {
    /// A TOML configuration file (see the README); flags override its settings.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// This node's id (0–65535).
    #[arg(long)]
    id: Option<u64>,
    /// The UDP address to listen on.
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Another node, as ID=HOST:PORT (repeat for each peer).
    #[arg(long = "peer", value_name = "ID=HOST:PORT")]
    peers: Vec<String>,
    /// The directory of the node's durable record (created if missing).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// How many nodes hold each key (default 3, at most the number of nodes).
    #[arg(long, value_name = "N")]
    replicas: Option<usize>,
    /// Accept fault-injection requests from clients (tests only).
    #[arg(long)]
    allow_fault_injection: bool,
    /// Serve Redis clients (RESP2 and RESP3) on this TCP address.
    #[arg(long, value_name = "HOST:PORT")]
    resp: Option<String>,
    /// The password Redis clients must give with AUTH (needs --resp).
    #[arg(long, value_name = "PASSWORD")]
    requirepass: Option<String>,
    /// A file holding the cluster key: every datagram is tagged and checked
    /// with HMAC-SHA256 under it (the same file on every node).
    #[arg(long, value_name = "FILE")]
    cluster_key_file: Option<PathBuf>,
    /// Join the running cluster through the member at this address (no
    /// --peer): the node starts empty and becomes a member once the members
    /// agree on a ring with it, then takes over its keys.
    #[arg(long, value_name = "HOST:PORT")]
    join: Option<String>,
    /// Remove a member the failure detector has held dead this long (at
    /// least failure_timeout_ms + suspicion_timeout_ms; needs replicas ≥ 2).
    /// Set it on every node. Default: never; `haft remove` by hand.
    #[arg(long, value_name = "MS")]
    auto_remove_after_ms: Option<u64>,
}

/// Where a client command sends its request.
#[derive(Args)]
pub struct Target {
    /// The node to ask.
    #[arg(long, value_name = "HOST:PORT")]
    node: String,
    /// Give up after this many seconds (retries included).
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    timeout: f64,
    /// The cluster key file, if the nodes have one.
    #[arg(long, value_name = "FILE")]
    cluster_key_file: Option<PathBuf>,
}

/// The one transaction kind.
#[derive(Clone, Copy, ValueEnum)]
pub enum TxnKind {
    /// Write every key=value atomically.
    Set,
}

/// `haft txn`.
#[derive(Args)]
pub struct TxnArgs {
    #[command(flatten)]
    target: Target,
    /// What to do.
    kind: TxnKind,
    /// The writes, as key=value.
    #[arg(required = true, value_name = "KEY=VALUE")]
    writes: Vec<String>,
    /// Run the transaction again, up to N times, while it aborts on a
    /// conflict with another transaction (a key locked or changed): each
    /// time as a new transaction, after an exponential backoff with jitter.
    /// Other aborts, and a transaction whose outcome is unknown, are never
    /// retried.
    #[arg(long, value_name = "N", default_value_t = 0)]
    retry: u32,
}

/// `haft get`.
#[derive(Args)]
pub struct GetArgs {
    #[command(flatten)]
    target: Target,
    /// The key to read.
    key: String,
}

/// `haft status`.
#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    target: Target,
    /// Print the status as JSON.
    #[arg(long)]
    json: bool,
}

/// `haft leave`.
#[derive(Args)]
pub struct LeaveArgs {
    /// The leaving member (it coordinates its own departure).
    #[command(flatten)]
    target: Target,
    /// How long to wait for the handoff, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0)]
    wait: f64,
}

/// `haft remove`.
#[derive(Args)]
pub struct RemoveArgs {
    /// A live member, which coordinates the removal.
    #[command(flatten)]
    target: Target,
    /// The id of the member to remove.
    id: u16,
    /// How long to wait for the survivors' handoff, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0)]
    wait: f64,
}

/// `haft inspect`.
#[derive(Args)]
pub struct InspectArgs {
    /// A node's data directory.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
}

/// Prints `text` and a newline; a closed stdout (`| head`) is not an error.
fn print(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{text}");
}

pub fn node(args: NodeArgs) -> Result<ExitCode, UsageError> {
    let mut raw = match &args.config {
        Some(path) => RawConfig::from_file(path)?,
        None => RawConfig::default(),
    };
    raw.id = args.id.or(raw.id);
    raw.listen = args.listen.or(raw.listen);
    raw.data = args.data.or(raw.data);
    raw.replicas = args.replicas.or(raw.replicas);
    raw.allow_fault_injection |= args.allow_fault_injection;
    raw.resp = args.resp.or(raw.resp);
    raw.requirepass = args.requirepass.or(raw.requirepass);
    raw.cluster_key_file = args.cluster_key_file.or(raw.cluster_key_file);
    raw.join = args.join.or(raw.join);
    raw.auto_remove_after_ms = args.auto_remove_after_ms.or(raw.auto_remove_after_ms);
    for peer in &args.peers {
        raw.add_peer(peer)?;
    }
    let config = raw.validate()?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let running = match node::start(&config) {
        Ok(running) => running,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let resp = match config.resp {
        Some(listen) => {
            let mut resp_config = RespConfig::new(listen);
            resp_config.requirepass = config.requirepass.clone();
            let backend = Arc::new(ClusterBackend::new(running.local_handle(), &config));
            match RespServer::start(resp_config, backend) {
                Ok(server) => Some(server),
                Err(error) => {
                    eprintln!("error: {error}");
                    running.shutdown_handle().shutdown();
                    let _ = running.wait();
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        None => None,
    };
    let handle = running.shutdown_handle();
    if let Err(error) = ctrlc::set_handler(move || handle.shutdown()) {
        eprintln!("warning: cannot handle SIGINT/SIGTERM ({error}); stop the node with SIGKILL");
    }
    println!(
        "haft node {} listening on {} (data in {})",
        config.id,
        running.local_addr(),
        config.data.display()
    );
    if let Some(server) = &resp {
        println!(
            "haft node {} serving Redis clients on {}",
            config.id,
            server.local_addr()
        );
    }
    let stopped = running.wait();
    if let Some(server) = resp {
        // The node has stopped: commands still running get "unavailable".
        if let Err(error) = server.shutdown() {
            eprintln!("warning: the RESP server stopped with an error: {error}");
        }
    }
    match stopped {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error) => {
            eprintln!("error: {error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The client's whole wait, `--timeout`.
fn timeout(target: &Target) -> Result<Duration, UsageError> {
    if !(target.timeout.is_finite() && target.timeout > 0.0) {
        return Err(UsageError(
            "--timeout must be a positive number of seconds".into(),
        ));
    }
    Duration::try_from_secs_f64(target.timeout)
        .map_err(|_| UsageError("--timeout is too large".into()))
}

/// A client of `target`'s node that waits `timeout` in all.
fn client(target: &Target, timeout: Duration) -> Result<Client, UsageError> {
    let options = ClientOptions {
        timeout,
        retry_after: ClientOptions::default().retry_after.min(timeout),
    };
    let client = Client::new(&target.node, options)?;
    Ok(match &target.cluster_key_file {
        Some(path) => {
            client.with_key(ClusterKey::from_file(path).map_err(|e| UsageError(e.to_string()))?)
        }
        None => client,
    })
}

/// Prints a client failure: exit 1, or 2 for a bad address.
fn failed(error: ClientError) -> Result<ExitCode, UsageError> {
    match error {
        ClientError::BadAddress(_) => Err(UsageError(error.to_string())),
        error => {
            eprintln!("error: {error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn refused(reason: &str) -> ExitCode {
    eprintln!("refused: {reason}");
    ExitCode::FAILURE
}

fn unexpected(reply: &Reply) -> ExitCode {
    eprintln!("error: the node answered with something else: {reply:?}");
    ExitCode::FAILURE
}

pub fn txn(args: TxnArgs) -> Result<ExitCode, UsageError> {
    let TxnKind::Set = args.kind;
    let mut writes = BTreeMap::new();
    for pair in &args.writes {
        let Some((key, value)) = pair.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(UsageError(format!("`{pair}` is not KEY=VALUE")));
        };
        let value = Some(Bytes::copy_from_slice(value.as_bytes()));
        if writes
            .insert(Bytes::copy_from_slice(key.as_bytes()), value)
            .is_some()
        {
            return Err(UsageError(format!("key `{key}` is written twice")));
        }
    }
    let mut client = client(&args.target, timeout(&args.target)?)?;
    let request = Request::Txn {
        reads: BTreeMap::new(),
        writes,
    };
    // Each attempt is a new request (a new request id): the node answers a
    // request id once, so a retry under the old id would only fetch the same
    // abort. The client resends one attempt under its id until --timeout, so
    // an attempt whose outcome is unknown is never run twice; it ends the
    // command instead.
    let mut retries = 0;
    loop {
        let reply = match client.request(request.clone()) {
            Ok(reply) => reply,
            Err(error) => return failed(error),
        };
        let (txn, outcome, reason) = match reply {
            Reply::Txn {
                txn,
                outcome,
                reason,
            } => (txn, outcome, reason),
            Reply::Refused { reason } => return Ok(refused(&reason)),
            other => return Ok(unexpected(&other)),
        };
        let Some(reason) = reason.filter(|_| outcome == Outcome::Abort) else {
            println!("{} {txn}", outcome.as_str());
            return Ok(match outcome {
                Outcome::Commit => ExitCode::SUCCESS,
                Outcome::Abort => ExitCode::FAILURE,
            });
        };
        if retries < args.retry && reason.is_conflict() {
            let wait = backoff(retries, rand::random::<f64>());
            retries += 1;
            eprintln!(
                "retry {retries} of {} in {} ms: aborted {txn}: {reason}",
                args.retry,
                wait.as_millis()
            );
            std::thread::sleep(wait);
            continue;
        }
        println!("aborted {txn}: {reason}");
        if retries > 0 {
            eprintln!(
                "gave up after {retries} {}",
                if retries == 1 { "retry" } else { "retries" }
            );
        }
        return Ok(ExitCode::FAILURE);
    }
}

/// The wait before the first retry of a conflicting transaction; each later
/// one doubles, up to [`BACKOFF_CAP`].
const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// The longest wait between two retries.
const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// The wait before retry number `retry` (0 for the first): [`BACKOFF_BASE`]
/// doubled `retry` times, at most [`BACKOFF_CAP`], of which a `jitter`
/// fraction (in [0, 1)) of the second half is waited, so that transactions
/// that conflicted with each other do not run again in step.
fn backoff(retry: u32, jitter: f64) -> Duration {
    let doubled = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
    let ceiling = BACKOFF_BASE.saturating_mul(doubled).min(BACKOFF_CAP);
    let half = ceiling / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

/// How long `get` waits for a node's status, after its read went unanswered.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

pub fn get(args: GetArgs) -> Result<ExitCode, UsageError> {
    let timeout = timeout(&args.target)?;
    let mut client = client(&args.target, timeout)?;
    let key = Bytes::copy_from_slice(args.key.as_bytes());
    match client.request(Request::Read { keys: vec![key] }) {
        Ok(Reply::Values(values)) => match values.into_iter().next() {
            Some((_, Some(versioned))) => {
                println!("{}", String::from_utf8_lossy(&versioned.value));
                Ok(ExitCode::SUCCESS)
            }
            _ => {
                eprintln!("{} has no committed value", args.key);
                Ok(ExitCode::FAILURE)
            }
        },
        Ok(Reply::Unreachable(unreachable)) => {
            eprintln!("error: {unreachable}");
            Ok(ExitCode::FAILURE)
        }
        Ok(Reply::Refused { reason }) => Ok(refused(&reason)),
        Ok(other) => Ok(unexpected(&other)),
        Err(error @ ClientError::Unreachable { .. }) => unanswered_read(&args, timeout, error),
        Err(error) => failed(error),
    }
}

/// A read without an answer in time: the node asked may be down, or up and
/// waiting beyond itself. A status request (answered by the node alone) tells
/// which, so that the error blames the right thing.
fn unanswered_read(
    args: &GetArgs,
    timeout: Duration,
    error: ClientError,
) -> Result<ExitCode, UsageError> {
    let mut probe = client(&args.target, PROBE_TIMEOUT.min(timeout))?;
    let Ok(Reply::Status(view)) = probe.request(Request::Status) else {
        return failed(error);
    };
    let peers: Vec<String> = view
        .members
        .iter()
        .filter(|(_, status)| **status != MemberStatus::Me)
        .map(|(node, status)| format!("node {node} {status}"))
        .collect();
    eprintln!(
        "error: node {} at {} is up, but its read of key {} got no answer within {timeout:?}: \
         the replica it asked has not answered (it may be down or cut off), or the key is \
         locked by a transaction whose outcome it is waiting for; it sees {}. Try again, or \
         with a longer --timeout",
        view.node,
        probe.node(),
        show(args.key.as_bytes()),
        peers.join(", ")
    );
    Ok(ExitCode::FAILURE)
}

pub fn status(args: StatusArgs) -> Result<ExitCode, UsageError> {
    let mut client = client(&args.target, timeout(&args.target)?)?;
    let view = match client.request(Request::Status) {
        Ok(Reply::Status(view)) => view,
        Ok(other) => return Ok(unexpected(&other)),
        Err(error) => return failed(error),
    };
    if args.json {
        print(&serde_json::to_string_pretty(&view).expect("a status serialises"));
        return Ok(ExitCode::SUCCESS);
    }
    let mut text = format!(
        "node {} (incarnation {}), ring epoch {}, {} {} per key\n",
        view.node,
        view.incarnation,
        view.epoch,
        view.replicas,
        if view.replicas == 1 {
            "replica"
        } else {
            "replicas"
        }
    );
    let members: Vec<String> = view
        .members
        .iter()
        .map(|(node, status)| format!("{node} {status}"))
        .collect();
    text += &format!("members: {}\n", members.join(", "));
    text += &format!(
        "coordinating {}, prepared {}, keys {}{}\n",
        view.coordinating,
        view.prepared,
        view.keys,
        if view.member { "" } else { " (not a member)" }
    );
    if let Some(handoff) = &view.handoff {
        let awaiting: Vec<String> = handoff.awaiting.iter().map(u16::to_string).collect();
        text += &format!(
            "handoff: {}/{} keys handed over, awaiting {}\n",
            handoff.keys_sent,
            handoff.keys_to_send,
            if awaiting.is_empty() {
                "none".into()
            } else {
                format!("node {}", awaiting.join(", "))
            }
        );
    }
    for (name, value) in &view.counters {
        text += &format!("  {name:<24} {value}\n");
    }
    print(text.trim_end());
    Ok(ExitCode::SUCCESS)
}

/// Runs a ring change at `client`'s node, retrying while it is refused
/// because an earlier one is still moving keys or aborts on a conflict;
/// returns the epoch the node installs after it (`None` if the node stopped
/// answering first: a node that left may install the new ring, hand over and
/// stop at once), or the exit code of a failure.
fn change_ring(
    client: &mut Client,
    request: Request,
    wait: Duration,
) -> Result<Option<u64>, ExitCode> {
    let before = match client.request(Request::Status) {
        Ok(Reply::Status(view)) => view.epoch,
        Ok(other) => return Err(unexpected(&other)),
        Err(error) => return Err(failed(error).unwrap_or(ExitCode::FAILURE)),
    };
    let start = Instant::now();
    loop {
        let retry = match client.request(request.clone()) {
            Ok(Reply::Txn {
                outcome: Outcome::Commit,
                ..
            }) => break,
            Ok(Reply::Txn { reason, .. }) => reason.map(|r| r.to_string()).unwrap_or_default(),
            Ok(Reply::Refused { reason }) if reason.contains("still moving") => reason,
            Ok(Reply::Refused { reason }) => return Err(refused(&reason)),
            Ok(other) => return Err(unexpected(&other)),
            Err(error) => {
                return Err(failed(error).unwrap_or_else(|e| {
                    eprintln!("error: {}", e.0);
                    ExitCode::from(2)
                }));
            }
        };
        if start.elapsed() > wait {
            eprintln!("error: the ring change did not commit within the wait: {retry}");
            return Err(ExitCode::FAILURE);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    // The commit is answered once the decision is durable; the node installs
    // the new ring when its own participant learns the outcome, just after.
    let installed = Instant::now();
    loop {
        match client.request(Request::Status) {
            Ok(Reply::Status(view)) if view.epoch > before => return Ok(Some(view.epoch)),
            Ok(Reply::Status(_)) if installed.elapsed() < RING_INSTALL_WAIT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(Reply::Status(view)) => return Ok(Some(view.epoch)),
            Ok(other) => return Err(unexpected(&other)),
            Err(ClientError::Unreachable { .. }) => return Ok(None),
            Err(error) => return Err(failed(error).unwrap_or(ExitCode::FAILURE)),
        }
    }
}

/// How long `change_ring` waits to see the node install the ring its change
/// committed before it reports the epoch the node is at.
const RING_INSTALL_WAIT: Duration = Duration::from_secs(2);

/// How many polls in a row a node whose leave committed may leave unanswered
/// before `haft leave` takes it to have handed over and stopped, though no
/// poll saw it outside the ring (it may install the new ring, hand over and
/// stop between two polls).
const UNANSWERED_AFTER_LEAVE: u32 = 3;

/// Follows `client`'s node until its handoff is over, with a progress bar
/// of the keys it has handed over. A node that `stops` once it has handed
/// over (one whose leave committed) is done when it no longer answers after
/// it was seen outside the ring, or for [`UNANSWERED_AFTER_LEAVE`] polls in
/// a row.
fn follow_handoff(client: &mut Client, wait: Duration, stops: bool) -> Result<(), ExitCode> {
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} keys, {elapsed}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message("handing over");
    let start = Instant::now();
    let mut left = false;
    let mut unanswered = 0;
    loop {
        let status = client.request(Request::Status);
        unanswered = match status {
            Err(ClientError::Unreachable { .. }) => unanswered + 1,
            _ => 0,
        };
        match status {
            Ok(Reply::Status(view)) => {
                if let Some(handoff) = &view.handoff {
                    bar.set_length(handoff.keys_to_send);
                    bar.set_position(handoff.keys_sent);
                }
                left |= !view.member;
                if view.handoff.is_none() {
                    bar.finish_with_message("handed over");
                    return Ok(());
                }
            }
            // A node that left stops once it has handed everything over.
            Err(ClientError::Unreachable { .. })
                if stops && (left || unanswered >= UNANSWERED_AFTER_LEAVE) =>
            {
                bar.finish_with_message("handed over; the node stopped");
                return Ok(());
            }
            // A busy node may miss a short poll: ask again.
            Err(ClientError::Unreachable { .. }) => {}
            Ok(other) => return Err(unexpected(&other)),
            Err(error) => return Err(failed(error).unwrap_or(ExitCode::FAILURE)),
        }
        if start.elapsed() > wait {
            bar.abandon();
            eprintln!("error: the handoff did not finish within the wait; see `haft status`");
            return Err(ExitCode::FAILURE);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn seconds(value: f64, flag: &str) -> Result<Duration, UsageError> {
    if !(value.is_finite() && value > 0.0) {
        return Err(UsageError(format!(
            "{flag} must be a positive number of seconds"
        )));
    }
    Duration::try_from_secs_f64(value).map_err(|_| UsageError(format!("{flag} is too large")))
}

pub fn leave(args: LeaveArgs) -> Result<ExitCode, UsageError> {
    let wait = seconds(args.wait, "--wait")?;
    let mut client = client(&args.target, timeout(&args.target)?)?;
    let node = match client.request(Request::Status) {
        Ok(Reply::Status(view)) => view.node,
        Ok(other) => return Ok(unexpected(&other)),
        Err(error) => return failed(error),
    };
    let epoch = match change_ring(&mut client, Request::Leave { node }, wait) {
        Ok(epoch) => epoch,
        Err(code) => return Ok(code),
    };
    match epoch {
        Some(epoch) => print(&format!("node {node} left the ring at epoch {epoch}")),
        None => print(&format!("node {node} left the ring")),
    }
    // Short polls: a node that has stopped does not answer at all.
    let mut poll = self::client(&args.target, Duration::from_secs(1))?;
    if let Err(code) = follow_handoff(&mut poll, wait, true) {
        return Ok(code);
    }
    print(&format!("node {node} handed over its keys and stopped"));
    Ok(ExitCode::SUCCESS)
}

pub fn remove(args: RemoveArgs) -> Result<ExitCode, UsageError> {
    let wait = seconds(args.wait, "--wait")?;
    let mut client = client(&args.target, timeout(&args.target)?)?;
    let epoch = match change_ring(&mut client, Request::Remove { node: args.id }, wait) {
        Ok(epoch) => epoch,
        Err(code) => return Ok(code),
    };
    match epoch {
        Some(epoch) => print(&format!("node {} removed at epoch {epoch}", args.id)),
        None => print(&format!("node {} removed", args.id)),
    }
    if let Err(code) = follow_handoff(&mut client, wait, false) {
        return Ok(code);
    }
    print("the keys it held are on their new holders");
    Ok(ExitCode::SUCCESS)
}

pub fn inspect(args: InspectArgs) -> Result<ExitCode, UsageError> {
    if !args.data.is_dir() {
        return Err(UsageError(format!(
            "{} is not a directory; give a node's data directory",
            args.data.display()
        )));
    }
    let node = match stored_node_id(&args.data) {
        Ok(node) => node,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::FAILURE);
        }
    };
    match node::load_record(&args.data) {
        Ok(Some(record)) => {
            let view = inspect_view(node, &record);
            print(&serde_json::to_string_pretty(&view).expect("JSON serialises"));
            Ok(ExitCode::SUCCESS)
        }
        Ok(None) => {
            eprintln!("{} holds no record yet", args.data.display());
            Ok(ExitCode::FAILURE)
        }
        Err(error) => {
            eprintln!("error: {error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// A node's record as people read it: the node id stored beside it, keys and
/// values as text (or escaped bytes), transaction ids as
/// `node.incarnation.sequence`.
fn inspect_view(node: Option<u64>, record: &NodeRecord) -> serde_json::Value {
    use serde_json::json;
    let text = |bytes: &[u8]| -> String {
        match std::str::from_utf8(bytes) {
            Ok(text) => text.to_owned(),
            Err(_) => format!("{:?}", Bytes::copy_from_slice(bytes)),
        }
    };
    let store: serde_json::Map<String, serde_json::Value> = record
        .participant
        .store
        .iter()
        .map(|(key, versioned)| {
            let entry = json!({
                "value": text(&versioned.value),
                "version": versioned.version.to_string(),
            });
            (text(key), entry)
        })
        .collect();
    let txns: serde_json::Map<String, serde_json::Value> = record
        .participant
        .txns
        .iter()
        .map(|(txn, state)| {
            let state = match state {
                TxnRecord::Prepared { reads, writes, peers } => json!({
                    "prepared": {
                        "reads": reads.iter().map(|k| text(k)).collect::<Vec<_>>(),
                        "writes": writes.iter().map(|(k, v)| (text(k), v.as_ref().map(|v| text(v)))).collect::<BTreeMap<_, _>>(),
                        "peers": peers.iter().map(|p| p.0).collect::<Vec<_>>(),
                    }
                }),
                TxnRecord::Refused(refusal) => json!({ "refused": refusal.to_string() }),
                TxnRecord::Decided(outcome) => json!(outcome.as_str()),
            };
            (txn.to_string(), state)
        })
        .collect();
    let commits: serde_json::Map<String, serde_json::Value> = record
        .coordinator
        .commits
        .iter()
        .map(|(txn, participants)| {
            let participants: Vec<u16> = participants.iter().map(|p| p.0).collect();
            (txn.to_string(), json!(participants))
        })
        .collect();
    let answers: serde_json::Map<String, serde_json::Value> = record
        .answers
        .iter()
        .map(|(client, answer)| {
            let entry = json!({
                "request": answer.request,
                "txn": answer.txn.to_string(),
                "outcome": answer.outcome.as_str(),
            });
            (format!("{client:#x}"), entry)
        })
        .collect();
    let watermarks: serde_json::Map<String, serde_json::Value> = record
        .participant
        .finished_below
        .iter()
        .map(|(node, below)| (node.0.to_string(), json!(below.to_string())))
        .collect();
    json!({
        "node": node,
        "incarnation": record.incarnation(),
        "store": store,
        "transactions": txns,
        "finished_below": watermarks,
        "commit_records": commits,
        "answers": answers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        assert_eq!(backoff(0, 0.0), Duration::from_millis(50));
        assert_eq!(backoff(0, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(3, 0.0), Duration::from_millis(400));
        assert_eq!(backoff(3, 0.5), Duration::from_millis(600));
        for retry in [6, 31, 32, u32::MAX] {
            assert_eq!(backoff(retry, 1.0), BACKOFF_CAP, "retry {retry}");
            assert_eq!(backoff(retry, 0.0), BACKOFF_CAP / 2, "retry {retry}");
        }
    }
}
