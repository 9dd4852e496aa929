//! A node of the runnable system: one sans-IO machine that composes the
//! coordinator and participant of two-phase commit ([`crate::commit`]), the
//! failure detector ([`crate::detector`]) and the key placement
//! ([`Layout`]), and answers clients.
//!
//! Like every machine in haft, [`Node`] does no I/O, reads no clock and draws
//! no random number: each input writes a [`NodeOutput`] for its driver (the
//! runtime, or a model) to carry out, in the order [`crate::output`] gives.
//! **The driver makes the output of [`Node::recover`] durable before it hands
//! the node any input**, and delivers the node's messages to itself in process.
//!
//! # Delegation
//!
//! The node holds no protocol logic of its own. It hands each input to one
//! inner machine and maps that machine's output into its own:
//!
//! | input | goes to |
//! |---|---|
//! | `Vote`, `Ack` | the coordinator |
//! | `Prepare`, `Outcome` | the participant |
//! | `Query` about a transaction this node began | the coordinator |
//! | `Query` about another node's transaction | the participant |
//! | detector messages and timers | the detector |
//! | coordinator timers (`VoteTimeout`, `Resend`) | the coordinator |
//! | participant timers (`Uncertain`) | the participant |
//! | `Read` timers | the node's own read path |
//!
//! Queries are split by the transaction's coordinator (packed into its id)
//! because the coordinator answers by presumed abort: with no record it says
//! Abort, which is right only for its own transactions (AC1). A node that is
//! only a peer of a transaction answers as a participant: with the decision if
//! it has learned it, and not at all otherwise.
//!
//! # Clients
//!
//! - **Transactions** run at the request's *home*: the node the client first
//!   sent it to. Another node that receives a retry relays it there, so one
//!   request never becomes two transactions. Each key's reads and writes go to
//!   every replica of the key. The client is answered once the coordinator
//!   decides: a Commit answer leaves only once the commit record — which
//!   carries the request, so a retry after a crash finds it — is durable; an
//!   Abort answer only once the abort is recorded in the answer table. A retry
//!   of an answered request is answered from that table; a retry of a running
//!   one waits for it; a request from an earlier life that was never decided
//!   was presumed aborted by the restart, so running the retry anew cannot
//!   commit it twice (*exactly once*).
//! - **Reads** go to one replica of each key: this node if it is one, else
//!   the first the failure detector does not suspect. If it suspects every
//!   replica of a key, the read is answered [`Reply::Unreachable`], naming
//!   them. A retry of a read under way asks again for every key not answered
//!   yet, of the replica the latest view picks (a `Read` or its answer may
//!   have been lost); an in-process caller ([`Node::handle_local`]) never
//!   retries, so for its read the node asks again on its own timer
//!   (`NodeTimer::Read`) while a key waits on another node. A
//!   replica answers from its committed store, except that a key locked by a
//!   prepared writer waits for that writer's outcome: the writer may already
//!   be committed and its client told so, so a read that skipped it could
//!   return an older value after the commit was acknowledged. With that wait,
//!   a read that starts after a commit was acknowledged sees it, whichever
//!   replica it asks (*linearizable reads*): every replica voted Yes before the
//!   decision, so each has either applied the write or still holds its lock.
//! - **Status**: the detector's view, the placement and a few sizes.
//!
//! # Membership
//!
//! Joins, leaves and removals are ring epochs agreed as transactions on a
//! reserved key, followed by key moves under custody; Prepares and reads
//! carry the epoch they were planned on. See the `membership` module
//! (src/node/membership.rs) for the protocol and why it is safe, and the
//! `cluster` model for its check. With `auto_remove_after` set, a member the
//! detector has held Dead that long is removed the same way (the
//! `auto_remove` module).
//!
//! In-process callers (the RESP server) use [`Node::handle_local`]: the same
//! transactions and reads, without the answer table, since they do not retry.

mod auto_remove;
mod membership;
mod message;
mod record;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use crate::NodeId;
use crate::commit::{
    self, AbortReason, BeginError, CommitOutput, Coordinator, CoordinatorConfig, Key, Origin,
    Outcome, Participant, ParticipantConfig, RecoverError, TxnId, TxnPlan, Versioned,
};
use crate::detector::machine::{DetectorOutput, HeartbeatTiming, Heartbeats};
use crate::detector::{ConfigError, DetectorConfig, FixedTimeout, Millis, Status};
use crate::output::{Output, Position};
use crate::ring::Epoch;
use crate::ring::RingError;

pub use crate::ring::Layout;
pub use membership::{CHUNK_BYTES, RING_KEY, RingState};
pub use message::{
    ClientId, Dest, HandoffStatus, MemberStatus, NodeEvent, NodeMsg, NodeTimer, ReplicaState,
    Reply, Request, RequestId, StatusView, Unreachable,
};
pub use record::{Answer, AnswerTable, HandoffRecord, NodeDelta, NodeRecord};

/// The output of a [`Node`].
pub type NodeOutput = Output<Dest, NodeMsg, NodeTimer, NodeDelta, NodeEvent>;

/// How many clients' answers a node keeps by default.
pub const ANSWER_CAPACITY: usize = 65_536;

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

