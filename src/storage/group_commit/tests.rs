//! The barrier on real threads, with storages that report what is durable.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use super::*;
use crate::storage::{FileStorage, LogOptions, MemoryError, MemoryStorage};

type Released<T> = Arc<Mutex<Vec<T>>>;

/// A release function that records the effects, and where it records them.
fn recorder<T: Send + 'static>() -> (Released<T>, impl FnMut(Vec<T>) + Send + 'static) {
    let released = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&released);
    let release = move |effects: Vec<T>| lock(&sink).extend(effects);
    (released, release)
}

fn recovered_file(dir: &tempfile::TempDir) -> FileStorage {
    let mut storage = FileStorage::new(dir.path(), LogOptions::default());
    storage.recover().unwrap();
    storage
}

fn recovered() -> MemoryStorage {
    let mut storage = MemoryStorage::new();
    storage.recover().unwrap();
    storage
}

/// A storage that publishes the position it has synced, and can hold each
/// sync until the test lets it go.
struct Observed {
    inner: MemoryStorage,
    durable: std::sync::Arc<AtomicU64>,
    /// When set: says "in sync" on the first channel, then waits for a go on
    /// the second.
    gate: Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>,
}

impl Storage for Observed {
    type Error = MemoryError;

    fn append(&mut self, record: &[u8]) -> Result<LogPosition, MemoryError> {
        self.inner.append(record)
    }

    fn sync(&mut self) -> Result<LogPosition, MemoryError> {
        if let Some((entered, go)) = &self.gate {
            let _ = entered.send(());
            let _ = go.recv();
        }
        let durable = self.inner.sync()?;
        self.durable.store(durable.0, Ordering::SeqCst);
        Ok(durable)
    }

    fn checkpoint(&mut self, snapshot: &[u8]) -> Result<LogPosition, MemoryError> {
        self.inner.checkpoint(snapshot)
    }

    fn recover(&mut self) -> Result<crate::storage::Recovery, MemoryError> {
        self.inner.recover()
    }

    fn end(&self) -> LogPosition {
        self.inner.end()
    }
}

/// Each effect carries the position it waits for; when it is released, the
/// storage must already have synced that far.
#[test]
fn effects_leave_only_after_their_records_are_durable_in_order() {
    let durable = std::sync::Arc::new(AtomicU64::new(0));
    let storage = Observed {
        inner: recovered(),
        durable: std::sync::Arc::clone(&durable),
        gate: None,
    };
    let (released, mut record) = recorder();
    let seen = std::sync::Arc::clone(&durable);
    let group = GroupCommit::start(storage, move |effects: Vec<u64>| {
        let on_disk = seen.load(Ordering::SeqCst);
        for &waits_for in &effects {
            assert!(
                on_disk >= waits_for,
                "released {waits_for}, {on_disk} durable"
            );
        }
        record(effects);
    });
    let mut expected = Vec::new();
    for handler in 0..300u64 {
        // Two handlers in three persist one or two records; every one has two
        // effects, which wait for every record so far.
        let count = (handler % 3) as usize;
        let records = vec![handler.to_le_bytes().to_vec(); count];
        let waits_for = group.stats().records_submitted + count as u64;
        let position = group.submit(records, vec![waits_for, waits_for]).unwrap();
        assert_eq!(position, LogPosition(waits_for));
        expected.extend([waits_for, waits_for]);
    }
    let storage = group.shutdown().unwrap();
    assert_eq!(*lock(&released), expected);
    assert_eq!(storage.inner.durable_end(), LogPosition(300));
}

/// A barrier whose flusher is inside its first sync (record 0, effect 0),
/// where it stays until the test sends a go; it says when it enters a sync.
#[allow(clippy::type_complexity)]
fn held_in_a_sync() -> (
    GroupCommit<Observed, u32>,
    Released<u32>,
    mpsc::Receiver<()>,
    mpsc::Sender<()>,
) {
    let (entered_send, entered) = mpsc::channel();
    let (go, go_receive) = mpsc::channel();
    let storage = Observed {
        inner: recovered(),
        durable: std::sync::Arc::new(AtomicU64::new(0)),
        gate: Some((entered_send, go_receive)),
    };
    let (released, release) = recorder();
    let group = GroupCommit::start(storage, release);
    group.submit(vec![vec![0]], vec![0u32]).unwrap();
    entered.recv().unwrap();
    (group, released, entered, go)
}

/// While the flusher is held in a sync, everything submitted accumulates and
/// the next sync covers all of it.
#[test]
fn records_submitted_during_a_sync_share_the_next_one() {
    let (group, released, entered, go) = held_in_a_sync();
    for handler in 1..50u32 {
        group.submit(vec![vec![1]], vec![handler]).unwrap();
    }
    let held = group.stats();
    assert_eq!(held.effects_held, 50);
    assert_eq!(held.effects_released, 0);
    go.send(()).unwrap();
    entered.recv().unwrap(); // the second sync
    go.send(()).unwrap();
    let storage = group.shutdown().unwrap();
    assert_eq!(*lock(&released), (0..50).collect::<Vec<_>>());
    assert_eq!(storage.inner.syncs(), 2);
}

