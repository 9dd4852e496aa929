//! Small helpers shared by the model tests.

use std::collections::HashSet;
use std::fmt::Debug;
use std::hash::Hash;

use stateright::Model;

use super::harness::{self, CheckOptions, CheckReport};
use super::params::Params;
use crate::checker::Status;

fn no_params() -> Params {
    Params::defaults("test", &[])
}

/// Checks `model` exhaustively on one thread.
pub fn check<M>(model: M) -> CheckReport
where
    M: Model + Sync,
    M::State: Clone + Debug + Hash + Send + Sync,
    M::Action: Clone + Debug + Send + Sync,
{
    let options = CheckOptions {
        strategy: harness::Strategy::Bfs,
        ..CheckOptions::default()
    };
    harness::run("test", no_params(), model, None, &options)
}

/// Checks `model` exhaustively with symmetry reduction.
pub fn check_symmetric<M>(
    model: M,
    representative: harness::Representative<M>,
    threads: usize,
) -> CheckReport
where
    M: Model + Sync,
    M::State: Clone + Debug + Hash + Send + Sync,
    M::Action: Clone + Debug + Send + Sync,
{
    let options = CheckOptions {
        symmetry: true,
        threads,
        ..CheckOptions::default()
    };
    harness::run("test", no_params(), model, Some(representative), &options)
}

/// Every reachable state of `model` (within its boundary).
pub fn reachable_states<M>(model: &M) -> HashSet<M::State>
where
    M: Model,
    M::State: Clone + Debug + Hash + Eq,
    M::Action: Clone + Debug,
{
    let mut seen: HashSet<M::State> = HashSet::new();
    let mut queue: Vec<M::State> = Vec::new();
    for init in model.init_states() {
        if model.within_boundary(&init) && seen.insert(init.clone()) {
            queue.push(init);
        }
    }
    let mut actions = Vec::new();
    while let Some(state) = queue.pop() {
        actions.clear();
        model.actions(&state, &mut actions);
        for action in actions.drain(..) {
            if let Some(next) = model.next_state(&state, action) {
                if model.within_boundary(&next) && seen.insert(next.clone()) {
                    queue.push(next);
                }
            }
        }
    }
    seen
}

/// The actions of the counterexample to `property`, from "initial state" on;
/// panics if it has none.
pub fn actions_to(report: &CheckReport, property: &str) -> Vec<String> {
    report
        .property(property)
        .and_then(|p| p.counterexample.clone())
        .unwrap_or_else(|| panic!("`{property}` has no counterexample"))
        .into_iter()
        .map(|step| step.action)
        .collect()
}

/// The names of the properties the search found violated.
pub fn violated(report: &CheckReport) -> Vec<&'static str> {
    report
        .properties
        .iter()
        .filter(|p| p.status == Status::Violated)
        .map(|p| p.name)
        .collect()
}
