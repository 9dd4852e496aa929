//! `haft bench`: the floor of a commit (UDP round trip and durable append,
//! each alone and in the order a commit needs them) and the commit latency
//! and throughput of a 3-node cluster, measured in one run on loopback.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use clap::Args;
use haft::commit::Outcome;
use std::collections::BTreeMap;

use bytes::Bytes;
use haft::NodeId;
use haft::node::{Layout, Reply, Request};
use haft::runtime::client::{Client, ClientOptions, Clients};
use haft::runtime::config::RawConfig;
use haft::runtime::node::{self, RunningNode};
use haft::storage::{FileStorage, LogOptions, Storage};

use crate::UsageError;

/// `haft bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Where the nodes' data directories go (a fresh subdirectory, removed
    /// afterwards). It must be on the disk to measure: not a tmpfs.
    #[arg(long, value_name = "DIR", default_value_os_t = std::env::temp_dir())]
    dir: PathBuf,
    /// Transactions at each concurrency level, shared among its clients; each
    /// level runs on a fresh cluster.
    #[arg(long, default_value_t = 640)]
    per_level: usize,
    /// Concurrency levels (clients), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    clients: Vec<usize>,
    /// Also run N transactions at 64 clients on one cluster, over a bounded
    /// set of keys, and report the p50 latency of the first and the last
    /// 10,000 (or tenth, if fewer), the bytes in the data directories and the
    /// process's peak memory at the end: whether cost grows with history.
    #[arg(long, value_name = "N")]
    txns: Option<usize>,
    /// Print one JSON object instead of the tables.
    #[arg(long)]
    json: bool,
}

/// Latencies sorted, for percentiles.
struct Samples(Vec<Duration>);

impl Samples {
    fn new(mut samples: Vec<Duration>) -> Samples {
        samples.sort_unstable();
        Samples(samples)
    }

    fn percentile(&self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * (self.0.len() - 1) as f64).round() as usize;
        self.0[rank.min(self.0.len() - 1)]
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn io(what: &str) -> impl Fn(std::io::Error) -> UsageError + '_ {
    move |e| UsageError(format!("{what}: {e}"))
}

/// A loopback socket for a probe, with a timeout so that a lost datagram
/// fails the probe instead of hanging it.
fn probe_socket() -> Result<(UdpSocket, SocketAddr), UsageError> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(io("bind"))?;
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(io("socket"))?;
    let addr = socket.local_addr().map_err(io("address"))?;
    Ok((socket, addr))
}

/// `count` rounds from `client`: 64 bytes to `to`, then the answer, each
/// timed; then an empty datagram, which stops whoever answers.
fn rounds(client: &UdpSocket, to: SocketAddr, count: usize) -> Result<Samples, UsageError> {
    let payload = [7u8; 64];
    let mut buffer = [0; 256];
    let mut samples = Vec::with_capacity(count);
    let mut result = Ok(());
    for _ in 0..count {
        let start = Instant::now();
        let round = client
            .send_to(&payload, to)
            .and_then(|_| client.recv_from(&mut buffer));
        if let Err(e) = round {
            result = Err(io("a probe's round")(e));
            break;
        }
        samples.push(start.elapsed());
    }
    let _ = client.send_to(&[], to);
    result.map(|()| Samples::new(samples))
}

/// The median UDP round trip between two loopback sockets.
fn round_trip(count: usize) -> Result<Samples, UsageError> {
    let (server, server_addr) = probe_socket()?;
    let (client, _) = probe_socket()?;
    let echo = thread::spawn(move || {
        let mut buffer = [0; 256];
        while let Ok((len, from)) = server.recv_from(&mut buffer) {
            if len == 0 || server.send_to(&buffer[..len], from).is_err() {
                return;
            }
        }
    });
    let samples = rounds(&client, server_addr, count);
    let _ = echo.join();
    samples
}

/// The record a floor probe appends: the size of a prepared transaction's
/// delta in the node's log format.
const PROBE_RECORD: [u8; 128] = [42; 128];

