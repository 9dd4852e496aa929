//! What a machine asks its driver to do after one input.
//!
//! Every machine of haft takes one input at a time — a message, a timer, a
//! client request, "the log is durable up to here" — and answers with an
//! [`Output`]: plain data, carried out by whoever drives the machine (the
//! runtime over UDP and a log file, or a model's simulated network and disk).
//!
//! The driver carries out an output in this order:
//!
//! 1. append [`Output::persist`] to the durable log, in order;
//! 2. send [`Output::send_now`] at once — these messages depend on nothing that
//!    is not yet durable;
//! 3. send [`Output::send_after_persist`] only once every delta appended so far
//!    (this output's and every earlier one's) is durable, and then report the
//!    durable position back with the machine's `handle_persisted`;
//! 4. set and cancel [`Output::timers`]; hand [`Output::events`] to the
//!    application.
//!
//! A message is in `send_after_persist` only if it announces something a
//! not-yet-durable delta makes true (a Yes vote, a Commit, an acknowledgement),
//! in the spirit of raft-rs's `Ready`, whose `persisted_messages` wait for the
//! entries of the same `Ready`. Everything else leaves at once.

use std::ops::Range;
use std::time::Duration;

/// A place in a machine's stream of deltas: the number of deltas it has
/// emitted before. Positions restart at 0 with every life of a machine (they
/// are not stored); a driver reports durability with the same count.
pub type Position = u64;

/// Set or cancel a timer. Timers are data: the driver arms them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TimerOp<T> {
    /// Arm `timer` to fire once after a duration the driver draws from `after`
    /// (re-arming it if it is armed).
    Set {
        /// The timer.
        timer: T,
        /// The range the delay is drawn from; the machine draws no random number.
        after: Range<Duration>,
    },
    /// Disarm `timer` if it is armed.
    Cancel(T),
}

/// The outputs of one input. See the [module docs](self) for the order in
/// which a driver carries them out.
#[must_use = "a machine's output must be carried out: persist, send, arm timers"]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output<To, M, T, D, E> {
    /// The position of the first delta of this output.
    pub base: Position,
    /// Deltas to append to the durable log, in order.
    pub persist: Vec<D>,
    /// Messages that may leave now.
    pub send_now: Vec<(To, M)>,
    /// Messages that may leave only once every delta emitted so far is durable.
    pub send_after_persist: Vec<(To, M)>,
    /// Timers to set or cancel, in order.
    pub timers: Vec<TimerOp<T>>,
    /// Events for the application: decisions, applied writes, answers.
    pub events: Vec<E>,
}

impl<To, M, T, D, E> Output<To, M, T, D, E> {
    /// An empty output whose first delta will be at `base`.
    pub fn at(base: Position) -> Self {
        Output {
            base,
            persist: Vec::new(),
            send_now: Vec::new(),
            send_after_persist: Vec::new(),
            timers: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Appends a delta and returns its position.
    pub fn persist(&mut self, delta: D) -> Position {
        self.persist.push(delta);
        self.end() - 1
    }

    /// The position after this output's last delta: every delta before it has
    /// been emitted.
    pub fn end(&self) -> Position {
        self.base + self.persist.len() as Position
    }

    /// Sends `msg` to `to` at once.
    pub fn send(&mut self, to: To, msg: M) {
        self.send_now.push((to, msg));
    }

    /// Sends `msg` to `to` once everything emitted so far is durable.
    pub fn send_durable(&mut self, to: To, msg: M) {
        self.send_after_persist.push((to, msg));
    }

    /// Sends `msg` to `to` at once if what it rests on is durable, and once
    /// everything emitted so far is durable otherwise.
    pub fn send_resting_on(&mut self, to: To, msg: M, durable: bool) {
        if durable {
            self.send(to, msg);
        } else {
            self.send_durable(to, msg);
        }
    }

    /// Arms `timer` to fire after a delay drawn from `after`.
    pub fn set_timer(&mut self, timer: T, after: Range<Duration>) {
        self.timers.push(TimerOp::Set { timer, after });
    }

    /// Disarms `timer`.
    pub fn cancel_timer(&mut self, timer: T) {
        self.timers.push(TimerOp::Cancel(timer));
    }

    /// Hands `event` to the application.
    pub fn event(&mut self, event: E) {
        self.events.push(event);
    }

    /// Whether the output asks for nothing at all.
    pub fn is_empty(&self) -> bool {
        self.persist.is_empty()
            && self.send_now.is_empty()
            && self.send_after_persist.is_empty()
            && self.timers.is_empty()
            && self.events.is_empty()
    }

    /// Moves the contents of `inner` — the output of a machine this one
    /// composes — into this output, converting each part. `inner` must have
    /// been created at this output's [`end`](Output::end).
    pub fn absorb<To2, M2, T2, D2, E2>(
        &mut self,
        inner: Output<To2, M2, T2, D2, E2>,
        to: impl Fn(To2) -> To,
        msg: impl Fn(M2) -> M,
        timer: impl Fn(T2) -> T,
        delta: impl Fn(D2) -> D,
        mut event: impl FnMut(E2) -> Option<E>,
    ) {
        debug_assert_eq!(
            inner.base,
            self.end(),
            "an inner output starts where ours ends"
        );
        self.persist.extend(inner.persist.into_iter().map(delta));
        self.send_now
            .extend(inner.send_now.into_iter().map(|(t, m)| (to(t), msg(m))));
        self.send_after_persist.extend(
            inner
                .send_after_persist
                .into_iter()
                .map(|(t, m)| (to(t), msg(m))),
        );
        self.timers
            .extend(inner.timers.into_iter().map(|op| match op {
                TimerOp::Set { timer: t, after } => TimerOp::Set {
                    timer: timer(t),
                    after,
                },
                TimerOp::Cancel(t) => TimerOp::Cancel(timer(t)),
            }));
        self.events
            .extend(inner.events.into_iter().filter_map(&mut event));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Out = Output<u8, &'static str, u8, u32, ()>;

    #[test]
    fn positions_count_every_delta_emitted() {
        let mut out = Out::at(10);
        assert_eq!(out.end(), 10);
        assert_eq!(out.persist(7), 10);
        assert_eq!(out.persist(8), 11);
        assert_eq!(out.end(), 12);
    }

    #[test]
    fn a_message_waits_only_for_a_delta_not_yet_durable() {
        let mut out = Out::at(5);
        out.send_resting_on(1, "durable already", true);
        out.send_resting_on(1, "rests on a pending delta", false);
        assert_eq!(out.send_now, vec![(1, "durable already")]);
        assert_eq!(
            out.send_after_persist,
            vec![(1, "rests on a pending delta")]
        );
    }

    #[test]
    fn absorbing_keeps_order_and_converts() {
        let mut outer: Output<u16, String, u16, u64, bool> = Output::at(0);
        outer.persist(1);
        let mut inner = Out::at(outer.end());
        inner.persist(2);
        inner.send(3, "hello");
        inner.send_durable(4, "after");
        inner.set_timer(9, Duration::ZERO..Duration::ZERO);
        inner.event(());
        outer.absorb(
            inner,
            u16::from,
            |m| m.to_string(),
            u16::from,
            u64::from,
            |()| Some(true),
        );
        assert_eq!(outer.persist, vec![1, 2]);
        assert_eq!(outer.send_now, vec![(3, "hello".to_string())]);
        assert_eq!(outer.send_after_persist, vec![(4, "after".to_string())]);
        assert_eq!(outer.events, vec![true]);
        assert_eq!(outer.end(), 2);
    }
}
