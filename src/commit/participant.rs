//! The participant: votes, holds its promise, and applies the outcome.
//!
//! Each rule names the property it protects (AC1 agreement, AC2 irrevocability,
//! AC5 termination, durability of acknowledged commits).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use stateright::actor::{Id, Out};

use super::message::{Choice, Msg, Outcome, Timer, TxnId, Vote, WriteSet};
use super::record::{ParticipantRecord, TxnRecord};
use super::variant::Variant;
use super::{CommitActor, Record};

/// The participant's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Participant {
    /// Whether the participant may refuse a transaction for reasons of its own.
    /// Models set it, so that the checker explores both votes; a real store
    /// refuses only on a lock conflict.
    pub free_vote: bool,
    /// How long to wait, once prepared, before asking for the outcome.
    pub uncertain_after: Range<Duration>,
    /// Which rule, if any, to break.
    pub variant: Variant,
}

/// A Prepare whose free vote the participant has not cast yet.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PendingVote {
    /// The writes to make.
    pub writes: WriteSet,
    /// Who asked.
    pub coordinator: Id,
    /// The other participants.
    pub peers: Vec<Id>,
}

/// The participant's volatile state: its durable record as it stands in memory,
/// plus Prepares awaiting a free vote.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ParticipantState {
    /// Store and transaction records (saved with `Out::save`).
    pub record: ParticipantRecord,
    /// Prepares awaiting a free vote (models only).
    pub pending: BTreeMap<TxnId, PendingVote>,
}

impl ParticipantState {
    /// Whether `writes` touch a key locked by another undecided (prepared)
    /// transaction. Locks are derived from the prepared records, so recovery
    /// restores them with the records.
    pub fn conflicts(&self, txn: TxnId, writes: &WriteSet) -> bool {
        self.record.txns.iter().any(|(other, record)| {
            *other != txn
                && matches!(record, TxnRecord::Prepared { writes: held, .. }
                    if held.keys().any(|k| writes.contains_key(k)))
        })
    }

    /// The outcome this participant has reached for `txn`, if any.
    pub fn outcome(&self, txn: TxnId) -> Option<Outcome> {
        match self.record.txns.get(&txn)? {
            TxnRecord::Decided(outcome) => Some(*outcome),
            TxnRecord::Refused => Some(Outcome::Abort),
            TxnRecord::Prepared { .. } => None,
        }
    }
}

fn vote_key(txn: TxnId) -> String {
    format!("vote {txn}")
}

impl Participant {
    /// Starts or recovers the participant. A recovered participant that is
    /// prepared is still bound by its Yes vote (AC1): it stays uncertain and asks
    /// for the outcome (AC5).
    pub fn on_start(
        &self,
        record: Option<&ParticipantRecord>,
        o: &mut Out<CommitActor>,
    ) -> ParticipantState {
        let record = record.cloned().unwrap_or_default();
        for (txn, r) in &record.txns {
            if matches!(r, TxnRecord::Prepared { .. }) {
                o.set_timer(Timer::Uncertain(*txn), self.uncertain_after.clone());
            }
        }
        ParticipantState {
            record,
            pending: BTreeMap::new(),
        }
    }

