//! What nodes and clients say to a node, where a node's messages go, and its
//! timers.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::NodeId;
use crate::commit::{self, AbortReason, Key, Outcome, TxnId, Value, Version, Versioned};
use crate::detector::{self, machine::DetectorTimer};
use crate::ring::Epoch;

/// A client of the cluster, as the driver numbers it: a remote client picks
/// its own (random) id; in-process callers get ids from the driver.
pub type ClientId = u64;

/// A client's number for one of its requests. A retry reuses it, so that the
/// node can recognise it; a client's later requests have higher numbers.
pub type RequestId = u64;

/// Where a message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Dest {
    /// Another node, or this one (the driver delivers those in process).
    Node(NodeId),
    /// A client.
    Client(ClientId),
}

/// Every message a node sends or receives. Handlers are one `match` over it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum NodeMsg {
    /// Node ↔ node: two-phase commit (every message but `Prepare`).
    Commit(commit::Msg),
    /// Coordinator → participant: a [`commit::Msg::Prepare`], with the ring
    /// epoch the coordinator planned it on. A participant on another epoch
    /// refuses it: the keys may have moved.
    Prepare {
        /// The coordinator's ring epoch when it began the transaction.
        epoch: Epoch,
        /// The Prepare.
        prepare: commit::Msg,
    },
    /// Node ↔ node: failure detection.
    Detector(detector::Message),
    /// Client → node, or a node relaying it to the request's home.
    Request {
        /// The client.
        client: ClientId,
        /// The client's number for the request.
        id: RequestId,
        /// The node the client first sent this request to, if the client knows
        /// its id (`None`: the recipient is the home). A transaction runs at
        /// its home, whichever node a retry reaches, so that one request never
        /// becomes two transactions; a client that does not know its home's id
        /// retries at the same node only.
        home: Option<NodeId>,
        /// What the client asks.
        request: Request,
    },
    /// Node → client, or the home node → the node that relayed the request.
    Reply {
        /// The client.
        client: ClientId,
        /// The request answered.
        id: RequestId,
        /// The answer.
        reply: Reply,
    },
    /// Node → a replica: read these keys for the client's request.
    Read {
        /// The client waiting.
        client: ClientId,
        /// Its request.
        id: RequestId,
        /// The keys, each held by the recipient.
        keys: Vec<Key>,
        /// The ring epoch the reader chose the replica by.
        epoch: Epoch,
    },
    /// A replica's answer to a [`NodeMsg::Read`] planned on another ring
    /// epoch than its own: nothing was read, ask again.
    ReadStale {
        /// The client waiting.
        client: ClientId,
        /// Its request.
        id: RequestId,
        /// The replica's epoch.
        epoch: Epoch,
    },
    /// A key handoff, from a node that held keys at `epoch - 1` to a member
    /// of `epoch` that holds them now: one chunk of the keys, sent one at a
    /// time until acknowledged; the `last` one (possibly empty) says the
    /// sender has handed over everything it owes the recipient.
    Handoff {
        /// The epoch the keys move into.
        epoch: Epoch,
        /// The chunk's number, from 0.
        chunk: u32,
        /// Whether it is the sender's last chunk for the recipient.
        last: bool,
        /// Committed values, with their versions.
        entries: Vec<(Key, Versioned)>,
    },
    /// The recipient of a [`NodeMsg::Handoff`] chunk has it durably.
    HandoffAck {
        /// The epoch the keys move into.
        epoch: Epoch,
        /// The chunk acknowledged.
        chunk: u32,
    },
    /// The replica's answer to [`NodeMsg::Read`].
    ReadReply {
        /// The client waiting.
        client: ClientId,
        /// Its request.
        id: RequestId,
        /// Each key's committed value, if any.
        values: Vec<(Key, Option<Versioned>)>,
    },
    /// A member's answer to a heartbeat from a node its ring of `epoch` does
    /// not have: the sender is no member of `epoch`.
    NotMember {
        /// The epoch the answering member runs.
        epoch: Epoch,
    },
}

impl NodeMsg {
    /// Whether the message only lets a coordinator forget a finished
    /// transaction ([`commit::Msg::is_bookkeeping`]): no answer waits for it.
    pub fn is_bookkeeping(&self) -> bool {
        matches!(self, NodeMsg::Commit(msg) if msg.is_bookkeeping())
    }