/// A node's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeConfig {
    /// This node.
    pub me: NodeId,
    /// Every member of the cluster, this node included.
    pub members: Vec<NodeId>,
    /// Points per node on the ring.
    pub vnodes: u32,
    /// How many nodes hold each key (at most the number of members).
    pub replicas: usize,
    /// The machines' timers.
    pub timing: NodeTiming,
    /// How many clients' answers to keep (see [`AnswerTable`]).
    pub answer_capacity: usize,
    /// Where each member is reached, as the first ring records it (the
    /// machine does not use addresses; a joining node learns them).
    pub addresses: BTreeMap<NodeId, String>,
    /// Start as a node waiting to join a cluster: a member's ring change
    /// naming it makes it a member. `members` is then just this node.
    pub join: bool,
    /// Remove a member the detector has held Dead this long, in ms, as
    /// `Request::Remove` would (`None`: never; see the `auto_remove`
    /// module). At least `failure_timeout + suspicion_timeout`, and only with
    /// `replicas` of 2 or more.
    pub auto_remove_after: Option<Millis>,
}

impl NodeConfig {
    /// A configuration with default timing, 64 points per node, every key on
    /// `replicas` nodes.
    pub fn new(me: NodeId, members: Vec<NodeId>, replicas: usize) -> NodeConfig {
        NodeConfig {
            me,
            members,
            vnodes: 64,
            replicas,
            timing: NodeTiming::default(),
            answer_capacity: ANSWER_CAPACITY,
            addresses: BTreeMap::new(),
            join: false,
            auto_remove_after: None,
        }
    }
}

/// Why a node could not start.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NodeError {
    /// The node is not among the members.
    #[error("node {0} is not among the members; list every node id, this node's included")]
    NotAMember(NodeId),
    /// A node id is listed twice.
    #[error("node id {0} is listed twice; give each node a distinct id")]
    DuplicateMember(NodeId),
    /// `replicas` is zero.
    #[error("replicas must be at least 1")]
    NoReplicas,
    /// A timer range is empty or zero.
    #[error("timer `{0}` must be a non-empty range of positive durations (min ≤ max, min > 0)")]
    BadTimer(&'static str),
    /// `auto_remove_after` is shorter than the detector takes to declare a
    /// node Dead.
    #[error(
        "auto_remove_after ({after} ms) is shorter than the failure detector takes to declare a node \
         dead (failure_timeout + suspicion_timeout = {declared} ms), so a node that is only \
         restarting or briefly cut off could be removed; set it to at least {declared} ms, or leave \
         it unset and remove dead nodes by hand (`haft remove`)"
    )]
    AutoRemoveTooSoon {
        /// The wait configured, in ms.
        after: Millis,
        /// The detector's failure and suspicion timeouts together, in ms.
        declared: Millis,
    },
    /// `auto_remove_after` is set with one replica per key.
    #[error(
        "auto_remove_after needs replicas of at least 2: with one copy of each key, removing a dead \
         node loses its keys for good; raise replicas, or remove the node by hand (`haft remove`)"
    )]
    AutoRemoveOneReplica,
    /// A detector setting was refused.
    #[error("failure detector: {0}")]
    Detector(#[from] ConfigError),
    /// The ring could not be built.
    #[error("ring: {0}")]
    Ring(#[from] RingError),
    /// The coordinator could not recover.
    #[error(transparent)]
    Recover(#[from] RecoverError),
}

/// Who waits for a transaction's outcome or a read's values.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Waiter {
    client: ClientId,
    id: RequestId,
    /// The node that relayed the request, to which the reply goes back.
    via: Option<NodeId>,
    /// Whether the answer goes into the answer table (remote clients).
    remember: bool,
    /// Nobody waits: the node began the request itself (an automatic
    /// removal), and its answer goes nowhere.
    internal: bool,
}

impl Waiter {
    /// An in-process caller ([`Node::handle_local`]): it gets one answer and
    /// never retries, so the node itself asks again what the network lost.
    fn in_process(&self) -> bool {
        self.via.is_none() && !self.remember && !self.internal
    }
}

/// A read spread over several replicas.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Gather {
    waiter: Waiter,
    keys: Vec<Key>,
    values: BTreeMap<Key, Option<Versioned>>,
    /// The replica each key was last asked.
    asked: BTreeMap<Key, NodeId>,
}

/// Which keys of a read under way to ask again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reroute {
    /// Those asked of this node.
    AskedOf(NodeId),
    /// Every key not answered yet.
    All,
    /// Those asked of a node that is no longer a member.
    Gone,
}

/// A read a replica holds until a prepared writer of one of its keys learns
/// its outcome.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ParkedRead {
    from: NodeId,
    client: ClientId,
    id: RequestId,
    keys: Vec<Key>,
    /// The ring epoch the reader chose this replica by.
    epoch: Epoch,
}

/// One node of the cluster. See the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Node {
    me: NodeId,
    answer_capacity: usize,
    placement: Arc<Layout>,
    coordinator: Coordinator,
    participant: Participant,
    /// Shared by the node's copies until one changes it: a model checker
    /// copies the node at every step, and most steps leave the detector alone.
    detector: Arc<Heartbeats<FixedTimeout>>,
    answers: AnswerTable,
    /// Answers whose delta may not be durable yet.
    undurable_answers: BTreeMap<ClientId, Position>,
    /// The transaction each running remote request started.
    in_flight: BTreeMap<(ClientId, RequestId), TxnId>,
    /// Who waits for each transaction this node coordinates.
    waiting: BTreeMap<TxnId, Waiter>,
    /// Reads waiting for replicas.
    gathers: BTreeMap<(ClientId, RequestId), Gather>,
    /// Reads held by prepared writers, per writer.
    parked: BTreeMap<TxnId, Vec<ParkedRead>>,
    /// The ring this node runs, as agreed (see [`membership`]).
    ring: Arc<RingState>,
    /// False for a node waiting to join, until it installs a ring.
    joined: bool,
    /// A member told this node that a later ring left it out
    /// ([`NodeEvent::Fenced`]): it takes part in nothing any more.
    fenced: bool,
    /// The move of keys into the current epoch, until it is finished.
    moving: Option<Box<membership::Move>>,
    /// Its durable progress.
    handoff: HandoffRecord,
    /// The estimator a newly monitored peer gets.
    estimator: FixedTimeout,
    /// How often unacknowledged handoff chunks are resent.
    timing_resend: Range<Duration>,
    /// The ring key's version this node's ring was installed from (`None`:
    /// the configured first ring).
    installed: Option<commit::Version>,
    /// Reads told by a replica that the ring moved on, waiting for this node
    /// to install the newer ring.
    stale_reads: BTreeSet<(ClientId, RequestId)>,
    /// How long a member stays Dead before this node removes it, in ms.
    auto_remove_after: Option<Millis>,
    /// The members whose [`NodeTimer::AutoRemove`] is armed.
    dead_watched: BTreeSet<NodeId>,
}

