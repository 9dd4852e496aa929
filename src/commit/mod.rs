//! Two-phase commit: coordinator, participant, their messages and durable records.
