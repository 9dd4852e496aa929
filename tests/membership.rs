//! Multi-process membership tests: real `haft node` processes on loopback
//! whose ring changes through the CLI (`haft node --join`, `haft leave`,
//! `haft remove`) while client threads write steadily; every acknowledged
//! write is then read back through `haft get` from every member.
//!
//! Each client thread writes its own keys, one transaction after another,
//! and remembers per key the latest value acknowledged Commit, and the
//! values of later writes whose answer never came (they may or may not have
//! committed). An aborted write (a conflict, or `Refusal::Epoch` /
//! `NotHeld` during a change) changed nothing and is simply followed by the
//! next one. At the end, a key must read as its latest acknowledged value
//! or one of those unanswered later writes — nothing older, nothing else.
//! Before the load, 3,000 keys of 512 bytes are written so that each change
//! has keys to move; they are read back through the library client at every
//! member.
//!
//! A datagram with a bad tag being counted and ignored is tested in
//! tests/resp_cluster.rs (`bad_tags_are_counted_and_ignored_and_a_replay_does_no_harm`).
//!
//! Ports and children as in tests/cluster.rs: port-0 sockets learn free
//! ports, and every child is killed when its cluster guard drops. Every wait
//! polls against a deadline, so a loaded machine makes a test slower, not
//! wrong.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::Bytes;
use haft::commit::Outcome;
use haft::node::{Reply, Request, StatusView};
use haft::runtime::client::{Client, ClientError, ClientOptions};
use rand::Rng;

#[path = "common/cluster_env.rs"]
mod cluster_env;
use cluster_env::{TIMERS, free_udp_ports};
#[path = "common/haft_command.rs"]
mod haft_command;
use haft_command::haft;

/// How long a ring change and its handoff may take on a loaded machine.
const CHANGE_BOUND: Duration = Duration::from_secs(40);

/// A cluster of `haft node` processes; kills them all when dropped (and
/// then, if the test failed, prints the tail of each node's log).
struct Cluster {
    dir: tempfile::TempDir,
    addrs: BTreeMap<u16, SocketAddr>,
    children: BTreeMap<u16, Child>,
    replicas: usize,
    /// Further top-level lines of every node's configuration file.
    settings: String,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            for id in self.addrs.keys() {
                let log = self.dir.path().join(format!("node{id}.log"));
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = &lines[lines.len().saturating_sub(20)..];
                eprintln!("--- node {id} log (last {} lines)", tail.len());
                for line in tail {
                    eprintln!("{line}");
                }
            }
        }
    }
}

impl Cluster {
    /// Configures `ids` (plus `spare` nodes started later with `--join`),
    /// and starts `ids`, each configured with the others as its peers.
    fn start(ids: &[u16], spare: &[u16], replicas: usize) -> Cluster {
        Cluster::start_with(ids, spare, replicas, "")
    }

