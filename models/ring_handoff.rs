//! `ring-handoff`: storage nodes moving keys between holders while the ring
//! changes under client writes and reads (issue 3, "Handoff").
//!
//! System: `nodes` storage nodes and one client (src/rebalance), on an
//! unordered network that may duplicate and reorder every message. The first
//! ring holds every node but the last; during the run the last node joins
//! (epoch 1) and node 0 leaves (epoch 2). Each key is held by the `replicas`
//! first distinct nodes clockwise — its preference list on haft's ring (8
//! vnodes per node), or the `replicas` nodes from `h(key) mod n` on in the
//! `modular` variant. The client, acting also as the administrator, announces
//! the last ring to every node at the start (a node walks through the epochs
//! in order, and learns of the join alone when a copy for epoch 1 reaches it
//! first). Then, one request at a time, it writes each key once to its first
//! primary and, once the write is acknowledged, reads the key back from that
//! same node; it resends an unanswered request on its timer. Keys are chosen
//! so that the first key's primary changes at the join, the second's at the
//! leave, and the third's never (its backup may).
//!
//! Properties:
//! - *no lost keys* (always): every acknowledged write is held by some node
//!   that is up, or in the saved state of a crashed node that will recover it;
//! - *placed once quiescent* (always): when every node has reached the last
//!   epoch and no copy or replica waits for an acknowledgement, each
//!   acknowledged write is held by exactly the nodes of its key's last
//!   preference list;
//! - *reads see acknowledged writes* (always): a read sent after its key's
//!   write was acknowledged returns that write;
//! - *a handoff completes*, *quiescent with every write acknowledged* and *a
//!   request is forwarded or retried* (sometimes): the outcomes above are
//!   reachable, so the properties are not vacuous.
//!
//! Variants the checker refutes: `drop-before-ack` (no lost keys) and
//! `no-forward` (reads see acknowledged writes and placed once quiescent; with
//! one replica also no lost keys). `modular`
//! cannot break these properties: the protocol never looks at how holders are
//! chosen, only at who they are; modular placement only moves more keys (see
//! verification/REPORT.md).
//!
//! With `crashes=1`, any one actor at a time may crash; it recovers the state
//! it saved, which every step saves before its sends leave. Messages to a
//! crashed actor wait in the network until it recovers.
//!
//! With `lossy=true` any message may be lost. The safety properties must still
//! hold — a lost copy leaves its sender holding the key — and a node resends
//! an unacknowledged copy or replica on its timer, so a loss delays a move but
//! cannot stall it once every node knows the last ring. Ring announcements are
//! not resent (a real node learns the ring from a membership service, not
//! modelled), so no `eventually` property is claimed.

use stateright::Property;
use stateright::actor::{ActorModel, Envelope, Id, Network};

use super::network::{NetworkState, OnNetwork};
use super::params::{ParamError, ParamKind, ParamSpec, Params};
use crate::rebalance::{
    ClientState, Custody, HandoffActor, HandoffMsg, HandoffState, NodeState, Placement, Variant,
};
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
        kind: ParamKind::Int { min: 1, max: 3 },
        help: "keys written and read (the first moves at the join, the second at the leave, the third never)",
    },
    ParamSpec {
        name: "replicas",
        default: "1",
        kind: ParamKind::Int { min: 1, max: 2 },
        help: "length of each key's preference list: the nodes that hold it",
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

/// One configuration of the system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandoffSize {
    /// Storage nodes, the joining one included (3–4).
    pub nodes: usize,
    /// Keys (1–3).
    pub keys: usize,
    /// Preference-list length (1–2).
    pub replicas: usize,
    /// Whether the network may drop messages.
    pub lossy: bool,
    /// How many actors may be crashed at once.
    pub crashes: usize,
    /// The protocol's variant.
    pub variant: Variant,
    /// Placement by `h(key) mod n` instead of the ring.
    pub modular: bool,
}

impl Default for HandoffSize {
    fn default() -> Self {
        HandoffSize {
            nodes: 3,
            keys: 2,
            replicas: 1,
            lossy: false,
            crashes: 0,
            variant: Variant::Correct,
            modular: false,
        }
    }
}

/// What the properties need to know about the system.
#[derive(Clone, Debug)]
pub struct HandoffConfig {
    /// The ring snapshots.
    pub placement: Placement,
    /// The client's actor id.
    pub client: Id,
}

