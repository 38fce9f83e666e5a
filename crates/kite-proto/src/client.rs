//! The client library: one connection to the daemon, many requests in flight, and a stream of
//! pushed events. Replies are matched to requests by id, so a caller can wait for a lock grant on
//! one request while others go on over the same connection.

use crate::frame::{ErrorBody, ErrorCode, Push, ServerMessage, MAX_FRAME};
use crate::request::Operation;

/// A request as the client writes it (the daemon reads it as a [`crate::Request`]).
#[derive(Serialize)]
struct OutRequest<'a> {
    id: u64,
    op: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<&'a Value>,
}
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

/// Why a call did not get a result.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no kite daemon is listening on {}: start one with `kite daemon`", .0.display())]
    NoDaemon(PathBuf),
    #[error("cannot connect to {}: {source}", .path.display())]
    Connect { path: PathBuf, source: std::io::Error },
    #[error("lost the connection to the daemon: {0}")]
    Io(#[from] std::io::Error),
    #[error("the daemon closed the connection")]
    Closed,
    #[error("{0}")]
    Daemon(ErrorBody),
    #[error("unexpected reply from the daemon: {0}")]
    Decode(String),
    #[error("cannot reach the kite daemon at {url}: {detail}")]
    Remote { url: String, detail: String },
    #[error("request too large: {0} bytes (the limit is {MAX_FRAME})")]
    TooLarge(usize),
}

impl ClientError {
    /// The daemon's error code, when the daemon refused the request.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Daemon(e) => Some(e.code),
            _ => None,
        }
    }
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, ErrorBody>>>>>;

/// A connection to the daemon.
pub struct Client {
    writer: tokio::sync::Mutex<Box<dyn AsyncWrite + Send + Unpin>>,
    pending: Pending,
    next_id: AtomicU64,
    pushes: Mutex<Option<mpsc::UnboundedReceiver<Push>>>,
    reader: tokio::task::JoinHandle<()>,
    /// True once the connection is gone (the reader ended).
    gone: tokio::sync::watch::Receiver<bool>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Client {
    /// Connects to the daemon's socket.
    pub async fn connect(socket: &Path) -> Result<Client, ClientError> {
        let stream = match UnixStream::connect(socket).await {
            Ok(s) => s,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused) => {
                return Err(ClientError::NoDaemon(socket.to_path_buf()))
            }
            Err(source) => return Err(ClientError::Connect { path: socket.to_path_buf(), source }),
        };
        Ok(Client::over(stream))
    }

