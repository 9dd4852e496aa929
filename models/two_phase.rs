//! `two-phase`: the coordinator and participants of `src/commit`, as actors on an
//! unordered, duplicating (optionally lossy) network with crashes — the network
//! of [`super::network`], where loss is one step that loses every message in
//! flight, which stands for any pattern of loss.
//!
//! Properties are Bernstein, Hadzilacos & Goodman's atomic-commitment conditions
//! (*Concurrency Control and Recovery in Database Systems*, 1987, §7.2):
//!
//! - **AC1 agreement**: no two actors decide differently on a transaction;
//! - **AC2 irrevocable**: no actor's decision ever changes;
//! - **AC3 validity**: commit only if every participant voted Yes;
//! - **AC4 non-triviality**: sometimes every participant commits; sometimes the
//!   transaction aborts (`sometimes` properties: the outcomes are reachable);
//! - **AC5 termination**: with no crashes, every participant eventually decides;
//! - **durability**: a participant's durable store holds every write it has
//!   acknowledged as committed (so a crash cannot lose it);
//! - **refinement**: projected onto TwoPhase's variables, every explored
//!   transition is a `two-phase-spec` step, a stutter, or — where one handler
//!   counts the last Yes and commits at once — two steps in a row.
//!
//! Decisions are recorded in the model's *history* (an auxiliary variable): an
//! actor announces every decision in a message (a coordinator's `Outcome`, a
//! participant's `Ack`, No vote or answer to a peer), so a crash that wipes an
//! actor's memory cannot hide a decision it made.
//!
//! Actor 0 is the coordinator; actors 1..=participants are the participants.

use std::collections::{BTreeMap, BTreeSet};

use stateright::Property;
use stateright::actor::{ActorModel, ActorModelState, Envelope, Id, Network, model_timeout};

use crate::checker::{Refinement, Spec};
use crate::commit::{
    CommitActor, CommitState, Coordinator, Msg, Outcome, Participant, Record, TxnId, TxnPlan,
    TxnRecord, Variant, Vote, WriteSet,
};

use super::commit_spec::RmState;
use super::harness::{self, CheckOptions, CheckReport};
use super::network::OnNetwork;
use super::params::{ParamError, ParamKind, ParamSpec, Params};
use super::two_phase_spec::{TmState, TwoPhase, TwoPhaseState};

/// The model's name in `haft check`.
pub const NAME: &str = "two-phase";

/// Parameters of `two-phase`.
pub const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "participants",
        default: "3",
        kind: ParamKind::Int { min: 1, max: 5 },
        help: "participants of each transaction",
    },
    ParamSpec {
        name: "txns",
        default: "1",
        kind: ParamKind::Int { min: 1, max: 2 },
        help: "transactions run by the coordinator (two contend for a key at participant 1)",
    },
    ParamSpec {
        name: "lossy",
        default: "false",
        kind: ParamKind::Bool,
        help: "the network may lose messages (modelled as losing all in flight; see models/network.rs)",
    },
    ParamSpec {
        name: "crashes",
        default: "0",
        kind: ParamKind::Int { min: 0, max: 2 },
        help: "how many actors may be down at once (the coordinator included)",
    },
    ParamSpec {
        name: "variant",
        default: "correct",
        kind: ParamKind::Choice(&Variant::NAMES),
        help: "a named fault the checker must refute (see src/commit/variant.rs)",
    },
];

/// The coordinator's id (actor 0).
pub fn coordinator_id() -> Id {
    Id::from(0)
}

/// The configuration of a `two-phase` system.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TwoPhaseConfig {
    /// Participants per transaction.
    pub participants: usize,
    /// Transactions.
    pub txns: usize,
    /// Whether the network drops messages.
    pub lossy: bool,
    /// How many actors may be down at once.
    pub crashes: usize,
    /// The fault, if any.
    pub variant: Variant,
}

impl Default for TwoPhaseConfig {
    fn default() -> Self {
        TwoPhaseConfig {
            participants: 3,
            txns: 1,
            lossy: false,
            crashes: 0,
            variant: Variant::Correct,
        }
    }
}

