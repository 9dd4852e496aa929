//! One node process: the [`Node`] machine driven over UDP, with durable
//! storage.
//!
//! # Threads
//!
//! - the **event loop** owns the machine and is the only thread that runs it:
//!   it sleeps in one `poll(2)` over the socket and the bell of its
//!   inbox ([`super::inbox`]), reads datagrams itself (no thread stands between
//!   the socket and the machine), takes in-process requests and released
//!   effects from the inbox, fires timers, and carries out each output;
//! - the **drainer** takes the socket over while the fragments of a large
//!   message arrive, so that a busy loop does not let the socket's buffer
//!   overflow: the loop hands it the socket when it reads a fragment, and the
//!   drainer reads every datagram into the inbox until no fragment has come
//!   for [`DRAINER_QUIET`], then hands the socket back
//!   ([`SocketTurn`]; decoding, and the counters, stay on the loop);
//! - the **flusher** of [`GroupCommit`] makes saves durable and then releases
//!   what waited for them: datagrams straight onto the socket (those to one
//!   peer bundled), a message to this node and the news that the log is
//!   durable up to a position back to the loop, and then replies to
//!   in-process callers, through the function each caller gave. When the
//!   loop has nothing else to do and nobody is writing, it makes a small sync
//!   itself ([`GroupCommit::sync_here`]) and releases the same way: a lone
//!   request does not wait for the flusher to wake.
//!
//! They share the inbox (a [`crate::sync::mpsc`] channel and an `eventfd`
//! bell) and the socket's turn (both loom-tested in [`super::inbox`]), the
//! save barrier (loom-tested in its own module) and the socket (a duplicated
//! OS handle); the callers' reply functions go with the replies from the loop
//! to the flusher.
//!
//! # What the runtime guarantees the machine
//!
//! - The output of [`Node::recover`] is durable before the first input.
//! - `send_now` leaves before the loop waits for its next event, or after at
//!   most 16 more events when they keep coming;
//!   `send_after_persist` leaves only once every save submitted so far is
//!   durable; then the machine hears `handle_persisted`. Messages of one
//!   datagram that leave together for the same peer travel as one
//!   [bundle](codec::bundle); a reply to an in-process caller is handed over
//!   by the thread that releases it.
//! - The save of an output that only tidies up after a durable decision (every
//!   delta and every message waiting for it bookkeeping, as the machine
//!   classifies them: [`NodeDelta::is_bookkeeping`], [`NodeMsg::is_bookkeeping`])
//!   may wait up to [`BOOKKEEPING_WAIT`] to share the sync of the next save, so
//!   that the next transaction's save does not queue behind a sync of its own.
//!   It still reaches the log before anything submitted after it.
//! - Messages to this node are delivered in process, never through the socket,
//!   after the output that sent them. One in `send_after_persist` waits for
//!   the save like any other message, unless the machine marks it as one that
//!   may overtake its save ([`NodeMsg::may_overtake_its_save`]: a participant's
//!   Yes to its own coordinator). Such a message is delivered at once, and
//!   everything the handling of it sends — `send_now` included — waits for
//!   every save submitted so far, the overtaken one among them.
//! - A save that nothing leaving the node waits for (its vote went ahead of
//!   it) may wait, like bookkeeping, to share the sync of the next save.
//! - Timers fire after a duration drawn uniformly within the range asked for;
//!   setting an armed timer re-arms it; cancelling disarms it.
//! - A bad datagram is dropped and counted by [`DropKind`]; so is one from a
//!   sender that is neither a member nor a client, and anything but a request
//!   from a client. Nothing a peer sends can make the node panic.
//! - A message larger than a datagram leaves as fragments ([`codec`]), paced
//!   so that the receiver's socket buffer (raised to [`SOCKET_BUFFER`] where
//!   the system allows) is not overrun; the receiver reassembles it in bounded
//!   memory and age, so it arrives whole or not at all.
//!
//! # Authentication
//!
//! With `cluster_key_file` configured, every datagram the node sends carries
//! an HMAC-SHA256 tag under the cluster key, and every datagram it receives —
//! from a peer or a client — must carry a correct one: a datagram with a
//! missing or wrong tag is dropped before it is decoded or buffered and
//! counted as `drop_bad_tag`; it never reaches the machine. Clients
//! (`haft txn`, `get`, `status`) are given the same key file. Whoever holds the
//! key is trusted like a node, so it belongs to operators and their tools;
//! applications use the RESP port, behind `requirepass`. Whatever the key, a
//! sender with a client's id (top bit set) may only ask: the loop hands the
//! machine nothing but [`NodeMsg::Request`] from such a sender, never a vote,
//! a prepare, an outcome or a read reply. Without a key, the node warns once
//! at start that its traffic is unauthenticated.
//!
//! A tag makes a datagram authentic, not fresh: someone on the network can
//! record a datagram and send it again. A replay is a duplicate delivered late,
//! and that is a behaviour the models already include — their network keeps
//! every message deliverable for ever and delivers it any number of times, in
//! any order, across crashes and restarts (models/network.rs). Concretely: a
//! replayed Prepare of a finished transaction is below its coordinator's
//! watermark and refused, or is answered from the participant's record; a
//! replayed vote, outcome, acknowledgement or query is answered from the
//! record or ignored; a replayed heartbeat carries an old sequence number and
//! is ignored, a replayed suspicion an old incarnation; a replayed client
//! request is recognised by its request id in the answer table; a replayed
//! read reply finds its read answered. In-process callers are numbered from a
//! random start in each life, so that a read reply from an earlier life never
//! matches a read of this one.
//! - The data directory is locked (a second node on it stops with an error
//!   naming it) and holds the node's id (a node with another id is refused).
//! - Storage is an append-only log (see [`crate::storage`]): each output's
//!   deltas are one record; records close in time share one `fdatasync`;
//!   a checkpoint of the whole record replaces the log once the log outgrows
//!   twice the last checkpoint (and at least [`CHECKPOINT_MIN_BYTES`]), so
//!   disk use follows live data, not history. A torn tail is cut and logged;
//!   corruption before it stops the start with an error naming the file and
//!   offset: the node never starts empty over damaged data.
//!
//! Clients are told apart from nodes by their ids: a client's id has its top
//! bit set ([`CLIENT_BIT`]); the loop remembers the address each client last
//! wrote from, to send it replies.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::Rng;
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::net::RecvFlags;
use serde::{Deserialize, Serialize};

use super::client::{Client, ClientOptions};
use super::codec::{self, ClusterKey, DropKind, Reassembly, ReassemblyLimits};
use super::config::Config;
use super::inbox::{self, Bell, Disconnected, Inbox, InboxSender, SocketTurn};
use super::timers::Timers;
use crate::NodeId;
use crate::commit::{self, Outcome};
use crate::node::{
    ClientId, Dest, Node, NodeDelta, NodeError, NodeEvent, NodeMsg, NodeOutput, NodeRecord,
    NodeTimer, Reply, Request, RequestId,
};
use crate::output::{Position, TimerOp};
use crate::storage::{
    DataDir, DataDirError, FileStorage, GroupCommit, GroupCommitError, LogError, LogOptions,
    Recovery, Storage,
};
use crate::sync::{Arc, thread};

/// The log's directory inside a node's data directory.
pub const LOG_DIR: &str = "log";

