//! The messages of the handoff protocol, and the values they carry.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::layout::{Epoch, RingChange};
use crate::NodeId;
use crate::commit::show;

/// A key of the store.
pub type Key = Bytes;
/// A value of the store.
pub type Value = Bytes;

/// The version of a key's value: the epoch of the primary that accepted the
/// write, then a counter within that epoch.
///
/// Versions of one key only grow: at most one node — the key's primary, once
/// it holds the key's custody — accepts writes for a key in an epoch, and a
/// primary of a later epoch starts from the custody copy of every earlier one.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version {
    /// The epoch in which the write was accepted.
    pub epoch: Epoch,
    /// Its number among the key's writes of that epoch, from 1.
    pub seq: u64,
}

// Traces print many versions: `e1.2` is the second write of epoch 1.
impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "e{}.{}", self.epoch, self.seq)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Who asked for a request: the node the client is attached to (its
/// *origin*, which receives the answer) and that node's number for it.
///
/// Numbers grow with each request of an origin, so a primary can tell a late
/// duplicate of an old write from a new one (see [`Versioned::writer`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestId {
    /// The node that answers the client.
    pub origin: NodeId,
    /// The origin's number for the request.
    pub seq: u64,
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}#{}", self.origin, self.seq)
    }
}

/// A key's value, or its tombstone, with the version that wrote it.
///
/// A delete leaves a tombstone (`value: None`) rather than nothing, so that a
/// copy of an older value arriving later cannot bring the key back.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Versioned {
    /// The version.
    pub version: Version,
    /// The value; `None` for a deleted key.
    pub value: Option<Value>,
    /// The request that wrote it. A write whose id equals it is a duplicate
    /// (answered, not applied again); one from the same origin with a lower
    /// number is a late copy of a request already overwritten.
    pub writer: RequestId,
}

impl fmt::Debug for Versioned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{}", show(value))?,
            None => f.write_str("deleted")?,
        }
        write!(f, "@{:?} by {:?}", self.version, self.writer)
    }
}

/// What a client asks of a key.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Op {
    /// Write this value.
    Put(Value),
    /// Delete the key.
    Delete,
    /// Read the key.
    Get,
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Put(value) => write!(f, "Put({})", show(value)),
            Op::Delete => f.write_str("Delete"),
            Op::Get => f.write_str("Get"),
        }
    }
}

/// A client's request.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Request {
    /// Who asked, and the number that makes a retry recognisable.
    pub id: RequestId,
    /// The key.
    pub key: Key,
    /// What to do.
    pub op: Op,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {:?} {}", self.id, self.op, show(&self.key))
    }
}

/// The answer to a request.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Reply {
    /// The write (put or delete) is applied at this version, and stored by
    /// every holder of the key at the primary's epoch.
    Written(Version),
    /// The key's value at its primary: `None` if it was never written, a
    /// tombstone if it was deleted.
    Read(Option<Versioned>),
    /// A later request of the same origin has already written the key: this
    /// one is a late copy, ordered before it and never applied.
    Superseded,
    /// The node asked cannot serve the key now (it is not the key's primary
    /// and the request was forwarded once already, or the key's custody has
    /// not reached it yet): send the request again, with the same id.
    Retry,
}

