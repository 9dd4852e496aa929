//! [`NetworkState`]: a state of an actor system on the duplicating network of
//! [`super::network`], laid out so that a step copies little.
//!
//! It holds what stateright's `ActorModelState` holds — each actor's state,
//! timers, pending random choices, crash flag and saved record, the messages
//! in flight and the history — and two states are equal exactly when those
//! are (the network's last-delivered envelope, which haft's models forget, is
//! not kept at all). What differs is the layout: each actor's part and the
//! network are a [`Shared`], so a successor shares every part its step did not
//! touch, and a state's fingerprint hashes each untouched part as one
//! remembered word. stateright's state copies every actor's timer set and
//! random-choice map (hash tables, with `String` keys) and the network's hash
//! set for every successor, and hashes them whole; that was most of the cost
//! of checking the actor models. [`InFlight`], the network as a sorted
//! vector, serves the `node` model's network too.

use std::fmt::{self, Debug};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use stateright::actor::{Actor, Envelope};

use super::shared::Shared;
use crate::checker::symmetry::{Permutation, Permute};

/// The messages in flight on an unordered duplicating network: a set of
/// envelopes, kept sorted, so that deliveries are offered in the envelopes'
/// order (for stateright's envelopes, the order stateright offers them in:
/// source, destination, message). A sorted vector rather than a tree: a step
/// that sends copies it, and a vector is copied with one allocation.
pub struct InFlight<E> {
    envelopes: Vec<E>,
}

impl<E: Ord> InFlight<E> {
    /// The envelopes, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, E> {
        self.envelopes.iter()
    }

    /// How many distinct envelopes are in flight.
    pub fn len(&self) -> usize {
        self.envelopes.len()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.envelopes.is_empty()
    }

    /// Where an envelope is, or would go, by `order` (which must agree with
    /// the envelopes' order): `Ok` if one is in flight already.
    pub fn search(&self, order: impl FnMut(&E) -> std::cmp::Ordering) -> Result<usize, usize> {
        self.envelopes.binary_search_by(order)
    }

    /// Puts `envelope` at `at`, where [`search`](Self::search) said it goes.
    pub fn insert_at(&mut self, at: usize, envelope: E) {
        self.envelopes.insert(at, envelope);
    }

    /// Keeps only the envelopes `keep` accepts.
    pub fn retain(&mut self, keep: impl FnMut(&E) -> bool) {
        self.envelopes.retain(keep);
    }
}

impl<M> Default for InFlight<M> {
    fn default() -> Self {
        InFlight {
            envelopes: Vec::new(),
        }
    }
}

impl<M: Clone> Clone for InFlight<M> {
    fn clone(&self) -> Self {
        InFlight {
            envelopes: self.envelopes.clone(),
        }
    }
}

impl<M: PartialEq> PartialEq for InFlight<M> {
    fn eq(&self, other: &Self) -> bool {
        self.envelopes == other.envelopes
    }
}

impl<M: Eq> Eq for InFlight<M> {}

impl<M: Hash> Hash for InFlight<M> {
    fn hash<S: Hasher>(&self, state: &mut S) {
        self.envelopes.hash(state);
    }
}

impl<M: Debug> Debug for InFlight<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(&self.envelopes).finish()
    }
}

/// One actor's part of a state.
pub(crate) struct Slot<A: Actor> {
    pub(crate) state: Arc<A::State>,
    /// The timers set, sorted.
    pub(crate) timers: Vec<A::Timer>,
    /// The pending random choices, sorted by key.
    pub(crate) random: Vec<(String, Vec<A::Random>)>,
    pub(crate) crashed: bool,
    pub(crate) storage: Option<A::Storage>,
}

impl<A: Actor> Slot<A>
where
    A::Timer: Ord,
{
    pub(crate) fn new(state: A::State) -> Self {
        Slot {
            state: Arc::new(state),
            timers: Vec::new(),
            random: Vec::new(),
            crashed: false,
            storage: None,
        }
    }

    pub(crate) fn has_timer(&self, timer: &A::Timer) -> bool {
        self.timers.binary_search(timer).is_ok()
    }

    pub(crate) fn set_timer(&mut self, timer: A::Timer) {
        if let Err(at) = self.timers.binary_search(&timer) {
            self.timers.insert(at, timer);
        }
    }

    pub(crate) fn cancel_timer(&mut self, timer: &A::Timer) {
        if let Ok(at) = self.timers.binary_search(timer) {
            self.timers.remove(at);
        }
    }

    /// Offers `choices` under `key`, replacing what it offered before; no
    /// choices withdraws the key.
    pub(crate) fn choose_random(&mut self, key: String, choices: Vec<A::Random>) {
        match self.random.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(at) if choices.is_empty() => {
                self.random.remove(at);
            }
            Ok(at) => self.random[at].1 = choices,
            Err(_) if choices.is_empty() => {}
            Err(at) => self.random.insert(at, (key, choices)),
        }
    }
}

