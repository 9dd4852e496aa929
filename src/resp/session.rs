//! [`Session`]: one client connection's state (protocol, authentication,
//! name, the MULTI queue, the watched keys) and the dispatch of each request.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use super::backend::Version;
use super::command::server::ServerCommand;
use super::command::transaction::TransactionCommand;
use super::command::{Command, DataCommand, Parsed};
use super::error::ClientError;
use super::framing::Limits;
use super::reply::{Protocol, Reply};
use super::server::Shared;
use super::txn::{self, Outcome};

/// What the connection does after a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    /// Read the next request.
    Continue,
    /// Send the reply, then close (QUIT).
    Close,
}

/// How a pipelined data command may share work with its neighbours (see
/// [`Session::shareable`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Share {
    /// A write: it may share one transaction with the writes next to it.
    Write {
        /// It reads no key (a plain SET, MSET): its writes merge with other
        /// clients' blind writes and meet no conflict among them.
        blind: bool,
    },
    /// A read of at most one key: it may share one read with the reads next
    /// to it.
    Read,
}

/// The commands queued since MULTI.
#[derive(Debug, Default)]
struct Multi {
    /// Each queued command, or the error that will be its reply at EXEC.
    queued: Vec<Result<Command, ClientError>>,
    /// A command was rejected while queueing: EXEC answers EXECABORT.
    poisoned: bool,
}

/// One connection's state.
pub struct Session {
    /// The client id (CLIENT ID), unique in this server.
    pub id: u64,
    /// The protocol HELLO chose.
    pub protocol: Protocol,
    /// True once AUTH succeeded, or from the start without `requirepass`.
    pub authenticated: bool,
    /// CLIENT SETNAME's name.
    pub name: Option<Bytes>,
    /// CLIENT SETINFO LIB-NAME.
    pub library_name: Option<Bytes>,
    /// CLIENT SETINFO LIB-VER.
    pub library_version: Option<Bytes>,
    peer: SocketAddr,
    multi: Option<Multi>,
    watched: BTreeMap<Bytes, Version>,
    shared: Arc<Shared>,
}

impl Session {
    /// A new connection's state.
    pub fn new(shared: Arc<Shared>, peer: SocketAddr) -> Self {
        Session {
            id: shared.next_client_id(),
            protocol: Protocol::Resp2,
            authenticated: shared.config.requirepass.is_none(),
            name: None,
            library_name: None,
            library_version: None,
            peer,
            multi: None,
            watched: BTreeMap::new(),
            shared,
        }
    }

    /// The limits on the next request.
    pub fn limits(&self) -> Limits {
        Limits {
            max_bulk: self.shared.config.max_bulk_bytes,
            max_request: self.shared.config.max_request_bytes,
            authenticated: self.authenticated,
        }
    }

    /// Checks a password (and user) against `requirepass`, as AUTH does.
    pub fn authenticate(
        &mut self,
        user: Option<&[u8]>,
        password: &[u8],
    ) -> Result<(), ClientError> {
        let default_user = user.is_none_or(|u| u == b"default");
        match &self.shared.config.requirepass {
            None if user.is_none() => Err(ClientError::NoPasswordConfigured),
            // Without requirepass the default user takes any password, as in Redis.
            None if default_user => Ok(()),
            Some(expected) if default_user && same_secret(expected.as_bytes(), password) => {
                self.authenticated = true;
                Ok(())
            }
            _ => Err(ClientError::WrongPass),
        }
    }

    /// CLIENT INFO's line about this connection.
    pub fn describe(&self) -> String {
        let text = |value: &Option<Bytes>| {
            value
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default()
                .into_owned()
        };
        format!(
            "id={} addr={} laddr={} name={} db=0 multi={} watch={} resp={} lib-name={} lib-ver={}\n",
            self.id,
            self.peer,
            self.shared.local_addr,
            text(&self.name),
            self.multi.as_ref().map_or(-1, |m| m.queued.len() as i64),
            self.watched.len(),
            self.protocol.number(),
            text(&self.library_name),
            text(&self.library_version),
        )
    }