/// A fresh log in the node's format, in `dir`, for a probe.
fn probe_log(dir: &std::path::Path, name: &str) -> Result<FileStorage, UsageError> {
    let mut log = FileStorage::new(dir.join(name), LogOptions::default());
    log.recover().map_err(|e| UsageError(e.to_string()))?;
    Ok(log)
}

/// One durable append: [`PROBE_RECORD`], then `fdatasync`.
fn append_durably(log: &mut FileStorage) -> Result<(), UsageError> {
    let fail = |e: haft::storage::LogError| UsageError(e.to_string());
    log.append(&PROBE_RECORD).map_err(fail)?;
    log.sync().map_err(fail)?;
    Ok(())
}

/// The latency of one durable append (write one record of the size of a
/// prepared transaction's delta, then `fdatasync`) to the node's log format.
fn durable_save(dir: &std::path::Path, count: usize) -> Result<Samples, UsageError> {
    let mut log = probe_log(dir, "fsync")?;
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        append_durably(&mut log)?;
        samples.push(start.elapsed());
    }
    Ok(Samples::new(samples))
}

/// The commit's critical path with no protocol on it, in the order a
/// one-client commit needs its parts: client → node 1 → node 2, durable
/// append at node 2 → node 1, durable append at node 1 → client. Three
/// threads with a socket each (the client, and one per node, as each node's
/// event loop), two logs in the node's format; `count` rounds back to back.
///
/// This is 2 round trips and 2 durable appends, as [`round_trip`] and
/// [`durable_save`] measure them apart, but each append here comes after the
/// disk has been idle for the rest of the round, as in a commit. On a
/// virtual disk that polls while busy, an append after idle is slower than
/// one of a back-to-back series (verification/REPORT.md, "Seventh round").
fn critical_path(dir: &std::path::Path, count: usize) -> Result<Samples, UsageError> {
    /// One node: a message from `upstream` goes on to `next` if there is
    /// one; any other message (and, at the last node, every message) is saved
    /// and answered to `upstream`. An empty datagram stops the path.
    fn node(
        socket: UdpSocket,
        mut log: FileStorage,
        upstream: SocketAddr,
        next: Option<SocketAddr>,
    ) -> Result<(), UsageError> {
        let mut buffer = [0; 256];
        loop {
            let (len, from) = socket.recv_from(&mut buffer).map_err(io("receive"))?;
            let to = match next {
                Some(next) if len == 0 || from == upstream => next,
                _ if len == 0 => return Ok(()),
                _ => {
                    append_durably(&mut log)?;
                    upstream
                }
            };
            socket.send_to(&buffer[..len], to).map_err(io("send"))?;
            if len == 0 {
                return Ok(());
            }
        }
    }
    let (client, client_addr) = probe_socket()?;
    let (node1, node1_addr) = probe_socket()?;
    let (node2, node2_addr) = probe_socket()?;
    let (log1, log2) = (probe_log(dir, "path-n1")?, probe_log(dir, "path-n2")?);
    let node1 = thread::spawn(move || node(node1, log1, client_addr, Some(node2_addr)));
    let node2 = thread::spawn(move || node(node2, log2, node1_addr, None));
    let mut result = rounds(&client, node1_addr, count);
    for handle in [node1, node2] {
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) if result.is_ok() => result = Err(e),
            _ => {}
        }
    }
    result
}

fn free_addr() -> Result<SocketAddr, UsageError> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(io("bind"))?;
    socket.local_addr().map_err(io("address"))
}

struct Level {
    clients: usize,
    latency: Samples,
    committed: usize,
    aborted: usize,
    seconds: f64,
    /// Node 1's log appends and syncs during the level, and how many of
    /// the syncs its event loop made itself.
    saves: u64,
    persists: u64,
    persists_by_loop: u64,
}

/// A 3-node cluster started in this process, each node with its own data
/// directory under `dir`, one replica per key.
struct BenchCluster {
    nodes: Vec<RunningNode>,
    addrs: Vec<SocketAddr>,
    placement: Layout,
    dirs: Vec<PathBuf>,
}