impl<A: Actor> Clone for Slot<A> {
    fn clone(&self) -> Self {
        Slot {
            state: Arc::clone(&self.state),
            timers: self.timers.clone(),
            random: self.random.clone(),
            crashed: self.crashed,
            storage: self.storage.clone(),
        }
    }
}

impl<A: Actor> PartialEq for Slot<A> {
    fn eq(&self, other: &Self) -> bool {
        self.crashed == other.crashed
            && self.state == other.state
            && self.timers == other.timers
            && self.random == other.random
            && self.storage == other.storage
    }
}

// As stateright's own state: an actor's state and record are compared as
// equal or not, which `Actor` asks of them (`PartialEq`) already.
impl<A: Actor> Eq for Slot<A> {}

impl<A: Actor> Hash for Slot<A> {
    fn hash<S: Hasher>(&self, state: &mut S) {
        self.state.hash(state);
        self.timers.hash(state);
        self.random.hash(state);
        self.crashed.hash(state);
        self.storage.hash(state);
    }
}

/// A state of an [`OnNetwork`](super::network::OnNetwork) model (see the
/// [module docs](self)).
pub struct NetworkState<A: Actor, H> {
    pub(crate) actors: Vec<Shared<Slot<A>>>,
    /// The messages in flight.
    pub network: Shared<InFlight<Envelope<A::Msg>>>,
    /// The model's history (what properties need that no actor keeps).
    pub history: H,
}

impl<A: Actor, H> NetworkState<A, H> {
    /// The state of actor `index`.
    pub fn actor(&self, index: usize) -> &A::State {
        &self.actors[index].state
    }

    /// Every actor's state, in id order.
    pub fn actor_states(&self) -> impl Iterator<Item = &A::State> {
        self.actors.iter().map(|slot| &*slot.state)
    }

    /// Whether actor `index` is down.
    pub fn crashed(&self, index: usize) -> bool {
        self.actors[index].crashed
    }

    /// Whether every actor is up.
    pub fn all_up(&self) -> bool {
        self.actors.iter().all(|slot| !slot.crashed)
    }

    /// How many actors are down.
    pub fn crashes(&self) -> usize {
        self.actors.iter().filter(|slot| slot.crashed).count()
    }

    /// What actor `index` last saved.
    pub fn storage(&self, index: usize) -> Option<&A::Storage> {
        self.actors[index].storage.as_ref()
    }

    /// The timers actor `index` has set, in order.
    pub fn timers(&self, index: usize) -> &[A::Timer] {
        &self.actors[index].timers
    }

    /// How many actors there are.
    pub fn len(&self) -> usize {
        self.actors.len()
    }

    /// Whether there is no actor.
    pub fn is_empty(&self) -> bool {
        self.actors.is_empty()
    }
}

impl<A: Actor, H> NetworkState<A, H>
where
    A::Msg: Ord,
{
    /// Puts `envelope` in flight; the network is copied only if it is new.
    pub(crate) fn send(&mut self, envelope: Envelope<A::Msg>) {
        if let Err(at) = self.network.search(|e| e.cmp(&envelope)) {
            self.network.make_mut().insert_at(at, envelope);
        }
    }

    /// The state of stateright's actor system `state`, less its network's
    /// last-delivered envelope (for the tests that compare haft's network with
    /// stateright's).
    #[cfg(test)]
    pub(crate) fn from_stateright(state: &stateright::actor::ActorModelState<A, H>) -> Self
    where
        A::Timer: Ord,
        H: Clone,
    {
        let actors = (0..state.actor_states.len())
            .map(|i| {
                let mut timers: Vec<A::Timer> = state.timers_set[i].iter().cloned().collect();
                timers.sort();
                let mut random: Vec<(String, Vec<A::Random>)> = state.random_choices[i]
                    .map
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                random.sort_by(|a, b| a.0.cmp(&b.0));
                Shared::new(Slot {
                    state: Arc::clone(&state.actor_states[i]),
                    timers,
                    random,
                    crashed: state.crashed[i],
                    storage: state.actor_storages[i].clone(),
                })
            })
            .collect();
        let mut network: InFlight<Envelope<A::Msg>> = InFlight::default();
        for envelope in state.network.iter_all() {
            let envelope = envelope.to_cloned_msg();
            if let Err(at) = network.search(|e| e.cmp(&envelope)) {
                network.insert_at(at, envelope);
            }
        }
        NetworkState {
            actors,
            network: Shared::new(network),
            history: state.history.clone(),
        }
    }
}

