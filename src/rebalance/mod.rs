//! Key handoff between owners when the ring changes.
//!
//! When the ring moves from one epoch to the next, each key whose owner
//! changes is copied from its custodian to the new owner, the new owner
//! acknowledges, and only then does the old custodian drop it ("no lost
//! keys"). A request that reaches a node which does not own the key at its
//! epoch is forwarded to the owner it knows; an owner still waiting for a
//! key's copy answers "retry" rather than serve or accept a value it may not
//! have. This module holds the machines; `models::ring_handoff` is the system
//! the checker explores.
//!
//! Scope of this first version: one replica per key (the owner), no crashes
//! and no message loss. Values of a key only grow (a client writes 1, 2, …),
//! so merging two copies is taking the larger.

use std::borrow::Cow;

use stateright::actor::{Actor, Id, Out};

/// A key, by index into the model's key list.
pub type Key = usize;
/// A key's value; values of one key only grow.
pub type Value = u8;
/// An epoch of the ring.
pub type Epoch = usize;

/// Who owns each key at each epoch: the ring snapshots, precomputed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Placement {
    /// `owners[epoch][key]`: the node (an actor index) that owns `key`.
    pub owners: Vec<Vec<usize>>,
}

impl Placement {
    /// The owner of `key` at `epoch`.
    pub fn owner(&self, epoch: Epoch, key: Key) -> usize {
        self.owners[epoch][key]
    }

    /// The last epoch of the run.
    pub fn last_epoch(&self) -> Epoch {
        self.owners.len() - 1
    }

    /// How many keys there are.
    pub fn keys(&self) -> usize {
        self.owners.first().map_or(0, Vec::len)
    }
}

/// The protocol as specified, or one of the named defects the checker must
/// refute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// Drop a handed-off key only once its new owner acknowledged the copy.
    Correct,
    /// Drop a key as soon as its copy is sent.
    DropBeforeAck,
    /// A node that no longer owns a key applies a write to it locally, and
    /// acknowledges it, instead of forwarding it.
    NoForward,
}

/// The messages of the handoff system.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HandoffMsg {
    /// From the administrator: the ring of this epoch is in force.
    Epoch(Epoch),
    /// A client's write; `client` gets the answer, wherever it is applied.
    Write {
        /// The key.
        key: Key,
        /// The value.
        value: Value,
        /// Who asked.
        client: Id,
    },
    /// A client's read.
    Read {
        /// The key.
        key: Key,
        /// Who asked.
        client: Id,
    },
    /// The write is applied.
    WriteOk {
        /// The key.
        key: Key,
        /// The value written.
        value: Value,
    },
    /// The key's value at its owner (`None`: never written).
    ReadOk {
        /// The key.
        key: Key,
        /// Its value.
        value: Option<Value>,
    },
    /// The owner is still waiting for the key's copy: send the request again.
    Retry(Box<HandoffMsg>),
    /// A key's custody moves to the owner of `epoch`.
    Copy {
        /// The key.
        key: Key,
        /// Its value (`None`: never written; custody moves all the same).
        value: Option<Value>,
        /// The epoch whose owner it is for.
        epoch: Epoch,
    },
    /// The copy is stored; the sender may drop the key.
    CopyAck {
        /// The key.
        key: Key,
        /// The epoch of the copy.
        epoch: Epoch,
        /// The value of the copy.
        value: Option<Value>,
    },
}

/// A node's responsibility for one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Custody {
    /// Not this node's concern.
    None,
    /// The owner at this node's epoch, with the key's latest value: serves it.
    Serving,
    /// The owner at this node's epoch, still waiting for the key's copy.
    Awaiting,
    /// Keeps the key until `to` acknowledges the copy of `value` for `epoch`.
    HandingOff {
        /// The new owner.
        to: usize,
        /// The epoch the copy is for.
        epoch: Epoch,
        /// The value the copy carried.
        sent: Option<Value>,
    },
}

/// A storage node's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeState {
    /// The ring epoch this node acts on.
    pub epoch: Epoch,
    /// The value this node holds for each key, if any.
    pub values: Vec<Option<Value>>,
    /// Its responsibility for each key.
    pub custody: Vec<Custody>,
}

/// A client's state: the writes acknowledged to it and the reads answered.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientState {
    /// The value acknowledged for each key.
    pub acknowledged: Vec<Option<Value>>,
    /// The answer to each key's read, sent after its write was acknowledged.
    pub read: Vec<Option<Option<Value>>>,
}

/// The state of any actor of the system.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HandoffState {
    /// A storage node.
    Node(NodeState),
    /// The client.
    Client(ClientState),
}

