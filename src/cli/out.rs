//! Standard output and error that never panic.
//!
//! `std`'s `println!` panics when standard output is closed, as it is when haft
//! pipes into `head -1`. Every print of this binary goes through [`write`]
//! instead: once standard output is gone nobody reads what haft would say, so it
//! stops at once, quietly, with the exit status of what it has already reported
//! ([`set_status_if_closed`]).

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

static STATUS_IF_CLOSED: AtomicU8 = AtomicU8::new(0);

/// The exit status to use if standard output turns out to be closed.
pub fn set_status_if_closed(status: u8) {
    STATUS_IF_CLOSED.store(status, Ordering::Relaxed);
}

/// Writes to standard output; exits if it is closed.
pub fn write(args: fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if out.write_fmt(args).is_err() {
        closed();
    }
}

/// Flushes standard output; exits if it is closed.
pub fn flush() {
    if std::io::stdout().lock().flush().is_err() {
        closed();
    }
}

/// Writes to standard error, ignoring a closed one.
pub fn write_error(args: fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

fn closed() -> ! {
    std::process::exit(i32::from(STATUS_IF_CLOSED.load(Ordering::Relaxed)))
}
