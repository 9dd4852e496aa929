//! [`MemoryBackend`]: the [`Backend`] contract in one process, for tests and
//! local use, with faults that can be injected to drive the front end's retry
//! and WATCH paths deterministically.

use std::collections::{HashMap, VecDeque};
use std::sync::PoisonError;

use bytes::Bytes;

use super::backend::{
    Backend, BackendError, BoxFuture, ClusterInfo, CommitOutcome, Version, Versioned,
};
use crate::sync::{Mutex, MutexGuard};

/// What the next commit meets before it is validated (see
/// [`MemoryBackend::inject`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Refused with [`CommitOutcome::Conflict`], nothing written, as if another
    /// transaction held a lock on one of its keys.
    Conflict,
    /// Refused with [`CommitOutcome::Aborted`] and this reason, nothing written.
    Abort(String),
    /// Answered with [`BackendError::Unavailable`] and this reason, nothing written.
    Unavailable(String),
    /// Another client commits `key = value` (`None` deletes) first; the commit
    /// is then validated as usual, so it conflicts if it read `key`.
    ForeignWrite {
        /// The key written.
        key: Bytes,
        /// Its new value.
        value: Option<Bytes>,
    },
}

/// Counters of what the backend has done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// `read` calls.
    pub reads: u64,
    /// Commits applied (foreign writes included).
    pub commits: u64,
    /// Commits refused with [`CommitOutcome::Conflict`] (injected ones included).
    pub conflicts: u64,
    /// Commits refused with [`CommitOutcome::Aborted`] or
    /// [`BackendError::Unavailable`] (all injected).
    pub aborts: u64,
}

/// A versioned key-value store in memory.
///
/// Versions come from one counter shared by all keys, so a version is never
/// reused; a delete leaves the key with no value and a new version. Each call
/// holds one lock for its whole duration, which makes every commit atomic and
/// every call linearizable.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<Bytes, Versioned>,
    last_version: u64,
    live_keys: u64,
    faults: VecDeque<Fault>,
    conflict_every: u64,
    commit_attempts: u64,
    stats: MemoryStats,
}

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `fault` for the next commit that has none queued before it:
    /// each commit takes at most one fault, in the order injected.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
    }

    /// Refuses every `n`th commit attempt with a conflict (0 turns this off),
    /// counting from now: a steady source of spurious conflicts for stress tests.
    pub fn conflict_every(&self, n: u64) {
        let mut state = self.lock();
        state.conflict_every = n;
        state.commit_attempts = 0;
    }

    /// A key's committed value and version.
    pub fn get(&self, key: &[u8]) -> Versioned {
        self.lock().entries.get(key).cloned().unwrap_or_default()
    }

    /// What the backend has done so far.
    pub fn stats(&self) -> MemoryStats {
        self.lock().stats
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves no half-applied commit (writes
        // are applied after validation, without fallible steps), so the state
        // is usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn apply(&mut self, writes: Vec<(Bytes, Option<Bytes>)>) {
        for (key, value) in writes {
            self.last_version += 1;
            let version = Version(self.last_version);
            let entry = self.entries.entry(key).or_default();
            match (entry.value.is_some(), value.is_some()) {
                (false, true) => self.live_keys += 1,
                (true, false) => self.live_keys -= 1,
                _ => {}
            }
            *entry = Versioned { value, version };
        }
        self.stats.commits += 1;
    }

    fn commit(
        &mut self,
        reads: Vec<(Bytes, Version)>,
        writes: Vec<(Bytes, Option<Bytes>)>,
    ) -> Result<CommitOutcome, BackendError> {
        self.commit_attempts += 1;
        if self.conflict_every > 0 && self.commit_attempts % self.conflict_every == 0 {
            self.stats.conflicts += 1;
            return Ok(CommitOutcome::Conflict);
        }
        match self.faults.pop_front() {
            None => {}
            Some(Fault::Conflict) => {
                self.stats.conflicts += 1;
                return Ok(CommitOutcome::Conflict);
            }
            Some(Fault::Abort(reason)) => {
                self.stats.aborts += 1;
                return Ok(CommitOutcome::Aborted { reason });
            }
            Some(Fault::Unavailable(reason)) => {
                self.stats.aborts += 1;
                return Err(BackendError::Unavailable(reason));
            }
            Some(Fault::ForeignWrite { key, value }) => self.apply(vec![(key, value)]),
        }
        let stale = reads.iter().any(|(key, seen)| {
            let current = self.entries.get(key).map_or(Version::ABSENT, |e| e.version);
            current != *seen
        });
        if stale {
            self.stats.conflicts += 1;
            return Ok(CommitOutcome::Conflict);
        }
        self.apply(writes);
        Ok(CommitOutcome::Committed)
    }
}

