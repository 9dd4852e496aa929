//! The loom suite: haft's heartbeat threads (src/runtime/heartbeat.rs), the
//! event loop's inbox and socket turn (src/runtime/inbox.rs), the
//! barrier with group commit over the storage log (src/storage/group_commit.rs)
//! under every
//! interleaving loom explores, and the seed's Heartbeat, whose deadlock loom
//! must find.
//!
//! Run with
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target-loom LOOM_MAX_PREEMPTIONS=2 cargo test --release --no-default-features --test loom`.
//! Under loom no real time passes: a sender beats only when the test calls
//! `Heartbeats::tick`, so every execution is finite.
//!
//! (This doc comes before `#![cfg(loom)]` because a crate emptied by its cfg
//! keeps only the attributes before it: without loom, the doc must already be
//! there for `missing_docs`, which CI denies.)
#![cfg(loom)]

use std::collections::BTreeMap;
use std::time::Duration;

use haft::runtime::heartbeat::{Arrival, HeartbeatError, HeartbeatSink, Heartbeats};
use haft::sync::{Arc, Mutex, thread};

/// Counts the beats sent to each peer.
#[derive(Default)]
struct Counter(Mutex<BTreeMap<usize, u64>>);

impl HeartbeatSink for Counter {
    fn send_heartbeat(&self, peer: usize, _incarnation: u64, sequence: u64) {
        let mut sent = self.0.lock().unwrap();
        let count = sent.entry(peer).or_insert(0);
        // Sequence numbers go up by one per beat: nothing skipped, nothing repeated.
        assert_eq!(sequence, *count);
        *count += 1;
    }
}

fn sent(heartbeats: &Heartbeats<Counter>, peer: usize) -> u64 {
    heartbeats
        .sink()
        .0
        .lock()
        .unwrap()
        .get(&peer)
        .copied()
        .unwrap_or(0)
}

fn arrival(peer: usize, sequence: u64) -> Arrival {
    Arrival {
        peer,
        incarnation: 0,
        sequence,
        at: sequence,
    }
}

/// Runs `body` under `loom::model` and returns how many executions loom
/// explored, so that each test can show it explored more than one schedule.
fn explore(body: impl Fn() + Sync + Send + 'static) -> usize {
    explore_with(loom::model::Builder::new(), body)
}

/// [`explore`] with at least `preemptions` preemptions per execution,
/// whatever `LOOM_MAX_PREEMPTIONS` says: for a test whose seeded bug needs
/// that many to show.
fn explore_at_least(preemptions: usize, body: impl Fn() + Sync + Send + 'static) -> usize {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(
        builder
            .preemption_bound
            .map_or(preemptions, |bound| bound.max(preemptions)),
    );
    explore_with(builder, body)
}

fn explore_with(builder: loom::model::Builder, body: impl Fn() + Sync + Send + 'static) -> usize {
    let executions = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&executions);
    builder.check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        body();
    });
    let explored = executions.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("loom explored {explored} executions");
    explored
}

fn new_heartbeats() -> Arc<Heartbeats<Counter>> {
    // The interval is ignored under loom; only ticks pace the senders.
    Arc::new(Heartbeats::new(Counter::default(), Duration::from_secs(1)))
}

