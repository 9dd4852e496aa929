//! Membership: ring epochs agreed as transactions, and the key moves into
//! each new epoch.
//!
//! # A ring change is a transaction
//!
//! The ring of an epoch is the value of one reserved key, [`RING_KEY`], that
//! every member stores (the first ring, epoch 1, comes from the
//! configuration and is not stored). A join, a leave or a removal is one
//! transaction of the commit core, begun by the member asked:
//!
//! - at every member of epoch `e` but a removed one, it *reads* the ring key
//!   at the version that wrote epoch `e`, and writes the ring of `e + 1`; at
//!   a joining node it only writes. Every one of them must vote Yes, so a
//!   minority can never install an epoch; and since each validates its read
//!   under the key's lock, of two changes planned on `e` at most one
//!   commits: no two nodes ever act on different rings for the same epoch;
//! - each participant installs `e + 1` when it learns the commit (the write
//!   is applied to its store). Between its Yes and that moment the ring key
//!   is locked, and a replica serves no read (it parks the read behind the
//!   ring change, as behind any prepared writer): every member is locked at
//!   the decision, so no member serves a read on epoch `e` after `e + 1` was
//!   decided, and reads stay linearizable across the change;
//! - a data transaction's Prepare carries the epoch its coordinator planned
//!   it on ([`NodeMsg::Prepare`]); a participant on another epoch refuses it
//!   ([`Refusal::Epoch`]). The client is told "aborted" and may retry.
//!
//! # Moving keys
//!
//! On installing `e + 1`, a node that held keys at `e` (and is not the
//! removed one) hands each key it is the *source* of — the first holder at
//! `e` that was not removed — to each holder at `e + 1` that did not hold it
//! at `e`: chunks of committed values with their versions
//! ([`NodeMsg::Handoff`]), one at a time, resent until acknowledged, the last
//! one marking the end. It takes its snapshot only once every transaction it
//! had prepared before installing has learned its outcome: a transaction of
//! epoch `e` may still commit after the change, and its writes must travel
//! with the keys (one that reaches this node after the install is refused, so
//! nothing of epoch `e` arrives later).
//!
//! A new holder keeps *custody* rules until every source has finished: it
//! refuses Prepares touching a key it did not hold at `e`
//! ([`Refusal::NotHeld`]) and parks reads of those keys, so it never serves or
//! overwrites a key before it has its latest value. Copies from a source that
//! has finished are ignored, so a late duplicate cannot bring an old value
//! back. When a node has finished both ways, it drops the keys it no longer
//! holds. One that is no longer a member begins no new transaction (a
//! client's is refused), and departs ([`NodeEvent::Departed`]) once every
//! transaction it coordinates, its own ring change included, is decided and
//! acknowledged by its participants, which would otherwise wait for it for
//! ever. A node takes part in no new ring change until its moves into the
//! current epoch are finished.
//!
//! Progress survives crashes: the copies are participant deltas, and each
//! finished direction a node delta ([`HandoffRecord`]); a restarted source
//! sends again, from its first chunk, to every recipient not yet finished.
//!
//! # Limits
//!
//! A removed node's in-doubt transactions (prepared at the survivors, with the
//! removed node as coordinator) hold their locks until it answers: two-phase
//! commit blocks on a lost coordinator, and nothing here decides for it.
//!
//! A node removed while it was down and restarted on its old record believes
//! itself a member of the old epoch. The members answer a heartbeat from a
//! node their ring does not have with [`NodeMsg::NotMember`]; a node told so
//! by a member of its own ring, for a later epoch, fences itself off
//! ([`NodeEvent::Fenced`]: it refuses every request, and the runtime stops).
//! Until its first heartbeat is answered it may still serve a read from its
//! stale store.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{
    Dest, HandoffStatus, Node, NodeDelta, NodeEvent, NodeMsg, NodeOutput, NodeTimer, ParkedRead,
    Waiter,
};
use crate::NodeId;
use crate::commit::{self, CommitOutput, Key, Refusal, TxnId, TxnPlan, Version, Versioned};
use crate::ring::{Epoch, Layout};

/// The reserved key whose value is the ring (a [`RingState`]); clients may
/// neither read nor write it.
pub const RING_KEY: &[u8] = b"\xffhaft/ring";

