//! `ring-handoff`: the handoff machine of `src/rebalance` — [`Handoff`]
//! itself — moving keys to their new holders while the ring changes under a
//! client's overwrites and deletes.
//!
//! # System
//!
//! - **Nodes** `0..nodes`, each the production [`Handoff`] machine with the
//!   disk of [`super::host`]. The first ring (epoch 0) holds every node but
//!   the last; the last node *joins* at epoch 1, and node 0 *leaves* at epoch
//!   2. Each key is held by its preference list of `replicas` nodes on haft's
//!   ring (`vnodes` points per node: with one, a join takes one range from
//!   one node; with more, ranges from several, and the joining node waits
//!   for each of their handoffs). Keys are chosen so that the first key's
//!   primary changes at the join and the second's at the leave.
//! - **The administrator** announces epoch 1 to the nodes of epochs 0 and 1
//!   at the start, and epoch 2 to those of epochs 1 and 2 once every one of
//!   them has acknowledged epoch 1; it resends an announcement until it is
//!   acknowledged, so a lossy run can still finish.
//! - **The client** (the same actor) runs a script, one request at a time:
//!   for each key, `writes` puts (each overwriting the last), then a delete
//!   (`delete=true`), then a read (`read=true`). It knows only the first
//!   ring: it sends each request to the key's primary of epoch 0, which
//!   forwards it once it is no longer the primary (even after it has left),
//!   and resends it with the same id on its timer until it has an answer
//!   other than `Retry`. Requests race with both ring changes.
//! - **Network**: unordered and duplicating (a sent message stays
//!   deliverable for ever); with `lossy`, one step loses every message in
//!   flight (see [`super::network`]).
//! - **Crashes** (`crashes=1`): a storage node may crash and recover from its
//!   durable record; the administrator and client do not crash. With
//!   `disk=async` a delta is durable only at the node's `Sync` step, and the
//!   messages resting on it wait for it.
//! - **Clock**: every armed timer may fire at any point.
//!
//! # Properties
//!
//! The *current ring* is the latest one the administrator has announced. A
//! key's *latest acknowledged write* is the last of its writes (puts and the
//! delete) the client was told is written, with the version it was told.
//!
//! - **no lost keys** (always): every acknowledged write is readable at its
//!   latest acknowledged version from the nodes of the current ring: every
//!   node that serves the key (its primary, holding its custody) holds that
//!   version or a later one; and a node of the current ring holds it, or a
//!   node that has not left: one that still hands the key over (its handoff
//!   not yet acknowledged) or has not installed the current ring yet. A node
//!   that installed it as a non-member and hands the key to no one has left,
//!   and what it still holds does not count. A crashed node counts with its
//!   durable record.
//! - **one writer per key and epoch** (always): the writes of a key accepted
//!   in one epoch (their versions' epoch) were all accepted by one node — so
//!   at most one node set, that node's preference list, accepts writes for a
//!   key in an epoch.
//! - **placed once settled** (always): once every node is at the last epoch
//!   and settled (nothing awaited or unacknowledged), each key's latest
//!   acknowledged write is held at its version or later by exactly the nodes
//!   of its last preference list, and by no other node.
//! - **reads see acknowledged writes** (always): the read of a key returns its
//!   latest acknowledged write (the same version and value, or a later one).
//! - **every handoff completes** (liveness, AG EF, checked by haft's checker
//!   on the explored graph): from every reachable state, a state is reachable
//!   in which every node is up, at the last epoch and settled — no ring
//!   queued, no handoff awaited or awaiting acknowledgement, no replica
//!   unacknowledged — and every request of the client is answered. This is
//!   the fairness the property assumes: AG EF asks only that *some*
//!   continuation reaches the goal, i.e. that no reachable state has lost the
//!   way out — a stalled handoff (a copy lost and never sent again) is such a
//!   state. It does not claim that every infinite run gets there: a run that
//!   loses every message for ever never does.
//! - *a handoff completes*, *settled with every request answered*, *a request
//!   is forwarded* (sometimes): the outcomes are reachable.
//!
//! # Variants
//!
//! Each seeded bug wraps the production machine on the model side; the
//! machine itself has no variant.
//!
//! - `drop-before-ack`: a node takes a handoff for acknowledged as soon as it
//!   sends it, and drops the keys. Refuted by *no lost keys*: the write's
//!   only copy is in flight.
//! - `no-forward`: a node that does not serve a key answers a request for it
//!   itself — applies a write to its local store and acknowledges it, answers
//!   a read from what it holds — instead of forwarding it. Refuted by *no lost
//!   keys* and *placed once settled* (with `read=true`, *reads see
//!   acknowledged writes* too).
//! - `write-to-old-owner`: a node that has handed a key to its new primary,
//!   and has not yet seen the handoff acknowledged, still applies writes to
//!   its local store and acknowledges them — the classic lost update of a
//!   move. Refuted by *no lost keys* (the new primary serves the key without
//!   the write) and *placed once settled*; at the default size also by *one
//!   writer per key and epoch*, once the new primary accepts a write of its
//!   own in the same epoch.
//! - `no-copy-resend`: a node never resends a handoff. Safe, but on a lossy
//!   network a lost handoff stalls the move for ever: refuted by *every
//!   handoff completes* (and by nothing without loss).
//!
//! Not modelled: more than one client, the loss of a node's disk, and
//! membership changes other than one join and one leave.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use stateright::Property;
use stateright::actor::{Actor, ActorModel, Envelope, Id, Network, Out};

use crate::NodeId;
use crate::checker::Spec;
use crate::output::Position;
use crate::rebalance::{
    Delta, Epoch, Handoff, HandoffConfig, HandoffOutput, HandoffRecord, Key, Layout, Msg, Op,
    Reply, Request, RequestId, RingChange, Timer, Version, Versioned,
};

use super::harness::{self, CheckOptions, CheckReport};
use super::host::{Disk, DiskState, Fold, HostTimer, carry_out_timers};
use super::network::{NetworkState, OnNetwork};
use super::params::{ParamError, ParamKind, ParamSpec, Params, named_variants};
use super::two_phase::{DISK, LOSSY, actor, disk_param, node};

