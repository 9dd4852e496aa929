//! GET, SET, GETSET, GETDEL, MGET, MSET, INCR, INCRBY, DECR, DECRBY, APPEND,
//! STRLEN: commands on string values, computed from a transaction's [`View`].

use bytes::{Bytes, BytesMut};

use super::{View, integer_argument, lower, parse_integer};
use crate::resp::error::ClientError;
use crate::resp::reply::Reply;

/// SET's condition on the key's existence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// NX: only if the key does not exist.
    Absent,
    /// XX: only if the key exists.
    Present,
}

/// A command on string values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StringCommand {
    /// GET key.
    Get(Bytes),
    /// SET key value [NX | XX] [GET].
    Set {
        /// The key.
        key: Bytes,
        /// The new value.
        value: Bytes,
        /// NX or XX.
        condition: Option<Condition>,
        /// GET: answer the old value.
        get: bool,
    },
    /// GETSET key value.
    GetSet {
        /// The key.
        key: Bytes,
        /// The new value.
        value: Bytes,
    },
    /// GETDEL key.
    GetDel(Bytes),
    /// MGET key [key …].
    MGet(Vec<Bytes>),
    /// MSET key value [key value …].
    MSet(Vec<(Bytes, Bytes)>),
    /// INCR, INCRBY, DECR, DECRBY: add `by` to the integer value.
    IncrBy {
        /// The key.
        key: Bytes,
        /// What to add (negative for DECR and DECRBY).
        by: i64,
    },
    /// APPEND key value.
    Append {
        /// The key.
        key: Bytes,
        /// What to append.
        value: Bytes,
    },
    /// STRLEN key.
    StrLen(Bytes),
}

/// Reads the arguments after the name of the string command `name` (whose
/// arity the table has checked).
pub fn parse(name: &str, args: &[Bytes]) -> Result<StringCommand, ClientError> {
    let key = || args[0].clone();
    Ok(match name {
        "get" => StringCommand::Get(key()),
        "set" => parse_set(args)?,
        "getset" => StringCommand::GetSet {
            key: key(),
            value: args[1].clone(),
        },
        "getdel" => StringCommand::GetDel(key()),
        "mget" => StringCommand::MGet(args.to_vec()),
        "mset" => {
            if args.len() % 2 != 0 {
                return Err(ClientError::WrongArity("mset".into()));
            }
            let pairs = args.chunks_exact(2);
            StringCommand::MSet(pairs.map(|p| (p[0].clone(), p[1].clone())).collect())
        }
        "incr" => StringCommand::IncrBy { key: key(), by: 1 },
        "decr" => StringCommand::IncrBy { key: key(), by: -1 },
        "incrby" => StringCommand::IncrBy {
            key: key(),
            by: integer_argument(&args[1])?,
        },
        "decrby" => StringCommand::IncrBy {
            key: key(),
            by: integer_argument(&args[1])?
                .checked_neg()
                .ok_or(ClientError::DecrementOverflow)?,
        },
        "append" => StringCommand::Append {
            key: key(),
            value: args[1].clone(),
        },
        "strlen" => StringCommand::StrLen(key()),
        _ => return Err(ClientError::Syntax),
    })
}

fn parse_set(args: &[Bytes]) -> Result<StringCommand, ClientError> {
    let mut condition = None;
    let mut get = false;
    let mut options = args[2..].iter();
    while let Some(option) = options.next() {
        match lower(option).as_str() {
            "nx" if condition != Some(Condition::Present) => condition = Some(Condition::Absent),
            "xx" if condition != Some(Condition::Absent) => condition = Some(Condition::Present),
            "get" => get = true,
            "keepttl" => return Err(ClientError::ExpiryUnsupported("KEEPTTL".into())),
            unit @ ("ex" | "px" | "exat" | "pxat") => {
                // A missing time is a syntax error in Redis too.
                options.next().ok_or(ClientError::Syntax)?;
                return Err(ClientError::ExpiryUnsupported(unit.to_ascii_uppercase()));
            }
            _ => return Err(ClientError::Syntax),
        }
    }
    Ok(StringCommand::Set {
        key: args[0].clone(),
        value: args[1].clone(),
        condition,
        get,
    })
}

