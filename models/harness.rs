//! Runs the checker over any model and turns the outcome into a [`CheckReport`].
//!
//! The harness always explores the whole reachable space (it does not stop at the
//! first discovery), so that the state counts it reports are exact and can be
//! pinned by tests. Only a timeout stops it early, and then the report says
//! `complete: false`.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::hash::Hash;
use std::time::{Duration, Instant};

use serde::Serialize;
use stateright::{Checker, Expectation, HasDiscoveries, Model, Path};

use super::params::{ParamValue, Params};

/// The order in which states are explored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Strategy {
    /// Breadth first: shortest counterexamples when single-threaded.
    #[default]
    Bfs,
    /// Depth first: less memory.
    Dfs,
}

/// Progress of a run, handed to [`CheckOptions::progress`] now and then.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// The model's name.
    pub model: &'static str,
    /// States generated so far, repeats included.
    pub total_states: usize,
    /// Distinct states so far.
    pub unique_states: usize,
    /// Deepest level reached so far.
    pub max_depth: usize,
    /// Time since the run started.
    pub elapsed: Duration,
}

/// How to run the checker.
pub struct CheckOptions {
    /// Explore one representative per symmetry class. Implies depth-first search,
    /// the only strategy in which stateright 0.31 applies symmetry.
    pub symmetry: bool,
    /// Worker threads.
    pub threads: usize,
    /// Breadth or depth first.
    pub strategy: Strategy,
    /// Stop after this long; the report then says `complete: false`.
    pub timeout: Option<Duration>,
    /// Called about every `progress_every` while the checker runs.
    pub progress: Option<ProgressCallback>,
    /// How often to call `progress`.
    pub progress_every: Duration,
}

/// What `CheckOptions::progress` calls while the checker runs.
pub type ProgressCallback = Box<dyn Fn(&Progress) + Send + Sync>;

/// Maps a state to the representative of its symmetry class.
pub type Representative<S> = fn(&S) -> S;

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            symmetry: false,
            threads: 1,
            strategy: Strategy::Bfs,
            timeout: None,
            progress: None,
            progress_every: Duration::from_secs(2),
        }
    }
}

/// One step of a counterexample (or example) trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The action taken, as text.
    pub action: String,
    /// The state it led to, as text.
    pub state: String,
}

/// The verdict on one property.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PropertyReport {
    /// The property's name.
    pub name: &'static str,
    /// `always`, `eventually` or `sometimes`.
    pub expectation: &'static str,
    /// Whether the property holds: no counterexample for `always`/`eventually`,
    /// a witness for `sometimes`.
    pub holds: bool,
    /// The trace that refutes an `always`/`eventually` property, if any. (A
    /// `sometimes` witness is an example, not a counterexample, and is not shown.)
    pub counterexample: Option<Vec<Step>>,
}

/// The outcome of checking one model at one size.
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    /// The model's name.
    pub model: &'static str,
    /// The parameters it was checked with.
    #[serde(serialize_with = "serialize_params")]
    pub params: Params,
    /// Distinct states visited (symmetry classes with `--symmetry`).
    pub unique_states: usize,
    /// States generated, repeats included.
    pub total_states: usize,
    /// The deepest level of the search.
    pub max_depth: usize,
    /// Whether the whole reachable space was explored.
    pub complete: bool,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// One verdict per property, in the model's order.
    pub properties: Vec<PropertyReport>,
}

impl CheckReport {
    /// True when the run explored everything, every `always`/`eventually`
    /// property holds and every `sometimes` property was witnessed.
    pub fn passed(&self) -> bool {
        self.complete && self.properties.iter().all(|p| p.holds)
    }

    /// The verdict on the property called `name`.
    pub fn property(&self, name: &str) -> Option<&PropertyReport> {
        self.properties.iter().find(|p| p.name == name)
    }
}

fn serialize_params<S: serde::Serializer>(params: &Params, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(params.values().len()))?;
    for (key, value) in params.values() {
        match value {
            ParamValue::Int(n) => map.serialize_entry(key, n)?,
            ParamValue::Bool(b) => map.serialize_entry(key, b)?,
            ParamValue::Choice(c) => map.serialize_entry(key, c)?,
        }
    }
    map.end()
}

