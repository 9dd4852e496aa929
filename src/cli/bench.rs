//! `haft bench`: the floors of a commit (UDP round trip, durable save) and the
//! commit latency and throughput of a 3-node cluster, measured in one run on
//! loopback.

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
use haft::node::{Placement, Reply, Request};
use haft::runtime::client::{Client, ClientOptions};
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
    /// Transactions at each concurrency level, shared among its clients. Every
    /// level runs the same number, on a fresh cluster, because each save
    /// rewrites the whole record, which grows with every transaction: levels
    /// of different sizes would pay for different record sizes.
    #[arg(long, default_value_t = 640)]
    txns: usize,
    /// Concurrency levels (clients), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    clients: Vec<usize>,
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

/// The median UDP round trip between two loopback sockets.
fn round_trip(count: usize) -> Result<Samples, UsageError> {
    let server = UdpSocket::bind("127.0.0.1:0").map_err(io("bind"))?;
    let client = UdpSocket::bind("127.0.0.1:0").map_err(io("bind"))?;
    let server_addr = server.local_addr().map_err(io("address"))?;
    server
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(io("socket"))?;
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(io("socket"))?;
    let echo = thread::spawn(move || {
        let mut buffer = [0; 256];
        while let Ok((len, from)) = server.recv_from(&mut buffer) {
            if len == 0 || server.send_to(&buffer[..len], from).is_err() {
                return;
            }
        }
    });
    let payload = [7u8; 64];
    let mut buffer = [0; 256];
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        client.send_to(&payload, server_addr).map_err(io("send"))?;
        client.recv_from(&mut buffer).map_err(io("receive"))?;
        samples.push(start.elapsed());
    }
    let _ = client.send_to(&[], server_addr);
    let _ = echo.join();
    Ok(Samples::new(samples))
}

/// The latency of one durable append (write one record of the size of a
/// prepared transaction's delta, then `fdatasync`) to the node's log format.
fn durable_save(dir: &std::path::Path, count: usize) -> Result<Samples, UsageError> {
    let fail = |e: haft::storage::LogError| UsageError(e.to_string());
    let mut log = FileStorage::new(dir.join("fsync"), LogOptions::default());
    log.recover().map_err(fail)?;
    let record = vec![42u8; 128];
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        log.append(&record).map_err(fail)?;
        log.sync().map_err(fail)?;
        samples.push(start.elapsed());
    }
    Ok(Samples::new(samples))
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
    /// Node 1's saves and persists (one fsync of the file and one of the
    /// directory each) during the level.
    saves: u64,
    persists: u64,
}

