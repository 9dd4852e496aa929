//! Unit tests of the node: routing, answers, reads, restarts. A small
//! synchronous driver delivers messages in order, applies every delta to a
//! durable record at once, and fires timers only when a test says so.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;

use super::*;
use crate::commit::{Msg, Refusal, TxnRecord, Vote};
use crate::detector::machine::DetectorTimer;

const CLIENT: ClientId = 77;

fn n(id: u16) -> NodeId {
    NodeId(id)
}

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

/// Nodes, their durable records, a FIFO network, and what clients received.
struct Cluster {
    configs: BTreeMap<NodeId, NodeConfig>,
    nodes: BTreeMap<NodeId, Node>,
    disk: BTreeMap<NodeId, NodeRecord>,
    queue: VecDeque<(NodeId, NodeId, NodeMsg)>,
    to_clients: Vec<(ClientId, RequestId, Reply)>,
    /// The nodes that emitted [`NodeEvent::Departed`].
    departed: Vec<NodeId>,
    /// The timers each node has armed and not cancelled (the driver fires
    /// none of them by itself).
    armed: BTreeMap<NodeId, BTreeSet<NodeTimer>>,
    /// Every other event the nodes emitted.
    events: Vec<(NodeId, NodeEvent)>,
}

impl Cluster {
    fn start(members: u16, replicas: usize) -> Cluster {
        Cluster::start_configured(members, replicas, |_| {})
    }

    /// A cluster whose configurations `configure` adjusts before the start.
    fn start_configured(
        members: u16,
        replicas: usize,
        configure: impl Fn(&mut NodeConfig),
    ) -> Cluster {
        let ids: Vec<NodeId> = (1..=members).map(n).collect();
        let mut cluster = Cluster {
            configs: ids
                .iter()
                .map(|id| {
                    let mut config = NodeConfig::new(*id, ids.clone(), replicas);
                    configure(&mut config);
                    (*id, config)
                })
                .collect(),
            nodes: BTreeMap::new(),
            disk: BTreeMap::new(),
            queue: VecDeque::new(),
            to_clients: Vec::new(),
            departed: Vec::new(),
            armed: BTreeMap::new(),
            events: Vec::new(),
        };
        for id in ids {
            cluster.boot(id);
        }
        cluster.run();
        cluster
    }

    fn boot(&mut self, id: NodeId) {
        let record = self.disk.get(&id).cloned().unwrap_or_default();
        let mut out = NodeOutput::at(0);
        let node = Node::recover(&self.configs[&id], record, &mut out).unwrap();
        self.nodes.insert(id, node);
        self.carry_out(id, out);
    }

    /// Everything not on disk is lost; the node starts again from its record.
    fn crash_and_restart(&mut self, id: NodeId) {
        self.nodes.remove(&id);
        self.armed.remove(&id);
        self.queue.retain(|(_, to, _)| *to != id);
        self.boot(id);
    }

    fn carry_out(&mut self, from: NodeId, out: NodeOutput) {
        let end = out.end();
        let disk = self.disk.entry(from).or_default();
        for delta in &out.persist {
            disk.apply(delta);
        }
        for event in out.events {
            match event {
                NodeEvent::Departed => self.departed.push(from),
                NodeEvent::Commit(_) => {}
                other => self.events.push((from, other)),
            }
        }
        let armed = self.armed.entry(from).or_default();
        for op in out.timers {
            match op {
                crate::output::TimerOp::Set { timer, .. } => armed.insert(timer),
                crate::output::TimerOp::Cancel(timer) => armed.remove(&timer),
            };
        }
        self.nodes.get_mut(&from).unwrap().handle_persisted(end);
        for (to, msg) in out.send_now.into_iter().chain(out.send_after_persist) {
            match (to, msg) {
                (Dest::Client(client), NodeMsg::Reply { id, reply, .. }) => {
                    self.to_clients.push((client, id, reply))
                }
                (Dest::Node(to), msg) => self.queue.push_back((from, to, msg)),
                (Dest::Client(_), other) => panic!("a client was sent {other:?}"),
            }
        }
    }

    fn deliver(&mut self, from: NodeId, to: NodeId, msg: NodeMsg) -> NodeOutput {
        let mut out = NodeOutput::at(0);
        if let Some(node) = self.nodes.get_mut(&to) {
            node.handle_message(from, msg, &mut out);
        }
        out
    }

    fn step(&mut self, from: NodeId, to: NodeId, msg: NodeMsg) {
        if !self.nodes.contains_key(&to) {
            return; // Down: the message is lost.
        }
        let out = self.deliver(from, to, msg);
        self.carry_out(to, out);
    }

    fn run(&mut self) {
        while let Some((from, to, msg)) = self.queue.pop_front() {
            self.step(from, to, msg);
        }
    }

    /// Runs until quiet, holding back every Outcome message; returns them.
    fn run_holding_outcomes(&mut self) -> Vec<(NodeId, NodeId, NodeMsg)> {
        let mut held = Vec::new();
        while let Some((from, to, msg)) = self.queue.pop_front() {
            if matches!(msg, NodeMsg::Commit(Msg::Outcome { .. })) {
                held.push((from, to, msg));
            } else {
                self.step(from, to, msg);
            }
        }
        held
    }

    fn fire(&mut self, node: NodeId, timer: NodeTimer) {
        let mut out = NodeOutput::at(0);
        self.nodes
            .get_mut(&node)
            .unwrap()
            .handle_timer(&timer, &mut out);
        self.carry_out(node, out);
    }

    fn request(&mut self, node: NodeId, id: RequestId, home: NodeId, request: Request) {
        let home = Some(home);
        let mut out = NodeOutput::at(0);
        self.nodes
            .get_mut(&node)
            .unwrap()
            .handle_request(CLIENT, id, home, request, &mut out);
        self.carry_out(node, out);
    }

    fn txn(&mut self, node: NodeId, id: RequestId, pairs: &[(&str, &str)]) {
        let writes = pairs.iter().map(|(k, v)| (b(k), Some(b(v)))).collect();
        let request = Request::Txn {
            reads: BTreeMap::new(),
            writes,
        };
        self.request(node, id, node, request);
    }

    /// A client's read of `key` at `node`, as request `id`.
    fn read(&mut self, node: NodeId, id: RequestId, key: &str) {
        let keys = vec![b(key)];
        self.request(node, id, node, Request::Read { keys });
    }

    /// An in-process caller's read of `key` at `node` (as the RESP
    /// endpoint calls its node), as request `id`.
    fn local_read(&mut self, node: NodeId, id: RequestId, key: &str) {
        let keys = vec![b(key)];
        let mut out = NodeOutput::at(0);
        self.nodes.get_mut(&node).unwrap().handle_local(
            CLIENT,
            id,
            Request::Read { keys },
            &mut out,
        );
        self.carry_out(node, out);
    }

