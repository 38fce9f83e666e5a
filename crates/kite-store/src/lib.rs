//! kite-store: the coordinator's durable state in SQLite (WAL). The daemon's state owner is the
//! only caller; it groups many requests into one transaction ([`Store::begin`] /
//! [`Store::commit`]) and isolates each request in a savepoint, so one bad request rolls back
//! alone and a reply is sent only after the commit that made it true.
//!
//! Every statement is a cached prepared statement; the claim and the ready-task query are single
//! statements so they stay atomic and cheap.

mod bound;
mod costs;
mod error;
mod locks;
mod merge;
mod retention;
mod sessions;
mod tasks;
mod tokens;

pub use costs::{CostRow, CostStore, CostSums};
pub use error::StoreError;
pub use locks::LockStore;
pub use merge::MergeStore;
pub use retention::{EventRow, RetentionStore};
pub use sessions::{SessionRow, SessionStore};
pub use tasks::{HistoryRow, NewTaskRow, TaskState, TaskStore};
pub use tokens::{TokenRow, TokenStore};

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
    /// Every commit reaches the disk before it is acknowledged; survives power loss. Same
    /// guarantee as SQLite's synchronous=FULL, delivered as "commit at NORMAL, then fdatasync the
    /// WAL" so the fsync can run off the writer's thread (see [`WalSync`]).
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

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_partial_status_indexes.sql"),
    include_str!("../migrations/0003_session_key.sql"),
    include_str!("../migrations/0004_costs.sql"),
    include_str!("../migrations/0005_merge.sql"),
    include_str!("../migrations/0006_review.sql"),
    include_str!("../migrations/0007_test_delta.sql"),
    include_str!("../migrations/0008_tokens.sql"),
    include_str!("../migrations/0009_lock_waits.sql"),
];

/// What a WAL is cut back to when it starts over after a complete checkpoint.
pub const WAL_KEEP_BYTES: u64 = 16 << 20;

/// How a checkpoint run by the writer went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Every frame of the WAL is in the database file now (the WAL starts over at the next write,
    /// or was truncated).
    pub complete: bool,
    /// Frames in the WAL when it ran.
    pub frames: i64,
}

/// How a writer's checkpoint may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointMode {
    /// Never waits: copies what it can and says whether that was everything.
    Passive,
    /// Waits up to the given time for readers and a checkpoint in progress, then copies
    /// everything and truncates the WAL to nothing.
    Truncate(std::time::Duration),
}

/// How often a file database's background checkpointer runs.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

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
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!("checkpoint failed: {e}");
                    }
                }
                let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
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

/// Makes the WAL durable: `fdatasync` on the `-wal` file, from any thread.
///
/// Why not let SQLite do it (synchronous=FULL)? Then the fsync happens inside COMMIT, on the
/// writer's thread, and nothing else can run for its whole length (about 450 µs on the CI VM
/// under load). With the store at synchronous=NORMAL a commit only writes its frames to the WAL;
/// syncing the file afterwards, before any reply goes out, gives the same guarantee for every
/// acknowledged commit: all frames written so far (and the WAL header) are on disk, and SQLite's
/// recovery keeps every frame up to the last valid commit marker. Frames of a later, unsynced
/// commit may be lost on power failure, but that commit was never acknowledged. A WAL reset only
/// follows a complete checkpoint, which fsyncs the database file first. Meanwhile the writer
/// carries on with the next batch, so one fsync covers many commits (group commit) and overlaps
/// work.
#[derive(Clone)]
pub struct WalSync {
    inner: std::sync::Arc<WalSyncInner>,
}

struct WalSyncInner {
    wal: std::path::PathBuf,
    /// Opened on first use: the WAL exists once something was committed. The directory is
    /// fsynced once then, so the file's own entry is durable too.
    file: std::sync::Mutex<Option<std::fs::File>>,
}

impl WalSync {
    fn new(db: &Path) -> WalSync {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        WalSync {
            inner: std::sync::Arc::new(WalSyncInner {
                wal: wal.into(),
                file: std::sync::Mutex::new(None),
            }),
        }
    }

