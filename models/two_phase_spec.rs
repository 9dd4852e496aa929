//! `two-phase-spec`: Lamport's TwoPhase, the two-phase commit protocol as a spec.
//!
//! Source: Leslie Lamport, *TwoPhase.tla*, in Gray & Lamport, "Consensus on
//! Transaction Commit" (ACM TODS 31(1), 2006), §3 and its appendix. Variables:
//! `rmState`, `tmState` (init / committed / aborted), `tmPrepared` (the RMs from
//! which the TM has received Prepared) and `msgs`, the set of messages ever sent
//! (a message is never removed, which models loss, duplication and reordering at
//! once). The actions and their guards are the spec's; tests pin TLC's 288
//! distinct states for three RMs and show that TwoPhase refines TCommit.
//!
//! # Symmetry
//!
//! The RMs are interchangeable: no guard or update names a particular RM, so
//! renaming the RMs (permuting `rmState`, `tmPrepared` and the Prepared
//! messages together) maps every behaviour onto a behaviour. [`representative`]
//! sorts the RMs by their whole local picture, which gives one state per class
//! (1,461 classes at 8 RMs, 3,300 at 10). The reduction is sound for every
//! property checked here, because each is symmetric: `TCConsistent`, "all
//! committed" and "all aborted" look at the multiset of RM states only; and the
//! refinement of TCommit projects onto `rmState`, which a renaming permutes, and
//! TCommit is itself symmetric, so a transition is a TCommit step exactly when
//! its renamed image is. A test compares every verdict and every witnessed
//! `sometimes` property with and without symmetry, breadth and depth first.

use std::fmt;
use std::hash::{Hash, Hasher};

use stateright::{Model, Property};

use super::commit_spec::{RmState, TCommit};
use super::params::{ParamError, ParamSpec, Params};
use crate::checker::{Refinement, Spec};

/// The model's name in `haft check`.
pub const NAME: &str = "two-phase-spec";

/// Parameters of `two-phase-spec`: the same `rms` as TCommit's.
pub const PARAMS: &[ParamSpec] = super::commit_spec::PARAMS;

/// The transaction manager's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TmState {
    /// Collecting Prepared messages.
    Init,
    /// Decided commit.
    Committed,
    /// Decided abort.
    Aborted,
}

/// A state of TwoPhase. `msgs` is kept as one flag per possible message: the
/// spec's message set is exactly `{Prepared(rm) : prepared_msg[rm]} ∪
/// {Commit : commit_msg} ∪ {Abort : abort_msg}`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TwoPhaseState {
    /// `rmState`.
    pub rm_state: Vec<RmState>,
    /// `tmState`.
    pub tm_state: TmState,
    /// `tmPrepared`, as membership flags.
    pub tm_prepared: Vec<bool>,
    /// `[type |-> "Prepared", rm |-> r] \in msgs`, per RM.
    pub prepared_msg: Vec<bool>,
    /// `[type |-> "Commit"] \in msgs`.
    pub commit_msg: bool,
    /// `[type |-> "Abort"] \in msgs`.
    pub abort_msg: bool,
}

/// Hashes the whole state as one word where it fits (up to 12 RMs: two bits
/// per `rmState`, one per `tmPrepared` and message flag): the checker
/// fingerprints every state it generates, and one write is several times
/// cheaper than one per field element. Equal states pack equally, so this
/// agrees with `Eq`.
impl TwoPhaseState {
    /// A state over no RM, every flag false: a slot that a projection fills
    /// in place (see `Refinement::projecting_into`).
    pub fn unfilled() -> TwoPhaseState {
        TwoPhaseState {
            rm_state: Vec::new(),
            tm_state: TmState::Init,
            tm_prepared: Vec::new(),
            prepared_msg: Vec::new(),
            commit_msg: false,
            abort_msg: false,
        }
    }
}