/// The log may grow to twice the last checkpoint before the next, but never
/// needs one below this size: small enough that a node with little live data
/// keeps a few MiB on disk whatever its history (`haft bench --txns 800000`,
/// 12,800 live keys: 11.9 MiB in the three nodes' directories, 110 MiB with
/// 64 MiB here), large enough that such a node's checkpoints stay seconds
/// apart under load.
pub const CHECKPOINT_MIN_BYTES: u64 = 8 << 20;

/// How the node's log is tuned: frames large enough for the largest value
/// (16 MiB and more) with its key and the rest of its transaction.
pub fn log_options() -> LogOptions {
    LogOptions {
        max_batch_bytes: 64 << 20,
        ..LogOptions::default()
    }
}

/// How long the save of an output that only tidies up (see
/// [`NodeDelta::is_bookkeeping`]) may wait for a later save to share its sync.
/// Far below the coordinator's resend interval, so that an acknowledgement
/// held back with it is never the reason for a resend.
pub const BOOKKEEPING_WAIT: Duration = Duration::from_millis(5);

/// The top bit of a client's id. Node ids are 16 bits, so the two never meet.
pub const CLIENT_BIT: u64 = 1 << 63;

/// The second bit of an in-process caller's id: remote clients never set it.
pub const LOCAL_BIT: u64 = 1 << 62;

/// How many clients' addresses a node remembers.
pub const CLIENT_CAPACITY: usize = 65_536;

/// The socket receive and send buffers a node asks for: several fragmented
/// 16 MiB messages' worth. The system may grant less (Linux caps it at twice
/// `net.core.rmem_max`); fragments are paced to fit what it grants.
pub const SOCKET_BUFFER: usize = 8 << 20;

/// The most events the loop handles before it sends its outbox, and wakes
/// the flusher for its saves, even though more are waiting: under a steady
/// stream of events, messages and saves still leave within a few handlers'
/// time.
const OUTBOX_EVENTS: usize = 16;

/// The most bytes of records the loop syncs itself when it is idle (see
/// [`GroupCommit::sync_here`]); larger saves go to the flusher, so that a
/// large value's write does not keep the loop from its next events.
const SYNC_HERE_BYTES: usize = 64 << 10;

/// How long the loop looks at its bell's flag before it sleeps: six rounds
/// of 1, 2, 4 … 32 spins, then four yields of its core, the backoff of std's
/// channel. Under `redis-benchmark -t get` it cut the node's context switches
/// about fivefold (REPORT, "Sixth round").
const SPIN_STEPS: u32 = 10;

/// Rounds on its inbox alone after which the loop reads its socket even
/// though no poll has said it is readable (see `EventLoop::socket_unread`).
const SOCKET_UNREAD: usize = 16;

/// Datagrams the loop reads in a row before it looks at its inbox.
const RECV_BATCH: usize = 64;

/// The drainer hands the socket back to the loop once no fragment has
/// arrived for this long: far longer than the pauses between a paced
/// message's bursts (a millisecond), and longer than a coordinator's resend
/// interval (200–400 ms by default), so that the resends of a large Prepare
/// find the drainer still reading. With 50 ms the socket changed hands at
/// every resend, and a 16 MiB SET on a loaded machine failed more often
/// (REPORT, "Sixth round").
pub const DRAINER_QUIET: Duration = Duration::from_secs(1);

/// Fragments of one message leave in bursts of this many datagrams (about
/// 1 MiB) ...
const PACE_BURST: usize = 16;
/// ... with this pause between bursts: at most about 1 GB/s per message, which
/// the node's drainer thread keeps up with, and its socket buffer absorbs a stall of
/// several milliseconds.
const PACE_PAUSE: Duration = Duration::from_micros(1000);

/// Sends the datagrams of one message to `to`; a send error is logged (the
/// network may lose any datagram).
pub(crate) fn send_message(socket: &UdpSocket, to: SocketAddr, datagrams: &[Vec<u8>]) {
    for (index, datagram) in datagrams.iter().enumerate() {
        if index > 0 && index % PACE_BURST == 0 {
            std::thread::sleep(PACE_PAUSE);
        }
        if let Err(error) = socket.send_to(datagram, to) {
            tracing::debug!(%to, %error, "send failed");
        }
    }
}

/// Asks for [`SOCKET_BUFFER`]-sized socket buffers; logs what was granted.
pub(crate) fn size_buffers(socket: &UdpSocket) {
    let socket = socket2::SockRef::from(socket);
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER);
    let granted = socket.recv_buffer_size().unwrap_or(0);
    if granted < SOCKET_BUFFER {
        tracing::debug!(
            granted,
            asked = SOCKET_BUFFER,
            "smaller socket receive buffer than asked (raise net.core.rmem_max for large values)"
        );
    }
}

/// What travels in a datagram's payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Wire {
    /// A message of the node machine (between nodes, or client requests and
    /// replies).
    Msg(NodeMsg),
    /// Client → node, tests only: drop every datagram to and from `isolated`
    /// peers, and each other datagram to or from a peer with probability
    /// `loss_percent`%. Refused unless the node allows fault injection.
    Faults {
        /// The client's number for the request.
        id: RequestId,
        /// The peers to cut off (empty: none).
        isolated: Vec<u16>,
        /// The chance, in percent, that any other datagram between nodes is lost.
        loss_percent: u8,
    },
    /// Node → client: the faults now in force.
    FaultsSet {
        /// The request answered.
        id: RequestId,
        /// The peers cut off.
        isolated: Vec<u16>,
        /// The loss rate, in percent.
        loss_percent: u8,
    },
}

