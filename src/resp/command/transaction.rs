//! MULTI, EXEC, DISCARD, WATCH and UNWATCH. Their arguments are read here;
//! the session keeps the queue and the watched keys, and `txn.rs` runs EXEC
//! as one transaction.

use bytes::Bytes;

use crate::resp::error::ClientError;

/// A transaction command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransactionCommand {
    /// MULTI: start queueing.
    Multi,
    /// EXEC: run the queue as one transaction.
    Exec,
    /// DISCARD: drop the queue and the watched keys.
    Discard,
    /// WATCH key [key …]: remember the keys' versions.
    Watch(Vec<Bytes>),
    /// UNWATCH: forget the watched keys.
    Unwatch,
}

/// Reads the arguments after the name of the transaction command `name`.
pub fn parse(name: &str, args: &[Bytes]) -> Result<TransactionCommand, ClientError> {
    Ok(match name {
        "multi" => TransactionCommand::Multi,
        "exec" => TransactionCommand::Exec,
        "discard" => TransactionCommand::Discard,
        "watch" => TransactionCommand::Watch(args.to_vec()),
        "unwatch" => TransactionCommand::Unwatch,
        _ => return Err(ClientError::Syntax),
    })
}
