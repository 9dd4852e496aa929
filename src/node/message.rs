//! What nodes and clients say to a node, its timers, and its durable record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stateright::actor::Id;

use crate::commit::{self, CoordinatorRecord, Key, Outcome, ParticipantRecord, TxnId, Value};
use crate::detector::{self, actor::DetectorTimer};

/// A client's number for one of its requests; a retry reuses it, so the node
/// can recognise it.
pub type RequestId = u64;

/// Every message a node receives. Handlers are one `match` over this enum.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum NodeMsg {
    /// Node ↔ node: two-phase commit.
    Commit(commit::Msg),
    /// Node ↔ node: failure detection.
    Detector(detector::Message),
    /// Client → node.
    Request {
        /// The client's number for the request.
        id: RequestId,
        /// What the client asks.
        request: Request,
    },
    /// Node → client.
    Reply {
        /// The request answered.
        id: RequestId,
        /// The answer.
        reply: Reply,
    },
    /// Node → the owner of `key`: read it for `client`'s request `id`.
    Read {
        /// The client waiting for the value.
        client: Id,
        /// The client's request.
        id: RequestId,
        /// The key.
        key: Key,
    },
    /// The owner's answer to [`NodeMsg::Read`].
    ReadReply {
        /// The client waiting for the value.
        client: Id,
        /// The client's request.
        id: RequestId,
        /// The key.
        key: Key,
        /// Its committed value, if any.
        value: Option<Value>,
    },
}

/// A client's request.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Request {
    /// Write every key atomically (one two-phase-commit transaction).
    Txn {
        /// The keys and their new values.
        writes: BTreeMap<Key, Value>,
    },
    /// Read the committed value of a key from its owner.
    Get {
        /// The key.
        key: Key,
    },
    /// The node's membership view and counters.
    Status,
}

/// A node's answer to a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Reply {
    /// How a transaction ended. A Commit is sent only once the decision is
    /// durable at the coordinator.
    Txn {
        /// The transaction's id.
        txn: TxnId,
        /// Commit or Abort.
        outcome: Outcome,
    },
    /// The committed value of a key.
    Value {
        /// The key.
        key: Key,
        /// Its value; `None` if it was never written.
        value: Option<Value>,
    },
    /// The node's status.
    Status(StatusView),
    /// The request was refused; nothing was changed.
    Refused {
        /// Why, and what to do.
        reason: String,
    },
}

/// What a node believes about one member of the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MemberStatus {
    /// Heard from recently (or the node itself).
    Alive,
    /// Silent for too long; may still refute.
    Suspect,
    /// Declared failed.
    Dead,
}

/// A node's status: who it believes is alive, what it holds, and its counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StatusView {
    /// The node answering.
    pub node: u64,
    /// Its incarnation (raised on every start).
    pub incarnation: u64,
    /// Every node of the cluster and what this node believes about it.
    pub members: BTreeMap<u64, MemberStatus>,
    /// Transactions this node coordinates and has not forgotten.
    pub coordinating: u64,
    /// Transactions this node has voted Yes on and not yet learned the outcome of.
    pub prepared: u64,
    /// Keys in this node's committed store.
    pub keys: u64,
    /// The runtime's counters (messages, drops by kind, saves, fsyncs). The
    /// actor has none and leaves this empty; the runtime fills it in.
    pub counters: BTreeMap<String, u64>,
}

/// A node's timers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeTimer {
    /// A two-phase-commit timer (of the coordinator or of the participant).
    Commit(commit::Timer),
    /// A failure-detector timer.
    Detector(DetectorTimer),
}

/// Everything a node saves: each save of one part is a save of the whole.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Raised on every start; part of every transaction id (see
    /// [`txn_id`](super::txn_id)).
    pub incarnation: u64,
    /// The coordinator's commit records.
    pub coordinator: CoordinatorRecord,
    /// The participant's store and transaction records.
    pub participant: ParticipantRecord,
}
