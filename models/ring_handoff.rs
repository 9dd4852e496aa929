//! `ring-handoff`: the key moves of a ring change, as the running node makes
//! them — the production [`crate::node::Node`] of [`super::node`], whose
//! membership module hands keys to their new holders — while a client
//! overwrites and deletes the keys that move.
//!
//! # System
//!
//! The system of [`super::cluster`] (the same nodes, clients, network and
//! crashes; see its doc and [`super::node`]'s), with a workload aimed at the
//! handoff: each client writes every key, then deletes every key (with
//! `deletes=true`, the default), then reads them; with `clients=2` the
//! writes overwrite each other. The keys are chosen so that the ring change
//! moves each of them: with `change=join` from a member to the joining node,
//! with `change=remove` from the survivors to their new holders. Every step
//! of the client races every step of the move: a write planned on the old
//! ring and prepared at the source before its snapshot, a delete reaching
//! the new holder before its handoff, a read routed by a node that has not
//! installed the new ring.
//!
//! # Properties
//!
//! A key's *latest acknowledged write* is the last one, in commit order, a
//! client was told committed (a value, or a delete). A node *serves* a key if
//! it has joined, holds the key in the ring it runs, and is not waiting for
//! the key's handoff ([`crate::node::Node::serves`]).
//!
//! - **no lost keys** (always): every node that serves a key holds its latest
//!   acknowledged write or a later one (applied, or prepared and waiting for
//!   its outcome), and some member of the latest ring holds it durably (while
//!   the new holder waits for the key, its source keeps it). Judged at the
//!   nodes of the current ring only: a node the key moved off, or a removed
//!   node, does not count.
//! - **one writer set per key and epoch** (always): a node prepares a write
//!   only of keys it serves, so in each epoch one set of nodes — the key's
//!   holders in that epoch's ring, each once it has the key's custody —
//!   accepts writes of a key.
//! - **every handoff completes** (liveness, AG EF on the explored graph):
//!   from every reachable state, a state is reachable in which no node is
//!   still moving keys and every running member of the latest ring has
//!   installed it. A stalled move — a source waiting for an acknowledgement
//!   that never comes — refutes it.
//! - Those of `cluster`: one ring per epoch, linearizable reads (the read of
//!   a key returns its latest acknowledged write or a later one: a delete
//!   reads as no value), durability, AC1–AC3, every transaction finishes,
//!   every request is answered, and the `sometimes` witnesses.
//!
//! # Variants
//!
//! Each defect is a model-side wrapper around the production node, which has
//! no variant.
//!
//! - `write-to-old-owner`: a participant takes a Prepare planned on an epoch
//!   it has moved past as planned on its own — the classic lost update of a
//!   move: a write planned on the old ring reaches the old holder after it
//!   copied the key to the new one, commits there, and is dropped with the
//!   keys it no longer holds. It needs a coordinator other than the old
//!   holder, so two first members: refuted at `nodes=2 reads=false
//!   deletes=false` (529,069 states) by *one writer set per key and epoch*
//!   and *no lost keys*. (`no-fence`, which ignores the epoch everywhere, is
//!   refuted at the defaults; see [`super::cluster`].)
//! - `no-forward`: a node asked to read keys it does not serve (they moved
//!   off it, or it still awaits their handoff) answers from its own store
//!   instead of sending the reader on. Refuted by *linearizable reads*.
//! - `no-last-ack`: a new holder never acknowledges a source's last chunk.
//!   Nothing is lost, but the source waits for ever: refuted by *every
//!   handoff completes*.
//! - `drop-before-ack` (with `handoff-loss=true`): a source takes its last
//!   chunk for acknowledged as soon as it sends it, and drops the keys.
//!   Refuted by *no lost keys*: the write's only copy is in flight (and, once
//!   lost, by both liveness properties).
//! - `no-copy-resend` (with `handoff-loss=true`): a source never resends a
//!   chunk. Safe, but a lost chunk stalls the move for ever: refuted by
//!   *every handoff completes* (and *every request is answered*: a read of
//!   the key waits at the new holder).
//!
//! # Faults
//!
//! The defaults are crash-free and loss-free, with quiet clients and timers
//! (see [`super::node`]). `handoff-loss=true` adds the faults a handoff must
//! survive: one step loses every handoff chunk and acknowledgement in
//! flight, and sources resend on their timer (305,842 states, every property
//! holds). `crashes=1` (restarts, quiet) and `lossy=true` (any message lost,
//! clients retrying, every timer) are accepted but do not complete in
//! minutes with this workload (`crashes=1`: 18.3 million states in 9
//! minutes, nothing violated); `cluster`, without the delete, completes at
//! `crashes=1`.
//!
//! This model replaced an earlier one of a separate primary-backup handoff
//! machine (`src/rebalance`) that the running node never used.