impl BenchCluster {
    fn start(dir: &std::path::Path, name: &str) -> Result<BenchCluster, UsageError> {
        let addrs: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect::<Result<_, _>>()?;
        let mut nodes: Vec<RunningNode> = Vec::new();
        let mut placement: Option<Layout> = None;
        let mut dirs = Vec::new();
        for id in 1..=3u64 {
            // One replica per key: a transaction on two keys has two participants.
            let data = dir.join(format!("{name}-n{id}"));
            let mut raw = RawConfig {
                id: Some(id),
                listen: Some(addrs[id as usize - 1].to_string()),
                data: Some(data.clone()),
                replicas: Some(1),
                ..RawConfig::default()
            };
            for peer in 1..=3u64 {
                if peer != id {
                    raw.add_peer(&format!("{peer}={}", addrs[peer as usize - 1]))?;
                }
            }
            let config = raw.validate()?;
            let node_config = config.node_config();
            if placement.is_none() {
                placement = Some(
                    Layout::new(1, &node_config.members, node_config.vnodes, 1)
                        .map_err(|e| UsageError(e.to_string()))?,
                );
            }
            nodes.push(node::start(&config).map_err(|e| UsageError(e.to_string()))?);
            dirs.push(data);
        }
        // Warm up: every node answers.
        for addr in &addrs {
            let mut client = Client::new(&addr.to_string(), ClientOptions::default())?;
            client.request(Request::Status)?;
        }
        let placement = placement.expect("three nodes were configured");
        Ok(BenchCluster {
            nodes,
            addrs,
            placement,
            dirs,
        })
    }

    /// A key owned by node `owner`, named after `prefix`.
    fn key_for(&self, owner: u16, prefix: &str) -> Bytes {
        (0..)
            .map(|i| format!("{prefix}-{i}"))
            .find(|k| self.placement.holders(k.as_bytes())[0] == NodeId(owner))
            .map(Bytes::from)
            .expect("some key is owned by every node")
    }

    /// A transaction writing one key at node 1 and one at node 2.
    fn two_keys(&self, prefix: &str) -> BTreeMap<Bytes, Option<Bytes>> {
        [
            (self.key_for(1, prefix), Some(Bytes::from_static(b"x"))),
            (self.key_for(2, prefix), Some(Bytes::from_static(b"y"))),
        ]
        .into()
    }

    /// Runs each client's transactions through node 1, the clients in
    /// parallel, each with one transaction in flight; returns every answer
    /// with its latency, in the order they came. All clients share one thread and
    /// one socket ([`Clients`]), as redis-benchmark drives its connections,
    /// so the load generator takes little of the machine it measures. A plan
    /// yields its transactions as they are sent, so a long run holds no more
    /// of them than the clients have in hand.
    fn drive(&self, mut plans: Vec<Plan>) -> Result<Vec<Answer>, UsageError> {
        let node1 = self.addrs[0].to_string();
        let mut clients = Clients::new(&node1, plans.len(), ClientOptions::default())?;
        let hint: usize = plans.iter().map(|plan| plan.size_hint().0).sum();
        let mut answers = Vec::with_capacity(hint);
        let start = Instant::now();
        let mut began = vec![start; plans.len()];
        let mut waiting = 0;
        let next = |clients: &mut Clients,
                    began: &mut Vec<Instant>,
                    plans: &mut Vec<Plan>,
                    client: usize|
         -> Result<bool, UsageError> {
            let Some(writes) = plans[client].next() else {
                return Ok(false);
            };
            began[client] = Instant::now();
            let request = Request::Txn {
                reads: BTreeMap::new(),
                writes,
            };
            clients.send(client, request)?;
            Ok(true)
        };
        for client in 0..plans.len() {
            waiting += usize::from(next(&mut clients, &mut began, &mut plans, client)?);
        }
        while waiting > 0 {
            let (client, reply) = clients.next_reply()?;
            waiting -= 1;
            match reply {
                // In the order they came.
                Reply::Txn { outcome, .. } => answers.push(Answer {
                    latency_us: micros(began[client].elapsed()),
                    outcome,
                }),
                other => return Err(UsageError(format!("unexpected answer {other:?}"))),
            }
            waiting += usize::from(next(&mut clients, &mut began, &mut plans, client)?);
        }
        Ok(answers)
    }

