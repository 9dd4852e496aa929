//! The one place that chooses between `std` and `loom` synchronisation types.
//!
//! Every structure shared between threads imports its primitives from here, so
//! that building with `RUSTFLAGS="--cfg loom"` puts all of them under loom's
//! scheduler at once.

#[cfg(loom)]
pub use loom::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, atomic, mpsc};
#[cfg(loom)]
pub use loom::thread;

#[cfg(not(loom))]
pub use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, atomic, mpsc};
#[cfg(not(loom))]
pub use std::thread;
