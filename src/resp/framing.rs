//! Cutting requests out of a connection's input: limits first, then the
//! `redis-protocol` decoder.
//!
//! A request is an array of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) or,
//! as Redis also accepts, an inline line of words (`GET k\r\n`, for telnet).
//! The decoder has no limits and recurses into nested arrays, so before it
//! sees a request [`check_request`] walks the request's length lines only,
//! refusing what Redis refuses (anything but bulk strings in the array, overlong
//! length lines, lengths beyond the limits below) with Redis's protocol errors,
//! and telling how many bytes the request needs so the buffer can grow once.
//!
//! Limits (see [`RespConfig`](super::RespConfig)): an argument of at most
//! `max_bulk_bytes` (default 64 MiB, at least 16 MiB), a request of at most
//! `max_request_bytes`, at most 1,048,576 arguments; before AUTH on a server
//! with a password, at most 10 arguments of 16 KiB, as Redis allows.

use bytes::{Buf, Bytes, BytesMut};
use redis_protocol::resp2::types::{OwnedFrame, Resp2Frame};

use super::error::ProtocolError;

/// Length lines and inline requests longer than this are refused (Redis's 64 KiB).
const MAX_LINE: usize = 64 * 1024;
/// The most arguments one request may have (Redis's limit).
const MAX_ARGUMENTS: i64 = 1024 * 1024;
/// Before AUTH: the most arguments (Redis's limit).
const UNAUTHENTICATED_ARGUMENTS: i64 = 10;
/// Before AUTH: the longest argument (Redis's limit).
const UNAUTHENTICATED_BULK: i64 = 16 * 1024;

/// The limits a connection applies to the next request.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The longest argument.
    pub max_bulk: usize,
    /// The longest request.
    pub max_request: usize,
    /// False while a password is required and not yet given.
    pub authenticated: bool,
}

/// What the input holds next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// A whole request, removed from the input: its arguments (none for an
    /// empty request, which gets no reply).
    Request(Vec<Bytes>),
    /// Not a whole request yet; the request is known to need at least this many
    /// bytes in all.
    Incomplete(usize),
}

/// Takes the next request out of `input` if it is all there.
pub fn next_request(input: &mut BytesMut, limits: &Limits) -> Result<Next, ProtocolError> {
    match input.first() {
        None => Ok(Next::Incomplete(0)),
        Some(b'*') => {
            let needed = check_request(input, limits)?;
            if input.len() < needed {
                return Ok(Next::Incomplete(needed));
            }
            // Each argument is copied out of the buffer, so a stored value
            // does not keep the rest of a read buffer alive.
            match redis_protocol::resp2::decode::decode(input) {
                Ok(Some((frame, length))) => {
                    input.advance(length);
                    arguments(frame).map(Next::Request)
                }
                Ok(None) => Err(ProtocolError::Decoder(
                    "the decoder found the request incomplete".into(),
                )),
                Err(e) => Err(ProtocolError::Decoder(e.details().to_string())),
            }
        }
        Some(_) => inline(input),
    }
}

/// Walks the length lines of the array request at the start of `input`;
/// returns the request's total length as far as its lines are there.
pub fn check_request(input: &[u8], limits: &Limits) -> Result<usize, ProtocolError> {
    let Some((count, mut at)) = length_line(input, 1, Line::Multibulk)? else {
        return Ok(input.len() + 1);
    };
    if count > MAX_ARGUMENTS {
        return Err(ProtocolError::MultibulkLength);
    }
    if !limits.authenticated && count > UNAUTHENTICATED_ARGUMENTS {
        return Err(ProtocolError::UnauthenticatedMultibulk);
    }
    for _ in 0..count.max(0) {
        match input.get(at) {
            None => return Ok(at + 1),
            Some(b'$') => {}
            Some(&other) => return Err(ProtocolError::ExpectedBulk(char::from(other))),
        }
        let Some((length, body)) = length_line(input, at + 1, Line::Bulk(limits.max_bulk))? else {
            return Ok(input.len() + 1);
        };
        let length = usize::try_from(length)
            .ok()
            .filter(|&l| l <= limits.max_bulk)
            .ok_or(ProtocolError::BulkLength {
                limit: limits.max_bulk,
            })?;
        if !limits.authenticated && length > UNAUTHENTICATED_BULK as usize {
            return Err(ProtocolError::UnauthenticatedBulk);
        }
        at = body.saturating_add(length).saturating_add(2);
        if at > limits.max_request {
            return Err(ProtocolError::RequestTooLarge {
                limit: limits.max_request,
            });
        }
    }
    Ok(at)
}