/// Checks `model` exhaustively and reports on each of its properties.
///
/// `symmetry` is the model's canonicalisation function, used when
/// `options.symmetry` is set; it must map every state of a symmetry class to the
/// same representative, so that the reduced count is the number of classes.
pub fn run<M>(
    name: &'static str,
    params: Params,
    model: M,
    symmetry: Option<Representative<M::State>>,
    options: &CheckOptions,
) -> CheckReport
where
    M: Model + Send + Sync + 'static,
    M::State: Clone + Debug + Hash + PartialEq + Send + Sync + 'static,
    M::Action: Clone + Debug + PartialEq + Send + Sync + 'static,
{
    // A property name no model uses: the search never stops for discoveries, so
    // the counts always cover the whole reachable space.
    let never = HasDiscoveries::AllOf(BTreeSet::from(["\u{0}haft: explore everything"]));
    let mut builder = model
        .checker()
        .threads(options.threads.max(1))
        .finish_when(never);
    if options.symmetry {
        let representative = symmetry.expect("the caller checks that the model has symmetry");
        builder = builder.symmetry_fn(representative);
    }
    if let Some(timeout) = options.timeout {
        builder = builder.timeout(timeout);
    }
    let started = Instant::now();
    // stateright 0.31 applies a symmetry function only in its depth-first search.
    let strategy = if options.symmetry {
        Strategy::Dfs
    } else {
        options.strategy
    };
    let checker = match strategy {
        Strategy::Bfs => Box::new(builder.spawn_bfs()) as Box<dyn Checker<M>>,
        Strategy::Dfs => Box::new(builder.spawn_dfs()),
    };
    let checker = wait(name, checker, options, started);
    let seconds = started.elapsed().as_secs_f64();
    let timed_out = options.timeout.is_some_and(|t| started.elapsed() >= t);
    let discoveries = checker.discoveries();
    let model = checker.model();
    let properties = model
        .properties()
        .into_iter()
        .map(|property| {
            let found = discoveries.get(property.name);
            let (expectation, holds, counterexample) = match property.expectation {
                Expectation::Always => ("always", found.is_none(), found),
                Expectation::Eventually => ("eventually", found.is_none(), found),
                Expectation::Sometimes => ("sometimes", found.is_some(), None),
            };
            PropertyReport {
                name: property.name,
                expectation,
                holds,
                counterexample: counterexample.map(|path| trace(model, path.clone())),
            }
        })
        .collect();
    CheckReport {
        model: name,
        params,
        unique_states: checker.unique_state_count(),
        total_states: checker.state_count(),
        max_depth: checker.max_depth(),
        complete: !timed_out,
        seconds,
        properties,
    }
}

fn wait<M: Model>(
    name: &'static str,
    mut checker: Box<dyn Checker<M>>,
    options: &CheckOptions,
    started: Instant,
) -> Box<dyn Checker<M>> {
    let handles = checker.handles();
    if let Some(progress) = &options.progress {
        let poll = Duration::from_millis(50);
        let mut next_report = started + options.progress_every;
        while handles.iter().any(|h| !h.is_finished()) {
            std::thread::sleep(poll);
            if Instant::now() >= next_report {
                next_report += options.progress_every;
                progress(&Progress {
                    model: name,
                    total_states: checker.state_count(),
                    unique_states: checker.unique_state_count(),
                    max_depth: checker.max_depth(),
                    elapsed: started.elapsed(),
                });
            }
        }
    }
    for handle in handles {
        if let Err(panic) = handle.join() {
            std::panic::resume_unwind(panic);
        }
    }
    checker
}

/// Turns a path into numbered-trace steps: the initial state, then each action
/// with the state it led to.
pub fn trace<M: Model>(model: &M, path: Path<M::State, M::Action>) -> Vec<Step>
where
    M::State: Debug,
    M::Action: Debug,
{
    let mut steps = Vec::new();
    let mut pending_action: Option<String> = None;
    for (state, action) in path.into_vec() {
        steps.push(Step {
            action: pending_action
                .take()
                .unwrap_or_else(|| "initial state".to_string()),
            state: format!("{state:?}"),
        });
        pending_action = action.map(|a| model.format_action(&a));
    }
    steps
}
