//! Heartbeat threads: the arrival table and the per-peer senders.