impl Hash for TwoPhaseState {
    fn hash<H: Hasher>(&self, hasher: &mut H) {
        let rms = self.rm_state.len();
        if rms <= 12 && self.tm_prepared.len() == rms && self.prepared_msg.len() == rms {
            let mut word = rms as u64;
            for rm in 0..rms {
                word = word << 2 | self.rm_state[rm] as u64;
                word = word << 1 | u64::from(self.tm_prepared[rm]);
                word = word << 1 | u64::from(self.prepared_msg[rm]);
            }
            word = word << 2 | self.tm_state as u64;
            word = word << 1 | u64::from(self.commit_msg);
            word = word << 1 | u64::from(self.abort_msg);
            hasher.write_u64(word);
        } else {
            self.rm_state.hash(hasher);
            self.tm_state.hash(hasher);
            self.tm_prepared.hash(hasher);
            self.prepared_msg.hash(hasher);
            self.commit_msg.hash(hasher);
            self.abort_msg.hash(hasher);
        }
    }
}

impl fmt::Debug for TwoPhaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |flags: &[bool]| {
            flags
                .iter()
                .enumerate()
                .filter(|(_, on)| **on)
                .map(|(rm, _)| format!("rm{rm}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut msgs: Vec<String> = self
            .prepared_msg
            .iter()
            .enumerate()
            .filter(|(_, on)| **on)
            .map(|(rm, _)| format!("Prepared(rm{rm})"))
            .collect();
        if self.commit_msg {
            msgs.push("Commit".into());
        }
        if self.abort_msg {
            msgs.push("Abort".into());
        }
        write!(
            f,
            "rmState={:?} tmState={:?} tmPrepared={{{}}} msgs={{{}}}",
            self.rm_state,
            self.tm_state,
            set(&self.tm_prepared),
            msgs.join(", ")
        )
    }
}

/// TwoPhase's actions, named as in the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TwoPhaseAction {
    /// `TMRcvPrepared(rm)`.
    TmRcvPrepared(usize),
    /// `TMCommit`.
    TmCommit,
    /// `TMAbort`.
    TmAbort,
    /// `RMPrepare(rm)`.
    RmPrepare(usize),
    /// `RMChooseToAbort(rm)`.
    RmChooseToAbort(usize),
    /// `RMRcvCommitMsg(rm)`.
    RmRcvCommitMsg(usize),
    /// `RMRcvAbortMsg(rm)`.
    RmRcvAbortMsg(usize),
}

impl fmt::Display for TwoPhaseAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TwoPhaseAction::TmRcvPrepared(rm) => write!(f, "TMRcvPrepared(rm{rm})"),
            TwoPhaseAction::TmCommit => f.write_str("TMCommit"),
            TwoPhaseAction::TmAbort => f.write_str("TMAbort"),
            TwoPhaseAction::RmPrepare(rm) => write!(f, "RMPrepare(rm{rm})"),
            TwoPhaseAction::RmChooseToAbort(rm) => write!(f, "RMChooseToAbort(rm{rm})"),
            TwoPhaseAction::RmRcvCommitMsg(rm) => write!(f, "RMRcvCommitMsg(rm{rm})"),
            TwoPhaseAction::RmRcvAbortMsg(rm) => write!(f, "RMRcvAbortMsg(rm{rm})"),
        }
    }
}

/// TwoPhase over `rms` resource managers.
#[derive(Clone, Debug)]
pub struct TwoPhase {
    /// The number of RMs.
    pub rms: usize,
}

impl TwoPhase {
    /// Builds the model from checked parameters.
    pub fn from_params(params: &Params) -> Result<TwoPhase, ParamError> {
        Ok(TwoPhase {
            rms: params.usize("rms"),
        })
    }

    /// Whether `action` is enabled in `state`: the spec's guards, verbatim.
    pub fn enabled(state: &TwoPhaseState, action: TwoPhaseAction) -> bool {
        match action {
            TwoPhaseAction::TmRcvPrepared(rm) => {
                state.tm_state == TmState::Init && state.prepared_msg[rm]
            }
            TwoPhaseAction::TmCommit => {
                state.tm_state == TmState::Init && state.tm_prepared.iter().all(|p| *p)
            }
            TwoPhaseAction::TmAbort => state.tm_state == TmState::Init,
            TwoPhaseAction::RmPrepare(rm) | TwoPhaseAction::RmChooseToAbort(rm) => {
                state.rm_state[rm] == RmState::Working
            }
            TwoPhaseAction::RmRcvCommitMsg(_) => state.commit_msg,
            TwoPhaseAction::RmRcvAbortMsg(_) => state.abort_msg,
        }
    }
}

