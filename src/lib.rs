//! haft — distributed-systems protocols as explicit state machines.
//!
//! # The determinism contract
//!
//! Every protocol machine in haft is *sans-IO*. A machine
//!
//! - does no I/O: each input (a message, a timer, a client request, "the log
//!   is durable up to here") writes an [`Output`](output::Output) — deltas to
//!   persist, messages that may leave now, messages that may leave only once
//!   those deltas are durable, timers to set or cancel, events for the
//!   application — and its driver carries it out;
//! - reads no clock: timers are data, and a machine that needs time keeps a
//!   logical clock advanced by its timers;
//! - draws no random number: a timer's delay is a range the driver draws from.
//!
//! A message waits for a save only if it announces something the save makes
//! true (a Yes vote, a Commit, an acknowledgement); heartbeats, reads and
//! resends of what is already durable leave at once. That contract is what
//! lets one piece of code be explored exhaustively by the model checker (the
//! `check` feature's models drive these very machines on a simulated network,
//! clock and disk) and run over UDP by a runtime that holds no protocol logic
//! of its own (the `runtime` feature).
//!
//! # Layout
//!
//! - [`commit`] — two-phase commit: coordinator, participant, their messages,
//!   deltas and records;
//! - [`detector`] — heartbeat failure detection: fixed-timeout and phi accrual
//!   estimators, SWIM-style suspicion and refutation, the timed machine;
//! - [`node`] — one node of the runnable system, composing the machines;
//! - [`ring`] — consistent hashing: an immutable ring of weighted nodes,
//!   owners, preference lists, migration plans and bounded loads;
//! - [`output`] — the output every machine writes;
//! - [`storage`] — the durable log of a node's records, with checkpoints,
//!   group commit, and the locked data directory;
//! - [`resp`] — the Redis protocol front end over a backend trait (feature
//!   `resp`, part of `cli`);
//! - [`checker`] — haft's parallel model checker over stateright's `Model`:
//!   symmetry, refinement on every edge, AG EF liveness, seeded random walks
//!   (feature `check`);
//! - [`sync`] — `std::sync` or `loom::sync`, chosen by `cfg(loom)`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "check")]
pub mod checker;
pub mod commit;
pub mod detector;
mod id;
pub mod node;
pub mod output;
#[cfg(all(feature = "resp", not(loom)))]
pub mod resp;
pub mod ring;
pub mod storage;
pub mod sync;

// Not yet rewritten in the sans-IO style: the handoff machine is still a
// stateright actor, checked by `ring-handoff`, and lives with the models.
#[cfg(feature = "check")]
pub mod rebalance;
#[cfg(feature = "runtime")]
pub mod runtime;

#[cfg(feature = "check")]
#[path = "../models/mod.rs"]
pub mod models;

pub use id::NodeId;