    /// Returns once every frame committed before the call is on disk.
    pub fn sync(&self) -> std::io::Result<()> {
        let mut guard = self.inner.file.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            let file = std::fs::File::open(&self.inner.wal)?;
            if let Some(dir) = self.inner.wal.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            *guard = Some(file);
        }
        guard.as_ref().expect("opened above").sync_data()
    }
}

/// Makes what was committed durable, from any thread: the handle a backend with deferred syncs
/// gives the state owner's syncer ([`WalSync`] for SQLite).
pub trait Durable: Send + Sync {
    /// Returns once every commit made before the call is on stable storage.
    fn sync(&self) -> std::io::Result<()>;
}

impl Durable for WalSync {
    fn sync(&self) -> std::io::Result<()> {
        WalSync::sync(self)
    }
}

/// Everything the daemon's state owner asks of durable storage, in domain verbs: its batches
/// ([`Batch`]), the event log and counters ([`EventStore`]), tasks ([`TaskStore`]), sessions
/// ([`SessionStore`]), held locks ([`LockStore`]), retention ([`RetentionStore`]) and what agents
/// cost ([`CostStore`]). The owner
/// holds a `Box<dyn Storage>` and nothing SQLite; [`Store`] is the SQLite backend. What a shared
/// PostgreSQL backend would have to own is written in ARCHITECTURE.md.
pub trait Storage:
    Batch
    + EventStore
    + TaskStore
    + SessionStore
    + LockStore
    + RetentionStore
    + CostStore
    + MergeStore
    + TokenStore
    + Send
{
    /// With a durability level whose syncs are deferred: the handle that makes commits durable
    /// (see [`Batch::commit_deferred`]).
    fn durable(&self) -> Option<std::sync::Arc<dyn Durable>>;

    /// The backend's own upkeep between two batches (SQLite keeps its WAL bounded). `quiet`: the
    /// batch had no request in it.
    fn after_batch(&self, quiet: bool);

    /// Told before a batch commits whether more requests are already waiting. A backend whose
    /// deferred sync costs a round trip of its own (PostgreSQL) commits a batch nobody waits
    /// behind synchronously, in one round trip, and defers the sync only under load, where one
    /// sync covers several batches.
    fn more_waiting(&self, _waiting: bool) {}
}

impl Storage for Store {
    fn durable(&self) -> Option<std::sync::Arc<dyn Durable>> {
        self.wal
            .clone()
            .map(|w| std::sync::Arc::new(w) as std::sync::Arc<dyn Durable>)
    }

    fn after_batch(&self, quiet: bool) {
        self.bound
            .after_batch(self, self.wrote_last.replace(false), quiet);
    }
}

/// The storage traits, to call their methods.
pub mod prelude {
    pub use crate::{
        Batch, CostStore, EventStore, LockStore, MergeStore, RetentionStore, SessionStore, Storage,
        TaskStore, TokenStore,
    };
}

/// What a deferred commit left to do (see [`Store::commit_deferred`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "with Durability::Full a commit is not durable until WalSync::sync returns"]
pub enum Committed {
    /// Nothing more: the commit is as durable as the store's level promises.
    Durable,
    /// The commit wrote to the WAL; call [`WalSync::sync`] before acknowledging it.
    NeedsSync,
}

