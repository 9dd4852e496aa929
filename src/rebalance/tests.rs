//! One test per rule of the handoff machine, asserting what each handler
//! saves and sends.

use std::time::Duration;

use bytes::Bytes;

use crate::output::Position;

use super::*;

const VNODES: u32 = 8;
const CLIENT: NodeId = NodeId(9);

fn config(replicas: usize) -> HandoffConfig {
    let every = Duration::from_millis(10)..Duration::from_millis(20);
    HandoffConfig {
        vnodes: VNODES,
        replicas,
        resend_every: every,
    }
}

fn ids(ids: &[u16]) -> Vec<NodeId> {
    ids.iter().copied().map(NodeId).collect()
}

/// Epoch 0 is {0, 1}; epoch 1 adds node 2.
fn first_ring() -> RingChange {
    RingChange {
        epoch: 0,
        members: ids(&[0, 1]),
        previous: Vec::new(),
    }
}

fn join() -> RingChange {
    RingChange {
        epoch: 1,
        members: ids(&[0, 1, 2]),
        previous: ids(&[0, 1]),
    }
}

/// A key whose primary is `before` at epoch 0 and `after` at epoch 1.
fn key_moving(before: u16, after: u16) -> Key {
    let old = Layout::new(0, &first_ring().members, VNODES, 1).unwrap();
    let new = Layout::new(1, &join().members, VNODES, 1).unwrap();
    (0..)
        .map(|i| Bytes::from(format!("key-{i}")))
        .find(|key| old.primary(key) == NodeId(before) && new.primary(key) == NodeId(after))
        .unwrap()
}

fn founded(me: u16, replicas: usize) -> Handoff {
    let mut out = HandoffOutput::at(0);
    let record = HandoffRecord::founded(first_ring());
    Handoff::recover(NodeId(me), config(replicas), record, &mut out).unwrap()
}

fn step(machine: &mut Handoff, from: NodeId, msg: Msg) -> HandoffOutput {
    let mut out = HandoffOutput::at(0);
    machine.handle_message(from, msg, &mut out);
    out
}

fn put(seq: u64, key: &Key, value: &str) -> Msg {
    Msg::Request {
        request: Request {
            id: RequestId {
                origin: CLIENT,
                seq,
            },
            key: key.clone(),
            op: Op::Put(Bytes::from(value.to_owned())),
        },
        forwarded: false,
    }
}

fn answer(seq: u64, reply: Reply) -> (NodeId, Msg) {
    let request = RequestId {
        origin: CLIENT,
        seq,
    };
    (CLIENT, Msg::Answer { request, reply })
}

fn version(epoch: Epoch, seq: u64) -> Version {
    Version { epoch, seq }
}

#[test]
fn a_primary_stores_a_write_and_answers_once_it_is_durable() {
    let key = key_moving(1, 2);
    let mut primary = founded(1, 1);
    let out = step(&mut primary, CLIENT, put(1, &key, "a"));
    assert_eq!(out.persist.len(), 1);
    assert!(out.send_now.is_empty());
    assert_eq!(
        out.send_after_persist,
        [answer(1, Reply::Written(version(0, 1)))]
    );
    primary.handle_persisted(out.end());
    // An overwrite gets the next version of the epoch.
    let out = step(&mut primary, CLIENT, put(2, &key, "b"));
    assert_eq!(
        out.send_after_persist,
        [answer(2, Reply::Written(version(0, 2)))]
    );
    primary.handle_persisted(out.end());
    assert_eq!(primary.held(&key).unwrap().value, Some(Bytes::from("b")));
}

#[test]
fn a_retried_write_is_answered_not_applied_and_a_late_one_is_superseded() {
    let key = key_moving(1, 2);
    let mut primary = founded(1, 1);
    for (seq, value) in [(1, "a"), (2, "b")] {
        let out = step(&mut primary, CLIENT, put(seq, &key, value));
        primary.handle_persisted(out.end());
    }
    let retry = step(&mut primary, CLIENT, put(2, &key, "b"));
    assert!(retry.persist.is_empty());
    assert_eq!(retry.send_now, [answer(2, Reply::Written(version(0, 2)))]);
    let late = step(&mut primary, CLIENT, put(1, &key, "a"));
    assert!(late.persist.is_empty());
    assert_eq!(late.send_now, [answer(1, Reply::Superseded)]);
    assert_eq!(primary.held(&key).unwrap().value, Some(Bytes::from("b")));
}

