//! The public listener: a guard in front of dropshot's that keeps idle connections from locking other
//! clients out.
//!
//! dropshot 0.18 binds its own listener and hands every accepted socket to hyper's version detection,
//! which waits for the first bytes with no time limit, so a client that connects and sends nothing holds
//! a file descriptor for as long as it likes; enough of them exhaust the process's descriptors. dropshot
//! offers no hook on its listener, so dpo listens itself and forwards each connection to dropshot, bound
//! on a private loopback port, applying three limits:
//! - a connection must send its first bytes within `header_timeout`, or it is closed before dpo opens
//!   anything for it (hyper's own header timeout then bounds the rest of the request head);
//! - a connection with no bytes in either direction for `idle_timeout` is closed (idle keep-alive);
//! - at most `max_connections` are open at once; more wait in the kernel's accept queue until one closes.
//!
//! The soft limit on open files is raised to the hard limit at start, and `max_connections` is lowered
//! to what that limit allows (a forwarded connection holds three descriptors).
//!
//! The hop costs about a third of the throughput of small requests (BENCHMARKS.md); behind a load
//! balancer that already enforces such limits, `--no-connection-guard` lets dropshot listen itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::Semaphore,
    task::JoinHandle,
};

/// The guard's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Time a new connection has to send its first bytes.
    pub header_timeout: Duration,
    /// Time a connection may stay silent in both directions (between requests, or while an answer is
    /// being computed: long enough for the slowest request).
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 4096,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
        }
    }
}

/// Descriptors kept free for everything else the process opens (the database, exports, logs).
const RESERVED_DESCRIPTORS: u64 = 256;
/// Descriptors one forwarded connection holds: the client's socket, ours to dropshot, dropshot's.
const DESCRIPTORS_PER_CONNECTION: u64 = 3;
/// Bytes copied at a time in each direction.
const BUFFER: usize = 64 * 1024;

/// Raises the soft limit on open files to the hard limit (where the platform allows) and returns how
/// many connections fit in it.
pub fn connections_that_fit(wanted: usize) -> usize {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let fit = limit.saturating_sub(RESERVED_DESCRIPTORS) / DESCRIPTORS_PER_CONNECTION;
    wanted.min(usize::try_from(fit).unwrap_or(usize::MAX)).max(1)
}

/// A running guard; stops accepting when dropped.
pub struct ConnectionGuard {
    accept: JoinHandle<()>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl ConnectionGuard {
    /// Accepts on `listener` and forwards each connection to `upstream` under `limits`.
    pub fn start(listener: TcpListener, upstream: SocketAddr, limits: ConnectionLimits, log: slog::Logger) -> Self {
        let slots = Arc::new(Semaphore::new(limits.max_connections));
        let accept = tokio::spawn(async move {
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else { return };
                let client = match listener.accept().await {
                    Ok((client, _)) => client,
                    Err(e) => {
                        // Out of descriptors or a connection reset before it was accepted: go on.
                        slog::warn!(log, "accepting a connection failed"; "error" => %e);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                tokio::spawn(async move {
                    forward(client, upstream, limits).await;
                    drop(slot);
                });
            }
        });
        ConnectionGuard { accept }
    }
}

/// Forwards one connection once it has sent something, until either side closes or it stays idle.
async fn forward(client: TcpStream, upstream: SocketAddr, limits: ConnectionLimits) {
    let _ = client.set_nodelay(true);
    // Wait for the first bytes without reading them: they go to dropshot as they are.
    let mut probe = [0u8; 1];
    match tokio::time::timeout(limits.header_timeout, client.peek(&mut probe)).await {
        Ok(Ok(n)) if n > 0 => {}
        _ => return,
    }
    let Ok(server) = TcpStream::connect(upstream).await else { return };
    let _ = server.set_nodelay(true);
    let activity = Arc::new(AtomicU64::new(0));
    let mut client = Marked { inner: client, activity: activity.clone() };
    let mut server = server;
    let copy = tokio::io::copy_bidirectional_with_sizes(&mut client, &mut server, BUFFER, BUFFER);
    // Checked a few times per timeout rather than on every byte: the hot path only bumps a counter.
    let idle = async {
        let (mut seen, mut since) = (0, tokio::time::Instant::now());
        loop {
            tokio::time::sleep(limits.idle_timeout / 4).await;
            let now = activity.load(Ordering::Relaxed);
            if now != seen {
                (seen, since) = (now, tokio::time::Instant::now());
            } else if since.elapsed() >= limits.idle_timeout {
                return;
            }
        }
    };
    tokio::select! {
        _ = copy => {}
        () = idle => {}
    }
}

/// The client's socket, counting the reads and writes that moved bytes (the idle check compares counts).
struct Marked {
    inner: TcpStream,
    activity: Arc<AtomicU64>,
}

impl tokio::io::AsyncRead for Marked {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.fetch_add(1, Ordering::Relaxed);
        }
        polled
    }
}

impl tokio::io::AsyncWrite for Marked {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, std::task::Poll::Ready(Ok(n)) if n > 0) {
            self.activity.fetch_add(1, Ordering::Relaxed);
        }
        polled
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
