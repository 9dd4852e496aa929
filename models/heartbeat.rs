//! `heartbeat`: the failure detector every node runs, against an explicit
//! discrete clock, with crashes and restarts.
//!
//! Timing claims can only be checked against a clock, so this model is a
//! stateright [`Model`] with a global time `now` that advances by a `Tick`
//! action. Each node runs the real timed machine [`Heartbeats`]
//! (src/detector/machine.rs) around the real [`Detector`](crate::detector::Detector)
//! core with a [`FixedTimeout`] estimator, started and driven exactly as
//! `haft node` does it (src/node/mod.rs): `Heartbeats::start` with the
//! incarnation floor `life << 32`, its messages handed to
//! `handle_message`, its timers fired through `handle_timer`. Only the
//! network, the clock and the crashes are the model's.
//!
//! The claims are those of Chandra and Toueg, "Unreliable failure detectors for
//! reliable distributed systems" (JACM 43(2), 1996) — completeness and
//! accuracy — made bounded and per pair of nodes, SWIM's refutation (Das,
//! Gupta and Motivala, DSN 2002, §4.2) and SWIM's rejoin with a higher
//! incarnation, and agreement of the membership views.
//!
//! # System
//!
//! - `nodes` nodes, each monitoring all the others. A node's machine arms a
//!   heartbeat timer of `interval` (H) ticks and a check timer of 1 tick (its
//!   `check_interval`), so its logical clock counts the ticks of its life. The
//!   model fires a timer at the tick it falls due; at a tick every node checks
//!   before anything is delivered, so a message arriving at the same tick comes
//!   too late for that check (the adversarial order, which makes the bounds
//!   tight). A life's first heartbeat leaves H ticks after it starts, with
//!   sequence number 0.
//! - A node suspects a peer silent for `timeout` (T) ticks, tells every node,
//!   and declares the peer Dead after a suspicion timeout S = 2D + 1: just over
//!   the round trip a refutation needs.
//! - The network delivers each message within `delay` (D) ticks, in any order
//!   (`Tick` is disabled while a message is D ticks old), or, when `lossy`, may
//!   drop it (at most `losses` messages in all, if that is set above 0). Messages are not duplicated: heartbeats carry sequence numbers and
//!   SWIM's claims carry incarnations, so a duplicate is a no-op for the core.
//! - Up to `crashes` crashes, each at some tick of the first H; up to
//!   `restarts` of the crashed nodes come back, at any later tick until
//!   H + D + T + S (by then every live node has declared the node Dead). A
//!   life `k` (the first is 1, as the node's coordinator incarnation is) starts
//!   a fresh machine at incarnation floor `k << 32`, which announces itself with
//!   an `Alive` message, and counts its heartbeats from 0 again. A crashed node
//!   receives nothing; what it sent is still delivered.
//! - Time is bounded: states after the horizon are not explored
//!   (`within_boundary`). The horizon leaves room for every deadline below
//!   after the last crash and the last restart: H + D + T + S without
//!   restarts, H + D + 2(T + S) with them.
//!
//! A heartbeat is *timely* if it is delivered less than T − H ticks after it
//! was sent: then the gap between two heartbeats a node takes from one peer
//! stays below T. It is *late* once it has been in flight T − H ticks, and
//! *lost* if dropped. The model keeps these facts per ordered pair, sender to
//! receiver, for the current lives of both, and per life of each sender. The
//! configuration is *synchronous* when D < T − H and nothing is lost: then no
//! heartbeat is ever late.
//!
//! # Properties
//!
//! "Up" means not crashed; a node's *current life* owns the incarnations from
//! its floor on. Every property but the three `sometimes` ones is an `always`
//! property, judged in every state up to the horizon; none uses stateright's
//! `eventually`, which judges only terminal states. Every claim assumes
//! delivery within D (the model's network); the ones marked "without loss"
//! also assume that nothing is lost, and are not claimed when `lossy`.
//!
//! Safety:
//!
//! - `accuracy` (per pair): a node X never raises a suspicion of its own (its
//!   estimator tripping) about the current life of an up node Y unless one of
//!   Y's heartbeats *to X*, in the current lives of both, was late or lost. A
//!   suspicion counts against Y's current life if its incarnation is at least
//!   Y's floor, or if Y's current life began no later than X's (then X never
//!   knew an earlier one). SWIM also spreads suspicions: X may *adopt* one
//!   another node raised; that node then had a late or lost heartbeat from Y,
//!   and `alive within bound` below bounds how long such a relay lasts.
//! - `live nodes are never declared dead` (without loss): no up node holds an
//!   up node Y Dead at an incarnation of Y's current life: refutation always
//!   beats the suspicion timeout.
//!
//! Bounded liveness (response within a bound on the clock: an `always`
//! property that fails in any state where the deadline has passed and the
//! response has not come; a deadline beyond the horizon is not judged):
//!
//! - `completeness`: a node Y down since c is Dead at every up node W from
//!   max(c + D + T + S, start of W's life + T + S) on. (The issue states T + H;
//!   counting from the crash, the crashed node's last heartbeat can still be D
//!   ticks in flight, and SWIM adds the suspicion stage S; a node restarted
//!   after c hears nothing from Y and suspects it T ticks into its life. A test
//!   shows the first bound is tight.)
//! - `alive within bound`: if no heartbeat of an up node Y's current life was
//!   late or lost (to any node), every up node X holds Y Alive at an
//!   incarnation of Y's current life from B = H + min(D, T − H − 1) + 1 ticks
//!   after the later of the two lives' starts on: the first heartbeat of the
//!   later life leaves within H ticks, arrives in time, and is taken by the
//!   next tick, which takes a restarted node back even if its announcement was
//!   lost. Assumes only what it states, so it is claimed with loss too. (With
//!   loss and a restart it found that the detector judged a new life's
//!   heartbeats stale by the old life's sequence numbers when the announcement
//!   did not arrive first; fixed in src/detector/mod.rs.) A test shows B is
//!   tight.
//! - `agreement`: if one *settled* up node holds Y Dead and another does
//!   not, the disagreement is over within D ticks: everyone declares Y Dead
//!   too, or Y refutes, or a new life of Y is taken back by all. A node is
//!   settled in its first life, or T + S ticks after it restarted (a fresh
//!   detector needs that long to declare a silent peer Dead). A node that
//!   ignored Y's refutation, or Y's new life, while another took it would keep
//!   the disagreement going, and the property fails. A test shows D is tight
//!   (a new life's announcement reaches one node D ticks before another).
//!
//!   With loss, agreement can only come once the loss stops: the bound is
//!   H + 3D ticks after the later of the disagreement's start and the last
//!   loss during it (a loss restarts the clock). If Y is up, its next
//!   heartbeat leaves within H and reaches the node holding it Dead within
//!   D; that node, seeing Y beat at the incarnation it holds Dead, tells it
//!   the suspicion again (the remind), Y refutes, and the refutation arrives:
//!   3D in all. If Y is down, the others reach Dead by the completeness
//!   deadline, at most H + D after the earliest Dead (T + S into the first
//!   life, with every crash by H). This found the defect the remind fixes: a
//!   Suspect lost on its way to Y (and to the third node) left Y Dead at one
//!   node for ever and Alive at the other (the `no-remind` variant). Two
//!   nodes cannot disagree (each peer has one observer), and three nodes on
//!   an unbounded lossy network are beyond a unit test (over 8 million states
//!   in a minute), so it is checked with `losses` set.
//!
//! Under synchrony (D < T − H, no loss):
//!
//! - `no false suspicion`: no up node holds an up node's current life Suspect
//!   or Dead. (Not synchronous, `false suspicion refuted` takes its place.)
//!
//! Non-vacuity (`sometimes`):
//!
//! - `crash detected` (with a crash): some down node is Dead at every up node;
//! - `restart taken back` (with a restart): a restarted node is Alive, at its
//!   new life's incarnation, at every up node;
//! - `false suspicion refuted` (when not synchronous): a suspicion of an up
//!   node's current life was cleared by its refutation.
//!
//! Nothing is dropped silently: a claim the configuration cannot judge (`live
//! nodes are never declared dead` with `lossy`, `completeness` and `crash detected` without a
//! crash, `restart taken back` without a restart) is reported as not judged,
//! with the reason, and `haft check` exits 3 rather than 0.
//!
//! Liveness here is bounded: a deadline on the model's clock, checked as an
//! `always` property, which fails in the first state past the deadline. The
//! checker's AG EF liveness does not apply: time is bounded by the horizon,
//! and every path reaches it, so a state from which the goal is unreachable
//! still reaches the boundary, and AG EF could only answer "holds" or
//! "unknown", never "violated".
//!
//! # Variants
//!
//! Each is a wrapper on the model side; production code has no variant flag.
//!
//! - `no-refute`: a suspected node ignores the suspicion → breaks `live nodes
//!   are never declared dead` (and `false suspicion refuted` is never seen);
//! - `timeout-too-short`: the detector runs with T = H → breaks `accuracy`;
//! - `no-incarnation`: the suspected node answers without raising its
//!   incarnation, so its answer is indistinguishable from the stale claim it
//!   refutes and is ignored → breaks `live nodes are never declared dead`;
//! - `stale-incarnation` (issue 10, defect 3): a receiver drops every
//!   heartbeat whose sequence number is at most the highest it ever took from
//!   that sender, in any incarnation — what the detector did before issue 10,
//!   when its revive path kept the old life's last sequence number and
//!   staleness was judged across incarnations. A restarted node's new
//!   heartbeats, counting from 0 again, are dropped although they arrive in
//!   time, so it is suspected again and again → breaks `alive within bound`
//!   (and `accuracy`);
//! - `dead-is-forever`: a node that has declared a peer Dead ignores every
//!   later message from it, the refutation of a new life included, while the
//!   nodes that had not yet declared it Dead take the new life back → breaks
//!   `agreement` (and `alive within bound`);
//! - `reused-incarnation`: every life starts at the first life's incarnation
//!   floor (the life counter is not kept across restarts), so peers that hold
//!   the old life Dead, or its sequence numbers, never take the new one back →
//!   breaks `alive within bound` and `live nodes are never declared dead`
//!   (and `accuracy`, as the old life's suspicions now count against the new).
//! - `check-not-rearmed`: the machine's check timer is not armed again after
//!   it fires, so the estimators run once → breaks `completeness` (and
//!   `crash detected` is never seen).
//! - `no-remind`: the detector before the remind fix — a heartbeat at the
//!   suspected incarnation of a suspected or Dead peer is taken silently (the
//!   model drops the machine's Suspect answer to a heartbeat) → breaks
//!   `agreement` under loss. Without loss the suspect hears every suspicion
//!   directly, so `haft check` refuses it there (exit 2) and names
//!   `-p lossy=true -p losses=3 -p delay=0 -p timeout=3 -p crashes=0
//!   -p restarts=0`, where it is refuted in seconds.
//!
//! The default size is synchronous, where no live node is ever suspected: there
//! `no-refute` and `no-incarnation` are harmless, and `haft check` refuses them
//! (exit 2) with the parameters that show them, D = T − H:
//! `haft check heartbeat -p nodes=2 -p timeout=3 -p variant=no-refute`. A
//! default of three nodes at D = T − H was tried: it exceeds a minute.
//!
//! # Symmetry
//!
//! The nodes are interchangeable here (each monitors all the others with the
//! same timers, and a crash or restart may hit any of them), so a reduction
//! over renamings of nodes would be sound. It is not built: this is not an
//! actor model (the detector's state would need its own renaming hook), and
//! the default size (824,448 states) is checked in about a second and a half.
//! `--symmetry` is refused.
//!
//! # Not covered
//!
//! - Only the fixed-timeout estimator. Phi accrual (src/detector/estimator.rs)
//!   reads real inter-arrival times; it is checked against its closed form by
//!   unit tests, not here.
//! - Node speeds: every node's check timer fires at every tick, so logical
//!   clocks run at the same rate; a paused node (SIGSTOP) is not modelled,
//!   only a crash.
//! - A message addressed to a node's earlier life is discarded when it
//!   crashes; in a real network it could reach the next life. Nothing such a
//!   message says matters to a fresh detector beyond what the next heartbeats
//!   say.
//! - Duplication, and the rest of the node (commit, routing): the node model
//!   covers those.

