//! `heartbeat`: the failure detector against an explicit discrete clock.
//!
//! Timing claims can only be checked against a clock, so this model is a
//! stateright [`Model`] with a global time `now` that advances by a `Tick`
//! action; every node runs the real [`Detector`] core (src/detector/) with a
//! [`FixedTimeout`] estimator, fed the model's time. The claims are those of
//! Chandra and Toueg, "Unreliable failure detectors for reliable distributed
//! systems" (JACM 43(2), 1996) — completeness and accuracy — made bounded, plus
//! SWIM's refutation (Das, Gupta and Motivala, DSN 2002, §4.2).
//!
//! # System
//!
//! - `nodes` nodes; every `interval` (H) ticks each live node broadcasts a
//!   heartbeat; at each tick, before anything is delivered, each live node runs
//!   its checks (so a message due at the same tick arrives too late for them:
//!   the adversarial order, which makes the timing bounds tight).
//! - A node suspects a peer silent for `timeout` (T) ticks, tells every node,
//!   and declares it Dead after a suspicion timeout S = 2D + 1: just over the
//!   round trip a refutation needs.
//! - The network delivers each message within `delay` (D) ticks, in any order
//!   (`Tick` is disabled while a message is D ticks old), or, when `lossy`, may
//!   drop it. Messages are not duplicated: heartbeats carry sequence numbers and
//!   SWIM's claims carry incarnations, so a duplicate is a no-op for the core.
//! - With `crashes=1`, one node may crash (stop for good) in the first H ticks.
//! - Time is bounded: states after H + D + T + S ticks are not explored
//!   (`within_boundary`), which leaves room for the completeness deadline of a
//!   crash at the latest allowed tick.
//!
//! # Properties
//!
//! - `completeness` (always): a node that crashed at c is Dead at every live node
//!   from c + D + T + S on. (The issue states T + H; counting from the crash, the
//!   crashed node's last heartbeat can still be D ticks in flight, and SWIM adds
//!   the suspicion stage S. A test shows the bound is tight.)
//! - `accuracy` (always): a live node is suspected only after one of its
//!   heartbeats was late (at least T − H ticks in flight) or lost. Under
//!   synchrony — D < T − H and no loss — no heartbeat can be late, so this is
//!   exactly "no live node is ever suspected".
//! - `live nodes are never declared dead` (always, without loss): refutation
//!   always beats the suspicion timeout.
//! - `agreement` (always, without loss): once every live node has declared the
//!   crashed node Dead, all live nodes have the same membership view.
//! - `crash detected` (sometimes, with a crash) and `false suspicion refuted`
//!   (sometimes, when D ≥ T − H or lossy): the outcomes the always-properties
//!   talk about are reachable, so they are not vacuous.
//!
//! # Variants
//!
//! - `no-refute`: a suspected node ignores the suspicion → breaks `live nodes
//!   are never declared dead` (and `false suspicion refuted` is never seen);
//! - `timeout-too-short`: the detector runs with T = H → breaks `accuracy`;
//! - `no-incarnation`: the suspected node answers without raising its
//!   incarnation, so its answer is indistinguishable from the stale claim it
//!   refutes and is ignored → breaks `live nodes are never declared dead`.
//!
//! The default size is synchronous (D < T − H), where no live node is ever
//! suspected: there `no-refute` and `no-incarnation` are harmless, and only
//! `timeout-too-short` is refuted. The other two need a false suspicion to go
//! wrong, so their tests run at D = T − H:
//! `haft check heartbeat -p nodes=2 -p timeout=3 -p variant=no-refute`. (Three
//! nodes at D = T − H are too many states for CI.)

use std::fmt;

use stateright::{Model, Property};

use super::params::{ParamError, ParamKind, ParamSpec, Params};
use crate::detector::{
    Command, Detector, DetectorConfig, FixedTimeout, Message, Millis, NodeId, Status,
};

