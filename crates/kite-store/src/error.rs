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
}

impl StoreError {
    pub(crate) fn open(path: &Path, source: rusqlite::Error) -> StoreError {
        StoreError::Open { path: path.display().to_string(), source }
    }
}
