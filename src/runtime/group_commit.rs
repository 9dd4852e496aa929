//! The save barrier: sends leave only after the saves they follow are durable,
//! and saves close in time share one fsync (group commit).
//!
//! # Contract
//!
//! The event loop calls [`GroupCommit::submit`] once per handler, with that
//! handler's save (if any) and its sends, in the order the handlers ran. A
//! save is the actor's whole record: it replaces every earlier one.
//!
//! - **Barrier.** A send is released only after every save submitted before
//!   it or with it is durable — not only its own handler's. A handler that
//!   saves nothing may still send something that an earlier save made true
//!   (a repeated Yes vote rests on the prepared record), so it waits for that
//!   save too. This is what the models assume of a node: its saves are
//!   durable before anything that follows them leaves the process.
//! - **Group commit.** A flusher thread persists only the latest record
//!   submitted. Saves submitted while it was persisting the previous one are
//!   covered by a single [`Persist::persist`] (one fsync), after which all the
//!   sends they held are released together.
//! - **Order.** Sends are released in submission order, each batch with one
//!   call of the release function. A batch with no save outstanding is released
//!   at once on the submitting thread; otherwise the flusher releases it.
//! - **Never blocks on the disk.** `submit` takes a lock that the flusher
//!   never holds while persisting. It may wait for a release in progress (a
//!   socket send), never for an fsync.
//! - **Failure is final.** If a persist fails, the error is kept: nothing held
//!   is ever released, and every later `submit` and the `shutdown` return
//!   [`GroupCommitError::PersistFailed`]. The node must stop; on restart it
//!   recovers from the last record that was durable.
//! - **Shutdown** persists the pending record, releases the sends it held and
//!   joins the flusher. Dropping a `GroupCommit` does the same, ignoring errors.
//!
//! # Locks
//!
//! Two mutexes: the state, and the release function. The only nesting is
//! state → release: whoever takes sends out of the state takes the release
//! lock before letting go of the state, so batches reach the release function
//! in the order they left the state. Nobody waits for the state while holding
//! the release lock, so the two cannot deadlock. The flusher waits on one
//! condition variable and nothing else waits; the loom suite
//! (verification/loom.rs) checks the barrier, the order, shutdown and failure
//! under every interleaving it explores.

use std::collections::VecDeque;

use thiserror::Error;

use super::storage::{DurableFile, StorageError};
use crate::sync::{Arc, Condvar, Mutex, MutexGuard, thread};

/// Where the flusher writes records: a [`DurableFile`], or a test's fake.
pub trait Persist: Send + 'static {
    /// Makes `record` durable, replacing the previous one. When this returns
    /// `Ok`, the record survives a crash.
    fn persist(&mut self, record: &[u8]) -> Result<(), StorageError>;
}

impl Persist for DurableFile {
    fn persist(&mut self, record: &[u8]) -> Result<(), StorageError> {
        self.store(record)
    }
}

/// Why the save barrier stopped.
#[derive(Clone, Debug, Error)]
pub enum GroupCommitError {
    /// A record could not be made durable. The sends that waited for it were
    /// not released and never will be.
    #[error(
        "a save could not be made durable, so the sends waiting for it were held back: {source}; \
         stop the node, fix the storage and restart it (it recovers from the last durable record)"
    )]
    PersistFailed {
        /// The storage error. Shared because every later call reports it.
        // std's Arc, not crate::sync's: an immutable value, not a place that
        // threads synchronise on, and std's Arc forwards `Error`.
        #[source]
        source: std::sync::Arc<StorageError>,
    },
    /// The flusher thread panicked, in [`Persist::persist`] or in the release
    /// function.
    #[error(
        "the group-commit flusher thread panicked (in persist or in release); \
         stop the node: its held sends were not released"
    )]
    FlusherPanicked,
}

