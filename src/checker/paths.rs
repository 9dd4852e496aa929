//! Traces: replaying a path of fingerprints, and the shortest path to a
//! violation.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;

use stateright::{Expectation, Model};

use super::{Spec, Trace};

/// The concrete path whose states have the keys `keys`, from an initial state.
///
/// With symmetry the keys are those of representatives; a path still exists
/// from any member of a class, because the classes' successors are symmetric.
pub(crate) fn replay<M>(model: &M, key: &dyn Fn(&M::State) -> u64, keys: &[u64]) -> Option<Trace<M>>
where
    M: Model,
    M::Action: Clone,
{
    let first = *keys.first()?;
    let init = model
        .init_states()
        .into_iter()
        .find(|s| model.within_boundary(s) && key(s) == first)?;
    replay_from(model, key, init, keys)
}

/// Like [`replay`], from `start`, whose key is `keys[0]`.
pub(crate) fn replay_from<M>(
    model: &M,
    key: &dyn Fn(&M::State) -> u64,
    start: M::State,
    keys: &[u64],
) -> Option<Trace<M>>
where
    M: Model,
    M::Action: Clone,
{
    let mut steps = vec![(None, start)];
    let mut actions = Vec::new();
    for &wanted in keys.iter().skip(1) {
        let (_, at) = steps.last()?;
        actions.clear();
        model.actions(at, &mut actions);
        let step = actions.drain(..).find_map(|action| {
            let next = model.next_state(at, action.clone())?;
            (model.within_boundary(&next) && key(&next) == wanted).then_some((Some(action), next))
        })?;
        steps.push(step);
    }
    Some(Trace { steps })
}

/// A breadth-first search that keeps every state it meets, with the step that
/// first reached it, so that the path to any of them can be rebuilt.
struct Tree<S, A> {
    nodes: Vec<(S, Option<(usize, A)>)>,
}

impl<S: Clone, A: Clone> Tree<S, A> {
    fn path_to<M: Model<State = S, Action = A>>(&self, mut at: usize) -> Trace<M> {
        let mut steps = Vec::new();
        loop {
            let (state, via) = &self.nodes[at];
            match via {
                Some((parent, action)) => {
                    steps.push((Some(action.clone()), state.clone()));
                    at = *parent;
                }
                None => {
                    steps.push((None, state.clone()));
                    break;
                }
            }
        }
        steps.reverse();
        Trace { steps }
    }
}

/// The shortest counterexample to each check in `wanted` (indices into
/// `spec.checks()`; `always`, `eventually` and transition checks), or `None`
/// where the search gave up: the memory limit was reached. A transition
/// check's counterexample comes with why its last step was refused: that
/// step, not the one the parallel search happened to meet first.
pub(crate) fn shortest<M>(
    model: &M,
    spec: &Spec<M>,
    key: &dyn Fn(&M::State) -> u64,
    wanted: &[usize],
    max_memory: Option<u64>,
) -> Vec<Option<(Trace<M>, Option<String>)>>
where
    M: Model,
    M::State: Clone + Hash,
    M::Action: Clone,
{
    let first_transition = spec.properties.len() + spec.liveness.len();
    let mut found: Vec<Option<(Trace<M>, Option<String>)>> = wanted.iter().map(|_| None).collect();
    // `always` and transition checks share one search; each `eventually`
    // property has its own, restricted to states where it does not hold.
    let shared: Vec<usize> = (0..wanted.len())
        .filter(|&w| {
            let i = wanted[w];
            i >= first_transition || spec.properties[i].expectation == Expectation::Always
        })
        .collect();
    if !shared.is_empty() {
        search(model, key, max_memory, None, |tree, at, successors| {
            let state = &tree.nodes[at].0;
            for &w in &shared {
                if found[w].is_some() {
                    continue;
                }
                let i = wanted[w];
                if i < first_transition {
                    if !(spec.properties[i].condition)(model, state) {
                        found[w] = Some((tree.path_to(at), None));
                    }
                    continue;
                }
                let states: Vec<M::State> = successors.iter().map(|(_, s)| s.clone()).collect();
                if let Some((j, why)) =
                    spec.transitions[i - first_transition].check_transitions(model, state, &states)
                {
                    let mut trace = tree.path_to(at);
                    let (action, next) = successors[j].clone();
                    trace.steps.push((Some(action), next));
                    found[w] = Some((trace, Some(why)));
                }
            }
            shared.iter().all(|&w| found[w].is_some())
        });
    }
    for (w, &i) in wanted.iter().enumerate() {
        if i >= first_transition || spec.properties[i].expectation != Expectation::Eventually {
            continue;
        }
        let condition = spec.properties[i].condition;
        search(
            model,
            key,
            max_memory,
            Some(&|s: &M::State| !condition(model, s)),
            |tree, at, successors| {
                if successors.is_empty() {
                    found[w] = Some((tree.path_to(at), None));
                    return true;
                }
                false
            },
        );
    }
    found
}

/// Which states a search may enter.
type Filter<'a, S> = &'a dyn Fn(&S) -> bool;

/// Breadth first from the initial states, calling `visit(tree, state, its
/// successors)` on each state until it returns true. With `only`, states that
/// fail it are neither visited nor expanded (they are still passed to `visit`
/// as successors).
fn search<M>(
    model: &M,
    key: &dyn Fn(&M::State) -> u64,
    max_memory: Option<u64>,
    only: Option<Filter<'_, M::State>>,
    mut visit: impl FnMut(&Tree<M::State, M::Action>, usize, &[(M::Action, M::State)]) -> bool,
) where
    M: Model,
    M::State: Clone + Hash,
    M::Action: Clone,
{
    let admit = |s: &M::State| only.is_none_or(|only| only(s));
    let mut tree = Tree { nodes: Vec::new() };
    let mut seen = HashSet::new();
    let mut queue = VecDeque::new();
    for init in model.init_states() {
        if model.within_boundary(&init) && admit(&init) && seen.insert(key(&init)) {
            queue.push_back(tree.nodes.len());
            tree.nodes.push((init, None));
        }
    }
    let mut actions = Vec::new();
    let mut successors = Vec::new();
    while let Some(at) = queue.pop_front() {
        if at % 4096 == 0
            && max_memory.is_some_and(|limit| super::memory::resident().is_some_and(|r| r >= limit))
        {
            return;
        }
        actions.clear();
        successors.clear();
        model.actions(&tree.nodes[at].0, &mut actions);
        for action in actions.drain(..) {
            if let Some(next) = model.next_state(&tree.nodes[at].0, action.clone()) {
                if model.within_boundary(&next) {
                    successors.push((action, next));
                }
            }
        }
        if visit(&tree, at, &successors) {
            return;
        }
        for (action, next) in successors.drain(..) {
            if admit(&next) && seen.insert(key(&next)) {
                queue.push_back(tree.nodes.len());
                tree.nodes.push((next, Some((at, action))));
            }
        }
    }
}
