//! Connection limits on dropshot's own listener: closing the connections that would lock other clients out.
//!
//! dropshot 0.18 binds its own listener and hands every accepted socket to hyper's version detection,
//! which waits for the first bytes with no time limit, and keeps an idle keep-alive connection for as long
//! as the client likes; enough of them exhaust the process's descriptors. dropshot offers no hook on its
//! listener. Forwarding every connection through a listener of dpo's own, as dpo did before, cost a
//! loopback hop per request: a third of the throughput of small requests. Instead a watcher looks at the
//! sockets dropshot accepted, through the process's descriptor table (`/proc/self/fd`, Linux), a few
//! times per timeout, and shuts down those that break a limit:
//! - a connection that has sent nothing `header_timeout` after it was accepted;
//! - a connection with no bytes in either direction for `idle_timeout`;
//! - beyond `max_connections` open at once, the ones silent the longest.
//!
//! The kernel keeps the figures (`TCP_INFO`: the time since data was last received and last sent, the
//! bytes received), so requests pay nothing for the limits. Shutting a socket down (shutdown(2)) does not
//! close its descriptor: hyper reads the end of the stream and closes the connection itself, so nothing is
//! closed under dropshot's feet. The watcher opens what it needs once, at start ([`DescriptorTable`]), so
//! that it still works when connections have taken every other descriptor; a socket is duplicated onto
//! its spare descriptor before it is looked at, and checked to be the same socket before it is shut down.

use std::{net::SocketAddr, sync::mpsc, time::Duration};

/// The limits.
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

impl ConnectionLimits {
    /// How often the connections are looked at: a few times per timeout, so that one is enforced within
    /// a quarter of itself.
    fn period(&self) -> Duration {
        (self.header_timeout.min(self.idle_timeout) / 4).clamp(Duration::from_millis(50), Duration::from_secs(1))
    }
}

/// Descriptors kept free for everything else the process opens (the database, exports, logs).
const RESERVED_DESCRIPTORS: u64 = 256;

/// Connections the admin listener keeps open at once: a scraper or two and a health check, never
/// enough to take the API's descriptors.
pub const ADMIN_MAX_CONNECTIONS: usize = 32;

/// Raises the soft limit on open files to the hard limit (where the platform allows) and returns how
/// many connections of the API fit in it (one descriptor each), beside the admin listener's.
pub fn connections_that_fit(wanted: usize) -> usize {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let fit = limit.saturating_sub(RESERVED_DESCRIPTORS + ADMIN_MAX_CONNECTIONS as u64);
    wanted.min(usize::try_from(fit).unwrap_or(usize::MAX)).max(1)
}

/// Why a connection was shut down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// It sent nothing within the header timeout.
    Silent,
    /// No bytes either way for the idle timeout.
    Idle,
    /// More connections were open than the limit; it had been silent the longest.
    OverLimit,
}

impl Reason {
    fn label(self) -> &'static str {
        match self {
            Reason::Silent => "silent",
            Reason::Idle => "idle",
            Reason::OverLimit => "over_limit",
        }
    }
}

/// What the kernel says of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// Whether it has received any bytes at all.
    pub received_anything: bool,
    /// Since it last received data (since it was accepted, if it never did).
    pub unheard_for: Duration,
    /// Since it last received or sent data.
    pub silent_for: Duration,
}

/// Which of `seen` (by index) to shut down under `limits`, and why.
pub fn to_close(seen: &[Seen], limits: &ConnectionLimits) -> Vec<(usize, Reason)> {
    let mut closing = Vec::new();
    let mut staying = Vec::new();
    for (i, s) in seen.iter().enumerate() {
        if !s.received_anything && s.unheard_for >= limits.header_timeout {
            closing.push((i, Reason::Silent));
        } else if s.silent_for >= limits.idle_timeout {
            closing.push((i, Reason::Idle));
        } else {
            staying.push(i);
        }
    }
    if staying.len() > limits.max_connections {
        staying.sort_by_key(|&i| std::cmp::Reverse(seen[i].silent_for));
        let excess = staying.len() - limits.max_connections;
        closing.extend(staying.into_iter().take(excess).map(|i| (i, Reason::OverLimit)));
    }
    closing
}

