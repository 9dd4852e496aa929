//! `two-phase`: the coordinator and participants of `src/commit`, the
//! production machines themselves, as actors on an unordered, duplicating
//! (optionally lossy) network with crashes and a simulated disk — the network
//! of [`super::network`], where loss is one step that loses every message in
//! flight (which stands for any pattern of loss), and the disk of
//! [`super::host`].
//!
//! Properties are Bernstein, Hadzilacos & Goodman's atomic-commitment
//! conditions (*Concurrency Control and Recovery in Database Systems*, 1987,
//! §7.2):
//!
//! - **AC1 agreement**: no two actors decide differently on a transaction;
//! - **AC2 irrevocable**: no actor's decision ever changes;
//! - **AC3 validity**: commit only if every participant voted Yes;
//! - **AC4 non-triviality**: sometimes every participant commits; sometimes the
//!   transaction aborts (`sometimes` properties: the outcomes are reachable);
//! - **AC5 termination** (liveness, AG EF): from every reachable state, crashes
//!   and losses included, some path leads to a state where every participant
//!   has decided — judged on the whole explored graph, so a coordinator that
//!   only ever resends to itself is refuted (stateright's `eventually`, used
//!   before, judged only the states where a path ends and could not fail);
//! - **durability**: a participant's durable store holds exactly the writes it
//!   has acknowledged as committed (so a crash cannot lose one);
//! - **refinement**: projected onto TwoPhase's variables, every explored
//!   transition is a `two-phase-spec` step, a stutter, or — where one handler
//!   counts the last Yes and commits at once — two steps in a row.
//!
//! Decisions are recorded in the model's *history* (an auxiliary variable): an
//! actor announces every decision in a message (a coordinator's `Outcome`, a
//! participant's `Ack`, No vote or answer to a peer), so a crash that wipes an
//! actor's memory cannot hide a decision it made.
//!
//! Actor 0 is the coordinator; actors 1..=participants are the participants,
//! each the node of the same number. A participant may refuse a transaction
//! for reasons of its own (a failed constraint): the model offers it the
//! choice, and a refusal feeds the production participant a Prepare whose
//! constraint — a read of a key at a version it never had — fails validation,
//! so the No is the participant's own.
//!
//! # Symmetry
//!
//! The participants are interchangeable. With `--symmetry` the checker keeps
//! one state per class of states that differ only in the names of the
//! participants ([`symmetry`], over [`crate::checker::symmetry::canonical_by`]);
//! the coordinator, actor 0, never moves. A renaming moves each participant's
//! part of the state (machine, disk, timers, pending choice, saved record) to
//! its new place and renames node ids everywhere: inside the production
//! machines, records and messages through their hook
//! [`RenameNodes`] (own ids, participant sets,
//! peer lists, transaction ids), in the envelopes in flight and in the
//! history. The reduction is sound for everything `two-phase` checks:
//!
//! - **The transitions are symmetric.** The machines use a node id only to
//!   compare it for equality, as a key and as an address; the one place that
//!   orders ids is the coordinator's `begin`, which lists each Prepare's peers
//!   in ring order after its recipient, and it runs once, in the initial
//!   state. From then on a renamed state steps exactly as the original one,
//!   renamed. The initial state is not itself invariant (a renaming may
//!   reverse the ring), which does not matter: the states reachable from a
//!   renamed initial state are the renamed reachable states, so the classes
//!   the search reaches are exactly the classes of the reachable states. It
//!   does bound the gain: the reachable members of a class are the ring's
//!   rotations, so the state count falls about n-fold for n participants
//!   (74,031 → 24,711 at three), not n!-fold.
//! - **Every property is symmetric.** AC1–AC3 and durability treat every
//!   participant alike (with one transaction its plan is the same write at
//!   each); AC4 and cooperative termination look at all participants, or at
//!   the history; AC5's goal (every actor up and idle, every transaction
//!   forgotten) is symmetric, so AG EF judged on the graph of classes is
//!   exact; refinement maps each participant to one RM of TwoPhase, which is
//!   symmetric in its RMs, so a transition refines TwoPhase exactly when its
//!   renamed image does (and the transitions checked are real ones: the search
//!   continues from each concrete successor).
//! - **Every variant is symmetric.** Each changes what every participant does
//!   alike, or what the coordinator does; none names a participant
//!   (`resend-to-self` sends to the coordinator, which does not move).
//! - **Two transactions** contend for a key at participant 1 only, so with
//!   `txns=2` participant 1 stays where it is and only the others are renamed.
//! - **`disk=async`**: the messages a disk holds all leave at its next sync, so
//!   they are a set; a renamed state holds them sorted, and states that differ
//!   only in the order their disk held them are one class.
//!
//! The tests check every variant, refuted, and the correct protocol in several
//! configurations with and without symmetry (the same verdict on every
//! property, counterexamples of the same length, both counts pinned), and that
//! the search keeps exactly one state per class found by brute force.
//!
//! # Variants
//!
//! Each known way to get two-phase commit wrong is a [`Variant`]: a wrapper on
//! the model side that changes what the production machine is fed or what of
//! its output is carried out. Production code has no variant.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use stateright::Property;
use stateright::actor::{Actor, ActorModel, Envelope, Id, Network, Out, model_timeout};

use crate::NodeId;
use crate::checker::symmetry::{Permutation, Permute, canonical_by, permute_as_is};
use crate::checker::{Refinement, Representative, Spec, fingerprint};
use crate::commit::{
    CommitOutput, Coordinator, CoordinatorConfig, CoordinatorDelta, CoordinatorRecord, Delta, Msg,
    Outcome, Part, Participant, ParticipantConfig, ParticipantDelta, ParticipantRecord, Phase,
    RenameNodes, TxnId, TxnPlan, TxnRecord, Versioned, Vote,
};
use crate::output::{Position, TimerOp};

use super::commit_spec::RmState;
use super::harness::{self, CheckOptions, CheckReport};
use super::host::{Disk, DiskState, Fold, HostTimer, carry_out_timers};
use super::network::{NetworkState, OnNetwork};
use super::params::named_variants;
use super::params::{ParamError, ParamKind, ParamSpec, Params};
use super::shared::Shared;
use super::two_phase_spec::{TmState, TwoPhase, TwoPhaseState};

/// The model's name in `haft check`.
pub const NAME: &str = "two-phase";

/// Which rule of the protocol, if any, the model breaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Variant {
    /// The protocol as specified.
    #[default]
    Correct,
    /// The coordinator counts a No as a Yes — the seed document's `prepare`,
    /// which ignores the votes. Breaks AC3 (and AC1, since a No voter has
    /// aborted).
    IgnoreVotes,
    /// A participant's prepared record is never saved; after a crash it has
    /// forgotten its promise. Breaks AC1.
    NoDurableVote,
    /// A prepared participant whose decision timer fires aborts on its own
    /// instead of asking. Breaks AC1.
    AbortAfterYes,
    /// The coordinator's commit record is never saved; after a crash it
    /// answers queries by presumed abort. Breaks AC1.
    ForgetDecision,
    /// The coordinator forgets a transaction after the first acknowledgement
    /// and later answers a query by presumed abort. Breaks AC1.
    ForgetTooEarly,
    /// The coordinator sends its decision once and never again. A prepared
    /// participant still learns it by asking, but one whose Prepare was lost
    /// never hears the Abort, never acknowledges it, and the coordinator never
    /// finishes. Breaks AC5 (only on a lossy network).
    NoResend,
    /// A participant's commit is applied in memory only, so the acknowledged
    /// write is not durable. Breaks durability.
    VolatileApply,
    /// The coordinator resends its decision to itself instead of to the
    /// participants: it looks busy, yet after a loss a participant that never
    /// got the Prepare never hears the outcome, and the transaction never
    /// finishes. Breaks AC5 (only on a lossy network).
    ResendToSelf,
}

named_variants!(Variant {
    Correct => "correct",
    IgnoreVotes => "ignore-votes",
    NoDurableVote => "no-durable-vote",
    AbortAfterYes => "abort-after-yes",
    ForgetDecision => "forget-decision",
    ForgetTooEarly => "forget-too-early",
    NoResend => "no-resend",
    VolatileApply => "volatile-apply",
    ResendToSelf => "resend-to-self",
});

/// Parameters of `two-phase`.
pub const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "participants",
        default: "3",
        kind: ParamKind::Int { min: 1, max: 5 },
        help: "participants of each transaction",
    },
    ParamSpec {
        name: "txns",
        default: "1",
        kind: ParamKind::Int { min: 1, max: 2 },
        help: "transactions run by the coordinator (two contend for a key at participant 1)",
    },
    LOSSY,
    ParamSpec {
        name: "crashes",
        default: "0",
        kind: ParamKind::Int { min: 0, max: 2 },
        help: "how many actors may be down at once; the coordinator crashes at most this often in all",
    },
    DISK,
    ParamSpec {
        name: "variant",
        default: "correct",
        kind: ParamKind::Choice(&Variant::NAMES),
        help: "a named fault the checker must refute (see the model's doc)",
    },
];