    /// Whether a `Read` to `node` is in flight.
    fn read_sent_to(&self, node: NodeId) -> bool {
        self.queue
            .iter()
            .any(|(_, to, msg)| *to == node && matches!(msg, NodeMsg::Read { .. }))
    }

    fn replies(&self, id: RequestId) -> Vec<&Reply> {
        self.to_clients
            .iter()
            .filter(|(client, i, _)| *client == CLIENT && *i == id)
            .map(|(_, _, reply)| reply)
            .collect()
    }

    fn outcome(&self, id: RequestId) -> (TxnId, Outcome) {
        match self.replies(id).last() {
            Some(Reply::Txn { txn, outcome, .. }) => (*txn, *outcome),
            other => panic!("expected a transaction reply to {id}, got {other:?}"),
        }
    }

    /// Node `observer` hears nothing from `silent` during `checks` detector
    /// checks (a partition; `silent` hears nothing either), while every other
    /// node heartbeats as usual.
    fn silence(&mut self, observer: NodeId, silent: NodeId, checks: usize) {
        let cut = |from: NodeId, to: NodeId| from == silent || to == silent;
        let others: Vec<NodeId> = self
            .nodes
            .keys()
            .copied()
            .filter(|id| *id != silent)
            .collect();
        for _ in 0..checks {
            for id in &others {
                self.fire(*id, NodeTimer::Detector(DetectorTimer::Heartbeat));
            }
            self.fire(observer, NodeTimer::Detector(DetectorTimer::Check));
            while let Some((from, to, msg)) = self.queue.pop_front() {
                if !cut(from, to) {
                    self.step(from, to, msg);
                }
            }
        }
    }

    /// A key whose replicas are `replicas`, in that order.
    fn key_on(&self, replicas: &[NodeId]) -> String {
        let placement = self.nodes.values().next().unwrap().placement().clone();
        (0..)
            .map(|i| format!("k{i}"))
            .find(|key| placement.holders(key.as_bytes()) == replicas)
            .unwrap()
    }

    /// A key whose first replica is each node.
    fn keys_by_owner(&self) -> BTreeMap<NodeId, String> {
        let placement = self.nodes.values().next().unwrap().placement().clone();
        let mut keys = BTreeMap::new();
        for i in 0.. {
            let key = format!("k{i}");
            keys.entry(placement.holders(key.as_bytes())[0])
                .or_insert(key);
            if keys.len() == placement.members().len() {
                break;
            }
        }
        keys
    }
}

#[test]
fn a_transaction_commits_at_every_replica_and_is_answered() {
    let mut cluster = Cluster::start(3, 2);
    let keys = cluster.keys_by_owner();
    let pairs: Vec<(&str, &str)> = keys.values().map(|k| (k.as_str(), "v")).collect();
    cluster.txn(n(1), 7, &pairs);
    cluster.run();
    let (txn, outcome) = cluster.outcome(7);
    assert_eq!(outcome, Outcome::Commit);
    assert_eq!(txn.node(), n(1));
    for key in keys.values() {
        let replicas = cluster.nodes[&n(1)].placement().holders(key.as_bytes());
        assert_eq!(replicas.len(), 2);
        for replica in replicas {
            let stored = cluster.disk[&replica].participant.store.get(key.as_bytes());
            assert_eq!(
                stored.map(|v| (&v.value[..], v.version)),
                Some((&b"v"[..], txn))
            );
        }
    }
    // The coordinator forgot it once everyone acknowledged; its answer stays.
    assert!(cluster.disk[&n(1)].coordinator.commits.is_empty());
    assert_eq!(
        cluster.disk[&n(1)]
            .answers
            .get(CLIENT)
            .map(|a| (a.txn, a.outcome)),
        Some((txn, Outcome::Commit))
    );
}

#[test]
fn a_commit_answer_rests_on_the_commit_record_that_carries_the_request() {
    let mut cluster = Cluster::start(2, 1);
    let keys = cluster.keys_by_owner();
    cluster.txn(n(1), 1, &[(&keys[&n(2)], "x")]);
    let (from, to, prepare) = cluster.queue.pop_front().unwrap();
    let out = cluster.deliver(from, to, prepare);
    let (_, vote) = out.send_after_persist[0].clone();
    // The last Yes vote: the commit record with the request, and the answer
    // held back until it is durable.
    let out = cluster.deliver(n(2), n(1), vote);
    assert!(out.persist.iter().any(|delta| matches!(delta,
        NodeDelta::Commit(commit::Delta::Coordinator(commit::CoordinatorDelta::Committed {
            origin: Some(origin), ..
        })) if origin.client == CLIENT && origin.request == 1)));
    assert!(out.send_after_persist.iter().any(
        |(to, msg)| *to == Dest::Client(CLIENT) && matches!(msg, NodeMsg::Reply { id: 1, .. })
    ));
    assert!(
        out.send_now
            .iter()
            .all(|(to, _)| *to != Dest::Client(CLIENT))
    );
}

#[test]
fn a_write_to_a_locked_key_waits_for_the_holder_then_commits() {
    let mut cluster = Cluster::start(2, 1);
    let keys = cluster.keys_by_owner();
    let key = keys[&n(2)].clone();
    cluster.txn(n(1), 1, &[(&key, "a")]);
    // Deliver the first Prepare only: node 2 holds the lock.
    let (from, to, prepare) = cluster.queue.pop_front().unwrap();
    cluster.step(from, to, prepare);
    let held: Vec<_> = cluster.queue.drain(..).collect();
    cluster.txn(n(1), 2, &[(&key, "b")]);
    cluster.run();
    // The second waits at node 2 rather than being refused: no answer yet.
    assert!(cluster.replies(2).is_empty(), "{:?}", cluster.replies(2));
    cluster.queue.extend(held);
    cluster.run();
    assert_eq!(cluster.outcome(1).1, Outcome::Commit);
    assert_eq!(cluster.outcome(2).1, Outcome::Commit);
    let owner = cluster.nodes[&n(2)].participant();
    assert_eq!(owner.committed(key.as_bytes()).unwrap().value, b("b"));
}

