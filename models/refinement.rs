//! Refinement checking: every transition of a concrete model, projected onto an
//! abstract model's state, must be a step of the abstract model or a stutter.
//!
//! The check is [`crate::checker::Refinement`], a check on transitions that the
//! checker runs on every edge while it searches: no second pass. This module
//! keeps the standalone forms the tests use.

use std::fmt::Debug;
use std::hash::Hash;

use stateright::Model;

use super::harness::{self, CheckOptions, PropertyReport};
use super::params::Params;
use crate::checker::{Refinement, Spec};

/// Checks that `concrete` refines `abstract_model` under `projection` (see
/// [`Refinement`]), in a search of its own.
pub fn check_refinement<C, A>(
    concrete: &C,
    abstract_model: &A,
    projection: fn(&C::State) -> A::State,
) -> PropertyReport
where
    C: Model + Sync + 'static,
    C::State: Clone + Debug + Hash + Send + Sync,
    C::Action: Clone + Debug + Send + Sync,
    A: Model + Clone + Send + Sync + 'static,
    A::State: Clone + Debug + Hash + PartialEq + Send + Sync,
{
    check_refinement_of(concrete, abstract_model, 1, move |s| vec![projection(s)])
}

/// The general form of [`check_refinement`]: one abstract state per component,
/// up to `max_steps` abstract steps per transition.
pub fn check_refinement_of<C, A>(
    concrete: &C,
    abstract_model: &A,
    max_steps: usize,
    projection: impl Fn(&C::State) -> Vec<A::State> + Send + Sync + 'static,
) -> PropertyReport
where
    C: Model + Sync + 'static,
    C::State: Clone + Debug + Hash + Send + Sync,
    C::Action: Clone + Debug + Send + Sync,
    A: Model + Clone + Send + Sync + 'static,
    A::State: Clone + Debug + Hash + PartialEq + Send + Sync,
{
    let spec = Spec {
        properties: Vec::new(),
        liveness: Vec::new(),
        transitions: Vec::new(),
        symmetry: None,
    }
    .transition(
        Refinement::new("refinement", abstract_model.clone(), projection).max_steps(max_steps),
    );
    let report = harness::run_spec(
        "refinement",
        Params::defaults("refinement", &[]),
        concrete,
        &spec,
        &CheckOptions::default(),
    );
    report
        .properties
        .into_iter()
        .next()
        .expect("one check, one verdict")
}
