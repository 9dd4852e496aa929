//! DEL and EXISTS: commands on keys, whatever their values.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::View;
use crate::resp::error::ClientError;
use crate::resp::reply::Reply;

/// A command on keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyCommand {
    /// DEL key [key …]: deletes, answers how many of the keys existed.
    Del(Vec<Bytes>),
    /// EXISTS key [key …]: answers how many of the keys exist, a key named
    /// twice counted twice.
    Exists(Vec<Bytes>),
}

/// Reads the arguments after the name of the key command `name`.
pub fn parse(name: &str, args: &[Bytes]) -> Result<KeyCommand, ClientError> {
    match name {
        "del" => Ok(KeyCommand::Del(args.to_vec())),
        "exists" => Ok(KeyCommand::Exists(args.to_vec())),
        _ => Err(ClientError::Syntax),
    }
}

impl KeyCommand {
    /// The keys whose values the command needs: all of them (DEL answers how
    /// many existed, so it reads them too).
    pub fn reads(&self) -> Vec<&Bytes> {
        match self {
            KeyCommand::Del(keys) | KeyCommand::Exists(keys) => keys.iter().collect(),
        }
    }

    /// Computes the reply from `view`, recording the deletes in it.
    pub fn apply(&self, view: &mut View) -> Reply {
        match self {
            KeyCommand::Del(keys) => {
                let distinct: BTreeSet<&Bytes> = keys.iter().collect();
                let deleted = distinct.into_iter().filter(|key| view.delete(key)).count();
                Reply::Integer(deleted as i64)
            }
            KeyCommand::Exists(keys) => {
                let present = keys.iter().filter(|key| view.get(key).is_some()).count();
                Reply::Integer(present as i64)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn del_counts_each_existing_key_once_and_exists_counts_repeats() {
        let start = || View::new([(b("a"), Some(b("1"))), (b("b"), None)], 64);
        let mut view = start();
        let del = KeyCommand::Del(vec![b("a"), b("a"), b("b")]);
        assert_eq!(del.apply(&mut view), Reply::Integer(1));
        assert_eq!(view.into_writes(), vec![(b("a"), None)]);
        let mut view = start();
        let exists = KeyCommand::Exists(vec![b("a"), b("a"), b("b")]);
        assert_eq!(exists.apply(&mut view), Reply::Integer(2));
        assert!(view.into_writes().is_empty());
    }
}