#[test]
fn a_read_validated_at_prepare_refuses_a_changed_key() {
    let mut cluster = Cluster::start(2, 2);
    cluster.txn(n(1), 1, &[("k", "1")]);
    cluster.run();
    let (first, _) = cluster.outcome(1);
    cluster.txn(n(2), 2, &[("k", "2")]);
    cluster.run();
    // A read-modify-write that read version `first`: refused, the key moved.
    let request = Request::Txn {
        reads: BTreeMap::from([(b("k"), Some(first))]),
        writes: BTreeMap::from([(b("k"), Some(b("3")))]),
    };
    cluster.request(n(1), 3, n(1), request);
    cluster.run();
    assert!(matches!(
        cluster.replies(3).last(),
        Some(Reply::Txn {
            outcome: Outcome::Abort,
            reason: Some(AbortReason::Refused {
                refusal: Refusal::Changed { .. },
                ..
            }),
            ..
        })
    ));
}

#[test]
fn a_retry_runs_no_second_transaction_even_after_the_home_restarts() {
    let mut cluster = Cluster::start(2, 1);
    let keys = cluster.keys_by_owner();
    cluster.txn(n(1), 5, &[(&keys[&n(2)], "x")]);
    cluster.txn(n(1), 5, &[(&keys[&n(2)], "x")]); // a retry while running
    cluster.run();
    assert_eq!(cluster.replies(5).len(), 1);
    let (txn, outcome) = cluster.outcome(5);
    assert_eq!(outcome, Outcome::Commit);
    // The answer is durable: a retry after a crash is told the same.
    cluster.crash_and_restart(n(1));
    cluster.run();
    cluster.txn(n(1), 5, &[(&keys[&n(2)], "x")]);
    cluster.run();
    assert_eq!(cluster.outcome(5), (txn, Outcome::Commit));
    assert_eq!(cluster.nodes[&n(1)].coordinator().txns().len(), 0);
    // A late copy of an older request is ignored.
    cluster.txn(n(1), 4, &[(&keys[&n(2)], "old")]);
    cluster.run();
    assert!(cluster.replies(4).is_empty());
}

#[test]
fn a_retry_at_another_node_is_relayed_to_its_home() {
    let mut cluster = Cluster::start(2, 1);
    let writes = BTreeMap::from([(b("k"), Some(b("v")))]);
    let txn_request = |writes: &BTreeMap<Bytes, Option<Bytes>>| Request::Txn {
        reads: BTreeMap::new(),
        writes: writes.clone(),
    };
    cluster.request(n(1), 9, n(1), txn_request(&writes));
    cluster.request(n(2), 9, n(1), txn_request(&writes)); // the retry, at node 2
    cluster.run();
    // One transaction, answered once, by the route the client used last.
    assert_eq!(cluster.replies(9).len(), 1);
    let (txn, outcome) = cluster.outcome(9);
    assert_eq!((txn.node(), outcome), (n(1), Outcome::Commit));
    assert_eq!(
        cluster.nodes[&n(1)].coordinator().incarnation(),
        txn.incarnation()
    );
    // A retry at node 2 after the answer: relayed, answered from the table.
    cluster.request(n(2), 9, n(1), txn_request(&writes));
    cluster.run();
    assert_eq!(cluster.replies(9).len(), 2);
    assert_eq!(cluster.outcome(9), (txn, Outcome::Commit));
}

#[test]
fn an_empty_transaction_is_refused() {
    let mut cluster = Cluster::start(2, 1);
    cluster.txn(n(1), 1, &[]);
    assert!(matches!(cluster.replies(1)[..], [Reply::Refused { .. }]));
}

#[test]
fn a_read_waits_for_a_prepared_writer_then_sees_its_commit() {
    let mut cluster = Cluster::start(2, 2);
    cluster.txn(n(1), 1, &[("k", "old")]);
    cluster.run();
    cluster.txn(n(1), 2, &[("k", "new")]);
    // Deliver both Prepares and the votes, but hold every Outcome.
    let held = cluster.run_holding_outcomes();
    // The client was told "committed"; node 2 has not learned it yet.
    assert_eq!(cluster.outcome(2).1, Outcome::Commit);
    cluster.request(n(2), 3, n(2), Request::Read { keys: vec![b("k")] });
    cluster.run();
    assert!(
        cluster.replies(3).is_empty(),
        "the read waits for the prepared writer"
    );
    cluster.queue.extend(held);
    cluster.run();
    let Some(Reply::Values(values)) = cluster.replies(3).last() else {
        panic!("no values")
    };
    assert_eq!(
        values[0].1.as_ref().map(|v| &v.value[..]),
        Some(&b"new"[..])
    );
}

#[test]
fn a_read_repeated_while_it_waits_is_parked_once_and_answered_once() {
    let mut cluster = Cluster::start(2, 2);
    cluster.txn(n(1), 1, &[("k", "new")]);
    // Deliver the Prepares and the votes, but hold every Outcome.
    let held = cluster.run_holding_outcomes();
    // The network duplicates node 1's Read of `k` five times; node 2 has `k`
    // prepared, so each copy waits.
    let read = NodeMsg::Read {
        client: 7,
        id: 1,
        keys: vec![b("k")],
        epoch: 1,
    };
    for _ in 0..5 {
        let out = cluster.deliver(n(1), n(2), read.clone());
        assert!(out.send_now.is_empty(), "the read waits for the writer");
    }
    // The outcome releases one read, not five.
    let mut replies = 0;
    for (from, to, msg) in held.into_iter().filter(|(_, to, _)| *to == n(2)) {
        let out = cluster.deliver(from, to, msg);
        let all = out.send_now.iter().chain(&out.send_after_persist);
        replies += all
            .filter(|(_, msg)| {
                matches!(
                    msg,
                    NodeMsg::ReadReply {
                        client: 7,
                        id: 1,
                        ..
                    }
                )
            })
            .count();
    }
    assert_eq!(replies, 1);
}

#[test]
fn queries_reach_the_coordinator_only_for_its_own_transactions() {
    let mut cluster = Cluster::start(2, 1);
    let keys = cluster.keys_by_owner();
    cluster.txn(n(1), 1, &[(&keys[&n(2)], "x")]);
    cluster.run();
    let (txn, _) = cluster.outcome(1);
    // Node 2 asks node 1, the coordinator, which forgot it: presumed abort
    // answers (node 2 already has the commit and ignores it).
    let out = cluster.deliver(n(2), n(1), NodeMsg::Commit(Msg::Query { txn }));
    assert!(
        matches!(&out.send_now[..], [(Dest::Node(to), NodeMsg::Commit(Msg::Outcome { outcome: Outcome::Abort, .. }))] if *to == n(2))
    );
    // Node 1 asks node 2 about node 1's transaction: node 2 is only a peer and
    // answers from what it learned — here nothing, since it forgot nothing yet
    // and decided Commit.
    let out = cluster.deliver(n(1), n(2), NodeMsg::Commit(Msg::Query { txn }));
    assert!(matches!(
        &out.send_now[..],
        [(
            _,
            NodeMsg::Commit(Msg::Outcome {
                outcome: Outcome::Commit,
                ..
            })
        )]
    ));
}

