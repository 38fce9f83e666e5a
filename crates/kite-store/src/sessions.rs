//! Sessions: who registered, and whether they are live, ended or reaped. Heartbeats are not
//! written here: they change every few seconds and matter only while the daemon runs; after a
//! restart every live session gets a fresh timeout.

use crate::{Result, Store};
use rusqlite::{params, OptionalExtension};

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: String,
    pub name: String,
    pub state: String,
    pub registered_at_ms: i64,
    /// Set by a registration that named its agent process (see `session.register`'s `key`).
    pub key: Option<String>,
}

/// Sessions as registered, ended or reaped.
pub trait SessionStore {
    fn insert_session(&self, id: &str, name: &str, key: Option<&str>, now_ms: i64) -> Result<()>;

    fn rename_session(&self, id: &str, name: &str) -> Result<()>;

    fn set_session_state(&self, id: &str, state: &str, now_ms: i64) -> Result<()>;

    /// One session by id.
    fn session(&self, id: &str) -> Result<Option<SessionRow>>;

    /// All sessions, oldest first; `live_only` for the ones the reaper watches.
    fn sessions(&self, live_only: bool) -> Result<Vec<SessionRow>>;
}

impl SessionStore for Store {
    fn insert_session(&self, id: &str, name: &str, key: Option<&str>, now_ms: i64) -> Result<()> {
        self.conn
            .prepare_cached("INSERT INTO sessions (id, name, state, registered_at_ms, key) VALUES (?1, ?2, 'live', ?3, ?4)")?
            .execute(params![id, name, now_ms, key])?;
        Ok(())
    }

    fn rename_session(&self, id: &str, name: &str) -> Result<()> {
        self.conn.prepare_cached("UPDATE sessions SET name = ?2 WHERE id = ?1")?.execute(params![id, name])?;
        Ok(())
    }

    fn set_session_state(&self, id: &str, state: &str, now_ms: i64) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE sessions SET state = ?2, ended_at_ms = ?3 WHERE id = ?1")?
            .execute(params![id, state, now_ms])?;
        Ok(())
    }

    fn session(&self, id: &str) -> Result<Option<SessionRow>> {
        Ok(self
            .conn
            .prepare_cached("SELECT id, name, state, registered_at_ms, key FROM sessions WHERE id = ?1")?
            .query_row([id], |r| {
                Ok(SessionRow { id: r.get(0)?, name: r.get(1)?, state: r.get(2)?, registered_at_ms: r.get(3)?, key: r.get(4)? })
            })
            .optional()?)
    }

    fn sessions(&self, live_only: bool) -> Result<Vec<SessionRow>> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, name, state, registered_at_ms, key FROM sessions WHERE (?1 = 0 OR state = 'live') ORDER BY registered_at_ms, id",
        )?;
        let rows = st.query_map([live_only as i64], |r| {
            Ok(SessionRow { id: r.get(0)?, name: r.get(1)?, state: r.get(2)?, registered_at_ms: r.get(3)?, key: r.get(4)? })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }
}
