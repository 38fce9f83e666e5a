//! The one error type of kite-memory: every failure names what it was doing and on which file,
//! so that the CLI can print a single useful line.

use std::path::PathBuf;

/// Result with [`MemoryError`].
pub type Result<T, E = MemoryError> = std::result::Result<T, E>;

/// Everything that can go wrong in the vault.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("note {path}: {reason}")]
    BadNote { path: PathBuf, reason: String },
    #[error("note body is {size} bytes, more than the limit of {limit} bytes; split it into smaller notes")]
    TooLarge { size: usize, limit: usize },
    #[error("invalid note: {0}")]
    Invalid(String),
    #[error("no note with id {0:?}")]
    NotFound(String),
    #[error("empty query: give some words to search for")]
    EmptyQuery,
    #[error(
        "embedding model not available ({reason}); install it with `make install` in kite's \
         checkout, or run `kite doctor` to see where kite looks (keyword search still works)"
    )]
    ModelMissing { reason: String },
    #[error("embedding: {0}")]
    Embed(String),
    #[error("index {path}: {source}")]
    Index {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("transcript {path}: {reason}")]
    Transcript { path: PathBuf, reason: String },
    #[error("extraction: {0}")]
    Extract(String),
    #[error("template: {0}")]
    Template(String),
}

impl MemoryError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        MemoryError::Io { action, path: path.into(), source }
    }
}
