//! Multi-process tests: `haft node` processes on loopback, killed with SIGKILL
//! and restarted, partitioned, fed malformed datagrams, and started over a
//! corrupt record.
//!
//! Ports: each test binds port-0 sockets to learn free ports, then releases
//! them for its nodes, so parallel test runs do not collide (short of another
//! process grabbing a port in that instant). Every child is killed when its
//! cluster guard drops, also when a test fails.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use haft::commit::{Outcome, TxnId, TxnRecord};
use haft::node::{MemberStatus, NodeActor, NodeRecord, Reply, Request, StatusView};
use haft::runtime::client::{Client, ClientError, ClientOptions};
use haft::runtime::codec;
use haft::runtime::config::RawConfig;
use haft::runtime::node::{RECORD_FILE, Wire, load_record};
use rand::Rng;

const TIMERS: &str = r#"
[timers]
vote_timeout_ms = [300, 500]
resend_ms = [100, 200]
uncertain_ms = [200, 400]
heartbeat_ms = 100
check_ms = 50
failure_timeout_ms = 600
suspicion_timeout_ms = 600
"#;

fn free_ports(count: usize) -> Vec<u16> {
    let sockets: Vec<UdpSocket> = (0..count)
        .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    sockets
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect()
}

/// A cluster of `haft node` processes; kills them all when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    addrs: BTreeMap<u64, SocketAddr>,
    children: BTreeMap<u64, Child>,
    /// Peers that exist in the configuration but run no process.
    phantoms: BTreeSet<u64>,
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
    fn start(ids: &[u64], phantoms: &[u64]) -> Cluster {
        let all: Vec<u64> = ids.iter().chain(phantoms).copied().collect();
        let ports = free_ports(all.len());
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

    fn data(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("data{id}"))
    }

    fn config_path(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("node{id}.toml"))
    }

    fn write_config(&self, id: u64) {
        let mut text = format!(
            "id = {id}\nlisten = \"{}\"\ndata = \"{}\"\nallow_fault_injection = true\n[peers]\n",
            self.addrs[&id],
            self.data(id).display()
        );
        for (peer, addr) in &self.addrs {
            if *peer != id {
                text += &format!("{peer} = \"{addr}\"\n");
            }
        }
        text += TIMERS;
        std::fs::write(self.config_path(id), text).unwrap();
    }

    fn command(&self, id: u64) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_haft"));
        command
            .arg("node")
            .arg("--config")
            .arg(self.config_path(id));
        command
    }

    fn spawn(&mut self, id: u64) {
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

    fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.children.remove(&id) {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        }
    }

    fn client(&self, id: u64, timeout: Duration) -> Client {
        let options = ClientOptions {
            timeout,
            retry_after: Duration::from_millis(250).min(timeout),
        };
        Client::new(&self.addrs[&id].to_string(), options).unwrap()
    }

    fn status(&self, id: u64) -> Result<StatusView, ClientError> {
        match self
            .client(id, Duration::from_secs(1))
            .request(Request::Status)?
        {
            Reply::Status(view) => Ok(view),
            other => panic!("node {id} answered a status request with {other:?}"),
        }
    }

    fn await_up(&self, id: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.status(id).is_err() {
            assert!(Instant::now() < deadline, "node {id} did not come up");
        }
    }

    fn running(&self) -> Vec<u64> {
        self.children.keys().copied().collect()
    }

    /// Waits until no node is prepared or still resending a decision.
    fn await_settled(&self, bound: Duration) {
        let deadline = Instant::now() + bound;
        loop {
            let unsettled: Vec<(u64, u64, u64)> = self
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

    fn records(&self) -> BTreeMap<u64, NodeRecord> {
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

    fn actor(&self) -> NodeActor {
        let text = std::fs::read_to_string(self.config_path(*self.addrs.keys().next().unwrap()));
        RawConfig::from_toml(&text.unwrap())
            .unwrap()
            .validate()
            .unwrap()
            .actor()
            .unwrap()
    }
}

/// One client request and what became of it.
#[derive(Clone, Debug)]
struct Attempt {
    label: String,
    writes: BTreeMap<String, String>,
    answer: Option<(TxnId, Outcome)>,
}

/// Keys with distinct owners, so that each transaction spans every node.
fn spread_keys(actor: &NodeActor, prefix: &str, nodes: &[u64]) -> Vec<String> {
    let mut keys: BTreeMap<u64, String> = BTreeMap::new();
    for i in 0.. {
        let key = format!("{prefix}-{i}");
        let owner = usize::from(actor.owner(&key)) as u64;
        if nodes.contains(&owner) {
            keys.entry(owner).or_insert(key);
        }
        if keys.len() == nodes.len() {
            break;
        }
    }
    keys.into_values().collect()
}

/// Runs `count` transactions from one client thread, each on fresh keys (one
/// per node of `span`) plus, now and then, a hot key shared by every client
/// (lock conflicts). Requests go to a random node of `targets`.
fn run_client(
    cluster: &Arc<Mutex<Cluster>>,
    actor: &NodeActor,
    client: &str,
    count: usize,
    span: &[u64],
    targets: &[u64],
) -> Vec<Attempt> {
    let addrs = cluster.lock().unwrap().addrs.clone();
    let mut rng = rand::rng();
    let mut attempts = Vec::new();
    for i in 0..count {
        let label = format!("{client}-{i}");
        let mut writes: BTreeMap<String, String> = spread_keys(actor, &label, span)
            .into_iter()
            .map(|k| (k, label.clone()))
            .collect();
        if rng.random_bool(0.3) {
            writes.insert(format!("hot-{}", rng.random_range(0..4)), label.clone());
        }
        let target = targets[rng.random_range(0..targets.len())];
        let options = ClientOptions {
            timeout: Duration::from_secs(2),
            retry_after: Duration::from_millis(300),
        };
        let mut c = Client::new(&addrs[&target].to_string(), options).unwrap();
        let answer = match c.request(Request::Txn {
            writes: writes.clone(),
        }) {
            Ok(Reply::Txn { txn, outcome }) => Some((txn, outcome)),
            Ok(other) => panic!("a transaction was answered with {other:?}"),
            Err(ClientError::Unreachable { .. }) => None,
            Err(error) => panic!("client error: {error}"),
        };
        attempts.push(Attempt {
            label,
            writes,
            answer,
        });
    }
    attempts
}

/// The checks every test ends with, on the nodes' durable records:
/// - no participant is still prepared;
/// - no transaction id is Commit at one node and Abort (or refused) at another;
/// - each request's fresh keys are all present or all absent (atomicity);
/// - every commit acknowledged to a client is applied at each of its owners.
fn check_atomicity(records: &BTreeMap<u64, NodeRecord>, actor: &NodeActor, attempts: &[Attempt]) {
    let mut outcomes: BTreeMap<TxnId, BTreeMap<u64, Outcome>> = BTreeMap::new();
    for (node, record) in records {
        for (txn, r) in &record.participant.txns {
            let outcome = match r {
                TxnRecord::Prepared { .. } => panic!("node {node} is still prepared for {txn}"),
                TxnRecord::Refused => Outcome::Abort,
                TxnRecord::Decided(outcome) => *outcome,
            };
            outcomes.entry(*txn).or_default().insert(*node, outcome);
        }
    }
    for (txn, at) in &outcomes {
        let distinct: BTreeSet<Outcome> = at.values().copied().collect();
        assert_eq!(distinct.len(), 1, "split decision for {txn}: {at:?}");
    }
    let stored = |key: &str| -> Option<&String> {
        let owner = usize::from(actor.owner(key)) as u64;
        records[&owner].participant.store.get(key)
    };
    for attempt in attempts {
        let fresh: Vec<&String> = attempt
            .writes
            .keys()
            .filter(|k| !k.starts_with("hot-"))
            .collect();
        let present = fresh
            .iter()
            .filter(|k| stored(k) == Some(&attempt.label))
            .count();
        assert!(
            present == 0 || present == fresh.len(),
            "{} applied at {present} of its {} owners",
            attempt.label,
            fresh.len()
        );
        match attempt.answer {
            Some((txn, Outcome::Commit)) => {
                assert_eq!(
                    present,
                    fresh.len(),
                    "acknowledged commit {} lost",
                    attempt.label
                );
                for key in attempt.writes.keys() {
                    let owner = usize::from(actor.owner(key)) as u64;
                    assert_eq!(
                        records[&owner].participant.txns.get(&txn),
                        Some(&TxnRecord::Decided(Outcome::Commit)),
                        "{txn} ({}) not decided Commit at node {owner}",
                        attempt.label
                    );
                }
            }
            Some((txn, Outcome::Abort)) => {
                let committed = outcomes
                    .get(&txn)
                    .is_some_and(|at| at.values().any(|o| *o == Outcome::Commit));
                assert!(!committed, "{txn} answered Abort but committed somewhere");
            }
            None => {}
        }
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

#[test]
fn kill_nine_and_restart_keep_every_transaction_atomic() {
    const CLIENTS: usize = 8;
    const PER_CLIENT: usize = 130;
    let nodes = [1, 2, 3];
    let cluster = Arc::new(Mutex::new(Cluster::start(&nodes, &[])));
    let actor = cluster.lock().unwrap().actor();
    let done = Arc::new(Mutex::new(false));

    let killer = {
        let cluster = Arc::clone(&cluster);
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let mut rng = rand::rng();
            let mut kills = 0;
            while !*done.lock().unwrap() {
                thread::sleep(Duration::from_millis(rng.random_range(50..400)));
                let victim = nodes[rng.random_range(0..nodes.len())];
                cluster.lock().unwrap().kill(victim);
                kills += 1;
                thread::sleep(Duration::from_millis(rng.random_range(0..300)));
                let mut cluster = cluster.lock().unwrap();
                cluster.spawn(victim);
            }
            kills
        })
    };
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let cluster = Arc::clone(&cluster);
            let actor = actor.clone();
            thread::spawn(move || {
                run_client(
                    &cluster,
                    &actor,
                    &format!("c{client}"),
                    PER_CLIENT,
                    &nodes,
                    &nodes,
                )
            })
        })
        .collect();
    let attempts: Vec<Attempt> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client thread"))
        .collect();
    *done.lock().unwrap() = true;
    let kills = killer.join().expect("killer thread");

    let cluster = cluster.lock().unwrap();
    for id in nodes {
        cluster.await_up(id);
    }
    cluster.await_settled(Duration::from_secs(30));
    // Every restarted node is a member again in every view.
    let deadline = Instant::now() + Duration::from_secs(15);
    for id in nodes {
        loop {
            let view = cluster.status(id).expect("node answers");
            if view.members.values().all(|s| *s == MemberStatus::Alive) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {id} still sees {:?}",
                view.members
            );
            thread::sleep(Duration::from_millis(100));
        }
    }
    let records = cluster.records();
    check_atomicity(&records, &actor, &attempts);
    let (committed, aborted, unanswered) = summary(&attempts);
    eprintln!(
        "{} transactions, {kills} kills: {committed} committed, {aborted} aborted, \
         {unanswered} unanswered",
        attempts.len()
    );
    assert!(attempts.len() >= 1000);
    assert!(kills >= 10, "only {kills} kills");
    assert!(
        committed >= attempts.len() / 4,
        "too little progress: {committed} commits"
    );
}

