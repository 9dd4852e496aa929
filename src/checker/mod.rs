//! haft's model checker: a parallel explicit-state search over any
//! [`stateright::Model`].
//!
//! Every model implements stateright's `Model` trait, so stateright's own
//! Explorer still serves it; this module replaces stateright's search with one
//! built for what `haft check` promises:
//!
//! - **lean**: a visited state costs one 64-bit fingerprint in a sharded table
//!   ([`fingerprint`]); depth-first search keeps only the states along its
//!   branches, and a counterexample path is the search stack itself;
//! - **parallel**: each worker searches its own stack and hands half of it to a
//!   worker that ran dry;
//! - **one pass**: checks on transitions (refinement, [`Refinement`]) run on
//!   every edge while the search expands its source; liveness ([`Liveness`]) is
//!   judged on the explored graph right after the search;
//! - **symmetry**: with [`Spec::symmetry`], a state is known by the fingerprint
//!   of its canonical representative, so one state per symmetry class is
//!   expanded; the search continues from the concrete successor, so every trace
//!   is a real path of the model;
//! - **bounded**: a timeout, a state limit and a memory limit stop the search
//!   cleanly ([`Stop`]), and the outcome then says which verdicts are final.
//!
//! [`check`] runs a search; [`simulate`] runs seeded random walks. Every
//! counterexample is shortest: once the search has shown a property broken, a
//! breadth-first search from the initial states finds the nearest violation.

mod fingerprint;
mod liveness;
pub mod memory;
mod paths;
mod refinement;
mod search;
mod simulate;
pub mod symmetry;
mod table;
pub mod value;

use std::time::Duration;

use stateright::{Model, Property};

pub use fingerprint::fingerprint;
pub use refinement::Refinement;
pub use search::check;
pub use simulate::{SimulationOptions, SimulationOutcome, simulate};

/// The order in which states are explored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Strategy {
    /// Depth first: the default, faster and leaner on haft's models.
    #[default]
    Dfs,
    /// Breadth first: keeps every frontier state in memory.
    Bfs,
}

/// "From every reachable state, a state satisfying `goal` is reachable" (AG EF
/// goal in CTL): a liveness property that can fail, unlike stateright's
/// `eventually`, which only judges the states where a path ends.
///
/// It is judged exactly on the explored graph. With symmetry it is sound only
/// if `goal` is symmetric (it holds of a state iff it holds of every state of
/// its class).
pub struct Liveness<M: Model> {
    /// The property's name.
    pub name: &'static str,
    /// The goal states.
    pub goal: fn(&M, &M::State) -> bool,
}

impl<M: Model> Clone for Liveness<M> {
    fn clone(&self) -> Self {
        Liveness {
            name: self.name,
            goal: self.goal,
        }
    }
}

/// A property of transitions, checked on every edge `from → to` of the
/// explored graph while the search expands `from` (see [`Refinement`]).
pub trait TransitionCheck<M: Model>: Send + Sync {
    /// The property's name.
    fn name(&self) -> &'static str;

    /// Checks an initial state; `Err` says why it is refused.
    fn check_initial(&self, model: &M, state: &M::State) -> Result<(), String> {
        let _ = (model, state);
        Ok(())
    }

    /// Checks every transition out of `from`, whose successors are `to`;
    /// returns the position in `to` of a refused transition and why.
    fn check_transitions(
        &self,
        model: &M,
        from: &M::State,
        to: &[M::State],
    ) -> Option<(usize, String)>;
}

/// Everything checked on a model: stateright's properties, and what they cannot
/// express.
pub struct Spec<M: Model> {
    /// `always`, `sometimes` and `eventually` properties (usually
    /// `model.properties()`).
    pub properties: Vec<Property<M>>,
    /// AG EF liveness properties.
    pub liveness: Vec<Liveness<M>>,
    /// Properties of transitions, such as refinement.
    pub transitions: Vec<Box<dyn TransitionCheck<M>>>,
    /// The canonical representative of a state's symmetry class, if the search
    /// should explore one state per class. It must map every state of a class to
    /// the same state, and every property checked must be symmetric.
    pub symmetry: Option<Representative<M>>,
}

/// A function from a state to the canonical representative of its symmetry
/// class.
pub type Representative<M> = fn(&<M as Model>::State) -> <M as Model>::State;

impl<M: Model> Spec<M> {
    /// The model's own properties, nothing else.
    pub fn of(model: &M) -> Spec<M> {
        Spec {
            properties: model.properties(),
            liveness: Vec::new(),
            transitions: Vec::new(),
            symmetry: None,
        }
    }

    /// Adds an AG EF property: from every reachable state a `goal` state is
    /// reachable.
    pub fn liveness(mut self, name: &'static str, goal: fn(&M, &M::State) -> bool) -> Spec<M> {
        self.liveness.push(Liveness { name, goal });
        self
    }

    /// Adds a property of transitions.
    pub fn transition(mut self, check: impl TransitionCheck<M> + 'static) -> Spec<M> {
        self.transitions.push(Box::new(check));
        self
    }

    /// Explores one state per symmetry class (see [`Spec::symmetry`]).
    pub fn symmetry(mut self, representative: Representative<M>) -> Spec<M> {
        self.symmetry = Some(representative);
        self
    }

