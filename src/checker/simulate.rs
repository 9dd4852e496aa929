//! Seeded random walks, for models too large to explore exhaustively.
//!
//! Walk `r` starts from an initial state chosen at random and takes up to
//! `depth` steps; its random numbers come from a generator seeded with `seed`
//! and `r`, so a walk replays exactly from the seed whatever the number of
//! threads.
//!
//! Uniform walks rarely reach deep behaviours: in a commit protocol a timeout
//! is enabled at almost every step, so almost every walk aborts early. Each walk
//! therefore follows *swarm testing* (Groce, Zhang, Eide, Chen and Regehr,
//! ISSTA 2012): it leaves out each kind of action with probability ½ (a kind is
//! the action's `Debug` text without its digits: "a Vote(Yes) delivered", "a
//! crash", "a vote timeout"), and picks uniformly among the successors of the
//! kinds it kept — or among all, when it kept none of those enabled. Properties are judged on the states
//! and transitions the walks visit: a violation is real (its trace is the walk),
//! but nothing is ever proved, so a property not refuted stays `Unknown`.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stateright::{Expectation, Model};

use super::{Kind, Spec, Status, Trace, Verdict};

/// How to simulate.
#[derive(Clone, Debug)]
pub struct SimulationOptions {
    /// The seed every walk's generator derives from.
    pub seed: u64,
    /// Steps per walk at most.
    pub depth: usize,
    /// Walks.
    pub runs: usize,
    /// Worker threads.
    pub threads: usize,
    /// Stop starting walks after this long.
    pub timeout: Option<Duration>,
}

/// What the walks found.
pub struct SimulationOutcome<M: Model> {
    /// Walks completed.
    pub runs: usize,
    /// States visited, initial states included, repeats included.
    pub states: usize,
    /// Wall time.
    pub elapsed: Duration,
    /// One verdict per check, in [`Spec::checks`] order.
    pub verdicts: Vec<Verdict<M>>,
    /// For each violated check, the walk that found it (the lowest-numbered).
    pub found_in_run: Vec<Option<usize>>,
}

/// An action's kind: its `Debug` text without digits, so that the same step of
/// different actors, transactions or rounds is one kind.
fn kind_of<A: Debug>(action: &A) -> String {
    format!("{action:?}")
        .chars()
        .filter(|c| !c.is_ascii_digit())
        .collect()
}

/// The walk that settled a check, its path, and the check's note.
type Found<M> = (usize, Trace<M>, Option<String>);