impl Node {
    /// Starts the node from its durable record (the default record on a first
    /// start), in a new incarnation. See the [module docs](self): the driver
    /// makes this output durable before the first input.
    pub fn recover(
        config: &NodeConfig,
        mut record: NodeRecord,
        out: &mut NodeOutput,
    ) -> Result<Node, NodeError> {
        let timing = &config.timing;
        for (name, range) in [
            ("vote_timeout", &timing.vote_timeout),
            ("resend_every", &timing.resend_every),
            ("uncertain_after", &timing.uncertain_after),
        ] {
            if range.start.is_zero() || range.start > range.end {
                return Err(NodeError::BadTimer(name));
            }
        }
        let mut members = BTreeSet::new();
        for member in &config.members {
            if !members.insert(*member) {
                return Err(NodeError::DuplicateMember(*member));
            }
        }
        if !members.contains(&config.me) {
            return Err(NodeError::NotAMember(config.me));
        }
        if config.replicas == 0 {
            return Err(NodeError::NoReplicas);
        }
        if let Some(after) = config.auto_remove_after {
            let declared = timing
                .failure_timeout
                .saturating_add(timing.suspicion_timeout);
            if after < declared {
                return Err(NodeError::AutoRemoveTooSoon { after, declared });
            }
            if config.replicas < 2 {
                return Err(NodeError::AutoRemoveOneReplica);
            }
        }
        let first_epoch = if config.join { 0 } else { 1 };
        let placement = Layout::new(first_epoch, &config.members, config.vnodes, config.replicas)?;
        let ring = RingState {
            epoch: first_epoch,
            members: config
                .members
                .iter()
                .map(|m| (*m, config.addresses.get(m).cloned().unwrap_or_default()))
                .collect(),
            previous: Vec::new(),
            removed: None,
            vnodes: config.vnodes,
            replicas: config.replicas,
        };
        record.reindex();
        let me = config.me;
        let mut inner = CommitOutput::at(out.end());
        let coordinator = Coordinator::recover(
            me,
            CoordinatorConfig {
                vote_timeout: timing.vote_timeout.clone(),
                resend_every: timing.resend_every.clone(),
            },
            record.coordinator,
            &mut inner,
        )?;
        let participant = Participant::recover(
            me,
            ParticipantConfig {
                uncertain_after: timing.uncertain_after.clone(),
            },
            record.participant,
            &mut inner,
        );
        // Dead is final for a detector incarnation: each life starts its
        // detector above every incarnation of the earlier lives (a life raises
        // it by one per refuted suspicion; 2^32 of them is out of reach).
        let floor = coordinator.incarnation() << 32;
        let estimator = FixedTimeout::new(timing.failure_timeout)?;
        let mut detector_out = DetectorOutput::at(0);
        let detector = Heartbeats::start(
            me,
            &config.members,
            estimator.clone(),
            DetectorConfig {
                suspicion_timeout: timing.suspicion_timeout,
            },
            HeartbeatTiming {
                heartbeat_interval: timing.heartbeat_interval,
                check_interval: timing.check_interval,
            },
            floor,
            &mut detector_out,
        )?;
        let mut node = Node {
            me,
            answer_capacity: config.answer_capacity.max(1),
            placement: Arc::new(placement),
            coordinator,
            participant,
            detector: Arc::new(detector),
            answers: record.answers,
            undurable_answers: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            waiting: BTreeMap::new(),
            gathers: BTreeMap::new(),
            parked: BTreeMap::new(),
            ring: Arc::new(ring),
            joined: !config.join,
            fenced: false,
            moving: None,
            handoff: record.handoff,
            estimator,
            timing_resend: timing.resend_every.clone(),
            stale_reads: BTreeSet::new(),
            installed: None,
            auto_remove_after: config.auto_remove_after,
            dead_watched: BTreeSet::new(),
        };
        node.absorb_commit(inner, out);
        node.absorb_detector(detector_out, out);
        node.install_stored_ring(out);
        Ok(node)
    }

    // --- getters -------------------------------------------------------------

    /// This node.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// This life's incarnation.
    pub fn incarnation(&self) -> u64 {
        self.coordinator.incarnation()
    }

    /// Where keys live.
    pub fn placement(&self) -> &Layout {
        &self.placement
    }

    /// Whether a read of `client`'s request `id` is under way here: asked of
    /// the replicas, not answered yet.
    pub fn reading(&self, client: ClientId, id: RequestId) -> bool {
        self.gathers.contains_key(&(client, id))
    }

    /// The coordinator half.
    pub fn coordinator(&self) -> &Coordinator {
        &self.coordinator
    }

    /// The participant half.
    pub fn participant(&self) -> &Participant {
        &self.participant
    }

