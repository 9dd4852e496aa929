//! A node of the runnable system: one stateright actor that composes the
//! coordinator and participant of two-phase commit ([`crate::commit`]), the
//! failure detector ([`crate::detector`]) and the ring ([`crate::ring`]).
//!
//! Like every machine in haft, [`NodeActor`] does no I/O, reads no clock and
//! draws no random number; the runtime (`crate::runtime::node`) only moves its
//! messages, fires its timers and stores what it saves.
//!
//! # Delegation
//!
//! The node holds no protocol logic of its own. It hands each input to one inner
//! machine and maps that machine's commands into its own:
//!
//! | input | goes to |
//! |---|---|
//! | `Vote`, `Ack` | the coordinator |
//! | `Prepare`, `Outcome` | the participant |
//! | `Query` for a transaction this node coordinates | the coordinator |
//! | `Query` for another node's transaction | the participant |
//! | detector messages and timers | the detector |
//! | coordinator timers (`VoteTimeout`, `Resend`) | the coordinator |
//! | participant timers (`Uncertain`) | the participant |
//!
//! Queries are split by the transaction's coordinator (packed into its id, see
//! [`txn_id`]) because the coordinator answers by presumed abort: with no record
//! it says Abort, which is right only for its own transactions (AC1). A node
//! that is only a peer of a transaction answers as a participant: with the
//! decision if it has learned it, and not at all otherwise.
//!
//! Sends and timers are wrapped in [`NodeMsg`] and [`NodeTimer`]; a save of the
//! coordinator's or the participant's record becomes a save of the whole
//! [`NodeRecord`], with the other part as it was last saved.
//!
//! # Clients
//!
//! - `Txn { writes }`: the writes are split by ring owner over the configured
//!   nodes, and the coordinator begins the transaction under a fresh id. The
//!   client is answered once the coordinator decides; a Commit answer is issued
//!   in the same handler as, and after, the save of the commit record, so the
//!   runtime releases it only once that record is durable. A retried request
//!   (same client, same request id) does not start a second transaction.
//! - `Get { key }`: answered from the committed store of the key's owner,
//!   through a [`NodeMsg::Read`] if that is another node.
//! - `Status`: the detector's membership view and a few sizes; the runtime adds
//!   its counters.
//!
//! Participants run with `free_vote: false`: a real store refuses a transaction
//! only on a lock conflict.

mod message;
#[cfg(test)]
mod tests;
pub mod txn_id;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Range;
use std::time::Duration;

use stateright::actor::{Actor, Command, Id, Out};

use crate::commit::{
    self, CommitActor, Coordinator, CoordinatorState, Outcome, Participant, ParticipantState,
    Record, TxnId, TxnPlan, TxnRecord, Variant, WriteSet,
};
use crate::detector::actor::{DetectorActor, DetectorState};
use crate::detector::{
    Command as DetectorCommand, ConfigError, DetectorConfig, FixedTimeout, Millis, Status,
};
use crate::ring::{Ring, RingError};

pub use message::{
    MemberStatus, NodeMsg, NodeRecord, NodeTimer, Reply, Request, RequestId, StatusView,
};
pub use txn_id::{TxnIdParts, coordinator_of};

/// How many answered client requests a node remembers, to answer a retry with
/// the same reply instead of running the request again.
pub const ANSWERED_CAPACITY: usize = 4096;

/// The timing of a node's machines.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeTiming {
    /// Coordinator: how long to wait for votes before aborting.
    pub vote_timeout: Range<Duration>,
    /// Coordinator: how often to resend an unacknowledged decision.
    pub resend_every: Range<Duration>,
    /// Participant: how long to stay prepared before asking for the outcome.
    pub uncertain_after: Range<Duration>,
    /// Detector: the heartbeat period, in ms.
    pub heartbeat_interval: Millis,
    /// Detector: how often the estimators run, in ms.
    pub check_interval: Millis,
    /// Detector: the silence after which a peer is suspected, in ms.
    pub failure_timeout: Millis,
    /// Detector: how long a suspicion lasts before the peer is declared Dead, in ms.
    pub suspicion_timeout: Millis,
}

impl Default for NodeTiming {
    fn default() -> Self {
        let ms = Duration::from_millis;
        NodeTiming {
            vote_timeout: ms(1000)..ms(1500),
            resend_every: ms(200)..ms(400),
            uncertain_after: ms(500)..ms(1000),
            heartbeat_interval: 200,
            check_interval: 100,
            failure_timeout: 1000,
            suspicion_timeout: 1000,
        }
    }
}