/// Counters of a [`GroupCommit`], for status output and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupCommitStats {
    /// Saves submitted.
    pub saves_submitted: u64,
    /// Records persisted (one fsync of the file and one of its directory
    /// each). Fewer than `saves_submitted` when saves shared a persist.
    pub persists: u64,
    /// Sends handed to the release function.
    pub sends_released: u64,
    /// Sends waiting for a save to become durable.
    pub sends_held: u64,
}

/// The release function, boxed so that `GroupCommit` has one type parameter.
type Release<S> = Box<dyn FnMut(Vec<S>) + Send>;

/// The save barrier. See the module doc for its contract.
pub struct GroupCommit<S: Send + 'static> {
    shared: Arc<Shared<S>>,
    /// `None` once joined (by `shutdown` or `drop`).
    flusher: Option<thread::JoinHandle<()>>,
}

struct Shared<S> {
    state: Mutex<State<S>>,
    /// Wakes the flusher: a new record, or shutdown.
    wake: Condvar,
    release: Mutex<Release<S>>,
}

struct State<S> {
    /// The latest record not yet taken by the flusher, with its number (saves
    /// are numbered 1, 2, … in submission order).
    pending: Option<(u64, Vec<u8>)>,
    /// The number of the latest save submitted.
    submitted: u64,
    /// The number of the latest save known durable; `durable == submitted`
    /// means nothing is outstanding.
    durable: u64,
    /// Batches of sends, each with the number of the save it waits for
    /// (always greater than `durable`), in submission order.
    held: VecDeque<(u64, Vec<S>)>,
    /// The first persist error; once set, nothing more is released.
    failure: Option<std::sync::Arc<StorageError>>,
    stopping: bool,
    stats: GroupCommitStats,
}

impl<S: Send + 'static> GroupCommit<S> {
    /// Starts the flusher thread, which persists records with `persist` and
    /// hands released sends to `release`. `release` also runs on the thread
    /// that calls [`submit`](Self::submit), for sends that wait for nothing.
    pub fn start(
        persist: impl Persist,
        release: impl FnMut(Vec<S>) + Send + 'static,
    ) -> GroupCommit<S> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pending: None,
                submitted: 0,
                durable: 0,
                held: VecDeque::new(),
                failure: None,
                stopping: false,
                stats: GroupCommitStats::default(),
            }),
            wake: Condvar::new(),
            release: Mutex::new(Box::new(release) as Release<S>),
        });
        let flusher_shared = Arc::clone(&shared);
        let flusher = thread::spawn(move || flush(&flusher_shared, persist));
        GroupCommit {
            shared,
            flusher: Some(flusher),
        }
    }

    /// Submits one handler's save (the actor's whole new record, if it saved)
    /// and its sends. The sends are released once this save and every earlier
    /// one are durable; at once, on this thread, if no save is outstanding.
    pub fn submit(&self, save: Option<Vec<u8>>, sends: Vec<S>) -> Result<(), GroupCommitError> {
        let mut state = lock(&self.shared.state);
        if let Some(source) = &state.failure {
            return Err(GroupCommitError::PersistFailed {
                source: source.clone(),
            });
        }
        if let Some(record) = save {
            state.submitted += 1;
            state.stats.saves_submitted += 1;
            state.pending = Some((state.submitted, record));
            self.shared.wake.notify_one();
        }
        if sends.is_empty() {
            return Ok(());
        }
        let count = sends.len() as u64;
        if state.durable == state.submitted {
            // Nothing outstanding, so nothing is held either: release now.
            // The release lock is taken before the state is let go, so a batch
            // the flusher took out earlier is released first.
            state.stats.sends_released += count;
            let mut release = lock(&self.shared.release);
            drop(state);
            release(sends);
        } else {
            state.stats.sends_held += count;
            let waits_for = state.submitted;
            state.held.push_back((waits_for, sends));
        }
        Ok(())
    }

    /// The counters so far.
    pub fn stats(&self) -> GroupCommitStats {
        lock(&self.shared.state).stats
    }

    /// Persists the pending record, releases the sends it held, and joins the
    /// flusher. Fails if a persist failed (the held sends were not released)
    /// or the flusher panicked.
    pub fn shutdown(mut self) -> Result<(), GroupCommitError> {
        let joined = self.stop();
        if let Some(source) = &lock(&self.shared.state).failure {
            return Err(GroupCommitError::PersistFailed {
                source: source.clone(),
            });
        }
        joined
    }

    /// Tells the flusher to finish and joins it, once.
    fn stop(&mut self) -> Result<(), GroupCommitError> {
        let Some(flusher) = self.flusher.take() else {
            return Ok(());
        };
        lock(&self.shared.state).stopping = true;
        self.shared.wake.notify_one();
        flusher
            .join()
            .map_err(|_| GroupCommitError::FlusherPanicked)
    }
}