/// What the model remembers beyond the actors' states (TLA+'s auxiliary
/// variables): every decision and vote ever announced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct History {
    /// Every decision made: (actor, transaction, outcome).
    pub decisions: BTreeSet<(Id, TxnId, Outcome)>,
    /// The coordinator's decision on each transaction: the first outcome it sent.
    pub coordinator_decision: BTreeMap<TxnId, Outcome>,
    /// Yes votes sent: (participant, transaction).
    pub yes_votes: BTreeSet<(Id, TxnId)>,
    /// Yes votes the coordinator counted before deciding (TwoPhase's tmPrepared).
    pub counted_yes: BTreeSet<(Id, TxnId)>,
    /// Per participant, the transactions it acknowledged as committed, in the
    /// order it applied them (the order matters where two write the same key;
    /// the interleaving across participants does not, so it is not kept).
    pub commit_acks: BTreeMap<Id, Vec<TxnId>>,
    /// A prepared participant has learned Commit from a peer.
    pub cooperative_commit: bool,
}

/// The actors on their network, as stateright composes them.
pub type Actors = ActorModel<CommitActor, TwoPhaseSystem, History>;

/// The system the checker explores: [`Actors`] on the network of
/// [`super::network`], which forgets the last-delivered envelope and models loss
/// as one step that loses every message in flight.
pub type TwoPhaseModel = OnNetwork<CommitActor, TwoPhaseSystem, History>;

/// A state of [`TwoPhaseModel`].
pub type SystemState = ActorModelState<CommitActor, History>;

/// The model's configuration together with the transactions it runs.
#[derive(Clone, Debug)]
pub struct TwoPhaseSystem {
    /// The parameters.
    pub config: TwoPhaseConfig,
    /// The transactions, as the coordinator begins them.
    pub plans: Vec<TxnPlan>,
}

impl TwoPhaseSystem {
    fn participant_ids(&self) -> impl Iterator<Item = Id> + '_ {
        (1..=self.config.participants).map(Id::from)
    }

    fn writes(&self, txn: TxnId, participant: Id) -> Option<&WriteSet> {
        self.plans
            .iter()
            .find(|p| p.txn == txn)
            .and_then(|p| p.writes.get(&participant))
    }
}

/// The transactions of a configuration. Transaction `t0` writes key `k` at every
/// participant; `t1` writes `k` at participant 1 — contending with `t0` for its
/// lock — and `j` elsewhere.
pub fn plans(participants: usize, txns: usize) -> Vec<TxnPlan> {
    (0..txns as u64)
        .map(|t| {
            let writes = (1..=participants)
                .map(|p| {
                    let key = if t == 0 || p == 1 { "k" } else { "j" };
                    let writes = WriteSet::from([(key.to_string(), format!("t{t}"))]);
                    (Id::from(p), writes)
                })
                .collect();
            TxnPlan {
                txn: TxnId(t),
                writes,
            }
        })
        .collect()
}

impl TwoPhaseConfig {
    /// Reads a configuration from checked parameters.
    pub fn from_params(params: &Params) -> Result<TwoPhaseConfig, ParamError> {
        let variant = params.choice("variant");
        Ok(TwoPhaseConfig {
            participants: params.usize("participants"),
            txns: params.usize("txns"),
            lossy: params.bool("lossy"),
            crashes: params.usize("crashes"),
            variant: Variant::from_name(variant)
                .ok_or_else(|| params.combination_error(format!("unknown variant {variant}")))?,
        })
    }

    /// Builds the actor model.
    pub fn into_model(self) -> TwoPhaseModel {
        let system = TwoPhaseSystem {
            plans: plans(self.participants, self.txns),
            config: self.clone(),
        };
        let coordinator = CommitActor::Coordinator(Coordinator {
            initial: system.plans.clone(),
            vote_timeout: model_timeout(),
            resend_every: model_timeout(),
            variant: self.variant,
        });
        let participant = CommitActor::Participant(Participant {
            free_vote: true,
            uncertain_after: model_timeout(),
            variant: self.variant,
        });
        let actors = ActorModel::new(system, History::default())
            .actor(coordinator)
            .actors(std::iter::repeat_n(participant, self.participants))
            .init_network(Network::new_unordered_duplicating([]))
            .max_crashes(self.crashes)
            .record_msg_out(record_out)
            .record_msg_in(record_in);
        OnNetwork::new(actors, self.lossy, properties)
    }
}

