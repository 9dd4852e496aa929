//! A [`Storage`] in memory that can simulate a crash, for tests and embedders.

use thiserror::Error;

use super::{LogPosition, Recovery, Storage};

/// Why a [`MemoryStorage`] refused an operation.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum MemoryError {
    /// A sync failed because the test asked for it with
    /// [`MemoryStorage::fail_next_sync`].
    #[error(
        "the memory storage's sync failed, as the test asked (MemoryStorage::fail_next_sync); \
         records appended since the last sync are not durable"
    )]
    InjectedFailure,
    /// An earlier operation failed, so the storage refuses writes until
    /// [`MemoryStorage::crash`] and [`Storage::recover`], as a file would.
    #[error(
        "an earlier sync of the memory storage failed; simulate a restart with crash() and \
         recover() before writing again"
    )]
    Failed,
}

/// An in-memory [`Storage`]: the "disk" is a checkpoint and a list of durable
/// records; appended records stay volatile until [`sync`](Storage::sync).
///
/// [`crash`](Self::crash) throws away what a crash would; a clone is an
/// independent copy of the disk and the volatile part, so a test can crash one
/// copy at several points.
#[derive(Clone, Debug, Default)]
pub struct MemoryStorage {
    /// The last checkpoint's snapshot.
    snapshot: Option<Vec<u8>>,
    /// The position the snapshot covers, where `durable` starts.
    start: LogPosition,
    /// Records that survive a crash, from `start`.
    durable: Vec<Vec<u8>>,
    /// Records appended since the last sync, after `durable`.
    volatile: Vec<Vec<u8>>,
    fail_next_sync: bool,
    failed: bool,
    syncs: u64,
}

impl MemoryStorage {
    /// An empty log.
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }

    /// Simulates a crash: records appended since the last sync are lost, and
    /// a failed storage becomes usable again (as after a restart).
    pub fn crash(&mut self) {
        self.crash_keeping(0);
    }

    /// Simulates a crash after which the first `survivors` records appended
    /// since the last sync happened to reach the disk anyway (a crash in the
    /// middle of writing them). The contract allows that: recovery returns a
    /// prefix of what was appended. Embedders can use it to test that they
    /// cope with records that were never synced.
    pub fn crash_keeping(&mut self, survivors: usize) {
        let survivors = survivors.min(self.volatile.len());
        self.durable.extend(self.volatile.drain(..survivors));
        self.volatile.clear();
        self.failed = false;
        self.fail_next_sync = false;
    }

    /// Makes the next [`sync`](Storage::sync) (or checkpoint) fail with
    /// [`MemoryError::InjectedFailure`]; every later write then fails with
    /// [`MemoryError::Failed`], as the contract says.
    pub fn fail_next_sync(&mut self) {
        self.fail_next_sync = true;
    }

    /// The position up to which records survive a crash.
    pub fn durable_end(&self) -> LogPosition {
        self.start.after(self.durable.len() as u64)
    }

    /// How many syncs and checkpoints succeeded.
    pub fn syncs(&self) -> u64 {
        self.syncs
    }

    fn check(&self) -> Result<(), MemoryError> {
        if self.failed {
            Err(MemoryError::Failed)
        } else {
            Ok(())
        }
    }
}

impl Storage for MemoryStorage {
    type Error = MemoryError;

    fn append(&mut self, record: &[u8]) -> Result<LogPosition, MemoryError> {
        self.check()?;
        self.volatile.push(record.to_vec());
        Ok(self.end())
    }

    fn sync(&mut self) -> Result<LogPosition, MemoryError> {
        self.check()?;
        if self.fail_next_sync {
            self.failed = true;
            return Err(MemoryError::InjectedFailure);
        }
        self.durable.append(&mut self.volatile);
        self.syncs += 1;
        Ok(self.durable_end())
    }

    fn checkpoint(&mut self, snapshot: &[u8]) -> Result<LogPosition, MemoryError> {
        // A checkpoint is one atomic write; it covers the volatile records too.
        let covers = self.sync()?;
        self.snapshot = Some(snapshot.to_vec());
        self.start = covers;
        self.durable.clear();
        Ok(covers)
    }

    fn recover(&mut self) -> Result<Recovery, MemoryError> {
        // Without a crash, a restarted process would read the volatile records
        // too (a file's unsynced bytes are in the page cache): recovery makes
        // them durable, so that the node never acts on what could vanish.
        self.durable.append(&mut self.volatile);
        Ok(Recovery {
            snapshot: self.snapshot.clone(),
            start: self.start,
            records: self.durable.clone(),
            repairs: Vec::new(),
        })
    }

    fn end(&self) -> LogPosition {
        self.durable_end().after(self.volatile.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append_all(storage: &mut MemoryStorage, records: &[&str]) {
        for record in records {
            storage.append(record.as_bytes()).unwrap();
        }
    }

    fn records(recovery: &Recovery) -> Vec<&str> {
        recovery
            .records
            .iter()
            .map(|record| std::str::from_utf8(record).unwrap())
            .collect()
    }

    #[test]
    fn a_crash_loses_exactly_what_was_not_synced() {
        let mut storage = MemoryStorage::new();
        append_all(&mut storage, &["a", "b"]);
        assert_eq!(storage.sync().unwrap(), LogPosition(2));
        append_all(&mut storage, &["c"]);
        assert_eq!(storage.end(), LogPosition(3));
        storage.crash();
        let recovery = storage.recover().unwrap();
        assert_eq!(records(&recovery), ["a", "b"]);
        assert_eq!(recovery.end(), LogPosition(2));
        assert_eq!(storage.end(), LogPosition(2));
    }

    #[test]
    fn crash_keeping_keeps_a_prefix_of_the_volatile_records() {
        let mut storage = MemoryStorage::new();
        append_all(&mut storage, &["a", "b", "c"]);
        storage.crash_keeping(2);
        assert_eq!(records(&storage.recover().unwrap()), ["a", "b"]);
        append_all(&mut storage, &["d"]);
        storage.crash_keeping(5);
        assert_eq!(records(&storage.recover().unwrap()), ["a", "b", "d"]);
    }

    #[test]
    fn a_checkpoint_replaces_the_records_before_it() {
        let mut storage = MemoryStorage::new();
        append_all(&mut storage, &["a", "b"]);
        assert_eq!(storage.checkpoint(b"ab").unwrap(), LogPosition(2));
        append_all(&mut storage, &["c"]);
        storage.sync().unwrap();
        append_all(&mut storage, &["lost"]);
        storage.crash();
        let recovery = storage.recover().unwrap();
        assert_eq!(recovery.snapshot.as_deref(), Some(&b"ab"[..]));
        assert_eq!(recovery.start, LogPosition(2));
        assert_eq!(records(&recovery), ["c"]);
    }

    #[test]
    fn a_failed_sync_is_final_until_restart() {
        let mut storage = MemoryStorage::new();
        append_all(&mut storage, &["a"]);
        storage.fail_next_sync();
        assert_eq!(storage.sync(), Err(MemoryError::InjectedFailure));
        assert_eq!(storage.append(b"b"), Err(MemoryError::Failed));
        assert_eq!(storage.checkpoint(b"x"), Err(MemoryError::Failed));
        storage.crash();
        assert!(storage.recover().unwrap().records.is_empty());
        append_all(&mut storage, &["c"]);
        assert_eq!(storage.sync(), Ok(LogPosition(1)));
    }
}