/// The model's name in `haft check`.
pub const NAME: &str = "ring-handoff";

/// Which seeded bug, if any, the nodes run (see the module doc).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Variant {
    /// The protocol as specified.
    #[default]
    Correct,
    /// A handoff counts as acknowledged once sent: its keys are dropped.
    DropBeforeAck,
    /// A node that does not serve a key answers a request for it itself.
    NoForward,
    /// A node still accepts writes to a key it is handing over.
    WriteToOldOwner,
    /// A handoff is never resent.
    NoCopyResend,
}

named_variants!(Variant {
    Correct => "correct",
    DropBeforeAck => "drop-before-ack",
    NoForward => "no-forward",
    WriteToOldOwner => "write-to-old-owner",
    NoCopyResend => "no-copy-resend",
});

/// Parameters of `ring-handoff`.
pub const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "nodes",
        default: "3",
        kind: ParamKind::Int { min: 3, max: 5 },
        help: "storage nodes, the joining one included (node 0 leaves)",
    },
    ParamSpec {
        name: "keys",
        default: "1",
        kind: ParamKind::Int { min: 1, max: 2 },
        help: "keys (the first moves at the join, the second at the leave)",
    },
    ParamSpec {
        name: "writes",
        default: "2",
        kind: ParamKind::Int { min: 1, max: 3 },
        help: "puts per key, each overwriting the last",
    },
    ParamSpec {
        name: "delete",
        default: "true",
        kind: ParamKind::Bool,
        help: "delete each key after its puts",
    },
    ParamSpec {
        name: "read",
        default: "false",
        kind: ParamKind::Bool,
        help: "read each key back last",
    },
    ParamSpec {
        name: "vnodes",
        default: "1",
        kind: ParamKind::Int { min: 1, max: 8 },
        help: "points per node on the ring (with more, a join takes ranges from several nodes)",
    },
    ParamSpec {
        name: "replicas",
        default: "1",
        kind: ParamKind::Int { min: 1, max: 2 },
        help: "holders of each key: its primary and backups",
    },
    LOSSY,
    ParamSpec {
        name: "crashes",
        default: "0",
        kind: ParamKind::Int { min: 0, max: 1 },
        help: "storage nodes that may be down at once (each recovers from its record)",
    },
    DISK,
    ParamSpec {
        name: "variant",
        default: "correct",
        kind: ParamKind::Choice(&Variant::NAMES),
        help: "a seeded bug the checker must refute (see the model's doc)",
    },
];

/// One configuration of the system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandoffSize {
    /// Storage nodes, the joining one included (3–5).
    pub nodes: usize,
    /// Keys (1–2).
    pub keys: usize,
    /// Puts per key.
    pub writes: usize,
    /// Whether each key is deleted after its puts.
    pub delete: bool,
    /// Whether each key is read back last.
    pub read: bool,
    /// Points per node on the ring.
    pub vnodes: u32,
    /// Holders per key.
    pub replicas: usize,
    /// Whether the network may lose messages.
    pub lossy: bool,
    /// How many storage nodes may be down at once.
    pub crashes: usize,
    /// The disk.
    pub disk: Disk,
    /// The seeded bug.
    pub variant: Variant,
}

impl Default for HandoffSize {
    fn default() -> Self {
        HandoffSize {
            nodes: 3,
            keys: 1,
            writes: 2,
            delete: true,
            read: false,
            vnodes: 1,
            replicas: 1,
            lossy: false,
            crashes: 0,
            disk: Disk::Atomic,
            variant: Variant::Correct,
        }
    }
}

/// What the actors and properties share: the rings, the keys, the script.
#[derive(Clone, Debug)]
pub struct HandoffSystem {
    /// The configuration.
    pub size: HandoffSize,
    /// The ring of each epoch, as announced.
    pub rings: Vec<RingChange>,
    /// The layout of each epoch.
    pub layouts: Vec<Arc<Layout>>,
    /// The keys.
    pub keys: Vec<Key>,
    /// The client's requests, in order: the index of the key and what to do.
    /// Request `i` has number `i + 1`.
    pub script: Vec<(usize, Op)>,
    /// The client's (and administrator's) actor.
    pub client: Id,
    /// Per epoch, the nodes its announcement goes to: its members and those
    /// of the ring before.
    pub targets: Vec<Vec<Id>>,
}

impl HandoffSystem {
    /// The machine's settings in the model: timers fire at any point, so
    /// their delays do not matter.
    fn config(&self) -> HandoffConfig {
        HandoffConfig {
            vnodes: self.size.vnodes,
            replicas: self.size.replicas,
            resend_every: stateright::actor::model_timeout(),
        }
    }

    fn last_epoch(&self) -> usize {
        self.rings.len() - 1
    }

    /// The client's request number `index` of its script.
    fn request(&self, index: usize) -> Request {
        let (key, op) = &self.script[index];
        Request {
            id: RequestId {
                origin: node(self.client),
                seq: index as u64 + 1,
            },
            key: self.keys[*key].clone(),
            op: op.clone(),
        }
    }

    /// The key and script position of a request number of the client's.
    fn script_index(&self, request: RequestId) -> Option<usize> {
        let index = usize::try_from(request.seq).ok()?.checked_sub(1)?;
        (request.origin == node(self.client) && index < self.script.len()).then_some(index)
    }

    fn storage_nodes(&self) -> impl Iterator<Item = Id> + '_ {
        (0..self.size.nodes).map(Id::from)
    }
}

/// A wanted history of a key's primaries, one per epoch.
type KeyHistory = fn(&[NodeId]) -> bool;

/// The members of each epoch: all but the last node; then all; then all but
/// node 0.
fn members(nodes: usize) -> Vec<Vec<NodeId>> {
    let ids = |range: std::ops::Range<usize>| range.map(|n| NodeId(n as u16)).collect();
    vec![ids(0..nodes - 1), ids(0..nodes), ids(1..nodes)]
}

