//! Browsing a model one step at a time, for `haft explore`: where a path of
//! choices leads, what can happen next, and which checks hold at the state
//! reached.
//!
//! A path is a list of choice numbers. The first picks an initial state; each
//! next one picks an action enabled in the state reached so far. The actions
//! offered are those the checker follows — an action with a successor within
//! the model's boundary — in the model's own order, so a path names the same
//! states on every run of the same model at the same parameters, and it is
//! short enough to live in a URL.
//!
//! [`Browse`] hides the model's types, so that one Explorer serves every model
//! of the registry.

use std::fmt::Debug;

use stateright::Model;

use super::harness::Step;
use crate::checker::{Kind, Spec};

/// A model and what is checked on it, browsed by paths of choice numbers (see
/// the module doc).
pub trait Browse: Send + Sync {
    /// The name and kind of each check of the model's [`Spec`], in order.
    fn checks(&self) -> Vec<(&'static str, Kind)>;

    /// Follows `path` from the start.
    fn walk(&self, path: &[usize]) -> Result<Walk, BadPath>;

    /// The path whose steps are `steps` (a trace of the checker, as
    /// [`super::harness::trace`] writes it), if there is one.
    fn locate(&self, steps: &[Step]) -> Option<Vec<usize>>;
}

/// Where a path leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Walk {
    /// The initial state, then each action with the state it led to; empty for
    /// the empty path.
    pub steps: Vec<Step>,
    /// What can be chosen next, numbered by position: the initial states for
    /// the empty path, else the actions enabled in the last state.
    pub choices: Vec<String>,
    /// Each check of the model's [`Spec`], judged at the last state (nothing
    /// for the empty path).
    pub here: Vec<Judged>,
}

/// One check, judged at one state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judged {
    /// The check's name.
    pub name: &'static str,
    /// Its kind.
    pub kind: Kind,
    /// For a property of states: whether its condition (a liveness property:
    /// its goal) holds at this state; for a property of transitions: whether it
    /// accepts the last step (the initial state, for a path of one state).
    pub holds: bool,
    /// Why a transition is refused.
    pub note: Option<String>,
}

/// A path that leads nowhere.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "step {step} of the path chooses {choice}, but there {} only {available} choices there",
    if *available == 1 { "is" } else { "are" }
)]
pub struct BadPath {
    /// The position in the path of the bad choice.
    pub step: usize,
    /// The choice made.
    pub choice: usize,
    /// How many choices there were.
    pub available: usize,
}

/// [`Browse`] for a model and its spec.
pub struct Browser<M: Model> {
    model: M,
    spec: Spec<M>,
}

impl<M: Model> Browser<M> {
    /// Browses `model`, judging what `spec` checks at each state.
    pub fn new(model: M, spec: Spec<M>) -> Browser<M> {
        Browser { model, spec }
    }

    /// The initial states within the boundary.
    fn initial(&self) -> Vec<M::State> {
        self.model
            .init_states()
            .into_iter()
            .filter(|state| self.model.within_boundary(state))
            .collect()
    }

    /// The actions the checker follows from `state`, with their successors.
    fn successors(&self, state: &M::State) -> Vec<(M::Action, M::State)>
    where
        M::Action: Clone,
    {
        let mut actions = Vec::new();
        self.model.actions(state, &mut actions);
        actions
            .into_iter()
            .filter_map(|action| {
                let next = self.model.next_state(state, action.clone())?;
                self.model.within_boundary(&next).then_some((action, next))
            })
            .collect()
    }

    fn judge(&self, previous: Option<&M::State>, state: &M::State) -> Vec<Judged> {
        let properties = self.spec.properties.iter().map(|p| Judged {
            name: p.name,
            kind: match p.expectation {
                stateright::Expectation::Always => Kind::Always,
                stateright::Expectation::Sometimes => Kind::Sometimes,
                stateright::Expectation::Eventually => Kind::Eventually,
            },
            holds: (p.condition)(&self.model, state),
            note: None,
        });
        let liveness = self.spec.liveness.iter().map(|l| Judged {
            name: l.name,
            kind: Kind::Liveness,
            holds: (l.goal)(&self.model, state),
            note: None,
        });
        let transitions = self.spec.transitions.iter().map(|t| {
            let refused = match previous {
                None => t.check_initial(&self.model, state).err(),
                Some(from) => t
                    .check_transitions(&self.model, from, std::slice::from_ref(state))
                    .map(|(_, why)| why),
            };
            Judged {
                name: t.name(),
                kind: Kind::Transition,
                holds: refused.is_none(),
                note: refused,
            }
        });
        properties.chain(liveness).chain(transitions).collect()
    }
}

