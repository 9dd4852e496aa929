//! The handoff machine of one node.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use super::HandoffOutput;
use super::layout::{Epoch, Layout, RingChange};
use super::message::{Event, Key, Msg, Op, Reply, Request, RequestId, Timer, Version, Versioned};
use super::record::{Delta, HandoffRecord};
use crate::NodeId;
use crate::output::Position;
use crate::ring::RingError;

/// The machine's settings. Every node of a cluster must use the same
/// `vnodes` and `replicas`, or they disagree on where keys live.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HandoffConfig {
    /// Points per member on the ring.
    pub vnodes: u32,
    /// Holders per key (the primary and its backups).
    pub replicas: usize,
    /// How often to resend a handoff or replica not yet acknowledged.
    pub resend_every: Range<Duration>,
}

/// Why a handoff machine could not start.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum HandoffError {
    /// `replicas` is 0.
    #[error("replicas is 0; each key needs at least one holder: set replicas to 1 or more")]
    NoReplicas,
    /// The record's ring cannot be built.
    #[error("the saved ring of epoch {epoch} cannot be built ({source}); the record is damaged")]
    Ring {
        /// The epoch.
        epoch: Epoch,
        /// Why.
        source: RingError,
    },
}

/// A write accepted by the primary and waiting for its backups.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Pending {
    request: RequestId,
    version: Version,
}

/// The handoff machine of one node: it holds the node's keys, serves the
/// keys of which it is the primary and holds the custody, replicates them to
/// their backups, and hands keys to their new primaries when the ring
/// changes.
///
/// Inputs are `handle_message`, `handle_timer` and `handle_persisted`; each
/// writes a [`HandoffOutput`] that the driver carries out in the order of
/// [`crate::output`]. **The driver makes the output of
/// [`Handoff::recover`] durable before it hands the machine any input.**
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Handoff {
    me: NodeId,
    config: HandoffConfig,
    record: HandoffRecord,
    /// The installed ring, and the one before it (to know which keys are
    /// still owed); derived from the record.
    current: Option<Arc<Layout>>,
    previous: Option<Arc<Layout>>,
    /// Writes waiting for their backups, per key. Volatile: after a crash the
    /// client's retry finds the write stored (its id is the key's writer).
    pending: BTreeMap<Key, Vec<Pending>>,
    /// Per backup, the keys (and versions) it has not acknowledged. Volatile:
    /// recovery replicates every key served to every backup again.
    replicating: BTreeMap<NodeId, BTreeMap<Key, Version>>,
    /// The position of the latest delta, until it is durable.
    undurable: Option<Position>,
    /// Whether the resend timer is armed.
    armed: bool,
}

impl Handoff {
    /// Starts the machine from its durable record: the default record for a
    /// node that joins a running cluster (it waits for a ring announcement),
    /// [`HandoffRecord::founded`] for a member of a cluster's first ring.
    ///
    /// Every handoff not yet acknowledged is sent again, and every key served
    /// is replicated again to its backups.
    pub fn recover(
        me: NodeId,
        config: HandoffConfig,
        record: HandoffRecord,
        out: &mut HandoffOutput,
    ) -> Result<Handoff, HandoffError> {
        if config.replicas == 0 {
            return Err(HandoffError::NoReplicas);
        }
        let mut machine = Handoff {
            me,
            config,
            record,
            current: None,
            previous: None,
            pending: BTreeMap::new(),
            replicating: BTreeMap::new(),
            undurable: None,
            armed: false,
        };
        if let Some(ring) = machine.record.ring.clone() {
            let layout = |epoch, members| {
                Layout::new(
                    epoch,
                    members,
                    machine.config.vnodes,
                    machine.config.replicas,
                )
                .map(Arc::new)
                .map_err(|source| HandoffError::Ring { epoch, source })
            };
            machine.current = Some(layout(ring.epoch, &ring.members)?);
            if !ring.previous.is_empty() {
                machine.previous = Some(layout(ring.epoch.saturating_sub(1), &ring.previous)?);
            }
        }
        let served: Vec<Key> = machine
            .record
            .store
            .keys()
            .filter(|key| machine.serves(key))
            .cloned()
            .collect();
        machine.replicate_to_all(served.iter(), None, out);
        for (epoch, to) in machine.record.handing.keys().copied().collect::<Vec<_>>() {
            machine.send_handoff(epoch, to, out);
        }
        machine.try_install(out);
        machine.finish(out);
        Ok(machine)
    }

