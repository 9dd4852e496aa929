//! The commands haft answers: a table of their Redis metadata, and one file
//! per family that turns arguments into a typed command and carries it out.
//!
//! - [`connection`] — PING, ECHO, HELLO, AUTH, SELECT, QUIT, CLIENT;
//! - [`strings`] — GET, SET, GETSET, GETDEL, MGET, MSET, INCR, INCRBY, DECR,
//!   DECRBY, APPEND, STRLEN;
//! - [`keys`] — DEL, EXISTS;
//! - [`transaction`] — MULTI, EXEC, DISCARD, WATCH, UNWATCH;
//! - [`server`] — DBSIZE, INFO, COMMAND.
//!
//! Reading a command has two stages, as in Redis. [`parse`] first looks the
//! name up and checks the argument count against the table: failing that, a
//! command is never queued and poisons a MULTI (EXEC answers EXECABORT). Then
//! the family parser reads the options: its errors (`syntax error`, `value is
//! not an integer`) are the command's reply, at EXEC time inside a MULTI.

use bytes::Bytes;

pub mod connection;
pub mod keys;
pub mod server;
pub mod strings;
pub mod transaction;

use super::error::ClientError;
use super::reply::Reply;
use super::txn::View;

/// A command's metadata, as COMMAND reports it.
#[derive(Debug)]
pub struct Spec {
    /// The name, lower case.
    pub name: &'static str,
    /// Redis's arity: `n` exactly n arguments (the name included), `-n` at least n.
    pub arity: i64,
    /// Redis's command flags.
    pub flags: &'static [&'static str],
    /// The first key's position, 0 if none.
    pub first_key: i64,
    /// The last key's position, negative counting from the end.
    pub last_key: i64,
    /// The distance between keys.
    pub step: i64,
    /// Redis's command group.
    pub group: &'static str,
    /// The Redis version that introduced it.
    pub since: &'static str,
    /// What it does, in one line.
    pub summary: &'static str,
}

/// Commands are the same when their names are.
impl PartialEq for Spec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Spec {}

impl Spec {
    /// True if the command may run before AUTH.
    pub fn no_auth(&self) -> bool {
        self.flags.contains(&"no_auth")
    }

    /// How many keys a request of `count` arguments (the name included)
    /// names, by the key positions of the table.
    pub fn keys_in(&self, count: usize) -> usize {
        if self.first_key <= 0 || self.step <= 0 {
            return 0;
        }
        let count = count as i64;
        let last = if self.last_key < 0 {
            count + self.last_key
        } else {
            self.last_key.min(count - 1)
        };
        if last < self.first_key {
            return 0;
        }
        ((last - self.first_key) / self.step + 1) as usize
    }

    fn arity_fits(&self, count: usize) -> bool {
        let count = count as i64;
        if self.arity >= 0 {
            count == self.arity
        } else {
            count >= -self.arity
        }
    }
}

const READ_FAST: &[&str] = &["readonly", "fast"];
const WRITE: &[&str] = &["write", "denyoom"];
const WRITE_FAST: &[&str] = &["write", "denyoom", "fast"];
const TXN_FAST: &[&str] = &["noscript", "loading", "stale", "fast", "allow_busy"];
const HANDSHAKE: &[&str] = &[
    "noscript",
    "loading",
    "stale",
    "fast",
    "no_auth",
    "sentinel",
    "allow_busy",
];

macro_rules! spec {
    ($name:literal, $arity:expr, $flags:expr, $keys:expr, $group:literal, $since:literal, $summary:literal) => {
        Spec {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: $keys.0,
            last_key: $keys.1,
            step: $keys.2,
            group: $group,
            since: $since,
            summary: $summary,
        }
    };
}

const NO_KEYS: (i64, i64, i64) = (0, 0, 0);
const ONE_KEY: (i64, i64, i64) = (1, 1, 1);
const ALL_KEYS: (i64, i64, i64) = (1, -1, 1);