impl Model for TwoPhase {
    type State = TwoPhaseState;
    type Action = TwoPhaseAction;

    fn init_states(&self) -> Vec<Self::State> {
        vec![TwoPhaseState {
            rm_state: vec![RmState::Working; self.rms],
            tm_state: TmState::Init,
            tm_prepared: vec![false; self.rms],
            prepared_msg: vec![false; self.rms],
            commit_msg: false,
            abort_msg: false,
        }]
    }

    fn actions(&self, state: &Self::State, actions: &mut Vec<Self::Action>) {
        let global = [TwoPhaseAction::TmCommit, TwoPhaseAction::TmAbort];
        let per_rm = (0..self.rms).flat_map(|rm| {
            [
                TwoPhaseAction::TmRcvPrepared(rm),
                TwoPhaseAction::RmPrepare(rm),
                TwoPhaseAction::RmChooseToAbort(rm),
                TwoPhaseAction::RmRcvCommitMsg(rm),
                TwoPhaseAction::RmRcvAbortMsg(rm),
            ]
        });
        actions.extend(
            global
                .into_iter()
                .chain(per_rm)
                .filter(|action| TwoPhase::enabled(state, *action)),
        );
    }

    fn next_state(&self, state: &Self::State, action: Self::Action) -> Option<Self::State> {
        let mut next = state.clone();
        match action {
            TwoPhaseAction::TmRcvPrepared(rm) => next.tm_prepared[rm] = true,
            TwoPhaseAction::TmCommit => {
                next.tm_state = TmState::Committed;
                next.commit_msg = true;
            }
            TwoPhaseAction::TmAbort => {
                next.tm_state = TmState::Aborted;
                next.abort_msg = true;
            }
            TwoPhaseAction::RmPrepare(rm) => {
                next.rm_state[rm] = RmState::Prepared;
                next.prepared_msg[rm] = true;
            }
            TwoPhaseAction::RmChooseToAbort(rm) => next.rm_state[rm] = RmState::Aborted,
            TwoPhaseAction::RmRcvCommitMsg(rm) => next.rm_state[rm] = RmState::Committed,
            TwoPhaseAction::RmRcvAbortMsg(rm) => next.rm_state[rm] = RmState::Aborted,
        }
        Some(next)
    }

    fn format_action(&self, action: &Self::Action) -> String {
        action.to_string()
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("TCConsistent", |_, state: &TwoPhaseState| {
                TCommit::consistent(&state.rm_state)
            }),
            Property::sometimes("all committed", |_, state: &TwoPhaseState| {
                state.rm_state.iter().all(|s| *s == RmState::Committed)
            }),
            Property::sometimes("all aborted", |_, state: &TwoPhaseState| {
                state.rm_state.iter().all(|s| *s == RmState::Aborted)
            }),
        ]
    }
}

/// The canonical representative of a state's symmetry class.
///
/// RMs are interchangeable, so a class is fixed by the multiset of each RM's
/// whole local picture: its `rmState`, whether it is in `tmPrepared`, and whether
/// its Prepared message is in `msgs`. Sorting RMs by that triple — not by
/// `rmState` alone, which leaves ties in arbitrary order — maps every member of a
/// class to the same state.
pub fn representative(state: &TwoPhaseState) -> TwoPhaseState {
    let mut pictures: Vec<(RmState, bool, bool)> = (0..state.rm_state.len())
        .map(|rm| {
            (
                state.rm_state[rm],
                state.tm_prepared[rm],
                state.prepared_msg[rm],
            )
        })
        .collect();
    pictures.sort_unstable();
    TwoPhaseState {
        rm_state: pictures.iter().map(|p| p.0).collect(),
        tm_state: state.tm_state,
        tm_prepared: pictures.iter().map(|p| p.1).collect(),
        prepared_msg: pictures.iter().map(|p| p.2).collect(),
        commit_msg: state.commit_msg,
        abort_msg: state.abort_msg,
    }
}

/// The refinement mapping onto TCommit: TCommit's only variable is `rmState`.
pub fn to_tcommit(state: &TwoPhaseState) -> Vec<RmState> {
    state.rm_state.clone()
}

