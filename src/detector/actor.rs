//! The detector as a stateright [`Actor`]: a heartbeat timer, a check timer, and
//! the [`Detector`] core handling suspicion and refutation messages.
//!
//! stateright's actors get no clock, so the actor keeps a logical one: each
//! check timer firing advances it by `check_interval`. Over UDP the timer fires
//! every `check_interval` of real time, so the logical clock tracks real time to
//! within one check; in the model checker the timers fire in any order, which
//! covers every relative speed of the nodes.

use std::borrow::Cow;
use std::time::Duration;

use stateright::actor::{Actor, Id, Out};

use super::{Command, ConfigError, Detector, DetectorConfig, Estimator, Message, Millis};

/// The detector's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DetectorTimer {
    /// Time to broadcast a heartbeat.
    Heartbeat,
    /// Time to advance the clock and run the estimators.
    Check,
}

/// The actor's state: its logical clock and its detector.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DetectorState<E> {
    /// Logical time: `check_interval` per check so far.
    pub clock: Millis,
    /// The core, whose membership view other machines read
    /// ([`Detector::members`], [`Detector::status`]).
    pub detector: Detector<E>,
}

/// One node's failure detector as an actor.
#[derive(Clone, Debug)]
pub struct DetectorActor<E> {
    peers: Vec<Id>,
    estimator: E,
    config: DetectorConfig,
    heartbeat_interval: Millis,
    check_interval: Millis,
}

impl<E: Estimator> DetectorActor<E> {
    /// A detector actor monitoring `peers` (its own id may be among them; it is
    /// skipped), heartbeating every `heartbeat_interval` ms and checking every
    /// `check_interval` ms. Refused if any setting is invalid.
    pub fn new(
        peers: Vec<Id>,
        estimator: E,
        config: DetectorConfig,
        heartbeat_interval: Millis,
        check_interval: Millis,
    ) -> Result<DetectorActor<E>, ConfigError> {
        config.validate()?;
        for (field, value) in [
            ("heartbeat_interval", heartbeat_interval),
            ("check_interval", check_interval),
        ] {
            if value == 0 {
                return Err(ConfigError::ZeroDuration { field });
            }
        }
        Ok(DetectorActor {
            peers,
            estimator,
            config,
            heartbeat_interval,
            check_interval,
        })
    }
}

impl<E> DetectorActor<E>
where
    E: Estimator + Eq + std::hash::Hash,
{
    fn carry_out(&self, id: Id, commands: Vec<Command>, o: &mut Out<Self>) {
        let others: Vec<Id> = self.peers.iter().copied().filter(|p| *p != id).collect();
        for Command::Broadcast(message) in commands {
            o.broadcast(&others, &message);
        }
    }
}

fn every(ms: Millis) -> std::ops::Range<Duration> {
    let period = Duration::from_millis(ms);
    period..period
}

impl<E> Actor for DetectorActor<E>
where
    E: Estimator + Eq + std::hash::Hash,
{
    type Msg = Message;
    type Timer = DetectorTimer;
    type State = DetectorState<E>;
    type Storage = ();
    type Random = ();

    fn on_start(&self, id: Id, _storage: &Option<()>, o: &mut Out<Self>) -> Self::State {
        o.set_timer(DetectorTimer::Heartbeat, every(self.heartbeat_interval));
        o.set_timer(DetectorTimer::Check, every(self.check_interval));
        let peers = self.peers.iter().map(|peer| usize::from(*peer));
        DetectorState {
            clock: 0,
            detector: Detector::build(
                usize::from(id),
                peers,
                self.estimator.clone(),
                self.config,
                0,
            ),
        }
    }

    fn on_msg(
        &self,
        id: Id,
        state: &mut Cow<Self::State>,
        src: Id,
        msg: Message,
        o: &mut Out<Self>,
    ) {
        let state = state.to_mut();
        let commands = state.detector.handle(state.clock, usize::from(src), msg);
        self.carry_out(id, commands, o);
    }

    fn on_timeout(
        &self,
        id: Id,
        state: &mut Cow<Self::State>,
        timer: &DetectorTimer,
        o: &mut Out<Self>,
    ) {
        let state = state.to_mut();
        match timer {
            DetectorTimer::Heartbeat => {
                let beat = state.detector.heartbeat();
                self.carry_out(id, vec![Command::Broadcast(beat)], o);
                o.set_timer(DetectorTimer::Heartbeat, every(self.heartbeat_interval));
            }
            DetectorTimer::Check => {
                state.clock += self.check_interval;
                let commands = state.detector.check(state.clock);
                self.carry_out(id, commands, o);
                o.set_timer(DetectorTimer::Check, every(self.check_interval));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use stateright::actor::{ActorModel, Network};
    use stateright::{Checker, Model};

    use super::*;
    use crate::detector::{FixedTimeout, Status};

    /// Two detectors with timers firing in any order, the logical clock bounded.
    fn two_nodes(max_clock: Millis) -> ActorModel<DetectorActor<FixedTimeout>, Millis, ()> {
        let ids = vec![Id::from(0), Id::from(1)];
        let actor = DetectorActor::new(
            ids,
            FixedTimeout::new(1).unwrap(),
            DetectorConfig {
                suspicion_timeout: 1,
            },
            1,
            1,
        )
        .unwrap();
        ActorModel::new(max_clock, ())
            .actors([actor.clone(), actor])
            .init_network(Network::new_unordered_nonduplicating([]))
            .within_boundary(|max_clock, state| {
                state
                    .actor_states
                    .iter()
                    .all(|s| s.clock <= *max_clock && s.detector.heartbeats_sent() <= *max_clock)
            })
            // No peer ever claims a higher incarnation for a node than the node
            // itself has reached: suspicions only repeat what was heard.
            .property(
                stateright::Expectation::Always,
                "incarnations are honest",
                |_, state| {
                    let own: Vec<u64> = state
                        .actor_states
                        .iter()
                        .map(|s| s.detector.incarnation())
                        .collect();
                    state.actor_states.iter().all(|s| {
                        s.detector.peers().all(|p| {
                            s.detector
                                .peer(p)
                                .is_some_and(|ps| ps.incarnation <= own[p])
                        })
                    })
                },
            )
            .property(
                stateright::Expectation::Sometimes,
                "suspicion refuted",
                |_, state| {
                    state.actor_states.iter().any(|s| {
                        s.detector.incarnation() > 0
                            && state.actor_states.iter().any(|o| {
                                o.detector.status(s.detector.me()) == Some(Status::Alive)
                                    && o.detector
                                        .peer(s.detector.me())
                                        .is_some_and(|ps| ps.incarnation > 0)
                            })
                    })
                },
            )
            .property(
                stateright::Expectation::Sometimes,
                "declared dead",
                |_, state| {
                    state
                        .actor_states
                        .iter()
                        .any(|s| !s.detector.dead().is_empty())
                },
            )
    }

    #[test]
    fn the_actor_refutes_and_detects() {
        let checker = two_nodes(2).checker().spawn_bfs().join();
        checker.assert_properties();
        assert_eq!(checker.unique_state_count(), 51_076);
    }
}