    // --- getters -------------------------------------------------------------

    /// This node.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// The durable record this memory implies.
    pub fn record(&self) -> &HandoffRecord {
        &self.record
    }

    /// The epoch of the installed ring (`None`: none yet).
    pub fn epoch(&self) -> Option<Epoch> {
        self.record.epoch()
    }

    /// Whether this node is a member of its installed ring.
    pub fn is_member(&self) -> bool {
        self.current
            .as_ref()
            .is_some_and(|layout| layout.is_member(self.me))
    }

    /// The value this node holds for `key` (a primary's, a backup's, or one
    /// kept for a handoff not yet acknowledged).
    pub fn held(&self, key: &[u8]) -> Option<&Versioned> {
        self.record.store.get(key)
    }

    /// Whether this node answers reads and accepts writes of `key` now: it is
    /// the key's primary at its epoch and holds the key's custody (the
    /// previous primary's handoff has arrived).
    pub fn serves(&self, key: &[u8]) -> bool {
        let Some(current) = &self.current else {
            return false;
        };
        if current.primary(key) != self.me {
            return false;
        }
        match &self.previous {
            Some(previous) => {
                let before = previous.primary(key);
                before == self.me || !self.record.awaiting.contains(&before)
            }
            None => true,
        }
    }

    /// Whether `key` is in a handoff this node has sent and not yet seen
    /// acknowledged.
    pub fn is_handing(&self, key: &[u8]) -> bool {
        self.record.is_handing(key)
    }

    /// Whether nothing is in motion here: no ring waits to be installed, no
    /// handoff is awaited or unacknowledged, every backup holds every key
    /// served, and no write waits for its backups.
    pub fn is_settled(&self) -> bool {
        self.record.queued.is_empty()
            && self.record.awaiting.is_empty()
            && self.record.handing.is_empty()
            && self.replicating.values().all(BTreeMap::is_empty)
            && self.pending.is_empty()
    }

    // --- inputs --------------------------------------------------------------

    /// Every delta at a position below `upto` is durable.
    pub fn handle_persisted(&mut self, upto: Position) {
        if self.undurable.is_some_and(|position| position < upto) {
            self.undurable = None;
        }
    }

    /// Handles one message from `from`.
    pub fn handle_message(&mut self, from: NodeId, msg: Msg, out: &mut HandoffOutput) {
        match msg {
            Msg::Ring(change) => self.on_ring(from, change, out),
            Msg::Request { request, forwarded } => self.on_request(request, forwarded, out),
            Msg::Handoff { epoch, entries } => self.on_handoff(from, epoch, entries, out),
            Msg::HandoffAck { epoch } => self.on_handoff_ack(from, epoch, out),
            Msg::Replicate { epoch, entries } => self.on_replicate(from, epoch, entries, out),
            Msg::ReplicateAck { entries, .. } => self.on_replicate_ack(from, entries, out),
            // The primary's answer to a request of a client attached here.
            Msg::Answer { request, reply } if request.origin == self.me => {
                out.event(Event::Answered { request, reply });
            }
            // Addressed to administrators and other clients.
            Msg::RingAck { .. } | Msg::Answer { .. } => {}
        }
        self.finish(out);
    }

