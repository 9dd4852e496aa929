//! The participant: validates, votes, holds its promise, and applies the
//! outcome.
//!
//! A participant locks what a transaction touches when it votes Yes: shared
//! locks on the keys it read, exclusive locks on the keys it writes. It refuses
//! when a read key's version moved. When a lock is held by an older
//! transaction (a lower id), the Prepare waits, in arrival order, until the
//! holder's outcome frees it — a client that writes a key right after its
//! previous write to that key was answered would otherwise be refused, since
//! the participants learn an outcome after the client does. When the holder
//! is younger, it refuses (`Locked`): waits only ever go from a higher id to a
//! lower one, so no cycle of waits, no deadlock, can form (the "wait-die" rule
//! of Rosenkrantz, Stearns & Lewis, 1978, with ids for ages). Nothing about a
//! waiting Prepare is saved, so a crash just drops it; the coordinator's Abort
//! also ends a wait. Because every participant
//! holds all of a transaction's locks from its vote until it learns the
//! outcome, and the coordinator commits only once every participant has voted,
//! all the locks are held together at the commit decision: committed
//! transactions are serializable in the order of their decisions
//! (strict two-phase locking, taken at prepare time, with optimistic reads
//! validated under the locks, as in Sinfonia's minitransactions: Aguilera et
//! al., SOSP 2007).
//!
//! Each rule names the property it protects: AC1 agreement, AC2
//! irrevocability, AC5 termination, durability of acknowledged commits,
//! serializability.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use super::message::{
    Event, Key, Msg, Outcome, ReadSet, Refusal, Timer, Versioned, Vote, WriteSet,
};
use super::record::{Delta, ParticipantDelta, ParticipantRecord, TxnRecord};
use super::store::KeyMap;
use super::{CommitOutput, TxnId};
use crate::NodeId;
use crate::output::Position;

/// The participant's settings.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ParticipantConfig {
    /// How long to stay prepared before asking for the outcome.
    pub uncertain_after: Range<Duration>,
}

/// The locks on one key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct Lock {
    writer: Option<TxnId>,
    readers: BTreeSet<TxnId>,
}

/// The participant of one node. Its memory is its durable record plus locks
/// derived from the prepared records.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Participant {
    me: NodeId,
    config: ParticipantConfig,
    record: ParticipantRecord,
    locks: KeyMap<Lock>,
    /// Transactions whose latest delta may not be durable yet, with its
    /// position: a message that rests on that delta waits for it.
    undurable: BTreeMap<TxnId, Position>,
    /// Prepares waiting for a lock, in arrival order. Volatile.
    waiting: Vec<Waiting>,
}

/// A Prepare waiting for a lock.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Waiting {
    coordinator: NodeId,
    txn: TxnId,
    reads: ReadSet,
    writes: WriteSet,
    peers: Vec<NodeId>,
}

impl Participant {
    /// A participant that has never run.
    pub fn new(me: NodeId, config: ParticipantConfig) -> Participant {
        Participant::recover(
            me,
            config,
            ParticipantRecord::default(),
            &mut CommitOutput::at(0),
        )
    }

    /// Rebuilds the participant from its durable record. A prepared
    /// participant is still bound by its Yes vote (AC1): it stays uncertain,
    /// holding its locks, and asks for the outcome (AC5).
    pub fn recover(
        me: NodeId,
        config: ParticipantConfig,
        record: ParticipantRecord,
        out: &mut CommitOutput,
    ) -> Participant {
        let mut participant = Participant {
            me,
            config,
            record,
            locks: KeyMap::new(),
            undurable: BTreeMap::new(),
            waiting: Vec::new(),
        };
        let prepared: Vec<(TxnId, BTreeSet<Key>, Vec<Key>)> = participant
            .record
            .txns
            .iter()
            .filter_map(|(txn, record)| match record {
                TxnRecord::Prepared { reads, writes, .. } => {
                    Some((*txn, reads.clone(), writes.keys().cloned().collect()))
                }
                _ => None,
            })
            .collect();
        for (txn, reads, writes) in prepared {
            participant.lock(txn, reads.iter(), writes.iter());
            out.set_timer(
                Timer::Uncertain(txn),
                participant.config.uncertain_after.clone(),
            );
        }
        participant
    }

