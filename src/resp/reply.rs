//! [`Reply`]: what a command answers, independent of the protocol version, and
//! its encoding as RESP2 or RESP3 by the `redis-protocol` crate.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use redis_protocol::bytes_utils::Str;
use redis_protocol::resp2::types::BytesFrame as Frame2;
use redis_protocol::resp3::types::{BytesFrame as Frame3, FrameMap, VerbatimStringFormat};

use super::error::ClientError;

/// The protocol a connection speaks, chosen with `HELLO`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// RESP2, what every connection starts with.
    #[default]
    Resp2,
    /// RESP3: nulls, maps and verbatim strings have types of their own.
    Resp3,
}

impl Protocol {
    /// The number HELLO uses for it.
    pub fn number(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}

/// One reply, as a command computes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// A status line: `+OK`.
    Status(Cow<'static, str>),
    /// An error line, connection kept (unless a protocol error).
    Error(ClientError),
    /// An integer.
    Integer(i64),
    /// A binary-safe string.
    Bulk(Bytes),
    /// No value: `$-1` in RESP2, `_` in RESP3.
    Null,
    /// No array, EXEC's answer when a watched key changed: `*-1` in RESP2, `_`
    /// in RESP3, exactly as Redis answers.
    NullArray,
    /// An array of replies.
    Array(Vec<Reply>),
    /// A map: a RESP3 map, or a flat array of keys and values in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// Text meant to be shown as is (INFO): a verbatim string in RESP3, a bulk
    /// string in RESP2.
    Verbatim(String),
}

impl Reply {
    /// `+OK`.
    pub const OK: Reply = Reply::Status(Cow::Borrowed("OK"));

    /// A bulk string from text.
    pub fn text(text: impl Into<String>) -> Reply {
        Reply::Bulk(Bytes::from(text.into()))
    }

    /// A value or the null reply.
    pub fn bulk_or_null(value: Option<Bytes>) -> Reply {
        value.map_or(Reply::Null, Reply::Bulk)
    }
}

impl From<ClientError> for Reply {
    fn from(error: ClientError) -> Self {
        Reply::Error(error)
    }
}

/// The encoder refused a reply (a bug: replies are built well-formed).
#[derive(Debug, thiserror::Error)]
#[error("cannot encode a reply: {0}")]
pub struct EncodeError(String);

/// RESP2 has no null array in `redis-protocol`'s frame type, so EXEC's null
/// reply is written as Redis writes it.
const RESP2_NULL_ARRAY: &[u8] = b"*-1\r\n";

/// Appends `reply`, encoded for `protocol`, to `out`.
pub fn encode(reply: &Reply, protocol: Protocol, out: &mut BytesMut) -> Result<(), EncodeError> {
    let result = match (protocol, reply) {
        (Protocol::Resp2, Reply::NullArray) => {
            out.extend_from_slice(RESP2_NULL_ARRAY);
            return Ok(());
        }
        (Protocol::Resp2, _) => {
            redis_protocol::resp2::encode::extend_encode(out, &to_resp2(reply), false)
        }
        (Protocol::Resp3, _) => {
            redis_protocol::resp3::encode::complete::extend_encode(out, &to_resp3(reply), false)
        }
    };
    result.map(|_| ()).map_err(|e| EncodeError(e.to_string()))
}

/// An error line may not hold CR or LF; Redis replaces them with spaces too.
fn error_line(error: &ClientError) -> Str {
    Str::from(error.to_string().replace(['\r', '\n'], " "))
}

fn status_bytes(status: &str) -> Bytes {
    Bytes::copy_from_slice(status.as_bytes())
}

fn to_resp2(reply: &Reply) -> Frame2 {
    match reply {
        Reply::Status(s) => Frame2::SimpleString(status_bytes(s)),
        Reply::Error(e) => Frame2::Error(error_line(e)),
        Reply::Integer(i) => Frame2::Integer(*i),
        Reply::Bulk(b) => Frame2::BulkString(b.clone()),
        Reply::Null | Reply::NullArray => Frame2::Null,
        Reply::Array(items) => Frame2::Array(items.iter().map(to_resp2).collect()),
        Reply::Map(pairs) => Frame2::Array(
            pairs
                .iter()
                .flat_map(|(k, v)| [to_resp2(k), to_resp2(v)])
                .collect(),
        ),
        Reply::Verbatim(text) => Frame2::BulkString(Bytes::copy_from_slice(text.as_bytes())),
    }
}

fn to_resp3(reply: &Reply) -> Frame3 {
    match reply {
        Reply::Status(s) => Frame3::SimpleString {
            data: status_bytes(s),
            attributes: None,
        },
        Reply::Error(e) => Frame3::SimpleError {
            data: error_line(e),
            attributes: None,
        },
        Reply::Integer(i) => Frame3::Number {
            data: *i,
            attributes: None,
        },
        Reply::Bulk(b) => Frame3::BlobString {
            data: b.clone(),
            attributes: None,
        },
        Reply::Null | Reply::NullArray => Frame3::Null,
        Reply::Array(items) => Frame3::Array {
            data: items.iter().map(to_resp3).collect(),
            attributes: None,
        },
        Reply::Map(pairs) => {
            let mut map = FrameMap::with_capacity(pairs.len());
            for (k, v) in pairs {
                map.insert(to_resp3(k), to_resp3(v));
            }
            Frame3::Map {
                data: map,
                attributes: None,
            }
        }
        Reply::Verbatim(text) => Frame3::VerbatimString {
            data: Bytes::copy_from_slice(text.as_bytes()),
            format: VerbatimStringFormat::Text,
            attributes: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(reply: Reply, protocol: Protocol) -> String {
        let mut out = BytesMut::new();
        encode(&reply, protocol, &mut out).expect("encodes");
        String::from_utf8(out.to_vec()).expect("text")
    }

    #[test]
    fn nulls_are_written_as_redis_writes_them() {
        assert_eq!(wire(Reply::Null, Protocol::Resp2), "$-1\r\n");
        assert_eq!(wire(Reply::NullArray, Protocol::Resp2), "*-1\r\n");
        assert_eq!(wire(Reply::Null, Protocol::Resp3), "_\r\n");
        assert_eq!(wire(Reply::NullArray, Protocol::Resp3), "_\r\n");
    }

    #[test]
    fn maps_are_flat_in_resp2_and_typed_in_resp3() {
        let map = || Reply::Map(vec![(Reply::text("proto"), Reply::Integer(3))]);
        assert_eq!(wire(map(), Protocol::Resp2), "*2\r\n$5\r\nproto\r\n:3\r\n");
        assert_eq!(wire(map(), Protocol::Resp3), "%1\r\n$5\r\nproto\r\n:3\r\n");
        let info = || Reply::Verbatim("a:1\r\n".into());
        assert_eq!(wire(info(), Protocol::Resp2), "$5\r\na:1\r\n\r\n");
        assert_eq!(wire(info(), Protocol::Resp3), "=9\r\ntxt:a:1\r\n\r\n");
    }

    #[test]
    fn error_lines_lose_their_line_breaks() {
        let error = ClientError::UnknownCommand {
            name: "a\r\nb".into(),
            args: String::new(),
        };
        assert_eq!(
            wire(Reply::Error(error), Protocol::Resp2),
            "-ERR unknown command 'a  b', with args beginning with: \r\n"
        );
    }
}