#[test]
fn a_partition_splits_no_decision_and_progress_resumes_when_it_heals() {
    let nodes = [1, 2, 3];
    let cluster = Arc::new(Mutex::new(Cluster::start(&nodes, &[])));
    let actor = cluster.lock().unwrap().actor();
    let running = |phase: &'static str, span: &'static [u64], count| {
        let cluster = Arc::clone(&cluster);
        let actor = actor.clone();
        (0..4)
            .map(move |client| {
                let cluster = Arc::clone(&cluster);
                let actor = actor.clone();
                thread::spawn(move || {
                    let name = format!("{phase}{client}");
                    run_client(&cluster, &actor, &name, count, span, &[1, 2])
                })
            })
            .collect::<Vec<_>>()
    };
    // Commits spanning every node are under way when node 3 is cut off.
    let before = running("before", &[1, 2, 3], 40);
    thread::sleep(Duration::from_millis(150));
    {
        let cluster = cluster.lock().unwrap();
        let isolated = cluster
            .client(3, Duration::from_secs(2))
            .isolate(&[1, 2])
            .unwrap()
            .unwrap();
        assert_eq!(isolated, [1, 2]);
    }
    let mut attempts: Vec<Attempt> = before.into_iter().flat_map(|c| c.join().unwrap()).collect();
    // While it lasts, nodes 1 and 2 still commit among themselves.
    let majority: Vec<Attempt> = running("majority", &[1, 2], 10)
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let (majority_commits, _, _) = summary(&majority);
    assert!(majority_commits > 0, "no progress on the majority side");
    // Heal; then transactions spanning every node commit again.
    {
        let cluster = cluster.lock().unwrap();
        let healed = cluster
            .client(3, Duration::from_secs(2))
            .isolate(&[])
            .unwrap();
        assert_eq!(healed, Ok(vec![]));
    }
    cluster
        .lock()
        .unwrap()
        .await_settled(Duration::from_secs(20));
    let after = running("after", &[1, 2, 3], 5);
    let after: Vec<Attempt> = after.into_iter().flat_map(|c| c.join().unwrap()).collect();
    let (after_commits, _, _) = summary(&after);
    assert!(after_commits > 0, "no commit after healing: {after:?}");
    let cluster = cluster.lock().unwrap();
    cluster.await_settled(Duration::from_secs(20));
    attempts.extend(majority);
    attempts.extend(after);
    let records = cluster.records();
    check_atomicity(&records, &actor, &attempts);
    let (committed, aborted, unanswered) = summary(&attempts);
    eprintln!(
        "partition: {committed} committed, {aborted} aborted, {unanswered} unanswered; \
         {majority_commits} commits on the majority side; {after_commits} after healing"
    );
}

