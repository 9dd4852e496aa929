//! Canonical representatives for symmetry reduction.
