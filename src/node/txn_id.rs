//! Transaction ids that are unique across the nodes of a cluster and across
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
//! - `node` is the coordinator's node id, so every node can tell whose
//!   transaction a message is about (queries go to the coordinator half only
//!   for its own transactions: presumed abort answers for no one else's);
//! - `incarnation` is saved in the node's record and raised on every start,
//!   and the raised value is durable before any message of the new incarnation
//!   leaves (the runtime releases sends only after the handler's save is
//!   synced), so a restarted node never reuses an id of an earlier life;
//! - `sequence` counts the transactions of one incarnation; when it runs out the
//!   node moves to the next incarnation (saving it) instead of wrapping.

use stateright::actor::Id;

use crate::commit::TxnId;

/// Bits of the coordinator's node id.
pub const NODE_BITS: u32 = 16;
/// Bits of the incarnation.
pub const INCARNATION_BITS: u32 = 24;
/// Bits of the sequence number.
pub const SEQUENCE_BITS: u32 = 24;

/// The largest node id a cluster may use.
pub const MAX_NODE: u64 = (1 << NODE_BITS) - 1;
/// The largest incarnation; a node that has restarted this often refuses new
/// transactions (and the runtime refuses to start it).
pub const MAX_INCARNATION: u64 = (1 << INCARNATION_BITS) - 1;
/// The largest sequence number of one incarnation.
pub const MAX_SEQUENCE: u64 = (1 << SEQUENCE_BITS) - 1;

/// The three parts of a node's transaction id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxnIdParts {
    /// The coordinator's node id (≤ [`MAX_NODE`]).
    pub node: u64,
    /// The coordinator's incarnation when it began the transaction (≤ [`MAX_INCARNATION`]).
    pub incarnation: u64,
    /// The transaction's number within that incarnation (≤ [`MAX_SEQUENCE`]).
    pub sequence: u64,
}

impl TxnIdParts {
    /// Packs the parts; `None` if a part does not fit its field.
    pub fn pack(self) -> Option<TxnId> {
        if self.node > MAX_NODE
            || self.incarnation > MAX_INCARNATION
            || self.sequence > MAX_SEQUENCE
        {
            return None;
        }
        Some(TxnId(
            (self.node << (INCARNATION_BITS + SEQUENCE_BITS))
                | (self.incarnation << SEQUENCE_BITS)
                | self.sequence,
        ))
    }

    /// Unpacks an id (every `u64` unpacks; ids not made by a node just name a
    /// node that does not exist).
    pub fn unpack(txn: TxnId) -> TxnIdParts {
        TxnIdParts {
            node: txn.0 >> (INCARNATION_BITS + SEQUENCE_BITS),
            incarnation: (txn.0 >> SEQUENCE_BITS) & MAX_INCARNATION,
            sequence: txn.0 & MAX_SEQUENCE,
        }
    }
}

/// `node.incarnation.sequence`, as the command line prints transaction ids.
impl std::fmt::Display for TxnIdParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.node, self.incarnation, self.sequence)
    }
}

/// The node that coordinates `txn`.
pub fn coordinator_of(txn: TxnId) -> Id {
    // Node ids are at most 16 bits, so the cast cannot truncate.
    Id::from(TxnIdParts::unpack(txn).node as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_at_the_limits() {
        for parts in [
            TxnIdParts {
                node: 0,
                incarnation: 0,
                sequence: 0,
            },
            TxnIdParts {
                node: MAX_NODE,
                incarnation: MAX_INCARNATION,
                sequence: MAX_SEQUENCE,
            },
            TxnIdParts {
                node: 3,
                incarnation: 7,
                sequence: 11,
            },
        ] {
            let txn = parts.pack().unwrap();
            assert_eq!(TxnIdParts::unpack(txn), parts);
            assert_eq!(coordinator_of(txn), Id::from(parts.node as usize));
        }
    }

    #[test]
    fn parts_too_large_are_refused() {
        let base = TxnIdParts {
            node: 1,
            incarnation: 1,
            sequence: 1,
        };
        assert_eq!(
            TxnIdParts {
                node: MAX_NODE + 1,
                ..base
            }
            .pack(),
            None
        );
        assert_eq!(
            TxnIdParts {
                incarnation: MAX_INCARNATION + 1,
                ..base
            }
            .pack(),
            None
        );
        assert_eq!(
            TxnIdParts {
                sequence: MAX_SEQUENCE + 1,
                ..base
            }
            .pack(),
            None
        );
    }
}