#[derive(Clone, Copy)]
enum Line {
    Multibulk,
    /// A bulk length line, with the largest length allowed.
    Bulk(usize),
}

/// The number on the line starting at `start` and the offset after its CRLF,
/// or `None` if the line is not all there.
fn length_line(
    input: &[u8],
    start: usize,
    kind: Line,
) -> Result<Option<(i64, usize)>, ProtocolError> {
    let rest = input.get(start..).unwrap_or_default();
    let window = &rest[..rest.len().min(MAX_LINE)];
    let Some(cr) = window.iter().position(|&b| b == b'\r') else {
        if rest.len() > MAX_LINE {
            let what = match kind {
                Line::Multibulk => "mbulk",
                Line::Bulk(_) => "bulk",
            };
            return Err(ProtocolError::LongCountLine(what));
        }
        return Ok(None);
    };
    if rest.len() < cr + 2 {
        return Ok(None);
    }
    let number = std::str::from_utf8(&window[..cr])
        .ok()
        .and_then(|digits| digits.parse::<i64>().ok());
    match (number, kind) {
        (Some(n), _) => Ok(Some((n, start + cr + 2))),
        (None, Line::Multibulk) => Err(ProtocolError::MultibulkLength),
        (None, Line::Bulk(limit)) => Err(ProtocolError::BulkLength { limit }),
    }
}

fn arguments(frame: OwnedFrame) -> Result<Vec<Bytes>, ProtocolError> {
    match frame {
        OwnedFrame::Array(items) => items
            .into_iter()
            .map(|item| match item {
                OwnedFrame::BulkString(bytes) => Ok(Bytes::from(bytes)),
                other => Err(ProtocolError::Decoder(format!(
                    "expected a bulk string, got {:?}",
                    other.kind()
                ))),
            })
            .collect(),
        OwnedFrame::Null => Ok(Vec::new()),
        other => Err(ProtocolError::Decoder(format!(
            "expected an array, got {:?}",
            other.kind()
        ))),
    }
}

