//! [`Shared`]: a part of a model's state that successor states share until
//! one of them changes it, and whose fingerprint is computed once.
//!
//! The checker clones a state for every transition and fingerprints every
//! successor. Most transitions change one actor and leave the others, and
//! often the network and the history, as they were; with each such part
//! behind a [`Shared`], a clone is a reference count, and hashing the state
//! hashes each unchanged part as the one 64-bit word remembered from the first
//! time it was hashed. A part is copied only when a transition changes it
//! ([`Shared::make_mut`], copy on write), and rehashed only then.
//!
//! A state's fingerprint is then a hash of its parts' 64-bit hashes rather than
//! of their contents. Two different parts share a hash with probability about
//! 2⁻⁶⁴ per pair, far below the chance, already accepted, that two states
//! share a fingerprint; equality ([`PartialEq`]) still compares contents.
//! `Debug` shows the contents alone, so traces read as before.
//!
//! Under symmetry reduction every successor is renamed before it is
//! fingerprinted. A part remembers its image under the first renaming asked
//! of it (usually its state's canonical one, which its successors mostly share,
//! since a step changes one actor and rarely its place in the order), so a
//! part that a step leaves alone is renamed once, not once per successor.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::atomic::{self, AtomicU64};
use std::sync::{Arc, OnceLock};

use crate::checker::fingerprint;
use crate::checker::symmetry::{Permutation, Permute};

/// A shared, copy-on-write part of a state with a remembered hash (see the
/// [module docs](self)).
pub struct Shared<T> {
    value: Arc<Part<T>>,
    /// The fingerprint of `value`, or 0 until it is first asked for.
    hash: AtomicU64,
}

/// The contents of a part, with its image under one renaming of actors.
struct Part<T> {
    value: T,
    /// The first renaming asked of this part ([`Permutation::key`]) and its
    /// image: `None` if the renaming leaves the part as it is.
    renamed: OnceLock<(u64, Option<Shared<T>>)>,
}

impl<T: Clone> Clone for Part<T> {
    /// A copy to change: its image is not the original's.
    fn clone(&self) -> Self {
        Part::new(self.value.clone())
    }
}

impl<T> Part<T> {
    fn new(value: T) -> Part<T> {
        Part {
            value,
            renamed: OnceLock::new(),
        }
    }
}

impl<T> Shared<T> {
    /// A part holding `value`.
    pub fn new(value: T) -> Shared<T> {
        Shared {
            value: Arc::new(Part::new(value)),
            hash: AtomicU64::new(0),
        }
    }

    /// The part, to change: copied first if another state shares it. Its
    /// hash is computed again the next time it is asked for.
    pub fn make_mut(&mut self) -> &mut T
    where
        T: Clone,
    {
        *self.hash.get_mut() = 0;
        let part = Arc::make_mut(&mut self.value);
        // Changed in place (not shared): its image is stale.
        part.renamed = OnceLock::new();
        &mut part.value
    }

    /// Whether both are the same allocation (then they are equal).
    fn same(&self, other: &Shared<T>) -> bool {
        Arc::ptr_eq(&self.value, &other.value)
    }
}

impl<T: Hash> Shared<T> {
    /// The fingerprint of the contents, computed once per copy.
    pub fn fingerprint(&self) -> u64 {
        match self.hash.load(atomic::Ordering::Relaxed) {
            0 => {
                let hash = fingerprint(&self.value.value);
                self.hash.store(hash, atomic::Ordering::Relaxed);
                hash
            }
            hash => hash,
        }
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value.value
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared {
            value: Arc::clone(&self.value),
            hash: AtomicU64::new(self.hash.load(atomic::Ordering::Relaxed)),
        }
    }
}

impl<T: Default> Default for Shared<T> {
    fn default() -> Self {
        Shared::new(T::default())
    }
}

impl<T: Hash> Hash for Shared<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.fingerprint());
    }
}