    /// Handles a request of a client attached to this node (its id's origin
    /// is this node): the answer comes back as an [`Event::Answered`], from
    /// this machine or, once the key's primary has answered, from the
    /// [`Msg::Answer`] that reaches it. Requests forwarded by other nodes come
    /// through [`Handoff::handle_message`].
    pub fn handle_request(&mut self, request: Request, out: &mut HandoffOutput) {
        self.on_request(request, false, out);
        self.finish(out);
    }

    /// Handles a timer.
    pub fn handle_timer(&mut self, timer: &Timer, out: &mut HandoffOutput) {
        match timer {
            Timer::Resend => {
                self.armed = false;
                // No lost keys under loss: a handoff or replica is sent again
                // until its receiver acknowledges it.
                for (epoch, to) in self.record.handing.keys().copied().collect::<Vec<_>>() {
                    self.send_handoff(epoch, to, out);
                }
                for backup in self.replicating.keys().copied().collect::<Vec<_>>() {
                    self.send_replicas(backup, out);
                }
            }
        }
        self.finish(out);
    }

    // --- handlers ------------------------------------------------------------

    fn on_ring(&mut self, from: NodeId, change: RingChange, out: &mut HandoffOutput) {
        let known = self
            .record
            .queued
            .last()
            .map(|ring| ring.epoch)
            .or(self.epoch());
        let epoch = change.epoch;
        match known {
            // A duplicate: acknowledged again, resting on its record.
            Some(known) if epoch <= known => {}
            // Rings are installed one after the other; a later one waits for
            // the administrator's resend.
            Some(known) if epoch != known + 1 => return,
            _ => {
                if let Err(reason) = Layout::new(
                    epoch,
                    &change.members,
                    self.config.vnodes,
                    self.config.replicas,
                ) {
                    out.event(Event::RingRefused {
                        epoch,
                        reason: reason.to_string(),
                    });
                    return;
                }
                self.change(Delta::Queued(change), out);
            }
        }
        out.send_resting_on(from, Msg::RingAck { epoch }, self.is_durable());
        self.try_install(out);
    }

    /// Installs the queued rings, one after the other, for as long as this
    /// node owes nothing to the ring before: it hands over only keys whose
    /// custody it holds, so a key has one chain of custody and its newest
    /// primary receives every write ("no lost keys").
    fn try_install(&mut self, out: &mut HandoffOutput) {
        while self.record.awaiting.is_empty() {
            let Some(ring) = self.record.queued.first().cloned() else {
                return;
            };
            if self.install(ring, out).is_err() {
                // Validated when queued; a damaged record stops here.
                return;
            }
        }
    }

