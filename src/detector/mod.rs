//! Heartbeat failure detection: estimators, SWIM-style suspicion and refutation,
//! and the membership view.
//!
//! [`Detector`] is the sans-IO core one node runs: it reads no clock (every
//! input carries `now`), sends nothing (its outputs are [`Command`]s for the
//! caller to carry out) and draws no random number. The same core runs inside
//! the timed machine [`machine::Heartbeats`] that every node runs, inside the
//! `heartbeat` model (models/heartbeat.rs), and under the runtime.
//!
//! # Per peer
//!
//! Each peer has an incarnation, the last heartbeat sequence number taken, an
//! [`Estimator`] fed its arrivals, and a [`Status`]:
//!
//! - Alive → Suspect when the estimator trips on a check, or when another node
//!   says so (a [`Message::Suspect`] for the incarnation we know, or a newer one);
//! - Suspect → Dead when the suspicion has lasted `suspicion_timeout`;
//! - Suspect or Dead → Alive only on a heartbeat or [`Message::Alive`] carrying a
//!   *higher* incarnation: Dead is final for that incarnation.
//!
//! A node that learns it is suspected raises its own incarnation above the
//! suspected one and broadcasts [`Message::Alive`] (SWIM's refutation: Das,
//! Gupta and Motivala, "SWIM", DSN 2002, §4.2). The order between two claims
//! about the same node is the incarnation, so a late suspicion can never undo a
//! newer refutation.
//!
//! # Driving it
//!
//! Call [`Detector::heartbeat`] every heartbeat interval and broadcast the
//! message; call [`Detector::check`] periodically; hand every received message to
//! [`Detector::handle`]. Carry out the returned commands before the next input.

pub mod estimator;
pub mod machine;

use std::collections::{BTreeMap, BTreeSet};

pub use estimator::{ConfigError, Estimator, FixedTimeout, PhiAccrual, PhiConfig};

/// Time, in milliseconds (or model ticks) since an epoch the caller picks.
pub type Millis = u64;

pub use crate::NodeId;

/// What one node believes about another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Heard from recently enough.
    Alive,
    /// Suspected since `since`; becomes Dead unless refuted in time.
    Suspect {
        /// When the suspicion began.
        since: Millis,
    },
    /// Declared failed for the known incarnation.
    Dead,
}

/// What detectors say to each other. Serializable, so that a node runtime can
/// carry it over the network.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Message {
    /// The periodic sign of life. `sequence` grows with every heartbeat a node
    /// sends, so duplicates and reordered heartbeats are recognised and ignored.
    Heartbeat {
        /// The sender's incarnation.
        incarnation: u64,
        /// The sender's heartbeat counter.
        sequence: u64,
    },
    /// "I suspect `peer` at `incarnation`": sent to every node, the suspect included.
    Suspect {
        /// The suspected node.
        peer: NodeId,
        /// The incarnation suspected.
        incarnation: u64,
    },
    /// A refutation: the sender is alive at this (raised) incarnation.
    Alive {
        /// The sender's new incarnation.
        incarnation: u64,
    },
}

/// An output of the detector, to be carried out by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use]
pub enum Command {
    /// Send `message` to every peer.
    Broadcast(Message),
}

/// The detector's settings other than the estimator's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DetectorConfig {
    /// How long a suspicion lasts before the peer is declared Dead. It must
    /// exceed a round trip (the suspect must hear the suspicion and its
    /// refutation must come back), or live peers are declared Dead.
    pub suspicion_timeout: Millis,
}

impl DetectorConfig {
    /// Checks the settings; the error names the field to fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.suspicion_timeout == 0 {
            return Err(ConfigError::ZeroDuration {
                field: "suspicion_timeout",
            });
        }
        Ok(())
    }
}

/// One peer as seen by the detector.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerState<E> {
    /// The highest incarnation heard of.
    pub incarnation: u64,
    /// The highest heartbeat sequence number taken, if any.
    pub last_sequence: Option<u64>,
    /// The current belief.
    pub status: Status,
    /// The arrival history.
    pub estimator: E,
}

/// The failure detector of one node. See the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Detector<E> {
    me: NodeId,
    incarnation: u64,
    next_sequence: u64,
    config: DetectorConfig,
    peers: BTreeMap<NodeId, PeerState<E>>,
}

