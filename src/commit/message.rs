//! The messages of two-phase commit, and the values they carry.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use stateright::actor::Id;

/// A transaction's identity, unique per coordinator.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TxnId(pub u64);

impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}

// Traces print many of these; `t0` reads better than `TxnId(0)`.
impl fmt::Debug for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A key of a participant's store.
pub type Key = String;
/// A value of a participant's store.
pub type Value = String;
/// The writes a transaction makes at one participant.
pub type WriteSet = BTreeMap<Key, Value>;

/// How a transaction ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Outcome {
    /// Every participant applies its writes.
    Commit,
    /// No participant applies its writes.
    Abort,
}

/// A participant's answer to `Prepare`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Vote {
    /// Prepared: the writes are locked and the prepared record is durable.
    Yes,
    /// Refused: the participant has aborted the transaction.
    No,
}

/// Every message of the protocol. Handlers are one `match` over this enum.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Msg {
    /// Coordinator → participant: vote on `txn`, whose writes here are `writes`;
    /// `peers` are the transaction's other participants in ring order, starting
    /// after the recipient; an uncertain participant asks the first of them for
    /// the outcome (cooperative termination).
    Prepare {
        /// The transaction.
        txn: TxnId,
        /// The writes this participant is to make.
        writes: WriteSet,
        /// The other participants.
        peers: Vec<Id>,
    },
    /// Participant → coordinator: the participant's vote.
    Vote {
        /// The transaction.
        txn: TxnId,
        /// Yes or No.
        vote: Vote,
    },
    /// The outcome of `txn`: the coordinator's decision (sent and resent until
    /// acknowledged), its answer to a query, or a peer's answer to a query.
    Outcome {
        /// The transaction.
        txn: TxnId,
        /// Commit or Abort.
        outcome: Outcome,
    },
    /// Participant → coordinator: the participant has durably reached `outcome`.
    Ack {
        /// The transaction.
        txn: TxnId,
        /// The outcome the participant reached.
        outcome: Outcome,
    },
    /// An uncertain participant → coordinator and ring successor: what was the
    /// outcome?
    Query {
        /// The transaction.
        txn: TxnId,
    },
}

impl Msg {
    /// The transaction a message is about.
    pub fn txn(&self) -> TxnId {
        match self {
            Msg::Prepare { txn, .. }
            | Msg::Vote { txn, .. }
            | Msg::Outcome { txn, .. }
            | Msg::Ack { txn, .. }
            | Msg::Query { txn } => *txn,
        }
    }
}

// A compact form for counterexample traces: `Vote(t0, Yes)`, `Outcome(t0, Commit)`.
impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Msg::Prepare { txn, writes, peers } => {
                let writes: Vec<String> = writes.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(
                    f,
                    "Prepare({txn}, {{{}}}, peers {peers:?})",
                    writes.join(", ")
                )
            }
            Msg::Vote { txn, vote } => write!(f, "Vote({txn}, {vote:?})"),
            Msg::Outcome { txn, outcome } => write!(f, "Outcome({txn}, {outcome:?})"),
            Msg::Ack { txn, outcome } => write!(f, "Ack({txn}, {outcome:?})"),
            Msg::Query { txn } => write!(f, "Query({txn})"),
        }
    }
}

/// Timers of both roles. Timers are data: the runtime arms and fires them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Timer {
    /// Coordinator: the votes of `txn` are overdue; abort it.
    VoteTimeout(TxnId),
    /// Coordinator: resend the decision of `txn` to whoever has not acknowledged it.
    Resend(TxnId),
    /// Participant: still uncertain about `txn`; ask the coordinator and the
    /// ring successor.
    Uncertain(TxnId),
}

/// Random choices, offered to the model checker only.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Choice {
    /// The participant's free vote on `txn` (in models, a participant may refuse
    /// for reasons of its own, such as a failed constraint).
    Vote(TxnId, Vote),
}
