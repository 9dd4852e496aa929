//! Key handoff between holders when the ring changes.
//!
//! Each key is held by the nodes of its preference list (`replicas` long): the
//! first, the *primary*, has custody of the key — it alone accepts writes and
//! serves reads — and copies every value to the others, its *backups*, before
//! it acknowledges a write. When the ring moves from one epoch to the next:
//!
//! - a primary that stays primary copies the key to every backup of the new
//!   list (a new holder receives it; an old one that stays has it already);
//! - a primary that is no longer primary copies the key, with custody, to the
//!   new primary and keeps it until that copy is acknowledged ("no lost keys");
//!   only then may it drop it, unless it is a backup of the new list;
//! - a backup that leaves the list drops its replica at once: the primary, not
//!   the backups, is what keeps a key from being lost.
//!
//! A request that reaches a node which is not the key's primary at its epoch is
//! forwarded to the primary it knows; a primary still waiting for the key's
//! custody copy answers "retry" rather than serve or accept a value it may not
//! have; a primary that loses custody while a write waits for its backups tells
//! the client to retry. A node that has sent a copy resends it on its resend
//! timer until the copy is acknowledged, so a lost copy or acknowledgement
//! delays a move but cannot stall it.
//!
//! The network may duplicate, reorder and lose messages, so every handler is
//! idempotent: values of a key only grow (a client writes 1, 2, …), so merging
//! two copies is taking the larger, and a node tells a copy still due to it
//! ([`Custody::PassOn`], [`Custody::Awaiting`]) from a duplicate of one it has
//! already passed on ([`Custody::None`]).
//!
//! This module holds the machines; `models::ring_handoff` is the system the
//! checker explores.

use std::borrow::Cow;

use stateright::actor::{Actor, Id, Out, model_timeout};

/// A key, by index into the model's key list.
pub type Key = usize;
/// A key's value; values of one key only grow.
pub type Value = u8;
/// An epoch of the ring.
pub type Epoch = usize;
/// A set of storage nodes (actor indices below 8), one bit each.
pub type NodeSet = u8;

/// Who holds each key at each epoch: the ring snapshots, precomputed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Placement {
    /// `lists[epoch][key]`: the key's preference list at `epoch`, primary
    /// first, as actor indices (each below 8).
    pub lists: Vec<Vec<Vec<usize>>>,
}

impl Placement {
    /// The primary of `key` at `epoch`: the first node of its preference list.
    pub fn owner(&self, epoch: Epoch, key: Key) -> usize {
        self.lists[epoch][key][0]
    }

    /// The nodes that hold `key` at `epoch`, primary first.
    pub fn holders(&self, epoch: Epoch, key: Key) -> &[usize] {
        &self.lists[epoch][key]
    }

    /// Whether `node` is in `key`'s preference list at `epoch`.
    pub fn holds(&self, epoch: Epoch, key: Key, node: usize) -> bool {
        self.holders(epoch, key).contains(&node)
    }

    /// The backups of `key` at `epoch`: its holders but the primary.
    fn backups(&self, epoch: Epoch, key: Key) -> NodeSet {
        self.holders(epoch, key)[1..]
            .iter()
            .fold(0, |set, &node| set | bit(node))
    }

    /// The last epoch of the run.
    pub fn last_epoch(&self) -> Epoch {
        self.lists.len() - 1
    }

    /// How many keys there are.
    pub fn keys(&self) -> usize {
        self.lists.first().map_or(0, Vec::len)
    }
}

/// Node `node` as a member of a [`NodeSet`].
fn bit(node: usize) -> NodeSet {
    1 << node
}

/// The protocol as specified, or one of the named defects the checker must
/// refute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// Drop a handed-off key only once its new primary acknowledged the copy.
    Correct,
    /// Drop a key as soon as its copy is sent.
    DropBeforeAck,
    /// A node that is not a key's primary applies a write to it locally, and
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
    /// The write is applied at every holder.
    WriteOk {
        /// The key.
        key: Key,
        /// The value written.
        value: Value,
    },
    /// The key's value at its primary (`None`: never written).
    ReadOk {
        /// The key.
        key: Key,
        /// Its value.
        value: Option<Value>,
    },
    /// The request could not be served now: send it again.
    Retry(Box<HandoffMsg>),
    /// A key's custody moves to the primary of `epoch`.
    Copy {
        /// The key.
        key: Key,
        /// Its value (`None`: never written; custody moves all the same).
        value: Option<Value>,
        /// The epoch whose primary it is for.
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
    /// From a primary to a backup of `epoch`: hold this value.
    Replicate {
        /// The key.
        key: Key,
        /// The value.
        value: Value,
        /// The epoch of the sender's preference list.
        epoch: Epoch,
    },
    /// The replica is stored (or the receiver has moved past `epoch`).
    ReplicateAck {
        /// The key.
        key: Key,
        /// The value replicated.
        value: Value,
        /// The epoch of the replica.
        epoch: Epoch,
    },
}

