//! Node ids.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A node of a cluster: a coordinator, a participant, a detector's peer.
///
/// Sixteen bits, because every transaction id carries its coordinator's id
/// (see [`TxnId`](crate::commit::TxnId)).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u16);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

// Traces print many of these; `n2` reads better than `NodeId(2)`.
impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl From<u16> for NodeId {
    fn from(id: u16) -> Self {
        NodeId(id)
    }
}