    /// A request that may share work with the data commands pipelined next
    /// to it: a data command that parsed without error, outside MULTI, from an
    /// authenticated client, that writes ([`Share::Write`], see
    /// [`Session::run_together`]) or reads at most one key
    /// ([`Share::Read`], see [`Session::read_together`]). Any other request is
    /// handed back, for [`Session::handle_parsed`].
    pub fn shareable(&self, parsed: Parsed) -> Result<(Share, DataCommand), Parsed> {
        match parsed {
            Parsed::Known {
                spec,
                command: Ok(Command::Data(command)),
            } if self.multi.is_none() && self.authenticated => {
                let reads = command.reads().len();
                if spec.flags.contains(&"write") {
                    Ok((Share::Write { blind: reads == 0 }, command))
                } else if spec.flags.contains(&"readonly") && reads <= 1 {
                    Ok((Share::Read, command))
                } else {
                    Err(Parsed::Known {
                        spec,
                        command: Ok(Command::Data(command)),
                    })
                }
            }
            other => Err(other),
        }
    }

    /// Runs write commands that one client pipelined back to back, each
    /// outside MULTI, as one transaction: one reply per command, in order.
    ///
    /// The client has sent them all before it has any reply, so applying them
    /// all at one instant, in order, is a linearization of them: the result is
    /// the one they would have run one by one, except that no other client's
    /// command can come between two of them, which one by one it could. Each
    /// command computes over the ones before it; one that fails (INCR of text)
    /// writes nothing and answers its error, as it would alone. If the
    /// transaction cannot be committed, every command answers the same error,
    /// which holds for each (nothing written, or the outcome unknown).
    pub async fn run_together(&self, commands: &[DataCommand]) -> Vec<Reply> {
        let commands: Vec<&DataCommand> = commands.iter().collect();
        match txn::run(&self.context(), &commands, &BTreeMap::new()).await {
            Ok(Outcome::Replies(replies)) => replies,
            // Nothing is watched.
            Ok(Outcome::WatchedKeyChanged) => vec![Reply::Null; commands.len()],
            Err(error) => vec![Reply::Error(error); commands.len()],
        }
    }

    /// Runs read commands of at most one key each that one client pipelined
    /// back to back with one read of their keys: one reply per command, in
    /// order.
    ///
    /// Each command alone would be answered from one linearizable read of its
    /// key, with no commit (see [`txn`]); the shared read takes place after
    /// the client sent them all and before any is answered, so it is such a
    /// read for each of them.
    pub async fn read_together(&self, commands: &[DataCommand]) -> Vec<Reply> {
        let commands: Vec<&DataCommand> = commands.iter().collect();
        match txn::read_each(&self.context(), &commands).await {
            Ok(replies) => replies,
            Err(error) => vec![Reply::Error(error); commands.len()],
        }
    }

    /// Answers one request, as [`parse`](super::command::parse) has read it.
    pub async fn handle_parsed(&mut self, parsed: Parsed) -> (Reply, After) {
        let (spec, command) = match parsed {
            Parsed::Rejected(error) => {
                self.poison_multi();
                return (Reply::Error(error), After::Continue);
            }
            Parsed::Known { spec, command } => (spec, command),
        };
        if !self.authenticated && !spec.no_auth() {
            self.poison_multi();
            return (Reply::Error(ClientError::NoAuth), After::Continue);
        }
        let runs_now = matches!(spec.name, "exec" | "discard" | "multi" | "watch" | "quit");
        if let (Some(multi), false) = (&mut self.multi, runs_now) {
            multi.queued.push(command);
            return (Reply::Status(Cow::Borrowed("QUEUED")), After::Continue);
        }
        match command {
            Err(error) => (Reply::Error(error), After::Continue),
            Ok(Command::Connection(command)) => command.apply(self),
            Ok(Command::Data(command)) => (self.run_alone(&command).await, After::Continue),
            Ok(Command::Server(command)) => (command.apply(&self.shared).await, After::Continue),
            Ok(Command::Transaction(command)) => (self.transaction(command).await, After::Continue),
        }
    }

    fn poison_multi(&mut self) {
        if let Some(multi) = &mut self.multi {
            multi.poisoned = true;
        }
    }

