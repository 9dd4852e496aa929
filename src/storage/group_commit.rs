//! The barrier between an event loop and its [`Storage`]: effects wait until
//! the records they depend on are durable, and records submitted close in
//! time share one sync (group commit).
//!
//! # Contract
//!
//! The event loop calls [`GroupCommit::submit`] once per handler that
//! persists something, with that handler's records and the effects (messages,
//! replies, "this is durable" notices: any `T`) that must wait for them, in
//! the order the handlers ran. Effects that depend on no record are not
//! submitted: the caller carries them out at once.
//!
//! - **Barrier.** An effect is released only once its own records and every
//!   record submitted before them are durable. (A handler that submits
//!   effects with no record waits for every record before it: an earlier
//!   save may be what makes the effect true.)
//! - **Group commit.** A flusher thread appends whatever has accumulated and
//!   syncs it with one [`Storage::sync`], then releases every effect that
//!   sync made safe.
//! - **Syncing on the caller's thread.** A caller with nothing else to do
//!   may make the sync itself ([`GroupCommit::sync_here`]) instead of waking
//!   the flusher: one thread hand-off less on the path of the effects it
//!   holds. It does so only when nobody is writing, so records still reach
//!   the storage one writer at a time, in submission order. A caller that
//!   means to do this submits with [`GroupCommit::submit_without_flush`],
//!   which leaves the records pending without waking the flusher (one that
//!   is writing takes them when it is done), and ends each burst of
//!   submissions with [`sync_here`](GroupCommit::sync_here) or
//!   [`flush`](GroupCommit::flush).
//! - **Order.** Effects are released in submission order. The flusher
//!   releases everything one sync made safe — the effects of every submission
//!   it covered, in order — with one call of the release function, so that it
//!   can send what goes to the same place together. A submission with nothing
//!   outstanding is released at once, on the submitting thread, with a call of
//!   its own.
//! - **Never blocks on the disk.** `submit` takes a lock that the flusher
//!   never holds while writing or syncing. It may wait for a release in
//!   progress (a socket send), never for the storage.
//! - **Checkpoints** ([`GroupCommit::checkpoint`]) go through the same queue:
//!   the snapshot covers every record submitted before it, and the flusher
//!   writes it after appending those records and before appending later ones.
//! - **Failure is final.** If the storage fails, the error is kept: nothing
//!   held is ever released, and every later call reports
//!   [`GroupCommitError::StorageFailed`]. The node must stop; on restart it
//!   recovers what was durable.
//! - **Shutdown** flushes what is pending, releases what it held and joins the
//!   flusher; [`GroupCommit::shutdown`] hands the storage back. Dropping a
//!   `GroupCommit` does the same and drops the storage.
//!
//! # Locks
//!
//! Three mutexes, from [`crate::sync`]: the state, the release function and
//! the storage. The only nesting is state → release: whoever takes effects
//! out of the state takes the release lock before letting go of the state,
//! so batches reach the release function in the order they left the state.
//! Nobody waits for the state while holding the release lock. The storage's
//! lock is taken only by the writer — whoever set the state's `writing` flag,
//! flusher or caller — with no other lock held, so it is never contended.
//! The flusher waits on one condition variable, and nothing else waits. The
//! loom suite (verification/loom.rs, `mod storage_group_commit`) checks the
//! barrier, the order, syncs on the caller's thread beside the flusher's,
//! checkpoints, shutdown and failure.
//!
//! ```
//! use haft::storage::{GroupCommit, MemoryStorage, Storage};
//! use std::sync::mpsc;
//!
//! let mut storage = MemoryStorage::new();
//! storage.recover()?;
//! let (sent, leaving) = mpsc::channel();
//! // The release function carries out effects once they are safe.
//! let group = GroupCommit::start(storage, move |effects: Vec<&str>| {
//!     for effect in effects {
//!         let _ = sent.send(effect);
//!     }
//! });
//! // One handler: persist "prepared T1", then vote Yes.
//! group.submit(vec![b"prepared T1".to_vec()], vec!["vote yes on T1"])?;
//! assert_eq!(leaving.recv()?, "vote yes on T1");
//! // Now and then: a snapshot of the state that covers every record so far.
//! group.checkpoint(b"state with T1 prepared".to_vec())?;
//! let mut storage = group.shutdown()?;
//! let recovery = storage.recover()?;
//! assert_eq!(recovery.snapshot.as_deref(), Some(&b"state with T1 prepared"[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::VecDeque;
use std::error::Error;

use thiserror::Error;

use super::{LogPosition, Storage};
use crate::sync::{Arc, Condvar, Mutex, MutexGuard, thread};

