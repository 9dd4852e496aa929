//! The event loop's inbox: a channel whose receiver does not block on it.
//!
//! The node's event loop sleeps in one wait over its socket and a *bell* (an
//! `eventfd` on Linux), so that a datagram reaches the loop without a thread
//! of its own in between. Whatever other threads hand the loop (released
//! effects, in-process requests, shutdown) goes through this channel, and the
//! sender rings the bell after each item.
//!
//! # Contract
//!
//! - [`InboxSender::send`] enqueues the item *before* ringing, so a ring is
//!   never heard before the item it announces is there to take.
//! - The loop takes items with [`Inbox::drain`], which never blocks. It drains
//!   once after each wake-up and, before sleeping again, only after it has
//!   reset the bell (for an `eventfd`, read it to zero): an item sent after
//!   the drain rings a bell that is no longer reset, so the loop's next sleep
//!   ends at once. No item is left waiting while the loop sleeps.
//!
//! The loom suite (verification/loom.rs, `mod inbox`) checks both halves with
//! a bell made of a mutex and a condition variable.

// std's error type: loom's channel reports the same one.
use std::sync::mpsc::TryRecvError;

use crate::sync::{Arc, mpsc};

/// What wakes the sleeping loop. Ringing a rung bell is harmless; the loop
/// resets it before it drains.
pub trait Bell: Send + Sync {
    /// Wakes the loop, or makes its next sleep end at once.
    fn ring(&self);
}

/// The sending half; clone it for each thread.
pub struct InboxSender<T, B> {
    items: mpsc::Sender<T>,
    bell: Arc<B>,
}

impl<T, B> Clone for InboxSender<T, B> {
    fn clone(&self) -> Self {
        InboxSender {
            items: self.items.clone(),
            bell: Arc::clone(&self.bell),
        }
    }
}

impl<T, B: Bell> InboxSender<T, B> {
    /// Hands `item` to the loop and rings its bell; gives the item back if
    /// the loop has stopped.
    pub fn send(&self, item: T) -> Result<(), T> {
        self.items.send(item).map_err(|error| error.0)?;
        self.bell.ring();
        Ok(())
    }
}

/// The loop's half.
pub struct Inbox<T> {
    items: mpsc::Receiver<T>,
}

/// Every sender is gone.
#[derive(Debug, PartialEq, Eq)]
pub struct Disconnected;

impl<T> Inbox<T> {
    /// Hands every item queued now to `take`, oldest first, without blocking;
    /// returns how many. Call it after resetting the bell.
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
pub fn inbox<T, B: Bell>(bell: Arc<B>) -> (InboxSender<T, B>, Inbox<T>) {
    let (items, receiver) = mpsc::channel();
    (InboxSender { items, bell }, Inbox { items: receiver })
}
