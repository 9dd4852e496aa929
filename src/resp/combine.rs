//! [`Combining`]: a [`Backend`] that merges the concurrent blind writes of many
//! connections into few commits of the backend behind it, the way Redis serves
//! every client of one event-loop pass with one `fsync`.
//!
//! A cluster commit costs two durable appends in sequence (the participants'
//! prepare, then the coordinator's decision) and a message exchange with every
//! replica, whatever its size. Commits of writes only (no read set: SET, MSET,
//! their pipelined groups, an EXEC of blind writes) are therefore gathered into
//! *rounds*: while a few rounds are under way, new ones wait in a queue, and
//! the next round takes every call queued (up to [`ROUND_BYTES`]) and commits
//! their writes as one transaction. Under light load a round holds one call and
//! starts at once; under heavy load it holds one call of every busy
//! connection. Every other call (reads, commits with a read set, `info`) is
//! passed through: a read is cheap for the node already, and merging
//! transactions with read sets would let one changed key refuse them all.
//!
//! Why a merged commit keeps the [`Backend`] contract for each call:
//!
//! - It applies the calls' writes one after the other, in queue order, at one
//!   instant (later calls overwrite the keys of earlier ones): that is a serial
//!   order of calls that were all under way at that instant, and each call's
//!   writes still commit together or not at all. Writes without reads have
//!   nothing to validate, so merging them adds no refusal among them; a round
//!   conflicts only with transactions that are not merged.
//! - A merged commit that fails without writing anything (unavailable, or
//!   refused) is run again call by call, concurrently, and each call gets its
//!   own answer: a key whose replicas are all down fails the calls that write
//!   it, not every call of its round. A merged commit whose outcome is unknown
//!   ([`BackendError::Indeterminate`]) may have applied every call's writes,
//!   so each call gets that answer.
//! - A call whose round is dropped before it answers (the server stops) gets
//!   `Indeterminate`: its writes may have been sent.
//!
//! Reads were merged the same way in a trial and it did not pay: with
//! pipelined reads already sharing one read per connection
//! (`Session::read_together`), redis-benchmark's GET -P 16 ran at 225,000 and
//! 264,000 req/s merged against 311,000 and 476,000 not merged (the extra
//! task hops cost more than the node calls saved), and GET -P 1 was the same
//! either way.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::backend::{
    Backend, BackendError, BoxFuture, ClusterInfo, CommitOutcome, Version, Versioned,
};

/// The most bytes of keys and values one round carries (each key also counts
/// [`ENTRY_BYTES`]); a single call larger than this is a round of its own.
/// Measured with redis-benchmark SET and MSET -P 16 on a quiet machine
/// (verification/REPORT.md, "Redis protocol"): rounds of up to 16 KiB, 64 KiB,
/// 256 KiB, 512 KiB and 1 MiB ran MSET at about 14,000, 16,000, 21,000–23,000,
/// 20,000 and 15,000 req/s. Consecutive rounds of random keys nearly always
/// share a key, so each waits for the previous one's decision: a round must
/// be large enough to spread that wait over many calls, and small enough not
/// to hold the next round's calls long behind it.
pub const ROUND_BYTES: usize = 256 << 10;
/// What each key of a call adds to its weight besides its bytes: the
/// per-key cost of a commit (its lock, index and record entries).
const ENTRY_BYTES: usize = 64;
/// Rounds under way at once. Two overlap one round's decision with the next
/// one's prepare when their keys differ (rounds that share keys run one after
/// the other anyway: a later Prepare waits for the earlier transaction's
/// locks). Four were no faster and were refused now and then (a younger round
/// that locked a key first refuses an older one, under wait-die).
const WRITE_ROUNDS: usize = 2;

type Writes = Vec<(Bytes, Option<Bytes>)>;
type CommitAnswer = Result<CommitOutcome, BackendError>;

/// A [`Backend`] that merges concurrent blind writes into rounds. See the
/// [module docs](self).
pub struct Combining {
    inner: Arc<dyn Backend>,
    writes: Rounds<Writes, CommitAnswer>,
}

impl Combining {
    /// Wraps `inner`. Must be called inside a tokio runtime: the rounds are
    /// driven by tasks of that runtime, which end when this value is dropped.
    pub fn start(inner: Arc<dyn Backend>) -> Combining {
        let committer = inner.clone();
        let writes = Rounds::start(WRITE_ROUNDS, write_weight, move |calls| {
            let backend = committer.clone();
            Box::pin(async move { write_round(backend, calls).await })
        });
        Combining { inner, writes }
    }
}

impl Backend for Combining {
    fn read(&self, keys: Vec<Bytes>) -> BoxFuture<'_, Result<Vec<Versioned>, BackendError>> {
        self.inner.read(keys)
    }

    fn commit(&self, reads: Vec<(Bytes, Version)>, writes: Writes) -> BoxFuture<'_, CommitAnswer> {
        if !reads.is_empty() || writes.is_empty() {
            return self.inner.commit(reads, writes);
        }
        Box::pin(async move {
            self.writes.ask(writes).await.unwrap_or_else(|| {
                Err(BackendError::Indeterminate(
                    "the server stopped before the write was answered".to_owned(),
                ))
            })
        })
    }

    fn info(&self) -> BoxFuture<'_, Result<ClusterInfo, BackendError>> {
        self.inner.info()
    }
}