/// The model's name in `haft check`.
pub const NAME: &str = "heartbeat";

/// Parameters of `heartbeat`.
pub const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "nodes",
        default: "3",
        kind: ParamKind::Int { min: 2, max: 4 },
        help: "nodes, each monitoring all the others",
    },
    ParamSpec {
        name: "interval",
        default: "2",
        kind: ParamKind::Int { min: 1, max: 4 },
        help: "H: ticks between two heartbeats of a node",
    },
    ParamSpec {
        name: "timeout",
        default: "4",
        kind: ParamKind::Int { min: 1, max: 8 },
        help: "T: ticks of silence before a peer is suspected",
    },
    ParamSpec {
        name: "delay",
        default: "1",
        kind: ParamKind::Int { min: 0, max: 3 },
        help: "D: a message is delivered within D ticks (or lost, if lossy)",
    },
    ParamSpec {
        name: "lossy",
        default: "false",
        kind: ParamKind::Bool,
        help: "the network may drop any message",
    },
    ParamSpec {
        name: "crashes",
        default: "1",
        kind: ParamKind::Int { min: 0, max: 1 },
        help: "at most this many nodes crash, within the first H ticks",
    },
    ParamSpec {
        name: "variant",
        default: "correct",
        kind: ParamKind::Choice(&[
            "correct",
            "no-refute",
            "timeout-too-short",
            "no-incarnation",
        ]),
        help: "correct, or a known bug the checker must refute",
    },
];

/// Which detector the nodes run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// The detector as built.
    Correct,
    /// A suspected node never answers, so a suspicion is never cleared.
    NoRefute,
    /// The detector times out after H ticks (T ≤ H).
    TimeoutTooShort,
    /// A suspected node answers at its current incarnation instead of raising it.
    NoIncarnation,
}

/// A message in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Envelope {
    /// When it was sent.
    pub sent: Millis,
    /// The sender.
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// The message.
    pub message: Message,
}

/// A state of the timed system.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HeartbeatState {
    /// The global clock.
    pub now: Millis,
    /// Each node's detector, by node id.
    pub nodes: Vec<Detector<FixedTimeout>>,
    /// The crashed node and when it crashed.
    pub crashed: Option<(NodeId, Millis)>,
    /// Messages in flight, sorted (a multiset).
    pub network: Vec<Envelope>,
    /// Some heartbeat of a live node was delivered late (≥ T − H ticks in
    /// flight) or lost: the only excuse for suspecting a live node.
    pub late_or_lost: bool,
    /// Some live node's suspicion was cleared by its refutation.
    pub refuted: bool,
}

impl HeartbeatState {
    /// Whether `node` has not crashed.
    pub fn is_live(&self, node: NodeId) -> bool {
        self.crashed.is_none_or(|(crashed, _)| crashed != node)
    }

    fn live(&self) -> impl Iterator<Item = &Detector<FixedTimeout>> + Clone + '_ {
        self.nodes.iter().filter(|d| self.is_live(d.me()))
    }

    /// Whether some live node believes `status` of some other live node.
    fn live_node_with(&self, status: impl Fn(Status) -> bool) -> bool {
        self.live().any(|d| {
            d.peers()
                .filter(|p| self.is_live(*p))
                .any(|p| d.status(p).is_some_and(&status))
        })
    }
}

impl fmt::Debug for HeartbeatState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t={}", self.now)?;
        if let Some((node, at)) = self.crashed {
            write!(f, " crashed={node:?}@{at}")?;
        }
        for d in &self.nodes {
            write!(f, " {:?}(inc {})[", d.me(), d.incarnation())?;
            for (i, peer) in d.peers().enumerate() {
                let sep = if i == 0 { "" } else { " " };
                if let Some(state) = d.peer(peer) {
                    let status = match state.status {
                        Status::Alive => "A".to_string(),
                        Status::Suspect { since } => format!("S@{since}"),
                        Status::Dead => "D".to_string(),
                    };
                    write!(f, "{sep}{peer:?}:{status}/{}", state.incarnation)?;
                }
            }
            f.write_str("]")?;
        }
        write!(f, " in flight: {}", self.network.len())
    }
}

