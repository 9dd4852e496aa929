//! The runtime: threads, timers and sockets that drive haft's machines.
//!
//! It holds no protocol logic: what to send and what to believe is decided by
//! the machines (for failure detection, [`crate::detector`]); the runtime only
//! moves their inputs and outputs between threads and the network. Every
//! structure shared between threads takes its primitives from [`crate::sync`],
//! so that the loom suite (verification/loom.rs) explores its interleavings.
//!
//! - [`codec`] frames one message per datagram;
//! - [`node`] runs one [`Node`](crate::node::Node) over UDP with the codec and
//!   the log of [`crate::storage`], configured by [`config`]; [`client`]
//!   talks to it;
//! - [`heartbeat`] holds heartbeat sender threads and an arrival table;
//! - [`timers`] keeps the event loop's deadlines in order;
//! - [`inbox`] is how other threads hand the node's event loop its events,
//!   and whose turn it is to read the node's socket.
//!
//! `node` and `client` use sockets and real time, which loom cannot model, so
//! they are left out of `cfg(loom)` builds.

#[cfg(not(loom))]
pub mod client;
pub mod codec;
pub mod config;
pub mod heartbeat;
pub mod inbox;
#[cfg(not(loom))]
pub mod node;
pub mod timers;
