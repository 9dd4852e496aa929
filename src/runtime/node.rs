//! One node process: the [`NodeActor`] driven over UDP, with durable storage.
//!
//! # Threads
//!
//! - the **event loop** owns the actor's state and is the only thread that
//!   runs the actor: it takes datagrams from a channel, fires timers, and hands
//!   each handler's save and sends to the save barrier;
//! - the **receiver** reads the socket and forwards raw datagrams to the loop
//!   (decoding, and the counters, stay on the loop);
//! - the **flusher** of [`GroupCommit`] makes saves durable and releases the
//!   sends that waited for them onto the socket.
//!
//! They share the channel ([`crate::sync::mpsc`]), the save barrier (loom-tested
//! in its own module) and the socket (a duplicated OS handle); nothing else.
//!
//! # What the runtime guarantees the actor
//!
//! - Every save of a handler is durable before any send of that handler (or of
//!   a later one) leaves the process: all sends go through
//!   [`GroupCommit::submit`]. A handler that saves several times submits only
//!   its last save, which holds the whole record.
//! - Timers fire after a duration drawn uniformly within the range the actor
//!   asked for; setting an armed timer re-arms it; cancelling disarms it.
//! - A bad datagram is dropped and counted by [`DropKind`]; so is one from a
//!   sender that is neither a configured node nor a client. Nothing a peer
//!   sends can make the node panic.
//! - A corrupt record file stops the start with the storage error: the node
//!   never starts empty over a damaged record.
//!
//! Clients are told apart from nodes by their ids: a client's id has its top
//! bit set ([`CLIENT_BIT`]); the loop remembers the address each client last
//! wrote from, to send it replies.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::Rng;
use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Command, Id, Out};

use super::codec::{self, DropKind};
use super::config::Config;
use super::group_commit::{GroupCommit, GroupCommitError};
use super::storage::{DurableFile, StorageError};
use crate::node::{NodeActor, NodeMsg, NodeRecord, NodeState, NodeTimer, Reply, RequestId, txn_id};
use crate::sync::{mpsc, thread};

/// The name of a node's record file in its data directory.
pub const RECORD_FILE: &str = "node.record";

/// The top bit of a client's id. Node ids are at most 16 bits, so the two never
/// meet.
pub const CLIENT_BIT: u64 = 1 << 63;

/// How many clients' addresses a node remembers.
pub const CLIENT_CAPACITY: usize = 65_536;

/// What travels in a datagram's payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Wire {
    /// A message of the node actor (between nodes, or client requests and replies).
    Msg(NodeMsg),
    /// Client → node, tests only: drop every datagram to and from `peers`
    /// (an empty list heals). Refused unless the node allows fault injection.
    Isolate {
        /// The client's number for the request.
        id: RequestId,
        /// The peers to cut off.
        peers: Vec<u64>,
    },
    /// Node → client: the peers now cut off.
    Isolated {
        /// The request answered.
        id: RequestId,
        /// The peers cut off.
        peers: Vec<u64>,
    },
}