impl<M> Browse for Browser<M>
where
    M: Model + Send + Sync,
    M::State: Clone + Debug + Send + Sync,
    M::Action: Clone + Debug + Send + Sync,
{
    fn checks(&self) -> Vec<(&'static str, Kind)> {
        self.spec.checks()
    }

    fn walk(&self, path: &[usize]) -> Result<Walk, BadPath> {
        let initial = self.initial();
        let Some(&first) = path.first() else {
            return Ok(Walk {
                steps: Vec::new(),
                choices: (1..=initial.len())
                    .map(|i| format!("initial state {i} of {}", initial.len()))
                    .collect(),
                here: Vec::new(),
            });
        };
        let bad = |step, choice, available| BadPath {
            step,
            choice,
            available,
        };
        let available = initial.len();
        let mut state = initial
            .into_iter()
            .nth(first)
            .ok_or(bad(0, first, available))?;
        let mut previous = None;
        let mut steps = vec![Step {
            action: "initial state".to_string(),
            state: format!("{state:?}"),
        }];
        let mut successors = self.successors(&state);
        for (at, &choice) in path.iter().enumerate().skip(1) {
            let available = successors.len();
            let (action, next) = successors
                .into_iter()
                .nth(choice)
                .ok_or(bad(at, choice, available))?;
            steps.push(Step {
                action: self.model.format_action(&action),
                state: format!("{next:?}"),
            });
            previous = Some(std::mem::replace(&mut state, next));
            successors = self.successors(&state);
        }
        Ok(Walk {
            steps,
            choices: successors
                .iter()
                .map(|(action, _)| self.model.format_action(action))
                .collect(),
            here: self.judge(previous.as_ref(), &state),
        })
    }

    fn locate(&self, steps: &[Step]) -> Option<Vec<usize>> {
        let (first, rest) = steps.split_first()?;
        let (index, mut state) = self
            .initial()
            .into_iter()
            .enumerate()
            .find(|(_, state)| format!("{state:?}") == first.state)?;
        let mut path = vec![index];
        for step in rest {
            // The checker may add a note to the action of the last step (why a
            // transition was refused): the action is that step's prefix.
            let (index, next) = self
                .successors(&state)
                .into_iter()
                .enumerate()
                .find(|(_, (action, next))| {
                    step.action.starts_with(&self.model.format_action(action))
                        && format!("{next:?}") == step.state
                })
                .map(|(index, (_, next))| (index, next))?;
            path.push(index);
            state = next;
        }
        Some(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::harness::{self, CheckOptions};
    use crate::models::params::Params;
    use crate::models::two_phase::{self, TwoPhaseConfig};

    fn forget_too_early() -> (Params, Browser<two_phase::TwoPhaseModel>) {
        let params = Params::parse(
            two_phase::NAME,
            two_phase::PARAMS,
            &["participants=2", "variant=forget-too-early"],
        )
        .expect("valid parameters");
        let model = TwoPhaseConfig::from_params(&params)
            .expect("a model")
            .into_model();
        let spec = two_phase::spec(&model);
        (params, Browser::new(model, spec))
    }

    #[test]
    fn the_empty_path_offers_the_initial_states() {
        let (_, browser) = forget_too_early();
        let walk = browser.walk(&[]).expect("the empty path");
        assert!(walk.steps.is_empty() && walk.here.is_empty());
        assert_eq!(walk.choices, ["initial state 1 of 1"]);
    }

    #[test]
    fn a_counterexample_is_located_and_walked_back() {
        let (params, browser) = forget_too_early();
        let model = TwoPhaseConfig::from_params(&params).unwrap().into_model();
        let report = harness::run_spec(
            two_phase::NAME,
            params,
            &model,
            &two_phase::spec(&model),
            &CheckOptions::default(),
        );
        for name in ["AC1 agreement", "refines TwoPhase"] {
            let steps = report.property(name).unwrap().counterexample.clone();
            let steps = steps.expect("a counterexample");
            let path = browser.locate(&steps).expect("the counterexample's path");
            assert_eq!(path.len(), steps.len());
            let walk = browser.walk(&path).expect("its walk");
            assert_eq!(
                walk.steps.last().unwrap().state,
                steps.last().unwrap().state
            );
            let judged = walk.here.iter().find(|j| j.name == name).unwrap();
            assert!(!judged.holds, "{name} is violated at the end of its path");
            let earlier = browser.walk(&path[..path.len() - 1]).unwrap();
            let judged = earlier.here.iter().find(|j| j.name == name).unwrap();
            assert!(judged.holds, "{name} holds one step before");
        }
        let refused = browser.locate(
            &report
                .property("refines TwoPhase")
                .unwrap()
                .counterexample
                .clone()
                .unwrap(),
        );
        let walk = browser.walk(&refused.unwrap()).unwrap();
        let refinement = walk
            .here
            .iter()
            .find(|j| j.kind == Kind::Transition)
            .unwrap();
        assert!(
            refinement
                .note
                .as_deref()
                .unwrap()
                .contains("is no step of the spec")
        );
    }

    #[test]
    fn a_bad_choice_names_the_step() {
        let (_, browser) = forget_too_early();
        let error = browser.walk(&[0, 999]).unwrap_err();
        assert_eq!((error.step, error.choice), (1, 999));
        assert!(error.to_string().contains("only 3 choices"), "{error}");
        assert_eq!(browser.walk(&[1]).unwrap_err().available, 1);
        assert_eq!(browser.locate(&[]), None);
    }

    #[test]
    fn every_model_can_be_browsed() {
        for entry in crate::models::registry() {
            let browser = entry.browse(&entry.default_params()).expect("a browser");
            let mut path = vec![0];
            // A few steps in, always by the last choice.
            for _ in 0..6 {
                let walk = browser.walk(&path).expect("a walk");
                assert_eq!(walk.steps.len(), path.len(), "{}", entry.name);
                assert_eq!(walk.here.len(), browser.checks().len(), "{}", entry.name);
                let located = browser.locate(&walk.steps).expect("the walk's own path");
                assert_eq!(
                    browser.walk(&located).unwrap().steps,
                    walk.steps,
                    "{}",
                    entry.name
                );
                match walk.choices.len() {
                    0 => break,
                    n => path.push(n - 1),
                }
            }
        }
    }
}