#[test]
fn an_announced_ring_is_acknowledged_once_recorded_and_a_gap_is_not() {
    let mut node = founded(0, 1);
    let skip = RingChange { epoch: 2, ..join() };
    let out = step(&mut node, CLIENT, Msg::Ring(skip));
    assert!(out.is_empty());
    let out = step(&mut node, CLIENT, Msg::Ring(join()));
    assert_eq!(
        out.send_after_persist[0],
        (CLIENT, Msg::RingAck { epoch: 1 })
    );
    assert!(matches!(out.persist[0], Delta::Queued(_)));
    node.handle_persisted(out.end());
    assert_eq!(node.epoch(), Some(1));
    // A duplicate is acknowledged again, at once.
    let out = step(&mut node, CLIENT, Msg::Ring(join()));
    assert!(out.persist.is_empty());
    assert_eq!(out.send_now, [(CLIENT, Msg::RingAck { epoch: 1 })]);
    let empty = RingChange {
        epoch: 2,
        members: Vec::new(),
        previous: ids(&[0, 1, 2]),
    };
    let out = step(&mut node, CLIENT, Msg::Ring(empty));
    assert!(out.send_now.is_empty() && out.send_after_persist.is_empty());
    assert!(matches!(
        out.events[..],
        [Event::RingRefused { epoch: 2, .. }]
    ));
}

/// Node 1 held `key` at epoch 0 and installs epoch 1, where node 2 is its
/// primary.
fn handing_over(key: &Key) -> (Handoff, HandoffOutput) {
    let mut old = founded(1, 1);
    let out = step(&mut old, CLIENT, put(1, key, "a"));
    old.handle_persisted(out.end());
    let out = step(&mut old, CLIENT, Msg::Ring(join()));
    (old, out)
}

#[test]
fn the_old_primary_hands_the_key_over_after_recording_it_and_keeps_it() {
    let key = key_moving(1, 2);
    let (old, out) = handing_over(&key);
    let handoff = out
        .send_after_persist
        .iter()
        .find(|(to, _)| *to == NodeId(2))
        .expect("a handoff to the new primary");
    let Msg::Handoff { epoch: 1, entries } = &handoff.1 else {
        panic!("{handoff:?}")
    };
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, key);
    assert!(old.is_handing(&key) && !old.serves(&key));
    assert!(old.held(&key).is_some());
    assert!(out.timers.iter().any(|op| matches!(
        op,
        crate::output::TimerOp::Set {
            timer: Timer::Resend,
            ..
        }
    )));
}

#[test]
fn a_write_to_the_old_primary_is_forwarded_not_accepted() {
    let key = key_moving(1, 2);
    let (mut old, out) = handing_over(&key);
    old.handle_persisted(out.end());
    let out = step(&mut old, CLIENT, put(2, &key, "b"));
    assert!(out.persist.is_empty());
    let Msg::Request { request, .. } = put(2, &key, "b") else {
        unreachable!()
    };
    let forwarded = Msg::Request {
        request,
        forwarded: true,
    };
    assert_eq!(out.send_now, [(NodeId(2), forwarded.clone())]);
    // Forwarded once only: a second non-primary answers Retry.
    let out = step(&mut old, NodeId(0), forwarded);
    assert_eq!(out.send_now, [answer(2, Reply::Retry)]);
}

/// Node 2 joins at epoch 1 and waits for the handoffs of nodes 0 and 1.
fn joined() -> Handoff {
    let mut out = HandoffOutput::at(0);
    let mut node =
        Handoff::recover(NodeId(2), config(1), HandoffRecord::default(), &mut out).unwrap();
    let out = step(&mut node, CLIENT, Msg::Ring(join()));
    node.handle_persisted(out.end());
    node
}

#[test]
fn the_new_primary_serves_a_key_only_once_its_handoff_arrived() {
    let key = key_moving(1, 2);
    let mut new = joined();
    assert_eq!(new.epoch(), Some(1));
    assert_eq!(
        new.record().awaiting,
        [NodeId(0), NodeId(1)].into_iter().collect()
    );
    let out = step(&mut new, CLIENT, put(2, &key, "b"));
    assert_eq!(out.send_now, [answer(2, Reply::Retry)]);

    let (mut old, handed) = handing_over(&key);
    let handoff = handed
        .send_after_persist
        .into_iter()
        .find(|(to, _)| *to == NodeId(2))
        .unwrap()
        .1;
    let out = step(&mut new, NodeId(1), handoff.clone());
    assert!(matches!(out.persist[..], [Delta::Received { .. }]));
    let ack = Msg::HandoffAck { epoch: 1 };
    assert_eq!(out.send_after_persist, [(NodeId(1), ack.clone())]);
    new.handle_persisted(out.end());
    assert!(new.serves(&key));
    assert_eq!(new.held(&key).unwrap().version, version(0, 1));
    // The next write continues from the version handed over, in epoch 1.
    let out = step(&mut new, CLIENT, put(2, &key, "b"));
    assert_eq!(
        out.send_after_persist,
        [answer(2, Reply::Written(version(1, 1)))]
    );
    // A duplicate handoff is acknowledged and changes nothing.
    new.handle_persisted(out.end());
    let out = step(&mut new, NodeId(1), handoff);
    assert!(out.persist.is_empty());
    assert_eq!(out.send_now, [(NodeId(1), ack.clone())]);
    assert_eq!(new.held(&key).unwrap().version, version(1, 1));

    // The acknowledgement releases the old primary, which drops the key.
    old.handle_persisted(Position::MAX);
    let out = step(&mut old, NodeId(2), ack);
    assert!(matches!(out.persist[..], [Delta::Released { .. }]));
    assert!(old.held(&key).is_none());
}

