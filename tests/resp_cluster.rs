//! Redis clients against real `haft node` processes serving RESP: redis-cli
//! for every command, redis-py transfers while nodes are killed with SIGKILL
//! and restarted, a 16 MiB value whose replicas are on other nodes, and the
//! cluster key (bad tags counted and ignored, a replayed datagram harmless, a
//! node with the wrong key kept out).
//!
//! The clients come from `verification/install-test-deps`, as in tests/resp.rs
//! (`$HAFT_REDIS_CLI`, `$HAFT_TEST_PYTHON`; a missing one fails the test unless
//! `HAFT_ALLOW_MISSING_REDIS_CLIENTS=1`). Every child is killed when its
//! cluster guard drops, also when a test fails.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use haft::NodeId;
use haft::commit::Outcome;
use haft::node::{Layout, MemberStatus, NodeMsg, Reply, Request, StatusView};
use haft::runtime::client::{Client, ClientOptions};
use haft::runtime::codec::{self, ClusterKey};
use haft::runtime::node::{CLIENT_BIT, Wire};

#[path = "common/cluster_env.rs"]
mod cluster_env;
use cluster_env::{TIMERS, free_tcp_ports, free_udp_ports};

const KEY: &str = "the test cluster's secret key";

/// How each node of a test cluster is set up.
struct Setup {
    nodes: u16,
    /// `replicas` in the configuration (`None`: the default, 3).
    replicas: Option<usize>,
    /// The cluster key of each node (`None`: no key).
    key_of: fn(u16) -> Option<&'static str>,
    requirepass: Option<&'static str>,
}

