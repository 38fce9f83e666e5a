//! kite-store: the coordinator's durable state in SQLite (WAL). The daemon's state owner is the
//! only caller; it groups many requests into one transaction ([`Store::begin`] /
//! [`Store::commit`]) and isolates each request in a savepoint, so one bad request rolls back
//! alone and a reply is sent only after the commit that made it true.
//!
//! Every statement is a cached prepared statement; the claim and the ready-task query are single
//! statements so they stay atomic and cheap.

mod error;
mod locks;
mod sessions;
mod tasks;

pub use error::StoreError;
pub use sessions::SessionRow;
pub use tasks::NewTaskRow;

use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

type Result<T> = std::result::Result<T, StoreError>;

/// How hard a commit tries to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// WAL with synchronous=NORMAL: a commit survives the death of the process (kill -9), and may
    /// be lost on power failure.
    #[default]
    Normal,
    /// synchronous=FULL: every commit is fsynced before the reply; survives power loss.
    Full,
}

impl Durability {
    pub fn parse(s: &str) -> Option<Durability> {
        match s.to_ascii_lowercase().as_str() {
            "normal" => Some(Durability::Normal),
            "full" => Some(Durability::Full),
            _ => None,
        }
    }
}

const MIGRATIONS: &[&str] = &[include_str!("../migrations/0001_init.sql")];

/// Moves the WAL into the database file in the background, off the request path. PASSIVE
/// checkpoints never block the writer; the WAL is truncated when a checkpoint catches up.
pub struct Checkpointer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing `path` every `every`.
    pub fn start(path: &Path, every: std::time::Duration) -> Result<Checkpointer> {
        let conn = Connection::open(path).map_err(|e| StoreError::open(path, e))?;
        conn.busy_timeout(std::time::Duration::from_millis(100))?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("kite-checkpoint".into())
            .spawn(move || {
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::park_timeout(every);
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        tracing::warn!("checkpoint failed: {e}");
                    }
                }
                let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer { stop, thread: Some(thread) })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// An open database.
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path, durability: Durability) -> Result<Store> {
        let conn = Connection::open(path).map_err(|e| StoreError::open(path, e))?;
        Self::setup(conn, durability)
    }

    /// An in-memory database, for tests.
    pub fn open_in_memory() -> Result<Store> {
        Self::setup(Connection::open_in_memory()?, Durability::Normal)
    }

    fn setup(conn: Connection, durability: Durability) -> Result<Store> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", match durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        })?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Checkpoints fsync; they run on their own connection and thread (see `Checkpointer`), so
        // a commit never waits for one.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(64);
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(sql).map_err(|e| StoreError::Migration(i + 1, e))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
            tracing::info!(migration = i + 1, "applied database migration");
        }
        Ok(Store { conn })
    }

    pub fn begin(&self) -> Result<()> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(())
    }

    pub fn commit(&self) -> Result<()> {
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }

    /// Abandons the open transaction, if any.
    pub fn rollback(&self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    /// Starts a savepoint around one request.
    pub fn savepoint(&self) -> Result<()> {
        self.conn.prepare_cached("SAVEPOINT req")?.execute([])?;
        Ok(())
    }

    /// Keeps the request's changes (they commit with the batch).
    pub fn release_savepoint(&self) -> Result<()> {
        self.conn.prepare_cached("RELEASE req")?.execute([])?;
        Ok(())
    }

    /// Undoes the request's changes.
    pub fn rollback_savepoint(&self) -> Result<()> {
        self.conn.execute_batch("ROLLBACK TO req; RELEASE req")?;
        Ok(())
    }

    /// A lifetime counter (completed, pruned, failed, claim).
    pub fn counter(&self, name: &str) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM counters WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?
            .unwrap_or(0))
    }

    /// Adds `by` to a counter and returns the new value.
    pub fn bump_counter(&self, name: &str, by: i64) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached(
                "INSERT INTO counters (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = value + ?2 RETURNING value",
            )?
            .query_row(params![name, by], |r| r.get(0))?)
    }

    /// Appends to the event log; returns the event's id.
    pub fn append_event(&self, at_ms: i64, kind: &str, data: &serde_json::Value) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached("INSERT INTO events (at_ms, kind, data) VALUES (?1, ?2, ?3) RETURNING id")?
            .query_row(params![at_ms, kind, data.to_string()], |r| r.get(0))?)
    }

    /// Events after `since`, oldest first; with `limit`, only the newest that many.
    pub fn events(&self, since: i64, limit: Option<u32>) -> Result<Vec<(i64, i64, String, serde_json::Value)>> {
        let mut st = self.conn.prepare_cached(
            "SELECT * FROM (SELECT id, at_ms, kind, data FROM events WHERE id > ?1 ORDER BY id DESC LIMIT ?2)
             ORDER BY id",
        )?;
        let rows = st.query_map(params![since, limit.map(i64::from).unwrap_or(-1)], |r| {
            let data: String = r.get(3)?;
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, serde_json::from_str(&data).unwrap_or(serde_json::Value::Null)))
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }
}
