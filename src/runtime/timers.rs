//! The event loop's timers: at most one deadline per timer, kept in deadline
//! order so that finding what is due, or when the next one is, costs a look at
//! the first entry rather than a pass over every timer (a loop with many
//! transactions in flight holds a timer or two for each).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// Timers of type `T` with their deadlines.
#[derive(Debug)]
pub struct Timers<T> {
    /// Each timer's deadline.
    deadlines: BTreeMap<T, Instant>,
    /// The same pairs, by deadline (then timer, for timers due at once).
    by_deadline: BTreeSet<(Instant, T)>,
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers {
            deadlines: BTreeMap::new(),
            by_deadline: BTreeSet::new(),
        }
    }
}

impl<T: Ord + Clone> Timers<T> {
    /// Sets `timer` to fire at `deadline`, replacing its earlier deadline.
    pub fn set(&mut self, timer: T, deadline: Instant) {
        if let Some(old) = self.deadlines.insert(timer.clone(), deadline) {
            self.by_deadline.remove(&(old, timer.clone()));
        }
        self.by_deadline.insert((deadline, timer));
    }

    /// Cancels `timer`, if set.
    pub fn cancel(&mut self, timer: &T) {
        if let Some(old) = self.deadlines.remove(timer) {
            self.by_deadline.remove(&(old, timer.clone()));
        }
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.by_deadline.first().map(|(deadline, _)| *deadline)
    }

    /// Takes the timer with the earliest deadline if that deadline is at or
    /// before `now`. Taken one at a time, so that what a fired timer's
    /// handler sets or cancels counts before the next one is looked at.
    pub fn pop_due(&mut self, now: Instant) -> Option<T> {
        let (deadline, _) = self.by_deadline.first()?;
        if *deadline > now {
            return None;
        }
        let (_, timer) = self.by_deadline.pop_first()?;
        self.deadlines.remove(&timer);
        Some(timer)
    }

    /// How many timers are set.
    pub fn len(&self) -> usize {
        self.deadlines.len()
    }

    /// Whether no timer is set.
    pub fn is_empty(&self) -> bool {
        self.deadlines.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timers_fire_in_deadline_order_once_due() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut timers = Timers::default();
        timers.set("c", at(30));
        timers.set("a", at(10));
        timers.set("b", at(20));
        assert_eq!(timers.next_deadline(), Some(at(10)));
        assert_eq!(timers.pop_due(at(5)), None, "nothing is due yet");
        assert_eq!(timers.pop_due(at(25)), Some("a"));
        assert_eq!(timers.pop_due(at(25)), Some("b"));
        assert_eq!(timers.pop_due(at(25)), None, "c is not due");
        assert_eq!(timers.len(), 1);
        assert_eq!(timers.pop_due(at(30)), Some("c"), "due at its deadline");
        assert!(timers.is_empty());
        assert_eq!(timers.next_deadline(), None);
    }

    #[test]
    fn setting_a_timer_again_moves_its_deadline_and_cancel_removes_it() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut timers = Timers::default();
        timers.set("a", at(10));
        timers.set("b", at(20));
        timers.set("a", at(40));
        assert_eq!(timers.len(), 2, "one deadline per timer");
        assert_eq!(timers.next_deadline(), Some(at(20)));
        assert_eq!(timers.pop_due(at(30)), Some("b"));
        assert_eq!(timers.pop_due(at(30)), None, "a's old deadline is gone");
        timers.cancel(&"a");
        timers.cancel(&"never set");
        assert!(timers.is_empty());
        assert_eq!(timers.pop_due(at(100)), None);
    }
}
