//! kite-store-pg: the coordinator's durable state in PostgreSQL, for a team whose daemons on
//! several machines share one queue, one lock table and one cost ledger. It implements the same
//! domain-verb traits as the SQLite backend (`kite_store::Storage`), so the daemon's state owner
//! does not know which one it writes to; `[store] url = "postgres://..."` chooses this one.
//!
//! The guarantees are the SQLite backend's:
//! - **Group commit.** The owner groups a batch of requests into one transaction with a
//!   savepoint per request, and replies only after the COMMIT returned. With PostgreSQL's
//!   defaults (`fsync = on`, `synchronous_commit = on`) COMMIT returns once the WAL is flushed.
//! - **Fencing.** Ids and claim tokens never repeat: ids come from identity columns (sequences),
//!   counters are rows written in the batch that used them.
//! - **One writer.** A daemon writes only under the lease ([`lease`]): each batch reads the lease's
//!   epoch `FOR SHARE` in its own transaction and is refused when another daemon took over.
//!
//! The client is tokio-postgres, behind a synchronous face ([`conn::Conn`]) because the `Storage`
//! traits are synchronous: the state owner calls them one after another inside its batch.

pub mod cluster;
pub mod conn;
mod costs;
pub mod lease;
mod locks;
mod merge;
mod retention;
mod sessions;
mod tasks;

pub use conn::Conn;
pub(crate) use conn::P;
use kite_store::{Batch, Committed, Durable, EventStore, Storage, StoreError};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use tokio_postgres::{Row, Statement};

type Result<T> = std::result::Result<T, StoreError>;

const MIGRATIONS: &[&str] = &[include_str!("../migrations/0001_init.sql")];

/// Connects to `url`.
pub fn connect(url: &str) -> Result<Conn> {
    Conn::connect(url)
}

/// `url` without its password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Brings the schema up to date, numbered like the SQLite backend's migrations. Serialised with
/// an advisory lock so two daemons starting at once do not both apply one.
pub fn migrate(c: &Conn) -> Result<()> {
    c.batch("SELECT pg_advisory_lock(7268100)")?;
    let r = (|| -> Result<()> {
        c.batch("CREATE TABLE IF NOT EXISTS kite_schema (version INT NOT NULL)")?;
        let version: i32 = match c.query_opt("SELECT version FROM kite_schema", &[])? {
            Some(r) => r.get(0),
            None => {
                c.execute("INSERT INTO kite_schema (version) VALUES (0)", &[])?;
                0
            }
        };
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            c.batch("BEGIN")?;
            let applied = c
                .batch(sql)
                .map_err(|e| StoreError::Backend(format!("database migration {} failed: {e}", i + 1)))
                .and_then(|()| c.execute("UPDATE kite_schema SET version = $1", &[&((i + 1) as i32)]))
                .and_then(|_| c.batch("COMMIT"));
            if let Err(e) = applied {
                let _ = c.batch("ROLLBACK");
                return Err(e);
            }
            tracing::info!(migration = i + 1, "applied database migration");
        }
        Ok(())
    })();
    let _ = c.batch("SELECT pg_advisory_unlock(7268100)");
    r
}

/// An open connection to the team's database.
pub struct PgStore {
    client: Conn,
    /// Prepared statements by their text: each is prepared once per connection.
    stmts: RefCell<HashMap<String, Statement>>,
    /// The lease epoch this store writes under (`None`: no lease is checked, for tests).
    epoch: Option<i64>,
    /// Whether the open transaction wrote anything (for the owner's upkeep).
    wrote: Cell<bool>,
    in_tx: Cell<bool>,
}

impl PgStore {
    /// Connects to `url` and brings the schema up to date. Writes are checked against the
    /// lease's `epoch` when one is given (see [`lease::Lease`]).
    pub fn open(url: &str, epoch: Option<i64>) -> Result<PgStore> {
        let client = connect(url)?;
        migrate(&client)?;
        Ok(PgStore { client, stmts: RefCell::default(), epoch, wrote: Cell::new(false), in_tx: Cell::new(false) })
    }

    fn stmt(&self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.stmts.borrow().get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.stmts.borrow_mut().insert(sql.to_string(), s.clone());
        Ok(s)
    }

