//! Refinement as a check on transitions: projected onto an abstract model, each
//! transition of the concrete model is a step of the abstract model or a
//! stutter.

use std::fmt::Debug;
use std::hash::Hash;

use stateright::Model;

use super::TransitionCheck;
use super::fingerprint::fingerprint;
use std::sync::atomic::{AtomicU64, Ordering};

/// The projection of a concrete state onto abstract states, one per component
/// (for instance one per transaction), written into the vector it is given
/// (which may hold the projection of another state, whose allocations it can
/// reuse with `clone_from`); each component is checked on its own.
pub type Projection<C, A> =
    Box<dyn Fn(&<C as Model>::State, &mut Vec<<A as Model>::State>) + Send + Sync>;

/// How many abstract steps the lock-free memo of proved steps remembers.
const MEMO_SLOTS: usize = 1 << 16;

/// "`C` refines `A` under a projection": every initial state projects onto
/// initial states of `A`, and every transition `s → t` of `C` projects, component
/// by component, onto a stutter or onto 1..=`max_steps` steps of `A` (an atomic
/// handler may implement several abstract actions back to back).
///
/// Checked on every edge the search explores. The abstract steps already proved
/// are remembered (by fingerprint, in a direct-mapped table of atomics that needs
/// no lock), so an abstract step is searched for about once, however many
/// concrete transitions project onto it.
pub struct Refinement<C: Model, A: Model> {
    name: &'static str,
    spec: A,
    max_steps: usize,
    projection: Projection<C, A>,
    spec_inits: Vec<A::State>,
    known_steps: Box<[AtomicU64]>,
}

impl<C: Model, A: Model> Refinement<C, A> {
    /// A check called `name` that `C` refines `spec` under `projection`, one
    /// abstract step per transition at most.
    pub fn new(
        name: &'static str,
        spec: A,
        projection: impl Fn(&C::State) -> Vec<A::State> + Send + Sync + 'static,
    ) -> Refinement<C, A> {
        Refinement::projecting_into(name, spec, move |state, out| *out = projection(state))
    }

    /// Like [`Refinement::new`], with a projection that writes into a vector
    /// the checker reuses: the form for hot paths, which can reuse the
    /// vector's allocations (`clone_from`).
    pub fn projecting_into(
        name: &'static str,
        spec: A,
        projection: impl Fn(&C::State, &mut Vec<A::State>) + Send + Sync + 'static,
    ) -> Refinement<C, A> {
        Refinement {
            name,
            spec_inits: spec.init_states(),
            spec,
            max_steps: 1,
            projection: Box::new(projection),
            known_steps: (0..MEMO_SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn project(&self, state: &C::State) -> Vec<A::State> {
        let mut out = Vec::new();
        (self.projection)(state, &mut out);
        out
    }

    /// Allows a transition to take each component up to `max_steps` abstract
    /// steps at once.
    pub fn max_steps(mut self, max_steps: usize) -> Refinement<C, A> {
        self.max_steps = max_steps.max(1);
        self
    }

    /// Whether `to` follows `from` in 1..=`max_steps` steps of the spec.
    fn is_step(&self, from: &A::State, to: &A::State) -> bool
    where
        A::State: Clone + PartialEq,
    {
        let mut frontier = vec![from.clone()];
        let mut actions = Vec::new();
        for _ in 0..self.max_steps {
            let mut next_frontier = Vec::new();
            for state in &frontier {
                actions.clear();
                self.spec.actions(state, &mut actions);
                for action in actions.drain(..) {
                    if let Some(next) = self.spec.next_state(state, action) {
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
}

impl<C, A> TransitionCheck<C> for Refinement<C, A>
where
    C: Model,
    A: Model + Send + Sync,
    A::State: Clone + Debug + Hash + PartialEq + Send + Sync,
{
    fn name(&self) -> &'static str {
        self.name
    }

    fn check_initial(&self, _: &C, state: &C::State) -> Result<(), String> {
        match self
            .project(state)
            .into_iter()
            .find(|p| !self.spec_inits.contains(p))
        {
            Some(bad) => Err(format!(
                "the initial state projects to {bad:?}, not an initial state of the spec"
            )),
            None => Ok(()),
        }
    }

    fn check_transitions(
        &self,
        _: &C,
        from: &C::State,
        to: &[C::State],
    ) -> Option<(usize, String)> {
        if to.is_empty() {
            return None;
        }
        let before = self.project(from);
        let mut after = Vec::new();
        for (j, next) in to.iter().enumerate() {
            (self.projection)(next, &mut after);
            if after.len() != before.len() {
                return Some((
                    j,
                    format!(
                        "the projection has {} components before and {} after",
                        before.len(),
                        after.len()
                    ),
                ));
            }
            for (b, a) in before.iter().zip(&after) {
                if b == a {
                    continue;
                }
                let step = fingerprint(&(b, a));
                let slot = &self.known_steps[step as usize % MEMO_SLOTS];
                if slot.load(Ordering::Relaxed) == step {
                    continue;
                }
                if !self.is_step(b, a) {
                    return Some((j, format!("{b:?} → {a:?} is no step of the spec")));
                }
                slot.store(step, Ordering::Relaxed);
            }
        }
        None
    }
}
