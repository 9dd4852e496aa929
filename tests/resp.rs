//! The RESP front end with real Redis clients: redis-cli and redis-py against
//! a server on the memory backend, on an ephemeral port.
//!
//! The clients come from `verification/install-test-deps` (redis-cli from
//! Debian's redis-tools, redis-py in target/test-venv); `$HAFT_REDIS_CLI` and
//! `$HAFT_TEST_PYTHON` point elsewhere. A missing client fails the test unless
//! `HAFT_ALLOW_MISSING_REDIS_CLIENTS=1`, which turns it into a loud skip.
//! The fault-injection tests speak RESP over a plain socket and need neither.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use haft::resp::{Fault, MemoryBackend, RespConfig, RespServer};
use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::types::OwnedFrame;

// ---------------------------------------------------------------- the server

struct Server {
    backend: Arc<MemoryBackend>,
    port: u16,
    // Dropped last: shuts the server down.
    server: Option<RespServer>,
}

impl Server {
    fn start() -> Self {
        Self::with(|_| {})
    }

    fn with(adjust: impl FnOnce(&mut RespConfig)) -> Self {
        let mut config = RespConfig::new("127.0.0.1:0".parse().expect("an address"));
        config.threads = 2;
        adjust(&mut config);
        let backend = Arc::new(MemoryBackend::new());
        let server = RespServer::start(config, backend.clone()).expect("the server starts");
        Server {
            backend,
            port: server.local_addr().port(),
            server: Some(server),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().expect("a clean shutdown");
        }
    }
}

// ---------------------------------------------------------------- the clients

#[path = "common/redis_clients.rs"]
mod redis_clients;
use redis_clients::{python, redis_cli, run_redis_cli};

/// Runs redis-cli with `args` (and `input` on stdin); returns its output.
fn run_cli(cli: &Path, port: u16, args: &[&str], input: &str) -> String {
    run_redis_cli(cli, port, None, args, input)
}