impl HandoffSize {
    /// Reads a configuration from checked parameters.
    pub fn from_params(params: &Params) -> Result<HandoffSize, ParamError> {
        let variant = params.choice("variant");
        Ok(HandoffSize {
            nodes: params.usize("nodes"),
            keys: params.usize("keys"),
            writes: params.usize("writes"),
            delete: params.bool("delete"),
            read: params.bool("read"),
            vnodes: params.int("vnodes") as u32,
            replicas: params.usize("replicas"),
            lossy: params.bool("lossy"),
            crashes: params.usize("crashes"),
            disk: disk_param(params),
            variant: Variant::from_name(variant)
                .ok_or_else(|| params.combination_error(format!("unknown variant {variant}")))?,
        })
    }

    /// The rings, keys and script of this configuration.
    pub fn system(self) -> Result<HandoffSystem, ParamError> {
        let members = members(self.nodes);
        let rings: Vec<RingChange> = members
            .iter()
            .enumerate()
            .map(|(epoch, ring)| RingChange {
                epoch: epoch as Epoch,
                members: ring.clone(),
                previous: epoch
                    .checked_sub(1)
                    .map(|before| members[before].clone())
                    .unwrap_or_default(),
            })
            .collect();
        let layouts: Vec<Arc<Layout>> = rings
            .iter()
            .map(|ring| {
                let layout = Layout::new(ring.epoch, &ring.members, self.vnodes, self.replicas);
                Arc::new(layout.expect("every epoch has members"))
            })
            .collect();
        // Keys picked by their primaries: the first moves at the join (from a
        // node that stays, if the ring has such a range), the second at the
        // leave only. The ring decides which exist, so the search is bounded.
        let primaries = |key: &[u8]| -> Vec<NodeId> {
            layouts.iter().map(|layout| layout.primary(key)).collect()
        };
        let wanted: [&[KeyHistory]; 2] = [
            &[|p| p[0] != p[1] && p[0] != NodeId(0), |p| p[0] != p[1]],
            &[|p| p[0] == p[1] && p[1] != p[2], |p| p[1] != p[2]],
        ];
        let mut keys: Vec<Key> = Vec::new();
        for choices in &wanted[..self.keys] {
            let found = choices.iter().find_map(|wanted| {
                (0..10_000)
                    .map(|i| Bytes::from(format!("k{i}")))
                    .find(|key| !keys.contains(key) && wanted(&primaries(key)))
            });
            keys.push(found.ok_or_else(|| ParamError::Combination {
                model: NAME,
                reason: format!(
                    "no key moves at the {} on this ring; try another vnodes",
                    if keys.is_empty() { "join" } else { "leave" }
                ),
            })?);
        }
        let mut script = Vec::new();
        for key in 0..self.keys {
            for write in 1..=self.writes {
                script.push((key, Op::Put(Bytes::from(write.to_string()))));
            }
            if self.delete {
                script.push((key, Op::Delete));
            }
            if self.read {
                script.push((key, Op::Get));
            }
        }
        let targets = rings
            .iter()
            .map(|ring| {
                let nodes: BTreeSet<NodeId> =
                    ring.members.iter().chain(&ring.previous).copied().collect();
                nodes.into_iter().map(actor).collect()
            })
            .collect();
        Ok(HandoffSystem {
            targets,
            size: self,
            rings,
            layouts,
            keys,
            script,
            client: Id::from(self.nodes),
        })
    }

    /// The system the checker explores.
    pub fn into_model(self) -> Result<HandoffModel, ParamError> {
        let system = self.system()?;
        let shared = Arc::new(system.clone());
        let nodes = (0..self.nodes).map(|_| HandoffActor::Node(shared.clone()));
        let actors = ActorModel::new(system, History::default())
            .actors(nodes)
            .actor(HandoffActor::Client(shared))
            .init_network(Network::new_unordered_duplicating([]))
            .max_crashes(self.crashes)
            .record_msg_out(record_out);
        Ok(OnNetwork::new(actors, self.lossy, properties).with_crash_budget(may_crash))
    }
}

/// Only storage nodes crash.
fn may_crash(cfg: &HandoffSystem, _: &SystemState, id: Id) -> bool {
    id != cfg.client
}

/// What the model remembers beyond the actors' states: which node accepted
/// each write, and in which epoch (the epoch of the version it gave).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct History {
    /// Per request number of the client, the first `Written` answer sent for
    /// it: (key index, version epoch, the node that sent it). The first
    /// answer comes from the node that accepted the write; a later one may
    /// come from a node that found the write already stored (a retry).
    pub accepted: BTreeMap<u64, (usize, Epoch, Id)>,
}

fn record_out(cfg: &HandoffSystem, history: &History, env: Envelope<&Msg>) -> Option<History> {
    let Msg::Answer {
        request,
        reply: Reply::Written(version),
    } = env.msg
    else {
        return None;
    };
    let (key, _) = cfg.script[cfg.script_index(*request)?];
    if history.accepted.contains_key(&request.seq) {
        return None;
    }
    let mut next = history.clone();
    next.accepted
        .insert(request.seq, (key, version.epoch, env.src));
    Some(next)
}

/// An actor of the system; each carries the system's setup, since stateright
/// hands an actor nothing else.
#[derive(Clone, Debug)]
pub enum HandoffActor {
    /// A storage node.
    Node(Arc<HandoffSystem>),
    /// The client, which is also the administrator.
    Client(Arc<HandoffSystem>),
}

/// The disk of a storage node.
pub type NodeDisk = DiskState<HandoffRecord, Delta, Msg>;

impl Fold<Delta> for HandoffRecord {
    fn fold(&mut self, delta: &Delta) {
        self.apply(delta);
    }
}

/// A storage node's state: the production machine and its disk.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeState {
    /// The machine.
    pub machine: Handoff,
    /// Its disk.
    pub disk: NodeDisk,
    /// Writes a buggy node applied to its store behind the machine's back
    /// (`no-forward`, `write-to-old-owner`); empty in the correct protocol.
    pub rogue: BTreeMap<Key, Versioned>,
}