    /// Whether this message, sent by a node to itself in `send_after_persist`,
    /// may reach it before the save it waits for is durable, provided that
    /// everything the node sends in answer waits for that save: true only of
    /// a participant's Yes vote to its own coordinator.
    ///
    /// The vote rests on the participant's prepared record. The coordinator
    /// shows a Yes to nobody: it acts on its votes only by deciding, and it
    /// saves a Commit decision after the prepared record, in the same log,
    /// and announces it only once the decision is durable, and with it the
    /// prepared record. A crash before that loses the record and the counted
    /// vote together, and the transaction, undecided, is presumed aborted, as
    /// when the node crashes before the vote is sent. So the one sync that
    /// makes the decision durable serves both saves, and the coordinator's
    /// node need not sync its own prepared record while the other
    /// participants' votes are on their way.
    ///
    /// A decision may not overtake its save in the same way: a participant
    /// that has learned a decision tells it at once to any peer that asks
    /// (cooperative termination), so a decision it learned from its own
    /// coordinator before the coordinator's record was durable could be told,
    /// and then lost in a crash.
    pub fn may_overtake_its_save(&self) -> bool {
        matches!(
            self,
            NodeMsg::Commit(commit::Msg::Vote {
                vote: commit::Vote::Yes,
                ..
            })
        )
    }
}

/// A client's request.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Request {
    /// One transaction: commit `writes` (a `None` value deletes the key) if
    /// every key in `reads` is still at the version given (`None`: absent).
    Txn {
        /// Keys read, with the versions seen.
        reads: BTreeMap<Key, Option<Version>>,
        /// Keys written.
        writes: BTreeMap<Key, Option<Value>>,
    },
    /// Linearizable reads of the keys' committed values and versions.
    Read {
        /// The keys.
        keys: Vec<Key>,
    },
    /// The node's view of the cluster and its sizes.
    Status,
    /// Membership: add `node`, reachable at `address`, to the ring (a new
    /// epoch, agreed as a transaction across the current members).
    Join {
        /// The joining node's id.
        node: u16,
        /// Where its peers reach it.
        address: String,
    },
    /// Membership: `node` hands its keys to the others and departs.
    Leave {
        /// The leaving member.
        node: u16,
    },
    /// Membership: drop `node`, which is gone for good, from the ring; its
    /// keys are copied to their new holders from the surviving replicas.
    Remove {
        /// The member to remove.
        node: u16,
    },
}

/// A node's answer to a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Reply {
    /// How a transaction ended. A Commit answer leaves only once the commit
    /// record is durable; an Abort answer only once the answer is.
    Txn {
        /// The transaction's id.
        txn: TxnId,
        /// Commit or Abort.
        outcome: Outcome,
        /// Why it aborted, when known (a retry answered from the durable
        /// answer table knows only that it aborted).
        reason: Option<AbortReason>,
    },
    /// The keys' committed values and versions, in the order asked.
    Values(Vec<(Key, Option<Versioned>)>),
    /// The node's status.
    Status(StatusView),
    /// The request was refused; nothing was changed.
    Refused {
        /// Why, and what to do.
        reason: String,
    },
    /// A read could not be served: the node asked believes no replica of a
    /// key reachable (its failure detector suspects, or has declared dead,
    /// every one). Nothing was read.
    Unreachable(Unreachable),
}

/// Why a read could not be served: the key, and what the node that was asked
/// believes about each of its replicas.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Unreachable {
    /// The node that was asked.
    pub node: u16,
    /// The key none of whose replicas it can reach.
    pub key: Key,
    /// The key's replicas, in preference order.
    pub replicas: Vec<ReplicaState>,
}

/// One replica named by [`Unreachable`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReplicaState {
    /// The replica.
    pub node: u16,
    /// What the node that was asked believes about it.
    pub status: MemberStatus,
    /// Its address. The machine knows no addresses and leaves this `None`;
    /// the driver fills it in.
    pub address: Option<String>,
}

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "node {} cannot reach any replica of key {}:",
            self.node,
            commit::show(&self.key)
        )?;
        for (index, replica) in self.replicas.iter().enumerate() {
            let separator = if index == 0 { " " } else { "; " };
            write!(f, "{separator}node {}", replica.node)?;
            if let Some(address) = &replica.address {
                write!(f, " at {address}")?;
            }
            let why = match replica.status {
                MemberStatus::Suspect => {
                    "is suspected (no heartbeat from it within the failure timeout)"
                }
                MemberStatus::Dead => {
                    "was declared dead (silent past the failure and suspicion timeouts)"
                }
                MemberStatus::Unknown => "has not been heard from yet",
                MemberStatus::Alive => "is believed alive but did not answer",
                MemberStatus::Me => "is the node asked",
            };
            write!(f, " {why}")?;
        }
        Ok(())
    }
}

