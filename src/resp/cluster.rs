//! [`ClusterBackend`]: the [`Backend`] of a running node, so that Redis
//! clients reach the cluster through any node.
//!
//! Each call becomes one in-process request to the node
//! ([`LocalHandle::call`]), answered on the node's thread and handed back
//! through a one-shot channel:
//!
//! | backend call | node request | answer |
//! |---|---|---|
//! | `read` | [`Request::Read`] | each key's committed value and version, linearizable per key |
//! | `commit` | [`Request::Txn`] | commits iff every read key is still at the version read |
//! | `info` | [`Request::Status`] | epoch, members, counters, keys held |
//!
//! Versions are the core's transaction ids ([`TxnId`], never 0), so the
//! front end's [`Version`] is the id itself and [`Version::ABSENT`] (0) is an
//! absent key. One difference from [`MemoryBackend`](super::MemoryBackend):
//! the core forgets a deleted key's version (the key is absent again, version
//! 0), so a WATCH that saw a key absent does not notice a SET followed by a
//! DEL of it before EXEC. The transaction still commits serializably — it
//! read "absent" and the key is absent — but Redis would have refused it.
//!
//! How a node's answer maps to the front end's:
//!
//! - an abort because a participant found a read key changed
//!   ([`Refusal::Changed`]) is a [`CommitOutcome::Conflict`]: the front end
//!   re-reads and retries (a Prepare that finds a key locked by an older
//!   transaction waits for its outcome at the participant; one locked by a
//!   younger transaction is refused, [`Refusal::Locked`], so no two wait for
//!   each other);
//! - any other abort (a key locked by a younger transaction; a vote timeout:
//!   a replica is down or unreachable; a key not held yet) is
//!   [`CommitOutcome::Aborted`], retried the same way until the retry budget
//!   runs out, then reported as `TRYAGAIN`;
//! - a request the node refused, or a node that has stopped, is
//!   [`BackendError::Unavailable`]: nothing was written;
//! - a commit whose answer does not come within [`ClusterTimeouts::commit`]
//!   (or whose node stopped while it ran) is [`BackendError::Indeterminate`]:
//!   it may have committed;
//! - a read without an answer within [`ClusterTimeouts::read`] is
//!   `Unavailable` (a read changes nothing), and so, at once, is a read of a
//!   key whose every replica the node suspects ([`Reply::Unreachable`], whose
//!   text names them).
//!
//! **DBSIZE** counts the keys of the whole cluster: each member's status
//! says how many keys its store holds, and every key is held by `replicas`
//! members, so the count is the sum over members divided by `replicas`. When
//! this node is a replica of every key (as many replicas as members, e.g. 3
//! nodes with the default 3 replicas), its own count is the answer and no peer
//! is asked. Otherwise the peers are asked over UDP (with the cluster key) and
//! DBSIZE fails with `TRYAGAIN` if one does not answer, rather than answer a
//! figure that is too small. A transaction that is committed at some replicas
//! and not yet applied at others is counted in proportion.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::backend::{
    Backend, BackendError, BoxFuture, ClusterInfo, CommitOutcome, Version, Versioned,
};
use crate::commit::{AbortReason, Outcome, Refusal, TxnId};
use crate::node::{MemberStatus, Reply, Request, StatusView};
use crate::runtime::client::{Client, ClientOptions};
use crate::runtime::codec::ClusterKey;
use crate::runtime::config::Config;
use crate::runtime::node::LocalHandle;

/// How long the backend waits for the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterTimeouts {
    /// A read (it may wait behind a prepared writer for that writer's outcome).
    pub read: Duration,
    /// A commit: past this its outcome is reported as unknown.
    pub commit: Duration,
    /// A status request to this node or a peer.
    pub status: Duration,
}

impl Default for ClusterTimeouts {
    fn default() -> Self {
        ClusterTimeouts {
            read: Duration::from_secs(10),
            commit: Duration::from_secs(30),
            status: Duration::from_secs(2),
        }
    }
}

/// The [`Backend`] of a running node (see src/resp/cluster.rs).
pub struct ClusterBackend {
    handle: LocalHandle,
    me: u16,
    addresses: BTreeMap<u16, SocketAddr>,
    key: Option<ClusterKey>,
    timeouts: ClusterTimeouts,
}

/// Why a call to the node got no answer.
enum CallError {
    /// The node had stopped: the request was never taken.
    Stopped,
    /// The node took the request but stopped before answering.
    Dropped,
    /// No answer in time.
    TimedOut(Duration),
}