#[test]
fn participants_forget_finished_transactions_and_refuse_their_late_prepares() {
    let mut cluster = Cluster::start(2, 2);
    cluster.txn(n(1), 1, &[("k", "1")]);
    cluster.run();
    let (first, _) = cluster.outcome(1);
    assert_eq!(
        cluster.disk[&n(2)].participant.txns.get(&first),
        Some(&TxnRecord::Decided(Outcome::Commit))
    );
    // The next transaction's Prepare carries the watermark past the first.
    cluster.txn(n(1), 2, &[("k", "2")]);
    cluster.run();
    assert!(!cluster.disk[&n(2)].participant.txns.contains_key(&first));
    // A late copy of the first Prepare is refused, not prepared again.
    let late = Msg::Prepare {
        txn: first,
        reads: BTreeMap::new(),
        writes: BTreeMap::from([(b("k"), Some(b("1")))]),
        peers: vec![n(1)],
        finished_below: first,
    };
    let out = cluster.deliver(n(1), n(2), NodeMsg::Commit(late));
    assert!(out.persist.is_empty());
    assert!(matches!(
        &out.send_now[..],
        [(
            _,
            NodeMsg::Commit(Msg::Vote {
                vote: Vote::No(Refusal::Finished),
                ..
            })
        )]
    ));
}

#[test]
fn transaction_ids_are_unique_across_restarts() {
    let mut cluster = Cluster::start(2, 1);
    cluster.txn(n(1), 1, &[("a", "1")]);
    cluster.run();
    let (before, _) = cluster.outcome(1);
    cluster.crash_and_restart(n(1));
    cluster.run();
    cluster.txn(n(1), 2, &[("a", "2")]);
    cluster.run();
    let (after, _) = cluster.outcome(2);
    assert_eq!(after.incarnation(), before.incarnation() + 1);
    assert!(after > before);
}

#[test]
fn peers_are_unknown_until_heard_and_a_restarted_node_is_alive_again() {
    let mut cluster = Cluster::start(2, 1);
    cluster.crash_and_restart(n(1));
    // Node 1's new life has not heard from node 2 yet.
    assert_eq!(
        cluster.nodes[&n(1)].member_status(n(2)),
        MemberStatus::Unknown
    );
    assert_eq!(cluster.nodes[&n(1)].member_status(n(1)), MemberStatus::Me);
    cluster.fire(n(2), NodeTimer::Detector(DetectorTimer::Heartbeat));
    cluster.run();
    assert_eq!(
        cluster.nodes[&n(1)].member_status(n(2)),
        MemberStatus::Alive
    );
    // Node 2 falls silent (a partition: node 1's suspicion never reaches it)
    // until node 1 declares it Dead.
    for _ in 0..30 {
        cluster.fire(n(1), NodeTimer::Detector(DetectorTimer::Check));
        cluster.queue.clear();
    }
    assert_eq!(cluster.nodes[&n(1)].member_status(n(2)), MemberStatus::Dead);
    // It restarts: its announcement and new heartbeats make it Alive again,
    // and stay taken although their sequence numbers start over.
    cluster.crash_and_restart(n(2));
    cluster.run();
    for _ in 0..3 {
        cluster.fire(n(2), NodeTimer::Detector(DetectorTimer::Heartbeat));
        cluster.run();
        cluster.fire(n(1), NodeTimer::Detector(DetectorTimer::Check));
    }
    assert_eq!(
        cluster.nodes[&n(1)].member_status(n(2)),
        MemberStatus::Alive
    );
}

