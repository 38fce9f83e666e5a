//! Held locks and the per-path fencing counters. Waiters are not stored: they are open requests
//! on live connections, and a restart ends those connections.

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