    // --- getters -------------------------------------------------------------

    /// This participant's node.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// The durable record as it stands in memory.
    pub fn record(&self) -> &ParticipantRecord {
        &self.record
    }

    /// The committed value of `key`, unless a prepared transaction is about to
    /// write it: then `Err` names that transaction, and a linearizable read
    /// must wait for its outcome (the writer may already be committed and its
    /// client told so).
    pub fn read(&self, key: &[u8]) -> Result<Option<&Versioned>, TxnId> {
        match self.locks.get(key).and_then(|lock| lock.writer) {
            Some(writer) => Err(writer),
            None => Ok(self.record.store.get(key)),
        }
    }

    /// The committed value of `key`, ignoring locks (status and tests).
    pub fn committed(&self, key: &[u8]) -> Option<&Versioned> {
        self.record.store.get(key)
    }

    /// The outcome this participant has reached for `txn`, if any.
    pub fn outcome(&self, txn: TxnId) -> Option<Outcome> {
        match self.record.txns.get(&txn)? {
            TxnRecord::Decided(outcome) => Some(*outcome),
            TxnRecord::Refused(_) => Some(Outcome::Abort),
            TxnRecord::Prepared { .. } => None,
        }
    }

    /// The transactions this participant has voted Yes on and not yet learned
    /// the outcome of.
    pub fn prepared(&self) -> impl Iterator<Item = TxnId> + '_ {
        self.record
            .txns
            .iter()
            .filter(|(_, record)| matches!(record, TxnRecord::Prepared { .. }))
            .map(|(txn, _)| *txn)
    }

    /// Whether this participant is in doubt about no transaction (prepared,
    /// outcome unknown) and has no Prepare waiting for a lock.
    pub fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.prepared().next().is_none()
    }

    // --- inputs --------------------------------------------------------------

    /// Every delta at a position below `upto` is durable.
    pub fn handle_persisted(&mut self, upto: Position) {
        self.undurable.retain(|_, position| *position >= upto);
    }

    /// Handles one message from `from`.
    pub fn handle_message(&mut self, from: NodeId, msg: Msg, out: &mut CommitOutput) {
        match msg {
            Msg::Prepare {
                txn,
                reads,
                writes,
                peers,
                finished_below,
            } => {
                self.advance_watermark(txn.node(), finished_below, out);
                self.on_prepare(from, txn, reads, writes, peers, out);
            }
            Msg::Outcome { txn, outcome } => self.on_outcome(from, txn, outcome, out),
            Msg::Query { txn } => {
                // Cooperative termination: tell an uncertain peer the decision,
                // if we have learned it. It is final whether or not our record
                // of it is durable yet. Only a decision is passed on, never a
                // refusal: the asker then waits for the coordinator.
                if let Some(TxnRecord::Decided(outcome)) = self.record.txns.get(&txn) {
                    out.send(
                        from,
                        Msg::Outcome {
                            txn,
                            outcome: *outcome,
                        },
                    );
                }
            }
            // Not addressed to a participant.
            Msg::Vote { .. } | Msg::Ack { .. } => {}
        }
    }

    /// Handles a timer.
    pub fn handle_timer(&mut self, timer: &Timer, out: &mut CommitOutput) {
        let Timer::Uncertain(txn) = timer else {
            return;
        };
        let Some(TxnRecord::Prepared { peers, .. }) = self.record.txns.get(txn) else {
            return;
        };
        // AC1: a prepared participant may not decide alone; it asks the
        // coordinator and, for cooperative termination, its ring successor
        // among the peers (AC5). Asking one peer rather than all keeps the
        // traffic linear; knowledge still spreads, because an uncertain
        // successor asks its own successor, and so on round the ring.
        out.send(txn.node(), Msg::Query { txn: *txn });
        if let Some(peer) = peers.first() {
            out.send(*peer, Msg::Query { txn: *txn });
        }
        out.set_timer(Timer::Uncertain(*txn), self.config.uncertain_after.clone());
    }

    /// Votes No on a new Prepare for a reason only the participant's driver
    /// can see (its node runs another ring epoch, or does not hold a key
    /// yet). The refusal is recorded like any other, so a duplicate of the
    /// Prepare is answered No again (AC2). Returns `false`, doing nothing, if
    /// the participant already knows `txn` (voted, refused, decided, waiting
    /// for a lock, or finished): the Prepare is then a duplicate, to be
    /// handled by [`Participant::handle_message`].
    pub fn refuse(
        &mut self,
        coordinator: NodeId,
        txn: TxnId,
        refusal: Refusal,
        out: &mut CommitOutput,
    ) -> bool {
        if self.record.txns.contains_key(&txn)
            || self.is_finished(txn)
            || self.waiting.iter().any(|w| w.txn == txn)
        {
            return false;
        }
        let vote = Vote::No(refusal.clone());
        self.change(txn, ParticipantDelta::Refused { txn, refusal }, out);
        out.send_resting_on(coordinator, Msg::Vote { txn, vote }, self.is_durable(txn));
        true
    }

    /// Stores values handed over by another node when the ring changed (see
    /// [`crate::node`]): each replaces the key's value here. The driver
    /// copies only keys no transaction of this node has locked.
    pub fn copy_in(&mut self, entries: Vec<(Key, Versioned)>, out: &mut CommitOutput) {
        if entries.is_empty() {
            return;
        }
        let delta = ParticipantDelta::Copied { entries };
        self.record.apply(&delta);
        out.persist(Delta::Participant(delta));
    }

    /// Drops keys this node no longer holds from the store.
    pub fn drop_keys(&mut self, keys: Vec<Key>, out: &mut CommitOutput) {
        if keys.is_empty() {
            return;
        }
        let delta = ParticipantDelta::Dropped { keys };
        self.record.apply(&delta);
        out.persist(Delta::Participant(delta));
    }

    // --- handlers ------------------------------------------------------------

    fn on_prepare(
        &mut self,
        coordinator: NodeId,
        txn: TxnId,
        reads: ReadSet,
        writes: WriteSet,
        peers: Vec<NodeId>,
        out: &mut CommitOutput,
    ) {
        let vote = match self.record.txns.get(&txn) {
            // A duplicate: repeat the vote, which rests on the record.
            Some(TxnRecord::Prepared { .. }) => Vote::Yes,
            // Aborted before voting Yes: the answer stays No (AC2).
            Some(TxnRecord::Refused(refusal)) => Vote::No(refusal.clone()),
            Some(TxnRecord::Decided(Outcome::Abort)) => Vote::No(Refusal::Finished),
            Some(TxnRecord::Decided(Outcome::Commit)) => return,
            // Older than everything its coordinator still runs: a late copy of
            // a finished transaction. Preparing it again would take locks no
            // one will ever release.
            None if self.is_finished(txn) => {
                out.send(
                    coordinator,
                    Msg::Vote {
                        txn,
                        vote: Vote::No(Refusal::Finished),
                    },
                );
                return;
            }
            // Already waiting for a lock: the vote comes when it is free.
            None if self.waiting.iter().any(|w| w.txn == txn) => return,
            None => {
                let waiting = Waiting {
                    coordinator,
                    txn,
                    reads,
                    writes,
                    peers,
                };
                if let Err(waiting) = self.prepare(waiting, out) {
                    self.waiting.push(waiting);
                }
                return;
            }
        };
        // AC1 across crashes: a Yes leaves only once the prepared record is
        // durable.
        out.send_resting_on(coordinator, Msg::Vote { txn, vote }, self.is_durable(txn));
    }

    /// Votes on a new transaction, or gives it back if a lock it needs is
    /// held by another.
    fn prepare(&mut self, w: Waiting, out: &mut CommitOutput) -> Result<(), Waiting> {
        let vote = match self.validate(w.txn, &w.reads, &w.writes) {
            Ok(vote) => vote,
            // Wait only for older holders (lower ids): every wait then goes
            // from a higher id to a lower one, so no cycle of waits — no
            // deadlock — can form, across participants too. A client's next
            // transaction through the same node has a higher id than its last,
            // so it waits for it rather than being refused.
            Err((_, by)) if w.txn > by => return Err(w),
            Err((key, by)) => Vote::No(Refusal::Locked { key, by }),
        };
        let txn = w.txn;
        let delta = match &vote {
            Vote::Yes => ParticipantDelta::Prepared {
                txn,
                reads: w.reads.keys().cloned().collect(),
                writes: Arc::new(w.writes),
                peers: w.peers,
            },
            // The only time a participant may decide alone: before voting Yes.
            // The refusal is saved so that a duplicate Prepare is answered No
            // again (AC2).
            Vote::No(refusal) => ParticipantDelta::Refused {
                txn,
                refusal: refusal.clone(),
            },
        };
        self.change(txn, delta, out);
        if vote == Vote::Yes {
            out.set_timer(Timer::Uncertain(txn), self.config.uncertain_after.clone());
        }
        // AC1 across crashes: a Yes leaves only once the prepared record is
        // durable.
        out.send_resting_on(w.coordinator, Msg::Vote { txn, vote }, self.is_durable(txn));
        Ok(())
    }

    /// Gives the waiting Prepares another try, in arrival order, once locks
    /// were freed. One that became finished in the meantime (its coordinator
    /// gave up on it) is dropped.
    fn retry_waiting(&mut self, out: &mut CommitOutput) {
        let waiting = std::mem::take(&mut self.waiting);
        for w in waiting {
            if self.is_finished(w.txn) {
                continue;
            }
            if let Err(w) = self.prepare(w, out) {
                self.waiting.push(w);
            }
        }
    }

    fn on_outcome(&mut self, from: NodeId, txn: TxnId, outcome: Outcome, out: &mut CommitOutput) {
        // The acknowledgement goes to whoever sent the outcome, except that a
        // decision learned from a peer is acknowledged to the coordinator,
        // which waits for it to forget the transaction.
        let mut ack_to = from;
        let reached = match self.record.txns.get(&txn) {
            Some(TxnRecord::Prepared { .. }) => {
                self.learn(txn, outcome, out);
                ack_to = txn.node();
                outcome
            }
            // Already decided: acknowledge again, since the sender resends
            // until it hears an acknowledgement (AC5). Peers ignore Acks.
            Some(TxnRecord::Decided(decided)) => *decided,
            Some(TxnRecord::Refused(_)) => Outcome::Abort,
            // Finished and forgotten: a late copy.
            None if self.is_finished(txn) => return,
            // Never voted: an Abort settles it (AC5 for a participant whose
            // Prepare was lost). A Commit for a transaction this participant
            // never prepared cannot be applied, so it is not acknowledged.
            None => {
                if outcome == Outcome::Commit {
                    return;
                }
                self.waiting.retain(|w| w.txn != txn);
                self.change(txn, ParticipantDelta::Decided { txn, outcome }, out);
                outcome
            }
        };
        // Durability: the Ack says the outcome is durable here.
        let ack = Msg::Ack {
            txn,
            outcome: reached,
        };
        out.send_resting_on(ack_to, ack, self.is_durable(txn));
    }

    /// Applies the outcome of a prepared transaction.
    fn learn(&mut self, txn: TxnId, outcome: Outcome, out: &mut CommitOutput) {
        let Some(TxnRecord::Prepared { reads, writes, .. }) = self.record.txns.get(&txn) else {
            return;
        };
        unlock(&mut self.locks, txn, reads.iter().chain(writes.keys()));
        self.change(txn, ParticipantDelta::Decided { txn, outcome }, out);
        out.cancel_timer(Timer::Uncertain(txn));
        out.event(Event::Learned { txn, outcome });
        self.retry_waiting(out);
    }

    /// The vote on `txn` if every lock it needs is free (No if a key it read
    /// is no longer at the version it saw); otherwise `Err` names the holder
    /// of a lock it needs.
    fn validate(
        &self,
        txn: TxnId,
        reads: &ReadSet,
        writes: &WriteSet,
    ) -> Result<Vote, (Key, TxnId)> {
        // The highest other holder of a lock `txn` needs on `key`.
        let held = |key: &Key, writers_only: bool| -> Option<TxnId> {
            let lock = self.locks.get(key)?;
            let readers = lock.readers.iter().copied().filter(|_| !writers_only);
            lock.writer
                .into_iter()
                .chain(readers)
                .filter(|holder| *holder != txn)
                .max()
        };
        let conflict = writes
            .keys()
            .filter_map(|key| Some((key, held(key, false)?)))
            .chain(reads.keys().filter_map(|key| Some((key, held(key, true)?))))
            // The first key held by the youngest holder.
            .min_by_key(|(_, by)| std::cmp::Reverse(*by));
        if let Some((key, by)) = conflict {
            return Err((key.clone(), by));
        }
        for (key, seen) in reads {
            let current = self.record.store.get(key).map(|v| v.version);
            if current != *seen {
                return Ok(Vote::No(Refusal::Changed { key: key.clone() }));
            }
        }
        Ok(Vote::Yes)
    }

    /// Records `delta` about `txn`: in memory through the record's own
    /// `apply`, and in the output for the log.
    fn change(&mut self, txn: TxnId, delta: ParticipantDelta, out: &mut CommitOutput) {
        self.record.apply(&delta);
        if let ParticipantDelta::Prepared { reads, writes, .. } = &delta {
            self.lock(txn, reads.iter(), writes.keys());
        }
        let position = out.persist(Delta::Participant(delta));
        self.undurable.insert(txn, position);
    }

    /// Whether the latest delta about `txn` is known to be durable.
    fn is_durable(&self, txn: TxnId) -> bool {
        !self.undurable.contains_key(&txn)
    }

    fn is_finished(&self, txn: TxnId) -> bool {
        self.record
            .finished_below(txn.node())
            .is_some_and(|below| txn < below)
    }

    /// Moves `coordinator`'s watermark up to `below`, forgetting what it
    /// finished. Nothing waits for this delta: losing it in a crash only
    /// keeps a few records longer.
    fn advance_watermark(&mut self, coordinator: NodeId, below: TxnId, out: &mut CommitOutput) {
        if below.node() != coordinator
            || self
                .record
                .finished_below(coordinator)
                .is_some_and(|current| current >= below)
        {
            return;
        }
        let delta = ParticipantDelta::Finished { coordinator, below };
        self.record.apply(&delta);
        out.persist(Delta::Participant(delta));
        let record = &self.record;
        self.undurable
            .retain(|txn, _| record.txns.contains_key(txn));
    }

    fn lock<'a>(
        &mut self,
        txn: TxnId,
        reads: impl Iterator<Item = &'a Key>,
        writes: impl Iterator<Item = &'a Key>,
    ) {
        for key in reads {
            self.locks.get_or_default(key).readers.insert(txn);
        }
        for key in writes {
            self.locks.get_or_default(key).writer = Some(txn);
        }
    }
}

