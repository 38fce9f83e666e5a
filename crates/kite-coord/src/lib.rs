//! kite-coord: the daemon. One process per project owns the task queue, the session registry and
//! the locks, and serves every client over a Unix socket.
//!
//! Shape: an accept loop ([`server`]) spawns one task per connection ([`connection`]); each
//! connection parses frames and sends them to the single state owner ([`state`]), a dedicated
//! thread that holds the SQLite connection and the in-memory lock table. The owner applies a batch
//! of requests in one transaction, commits, and only then sends the replies and pushes (durable
//! before acknowledged; group commit keeps that cheap). [`instance`] makes sure one daemon runs per
//! home and that its directory is private.

pub mod connection;
pub mod instance;
mod outbound;
pub mod remote;
pub mod server;
pub mod service;
pub mod state;
mod tokens;

use std::path::PathBuf;
use std::time::Duration;

pub use kite_core::Home;
pub use kite_store::Durability;
pub use server::{run, run_with};
pub use service::{Reply, Service, Services};

/// How a daemon is set up.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// The kite home: socket, database, pidfile, logs.
    pub home: PathBuf,
    /// The project root: lock paths are relative to it and may not leave it.
    pub root: PathBuf,
    /// A session silent for this long is reaped.
    pub heartbeat_timeout: Duration,
    pub durability: Durability,
    /// How long events and finished tasks stay in the live database before `gc` archives them.
    pub retention: Retention,
    /// Where the state lives: HOME/kite.db, or a team's PostgreSQL database.
    pub backend: Backend,
    /// The TCP listener for other machines (`[daemon] listen`), if any.
    pub listen: Option<remote::Listen>,
}

/// Where the coordinator's durable state lives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in the home (`kite.db`): one machine.
    #[default]
    Sqlite,
    /// A team's PostgreSQL database (`[store] url`), written under its lease. With `standby`,
    /// the daemon waits for the active one's lease to expire and then takes over.
    Postgres { url: String, standby: bool },
}

/// How long the event log and finished tasks are kept before they move to the archive
/// (`HOME/archive/*.jsonl`); `None` keeps them forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub events: Option<Duration>,
    pub tasks: Option<Duration>,
}

impl Default for Retention {
    /// Thirty days of each: a month of history to read and follow, a bounded database after.
    fn default() -> Self {
        let month = Some(Duration::from_secs(30 * 24 * 3600));
        Retention { events: month, tasks: month }
    }
}

impl DaemonConfig {
    /// The home's files.
    pub fn files(&self) -> Home {
        Home::new(&self.home)
    }
    pub fn socket_path(&self) -> PathBuf {
        self.files().socket()
    }
    pub fn db_path(&self) -> PathBuf {
        self.files().db()
    }
}

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("another kite daemon (pid {pid}) is already running for {home}")]
    AlreadyRunning { pid: String, home: String },
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] kite_store::StoreError),
    #[error(transparent)]
    Lease(#[from] kite_store_pg::lease::LeaseError),
}

impl DaemonError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DaemonError {
        let what = what.into();
        move |source| DaemonError::Io { what, source }
    }
}
