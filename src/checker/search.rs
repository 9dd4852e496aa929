//! The parallel search (see the module doc of [`super`]).

use std::collections::VecDeque;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use stateright::{Expectation, Model};

use super::fingerprint::fingerprint;
use super::liveness::{self, Graph};
use super::paths;
use super::table::{Columns, Insert, Table};
use super::{Kind, Options, Outcome, Progress, Spec, Status, Stop, Strategy, Verdict};

/// A state waiting to be expanded.
struct Frame<S> {
    state: S,
    key: u64,
    /// 1 for an initial state.
    depth: u32,
    /// The `eventually` properties not yet satisfied on the path that led here.
    pending: u64,
    /// The state's index in the graph (liveness only).
    index: u32,
}

/// Work handed from one worker to another: a frame and the keys of the states
/// on the path to it (depth first only).
struct Job<S> {
    frame: Frame<S>,
    prefix: Vec<u64>,
}

struct Jobs<S> {
    queue: Vec<Job<S>>,
    idle: usize,
    done: bool,
}

/// What the workers found: per check, whether it is settled (an `always`
/// property violated, a `sometimes` property witnessed…), and the path of keys
/// that settled it.
struct Found {
    settled: Vec<AtomicBool>,
    paths: Mutex<Vec<Option<Vec<u64>>>>,
    notes: Mutex<Vec<Option<String>>>,
}

impl Found {
    fn new(checks: usize) -> Found {
        Found {
            settled: (0..checks).map(|_| AtomicBool::new(false)).collect(),
            paths: Mutex::new(vec![None; checks]),
            notes: Mutex::new(vec![None; checks]),
        }
    }

    fn is_settled(&self, check: usize) -> bool {
        self.settled[check].load(Ordering::Relaxed)
    }

    /// Settles `check` with `path` unless another worker did first.
    fn settle(&self, check: usize, path: impl FnOnce() -> Vec<u64>, note: Option<String>) {
        if self.settled[check].swap(true, Ordering::Relaxed) {
            return;
        }
        lock(&self.paths)[check] = Some(path());
        lock(&self.notes)[check] = note;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What a search shares between its workers.
struct Shared<'a, M: Model> {
    model: &'a M,
    spec: &'a Spec<M>,
    strategy: Strategy,
    threads: usize,
    max_states: Option<usize>,
    table: Table,
    jobs: Mutex<Jobs<M::State>>,
    wake: Condvar,
    /// How many workers wait for work: a hint for busy workers to share.
    idle: AtomicUsize,
    /// 0 while running, else the [`Stop`] reason (1 + its position).
    stop: AtomicU8,
    total: AtomicUsize,
    max_depth: AtomicUsize,
    found: Found,
    /// Bit i: `eventually` property i (in `spec.properties` order).
    eventually: Vec<(usize, u64)>,
    with_graph: bool,
    graphs: Mutex<Vec<Graph>>,
}

const STOPS: [Stop; 3] = [Stop::Timeout, Stop::StateLimit, Stop::MemoryLimit];

impl<M> Shared<'_, M>
where
    M: Model + Sync,
    M::State: Clone + Hash + Send + Sync,
    M::Action: Clone,
{
    fn key(&self, state: &M::State) -> u64 {
        match self.spec.symmetry {
            Some(representative) => fingerprint(&representative(state)),
            None => fingerprint(state),
        }
    }

    fn stop(&self, why: Stop) {
        let code = 1 + STOPS.iter().position(|s| *s == why).unwrap_or(0) as u8;
        let _ = self
            .stop
            .compare_exchange(0, code, Ordering::Relaxed, Ordering::Relaxed);
        let _jobs = lock(&self.jobs);
        self.wake.notify_all();
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) != 0
    }

    /// The `eventually` properties that `state` does not satisfy, among `pending`.
    fn still_pending(&self, state: &M::State, pending: u64) -> u64 {
        let mut left = pending;
        for &(property, bit) in &self.eventually {
            if left & bit != 0 && (self.spec.properties[property].condition)(self.model, state) {
                left &= !bit;
            }
        }
        left
    }