impl<E: Estimator> Detector<E> {
    /// The detector of node `me`, monitoring `peers` from `now` on. Each peer gets
    /// a copy of `estimator`, whose silence clock starts at `now`; `me` is not
    /// monitored even if listed.
    pub fn new(
        me: NodeId,
        peers: impl IntoIterator<Item = NodeId>,
        estimator: E,
        config: DetectorConfig,
        now: Millis,
    ) -> Result<Detector<E>, ConfigError> {
        config.validate()?;
        Ok(Detector::build(me, peers, estimator, config, now))
    }

    /// [`Detector::new`] for a config already validated.
    pub(crate) fn build(
        me: NodeId,
        peers: impl IntoIterator<Item = NodeId>,
        estimator: E,
        config: DetectorConfig,
        now: Millis,
    ) -> Detector<E> {
        let peers = peers
            .into_iter()
            .filter(|peer| *peer != me)
            .map(|peer| {
                let mut estimator = estimator.clone();
                estimator.restart(now);
                let state = PeerState {
                    incarnation: 0,
                    last_sequence: None,
                    status: Status::Alive,
                    estimator,
                };
                (peer, state)
            })
            .collect();
        Detector {
            me,
            incarnation: 0,
            next_sequence: 0,
            config,
            peers,
        }
    }

    /// Monitors exactly `peers` from `now` on (`me` is skipped): a peer no
    /// longer listed is forgotten, a new one starts as a fresh peer would, and
    /// the others keep what is known of them. The membership changed (a ring
    /// epoch).
    pub fn set_peers(
        &mut self,
        peers: impl IntoIterator<Item = NodeId>,
        estimator: E,
        now: Millis,
    ) {
        let wanted: BTreeSet<NodeId> = peers.into_iter().filter(|p| *p != self.me).collect();
        self.peers.retain(|peer, _| wanted.contains(peer));
        for peer in wanted {
            self.peers.entry(peer).or_insert_with(|| {
                let mut estimator = estimator.clone();
                estimator.restart(now);
                PeerState {
                    incarnation: 0,
                    last_sequence: None,
                    status: Status::Alive,
                    estimator,
                }
            });
        }
    }

    // --- getters -------------------------------------------------------------

    /// This node.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// This node's own incarnation: raised each time it refutes a suspicion.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// How many heartbeats this node has produced.
    pub fn heartbeats_sent(&self) -> u64 {
        self.next_sequence
    }