    pub(crate) fn query(&self, sql: &str, params: &[P<'_>]) -> Result<Vec<Row>> {
        let st = self.stmt(sql)?;
        self.client.query(&st, params)
    }

    pub(crate) fn opt(&self, sql: &str, params: &[P<'_>]) -> Result<Option<Row>> {
        let st = self.stmt(sql)?;
        self.client.query_opt(&st, params)
    }

    pub(crate) fn one(&self, sql: &str, params: &[P<'_>]) -> Result<Row> {
        let st = self.stmt(sql)?;
        self.client.query_one(&st, params)
    }

    pub(crate) fn exec(&self, sql: &str, params: &[P<'_>]) -> Result<u64> {
        let st = self.stmt(sql)?;
        let n = self.client.execute(&st, params)?;
        self.wrote.set(true);
        Ok(n)
    }

    fn simple(&self, sql: &str) -> Result<()> {
        self.client.batch(sql)
    }

    /// The epoch this store writes under (0 without a lease).
    pub(crate) fn epoch(&self) -> i64 {
        self.epoch.unwrap_or(0)
    }
}

impl Batch for PgStore {
    fn begin(&self) -> Result<()> {
        self.simple("BEGIN")?;
        self.in_tx.set(true);
        self.wrote.set(false);
        if let Some(mine) = self.epoch {
            // FOR SHARE: a take-over (which updates the row) waits for this batch to end, and
            // this batch cannot begin after a take-over committed.
            let current: i64 = self.one("SELECT epoch FROM lease WHERE id = 1 FOR SHARE", &[])?.get(0);
            if current != mine {
                self.rollback();
                return Err(StoreError::Deposed { mine, current });
            }
        }
        Ok(())
    }

    fn commit_deferred(&self) -> Result<Committed> {
        self.simple("COMMIT")?;
        self.in_tx.set(false);
        // COMMIT returned: with synchronous_commit = on the WAL record is flushed.
        Ok(Committed::Durable)
    }

    fn rollback(&self) {
        if self.in_tx.replace(false) {
            let _ = self.simple("ROLLBACK");
        }
    }

    fn savepoint(&self) -> Result<()> {
        self.simple("SAVEPOINT req")
    }

    fn release_savepoint(&self) -> Result<()> {
        self.simple("RELEASE SAVEPOINT req")
    }

    fn rollback_savepoint(&self) -> Result<()> {
        self.simple("ROLLBACK TO SAVEPOINT req; RELEASE SAVEPOINT req")
    }
}

impl EventStore for PgStore {
    fn counter(&self, name: &str) -> Result<i64> {
        Ok(self.opt("SELECT value FROM counters WHERE name = $1", &[&name])?.map_or(0, |r| r.get(0)))
    }

    fn set_counter(&self, name: &str, value: i64) -> Result<()> {
        self.exec("INSERT INTO counters (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value", &[&name, &value])?;
        Ok(())
    }

    fn last_event_id(&self) -> Result<i64> {
        Ok(self.one("SELECT coalesce(max(id), 0)::bigint FROM events", &[])?.get(0))
    }

    fn insert_event(&self, id: i64, at_ms: i64, kind: &str, data: &serde_json::Value) -> Result<()> {
        self.exec("INSERT INTO events (id, at_ms, kind, data) VALUES ($1, $2, $3, $4)", &[&id, &at_ms, &kind, &data.to_string()])?;
        Ok(())
    }

    fn events(&self, since: i64, limit: Option<u32>, newest: bool) -> Result<Vec<(i64, i64, String, serde_json::Value)>> {
        let limit = limit.map(i64::from);
        let sql = if newest {
            "SELECT * FROM (SELECT id, at_ms, kind, data FROM events WHERE id > $1 ORDER BY id DESC LIMIT $2) e ORDER BY id"
        } else {
            "SELECT id, at_ms, kind, data FROM events WHERE id > $1 ORDER BY id LIMIT $2"
        };
        Ok(self
            .query(sql, &[&since, &limit])?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), serde_json::from_str(r.get::<_, &str>(3)).unwrap_or(serde_json::Value::Null)))
            .collect())
    }
}

impl Storage for PgStore {
    fn durable(&self) -> Option<std::sync::Arc<dyn Durable>> {
        // Every COMMIT is durable when it returns; nothing is deferred.
        None
    }

    fn after_batch(&self, _quiet: bool) {}
}

/// A count as the database stores it (clamped: no count gets past i64::MAX).
pub(crate) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
