//! The checker on small models whose answers are known by hand.

use stateright::{Model, Property};

use super::{Liveness, Options, Spec, Status, Strategy, check};

/// A counter from 0 to `top`: `Inc` adds one (up to `top`), `Reset` goes back
/// to 0 from `top`; `Stick` (when `trap` is set) goes from 1 to a state, -1,
/// that loops on itself; `Spin` (when `livelock` is set) flips between 2 and
/// -2, -3 for ever.
#[derive(Clone)]
struct Counter {
    top: i32,
    trap: bool,
    livelock: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Step {
    Inc,
    Reset,
    Stick,
    Spin,
}

impl Model for Counter {
    type State = i32;
    type Action = Step;

    fn init_states(&self) -> Vec<i32> {
        vec![0]
    }

    fn actions(&self, state: &i32, actions: &mut Vec<Step>) {
        match *state {
            s if s >= 0 && s < self.top => actions.push(Step::Inc),
            s if s == self.top => actions.push(Step::Reset),
            _ => {}
        }
        if *state == 1 && self.trap {
            actions.push(Step::Stick);
        }
        if (*state == 2 || *state < -1) && self.livelock {
            actions.push(Step::Spin);
        }
    }

    fn next_state(&self, state: &i32, action: Step) -> Option<i32> {
        Some(match action {
            Step::Inc => state + 1,
            Step::Reset => 0,
            Step::Stick => -1,
            Step::Spin if *state == -2 => -3,
            Step::Spin => -2,
        })
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("non-negative", |_, s: &i32| *s >= -1),
            Property::sometimes("at the top", |m: &Counter, s: &i32| *s == m.top),
        ]
    }
}

fn at_top(model: &Counter, state: &i32) -> bool {
    *state == model.top
}

fn run(model: &Counter, strategy: Strategy, threads: usize) -> super::Outcome<Counter> {
    let spec = Spec::of(model).liveness("the top is always reachable", at_top);
    let options = Options {
        strategy,
        threads,
        ..Options::default()
    };
    check(model, &spec, &options)
}

fn every_search() -> impl Iterator<Item = (Strategy, usize)> {
    [Strategy::Dfs, Strategy::Bfs]
        .into_iter()
        .flat_map(|s| [(s, 1), (s, 2)])
}

#[test]
fn liveness_holds_where_the_goal_stays_reachable() {
    let model = Counter {
        top: 5,
        trap: false,
        livelock: false,
    };
    for (strategy, threads) in every_search() {
        let outcome = run(&model, strategy, threads);
        assert_eq!(outcome.unique_states, 6);
        let verdict = outcome.verdict("the top is always reachable").unwrap();
        assert_eq!(verdict.status, Status::Holds, "{strategy:?} {threads}");
    }
}

#[test]
fn a_trap_state_refutes_liveness_with_its_path_and_deadlock() {
    let model = Counter {
        top: 5,
        trap: true,
        livelock: false,
    };
    for (strategy, threads) in every_search() {
        let outcome = run(&model, strategy, threads);
        let verdict = outcome.verdict("the top is always reachable").unwrap();
        assert_eq!(verdict.status, Status::Violated);
        let trace = verdict.trace.as_ref().unwrap();
        let states: Vec<i32> = trace.steps.iter().map(|(_, s)| *s).collect();
        assert_eq!(states, [0, 1, -1], "{strategy:?} {threads}");
        assert_eq!(trace.steps[2].0, Some(Step::Stick));
        // -1 has no successor: the trap is a deadlock, an empty path on.
        let trap = verdict.trap.as_ref().unwrap();
        assert_eq!(trap.steps.len(), 1);
        // `always` and `sometimes` are judged as usual.
        assert_eq!(
            outcome.verdict("non-negative").unwrap().status,
            Status::Holds
        );
        assert_eq!(outcome.verdict("at the top").unwrap().status, Status::Holds);
    }
}

#[test]
fn a_livelock_refutes_liveness_with_its_cycle() {
    let model = Counter {
        top: 5,
        trap: false,
        livelock: true,
    };
    for (strategy, threads) in every_search() {
        let outcome = run(&model, strategy, threads);
        let verdict = outcome.verdict("the top is always reachable").unwrap();
        assert_eq!(verdict.status, Status::Violated);
        let states: Vec<i32> = verdict
            .trace
            .as_ref()
            .unwrap()
            .steps
            .iter()
            .map(|(_, s)| *s)
            .collect();
        assert_eq!(states, [0, 1, 2, -2], "{strategy:?} {threads}");
        // From -2 the run flips between -3 and -2 for ever.
        let trap: Vec<i32> = verdict
            .trap
            .as_ref()
            .unwrap()
            .steps
            .iter()
            .map(|(_, s)| *s)
            .collect();
        assert_eq!(trap, [-2, -3, -2]);
        // -2 is below -1: the `always` property is refuted too.
        assert_eq!(
            outcome.verdict("non-negative").unwrap().status,
            Status::Violated
        );
    }
}

