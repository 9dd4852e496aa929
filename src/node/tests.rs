//! Unit tests of the node actor: routing, transaction ids, client answers.
//! A small synchronous network delivers messages in order and fires no timers.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};

use stateright::actor::{Actor, Command, Id, Out};

use super::*;
use crate::commit::{Msg, Outcome, TxnRecord};

/// A client's id: not a node's.
const CLIENT: usize = 1 << 40;

fn node_id(n: u64) -> Id {
    Id::from(n as usize)
}

fn actor() -> NodeActor {
    NodeActor::new(&[1, 2, 3], 64, NodeTiming::default()).unwrap()
}

/// Three nodes, a FIFO network, each node's last saved record, and what the
/// clients received.
struct Cluster {
    actor: NodeActor,
    states: BTreeMap<Id, NodeState>,
    saved: BTreeMap<Id, NodeRecord>,
    queue: VecDeque<(Id, Id, NodeMsg)>,
    to_clients: Vec<(Id, RequestId, Reply)>,
}

impl Cluster {
    fn start() -> Cluster {
        let mut cluster = Cluster {
            actor: actor(),
            states: BTreeMap::new(),
            saved: BTreeMap::new(),
            queue: VecDeque::new(),
            to_clients: Vec::new(),
        };
        for n in 1..=3 {
            cluster.boot(node_id(n));
        }
        // The detectors' start-up announcements.
        cluster.run();
        cluster
    }

    fn boot(&mut self, id: Id) {
        let mut o = Out::new();
        let state = self
            .actor
            .on_start(id, &self.saved.get(&id).cloned(), &mut o);
        self.states.insert(id, state);
        self.carry_out(id, o);
    }

    fn carry_out(&mut self, from: Id, o: Out<NodeActor>) {
        for command in o {
            match command {
                Command::Save(record) => {
                    self.saved.insert(from, record);
                }
                Command::Send(to, NodeMsg::Reply { id, reply }) => {
                    self.to_clients.push((to, id, reply))
                }
                Command::Send(to, msg) => self.queue.push_back((from, to, msg)),
                _ => {}
            }
        }
    }

    fn deliver(&mut self, src: Id, dst: Id, msg: NodeMsg) -> Out<NodeActor> {
        let mut o = Out::new();
        let mut state = Cow::Borrowed(&self.states[&dst]);
        self.actor.on_msg(dst, &mut state, src, msg, &mut o);
        let state = state.into_owned();
        self.states.insert(dst, state);
        o
    }

    fn step(&mut self, src: Id, dst: Id, msg: NodeMsg) {
        let o = self.deliver(src, dst, msg);
        self.carry_out(dst, o);
    }

    fn run(&mut self) {
        while let Some((src, dst, msg)) = self.queue.pop_front() {
            self.step(src, dst, msg);
        }
    }

    fn request(&mut self, node: u64, id: RequestId, request: Request) {
        self.step(
            Id::from(CLIENT),
            node_id(node),
            NodeMsg::Request { id, request },
        );
    }

    fn replies(&self, id: RequestId) -> Vec<&Reply> {
        self.to_clients
            .iter()
            .filter(|(to, i, _)| *to == Id::from(CLIENT) && *i == id)
            .map(|(_, _, r)| r)
            .collect()
    }
}