impl ClusterBackend {
    /// The backend of the node started from `config`, reached through `handle`.
    pub fn new(handle: LocalHandle, config: &Config) -> ClusterBackend {
        let mut addresses = config.peers.clone();
        addresses.insert(config.id, config.listen);
        ClusterBackend {
            handle,
            me: config.id,
            addresses,
            key: config.cluster_key.clone(),
            timeouts: ClusterTimeouts::default(),
        }
    }

    /// The same backend with other timeouts.
    pub fn with_timeouts(mut self, timeouts: ClusterTimeouts) -> ClusterBackend {
        self.timeouts = timeouts;
        self
    }

    async fn call(&self, request: Request, bound: Duration) -> Result<Reply, CallError> {
        let (answer, answered) = oneshot::channel();
        let reply = Box::new(move |reply: Reply| {
            // The caller may have given up; then nobody listens.
            let _ = answer.send(reply);
        });
        if !self.handle.call(request, reply) {
            return Err(CallError::Stopped);
        }
        match tokio::time::timeout(bound, answered).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(CallError::Dropped),
            Err(_) => Err(CallError::TimedOut(bound)),
        }
    }

    async fn read_keys(&self, keys: Vec<Bytes>) -> Result<Vec<Versioned>, BackendError> {
        let asked = keys.len();
        let reply = self
            .call(Request::Read { keys: keys.clone() }, self.timeouts.read)
            .await
            .map_err(|error| unavailable("a read", error))?;
        let values = match reply {
            Reply::Values(values) => values,
            Reply::Refused { reason } => return Err(BackendError::Unavailable(reason)),
            Reply::Unreachable(unreachable) => {
                return Err(BackendError::Unavailable(unreachable.to_string()));
            }
            other => return Err(unexpected(&other)),
        };
        if values.len() != asked
            || values
                .iter()
                .zip(&keys)
                .any(|((key, _), asked)| key != asked)
        {
            return Err(BackendError::Unavailable(format!(
                "the node answered {} values for {asked} keys",
                values.len()
            )));
        }
        Ok(values
            .into_iter()
            .map(|(_, value)| match value {
                Some(versioned) => Versioned {
                    value: Some(versioned.value),
                    version: Version(versioned.version.0),
                },
                None => Versioned::default(),
            })
            .collect())
    }

    async fn commit_txn(
        &self,
        reads: Vec<(Bytes, Version)>,
        writes: Vec<(Bytes, Option<Bytes>)>,
    ) -> Result<CommitOutcome, BackendError> {
        let reads = reads
            .into_iter()
            .map(|(key, version)| {
                let version = (version != Version::ABSENT).then_some(TxnId(version.0));
                (key, version)
            })
            .collect();
        let writes = writes.into_iter().collect();
        let reply = match self
            .call(Request::Txn { reads, writes }, self.timeouts.commit)
            .await
        {
            Ok(reply) => reply,
            Err(CallError::Stopped) => {
                return Err(BackendError::Unavailable(
                    "the node is shutting down".to_owned(),
                ));
            }
            Err(CallError::Dropped) => {
                return Err(BackendError::Indeterminate(
                    "the node stopped while the transaction ran".to_owned(),
                ));
            }
            Err(CallError::TimedOut(bound)) => {
                return Err(BackendError::Indeterminate(format!(
                    "the node did not decide within {bound:?}"
                )));
            }
        };
        match reply {
            Reply::Txn {
                outcome: Outcome::Commit,
                ..
            } => Ok(CommitOutcome::Committed),
            Reply::Txn {
                outcome: Outcome::Abort,
                reason: Some(reason),
                txn,
            } => Ok(match &reason {
                AbortReason::Refused {
                    refusal: Refusal::Changed { .. },
                    ..
                } => CommitOutcome::Conflict,
                _ => CommitOutcome::Aborted {
                    reason: format!("transaction {txn} aborted: {reason}"),
                },
            }),
            Reply::Txn {
                outcome: Outcome::Abort,
                reason: None,
                txn,
            } => Ok(CommitOutcome::Aborted {
                reason: format!("transaction {txn} aborted"),
            }),
            Reply::Refused { reason } => Err(BackendError::Unavailable(reason)),
            other => Err(unexpected(&other)),
        }
    }

    async fn cluster_info(&self) -> Result<ClusterInfo, BackendError> {
        let view = match self
            .call(Request::Status, self.timeouts.status)
            .await
            .map_err(|error| unavailable("a status request", error))?
        {
            Reply::Status(view) => view,
            Reply::Refused { reason } => return Err(BackendError::Unavailable(reason)),
            other => return Err(unexpected(&other)),
        };
        let members = view
            .members
            .iter()
            .map(|(id, status)| {
                let address = self
                    .addresses
                    .get(id)
                    .map_or_else(|| "?".to_owned(), ToString::to_string);
                format!("{id}={address} ({})", member_word(*status))
            })
            .collect();
        let keys = self.cluster_keys(&view).await?;
        Ok(ClusterInfo {
            epoch: view.epoch,
            members,
            commits: view.counters.get("commits").copied().unwrap_or(0),
            aborts: view.counters.get("aborts").copied().unwrap_or(0),
            keys,
        })
    }

    /// The keys of the whole cluster (see the module doc on DBSIZE).
    async fn cluster_keys(&self, mine: &StatusView) -> Result<u64, BackendError> {
        let replicas = mine.replicas.max(1);
        if replicas >= mine.members.len() as u64 {
            return Ok(mine.keys);
        }
        let peers: Vec<(u16, SocketAddr)> = self
            .addresses
            .iter()
            .filter(|(id, _)| **id != self.me)
            .map(|(id, address)| (*id, *address))
            .collect();
        let key = self.key.clone();
        let timeout = self.timeouts.status;
        let counts = tokio::task::spawn_blocking(move || {
            peers
                .into_iter()
                .map(|(id, address)| peer_keys(id, address, key.clone(), timeout))
                .collect::<Result<Vec<u64>, BackendError>>()
        })
        .await
        .map_err(|_| BackendError::Unavailable("the status thread failed".to_owned()))??;
        let total: u64 = counts.iter().sum::<u64>() + mine.keys;
        Ok((total + replicas / 2) / replicas)
    }
}