/// The timers of a handoff actor.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HandoffTimer {
    /// Send again what has not been acknowledged: a node its copies and
    /// replicas, the client its requests.
    Resend,
}

/// A write a primary acknowledges once every backup holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PendingWrite {
    /// Who asked.
    pub client: Id,
    /// The value written.
    pub value: Value,
}

/// A node's responsibility for one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Custody {
    /// No custody: at most a backup's replica.
    None,
    /// The primary at this node's epoch, with the key's latest value: serves it.
    Serving {
        /// Backups that have not yet acknowledged the current value.
        unacked: NodeSet,
        /// The write to acknowledge once `unacked` is empty.
        reply: Option<PendingWrite>,
    },
    /// The primary at this node's epoch, still waiting for the key's copy.
    Awaiting,
    /// Was the primary of an epoch this node has since left, and its copy has
    /// not arrived: when it does, pass it on to the current primary.
    PassOn,
    /// Keeps the key until `to` acknowledges the copy of `sent` for `epoch`.
    HandingOff {
        /// The new primary.
        to: usize,
        /// The epoch the copy is for.
        epoch: Epoch,
        /// The value the copy carried.
        sent: Option<Value>,
    },
}

impl Custody {
    /// Serving, with nothing to replicate or acknowledge.
    pub const SERVING: Custody = Custody::Serving {
        unacked: 0,
        reply: None,
    };

    /// Whether something sent waits for an acknowledgement (and is resent).
    fn resends(&self) -> bool {
        matches!(self, Custody::HandingOff { .. })
            || matches!(self, Custody::Serving { unacked, .. } if *unacked != 0)
    }
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

impl ClientState {
    /// Whether a request is still unanswered.
    fn waiting(&self) -> bool {
        self.read.iter().any(Option::is_none)
    }
}

/// The state of any actor of the system.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HandoffState {
    /// A storage node.
    Node(NodeState),
    /// The client.
    Client(ClientState),
}

impl HandoffState {
    /// Whether the actor has something to resend, so its timer must run.
    fn resends(&self) -> bool {
        match self {
            HandoffState::Node(node) => node.custody.iter().any(Custody::resends),
            HandoffState::Client(client) => client.waiting(),
        }
    }
}

/// An actor of the handoff system.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HandoffActor {
    /// A storage node.
    Node {
        /// The ring snapshots.
        placement: Placement,
        /// Which protocol it runs.
        variant: Variant,
    },
    /// A client that writes each key once and reads it back once the write is
    /// acknowledged, one request at a time, key after key; as the
    /// administrator, it announces the last ring to every node.
    Client {
        /// The ring snapshots.
        placement: Placement,
        /// The storage nodes.
        nodes: Vec<Id>,
    },
}

impl Actor for HandoffActor {
    type Msg = HandoffMsg;
    type Timer = HandoffTimer;
    type State = HandoffState;
    /// Every actor saves its whole state after each step that changes it,
    /// before its sends leave, so a crash loses nothing it has acknowledged: a
    /// node that recovers resumes exactly where it stopped.
    type Storage = HandoffState;
    type Random = ();

    fn on_start(&self, id: Id, storage: &Option<HandoffState>, o: &mut Out<Self>) -> HandoffState {
        if let Some(saved) = storage {
            if saved.resends() {
                o.set_timer(HandoffTimer::Resend, model_timeout());
            }
            return saved.clone();
        }
        let mut sends = Out::new();
        let state = self.first_state(id, &mut sends);
        o.save(state.clone());
        if state.resends() {
            o.set_timer(HandoffTimer::Resend, model_timeout());
        }
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
        let mut next = state.as_ref().clone();
        let mut sends = Out::new();
        match (self, &mut next) {
            (HandoffActor::Node { placement, variant }, HandoffState::Node(node)) => {
                let me = usize::from(id);
                on_node_msg(placement, *variant, me, node, src, msg, &mut sends);
            }
            (HandoffActor::Client { placement, .. }, HandoffState::Client(client)) => {
                on_client_msg(placement, id, client, msg, &mut sends);
            }
            _ => return,
        }
        if next != **state {
            // The timer runs exactly while something waits for an acknowledgement.
            match (state.resends(), next.resends()) {
                (false, true) => o.set_timer(HandoffTimer::Resend, model_timeout()),
                (true, false) => o.cancel_timer(HandoffTimer::Resend),
                _ => {}
            }
            // Durable before any send of this step leaves.
            o.save(next.clone());
            *state.to_mut() = next;
        }
        o.append(&mut sends);
    }