/// An open database.
pub struct Store {
    /// The background checkpointer of a file database (declared first: it stops, with a last
    /// checkpoint, before the connection closes).
    _checkpointer: Option<Checkpointer>,
    conn: Connection,
    /// Set with [`Durability::Full`].
    wal: Option<WalSync>,
    /// `total_changes` when the open transaction began: did it write anything?
    changes_at_begin: std::cell::Cell<u64>,
    /// The `-wal` file (none in memory).
    wal_path: Option<std::path::PathBuf>,
    /// Whether the last commit wrote anything (for the WAL's upkeep).
    wrote_last: std::cell::Cell<bool>,
    bound: bound::WalBound,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path, durability: Durability) -> Result<Store> {
        let conn = Connection::open(path).map_err(|e| StoreError::open(path, e))?;
        let wal = (durability == Durability::Full).then(|| WalSync::new(path));
        let mut store = Self::setup(conn, wal)?;
        let mut wal_path = path.as_os_str().to_owned();
        wal_path.push("-wal");
        store.wal_path = Some(wal_path.into());
        store._checkpointer = Some(Checkpointer::start(path, CHECKPOINT_EVERY)?);
        Ok(store)
    }

    /// An in-memory database, for tests.
    pub fn open_in_memory() -> Result<Store> {
        Self::setup(Connection::open_in_memory()?, None)
    }

    fn setup(conn: Connection, wal: Option<WalSync>) -> Result<Store> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL in both modes: with Full, `WalSync` does the fsync that FULL would do in COMMIT.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Savepoint journals stay in memory.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Checkpoints fsync; they run on their own connection and thread (see `Checkpointer`), so
        // a commit never waits for one.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // When a complete checkpoint lets the WAL start over, the file is cut back to this size
        // (see `Store::checkpoint`: the owner keeps the WAL bounded).
        conn.pragma_update(None, "journal_size_limit", WAL_KEEP_BYTES as i64)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(64);
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(sql)
                .map_err(|e| StoreError::Migration(i + 1, e))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
            tracing::info!(migration = i + 1, "applied database migration");
        }
        if let Some(w) = &wal {
            // Whatever is in the WAL (migrations, a previous run's tail) is durable before
            // anyone is served.
            match w.sync() {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(StoreError::Sync(e.to_string()))
                }
                _ => {}
            }
        }
        Ok(Store {
            _checkpointer: None,
            conn,
            wal,
            changes_at_begin: std::cell::Cell::new(0),
            wal_path: None,
            wrote_last: std::cell::Cell::new(false),
            bound: bound::WalBound::new(),
        })
    }

    /// The WAL file's size in bytes (0 without one).
    pub fn wal_len(&self) -> u64 {
        self.wal_path
            .as_deref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len())
    }

    /// A checkpoint on the writer's own connection, between its transactions. Why here and not
    /// only on the [`Checkpointer`]'s thread: under sustained writes that one never catches up
    /// (new frames arrive while it copies), so the WAL never starts over and grows without
    /// bound (2.4 GB after 334,000 tasks, docs/BENCHMARKS.md). Between two of the writer's
    /// transactions nothing is appended, so a passive checkpoint here completes, and the next
    /// write starts the WAL over (cut back to [`WAL_KEEP_BYTES`]). Truncating from another
    /// connection is not an option: it takes the write lock while the writer's deferred
    /// transaction may already have read, and the writer's upgrade then fails with SQLITE_BUSY.
    pub fn checkpoint(&self, mode: CheckpointMode) -> Result<Checkpoint> {
        debug_assert!(
            self.conn.is_autocommit(),
            "a checkpoint runs between transactions"
        );
        let (sql, wait) = match mode {
            CheckpointMode::Passive => ("PRAGMA wal_checkpoint(PASSIVE)", None),
            CheckpointMode::Truncate(w) => ("PRAGMA wal_checkpoint(TRUNCATE)", Some(w)),
        };
        if let Some(w) = wait {
            self.conn.busy_timeout(w)?;
        }
        let r = self.conn.query_row(sql, [], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        });
        if wait.is_some() {
            self.conn.busy_timeout(std::time::Duration::from_secs(5))?;
        }
        let (busy, frames, done) = r?;
        Ok(Checkpoint {
            complete: busy == 0 && done == frames,
            frames,
        })
    }

    /// The handle that makes commits durable, with [`Durability::Full`].
    pub fn wal_sync(&self) -> Option<WalSync> {
        self.wal.clone()
    }

    /// Commits, and returns once the commit is as durable as the store's level promises.
    pub fn commit(&self) -> Result<()> {
        if self.commit_deferred()? == Committed::NeedsSync {
            if let Some(w) = &self.wal {
                w.sync().map_err(|e| StoreError::Sync(e.to_string()))?;
            }
        }
        Ok(())
    }
}