#[test]
fn status_lists_every_member() {
    let mut cluster = Cluster::start(3, 2);
    cluster.request(n(2), 1, n(2), Request::Status);
    let Some(Reply::Status(status)) = cluster.replies(1).last() else {
        panic!("no status")
    };
    assert_eq!(status.node, 2);
    assert_eq!(status.replicas, 2);
    assert_eq!(
        status.members.keys().copied().collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
}

#[test]
fn bad_configurations_are_refused() {
    let mut out = NodeOutput::at(0);
    let config = NodeConfig::new(n(4), vec![n(1), n(2)], 1);
    assert_eq!(
        Node::recover(&config, NodeRecord::default(), &mut out).unwrap_err(),
        NodeError::NotAMember(n(4))
    );
    let config = NodeConfig::new(n(1), vec![n(1), n(1)], 1);
    assert_eq!(
        Node::recover(&config, NodeRecord::default(), &mut out).unwrap_err(),
        NodeError::DuplicateMember(n(1))
    );
    let mut config = NodeConfig::new(n(1), vec![n(1)], 1);
    config.timing.resend_every = std::time::Duration::ZERO..std::time::Duration::ZERO;
    assert_eq!(
        Node::recover(&config, NodeRecord::default(), &mut out).unwrap_err(),
        NodeError::BadTimer("resend_every")
    );
    let mut config = NodeConfig::new(n(1), vec![n(1), n(2)], 2);
    for after in [0, AUTO_REMOVE_MS - 1] {
        config.auto_remove_after = Some(after);
        assert_eq!(
            Node::recover(&config, NodeRecord::default(), &mut out).unwrap_err(),
            NodeError::AutoRemoveTooSoon {
                after,
                declared: AUTO_REMOVE_MS
            }
        );
    }
    config.auto_remove_after = Some(AUTO_REMOVE_MS);
    assert!(Node::recover(&config, NodeRecord::default(), &mut out).is_ok());
    config.replicas = 1;
    assert_eq!(
        Node::recover(&config, NodeRecord::default(), &mut out).unwrap_err(),
        NodeError::AutoRemoveOneReplica
    );
}

#[test]
fn a_read_moves_off_a_replica_that_falls_under_suspicion() {
    let mut cluster = Cluster::start(3, 2);
    let key = cluster.key_on(&[n(3), n(2)]);
    cluster.txn(n(2), 1, &[(&key, "v")]);
    cluster.run();
    // Node 1 asks node 3, which never answers, and comes to suspect it.
    cluster.read(n(1), 2, &key);
    assert!(matches!(
        cluster.queue.pop_front(),
        Some((_, to, NodeMsg::Read { .. })) if to == n(3)
    ));
    cluster.silence(n(1), n(3), 30);
    assert!(cluster.replies(2).is_empty());
    assert!(!cluster.nodes[&n(1)].reachable(n(3)));
    assert_eq!(
        cluster.nodes[&n(1)].member_status(n(2)),
        MemberStatus::Alive
    );
    // The client's retry moves the read to node 2.
    cluster.read(n(1), 2, &key);
    cluster.run();
    let Some(Reply::Values(values)) = cluster.replies(2).last() else {
        panic!("no values: {:?}", cluster.replies(2))
    };
    assert_eq!(values[0].1.as_ref().map(|v| &v.value[..]), Some(&b"v"[..]));
}

#[test]
fn a_read_whose_replicas_are_all_suspected_names_them() {
    let mut cluster = Cluster::start(3, 1);
    let key = cluster.key_on(&[n(3)]);
    cluster.read(n(1), 1, &key);
    cluster.queue.clear(); // node 3 never answers
    cluster.silence(n(1), n(3), 30);
    let status = cluster.nodes[&n(1)].member_status(n(3));
    assert!(matches!(status, MemberStatus::Suspect | MemberStatus::Dead));
    let expected = Reply::Unreachable(Unreachable {
        node: 1,
        key: b(&key),
        replicas: vec![ReplicaState {
            node: 3,
            status,
            address: None,
        }],
    });
    // A retry of the read under way is answered at once…
    cluster.read(n(1), 1, &key);
    assert_eq!(cluster.replies(1), [&expected]);
    // …and so is a new read: nothing is sent to a suspected replica.
    cluster.read(n(1), 2, &key);
    assert_eq!(cluster.replies(2), [&expected]);
    assert!(cluster.queue.is_empty());
    let Reply::Unreachable(unreachable) = expected else {
        unreachable!()
    };
    let text = unreachable.to_string();
    assert!(
        text.starts_with(&format!(
            "node 1 cannot reach any replica of key \"{key}\": node 3 "
        )),
        "{text}"
    );
}

// --- membership ----------------------------------------------------------------

impl Cluster {
    /// Boots `id` as a node waiting to join.
    fn boot_joiner(&mut self, id: NodeId, replicas: usize) {
        let mut config = NodeConfig::new(id, vec![id], replicas);
        config.join = true;
        self.configs.insert(id, config);
        self.boot(id);
    }

    /// Writes `count` keys through `node`, one transaction each, from request `first` on.
    fn fill(&mut self, node: NodeId, first: RequestId, count: u64) -> Vec<String> {
        let keys: Vec<String> = (0..count).map(|i| format!("key{i}")).collect();
        for (i, key) in keys.iter().enumerate() {
            let id = first + i as u64;
            self.txn(node, id, &[(key, &format!("v{i}"))]);
            self.run();
            assert_eq!(self.outcome(id).1, Outcome::Commit);
        }
        keys
    }

    /// Every live node holds exactly the keys its ring gives it, each with
    /// the value written.
    fn assert_placed(&self, keys: &[String]) {
        for (id, node) in &self.nodes {
            let placement = node.placement();
            for (i, key) in keys.iter().enumerate() {
                let held = node.participant().committed(key.as_bytes());
                if placement.holds(key.as_bytes(), *id) {
                    let value = held.map(|v| v.value.clone());
                    assert_eq!(value, Some(b(&format!("v{i}"))), "{key} at node {id}");
                } else {
                    assert!(
                        held.is_none(),
                        "{key} left at node {id}, which no longer holds it"
                    );
                }
            }
        }
    }
}

#[test]
fn a_joining_node_takes_over_its_keys_and_serves_them() {
    let mut cluster = Cluster::start(2, 2);
    let keys = cluster.fill(n(1), 1, 40);
    cluster.boot_joiner(n(3), 2);
    // A joining node serves no client before it is a member.
    cluster.read(n(3), 100, "key0");
    assert!(matches!(cluster.replies(100)[..], [Reply::Refused { .. }]));
    let join = Request::Join {
        node: 3,
        address: "127.0.0.1:7003".into(),
    };
    cluster.request(n(2), 101, n(2), join);
    cluster.run();
    assert_eq!(cluster.outcome(101).1, Outcome::Commit);
    for node in cluster.nodes.values() {
        assert_eq!(node.placement().epoch(), 2);
        assert_eq!(node.placement().members(), [n(1), n(2), n(3)]);
        assert_eq!(
            node.status().handoff,
            None,
            "node {} still moving",
            node.me()
        );
    }
    assert!(cluster.nodes[&n(3)].status().member);
    let moved = keys
        .iter()
        .filter(|key| cluster.nodes[&n(3)].placement().holds(key.as_bytes(), n(3)))
        .count();
    assert!(moved > 0, "node 3 holds none of 40 keys");
    cluster.assert_placed(&keys);
    // Every key reads back through the new node.
    for (i, key) in keys.iter().enumerate() {
        cluster.read(n(3), 200 + i as u64, key);
        cluster.run();
        let values = cluster.replies(200 + i as u64);
        assert!(
            matches!(values[..], [Reply::Values(v)] if v[0].1.as_ref().map(|v| v.value.clone()) == Some(b(&format!("v{i}")))),
            "{key}: {values:?}"
        );
    }
    // A retried join is answered from the answer table, not run again.
    let join = Request::Join {
        node: 3,
        address: "127.0.0.1:7003".into(),
    };
    cluster.request(n(2), 101, n(2), join);
    cluster.run();
    assert_eq!(cluster.replies(101).len(), 2);
    assert_eq!(cluster.nodes[&n(1)].placement().epoch(), 2);
}

#[test]
fn a_leaving_node_hands_over_its_keys_and_departs() {
    let mut cluster = Cluster::start(3, 1);
    let keys = cluster.fill(n(1), 1, 30);
    cluster.request(n(3), 100, n(3), Request::Leave { node: 3 });
    cluster.run();
    assert_eq!(cluster.outcome(100).1, Outcome::Commit);
    let leaver = &cluster.nodes[&n(3)];
    assert_eq!(leaver.placement().members(), [n(1), n(2)]);
    assert!(!leaver.status().member);
    assert_eq!(leaver.status().keys, 0, "the leaver kept keys");
    cluster.assert_placed(&keys);
    let held: u64 = [n(1), n(2)]
        .iter()
        .map(|id| cluster.nodes[id].status().keys)
        .sum();
    assert_eq!(
        held, 30,
        "with one replica, the two members hold every key once"
    );
}

#[test]
fn a_leaving_node_departs_only_once_its_participants_know_its_outcomes_and_begins_no_more() {
    let mut cluster = Cluster::start(3, 2);
    // Node 3 coordinates a transaction on a key of nodes 1 and 2, and decides
    // it; its Outcome messages are held back.
    let key = cluster.key_on(&[n(1), n(2)]);
    cluster.txn(n(3), 1, &[(&key, "v")]);
    let mut held = Vec::new();
    while let Some((from, to, msg)) = cluster.queue.pop_front() {
        if from == n(3) && matches!(msg, NodeMsg::Commit(Msg::Outcome { .. })) {
            held.push((from, to, msg));
        } else {
            cluster.step(from, to, msg);
        }
    }
    assert_eq!(cluster.outcome(1).1, Outcome::Commit);
    assert_eq!(held.len(), 2, "{held:?}");
    // Node 3 leaves, and hands over its keys.
    cluster.request(n(3), 2, n(3), Request::Leave { node: 3 });
    cluster.run();
    assert_eq!(cluster.outcome(2).1, Outcome::Commit);
    assert!(!cluster.nodes[&n(3)].status().member);
    assert_eq!(cluster.nodes[&n(3)].status().handoff, None);
    assert!(
        cluster.departed.is_empty(),
        "node 3 departed while nodes 1 and 2 wait for its outcome"
    );
    // A transaction sent to it now is refused: it begins no new one.
    cluster.txn(n(3), 3, &[(&key, "w")]);
    cluster.run();
    assert!(
        matches!(cluster.replies(3)[..], [Reply::Refused { .. }]),
        "{:?}",
        cluster.replies(3)
    );
    // Once its participants have the outcome and acknowledge it, it departs.
    cluster.queue.extend(held);
    cluster.run();
    assert_eq!(cluster.departed, [n(3)]);
    assert_eq!(cluster.nodes[&n(3)].status().coordinating, 0);
    for id in [n(1), n(2)] {
        assert_eq!(cluster.nodes[&id].status().prepared, 0, "node {id}");
        let value = cluster.nodes[&id].participant().committed(key.as_bytes());
        assert_eq!(value.map(|v| v.value.clone()), Some(b("v")), "node {id}");
    }
}

#[test]
fn a_removed_node_is_rebuilt_from_the_surviving_replicas() {
    let mut cluster = Cluster::start(3, 2);
    let keys = cluster.fill(n(1), 1, 30);
    // Node 3 is gone for good, its disk with it.
    cluster.nodes.remove(&n(3));
    cluster.disk.remove(&n(3));
    cluster.request(n(1), 100, n(1), Request::Remove { node: 3 });
    cluster.run();
    assert_eq!(cluster.outcome(100).1, Outcome::Commit);
    for id in [n(1), n(2)] {
        assert_eq!(cluster.nodes[&id].placement().members(), [n(1), n(2)]);
        assert_eq!(cluster.nodes[&id].status().keys, 30);
    }
    cluster.assert_placed(&keys);
}

#[test]
fn a_ring_change_needs_every_member_and_a_refused_one_changes_nothing() {
    let mut cluster = Cluster::start(3, 2);
    // Node 3 is down: the removal of node 2 cannot gather its vote.
    cluster.nodes.remove(&n(3));
    cluster.request(n(1), 1, n(1), Request::Leave { node: 2 });
    cluster.run();
    assert!(cluster.replies(1).is_empty(), "decided without node 3");
    let txn = *cluster.nodes[&n(1)]
        .coordinator()
        .txns()
        .keys()
        .next()
        .unwrap();
    cluster.fire(n(1), NodeTimer::Commit(commit::Timer::VoteTimeout(txn)));
    cluster.run();
    assert_eq!(cluster.outcome(1).1, Outcome::Abort);
    for id in [n(1), n(2)] {
        assert_eq!(cluster.nodes[&id].placement().epoch(), 1);
    }
    // Nonsense is refused with a reason.
    cluster.request(n(1), 2, n(1), Request::Remove { node: 1 });
    cluster.request(n(1), 3, n(1), Request::Leave { node: 9 });
    cluster.request(
        n(1),
        4,
        n(1),
        Request::Join {
            node: 2,
            address: String::new(),
        },
    );
    for id in 2..=4 {
        assert!(
            matches!(cluster.replies(id)[..], [Reply::Refused { .. }]),
            "{id}"
        );
    }
}

#[test]
fn a_prepare_planned_on_an_older_epoch_is_refused_and_its_client_told_aborted() {
    let mut cluster = Cluster::start(2, 2);
    cluster.boot_joiner(n(3), 2);
    // A transaction is planned on epoch 1; its Prepares are held back.
    cluster.txn(n(1), 1, &[("k", "old")]);
    let held: Vec<_> = cluster.queue.drain(..).collect();
    let join = Request::Join {
        node: 3,
        address: String::new(),
    };
    cluster.request(n(2), 2, n(2), join);
    cluster.run();
    assert_eq!(cluster.outcome(2).1, Outcome::Commit);
    for (from, to, msg) in held {
        cluster.step(from, to, msg);
    }
    cluster.run();
    let (_, outcome) = cluster.outcome(1);
    assert_eq!(outcome, Outcome::Abort);
    assert!(
        matches!(
            cluster.replies(1)[..],
            [Reply::Txn {
                reason: Some(commit::AbortReason::Refused {
                    refusal: Refusal::Epoch {
                        planned: 1,
                        current: 2
                    },
                    ..
                }),
                ..
            }]
        ),
        "{:?}",
        cluster.replies(1)
    );
    // Retried as a new request, it commits on epoch 2.
    cluster.txn(n(1), 3, &[("k", "new")]);
    cluster.run();
    assert_eq!(cluster.outcome(3).1, Outcome::Commit);
}

#[test]
fn clients_may_not_touch_the_ring_key() {
    let mut cluster = Cluster::start(1, 1);
    let request = Request::Txn {
        reads: BTreeMap::new(),
        writes: [(Bytes::from_static(RING_KEY), Some(b("x")))].into(),
    };
    cluster.request(n(1), 1, n(1), request);
    assert!(matches!(cluster.replies(1)[..], [Reply::Refused { .. }]));
}

#[test]
fn a_joined_node_that_restarts_keeps_what_was_written_to_its_new_keys() {
    let mut cluster = Cluster::start(1, 1);
    cluster.boot_joiner(n(2), 1);
    let join = Request::Join {
        node: 2,
        address: String::new(),
    };
    cluster.request(n(1), 1, n(1), join);
    cluster.run();
    assert_eq!(cluster.outcome(1).1, Outcome::Commit);
    // A key node 2 holds since the join, written after its handoff ended.
    let key = (0..)
        .map(|i| format!("k{i}"))
        .find(|key| cluster.nodes[&n(2)].placement().holds(key.as_bytes(), n(2)))
        .unwrap();
    cluster.txn(n(1), 2, &[(&key, "after")]);
    cluster.run();
    assert_eq!(cluster.outcome(2).1, Outcome::Commit);
    // Recovery installs the stored ring again; the write must survive it.
    cluster.crash_and_restart(n(2));
    cluster.run();
    let value = cluster.nodes[&n(2)]
        .participant()
        .committed(key.as_bytes())
        .map(|v| v.value.clone());
    assert_eq!(value, Some(b("after")));
}

#[test]
fn a_joining_node_learns_that_a_join_its_coordinator_forgot_in_a_restart_aborted() {
    let mut cluster = Cluster::start(1, 1);
    cluster.boot_joiner(n(2), 1);
    let join = || Request::Join {
        node: 2,
        address: String::new(),
    };
    cluster.request(n(1), 1, n(1), join());
    // Both prepare the ring change; the votes are lost and node 1 restarts
    // before deciding, forgetting the change (presumed abort).
    let prepares: Vec<_> = cluster.queue.drain(..).collect();
    for (from, to, msg) in prepares {
        cluster.step(from, to, msg);
    }
    cluster.queue.clear();
    let txn = cluster.nodes[&n(2)]
        .participant()
        .prepared()
        .next()
        .unwrap();
    cluster.crash_and_restart(n(1));
    cluster.run();
    // Node 2 is no member of node 1's ring, yet its query is answered.
    for id in [n(1), n(2)] {
        cluster.fire(id, NodeTimer::Commit(commit::Timer::Uncertain(txn)));
        cluster.run();
    }
    assert_eq!(cluster.nodes[&n(2)].participant().prepared().count(), 0);
    // Its ring key is free again: the join, asked again, commits.
    cluster.request(n(1), 2, n(1), join());
    cluster.run();
    assert_eq!(cluster.outcome(2).1, Outcome::Commit);
    assert_eq!(cluster.nodes[&n(2)].placement().epoch(), 2);
}

#[test]
fn a_node_removed_while_down_is_fenced_off_by_the_first_heartbeat_it_sends() {
    let mut cluster = Cluster::start(3, 2);
    // Node 3 is down; the others remove it.
    cluster.nodes.remove(&n(3));
    cluster.request(n(1), 1, n(1), Request::Remove { node: 3 });
    cluster.run();
    assert_eq!(cluster.outcome(1).1, Outcome::Commit);
    // It restarts on its old data, at epoch 1, believing itself a member.
    cluster.boot(n(3));
    cluster.run();
    assert_eq!(cluster.nodes[&n(3)].placement().epoch(), 1);
    // Its first heartbeat is answered: a member runs epoch 2 without it.
    cluster.fire(n(3), NodeTimer::Detector(DetectorTimer::Heartbeat));
    cluster.run();
    assert!(
        cluster
            .events
            .iter()
            .any(|(id, event)| *id == n(3) && matches!(event, NodeEvent::Fenced { epoch: 2, .. })),
        "{:?}",
        cluster.events
    );
    // It serves nothing any more, and says why.
    cluster.request(n(3), 2, n(3), Request::Read { keys: vec![b("k")] });
    assert!(
        matches!(&cluster.replies(2)[..], [Reply::Refused { reason }] if reason.contains("removed")),
        "{:?}",
        cluster.replies(2)
    );
    // A member that has not seen the change, or a joining node ahead of it,
    // is not fenced: only a later epoch from a member of its own ring counts.
    let mut out = NodeOutput::at(0);
    let node = cluster.nodes.get_mut(&n(1)).unwrap();
    node.handle_message(n(2), NodeMsg::NotMember { epoch: 2 }, &mut out);
    node.handle_message(n(3), NodeMsg::NotMember { epoch: 9 }, &mut out);
    assert!(out.events.is_empty(), "{:?}", out.events);
}

// --- automatic removal ---------------------------------------------------------

/// The shortest `auto_remove_after` the default timing allows: its failure
/// and suspicion timeouts together.
const AUTO_REMOVE_MS: Millis = 2000;

fn auto_removing(config: &mut NodeConfig) {
    config.auto_remove_after = Some(AUTO_REMOVE_MS);
}

impl Cluster {
    /// Node `gone` stops (its disk stays); the others beat and check until
    /// each of them holds it Dead.
    fn stop_until_dead(&mut self, gone: NodeId) {
        self.nodes.remove(&gone);
        self.armed.remove(&gone);
        for _ in 0..100 {
            let live: Vec<NodeId> = self.nodes.keys().copied().collect();
            if live
                .iter()
                .all(|id| self.nodes[id].member_status(gone) == MemberStatus::Dead)
            {
                return;
            }
            for id in live {
                self.fire(id, NodeTimer::Detector(DetectorTimer::Heartbeat));
                self.fire(id, NodeTimer::Detector(DetectorTimer::Check));
            }
            self.run();
        }
        panic!("node {gone} was never declared dead");
    }

    fn auto_removals(&self) -> Vec<(NodeId, NodeId)> {
        self.events
            .iter()
            .filter_map(|(by, event)| match event {
                NodeEvent::AutoRemoving { member } => Some((*by, *member)),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn a_member_dead_long_enough_is_removed_by_the_lowest_live_member_only() {
    let mut cluster = Cluster::start_configured(3, 2, auto_removing);
    let keys = cluster.fill(n(2), 1, 30);
    cluster.stop_until_dead(n(1));
    let remove_1 = NodeTimer::AutoRemove(n(1));
    for id in [n(2), n(3)] {
        assert!(cluster.armed[&id].contains(&remove_1), "node {id}");
    }
    // Node 3 holds node 2 alive, a lower id: it begins nothing, and watches on.
    cluster.fire(n(3), remove_1.clone());
    assert!(cluster.queue.is_empty());
    assert!(cluster.nodes[&n(3)].coordinator().txns().is_empty());
    assert!(cluster.armed[&n(3)].contains(&remove_1));
    // Node 2 removes node 1 as `haft remove` would, and answers no client.
    let answers = cluster.to_clients.len();
    cluster.fire(n(2), remove_1.clone());
    cluster.run();
    assert_eq!(cluster.auto_removals(), [(n(2), n(1))]);
    assert_eq!(cluster.to_clients.len(), answers);
    for id in [n(2), n(3)] {
        let node = &cluster.nodes[&id];
        assert_eq!(node.placement().epoch(), 2);
        assert_eq!(node.placement().members(), [n(2), n(3)]);
        assert!(
            node.status().handoff.is_none(),
            "node {id} still moving keys"
        );
        assert!(!cluster.armed[&id].contains(&remove_1), "node {id}");
    }
    cluster.assert_placed(&keys);
}

#[test]
fn a_dead_member_that_restarts_in_time_is_not_removed() {
    let mut cluster = Cluster::start_configured(3, 2, auto_removing);
    cluster.stop_until_dead(n(3));
    let remove_3 = NodeTimer::AutoRemove(n(3));
    assert!(cluster.armed[&n(1)].contains(&remove_3));
    // It restarts from its disk; its new incarnation makes it Alive again.
    cluster.crash_and_restart(n(3));
    cluster.run();
    for id in [n(1), n(2)] {
        assert_eq!(cluster.nodes[&id].member_status(n(3)), MemberStatus::Alive);
        assert!(!cluster.armed[&id].contains(&remove_3), "node {id}");
    }
    // A firing the driver had already under way removes nothing.
    cluster.fire(n(1), remove_3);
    cluster.run();
    assert!(cluster.auto_removals().is_empty());
    for id in [n(1), n(2), n(3)] {
        assert_eq!(cluster.nodes[&id].placement().epoch(), 1);
    }
}

#[test]
fn an_automatic_removal_that_aborts_is_tried_again() {
    let mut cluster = Cluster::start_configured(3, 2, auto_removing);
    cluster.stop_until_dead(n(3));
    let remove_3 = NodeTimer::AutoRemove(n(3));
    // The first attempt's Prepares are lost.
    cluster.fire(n(1), remove_3.clone());
    cluster.queue.clear();
    let txns: Vec<TxnId> = cluster.nodes[&n(1)]
        .coordinator()
        .txns()
        .keys()
        .copied()
        .collect();
    assert_eq!(txns.len(), 1);
    // While it runs, the timer begins no second one.
    cluster.fire(n(1), remove_3.clone());
    assert!(cluster.queue.is_empty());
    assert_eq!(cluster.nodes[&n(1)].coordinator().txns().len(), 1);
    // Its votes never come: it aborts, and the member stays watched.
    cluster.fire(n(1), NodeTimer::Commit(commit::Timer::VoteTimeout(txns[0])));
    cluster.run();
    assert_eq!(cluster.nodes[&n(1)].placement().epoch(), 1);
    assert!(cluster.armed[&n(1)].contains(&remove_3));
    // The next firing tries again, and this time the votes come.
    cluster.fire(n(1), remove_3);
    cluster.run();
    assert_eq!(cluster.auto_removals(), [(n(1), n(3)), (n(1), n(3))]);
    for id in [n(1), n(2)] {
        assert_eq!(cluster.nodes[&id].placement().members(), [n(1), n(2)]);
    }
}

/// What [`NodeMsg::may_overtake_its_save`] rests on: of everything a
/// transaction's run sends, only the Yes votes may overtake their saves, and a
/// node answers a Yes with nothing that leaves at once (the coordinator shows
/// a vote to nobody; the decision it leads to leaves only after its save).
#[test]
fn only_a_yes_vote_may_overtake_its_save_and_its_answer_waits_for_a_save() {
    let mut cluster = Cluster::start(2, 2);
    cluster.txn(n(1), 1, &[("k", "v")]);
    let (mut seen, mut overtaking) = (0, 0);
    while let Some((from, to, msg)) = cluster.queue.pop_front() {
        seen += 1;
        let yes = matches!(
            &msg,
            NodeMsg::Commit(Msg::Vote {
                vote: Vote::Yes,
                ..
            })
        );
        assert_eq!(msg.may_overtake_its_save(), yes, "{msg:?}");
        let out = cluster.deliver(from, to, msg);
        if yes {
            overtaking += 1;
            assert!(out.send_now.is_empty(), "{out:?}");
        }
        cluster.carry_out(to, out);
    }
    // Two Prepares, two Yes votes, two Outcomes, two Acks.
    assert_eq!((seen, overtaking), (8, 2));
    assert_eq!(cluster.outcome(1).1, Outcome::Commit);
}

/// A read whose message to the key's replica is lost is answered once its
/// client retries at the same node, as haft's client does: the retry asks the
/// replica again. (It used to ask again only of a replica the detector
/// suspected, so the read waited for ever.)
#[test]
fn a_retried_read_asks_its_replica_again() {
    let mut cluster = Cluster::start(2, 1);
    let key = cluster.key_on(&[n(2)]);
    cluster.read(n(1), 1, &key);
    let lost = cluster.queue.len();
    assert!(
        cluster.read_sent_to(n(2)),
        "the read goes to the key's replica: {:?}",
        cluster.queue
    );
    cluster.queue.clear();
    assert!(cluster.nodes[&n(1)].reading(CLIENT, 1));
    assert!(cluster.replies(1).is_empty(), "{lost} messages lost");
    cluster.read(n(1), 1, &key);
    cluster.run();
    assert_eq!(cluster.replies(1), [&Reply::Values(vec![(b(&key), None)])]);
    assert!(!cluster.nodes[&n(1)].reading(CLIENT, 1));
}

/// An in-process caller never retries: the node asks the replica again on
/// its own timer, which it arms only while a key waits on another node, and
/// cancels once the read is answered. Remote clients retry, so their reads
/// arm no timer.
#[test]
fn an_in_process_read_lost_on_the_network_is_asked_again_by_the_node() {
    let mut cluster = Cluster::start(2, 1);
    let key = cluster.key_on(&[n(2)]);
    let timer = NodeTimer::Read {
        client: CLIENT,
        id: 1,
    };
    cluster.local_read(n(1), 1, &key);
    assert!(cluster.armed[&n(1)].contains(&timer), "{:?}", cluster.armed);
    cluster.queue.clear(); // The Read is lost.
    cluster.fire(n(1), timer.clone());
    assert!(
        cluster.read_sent_to(n(2)),
        "the timer asks the replica again: {:?}",
        cluster.queue
    );
    assert!(
        cluster.armed[&n(1)].contains(&timer),
        "and arms itself again"
    );
    cluster.run();
    assert_eq!(cluster.replies(1), [&Reply::Values(vec![(b(&key), None)])]);
    assert!(
        !cluster.armed[&n(1)].contains(&timer),
        "answered: cancelled"
    );

    // A key the node holds itself needs no timer; nor does a remote client.
    let own = cluster.key_on(&[n(1)]);
    cluster.local_read(n(1), 2, &own);
    cluster.read(n(1), 3, &key);
    let reads = |t: &NodeTimer| matches!(t, NodeTimer::Read { .. });
    assert!(
        !cluster.armed[&n(1)].iter().any(reads),
        "{:?}",
        cluster.armed
    );
    cluster.run();
    assert_eq!(cluster.replies(2).len(), 1);
    assert_eq!(cluster.replies(3).len(), 1);
}