/// No deadlock in any interleaving of start, stop, beat (the receive path),
/// check (a drain and a status query) and shutdown; everything ends.
#[test]
fn start_stop_beat_check_and_shutdown_never_deadlock() {
    let explored = explore(|| {
        let heartbeats = new_heartbeats();
        heartbeats.start(1).unwrap();

        let receiver = {
            let heartbeats = Arc::clone(&heartbeats);
            thread::spawn(move || {
                heartbeats.record(arrival(1, 0));
                heartbeats.stop(1).unwrap();
            })
        };
        let checker = {
            let heartbeats = Arc::clone(&heartbeats);
            thread::spawn(move || {
                // Starting another peer races with the shutdown: it either
                // wins (and the shutdown stops it) or is refused, never leaked.
                let started = heartbeats.start(2);
                assert!(matches!(
                    started,
                    Ok(()) | Err(HeartbeatError::ShutDown { peer: 2 })
                ));
                heartbeats.tick();
                let drained = heartbeats.drain();
                let last = heartbeats.last_arrival(1);
                // An arrival is in the pending list and the status table at once:
                // a check that drained it must find it in a later status query.
                assert!(drained.is_empty() || last.is_some());
            })
        };
        heartbeats.shutdown().unwrap();
        receiver.join().unwrap();
        checker.join().unwrap();
        assert!(heartbeats.sending_to().is_empty());
        assert!(sent(&heartbeats, 1) <= 1 && sent(&heartbeats, 2) <= 1);
    });
    assert!(explored > 10, "{explored}");
}

/// Two stops of the same peer racing a shutdown: whichever takes the sender
/// out of the set joins it, the others find nothing to do; none waits for
/// ever and none fails.
#[test]
fn concurrent_stops_and_shutdown_join_each_sender_once() {
    let explored = explore(|| {
        let heartbeats = new_heartbeats();
        heartbeats.start(1).unwrap();
        let stoppers: Vec<_> = (0..2)
            .map(|_| {
                let heartbeats = Arc::clone(&heartbeats);
                thread::spawn(move || heartbeats.stop(1))
            })
            .collect();
        heartbeats.tick();
        let shut = heartbeats.shutdown();
        for stopper in stoppers {
            assert_eq!(stopper.join().unwrap(), Ok(()));
        }
        assert_eq!(shut, Ok(()));
        assert!(heartbeats.sending_to().is_empty());
        assert!(sent(&heartbeats, 1) <= 1);
    });
    assert!(explored > 10, "{explored}");
}

/// A stopped sender sends no further beat, however the ticks interleave with
/// the stop.
#[test]
fn a_stopped_sender_sends_no_further_beat() {
    let explored = explore(|| {
        let heartbeats = new_heartbeats();
        heartbeats.start(1).unwrap();
        let ticker = {
            let heartbeats = Arc::clone(&heartbeats);
            thread::spawn(move || {
                heartbeats.tick();
                heartbeats.tick();
            })
        };
        heartbeats.stop(1).unwrap();
        let at_stop = sent(&heartbeats, 1);
        ticker.join().unwrap();
        // Ticks after the stop reach no sender for peer 1.
        heartbeats.tick();
        assert_eq!(sent(&heartbeats, 1), at_stop);
        assert!(at_stop <= 2);
        assert!(heartbeats.sending_to().is_empty());
    });
    assert!(explored > 10, "{explored}");
}

/// Every arrival the receive path records is drained exactly once, however the
/// receivers and the checker interleave.
#[test]
fn no_recorded_arrival_is_lost() {
    let explored = explore(|| {
        let heartbeats = new_heartbeats();
        let receivers: Vec<_> = [(1, 0), (2, 0)]
            .into_iter()
            .map(|(peer, sequence)| {
                let heartbeats = Arc::clone(&heartbeats);
                thread::spawn(move || {
                    heartbeats.record(arrival(peer, sequence));
                    heartbeats.record(arrival(peer, sequence + 1));
                })
            })
            .collect();
        let mut drained = heartbeats.drain();
        for receiver in receivers {
            receiver.join().unwrap();
        }
        drained.extend(heartbeats.drain());
        drained.sort_unstable();
        let expected = vec![arrival(1, 0), arrival(1, 1), arrival(2, 0), arrival(2, 1)];
        assert_eq!(drained, expected);
        assert_eq!(heartbeats.last_arrival(1), Some(arrival(1, 1)));
        assert_eq!(heartbeats.last_arrival(2), Some(arrival(2, 1)));
    });
    assert!(explored > 10, "{explored}");
}