/// How many bytes of values one handoff chunk carries, at most (one entry
/// larger than this travels alone).
pub const CHUNK_BYTES: usize = 1 << 20;

/// The ring of one epoch, as the cluster agreed it: the value of
/// [`RING_KEY`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RingState {
    /// The epoch.
    pub epoch: Epoch,
    /// The members, and the address each is reached at.
    pub members: BTreeMap<NodeId, String>,
    /// The members of the epoch before.
    pub previous: Vec<NodeId>,
    /// A member of the epoch before that left without handing over its keys
    /// (it was removed): the keys are copied from the other replicas.
    pub removed: Option<NodeId>,
    /// Points per member on the ring.
    pub vnodes: u32,
    /// How many members hold each key (at most the number of members).
    pub replicas: usize,
}

impl RingState {
    /// The ring's encoding, as stored under [`RING_KEY`].
    pub fn encode(&self) -> commit::Value {
        // Serialising owned maps, strings and integers cannot fail.
        postcard::to_stdvec(self).unwrap_or_default().into()
    }

    /// Decodes a stored ring; `None` if the bytes are not one.
    pub fn decode(bytes: &[u8]) -> Option<RingState> {
        postcard::from_bytes(bytes).ok()
    }

    fn ids(&self) -> Vec<NodeId> {
        self.members.keys().copied().collect()
    }
}

/// What a node does to move keys into its current epoch.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Move {
    /// The ring of the epoch before.
    previous: Arc<Layout>,
    /// The member of the epoch before that was removed, if any.
    removed: Option<NodeId>,
    /// Transactions prepared here before the install: the snapshot waits for
    /// their outcomes.
    before: BTreeSet<TxnId>,
    /// Per recipient, the chunks still to hand over; `None` until the
    /// snapshot is taken.
    outgoing: Option<BTreeMap<NodeId, Outgoing>>,
    /// The sources that have not finished handing keys to this node.
    awaiting: BTreeSet<NodeId>,
    /// Reads of keys in custody, served when `awaiting` empties.
    parked: Vec<ParkedRead>,
}

/// The chunks still owed to one recipient.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Outgoing {
    chunks: Vec<Vec<(Key, Versioned)>>,
    /// The chunk in flight.
    next: usize,
}

impl Outgoing {
    fn keys(&self) -> (u64, u64) {
        let count = |chunks: &[Vec<(Key, Versioned)>]| -> u64 {
            chunks.iter().map(|chunk| chunk.len() as u64).sum()
        };
        (count(&self.chunks), count(&self.chunks[..self.next]))
    }
}

/// Why a membership request was refused.
fn refused(reason: String) -> super::Reply {
    super::Reply::Refused { reason }
}

impl Node {
    /// The ring key's version in the store (`None`: the configured first
    /// ring).
    pub(super) fn ring_version(&self) -> Option<Version> {
        self.participant
            .committed(RING_KEY)
            .map(|versioned| versioned.version)
    }

    /// The handoff progress, for the status.
    pub(super) fn handoff_status(&self) -> Option<HandoffStatus> {
        let moving = self.moving.as_ref()?;
        let (mut keys_to_send, mut keys_sent) = (0, 0);
        for outgoing in moving.outgoing.iter().flat_map(BTreeMap::values) {
            let (total, sent) = outgoing.keys();
            keys_to_send += total;
            keys_sent += sent;
        }
        Some(HandoffStatus {
            keys_to_send,
            keys_sent,
            awaiting: moving.awaiting.iter().map(|node| node.0).collect(),
        })
    }

    /// Whether this node may accept writes of `key` and serve its reads now:
    /// it has joined, holds the key in the ring it runs, and is not waiting
    /// for the key's handoff.
    pub fn serves(&self, key: &[u8]) -> bool {
        self.joined && self.placement.holds(key, self.me) && !self.in_custody(key)
    }

    /// Whether this node is still moving keys into its epoch: sending what
    /// it owes, or waiting for what it is owed.
    pub fn is_moving(&self) -> bool {
        self.moving.is_some()
    }

