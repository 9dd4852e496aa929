//! The one door between the RESP front end and the data: the [`Backend`] trait.
//!
//! The front end never sees nodes, rings or commit protocols. It reads keys
//! with their versions and submits optimistic transactions; whatever stands
//! behind the trait (the cluster, or [`MemoryBackend`](super::MemoryBackend) in
//! tests) decides where the keys live and how a commit is made atomic.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

/// A boxed, sendable future: what the trait's methods return, so that the trait
/// stays usable as `dyn Backend`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A key's version: it changes on every committed write of the key, deletes
/// included, and is never reused for that key.
///
/// [`Version::ABSENT`] (0) is the version of a key that was never written. A
/// deleted key has no value but keeps a version of its own, so that a
/// transaction that read it before the delete is refused after it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u64);

impl Version {
    /// The version of a key that has never been written.
    pub const ABSENT: Version = Version(0);
}

/// A key's committed value and the version that value has.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Versioned {
    /// The value, or `None` if the key does not exist (never written or deleted).
    pub value: Option<Bytes>,
    /// The version of that value.
    pub version: Version,
}

/// How a commit ended, when the backend knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Every write was applied, atomically, and every read was still current.
    Committed,
    /// Refused without writing anything: a read key's version changed, or a
    /// read or written key is locked by another transaction being committed.
    /// The front end re-reads and retries.
    Conflict,
    /// Refused without writing anything for another reason (a participant was
    /// unreachable, voted no, or timed out). The front end retries it like a
    /// conflict, and reports `reason` if it keeps happening.
    Aborted {
        /// What the backend knows of the cause, for the client's error reply.
        reason: String,
    },
}

/// Facts about the data store, for `INFO` and `DBSIZE`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterInfo {
    /// The ring epoch the answering node is in.
    pub epoch: u64,
    /// One short description per member, e.g. `1=127.0.0.1:7001`.
    pub members: Vec<String>,
    /// Transactions committed (as far as the answering node knows).
    pub commits: u64,
    /// Transactions aborted (as far as the answering node knows).
    pub aborts: u64,
    /// Keys that currently have a value.
    pub keys: u64,
}

/// Why a backend call gave no answer. Each variant says whether anything may
/// have changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The call was not carried out and nothing changed (no quorum, the node
    /// is shutting down, …); the client may retry.
    #[error("the store is unavailable: {0}; nothing was written, retry later")]
    Unavailable(String),
    /// A commit was submitted but its outcome is unknown (e.g. its coordinator
    /// stopped answering): the writes may or may not have been applied.
    #[error(
        "the outcome of the write is unknown: {0}; read the keys to see whether it was applied"
    )]
    Indeterminate(String),
}

/// The data store behind the RESP front end: linearizable reads and optimistic,
/// atomic transactions over versioned keys.
///
/// Implementations must make each call atomic and linearizable on its own;
/// the front end composes them into Redis's commands and transactions (see
/// the module docs of [`crate::resp`]). Calls may run concurrently from many
/// connections.
pub trait Backend: Send + Sync + 'static {
    /// Reads `keys` (distinct, at least one): returns one [`Versioned`] per key,
    /// in the order given. Each key's read is linearizable; a read of several
    /// keys need not be a snapshot (the front end validates multi-key reads by
    /// committing them).
    fn read(&self, keys: Vec<Bytes>) -> BoxFuture<'_, Result<Vec<Versioned>, BackendError>>;

    /// One atomic transaction. It commits only if every key in `reads` is
    /// still at the version given and no key in `reads` or `writes` is locked
    /// by another transaction; then it applies every write (`None` deletes the
    /// key) and gives each written key a new version. Otherwise nothing is
    /// written.
    ///
    /// Keys are distinct within `reads` and within `writes`; a key may be in
    /// both. `reads` is empty for a blind write; `writes` is empty for a
    /// read-only transaction, which then only validates its reads (a consistent
    /// snapshot of several keys). Both are never empty together.
    fn commit(
        &self,
        reads: Vec<(Bytes, Version)>,
        writes: Vec<(Bytes, Option<Bytes>)>,
    ) -> BoxFuture<'_, Result<CommitOutcome, BackendError>>;

    /// Facts about the store for `INFO` and `DBSIZE`.
    fn info(&self) -> BoxFuture<'_, Result<ClusterInfo, BackendError>>;
}
