//! The errors the front end answers with, in Redis's words, and the errors
//! that stop the server.
//!
//! Clients match on Redis's error codes and often on its messages, so each
//! variant's text is Redis 7's where Redis has one; haft's own refusals say
//! what was refused and what to do instead.

use std::net::SocketAddr;

use super::backend::BackendError;

/// An error reply: the command was refused or failed, and the connection stays
/// usable (except for [`ClientError::Protocol`], after which it is closed).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// No such command.
    #[error("ERR unknown command '{name}', with args beginning with: {args}")]
    UnknownCommand {
        /// The command name as sent (at most 128 bytes).
        name: String,
        /// The first arguments, each quoted and followed by a space.
        args: String,
    },
    /// No such subcommand of a container command (CLIENT, COMMAND).
    #[error("ERR unknown subcommand '{subcommand}'. Try {command} HELP.")]
    UnknownSubcommand {
        /// The container command, upper case.
        command: &'static str,
        /// The subcommand as sent.
        subcommand: String,
    },
    /// Too few or too many arguments.
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(String),
    /// Options that do not form a valid command.
    #[error("ERR syntax error")]
    Syntax,
    /// An argument or a stored value is not a 64-bit integer.
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    /// INCR and friends would leave the 64-bit range.
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    /// DECRBY with the smallest 64-bit integer, which has no negation.
    #[error("ERR decrement would overflow")]
    DecrementOverflow,
    /// APPEND would make a value larger than the server accepts.
    #[error("ERR string exceeds maximum allowed size (max_bulk_bytes is {0} bytes)")]
    TooLarge(usize),
    /// An expiry option of SET.
    #[error(
        "ERR haft does not support key expiry: {0} is refused; set the key without an expiry option"
    )]
    ExpiryUnsupported(String),
    /// A command before AUTH on a server with `requirepass`.
    #[error("NOAUTH Authentication required.")]
    NoAuth,
    /// HELLO without AUTH before the client authenticated.
    #[error(
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
    )]
    NoAuthHello,
    /// The password (or user) is wrong.
    #[error("WRONGPASS invalid username-password pair or user is disabled.")]
    WrongPass,
    /// AUTH with a password on a server without `requirepass`.
    #[error(
        "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
    )]
    NoPasswordConfigured,
    /// HELLO with a protocol other than 2 or 3.
    #[error("NOPROTO unsupported protocol version")]
    NoProto,
    /// HELLO with an option it does not know, or without its arguments.
    #[error("ERR Syntax error in HELLO option '{0}'")]
    HelloSyntax(String),
    /// HELLO with a protocol version that is not a number.
    #[error("ERR Protocol version is not an integer or out of range")]
    BadProtocolVersion,
    /// SELECT of a database other than 0 (haft has one).
    #[error("ERR DB index is out of range")]
    DbIndexOutOfRange,
    /// MULTI inside MULTI.
    #[error("ERR MULTI calls can not be nested")]
    NestedMulti,
    /// EXEC outside MULTI.
    #[error("ERR EXEC without MULTI")]
    ExecWithoutMulti,
    /// DISCARD outside MULTI.
    #[error("ERR DISCARD without MULTI")]
    DiscardWithoutMulti,
    /// WATCH inside MULTI.
    #[error("ERR WATCH inside MULTI is not allowed")]
    WatchInsideMulti,
    /// EXEC after a command was refused while queueing.
    #[error("EXECABORT Transaction discarded because of previous errors.")]
    ExecAbort,
    /// CLIENT SETNAME with a name Redis refuses.
    #[error("ERR Client names cannot contain spaces, newlines or special characters.")]
    BadClientName,
    /// CLIENT SETINFO with a value Redis refuses.
    #[error("ERR {0} cannot contain spaces, newlines or special characters.")]
    BadClientInfo(String),
    /// CLIENT SETINFO with an attribute other than LIB-NAME or LIB-VER.
    #[error("ERR Unrecognized option '{0}'")]
    UnrecognizedOption(String),
    /// The connection limit is reached; the connection is closed.
    #[error("ERR max number of clients reached")]
    MaxClients,
    /// A transaction was refused again and again until the retry budget ran
    /// out; nothing was written.
    #[error(
        "TRYAGAIN haft could not commit the transaction ({0}) within its retry budget; nothing was written, retry"
    )]
    RetriesExhausted(String),
    /// The backend gave no answer and nothing was written.
    #[error("TRYAGAIN {0}")]
    Unavailable(BackendError),
    /// The backend does not know whether a commit was applied.
    #[error("ERR {0}")]
    Indeterminate(BackendError),
    /// The request does not follow the protocol; the connection is closed.
    #[error("ERR Protocol error: {0}")]
    Protocol(#[from] ProtocolError),
}

impl From<BackendError> for ClientError {
    fn from(error: BackendError) -> Self {
        match error {
            BackendError::Unavailable(_) => ClientError::Unavailable(error),
            BackendError::Indeterminate(_) => ClientError::Indeterminate(error),
        }
    }
}

/// A request that cannot be read; after replying with it the server closes the
/// connection, as Redis does, because it cannot find the next request's start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// An array length that is not a number or is too large.
    #[error("invalid multibulk length")]
    MultibulkLength,
    /// A bulk length that is not a number, or larger than `max_bulk_bytes`.
    #[error(
        "invalid bulk length (haft accepts arguments of at most {limit} bytes: max_bulk_bytes)"
    )]
    BulkLength {
        /// The configured limit.
        limit: usize,
    },
    /// A request element that is not a bulk string.
    #[error("expected '$', got '{0}'")]
    ExpectedBulk(char),
    /// A length line longer than 64 KiB.
    #[error("too big {0} count string")]
    LongCountLine(&'static str),
    /// An inline request longer than 64 KiB.
    #[error("too big inline request")]
    LongInline,
    /// A request larger than `max_request_bytes`.
    #[error(
        "request larger than {limit} bytes (max_request_bytes); split it into smaller commands"
    )]
    RequestTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// Before AUTH, a request with more elements than Redis allows.
    #[error("unauthenticated multibulk length")]
    UnauthenticatedMultibulk,
    /// Before AUTH, an argument longer than Redis allows.
    #[error("unauthenticated bulk length")]
    UnauthenticatedBulk,
    /// The decoder refused the bytes.
    #[error("{0}")]
    Decoder(String),
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is unusable.
    #[error("RESP configuration: {0}")]
    Config(String),
    /// The listening address could not be bound.
    #[error("cannot listen for RESP clients on {addr}: {source}; choose a free address")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The server's runtime or thread could not be started.
    #[error("cannot start the RESP server's runtime: {0}")]
    Runtime(std::io::Error),
    /// Accepting connections failed.
    #[error("accepting RESP clients failed: {0}")]
    Accept(std::io::Error),
    /// The server thread panicked (a bug).
    #[error("the RESP server thread panicked")]
    Panicked,
}