    /// Checks the state properties of a newly found state.
    fn check_state(&self, state: &M::State, path: impl Fn() -> Vec<u64>) {
        for (i, property) in self.spec.properties.iter().enumerate() {
            if self.found.is_settled(i) {
                continue;
            }
            let settles = match property.expectation {
                Expectation::Always => !(property.condition)(self.model, state),
                Expectation::Sometimes => (property.condition)(self.model, state),
                Expectation::Eventually => false,
            };
            if settles {
                self.found.settle(i, &path, None);
            }
        }
    }

    fn take_job(&self) -> Option<Job<M::State>> {
        let mut jobs = lock(&self.jobs);
        loop {
            if let Some(job) = jobs.queue.pop() {
                return Some(job);
            }
            if jobs.done || self.stopped() {
                jobs.done = true;
                self.wake.notify_all();
                return None;
            }
            jobs.idle += 1;
            self.idle.store(jobs.idle, Ordering::Relaxed);
            if jobs.idle == self.threads {
                jobs.done = true;
                self.wake.notify_all();
                return None;
            }
            jobs = self.wake.wait(jobs).unwrap_or_else(|p| p.into_inner());
            jobs.idle -= 1;
            self.idle.store(jobs.idle, Ordering::Relaxed);
        }
    }

    fn share(&self, jobs: Vec<Job<M::State>>) {
        let mut queue = lock(&self.jobs);
        queue.queue.extend(jobs);
        self.wake.notify_all();
    }
}

/// One worker's own state.
struct Worker<S, A> {
    stack: VecDeque<Frame<S>>,
    /// Depth first: the keys of the states from an initial state to the one
    /// being expanded.
    path: Vec<u64>,
    actions: Vec<A>,
    successors: Vec<S>,
    graph: Graph,
}