/// The model type: the actors on haft's network (models/network.rs).
pub type HandoffModel = OnNetwork<HandoffActor, HandoffConfig, ()>;

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

/// The preference list of `key` at each epoch: haft's ring, or the
/// `replicas` members from `h(key) mod n` on, in id order (the seed's scheme,
/// extended to replicas the way a ring walk would).
fn lists_of(
    key: &str,
    members: &[Vec<usize>],
    rings: &[Ring],
    replicas: usize,
    modular: bool,
) -> Vec<Vec<usize>> {
    members
        .iter()
        .zip(rings)
        .map(|(members, ring)| {
            if modular {
                let start = (key_position(key.as_bytes()) % members.len() as u64) as usize;
                (0..replicas.min(members.len()))
                    .map(|i| members[(start + i) % members.len()])
                    .collect()
            } else {
                let list = ring.preference_list(key.as_bytes(), replicas);
                list.iter()
                    .map(|id| id.as_str()[1..].parse::<usize>())
                    .map(|index| index.expect("node ids are n<index>"))
                    .collect()
            }
        })
        .collect()
}

/// The placement for `nodes` nodes, `keys` keys and lists of `replicas`.
pub fn placement(nodes: usize, keys: usize, replicas: usize, modular: bool) -> Placement {
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
    // first to the joining node, the second away from the leaving node 0, the
    // third nowhere.
    let primaries =
        |key: &str| -> Vec<usize> { lists_of(key, &members, &rings, 1, false).concat() };
    let wanted = [
        |p: &[usize]| p[0] != p[1] && p[0] != 0,
        |p: &[usize]| p[1] != p[2],
        |p: &[usize]| p[0] == p[1] && p[1] == p[2],
    ];
    let names: Vec<String> = wanted[..keys]
        .iter()
        .map(|wanted| {
            (0..)
                .map(|i| format!("key-{i}"))
                .find(|key| wanted(&primaries(key)))
                .expect("some key has that history")
        })
        .collect();
    let lists_by_key: Vec<Vec<Vec<usize>>> = names
        .iter()
        .map(|key| lists_of(key, &members, &rings, replicas, modular))
        .collect();
    Placement {
        lists: (0..members.len())
            .map(|epoch| {
                lists_by_key
                    .iter()
                    .map(|lists| lists[epoch].clone())
                    .collect()
            })
            .collect(),
    }
}

impl HandoffSize {
    /// The configuration named by checked parameters.
    pub fn from_params(params: &Params) -> HandoffSize {
        let (variant, modular) = match params.choice("variant") {
            "drop-before-ack" => (Variant::DropBeforeAck, false),
            "no-forward" => (Variant::NoForward, false),
            "modular" => (Variant::Correct, true),
            _ => (Variant::Correct, false),
        };
        HandoffSize {
            nodes: params.usize("nodes"),
            keys: params.usize("keys"),
            replicas: params.usize("replicas"),
            lossy: params.bool("lossy"),
            crashes: params.usize("crashes"),
            variant,
            modular,
        }
    }

    /// The system of `nodes` storage nodes and a client.
    pub fn into_model(self) -> HandoffModel {
        let placement = placement(self.nodes, self.keys, self.replicas, self.modular);
        let client = Id::from(self.nodes);
        let node_actors: Vec<HandoffActor> = (0..self.nodes)
            .map(|_| HandoffActor::Node {
                placement: placement.clone(),
                variant: self.variant,
            })
            .collect();
        let client_actor = HandoffActor::Client {
            placement: placement.clone(),
            nodes: (0..self.nodes).map(Id::from).collect(),
        };
        let actors = ActorModel::new(HandoffConfig { placement, client }, ())
            .actors(node_actors)
            .actor(client_actor)
            .init_network(Network::new_unordered_duplicating([]))
            .max_crashes(self.crashes);
        OnNetwork::new(actors, self.lossy, properties)
    }
}

