//! `cluster`: the node of [`super::node`] — the production [`crate::node::Node`]
//! — through a ring change: two-phase transactions and reads run while an
//! administrator adds a node to the ring, or removes one that is gone for
//! good (see [`crate::node`]'s membership module for the protocol).
//!
//! # System
//!
//! Everything of the `node` model — nodes that coordinate, prepare and serve
//! reads, clients that retry at any node, crashes with restarts, a
//! duplicating and optionally lossy network — plus:
//!
//! - `change=join`: node `nodes + 1` starts empty, waiting to join; an
//!   administrator (the last client) asks any node, and retries at any node,
//!   to add it. The change is a transaction on the ring key across every
//!   member and the joining node; once it commits, the members hand the keys
//!   the new node now holds over to it, under custody (it neither serves nor
//!   changes them until every handoff has arrived);
//! - `change=remove`: node `nodes` never runs (its disk is lost); an
//!   administrator asks a survivor to remove it, and the survivors copy the
//!   keys it held to their new holders. Until then, a transaction that needs
//!   it aborts on the vote timeout.
//!
//! A client's transaction (a write of every key) and its `get` race the
//! change in every order: planned before it and prepared after it, decided
//! during the handoff, read from the new holder.
//!
//! # Properties
//!
//! Those of `node` — AC1–AC3, answers are true, exactly once, linearizable
//! reads (a `get` that starts after a commit was acknowledged sees it, from
//! whichever node of whichever ring serves it: the *no lost keys* of a move),
//! durability (at every participant still holding the key), every transaction
//! finishes, every request is answered — and:
//!
//! - **one ring per epoch**: no two running nodes run different rings for the
//!   same epoch (a minority cannot install one, and two changes planned on
//!   the same epoch cannot both commit);
//! - **a ring change commits** (`sometimes`): the search reaches the new ring;
//! - **one writer set per key and epoch**, **no lost keys** and **every
//!   handoff completes** (liveness): the key moves' properties, stated in
//!   [`super::ring_handoff`], which checks this system under a workload aimed
//!   at the handoff.
//!
//! Refinement of TwoPhase is not checked here: TwoPhase has one fixed set of
//! resource managers, and a ring change has other participants than the
//! transactions around it (the `node` model checks it on the same machines).
//!
//! # Variants
//!
//! - `no-fence`: participants ignore the epoch a Prepare was planned on (the
//!   model rewrites it to the recipient's). A write planned on the old ring
//!   reaches the old holder after it handed the key over, commits there
//!   only, and a later `get` served by the new holder misses it. Refuted by
//!   *linearizable reads*, *durability*, *one writer set per key and epoch*
//!   and *no lost keys*.
//! - `write-to-old-owner`, `no-forward`, `no-last-ack`: see
//!   [`super::ring_handoff`].
//! - The variants of `node` run here too (`answer-before-apply`, …).

use super::harness::{CheckOptions, CheckReport};
use super::node::{self, NodeModelConfig, Variant};
use super::params::{ParamError, ParamKind, ParamSpec, Params};

/// The model's name in `haft check`.
pub const NAME: &str = "cluster";

/// Parameters of `cluster`.
pub const PARAMS: &[ParamSpec] = &[
    CHANGE, NODES, REPLICAS, CLIENTS, KEYS, READS, CRASHES, LOSSY, VARIANT,
];

/// The `change` parameter (shared with `ring-handoff`).
pub const CHANGE: ParamSpec = ParamSpec {
    name: "change",
    default: "join",
    kind: ParamKind::Choice(&["join", "remove"]),
    help: "join: node nodes+1 joins; remove: node nodes is gone for good and removed",
};

/// The `nodes` parameter (shared with `ring-handoff`).
pub const NODES: ParamSpec = ParamSpec {
    name: "nodes",
    default: "1",
    kind: ParamKind::Int { min: 1, max: 3 },
    help: "members of the first ring (with change=remove, at least 2)",
};

/// The `replicas` parameter (shared with `ring-handoff`).
pub const REPLICAS: ParamSpec = ParamSpec {
    name: "replicas",
    default: "1",
    kind: ParamKind::Int { min: 1, max: 3 },
    help: "nodes that hold each key, at most `nodes`",
};

/// The `clients` parameter (shared with `ring-handoff`).
pub const CLIENTS: ParamSpec = ParamSpec {
    name: "clients",
    default: "1",
    kind: ParamKind::Int { min: 1, max: 2 },
    help: "clients; each runs one transaction writing every key, then a get of every key",
};

/// The `keys` parameter (shared with `ring-handoff`).
pub const KEYS: ParamSpec = ParamSpec {
    name: "keys",
    default: "1",
    kind: ParamKind::Int { min: 1, max: 2 },
    help: "keys",
};

