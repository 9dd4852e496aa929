//! Two-phase commit: a coordinator and participants as stateright actors.
//!
//! The protocol is the classic one of Gray (1978) with the *presumed abort*
//! optimisation of Mohan, Lindsay & Obermarck (1986) and cooperative termination
//! (Bernstein, Hadzilacos & Goodman, *Concurrency Control and Recovery in
//! Database Systems*, 1987, §7.4):
//!
//! 1. the coordinator sends `Prepare` with each participant's write-set;
//! 2. a participant votes No if a key is locked by another undecided transaction
//!    (or, in models, by a free choice); otherwise it locks the keys, saves its
//!    prepared record and votes Yes;
//! 3. the coordinator commits on unanimous Yes — saving the decision first — and
//!    aborts on any No or when the vote timer fires; aborts need no record;
//! 4. it resends the decision until every participant acknowledges, then forgets;
//! 5. a prepared participant that hears nothing asks the coordinator and its
//!    ring successor among the peers; the coordinator answers from its record,
//!    or Abort when it has none; a peer passes on the coordinator's decision if
//!    it has learned it.
//!
//! Machines do no I/O: sends, timers, saves and random choices go out through
//! [`Out`]. Properties (AC1–AC5, durability) are checked by the `two-phase` model
//! in `models/two_phase.rs`; each rule's comment names the property it protects.

mod coordinator;
mod message;
mod participant;
mod record;
mod variant;

use std::borrow::Cow;

use stateright::actor::{Actor, Id, Out};

pub use coordinator::{Coordinator, CoordinatorState, CoordinatorTxn, Phase, TxnPlan};
pub use message::{Choice, Key, Msg, Outcome, Timer, TxnId, Value, Vote, WriteSet};
pub use participant::{Participant, ParticipantState, PendingVote};
pub use record::{CoordinatorRecord, ParticipantRecord, TxnRecord};
pub use variant::Variant;

/// One actor of a two-phase-commit system: a coordinator or a participant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CommitActor {
    /// Runs transactions.
    Coordinator(Coordinator),
    /// Holds part of the data.
    Participant(Participant),
}

/// The state of a [`CommitActor`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CommitState {
    /// A coordinator's state.
    Coordinator(CoordinatorState),
    /// A participant's state.
    Participant(ParticipantState),
}

/// What a [`CommitActor`] saves durably.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Record {
    /// A coordinator's commit records.
    Coordinator(CoordinatorRecord),
    /// A participant's store and transaction records.
    Participant(ParticipantRecord),
}

/// Runs `handle` on the inner state of the variant that `inner` selects, keeping
/// the copy-on-write: the outer state is cloned only if the handler writes.
fn delegate<S: Clone>(
    state: &mut Cow<CommitState>,
    inner: fn(&CommitState) -> &S,
    wrap: fn(S) -> CommitState,
    handle: impl FnOnce(&mut Cow<S>),
) {
    let mut inner_state = Cow::Borrowed(inner(state));
    handle(&mut inner_state);
    if let Cow::Owned(changed) = inner_state {
        *state = Cow::Owned(wrap(changed));
    }
}

fn as_coordinator(state: &CommitState) -> &CoordinatorState {
    match state {
        CommitState::Coordinator(s) => s,
        CommitState::Participant(_) => panic!("a coordinator's state is a CoordinatorState"),
    }
}

fn as_participant(state: &CommitState) -> &ParticipantState {
    match state {
        CommitState::Participant(s) => s,
        CommitState::Coordinator(_) => panic!("a participant's state is a ParticipantState"),
    }
}

impl Actor for CommitActor {
    type Msg = Msg;
    type State = CommitState;
    type Timer = Timer;
    type Random = Choice;
    type Storage = Record;

    fn on_start(&self, _id: Id, storage: &Option<Record>, o: &mut Out<Self>) -> CommitState {
        match self {
            CommitActor::Coordinator(c) => {
                let record = match storage {
                    Some(Record::Coordinator(r)) => Some(r),
                    _ => None,
                };
                CommitState::Coordinator(c.on_start(record, o))
            }
            CommitActor::Participant(p) => {
                let record = match storage {
                    Some(Record::Participant(r)) => Some(r),
                    _ => None,
                };
                CommitState::Participant(p.on_start(record, o))
            }
        }
    }

    fn on_msg(&self, _id: Id, state: &mut Cow<CommitState>, src: Id, msg: Msg, o: &mut Out<Self>) {
        match self {
            CommitActor::Coordinator(c) => {
                delegate(state, as_coordinator, CommitState::Coordinator, |s| {
                    c.on_msg(s, src, msg, o)
                })
            }
            CommitActor::Participant(p) => {
                delegate(state, as_participant, CommitState::Participant, |s| {
                    p.on_msg(s, src, msg, o)
                })
            }
        }
    }

    fn on_timeout(&self, _id: Id, state: &mut Cow<CommitState>, timer: &Timer, o: &mut Out<Self>) {
        match self {
            CommitActor::Coordinator(c) => {
                delegate(state, as_coordinator, CommitState::Coordinator, |s| {
                    c.on_timeout(s, timer, o)
                })
            }
            CommitActor::Participant(p) => {
                delegate(state, as_participant, CommitState::Participant, |s| {
                    p.on_timeout(s, timer, o)
                })
            }
        }
    }

    fn on_random(&self, _id: Id, state: &mut Cow<CommitState>, choice: &Choice, o: &mut Out<Self>) {
        if let CommitActor::Participant(p) = self {
            delegate(state, as_participant, CommitState::Participant, |s| {
                p.on_random(s, choice, o)
            })
        }
    }

    fn name(&self) -> String {
        match self {
            CommitActor::Coordinator(_) => "coordinator".into(),
            CommitActor::Participant(_) => "participant".into(),
        }
    }
}
