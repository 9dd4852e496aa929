//! Hosting a sans-IO machine as a stateright actor: the model's simulated
//! disk and the order in which an [`Output`](crate::output::Output) is carried
//! out.
//!
//! A model drives the production machine itself; this module is the whole of
//! what stands between them and the checker: it turns the machine's deltas
//! into saves of a durable record, its messages into sends, and holds back the
//! messages that must wait for a save.
//!
//! # The disk
//!
//! - [`Disk::Async`] is the runtime's disk: deltas join a *pending* list, and
//!   the messages of `send_after_persist` are *held* with them; a `Sync` timer
//!   — which the checker may fire at any point, or never before a crash —
//!   makes everything pending durable (one `Out::save` of the durable record)
//!   and releases everything held. A crash loses whatever is pending and held.
//!   `send_now` messages leave at once, so a machine that put a message there
//!   which rests on an unsaved delta is caught: the checker crashes the node
//!   between the send and the save.
//! - [`Disk::Atomic`] saves every step's deltas and sends everything within
//!   the step: fewer states, for models whose other parameters are large.
//!
//! The durable record is kept in the actor's state (stateright hands an actor
//! its storage only when it starts), next to the machine; it is what
//! `Out::save` writes and what a restart reads.

use std::fmt::Debug;
use std::hash::Hash;

use stateright::actor::{Actor, Id, Out, model_timeout};

use crate::checker::symmetry::{Permutation, Permute};
use crate::output::TimerOp;

use crate::output::Position;

/// How the model's disk behaves (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Disk {
    /// Every step's deltas are durable within the step.
    Atomic,
    /// Deltas are durable only when the checker fires the node's `Sync` timer.
    Async,
}

/// A record deltas fold into.
pub trait Fold<D> {
    /// Applies one delta.
    fn fold(&mut self, delta: &D);
}

/// A hosted machine's timers: its own, and the disk's sync.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostTimer<T> {
    /// A timer of the machine.
    Machine(T),
    /// The disk: make everything pending durable and release what it holds.
    Sync,
}

// Traces show the machine's own timer, `VoteTimeout(t0.1.0)`, or `Sync`.
impl<T: Debug> Debug for HostTimer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostTimer::Machine(timer) => timer.fmt(f),
            HostTimer::Sync => f.write_str("Sync"),
        }
    }
}

impl<T: Permute> Permute for HostTimer<T> {
    fn permute(&self, p: &Permutation) -> Self {
        match self {
            HostTimer::Machine(timer) => HostTimer::Machine(timer.permute(p)),
            HostTimer::Sync => HostTimer::Sync,
        }
    }
}

/// The disk's side of an actor's state: the durable record, the deltas not
/// yet durable, and the messages waiting for them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DiskState<R, D, M> {
    /// What survives a crash.
    pub durable: R,
    /// Deltas not yet durable.
    pub pending: Vec<D>,
    /// Messages that leave once `pending` is durable.
    pub held: Vec<(Id, M)>,
}

impl<R, D, M> DiskState<R, D, M>
where
    R: Fold<D> + Clone + Debug + Hash + Eq,
    D: Clone + Debug + Hash + Eq,
    M: Clone + Debug + Hash + Eq,
{
    /// The disk of an actor whose durable record is `durable`.
    pub fn new(durable: R) -> Self {
        DiskState {
            durable,
            pending: Vec::new(),
            held: Vec::new(),
        }
    }

    /// Where the next output's first delta is: positions count from the last
    /// sync, so they stay small (and the state space finite).
    pub fn base(&self) -> Position {
        self.pending.len() as Position
    }

    /// Carries out one output's persist and sends. Returns whether everything
    /// the machine emitted is now durable (the caller then tells the machine,
    /// with `handle_persisted(Position::MAX)`).
    pub fn carry_out<A>(
        &mut self,
        disk: Disk,
        persist: Vec<D>,
        send_now: Vec<(Id, M)>,
        send_after_persist: Vec<(Id, M)>,
        sync: A::Timer,
        o: &mut Out<A>,
    ) -> bool
    where
        A: Actor<Msg = M, Storage = R>,
    {
        for (to, msg) in send_now {
            o.send(to, msg);
        }
        match disk {
            Disk::Atomic => {
                if !persist.is_empty() {
                    for delta in &persist {
                        self.durable.fold(delta);
                    }
                    o.save(self.durable.clone());
                }
                for (to, msg) in send_after_persist {
                    o.send(to, msg);
                }
                true
            }
            Disk::Async => {
                self.pending.extend(persist);
                if self.pending.is_empty() {
                    // Nothing is waiting to become durable: nothing to wait for.
                    for (to, msg) in send_after_persist {
                        o.send(to, msg);
                    }
                    return true;
                }
                // On a duplicating network a message sent twice is sent once:
                // holding a copy again (a resend timer firing before the sync)
                // would only grow the state without end.
                for message in send_after_persist {
                    if !self.held.contains(&message) {
                        self.held.push(message);
                    }
                }
                o.set_timer(sync, model_timeout());
                false
            }
        }
    }

    /// The `Sync` timer fired: everything pending becomes durable and what it
    /// held leaves.
    pub fn sync<A>(&mut self, o: &mut Out<A>)
    where
        A: Actor<Msg = M, Storage = R>,
    {
        for delta in std::mem::take(&mut self.pending) {
            self.durable.fold(&delta);
        }
        o.save(self.durable.clone());
        for (to, msg) in std::mem::take(&mut self.held) {
            o.send(to, msg);
        }
    }
}

/// Renamed with the actor that owns it. The held messages all leave together
/// at the next sync, so they are a set: sorted after renaming, so that two
/// disks holding the same messages in another order have the same images
/// (the order they were held in is not state any property or step reads).
/// The pending deltas keep their order, which is the order they fold in.
impl<R, D, M> Permute for DiskState<R, D, M>
where
    R: Permute,
    D: Permute,
    M: Permute + Ord,
{
    fn permute(&self, p: &Permutation) -> Self {
        let mut held: Vec<(Id, M)> = self.held.iter().map(|m| m.permute(p)).collect();
        held.sort();
        DiskState {
            durable: self.durable.permute(p),
            pending: self.pending.permute(p),
            held,
        }
    }
}

/// Sets and cancels the machine's timers, wrapped for the actor.
pub fn carry_out_timers<A: Actor, T>(
    timers: Vec<TimerOp<T>>,
    wrap: impl Fn(T) -> A::Timer,
    o: &mut Out<A>,
) {
    for op in timers {
        match op {
            // The model fires a timer at any point: its delay is irrelevant.
            TimerOp::Set { timer, .. } => o.set_timer(wrap(timer), model_timeout()),
            TimerOp::Cancel(timer) => o.cancel_timer(wrap(timer)),
        }
    }
}
