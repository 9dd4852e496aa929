//! Why a ring could not be built, changed or used.

use super::NodeId;

/// Why a [`Ring`](super::Ring) could not be built or changed, or an operation
/// on it was refused. No variant leaves a ring half-changed: rings are
/// immutable, so on an error the ring you held is exactly as it was.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RingError {
    /// A ring needs at least one node.
    #[error("a ring needs at least one node; add one with RingBuilder::node before build")]
    Empty,
    /// Removing this node would leave no node at all.
    #[error(
        "node `{id}` is the last node of the ring and cannot be removed; \
         add its successor first, then remove it"
    )]
    LastNode {
        /// The node that was to be removed.
        id: NodeId,
    },
    /// The node id is already a member.
    #[error(
        "node `{id}` is already on the ring; give each node a distinct id, \
         or use `reweighted` to change its weight"
    )]
    DuplicateNode {
        /// The id given twice.
        id: NodeId,
    },
    /// A node of weight zero would own no point.
    #[error(
        "node `{id}` has weight 0 and would own no point; give it a weight of at \
         least 1, or remove it with `without_node`"
    )]
    ZeroWeight {
        /// The node.
        id: NodeId,
    },
    /// The node id is not a member.
    #[error("node `{id}` is not on the ring (epoch {epoch}); check the id against `Ring::members`")]
    UnknownNode {
        /// The id that was not found.
        id: NodeId,
        /// The epoch of the ring that was asked.
        epoch: u64,
    },
    /// Zero virtual nodes per unit of weight would give no node any point.
    #[error("vnodes must be at least 1 (typical values are 100 to 200)")]
    ZeroVnodes,
    /// `vnodes × weight` does not fit the 32-bit vnode index of the point layout.
    #[error(
        "node `{id}` would own {vnodes} × {weight} points, more than the 2^32 \
         vnode indices of the point layout; lower its weight or the ring's vnodes"
    )]
    TooManyPoints {
        /// The node.
        id: NodeId,
        /// The ring's vnodes per unit of weight.
        vnodes: u32,
        /// The node's weight.
        weight: u32,
    },
    /// The ε of a bounded-load assignment is not a positive finite number.
    #[error(
        "epsilon must be a finite number greater than 0 (e.g. 0.25 allows each \
         node 25% above its fair share), got {epsilon}"
    )]
    BadEpsilon {
        /// The value given.
        epsilon: f64,
    },
}