/// The properties of `two-phase` (see the module doc).
fn properties(model: &TwoPhaseModel) -> Vec<Property<TwoPhaseModel>> {
    let config = &model.actors.cfg.config;
    let mut properties = vec![
        Property::always("AC1 agreement", |_, s: &SystemState| agreement(s)),
        Property::always("AC2 irrevocable", |_, s: &SystemState| irrevocable(s)),
        Property::always(
            "AC3 commit needs all Yes",
            |m: &TwoPhaseModel, s: &SystemState| validity(&m.actors.cfg, s),
        ),
        Property::always("durability", |m: &TwoPhaseModel, s: &SystemState| {
            durable(&m.actors.cfg, s)
        }),
        Property::sometimes("AC4 all commit", |m: &TwoPhaseModel, s: &SystemState| {
            all_decided(&m.actors.cfg, s, TxnId(0), Some(Outcome::Commit))
        }),
        Property::sometimes("AC4 all abort", |m: &TwoPhaseModel, s: &SystemState| {
            all_decided(&m.actors.cfg, s, TxnId(0), Some(Outcome::Abort))
        }),
    ];
    if config.participants >= 2 {
        properties.push(Property::sometimes(
            "cooperative termination",
            |_, s: &SystemState| s.history.cooperative_commit,
        ));
    }
    if config.crashes == 0 {
        // With crashes, a participant may stay down forever; termination is
        // then only promised to the live ones, and stateright's `eventually`
        // is judged at terminal states, which a down actor never reaches.
        properties.push(Property::eventually(
            "AC5 termination",
            |m: &TwoPhaseModel, s: &SystemState| {
                let cfg = &m.actors.cfg;
                (0..cfg.plans.len() as u64).all(|t| all_decided(cfg, s, TxnId(t), None))
            },
        ));
    }
    properties
}

fn record_out(cfg: &TwoPhaseSystem, history: &History, env: Envelope<&Msg>) -> Option<History> {
    let _ = cfg;
    let mut next = history.clone();
    let from_coordinator = env.src == coordinator_id();
    match *env.msg {
        Msg::Vote {
            txn,
            vote: Vote::Yes,
        } => {
            next.yes_votes.insert((env.src, txn));
        }
        Msg::Vote {
            txn,
            vote: Vote::No,
        } => {
            next.decisions.insert((env.src, txn, Outcome::Abort));
        }
        Msg::Outcome { txn, outcome } if from_coordinator => {
            match next.coordinator_decision.get(&txn) {
                None => {
                    next.coordinator_decision.insert(txn, outcome);
                    next.decisions.insert((env.src, txn, outcome));
                }
                // An Abort after a Commit is presumed abort answering for a
                // transaction the coordinator has forgotten: not a decision.
                // What matters is whether a participant acts on it, which the
                // participants' own decisions show.
                Some(Outcome::Commit) => {}
                Some(Outcome::Abort) => {
                    next.decisions.insert((env.src, txn, outcome));
                }
            }
        }
        // A participant's answer to a peer, or its acknowledgement, states its
        // own decision.
        Msg::Outcome { txn, outcome } | Msg::Ack { txn, outcome } => {
            next.decisions.insert((env.src, txn, outcome));
            if outcome == Outcome::Commit && matches!(env.msg, Msg::Ack { .. }) {
                let applied = next.commit_acks.entry(env.src).or_default();
                if !applied.contains(&txn) {
                    applied.push(txn);
                }
            }
        }
        Msg::Prepare { .. } | Msg::Query { .. } => return None,
    }
    (next != *history).then_some(next)
}

fn record_in(cfg: &TwoPhaseSystem, history: &History, env: Envelope<&Msg>) -> Option<History> {
    let _ = cfg;
    match *env.msg {
        // The coordinator changed state on a Yes: it counted it (the vote is
        // ignored once decided, and by a recovered coordinator).
        Msg::Vote {
            txn,
            vote: Vote::Yes,
        } if env.dst == coordinator_id() && !history.coordinator_decision.contains_key(&txn) => {
            let mut next = history.clone();
            next.counted_yes.insert((env.src, txn));
            Some(next)
        }
        Msg::Outcome {
            txn,
            outcome: Outcome::Commit,
        } if env.src != coordinator_id()
            && !history.cooperative_commit
            && !history
                .decisions
                .iter()
                .any(|(who, t, _)| *who == env.dst && *t == txn) =>
        {
            let mut next = history.clone();
            next.cooperative_commit = true;
            Some(next)
        }
        _ => None,
    }
}

