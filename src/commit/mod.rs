//! Two-phase commit: a coordinator and participants as sans-IO machines.
//!
//! The protocol is the classic one of Gray (1978) with the *presumed abort*
//! optimisation of Mohan, Lindsay & Obermarck (1986) and cooperative
//! termination (Bernstein, Hadzilacos & Goodman, *Concurrency Control and
//! Recovery in Database Systems*, 1987, §7.4), over a versioned store with
//! read validation:
//!
//! 1. the coordinator sends `Prepare` with what the transaction read and
//!    writes at each participant;
//! 2. a participant waits while a key is locked by an older undecided
//!    transaction, votes No if it is locked by a younger one (so waits form
//!    no cycle) or if a read key's version moved, and otherwise locks
//!    the keys, saves its prepared record and — once that is durable — votes
//!    Yes;
//! 3. the coordinator commits on unanimous Yes, saving the decision before any
//!    Commit leaves, and aborts on any No or when its vote timer fires; aborts
//!    need no record;
//! 4. it resends the decision until every participant acknowledges, then
//!    forgets it; its watermark (carried by every Prepare) lets participants
//!    forget it too, so neither side keeps what is finished;
//! 5. a prepared participant that hears nothing asks the coordinator and its
//!    ring successor among the peers; the coordinator answers from its memory,
//!    or Abort when it has no record; a peer passes on the decision if it has
//!    learned it.
//!
//! # Driving a machine
//!
//! [`Coordinator`] and [`Participant`] do no I/O, read no clock and draw no
//! random number. Each input — `handle_message`, `handle_timer`,
//! [`Coordinator::begin`], `handle_persisted` — writes what must happen into a
//! [`CommitOutput`]: deltas to append to the log, messages to send now,
//! messages to send once the deltas are durable, timers, and [`Event`]s (see
//! [`crate::output`] for the order). A machine is rebuilt after a crash from
//! the record its deltas fold into ([`CoordinatorRecord`],
//! [`ParticipantRecord`]).
//!
//! Properties (AC1–AC5, durability, refinement of Lamport's TwoPhase) are
//! checked by the `two-phase` model (models/two_phase.rs) on these very
//! machines; each rule's comment names the property it protects.

mod coordinator;
mod message;
mod participant;
mod record;
#[cfg(feature = "check")]
mod rename;
mod store;
mod txn_id;

pub use coordinator::{
    BeginError, Coordinator, CoordinatorConfig, CoordinatorTxn, Part, Phase, RecoverError, TxnPlan,
};
pub use message::{
    AbortReason, Event, Key, Msg, Outcome, ReadSet, Refusal, Timer, Value, Version, Versioned,
    Vote, WriteSet, show,
};
pub use participant::{Participant, ParticipantConfig};
pub use record::{
    CoordinatorDelta, CoordinatorRecord, Delta, Origin, ParticipantDelta, ParticipantRecord,
    TxnRecord,
};
#[cfg(feature = "check")]
pub use rename::RenameNodes;
pub use store::{KeyMap, Store};
pub use txn_id::{
    INCARNATION_BITS, MAX_INCARNATION, MAX_SEQUENCE, NODE_BITS, SEQUENCE_BITS, TxnId,
};

use crate::NodeId;
use crate::output::Output;

/// The output of a commit machine: messages between nodes, commit timers,
/// commit deltas and commit events.
pub type CommitOutput = Output<NodeId, Msg, Timer, Delta, Event>;