impl NodeState {
    /// What the node holds for `key`: the machine's value, or a later one it
    /// applied behind the machine's back.
    pub fn holds(&self, key: &[u8]) -> Option<&Versioned> {
        let held = self.machine.held(key);
        match (held, self.rogue.get(key)) {
            (Some(held), Some(rogue)) if held.version >= rogue.version => Some(held),
            (_, Some(rogue)) => Some(rogue),
            (held, None) => held,
        }
    }
}

/// The client's and administrator's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ClientState {
    /// The latest epoch announced (0: only the first ring).
    pub announced: usize,
    /// The nodes that acknowledged it.
    pub acknowledged: BTreeSet<Id>,
    /// The answers to the requests answered so far, in script order; the
    /// next request is the one at `answers.len()`.
    pub answers: Vec<Reply>,
}

/// The state of any actor.
// stateright keeps each actor's state behind an `Arc` already; a box would
// only add an allocation to every step.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HandoffState {
    /// A storage node.
    Node(NodeState),
    /// The client.
    Client(ClientState),
}

/// The model type.
pub type HandoffModel = OnNetwork<HandoffActor, HandoffSystem, History>;

/// A state of [`HandoffModel`].
pub type SystemState = NetworkState<HandoffActor, History>;

impl Actor for HandoffActor {
    type Msg = Msg;
    type State = HandoffState;
    type Timer = HostTimer<Timer>;
    type Random = ();
    type Storage = HandoffRecord;

    fn on_start(&self, id: Id, storage: &Option<HandoffRecord>, o: &mut Out<Self>) -> HandoffState {
        match self {
            HandoffActor::Node(system) => {
                let me = node(id);
                let record = match storage {
                    Some(record) => record.clone(),
                    // A member of the first ring starts with it installed;
                    // the joining node starts with nothing.
                    None if system.rings[0].members.contains(&me) => {
                        HandoffRecord::founded(system.rings[0].clone())
                    }
                    None => HandoffRecord::default(),
                };
                let mut out = HandoffOutput::at(0);
                let mut machine = Handoff::recover(me, system.config(), record.clone(), &mut out)
                    .expect("the model's configuration is valid");
                if system.size.variant == Variant::NoCopyResend {
                    strip_handoffs(&mut out);
                }
                let mut state = NodeState {
                    machine: machine.clone(),
                    disk: DiskState::new(record),
                    rogue: BTreeMap::new(),
                };
                // The output of a recovery is durable before any input (the
                // driver's contract), whatever the disk.
                carry_out(Disk::Atomic, &mut state.disk, out, o);
                machine.handle_persisted(Position::MAX);
                state.machine = machine;
                HandoffState::Node(state)
            }
            HandoffActor::Client(system) => {
                let mut client = ClientState::default();
                // The first request leaves before any ring change is announced.
                send_request(system, &client, o);
                announce_next(system, &mut client, o);
                o.set_timer(
                    HostTimer::Machine(Timer::Resend),
                    stateright::actor::model_timeout(),
                );
                HandoffState::Client(client)
            }
        }
    }

    fn on_msg(
        &self,
        _id: Id,
        state: &mut std::borrow::Cow<HandoffState>,
        src: Id,
        msg: Msg,
        o: &mut Out<Self>,
    ) {
        match (self, &**state) {
            (HandoffActor::Node(system), HandoffState::Node(node_state)) => {
                let mut next = node_state.clone();
                node_msg(system, &mut next, src, msg, o);
                if next != *node_state {
                    *state.to_mut() = HandoffState::Node(next);
                }
            }
            (HandoffActor::Client(system), HandoffState::Client(client)) => {
                let mut next = client.clone();
                client_msg(system, &mut next, src, msg, o);
                if next != *client {
                    *state.to_mut() = HandoffState::Client(next);
                }
            }
            _ => {}
        }
    }

    fn on_timeout(
        &self,
        _id: Id,
        state: &mut std::borrow::Cow<HandoffState>,
        timer: &HostTimer<Timer>,
        o: &mut Out<Self>,
    ) {
        match (self, &**state) {
            (HandoffActor::Node(system), HandoffState::Node(node_state)) => {
                let mut next = node_state.clone();
                match timer {
                    HostTimer::Sync => {
                        next.disk.sync(o);
                        next.machine.handle_persisted(Position::MAX);
                    }
                    HostTimer::Machine(timer) => {
                        let mut out = HandoffOutput::at(next.disk.base());
                        next.machine.handle_timer(timer, &mut out);
                        if system.size.variant == Variant::NoCopyResend {
                            // The bug: a handoff is sent once, never again.
                            strip_handoffs(&mut out);
                        }
                        if carry_out(system.size.disk, &mut next.disk, out, o) {
                            next.machine.handle_persisted(Position::MAX);
                        }
                    }
                }
                if next != *node_state {
                    *state.to_mut() = HandoffState::Node(next);
                }
            }
            (HandoffActor::Client(system), HandoffState::Client(client)) => {
                if done(system, client) {
                    return;
                }
                send_request(system, client, o);
                resend_announcement(system, client, o);
                o.set_timer(
                    HostTimer::Machine(Timer::Resend),
                    stateright::actor::model_timeout(),
                );
            }
            _ => {}
        }
    }

    fn name(&self) -> String {
        match self {
            HandoffActor::Node(_) => "node".into(),
            HandoffActor::Client(_) => "client".into(),
        }
    }
}

/// Removes every handoff from an output (`no-copy-resend`).
fn strip_handoffs(out: &mut HandoffOutput) {
    out.send_now
        .retain(|(_, msg)| !matches!(msg, Msg::Handoff { .. }));
    out.send_after_persist
        .retain(|(_, msg)| !matches!(msg, Msg::Handoff { .. }));
}