/// Starts a fresh 3-node cluster in `dir` and runs `clients` clients, each
/// committing `per_client` transactions on fresh keys owned by nodes 1 and 2,
/// through node 1 (so two participants; node 1 also coordinates).
fn commit_level(
    dir: &std::path::Path,
    clients: usize,
    per_client: usize,
) -> Result<Level, UsageError> {
    let addrs: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect::<Result<_, _>>()?;
    let mut nodes: Vec<RunningNode> = Vec::new();
    let mut placement: Option<Placement> = None;
    for id in 1..=3u64 {
        // One replica per key: a transaction on two keys has two participants.
        let mut raw = RawConfig {
            id: Some(id),
            listen: Some(addrs[id as usize - 1].to_string()),
            data: Some(dir.join(format!("c{clients}-n{id}"))),
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
                Placement::new(1, node_config.members, node_config.vnodes, 1)
                    .map_err(|e| UsageError(e.to_string()))?,
            );
        }
        nodes.push(node::start(&config).map_err(|e| UsageError(e.to_string()))?);
    }
    let placement = placement.expect("three nodes were configured");
    let key_for = |owner: u16, prefix: &str| -> Bytes {
        (0..)
            .map(|i| format!("{prefix}-{i}"))
            .find(|k| placement.replicas_of(k.as_bytes())[0] == NodeId(owner))
            .map(Bytes::from)
            .expect("some key is owned by every node")
    };
    // Warm up: every node answers.
    for addr in &addrs {
        let mut client = Client::new(&addr.to_string(), ClientOptions::default())?;
        client.request(Request::Status)?;
    }
    let plans: Vec<Vec<BTreeMap<Bytes, Option<Bytes>>>> = (0..clients)
        .map(|c| {
            (0..per_client)
                .map(|i| {
                    let prefix = format!("b{c}-{i}");
                    [
                        (key_for(1, &prefix), Some(Bytes::from_static(b"x"))),
                        (key_for(2, &prefix), Some(Bytes::from_static(b"y"))),
                    ]
                    .into()
                })
                .collect()
        })
        .collect();
    let node1 = addrs[0].to_string();
    let start = Instant::now();
    let workers: Vec<_> = plans
        .into_iter()
        .map(|plan| {
            let node1 = node1.clone();
            thread::spawn(move || -> Result<Vec<(Duration, Outcome)>, String> {
                let mut client =
                    Client::new(&node1, ClientOptions::default()).map_err(|e| e.to_string())?;
                let mut results = Vec::with_capacity(plan.len());
                for writes in plan {
                    let begin = Instant::now();
                    let request = Request::Txn {
                        reads: BTreeMap::new(),
                        writes,
                    };
                    match client.request(request) {
                        Ok(Reply::Txn { outcome, .. }) => results.push((begin.elapsed(), outcome)),
                        Ok(other) => return Err(format!("unexpected answer {other:?}")),
                        Err(e) => return Err(e.to_string()),
                    }
                }
                Ok(results)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let (mut committed, mut aborted) = (0, 0);
    for worker in workers {
        let results = worker
            .join()
            .map_err(|_| UsageError("a client thread panicked".into()))?
            .map_err(UsageError)?;
        for (latency, outcome) in results {
            match outcome {
                Outcome::Commit => {
                    committed += 1;
                    latencies.push(latency);
                }
                Outcome::Abort => aborted += 1,
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let mut status = Client::new(&node1, ClientOptions::default())?;
    let counters = match status.request(Request::Status)? {
        Reply::Status(view) => view.counters,
        _ => Default::default(),
    };
    for node in nodes {
        node.shutdown_handle().shutdown();
        node.wait().map_err(|e| UsageError(e.to_string()))?;
    }
    Ok(Level {
        clients,
        latency: Samples::new(latencies),
        committed,
        aborted,
        seconds,
        saves: counters.get("saves").copied().unwrap_or(0),
        persists: counters.get("persists").copied().unwrap_or(0),
    })
}

pub fn bench(args: BenchArgs) -> Result<ExitCode, UsageError> {
    if args.txns == 0 || args.clients.is_empty() || args.clients.contains(&0) {
        return Err(UsageError(
            "--txns and every --clients level must be positive".into(),
        ));
    }
    let dir = args.dir.join(format!("haft-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(io("create the bench directory"))?;
    let result = run(&dir, &args);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run(dir: &std::path::Path, args: &BenchArgs) -> Result<ExitCode, UsageError> {
    println!("haft bench: loopback, data in {}", dir.display());
    let rtt = round_trip(2000)?;
    println!(
        "UDP round trip (64 B ping-pong, 2000×): p50 {:.3} ms, p99 {:.3} ms",
        ms(rtt.percentile(50.0)),
        ms(rtt.percentile(99.0))
    );
    let save = durable_save(dir, 200)?;
    println!(
        "durable save (512 B: write, fsync, rename, fsync dir; 200×): p50 {:.3} ms, p99 {:.3} ms",
        ms(save.percentile(50.0)),
        ms(save.percentile(99.0))
    );
    let floor = 2 * rtt.percentile(50.0) + 2 * save.percentile(50.0);
    println!(
        "floor = 2 × round trip + 2 × durable save = {:.3} ms",
        ms(floor)
    );
    println!();
    println!(
        "two-participant commits through node 1 (participants 1 and 2), fresh keys, \
         {} transactions per level:",
        args.txns
    );
    println!(
        "{:>8} {:>10} {:>8} {:>10} {:>10} {:>12} {:>14} {:>22}",
        "clients",
        "committed",
        "aborted",
        "p50 ms",
        "p99 ms",
        "commits/s",
        "p50 / floor",
        "node 1 saves/persists"
    );
    let mut rates = Vec::new();
    for &clients in &args.clients {
        let level = commit_level(dir, clients, args.txns.div_ceil(clients))?;
        let rate = level.committed as f64 / level.seconds;
        rates.push((level.clients, rate));
        let p50 = level.latency.percentile(50.0);
        println!(
            "{:>8} {:>10} {:>8} {:>10.3} {:>10.3} {:>12.0} {:>14.2} {:>22}",
            level.clients,
            level.committed,
            level.aborted,
            ms(p50),
            ms(level.latency.percentile(99.0)),
            rate,
            p50.as_secs_f64() / floor.as_secs_f64(),
            format!("{}/{}", level.saves, level.persists)
        );
    }
    if let (Some((1, one)), Some((most, top))) = (rates.first(), rates.last()) {
        println!();
        println!(
            "throughput at {most} clients / at 1 client = {:.1}× (target ≥ 10×)",
            top / one
        );
    }
    Ok(ExitCode::SUCCESS)
}
