//! A node's deltas and the record they fold into.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::message::{ClientId, RequestId};
use crate::NodeId;
use crate::commit::{self, CoordinatorDelta, CoordinatorRecord, Outcome, ParticipantRecord, TxnId};

/// A change a node must survive a crash with.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum NodeDelta {
    /// A change of the coordinator or the participant. A commit decision
    /// carries the request it answers, so the answer table learns it in the
    /// same delta.
    Commit(commit::Delta),
    /// A client's request ended in an abort; a retry is told so again.
    Aborted {
        /// The client.
        client: ClientId,
        /// Its request.
        request: RequestId,
        /// The transaction that ran for it.
        txn: TxnId,
    },
    /// A client's answer is dropped to keep the table within its capacity.
    Evicted {
        /// The client.
        client: ClientId,
    },
    /// This node has handed every key it owed `to` for `epoch`, acknowledged.
    HandedOff {
        /// The epoch the keys moved into.
        epoch: u64,
        /// The recipient.
        to: NodeId,
    },
    /// `from` has handed this node every key it owed it for `epoch`.
    TookOver {
        /// The epoch the keys moved into.
        epoch: u64,
        /// The sender.
        from: NodeId,
    },
}

impl NodeDelta {
    /// Whether the delta only tidies up after a durable decision
    /// ([`commit::Delta::is_bookkeeping`]): it may wait to share a later sync.
    pub fn is_bookkeeping(&self) -> bool {
        matches!(self, NodeDelta::Commit(delta) if delta.is_bookkeeping())
    }
}

/// The last answer a client was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Answer {
    /// The request answered.
    pub request: RequestId,
    /// The transaction that ran for it.
    pub txn: TxnId,
    /// How it ended.
    pub outcome: Outcome,
}

/// The answers a node has given, one per client: what makes a retried request
/// run at most once, across crashes too.
///
/// A client numbers its requests in increasing order and has one transaction
/// out at a time, so one answer per client is enough: a request numbered
/// below the last answer's is a late copy, one numbered the same is a retry.
/// The table holds at most a configured number of clients; beyond it the
/// client answered longest ago is evicted (a retry from it would run again).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AnswerTable {
    answers: BTreeMap<ClientId, Answer>,
    /// The same entries by age (transaction ids grow with time), to find the
    /// oldest.
    #[serde(skip)]
    by_age: BTreeSet<(TxnId, ClientId)>,
}

impl AnswerTable {
    /// The last answer given to `client`.
    pub fn get(&self, client: ClientId) -> Option<&Answer> {
        self.answers.get(&client)
    }

    /// How many clients the table holds.
    pub fn len(&self) -> usize {
        self.answers.len()
    }

    /// Whether the table holds no client.
    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// The client answered longest ago.
    pub fn oldest(&self) -> Option<ClientId> {
        self.by_age.first().map(|(_, client)| *client)
    }

    /// Every client and its answer, in client order.
    pub fn iter(&self) -> impl Iterator<Item = (&ClientId, &Answer)> {
        self.answers.iter()
    }

    /// Applies the part of `delta` that concerns answers.
    pub fn apply(&mut self, delta: &NodeDelta) {
        match delta {
            NodeDelta::Commit(commit::Delta::Coordinator(CoordinatorDelta::Committed {
                txn,
                origin: Some(origin),
                ..
            })) => self.insert(
                origin.client,
                Answer {
                    request: origin.request,
                    txn: *txn,
                    outcome: Outcome::Commit,
                },
            ),
            NodeDelta::Aborted {
                client,
                request,
                txn,
            } => self.insert(
                *client,
                Answer {
                    request: *request,
                    txn: *txn,
                    outcome: Outcome::Abort,
                },
            ),
            NodeDelta::Evicted { client } => {
                if let Some(old) = self.answers.remove(client) {
                    self.by_age.remove(&(old.txn, *client));
                }
            }
            NodeDelta::Commit(_) | NodeDelta::HandedOff { .. } | NodeDelta::TookOver { .. } => {}
        }
    }

    fn insert(&mut self, client: ClientId, answer: Answer) {
        if let Some(old) = self.answers.get(&client) {
            // A late decision of an older request must not hide a newer answer.
            if old.request > answer.request {
                return;
            }
            self.by_age.remove(&(old.txn, client));
        }
        self.answers.insert(client, answer);
        self.by_age.insert((answer.txn, client));
    }

    /// Rebuilds the age index after deserialisation.
    fn reindex(&mut self) {
        self.by_age = self
            .answers
            .iter()
            .map(|(client, answer)| (answer.txn, *client))
            .collect();
    }
}

/// Everything a node keeps durably: what a checkpoint holds, and what the
/// log's deltas fold into.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The coordinator's incarnation and commit records.
    pub coordinator: CoordinatorRecord,
    /// The participant's store, transaction records and watermarks.
    pub participant: ParticipantRecord,
    /// The answers given to clients.
    pub answers: AnswerTable,
    /// How far the move into the latest epoch went.
    pub handoff: HandoffRecord,
}

/// What a node has durably handed over and taken over for one epoch: the
/// progress of the key moves into it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HandoffRecord {
    /// The epoch (0: none yet).
    pub epoch: u64,
    /// The nodes this node has finished handing keys to.
    pub handed_to: BTreeSet<NodeId>,
    /// The nodes that have finished handing keys to this node.
    pub taken_from: BTreeSet<NodeId>,
}

impl HandoffRecord {
    /// Applies the part of `delta` that concerns handoffs: a later epoch
    /// replaces an earlier one's progress.
    pub fn apply(&mut self, delta: &NodeDelta) {
        let (epoch, node, handed) = match delta {
            NodeDelta::HandedOff { epoch, to } => (*epoch, *to, true),
            NodeDelta::TookOver { epoch, from } => (*epoch, *from, false),
            _ => return,
        };
        if epoch > self.epoch {
            *self = HandoffRecord {
                epoch,
                ..HandoffRecord::default()
            };
        }
        if epoch == self.epoch {
            if handed {
                self.handed_to.insert(node);
            } else {
                self.taken_from.insert(node);
            }
        }
    }
}

impl NodeRecord {
    /// Applies one delta; recovery replays the log through here.
    pub fn apply(&mut self, delta: &NodeDelta) {
        match delta {
            NodeDelta::Commit(commit::Delta::Coordinator(d)) => self.coordinator.apply(d),
            NodeDelta::Commit(commit::Delta::Participant(d)) => self.participant.apply(d),
            NodeDelta::HandedOff { .. } | NodeDelta::TookOver { .. } => self.handoff.apply(delta),
            NodeDelta::Aborted { .. } | NodeDelta::Evicted { .. } => {}
        }
        self.answers.apply(delta);
    }

    /// Call after deserialising a record: rebuilds derived indexes.
    pub fn reindex(&mut self) {
        self.answers.reindex();
    }

    /// The incarnation of the node's last life (0: never started).
    pub fn incarnation(&self) -> u64 {
        self.coordinator.incarnation
    }
}