#[test]
fn liveness_is_unknown_when_the_search_stops_early() {
    let model = Counter {
        top: 50,
        trap: false,
        livelock: false,
    };
    let spec = Spec::of(&model).liveness("the top is always reachable", at_top);
    let options = Options {
        max_states: Some(10),
        ..Options::default()
    };
    let outcome = check(&model, &spec, &options);
    assert!(!outcome.complete());
    let verdict = outcome.verdict("the top is always reachable").unwrap();
    assert_eq!(verdict.status, Status::Unknown);
    assert_eq!(
        outcome.verdict("non-negative").unwrap().status,
        Status::Unknown
    );
}

/// A model given by its edges: from a state, the actions are the targets of
/// its edges, in the order listed. Its one property is "eventually at 1".
#[derive(Clone)]
struct Graph {
    edges: &'static [(u8, u8)],
}

/// The goal holds at 1, and both 1 and 2 lead to 3, which is terminal. 0 → 2
/// → 3 never passes through 1, so "eventually at 1" is violated; a search that
/// visits 3 first through 1 must still find it.
const DIAMOND: Graph = Graph {
    edges: &[(0, 1), (0, 2), (1, 3), (2, 3)],
};

impl Model for Graph {
    type State = u8;
    type Action = u8;

    fn init_states(&self) -> Vec<u8> {
        vec![0]
    }

    fn actions(&self, state: &u8, actions: &mut Vec<u8>) {
        let from_here = self.edges.iter().filter(|(from, _)| from == state);
        actions.extend(from_here.map(|&(_, to)| to));
    }

    fn next_state(&self, _: &u8, action: u8) -> Option<u8> {
        Some(action)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![Property::eventually("passes 1", |_, s: &u8| *s == 1)]
    }
}

#[test]
fn eventually_is_judged_on_every_path_not_only_the_first() {
    for (strategy, threads) in every_search() {
        let options = Options {
            strategy,
            threads,
            ..Options::default()
        };
        let outcome = check(&DIAMOND, &Spec::of(&DIAMOND), &options);
        assert_eq!(outcome.unique_states, 4);
        let verdict = outcome.verdict("passes 1").unwrap();
        assert_eq!(verdict.status, Status::Violated, "{strategy:?} {threads}");
        let states: Vec<u8> = verdict
            .trace
            .as_ref()
            .unwrap()
            .steps
            .iter()
            .map(|(_, s)| *s)
            .collect();
        assert_eq!(states, [0, 2, 3]);
    }
}

#[test]
fn a_liveness_property_can_be_declared_beside_the_others() {
    let model = Counter {
        top: 3,
        trap: false,
        livelock: false,
    };
    let spec = Spec::of(&model).liveness("back to zero", |_, s| *s == 0);
    let names: Vec<_> = spec.checks().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["non-negative", "at the top", "back to zero"]);
    let liveness: Vec<Liveness<Counter>> = spec.liveness.clone();
    assert_eq!(liveness[0].name, "back to zero");
}

/// Two branches from 0: a long one, 1 → 2 → 3 → 4, and a short one, 10 → 11,
/// listed long or short first: one of the two orders makes a depth-first
/// search meet the long branch's end first.
const FORKS: [Graph; 2] = [
    Graph {
        edges: &[(0, 1), (0, 10), (1, 2), (2, 3), (3, 4), (10, 11)],
    },
    Graph {
        edges: &[(0, 10), (0, 1), (1, 2), (2, 3), (3, 4), (10, 11)],
    },
];

/// Refuses the last edge of each of [`FORKS`]' branches, each with its own
/// reason.
struct RefuseBranchEnds;

impl super::TransitionCheck<Graph> for RefuseBranchEnds {
    fn name(&self) -> &'static str {
        "branch ends refused"
    }

    fn check_transitions(&self, _: &Graph, from: &u8, to: &[u8]) -> Option<(usize, String)> {
        to.iter()
            .position(|next| matches!((*from, *next), (3, 4) | (10, 11)))
            .map(|j| (j, format!("{from} → {} refused", to[j])))
    }
}

#[test]
fn a_refused_transition_is_reported_with_the_reason_of_its_own_last_step() {
    for (order, model) in FORKS.iter().enumerate() {
        let spec = Spec::of(model).transition(RefuseBranchEnds);
        for (strategy, threads) in every_search() {
            let options = Options {
                strategy,
                threads,
                ..Options::default()
            };
            let outcome = check(model, &spec, &options);
            let verdict = outcome.verdict("branch ends refused").unwrap();
            let run = format!("order {order} {strategy:?}/{threads}");
            assert_eq!(verdict.status, Status::Violated, "{run}");
            let trace = verdict.trace.as_ref().expect("a counterexample");
            let states: Vec<u8> = trace.steps.iter().map(|(_, s)| *s).collect();
            assert_eq!(states, [0, 10, 11], "{run}");
            // Whichever edge the search met first, the reason is the trace's.
            assert_eq!(verdict.note.as_deref(), Some("10 → 11 refused"), "{run}");
        }
    }
}