    /// The failure detector.
    pub fn detector(&self) -> &Heartbeats<FixedTimeout> {
        &self.detector
    }

    /// The answers given to remote clients.
    pub fn answers(&self) -> &AnswerTable {
        &self.answers
    }

    /// The remote request `txn` runs for, if it is still running here.
    pub fn request_of(&self, txn: TxnId) -> Option<(ClientId, RequestId)> {
        self.waiting
            .get(&txn)
            .filter(|waiter| waiter.remember)
            .map(|waiter| (waiter.client, waiter.id))
    }

    /// The durable record this memory implies; a checkpoint writes it.
    pub fn record(&self) -> NodeRecord {
        NodeRecord {
            coordinator: self.coordinator.record(),
            participant: self.participant.record().clone(),
            answers: self.answers.clone(),
            handoff: self.handoff.clone(),
        }
    }

    /// What this node believes about `member`.
    pub fn member_status(&self, member: NodeId) -> MemberStatus {
        if member == self.me {
            return MemberStatus::Me;
        }
        let Some(peer) = self.detector.detector().peer(member) else {
            return MemberStatus::Unknown;
        };
        match peer.status {
            Status::Alive if peer.last_sequence.is_none() && peer.incarnation == 0 => {
                MemberStatus::Unknown
            }
            Status::Alive => MemberStatus::Alive,
            Status::Suspect { .. } => MemberStatus::Suspect,
            Status::Dead => MemberStatus::Dead,
        }
    }

    /// The node's status (the driver fills in its counters).
    pub fn status(&self) -> StatusView {
        StatusView {
            node: self.me.0,
            incarnation: self.incarnation(),
            epoch: self.placement.epoch(),
            replicas: self.placement.replicas() as u64,
            members: self
                .placement
                .members()
                .iter()
                .map(|member| (member.0, self.member_status(*member)))
                .collect(),
            coordinating: self.coordinator.txns().len() as u64,
            prepared: self.participant.prepared().count() as u64,
            keys: self
                .participant
                .record()
                .store
                .len()
                .saturating_sub(usize::from(self.ring_version().is_some()))
                as u64,
            member: self.joined && self.placement.is_member(self.me),
            handoff: self.handoff_status(),
            counters: BTreeMap::new(),
        }
    }

    // --- inputs --------------------------------------------------------------

    /// Every delta at a position below `upto` is durable.
    pub fn handle_persisted(&mut self, upto: Position) {
        self.coordinator.handle_persisted(upto);
        self.participant.handle_persisted(upto);
        self.undurable_answers
            .retain(|_, position| *position >= upto);
    }

    /// Handles a request from a remote client (over the network, with the
    /// answer table).
    pub fn handle_request(
        &mut self,
        client: ClientId,
        id: RequestId,
        home: Option<NodeId>,
        request: Request,
        out: &mut NodeOutput,
    ) {
        let waiter = Waiter {
            client,
            id,
            via: None,
            remember: true,
            internal: false,
        };
        self.on_request(waiter, home.unwrap_or(self.me), request, out);
    }

    /// Handles a request from an in-process caller, which does not retry: no
    /// answer table, no relay. The reply goes to `Dest::Client(client)`. For
    /// a read of keys held elsewhere the node itself asks again, on a
    /// [`NodeTimer::Read`], while an answer is missing.
    pub fn handle_local(
        &mut self,
        client: ClientId,
        id: RequestId,
        request: Request,
        out: &mut NodeOutput,
    ) {
        let waiter = Waiter {
            client,
            id,
            via: None,
            remember: false,
            internal: false,
        };
        self.on_request(waiter, self.me, request, out);
    }

    /// Handles a message from another node (or from this one).
    pub fn handle_message(&mut self, from: NodeId, msg: NodeMsg, out: &mut NodeOutput) {
        if self.fenced {
            return;
        }
        if self.joined && !self.knows(from) && !self.is_participant(from, &msg) {
            // Only members vote, prepare, relay or claim an outcome (and a
            // joining node votes on the ring change that adds it). A node
            // that still beats to us after a ring change left it out is told.
            if matches!(msg, NodeMsg::Detector(_)) && self.placement.is_member(self.me) {
                let epoch = self.placement.epoch();
                out.send(Dest::Node(from), NodeMsg::NotMember { epoch });
            }
            return;
        }
        if !self.joined && !matches!(msg, NodeMsg::Prepare { .. } | NodeMsg::Commit(_)) {
            // A node waiting to join takes part only in the ring change
            // that makes it a member.
            return;
        }
        match msg {
            NodeMsg::Prepare { epoch, prepare } => {
                let mut inner = CommitOutput::at(out.end());
                let refused = match (self.fence(epoch, &prepare), &prepare) {
                    (Some(refusal), commit::Msg::Prepare { txn, .. }) => {
                        self.participant.refuse(from, *txn, refusal, &mut inner)
                    }
                    _ => false,
                };
                if !refused {
                    self.participant.handle_message(from, prepare, &mut inner);
                }
                self.absorb_commit(inner, out);
            }
            NodeMsg::Handoff {
                epoch,
                chunk,
                last,
                entries,
            } => self.on_handoff(from, epoch, chunk, last, entries, out),
            NodeMsg::HandoffAck { epoch, chunk } => self.on_handoff_ack(from, epoch, chunk, out),
            NodeMsg::NotMember { epoch } => self.on_not_member(from, epoch, out),
            NodeMsg::ReadStale { client, id, epoch } => {
                self.on_read_stale(from, client, id, epoch, out)
            }
            NodeMsg::Commit(msg) => {
                let to_coordinator = msg.is_for_coordinator()
                    || matches!(msg, commit::Msg::Query { txn } if txn.node() == self.me);
                let mut inner = CommitOutput::at(out.end());
                if to_coordinator {
                    self.coordinator.handle_message(from, msg, &mut inner);
                } else {
                    self.participant.handle_message(from, msg, &mut inner);
                }
                self.absorb_commit(inner, out);
            }
            NodeMsg::Detector(msg) => {
                let mut inner = DetectorOutput::at(0);
                Arc::make_mut(&mut self.detector).handle_message(from, msg, &mut inner);
                self.absorb_detector(inner, out);
            }
            NodeMsg::Request {
                client,
                id,
                home,
                request,
            } => {
                let waiter = Waiter {
                    client,
                    id,
                    via: Some(from),
                    remember: true,
                    internal: false,
                };
                self.on_request(waiter, home.unwrap_or(self.me), request, out);
            }
            // The home of a relayed request answered: pass it on.
            NodeMsg::Reply { client, id, reply } => {
                out.send(Dest::Client(client), NodeMsg::Reply { client, id, reply });
            }
            NodeMsg::Read {
                client,
                id,
                keys,
                epoch,
            } => {
                self.serve_read(
                    ParkedRead {
                        from,
                        client,
                        id,
                        keys,
                        epoch,
                    },
                    out,
                );
            }
            NodeMsg::ReadReply { client, id, values } => {
                self.deliver_values(client, id, values, out);
            }
        }
    }