/// The seed's `Heartbeat` (section 4.3), ported line for line: `stop` joins the
/// sender while holding the lock, the entry stays in the map during the join,
/// and the sender is never told to stop — it polls the map under the same lock.
/// `time.sleep` becomes a yield, as loom has no time.
mod seed {
    use std::collections::HashMap;

    use haft::sync::{Arc, Mutex, thread};

    pub struct Heartbeat {
        lock: Arc<Mutex<HashMap<usize, Option<thread::JoinHandle<()>>>>>,
    }

    impl Heartbeat {
        pub fn new() -> Heartbeat {
            Heartbeat {
                lock: Arc::new(Mutex::new(HashMap::new())),
            }
        }

        // Kept as the seed wrote it: a membership test, then an insert.
        #[allow(clippy::map_entry)]
        pub fn start(&self, node: usize) {
            let mut threads = self.lock.lock().unwrap();
            if !threads.contains_key(&node) {
                let lock = Arc::clone(&self.lock);
                threads.insert(
                    node,
                    Some(thread::spawn(move || send_heartbeat(&lock, node))),
                );
            }
        }

        pub fn stop(&self, node: usize) {
            let mut threads = self.lock.lock().unwrap();
            if let Some(handle) = threads.get_mut(&node).and_then(Option::take) {
                // `self.heartbeat_threads[node].join()` inside `with self.lock:`.
                handle.join().unwrap();
                threads.remove(&node);
            }
        }
    }

    fn send_heartbeat(lock: &Mutex<HashMap<usize, Option<thread::JoinHandle<()>>>>, node: usize) {
        loop {
            {
                let threads = lock.lock().unwrap();
                if !threads.contains_key(&node) {
                    break;
                }
            }
            thread::yield_now();
            // `_send_heartbeat(node)` only prints.
        }
    }
}

/// Run by `the_seeds_heartbeat_deadlocks` in a child process: loom aborts the
/// process when it finds a deadlock.
#[test]
#[ignore = "deadlocks by design; run through the_seeds_heartbeat_deadlocks"]
fn seed_heartbeat_inner() {
    loom::model(|| {
        let heartbeat = seed::Heartbeat::new();
        heartbeat.start(1);
        heartbeat.stop(1);
    });
}

#[test]
fn the_seeds_heartbeat_deadlocks() {
    let exe = std::env::current_exe().expect("the test binary knows its own path");
    let output = std::process::Command::new(exe)
        .args([
            "seed_heartbeat_inner",
            "--ignored",
            "--exact",
            "--nocapture",
        ])
        .output()
        .expect("the test binary can be run again");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !output.status.success(),
        "the seed's Heartbeat passed loom:\n{text}"
    );
    assert!(
        text.contains("deadlock"),
        "loom failed, but not on a deadlock:\n{text}"
    );
    // The child ran the seed port and nothing else.
    assert!(text.contains("seed_heartbeat_inner"), "{text}");
}

/// The barrier of src/storage/group_commit.rs: a fake storage and the release
/// function write into one shared log, whose order is the order in which
/// records were appended and synced, checkpoints written and effects released.
mod storage_group_commit {
    use haft::storage::{GroupCommit, GroupCommitError, LogPosition, Recovery, Storage};
    use haft::sync::{Arc, Mutex};

    use super::explore;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Event {
        /// Record `n` was appended (not yet durable).
        Appended(u8),
        /// Records before this position are durable.
        Synced(u64),
        /// A checkpoint covering this position was written.
        Checkpointed(u64),
        /// A sync failed.
        Failed,
        /// An effect was released.
        Released(u8),
    }

    type Log = Arc<Mutex<Vec<Event>>>;

    /// A storage whose records are one byte, logged as they are appended and
    /// synced; the sync that would make position `fail_at` durable fails.
    struct FakeStorage {
        log: Log,
        appended: u64,
        fail_at: Option<u64>,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("injected sync failure")]
    struct Injected;

    impl Storage for FakeStorage {
        type Error = Injected;

