//! `ring-handoff`: storage nodes moving keys between owners while the ring
//! changes under client writes and reads (issue 3, "Handoff").
//!
//! System: `nodes` storage nodes and one client (src/rebalance). The first
//! ring holds every node but the last; during the run the last node joins
//! (epoch 1) and node 0 leaves (epoch 2). Placement is haft's own ring
//! (8 vnodes per node), or `h(key) mod n` in the `modular` variant. The client,
//! acting also as the administrator, announces both epochs to every node at
//! the start, writes each key once to its first owner, and once the write is
//! acknowledged reads the key back from that same first owner; the network
//! delivers everything in any order. Keys are chosen so that the first moves
//! at the join and the second at the leave.
//!
//! Properties:
//! - *no lost keys* (always): every acknowledged write is held by some node;
//! - *placed once quiescent* (always): when every node has reached the last
//!   epoch and no handoff is pending or in flight, each written key is held by
//!   exactly its owner in the last ring;
//! - *reads see acknowledged writes* (always): a read sent after its key's
//!   write was acknowledged returns that write;
//! - *a handoff completes* and *a request is forwarded or retried* (sometimes).
//!
//! Variants the checker refutes: `drop-before-ack` (no lost keys),
//! `no-forward` (reads see acknowledged writes). `modular` cannot break these
//! properties: the protocol never looks at how owners are chosen, only at who
//! they are; modular placement only moves more keys (see verification/REPORT.md).
//!
//! With `crashes=1`, any one actor at a time may crash; it recovers the state
//! it saved, which every step saves before its sends leave. Messages to a
//! crashed actor wait in the network until it recovers.
//!
//! With `lossy=true` any message may be lost. The safety properties must still
//! hold — a lost copy leaves its sender holding the key — but the protocol has
//! no retransmission yet, so a loss can stall a handoff for ever; no liveness
//! property is claimed.
//!
//! Not yet modelled (see the issue): replicas beyond the owner, and
//! retransmission timers (the liveness half of a lossy network).

use stateright::actor::{ActorModel, Envelope, Id, LossyNetwork, Network};
use stateright::{Expectation, Model};

use super::params::{ParamError, ParamKind, ParamSpec, Params};
use crate::rebalance::{Custody, HandoffActor, HandoffMsg, HandoffState, Placement, Variant};
use crate::ring::{Member, Ring, key_position};

/// The model's name in `haft check`.
pub const NAME: &str = "ring-handoff";

/// Parameters of `ring-handoff`.
pub const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "nodes",
        default: "3",
        kind: ParamKind::Int { min: 3, max: 4 },
        help: "storage nodes, the joining one included",
    },
    ParamSpec {
        name: "keys",
        default: "2",
        kind: ParamKind::Int { min: 1, max: 2 },
        help: "keys written and read (the first moves at the join, the second at the leave)",
    },
    ParamSpec {
        name: "lossy",
        default: "false",
        kind: ParamKind::Bool,
        help: "the network may drop any message",
    },
    ParamSpec {
        name: "crashes",
        default: "0",
        kind: ParamKind::Int { min: 0, max: 1 },
        help: "how many actors may be crashed at once (each recovers from its durable state)",
    },
    ParamSpec {
        name: "variant",
        default: "correct",
        kind: ParamKind::Choice(&["correct", "drop-before-ack", "no-forward", "modular"]),
        help: "the protocol, or a named defect the checker must refute",
    },
];

/// What the properties need to know about the system.
#[derive(Clone, Debug)]
pub struct HandoffConfig {
    /// The ring snapshots.
    pub placement: Placement,
    /// The client's actor id.
    pub client: Id,
}

/// The model type.
pub type HandoffModel = ActorModel<HandoffActor, HandoffConfig>;

/// Node `index`'s id on the ring.
fn node_id(index: usize) -> String {
    format!("n{index}")
}

/// The members of each epoch: all but the last node; then all; then all but node 0.
fn epochs(nodes: usize) -> Vec<Vec<usize>> {
    let first: Vec<usize> = (0..nodes - 1).collect();
    let all: Vec<usize> = (0..nodes).collect();
    let last: Vec<usize> = (1..nodes).collect();
    vec![first, all, last]
}