    fn on_timeout(
        &self,
        id: Id,
        state: &mut Cow<HandoffState>,
        _timer: &HandoffTimer,
        o: &mut Out<Self>,
    ) {
        match (self, state.as_ref()) {
            (HandoffActor::Node { placement, .. }, HandoffState::Node(node)) => {
                resend_node(placement, node, o);
            }
            (HandoffActor::Client { placement, .. }, HandoffState::Client(client)) => {
                resend_client(placement, id, client, o);
            }
            _ => return,
        }
        if state.resends() {
            o.set_timer(HandoffTimer::Resend, model_timeout());
        }
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
                            Custody::SERVING
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
                // One announcement of the last ring: a node walks through
                // every epoch before it, in order (see `advance`), and learns
                // the intermediate ones from the copies that reach it.
                o.broadcast(nodes, &HandoffMsg::Epoch(placement.last_epoch()));
                let client = ClientState {
                    acknowledged: vec![None; placement.keys()],
                    read: vec![None; placement.keys()],
                };
                resend_client(placement, id, &client, o);
                HandoffState::Client(client)
            }
        }
    }
}

/// The client's request for `key`: its write until acknowledged, then its read.
fn client_request(client: &ClientState, me: Id, key: Key) -> Option<HandoffMsg> {
    match (client.acknowledged[key], client.read[key]) {
        (None, _) => Some(HandoffMsg::Write {
            key,
            value: 1,
            client: me,
        }),
        (Some(_), None) => Some(HandoffMsg::Read { key, client: me }),
        (Some(_), Some(_)) => None,
    }
}

/// Sends the client's current request: the first unanswered one (the client
/// has one request out at a time). The client knows only the first ring:
/// moves are the nodes' business.
fn resend_client(placement: &Placement, me: Id, client: &ClientState, o: &mut Out<HandoffActor>) {
    let next = (0..placement.keys()).find_map(|key| Some((key, client_request(client, me, key)?)));
    if let Some((key, request)) = next {
        o.send(Id::from(placement.owner(0, key)), request);
    }
}

fn on_client_msg(
    placement: &Placement,
    me: Id,
    client: &mut ClientState,
    msg: HandoffMsg,
    o: &mut Out<HandoffActor>,
) {
    let first_owner = |key: Key| Id::from(placement.owner(0, key));
    match msg {
        // Each answer moves the client on to its next request.
        HandoffMsg::WriteOk { key, value } if client.acknowledged[key].is_none() => {
            client.acknowledged[key] = Some(value);
            resend_client(placement, me, client, o);
        }
        HandoffMsg::ReadOk { key, value }
            if client.acknowledged[key].is_some() && client.read[key].is_none() =>
        {
            client.read[key] = Some(value);
            resend_client(placement, me, client, o);
        }
        HandoffMsg::Retry(request) => {
            let (HandoffMsg::Write { key, .. } | HandoffMsg::Read { key, .. }) = *request else {
                return;
            };
            // Only a request still unanswered is worth sending again.
            if client_request(client, me, key).as_ref() == Some(&*request) {
                o.send(first_owner(key), *request);
            }
        }
        _ => {}
    }
}

/// Sends again every copy and replica of `node` not yet acknowledged.
fn resend_node(placement: &Placement, node: &NodeState, o: &mut Out<HandoffActor>) {
    for (key, custody) in node.custody.iter().enumerate() {
        match *custody {
            Custody::HandingOff { to, epoch, sent } => {
                let copy = HandoffMsg::Copy {
                    key,
                    value: sent,
                    epoch,
                };
                o.send(Id::from(to), copy);
            }
            Custody::Serving { unacked, .. } => {
                replicate(placement, node, key, unacked, o);
            }
            _ => {}
        }
    }
}