use std::fmt;

use stateright::{Model, Property};

use super::harness::{self, CheckOptions, CheckReport, PropertyReport};
use super::params::{ParamError, ParamKind, ParamSpec, Params};
use crate::checker::{Spec, Status as Verdict};
use crate::detector::machine::{DetectorOutput, DetectorTimer, HeartbeatTiming, Heartbeats};
use crate::detector::{DetectorConfig, FixedTimeout, Message, Millis, NodeId, PeerState, Status};
use crate::output::TimerOp;

/// The model's name in `haft check`.
pub const NAME: &str = "heartbeat";

/// Parameters of `heartbeat`.
pub const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "nodes",
        default: "3",
        kind: ParamKind::Int { min: 2, max: 4 },
        help: "nodes, each monitoring all the others",
    },
    ParamSpec {
        name: "interval",
        default: "2",
        kind: ParamKind::Int { min: 1, max: 4 },
        help: "H: ticks between two heartbeats of a node",
    },
    ParamSpec {
        name: "timeout",
        default: "4",
        kind: ParamKind::Int { min: 1, max: 8 },
        help: "T: ticks of silence before a peer is suspected",
    },
    ParamSpec {
        name: "delay",
        default: "1",
        kind: ParamKind::Int { min: 0, max: 3 },
        help: "D: a message is delivered within D ticks (or lost, if lossy)",
    },
    ParamSpec {
        name: "lossy",
        default: "false",
        kind: ParamKind::Bool,
        help: "the network may drop any message",
    },
    ParamSpec {
        name: "losses",
        default: "0",
        kind: ParamKind::Int { min: 0, max: 8 },
        help: "with lossy, at most this many messages are dropped (0: no bound)",
    },
    ParamSpec {
        name: "crashes",
        default: "1",
        kind: ParamKind::Int { min: 0, max: 2 },
        help: "at most this many crashes, each within the first H ticks (at most nodes - 1)",
    },
    ParamSpec {
        name: "restarts",
        default: "1",
        kind: ParamKind::Int { min: 0, max: 2 },
        help: "at most this many restarts of crashed nodes, each in a new life (at most crashes)",
    },
    ParamSpec {
        name: "variant",
        default: "correct",
        kind: ParamKind::Choice(&[
            "correct",
            "no-refute",
            "timeout-too-short",
            "no-incarnation",
            "stale-incarnation",
            "dead-is-forever",
            "reused-incarnation",
            "check-not-rearmed",
            "no-remind",
        ]),
        help: "correct, or a known bug the checker must refute",
    },
];

/// Which detector the nodes run: the real one, or the real one behind a
/// model-side wrapper that reproduces a known bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// The detector as built.
    Correct,
    /// A suspected node never answers, so a suspicion is never cleared.
    NoRefute,
    /// The detector times out after H ticks (T ≤ H).
    TimeoutTooShort,
    /// A suspected node answers at its current incarnation instead of raising it.
    NoIncarnation,
    /// Heartbeats at or below the highest sequence number ever taken from the
    /// sender, in any incarnation, are dropped (issue 10, defect 3).
    StaleIncarnation,
    /// A peer declared Dead is never heard again, whatever its incarnation.
    DeadIsForever,
    /// Every life starts at the first life's incarnation floor.
    ReusedIncarnation,
    /// The check timer is not armed again once it has fired: the estimators
    /// run once, at the first tick of a life.
    CheckNotRearmed,
    /// A heartbeat at the suspected incarnation of a suspected or Dead peer
    /// is taken without telling the peer the suspicion again: the detector
    /// before the remind fix.
    NoRemind,
}

impl Variant {
    /// Whether the bug shows only once a live node is suspected, which never
    /// happens in a synchronous configuration.
    pub fn needs_false_suspicion(self) -> bool {
        matches!(self, Variant::NoRefute | Variant::NoIncarnation)
    }
}

/// A message in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Envelope {
    /// When it was sent.
    pub sent: Millis,
    /// The sender.
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// The message.
    pub message: Message,
}

/// A node's detector while it is up: the machine and its armed timers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Running {
    /// The machine every node runs.
    pub machine: Heartbeats<FixedTimeout>,
    /// When the heartbeat timer fires, if armed.
    pub heartbeat_due: Option<Millis>,
    /// When the check timer fires, if armed.
    pub check_due: Option<Millis>,
}

/// One node across its lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Host {
    /// Lives started so far, the current one included (the node's coordinator
    /// incarnation: 1 in the first life).
    pub life: u64,
    /// The incarnation floor the current (or last) life started at.
    pub floor: u64,
    /// When the current (or last) life started.
    pub started: Millis,
    /// The running detector; `None` while crashed.
    pub running: Option<Running>,
    /// When it crashed, while it is down.
    pub down_since: Option<Millis>,
    /// Some heartbeat of the current life, to any node, was late or lost.
    pub late_or_lost: bool,
}

/// What the model tracks for one ordered pair of nodes, sender to receiver,
/// over the current lives of both (ghost state: no node reads it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Link {
    /// A heartbeat on this link was late or lost.
    pub late_or_lost: bool,
    /// The receiver raised a suspicion (its own estimator tripped) about the
    /// sender's current life.
    pub raised: bool,
    /// `stale-incarnation` only: the highest heartbeat sequence number the
    /// receiver's detector ever took from the sender, in any of the sender's
    /// lives — the old revive path's memory. `None` in every other variant.
    pub stale_floor: Option<u64>,
}

