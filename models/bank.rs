//! `bank`: transfers between accounts on different nodes, each a
//! read-validate-write transaction of `src/commit` — the production
//! coordinator and participants themselves — on the network of
//! [`super::network`] (unordered, duplicating, optionally lossy, with crashes)
//! and the disk of [`super::host`].
//!
//! Each account is a key held by its own participant node, opened at
//! [`OPENING_BALANCE`]. Two clients, each the coordinator of its own node, run
//! one transfer each: client 0 moves 1 from account `a` to `b`, client 1 moves 2
//! from `b` to the next account (`c` with three accounts, back to `a` with two).
//! A client reads both balances from the accounts' nodes (a read of a key that
//! a prepared transaction is about to write is not answered, as
//! `Participant::read` says; the client asks again), then begins one transaction
//! whose read set is the two keys at the versions it saw and whose writes are
//! the two new balances. A participant votes No if a read version moved
//! (optimistic concurrency, validated under the locks at prepare: see
//! `src/commit/participant.rs`). A transfer is not retried; a client that
//! crashes abandons its transfer (its coordinator presumes an undecided one
//! aborted).
//!
//! Properties:
//!
//! - **total conserved**: the balances add up to what the accounts opened
//!   with. The balances are the *decided* state: each account's durable store
//!   with the writes of every transaction a coordinator has decided to commit
//!   applied on top — a committed transfer's participants are all durably
//!   prepared, so while one is in doubt (decided, not yet applied everywhere)
//!   its writes count, and an undecided one's do not. Checked in every state.
//! - **serializable**: the committed transactions have a serial order in which
//!   each one read, of every key, the version current at its turn (each key's
//!   versions form one chain from its opening version: no two committed
//!   transactions overwrote the same version).
//! - **a transfer commits**, **both transfers commit**, **a transfer aborts on
//!   a changed read** (`sometimes`: the outcomes are reachable).
//! - **every transfer decided** (AG EF, see [`crate::checker::Liveness`]): from
//!   every state, a state is reachable where no client is still reading, no
//!   coordinator still collects votes, and no account is in doubt.
//!
//! Decisions are kept in the model's *history* (an auxiliary variable): a
//! transaction's reads and writes from its Prepares, and the transactions a
//! coordinator sent Commit for.
//!
//! # Variants
//!
//! [`Variant::SkipValidation`] strips the read set from every Prepare before
//! the participant sees it — a store that locks what it writes but never
//! checks what was read. Two transfers that read the same balance both commit
//! the balance they computed from it: a lost update, which breaks both
//! safety properties (with two accounts as with three: a client may read one
//! balance before the other transfer commits and the other after).
//!
//! # Symmetry
//!
//! None is used (`--symmetry` is refused): the two transfers differ (1 from
//! `a` to `b`, 2 from `b` onward), so the accounts play different parts, and
//! wait-die tells the coordinators apart by id (see the `node` model's
//! "Symmetry"). No renaming of nodes maps the system onto itself.
//!
//! # Size
//!
//! Two concurrent transfers are two two-phase commits at once, and their
//! interleavings multiply. Without loss or crashes the model takes the network
//! to be timely — no timer fires (see [`BankConfig::timeouts`]) — which keeps
//! the default small; with loss or crashes every timer may fire at any point,
//! which at two transfers is beyond a quick check (see verification/REPORT.md),
//! so crashes and loss are checked exhaustively with one transfer
//! (`transfers=1`), where every early timer, lost message and crash is
//! explored.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bytes::Bytes;
use stateright::Property;
use stateright::actor::{Actor, ActorModel, Envelope, Id, Network, Out, model_timeout};

use crate::NodeId;
use crate::checker::Spec;
use crate::commit::{
    CommitOutput, Coordinator, CoordinatorRecord, Key, Msg, Outcome, Part, Participant,
    ParticipantRecord, Phase, Refusal, TxnId, TxnPlan, TxnRecord, Version, Versioned,
};
use crate::output::{Position, TimerOp};

use super::harness::{self, CheckOptions, CheckReport};
use super::host::{Disk, DiskState, HostTimer};
use super::network::{NetworkState, OnNetwork};
use super::params::named_variants;
use super::params::{ParamError, ParamKind, ParamSpec, Params};
use super::shared::Shared;
use super::two_phase::{
    CommitRecord, DISK, LOSSY, SavedRecord, actor, carry_out_commit, coordinator_config,
    disk_param, node, participant_config,
};

/// The model's name in `haft check`.
pub const NAME: &str = "bank";