/// Why a node could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum NodeRunError {
    /// The data directory could not be opened: locked by another process,
    /// or holding another node's data.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    /// The log could not be read; a corrupt file lands here, naming the file
    /// and offset.
    #[error("the node's log could not be read: {0}")]
    Load(#[source] LogError),
    /// The log is intact but a record in it does not decode.
    #[error(
        "the log in {dir} passed its checksums but its {what} does not decode as haft's ({reason}); \
         it was written by another program or another version of haft: move the directory away to start empty"
    )]
    BadRecord {
        /// The log directory.
        dir: PathBuf,
        /// Which record.
        what: String,
        /// The decoder's message.
        reason: String,
    },
    /// The record could not be encoded.
    #[error("the node's record could not be encoded: {0}")]
    Encode(String),
    /// The socket could not be bound or read.
    #[error("socket {addr}: {source}; check that the address is local and the port free")]
    Socket {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The save barrier stopped (a save could not be made durable).
    #[error(transparent)]
    Barrier(#[from] GroupCommitError),
    /// The first save could not be made durable.
    #[error("the node's start could not be saved: {0}")]
    StartSave(#[source] LogError),
    /// A thread could not be started or panicked.
    #[error("the node's {0} thread failed; see the log")]
    Thread(&'static str),
    /// The machine's configuration was refused.
    #[error(transparent)]
    Config(#[from] NodeError),
    /// A member runs a later ring without this node: it was removed while
    /// it was down.
    #[error(
        "node {me} was removed from the cluster while it was down (node {by} runs epoch {epoch} \
         without it), so its data is stale: delete its data directory and join again with --join"
    )]
    Fenced {
        /// This node.
        me: u16,
        /// The member that said so.
        by: u16,
        /// That member's epoch.
        epoch: u64,
    },
}

/// Reads the node record in the data directory `data` without changing
/// anything (the node may be running): the last checkpoint and the deltas
/// logged after it. `None` if the node never started there.
pub fn load_record(data: &Path) -> Result<Option<NodeRecord>, NodeRunError> {
    let dir = data.join(LOG_DIR);
    let recovery = FileStorage::read(&dir).map_err(NodeRunError::Load)?;
    if recovery.snapshot.is_none() && recovery.records.is_empty() {
        return Ok(None);
    }
    rebuild(&dir, &recovery).map(Some)
}

/// The record a recovery's snapshot and records fold into.
fn rebuild(dir: &Path, recovery: &Recovery) -> Result<NodeRecord, NodeRunError> {
    let bad = |what: String, error: postcard::Error| NodeRunError::BadRecord {
        dir: dir.to_owned(),
        what,
        reason: error.to_string(),
    };
    let mut record = match &recovery.snapshot {
        Some(bytes) => {
            postcard::from_bytes::<NodeRecord>(bytes).map_err(|e| bad("checkpoint".into(), e))?
        }
        None => NodeRecord::default(),
    };
    for (index, bytes) in recovery.records.iter().enumerate() {
        let position = recovery.start.after(index as u64);
        let deltas: Vec<NodeDelta> =
            postcard::from_bytes(bytes).map_err(|e| bad(format!("{position}"), e))?;
        for delta in &deltas {
            record.apply(delta);
        }
    }
    record.reindex();
    Ok(record)
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, NodeRunError> {
    postcard::to_stdvec(value).map_err(|e| NodeRunError::Encode(e.to_string()))
}

/// What an in-process caller is handed back: the reply to its request.
pub type ReplyFn = Box<dyn FnOnce(Reply) + Send>;

/// What the flusher hands back to the loop once the saves before it are
/// durable.
enum Released {
    /// A message this node sent itself.
    Loopback(NodeMsg),
    /// Every delta before this position is durable.
    Persisted(Position),
}

/// What the barrier holds until the saves before it are durable.
enum Held {
    /// The datagrams of one message (several: its fragments) to a client.
    Datagram(SocketAddr, Vec<Vec<u8>>),
    /// The same to a peer, which also takes [bundles](codec::bundle): the
    /// flusher packs the single datagrams one sync releases to one peer.
    Peer(SocketAddr, Vec<Vec<u8>>),
    /// A reply to an in-process caller, with the caller's function: the
    /// flusher hands it over itself, after it has sent the loop what the
    /// same save released, so that the caller's next request reaches the
    /// loop after that (a read then sees the commit it was told of).
    Local(ReplyFn, Reply),
    Back(Released),
}

enum Event {
    Datagram(Vec<u8>, SocketAddr),
    Local { request: Request, reply: ReplyFn },
    Released(Vec<Released>),
    Shutdown,
}

/// The loop's bell: an `eventfd` it polls beside its socket.
struct EventBell(rustix::fd::OwnedFd);

impl EventBell {
    fn new() -> std::io::Result<EventBell> {
        let flags = rustix::event::EventfdFlags::NONBLOCK | rustix::event::EventfdFlags::CLOEXEC;
        Ok(EventBell(rustix::event::eventfd(0, flags)?))
    }
}

impl Bell for EventBell {
    fn ring(&self) {
        // Fails only once the counter nears 2^64 - 1, i.e. the bell is rung.
        let _ = rustix::io::write(&self.0, &1u64.to_ne_bytes());
    }

    fn reset(&self) {
        let mut count = [0u8; 8];
        let _ = rustix::io::read(&self.0, &mut count);
    }
}

type Events = InboxSender<Event, EventBell>;

/// Stops a running node from another thread (a signal handler, a test).
#[derive(Clone)]
pub struct ShutdownHandle(Events);

impl ShutdownHandle {
    /// Asks the node to stop: it flushes its pending save, releases the sends
    /// that waited for it, and returns from [`RunningNode::wait`].
    pub fn shutdown(&self) {
        // If the loop is gone, the node is already stopping.
        let _ = self.0.send(Event::Shutdown);
    }
}

/// Hands requests to a running node from inside its process (the RESP server).
#[derive(Clone)]
pub struct LocalHandle(Events);

impl LocalHandle {
    /// Runs `request` at this node; `reply` is called with the answer on the
    /// node's thread (keep it short: hand the reply over, nothing more).
    /// Returns `false` if the node has stopped (`reply` is then never called).
    pub fn call(&self, request: Request, reply: ReplyFn) -> bool {
        self.0.send(Event::Local { request, reply }).is_ok()
    }
}

/// A node started by [`start`].
pub struct RunningNode {
    local_addr: SocketAddr,
    events: Events,
    event_loop: thread::JoinHandle<Result<(), NodeRunError>>,
}

impl RunningNode {
    /// The address the node listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that stops the node.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.events.clone())
    }

    /// A handle for in-process requests.
    pub fn local_handle(&self) -> LocalHandle {
        LocalHandle(self.events.clone())
    }

    /// Waits until the node stops, and says why it did.
    pub fn wait(self) -> Result<(), NodeRunError> {
        drop(self.events);
        self.event_loop
            .join()
            .map_err(|_| NodeRunError::Thread("event loop"))?
    }
}

/// The runtime's counters, owned by the event loop.
#[derive(Default)]
struct Counters {
    received: u64,
    sent: u64,
    datagrams_sent: u64,
    loopback: u64,
    /// Votes to this node's own coordinator delivered before their save.
    ahead_of_save: u64,
    drops: [u64; DropKind::ALL.len()],
    from_client_not_request: u64,
    partitioned: u64,
    lost: u64,
    unroutable: u64,
    unencodable: u64,
    timers_fired: u64,
    commits: u64,
    aborts: u64,
    /// Times the loop handed the socket to the drainer.
    drainer_turns: u64,
}

/// Loads the record, binds the socket and starts the node's threads.
pub fn start(config: &Config) -> Result<RunningNode, NodeRunError> {
    let node_config = config.node_config();
    if config.cluster_key.is_none() {
        let warning = format!(
            "node {}: cluster traffic is unauthenticated: no cluster_key_file is configured, \
             so anyone who can reach {} can speak for a node; give every node the same key file",
            config.id, config.listen
        );
        tracing::warn!("{warning}");
        eprintln!("warning: {warning}");
    }
    let data = DataDir::open(&config.data, u64::from(config.id))?;
    let mut log = data.open_log(log_options());
    let recovery = log.recover().map_err(NodeRunError::Load)?;
    for repair in &recovery.repairs {
        tracing::warn!(node = config.id, "storage repaired: {repair}");
    }
    let record = rebuild(&data.log_dir(), &recovery)?;
    let mut out = NodeOutput::at(0);
    let mut node = Node::recover(&node_config, record, &mut out)?;
    let node_joined = node.status().epoch > 0;
    // The start's output is durable before anything else happens.
    if !out.persist.is_empty() {
        log.append(&encode(&out.persist)?)
            .map_err(NodeRunError::StartSave)?;
        log.sync().map_err(NodeRunError::StartSave)?;
    }
    node.handle_persisted(out.end());
    let snapshot_bytes = encode(&node.record())?.len() as u64;

    let socket_error = |addr| move |source| NodeRunError::Socket { addr, source };
    let socket = UdpSocket::bind(config.listen).map_err(socket_error(config.listen))?;
    let local_addr = socket.local_addr().map_err(socket_error(config.listen))?;
    size_buffers(&socket);
    let drainer_socket = socket.try_clone().map_err(socket_error(local_addr))?;
    let sender_socket = socket.try_clone().map_err(socket_error(local_addr))?;
    let bell = Arc::new(EventBell::new().map_err(socket_error(local_addr))?);
    let (events, inbox) = inbox::inbox(Arc::clone(&bell));
    let turn = Arc::new(SocketTurn::default());

    let (forward, drainer_turn, drainer_bell) = (events.clone(), Arc::clone(&turn), bell);
    thread::Builder::new()
        .name(format!("haft-drain-{}", config.id))
        .spawn(move || drain(&drainer_socket, &drainer_turn, &forward, &drainer_bell))
        .map_err(|_| NodeRunError::Thread("drainer"))?;

    let back = events.clone();
    let barrier = GroupCommit::start(log, move |batch: Vec<Held>| {
        let mut released = Vec::new();
        let mut replies = Vec::new();
        let mut outbox = Outbox::default();
        for held in batch {
            match held {
                Held::Peer(to, datagrams) => outbox.send(&sender_socket, to, datagrams),
                Held::Datagram(to, datagrams) => send_message(&sender_socket, to, &datagrams),
                Held::Local(reply_fn, reply) => replies.push((reply_fn, reply)),
                Held::Back(item) => released.push(item),
            }
        }
        outbox.flush(&sender_socket);
        if !released.is_empty() {
            // If the loop is gone, the node is stopping.
            let _ = back.send(Event::Released(released));
        }
        for (reply_fn, reply) in replies {
            reply_fn(reply);
        }
    });
    let mut peers: HashMap<u16, SocketAddr> = config.peers.iter().map(|(&k, &v)| (k, v)).collect();
    peers.insert(config.id, reachable(local_addr));
    let mut event_loop = EventLoop {
        me: NodeId(config.id),
        node,
        emitted: out.end(),
        peers,
        allow_fault_injection: config.allow_fault_injection,
        key: config.cluster_key.clone(),
        reassembly: Reassembly::new(ReassemblyLimits::default()),
        next_message: rand::random(),
        socket,
        turn,
        ready: VecDeque::new(),
        recv_buffer: vec![0; codec::RECV_BUFFER],
        socket_unread: 0,
        barrier: Some(barrier),
        logged_bytes: 0,
        last_snapshot_bytes: snapshot_bytes,
        timers: Timers::default(),
        clients: HashMap::new(),
        client_order: VecDeque::new(),
        local: HashMap::new(),
        // A fresh random start each life: see the module doc on replays.
        next_local: rand::random::<u64>() >> 4,
        loopback: VecDeque::new(),
        outbox: Outbox::default(),
        unflushed_events: 0,
        unsynced: false,
        deferred: Deferred::default(),
        isolated: BTreeSet::new(),
        loss_percent: 0,
        counters: Counters::default(),
        joining: config.join.is_some() && !node_joined,
        departed: false,
        fenced: None,
    };
    // The start's sends and timers (its deltas are durable already).
    out.persist.clear();
    out.send_now.append(&mut out.send_after_persist);
    event_loop.carry_out(out)?;
    let event_loop = thread::Builder::new()
        .name(format!("haft-node-{}", config.id))
        .spawn(move || event_loop.run(&inbox))
        .map_err(|_| NodeRunError::Thread("event loop"))?;
    tracing::info!(node = config.id, %local_addr, "node started");
    if let (Some(seed), false) = (config.join, node_joined) {
        let (id, key, address) = (config.id, config.cluster_key.clone(), reachable(local_addr));
        thread::Builder::new()
            .name(format!("haft-join-{id}"))
            .spawn(move || ask_to_join(id, address, seed, key))
            .map_err(|_| NodeRunError::Thread("join"))?;
    }
    Ok(RunningNode {
        local_addr,
        events,
        event_loop,
    })
}

/// How many times a joining node asks before it gives up.
const JOIN_ATTEMPTS: u32 = 120;

/// Asks the member at `seed`, as a client, to add node `id` (reached at
/// `address`) to the ring, until a ring change adding it commits.
fn ask_to_join(id: u16, address: SocketAddr, seed: SocketAddr, key: Option<ClusterKey>) {
    let options = ClientOptions {
        timeout: Duration::from_secs(5),
        retry_after: Duration::from_millis(500),
    };
    for attempt in 1..=JOIN_ATTEMPTS {
        let client = match Client::new(&seed.to_string(), options) {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(node = id, %seed, %error, "cannot ask to join");
                return;
            }
        };
        let mut client = match &key {
            Some(key) => client.with_key(key.clone()),
            None => client,
        };
        let request = Request::Join {
            node: id,
            address: address.to_string(),
        };
        match client.request(request) {
            Ok(Reply::Txn {
                outcome: Outcome::Commit,
                ..
            }) => {
                tracing::info!(node = id, %seed, "joined the cluster");
                return;
            }
            Ok(Reply::Refused { reason }) if reason.contains("already a member") => return,
            Ok(other) => tracing::warn!(node = id, %seed, attempt, ?other, "join not done yet"),
            Err(error) => tracing::warn!(node = id, %seed, attempt, %error, "join not done yet"),
        }
        thread::sleep(Duration::from_millis(500));
    }
    tracing::error!(
        node = id,
        %seed,
        "gave up joining after {JOIN_ATTEMPTS} attempts; check that {seed} is a running member"
    );
    eprintln!("error: node {id} could not join the cluster through {seed}; stop it and retry");
}

/// Where to send to reach a socket bound to `addr` (a wildcard address is
/// reached over loopback).
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}