/// The `lossy` parameter, shared by the models on [`OnNetwork`].
pub(crate) const LOSSY: ParamSpec = ParamSpec {
    name: "lossy",
    default: "false",
    kind: ParamKind::Bool,
    help: "the network may lose messages (modelled as losing all in flight; see models/network.rs)",
};

/// The `disk` parameter, shared by the models on [`super::host`]'s disk.
pub(crate) const DISK: ParamSpec = ParamSpec {
    name: "disk",
    default: "atomic",
    kind: ParamKind::Choice(&["atomic", "async"]),
    help: "atomic: a step's saves are durable within it; async: durable only at a sync step (see models/host.rs)",
};

/// The disk the `disk` parameter names.
pub(crate) fn disk_param(params: &Params) -> Disk {
    match params.choice("disk") {
        "async" => Disk::Async,
        _ => Disk::Atomic,
    }
}

/// The coordinator's id (actor 0).
pub fn coordinator_id() -> Id {
    Id::from(0)
}

/// The node an actor stands for: actor `n` is node `n`.
pub(crate) fn node(id: Id) -> NodeId {
    NodeId(usize::from(id) as u16)
}

/// The actor of a node.
pub(crate) fn actor(node: NodeId) -> Id {
    Id::from(usize::from(node.0))
}

/// The configuration of a `two-phase` system.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TwoPhaseConfig {
    /// Participants per transaction.
    pub participants: usize,
    /// Transactions.
    pub txns: usize,
    /// Whether the network drops messages.
    pub lossy: bool,
    /// How many actors may be down at once.
    pub crashes: usize,
    /// How the disk behaves.
    pub disk: Disk,
    /// The fault, if any.
    pub variant: Variant,
}

impl Default for TwoPhaseConfig {
    fn default() -> Self {
        TwoPhaseConfig {
            participants: 3,
            txns: 1,
            lossy: false,
            crashes: 0,
            disk: Disk::Atomic,
            variant: Variant::Correct,
        }
    }
}

/// What a two-phase actor saves.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CommitRecord {
    /// The coordinator's record.
    Coordinator(CoordinatorRecord),
    /// A participant's record.
    Participant(ParticipantRecord),
}

impl Fold<Delta> for CommitRecord {
    fn fold(&mut self, delta: &Delta) {
        match (self, delta) {
            (CommitRecord::Coordinator(record), Delta::Coordinator(d)) => record.apply(d),
            (CommitRecord::Participant(record), Delta::Participant(d)) => record.apply(d),
            (record, delta) => unreachable!("{delta:?} does not fold into {record:?}"),
        }
    }
}

/// What a two-phase actor's disk holds and saves: a [`CommitRecord`] that the
/// actor's disk, its saved copy and the states that follow share until a
/// delta changes it (see [`super::shared`]).
pub type SavedRecord = Shared<CommitRecord>;

impl Fold<Delta> for SavedRecord {
    fn fold(&mut self, delta: &Delta) {
        self.make_mut().fold(delta);
    }
}

/// A participant's free choice on a Prepare.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Choice {
    /// Prepare as asked.
    Accept(TxnId),
    /// Refuse for a reason of its own (a failed constraint).
    Refuse(TxnId),
}

/// A message on the two-phase network: shared by the states it is in flight
/// in, and hashed once (see [`super::shared`]).
pub type CommitMsg = Shared<Msg>;

/// The disk of a two-phase actor.
pub type CommitDisk = DiskState<SavedRecord, Delta, CommitMsg>;

/// A two-phase actor's state: the production machine and its disk.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CommitState {
    /// The coordinator.
    Coordinator {
        /// The machine.
        machine: Coordinator,
        /// Its disk.
        disk: CommitDisk,
    },
    /// A participant.
    Participant {
        /// The machine.
        machine: Participant,
        /// Its disk.
        disk: CommitDisk,
        /// Prepares awaiting the participant's free choice.
        undecided: BTreeMap<TxnId, Msg>,
    },
}

/// A two-phase actor: the coordinator, with the transactions it begins on its
/// first start, or a participant.
#[derive(Clone, Debug)]
pub enum CommitActor {
    /// The coordinator.
    Coordinator {
        /// What it begins on its first start (never on recovery: an undecided
        /// transaction is presumed aborted after a crash).
        plans: Arc<Vec<TxnPlan>>,
        /// The disk's behaviour.
        disk: Disk,
        /// The fault.
        variant: Variant,
    },
    /// A participant.
    Participant {
        /// The disk's behaviour.
        disk: Disk,
        /// The fault.
        variant: Variant,
    },
}

/// The key of the constraint a refusing participant fails.
const CONSTRAINT: &[u8] = b"constraint";

/// The coordinator's settings in a model: the checker fires timers at any
/// point, so their delays do not matter.
pub(crate) fn coordinator_config() -> CoordinatorConfig {
    CoordinatorConfig {
        vote_timeout: model_timeout(),
        resend_every: model_timeout(),
    }
}

/// The participant's settings in a model.
pub(crate) fn participant_config() -> ParticipantConfig {
    ParticipantConfig {
        uncertain_after: model_timeout(),
    }
}

impl CommitActor {
    fn disk(&self) -> Disk {
        match self {
            CommitActor::Coordinator { disk, .. } | CommitActor::Participant { disk, .. } => *disk,
        }
    }

    fn variant(&self) -> Variant {
        match self {
            CommitActor::Coordinator { variant, .. } | CommitActor::Participant { variant, .. } => {
                *variant
            }
        }
    }

    /// Carries out a machine's output on the model's network and disk, after
    /// the variant has had its say. Returns whether it is all durable.
    fn carry_out(&self, disk: &mut CommitDisk, mut out: CommitOutput, o: &mut Out<Self>) -> bool {
        let variant = self.variant();
        out.persist.retain(|delta| {
            !matches!(
                (variant, delta),
                (
                    Variant::NoDurableVote,
                    Delta::Participant(ParticipantDelta::Prepared { .. })
                ) | (
                    Variant::ForgetDecision,
                    Delta::Coordinator(CoordinatorDelta::Committed { .. })
                ) | (
                    Variant::VolatileApply,
                    Delta::Participant(ParticipantDelta::Decided {
                        outcome: Outcome::Commit,
                        ..
                    })
                )
            )
        });
        if variant == Variant::NoResend {
            out.timers.retain(|op| {
                !matches!(
                    op,
                    TimerOp::Set {
                        timer: crate::commit::Timer::Resend(_),
                        ..
                    }
                )
            });
        }
        carry_out_commit(self.disk(), disk, out, Shared::new, |timer| timer, o)
    }

    fn with_coordinator(
        &self,
        state: &mut CommitState,
        o: &mut Out<Self>,
        input: impl FnOnce(&mut Coordinator, &mut CommitOutput),
    ) {
        let CommitState::Coordinator { machine, disk } = state else {
            unreachable!("actor 0 is the coordinator")
        };
        let mut out = CommitOutput::at(disk.base());
        input(machine, &mut out);
        if self.carry_out(disk, out, o) {
            machine.handle_persisted(Position::MAX);
        }
    }

    fn with_participant(
        &self,
        state: &mut CommitState,
        o: &mut Out<Self>,
        input: impl FnOnce(&mut Participant, &mut CommitOutput),
    ) {
        let CommitState::Participant {
            machine,
            disk,
            undecided,
        } = state
        else {
            unreachable!("actors 1.. are participants")
        };
        let mut out = CommitOutput::at(disk.base());
        input(machine, &mut out);
        if self.carry_out(disk, out, o) {
            machine.handle_persisted(Position::MAX);
        }
        // A transaction the participant has settled needs no choice any more.
        let settled: Vec<TxnId> = undecided
            .keys()
            .filter(|txn| machine.record().txns.contains_key(txn))
            .copied()
            .collect();
        for txn in settled {
            undecided.remove(&txn);
            o.remove_random(choice_key(txn));
        }
    }
}

fn choice_key(txn: TxnId) -> String {
    format!("vote {txn}")
}

/// A two-phase actor's state as the checker holds it: shared by the states
/// that follow until a step changes it, and hashed once (see
/// [`super::shared`]).
pub type ActorState = Shared<CommitState>;

/// The actor's state, to read.
fn current(state: &ActorState) -> &CommitState {
    state
}

/// The actor's state, to change: stateright then counts the step as a change
/// (not a no-op), as it did when the handlers took the state with `to_mut`.
fn changed<'a>(state: &'a mut Cow<'_, ActorState>) -> &'a mut CommitState {
    state.to_mut().make_mut()
}

impl Actor for CommitActor {
    type Msg = CommitMsg;
    type State = ActorState;
    type Timer = HostTimer<crate::commit::Timer>;
    type Random = Choice;
    type Storage = SavedRecord;