/// The clients, each running one transfer: actors `0..CLIENTS`.
pub const CLIENTS: usize = 2;

/// What every account holds at the start.
pub const OPENING_BALANCE: i64 = 10;

/// Which rule of the protocol, if any, the model breaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Variant {
    /// The protocol as specified.
    #[default]
    Correct,
    /// Participants never see the read set: no read validation, no read
    /// locks. Breaks serializability (and, with three accounts, the total).
    SkipValidation,
}

named_variants!(Variant {
    Correct => "correct",
    SkipValidation => "skip-validation",
});

/// Parameters of `bank`.
pub const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "accounts",
        default: "3",
        kind: ParamKind::Int { min: 2, max: 3 },
        help: "accounts, each on its own node (3: the transfers chain a→b→c; 2: a→b and b→a)",
    },
    ParamSpec {
        name: "transfers",
        default: "2",
        kind: ParamKind::Int { min: 1, max: 2 },
        help: "concurrent transfers, each run by its own client (1: no contention, for crashes and loss)",
    },
    LOSSY,
    ParamSpec {
        name: "crashes",
        default: "0",
        kind: ParamKind::Int { min: 0, max: 1 },
        help: "how many nodes may be down at once; each client crashes at most this often in all",
    },
    DISK,
    ParamSpec {
        name: "variant",
        default: "correct",
        kind: ParamKind::Choice(&Variant::NAMES),
        help: "a named fault the checker must refute (see the model's doc)",
    },
];

/// The configuration of a `bank` system.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BankConfig {
    /// Accounts, each on its own node.
    pub accounts: usize,
    /// Concurrent transfers, each run by its own client.
    pub transfers: usize,
    /// Whether the network drops messages.
    pub lossy: bool,
    /// How many nodes may be down at once.
    pub crashes: usize,
    /// How the disk behaves.
    pub disk: Disk,
    /// The fault, if any.
    pub variant: Variant,
}

impl Default for BankConfig {
    fn default() -> Self {
        BankConfig {
            accounts: 3,
            transfers: 2,
            lossy: false,
            crashes: 0,
            disk: Disk::Atomic,
            variant: Variant::Correct,
        }
    }
}

// --- the system --------------------------------------------------------------

/// The key of account `account` (0 → `a`).
pub fn account_key(account: usize) -> Key {
    Bytes::from(((b'a' + account as u8) as char).to_string())
}

/// The node (and actor) holding account `account`.
pub fn account_node(account: usize) -> NodeId {
    NodeId((CLIENTS + account) as u16)
}

/// The version of an account's opening balance: an id of incarnation 0,
/// which no coordinator ever uses (its first life is incarnation 1).
pub fn opening_version(account: usize) -> Version {
    TxnId::new(account_node(account), 0, 0).expect("small numbers fit")
}

fn balance_value(balance: i64) -> Bytes {
    Bytes::from(balance.to_string())
}

/// A balance as the model writes it; anything else counts as no money at all
/// (and breaks the total).
fn balance(value: &[u8]) -> i64 {
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(i64::MIN / 4)
}

/// The record an account's node starts from before it has saved anything.
fn opening_record(account: usize) -> ParticipantRecord {
    let versioned = Versioned {
        value: balance_value(OPENING_BALANCE),
        version: opening_version(account),
    };
    ParticipantRecord {
        store: [(account_key(account), versioned)].into_iter().collect(),
        ..ParticipantRecord::default()
    }
}

/// One client's transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Transfer {
    /// The account debited.
    pub from: usize,
    /// The account credited.
    pub to: usize,
    /// How much moves.
    pub amount: i64,
}

/// The transfers of a system with `accounts` accounts, one per client: client
/// `i` moves `i + 1` from account `i` to the next.
pub fn transfers(accounts: usize) -> [Transfer; CLIENTS] {
    std::array::from_fn(|i| Transfer {
        from: i,
        to: (i + 1) % accounts,
        amount: i as i64 + 1,
    })
}

impl Transfer {
    /// The transaction, from the balances read: each key at the version seen,
    /// each written with its new balance.
    fn plan(&self, seen: &BTreeMap<Key, Versioned>) -> TxnPlan {
        [(self.from, -self.amount), (self.to, self.amount)]
            .into_iter()
            .map(|(account, change)| {
                let key = account_key(account);
                let read = &seen[&key];
                let part = Part {
                    reads: BTreeMap::from([(key.clone(), Some(read.version))]),
                    writes: BTreeMap::from([(
                        key,
                        Some(balance_value(balance(&read.value) + change)),
                    )]),
                };
                (account_node(account), part)
            })
            .collect()
    }