impl<M> Shared<'_, M>
where
    M: Model + Sync,
    M::State: Clone + Hash + Send + Sync,
    M::Action: Clone,
{
    fn work(&self) {
        let mut worker = Worker {
            stack: VecDeque::new(),
            path: Vec::new(),
            actions: Vec::new(),
            successors: Vec::new(),
            graph: Graph::new(self.spec.liveness.len()),
        };
        'outer: while let Some(job) = self.take_job() {
            worker.path = job.prefix;
            worker.stack.push_back(job.frame);
            loop {
                if self.stopped() {
                    break 'outer;
                }
                let frame = match self.strategy {
                    Strategy::Dfs => worker.stack.pop_back(),
                    Strategy::Bfs => worker.stack.pop_front(),
                };
                let Some(frame) = frame else { break };
                self.expand(&mut worker, frame);
                if self.threads > 1
                    && worker.stack.len() > 1
                    && self.idle.load(Ordering::Relaxed) > 0
                {
                    self.share(self.donate(&mut worker));
                }
            }
        }
        if self.with_graph {
            lock(&self.graphs).push(worker.graph);
        }
    }

    /// Half of a worker's stack, for the idle ones: the shallowest states depth
    /// first (their subtrees are the largest), the newest breadth first.
    fn donate(&self, worker: &mut Worker<M::State, M::Action>) -> Vec<Job<M::State>> {
        let n = worker.stack.len() / 2;
        let frames: Vec<Frame<M::State>> = match self.strategy {
            Strategy::Dfs => worker.stack.drain(..n).collect(),
            Strategy::Bfs => {
                let keep = worker.stack.len() - n;
                worker.stack.drain(keep..).collect()
            }
        };
        frames
            .into_iter()
            .map(|frame| {
                let prefix = match self.strategy {
                    Strategy::Dfs => worker.path[..frame.depth as usize - 1].to_vec(),
                    Strategy::Bfs => Vec::new(),
                };
                Job { frame, prefix }
            })
            .collect()
    }

    fn expand(&self, worker: &mut Worker<M::State, M::Action>, frame: Frame<M::State>) {
        let depth = frame.depth as usize;
        if depth > self.max_depth.load(Ordering::Relaxed) {
            self.max_depth.fetch_max(depth, Ordering::Relaxed);
        }
        if self.strategy == Strategy::Dfs {
            worker.path.truncate(depth - 1);
            worker.path.push(frame.key);
        }
        let path_to = |worker_path: &[u64], key: u64| {
            let mut path = worker_path.to_vec();
            path.push(key);
            path
        };

        worker.actions.clear();
        self.model.actions(&frame.state, &mut worker.actions);
        worker.successors.clear();
        let mut cut = false;
        for action in worker.actions.drain(..) {
            if let Some(next) = self.model.next_state(&frame.state, action) {
                if self.model.within_boundary(&next) {
                    worker.successors.push(next);
                } else {
                    cut = true;
                }
            }
        }
        self.total
            .fetch_add(worker.successors.len(), Ordering::Relaxed);

        let first_transition = self.spec.properties.len() + self.spec.liveness.len();
        for (t, check) in self.spec.transitions.iter().enumerate() {
            let i = first_transition + t;
            if self.found.is_settled(i) {
                continue;
            }
            if let Some((to, why)) =
                check.check_transitions(self.model, &frame.state, &worker.successors)
            {
                let key = self.key(&worker.successors[to]);
                self.found
                    .settle(i, || path_to(&worker.path, key), Some(why));
            }
        }

        if self.with_graph && cut {
            worker.graph.cut.push(frame.index);
        }
        if worker.successors.is_empty() && frame.pending != 0 {
            for &(property, bit) in &self.eventually {
                if frame.pending & bit != 0 {
                    self.found.settle(property, || worker.path.clone(), None);
                }
            }
        }

        let successors = std::mem::take(&mut worker.successors);
        let mut successors = successors;
        for next in successors.drain(..) {
            let key = self.key(&next);
            let pending = if frame.pending != 0 {
                self.still_pending(&next, frame.pending)
            } else {
                0
            };
            match self.table.insert(key, pending) {
                Insert::New(index) => {
                    if self.max_states.is_some_and(|max| self.table.len() >= max) {
                        self.stop(Stop::StateLimit);
                    }
                    self.check_state(&next, || path_to(&worker.path, key));
                    if self.with_graph {
                        worker.graph.edge(frame.index, index);
                        self.record_goals(&mut worker.graph, &next, index);
                    }
                    worker.stack.push_back(Frame {
                        state: next,
                        key,
                        depth: frame.depth + 1,
                        pending,
                        index,
                    });
                }
                Insert::Seen { index, grown } => {
                    if self.with_graph {
                        worker.graph.edge(frame.index, index);
                    }
                    if grown {
                        // A path on which some `eventually` property is still
                        // pending reached a state known only through paths where
                        // it held: explore on with the new bits.
                        worker.stack.push_back(Frame {
                            state: next,
                            key,
                            depth: frame.depth + 1,
                            pending,
                            index,
                        });
                    }
                }
            }
        }
        worker.successors = successors;
    }

    fn record_goals(&self, graph: &mut Graph, state: &M::State, index: u32) {
        for (l, liveness) in self.spec.liveness.iter().enumerate() {
            if (liveness.goal)(self.model, state) {
                graph.goals[l].push(index);
            }
        }
    }
}