/// What `haft check two-phase-spec` checks: the model's properties and its
/// refinement of TCommit, in one search; with `symmetry`, one state per class
/// of [`representative`].
pub fn spec(model: &TwoPhase, symmetry: bool) -> Spec<TwoPhase> {
    let tcommit = TCommit { rms: model.rms };
    // Projected into a reused vector: the check runs on every transition.
    let refinement = Refinement::projecting_into(
        "refines TCommit",
        tcommit,
        |s: &TwoPhaseState, out: &mut Vec<Vec<RmState>>| {
            out.resize_with(1, Vec::new);
            out[0].clone_from(&s.rm_state);
        },
    );
    let spec = Spec::of(model).transition(refinement);
    if symmetry {
        spec.symmetry(representative)
    } else {
        spec
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::models::commit_spec::TCommit;
    use crate::models::refinement::check_refinement;
    use crate::models::testing::{check, check_symmetric, reachable_states};

    // TwoPhase with the TM allowed to commit before every RM is prepared
    // is not a refinement of TCommit: the checker must say so.
    #[derive(Clone)]
    struct Hasty(TwoPhase);
    impl Model for Hasty {
        type State = TwoPhaseState;
        type Action = TwoPhaseAction;
        fn init_states(&self) -> Vec<TwoPhaseState> {
            self.0.init_states()
        }
        fn actions(&self, s: &TwoPhaseState, actions: &mut Vec<TwoPhaseAction>) {
            self.0.actions(s, actions);
            if s.tm_state == TmState::Init && !actions.contains(&TwoPhaseAction::TmCommit) {
                actions.push(TwoPhaseAction::TmCommit);
            }
        }
        fn next_state(&self, s: &TwoPhaseState, a: TwoPhaseAction) -> Option<TwoPhaseState> {
            self.0.next_state(s, a)
        }
        fn format_action(&self, action: &TwoPhaseAction) -> String {
            self.0.format_action(action)
        }
    }

    #[test]
    fn three_rms_have_tlcs_288_states() {
        let report = check(TwoPhase { rms: 3 });
        assert_eq!(report.unique_states, 288);
        assert!(report.passed(), "{report:?}");
    }

    #[test]
    fn five_rms_have_8832_states() {
        assert_eq!(check(TwoPhase { rms: 5 }).unique_states, 8_832);
    }

    /// Counts symmetry classes by brute force: canonicalise every reachable state
    /// by trying every permutation of the RMs and keeping the least image.
    fn classes_by_permutation(rms: usize) -> usize {
        fn permutations(n: usize) -> Vec<Vec<usize>> {
            if n == 0 {
                return vec![vec![]];
            }
            let mut all = Vec::new();
            for smaller in permutations(n - 1) {
                for at in 0..=smaller.len() {
                    let mut p = smaller.clone();
                    p.insert(at, n - 1);
                    all.push(p);
                }
            }
            all
        }
        let perms = permutations(rms);
        let permute = |s: &TwoPhaseState, p: &[usize]| TwoPhaseState {
            rm_state: p.iter().map(|&i| s.rm_state[i]).collect(),
            tm_state: s.tm_state,
            tm_prepared: p.iter().map(|&i| s.tm_prepared[i]).collect(),
            prepared_msg: p.iter().map(|&i| s.prepared_msg[i]).collect(),
            commit_msg: s.commit_msg,
            abort_msg: s.abort_msg,
        };
        let canon: HashSet<TwoPhaseState> = reachable_states(&TwoPhase { rms })
            .iter()
            .map(|s| perms.iter().map(|p| permute(s, p)).min().unwrap())
            .collect();
        canon.len()
    }

    #[test]
    fn symmetry_is_exact_and_independent_of_threads() {
        for rms in [3, 4] {
            let classes = classes_by_permutation(rms);
            for threads in [1, 2] {
                let report = check_symmetric(TwoPhase { rms }, representative, threads);
                assert_eq!(report.unique_states, classes, "rms={rms} threads={threads}");
            }
        }
        // Pinned, so that a change to the model or the canonicalisation shows.
        assert_eq!(classes_by_permutation(3), 80);
        assert_eq!(
            check_symmetric(TwoPhase { rms: 5 }, representative, 2).unique_states,
            314
        );
    }

    /// The verdict of every check, with and without symmetry, in both search
    /// orders: symmetry must change the counts only.
    #[test]
    fn symmetry_changes_no_verdict() {
        use crate::checker::{self, Options, Status, Strategy};
        fn verdicts<M: Model + Sync>(model: &M, spec: &Spec<M>) -> Vec<Vec<(&'static str, Status)>>
        where
            M::State: Clone + std::hash::Hash + Send + Sync,
            M::Action: Clone + Send + Sync,
        {
            [Strategy::Dfs, Strategy::Bfs]
                .into_iter()
                .map(|strategy| {
                    let options = Options {
                        strategy,
                        threads: 2,
                        ..Options::default()
                    };
                    checker::check(model, spec, &options)
                        .verdicts
                        .iter()
                        .map(|v| (v.name, v.status))
                        .collect()
                })
                .collect()
        }
        for rms in 1..=6 {
            let model = TwoPhase { rms };
            let full = verdicts(&model, &spec(&model, false));
            let reduced = verdicts(&model, &spec(&model, true));
            assert_eq!(full, reduced, "two-phase-spec rms={rms}");
            assert!(full[0].iter().all(|(_, s)| *s == Status::Holds));
            let tcommit = TCommit { rms };
            let full = verdicts(&tcommit, &Spec::of(&tcommit));
            let reduced = verdicts(
                &tcommit,
                &Spec::of(&tcommit).symmetry(crate::models::commit_spec::representative),
            );
            assert_eq!(full, reduced, "commit-spec rms={rms}");
        }
    }

    #[test]
    fn a_broken_guard_is_found_with_symmetry_too() {
        use crate::checker::{self, Options, Status};
        let model = Hasty(TwoPhase { rms: 3 });
        for symmetric in [false, true] {
            let mut spec = Spec::of(&model).transition(Refinement::new(
                "refines TCommit",
                TCommit { rms: 3 },
                |s: &TwoPhaseState| vec![to_tcommit(s)],
            ));
            if symmetric {
                spec = spec.symmetry(representative);
            }
            let outcome = checker::check(&model, &spec, &Options::default());
            let verdict = outcome.verdict("refines TCommit").unwrap();
            assert_eq!(verdict.status, Status::Violated, "symmetry: {symmetric}");
            let trace = verdict.trace.as_ref().unwrap();
            assert!(
                trace
                    .steps
                    .iter()
                    .any(|(a, _)| *a == Some(TwoPhaseAction::TmCommit)),
                "symmetry: {symmetric}"
            );
        }
    }

    #[test]
    fn two_phase_refines_tcommit() {
        for rms in 1..=4 {
            let verdict = check_refinement(&TwoPhase { rms }, &TCommit { rms }, to_tcommit);
            assert!(verdict.holds, "rms={rms}: {verdict:?}");
        }
    }

    #[test]
    fn both_searches_see_every_transition() {
        use crate::checker::{self, Options, Strategy};
        let model = TwoPhase { rms: 3 };
        for strategy in [Strategy::Dfs, Strategy::Bfs] {
            for threads in [1, 2] {
                let options = Options {
                    strategy,
                    threads,
                    ..Options::default()
                };
                let outcome = checker::check(&model, &spec(&model, false), &options);
                // 288 states; the initial state and one per transition.
                assert_eq!(outcome.unique_states, 288);
                assert_eq!(outcome.total_states, 1_146, "{strategy:?} {threads}");
                assert!(
                    outcome
                        .verdicts
                        .iter()
                        .all(|v| v.status == checker::Status::Holds)
                );
            }
        }
    }

    #[test]
    fn a_broken_guard_breaks_refinement() {
        let verdict =
            check_refinement(&Hasty(TwoPhase { rms: 2 }), &TCommit { rms: 2 }, to_tcommit);
        assert!(!verdict.holds);
        let trace = verdict
            .counterexample
            .expect("a refuted refinement has a trace");
        assert!(
            trace
                .iter()
                .any(|step| step.action.contains("RMRcvCommitMsg")),
            "{trace:?}"
        );
    }
}