    fn keys(&self) -> [Key; 2] {
        [account_key(self.from), account_key(self.to)]
    }
}

/// A message of the bank: two-phase commit, or a client's read.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BankMsg {
    /// A message of `src/commit`.
    Commit(Msg),
    /// Client → account: what is the balance of `key`?
    Read {
        /// The account's key.
        key: Key,
    },
    /// Account → client: the committed balance of `key`, with its version.
    Balance {
        /// The account's key.
        key: Key,
        /// Its committed value.
        current: Versioned,
    },
}

/// A bank actor's timers, beside the disk's.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BankTimer {
    /// A timer of a commit machine.
    Commit(crate::commit::Timer),
    /// Client: ask again for the balances not yet answered (a read or its
    /// answer may be lost, or the key locked).
    ReadAgain,
}

// Traces show the machine's own timer, `Resend(t0.1.0)`, or `ReadAgain`.
impl fmt::Debug for BankTimer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BankTimer::Commit(timer) => timer.fmt(f),
            BankTimer::ReadAgain => f.write_str("ReadAgain"),
        }
    }
}

/// The disk of a bank actor.
pub type BankDisk = DiskState<SavedRecord, crate::commit::Delta, BankMsg>;

/// Where a client's transfer stands.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TransferState {
    /// Reading the balances; those answered so far.
    Reading(BTreeMap<Key, Versioned>),
    /// Running as this transaction.
    Begun(TxnId),
    /// Given up in a crash, or never given (an idle client).
    Abandoned,
}

/// A bank actor's state: the production machine and its disk.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BankState {
    /// A client: its coordinator and its transfer.
    Client {
        /// The coordinator.
        machine: Coordinator,
        /// Its disk.
        disk: BankDisk,
        /// The transfer.
        transfer: TransferState,
    },
    /// An account's node.
    Account {
        /// The participant.
        machine: Participant,
        /// Its disk.
        disk: BankDisk,
    },
}

/// A bank actor: a client with its transfer, or an account's node.
#[derive(Clone, Debug)]
pub enum BankActor {
    /// A client.
    Client {
        /// What it transfers (on its first start only); `None`: an idle
        /// client, which keeps the accounts' node numbers the same.
        transfer: Option<Transfer>,
        /// The disk's behaviour.
        disk: Disk,
        /// Whether timers are set (see [`BankConfig::timeouts`]).
        timeouts: bool,
    },
    /// An account's node.
    Account {
        /// The account it holds.
        account: usize,
        /// The disk's behaviour.
        disk: Disk,
        /// Whether timers are set (see [`BankConfig::timeouts`]).
        timeouts: bool,
        /// The fault.
        variant: Variant,
    },
}

impl BankActor {
    fn disk(&self) -> Disk {
        match self {
            BankActor::Client { disk, .. } | BankActor::Account { disk, .. } => *disk,
        }
    }

    fn timeouts(&self) -> bool {
        match self {
            BankActor::Client { timeouts, .. } | BankActor::Account { timeouts, .. } => *timeouts,
        }
    }

    /// Carries out a machine's output; tells the machine if it is all durable.
    fn carry_out(&self, state: &mut BankState, out: CommitOutput, o: &mut Out<Self>) {
        let kind = self.disk();
        let out = self.timely(out);
        match state {
            BankState::Client { machine, disk, .. } => {
                if carry_out_commit(kind, disk, out, BankMsg::Commit, BankTimer::Commit, o) {
                    machine.handle_persisted(Position::MAX);
                }
            }
            BankState::Account { machine, disk } => {
                if carry_out_commit(kind, disk, out, BankMsg::Commit, BankTimer::Commit, o) {
                    machine.handle_persisted(Position::MAX);
                }
            }
        }
    }