fn writes(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A key owned by each node, found by asking the ring.
fn keys_by_owner(actor: &NodeActor) -> BTreeMap<Id, String> {
    let mut keys = BTreeMap::new();
    for i in 0.. {
        let key = format!("k{i}");
        keys.entry(actor.owner(&key)).or_insert(key);
        if keys.len() == actor.nodes().count() {
            break;
        }
    }
    keys
}

#[test]
fn a_client_transaction_commits_everywhere_and_is_answered() {
    let mut cluster = Cluster::start();
    let keys = keys_by_owner(&cluster.actor);
    let all: Vec<(&str, &str)> = keys.values().map(|k| (k.as_str(), "v")).collect();
    cluster.request(
        1,
        7,
        Request::Txn {
            writes: writes(&all),
        },
    );
    cluster.run();
    let replies = cluster.replies(7);
    assert_eq!(replies.len(), 1);
    let Reply::Txn { txn, outcome } = replies[0] else {
        panic!("expected a transaction reply, got {replies:?}")
    };
    assert_eq!(*outcome, Outcome::Commit);
    assert_eq!(coordinator_of(*txn), node_id(1));
    // Every owner has applied its key, durably.
    for (owner, key) in &keys {
        let record = &cluster.saved[owner].participant;
        assert_eq!(record.store.get(key).map(String::as_str), Some("v"));
        assert_eq!(
            record.txns.get(txn),
            Some(&TxnRecord::Decided(Outcome::Commit))
        );
    }
    // The coordinator forgot the transaction once everyone acknowledged.
    assert!(cluster.saved[&node_id(1)].coordinator.commits.is_empty());
}

#[test]
fn a_commit_answer_leaves_after_the_commit_record_is_saved() {
    let mut cluster = Cluster::start();
    let keys = keys_by_owner(&cluster.actor);
    let key = keys[&node_id(2)].clone();
    cluster.request(
        1,
        1,
        Request::Txn {
            writes: writes(&[(&key, "x")]),
        },
    );
    let (src, dst, prepare) = cluster.queue.pop_front().unwrap();
    let vote = cluster.deliver(src, dst, prepare);
    let Some(Command::Send(_, vote)) = vote.into_iter().find(|c| matches!(c, Command::Send(..)))
    else {
        panic!("no vote")
    };
    // The handler of the last Yes vote: save the commit record, then answer.
    let o = cluster.deliver(node_id(2), node_id(1), vote);
    let commands: Vec<_> = o.into_iter().collect();
    let saved_at = commands
        .iter()
        .position(|c| matches!(c, Command::Save(r) if !r.coordinator.commits.is_empty()))
        .expect("the commit record is saved");
    let answered_at = commands
        .iter()
        .position(
            |c| matches!(c, Command::Send(to, NodeMsg::Reply { .. }) if *to == Id::from(CLIENT)),
        )
        .expect("the client is answered");
    assert!(saved_at < answered_at);
}

#[test]
fn a_lock_conflict_aborts_the_second_transaction() {
    let mut cluster = Cluster::start();
    let keys = keys_by_owner(&cluster.actor);
    let key = keys[&node_id(3)].clone();
    // Both begin before any Prepare is delivered: the second is refused.
    cluster.request(
        1,
        1,
        Request::Txn {
            writes: writes(&[(&key, "a")]),
        },
    );
    cluster.request(
        2,
        2,
        Request::Txn {
            writes: writes(&[(&key, "b")]),
        },
    );
    cluster.run();
    let outcomes: Vec<Outcome> = [1, 2]
        .iter()
        .map(|id| match cluster.replies(*id)[..] {
            [Reply::Txn { outcome, .. }] => *outcome,
            ref other => panic!("expected one answer, got {other:?}"),
        })
        .collect();
    assert_eq!(outcomes, [Outcome::Commit, Outcome::Abort]);
    let store = &cluster.saved[&node_id(3)].participant.store;
    assert_eq!(store.get(&key).map(String::as_str), Some("a"));
}

#[test]
fn a_retried_request_starts_no_second_transaction() {
    let mut cluster = Cluster::start();
    let txn = Request::Txn {
        writes: writes(&[("a", "1"), ("b", "2")]),
    };
    cluster.request(1, 5, txn.clone());
    let prepares = cluster.queue.len();
    cluster.request(1, 5, txn.clone());
    assert_eq!(
        cluster.queue.len(),
        prepares,
        "a retry in flight sends nothing"
    );
    cluster.run();
    cluster.request(1, 5, txn);
    let replies = cluster.replies(5);
    assert_eq!(replies.len(), 2);
    assert_eq!(
        replies[0], replies[1],
        "a retry after the answer gets the same answer"
    );
    assert!(cluster.queue.is_empty());
}

#[test]
fn an_empty_transaction_is_refused() {
    let mut cluster = Cluster::start();
    cluster.request(
        1,
        1,
        Request::Txn {
            writes: BTreeMap::new(),
        },
    );
    assert!(matches!(cluster.replies(1)[..], [Reply::Refused { .. }]));
    assert!(cluster.queue.is_empty());
}

#[test]
fn get_reads_the_owners_committed_store() {
    let mut cluster = Cluster::start();
    let keys = keys_by_owner(&cluster.actor);
    let key = keys[&node_id(3)].clone();
    cluster.request(
        1,
        1,
        Request::Txn {
            writes: writes(&[(&key, "v3")]),
        },
    );
    cluster.run();
    // Asked at a node that does not own the key: forwarded to the owner.
    cluster.request(2, 2, Request::Get { key: key.clone() });
    cluster.run();
    assert_eq!(
        cluster.replies(2),
        [&Reply::Value {
            key: key.clone(),
            value: Some("v3".into())
        }]
    );
    cluster.request(
        3,
        3,
        Request::Get {
            key: "never-written".into(),
        },
    );
    cluster.run();
    assert!(matches!(
        cluster.replies(3)[..],
        [Reply::Value { value: None, .. }]
    ));
}

#[test]
fn queries_reach_the_coordinator_only_for_its_own_transactions() {
    let mut cluster = Cluster::start();
    let own = TxnIdParts {
        node: 1,
        incarnation: 1,
        sequence: 9,
    }
    .pack()
    .unwrap();
    let foreign = TxnIdParts {
        node: 2,
        incarnation: 1,
        sequence: 9,
    }
    .pack()
    .unwrap();
    // Its own, unknown transaction: presumed abort answers Abort.
    let o = cluster.deliver(
        node_id(3),
        node_id(1),
        NodeMsg::Commit(Msg::Query { txn: own }),
    );
    let sent: Vec<_> = o.into_iter().collect();
    assert!(matches!(
        &sent[..],
        [Command::Send(to, NodeMsg::Commit(Msg::Outcome { outcome: Outcome::Abort, .. }))] if *to == node_id(3)
    ));
    // Another node's transaction it knows nothing of: no answer (a presumed
    // Abort here could contradict node 2's commit: AC1).
    let o = cluster.deliver(
        node_id(3),
        node_id(1),
        NodeMsg::Commit(Msg::Query { txn: foreign }),
    );
    assert!(o.is_empty());
    // Another node's transaction it learned the outcome of: the peer answers it.
    cluster
        .states
        .get_mut(&node_id(1))
        .unwrap()
        .participant
        .record
        .txns
        .insert(foreign, TxnRecord::Decided(Outcome::Commit));
    let o = cluster.deliver(
        node_id(3),
        node_id(1),
        NodeMsg::Commit(Msg::Query { txn: foreign }),
    );
    let sent: Vec<_> = o.into_iter().collect();
    assert!(matches!(
        &sent[..],
        [Command::Send(
            _,
            NodeMsg::Commit(Msg::Outcome {
                outcome: Outcome::Commit,
                ..
            })
        )]
    ));
}

#[test]
fn protocol_messages_from_clients_are_ignored() {
    let mut cluster = Cluster::start();
    let txn = TxnIdParts {
        node: 1,
        incarnation: 1,
        sequence: 0,
    }
    .pack()
    .unwrap();
    for msg in [
        Msg::Query { txn },
        Msg::Prepare {
            txn,
            writes: writes(&[("a", "1")]),
            peers: vec![],
        },
        Msg::Outcome {
            txn,
            outcome: Outcome::Commit,
        },
    ] {
        let before = cluster.states[&node_id(1)].clone();
        let o = cluster.deliver(Id::from(CLIENT), node_id(1), NodeMsg::Commit(msg));
        assert!(o.is_empty());
        assert_eq!(cluster.states[&node_id(1)], before);
    }
}

#[test]
fn transaction_ids_are_unique_across_restarts() {
    let mut cluster = Cluster::start();
    let mut seen = BTreeSet::new();
    for life in 1..=3u64 {
        assert_eq!(cluster.saved[&node_id(1)].incarnation, life);
        for request in 0..3 {
            let id = life * 100 + request;
            cluster.request(
                1,
                id,
                Request::Txn {
                    writes: writes(&[("a", "1")]),
                },
            );
            cluster.run();
            let [Reply::Txn { txn, .. }] = cluster.replies(id)[..] else {
                panic!("no answer")
            };
            let parts = TxnIdParts::unpack(*txn);
            assert_eq!((parts.node, parts.incarnation), (1, life));
            assert!(seen.insert(*txn), "{txn} reused");
        }
        // A crash: the volatile state is lost, the record survives.
        cluster.boot(node_id(1));
    }
}

#[test]
fn a_spent_sequence_moves_to_the_next_incarnation_and_saves_it() {
    let actor = actor();
    let mut o = Out::new();
    let mut state = actor.on_start(node_id(1), &None, &mut o);
    state.next_sequence = txn_id::MAX_SEQUENCE + 1;
    let mut o = Out::new();
    let mut cow = Cow::Borrowed(&state);
    actor.on_msg(
        node_id(1),
        &mut cow,
        Id::from(CLIENT),
        NodeMsg::Request {
            id: 1,
            request: Request::Txn {
                writes: writes(&[("a", "1")]),
            },
        },
        &mut o,
    );
    let commands: Vec<_> = o.into_iter().collect();
    let Command::Save(record) = &commands[0] else {
        panic!("the new incarnation is saved first, got {commands:?}")
    };
    assert_eq!(record.incarnation, 2);
    let Some(Command::Send(_, NodeMsg::Commit(Msg::Prepare { txn, .. }))) =
        commands.iter().find(|c| matches!(c, Command::Send(..)))
    else {
        panic!("no prepare")
    };
    assert_eq!(
        TxnIdParts::unpack(*txn),
        TxnIdParts {
            node: 1,
            incarnation: 2,
            sequence: 0
        }
    );
}

#[test]
fn status_lists_every_node() {
    let mut cluster = Cluster::start();
    cluster.request(2, 1, Request::Status);
    let [Reply::Status(view)] = cluster.replies(1)[..] else {
        panic!("no status")
    };
    assert_eq!(view.node, 2);
    assert_eq!(view.incarnation, 1);
    assert_eq!(view.members.keys().copied().collect::<Vec<_>>(), [1, 2, 3]);
    assert!(view.members.values().all(|s| *s == MemberStatus::Alive));
}

#[test]
fn bad_configurations_are_refused() {
    let t = NodeTiming::default;
    assert_eq!(NodeActor::new(&[], 8, t()).unwrap_err(), NodeError::NoNodes);
    assert_eq!(
        NodeActor::new(&[1, 1], 8, t()).unwrap_err(),
        NodeError::DuplicateNode(1)
    );
    assert_eq!(
        NodeActor::new(&[1, 1 << 16], 8, t()).unwrap_err(),
        NodeError::NodeIdTooLarge(1 << 16)
    );
    let zero = NodeTiming {
        vote_timeout: std::time::Duration::ZERO..std::time::Duration::ZERO,
        ..t()
    };
    assert_eq!(
        NodeActor::new(&[1], 8, zero).unwrap_err(),
        NodeError::BadTimer("vote_timeout")
    );
}

#[test]
fn a_restarted_node_is_alive_again_to_peers_that_declared_it_dead() {
    let mut cluster = Cluster::start();
    // Node 2 hears nothing from node 1 for long enough to declare it Dead.
    let detector = &mut cluster
        .states
        .get_mut(&node_id(2))
        .unwrap()
        .detector
        .detector;
    let _ = detector.check(1_000_000);
    let _ = detector.check(2_000_000);
    assert_eq!(detector.status(1), Some(crate::detector::Status::Dead));
    // Node 1 restarts: its detector starts above every earlier incarnation.
    cluster.boot(node_id(1));
    assert_eq!(
        cluster.states[&node_id(1)].detector.detector.incarnation(),
        2 << 32
    );
    cluster.run();
    let view = cluster
        .actor
        .status(node_id(2), &cluster.states[&node_id(2)]);
    assert_eq!(view.members[&1], MemberStatus::Alive);
}

/// A small exhaustive check: two nodes and one client whose transaction writes
/// a key at each node, every interleaving of messages and commit timers (the
/// detector's timers are cut off by the boundary), messages duplicated.
mod check {
    use stateright::actor::{ActorModel, ActorModelState, Network};
    use stateright::{Checker, Model, Property};

    use crate::models::network::OnNetwork;

    use super::*;

    /// A node, or the client that sends one transaction to node 0.
    #[derive(Clone, Debug)]
    enum Sys {
        Node(Box<NodeActor>),
        Client(BTreeMap<String, String>),
    }

    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    enum SysState {
        Node(Box<NodeState>),
        Client(Option<Reply>),
    }

    impl Actor for Sys {
        type Msg = NodeMsg;
        type State = SysState;
        type Timer = NodeTimer;
        type Random = commit::Choice;
        type Storage = NodeRecord;

        fn on_start(&self, id: Id, storage: &Option<NodeRecord>, o: &mut Out<Self>) -> SysState {
            match self {
                Sys::Node(node) => {
                    let mut inner = Out::new();
                    let state = node.on_start(id, storage, &mut inner);
                    o.append(&mut inner);
                    SysState::Node(Box::new(state))
                }
                Sys::Client(writes) => {
                    let request = Request::Txn {
                        writes: writes.clone(),
                    };
                    o.send(Id::from(0), NodeMsg::Request { id: 1, request });
                    SysState::Client(None)
                }
            }
        }

        fn on_msg(
            &self,
            id: Id,
            state: &mut Cow<SysState>,
            src: Id,
            msg: NodeMsg,
            o: &mut Out<Self>,
        ) {
            match (self, state.to_mut()) {
                (Sys::Node(node), SysState::Node(s)) => {
                    let mut inner: Out<NodeActor> =
                        delegate(&mut **s, |cow, out| node.on_msg(id, cow, src, msg, out));
                    o.append(&mut inner);
                }
                (Sys::Client(_), SysState::Client(reply)) => {
                    if let NodeMsg::Reply { reply: r, .. } = msg {
                        *reply = Some(r);
                    }
                }
                _ => unreachable!("each actor keeps its own kind of state"),
            }
        }

        fn on_timeout(
            &self,
            id: Id,
            state: &mut Cow<SysState>,
            timer: &NodeTimer,
            o: &mut Out<Self>,
        ) {
            if let (Sys::Node(node), SysState::Node(s)) = (self, state.to_mut()) {
                let mut inner: Out<NodeActor> =
                    delegate(&mut **s, |cow, out| node.on_timeout(id, cow, timer, out));
                o.append(&mut inner);
            }
        }
    }

    fn outcomes(state: &ActorModelState<Sys>) -> BTreeMap<TxnId, BTreeSet<Outcome>> {
        let mut outcomes: BTreeMap<TxnId, BTreeSet<Outcome>> = BTreeMap::new();
        let records = state.actor_states.iter().filter_map(|s| match &**s {
            SysState::Node(node) => Some(&node.participant.record),
            SysState::Client(_) => None,
        });
        for record in records {
            for (txn, r) in &record.txns {
                if let TxnRecord::Decided(o) = r {
                    outcomes.entry(*txn).or_default().insert(*o);
                }
            }
        }
        outcomes
    }

    fn answer(state: &ActorModelState<Sys>) -> Option<&Reply> {
        state.actor_states.iter().find_map(|s| match &**s {
            SysState::Client(reply) => reply.as_ref(),
            SysState::Node(_) => None,
        })
    }

    type NodeModel = OnNetwork<Sys, (), ()>;

    #[test]
    fn two_nodes_and_a_client_keep_ac1() {
        let actor = NodeActor::new(&[0, 1], 8, NodeTiming::default()).unwrap();
        let writes = keys_by_owner(&actor)
            .into_values()
            .map(|k| (k, "v".to_owned()))
            .collect();
        fn properties(_: &NodeModel) -> Vec<Property<NodeModel>> {
            vec![
                Property::always("AC1: no two outcomes", |_, state| {
                    outcomes(state).values().all(|o| o.len() == 1)
                }),
                Property::always(
                    "an acknowledged commit is never aborted",
                    |_, state| match answer(state) {
                        Some(Reply::Txn {
                            txn,
                            outcome: Outcome::Commit,
                        }) => outcomes(state)
                            .get(txn)
                            .is_none_or(|o| !o.contains(&Outcome::Abort)),
                        _ => true,
                    },
                ),
                Property::sometimes("committed and answered", |_, state| {
                    matches!(
                        answer(state),
                        Some(Reply::Txn {
                            outcome: Outcome::Commit,
                            ..
                        })
                    )
                }),
                Property::sometimes("aborted and answered", |_, state| {
                    matches!(
                        answer(state),
                        Some(Reply::Txn {
                            outcome: Outcome::Abort,
                            ..
                        })
                    )
                }),
            ]
        }
        let actors = ActorModel::new((), ())
            .actors([
                Sys::Node(Box::new(actor.clone())),
                Sys::Node(Box::new(actor)),
                Sys::Client(writes),
            ])
            // Duplicating, as UDP may be; the network is a set, so resends keep
            // it finite. OnNetwork forgets the last-delivered envelope (an exact
            // quotient, see models/network.rs).
            .init_network(Network::new_unordered_duplicating([]))
            // The detector's timers would run forever; the commit is what is checked.
            .within_boundary(|_, state| {
                state.actor_states.iter().all(|s| match &**s {
                    SysState::Node(node) => {
                        node.detector.clock == 0 && node.detector.detector.heartbeats_sent() == 0
                    }
                    SysState::Client(_) => true,
                })
            });
        let model: NodeModel = OnNetwork::new(actors, false, properties);
        let checker = model.checker().spawn_bfs().join();
        checker.assert_properties();
        // Pinned: a change in the node's composition shows up here.
        assert_eq!(checker.unique_state_count(), 3_304);
    }
}