fn write_weight(writes: &Writes) -> usize {
    writes
        .iter()
        .map(|(key, value)| key.len() + value.as_ref().map_or(0, Bytes::len) + ENTRY_BYTES)
        .sum()
}

/// One commit of every call's writes, later calls overwriting earlier ones.
async fn write_round(backend: Arc<dyn Backend>, calls: Vec<Writes>) -> Vec<CommitAnswer> {
    if calls.len() == 1 {
        return one_by_one(backend, calls).await;
    }
    let merged: BTreeMap<Bytes, Option<Bytes>> = calls.iter().flatten().cloned().collect();
    match backend
        .commit(Vec::new(), merged.into_iter().collect())
        .await
    {
        Ok(CommitOutcome::Committed) => vec![Ok(CommitOutcome::Committed); calls.len()],
        indeterminate @ Err(BackendError::Indeterminate(_)) => vec![indeterminate; calls.len()],
        // Nothing was written: each call on its own, for its own answer.
        _ => one_by_one(backend, calls).await,
    }
}

/// Commits each call's writes as a transaction of its own, all at once;
/// answers in order.
async fn one_by_one(backend: Arc<dyn Backend>, calls: Vec<Writes>) -> Vec<CommitAnswer> {
    let mut calls = calls;
    if calls.len() == 1 {
        if let Some(writes) = calls.pop() {
            return vec![backend.commit(Vec::new(), writes).await];
        }
    }
    let tasks: Vec<_> = calls
        .into_iter()
        .map(|writes| {
            let backend = backend.clone();
            tokio::spawn(async move { backend.commit(Vec::new(), writes).await })
        })
        .collect();
    let mut answers = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await {
            Ok(answer) => answers.push(answer),
            // A commit that panicked or was cancelled: its caller, and those
            // after it, hear that the round was dropped.
            Err(_) => return answers,
        }
    }
    answers
}

/// A caller's request and where its answer goes.
struct Call<Q, A> {
    request: Q,
    answer: oneshot::Sender<A>,
}

/// The queue of calls waiting for a round, and the task that starts rounds.
struct Rounds<Q, A> {
    queue: mpsc::UnboundedSender<Call<Q, A>>,
}

type RunRound<Q, A> = dyn Fn(Vec<Q>) -> BoxFuture<'static, Vec<A>> + Send + Sync;

impl<Q: Send + 'static, A: Send + 'static> Rounds<Q, A> {
    /// Starts the task that forms rounds of calls (each round at most
    /// [`ROUND_BYTES`] by `weight`, at most `in_flight` under way at once) and
    /// runs each with `run`, which answers every call of the round, in order.
    fn start(
        in_flight: usize,
        weight: fn(&Q) -> usize,
        run: impl Fn(Vec<Q>) -> BoxFuture<'static, Vec<A>> + Send + Sync + 'static,
    ) -> Self {
        let (queue, calls) = mpsc::unbounded_channel();
        tokio::spawn(drive(calls, in_flight, weight, Arc::new(run)));
        Rounds { queue }
    }

    /// Queues `request` for the next round and waits for its answer; `None`
    /// if the round was dropped before answering.
    async fn ask(&self, request: Q) -> Option<A> {
        let (answer, answered) = oneshot::channel();
        self.queue.send(Call { request, answer }).ok()?;
        answered.await.ok()
    }
}