/// Sends `key`'s value to the backups in `to`.
fn replicate(
    placement: &Placement,
    node: &NodeState,
    key: Key,
    to: NodeSet,
    o: &mut Out<HandoffActor>,
) {
    let Some(value) = node.values[key] else {
        return;
    };
    for &backup in placement.holders(node.epoch, key) {
        if to & bit(backup) != 0 {
            let epoch = node.epoch;
            o.send(
                Id::from(backup),
                HandoffMsg::Replicate { key, value, epoch },
            );
        }
    }
}

/// Makes `node`, the primary of `key`, serve it: every backup of its epoch
/// must acknowledge the current value, and `reply` waits for them.
fn serve(
    placement: &Placement,
    node: &mut NodeState,
    key: Key,
    reply: Option<PendingWrite>,
    o: &mut Out<HandoffActor>,
) {
    let unacked = if node.values[key].is_some() {
        placement.backups(node.epoch, key)
    } else {
        0
    };
    match reply {
        Some(PendingWrite { client, value }) if unacked == 0 => {
            o.send(client, HandoffMsg::WriteOk { key, value });
            node.custody[key] = Custody::SERVING;
        }
        _ => node.custody[key] = Custody::Serving { unacked, reply },
    }
    replicate(placement, node, key, unacked, o);
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
            let merged = node.values[key].max(value);
            match node.custody[key] {
                // A duplicate of a copy this node has passed on already: keep
                // nothing, or the key would stay where it is not owned.
                Custody::None => {}
                Custody::Awaiting => {
                    node.values[key] = merged;
                    serve(placement, node, key, None, o);
                }
                // Custody passes through this node on its way to the primary of
                // a later epoch: keep it until that primary has it (no lost keys).
                Custody::PassOn => {
                    node.values[key] = merged;
                    let to = placement.owner(node.epoch, key);
                    send_copy(variant, node, key, to, node.epoch, o);
                }
                // A duplicate: it carries nothing new unless values were
                // merged from two chains, in which case send the larger on.
                Custody::Serving { reply, .. } => {
                    if merged != node.values[key] {
                        node.values[key] = merged;
                        serve(placement, node, key, reply, o);
                    }
                }
                Custody::HandingOff { to, epoch, .. } => {
                    node.values[key] = merged;
                    send_copy(variant, node, key, to, epoch, o);
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
            // Only the acknowledgement of the latest copy releases the key;
            // a backup of the current list keeps its replica.
            if node.custody[key] == acknowledged {
                node.custody[key] = Custody::None;
                if !placement.holds(node.epoch, key, me) {
                    node.values[key] = None;
                }
            }
        }
        HandoffMsg::Replicate { key, value, epoch } => {
            advance(placement, variant, me, node, epoch, o);
            if placement.holds(node.epoch, key, me) {
                node.values[key] = node.values[key].max(Some(value));
            }
            // A node past `epoch` and out of the list acknowledges too: the
            // sender will recompute its backups when it reaches that epoch.
            o.send(src, HandoffMsg::ReplicateAck { key, value, epoch });
        }
        HandoffMsg::ReplicateAck { key, value, epoch } => {
            if let Custody::Serving { unacked, reply } = node.custody[key] {
                let current = epoch == node.epoch && node.values[key] == Some(value);
                let unacked = unacked & !bit(usize::from(src));
                if current && unacked == 0 {
                    node.custody[key] = Custody::SERVING;
                    if let Some(PendingWrite { client, value }) = reply {
                        o.send(client, HandoffMsg::WriteOk { key, value });
                    }
                } else if current {
                    node.custody[key] = Custody::Serving { unacked, reply };
                }
            }
        }
        HandoffMsg::Write { key, value, client } => {
            let owner = placement.owner(node.epoch, key);
            let write = HandoffMsg::Write { key, value, client };
            if owner == me {
                match node.custody[key] {
                    Custody::Serving { .. } => {
                        node.values[key] = node.values[key].max(Some(value));
                        let reply = Some(PendingWrite { client, value });
                        serve(placement, node, key, reply, o);
                    }
                    _ => o.send(client, HandoffMsg::Retry(Box::new(write))),
                }
            } else if variant == Variant::NoForward {
                node.values[key] = node.values[key].max(Some(value));
                o.send(client, HandoffMsg::WriteOk { key, value });
            } else {
                o.send(Id::from(owner), write);
            }
        }
        HandoffMsg::Read { key, client } => {
            let owner = placement.owner(node.epoch, key);
            let read = HandoffMsg::Read { key, client };
            if owner != me {
                o.send(Id::from(owner), read);
            } else if let Custody::Serving { .. } = node.custody[key] {
                let value = node.values[key];
                o.send(client, HandoffMsg::ReadOk { key, value });
            } else {
                o.send(client, HandoffMsg::Retry(Box::new(read)));
            }
        }
        _ => {}
    }
}