/// Every command haft answers, in COMMAND's order.
pub static COMMANDS: &[Spec] = &[
    spec!(
        "get",
        2,
        READ_FAST,
        ONE_KEY,
        "string",
        "1.0.0",
        "Returns the value of a key."
    ),
    spec!(
        "set",
        -3,
        WRITE,
        ONE_KEY,
        "string",
        "1.0.0",
        "Sets a key's value, optionally only if it exists (XX) or not (NX), optionally returning the old value (GET)."
    ),
    spec!(
        "getset",
        3,
        WRITE_FAST,
        ONE_KEY,
        "string",
        "1.0.0",
        "Sets a key's value and returns the old one."
    ),
    spec!(
        "getdel",
        2,
        &["write", "fast"],
        ONE_KEY,
        "string",
        "6.2.0",
        "Returns a key's value and deletes the key."
    ),
    spec!(
        "mget",
        -2,
        READ_FAST,
        ALL_KEYS,
        "string",
        "1.0.0",
        "Returns the values of several keys, read as one snapshot."
    ),
    spec!(
        "mset",
        -3,
        WRITE,
        (1, -1, 2),
        "string",
        "1.0.1",
        "Sets several keys in one atomic transaction."
    ),
    spec!(
        "incr",
        2,
        WRITE_FAST,
        ONE_KEY,
        "string",
        "1.0.0",
        "Adds one to a key's integer value (absent counts as 0)."
    ),
    spec!(
        "incrby",
        3,
        WRITE_FAST,
        ONE_KEY,
        "string",
        "1.0.0",
        "Adds an integer to a key's integer value."
    ),
    spec!(
        "decr",
        2,
        WRITE_FAST,
        ONE_KEY,
        "string",
        "1.0.0",
        "Subtracts one from a key's integer value."
    ),
    spec!(
        "decrby",
        3,
        WRITE_FAST,
        ONE_KEY,
        "string",
        "1.0.0",
        "Subtracts an integer from a key's integer value."
    ),
    spec!(
        "append",
        3,
        WRITE_FAST,
        ONE_KEY,
        "string",
        "2.0.0",
        "Appends to a key's value; returns the new length."
    ),
    spec!(
        "strlen",
        2,
        READ_FAST,
        ONE_KEY,
        "string",
        "2.2.0",
        "Returns the length of a key's value."
    ),
    spec!(
        "del",
        -2,
        &["write"],
        ALL_KEYS,
        "generic",
        "1.0.0",
        "Deletes keys in one atomic transaction; returns how many existed."
    ),
    spec!(
        "exists",
        -2,
        READ_FAST,
        ALL_KEYS,
        "generic",
        "1.0.0",
        "Counts how many of the keys exist (repeats counted)."
    ),
    spec!(
        "multi",
        1,
        TXN_FAST,
        NO_KEYS,
        "transactions",
        "1.2.0",
        "Starts queueing commands for one transaction."
    ),
    spec!(
        "exec",
        1,
        &["noscript", "loading", "stale", "skip_slowlog"],
        NO_KEYS,
        "transactions",
        "1.2.0",
        "Runs the queued commands as one serializable transaction."
    ),
    spec!(
        "discard",
        1,
        TXN_FAST,
        NO_KEYS,
        "transactions",
        "2.0.0",
        "Drops the queued commands and the watched keys."
    ),
    spec!(
        "watch",
        -2,
        TXN_FAST,
        ALL_KEYS,
        "transactions",
        "2.2.0",
        "Makes the next EXEC fail if any of the keys changes before it."
    ),
    spec!(
        "unwatch",
        1,
        TXN_FAST,
        NO_KEYS,
        "transactions",
        "2.2.0",
        "Forgets the watched keys."
    ),
    spec!(
        "ping",
        -1,
        &["fast", "sentinel"],
        NO_KEYS,
        "connection",
        "1.0.0",
        "Answers PONG, or echoes its argument."
    ),
    spec!(
        "echo",
        2,
        &["fast"],
        NO_KEYS,
        "connection",
        "1.0.0",
        "Returns its argument."
    ),
    spec!(
        "hello",
        -1,
        HANDSHAKE,
        NO_KEYS,
        "connection",
        "6.0.0",
        "Chooses RESP2 or RESP3, optionally authenticates and names the connection."
    ),
    spec!(
        "auth",
        -2,
        HANDSHAKE,
        NO_KEYS,
        "connection",
        "1.0.0",
        "Authenticates the connection with requirepass."
    ),
    spec!(
        "select",
        2,
        &["loading", "stale", "fast"],
        NO_KEYS,
        "connection",
        "1.0.0",
        "Selects database 0, the only one."
    ),
    spec!(
        "quit",
        -1,
        &[
            "noscript",
            "loading",
            "stale",
            "fast",
            "no_auth",
            "allow_busy"
        ],
        NO_KEYS,
        "connection",
        "1.0.0",
        "Closes the connection."
    ),
    spec!(
        "client",
        -2,
        &["sentinel"],
        NO_KEYS,
        "connection",
        "2.4.0",
        "Names the connection and tells its id (SETNAME, GETNAME, ID, SETINFO, INFO)."
    ),
    spec!(
        "dbsize",
        1,
        READ_FAST,
        NO_KEYS,
        "server",
        "1.0.0",
        "Returns the number of keys with a value."
    ),
    spec!(
        "info",
        -1,
        &["loading", "stale", "sentinel"],
        NO_KEYS,
        "server",
        "1.0.0",
        "Describes the server, its clients, its keyspace and the haft cluster."
    ),
    spec!(
        "command",
        -1,
        &["loading", "stale", "sentinel"],
        NO_KEYS,
        "server",
        "2.8.13",
        "Describes the commands (COUNT, INFO, DOCS, LIST)."
    ),
];