/// Explores `model` and judges every check of `spec` (see the module doc).
pub fn check<M>(model: &M, spec: &Spec<M>, options: &Options<'_>) -> Outcome<M>
where
    M: Model + Sync,
    M::State: Clone + Hash + Send + Sync,
    M::Action: Clone + Send + Sync,
{
    let started = Instant::now();
    let checks = spec.checks();
    let eventually: Vec<(usize, u64)> = spec
        .properties
        .iter()
        .enumerate()
        .filter(|(_, p)| p.expectation == Expectation::Eventually)
        .take(64)
        .enumerate()
        .map(|(bit, (i, _))| (i, 1u64 << bit))
        .collect();
    let with_graph = !spec.liveness.is_empty();
    let threads = options.threads.max(1);
    let shared = Shared {
        model,
        spec,
        strategy: options.strategy,
        threads,
        max_states: options.max_states,
        table: Table::new(Columns {
            index: with_graph,
            bits: !eventually.is_empty(),
        }),
        jobs: Mutex::new(Jobs {
            queue: Vec::new(),
            idle: 0,
            done: false,
        }),
        wake: Condvar::new(),
        idle: AtomicUsize::new(0),
        stop: AtomicU8::new(0),
        total: AtomicUsize::new(0),
        max_depth: AtomicUsize::new(0),
        found: Found::new(checks.len()),
        eventually,
        with_graph,
        graphs: Mutex::new(Vec::new()),
    };

    // The initial states: checked here, then handed out as the first jobs.
    let mut inits = Graph::new(spec.liveness.len());
    let all_pending = shared.eventually.iter().fold(0, |acc, (_, bit)| acc | bit);
    let mut first_jobs = Vec::new();
    for init in model.init_states() {
        if !model.within_boundary(&init) {
            continue;
        }
        shared.total.fetch_add(1, Ordering::Relaxed);
        let key = shared.key(&init);
        let pending = shared.still_pending(&init, all_pending);
        if let Insert::New(index) = shared.table.insert(key, pending) {
            shared.check_state(&init, || vec![key]);
            let first_transition = spec.properties.len() + spec.liveness.len();
            for (t, check) in spec.transitions.iter().enumerate() {
                if let Err(why) = check.check_initial(model, &init) {
                    shared
                        .found
                        .settle(first_transition + t, || vec![key], Some(why));
                }
            }
            if with_graph {
                inits.init.push(index);
                shared.record_goals(&mut inits, &init, index);
            }
            first_jobs.push(Job {
                frame: Frame {
                    state: init,
                    key,
                    depth: 1,
                    pending,
                    index,
                },
                prefix: Vec::new(),
            });
        }
    }
    // Popped from the back: reversed so that the first initial state goes first.
    first_jobs.reverse();
    lock(&shared.jobs).queue = first_jobs;

    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let shared = &shared;
                std::thread::Builder::new()
                    .name(format!("haft-check-{t}"))
                    .spawn_scoped(scope, move || shared.work())
                    .expect("the checker starts its worker threads")
            })
            .collect();
        supervise(&shared, options, started, &handles);
        for handle in handles {
            if let Err(panic) = handle.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
    let search_time = started.elapsed();
    let stopped = match shared.stop.load(Ordering::Relaxed) {
        0 => None,
        code => Some(STOPS[usize::from(code) - 1]),
    };

    let mut phases = vec![("search", search_time)];
    let mut verdicts: Vec<Verdict<M>> = checks
        .iter()
        .enumerate()
        .map(|(i, &(name, kind))| {
            let settled = shared.found.is_settled(i);
            let status = match (kind, settled, stopped.is_some()) {
                (Kind::Sometimes, true, _) => Status::Holds,
                (Kind::Sometimes, false, false) => Status::NotWitnessed,
                (_, true, _) => Status::Violated,
                (_, false, true) => Status::Unknown,
                (_, false, false) => Status::Holds,
            };
            Verdict {
                name,
                kind,
                status,
                trace: None,
                trap: None,
                note: lock(&shared.found.notes)[i].take(),
            }
        })
        .collect();

    if with_graph {
        let liveness_started = Instant::now();
        let mut graph = inits;
        for part in lock(&shared.graphs).drain(..) {
            graph.absorb(part);
        }
        let keys = shared.table.keys_by_index();
        let first = spec.properties.len();
        let judged = liveness::judge(graph, keys.len(), stopped.is_some());
        for (l, judgement) in judged.into_iter().enumerate() {
            let verdict = &mut verdicts[first + l];
            verdict.status = judgement.status;
            verdict.note = judgement.note;
            if let Some((path, trap)) = judgement.counterexample {
                let to_keys = |indices: &[u32]| -> Vec<u64> {
                    indices.iter().map(|&i| keys[i as usize]).collect()
                };
                let path_keys = to_keys(&path);
                let trace = paths::replay(model, &|s| shared.key(s), &path_keys);
                if let Some(trace) = &trace {
                    let last = trace.steps.last().map(|(_, s)| s.clone());
                    if let Some(last) = last {
                        let mut trap_keys = vec![*path_keys.last().unwrap_or(&0)];
                        trap_keys.extend(to_keys(&trap));
                        verdict.trap =
                            paths::replay_from(model, &|s| shared.key(s), last, &trap_keys);
                    }
                }
                verdict.trace = trace;
            }
        }
        phases.push(("liveness", liveness_started.elapsed()));
    }

    // Counterexamples: the shortest path to each violation.
    let violated: Vec<usize> = (0..checks.len())
        .filter(|&i| verdicts[i].status == Status::Violated && verdicts[i].trace.is_none())
        .collect();
    if !violated.is_empty() {
        let counterexamples_started = Instant::now();
        let found_paths = std::mem::take(&mut *lock(&shared.found.paths));
        let key = |s: &M::State| shared.key(s);
        let shortest = paths::shortest(model, spec, &key, &violated, options.max_memory);
        for (i, found) in violated.iter().zip(shortest) {
            let verdict = &mut verdicts[*i];
            match found {
                Some((trace, why)) => {
                    verdict.trace = Some(trace);
                    if why.is_some() {
                        verdict.note = why;
                    }
                }
                None => {
                    verdict.trace = found_paths[*i]
                        .as_ref()
                        .and_then(|keys| paths::replay(model, &key, keys));
                }
            }
        }
        phases.push(("counterexamples", counterexamples_started.elapsed()));
    }

    Outcome {
        unique_states: shared.table.len(),
        total_states: shared.total.load(Ordering::Relaxed),
        max_depth: shared.max_depth.load(Ordering::Relaxed),
        stopped,
        verdicts,
        phases,
        peak_memory: super::memory::peak_resident(),
    }
}

