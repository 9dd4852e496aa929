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
//!   owners, preference lists, migration plans, bounded loads, and the
//!   [`ring::Layout`] of a cluster's epoch (the node moves keys between two);
//! - [`output`] — the output every machine writes;
//! - [`storage`] — the durable log of a node's records, with checkpoints,
//!   group commit, and the locked data directory;
//! - [`resp`] — the Redis protocol front end over a backend trait (feature
//!   `resp`, part of `cli`);
//! - [`checker`] — haft's parallel model checker over stateright's `Model`:
//!   symmetry, refinement on every edge, AG EF liveness, seeded random walks
//!   (feature `check`);
//! - [`sync`] — `std::sync` or `loom::sync`, chosen by `cfg(loom)`.
//!
//! # Embedding
//!
//! The machines are plain values. Here a coordinator commits a transaction at
//! two participants, and the test plays the driver: it carries every message
//! by hand and declares each log durable at once. (A complete loop over a
//! queue is `examples/embed_commit.rs`; a real driver is `runtime::node`.)
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::time::Duration;
//! use haft::NodeId;
//! use haft::commit::*;
//!
//! let wait = Duration::from_millis(50)..Duration::from_millis(100);
//! let config = CoordinatorConfig { vote_timeout: wait.clone(), resend_every: wait.clone() };
//! let (me, peers) = (NodeId(0), [NodeId(1), NodeId(2)]);
//! let mut boot = CommitOutput::at(0);
//! let mut coordinator = Coordinator::recover(me, config, CoordinatorRecord::default(), &mut boot)?;
//! coordinator.handle_persisted(boot.end()); // the new incarnation, durable before any input
//! let write = |key: &str| Part {
//!     reads: ReadSet::new(),
//!     writes: WriteSet::from([(Key::from(key.to_owned()), Some(Value::from("1")))]),
//! };
//! let plan = TxnPlan::from([(peers[0], write("x")), (peers[1], write("y"))]);
//! let mut out = CommitOutput::at(boot.end());
//! let txn = coordinator.begin(plan, None, &mut out)?;
//! assert_eq!(out.send_now.len(), 2); // the Prepares rest on nothing unsaved
//!
//! let mut participants: BTreeMap<NodeId, Participant> = peers
//!     .map(|p| (p, Participant::new(p, ParticipantConfig { uncertain_after: wait.clone() })))
//!     .into();
//! // Phase one: each participant saves its prepared record, then votes Yes.
//! let mut decision = CommitOutput::at(out.end());
//! for (to, prepare) in out.send_now {
//!     let mut vote = CommitOutput::at(0);
//!     let participant = participants.get_mut(&to).unwrap();
//!     participant.handle_message(me, prepare, &mut vote);
//!     assert!(vote.send_now.is_empty()); // the Yes waits for the prepared record
//!     participant.handle_persisted(vote.end());
//!     for (_, msg) in vote.send_after_persist {
//!         coordinator.handle_message(to, msg, &mut decision);
//!     }
//! }
//! // Phase two: the commit record first, then the Commits.
//! assert!(matches!(decision.events[..], [Event::Decided { outcome: Outcome::Commit, .. }]));
//! let end = decision.end();
//! coordinator.handle_persisted(end);
//! for (to, commit) in decision.send_after_persist {
//!     let mut ack = CommitOutput::at(1);
//!     let participant = participants.get_mut(&to).unwrap();
//!     participant.handle_message(me, commit, &mut ack);
//!     participant.handle_persisted(ack.end());
//!     assert_eq!(participant.committed(b"x").or(participant.committed(b"y")).unwrap().version, txn);
//!     for (_, msg) in ack.send_after_persist {
//!         coordinator.handle_message(to, msg, &mut CommitOutput::at(end));
//!     }
//! }
//! assert!(coordinator.txns().is_empty()); // every participant acknowledged: forgotten
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
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

#[cfg(feature = "runtime")]
pub mod runtime;

#[cfg(feature = "check")]
#[path = "../models/mod.rs"]
pub mod models;

pub use id::NodeId;
