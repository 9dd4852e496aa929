//! The network haft's actor models run on: stateright's unordered duplicating
//! network, with loss modelled as "the network loses every message in flight".
//!
//! [`OnNetwork`] wraps an [`ActorModel`] built on
//! `Network::new_unordered_duplicating` and changes two things, both without
//! changing which behaviours the checker sees.
//!
//! **The last-delivered envelope is not state.** stateright 0.31's duplicating
//! network keeps the envelope it delivered last, so that its Explorer can show
//! it. No action and no property depends on it, yet it multiplies the state count
//! by the number of envelopes that can have arrived last. The wrapper clears it
//! after every step: an exact quotient, the same behaviours counted once (the
//! `two-phase` tests check this against the raw actor system).
//!
//! **Loss is one action that empties the network.** On a duplicating network a
//! sent message stays deliverable for ever, which already covers delay,
//! reordering and duplication. stateright's lossy mode adds a `Drop` action per
//! envelope, so the checker visits the network in every subset of what was sent:
//! `two-phase` with 2 participants and a crash grows from 8,972 states to more
//! than 16 million. But for what haft checks, a partial loss adds nothing:
//!
//! - every actor configuration a lossy run reaches is reached without loss, by
//!   simply not delivering the lost messages (a lost message is a message that
//!   is never delivered). Properties over actor states and history — `always`,
//!   `sometimes`, and refinement over transitions, where a drop is a stutter —
//!   have the same outcome with or without loss; stateright's own docs make the
//!   same point about `LossyNetwork`;
//! - loss does matter to `eventually` properties, which stateright judges at
//!   terminal states. On a lossy network a state is terminal only when its
//!   network is empty — a pending `Drop` is a step — and no actor step is left.
//!   So the terminal states of a lossy run are exactly the states "actor
//!   configuration C, empty network" with nothing left to do, for each C
//!   reachable without loss.
//!
//! [`OnNetwork`] with `lossy` therefore offers one extra action, [`Step::LoseAll`]:
//! the network loses every message in flight. It reaches each reachable actor
//! configuration with an empty network, hence every terminal state of the lossy
//! system; every state it reaches is one the lossy system reaches too (losing
//! everything at once is one way to lose messages). The tests of `two-phase`
//! compare it with stateright's native lossy network on small systems: the same
//! actor configurations, the same terminal states, the same verdicts. (For an
//! `eventually` property stateright asks whether the condition held anywhere on
//! the path to a terminal state; the models' conditions — "has decided", "holds
//! the key" — are stable once true, so the path does not matter.)
//!
//! **Large messages and tags keep this network.** A message is one envelope
//! here whatever its size. The runtime sends one larger than a datagram as
//! fragments and hands it to the machine only once every fragment has arrived
//! (`runtime::codec::Reassembly`, bounded in memory and age): a message is
//! delivered whole or not at all, possibly twice, in any order, which is this
//! network. Datagrams without the cluster key's HMAC tag never reach a
//! machine, and a replayed tagged one is a duplicate delivered late, which
//! the duplicating network already delivers (see `runtime::node`).

use std::fmt::{self, Debug};
use std::hash::Hash;

use stateright::actor::{Actor, ActorModel, ActorModelAction, ActorModelState, Id, Network};
use stateright::{Model, Property};

/// An actor system on an unordered duplicating network, optionally lossy (see
/// the module doc).
pub struct OnNetwork<A, C, H>
where
    A: Actor,
    A::Msg: Ord,
    A::Timer: Ord,
    H: Clone + Debug + Hash,
{
    /// The actors, built without stateright's own loss.
    pub actors: ActorModel<A, C, H>,
    /// Whether the network may lose the messages in flight.
    pub lossy: bool,
    properties_of: PropertiesOf<A, C, H>,
    may_crash: Option<MayCrash<A, C, H>>,
}

/// Whether actor `Id` may crash in a state: models whose actors carry an
/// incarnation (raised by every restart) bound the restarts with it, so that
/// the state space stays finite.
pub type MayCrash<A, C, H> = fn(&C, &NetworkState<A, H>, Id) -> bool;

/// Lists the properties of an [`OnNetwork`] model.
pub type PropertiesOf<A, C, H> = fn(&OnNetwork<A, C, H>) -> Vec<Property<OnNetwork<A, C, H>>>;

/// A state of an [`OnNetwork`] model.
pub type NetworkState<A, H> = ActorModelState<A, H>;