    /// Handles a timer.
    pub fn handle_timer(&mut self, timer: &NodeTimer, out: &mut NodeOutput) {
        match timer {
            NodeTimer::Commit(timer) => {
                let mut inner = CommitOutput::at(out.end());
                match timer {
                    commit::Timer::VoteTimeout(_) | commit::Timer::Resend(_) => {
                        self.coordinator.handle_timer(timer, &mut inner)
                    }
                    commit::Timer::Uncertain(_) => self.participant.handle_timer(timer, &mut inner),
                }
                self.absorb_commit(inner, out);
            }
            NodeTimer::Detector(timer) => {
                let mut inner = DetectorOutput::at(0);
                Arc::make_mut(&mut self.detector).handle_timer(*timer, &mut inner);
                self.absorb_detector(inner, out);
            }
            NodeTimer::Handoff => self.on_handoff_timer(out),
            NodeTimer::Read { client, id } => self.reroute(*client, *id, Reroute::All, out),
            NodeTimer::AutoRemove(member) => self.on_auto_remove_timer(*member, out),
        }
    }

    // --- clients -------------------------------------------------------------

    fn on_request(&mut self, waiter: Waiter, home: NodeId, request: Request, out: &mut NodeOutput) {
        if self.fenced && !matches!(request, Request::Status) {
            let reason = format!(
                "node {} was removed from the cluster while it was down; its data is stale: \
                 delete its data directory and join again with --join",
                self.me.0
            );
            return self.reply(&waiter, Reply::Refused { reason }, false, out);
        }
        let data = match &request {
            Request::Txn { reads, writes } => reads.keys().chain(writes.keys()).collect(),
            Request::Read { keys } => keys.iter().collect(),
            _ => Vec::new(),
        };
        if data.iter().any(|key| key.as_ref() == RING_KEY) {
            let reason = format!(
                "key {} is reserved for the ring; use another key",
                commit::show(RING_KEY)
            );
            return self.reply(&waiter, Reply::Refused { reason }, true, out);
        }
        if !self.joined && !matches!(request, Request::Status) {
            let reason = format!(
                "node {} has not joined a cluster yet; ask a member, or wait for the join",
                self.me
            );
            return self.reply(&waiter, Reply::Refused { reason }, true, out);
        }
        // A transaction (a ring change too) runs at its home only.
        let runs_at_home = matches!(
            request,
            Request::Txn { .. }
                | Request::Join { .. }
                | Request::Leave { .. }
                | Request::Remove { .. }
        );
        if runs_at_home && waiter.remember && home != self.me {
            if waiter.via.is_some() {
                // Relayed to a node that is not its home: refuse rather than
                // relay again.
                let reason = format!(
                    "request relayed to node {} but its home is node {home}",
                    self.me
                );
                self.reply(&waiter, Reply::Refused { reason }, true, out);
            } else {
                let relay = NodeMsg::Request {
                    client: waiter.client,
                    id: waiter.id,
                    home: Some(home),
                    request,
                };
                out.send(Dest::Node(home), relay);
            }
            return;
        }
        match request {
            Request::Txn { reads, writes } => self.begin(waiter, reads, writes, out),
            Request::Read { keys } => self.start_read(waiter, keys, out),
            Request::Status => {
                let status = self.status();
                self.reply(&waiter, Reply::Status(status), true, out);
            }
            change @ (Request::Join { .. } | Request::Leave { .. } | Request::Remove { .. }) => {
                if !self.answered_or_running(&waiter, out) {
                    self.change_ring(waiter, change, out);
                }
            }
        }
    }

