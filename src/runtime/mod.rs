//! The runtime: threads, timers and sockets that drive haft's machines.
//!
//! It holds no protocol logic: what to send and what to believe is decided by
//! the machines (for failure detection, [`crate::detector`]); the runtime only
//! moves their inputs and outputs between threads and the network. Every
//! structure shared between threads takes its primitives from [`crate::sync`],
//! so that the loom suite (verification/loom.rs) explores its interleavings.

#[cfg(not(loom))]
pub mod client;
pub mod codec;
pub mod config;
pub mod group_commit;
pub mod heartbeat;
#[cfg(not(loom))]
pub mod node;
pub mod storage;