/// The properties of `ring-handoff` (see the module doc).
fn properties(_: &HandoffModel) -> Vec<Property<HandoffModel>> {
    vec![
        Property::always("no lost keys", |m: &HandoffModel, s: &State| {
            no_lost_keys(&m.actors.cfg, s)
        }),
        Property::always("placed once quiescent", |m: &HandoffModel, s: &State| {
            placed_once_quiescent(&m.actors.cfg, s)
        }),
        Property::always(
            "reads see acknowledged writes",
            |m: &HandoffModel, s: &State| reads_see_acknowledged_writes(&m.actors.cfg, s),
        ),
        Property::sometimes("a handoff completes", |m: &HandoffModel, s: &State| {
            a_handoff_completes(&m.actors.cfg, s)
        }),
        Property::sometimes(
            "quiescent with every write acknowledged",
            |m: &HandoffModel, s: &State| quiescent_with_every_write_acknowledged(&m.actors.cfg, s),
        ),
        Property::sometimes(
            "a request is forwarded or retried",
            |m: &HandoffModel, s: &State| a_request_is_forwarded_or_retried(&m.actors.cfg, s),
        ),
    ]
}

/// Builds the model from checked parameters.
pub fn from_params(params: &Params) -> Result<HandoffModel, ParamError> {
    Ok(HandoffSize::from_params(params).into_model())
}

type State = NetworkState<HandoffActor, ()>;

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

fn nodes(state: &State) -> impl Iterator<Item = (usize, &NodeState)> {
    (0..state.actor_states.len()).filter_map(|index| match holding(state, index) {
        Some(HandoffState::Node(node)) => Some((index, node)),
        _ => None,
    })
}

fn client(cfg: &HandoffConfig, state: &State) -> ClientState {
    match holding(state, usize::from(cfg.client)) {
        Some(HandoffState::Client(client)) => client.clone(),
        // The client saves its first state before anything else happens.
        _ => ClientState {
            acknowledged: vec![None; cfg.placement.keys()],
            read: vec![None; cfg.placement.keys()],
        },
    }
}

fn no_lost_keys(cfg: &HandoffConfig, state: &State) -> bool {
    let client = client(cfg, state);
    client.acknowledged.iter().enumerate().all(|(key, acked)| {
        acked.is_none() || nodes(state).any(|(_, node)| node.values[key] >= *acked)
    })
}

/// Every node has reached the last epoch, each key has a serving primary, and
/// no copy or replica waits for an acknowledgement.
///
/// Messages still in the network do not count: on a duplicating network every
/// message ever sent stays deliverable, and a node ignores what is stale.
fn quiescent(cfg: &HandoffConfig, state: &State) -> bool {
    let last = cfg.placement.last_epoch();
    nodes(state).all(|(_, node)| {
        node.epoch == last
            && node
                .custody
                .iter()
                .all(|c| matches!(c, Custody::None) || *c == Custody::SERVING)
    })
}

/// Shows that `placed once quiescent` is not vacuous.
fn quiescent_with_every_write_acknowledged(cfg: &HandoffConfig, state: &State) -> bool {
    quiescent(cfg, state) && client(cfg, state).acknowledged.iter().all(Option::is_some)
}

fn placed_once_quiescent(cfg: &HandoffConfig, state: &State) -> bool {
    let placement = &cfg.placement;
    let last = placement.last_epoch();
    if !quiescent(cfg, state) {
        return true;
    }
    let client = client(cfg, state);
    (0..placement.keys()).all(|key| {
        let acked = client.acknowledged[key];
        acked.is_none()
            || nodes(state).all(|(index, node)| {
                if placement.holds(last, key, index) {
                    node.values[key] >= acked
                } else {
                    node.values[key].is_none()
                }
            })
    })
}

fn reads_see_acknowledged_writes(cfg: &HandoffConfig, state: &State) -> bool {
    let client = client(cfg, state);
    // Each read is sent after its key's only write was acknowledged.
    client
        .read
        .iter()
        .zip(&client.acknowledged)
        .all(|(read, acked)| read.is_none_or(|value| value >= *acked))
}

fn a_handoff_completes(cfg: &HandoffConfig, state: &State) -> bool {
    let placement = &cfg.placement;
    let last = placement.last_epoch();
    nodes(state).any(|(index, node)| {
        (0..placement.keys()).any(|key| {
            index == placement.owner(last, key)
                && index != placement.owner(0, key)
                && node.custody[key] == Custody::SERVING
                && node.values[key].is_some()
        })
    })
}

