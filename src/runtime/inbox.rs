//! The event loop's inbox, and whose turn it is to read the node's socket.
//!
//! The node's event loop sleeps in one wait over its socket and a *bell* (an
//! `eventfd`), so that a datagram reaches the loop with no thread of its own
//! in between. Whatever other threads hand the loop (released effects,
//! in-process requests, datagrams read by the drainer, shutdown) goes through
//! the [inbox](inbox()), and the sender rings the bell after each item.
//!
//! While the fragments of a large message arrive, the socket must be emptied
//! faster than a busy loop would: its buffer holds half of a 16 MiB message,
//! and a lost fragment costs the whole message. So the loop hands the socket
//! to a *drainer* thread when it meets a fragment ([`SocketTurn`]); the drainer
//! reads everything into the inbox until fragments stop coming, then hands
//! the socket back.
//!
//! # Contract
//!
//! - [`InboxSender::send`] enqueues the item *before* ringing, so a ring is
//!   never heard before the item it announces is there to take.
//! - A bell rung and not yet reset is not rung again: a sender rings only if
//!   it is the first since the loop last reset it (a flag beside the bell),
//!   so a busy loop costs its senders no system call per item.
//! - The loop takes items with [`Inbox::drain`], which never blocks. When its
//!   sleep ends on the bell, it resets the bell with [`Inbox::reset_bell`]
//!   (for an `eventfd`: reads it to zero, *then* clears the flag) and only
//!   then drains: an item sent after the drain rings a bell that is no
//!   longer reset, or finds the flag still set by a sender whose item the
//!   drain takes. No item is left waiting while the loop sleeps. Draining at
//!   other times as well is harmless: a bell left rung only ends a sleep
//!   early.
//! - [`SocketTurn::hand_back`] gives the socket back *before* it rings, so
//!   the loop, woken, finds it its turn and waits on the socket again; and the
//!   drainer stops reading before it hands back, so every datagram it read is
//!   in the inbox before any the loop reads afterwards.
//!
//! The loom suite (verification/loom.rs, `mod inbox`) checks these with a
//! bell made of a mutex and a condition variable.

// std's error type: loom's channel reports the same one.
use std::sync::mpsc::TryRecvError;

use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::{Arc, Condvar, Mutex, mpsc};

/// What wakes the sleeping loop. Ringing a rung bell is harmless.
pub trait Bell: Send + Sync {
    /// Wakes the loop, or makes its next sleep end at once.
    fn ring(&self);
    /// Silences the bell, so that the loop's next sleep waits for a new ring.
    fn reset(&self);
}

/// The bell, and whether it has been rung since the loop last reset it.
struct Ringer<B> {
    bell: Arc<B>,
    rung: AtomicBool,
}

/// The sending half; clone it for each thread.
pub struct InboxSender<T, B> {
    items: mpsc::Sender<T>,
    ringer: Arc<Ringer<B>>,
}

impl<T, B> Clone for InboxSender<T, B> {
    fn clone(&self) -> Self {
        InboxSender {
            items: self.items.clone(),
            ringer: Arc::clone(&self.ringer),
        }
    }
}

impl<T, B: Bell> InboxSender<T, B> {
    /// Hands `item` to the loop and rings its bell unless it is rung already;
    /// gives the item back if the loop has stopped.
    pub fn send(&self, item: T) -> Result<(), T> {
        self.items.send(item).map_err(|error| error.0)?;
        // Release: the loop's reset that reads this flag sees the item.
        if !self.ringer.rung.swap(true, Ordering::AcqRel) {
            self.ringer.bell.ring();
        }
        Ok(())
    }
}

/// The loop's half.
pub struct Inbox<T, B> {
    items: mpsc::Receiver<T>,
    ringer: Arc<Ringer<B>>,
}

/// Every sender is gone.
#[derive(Debug, PartialEq, Eq)]
pub struct Disconnected;