/// Releases `txn`'s locks on `keys`, dropping a key's entry once nobody holds
/// it. A free function over the lock table, so that the keys can be borrowed
/// from the participant's record while its locks change.
fn unlock<'a>(locks: &mut KeyMap<Lock>, txn: TxnId, keys: impl Iterator<Item = &'a Key>) {
    for key in keys {
        if let Some(lock) = locks.get_mut(key) {
            lock.readers.remove(&txn);
            if lock.writer == Some(txn) {
                lock.writer = None;
            }
            if lock.writer.is_none() && lock.readers.is_empty() {
                locks.remove(key);
            }
        }
    }
}

/// The model checker's renaming of nodes (symmetry reduction): the same
/// participant, its own id, its record, locks and waiting Prepares renamed
/// (the waiting ones keep their arrival order).
#[cfg(feature = "check")]
impl super::RenameNodes for Participant {
    fn rename_nodes<F: Fn(NodeId) -> NodeId>(&self, f: &F) -> Self {
        Participant {
            me: f(self.me),
            config: self.config.clone(),
            record: self.record.rename_nodes(f),
            locks: self
                .locks
                .iter()
                .map(|(key, lock)| {
                    let renamed = Lock {
                        writer: lock.writer.rename_nodes(f),
                        readers: lock.readers.rename_nodes(f),
                    };
                    (key.clone(), renamed)
                })
                .collect(),
            undurable: self
                .undurable
                .iter()
                .map(|(txn, position)| (txn.rename_nodes(f), *position))
                .collect(),
            waiting: self
                .waiting
                .iter()
                .map(|w| Waiting {
                    coordinator: f(w.coordinator),
                    txn: w.txn.rename_nodes(f),
                    reads: w.reads.rename_nodes(f),
                    writes: w.writes.clone(),
                    peers: w.peers.rename_nodes(f),
                })
                .collect(),
        }
    }
}
