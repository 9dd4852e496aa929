//! Refinement checking: every transition of a concrete model, projected onto an
//! abstract model's state, must be a step of the abstract model or a stutter.
//!
//! The checker's own search visits each state once and sees only the first
//! transition into it, so this module walks the reachable graph itself and
//! examines *every* transition, including those into states already seen.

use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::hash::{Hash, Hasher};

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

/// Like [`for_each_transition`], but depth first and remembering only a 64-bit
/// fingerprint per visited state, so that it fits in memory where the
/// breadth-first walk, which keeps every state, does not. The trace it returns
/// is the depth-first path to the offending transition, not the shortest.
pub fn for_each_transition_depth_first<M, E>(
    model: &M,
    mut visit: impl FnMut(&M::State, &M::Action, &M::State) -> Result<(), E>,
) -> Result<usize, (E, Vec<Step>)>
where
    M: Model,
    M::State: Clone + Debug + Hash + Eq,
    M::Action: Clone + Debug,
{
    struct Frame<S, A> {
        state: S,
        via: Option<A>,
        pending: Vec<A>,
    }
    let fingerprint = |state: &M::State| {
        let mut hasher = std::hash::DefaultHasher::new();
        state.hash(&mut hasher);
        hasher.finish()
    };
    let mut seen = std::collections::HashSet::new();
    let mut transitions = 0usize;
    for init in model.init_states() {
        if !model.within_boundary(&init) || !seen.insert(fingerprint(&init)) {
            continue;
        }
        let mut pending = Vec::new();
        model.actions(&init, &mut pending);
        let mut stack = vec![Frame {
            state: init,
            via: None,
            pending,
        }];
        while let Some(top) = stack.last_mut() {
            let Some(action) = top.pending.pop() else {
                stack.pop();
                continue;
            };
            let Some(next) = model.next_state(&top.state, action.clone()) else {
                continue;
            };
            if !model.within_boundary(&next) {
                continue;
            }
            transitions += 1;
            if let Err(error) = visit(&top.state, &action, &next) {
                let mut steps: Vec<Step> = stack
                    .iter()
                    .map(|frame| Step {
                        action: frame.via.as_ref().map_or_else(
                            || "initial state".to_string(),
                            |a| model.format_action(a),
                        ),
                        state: format!("{:?}", frame.state),
                    })
                    .collect();
                steps.push(Step {
                    action: model.format_action(&action),
                    state: format!("{next:?}"),
                });
                return Err((error, steps));
            }
            if seen.insert(fingerprint(&next)) {
                let mut pending = Vec::new();
                model.actions(&next, &mut pending);
                stack.push(Frame {
                    state: next,
                    via: Some(action),
                    pending,
                });
            }
        }
    }
    Ok(transitions)
}

/// The shortest trace (breadth first, one thread) from an initial state to a
/// state satisfying `target`, or `None` if no reachable state does.
pub fn shortest_path_to<M>(model: &M, target: impl Fn(&M::State) -> bool) -> Option<Vec<Step>>
where
    M: Model,
    M::State: Clone + Debug + Hash + Eq,
    M::Action: Clone + Debug,
{
    let hit = model
        .init_states()
        .into_iter()
        .find(|init| model.within_boundary(init) && target(init));
    if let Some(init) = hit {
        return Some(vec![Step {
            action: "initial state".into(),
            state: format!("{init:?}"),
        }]);
    }
    for_each_transition(model, |_, _, to| if target(to) { Err(()) } else { Ok(()) })
        .err()
        .map(|((), steps)| steps)
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
    check_refinement_of(concrete, abstract_model, 1, |s| vec![projection(s)])
}

/// The general form of [`check_refinement`]. `projection` maps a concrete state
/// onto one abstract state per component (for instance one per transaction), and
/// each component is checked on its own; a concrete transition may take each
/// component up to `max_steps` abstract steps at once (an atomic handler that
/// implements several spec actions back to back).
pub fn check_refinement_of<C, A>(
    concrete: &C,
    abstract_model: &A,
    max_steps: usize,
    projection: impl Fn(&C::State) -> Vec<A::State>,
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
        if let Some(bad) = projection(&init)
            .into_iter()
            .find(|p| !abstract_inits.contains(p))
        {
            return PropertyReport {
                name,
                expectation: "always",
                holds: false,
                counterexample: Some(vec![Step {
                    action: format!(
                        "initial state (projects to {bad:?}, not an initial state of the spec)"
                    ),
                    state: format!("{init:?}"),
                }]),
            };
        }
    }
    let verdict = for_each_transition_depth_first(concrete, |from, _, to| {
        let (before, after) = (projection(from), projection(to));
        for (b, a) in before.iter().zip(&after) {
            if b != a && !within_steps(abstract_model, b, a, max_steps) {
                return Err(format!("{b:?} → {a:?} is no step of the spec"));
            }
        }
        Ok(())
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

/// Whether `to` is reachable from `from` in 1..=`max_steps` steps of `model`.
fn within_steps<A: Model>(model: &A, from: &A::State, to: &A::State, max_steps: usize) -> bool
where
    A::State: Clone + PartialEq,
{
    let mut frontier = vec![from.clone()];
    let mut actions = Vec::new();
    for _ in 0..max_steps {
        let mut next_frontier = Vec::new();
        for state in &frontier {
            actions.clear();
            model.actions(state, &mut actions);
            for action in actions.drain(..) {
                if let Some(next) = model.next_state(state, action) {
                    if next == *to {
                        return true;
                    }
                    next_frontier.push(next);
                }
            }
        }
        frontier = next_frontier;
    }
    false
}
