//! Canonical representatives for systems of interchangeable actors.
//!
//! A symmetry of an actor system renames actors: actor `i` becomes actor
//! `p(i)`, everywhere its id appears — in the vector of actor states, in
//! messages (sender, receiver, ids inside payloads), timers, durable records
//! and the model's history. If every rule of the system treats the actors of a
//! group alike, every renaming within the group maps behaviours to behaviours,
//! and a search may keep one state per class (see [`super::Spec::symmetry`]).
//!
//! [`canonical`] picks that state, for any state type that can be renamed
//! ([`Permute`]):
//!
//! 1. each actor of the group gets a *signature* from the caller: what the actor
//!    looks like without naming any other actor (its phase, how many votes it
//!    holds…). Signatures must not change under renaming;
//! 2. the actors are ordered by signature. Actors with equal signatures may
//!    still differ in how they refer to each other, so every ordering within
//!    each run of equal signatures is tried;
//! 3. of the renamed states, the one with the least fingerprint is the
//!    representative. It depends only on the class, hence is canonical: all
//!    members of a class share their multiset of signatures and the same set of
//!    images.
//!
//! The cost is the product of the factorials of the runs of equal signatures: a
//! signature that tells actors apart keeps it near one rename per state.
//!
//! ```
//! use haft::checker::symmetry::{Permutation, Permute, canonical};
//!
//! /// Each actor points at another one.
//! #[derive(Clone, Debug, PartialEq, Eq, Hash)]
//! struct Pointers(Vec<usize>);
//!
//! impl Permute for Pointers {
//!     fn permute(&self, p: &Permutation) -> Self {
//!         Pointers(p.reorder(&self.0).into_iter().map(|to| p.apply(to)).collect())
//!     }
//! }
//!
//! // 0 → 1 → 2 → 0 and 0 → 2 → 1 → 0 are the same cycle, renamed.
//! let a = canonical(&Pointers(vec![1, 2, 0]), 0..3, |_, _| ());
//! let b = canonical(&Pointers(vec![2, 0, 1]), 0..3, |_, _| ());
//! assert_eq!(a, b);
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::hash::Hash;
use std::ops::Range;
use std::sync::Arc;

use stateright::actor::{Actor, ActorModelState, Envelope, Id, Network};

use super::fingerprint::fingerprint;

/// A renaming of actors: actor `old` becomes actor `apply(old)`. Actors outside
/// the permuted group keep their ids.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Permutation {
    new_of_old: Vec<usize>,
}

impl Permutation {
    /// The renaming that puts actor `order[k]` at position `group.start + k`.
    pub fn placing(order: &[usize], group: Range<usize>) -> Permutation {
        let size = group
            .end
            .max(order.iter().map(|o| o + 1).max().unwrap_or(0));
        let mut new_of_old: Vec<usize> = (0..size).collect();
        for (k, &old) in order.iter().enumerate() {
            new_of_old[old] = group.start + k;
        }
        Permutation { new_of_old }
    }

    /// A number that tells this renaming from every other of up to 15
    /// actors (4 bits per actor, and the count), or `None` for a larger one.
    pub fn key(&self) -> Option<u64> {
        if self.new_of_old.len() > 15 || self.new_of_old.iter().any(|&new| new >= 16) {
            return None;
        }
        let packed = self
            .new_of_old
            .iter()
            .rev()
            .fold(0u64, |key, &new| (key << 4) | new as u64);
        Some(packed | ((self.new_of_old.len() as u64) << 60))
    }

    /// The new index of actor `old`.
    pub fn apply(&self, old: usize) -> usize {
        self.new_of_old.get(old).copied().unwrap_or(old)
    }

    /// The new id of actor `old`.
    pub fn id(&self, old: Id) -> Id {
        Id::from(self.apply(usize::from(old)))
    }

    /// A per-actor vector in the new order: the item of actor `old` moves to
    /// position `apply(old)`.
    pub fn reorder<T: Clone>(&self, items: &[T]) -> Vec<T> {
        let mut out = items.to_vec();
        for (old, item) in items.iter().enumerate() {
            let new = self.apply(old);
            if new < out.len() {
                out[new] = item.clone();
            }
        }
        out
    }
}

/// A value that mentions actors and can be renamed.
///
/// Implement it for the model's states, messages, timers, records and history:
/// rename every id, and [`Permutation::reorder`] every vector indexed by actor.
/// Values that mention no actor return a clone ([`permute_as_is!`]).
pub trait Permute: Sized {
    /// This value with every actor renamed by `p`.
    fn permute(&self, p: &Permutation) -> Self;

    /// Whether `p` leaves this value as it is, so that a shared copy of it is
    /// its image. The default, `false`, is always correct; a type whose values
    /// often mention no moved actor can say so to spare building an equal one.
    fn is_fixed_by(&self, p: &Permutation) -> bool {
        let _ = p;
        false
    }
}