    /// Node 1's counters.
    fn counters(&self) -> Result<BTreeMap<String, u64>, UsageError> {
        let mut status = Client::new(&self.addrs[0].to_string(), ClientOptions::default())?;
        Ok(match status.request(Request::Status)? {
            Reply::Status(view) => view.counters.into_iter().collect(),
            _ => BTreeMap::new(),
        })
    }

    /// The bytes in the nodes' data directories.
    fn disk_bytes(&self) -> u64 {
        fn size(path: &std::path::Path) -> u64 {
            match std::fs::read_dir(path) {
                Ok(entries) => entries
                    .flatten()
                    .map(|e| match e.metadata() {
                        Ok(m) if m.is_dir() => size(&e.path()),
                        Ok(m) => m.len(),
                        Err(_) => 0,
                    })
                    .sum(),
                Err(_) => 0,
            }
        }
        self.dirs.iter().map(|d| size(d)).sum()
    }

    fn stop(self) -> Result<(), UsageError> {
        for node in self.nodes {
            node.shutdown_handle().shutdown();
            node.wait().map_err(|e| UsageError(e.to_string()))?;
        }
        Ok(())
    }
}

type Writes = BTreeMap<Bytes, Option<Bytes>>;
/// One client's transactions, in order.
type Plan = Box<dyn Iterator<Item = Writes> + Send>;

/// One client answer, in 8 bytes: a long run keeps one per transaction, in
/// the order they came, and its memory is measured with the nodes'.
struct Answer {
    /// Its latency, in microseconds.
    latency_us: u32,
    outcome: Outcome,
}

impl Answer {
    fn latency(&self) -> Duration {
        Duration::from_micros(u64::from(self.latency_us))
    }
}

/// `duration` in whole microseconds, saturating (at 71 minutes).
fn micros(duration: Duration) -> u32 {
    u32::try_from(duration.as_micros()).unwrap_or(u32::MAX)
}

/// Latencies of the committed answers.
fn committed_latencies(answers: &[Answer]) -> Samples {
    Samples::new(
        answers
            .iter()
            .filter(|a| a.outcome == Outcome::Commit)
            .map(Answer::latency)
            .collect(),
    )
}

/// Starts a fresh 3-node cluster in `dir` and runs `clients` clients, each
/// committing `per_client` transactions on fresh keys owned by nodes 1 and 2,
/// through node 1 (so two participants; node 1 also coordinates).
fn commit_level(
    dir: &std::path::Path,
    clients: usize,
    per_client: usize,
) -> Result<Level, UsageError> {
    let cluster = BenchCluster::start(dir, &format!("c{clients}"))?;
    let plans: Vec<Plan> = (0..clients)
        .map(|c| {
            let plan: Vec<Writes> = (0..per_client)
                .map(|i| cluster.two_keys(&format!("b{c}-{i}")))
                .collect();
            Box::new(plan.into_iter()) as Plan
        })
        .collect();
    let start = Instant::now();
    let answers = cluster.drive(plans)?;
    let seconds = start.elapsed().as_secs_f64();
    let counters = cluster.counters()?;
    cluster.stop()?;
    let committed = answers
        .iter()
        .filter(|a| a.outcome == Outcome::Commit)
        .count();
    Ok(Level {
        clients,
        latency: committed_latencies(&answers),
        committed,
        aborted: answers.len() - committed,
        seconds,
        saves: counters.get("records_logged").copied().unwrap_or(0),
        persists: counters.get("fsyncs").copied().unwrap_or(0),
        persists_by_loop: counters.get("fsyncs_by_loop").copied().unwrap_or(0),
    })
}

/// What the long run found.
struct History {
    txns: usize,
    window: usize,
    first_p50: Duration,
    last_p50: Duration,
    /// The p50 of each run of `window` answers in turn (the last may be
    /// shorter): whether a change from first to last is a trend or noise.
    window_p50s: Vec<Duration>,
    disk_bytes: u64,
    peak_rss_bytes: Option<u64>,
    seconds: f64,
}

