//! The coordinator: collects votes, decides, and sees the decision through.
//!
//! Each rule names the property it protects:
//! AC1 agreement, AC2 irrevocability, AC3 commit only on unanimous Yes,
//! AC5 termination, and presumed abort (a transaction with no record is aborted,
//! so only commits are saved).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::time::Duration;

use stateright::actor::{Id, Out};

use super::message::{Msg, Outcome, Timer, TxnId, Vote, WriteSet};
use super::record::CoordinatorRecord;
use super::variant::Variant;
use super::{CommitActor, Record};

/// A transaction as the coordinator begins it: the writes of each participant.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TxnPlan {
    /// The transaction's identity.
    pub txn: TxnId,
    /// The writes each participant is to make; its keys are the participants.
    pub writes: BTreeMap<Id, WriteSet>,
}

/// The coordinator's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Coordinator {
    /// Transactions begun on the coordinator's first start (never on recovery:
    /// an undecided transaction is presumed aborted after a crash).
    pub initial: Vec<TxnPlan>,
    /// How long to wait for votes before aborting.
    pub vote_timeout: Range<Duration>,
    /// How often to resend a decision that is not yet acknowledged by everyone.
    pub resend_every: Range<Duration>,
    /// Which rule, if any, to break.
    pub variant: Variant,
}

/// Where a transaction stands at the coordinator.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Collecting votes; `counted` are the participants whose votes count toward
    /// a commit (the Yes voters).
    Voting {
        /// Participants whose vote counts toward commit.
        counted: BTreeSet<Id>,
    },
    /// Decided; resending `outcome` until every participant has acknowledged.
    Deciding {
        /// The decision.
        outcome: Outcome,
        /// Participants that acknowledged it.
        acked: BTreeSet<Id>,
    },
}

/// One transaction at the coordinator.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CoordinatorTxn {
    /// Its participants.
    pub participants: BTreeSet<Id>,
    /// Where it stands.
    pub phase: Phase,
}

/// The coordinator's volatile state: the transactions it has not yet forgotten.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CoordinatorState {
    /// Live transactions.
    pub txns: BTreeMap<TxnId, CoordinatorTxn>,
}

impl CoordinatorState {
    /// The durable record this state implies: every commit not yet forgotten.
    pub fn record(&self) -> CoordinatorRecord {
        CoordinatorRecord {
            commits: self
                .txns
                .iter()
                .filter(|(_, t)| {
                    matches!(
                        t.phase,
                        Phase::Deciding {
                            outcome: Outcome::Commit,
                            ..
                        }
                    )
                })
                .map(|(txn, t)| (*txn, t.participants.clone()))
                .collect(),
        }
    }

    /// The coordinator's decision on `txn`, if it has one in memory.
    pub fn decision(&self, txn: TxnId) -> Option<Outcome> {
        match self.txns.get(&txn)?.phase {
            Phase::Deciding { outcome, .. } => Some(outcome),
            Phase::Voting { .. } => None,
        }
    }
}

impl Coordinator {
    /// Starts (`record` is `None`) or recovers the coordinator.
    ///
    /// On recovery only the commit records survive; each is resent until every
    /// participant acknowledges it (AC5). Transactions that were undecided are
    /// presumed aborted and are never restarted: a participant that asks is told
    /// Abort (AC1 holds because no commit was ever sent for them).
    pub fn on_start(
        &self,
        record: Option<&CoordinatorRecord>,
        o: &mut Out<CommitActor>,
    ) -> CoordinatorState {
        let mut state = CoordinatorState::default();
        match record {
            None => {
                // The first start accepts the initial transactions; the empty
                // record marks that, so a recovery does not begin them again.
                o.save(Record::Coordinator(CoordinatorRecord::default()));
                for plan in &self.initial {
                    self.begin(&mut state, plan, o);
                }
            }
            Some(record) => {
                for (txn, participants) in &record.commits {
                    state.txns.insert(
                        *txn,
                        CoordinatorTxn {
                            participants: participants.clone(),
                            phase: Phase::Deciding {
                                outcome: Outcome::Commit,
                                acked: BTreeSet::new(),
                            },
                        },
                    );
                    self.send_decision(*txn, Outcome::Commit, participants.iter(), o);
                    o.set_timer(Timer::Resend(*txn), self.resend_every.clone());
                }
            }
        }
        state
    }