/// The model's actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeartbeatAction {
    /// The clock advances one tick; every live node checks, then heartbeats if due.
    Tick,
    /// The network delivers a message.
    Deliver(Envelope),
    /// The network drops a message (lossy only).
    Drop(Envelope),
    /// A node crashes.
    Crash(NodeId),
}

impl fmt::Display for HeartbeatAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeartbeatAction::Tick => f.write_str("Tick"),
            HeartbeatAction::Deliver(e) => write!(
                f,
                "Deliver {:?}→{:?} {:?} (sent t={})",
                e.from, e.to, e.message, e.sent
            ),
            HeartbeatAction::Drop(e) => write!(
                f,
                "Drop {:?}→{:?} {:?} (sent t={})",
                e.from, e.to, e.message, e.sent
            ),
            HeartbeatAction::Crash(node) => write!(f, "Crash({node:?})"),
        }
    }
}

/// The timed heartbeat system.
#[derive(Clone, Debug)]
pub struct HeartbeatModel {
    /// Number of nodes.
    pub nodes: usize,
    /// H.
    pub interval: Millis,
    /// T, as configured (the `timeout-too-short` variant runs with H instead).
    pub timeout: Millis,
    /// D.
    pub delay: Millis,
    /// Whether messages may be lost.
    pub lossy: bool,
    /// Whether one node may crash.
    pub crashes: bool,
    /// Which detector runs.
    pub variant: Variant,
    /// The completeness deadline after a crash: D + T + S. A field, so that a
    /// test can claim one tick less and see the claim refuted.
    pub completeness_bound: Millis,
}

impl HeartbeatModel {
    /// The model with the given settings, and the completeness bound they imply.
    pub fn new(
        nodes: usize,
        interval: Millis,
        timeout: Millis,
        delay: Millis,
        lossy: bool,
        crashes: bool,
        variant: Variant,
    ) -> HeartbeatModel {
        let suspicion = 2 * delay + 1;
        HeartbeatModel {
            nodes,
            interval,
            timeout,
            delay,
            lossy,
            crashes,
            variant,
            completeness_bound: delay + timeout + suspicion,
        }
    }

    /// Builds the model from checked parameters; a correct detector with T ≤ H
    /// is refused, as that is the `timeout-too-short` variant.
    pub fn from_params(params: &Params) -> Result<HeartbeatModel, ParamError> {
        let variant = match params.choice("variant") {
            "no-refute" => Variant::NoRefute,
            "timeout-too-short" => Variant::TimeoutTooShort,
            "no-incarnation" => Variant::NoIncarnation,
            _ => Variant::Correct,
        };
        let (interval, timeout) = (params.int("interval"), params.int("timeout"));
        if timeout <= interval {
            return Err(params.combination_error(format!(
                "timeout={timeout} must exceed interval={interval}, or every peer is suspected \
                 between two heartbeats; to see that happen, keep timeout > interval and use \
                 variant=timeout-too-short, which runs the detector with T = H against the \
                 claims made for the given timeout"
            )));
        }
        Ok(HeartbeatModel::new(
            params.usize("nodes"),
            interval,
            timeout,
            params.int("delay"),
            params.bool("lossy"),
            params.int("crashes") == 1,
            variant,
        ))
    }

    /// S: how long a suspicion lasts before the peer is declared Dead.
    pub fn suspicion_timeout(&self) -> Millis {
        2 * self.delay + 1
    }

    /// The timeout the detectors actually run with.
    pub fn effective_timeout(&self) -> Millis {
        match self.variant {
            Variant::TimeoutTooShort => self.interval,
            _ => self.timeout,
        }
    }

    /// The last tick explored: a crash at tick H, plus the completeness bound.
    pub fn horizon(&self) -> Millis {
        self.interval + self.completeness_bound
    }