/// Carries out a machine's output on the model's disk and network. Returns
/// whether everything the machine emitted is durable.
fn carry_out(
    disk: Disk,
    state: &mut NodeDisk,
    out: HandoffOutput,
    o: &mut Out<HandoffActor>,
) -> bool {
    carry_out_timers(out.timers, HostTimer::Machine, o);
    // A `Retry` is not sent: the client does nothing on it but wait for its
    // resend timer, so delivering it changes nothing, and leaving it out of
    // the network only spares states that differ by it alone.
    let sends = |sends: Vec<(NodeId, Msg)>| -> Vec<(Id, Msg)> {
        sends
            .into_iter()
            .filter(|(_, msg)| {
                !matches!(
                    msg,
                    Msg::Answer {
                        reply: Reply::Retry,
                        ..
                    }
                )
            })
            .map(|(to, msg)| (actor(to), msg))
            .collect()
    };
    // Events go to clients attached to a node; the model's client is
    // answered by message, so the machines emit none it needs.
    state.carry_out(
        disk,
        out.persist,
        sends(out.send_now),
        sends(out.send_after_persist),
        HostTimer::Sync,
        o,
    )
}

fn node_msg(
    system: &HandoffSystem,
    state: &mut NodeState,
    src: Id,
    msg: Msg,
    o: &mut Out<HandoffActor>,
) {
    let variant = system.size.variant;
    if let Msg::Request { request, .. } = &msg {
        let rogue = match (variant, &request.op) {
            (Variant::NoForward, _) => !state.machine.serves(&request.key),
            (Variant::WriteToOldOwner, Op::Put(_) | Op::Delete) => {
                state.machine.is_handing(&request.key)
            }
            _ => false,
        };
        if rogue {
            serve_rogue(state, request, o);
            return;
        }
    }
    let mut out = HandoffOutput::at(state.disk.base());
    state.machine.handle_message(node(src), msg, &mut out);
    if variant == Variant::DropBeforeAck {
        // The bug: every handoff just sent counts as acknowledged at once.
        let sent: Vec<(NodeId, Epoch)> = out
            .send_now
            .iter()
            .chain(&out.send_after_persist)
            .filter_map(|(to, msg)| match msg {
                Msg::Handoff { epoch, .. } => Some((*to, *epoch)),
                _ => None,
            })
            .collect();
        for (to, epoch) in sent {
            state
                .machine
                .handle_message(to, Msg::HandoffAck { epoch }, &mut out);
        }
    }
    if carry_out(system.size.disk, &mut state.disk, out, o) {
        state.machine.handle_persisted(Position::MAX);
    }
}

/// A buggy node answers a request itself, behind its machine's back: a write
/// goes into its local store at the next version of its own epoch and is
/// acknowledged; a read is answered with what it holds.
fn serve_rogue(state: &mut NodeState, request: &Request, o: &mut Out<HandoffActor>) {
    let held = state.holds(&request.key).cloned();
    let reply = match &request.op {
        Op::Get => Reply::Read(held),
        Op::Put(_) | Op::Delete => {
            let epoch = state.machine.epoch().unwrap_or(0);
            let version = match &held {
                // A duplicate, or a late copy of an overwritten write: even a
                // buggy node deduplicates, or versions would grow for ever.
                Some(held)
                    if held.writer.origin == request.id.origin
                        && held.writer.seq >= request.id.seq =>
                {
                    let reply = if held.writer == request.id {
                        Reply::Written(held.version)
                    } else {
                        Reply::Superseded
                    };
                    let answer = Msg::Answer {
                        request: request.id,
                        reply,
                    };
                    o.send(actor(request.id.origin), answer);
                    return;
                }
                Some(held) if held.version.epoch >= epoch => Version {
                    epoch: held.version.epoch,
                    seq: held.version.seq + 1,
                },
                _ => Version { epoch, seq: 1 },
            };
            let value = match &request.op {
                Op::Put(value) => Some(value.clone()),
                _ => None,
            };
            let versioned = Versioned {
                version,
                value,
                writer: request.id,
            };
            state.rogue.insert(request.key.clone(), versioned);
            Reply::Written(version)
        }
    };
    o.send(
        actor(request.id.origin),
        Msg::Answer {
            request: request.id,
            reply,
        },
    );
}

/// Whether the client is finished: every ring announced and acknowledged,
/// every request answered.
fn done(system: &HandoffSystem, client: &ClientState) -> bool {
    client.answers.len() == system.script.len()
        && client.announced == system.last_epoch()
        && announcement_targets(system, client.announced)
            .all(|node| client.acknowledged.contains(&node))
}

/// The nodes an announcement of `epoch` goes to: the members of it and of the
/// ring before.
fn announcement_targets(system: &HandoffSystem, epoch: usize) -> impl Iterator<Item = Id> + '_ {
    system.targets[epoch].iter().copied()
}

/// Announces the next epoch to its targets.
fn announce_next(system: &HandoffSystem, client: &mut ClientState, o: &mut Out<HandoffActor>) {
    if client.announced == system.last_epoch() {
        return;
    }
    client.announced += 1;
    client.acknowledged.clear();
    resend_announcement(system, client, o);
}

/// Sends the latest announcement to every target that has not acknowledged it.
fn resend_announcement(system: &HandoffSystem, client: &ClientState, o: &mut Out<HandoffActor>) {
    if client.announced == 0 {
        return;
    }
    let ring = &system.rings[client.announced];
    for target in announcement_targets(system, client.announced) {
        if !client.acknowledged.contains(&target) {
            o.send(target, Msg::Ring(ring.clone()));
        }
    }
}

/// Sends the client's current request, if any, to the key's primary in the
/// first ring: the client knows no other, and a node that is no longer the
/// primary forwards the request.
fn send_request(system: &HandoffSystem, client: &ClientState, o: &mut Out<HandoffActor>) {
    let index = client.answers.len();
    if index == system.script.len() {
        return;
    }
    let request = system.request(index);
    let primary = system.layouts[0].primary(&request.key);
    o.send(
        actor(primary),
        Msg::Request {
            request,
            forwarded: false,
        },
    );
}