/// Forms and starts rounds until every sender is gone and the queue is empty.
async fn drive<Q: Send + 'static, A: Send + 'static>(
    mut calls: mpsc::UnboundedReceiver<Call<Q, A>>,
    in_flight: usize,
    weight: fn(&Q) -> usize,
    run: Arc<RunRound<Q, A>>,
) {
    let slots = Arc::new(Semaphore::new(in_flight.max(1)));
    let mut carried: Option<Call<Q, A>> = None;
    loop {
        // Wait for a free slot first: calls that come meanwhile queue up and
        // join the round.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let first = match carried.take() {
            Some(call) => call,
            None => match calls.recv().await {
                Some(call) => call,
                None => return,
            },
        };
        let mut bytes = weight(&first.request);
        let mut round = vec![first];
        while bytes < ROUND_BYTES {
            let Ok(call) = calls.try_recv() else { break };
            let more = weight(&call.request);
            if bytes + more > ROUND_BYTES {
                carried = Some(call);
                break;
            }
            bytes += more;
            round.push(call);
        }
        let run = run.clone();
        tokio::spawn(async move {
            let (requests, answers): (Vec<Q>, Vec<oneshot::Sender<A>>) = round
                .into_iter()
                .map(|call| (call.request, call.answer))
                .unzip();
            let replies = run(requests).await;
            for (answer, reply) in answers.into_iter().zip(replies) {
                // The caller may have gone; nobody listens then.
                let _ = answer.send(reply);
            }
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::resp::{Fault, MemoryBackend};

    /// A [`MemoryBackend`] whose commits wait at a gate, so that a test knows
    /// which calls are under way and which are queued.
    struct Gated {
        memory: MemoryBackend,
        entered: AtomicUsize,
        gate: Semaphore,
    }

    impl Backend for Gated {
        fn read(&self, keys: Vec<Bytes>) -> BoxFuture<'_, Result<Vec<Versioned>, BackendError>> {
            self.memory.read(keys)
        }

        fn commit(
            &self,
            reads: Vec<(Bytes, Version)>,
            writes: Writes,
        ) -> BoxFuture<'_, CommitAnswer> {
            Box::pin(async move {
                self.entered.fetch_add(1, Ordering::SeqCst);
                if let Ok(permit) = self.gate.acquire().await {
                    permit.forget();
                }
                self.memory.commit(reads, writes).await
            })
        }

        fn info(&self) -> BoxFuture<'_, Result<ClusterInfo, BackendError>> {
            self.memory.info()
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    fn pair(i: usize) -> Writes {
        let value = Bytes::from(i.to_string());
        vec![
            (Bytes::from_static(b"a"), Some(value.clone())),
            (Bytes::from_static(b"b"), Some(value)),
        ]
    }

    /// Waits until `what` holds; fails the test after 10 s rather than hang.
    async fn until(what: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !what() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "a condition never came true"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    type Calls = Vec<tokio::task::JoinHandle<CommitAnswer>>;

    /// A gated memory store behind a [`Combining`], with `WRITE_ROUNDS` calls
    /// waiting at the gate and `queued` more waiting in the queue for one
    /// round.
    async fn busy_then_queued(queued: usize) -> (Arc<Gated>, Calls, Calls) {
        let gated = Arc::new(Gated {
            memory: MemoryBackend::new(),
            entered: AtomicUsize::new(0),
            gate: Semaphore::new(0),
        });
        let combining = Arc::new(Combining::start(gated.clone()));
        let call = |i| {
            let combining = combining.clone();
            tokio::spawn(async move { combining.commit(Vec::new(), pair(i)).await })
        };
        // One busy call at a time, each a round of its own at the gate before
        // the next is queued: two queued together would share one round.
        let mut busy = Vec::new();
        for i in 0..WRITE_ROUNDS {
            busy.push(call(i));
            until(|| gated.entered.load(Ordering::SeqCst) == i + 1).await;
        }
        let waiting: Vec<_> = (WRITE_ROUNDS..WRITE_ROUNDS + queued).map(call).collect();
        // Let every queued call reach the queue (no slot is free, so none can
        // start a round meanwhile).
        tokio::time::sleep(Duration::from_millis(200)).await;
        (gated, busy, waiting)
    }

    #[test]
    fn queued_blind_writes_share_one_commit_and_each_stays_atomic() {
        runtime().block_on(async {
            let (gated, busy, waiting) = busy_then_queued(10).await;
            gated.gate.add_permits(100);
            for call in busy.into_iter().chain(waiting) {
                assert_eq!(call.await.unwrap(), Ok(CommitOutcome::Committed));
            }
            // The two calls under way, then one round of the ten queued.
            assert_eq!(gated.entered.load(Ordering::SeqCst), WRITE_ROUNDS + 1);
            assert_eq!(gated.memory.stats().commits, WRITE_ROUNDS as u64 + 1);
            // Each call's two writes landed together: a and b hold one call's value.
            assert_eq!(gated.memory.get(b"a").value, gated.memory.get(b"b").value);
        });
    }

    #[test]
    fn a_refused_round_is_retried_call_by_call() {
        runtime().block_on(async {
            let (gated, busy, waiting) = busy_then_queued(10).await;
            gated.gate.add_permits(WRITE_ROUNDS);
            for call in busy {
                assert_eq!(call.await.unwrap(), Ok(CommitOutcome::Committed));
            }
            // The round of the ten queued calls is at the gate: refuse it.
            until(|| gated.entered.load(Ordering::SeqCst) == WRITE_ROUNDS + 1).await;
            gated.memory.inject(Fault::Conflict);
            gated.gate.add_permits(100);
            for call in waiting {
                assert_eq!(call.await.unwrap(), Ok(CommitOutcome::Committed));
            }
            let stats = gated.memory.stats();
            assert_eq!(
                (stats.conflicts, stats.commits),
                (1, WRITE_ROUNDS as u64 + 10)
            );
        });
    }

    #[test]
    fn commits_with_reads_and_reads_pass_through() {
        runtime().block_on(async {
            let memory = Arc::new(MemoryBackend::new());
            let combining = Combining::start(memory.clone());
            let written = combining.commit(Vec::new(), pair(1)).await;
            assert_eq!(written, Ok(CommitOutcome::Committed));
            let read = combining
                .read(vec![Bytes::from_static(b"a")])
                .await
                .unwrap();
            let guarded = combining
                .commit(vec![(Bytes::from_static(b"a"), read[0].version)], pair(2))
                .await;
            assert_eq!(guarded, Ok(CommitOutcome::Committed));
            assert_eq!(memory.get(b"b").value, Some(Bytes::from_static(b"2")));
            assert_eq!(memory.stats().reads, 1);
        });
    }
}