    /// Whether D < T − H and nothing is lost: then no heartbeat is ever late.
    pub fn synchronous(&self) -> bool {
        !self.lossy && self.delay + self.interval < self.timeout
    }

    fn broadcast(state: &mut HeartbeatState, from: NodeId, message: Message) {
        for to in (0..state.nodes.len()).map(node_id) {
            if to != from && state.is_live(to) {
                let envelope = Envelope {
                    sent: state.now,
                    from,
                    to,
                    message,
                };
                let at = state.network.partition_point(|e| *e < envelope);
                state.network.insert(at, envelope);
            }
        }
    }

    fn carry_out(state: &mut HeartbeatState, from: NodeId, commands: Vec<Command>) {
        for Command::Broadcast(message) in commands {
            HeartbeatModel::broadcast(state, from, message);
        }
    }

    fn tick(&self, state: &mut HeartbeatState) {
        state.now += 1;
        let now = state.now;
        // A heartbeat still in flight T − H ticks after it was sent is late:
        // the gap to the previous one may now reach T before it arrives.
        if state.network.iter().any(|e| {
            matches!(e.message, Message::Heartbeat { .. })
                && now - e.sent + self.interval >= self.timeout
        }) {
            state.late_or_lost = true;
        }
        for node in (0..state.nodes.len()).map(node_id) {
            if !state.is_live(node) {
                continue;
            }
            let commands = state.nodes[index(node)].check(now);
            HeartbeatModel::carry_out(state, node, commands);
            if now % self.interval == 0 {
                let beat = state.nodes[index(node)].heartbeat();
                HeartbeatModel::broadcast(state, node, beat);
            }
        }
    }

    fn deliver(&self, state: &mut HeartbeatState, envelope: Envelope) {
        let Envelope {
            sent,
            from,
            to,
            message,
        } = envelope;
        if let Message::Heartbeat { .. } = message {
            if state.now - sent + self.interval >= self.timeout {
                state.late_or_lost = true;
            }
        }
        let suspected_before = is_suspected(&state.nodes[index(to)], from);
        let commands = match message {
            Message::Suspect { peer, incarnation } if peer == to => match self.variant {
                Variant::NoRefute => Vec::new(),
                Variant::NoIncarnation if incarnation >= state.nodes[index(to)].incarnation() => {
                    vec![Command::Broadcast(Message::Alive {
                        incarnation: state.nodes[index(to)].incarnation(),
                    })]
                }
                _ => state.nodes[index(to)].handle(state.now, from, message),
            },
            _ => state.nodes[index(to)].handle(state.now, from, message),
        };
        if suspected_before && !is_suspected(&state.nodes[index(to)], from) {
            state.refuted = true;
        }
        HeartbeatModel::carry_out(state, to, commands);
    }
}

fn node_id(index: usize) -> NodeId {
    NodeId(index as u16)
}

fn index(node: NodeId) -> usize {
    usize::from(node.0)
}

fn is_suspected(detector: &Detector<FixedTimeout>, peer: NodeId) -> bool {
    matches!(detector.status(peer), Some(Status::Suspect { .. }))
}

impl Model for HeartbeatModel {
    type State = HeartbeatState;
    type Action = HeartbeatAction;

    fn init_states(&self) -> Vec<HeartbeatState> {
        let estimator = FixedTimeout::new(self.effective_timeout().max(1))
            .expect("the timeout is at least 1 tick");
        let config = DetectorConfig {
            suspicion_timeout: self.suspicion_timeout(),
        };
        let mut state = HeartbeatState {
            now: 0,
            nodes: (0..self.nodes)
                .map(|me| {
                    let all = (0..self.nodes).map(node_id);
                    Detector::build(node_id(me), all, estimator.clone(), config, 0)
                })
                .collect(),
            crashed: None,
            network: Vec::new(),
            late_or_lost: false,
            refuted: false,
        };
        // Everyone heartbeats at tick 0.
        for node in (0..self.nodes).map(node_id) {
            let beat = state.nodes[index(node)].heartbeat();
            HeartbeatModel::broadcast(&mut state, node, beat);
        }
        vec![state]
    }