/// The state owner's unit of work: one transaction per batch of requests, one savepoint per
/// request inside it (a refused request rolls back alone).
pub trait Batch {
    /// Opens the batch's transaction. Deferred: a batch that only reads or queues (a lock wait,
    /// a heartbeat) never takes the write lock and commits for free. The daemon's state owner is
    /// the only writer, so the upgrade to a write transaction cannot find the snapshot stale.
    fn begin(&self) -> Result<()>;

    /// Commits without waiting for the disk: with [`Durability::Full`] and a transaction that
    /// wrote, the caller must [`WalSync::sync`] before telling anyone the change happened. The
    /// daemon does that on its own thread while it serves the next batch.
    fn commit_deferred(&self) -> Result<Committed>;

    /// Abandons the open transaction, if any.
    fn rollback(&self);

    /// Starts a savepoint around one request.
    fn savepoint(&self) -> Result<()>;

    /// Keeps the request's changes (they commit with the batch).
    fn release_savepoint(&self) -> Result<()>;

    /// Undoes the request's changes.
    fn rollback_savepoint(&self) -> Result<()>;
}

impl Batch for Store {
    fn begin(&self) -> Result<()> {
        self.conn.prepare_cached("BEGIN")?.execute([])?;
        self.changes_at_begin.set(self.conn.total_changes());
        Ok(())
    }

    fn commit_deferred(&self) -> Result<Committed> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        let wrote = self.conn.total_changes() != self.changes_at_begin.get();
        self.wrote_last.set(wrote);
        Ok(if wrote && self.wal.is_some() {
            Committed::NeedsSync
        } else {
            Committed::Durable
        })
    }

    fn rollback(&self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    fn savepoint(&self) -> Result<()> {
        self.conn.prepare_cached("SAVEPOINT req")?.execute([])?;
        Ok(())
    }

    fn release_savepoint(&self) -> Result<()> {
        self.conn.prepare_cached("RELEASE req")?.execute([])?;
        Ok(())
    }

    fn rollback_savepoint(&self) -> Result<()> {
        self.conn.execute_batch("ROLLBACK TO req; RELEASE req")?;
        Ok(())
    }
}

/// Lifetime counters and the event log.
pub trait EventStore {
    /// A lifetime counter (completed, pruned, failed, claim).
    fn counter(&self, name: &str) -> Result<i64>;

    fn set_counter(&self, name: &str, value: i64) -> Result<()>;

    /// The newest event's id, 0 for an empty log.
    fn last_event_id(&self) -> Result<i64>;

    /// Writes one event of the log with the id its writer gave it.
    fn insert_event(&self, id: i64, at_ms: i64, kind: &str, data: &serde_json::Value)
        -> Result<()>;

    /// Events after `since`, oldest first; with `limit`, only the newest that many.
    /// Events after `since`, oldest first: the first `limit` of them, or with `newest` the last.
    fn events(
        &self,
        since: i64,
        limit: Option<u32>,
        newest: bool,
    ) -> Result<Vec<(i64, i64, String, serde_json::Value)>>;
}