/// `haft node` processes with RESP endpoints; kills them all when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    udp: BTreeMap<u16, SocketAddr>,
    resp: BTreeMap<u16, u16>,
    children: BTreeMap<u16, Child>,
    setup: Setup,
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
    fn start(setup: Setup) -> Cluster {
        let ids: Vec<u16> = (1..=setup.nodes).collect();
        let udp = ids
            .iter()
            .zip(free_udp_ports(ids.len()))
            .map(|(&id, port)| (id, SocketAddr::from(([127, 0, 0, 1], port))))
            .collect();
        let resp = ids.iter().copied().zip(free_tcp_ports(ids.len())).collect();
        let mut cluster = Cluster {
            dir: tempfile::tempdir().unwrap(),
            udp,
            resp,
            children: BTreeMap::new(),
            setup,
        };
        for &id in &ids {
            cluster.write_config(id);
        }
        for &id in &ids {
            cluster.spawn(id);
        }
        for &id in &ids {
            cluster.await_resp(id);
        }
        cluster
    }

    fn ids(&self) -> Vec<u16> {
        self.udp.keys().copied().collect()
    }

    fn config_path(&self, id: u16) -> PathBuf {
        self.dir.path().join(format!("node{id}.toml"))
    }

    fn write_config(&self, id: u16) {
        let mut text = format!(
            "id = {id}\nlisten = \"{}\"\ndata = \"{}\"\nresp = \"127.0.0.1:{}\"\n",
            self.udp[&id],
            self.dir.path().join(format!("data{id}")).display(),
            self.resp[&id],
        );
        if let Some(replicas) = self.setup.replicas {
            text += &format!("replicas = {replicas}\n");
        }
        if let Some(key) = (self.setup.key_of)(id) {
            let path = self.dir.path().join(format!("key{id}"));
            std::fs::write(&path, format!("{key}\n")).unwrap();
            text += &format!("cluster_key_file = \"{}\"\n", path.display());
        }
        if let Some(password) = self.setup.requirepass {
            text += &format!("requirepass = \"{password}\"\n");
        }
        // Tests cut nodes off from each other with `Client::faults`.
        text += "allow_fault_injection = true\n";
        text += "[peers]\n";
        for (peer, addr) in &self.udp {
            if *peer != id {
                text += &format!("{peer} = \"{addr}\"\n");
            }
        }
        text += TIMERS;
        std::fs::write(self.config_path(id), text).unwrap();
    }

    fn log_path(&self, id: u16) -> PathBuf {
        self.dir.path().join(format!("node{id}.log"))
    }

    fn spawn(&mut self, id: u16) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(id))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_haft"))
            .arg("node")
            .arg("--config")
            .arg(self.config_path(id))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start haft node");
        self.children.insert(id, child);
    }

    /// SIGKILL.
    fn kill(&mut self, id: u16) {
        if let Some(mut child) = self.children.remove(&id) {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Waits until node `id` answers on its RESP port.
    fn await_resp(&self, id: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let answered = TcpStream::connect(("127.0.0.1", self.resp[&id])).is_ok_and(|mut s| {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buffer = [0u8; 64];
                s.write_all(b"PING\r\n").is_ok() && s.read(&mut buffer).is_ok_and(|n| n > 0)
            });
            if answered {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {id} serves no RESP after 20 s:\n{}",
                std::fs::read_to_string(self.log_path(id)).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A UDP client of node `id` holding `key` (a cluster key, or none).
    fn client(&self, id: u16, key: Option<&str>, timeout: Duration) -> Client {
        let options = ClientOptions {
            timeout,
            retry_after: Duration::from_millis(250).min(timeout),
        };
        let client = Client::new(&self.udp[&id].to_string(), options).unwrap();
        match key {
            Some(key) => client.with_key(ClusterKey::new(key.as_bytes()).unwrap()),
            None => client,
        }
    }

    fn status(&self, id: u16) -> StatusView {
        let key = (self.setup.key_of)(id);
        match self
            .client(id, key, Duration::from_secs(3))
            .request(Request::Status)
        {
            Ok(Reply::Status(view)) => view,
            other => panic!("node {id} answered a status request with {other:?}"),
        }
    }

    fn placement(&self) -> Layout {
        let members: Vec<NodeId> = self.ids().into_iter().map(NodeId).collect();
        let replicas = self.setup.replicas.unwrap_or(3);
        Layout::new(1, &members, 64, replicas).unwrap()
    }
}

fn everyone(_: u16) -> Option<&'static str> {
    Some(KEY)
}

// ---------------------------------------------------------------- clients

#[path = "common/redis_clients.rs"]
mod redis_clients;
use redis_clients::{python, redis_cli, run_redis_cli as cli};

/// One check of tests/resp_cluster/cluster_py.py; its JSON line.
fn py(python: &Path, args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/resp_cluster/cluster_py.py");
    let output = Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .expect("python starts");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "redis-py check {args:?} failed:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

// ---------------------------------------------------------------- redis-cli

/// Every command of issue 13, each through a different node in turn: the
/// arguments, then redis-cli's exact output.
const EVERY_COMMAND: &[(&[&str], &str)] = &[
    (&["PING"], "PONG"),
    (&["ECHO", "hello cluster"], "\"hello cluster\""),
    (&["SELECT", "0"], "OK"),
    (&["SET", "k", "v1"], "OK"),
    (&["GET", "k"], "\"v1\""),
    (&["SET", "k", "v2", "XX", "GET"], "\"v1\""),
    (&["SET", "k", "v3", "NX"], "(nil)"),
    (&["SET", "fresh", "1", "NX"], "OK"),
    (
        &["SET", "k", "v", "EX", "10"],
        "(error) ERR haft does not support key expiry: EX is refused; set the key without an expiry option",
    ),
    (
        &["SET", "k", "v", "PX", "100"],
        "(error) ERR haft does not support key expiry: PX is refused; set the key without an expiry option",
    ),
    (&["GETSET", "k", "v4"], "\"v2\""),
    (&["GETDEL", "k"], "\"v4\""),
    (&["GET", "k"], "(nil)"),
    (&["MSET", "a", "1", "b", "2", "c", "3"], "OK"),
    (
        &["MGET", "a", "b", "c", "nope"],
        "1) \"1\"\n2) \"2\"\n3) \"3\"\n4) (nil)",
    ),
    (&["EXISTS", "a", "b", "nope"], "(integer) 2"),
    (&["DEL", "a", "b", "nope"], "(integer) 2"),
    (&["INCR", "n"], "(integer) 1"),
    (&["INCRBY", "n", "10"], "(integer) 11"),
    (&["DECR", "n"], "(integer) 10"),
    (&["DECRBY", "n", "3"], "(integer) 7"),
    (&["APPEND", "s", "abc"], "(integer) 3"),
    (&["APPEND", "s", "def"], "(integer) 6"),
    (&["STRLEN", "s"], "(integer) 6"),
    (&["DBSIZE"], "(integer) 4"),
    (&["CLIENT", "GETNAME"], "(nil)"),
    (&["EXEC"], "(error) ERR EXEC without MULTI"),
    (&["DISCARD"], "(error) ERR DISCARD without MULTI"),
    (&["QUIT"], "OK"),
    (
        &["NOSUCH", "x"],
        "(error) ERR unknown command 'NOSUCH', with args beginning with: 'x' ",
    ),
];

#[test]
fn redis_cli_runs_every_command_against_a_three_node_cluster() {
    let Some(tool) = redis_cli() else { return };
    let cluster = Cluster::start(Setup {
        nodes: 3,
        replicas: Some(3),
        key_of: everyone,
        requirepass: Some("s3cret"),
    });
    let ports: Vec<u16> = cluster.resp.values().copied().collect();
    let pw = Some("s3cret");
    // AUTH: refused without the password, on every node.
    for &port in &ports {
        assert_eq!(
            cli(&tool, port, None, &["GET", "k"], ""),
            "(error) NOAUTH Authentication required.\n"
        );
    }
    for (index, (args, expected)) in EVERY_COMMAND.iter().enumerate() {
        let port = ports[index % ports.len()];
        let output = cli(&tool, port, pw, args, "");
        assert_eq!(
            output.trim_end_matches('\n'),
            *expected,
            "redis-cli {args:?} on port {port}"
        );
    }
    // One session per node: AUTH, HELLO, CLIENT, WATCH/MULTI/EXEC/DISCARD,
    // an unknown command that leaves the connection usable.
    let script = "\
AUTH s3cret
CLIENT SETNAME tester
CLIENT GETNAME
NOSUCHCOMMAND x
PING
WATCH t
MULTI
SET t 1
INCR t
EXEC
WATCH t
UNWATCH
MULTI
INCR t
DISCARD
GET t
";
    let expected = "\
OK
OK
\"tester\"
(error) ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'x' 
PONG
OK
OK
QUEUED
QUEUED
1) OK
2) (integer) 2
OK
OK
OK
QUEUED
OK
\"2\"
";
    for &port in &ports {
        assert_eq!(
            cli(&tool, port, None, &[], script),
            expected,
            "session on port {port}"
        );
    }
    // A watched key written through another node: EXEC answers nil.
    let watcher = "AUTH s3cret\nWATCH t\nMULTI\nINCR t\nEXEC\nGET t\n";
    let mut child = Command::new(&tool)
        .args(["-p", &ports[0].to_string(), "--no-raw"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // WATCH, MULTI and INCR first; then another node writes t; then EXEC.
    stdin
        .write_all(&watcher.as_bytes()[..watcher.find("EXEC").unwrap()])
        .unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cli(&tool, ports[1], pw, &["SET", "t", "100"], ""), "OK\n");
    stdin.write_all(b"EXEC\nGET t\n").unwrap();
    drop(stdin);
    let output = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
    assert_eq!(
        output, "OK\nOK\nOK\nQUEUED\n(nil)\n\"100\"\n",
        "EXEC after a foreign write"
    );

    let info = cli(&tool, ports[2], pw, &["INFO"], "");
    for line in [
        "# Server",
        "# Clients",
        "connected_clients:",
        "# Keyspace",
        "db0:keys=",
        "# Haft",
        "epoch:1",
        "members:3",
        "commits:",
        "aborts:",
    ] {
        assert!(info.contains(line), "INFO lacks {line}:\n{info}");
    }
    let hello = cli(&tool, ports[0], pw, &["-3", "HELLO", "3"], "");
    assert!(
        hello.contains("\"proto\"") && hello.contains("(integer) 3"),
        "{hello}"
    );
    let command = cli(&tool, ports[1], pw, &["COMMAND", "COUNT"], "");
    assert!(command.starts_with("(integer) "), "{command}");
    let id = cli(&tool, ports[2], pw, &["CLIENT", "ID"], "");
    assert!(id.starts_with("(integer) "), "{id}");
}

/// Concurrent INCRs through every node lose nothing (redis-py, 6 threads on
/// one counter: it ends at the sum of the acknowledged ones), and a pipeline — hundreds of commands written at once, an
/// unknown one among them — is answered in order on the same connection.
#[test]
fn incr_loses_nothing_and_a_pipeline_is_answered_in_order() {
    let Some(python) = python() else { return };
    let cluster = Cluster::start(Setup {
        nodes: 3,
        replicas: None,
        key_of: everyone,
        requirepass: None,
    });
    let ports: Vec<String> = cluster.resp.values().map(u16::to_string).collect();
    let summary = py(&python, &["incr", &ports.join(","), "6", "20"]);
    eprintln!("INCR from 6 threads: {summary}");

    const PIPELINED: usize = 300;
    let mut request = Vec::new();
    for _ in 0..PIPELINED {
        request.extend_from_slice(b"*2\r\n$4\r\nINCR\r\n$1\r\np\r\n");
    }
    request.extend_from_slice(b"*1\r\n$6\r\nNOSUCH\r\n");
    request.extend_from_slice(b"MSET a 1 b 2\r\nMGET p a b\r\n");
    let mut expected = String::new();
    for n in 1..=PIPELINED {
        expected += &format!(":{n}\r\n");
    }
    expected += "-ERR unknown command 'NOSUCH', with args beginning with: \r\n";
    expected += &format!(
        "+OK\r\n*3\r\n${}\r\n{PIPELINED}\r\n$1\r\n1\r\n$1\r\n2\r\n",
        PIPELINED.to_string().len()
    );
    let mut stream = TcpStream::connect(("127.0.0.1", cluster.resp[&2])).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(&request).unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while answer.len() < expected.len() {
        let n = stream.read(&mut buffer).expect("the pipeline's replies");
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buffer[..n]);
    }
    assert_eq!(String::from_utf8_lossy(&answer), expected);
}

// ---------------------------------------------------------------- redis-py

/// How long the transfer workers run while nodes are killed and restarted.
const CHAOS: Duration = Duration::from_secs(30);

/// redis-py's WATCH/MULTI/EXEC transfer loop from 8 threads, each through a
/// random node, while the nodes are killed with SIGKILL and restarted in
/// turn. Each transfer writes a marker key too, so that every answer can be
/// checked afterwards (see `transfers` in cluster_py.py): acknowledged
/// transfers happened, refused ones did not, indeterminate ones are resolved
/// by reading their markers, and every balance is its opening plus exactly
/// the transfers that happened.
///
/// `replicas = 2`, so that some transfers (those whose accounts' replicas
/// are all up) commit while a node is down, and others find a replica gone.

#[test]
fn redis_py_transfers_keep_the_exact_total_while_nodes_are_killed() {
    let Some(python) = python() else { return };
    let mut cluster = Cluster::start(Setup {
        nodes: 3,
        replicas: Some(2),
        key_of: everyone,
        requirepass: None,
    });
    let ports: Vec<String> = cluster.resp.values().map(u16::to_string).collect();
    let ports = ports.join(",");
    let accounts = "6";
    let seconds = CHAOS.as_secs().to_string();
    let workers = {
        let python = python.clone();
        let ports = ports.clone();
        std::thread::spawn(move || py(&python, &["transfers", &ports, &seconds, "8", accounts]))
    };
    // Kill a node every couple of seconds and start it again a second later.
    let start = Instant::now();
    let mut victim = 0;
    let mut kills = 0;
    std::thread::sleep(Duration::from_secs(2));
    while start.elapsed() + Duration::from_secs(4) < CHAOS {
        let id = cluster.ids()[victim % 3];
        victim += 1;
        cluster.kill(id);
        kills += 1;
        std::thread::sleep(Duration::from_millis(1000));
        cluster.spawn(id);
        cluster.await_resp(id);
        std::thread::sleep(Duration::from_millis(1500));
    }
    let summary = workers.join().expect("the workers' thread");
    assert!(kills >= 3, "only {kills} kills");
    assert!(summary.contains("\"total\": 6000"), "{summary}");
    // And once more through a random node, all of them up.
    let total = py(&python, &["total", &ports, accounts]);
    assert!(total.contains("\"total\": 6000"), "{total}");
    eprintln!("transfers under {kills} kills: {summary}");
}

/// 16 MiB through RESP, with the default `replicas` (3) on 4 nodes: a key
/// whose three replicas are all other nodes than the one the client talks to.
/// The Prepare leaves node 1 in fragments to each replica, and node 1's read
/// comes back from a replica in fragments; each replica then serves the value
/// from its own store.
#[test]
fn a_16_mib_value_round_trips_with_its_replicas_on_other_nodes() {
    let Some(python) = python() else { return };
    let cluster = Cluster::start(Setup {
        nodes: 4,
        replicas: None,
        key_of: everyone,
        requirepass: None,
    });
    let placement = cluster.placement();
    let key = (0..)
        .map(|i| format!("large:{i}"))
        .find(|key| !placement.holders(key.as_bytes()).contains(&NodeId(1)))
        .unwrap();
    let replicas: Vec<u16> = placement
        .holders(key.as_bytes())
        .iter()
        .map(|n| n.0)
        .collect();
    assert_eq!(replicas.len(), 3);
    let entry = cluster.resp[&1].to_string();
    let summary = py(&python, &["large", &entry, &entry, &key, "16"]);
    assert!(summary.contains("\"bytes\": 16777216"), "{summary}");
    for &id in &replicas {
        let counters = cluster.status(id).counters;
        assert!(
            counters["fragments_in"] >= 256,
            "node {id} took the value in fragments: {counters:?}"
        );
        assert!(
            counters["drainer_turns"] >= 1,
            "node {id}'s loop handed the socket to its drainer for the fragments: {counters:?}"
        );
        let port = cluster.resp[&id].to_string();
        let summary = py(&python, &["large-read", &port, &key, "16"]);
        assert!(
            summary.contains("\"bytes\": 16777216"),
            "node {id}: {summary}"
        );
    }
    assert_eq!(
        cluster.status(1).keys,
        0,
        "node 1 is no replica of {key}, and holds nothing"
    );
}

/// The RESP endpoint calls its node in process and never retries, so a
/// `Read` the network loses on its way to the key's replica must be asked
/// again by the node itself (`NodeTimer::Read`), not left to the endpoint's
/// 10 s timeout. Node 1 is cut off from node 2, the key's only replica, while
/// its first `Read`s go out.
#[test]
fn a_get_whose_read_is_lost_is_asked_again_by_the_node() {
    let cluster = Cluster::start(Setup {
        nodes: 2,
        replicas: Some(1),
        key_of: |_| None,
        requirepass: None,
    });
    let placement = cluster.placement();
    let key = (0..)
        .map(|i| format!("far-{i}"))
        .find(|k| placement.holders(k.as_bytes())[0] == NodeId(2))
        .unwrap();
    let mut at_2 = cluster.client(2, None, Duration::from_secs(5));
    assert!(committed(&at_2.request(txn(&[(&key, "there")])).unwrap()));
    let cut = |isolated: &[u16]| {
        let mut client = cluster.client(1, None, Duration::from_secs(2));
        let set = client.faults(isolated, 0).unwrap().unwrap();
        assert_eq!(set, isolated);
    };
    cut(&[2]);
    let mut resp = TcpStream::connect(("127.0.0.1", cluster.resp[&1])).unwrap();
    resp.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    let get = format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len());
    resp.write_all(get.as_bytes()).unwrap();
    let asked = Instant::now();
    // Longer than the node's first resends (100–200 ms apart), shorter than
    // the detector's failure timeout (600 ms): node 2 is never suspected.
    std::thread::sleep(Duration::from_millis(350));
    cut(&[]);
    let mut answer = Vec::new();
    let mut buffer = [0u8; 64];
    while !answer.ends_with(b"there\r\n") {
        let n = resp.read(&mut buffer).expect("the GET is answered");
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buffer[..n]);
    }
    assert_eq!(answer, b"$5\r\nthere\r\n");
    let waited = asked.elapsed();
    assert!(waited < Duration::from_secs(3), "answered after {waited:?}");
    let counters = cluster.status(1).counters;
    assert!(
        counters["drop_partitioned"] >= 1,
        "the first answer from node 2 was dropped: {counters:?}"
    );
}