#[test]
fn effects_with_nothing_outstanding_leave_at_once_on_the_submitting_thread() {
    let (released, release) = recorder();
    let group = GroupCommit::start(recovered(), release);
    group.submit(Vec::new(), vec!["ping"]).unwrap();
    assert_eq!(*lock(&released), ["ping"]);
    group.shutdown().unwrap();
}

#[test]
fn a_failed_sync_holds_every_later_effect_and_is_reported() {
    let mut storage = recovered();
    storage.fail_next_sync();
    let (released, release) = recorder();
    let group = GroupCommit::start(storage, release);
    group.submit(vec![vec![1]], vec![1]).unwrap();
    // Sooner or later the failure reaches submit; no timing is assumed.
    let error = loop {
        match group.submit(Vec::new(), vec![2]) {
            Ok(_) => thread::yield_now(),
            Err(error) => break error,
        }
    };
    assert!(matches!(error, GroupCommitError::StorageFailed { .. }));
    let message = error.to_string();
    assert!(message.contains("stop the node"), "{message}");
    assert!(message.contains("fail_next_sync"), "{message}");
    assert!(group.checkpoint(Vec::new()).is_err());
    let error = group.shutdown().err().unwrap();
    assert!(matches!(error, GroupCommitError::StorageFailed { .. }));
    assert!(lock(&released).is_empty());
}

#[test]
fn a_checkpoint_is_written_between_the_records_before_and_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (released, release) = recorder();
    let group = GroupCommit::start(recovered_file(&dir), release);
    group
        .submit(vec![b"a".to_vec(), b"b".to_vec()], vec![1])
        .unwrap();
    assert_eq!(group.checkpoint(b"a b".to_vec()).unwrap(), LogPosition(2));
    group.submit(vec![b"c".to_vec()], vec![2]).unwrap();
    assert!(group.stats().bytes_since_checkpoint == 1);
    let mut storage = group.shutdown().unwrap();
    assert_eq!(*lock(&released), [1, 2]);
    let recovery = storage.recover().unwrap();
    assert_eq!(recovery.snapshot.as_deref(), Some(&b"a b"[..]));
    assert_eq!(recovery.start, LogPosition(2));
    assert_eq!(recovery.records, [b"c".to_vec()]);
}

#[test]
fn drop_without_shutdown_still_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let (released, release) = recorder();
    let group = GroupCommit::start(recovered_file(&dir), release);
    group.submit(vec![b"last".to_vec()], vec![7]).unwrap();
    drop(group);
    assert_eq!(*lock(&released), [7]);
    let mut storage = FileStorage::new(dir.path(), LogOptions::default());
    assert_eq!(storage.recover().unwrap().records, [b"last".to_vec()]);
}

/// `sync_here` writes, syncs and releases on the calling thread — the
/// flusher never wakes for it — and leaves to the flusher what is too
/// large.
#[test]
fn sync_here_syncs_on_the_calling_thread_only_when_it_may() {
    let caller = std::thread::current().id();
    let threads = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&threads);
    let group = GroupCommit::start(recovered(), move |effects: Vec<u32>| {
        lock(&seen).push((std::thread::current().id(), effects));
    });
    // Nothing pending: nothing to do.
    assert!(!group.sync_here(100).unwrap());
    group
        .submit_without_flush(vec![vec![1; 10]], vec![1])
        .unwrap();
    group
        .submit_without_flush(vec![vec![2; 10]], vec![2])
        .unwrap();
    assert_eq!(
        group.stats().syncs,
        0,
        "submit_without_flush woke the flusher"
    );
    assert!(group.sync_here(20).unwrap());
    let stats = group.stats();
    assert_eq!((stats.syncs, stats.syncs_here), (1, 1));
    assert_eq!(stats.durable, LogPosition(2));
    assert_eq!(*lock(&threads), [(caller, vec![1, 2])]);

    // Over the limit: the flusher's.
    group
        .submit_without_flush(vec![vec![3; 21]], vec![3])
        .unwrap();
    assert!(!group.sync_here(20).unwrap());
    let storage = group.shutdown().unwrap();
    assert_eq!(storage.durable_end(), LogPosition(3));
    let threads = lock(&threads);
    assert_eq!(threads.len(), 2, "{threads:?}");
    assert_eq!(threads[1].1, [3]);
    assert_ne!(threads[1].0, caller, "the large record was synced here");
}

/// While the flusher is in a sync, `sync_here` does not start a second
/// writer: it returns at once, and the records go with the flusher's next
/// sync.
#[test]
fn sync_here_leaves_the_records_to_a_flusher_that_is_writing() {
    let (group, released, entered, go) = held_in_a_sync();
    group.submit_without_flush(vec![vec![1]], vec![1]).unwrap();
    assert!(!group.sync_here(usize::MAX).unwrap());
    go.send(()).unwrap();
    entered.recv().unwrap(); // the flusher's second sync takes record 1
    go.send(()).unwrap();
    let storage = group.shutdown().unwrap();
    assert_eq!(*lock(&released), [0, 1]);
    assert_eq!(storage.inner.syncs(), 2);
    assert_eq!(storage.inner.durable_end(), LogPosition(2));
}