/// Runs one check of tests/resp/redis_py.py; returns its JSON line.
fn run_py(python: &Path, port: u16, check: &str, args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/resp/redis_py.py");
    let output = Command::new(python)
        .arg(script)
        .arg(port.to_string())
        .arg(check)
        .args(args)
        .output()
        .expect("python starts");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "redis-py check {check} failed:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A RESP client on a plain socket, one request and reply at a time.
struct Raw {
    stream: TcpStream,
    input: BytesMut,
}

impl Raw {
    fn connect(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Raw {
            stream,
            input: BytesMut::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    fn command(&mut self, words: &[&str]) -> OwnedFrame {
        let mut request = format!("*{}\r\n", words.len());
        for word in words {
            request.push_str(&format!("${}\r\n{word}\r\n", word.len()));
        }
        self.send(request.as_bytes());
        self.reply().expect("a reply")
    }

    /// The next reply, or `None` once the server closed the connection.
    fn reply(&mut self) -> Option<OwnedFrame> {
        loop {
            if let Some((frame, length)) = decode(&self.input).expect("a valid reply") {
                let _ = self.input.split_to(length);
                return Some(frame);
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk).expect("read") {
                0 => return None,
                n => self.input.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Everything the server sends until it closes the connection.
    fn rest(mut self) -> Vec<u8> {
        let _ = self.stream.shutdown(Shutdown::Write);
        let mut out = self.input.to_vec();
        self.stream.read_to_end(&mut out).expect("read to the end");
        out
    }
}

fn bulk(text: &str) -> OwnedFrame {
    OwnedFrame::BulkString(text.as_bytes().to_vec())
}

fn status(text: &str) -> OwnedFrame {
    OwnedFrame::SimpleString(text.as_bytes().to_vec())
}

fn error_text(frame: &OwnedFrame) -> String {
    match frame {
        OwnedFrame::Error(text) => text.clone(),
        other => panic!("expected an error reply, got {other:?}"),
    }
}

// ---------------------------------------------------------------- redis-cli

/// One redis-cli invocation per command: arguments, then the exact output.
const ONE_SHOT: &[(&[&str], &str)] = &[
    (&["PING"], "PONG"),
    (&["PING", "hi"], "\"hi\""),
    (&["ECHO", "hello world"], "\"hello world\""),
    (&["SELECT", "0"], "OK"),
    (&["SELECT", "1"], "(error) ERR DB index is out of range"),
    (&["SET", "k", "v1"], "OK"),
    (&["GET", "k"], "\"v1\""),
    (&["GET", "missing"], "(nil)"),
    (&["SET", "k", "v2", "XX", "GET"], "\"v1\""),
    (&["SET", "k", "v3", "NX"], "(nil)"),
    (&["SET", "fresh", "1", "NX"], "OK"),
    (&["SET", "k", "v", "BOGUS"], "(error) ERR syntax error"),
    (&["SET", "k", "v", "NX", "XX"], "(error) ERR syntax error"),
    (&["GETSET", "k", "v4"], "\"v2\""),
    (&["GETDEL", "k"], "\"v4\""),
    (&["GETDEL", "k"], "(nil)"),
    (&["MSET", "a", "1", "b", "2"], "OK"),
    (
        &["MSET", "a", "1", "b"],
        "(error) ERR wrong number of arguments for 'mset' command",
    ),
    (&["MGET", "a", "b", "nope"], "1) \"1\"\n2) \"2\"\n3) (nil)"),
    (&["EXISTS", "a", "a", "nope"], "(integer) 2"),
    (&["DEL", "a", "b", "nope"], "(integer) 2"),
    (&["EXISTS", "a"], "(integer) 0"),
    (&["INCR", "n"], "(integer) 1"),
    (&["INCRBY", "n", "10"], "(integer) 11"),
    (&["DECR", "n"], "(integer) 10"),
    (&["DECRBY", "n", "3"], "(integer) 7"),
    (
        &["INCRBY", "n", "x"],
        "(error) ERR value is not an integer or out of range",
    ),
    (&["SET", "s", "abc"], "OK"),
    (
        &["INCR", "s"],
        "(error) ERR value is not an integer or out of range",
    ),
    (&["APPEND", "s", "def"], "(integer) 6"),
    (&["APPEND", "new", "xy"], "(integer) 2"),
    (&["STRLEN", "s"], "(integer) 6"),
    (&["STRLEN", "nope"], "(integer) 0"),
    (&["DBSIZE"], "(integer) 4"),
    (&["COMMAND", "COUNT"], "(integer) 29"),
    (&["CLIENT", "GETNAME"], "(nil)"),
    (
        &["CLIENT", "NOPE"],
        "(error) ERR unknown subcommand 'NOPE'. Try CLIENT HELP.",
    ),
    (&["EXEC"], "(error) ERR EXEC without MULTI"),
    (&["DISCARD"], "(error) ERR DISCARD without MULTI"),
    (&["WATCH", "a"], "OK"),
    (&["UNWATCH"], "OK"),
    (&["MULTI"], "OK"),
    (&["QUIT"], "OK"),
    (
        &["GET"],
        "(error) ERR wrong number of arguments for 'get' command",
    ),
    (
        &["FOO", "bar", "baz"],
        "(error) ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' ",
    ),
    (
        &["AUTH", "pw"],
        "(error) ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
    ),
];

#[test]
fn redis_cli_gets_redis_answers_to_every_command() {
    let Some(cli) = redis_cli() else { return };
    let server = Server::start();
    for (args, expected) in ONE_SHOT {
        let output = run_cli(&cli, server.port, args, "");
        assert_eq!(
            output.trim_end_matches('\n'),
            *expected,
            "redis-cli {args:?}"
        );
    }
    for unit in ["EX", "PX", "EXAT", "PXAT"] {
        let output = run_cli(&cli, server.port, &["SET", "k", "v", unit, "100"], "");
        assert!(
            output.contains("does not support key expiry"),
            "{unit}: {output}"
        );
    }
    let output = run_cli(&cli, server.port, &["SET", "k", "v", "KEEPTTL"], "");
    assert!(output.contains("does not support key expiry"), "{output}");

    let info = run_cli(&cli, server.port, &["INFO"], "");
    for line in [
        "# Server",
        "redis_version:",
        "# Clients",
        "connected_clients:",
        "# Keyspace",
        "db0:keys=4",
        "# Haft",
        "epoch:",
        "members:",
        "commits:",
        "aborts:",
    ] {
        assert!(info.contains(line), "INFO lacks {line}:\n{info}");
    }
    let haft = run_cli(&cli, server.port, &["INFO", "haft"], "");
    assert!(
        haft.contains("# Haft") && !haft.contains("# Server"),
        "{haft}"
    );
    let command = run_cli(&cli, server.port, &["COMMAND", "INFO", "get", "nope"], "");
    assert!(
        command.starts_with("1)  1) \"get\"\n    2) (integer) 2\n"),
        "{command}"
    );
    assert!(command.trim_end().ends_with("2) (nil)"), "{command}");
    let docs = run_cli(&cli, server.port, &["COMMAND", "DOCS", "set"], "");
    assert!(docs.contains("summary"), "{docs}");
    let all = run_cli(&cli, server.port, &["COMMAND"], "");
    assert!(
        all.contains("\"mset\"") && all.contains("\"watch\""),
        "{all}"
    );
    let hello = run_cli(&cli, server.port, &["-3", "HELLO", "3"], "");
    assert!(
        hello.contains("\"proto\"") && hello.contains("(integer) 3"),
        "{hello}"
    );
}

#[test]
fn redis_cli_sessions_keep_state_across_commands() {
    let Some(cli) = redis_cli() else { return };
    let server = Server::start();
    let script = "\
CLIENT SETNAME tester
CLIENT GETNAME
CLIENT SETNAME \"has space\"
NOSUCHCOMMAND x
PING
MULTI
SET t 1
INCR t
INCR
GET t
EXEC
MULTI
SET t 5
INCR t
SET t 1 EX 5
GET t
EXEC
WATCH t
SET t changed
MULTI
GET t
EXEC
WATCH t
MULTI
INCR t
DISCARD
MULTI
MULTI
WATCH t
PING
EXEC
";
    let expected = "\
OK
\"tester\"
(error) ERR Client names cannot contain spaces, newlines or special characters.
(error) ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'x' 
PONG
OK
QUEUED
QUEUED
(error) ERR wrong number of arguments for 'incr' command
QUEUED
(error) EXECABORT Transaction discarded because of previous errors.
OK
QUEUED
QUEUED
QUEUED
QUEUED
1) OK
2) (integer) 6
3) (error) ERR haft does not support key expiry: EX is refused; set the key without an expiry option
4) \"6\"
OK
OK
OK
QUEUED
(nil)
OK
OK
QUEUED
OK
OK
(error) ERR MULTI calls can not be nested
(error) ERR WATCH inside MULTI is not allowed
QUEUED
1) PONG
";
    assert_eq!(run_cli(&cli, server.port, &[], script), expected);
    let id = run_cli(&cli, server.port, &["CLIENT", "ID"], "");
    assert!(id.starts_with("(integer) "), "{id}");
}

#[test]
fn redis_cli_pipe_mode_sends_thousands_of_commands_in_one_stream() {
    let Some(cli) = redis_cli() else { return };
    let server = Server::start();
    let mut input = String::new();
    for i in 0..10_000 {
        let (key, value) = (format!("key:{i}"), i.to_string());
        input.push_str(&format!(
            "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n",
            key.len(),
            value.len()
        ));
    }
    input.push_str("*2\r\n$4\r\nINCR\r\n$7\r\nkey:100\r\n");
    let output = run_cli(&cli, server.port, &["--pipe"], &input);
    assert!(output.contains("errors: 0, replies: 10001"), "{output}");
    assert_eq!(
        run_cli(&cli, server.port, &["GET", "key:100"], ""),
        "\"101\"\n"
    );
    assert_eq!(
        run_cli(&cli, server.port, &["DBSIZE"], ""),
        "(integer) 10000\n"
    );
}

#[test]
fn redis_cli_authenticates_with_requirepass() {
    let Some(cli) = redis_cli() else { return };
    let server = Server::with(|c| c.requirepass = Some("s3cret".into()));
    let port = server.port;
    let before = run_cli(&cli, port, &["GET", "k"], "");
    assert_eq!(before, "(error) NOAUTH Authentication required.\n");
    let wrong = run_cli(&cli, port, &["-a", "nope", "--no-auth-warning", "PING"], "");
    assert!(wrong.contains("WRONGPASS"), "{wrong}");
    let right = run_cli(
        &cli,
        port,
        &["-a", "s3cret", "--no-auth-warning", "SET", "k", "v"],
        "",
    );
    assert_eq!(right, "OK\n");
    let hello = run_cli(&cli, port, &["HELLO", "3"], "");
    assert!(
        hello.starts_with("(error) NOAUTH HELLO must be called"),
        "{hello}"
    );
    let session = run_cli(
        &cli,
        port,
        &[],
        "AUTH s3cret\nGET k\nAUTH default s3cret\nAUTH bob s3cret\n",
    );
    assert_eq!(
        session,
        "OK\n\"v\"\nOK\n(error) WRONGPASS invalid username-password pair or user is disabled.\n"
    );
}

// ---------------------------------------------------------------- redis-py

#[test]
fn redis_py_transfers_conserve_the_total_under_conflicts() {
    let Some(python) = python() else { return };
    let server = Server::start();
    // Spurious refusals on top of the real WATCH conflicts: EXEC retries them
    // transparently, so redis-py sees WatchError only for changed watched keys.
    server.backend.conflict_every(5);
    for protocol in ["2", "3"] {
        let summary = run_py(
            &python,
            server.port,
            "transfer",
            &["8", "60", "5", protocol],
        );
        assert!(summary.contains("\"total\": 5000"), "{summary}");
    }
    let stats = server.backend.stats();
    assert!(stats.conflicts > 0, "no conflict happened: {stats:?}");
}

#[test]
fn redis_py_increments_from_many_clients_lose_nothing() {
    let Some(python) = python() else { return };
    let server = Server::start();
    server.backend.conflict_every(3);
    let summary = run_py(&python, server.port, "incr", &["8", "250"]);
    assert!(summary.contains("\"counter\": 2000"), "{summary}");
    assert_eq!(
        server.backend.get(b"counter").value.as_deref(),
        Some(&b"2000"[..])
    );
}

#[test]
fn redis_py_round_trips_a_16_mib_value() {
    let Some(python) = python() else { return };
    let server = Server::start();
    for protocol in ["2", "3"] {
        let summary = run_py(&python, server.port, "large", &["16", protocol]);
        assert!(summary.contains("\"bytes\": 16777216"), "{summary}");
    }
}

#[test]
fn redis_py_speaks_resp3_after_hello_3() {
    let Some(python) = python() else { return };
    let server = Server::start();
    let summary = run_py(&python, server.port, "resp3", &[]);
    assert!(summary.contains("\"proto\": 3"), "{summary}");
}

#[test]
fn redis_py_authenticates_with_requirepass() {
    let Some(python) = python() else { return };
    let server = Server::with(|c| c.requirepass = Some("s3cret".into()));
    run_py(&python, server.port, "auth", &["s3cret"]);
}

// ---------------------------------------------------------------- raw sockets

#[test]
fn pipelined_requests_are_answered_in_order_and_errors_keep_the_connection() {
    let server = Server::start();
    let raw = Raw::connect(server.port);
    let mut raw = raw;
    raw.send(
        b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\n1\r\n*1\r\n$3\r\nFOO\r\n*2\r\n$4\r\nINCR\r\n$1\r\nx\r\n\
          GET x\r\n*1\r\n$3\r\nGET\r\n*2\r\n$3\r\nGET\r\n$1\r\nx\r\n",
    );
    let replies = raw.rest();
    assert_eq!(
        String::from_utf8_lossy(&replies),
        "+OK\r\n-ERR unknown command 'FOO', with args beginning with: \r\n:2\r\n$1\r\n2\r\n\
         -ERR wrong number of arguments for 'get' command\r\n$1\r\n2\r\n"
    );
}

#[test]
fn pipelined_writes_share_one_commit_and_answer_one_by_one() {
    let server = Server::start();
    let raw = Raw::connect(server.port);
    let mut raw = raw;
    let before = server.backend.stats().commits;
    // Five writes back to back (one of them fails), a read, then a write.
    raw.send(
        b"SET a 1\r\nINCR a\r\nSET t text\r\nINCR t\r\nAPPEND a x\r\nGET a\r\nDEL a t\r\nEXISTS a\r\n",
    );
    let replies = raw.rest();
    assert_eq!(
        String::from_utf8_lossy(&replies),
        "+OK\r\n:2\r\n+OK\r\n-ERR value is not an integer or out of range\r\n:2\r\n\
         $2\r\n2x\r\n:2\r\n:0\r\n"
    );
    // The five writes in one commit, the DEL in another; the reads need none.
    assert_eq!(server.backend.stats().commits - before, 2);
}

#[test]
fn malformed_input_gets_a_protocol_error_and_the_connection_closes() {
    let server = Server::start();
    let cases: &[(&[u8], &str)] = &[
        (
            b"*1\r\n*1\r\n$4\r\nPING\r\n",
            "-ERR Protocol error: expected '$', got '*'\r\n",
        ),
        (
            b"*x\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n$67108865\r\n",
            "-ERR Protocol error: invalid bulk length (haft accepts arguments of at most 67108864 bytes: max_bulk_bytes)\r\n",
        ),
    ];
    for (input, expected) in cases {
        let mut raw = Raw::connect(server.port);
        raw.send(b"PING\r\n");
        raw.send(input);
        // Anything after the error is never read.
        raw.send(b"PING\r\n");
        let output = raw.rest();
        assert_eq!(
            String::from_utf8_lossy(&output),
            format!("+PONG\r\n{expected}")
        );
    }
}

#[test]
fn resp3_replies_have_resp3_types() {
    let server = Server::start();
    let mut raw = Raw::connect(server.port);
    raw.send(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n*2\r\n$3\r\nGET\r\n$1\r\nz\r\n*2\r\n$4\r\nINFO\r\n$8\r\nkeyspace\r\n");
    let output = String::from_utf8_lossy(&raw.rest()).into_owned();
    assert!(
        output.starts_with("%8\r\n$6\r\nserver\r\n$4\r\nhaft\r\n"),
        "{output}"
    );
    assert!(
        output.ends_with("_\r\n=16\r\ntxt:# Keyspace\r\n\r\n"),
        "{output}"
    );
}

#[test]
fn exec_answers_null_when_a_watched_key_changes_even_during_the_commit() {
    let server = Server::start();
    let mut raw = Raw::connect(server.port);
    assert_eq!(raw.command(&["SET", "w", "1"]), status("OK"));
    assert_eq!(raw.command(&["WATCH", "w"]), status("OK"));
    assert_eq!(raw.command(&["MULTI"]), status("OK"));
    assert_eq!(raw.command(&["INCR", "w"]), status("QUEUED"));
    // Another client writes w between EXEC's read and its commit.
    server.backend.inject(Fault::ForeignWrite {
        key: "w".into(),
        value: Some("10".into()),
    });
    raw.send(b"*1\r\n$4\r\nEXEC\r\n");
    let rest = {
        let mut buffer = [0u8; 5];
        raw.stream.read_exact(&mut buffer).expect("EXEC's reply");
        buffer
    };
    assert_eq!(&rest, b"*-1\r\n", "Redis's null array");
    assert_eq!(raw.command(&["GET", "w"]), bulk("10"));
}

#[test]
fn pipelined_reads_of_one_key_share_one_read_and_answer_one_by_one() {
    let server = Server::start();
    let mut raw = Raw::connect(server.port);
    raw.command(&["MSET", "a", "1", "b", "22"]);
    let before = server.backend.stats();
    // Four reads of one key each back to back, an MGET of two keys (a
    // snapshot: read and validated on its own), then two more reads.
    raw.send(b"GET a\r\nSTRLEN b\r\nEXISTS c\r\nGET a\r\nMGET a b\r\nGET b\r\nGET c\r\n");
    let replies = raw.rest();
    assert_eq!(
        String::from_utf8_lossy(&replies),
        "$1\r\n1\r\n:2\r\n:0\r\n$1\r\n1\r\n*2\r\n$1\r\n1\r\n$2\r\n22\r\n$2\r\n22\r\n$-1\r\n"
    );
    let after = server.backend.stats();
    // One read for the first four, one (and a validating commit) for the
    // MGET, one for the last two.
    assert_eq!(after.reads - before.reads, 3);
    assert_eq!(after.commits - before.commits, 1);
}

#[test]
fn refusals_not_caused_by_a_watched_key_are_retried_invisibly() {
    let server = Server::start();
    let mut raw = Raw::connect(server.port);
    raw.command(&["SET", "w", "1"]);
    raw.command(&["WATCH", "w"]);
    raw.command(&["MULTI"]);
    raw.command(&["INCR", "w"]);
    raw.command(&["INCR", "other"]);
    // A lock conflict, an abort, and a write to a key the EXEC reads but does
    // not watch: each is retried, and EXEC commits.
    server.backend.inject(Fault::Conflict);
    server
        .backend
        .inject(Fault::Abort("participant timed out".into()));
    server.backend.inject(Fault::ForeignWrite {
        key: "other".into(),
        value: Some("41".into()),
    });
    let reply = raw.command(&["EXEC"]);
    assert_eq!(
        reply,
        OwnedFrame::Array(vec![OwnedFrame::Integer(2), OwnedFrame::Integer(42)])
    );
    let stats = server.backend.stats();
    assert_eq!((stats.conflicts, stats.aborts), (2, 1), "{stats:?}");

    // The same for a single INCR outside MULTI.
    server.backend.inject(Fault::Conflict);
    assert_eq!(raw.command(&["INCR", "w"]), OwnedFrame::Integer(3));
}

#[test]
fn a_transaction_refused_past_its_budget_reports_tryagain_and_writes_nothing() {
    let server = Server::with(|c| c.retry.attempts = 3);
    let mut raw = Raw::connect(server.port);
    for _ in 0..3 {
        server.backend.inject(Fault::Abort("no quorum".into()));
    }
    let reply = raw.command(&["MSET", "p", "1", "q", "2"]);
    let text = error_text(&reply);
    assert!(
        text.starts_with("TRYAGAIN") && text.contains("no quorum"),
        "{text}"
    );
    assert_eq!(raw.command(&["EXISTS", "p", "q"]), OwnedFrame::Integer(0));
    server
        .backend
        .inject(Fault::Unavailable("the node is shutting down".into()));
    let text = error_text(&raw.command(&["SET", "p", "1"]));
    assert!(
        text.starts_with("TRYAGAIN the store is unavailable"),
        "{text}"
    );
}

#[test]
fn errors_inside_exec_are_per_command_and_the_rest_commits() {
    let server = Server::start();
    let mut raw = Raw::connect(server.port);
    raw.command(&["SET", "text", "abc"]);
    raw.command(&["MULTI"]);
    raw.command(&["INCR", "text"]);
    raw.command(&["SET", "k", "v", "PX", "5"]);
    raw.command(&["MSET", "a", "1", "b", "2"]);
    raw.command(&["GET", "a"]);
    let OwnedFrame::Array(replies) = raw.command(&["EXEC"]) else {
        panic!("EXEC answers an array");
    };
    assert_eq!(
        error_text(&replies[0]),
        "ERR value is not an integer or out of range"
    );
    assert!(error_text(&replies[1]).contains("does not support key expiry"));
    assert_eq!(replies[2..], [status("OK"), bulk("1")]);
}

#[test]
fn the_connection_limit_answers_as_redis_and_frees_slots() {
    let server = Server::with(|c| c.max_clients = 2);
    let mut first = Raw::connect(server.port);
    let mut second = Raw::connect(server.port);
    assert_eq!(first.command(&["PING"]), status("PONG"));
    assert_eq!(second.command(&["PING"]), status("PONG"));
    let third = Raw::connect(server.port);
    assert_eq!(
        String::from_utf8_lossy(&third.rest()),
        "-ERR max number of clients reached\r\n"
    );
    drop(second);
    // The slot frees once the server sees the close.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut again = Raw::connect(server.port);
        again.send(b"PING\r\n");
        match again.reply() {
            Some(frame) if frame == status("PONG") => break,
            _ if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => panic!("no slot freed: {other:?}"),
        }
    }
}

#[test]
fn shutdown_closes_connections_and_stops_accepting() {
    let mut server = Server::start();
    let mut idle = Raw::connect(server.port);
    assert_eq!(idle.command(&["PING"]), status("PONG"));
    let started = std::time::Instant::now();
    server
        .server
        .take()
        .expect("running")
        .shutdown()
        .expect("clean shutdown");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "an idle client delayed shutdown"
    );
    assert_eq!(idle.reply(), None, "the idle connection is closed");
    assert!(TcpStream::connect(("127.0.0.1", server.port)).is_err());
}