    /// Handles one message.
    pub fn on_msg(
        &self,
        state: &mut Cow<ParticipantState>,
        src: Id,
        msg: Msg,
        o: &mut Out<CommitActor>,
    ) {
        match msg {
            Msg::Prepare { txn, writes, peers } => {
                match state.record.txns.get(&txn) {
                    // A duplicate Prepare: repeat the vote already cast.
                    Some(TxnRecord::Prepared { .. }) => o.send(
                        src,
                        Msg::Vote {
                            txn,
                            vote: Vote::Yes,
                        },
                    ),
                    // Aborted before voting: the answer stays No (AC2).
                    Some(TxnRecord::Refused | TxnRecord::Decided(Outcome::Abort)) => o.send(
                        src,
                        Msg::Vote {
                            txn,
                            vote: Vote::No,
                        },
                    ),
                    Some(TxnRecord::Decided(Outcome::Commit)) => {}
                    None if state.pending.contains_key(&txn) => {}
                    None => {
                        let pending = PendingVote {
                            writes,
                            coordinator: src,
                            peers,
                        };
                        if self.free_vote {
                            state.to_mut().pending.insert(txn, pending);
                            o.choose_random(
                                vote_key(txn),
                                vec![Choice::Vote(txn, Vote::Yes), Choice::Vote(txn, Vote::No)],
                            );
                        } else {
                            self.cast_vote(state.to_mut(), txn, pending, true, o);
                        }
                    }
                }
            }
            Msg::Outcome { txn, outcome } => match state.record.txns.get(&txn) {
                Some(TxnRecord::Prepared { .. }) => self.learn(state.to_mut(), txn, outcome, o),
                // Already decided: acknowledge again, since the sender resends
                // until it hears an acknowledgement (AC5). Peers ignore Acks.
                Some(TxnRecord::Decided(decided)) => o.send(
                    src,
                    Msg::Ack {
                        txn,
                        outcome: *decided,
                    },
                ),
                Some(TxnRecord::Refused) => o.send(
                    src,
                    Msg::Ack {
                        txn,
                        outcome: Outcome::Abort,
                    },
                ),
                // Never voted: an Abort settles it (AC5 for a participant whose
                // Prepare was lost). A Commit for a transaction this participant
                // never prepared cannot be applied, so it is not acknowledged.
                None => {
                    if outcome == Outcome::Abort {
                        let state = state.to_mut();
                        if state.pending.remove(&txn).is_some() {
                            o.remove_random(vote_key(txn));
                        }
                        state
                            .record
                            .txns
                            .insert(txn, TxnRecord::Decided(Outcome::Abort));
                        o.save(Record::Participant(state.record.clone()));
                        o.send(src, Msg::Ack { txn, outcome });
                    }
                }
            },
            Msg::Query { txn } => {
                // Cooperative termination: tell an uncertain peer the decision,
                // if we have learned it. A participant that has not voted could
                // refuse and answer Abort, but only the coordinator's decision
                // is passed on, as in TwoPhase where only the TM sends Abort;
                // the asker then waits for the coordinator.
                if let Some(TxnRecord::Decided(outcome)) = state.record.txns.get(&txn) {
                    o.send(
                        src,
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

    /// Handles the free vote chosen for a pending Prepare (models only).
    pub fn on_random(
        &self,
        state: &mut Cow<ParticipantState>,
        choice: &Choice,
        o: &mut Out<CommitActor>,
    ) {
        let Choice::Vote(txn, vote) = choice;
        if let Some(pending) = state.to_mut().pending.remove(txn) {
            self.cast_vote(state.to_mut(), *txn, pending, *vote == Vote::Yes, o);
        }
    }

    /// Handles a timer.
    pub fn on_timeout(
        &self,
        state: &mut Cow<ParticipantState>,
        timer: &Timer,
        o: &mut Out<CommitActor>,
    ) {
        let Timer::Uncertain(txn) = timer else {
            return;
        };
        let Some(TxnRecord::Prepared {
            coordinator, peers, ..
        }) = state.record.txns.get(txn)
        else {
            return;
        };
        if self.variant == Variant::AbortAfterYes {
            // The fault: giving up on a promise (breaks AC1).
            self.learn(state.to_mut(), *txn, Outcome::Abort, o);
            return;
        }
        // AC1: a prepared participant may not decide alone; it asks the
        // coordinator and, for cooperative termination, its ring successor
        // among the peers (AC5). Asking one peer rather than all keeps the
        // traffic linear; knowledge still reaches everyone, because an
        // uncertain successor asks its own successor, and so on round the ring.
        o.send(*coordinator, Msg::Query { txn: *txn });
        if let Some(peer) = peers.first() {
            o.send(*peer, Msg::Query { txn: *txn });
        }
        o.set_timer(Timer::Uncertain(*txn), self.uncertain_after.clone());
    }

    fn cast_vote(
        &self,
        state: &mut ParticipantState,
        txn: TxnId,
        pending: PendingVote,
        willing: bool,
        o: &mut Out<CommitActor>,
    ) {
        // Two undecided transactions may not hold the same key: the second one
        // is refused, so that each commit applies over a stable store.
        if !willing || state.conflicts(txn, &pending.writes) {
            // The only time a participant may decide alone: before voting Yes.
            // The refusal is saved so that a duplicate Prepare after a crash is
            // still answered No (AC2).
            state.record.txns.insert(txn, TxnRecord::Refused);
            o.save(Record::Participant(state.record.clone()));
            o.send(
                pending.coordinator,
                Msg::Vote {
                    txn,
                    vote: Vote::No,
                },
            );
            return;
        }
        state.record.txns.insert(
            txn,
            TxnRecord::Prepared {
                writes: pending.writes,
                coordinator: pending.coordinator,
                peers: pending.peers,
            },
        );
        // AC1 across crashes: the promise is durable before the Yes leaves.
        if self.variant != Variant::NoDurableVote {
            o.save(Record::Participant(state.record.clone()));
        }
        o.send(
            pending.coordinator,
            Msg::Vote {
                txn,
                vote: Vote::Yes,
            },
        );
        o.set_timer(Timer::Uncertain(txn), self.uncertain_after.clone());
    }

    /// Applies the outcome of a prepared transaction and acknowledges it.
    fn learn(
        &self,
        state: &mut ParticipantState,
        txn: TxnId,
        outcome: Outcome,
        o: &mut Out<CommitActor>,
    ) {
        let Some(TxnRecord::Prepared {
            writes,
            coordinator,
            ..
        }) = state.record.txns.remove(&txn)
        else {
            unreachable!("learn is called for prepared transactions only")
        };
        if outcome == Outcome::Commit {
            state.record.store.extend(writes);
        }
        // Releasing the locks is implicit: the prepared record is gone.
        state.record.txns.insert(txn, TxnRecord::Decided(outcome));
        o.cancel_timer(Timer::Uncertain(txn));
        // Durability: the applied writes are saved before the Ack says so.
        if !(outcome == Outcome::Commit && self.variant == Variant::VolatileApply) {
            o.save(Record::Participant(state.record.clone()));
        }
        o.send(coordinator, Msg::Ack { txn, outcome });
    }
}