/// Implements [`Permute`] as a clone for types that mention no actor.
#[macro_export]
macro_rules! permute_as_is {
    ($($t:ty),* $(,)?) => {
        $(impl $crate::checker::symmetry::Permute for $t {
            fn permute(&self, _: &$crate::checker::symmetry::Permutation) -> Self {
                self.clone()
            }
        })*
    };
}
pub use permute_as_is;

permute_as_is!(
    bool,
    u8,
    u16,
    u32,
    u64,
    usize,
    i8,
    i16,
    i32,
    i64,
    String,
    ()
);

impl Permute for Id {
    fn permute(&self, p: &Permutation) -> Self {
        p.id(*self)
    }
}

impl<T: Permute> Permute for Option<T> {
    fn permute(&self, p: &Permutation) -> Self {
        self.as_ref().map(|t| t.permute(p))
    }
}

impl<T: Permute> Permute for Arc<T> {
    fn permute(&self, p: &Permutation) -> Self {
        Arc::new((**self).permute(p))
    }
}

/// Elements are renamed in place; a vector indexed by actor must be reordered
/// by its owner with [`Permutation::reorder`].
impl<T: Permute> Permute for Vec<T> {
    fn permute(&self, p: &Permutation) -> Self {
        self.iter().map(|t| t.permute(p)).collect()
    }
}

impl<T: Permute + Ord> Permute for BTreeSet<T> {
    fn permute(&self, p: &Permutation) -> Self {
        self.iter().map(|t| t.permute(p)).collect()
    }
}

impl<K: Permute + Ord, V: Permute> Permute for BTreeMap<K, V> {
    fn permute(&self, p: &Permutation) -> Self {
        self.iter()
            .map(|(k, v)| (k.permute(p), v.permute(p)))
            .collect()
    }
}

impl<A: Permute, B: Permute> Permute for (A, B) {
    fn permute(&self, p: &Permutation) -> Self {
        (self.0.permute(p), self.1.permute(p))
    }
}

impl<A: Permute, B: Permute, C: Permute> Permute for (A, B, C) {
    fn permute(&self, p: &Permutation) -> Self {
        (self.0.permute(p), self.1.permute(p), self.2.permute(p))
    }
}

impl<M: Permute> Permute for Envelope<M> {
    fn permute(&self, p: &Permutation) -> Self {
        Envelope {
            src: p.id(self.src),
            dst: p.id(self.dst),
            msg: self.msg.permute(p),
        }
    }
}

/// A stateright actor system on an unordered duplicating network: actor
/// states, timers, random choices, crash flags and storages move with their
/// actor; envelopes and history are renamed. (The network's last-delivered
/// envelope is dropped: haft's models forget it.)
impl<A, H> Permute for ActorModelState<A, H>
where
    A: Actor,
    A::State: Permute,
    A::Msg: Permute,
    A::Timer: Permute,
    A::Random: Permute,
    A::Storage: Permute + Clone,
    H: Permute,
{
    fn permute(&self, p: &Permutation) -> Self {
        let network =
            Network::new_unordered_duplicating(self.network.iter_all().map(|env| Envelope {
                src: p.id(env.src),
                dst: p.id(env.dst),
                msg: env.msg.permute(p),
            }));
        let timers_set = p
            .reorder(&self.timers_set)
            .iter()
            .map(|timers| {
                let mut renamed = stateright::actor::Timers::new();
                for timer in timers.iter() {
                    renamed.set(timer.permute(p));
                }
                renamed
            })
            .collect();
        let random_choices = p
            .reorder(&self.random_choices)
            .iter()
            .map(|choices| {
                let mut renamed = choices.clone();
                renamed.map = choices
                    .map
                    .iter()
                    .map(|(k, v)| (k.clone(), v.iter().map(|r| r.permute(p)).collect()))
                    .collect();
                renamed
            })
            .collect();
        ActorModelState {
            actor_states: p
                .reorder(&self.actor_states)
                .iter()
                .map(|s| Arc::new((**s).permute(p)))
                .collect(),
            network,
            timers_set,
            random_choices,
            crashed: p.reorder(&self.crashed),
            history: self.history.permute(p),
            actor_storages: p.reorder(&self.actor_storages).permute(p),
        }
    }
}

/// All orderings of `items` that keep runs of equal keys together, varying the
/// order within each run.
fn orderings<K: Ord>(sorted: &[(K, usize)]) -> Vec<Vec<usize>> {
    let mut orderings = vec![Vec::new()];
    let mut start = 0;
    while start < sorted.len() {
        let mut end = start + 1;
        while end < sorted.len() && sorted[end].0 == sorted[start].0 {
            end += 1;
        }
        let run: Vec<usize> = sorted[start..end].iter().map(|(_, i)| *i).collect();
        let run_orders = permutations(&run);
        orderings = orderings
            .into_iter()
            .flat_map(|prefix| {
                run_orders.iter().map(move |order| {
                    let mut next = prefix.clone();
                    next.extend(order);
                    next
                })
            })
            .collect();
        start = end;
    }
    orderings
}

