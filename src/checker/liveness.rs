//! AG EF liveness judged on the explored graph.
//!
//! While searching, each worker logs every edge between state indices, the
//! goal states of each property, and the states whose successors the model's
//! boundary cut off. Afterwards the edges are sorted by target, and a backward
//! search from the goal states marks every state that can reach a goal. Any
//! other state is a counterexample: no path from it reaches a goal. Its trace is
//! the shortest path from an initial state (a forward search over the same
//! edges, sorted by source), and the trap is the path on from it, following
//! successors (all of which miss the goal too) until a state repeats or none is
//! left.
//!
//! A state the boundary cut may reach a goal beyond it, so states that can reach
//! one are not counterexamples; if they are the only states that cannot reach a
//! goal inside the boundary, the verdict is unknown.

use std::collections::{HashMap, VecDeque};

use super::Status;

/// The explored graph, as the workers log it.
pub(crate) struct Graph {
    /// `from << 32 | to`.
    pub edges: Vec<u64>,
    /// Per liveness property, the indices of its goal states.
    pub goals: Vec<Vec<u32>>,
    /// States with a successor outside the model's boundary.
    pub cut: Vec<u32>,
    /// The initial states.
    pub init: Vec<u32>,
}

impl Graph {
    pub(crate) fn new(properties: usize) -> Graph {
        Graph {
            edges: Vec::new(),
            goals: vec![Vec::new(); properties],
            cut: Vec::new(),
            init: Vec::new(),
        }
    }

    pub(crate) fn edge(&mut self, from: u32, to: u32) {
        if from != to {
            self.edges.push(u64::from(from) << 32 | u64::from(to));
        }
    }

    pub(crate) fn absorb(&mut self, other: Graph) {
        self.edges.extend(other.edges);
        for (mine, theirs) in self.goals.iter_mut().zip(other.goals) {
            mine.extend(theirs);
        }
        self.cut.extend(other.cut);
        self.init.extend(other.init);
    }
}

/// The verdict on one liveness property.
pub(crate) struct Judgement {
    pub status: Status,
    pub note: Option<String>,
    /// The path (state indices) from an initial state to a state that cannot
    /// reach a goal, and the trap after it.
    pub counterexample: Option<(Vec<u32>, Vec<u32>)>,
}

/// Edges sorted by their high half, with the start of each state's run.
struct Adjacency {
    edges: Vec<u64>,
    starts: Vec<usize>,
}

impl Adjacency {
    /// `edges` as `key << 32 | other`, grouped by key.
    fn new(mut edges: Vec<u64>, states: usize) -> Adjacency {
        edges.sort_unstable();
        edges.dedup();
        let mut starts = vec![0; states + 1];
        for &e in &edges {
            starts[(e >> 32) as usize + 1] += 1;
        }
        for i in 0..states {
            starts[i + 1] += starts[i];
        }
        Adjacency { edges, starts }
    }

    fn next(&self, state: u32) -> impl Iterator<Item = u32> + '_ {
        let i = state as usize;
        self.edges[self.starts[i]..self.starts[i + 1]]
            .iter()
            .map(|e| *e as u32)
    }

    fn flipped(mut self, states: usize) -> Adjacency {
        for e in &mut self.edges {
            *e = e.rotate_left(32);
        }
        Adjacency::new(self.edges, states)
    }
}

/// Marks every state from which one of `from` is reachable (backward), skipping
/// states already in `skip`.
fn backward(reverse: &Adjacency, from: &[u32], skip: &[bool], states: usize) -> Vec<bool> {
    let mut marked = vec![false; states];
    let mut queue: VecDeque<u32> = VecDeque::new();
    for &s in from {
        if !marked[s as usize] && !skip[s as usize] {
            marked[s as usize] = true;
            queue.push_back(s);
        }
    }
    while let Some(s) = queue.pop_front() {
        for p in reverse.next(s) {
            if !marked[p as usize] && !skip[p as usize] {
                marked[p as usize] = true;
                queue.push_back(p);
            }
        }
    }
    marked
}

