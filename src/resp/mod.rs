//! The Redis protocol front end: a RESP2/RESP3 server that any Redis client
//! (redis-cli, redis-py, …) can use, over a store reached only through the
//! [`Backend`] trait.
//!
//! # What it promises
//!
//! - Every command that writes is one atomic transaction over the keys it
//!   touches (MSET and DEL of many keys commit at all or none).
//! - MULTI/EXEC is one serializable transaction: the queued commands' keys are
//!   read at EXEC, their replies and writes computed from those values, and the
//!   writes committed with the read versions as the read set. WATCHed keys join
//!   the read set at the versions WATCH saw; EXEC answers the null array if one
//!   changed, exactly as Redis does.
//! - A commit refused for any other reason (a conflict with a concurrent
//!   transaction, an abort that wrote nothing) is retried: clients never see a
//!   conflict, and INCR never loses an increment. `txn.rs` has the loop.
//! - Errors are Redis's, in Redis's words: an unknown command, a wrong argument
//!   count or a bad option gets an error reply and the connection stays usable.
//!   Only bytes that do not follow the protocol close it, after
//!   `-ERR Protocol error: …`, as Redis does. Client input never panics.
//! - Values up to `max_bulk_bytes` (default 64 MiB, never less than 16 MiB);
//!   larger ones are refused from their length line.
//! - Expiry (EX, PX, EXAT, PXAT, KEEPTTL) is not supported and is refused with
//!   an error that says so; haft has one database (SELECT 0).
//!
//! # Layout
//!
//! Data flows one way, one file per step: `server.rs` accepts a client →
//! `connection.rs` reads its bytes → `framing.rs` cuts out requests (with
//! `redis-protocol`'s decoder) → `session.rs` dispatches each to a family in
//! `command/` → data commands run as a transaction (`txn.rs`) against the
//! [`Backend`], whose blind writes of all connections `combine.rs` merges
//! into shared commits → `reply.rs` encodes the answer. Tests and local use take the
//! [`MemoryBackend`]; a cluster node serves them through `ClusterBackend`
//! (`cluster.rs`, with the `runtime` feature), over its protocol core.
//!
//! # Starting it
//!
//! [`RespServer::start`] with a [`RespConfig`] (address, `requirepass`, limits)
//! and an `Arc<dyn Backend>` binds, then serves on a thread and runtime of its
//! own; [`serve`] does the same inside a caller's tokio runtime.

mod backend;
#[cfg(feature = "runtime")]
mod cluster;
mod combine;
mod command;
mod config;
mod connection;
mod error;
mod framing;
mod memory;
mod reply;
mod server;
mod session;
mod txn;

pub use backend::{
    Backend, BackendError, BoxFuture, ClusterInfo, CommitOutcome, Version, Versioned,
};
#[cfg(feature = "runtime")]
pub use cluster::{ClusterBackend, ClusterTimeouts};
pub use config::{MIN_BULK_BYTES, RespConfig, RetryConfig};
pub use error::ServerError;
pub use memory::{Fault, MemoryBackend, MemoryStats};
pub use server::{RespServer, serve};