#[test]
fn malformed_datagrams_are_dropped_and_counted() {
    // Node 2 is configured but never runs: its transactions would only time out.
    let cluster = Cluster::start(&[1], &[2]);
    let node = cluster.addrs[&1];
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let valid = codec::encode(
        1 << 63,
        &Wire::Msg(haft::node::NodeMsg::Request {
            id: 1,
            request: Request::Status,
        }),
    )
    .unwrap();
    let mut bad_magic = valid.clone();
    bad_magic[0] ^= 0xff;
    let mut bad_version = valid.clone();
    bad_version[4] = 99;
    let mut bad_length = valid.clone();
    bad_length.push(0);
    let mut bad_checksum = valid.clone();
    *bad_checksum.last_mut().unwrap() ^= 0x01;
    let undecodable = codec::encode(1 << 63, &"not a message").unwrap();
    let unknown_sender = codec::encode(
        77,
        &Wire::Msg(haft::node::NodeMsg::Request {
            id: 1,
            request: Request::Status,
        }),
    )
    .unwrap();
    let oversized = vec![0x48; codec::MAX_DATAGRAM + 100];
    let cases: [(&str, Vec<u8>); 8] = [
        ("truncated", valid[..10].to_vec()),
        ("bad_magic", bad_magic),
        ("bad_version", bad_version),
        ("bad_length", bad_length),
        ("bad_checksum", bad_checksum),
        ("undecodable", undecodable),
        ("oversized", oversized),
        ("unknown_sender", unknown_sender),
    ];
    for (_, datagram) in &cases {
        socket.send_to(datagram, node).unwrap();
    }
    let view = cluster.status(1).expect("the node still serves");
    for (kind, _) in &cases {
        let count = view.counters[&format!("drop_{kind}")];
        assert!(count >= 1, "no {kind} drop counted: {:?}", view.counters);
    }
    // And it still runs transactions (on keys it owns itself).
    let actor = cluster.actor();
    let key = spread_keys(&actor, "mine", &[1]).remove(0);
    let mut client = cluster.client(1, Duration::from_secs(5));
    let reply = client
        .request(Request::Txn {
            writes: [(key.clone(), "v".to_owned())].into(),
        })
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
    let value = client.request(Request::Get { key }).unwrap();
    assert!(matches!(value, Reply::Value { value: Some(v), .. } if v == "v"));
}