    /// Phase one: ask every participant to prepare, and start the vote timer
    /// (without it a lost vote would block the transaction: AC5).
    pub fn begin(&self, state: &mut CoordinatorState, plan: &TxnPlan, o: &mut Out<CommitActor>) {
        let participants: BTreeSet<Id> = plan.writes.keys().copied().collect();
        for (participant, writes) in &plan.writes {
            // The peers in ring order, starting after this participant: an
            // uncertain participant asks the first of them (see Participant).
            let (before, after): (Vec<Id>, Vec<Id>) = participants
                .iter()
                .copied()
                .filter(|p| p != participant)
                .partition(|p| p < participant);
            let peers = after.into_iter().chain(before).collect();
            o.send(
                *participant,
                Msg::Prepare {
                    txn: plan.txn,
                    writes: writes.clone(),
                    peers,
                },
            );
        }
        state.txns.insert(
            plan.txn,
            CoordinatorTxn {
                participants,
                phase: Phase::Voting {
                    counted: BTreeSet::new(),
                },
            },
        );
        o.set_timer(Timer::VoteTimeout(plan.txn), self.vote_timeout.clone());
    }

    /// Handles one message.
    pub fn on_msg(
        &self,
        state: &mut Cow<CoordinatorState>,
        src: Id,
        msg: Msg,
        o: &mut Out<CommitActor>,
    ) {
        match msg {
            Msg::Vote { txn, vote } => self.on_vote(state, src, txn, vote, o),
            Msg::Ack { txn, .. } => self.on_ack(state, src, txn, o),
            Msg::Query { txn } => match state.txns.get(&txn).map(|t| &t.phase) {
                // Answer from memory (AC5 for the asker).
                Some(Phase::Deciding { outcome, .. }) => o.send(
                    src,
                    Msg::Outcome {
                        txn,
                        outcome: *outcome,
                    },
                ),
                // Still voting: the answer is not known yet; the asker retries.
                Some(Phase::Voting { .. }) => {}
                // Presumed abort: no record means no commit was ever sent, unless
                // every participant already acknowledged it (then the asker is
                // a stale duplicate and has the commit).
                None => o.send(
                    src,
                    Msg::Outcome {
                        txn,
                        outcome: Outcome::Abort,
                    },
                ),
            },
            // Not addressed to a coordinator.
            Msg::Prepare { .. } | Msg::Outcome { .. } => {}
        }
    }

    fn on_vote(
        &self,
        state: &mut Cow<CoordinatorState>,
        src: Id,
        txn: TxnId,
        vote: Vote,
        o: &mut Out<CommitActor>,
    ) {
        let Some(t) = state.txns.get(&txn) else {
            // Unknown: forgotten, or undecided before a crash and so presumed
            // aborted. The voter will ask and be told Abort.
            return;
        };
        let Phase::Voting { counted } = &t.phase else {
            return; // A late vote: the decision is already made (AC2).
        };
        if !t.participants.contains(&src) || counted.contains(&src) {
            return;
        }
        let counts = match (vote, self.variant) {
            (Vote::Yes, _) => true,
            // The seed's coordinator: any reply counts toward commit.
            (Vote::No, Variant::IgnoreVotes) => true,
            (Vote::No, _) => false,
        };
        if !counts {
            // AC3: one No vote and the transaction cannot commit.
            self.decide(state.to_mut(), txn, Outcome::Abort, o);
            return;
        }
        let t = state.to_mut().txns.get_mut(&txn).expect("looked up above");
        let Phase::Voting { counted } = &mut t.phase else {
            unreachable!("checked above")
        };
        counted.insert(src);
        // AC3: commit only when every participant has voted Yes.
        if *counted == t.participants {
            self.decide(state.to_mut(), txn, Outcome::Commit, o);
        }
    }