    fn on_start(&self, id: Id, storage: &Option<SavedRecord>, o: &mut Out<Self>) -> ActorState {
        Shared::new(self.start(id, storage.as_deref(), o))
    }

    fn on_msg(
        &self,
        id: Id,
        state: &mut Cow<ActorState>,
        src: Id,
        msg: CommitMsg,
        o: &mut Out<Self>,
    ) {
        self.deliver(id, state, src, (*msg).clone(), o);
    }

    fn on_random(&self, id: Id, state: &mut Cow<ActorState>, choice: &Choice, o: &mut Out<Self>) {
        self.choose(id, state, choice, o);
    }

    fn on_timeout(
        &self,
        id: Id,
        state: &mut Cow<ActorState>,
        timer: &HostTimer<crate::commit::Timer>,
        o: &mut Out<Self>,
    ) {
        self.time_out(id, state, timer, o);
    }

    fn name(&self) -> String {
        match self {
            CommitActor::Coordinator { .. } => "coordinator".into(),
            CommitActor::Participant { .. } => "participant".into(),
        }
    }
}

impl CommitActor {
    /// Starts the actor from what it saved (nothing on its first start).
    fn start(&self, id: Id, storage: Option<&CommitRecord>, o: &mut Out<Self>) -> CommitState {
        match self {
            CommitActor::Coordinator { plans, .. } => {
                let record = match storage {
                    Some(CommitRecord::Coordinator(record)) => record.clone(),
                    _ => CoordinatorRecord::default(),
                };
                let first_start = storage.is_none();
                // The start's output is durable before any input (the
                // driver's contract), whatever the disk.
                let mut out = CommitOutput::at(0);
                let mut machine =
                    Coordinator::recover(node(id), coordinator_config(), record.clone(), &mut out)
                        .expect("a model never exhausts incarnations");
                if first_start {
                    for plan in plans.iter() {
                        machine
                            .begin(plan.clone(), None, &mut out)
                            .expect("the model's plans are not empty");
                    }
                }
                let mut disk = DiskState::new(Shared::new(CommitRecord::Coordinator(record)));
                self.carry_out_at_start(&mut disk, out, o);
                machine.handle_persisted(Position::MAX);
                CommitState::Coordinator { machine, disk }
            }
            CommitActor::Participant { .. } => {
                let record = match storage {
                    Some(CommitRecord::Participant(record)) => record.clone(),
                    _ => ParticipantRecord::default(),
                };
                let mut out = CommitOutput::at(0);
                let machine =
                    Participant::recover(node(id), participant_config(), record.clone(), &mut out);
                let mut disk = DiskState::new(Shared::new(CommitRecord::Participant(record)));
                self.carry_out_at_start(&mut disk, out, o);
                CommitState::Participant {
                    machine,
                    disk,
                    undecided: BTreeMap::new(),
                }
            }
        }
    }

    /// A message arrives.
    fn deliver(&self, id: Id, state: &mut Cow<ActorState>, src: Id, msg: Msg, o: &mut Out<Self>) {
        let from = node(src);
        match self {
            CommitActor::Coordinator { variant, .. } => {
                let msg = match (variant, msg) {
                    // The seed's coordinator: any reply counts toward commit.
                    (Variant::IgnoreVotes, Msg::Vote { txn, .. }) => Msg::Vote {
                        txn,
                        vote: Vote::Yes,
                    },
                    (_, msg) => msg,
                };
                let ack = matches!(msg, Msg::Ack { .. }).then(|| msg.txn());
                self.with_coordinator(changed(state), o, |machine, out| {
                    machine.handle_message(from, msg.clone(), out);
                    // The fault: the first acknowledgement counts as everyone's.
                    if let (Variant::ForgetTooEarly, Some(txn), Msg::Ack { outcome, .. }) =
                        (variant, ack, &msg)
                    {
                        let others: Vec<NodeId> = machine
                            .txns()
                            .get(&txn)
                            .map(|t| t.participants.iter().copied().collect())
                            .unwrap_or_default();
                        for other in others {
                            let ack = Msg::Ack {
                                txn,
                                outcome: *outcome,
                            };
                            machine.handle_message(other, ack, out);
                        }
                    }
                });
            }
            CommitActor::Participant { .. } => {
                let CommitState::Participant {
                    machine, undecided, ..
                } = current(state)
                else {
                    unreachable!("actors 1.. are participants")
                };
                if let Msg::Prepare { txn, .. } = &msg {
                    let txn = *txn;
                    if !machine.record().txns.contains_key(&txn) {
                        // A first Prepare: the participant chooses, unless the
                        // choice is already pending.
                        if !undecided.contains_key(&txn) {
                            let CommitState::Participant { undecided, .. } = changed(state) else {
                                unreachable!()
                            };
                            undecided.insert(txn, msg);
                            o.choose_random(
                                choice_key(txn),
                                vec![Choice::Accept(txn), Choice::Refuse(txn)],
                            );
                        }
                        return;
                    }
                }
                let _ = id;
                self.with_participant(changed(state), o, |machine, out| {
                    machine.handle_message(from, msg, out)
                });
            }
        }
    }

    /// A participant makes its free choice on a Prepare.
    fn choose(&self, _id: Id, state: &mut Cow<ActorState>, choice: &Choice, o: &mut Out<Self>) {
        let (Choice::Accept(txn) | Choice::Refuse(txn)) = choice;
        let state = changed(state);
        let CommitState::Participant { undecided, .. } = state else {
            return;
        };
        let Some(prepare) = undecided.remove(txn) else {
            return;
        };
        let prepare = match (choice, prepare) {
            (
                Choice::Refuse(_),
                Msg::Prepare {
                    txn,
                    mut reads,
                    writes,
                    peers,
                    finished_below,
                },
            ) => {
                // A constraint that never holds: a read of a key at a version
                // it never had. The production participant refuses it.
                reads.insert(Bytes::from_static(CONSTRAINT), Some(TxnId(u64::MAX)));
                Msg::Prepare {
                    txn,
                    reads,
                    writes,
                    peers,
                    finished_below,
                }
            }
            (_, prepare) => prepare,
        };
        let coordinator = actor(txn.node());
        self.with_participant(state, o, |machine, out| {
            machine.handle_message(node(coordinator), prepare, out)
        });
    }

    /// A timer fires.
    fn time_out(
        &self,
        id: Id,
        state: &mut Cow<ActorState>,
        timer: &HostTimer<crate::commit::Timer>,
        o: &mut Out<Self>,
    ) {
        let state = changed(state);
        match (self, timer) {
            (_, HostTimer::Sync) => match state {
                CommitState::Coordinator { machine, disk } => {
                    disk.sync(o);
                    machine.handle_persisted(Position::MAX);
                }
                CommitState::Participant { machine, disk, .. } => {
                    disk.sync(o);
                    machine.handle_persisted(Position::MAX);
                }
            },
            (CommitActor::Coordinator { variant, .. }, HostTimer::Machine(timer)) => {
                let resend = matches!(timer, crate::commit::Timer::Resend(_));
                let CommitState::Coordinator { machine, disk } = state else {
                    unreachable!("actor 0 is the coordinator")
                };
                let mut out = CommitOutput::at(disk.base());
                machine.handle_timer(timer, &mut out);
                if resend && *variant == Variant::ResendToSelf {
                    // The fault: the resend goes to the coordinator itself.
                    for (to, _) in out.send_now.iter_mut().chain(&mut out.send_after_persist) {
                        *to = node(id);
                    }
                }
                if self.carry_out(disk, out, o) {
                    machine.handle_persisted(Position::MAX);
                }
            }
            (CommitActor::Participant { variant, .. }, HostTimer::Machine(timer)) => {
                let crate::commit::Timer::Uncertain(txn) = timer else {
                    return;
                };
                let txn = *txn;
                self.with_participant(state, o, |machine, out| {
                    let prepared = matches!(
                        machine.record().txns.get(&txn),
                        Some(TxnRecord::Prepared { .. })
                    );
                    if *variant == Variant::AbortAfterYes && prepared {
                        // The fault: giving up on a promise (breaks AC1).
                        let abort = Msg::Outcome {
                            txn,
                            outcome: Outcome::Abort,
                        };
                        machine.handle_message(txn.node(), abort, out);
                    } else {
                        machine.handle_timer(timer, out);
                    }
                });
            }
        }
    }

    /// Carries out a start's output: durable before anything else happens
    /// (the driver's contract), whatever the disk.
    fn carry_out_at_start(&self, disk: &mut CommitDisk, out: CommitOutput, o: &mut Out<Self>) {
        carry_out_commit(Disk::Atomic, disk, out, Shared::new, |timer| timer, o);
    }
}

