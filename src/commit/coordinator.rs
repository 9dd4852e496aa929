//! The coordinator: collects votes, decides, and sees the decision through.
//!
//! Each rule names the property it protects: AC1 agreement, AC2
//! irrevocability, AC3 commit only on unanimous Yes, AC5 termination, and
//! presumed abort (a transaction with no record is aborted, so only commits
//! are saved).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::time::Duration;

use super::message::{AbortReason, Event, Msg, Outcome, ReadSet, Timer, Vote, WriteSet};
use super::record::{CoordinatorDelta, CoordinatorRecord, Delta, Origin};
use super::txn_id::{MAX_INCARNATION, MAX_SEQUENCE};
use super::{CommitOutput, TxnId};
use crate::NodeId;
use crate::output::Position;

/// The coordinator's settings.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CoordinatorConfig {
    /// How long to wait for votes before aborting.
    pub vote_timeout: Range<Duration>,
    /// How often to resend a decision not yet acknowledged by everyone.
    pub resend_every: Range<Duration>,
}

/// What a transaction does at one participant.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Part {
    /// The keys it read there, with the versions seen.
    pub reads: ReadSet,
    /// The keys it writes there.
    pub writes: WriteSet,
}

/// A transaction as the coordinator begins it: what it does at each
/// participant; the keys are the participants.
pub type TxnPlan = BTreeMap<NodeId, Part>;

/// Where a transaction stands at the coordinator.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Collecting votes from the participants.
    Voting {
        /// The participants that voted Yes.
        yes: BTreeSet<NodeId>,
    },
    /// Decided; resending `outcome` until every participant acknowledges it.
    Deciding {
        /// The decision.
        outcome: Outcome,
        /// The participants that acknowledged it.
        acked: BTreeSet<NodeId>,
    },
}

/// One transaction at the coordinator.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CoordinatorTxn {
    /// Its participants.
    pub participants: BTreeSet<NodeId>,
    /// The request it runs for, if any.
    pub origin: Option<Origin>,
    /// Where it stands.
    pub phase: Phase,
}

/// Why a transaction could not begin.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BeginError {
    /// The plan names no participant.
    #[error("the transaction touches no key; give at least one")]
    Empty,
    /// Every transaction id of every incarnation has been used.
    #[error(
        "this coordinator has used up its transaction ids (too many restarts); \
         send the transaction to another node"
    )]
    IdsExhausted,
}

/// Why a coordinator could not recover.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecoverError {
    /// The record has reached the last incarnation.
    #[error(
        "the coordinator has reached its last incarnation ({MAX_INCARNATION}); transaction ids \
         would repeat: give the node a new id and an empty data directory"
    )]
    IncarnationsExhausted,
}

/// The coordinator of one node. Its memory is the transactions it has not
/// forgotten; its durable record is the commits among them and its
/// incarnation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Coordinator {
    me: NodeId,
    config: CoordinatorConfig,
    incarnation: u64,
    next_sequence: u64,
    txns: BTreeMap<TxnId, CoordinatorTxn>,
    /// Commit records that may not be durable yet: a Commit that rests on one
    /// waits for it.
    undurable: BTreeMap<TxnId, Position>,
}

impl Coordinator {
    /// Starts the coordinator from its durable record (the default record for
    /// a first start), in a new incarnation.
    ///
    /// The new incarnation is the output's first delta; **the driver makes
    /// this output's deltas durable before it hands the coordinator any
    /// input**, so that no id of this life can repeat after a crash. Only the
    /// commit records survive a crash; each is resent until every participant
    /// acknowledges it (AC5). Transactions that were undecided are presumed
    /// aborted and never restarted: a participant that asks is told Abort (AC1
    /// holds because no Commit was ever sent for them).
    pub fn recover(
        me: NodeId,
        config: CoordinatorConfig,
        record: CoordinatorRecord,
        out: &mut CommitOutput,
    ) -> Result<Coordinator, RecoverError> {
        if record.incarnation >= MAX_INCARNATION {
            return Err(RecoverError::IncarnationsExhausted);
        }
        let incarnation = record.incarnation + 1;
        out.persist(Delta::Coordinator(CoordinatorDelta::Started {
            incarnation,
        }));
        let mut coordinator = Coordinator {
            me,
            config,
            incarnation,
            next_sequence: 0,
            txns: BTreeMap::new(),
            undurable: BTreeMap::new(),
        };
        for (txn, participants) in record.commits {
            for participant in &participants {
                out.send(
                    *participant,
                    Msg::Outcome {
                        txn,
                        outcome: Outcome::Commit,
                    },
                );
            }
            out.set_timer(Timer::Resend(txn), coordinator.config.resend_every.clone());
            coordinator.txns.insert(
                txn,
                CoordinatorTxn {
                    participants,
                    origin: None,
                    phase: Phase::Deciding {
                        outcome: Outcome::Commit,
                        acked: BTreeSet::new(),
                    },
                },
            );
        }
        Ok(coordinator)
    }