/// Moves `node` through every epoch up to `target`, one at a time, starting
/// at each the handoffs that epoch's lists call for.
fn advance(
    placement: &Placement,
    variant: Variant,
    me: usize,
    node: &mut NodeState,
    target: Epoch,
    o: &mut Out<HandoffActor>,
) {
    while node.epoch < target {
        node.epoch += 1;
        for key in 0..placement.keys() {
            enter_epoch(placement, variant, me, node, key, o);
        }
    }
}

/// What `key`'s custody becomes at `node`'s (new) epoch.
fn enter_epoch(
    placement: &Placement,
    variant: Variant,
    me: usize,
    node: &mut NodeState,
    key: Key,
    o: &mut Out<HandoffActor>,
) {
    let epoch = node.epoch;
    let owner = placement.owner(epoch, key);
    match node.custody[key] {
        // Still the primary: the new list's backups must hold the key.
        Custody::Serving { reply, .. } if owner == me => serve(placement, node, key, reply, o),
        // No longer the primary: stop accepting writes (a write waiting for
        // its backups is retried at the new primary) and pass the key on.
        Custody::Serving { reply, .. } => {
            if let Some(PendingWrite { client, value }) = reply {
                let write = HandoffMsg::Write { key, value, client };
                o.send(client, HandoffMsg::Retry(Box::new(write)));
            }
            send_copy(variant, node, key, owner, epoch, o);
        }
        // Primary again while handing it off: the interim primary may have
        // newer writes, so wait for its copy.
        Custody::HandingOff { .. } if owner == me => node.custody[key] = Custody::Awaiting,
        // The copy will reach this node and be passed on.
        Custody::Awaiting if owner != me => node.custody[key] = Custody::PassOn,
        Custody::PassOn if owner == me => node.custody[key] = Custody::Awaiting,
        // Whoever has custody now will hand the key to this node.
        Custody::None if owner == me => node.custody[key] = Custody::Awaiting,
        // A backup that leaves the list drops its replica.
        Custody::None if !placement.holds(epoch, key, me) => node.values[key] = None,
        // Already handing off: keep waiting for that acknowledgement. The
        // receiver passes the key on to the primary of this epoch, so a key
        // has one chain of custody and the primary that ends it receives
        // the latest write. Re-sending from here instead would let a later
        // primary serve this node's older value.
        _ => {}
    }
}