/// Carries out a commit machine's output on a model's disk and network, its
/// messages and timers wrapped as the hosting actor's (`msg`, `timer`).
/// Returns whether everything the machine emitted is durable.
pub(crate) fn carry_out_commit<A, T>(
    kind: Disk,
    disk: &mut DiskState<SavedRecord, Delta, A::Msg>,
    out: CommitOutput,
    msg: impl Fn(Msg) -> A::Msg,
    timer: impl Fn(crate::commit::Timer) -> T,
    o: &mut Out<A>,
) -> bool
where
    A: Actor<Storage = SavedRecord, Timer = HostTimer<T>>,
{
    carry_out_timers(out.timers, |t| HostTimer::Machine(timer(t)), o);
    let sends = |sends: Vec<(NodeId, Msg)>| -> Vec<(Id, A::Msg)> {
        sends
            .into_iter()
            .map(|(to, m)| (actor(to), msg(m)))
            .collect()
    };
    disk.carry_out(
        kind,
        out.persist,
        sends(out.send_now),
        sends(out.send_after_persist),
        HostTimer::Sync,
        o,
    )
}

/// What the model remembers beyond the actors' states (TLA+'s auxiliary
/// variables): every decision and vote ever announced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct History {
    /// Every decision made: (actor, transaction, outcome).
    pub decisions: BTreeSet<(Id, TxnId, Outcome)>,
    /// The coordinator's decision on each transaction: the first outcome it sent.
    pub coordinator_decision: BTreeMap<TxnId, Outcome>,
    /// Yes votes sent: (participant, transaction).
    pub yes_votes: BTreeSet<(Id, TxnId)>,
    /// Yes votes the coordinator counted before deciding (TwoPhase's tmPrepared).
    pub counted_yes: BTreeSet<(Id, TxnId)>,
    /// Per participant, the transactions it acknowledged as committed, in the
    /// order it applied them (the order matters where two write the same key;
    /// the interleaving across participants does not, so it is not kept).
    pub commit_acks: BTreeMap<Id, Vec<TxnId>>,
    /// A prepared participant has learned Commit from a peer.
    pub cooperative_commit: bool,
}

/// The actors on their network, as stateright composes them.
pub type Actors = ActorModel<CommitActor, TwoPhaseSystem, Shared<History>>;

/// The system the checker explores: [`Actors`] on the network of
/// [`super::network`], which forgets the last-delivered envelope and models loss
/// as one step that loses every message in flight.
pub type TwoPhaseModel = OnNetwork<CommitActor, TwoPhaseSystem, Shared<History>>;

/// A state of [`TwoPhaseModel`].
pub type SystemState = NetworkState<CommitActor, Shared<History>>;

/// The model's configuration together with the transactions it runs.
#[derive(Clone, Debug)]
pub struct TwoPhaseSystem {
    /// The parameters.
    pub config: TwoPhaseConfig,
    /// The transactions, as the coordinator begins them, with their ids.
    pub plans: Vec<(TxnId, TxnPlan)>,
}

impl TwoPhaseSystem {
    fn participant_ids(&self) -> impl Iterator<Item = Id> + '_ {
        (1..=self.config.participants).map(Id::from)
    }

    fn txns(&self) -> impl Iterator<Item = TxnId> + '_ {
        self.plans.iter().map(|(txn, _)| *txn)
    }

    fn plan(&self, txn: TxnId, participant: Id) -> Option<&Part> {
        self.plans
            .iter()
            .find(|(t, _)| *t == txn)
            .and_then(|(_, plan)| plan.get(&node(participant)))
    }
}

/// The id the coordinator gives its `i`-th transaction of its first life.
pub fn txn_id(i: usize) -> TxnId {
    TxnId::new(NodeId(0), 1, i as u64).expect("small numbers fit")
}

/// The transactions of a configuration. Transaction 0 writes key `k` at
/// every participant; transaction 1 writes `k` at participant 1 — contending
/// with 0 for its lock — and `j` elsewhere.
pub fn plans(participants: usize, txns: usize) -> Vec<(TxnId, TxnPlan)> {
    (0..txns)
        .map(|t| {
            let plan = (1..=participants)
                .map(|p| {
                    let key = if t == 0 || p == 1 { "k" } else { "j" };
                    let value = format!("t{t}");
                    let part = Part {
                        reads: BTreeMap::new(),
                        writes: BTreeMap::from([(Bytes::from(key), Some(Bytes::from(value)))]),
                    };
                    (NodeId(p as u16), part)
                })
                .collect();
            (txn_id(t), plan)
        })
        .collect()
}

impl TwoPhaseConfig {
    /// Reads a configuration from checked parameters.
    pub fn from_params(params: &Params) -> Result<TwoPhaseConfig, ParamError> {
        let variant = params.choice("variant");
        Ok(TwoPhaseConfig {
            participants: params.usize("participants"),
            txns: params.usize("txns"),
            lossy: params.bool("lossy"),
            crashes: params.usize("crashes"),
            disk: disk_param(params),
            variant: Variant::from_name(variant)
                .ok_or_else(|| params.combination_error(format!("unknown variant {variant}")))?,
        })
    }

    /// Builds the actor model.
    pub fn into_model(self) -> TwoPhaseModel {
        let system = TwoPhaseSystem {
            plans: plans(self.participants, self.txns),
            config: self.clone(),
        };
        let coordinator = CommitActor::Coordinator {
            plans: Arc::new(system.plans.iter().map(|(_, p)| p.clone()).collect()),
            disk: self.disk,
            variant: self.variant,
        };
        let participant = CommitActor::Participant {
            disk: self.disk,
            variant: self.variant,
        };
        let actors = ActorModel::new(system, Shared::default())
            .actor(coordinator)
            .actors(std::iter::repeat_n(participant, self.participants))
            .init_network(Network::new_unordered_duplicating([]))
            .max_crashes(self.crashes)
            .record_msg_out(record_out)
            .record_msg_in(record_in)
            // The same bound for the raw actor system (which the tests compare
            // with the quotient): the coordinator is never down once it has
            // used up its crashes.
            .within_boundary(|cfg, state| {
                !state.crashed[0] || may_restart(cfg, &state.actor_states[0])
            });
        OnNetwork::new(actors, self.lossy, properties).with_crash_budget(may_crash)
    }
}

/// Every restart raises the coordinator's incarnation, so its restarts are
/// bounded: it may crash `crashes` times in all. Participants keep no
/// incarnation and may crash again after each restart (at most `crashes` of
/// them down at once).
fn may_crash(cfg: &TwoPhaseSystem, state: &SystemState, id: Id) -> bool {
    may_restart(cfg, state.actor(usize::from(id)))
}

/// Whether an actor in state `actor` may crash (and so be down): a
/// coordinator only while its incarnation is within the budget.
fn may_restart(cfg: &TwoPhaseSystem, actor: &CommitState) -> bool {
    match actor {
        CommitState::Coordinator { machine, .. } => {
            machine.incarnation() <= cfg.config.crashes as u64
        }
        CommitState::Participant { .. } => true,
    }
}

/// The properties of `two-phase` (see the module doc).
fn properties(model: &TwoPhaseModel) -> Vec<Property<TwoPhaseModel>> {
    let config = &model.actors.cfg.config;
    let mut properties = vec![
        Property::always("AC1 agreement", |_, s: &SystemState| agreement(s)),
        Property::always("AC2 irrevocable", |_, s: &SystemState| irrevocable(s)),
        Property::always(
            "AC3 commit needs all Yes",
            |m: &TwoPhaseModel, s: &SystemState| validity(&m.actors.cfg, s),
        ),
        Property::always("durability", |m: &TwoPhaseModel, s: &SystemState| {
            durable(&m.actors.cfg, s)
        }),
        Property::sometimes("AC4 all commit", |m: &TwoPhaseModel, s: &SystemState| {
            all_decided(&m.actors.cfg, s, txn_id(0), Some(Outcome::Commit))
        }),
        Property::sometimes("AC4 all abort", |m: &TwoPhaseModel, s: &SystemState| {
            all_decided(&m.actors.cfg, s, txn_id(0), Some(Outcome::Abort))
        }),
    ];
    if config.participants >= 2 {
        properties.push(Property::sometimes(
            "cooperative termination",
            |_, s: &SystemState| s.history.cooperative_commit,
        ));
    }
    properties
}

/// AC5, as a liveness property that can fail: from every reachable state, a
/// state where every transaction is finished is reachable (AG EF), crashes
/// included — a crashed actor may always recover, and the network may always
/// deliver. Finished: every actor is up, no participant is in doubt or waiting
/// for a lock, and the coordinator has forgotten every transaction, which it
/// does only once every participant has acknowledged the outcome (a
/// transaction whose coordinator crashed before anyone prepared it is
/// forgotten by all, which presumed abort makes an abort).
fn terminated(_: &TwoPhaseModel, state: &SystemState) -> bool {
    state.all_up()
        && state.actor_states().all(|actor| match &**actor {
            CommitState::Coordinator { machine, .. } => machine.txns().is_empty(),
            CommitState::Participant { machine, .. } => machine.is_idle(),
        })
}