/// Finds a command by name, in any case.
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    COMMANDS
        .iter()
        .find(|spec| spec.name.as_bytes().eq_ignore_ascii_case(name))
}

/// A command read from a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// PING, ECHO, HELLO, AUTH, SELECT, QUIT, CLIENT.
    Connection(connection::ConnectionCommand),
    /// A command on keys' values, run as (part of) one transaction.
    Data(DataCommand),
    /// MULTI, EXEC, DISCARD, WATCH, UNWATCH.
    Transaction(transaction::TransactionCommand),
    /// DBSIZE, INFO, COMMAND.
    Server(server::ServerCommand),
}

/// A command that reads or writes keys: the unit a transaction is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataCommand {
    /// GET, SET, … on string values.
    String(strings::StringCommand),
    /// DEL, EXISTS.
    Key(keys::KeyCommand),
}

impl DataCommand {
    /// The keys whose committed values the command needs: they are read,
    /// and their versions join the transaction's read set. Keys it only
    /// overwrites (a plain SET, MSET) are not read.
    pub fn reads(&self) -> Vec<&Bytes> {
        match self {
            DataCommand::String(c) => c.reads(),
            DataCommand::Key(c) => c.reads(),
        }
    }

    /// Computes the reply from `view` and records the writes in it.
    pub fn apply(&self, view: &mut View) -> Reply {
        match self {
            DataCommand::String(c) => c.apply(view),
            DataCommand::Key(c) => c.apply(view),
        }
    }
}

/// The first stage's verdict on a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Unknown command or wrong argument count: answered at once, never queued.
    Rejected(ClientError),
    /// A known command with a fitting argument count, and the family parser's
    /// verdict on its options.
    Known {
        /// The command's metadata.
        spec: &'static Spec,
        /// The command, or the error that is its reply.
        command: Result<Command, ClientError>,
    },
}

/// Reads a request (`args[0]` is the command's name; `args` is not empty).
pub fn parse(args: &[Bytes]) -> Parsed {
    let Some(name) = args.first() else {
        return Parsed::Rejected(ClientError::Syntax);
    };
    let Some(spec) = lookup(name) else {
        return Parsed::Rejected(unknown_command(args));
    };
    if !spec.arity_fits(args.len()) {
        return Parsed::Rejected(ClientError::WrongArity(spec.name.to_owned()));
    }
    let rest = &args[1..];
    let command = match spec.group {
        "connection" => connection::parse(spec.name, rest).map(Command::Connection),
        "string" => strings::parse(spec.name, rest).map(|c| Command::Data(DataCommand::String(c))),
        "generic" => keys::parse(spec.name, rest).map(|c| Command::Data(DataCommand::Key(c))),
        "transactions" => transaction::parse(spec.name, rest).map(Command::Transaction),
        _ => server::parse(spec.name, rest).map(Command::Server),
    };
    Parsed::Known { spec, command }
}