        fn append(&mut self, record: &[u8]) -> Result<LogPosition, Injected> {
            self.log.lock().unwrap().push(Event::Appended(record[0]));
            self.appended += 1;
            Ok(LogPosition(self.appended))
        }

        fn sync(&mut self) -> Result<LogPosition, Injected> {
            if self.fail_at.is_some_and(|at| self.appended >= at) {
                self.log.lock().unwrap().push(Event::Failed);
                return Err(Injected);
            }
            self.log.lock().unwrap().push(Event::Synced(self.appended));
            Ok(LogPosition(self.appended))
        }

        fn checkpoint(&mut self, _snapshot: &[u8]) -> Result<LogPosition, Injected> {
            self.sync()?;
            let covers = self.appended;
            self.log.lock().unwrap().push(Event::Checkpointed(covers));
            Ok(LogPosition(covers))
        }

        fn recover(&mut self) -> Result<Recovery, Injected> {
            Ok(Recovery::default())
        }

        fn end(&self) -> LogPosition {
            LogPosition(self.appended)
        }
    }

    fn start(fail_at: Option<u64>) -> (Log, GroupCommit<FakeStorage, u8>) {
        let log: Log = Arc::new(Mutex::new(Vec::new()));
        let storage = FakeStorage {
            log: Arc::clone(&log),
            appended: 0,
            fail_at,
        };
        let sink = Arc::clone(&log);
        let group = GroupCommit::start(storage, move |effects: Vec<u8>| {
            let mut log = sink.lock().unwrap();
            log.extend(effects.into_iter().map(Event::Released));
        });
        (log, group)
    }

    fn record(number: u8) -> Vec<Vec<u8>> {
        vec![vec![number]]
    }

    fn events(log: &Log) -> Vec<Event> {
        log.lock().unwrap().clone()
    }

    fn released(events: &[Event]) -> Vec<u8> {
        events
            .iter()
            .filter_map(|event| match event {
                Event::Released(effect) => Some(*effect),
                _ => None,
            })
            .collect()
    }

    /// Checks that each effect left only once the position it waits for
    /// (`waits_for(effect)`) was durable, and that records were appended in
    /// submission order.
    fn assert_barrier(events: &[Event], waits_for: impl Fn(u8) -> u64) {
        let mut durable = 0;
        let mut appended = 0;
        for event in events {
            match *event {
                Event::Appended(record) => {
                    assert_eq!(record, appended + 1, "out of order: {events:?}");
                    appended = record;
                }
                Event::Synced(position) => {
                    assert_eq!(position, u64::from(appended), "{events:?}");
                    durable = position;
                }
                Event::Released(effect) => {
                    let needed = waits_for(effect);
                    assert!(
                        durable >= needed,
                        "effect {effect} before position {needed} was durable: {events:?}"
                    );
                }
                Event::Checkpointed(_) | Event::Failed => {}
            }
        }
    }

    /// No effect leaves before its records, and every record submitted
    /// before them, are durable — effect 2 has no record of its own and waits
    /// for record 1 — and effects leave in submission order, whichever thread
    /// releases them.
    #[test]
    fn no_effect_leaves_before_the_records_it_follows() {
        let explored = explore(|| {
            let (log, group) = start(None);
            assert_eq!(group.submit(record(1), vec![1]).unwrap(), LogPosition(1));
            assert_eq!(group.submit(Vec::new(), vec![2]).unwrap(), LogPosition(1));
            assert_eq!(group.submit(record(2), vec![3]).unwrap(), LogPosition(2));
            group.shutdown().unwrap();
            let events = events(&log);
            assert_eq!(released(&events), [1, 2, 3], "{events:?}");
            assert_barrier(&events, |effect| if effect == 3 { 2 } else { 1 });
        });
        assert!(explored > 10, "{explored}");
    }