/// `--txns N`: N transactions at 64 clients on one cluster, each client
/// overwriting its own 100 pairs of keys round and round, so the live data is
/// bounded while the history grows.
fn history(dir: &std::path::Path, txns: usize) -> Result<History, UsageError> {
    const CLIENTS: usize = 64;
    const KEYS_PER_CLIENT: usize = 100;
    let cluster = BenchCluster::start(dir, "history")?;
    let per_client = txns.div_ceil(CLIENTS);
    let plans: Vec<Plan> = (0..CLIENTS)
        .map(|c| {
            let pairs: Vec<Writes> = (0..KEYS_PER_CLIENT)
                .map(|i| cluster.two_keys(&format!("h{c}-{i}")))
                .collect();
            Box::new((0..per_client).map(move |i| pairs[i % KEYS_PER_CLIENT].clone())) as Plan
        })
        .collect();
    let start = Instant::now();
    let answers = cluster.drive(plans)?;
    let seconds = start.elapsed().as_secs_f64();
    let window = (answers.len() / 10).clamp(1, 10_000);
    let window_p50s: Vec<Duration> = answers
        .chunks(window)
        .map(|chunk| committed_latencies(chunk).percentile(50.0))
        .collect();
    // The last window is the last `window` answers, not the last chunk,
    // which may be shorter.
    let first_p50 = window_p50s.first().copied().unwrap_or_default();
    let last_p50 =
        committed_latencies(&answers[answers.len().saturating_sub(window)..]).percentile(50.0);
    let disk_bytes = cluster.disk_bytes();
    cluster.stop()?;
    Ok(History {
        txns: answers.len(),
        window,
        first_p50,
        last_p50,
        window_p50s,
        disk_bytes,
        peak_rss_bytes: peak_rss(),
        seconds,
    })
}

/// This process's peak resident memory (Linux), which holds the three nodes
/// and the clients.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

