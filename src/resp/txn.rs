//! Transactions: how commands on keys become optimistic, serializable commits.
//!
//! One data command outside MULTI, or all the data commands of an EXEC, run as
//! one transaction:
//!
//! 1. read every key the commands need (and every WATCHed key) with its version;
//! 2. if a WATCHed key is no longer at the version WATCH saw, stop: EXEC
//!    answers the null array, as Redis does;
//! 3. compute every reply and write in order over a [`View`] of those values
//!    (later commands see earlier writes);
//! 4. commit the writes with the read versions as the read set (WATCHed keys
//!    at WATCH's versions); the commit refuses if any of them changed.
//!
//! A refused commit wrote nothing, so the front end retries it from step 1
//! after a short random backoff; a retry that finds a WATCHed key changed ends
//! in step 2. Clients therefore never see a conflict, INCR never loses an
//! increment, and EXEC fails only for the reason Redis gives. A transaction
//! that writes nothing and read at most one key needs no commit: the backend's
//! read is linearizable on its own. Reads of several keys are validated by a
//! commit without writes, so MGET and read-only EXECs see one snapshot.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;

use super::backend::{Backend, BackendError, CommitOutcome, Version, Versioned};
use super::command::DataCommand;
use super::config::RetryConfig;
use super::error::ClientError;
use super::reply::Reply;

/// The values a transaction computes from: what it read, overlaid with what
/// its commands wrote so far.
#[derive(Debug)]
pub struct View {
    values: HashMap<Bytes, Option<Bytes>>,
    writes: BTreeMap<Bytes, Option<Bytes>>,
    max_bulk: usize,
}

impl View {
    /// A view of the values read; `max_bulk` caps the values commands make.
    pub fn new(read: impl IntoIterator<Item = (Bytes, Option<Bytes>)>, max_bulk: usize) -> Self {
        View {
            values: read.into_iter().collect(),
            writes: BTreeMap::new(),
            max_bulk,
        }
    }

    /// A key's value in the transaction so far. The key must have been read
    /// (listed by the command's `reads`) or written before.
    pub fn get(&self, key: &[u8]) -> Option<Bytes> {
        debug_assert!(
            self.values.contains_key(key),
            "a command read a key it did not list"
        );
        self.values.get(key).cloned().flatten()
    }

    /// Writes `value` to `key`.
    pub fn set(&mut self, key: &Bytes, value: Bytes) {
        self.values.insert(key.clone(), Some(value.clone()));
        self.writes.insert(key.clone(), Some(value));
    }

    /// Deletes `key` if it has a value; returns whether it had one. Deleting
    /// an absent key writes nothing.
    pub fn delete(&mut self, key: &Bytes) -> bool {
        if self.get(key).is_none() {
            return false;
        }
        self.values.insert(key.clone(), None);
        self.writes.insert(key.clone(), None);
        true
    }

    /// The largest value a command may make.
    pub fn max_bulk(&self) -> usize {
        self.max_bulk
    }

    /// The writes, one per key (the last one), in key order.
    pub fn into_writes(self) -> Vec<(Bytes, Option<Bytes>)> {
        self.writes.into_iter().collect()
    }
}

/// How a transaction ended without an error.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Committed (or needed no commit): one reply per command.
    Replies(Vec<Reply>),
    /// A WATCHed key changed: nothing was written.
    WatchedKeyChanged,
}

/// What a transaction needs besides its commands.
pub struct Context<'a> {
    /// The store.
    pub backend: &'a dyn Backend,
    /// The retry policy.
    pub retry: &'a RetryConfig,
    /// The largest value a command may make.
    pub max_bulk: usize,
    /// Counts refused commits that were retried.
    pub retries: &'a AtomicU64,
}

/// Runs `commands` as one transaction, WATCHed keys at the versions given.
pub async fn run(
    context: &Context<'_>,
    commands: &[&DataCommand],
    watched: &BTreeMap<Bytes, Version>,
) -> Result<Outcome, ClientError> {
    let keys = read_keys(commands, watched);
    let started = tokio::time::Instant::now();
    let budget = Duration::from_millis(context.retry.budget_ms);
    let mut attempt = 0;
    loop {
        let read = read(context, &keys).await?;
        let versions: HashMap<&Bytes, Version> = keys
            .iter()
            .zip(&read)
            .map(|(k, r)| (k, r.version))
            .collect();
        if watched
            .iter()
            .any(|(key, seen)| versions.get(key) != Some(seen))
        {
            return Ok(Outcome::WatchedKeyChanged);
        }
        let read_set: Vec<(Bytes, Version)> = keys
            .iter()
            .zip(&read)
            .map(|(k, r)| (k.clone(), r.version))
            .collect();
        let mut view = View::new(
            keys.iter().cloned().zip(read.into_iter().map(|r| r.value)),
            context.max_bulk,
        );
        let replies = commands.iter().map(|c| c.apply(&mut view)).collect();
        let writes = view.into_writes();
        if writes.is_empty() && read_set.len() <= 1 {
            return Ok(Outcome::Replies(replies));
        }
        let refusal = match context.backend.commit(read_set, writes).await? {
            CommitOutcome::Committed => return Ok(Outcome::Replies(replies)),
            CommitOutcome::Conflict => "the last attempt conflicted".to_owned(),
            CommitOutcome::Aborted { reason } => format!("the last attempt was aborted: {reason}"),
        };
        attempt += 1;
        let wait = jitter(context.retry.backoff_cap(attempt - 1));
        if attempt >= context.retry.attempts || started.elapsed() + wait > budget {
            return Err(ClientError::RetriesExhausted(format!(
                "{attempt} attempts; {refusal}"
            )));
        }
        context.retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(wait).await;
    }
}

/// Runs read-only commands that read at most one key each with one read of
/// their keys, and no commit: one reply per command. Unlike [`run`], the
/// commands are not one transaction: each read of one key is linearizable on
/// its own, which is all a command of one key needs.
pub async fn read_each(
    context: &Context<'_>,
    commands: &[&DataCommand],
) -> Result<Vec<Reply>, ClientError> {
    let keys = read_keys(commands, &BTreeMap::new());
    let read = read(context, &keys).await?;
    let mut view = View::new(
        keys.into_iter().zip(read.into_iter().map(|r| r.value)),
        context.max_bulk,
    );
    Ok(commands.iter().map(|c| c.apply(&mut view)).collect())
}

/// Reads `keys` (none is no call): one value per key, in order.
async fn read(context: &Context<'_>, keys: &[Bytes]) -> Result<Vec<Versioned>, ClientError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let read = context.backend.read(keys.to_vec()).await?;
    if read.len() != keys.len() {
        return Err(ClientError::from(BackendError::Unavailable(format!(
            "the store answered {} values for {} keys",
            read.len(),
            keys.len()
        ))));
    }
    Ok(read)
}

/// The keys to read: those the commands need, then the WATCHed ones, each once.
fn read_keys(commands: &[&DataCommand], watched: &BTreeMap<Bytes, Version>) -> Vec<Bytes> {
    let mut seen = HashSet::new();
    commands
        .iter()
        .flat_map(|c| c.reads())
        .chain(watched.keys())
        .filter(|key| seen.insert(*key))
        .cloned()
        .collect()
}

/// A random wait up to `cap`, so that transactions refused together do not
/// retry together.
fn jitter(cap: Duration) -> Duration {
    let micros = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(rand::rng().random_range(0..=micros))
}