/// Every message of the handoff protocol. Handlers are one `match` over it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Msg {
    /// The administrator (or membership service) → a node of the old or new
    /// ring: the next ring. Resent until acknowledged.
    Ring(RingChange),
    /// The ring of `epoch` is durably recorded here (it is installed as soon
    /// as the node holds the custody of every key it owes the previous ring).
    RingAck {
        /// The epoch acknowledged.
        epoch: Epoch,
    },
    /// A client's request, sent to any node: a node that is not the key's
    /// primary forwards it once to the primary it knows.
    Request {
        /// The request.
        request: Request,
        /// Whether a node has already forwarded it.
        forwarded: bool,
    },
    /// The answer to a request, sent to its origin.
    Answer {
        /// The request answered.
        request: RequestId,
        /// The answer.
        reply: Reply,
    },
    /// Custody: the primary of `epoch - 1` → the primary of `epoch`, every
    /// key of the ranges that move between them (possibly none). Resent until
    /// acknowledged; until then the sender keeps the keys and accepts no write
    /// to them ("no lost keys", "one writer per key and epoch").
    Handoff {
        /// The epoch whose primary receives the keys.
        epoch: Epoch,
        /// The keys, with their values and tombstones.
        entries: Vec<(Key, Versioned)>,
    },
    /// The handoff of `epoch` is durably stored; the sender may drop the keys.
    HandoffAck {
        /// The epoch of the handoff.
        epoch: Epoch,
    },
    /// A primary → a backup of its ring of `epoch`: hold these values.
    Replicate {
        /// The sender's epoch.
        epoch: Epoch,
        /// The keys and their values.
        entries: Vec<(Key, Versioned)>,
    },
    /// The backup holds these versions (or, past `epoch` and no longer a
    /// holder of a key, needs not hold it).
    ReplicateAck {
        /// The epoch of the replica.
        epoch: Epoch,
        /// Each key and the version acknowledged.
        entries: Vec<(Key, Version)>,
    },
}

fn entries<T: fmt::Debug>(f: &mut fmt::Formatter<'_>, entries: &[(Key, T)]) -> fmt::Result {
    let parts: Vec<String> = entries
        .iter()
        .map(|(key, value)| format!("{}: {value:?}", show(key)))
        .collect();
    write!(f, "{{{}}}", parts.join(", "))
}

// A compact form for counterexample traces.
impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Msg::Ring(change) => write!(f, "Ring({change:?})"),
            Msg::RingAck { epoch } => write!(f, "RingAck(e{epoch})"),
            Msg::Request { request, forwarded } => {
                let hop = if *forwarded { "Forwarded" } else { "Request" };
                write!(f, "{hop}({request:?})")
            }
            Msg::Answer { request, reply } => write!(f, "Answer({request:?}, {reply:?})"),
            Msg::Handoff { epoch, entries: e } => {
                write!(f, "Handoff(e{epoch}, ")?;
                entries(f, e)?;
                f.write_str(")")
            }
            Msg::HandoffAck { epoch } => write!(f, "HandoffAck(e{epoch})"),
            Msg::Replicate { epoch, entries: e } => {
                write!(f, "Replicate(e{epoch}, ")?;
                entries(f, e)?;
                f.write_str(")")
            }
            Msg::ReplicateAck { epoch, entries: e } => {
                write!(f, "ReplicateAck(e{epoch}, ")?;
                entries(f, e)?;
                f.write_str(")")
            }
        }
    }
}

/// The machine's one timer. Timers are data: the driver arms and fires them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Timer {
    /// Send again every handoff and replica not yet acknowledged. Armed
    /// exactly while one waits for an acknowledgement.
    Resend,
}

/// What the handoff machine tells the application.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Event {
    /// The answer to a request whose origin is this node. Like a message of
    /// `send_after_persist`, it may rest on the output's deltas: the driver
    /// hands it to the client only once they are durable.
    Answered {
        /// The request.
        request: RequestId,
        /// The answer.
        reply: Reply,
    },
    /// The ring of `epoch` is installed: this node now acts on it.
    Installed {
        /// The epoch.
        epoch: Epoch,
    },
    /// `to` acknowledged the handoff of `epoch`: keys this node no longer
    /// holds are dropped.
    HandedOff {
        /// The epoch of the handoff.
        epoch: Epoch,
        /// Its receiver.
        to: NodeId,
    },
    /// A ring announcement was refused because no ring can be built from it;
    /// it is not acknowledged.
    RingRefused {
        /// The epoch announced.
        epoch: Epoch,
        /// Why, as [`RingError`](crate::ring::RingError) says it.
        reason: String,
    },
}