/// Owner of `key` at each epoch: haft's ring, or `h(key) mod n` over the
/// members in id order (the seed's scheme).
fn owners_of(key: &str, members: &[Vec<usize>], rings: &[Ring], modular: bool) -> Vec<usize> {
    members
        .iter()
        .zip(rings)
        .map(|(members, ring)| {
            if modular {
                let position = key_position(key.as_bytes());
                members[(position % members.len() as u64) as usize]
            } else {
                let owner = ring.owner(key.as_bytes());
                let index = owner.as_str()[1..].parse::<usize>();
                index.expect("node ids are n<index>")
            }
        })
        .collect()
}

/// The placement for `nodes` nodes and `keys` keys.
pub fn placement(nodes: usize, keys: usize, modular: bool) -> Placement {
    let members = epochs(nodes);
    let rings: Vec<Ring> = members
        .iter()
        .enumerate()
        .map(|(epoch, members)| {
            let members = members
                .iter()
                .map(|&node| Member {
                    id: node_id(node).into(),
                    weight: 1,
                })
                .collect();
            Ring::from_members(epoch as u64, 8, members).expect("every epoch has members")
        })
        .collect();
    // Keys picked by haft's ring, so every variant moves the same keys: the
    // first to the joining node, the second away from the leaving node 0.
    let moves_at = |key: &str, epoch: usize| {
        let owners = owners_of(key, &members, &rings, false);
        owners[epoch - 1] != owners[epoch] && (epoch != 1 || owners[0] != 0)
    };
    let names: Vec<String> = (1..=keys)
        .map(|epoch| {
            (0..)
                .map(|i| format!("key-{i}"))
                .find(|key| moves_at(key, epoch))
                .expect("some key moves")
        })
        .collect();
    let owners_by_key: Vec<Vec<usize>> = names
        .iter()
        .map(|key| owners_of(key, &members, &rings, modular))
        .collect();
    Placement {
        owners: (0..members.len())
            .map(|epoch| owners_by_key.iter().map(|owners| owners[epoch]).collect())
            .collect(),
    }
}

/// Builds the model from checked parameters.
pub fn from_params(params: &Params) -> Result<HandoffModel, ParamError> {
    let (variant, modular) = match params.choice("variant") {
        "drop-before-ack" => (Variant::DropBeforeAck, false),
        "no-forward" => (Variant::NoForward, false),
        "modular" => (Variant::Correct, true),
        _ => (Variant::Correct, false),
    };
    let model = model(
        params.usize("nodes"),
        params.usize("keys"),
        variant,
        modular,
    );
    let lossy = if params.bool("lossy") {
        LossyNetwork::Yes
    } else {
        LossyNetwork::No
    };
    Ok(model
        .max_crashes(params.usize("crashes"))
        .lossy_network(lossy))
}

/// The system of `nodes` storage nodes and a client.
pub fn model(nodes: usize, keys: usize, variant: Variant, modular: bool) -> HandoffModel {
    let placement = placement(nodes, keys, modular);
    let client = Id::from(nodes);
    let node_actors: Vec<HandoffActor> = (0..nodes)
        .map(|_| HandoffActor::Node {
            placement: placement.clone(),
            variant,
        })
        .collect();
    let client_actor = HandoffActor::Client {
        placement: placement.clone(),
        nodes: (0..nodes).map(Id::from).collect(),
    };
    ActorModel::new(HandoffConfig { placement, client }, ())
        .actors(node_actors)
        .actor(client_actor)
        .init_network(Network::new_unordered_nonduplicating([]))
        .property(Expectation::Always, "no lost keys", no_lost_keys)
        .property(
            Expectation::Always,
            "placed once quiescent",
            placed_once_quiescent,
        )
        .property(
            Expectation::Always,
            "reads see acknowledged writes",
            reads_see_acknowledged_writes,
        )
        .property(
            Expectation::Sometimes,
            "a handoff completes",
            a_handoff_completes,
        )
        .property(
            Expectation::Sometimes,
            "quiescent with every write acknowledged",
            quiescent_with_every_write_acknowledged,
        )
        .property(
            Expectation::Sometimes,
            "a request is forwarded or retried",
            a_request_is_forwarded_or_retried,
        )
}

