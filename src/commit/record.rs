//! Durable records: what each role saves with `Out::save` and rebuilds from after
//! a crash.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use stateright::actor::Id;

use super::message::{Outcome, TxnId, Value, WriteSet};

/// What a participant knows durably about one transaction.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TxnRecord {
    /// Voted Yes: the writes are locked and the outcome is unknown. A prepared
    /// participant may not abort on its own (AC1).
    Prepared {
        /// The writes to apply on commit.
        writes: WriteSet,
        /// Who to ask for the outcome.
        coordinator: Id,
        /// The other participants, also asked (cooperative termination).
        peers: Vec<Id>,
    },
    /// Refused before voting Yes (a lock conflict or a free No), which dooms the
    /// transaction. The participant does not know the coordinator's decision, so
    /// it tells peers nothing; a duplicate Prepare is answered No again.
    Refused,
    /// Learned the coordinator's decision (from it or from a peer that learned
    /// it); kept to answer queries and duplicate messages alike.
    Decided(Outcome),
}

/// A participant's durable state: its store and its transaction records. Every
/// field of a participant's memory that matters after a crash is here; the locks
/// are derived from the prepared records.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ParticipantRecord {
    /// The committed key-value store.
    pub store: BTreeMap<String, Value>,
    /// One record per transaction this participant has voted in or decided.
    pub txns: BTreeMap<TxnId, TxnRecord>,
}

/// A coordinator's durable state. Presumed abort: only commit decisions are
/// recorded; a transaction with no record is aborted.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CoordinatorRecord {
    /// Transactions decided Commit and not yet acknowledged by every participant,
    /// with their participants.
    pub commits: BTreeMap<TxnId, BTreeSet<Id>>,
}
