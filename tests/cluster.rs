//! Multi-process tests: `haft node` processes on loopback, killed with SIGKILL
//! and restarted, paused with SIGSTOP, partitioned, losing datagrams, fed
//! malformed datagrams, and started over a corrupt record. Every client answer
//! is checked against the nodes' durable records afterwards.
//!
//! Ports: each test binds port-0 sockets to learn free ports, then releases
//! them for its nodes, so parallel test runs do not collide (short of another
//! process grabbing a port in that instant). Every child is killed when its
//! cluster guard drops, also when a test fails.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use haft::NodeId;
use haft::commit::{Outcome, TxnId, TxnRecord};
use haft::node::{Layout, MemberStatus, NodeMsg, NodeRecord, Reply, Request, StatusView};
use haft::runtime::client::{Client, ClientError, ClientOptions, Clients};
use haft::runtime::codec;
use haft::runtime::node::{CHECKPOINT_MIN_BYTES, CLIENT_BIT, Wire, load_record};
use rand::Rng;

#[path = "common/cluster_env.rs"]
mod cluster_env;
use cluster_env::{TIMERS, free_udp_ports};
#[path = "common/haft_command.rs"]
mod haft_command;
use haft_command::haft;

/// How long the detector may take to believe a restarted node alive again:
/// its announcement and first heartbeats need one heartbeat period; the
/// bound allows a failure timeout and a suspicion timeout on top, for a
/// loaded machine.
const ALIVE_BOUND: Duration = Duration::from_millis(100 + 600 + 600);