    /// Whether this node may not yet serve or change `key`: it holds it in
    /// the current epoch, did not in the one before, and its sources have not
    /// all finished.
    pub(super) fn in_custody(&self, key: &[u8]) -> bool {
        self.moving.as_ref().is_some_and(|moving| {
            !moving.awaiting.is_empty()
                && self.placement.holds(key, self.me)
                && !moving.previous.holds(key, self.me)
        })
    }

    /// Whether `from` may speak to this node: a member of the current ring
    /// or of the one keys are moving from.
    pub(super) fn knows(&self, from: NodeId) -> bool {
        self.placement.is_member(from)
            || self
                .moving
                .as_ref()
                .is_some_and(|moving| moving.previous.is_member(from))
    }

    /// Whether `msg` is `from`'s vote or acknowledgement as a participant of
    /// a transaction this node coordinates (a joining node's, on the ring
    /// change that adds it), or a query about the outcome of one this node
    /// began — in any life: a coordinator that restarted has forgotten an
    /// undecided ring change, and a joining node prepared on it learns that
    /// it aborted only by asking.
    pub(super) fn is_participant(&self, from: NodeId, msg: &NodeMsg) -> bool {
        match msg {
            NodeMsg::Commit(commit::Msg::Vote { txn, .. } | commit::Msg::Ack { txn, .. }) => self
                .coordinator
                .txns()
                .get(txn)
                .is_some_and(|running| running.participants.contains(&from)),
            NodeMsg::Commit(commit::Msg::Query { txn }) => txn.node() == self.me,
            _ => false,
        }
    }

    // --- ring changes ----------------------------------------------------------

    /// Begins the ring change `request` asks for, as a transaction.
    pub(super) fn change_ring(
        &mut self,
        waiter: Waiter,
        request: super::Request,
        out: &mut NodeOutput,
    ) {
        let current = self.ring.as_ref().clone();
        if !self.joined {
            let reason = "this node has not joined a cluster yet; ask a member".to_string();
            return self.reply(&waiter, refused(reason), true, out);
        }
        if self.moving.is_some() {
            let reason = format!(
                "keys are still moving into epoch {}; retry once `haft status` shows no handoff",
                current.epoch
            );
            return self.reply(&waiter, refused(reason), true, out);
        }
        let mut next = RingState {
            epoch: current.epoch + 1,
            members: current.members.clone(),
            previous: current.ids(),
            removed: None,
            ..current.clone()
        };
        let mut joiner = None;
        match request {
            super::Request::Join { node, address } => {
                let node = NodeId(node);
                if current.members.contains_key(&node) {
                    let reason =
                        format!("node {node} is already a member of epoch {}", current.epoch);
                    return self.reply(&waiter, refused(reason), true, out);
                }
                next.members.insert(node, address.clone());
                joiner = Some(node);
                out.event(NodeEvent::Addresses(vec![(node, address)]));
            }
            super::Request::Leave { node } | super::Request::Remove { node } => {
                let remove = matches!(request, super::Request::Remove { .. });
                let node = NodeId(node);
                if next.members.remove(&node).is_none() {
                    let reason = format!("node {node} is not a member of epoch {}", current.epoch);
                    return self.reply(&waiter, refused(reason), true, out);
                }
                if next.members.is_empty() {
                    let reason = format!("node {node} is the last member; a ring needs one");
                    return self.reply(&waiter, refused(reason), true, out);
                }
                if remove {
                    if node == self.me {
                        let reason = format!("node {node} cannot remove itself; use `haft leave`");
                        return self.reply(&waiter, refused(reason), true, out);
                    }
                    next.removed = Some(node);
                }
            }
            _ => return,
        }
        let value = Some(next.encode());
        let key = Key::from_static(RING_KEY);
        let version = self.ring_version();
        let mut plan = TxnPlan::new();
        for member in current.members.keys() {
            if Some(*member) == next.removed {
                continue;
            }
            let part = plan.entry(*member).or_default();
            part.reads.insert(key.clone(), version);
            part.writes.insert(key.clone(), value.clone());
        }
        if let Some(joiner) = joiner {
            plan.entry(joiner)
                .or_default()
                .writes
                .insert(key.clone(), value);
        }
        self.begin_plan(waiter, plan, out);
    }

    /// Whether a Prepare is a ring change (it writes the ring key).
    pub(super) fn is_ring_change(prepare: &commit::Msg) -> bool {
        matches!(prepare, commit::Msg::Prepare { writes, .. } if writes.contains_key(RING_KEY))
    }