fn agreement(state: &SystemState) -> bool {
    let d = &state.history.decisions;
    !d.iter().any(|(_, txn, outcome)| {
        *outcome == Outcome::Commit && d.iter().any(|(_, t, o)| t == txn && *o == Outcome::Abort)
    })
}

fn irrevocable(state: &SystemState) -> bool {
    let d = &state.history.decisions;
    !d.iter().any(|(who, txn, outcome)| {
        *outcome == Outcome::Commit && d.contains(&(*who, *txn, Outcome::Abort))
    })
}

fn validity(cfg: &TwoPhaseSystem, state: &SystemState) -> bool {
    let h = &state.history;
    h.decisions
        .iter()
        .filter(|(_, _, outcome)| *outcome == Outcome::Commit)
        .all(|(_, txn, _)| {
            cfg.participant_ids()
                .all(|p| h.yes_votes.contains(&(p, *txn)))
        })
}

fn participant_state(state: &SystemState, id: Id) -> &crate::commit::ParticipantState {
    match &*state.actor_states[usize::from(id)] {
        CommitState::Participant(p) => p,
        CommitState::Coordinator(_) => unreachable!("actors 1.. are participants"),
    }
}

fn durable(cfg: &TwoPhaseSystem, state: &SystemState) -> bool {
    cfg.participant_ids().all(|p| {
        let mut expected = BTreeMap::new();
        for txn in state.history.commit_acks.get(&p).into_iter().flatten() {
            if let Some(writes) = cfg.writes(*txn, p) {
                expected.extend(writes.clone());
            }
        }
        let saved = match &state.actor_storages[usize::from(p)] {
            Some(Record::Participant(record)) => record.store == expected,
            Some(Record::Coordinator(_)) => false,
            None => expected.is_empty(),
        };
        let in_memory =
            state.crashed[usize::from(p)] || participant_state(state, p).record.store == expected;
        saved && in_memory
    })
}

fn all_decided(
    cfg: &TwoPhaseSystem,
    state: &SystemState,
    txn: TxnId,
    outcome: Option<Outcome>,
) -> bool {
    cfg.participant_ids().all(|p| {
        let decided = participant_state(state, p).outcome(txn);
        match outcome {
            Some(wanted) => decided == Some(wanted),
            None => decided.is_some(),
        }
    })
}

/// Projects a system state onto TwoPhase's variables, one TwoPhase state per
/// transaction: `rmState` from each participant's records, `tmState` from the
/// coordinator's recorded decision, `tmPrepared` from the Yes votes it counted,
/// and `msgs` from the votes and decisions ever sent.
pub fn to_two_phase(cfg: &TwoPhaseSystem, state: &SystemState) -> Vec<TwoPhaseState> {
    let h = &state.history;
    (0..cfg.plans.len() as u64)
        .map(TxnId)
        .map(|txn| {
            let decision = h.coordinator_decision.get(&txn).copied();
            TwoPhaseState {
                rm_state: cfg
                    .participant_ids()
                    .map(
                        |p| match participant_state(state, p).record.txns.get(&txn) {
                            None => RmState::Working,
                            Some(TxnRecord::Prepared { .. }) => RmState::Prepared,
                            Some(TxnRecord::Decided(Outcome::Commit)) => RmState::Committed,
                            Some(TxnRecord::Decided(Outcome::Abort) | TxnRecord::Refused) => {
                                RmState::Aborted
                            }
                        },
                    )
                    .collect(),
                tm_state: match decision {
                    None => TmState::Init,
                    Some(Outcome::Commit) => TmState::Committed,
                    Some(Outcome::Abort) => TmState::Aborted,
                },
                tm_prepared: cfg
                    .participant_ids()
                    .map(|p| h.counted_yes.contains(&(p, txn)))
                    .collect(),
                prepared_msg: cfg
                    .participant_ids()
                    .map(|p| h.yes_votes.contains(&(p, txn)))
                    .collect(),
                commit_msg: decision == Some(Outcome::Commit),
                abort_msg: decision == Some(Outcome::Abort),
            }
        })
        .collect()
}

