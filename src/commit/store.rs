//! [`KeyMap`]: a participant's maps from keys — its committed [`Store`] and
//! its lock table.
//!
//! A hash map, because a store of many keys is what every commit writes into
//! and every read looks up: an ordered map compares each key with a dozen
//! others on the way down (keys that share long prefixes, as `user:000123`
//! does, make each comparison a full `memcmp`), which measured as the largest
//! single cost of a participant under many-key writes (verification/REPORT.md,
//! "Redis protocol").
//!
//! The lock table is looked up and changed for every key of every
//! transaction in the same way.
//!
//! Nothing observable depends on the map's order, so its hasher may be seeded
//! at random, which keeps crafted keys from piling into one bucket: aHash's
//! `RandomState`, several times faster than std's SipHash (SipHash was about
//! 8% of a participant's event loop under many-key writes; verification/
//! REPORT.md, "Redis protocol"). Whatever walks the keys in an order others
//! see — a key handoff's chunks, a checkpoint's bytes, `haft inspect` — walks
//! them sorted ([`Store::sorted`]); equality, hashing and ordering are those
//! of the set of entries, so two stores with the same entries are the same
//! state for the model checker whatever their seeds.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::message::{Key, Versioned, collect_map};

/// A map from keys whose order is never seen: a hash map whose equality,
/// hashing, ordering and serialized form are those of its set of entries,
/// and whose walks in an order others see go through [`KeyMap::sorted`]
/// (see src/commit/store.rs).
#[derive(Clone, PartialEq, Eq)]
pub struct KeyMap<V> {
    entries: HashMap<Key, V, ahash::RandomState>,
}

/// The committed value of every key a participant holds.
pub type Store = KeyMap<Versioned>;

impl<V> Default for KeyMap<V> {
    fn default() -> Self {
        KeyMap {
            entries: HashMap::default(),
        }
    }
}

impl<V> KeyMap<V> {
    /// An empty map.
    pub fn new() -> KeyMap<V> {
        KeyMap::default()
    }

    /// The value of `key`, if the map holds it.
    pub fn get(&self, key: &[u8]) -> Option<&V> {
        self.entries.get(key)
    }

    /// The value of `key`, to change, if the map holds it.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        self.entries.get_mut(key)
    }

    /// The value of `key`, set to `V::default()` first if the map holds none.
    pub fn get_or_default(&mut self, key: &Key) -> &mut V
    where
        V: Default,
    {
        self.entries.entry(key.clone()).or_default()
    }

    /// Sets `key` to `value`, giving back the value it replaces.
    pub fn insert(&mut self, key: Key, value: V) -> Option<V> {
        self.entries.insert(key, value)
    }

    /// Drops `key`, giving back its value.
    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        self.entries.remove(key)
    }

    /// How many keys the map holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map holds no key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry, in no particular order: for what does not depend on it.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &V)> {
        self.entries.iter()
    }

    /// Every entry, sorted by key: for whatever others see in order.
    pub fn sorted(&self) -> Vec<(&Key, &V)> {
        let mut entries: Vec<_> = self.entries.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        entries
    }
}

impl<V> FromIterator<(Key, V)> for KeyMap<V> {
    fn from_iter<I: IntoIterator<Item = (Key, V)>>(entries: I) -> KeyMap<V> {
        KeyMap {
            entries: entries.into_iter().collect(),
        }
    }
}

/// The hash of the set of entries: each entry hashed alone with a fixed
/// hasher, the results added, so the map's order and seed do not count.
impl<V: Hash> Hash for KeyMap<V> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let sum = self.entries.iter().fold(0u64, |sum, entry| {
            let mut hasher = DefaultHasher::new();
            entry.hash(&mut hasher);
            sum.wrapping_add(hasher.finish())
        });
        state.write_usize(self.entries.len());
        state.write_u64(sum);
    }
}

/// Ordered as the sorted lists of entries are.
impl<V: Ord> Ord for KeyMap<V> {
    fn cmp(&self, other: &KeyMap<V>) -> Ordering {
        self.sorted().cmp(&other.sorted())
    }
}

impl<V: Ord> PartialOrd for KeyMap<V> {
    fn partial_cmp(&self, other: &KeyMap<V>) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Shown as a map in key order.
impl<V: fmt::Debug> fmt::Debug for KeyMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.sorted()).finish()
    }
}

/// Written as a map in key order (the format an ordered map had), so that
/// the same store always gives the same bytes.
impl<V: Serialize> Serialize for KeyMap<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (key, value) in self.sorted() {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for KeyMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<KeyMap<V>, D::Error> {
        collect_map(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::NodeId;
    use crate::commit::TxnId;

    fn versioned(value: &'static [u8], seq: u64) -> Versioned {
        Versioned {
            value: Key::from_static(value),
            version: TxnId::new(NodeId(1), 1, seq).expect("a valid id"),
        }
    }

    fn entries() -> Vec<(Key, Versioned)> {
        (0..50u64)
            .map(|i| (Key::from(format!("user:{i:06}")), versioned(b"v", i)))
            .collect()
    }

    /// Built in opposite orders (and so with different seeds and bucket
    /// histories), two stores of the same entries are equal, hash alike,
    /// compare equal and serialize to the same bytes.
    #[test]
    fn the_same_entries_are_the_same_store_whatever_the_order() {
        let forward: Store = entries().into_iter().collect();
        let backward: Store = entries().into_iter().rev().collect();
        assert_eq!(forward, backward);
        assert_eq!(forward.cmp(&backward), Ordering::Equal);
        let hash = |store: &Store| {
            let mut hasher = DefaultHasher::new();
            store.hash(&mut hasher);
            hasher.finish()
        };
        assert_eq!(hash(&forward), hash(&backward));
        let bytes = postcard::to_allocvec(&forward).expect("serializes");
        assert_eq!(bytes, postcard::to_allocvec(&backward).expect("serializes"));
        let mut changed = backward.clone();
        changed.insert(Key::from_static(b"user:000003"), versioned(b"w", 99));
        assert_ne!(hash(&changed), hash(&forward));
        assert_ne!(changed, forward);
        assert_ne!(changed.cmp(&forward), Ordering::Equal);
    }

    /// The bytes are those of the ordered map the store replaced, so a
    /// checkpoint written before reads back, and the other way round.
    #[test]
    fn the_format_is_an_ordered_maps() {
        let ordered: BTreeMap<Key, Versioned> = entries().into_iter().collect();
        let store: Store = entries().into_iter().collect();
        let bytes = postcard::to_allocvec(&ordered).expect("serializes");
        assert_eq!(postcard::to_allocvec(&store).expect("serializes"), bytes);
        let read: Store = postcard::from_bytes(&bytes).expect("reads back");
        assert_eq!(read, store);
        let keys: Vec<&Key> = store.sorted().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ordered.keys().collect::<Vec<_>>());
        assert_eq!(
            store.get(b"user:000007"),
            ordered.get(b"user:000007".as_slice())
        );
    }
}