    /// Feeds one input to the node's commit machine and carries out its output.
    fn step(
        &self,
        state: &mut BankState,
        o: &mut Out<Self>,
        input: impl FnOnce(Machine<'_>, &mut CommitOutput),
    ) {
        let base = match state {
            BankState::Client { disk, .. } | BankState::Account { disk, .. } => disk.base(),
        };
        let mut out = CommitOutput::at(base);
        match state {
            BankState::Client { machine, .. } => input(Machine::Coordinator(machine), &mut out),
            BankState::Account { machine, .. } => input(Machine::Participant(machine), &mut out),
        }
        self.carry_out(state, out, o);
    }

    /// A client asks for the balances it has not seen, and will ask again.
    fn read(&self, transfer: &Transfer, seen: &BTreeMap<Key, Versioned>, o: &mut Out<Self>) {
        for (account, key) in [transfer.from, transfer.to]
            .into_iter()
            .zip(transfer.keys())
        {
            if !seen.contains_key(&key) {
                o.send(actor(account_node(account)), BankMsg::Read { key });
            }
        }
        if self.timeouts() {
            o.set_timer(HostTimer::Machine(BankTimer::ReadAgain), model_timeout());
        }
    }

    /// On a timely network (see [`BankConfig::timeouts`]) no timer is set, so
    /// none fires.
    fn timely(&self, mut out: CommitOutput) -> CommitOutput {
        if !self.timeouts() {
            out.timers.retain(|op| !matches!(op, TimerOp::Set { .. }));
        }
        out
    }
}

/// The commit machine of a node.
enum Machine<'a> {
    Coordinator(&'a mut Coordinator),
    Participant(&'a mut Participant),
}

impl Machine<'_> {
    fn handle_message(self, from: NodeId, msg: Msg, out: &mut CommitOutput) {
        match self {
            Machine::Coordinator(machine) => machine.handle_message(from, msg, out),
            Machine::Participant(machine) => machine.handle_message(from, msg, out),
        }
    }

    fn handle_timer(self, timer: &crate::commit::Timer, out: &mut CommitOutput) {
        match self {
            Machine::Coordinator(machine) => machine.handle_timer(timer, out),
            Machine::Participant(machine) => machine.handle_timer(timer, out),
        }
    }
}

impl Actor for BankActor {
    type Msg = BankMsg;
    type State = BankState;
    type Timer = HostTimer<BankTimer>;
    type Random = ();
    type Storage = SavedRecord;

    fn on_start(&self, id: Id, storage: &Option<SavedRecord>, o: &mut Out<Self>) -> BankState {
        let storage = storage.as_deref();
        // The start's output is durable before any input (the driver's
        // contract), whatever the disk.
        let mut out = CommitOutput::at(0);
        let mut state = match self {
            BankActor::Client { transfer, .. } => {
                let record = match storage {
                    Some(CommitRecord::Coordinator(record)) => record.clone(),
                    _ => CoordinatorRecord::default(),
                };
                let machine =
                    Coordinator::recover(node(id), coordinator_config(), record.clone(), &mut out)
                        .expect("a model never exhausts incarnations");
                let transfer = match transfer {
                    Some(transfer) if storage.is_none() => {
                        let seen = BTreeMap::new();
                        self.read(transfer, &seen, o);
                        TransferState::Reading(seen)
                    }
                    _ => TransferState::Abandoned,
                };
                BankState::Client {
                    machine,
                    disk: DiskState::new(Shared::new(CommitRecord::Coordinator(record))),
                    transfer,
                }
            }
            BankActor::Account { account, .. } => {
                let record = match storage {
                    Some(CommitRecord::Participant(record)) => record.clone(),
                    _ => opening_record(*account),
                };
                let machine =
                    Participant::recover(node(id), participant_config(), record.clone(), &mut out);
                BankState::Account {
                    machine,
                    disk: DiskState::new(Shared::new(CommitRecord::Participant(record))),
                }
            }
        };
        let out = self.timely(out);
        let (BankState::Client { disk, .. } | BankState::Account { disk, .. }) = &mut state;
        let durable = carry_out_commit(
            Disk::Atomic,
            disk,
            out,
            BankMsg::Commit,
            BankTimer::Commit,
            o,
        );
        debug_assert!(durable);
        match &mut state {
            BankState::Client { machine, .. } => machine.handle_persisted(Position::MAX),
            BankState::Account { machine, .. } => machine.handle_persisted(Position::MAX),
        }
        state
    }

