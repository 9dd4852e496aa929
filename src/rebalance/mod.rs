//! Key handoff: moving keys to their new holders when the ring changes, as a
//! sans-IO machine ([`Handoff`]).
//!
//! # The protocol
//!
//! Each key is held by the first `replicas` distinct members of its
//! preference list on the ring of an epoch ([`Layout`]). The first, the
//! key's *primary*, alone accepts its writes and serves its reads — once it
//! holds the key's *custody*; it stores every write durably, gives it a
//! [`Version`] (its epoch, then a counter) and copies it to the other holders,
//! the *backups*, before it answers.
//!
//! Rings change one epoch at a time ([`RingChange`], sent by an administrator
//! until acknowledged). When a node installs epoch `e`:
//!
//! - for every range of keys whose primary moves from it to another node, it
//!   sends that node a [`Msg::Handoff`] with every key of those ranges (values
//!   and tombstones; possibly none), keeps the keys, and accepts no write to
//!   them any more — a request for one is forwarded to the new primary. It
//!   resends the handoff until it is acknowledged, and only then drops the
//!   keys it no longer holds ("no lost keys");
//! - for every range whose primary moves to it, it waits for the handoff of
//!   the previous primary (both sides compute the same pairs from the two
//!   rings, [`Layout::handoffs_to`]), answering `Retry` for those keys
//!   meanwhile: a primary serves a key only once it has its newest value
//!   ("one writer per key and epoch");
//! - it installs the next ring only once every handoff it waits for has
//!   arrived, so it hands over only keys whose custody it holds: each key has
//!   one chain of custody, and the newest primary receives every write;
//! - as primary it replicates to each new backup the keys that backup did not
//!   hold; a backup that leaves a key's list drops it.
//!
//! A request may reach any node: one that is not the key's primary forwards
//! it once to the primary it knows. Writes carry a [`RequestId`]; the key
//! keeps the id of its writer, so a duplicated or retried write is answered,
//! not applied twice, and a late copy of an overwritten one is refused
//! ([`Reply::Superseded`]). Deletes leave tombstones, so an old copy cannot
//! bring a key back.
//!
//! # Faults
//!
//! Messages may be lost, duplicated and reordered: every handler is
//! idempotent (a value is merged by version; a handoff is told from its
//! duplicates by the set of awaited senders; a ring by its epoch), and
//! whatever waits for an acknowledgement — a handoff, a replica, a ring
//! announcement, a request — is resent on a timer. A node that crashes
//! recovers from its record ([`HandoffRecord`], folded from [`Delta`]s) and
//! sends again what was unacknowledged; a message that announces something
//! (an acknowledgement, a handoff, a replica, a write's answer) waits for the
//! deltas it rests on.
//!
//! Not covered here: tombstones are kept for ever (no collection); a node
//! that loses its disk is not replaced from its backups; concurrent
//! membership changes are serialised by the administrator, which announces
//! epoch `e + 1` once every node of `e` has acknowledged `e`.
//!
//! # Driving the machine
//!
//! [`Handoff`] does no I/O, reads no clock and draws no random number. Each
//! input — [`Handoff::handle_message`], [`Handoff::handle_timer`],
//! [`Handoff::handle_persisted`] — writes a [`HandoffOutput`]: deltas to
//! append, messages to send now, messages to send once the deltas are
//! durable, the [`Timer`], and [`Event`]s (see [`crate::output`] for the
//! order). The `ring-handoff` model (models/ring_handoff.rs) runs this very
//! machine on a simulated network and disk; its properties are named in the
//! comments of the rules that protect them.

mod layout;
mod machine;
mod message;
mod record;
#[cfg(test)]
mod tests;

pub use layout::{Epoch, Layout, RingChange};
pub use machine::{Handoff, HandoffConfig, HandoffError};
pub use message::{
    Event, Key, Msg, Op, Reply, Request, RequestId, Timer, Value, Version, Versioned,
};
pub use record::{Delta, HandoffRecord};

use crate::NodeId;
use crate::output::Output;

/// The output of the handoff machine.
pub type HandoffOutput = Output<NodeId, Msg, Timer, Delta, Event>;