/// A state of the timed system.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HeartbeatState {
    /// The global clock.
    pub now: Millis,
    /// Each node, by node id.
    pub hosts: Vec<Host>,
    /// Messages in flight, sorted (a multiset).
    pub network: Vec<Envelope>,
    /// Per ordered pair `from * nodes + to`.
    pub links: Vec<Link>,
    /// Per node Y: since when settled up nodes have disagreed on whether Y is
    /// Dead (see `agreement`), if they do; a loss during the disagreement
    /// moves it to the time of the loss.
    pub disagreement: Vec<Option<Millis>>,
    /// Crashes so far.
    pub crashes: u8,
    /// Restarts so far.
    pub restarts: u8,
    /// Messages dropped so far, counted only when the model bounds them.
    pub losses: u8,
    /// Some suspicion of an up node's current life was cleared by a refutation.
    pub refuted: bool,
}

fn node_id(index: usize) -> NodeId {
    NodeId(index as u16)
}

fn index(node: NodeId) -> usize {
    usize::from(node.0)
}

/// An incarnation as `life.count`: the floor's life, then the raises above it.
fn incarnation(value: u64) -> String {
    format!("{}.{}", value >> 32, value & u64::from(u32::MAX))
}

impl HeartbeatState {
    fn ids(&self) -> impl Iterator<Item = NodeId> + use<> {
        (0..self.hosts.len()).map(node_id)
    }

    /// The node `node`.
    pub fn host(&self, node: NodeId) -> &Host {
        &self.hosts[index(node)]
    }

    /// Whether `node` is up.
    pub fn is_up(&self, node: NodeId) -> bool {
        self.host(node).running.is_some()
    }

    /// What `observer` believes about `peer`, if `observer` is up.
    pub fn view(&self, observer: NodeId, peer: NodeId) -> Option<&PeerState<FixedTimeout>> {
        let running = self.host(observer).running.as_ref()?;
        running.machine.detector().peer(peer)
    }

    /// The status `observer` holds for `peer`, if `observer` is up.
    pub fn status(&self, observer: NodeId, peer: NodeId) -> Option<Status> {
        self.view(observer, peer).map(|p| p.status)
    }

    /// The link from `from` to `to`.
    pub fn link(&self, from: NodeId, to: NodeId) -> &Link {
        &self.links[index(from) * self.hosts.len() + index(to)]
    }

    fn link_mut(&mut self, from: NodeId, to: NodeId) -> &mut Link {
        let nodes = self.hosts.len();
        &mut self.links[index(from) * nodes + index(to)]
    }

    /// Ordered pairs of distinct up nodes `(observer, peer)`.
    fn up_pairs(&self) -> impl Iterator<Item = (NodeId, NodeId)> + '_ {
        self.ids()
            .flat_map(move |x| self.ids().map(move |y| (x, y)))
            .filter(|(x, y)| x != y && self.is_up(*x) && self.is_up(*y))
    }

    /// Whether `observer`'s belief at `incarnation` concerns `peer`'s current
    /// life: the incarnation is at least the life's floor, or the life began no
    /// later than the observer's (so the observer knows no earlier one).
    fn about_current_life(&self, observer: NodeId, peer: NodeId, incarnation: u64) -> bool {
        let peer_host = self.host(peer);
        incarnation >= peer_host.floor || peer_host.started <= self.host(observer).started
    }

    /// Whether `observer` holds `peer` Alive at an incarnation of its current life.
    pub fn alive_in_current_life(&self, observer: NodeId, peer: NodeId) -> bool {
        self.view(observer, peer).is_some_and(|view| {
            view.status == Status::Alive && view.incarnation >= self.host(peer).floor
        })
    }
}

/// Written as a record, so that a trace shows what each step changed:
/// `HeartbeatState { t: 5, n0: Up { life: 2, inc: 2.0, view: {n1: A/0.0,
/// n2: S@4/1.0} }, n1: Down { since: 1 }, in_flight: 2 }`. A view holds a
/// status (`A`live, `S`uspect since a global time, `D`ead) at an incarnation
/// written `life.raises`.
impl fmt::Debug for HeartbeatState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HeartbeatState {{ t: {}", self.now)?;
        for id in self.ids() {
            let host = self.host(id);
            let Some(running) = &host.running else {
                let since = host.down_since.unwrap_or(host.started);
                write!(f, ", {id:?}: Down {{ since: {since} }}")?;
                continue;
            };
            let detector = running.machine.detector();
            write!(
                f,
                ", {id:?}: Up {{ life: {}, inc: {}, view: {{",
                host.life,
                incarnation(detector.incarnation())
            )?;
            for (i, peer) in detector.peers().enumerate() {
                let sep = if i == 0 { "" } else { ", " };
                if let Some(state) = detector.peer(peer) {
                    let status = match state.status {
                        Status::Alive => "A".to_string(),
                        // `since` is on the node's clock; print global time.
                        Status::Suspect { since } => format!("S@{}", host.started + since),
                        Status::Dead => "D".to_string(),
                    };
                    write!(
                        f,
                        "{sep}{peer:?}: {status}/{}",
                        incarnation(state.incarnation)
                    )?;
                }
            }
            f.write_str("} }")?;
        }
        write!(f, ", in_flight: {} }}", self.network.len())
    }
}

/// A message, briefly.
struct Brief<'a>(&'a Message);

impl fmt::Display for Brief<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self.0 {
            Message::Heartbeat {
                incarnation: inc,
                sequence,
            } => write!(f, "Heartbeat(inc {}, seq {sequence})", incarnation(inc)),
            Message::Suspect {
                peer,
                incarnation: inc,
            } => write!(f, "Suspect({peer:?} at {})", incarnation(inc)),
            Message::Alive { incarnation: inc } => write!(f, "Alive(inc {})", incarnation(inc)),
        }
    }
}

/// The model's actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeartbeatAction {
    /// The clock advances one tick; every up node's due timers fire.
    Tick,
    /// The network delivers a message.
    Deliver(Envelope),
    /// The network drops a message (lossy only).
    Drop(Envelope),
    /// A node crashes.
    Crash(NodeId),
    /// A crashed node starts its next life.
    Restart(NodeId),
}

impl fmt::Display for HeartbeatAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeartbeatAction::Tick => f.write_str("Tick"),
            HeartbeatAction::Deliver(e) => write!(
                f,
                "Deliver {:?}→{:?} {} (sent t={})",
                e.from,
                e.to,
                Brief(&e.message),
                e.sent
            ),
            HeartbeatAction::Drop(e) => write!(
                f,
                "Drop {:?}→{:?} {} (sent t={})",
                e.from,
                e.to,
                Brief(&e.message),
                e.sent
            ),
            HeartbeatAction::Crash(node) => write!(f, "Crash({node:?})"),
            HeartbeatAction::Restart(node) => write!(f, "Restart({node:?})"),
        }
    }
}

/// The timed heartbeat system.
#[derive(Clone, Debug)]
pub struct HeartbeatModel {
    /// Number of nodes.
    pub nodes: usize,
    /// H.
    pub interval: Millis,
    /// T, as configured (the `timeout-too-short` variant runs with H instead;
    /// every claim uses T).
    pub timeout: Millis,
    /// D.
    pub delay: Millis,
    /// Whether messages may be lost.
    pub lossy: bool,
    /// With `lossy`, at most this many messages are dropped; `None`: no bound.
    pub losses: Option<u8>,
    /// How many crashes may happen.
    pub crashes: u8,
    /// How many restarts may happen.
    pub restarts: u8,
    /// Which detector runs.
    pub variant: Variant,
    /// The completeness deadline after a crash: D + T + S. A field, so that a
    /// test can claim one tick less and see the claim refuted.
    pub completeness_bound: Millis,
    /// B of `alive within bound`: H + min(D, T − H − 1) + 1.
    pub alive_bound: Millis,
    /// How long settled nodes may disagree on whether a node is Dead: D.
    pub agreement_bound: Millis,
}

impl HeartbeatModel {
    /// The correct detector on `nodes` nodes with the given H, T and D, no
    /// loss, no crash. T must exceed H.
    pub fn new(nodes: usize, interval: Millis, timeout: Millis, delay: Millis) -> HeartbeatModel {
        let suspicion = 2 * delay + 1;
        HeartbeatModel {
            nodes,
            interval,
            timeout,
            delay,
            lossy: false,
            losses: None,
            crashes: 0,
            restarts: 0,
            variant: Variant::Correct,
            completeness_bound: delay + timeout + suspicion,
            alive_bound: interval + delay.min(timeout.saturating_sub(interval + 1)) + 1,
            agreement_bound: delay,
        }
    }

    /// The same system with up to `crashes` crashes and `restarts` restarts.
    pub fn with_faults(mut self, crashes: u8, restarts: u8) -> HeartbeatModel {
        self.crashes = crashes;
        self.restarts = restarts;
        self
    }

    /// The same system on a network that may drop any message: settled nodes
    /// may then disagree for up to H + 3D ticks after the later of the
    /// disagreement's start and the last loss.
    pub fn lossy(mut self) -> HeartbeatModel {
        self.lossy = true;
        self.agreement_bound = self.interval + 3 * self.delay;
        self
    }

