//! A client of a node: one request at a time over UDP, with retries and a
//! deadline.
//!
//! A request is resent, under the same request id, until an answer arrives or
//! the deadline passes; the node recognises a retry and does not run it twice
//! (while it remembers the request: a node that restarted in between runs a
//! retried transaction again, under a new transaction id).
//!
//! Requests and replies larger than a datagram travel as fragments, like
//! messages between nodes ([`codec`]). A node with a cluster key answers only
//! clients that tag their datagrams with it: see [`Client::with_key`].

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use super::codec::{self, ClusterKey, Reassembly};
use super::node::{CLIENT_BIT, LOCAL_BIT, Wire, send_message, size_buffers};
use crate::node::{NodeMsg, Reply, Request, RequestId};

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node address could not be resolved.
    #[error("`{0}` is not a node address; write it as HOST:PORT, e.g. 127.0.0.1:7001")]
    BadAddress(String),
    /// The local socket failed.
    #[error("the client's socket failed: {0}")]
    Socket(#[from] std::io::Error),
    /// No answer before the deadline.
    #[error(
        "no answer from the node at {node} after {attempts} {} in {} ms; \
         check that the node is running, that the address is its listen address, \
         and, if the nodes have a cluster key, that this client has it (--cluster-key-file)",
        if *attempts == 1 { "attempt" } else { "attempts" },
        waited.as_millis()
    )]
    Unreachable {
        /// The node.
        node: SocketAddr,
        /// How many times the request was sent.
        attempts: u32,
        /// How long the client waited in all.
        waited: Duration,
    },
    /// The request could not be encoded (it is larger than a datagram).
    #[error("the request cannot be sent: {0}; make it smaller")]
    Encode(#[from] codec::EncodeError),
}

/// How patient a client is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientOptions {
    /// The whole wait for an answer, retries included.
    pub timeout: Duration,
    /// How long to wait for an answer before resending.
    pub retry_after: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(5),
            retry_after: Duration::from_millis(500),
        }
    }
}

/// A client of one node.
pub struct Client {
    socket: UdpSocket,
    node: SocketAddr,
    id: u64,
    next_request: RequestId,
    options: ClientOptions,
    key: Option<ClusterKey>,
}

