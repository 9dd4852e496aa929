//! Refinement checking: every transition of a concrete model, projected onto an
//! abstract model's state, must be a step of the abstract model or a stutter.
//!
//! The checker's own search visits each state once and sees only the first
//! transition into it, so this module walks the reachable graph itself and
//! examines *every* transition, including those into states already seen.

use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;

use stateright::Model;

use super::harness::{PropertyReport, Step};

/// Explores `model` breadth first and calls `visit(from, action, to)` for every
/// transition of the reachable graph, stopping at the first `Err`. On an error,
/// returns the trace (actions from the initial state) that ends in the offending
/// transition.
pub fn for_each_transition<M, E>(
    model: &M,
    mut visit: impl FnMut(&M::State, &M::Action, &M::State) -> Result<(), E>,
) -> Result<usize, (E, Vec<Step>)>
where
    M: Model,
    M::State: Clone + Debug + Hash + Eq,
    M::Action: Clone + Debug,
{
    // Each discovered state remembers how it was first reached, so that a trace
    // can be rebuilt without keeping whole paths.
    let mut index: HashMap<M::State, usize> = HashMap::new();
    let mut parents: Vec<Option<(usize, M::Action)>> = Vec::new();
    let mut states: Vec<M::State> = Vec::new();
    let mut queue = VecDeque::new();
    for init in model.init_states() {
        if !index.contains_key(&init) && model.within_boundary(&init) {
            index.insert(init.clone(), states.len());
            queue.push_back(states.len());
            parents.push(None);
            states.push(init);
        }
    }
    let mut actions = Vec::new();
    let mut transitions = 0usize;
    while let Some(at) = queue.pop_front() {
        let from = states[at].clone();
        actions.clear();
        model.actions(&from, &mut actions);
        for action in actions.drain(..) {
            let Some(to) = model.next_state(&from, action.clone()) else {
                continue;
            };
            if !model.within_boundary(&to) {
                continue;
            }
            transitions += 1;
            if let Err(error) = visit(&from, &action, &to) {
                let mut steps = rebuild(model, &states, &parents, at);
                steps.push(Step {
                    action: model.format_action(&action),
                    state: format!("{to:?}"),
                });
                return Err((error, steps));
            }
            if !index.contains_key(&to) {
                index.insert(to.clone(), states.len());
                parents.push(Some((at, action)));
                states.push(to);
                queue.push_back(states.len() - 1);
            }
        }
    }
    Ok(transitions)
}

fn rebuild<M: Model>(
    model: &M,
    states: &[M::State],
    parents: &[Option<(usize, M::Action)>],
    mut at: usize,
) -> Vec<Step>
where
    M::State: Debug,
    M::Action: Debug,
{
    let mut steps = Vec::new();
    loop {
        let (action, parent) = match &parents[at] {
            Some((parent, action)) => (model.format_action(action), Some(*parent)),
            None => ("initial state".to_string(), None),
        };
        steps.push(Step {
            action,
            state: format!("{:?}", states[at]),
        });
        match parent {
            Some(parent) => at = parent,
            None => break,
        }
    }
    steps.reverse();
    steps
}

/// Checks that `concrete` refines `abstract_model` under `projection`: for every
/// reachable concrete transition `s → t`, either `projection(s) ==
/// projection(t)` (a stutter) or some enabled action of the abstract model leads
/// from `projection(s)` to `projection(t)`. Also checks that initial states
/// project onto initial states.
pub fn check_refinement<C, A>(
    concrete: &C,
    abstract_model: &A,
    projection: fn(&C::State) -> A::State,
) -> PropertyReport
where
    C: Model,
    C::State: Clone + Debug + Hash + Eq,
    C::Action: Clone + Debug,
    A: Model,
    A::State: Clone + Debug + PartialEq,
{
    let name = "refinement";
    let abstract_inits = abstract_model.init_states();
    for init in concrete.init_states() {
        if !abstract_inits.contains(&projection(&init)) {
            return PropertyReport {
                name,
                expectation: "always",
                holds: false,
                counterexample: Some(vec![Step {
                    action: "initial state (not an initial state of the spec)".into(),
                    state: format!("{init:?}"),
                }]),
            };
        }
    }
    let mut abstract_actions = Vec::new();
    let verdict = for_each_transition(concrete, |from, _, to| {
        let (before, after) = (projection(from), projection(to));
        if before == after {
            return Ok(());
        }
        abstract_actions.clear();
        abstract_model.actions(&before, &mut abstract_actions);
        let matched = abstract_actions
            .drain(..)
            .any(|a| abstract_model.next_state(&before, a).as_ref() == Some(&after));
        if matched {
            Ok(())
        } else {
            Err(format!("{before:?} → {after:?} is no step of the spec"))
        }
    });
    match verdict {
        Ok(_) => PropertyReport {
            name,
            expectation: "always",
            holds: true,
            counterexample: None,
        },
        Err((why, mut steps)) => {
            if let Some(last) = steps.last_mut() {
                last.action = format!("{} — {why}", last.action);
            }
            PropertyReport {
                name,
                expectation: "always",
                holds: false,
                counterexample: Some(steps),
            }
        }
    }
}