    fn actions(&self, state: &HeartbeatState, actions: &mut Vec<HeartbeatAction>) {
        // Time may pass only while no message is overdue: delivery within D.
        if state
            .network
            .iter()
            .all(|e| state.now - e.sent < self.delay)
        {
            actions.push(HeartbeatAction::Tick);
        }
        let mut previous = None;
        for envelope in &state.network {
            // Identical envelopes are one choice.
            if previous == Some(envelope) {
                continue;
            }
            previous = Some(envelope);
            actions.push(HeartbeatAction::Deliver(*envelope));
            if self.lossy {
                actions.push(HeartbeatAction::Drop(*envelope));
            }
        }
        if self.crashes && state.crashed.is_none() && state.now <= self.interval {
            actions.extend((0..self.nodes).map(|n| HeartbeatAction::Crash(node_id(n))));
        }
    }

    fn next_state(
        &self,
        state: &HeartbeatState,
        action: HeartbeatAction,
    ) -> Option<HeartbeatState> {
        let mut next = state.clone();
        match action {
            HeartbeatAction::Tick => self.tick(&mut next),
            HeartbeatAction::Deliver(envelope) | HeartbeatAction::Drop(envelope) => {
                let at = next.network.binary_search(&envelope).ok()?;
                next.network.remove(at);
                if let HeartbeatAction::Deliver(_) = action {
                    self.deliver(&mut next, envelope);
                } else if let Message::Heartbeat { .. } = envelope.message {
                    next.late_or_lost = true;
                }
            }
            HeartbeatAction::Crash(node) => {
                next.crashed = Some((node, next.now));
                // A crashed node receives nothing; what it sent is still in flight.
                next.network.retain(|e| e.to != node);
            }
        }
        Some(next)
    }

    fn format_action(&self, action: &HeartbeatAction) -> String {
        action.to_string()
    }