    fn begin(
        &mut self,
        waiter: Waiter,
        reads: BTreeMap<Key, Option<commit::Version>>,
        writes: BTreeMap<Key, Option<commit::Value>>,
        out: &mut NodeOutput,
    ) {
        if self.answered_or_running(&waiter, out) {
            return;
        }
        if !self.placement.is_member(self.me) {
            // It has left the ring: it only finishes what it coordinates,
            // then departs.
            let reason = format!(
                "node {} has left the ring (epoch {}); send the transaction to a member",
                self.me,
                self.placement.epoch()
            );
            return self.reply(&waiter, Reply::Refused { reason }, true, out);
        }
        // Each replica's keys are gathered in key order, then each map is
        // built in one pass from its sorted list (inserting key by key would
        // compare each key with a dozen others).
        type Lists = BTreeMap<NodeId, (Vec<(Key, Option<commit::Version>)>, WriteList)>;
        type WriteList = Vec<(Key, Option<commit::Value>)>;
        let mut lists = Lists::new();
        for (key, version) in reads {
            for replica in self.placement.holders(&key) {
                lists
                    .entry(replica)
                    .or_default()
                    .0
                    .push((key.clone(), version));
            }
        }
        for (key, value) in writes {
            for replica in self.placement.holders(&key) {
                lists
                    .entry(replica)
                    .or_default()
                    .1
                    .push((key.clone(), value.clone()));
            }
        }
        let plan: TxnPlan = lists
            .into_iter()
            .map(|(replica, (reads, writes))| {
                let part = commit::Part {
                    reads: reads.into_iter().collect(),
                    writes: writes.into_iter().collect(),
                };
                (replica, part)
            })
            .collect();
        self.begin_plan(waiter, plan, out);
    }

    /// Whether `waiter`'s request was answered (it is answered again) or is
    /// running (the answer will take the route the client used last).
    fn answered_or_running(&mut self, waiter: &Waiter, out: &mut NodeOutput) -> bool {
        let (client, id) = (waiter.client, waiter.id);
        if waiter.remember {
            if let Some(answer) = self.answers.get(client).copied() {
                if id < answer.request {
                    return true; // A late copy: the client has moved on.
                }
                if id == answer.request {
                    // A retry of an answered request: the same answer.
                    let durable = !self.undurable_answers.contains_key(&client);
                    let reply = Reply::Txn {
                        txn: answer.txn,
                        outcome: answer.outcome,
                        reason: None,
                    };
                    self.reply(waiter, reply, durable, out);
                    return true;
                }
            }
            if let Some(txn) = self.in_flight.get(&(client, id)) {
                // A retry of a running request: answer it by the route the
                // client used last.
                if let Some(running) = self.waiting.get_mut(txn) {
                    running.via = waiter.via;
                }
                return true;
            }
        }
        false
    }

    /// Begins a transaction over `plan` for `waiter`.
    fn begin_plan(&mut self, waiter: Waiter, plan: TxnPlan, out: &mut NodeOutput) {
        let (client, id) = (waiter.client, waiter.id);
        let origin = waiter.remember.then_some(Origin {
            client,
            request: id,
        });
        let mut inner = CommitOutput::at(out.end());
        let begun = self.coordinator.begin(plan, origin, &mut inner);
        self.absorb_commit(inner, out);
        match begun {
            Ok(txn) => {
                if waiter.remember {
                    self.in_flight.insert((client, id), txn);
                }
                self.waiting.insert(txn, waiter);
            }
            Err(error @ (BeginError::Empty | BeginError::IdsExhausted)) => {
                let reason = error.to_string();
                self.reply(&waiter, Reply::Refused { reason }, true, out);
            }
        }
    }

    /// Answers the waiter of `txn`, now decided.
    fn on_decided(
        &mut self,
        txn: TxnId,
        outcome: Outcome,
        reason: Option<AbortReason>,
        out: &mut NodeOutput,
    ) {
        let Some(waiter) = self.waiting.remove(&txn) else {
            return;
        };
        if waiter.remember {
            self.in_flight.remove(&(waiter.client, waiter.id));
        }
        let durable = match (outcome, waiter.remember) {
            // The commit record (with the request, for a remote client) is in
            // this output: the answer waits for it.
            (Outcome::Commit, _) => false,
            (Outcome::Abort, true) => {
                let delta = NodeDelta::Aborted {
                    client: waiter.client,
                    request: waiter.id,
                    txn,
                };
                self.persist(delta, out);
                false
            }
            // An in-process caller does not retry: nothing to record, and an
            // abort is final whether or not anything is durable.
            (Outcome::Abort, false) => true,
        };
        let reply = Reply::Txn {
            txn,
            outcome,
            reason,
        };
        self.reply(&waiter, reply, durable, out);
    }

    fn reply(&self, waiter: &Waiter, reply: Reply, durable: bool, out: &mut NodeOutput) {
        if waiter.internal {
            return;
        }
        let to = match waiter.via {
            Some(node) => Dest::Node(node),
            None => Dest::Client(waiter.client),
        };
        let msg = NodeMsg::Reply {
            client: waiter.client,
            id: waiter.id,
            reply,
        };
        out.send_resting_on(to, msg, durable);
    }

    // --- reads ---------------------------------------------------------------

    /// The replica to read `key` from: this node if it holds the key, else the
    /// first replica the detector does not suspect; `None` if it suspects
    /// them all.
    fn read_from(&self, key: &[u8]) -> Option<NodeId> {
        let replicas = self.placement.holders(key);
        if replicas.contains(&self.me) {
            return Some(self.me);
        }
        replicas
            .iter()
            .copied()
            .find(|replica| self.reachable(*replica))
    }

    /// Whether the detector believes `member` reachable: not suspected, not
    /// declared dead.
    fn reachable(&self, member: NodeId) -> bool {
        !matches!(
            self.member_status(member),
            MemberStatus::Suspect | MemberStatus::Dead
        )
    }

    /// The answer to a read of `key` when no replica of it is reachable.
    fn unreachable(&self, key: &Key) -> Reply {
        let replicas = self
            .placement
            .holders(key)
            .iter()
            .map(|replica| ReplicaState {
                node: replica.0,
                status: self.member_status(*replica),
                address: None,
            })
            .collect();
        Reply::Unreachable(Unreachable {
            node: self.me.0,
            key: key.clone(),
            replicas,
        })
    }