fn permutations(items: &[usize]) -> Vec<Vec<usize>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut all = Vec::new();
    for (i, first) in items.iter().enumerate() {
        let mut rest = items.to_vec();
        rest.remove(i);
        for mut tail in permutations(&rest) {
            tail.insert(0, *first);
            all.push(tail);
        }
    }
    all
}

/// Every renaming of the actors in `group` (`group.len()!` of them): for tests
/// that check a canonicalisation against brute force.
pub fn renamings(group: Range<usize>) -> Vec<Permutation> {
    let members: Vec<usize> = group.clone().collect();
    permutations(&members)
        .into_iter()
        .map(|order| Permutation::placing(&order, group.clone()))
        .collect()
}

/// The canonical representative of `state`'s class under renamings of the
/// actors in `group` (see the module doc). `signature(state, actor)` describes
/// an actor without naming any other.
pub fn canonical<S, K>(state: &S, group: Range<usize>, signature: impl Fn(&S, usize) -> K) -> S
where
    S: Permute + Hash,
    K: Ord,
{
    let signatures = group.clone().map(|a| signature(state, a)).collect();
    canonical_by(state, group, signatures)
}

/// [`canonical`], with the signatures of the actors of `group` (in order)
/// computed by the caller, which may find them all in one pass over the state.
pub fn canonical_by<S, K>(state: &S, group: Range<usize>, signatures: Vec<K>) -> S
where
    S: Permute + Hash,
    K: Ord,
{
    let mut sorted: Vec<(K, usize)> = signatures.into_iter().zip(group.clone()).collect();
    sorted.sort_by(|x, y| x.0.cmp(&y.0));
    let mut best: Option<(u64, S)> = None;
    for order in orderings(&sorted) {
        let image = state.permute(&Permutation::placing(&order, group.clone()));
        let key = fingerprint(&image);
        if best.as_ref().is_none_or(|(k, _)| key < *k) {
            best = Some((key, image));
        }
    }
    match best {
        Some((_, image)) => image,
        None => state.permute(&Permutation::placing(&[], group)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Actor `i` holds a value and points at another actor; the group is 1..4
    /// (actor 0 is special and never moves).
    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    struct System {
        values: Vec<u8>,
        points_at: Vec<usize>,
        inbox: BTreeSet<(usize, u8)>,
    }

    impl Permute for System {
        fn permute(&self, p: &Permutation) -> Self {
            System {
                values: p.reorder(&self.values),
                points_at: p
                    .reorder(&self.points_at)
                    .into_iter()
                    .map(|a| p.apply(a))
                    .collect(),
                inbox: self.inbox.iter().map(|(a, v)| (p.apply(*a), *v)).collect(),
            }
        }
    }

    #[test]
    fn every_member_of_a_class_has_the_same_representative() {
        let states = [
            System {
                values: vec![9, 1, 1, 2],
                points_at: vec![1, 2, 3, 1],
                inbox: BTreeSet::from([(2, 7), (3, 1)]),
            },
            System {
                values: vec![0, 5, 5, 5],
                points_at: vec![0, 2, 3, 1],
                inbox: BTreeSet::new(),
            },
        ];
        for state in states {
            let signature = |s: &System, a: usize| s.values[a];
            let representative = canonical(&state, 1..4, signature);
            for p in renamings(1..4) {
                let renamed = state.permute(&p);
                assert_eq!(renamed.values[0], state.values[0], "actor 0 stays");
                assert_eq!(canonical(&renamed, 1..4, signature), representative);
            }
        }
    }

    #[test]
    fn renamings_have_different_keys() {
        let mut keys: Vec<u64> = renamings(1..5)
            .iter()
            .chain(&renamings(0..3))
            .chain(&renamings(2..6))
            .filter_map(Permutation::key)
            .collect();
        let all = keys.len();
        assert_eq!(all, 24 + 6 + 24);
        keys.sort();
        keys.dedup();
        // Identities of different sizes are different renamings.
        assert_eq!(keys.len(), all);
        assert_eq!(Permutation::placing(&[], 0..20).key(), None);
    }

    #[test]
    fn states_of_different_classes_keep_different_representatives() {
        let cycle = System {
            values: vec![0, 0, 0, 0],
            points_at: vec![0, 2, 3, 1],
            inbox: BTreeSet::new(),
        };
        let pairs = System {
            values: vec![0, 0, 0, 0],
            points_at: vec![0, 2, 1, 3],
            inbox: BTreeSet::new(),
        };
        let none = |_: &System, _: usize| ();
        assert_ne!(canonical(&cycle, 1..4, none), canonical(&pairs, 1..4, none));
    }
}