    /// The same lossy system with at most `losses` messages dropped.
    pub fn with_losses(mut self, losses: u8) -> HeartbeatModel {
        self.losses = Some(losses);
        self
    }

    /// The same system running `variant`.
    pub fn with_variant(mut self, variant: Variant) -> HeartbeatModel {
        self.variant = variant;
        self
    }

    /// Builds the model from checked parameters. A correct detector with T ≤ H
    /// is refused, as that is the `timeout-too-short` variant; so are more
    /// crashes than leave one node up, and more restarts than crashes.
    pub fn from_params(params: &Params) -> Result<HeartbeatModel, ParamError> {
        let variant = match params.choice("variant") {
            "no-refute" => Variant::NoRefute,
            "timeout-too-short" => Variant::TimeoutTooShort,
            "no-incarnation" => Variant::NoIncarnation,
            "stale-incarnation" => Variant::StaleIncarnation,
            "dead-is-forever" => Variant::DeadIsForever,
            "reused-incarnation" => Variant::ReusedIncarnation,
            "check-not-rearmed" => Variant::CheckNotRearmed,
            "no-remind" => Variant::NoRemind,
            _ => Variant::Correct,
        };
        let (interval, timeout) = (params.int("interval"), params.int("timeout"));
        if timeout <= interval {
            return Err(params.combination_error(format!(
                "timeout={timeout} must exceed interval={interval}, or every peer is suspected \
                 between two heartbeats; to see that happen, keep timeout > interval and use \
                 variant=timeout-too-short, which runs the detector with T = H against the \
                 claims made for the given timeout"
            )));
        }
        let nodes = params.usize("nodes");
        let (crashes, restarts) = (params.int("crashes"), params.int("restarts"));
        if crashes >= nodes as u64 {
            return Err(params.combination_error(format!(
                "crashes={crashes} would leave no node up among nodes={nodes}; use at most {}",
                nodes - 1
            )));
        }
        if restarts > crashes {
            return Err(params.combination_error(format!(
                "restarts={restarts} exceeds crashes={crashes}: only a crashed node restarts; \
                 raise crashes or lower restarts"
            )));
        }
        let mut model = HeartbeatModel::new(nodes, interval, timeout, params.int("delay"))
            .with_faults(crashes as u8, restarts as u8)
            .with_variant(variant);
        if params.bool("lossy") {
            model = model.lossy();
            let losses = params.int("losses");
            if losses > 0 {
                model = model.with_losses(losses as u8);
            }
        }
        if variant.needs_false_suspicion() && model.synchronous() {
            return Err(params.combination_error(format!(
                "variant={} goes wrong only once a live node is suspected, and with \
                 delay < timeout - interval and no loss none ever is, so nothing here could \
                 refute it; add -p nodes=2 -p timeout=3 (delay = timeout - interval) or \
                 -p nodes=2 -p lossy=true",
                params.choice("variant")
            )));
        }
        if variant == Variant::NoRemind && !model.lossy {
            return Err(params.combination_error(
                "variant=no-remind goes wrong only once a Suspect is lost: without loss the \
                 suspect hears every suspicion of itself directly, so nothing here could refute \
                 it; add -p lossy=true -p losses=3 -p delay=0 -p timeout=3 -p crashes=0 \
                 -p restarts=0"
                    .to_string(),
            ));
        }
        Ok(model)
    }

    /// S: how long a suspicion lasts before the peer is declared Dead.
    pub fn suspicion_timeout(&self) -> Millis {
        2 * self.delay + 1
    }

    /// The timeout the detectors actually run with.
    pub fn effective_timeout(&self) -> Millis {
        match self.variant {
            Variant::TimeoutTooShort => self.interval,
            _ => self.timeout,
        }
    }

    /// How long a restarted node takes to become settled for `agreement`, and
    /// to declare a silent peer Dead: T + S.
    pub fn settle_time(&self) -> Millis {
        self.timeout + self.suspicion_timeout()
    }

    /// The last tick at which a node may crash: H.
    pub fn last_crash(&self) -> Millis {
        self.interval
    }

    /// The last tick at which a node may restart: H + D + T + S, when every up
    /// node has declared a node that crashed at H Dead.
    pub fn last_restart(&self) -> Millis {
        self.last_crash() + self.completeness_bound
    }

    /// The last tick explored: the completeness deadline of the last crash,
    /// and with restarts T + S more after the last restart; with loss and
    /// three nodes or more, the agreement bound and one tick more, so that a
    /// disagreement that starts by then is judged (two nodes cannot disagree:
    /// each peer has one observer).
    pub fn horizon(&self) -> Millis {
        let faults = if self.restarts > 0 {
            self.last_restart() + self.settle_time()
        } else {
            self.last_crash() + self.completeness_bound
        };
        if self.lossy && self.nodes > 2 {
            faults + self.agreement_bound + 1
        } else {
            faults
        }
    }

    /// Whether D < T − H and nothing is lost: then no heartbeat is ever late.
    pub fn synchronous(&self) -> bool {
        !self.lossy && self.delay + self.interval < self.timeout
    }

    fn ids(&self) -> impl Iterator<Item = NodeId> + use<> {
        (0..self.nodes).map(node_id)
    }

    /// Starts a life of `node` at `now`, as the node does: a fresh machine at
    /// the life's floor. Returns the machine's first output (its announcement
    /// and timers), for the caller to carry out.
    fn start(&self, state: &mut HeartbeatState, node: NodeId) -> DetectorOutput {
        let estimator =
            FixedTimeout::new(self.effective_timeout()).expect("T and H are at least 1 tick");
        let peers: Vec<NodeId> = self.ids().collect();
        let host = &mut state.hosts[index(node)];
        host.floor = match self.variant {
            Variant::ReusedIncarnation => 1 << 32,
            _ => host.life << 32,
        };
        host.started = state.now;
        host.down_since = None;
        host.late_or_lost = false;
        let mut out = DetectorOutput::at(0);
        let machine = Heartbeats::start(
            node,
            &peers,
            estimator,
            DetectorConfig {
                suspicion_timeout: self.suspicion_timeout(),
            },
            HeartbeatTiming {
                heartbeat_interval: self.interval,
                check_interval: 1,
            },
            host.floor,
            &mut out,
        )
        .expect("the timings were checked when the model was built");
        host.running = Some(Running {
            machine,
            heartbeat_due: None,
            check_due: None,
        });
        out
    }

    fn tick(&self, state: &mut HeartbeatState) {
        state.now += 1;
        let now = state.now;
        // A heartbeat still in flight T − H ticks after it was sent is late:
        // the gap to the previous one may now reach T before it arrives.
        let late: Vec<Envelope> = state
            .network
            .iter()
            .filter(|e| {
                matches!(e.message, Message::Heartbeat { .. })
                    && now - e.sent + self.interval >= self.timeout
            })
            .copied()
            .collect();
        for envelope in late {
            mark_late_or_lost(state, &envelope);
        }
        for node in self.ids() {
            let Some(running) = state.hosts[index(node)].running.as_mut() else {
                continue;
            };
            let check_due = running.check_due == Some(now);
            let heartbeat_due = running.heartbeat_due == Some(now);
            if check_due {
                let before: Vec<(NodeId, Status)> = {
                    let detector = running.machine.detector();
                    detector
                        .peers()
                        .filter_map(|p| detector.status(p).map(|s| (p, s)))
                        .collect()
                };
                let mut out = DetectorOutput::at(0);
                running.machine.handle_timer(DetectorTimer::Check, &mut out);
                // The suspicions this check raised itself (not adopted ones).
                let raised: Vec<(NodeId, u64)> = before
                    .into_iter()
                    .filter(|(_, status)| *status == Status::Alive)
                    .filter_map(|(peer, _)| {
                        let view = running.machine.detector().peer(peer)?;
                        matches!(view.status, Status::Suspect { .. })
                            .then_some((peer, view.incarnation))
                    })
                    .collect();
                self.carry_out(state, node, out);
                for (peer, inc) in raised {
                    if state.is_up(peer) && state.about_current_life(node, peer, inc) {
                        state.link_mut(peer, node).raised = true;
                    }
                }
            }
            if heartbeat_due {
                if let Some(running) = state.hosts[index(node)].running.as_mut() {
                    let mut out = DetectorOutput::at(0);
                    running
                        .machine
                        .handle_timer(DetectorTimer::Heartbeat, &mut out);
                    self.carry_out(state, node, out);
                }
            }
        }
    }