impl Client {
    /// A client of the node at `node` (HOST:PORT).
    pub fn new(node: &str, options: ClientOptions) -> Result<Client, ClientError> {
        let node = node
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| ClientError::BadAddress(node.to_owned()))?;
        let local: SocketAddr = if node.is_ipv4() {
            "0.0.0.0:0".parse().expect("a literal address")
        } else {
            "[::]:0".parse().expect("a literal address")
        };
        let socket = UdpSocket::bind(local)?;
        size_buffers(&socket);
        Ok(Client {
            socket,
            node,
            id: (rand::random::<u64>() | CLIENT_BIT) & !LOCAL_BIT,
            next_request: 0,
            options,
            key: None,
        })
    }

    /// Tags every request with `key` and accepts only replies tagged with it:
    /// needed to talk to nodes that have a `cluster_key_file`.
    pub fn with_key(mut self, key: ClusterKey) -> Client {
        self.key = Some(key);
        self
    }

    /// The node this client talks to.
    pub fn node(&self) -> SocketAddr {
        self.node
    }

    /// Sends `request` and waits for the node's reply.
    pub fn request(&mut self, request: Request) -> Result<Reply, ClientError> {
        let id = self.next_id();
        let wire = Wire::Msg(NodeMsg::Request {
            client: self.id,
            id,
            home: None,
            request,
        });
        let me = self.id;
        self.exchange(&wire, |answer| match answer {
            Wire::Msg(NodeMsg::Reply {
                client,
                id: answered,
                reply,
            }) if client == me && answered == id => Some(reply),
            _ => None,
        })
    }

    /// Tests only: asks the node to drop every datagram to and from
    /// `isolated` peers, and to lose `loss_percent`% of the others between
    /// nodes (an empty list and 0 heal). `Ok(Err(reason))` if the node refused.
    pub fn faults(
        &mut self,
        isolated: &[u16],
        loss_percent: u8,
    ) -> Result<Result<Vec<u16>, String>, ClientError> {
        let id = self.next_id();
        let wire = Wire::Faults {
            id,
            isolated: isolated.to_vec(),
            loss_percent,
        };
        self.exchange(&wire, |answer| match answer {
            Wire::FaultsSet {
                id: answered,
                isolated,
                ..
            } if answered == id => Some(Ok(isolated)),
            Wire::Msg(NodeMsg::Reply {
                id: answered,
                reply: Reply::Refused { reason },
                ..
            }) if answered == id => Some(Err(reason)),
            _ => None,
        })
    }

    fn next_id(&mut self) -> RequestId {
        self.next_request += 1;
        self.next_request
    }

    fn exchange<T>(
        &mut self,
        wire: &Wire,
        mut answers: impl FnMut(Wire) -> Option<T>,
    ) -> Result<T, ClientError> {
        // Each request is one message of the client's; its number is the
        // request's (resends reuse it: a duplicate is harmless).
        let datagrams = codec::encode_message(self.id, self.next_request, wire, self.key.as_ref())?;
        let mut reassembly = Reassembly::default();
        let start = Instant::now();
        let deadline = start + self.options.timeout;
        let mut buffer = vec![0; codec::RECV_BUFFER];
        let mut attempts = 0;
        while Instant::now() < deadline {
            // A send error (e.g. no route) counts as an unanswered attempt.
            send_message(&self.socket, self.node, &datagrams);
            attempts += 1;
            let resend_at = (Instant::now() + self.options.retry_after).min(deadline);
            loop {
                let now = Instant::now();
                if now >= resend_at {
                    break;
                }
                self.socket.set_read_timeout(Some(resend_at - now))?;
                match self.socket.recv_from(&mut buffer) {
                    Ok((len, from)) if from == self.node => {
                        // Anything undecodable or unrelated (a late answer to
                        // an earlier request) is skipped.
                        let wire = read_wire(&mut reassembly, &buffer[..len], from, &self.key);
                        if let Some(answer) = wire.and_then(&mut answers) {
                            return Ok(answer);
                        }
                    }
                    Ok(_) => {}
                    Err(error)
                        if matches!(
                            error.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    // ICMP port unreachable (Linux reports it on the next
                    // receive): the node is down; keep trying until the deadline.
                    Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
                        std::thread::sleep(
                            (resend_at - Instant::now().min(resend_at))
                                .min(Duration::from_millis(50)),
                        );
                    }
                    Err(error) => return Err(error.into()),
                }
            }
        }
        Err(ClientError::Unreachable {
            node: self.node,
            attempts,
            waited: start.elapsed(),
        })
    }
}

/// The message a datagram from `from` completes, if it is a well-formed,
/// rightly tagged fragment and the last one missing; `None` otherwise.
fn read_wire(
    reassembly: &mut Reassembly,
    datagram: &[u8],
    from: SocketAddr,
    key: &Option<ClusterKey>,
) -> Option<Wire> {
    let fragment = codec::open(datagram, key.as_ref()).ok()?;
    let bytes = reassembly.push(from, &fragment, Instant::now())?;
    codec::decode_payload::<Wire>(&bytes).ok()
}

/// Many clients of one node on one socket and one thread, each with at most
/// one request in flight — the way redis-benchmark drives its connections.
/// For load generators: a thread per client costs the machine under test a
/// wake-up and a context switch per answer. Each client has its own id, so
/// the node tells their requests apart (and remembers their answers) as it
/// does those of separate [`Client`]s; a request is resent under the same id
/// until it is answered or its deadline passes.
pub struct Clients {
    socket: UdpSocket,
    node: SocketAddr,
    ids: Vec<u64>,
    next_request: RequestId,
    in_flight: Vec<Option<Pending>>,
    options: ClientOptions,
    key: Option<ClusterKey>,
    reassembly: Reassembly,
    buffer: Vec<u8>,
}

/// A request waiting for its answer.
struct Pending {
    id: RequestId,
    datagrams: Vec<Vec<u8>>,
    first_sent: Instant,
    resend_at: Instant,
    attempts: u32,
}