    /// A caller that syncs on its own thread (`sync_here`) while another
    /// thread submits through the flusher and waits for its effect: one
    /// writer at a time, records in submission order, no effect before its
    /// records are durable, every effect released once, in order, no wake-up
    /// of the flusher lost to a write on the caller's thread, and no deadlock.
    #[test]
    fn a_sync_on_the_callers_thread_keeps_the_barrier_and_the_order() {
        let explored = explore(|| {
            let (log, group) = start(None);
            let group = Arc::new(group);
            let other = {
                let group = Arc::clone(&group);
                let log = Arc::clone(&log);
                loom::thread::spawn(move || {
                    // Whichever of the two submits first gets position 1.
                    // Submitted like the loop's, and waited for: a write on
                    // the other thread must hand these to the flusher.
                    let at = group.submit_without_flush(record(2), vec![2]).unwrap();
                    group.flush().unwrap();
                    while !released(&events(&log)).contains(&2) {
                        loom::thread::yield_now();
                    }
                    at
                })
            };
            let mine = group.submit_without_flush(record(1), vec![1]).unwrap();
            let synced_here = group.sync_here(usize::MAX).unwrap();
            let theirs = other.join().unwrap();
            let Ok(group) = Arc::try_unwrap(group) else {
                panic!("the other thread still holds the barrier");
            };
            let stats = group.stats();
            assert_eq!(stats.syncs_here, u64::from(synced_here));
            group.shutdown().unwrap();
            let events = events(&log);
            // Records carry their submission order in the test's numbering
            // only if this thread went first; renumber by position.
            let (first, second) = if mine < theirs { (1, 2) } else { (2, 1) };
            let renumbered: Vec<Event> = events
                .iter()
                .map(|event| match *event {
                    Event::Appended(n) => Event::Appended(if n == first { 1 } else { 2 }),
                    other => other,
                })
                .collect();
            assert_barrier(&renumbered, |effect| if effect == first { 1 } else { 2 });
            assert_eq!(released(&events), [first, second], "{events:?}");
            let last_sync = events.iter().rev().find_map(|event| match event {
                Event::Synced(position) => Some(*position),
                _ => None,
            });
            assert_eq!(last_sync, Some(2), "{events:?}");
        });
        assert!(explored > 10, "{explored}");
    }

    /// Shutting down (or dropping) right after a submit syncs the pending
    /// records, releases every held effect and returns: no deadlock, nothing
    /// dropped, nothing left unsynced.
    #[test]
    fn shutdown_flushes_and_releases_everything() {
        for by_drop in [false, true] {
            let explored = explore(move || {
                let (log, group) = start(None);
                group.submit(record(1), vec![1, 2]).unwrap();
                group.submit(record(2), Vec::new()).unwrap();
                group.submit(Vec::new(), vec![3]).unwrap();
                if by_drop {
                    drop(group);
                } else {
                    let storage = group.shutdown().unwrap();
                    assert_eq!(storage.end(), LogPosition(2));
                }
                let events = events(&log);
                assert_eq!(released(&events), [1, 2, 3], "{events:?}");
                assert_barrier(&events, |effect| if effect == 3 { 2 } else { 1 });
                let last_sync = events.iter().rev().find_map(|event| match event {
                    Event::Synced(position) => Some(*position),
                    _ => None,
                });
                assert_eq!(last_sync, Some(2), "{events:?}");
            });
            assert!(explored > 1, "{explored}");
        }
    }

    /// A checkpoint covers exactly the records submitted before it: they are
    /// appended and durable before it is written, later ones after.
    #[test]
    fn a_checkpoint_sits_between_the_records_before_and_after_it() {
        let explored = explore(|| {
            let (log, group) = start(None);
            group.submit(record(1), vec![1]).unwrap();
            assert_eq!(group.checkpoint(vec![0]).unwrap(), LogPosition(1));
            group.submit(record(2), vec![2]).unwrap();
            group.shutdown().unwrap();
            let events = events(&log);
            assert_eq!(released(&events), [1, 2], "{events:?}");
            assert_barrier(&events, u64::from);
            let at = |wanted: Event| events.iter().position(|event| *event == wanted);
            let checkpoint = at(Event::Checkpointed(1)).expect("the checkpoint was written");
            assert!(at(Event::Appended(1)) < Some(checkpoint), "{events:?}");
            assert!(at(Event::Appended(2)) > Some(checkpoint), "{events:?}");
        });
        assert!(explored > 10, "{explored}");
    }

