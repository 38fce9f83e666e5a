//! Held locks, the per-path fencing counters, and the waits with when they queued. A wait is an
//! open request on a live connection, which a restart ends; its row keeps its place for its
//! client to take back when it asks again (kite_core::locks::LockTable::restore_waits), so that
//! waiters keep their first-come order across a restart or a take-over.

use crate::{Result, Store, StoreError};
use kite_core::locks::Held;
use kite_core::{LockMode, LockPath};
use rusqlite::params;
use std::collections::HashMap;

/// Held locks and the fencing counters per path.
pub trait LockStore {
    /// Records a grant and advances the path's fencing counter.
    fn insert_lock(&self, path: &str, session: &str, mode: LockMode, token: u64, now_ms: i64) -> Result<()>;

    fn delete_lock(&self, path: &str, session: &str) -> Result<()>;

    fn delete_locks_of(&self, session: &str) -> Result<()>;

    /// Everything needed to rebuild the lock table: holders in grant order and the counters.
    fn load_locks(&self) -> Result<(Vec<Held>, HashMap<String, u64>)>;

    /// Records a queued request with when it queued (a request asked again keeps its time).
    fn insert_wait(&self, path: &str, session: &str, mode: LockMode, since_ms: i64) -> Result<()>;

    /// The request of `session` for `path` waits no more (granted, withdrawn, timed out).
    fn delete_wait(&self, path: &str, session: &str) -> Result<()>;

    fn delete_waits_of(&self, session: &str) -> Result<()>;

    /// The recorded waits, first come first.
    fn load_waits(&self) -> Result<Vec<(LockPath, LockMode, String)>>;
}

impl LockStore for Store {
    fn insert_lock(&self, path: &str, session: &str, mode: LockMode, token: u64, now_ms: i64) -> Result<()> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO locks (path, session, mode, token, granted_ms) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![path, session, mode.as_str(), token as i64, now_ms])?;
        self.conn
            .prepare_cached(
                "INSERT INTO lock_tokens (path, last) VALUES (?1, ?2)
                 ON CONFLICT (path) DO UPDATE SET last = max(last, ?2)",
            )?
            .execute(params![path, token as i64])?;
        Ok(())
    }

    fn delete_lock(&self, path: &str, session: &str) -> Result<()> {
        self.conn.prepare_cached("DELETE FROM locks WHERE path = ?1 AND session = ?2")?.execute(params![path, session])?;
        Ok(())
    }

    fn delete_locks_of(&self, session: &str) -> Result<()> {
        self.conn.prepare_cached("DELETE FROM locks WHERE session = ?1")?.execute([session])?;
        Ok(())
    }

    fn insert_wait(&self, path: &str, session: &str, mode: LockMode, since_ms: i64) -> Result<()> {
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO lock_waits (path, session, mode, since_ms) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![path, session, mode.as_str(), since_ms])?;
        Ok(())
    }

    fn delete_wait(&self, path: &str, session: &str) -> Result<()> {
        self.conn.prepare_cached("DELETE FROM lock_waits WHERE path = ?1 AND session = ?2")?.execute([path, session])?;
        Ok(())
    }

    fn delete_waits_of(&self, session: &str) -> Result<()> {
        self.conn.prepare_cached("DELETE FROM lock_waits WHERE session = ?1")?.execute([session])?;
        Ok(())
    }

    fn load_waits(&self) -> Result<Vec<(LockPath, LockMode, String)>> {
        let mut st = self.conn.prepare_cached("SELECT path, mode, session FROM lock_waits ORDER BY since_ms, rowid")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (path, mode, session) = row?;
            let mode = LockMode::parse(&mode).ok_or_else(|| StoreError::Corrupt(format!("lock mode '{mode}'")))?;
            let path = LockPath::from_normalized(&path).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            out.push((path, mode, session));
        }
        Ok(out)
    }

    fn load_locks(&self) -> Result<(Vec<Held>, HashMap<String, u64>)> {
        let mut st = self.conn.prepare_cached("SELECT path, session, mode, token FROM locks ORDER BY granted_ms, token")?;
        let rows = st.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?))
        })?;
        let mut held = Vec::new();
        for row in rows {
            let (path, session, mode, token) = row?;
            let mode = LockMode::parse(&mode).ok_or_else(|| StoreError::Corrupt(format!("lock mode '{mode}'")))?;
            let path = LockPath::from_normalized(&path).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            held.push(Held { path, mode, session, token: token as u64 });
        }
        let mut st = self.conn.prepare_cached("SELECT path, last FROM lock_tokens")?;
        let tokens = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?
            .collect::<std::result::Result<_, _>>()?;
        Ok((held, tokens))
    }
}
