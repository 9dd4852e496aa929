//! haft — distributed-systems protocols as explicit state machines.
//!
//! # The determinism contract
//!
//! Every protocol machine in haft is a [`stateright`] actor (or, for the published
//! specifications, a stateright `Model`). A machine:
//!
//! - does no I/O: messages, timers, durable saves and random choices leave it as
//!   commands in stateright's [`Out`](stateright::actor::Out);
//! - reads no clock: where a machine needs time, the caller passes it in;
//! - draws no random number: a choice is offered to the caller with
//!   `Out::choose_random` and comes back through `on_random`.
//!
//! That is what lets the same code be explored exhaustively by the model checker
//! (see [`models`]) and driven over a real network by a runtime that holds no
//! protocol logic of its own.
//!
//! # Layout
//!
//! - [`commit`] — two-phase commit: coordinator, participant, their messages and
//!   durable records;
//! - [`detector`] — heartbeat failure detection: fixed-timeout and phi accrual
//!   estimators, SWIM-style suspicion and refutation, the membership view;
//! - [`node`] — one node of the runnable system: an actor composing the
//!   coordinator, the participant, the detector and the ring;
//! - [`ring`] — consistent hashing: an immutable ring of weighted nodes, owners,
//!   preference lists, migration plans and bounded loads;
//! - [`rebalance`] — the handoff of keys between owners when the ring changes;
//! - [`checker`] — haft's parallel model checker over stateright's `Model`:
//!   symmetry, refinement on every edge, AG EF liveness, seeded random walks;
//! - [`models`] — the systems the checker explores, their properties and the
//!   named variants that reproduce known bugs;
//! - [`runtime`] — drives the machines on threads; holds no protocol logic;
//! - [`sync`] — `std::sync` or `loom::sync`, chosen by `cfg(loom)`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod checker;
pub mod commit;
pub mod detector;
pub mod node;
pub mod rebalance;
pub mod ring;
pub mod runtime;
pub mod sync;

#[path = "../models/mod.rs"]
pub mod models;