    fn on_msg(
        &self,
        _id: Id,
        state: &mut std::borrow::Cow<BankState>,
        src: Id,
        msg: BankMsg,
        o: &mut Out<Self>,
    ) {
        match (self, msg) {
            (
                BankActor::Client {
                    transfer: Some(transfer),
                    ..
                },
                BankMsg::Balance { key, current },
            ) => {
                let BankState::Client {
                    transfer: TransferState::Reading(seen),
                    ..
                } = &**state
                else {
                    return;
                };
                // The first answer for a key is the read; later copies are late.
                if seen.contains_key(&key) {
                    return;
                }
                let mut seen = seen.clone();
                seen.insert(key, current);
                let state = state.to_mut();
                if seen.len() < 2 {
                    let BankState::Client { transfer, .. } = state else {
                        unreachable!("a client's state")
                    };
                    *transfer = TransferState::Reading(seen);
                    return;
                }
                o.cancel_timer(HostTimer::Machine(BankTimer::ReadAgain));
                let plan = transfer.plan(&seen);
                let mut begun = None;
                self.step(state, o, |machine, out| {
                    let Machine::Coordinator(machine) = machine else {
                        unreachable!("a client's machine")
                    };
                    begun = Some(
                        machine
                            .begin(plan, None, out)
                            .expect("a transfer touches two accounts"),
                    );
                });
                if let (BankState::Client { transfer, .. }, Some(txn)) = (state, begun) {
                    *transfer = TransferState::Begun(txn);
                }
            }
            (BankActor::Account { .. }, BankMsg::Read { key }) => {
                let BankState::Account { machine, .. } = &**state else {
                    unreachable!("an account's state")
                };
                // A key a prepared transaction is about to write is not read:
                // its writer may already be committed. The client asks again.
                if let Ok(Some(current)) = machine.read(&key) {
                    let current = current.clone();
                    o.send(src, BankMsg::Balance { key, current });
                }
            }
            (BankActor::Account { variant, .. }, BankMsg::Commit(msg)) => {
                let msg = match (variant, msg) {
                    // The fault: the participant never sees what was read.
                    (
                        Variant::SkipValidation,
                        Msg::Prepare {
                            txn,
                            writes,
                            peers,
                            finished_below,
                            ..
                        },
                    ) => Msg::Prepare {
                        txn,
                        reads: BTreeMap::new(),
                        writes,
                        peers,
                        finished_below,
                    },
                    (_, msg) => msg,
                };
                self.step(state.to_mut(), o, |machine, out| {
                    machine.handle_message(node(src), msg, out)
                });
            }
            (BankActor::Client { .. }, BankMsg::Commit(msg)) => {
                self.step(state.to_mut(), o, |machine, out| {
                    machine.handle_message(node(src), msg, out)
                });
            }
            // Not addressed to this role.
            (BankActor::Client { .. }, BankMsg::Read { .. } | BankMsg::Balance { .. })
            | (BankActor::Account { .. }, BankMsg::Balance { .. }) => {}
        }
    }

    fn on_timeout(
        &self,
        _id: Id,
        state: &mut std::borrow::Cow<BankState>,
        timer: &HostTimer<BankTimer>,
        o: &mut Out<Self>,
    ) {
        match timer {
            HostTimer::Sync => match state.to_mut() {
                BankState::Client { machine, disk, .. } => {
                    disk.sync(o);
                    machine.handle_persisted(Position::MAX);
                }
                BankState::Account { machine, disk } => {
                    disk.sync(o);
                    machine.handle_persisted(Position::MAX);
                }
            },
            HostTimer::Machine(BankTimer::Commit(timer)) => {
                self.step(state.to_mut(), o, |machine, out| {
                    machine.handle_timer(timer, out)
                });
            }
            HostTimer::Machine(BankTimer::ReadAgain) => {
                if let (
                    BankActor::Client {
                        transfer: Some(transfer),
                        ..
                    },
                    BankState::Client {
                        transfer: TransferState::Reading(seen),
                        ..
                    },
                ) = (self, &**state)
                {
                    self.read(transfer, seen, o);
                }
            }
        }
    }

    fn name(&self) -> String {
        match self {
            BankActor::Client { .. } => "client".into(),
            BankActor::Account { .. } => "account".into(),
        }
    }
}

// --- history and the model ---------------------------------------------------

/// What the model remembers beyond the actors' states (TLA+'s auxiliary
/// variables).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct History {
    /// Every transaction a client began, as its Prepares carried it: what it
    /// read and writes at each account's node.
    pub plans: BTreeMap<TxnId, TxnPlan>,
    /// The transactions a coordinator decided to commit (it sent Commit).
    pub committed: BTreeSet<TxnId>,
}

/// The actors on their network, as stateright composes them.
pub type Actors = ActorModel<BankActor, BankSystem, History>;

/// The system the checker explores (see [`super::network`]).
pub type BankModel = OnNetwork<BankActor, BankSystem, History>;

/// A state of [`BankModel`].
pub type SystemState = NetworkState<BankActor, History>;

/// The model's configuration.
#[derive(Clone, Debug)]
pub struct BankSystem {
    /// The parameters.
    pub config: BankConfig,
}