/// What a node believes about one member of the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MemberStatus {
    /// The node itself.
    Me,
    /// Not heard from since this node started.
    Unknown,
    /// Heard from recently.
    Alive,
    /// Silent for too long; may still refute.
    Suspect,
    /// Declared failed.
    Dead,
}

impl fmt::Display for MemberStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MemberStatus::Me => "this node",
            MemberStatus::Unknown => "unknown (not heard from yet)",
            MemberStatus::Alive => "alive",
            MemberStatus::Suspect => "suspect",
            MemberStatus::Dead => "dead",
        })
    }
}

/// A node's status: who it believes is alive, what it holds, and its counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StatusView {
    /// The node answering.
    pub node: u16,
    /// Its incarnation (raised on every start).
    pub incarnation: u64,
    /// The ring epoch it runs.
    pub epoch: u64,
    /// How many nodes hold each key.
    pub replicas: u64,
    /// Every member and what this node believes about it.
    pub members: BTreeMap<u16, MemberStatus>,
    /// Transactions this node coordinates and has not forgotten.
    pub coordinating: u64,
    /// Transactions this node has voted Yes on and not yet learned the outcome of.
    pub prepared: u64,
    /// Keys in this node's committed store.
    pub keys: u64,
    /// Whether this node is a member of the ring it runs (false for a node
    /// waiting to join, or one that has left).
    pub member: bool,
    /// Keys still moving into the current epoch, if a handoff is under way.
    pub handoff: Option<HandoffStatus>,
    /// The driver's counters (messages, drops, saves, syncs, commits, aborts).
    /// The machine has none and leaves this empty; the driver fills it in.
    pub counters: BTreeMap<String, u64>,
}

/// How far this node is in moving keys into its current epoch.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HandoffStatus {
    /// Keys this node hands to others (0 until its earlier transactions have
    /// settled and it has counted them).
    pub keys_to_send: u64,
    /// Of those, the keys acknowledged by their new holders.
    pub keys_sent: u64,
    /// The nodes whose handoff to this node has not finished yet.
    pub awaiting: Vec<u16>,
}

/// A node's timers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeTimer {
    /// A two-phase-commit timer (of the coordinator or of the participant).
    Commit(commit::Timer),
    /// A failure-detector timer.
    Detector(DetectorTimer),
    /// Resend the unacknowledged handoff chunks.
    Handoff,
    /// `auto_remove_after` has passed since the detector declared this
    /// member Dead: remove it if it still is (see the `auto_remove` module).
    AutoRemove(NodeId),
    /// Ask again for the keys of an in-process caller's read that no replica
    /// has answered yet: such a caller does not retry, so a `Read` or its
    /// `ReadReply` lost on the network is asked again by the node.
    Read {
        /// The caller.
        client: ClientId,
        /// Its request.
        id: RequestId,
    },
}

/// What a node tells the application besides its messages.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeEvent {
    /// An event of the commit machines (a decision, an outcome learned).
    Commit(commit::Event),
    /// These members are reachable at these addresses (as the ring, or a
    /// join request, says): the driver routes `Dest::Node` by them.
    Addresses(Vec<(NodeId, String)>),
    /// The node installed a new ring epoch.
    Installed {
        /// The epoch.
        epoch: Epoch,
        /// Whether this node is a member of it.
        member: bool,
    },
    /// The node is not a member of its ring and has handed over every key it
    /// held: it can stop.
    Departed,
    /// The node began removing `member`, which its detector has held Dead
    /// for `auto_remove_after` (a ring change, as `Request::Remove`).
    AutoRemoving {
        /// The member being removed.
        member: NodeId,
    },
    /// A member of this node's ring runs a later `epoch` without this node:
    /// it was removed while it was down, and what it holds is stale. It
    /// takes part in nothing any more; the process should stop, and its data
    /// directory be deleted before it joins again.
    Fenced {
        /// The later epoch.
        epoch: Epoch,
        /// The member that said so.
        by: NodeId,
    },
}