    /// Why this node refuses `prepare`, planned on `epoch`, if it does.
    pub(super) fn fence(&self, epoch: Epoch, prepare: &commit::Msg) -> Option<Refusal> {
        let commit::Msg::Prepare { reads, writes, .. } = prepare else {
            return None;
        };
        if Node::is_ring_change(prepare) {
            // Validated by its read of the ring key; only a node still moving
            // keys into its epoch keeps out of the next change.
            return self.moving.as_ref().map(|_| Refusal::NotHeld {
                key: Key::from_static(RING_KEY),
            });
        }
        let current = if self.joined {
            self.placement.epoch()
        } else {
            0
        };
        if epoch != current {
            return Some(Refusal::Epoch {
                planned: epoch,
                current,
            });
        }
        reads
            .keys()
            .chain(writes.keys())
            .find(|key| self.in_custody(key))
            .map(|key| Refusal::NotHeld { key: key.clone() })
    }

    /// Installs the ring the store holds if it is newer than the one this
    /// node runs (after a ring change committed here, or on recovery).
    pub(super) fn install_stored_ring(&mut self, out: &mut NodeOutput) {
        let Some(stored) = self.participant.committed(RING_KEY) else {
            return;
        };
        self.installed = Some(stored.version);
        let Some(ring) = RingState::decode(&stored.value) else {
            return;
        };
        if self.joined && ring.epoch <= self.ring.epoch {
            return;
        }
        let Ok(layout) = Layout::new(ring.epoch, &ring.ids(), ring.vnodes, ring.replicas) else {
            return;
        };
        let Ok(previous) = Layout::new(ring.epoch - 1, &ring.previous, ring.vnodes, ring.replicas)
        else {
            return;
        };
        let member = layout.is_member(self.me);
        out.event(NodeEvent::Addresses(
            ring.members
                .iter()
                .map(|(id, address)| (*id, address.clone()))
                .collect(),
        ));
        out.event(NodeEvent::Installed {
            epoch: ring.epoch,
            member,
        });
        Arc::make_mut(&mut self.detector).set_peers(layout.members(), self.estimator.clone());
        self.placement = Arc::new(layout);
        self.ring = Arc::new(ring.clone());
        self.joined = true;
        let taken = if self.handoff.epoch == ring.epoch {
            self.handoff.taken_from.clone()
        } else {
            BTreeSet::new()
        };
        // Stale copies of keys this node holds anew (from an epoch long
        // gone) must not mix with the handed-over values. A key whose source
        // has finished handing over (this is a restart) is no copy: it may
        // have been written since.
        let stale: Vec<Key> = self
            .participant
            .record()
            .store
            .sorted()
            .into_iter()
            .map(|(key, _)| key)
            .filter(|key| {
                let source = previous
                    .holders(key)
                    .into_iter()
                    .find(|node| Some(*node) != ring.removed);
                key.as_ref() != RING_KEY
                    && self.placement.holds(key, self.me)
                    && !previous.holds(key, self.me)
                    && !source.is_some_and(|source| taken.contains(&source))
            })
            .cloned()
            .collect();
        let mut inner = CommitOutput::at(out.end());
        self.participant.drop_keys(stale, &mut inner);
        self.absorb_commit(inner, out);
        let sources = previous
            .members()
            .iter()
            .copied()
            .filter(|source| *source != self.me && Some(*source) != ring.removed);
        let awaiting = if member {
            sources.filter(|source| !taken.contains(source)).collect()
        } else {
            BTreeSet::new()
        };
        self.moving = Some(Box::new(Move {
            previous: Arc::new(previous),
            removed: ring.removed,
            before: self.participant.prepared().collect(),
            outgoing: None,
            awaiting,
            parked: Vec::new(),
        }));
        if let Some(removed) = ring.removed {
            let mut inner = CommitOutput::at(out.end());
            self.coordinator.forget_participant(removed, &mut inner);
            self.absorb_commit(inner, out);
        }
        self.advance_move(out);
        for (client, id) in std::mem::take(&mut self.stale_reads) {
            self.reroute(client, id, super::Reroute::All, out);
        }
        // Reads waiting on a node that left the ring ask its successors.
        let waiting: Vec<_> = self.gathers.keys().copied().collect();
        for (client, id) in waiting {
            self.reroute(client, id, super::Reroute::Gone, out);
        }
        // A removed member is watched no more.
        self.watch_dead(out);
    }