/// Redis's answer to an unknown command: the name and the first arguments,
/// about 128 bytes of each at most.
fn unknown_command(args: &[Bytes]) -> ClientError {
    const SHOWN: usize = 128;
    let mut shown = String::new();
    for arg in &args[1..] {
        if shown.len() >= SHOWN {
            break;
        }
        let room = SHOWN - shown.len();
        let text = String::from_utf8_lossy(&arg[..arg.len().min(room)]);
        shown.push_str(&format!("'{text}' "));
    }
    let name = &args[0];
    ClientError::UnknownCommand {
        name: String::from_utf8_lossy(&name[..name.len().min(SHOWN)]).into_owned(),
        args: shown,
    }
}

/// Reads an integer as Redis does: optional minus, digits, no leading zeros,
/// no blanks, within 64 bits.
pub fn parse_integer(bytes: &[u8]) -> Option<i64> {
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    let plain = !digits.is_empty()
        && digits.iter().all(u8::is_ascii_digit)
        && (digits == b"0" || digits[0] != b'0')
        && bytes != b"-0";
    if !plain {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// An integer argument, or Redis's error for one that is not.
pub fn integer_argument(bytes: &[u8]) -> Result<i64, ClientError> {
    parse_integer(bytes).ok_or(ClientError::NotInteger)
}

/// A subcommand name in lower case, for matching.
pub fn lower(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_positions_count_the_keys_of_a_request() {
        let keys = |name: &str, count| lookup(name.as_bytes()).unwrap().keys_in(count);
        assert_eq!(keys("get", 2), 1);
        assert_eq!(keys("set", 5), 1);
        assert_eq!(keys("mset", 7), 3);
        assert_eq!(keys("mget", 4), 3);
        assert_eq!(keys("del", 2), 1);
        assert_eq!(keys("ping", 1), 0);
        assert_eq!(keys("dbsize", 1), 0);
    }

    fn args(words: &[&str]) -> Vec<Bytes> {
        words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    #[test]
    fn every_command_in_the_table_has_a_parser() {
        for spec in COMMANDS {
            // The smallest argument count the arity allows, all "0".
            let count = spec.arity.unsigned_abs() as usize;
            let mut request = args(&[spec.name]);
            request.resize(count.max(1), Bytes::from_static(b"0"));
            if let Parsed::Known {
                command: Err(ClientError::UnknownCommand { .. }),
                ..
            }
            | Parsed::Rejected(_) = parse(&request)
            {
                panic!("{} is in the table but not parsed", spec.name);
            }
        }
    }

    #[test]
    fn names_are_case_insensitive_and_arity_is_checked_first() {
        assert!(matches!(
            parse(&args(&["gEt", "k"])),
            Parsed::Known { command: Ok(_), .. }
        ));
        assert_eq!(
            parse(&args(&["get"])),
            Parsed::Rejected(ClientError::WrongArity("get".into()))
        );
        assert_eq!(
            ClientError::WrongArity("get".into()).to_string(),
            "ERR wrong number of arguments for 'get' command"
        );
    }

    #[test]
    fn unknown_commands_are_described_as_redis_describes_them() {
        let Parsed::Rejected(error) = parse(&args(&["foo", "bar", "baz"])) else {
            panic!("foo is unknown");
        };
        assert_eq!(
            error.to_string(),
            "ERR unknown command 'foo', with args beginning with: 'bar' 'baz' "
        );
        let Parsed::Rejected(error) = parse(&args(&["foo"])) else {
            panic!("foo is unknown");
        };
        assert_eq!(
            error.to_string(),
            "ERR unknown command 'foo', with args beginning with: "
        );
    }

    #[test]
    fn integers_are_read_strictly() {
        assert_eq!(parse_integer(b"0"), Some(0));
        assert_eq!(parse_integer(b"-42"), Some(-42));
        assert_eq!(parse_integer(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_integer(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"1.5",
            b"9223372036854775808",
        ] {
            assert_eq!(
                parse_integer(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
