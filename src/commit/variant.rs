//! Named faults: each reproduces a known way to get two-phase commit wrong.
//!
//! A variant is selected with `-p variant=NAME` in `haft check two-phase`. The
//! checker must refute every variant with a counterexample; the model's tests
//! assert which property each one breaks. That is what shows the properties are
//! not vacuous. `Correct` is the protocol as specified; the runtime always uses
//! it.

use std::fmt;

/// Which rule of the protocol, if any, is broken.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Variant {
    /// The protocol as specified.
    #[default]
    Correct,
    /// The coordinator commits once every participant has replied, whatever the
    /// replies — the seed document's `prepare`, which ignores the votes.
    /// Breaks AC3 (and AC1, since a No voter has aborted).
    IgnoreVotes,
    /// A participant votes Yes without saving its prepared record; after a crash
    /// it has forgotten its promise. Breaks AC1.
    NoDurableVote,
    /// A prepared participant whose decision timer fires aborts on its own
    /// instead of asking. Breaks AC1.
    AbortAfterYes,
    /// The coordinator sends Commit without saving it; after a crash it answers
    /// queries by presumed abort. Breaks AC1.
    ForgetDecision,
    /// The coordinator forgets a transaction after the first acknowledgement and
    /// later answers a query by presumed abort. Breaks AC1.
    EarlyForget,
    /// The coordinator sends its decision once and never again; on a lossy
    /// network a participant may never learn it. Breaks AC5.
    NoResend,
    /// A participant applies a commit in memory only, so the acknowledged write
    /// is not durable. Breaks durability.
    VolatileApply,
}

impl Variant {
    /// Every variant, `Correct` first.
    pub const ALL: [Variant; 8] = [
        Variant::Correct,
        Variant::IgnoreVotes,
        Variant::NoDurableVote,
        Variant::AbortAfterYes,
        Variant::ForgetDecision,
        Variant::EarlyForget,
        Variant::NoResend,
        Variant::VolatileApply,
    ];

    /// The variants' names on the command line, in the order of [`Variant::ALL`].
    pub const NAMES: [&'static str; 8] = [
        "correct",
        "ignore-votes",
        "no-durable-vote",
        "abort-after-yes",
        "forget-decision",
        "early-forget",
        "no-resend",
        "volatile-apply",
    ];

    /// The variant's name on the command line.
    pub fn name(self) -> &'static str {
        Variant::NAMES[self as usize]
    }

    /// The variant called `name`.
    pub fn from_name(name: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == name)
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::Variant;

    #[test]
    fn every_variant_round_trips_through_its_name() {
        for variant in Variant::ALL {
            assert_eq!(Variant::from_name(variant.name()), Some(variant));
        }
        assert_eq!(Variant::from_name("nope"), None);
    }
}
