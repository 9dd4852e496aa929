//! Heartbeat threads: per-peer senders and the arrival table.
//!
//! Heartbeats are sent and recorded off the node's event loop, so that a busy
//! loop cannot delay them into false suspicions. [`Heartbeats`] owns:
//!
//! - one sender thread per monitored peer, started with [`Heartbeats::start`]
//!   and stopped with [`Heartbeats::stop`]; a sender sleeps on its own stop
//!   signal (a condition variable with a deadline), so stopping wakes it at once
//!   and no thread ever polls;
//! - the arrival table: the receive path [`Heartbeats::record`]s each heartbeat,
//!   the checker [`Heartbeats::drain`]s the arrivals into the
//!   [`Detector`](crate::detector::Detector), and status queries read
//!   [`Heartbeats::last_arrival`].
//!
//! Locks: the sender set, each sender's signal, and the table. The only
//! nesting is set → signal (in [`Heartbeats::tick`]); a sender thread takes only
//! its own signal; and no thread joins another while holding any lock — the
//! seed's `stop()` joined while holding the lock its sender needed, and
//! deadlocked. The loom suite (verification/loom.rs) checks these claims.
//!
//! Under `cfg(loom)` there is no real time: a sender waits on its signal without
//! a deadline and beats only when [`Heartbeats::tick`] says a period has passed,
//! which keeps every loom execution finite and deterministic.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::detector::Millis;

/// A monitored peer, by index.
pub type NodeId = usize;
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{Arc, Condvar, Mutex, MutexGuard, thread};

/// Where sender threads put their heartbeats (a socket, or a test's recorder).
pub trait HeartbeatSink: Send + Sync + 'static {
    /// Sends heartbeat number `sequence` of this node, at `incarnation`, to `peer`.
    fn send_heartbeat(&self, peer: NodeId, incarnation: u64, sequence: u64);
}

/// A heartbeat received from a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Arrival {
    /// The sender.
    pub peer: NodeId,
    /// Its incarnation.
    pub incarnation: u64,
    /// Its sequence number.
    pub sequence: u64,
    /// When it arrived.
    pub at: Millis,
}

/// Why a heartbeat operation failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeartbeatError {
    /// The detector was shut down; nothing can be started any more.
    #[error("the heartbeat runtime is shut down; create a new one to monitor peer {peer}")]
    ShutDown {
        /// The peer that was to be started.
        peer: NodeId,
    },
    /// A sender thread panicked (through its sink). The sender is gone either way.
    #[error("the heartbeat sender for peer {peer} panicked; its sink failed, check it and restart")]
    SenderPanicked {
        /// The peer whose sender panicked.
        peer: NodeId,
    },
}

/// A sender's stop signal, which also carries the periods the test clock has
/// ticked (`due`) under loom.
struct Signal {
    state: Mutex<Pace>,
    wake: Condvar,
}

struct Pace {
    stopped: bool,
    due: u64,
}

enum Wake {
    Beat,
    Stop,
}

/// Locks `mutex`. A poisoned lock still guards consistent data here (every
/// critical section is a single update), so poisoning is not propagated.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Signal {
    fn new() -> Signal {
        Signal {
            state: Mutex::new(Pace {
                stopped: false,
                due: 0,
            }),
            wake: Condvar::new(),
        }
    }

    fn stop(&self) {
        lock(&self.state).stopped = true;
        self.wake.notify_all();
    }

    fn tick(&self) {
        lock(&self.state).due += 1;
        self.wake.notify_all();
    }

    /// Blocks until a period has passed (→ `Beat`) or the sender is stopped
    /// (→ `Stop`; a stop wins over a due beat).
    fn wait_for_beat(&self, interval: Duration) -> Wake {
        let mut pace = lock(&self.state);
        let deadline = Deadline::after(interval);
        loop {
            if pace.stopped {
                return Wake::Stop;
            }
            if pace.due > 0 {
                pace.due -= 1;
                return Wake::Beat;
            }
            match deadline.wait(&self.wake, pace) {
                (guard, false) => pace = guard,
                (guard, true) => {
                    return if guard.stopped {
                        Wake::Stop
                    } else {
                        Wake::Beat
                    };
                }
            }
        }
    }
}

/// The end of the current heartbeat period.
#[cfg(not(loom))]
struct Deadline(std::time::Instant);

#[cfg(not(loom))]
impl Deadline {
    fn after(interval: Duration) -> Deadline {
        Deadline(std::time::Instant::now() + interval)
    }