    fn install(&mut self, ring: RingChange, out: &mut HandoffOutput) -> Result<(), RingError> {
        let (vnodes, replicas) = (self.config.vnodes, self.config.replicas);
        let next = Arc::new(Layout::new(ring.epoch, &ring.members, vnodes, replicas)?);
        let had_custody = self.current.is_some();
        let old = match self.current.clone() {
            Some(current) => Some(current),
            None if ring.previous.is_empty() => None,
            None => Some(Arc::new(Layout::new(
                ring.epoch.saturating_sub(1),
                &ring.previous,
                vnodes,
                replicas,
            )?)),
        };
        let handoffs = old
            .as_ref()
            .map(|old| old.handoffs_to(&next))
            .unwrap_or_default();
        let me = self.me;
        let awaiting: BTreeSet<NodeId> = handoffs
            .iter()
            .filter(|(_, to)| *to == me)
            .map(|(from, _)| *from)
            .collect();
        let mut handing: BTreeMap<NodeId, BTreeSet<Key>> = BTreeMap::new();
        if let (true, Some(old)) = (had_custody, &old) {
            // Every range this node was primary of and that moves: its keys
            // go, with custody, to the new primary.
            for (_, to) in handoffs.iter().filter(|(from, _)| *from == me) {
                handing.entry(*to).or_default();
            }
            for key in self.record.store.keys() {
                let to = next.primary(key);
                if old.primary(key) == me && to != me {
                    handing.entry(to).or_default().insert(key.clone());
                }
            }
        }
        let dropped: BTreeSet<Key> = self
            .record
            .store
            .keys()
            .filter(|key| {
                !next.holds(key, me)
                    && !self.record.is_handing(key)
                    && !handing.values().any(|keys| keys.contains(*key))
            })
            .cloned()
            .collect();
        let epoch = ring.epoch;
        let receivers: Vec<NodeId> = handing.keys().copied().collect();
        self.change(
            Delta::Installed {
                ring,
                awaiting,
                handing,
                dropped,
            },
            out,
        );
        self.previous = old.clone();
        self.current = Some(next.clone());
        // A write waiting for its backups whose key has moved: its client
        // asks again and finds it at the new primary, which received it with
        // the key (its id is the key's writer).
        let moved: Vec<Key> = self
            .pending
            .keys()
            .filter(|key| next.primary(key) != me)
            .cloned()
            .collect();
        for key in moved {
            for pending in self.pending.remove(&key).unwrap_or_default() {
                self.reply(pending.request, Reply::Retry, out);
            }
        }
        // Backups of the new ring get every key served that they did not hold.
        self.replicating.retain(|backup, _| next.is_member(*backup));
        let served: Vec<Key> = self
            .record
            .store
            .keys()
            .filter(|key| self.serves(key))
            .cloned()
            .collect();
        self.replicate_to_all(served.iter(), old.as_deref(), out);
        for to in receivers {
            self.send_handoff(epoch, to, out);
        }
        out.event(Event::Installed { epoch });
        Ok(())
    }

    fn on_handoff(
        &mut self,
        from: NodeId,
        epoch: Epoch,
        entries: Vec<(Key, Versioned)>,
        out: &mut HandoffOutput,
    ) {
        let Some(installed) = self.epoch() else {
            return;
        };
        // Not installed yet: the sender resends it.
        if epoch > installed {
            return;
        }
        if epoch == installed && self.record.awaiting.contains(&from) {
            let keys: Vec<Key> = entries.iter().map(|(key, _)| key.clone()).collect();
            self.change(Delta::Received { from, entries }, out);
            // No lost keys: acknowledged only once the keys are durable here.
            out.send_durable(from, Msg::HandoffAck { epoch });
            self.replicate_to_all(keys.iter(), None, out);
            self.try_install(out);
        } else {
            // A duplicate of a handoff received before.
            out.send_resting_on(from, Msg::HandoffAck { epoch }, self.is_durable());
        }
    }

    fn on_handoff_ack(&mut self, from: NodeId, epoch: Epoch, out: &mut HandoffOutput) {
        let Some(keys) = self.record.handing.get(&(epoch, from)) else {
            return;
        };
        let me = self.me;
        let dropped: BTreeSet<Key> =
            keys.iter()
                .filter(|key| {
                    let elsewhere =
                        self.record.handing.iter().any(|(handoff, keys)| {
                            *handoff != (epoch, from) && keys.contains(*key)
                        });
                    let held = self.current.as_ref().is_some_and(|c| c.holds(key, me));
                    !held && !elsewhere
                })
                .cloned()
                .collect();
        self.change(
            Delta::Released {
                epoch,
                to: from,
                dropped,
            },
            out,
        );
        out.event(Event::HandedOff { epoch, to: from });
    }

