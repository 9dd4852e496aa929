//! `commit-spec`: Lamport's TCommit, the specification of transaction commit.
//!
//! Source: Leslie Lamport, *TCommit.tla*, the transaction-commit specification
//! used in Gray & Lamport, "Consensus on Transaction Commit" (ACM TODS 31(1),
//! 2006), §2. The state is one variable, `rmState`, a resource manager (RM) state
//! per RM; the actions are `Prepare(rm)` and `Decide(rm)`. This module is a
//! transcription: the state, the actions and their enabling conditions are the
//! spec's, so the distinct-state counts equal TLC's for the same `RM` set.
//!
//! TLC's figure for three RMs is 34 distinct states: the 27 states over
//! {working, prepared, aborted} plus the 7 non-empty sets of committed RMs whose
//! other RMs are prepared. Tests pin that count and the general formula.
//!
//! # Symmetry
//!
//! No action or guard names a particular RM, so permuting `rmState` maps
//! behaviours onto behaviours, and [`representative`] (the sorted vector) is one
//! state per class. Every property checked looks at the multiset of RM states
//! only, so it has the same verdict on every member of a class: the reduction is
//! sound (a test in `two_phase_spec` compares the verdicts).

use std::fmt;
use std::hash::{Hash, Hasher};

use stateright::{Model, Property};

use super::params::{ParamError, ParamKind, ParamSpec, Params};

/// The model's name in `haft check`.
pub const NAME: &str = "commit-spec";

/// Parameters of `commit-spec`.
pub const PARAMS: &[ParamSpec] = &[ParamSpec {
    name: "rms",
    default: "3",
    kind: ParamKind::Int { min: 1, max: 12 },
    help: "resource managers (the spec's constant RM)",
}];

/// A resource manager's state in TCommit and TwoPhase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RmState {
    /// Still doing its part of the transaction.
    Working,
    /// Ready to commit; may no longer abort on its own.
    Prepared,
    /// Has committed.
    Committed,
    /// Has aborted.
    Aborted,
}

/// An RM state hashes as one byte, and a slice of them as one write of bytes
/// (the checker fingerprints `rmState` vectors on every transition).
impl Hash for RmState {
    fn hash<H: Hasher>(&self, hasher: &mut H) {
        hasher.write_u8(*self as u8);
    }

    fn hash_slice<H: Hasher>(data: &[Self], hasher: &mut H) {
        let mut bytes = [0u8; 64];
        for chunk in data.chunks(bytes.len()) {
            for (byte, state) in bytes.iter_mut().zip(chunk) {
                *byte = *state as u8;
            }
            hasher.write(&bytes[..chunk.len()]);
        }
    }
}

/// A decision an RM reaches in TCommit's `Decide(rm)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// `rmState' = [rmState EXCEPT ![rm] = "committed"]`.
    Commit,
    /// `rmState' = [rmState EXCEPT ![rm] = "aborted"]`.
    Abort,
}

/// TCommit's actions. `Decide(rm)` is a disjunction in the spec; the branch taken
/// is part of the action so that a trace says which one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TCommitAction {
    /// `Prepare(rm)`.
    Prepare(usize),
    /// `Decide(rm)`, taking the given branch.
    Decide(usize, Decision),
}

impl fmt::Display for TCommitAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TCommitAction::Prepare(rm) => write!(f, "Prepare(rm{rm})"),
            TCommitAction::Decide(rm, Decision::Commit) => write!(f, "Decide(rm{rm}) → committed"),
            TCommitAction::Decide(rm, Decision::Abort) => write!(f, "Decide(rm{rm}) → aborted"),
        }
    }
}

/// TCommit over `rms` resource managers.
#[derive(Clone, Debug)]
pub struct TCommit {
    /// The number of RMs (the spec's `RM` is `{0, …, rms-1}`).
    pub rms: usize,
}

/// `rmState`: one [`RmState`] per RM.
pub type TCommitState = Vec<RmState>;

impl TCommit {
    /// `canCommit == \A r \in RM : rmState[r] \in {"prepared", "committed"}`.
    pub fn can_commit(state: &[RmState]) -> bool {
        state
            .iter()
            .all(|s| matches!(s, RmState::Prepared | RmState::Committed))
    }

    /// `notCommitted == \A r \in RM : rmState[r] # "committed"`.
    pub fn not_committed(state: &[RmState]) -> bool {
        state.iter().all(|s| *s != RmState::Committed)
    }

    /// `TCConsistent`: no RM has committed while another has aborted.
    pub fn consistent(state: &[RmState]) -> bool {
        !(state.contains(&RmState::Committed) && state.contains(&RmState::Aborted))
    }