/// Why the limits cannot be enforced here.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// The descriptor table cannot be read (not Linux, or `/proc` is not mounted).
    #[error("the connection limits need /proc/self/fd (Linux)")]
    NoDescriptorTable(#[source] std::io::Error),
    /// The watcher's thread did not start.
    #[error("starting the connection watcher")]
    Thread(#[source] std::io::Error),
}

/// A running watcher; stops when dropped.
pub struct ConnectionGuard {
    /// Dropping the sender ends the watcher's wait, and with it the thread.
    _stop: mpsc::Sender<()>,
}

impl ConnectionGuard {
    /// Watches the connections accepted on each listener of `watched` and enforces its limits on them.
    /// The descriptors the watcher needs are opened now, before the connections can take them all.
    pub fn start(watched: Vec<(SocketAddr, ConnectionLimits)>, log: slog::Logger) -> Result<Self, GuardError> {
        let mut table = DescriptorTable::open().map_err(GuardError::NoDescriptorTable)?;
        let period = watched.iter().map(|(_, limits)| limits.period()).min().unwrap_or(Duration::from_secs(1));
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("dpo-connections".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(period) {
                    enforce(&mut table, &watched, &log);
                }
            })
            .map_err(GuardError::Thread)?;
        Ok(ConnectionGuard { _stop: stop })
    }

    /// Whether the limits can be enforced here: checked before the listener opens, so that a server that
    /// cannot enforce them never serves.
    pub fn supported() -> Result<(), GuardError> {
        DescriptorTable::open().map(drop).map_err(GuardError::NoDescriptorTable)
    }
}

/// The process's descriptor table.
const DESCRIPTORS: &str = "/proc/self/fd";

/// One look: shuts down every connection that breaks a limit of the listener that accepted it.
fn enforce(table: &mut DescriptorTable, watched: &[(SocketAddr, ConnectionLimits)], log: &slog::Logger) {
    let sockets = match table.tcp_sockets() {
        Ok(sockets) => sockets,
        Err(e) => {
            slog::warn!(log, "reading the descriptor table failed"; "error" => %e);
            return;
        }
    };
    let mut sockets: Vec<Option<Socket>> = sockets.into_iter().map(Some).collect();
    for (served, limits) in watched {
        let accepted: Vec<Socket> = sockets
            .iter_mut()
            .filter(|s| s.as_ref().is_some_and(|s| s.info.tcpi_state == ESTABLISHED && accepted_by(*served, s.local)))
            .filter_map(Option::take)
            .collect();
        enforce_on(table, accepted, limits, log);
    }
}

/// Shuts down the connections of one listener, `accepted`, that break its `limits`.
fn enforce_on(table: &mut DescriptorTable, accepted: Vec<Socket>, limits: &ConnectionLimits, log: &slog::Logger) {
    let ms = |ms: u32| Duration::from_millis(u64::from(ms));
    let connections: Vec<(Socket, Seen)> = accepted
        .into_iter()
        .map(|socket| {
            let info = socket.info;
            let seen = Seen {
                received_anything: info.tcpi_bytes_received > 0,
                unheard_for: ms(info.tcpi_last_data_recv),
                silent_for: ms(info.tcpi_last_data_recv.min(info.tcpi_last_data_sent)),
            };
            (socket, seen)
        })
        .collect();
    let seen: Vec<Seen> = connections.iter().map(|(_, seen)| *seen).collect();
    for (i, reason) in to_close(&seen, limits) {
        match table.shut_down(&connections[i].0, std::net::Shutdown::Both) {
            Ok(true) => metrics::counter!("dpo_connections_closed_total", "reason" => reason.label()).increment(1),
            // Closed by the client meanwhile (its number may even name another socket now).
            Ok(false) => {}
            Err(e) => slog::debug!(log, "shutting a connection down failed"; "error" => %e),
        }
    }
}

/// TCP's states (the kernel's `tcp_states.h`): an open connection, and a listener.
const ESTABLISHED: u8 = 1;
const LISTEN: u8 = 10;

/// Stops the listener bound on `served` (dropshot's) from taking connections: clients connecting after
/// this are refused at once, and those waiting in its accept queue are reset.
///
/// dropshot stops accepting when it is closed but keeps its listener open until the last request in
/// flight has finished, so a client connecting meanwhile would wait in the kernel's queue until the end
/// and then be reset; refused, it (or its load balancer) tries another replica at once. The socket stays
/// open for dropshot to close; shutdown(2) on a listener only ends its listening (Linux).
pub fn stop_listening(served: SocketAddr) -> std::io::Result<()> {
    let mut table = DescriptorTable::open()?;
    for socket in table.tcp_sockets()? {
        if socket.info.tcpi_state == LISTEN && socket.local == served {
            table.shut_down(&socket, std::net::Shutdown::Read)?;
        }
    }
    Ok(())
}

