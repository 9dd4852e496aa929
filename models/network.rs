//! The network haft's actor models run on: stateright's unordered duplicating
//! network, with loss modelled as "the network loses every message in flight".
//!
//! [`OnNetwork`] runs the actors of an [`ActorModel`] built on
//! `Network::new_unordered_duplicating` — the same handlers, the same actions
//! in the same order, the same rules for what is no step — over a state of its
//! own, [`NetworkState`], which a step copies little of (see
//! [`super::system_state`]). It changes two things, both without changing which
//! behaviours the checker sees.
//!
//! **The last-delivered envelope is not state.** stateright 0.31's duplicating
//! network keeps the envelope it delivered last, so that its Explorer can show
//! it. No action and no property depends on it, yet it multiplies the state count
//! by the number of envelopes that can have arrived last. [`NetworkState`] does
//! not keep it: an exact quotient, the same behaviours counted once (the
//! `two-phase` tests check this against stateright's own actor system).
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

use std::borrow::Cow;
use std::sync::Arc;

use stateright::actor::{
    Actor, ActorModel, ActorModelAction, Command, Envelope, Id, Network, Out, is_no_op,
    is_no_op_with_timer,
};
use stateright::{Model, Property};

use super::shared::Shared;
use super::system_state::Slot;
pub use super::system_state::{InFlight, NetworkState};

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