/// A step of an [`OnNetwork`] model.
pub enum Step<A: Actor> {
    /// A step of the actor system: a delivery, a timeout, a crash, a recovery or
    /// a random choice.
    Actor(ActorModelAction<A::Msg, A::Timer, A::Random>),
    /// The network loses every message in flight (only when `lossy`).
    LoseAll,
}

// By hand rather than derived: a derive would ask the actor type itself, not
// only its messages, timers and choices, to be comparable.
impl<A: Actor> Clone for Step<A> {
    fn clone(&self) -> Self {
        match self {
            Step::Actor(action) => Step::Actor(action.clone()),
            Step::LoseAll => Step::LoseAll,
        }
    }
}

impl<A: Actor> PartialEq for Step<A> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Step::Actor(a), Step::Actor(b)) => a == b,
            (Step::LoseAll, Step::LoseAll) => true,
            _ => false,
        }
    }
}

impl<A: Actor> Eq for Step<A> {}

impl<A: Actor> Hash for Step<A> {
    fn hash<S: std::hash::Hasher>(&self, state: &mut S) {
        std::mem::discriminant(self).hash(state);
        if let Step::Actor(action) = self {
            action.hash(state);
        }
    }
}

impl<A: Actor> Debug for Step<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Actor(action) => action.fmt(f),
            Step::LoseAll => f.write_str("LoseAll"),
        }
    }
}

impl<A, C, H> OnNetwork<A, C, H>
where
    A: Actor,
    A::Msg: Ord,
    A::Timer: Ord,
    H: Clone + Debug + Hash,
{
    /// Wraps `actors`, which must run on `Network::new_unordered_duplicating`
    /// and without stateright's lossy mode; `properties_of` lists the model's
    /// properties.
    ///
    /// # Panics
    /// If `actors` is built on another network or with stateright's loss: a
    /// programming error in a model, not an input error.
    pub fn new(
        actors: ActorModel<A, C, H>,
        lossy: bool,
        properties_of: PropertiesOf<A, C, H>,
    ) -> Self {
        assert!(
            matches!(actors.init_network, Network::UnorderedDuplicating(..)),
            "OnNetwork models run on the unordered duplicating network"
        );
        assert!(
            matches!(actors.lossy_network, stateright::actor::LossyNetwork::No),
            "OnNetwork models loss itself; build the actors without LossyNetwork::Yes"
        );
        OnNetwork {
            actors,
            lossy,
            properties_of,
            may_crash: None,
        }
    }

    /// Offers a crash of an actor only where `may_crash` allows it.
    pub fn with_crash_budget(mut self, may_crash: MayCrash<A, C, H>) -> Self {
        self.may_crash = Some(may_crash);
        self
    }
}

impl<A, C, H> Clone for OnNetwork<A, C, H>
where
    A: Actor + Clone,
    A::Msg: Ord,
    A::Timer: Ord,
    C: Clone,
    H: Clone + Debug + Hash,
{
    fn clone(&self) -> Self {
        OnNetwork {
            actors: self.actors.clone(),
            lossy: self.lossy,
            properties_of: self.properties_of,
            may_crash: self.may_crash,
        }
    }
}

/// Clears the duplicating network's last-delivered envelope (see the module doc).
pub fn forget_last_delivery<A: Actor, H>(mut state: NetworkState<A, H>) -> NetworkState<A, H> {
    if let Network::UnorderedDuplicating(_, last) = &mut state.network {
        *last = None;
    }
    state
}

impl<A, C, H> Model for OnNetwork<A, C, H>
where
    A: Actor,
    A::Msg: Ord,
    A::Timer: Ord,
    H: Clone + Debug + Hash,
{
    type State = NetworkState<A, H>;
    type Action = Step<A>;

    fn init_states(&self) -> Vec<Self::State> {
        self.actors
            .init_states()
            .into_iter()
            .map(forget_last_delivery)
            .collect()
    }

    fn actions(&self, state: &Self::State, actions: &mut Vec<Self::Action>) {
        let mut inner = Vec::new();
        self.actors.actions(state, &mut inner);
        if let Some(may_crash) = self.may_crash {
            inner.retain(|action| match action {
                ActorModelAction::Crash(id) => may_crash(&self.actors.cfg, state, *id),
                _ => true,
            });
        }
        actions.extend(inner.into_iter().map(Step::Actor));
        // Offered only when something is in flight: losing nothing is no step,
        // and a self-loop would hide terminal states from `eventually`.
        if self.lossy && state.network.len() > 0 {
            actions.push(Step::LoseAll);
        }
    }

    fn next_state(&self, state: &Self::State, action: Self::Action) -> Option<Self::State> {
        match action {
            Step::Actor(action) => self
                .actors
                .next_state(state, action)
                .map(forget_last_delivery),
            Step::LoseAll => {
                let mut next = state.clone();
                next.network = Network::new_unordered_duplicating([]);
                Some(next)
            }
        }
    }

    fn format_action(&self, action: &Self::Action) -> String {
        match action {
            Step::Actor(action) => self.actors.format_action(action),
            Step::LoseAll => "the network loses every message in flight".to_string(),
        }
    }

    fn format_step(&self, state: &Self::State, action: Self::Action) -> Option<String>
    where
        Self::State: Debug,
    {
        match action {
            Step::Actor(action) => self.actors.format_step(state, action),
            Step::LoseAll => Some(format!(
                "LOST: {:?}",
                state.network.iter_all().collect::<Vec<_>>()
            )),
        }
    }

    fn properties(&self) -> Vec<Property<Self>> {
        (self.properties_of)(self)
    }

    fn within_boundary(&self, state: &Self::State) -> bool {
        Model::within_boundary(&self.actors, state)
    }
}