/// Why the barrier stopped.
#[derive(Clone, Debug, Error)]
pub enum GroupCommitError {
    /// The storage failed to append, sync or checkpoint. The effects waiting
    /// for it were not released and never will be.
    #[error(
        "the storage failed, so the effects waiting for it were held back: {source}; stop the \
         node, fix the storage and restart it (it recovers what was durable)"
    )]
    StorageFailed {
        /// The storage's error. Shared because every later call reports it.
        // std's Arc, not crate::sync's: an immutable value, not a place that
        // threads synchronise on, and std's Arc forwards `Error`.
        #[source]
        source: std::sync::Arc<dyn Error + Send + Sync>,
    },
    /// The flusher thread panicked, in the storage or in the release function.
    #[error(
        "the group-commit flusher thread panicked (in the storage or in the release function); \
         stop the node: its held effects were not released"
    )]
    FlusherPanicked,
}

/// Counters of a [`GroupCommit`], for status output, benchmarks and deciding
/// when to checkpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupCommitStats {
    /// Records submitted.
    pub records_submitted: u64,
    /// Syncs made, by the flusher or on a caller's thread. Fewer than the
    /// submissions when several shared one.
    pub syncs: u64,
    /// Of those, the syncs made on a caller's thread
    /// ([`GroupCommit::sync_here`]).
    pub syncs_here: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Bytes of records submitted since the last checkpoint was asked for.
    pub bytes_since_checkpoint: u64,
    /// The position up to which records are durable.
    pub durable: LogPosition,
    /// Effects handed to the release function.
    pub effects_released: u64,
    /// Effects waiting for their records to become durable.
    pub effects_held: u64,
}

/// The release function, boxed so that `GroupCommit` does not carry its type.
type Release<T> = Box<dyn FnMut(Vec<T>) + Send>;

/// The barrier. See the module doc for its contract.
pub struct GroupCommit<S: Storage + 'static, T: Send + 'static> {
    shared: Arc<Shared<S, T>>,
    /// `None` once joined (by `shutdown` or `drop`).
    flusher: Option<thread::JoinHandle<()>>,
}

struct Shared<S, T> {
    state: Mutex<State<T>>,
    /// Wakes the flusher: new records, a checkpoint, the end of a caller's
    /// write, or shutdown.
    wake: Condvar,
    release: Mutex<Release<T>>,
    /// Locked only by the writer (see `State::writing`). `None` once the
    /// barrier has handed it back.
    storage: Mutex<Option<S>>,
}

struct State<T> {
    /// Records submitted and not yet taken by the flusher, from `taken`.
    pending: Vec<Vec<u8>>,
    /// The position of the first pending record.
    taken: LogPosition,
    /// The position after the last record submitted.
    submitted: LogPosition,
    /// The position up to which records are durable; `durable == submitted`
    /// means nothing is outstanding.
    durable: LogPosition,
    /// The latest checkpoint asked for and not yet taken: the position it
    /// covers and its snapshot. A later one covers more, so it replaces it.
    checkpoint: Option<(LogPosition, Vec<u8>)>,
    /// Someone — the flusher or a caller of `sync_here` — has taken records
    /// out of `pending` and is writing them: nobody else may start a write.
    writing: bool,
    /// Effects, each batch with the position it waits for (always after
    /// `durable`), in submission order.
    held: VecDeque<(LogPosition, Vec<T>)>,
    /// The storage's first error; once set, nothing more is released.
    failure: Option<std::sync::Arc<dyn Error + Send + Sync>>,
    stopping: bool,
    stats: GroupCommitStats,
}

