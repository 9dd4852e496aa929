//! Transaction ids, unique across the nodes of a cluster and across the
//! restarts of each node.
//!
//! A [`TxnId`] is one `u64`, packed as
//!
//! ```text
//!  63            48 47                      24 23                       0
//! +---------------+---------------------------+--------------------------+
//! | node (16 bit) | incarnation (24 bit)      | sequence (24 bit)        |
//! +---------------+---------------------------+--------------------------+
//! ```
//!
//! - `node` is the coordinator's id, so every node can tell whose transaction
//!   a message is about: presumed abort answers only for the coordinator's own
//!   transactions, and garbage collection keeps one watermark per coordinator;
//! - `incarnation` is durable and raised on every start of the coordinator
//!   (the driver makes the start's deltas durable before the first input), so
//!   a restarted coordinator never reuses an id of an earlier life;
//! - `sequence` counts the transactions of one incarnation; when it runs out
//!   the coordinator moves to the next incarnation instead of wrapping.
//!
//! Ids of one coordinator grow with time: a later incarnation, or a later
//! sequence in the same one. The participants' garbage collection relies on it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::NodeId;

/// Bits of the coordinator's node id.
pub const NODE_BITS: u32 = 16;
/// Bits of the incarnation.
pub const INCARNATION_BITS: u32 = 24;
/// Bits of the sequence number.
pub const SEQUENCE_BITS: u32 = 24;
/// The largest incarnation; a coordinator that has restarted this often
/// refuses new transactions.
pub const MAX_INCARNATION: u64 = (1 << INCARNATION_BITS) - 1;
/// The largest sequence number of one incarnation.
pub const MAX_SEQUENCE: u64 = (1 << SEQUENCE_BITS) - 1;

/// A transaction's identity: its coordinator, the coordinator's incarnation
/// and a sequence number, packed in one `u64` (see src/commit/txn_id.rs).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TxnId(pub u64);

impl TxnId {
    /// The id made of these parts; `None` if a part does not fit its field.
    pub fn new(node: NodeId, incarnation: u64, sequence: u64) -> Option<TxnId> {
        if incarnation > MAX_INCARNATION || sequence > MAX_SEQUENCE {
            return None;
        }
        Some(TxnId(
            (u64::from(node.0) << (INCARNATION_BITS + SEQUENCE_BITS))
                | (incarnation << SEQUENCE_BITS)
                | sequence,
        ))
    }

    /// The first id of `node`'s `incarnation`.
    pub fn first_of(node: NodeId, incarnation: u64) -> Option<TxnId> {
        TxnId::new(node, incarnation, 0)
    }

    /// The coordinator that began the transaction.
    pub fn node(self) -> NodeId {
        // The top 16 bits: the shift leaves nothing else.
        NodeId((self.0 >> (INCARNATION_BITS + SEQUENCE_BITS)) as u16)
    }

    /// The coordinator's incarnation when it began the transaction.
    pub fn incarnation(self) -> u64 {
        (self.0 >> SEQUENCE_BITS) & MAX_INCARNATION
    }

    /// The transaction's number within that incarnation.
    pub fn sequence(self) -> u64 {
        self.0 & MAX_SEQUENCE
    }
}

/// `node.incarnation.sequence`, as the command line prints transaction ids.
impl fmt::Display for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}",
            self.node().0,
            self.incarnation(),
            self.sequence()
        )
    }
}

// Traces print many of these; `t1.1.0` reads better than `TxnId(28147...)`.
impl fmt::Debug for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{self}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_at_the_limits() {
        for (node, incarnation, sequence) in [
            (0, 0, 0),
            (u16::MAX, MAX_INCARNATION, MAX_SEQUENCE),
            (3, 7, 11),
        ] {
            let txn = TxnId::new(NodeId(node), incarnation, sequence).unwrap();
            assert_eq!(txn.node(), NodeId(node));
            assert_eq!(txn.incarnation(), incarnation);
            assert_eq!(txn.sequence(), sequence);
            assert_eq!(txn.to_string(), format!("{node}.{incarnation}.{sequence}"));
        }
    }

    #[test]
    fn parts_too_large_are_refused() {
        let node = NodeId(1);
        assert_eq!(TxnId::new(node, MAX_INCARNATION + 1, 0), None);
        assert_eq!(TxnId::new(node, 0, MAX_SEQUENCE + 1), None);
    }

    #[test]
    fn ids_of_one_coordinator_grow_with_incarnation_then_sequence() {
        let node = NodeId(4);
        let a = TxnId::new(node, 1, MAX_SEQUENCE).unwrap();
        let b = TxnId::new(node, 2, 0).unwrap();
        let c = TxnId::new(node, 2, 1).unwrap();
        assert!(a < b && b < c);
    }
}