/// How many keys peer `id` holds, asked over UDP.
fn peer_keys(
    id: u16,
    address: SocketAddr,
    key: Option<ClusterKey>,
    timeout: Duration,
) -> Result<u64, BackendError> {
    let options = ClientOptions {
        timeout,
        retry_after: timeout / 4,
    };
    let failed = |why: String| {
        BackendError::Unavailable(format!(
            "node {id} at {address} did not say how many keys it holds ({why}); \
             DBSIZE counts every node's keys"
        ))
    };
    let mut client =
        Client::new(&address.to_string(), options).map_err(|e| failed(e.to_string()))?;
    if let Some(key) = key {
        client = client.with_key(key);
    }
    match client.request(Request::Status) {
        Ok(Reply::Status(view)) => Ok(view.keys),
        Ok(other) => Err(failed(format!("it answered {other:?}"))),
        Err(error) => Err(failed(error.to_string())),
    }
}

fn member_word(status: MemberStatus) -> &'static str {
    match status {
        MemberStatus::Me => "this node",
        MemberStatus::Unknown => "not heard from yet",
        MemberStatus::Alive => "alive",
        MemberStatus::Suspect => "suspect",
        MemberStatus::Dead => "dead",
    }
}

fn unavailable(what: &str, error: CallError) -> BackendError {
    BackendError::Unavailable(match error {
        CallError::Stopped => "the node is shutting down".to_owned(),
        CallError::Dropped => format!("the node stopped before answering {what}"),
        CallError::TimedOut(bound) => format!(
            "no answer to {what} within {bound:?} (a replica may be down, or a writer's outcome unknown)"
        ),
    })
}

fn unexpected(reply: &Reply) -> BackendError {
    BackendError::Unavailable(format!("the node answered something else: {reply:?}"))
}

impl Backend for ClusterBackend {
    fn read(&self, keys: Vec<Bytes>) -> BoxFuture<'_, Result<Vec<Versioned>, BackendError>> {
        Box::pin(self.read_keys(keys))
    }

    fn commit(
        &self,
        reads: Vec<(Bytes, Version)>,
        writes: Vec<(Bytes, Option<Bytes>)>,
    ) -> BoxFuture<'_, Result<CommitOutcome, BackendError>> {
        Box::pin(self.commit_txn(reads, writes))
    }

    fn info(&self) -> BoxFuture<'_, Result<ClusterInfo, BackendError>> {
        Box::pin(self.cluster_info())
    }
}
