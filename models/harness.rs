//! Runs haft's checker ([`crate::checker`]) over a model and turns the outcome
//! into a [`CheckReport`].
//!
//! The search always explores the whole reachable space (it does not stop at the
//! first violation), so that the state counts it reports are exact and can be
//! pinned by tests. Only a timeout, a state limit or the memory limit stops it
//! early; the report then says `complete: false`, and every property it did not
//! refute is "not refuted" rather than "holds".

use std::fmt::Debug;
use std::hash::Hash;
use std::time::{Duration, Instant};

use serde::Serialize;
use stateright::Model;

use crate::checker::{self, Kind, Outcome, SimulationOptions, Spec, Status, Stop, Trace};

pub use crate::checker::Strategy;

use super::params::{ParamValue, Params};

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

/// A callback that reports progress.
pub type ProgressFn = Box<dyn Fn(&Progress) + Send + Sync>;

/// A model's canonicalisation function for symmetry reduction.
pub type Representative<M> = fn(&<M as Model>::State) -> <M as Model>::State;

/// How to run the checker.
pub struct CheckOptions {
    /// Explore one representative per symmetry class.
    pub symmetry: bool,
    /// Worker threads.
    pub threads: usize,
    /// Depth or breadth first.
    pub strategy: Strategy,
    /// Stop after this long; the report then says `complete: false`.
    pub timeout: Option<Duration>,
    /// Stop once this many distinct states are known.
    pub max_states: Option<usize>,
    /// Stop once the process's resident memory reaches this many bytes.
    pub max_memory: Option<u64>,
    /// Called about every `progress_every` while the checker runs.
    pub progress: Option<ProgressFn>,
    /// How often to call `progress`.
    pub progress_every: Duration,
    /// Random walks instead of an exhaustive search.
    pub simulation: Option<SimulationOptions>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            symmetry: false,
            threads: 1,
            strategy: Strategy::Dfs,
            timeout: None,
            max_states: None,
            max_memory: None,
            progress: None,
            progress_every: Duration::from_secs(2),
            simulation: None,
        }
    }
}

/// One step of a counterexample (or example) trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The action taken, as text.
    pub action: String,
    /// The state it led to, as text (its `Debug` form).
    pub state: String,
}

/// The verdict on one property.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PropertyReport {
    /// The property's name.
    pub name: &'static str,
    /// `always`, `sometimes`, `eventually`, `liveness` (AG EF) or `transition`
    /// (refinement).
    pub expectation: &'static str,
    /// Whether the property holds: no counterexample in a complete search (a
    /// `sometimes` property: witnessed).
    pub holds: bool,
    /// The verdict: `holds`, `violated`, `not-witnessed`, or `unknown` (the
    /// search stopped first, or the model's boundary hides the answer).
    pub status: Status,
    /// The trace that refutes the property, if any. (A `sometimes` witness is an
    /// example, not a counterexample, and is not shown.)
    pub counterexample: Option<Vec<Step>>,
    /// For a liveness violation: the path on from the counterexample's last
    /// state, every state of which misses the goal, until a state repeats (a
    /// cycle) or none follows (a deadlock).
    pub trap: Option<Vec<Step>>,
    /// What the checker adds: why a transition was refused, why the verdict is
    /// unknown.
    pub note: Option<String>,
}

impl PropertyReport {
    /// Whether the property is refuted: a counterexample exists, or a
    /// `sometimes` property was never witnessed in a complete search.
    pub fn refuted(&self) -> bool {
        matches!(self.status, Status::Violated | Status::NotWitnessed)
    }
}

/// The time one phase of a check took.
#[derive(Clone, Debug, Serialize)]
pub struct Phase {
    /// `search`, `liveness` or `counterexamples`.
    pub name: &'static str,
    /// Wall-clock seconds.
    pub seconds: f64,
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
    /// Why the search stopped early, if it did.
    pub stopped: Option<Stop>,
    /// Wall-clock seconds of the whole check: search, liveness and
    /// counterexamples.
    pub seconds: f64,
    /// The time of each phase.
    pub phases: Vec<Phase>,
    /// The process's peak resident memory (VmHWM) at the end of the check.
    pub peak_memory_bytes: Option<u64>,
    /// One verdict per property, in the model's order.
    pub properties: Vec<PropertyReport>,
    /// For random walks (`--simulate`): what was walked.
    pub simulation: Option<SimulationReport>,
}