/// An actor of the handoff system.
#[derive(Clone, Debug)]
pub enum HandoffActor {
    /// A storage node.
    Node {
        /// The ring snapshots.
        placement: Placement,
        /// Which protocol it runs.
        variant: Variant,
    },
    /// A client that writes each key once, reads it back once acknowledged,
    /// and, as the administrator, announces every epoch to every node.
    Client {
        /// The ring snapshots.
        placement: Placement,
        /// The storage nodes.
        nodes: Vec<Id>,
    },
}

impl Actor for HandoffActor {
    type Msg = HandoffMsg;
    type Timer = ();
    type State = HandoffState;
    /// Every actor saves its whole state after each step, before its sends
    /// leave, so a crash loses nothing it has acknowledged: a node that
    /// recovers resumes exactly where it stopped.
    type Storage = HandoffState;
    type Random = ();

    fn on_start(&self, id: Id, storage: &Option<HandoffState>, o: &mut Out<Self>) -> HandoffState {
        if let Some(saved) = storage {
            return saved.clone();
        }
        let mut sends = Out::new();
        let state = self.first_state(id, &mut sends);
        o.save(state.clone());
        o.append(&mut sends);
        state
    }

    fn on_msg(
        &self,
        id: Id,
        state: &mut Cow<HandoffState>,
        src: Id,
        msg: HandoffMsg,
        o: &mut Out<Self>,
    ) {
        let mut sends = Out::new();
        match (self, state.to_mut()) {
            (HandoffActor::Node { placement, variant }, HandoffState::Node(node)) => {
                on_node_msg(
                    placement,
                    *variant,
                    usize::from(id),
                    node,
                    src,
                    msg,
                    &mut sends,
                );
            }
            (HandoffActor::Client { placement, .. }, HandoffState::Client(client)) => {
                on_client_msg(placement, id, client, msg, &mut sends);
            }
            _ => return,
        }
        // Durable before any send of this step leaves.
        o.save(state.as_ref().clone());
        o.append(&mut sends);
    }
}

impl HandoffActor {
    /// The state of an actor that starts with nothing saved, and its first sends.
    fn first_state(&self, id: Id, o: &mut Out<Self>) -> HandoffState {
        match self {
            HandoffActor::Node { placement, .. } => {
                let me = usize::from(id);
                let custody = (0..placement.keys())
                    .map(|key| {
                        if placement.owner(0, key) == me {
                            Custody::Serving
                        } else {
                            Custody::None
                        }
                    })
                    .collect();
                HandoffState::Node(NodeState {
                    epoch: 0,
                    values: vec![None; placement.keys()],
                    custody,
                })
            }
            HandoffActor::Client { placement, nodes } => {
                for epoch in 1..=placement.last_epoch() {
                    o.broadcast(nodes, &HandoffMsg::Epoch(epoch));
                }
                for key in 0..placement.keys() {
                    let write = HandoffMsg::Write {
                        key,
                        value: 1,
                        client: id,
                    };
                    o.send(Id::from(placement.owner(0, key)), write);
                }
                HandoffState::Client(ClientState {
                    acknowledged: vec![None; placement.keys()],
                    read: vec![None; placement.keys()],
                })
            }
        }
    }
}

fn on_client_msg(
    placement: &Placement,
    me: Id,
    client: &mut ClientState,
    msg: HandoffMsg,
    o: &mut Out<HandoffActor>,
) {
    // The client knows only the first ring: moves are the nodes' business.
    let first_owner = |key: Key| Id::from(placement.owner(0, key));
    match msg {
        HandoffMsg::WriteOk { key, value } => {
            client.acknowledged[key] = client.acknowledged[key].max(Some(value));
            o.send(first_owner(key), HandoffMsg::Read { key, client: me });
        }
        HandoffMsg::ReadOk { key, value } => client.read[key] = Some(value),
        HandoffMsg::Retry(request) => {
            let key = match *request {
                HandoffMsg::Write { key, .. } | HandoffMsg::Read { key, .. } => key,
                _ => return,
            };
            o.send(first_owner(key), *request);
        }
        _ => {}
    }
}