impl<A, C, H> OnNetwork<A, C, H>
where
    A: Actor,
    A::Msg: Ord,
    A::Timer: Ord,
    H: Clone + Debug + Hash,
{
    /// Wraps `actors`, which must run on `Network::new_unordered_duplicating`
    /// and without stateright's lossy mode; `properties_of` lists the model's
    /// properties. The actors' `within_boundary` bounds stateright's own run
    /// of them alone (the tests'); this model bounds crashes with
    /// [`with_crash_budget`](Self::with_crash_budget).
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

    /// Carries out what actor `id` asked for in a step.
    fn carry_out(&self, id: Id, out: Out<A>, state: &mut NetworkState<A, H>) {
        let index = usize::from(id);
        for command in out {
            match command {
                Command::Send(dst, msg) => {
                    let envelope = Envelope {
                        src: id,
                        dst,
                        msg: &msg,
                    };
                    if let Some(history) =
                        (self.actors.record_msg_out)(&self.actors.cfg, &state.history, envelope)
                    {
                        state.history = history;
                    }
                    state.send(Envelope { src: id, dst, msg });
                }
                Command::SetTimer(timer, _) => {
                    if !state.actors[index].has_timer(&timer) {
                        state.actors[index].make_mut().set_timer(timer);
                    }
                }
                Command::CancelTimer(timer) => {
                    if state.actors[index].has_timer(&timer) {
                        state.actors[index].make_mut().cancel_timer(&timer);
                    }
                }
                Command::ChooseRandom(key, choices) => {
                    state.actors[index].make_mut().choose_random(key, choices);
                }
                Command::Save(storage) => state.actors[index].make_mut().storage = Some(storage),
            }
        }
    }

    /// The successor where actor `id`'s handler left `actor` and asked for
    /// `out`; `history`, if any, is what the step's input recorded (before
    /// its sends record theirs), and `also` changes the actor's slot first (a
    /// timer that fired, a choice made).
    fn after(
        &self,
        state: &NetworkState<A, H>,
        id: Id,
        actor: Cow<'_, A::State>,
        out: Out<A>,
        history: Option<H>,
        also: Option<impl FnOnce(&mut Slot<A>)>,
    ) -> NetworkState<A, H> {
        let mut next = state.clone();
        if let Some(history) = history {
            next.history = history;
        }
        if also.is_some() || matches!(actor, Cow::Owned(_)) {
            let slot = next.actors[usize::from(id)].make_mut();
            if let Some(also) = also {
                also(slot);
            }
            if let Cow::Owned(actor) = actor {
                slot.state = Arc::new(actor);
            }
        }
        self.carry_out(id, out, &mut next);
        next
    }
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
        let mut state = NetworkState {
            actors: Vec::with_capacity(self.actors.actors.len()),
            network: Shared::default(),
            history: self.actors.init_history.clone(),
        };
        for (index, actor) in self.actors.actors.iter().enumerate() {
            let id = Id::from(index);
            let mut out = Out::new();
            let started = actor.on_start(id, &None, &mut out);
            state.actors.push(Shared::new(Slot::new(started)));
            self.carry_out(id, out, &mut state);
        }
        vec![state]
    }

    /// The actions in stateright's order: deliveries, timeouts, crashes,
    /// recoveries, random choices; then the loss of everything in flight.
    fn actions(&self, state: &Self::State, actions: &mut Vec<Self::Action>) {
        // A message to a crashed actor is not delivered (stateright offers
        // the delivery, then finds no successor).
        for envelope in state.network.iter() {
            let to = usize::from(envelope.dst);
            if to < state.len() && !state.crashed(to) {
                actions.push(Step::Actor(ActorModelAction::Deliver {
                    src: envelope.src,
                    dst: envelope.dst,
                    msg: envelope.msg.clone(),
                }));
            }
        }
        for (index, slot) in state.actors.iter().enumerate() {
            for timer in &slot.timers {
                actions.push(Step::Actor(ActorModelAction::Timeout(
                    Id::from(index),
                    timer.clone(),
                )));
            }
        }
        if state.crashes() < self.actors.max_crashes {
            for (index, slot) in state.actors.iter().enumerate() {
                let id = Id::from(index);
                if !slot.crashed
                    && self
                        .may_crash
                        .is_none_or(|may_crash| may_crash(&self.actors.cfg, state, id))
                {
                    actions.push(Step::Actor(ActorModelAction::Crash(id)));
                }
            }
        }
        for (index, slot) in state.actors.iter().enumerate() {
            if slot.crashed {
                actions.push(Step::Actor(ActorModelAction::Recover(Id::from(index))));
            }
        }
        for (index, slot) in state.actors.iter().enumerate() {
            for (key, choices) in &slot.random {
                let mut choices: Vec<&A::Random> = choices.iter().collect();
                choices.sort();
                for random in choices {
                    actions.push(Step::Actor(ActorModelAction::SelectRandom {
                        actor: Id::from(index),
                        key: key.clone(),
                        random: random.clone(),
                    }));
                }
            }
        }
        // Offered only when something is in flight: losing nothing is no step,
        // and a self-loop would hide terminal states from `eventually`.
        if self.lossy && !state.network.is_empty() {
            actions.push(Step::LoseAll);
        }
    }

    /// stateright's semantics of each action: a step that changes neither the
    /// actor nor asks for anything (a timer that only sets itself again) is no
    /// step; a delivered message stays in flight.
    fn next_state(&self, state: &Self::State, action: Self::Action) -> Option<Self::State> {
        let action = match action {
            Step::Actor(action) => action,
            Step::LoseAll => {
                let mut next = state.clone();
                next.network = Shared::default();
                return Some(next);
            }
        };
        match action {
            ActorModelAction::Deliver { src, dst, msg } => {
                let index = usize::from(dst);
                if index >= state.len() || state.crashed(index) {
                    return None;
                }
                let mut actor = Cow::Borrowed(state.actor(index));
                let mut out = Out::new();
                self.actors.actors[index].on_msg(dst, &mut actor, src, msg.clone(), &mut out);
                if is_no_op(&actor, &out) {
                    return None;
                }
                let history = (self.actors.record_msg_in)(
                    &self.actors.cfg,
                    &state.history,
                    Envelope {
                        src,
                        dst,
                        msg: &msg,
                    },
                );
                Some(self.after(state, dst, actor, out, history, None::<fn(&mut Slot<A>)>))
            }
            ActorModelAction::Timeout(id, timer) => {
                let index = usize::from(id);
                let mut actor = Cow::Borrowed(state.actor(index));
                let mut out = Out::new();
                self.actors.actors[index].on_timeout(id, &mut actor, &timer, &mut out);
                if is_no_op_with_timer(&actor, &out, &timer) {
                    return None;
                }
                Some(self.after(
                    state,
                    id,
                    actor,
                    out,
                    None,
                    Some(|slot: &mut Slot<A>| slot.cancel_timer(&timer)),
                ))
            }
            ActorModelAction::Crash(id) => {
                let mut next = state.clone();
                let slot = next.actors[usize::from(id)].make_mut();
                slot.timers.clear();
                slot.random.clear();
                slot.crashed = true;
                Some(next)
            }
            ActorModelAction::Recover(id) => {
                let index = usize::from(id);
                let mut out = Out::new();
                let started =
                    self.actors.actors[index].on_start(id, &state.actors[index].storage, &mut out);
                Some(self.after(
                    state,
                    id,
                    Cow::Owned(started),
                    out,
                    None,
                    Some(|slot: &mut Slot<A>| slot.crashed = false),
                ))
            }
            ActorModelAction::SelectRandom { actor, key, random } => {
                let index = usize::from(actor);
                let mut actor_state = Cow::Borrowed(state.actor(index));
                let mut out = Out::new();
                self.actors.actors[index].on_random(actor, &mut actor_state, &random, &mut out);
                Some(self.after(
                    state,
                    actor,
                    actor_state,
                    out,
                    None,
                    Some(|slot: &mut Slot<A>| slot.choose_random(key, Vec::new())),
                ))
            }
            // Never offered: loss is `LoseAll`.
            ActorModelAction::Drop(_) => None,
        }
    }

    fn format_action(&self, action: &Self::Action) -> String {
        match action {
            Step::Actor(action) => self.actors.format_action(action),
            Step::LoseAll => "the network loses every message in flight".to_string(),
        }
    }

    fn properties(&self) -> Vec<Property<Self>> {
        (self.properties_of)(self)
    }
}