/// The refinement of TwoPhase (see the module doc), checked on every
/// transition during the search.
pub fn refinement(model: &TwoPhaseModel) -> Refinement<TwoPhaseModel, TwoPhase> {
    let cfg = model.actors.cfg.clone();
    let spec = TwoPhase {
        rms: cfg.config.participants,
    };
    Refinement::new("refines TwoPhase", spec, move |s| to_two_phase(&cfg, s)).max_steps(2)
}

/// Checks the model and its refinement of TwoPhase, in one search.
pub fn check(params: &Params, options: &CheckOptions) -> Result<CheckReport, ParamError> {
    let model = TwoPhaseConfig::from_params(params)?.into_model();
    let spec = Spec::of(&model).transition(refinement(&model));
    Ok(harness::run_spec(
        NAME,
        params.clone(),
        &model,
        &spec,
        options,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::PropertyReport;
    use stateright::Model;

    fn run(config: TwoPhaseConfig) -> (CheckReport, PropertyReport) {
        let model = config.into_model();
        let options = CheckOptions {
            threads: 2,
            ..CheckOptions::default()
        };
        let params = Params::defaults(NAME, PARAMS);
        let spec = Spec::of(&model).transition(refinement(&model));
        let mut report = harness::run_spec(NAME, params, &model, &spec, &options);
        assert!(report.complete);
        let refinement = report.properties.pop().expect("refinement is checked last");
        (report, refinement)
    }

    fn config(
        participants: usize,
        lossy: bool,
        crashes: usize,
        variant: Variant,
    ) -> TwoPhaseConfig {
        TwoPhaseConfig {
            participants,
            txns: 1,
            lossy,
            crashes,
            variant,
        }
    }

    /// The names of the `always`/`eventually` properties that fail, refinement
    /// included.
    fn broken(report: &CheckReport, refinement: &PropertyReport) -> Vec<&'static str> {
        report
            .properties
            .iter()
            .chain(std::iter::once(refinement))
            .filter(|p| p.expectation != "sometimes" && !p.holds)
            .map(|p| p.name)
            .collect()
    }

    /// The actions of the counterexample to `property`.
    fn trace(report: &CheckReport, property: &str) -> Vec<String> {
        report
            .property(property)
            .and_then(|p| p.counterexample.clone())
            .unwrap_or_else(|| panic!("`{property}` has no counterexample"))
            .into_iter()
            .map(|step| step.action)
            .collect()
    }

    fn assert_passes(report: &CheckReport, refinement: &PropertyReport) {
        assert!(report.passed(), "{report:#?}");
        assert!(refinement.holds, "{refinement:#?}");
    }

    #[test]
    fn default_configuration_passes_with_pinned_counts() {
        let (report, refinement) = run(TwoPhaseConfig::default());
        assert_passes(&report, &refinement);
        assert_eq!(report.unique_states, 74_031);
    }

    #[test]
    fn two_participants_pass_with_crashes_and_loss() {
        let (report, refinement) = run(config(2, false, 0, Variant::Correct));
        assert_passes(&report, &refinement);
        assert_eq!(report.unique_states, 1_755);

        let (report, refinement) = run(config(2, false, 1, Variant::Correct));
        assert_passes(&report, &refinement);
        assert_eq!(report.unique_states, 8_972);

        let (report, refinement) = run(config(1, true, 0, Variant::Correct));
        assert_passes(&report, &refinement);
        assert_eq!(report.unique_states, 95);

        let (report, refinement) = run(config(2, true, 1, Variant::Correct));
        assert_passes(&report, &refinement);
        assert_eq!(report.unique_states, 32_972);
    }

    #[test]
    fn forgetting_the_last_delivery_is_an_exact_quotient() {
        // The raw actor system and the quotient reach the same states once the
        // last-delivered envelope is ignored: nothing is lost, nothing added.
        let model = config(2, false, 1, Variant::Correct).into_model();
        let raw = crate::models::testing::reachable_states(&model.actors);
        let projected: std::collections::HashSet<SystemState> = raw
            .iter()
            .cloned()
            .map(super::super::network::forget_last_delivery)
            .collect();
        let quotient = crate::models::testing::reachable_states(&model);
        assert_eq!(raw.len(), 49_360);
        assert_eq!(projected.len(), 8_972);
        assert_eq!(projected, quotient);
    }

    #[test]
    fn losing_everything_in_flight_stands_for_any_loss() {
        // Against stateright's own lossy network (a Drop per envelope): the same
        // actor configurations, the same terminal states and the same verdicts,
        // for the correct protocol and for two variants, one of which only loss
        // refutes. (stateright's own lossy network explodes beyond one
        // participant: with two it passes 4 million states.)
        let none: &[&str] = &[];
        for (config, states, broken) in [
            (config(1, true, 0, Variant::Correct), (95, 1_008), none),
            (config(1, true, 1, Variant::Correct), (390, 3_252), none),
            (
                config(1, true, 0, Variant::NoResend),
                (89, 1_008),
                &["AC5 termination"],
            ),
            (
                config(1, true, 1, Variant::ForgetDecision),
                (447, 5_028),
                &["AC1 agreement"],
            ),
        ] {
            let model = config.clone().into_model();
            let [reduced, native] = super::super::network::native::compare(&model);
            assert_eq!((reduced.states, native.states), states, "{config:?}");
            // Compared piecewise: a failing comparison of whole summaries would
            // print every state.
            assert!(reduced.reachable == native.reachable, "{config:?}");
            assert!(reduced.terminal == native.terminal, "{config:?}");
            assert_eq!(reduced.verdicts, native.verdicts, "{config:?}");
            let failed: Vec<&str> = native
                .verdicts
                .iter()
                .filter(|(_, holds)| !holds)
                .map(|(name, _)| *name)
                .collect();
            assert_eq!(failed, broken, "{config:?}");
        }
    }

    #[test]
    fn two_contending_transactions_pass() {
        // Two transactions multiply the state space (their interleavings are a
        // product), so contention is checked at one participant, where they
        // want the same lock.
        let two = |crashes| TwoPhaseConfig {
            participants: 1,
            txns: 2,
            crashes,
            ..TwoPhaseConfig::default()
        };
        let (report, refinement) = run(two(0));
        assert_passes(&report, &refinement);
        assert_eq!(report.unique_states, 950);
        let (report, refinement) = run(two(1));
        assert_passes(&report, &refinement);
        assert_eq!(report.unique_states, 3_894);
    }

    #[test]
    fn ignore_votes_commits_over_a_no_vote() {
        let (report, refinement) = run(config(2, false, 0, Variant::IgnoreVotes));
        assert_eq!(
            broken(&report, &refinement),
            [
                "AC1 agreement",
                "AC3 commit needs all Yes",
                "refines TwoPhase"
            ]
        );
        let trace = trace(&report, "AC3 commit needs all Yes");
        // The shortest counterexample ends as the coordinator takes a No as
        // the last reply it needed — and commits in that same handler.
        assert!(
            trace.last().unwrap().contains("Vote(t0, No) → Id(0)"),
            "{trace:?}"
        );
    }

    #[test]
    fn no_durable_vote_forgets_a_promise_across_a_crash() {
        let (report, refinement) = run(config(2, false, 1, Variant::NoDurableVote));
        assert_eq!(
            broken(&report, &refinement),
            ["AC1 agreement", "refines TwoPhase"]
        );
        let trace = trace(&report, "AC1 agreement");
        let crash = trace
            .iter()
            .position(|a| a.starts_with("Crash(Id("))
            .expect("a crash");
        assert!(
            trace[..crash]
                .iter()
                .any(|a| a.contains("select random Vote(t0, Yes)")),
            "{trace:?}"
        );
        assert!(
            trace[crash..]
                .iter()
                .any(|a| a.contains("select random Vote(t0, No)")),
            "{trace:?}"
        );
    }

    #[test]
    fn abort_after_yes_breaks_agreement_without_any_fault() {
        let (report, refinement) = run(config(2, false, 0, Variant::AbortAfterYes));
        assert_eq!(
            broken(&report, &refinement),
            ["AC1 agreement", "refines TwoPhase"]
        );
        let trace = trace(&report, "AC1 agreement");
        assert!(
            trace.iter().any(|a| a.contains("Uncertain(t0)")),
            "{trace:?}"
        );
        assert!(!trace.iter().any(|a| a.starts_with("Crash")), "{trace:?}");
    }

    #[test]
    fn forget_decision_answers_abort_after_committing() {
        let (report, refinement) = run(config(2, false, 1, Variant::ForgetDecision));
        assert_eq!(
            broken(&report, &refinement),
            ["AC1 agreement", "refines TwoPhase"]
        );
        let trace = trace(&report, "AC1 agreement");
        assert!(trace.iter().any(|a| a == "Crash(Id(0))"), "{trace:?}");
        assert!(
            trace.iter().any(|a| a.contains("Outcome(t0, Abort) → Id(")),
            "{trace:?}"
        );
    }

    #[test]
    fn early_forget_answers_abort_to_a_late_query() {
        let (report, refinement) = run(config(2, false, 0, Variant::EarlyForget));
        assert_eq!(
            broken(&report, &refinement),
            ["AC1 agreement", "refines TwoPhase"]
        );
        let trace = trace(&report, "AC1 agreement");
        assert!(
            trace.iter().any(|a| a.contains("Query(t0) → Id(0)")),
            "{trace:?}"
        );
    }

    #[test]
    fn no_resend_leaves_a_participant_undecided_on_a_lossy_network() {
        let (report, refinement) = run(config(1, true, 0, Variant::NoResend));
        assert_eq!(broken(&report, &refinement), ["AC5 termination"]);
        // The coordinator gives up waiting, sends Abort once, and the network
        // loses it together with the Prepare: the participant never decides.
        assert_eq!(
            trace(&report, "AC5 termination"),
            [
                "initial state",
                "Timeout(Id(0), VoteTimeout(t0))",
                "the network loses every message in flight"
            ]
        );
    }

    #[test]
    fn volatile_apply_loses_an_acknowledged_write() {
        let (report, refinement) = run(config(2, false, 0, Variant::VolatileApply));
        assert_eq!(broken(&report, &refinement), ["durability"]);
        let trace = trace(&report, "durability");
        assert!(
            trace.last().unwrap().contains("Outcome(t0, Commit) → Id("),
            "{trace:?}"
        );
        // With a crash the lost write also turns into a split decision.
        let (report, refinement) = run(config(2, false, 1, Variant::VolatileApply));
        assert_eq!(
            broken(&report, &refinement),
            [
                "AC1 agreement",
                "AC2 irrevocable",
                "durability",
                "refines TwoPhase"
            ]
        );
    }

    #[test]
    fn the_variants_together_break_every_safety_and_liveness_property() {
        // The names asserted in the tests above, gathered: every `always` and
        // `eventually` property of the model, and refinement, is broken by at
        // least one variant — none of them is vacuous.
        let model = TwoPhaseConfig::default().into_model();
        let mut names: Vec<&str> = model
            .properties()
            .iter()
            .filter(|p| p.expectation != stateright::Expectation::Sometimes)
            .map(|p| p.name)
            .collect();
        names.push("refines TwoPhase");
        let refuted = [
            "AC1 agreement",
            "AC2 irrevocable",
            "AC3 commit needs all Yes",
            "durability",
            "AC5 termination",
            "refines TwoPhase",
        ];
        names.sort_unstable();
        let mut refuted = refuted.to_vec();
        refuted.sort_unstable();
        assert_eq!(names, refuted);
    }

    #[test]
    fn parameters_select_the_configuration() {
        let params = Params::parse(
            NAME,
            PARAMS,
            &[
                "participants=2",
                "crashes=1",
                "lossy=true",
                "variant=early-forget",
            ],
        )
        .unwrap();
        let config = TwoPhaseConfig::from_params(&params).unwrap();
        assert_eq!(config, self::config(2, true, 1, Variant::EarlyForget));
        assert!(Params::parse(NAME, PARAMS, &["variant=nope"]).is_err());
    }
}