    fn on_ack(
        &self,
        state: &mut Cow<CoordinatorState>,
        src: Id,
        txn: TxnId,
        o: &mut Out<CommitActor>,
    ) {
        let Some(CoordinatorTxn {
            participants,
            phase: Phase::Deciding { acked, .. },
        }) = state.txns.get(&txn)
        else {
            return;
        };
        if acked.contains(&src) || !participants.contains(&src) {
            return;
        }
        let state = state.to_mut();
        let t = state.txns.get_mut(&txn).expect("looked up above");
        let Phase::Deciding { acked, .. } = &mut t.phase else {
            unreachable!("checked above")
        };
        acked.insert(src);
        // Forget only once everyone has the outcome: until then a participant may
        // still ask, and only the record stops presumed abort from answering
        // Abort to a committed transaction (AC1).
        let everyone = *acked == t.participants;
        if everyone || self.variant == Variant::EarlyForget {
            self.forget(state, txn, o);
        }
    }

    /// Handles a timer.
    pub fn on_timeout(
        &self,
        state: &mut Cow<CoordinatorState>,
        timer: &Timer,
        o: &mut Out<CommitActor>,
    ) {
        match timer {
            Timer::VoteTimeout(txn) => {
                // AC5: a missing vote must not block the transaction forever;
                // aborting is always safe before a decision (AC3).
                if matches!(
                    state.txns.get(txn).map(|t| &t.phase),
                    Some(Phase::Voting { .. })
                ) {
                    self.decide(state.to_mut(), *txn, Outcome::Abort, o);
                }
            }
            Timer::Resend(txn) => {
                // AC5: the network may lose a decision; resend it to whoever has
                // not acknowledged.
                if let Some(CoordinatorTxn {
                    participants,
                    phase: Phase::Deciding { outcome, acked },
                }) = state.txns.get(txn)
                {
                    self.send_decision(*txn, *outcome, participants.difference(acked), o);
                    o.set_timer(Timer::Resend(*txn), self.resend_every.clone());
                }
            }
            Timer::Uncertain(_) => {}
        }
    }

    fn decide(
        &self,
        state: &mut CoordinatorState,
        txn: TxnId,
        outcome: Outcome,
        o: &mut Out<CommitActor>,
    ) {
        let t = state
            .txns
            .get_mut(&txn)
            .expect("deciding a live transaction");
        t.phase = Phase::Deciding {
            outcome,
            acked: BTreeSet::new(),
        };
        let participants = t.participants.clone();
        o.cancel_timer(Timer::VoteTimeout(txn));
        // AC1 across crashes: the commit record is durable before any Commit
        // leaves (the runtime holds sends until the handler's save is synced).
        // Presumed abort: an abort needs no record.
        if outcome == Outcome::Commit && self.variant != Variant::ForgetDecision {
            o.save(Record::Coordinator(state.record()));
        }
        self.send_decision(txn, outcome, participants.iter(), o);
        if self.variant != Variant::NoResend {
            o.set_timer(Timer::Resend(txn), self.resend_every.clone());
        }
    }

    fn forget(&self, state: &mut CoordinatorState, txn: TxnId, o: &mut Out<CommitActor>) {
        let was_commit = state.decision(txn) == Some(Outcome::Commit);
        state.txns.remove(&txn);
        o.cancel_timer(Timer::Resend(txn));
        if was_commit {
            o.save(Record::Coordinator(state.record()));
        }
    }

    fn send_decision<'a>(
        &self,
        txn: TxnId,
        outcome: Outcome,
        to: impl IntoIterator<Item = &'a Id>,
        o: &mut Out<CommitActor>,
    ) {
        for participant in to {
            o.send(*participant, Msg::Outcome { txn, outcome });
        }
    }
}
