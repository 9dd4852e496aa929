//! The set of visited states: one 64-bit fingerprint per state, in a table split
//! into shards that each grow on their own.
//!
//! A shard is an open-addressing table of `u64` keys (0 marks an empty slot; a
//! fingerprint is never 0) probed linearly, behind its own lock. Splitting the
//! table keeps both lock contention and the cost of growth small: a shard that
//! fills up doubles alone, so the memory held twice during a resize is one shard's,
//! not the whole table's. Optional columns ride along with each key: the state's
//! index (for the graph that liveness needs) and the bits of `eventually`
//! properties still pending on some path into the state.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// log2 of the number of shards.
const SHARD_BITS: u32 = 8;
/// A shard grows when it would be more than 3/4 full.
const MAX_LOAD_NUMERATOR: usize = 3;
const MAX_LOAD_DENOMINATOR: usize = 4;
const INITIAL_SLOTS: usize = 64;

/// What an insertion found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Insert {
    /// The key was new; it was given this index.
    New(u32),
    /// The key was there already, with this index. `grown` says whether the
    /// insertion added pending `eventually` bits it did not have.
    Seen { index: u32, grown: bool },
}

/// Which optional columns the table keeps.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Columns {
    /// A dense index per key, assigned in insertion order.
    pub index: bool,
    /// Pending `eventually` bits per key.
    pub bits: bool,
}

struct Shard {
    keys: Vec<u64>,
    indices: Vec<u32>,
    bits: Vec<u64>,
    len: usize,
}

impl Shard {
    fn new(columns: Columns) -> Shard {
        Shard {
            keys: vec![0; INITIAL_SLOTS],
            indices: if columns.index {
                vec![0; INITIAL_SLOTS]
            } else {
                Vec::new()
            },
            bits: if columns.bits {
                vec![0; INITIAL_SLOTS]
            } else {
                Vec::new()
            },
            len: 0,
        }
    }

    fn slot_of(&self, key: u64) -> usize {
        let mask = self.keys.len() - 1;
        // The low bits pick the slot; the high bits picked the shard.
        let mut slot = key as usize & mask;
        loop {
            let here = self.keys[slot];
            if here == key || here == 0 {
                return slot;
            }
            slot = (slot + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let slots = self.keys.len() * 2;
        let old_keys = std::mem::replace(&mut self.keys, vec![0; slots]);
        let old_indices = std::mem::take(&mut self.indices);
        let old_bits = std::mem::take(&mut self.bits);
        if !old_indices.is_empty() {
            self.indices = vec![0; slots];
        }
        if !old_bits.is_empty() {
            self.bits = vec![0; slots];
        }
        for (old, &key) in old_keys.iter().enumerate() {
            if key == 0 {
                continue;
            }
            let slot = self.slot_of(key);
            self.keys[slot] = key;
            if let Some(index) = old_indices.get(old) {
                self.indices[slot] = *index;
            }
            if let Some(bits) = old_bits.get(old) {
                self.bits[slot] = *bits;
            }
        }
    }

    fn bytes(&self) -> usize {
        self.keys.capacity() * 8 + self.indices.capacity() * 4 + self.bits.capacity() * 8
    }
}

/// A concurrent set of fingerprints (see the module doc).
pub(crate) struct Table {
    shards: Box<[Mutex<Shard>]>,
    len: AtomicUsize,
    next_index: AtomicUsize,
}

impl Table {
    pub(crate) fn new(columns: Columns) -> Table {
        Table {
            shards: (0..1usize << SHARD_BITS)
                .map(|_| Mutex::new(Shard::new(columns)))
                .collect(),
            len: AtomicUsize::new(0),
            next_index: AtomicUsize::new(0),
        }
    }

    fn shard(&self, key: u64) -> std::sync::MutexGuard<'_, Shard> {
        let shard = &self.shards[(key >> (64 - SHARD_BITS)) as usize];
        // A worker that panicked is reported by the search; the table itself is
        // never left half-written by a panic (no user code runs under the lock).
        shard
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Inserts `key` (never 0) with pending `eventually` bits `bits` (ignored
    /// unless the table keeps them).
    pub(crate) fn insert(&self, key: u64, bits: u64) -> Insert {
        debug_assert_ne!(key, 0, "a fingerprint is never 0");
        let mut shard = self.shard(key);
        let slot = shard.slot_of(key);
        if shard.keys[slot] == key {
            let index = shard.indices.get(slot).copied().unwrap_or(0);
            let grown = match shard.bits.get_mut(slot) {
                Some(stored) if bits & !*stored != 0 => {
                    *stored |= bits;
                    true
                }
                _ => false,
            };
            return Insert::Seen { index, grown };
        }
        let mut slot = slot;
        if (shard.len + 1) * MAX_LOAD_DENOMINATOR > shard.keys.len() * MAX_LOAD_NUMERATOR {
            shard.grow();
            slot = shard.slot_of(key);
        }
        shard.keys[slot] = key;
        shard.len += 1;
        let mut index = 0;
        if !shard.indices.is_empty() {
            let next = self.next_index.fetch_add(1, Ordering::Relaxed);
            index = u32::try_from(next).unwrap_or(u32::MAX);
            shard.indices[slot] = index;
        }
        if !shard.bits.is_empty() {
            shard.bits[slot] = bits;
        }
        drop(shard);
        self.len.fetch_add(1, Ordering::Relaxed);
        Insert::New(index)
    }

    /// Whether `key` is in the table.
    #[cfg(test)]
    pub(crate) fn contains(&self, key: u64) -> bool {
        let shard = self.shard(key);
        let slot = shard.slot_of(key);
        shard.keys[slot] == key
    }

    /// How many keys the table holds.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// The memory the table holds, in bytes.
    #[allow(dead_code)]
    pub(crate) fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().map_or(0, |s| s.bytes()))
            .sum()
    }

    /// The key of each index, when the table keeps indices.
    pub(crate) fn keys_by_index(&self) -> Vec<u64> {
        let mut keys = vec![0; self.next_index.load(Ordering::Relaxed)];
        for shard in self.shards.iter() {
            let shard = shard
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for (slot, &key) in shard.keys.iter().enumerate() {
                if key != 0 {
                    if let Some(&index) = shard.indices.get(slot) {
                        keys[index as usize] = key;
                    }
                }
            }
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_after_growth_and_keep_their_columns() {
        let table = Table::new(Columns {
            index: true,
            bits: true,
        });
        let key = |i: u64| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for i in 0..10_000 {
            assert_eq!(table.insert(key(i), 1), Insert::New(i as u32));
        }
        assert_eq!(table.len(), 10_000);
        for i in 0..10_000 {
            assert!(table.contains(key(i)));
            assert_eq!(
                table.insert(key(i), 1),
                Insert::Seen {
                    index: i as u32,
                    grown: false
                }
            );
        }
        assert_eq!(
            table.insert(key(7), 2),
            Insert::Seen {
                index: 7,
                grown: true
            }
        );
        assert!(!table.contains(key(10_001)));
        let keys = table.keys_by_index();
        assert_eq!(keys[42], key(42));
    }
}