/// Why a node could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NodeError {
    /// No node ids were given.
    #[error("the cluster has no nodes; list every node id, this node's included")]
    NoNodes,
    /// A node id is listed twice.
    #[error("node id {0} is listed twice; give each node a distinct id")]
    DuplicateNode(u64),
    /// A node id does not fit a transaction id.
    #[error(
        "node id {0} is too large: transaction ids hold node ids up to {max}; renumber the node",
        max = txn_id::MAX_NODE
    )]
    NodeIdTooLarge(u64),
    /// A timer range is empty or zero.
    #[error("timer `{0}` must be a non-empty range of positive durations (min ≤ max, min > 0)")]
    BadTimer(&'static str),
    /// A detector setting was refused.
    #[error("failure detector: {0}")]
    Detector(#[from] ConfigError),
    /// The ring could not be built.
    #[error("ring: {0}")]
    Ring(#[from] RingError),
}

/// Runs `handle` on one part of the node's state, keeping the copy-on-write of
/// the part, and returns the commands of the inner machine.
fn delegate<S: Clone, A: Actor>(
    part: &mut S,
    handle: impl FnOnce(&mut Cow<S>, &mut Out<A>),
) -> Out<A> {
    let mut inner = Out::new();
    let mut borrowed = Cow::Borrowed(&*part);
    handle(&mut borrowed, &mut inner);
    if let Cow::Owned(changed) = borrowed {
        *part = changed;
    }
    inner
}

/// One node of the cluster. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct NodeActor {
    nodes: BTreeSet<Id>,
    ring: Ring,
    ring_ids: BTreeMap<String, Id>,
    coordinator: Coordinator,
    participant: Participant,
    detector: DetectorActor<FixedTimeout>,
}

/// A transaction the node coordinates for a client that awaits its outcome.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Waiting {
    client: Id,
    request: RequestId,
}

/// A node's volatile state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeState {
    /// This start's incarnation (see [`txn_id`]).
    pub incarnation: u64,
    /// The sequence number of the next transaction of this incarnation.
    pub next_sequence: u64,
    /// The coordinator half.
    pub coordinator: CoordinatorState,
    /// The participant half.
    pub participant: ParticipantState,
    /// The failure detector.
    pub detector: DetectorState<FixedTimeout>,
    /// The record as last saved.
    pub saved: NodeRecord,
    /// Transactions whose client awaits the outcome.
    waiting: BTreeMap<TxnId, Waiting>,
    /// The transaction each in-flight client request started.
    in_flight: BTreeMap<(Id, RequestId), TxnId>,
    /// Recent answers, to repeat to a client that retries.
    answered: BTreeMap<(Id, RequestId), Reply>,
    /// The order in which `answered` was filled, oldest first.
    answered_order: VecDeque<(Id, RequestId)>,
}

impl NodeActor {
    /// A node of the cluster made of `nodes` (every node id, this node's among
    /// them), with `vnodes` virtual nodes per node on the ring.
    pub fn new(nodes: &[u64], vnodes: u32, timing: NodeTiming) -> Result<NodeActor, NodeError> {
        if nodes.is_empty() {
            return Err(NodeError::NoNodes);
        }
        let mut ids = BTreeSet::new();
        let mut ring = Ring::builder(vnodes);
        let mut ring_ids = BTreeMap::new();
        for &node in nodes {
            if node > txn_id::MAX_NODE {
                return Err(NodeError::NodeIdTooLarge(node));
            }
            let id = Id::from(node as usize);
            if !ids.insert(id) {
                return Err(NodeError::DuplicateNode(node));
            }
            ring = ring.node(node.to_string(), 1);
            ring_ids.insert(node.to_string(), id);
        }
        for (name, range) in [
            ("vote_timeout", &timing.vote_timeout),
            ("resend_every", &timing.resend_every),
            ("uncertain_after", &timing.uncertain_after),
        ] {
            if range.start.is_zero() || range.start > range.end {
                return Err(NodeError::BadTimer(name));
            }
        }
        let detector = DetectorActor::new(
            ids.iter().copied().collect(),
            FixedTimeout::new(timing.failure_timeout)?,
            DetectorConfig {
                suspicion_timeout: timing.suspicion_timeout,
            },
            timing.heartbeat_interval,
            timing.check_interval,
        )?;
        Ok(NodeActor {
            nodes: ids,
            ring: ring.build()?,
            ring_ids,
            coordinator: Coordinator {
                initial: Vec::new(),
                vote_timeout: timing.vote_timeout,
                resend_every: timing.resend_every,
                variant: Variant::Correct,
            },
            participant: Participant {
                free_vote: false,
                uncertain_after: timing.uncertain_after,
                variant: Variant::Correct,
            },
            detector,
        })
    }