/// An actor's part, renamed: its state, timers (sorted again), pending random
/// choices and saved record. The keys of random choices are kept as they are:
/// a model whose keys name a permuted actor cannot use this.
impl<A: Actor> Permute for Slot<A>
where
    A::State: Permute,
    A::Timer: Permute + Ord,
    A::Random: Permute,
    A::Storage: Permute,
{
    fn permute(&self, p: &Permutation) -> Self {
        let mut timers: Vec<A::Timer> = self.timers.iter().map(|t| t.permute(p)).collect();
        timers.sort();
        Slot {
            state: Arc::new(A::State::permute(&self.state, p)),
            timers,
            random: self
                .random
                .iter()
                .map(|(key, choices)| (key.clone(), choices.permute(p)))
                .collect(),
            crashed: self.crashed,
            storage: self.storage.as_ref().map(|s| s.permute(p)),
        }
    }
}

/// The envelopes renamed, and sorted again.
impl<M: Permute + Ord> Permute for InFlight<Envelope<M>> {
    fn permute(&self, p: &Permutation) -> Self {
        let mut envelopes: Vec<Envelope<M>> = self.envelopes.iter().map(|e| e.permute(p)).collect();
        envelopes.sort();
        InFlight { envelopes }
    }
}

/// A renaming of the actors (symmetry reduction, [`crate::checker::symmetry`]):
/// each actor's part moves to its new position and is renamed inside, and the
/// envelopes in flight and the history are renamed.
impl<A: Actor + 'static, H: Permute> Permute for NetworkState<A, H>
where
    A::State: Permute,
    A::Msg: Permute + Ord,
    A::Timer: Permute + Ord,
    A::Random: Permute,
    A::Storage: Permute,
{
    fn permute(&self, p: &Permutation) -> Self {
        NetworkState {
            actors: p
                .reorder(&self.actors)
                .iter()
                .map(|slot| slot.permute(p))
                .collect(),
            network: self.network.permute(p),
            history: self.history.permute(p),
        }
    }
}

impl<A: Actor, H: Clone> Clone for NetworkState<A, H> {
    fn clone(&self) -> Self {
        NetworkState {
            actors: self.actors.clone(),
            network: self.network.clone(),
            history: self.history.clone(),
        }
    }
}

impl<A: Actor, H: PartialEq> PartialEq for NetworkState<A, H> {
    fn eq(&self, other: &Self) -> bool {
        self.actors == other.actors
            && self.network == other.network
            && self.history == other.history
    }
}

impl<A: Actor, H: Eq> Eq for NetworkState<A, H> {}

impl<A: Actor, H: Hash> Hash for NetworkState<A, H> {
    fn hash<S: Hasher>(&self, state: &mut S) {
        self.actors.hash(state);
        self.network.hash(state);
        self.history.hash(state);
    }
}

/// Shown as stateright showed its state, column by column, so that traces
/// and their paths (`actor_states[1].machine…`, `crashed`) read as before.
impl<A: Actor, H: Debug> Debug for NetworkState<A, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Set<'a, T>(&'a [T]);
        impl<T: Debug> Debug for Set<'_, T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_set().entries(self.0).finish()
            }
        }
        struct Map<'a, K, V>(&'a [(K, V)]);
        impl<K: Debug, V: Debug> Debug for Map<'_, K, V> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(self.0.iter().map(|(k, v)| (k, v)))
                    .finish()
            }
        }
        let column = |part: fn(&Slot<A>) -> &dyn Debug| -> Vec<&dyn Debug> {
            self.actors.iter().map(|slot| part(slot)).collect()
        };
        f.debug_struct("NetworkState")
            .field("actor_states", &column(|slot| &*slot.state))
            .field("history", &self.history)
            .field(
                "timers_set",
                &self
                    .actors
                    .iter()
                    .map(|s| Set(&s.timers))
                    .collect::<Vec<_>>(),
            )
            .field(
                "random_choices",
                &self
                    .actors
                    .iter()
                    .map(|s| Map(&s.random))
                    .collect::<Vec<_>>(),
            )
            .field("network", &self.network)
            .field("crashed", &column(|slot| &slot.crashed))
            .field("storages", &column(|slot| &slot.storage))
            .finish()
    }
}