    /// The name and kind of each check, in the order of [`Outcome::verdicts`].
    pub fn checks(&self) -> Vec<(&'static str, Kind)> {
        let properties = self.properties.iter().map(|p| {
            let kind = match p.expectation {
                stateright::Expectation::Always => Kind::Always,
                stateright::Expectation::Sometimes => Kind::Sometimes,
                stateright::Expectation::Eventually => Kind::Eventually,
            };
            (p.name, kind)
        });
        let liveness = self.liveness.iter().map(|l| (l.name, Kind::Liveness));
        let transitions = self
            .transitions
            .iter()
            .map(|t| (t.name(), Kind::Transition));
        properties.chain(liveness).chain(transitions).collect()
    }
}

/// Progress of a search, handed to [`Options::progress`] now and then.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// States generated so far, repeats included.
    pub total_states: usize,
    /// Distinct states (classes, with symmetry) so far.
    pub unique_states: usize,
    /// Deepest level reached so far.
    pub max_depth: usize,
    /// Time since the search started.
    pub elapsed: Duration,
}

/// A callback that reports progress.
pub type ProgressFn<'a> = &'a (dyn Fn(&Progress) + Sync);

/// How to run a search.
pub struct Options<'a> {
    /// Worker threads (at least 1).
    pub threads: usize,
    /// Depth or breadth first.
    pub strategy: Strategy,
    /// Stop after this long.
    pub timeout: Option<Duration>,
    /// Stop once this many distinct states are known.
    pub max_states: Option<usize>,
    /// Stop once the process's resident memory reaches this many bytes.
    pub max_memory: Option<u64>,
    /// Called about every `progress_every` while the search runs.
    pub progress: Option<ProgressFn<'a>>,
    /// How often to call `progress`.
    pub progress_every: Duration,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            threads: 1,
            strategy: Strategy::Dfs,
            timeout: None,
            max_states: None,
            max_memory: None,
            progress: None,
            progress_every: Duration::from_secs(1),
        }
    }
}

/// Why a search stopped before it had explored everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stop {
    /// [`Options::timeout`] passed.
    Timeout,
    /// [`Options::max_states`] was reached.
    StateLimit,
    /// [`Options::max_memory`] was reached.
    MemoryLimit,
}

/// What kind of property a check is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Holds in every reachable state.
    Always,
    /// Holds in some reachable state.
    Sometimes,
    /// stateright's `eventually`: holds somewhere on every path that ends in a
    /// terminal state (paths that go on for ever are not judged).
    Eventually,
    /// AG EF: from every reachable state a goal state is reachable.
    Liveness,
    /// Holds of every transition.
    Transition,
}

impl Kind {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Always => "always",
            Kind::Sometimes => "sometimes",
            Kind::Eventually => "eventually",
            Kind::Liveness => "liveness",
            Kind::Transition => "transition",
        }
    }
}

/// The verdict on one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Holds (a `sometimes` property: was witnessed).
    Holds,
    /// Refuted: a counterexample exists.
    Violated,
    /// A `sometimes` property never witnessed in a complete search.
    NotWitnessed,
    /// Not settled: the search stopped early, or (liveness) the model's boundary
    /// cut off the paths that decide it.
    Unknown,
}

/// A path of the model: the initial state, then each action with the state it
/// led to.
pub struct Trace<M: Model> {
    /// `(None, initial state)`, then `(Some(action), next state)`…
    pub steps: Vec<(Option<M::Action>, M::State)>,
}

impl<M: Model> Clone for Trace<M>
where
    M::State: Clone,
    M::Action: Clone,
{
    fn clone(&self) -> Self {
        Trace {
            steps: self.steps.clone(),
        }
    }
}

/// The verdict on one check, with its evidence.
pub struct Verdict<M: Model> {
    /// The check's name.
    pub name: &'static str,
    /// Its kind.
    pub kind: Kind,
    /// The verdict.
    pub status: Status,
    /// The counterexample (for a violation): the shortest path the checker
    /// found to a violating state or transition; for a liveness violation, the
    /// path to a state from which no goal state is reachable.
    pub trace: Option<Trace<M>>,
    /// For a liveness violation, where the run is trapped: a path on from the
    /// end of `trace` that returns to a state it visited (a cycle) or ends in a
    /// state with no successor (a deadlock). Every state on it misses the goal.
    pub trap: Option<Trace<M>>,
    /// What the checker says beyond the status (why a transition was refused,
    /// why a verdict is unknown).
    pub note: Option<String>,
}

/// The outcome of a search.
pub struct Outcome<M: Model> {
    /// Distinct states (symmetry classes with symmetry) explored.
    pub unique_states: usize,
    /// States generated, repeats included.
    pub total_states: usize,
    /// The deepest level of the search (an initial state is at depth 1).
    pub max_depth: usize,
    /// Why the search stopped early, if it did.
    pub stopped: Option<Stop>,
    /// One verdict per check, in [`Spec::checks`] order.
    pub verdicts: Vec<Verdict<M>>,
    /// Wall time of each phase: `search`, then `liveness` and
    /// `counterexamples` when they ran.
    pub phases: Vec<(&'static str, Duration)>,
    /// Peak resident memory of the process so far (Linux's VmHWM), in bytes.
    pub peak_memory: Option<u64>,
}

impl<M: Model> Outcome<M> {
    /// Whether the whole reachable space was explored.
    pub fn complete(&self) -> bool {
        self.stopped.is_none()
    }

    /// The verdict on the check called `name`.
    pub fn verdict(&self, name: &str) -> Option<&Verdict<M>> {
        self.verdicts.iter().find(|v| v.name == name)
    }

    /// The whole wall time.
    pub fn elapsed(&self) -> Duration {
        self.phases.iter().map(|(_, d)| *d).sum()
    }
}

#[cfg(test)]
mod tests;