    /// A failed sync is final: the effects waiting for it (and for anything
    /// after it) never leave, and later calls and the shutdown report it.
    #[test]
    fn a_failed_sync_releases_nothing_after_it() {
        let explored = explore(|| {
            let (log, group) = start(Some(2));
            group.submit(record(1), vec![1]).unwrap();
            group.submit(record(2), vec![2]).unwrap();
            let later = group.submit(Vec::new(), vec![3]);
            let shut = group.shutdown();
            assert!(matches!(shut, Err(GroupCommitError::StorageFailed { .. })));
            let events = events(&log);
            let failed_at = events
                .iter()
                .position(|event| *event == Event::Failed)
                .expect("the sync of record 2 was attempted");
            // Nothing at all happens after the failure.
            assert_eq!(failed_at + 1, events.len(), "{events:?}");
            let released = released(&events);
            assert!(released.is_empty() || released == [1], "{events:?}");
            assert_barrier(&events, |_| 1);
            if let Err(error) = later {
                assert!(matches!(error, GroupCommitError::StorageFailed { .. }));
            }
        });
        assert!(explored > 10, "{explored}");
    }
}

/// The node's event-loop inbox and the socket's turn (src/runtime/inbox.rs).
/// The loop sleeps in one `poll(2)` over its socket and a bell; here both are
/// one mutex and a condition variable: a ring sets the bell, a datagram joins
/// the socket's queue, and the loop's sleep waits until the bell is set (then
/// resets it) or, on the loop's turn, until the socket holds a datagram.
mod inbox {
    use std::collections::VecDeque;

    use haft::runtime::inbox::{self, Bell, SocketTurn};
    use haft::sync::{Arc, Condvar, Mutex, thread};

    use super::{explore, explore_at_least};

    #[derive(Default)]
    struct World {
        rung: bool,
        socket: VecDeque<u8>,
    }

    #[derive(Default)]
    struct Poller {
        world: Mutex<World>,
        wake: Condvar,
    }

    impl Bell for Poller {
        fn ring(&self) {
            self.world.lock().unwrap().rung = true;
            self.wake.notify_all();
        }

        fn reset(&self) {
            self.world.lock().unwrap().rung = false;
        }
    }

    impl Poller {
        /// A datagram reaches the socket.
        fn arrive(&self, datagram: u8) {
            self.world.lock().unwrap().socket.push_back(datagram);
            self.wake.notify_all();
        }

        /// A read that does not block.
        fn recv(&self) -> Option<u8> {
            self.world.lock().unwrap().socket.pop_front()
        }

        /// The loop's sleep: until the bell is rung or, if it watches the
        /// socket, until a datagram waits there. Returns whether the bell
        /// was rung (poll's answer for it), which the loop then resets.
        fn sleep(&self, watch_socket: bool) -> bool {
            let mut world = self.world.lock().unwrap();
            while !world.rung && !(watch_socket && !world.socket.is_empty()) {
                world = self.wake.wait(world).unwrap();
            }
            world.rung
        }
    }