// ---------------------------------------------------------------- the cluster key

fn txn(writes: &[(&str, &str)]) -> Request {
    Request::Txn {
        reads: BTreeMap::new(),
        writes: writes
            .iter()
            .map(|(k, v)| {
                (
                    Bytes::copy_from_slice(k.as_bytes()),
                    Some(Bytes::copy_from_slice(v.as_bytes())),
                )
            })
            .collect(),
    }
}

fn read(client: &mut Client, key: &str) -> Option<Bytes> {
    match client.request(Request::Read {
        keys: vec![Bytes::copy_from_slice(key.as_bytes())],
    }) {
        Ok(Reply::Values(values)) => values[0].1.as_ref().map(|v| v.value.clone()),
        other => panic!("a read answered {other:?}"),
    }
}

/// The datagrams of one request from client `client`, tagged under `key`.
fn request_datagrams(
    client: u64,
    id: u64,
    request: Request,
    key: Option<&ClusterKey>,
) -> Vec<Vec<u8>> {
    let wire = Wire::Msg(NodeMsg::Request {
        client,
        id,
        home: None,
        request,
    });
    codec::encode_message(client, id, &wire, key).unwrap()
}

#[test]
fn bad_tags_are_counted_and_ignored_and_a_replay_does_no_harm() {
    let cluster = Cluster::start(Setup {
        nodes: 1,
        replicas: Some(1),
        key_of: everyone,
        requirepass: None,
    });
    let node = cluster.udp[&1];
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let key = ClusterKey::new(KEY.as_bytes()).unwrap();
    let wrong = ClusterKey::new(b"not the cluster's key").unwrap();
    let client = CLIENT_BIT | 77;
    // A write without a tag, one under the wrong key, and a vote claiming to
    // come from a node, tagged under the wrong key.
    let untagged = request_datagrams(client, 1, txn(&[("forged", "1")]), None);
    let mistagged = request_datagrams(client, 2, txn(&[("forged", "2")]), Some(&wrong));
    let vote = Wire::Msg(NodeMsg::Commit(haft::commit::Msg::Query {
        txn: haft::commit::TxnId(1),
    }));
    let from_node = codec::encode_message(1, 9, &vote, Some(&wrong)).unwrap();
    let before = cluster.status(1).counters["drop_bad_tag"];
    for datagram in untagged.iter().chain(&mistagged).chain(&from_node) {
        socket.send_to(datagram, node).unwrap();
    }
    let mut good = cluster.client(1, Some(KEY), Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(5);
    while cluster.status(1).counters["drop_bad_tag"] < before + 3 {
        assert!(Instant::now() < deadline, "bad tags not counted");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(read(&mut good, "forged"), None, "no forged write landed");
    let commits = cluster.status(1).counters["commits"];
    assert_eq!(commits, 0, "no transaction ran");

    // A replay: a correctly tagged request is recorded and sent again after
    // the client has moved on. The node recognises the old request id.
    let first = request_datagrams(client, 1, txn(&[("replayed", "old")]), Some(&key));
    let answer = exchange(&socket, node, &first, &key);
    assert!(committed(&answer), "{answer:?}");
    // The next write may find the key still locked by the first until its
    // outcome is applied: a new request (id) each time, until it commits.
    let mut id = 2;
    loop {
        let next = request_datagrams(client, id, txn(&[("replayed", "new")]), Some(&key));
        let answer = exchange(&socket, node, &next, &key);
        if committed(&answer) {
            break;
        }
        assert!(id < 50, "the second write never commits: {answer:?}");
        id += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    let commits = cluster.status(1).counters["commits"];
    for _ in 0..3 {
        for datagram in &first {
            socket.send_to(datagram, node).unwrap();
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(read(&mut good, "replayed").as_deref(), Some(&b"new"[..]));
    assert_eq!(
        cluster.status(1).counters["commits"],
        commits,
        "the replay committed nothing"
    );
}

fn committed(reply: &Reply) -> bool {
    matches!(
        reply,
        Reply::Txn {
            outcome: Outcome::Commit,
            ..
        }
    )
}

/// Sends `datagrams` and waits for the tagged reply.
fn exchange(
    socket: &UdpSocket,
    node: SocketAddr,
    datagrams: &[Vec<u8>],
    key: &ClusterKey,
) -> Reply {
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for datagram in datagrams {
        socket.send_to(datagram, node).unwrap();
    }
    let mut buffer = vec![0; codec::RECV_BUFFER];
    let (len, _) = socket.recv_from(&mut buffer).expect("a reply");
    let fragment = codec::open(&buffer[..len], Some(key)).expect("a tagged reply");
    match codec::decode_payload::<Wire>(fragment.payload).expect("a reply decodes") {
        Wire::Msg(NodeMsg::Reply { reply, .. }) => reply,
        other => panic!("not a reply: {other:?}"),
    }
}

fn wrong_key_for_3(id: u16) -> Option<&'static str> {
    if id == 3 {
        Some("a key that is not the cluster's")
    } else {
        Some(KEY)
    }
}

#[test]
fn a_node_with_the_wrong_key_cannot_take_part() {
    let cluster = Cluster::start(Setup {
        nodes: 3,
        replicas: Some(3),
        key_of: wrong_key_for_3,
        requirepass: None,
    });
    std::thread::sleep(Duration::from_millis(1500));
    // Nodes 1 and 2 never hear node 3, and node 3 never hears them.
    let status = cluster.status(1);
    assert!(
        !matches!(status.members[&3], MemberStatus::Alive),
        "node 1 believes node 3 alive: {:?}",
        status.members
    );
    assert!(status.counters["drop_bad_tag"] > 0, "{:?}", status.counters);
    let outsider = cluster.status(3);
    let heard: BTreeSet<u16> = outsider
        .members
        .iter()
        .filter(|(_, s)| matches!(s, MemberStatus::Alive))
        .map(|(id, _)| *id)
        .collect();
    assert!(heard.is_empty(), "node 3 hears {heard:?}");
    // Every key has a replica on node 3: no write can commit, through either side.
    for (id, key) in [(1, KEY), (3, "a key that is not the cluster's")] {
        let mut client = cluster.client(id, Some(key), Duration::from_secs(5));
        let answer = client.request(txn(&[("k", "v")])).unwrap();
        assert!(
            matches!(
                answer,
                Reply::Txn {
                    outcome: Outcome::Abort,
                    ..
                }
            ),
            "node {id} answered {answer:?}"
        );
    }
    assert_eq!(
        read(
            &mut cluster.client(2, Some(KEY), Duration::from_secs(5)),
            "k"
        ),
        None
    );
}