impl<T, B: Bell> Inbox<T, B> {
    /// Silences the bell after a sleep that it ended, then lets the next
    /// sender ring again; drain after it. The flag is cleared with a swap,
    /// not a store, so that an item whose sender found the flag set (and did
    /// not ring) is visible to the drain that follows.
    pub fn reset_bell(&self) {
        self.ringer.bell.reset();
        self.ringer.rung.swap(false, Ordering::AcqRel);
    }

    /// The bell, for the loop to wait on.
    pub fn bell(&self) -> &B {
        &self.ringer.bell
    }

    /// Whether a sender has rung the bell since the loop last reset it: a
    /// load of the flag, no system call, for a loop that looks for a moment
    /// before it sleeps.
    pub fn rung(&self) -> bool {
        self.ringer.rung.load(Ordering::Acquire)
    }

    /// Hands every item queued now to `take`, oldest first, without blocking;
    /// returns how many. After a sleep, call it only once the bell is reset.
    pub fn drain(&self, mut take: impl FnMut(T)) -> Result<usize, Disconnected> {
        let mut taken = 0;
        loop {
            match self.items.try_recv() {
                Ok(item) => {
                    take(item);
                    taken += 1;
                }
                Err(TryRecvError::Empty) => return Ok(taken),
                Err(TryRecvError::Disconnected) => {
                    return if taken > 0 {
                        Ok(taken)
                    } else {
                        Err(Disconnected)
                    };
                }
            }
        }
    }
}

/// A channel to a loop that sleeps until `bell` rings.
pub fn inbox<T, B: Bell>(bell: Arc<B>) -> (InboxSender<T, B>, Inbox<T, B>) {
    let (items, receiver) = mpsc::channel();
    let ringer = Arc::new(Ringer {
        bell,
        rung: AtomicBool::new(false),
    });
    let sender = InboxSender {
        items,
        ringer: Arc::clone(&ringer),
    };
    (
        sender,
        Inbox {
            items: receiver,
            ringer,
        },
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Turn {
    Loop,
    Drainer,
    Stopped,
}

/// Who reads the socket: the loop, or the drainer thread. One at a time, so
/// that datagrams reach the machine in the order they were read.
pub struct SocketTurn {
    turn: Mutex<Turn>,
    changed: Condvar,
}

impl Default for SocketTurn {
    fn default() -> Self {
        SocketTurn {
            turn: Mutex::new(Turn::Loop),
            changed: Condvar::new(),
        }
    }
}

impl SocketTurn {
    /// The loop: whether it reads the socket now (or leaves it to the
    /// drainer).
    pub fn loop_reads(&self) -> bool {
        *self.lock() == Turn::Loop
    }

    /// The loop: hands the socket to the drainer. Does nothing unless it is
    /// the loop's turn. The loop must not read the socket until the drainer
    /// hands it back.
    pub fn hand_to_drainer(&self) {
        let mut turn = self.lock();
        if *turn == Turn::Loop {
            *turn = Turn::Drainer;
            self.changed.notify_all();
        }
    }

    /// The drainer: sleeps until it is its turn; `false` once stopped.
    pub fn await_drainer_turn(&self) -> bool {
        let mut turn = self.lock();
        loop {
            match *turn {
                Turn::Drainer => return true,
                Turn::Stopped => return false,
                Turn::Loop => {
                    turn = self
                        .changed
                        .wait(turn)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
            }
        }
    }

    /// The drainer, once it has stopped reading: gives the socket back to the
    /// loop, then rings `bell` so that a loop asleep on its inbox alone wakes
    /// and waits on the socket again.
    pub fn hand_back(&self, bell: &impl Bell) {
        {
            let mut turn = self.lock();
            if *turn != Turn::Drainer {
                return;
            }
            *turn = Turn::Loop;
        }
        bell.ring();
    }

    /// Whether [`SocketTurn::stop`] was called.
    pub fn stopped(&self) -> bool {
        *self.lock() == Turn::Stopped
    }

    /// The loop, as it stops: the drainer ends.
    pub fn stop(&self) {
        *self.lock() = Turn::Stopped;
        self.changed.notify_all();
    }

    fn lock(&self) -> crate::sync::MutexGuard<'_, Turn> {
        // Nothing panics while holding it; a poisoned lock still holds a turn.
        self.turn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
