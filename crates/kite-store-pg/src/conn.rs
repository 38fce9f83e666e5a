//! A synchronous face on tokio-postgres, callable from anywhere (the daemon's async runtime
//! included), whose I/O runs on the calling thread.
//!
//! The state owner calls its store synchronously from a task on the daemon's runtime, as it
//! calls SQLite. The `postgres` crate cannot be called there (it blocks on a runtime of its own,
//! and tokio refuses one inside another), and driving tokio-postgres's connection on a separate
//! runtime thread costs every round trip two thread hand-offs, which on a busy two-core machine
//! were most of it (about 160 µs a read). So each [`Conn`] owns its socket, non-blocking, and a
//! call drives the connection and the request itself: poll both, and when neither can go on,
//! wait in `poll(2)` for the socket. No runtime, no other thread, the same wire code.

use kite_store::StoreError;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::NoTlsStream;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Connection, NoTls, Row, Statement, ToStatement};

type Result<T> = std::result::Result<T, StoreError>;
pub(crate) type P<'a> = &'a (dyn ToSql + Sync);

/// A driver error as a store error, with PostgreSQL's own message where there is one.
pub(crate) fn db(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(d) => StoreError::Backend(format!("PostgreSQL: {} ({})", d.message(), d.code().code())),
        None => StoreError::Backend(format!("PostgreSQL: {e}")),
    }
}

/// The socket to the server, non-blocking: a read or write that would block says Pending, and
/// remembers that it wants to write, for the wait in [`Conn::drive`].
enum Sock {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

pub(crate) struct Socket {
    sock: Sock,
    write_blocked: Arc<AtomicBool>,
}

impl Socket {
    fn io<T>(&mut self, writing: bool, f: impl FnOnce(&mut dyn ReadWrite) -> std::io::Result<T>) -> Poll<std::io::Result<T>> {
        let s: &mut dyn ReadWrite = match &mut self.sock {
            Sock::Tcp(t) => t,
            Sock::Unix(u) => u,
        };
        match f(s) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if writing {
                    self.write_blocked.store(true, Ordering::Relaxed);
                }
                Poll::Pending
            }
            r => Poll::Ready(r),
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

impl AsyncRead for Socket {
    fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let dst = buf.initialize_unfilled();
        match this.io(false, |s| s.read(dst)) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.get_mut().io(true, |s| s.write(buf))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.get_mut().io(true, |s| s.flush())
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let r = match &this.sock {
            Sock::Tcp(t) => t.shutdown(std::net::Shutdown::Write),
            Sock::Unix(u) => u.shutdown(std::net::Shutdown::Write),
        };
        Poll::Ready(r.or(Ok(())))
    }
}

/// One connection, driven by whoever calls it.
pub struct Conn {
    /// Shared with requests sent and read later (`PgStore::send`).
    client: Arc<Client>,
    connection: RefCell<Connection<Socket, NoTlsStream>>,
    /// A duplicate of the socket's descriptor, to wait on.
    fd: std::os::fd::OwnedFd,
    /// Set by the socket when a write would have blocked: then the wait is for writing too.
    write_blocked: Arc<AtomicBool>,
    /// The connection ended (its error, if any, was logged).
    closed: Cell<bool>,
}

fn connect_err(url: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("cannot connect to the database {}: {detail}", crate::redact_url(url)))
}

