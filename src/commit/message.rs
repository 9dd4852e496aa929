//! The messages of two-phase commit, and the values they carry.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::TxnId;
use crate::NodeId;

/// A key of the store.
pub type Key = Bytes;
/// A value of the store.
pub type Value = Bytes;
/// A key's version: the transaction that wrote its current value. Unique per
/// write, so two reads at the same version saw the same write.
pub type Version = TxnId;

/// What a transaction read at one participant: each key and the version it
/// saw (`None`: the key was absent). Validated at prepare.
pub type ReadSet = BTreeMap<Key, Option<Version>>;

/// What a transaction writes at one participant: each key and its new value
/// (`None` deletes it).
pub type WriteSet = BTreeMap<Key, Option<Value>>;

/// A value with the version that wrote it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Versioned {
    /// The value.
    pub value: Value,
    /// The transaction that wrote it.
    pub version: Version,
}

/// How a transaction ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Outcome {
    /// Every participant applies its writes.
    Commit,
    /// No participant applies its writes.
    Abort,
}

impl Outcome {
    /// "committed" or "aborted", for logs and the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Commit => "committed",
            Outcome::Abort => "aborted",
        }
    }
}

/// Why a participant refused to prepare.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Refusal {
    /// `key` is locked by `by`, a younger transaction being committed (an
    /// older one would be waited for).
    Locked {
        /// The contended key.
        key: Key,
        /// The transaction holding it.
        by: TxnId,
    },
    /// `key` changed since the transaction read it (optimistic concurrency).
    Changed {
        /// The key whose version moved.
        key: Key,
    },
    /// The transaction is older than everything its coordinator still runs:
    /// a stale or duplicated Prepare of a transaction already finished.
    Finished,
    /// The participant does not hold `key` (yet): it is not a replica of it in
    /// the ring it runs, or the key is still being handed to it.
    NotHeld {
        /// The key.
        key: Key,
    },
    /// The transaction was planned on another ring epoch than the one the
    /// participant runs: its keys may have moved.
    Epoch {
        /// The epoch the coordinator planned with.
        planned: u64,
        /// The participant's epoch.
        current: u64,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Locked { key, by } => {
                write!(f, "conflict on key {} with transaction {by}", show(key))
            }
            Refusal::Changed { key } => write!(f, "key {} changed since it was read", show(key)),
            Refusal::Finished => f.write_str("the transaction was already finished"),
            Refusal::NotHeld { key } => write!(f, "key {} is not held here yet", show(key)),
            Refusal::Epoch { planned, current } => write!(
                f,
                "planned on ring epoch {planned}, but this node runs epoch {current}; retry"
            ),
        }
    }
}

/// A key or value as text where it is UTF-8, escaped bytes otherwise.
pub fn show(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => format!("{text:?}"),
        Err(_) => format!("{:?}", Bytes::copy_from_slice(bytes)),
    }
}

/// A participant's answer to `Prepare`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Vote {
    /// Prepared: the keys are locked, the reads validated, and the prepared
    /// record is durable.
    Yes,
    /// Refused, for this reason: the participant has aborted the transaction.
    No(Refusal),
}

/// Why a coordinator aborted.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AbortReason {
    /// A participant voted No.
    Refused {
        /// The participant.
        by: NodeId,
        /// Its reason.
        refusal: Refusal,
    },
    /// The vote timer fired before these participants voted Yes.
    VoteTimeout {
        /// The participants not heard from.
        missing: Vec<NodeId>,
    },
}

impl AbortReason {
    /// Whether the transaction lost a race with another one (a key locked by
    /// a younger transaction, or changed since it was read): nothing else
    /// stood in its way, so running it again as a new transaction may commit.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            AbortReason::Refused {
                refusal: Refusal::Locked { .. }
                    | Refusal::Changed { .. }
                    | Refusal::Epoch { .. }
                    | Refusal::NotHeld { .. },
                ..
            }
        )
    }
}

impl fmt::Display for AbortReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AbortReason::Refused { by, refusal } => write!(f, "node {by} refused: {refusal}"),
            AbortReason::VoteTimeout { missing } => {
                let missing: Vec<String> = missing.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "vote timeout: no vote from node {} (unreachable or down)",
                    missing.join(", ")
                )
            }
        }
    }
}

/// Every message of the protocol. Handlers are one `match` over this enum.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Msg {
    /// Coordinator → participant: vote on `txn`.
    Prepare {
        /// The transaction.
        txn: TxnId,
        /// What it read here, to validate.
        #[serde(deserialize_with = "map_in_one_pass")]
        reads: ReadSet,
        /// What it writes here.
        #[serde(deserialize_with = "map_in_one_pass")]
        writes: WriteSet,
        /// The other participants in ring order, starting after the recipient;
        /// an uncertain participant asks the first of them (cooperative
        /// termination).
        peers: Vec<NodeId>,
        /// The coordinator's watermark: every one of its transactions below it
        /// is finished, so participants may forget them (and refuse a late
        /// Prepare of one).
        finished_below: TxnId,
    },
    /// Participant → coordinator: the participant's vote.
    Vote {
        /// The transaction.
        txn: TxnId,
        /// Yes, or No with a reason.
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

    /// Whether the message only lets the coordinator forget a finished
    /// transaction (an acknowledgement): no answer to a client waits for it.
    pub fn is_bookkeeping(&self) -> bool {
        matches!(self, Msg::Ack { .. })
    }

    /// Whether the message is for the coordinator half of a node (`Query` is
    /// for the coordinator only if it began the transaction; see the node).
    pub fn is_for_coordinator(&self) -> bool {
        matches!(self, Msg::Vote { .. } | Msg::Ack { .. })
    }
}