/// The `reads` parameter (shared with `ring-handoff`).
pub const READS: ParamSpec = ParamSpec {
    name: "reads",
    default: "true",
    kind: ParamKind::Bool,
    help: "each client gets every key after its transaction is answered",
};

/// The `crashes` parameter (shared with `ring-handoff`).
pub const CRASHES: ParamSpec = ParamSpec {
    name: "crashes",
    default: "0",
    kind: ParamKind::Int { min: 0, max: 2 },
    help: "whole-node crashes in the whole run (a crashed node restarts from its durable record)",
};

/// The `lossy` parameter (shared with `ring-handoff`).
pub const LOSSY: ParamSpec = ParamSpec {
    name: "lossy",
    default: "false",
    kind: ParamKind::Bool,
    help: "the network may lose messages (one step loses all in flight)",
};

/// The `variant` parameter (shared with `ring-handoff`).
pub const VARIANT: ParamSpec = ParamSpec {
    name: "variant",
    default: "correct",
    kind: ParamKind::Choice(&Variant::NAMES),
    help: "a named defect the checker must refute (see the model's doc)",
};

/// Checks the model: its properties and liveness, in one search.
pub fn check(params: &Params, options: &CheckOptions) -> Result<CheckReport, ParamError> {
    let config = NodeModelConfig::from_params(params)?;
    Ok(node::check_config(NAME, params.clone(), &config, options))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::Status;
    use crate::models::node::Change;
    use crate::models::testing::{actions_to as trace, violated as broken};

    fn run(config: NodeModelConfig) -> CheckReport {
        node::check_complete(NAME, Params::defaults(NAME, PARAMS), &config)
    }

    /// The model's defaults: one member, node 2 joins.
    fn config(change: Change, nodes: usize, variant: Variant) -> NodeModelConfig {
        NodeModelConfig {
            nodes,
            replicas: 1,
            crashes: 0,
            change,
            variant,
            ..NodeModelConfig::default()
        }
    }

    /// Nothing is violated, and everything a run without crashes can judge
    /// holds or is witnessed — the ring change included.
    fn assert_holds(report: &CheckReport) {
        assert_eq!(broken(report), [] as [&str; 0]);
        for property in &report.properties {
            let unjudged = property.status == Status::Unknown
                && property.note.as_deref() == Some("no node restarts when crashes=0");
            assert!(
                property.status == Status::Holds || unjudged,
                "{}: {:?}",
                property.name,
                property.status
            );
        }
    }

    #[test]
    fn the_defaults_are_the_join_of_one_node_to_one() {
        let params = Params::defaults(NAME, PARAMS);
        let config = NodeModelConfig::from_params(&params).unwrap();
        assert_eq!(config, self::config(Change::Join, 1, Variant::Correct));
    }

    #[test]
    fn a_join_racing_a_transaction_and_a_read_holds_every_property() {
        let report = run(config(Change::Join, 1, Variant::Correct));
        assert_holds(&report);
        assert_eq!(report.unique_states, 4_418);
    }

    #[test]
    fn removing_a_lost_node_holds_every_property_and_ends_its_transactions() {
        let report = run(config(Change::Remove, 2, Variant::Correct));
        assert_holds(&report);
        assert_eq!(report.unique_states, 46);
    }

    #[test]
    fn no_fence_lets_a_joining_node_take_a_write_its_install_then_drops() {
        let report = run(config(Change::Join, 1, Variant::NoFence));
        assert_eq!(report.unique_states, 5_014);
        assert_eq!(
            broken(&report),
            [
                "linearizable reads",
                "durability",
                "one writer set per key and epoch",
                "no lost keys"
            ]
        );
        // Node 1 has installed epoch 2 and plans the write on it; node 2 has
        // voted on the ring change but not learned it, and takes the
        // Prepare; then its install drops the key it had no custody of.
        let trace = trace(&report, "linearizable reads");
        assert!(
            trace
                .iter()
                .any(|a| a.starts_with("node 1 → node 2: Prepare { epoch: 2, prepare: Prepare(")),
            "{trace:?}"
        );
        assert!(
            trace
                .last()
                .unwrap()
                .contains("reply: Values([(b\"k2\", None)])"),
            "{trace:?}"
        );
    }

    #[test]
    fn a_variant_without_a_ring_change_is_refused() {
        let params = Params::from_pairs(node::NAME, node::PARAMS, &[("variant", "no-fence")]);
        let error = NodeModelConfig::from_params(&params.unwrap()).unwrap_err();
        assert!(error.to_string().contains("haft check cluster"), "{error}");
    }
}