    /// Takes the snapshot once the earlier transactions have settled, and
    /// finishes the move once both directions are done.
    pub(super) fn advance_move(&mut self, out: &mut NodeOutput) {
        let Some(moving) = self.moving.as_mut() else {
            return;
        };
        if moving.outgoing.is_none() {
            let prepared: BTreeSet<TxnId> = self.participant.prepared().collect();
            moving.before.retain(|txn| prepared.contains(txn));
            if !moving.before.is_empty() {
                return;
            }
            let outgoing = self.snapshot();
            let Some(moving) = self.moving.as_mut() else {
                return;
            };
            moving.outgoing = Some(outgoing);
            self.send_chunks(out);
        }
        let Some(moving) = self.moving.as_mut() else {
            return;
        };
        if !moving.awaiting.is_empty() {
            return;
        }
        let parked = std::mem::take(&mut moving.parked);
        if moving.outgoing.as_ref().is_some_and(BTreeMap::is_empty) {
            let gone: Vec<Key> = self
                .participant
                .record()
                .store
                .sorted()
                .into_iter()
                .map(|(key, _)| key)
                .filter(|key| key.as_ref() != RING_KEY && !self.placement.holds(key, self.me))
                .cloned()
                .collect();
            let mut inner = CommitOutput::at(out.end());
            self.participant.drop_keys(gone, &mut inner);
            self.absorb_commit(inner, out);
            self.moving = None;
            out.cancel_timer(NodeTimer::Handoff);
            self.depart_if_done(out);
        }
        for read in parked {
            self.serve_read(read, out);
        }
    }

    /// Departs ([`NodeEvent::Departed`]) if this node has left the ring,
    /// handed over its keys, and coordinates no transaction it has not
    /// forgotten: its participants must learn every outcome (a ring change's
    /// too) from it before it stops, or they would hold their locks for ever.
    pub(super) fn depart_if_done(&self, out: &mut NodeOutput) {
        if self.joined
            && self.moving.is_none()
            && !self.placement.is_member(self.me)
            && self.coordinator.txns().is_empty()
        {
            out.event(NodeEvent::Departed);
        }
    }

    /// The chunks this node owes each recipient, from its store as it stands.
    fn snapshot(&self) -> BTreeMap<NodeId, Outgoing> {
        let Some(moving) = self.moving.as_ref() else {
            return BTreeMap::new();
        };
        let handed =
            (self.handoff.epoch == self.placement.epoch()).then_some(&self.handoff.handed_to);
        let is_source = moving.previous.is_member(self.me) && moving.removed != Some(self.me);
        let mut entries: BTreeMap<NodeId, Vec<(Key, Versioned)>> = BTreeMap::new();
        if is_source {
            for recipient in self.placement.members() {
                if *recipient != self.me && !handed.is_some_and(|h| h.contains(recipient)) {
                    entries.insert(*recipient, Vec::new());
                }
            }
            for (key, versioned) in self.participant.record().store.sorted() {
                if key.as_ref() == RING_KEY {
                    continue;
                }
                let before = moving.previous.holders(key);
                let source = before.iter().find(|node| Some(**node) != moving.removed);
                if source != Some(&self.me) {
                    continue;
                }
                for holder in self.placement.holders(key) {
                    if !before.contains(&holder) {
                        if let Some(list) = entries.get_mut(&holder) {
                            list.push((key.clone(), versioned.clone()));
                        }
                    }
                }
            }
        }
        entries
            .into_iter()
            .map(|(to, list)| {
                let mut chunks = vec![Vec::new()];
                let mut bytes = 0;
                for entry in list {
                    let size = entry.0.len() + entry.1.value.len();
                    if bytes + size > CHUNK_BYTES && !chunks.last().is_some_and(Vec::is_empty) {
                        chunks.push(Vec::new());
                        bytes = 0;
                    }
                    bytes += size;
                    if let Some(chunk) = chunks.last_mut() {
                        chunk.push(entry);
                    }
                }
                (to, Outgoing { chunks, next: 0 })
            })
            .collect()
    }