    /// [`Cluster::start`], with `settings` added to every node's
    /// configuration file.
    fn start_with(ids: &[u16], spare: &[u16], replicas: usize, settings: &str) -> Cluster {
        let all: Vec<u16> = ids.iter().chain(spare).copied().collect();
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
            replicas,
            settings: settings.to_owned(),
        };
        for &id in ids {
            cluster.write_config(id, ids);
        }
        for &id in spare {
            cluster.write_config(id, &[]);
        }
        for &id in ids {
            cluster.spawn(id, &[]);
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

    fn addr(&self, id: u16) -> String {
        self.addrs[&id].to_string()
    }

    /// Node `id`'s configuration, with `members` (but itself) as its peers.
    fn write_config(&self, id: u16, members: &[u16]) {
        let mut text = format!(
            "id = {id}\nlisten = \"{}\"\ndata = \"{}\"\nreplicas = {}\n{}\n[peers]\n",
            self.addrs[&id],
            self.data(id).display(),
            self.replicas,
            self.settings,
        );
        for peer in members.iter().filter(|p| **p != id) {
            text += &format!("{peer} = \"{}\"\n", self.addrs[peer]);
        }
        text += TIMERS;
        std::fs::write(self.config_path(id), text).unwrap();
    }

    fn spawn(&mut self, id: u16, extra: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("node{id}.log")))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_haft"))
            .arg("node")
            .arg("--config")
            .arg(self.config_path(id))
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start haft node");
        self.children.insert(id, child);
    }

    /// Starts the spare node `id` with `--join` through member `through`.
    fn join(&mut self, id: u16, through: u16) {
        let seed = self.addr(through);
        self.spawn(id, &["--join", &seed]);
        self.await_up(id);
    }

    fn kill(&mut self, id: u16) {
        let mut child = self.children.remove(&id).expect("a running node");
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }

    fn status(&self, id: u16) -> Result<StatusView, ClientError> {
        let options = ClientOptions {
            timeout: Duration::from_secs(1),
            retry_after: Duration::from_millis(250),
        };
        match Client::new(&self.addr(id), options)?.request(Request::Status)? {
            Reply::Status(view) => Ok(view),
            other => panic!("node {id} answered a status request with {other:?}"),
        }
    }

    fn await_up(&self, id: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.status(id).is_err() {
            assert!(Instant::now() < deadline, "node {id} did not come up");
        }
    }

    /// Waits until each of `members` runs one ring, newer than `after`,
    /// whose members are exactly `members`, and has no handoff under way;
    /// returns that epoch.
    fn await_ring(&self, members: &[u16], after: u64) -> u64 {
        let want: BTreeSet<u16> = members.iter().copied().collect();
        let deadline = Instant::now() + CHANGE_BOUND;
        loop {
            let views: BTreeMap<u16, Result<StatusView, ClientError>> =
                members.iter().map(|&id| (id, self.status(id))).collect();
            let epochs: BTreeSet<u64> = views
                .values()
                .filter_map(|v| v.as_ref().ok().map(|v| v.epoch))
                .collect();
            let settled = views.values().all(|view| {
                view.as_ref().is_ok_and(|view| {
                    view.member
                        && view.epoch > after
                        && view.handoff.is_none()
                        && view.members.keys().copied().collect::<BTreeSet<_>>() == want
                })
            }) && epochs.len() == 1;
            if settled {
                return epochs.into_iter().next().unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "no settled ring of {want:?} after {CHANGE_BOUND:?}: {:#?}",
                views
                    .iter()
                    .map(|(id, v)| (
                        id,
                        v.as_ref()
                            .map(|v| (v.epoch, v.member, &v.members, &v.handoff))
                    ))
                    .collect::<Vec<_>>()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Reads `key` through `haft get` at node `id`: its value, or `None` if
    /// it has no committed value; any other answer fails the test.
    fn get(&self, id: u16, key: &str) -> Option<String> {
        let addr = self.addr(id);
        let (code, stdout, stderr) = haft(&["get", "--node", &addr, "--timeout", "10", key]);
        match code {
            0 => Some(stdout.trim_end_matches('\n').to_owned()),
            1 if stderr.contains("has no committed value") => None,
            _ => panic!("haft get {key} at node {id} failed ({code}): {stderr}"),
        }
    }

    /// Runs `haft leave` at node `id`, which must succeed, and waits for the
    /// node's process to exit by itself with status 0; how long it took.
    fn leave(&mut self, id: u16) -> Duration {
        let start = Instant::now();
        let (code, stdout, stderr) = haft(&["leave", "--node", &self.addr(id), "--wait", "40"]);
        assert_eq!(code, 0, "haft leave failed: {stdout}{stderr}");
        assert!(
            stdout.contains(&format!("node {id} left the ring")),
            "{stdout}"
        );
        assert!(stdout.contains("handed over its keys"), "{stdout}");
        let exit = self.await_exit(id, Duration::from_secs(20));
        assert!(exit.success(), "the departed node exited with {exit}");
        start.elapsed()
    }

    /// Waits for node `id`'s process to exit by itself; its exit status.
    fn await_exit(&mut self, id: u16, bound: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + bound;
        loop {
            let child = self.children.get_mut(&id).expect("a running node");
            if let Some(status) = child.try_wait().unwrap() {
                self.children.remove(&id);
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "node {id}'s process did not exit within {bound:?}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

/// What one client thread knows of its keys.
#[derive(Debug, Default)]
struct ClientLog {
    /// Per key, the latest value acknowledged Commit.
    acked: BTreeMap<String, String>,
    /// Per key, the writes after the latest acknowledged one whose answer
    /// never came: each may have committed.
    unknown: BTreeMap<String, Vec<String>>,
    commits: usize,
    aborts: usize,
    unanswered: usize,
    /// Abort and refusal reasons, counted.
    reasons: BTreeMap<String, usize>,
}

/// Client threads writing steadily until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    commits: Arc<AtomicU64>,
    threads: Vec<JoinHandle<ClientLog>>,
}

/// Keys per client thread.
const KEYS_PER_CLIENT: usize = 12;

/// Keys written before the load starts, so that a handoff has some to move.
const BULK_KEYS: usize = 3000;

impl Load {
    /// Starts `clients` threads, each writing two of its own keys per
    /// transaction, through a random node of `targets`.
    fn start(cluster: &Cluster, clients: usize, targets: &[u16]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let commits = Arc::new(AtomicU64::new(0));
        let addrs: Vec<String> = targets.iter().map(|&id| cluster.addr(id)).collect();
        let threads = (0..clients)
            .map(|c| {
                let (stop, commits, addrs) = (stop.clone(), commits.clone(), addrs.clone());
                thread::spawn(move || run_client(c, &addrs, &stop, &commits))
            })
            .collect();
        Load {
            stop,
            commits,
            threads,
        }
    }

    fn committed(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Waits until `more` further writes have been acknowledged.
    fn await_commits(&self, more: u64, what: &str) {
        let target = self.committed() + more;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.committed() < target {
            assert!(
                Instant::now() < deadline,
                "{what}: only {} of {target} writes acknowledged after 30 s",
                self.committed()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn finish(self) -> Vec<ClientLog> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .map(|t| t.join().expect("a client thread"))
            .collect()
    }
}

fn client_key(client: usize, index: usize) -> String {
    format!("c{client}-k{index}")
}

fn run_client(
    client: usize,
    addrs: &[String],
    stop: &AtomicBool,
    commits: &AtomicU64,
) -> ClientLog {
    let mut rng = rand::rng();
    let mut log = ClientLog::default();
    let options = ClientOptions {
        timeout: Duration::from_secs(5),
        retry_after: Duration::from_millis(250),
    };
    let mut clients: Vec<Client> = addrs
        .iter()
        .map(|a| Client::new(a, options).unwrap())
        .collect();
    let mut sequence = 0;
    while !stop.load(Ordering::Relaxed) {
        // Round robin first, so that every key is written early on.
        let first = sequence % KEYS_PER_CLIENT;
        let second = (first + 1 + rng.random_range(0..KEYS_PER_CLIENT - 1)) % KEYS_PER_CLIENT;
        let keys = [client_key(client, first), client_key(client, second)];
        let value = format!("c{client}-w{sequence}");
        sequence += 1;
        let writes = keys.iter().map(|k| (b(k), Some(b(&value)))).collect();
        let target = rng.random_range(0..clients.len());
        let answer = clients[target].request(Request::Txn {
            reads: BTreeMap::new(),
            writes,
        });
        match answer {
            Ok(Reply::Txn {
                outcome: Outcome::Commit,
                ..
            }) => {
                for key in &keys {
                    log.acked.insert(key.clone(), value.clone());
                    log.unknown.remove(key);
                }
                log.commits += 1;
                commits.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Reply::Txn { reason, .. }) => {
                log.aborts += 1;
                let reason = reason.map_or("unknown".into(), |r| r.to_string());
                *log.reasons.entry(reason_kind(&reason)).or_default() += 1;
            }
            Ok(Reply::Refused { reason }) => {
                log.aborts += 1;
                *log.reasons.entry(reason_kind(&reason)).or_default() += 1;
            }
            Ok(other) => panic!("a transaction was answered with {other:?}"),
            Err(ClientError::Unreachable { .. }) => {
                log.unanswered += 1;
                for key in &keys {
                    log.unknown
                        .entry(key.clone())
                        .or_default()
                        .push(value.clone());
                }
                // A node that does not answer (one that left) is asked no
                // more, while others remain; otherwise a fresh client.
                if clients.len() > 1 {
                    clients.remove(target);
                } else {
                    let node = clients[target].node().to_string();
                    clients[target] = Client::new(&node, options).unwrap();
                }
            }
            Err(error) => panic!("client error: {error}"),
        }
    }
    log
}

/// A reason without its transaction ids and key names, to count by kind.
fn reason_kind(reason: &str) -> String {
    reason
        .split_whitespace()
        .filter(|w| !w.chars().any(|c| c.is_ascii_digit()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes `count` keys of 512 bytes through node `through`, 50 per
/// transaction, each acknowledged Commit (an abort is retried); returns
/// them with their values.
fn fill(cluster: &Cluster, through: u16, count: usize) -> BTreeMap<Bytes, Bytes> {
    let options = ClientOptions {
        timeout: Duration::from_secs(10),
        retry_after: Duration::from_millis(250),
    };
    let mut client = Client::new(&cluster.addr(through), options).unwrap();
    let bulk: BTreeMap<Bytes, Bytes> = (0..count)
        .map(|i| (b(&format!("bulk-{i}")), b(&format!("{i:0>512}"))))
        .collect();
    let entries: Vec<(&Bytes, &Bytes)> = bulk.iter().collect();
    for batch in entries.chunks(50) {
        let writes: BTreeMap<Bytes, Option<Bytes>> = batch
            .iter()
            .map(|(k, v)| ((*k).clone(), Some((*v).clone())))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answer = client.request(Request::Txn {
                reads: BTreeMap::new(),
                writes: writes.clone(),
            });
            if let Ok(Reply::Txn {
                outcome: Outcome::Commit,
                ..
            }) = answer
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the fill did not commit in 30 s: {answer:?}"
            );
        }
    }
    bulk
}

/// Reads the bulk keys through the library client at each of `nodes` (100
/// per request) and checks each has its value.
fn check_bulk(cluster: &Cluster, nodes: &[u16], bulk: &BTreeMap<Bytes, Bytes>) {
    let options = ClientOptions {
        timeout: Duration::from_secs(10),
        retry_after: Duration::from_millis(250),
    };
    let keys: Vec<Bytes> = bulk.keys().cloned().collect();
    for &node in nodes {
        let mut client = Client::new(&cluster.addr(node), options).unwrap();
        for batch in keys.chunks(100) {
            let answer = client.request(Request::Read {
                keys: batch.to_vec(),
            });
            let Ok(Reply::Values(values)) = answer else {
                panic!("node {node} answered a read of bulk keys with {answer:?}");
            };
            for (key, value) in values {
                assert_eq!(
                    value.map(|v| v.value),
                    Some(bulk[&key].clone()),
                    "bulk key {:?} at node {node}",
                    String::from_utf8_lossy(&key)
                );
            }
        }
    }
}

/// Reads every client key through `haft get` at each of `nodes`, and checks
/// it is its latest acknowledged value, or one of the later writes whose
/// answer never came (absent only if no write of it was acknowledged).
fn read_back(cluster: &Cluster, nodes: &[u16], logs: &[ClientLog]) -> usize {
    let mut reads = 0;
    for (client, log) in logs.iter().enumerate() {
        for index in 0..KEYS_PER_CLIENT {
            let key = client_key(client, index);
            let mut allowed: Vec<Option<&str>> = vec![log.acked.get(&key).map(String::as_str)];
            allowed.extend(
                log.unknown
                    .get(&key)
                    .into_iter()
                    .flatten()
                    .map(|v| Some(v.as_str())),
            );
            for &node in nodes {
                let got = cluster.get(node, &key);
                assert!(
                    allowed.contains(&got.as_deref()),
                    "key {key} read {got:?} at node {node}; acknowledged {:?}, unanswered later \
                     writes {:?}",
                    log.acked.get(&key),
                    log.unknown.get(&key)
                );
                reads += 1;
            }
        }
    }
    reads
}

/// After a ring change: lets the load commit 30 more writes, stops it, and
/// reads back every bulk key and every client key at each of `members`.
fn finish_and_read_back(
    test: &str,
    cluster: &Cluster,
    load: Load,
    members: &[u16],
    bulk: &BTreeMap<Bytes, Bytes>,
    start: Instant,
) {
    load.await_commits(30, "after the change");
    let logs = load.finish();
    report(test, &logs, start);
    check_bulk(cluster, members, bulk);
    let reads = read_back(cluster, members, &logs);
    eprintln!(
        "{test}: {reads} reads checked, {:.1?} in all",
        start.elapsed()
    );
}

/// Sums the client logs, checks the load made progress, and prints it.
fn report(test: &str, logs: &[ClientLog], start: Instant) {
    let commits: usize = logs.iter().map(|l| l.commits).sum();
    let aborts: usize = logs.iter().map(|l| l.aborts).sum();
    let unanswered: usize = logs.iter().map(|l| l.unanswered).sum();
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for log in logs {
        for (reason, n) in &log.reasons {
            *reasons.entry(reason).or_default() += n;
        }
    }
    eprintln!(
        "{test}: {commits} writes acknowledged, {aborts} aborted, {unanswered} unanswered in \
         {:.1?}; aborts by reason: {reasons:#?}",
        start.elapsed()
    );
    assert!(
        logs.iter().all(|l| l.acked.len() == KEYS_PER_CLIENT),
        "some key was never acknowledged"
    );
}

#[test]
fn a_node_joins_under_load_and_every_acknowledged_write_reads_back_from_every_node() {
    let start = Instant::now();
    let mut cluster = Cluster::start(&[1, 2, 3], &[4], 2);
    let epoch = cluster.await_ring(&[1, 2, 3], 0);
    let bulk = fill(&cluster, 1, BULK_KEYS);
    let load = Load::start(&cluster, 3, &[1, 2, 3]);
    load.await_commits(30, "before the join");

    let change = Instant::now();
    cluster.join(4, 1);
    let joined = cluster.await_ring(&[1, 2, 3, 4], epoch);
    eprintln!(
        "join: node 4 joined and took over its keys in {:.1?}",
        change.elapsed()
    );
    assert_eq!(joined, epoch + 1, "one join, one epoch");

    let view = cluster.status(4).unwrap();
    assert!(view.keys > 0, "the joined node holds no key: {view:?}");
    let (code, stdout, stderr) = haft(&["status", "--node", &cluster.addr(4)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!("ring epoch {joined}")),
        "status shows the epoch: {stdout}"
    );
    finish_and_read_back("join", &cluster, load, &[1, 2, 3, 4], &bulk, start);
}

#[test]
fn a_node_leaves_under_load_and_every_acknowledged_write_reads_back() {
    let start = Instant::now();
    let mut cluster = Cluster::start(&[1, 2, 3, 4], &[], 2);
    let epoch = cluster.await_ring(&[1, 2, 3, 4], 0);
    let bulk = fill(&cluster, 1, BULK_KEYS);
    let load = Load::start(&cluster, 3, &[1, 3, 4]);
    load.await_commits(30, "before the leave");

    let took = cluster.leave(2);
    eprintln!("leave: haft leave took {took:.1?}");
    cluster.await_ring(&[1, 3, 4], epoch);
    finish_and_read_back("leave", &cluster, load, &[1, 3, 4], &bulk, start);
}

#[test]
fn a_killed_node_with_its_disk_lost_is_removed_and_no_acknowledged_write_is_lost() {
    let start = Instant::now();
    let mut cluster = Cluster::start(&[1, 2, 3, 4], &[], 3);
    let epoch = cluster.await_ring(&[1, 2, 3, 4], 0);
    let bulk = fill(&cluster, 1, BULK_KEYS);
    // The load stays on the survivors: a removed coordinator's in-doubt
    // transactions block (see src/node/membership.rs, Limits).
    let load = Load::start(&cluster, 3, &[1, 2, 4]);
    load.await_commits(30, "before the kill");

    let change = Instant::now();
    cluster.kill(3);
    std::fs::remove_dir_all(cluster.data(3)).unwrap();
    let (code, stdout, stderr) = haft(&["remove", "--node", &cluster.addr(1), "3", "--wait", "40"]);
    assert_eq!(code, 0, "haft remove failed: {stdout}{stderr}");
    assert!(stdout.contains("node 3 removed"), "{stdout}");
    cluster.await_ring(&[1, 2, 4], epoch);
    eprintln!(
        "remove: killed, removed and rebuilt in {:.1?}",
        change.elapsed()
    );
    finish_and_read_back("remove", &cluster, load, &[1, 2, 4], &bulk, start);
}

#[test]
fn a_cluster_grows_to_four_and_shrinks_to_three_while_the_leaver_still_takes_requests() {
    let start = Instant::now();
    let mut cluster = Cluster::start(&[1, 2, 3], &[4], 2);
    let epoch = cluster.await_ring(&[1, 2, 3], 0);
    let bulk = fill(&cluster, 2, BULK_KEYS);
    let load = Load::start(&cluster, 3, &[1, 2, 3]);
    load.await_commits(30, "before the join");

    cluster.join(4, 2);
    let grown = cluster.await_ring(&[1, 2, 3, 4], epoch);
    load.await_commits(30, "after the join");
    // Node 1, a member from the configuration that the clients still send
    // transactions to, leaves; each client stops asking it once it is gone.
    let took = cluster.leave(1);
    let shrunk = cluster.await_ring(&[2, 3, 4], grown);
    eprintln!("grow-shrink: node 1 left in {took:.1?}");
    assert_eq!(shrunk, epoch + 2, "a join and a leave, two epochs");
    finish_and_read_back("grow-shrink", &cluster, load, &[2, 3, 4], &bulk, start);
}

#[test]
fn a_node_killed_for_longer_than_auto_remove_after_is_removed_its_keys_read_back_and_its_restart_fenced()
 {
    let start = Instant::now();
    // Dead after about 1.2 s of silence (tests/common/cluster_env.rs), then
    // removed 1.5 s later.
    let mut cluster = Cluster::start_with(&[1, 2, 3], &[], 2, "auto_remove_after_ms = 1500");
    let epoch = cluster.await_ring(&[1, 2, 3], 0);
    // Through node 2: none of node 1's own transactions may be left in doubt.
    let keys = fill(&cluster, 2, 60);

    // Node 1 dies; node 2, the lowest member its survivors hold alive,
    // removes it, and the keys it held move to their new holders.
    let change = Instant::now();
    cluster.kill(1);
    let removed = cluster.await_ring(&[2, 3], epoch);
    eprintln!(
        "auto-remove: node 1 killed, removed and rebuilt in {:.1?}",
        change.elapsed()
    );
    assert_eq!(removed, epoch + 1, "one removal, one epoch");
    let log = std::fs::read_to_string(cluster.dir.path().join("node2.log")).unwrap();
    assert!(
        log.contains("removing a member held dead"),
        "node 2 logged no automatic removal"
    );
    let (code, stdout, stderr) = haft(&["status", "--node", &cluster.addr(3)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!("ring epoch {removed}")),
        "status shows the new epoch: {stdout}"
    );

    for (key, value) in &keys {
        let key = String::from_utf8_lossy(key);
        for node in [2, 3] {
            let got = cluster.get(node, &key);
            assert_eq!(
                got.as_deref().map(str::as_bytes),
                Some(&value[..]),
                "{key} at node {node}"
            );
        }
    }
    // Node 1 restarts on its old data, believing itself a member: the first
    // heartbeat answered by a survivor fences it off, and it stops.
    cluster.spawn(1, &[]);
    let exit = cluster.await_exit(1, Duration::from_secs(20));
    assert!(!exit.success(), "the removed node exited with {exit}");
    let log = std::fs::read_to_string(cluster.dir.path().join("node1.log")).unwrap();
    assert!(
        log.contains("node 1 was removed from the cluster while it was down"),
        "node 1's log: {log}"
    );
    eprintln!("auto-remove: {:.1?} in all", start.elapsed());
}