/// Compares an [`OnNetwork`] model with the same actors on stateright's own
/// lossy network (see the module doc), for the tests of the models.
#[cfg(test)]
pub(crate) mod native {
    use std::collections::HashSet;
    use std::fmt::Debug;
    use std::hash::Hash;

    use stateright::actor::{Actor, ActorModelState, LossyNetwork, Network};
    use stateright::{Expectation, Model};

    use super::OnNetwork;
    use crate::models::testing::reachable_states;

    /// What a system looks like once the network is set aside.
    #[derive(Debug, PartialEq, Eq)]
    pub struct Summary<S: Hash + Eq> {
        /// How many states the checker visits.
        pub states: usize,
        /// The reachable states, with an empty network.
        pub reachable: HashSet<S>,
        /// The terminal states (no step leads anywhere), with an empty network.
        pub terminal: HashSet<S>,
        /// Per property, whether it holds: `always` at every reachable state,
        /// `sometimes` at some, `eventually` at every terminal state.
        pub verdicts: Vec<(&'static str, bool)>,
    }

    fn without_network<A: Actor, H: Clone>(state: &ActorModelState<A, H>) -> ActorModelState<A, H> {
        let mut state = state.clone();
        state.network = Network::new_unordered_duplicating([]);
        state
    }

    fn summary<M, A, C, H>(model: &M, judge: &OnNetwork<A, C, H>) -> Summary<ActorModelState<A, H>>
    where
        M: Model<State = ActorModelState<A, H>>,
        M::Action: Clone + Debug,
        A: Actor + Clone,
        A::Msg: Ord,
        A::Timer: Ord,
        H: Clone + Debug + Hash + Eq,
        ActorModelState<A, H>: Clone + Debug + Hash + Eq,
    {
        let states = reachable_states(model);
        let is_terminal = |state: &ActorModelState<A, H>| {
            let mut actions = Vec::new();
            model.actions(state, &mut actions);
            actions.into_iter().all(|action| {
                model
                    .next_state(state, action)
                    .is_none_or(|next| !model.within_boundary(&next))
            })
        };
        let terminal: Vec<_> = states.iter().filter(|s| is_terminal(s)).collect();
        let verdicts = judge
            .properties()
            .into_iter()
            .map(|p| {
                let holds = |s: &&ActorModelState<A, H>| (p.condition)(judge, s);
                let verdict = match p.expectation {
                    Expectation::Always => states.iter().all(|s| holds(&s)),
                    Expectation::Sometimes => states.iter().any(|s| holds(&s)),
                    Expectation::Eventually => terminal.iter().all(holds),
                };
                (p.name, verdict)
            })
            .collect();
        Summary {
            states: states.len(),
            reachable: states.iter().map(without_network).collect(),
            terminal: terminal.iter().map(|s| without_network(s)).collect(),
            verdicts,
        }
    }

    /// Summarises `model` and the same actors on stateright's lossy network.
    pub fn compare<A, C, H>(model: &OnNetwork<A, C, H>) -> [Summary<ActorModelState<A, H>>; 2]
    where
        A: Actor + Clone,
        A::Msg: Ord,
        A::Timer: Ord,
        C: Clone,
        H: Clone + Debug + Hash + Eq,
        ActorModelState<A, H>: Clone + Debug + Hash + Eq,
    {
        assert!(model.lossy, "compare a lossy model");
        let native = model.actors.clone().lossy_network(LossyNetwork::Yes);
        [summary(model, model), summary(&native, model)]
    }
}