/// An inline request: words separated by blanks, up to LF. Unlike Redis,
/// quotes are not interpreted: use the array form for arguments with blanks.
fn inline(input: &mut BytesMut) -> Result<Next, ProtocolError> {
    let window = &input[..input.len().min(MAX_LINE)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        if input.len() > MAX_LINE {
            return Err(ProtocolError::LongInline);
        }
        return Ok(Next::Incomplete(input.len() + 1));
    };
    let line = input.split_to(lf + 1);
    let words = line[..]
        .split(|b| b.is_ascii_whitespace())
        .filter(|word| !word.is_empty())
        .map(Bytes::copy_from_slice)
        .collect();
    Ok(Next::Request(words))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: Limits = Limits {
        max_bulk: 1024,
        max_request: 4096,
        authenticated: true,
    };

    fn next(bytes: &[u8], limits: &Limits) -> Result<Next, ProtocolError> {
        next_request(&mut BytesMut::from(bytes), limits)
    }

    fn request(words: &[&str]) -> Next {
        Next::Request(
            words
                .iter()
                .map(|w| Bytes::copy_from_slice(w.as_bytes()))
                .collect(),
        )
    }

    #[test]
    fn pipelined_requests_come_out_one_at_a_time() {
        let mut input = BytesMut::from(
            &b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING x\r\n*1\r\n$4"[..],
        );
        assert_eq!(next_request(&mut input, &OPEN), Ok(request(&["PING"])));
        assert_eq!(next_request(&mut input, &OPEN), Ok(request(&["GET", "k"])));
        assert_eq!(next_request(&mut input, &OPEN), Ok(request(&["PING", "x"])));
        assert!(matches!(
            next_request(&mut input, &OPEN),
            Ok(Next::Incomplete(_))
        ));
        assert_eq!(&input[..], b"*1\r\n$4");
    }

    #[test]
    fn a_partial_bulk_tells_the_size_it_needs() {
        assert_eq!(
            next(b"*1\r\n$100\r\nab", &OPEN),
            Ok(Next::Incomplete(4 + 6 + 102))
        );
    }

    #[test]
    fn nested_arrays_and_other_frames_are_refused_before_the_decoder() {
        assert_eq!(
            next(b"*1\r\n*1\r\n*1\r\n", &OPEN),
            Err(ProtocolError::ExpectedBulk('*'))
        );
        assert_eq!(
            next(b"*1\r\n:1\r\n", &OPEN),
            Err(ProtocolError::ExpectedBulk(':'))
        );
    }

    #[test]
    fn lengths_beyond_the_limits_are_refused_from_the_header_alone() {
        assert_eq!(
            next(b"*1\r\n$1025\r\n", &OPEN),
            Err(ProtocolError::BulkLength { limit: 1024 })
        );
        assert_eq!(
            next(b"*1\r\n$-1\r\n", &OPEN),
            Err(ProtocolError::BulkLength { limit: 1024 })
        );
        assert_eq!(next(b"*x\r\n", &OPEN), Err(ProtocolError::MultibulkLength));
        assert_eq!(
            next(b"*2000000\r\n", &OPEN),
            Err(ProtocolError::MultibulkLength)
        );
        let five = b"*5\r\n$1000\r\n";
        let mut big = Vec::from(&five[..]);
        big.extend(std::iter::repeat_n(b'a', 1000));
        big.extend_from_slice(b"\r\n$1000\r\n");
        big.extend(std::iter::repeat_n(b'a', 1000));
        big.extend_from_slice(b"\r\n$1000\r\n");
        big.extend(std::iter::repeat_n(b'a', 1000));
        big.extend_from_slice(b"\r\n$1000\r\n");
        big.extend(std::iter::repeat_n(b'a', 1000));
        big.extend_from_slice(b"\r\n$1000\r\n");
        assert_eq!(
            next(&big, &OPEN),
            Err(ProtocolError::RequestTooLarge { limit: 4096 })
        );
        let long_line = vec![b'1'; MAX_LINE + 2];
        let mut header = b"*".to_vec();
        header.extend(long_line);
        assert_eq!(
            next(&header, &OPEN),
            Err(ProtocolError::LongCountLine("mbulk"))
        );
    }

    #[test]
    fn before_auth_requests_are_small() {
        let closed = Limits {
            authenticated: false,
            ..OPEN
        };
        assert_eq!(
            next(b"*11\r\n", &closed),
            Err(ProtocolError::UnauthenticatedMultibulk)
        );
        assert_eq!(
            next(
                b"*1\r\n$16385\r\n",
                &Limits {
                    max_bulk: 1 << 20,
                    ..closed
                }
            ),
            Err(ProtocolError::UnauthenticatedBulk)
        );
        assert_eq!(
            next(b"*2\r\n$4\r\nAUTH\r\n$1\r\np\r\n", &closed),
            Ok(request(&["AUTH", "p"]))
        );
    }

    proptest::proptest! {
        /// Whatever a client sends, reading it ends in a request, a wait for
        /// more, or a protocol error: never a panic.
        #[test]
        fn arbitrary_input_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let mut input = BytesMut::from(&bytes[..]);
            while let Ok(Next::Request(_)) = next_request(&mut input, &OPEN) {}
        }

        /// Arrays of arguments come out as they went in, split anywhere.
        #[test]
        fn requests_survive_any_split(
            words in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40), 1..6),
            cut in 0usize..400,
        ) {
            let mut wire = format!("*{}\r\n", words.len()).into_bytes();
            for word in &words {
                wire.extend_from_slice(format!("${}\r\n", word.len()).as_bytes());
                wire.extend_from_slice(word);
                wire.extend_from_slice(b"\r\n");
            }
            let cut = cut.min(wire.len());
            let mut input = BytesMut::from(&wire[..cut]);
            if cut < wire.len() {
                proptest::prop_assert!(matches!(next_request(&mut input, &OPEN), Ok(Next::Incomplete(_))));
            }
            input.extend_from_slice(&wire[cut..]);
            let expected: Vec<Bytes> = words.iter().map(|w| Bytes::copy_from_slice(w)).collect();
            proptest::prop_assert_eq!(next_request(&mut input, &OPEN), Ok(Next::Request(expected)));
            proptest::prop_assert!(input.is_empty());
        }
    }

    #[test]
    fn empty_requests_have_no_arguments() {
        assert_eq!(next(b"*0\r\n", &OPEN), Ok(Next::Request(vec![])));
        assert_eq!(next(b"\r\n", &OPEN), Ok(Next::Request(vec![])));
    }
}