/// Compares an [`OnNetwork`] model with the same actors on stateright's own
/// lossy network (see the module doc), for the tests of the models.
#[cfg(test)]
pub(crate) mod native {
    use std::collections::HashSet;
    use std::fmt::Debug;
    use std::hash::Hash;

    use stateright::actor::{Actor, LossyNetwork};
    use stateright::{Expectation, Model};

    use super::{NetworkState, OnNetwork};
    use crate::models::shared::Shared;
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

    fn without_network<A: Actor, H: Clone>(state: &NetworkState<A, H>) -> NetworkState<A, H> {
        let mut state = state.clone();
        state.network = Shared::default();
        state
    }

    /// `model`'s states, judged by `judge`'s properties; `to_state` turns
    /// them into [`OnNetwork`]'s states.
    fn summary<M, A, C, H>(
        model: &M,
        judge: &OnNetwork<A, C, H>,
        to_state: impl Fn(&M::State) -> NetworkState<A, H>,
    ) -> Summary<NetworkState<A, H>>
    where
        M: Model,
        M::State: Clone + Debug + Hash + Eq,
        M::Action: Clone + Debug,
        A: Actor + Clone,
        A::Msg: Ord,
        A::Timer: Ord,
        H: Clone + Debug + Hash + Eq,
    {
        let found = reachable_states(model);
        let is_terminal = |state: &M::State| {
            let mut actions = Vec::new();
            model.actions(state, &mut actions);
            actions.into_iter().all(|action| {
                model
                    .next_state(state, action)
                    .is_none_or(|next| !model.within_boundary(&next))
            })
        };
        let terminal: Vec<NetworkState<A, H>> = found
            .iter()
            .filter(|s| is_terminal(s))
            .map(&to_state)
            .collect();
        let states: Vec<NetworkState<A, H>> = found.iter().map(&to_state).collect();
        let verdicts = judge
            .properties()
            .into_iter()
            .map(|p| {
                let holds = |s: &NetworkState<A, H>| (p.condition)(judge, s);
                let verdict = match p.expectation {
                    Expectation::Always => states.iter().all(holds),
                    Expectation::Sometimes => states.iter().any(holds),
                    Expectation::Eventually => terminal.iter().all(holds),
                };
                (p.name, verdict)
            })
            .collect();
        Summary {
            states: states.len(),
            reachable: states.iter().map(without_network).collect(),
            terminal: terminal.iter().map(without_network).collect(),
            verdicts,
        }
    }

    /// Summarises `model` and the same actors on stateright's lossy network.
    pub fn compare<A, C, H>(model: &OnNetwork<A, C, H>) -> [Summary<NetworkState<A, H>>; 2]
    where
        A: Actor + Clone,
        // stateright's own state asks it.
        A::State: Eq,
        A::Msg: Ord,
        A::Timer: Ord,
        C: Clone,
        H: Clone + Debug + Hash + Eq,
    {
        assert!(model.lossy, "compare a lossy model");
        let native = model.actors.clone().lossy_network(LossyNetwork::Yes);
        [
            summary(model, model, NetworkState::clone),
            summary(&native, model, NetworkState::from_stateright),
        ]
    }
}