impl BankSystem {
    fn accounts(&self) -> std::ops::Range<usize> {
        0..self.config.accounts
    }
}

impl BankConfig {
    /// Reads a configuration from checked parameters.
    pub fn from_params(params: &Params) -> Result<BankConfig, ParamError> {
        let variant = params.choice("variant");
        Ok(BankConfig {
            accounts: params.usize("accounts"),
            transfers: params.usize("transfers"),
            lossy: params.bool("lossy"),
            crashes: params.usize("crashes"),
            disk: disk_param(params),
            variant: Variant::from_name(variant)
                .ok_or_else(|| params.combination_error(format!("unknown variant {variant}")))?,
        })
    }

    /// Whether the commit machines' timers (and a client's `ReadAgain`) are
    /// set. Only loss and crashes need them: on a network that loses nothing,
    /// among nodes that never crash, every message arrives, and the model
    /// takes the network to be timely — no timer fires early. A lossy network
    /// may also lose nothing, so `lossy=true` checks the early timers too.
    pub fn timeouts(&self) -> bool {
        self.lossy || self.crashes > 0
    }

    /// Builds the actor model.
    pub fn into_model(self) -> BankModel {
        let timeouts = self.timeouts();
        let clients = transfers(self.accounts)
            .into_iter()
            .enumerate()
            .map(|(client, transfer)| BankActor::Client {
                transfer: (client < self.transfers).then_some(transfer),
                disk: self.disk,
                timeouts,
            });
        let accounts = (0..self.accounts).map(|account| BankActor::Account {
            account,
            disk: self.disk,
            timeouts,
            variant: self.variant,
        });
        let actors = ActorModel::new(
            BankSystem {
                config: self.clone(),
            },
            History::default(),
        )
        .actors(clients)
        .actors(accounts)
        .init_network(Network::new_unordered_duplicating([]))
        .max_crashes(self.crashes)
        .record_msg_out(record_out);
        OnNetwork::new(actors, self.lossy, properties).with_crash_budget(may_crash)
    }
}

/// Every restart raises a client's incarnation, so its restarts are bounded:
/// it may crash `crashes` times in all (an idle client never does). Accounts
/// may crash again after each restart (at most `crashes` nodes down at once).
fn may_crash(cfg: &BankSystem, state: &SystemState, id: Id) -> bool {
    match state.actor(usize::from(id)) {
        BankState::Client { machine, .. } => {
            usize::from(id) < cfg.config.transfers
                && machine.incarnation() <= cfg.config.crashes as u64
        }
        BankState::Account { .. } => true,
    }
}

fn record_out(_: &BankSystem, history: &History, env: Envelope<&BankMsg>) -> Option<History> {
    let BankMsg::Commit(msg) = env.msg else {
        return None;
    };
    let from_client = usize::from(env.src) < CLIENTS;
    match msg {
        Msg::Prepare {
            txn, reads, writes, ..
        } if from_client => {
            let to = node(env.dst);
            if history
                .plans
                .get(txn)
                .is_some_and(|plan| plan.contains_key(&to))
            {
                return None;
            }
            let mut next = history.clone();
            let part = Part {
                reads: reads.clone(),
                writes: writes.clone(),
            };
            next.plans.entry(*txn).or_default().insert(to, part);
            Some(next)
        }
        Msg::Outcome {
            txn,
            outcome: Outcome::Commit,
        } if from_client && !history.committed.contains(txn) => {
            let mut next = history.clone();
            next.committed.insert(*txn);
            Some(next)
        }
        _ => None,
    }
}

/// The properties of `bank` (see the module doc).
fn properties(model: &BankModel) -> Vec<Property<BankModel>> {
    let mut properties = vec![
        Property::always("total conserved", |m: &BankModel, s: &SystemState| {
            total_conserved(&m.actors.cfg, s)
        }),
        Property::always("serializable", |m: &BankModel, s: &SystemState| {
            serializable(&m.actors.cfg, s)
        }),
        Property::sometimes("a transfer commits", |_, s: &SystemState| {
            !s.history.committed.is_empty()
        }),
    ];
    if model.actors.cfg.config.transfers == CLIENTS {
        properties.push(Property::sometimes(
            "both transfers commit",
            |_, s: &SystemState| s.history.committed.len() == CLIENTS,
        ));
        properties.push(Property::sometimes(
            "a transfer aborts on a changed read",
            |m: &BankModel, s: &SystemState| changed_read(&m.actors.cfg, s),
        ));
    }
    properties
}