/// Starts node `id` in the foreground and returns its exit status and stderr.
fn run_to_exit(cluster: &Cluster, id: u64) -> (Option<i32>, String) {
    let mut child = cluster
        .command(id)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            return (status.code(), stderr);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("node {id} started over a corrupt record instead of refusing");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn corrupt(path: &Path, damage: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    damage(&mut bytes);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_corrupt_record_stops_the_start_with_a_clear_error() {
    let mut cluster = Cluster::start(&[1], &[2]);
    let key = spread_keys(&cluster.actor(), "mine", &[1]).remove(0);
    let reply = cluster
        .client(1, Duration::from_secs(5))
        .request(Request::Txn {
            writes: [(key, "v".to_owned())].into(),
        })
        .unwrap();
    assert!(matches!(
        reply,
        Reply::Txn {
            outcome: Outcome::Commit,
            ..
        }
    ));
    cluster.kill(1);
    let path = cluster.data(1).join(RECORD_FILE);
    let intact = std::fs::read(&path).unwrap();
    let flip = |bytes: &mut Vec<u8>| {
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x20;
    };
    let tear = |bytes: &mut Vec<u8>| bytes.truncate(bytes.len() - 3);
    for (what, damage) in [
        ("a flipped bit", &flip as &dyn Fn(&mut Vec<u8>)),
        ("a torn write", &tear),
    ] {
        corrupt(&path, damage);
        let (code, stderr) = run_to_exit(&cluster, 1);
        assert_eq!(code, Some(1), "{what}: exit code; stderr: {stderr}");
        assert!(
            stderr.contains(&path.display().to_string()) && stderr.contains("refuses to start"),
            "{what}: the error must name the file and refuse: {stderr}"
        );
        std::fs::write(&path, &intact).unwrap();
    }
    // The intact record starts again.
    cluster.spawn(1);
    cluster.await_up(1);
}
