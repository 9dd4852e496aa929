//! The listener: accepts clients up to the connection limit, hands each to
//! [`connection`](super::connection), and shuts down gracefully.
//!
//! A shutdown stops accepting at once, lets every connection answer the
//! requests it has already read, closes it, and waits up to
//! `shutdown_grace_ms` for that before dropping what is left.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::JoinSet;

use super::backend::Backend;
use super::combine::Combining;
use super::config::RespConfig;
use super::connection;
use super::error::ServerError;

/// What every connection of one server shares.
pub struct Shared {
    /// The settings.
    pub config: RespConfig,
    /// The store.
    pub backend: Arc<dyn Backend>,
    /// The address clients connect to.
    pub local_addr: SocketAddr,
    /// When the server started (INFO's uptime).
    pub started: Instant,
    slots: Arc<Semaphore>,
    next_client_id: AtomicU64,
    retries: AtomicU64,
}

impl Shared {
    /// A fresh client id.
    pub fn next_client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Connections being served now.
    pub fn connected_clients(&self) -> usize {
        self.config.max_clients - self.slots.available_permits()
    }

    /// Refused commits retried so far.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// The counter of retried commits.
    pub fn retries_counter(&self) -> &AtomicU64 {
        &self.retries
    }
}

/// Serves Redis clients on `listener` until `shutdown` completes, then shuts
/// down gracefully. For callers that already run a tokio runtime; see
/// [`RespServer`] for one that brings its own.
pub async fn serve(
    listener: TcpListener,
    config: RespConfig,
    backend: Arc<dyn Backend>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    config.validate()?;
    let local_addr = listener.local_addr().map_err(ServerError::Accept)?;
    let grace = config.shutdown_grace();
    // Concurrent reads and blind writes of all connections share rounds.
    let backend: Arc<dyn Backend> = Arc::new(Combining::start(backend));
    let shared = Arc::new(Shared {
        slots: Arc::new(Semaphore::new(config.max_clients)),
        config,
        backend,
        local_addr,
        started: Instant::now(),
        next_client_id: AtomicU64::new(0),
        retries: AtomicU64::new(0),
    });
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match shared.slots.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let serve = connection::serve(stream, peer, shared.clone(), stopped.clone(), permit);
                        connections.spawn(serve);
                    }
                    Err(_) => {
                        connections.spawn(connection::refuse(stream));
                    }
                },
                Err(error) => {
                    // Out of file descriptors or a connection reset before it
                    // was accepted: the listener itself is fine; pause briefly.
                    tracing::warn!(%error, "accepting a RESP client failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop.send(true);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::warn!(
            "RESP connections still busy after the shutdown grace period; dropping them"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// A RESP server on a thread and tokio runtime of its own, for callers that
/// are not async (a node's runtime, tests).
///
/// ```no_run
/// use std::sync::Arc;
/// use haft::resp::{MemoryBackend, RespConfig, RespServer};
///
/// let config = RespConfig::new("127.0.0.1:6380".parse().unwrap());
/// let server = RespServer::start(config, Arc::new(MemoryBackend::new())).unwrap();
/// println!("redis-cli -p {}", server.local_addr().port());
/// server.shutdown().unwrap();
/// ```
pub struct RespServer {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), ServerError>>>,
}

impl RespServer {
    /// Validates `config`, binds its `listen` address (so a taken port is
    /// reported here), and starts serving on a new thread.
    pub fn start(config: RespConfig, backend: Arc<dyn Backend>) -> Result<Self, ServerError> {
        config.validate()?;
        let addr = config.listen;
        let bind = move |source| ServerError::Bind { addr, source };
        let listener = std::net::TcpListener::bind(addr).map_err(bind)?;
        listener.set_nonblocking(true).map_err(bind)?;
        let local_addr = listener.local_addr().map_err(bind)?;
        let mut runtime = tokio::runtime::Builder::new_multi_thread();
        runtime.worker_threads(config.worker_threads());
        let runtime = runtime
            .thread_name("haft-resp")
            .enable_all()
            .build()
            .map_err(ServerError::Runtime)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("haft-resp".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).map_err(bind)?;
                    // A dropped sender stops the server too.
                    let shutdown = async move {
                        let _ = stopped.await;
                    };
                    serve(listener, config, backend, shutdown).await
                })
            })
            .map_err(ServerError::Runtime)?;
        Ok(RespServer {
            local_addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address clients connect to (the real port when `listen` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets connections answer what they have read, and
    /// waits for the server thread to end.
    pub fn shutdown(mut self) -> Result<(), ServerError> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<(), ServerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(thread) => thread.join().map_err(|_| ServerError::Panicked)?,
            None => Ok(()),
        }
    }
}

impl Drop for RespServer {
    fn drop(&mut self) {
        if let Err(error) = self.stop_and_join() {
            tracing::warn!(%error, "the RESP server stopped with an error");
        }
    }
}