    fn deliver(&self, state: &mut HeartbeatState, envelope: Envelope) {
        let Envelope {
            from, to, message, ..
        } = envelope;
        if let Message::Heartbeat { .. } = message {
            if state.now - envelope.sent + self.interval >= self.timeout {
                mark_late_or_lost(state, &envelope);
            }
        }
        let stale_floor = state.link(from, to).stale_floor;
        let sender_floor = state.host(from).floor;
        let nodes = state.hosts.len();
        let Some(running) = state.hosts[index(to)].running.as_mut() else {
            return;
        };
        let before = running.machine.detector().peer(from).cloned();
        let own = running.machine.detector().incarnation();
        let mut out = DetectorOutput::at(0);
        match (self.variant, message) {
            (Variant::NoRefute, Message::Suspect { peer, .. }) if peer == to => {}
            (Variant::NoIncarnation, Message::Suspect { peer, incarnation })
                if peer == to && incarnation >= own =>
            {
                for other in (0..nodes).map(node_id).filter(|n| *n != to) {
                    out.send(other, Message::Alive { incarnation: own });
                }
            }
            (Variant::StaleIncarnation, Message::Heartbeat { sequence, .. })
                if stale_floor.is_some_and(|floor| sequence <= floor) => {}
            (Variant::DeadIsForever, _)
                if before.as_ref().is_some_and(|p| p.status == Status::Dead) => {}
            (Variant::NoRemind, Message::Heartbeat { .. }) => {
                running.machine.handle_message(from, message, &mut out);
                // A heartbeat's only answer is the remind: drop it.
                out.send_now
                    .retain(|(_, m)| !matches!(m, Message::Suspect { .. }));
            }
            _ => running.machine.handle_message(from, message, &mut out),
        }
        let after = running.machine.detector().peer(from).cloned();
        if let (Some(before), Some(after)) = (before, after) {
            if matches!(before.status, Status::Suspect { .. })
                && after.status == Status::Alive
                && before.incarnation >= sender_floor
            {
                state.refuted = true;
            }
            if self.variant == Variant::StaleIncarnation {
                if let Some(taken) = after.last_sequence {
                    let link = state.link_mut(from, to);
                    link.stale_floor = Some(link.stale_floor.map_or(taken, |f| f.max(taken)));
                }
            }
        }
        self.carry_out(state, to, out);
    }

    fn crash(&self, state: &mut HeartbeatState, node: NodeId) {
        let host = &mut state.hosts[index(node)];
        host.running = None;
        host.down_since = Some(state.now);
        host.late_or_lost = false;
        // A crashed node receives nothing; what it sent is still in flight.
        state.network.retain(|e| e.to != node);
        // Its links start afresh with its next life, except what its peers'
        // detectors remember of it (`stale-incarnation`).
        for other in self.ids() {
            let outgoing = state.link_mut(node, other);
            *outgoing = Link {
                stale_floor: outgoing.stale_floor,
                ..Link::default()
            };
            *state.link_mut(other, node) = Link::default();
        }
        state.crashes += 1;
    }

    fn restart(&self, state: &mut HeartbeatState, node: NodeId) {
        state.hosts[index(node)].life += 1;
        let out = self.start(state, node);
        self.carry_out(state, node, out);
        state.restarts += 1;
    }

    /// Whether `node` is settled: up, and in its first life or up for T + S.
    fn settled(&self, state: &HeartbeatState, node: NodeId) -> bool {
        let host = state.host(node);
        host.running.is_some() && (host.life == 1 || state.now >= host.started + self.settle_time())
    }

    fn update_disagreement(&self, state: &mut HeartbeatState) {
        for peer in self.ids() {
            let (mut dead, mut member) = (false, false);
            for observer in self.ids().filter(|o| *o != peer) {
                if !self.settled(state, observer) {
                    continue;
                }
                match state.status(observer, peer) {
                    Some(Status::Dead) => dead = true,
                    Some(_) => member = true,
                    None => {}
                }
            }
            let since = &mut state.disagreement[index(peer)];
            *since = if dead && member {
                Some(since.unwrap_or(state.now))
            } else {
                None
            };
        }
    }

    /// Carries out a machine's output: its messages go on the network (to up
    /// nodes; a down node receives nothing), its timers are armed.
    fn carry_out(&self, state: &mut HeartbeatState, from: NodeId, out: DetectorOutput) {
        // The detector persists nothing, so nothing waits for a save.
        for (to, message) in out.send_now.into_iter().chain(out.send_after_persist) {
            if to == from || !state.is_up(to) {
                continue;
            }
            let envelope = Envelope {
                sent: state.now,
                from,
                to,
                message,
            };
            let at = state.network.partition_point(|e| *e < envelope);
            state.network.insert(at, envelope);
        }
        let now = state.now;
        let Some(running) = state.hosts[index(from)].running.as_mut() else {
            return;
        };
        for op in out.timers {
            if self.variant == Variant::CheckNotRearmed
                && matches!(
                    op,
                    TimerOp::Set {
                        timer: DetectorTimer::Check,
                        ..
                    }
                )
                && running.check_due.is_some()
            {
                // `check-not-rearmed`: the first arming (at start) stands, no later one.
                running.check_due = None;
                continue;
            }
            let (timer, due) = match op {
                // The detector's timers are fixed periods (an empty range): one
                // ms is one tick.
                TimerOp::Set { timer, after } => {
                    let ticks = Millis::try_from(after.start.as_millis()).unwrap_or(Millis::MAX);
                    (timer, Some(now.saturating_add(ticks)))
                }
                TimerOp::Cancel(timer) => (timer, None),
            };
            match timer {
                DetectorTimer::Heartbeat => running.heartbeat_due = due,
                DetectorTimer::Check => running.check_due = due,
            }
        }
    }
}

/// Marks a heartbeat as late or lost, against its link and its sender's life,
/// if it was sent in the sender's current life.
fn mark_late_or_lost(state: &mut HeartbeatState, envelope: &Envelope) {
    if !matches!(envelope.message, Message::Heartbeat { .. }) {
        return;
    }
    let sender = &mut state.hosts[index(envelope.from)];
    if sender.running.is_none() || envelope.sent < sender.started {
        return;
    }
    sender.late_or_lost = true;
    state.link_mut(envelope.from, envelope.to).late_or_lost = true;
}

impl Model for HeartbeatModel {
    type State = HeartbeatState;
    type Action = HeartbeatAction;

    fn init_states(&self) -> Vec<HeartbeatState> {
        let mut state = HeartbeatState {
            now: 0,
            hosts: vec![
                Host {
                    life: 1,
                    floor: 0,
                    started: 0,
                    running: None,
                    down_since: None,
                    late_or_lost: false,
                };
                self.nodes
            ],
            network: Vec::new(),
            links: vec![Link::default(); self.nodes * self.nodes],
            disagreement: vec![None; self.nodes],
            crashes: 0,
            restarts: 0,
            losses: 0,
            refuted: false,
        };
        // Every node is up from 0 on: start them all, then carry out their
        // first outputs, so that each announcement reaches every other node.
        let outputs: Vec<(NodeId, DetectorOutput)> = self
            .ids()
            .map(|node| (node, self.start(&mut state, node)))
            .collect();
        for (node, out) in outputs {
            self.carry_out(&mut state, node, out);
        }
        vec![state]
    }

    fn actions(&self, state: &HeartbeatState, actions: &mut Vec<HeartbeatAction>) {
        // Time may pass only while no message is overdue: delivery within D.
        if state
            .network
            .iter()
            .all(|e| state.now - e.sent < self.delay)
        {
            actions.push(HeartbeatAction::Tick);
        }
        let mut previous = None;
        for envelope in &state.network {
            // Identical envelopes are one choice.
            if previous == Some(envelope) {
                continue;
            }
            previous = Some(envelope);
            actions.push(HeartbeatAction::Deliver(*envelope));
            if self.lossy && self.losses.is_none_or(|bound| state.losses < bound) {
                actions.push(HeartbeatAction::Drop(*envelope));
            }
        }
        let up = state.ids().filter(|n| state.is_up(*n)).count();
        if state.crashes < self.crashes && state.now <= self.last_crash() && up > 1 {
            actions.extend(
                state
                    .ids()
                    .filter(|n| state.is_up(*n))
                    .map(HeartbeatAction::Crash),
            );
        }
        if state.restarts < self.restarts && state.now <= self.last_restart() {
            actions.extend(
                state
                    .ids()
                    .filter(|n| {
                        state
                            .host(*n)
                            .down_since
                            .is_some_and(|since| since < state.now)
                    })
                    .map(HeartbeatAction::Restart),
            );
        }
    }

    fn next_state(
        &self,
        state: &HeartbeatState,
        action: HeartbeatAction,
    ) -> Option<HeartbeatState> {
        let mut next = state.clone();
        match action {
            HeartbeatAction::Tick => self.tick(&mut next),
            HeartbeatAction::Deliver(envelope) | HeartbeatAction::Drop(envelope) => {
                let at = next.network.binary_search(&envelope).ok()?;
                next.network.remove(at);
                if let HeartbeatAction::Deliver(_) = action {
                    self.deliver(&mut next, envelope);
                } else {
                    mark_late_or_lost(&mut next, &envelope);
                    if self.losses.is_some() {
                        next.losses += 1;
                    }
                    // `agreement` under loss counts from the last loss.
                    for since in next.disagreement.iter_mut().flatten() {
                        *since = next.now;
                    }
                }
            }
            HeartbeatAction::Crash(node) => self.crash(&mut next, node),
            HeartbeatAction::Restart(node) => self.restart(&mut next, node),
        }
        self.update_disagreement(&mut next);
        Some(next)
    }