impl EventStore for Store {
    fn counter(&self, name: &str) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM counters WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?
            .unwrap_or(0))
    }

    fn set_counter(&self, name: &str, value: i64) -> Result<()> {
        self.conn
            .prepare_cached("INSERT INTO counters (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = ?2")?
            .execute(params![name, value])?;
        Ok(())
    }

    fn last_event_id(&self) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached("SELECT coalesce(max(id), 0) FROM events")?
            .query_row([], |r| r.get(0))?)
    }

    fn insert_event(
        &self,
        id: i64,
        at_ms: i64,
        kind: &str,
        data: &serde_json::Value,
    ) -> Result<()> {
        self.conn
            .prepare_cached("INSERT INTO events (id, at_ms, kind, data) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![id, at_ms, kind, data.to_string()])?;
        Ok(())
    }

    fn events(
        &self,
        since: i64,
        limit: Option<u32>,
        newest: bool,
    ) -> Result<Vec<(i64, i64, String, serde_json::Value)>> {
        let mut st = self.conn.prepare_cached(if newest {
            "SELECT * FROM (SELECT id, at_ms, kind, data FROM events WHERE id > ?1 ORDER BY id DESC LIMIT ?2)
             ORDER BY id"
        } else {
            "SELECT id, at_ms, kind, data FROM events WHERE id > ?1 ORDER BY id LIMIT ?2"
        })?;
        let rows = st.query_map(params![since, limit.map(i64::from).unwrap_or(-1)], |r| {
            let data: String = r.get(3)?;
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
            ))
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    #[test]
    fn full_durability_asks_for_a_sync_only_when_the_transaction_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let full = Store::open(&dir.path().join("full.db"), Durability::Full).unwrap();
        full.begin().unwrap();
        full.set_counter("x", 1).unwrap();
        assert_eq!(full.commit_deferred().unwrap(), Committed::NeedsSync);
        full.wal_sync()
            .expect("a WalSync with Full")
            .sync()
            .unwrap();
        full.begin().unwrap();
        assert_eq!(full.counter("x").unwrap(), 1);
        assert_eq!(
            full.commit_deferred().unwrap(),
            Committed::Durable,
            "a read-only batch needs no fsync"
        );
        // The synchronous commit does the sync itself, and the row is there for a new connection.
        full.begin().unwrap();
        full.set_counter("x", 2).unwrap();
        full.commit().unwrap();
        drop(full);
        let again = Store::open(&dir.path().join("full.db"), Durability::Full).unwrap();
        assert_eq!(again.counter("x").unwrap(), 2);

        let normal = Store::open(&dir.path().join("normal.db"), Durability::Normal).unwrap();
        assert!(normal.wal_sync().is_none());
        normal.begin().unwrap();
        normal.set_counter("x", 1).unwrap();
        assert_eq!(normal.commit_deferred().unwrap(), Committed::Durable);
    }

    /// The writer's own checkpoint completes between its transactions even while the background
    /// checkpointer runs, the next write starts the WAL over (it stops growing), and a truncation
    /// empties it; nothing committed is lost.
    #[test]
    fn the_writers_checkpoint_keeps_the_wal_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        let s = Store::open(&path, Durability::Normal).unwrap();
        let _bg = Checkpointer::start(&path, std::time::Duration::from_millis(1)).unwrap();
        let body = "x".repeat(2000);
        let write = |n: i64| {
            for i in 0..n {
                s.begin().unwrap();
                s.insert_event(
                    s.last_event_id().unwrap() + 1,
                    i,
                    "broadcast",
                    &serde_json::json!({"b": body}),
                )
                .unwrap();
                s.commit().unwrap();
            }
        };
        write(2000);
        let grown = s.wal_len();
        assert!(grown > 1 << 20, "the WAL grew: {grown}");
        let mut complete = false;
        // The background pass holds the checkpoint lock now and then (every millisecond here):
        // the writer's attempt then says busy and is made again, as the owner does at its next batch.
        for _ in 0..400 {
            complete = s.checkpoint(CheckpointMode::Passive).unwrap().complete;
            if complete {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(
            complete,
            "between transactions the writer's checkpoint completes"
        );
        write(500);
        assert!(
            s.wal_len() <= grown,
            "the WAL started over instead of growing: {} then {}",
            grown,
            s.wal_len()
        );
        let mut truncated = false;
        for _ in 0..400 {
            truncated = s
                .checkpoint(CheckpointMode::Truncate(std::time::Duration::from_millis(
                    20,
                )))
                .unwrap()
                .complete;
            if truncated {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(truncated);
        assert_eq!(s.wal_len(), 0);
        drop(s);
        let again = Store::open(&path, Durability::Normal).unwrap();
        assert_eq!(again.last_event_id().unwrap(), 2500);
    }
}