    fn within_boundary(&self, state: &HeartbeatState) -> bool {
        state.now <= self.horizon()
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut properties = vec![
            Property::always("completeness", |model: &Self, state: &HeartbeatState| {
                let Some((crashed, at)) = state.crashed else {
                    return true;
                };
                state.now < at + model.completeness_bound
                    || state
                        .live()
                        .all(|d| d.status(crashed) == Some(Status::Dead))
            }),
            Property::always("accuracy", |_, state: &HeartbeatState| {
                state.late_or_lost || !state.live_node_with(|s| s != Status::Alive)
            }),
        ];
        if !self.lossy {
            properties.push(Property::always(
                "live nodes are never declared dead",
                |_, state: &HeartbeatState| !state.live_node_with(|s| s == Status::Dead),
            ));
            properties.push(Property::always(
                "agreement",
                |_, state: &HeartbeatState| {
                    let Some((crashed, _)) = state.crashed else {
                        return true;
                    };
                    let mut live = state.live();
                    let seen = live
                        .clone()
                        .all(|d| d.status(crashed) == Some(Status::Dead));
                    let first = live.next().map(|d| d.members());
                    !seen || live.all(|d| Some(d.members()) == first)
                },
            ));
        }
        if self.crashes {
            properties.push(Property::sometimes(
                "crash detected",
                |_, state: &HeartbeatState| {
                    state.crashed.is_some_and(|(crashed, _)| {
                        state
                            .live()
                            .all(|d| d.status(crashed) == Some(Status::Dead))
                    })
                },
            ));
        }
        if !self.synchronous() {
            properties.push(Property::sometimes(
                "false suspicion refuted",
                |_, state: &HeartbeatState| state.refuted,
            ));
        }
        properties
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::CheckReport;
    use crate::models::testing::{check, reachable_states};

    /// `nodes` nodes, H = 2, D = 1, one crash, no loss.
    fn model(nodes: usize, timeout: Millis, variant: Variant) -> HeartbeatModel {
        HeartbeatModel::new(nodes, 2, timeout, 1, false, true, variant)
    }

    /// The counterexample to `property`, as its actions and its final state.
    fn counterexample(report: &CheckReport, property: &str) -> (Vec<String>, String) {
        let verdict = report.property(property).expect("the property exists");
        assert!(!verdict.holds, "`{property}` should be refuted: {report:?}");
        let steps = verdict
            .counterexample
            .as_ref()
            .expect("a refuted always-property has a counterexample");
        let last = steps.last().map(|s| s.state.clone()).unwrap_or_default();
        (steps.iter().map(|s| s.action.clone()).collect(), last)
    }

    fn holds(report: &CheckReport, property: &str) -> bool {
        report
            .property(property)
            .expect("the property exists")
            .holds
    }

    #[test]
    fn default_configuration_passes_with_pinned_counts() {
        let defaults = Params::defaults(NAME, PARAMS);
        assert_eq!(
            defaults.to_string(),
            "nodes=3 interval=2 timeout=4 delay=1 lossy=false crashes=1 variant=correct"
        );
        let model = HeartbeatModel::from_params(&defaults).unwrap();
        assert!(model.synchronous());
        assert_eq!(model.completeness_bound, 1 + 4 + 3);
        assert_eq!(model.horizon(), 10);
        let report = check(model);
        assert!(report.passed(), "{report:?}");
        let names: Vec<_> = report.properties.iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "completeness",
                "accuracy",
                "live nodes are never declared dead",
                "agreement",
                "crash detected",
            ]
        );
        assert_eq!(report.unique_states, 83_372);
        assert_eq!(report.total_states, 199_930);
        assert_eq!(report.max_depth, 47);
    }

    /// Accuracy under synchrony, exactly as the issue states it: with D < T − H
    /// and no loss no heartbeat is ever late, so no live node is ever suspected.
    #[test]
    fn under_synchrony_no_live_node_is_ever_suspected() {
        let states = reachable_states(&model(3, 4, Variant::Correct));
        assert!(states.iter().all(|s| !s.late_or_lost));
        assert!(
            states
                .iter()
                .all(|s| !s.live_node_with(|st| st != Status::Alive))
        );
        // …while the crashed node is suspected and declared Dead.
        assert!(states.iter().any(|s| {
            s.crashed
                .is_some_and(|(c, _)| s.live().all(|d| d.status(c) == Some(Status::Dead)))
        }));
    }

    /// The synchrony bound is tight: at D = T − H a live node is falsely
    /// suspected (and refutes); at D = T − H − 1 it never is.
    #[test]
    fn false_suspicion_starts_exactly_at_d_equal_t_minus_h() {
        let at_bound = model(2, 3, Variant::Correct);
        assert!(!at_bound.synchronous());
        let report = check(at_bound);
        assert!(report.passed(), "{report:?}");
        assert!(holds(&report, "false suspicion refuted"));
        assert_eq!(report.unique_states, 4_798);
        let below = reachable_states(&model(2, 4, Variant::Correct));
        assert!(below.iter().all(|s| !s.refuted && !s.late_or_lost));
    }

    /// Completeness is tight: claiming detection one tick earlier than
    /// D + T + S is refuted, by a crash whose last heartbeat takes the full D.
    #[test]
    fn the_completeness_bound_is_tight() {
        let mut early = model(3, 4, Variant::Correct);
        early.completeness_bound -= 1;
        let report = check(early);
        let (actions, last) = counterexample(&report, "completeness");
        assert!(
            actions.iter().any(|a| a.starts_with("Crash(")),
            "{actions:?}"
        );
        assert!(last.contains("crashed="), "{last}");
        assert!(
            last.contains(":S@"),
            "a live node still only suspects: {last}"
        );
    }

    /// `timeout-too-short` (T = H) breaks accuracy even under synchrony: a peer
    /// is suspected between two punctual heartbeats.
    #[test]
    fn timeout_too_short_breaks_accuracy() {
        let report = check(model(2, 4, Variant::TimeoutTooShort));
        let (actions, last) = counterexample(&report, "accuracy");
        assert!(
            actions.iter().all(|a| !a.starts_with("Drop")),
            "{actions:?}"
        );
        assert!(last.contains(":S@"), "{last}");
        // The shortest counterexample ends at the first check after the punctual
        // heartbeats of t = 0: with T = H the node suspects a peer at t = 2 = H.
        assert!(last.contains(":S@2"), "{last}");
        assert!(holds(&report, "completeness"));
    }

    /// `no-refute`: the suspected node ignores the suspicion, so it is declared
    /// Dead while alive.
    #[test]
    fn no_refute_declares_a_live_node_dead() {
        let report = check(model(2, 3, Variant::NoRefute));
        let (actions, last) = counterexample(&report, "live nodes are never declared dead");
        assert!(actions.iter().any(|a| a.contains("Suspect")), "{actions:?}");
        assert!(actions.iter().all(|a| !a.contains("Alive")), "{actions:?}");
        assert!(last.contains(":D/0"), "{last}");
        assert!(!holds(&report, "false suspicion refuted"));
    }

    /// `no-incarnation`: the answer carries the suspected incarnation, is taken
    /// for stale, and the live node is declared Dead anyway.
    #[test]
    fn no_incarnation_declares_a_live_node_dead() {
        let report = check(model(2, 3, Variant::NoIncarnation));
        let (actions, last) = counterexample(&report, "live nodes are never declared dead");
        assert!(
            actions
                .iter()
                .any(|a| a.contains("Alive { incarnation: 0 }")),
            "{actions:?}"
        );
        assert!(last.contains(":D/0"), "{last}");
        assert!(!holds(&report, "false suspicion refuted"));
    }

    #[test]
    fn loss_excuses_suspicion_but_not_missed_crashes() {
        let report = check(HeartbeatModel::new(
            2,
            2,
            4,
            1,
            true,
            true,
            Variant::Correct,
        ));
        assert!(report.passed(), "{report:?}");
        assert!(holds(&report, "false suspicion refuted"));
        assert_eq!(report.unique_states, 186_612);
    }

    #[test]
    fn a_correct_detector_with_t_at_most_h_is_refused() {
        let params = Params::parse(NAME, PARAMS, &["timeout=2"]).unwrap();
        let err = HeartbeatModel::from_params(&params).unwrap_err();
        assert!(
            err.to_string().contains("variant=timeout-too-short"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod agreement_tests {
    use std::collections::BTreeSet;

    use stateright::{Checker, HasDiscoveries, Model};

    use super::*;

    /// Agreement can fail: with `no-refute`, three nodes and D = T − H, one
    /// live node declares another Dead while the third still counts it a member,
    /// at a moment when both have declared the crashed node Dead. The search
    /// stops at the first such state (the full space is too large for a test).
    #[test]
    fn agreement_fails_without_refutation() {
        let model = HeartbeatModel::new(3, 2, 3, 1, false, true, Variant::NoRefute);
        let checker = model
            .checker()
            .finish_when(HasDiscoveries::AnyOf(BTreeSet::from(["agreement"])))
            .spawn_bfs()
            .join();
        let path = checker
            .discovery("agreement")
            .expect("agreement is refuted");
        let last = path.last_state();
        let (crashed, _) = last
            .crashed
            .expect("agreement is only claimed after a crash");
        let views: Vec<Vec<NodeId>> = last.live().map(|d| d.members()).collect();
        assert!(views.iter().all(|v| !v.contains(&crashed)), "{last:?}");
        assert_ne!(views[0], views[1], "{last:?}");
    }
}