fn client_msg(
    system: &HandoffSystem,
    client: &mut ClientState,
    src: Id,
    msg: Msg,
    o: &mut Out<HandoffActor>,
) {
    match msg {
        Msg::RingAck { epoch } if epoch as usize == client.announced => {
            client.acknowledged.insert(src);
            let all = announcement_targets(system, client.announced)
                .all(|node| client.acknowledged.contains(&node));
            if all {
                announce_next(system, client, o);
            }
        }
        // Only the answer to the current request moves the client on; a
        // Retry waits for the resend timer.
        Msg::Answer { request, reply }
            if system.script_index(request) == Some(client.answers.len())
                && reply != Reply::Retry =>
        {
            client.answers.push(reply);
            send_request(system, client, o);
        }
        _ => {}
    }
}

// --- properties --------------------------------------------------------------

/// The properties of `ring-handoff` (see the module doc).
fn properties(_: &HandoffModel) -> Vec<Property<HandoffModel>> {
    vec![
        Property::always("no lost keys", |m: &HandoffModel, s: &SystemState| {
            no_lost_keys(&m.actors.cfg, s)
        }),
        Property::always(
            "one writer per key and epoch",
            |_: &HandoffModel, s: &SystemState| one_writer_per_key_and_epoch(s),
        ),
        Property::always(
            "placed once settled",
            |m: &HandoffModel, s: &SystemState| placed_once_settled(&m.actors.cfg, s),
        ),
        Property::always(
            "reads see acknowledged writes",
            |m: &HandoffModel, s: &SystemState| reads_see_acknowledged_writes(&m.actors.cfg, s),
        ),
        Property::sometimes(
            "a handoff completes",
            |m: &HandoffModel, s: &SystemState| a_handoff_completes(&m.actors.cfg, s),
        ),
        Property::sometimes(
            "settled with every request answered",
            |m: &HandoffModel, s: &SystemState| finished(m, s),
        ),
        Property::sometimes(
            "a request is forwarded",
            |_: &HandoffModel, s: &SystemState| forwarded(s),
        ),
    ]
}

/// What `ring-handoff` checks: its properties and *every handoff completes*.
pub fn spec(model: &HandoffModel) -> Spec<HandoffModel> {
    Spec::of(model).liveness("every handoff completes", finished)
}

/// Checks the model.
pub fn check(params: &Params, options: &CheckOptions) -> Result<CheckReport, ParamError> {
    let model = HandoffSize::from_params(params)?.into_model()?;
    Ok(harness::run_spec(
        NAME,
        params.clone(),
        &model,
        &spec(&model),
        options,
    ))
}

fn client<'s>(cfg: &HandoffSystem, state: &'s SystemState) -> &'s ClientState {
    match state.actor(usize::from(cfg.client)) {
        HandoffState::Client(client) => client,
        HandoffState::Node(_) => unreachable!("the last actor is the client"),
    }
}