use super::cluster::{CHANGE, CLIENTS, CRASHES, KEYS, LOSSY, NODES, READS, REPLICAS, VARIANT};
use super::harness::{CheckOptions, CheckReport};
use super::node::{self, NodeModel, NodeModelConfig};
use super::params::{ParamError, ParamKind, ParamSpec, Params};

/// The model's name in `haft check`.
pub const NAME: &str = "ring-handoff";

/// Parameters of `ring-handoff`: those of `cluster`, and `deletes`.
pub const PARAMS: &[ParamSpec] = &[
    CHANGE,
    NODES,
    REPLICAS,
    CLIENTS,
    KEYS,
    ParamSpec {
        name: "deletes",
        default: "true",
        kind: ParamKind::Bool,
        help: "each client deletes every key after writing it, before its get",
    },
    READS,
    CRASHES,
    LOSSY,
    ParamSpec {
        name: "handoff-loss",
        default: "false",
        kind: ParamKind::Bool,
        help: "the network may lose handoff chunks and acknowledgements (and sources resend them)",
    },
    VARIANT,
];

/// The model of `params`.
pub fn from_params(params: &Params) -> Result<NodeModel, ParamError> {
    Ok(NodeModelConfig::from_params(params)?.into_model())
}

/// Checks the model: its properties and liveness, in one search.
pub fn check(params: &Params, options: &CheckOptions) -> Result<CheckReport, ParamError> {
    let config = NodeModelConfig::from_params(params)?;
    Ok(node::check_config(NAME, params.clone(), &config, options))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::Status;
    use crate::models::node::{Change, Variant};
    use crate::models::testing::{actions_to as trace, violated as broken};

    fn run(variant: Variant) -> CheckReport {
        run_with(variant, &[])
    }

    fn run_with(variant: Variant, pairs: &[(&str, &str)]) -> CheckReport {
        let params = Params::from_pairs(NAME, PARAMS, pairs).unwrap();
        let mut config = NodeModelConfig::from_params(&params).unwrap();
        config.variant = variant;
        node::check_complete(NAME, params, &config)
    }

    #[test]
    fn the_defaults_join_one_node_to_one_under_a_write_a_delete_and_a_read() {
        let params = Params::defaults(NAME, PARAMS);
        let config = NodeModelConfig::from_params(&params).unwrap();
        assert_eq!(
            (config.change, config.nodes, config.replicas, config.deletes),
            (Change::Join, 1, 1, true)
        );
        assert_eq!((config.crashes, config.lossy), (0, false));
    }

    #[test]
    fn the_handoff_holds_every_property_liveness_included() {
        let report = run(Variant::Correct);
        assert_eq!(broken(&report), [] as [&str; 0]);
        for name in [
            "no lost keys",
            "one writer set per key and epoch",
            "every handoff completes",
            "linearizable reads",
            "a ring change commits",
        ] {
            let property = report.property(name).unwrap();
            assert_eq!(property.status, Status::Holds, "{property:#?}");
        }
        assert_eq!(report.unique_states, 125_554);
    }

    #[test]
    fn write_to_old_owner_is_the_lost_update_of_a_move() {
        // With one first member, every write's coordinator is the old
        // holder itself: no Prepare can reach it late.
        let inert = run(Variant::WriteToOldOwner);
        assert_eq!(broken(&inert), [] as [&str; 0]);
        assert_eq!(inert.unique_states, 125_554);
        let pairs = [("nodes", "2"), ("reads", "false"), ("deletes", "false")];
        let report = run_with(Variant::WriteToOldOwner, &pairs);
        assert_eq!(report.unique_states, 529_069);
        assert_eq!(
            broken(&report),
            ["one writer set per key and epoch", "no lost keys"]
        );
        // Node 1 planned the write on epoch 1; node 2, the key's holder
        // there, has installed epoch 2 and copied the key to node 3, and
        // prepares the write all the same.
        let stray = trace(&report, "one writer set per key and epoch");
        assert!(
            stray
                .last()
                .unwrap()
                .starts_with("node 1 → node 2: Prepare { epoch: 1, prepare: Prepare("),
            "{stray:?}"
        );
        // The write commits at node 2 only; node 3, the key's holder now,
        // takes over without it.
        let lost = trace(&report, "no lost keys");
        assert!(
            lost.last()
                .unwrap()
                .starts_with("node 2 → node 3: Handoff {"),
            "{lost:?}"
        );
    }

    #[test]
    fn no_forward_reads_a_key_where_it_no_longer_lives() {
        let report = run(Variant::NoForward);
        assert_eq!(report.unique_states, 140_760);
        assert_eq!(broken(&report), ["linearizable reads"]);
        let trace = trace(&report, "linearizable reads");
        assert!(
            trace
                .last()
                .unwrap()
                .contains("reply: Values([(b\"k2\", None)])"),
            "{trace:?}"
        );
    }

    #[test]
    fn lost_chunks_and_acknowledgements_are_resent_and_every_property_holds() {
        let report = run_with(Variant::Correct, &[("handoff-loss", "true")]);
        assert_eq!(broken(&report), [] as [&str; 0]);
        assert_eq!(report.unique_states, 305_842);
    }

    #[test]
    fn drop_before_ack_loses_the_only_copy_in_flight() {
        let report = run_with(Variant::DropBeforeAck, &[("handoff-loss", "true")]);
        assert_eq!(report.unique_states, 138_898);
        assert_eq!(
            broken(&report),
            [
                "no lost keys",
                "every request is answered",
                "every handoff completes"
            ]
        );
        // Node 2's vote lets node 1 install the join, send its chunk and,
        // taking it for acknowledged, drop the key: node 2 has not got it.
        let lost = trace(&report, "no lost keys");
        assert_eq!(lost.len(), 8, "{lost:?}");
        assert!(
            lost.last()
                .unwrap()
                .starts_with("node 2 → node 1: Commit(Vote("),
            "{lost:?}"
        );
    }

    #[test]
    fn no_copy_resend_stalls_the_move_after_a_loss() {
        let report = run_with(Variant::NoCopyResend, &[("handoff-loss", "true")]);
        assert_eq!(report.unique_states, 250_194);
        assert_eq!(
            broken(&report),
            ["every request is answered", "every handoff completes"]
        );
        // The chunk is lost, and nothing sends it again.
        let stalled = trace(&report, "every handoff completes");
        assert!(
            stalled
                .last()
                .unwrap()
                .starts_with("the network loses every handoff"),
            "{stalled:?}"
        );
        let property = report.property("every handoff completes").unwrap();
        assert!(property.trap.is_some(), "{property:#?}");
    }

    #[test]
    fn no_last_ack_stalls_the_move_for_ever() {
        let report = run(Variant::NoLastAck);
        assert_eq!(report.unique_states, 69_906);
        assert_eq!(broken(&report), ["every handoff completes"]);
        let property = report.property("every handoff completes").unwrap();
        assert!(property.trap.is_some(), "{property:#?}");
    }
}