/// A TCP socket of the process, as one look saw it.
struct Socket {
    /// Its descriptor's number then.
    number: i32,
    /// Its inode: what the number must still name for the socket to be acted on.
    inode: u64,
    info: libc::tcp_info,
    local: SocketAddr,
}

/// What the watcher keeps open from its start, so that it can still look and act when connections hold
/// every other descriptor the process may open (a hard limit of 1,024 and 1,100 idle connections locked
/// the API out for as long as they were held): the listing of the descriptor table, read again from its
/// start at each look; a spare descriptor onto which the socket being looked at is duplicated (dup2
/// replaces it atomically, so no other thread can take the number in between, and the duplicate keeps
/// that very socket while it is checked and shut down); and `/dev/null`, on which the spare is parked
/// between looks so that it never keeps a connection open.
struct DescriptorTable {
    listing: *mut libc::DIR,
    spare: std::os::fd::OwnedFd,
    parked: std::os::fd::OwnedFd,
}

// SAFETY: the listing is used by one thread at a time (the watcher's, which owns the table).
unsafe impl Send for DescriptorTable {}

impl Drop for DescriptorTable {
    fn drop(&mut self) {
        // SAFETY: `listing` came from opendir and is closed once, here.
        unsafe { libc::closedir(self.listing) };
    }
}

impl DescriptorTable {
    fn open() -> std::io::Result<DescriptorTable> {
        let parked = std::fs::File::open("/dev/null")?;
        let spare = parked.try_clone()?;
        let path = std::ffi::CString::new(DESCRIPTORS).map_err(std::io::Error::other)?;
        // SAFETY: a valid C string; a null result is an error, reported as errno.
        let listing = unsafe { libc::opendir(path.as_ptr()) };
        if listing.is_null() {
            return Err(std::io::Error::last_os_error());
        }
        Ok(DescriptorTable { listing, spare: spare.into(), parked: parked.into() })
    }

    /// The numbers in the table now, but the table's own.
    fn numbers(&mut self) -> std::io::Result<Vec<i32>> {
        use std::os::fd::AsRawFd;
        // SAFETY: `listing` is open; rewinding makes procfs list the table anew.
        unsafe { libc::rewinddir(self.listing) };
        // SAFETY: as above.
        let own = [unsafe { libc::dirfd(self.listing) }, self.spare.as_raw_fd(), self.parked.as_raw_fd()];
        let mut numbers = Vec::new();
        loop {
            // SAFETY: `listing` is open; the entry is read before the next call.
            let entry = unsafe { libc::readdir(self.listing) };
            if entry.is_null() {
                return Ok(numbers);
            }
            // SAFETY: d_name is a NUL-terminated name inside the entry.
            let name = unsafe { std::ffi::CStr::from_ptr((*entry).d_name.as_ptr()) };
            if let Some(number) = name.to_str().ok().and_then(|n| n.parse::<i32>().ok())
                && !own.contains(&number)
            {
                numbers.push(number);
            }
        }
    }

    /// Makes the spare name what `number` names now; false if it names nothing.
    fn take(&mut self, number: i32) -> bool {
        use std::os::fd::AsRawFd;
        // SAFETY: dup2 onto a descriptor this table owns; a closed `number` fails with EBADF.
        unsafe { libc::dup2(number, self.spare.as_raw_fd()) >= 0 }
    }

    /// Parks the spare on /dev/null again.
    fn park(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: both descriptors are this table's.
        unsafe { libc::dup2(self.parked.as_raw_fd(), self.spare.as_raw_fd()) };
    }

    /// The inode the spare names.
    fn spare_inode(&self) -> Option<u64> {
        use std::os::{fd::AsRawFd, unix::fs::MetadataExt};
        let file = std::mem::ManuallyDrop::new(
            // SAFETY: borrowed for fstat only, never closed (ManuallyDrop).
            unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(self.spare.as_raw_fd()) },
        );
        file.metadata().ok().map(|m| m.ino())
    }

    /// The process's TCP sockets, one entry per socket however many numbers name it, with the kernel's
    /// `TCP_INFO` and the local address of each. Holds no descriptor but the table's own.
    fn tcp_sockets(&mut self) -> std::io::Result<Vec<Socket>> {
        use std::os::unix::ffi::OsStrExt;
        let mut inodes = std::collections::HashSet::new();
        let mut found = Vec::new();
        for number in self.numbers()? {
            // Only sockets are worth a look (reading the link opens nothing).
            match std::fs::read_link(format!("{DESCRIPTORS}/{number}")) {
                Ok(target) if target.as_os_str().as_bytes().starts_with(b"socket:") => {}
                _ => continue,
            }
            if !self.take(number) {
                continue;
            }
            let looked = self.spare_inode().filter(|inode| inodes.insert(*inode)).and_then(|inode| {
                // Not TCP, or not an IP socket: skipped.
                let info = tcp_info(&self.spare)?;
                let local = socket2::SockRef::from(&self.spare).local_addr().ok()?.as_socket()?;
                Some(Socket { number, inode, info, local })
            });
            self.park();
            found.extend(looked);
        }
        Ok(found)
    }

    /// Shuts `socket` down in direction `how`, if its number still names it; whether it did.
    fn shut_down(&mut self, socket: &Socket, how: std::net::Shutdown) -> std::io::Result<bool> {
        if !self.take(socket.number) {
            return Ok(false);
        }
        let same = self.spare_inode() == Some(socket.inode);
        let shut = if same { socket2::SockRef::from(&self.spare).shutdown(how).map(|()| true) } else { Ok(false) };
        self.park();
        shut
    }
}