/// Judges every liveness property on `graph`, whose states are `0..states`.
/// `incomplete`: the search stopped early, so nothing can be concluded.
pub(crate) fn judge(graph: Graph, states: usize, incomplete: bool) -> Vec<Judgement> {
    if incomplete {
        return graph
            .goals
            .iter()
            .map(|_| Judgement {
                status: Status::Unknown,
                note: Some("the search stopped before the whole graph was explored".into()),
                counterexample: None,
            })
            .collect();
    }
    let reverse = Adjacency::new(
        graph.edges.iter().map(|e| e.rotate_left(32)).collect(),
        states,
    );
    drop(graph.edges);
    let none = vec![false; states];
    let mut bad_sets = Vec::new();
    let mut judgements: Vec<Judgement> = graph
        .goals
        .iter()
        .map(|goals| {
            let reaches = backward(&reverse, goals, &none, states);
            let undecided = backward(&reverse, &graph.cut, &reaches, states);
            let bad: Vec<bool> = (0..states).map(|s| !reaches[s] && !undecided[s]).collect();
            let undecided_count = undecided.iter().filter(|u| **u).count();
            let judgement = if bad.iter().any(|b| *b) {
                Judgement {
                    status: Status::Violated,
                    note: None,
                    counterexample: None,
                }
            } else if undecided_count > 0 {
                Judgement {
                    status: Status::Unknown,
                    note: Some(format!(
                        "{undecided_count} states reach a goal only, if at all, beyond the model's boundary"
                    )),
                    counterexample: None,
                }
            } else {
                Judgement {
                    status: Status::Holds,
                    note: None,
                    counterexample: None,
                }
            };
            bad_sets.push(bad);
            judgement
        })
        .collect();
    if judgements.iter().all(|j| j.status != Status::Violated) {
        return judgements;
    }
    let forward = reverse.flipped(states);
    for (judgement, bad) in judgements.iter_mut().zip(&bad_sets) {
        if judgement.status == Status::Violated {
            judgement.counterexample = counterexample(&forward, &graph.init, bad, states);
        }
    }
    judgements
}

/// The shortest path from an initial state to a `bad` state, and the trap after it.
fn counterexample(
    forward: &Adjacency,
    init: &[u32],
    bad: &[bool],
    states: usize,
) -> Option<(Vec<u32>, Vec<u32>)> {
    let mut parent = vec![u32::MAX; states];
    let mut seen = vec![false; states];
    let mut queue = VecDeque::new();
    for &s in init {
        seen[s as usize] = true;
        queue.push_back(s);
    }
    let mut target = None;
    while let Some(s) = queue.pop_front() {
        if bad[s as usize] {
            target = Some(s);
            break;
        }
        for n in forward.next(s) {
            if !seen[n as usize] {
                seen[n as usize] = true;
                parent[n as usize] = s;
                queue.push_back(n);
            }
        }
    }
    let target = target?;
    let mut path = vec![target];
    let mut at = target;
    while parent[at as usize] != u32::MAX {
        at = parent[at as usize];
        path.push(at);
    }
    path.reverse();
    // The trap: follow successors until one repeats or there is none.
    let mut trap = Vec::new();
    let mut visited: HashMap<u32, usize> = HashMap::from([(target, 0)]);
    let mut at = target;
    while let Some(next) = forward.next(at).next() {
        trap.push(next);
        if visited.insert(next, trap.len()).is_some() {
            break;
        }
        at = next;
    }
    Some((path, trap))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(u32, u32)], goals: &[u32]) -> Graph {
        let mut g = Graph::new(1);
        for &(a, b) in edges {
            g.edge(a, b);
        }
        g.goals[0] = goals.to_vec();
        g.init = vec![0];
        g
    }

    #[test]
    fn a_state_that_cannot_reach_the_goal_is_found_with_its_trap() {
        // 0 → 1 → 2 (goal); 0 → 3 ⇄ 4: 3 and 4 never reach the goal.
        let g = graph(&[(0, 1), (1, 2), (0, 3), (3, 4), (4, 3)], &[2]);
        let judged = judge(g, 5, false);
        assert_eq!(judged[0].status, Status::Violated);
        let (path, trap) = judged[0].counterexample.clone().unwrap();
        assert_eq!(path, [0, 3]);
        assert_eq!(trap, [4, 3]);
    }

    #[test]
    fn every_state_reaching_the_goal_holds_and_a_cut_makes_it_unknown() {
        let g = graph(&[(0, 1), (1, 0), (1, 2)], &[2]);
        assert_eq!(judge(g, 3, false)[0].status, Status::Holds);
        let mut g = graph(&[(0, 1), (0, 2)], &[2]);
        g.cut = vec![1];
        assert_eq!(judge(g, 3, false)[0].status, Status::Unknown);
    }
}