impl Backend for MemoryBackend {
    fn read(&self, keys: Vec<Bytes>) -> BoxFuture<'_, Result<Vec<Versioned>, BackendError>> {
        let mut state = self.lock();
        state.stats.reads += 1;
        let values = keys
            .iter()
            .map(|key| state.entries.get(key).cloned().unwrap_or_default())
            .collect();
        Box::pin(std::future::ready(Ok(values)))
    }

    fn commit(
        &self,
        reads: Vec<(Bytes, Version)>,
        writes: Vec<(Bytes, Option<Bytes>)>,
    ) -> BoxFuture<'_, Result<CommitOutcome, BackendError>> {
        let outcome = self.lock().commit(reads, writes);
        Box::pin(std::future::ready(outcome))
    }

    fn info(&self) -> BoxFuture<'_, Result<ClusterInfo, BackendError>> {
        let state = self.lock();
        let info = ClusterInfo {
            epoch: 0,
            members: vec!["memory".to_owned()],
            commits: state.stats.commits,
            aborts: state.stats.conflicts + state.stats.aborts,
            keys: state.live_keys,
        };
        Box::pin(std::future::ready(Ok(info)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block<T>(future: BoxFuture<'_, T>) -> T {
        // Every MemoryBackend future is ready at once.
        let waker = std::task::Waker::noop();
        let mut context = std::task::Context::from_waker(waker);
        let mut future = future;
        match future.as_mut().poll(&mut context) {
            std::task::Poll::Ready(value) => value,
            std::task::Poll::Pending => unreachable!("MemoryBackend futures are ready"),
        }
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn versions_change_on_every_write_and_deletes_keep_one() {
        let store = MemoryBackend::new();
        assert_eq!(store.get(b"k"), Versioned::default());
        let set = vec![(b("k"), Some(b("1")))];
        assert_eq!(
            block(store.commit(vec![], set)),
            Ok(CommitOutcome::Committed)
        );
        let first = store.get(b"k");
        assert_eq!(first.value, Some(b("1")));
        assert_ne!(first.version, Version::ABSENT);
        let delete = vec![(b("k"), None)];
        assert_eq!(
            block(store.commit(vec![], delete)),
            Ok(CommitOutcome::Committed)
        );
        let deleted = store.get(b"k");
        assert_eq!(deleted.value, None);
        assert!(
            deleted.version > first.version,
            "a delete gets a new version"
        );
        assert_eq!(block(store.info()).map(|i| i.keys), Ok(0));
    }

    #[test]
    fn a_stale_read_refuses_the_whole_commit() {
        let store = MemoryBackend::new();
        block(store.commit(vec![], vec![(b("a"), Some(b("1")))])).ok();
        let seen = store.get(b"a").version;
        block(store.commit(vec![], vec![(b("a"), Some(b("2")))])).ok();
        let writes = vec![(b("a"), Some(b("3"))), (b("b"), Some(b("3")))];
        assert_eq!(
            block(store.commit(vec![(b("a"), seen)], writes)),
            Ok(CommitOutcome::Conflict)
        );
        assert_eq!(store.get(b"a").value, Some(b("2")));
        assert_eq!(
            store.get(b"b"),
            Versioned::default(),
            "nothing of it is written"
        );
    }

    #[test]
    fn injected_faults_come_in_order_one_per_commit() {
        let store = MemoryBackend::new();
        store.inject(Fault::Conflict);
        store.inject(Fault::ForeignWrite {
            key: b("x"),
            value: Some(b("foreign")),
        });
        let write = || vec![(b("y"), Some(b("mine")))];
        assert_eq!(
            block(store.commit(vec![], write())),
            Ok(CommitOutcome::Conflict)
        );
        // The foreign write lands first; a commit that read x at ABSENT then conflicts.
        let reads = vec![(b("x"), Version::ABSENT)];
        assert_eq!(
            block(store.commit(reads, write())),
            Ok(CommitOutcome::Conflict)
        );
        assert_eq!(store.get(b"x").value, Some(b("foreign")));
        assert_eq!(
            block(store.commit(vec![], write())),
            Ok(CommitOutcome::Committed)
        );
        let stats = store.stats();
        assert_eq!((stats.commits, stats.conflicts), (2, 2));
    }
}