    fn start_read(&mut self, waiter: Waiter, keys: Vec<Key>, out: &mut NodeOutput) {
        let (client, id) = (waiter.client, waiter.id);
        if let Some(gather) = self.gathers.get_mut(&(client, id)) {
            // A retry of a read under way: the read or its reply may have
            // been lost, so ask again for every key not answered yet (of the
            // replica the latest view picks), and answer by the latest route.
            gather.waiter.via = waiter.via;
            self.reroute(client, id, Reroute::All, out);
            return;
        }
        let mut by_replica: BTreeMap<NodeId, Vec<Key>> = BTreeMap::new();
        let mut asked = BTreeMap::new();
        for key in &keys {
            let Some(replica) = self.read_from(key) else {
                let reply = self.unreachable(key);
                self.reply(&waiter, reply, true, out);
                return;
            };
            by_replica.entry(replica).or_default().push(key.clone());
            asked.insert(key.clone(), replica);
        }
        self.gathers.insert(
            (client, id),
            Gather {
                waiter,
                keys,
                values: BTreeMap::new(),
                asked,
            },
        );
        if by_replica.is_empty() {
            self.deliver_values(client, id, Vec::new(), out);
        }
        let epoch = self.placement.epoch();
        for (replica, keys) in by_replica {
            if replica == self.me {
                let from = self.me;
                self.serve_read(
                    ParkedRead {
                        from,
                        client,
                        id,
                        keys,
                        epoch,
                    },
                    out,
                );
            } else {
                let read = NodeMsg::Read {
                    client,
                    id,
                    keys,
                    epoch,
                };
                out.send(Dest::Node(replica), read);
            }
        }
        self.ask_again_later(client, id, out);
    }

    /// Arms the timer that asks again for an in-process caller's read, if
    /// a key of it waits on another node; cancels it once none does.
    fn ask_again_later(&self, client: ClientId, id: RequestId, out: &mut NodeOutput) {
        let Some(gather) = self.gathers.get(&(client, id)) else {
            return;
        };
        if !gather.waiter.in_process() {
            return; // Remote clients retry, and a retry asks again.
        }
        let timer = NodeTimer::Read { client, id };
        let elsewhere = gather
            .asked
            .iter()
            .any(|(key, replica)| *replica != self.me && !gather.values.contains_key(key));
        if elsewhere {
            out.set_timer(timer, self.timing_resend.clone());
        } else {
            out.cancel_timer(timer);
        }
    }

    /// Answers a read that is over, and cancels its timer if it had one.
    fn finish_read(&mut self, gather: Gather, reply: Reply, out: &mut NodeOutput) {
        if gather.waiter.in_process() {
            let (client, id) = (gather.waiter.client, gather.waiter.id);
            out.cancel_timer(NodeTimer::Read { client, id });
        }
        self.reply(&gather.waiter, reply, true, out);
    }

    /// Asks again, of another replica, each key of a read under way still
    /// unanswered by a replica `which` names; if no replica of a key is
    /// reachable, the read is answered [`Reply::Unreachable`].
    fn reroute(&mut self, client: ClientId, id: RequestId, which: Reroute, out: &mut NodeOutput) {
        let Some(gather) = self.gathers.get(&(client, id)) else {
            return;
        };
        let mut moved: BTreeMap<NodeId, Vec<Key>> = BTreeMap::new();
        for (key, replica) in &gather.asked {
            let again = match which {
                Reroute::AskedOf(node) => *replica == node,
                Reroute::All => true,
                Reroute::Gone => !self.placement.is_member(*replica),
            };
            if gather.values.contains_key(key) || !again {
                continue;
            }
            match self.read_from(key) {
                Some(next) => moved.entry(next).or_default().push(key.clone()),
                None => {
                    let reply = self.unreachable(key);
                    if let Some(gather) = self.gathers.remove(&(client, id)) {
                        self.finish_read(gather, reply, out);
                    }
                    return;
                }
            }
        }
        let Some(gather) = self.gathers.get_mut(&(client, id)) else {
            return;
        };
        let epoch = self.placement.epoch();
        for (replica, keys) in moved {
            for key in &keys {
                gather.asked.insert(key.clone(), replica);
            }
            let read = NodeMsg::Read {
                client,
                id,
                keys,
                epoch,
            };
            out.send(Dest::Node(replica), read);
        }
        self.ask_again_later(client, id, out);
    }

    /// A replica was asked on another epoch than its own: ask again under
    /// this node's ring, at once if it is at least as new as the replica's,
    /// else once this node installs a newer one.
    fn on_read_stale(
        &mut self,
        from: NodeId,
        client: ClientId,
        id: RequestId,
        epoch: Epoch,
        out: &mut NodeOutput,
    ) {
        if !self.gathers.contains_key(&(client, id)) {
            return;
        }
        if epoch > self.placement.epoch() {
            self.stale_reads.insert((client, id));
        } else {
            self.reroute(client, id, Reroute::AskedOf(from), out);
        }
    }