impl<S: Storage + 'static, T: Send + 'static> GroupCommit<S, T> {
    /// Starts the flusher thread over `storage`, which must have been
    /// recovered (every record in it durable); released effects go to
    /// `release`, which also runs on the thread that calls
    /// [`submit`](Self::submit) for effects that wait for nothing.
    pub fn start(storage: S, release: impl FnMut(Vec<T>) + Send + 'static) -> GroupCommit<S, T> {
        let end = storage.end();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pending: Vec::new(),
                taken: end,
                submitted: end,
                durable: end,
                checkpoint: None,
                writing: false,
                held: VecDeque::new(),
                failure: None,
                stopping: false,
                stats: GroupCommitStats {
                    durable: end,
                    ..GroupCommitStats::default()
                },
            }),
            wake: Condvar::new(),
            release: Mutex::new(Box::new(release) as Release<T>),
            storage: Mutex::new(Some(storage)),
        });
        let flusher_shared = Arc::clone(&shared);
        // Named, so that profiles and `top -H` tell it from the caller's
        // threads; spawning fails only when the system is out of threads,
        // which `thread::spawn` would panic on too.
        let flusher = thread::Builder::new()
            .name("haft-flush".into())
            .spawn(move || flush(&flusher_shared))
            .expect("the system cannot start the flusher thread");
        GroupCommit {
            shared,
            flusher: Some(flusher),
        }
    }

    /// Submits one handler's records and the effects that wait for them;
    /// returns the position after its records, which its effects wait for.
    /// The effects are released once that position is durable: at once, on
    /// this thread, if it already is.
    pub fn submit(
        &self,
        records: Vec<Vec<u8>>,
        effects: Vec<T>,
    ) -> Result<LogPosition, GroupCommitError> {
        self.submit_and(records, effects, true)
    }

    /// Like [`submit`](Self::submit), but leaves the records pending without
    /// waking the flusher: a flusher that is writing takes them when it is
    /// done; otherwise they wait for the caller's next
    /// [`sync_here`](Self::sync_here) or [`flush`](Self::flush), which it
    /// must make before it waits for anything.
    pub fn submit_without_flush(
        &self,
        records: Vec<Vec<u8>>,
        effects: Vec<T>,
    ) -> Result<LogPosition, GroupCommitError> {
        self.submit_and(records, effects, false)
    }

    /// Wakes the flusher for whatever is pending.
    pub fn flush(&self) -> Result<(), GroupCommitError> {
        let state = self.lock_unfailed()?;
        if !state.pending.is_empty() {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// Makes what is pending durable on this thread, and releases what that
    /// made safe (on this thread), if nobody is writing, no checkpoint is
    /// waiting and the pending records total at most `max_bytes`; otherwise
    /// wakes the flusher for them, as [`flush`](Self::flush). Returns whether
    /// it synced here. Blocks for the sync: for a caller with nothing else to
    /// do meanwhile.
    pub fn sync_here(&self, max_bytes: usize) -> Result<bool, GroupCommitError> {
        let state = self.lock_unfailed()?;
        if state.pending.is_empty() {
            return Ok(false);
        }
        let small = || state.pending.iter().map(Vec::len).sum::<usize>() <= max_bytes;
        if state.writing || state.checkpoint.is_some() || !small() {
            self.shared.wake.notify_one();
            return Ok(false);
        }
        let mut state = write_pending(&self.shared, state);
        if let Some(source) = &state.failure {
            return Err(GroupCommitError::StorageFailed {
                source: source.clone(),
            });
        }
        state.stats.syncs_here += 1;
        if !state.pending.is_empty() || state.checkpoint.is_some() || state.stopping {
            // Submitted while this thread wrote, or a shutdown that waited
            // for the write: the flusher's turn.
            self.shared.wake.notify_one();
        }
        Ok(true)
    }

    fn submit_and(
        &self,
        records: Vec<Vec<u8>>,
        effects: Vec<T>,
        wake: bool,
    ) -> Result<LogPosition, GroupCommitError> {
        let mut state = self.lock_unfailed()?;
        if !records.is_empty() {
            let bytes: usize = records.iter().map(Vec::len).sum();
            state.submitted = state.submitted.after(records.len() as u64);
            state.stats.records_submitted += records.len() as u64;
            state.stats.bytes_since_checkpoint += bytes as u64;
            state.pending.extend(records);
            if wake {
                self.shared.wake.notify_one();
            }
        }
        let waits_for = state.submitted;
        if effects.is_empty() {
            return Ok(waits_for);
        }
        let count = effects.len() as u64;
        if state.durable == waits_for {
            // Nothing outstanding, so nothing is held either: release now.
            // The release lock is taken before the state is let go, so a batch
            // the flusher took out earlier is released first.
            state.stats.effects_released += count;
            let mut release = lock(&self.shared.release);
            drop(state);
            release(effects);
        } else {
            state.stats.effects_held += count;
            state.held.push_back((waits_for, effects));
        }
        Ok(waits_for)
    }

    /// Asks for `snapshot` to be stored as a checkpoint covering every record
    /// submitted so far (the caller's state after its last submission);
    /// returns the position it covers. The flusher writes it after those
    /// records are durable; the storage may then drop them.
    pub fn checkpoint(&self, snapshot: Vec<u8>) -> Result<LogPosition, GroupCommitError> {
        let mut state = self.lock_unfailed()?;
        let covers = state.submitted;
        state.checkpoint = Some((covers, snapshot));
        state.stats.bytes_since_checkpoint = 0;
        self.shared.wake.notify_one();
        Ok(covers)
    }

    /// The counters so far.
    pub fn stats(&self) -> GroupCommitStats {
        lock(&self.shared.state).stats
    }

    /// Flushes what is pending, releases what it held, joins the flusher and
    /// returns the storage. Fails if the storage failed (the held effects
    /// were not released) or the flusher panicked.
    pub fn shutdown(mut self) -> Result<S, GroupCommitError> {
        self.stop()?;
        if let Some(source) = &lock(&self.shared.state).failure {
            return Err(GroupCommitError::StorageFailed {
                source: source.clone(),
            });
        }
        lock(&self.shared.storage)
            .take()
            .ok_or(GroupCommitError::FlusherPanicked)
    }

    /// The state, unless the storage has failed.
    fn lock_unfailed(&self) -> Result<MutexGuard<'_, State<T>>, GroupCommitError> {
        let state = lock(&self.shared.state);
        match &state.failure {
            Some(source) => Err(GroupCommitError::StorageFailed {
                source: source.clone(),
            }),
            None => Ok(state),
        }
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

impl<S: Storage + 'static, T: Send + 'static> Drop for GroupCommit<S, T> {
    /// Like [`GroupCommit::shutdown`], for a barrier that was not shut down:
    /// no flusher thread outlives it. Errors are dropped with it.
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// The flusher thread: write and sync what has accumulated, release what
/// that made safe, repeat; on shutdown, finish what is pending (and any
/// write on a caller's thread) first. Stops at the storage's first failure.
fn flush<S: Storage, T>(shared: &Shared<S, T>) {
    let mut state = lock(&shared.state);
    loop {
        if state.failure.is_some() {
            return;
        }
        if state.writing {
            // A caller is writing; it wakes this thread when it is done.
        } else if !state.pending.is_empty() || state.checkpoint.is_some() {
            state = write_pending(shared, state);
            continue;
        } else if state.stopping {
            return;
        }
        state = shared
            .wake
            .wait(state)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
    }
}

/// One write, by whoever calls it with the state locked and nobody writing:
/// takes the pending records and checkpoint, writes and syncs them with the
/// state unlocked, then marks them durable and releases the effects that
/// made safe. Returns with the state locked again; on a storage error, with
/// the failure recorded and nothing released.
fn write_pending<'a, S: Storage, T>(
    shared: &'a Shared<S, T>,
    mut state: MutexGuard<'a, State<T>>,
) -> MutexGuard<'a, State<T>> {
    debug_assert!(!state.writing, "two writers at once");
    let records = std::mem::take(&mut state.pending);
    let first = state.taken;
    state.taken = first.after(records.len() as u64);
    let checkpoint = state.checkpoint.take();
    state.writing = true;
    drop(state);
    let written = match lock(&shared.storage).as_mut() {
        Some(storage) => write(storage, first, &records, checkpoint)
            .map_err(|error| std::sync::Arc::new(error) as std::sync::Arc<dyn Error + Send + Sync>),
        None => unreachable!("the storage is handed back only after the last write"),
    };
    let mut state = lock(&shared.state);
    state.writing = false;
    let checkpointed = match written {
        Ok(checkpointed) => checkpointed,
        Err(error) => {
            state.failure = Some(error);
            // The flusher (or a shutdown waiting for it) sees the failure.
            shared.wake.notify_one();
            return state;
        }
    };
    state.durable = state.taken;
    state.stats.durable = state.taken;
    state.stats.syncs += 1;
    state.stats.checkpoints += u64::from(checkpointed);
    let ready = take_ready(&mut state);
    if ready.is_empty() {
        return state;
    }
    let mut release = lock(&shared.release);
    drop(state);
    release(ready);
    drop(release);
    lock(&shared.state)
}

/// Appends `records` (from position `first`), writing `checkpoint` after the
/// records it covers, and syncs; returns whether a checkpoint was written.
fn write<S: Storage>(
    storage: &mut S,
    first: LogPosition,
    records: &[Vec<u8>],
    checkpoint: Option<(LogPosition, Vec<u8>)>,
) -> Result<bool, S::Error> {
    let Some((covers, snapshot)) = checkpoint else {
        for record in records {
            storage.append(record)?;
        }
        storage.sync()?;
        return Ok(false);
    };
    // A checkpoint covers what was submitted before it: never less than what
    // the flusher had taken, never more than it takes now.
    let (before, after) = records.split_at((covers.0 - first.0) as usize);
    for record in before {
        storage.append(record)?;
    }
    let covered = storage.checkpoint(&snapshot)?;
    debug_assert_eq!(covered, covers, "the storage and the barrier disagree");
    for record in after {
        storage.append(record)?;
    }
    storage.sync()?;
    Ok(true)
}

/// Takes out the effects of the held batches whose records are now durable,
/// oldest first.
fn take_ready<T>(state: &mut State<T>) -> Vec<T> {
    let mut ready = Vec::new();
    while state
        .held
        .front()
        .is_some_and(|(waits_for, _)| *waits_for <= state.durable)
    {
        if let Some((_, effects)) = state.held.pop_front() {
            let count = effects.len() as u64;
            state.stats.effects_held -= count;
            state.stats.effects_released += count;
            ready.extend(effects);
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
mod tests;