    /// Waits for a notification or the deadline; true when the deadline passed.
    fn wait<'a>(
        &self,
        wake: &Condvar,
        guard: MutexGuard<'a, Pace>,
    ) -> (MutexGuard<'a, Pace>, bool) {
        let remaining = self.0.saturating_duration_since(std::time::Instant::now());
        if remaining.is_zero() {
            return (guard, true);
        }
        let (guard, _) = wake
            .wait_timeout(guard, remaining)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Re-read the clock: a spurious or early wakeup must not count as a period.
        let passed = std::time::Instant::now() >= self.0;
        (guard, passed)
    }
}

/// Under loom, time does not pass by itself: only [`Heartbeats::tick`] advances it.
#[cfg(loom)]
struct Deadline;

#[cfg(loom)]
impl Deadline {
    fn after(_interval: Duration) -> Deadline {
        Deadline
    }

    fn wait<'a>(
        &self,
        wake: &Condvar,
        guard: MutexGuard<'a, Pace>,
    ) -> (MutexGuard<'a, Pace>, bool) {
        let guard = wake
            .wait(guard)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (guard, false)
    }
}

struct Sender {
    signal: Arc<Signal>,
    thread: thread::JoinHandle<()>,
}

struct SenderSet {
    shut_down: bool,
    senders: BTreeMap<NodeId, Sender>,
}

#[derive(Default)]
struct Table {
    pending: Vec<Arrival>,
    last: BTreeMap<NodeId, Arrival>,
}

struct Shared<S> {
    sink: S,
    interval: Duration,
    incarnation: AtomicU64,
}

/// The heartbeat threads of one node. See the [module docs](self).
///
/// Share it between threads behind an `Arc`; dropping it shuts it down.
pub struct Heartbeats<S: HeartbeatSink> {
    shared: Arc<Shared<S>>,
    senders: Mutex<SenderSet>,
    table: Mutex<Table>,
}

impl<S: HeartbeatSink> Heartbeats<S> {
    /// Heartbeat threads that send to `sink` every `interval`.
    pub fn new(sink: S, interval: Duration) -> Heartbeats<S> {
        Heartbeats {
            shared: Arc::new(Shared {
                sink,
                interval,
                incarnation: AtomicU64::new(0),
            }),
            senders: Mutex::new(SenderSet {
                shut_down: false,
                senders: BTreeMap::new(),
            }),
            table: Mutex::new(Table::default()),
        }
    }

    /// The sink the senders use.
    pub fn sink(&self) -> &S {
        &self.shared.sink
    }

    /// Sets the incarnation that heartbeats carry from now on (after the
    /// detector refutes a suspicion).
    pub fn set_incarnation(&self, incarnation: u64) {
        self.shared.incarnation.store(incarnation, Ordering::SeqCst);
    }

    // --- senders -------------------------------------------------------------

    /// Starts sending heartbeats to `peer`. Starting a peer already started does
    /// nothing.
    pub fn start(&self, peer: NodeId) -> Result<(), HeartbeatError> {
        let mut set = lock(&self.senders);
        if set.shut_down {
            return Err(HeartbeatError::ShutDown { peer });
        }
        if set.senders.contains_key(&peer) {
            return Ok(());
        }
        let signal = Arc::new(Signal::new());
        let shared = Arc::clone(&self.shared);
        let thread_signal = Arc::clone(&signal);
        let thread = thread::spawn(move || send_until_stopped(&shared, &thread_signal, peer));
        set.senders.insert(peer, Sender { signal, thread });
        Ok(())
    }

    /// Stops the sender of `peer` and waits for its thread to end: when this
    /// returns, no further heartbeat goes to `peer`. Stopping a peer not started
    /// does nothing.
    pub fn stop(&self, peer: NodeId) -> Result<(), HeartbeatError> {
        // Take the sender out, then let go of the set before joining: the
        // sender never needs the set, but `start`, `stop` and `shutdown` on other
        // threads do, and must not wait for this join.
        let sender = lock(&self.senders).senders.remove(&peer);
        match sender {
            Some(sender) => finish(peer, sender),
            None => Ok(()),
        }
    }

    /// Stops every sender and refuses later starts. Reports the first sender that
    /// had panicked, after stopping them all.
    pub fn shutdown(&self) -> Result<(), HeartbeatError> {
        let senders = {
            let mut set = lock(&self.senders);
            set.shut_down = true;
            std::mem::take(&mut set.senders)
        };
        // Signal every sender before joining any, so they wind down together.
        for sender in senders.values() {
            sender.signal.stop();
        }
        let mut outcome = Ok(());
        for (peer, sender) in senders {
            let joined = finish(peer, sender);
            if outcome.is_ok() {
                outcome = joined;
            }
        }
        outcome
    }

    /// The peers with a running sender, in id order.
    pub fn sending_to(&self) -> Vec<NodeId> {
        lock(&self.senders).senders.keys().copied().collect()
    }

