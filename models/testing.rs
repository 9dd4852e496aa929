//! Small helpers shared by the model tests.

use std::collections::HashSet;
use std::fmt::Debug;
use std::hash::Hash;

use stateright::Model;

use super::harness::{self, CheckOptions, CheckReport};
use super::params::Params;
use super::refinement::for_each_transition;

fn no_params() -> Params {
    Params::defaults("test", &[])
}

/// Checks `model` exhaustively on one thread.
pub fn check<M>(model: M) -> CheckReport
where
    M: Model + Send + Sync + 'static,
    M::State: Clone + Debug + Hash + Eq + Send + Sync + 'static,
    M::Action: Clone + Debug + PartialEq + Send + Sync + 'static,
{
    harness::run("test", no_params(), model, None, &CheckOptions::default())
}

/// Checks `model` exhaustively with symmetry reduction.
pub fn check_symmetric<M>(
    model: M,
    representative: harness::Representative<M>,
    threads: usize,
) -> CheckReport
where
    M: Model + Send + Sync + 'static,
    M::State: Clone + Debug + Hash + Eq + Send + Sync + 'static,
    M::Action: Clone + Debug + PartialEq + Send + Sync + 'static,
{
    let options = CheckOptions {
        symmetry: true,
        threads,
        ..CheckOptions::default()
    };
    harness::run("test", no_params(), model, Some(representative), &options)
}

/// Every reachable state of `model`.
pub fn reachable_states<M>(model: &M) -> HashSet<M::State>
where
    M: Model,
    M::State: Clone + Debug + Hash + Eq,
    M::Action: Clone + Debug,
{
    let mut seen: HashSet<M::State> = model.init_states().into_iter().collect();
    for_each_transition(model, |_, _, to| {
        seen.insert(to.clone());
        Ok::<(), ()>(())
    })
    .expect("the visitor never fails");
    seen
}