    /// The nodes of the cluster.
    pub fn nodes(&self) -> impl Iterator<Item = Id> + '_ {
        self.nodes.iter().copied()
    }

    /// The node that owns `key` on the ring.
    pub fn owner(&self, key: &str) -> Id {
        self.ring_ids[self.ring.owner(key.as_bytes()).as_str()]
    }

    /// The node's status as the actor knows it (the counters are left empty).
    pub fn status(&self, me: Id, state: &NodeState) -> StatusView {
        let detector = &state.detector.detector;
        let members = self
            .nodes
            .iter()
            .map(|&node| {
                let status = match detector.status(usize::from(node)) {
                    None | Some(Status::Alive) => MemberStatus::Alive,
                    Some(Status::Suspect { .. }) => MemberStatus::Suspect,
                    Some(Status::Dead) => MemberStatus::Dead,
                };
                (usize::from(node) as u64, status)
            })
            .collect();
        let prepared = state
            .participant
            .record
            .txns
            .values()
            .filter(|r| matches!(r, TxnRecord::Prepared { .. }))
            .count();
        StatusView {
            node: usize::from(me) as u64,
            incarnation: state.incarnation,
            members,
            coordinating: state.coordinator.txns.len() as u64,
            prepared: prepared as u64,
            keys: state.participant.record.store.len() as u64,
            counters: BTreeMap::new(),
        }
    }

    // --- delegation ----------------------------------------------------------

    /// Maps the commands of a commit machine into the node's.
    fn emit_commit(&self, state: &mut NodeState, inner: Out<CommitActor>, o: &mut Out<Self>) {
        for command in inner {
            match command {
                Command::Send(to, msg) => o.send(to, NodeMsg::Commit(msg)),
                Command::SetTimer(timer, range) => o.set_timer(NodeTimer::Commit(timer), range),
                Command::CancelTimer(timer) => o.cancel_timer(NodeTimer::Commit(timer)),
                Command::Save(Record::Coordinator(record)) => {
                    state.saved.coordinator = record;
                    o.save(state.saved.clone());
                }
                Command::Save(Record::Participant(record)) => {
                    state.saved.participant = record;
                    o.save(state.saved.clone());
                }
                // Only free votes draw random choices, and a node's participant
                // has none.
                Command::ChooseRandom(..) => {}
            }
        }
    }

    fn emit_detector(&self, inner: Out<DetectorActor<FixedTimeout>>, o: &mut Out<Self>) {
        for command in inner {
            match command {
                Command::Send(to, msg) => o.send(to, NodeMsg::Detector(msg)),
                Command::SetTimer(timer, range) => o.set_timer(NodeTimer::Detector(timer), range),
                Command::CancelTimer(timer) => o.cancel_timer(NodeTimer::Detector(timer)),
                Command::Save(()) | Command::ChooseRandom(..) => {}
            }
        }
    }

    fn with_coordinator(
        &self,
        state: &mut NodeState,
        o: &mut Out<Self>,
        handle: impl FnOnce(&mut Cow<CoordinatorState>, &mut Out<CommitActor>),
    ) {
        let inner = delegate(&mut state.coordinator, handle);
        self.emit_commit(state, inner, o);
    }

    fn with_participant(
        &self,
        state: &mut NodeState,
        o: &mut Out<Self>,
        handle: impl FnOnce(&mut Cow<ParticipantState>, &mut Out<CommitActor>),
    ) {
        let inner = delegate(&mut state.participant, handle);
        self.emit_commit(state, inner, o);
    }

    // --- clients -------------------------------------------------------------

    /// Answers the client of `txn` if the coordinator has decided it. Called
    /// after every coordinator input about `txn`, so that the answer leaves in
    /// the handler that decided, after its save.
    fn answer_if_decided(&self, state: &mut NodeState, txn: TxnId, o: &mut Out<Self>) {
        if !state.waiting.contains_key(&txn) {
            return;
        }
        let Some(outcome) = state.coordinator.decision(txn) else {
            return;
        };
        let Some(Waiting { client, request }) = state.waiting.remove(&txn) else {
            return;
        };
        state.in_flight.remove(&(client, request));
        self.answer(state, client, request, Reply::Txn { txn, outcome }, o);
    }

    fn answer(
        &self,
        state: &mut NodeState,
        client: Id,
        request: RequestId,
        reply: Reply,
        o: &mut Out<Self>,
    ) {
        o.send(
            client,
            NodeMsg::Reply {
                id: request,
                reply: reply.clone(),
            },
        );
        if state.answered.insert((client, request), reply).is_none() {
            state.answered_order.push_back((client, request));
            if state.answered_order.len() > ANSWERED_CAPACITY {
                if let Some(oldest) = state.answered_order.pop_front() {
                    state.answered.remove(&oldest);
                }
            }
        }
    }

    /// The next transaction id of this node, moving to a new incarnation
    /// (saved before any message of it leaves) when the sequence runs out.
    fn next_txn(&self, me: Id, state: &mut NodeState, o: &mut Out<Self>) -> Option<TxnId> {
        if state.next_sequence > txn_id::MAX_SEQUENCE {
            if state.incarnation >= txn_id::MAX_INCARNATION {
                return None;
            }
            state.incarnation += 1;
            state.next_sequence = 0;
            state.saved.incarnation = state.incarnation;
            o.save(state.saved.clone());
        }
        let txn = TxnIdParts {
            node: usize::from(me) as u64,
            incarnation: state.incarnation,
            sequence: state.next_sequence,
        }
        .pack()?;
        state.next_sequence += 1;
        Some(txn)
    }

    fn on_request(
        &self,
        me: Id,
        state: &mut NodeState,
        client: Id,
        id: RequestId,
        request: Request,
        o: &mut Out<Self>,
    ) {
        if let Some(reply) = state.answered.get(&(client, id)) {
            // A retry of a request already answered: the same answer again.
            o.send(
                client,
                NodeMsg::Reply {
                    id,
                    reply: reply.clone(),
                },
            );
            return;
        }
        match request {
            Request::Txn { writes } => {
                if state.in_flight.contains_key(&(client, id)) {
                    return; // A retry; the answer comes when the coordinator decides.
                }
                if writes.is_empty() {
                    let reason =
                        "the transaction writes no key; give at least one key=value".into();
                    self.answer(state, client, id, Reply::Refused { reason }, o);
                    return;
                }
                let Some(txn) = self.next_txn(me, state, o) else {
                    let reason = "this node has used up its transaction ids (too many restarts); \
                                  send the transaction to another node"
                        .into();
                    self.answer(state, client, id, Reply::Refused { reason }, o);
                    return;
                };
                let mut split: BTreeMap<Id, WriteSet> = BTreeMap::new();
                for (key, value) in writes {
                    split
                        .entry(self.owner(&key))
                        .or_default()
                        .insert(key, value);
                }
                let plan = TxnPlan { txn, writes: split };
                state.waiting.insert(
                    txn,
                    Waiting {
                        client,
                        request: id,
                    },
                );
                state.in_flight.insert((client, id), txn);
                self.with_coordinator(state, o, |s, inner| {
                    self.coordinator.begin(s.to_mut(), &plan, inner)
                });
                self.answer_if_decided(state, txn, o);
            }
            Request::Get { key } => {
                let owner = self.owner(&key);
                if owner == me {
                    let value = state.participant.record.store.get(&key).cloned();
                    o.send(
                        client,
                        NodeMsg::Reply {
                            id,
                            reply: Reply::Value { key, value },
                        },
                    );
                } else {
                    o.send(owner, NodeMsg::Read { client, id, key });
                }
            }
            Request::Status => {
                let status = self.status(me, state);
                o.send(
                    client,
                    NodeMsg::Reply {
                        id,
                        reply: Reply::Status(status),
                    },
                );
            }
        }
    }
}