/// Sends `key`'s value to `to`, the primary at `epoch`, and keeps it until
/// `to` acknowledges this very copy — or, in `DropBeforeAck`, drops it at once.
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

    /// Key 0 is held by node 0 alone at epoch 0 and by node 2 alone at epoch 1.
    fn placement() -> Placement {
        Placement {
            lists: vec![vec![vec![0]], vec![vec![2]]],
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
            node(0, Some(3), Custody::SERVING),
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
        assert_eq!(state, node(1, Some(3), Custody::SERVING));
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
            node(0, Some(3), Custody::SERVING),
            CLIENT,
            HandoffMsg::Epoch(1),
        );
        assert_eq!(sent.len(), 1);
        assert_eq!(state, node(1, None, Custody::None));
    }

    /// Key 0 is held by nodes 0 and 1 at epoch 0, by nodes 0 and 2 at epoch 1.
    fn replicated() -> Placement {
        Placement {
            lists: vec![vec![vec![0, 1]], vec![vec![0, 2]]],
        }
    }

    fn step_in(
        placement: &Placement,
        me: usize,
        mut state: NodeState,
        src: usize,
        msg: HandoffMsg,
    ) -> (NodeState, Vec<(usize, HandoffMsg)>) {
        let mut out = Out::<HandoffActor>::new();
        let from = Id::from(src);
        on_node_msg(
            placement,
            Variant::Correct,
            me,
            &mut state,
            from,
            msg,
            &mut out,
        );
        (state, sends(out))
    }

    fn sends(out: Out<HandoffActor>) -> Vec<(usize, HandoffMsg)> {
        out.into_iter()
            .filter_map(|command| match command {
                Command::Send(to, msg) => Some((usize::from(to), msg)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_primary_acknowledges_a_write_once_every_backup_holds_it() {
        let placement = replicated();
        let client = Id::from(CLIENT);
        let write = HandoffMsg::Write {
            key: 0,
            value: 1,
            client,
        };
        let (state, sent) = step_in(
            &placement,
            0,
            node(0, None, Custody::SERVING),
            CLIENT,
            write,
        );
        let replicate = HandoffMsg::Replicate {
            key: 0,
            value: 1,
            epoch: 0,
        };
        assert_eq!(sent, [(1, replicate)]);
        let pending = Custody::Serving {
            unacked: 0b10,
            reply: Some(PendingWrite { client, value: 1 }),
        };
        assert_eq!(state, node(0, Some(1), pending));
        let ack = HandoffMsg::ReplicateAck {
            key: 0,
            value: 1,
            epoch: 0,
        };
        let (state, sent) = step_in(&placement, 0, state, 1, ack);
        assert_eq!(sent, [(CLIENT, HandoffMsg::WriteOk { key: 0, value: 1 })]);
        assert_eq!(state, node(0, Some(1), Custody::SERVING));
    }

    #[test]
    fn a_new_list_gets_the_key_and_a_leaving_backup_drops_it() {
        let placement = replicated();
        // The primary stays primary and copies the key to the new backup.
        let (state, sent) = step_in(
            &placement,
            0,
            node(0, Some(1), Custody::SERVING),
            CLIENT,
            HandoffMsg::Epoch(1),
        );
        let replicate = HandoffMsg::Replicate {
            key: 0,
            value: 1,
            epoch: 1,
        };
        assert_eq!(sent, [(2, replicate)]);
        let replicating = Custody::Serving {
            unacked: 0b100,
            reply: None,
        };
        assert_eq!(state, node(1, Some(1), replicating));
        // The old backup leaves the list and forgets its replica.
        let (state, sent) = step_in(
            &placement,
            1,
            node(0, Some(1), Custody::None),
            CLIENT,
            HandoffMsg::Epoch(1),
        );
        assert!(sent.is_empty());
        assert_eq!(state, node(1, None, Custody::None));
    }

    #[test]
    fn a_duplicate_copy_is_acknowledged_but_not_kept() {
        // Node 2 took the copy for epoch 1, passed it on and dropped it; the
        // network delivers the same copy again.
        let copy = HandoffMsg::Copy {
            key: 0,
            value: Some(3),
            epoch: 1,
        };
        let done = node(1, None, Custody::None);
        let placement = Placement {
            lists: vec![vec![vec![0]], vec![vec![2]], vec![vec![1]]],
        };
        let (state, sent) = step_in(&placement, 2, done.clone(), 0, copy.clone());
        let ack = HandoffMsg::CopyAck {
            key: 0,
            epoch: 1,
            value: Some(3),
        };
        assert_eq!(sent, [(0, ack.clone())]);
        assert_eq!(state, done);
        // A copy still due to a former primary is passed on to the current one.
        let due = node(2, None, Custody::PassOn);
        let (state, sent) = step_in(&placement, 2, due, 0, copy);
        let onward = HandoffMsg::Copy {
            key: 0,
            value: Some(3),
            epoch: 2,
        };
        assert_eq!(sent, [(1, onward), (0, ack)]);
        let handing_off = Custody::HandingOff {
            to: 1,
            epoch: 2,
            sent: Some(3),
        };
        assert_eq!(state, node(2, Some(3), handing_off));
    }

    #[test]
    fn the_resend_timer_sends_every_unacknowledged_copy_again() {
        let handing_off = Custody::HandingOff {
            to: 2,
            epoch: 1,
            sent: Some(3),
        };
        let actor = HandoffActor::Node {
            placement: placement(),
            variant: Variant::Correct,
        };
        let state = HandoffState::Node(node(1, Some(3), handing_off));
        let mut cow = Cow::Borrowed(&state);
        let mut out = Out::new();
        actor.on_timeout(Id::from(0), &mut cow, &HandoffTimer::Resend, &mut out);
        assert!(matches!(cow, Cow::Borrowed(_)));
        let commands: Vec<_> = out.into_iter().collect();
        let copy = HandoffMsg::Copy {
            key: 0,
            value: Some(3),
            epoch: 1,
        };
        let resent = |c: &Command<_, _, _, _>| matches!(c, Command::Send(to, msg) if *to == Id::from(2) && *msg == copy);
        assert!(commands.iter().any(resent));
        assert!(
            commands
                .iter()
                .any(|c| matches!(c, Command::SetTimer(HandoffTimer::Resend, _)))
        );
    }
}