/// Watches the search from the calling thread: enforces the timeout and the
/// memory limit, and reports progress.
fn supervise<M, H>(shared: &Shared<'_, M>, options: &Options<'_>, started: Instant, handles: &[H])
where
    M: Model + Sync,
    M::State: Clone + Hash + Send + Sync,
    M::Action: Clone,
    H: Finished,
{
    let poll = Duration::from_millis(10);
    let mut next_report = started + options.progress_every;
    let mut next_memory_check = started;
    while handles.iter().any(|h| !h.finished()) {
        std::thread::sleep(poll);
        let now = Instant::now();
        if options.timeout.is_some_and(|t| now >= started + t) {
            shared.stop(Stop::Timeout);
        }
        if let Some(limit) = options.max_memory {
            if now >= next_memory_check {
                next_memory_check = now + Duration::from_millis(50);
                if super::memory::resident().is_some_and(|rss| rss >= limit) {
                    shared.stop(Stop::MemoryLimit);
                }
            }
        }
        if let Some(progress) = options.progress.as_ref().filter(|_| now >= next_report) {
            next_report = now + options.progress_every;
            progress(&Progress {
                total_states: shared.total.load(Ordering::Relaxed),
                unique_states: shared.table.len(),
                max_depth: shared.max_depth.load(Ordering::Relaxed),
                elapsed: started.elapsed(),
            });
        }
    }
}

/// Whether a worker thread has finished.
trait Finished {
    fn finished(&self) -> bool;
}

impl<T> Finished for std::thread::ScopedJoinHandle<'_, T> {
    fn finished(&self) -> bool {
        self.is_finished()
    }
}