    /// Reads `read.keys` here, or parks the read: behind a ring change this
    /// node has voted on, behind a prepared writer, or until the keys' handoff
    /// has arrived. A read planned on another epoch is sent back.
    fn serve_read(&mut self, read: ParkedRead, out: &mut NodeOutput) {
        if let Err(ring_change) = self.participant.read(RING_KEY) {
            let parked = self.parked.entry(ring_change).or_default();
            if !parked.contains(&read) {
                parked.push(read);
            }
            return;
        }
        let epoch = self.placement.epoch();
        if read.epoch != epoch {
            if read.from == self.me {
                self.on_read_stale(self.me, read.client, read.id, epoch, out);
            } else {
                let stale = NodeMsg::ReadStale {
                    client: read.client,
                    id: read.id,
                    epoch,
                };
                out.send(Dest::Node(read.from), stale);
            }
            return;
        }
        let Some(read) = self.park_in_custody(read) else {
            return;
        };
        let mut values = Vec::with_capacity(read.keys.len());
        for key in &read.keys {
            match self.participant.read(key) {
                Ok(value) => values.push((key.clone(), value.cloned())),
                Err(writer) => {
                    // A duplicate or a retry of a read already parked waits
                    // as the one copy: the network and clients repeat reads
                    // without bound, the parked list must not grow with them.
                    let parked = self.parked.entry(writer).or_default();
                    if !parked.contains(&read) {
                        parked.push(read);
                    }
                    return;
                }
            }
        }
        if read.from == self.me {
            self.deliver_values(read.client, read.id, values, out);
        } else {
            let reply = NodeMsg::ReadReply {
                client: read.client,
                id: read.id,
                values,
            };
            out.send(Dest::Node(read.from), reply);
        }
    }

    fn deliver_values(
        &mut self,
        client: ClientId,
        id: RequestId,
        values: Vec<(Key, Option<Versioned>)>,
        out: &mut NodeOutput,
    ) {
        let Some(gather) = self.gathers.get_mut(&(client, id)) else {
            return; // A late reply: the read was answered.
        };
        gather.values.extend(values);
        if gather
            .keys
            .iter()
            .any(|key| !gather.values.contains_key(key))
        {
            return;
        }
        let Some(gather) = self.gathers.remove(&(client, id)) else {
            return;
        };
        let values = gather
            .keys
            .iter()
            .map(|key| (key.clone(), gather.values.get(key).cloned().flatten()))
            .collect();
        self.finish_read(gather, Reply::Values(values), out);
    }

    // --- delegation ----------------------------------------------------------

    /// Appends a node-level delta and applies it to the answer table.
    fn persist(&mut self, delta: NodeDelta, out: &mut NodeOutput) {
        self.answers.apply(&delta);
        let client = match &delta {
            NodeDelta::Aborted { client, .. } => Some(*client),
            _ => None,
        };
        let position = out.persist(delta);
        if let Some(client) = client {
            self.undurable_answers.insert(client, position);
            self.keep_answers_bounded(client, out);
        }
    }

    /// Evicts the oldest answers beyond capacity, never `newest`'s.
    fn keep_answers_bounded(&mut self, newest: ClientId, out: &mut NodeOutput) {
        while self.answers.len() > self.answer_capacity {
            let Some(oldest) = self.answers.oldest().filter(|c| *c != newest) else {
                return;
            };
            let delta = NodeDelta::Evicted { client: oldest };
            self.answers.apply(&delta);
            self.undurable_answers.remove(&oldest);
            let _ = out.persist(delta);
        }
    }

    /// Maps a commit machine's output into the node's and acts on its events.
    fn absorb_commit(&mut self, inner: CommitOutput, out: &mut NodeOutput) {
        let first = out.persist.len();
        let mut events = Vec::new();
        let epoch = if self.joined {
            self.placement.epoch()
        } else {
            0
        };
        out.absorb(
            inner,
            Dest::Node,
            |msg| match msg {
                prepare @ commit::Msg::Prepare { .. } => NodeMsg::Prepare { epoch, prepare },
                other => NodeMsg::Commit(other),
            },
            NodeTimer::Commit,
            NodeDelta::Commit,
            |event| {
                events.push(event.clone());
                Some(NodeEvent::Commit(event))
            },
        );
        // A commit decision carries its request: the answer table learns it
        // from the same delta.
        let mut answered = Vec::new();
        for (offset, delta) in out.persist[first..].iter().enumerate() {
            if let NodeDelta::Commit(commit::Delta::Coordinator(
                commit::CoordinatorDelta::Committed {
                    origin: Some(origin),
                    ..
                },
            )) = delta
            {
                self.answers.apply(delta);
                let position = out.base + (first + offset) as Position;
                answered.push((origin.client, position));
            }
        }
        for (client, position) in answered {
            self.undurable_answers.insert(client, position);
            self.keep_answers_bounded(client, out);
        }
        for event in events {
            match event {
                commit::Event::Decided {
                    txn,
                    outcome,
                    reason,
                } => self.on_decided(txn, outcome, reason, out),
                commit::Event::Learned { txn, outcome } => {
                    if outcome == Outcome::Commit && self.ring_version() != self.installed {
                        self.install_stored_ring(out);
                    }
                    if self.moving.is_some() {
                        self.advance_move(out);
                    }
                    for read in self.parked.remove(&txn).unwrap_or_default() {
                        self.serve_read(read, out);
                    }
                }
            }
        }
        // A node that has left departs once it has forgotten the last
        // transaction it coordinates.
        self.depart_if_done(out);
    }

    fn absorb_detector(&mut self, inner: DetectorOutput, out: &mut NodeOutput) {
        let mut inner = inner;
        inner.base = out.end();
        out.absorb(
            inner,
            Dest::Node,
            NodeMsg::Detector,
            NodeTimer::Detector,
            |never| match never {},
            |never| match never {},
        );
        self.watch_dead(out);
    }
}

/// An outcome's name, for logs and the command line.
pub fn outcome_name(outcome: Outcome) -> &'static str {
    outcome.as_str()
}