/// The AG EF property of `bank` (see the module doc).
pub const LIVENESS: &str = "every transfer decided";

/// An account's durable record: its disk, or the opening record before it
/// has saved anything.
fn durable_record(state: &SystemState, account: usize) -> std::borrow::Cow<'_, ParticipantRecord> {
    match state.storage(CLIENTS + account).map(|s| &**s) {
        Some(CommitRecord::Participant(record)) => std::borrow::Cow::Borrowed(record),
        _ => std::borrow::Cow::Owned(opening_record(account)),
    }
}

/// The decided balance of each account (see the module doc): its durable
/// store, with the writes of committed transactions it is still prepared on.
fn decided_balances(cfg: &BankSystem, state: &SystemState) -> Vec<i64> {
    cfg.accounts()
        .map(|account| {
            let record = durable_record(state, account);
            let key = account_key(account);
            let mut value = record.store.get(&key).map(|v| v.value.clone());
            for (txn, txn_record) in &record.txns {
                if let TxnRecord::Prepared { writes, .. } = txn_record {
                    if state.history.committed.contains(txn) {
                        if let Some(write) = writes.get(&key) {
                            value = write.clone();
                        }
                    }
                }
            }
            value.map_or(0, |value| balance(&value))
        })
        .collect()
}

fn total_conserved(cfg: &BankSystem, state: &SystemState) -> bool {
    let total: i64 = decided_balances(cfg, state).iter().sum();
    total == OPENING_BALANCE * cfg.config.accounts as i64
}

/// Whether some order of the committed transactions has each read, of every
/// key, the version current at its turn, starting from the opening versions.
fn serializable(cfg: &BankSystem, state: &SystemState) -> bool {
    let h = &state.history;
    let Some(committed) = h
        .committed
        .iter()
        .map(|txn| h.plans.get(txn).map(|plan| (*txn, plan)))
        .collect::<Option<Vec<_>>>()
    else {
        return false; // a commit of a transaction no client began
    };
    let versions: BTreeMap<Key, Version> = cfg
        .accounts()
        .map(|account| (account_key(account), opening_version(account)))
        .collect();
    serial_order_exists(&committed, &mut vec![false; committed.len()], &versions)
}

fn serial_order_exists(
    txns: &[(TxnId, &TxnPlan)],
    placed: &mut Vec<bool>,
    versions: &BTreeMap<Key, Version>,
) -> bool {
    if placed.iter().all(|p| *p) {
        return true;
    }
    (0..txns.len()).any(|i| {
        let (txn, plan) = txns[i];
        let reads_current = plan
            .values()
            .flat_map(|part| &part.reads)
            .all(|(key, seen)| versions.get(key).copied() == *seen);
        if placed[i] || !reads_current {
            return false;
        }
        let mut after = versions.clone();
        for key in plan.values().flat_map(|part| part.writes.keys()) {
            after.insert(key.clone(), txn);
        }
        placed[i] = true;
        let found = serial_order_exists(txns, placed, &after);
        placed[i] = false;
        found
    })
}

fn changed_read(cfg: &BankSystem, state: &SystemState) -> bool {
    cfg.accounts().any(|account| {
        durable_record(state, account)
            .txns
            .values()
            .any(|record| matches!(record, TxnRecord::Refused(Refusal::Changed { .. })))
    })
}

/// The liveness goal: no client is still reading, no coordinator still
/// collects votes, and no account is in doubt about a transfer.
fn transfers_decided(model: &BankModel, state: &SystemState) -> bool {
    let cfg = &model.actors.cfg;
    let clients_done = state
        .actor_states()
        .take(CLIENTS)
        .all(|client| match client {
            BankState::Client {
                machine, transfer, ..
            } => {
                !matches!(transfer, TransferState::Reading(_))
                    && machine
                        .txns()
                        .values()
                        .all(|txn| !matches!(txn.phase, Phase::Voting { .. }))
            }
            BankState::Account { .. } => false,
        });
    clients_done
        && cfg.accounts().all(|account| {
            !durable_record(state, account)
                .txns
                .values()
                .any(|record| matches!(record, TxnRecord::Prepared { .. }))
        })
}

/// Checks the model, its properties and its liveness, in one search.
pub fn check(params: &Params, options: &CheckOptions) -> Result<CheckReport, ParamError> {
    let model = BankConfig::from_params(params)?.into_model();
    Ok(harness::run_spec(
        NAME,
        params.clone(),
        &model,
        &spec(&model),
        options,
    ))
}