    fn on_request(&mut self, request: Request, forwarded: bool, out: &mut HandoffOutput) {
        let Some(current) = self.current.clone() else {
            // No ring yet: the client's retry finds one.
            return;
        };
        let primary = current.primary(&request.key);
        if primary != self.me {
            if forwarded {
                self.reply(request.id, Reply::Retry, out);
            } else {
                // One writer per key and epoch: only the primary accepts.
                let msg = Msg::Request {
                    request,
                    forwarded: true,
                };
                out.send(primary, msg);
            }
            return;
        }
        if !self.serves(&request.key) {
            // The key's custody has not arrived: its value here may be old.
            self.reply(request.id, Reply::Retry, out);
            return;
        }
        match request.op {
            Op::Get => {
                let value = self.record.store.get(&request.key).cloned();
                self.reply(request.id, Reply::Read(value), out);
            }
            Op::Put(value) => self.write(request.id, request.key, Some(value), out),
            Op::Delete => self.write(request.id, request.key, None, out),
        }
    }

    fn write(
        &mut self,
        request: RequestId,
        key: Key,
        value: Option<crate::rebalance::Value>,
        out: &mut HandoffOutput,
    ) {
        let Some(current) = self.current.clone() else {
            return;
        };
        let held = self.record.store.get(&key);
        if let Some(held) = held {
            if held.writer == request {
                // A duplicate: answered once the backups hold it.
                let version = held.version;
                if self.is_replicating(&key) {
                    let waiting = self.pending.entry(key).or_default();
                    if !waiting.iter().any(|p| p.request == request) {
                        waiting.push(Pending { request, version });
                    }
                } else {
                    self.reply(request, Reply::Written(version), out);
                }
                return;
            }
            if held.writer.origin == request.origin && held.writer.seq > request.seq {
                self.reply(request, Reply::Superseded, out);
                return;
            }
        }
        let version = match held {
            Some(held) if held.version.epoch >= current.epoch() => Version {
                epoch: held.version.epoch,
                seq: held.version.seq + 1,
            },
            _ => Version {
                epoch: current.epoch(),
                seq: 1,
            },
        };
        let versioned = Versioned {
            version,
            value,
            writer: request,
        };
        self.change(
            Delta::Stored {
                key: key.clone(),
                versioned,
            },
            out,
        );
        self.pending
            .entry(key.clone())
            .or_default()
            .push(Pending { request, version });
        self.replicate_to_all([&key], None, out);
        self.answer_pending(&key, out);
    }

    fn on_replicate(
        &mut self,
        from: NodeId,
        epoch: Epoch,
        entries: Vec<(Key, Versioned)>,
        out: &mut HandoffOutput,
    ) {
        let (Some(installed), Some(current)) = (self.epoch(), self.current.clone()) else {
            return;
        };
        // Not installed yet: the primary resends it.
        if epoch > installed {
            return;
        }
        let mut acknowledged = Vec::with_capacity(entries.len());
        for (key, versioned) in entries {
            let newer = self
                .record
                .store
                .get(&key)
                .is_none_or(|held| held.version < versioned.version);
            let version = versioned.version;
            if newer && current.holds(&key, self.me) {
                self.change(
                    Delta::Stored {
                        key: key.clone(),
                        versioned,
                    },
                    out,
                );
            }
            acknowledged.push((key, version));
        }
        let ack = Msg::ReplicateAck {
            epoch,
            entries: acknowledged,
        };
        out.send_resting_on(from, ack, self.is_durable());
    }

    fn on_replicate_ack(
        &mut self,
        from: NodeId,
        entries: Vec<(Key, Version)>,
        out: &mut HandoffOutput,
    ) {
        let Some(waiting) = self.replicating.get_mut(&from) else {
            return;
        };
        let mut keys = Vec::new();
        for (key, version) in entries {
            if waiting.get(&key).is_some_and(|wanted| *wanted <= version) {
                waiting.remove(&key);
                keys.push(key);
            }
        }
        if waiting.is_empty() {
            self.replicating.remove(&from);
        }
        for key in keys {
            self.answer_pending(&key, out);
        }
    }

    // --- helpers -------------------------------------------------------------

    /// Whether some backup has not acknowledged `key`'s latest value.
    fn is_replicating(&self, key: &[u8]) -> bool {
        self.replicating.values().any(|keys| keys.contains_key(key))
    }