    /// Sends each recipient its chunk in flight, and arms the resend timer.
    fn send_chunks(&self, out: &mut NodeOutput) {
        let Some(outgoing) = self.moving.as_ref().and_then(|m| m.outgoing.as_ref()) else {
            return;
        };
        let epoch = self.placement.epoch();
        for (to, owed) in outgoing {
            let Some(entries) = owed.chunks.get(owed.next) else {
                continue;
            };
            let msg = NodeMsg::Handoff {
                epoch,
                chunk: owed.next as u32,
                last: owed.next + 1 == owed.chunks.len(),
                entries: entries.clone(),
            };
            out.send(Dest::Node(*to), msg);
        }
        if !outgoing.is_empty() {
            out.set_timer(NodeTimer::Handoff, self.timing_resend.clone());
        }
    }

    /// The resend timer fired.
    pub(super) fn on_handoff_timer(&mut self, out: &mut NodeOutput) {
        self.send_chunks(out);
    }

    /// A chunk of keys handed to this node.
    pub(super) fn on_handoff(
        &mut self,
        from: NodeId,
        epoch: Epoch,
        chunk: u32,
        last: bool,
        entries: Vec<(Key, Versioned)>,
        out: &mut NodeOutput,
    ) {
        if epoch > self.placement.epoch() || !self.joined {
            return; // Not installed yet: the sender resends.
        }
        let awaited = epoch == self.placement.epoch()
            && self
                .moving
                .as_ref()
                .is_some_and(|moving| moving.awaiting.contains(&from));
        if awaited {
            let mut inner = CommitOutput::at(out.end());
            self.participant.copy_in(entries, &mut inner);
            self.absorb_commit(inner, out);
            if last {
                self.persist(NodeDelta::TookOver { epoch, from }, out);
                if let Some(moving) = self.moving.as_mut() {
                    moving.awaiting.remove(&from);
                }
            }
        }
        // The acknowledgement says the chunk is durable here.
        out.send_durable(Dest::Node(from), NodeMsg::HandoffAck { epoch, chunk });
        if awaited && last {
            self.advance_move(out);
        }
    }

    /// A recipient has a chunk durably.
    pub(super) fn on_handoff_ack(
        &mut self,
        from: NodeId,
        epoch: Epoch,
        chunk: u32,
        out: &mut NodeOutput,
    ) {
        if epoch != self.placement.epoch() {
            return;
        }
        let Some(outgoing) = self.moving.as_mut().and_then(|m| m.outgoing.as_mut()) else {
            return;
        };
        let Some(owed) = outgoing.get_mut(&from) else {
            return;
        };
        if owed.next != chunk as usize {
            return;
        }
        owed.next += 1;
        if owed.next < owed.chunks.len() {
            let msg = NodeMsg::Handoff {
                epoch,
                chunk: owed.next as u32,
                last: owed.next + 1 == owed.chunks.len(),
                entries: owed.chunks[owed.next].clone(),
            };
            out.send(Dest::Node(from), msg);
            return;
        }
        outgoing.remove(&from);
        self.persist(NodeDelta::HandedOff { epoch, to: from }, out);
        self.advance_move(out);
    }

    /// A member says it runs `epoch` without this node. If `from` is a member
    /// of this node's ring and `epoch` is later, this node was removed while
    /// it was down (a leave or a join needs its vote, and it installs those
    /// itself): it fences itself off.
    pub(super) fn on_not_member(&mut self, from: NodeId, epoch: Epoch, out: &mut NodeOutput) {
        if self.joined && self.placement.is_member(from) && epoch > self.placement.epoch() {
            self.fenced = true;
            out.event(NodeEvent::Fenced { epoch, by: from });
        }
    }

    /// Parks `read` if it asks for a key in custody; gives it back otherwise.
    pub(super) fn park_in_custody(&mut self, read: ParkedRead) -> Option<ParkedRead> {
        if !read.keys.iter().any(|key| self.in_custody(key)) {
            return Some(read);
        }
        if let Some(moving) = self.moving.as_mut() {
            if !moving.parked.contains(&read) {
                moving.parked.push(read);
            }
        }
        None
    }
}
