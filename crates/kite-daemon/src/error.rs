//! What can stop a component of the daemon (the memory thread, the extraction queue, the
//! dashboard) from starting or doing a job. The coordinator's own failures are
//! `kite_coord::DaemonError`; these are the components' around it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    /// A file or directory of kite's home could not be read or written.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The operating system would not start a thread.
    #[error("cannot start the {name} thread: {source}")]
    Thread {
        name: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Memory(#[from] kite_memory::MemoryError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// Another thread panicked while it held the vault.
    #[error("the vault's lock is poisoned (a thread panicked holding it)")]
    Poisoned,
    /// The dashboard's port is taken or not ours to take.
    #[error("cannot listen on 127.0.0.1:{port} ([ui] port): {source}")]
    Listen {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    /// The dashboard's server stopped with an error.
    #[error("the dashboard's server: {0}")]
    Serve(#[source] std::io::Error),
}

impl ComponentError {
    /// An I/O error on `path`, said as "cannot `what` `path`".
    pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { what, path, source }
    }
}
