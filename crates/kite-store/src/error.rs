//! Store errors: driver errors with the context of what was being done.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("database migration {0} failed: {1}")]
    Migration(usize, rusqlite::Error),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("cannot make the commit durable (fdatasync of the WAL failed): {0}")]
    Sync(String),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Another backend's error (kite-store-pg), with what was being done.
    #[error("{0}")]
    Backend(String),
    /// Another daemon took the store's lease over: this one may no longer write to it.
    #[error("this daemon lost the store's lease (it writes as epoch {mine}, the store is at epoch {current}): another daemon took over")]
    Deposed { mine: i64, current: i64 },
}

impl StoreError {
    pub(crate) fn open(path: &Path, source: rusqlite::Error) -> StoreError {
        StoreError::Open { path: path.display().to_string(), source }
    }
}