/// The drainer thread: while it is its turn, reads every datagram into the
/// loop's inbox, and hands the socket back once no fragment has arrived for
/// [`DRAINER_QUIET`].
fn drain(socket: &UdpSocket, turn: &SocketTurn, events: &Events, bell: &EventBell) {
    // The loop never blocks on the socket, so this timeout is the drainer's
    // alone.
    if let Err(error) = socket.set_read_timeout(Some(DRAINER_QUIET)) {
        tracing::warn!(%error, "cannot set the drainer's read timeout");
    }
    let mut buffer = vec![0; codec::RECV_BUFFER];
    while turn.await_drainer_turn() {
        let mut last_fragment = Instant::now();
        while last_fragment.elapsed() < DRAINER_QUIET && !turn.stopped() {
            match socket.recv_from(&mut buffer) {
                Ok((len, from)) => {
                    let datagram = &buffer[..len];
                    if codec::is_fragment(datagram) {
                        last_fragment = Instant::now();
                    }
                    if events
                        .send(Event::Datagram(datagram.to_vec(), from))
                        .is_err()
                    {
                        return; // The loop has stopped.
                    }
                }
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                // On Linux an ICMP error from an earlier send may surface
                // here; the socket is still usable.
                Err(error) => tracing::debug!(%error, "receive failed"),
            }
        }
        turn.hand_back(bell);
    }
}

/// Messages of one datagram to peers, gathered per peer and sent as
/// [bundles](codec::bundle) by [`Outbox::flush`]; a larger message (a
/// fragmented one) is sent at once, paced.
#[derive(Default)]
struct Outbox {
    /// Per peer, in the order first seen, its datagrams in the order sent.
    by_peer: Vec<(SocketAddr, Vec<Vec<u8>>)>,
}