impl<T: PartialEq> PartialEq for Shared<T> {
    fn eq(&self, other: &Self) -> bool {
        if self.same(other) {
            return true;
        }
        // Hashes already known and different: different contents.
        let (a, b) = (
            self.hash.load(atomic::Ordering::Relaxed),
            other.hash.load(atomic::Ordering::Relaxed),
        );
        if a != 0 && b != 0 && a != b {
            return false;
        }
        self.value.value == other.value.value
    }
}

impl<T: Eq> Eq for Shared<T> {}

impl<T: PartialOrd> PartialOrd for Shared<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        if self.same(other) {
            return Some(Ordering::Equal);
        }
        self.value.value.partial_cmp(&other.value.value)
    }
}

impl<T: Ord> Ord for Shared<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        if self.same(other) {
            return Ordering::Equal;
        }
        self.value.value.cmp(&other.value.value)
    }
}

/// A renamed part is a new part, hashed afresh; a part the renaming leaves
/// as it is stays shared, with its hash. The image under the first renaming
/// asked is remembered, hashed, and handed out again for that renaming.
impl<T: Permute + Hash> Permute for Shared<T> {
    fn permute(&self, p: &Permutation) -> Self {
        let image = |part: &Shared<T>| -> Option<Shared<T>> {
            let value = &part.value.value;
            (!value.is_fixed_by(p)).then(|| {
                let image = Shared::new(value.permute(p));
                // Hashed here, so that each copy handed out has the hash.
                image.fingerprint();
                image
            })
        };
        let Some(key) = p.key() else {
            return image(self).unwrap_or_else(|| self.clone());
        };
        let (remembered, known) = self.value.renamed.get_or_init(|| (key, image(self)));
        let known = if *remembered == key {
            known.clone()
        } else {
            image(self)
        };
        known.unwrap_or_else(|| self.clone())
    }
}

impl<T: fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.value.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_seen_by_its_copy_alone_and_rehashed() {
        let mut a = Shared::new(vec![1, 2]);
        let b = a.clone();
        let before = a.fingerprint();
        assert_eq!(b.fingerprint(), before);
        a.make_mut().push(3);
        assert_eq!(*b, [1, 2]);
        assert_eq!(*a, [1, 2, 3]);
        assert_ne!(a.fingerprint(), before);
        assert_ne!(a, b);
        a.make_mut().pop();
        assert_eq!(a, b);
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_eq!(format!("{a:?}"), "[1, 2]");
    }

    /// The image under the first renaming asked is handed out again (the
    /// same part, with its hash); another renaming gets its own correct
    /// image, and a part changed in place forgets the image it had.
    #[test]
    fn a_part_remembers_its_image_under_the_first_renaming() {
        use crate::checker::symmetry::Permutation;
        use stateright::actor::Id;
        let ids = |ns: &[usize]| ns.iter().map(|&n| Id::from(n)).collect::<Vec<Id>>();
        let swap = Permutation::placing(&[2, 1], 1..3);
        let rotate = Permutation::placing(&[2, 3, 1], 1..4);
        let mut part = Shared::new(ids(&[0, 1, 2]));
        let first = part.permute(&swap);
        assert_eq!(*first, ids(&[0, 2, 1]));
        assert!(part.permute(&swap).same(&first), "the remembered image");
        let again = part.permute(&swap);
        assert_ne!(
            again.hash.load(atomic::Ordering::Relaxed),
            0,
            "handed out hashed"
        );
        assert_eq!(*part.permute(&rotate), ids(&[0, 3, 1]));
        assert!(part.permute(&swap).same(&first));
        part.make_mut().push(Id::from(2));
        assert_eq!(*part.permute(&swap), ids(&[0, 2, 1, 1]));
        let untouched = Shared::new(ids(&[0, 3]));
        assert_eq!(*untouched.permute(&swap), *untouched);
    }

    #[test]
    fn order_follows_the_contents() {
        let (a, b) = (Shared::new(1), Shared::new(2));
        assert!(a < b);
        assert_eq!(a.cmp(&a.clone()), Ordering::Equal);
        assert_eq!(a.cmp(&Shared::new(1)), Ordering::Equal);
    }
}