impl Actor for NodeActor {
    type Msg = NodeMsg;
    type State = NodeState;
    type Timer = NodeTimer;
    type Random = commit::Choice;
    type Storage = NodeRecord;

    fn on_start(&self, id: Id, storage: &Option<NodeRecord>, o: &mut Out<Self>) -> NodeState {
        let mut inner = Out::new();
        let coordinator = self
            .coordinator
            .on_start(storage.as_ref().map(|r| &r.coordinator), &mut inner);
        let participant = self
            .participant
            .on_start(storage.as_ref().map(|r| &r.participant), &mut inner);
        let mut detector_out = Out::new();
        let detector = self.detector.on_start(id, &None, &mut detector_out);
        // A new incarnation on every start: ids of transactions begun in an
        // earlier life are never reused (see `txn_id`). It is saved first, so
        // that no message of this incarnation leaves before it is durable.
        let incarnation = storage.as_ref().map_or(0, |r| r.incarnation) + 1;
        let mut saved = storage.clone().unwrap_or_default();
        saved.incarnation = incarnation;
        o.save(saved.clone());
        let mut state = NodeState {
            incarnation,
            next_sequence: 0,
            coordinator,
            participant,
            detector,
            saved,
            waiting: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            answered: BTreeMap::new(),
            answered_order: VecDeque::new(),
        };
        self.emit_commit(&mut state, inner, o);
        self.emit_detector(detector_out, o);
        // Dead is final for a detector incarnation, and the detector starts
        // every life at 0: a node restarted after its peers declared it Dead
        // would stay Dead to them. So each life starts its detector above any
        // incarnation of the previous lives (a life raises it by one per
        // refuted suspicion; 2^32 of them is out of reach), and says so.
        let floor = incarnation << 32;
        if let Some(DetectorCommand::Broadcast(alive)) = state.detector.detector.refute(floor - 1) {
            for peer in self.nodes.iter().filter(|peer| **peer != id) {
                o.send(*peer, NodeMsg::Detector(alive));
            }
        }
        state
    }

