//! Reassembly of messages sent in several fragments, in bounded memory.
//!
//! A message is delivered once every one of its fragments has arrived, in any
//! order; a fragment that arrives twice is ignored; a message whose fragments
//! stop coming is forgotten after [`ReassemblyLimits::max_age`], or earlier
//! when the bytes held for unfinished messages would exceed
//! [`ReassemblyLimits::max_bytes`] (the oldest goes first). A forgotten
//! message is simply lost. So the receiver sees each message whole or not at
//! all, possibly twice (if all its fragments are sent again), and in any order:
//! the unordered, duplicating, lossy network the models assume.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{Fragment, MAX_FRAGMENT};

/// How much unfinished work the receiver keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReassemblyLimits {
    /// The bytes received for messages not yet complete, all senders together.
    pub max_bytes: usize,
    /// How many messages may be incomplete at once.
    pub max_messages: usize,
    /// How long a message may stay incomplete.
    pub max_age: Duration,
}

impl Default for ReassemblyLimits {
    fn default() -> Self {
        ReassemblyLimits {
            max_bytes: 256 << 20,
            max_messages: 1024,
            max_age: Duration::from_secs(10),
        }
    }
}

/// What reassembly has done, for a node's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    /// Fragments taken into an unfinished message.
    pub fragments: u64,
    /// Messages completed.
    pub completed: u64,
    /// Fragments ignored because that fragment had already arrived.
    pub duplicates: u64,
    /// Fragments ignored because they disagree with the earlier fragments of
    /// their message about its size.
    pub inconsistent: u64,
    /// Messages forgotten before they were complete (too old, or evicted to
    /// stay within the limits).
    pub incomplete: u64,
}

/// Messages in pieces, keyed by where they came from and their sender's
/// number for them.
#[derive(Debug, Default)]
pub struct Reassembly {
    limits: ReassemblyLimits,
    partial: HashMap<(SocketAddr, u64, u64), Partial>,
    held_bytes: usize,
    stats: ReassemblyStats,
}

#[derive(Debug)]
struct Partial {
    started: Instant,
    count: u16,
    total: usize,
    arrived: Vec<bool>,
    missing: u16,
    // Zeroed on allocation: large buffers are mapped lazily, so memory follows
    // the bytes that arrived.
    data: Vec<u8>,
    held: usize,
}

impl Reassembly {
    /// Reassembly within `limits`.
    pub fn new(limits: ReassemblyLimits) -> Reassembly {
        Reassembly {
            limits,
            ..Reassembly::default()
        }
    }

    /// What it has done so far.
    pub fn stats(&self) -> ReassemblyStats {
        self.stats
    }

    /// Bytes held for unfinished messages.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Messages not yet complete.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }

    /// Takes one fragment (already checked by [`super::open`]) that arrived
    /// from `from` at `now`; returns the whole message's payload once its last
    /// fragment is in.
    pub fn push(
        &mut self,
        from: SocketAddr,
        fragment: &Fragment<'_>,
        now: Instant,
    ) -> Option<Vec<u8>> {
        if fragment.count <= 1 {
            self.stats.completed += 1;
            return Some(fragment.payload.to_vec());
        }
        self.expire(now);
        let key = (from, fragment.sender, fragment.message);
        if !self.partial.contains_key(&key) {
            if fragment.payload.len() > self.limits.max_bytes {
                self.stats.incomplete += 1;
                return None;
            }
            while self.partial.len() >= self.limits.max_messages.max(1)
                || self.held_bytes + fragment.payload.len() > self.limits.max_bytes
            {
                if !self.evict_oldest() {
                    break;
                }
            }
            self.partial.insert(
                key,
                Partial {
                    started: now,
                    count: fragment.count,
                    total: fragment.total,
                    arrived: vec![false; usize::from(fragment.count)],
                    missing: fragment.count,
                    data: vec![0; fragment.total],
                    held: 0,
                },
            );
        } else if self.held_bytes + fragment.payload.len() > self.limits.max_bytes {
            // Make room from older messages, never from this one.
            let started = self.partial.get(&key).map(|p| p.started);
            while self.held_bytes + fragment.payload.len() > self.limits.max_bytes {
                let oldest = self.oldest();
                if oldest.is_none() || oldest.map(|(_, s)| s) >= started {
                    break;
                }
                self.evict_oldest();
            }
            if self.held_bytes + fragment.payload.len() > self.limits.max_bytes {
                self.forget(&key);
                return None;
            }
        }
        let partial = self.partial.get_mut(&key)?;
        if partial.count != fragment.count || partial.total != fragment.total {
            self.stats.inconsistent += 1;
            return None;
        }
        let index = usize::from(fragment.index);
        match partial.arrived.get_mut(index) {
            Some(true) => {
                self.stats.duplicates += 1;
                return None;
            }
            Some(arrived) => *arrived = true,
            None => {
                self.stats.inconsistent += 1;
                return None;
            }
        }
        let at = index * MAX_FRAGMENT;
        let Some(slot) = partial.data.get_mut(at..at + fragment.payload.len()) else {
            self.stats.inconsistent += 1;
            return None;
        };
        slot.copy_from_slice(fragment.payload);
        partial.held += fragment.payload.len();
        partial.missing -= 1;
        self.held_bytes += fragment.payload.len();
        self.stats.fragments += 1;
        if partial.missing > 0 {
            return None;
        }
        let done = self.partial.remove(&key)?;
        self.held_bytes -= done.held;
        self.stats.completed += 1;
        Some(done.data)
    }