    // --- getters -------------------------------------------------------------

    /// This coordinator's node.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// The incarnation of this life.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// The transactions not yet forgotten.
    pub fn txns(&self) -> &BTreeMap<TxnId, CoordinatorTxn> {
        &self.txns
    }

    /// The decision on `txn`, if it is decided and not yet forgotten.
    pub fn decision(&self, txn: TxnId) -> Option<Outcome> {
        match self.txns.get(&txn)?.phase {
            Phase::Deciding { outcome, .. } => Some(outcome),
            Phase::Voting { .. } => None,
        }
    }

    /// The durable record this memory implies.
    pub fn record(&self) -> CoordinatorRecord {
        CoordinatorRecord {
            incarnation: self.incarnation,
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

    /// The watermark: every transaction of this coordinator below it is
    /// finished — acknowledged by all, or presumed aborted by a restart.
    pub fn finished_below(&self) -> TxnId {
        let next = TxnId::new(self.me, self.incarnation, self.next_sequence)
            .or_else(|| TxnId::first_of(self.me, self.incarnation + 1))
            .unwrap_or(TxnId(u64::MAX));
        self.txns
            .keys()
            .next()
            .copied()
            .map_or(next, |first| first.min(next))
    }

    // --- inputs --------------------------------------------------------------

    /// Every delta at a position below `upto` is durable.
    pub fn handle_persisted(&mut self, upto: Position) {
        self.undurable.retain(|_, position| *position >= upto);
    }

    /// Phase one: asks every participant of `plan` to prepare, and starts the
    /// vote timer (without it a lost vote would block the transaction: AC5).
    /// `origin` is saved with a commit decision. Returns the transaction's id.
    pub fn begin(
        &mut self,
        plan: TxnPlan,
        origin: Option<Origin>,
        out: &mut CommitOutput,
    ) -> Result<TxnId, BeginError> {
        if plan.is_empty() {
            return Err(BeginError::Empty);
        }
        let (txn, new_incarnation) = self.next_txn(out)?;
        let participants: BTreeSet<NodeId> = plan.keys().copied().collect();
        self.txns.insert(
            txn,
            CoordinatorTxn {
                participants: participants.clone(),
                origin,
                phase: Phase::Voting {
                    yes: BTreeSet::new(),
                },
            },
        );
        let finished_below = self.finished_below();
        for (participant, part) in plan {
            // The peers in ring order, starting after this participant: an
            // uncertain participant asks the first of them.
            let (before, after): (Vec<NodeId>, Vec<NodeId>) = participants
                .iter()
                .copied()
                .filter(|p| *p != participant)
                .partition(|p| *p < participant);
            let prepare = Msg::Prepare {
                txn,
                reads: part.reads,
                writes: part.writes,
                peers: after.into_iter().chain(before).collect(),
                finished_below,
            };
            // A Prepare rests on nothing durable, unless this transaction
            // opened a new incarnation: its id must not repeat after a crash.
            out.send_resting_on(participant, prepare, !new_incarnation);
        }
        out.set_timer(Timer::VoteTimeout(txn), self.config.vote_timeout.clone());
        Ok(txn)
    }

    /// Handles one message from `from`.
    pub fn handle_message(&mut self, from: NodeId, msg: Msg, out: &mut CommitOutput) {
        match msg {
            Msg::Vote { txn, vote } => self.on_vote(from, txn, vote, out),
            Msg::Ack { txn, .. } => self.on_ack(from, txn, out),
            Msg::Query { txn } => match self.txns.get(&txn).map(|t| &t.phase) {
                // A Commit answer rests on the commit record (AC1 across a
                // crash of this coordinator).
                Some(Phase::Deciding { outcome, .. }) => {
                    let durable = !self.undurable.contains_key(&txn);
                    let outcome = *outcome;
                    out.send_resting_on(from, Msg::Outcome { txn, outcome }, durable);
                }
                // Still voting: the answer is not known yet; the asker retries.
                Some(Phase::Voting { .. }) => {}
                // Presumed abort: no record means no commit was ever sent, or
                // every participant already acknowledged it (the asker is then
                // a late copy and ignores the answer). The node hands this
                // coordinator queries about its own transactions only.
                None => out.send(
                    from,
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

    /// Handles a timer.
    pub fn handle_timer(&mut self, timer: &Timer, out: &mut CommitOutput) {
        match timer {
            Timer::VoteTimeout(txn) => {
                // AC5: a missing vote must not block the transaction forever;
                // aborting is always safe before a decision (AC3).
                if let Some(CoordinatorTxn {
                    participants,
                    phase: Phase::Voting { yes },
                    ..
                }) = self.txns.get(txn)
                {
                    let missing = participants.difference(yes).copied().collect();
                    let reason = AbortReason::VoteTimeout { missing };
                    self.decide(*txn, Outcome::Abort, Some(reason), out);
                }
            }
            Timer::Resend(txn) => {
                // AC5: the network may lose a decision; resend it to whoever
                // has not acknowledged.
                if let Some(CoordinatorTxn {
                    participants,
                    phase: Phase::Deciding { outcome, acked },
                    ..
                }) = self.txns.get(txn)
                {
                    let durable = !self.undurable.contains_key(txn);
                    for participant in participants.difference(acked) {
                        let msg = Msg::Outcome {
                            txn: *txn,
                            outcome: *outcome,
                        };
                        out.send_resting_on(*participant, msg, durable);
                    }
                    out.set_timer(Timer::Resend(*txn), self.config.resend_every.clone());
                }
            }
            Timer::Uncertain(_) => {}
        }
    }

    // --- handlers ------------------------------------------------------------

    fn on_vote(&mut self, from: NodeId, txn: TxnId, vote: Vote, out: &mut CommitOutput) {
        let Some(t) = self.txns.get_mut(&txn) else {
            // Unknown: forgotten, or undecided before a crash and so presumed
            // aborted. A Yes voter will ask and be told Abort.
            return;
        };
        let Phase::Voting { yes } = &mut t.phase else {
            return; // A late vote: the decision is made (AC2).
        };
        if !t.participants.contains(&from) {
            return;
        }
        match vote {
            // AC3: one No and the transaction cannot commit.
            Vote::No(refusal) => {
                let reason = AbortReason::Refused { by: from, refusal };
                self.decide(txn, Outcome::Abort, Some(reason), out);
            }
            Vote::Yes => {
                yes.insert(from);
                // AC3: commit only when every participant has voted Yes.
                if *yes == t.participants {
                    self.decide(txn, Outcome::Commit, None, out);
                }
            }
        }
    }

    /// `node` is gone for good (removed from the cluster, its disk lost): it
    /// will never vote or acknowledge again. A transaction still waiting for
    /// its vote aborts; a decided one stops waiting for its acknowledgement.
    pub fn forget_participant(&mut self, node: NodeId, out: &mut CommitOutput) {
        let txns: Vec<(TxnId, bool)> = self
            .txns
            .iter()
            .filter(|(_, t)| t.participants.contains(&node))
            .map(|(txn, t)| (*txn, matches!(t.phase, Phase::Voting { .. })))
            .collect();
        for (txn, voting) in txns {
            if voting {
                let reason = AbortReason::VoteTimeout {
                    missing: vec![node],
                };
                self.decide(txn, Outcome::Abort, Some(reason), out);
            }
            self.on_ack(node, txn, out);
        }
    }

    fn on_ack(&mut self, from: NodeId, txn: TxnId, out: &mut CommitOutput) {
        let Some(t) = self.txns.get_mut(&txn) else {
            return;
        };
        let Phase::Deciding { acked, .. } = &mut t.phase else {
            return;
        };
        if !t.participants.contains(&from) {
            return;
        }
        acked.insert(from);
        // Forget only once everyone has the outcome: until then a participant
        // may still ask, and only the record stops presumed abort from
        // answering Abort to a committed transaction (AC1).
        if *acked == t.participants {
            self.forget(txn, out);
        }
    }

    fn decide(
        &mut self,
        txn: TxnId,
        outcome: Outcome,
        reason: Option<AbortReason>,
        out: &mut CommitOutput,
    ) {
        let Some(t) = self.txns.get_mut(&txn) else {
            return;
        };
        t.phase = Phase::Deciding {
            outcome,
            acked: BTreeSet::new(),
        };
        let participants = t.participants.clone();
        let origin = t.origin;
        out.cancel_timer(Timer::VoteTimeout(txn));
        // AC1 across crashes: the commit record is durable before any Commit
        // leaves. Presumed abort: an abort needs no record.
        let durable = match outcome {
            Outcome::Commit => {
                let delta = CoordinatorDelta::Committed {
                    txn,
                    participants: participants.clone(),
                    origin,
                };
                let position = out.persist(Delta::Coordinator(delta));
                self.undurable.insert(txn, position);
                false
            }
            Outcome::Abort => true,
        };
        for participant in participants {
            out.send_resting_on(participant, Msg::Outcome { txn, outcome }, durable);
        }
        out.set_timer(Timer::Resend(txn), self.config.resend_every.clone());
        out.event(Event::Decided {
            txn,
            outcome,
            reason,
        });
    }

    fn forget(&mut self, txn: TxnId, out: &mut CommitOutput) {
        let was_commit = self.decision(txn) == Some(Outcome::Commit);
        self.txns.remove(&txn);
        self.undurable.remove(&txn);
        out.cancel_timer(Timer::Resend(txn));
        if was_commit {
            // Nothing waits for this: losing it in a crash means resending a
            // commit that everyone already has.
            out.persist(Delta::Coordinator(CoordinatorDelta::Forgotten { txn }));
        }
    }

    /// The next transaction id, and whether it opened a new incarnation
    /// (saved first) because the sequence ran out.
    fn next_txn(&mut self, out: &mut CommitOutput) -> Result<(TxnId, bool), BeginError> {
        let mut new_incarnation = false;
        if self.next_sequence > MAX_SEQUENCE {
            if self.incarnation >= MAX_INCARNATION {
                return Err(BeginError::IdsExhausted);
            }
            self.incarnation += 1;
            self.next_sequence = 0;
            let delta = CoordinatorDelta::Started {
                incarnation: self.incarnation,
            };
            out.persist(Delta::Coordinator(delta));
            new_incarnation = true;
        }
        let txn = TxnId::new(self.me, self.incarnation, self.next_sequence)
            .ok_or(BeginError::IdsExhausted)?;
        self.next_sequence += 1;
        Ok((txn, new_incarnation))
    }
}

/// The model checker's renaming of nodes (symmetry reduction): the same
/// coordinator, its own id, its transactions' ids and participants renamed.
#[cfg(feature = "check")]
impl super::RenameNodes for Coordinator {
    fn rename_nodes<F: Fn(NodeId) -> NodeId>(&self, f: &F) -> Self {
        let rename_set = |set: &BTreeSet<NodeId>| super::RenameNodes::rename_nodes(set, f);
        let rename_txn = |txn: &TxnId| super::RenameNodes::rename_nodes(txn, f);
        Coordinator {
            me: f(self.me),
            config: self.config.clone(),
            incarnation: self.incarnation,
            next_sequence: self.next_sequence,
            txns: self
                .txns
                .iter()
                .map(|(txn, t)| {
                    let phase = match &t.phase {
                        Phase::Voting { yes } => Phase::Voting {
                            yes: rename_set(yes),
                        },
                        Phase::Deciding { outcome, acked } => Phase::Deciding {
                            outcome: *outcome,
                            acked: rename_set(acked),
                        },
                    };
                    let renamed = CoordinatorTxn {
                        participants: rename_set(&t.participants),
                        origin: t.origin,
                        phase,
                    };
                    (rename_txn(txn), renamed)
                })
                .collect(),
            undurable: self
                .undurable
                .iter()
                .map(|(txn, position)| (rename_txn(txn), *position))
                .collect(),
        }
    }
}
