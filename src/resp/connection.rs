//! One client connection: read requests, answer each in order, write the
//! replies back.
//!
//! Pipelining falls out of the loop's shape: every whole request already in
//! the input buffer is answered, in order, before the replies are written in
//! one go and the socket is read again. Write commands pipelined back to back
//! share one transaction (one commit instead of one each), and reads of one
//! key each pipelined back to back share one read (see
//! [`Session::run_together`] and [`Session::read_together`] for why that is
//! still what the client asked for). A protocol error is answered and the
//! connection closed, as Redis does; a shutdown closes the connection once the
//! requests already read are answered.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, watch};

use super::command::{DataCommand, Parsed, parse};
use super::framing::{Next, next_request};
use super::reply::{Protocol, Reply, encode};
use super::server::Shared;
use super::session::{After, Session, Share};

/// How long a connection closed by the server still reads what its client
/// sends (see `Connection::linger`).
const LINGER: std::time::Duration = std::time::Duration::from_secs(1);
/// Replies are written once this many bytes wait, even mid-pipeline.
const FLUSH_AT: usize = 64 * 1024;
/// The smallest and largest growth of the input buffer per read.
const READ_MIN: usize = 16 * 1024;
const READ_MAX: usize = 8 * 1024 * 1024;

/// Serves one client until it leaves, breaks the protocol or the server stops.
/// `permit` holds its place under the connection limit.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    permit: OwnedSemaphorePermit,
) {
    // Small replies should leave at once; pipelined ones are batched by us.
    let _ = stream.set_nodelay(true);
    let mut connection = Connection {
        stream,
        input: BytesMut::with_capacity(READ_MIN),
        output: BytesMut::new(),
        stop,
    };
    let mut session = Session::new(shared, peer);
    if let Err(error) = connection.run(&mut session).await {
        tracing::debug!(%peer, %error, "RESP connection ended with an error");
    }
    drop(permit);
}

/// Answers a connection beyond the limit with Redis's error, then closes it.
pub async fn refuse(mut stream: TcpStream) {
    let mut output = BytesMut::new();
    let error = Reply::Error(super::error::ClientError::MaxClients);
    if encode(&error, Protocol::Resp2, &mut output).is_ok() {
        let write = stream.write_all(&output);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), write).await;
    }
}

/// The most keys that pipelined write commands sharing one transaction may
/// touch together, unless every one of them is blind ...
const GROUP_KEYS: usize = 16;
/// ... and the most bytes of arguments a group of pipelined commands may
/// carry together. A command beyond either starts a group of its own.
const GROUP_BYTES: usize = 1024 * 1024;

/// Data commands read from one client's pipeline, not run yet: writes that
/// will share one transaction, or reads of one key each that will share one
/// read.
#[derive(Default)]
struct Group {
    share: Option<Share>,
    commands: Vec<DataCommand>,
    keys: usize,
    bytes: usize,
}

impl Group {
    /// Whether a command that shares as `share`, touching `keys` keys with
    /// `bytes` of arguments, may join. Reads join reads, writes join writes.
    /// The bound on the keys of writes is about contention, not size: a
    /// transaction that reads and locks more keys meets concurrent ones more
    /// often (it waits for their locks, or is refused by younger holders), and
    /// an aborted group is retried whole. Blind writes (no key read) are not
    /// bound by it: the server merges them with other clients' blind writes
    /// anyway (see `combine.rs`), and they refuse nothing among themselves.
    fn fits(&self, share: Share, keys: usize, bytes: usize) -> bool {
        let Some(mine) = self.share else {
            return true;
        };
        let blind = matches!(
            (mine, share),
            (Share::Write { blind: true }, Share::Write { blind: true })
        );
        let same_kind = matches!(
            (mine, share),
            (Share::Read, Share::Read) | (Share::Write { .. }, Share::Write { .. })
        );
        same_kind
            && self.bytes + bytes <= GROUP_BYTES
            && (blind || share == Share::Read || self.keys + keys <= GROUP_KEYS)
    }

    fn push(&mut self, share: Share, command: DataCommand, keys: usize, bytes: usize) {
        self.share = Some(match (self.share, share) {
            (Some(Share::Write { blind: a }), Share::Write { blind: b }) => {
                Share::Write { blind: a && b }
            }
            _ => share,
        });
        self.commands.push(command);
        self.keys += keys;
        self.bytes += bytes;
    }
}