fn a_request_is_forwarded_or_retried(cfg: &HandoffConfig, state: &State) -> bool {
    state
        .network
        .iter_all()
        .any(|Envelope { src, msg, .. }| match msg {
            HandoffMsg::Retry(_) => true,
            HandoffMsg::Write { .. } | HandoffMsg::Read { .. } => src != cfg.client,
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use stateright::Model;

    use super::*;
    use crate::models::CheckReport;
    use crate::models::testing::check;

    fn size(nodes: usize, keys: usize, replicas: usize) -> HandoffSize {
        HandoffSize {
            nodes,
            keys,
            replicas,
            ..HandoffSize::default()
        }
    }

    fn with_variant(size: HandoffSize, variant: Variant) -> HandoffSize {
        HandoffSize { variant, ..size }
    }

    fn checked(size: HandoffSize) -> CheckReport {
        check(size.into_model())
    }

    /// Checks `size`, asserts that every property holds, and returns the
    /// unique state count and depth.
    fn passing(size: HandoffSize) -> (usize, usize) {
        let report = checked(size);
        assert!(report.passed(), "{size:?}: {report:#?}");
        (report.unique_states, report.max_depth)
    }

    /// The last state of the shortest counterexample to `property`.
    fn refuted(report: &CheckReport, property: &str) -> Vec<crate::models::Step> {
        let verdict = report.property(property).expect("declared");
        assert!(!verdict.holds, "{property} holds: {report:#?}");
        verdict.counterexample.clone().expect("a trace")
    }

    #[test]
    fn the_keys_move_at_the_join_and_at_the_leave() {
        let placement = placement(3, 3, 2, false);
        // Key 0 goes to the joining node 2; key 1 leaves node 0; key 2 stays.
        assert_eq!(placement.owner(1, 0), 2);
        assert_ne!(placement.owner(0, 0), 2);
        assert_eq!(placement.owner(1, 1), 0);
        assert_ne!(placement.owner(2, 1), 0);
        assert_eq!(placement.owner(0, 2), placement.owner(2, 2));
        // Lists of 2 distinct nodes, primary first.
        for epoch in 0..=2 {
            for key in 0..3 {
                let holders = placement.holders(epoch, key);
                assert_eq!(holders.len(), 2);
                assert_ne!(holders[0], holders[1]);
            }
        }
    }

    #[test]
    fn the_default_configuration_passes_with_its_pinned_count() {
        let entry = crate::models::find(NAME).expect("registered");
        let params = entry.default_params();
        assert_eq!(HandoffSize::from_params(&params), HandoffSize::default());
        assert_eq!(
            passing(HandoffSize::default()),
            (DEFAULT_STATES, DEFAULT_DEPTH)
        );
    }

    #[test]
    fn the_correct_protocol_passes_at_every_small_size() {
        for (nodes, keys, replicas, pinned) in [
            (3, 1, 1, SMALL[0]),
            (4, 1, 1, SMALL[1]),
            (3, 1, 2, SMALL[2]),
        ] {
            assert_eq!(
                passing(size(nodes, keys, replicas)),
                pinned,
                "nodes={nodes} keys={keys} replicas={replicas}"
            );
        }
    }

    #[test]
    fn a_crash_loses_nothing_that_was_saved() {
        for (replicas, pinned) in [(1, CRASH[0]), (2, CRASH[1])] {
            let crashing = HandoffSize {
                crashes: 1,
                ..size(3, 1, replicas)
            };
            assert_eq!(passing(crashing), pinned, "replicas={replicas}");
        }
    }

    fn lossy(size: HandoffSize) -> HandoffSize {
        HandoffSize {
            lossy: true,
            ..size
        }
    }

    #[test]
    fn a_lossy_network_loses_no_key() {
        assert_eq!(passing(lossy(size(3, 1, 1))), LOSSY[0]);
        assert_eq!(passing(lossy(size(3, 1, 2))), LOSSY[1]);
        let broken = checked(lossy(with_variant(size(3, 1, 1), Variant::DropBeforeAck)));
        refuted(&broken, "no lost keys");
    }

    #[test]
    fn a_lost_copy_is_resent_until_acknowledged() {
        // From any state in which every node knows the last ring and every
        // message was lost while a copy was unacknowledged, the resend timer
        // still leads to quiescence with every write acknowledged: without
        // it, the move would stall. (Ring announcements are not resent: a
        // node learns the ring from the membership service, not modelled.)
        let model = lossy(size(3, 1, 1)).into_model();
        let last = model.actors.cfg.placement.last_epoch();
        let stalled: Vec<State> = crate::models::testing::reachable_states(&model)
            .into_iter()
            .filter(|state| {
                state.network.iter_all().next().is_none()
                    && nodes(state).all(|(_, node)| node.epoch == last)
                    && nodes(state).any(|(_, node)| {
                        node.custody
                            .iter()
                            .any(|c| matches!(c, Custody::HandingOff { .. }))
                    })
            })
            .collect();
        assert!(!stalled.is_empty());
        for state in stalled {
            assert!(
                reaches(&model, state.clone(), |m, s| {
                    quiescent_with_every_write_acknowledged(&m.actors.cfg, s)
                }),
                "{state:#?}"
            );
        }
    }

    /// Whether some state reachable from `from` satisfies `goal`.
    fn reaches(model: &HandoffModel, from: State, goal: fn(&HandoffModel, &State) -> bool) -> bool {
        let mut seen = HashSet::from([from.clone()]);
        let mut queue = vec![from];
        let mut actions = Vec::new();
        while let Some(state) = queue.pop() {
            if goal(model, &state) {
                return true;
            }
            model.actions(&state, &mut actions);
            for action in actions.drain(..) {
                let next = model.next_state(&state, action);
                if let Some(next) = next.filter(|next| seen.insert(next.clone())) {
                    queue.push(next);
                }
            }
        }
        false
    }

    #[test]
    fn dropping_before_the_ack_loses_a_key() {
        for replicas in [1, 2] {
            let report = checked(with_variant(size(3, 1, replicas), Variant::DropBeforeAck));
            let trace = refuted(&report, "no lost keys");
            // A write was acknowledged, then its primary dropped it while the
            // copy carrying it was still on its way (and, with 2 replicas, the
            // backup left the list and dropped its replica).
            let last = &trace.last().expect("a trace has steps").state;
            assert!(
                last.contains("msg: Copy { key: 0, value: Some(1)"),
                "{trace:#?}"
            );
            assert!(last.contains("acknowledged: [Some(1)]"), "{trace:#?}");
        }
    }

    #[test]
    fn not_forwarding_a_write_serves_a_stale_read() {
        for replicas in [1, 2] {
            let report = checked(with_variant(size(3, 1, replicas), Variant::NoForward));
            let trace = refuted(&report, "reads see acknowledged writes");
            // The read reached the primary, which never saw the write applied
            // at a former one.
            let last = trace.last().expect("steps");
            assert!(
                last.action.contains("ReadOk { key: 0, value: None }"),
                "{trace:#?}"
            );
            // Applied where it is not owned, the write stays on the wrong node.
            refuted(&report, "placed once quiescent");
        }
    }

    #[test]
    fn modular_placement_breaks_no_property_of_the_protocol() {
        // The protocol is correct for any placement; mod n only moves more
        // keys, which shows as a larger state space than the ring's.
        for (replicas, pinned) in [(1, MODULAR[0]), (2, MODULAR[1])] {
            let modular = HandoffSize {
                modular: true,
                ..size(3, 1, replicas)
            };
            assert_eq!(passing(modular), pinned, "replicas={replicas}");
        }
    }

    // Unique states and depth, pinned (verification/REPORT.md, "Ring handoff").
    const DEFAULT_STATES: usize = 170_760;
    const DEFAULT_DEPTH: usize = 32;
    /// nodes/keys/replicas 3/1/1, 4/1/1, 3/1/2.
    const SMALL: [(usize, usize); 3] = [(1_920, 18), (3_840, 19), (18_844, 24)];
    /// 3 nodes, 1 key, crashes=1; replicas 1 and 2.
    const CRASH: [(usize, usize); 2] = [(9_600, 19), (94_220, 25)];
    /// 3 nodes, 1 key, lossy; replicas 1 and 2.
    const LOSSY: [(usize, usize); 2] = [(2_760, 18), (23_600, 24)];
    /// 3 nodes, 1 key, modular placement; replicas 1 and 2.
    const MODULAR: [(usize, usize); 2] = [(1_980, 20), (29_174, 27)];
}