type State = <HandoffModel as Model>::State;

/// What actor `index` holds: its state if it is up, what it saved if it has
/// crashed (the state it will recover). A key held only in the memory of a
/// crashed actor is not held.
fn holding(state: &State, index: usize) -> Option<&HandoffState> {
    if state.crashed[index] {
        state.actor_storages[index].as_ref()
    } else {
        Some(&*state.actor_states[index])
    }
}

fn nodes(state: &State) -> impl Iterator<Item = (usize, &crate::rebalance::NodeState)> {
    (0..state.actor_states.len()).filter_map(|index| match holding(state, index) {
        Some(HandoffState::Node(node)) => Some((index, node)),
        _ => None,
    })
}

fn client(model: &HandoffModel, state: &State) -> crate::rebalance::ClientState {
    match holding(state, usize::from(model.cfg.client)) {
        Some(HandoffState::Client(client)) => client.clone(),
        // The client saves its first state before anything else happens.
        _ => crate::rebalance::ClientState {
            acknowledged: vec![None; model.cfg.placement.keys()],
            read: vec![None; model.cfg.placement.keys()],
        },
    }
}

fn no_lost_keys(model: &HandoffModel, state: &State) -> bool {
    let client = client(model, state);
    client.acknowledged.iter().enumerate().all(|(key, acked)| {
        acked.is_none() || nodes(state).any(|(_, node)| node.values[key] >= *acked)
    })
}

/// Every node has reached the last epoch, and no handoff is pending or in flight.
///
/// Acknowledgements in flight do not count: once no node is handing off, an
/// acknowledgement changes nothing, and requiring them delivered would leave
/// unchecked the placement of states that differ only by such a message.
fn quiescent(model: &HandoffModel, state: &State) -> bool {
    let last = model.cfg.placement.last_epoch();
    let handoff_in_flight = state
        .network
        .iter_all()
        .any(|Envelope { msg, .. }| matches!(msg, HandoffMsg::Copy { .. }));
    !handoff_in_flight
        && nodes(state).all(|(_, node)| {
            node.epoch == last
                && node
                    .custody
                    .iter()
                    .all(|c| matches!(c, Custody::None | Custody::Serving))
        })
}

/// Shows that `placed once quiescent` is not vacuous.
fn quiescent_with_every_write_acknowledged(model: &HandoffModel, state: &State) -> bool {
    quiescent(model, state)
        && client(model, state)
            .acknowledged
            .iter()
            .all(Option::is_some)
}

fn placed_once_quiescent(model: &HandoffModel, state: &State) -> bool {
    let placement = &model.cfg.placement;
    let last = placement.last_epoch();
    if !quiescent(model, state) {
        return true;
    }
    let client = client(model, state);
    (0..placement.keys()).all(|key| {
        client.acknowledged[key].is_none()
            || nodes(state).all(|(index, node)| {
                node.values[key].is_some() == (index == placement.owner(last, key))
            })
    })
}

fn reads_see_acknowledged_writes(model: &HandoffModel, state: &State) -> bool {
    let client = client(model, state);
    // Each read is sent after its key's only write was acknowledged.
    client
        .read
        .iter()
        .zip(&client.acknowledged)
        .all(|(read, acked)| read.is_none_or(|value| value >= *acked))
}

fn a_handoff_completes(model: &HandoffModel, state: &State) -> bool {
    let placement = &model.cfg.placement;
    let last = placement.last_epoch();
    nodes(state).any(|(index, node)| {
        (0..placement.keys()).any(|key| {
            index == placement.owner(last, key)
                && index != placement.owner(0, key)
                && node.custody[key] == Custody::Serving
                && node.values[key].is_some()
        })
    })
}