    /// Whether `action` is enabled in `state` (the spec's guards).
    pub fn enabled(state: &[RmState], action: TCommitAction) -> bool {
        match action {
            TCommitAction::Prepare(rm) => state[rm] == RmState::Working,
            TCommitAction::Decide(rm, Decision::Commit) => {
                state[rm] == RmState::Prepared && TCommit::can_commit(state)
            }
            TCommitAction::Decide(rm, Decision::Abort) => {
                matches!(state[rm], RmState::Working | RmState::Prepared)
                    && TCommit::not_committed(state)
            }
        }
    }

    /// Builds the model from checked parameters.
    pub fn from_params(params: &Params) -> Result<TCommit, ParamError> {
        Ok(TCommit {
            rms: params.usize("rms"),
        })
    }
}

impl Model for TCommit {
    type State = TCommitState;
    type Action = TCommitAction;

    fn init_states(&self) -> Vec<Self::State> {
        vec![vec![RmState::Working; self.rms]]
    }

    fn actions(&self, state: &Self::State, actions: &mut Vec<Self::Action>) {
        for rm in 0..self.rms {
            for action in [
                TCommitAction::Prepare(rm),
                TCommitAction::Decide(rm, Decision::Commit),
                TCommitAction::Decide(rm, Decision::Abort),
            ] {
                if TCommit::enabled(state, action) {
                    actions.push(action);
                }
            }
        }
    }

    fn next_state(&self, state: &Self::State, action: Self::Action) -> Option<Self::State> {
        let mut next = state.clone();
        match action {
            TCommitAction::Prepare(rm) => next[rm] = RmState::Prepared,
            TCommitAction::Decide(rm, Decision::Commit) => next[rm] = RmState::Committed,
            TCommitAction::Decide(rm, Decision::Abort) => next[rm] = RmState::Aborted,
        }
        Some(next)
    }

    fn format_action(&self, action: &Self::Action) -> String {
        action.to_string()
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("TCConsistent", |_, state: &TCommitState| {
                TCommit::consistent(state)
            }),
            Property::sometimes("all committed", |_, state: &TCommitState| {
                state.iter().all(|s| *s == RmState::Committed)
            }),
            Property::sometimes("all aborted", |_, state: &TCommitState| {
                state.iter().all(|s| *s == RmState::Aborted)
            }),
        ]
    }
}

/// The canonical representative of a state's symmetry class: RMs are
/// interchangeable, and an RM's whole picture is its `rmState`, so sorting gives
/// one representative per class.
pub fn representative(state: &TCommitState) -> TCommitState {
    let mut sorted = state.clone();
    sorted.sort_unstable();
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::testing::{check, check_symmetric};

    /// Distinct reachable states for `n` RMs: 3^n without a commit, plus
    /// 2^n − 1 with at least one committed RM and the rest prepared.
    fn expected(n: u32) -> usize {
        3usize.pow(n) + 2usize.pow(n) - 1
    }

    #[test]
    fn three_rms_have_tlcs_34_states() {
        let report = check(TCommit { rms: 3 });
        assert_eq!(report.unique_states, 34);
        assert!(report.passed(), "{report:?}");
    }

    #[test]
    fn state_counts_follow_the_closed_form() {
        for n in 1..=5 {
            assert_eq!(
                check(TCommit { rms: n as usize }).unique_states,
                expected(n)
            );
        }
    }

    #[test]
    fn symmetry_counts_multisets_of_rm_states() {
        // Classes for 3 RMs: multisets of size 3 over {w, p, a} (10) plus those
        // with k ≥ 1 committed and the rest prepared (3).
        let report = check_symmetric(TCommit { rms: 3 }, representative, 1);
        assert_eq!(report.unique_states, 13);
        assert_eq!(
            check_symmetric(TCommit { rms: 3 }, representative, 2).unique_states,
            13
        );
    }

    #[test]
    fn commit_is_disabled_while_an_rm_is_working() {
        let state = vec![RmState::Prepared, RmState::Working];
        assert!(!TCommit::enabled(
            &state,
            TCommitAction::Decide(0, Decision::Commit)
        ));
        assert!(TCommit::enabled(
            &state,
            TCommitAction::Decide(0, Decision::Abort)
        ));
        let state = vec![RmState::Committed, RmState::Prepared];
        assert!(!TCommit::enabled(
            &state,
            TCommitAction::Decide(1, Decision::Abort)
        ));
        assert!(TCommit::enabled(
            &state,
            TCommitAction::Decide(1, Decision::Commit)
        ));
    }
}