pub fn bench(args: BenchArgs) -> Result<ExitCode, UsageError> {
    if args.per_level == 0
        || args.clients.is_empty()
        || args.clients.contains(&0)
        || args.txns == Some(0)
    {
        return Err(UsageError(
            "--per-level, --txns and every --clients level must be positive".into(),
        ));
    }
    let dir = args.dir.join(format!("haft-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(io("create the bench directory"))?;
    let result = run(&dir, &args);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run(dir: &std::path::Path, args: &BenchArgs) -> Result<ExitCode, UsageError> {
    // Progress goes to stderr with --json, so stdout is one JSON object.
    let say = |line: String| {
        if args.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    say(format!("haft bench: loopback, data in {}", dir.display()));
    let rtt = round_trip(2000)?;
    say(format!(
        "UDP round trip (64 B ping-pong, 2000×): p50 {:.3} ms, p99 {:.3} ms",
        ms(rtt.percentile(50.0)),
        ms(rtt.percentile(99.0))
    ));
    let save = durable_save(dir, 200)?;
    say(format!(
        "durable append (128 B record in the node's log format, then fdatasync; 200×): \
         p50 {:.3} ms, p99 {:.3} ms",
        ms(save.percentile(50.0)),
        ms(save.percentile(99.0))
    ));
    let apart = 2 * rtt.percentile(50.0) + 2 * save.percentile(50.0);
    say(format!(
        "2 × round trip + 2 × durable append, each measured back to back = {:.3} ms",
        ms(apart)
    ));
    let path = critical_path(dir, 1000)?;
    let floor = path.percentile(50.0);
    say(format!(
        "the same in a commit's order (client → node 1 → node 2, append, → node 1, append, \
         → client; 1000×): p50 {:.3} ms, p99 {:.3} ms",
        ms(floor),
        ms(path.percentile(99.0))
    ));
    say(format!(
        "floor = that order's p50 = {:.3} ms ({:.2}× the parts measured back to back)",
        ms(floor),
        floor.as_secs_f64() / apart.as_secs_f64()
    ));
    say(String::new());
    say(format!(
        "two-participant commits through node 1 (participants 1 and 2), fresh keys, \
         {} transactions per level:",
        args.per_level
    ));
    say(format!(
        "{:>8} {:>10} {:>8} {:>10} {:>10} {:>12} {:>14} {:>32}",
        "clients",
        "committed",
        "aborted",
        "p50 ms",
        "p99 ms",
        "commits/s",
        "p50 / floor",
        "node 1 records/fsyncs (by loop)"
    ));
    let mut json = serde_json::Map::new();
    json.insert("rtt_ms".into(), ms(rtt.percentile(50.0)).into());
    json.insert("fsync_ms".into(), ms(save.percentile(50.0)).into());
    json.insert("floor_apart_ms".into(), ms(apart).into());
    json.insert("floor_ms".into(), ms(floor).into());
    let mut rates = Vec::new();
    for &clients in &args.clients {
        let level = commit_level(dir, clients, args.per_level.div_ceil(clients))?;
        let rate = level.committed as f64 / level.seconds;
        rates.push((level.clients, rate));
        let p50 = level.latency.percentile(50.0);
        let p99 = level.latency.percentile(99.0);
        say(format!(
            "{:>8} {:>10} {:>8} {:>10.3} {:>10.3} {:>12.0} {:>14.2} {:>32}",
            level.clients,
            level.committed,
            level.aborted,
            ms(p50),
            ms(p99),
            rate,
            p50.as_secs_f64() / floor.as_secs_f64(),
            format!(
                "{}/{} ({})",
                level.saves, level.persists, level.persists_by_loop
            )
        ));
        if clients == 1 {
            say(format!(
                "{:>8} 1 client's p50 / the parts measured back to back = {:.2}",
                "",
                p50.as_secs_f64() / apart.as_secs_f64()
            ));
        }
        json.insert(format!("p50_ms_{clients}"), ms(p50).into());
        json.insert(format!("p99_ms_{clients}"), ms(p99).into());
        json.insert(format!("commits_per_s_{clients}"), rate.into());
        json.insert(format!("aborts_{clients}"), level.aborted.into());
    }
    if let (Some((1, one)), Some((most, top))) = (rates.first(), rates.last()) {
        say(String::new());
        say(format!(
            "throughput at {most} clients / at 1 client = {:.1}× (target ≥ 15×)",
            top / one
        ));
    }
    if let Some(txns) = args.txns {
        let h = history(dir, txns)?;
        say(String::new());
        say(format!(
            "{} transactions at 64 clients over 12,800 live keys in {:.1} s: p50 of the first \
             {} {:.3} ms, of the last {} {:.3} ms ({:+.1}%); data directories {:.1} MiB; \
             peak memory {}",
            h.txns,
            h.seconds,
            h.window,
            ms(h.first_p50),
            h.window,
            ms(h.last_p50),
            (h.last_p50.as_secs_f64() / h.first_p50.as_secs_f64() - 1.0) * 100.0,
            h.disk_bytes as f64 / (1 << 20) as f64,
            h.peak_rss_bytes.map_or("unknown".into(), |b| format!(
                "{:.1} MiB",
                b as f64 / (1 << 20) as f64
            ))
        ));
        let each: Vec<String> = h
            .window_p50s
            .iter()
            .map(|&p| format!("{:.2}", ms(p)))
            .collect();
        say(format!(
            "p50 of each {} in turn, ms: {}",
            h.window,
            each.join(" ")
        ));
        json.insert("history_txns".into(), h.txns.into());
        json.insert("history_first_p50_ms".into(), ms(h.first_p50).into());
        json.insert("history_last_p50_ms".into(), ms(h.last_p50).into());
        json.insert(
            "history_window_p50_ms".into(),
            h.window_p50s
                .iter()
                .map(|&p| ms(p))
                .collect::<Vec<_>>()
                .into(),
        );
        json.insert("history_disk_bytes".into(), h.disk_bytes.into());
        json.insert("history_peak_rss_bytes".into(), h.peak_rss_bytes.into());
    }
    if args.json {
        println!("{}", serde_json::Value::Object(json));
    }
    Ok(ExitCode::SUCCESS)
}