fn on_node_msg(
    placement: &Placement,
    variant: Variant,
    me: usize,
    node: &mut NodeState,
    src: Id,
    msg: HandoffMsg,
    o: &mut Out<HandoffActor>,
) {
    match msg {
        HandoffMsg::Epoch(epoch) => advance(placement, variant, me, node, epoch, o),
        HandoffMsg::Copy { key, value, epoch } => {
            advance(placement, variant, me, node, epoch, o);
            node.values[key] = node.values[key].max(value);
            match node.custody[key] {
                // Still handing the key on: the copy in flight lacks this
                // value, so send it down the same chain again.
                Custody::HandingOff { to, epoch, .. } => {
                    send_copy(variant, node, key, to, epoch, o);
                }
                _ if placement.owner(node.epoch, key) == me => {
                    node.custody[key] = Custody::Serving;
                }
                // Custody passes through this node on its way to the owner of
                // a later epoch: keep it until that owner has it (no lost keys).
                _ => {
                    let to = placement.owner(node.epoch, key);
                    send_copy(variant, node, key, to, node.epoch, o);
                }
            }
            o.send(src, HandoffMsg::CopyAck { key, epoch, value });
        }
        HandoffMsg::CopyAck { key, epoch, value } => {
            let acknowledged = Custody::HandingOff {
                to: usize::from(src),
                epoch,
                sent: value,
            };
            // Only the acknowledgement of the latest copy releases the key.
            if node.custody[key] == acknowledged {
                node.custody[key] = Custody::None;
                node.values[key] = None;
            }
        }
        HandoffMsg::Write { key, value, client } => {
            let owner = placement.owner(node.epoch, key);
            if owner == me {
                match node.custody[key] {
                    Custody::Serving => {
                        node.values[key] = node.values[key].max(Some(value));
                        o.send(client, HandoffMsg::WriteOk { key, value });
                    }
                    _ => o.send(
                        client,
                        HandoffMsg::Retry(Box::new(HandoffMsg::Write { key, value, client })),
                    ),
                }
            } else if variant == Variant::NoForward {
                node.values[key] = node.values[key].max(Some(value));
                o.send(client, HandoffMsg::WriteOk { key, value });
            } else {
                o.send(Id::from(owner), HandoffMsg::Write { key, value, client });
            }
        }
        HandoffMsg::Read { key, client } => {
            let owner = placement.owner(node.epoch, key);
            if owner != me {
                o.send(Id::from(owner), HandoffMsg::Read { key, client });
            } else if node.custody[key] == Custody::Serving {
                let value = node.values[key];
                o.send(client, HandoffMsg::ReadOk { key, value });
            } else {
                o.send(
                    client,
                    HandoffMsg::Retry(Box::new(HandoffMsg::Read { key, client })),
                );
            }
        }
        _ => {}
    }
}

/// Moves `node` to `epoch` if that is later than its own, and starts the
/// handoff of every key it is responsible for and no longer owns.
fn advance(
    placement: &Placement,
    variant: Variant,
    me: usize,
    node: &mut NodeState,
    epoch: Epoch,
    o: &mut Out<HandoffActor>,
) {
    if epoch <= node.epoch {
        return;
    }
    node.epoch = epoch;
    for key in 0..placement.keys() {
        let owner = placement.owner(epoch, key);
        match node.custody[key] {
            // The serving owner stops accepting writes and passes the key on.
            Custody::Serving if owner != me => {
                send_copy(variant, node, key, owner, epoch, o);
            }
            // Owned again while handing it off: the interim owner may have
            // newer writes, so wait for its copy.
            Custody::HandingOff { .. } if owner == me => node.custody[key] = Custody::Awaiting,
            // The copy will reach this node and be passed on (see `Copy`).
            Custody::Awaiting if owner != me => node.custody[key] = Custody::None,
            // Whoever has custody now will hand the key to this node.
            Custody::None if owner == me => node.custody[key] = Custody::Awaiting,
            // Already handing off: keep waiting for that acknowledgement. The
            // receiver passes the key on to the owner of this epoch, so a key
            // has one chain of custody and the owner that ends it receives
            // the latest write. Re-sending from here instead would let a
            // later owner serve this node's older value.
            _ => {}
        }
    }
}

/// Sends `key`'s value to `to`, the owner at `epoch`, and keeps it until `to`
/// acknowledges this very copy — or, in `DropBeforeAck`, drops it at once.
fn send_copy(
    variant: Variant,
    node: &mut NodeState,
    key: Key,
    to: usize,
    epoch: Epoch,
    o: &mut Out<HandoffActor>,
) {
    let value = node.values[key];
    let copy = Custody::HandingOff {
        to,
        epoch,
        sent: value,
    };
    if node.custody[key] == copy {
        return;
    }
    o.send(Id::from(to), HandoffMsg::Copy { key, value, epoch });
    if variant == Variant::DropBeforeAck {
        node.custody[key] = Custody::None;
        node.values[key] = None;
    } else {
        node.custody[key] = copy;
    }
}

#[cfg(test)]
mod tests {
    //! One test per rule, asserting the exact messages a handler sends.

    use stateright::actor::Command;