impl Outbox {
    fn send(&mut self, socket: &UdpSocket, to: SocketAddr, datagrams: Vec<Vec<u8>>) {
        if datagrams.len() != 1 {
            send_message(socket, to, &datagrams);
            return;
        }
        match self.by_peer.iter_mut().find(|(peer, _)| *peer == to) {
            Some((_, gathered)) => gathered.extend(datagrams),
            None => self.by_peer.push((to, datagrams)),
        }
    }

    fn flush(&mut self, socket: &UdpSocket) {
        for (to, datagrams) in self.by_peer.drain(..) {
            send_message(socket, to, &codec::bundle::pack(datagrams));
        }
    }
}

/// A message this node sent itself, to be delivered after the current input.
struct Looped {
    msg: NodeMsg,
    /// Sent in `send_after_persist` and delivered before its save is durable
    /// ([`NodeMsg::may_overtake_its_save`]): what its handling sends waits for
    /// that save.
    ahead: bool,
}

impl Looped {
    /// A message whose save, if any, is durable.
    fn after(msg: NodeMsg) -> Looped {
        Looped { msg, ahead: false }
    }
}

/// The saves of outputs that only tidy up ([`NodeDelta::is_bookkeeping`]),
/// or that nothing leaving the node waits for, and the effects that wait for
/// them, held back by the loop so that they share the sync of the next save
/// instead of making the next transaction's save wait behind a sync of their
/// own. They go to the barrier, in order and ahead of it, with the next
/// submission of any kind (so everything submitted later still waits for
/// them), before a checkpoint, at shutdown, or once [`BOOKKEEPING_WAIT`] has
/// passed.
#[derive(Default)]
struct Deferred {
    records: Vec<Vec<u8>>,
    held: Vec<Held>,
    /// When they must go at the latest.
    due: Option<Instant>,
}

struct EventLoop {
    me: NodeId,
    node: Node,
    /// Deltas emitted so far: the position of the next output's first.
    emitted: Position,
    peers: HashMap<u16, SocketAddr>,
    allow_fault_injection: bool,
    key: Option<ClusterKey>,
    reassembly: Reassembly,
    /// This node's number for the next message it sends.
    next_message: u64,
    socket: UdpSocket,
    /// Whether the loop or the drainer reads the socket.
    turn: Arc<SocketTurn>,
    /// Events read or drained, not handled yet.
    ready: VecDeque<Event>,
    recv_buffer: Vec<u8>,
    /// Rounds since a read found the socket empty. The loop reads it again
    /// once this reaches [`SOCKET_UNREAD`], which a poll that finds the
    /// socket readable, or a full batch, sets at once: a loop fed by its inbox
    /// (RESP requests, released batches) does not pay a failed read a round.
    socket_unread: usize,
    barrier: Option<GroupCommit<FileStorage, Held>>,
    /// Bytes logged since the last checkpoint.
    logged_bytes: u64,
    /// The size of the last checkpoint (or of the record at the start).
    last_snapshot_bytes: u64,
    timers: Timers<NodeTimer>,
    clients: HashMap<u64, SocketAddr>,
    client_order: VecDeque<u64>,
    /// In-process callers awaiting a reply.
    local: HashMap<(ClientId, RequestId), ReplyFn>,
    next_local: u64,
    /// Messages this node sent itself, delivered after the current input.
    loopback: VecDeque<Looped>,
    /// `send_now` messages to peers, sent together once the inbox is empty
    /// (or [`OUTBOX_EVENTS`] events have passed), before the loop waits.
    outbox: Outbox,
    /// Events handled since the outbox was last flushed.
    unflushed_events: usize,
    /// Saves submitted since the loop last synced or woke the flusher.
    unsynced: bool,
    /// Bookkeeping saves held back to share the next save's sync.
    deferred: Deferred,
    isolated: BTreeSet<u16>,
    loss_percent: u8,
    counters: Counters,
    /// Waiting to join: a datagram from any node id is taken, and teaches
    /// the sender's address (a member's ring change is how it joins).
    joining: bool,
    /// The node has left the ring and handed over its keys: the loop stops.
    departed: bool,
    /// The node was removed while it was down: the loop stops with this.
    fenced: Option<NodeRunError>,
}

impl EventLoop {
    fn run(mut self, inbox: &Inbox<Event, EventBell>) -> Result<(), NodeRunError> {
        let result = self.serve(inbox);
        self.outbox.flush(&self.socket);
        let result = result.and(self.submit(Vec::new(), Vec::new()));
        // Stop the drainer (the empty datagram below ends a read it may be
        // waiting in), and flush whatever was submitted.
        self.turn.stop();
        let flushed = match self.barrier.take() {
            Some(barrier) => barrier.shutdown().map(drop).map_err(NodeRunError::from),
            None => Ok(()),
        };
        if let Ok(local) = self.socket.local_addr() {
            let _ = self.socket.send_to(&[], reachable(local));
        }
        tracing::info!(node = self.me.0, "node stopped");
        result.and(flushed)
    }

    fn serve(&mut self, inbox: &Inbox<Event, EventBell>) -> Result<(), NodeRunError> {
        loop {
            if self.departed {
                tracing::info!(node = self.me.0, "left the cluster; stopping");
                return Ok(());
            }
            if let Some(fenced) = self.fenced.take() {
                return Err(fenced);
            }
            let Some(event) = self.next_event(inbox)? else {
                return Ok(()); // Every sender is gone.
            };
            match event {
                Some(Event::Shutdown) => return Ok(()),
                Some(Event::Datagram(bytes, from)) => self.on_datagram(&bytes, from)?,
                Some(Event::Local { request, reply }) => {
                    // Each call is its own client: callers do not retry.
                    self.next_local = self.next_local.wrapping_add(1);
                    let client = CLIENT_BIT | LOCAL_BIT | (self.next_local & (LOCAL_BIT - 1));
                    let id = 0;
                    self.local.insert((client, id), reply);
                    let mut out = self.output();
                    self.node.handle_local(client, id, request, &mut out);
                    self.carry_out(out)?;
                }
                Some(Event::Released(items)) => {
                    // The machine hears the furthest position of the batch
                    // once: `handle_persisted` is monotone, and the batch's
                    // loopback messages are delivered after it either way.
                    let mut persisted = None;
                    for item in items {
                        match item {
                            Released::Loopback(msg) => self.loopback.push_back(Looped::after(msg)),
                            Released::Persisted(upto) => persisted = Some(upto),
                        }
                    }
                    if let Some(upto) = persisted {
                        self.node.handle_persisted(upto);
                    }
                }
                None => {}
            }
            self.deliver_loopback()?;
            self.fire_timers()?;
            if self.deferred.due.is_some_and(|due| due <= Instant::now()) {
                self.submit(Vec::new(), Vec::new())?;
            }
        }
    }