    fn format_action(&self, action: &HeartbeatAction) -> String {
        action.to_string()
    }

    fn within_boundary(&self, state: &HeartbeatState) -> bool {
        state.now <= self.horizon()
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut properties = vec![
            Property::<Self>::always("completeness", |model: &Self, state: &HeartbeatState| {
                state.ids().all(|peer| {
                    let Some(crashed) = state.host(peer).down_since else {
                        return true;
                    };
                    state
                        .ids()
                        .filter(|observer| *observer != peer && state.is_up(*observer))
                        .all(|observer| {
                            let deadline = (crashed + model.completeness_bound)
                                .max(state.host(observer).started + model.settle_time());
                            state.now < deadline
                                || state.status(observer, peer) == Some(Status::Dead)
                        })
                })
            }),
            Property::always("accuracy", |_, state: &HeartbeatState| {
                state.up_pairs().all(|(observer, peer)| {
                    let link = state.link(peer, observer);
                    !link.raised || link.late_or_lost
                })
            }),
            Property::always(
                "alive within bound",
                |model: &Self, state: &HeartbeatState| {
                    state.up_pairs().all(|(observer, peer)| {
                        let later = state.host(observer).started.max(state.host(peer).started);
                        state.host(peer).late_or_lost
                            || state.now < later + model.alive_bound
                            || state.alive_in_current_life(observer, peer)
                    })
                },
            ),
        ];
        if !self.lossy {
            properties.push(Property::always(
                "live nodes are never declared dead",
                |_, state: &HeartbeatState| {
                    state.up_pairs().all(|(observer, peer)| {
                        state.view(observer, peer).is_none_or(|view| {
                            view.status != Status::Dead || view.incarnation < state.host(peer).floor
                        })
                    })
                },
            ));
        }
        properties.push(Property::always(
            "agreement",
            |model: &Self, state: &HeartbeatState| {
                state
                    .disagreement
                    .iter()
                    .all(|since| since.is_none_or(|s| state.now <= s + model.agreement_bound))
            },
        ));
        if self.crashes > 0 {
            properties.push(Property::sometimes(
                "crash detected",
                |_, state: &HeartbeatState| {
                    state.ids().any(|peer| {
                        !state.is_up(peer)
                            && state
                                .ids()
                                .filter(|o| state.is_up(*o))
                                .all(|o| state.status(o, peer) == Some(Status::Dead))
                    })
                },
            ));
        }
        if self.restarts > 0 {
            properties.push(Property::sometimes(
                "restart taken back",
                |_, state: &HeartbeatState| {
                    state.ids().any(|peer| {
                        state.is_up(peer)
                            && state.host(peer).life > 1
                            && state
                                .ids()
                                .filter(|o| *o != peer && state.is_up(*o))
                                .all(|o| state.alive_in_current_life(o, peer))
                    })
                },
            ));
        }
        if self.synchronous() {
            properties.push(Property::always(
                "no false suspicion",
                |_, state: &HeartbeatState| {
                    state.up_pairs().all(|(observer, peer)| {
                        state.view(observer, peer).is_none_or(|view| {
                            view.status == Status::Alive
                                || view.incarnation < state.host(peer).floor
                        })
                    })
                },
            ));
        } else {
            properties.push(Property::sometimes(
                "false suspicion refuted",
                |_, state: &HeartbeatState| state.refuted,
            ));
        }
        if self.crashes == 0 {
            properties.retain(|p| p.name != "completeness");
        }
        properties
    }
}

impl HeartbeatModel {
    /// The claims this configuration cannot judge, each as its name, kind and
    /// the reason: `haft check` prints them as not judged instead of dropping
    /// them.
    pub fn not_judged(&self) -> Vec<(&'static str, &'static str, &'static str)> {
        let mut claims = Vec::new();
        if self.crashes == 0 {
            claims.push((
                "completeness",
                "always",
                "no node crashes with crashes=0, so there is nothing to detect",
            ));
        }
        if self.lossy {
            claims.push((
                "live nodes are never declared dead",
                "always",
                "not claimed with lossy=true: while a suspicion is lost on its way to the \
                 suspect, it is not refuted, and the suspect is declared Dead",
            ));
        }
        if self.crashes == 0 {
            claims.push((
                "crash detected",
                "sometimes",
                "no node crashes with crashes=0",
            ));
        }
        if self.restarts == 0 {
            claims.push((
                "restart taken back",
                "sometimes",
                "no node restarts with restarts=0",
            ));
        }
        claims
    }

    /// Checks the model's properties and lists, as not judged, those this
    /// configuration cannot judge.
    pub fn check(&self, params: Params, options: &CheckOptions) -> CheckReport {
        let spec = Spec::of(self);
        let mut report = harness::run_spec(NAME, params, self, &spec, options);
        for (name, expectation, why) in self.not_judged() {
            report.properties.push(PropertyReport {
                name,
                expectation,
                holds: false,
                status: Verdict::Unknown,
                counterexample: None,
                trap: None,
                note: Some(why.to_string()),
            });
        }
        report
    }
}