/// What `two-phase` checks: the properties, AC5, and the refinement of
/// TwoPhase, all in one search.
pub fn spec(model: &TwoPhaseModel) -> Spec<TwoPhaseModel> {
    Spec::of(model)
        .liveness("AC5 termination", terminated)
        .transition(refinement(model))
}

/// Records what a sent message announces. The history is copied only when
/// the message adds to it.
fn record_out(
    cfg: &TwoPhaseSystem,
    history: &Shared<History>,
    env: Envelope<&CommitMsg>,
) -> Option<Shared<History>> {
    let _ = cfg;
    let from_coordinator = env.src == coordinator_id();
    let decision = |txn: &TxnId, outcome: &Outcome| (env.src, *txn, *outcome);
    let mut next = history.clone();
    match &**env.msg {
        Msg::Vote {
            txn,
            vote: Vote::Yes,
        } => {
            if history.yes_votes.contains(&(env.src, *txn)) {
                return None;
            }
            next.make_mut().yes_votes.insert((env.src, *txn));
        }
        Msg::Vote {
            txn,
            vote: Vote::No(_),
        } => {
            if history.decisions.contains(&decision(txn, &Outcome::Abort)) {
                return None;
            }
            next.make_mut()
                .decisions
                .insert(decision(txn, &Outcome::Abort));
        }
        Msg::Outcome { txn, outcome } if from_coordinator => {
            match history.coordinator_decision.get(txn) {
                None => {
                    let next = next.make_mut();
                    next.coordinator_decision.insert(*txn, *outcome);
                    next.decisions.insert(decision(txn, outcome));
                }
                // An Abort after a Commit is presumed abort answering for a
                // transaction the coordinator has forgotten: not a decision.
                // What matters is whether a participant acts on it, which the
                // participants' own decisions show.
                Some(Outcome::Commit) => return None,
                Some(Outcome::Abort) => {
                    if history.decisions.contains(&decision(txn, outcome)) {
                        return None;
                    }
                    next.make_mut().decisions.insert(decision(txn, outcome));
                }
            }
        }
        // A participant's answer to a peer, or its acknowledgement, states its
        // own decision.
        Msg::Outcome { txn, outcome } | Msg::Ack { txn, outcome } => {
            let decided = history.decisions.contains(&decision(txn, outcome));
            let applies = *outcome == Outcome::Commit
                && matches!(&**env.msg, Msg::Ack { .. })
                && !history
                    .commit_acks
                    .get(&env.src)
                    .is_some_and(|applied| applied.contains(txn));
            if decided && !applies {
                return None;
            }
            let next = next.make_mut();
            next.decisions.insert(decision(txn, outcome));
            if applies {
                next.commit_acks.entry(env.src).or_default().push(*txn);
            }
        }
        Msg::Prepare { .. } | Msg::Query { .. } => return None,
    }
    Some(next)
}

/// Records what a delivered message shows: a Yes the coordinator counts, a
/// participant learning Commit from a peer.
fn record_in(
    cfg: &TwoPhaseSystem,
    history: &Shared<History>,
    env: Envelope<&CommitMsg>,
) -> Option<Shared<History>> {
    let _ = cfg;
    match &**env.msg {
        // The coordinator changed state on a Yes: it counted it (the vote is
        // ignored once decided, and by a recovered coordinator).
        Msg::Vote {
            txn,
            vote: Vote::Yes,
        } if env.dst == coordinator_id() && !history.coordinator_decision.contains_key(txn) => {
            let mut next = history.clone();
            next.make_mut().counted_yes.insert((env.src, *txn));
            Some(next)
        }
        Msg::Outcome {
            txn,
            outcome: Outcome::Commit,
        } if env.src != coordinator_id()
            && !history.cooperative_commit
            && !history
                .decisions
                .iter()
                .any(|(who, t, _)| *who == env.dst && t == txn) =>
        {
            let mut next = history.clone();
            next.make_mut().cooperative_commit = true;
            Some(next)
        }
        _ => None,
    }
}

fn agreement(state: &SystemState) -> bool {
    let d = &state.history.decisions;
    !d.iter().any(|(_, txn, outcome)| {
        *outcome == Outcome::Commit && d.iter().any(|(_, t, o)| t == txn && *o == Outcome::Abort)
    })
}

fn irrevocable(state: &SystemState) -> bool {
    let d = &state.history.decisions;
    !d.iter().any(|(who, txn, outcome)| {
        *outcome == Outcome::Commit && d.contains(&(*who, *txn, Outcome::Abort))
    })
}

fn validity(cfg: &TwoPhaseSystem, state: &SystemState) -> bool {
    let h = &state.history;
    h.decisions
        .iter()
        .filter(|(_, _, outcome)| *outcome == Outcome::Commit)
        .all(|(_, txn, _)| {
            cfg.participant_ids()
                .all(|p| h.yes_votes.contains(&(p, *txn)))
        })
}

fn participant(state: &SystemState, id: Id) -> &Participant {
    match &**state.actor(usize::from(id)) {
        CommitState::Participant { machine, .. } => machine,
        CommitState::Coordinator { .. } => unreachable!("actors 1.. are participants"),
    }
}

fn durable(cfg: &TwoPhaseSystem, state: &SystemState) -> bool {
    cfg.participant_ids().all(|p| {
        let mut expected = BTreeMap::new();
        for txn in state.history.commit_acks.get(&p).into_iter().flatten() {
            for (key, value) in cfg
                .plan(*txn, p)
                .map(|part| &part.writes)
                .into_iter()
                .flatten()
            {
                if let Some(value) = value {
                    let versioned = Versioned {
                        value: value.clone(),
                        version: *txn,
                    };
                    expected.insert(key.clone(), versioned);
                }
            }
        }
        match state.storage(usize::from(p)).map(|s| &**s) {
            Some(CommitRecord::Participant(record)) => {
                record.store == expected.into_iter().collect::<crate::commit::Store>()
            }
            Some(CommitRecord::Coordinator(_)) => false,
            None => expected.is_empty(),
        }
    })
}

fn all_decided(
    cfg: &TwoPhaseSystem,
    state: &SystemState,
    txn: TxnId,
    outcome: Option<Outcome>,
) -> bool {
    cfg.participant_ids().all(|p| {
        let decided = participant(state, p).outcome(txn);
        match outcome {
            Some(wanted) => decided == Some(wanted),
            None => decided.is_some(),
        }
    })
}

/// A participant's record as its disk holds it: what survives a crash.
fn durable_record(state: &SystemState, id: Id) -> &ParticipantRecord {
    match &**state.actor(usize::from(id)) {
        CommitState::Participant { disk, .. } => match &*disk.durable {
            CommitRecord::Participant(record) => record,
            CommitRecord::Coordinator(_) => unreachable!("a participant's disk"),
        },
        CommitState::Coordinator { .. } => unreachable!("actors 1.. are participants"),
    }
}

/// Projects a system state onto TwoPhase's variables, one TwoPhase state per
/// transaction: `rmState` from each participant's durable record, `tmState`
/// from the coordinator's recorded decision, `tmPrepared` from the Yes votes it
/// counted, and `msgs` from the votes and decisions ever sent. (The model runs
/// no transaction after the first ones, so no watermark passes them and no
/// participant forgets their records.)
///
/// `rmState` is read from the disk, not from memory: with `disk=async` a
/// participant records Prepared in memory and holds its Yes until the record is
/// durable, and a crash before that takes it back to Working. Its durable
/// record and its sends move together (the sync step makes the record durable
/// and releases the vote), which is TwoPhase's RMPrepare. With `disk=atomic`
/// memory and disk agree after every step, so the two readings are one.
pub fn to_two_phase(cfg: &TwoPhaseSystem, state: &SystemState) -> Vec<TwoPhaseState> {
    let mut projected = Vec::new();
    project(cfg, state, &mut projected);
    projected
}

/// [`to_two_phase`] into `out`, whose vectors it reuses: the refinement check
/// projects every successor of every state.
fn project(cfg: &TwoPhaseSystem, state: &SystemState, out: &mut Vec<TwoPhaseState>) {
    let h = &state.history;
    out.resize_with(cfg.plans.len(), TwoPhaseState::unfilled);
    for (txn, projected) in cfg.txns().zip(out.iter_mut()) {
        let decision = h.coordinator_decision.get(&txn).copied();
        projected.rm_state.clear();
        projected.rm_state.extend(cfg.participant_ids().map(|p| {
            match durable_record(state, p).txns.get(&txn) {
                None => RmState::Working,
                Some(TxnRecord::Prepared { .. }) => RmState::Prepared,
                Some(TxnRecord::Decided(Outcome::Commit)) => RmState::Committed,
                Some(TxnRecord::Decided(Outcome::Abort) | TxnRecord::Refused(_)) => {
                    RmState::Aborted
                }
            }
        }));
        projected.tm_state = match decision {
            None => TmState::Init,
            Some(Outcome::Commit) => TmState::Committed,
            Some(Outcome::Abort) => TmState::Aborted,
        };
        projected.tm_prepared.clear();
        projected.tm_prepared.extend(
            cfg.participant_ids()
                .map(|p| h.counted_yes.contains(&(p, txn))),
        );
        projected.prepared_msg.clear();
        projected.prepared_msg.extend(
            cfg.participant_ids()
                .map(|p| h.yes_votes.contains(&(p, txn))),
        );
        projected.commit_msg = decision == Some(Outcome::Commit);
        projected.abort_msg = decision == Some(Outcome::Abort);
    }
}

