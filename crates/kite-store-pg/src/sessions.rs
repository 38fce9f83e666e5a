//! Sessions as registered, ended or reaped, on PostgreSQL. Liveness (heartbeats) stays in the
//! active daemon's memory; a daemon taking over gives every live session a fresh timeout, as a
//! restart does, and the sessions whose agents are gone are reaped when it runs out.

use crate::{own, PgStore, Result};
use kite_store::{SessionRow, SessionStore};
use tokio_postgres::Row;

fn row(r: &Row) -> SessionRow {
    SessionRow { id: r.get(0), name: r.get(1), state: r.get(2), registered_at_ms: r.get(3), key: r.get(4) }
}

impl SessionStore for PgStore {
    fn insert_session(&self, id: &str, name: &str, key: Option<&str>, now_ms: i64) -> Result<()> {
        self.send(
            "INSERT INTO sessions (id, name, state, registered_at_ms, key) VALUES ($1, $2, 'live', $3, $4)",
            vec![own(id.to_string()), own(name.to_string()), own(now_ms), own(key.map(str::to_string))],
        )?;
        Ok(())
    }

    fn rename_session(&self, id: &str, name: &str) -> Result<()> {
        self.send("UPDATE sessions SET name = $2 WHERE id = $1", vec![own(id.to_string()), own(name.to_string())])?;
        Ok(())
    }

    fn set_session_state(&self, id: &str, state: &str, now_ms: i64) -> Result<()> {
        self.send("UPDATE sessions SET state = $2, ended_at_ms = $3 WHERE id = $1", vec![own(id.to_string()), own(state.to_string()), own(now_ms)])?;
        Ok(())
    }

    fn session(&self, id: &str) -> Result<Option<SessionRow>> {
        Ok(self.opt("SELECT id, name, state, registered_at_ms, key FROM sessions WHERE id = $1", &[&id])?.as_ref().map(row))
    }

    fn sessions(&self, live_only: bool) -> Result<Vec<SessionRow>> {
        Ok(self
            .query("SELECT id, name, state, registered_at_ms, key FROM sessions WHERE (NOT $1 OR state = 'live') ORDER BY registered_at_ms, id", &[&live_only])?
            .iter()
            .map(row)
            .collect())
    }
}