    /// A client over an open stream.
    fn over<S: AsyncRead + AsyncWrite + Send + 'static>(stream: S) -> Client {
        let (read, write) = tokio::io::split(stream);
        let pending: Pending = Arc::default();
        let pending_for_reader = pending.clone();
        let (push_tx, push_rx) = mpsc::unbounded_channel();
        let (gone_tx, gone) = tokio::sync::watch::channel(false);
        let reader = tokio::spawn(read_loop(BufReader::new(read), pending_for_reader, push_tx, gone_tx));
        Client {
            writer: tokio::sync::Mutex::new(Box::new(write)),
            pending,
            next_id: AtomicU64::new(1),
            pushes: Mutex::new(Some(push_rx)),
            reader,
            gone,
        }
    }

    /// Connects to the daemon wherever `to` says: the local socket, or a remote daemon's
    /// listener (authenticated with its token before this returns).
    pub async fn connect_to(to: &crate::remote::Endpoint) -> Result<Client, ClientError> {
        match to {
            crate::remote::Endpoint::Unix(socket) => Client::connect(socket).await,
            crate::remote::Endpoint::Remote(r) => {
                let c = Client::over(crate::remote::open(r).await?);
                c.request::<crate::op::Auth>(crate::ops::Auth { token: r.token.clone() }).await?;
                Ok(c)
            }
        }
    }

    /// Whether the connection is gone (its reader ended).
    pub fn is_closed(&self) -> bool {
        *self.gone.borrow()
    }

    /// Resolves once the connection is gone (the daemon stopped, or lost its lease): a
    /// long-lived client then connects again.
    pub async fn closed(&self) {
        let mut gone = self.gone.clone();
        let _ = gone.wait_for(|g| *g).await;
    }

    /// Takes the stream of pushed events (lock grants, broadcasts, followed events). Only the
    /// first caller gets it.
    pub fn take_pushes(&self) -> Option<mpsc::UnboundedReceiver<Push>> {
        self.pushes.lock().expect("push receiver lock").take()
    }

    /// Sends an operation and waits for its typed reply.
    pub async fn request<O: Operation>(&self, args: O::Args) -> Result<O::Reply, ClientError> {
        self.call(O::NAME, args).await
    }

    /// Every task matching `args`, page by page (`args.after` is where it starts).
    pub async fn all_tasks(&self, mut args: crate::ops::TaskList) -> Result<Vec<kite_core::Task>, ClientError> {
        let mut out = Vec::new();
        loop {
            let page = self.request::<crate::op::TaskList>(args.clone()).await?;
            out.extend(page.tasks);
            match page.next {
                Some(n) => args.after = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// Sends `op` with `args` and waits for its reply.
    pub async fn call<A: Serialize, R: DeserializeOwned>(&self, op: &str, args: A) -> Result<R, ClientError> {
        let v = self.call_value(op, serde_json::to_value(args).map_err(|e| ClientError::Decode(e.to_string()))?).await?;
        serde_json::from_value(v).map_err(|e| ClientError::Decode(format!("{op}: {e}")))
    }

    /// Like [`Client::call`] with untyped JSON on both ends.
    pub async fn call_value(&self, op: &str, args: Value) -> Result<Value, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut line = serde_json::to_string(&OutRequest { id, op, args: if args.is_null() { None } else { Some(&args) } })
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        if line.len() > MAX_FRAME {
            return Err(ClientError::TooLarge(line.len()));
        }
        line.push('\n');
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("pending lock").insert(id, tx);
        // A connection already gone would never answer (its reader has stopped).
        if *self.gone.borrow() {
            self.pending.lock().expect("pending lock").remove(&id);
            return Err(ClientError::Closed);
        }
        let sent = {
            let mut w = self.writer.lock().await;
            w.write_all(line.as_bytes()).await
        };
        if let Err(e) = sent {
            self.pending.lock().expect("pending lock").remove(&id);
            return Err(ClientError::Io(e));
        }
        match rx.await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(ClientError::Daemon(e)),
            Err(_) => Err(ClientError::Closed),
        }
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut read: BufReader<R>,
    pending: Pending,
    pushes: mpsc::UnboundedSender<Push>,
    gone: tokio::sync::watch::Sender<bool>,
) {
    let mut line = String::new();
    loop {
        line.clear();
        match read.read_line(&mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        match ServerMessage::decode(line.trim_end()) {
            Ok(ServerMessage::Reply { id: Some(id), result }) => {
                if let Some(tx) = pending.lock().expect("pending lock").remove(&id) {
                    let _ = tx.send(result);
                }
            }
            Ok(ServerMessage::Reply { id: None, result }) => {
                tracing::warn!(?result, "reply without an id from the daemon");
            }
            Ok(ServerMessage::Push(p)) => {
                let _ = pushes.send(p);
            }
            Err(e) => tracing::warn!("{e}"),
        }
    }
    // Gone first, then the waiting calls woken (dropping their senders gives them `Closed`): a
    // call that registers after this sees `gone` (see `call_value`).
    let _ = gone.send(true);
    pending.lock().expect("pending lock").clear();
}

/// The blocking client: one request on its own connection, for synchronous callers (a hook, the
/// MCP server's vault tools, a note source on a blocking thread). Every wait is bounded by
/// `deadline`, so a daemon that does not answer costs the caller that long and no longer.
pub mod blocking {
    use super::*;
    use std::io::{BufRead, BufReader as StdBufReader, Write};
    use std::os::unix::net::UnixStream as StdUnixStream;
    use std::time::Duration;

    /// As [`request`], to either kind of daemon: the home's socket, or a daemon on another
    /// machine (over TLS, authenticated, trying the configured addresses in order), so that a
    /// remote session's hooks recall through the team's daemon as local ones do. The remote
    /// call runs on a thread of its own with a runtime of its own: a caller may already be on
    /// one (the MCP server's vault tools).
    pub fn request_to<O: Operation>(to: &crate::remote::Endpoint, args: O::Args, deadline: Duration) -> Result<O::Reply, ClientError>
    where
        O::Args: Send + 'static,
        O::Reply: Send + 'static,
    {
        if let crate::remote::Endpoint::Unix(socket) = to {
            return request::<O>(socket, args, deadline);
        }
        let to = to.clone();
        let call = move || -> Result<O::Reply, ClientError> {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async move {
                let asked = async {
                    let c = Client::connect_to(&to).await?;
                    c.request::<O>(args).await
                };
                match tokio::time::timeout(deadline, asked).await {
                    Ok(r) => r,
                    Err(_) => Err(ClientError::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no answer within {deadline:?}")))),
                }
            })
        };
        std::thread::spawn(call).join().unwrap_or(Err(ClientError::Closed))
    }

    /// Sends `O` with `args` and waits up to `deadline` for its typed reply.
    pub fn request<O: Operation>(socket: &Path, args: O::Args, deadline: Duration) -> Result<O::Reply, ClientError> {
        let s = match StdUnixStream::connect(socket) {
            Ok(s) => s,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused) => {
                return Err(ClientError::NoDaemon(socket.to_path_buf()))
            }
            Err(source) => return Err(ClientError::Connect { path: socket.to_path_buf(), source }),
        };
        let started = std::time::Instant::now();
        let left = || deadline.saturating_sub(started.elapsed()).max(Duration::from_millis(1));
        s.set_write_timeout(Some(left()))?;
        let args = serde_json::to_value(args).map_err(|e| ClientError::Decode(e.to_string()))?;
        let req = serde_json::json!({"id": 1, "op": O::NAME, "args": args});
        (&s).write_all(format!("{req}\n").as_bytes())?;
        let mut reader = StdBufReader::new(&s);
        let mut line = String::new();
        loop {
            s.set_read_timeout(Some(left()))?;
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Err(ClientError::Closed);
            }
            match ServerMessage::decode(line.trim_end()) {
                Ok(ServerMessage::Reply { id: Some(1), result }) => {
                    let v = result.map_err(ClientError::Daemon)?;
                    return serde_json::from_value(v).map_err(|e| ClientError::Decode(e.to_string()));
                }
                // A push that raced the reply (the connection is not attached to a session, so
                // there are none, but a newer daemon may send some).
                Ok(_) => continue,
                Err(e) => return Err(ClientError::Decode(e)),
            }
        }
    }
}