/// The refinement of TwoPhase, checked on every transition of the search
/// (see the module doc): one handler may take two TwoPhase steps.
pub fn refinement(model: &TwoPhaseModel) -> Refinement<TwoPhaseModel, TwoPhase> {
    let spec = TwoPhase {
        rms: model.actors.cfg.config.participants,
    };
    let cfg = model.actors.cfg.clone();
    Refinement::projecting_into("refines TwoPhase", spec, move |s, out| {
        project(&cfg, s, out)
    })
    .max_steps(2)
}

// --- symmetry ----------------------------------------------------------------

/// `node` renamed by `p`, which renames actors (actor `n` is node `n`).
fn renamed(p: &Permutation, node: NodeId) -> NodeId {
    NodeId(p.apply(usize::from(node.0)) as u16)
}

/// Implements [`Permute`] for commit types through their own renaming hook,
/// [`RenameNodes`].
macro_rules! permute_by_renaming {
    ($($t:ty),* $(,)?) => {
        $(impl Permute for $t {
            fn permute(&self, p: &Permutation) -> Self {
                self.rename_nodes(&|node| renamed(p, node))
            }
        })*
    };
}

permute_by_renaming!(
    Coordinator,
    Participant,
    CoordinatorRecord,
    ParticipantRecord,
    Delta,
    TxnId,
    crate::commit::Timer,
);
permute_as_is!(Outcome);

/// Most messages name no participant (a transaction id names the coordinator,
/// which never moves): those stay shared, with their hashes.
impl Permute for Msg {
    fn permute(&self, p: &Permutation) -> Self {
        self.rename_nodes(&|node| renamed(p, node))
    }

    fn is_fixed_by(&self, p: &Permutation) -> bool {
        // A Prepare names the peers; renaming the others builds nothing.
        !matches!(self, Msg::Prepare { .. }) && self.permute(p) == *self
    }
}

impl Permute for CommitRecord {
    fn permute(&self, p: &Permutation) -> Self {
        match self {
            CommitRecord::Coordinator(record) => CommitRecord::Coordinator(record.permute(p)),
            CommitRecord::Participant(record) => CommitRecord::Participant(record.permute(p)),
        }
    }
}

impl Permute for CommitState {
    fn permute(&self, p: &Permutation) -> Self {
        match self {
            CommitState::Coordinator { machine, disk } => CommitState::Coordinator {
                machine: machine.permute(p),
                disk: disk.permute(p),
            },
            CommitState::Participant {
                machine,
                disk,
                undecided,
            } => CommitState::Participant {
                machine: machine.permute(p),
                disk: disk.permute(p),
                undecided: undecided.permute(p),
            },
        }
    }
}

impl Permute for Choice {
    fn permute(&self, p: &Permutation) -> Self {
        match self {
            Choice::Accept(txn) => Choice::Accept(txn.permute(p)),
            Choice::Refuse(txn) => Choice::Refuse(txn.permute(p)),
        }
    }
}

impl Permute for History {
    fn permute(&self, p: &Permutation) -> Self {
        History {
            decisions: self.decisions.permute(p),
            coordinator_decision: self.coordinator_decision.permute(p),
            yes_votes: self.yes_votes.permute(p),
            counted_yes: self.counted_yes.permute(p),
            commit_acks: self.commit_acks.permute(p),
            cooperative_commit: self.cooperative_commit,
        }
    }
}

/// What each participant of `group` looks like without naming any other
/// participant: whether it is down, its timers and pending choices, what its
/// record says of each transaction (without the peers it names), how much its
/// disk holds, how many messages of each kind it sends and receives, what the
/// history says of it and where it stands at the coordinator. Renaming the
/// participants does not change a participant's signature (the coordinator,
/// whose id every transaction id carries, never moves), and signatures tell
/// most participants of a state apart, so [`canonical_by`] seldom has ties to
/// try. One pass over the network and the history serves every participant.
fn signatures(state: &SystemState, group: std::ops::Range<usize>) -> Vec<u64> {
    let mix = |a: u64, b: u64| fingerprint(&(a, b));
    let mut signatures: Vec<u64> = group
        .clone()
        .map(|index| {
            let mut h = fingerprint(&(state.crashed(index), state.timers(index)));
            h = mix(h, state.actors[index].random.len() as u64);
            if let CommitState::Participant {
                machine,
                disk,
                undecided,
            } = &**state.actor(index)
            {
                for (txn, entry) in &machine.record().txns {
                    let kind = match entry {
                        TxnRecord::Prepared { .. } => 0,
                        TxnRecord::Refused(_) => 1,
                        TxnRecord::Decided(Outcome::Commit) => 2,
                        TxnRecord::Decided(Outcome::Abort) => 3,
                    };
                    h = mix(h, txn.0 ^ kind);
                }
                let sizes = (undecided.len(), disk.pending.len(), disk.held.len());
                h = mix(h, fingerprint(&(sizes, machine.is_idle())));
            }
            h
        })
        .collect();
    let at = |id: Id| usize::from(id).checked_sub(group.start);
    let mut add = |id: Id, what: u64| {
        if let Some(signature) = at(id).and_then(|i| signatures.get_mut(i)) {
            // In any order: a sum.
            *signature = signature.wrapping_add(what);
        }
    };
    for envelope in state.network.iter() {
        let msg = &*envelope.msg;
        let kind = match msg {
            Msg::Prepare { .. } => 0,
            Msg::Vote {
                vote: Vote::Yes, ..
            } => 1,
            Msg::Vote { .. } => 2,
            Msg::Outcome { outcome, .. } | Msg::Ack { outcome, .. } => 3 + *outcome as u64,
            Msg::Query { .. } => 5,
        };
        let from_coordinator = envelope.src == coordinator_id();
        let to_coordinator = envelope.dst == coordinator_id();
        add(
            envelope.src,
            fingerprint(&(0u8, msg.txn(), kind, to_coordinator)),
        );
        add(
            envelope.dst,
            fingerprint(&(1u8, msg.txn(), kind, from_coordinator)),
        );
    }
    let history = &state.history;
    for (who, txn, outcome) in &history.decisions {
        add(*who, fingerprint(&(2u8, txn, outcome)));
    }
    for (who, txn) in &history.yes_votes {
        add(*who, fingerprint(&(3u8, txn)));
    }
    for (who, txn) in &history.counted_yes {
        add(*who, fingerprint(&(4u8, txn)));
    }
    for (who, acks) in &history.commit_acks {
        add(*who, fingerprint(&(5u8, acks)));
    }
    if let CommitState::Coordinator { machine, .. } = &**state.actor(0) {
        for (txn, t) in machine.txns() {
            let (stage, members) = match &t.phase {
                Phase::Voting { yes } => (6u8, yes),
                Phase::Deciding { acked, .. } => (7u8, acked),
            };
            for member in members {
                add(actor(*member), fingerprint(&(stage, txn)));
            }
        }
    }
    signatures
}

/// The canonical representative of a state's class under renamings of all the
/// participants (see the module doc): one transaction.
pub fn representative(state: &SystemState) -> SystemState {
    let group = 1..state.len();
    canonical_by(state, group.clone(), signatures(state, group))
}

/// The canonical representative of a state's class under renamings of the
/// participants other than participant 1, where two transactions contend (see
/// the module doc).
pub fn representative_beyond_first(state: &SystemState) -> SystemState {
    let group = 2..state.len();
    canonical_by(state, group.clone(), signatures(state, group))
}

/// The symmetry of a configuration: every participant is interchangeable with
/// one transaction; with two, participant 1 — the one where they contend —
/// stays.
pub fn symmetry(config: &TwoPhaseConfig) -> Representative<TwoPhaseModel> {
    if config.txns > 1 {
        representative_beyond_first
    } else {
        representative
    }
}