impl Clients {
    /// `count` clients of the node at `node` (HOST:PORT).
    pub fn new(node: &str, count: usize, options: ClientOptions) -> Result<Clients, ClientError> {
        let first = Client::new(node, options)?;
        // Set once: a wait for an answer costs the receive alone.
        first
            .socket
            .set_read_timeout(Some(Clients::tick(&options)))?;
        let mut ids = Vec::with_capacity(count);
        while ids.len() < count {
            let id = (rand::random::<u64>() | CLIENT_BIT) & !LOCAL_BIT;
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(Clients {
            socket: first.socket,
            node: first.node,
            ids,
            next_request: 0,
            in_flight: (0..count).map(|_| None).collect(),
            options,
            key: None,
            reassembly: Reassembly::default(),
            buffer: vec![0; codec::RECV_BUFFER],
        })
    }

    /// How often a wait for answers looks at the requests in flight, and so
    /// how late a resend or a deadline may be noticed: an eighth of the resend
    /// interval, from 1 to 50 ms.
    fn tick(options: &ClientOptions) -> Duration {
        (options.retry_after / 8).clamp(Duration::from_millis(1), Duration::from_millis(50))
    }

    /// How many clients there are.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Sends `request` for client `client`, which must have no request in
    /// flight (its previous one answered by [`Clients::next_reply`]).
    ///
    /// # Panics
    ///
    /// If `client` is out of range or still waiting for an answer: a misuse
    /// of this load generator, not something the network can cause.
    pub fn send(&mut self, client: usize, request: Request) -> Result<(), ClientError> {
        assert!(
            self.in_flight[client].is_none(),
            "client {client} already has a request in flight"
        );
        // Request ids only grow, across all clients: each is also the
        // message number the node reassembles fragments by.
        self.next_request += 1;
        let id = self.next_request;
        let wire = Wire::Msg(NodeMsg::Request {
            client: self.ids[client],
            id,
            home: None,
            request,
        });
        let datagrams = codec::encode_message(self.ids[client], id, &wire, self.key.as_ref())?;
        send_message(&self.socket, self.node, &datagrams);
        let now = Instant::now();
        self.in_flight[client] = Some(Pending {
            id,
            datagrams,
            first_sent: now,
            resend_at: now + self.options.retry_after,
            attempts: 1,
        });
        Ok(())
    }

    /// Waits for the next answer to a request in flight, resending the
    /// overdue ones; gives the client's index and the reply. An error if a
    /// request's deadline passes unanswered, or if none is in flight.
    pub fn next_reply(&mut self) -> Result<(usize, Reply), ClientError> {
        loop {
            let now = Instant::now();
            let mut waiting = false;
            for pending in self.in_flight.iter_mut().flatten() {
                if now >= pending.first_sent + self.options.timeout {
                    return Err(ClientError::Unreachable {
                        node: self.node,
                        attempts: pending.attempts,
                        waited: now - pending.first_sent,
                    });
                }
                if now >= pending.resend_at {
                    send_message(&self.socket, self.node, &pending.datagrams);
                    pending.attempts += 1;
                    pending.resend_at = now + self.options.retry_after;
                }
                waiting = true;
            }
            if !waiting {
                return Err(ClientError::Socket(std::io::Error::other(
                    "no request is waiting for an answer",
                )));
            }
            // The socket's read timeout is the tick (set in `new`).
            let (len, from) = match self.socket.recv_from(&mut self.buffer) {
                Ok(received) => received,
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::ConnectionRefused
                    ) =>
                {
                    continue;
                }
                Err(error) => return Err(error.into()),
            };
            if from != self.node {
                continue;
            }
            let Some(Wire::Msg(NodeMsg::Reply { client, id, reply })) =
                read_wire(&mut self.reassembly, &self.buffer[..len], from, &self.key)
            else {
                continue;
            };
            let Some(index) = self.ids.iter().position(|&mine| mine == client) else {
                continue;
            };
            // A late answer to an earlier request of this client is skipped.
            if self.in_flight[index].as_ref().is_some_and(|p| p.id == id) {
                self.in_flight[index] = None;
                return Ok((index, reply));
            }
        }
    }
}