/// A cluster of `haft node` processes; kills them all when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    addrs: BTreeMap<u16, SocketAddr>,
    children: BTreeMap<u16, Child>,
    /// Peers that exist in the configuration but run no process.
    phantoms: BTreeSet<u16>,
    replicas: usize,
    /// The `[timers]` table of every node's configuration.
    timers: String,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Cluster {
    /// Configures nodes `ids` (and `phantoms`, configured but never started)
    /// and starts the nodes.
    fn start(ids: &[u16], phantoms: &[u16], replicas: usize) -> Cluster {
        Cluster::with_timers(ids, phantoms, replicas, TIMERS)
    }

    /// [`Cluster::start`] with the `[timers]` table `timers`.
    fn with_timers(ids: &[u16], phantoms: &[u16], replicas: usize, timers: &str) -> Cluster {
        let all: Vec<u16> = ids.iter().chain(phantoms).copied().collect();
        let ports = free_udp_ports(all.len());
        let addrs = all
            .iter()
            .zip(ports)
            .map(|(&id, port)| (id, SocketAddr::from(([127, 0, 0, 1], port))))
            .collect();
        let mut cluster = Cluster {
            dir: tempfile::tempdir().unwrap(),
            addrs,
            children: BTreeMap::new(),
            phantoms: phantoms.iter().copied().collect(),
            replicas,
            timers: timers.to_owned(),
        };
        for &id in &all {
            cluster.write_config(id);
        }
        for &id in ids {
            cluster.spawn(id);
        }
        for &id in ids {
            cluster.await_up(id);
        }
        cluster
    }

    fn data(&self, id: u16) -> PathBuf {
        self.dir.path().join(format!("data{id}"))
    }

    fn config_path(&self, id: u16) -> PathBuf {
        self.dir.path().join(format!("node{id}.toml"))
    }

    fn write_config(&self, id: u16) {
        let mut text = format!(
            "id = {id}\nlisten = \"{}\"\ndata = \"{}\"\nreplicas = {}\n\
             allow_fault_injection = true\n[peers]\n",
            self.addrs[&id],
            self.data(id).display(),
            self.replicas,
        );
        for (peer, addr) in &self.addrs {
            if *peer != id {
                text += &format!("{peer} = \"{addr}\"\n");
            }
        }
        text += &self.timers;
        std::fs::write(self.config_path(id), text).unwrap();
    }

    fn command(&self, id: u16) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_haft"));
        command
            .arg("node")
            .arg("--config")
            .arg(self.config_path(id));
        command
    }

    fn spawn(&mut self, id: u16) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("node{id}.log")))
            .unwrap();
        let child = self
            .command(id)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start haft node");
        self.children.insert(id, child);
    }

    fn kill(&mut self, id: u16) {
        if let Some(mut child) = self.children.remove(&id) {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        }
    }

    /// Sends `signal` (STOP, CONT) to node `id`'s process.
    fn signal(&self, id: u16, signal: &str) {
        if let Some(child) = self.children.get(&id) {
            let status = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(child.id().to_string())
                .status()
                .expect("run kill");
            assert!(status.success(), "kill -{signal} failed");
        }
    }

    fn client(&self, id: u16, timeout: Duration) -> Client {
        let options = ClientOptions {
            timeout,
            retry_after: Duration::from_millis(250).min(timeout),
        };
        Client::new(&self.addrs[&id].to_string(), options).unwrap()
    }

    fn status(&self, id: u16) -> Result<StatusView, ClientError> {
        match self
            .client(id, Duration::from_secs(1))
            .request(Request::Status)?
        {
            Reply::Status(view) => Ok(view),
            other => panic!("node {id} answered a status request with {other:?}"),
        }
    }

    fn faults(&self, id: u16, isolated: &[u16], loss_percent: u8) {
        let set = self
            .client(id, Duration::from_secs(2))
            .faults(isolated, loss_percent)
            .expect("the node answers")
            .expect("fault injection is allowed");
        assert_eq!(
            set,
            isolated
                .iter()
                .copied()
                .filter(|p| *p != id)
                .collect::<Vec<_>>()
        );
    }

    fn await_up(&self, id: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.status(id).is_err() {
            assert!(Instant::now() < deadline, "node {id} did not come up");
        }
    }

    fn running(&self) -> Vec<u16> {
        self.children.keys().copied().collect()
    }

    /// Waits until no node is prepared or still resending a decision.
    fn await_settled(&self, bound: Duration) {
        let deadline = Instant::now() + bound;
        loop {
            let unsettled: Vec<(u16, u64, u64)> = self
                .running()
                .into_iter()
                .filter_map(|id| {
                    let view = self.status(id).ok()?;
                    (view.prepared > 0 || view.coordinating > 0).then_some((
                        id,
                        view.prepared,
                        view.coordinating,
                    ))
                })
                .collect();
            if unsettled.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "still unsettled after {bound:?} (node, prepared, coordinating): {unsettled:?}"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every running node sees every other as Alive.
    fn await_all_alive(&self, bound: Duration) -> Duration {
        let start = Instant::now();
        for id in self.running() {
            loop {
                let view = self.status(id).expect("node answers");
                let others_alive = view
                    .members
                    .iter()
                    .all(|(m, s)| *m == id || *s == MemberStatus::Alive);
                if others_alive {
                    break;
                }
                assert!(
                    start.elapsed() < bound,
                    "node {id} still sees {:?} after {bound:?}",
                    view.members
                );
                thread::sleep(Duration::from_millis(20));
            }
        }
        start.elapsed()
    }

    fn records(&self) -> BTreeMap<u16, NodeRecord> {
        self.addrs
            .keys()
            .filter(|id| !self.phantoms.contains(id))
            .map(|&id| {
                let record = load_record(&self.data(id))
                    .unwrap()
                    .unwrap_or_else(|| panic!("node {id} has no record"));
                (id, record)
            })
            .collect()
    }

    fn placement(&self) -> Layout {
        let members: Vec<NodeId> = self.addrs.keys().map(|id| NodeId(*id)).collect();
        Layout::new(1, &members, 64, self.replicas).unwrap()
    }
}

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

/// One client request and what became of it.
#[derive(Clone, Debug)]
struct Attempt {
    label: String,
    /// Keys only this attempt writes (its label is their value).
    fresh: Vec<String>,
    answer: Option<(TxnId, Outcome)>,
    /// A read of the fresh keys through another node right after a commit
    /// was acknowledged returned an older value or none.
    stale_reads: Vec<String>,
}

/// Keys whose first replicas are distinct nodes of `span`, so that each
/// transaction spans them.
fn spread_keys(placement: &Layout, prefix: &str, span: &[u16]) -> Vec<String> {
    let mut keys: BTreeMap<u16, String> = BTreeMap::new();
    for i in 0.. {
        let key = format!("{prefix}-{i}");
        let owner = placement.holders(key.as_bytes())[0].0;
        if span.contains(&owner) {
            keys.entry(owner).or_insert(key);
        }
        if keys.len() == span.len() {
            break;
        }
    }
    keys.into_values().collect()
}

/// Runs `count` transactions from one client thread, each on fresh keys (one
/// per node of `span`) plus, now and then, a hot key shared by every client.
/// Requests go to a random node of `targets`; after each acknowledged commit
/// the fresh keys are read back through another node of `targets`.
fn run_client(
    addrs: &BTreeMap<u16, SocketAddr>,
    placement: &Layout,
    client: &str,
    count: usize,
    span: &[u16],
    targets: &[u16],
) -> Vec<Attempt> {
    let mut rng = rand::rng();
    let mut attempts = Vec::new();
    let options = ClientOptions {
        timeout: Duration::from_secs(2),
        retry_after: Duration::from_millis(300),
    };
    for i in 0..count {
        let label = format!("{client}-{i}");
        let fresh = spread_keys(placement, &label, span);
        let hot: Vec<String> = if rng.random_bool(0.3) {
            vec![format!("hot-{}", rng.random_range(0..4))]
        } else {
            Vec::new()
        };
        let writes = fresh
            .iter()
            .chain(&hot)
            .map(|k| (b(k), Some(b(&label))))
            .collect();
        let target = targets[rng.random_range(0..targets.len())];
        let mut c = Client::new(&addrs[&target].to_string(), options).unwrap();
        let request = Request::Txn {
            reads: BTreeMap::new(),
            writes,
        };
        let answer = match c.request(request) {
            Ok(Reply::Txn { txn, outcome, .. }) => Some((txn, outcome)),
            Ok(other) => panic!("a transaction was answered with {other:?}"),
            Err(ClientError::Unreachable { .. }) => None,
            Err(error) => panic!("client error: {error}"),
        };
        let mut stale_reads = Vec::new();
        if let Some((txn, Outcome::Commit)) = answer {
            let others: Vec<u16> = targets.iter().copied().filter(|t| *t != target).collect();
            if !others.is_empty() {
                let reader = others[rng.random_range(0..others.len())];
                let mut c = Client::new(&addrs[&reader].to_string(), options).unwrap();
                let keys = fresh.iter().map(|k| b(k)).collect();
                // No answer (a node down) is not a stale answer.
                if let Ok(Reply::Values(values)) = c.request(Request::Read { keys }) {
                    for (key, value) in values {
                        let current =
                            value.is_some_and(|v| v.value == label.as_bytes() && v.version == txn);
                        if !current {
                            stale_reads.push(String::from_utf8_lossy(&key).into_owned());
                        }
                    }
                }
            }
        }
        attempts.push(Attempt {
            label,
            fresh,
            answer,
            stale_reads,
        });
    }
    attempts
}

/// The checks every test ends with, on the nodes' durable records:
/// - no participant is still prepared;
/// - no transaction is Commit at one node and Abort at another (among the
///   records not yet forgotten);
/// - each attempt's fresh keys are at all their replicas or at none
///   (atomicity), at the version of the transaction the client was told
///   about (exactly once: a second transaction for the same request would
///   leave another version);
/// - a commit acknowledged to a client is there; an abort told to a client is
///   nowhere (answers are true);
/// - no read after an acknowledged commit was stale.
fn check_answers(records: &BTreeMap<u16, NodeRecord>, placement: &Layout, attempts: &[Attempt]) {
    let mut outcomes: BTreeMap<TxnId, BTreeMap<u16, Outcome>> = BTreeMap::new();
    for (node, record) in records {
        for (txn, r) in &record.participant.txns {
            let outcome = match r {
                TxnRecord::Prepared { .. } => panic!("node {node} is still prepared for {txn}"),
                TxnRecord::Refused(_) => continue,
                TxnRecord::Decided(outcome) => *outcome,
            };
            outcomes.entry(*txn).or_default().insert(*node, outcome);
        }
    }
    for (txn, at) in &outcomes {
        let distinct: BTreeSet<Outcome> = at.values().copied().collect();
        assert_eq!(distinct.len(), 1, "split decision for {txn}: {at:?}");
    }
    for attempt in attempts {
        let mut held = Vec::new();
        for key in &attempt.fresh {
            for replica in placement.holders(key.as_bytes()) {
                let stored = records[&replica.0].participant.store.get(key.as_bytes());
                let mine = stored.filter(|v| v.value == attempt.label.as_bytes());
                held.push(mine.map(|v| v.version));
            }
        }
        let present = held.iter().filter(|v| v.is_some()).count();
        assert!(
            present == 0 || present == held.len(),
            "{} applied at {present} of its {} replicas",
            attempt.label,
            held.len()
        );
        let versions: BTreeSet<TxnId> = held.iter().flatten().copied().collect();
        assert!(
            versions.len() <= 1,
            "{} was applied by several transactions: {versions:?}",
            attempt.label
        );
        match attempt.answer {
            Some((txn, Outcome::Commit)) => {
                assert_eq!(
                    versions.into_iter().collect::<Vec<_>>(),
                    vec![txn],
                    "acknowledged commit {} ({txn}) is not at its replicas",
                    attempt.label
                );
            }
            Some((txn, Outcome::Abort)) => {
                assert_eq!(
                    present, 0,
                    "{txn} ({}) answered Abort but committed",
                    attempt.label
                );
            }
            None => {}
        }
        assert!(
            attempt.stale_reads.is_empty(),
            "a read after {}'s acknowledged commit was stale for {:?}",
            attempt.label,
            attempt.stale_reads
        );
    }
}

fn summary(attempts: &[Attempt]) -> (usize, usize, usize) {
    let committed = attempts
        .iter()
        .filter(|a| matches!(a.answer, Some((_, Outcome::Commit))))
        .count();
    let aborted = attempts
        .iter()
        .filter(|a| matches!(a.answer, Some((_, Outcome::Abort))))
        .count();
    (committed, aborted, attempts.len() - committed - aborted)
}

/// How long the chaos test runs: `HAFT_CHAOS_SECS`, 20 s by default.
fn chaos_seconds() -> u64 {
    std::env::var("HAFT_CHAOS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

#[test]
fn chaos_kill_pause_loss_and_partition_tell_no_client_a_lie() {
    const CLIENTS: usize = 6;
    let nodes: [u16; 3] = [1, 2, 3];
    let cluster = Arc::new(Mutex::new(Cluster::start(&nodes, &[], 2)));
    let (addrs, placement) = {
        let cluster = cluster.lock().unwrap();
        for id in nodes {
            cluster.faults(id, &[], 3);
        }
        (cluster.addrs.clone(), cluster.placement())
    };
    let stop_at = Instant::now() + Duration::from_secs(chaos_seconds());
    let chaos = {
        let cluster = Arc::clone(&cluster);
        thread::spawn(move || {
            let mut rng = rand::rng();
            let (mut kills, mut pauses, mut partitions) = (0, 0, 0);
            while Instant::now() < stop_at {
                thread::sleep(Duration::from_millis(rng.random_range(100..500)));
                let victim = nodes[rng.random_range(0..nodes.len())];
                match rng.random_range(0..3) {
                    0 => {
                        cluster.lock().unwrap().kill(victim);
                        kills += 1;
                        thread::sleep(Duration::from_millis(rng.random_range(0..300)));
                        let mut cluster = cluster.lock().unwrap();
                        cluster.spawn(victim);
                        cluster.await_up(victim);
                        cluster.faults(victim, &[], 3);
                    }
                    1 => {
                        cluster.lock().unwrap().signal(victim, "STOP");
                        pauses += 1;
                        thread::sleep(Duration::from_millis(rng.random_range(100..800)));
                        cluster.lock().unwrap().signal(victim, "CONT");
                    }
                    _ => {
                        let others: Vec<u16> =
                            nodes.iter().copied().filter(|n| *n != victim).collect();
                        cluster.lock().unwrap().faults(victim, &others, 3);
                        partitions += 1;
                        thread::sleep(Duration::from_millis(rng.random_range(100..800)));
                        cluster.lock().unwrap().faults(victim, &[], 3);
                    }
                }
            }
            (kills, pauses, partitions)
        })
    };
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let addrs = addrs.clone();
            let placement = placement.clone();
            thread::spawn(move || {
                let mut attempts = Vec::new();
                let mut round = 0;
                while Instant::now() < stop_at {
                    let name = format!("c{client}r{round}");
                    attempts.extend(run_client(&addrs, &placement, &name, 10, &nodes, &nodes));
                    round += 1;
                }
                attempts
            })
        })
        .collect();
    let attempts: Vec<Attempt> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client thread"))
        .collect();
    let (kills, pauses, partitions) = chaos.join().expect("chaos thread");

    let cluster = cluster.lock().unwrap();
    for id in nodes {
        cluster.faults(id, &[], 0);
    }
    cluster.await_settled(Duration::from_secs(30));
    cluster.await_all_alive(Duration::from_secs(15));
    let records = cluster.records();
    check_answers(&records, &placement, &attempts);
    let (committed, aborted, unanswered) = summary(&attempts);
    let reads = attempts
        .iter()
        .filter(|a| matches!(a.answer, Some((_, Outcome::Commit))))
        .count();
    eprintln!(
        "chaos ({} s): {} transactions, {kills} kills, {pauses} pauses, {partitions} partitions, \
         3% loss: {committed} committed, {aborted} aborted, {unanswered} unanswered; \
         {reads} reads after a commit, 0 stale; 0 lies",
        chaos_seconds(),
        attempts.len()
    );
    assert!(committed >= 50, "too little progress: {committed} commits");
}

#[test]
fn a_restarted_node_is_alive_at_every_peer_within_the_detectors_bound() {
    let mut cluster = Cluster::start(&[1, 2, 3], &[], 1);
    cluster.await_all_alive(Duration::from_secs(10));
    cluster.kill(3);
    // Its peers declare it Dead…
    let deadline = Instant::now() + Duration::from_secs(10);
    for id in [1, 2] {
        while cluster.status(id).unwrap().members[&3] != MemberStatus::Dead {
            assert!(
                Instant::now() < deadline,
                "node 3 never declared dead at {id}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
    // …and take it back once it restarts.
    cluster.spawn(3);
    cluster.await_up(3);
    let took = cluster.await_all_alive(ALIVE_BOUND * 3);
    eprintln!("a restarted node was alive at every peer {took:?} after it answered");
}

#[test]
fn a_partition_splits_no_decision_and_progress_resumes_when_it_heals() {
    let nodes: [u16; 3] = [1, 2, 3];
    let cluster = Cluster::start(&nodes, &[], 1);
    let (addrs, placement) = (cluster.addrs.clone(), cluster.placement());
    let running = |phase: &'static str, span: &'static [u16], count| {
        (0..4)
            .map(|client| {
                let addrs = addrs.clone();
                let placement = placement.clone();
                thread::spawn(move || {
                    let name = format!("{phase}{client}");
                    run_client(&addrs, &placement, &name, count, span, &[1, 2])
                })
            })
            .collect::<Vec<_>>()
    };
    // Commits spanning every node are under way when node 3 is cut off.
    let before = running("before", &[1, 2, 3], 40);
    thread::sleep(Duration::from_millis(150));
    cluster.faults(3, &[1, 2], 0);
    let mut attempts: Vec<Attempt> = before.into_iter().flat_map(|c| c.join().unwrap()).collect();
    // While it lasts, nodes 1 and 2 still commit among themselves.
    let majority: Vec<Attempt> = running("majority", &[1, 2], 10)
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let (majority_commits, _, _) = summary(&majority);
    assert!(majority_commits > 0, "no progress on the majority side");
    // Heal; then transactions spanning every node commit again.
    cluster.faults(3, &[], 0);
    cluster.await_settled(Duration::from_secs(20));
    let after: Vec<Attempt> = running("after", &[1, 2, 3], 5)
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let (after_commits, _, _) = summary(&after);
    assert!(after_commits > 0, "no commit after healing: {after:?}");
    cluster.await_settled(Duration::from_secs(20));
    attempts.extend(majority);
    attempts.extend(after);
    check_answers(&cluster.records(), &placement, &attempts);
    let (committed, aborted, unanswered) = summary(&attempts);
    eprintln!(
        "partition: {committed} committed, {aborted} aborted, {unanswered} unanswered; \
         {majority_commits} commits on the majority side; {after_commits} after healing"
    );
}

#[test]
fn malformed_datagrams_are_dropped_and_counted() {
    // Node 2 is configured but never runs: its transactions would only time out.
    let cluster = Cluster::start(&[1], &[2], 1);
    let node = cluster.addrs[&1];
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let client = CLIENT_BIT | 5;
    let status = Wire::Msg(NodeMsg::Request {
        client,
        id: 1,
        home: None,
        request: Request::Status,
    });
    let valid = codec::encode(client, &status).unwrap();
    let mut bad_magic = valid.clone();
    bad_magic[0] ^= 0xff;
    let mut bad_version = valid.clone();
    bad_version[4] = 99;
    let mut bad_length = valid.clone();
    bad_length.push(0);
    let mut bad_checksum = valid.clone();
    *bad_checksum.last_mut().unwrap() ^= 0x01;
    let undecodable = codec::encode(client, &"not a message").unwrap();
    let unknown_sender = codec::encode(77, &status).unwrap();
    let oversized = vec![0x48; codec::MAX_DATAGRAM + 100];
    // A client claiming to vote: not a request, so dropped.
    let vote = Wire::Msg(NodeMsg::Commit(haft::commit::Msg::Query { txn: TxnId(0) }));
    let not_a_request = codec::encode(client, &vote).unwrap();
    let cases: [(&str, Vec<u8>); 9] = [
        ("truncated", valid[..10].to_vec()),
        ("bad_magic", bad_magic),
        ("bad_version", bad_version),
        ("bad_length", bad_length),
        ("bad_checksum", bad_checksum),
        ("undecodable", undecodable),
        ("oversized", oversized),
        ("unknown_sender", unknown_sender),
        ("not_a_request", not_a_request),
    ];
    for (_, datagram) in &cases {
        socket.send_to(datagram, node).unwrap();
    }
    let view = cluster.status(1).expect("the node still serves");
    for (kind, _) in &cases {
        let count = view.counters[&format!("drop_{kind}")];
        assert!(count >= 1, "no {kind} drop counted: {:?}", view.counters);
    }
    // And it still runs transactions (on keys it holds itself).
    let key = spread_keys(&cluster.placement(), "mine", &[1]).remove(0);
    let mut client = cluster.client(1, Duration::from_secs(5));
    let request = Request::Txn {
        reads: BTreeMap::new(),
        writes: [(b(&key), Some(b("v")))].into(),
    };
    let reply = client.request(request).unwrap();
    assert!(
        matches!(
            reply,
            Reply::Txn {
                outcome: Outcome::Commit,
                ..
            }
        ),
        "{reply:?}"
    );
    let value = client
        .request(Request::Read {
            keys: vec![b(&key)],
        })
        .unwrap();
    assert!(
        matches!(&value, Reply::Values(values) if values[0].1.as_ref().is_some_and(|v| v.value == "v")),
        "{value:?}"
    );
}

#[test]
fn a_bundle_is_handled_datagram_by_datagram_and_a_malformed_one_is_dropped_and_counted() {
    let cluster = Cluster::start(&[1], &[2], 1);
    let node = cluster.addrs[&1];
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let client = CLIENT_BIT | 6;
    let status = |id| {
        let request = Wire::Msg(NodeMsg::Request {
            client,
            id,
            home: None,
            request: Request::Status,
        });
        codec::encode(client, &request).unwrap()
    };
    let bundles = codec::bundle::pack(vec![status(1), status(2), status(3)]);
    assert_eq!(bundles.len(), 1);
    socket.send_to(&bundles[0], node).unwrap();
    let mut answered = BTreeSet::new();
    let mut buffer = vec![0; codec::RECV_BUFFER];
    while answered.len() < 3 {
        let (len, _) = socket
            .recv_from(&mut buffer)
            .expect("an answer to each request");
        // Answers to a client are never bundled.
        let frame = codec::decode::<Wire>(&buffer[..len]).expect("a plain datagram");
        match frame.payload {
            Wire::Msg(NodeMsg::Reply {
                id,
                reply: Reply::Status(_),
                ..
            }) => answered.insert(id),
            other => panic!("unexpected answer {other:?}"),
        };
    }
    assert_eq!(answered, BTreeSet::from([1, 2, 3]));
    // A bundle whose only datagram is too short to hold a header.
    let mut malformed = codec::bundle::BUNDLE_MAGIC.to_vec();
    malformed.extend_from_slice(&3u16.to_le_bytes());
    malformed.extend_from_slice(b"abc");
    socket.send_to(&malformed, node).unwrap();
    let view = cluster.status(1).expect("the node still serves");
    assert_eq!(view.counters["drop_bad_header"], 1, "{:?}", view.counters);
}

/// Starts node `id` in the foreground until it exits or `wait` passes; returns
/// its exit status (`None`: still running, then killed) and its stderr.
fn run_briefly(cluster: &Cluster, id: u16, wait: Duration) -> (Option<i32>, String) {
    let mut child = cluster
        .command(id)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + wait;
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    (code, stderr)
}

/// The log's segment files of node `id`, oldest first.
fn segments(cluster: &Cluster, id: u16) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(cluster.data(id).join("log"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

fn commit_one(cluster: &Cluster, id: u16, key: &str, value: &str) {
    let request = Request::Txn {
        reads: BTreeMap::new(),
        writes: [(b(key), Some(b(value)))].into(),
    };
    let reply = cluster
        .client(id, Duration::from_secs(5))
        .request(request)
        .unwrap();
    assert!(
        matches!(
            reply,
            Reply::Txn {
                outcome: Outcome::Commit,
                ..
            }
        ),
        "{reply:?}"
    );
}

/// Kills node `id` (SIGKILL), starts it again and reads `keys` from it.
fn restart_and_read(cluster: &mut Cluster, id: u16, keys: &[String]) -> Vec<Option<Bytes>> {
    cluster.kill(id);
    cluster.spawn(id);
    cluster.await_up(id);
    let reply = cluster
        .client(id, Duration::from_secs(10))
        .request(Request::Read {
            keys: keys.iter().map(|k| b(k)).collect(),
        })
        .unwrap();
    match reply {
        Reply::Values(values) => values
            .into_iter()
            .map(|(_, versioned)| versioned.map(|v| v.value))
            .collect(),
        other => panic!("node {id} answered a read with {other:?}"),
    }
}

#[test]
fn damaged_storage_is_repaired_at_the_tail_and_refused_before_it() {
    let mut cluster = Cluster::start(&[1], &[2], 1);
    let keys = spread_keys(&cluster.placement(), "mine", &[1]);
    for i in 0..5 {
        commit_one(&cluster, 1, &keys[0], &format!("v{i}"));
    }
    cluster.kill(1);
    let segment = segments(&cluster, 1).pop().expect("a log segment");
    let intact = std::fs::read(&segment).unwrap();

    // A flipped byte in the middle of the log: refused, naming file and offset.
    let mut flipped = intact.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x20;
    std::fs::write(&segment, &flipped).unwrap();
    let (code, stderr) = run_briefly(&cluster, 1, Duration::from_secs(10));
    assert_eq!(
        code,
        Some(1),
        "a corrupt log must stop the start; stderr: {stderr}"
    );
    assert!(
        stderr.contains(&segment.display().to_string())
            && stderr.contains("at byte")
            && stderr.contains("refuses to start"),
        "the error must name the file and offset and refuse: {stderr}"
    );
    assert_eq!(
        std::fs::read(&segment).unwrap(),
        flipped,
        "a refused start changes nothing"
    );

    // A torn tail: cut, reported, and the node starts with every value it
    // acknowledged (the cut write was never synced, so never acknowledged).
    let mut torn = intact.clone();
    torn.extend_from_slice(&[0x17, 0x00, 0x00]);
    std::fs::write(&segment, &torn).unwrap();
    cluster.spawn(1);
    cluster.await_up(1);
    let log = std::fs::read_to_string(cluster.dir.path().join("node1.log")).unwrap();
    assert!(log.contains("torn tail"), "the repair is reported: {log}");
    let reply = cluster
        .client(1, Duration::from_secs(5))
        .request(Request::Read {
            keys: vec![b(&keys[0])],
        })
        .unwrap();
    assert!(
        matches!(&reply, Reply::Values(v) if v[0].1.as_ref().is_some_and(|v| v.value == "v4")),
        "{reply:?}"
    );
}

/// A transaction whose one participant is its coordinator's own node takes
/// one sync, not two: the participant's Yes goes to its coordinator ahead of
/// the prepared record's save, and the commit record's sync makes both
/// durable (`NodeMsg::may_overtake_its_save`). The node, killed after, still
/// holds every value it acknowledged.
#[test]
fn a_vote_to_the_nodes_own_coordinator_goes_ahead_of_its_save() {
    const TXNS: u64 = 20;
    let mut cluster = Cluster::start(&[1], &[2], 1);
    let keys = spread_keys(&cluster.placement(), "own", &[1]);
    let counter = |cluster: &Cluster, name: &str| {
        let status = cluster.status(1).unwrap();
        status.counters.get(name).copied().unwrap_or(0)
    };
    let syncs_before = counter(&cluster, "fsyncs");
    for i in 0..TXNS {
        commit_one(&cluster, 1, &keys[0], &format!("v{i}"));
    }
    assert_eq!(counter(&cluster, "votes_ahead_of_save"), TXNS);
    // Two syncs a transaction when the vote waited for its save; with it
    // ahead, one, and the bookkeeping after a commit shares the next one's
    // unless the next comes more than BOOKKEEPING_WAIT later.
    let syncs = counter(&cluster, "fsyncs") - syncs_before;
    assert!(
        syncs < 2 * TXNS,
        "{syncs} syncs for {TXNS} transactions at one node"
    );
    let values = restart_and_read(&mut cluster, 1, &keys[..1]);
    assert_eq!(values, [Some(b(&format!("v{}", TXNS - 1)))]);
}

/// A node whose log outgrows [`CHECKPOINT_MIN_BYTES`] replaces it with a
/// checkpoint (the data directory shrinks back to about the live data), and a
/// node killed after that recovers every value from the checkpoint and the
/// log after it.
#[test]
fn a_node_checkpoints_its_log_and_restarts_from_the_checkpoint() {
    let mut cluster = Cluster::start(&[1], &[2], 1);
    // Values of 1 MiB on a few keys of node 1, overwritten round and round:
    // the log passes the threshold while the live data stays at four values.
    let live = 4;
    let placement = cluster.placement();
    let keys: Vec<String> = (0..live)
        .map(|i| spread_keys(&placement, &format!("big{i}"), &[1]).remove(0))
        .collect();
    let value_bytes = 1 << 20;
    let writes = (CHECKPOINT_MIN_BYTES as usize / value_bytes) + 6;
    let value = |i: usize| format!("{i:07}").repeat(value_bytes / 7);
    for i in 0..writes {
        commit_one(&cluster, 1, &keys[i % live], &value(i));
    }
    let status = cluster.status(1).unwrap();
    let checkpoints = status.counters.get("checkpoints").copied().unwrap_or(0);
    assert!(
        checkpoints >= 1,
        "no checkpoint after {writes} MiB: {status:?}"
    );
    let on_disk: u64 = walk_bytes(&cluster.data(1));
    assert!(
        on_disk < (writes * value_bytes) as u64,
        "the data directory ({on_disk} bytes) still holds every value written"
    );

    let values = restart_and_read(&mut cluster, 1, &keys[..live]);
    for (slot, (key, got)) in keys.iter().zip(values).enumerate() {
        // The last write to each key.
        let last = (0..writes).rev().find(|i| i % live == slot).unwrap();
        assert!(
            got.as_deref() == Some(value(last).as_bytes()),
            "{key:?} after the restart: {} bytes, wanted write {last}",
            got.map_or(0, |v| v.len())
        );
    }
}

/// The bytes of the files under `dir`.
fn walk_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                walk_bytes(&entry.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

#[test]
fn a_data_directory_serves_one_node_at_a_time_and_only_its_own() {
    let mut cluster = Cluster::start(&[1], &[2], 1);
    // A second process on the same directory.
    let (code, stderr) = run_briefly(&cluster, 1, Duration::from_secs(10));
    assert_eq!(code, Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains(&cluster.data(1).display().to_string()) && stderr.contains("lock"),
        "the error must name the directory and say it is locked: {stderr}"
    );
    // Node 2 started on node 1's directory.
    cluster.kill(1);
    let config = std::fs::read_to_string(cluster.config_path(2)).unwrap();
    let stolen = config.replace(
        &cluster.data(2).display().to_string(),
        &cluster.data(1).display().to_string(),
    );
    std::fs::write(cluster.config_path(2), stolen).unwrap();
    let (code, stderr) = run_briefly(&cluster, 2, Duration::from_secs(10));
    assert_eq!(code, Some(1), "stderr: {stderr}");
    assert!(stderr.contains("belongs to node 1"), "{stderr}");
}

// --- the client commands, through the binary ---------------------------------

/// [`TIMERS`] with `setting` (e.g. `failure_timeout_ms = 600`) replaced by
/// `with`.
fn timers_with(setting: &str, with: &str) -> String {
    assert!(TIMERS.contains(setting), "no `{setting}` in TIMERS");
    TIMERS.replace(setting, with)
}

/// The transaction id a `haft txn` line ("committed 1.1.0", "aborted 2.1.0:
/// why") names, checked to read `node.incarnation.sequence`.
fn txn_id_in(line: &str) -> String {
    let id = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .trim_end_matches(':');
    assert!(is_txn_id(id), "no node.incarnation.sequence id in {line:?}");
    id.to_owned()
}

fn is_txn_id(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

#[test]
fn client_commands_refuse_bad_input_with_a_clear_error() {
    let free = format!("127.0.0.1:{}", free_udp_ports(1)[0]);
    let file = tempfile::NamedTempFile::new().unwrap();
    let file = file.path().display().to_string();
    for (args, says) in [
        (
            &["txn", "--node", &free, "set", "novalue"][..],
            "`novalue` is not KEY=VALUE",
        ),
        (
            &["txn", "--node", &free, "set", "=v"],
            "`=v` is not KEY=VALUE",
        ),
        (
            &["txn", "--node", &free, "set", "k=1", "k=2"],
            "key `k` is written twice",
        ),
        (
            &["txn", "--node", "no-such-host", "set", "k=v"],
            "is not a node address",
        ),
        (
            &["txn", "--node", &free, "--retry", "many", "set", "k=v"],
            "'--retry <N>'",
        ),
        (
            &["txn", "--node", &free, "--retry", "-1", "set", "k=v"],
            "unexpected argument '-1'",
        ),
        (
            &["get", "--node", &free, "--timeout", "0", "k"],
            "--timeout must be a positive",
        ),
        (
            &["get", "--node", &free, "--timeout", "NaN", "k"],
            "--timeout must be a positive",
        ),
        (
            &["get", "--node", &free, "--timeout", "1e300", "k"],
            "--timeout is too large",
        ),
        (
            &[
                "status",
                "--node",
                &free,
                "--cluster-key-file",
                "/no/such/key",
            ],
            "/no/such/key",
        ),
        (&["inspect", "--data", &file], "is not a directory"),
    ] {
        let (code, _, err) = haft(args);
        assert_eq!(code, 2, "haft {args:?}: {err}");
        assert!(err.contains(says), "haft {args:?} must say {says:?}: {err}");
    }
    // An empty data directory: nothing to inspect, and it says so.
    let empty = tempfile::tempdir().unwrap();
    let (code, _, err) = haft(&["inspect", "--data", &empty.path().display().to_string()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("holds no record yet"), "{err}");
}

#[test]
fn node_refuses_a_bad_configuration_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").display().to_string();
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "id = \"one\"\n").unwrap();
    let config = config.display().to_string();
    let node = |more: &[&str]| {
        let mut args = vec!["node", "--data", &data];
        args.extend_from_slice(more);
        haft(&args)
    };
    for (args, says) in [
        (&["--id", "1"][..], "`listen` is missing"),
        (
            &["--id", "70000", "--listen", "127.0.0.1:0"],
            "node id 70000 is too large",
        ),
        (
            &["--id", "1", "--listen", "nowhere"],
            "the listen address `nowhere`",
        ),
        (
            &["--id", "1", "--listen", "127.0.0.1:0", "--peer", "2"],
            "peer `2` is not ID=ADDRESS",
        ),
        (
            &[
                "--id",
                "1",
                "--listen",
                "127.0.0.1:0",
                "--peer",
                "1=127.0.0.1:5",
            ],
            "node 1 lists itself among its peers",
        ),
        (&["--config", "/no/such.toml"], "/no/such.toml"),
        (&["--config", &config], "is invalid"),
    ] {
        let (code, _, err) = node(args);
        assert_eq!(code, 2, "haft node {args:?}: {err}");
        assert!(
            err.contains(says),
            "haft node {args:?} must say {says:?}: {err}"
        );
    }
    assert!(
        !dir.path().join("data").exists(),
        "a refused start creates nothing"
    );
}

/// A read whose message to the key's replica is lost is asked again when its
/// client retries at the same node, as the client library does: node 1 is cut
/// off from node 2 while the first tries go out, then the cut heals. (A retry
/// used to ask again only of a replica the detector suspected, and the read
/// waited until its client gave up.)
#[test]
fn a_read_lost_on_its_way_to_the_replica_is_asked_again_on_a_retry() {
    let cluster = Cluster::start(&[1, 2], &[], 1);
    let key = spread_keys(&cluster.placement(), "far", &[2]).remove(0);
    commit_one(&cluster, 2, &key, "there");
    cluster.faults(1, &[2], 0);
    let mut client = cluster.client(1, Duration::from_secs(5));
    let request = Request::Read {
        keys: vec![b(&key)],
    };
    let read = thread::spawn(move || client.request(request));
    // Longer than the client's first retry (250 ms), shorter than the
    // detector's failure timeout (600 ms).
    thread::sleep(Duration::from_millis(350));
    cluster.faults(1, &[], 0);
    let reply = read
        .join()
        .unwrap()
        .expect("the read is answered once the cut heals");
    assert!(
        matches!(&reply, Reply::Values(v) if v[0].1.as_ref().is_some_and(|v| v.value == "there")),
        "{reply:?}"
    );
    let status = cluster.status(1).unwrap();
    assert!(
        status.counters["drop_partitioned"] >= 1,
        "the first read never left node 1: {:?}",
        status.counters
    );
}

#[test]
fn get_names_the_node_it_cannot_reach_and_why() {
    // A detector slow to suspect, so that a read can be caught before it does.
    let timers = timers_with("failure_timeout_ms = 600", "failure_timeout_ms = 3000");
    let mut cluster = Cluster::with_timers(&[1, 2, 3], &[], 1, &timers);
    cluster.await_all_alive(Duration::from_secs(20));
    let addr = |id: u16| cluster.addrs[&id].to_string();
    let (a1, a2, a3) = (addr(1), addr(2), addr(3));
    let key = spread_keys(&cluster.placement(), "owned", &[3]).remove(0);
    let (code, out, err) = haft(&["txn", "--node", &a1, "set", &format!("{key}=v")]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("committed "), "{out}");
    let (code, out, err) = haft(&["get", "--node", &a2, &key]);
    assert_eq!((code, out.as_str()), (0, "v\n"), "{err}");

    // The key's only replica stops. Before node 2 suspects it, a read gets
    // no answer from it: the error says node 2 is up and what it waits on.
    cluster.kill(3);
    let (code, _, err) = haft(&["get", "--node", &a2, "--timeout", "0.5", &key]);
    assert_eq!(code, 1, "{err}");
    for says in [
        format!("node 2 at {a2} is up, but its read of key \"{key}\" got no answer within 500ms"),
        "the replica it asked has not answered".to_owned(),
        "node 3 alive".to_owned(),
    ] {
        assert!(err.contains(&says), "must say {says:?}: {err}");
    }

    // Once node 2 suspects it, the read is answered at once: node 3, its
    // address, and why.
    let deadline = Instant::now() + Duration::from_secs(20);
    while matches!(
        cluster.status(2).unwrap().members[&3],
        MemberStatus::Alive | MemberStatus::Unknown
    ) {
        assert!(Instant::now() < deadline, "node 2 never suspected node 3");
        thread::sleep(Duration::from_millis(50));
    }
    let started = Instant::now();
    let (code, _, err) = haft(&["get", "--node", &a2, &key]);
    assert_eq!(code, 1, "{err}");
    let names = format!("error: node 2 cannot reach any replica of key \"{key}\": node 3 at {a3} ");
    assert!(err.contains(&names), "must say {names:?}: {err}");
    assert!(
        err.contains("is suspected (no heartbeat from it within the failure timeout)")
            || err.contains("was declared dead"),
        "must say why: {err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered without waiting out the timeout"
    );

    // Asking the stopped node itself: no answer, and the error names it.
    let (code, _, err) = haft(&["get", "--node", &a3, "--timeout", "0.5", &key]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("no answer from the node at {a3}")),
        "{err}"
    );
}

#[test]
fn txn_says_why_it_aborted_and_retries_conflicts_as_new_transactions() {
    // Votes are awaited for 4 s, so a transaction that cannot collect them
    // holds its locks that long.
    let timers = timers_with(
        "vote_timeout_ms = [300, 500]",
        "vote_timeout_ms = [4000, 4000]",
    );
    let cluster = Cluster::with_timers(&[1, 2], &[3], 1, &timers);
    let (a1, a2) = (cluster.addrs[&1].to_string(), cluster.addrs[&2].to_string());
    let keys = spread_keys(&cluster.placement(), "contended", &[1, 3]);
    let (k, j) = (&keys[0], &keys[1]);
    // Node 2 coordinates a transaction over k (on node 1) and j (on node 3,
    // which never runs): node 1 locks k, node 3 never votes. Its abort is no
    // conflict, so --retry must not run it again.
    let holder = Command::new(env!("CARGO_BIN_EXE_haft"))
        .args([
            "txn",
            "--node",
            &a2,
            "--timeout",
            "20",
            "--retry",
            "3",
            "set",
        ])
        .args([format!("{k}=held"), format!("{j}=held")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster.status(1).unwrap().prepared == 0 {
        assert!(
            Instant::now() < deadline,
            "node 1 never prepared the holder"
        );
        thread::sleep(Duration::from_millis(10));
    }

    // A transaction of node 1 (an older id) finds k locked: aborted, naming
    // the key and the holder.
    let set_k = |value: &str| format!("{k}={value}");
    let (code, out, err) = haft(&["txn", "--node", &a1, "set", &set_k("a")]);
    assert_eq!(code, 1, "{out}{err}");
    let first = txn_id_in(&out);
    assert!(first.starts_with("1."), "{out}");
    let conflict = format!("node 1 refused: conflict on key \"{k}\" with transaction 2.");
    assert!(out.contains(&conflict), "must say {conflict:?}: {out}");
    assert!(err.is_empty(), "no retry was asked for: {err}");

    // Two retries, each a new transaction, each refused: exit 1 with the
    // last reason, every retry's reason on stderr.
    let (code, out, err) = haft(&["txn", "--node", &a1, "--retry", "2", "set", &set_k("b")]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.starts_with("aborted ") && out.contains(&conflict),
        "{out}"
    );
    let retries: Vec<&str> = err.lines().filter(|l| l.starts_with("retry ")).collect();
    assert_eq!(retries.len(), 2, "{err}");
    for (n, line) in retries.iter().enumerate() {
        assert!(
            line.starts_with(&format!("retry {} of 2 in ", n + 1)),
            "{line}"
        );
        assert!(line.contains(&conflict), "{line}");
    }
    assert!(err.contains("gave up after 2 retries"), "{err}");
    let mut ids: Vec<String> = retries
        .iter()
        .map(|l| txn_id_in(l.split(": ").nth(1).unwrap()))
        .collect();
    ids.push(txn_id_in(out.lines().next().unwrap()));
    ids.push(first);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "each attempt is a new transaction: {ids:?}");

    // With enough retries the transaction outlasts the holder and commits.
    let (code, out, err) = haft(&["txn", "--node", &a1, "--retry", "12", "set", &set_k("c")]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("committed 1."), "{out}");
    assert!(
        err.lines().any(|l| l.starts_with("retry 1 of 12 in ")),
        "{err}"
    );

    // The holder aborted when its vote timer fired, and says why.
    let holder = holder.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&holder.stdout);
    assert_eq!(holder.status.code(), Some(1), "{out}");
    let held = txn_id_in(&out);
    assert!(
        out.contains("vote timeout: no vote from node 3 (unreachable or down)"),
        "{out}"
    );
    assert!(held.starts_with("2."), "{out}");
    let err = String::from_utf8_lossy(&holder.stderr);
    assert!(err.is_empty(), "a vote timeout is not retried: {err}");
    let (_, out, _) = haft(&["get", "--node", &a1, k]);
    assert_eq!(out, "c\n");
}

#[test]
fn peers_are_unknown_until_first_heard() {
    // Never suspected within the test: a silent peer stays "unknown".
    let timers = timers_with("failure_timeout_ms = 600", "failure_timeout_ms = 60000");
    let mut cluster = Cluster::with_timers(&[1], &[2], 1, &timers);
    let a1 = cluster.addrs[&1].to_string();
    let (code, out, err) = haft(&["status", "--node", &a1]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("members: 1 this node, 2 unknown (not heard from yet)"),
        "{out}"
    );
    let (code, out, err) = haft(&["status", "--node", &a1, "--json"]);
    assert_eq!(code, 0, "{err}");
    let view: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(view["members"]["2"], "Unknown", "{out}");
    // Node 2 starts: heard, so alive.
    cluster.spawn(2);
    cluster.await_up(2);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, out, _) = haft(&["status", "--node", &a1]);
        if out.contains("members: 1 this node, 2 alive") {
            break;
        }
        assert!(Instant::now() < deadline, "node 2 never alive at 1: {out}");
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn inspect_prints_the_node_and_transaction_ids_as_node_incarnation_sequence() {
    let mut cluster = Cluster::start(&[1], &[2], 1);
    let a1 = cluster.addrs[&1].to_string();
    let data = cluster.data(1).display().to_string();
    let key = spread_keys(&cluster.placement(), "mine", &[1]).remove(0);
    let (code, out, err) = haft(&["txn", "--node", &a1, "set", &format!("{key}=v")]);
    assert_eq!(code, 0, "{out}{err}");
    let txn = txn_id_in(&out);
    assert!(txn.starts_with("1.1."), "node 1, first life: {out}");
    // A restart: the next transaction carries incarnation 2.
    cluster.kill(1);
    cluster.spawn(1);
    cluster.await_up(1);
    let (code, out, err) = haft(&["txn", "--node", &a1, "set", &format!("{key}=w")]);
    assert_eq!(code, 0, "{out}{err}");
    let after = txn_id_in(&out);
    assert!(after.starts_with("1.2."), "node 1, second life: {out}");

    // The answer waits for the decision to be durable; the participant's
    // applying it is bookkeeping, saved with the next save or within
    // BOOKKEEPING_WAIT (5 ms), so the record on disk may lag the answer.
    let (out, record) = (0..100)
        .map(|attempt| {
            if attempt > 0 {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let (code, out, err) = haft(&["inspect", "--data", &data]);
            assert_eq!(code, 0, "{err}");
            let record: serde_json::Value = serde_json::from_str(&out).unwrap();
            (out, record)
        })
        .find(|(_, record)| record["store"][&key]["value"] == "w")
        .expect("the committed value reaches the log");
    assert_eq!(record["node"], 1, "{out}");
    assert_eq!(record["incarnation"], 2, "{out}");
    assert_eq!(record["store"][&key]["value"], "w", "{out}");
    assert_eq!(record["store"][&key]["version"], after.as_str(), "{out}");
    let answers = record["answers"].as_object().unwrap();
    assert!(
        answers
            .values()
            .any(|a| a["txn"] == after.as_str() && a["outcome"] == "committed"),
        "{out}"
    );
    // Every id in the record reads node.incarnation.sequence.
    for table in ["transactions", "commit_records"] {
        for id in record[table].as_object().unwrap().keys() {
            assert!(is_txn_id(id), "{table}: {id}");
        }
    }
    for below in record["finished_below"].as_object().unwrap().values() {
        assert!(is_txn_id(below.as_str().unwrap()), "{below}");
    }
}

/// Many clients on one socket (the load generator `haft bench` uses): each
/// commits its own keys, every request is answered exactly once, to the
/// client that sent it, and what each wrote last reads back.
#[test]
fn many_clients_on_one_socket_each_get_their_own_answers() {
    let cluster = Cluster::start(&[1, 2, 3], &[], 2);
    cluster.await_all_alive(Duration::from_secs(10));
    let node1 = cluster.addrs[&1].to_string();
    let mut clients = Clients::new(&node1, 8, ClientOptions::default()).unwrap();
    assert_eq!(clients.len(), 8);
    let write = |client: usize, round: usize| Request::Txn {
        reads: BTreeMap::new(),
        writes: BTreeMap::from([(b(&format!("c{client}")), Some(b(&format!("r{round}"))))]),
    };
    let rounds = 5;
    let mut sent = vec![0; clients.len()];
    for client in 0..clients.len() {
        clients.send(client, write(client, 0)).unwrap();
    }
    let mut answered = 0;
    while answered < clients.len() * rounds {
        let (client, reply) = clients.next_reply().unwrap();
        answered += 1;
        assert!(
            matches!(
                reply,
                Reply::Txn {
                    outcome: Outcome::Commit,
                    ..
                }
            ),
            "client {client}: {reply:?}"
        );
        sent[client] += 1;
        if sent[client] < rounds {
            clients.send(client, write(client, sent[client])).unwrap();
        }
    }
    assert_eq!(sent, vec![rounds; clients.len()]);
    // Nothing is in flight: asking for a reply is an error, not a hang.
    assert!(clients.next_reply().is_err());
    for client in 0..8 {
        let (code, out, err) = haft(&["get", "--node", &node1, &format!("c{client}")]);
        assert_eq!(
            (code, out.as_str()),
            (0, format!("r{}\n", rounds - 1).as_str()),
            "{err}"
        );
    }
}

/// `haft bench` runs its clients over that socket and reports what the
/// issue asks of it.
#[test]
fn bench_reports_the_floor_latency_and_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().to_str().unwrap();
    let (code, out, err) = haft(&[
        "bench",
        "--clients",
        "1,8",
        "--per-level",
        "40",
        "--dir",
        dir,
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    for key in ["floor_ms", "floor_apart_ms", "p50_ms_1", "commits_per_s_1"] {
        let value = report[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} in {out}"));
        assert!(value > 0.0, "{key} = {value}");
    }
}