    /// Items sent from two threads all reach a loop that drains and then
    /// sleeps until the bell rings: none is left waiting while the loop
    /// sleeps (loom reports a loop asleep for ever as a deadlock), none is
    /// lost or repeated, and each sender's arrive in its order; a sender
    /// rings only if the bell is not rung already. The test bites: a sender
    /// that rang before it enqueued lets the loop wake, find nothing, and
    /// sleep through the item; a reset that clears the flag before it
    /// silences the bell lets a ring in between be silenced with the flag
    /// left set, so that no later sender rings.
    #[test]
    fn no_item_waits_while_the_loop_sleeps() {
        let explored = explore(|| {
            let bell = Arc::new(Poller::default());
            let (sender, inbox) = inbox::inbox(Arc::clone(&bell));
            let senders: Vec<_> = [10u8, 20]
                .into_iter()
                .map(|base| {
                    let sender = sender.clone();
                    thread::spawn(move || {
                        for offset in 0..2 {
                            assert!(sender.send(base + offset).is_ok());
                        }
                    })
                })
                .collect();
            drop(sender);
            let mut got = Vec::new();
            loop {
                inbox.drain(|item| got.push(item)).unwrap();
                if got.len() == 4 {
                    break;
                }
                if bell.sleep(false) {
                    inbox.reset_bell();
                }
            }
            for sender in senders {
                sender.join().unwrap();
            }
            let from = |base: u8| -> Vec<u8> {
                got.iter()
                    .copied()
                    .filter(|item| item / 10 * 10 == base)
                    .collect()
            };
            assert_eq!(from(10), [10, 11], "{got:?}");
            assert_eq!(from(20), [20, 21], "{got:?}");
        });
        assert!(explored > 10, "{explored}");
    }

    /// Datagram 1 is a fragment: the loop, once it has read it, hands the
    /// socket to the drainer, which forwards what it reads through the inbox
    /// and hands the socket back once the socket is empty; datagrams 2 and 3
    /// arrive at any point. Every datagram reaches the loop once and in arrival order,
    /// the loop never sleeps through one left in the socket, and the drainer
    /// ends when the loop stops. The test bites: a drainer that rings before
    /// it hands the socket back lets the loop wake on its turn's last ring,
    /// sleep on its bell alone and never read datagram 3 (deadlock); a loop
    /// that drains its inbox before it looks whose turn it is can read 3
    /// before it has taken 2 from the inbox (order; that schedule takes three
    /// preemptions, so this test explores at least three).
    #[test]
    fn the_socket_comes_back_to_the_loop_and_no_datagram_is_left_unread() {
        let explored = explore_at_least(3, || {
            let poller = Arc::new(Poller::default());
            let (sender, inbox) = inbox::inbox(Arc::clone(&poller));
            let turn = Arc::new(SocketTurn::default());
            poller.arrive(1);
            let network = {
                let poller = Arc::clone(&poller);
                thread::spawn(move || {
                    poller.arrive(2);
                    poller.arrive(3);
                })
            };
            let drainer = {
                let (poller, turn) = (Arc::clone(&poller), Arc::clone(&turn));
                thread::spawn(move || {
                    while turn.await_drainer_turn() {
                        while let Some(datagram) = poller.recv() {
                            assert!(sender.send(datagram).is_ok());
                        }
                        turn.hand_back(&*poller);
                    }
                })
            };
            let mut got = Vec::new();
            loop {
                let before = got.len();
                let loop_reads = turn.loop_reads();
                inbox.drain(|datagram| got.push(datagram)).unwrap();
                if loop_reads {
                    // A batch: all that waits; the socket goes to the
                    // drainer after a batch that held the fragment.
                    let mut fragment = false;
                    while let Some(datagram) = poller.recv() {
                        got.push(datagram);
                        fragment |= datagram == 1;
                    }
                    if fragment {
                        turn.hand_to_drainer();
                    }
                }
                if got.len() == 3 {
                    break;
                }
                // Like the node's loop, it sleeps only when a round found
                // nothing.
                if got.len() == before && poller.sleep(turn.loop_reads()) {
                    inbox.reset_bell();
                }
            }
            turn.stop();
            drainer.join().unwrap();
            network.join().unwrap();
            assert_eq!(got, [1, 2, 3]);
        });
        assert!(explored > 10, "{explored}");
    }
}