fn a_request_is_forwarded_or_retried(model: &HandoffModel, state: &State) -> bool {
    state
        .network
        .iter_all()
        .any(|Envelope { src, msg, .. }| match msg {
            HandoffMsg::Retry(_) => true,
            HandoffMsg::Write { .. } | HandoffMsg::Read { .. } => src != model.cfg.client,
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::testing::check;

    fn checked(
        nodes: usize,
        keys: usize,
        variant: Variant,
        modular: bool,
    ) -> crate::models::CheckReport {
        check(model(nodes, keys, variant, modular))
    }

    #[test]
    fn the_keys_move_at_the_join_and_at_the_leave() {
        let placement = placement(3, 2, false);
        // Key 0 goes to the joining node 2; key 1 leaves node 0.
        assert_eq!(placement.owner(1, 0), 2);
        assert_ne!(placement.owner(0, 0), 2);
        assert_eq!(placement.owner(1, 1), 0);
        assert_ne!(placement.owner(2, 1), 0);
    }

    #[test]
    fn the_correct_protocol_passes_and_its_counts_are_pinned() {
        for (nodes, keys, states, depth) in
            [(3, 1, 2_504, 14), (3, 2, 55_064, 21), (4, 1, 10_016, 16)]
        {
            let report = checked(nodes, keys, Variant::Correct, false);
            assert!(report.passed(), "{report:#?}");
            assert_eq!(
                (report.unique_states, report.max_depth),
                (states, depth),
                "nodes={nodes} keys={keys}"
            );
        }
    }

    #[test]
    fn a_crash_loses_nothing_that_was_saved() {
        let report = check(model(3, 1, Variant::Correct, false).max_crashes(1));
        assert!(report.passed(), "{report:#?}");
        assert_eq!(report.unique_states, 12_520);
    }

    #[test]
    fn a_lossy_network_stalls_handoffs_but_loses_no_key() {
        let lossy = |variant| check(model(3, 1, variant, false).lossy_network(LossyNetwork::Yes));
        let report = lossy(Variant::Correct);
        assert!(report.passed(), "{report:#?}");
        assert_eq!(report.unique_states, 22_208);
        let report = lossy(Variant::DropBeforeAck);
        assert!(!report.property("no lost keys").expect("declared").holds);
    }

    #[test]
    fn the_default_size_is_the_pinned_one() {
        let entry = crate::models::find(NAME).expect("registered");
        let params = entry.default_params();
        assert_eq!((params.usize("nodes"), params.usize("keys")), (3, 2));
    }

    #[test]
    fn dropping_before_the_ack_loses_a_key() {
        let report = checked(3, 2, Variant::DropBeforeAck, false);
        let verdict = report.property("no lost keys").expect("declared");
        assert!(!verdict.holds);
        let trace = verdict.counterexample.as_ref().expect("a trace");
        // A write was acknowledged, then its custodian dropped it while the
        // copy carrying it was still on its way.
        let last = &trace.last().expect("a trace has steps").state;
        let value_in_flight =
            (0..2).any(|key| last.contains(&format!("msg: Copy {{ key: {key}, value: Some(1)")));
        assert!(value_in_flight, "{trace:#?}");
    }

    #[test]
    fn not_forwarding_a_write_serves_a_stale_read() {
        let report = checked(3, 2, Variant::NoForward, false);
        // Applied where it is not owned, a write is also lost when that node's
        // pending handoff is acknowledged, and stays on the wrong node.
        for property in ["no lost keys", "placed once quiescent"] {
            assert!(
                !report.property(property).expect("declared").holds,
                "{property}"
            );
        }
        let verdict = report
            .property("reads see acknowledged writes")
            .expect("declared");
        assert!(!verdict.holds);
        let trace = verdict.counterexample.as_ref().expect("a trace");
        assert!(
            trace.iter().any(|step| step.action.contains("ReadOk")),
            "{trace:#?}"
        );
    }

    #[test]
    fn modular_placement_breaks_no_property_of_the_protocol() {
        // The protocol is correct for any placement; mod n only moves more
        // keys, which shows as a larger state space than the ring's 55,064.
        let report = checked(3, 2, Variant::Correct, true);
        assert!(report.passed(), "{report:#?}");
        assert_eq!(report.unique_states, 160_348);
    }
}