impl StringCommand {
    /// The keys whose values the command needs (see [`super::DataCommand::reads`]).
    pub fn reads(&self) -> Vec<&Bytes> {
        match self {
            StringCommand::Set {
                key,
                condition,
                get,
                ..
            } => {
                if condition.is_some() || *get {
                    vec![key]
                } else {
                    vec![]
                }
            }
            StringCommand::MSet(_) => vec![],
            StringCommand::MGet(keys) => keys.iter().collect(),
            StringCommand::Get(key)
            | StringCommand::GetSet { key, .. }
            | StringCommand::GetDel(key)
            | StringCommand::IncrBy { key, .. }
            | StringCommand::Append { key, .. }
            | StringCommand::StrLen(key) => vec![key],
        }
    }

    /// Computes the reply from `view`, recording the writes in it; an error
    /// reply writes nothing.
    pub fn apply(&self, view: &mut View) -> Reply {
        match self.apply_or_fail(view) {
            Ok(reply) => reply,
            Err(error) => Reply::Error(error),
        }
    }

    fn apply_or_fail(&self, view: &mut View) -> Result<Reply, ClientError> {
        Ok(match self {
            StringCommand::Get(key) => Reply::bulk_or_null(view.get(key)),
            StringCommand::Set {
                key,
                value,
                condition,
                get,
            } => {
                let old = if condition.is_some() || *get {
                    view.get(key)
                } else {
                    None
                };
                let allowed = match condition {
                    None => true,
                    Some(Condition::Absent) => old.is_none(),
                    Some(Condition::Present) => old.is_some(),
                };
                if allowed {
                    view.set(key, value.clone());
                }
                match (get, allowed) {
                    (true, _) => Reply::bulk_or_null(old),
                    (false, true) => Reply::OK,
                    (false, false) => Reply::Null,
                }
            }
            StringCommand::GetSet { key, value } => {
                let old = view.get(key);
                view.set(key, value.clone());
                Reply::bulk_or_null(old)
            }
            StringCommand::GetDel(key) => {
                let old = view.get(key);
                view.delete(key);
                Reply::bulk_or_null(old)
            }
            StringCommand::MGet(keys) => Reply::Array(
                keys.iter()
                    .map(|k| Reply::bulk_or_null(view.get(k)))
                    .collect(),
            ),
            StringCommand::MSet(pairs) => {
                for (key, value) in pairs {
                    view.set(key, value.clone());
                }
                Reply::OK
            }
            StringCommand::IncrBy { key, by } => {
                let current = match view.get(key) {
                    None => 0,
                    Some(value) => parse_integer(&value).ok_or(ClientError::NotInteger)?,
                };
                let next = current.checked_add(*by).ok_or(ClientError::Overflow)?;
                view.set(key, Bytes::from(next.to_string()));
                Reply::Integer(next)
            }
            StringCommand::Append { key, value } => {
                let old = view.get(key).unwrap_or_default();
                let length = old.len() + value.len();
                if length > view.max_bulk() {
                    return Err(ClientError::TooLarge(view.max_bulk()));
                }
                let mut joined = BytesMut::with_capacity(length);
                joined.extend_from_slice(&old);
                joined.extend_from_slice(value);
                view.set(key, joined.freeze());
                Reply::Integer(length as i64)
            }
            StringCommand::StrLen(key) => {
                Reply::Integer(view.get(key).map_or(0, |v| v.len()) as i64)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn parse_words(words: &[&str]) -> Result<StringCommand, ClientError> {
        let args: Vec<Bytes> = words[1..].iter().map(|w| b(w)).collect();
        parse(words[0], &args)
    }

    /// Applies `command` to a view of the keys it reads, valued as in `start`.
    fn run(words: &[&str], start: &[(&str, &str)]) -> (Reply, Vec<(Bytes, Option<Bytes>)>) {
        let command = parse_words(words).expect("parses");
        let value = |key: &Bytes| {
            start
                .iter()
                .find(|(k, _)| k.as_bytes() == key)
                .map(|(_, v)| b(v))
        };
        let read: Vec<_> = command
            .reads()
            .into_iter()
            .map(|k| (k.clone(), value(k)))
            .collect();
        let mut view = View::new(read, 64);
        let reply = command.apply(&mut view);
        (reply, view.into_writes())
    }

    #[test]
    fn set_options_follow_redis() {
        assert_eq!(
            parse_words(&["set", "k", "v", "nx", "xx"]),
            Err(ClientError::Syntax)
        );
        assert_eq!(
            parse_words(&["set", "k", "v", "bogus"]),
            Err(ClientError::Syntax)
        );
        assert_eq!(
            parse_words(&["set", "k", "v", "EX"]),
            Err(ClientError::Syntax)
        );
        assert_eq!(
            parse_words(&["set", "k", "v", "ex", "10"]),
            Err(ClientError::ExpiryUnsupported("EX".into()))
        );
        assert_eq!(
            parse_words(&["set", "k", "v", "KEEPTTL"]),
            Err(ClientError::ExpiryUnsupported("KEEPTTL".into()))
        );
        let (reply, writes) = run(&["set", "k", "new", "NX", "GET"], &[("k", "old")]);
        assert_eq!((reply, writes), (Reply::Bulk(b("old")), vec![]));
        let (reply, writes) = run(&["set", "k", "new", "XX"], &[]);
        assert_eq!((reply, writes), (Reply::Null, vec![]));
        let (reply, writes) = run(&["set", "k", "new", "xx", "get"], &[("k", "old")]);
        assert_eq!(reply, Reply::Bulk(b("old")));
        assert_eq!(writes, vec![(b("k"), Some(b("new")))]);
    }

    #[test]
    fn a_plain_set_and_mset_read_nothing() {
        let set = parse_words(&["set", "k", "v"]).expect("parses");
        assert!(set.reads().is_empty());
        let mset = parse_words(&["mset", "a", "1", "b", "2"]).expect("parses");
        assert!(mset.reads().is_empty());
        assert_eq!(
            parse_words(&["mset", "a", "1", "b"]),
            Err(ClientError::WrongArity("mset".into()))
        );
    }

    #[test]
    fn increments_check_integers_and_overflow() {
        assert_eq!(run(&["incr", "n"], &[]).0, Reply::Integer(1));
        assert_eq!(
            run(&["decrby", "n", "5"], &[("n", "3")]).0,
            Reply::Integer(-2)
        );
        assert_eq!(
            run(&["incr", "n"], &[("n", "x")]),
            (Reply::Error(ClientError::NotInteger), vec![])
        );
        assert_eq!(
            run(&["incr", "n"], &[("n", "9223372036854775807")]).0,
            Reply::Error(ClientError::Overflow)
        );
        assert_eq!(
            parse_words(&["decrby", "n", "-9223372036854775808"]),
            Err(ClientError::DecrementOverflow)
        );
        assert_eq!(
            parse_words(&["incrby", "n", "1x"]),
            Err(ClientError::NotInteger)
        );
    }

    #[test]
    fn append_refuses_values_beyond_the_limit() {
        let (reply, writes) = run(&["append", "k", "def"], &[("k", "abc")]);
        assert_eq!(reply, Reply::Integer(6));
        assert_eq!(writes, vec![(b("k"), Some(b("abcdef")))]);
        let long = "x".repeat(62);
        assert_eq!(
            run(&["append", "k", &long], &[("k", "abc")]).0,
            Reply::Error(ClientError::TooLarge(64))
        );
    }

    #[test]
    fn getdel_and_getset_answer_the_old_value() {
        let (reply, writes) = run(&["getdel", "k"], &[("k", "v")]);
        assert_eq!((reply, writes), (Reply::Bulk(b("v")), vec![(b("k"), None)]));
        let (reply, writes) = run(&["getdel", "k"], &[]);
        assert_eq!(
            (reply, writes),
            (Reply::Null, vec![]),
            "deleting nothing writes nothing"
        );
        let (reply, _) = run(&["getset", "k", "new"], &[]);
        assert_eq!(reply, Reply::Null);
    }
}