impl Conn {
    /// Connects with the URL's settings (no TLS on the wire to the database: run it on a private
    /// network or a Unix socket; the daemon's own listener is where kite speaks TLS).
    pub fn connect(url: &str) -> Result<Conn> {
        let config: tokio_postgres::Config = url.parse().map_err(|e| connect_err(url, e))?;
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let sock = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => {
                let s = std::net::TcpStream::connect((h.as_str(), port)).map_err(|e| connect_err(url, e))?;
                let _ = s.set_nodelay(true);
                Sock::Tcp(s)
            }
            Some(tokio_postgres::config::Host::Unix(dir)) => {
                let path = dir.join(format!(".s.PGSQL.{port}"));
                Sock::Unix(std::os::unix::net::UnixStream::connect(&path).map_err(|e| connect_err(url, e))?)
            }
            None => return Err(connect_err(url, "the URL names no host")),
        };
        let fd = match &sock {
            Sock::Tcp(t) => {
                t.set_nonblocking(true).map_err(|e| connect_err(url, e))?;
                t.as_fd().try_clone_to_owned()
            }
            Sock::Unix(u) => {
                u.set_nonblocking(true).map_err(|e| connect_err(url, e))?;
                u.as_fd().try_clone_to_owned()
            }
        }
        .map_err(|e| connect_err(url, e))?;
        let write_blocked = Arc::new(AtomicBool::new(false));
        let socket = Socket { sock, write_blocked: write_blocked.clone() };
        let handshake = config.connect_raw(socket, NoTls);
        let (client, connection) = drive_alone(fd.as_fd(), &write_blocked, handshake).map_err(|e| connect_err(url, db(e)))?;
        Ok(Conn { client: Arc::new(client), connection: RefCell::new(connection), fd, write_blocked, closed: Cell::new(false) })
    }

    /// Runs `f` to completion on this thread, driving the connection beside it. Both are polled
    /// with a waker that only notes it was woken: a request `f` queued wakes the connection's
    /// side, a response the connection routed wakes `f`'s. While anything was woken they are
    /// polled again; when nothing was, only the socket can bring news, and the thread waits for
    /// it in `poll(2)`.
    pub(crate) fn drive<F: Future>(&self, f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let flag = Arc::new(Woken(AtomicBool::new(false)));
        let waker = futures::task::waker(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let mut connection = self.connection.borrow_mut();
        loop {
            flag.0.store(false, Ordering::Relaxed);
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            if !self.closed.get() {
                self.write_blocked.store(false, Ordering::Relaxed);
                if let Poll::Ready(r) = Pin::new(&mut *connection).poll(&mut cx) {
                    if let Err(e) = r {
                        tracing::warn!("the database connection ended: {e}");
                    }
                    // `f`'s channel closes with it: the next poll ends `f`.
                    self.closed.set(true);
                    continue;
                }
            }
            if flag.0.load(Ordering::Relaxed) || self.closed.get() {
                continue;
            }
            wait(self.fd.as_fd(), self.write_blocked.load(Ordering::Relaxed));
        }
    }

    /// Lets the connection write what was queued (and read what arrived) without waiting: the
    /// server starts on a request's statements while the caller goes on with the next one.
    pub(crate) fn poke(&self) {
        if self.closed.get() {
            return;
        }
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut connection = self.connection.borrow_mut();
        if let Poll::Ready(r) = Pin::new(&mut *connection).poll(&mut cx) {
            if let Err(e) = r {
                tracing::warn!("the database connection ended: {e}");
            }
            self.closed.set(true);
        }
    }

    /// Runs statements without parameters (one round trip).
    pub fn batch(&self, sql: &str) -> Result<()> {
        self.drive(self.client.batch_execute(sql)).map_err(db)
    }

    pub fn prepare(&self, sql: &str) -> Result<Statement> {
        self.drive(self.client.prepare(sql)).map_err(db)
    }

    pub fn query<T: ?Sized + ToStatement>(&self, st: &T, params: &[P<'_>]) -> Result<Vec<Row>> {
        self.drive(self.client.query(st, params)).map_err(db)
    }

    pub fn query_opt<T: ?Sized + ToStatement>(&self, st: &T, params: &[P<'_>]) -> Result<Option<Row>> {
        self.drive(self.client.query_opt(st, params)).map_err(db)
    }

    pub fn query_one<T: ?Sized + ToStatement>(&self, st: &T, params: &[P<'_>]) -> Result<Row> {
        self.drive(self.client.query_one(st, params)).map_err(db)
    }

    pub fn execute<T: ?Sized + ToStatement>(&self, st: &T, params: &[P<'_>]) -> Result<u64> {
        self.drive(self.client.execute(st, params)).map_err(db)
    }

    pub(crate) fn raw(&self) -> &Client {
        &self.client
    }

    /// The client itself, for a request that outlives the call that sent it (see
    /// `PgStore::send`).
    pub(crate) fn shared(&self) -> Arc<Client> {
        self.client.clone()
    }

    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        self.closed.get() || self.client.is_closed()
    }
}

/// A waker that notes it was woken.
struct Woken(AtomicBool);

impl futures::task::ArcWake for Woken {
    fn wake_by_ref(arc: &Arc<Self>) {
        arc.0.store(true, Ordering::Relaxed);
    }
}

/// Drives a future that owns the socket (the start-up handshake) until it is done.
fn drive_alone<F: Future>(fd: BorrowedFd<'_>, write_blocked: &AtomicBool, f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    loop {
        write_blocked.store(false, Ordering::Relaxed);
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        wait(fd, write_blocked.load(Ordering::Relaxed));
    }
}

/// Waits until the socket can be read (or written, when a write would have blocked).
fn wait(fd: BorrowedFd<'_>, writing: bool) {
    use rustix::event::{poll, PollFd, PollFlags};
    let mut flags = PollFlags::IN;
    if writing {
        flags |= PollFlags::OUT;
    }
    let mut fds = [PollFd::new(&fd, flags)];
    // A second at most: a server gone silent is noticed by the caller's own timeouts, and a
    // spurious wake-up costs one poll of the futures.
    let _ = poll(&mut fds, Some(&rustix::event::Timespec { tv_sec: 1, tv_nsec: 0 }));
}