/// Whether a connection with this local address was accepted by a listener bound on `served` (which may
/// be a wildcard address). Connections dpo opens itself have ephemeral local ports, never a listener's.
fn accepted_by(served: SocketAddr, local: SocketAddr) -> bool {
    local.port() == served.port() && (served.ip().is_unspecified() || local.ip() == served.ip())
}

/// The kernel's `TCP_INFO` of `socket`, or None if it is not a TCP socket.
fn tcp_info(socket: &std::os::fd::OwnedFd) -> Option<libc::tcp_info> {
    use std::os::fd::AsRawFd;
    // SAFETY: tcp_info is plain integers, for which all zeroes is a value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::tcp_info>()).ok()?;
    // SAFETY: the kernel writes at most `len` bytes into `info`, which is that large.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast::<libc::c_void>(),
            &raw mut len,
        )
    };
    (rc == 0).then_some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 2,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
        }
    }

    fn seen(received_anything: bool, unheard: u64, silent: u64) -> Seen {
        Seen { received_anything, unheard_for: Duration::from_secs(unheard), silent_for: Duration::from_secs(silent) }
    }

    #[test]
    fn a_connection_that_said_nothing_goes_at_the_header_timeout_and_not_before() {
        let limits = limits();
        assert_eq!(to_close(&[seen(false, 9, 9)], &limits), vec![]);
        assert_eq!(to_close(&[seen(false, 10, 10)], &limits), vec![(0, Reason::Silent)]);
        // Having sent something, it is held to the idle timeout instead.
        assert_eq!(to_close(&[seen(true, 60, 60)], &limits), vec![]);
    }

    #[test]
    fn a_connection_silent_both_ways_goes_at_the_idle_timeout() {
        let limits = limits();
        assert_eq!(to_close(&[seen(true, 200, 119)], &limits), vec![]);
        assert_eq!(to_close(&[seen(true, 200, 120)], &limits), vec![(0, Reason::Idle)]);
    }

    #[test]
    fn beyond_the_limit_the_longest_silent_go_first() {
        let limits = limits();
        let open = [seen(true, 5, 5), seen(true, 50, 50), seen(true, 1, 1), seen(true, 30, 30)];
        let mut closing = to_close(&open, &limits);
        closing.sort_by_key(|&(i, _)| i);
        assert_eq!(closing, vec![(1, Reason::OverLimit), (3, Reason::OverLimit)]);
        // Those closed for a timeout count against the excess.
        let open = [seen(false, 11, 11), seen(true, 5, 5), seen(true, 1, 1)];
        assert_eq!(to_close(&open, &limits), vec![(0, Reason::Silent)]);
    }

    #[test]
    fn only_connections_of_the_served_address_are_watched() {
        let served: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert!(accepted_by(served, "127.0.0.1:8080".parse().unwrap()));
        assert!(!accepted_by(served, "127.0.0.1:41000".parse().unwrap()));
        assert!(!accepted_by(served, "127.0.0.2:8080".parse().unwrap()));
        let wildcard: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(accepted_by(wildcard, "10.1.2.3:8080".parse().unwrap()));
    }

    #[test]
    fn the_period_is_a_quarter_of_the_shorter_timeout_within_bounds() {
        let mut limits = limits();
        assert_eq!(limits.period(), Duration::from_secs(1));
        limits.header_timeout = Duration::from_secs(2);
        assert_eq!(limits.period(), Duration::from_millis(500));
        limits.header_timeout = Duration::from_millis(10);
        assert_eq!(limits.period(), Duration::from_millis(50));
    }
}