/// The storage nodes that are up, with their states.
fn up_nodes<'s>(
    cfg: &'s HandoffSystem,
    state: &'s SystemState,
) -> impl Iterator<Item = (Id, &'s NodeState)> + 's {
    cfg.storage_nodes().filter_map(|id| {
        let index = usize::from(id);
        match state.actor(index) {
            HandoffState::Node(node) if !state.crashed(index) => Some((id, node)),
            _ => None,
        }
    })
}

/// What node `id` holds for `key` and whether it counts as keeping it for
/// the ring of `current`: a member does, and so does a node that still hands
/// the key over or has not installed that ring yet (it will hand the key over
/// when it does); a node that has installed it, is no member and hands
/// nothing has left. A node that is up counts with its memory (writes it
/// applied behind its machine's back included), a crashed one with its
/// durable record.
fn keeping(state: &SystemState, id: Id, key: &[u8], current: &RingChange) -> Option<Versioned> {
    let index = usize::from(id);
    let member = current.members.contains(&node(id));
    let counts = |record: &HandoffRecord| {
        member || record.is_handing(key) || record.epoch().is_none_or(|e| e < current.epoch)
    };
    if state.crashed(index) {
        let record = state.storage(index)?;
        return counts(record).then(|| record.store.get(key).cloned())?;
    }
    match state.actor(index) {
        HandoffState::Node(node) if counts(node.machine.record()) => node.holds(key).cloned(),
        _ => None,
    }
}

/// Each key's latest acknowledged write: its version and value.
fn latest_acknowledged(
    cfg: &HandoffSystem,
    answers: &[Reply],
) -> BTreeMap<usize, (Version, Option<Bytes>)> {
    let mut latest = BTreeMap::new();
    for (index, reply) in answers.iter().enumerate() {
        let (key, op) = &cfg.script[index];
        if let Reply::Written(version) = reply {
            let value = match op {
                Op::Put(value) => Some(value.clone()),
                _ => None,
            };
            latest.insert(*key, (*version, value));
        }
    }
    latest
}

fn no_lost_keys(cfg: &HandoffSystem, state: &SystemState) -> bool {
    let client = client(cfg, state);
    let current = &cfg.rings[client.announced];
    latest_acknowledged(cfg, &client.answers)
        .into_iter()
        .all(|(key, (version, _))| {
            let key = &cfg.keys[key];
            // Readable: whoever serves the key serves at least that version.
            let readable = up_nodes(cfg, state)
                .filter(|(_, node)| node.machine.serves(key))
                .all(|(_, node)| node.machine.held(key).is_some_and(|v| v.version >= version));
            // Kept: by a node of the current ring, or one that has not left.
            let kept = cfg.storage_nodes().any(|id| {
                keeping(state, id, key, current).is_some_and(|held| held.version >= version)
            });
            readable && kept
        })
}

fn one_writer_per_key_and_epoch(state: &SystemState) -> bool {
    let accepted: Vec<&(usize, Epoch, Id)> = state.history.accepted.values().collect();
    accepted.iter().all(|(key, epoch, who)| {
        accepted
            .iter()
            .all(|(k, e, other)| k != key || e != epoch || other == who)
    })
}

/// Every node is up, at the last epoch and settled, and the client is done.
fn finished(model: &HandoffModel, state: &SystemState) -> bool {
    let cfg = &model.actors.cfg;
    let last = cfg.last_epoch() as Epoch;
    state.all_up()
        && done(cfg, client(cfg, state))
        && up_nodes(cfg, state)
            .all(|(_, node)| node.machine.epoch() == Some(last) && node.machine.is_settled())
}

fn placed_once_settled(cfg: &HandoffSystem, state: &SystemState) -> bool {
    let last = cfg.last_epoch() as Epoch;
    let settled = state.all_up()
        && up_nodes(cfg, state)
            .all(|(_, node)| node.machine.epoch() == Some(last) && node.machine.is_settled());
    if !settled {
        return true;
    }
    let layout = &cfg.layouts[cfg.last_epoch()];
    latest_acknowledged(cfg, &client(cfg, state).answers)
        .into_iter()
        .all(|(key, (version, _))| {
            let key = &cfg.keys[key];
            up_nodes(cfg, state).all(|(id, up)| {
                if layout.holds(key, node(id)) {
                    up.holds(key).is_some_and(|held| held.version >= version)
                } else {
                    up.holds(key).is_none()
                }
            })
        })
}

fn reads_see_acknowledged_writes(cfg: &HandoffSystem, state: &SystemState) -> bool {
    let answers = &client(cfg, state).answers;
    answers.iter().enumerate().all(|(index, reply)| {
        let Reply::Read(read) = reply else {
            return true;
        };
        let (key, _) = cfg.script[index];
        match latest_acknowledged(cfg, &answers[..index]).get(&key) {
            None => true,
            Some((version, value)) => read.as_ref().is_some_and(|read| {
                read.version > *version || (read.version == *version && read.value == *value)
            }),
        }
    })
}

fn a_handoff_completes(cfg: &HandoffSystem, state: &SystemState) -> bool {
    cfg.keys.iter().any(|key| {
        let first = cfg.layouts[0].primary(key);
        up_nodes(cfg, state).any(|(id, up)| {
            node(id) != first && up.machine.serves(key) && up.machine.held(key).is_some()
        })
    })
}

fn forwarded(state: &SystemState) -> bool {
    state.network.iter().any(|env| {
        matches!(
            env.msg,
            Msg::Request {
                forwarded: true,
                ..
            }
        )
    })
}

/// Builds the model from checked parameters.
pub fn from_params(params: &Params) -> Result<HandoffModel, ParamError> {
    HandoffSize::from_params(params)?.into_model()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::harness::{CheckOptions, PropertyReport};

    /// One write per key, no delete, no read: the smallest script.
    fn small() -> HandoffSize {
        HandoffSize {
            writes: 1,
            delete: false,
            read: false,
            ..HandoffSize::default()
        }
    }

    fn run(size: HandoffSize) -> CheckReport {
        let model = size.into_model().expect("a valid size");
        let options = CheckOptions {
            threads: 2,
            ..CheckOptions::default()
        };
        let params = Params::defaults(NAME, PARAMS);
        let report = harness::run_spec(NAME, params, &model, &spec(&model), &options);
        assert!(report.complete, "{size:?}");
        report
    }

    /// Checks `size`, asserts that everything holds, returns the state count.
    fn passing(size: HandoffSize) -> usize {
        let report = run(size);
        assert!(report.passed(), "{size:?}: {report:#?}");
        report.unique_states
    }

    /// The `always` and liveness properties that fail.
    fn broken(report: &CheckReport) -> Vec<&'static str> {
        report
            .properties
            .iter()
            .filter(|p| p.expectation != "sometimes" && !p.holds)
            .map(|p| p.name)
            .collect()
    }

    fn verdict<'r>(report: &'r CheckReport, property: &str) -> &'r PropertyReport {
        report.property(property).expect("declared")
    }

    /// The actions of the counterexample to `property`.
    fn actions(report: &CheckReport, property: &str) -> Vec<String> {
        verdict(report, property)
            .counterexample
            .clone()
            .unwrap_or_else(|| panic!("`{property}` has no counterexample"))
            .into_iter()
            .map(|step| step.action)
            .collect()
    }

    #[test]
    fn the_keys_move_at_the_join_and_at_the_leave() {
        let system = HandoffSize {
            keys: 2,
            ..HandoffSize::default()
        }
        .system()
        .unwrap();
        let primaries =
            |key: &Key| -> Vec<NodeId> { system.layouts.iter().map(|l| l.primary(key)).collect() };
        let first = primaries(&system.keys[0]);
        assert_ne!(first[0], first[1], "moves at the join");
        assert_eq!(first[1], NodeId(2), "to the joining node");
        let second = primaries(&system.keys[1]);
        assert_eq!(second[0], NodeId(0));
        assert_eq!(second[0], second[1]);
        assert_ne!(second[1], second[2], "moves when node 0 leaves");
        // A ring on which no key can have that history is a typed error.
        let none = HandoffSize {
            nodes: 4,
            keys: 2,
            ..HandoffSize::default()
        };
        match none.system() {
            Ok(system) => assert_eq!(system.keys.len(), 2),
            Err(error) => assert!(error.to_string().contains("no key moves"), "{error}"),
        }
    }

    #[test]
    fn the_default_configuration_passes_with_its_pinned_count() {
        let params = crate::models::find(NAME).unwrap().default_params();
        assert_eq!(
            HandoffSize::from_params(&params).unwrap(),
            HandoffSize::default()
        );
        assert_eq!(passing(HandoffSize::default()), DEFAULT);
    }

    #[test]
    fn other_sizes_pass_with_pinned_counts() {
        let read = HandoffSize {
            writes: 1,
            read: true,
            ..HandoffSize::default()
        };
        assert_eq!(passing(read), SIZES[0], "a delete and a read");
        assert_eq!(passing(small()), SIZES[1], "one write");
        let vnodes = HandoffSize {
            vnodes: 2,
            ..small()
        };
        assert_eq!(passing(vnodes), SIZES[2], "vnodes=2");
        let replicas = HandoffSize {
            replicas: 2,
            ..small()
        };
        assert_eq!(passing(replicas), SIZES[3], "replicas=2");
        let keys = HandoffSize { keys: 2, ..small() };
        assert_eq!(passing(keys), SIZES[4], "keys=2");
        let nodes = HandoffSize {
            nodes: 4,
            ..small()
        };
        assert_eq!(passing(nodes), SIZES[5], "nodes=4");
    }

    #[test]
    fn crashes_and_loss_lose_no_key_and_stall_no_handoff() {
        let crashing = HandoffSize {
            crashes: 1,
            ..small()
        };
        assert_eq!(passing(crashing), FAULTS[0], "crashes=1");
        let lossy = HandoffSize {
            lossy: true,
            ..small()
        };
        assert_eq!(passing(lossy), FAULTS[1], "lossy");
    }

    fn variant(size: HandoffSize, variant: Variant) -> HandoffSize {
        HandoffSize { variant, ..size }
    }

    #[test]
    fn dropping_before_the_ack_loses_a_key() {
        let report = run(variant(small(), Variant::DropBeforeAck));
        assert_eq!(broken(&report), ["no lost keys"]);
        let trace = verdict(&report, "no lost keys")
            .counterexample
            .clone()
            .unwrap();
        // The write was acknowledged, the old primary installed the join and
        // dropped the key at once; the handoff carrying it is still in flight.
        let last = &trace.last().unwrap().state;
        assert!(last.contains("Answer(n3#1, Written(e0.1))"), "{trace:#?}");
        assert!(last.contains("msg: Handoff(e1, {\""), "{trace:#?}");
        assert!(
            trace.last().unwrap().action.contains("Ring(e1"),
            "{trace:#?}"
        );
    }

    #[test]
    fn not_forwarding_serves_a_key_where_it_is_not_held() {
        let report = run(variant(small(), Variant::NoForward));
        assert_eq!(broken(&report), ["no lost keys", "placed once settled"]);
        // The old primary, past the join, takes the write itself (at a
        // version of epoch 1); the new primary then receives the handoff,
        // which has nothing, and serves the key without it.
        let trace = actions(&report, "no lost keys");
        assert!(
            trace.contains(&"Id(1) → Answer(n3#1, Written(e1.1)) → Id(3)".to_string()),
            "{trace:?}"
        );
        assert_eq!(trace.last().unwrap(), "Id(1) → Handoff(e1, {}) → Id(2)");
        // With a read, the read is answered from the wrong node too.
        let reading = HandoffSize {
            writes: 1,
            read: true,
            ..HandoffSize::default()
        };
        let report = run(variant(reading, Variant::NoForward));
        assert!(broken(&report).contains(&"reads see acknowledged writes"));
    }

    #[test]
    fn a_write_to_the_old_owner_after_the_copy_is_a_lost_update() {
        let overwrite = HandoffSize {
            writes: 2,
            ..small()
        };
        let report = run(variant(overwrite, Variant::WriteToOldOwner));
        assert_eq!(broken(&report), ["no lost keys", "placed once settled"]);
        // The old owner takes the second write after installing the join
        // (version e1.1, acknowledged); the handoff it sent carries only the
        // first, and once it reaches the new primary, that one serves it.
        let trace = actions(&report, "no lost keys");
        assert!(
            trace.contains(&"Id(1) → Answer(n3#2, Written(e1.1)) → Id(3)".to_string()),
            "{trace:?}"
        );
        assert_eq!(
            trace.last().unwrap(),
            "Id(1) → Handoff(e1, {\"k2\": \"1\"@e0.1 by n3#1}) → Id(2)"
        );
    }

    #[test]
    fn without_resends_a_lost_handoff_stalls_the_move() {
        let lossy = HandoffSize {
            lossy: true,
            ..small()
        };
        let report = run(variant(lossy, Variant::NoCopyResend));
        assert_eq!(broken(&report), ["every handoff completes"]);
        let trace = actions(&report, "every handoff completes");
        assert_eq!(
            trace.last().unwrap(),
            "the network loses every message in flight",
            "{trace:?}"
        );
        // The trap: no handoff is ever delivered again.
        let trap = verdict(&report, "every handoff completes")
            .trap
            .clone()
            .expect("a liveness violation has a trap");
        assert!(
            trap.iter().all(|step| !step.action.contains("Handoff(")),
            "{trap:?}"
        );
        // Without loss nothing needs resending.
        assert_eq!(passing(variant(small(), Variant::NoCopyResend)), SIZES[1]);
    }

    #[test]
    fn the_variants_together_break_every_safety_and_liveness_property() {
        // "reads see acknowledged writes" by no-forward with a read, the
        // others above.
        let model = HandoffSize::default().into_model().unwrap();
        let mut names: Vec<&str> = spec(&model)
            .checks()
            .into_iter()
            .filter(|(_, kind)| *kind != crate::checker::Kind::Sometimes)
            .map(|(name, _)| name)
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "every handoff completes",
                "no lost keys",
                "one writer per key and epoch",
                "placed once settled",
                "reads see acknowledged writes",
            ]
        );
    }

    #[test]
    fn parameters_select_the_configuration() {
        let params = Params::parse(
            NAME,
            PARAMS,
            &[
                "nodes=4",
                "lossy=true",
                "vnodes=2",
                "variant=write-to-old-owner",
            ],
        )
        .unwrap();
        let size = HandoffSize::from_params(&params).unwrap();
        assert_eq!(
            size,
            HandoffSize {
                nodes: 4,
                lossy: true,
                vnodes: 2,
                variant: Variant::WriteToOldOwner,
                ..HandoffSize::default()
            }
        );
        assert!(Params::parse(NAME, PARAMS, &["variant=nope"]).is_err());
    }

    // Unique states, pinned (verification/REPORT.md, "Ring handoff").
    /// The default: 3 nodes, 1 key, 2 puts and a delete, vnodes=1, replicas=1.
    const DEFAULT: usize = 67_343;
    /// writes=1 with a read; then one put (`small`), with vnodes=2,
    /// replicas=2, keys=2, nodes=4.
    const SIZES: [usize; 6] = [38_119, 1_731, 4_213, 28_333, 7_737, 5_521];
    /// One put with crashes=1; lossy.
    const FAULTS: [usize; 2] = [6_924, 95_782];
}
