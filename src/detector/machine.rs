//! The detector as a machine with timers: a heartbeat timer, a check timer, a
//! logical clock, and the [`Detector`] core.
//!
//! It reads no clock of its own: each firing of the check timer advances its
//! logical clock by `check_interval`. Driven by real timers, the logical clock
//! tracks real time to within one check; in a model, the timers fire in any
//! order, which covers every relative speed of the nodes.

use std::convert::Infallible;
use std::time::Duration;

use super::{Command, ConfigError, Detector, DetectorConfig, Estimator, Message, Millis};
use crate::NodeId;
use crate::output::Output;

/// The detector's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DetectorTimer {
    /// Time to send a heartbeat to every peer.
    Heartbeat,
    /// Time to advance the clock and run the estimators.
    Check,
}

/// The output of a [`Heartbeats`] machine: it persists nothing and reports no
/// event.
pub type DetectorOutput = Output<NodeId, Message, DetectorTimer, Infallible, Infallible>;

/// How often the machine beats and checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HeartbeatTiming {
    /// The heartbeat period, in ms.
    pub heartbeat_interval: Millis,
    /// How often the estimators run, in ms.
    pub check_interval: Millis,
}

/// One node's failure detector with its timers. See the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Heartbeats<E> {
    peers: Vec<NodeId>,
    timing: HeartbeatTiming,
    clock: Millis,
    detector: Detector<E>,
}

fn every(ms: Millis) -> std::ops::Range<Duration> {
    let period = Duration::from_millis(ms);
    period..period
}

impl<E: Estimator> Heartbeats<E> {
    /// Starts the detector of `me`, monitoring `peers` (`me` is skipped if
    /// listed), and arms its timers.
    ///
    /// `incarnation_floor` is where this life's incarnation starts. Dead is
    /// final for an incarnation, so a node that restarts must come back above
    /// every incarnation of its earlier lives, or peers that declared it Dead
    /// would never take it back; with a floor above 0 the machine announces
    /// its incarnation at once.
    pub fn start(
        me: NodeId,
        peers: &[NodeId],
        estimator: E,
        config: DetectorConfig,
        timing: HeartbeatTiming,
        incarnation_floor: u64,
        out: &mut DetectorOutput,
    ) -> Result<Heartbeats<E>, ConfigError> {
        for (field, value) in [
            ("heartbeat_interval", timing.heartbeat_interval),
            ("check_interval", timing.check_interval),
        ] {
            if value == 0 {
                return Err(ConfigError::ZeroDuration { field });
            }
        }
        let mut detector = Detector::new(me, peers.iter().copied(), estimator, config, 0)?;
        let peers: Vec<NodeId> = peers.iter().copied().filter(|p| *p != me).collect();
        if incarnation_floor > 0 {
            if let Some(Command::Broadcast(alive)) = detector.refute(incarnation_floor - 1) {
                for peer in &peers {
                    out.send(*peer, alive);
                }
            }
        }
        out.set_timer(DetectorTimer::Heartbeat, every(timing.heartbeat_interval));
        out.set_timer(DetectorTimer::Check, every(timing.check_interval));
        Ok(Heartbeats {
            peers,
            timing,
            clock: 0,
            detector,
        })
    }

    /// Monitors exactly `peers` from now on (see [`Detector::set_peers`]),
    /// with a fresh copy of `estimator` for each new one.
    pub fn set_peers(&mut self, peers: &[NodeId], estimator: E) {
        self.detector
            .set_peers(peers.iter().copied(), estimator, self.clock);
        let me = self.detector.me();
        self.peers = peers.iter().copied().filter(|p| *p != me).collect();
    }

    /// The core, whose view other machines read ([`Detector::status`]).
    pub fn detector(&self) -> &Detector<E> {
        &self.detector
    }

    /// The logical clock: `check_interval` per check so far.
    pub fn clock(&self) -> Millis {
        self.clock
    }

    /// Handles a detector message from `from`.
    pub fn handle_message(&mut self, from: NodeId, msg: Message, out: &mut DetectorOutput) {
        let commands = self.detector.handle(self.clock, from, msg);
        self.carry_out(commands, out);
    }

    /// Handles a timer.
    pub fn handle_timer(&mut self, timer: DetectorTimer, out: &mut DetectorOutput) {
        match timer {
            DetectorTimer::Heartbeat => {
                let beat = self.detector.heartbeat();
                self.carry_out(vec![Command::Broadcast(beat)], out);
                out.set_timer(
                    DetectorTimer::Heartbeat,
                    every(self.timing.heartbeat_interval),
                );
            }
            DetectorTimer::Check => {
                self.clock += self.timing.check_interval;
                let commands = self.detector.check(self.clock);
                self.carry_out(commands, out);
                out.set_timer(DetectorTimer::Check, every(self.timing.check_interval));
            }
        }
    }

    fn carry_out(&self, commands: Vec<Command>, out: &mut DetectorOutput) {
        for Command::Broadcast(message) in commands {
            for peer in &self.peers {
                out.send(*peer, message);
            }
        }
    }
}