    fn context(&self) -> txn::Context<'_> {
        txn::Context {
            backend: &*self.shared.backend,
            retry: &self.shared.config.retry,
            max_bulk: self.shared.config.max_bulk_bytes,
            retries: self.shared.retries_counter(),
        }
    }

    /// A data command outside MULTI: a transaction of its own, WATCH ignored.
    async fn run_alone(&self, command: &DataCommand) -> Reply {
        let mut replies = self.run_together(std::slice::from_ref(command)).await;
        replies.pop().unwrap_or(Reply::Null)
    }

    async fn transaction(&mut self, command: TransactionCommand) -> Reply {
        match command {
            TransactionCommand::Multi => {
                if self.multi.is_some() {
                    return Reply::Error(ClientError::NestedMulti);
                }
                self.multi = Some(Multi::default());
                Reply::OK
            }
            TransactionCommand::Exec => {
                let Some(multi) = self.multi.take() else {
                    return Reply::Error(ClientError::ExecWithoutMulti);
                };
                let watched = std::mem::take(&mut self.watched);
                if multi.poisoned {
                    return Reply::Error(ClientError::ExecAbort);
                }
                self.exec(multi.queued, &watched).await
            }
            TransactionCommand::Discard => {
                if self.multi.take().is_none() {
                    return Reply::Error(ClientError::DiscardWithoutMulti);
                }
                self.watched.clear();
                Reply::OK
            }
            TransactionCommand::Watch(keys) => {
                if self.multi.is_some() {
                    return Reply::Error(ClientError::WatchInsideMulti);
                }
                self.watch(keys).await
            }
            TransactionCommand::Unwatch => {
                self.watched.clear();
                Reply::OK
            }
        }
    }

    /// Remembers the versions of keys not watched yet; a key watched again
    /// keeps its first version, as in Redis.
    async fn watch(&mut self, keys: Vec<Bytes>) -> Reply {
        let mut fresh: Vec<Bytes> = Vec::new();
        for key in keys {
            if !self.watched.contains_key(&key) && !fresh.contains(&key) {
                fresh.push(key);
            }
        }
        if fresh.is_empty() {
            return Reply::OK;
        }
        match self.shared.backend.read(fresh.clone()).await {
            Ok(read) if read.len() == fresh.len() => {
                self.watched
                    .extend(fresh.into_iter().zip(read.into_iter().map(|r| r.version)));
                Reply::OK
            }
            Ok(_) => Reply::Error(ClientError::from(
                super::backend::BackendError::Unavailable(
                    "the store answered the wrong number of values".into(),
                ),
            )),
            Err(error) => Reply::Error(error.into()),
        }
    }

    /// EXEC: the queued data commands as one transaction, then the other
    /// queued commands (PING, INFO, …) in their places.
    async fn exec(
        &mut self,
        queued: Vec<Result<Command, ClientError>>,
        watched: &BTreeMap<Bytes, Version>,
    ) -> Reply {
        let data: Vec<&DataCommand> = queued
            .iter()
            .filter_map(|c| match c {
                Ok(Command::Data(data)) => Some(data),
                _ => None,
            })
            .collect();
        let mut data_replies = match txn::run(&self.context(), &data, watched).await {
            Ok(Outcome::Replies(replies)) => replies.into_iter(),
            Ok(Outcome::WatchedKeyChanged) => return Reply::NullArray,
            Err(error) => return Reply::Error(error),
        };
        let mut replies = Vec::with_capacity(queued.len());
        for command in queued {
            let reply = match command {
                Err(error) => Reply::Error(error),
                Ok(Command::Data(_)) => data_replies.next().unwrap_or(Reply::Null),
                Ok(Command::Connection(command)) => command.apply(self).0,
                Ok(Command::Server(command)) => self.server(&command).await,
                // MULTI, EXEC, DISCARD and WATCH are never queued.
                Ok(Command::Transaction(_)) => {
                    self.watched.clear();
                    Reply::OK
                }
            };
            replies.push(reply);
        }
        Reply::Array(replies)
    }

    async fn server(&self, command: &ServerCommand) -> Reply {
        command.apply(&self.shared).await
    }
}

/// Compares secrets in time independent of where they first differ.
fn same_secret(expected: &[u8], given: &[u8]) -> bool {
    expected.len() == given.len()
        && expected
            .iter()
            .zip(given)
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}