    fn on_msg(&self, id: Id, state: &mut Cow<NodeState>, src: Id, msg: NodeMsg, o: &mut Out<Self>) {
        let from_node = self.nodes.contains(&src);
        match msg {
            NodeMsg::Request {
                id: request,
                request: body,
            } => self.on_request(id, state.to_mut(), src, request, body, o),
            // Everything below comes from nodes only: a client cannot vote,
            // prepare or claim an outcome.
            _ if !from_node => {}
            NodeMsg::Commit(msg) => {
                let txn = msg.txn();
                let to_coordinator = match &msg {
                    commit::Msg::Vote { .. } | commit::Msg::Ack { .. } => true,
                    commit::Msg::Prepare { .. } | commit::Msg::Outcome { .. } => false,
                    // Presumed abort answers only for this node's own
                    // transactions (AC1); for others it answers as a peer.
                    commit::Msg::Query { .. } => coordinator_of(txn) == id,
                };
                let state = state.to_mut();
                if to_coordinator {
                    self.with_coordinator(state, o, |s, inner| {
                        self.coordinator.on_msg(s, src, msg, inner)
                    });
                    self.answer_if_decided(state, txn, o);
                } else {
                    self.with_participant(state, o, |s, inner| {
                        self.participant.on_msg(s, src, msg, inner)
                    });
                }
            }
            NodeMsg::Detector(msg) => {
                let inner = delegate(&mut state.to_mut().detector, |s, inner| {
                    self.detector.on_msg(id, s, src, msg, inner)
                });
                self.emit_detector(inner, o);
            }
            NodeMsg::Read {
                client,
                id: request,
                key,
            } => {
                let value = state.participant.record.store.get(&key).cloned();
                o.send(
                    src,
                    NodeMsg::ReadReply {
                        client,
                        id: request,
                        key,
                        value,
                    },
                );
            }
            NodeMsg::ReadReply {
                client,
                id: request,
                key,
                value,
            } => o.send(
                client,
                NodeMsg::Reply {
                    id: request,
                    reply: Reply::Value { key, value },
                },
            ),
            // Replies go to clients; a node ignores one sent to it.
            NodeMsg::Reply { .. } => {}
        }
    }

    fn on_timeout(&self, id: Id, state: &mut Cow<NodeState>, timer: &NodeTimer, o: &mut Out<Self>) {
        let state = state.to_mut();
        match timer {
            NodeTimer::Commit(
                timer @ (commit::Timer::VoteTimeout(txn) | commit::Timer::Resend(txn)),
            ) => {
                self.with_coordinator(state, o, |s, inner| {
                    self.coordinator.on_timeout(s, timer, inner)
                });
                self.answer_if_decided(state, *txn, o);
            }
            NodeTimer::Commit(timer @ commit::Timer::Uncertain(_)) => {
                self.with_participant(state, o, |s, inner| {
                    self.participant.on_timeout(s, timer, inner)
                });
            }
            NodeTimer::Detector(timer) => {
                let inner = delegate(&mut state.detector, |s, inner| {
                    self.detector.on_timeout(id, s, timer, inner)
                });
                self.emit_detector(inner, o);
            }
        }
    }

    fn name(&self) -> String {
        "node".into()
    }
}

/// An outcome's name, for logs and the command line.
pub fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Commit => "committed",
        Outcome::Abort => "aborted",
    }
}