    /// Tells every sender that one heartbeat period has passed, so each sends one
    /// beat now. This is how loom tests (which have no real time) and
    /// deterministic tests pace the senders.
    pub fn tick(&self) {
        for sender in lock(&self.senders).senders.values() {
            sender.signal.tick();
        }
    }

    // --- the arrival table ---------------------------------------------------

    /// Records a heartbeat received from a peer (the receive path).
    pub fn record(&self, arrival: Arrival) {
        let mut table = lock(&self.table);
        table.pending.push(arrival);
        let newest = table.last.entry(arrival.peer).or_insert(arrival);
        if (arrival.incarnation, arrival.sequence) > (newest.incarnation, newest.sequence) {
            *newest = arrival;
        }
    }

    /// Takes every arrival recorded since the last drain, in recording order,
    /// for the checker to hand to the detector. Each arrival is returned by
    /// exactly one drain.
    pub fn drain(&self) -> Vec<Arrival> {
        std::mem::take(&mut lock(&self.table).pending)
    }

    /// The newest heartbeat ever recorded from `peer` (a status query).
    pub fn last_arrival(&self, peer: NodeId) -> Option<Arrival> {
        lock(&self.table).last.get(&peer).copied()
    }
}

impl<S: HeartbeatSink> Drop for Heartbeats<S> {
    fn drop(&mut self) {
        // A sender that panicked has nothing left to clean up.
        let _ = self.shutdown();
    }
}

/// Signals a sender taken out of the set and joins it, holding no lock.
fn finish(peer: NodeId, sender: Sender) -> Result<(), HeartbeatError> {
    sender.signal.stop();
    sender
        .thread
        .join()
        .map_err(|_| HeartbeatError::SenderPanicked { peer })
}

fn send_until_stopped<S: HeartbeatSink>(shared: &Shared<S>, signal: &Signal, peer: NodeId) {
    let mut sequence = 0;
    while let Wake::Beat = signal.wait_for_beat(shared.interval) {
        let incarnation = shared.incarnation.load(Ordering::SeqCst);
        shared.sink.send_heartbeat(peer, incarnation, sequence);
        sequence += 1;
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(NodeId, u64, u64)>>);

    impl HeartbeatSink for Recorder {
        fn send_heartbeat(&self, peer: NodeId, incarnation: u64, sequence: u64) {
            lock(&self.0).push((peer, incarnation, sequence));
        }
    }

    #[test]
    fn senders_beat_on_time_and_stop_at_once() {
        let heartbeats = Heartbeats::new(Recorder::default(), Duration::from_millis(5));
        heartbeats.start(1).unwrap();
        heartbeats.start(1).unwrap();
        assert_eq!(heartbeats.sending_to(), vec![1]);
        // Real time paces the sender: wait (generously, as the machine may be
        // busy) until it has beaten twice on its own.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while lock(&heartbeats.sink().0).len() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let started = std::time::Instant::now();
        heartbeats.stop(1).unwrap();
        // The sender is woken by the signal, not by the end of its period.
        assert!(started.elapsed() < Duration::from_secs(1));
        let sent = lock(&heartbeats.sink().0).clone();
        assert!(sent.len() >= 2, "{sent:?}");
        for (i, beat) in sent.iter().enumerate() {
            assert_eq!(*beat, (1, 0, i as u64));
        }
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(lock(&heartbeats.sink().0).len(), sent.len());
    }

    #[test]
    fn ticks_pace_senders_without_real_time() {
        let heartbeats = Heartbeats::new(Recorder::default(), Duration::from_secs(3600));
        heartbeats.start(2).unwrap();
        heartbeats.set_incarnation(4);
        heartbeats.tick();
        heartbeats.tick();
        heartbeats.shutdown().unwrap();
        // A stop wins over due beats, so the sender may have sent fewer than two.
        let sent = lock(&heartbeats.sink().0).clone();
        assert!(sent.len() <= 2);
        assert!(sent.iter().all(|(peer, inc, _)| *peer == 2 && *inc == 4));
        assert_eq!(
            heartbeats.start(3),
            Err(HeartbeatError::ShutDown { peer: 3 })
        );
        assert!(heartbeats.sending_to().is_empty());
    }

    #[test]
    fn the_table_keeps_the_newest_and_drains_each_arrival_once() {
        let heartbeats = Heartbeats::new(Recorder::default(), Duration::from_secs(1));
        let arrival = |sequence, at| Arrival {
            peer: 7,
            incarnation: 0,
            sequence,
            at,
        };
        heartbeats.record(arrival(2, 10));
        heartbeats.record(arrival(1, 11));
        assert_eq!(heartbeats.last_arrival(7), Some(arrival(2, 10)));
        assert_eq!(heartbeats.last_arrival(8), None);
        assert_eq!(heartbeats.drain(), vec![arrival(2, 10), arrival(1, 11)]);
        assert!(heartbeats.drain().is_empty());
    }
}