/// `haft check heartbeat`: the model its parameters describe, checked.
pub fn check(params: &Params, options: &CheckOptions) -> Result<CheckReport, ParamError> {
    Ok(HeartbeatModel::from_params(params)?.check(params.clone(), options))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use stateright::{Checker, HasDiscoveries};

    use super::*;
    use crate::models::testing::reachable_states;

    /// Checks `model` breadth first on one thread, as `haft check` reports it.
    fn check(model: HeartbeatModel) -> CheckReport {
        let options = CheckOptions {
            strategy: harness::Strategy::Bfs,
            ..CheckOptions::default()
        };
        model.check(Params::defaults(NAME, PARAMS), &options)
    }

    /// `nodes` nodes with H = 2, the given T and D, no loss, correct.
    fn model(nodes: usize, timeout: Millis, delay: Millis) -> HeartbeatModel {
        HeartbeatModel::new(nodes, 2, timeout, delay)
    }

    /// The counterexample to `property`, as its actions and its final state.
    fn counterexample(report: &CheckReport, property: &str) -> (Vec<String>, String) {
        let verdict = report.property(property).expect("the property exists");
        assert!(!verdict.holds, "`{property}` should be refuted: {report:?}");
        let steps = verdict
            .counterexample
            .as_ref()
            .expect("a refuted always-property has a counterexample");
        let last = steps.last().map(|s| s.state.clone()).unwrap_or_default();
        (steps.iter().map(|s| s.action.clone()).collect(), last)
    }

    fn holds(report: &CheckReport, property: &str) -> bool {
        report
            .property(property)
            .expect("the property exists")
            .holds
    }

    fn refuted(report: &CheckReport) -> Vec<&'static str> {
        report
            .properties
            .iter()
            .filter(|p| p.refuted())
            .map(|p| p.name)
            .collect()
    }

    /// A breadth-first search on one thread that stops at the first state
    /// refuting `property`: the shortest counterexample (its actions and final
    /// state) and the distinct states seen until then. For sizes whose full
    /// space is too large for a unit test.
    fn first_violation(
        model: HeartbeatModel,
        property: &'static str,
    ) -> (Vec<String>, HeartbeatState, usize) {
        let checker = model
            .clone()
            .checker()
            .finish_when(HasDiscoveries::AnyOf(BTreeSet::from([property])))
            .spawn_bfs()
            .join();
        let path = checker
            .discovery(property)
            .unwrap_or_else(|| panic!("`{property}` is refuted"));
        let last = path.last_state().clone();
        let actions = path
            .into_actions()
            .iter()
            .map(|a| model.format_action(a))
            .collect();
        (actions, last, checker.unique_state_count())
    }

    #[test]
    fn default_configuration_passes_with_pinned_counts() {
        let defaults = Params::defaults(NAME, PARAMS);
        assert_eq!(
            defaults.to_string(),
            "nodes=3 interval=2 timeout=4 delay=1 lossy=false losses=0 crashes=1 \
             restarts=1 variant=correct"
        );
        let model = HeartbeatModel::from_params(&defaults).unwrap();
        assert!(model.synchronous());
        assert_eq!(model.completeness_bound, 1 + 4 + 3);
        assert_eq!(model.alive_bound, 2 + 1 + 1);
        assert_eq!(model.agreement_bound, 1);
        assert_eq!(model.last_restart(), 2 + 8);
        assert_eq!(model.horizon(), 10 + 4 + 3);
        let report = check(model);
        assert!(report.passed(), "{report:?}");
        let names: Vec<_> = report.properties.iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "completeness",
                "accuracy",
                "alive within bound",
                "live nodes are never declared dead",
                "agreement",
                "crash detected",
                "restart taken back",
                "no false suspicion",
            ]
        );
        assert_eq!(report.unique_states, 824_448);
        assert_eq!(report.total_states, 2_952_757);
        assert_eq!(report.max_depth, 74);
    }

    /// Without restarts the model is the old one's system on the real machine:
    /// three nodes, one crash for good.
    #[test]
    fn a_crash_for_good_passes_with_pinned_counts() {
        let report = check(model(3, 4, 1).with_faults(1, 0));
        assert!(report.complete && refuted(&report).is_empty(), "{report:?}");
        let restart = report.property("restart taken back").unwrap();
        assert_eq!(restart.status, Verdict::Unknown);
        assert_eq!(report.unique_states, 29_267);
        assert_eq!(report.total_states, 90_223);
    }

    /// Every life is built as the node builds it: above every incarnation of
    /// the earlier lives (`life << 32`), heartbeats counted from 0 again.
    /// Under synchrony no live node is ever suspected about its current life,
    /// the crashed one is declared Dead, and the restarted one taken back.
    #[test]
    fn under_synchrony_lives_are_built_like_the_node_and_never_suspected() {
        let model = model(2, 4, 1).with_faults(1, 1);
        let states = reachable_states(&model);
        assert_eq!(states.len(), 3_231);
        for state in &states {
            for id in state.ids() {
                let host = state.host(id);
                let Some(running) = &host.running else {
                    continue;
                };
                let detector = running.machine.detector();
                assert_eq!(detector.incarnation() >> 32, host.life, "{state:?}");
                let beats_due = (state.now - host.started) / model.interval;
                assert_eq!(detector.heartbeats_sent(), beats_due, "{state:?}");
            }
            assert!(state.links.iter().all(|l| !l.raised && !l.late_or_lost));
            assert!(state.up_pairs().all(|(observer, peer)| {
                state.view(observer, peer).is_some_and(|view| {
                    view.status == Status::Alive || view.incarnation < state.host(peer).floor
                })
            }));
        }
        assert!(states.iter().any(|s| {
            s.ids().any(|peer| !s.is_up(peer))
                && s.up_pairs().count() == 0
                && s.ids()
                    .filter(|o| s.is_up(*o))
                    .all(|o| s.ids().any(|p| s.status(o, p) == Some(Status::Dead)))
        }));
        assert!(states.iter().any(|s| {
            s.hosts.iter().any(|h| h.life == 2)
                && s.up_pairs().all(|(o, p)| s.alive_in_current_life(o, p))
        }));
    }

    /// The synchrony bound is tight: at D = T − H a live node is falsely
    /// suspected (and refutes); at D = T − H − 1 it never is.
    #[test]
    fn false_suspicion_starts_exactly_at_d_equal_t_minus_h() {
        let at_bound = model(2, 3, 1).with_faults(1, 1);
        assert!(!at_bound.synchronous());
        let report = check(at_bound);
        assert!(report.passed(), "{report:?}");
        assert!(holds(&report, "false suspicion refuted"));
        assert_eq!(report.unique_states, 283_176);
        assert_eq!(report.total_states, 769_372);
        let below = reachable_states(&model(2, 4, 1).with_faults(1, 1));
        assert!(below.iter().all(|s| !s.refuted));
    }

    /// Completeness is tight: claiming detection one tick earlier than
    /// D + T + S is refuted, by a crash whose last heartbeat takes the full D.
    #[test]
    fn the_completeness_bound_is_tight() {
        let mut early = model(3, 4, 1).with_faults(1, 0);
        early.completeness_bound -= 1;
        let report = check(early);
        assert_eq!(refuted(&report), ["completeness"]);
        let (actions, last) = counterexample(&report, "completeness");
        assert!(
            actions.iter().any(|a| a.starts_with("Crash(")),
            "{actions:?}"
        );
        assert!(last.contains("Down { since:"), "{last}");
        assert!(
            last.contains(": S@"),
            "a live node still only suspects: {last}"
        );
    }

    /// `alive within bound` is tight: a node that restarts after its peer
    /// learns the peer's incarnation only from the peer's next heartbeat,
    /// which leaves up to H ticks later, is in flight up to D ticks, and is
    /// taken at the tick after: B = H + D + 1 from the restart.
    #[test]
    fn the_alive_bound_is_tight() {
        let mut early = model(2, 4, 1).with_faults(1, 1);
        early.alive_bound -= 1;
        let report = check(early);
        assert_eq!(refuted(&report), ["alive within bound"]);
        let (actions, last) = counterexample(&report, "alive within bound");
        assert!(
            actions.iter().any(|a| a.starts_with("Restart(")),
            "{actions:?}"
        );
        assert!(last.contains("life: 2"), "{last}");
        assert!(
            last.contains(": A/0.0"),
            "the restarted node has heard nothing yet: {last}"
        );
    }

    /// `agreement`'s D is tight: the announcement of a new life reaches one
    /// node at once and another D ticks later, and for those D ticks the
    /// second still holds the old life Dead.
    #[test]
    fn the_agreement_bound_is_tight() {
        let mut early = model(3, 4, 1).with_faults(1, 1);
        early.agreement_bound -= 1;
        let (actions, last, seen) = first_violation(early, "agreement");
        assert!(
            actions.iter().any(|a| a.starts_with("Restart(")),
            "{actions:?}"
        );
        let (restarted, _) = last
            .hosts
            .iter()
            .enumerate()
            .find(|(_, h)| h.life == 2)
            .expect("a node restarted");
        let restarted = node_id(restarted);
        let views: Vec<Option<Status>> = last
            .ids()
            .filter(|o| *o != restarted)
            .map(|o| last.status(o, restarted))
            .collect();
        assert!(views.contains(&Some(Status::Dead)), "{last:?}");
        assert!(views.contains(&Some(Status::Alive)), "{last:?}");
        assert_eq!(seen, 139_527);
    }

    /// `timeout-too-short` (T = H) breaks accuracy even under synchrony: a peer
    /// is suspected between two punctual heartbeats.
    #[test]
    fn timeout_too_short_breaks_accuracy() {
        let report = check(model(2, 4, 1).with_variant(Variant::TimeoutTooShort));
        assert_eq!(report.unique_states, 43_408);
        let (actions, last) = counterexample(&report, "accuracy");
        assert!(
            actions.iter().all(|a| !a.starts_with("Drop")),
            "{actions:?}"
        );
        // The shortest counterexample ends at the first check H ticks after
        // the start: nothing was late, yet a peer is suspected.
        assert!(last.starts_with("HeartbeatState { t: 2,"), "{last}");
        assert!(last.contains(": S@2/"), "{last}");
        assert_eq!(
            refuted(&report),
            ["accuracy", "alive within bound", "no false suspicion"]
        );
    }

    /// `no-refute`: the suspected node ignores the suspicion, so it is declared
    /// Dead while alive.
    #[test]
    fn no_refute_declares_a_live_node_dead() {
        let report = check(model(2, 3, 1).with_variant(Variant::NoRefute));
        assert_eq!(report.unique_states, 3_589);
        assert_eq!(
            refuted(&report),
            [
                "live nodes are never declared dead",
                "false suspicion refuted"
            ]
        );
        let (actions, last) = counterexample(&report, "live nodes are never declared dead");
        assert!(
            actions.iter().any(|a| a.contains("Suspect(")),
            "{actions:?}"
        );
        assert!(
            actions.iter().all(|a| !a.contains("Alive(inc 1.1)")),
            "{actions:?}"
        );
        assert!(last.contains(": D/1.0"), "{last}");
    }

    /// `no-incarnation`: the answer carries the suspected incarnation, is taken
    /// for stale, and the live node is declared Dead anyway.
    #[test]
    fn no_incarnation_declares_a_live_node_dead() {
        let report = check(model(2, 3, 1).with_variant(Variant::NoIncarnation));
        assert_eq!(report.unique_states, 24_103);
        assert_eq!(
            refuted(&report),
            [
                "live nodes are never declared dead",
                "false suspicion refuted"
            ]
        );
        let (actions, last) = counterexample(&report, "live nodes are never declared dead");
        // The answer to the suspicion repeats the suspected incarnation.
        let suspicion = actions
            .iter()
            .position(|a| a.contains("Suspect(n0 at 1.0)"))
            .expect("n0 is suspected");
        assert!(
            actions[suspicion..]
                .iter()
                .any(|a| a.contains("n0→n1 Alive(inc 1.0)")),
            "{actions:?}"
        );
        assert!(last.contains(": D/1.0"), "{last}");
    }

    /// `stale-incarnation` (issue 10, defect 3): the peer keeps the old life's
    /// sequence numbers, drops the new life's heartbeats, and suspects the
    /// restarted node again although every heartbeat arrived in time. The
    /// correct detector passes the same configuration.
    #[test]
    fn stale_incarnation_keeps_a_restarted_node_suspected() {
        let base = model(2, 4, 1).with_faults(1, 1);
        let correct = check(base.clone());
        assert!(correct.passed(), "{correct:?}");
        assert_eq!(correct.unique_states, 3_231);

        let report = check(base.with_variant(Variant::StaleIncarnation));
        assert_eq!(report.unique_states, 10_007);
        assert_eq!(
            refuted(&report),
            ["accuracy", "alive within bound", "no false suspicion"]
        );
        let (actions, last) = counterexample(&report, "alive within bound");
        let restart = actions
            .iter()
            .position(|a| a.starts_with("Restart("))
            .expect("a node restarts");
        // The new life's first heartbeat is delivered in time (and dropped)…
        assert!(
            actions[restart..]
                .iter()
                .any(|a| a.contains("Heartbeat(inc 2.0, seq 0)")),
            "{actions:?}"
        );
        assert!(
            actions.iter().all(|a| !a.starts_with("Drop")),
            "{actions:?}"
        );
        // …and the peer suspects the new life.
        assert!(last.contains(": S@"), "{last}");
        assert!(last.contains("/2.0"), "{last}");
    }

    /// `dead-is-forever`: a node that declared the crashed node Dead ignores
    /// its new life, which another node took back before declaring it Dead:
    /// the disagreement never ends. Three nodes are needed; the full space is
    /// 1.6 million states, so the search stops at the first violation.
    #[test]
    fn dead_is_forever_breaks_agreement() {
        let model = model(3, 4, 1)
            .with_faults(1, 1)
            .with_variant(Variant::DeadIsForever);
        let (actions, last, seen) = first_violation(model, "agreement");
        assert!(
            actions.iter().any(|a| a.starts_with("Restart(")),
            "{actions:?}"
        );
        let (restarted, _) = last
            .hosts
            .iter()
            .enumerate()
            .find(|(_, h)| h.life == 2)
            .expect("a node restarted");
        let restarted = node_id(restarted);
        let views: Vec<(Status, u64)> = last
            .ids()
            .filter(|o| *o != restarted)
            .filter_map(|o| last.view(o, restarted).map(|v| (v.status, v.incarnation)))
            .collect();
        assert!(views.contains(&(Status::Dead, 1 << 32)), "{last:?}");
        assert!(views.contains(&(Status::Alive, 2 << 32)), "{last:?}");
        assert_eq!(seen, 176_179);
    }

    /// `reused-incarnation`: the restarted node comes back at the incarnation
    /// its peer already holds Dead, and is never taken back.
    #[test]
    fn reused_incarnation_is_never_taken_back() {
        let report = check(
            model(2, 4, 1)
                .with_faults(1, 1)
                .with_variant(Variant::ReusedIncarnation),
        );
        assert_eq!(report.unique_states, 12_003);
        assert!(!holds(&report, "alive within bound"));
        let (actions, last) = counterexample(&report, "live nodes are never declared dead");
        assert_eq!(actions.last().map(String::as_str), Some("Restart(n0)"));
        assert!(last.contains("n0: Up { life: 2, inc: 1.0,"), "{last}");
        assert!(last.contains("n0: D/1.0"), "{last}");
    }

    /// With loss, suspicions are excused per link, crashes are still detected,
    /// and a restarted node whose announcement is lost is taken back by its
    /// first heartbeat (which the detector once dropped as stale).
    #[test]
    fn loss_excuses_suspicion_per_link_but_not_missed_crashes_or_restarts() {
        let crash = check(model(2, 4, 1).with_faults(1, 0).lossy());
        assert!(crash.complete && refuted(&crash).is_empty(), "{crash:?}");
        assert!(holds(&crash, "false suspicion refuted"));
        assert_eq!(crash.unique_states, 370_037);

        let restart = check(HeartbeatModel::new(2, 2, 3, 0).with_faults(1, 1).lossy());
        assert!(
            restart.complete && refuted(&restart).is_empty(),
            "{restart:?}"
        );
        assert!(holds(&restart, "restart taken back"));
        assert_eq!(restart.unique_states, 77_222);
    }

    /// `no-remind` (the detector before the remind fix): a node suspects a
    /// live peer whose heartbeats to it were lost, and the Suspect to the
    /// others, the suspect included, is lost too. The suspect never refutes,
    /// so the node declares it Dead for good while the third node, which
    /// heard nothing, holds it Alive: after the last loss the disagreement
    /// outlasts H + 3D. The correct detector reminds the suspect at its next
    /// heartbeat, and agreement holds at the same size.
    #[test]
    fn no_remind_breaks_agreement_under_loss() {
        let base = HeartbeatModel::new(3, 2, 3, 0).lossy().with_losses(3);
        assert_eq!(base.agreement_bound, 2);
        // H + D + T + S, then the agreement bound and one tick (D = 0).
        assert_eq!(base.horizon(), 2 + 3 + 1 + 2 + 1);
        let correct = check(base.clone());
        assert!(
            correct.complete && refuted(&correct).is_empty(),
            "{correct:?}"
        );
        assert!(holds(&correct, "agreement"));
        assert_eq!(correct.unique_states, 1_271_077);

        let report = check(base.with_variant(Variant::NoRemind));
        assert_eq!(refuted(&report), ["agreement"]);
        assert_eq!(report.unique_states, 492_220);
        let (actions, last) = counterexample(&report, "agreement");
        assert!(
            actions
                .iter()
                .any(|a| a.starts_with("Drop") && a.contains("Suspect(")),
            "{actions:?}"
        );
        assert!(last.contains(": D/1.0"), "{last}");
        assert!(last.contains(": A/1.0"), "{last}");
    }

    /// `check-not-rearmed`: the estimators run once, so a crashed node is
    /// never suspected, let alone declared Dead.
    #[test]
    fn check_not_rearmed_breaks_completeness() {
        let report = check(
            model(3, 4, 1)
                .with_faults(1, 0)
                .with_variant(Variant::CheckNotRearmed),
        );
        assert_eq!(report.unique_states, 4_907);
        assert_eq!(refuted(&report), ["completeness", "crash detected"]);
        let (actions, last) = counterexample(&report, "completeness");
        assert!(
            actions.iter().any(|a| a.starts_with("Crash(")),
            "{actions:?}"
        );
        assert!(last.contains("Down { since:"), "{last}");
        assert!(!last.contains(": S@") && !last.contains(": D/"), "{last}");
    }

    /// What a configuration cannot judge is reported as such, not dropped:
    /// with loss, the claims that assume delivery; without crashes or
    /// restarts, what needs them.
    #[test]
    fn claims_a_configuration_cannot_judge_are_reported_unknown() {
        let report = check(model(2, 4, 1).lossy());
        let unknown: Vec<_> = report
            .properties
            .iter()
            .filter(|p| p.status == Verdict::Unknown)
            .map(|p| (p.name, p.note.is_some()))
            .collect();
        assert_eq!(
            unknown,
            [
                ("completeness", true),
                ("live nodes are never declared dead", true),
                ("crash detected", true),
                ("restart taken back", true),
            ]
        );
        assert!(report.complete);
        assert!(refuted(&report).is_empty(), "{report:?}");
    }

    /// A variant whose bug needs a false suspicion is refused where none can
    /// happen, with the parameters that show it.
    #[test]
    fn variants_that_need_a_false_suspicion_are_refused_under_synchrony() {
        for variant in ["no-refute", "no-incarnation"] {
            let pair = format!("variant={variant}");
            let params = Params::parse(NAME, PARAMS, &[pair.as_str()]).unwrap();
            let err = HeartbeatModel::from_params(&params).unwrap_err();
            assert!(err.to_string().contains("-p timeout=3"), "{err}");
            let params =
                Params::parse(NAME, PARAMS, &["nodes=2", "timeout=3", pair.as_str()]).unwrap();
            assert!(HeartbeatModel::from_params(&params).is_ok());
        }
    }

    /// `no-remind` is harmless without loss, and refused there.
    #[test]
    fn no_remind_is_refused_without_loss() {
        let params = Params::parse(NAME, PARAMS, &["variant=no-remind"]).unwrap();
        let err = HeartbeatModel::from_params(&params).unwrap_err();
        assert!(err.to_string().contains("-p lossy=true"), "{err}");
        let params = Params::parse(NAME, PARAMS, &["lossy=true", "variant=no-remind"]).unwrap();
        let model = HeartbeatModel::from_params(&params).unwrap();
        assert_eq!(model.agreement_bound, 2 + 3);
    }

    #[test]
    fn inconsistent_parameters_are_refused() {
        for (pairs, hint) in [
            (&["timeout=2"][..], "variant=timeout-too-short"),
            (&["nodes=2", "crashes=2"][..], "at most 1"),
            (&["crashes=1", "restarts=2"][..], "raise crashes"),
        ] {
            let params = Params::parse(NAME, PARAMS, pairs).unwrap();
            let err = HeartbeatModel::from_params(&params).unwrap_err();
            assert!(err.to_string().contains(hint), "{err}");
        }
    }
}