    /// The next event: one already waiting (up to [`OUTBOX_EVENTS`] in a
    /// row); else, once the outbox is sent and the saves submitted are synced
    /// here or handed to the flusher, the first to arrive before the next
    /// timer is due (`Some(None)` if the timer comes first). `None` once
    /// every sender is gone.
    fn next_event(
        &mut self,
        inbox: &Inbox<Event, EventBell>,
    ) -> Result<Option<Option<Event>>, NodeRunError> {
        loop {
            if self.unflushed_events < OUTBOX_EVENTS {
                if self.ready.is_empty() && self.take_ready(inbox).is_err() {
                    return Ok(None);
                }
                if let Some(event) = self.ready.pop_front() {
                    self.unflushed_events += 1;
                    return Ok(Some(Some(event)));
                }
            }
            // Nothing waiting, or a long burst: what leaves now leaves first.
            let idle = self.unflushed_events < OUTBOX_EVENTS;
            self.outbox.flush(&self.socket);
            self.unflushed_events = 0;
            if std::mem::take(&mut self.unsynced)
                && let Some(barrier) = &self.barrier
            {
                if !idle {
                    barrier.flush()?;
                } else if barrier.sync_here(SYNC_HERE_BYTES)? {
                    // What the sync released may have queued events.
                    continue;
                }
            }
            if !self.ready.is_empty() {
                // A long burst: its next event, now that the outbox is out.
                continue;
            }
            break;
        }
        self.sleep(inbox);
        if self.take_ready(inbox).is_err() {
            return Ok(None);
        }
        Ok(Some(self.ready.pop_front()))
    }