    use super::*;

    /// Key 0 is owned by node 0 at epoch 0 and by node 2 at epoch 1.
    fn placement() -> Placement {
        Placement {
            owners: vec![vec![0], vec![2]],
        }
    }

    fn node(epoch: Epoch, value: Option<Value>, custody: Custody) -> NodeState {
        NodeState {
            epoch,
            values: vec![value],
            custody: vec![custody],
        }
    }

    /// Runs one message through node `me` and returns its new state and sends.
    fn step(
        variant: Variant,
        me: usize,
        mut state: NodeState,
        src: usize,
        msg: HandoffMsg,
    ) -> (NodeState, Vec<(usize, HandoffMsg)>) {
        let mut out = Out::<HandoffActor>::new();
        on_node_msg(
            &placement(),
            variant,
            me,
            &mut state,
            Id::from(src),
            msg,
            &mut out,
        );
        let sent = out
            .into_iter()
            .filter_map(|command| match command {
                Command::Send(to, msg) => Some((usize::from(to), msg)),
                _ => None,
            })
            .collect();
        (state, sent)
    }

    const CLIENT: usize = 9;

    #[test]
    fn a_serving_owner_copies_the_key_to_the_new_owner_and_keeps_it() {
        let (state, sent) = step(
            Variant::Correct,
            0,
            node(0, Some(3), Custody::Serving),
            CLIENT,
            HandoffMsg::Epoch(1),
        );
        let copy = HandoffMsg::Copy {
            key: 0,
            value: Some(3),
            epoch: 1,
        };
        assert_eq!(sent, [(2, copy)]);
        let handing_off = Custody::HandingOff {
            to: 2,
            epoch: 1,
            sent: Some(3),
        };
        assert_eq!(state, node(1, Some(3), handing_off));
    }

    #[test]
    fn only_the_acknowledgement_of_the_latest_copy_releases_the_key() {
        let handing_off = Custody::HandingOff {
            to: 2,
            epoch: 1,
            sent: Some(3),
        };
        let held = node(1, Some(3), handing_off);
        let stale = HandoffMsg::CopyAck {
            key: 0,
            epoch: 1,
            value: Some(2),
        };
        assert_eq!(step(Variant::Correct, 0, held.clone(), 2, stale).0, held);
        let latest = HandoffMsg::CopyAck {
            key: 0,
            epoch: 1,
            value: Some(3),
        };
        let (state, sent) = step(Variant::Correct, 0, held, 2, latest);
        assert_eq!(state, node(1, None, Custody::None));
        assert!(sent.is_empty());
    }

    #[test]
    fn the_new_owner_stores_the_copy_serves_it_and_acknowledges() {
        let copy = HandoffMsg::Copy {
            key: 0,
            value: Some(3),
            epoch: 1,
        };
        let (state, sent) = step(Variant::Correct, 2, node(0, None, Custody::None), 0, copy);
        let ack = HandoffMsg::CopyAck {
            key: 0,
            epoch: 1,
            value: Some(3),
        };
        assert_eq!(sent, [(0, ack)]);
        assert_eq!(state, node(1, Some(3), Custody::Serving));
    }

    #[test]
    fn a_write_is_forwarded_by_a_former_owner_and_retried_by_a_waiting_one() {
        let write = HandoffMsg::Write {
            key: 0,
            value: 4,
            client: Id::from(CLIENT),
        };
        let former = node(1, None, Custody::None);
        let (_, sent) = step(Variant::Correct, 0, former.clone(), CLIENT, write.clone());
        assert_eq!(sent, [(2, write.clone())]);

        let waiting = node(1, None, Custody::Awaiting);
        let (state, sent) = step(Variant::Correct, 2, waiting.clone(), 0, write.clone());
        assert_eq!(sent, [(CLIENT, HandoffMsg::Retry(Box::new(write.clone())))]);
        assert_eq!(state, waiting);

        // The seeded defect: the former owner applies the write itself.
        let (state, sent) = step(Variant::NoForward, 0, former, CLIENT, write);
        assert_eq!(sent, [(CLIENT, HandoffMsg::WriteOk { key: 0, value: 4 })]);
        assert_eq!(state.values, [Some(4)]);
    }

    #[test]
    fn drop_before_ack_forgets_the_key_as_soon_as_the_copy_leaves() {
        let (state, sent) = step(
            Variant::DropBeforeAck,
            0,
            node(0, Some(3), Custody::Serving),
            CLIENT,
            HandoffMsg::Epoch(1),
        );
        assert_eq!(sent.len(), 1);
        assert_eq!(state, node(1, None, Custody::None));
    }
}