fn walk_seed(seed: u64, run: usize) -> u64 {
    // SplitMix64 of the pair: neighbouring runs get unrelated streams.
    let mut z = seed ^ (run as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Runs `options.runs` seeded random walks over `model`, judging `spec` on what
/// they visit (liveness cannot be judged this way and stays `Unknown`).
pub fn simulate<M>(model: &M, spec: &Spec<M>, options: &SimulationOptions) -> SimulationOutcome<M>
where
    M: Model + Sync,
    M::State: Clone + Hash + Send + Sync,
    M::Action: Clone + Debug + Send + Sync,
{
    let started = Instant::now();
    let checks = spec.checks();
    // Per check, the lowest run that refuted (or witnessed) it, and its trace.
    let found: Mutex<Vec<Option<Found<M>>>> = Mutex::new((0..checks.len()).map(|_| None).collect());
    let next_run = AtomicUsize::new(0);
    let runs_done = AtomicUsize::new(0);
    let states = AtomicUsize::new(0);
    let out_of_time = AtomicBool::new(false);
    let inits: Vec<M::State> = model
        .init_states()
        .into_iter()
        .filter(|s| model.within_boundary(s))
        .collect();
    let first_transition = spec.properties.len() + spec.liveness.len();
    std::thread::scope(|scope| {
        for _ in 0..options.threads.max(1) {
            scope.spawn(|| {
                let mut actions = Vec::new();
                let mut successors: Vec<(M::Action, M::State)> = Vec::new();
                loop {
                    let run = next_run.fetch_add(1, Ordering::Relaxed);
                    if run >= options.runs || inits.is_empty() {
                        break;
                    }
                    if options.timeout.is_some_and(|t| started.elapsed() >= t) {
                        out_of_time.store(true, Ordering::Relaxed);
                        break;
                    }
                    let mut rng = StdRng::seed_from_u64(walk_seed(options.seed, run));
                    let mut kinds: HashMap<String, bool> = HashMap::new();
                    let init = inits[rng.random_range(0..inits.len())].clone();
                    let mut path: Vec<(Option<M::Action>, M::State)> = vec![(None, init)];
                    let mut pending: Vec<bool> = spec
                        .properties
                        .iter()
                        .map(|p| p.expectation == Expectation::Eventually)
                        .collect();
                    let mut visited = 0usize;
                    let record = |check: usize, path: &[(Option<M::Action>, M::State)], note| {
                        let mut found = found.lock().unwrap_or_else(|p| p.into_inner());
                        if found[check].as_ref().is_none_or(|(r, _, _)| run < *r) {
                            found[check] = Some((
                                run,
                                Trace {
                                    steps: path.to_vec(),
                                },
                                note,
                            ));
                        }
                    };
                    loop {
                        visited += 1;
                        let state = &path[path.len() - 1].1;
                        for (i, property) in spec.properties.iter().enumerate() {
                            let holds = (property.condition)(model, state);
                            match property.expectation {
                                Expectation::Always if !holds => record(i, &path, None),
                                Expectation::Sometimes if holds => record(i, &path, None),
                                Expectation::Eventually if holds => pending[i] = false,
                                _ => {}
                            }
                        }
                        if path.len() > options.depth {
                            break;
                        }
                        actions.clear();
                        successors.clear();
                        model.actions(state, &mut actions);
                        for action in actions.drain(..) {
                            if let Some(next) = model.next_state(state, action.clone()) {
                                if model.within_boundary(&next) {
                                    successors.push((action, next));
                                }
                            }
                        }
                        if successors.is_empty() {
                            for (i, p) in pending.iter().enumerate() {
                                if *p {
                                    record(i, &path, None);
                                }
                            }
                            break;
                        }
                        let kept: Vec<usize> = (0..successors.len())
                            .filter(|&i| {
                                let kind = kind_of(&successors[i].0);
                                *kinds.entry(kind).or_insert_with(|| rng.random_bool(0.5))
                            })
                            .collect();
                        let pick = if kept.is_empty() {
                            rng.random_range(0..successors.len())
                        } else {
                            kept[rng.random_range(0..kept.len())]
                        };
                        let (action, next) = successors.swap_remove(pick);
                        for (t, check) in spec.transitions.iter().enumerate() {
                            if let Some((_, why)) =
                                check.check_transitions(model, state, std::slice::from_ref(&next))
                            {
                                let mut with_step = path.clone();
                                with_step.push((Some(action.clone()), next.clone()));
                                record(first_transition + t, &with_step, Some(why));
                            }
                        }
                        path.push((Some(action), next));
                    }
                    states.fetch_add(visited, Ordering::Relaxed);
                    runs_done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let found = found.into_inner().unwrap_or_else(|p| p.into_inner());
    let runs = runs_done.load(Ordering::Relaxed);
    let mut found_in_run = Vec::new();
    let verdicts = checks
        .iter()
        .zip(found)
        .map(|(&(name, kind), found)| {
            found_in_run.push(found.as_ref().map(|(run, _, _)| *run));
            let (status, trace, note) = match (kind, found) {
                (Kind::Sometimes, Some(_)) => (Status::Holds, None, None),
                (_, Some((_, trace, note))) => (Status::Violated, Some(trace), note),
                (Kind::Liveness, None) => (
                    Status::Unknown,
                    None,
                    Some("random walks cannot judge AG EF liveness".to_string()),
                ),
                (_, None) => (
                    Status::Unknown,
                    None,
                    Some(format!("not refuted in {runs} random walks")),
                ),
            };
            Verdict {
                name,
                kind,
                status,
                trace,
                trap: None,
                note,
            }
        })
        .collect();
    SimulationOutcome {
        runs,
        states: states.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        verdicts,
        found_in_run,
    }
}