    /// Answers the writes of `key` that wait for no backup any more.
    fn answer_pending(&mut self, key: &Key, out: &mut HandoffOutput) {
        if self.is_replicating(key) {
            return;
        }
        for pending in self.pending.remove(key).unwrap_or_default() {
            self.reply(pending.request, Reply::Written(pending.version), out);
        }
    }

    /// Replicates `keys` to every backup of the installed ring — or, with
    /// `before`, only to the backups that did not hold a key in that ring —
    /// and sends the replicas.
    fn replicate_to_all<'k>(
        &mut self,
        keys: impl IntoIterator<Item = &'k Key>,
        before: Option<&Layout>,
        out: &mut HandoffOutput,
    ) {
        let Some(current) = self.current.clone() else {
            return;
        };
        let mut touched = BTreeSet::new();
        for key in keys {
            let Some(held) = self.record.store.get(key) else {
                continue;
            };
            for backup in current.holders(key).into_iter().skip(1) {
                if before.is_some_and(|before| before.holds(key, backup)) {
                    continue;
                }
                self.replicating
                    .entry(backup)
                    .or_default()
                    .insert(key.clone(), held.version);
                touched.insert(backup);
            }
        }
        for backup in touched {
            self.send_replicas(backup, out);
        }
    }

    /// Sends `backup` the current value of every key it has not acknowledged.
    fn send_replicas(&self, backup: NodeId, out: &mut HandoffOutput) {
        let (Some(epoch), Some(keys)) = (self.epoch(), self.replicating.get(&backup)) else {
            return;
        };
        let entries = self.entries(keys.keys());
        // A replica carries a version that must not be given twice: it
        // leaves once the write is durable here.
        out.send_resting_on(backup, Msg::Replicate { epoch, entries }, self.is_durable());
    }

    /// Sends the handoff of `epoch` to `to`, with the current values of its
    /// keys. It waits for the installation's record: a node that crashed
    /// before that would serve the keys again at the old epoch.
    fn send_handoff(&self, epoch: Epoch, to: NodeId, out: &mut HandoffOutput) {
        let Some(keys) = self.record.handing.get(&(epoch, to)) else {
            return;
        };
        let entries = self.entries(keys.iter());
        out.send_resting_on(to, Msg::Handoff { epoch, entries }, self.is_durable());
    }

    /// The values this node holds for `keys`, for a handoff or a replica.
    fn entries<'k>(&self, keys: impl Iterator<Item = &'k Key>) -> Vec<(Key, Versioned)> {
        keys.filter_map(|key| Some((key.clone(), self.record.store.get(key)?.clone())))
            .collect()
    }

    /// Answers `request` at its origin: an event if that is this node, a
    /// message otherwise. A reply may announce a write, so it rests on what
    /// is not yet durable.
    fn reply(&self, request: RequestId, reply: Reply, out: &mut HandoffOutput) {
        if request.origin == self.me {
            out.event(Event::Answered { request, reply });
        } else {
            let answer = Msg::Answer { request, reply };
            out.send_resting_on(request.origin, answer, self.is_durable());
        }
    }

    fn change(&mut self, delta: Delta, out: &mut HandoffOutput) {
        self.record.apply(&delta);
        self.undurable = Some(out.persist(delta));
    }

    fn is_durable(&self) -> bool {
        self.undurable.is_none()
    }

    /// Arms the resend timer exactly while something waits for an
    /// acknowledgement.
    fn finish(&mut self, out: &mut HandoffOutput) {
        let waiting = !self.record.handing.is_empty()
            || self.replicating.values().any(|keys| !keys.is_empty());
        if waiting && !self.armed {
            out.set_timer(Timer::Resend, self.config.resend_every.clone());
            self.armed = true;
        } else if !waiting && self.armed {
            out.cancel_timer(Timer::Resend);
            self.armed = false;
        }
    }
}