/// Checks the model and its refinement of TwoPhase, in one search; with
/// `--symmetry`, one state per class of [`symmetry`].
pub fn check(params: &Params, options: &CheckOptions) -> Result<CheckReport, ParamError> {
    let config = TwoPhaseConfig::from_params(params)?;
    let representative = symmetry(&config);
    let model = config.into_model();
    let mut spec = spec(&model);
    if options.symmetry {
        spec = spec.symmetry(representative);
    }
    Ok(harness::run_spec(
        NAME,
        params.clone(),
        &model,
        &spec,
        options,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::harness::PropertyReport;
    use crate::models::testing::actions_to as trace;

    fn run(config: TwoPhaseConfig) -> (CheckReport, PropertyReport) {
        run_with(config, false)
    }

    /// Checks `config`, with symmetry reduction if `symmetric`.
    fn run_with(config: TwoPhaseConfig, symmetric: bool) -> (CheckReport, PropertyReport) {
        let representative = symmetry(&config);
        let model = config.into_model();
        let options = CheckOptions {
            threads: 2,
            ..CheckOptions::default()
        };
        let params = Params::defaults(NAME, PARAMS);
        let mut spec = spec(&model);
        if symmetric {
            spec = spec.symmetry(representative);
        }
        let mut report = harness::run_spec(NAME, params, &model, &spec, &options);
        assert!(report.complete);
        let refinement = report.properties.pop().expect("refinement is checked last");
        (report, refinement)
    }

    fn config(
        participants: usize,
        lossy: bool,
        crashes: usize,
        variant: Variant,
    ) -> TwoPhaseConfig {
        TwoPhaseConfig {
            participants,
            txns: 1,
            lossy,
            crashes,
            disk: Disk::Atomic,
            variant,
        }
    }

    /// The names of the `always`/`eventually` properties that fail, refinement
    /// included.
    fn broken(report: &CheckReport, refinement: &PropertyReport) -> Vec<&'static str> {
        report
            .properties
            .iter()
            .chain(std::iter::once(refinement))
            .filter(|p| p.expectation != "sometimes" && !p.holds)
            .map(|p| p.name)
            .collect()
    }

    fn assert_passes(report: &CheckReport, refinement: &PropertyReport) {
        assert!(report.passed(), "{report:#?}");
        assert!(refinement.holds, "{refinement:#?}");
    }

    #[test]
    fn default_configuration_passes_with_pinned_counts() {
        let (report, refinement) = run(TwoPhaseConfig::default());
        assert_passes(&report, &refinement);
        assert_eq!(report.unique_states, 74_031);
    }

    #[test]
    fn two_participants_pass_with_crashes_and_loss() {
        let (report, refinement) = run(config(2, false, 0, Variant::Correct));
        assert_passes(&report, &refinement);
        assert_eq!(report.unique_states, 1_755);

        let (report, refinement) = run(config(2, false, 1, Variant::Correct));
        assert_passes(&report, &refinement);
        assert_eq!(report.unique_states, 10_269);

        let (report, refinement) = run(config(1, true, 0, Variant::Correct));
        assert_passes(&report, &refinement);
        assert_eq!(report.unique_states, 100);

        let (report, refinement) = run(config(2, true, 1, Variant::Correct));
        assert_passes(&report, &refinement);
        assert_eq!(report.unique_states, 41_768);
    }

    #[test]
    fn the_runtime_disk_passes_and_an_undurable_vote_is_refuted_on_it() {
        let on_async = |participants, crashes, variant| TwoPhaseConfig {
            disk: Disk::Async,
            ..config(participants, false, crashes, variant)
        };
        for (participants, crashes, states) in [(1, 1, 384), (2, 0, 5_639), (2, 1, 142_895)] {
            let (report, refinement) = run(on_async(participants, crashes, Variant::Correct));
            assert_passes(&report, &refinement);
            assert_eq!(report.unique_states, states, "{participants} {crashes}");
        }
        let (report, refinement) = run(on_async(1, 1, Variant::NoDurableVote));
        assert_eq!(report.unique_states, 676);
        assert_eq!(
            broken(&report, &refinement),
            ["AC1 agreement", "durability", "refines TwoPhase"]
        );
    }

    #[test]
    fn forgetting_the_last_delivery_is_an_exact_quotient() {
        // The raw actor system and the quotient reach the same states once the
        // last-delivered envelope is ignored: nothing is lost, nothing added.
        let model = config(2, false, 1, Variant::Correct).into_model();
        let raw = crate::models::testing::reachable_states(&model.actors);
        let projected: std::collections::HashSet<SystemState> =
            raw.iter().map(SystemState::from_stateright).collect();
        let quotient = crate::models::testing::reachable_states(&model);
        assert_eq!(raw.len(), 93_030);
        assert_eq!(projected.len(), 10_269);
        assert_eq!(projected, quotient);
    }

    #[test]
    fn losing_everything_in_flight_stands_for_any_loss() {
        // Against stateright's own lossy network (a Drop per envelope): the same
        // actor configurations, the same terminal states and the same verdicts,
        // for the correct protocol and for two variants, one of which only loss
        // breaks (its AC5 failure is judged by the liveness check, which the
        // native comparison does not run; the counts still differ). (stateright's
        // own lossy network explodes beyond one participant: with two it passes
        // 4 million states.)
        let none: &[&str] = &[];
        for (config, states, broken) in [
            (config(1, true, 0, Variant::Correct), (100, 1_592), none),
            (config(1, true, 1, Variant::Correct), (494, 8_046), none),
            (config(1, true, 0, Variant::NoResend), (91, 1_592), none),
            (
                config(1, true, 1, Variant::ForgetDecision),
                (500, 9_678),
                &["AC1 agreement"],
            ),
        ] {
            let model = config.clone().into_model();
            let [reduced, native] = super::super::network::native::compare(&model);
            assert_eq!((reduced.states, native.states), states, "{config:?}");
            // Compared piecewise: a failing comparison of whole summaries would
            // print every state.
            assert!(reduced.reachable == native.reachable, "{config:?}");
            assert!(reduced.terminal == native.terminal, "{config:?}");
            assert_eq!(reduced.verdicts, native.verdicts, "{config:?}");
            let failed: Vec<&str> = native
                .verdicts
                .iter()
                .filter(|(_, holds)| !holds)
                .map(|(name, _)| *name)
                .collect();
            assert_eq!(failed, broken, "{config:?}");
        }
    }

    #[test]
    fn two_contending_transactions_pass() {
        // Two transactions multiply the state space (their interleavings are a
        // product), so contention is checked at one participant, where they
        // want the same lock.
        let two = |crashes| TwoPhaseConfig {
            participants: 1,
            txns: 2,
            crashes,
            ..TwoPhaseConfig::default()
        };
        let (report, refinement) = run(two(0));
        assert_passes(&report, &refinement);
        assert_eq!(report.unique_states, 1_074);
        let (report, refinement) = run(two(1));
        assert_passes(&report, &refinement);
        assert_eq!(report.unique_states, 5_040);
    }

    #[test]
    fn ignore_votes_commits_over_a_no_vote() {
        let (report, refinement) = run(config(2, false, 0, Variant::IgnoreVotes));
        assert_eq!(
            broken(&report, &refinement),
            [
                "AC1 agreement",
                "AC3 commit needs all Yes",
                "refines TwoPhase"
            ]
        );
        let trace = trace(&report, "AC3 commit needs all Yes");
        // The shortest counterexample ends as the coordinator takes a No as
        // the last reply it needed — and commits in that same handler.
        assert!(
            trace.last().unwrap().contains("Vote(t0.1.0, No("),
            "{trace:?}"
        );
    }

    #[test]
    fn no_durable_vote_forgets_a_promise_across_a_crash() {
        let (report, refinement) = run(config(2, false, 1, Variant::NoDurableVote));
        // The prepared record never reached the disk, so a commit applied
        // later finds no writes to apply there either: durability breaks too.
        assert_eq!(
            broken(&report, &refinement),
            ["AC1 agreement", "durability", "refines TwoPhase"]
        );
        let trace = trace(&report, "AC1 agreement");
        let crash = trace
            .iter()
            .position(|a| a.starts_with("Crash(Id("))
            .expect("a crash");
        assert!(
            trace[..crash]
                .iter()
                .any(|a| a.contains("select random Accept(t0.1.0)")),
            "{trace:?}"
        );
        assert!(
            trace[crash..]
                .iter()
                .any(|a| a.contains("select random Refuse(t0.1.0)")),
            "{trace:?}"
        );
    }

    #[test]
    fn abort_after_yes_breaks_agreement_without_any_fault() {
        let (report, refinement) = run(config(2, false, 0, Variant::AbortAfterYes));
        assert_eq!(
            broken(&report, &refinement),
            ["AC1 agreement", "refines TwoPhase"]
        );
        let trace = trace(&report, "AC1 agreement");
        assert!(
            trace.iter().any(|a| a.contains("Uncertain(t0.1.0)")),
            "{trace:?}"
        );
        assert!(!trace.iter().any(|a| a.starts_with("Crash")), "{trace:?}");
    }

    #[test]
    fn forget_decision_answers_abort_after_committing() {
        let (report, refinement) = run(config(2, false, 1, Variant::ForgetDecision));
        assert_eq!(
            broken(&report, &refinement),
            ["AC1 agreement", "refines TwoPhase"]
        );
        let trace = trace(&report, "AC1 agreement");
        assert!(trace.iter().any(|a| a == "Crash(Id(0))"), "{trace:?}");
        assert!(
            trace
                .iter()
                .any(|a| a.contains("Outcome(t0.1.0, Abort) → Id(")),
            "{trace:?}"
        );
    }

    #[test]
    fn forget_too_early_answers_abort_to_a_late_query() {
        let (report, refinement) = run(config(2, false, 0, Variant::ForgetTooEarly));
        assert_eq!(
            broken(&report, &refinement),
            ["AC1 agreement", "refines TwoPhase"]
        );
        let trace = trace(&report, "AC1 agreement");
        assert!(
            trace.iter().any(|a| a.contains("Query(t0.1.0) → Id(0)")),
            "{trace:?}"
        );
    }

    #[test]
    fn no_resend_leaves_a_participant_undecided_on_a_lossy_network() {
        let (report, refinement) = run(config(1, true, 0, Variant::NoResend));
        assert_eq!(broken(&report, &refinement), ["AC5 termination"]);
        // The coordinator gives up waiting, sends Abort once, and the network
        // loses it together with the Prepare: the participant never decides.
        assert_eq!(
            trace(&report, "AC5 termination"),
            [
                "initial state",
                "Timeout(Id(0), VoteTimeout(t0.1.0))",
                "the network loses every message in flight"
            ]
        );
    }

    #[test]
    fn resend_to_self_never_finishes_on_a_lossy_network() {
        let (report, refinement) = run(config(1, true, 0, Variant::ResendToSelf));
        assert_eq!(broken(&report, &refinement), ["AC5 termination"]);
        let property = report.property("AC5 termination").unwrap();
        // The trap: the coordinator only ever talks to itself.
        let trap = property
            .trap
            .as_ref()
            .expect("a liveness violation has a trap");
        assert!(
            trap.iter().all(|step| !step.action.contains("→ Id(1)")),
            "{trap:?}"
        );
        // Without loss nothing is lost, so nothing needs resending.
        let (report, refinement) = run(config(1, false, 0, Variant::ResendToSelf));
        assert_passes(&report, &refinement);
    }

    #[test]
    fn volatile_apply_loses_an_acknowledged_write() {
        let (report, refinement) = run(config(2, false, 0, Variant::VolatileApply));
        assert_eq!(broken(&report, &refinement), ["durability"]);
        let trace = trace(&report, "durability");
        assert!(
            trace
                .last()
                .unwrap()
                .contains("Outcome(t0.1.0, Commit) → Id("),
            "{trace:?}"
        );
        // With a crash the lost write also turns into a split decision.
        let (report, refinement) = run(config(2, false, 1, Variant::VolatileApply));
        assert_eq!(
            broken(&report, &refinement),
            [
                "AC1 agreement",
                "AC2 irrevocable",
                "durability",
                "refines TwoPhase"
            ]
        );
    }

    #[test]
    fn the_variants_together_break_every_safety_and_liveness_property() {
        // The names asserted in the tests above, gathered: every `always` and
        // liveness property of the model, and refinement, is broken by at
        // least one variant — none of them is vacuous.
        let model = TwoPhaseConfig::default().into_model();
        let spec = spec(&model);
        let mut names: Vec<&str> = spec
            .checks()
            .into_iter()
            .filter(|(_, kind)| *kind != crate::checker::Kind::Sometimes)
            .map(|(name, _)| name)
            .collect();
        let refuted = [
            "AC1 agreement",
            "AC2 irrevocable",
            "AC3 commit needs all Yes",
            "durability",
            "AC5 termination",
            "refines TwoPhase",
        ];
        names.sort_unstable();
        let mut refuted = refuted.to_vec();
        refuted.sort_unstable();
        assert_eq!(names, refuted);
    }

    /// The correct protocol in several configurations and every variant where
    /// it is refuted, with and without symmetry: the same verdict on every
    /// property — the same `sometimes` witnessed, the same properties broken —
    /// and both counts pinned.
    #[test]
    fn symmetry_changes_no_verdict_on_any_variant() {
        use Variant::*;
        let on_async = |participants, crashes| TwoPhaseConfig {
            disk: Disk::Async,
            ..config(participants, false, crashes, Correct)
        };
        let two_txns = TwoPhaseConfig {
            participants: 1,
            txns: 2,
            ..TwoPhaseConfig::default()
        };
        let cases = [
            (config(1, true, 0, Correct), 100, 100),
            (config(2, false, 0, Correct), 1_755, 903),
            (config(2, false, 1, Correct), 10_269, 5_210),
            (config(2, true, 1, Correct), 41_768, 21_118),
            (TwoPhaseConfig::default(), 74_031, 24_711),
            (on_async(2, 0), 5_639, 2_696),
            (two_txns, 1_074, 1_074),
            (config(2, false, 0, IgnoreVotes), 1_812, 933),
            (config(2, false, 1, NoDurableVote), 33_641, 16_966),
            (config(2, false, 0, AbortAfterYes), 457, 242),
            (config(2, false, 1, ForgetDecision), 10_614, 5_383),
            (config(2, false, 0, ForgetTooEarly), 1_239, 645),
            (config(2, true, 1, NoResend), 38_097, 19_284),
            (config(2, false, 1, VolatileApply), 39_914, 20_115),
            (config(2, true, 1, ResendToSelf), 68_465, 34_634),
        ];
        let mut variants: Vec<Variant> = cases.iter().map(|(c, ..)| c.variant).collect();
        variants.dedup();
        assert_eq!(variants.len(), Variant::NAMES.len(), "every variant");
        let verdicts = |(report, refinement): &(CheckReport, PropertyReport)| {
            report
                .properties
                .iter()
                .chain(std::iter::once(refinement))
                // A counterexample is a shortest path, as long with symmetry:
                // renaming maps paths to paths of the same length.
                .map(|p| (p.name, p.status, p.counterexample.as_ref().map(Vec::len)))
                .collect::<Vec<_>>()
        };
        for (config, full_states, reduced_states) in cases {
            let full = run_with(config.clone(), false);
            let reduced = run_with(config.clone(), true);
            assert_eq!(verdicts(&full), verdicts(&reduced), "{config:?}");
            // Each variant is refuted, with symmetry too; the protocol is not.
            assert_eq!(
                config.variant == Correct,
                broken(&full.0, &full.1).is_empty(),
                "{config:?}"
            );
            assert_eq!(
                (full.0.unique_states, reduced.0.unique_states),
                (full_states, reduced_states),
                "{config:?}"
            );
        }
    }

    /// The representative is canonical: the search keeps exactly one state per
    /// class, where a class is found by brute force — the least fingerprint
    /// of a state's renamings, every renaming of the participants tried — and
    /// every renaming of a state has the state's representative.
    #[test]
    fn symmetry_keeps_one_state_per_class() {
        use crate::checker::symmetry::renamings;
        let on_async = TwoPhaseConfig {
            disk: Disk::Async,
            ..config(2, false, 1, Variant::Correct)
        };
        for (config, pinned) in [
            (config(2, true, 1, Variant::Correct), 21_118),
            // Held messages are a set (see `DiskState`'s renaming): more than
            // half of the 142,895 states go.
            (on_async, 63_183),
            (TwoPhaseConfig::default(), 24_711),
        ] {
            let model = config.clone().into_model();
            let reachable = crate::models::testing::reachable_states(&model);
            let all = renamings(1..config.participants + 1);
            let least = |s: &SystemState| all.iter().map(|p| fingerprint(&s.permute(p))).min();
            let classes: std::collections::HashSet<Option<u64>> =
                reachable.iter().map(least).collect();
            let representatives: std::collections::HashSet<u64> = reachable
                .iter()
                .map(|s| fingerprint(&representative(s)))
                .collect();
            assert_eq!(representatives.len(), classes.len(), "{config:?}");
            let (reduced, _) = run_with(config.clone(), true);
            assert_eq!(reduced.unique_states, classes.len(), "{config:?}");
            assert_eq!(classes.len(), pinned, "{config:?}");
            // Every renaming of one state in seven (all of them would take long).
            for state in reachable.iter().step_by(7) {
                let expected = representative(state);
                for p in &all {
                    assert!(representative(&state.permute(p)) == expected, "{config:?}");
                }
            }
        }
    }

    #[test]
    fn parameters_select_the_configuration() {
        let params = Params::parse(
            NAME,
            PARAMS,
            &[
                "participants=2",
                "crashes=1",
                "lossy=true",
                "variant=forget-too-early",
            ],
        )
        .unwrap();
        let config = TwoPhaseConfig::from_params(&params).unwrap();
        assert_eq!(config, self::config(2, true, 1, Variant::ForgetTooEarly));
        assert!(Params::parse(NAME, PARAMS, &["variant=nope"]).is_err());
    }
}
