//! Held locks and the per-path fencing counters, on PostgreSQL. Every grant and release is also
//! appended to `lock_history` with the epoch of the daemon that made it: the database's own
//! record, from which anyone can check that no exclusive lock was ever held twice, across
//! take-overs included.

use crate::{own, PgStore, Result};
use kite_core::locks::Held;
use kite_core::{LockMode, LockPath};
use kite_store::{LockStore, StoreError};
use std::collections::HashMap;

const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

impl LockStore for PgStore {
    fn insert_lock(&self, path: &str, session: &str, mode: LockMode, token: u64, now_ms: i64) -> Result<()> {
        let token = token as i64;
        // One statement (the lock, its fencing counter and its history row): a lock hand-off's
        // batch is short, and each statement is a step of the server's.
        self.send(
            "WITH held AS (INSERT INTO locks (path, session, mode, token, granted_ms) VALUES ($1, $2, $3, $4, $5)
                           ON CONFLICT (path, session, mode) DO UPDATE SET token = excluded.token, granted_ms = excluded.granted_ms),
                  fenced AS (INSERT INTO lock_tokens (path, last) VALUES ($1, $4)
                             ON CONFLICT (path) DO UPDATE SET last = GREATEST(lock_tokens.last, excluded.last))
             INSERT INTO lock_history (path, session, mode, token, epoch, event, at_ms) VALUES ($1, $2, $3, $4, $6, 'grant', $5)",
            vec![own(path.to_string()), own(session.to_string()), own(mode.as_str().to_string()), own(token), own(now_ms), own(self.epoch())],
        )?;
        Ok(())
    }

    fn delete_lock(&self, path: &str, session: &str) -> Result<()> {
        self.send(
            &format!(
                "WITH gone AS (DELETE FROM locks WHERE path = $1 AND session = $2 RETURNING path, session, mode, token)
                 INSERT INTO lock_history (path, session, mode, token, epoch, event, at_ms)
                 SELECT path, session, mode, token, $3, 'release', {NOW_MS} FROM gone"
            ),
            vec![own(path.to_string()), own(session.to_string()), own(self.epoch())],
        )?;
        Ok(())
    }

    fn delete_locks_of(&self, session: &str) -> Result<()> {
        self.send(
            &format!(
                "WITH gone AS (DELETE FROM locks WHERE session = $1 RETURNING path, session, mode, token)
                 INSERT INTO lock_history (path, session, mode, token, epoch, event, at_ms)
                 SELECT path, session, mode, token, $2, 'release', {NOW_MS} FROM gone"
            ),
            vec![own(session.to_string()), own(self.epoch())],
        )?;
        Ok(())
    }

    fn insert_wait(&self, path: &str, session: &str, mode: LockMode, since_ms: i64) -> Result<()> {
        // No reply waits for it (the request is queued), so its batch needs no flush of its own:
        // a wait lost to a crash before the next flush is asked again and queues at the end.
        self.send_lazy(
            "INSERT INTO lock_waits (path, session, mode, since_ms) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            vec![own(path.to_string()), own(session.to_string()), own(mode.as_str().to_string()), own(since_ms)],
        )
    }

    fn delete_wait(&self, path: &str, session: &str) -> Result<()> {
        self.send("DELETE FROM lock_waits WHERE path = $1 AND session = $2", vec![own(path.to_string()), own(session.to_string())])
    }

    fn delete_waits_of(&self, session: &str) -> Result<()> {
        self.send("DELETE FROM lock_waits WHERE session = $1", vec![own(session.to_string())])
    }

    fn load_waits(&self) -> Result<Vec<(LockPath, LockMode, String)>> {
        let mut out = Vec::new();
        for r in self.query("SELECT path, mode, session FROM lock_waits ORDER BY since_ms, seq", &[])? {
            let mode: &str = r.get(1);
            let mode = LockMode::parse(mode).ok_or_else(|| StoreError::Corrupt(format!("lock mode '{mode}'")))?;
            let path = LockPath::from_normalized(r.get(0)).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            out.push((path, mode, r.get(2)));
        }
        Ok(out)
    }

    fn load_locks(&self) -> Result<(Vec<Held>, HashMap<String, u64>)> {
        let mut held = Vec::new();
        for r in self.query("SELECT path, session, mode, token FROM locks ORDER BY granted_ms, token", &[])? {
            let mode: &str = r.get(2);
            let mode = LockMode::parse(mode).ok_or_else(|| StoreError::Corrupt(format!("lock mode '{mode}'")))?;
            let path = LockPath::from_normalized(r.get(0)).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            held.push(Held { path, mode, session: r.get(1), token: r.get::<_, i64>(3) as u64 });
        }
        let tokens = self.query("SELECT path, last FROM lock_tokens", &[])?.iter().map(|r| (r.get(0), r.get::<_, i64>(1) as u64)).collect();
        Ok((held, tokens))
    }
}