/// Why a node could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum NodeRunError {
    /// The record could not be read; a corrupt file lands here, naming the file.
    #[error(
        "the node's record could not be loaded: {0}; the node refuses to start rather than start empty"
    )]
    Load(#[source] StorageError),
    /// The record file is intact but does not hold a node record.
    #[error(
        "the record file {path} passed its checksum but does not decode as a node record ({reason}); \
         it was written by another program or another version of haft: move it away to start empty"
    )]
    BadRecord {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        reason: String,
    },
    /// The node has restarted too often for its transaction ids.
    #[error(
        "the record in {0} has reached the last incarnation; transaction ids would repeat, so the \
         node refuses to start: give it a new node id and an empty data directory"
    )]
    IncarnationsExhausted(PathBuf),
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
    /// A thread could not be started or panicked.
    #[error("the node's {0} thread failed; see the log")]
    Thread(&'static str),
    /// The actor's configuration was refused.
    #[error(transparent)]
    Config(#[from] crate::node::NodeError),
}

/// Reads the node record in `data`, if there is one. A damaged file is an error
/// naming it; a missing one is `Ok(None)`.
pub fn load_record(data: &Path) -> Result<Option<NodeRecord>, NodeRunError> {
    let file = DurableFile::open(data, RECORD_FILE).map_err(NodeRunError::Load)?;
    decode_record(&file)
}

fn decode_record(file: &DurableFile) -> Result<Option<NodeRecord>, NodeRunError> {
    let Some(bytes) = file.load().map_err(NodeRunError::Load)? else {
        return Ok(None);
    };
    postcard::from_bytes(&bytes)
        .map(Some)
        .map_err(|e| NodeRunError::BadRecord {
            path: file.path().to_owned(),
            reason: e.to_string(),
        })
}

enum Event {
    Datagram(Vec<u8>, SocketAddr),
    Shutdown,
}

/// Stops a running node from another thread (a signal handler, a test).
#[derive(Clone)]
pub struct ShutdownHandle(mpsc::Sender<Event>);

impl ShutdownHandle {
    /// Asks the node to stop: it flushes its pending save, releases the sends
    /// that waited for it, and returns from [`RunningNode::wait`].
    pub fn shutdown(&self) {
        // If the loop is gone, the node is already stopping.
        let _ = self.0.send(Event::Shutdown);
    }
}

/// A node started by [`start`].
pub struct RunningNode {
    local_addr: SocketAddr,
    events: mpsc::Sender<Event>,
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
    drops: [u64; DropKind::ALL.len()],
    partitioned: u64,
    unroutable: u64,
    unencodable: u64,
    timers_fired: u64,
}

/// Loads the record, binds the socket and starts the node's threads.
pub fn start(config: &Config) -> Result<RunningNode, NodeRunError> {
    let actor = config.actor()?;
    let file = DurableFile::open(&config.data, RECORD_FILE).map_err(NodeRunError::Load)?;
    let record = decode_record(&file)?;
    if record
        .as_ref()
        .is_some_and(|r| r.incarnation >= txn_id::MAX_INCARNATION)
    {
        return Err(NodeRunError::IncarnationsExhausted(file.path().to_owned()));
    }
    let socket_error = |addr| move |source| NodeRunError::Socket { addr, source };
    let socket = UdpSocket::bind(config.listen).map_err(socket_error(config.listen))?;
    let local_addr = socket.local_addr().map_err(socket_error(config.listen))?;
    let receiver_socket = socket.try_clone().map_err(socket_error(local_addr))?;
    let sender_socket = socket.try_clone().map_err(socket_error(local_addr))?;
    let (events, inbox) = mpsc::channel();

    let forward = events.clone();
    thread::Builder::new()
        .name(format!("haft-recv-{}", config.id))
        .spawn(move || receive(&receiver_socket, &forward))
        .map_err(|_| NodeRunError::Thread("receiver"))?;

    let barrier = GroupCommit::start(file, move |batch: Vec<(SocketAddr, Vec<u8>)>| {
        for (to, datagram) in batch {
            if let Err(error) = sender_socket.send_to(&datagram, to) {
                tracing::debug!(%to, %error, "send failed");
            }
        }
    });
    let mut peers: HashMap<u64, SocketAddr> = config.peers.iter().map(|(&k, &v)| (k, v)).collect();
    peers.insert(config.id, reachable(local_addr));
    let event_loop = EventLoop {
        me: config.id,
        actor,
        peers,
        allow_fault_injection: config.allow_fault_injection,
        socket,
        barrier: Some(barrier),
        timers: BTreeMap::new(),
        clients: HashMap::new(),
        client_order: VecDeque::new(),
        isolated: BTreeSet::new(),
        counters: Counters::default(),
    };
    let event_loop = thread::Builder::new()
        .name(format!("haft-node-{}", config.id))
        .spawn(move || event_loop.run(record, &inbox))
        .map_err(|_| NodeRunError::Thread("event loop"))?;
    tracing::info!(node = config.id, %local_addr, "node started");
    Ok(RunningNode {
        local_addr,
        events,
        event_loop,
    })
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

fn receive(socket: &UdpSocket, events: &mpsc::Sender<Event>) {
    let mut buffer = vec![0; codec::RECV_BUFFER];
    loop {
        match socket.recv_from(&mut buffer) {
            Ok((len, from)) => {
                if events
                    .send(Event::Datagram(buffer[..len].to_vec(), from))
                    .is_err()
                {
                    return; // The loop has stopped.
                }
            }
            // On Linux an ICMP error from an earlier send may surface here; the
            // socket is still usable.
            Err(error) => tracing::debug!(%error, "receive failed"),
        }
    }
}

struct EventLoop {
    me: u64,
    actor: NodeActor,
    peers: HashMap<u64, SocketAddr>,
    allow_fault_injection: bool,
    socket: UdpSocket,
    barrier: Option<GroupCommit<(SocketAddr, Vec<u8>)>>,
    timers: BTreeMap<NodeTimer, Instant>,
    clients: HashMap<u64, SocketAddr>,
    client_order: VecDeque<u64>,
    isolated: BTreeSet<u64>,
    counters: Counters,
}

fn id(node: u64) -> Id {
    Id::from(node as usize)
}

fn raw(id: Id) -> u64 {
    usize::from(id) as u64
}

impl EventLoop {
    fn run(
        mut self,
        record: Option<NodeRecord>,
        inbox: &mpsc::Receiver<Event>,
    ) -> Result<(), NodeRunError> {
        let result = self.serve(record, inbox);
        // Flush whatever was submitted, then wake the receiver so that it sees
        // the closed channel and exits.
        let flushed = match self.barrier.take() {
            Some(barrier) => barrier.shutdown().map_err(NodeRunError::from),
            None => Ok(()),
        };
        if let Ok(local) = self.socket.local_addr() {
            let _ = self.socket.send_to(&[], reachable(local));
        }
        tracing::info!(node = self.me, "node stopped");
        result.and(flushed)
    }

    fn serve(
        &mut self,
        record: Option<NodeRecord>,
        inbox: &mpsc::Receiver<Event>,
    ) -> Result<(), NodeRunError> {
        let mut out = Out::new();
        let mut state = self.actor.on_start(id(self.me), &record, &mut out);
        self.carry_out(out)?;
        loop {
            let next = self.timers.values().min().copied();
            let event = match next {
                Some(deadline) => {
                    let wait = deadline.saturating_duration_since(Instant::now());
                    match inbox.recv_timeout(wait) {
                        Ok(event) => Some(event),
                        Err(mpsc::RecvTimeoutError::Timeout) => None,
                        Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
                    }
                }
                None => match inbox.recv() {
                    Ok(event) => Some(event),
                    Err(_) => return Ok(()),
                },
            };
            match event {
                Some(Event::Shutdown) => return Ok(()),
                Some(Event::Datagram(bytes, from)) => {
                    state = self.on_datagram(state, &bytes, from)?;
                }
                None => {}
            }
            state = self.fire_timers(state)?;
        }
    }

    fn fire_timers(&mut self, mut state: NodeState) -> Result<NodeState, NodeRunError> {
        let now = Instant::now();
        let due: Vec<NodeTimer> = self
            .timers
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(timer, _)| timer.clone())
            .collect();
        for timer in due {
            // An earlier timer's handler may have re-armed or cancelled it.
            if self.timers.get(&timer).is_none_or(|at| *at > now) {
                continue;
            }
            self.timers.remove(&timer);
            self.counters.timers_fired += 1;
            let mut out = Out::new();
            let mut cow = std::borrow::Cow::Owned(state);
            self.actor
                .on_timeout(id(self.me), &mut cow, &timer, &mut out);
            state = cow.into_owned();
            self.carry_out(out)?;
        }
        Ok(state)
    }

    fn drop_datagram(&mut self, kind: DropKind, from: SocketAddr, why: &dyn std::fmt::Display) {
        self.counters.drops[kind as usize] += 1;
        tracing::debug!(%from, kind = kind.as_str(), %why, "datagram dropped");
    }

    fn on_datagram(
        &mut self,
        state: NodeState,
        bytes: &[u8],
        from: SocketAddr,
    ) -> Result<NodeState, NodeRunError> {
        if bytes.is_empty() {
            // The loop's own wake-up at shutdown, or an empty probe.
            self.drop_datagram(DropKind::Truncated, from, &"empty datagram");
            return Ok(state);
        }
        let frame = match codec::decode::<Wire>(bytes) {
            Ok(frame) => frame,
            Err(error) => {
                self.drop_datagram(error.kind(), from, &error);
                return Ok(state);
            }
        };
        let sender = frame.sender;
        if sender & CLIENT_BIT != 0 {
            self.remember_client(sender, from);
        } else if !self.peers.contains_key(&sender) {
            self.drop_datagram(DropKind::UnknownSender, from, &format!("sender {sender}"));
            return Ok(state);
        } else if self.isolated.contains(&sender) {
            self.counters.partitioned += 1;
            return Ok(state);
        }
        self.counters.received += 1;
        match frame.payload {
            Wire::Msg(msg) => {
                let mut out = Out::new();
                let mut cow = std::borrow::Cow::Owned(state);
                self.actor
                    .on_msg(id(self.me), &mut cow, id(sender), msg, &mut out);
                let state = cow.into_owned();
                self.carry_out(out)?;
                Ok(state)
            }
            Wire::Isolate { id: request, peers } => {
                let reply = if self.allow_fault_injection {
                    self.isolated = peers.into_iter().filter(|p| *p != self.me).collect();
                    tracing::warn!(node = self.me, isolated = ?self.isolated, "fault injection");
                    Wire::Isolated {
                        id: request,
                        peers: self.isolated.iter().copied().collect(),
                    }
                } else {
                    Wire::Msg(NodeMsg::Reply {
                        id: request,
                        reply: Reply::Refused {
                            reason: "fault injection is disabled on this node; start it with \
                                     allow_fault_injection = true (tests only)"
                                .into(),
                        },
                    })
                };
                self.submit(None, vec![(sender, reply)])?;
                Ok(state)
            }
            // Replies go to clients; a node ignores one sent to it.
            Wire::Isolated { .. } => Ok(state),
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

    /// Applies the timer commands at once and submits the handler's last save
    /// with its sends to the barrier.
    fn carry_out(&mut self, out: Out<NodeActor>) -> Result<(), NodeRunError> {
        let mut save = None;
        let mut sends = Vec::new();
        for command in out {
            match command {
                Command::Send(to, msg) => sends.push((raw(to), Wire::Msg(msg))),
                Command::SetTimer(timer, range) => {
                    let wait = if range.start >= range.end {
                        range.start
                    } else {
                        rand::rng().random_range(range)
                    };
                    self.timers.insert(timer, Instant::now() + wait);
                }
                Command::CancelTimer(timer) => {
                    self.timers.remove(&timer);
                }
                Command::Save(record) => save = Some(record),
                Command::ChooseRandom(..) => {}
            }
        }
        let save = match save {
            Some(record) => Some(
                postcard::to_stdvec(&record).map_err(|e| NodeRunError::Encode(e.to_string()))?,
            ),
            None => None,
        };
        // Status replies carry the runtime's counters, which the actor has not.
        for (_, wire) in &mut sends {
            if let Wire::Msg(NodeMsg::Reply {
                reply: Reply::Status(view),
                ..
            }) = wire
            {
                view.counters = self.counter_map();
            }
        }
        self.submit(save, sends)
    }

    fn submit(
        &mut self,
        save: Option<Vec<u8>>,
        sends: Vec<(u64, Wire)>,
    ) -> Result<(), NodeRunError> {
        let mut datagrams = Vec::with_capacity(sends.len());
        for (to, wire) in sends {
            let address = if to & CLIENT_BIT != 0 {
                self.clients.get(&to).copied()
            } else if self.isolated.contains(&to) {
                self.counters.partitioned += 1;
                continue;
            } else {
                self.peers.get(&to).copied()
            };
            let Some(address) = address else {
                self.counters.unroutable += 1;
                tracing::debug!(to, "no address for the recipient");
                continue;
            };
            match codec::encode(self.me, &wire) {
                Ok(datagram) => datagrams.push((address, datagram)),
                Err(error) => {
                    self.counters.unencodable += 1;
                    tracing::warn!(to, %error, "message not sent");
                }
            }
        }
        self.counters.sent += datagrams.len() as u64;
        if let Some(barrier) = &self.barrier {
            barrier.submit(save, datagrams)?;
        }
        Ok(())
    }

    fn counter_map(&self) -> BTreeMap<String, u64> {
        let mut map = BTreeMap::new();
        let c = &self.counters;
        map.insert("messages_in".into(), c.received);
        map.insert("messages_out".into(), c.sent);
        for kind in DropKind::ALL {
            map.insert(format!("drop_{}", kind.as_str()), c.drops[kind as usize]);
        }
        map.insert("drop_partitioned".into(), c.partitioned);
        map.insert("unroutable".into(), c.unroutable);
        map.insert("unencodable".into(), c.unencodable);
        map.insert("timers_fired".into(), c.timers_fired);
        if let Some(barrier) = &self.barrier {
            let stats = barrier.stats();
            map.insert("saves".into(), stats.saves_submitted);
            map.insert("persists".into(), stats.persists);
            // Each persist syncs the file and its directory.
            map.insert("fsyncs".into(), 2 * stats.persists);
            map.insert("sends_held".into(), stats.sends_held);
        }
        map
    }
}