    /// Sleeps until a datagram (on the loop's turn), the bell or the next
    /// deadline; resets the bell if it rang, so that the drain that follows
    /// is the one the inbox's contract asks for.
    fn sleep(&mut self, inbox: &Inbox<Event, EventBell>) {
        let next = self
            .timers
            .next_deadline()
            .into_iter()
            .chain(self.deferred.due)
            .min();
        let timeout = match next {
            Some(deadline) => {
                let wait = deadline.saturating_duration_since(Instant::now());
                if wait.is_zero() {
                    return;
                }
                // Far deadlines are cut to an hour: the loop then looks again.
                Timespec::try_from(wait.min(Duration::from_secs(3600))).ok()
            }
            None => None,
        };
        // Requests often come microseconds apart (a RESP worker hands over
        // one after another): look at the bell's flag for a moment, as std's
        // channel did before it parked, so as not to pay a sleep and a
        // wake-up for each.
        for step in 0..SPIN_STEPS {
            if inbox.rung() {
                break;
            }
            if step < 6 {
                for _ in 0..1u32 << step {
                    std::hint::spin_loop();
                }
            } else {
                thread::yield_now();
            }
        }
        let mut fds = [
            PollFd::new(&inbox.bell().0, PollFlags::IN),
            PollFd::new(&self.socket, PollFlags::IN),
        ];
        let watched = if self.turn.loop_reads() { 2 } else { 1 };
        match rustix::event::poll(&mut fds[..watched], timeout.as_ref()) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(error) => tracing::debug!(%error, "poll failed"),
        }
        if watched == 2 && !fds[1].revents().is_empty() {
            self.socket_unread = SOCKET_UNREAD;
        }
        if !fds[0].revents().is_empty() {
            inbox.reset_bell();
        }
    }

    /// Queues, without blocking, what the inbox holds and then (on the
    /// loop's turn) up to [`RECV_BATCH`] datagrams from the socket; hands the
    /// socket to the drainer if one of them is a fragment.
    fn take_ready(&mut self, inbox: &Inbox<Event, EventBell>) -> Result<(), Disconnected> {
        // The turn is looked at before the inbox is drained: if it is the
        // loop's, whatever the drainer read before it handed the socket back
        // is in the inbox already, and is queued ahead of what the loop reads.
        let loop_reads = self.turn.loop_reads();
        inbox.drain(|event| self.ready.push_back(event))?;
        if !loop_reads {
            return Ok(());
        }
        if self.socket_unread < SOCKET_UNREAD {
            self.socket_unread += 1;
            return Ok(());
        }
        let mut fragment = false;
        let mut read = 0;
        for _ in 0..RECV_BATCH {
            let buffer = &mut self.recv_buffer[..];
            match rustix::net::recvfrom(&self.socket, buffer, RecvFlags::DONTWAIT) {
                Ok((len, _, from)) => {
                    read += 1;
                    let datagram = &self.recv_buffer[..len];
                    fragment |= codec::is_fragment(datagram);
                    // A UDP socket always names the sender.
                    if let Some(Ok(from)) = from.map(SocketAddr::try_from) {
                        self.ready
                            .push_back(Event::Datagram(datagram.to_vec(), from));
                    }
                }
                Err(Errno::AGAIN) => break,
                Err(Errno::INTR) => {}
                // On Linux an ICMP error from an earlier send may surface
                // here; the socket is still usable.
                Err(error) => {
                    tracing::debug!(%error, "receive failed");
                    break;
                }
            }
        }
        // A full batch: more may wait. Else the socket was found empty.
        self.socket_unread = if read == RECV_BATCH { SOCKET_UNREAD } else { 0 };
        if fragment {
            self.turn.hand_to_drainer();
            self.counters.drainer_turns += 1;
        }
        Ok(())
    }

    fn output(&self) -> NodeOutput {
        NodeOutput::at(self.emitted)
    }

    fn deliver_loopback(&mut self) -> Result<(), NodeRunError> {
        while let Some(Looped { msg, ahead }) = self.loopback.pop_front() {
            self.counters.loopback += 1;
            let mut out = self.output();
            self.node.handle_message(self.me, msg, &mut out);
            if ahead {
                // It came ahead of its save: nothing it leads to leaves
                // before that save is durable (every save submitted so far).
                let now = std::mem::take(&mut out.send_now);
                out.send_after_persist.splice(0..0, now);
            }
            self.carry_out(out)?;
        }
        Ok(())
    }

    fn fire_timers(&mut self) -> Result<(), NodeRunError> {
        if self.timers.is_empty() {
            return Ok(());
        }
        // One at a time, so that a timer a handler cancels or sets again is
        // not fired; at most as many as were set, so that a handler that
        // keeps setting a timer due at once cannot hold the loop here.
        let now = Instant::now();
        for _ in 0..self.timers.len() {
            let Some(timer) = self.timers.pop_due(now) else {
                break;
            };
            self.counters.timers_fired += 1;
            let mut out = self.output();
            self.node.handle_timer(&timer, &mut out);
            self.carry_out(out)?;
            self.deliver_loopback()?;
        }
        Ok(())
    }

    fn drop_datagram(&mut self, kind: DropKind, from: SocketAddr, why: &dyn std::fmt::Display) {
        self.counters.drops[kind as usize] += 1;
        tracing::debug!(%from, kind = kind.as_str(), %why, "datagram dropped");
    }

    fn lose(&mut self) -> bool {
        self.loss_percent > 0 && rand::rng().random_range(0..100) < self.loss_percent
    }

    fn on_datagram(&mut self, bytes: &[u8], from: SocketAddr) -> Result<(), NodeRunError> {
        if !codec::bundle::is_bundle(bytes) {
            return self.on_one_datagram(bytes, from);
        }
        match codec::bundle::unpack(bytes) {
            Ok(datagrams) => {
                for datagram in datagrams {
                    self.on_one_datagram(datagram, from)?;
                }
            }
            Err(error) => self.drop_datagram(error.kind(), from, &error),
        }
        Ok(())
    }

    fn on_one_datagram(&mut self, bytes: &[u8], from: SocketAddr) -> Result<(), NodeRunError> {
        if bytes.is_empty() {
            // The loop's own wake-up at shutdown, or an empty probe.
            self.drop_datagram(DropKind::Truncated, from, &"empty datagram");
            return Ok(());
        }
        // The tag (under a cluster key) is checked before anything is read
        // or buffered.
        let fragment = match codec::open(bytes, self.key.as_ref()) {
            Ok(fragment) => fragment,
            Err(error) => {
                self.drop_datagram(error.kind(), from, &error);
                return Ok(());
            }
        };
        let sender = fragment.sender;
        let peer = if sender & CLIENT_BIT != 0 {
            None
        } else {
            match u16::try_from(sender) {
                Ok(peer) if self.peers.contains_key(&peer) && peer != self.me.0 => Some(peer),
                Ok(peer) if self.joining && peer != self.me.0 => {
                    self.peers.insert(peer, from);
                    Some(peer)
                }
                _ => {
                    self.drop_datagram(DropKind::UnknownSender, from, &format!("sender {sender}"));
                    return Ok(());
                }
            }
        };
        let whole;
        let bytes = if fragment.count == 1 {
            fragment.payload
        } else {
            match self.reassembly.push(from, &fragment, Instant::now()) {
                Some(message) => {
                    whole = message;
                    &whole[..]
                }
                None => return Ok(()),
            }
        };
        let payload = match codec::decode_payload::<Wire>(bytes) {
            Ok(payload) => payload,
            Err(error) => {
                self.drop_datagram(error.kind(), from, &error);
                return Ok(());
            }
        };
        let Some(peer) = peer else {
            self.counters.received += 1;
            return self.on_client(sender, from, payload);
        };
        if self.isolated.contains(&peer) {
            self.counters.partitioned += 1;
            return Ok(());
        }
        if self.lose() {
            self.counters.lost += 1;
            return Ok(());
        }
        self.counters.received += 1;
        match payload {
            Wire::Msg(msg) => {
                let mut out = self.output();
                self.node.handle_message(NodeId(peer), msg, &mut out);
                self.carry_out(out)
            }
            // Fault injection is asked for by clients, and answered to them.
            Wire::Faults { .. } | Wire::FaultsSet { .. } => Ok(()),
        }
    }

    fn on_client(&mut self, client: u64, from: SocketAddr, wire: Wire) -> Result<(), NodeRunError> {
        match wire {
            Wire::Msg(NodeMsg::Request {
                client: named,
                id,
                home,
                request,
            }) if named == client && client & LOCAL_BIT == 0 => {
                self.remember_client(client, from);
                let mut out = self.output();
                self.node
                    .handle_request(client, id, home, request, &mut out);
                self.carry_out(out)
            }
            Wire::Faults {
                id,
                isolated,
                loss_percent,
            } => {
                self.remember_client(client, from);
                let reply = if self.allow_fault_injection {
                    self.isolated = isolated.into_iter().filter(|p| *p != self.me.0).collect();
                    self.loss_percent = loss_percent.min(100);
                    tracing::warn!(node = self.me.0, isolated = ?self.isolated, loss = self.loss_percent, "fault injection");
                    Wire::FaultsSet {
                        id,
                        isolated: self.isolated.iter().copied().collect(),
                        loss_percent: self.loss_percent,
                    }
                } else {
                    Wire::Msg(NodeMsg::Reply {
                        client,
                        id,
                        reply: Reply::Refused {
                            reason: "fault injection is disabled on this node; start it with \
                                     allow_fault_injection = true (tests only)"
                                .into(),
                        },
                    })
                };
                self.send_datagram(from, &reply);
                Ok(())
            }
            // A client may only ask: it cannot vote, prepare or claim an outcome.
            _ => {
                self.counters.from_client_not_request += 1;
                Ok(())
            }
        }
    }

    fn remember_client(&mut self, client: u64, from: SocketAddr) {
        if self.clients.insert(client, from).is_none() {
            self.client_order.push_back(client);
            if self.client_order.len() > CLIENT_CAPACITY {
                if let Some(oldest) = self.client_order.pop_front() {
                    self.clients.remove(&oldest);
                }
            }
        }
    }

    /// Carries out one output: timers and events at once, `send_now` at once,
    /// and the save with what must wait for it through the barrier.
    fn carry_out(&mut self, mut out: NodeOutput) -> Result<(), NodeRunError> {
        self.emitted = out.end();
        let bookkeeping = !out.persist.is_empty()
            && out.persist.iter().all(NodeDelta::is_bookkeeping)
            && out
                .send_after_persist
                .iter()
                .all(|(_, msg)| msg.is_bookkeeping());
        for op in std::mem::take(&mut out.timers) {
            match op {
                TimerOp::Set { timer, after } => {
                    let wait = if after.start >= after.end {
                        after.start
                    } else {
                        rand::rng().random_range(after)
                    };
                    self.timers.set(timer, Instant::now() + wait);
                }
                TimerOp::Cancel(timer) => self.timers.cancel(&timer),
            }
        }
        for event in &out.events {
            match event {
                NodeEvent::Commit(commit::Event::Decided { outcome, .. }) => match outcome {
                    Outcome::Commit => self.counters.commits += 1,
                    Outcome::Abort => self.counters.aborts += 1,
                },
                NodeEvent::Addresses(addresses) => {
                    for (node, address) in addresses {
                        match address.parse::<SocketAddr>() {
                            Ok(address) if *node != self.me => {
                                self.peers.insert(node.0, address);
                            }
                            Ok(_) => {}
                            Err(_) => tracing::warn!(
                                node = node.0,
                                address,
                                "the ring gives this member an address that is not HOST:PORT"
                            ),
                        }
                    }
                }
                NodeEvent::Installed { epoch, member } => {
                    tracing::info!(node = self.me.0, epoch, member, "ring installed");
                    self.joining = false;
                }
                NodeEvent::Departed => self.departed = true,
                NodeEvent::Fenced { epoch, by } => {
                    self.fenced = Some(NodeRunError::Fenced {
                        me: self.me.0,
                        by: by.0,
                        epoch: *epoch,
                    })
                }
                NodeEvent::AutoRemoving { member } => tracing::warn!(
                    node = self.me.0,
                    member = member.0,
                    "removing a member held dead for auto_remove_after_ms"
                ),
                NodeEvent::Commit(_) => {}
            }
        }
        // Status replies carry the runtime's counters, and Unreachable
        // replies the replicas' addresses, which the machine has not.
        for (_, msg) in out.send_now.iter_mut().chain(&mut out.send_after_persist) {
            match msg {
                NodeMsg::Reply {
                    reply: Reply::Status(view),
                    ..
                } => view.counters = self.counter_map(),
                NodeMsg::Reply {
                    reply: Reply::Unreachable(unreachable),
                    ..
                } => {
                    for replica in &mut unreachable.replicas {
                        replica.address = self.peers.get(&replica.node).map(ToString::to_string);
                    }
                }
                _ => {}
            }
        }
        for (to, msg) in std::mem::take(&mut out.send_now) {
            match self.route(to, msg) {
                Some(Held::Datagram(address, datagrams)) => {
                    self.counters.sent += 1;
                    send_message(&self.socket, address, &datagrams);
                }
                Some(Held::Peer(address, datagrams)) => {
                    self.counters.sent += 1;
                    self.outbox.send(&self.socket, address, datagrams);
                }
                Some(Held::Back(Released::Loopback(msg))) => {
                    self.loopback.push_back(Looped::after(msg))
                }
                Some(Held::Local(reply_fn, reply)) => reply_fn(reply),
                Some(Held::Back(Released::Persisted(_))) | None => {}
            }
        }
        let records = if out.persist.is_empty() {
            Vec::new()
        } else {
            vec![encode(&out.persist)?]
        };
        let mut held: Vec<Held> = Vec::new();
        for (to, msg) in std::mem::take(&mut out.send_after_persist) {
            if to == Dest::Node(self.me) && msg.may_overtake_its_save() {
                self.counters.ahead_of_save += 1;
                self.loopback.push_back(Looped { msg, ahead: true });
                continue;
            }
            if let Some(item) = self.route(to, msg) {
                if matches!(item, Held::Datagram(..) | Held::Peer(..)) {
                    self.counters.sent += 1;
                }
                held.push(item);
            }
        }
        // Nothing that leaves waits for this save (a vote to this node's own
        // coordinator went ahead of it): it may share the next save's sync.
        let unawaited = held.is_empty();
        if !records.is_empty() {
            held.push(Held::Back(Released::Persisted(self.emitted)));
        }
        if records.is_empty() && held.is_empty() {
            return Ok(());
        }
        self.logged_bytes += records.iter().map(|r| r.len() as u64).sum::<u64>();
        if bookkeeping || unawaited {
            self.deferred.records.extend(records);
            self.deferred.held.extend(held);
            self.deferred
                .due
                .get_or_insert_with(|| Instant::now() + BOOKKEEPING_WAIT);
            return Ok(());
        }
        self.submit(records, held)?;
        self.checkpoint_if_due()
    }

    /// Hands `records` and the effects that wait for them to the barrier,
    /// behind whatever bookkeeping was held back.
    fn submit(&mut self, records: Vec<Vec<u8>>, held: Vec<Held>) -> Result<(), NodeRunError> {
        let (records, held) = if self.deferred.due.take().is_some() {
            let mut all_records = std::mem::take(&mut self.deferred.records);
            let mut all_held = std::mem::take(&mut self.deferred.held);
            all_records.extend(records);
            all_held.extend(held);
            (all_records, all_held)
        } else {
            (records, held)
        };
        if records.is_empty() && held.is_empty() {
            return Ok(());
        }
        if let Some(barrier) = &self.barrier {
            // Synced here or handed to the flusher before the loop waits.
            barrier.submit_without_flush(records, held)?;
            self.unsynced = true;
        }
        Ok(())
    }

    /// Replaces the log by a checkpoint once it outgrows twice the last one:
    /// the disk holds at most about three times the live data.
    fn checkpoint_if_due(&mut self) -> Result<(), NodeRunError> {
        if self.logged_bytes < CHECKPOINT_MIN_BYTES.max(2 * self.last_snapshot_bytes) {
            return Ok(());
        }
        // The snapshot covers every delta so far: none may stay behind.
        self.submit(Vec::new(), Vec::new())?;
        let snapshot = encode(&self.node.record())?;
        self.last_snapshot_bytes = snapshot.len() as u64;
        self.logged_bytes = 0;
        if let Some(barrier) = &self.barrier {
            barrier.checkpoint(snapshot)?;
        }
        Ok(())
    }

    /// Where a message goes: a datagram, or back to this process.
    fn route(&mut self, to: Dest, msg: NodeMsg) -> Option<Held> {
        match to {
            Dest::Node(node) if node == self.me => Some(Held::Back(Released::Loopback(msg))),
            Dest::Client(client) if client & LOCAL_BIT != 0 => match msg {
                NodeMsg::Reply { client, id, reply } => {
                    let reply_fn = self.local.remove(&(client, id))?;
                    Some(Held::Local(reply_fn, reply))
                }
                _ => None,
            },
            Dest::Node(node) => {
                if self.isolated.contains(&node.0) {
                    self.counters.partitioned += 1;
                    return None;
                }
                if self.lose() {
                    self.counters.lost += 1;
                    return None;
                }
                let Some(address) = self.peers.get(&node.0).copied() else {
                    self.counters.unroutable += 1;
                    tracing::debug!(to = node.0, "no address for the node");
                    return None;
                };
                let datagrams = self.encode(address, &Wire::Msg(msg))?;
                Some(Held::Peer(address, datagrams))
            }
            Dest::Client(client) => {
                let Some(address) = self.clients.get(&client).copied() else {
                    self.counters.unroutable += 1;
                    tracing::debug!(client, "no address for the client");
                    return None;
                };
                let datagrams = self.encode(address, &Wire::Msg(msg))?;
                Some(Held::Datagram(address, datagrams))
            }
        }
    }

    /// The datagrams of `wire` to `address`, or `None` (counted and logged)
    /// if it cannot be encoded.
    fn encode(&mut self, address: SocketAddr, wire: &Wire) -> Option<Vec<Vec<u8>>> {
        let message = self.next_message;
        self.next_message = self.next_message.wrapping_add(1);
        match codec::encode_message(u64::from(self.me.0), message, wire, self.key.as_ref()) {
            Ok(datagrams) => {
                self.counters.datagrams_sent += datagrams.len() as u64;
                Some(datagrams)
            }
            Err(error) => {
                self.counters.unencodable += 1;
                tracing::warn!(%address, %error, "message not sent");
                None
            }
        }
    }

    fn send_datagram(&mut self, address: SocketAddr, wire: &Wire) {
        if let Some(datagrams) = self.encode(address, wire) {
            self.counters.sent += 1;
            send_message(&self.socket, address, &datagrams);
        }
    }

    fn counter_map(&self) -> BTreeMap<String, u64> {
        let mut map = BTreeMap::new();
        let c = &self.counters;
        map.insert("messages_in".into(), c.received);
        map.insert("messages_out".into(), c.sent);
        map.insert("datagrams_out".into(), c.datagrams_sent);
        let reassembly = self.reassembly.stats();
        map.insert("fragments_in".into(), reassembly.fragments);
        map.insert("drop_duplicate_fragment".into(), reassembly.duplicates);
        map.insert("drop_inconsistent_fragment".into(), reassembly.inconsistent);
        map.insert("drop_incomplete_message".into(), reassembly.incomplete);
        map.insert(
            "reassembly_pending".into(),
            self.reassembly.pending() as u64,
        );
        map.insert(
            "reassembly_bytes".into(),
            self.reassembly.held_bytes() as u64,
        );
        map.insert("messages_to_self".into(), c.loopback);
        map.insert("votes_ahead_of_save".into(), c.ahead_of_save);
        for kind in DropKind::ALL {
            map.insert(format!("drop_{}", kind.as_str()), c.drops[kind as usize]);
        }
        map.insert("drop_not_a_request".into(), c.from_client_not_request);
        map.insert("drop_partitioned".into(), c.partitioned);
        map.insert("drop_injected_loss".into(), c.lost);
        map.insert("unroutable".into(), c.unroutable);
        map.insert("unencodable".into(), c.unencodable);
        map.insert("timers_fired".into(), c.timers_fired);
        map.insert("commits".into(), c.commits);
        map.insert("aborts".into(), c.aborts);
        map.insert("drainer_turns".into(), c.drainer_turns);
        if let Some(barrier) = &self.barrier {
            let stats = barrier.stats();
            map.insert("records_logged".into(), stats.records_submitted);
            map.insert("fsyncs".into(), stats.syncs);
            map.insert("fsyncs_by_loop".into(), stats.syncs_here);
            map.insert("checkpoints".into(), stats.checkpoints);
            map.insert(
                "log_bytes_since_checkpoint".into(),
                stats.bytes_since_checkpoint,
            );
            map.insert("effects_held".into(), stats.effects_held);
            map.insert("effects_released".into(), stats.effects_released);
        }
        map
    }
}