impl<S: Send + 'static> Drop for GroupCommit<S> {
    /// Like [`GroupCommit::shutdown`], for a barrier that was not shut down:
    /// no flusher thread outlives it. Errors are dropped with it.
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The flusher thread: persist the latest record, release what it covers,
/// repeat; on shutdown, finish the pending record first.
fn flush<S>(shared: &Shared<S>, mut persist: impl Persist) {
    let mut state = lock(&shared.state);
    loop {
        if let Some((number, record)) = state.pending.take() {
            drop(state);
            let result = persist.persist(&record);
            state = lock(&shared.state);
            if let Err(error) = result {
                state.failure = Some(std::sync::Arc::new(error));
                return;
            }
            state.stats.persists += 1;
            state.durable = number;
            let ready = take_ready(&mut state);
            if !ready.is_empty() {
                let mut release = lock(&shared.release);
                drop(state);
                for sends in ready {
                    release(sends);
                }
                drop(release);
                state = lock(&shared.state);
            }
        } else if state.stopping {
            return;
        } else {
            state = shared
                .wake
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}

/// Takes out the held batches whose save is now durable, oldest first.
fn take_ready<S>(state: &mut State<S>) -> Vec<Vec<S>> {
    let mut ready = Vec::new();
    while state
        .held
        .front()
        .is_some_and(|(waits_for, _)| *waits_for <= state.durable)
    {
        if let Some((_, sends)) = state.held.pop_front() {
            let count = sends.len() as u64;
            state.stats.sends_held -= count;
            state.stats.sends_released += count;
            ready.push(sends);
        }
    }
    ready
}

/// Locks `mutex`, ignoring poison: the only code that can panic while one of
/// these locks is held is the caller's release function, and the state is
/// consistent across it.
fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::time::Duration;

    use super::*;

    type Released<S> = Arc<Mutex<Vec<S>>>;

    /// A release function that records the sends, and where it records them.
    fn recorder<S: Send + 'static>() -> (Released<S>, impl FnMut(Vec<S>) + Send + 'static) {
        let released = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&released);
        let release = move |sends: Vec<S>| lock(&sink).extend(sends);
        (released, release)
    }

    fn store_in(dir: &tempfile::TempDir) -> DurableFile {
        DurableFile::open(dir.path(), "state").unwrap()
    }

    fn number(record: &[u8]) -> u64 {
        u64::from_le_bytes(record.try_into().unwrap())
    }

    /// Each send carries the number of the latest save before it; when it is
    /// released, the file on disk must already hold that save or a later one.
    #[test]
    fn sends_leave_only_after_the_file_holds_their_save() {
        let dir = tempfile::tempdir().unwrap();
        let reader = store_in(&dir);
        let (released, mut record) = recorder();
        let group = GroupCommit::start(store_in(&dir), move |sends: Vec<u64>| {
            let on_disk = reader.load().unwrap().map_or(0, |saved| number(&saved));
            for &waits_for in &sends {
                assert!(
                    on_disk >= waits_for,
                    "released {waits_for}, {on_disk} on disk"
                );
            }
            record(sends);
        });
        let mut latest = 0;
        let mut expected = Vec::new();
        for handler in 1..=200u64 {
            // Two handlers in three save; every handler sends twice.
            let save = (handler % 3 != 0).then(|| {
                latest = handler;
                handler.to_le_bytes().to_vec()
            });
            group.submit(save, vec![latest, latest]).unwrap();
            expected.extend([latest, latest]);
        }
        group.shutdown().unwrap();
        // All released, in submission order.
        assert_eq!(*lock(&released), expected);
        assert_eq!(number(&store_in(&dir).load().unwrap().unwrap()), latest);
    }

    /// A persist that takes a while, as an fsync on a real disk does.
    struct Slow(DurableFile);

    impl Persist for Slow {
        fn persist(&mut self, record: &[u8]) -> Result<(), StorageError> {
            thread::sleep(Duration::from_millis(5));
            self.0.store(record)
        }
    }

    #[test]
    fn saves_close_in_time_share_a_persist() {
        let dir = tempfile::tempdir().unwrap();
        let (released, release) = recorder();
        let group = GroupCommit::start(Slow(store_in(&dir)), release);
        for handler in 0..50u32 {
            group
                .submit(Some(handler.to_le_bytes().to_vec()), vec![handler])
                .unwrap();
        }
        let submitted = group.stats();
        assert_eq!(submitted.saves_submitted, 50);
        assert_eq!(submitted.sends_held + submitted.sends_released, 50);
        // Submitting 50 saves takes far less than one 5 ms persist, so the
        // flusher covers them with a few persists.
        while group.stats().sends_released < 50 {
            thread::sleep(Duration::from_millis(1));
        }
        let flushed = group.stats();
        assert!(
            flushed.persists >= 1 && flushed.persists < 10,
            "{flushed:?}"
        );
        assert_eq!(flushed.sends_held, 0);
        group.shutdown().unwrap();
        assert_eq!(*lock(&released), (0..50).collect::<Vec<_>>());
        let last = store_in(&dir).load().unwrap();
        assert_eq!(last, Some(49u32.to_le_bytes().to_vec()));
    }

    #[test]
    fn sends_with_nothing_outstanding_leave_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (released, release) = recorder();
        let group = GroupCommit::start(store_in(&dir), release);
        group.submit(None, vec!["ping"]).unwrap();
        // Released on this thread, before submit returned.
        assert_eq!(*lock(&released), ["ping"]);
        group.shutdown().unwrap();
    }

    #[test]
    fn a_failed_persist_holds_every_later_send_and_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let file = DurableFile::open(&data, "state").unwrap();
        // The data directory vanishes: the temp file cannot be created.
        std::fs::remove_dir_all(&data).unwrap();
        let (released, release) = recorder();
        let group = GroupCommit::start(file, release);
        group.submit(Some(vec![1]), vec![1]).unwrap();
        // Sooner or later the failure reaches submit.
        let error = loop {
            match group.submit(None, vec![2]) {
                Ok(()) => thread::sleep(Duration::from_millis(1)),
                Err(error) => break error,
            }
        };
        assert!(matches!(error, GroupCommitError::PersistFailed { .. }));
        let message = error.to_string();
        assert!(message.contains("stop the node"), "{message}");
        assert!(message.contains("state.tmp"), "{message}");
        let error = group.shutdown().unwrap_err();
        assert!(matches!(error, GroupCommitError::PersistFailed { .. }));
        assert!(lock(&released).is_empty());
    }

    #[test]
    fn drop_without_shutdown_still_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let (released, release) = recorder();
        let group = GroupCommit::start(store_in(&dir), release);
        group.submit(Some(b"last".to_vec()), vec![7]).unwrap();
        drop(group);
        assert_eq!(*lock(&released), [7]);
        assert_eq!(
            store_in(&dir).load().unwrap().as_deref(),
            Some(&b"last"[..])
        );
    }
}