struct Connection {
    stream: TcpStream,
    input: BytesMut,
    output: BytesMut,
    stop: watch::Receiver<bool>,
}

impl Connection {
    async fn run(&mut self, session: &mut Session) -> io::Result<()> {
        loop {
            if self.answer_buffered(session).await? == After::Close {
                self.flush().await?;
                return self.linger().await;
            }
            self.flush().await?;
            if *self.stop.borrow() {
                return Ok(());
            }
            tokio::select! {
                read = self.stream.read_buf(&mut self.input) => {
                    if read? == 0 {
                        return Ok(());
                    }
                }
                _ = self.stop.changed() => return Ok(()),
            }
        }
    }

    /// Closes after a last reply (QUIT, a protocol error): the write half
    /// first, then whatever the client still sends is read and dropped until
    /// it closes too, for at most [`LINGER`]. Closing with input unread makes
    /// the kernel reset the connection, and a reset can discard the reply
    /// before the client reads it.
    async fn linger(&mut self) -> io::Result<()> {
        self.stream.shutdown().await?;
        let mut sink = [0u8; 16 * 1024];
        let drain = async { while let Ok(1..) = self.stream.read(&mut sink).await {} };
        let _ = tokio::time::timeout(LINGER, drain).await;
        Ok(())
    }

    /// Answers every whole request in the input buffer. Write commands that
    /// follow one another in it share one transaction
    /// ([`Session::run_together`]), reads of one key each one read
    /// ([`Session::read_together`]), within the bounds of [`Group::fits`];
    /// any other request first runs the group before it, so replies stay in
    /// request order.
    async fn answer_buffered(&mut self, session: &mut Session) -> io::Result<After> {
        let mut group = Group::default();
        loop {
            let next = next_request(&mut self.input, &session.limits());
            let args = match next {
                Ok(Next::Request(args)) if args.is_empty() => continue,
                Ok(Next::Request(args)) => args,
                Ok(Next::Incomplete(needed)) => {
                    self.run_group(session, &mut group).await?;
                    let missing = needed.saturating_sub(self.input.len());
                    self.input.reserve(missing.clamp(READ_MIN, READ_MAX));
                    return Ok(After::Continue);
                }
                Err(error) => {
                    self.run_group(session, &mut group).await?;
                    self.push(&Reply::Error(error.into()), session.protocol)?;
                    return Ok(After::Close);
                }
            };
            let bytes = args.iter().map(Bytes::len).sum::<usize>();
            let parsed = parse(&args);
            let keys = match &parsed {
                Parsed::Known { spec, .. } => spec.keys_in(args.len()),
                Parsed::Rejected(_) => 0,
            };
            let parsed = match session.shareable(parsed) {
                Ok((share, command)) => {
                    if !group.fits(share, keys, bytes) {
                        self.run_group(session, &mut group).await?;
                    }
                    group.push(share, command, keys, bytes);
                    continue;
                }
                Err(parsed) => parsed,
            };
            self.run_group(session, &mut group).await?;
            let (reply, after) = session.handle_parsed(parsed).await;
            self.push(&reply, session.protocol)?;
            if after == After::Close {
                return Ok(After::Close);
            }
            if self.output.len() >= FLUSH_AT {
                self.flush().await?;
            }
        }
    }

    /// Runs the pipelined commands gathered so far, if any, and queues their
    /// replies.
    async fn run_group(&mut self, session: &Session, group: &mut Group) -> io::Result<()> {
        if group.commands.is_empty() {
            return Ok(());
        }
        let replies = match group.share {
            Some(Share::Read) => session.read_together(&group.commands).await,
            _ => session.run_together(&group.commands).await,
        };
        *group = Group::default();
        for reply in &replies {
            self.push(reply, session.protocol)?;
        }
        if self.output.len() >= FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    fn push(&mut self, reply: &Reply, protocol: Protocol) -> io::Result<()> {
        encode(reply, protocol, &mut self.output).map_err(io::Error::other)
    }

    async fn flush(&mut self) -> io::Result<()> {
        if !self.output.is_empty() {
            self.stream.write_all(&self.output).await?;
            self.output.clear();
        }
        Ok(())
    }
}