// A compact form for counterexample traces: `Vote(t0.1.0, Yes)`.
impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Msg::Prepare {
                txn,
                reads,
                writes,
                peers,
                finished_below,
            } => {
                let mut parts: Vec<String> = reads
                    .iter()
                    .map(|(k, v)| match v {
                        Some(version) => format!("{}@{version}", show(k)),
                        None => format!("{}@none", show(k)),
                    })
                    .collect();
                parts.extend(writes.iter().map(|(k, v)| match v {
                    Some(value) => format!("{}={}", show(k), show(value)),
                    None => format!("del {}", show(k)),
                }));
                write!(
                    f,
                    "Prepare({txn:?}, {{{}}}, peers {peers:?}, below {finished_below})",
                    parts.join(", ")
                )
            }
            Msg::Vote { txn, vote } => write!(f, "Vote({txn:?}, {vote:?})"),
            Msg::Outcome { txn, outcome } => write!(f, "Outcome({txn:?}, {outcome:?})"),
            Msg::Ack { txn, outcome } => write!(f, "Ack({txn:?}, {outcome:?})"),
            Msg::Query { txn } => write!(f, "Query({txn:?})"),
        }
    }
}

/// Timers of both roles. Timers are data: the driver arms and fires them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Timer {
    /// Coordinator: the votes of `txn` are overdue; abort it.
    VoteTimeout(TxnId),
    /// Coordinator: resend the decision of `txn` to whoever has not
    /// acknowledged it.
    Resend(TxnId),
    /// Participant: still uncertain about `txn`; ask the coordinator and the
    /// ring successor.
    Uncertain(TxnId),
}

/// What the commit machines tell the application.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Event {
    /// Coordinator: `txn` is decided (a commit's record is in the same output's
    /// deltas or earlier).
    Decided {
        /// The transaction.
        txn: TxnId,
        /// Its outcome.
        outcome: Outcome,
        /// Why it aborted, when the coordinator knows.
        reason: Option<AbortReason>,
    },
    /// Participant: learned the outcome of `txn`, which it had prepared; its
    /// locks are released (and its writes applied, on commit).
    Learned {
        /// The transaction.
        txn: TxnId,
        /// Its outcome.
        outcome: Outcome,
    },
}

/// Reads a map whose entries come in key order (as every map is written) as
/// a list, then builds the map in one pass: serde's own way inserts entry by
/// entry, comparing each key with a dozen others, which showed in the
/// profile of many-key writes. Entries out of order are sorted; of equal
/// keys the last one stays, as with serde's way.
fn map_in_one_pass<'de, D, K, V>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
{
    collect_map(deserializer)
}

/// Reads a serialized map's entries into any collection of pairs, all at
/// once (see [`map_in_one_pass`]; a [`super::KeyMap`] is read the same way).
pub(super) fn collect_map<'de, D, K, V, C>(deserializer: D) -> Result<C, D::Error>
where
    D: serde::Deserializer<'de>,
    K: Deserialize<'de>,
    V: Deserialize<'de>,
    C: FromIterator<(K, V)>,
{
    struct Entries<K, V, C>(std::marker::PhantomData<(K, V, C)>);
    impl<'de, K: Deserialize<'de>, V: Deserialize<'de>, C: FromIterator<(K, V)>>
        serde::de::Visitor<'de> for Entries<K, V, C>
    {
        type Value = C;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<C, A::Error> {
            // The length is the sender's word: reserve only a little ahead.
            let mut entries = Vec::with_capacity(access.size_hint().unwrap_or(0).min(4096));
            while let Some(entry) = access.next_entry()? {
                entries.push(entry);
            }
            Ok(entries.into_iter().collect())
        }
    }
    deserializer.deserialize_map(Entries(std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Wrapped {
        #[serde(deserialize_with = "map_in_one_pass")]
        writes: WriteSet,
    }

    /// A Prepare reads back equal; a map whose entries come out of order or
    /// twice reads as serde's own way would read it (sorted, the last of
    /// equal keys kept). Postcard writes a map as its length and entries,
    /// which is how it writes a list of pairs, so the list stands for a map
    /// written by anyone.
    #[test]
    fn a_map_read_in_one_pass_is_the_map_serde_reads() {
        let key = |k: &'static [u8]| Key::from_static(k);
        let prepare = Msg::Prepare {
            txn: TxnId::new(NodeId(2), 1, 5).expect("a valid id"),
            reads: BTreeMap::from([(key(b"a"), None)]),
            writes: (0..100u32)
                .map(|i| (Key::from(format!("k{i:03}")), Some(Key::from_static(b"v"))))
                .collect(),
            peers: vec![NodeId(1)],
            finished_below: TxnId::new(NodeId(2), 1, 0).expect("a valid id"),
        };
        let bytes = postcard::to_allocvec(&prepare).expect("encodes");
        assert_eq!(
            postcard::from_bytes::<Msg>(&bytes).expect("decodes"),
            prepare
        );

        let entries: Vec<(Key, Option<Value>)> = vec![
            (key(b"c"), Some(key(b"1"))),
            (key(b"a"), None),
            (key(b"c"), Some(key(b"2"))),
            (key(b"b"), Some(key(b"3"))),
        ];
        let bytes = postcard::to_allocvec(&(entries.clone(),)).expect("encodes");
        let ours: Wrapped = postcard::from_bytes(&bytes).expect("decodes");
        let serdes: (WriteSet,) = postcard::from_bytes(&bytes).expect("decodes");
        assert_eq!(ours.writes, serdes.0);
        assert_eq!(ours.writes.get(b"c".as_slice()), Some(&Some(key(b"2"))));
        assert_eq!(ours.writes.len(), 3);
    }
}