    /// The monitored peers, in id order.
    pub fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.peers.keys().copied()
    }

    /// What this node knows of `peer`; `None` if it does not monitor it.
    pub fn peer(&self, peer: NodeId) -> Option<&PeerState<E>> {
        self.peers.get(&peer)
    }

    /// The belief about `peer`; `None` if it is not monitored.
    pub fn status(&self, peer: NodeId) -> Option<Status> {
        self.peers.get(&peer).map(|state| state.status)
    }

    /// The membership view: every node this node considers a member (not Dead),
    /// itself included, in id order. Suspects are still members (SWIM): they may
    /// yet refute.
    pub fn members(&self) -> Vec<NodeId> {
        let mut members: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, state)| state.status != Status::Dead)
            .map(|(peer, _)| *peer)
            .chain(std::iter::once(self.me))
            .collect();
        members.sort_unstable();
        members
    }

    /// The peers declared Dead, in id order.
    pub fn dead(&self) -> Vec<NodeId> {
        self.peers
            .iter()
            .filter(|(_, state)| state.status == Status::Dead)
            .map(|(peer, _)| *peer)
            .collect()
    }

    // --- inputs --------------------------------------------------------------

    /// The next heartbeat to broadcast (call every heartbeat interval).
    pub fn heartbeat(&mut self) -> Message {
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        Message::Heartbeat {
            incarnation: self.incarnation,
            sequence,
        }
    }

    /// Runs the estimators and suspicion timers at `now`.
    pub fn check(&mut self, now: Millis) -> Vec<Command> {
        let mut commands = Vec::new();
        for (peer, state) in &mut self.peers {
            match state.status {
                Status::Alive if state.estimator.is_suspect(now) => {
                    state.status = Status::Suspect { since: now };
                    // Everyone hears it, the suspect included, so that it can refute.
                    commands.push(Command::Broadcast(Message::Suspect {
                        peer: *peer,
                        incarnation: state.incarnation,
                    }));
                }
                Status::Suspect { since }
                    if now.saturating_sub(since) >= self.config.suspicion_timeout =>
                {
                    state.status = Status::Dead;
                }
                _ => {}
            }
        }
        commands
    }

    /// Handles `message` from `from`, received at `now`. A message from a node
    /// this detector does not monitor is ignored.
    pub fn handle(&mut self, now: Millis, from: NodeId, message: Message) -> Vec<Command> {
        match message {
            Message::Heartbeat {
                incarnation,
                sequence,
            } => self
                .on_heartbeat(now, from, incarnation, sequence)
                .into_iter()
                .collect(),
            Message::Alive { incarnation } => {
                if let Some(state) = self.peers.get_mut(&from) {
                    if incarnation > state.incarnation {
                        Self::revive(state, incarnation, now);
                    }
                }
                Vec::new()
            }
            Message::Suspect { peer, incarnation } if peer == self.me => {
                self.refute(incarnation).into_iter().collect()
            }
            Message::Suspect { peer, incarnation } => {
                if let Some(state) = self.peers.get_mut(&peer) {
                    // SWIM's order: Suspect(i) overrides Alive(j) when i ≥ j, and
                    // Suspect(j) when i > j; nothing overrides Dead at the same
                    // incarnation.
                    let newer = incarnation > state.incarnation;
                    let same_and_alive =
                        incarnation == state.incarnation && state.status == Status::Alive;
                    if newer || same_and_alive {
                        state.incarnation = incarnation;
                        state.status = Status::Suspect { since: now };
                    }
                }
                Vec::new()
            }
        }
    }

    /// The answer to a suspicion of this node at `suspected`: raise the
    /// incarnation above it and say so. A suspicion of an incarnation already
    /// left behind needs no answer, as the refutation is out.
    pub fn refute(&mut self, suspected: u64) -> Option<Command> {
        if suspected < self.incarnation {
            return None;
        }
        self.incarnation = suspected + 1;
        Some(Command::Broadcast(Message::Alive {
            incarnation: self.incarnation,
        }))
    }

    fn on_heartbeat(
        &mut self,
        now: Millis,
        from: NodeId,
        incarnation: u64,
        sequence: u64,
    ) -> Option<Command> {
        let state = self.peers.get_mut(&from)?;
        // Sequence numbers are compared only within one incarnation: a higher
        // one may be a new life counting from 0 again, whose announcement was
        // lost or overtaken by this heartbeat.
        if incarnation < state.incarnation
            || (incarnation == state.incarnation
                && state.last_sequence.is_some_and(|last| sequence <= last))
        {
            // Stale: an old incarnation, a duplicate, or overtaken in the network.
            return None;
        }
        // A suspected or dead peer that still beats at the suspected
        // incarnation has not heard the suspicion (its Suspect may have been
        // lost): say it again, so that it refutes. Without this, one lost
        // datagram leaves a live node Dead here for ever while the others,
        // which heard its refutation, hold it Alive.
        let remind = (incarnation == state.incarnation && state.status != Status::Alive).then_some(
            Command::Broadcast(Message::Suspect {
                peer: from,
                incarnation,
            }),
        );
        if incarnation > state.incarnation {
            Self::revive(state, incarnation, now);
        } else if state.status == Status::Dead {
            // Dead is final for this incarnation.
            return remind;
        }
        state.last_sequence = Some(sequence);
        state.estimator.heartbeat(now);
        remind
    }

    fn revive(state: &mut PeerState<E>, incarnation: u64, now: Millis) {
        state.incarnation = incarnation;
        state.status = Status::Alive;
        // A new incarnation may be a new life, whose heartbeats count from 0
        // again: a sequence number of the old life must not make them look
        // stale (the `stale-incarnation` variant keeps it, and a restarted
        // node stays suspected for ever).
        state.last_sequence = None;
        // A refutation is proof of life now; without this the estimator, still
        // counting the silence that caused the suspicion, would trip again at once.
        state.estimator.restart(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(id: u16) -> NodeId {
        NodeId(id)
    }

    fn detector(me: u16) -> Detector<FixedTimeout> {
        Detector::new(
            n(me),
            (0..3).map(n),
            FixedTimeout::new(4).unwrap(),
            DetectorConfig {
                suspicion_timeout: 3,
            },
            0,
        )
        .unwrap()
    }

    fn beat(incarnation: u64, sequence: u64) -> Message {
        Message::Heartbeat {
            incarnation,
            sequence,
        }
    }

    #[test]
    fn silence_leads_to_suspect_then_dead() {
        let mut d = detector(0);
        assert_eq!(d.peers().collect::<Vec<_>>(), vec![n(1), n(2)]);
        assert!(d.handle(1, n(1), beat(0, 0)).is_empty());
        assert!(d.check(3).is_empty());
        // Node 2 has been silent since monitoring began at 0.
        assert_eq!(
            d.check(4),
            vec![Command::Broadcast(Message::Suspect {
                peer: n(2),
                incarnation: 0
            })]
        );
        assert_eq!(d.status(n(2)), Some(Status::Suspect { since: 4 }));
        assert_eq!(d.status(n(1)), Some(Status::Alive));
        // Node 1 last beat at 1, so it is suspected at 5.
        assert_eq!(d.check(5).len(), 1);
        assert!(d.check(6).is_empty());
        assert_eq!(d.status(n(2)), Some(Status::Suspect { since: 4 }));
        assert!(d.check(7).is_empty());
        assert_eq!(d.status(n(2)), Some(Status::Dead));
        assert_eq!(d.members(), vec![n(0), n(1)]);
        assert_eq!(d.dead(), vec![n(2)]);
    }

    #[test]
    fn a_dead_peer_that_still_beats_is_told_so_again() {
        // The Suspect to node 1 was lost: it never refuted, and node 0 holds
        // it Dead. Its next heartbeat brings the suspicion back to it.
        let mut observer = detector(0);
        let _ = observer.check(4);
        let _ = observer.check(7);
        assert_eq!(observer.status(n(1)), Some(Status::Dead));
        let suspicion = Command::Broadcast(Message::Suspect {
            peer: n(1),
            incarnation: 0,
        });
        assert_eq!(observer.handle(8, n(1), beat(0, 5)), vec![suspicion]);
        let mut suspect = detector(1);
        let Command::Broadcast(message) = suspicion;
        let refutation = suspect.handle(8, n(0), message);
        assert_eq!(
            refutation,
            vec![Command::Broadcast(Message::Alive { incarnation: 1 })]
        );
        let _ = observer.handle(9, n(1), Message::Alive { incarnation: 1 });
        assert_eq!(observer.status(n(1)), Some(Status::Alive));
    }

    #[test]
    fn a_suspected_node_refutes_with_a_higher_incarnation() {
        let mut suspect = detector(1);
        let suspicion = Message::Suspect {
            peer: n(1),
            incarnation: 0,
        };
        assert_eq!(
            suspect.handle(5, n(0), suspicion),
            vec![Command::Broadcast(Message::Alive { incarnation: 1 })]
        );
        assert_eq!(suspect.incarnation(), 1);
        // A late copy of the same suspicion needs no second refutation.
        assert!(suspect.handle(6, n(2), suspicion).is_empty());
        assert_eq!(suspect.incarnation(), 1);
        assert_eq!(suspect.heartbeat(), beat(1, 0));

        let mut observer = detector(0);
        let _ = observer.check(4);
        assert_eq!(observer.status(n(1)), Some(Status::Suspect { since: 4 }));
        // A heartbeat at the suspected incarnation does not clear the suspicion,
        // but shows that the suspect has not heard it: it is said again…
        assert_eq!(
            observer.handle(5, n(1), beat(0, 3)),
            vec![Command::Broadcast(Message::Suspect {
                peer: n(1),
                incarnation: 0
            })]
        );
        assert_eq!(observer.status(n(1)), Some(Status::Suspect { since: 4 }));
        // …a refutation at a higher one does, and restarts the silence clock.
        assert!(
            observer
                .handle(6, n(1), Message::Alive { incarnation: 1 })
                .is_empty()
        );
        assert_eq!(observer.status(n(1)), Some(Status::Alive));
        assert_eq!(observer.peer(n(1)).unwrap().incarnation, 1);
        assert!(observer.check(9).iter().all(|c| *c
            != Command::Broadcast(Message::Suspect {
                peer: n(1),
                incarnation: 1
            })));
        // A late suspicion of the old incarnation cannot undo the refutation.
        let _ = observer.handle(7, n(2), suspicion);
        assert_eq!(observer.status(n(1)), Some(Status::Alive));
    }

    #[test]
    fn gossiped_suspicion_is_adopted_and_dead_is_final_for_its_incarnation() {
        let mut d = detector(0);
        let _ = d.handle(
            1,
            n(2),
            Message::Suspect {
                peer: n(1),
                incarnation: 0,
            },
        );
        assert_eq!(d.status(n(1)), Some(Status::Suspect { since: 1 }));
        let _ = d.check(4);
        assert_eq!(d.status(n(1)), Some(Status::Dead));
        let _ = d.handle(5, n(1), beat(0, 7));
        assert_eq!(d.status(n(1)), Some(Status::Dead));
        assert_eq!(d.peer(n(1)).unwrap().last_sequence, None);
        let _ = d.handle(6, n(1), beat(2, 8));
        assert_eq!(d.status(n(1)), Some(Status::Alive));
        assert_eq!(d.peer(n(1)).unwrap().last_sequence, Some(8));
    }

    #[test]
    fn a_new_life_counts_its_heartbeats_from_zero_again() {
        // Peer 1 restarts: its refutation raises the incarnation, and its new
        // life's heartbeats start at sequence 0 again. They must be taken, or
        // the restarted node stays suspected for ever.
        let mut d = detector(0);
        let _ = d.handle(1, n(1), beat(0, 40));
        let _ = d.handle(
            2,
            n(1),
            Message::Alive {
                incarnation: 1 << 32,
            },
        );
        assert_eq!(d.peer(n(1)).unwrap().last_sequence, None);
        let _ = d.handle(3, n(1), beat(1 << 32, 0));
        assert_eq!(d.peer(n(1)).unwrap().last_sequence, Some(0));
        assert!(d.check(6).iter().all(|c| *c
            != Command::Broadcast(Message::Suspect {
                peer: n(1),
                incarnation: 1 << 32
            })));
        assert_eq!(d.status(n(1)), Some(Status::Alive));
    }

    #[test]
    fn a_new_life_is_taken_back_even_if_its_announcement_is_lost() {
        // Peer 1 restarts and its Alive is lost (or overtaken): the first
        // heartbeat of the new life, sequence 0 at a higher incarnation, must
        // revive it, though the old life's last sequence number was higher.
        let mut d = detector(0);
        let _ = d.handle(1, n(1), beat(0, 40));
        let _ = d.handle(2, n(1), beat(1 << 32, 0));
        assert_eq!(d.peer(n(1)).unwrap().incarnation, 1 << 32);
        assert_eq!(d.peer(n(1)).unwrap().last_sequence, Some(0));
        // The silence counts from 2, the new life's first heartbeat.
        let _ = d.check(5);
        assert_eq!(d.status(n(1)), Some(Status::Alive));
        // Within the new incarnation, staleness is judged as before.
        let _ = d.handle(3, n(1), beat(1 << 32, 0));
        let _ = d.handle(3, n(1), beat(0, 41));
        assert_eq!(d.peer(n(1)).unwrap().last_sequence, Some(0));
        assert_eq!(d.peer(n(1)).unwrap().incarnation, 1 << 32);
    }

    #[test]
    fn stale_and_unknown_heartbeats_are_ignored() {
        let mut d = detector(0);
        let _ = d.handle(2, n(1), beat(0, 5));
        let _ = d.handle(3, n(1), beat(0, 4));
        let _ = d.handle(3, n(1), beat(0, 5));
        let _ = d.handle(3, n(9), beat(0, 6));
        assert_eq!(d.peer(n(1)).unwrap().last_sequence, Some(5));
        // The silence counts from 2, the last fresh arrival.
        assert!(d.check(5).iter().all(|c| *c
            != Command::Broadcast(Message::Suspect {
                peer: n(1),
                incarnation: 0
            })));
        assert_eq!(d.status(n(1)), Some(Status::Alive));
        let _ = d.check(6);
        assert_eq!(d.status(n(1)), Some(Status::Suspect { since: 6 }));
    }

    #[test]
    fn zero_suspicion_timeout_is_refused() {
        let err = Detector::new(
            n(0),
            (0..2).map(n),
            FixedTimeout::new(1).unwrap(),
            DetectorConfig {
                suspicion_timeout: 0,
            },
            0,
        )
        .unwrap_err();
        assert_eq!(
            err,
            ConfigError::ZeroDuration {
                field: "suspicion_timeout"
            }
        );
    }
}