#[test]
fn a_node_installs_the_next_ring_only_once_it_holds_what_it_is_owed() {
    let mut new = joined();
    let leave = RingChange {
        epoch: 2,
        members: ids(&[1, 2]),
        previous: ids(&[0, 1, 2]),
    };
    let out = step(&mut new, CLIENT, Msg::Ring(leave));
    assert_eq!(
        out.send_after_persist,
        [(CLIENT, Msg::RingAck { epoch: 2 })]
    );
    new.handle_persisted(out.end());
    assert_eq!(new.epoch(), Some(1));
    assert_eq!(new.record().queued.len(), 1);
    for from in [0, 1] {
        let handoff = Msg::Handoff {
            epoch: 1,
            entries: Vec::new(),
        };
        let out = step(&mut new, NodeId(from), handoff);
        new.handle_persisted(out.end());
    }
    assert_eq!(new.epoch(), Some(2));
    assert!(new.record().queued.is_empty());
}

#[test]
fn the_resend_timer_sends_an_unacknowledged_handoff_again() {
    let key = key_moving(1, 2);
    let (mut old, out) = handing_over(&key);
    old.handle_persisted(out.end());
    let mut out = HandoffOutput::at(0);
    old.handle_timer(&Timer::Resend, &mut out);
    assert!(
        out.send_now
            .iter()
            .any(|(to, msg)| *to == NodeId(2) && matches!(msg, Msg::Handoff { epoch: 1, .. }))
    );
    assert!(out.persist.is_empty());
    // A restart sends it again too.
    let mut out = HandoffOutput::at(0);
    let record = old.record().clone();
    Handoff::recover(NodeId(1), config(1), record, &mut out).unwrap();
    assert!(
        out.send_now
            .iter()
            .any(|(to, msg)| *to == NodeId(2) && matches!(msg, Msg::Handoff { epoch: 1, .. }))
    );
}

#[test]
fn a_write_waits_for_every_backup() {
    let key = key_moving(1, 2);
    let mut primary = founded(1, 2);
    let out = step(&mut primary, CLIENT, put(1, &key, "a"));
    let versioned = primary.held(&key).unwrap().clone();
    let replicate = Msg::Replicate {
        epoch: 0,
        entries: vec![(key.clone(), versioned)],
    };
    assert_eq!(out.send_after_persist, [(NodeId(0), replicate.clone())]);
    primary.handle_persisted(out.end());
    assert!(!primary.is_settled());

    let mut backup = founded(0, 2);
    let out = step(&mut backup, NodeId(1), replicate);
    let ack = Msg::ReplicateAck {
        epoch: 0,
        entries: vec![(key.clone(), version(0, 1))],
    };
    assert_eq!(out.send_after_persist, [(NodeId(1), ack.clone())]);
    assert_eq!(backup.held(&key).unwrap().version, version(0, 1));

    let out = step(&mut primary, NodeId(0), ack);
    assert_eq!(out.send_now, [answer(1, Reply::Written(version(0, 1)))]);
    assert!(primary.is_settled());
}

#[test]
fn a_tombstone_keeps_an_older_copy_from_bringing_a_key_back() {
    let writer = RequestId {
        origin: CLIENT,
        seq: 1,
    };
    let key = Bytes::from("k");
    let old = Versioned {
        version: version(0, 1),
        value: Some(Bytes::from("a")),
        writer,
    };
    let deleted = Versioned {
        version: version(1, 1),
        value: None,
        writer: RequestId { seq: 2, ..writer },
    };
    let mut record = HandoffRecord::default();
    for versioned in [&deleted, &old, &deleted] {
        record.apply(&Delta::Stored {
            key: key.clone(),
            versioned: versioned.clone(),
        });
    }
    assert_eq!(record.store[&key], deleted);
}

#[test]
fn a_machine_needs_a_holder_per_key() {
    let mut out = HandoffOutput::at(0);
    let refused = Handoff::recover(NodeId(0), config(0), HandoffRecord::default(), &mut out);
    assert_eq!(refused.unwrap_err(), HandoffError::NoReplicas);
}

#[test]
fn a_local_client_is_answered_by_events_wherever_its_key_lives() {
    let key = key_moving(1, 2);
    let mut node = founded(0, 1);
    let request = Request {
        id: RequestId {
            origin: NodeId(0),
            seq: 1,
        },
        key: key.clone(),
        op: Op::Get,
    };
    // Not the primary: forwarded, and the primary's answer becomes an event.
    let mut out = HandoffOutput::at(0);
    node.handle_request(request.clone(), &mut out);
    assert_eq!(
        out.send_now,
        [(
            NodeId(1),
            Msg::Request {
                request,
                forwarded: true
            }
        )]
    );
    let answer = Msg::Answer {
        request: RequestId {
            origin: NodeId(0),
            seq: 1,
        },
        reply: Reply::Read(None),
    };
    let out = step(&mut node, NodeId(1), answer);
    assert!(matches!(
        out.events[..],
        [Event::Answered {
            reply: Reply::Read(None),
            ..
        }]
    ));
}