/// Everything checked on `model`.
pub fn spec(model: &BankModel) -> Spec<BankModel> {
    Spec::of(model).liveness(LIVENESS, transfers_decided)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::testing::actions_to as trace;

    fn run(config: BankConfig) -> CheckReport {
        let model = config.into_model();
        let options = CheckOptions {
            threads: 2,
            ..CheckOptions::default()
        };
        let params = Params::defaults(NAME, PARAMS);
        let report = harness::run_spec(NAME, params, &model, &spec(&model), &options);
        assert!(report.complete);
        report
    }

    fn config(accounts: usize, transfers: usize, faults: bool, variant: Variant) -> BankConfig {
        BankConfig {
            accounts,
            transfers,
            lossy: faults,
            crashes: usize::from(faults),
            disk: Disk::Atomic,
            variant,
        }
    }

    /// The refuted properties: the `always` and liveness ones that fail, and
    /// the `sometimes` ones never witnessed.
    fn refuted(report: &CheckReport) -> Vec<&'static str> {
        report
            .properties
            .iter()
            .filter(|p| p.refuted())
            .map(|p| p.name)
            .collect()
    }

    #[test]
    fn default_configuration_passes_with_pinned_counts() {
        let report = run(BankConfig::default());
        assert!(report.passed(), "{report:#?}");
        assert_eq!(report.unique_states, 9_941);
    }

    #[test]
    fn two_accounts_pass() {
        // Both transfers touch both accounts, in opposite directions.
        let report = run(config(2, 2, false, Variant::Correct));
        assert!(report.passed(), "{report:#?}");
        assert_eq!(report.unique_states, 41_745);
    }

    #[test]
    fn a_transfer_survives_crashes_and_loss() {
        for (accounts, states) in [(2, 20_060), (3, 25_624)] {
            let report = run(config(accounts, 1, true, Variant::Correct));
            assert!(report.passed(), "{report:#?}");
            assert_eq!(report.unique_states, states, "{accounts} accounts");
        }
    }

    #[test]
    fn skip_validation_loses_an_update() {
        let report = run(config(3, 2, false, Variant::SkipValidation));
        assert_eq!(report.unique_states, 11_301);
        // Without validation no read is ever refused as changed.
        assert_eq!(
            refuted(&report),
            [
                "total conserved",
                "serializable",
                "a transfer aborts on a changed read"
            ]
        );
        // The shortest counterexample: client 1 reads b, client 0's transfer
        // commits and changes b, and client 1's transfer, built on the old
        // balance, is prepared and committed over it.
        let trace = trace(&report, "serializable");
        let read = trace
            .iter()
            .position(|a| a.starts_with("Id(3) → Balance { key: b\"b\"") && a.ends_with("Id(1)"))
            .expect("client 1 reads b");
        let applied = trace
            .iter()
            .position(|a| a.contains("Outcome(t0.1.0, Commit)) → Id(3)"))
            .expect("client 0's transfer is applied at b");
        let prepared = trace
            .iter()
            .position(|a| a.contains("Prepare(t1.1.0, {\"b\"@3.0.0"))
            .expect("client 1 prepares at b with the opening version");
        assert!(applied < prepared && read < prepared, "{trace:?}");
        assert!(
            trace.last().unwrap().contains("Vote(t1.1.0, Yes)) → Id(1)"),
            "{trace:?}"
        );
        assert_eq!(trace, super::tests::trace(&report, "total conserved"));
    }

    #[test]
    fn skip_validation_with_two_accounts_loses_money_too() {
        // Reads are not atomic: a client may read one account before the
        // other transfer commits and the other after.
        let report = run(config(2, 2, false, Variant::SkipValidation));
        assert_eq!(report.unique_states, 59_137);
        assert_eq!(
            refuted(&report),
            [
                "total conserved",
                "serializable",
                "a transfer aborts on a changed read"
            ]
        );
    }

    #[test]
    fn parameters_select_the_configuration() {
        let params = Params::parse(
            NAME,
            PARAMS,
            &[
                "accounts=2",
                "transfers=1",
                "crashes=1",
                "lossy=true",
                "variant=skip-validation",
            ],
        )
        .unwrap();
        let config = BankConfig::from_params(&params).unwrap();
        assert_eq!(config, self::config(2, 1, true, Variant::SkipValidation));
        assert!(config.timeouts());
        assert!(!BankConfig::default().timeouts());
        assert!(Params::parse(NAME, PARAMS, &["accounts=4"]).is_err());
    }
}