    /// Forgets the messages older than the age limit.
    pub fn expire(&mut self, now: Instant) {
        let max_age = self.limits.max_age;
        let before = self.partial.len();
        let mut released = 0;
        self.partial.retain(|_, partial| {
            let keep = now.saturating_duration_since(partial.started) <= max_age;
            if !keep {
                released += partial.held;
            }
            keep
        });
        self.held_bytes -= released;
        self.stats.incomplete += (before - self.partial.len()) as u64;
    }

    fn oldest(&self) -> Option<((SocketAddr, u64, u64), Instant)> {
        self.partial
            .iter()
            .min_by_key(|(_, partial)| partial.started)
            .map(|(key, partial)| (*key, partial.started))
    }

    fn evict_oldest(&mut self) -> bool {
        match self.oldest() {
            Some((key, _)) => {
                self.forget(&key);
                true
            }
            None => false,
        }
    }

    fn forget(&mut self, key: &(SocketAddr, u64, u64)) {
        if let Some(partial) = self.partial.remove(key) {
            self.held_bytes -= partial.held;
            self.stats.incomplete += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ClusterKey, encode_message, open};
    use super::*;

    fn addr() -> SocketAddr {
        "127.0.0.1:9".parse().unwrap()
    }

    fn datagrams(message: u64, len: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let bytes = serde_bytes_like(&payload);
        let datagrams = encode_message(3, message, &bytes, None).unwrap();
        (postcard::to_stdvec(&bytes).unwrap(), datagrams)
    }

    // A Vec<u8> serialized as postcard bytes (a length and the bytes).
    fn serde_bytes_like(payload: &[u8]) -> bytes::Bytes {
        bytes::Bytes::copy_from_slice(payload)
    }

    fn push_all(reassembly: &mut Reassembly, datagrams: &[Vec<u8>], now: Instant) -> Vec<Vec<u8>> {
        datagrams
            .iter()
            .filter_map(|d| {
                let fragment = open(d, None).unwrap();
                reassembly.push(addr(), &fragment, now)
            })
            .collect()
    }

    #[test]
    fn fragments_in_any_order_with_duplicates_make_the_message_once() {
        let (payload, mut datagrams) = datagrams(1, 3 * MAX_FRAGMENT + 17);
        assert_eq!(datagrams.len(), 4);
        datagrams.reverse();
        let again = datagrams[1].clone();
        datagrams.insert(2, again);
        let mut reassembly = Reassembly::default();
        let done = push_all(&mut reassembly, &datagrams, Instant::now());
        assert_eq!(done, vec![payload]);
        assert_eq!(reassembly.stats().duplicates, 1);
        assert_eq!((reassembly.pending(), reassembly.held_bytes()), (0, 0));
    }

    #[test]
    fn an_incomplete_message_is_forgotten_when_too_old() {
        let (_, datagrams) = datagrams(2, 2 * MAX_FRAGMENT);
        let mut reassembly = Reassembly::default();
        let start = Instant::now();
        assert!(push_all(&mut reassembly, &datagrams[..1], start).is_empty());
        assert_eq!(reassembly.pending(), 1);
        reassembly.expire(start + Duration::from_secs(11));
        assert_eq!((reassembly.pending(), reassembly.held_bytes()), (0, 0));
        assert_eq!(reassembly.stats().incomplete, 1);
        // Its last fragment, late, starts a message that never completes.
        assert!(
            push_all(
                &mut reassembly,
                &datagrams[1..],
                start + Duration::from_secs(12)
            )
            .is_empty()
        );
    }

    #[test]
    fn memory_stays_within_the_limit_by_evicting_the_oldest() {
        let limits = ReassemblyLimits {
            max_bytes: 3 * MAX_FRAGMENT,
            max_messages: 2,
            max_age: Duration::from_secs(10),
        };
        let mut reassembly = Reassembly::new(limits);
        let start = Instant::now();
        for message in 0..5u64 {
            let (_, datagrams) = datagrams(message, 4 * MAX_FRAGMENT);
            let at = start + Duration::from_millis(message);
            assert!(push_all(&mut reassembly, &datagrams[..2], at).is_empty());
            assert!(reassembly.held_bytes() <= limits.max_bytes);
            assert!(reassembly.pending() <= 2);
        }
        // The newest message can still complete.
        let (payload, datagrams) = datagrams(9, 2 * MAX_FRAGMENT);
        let done = push_all(
            &mut reassembly,
            &datagrams,
            start + Duration::from_millis(9),
        );
        assert_eq!(done, vec![payload]);
    }

    #[test]
    fn tagged_fragments_reassemble_under_the_key() {
        let key = ClusterKey::new(b"0123456789abcdef").unwrap();
        let payload = bytes::Bytes::from(vec![7u8; 2 * MAX_FRAGMENT]);
        let datagrams = encode_message(4, 11, &payload, Some(&key)).unwrap();
        let mut reassembly = Reassembly::default();
        let mut done = None;
        for datagram in &datagrams {
            assert!(open(datagram, None).is_err(), "a tag needs the key");
            let fragment = open(datagram, Some(&key)).unwrap();
            done = done.or(reassembly.push(addr(), &fragment, Instant::now()));
        }
        let back: bytes::Bytes = postcard::from_bytes(&done.unwrap()).unwrap();
        assert_eq!(back, payload);
    }
}