/// What a simulation walked.
#[derive(Clone, Debug, Serialize)]
pub struct SimulationReport {
    /// The seed.
    pub seed: u64,
    /// Steps per walk at most.
    pub depth: usize,
    /// Walks completed.
    pub runs: usize,
    /// States visited per second.
    pub states_per_second: f64,
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

/// Checks `model`'s own properties and reports on each.
///
/// `symmetry` is the model's canonicalisation function, used when
/// `options.symmetry` is set; it must map every state of a symmetry class to the
/// same representative, so that the reduced count is the number of classes.
pub fn run<M>(
    name: &'static str,
    params: Params,
    model: M,
    symmetry: Option<Representative<M>>,
    options: &CheckOptions,
) -> CheckReport
where
    M: Model + Sync,
    M::State: Clone + Debug + Hash + Send + Sync,
    M::Action: Clone + Debug + Send + Sync,
{
    let mut spec = Spec::of(&model);
    if options.symmetry {
        spec.symmetry = symmetry;
    }
    run_spec(name, params, &model, &spec, options)
}

/// Checks everything `spec` lists on `model` (its properties, liveness,
/// refinement) in one search, and reports on each.
pub fn run_spec<M>(
    name: &'static str,
    params: Params,
    model: &M,
    spec: &Spec<M>,
    options: &CheckOptions,
) -> CheckReport
where
    M: Model + Sync,
    M::State: Clone + Debug + Hash + Send + Sync,
    M::Action: Clone + Debug + Send + Sync,
{
    let started = Instant::now();
    let report_progress = |p: &checker::Progress| {
        if let Some(progress) = &options.progress {
            progress(&Progress {
                model: name,
                total_states: p.total_states,
                unique_states: p.unique_states,
                max_depth: p.max_depth,
                elapsed: p.elapsed,
            });
        }
    };
    let engine_options = checker::Options {
        threads: options.threads.max(1),
        strategy: options.strategy,
        timeout: options.timeout,
        max_states: options.max_states,
        max_memory: options.max_memory,
        progress: options
            .progress
            .as_ref()
            .map(|_| &report_progress as &(dyn Fn(&checker::Progress) + Sync)),
        progress_every: options.progress_every,
    };
    if let Some(simulation) = &options.simulation {
        let walked = checker::simulate(model, spec, simulation);
        let seconds = walked.elapsed.as_secs_f64();
        let outcome = Outcome {
            unique_states: 0,
            total_states: walked.states,
            max_depth: simulation.depth + 1,
            stopped: None,
            verdicts: walked.verdicts,
            phases: vec![("simulation", walked.elapsed)],
            peak_memory: checker::memory::peak_resident(),
        };
        let mut report = report(name, params, model, outcome, started.elapsed());
        report.complete = false;
        report.simulation = Some(SimulationReport {
            seed: simulation.seed,
            depth: simulation.depth,
            runs: walked.runs,
            states_per_second: walked.states as f64 / seconds.max(1e-9),
        });
        return report;
    }
    let outcome = checker::check(model, spec, &engine_options);
    report(name, params, model, outcome, started.elapsed())
}

/// Turns the checker's outcome into a report.
pub fn report<M>(
    name: &'static str,
    params: Params,
    model: &M,
    outcome: Outcome<M>,
    elapsed: Duration,
) -> CheckReport
where
    M: Model,
    M::State: Debug,
    M::Action: Debug,
{
    let complete = outcome.complete();
    let properties = outcome
        .verdicts
        .into_iter()
        .map(|verdict| {
            let mut counterexample = verdict.trace.map(|t| trace(model, t));
            if let (Some(steps), Some(note), Kind::Transition) =
                (counterexample.as_mut(), &verdict.note, verdict.kind)
            {
                if let Some(last) = steps.last_mut() {
                    last.action = format!("{} — {note}", last.action);
                }
            }
            PropertyReport {
                name: verdict.name,
                expectation: verdict.kind.name(),
                holds: verdict.status == Status::Holds,
                status: verdict.status,
                counterexample,
                trap: verdict.trap.map(|t| {
                    let mut steps = trace(model, t);
                    if !steps.is_empty() {
                        steps.remove(0);
                    }
                    steps
                }),
                note: verdict.note,
            }
        })
        .collect();
    CheckReport {
        model: name,
        params,
        unique_states: outcome.unique_states,
        total_states: outcome.total_states,
        max_depth: outcome.max_depth,
        complete,
        stopped: outcome.stopped,
        seconds: elapsed.as_secs_f64(),
        phases: outcome
            .phases
            .iter()
            .map(|(name, d)| Phase {
                name,
                seconds: d.as_secs_f64(),
            })
            .collect(),
        peak_memory_bytes: outcome.peak_memory,
        properties,
        simulation: None,
    }
}

/// Turns a path into numbered-trace steps: the initial state, then each action
/// with the state it led to.
pub fn trace<M: Model>(model: &M, trace: Trace<M>) -> Vec<Step>
where
    M::State: Debug,
    M::Action: Debug,
{
    trace
        .steps
        .into_iter()
        .map(|(action, state)| Step {
            action: action.map_or_else(|| "initial state".to_string(), |a| model.format_action(&a)),
            state: format!("{state:?}"),
        })
        .collect()
}
