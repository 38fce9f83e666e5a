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
mod tokens;

pub use conn::Conn;
pub(crate) use conn::{db, P};
use kite_store::{Batch, Committed, Durable, EventStore, Storage, StoreError};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

/// A parameter the store owns, for a statement sent now and read later ([`PgStore::send`]).
pub(crate) type Owned = Box<dyn ToSql + Sync + Send>;

/// Owns a parameter for [`PgStore::send`].
pub(crate) fn own<T: ToSql + Sync + Send + 'static>(v: T) -> Owned {
    Box::new(v)
}

/// A statement sent and not yet answered.
type InFlight = Pin<Box<dyn Future<Output = std::result::Result<(), tokio_postgres::Error>> + Send>>;

type Result<T> = std::result::Result<T, StoreError>;

const MIGRATIONS: &[&str] = &[include_str!("../migrations/0001_init.sql"), include_str!("../migrations/0002_tokens.sql")];

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
///
/// Writes whose result the owner does not read (a history row, an event, a status change) are
/// pipelined: [`PgStore::send`] puts the statement on the wire and returns, and the next read,
/// savepoint or commit waits for every answer before it goes on. PostgreSQL runs one
/// connection's statements in order, so a read sees every write sent before it, and an error of
/// a sent write fails the request that sent it (its savepoint is released only after the
/// answers came). A request then costs one round trip per read, not one per statement.
pub struct PgStore {
    client: Conn,
    /// Prepared statements by their text: each is prepared once per connection.
    stmts: RefCell<HashMap<String, Statement>>,
    /// The lease epoch this store writes under (`None`: no lease is checked, for tests).
    epoch: Option<i64>,
    /// Whether the open transaction wrote anything (for the owner's upkeep).
    wrote: Cell<bool>,
    in_tx: Cell<bool>,
    /// Statements sent and not yet answered.
    in_flight: RefCell<Vec<InFlight>>,
    /// The server reported an error in this transaction that no savepoint rollback undid:
    /// PostgreSQL then answers COMMIT by rolling back, without an error, so the commit is
    /// refused here instead.
    poisoned: Cell<bool>,
    /// Savepoints open. The owner undoes a refused request with a savepoint rollback even when
    /// the request was refused before its savepoint (a frame that is no request): in PostgreSQL a
    /// rollback to no savepoint is an error that aborts the whole transaction, so it is not sent.
    savepoints: Cell<usize>,
}

impl PgStore {
    /// Connects to `url` and brings the schema up to date. Writes are checked against the
    /// lease's `epoch` when one is given (see [`lease::Lease`]).
    pub fn open(url: &str, epoch: Option<i64>) -> Result<PgStore> {
        let client = connect(url)?;
        migrate(&client)?;
        Ok(PgStore { client, stmts: RefCell::default(), epoch, wrote: Cell::new(false), in_tx: Cell::new(false), in_flight: RefCell::default(), poisoned: Cell::new(false), savepoints: Cell::new(0) })
    }

    fn stmt(&self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.stmts.borrow().get(sql) {
            return Ok(s.clone());
        }
        // A statement the server cannot prepare aborts the transaction too.
        let s = self.seen(self.client.prepare(sql))?;
        self.stmts.borrow_mut().insert(sql.to_string(), s.clone());
        Ok(s)
    }

    /// Notes an error the server reported in the open transaction.
    fn seen<T>(&self, r: Result<T>) -> Result<T> {
        if r.is_err() && self.in_tx.get() {
            self.poisoned.set(true);
        }
        r
    }

    /// Writes go only into the batch's transaction (a batch that could not begin writes nothing).
    fn in_batch(&self) -> Result<()> {
        if self.in_tx.get() {
            Ok(())
        } else {
            Err(StoreError::Backend("no transaction is open (the batch could not begin): nothing is written".into()))
        }
    }

    /// Sends a write and returns without waiting for its answer (see the type's docs).
    pub(crate) fn send(&self, sql: &str, params: Vec<Owned>) -> Result<()> {
        self.in_batch()?;
        let st = self.stmt(sql)?;
        let client = self.client.shared();
        self.wrote.set(true);
        self.defer(Box::pin(async move { client.execute_raw(&st, params).await.map(|_| ()) }))
    }

    /// Sends a statement without parameters and returns without waiting for its answer.
    fn send_simple(&self, sql: &'static str) -> Result<()> {
        let client = self.client.shared();
        self.defer(Box::pin(async move { client.batch_execute(sql).await }))
    }

    /// Polls `f` once, which puts its request on the wire, and keeps it until the next
    /// [`PgStore::settle`].
    fn defer(&self, mut f: InFlight) -> Result<()> {
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(r) => r.map_err(db),
            std::task::Poll::Pending => {
                self.in_flight.borrow_mut().push(f);
                Ok(())
            }
        }
    }

    /// Waits for the answer to every statement sent; the first error, if any.
    fn settle(&self) -> Result<()> {
        let sent = std::mem::take(&mut *self.in_flight.borrow_mut());
        if sent.is_empty() {
            return Ok(());
        }
        let answers = self.client.drive(futures::future::join_all(sent));
        self.seen(answers.into_iter().find_map(|r| r.err()).map_or(Ok(()), |e| Err(db(e))))
    }

    /// A read: sent behind the writes in flight (one round trip for all of them), answered
    /// after them.
    fn read<T>(&self, f: impl Future<Output = std::result::Result<T, tokio_postgres::Error>>) -> Result<T> {
        let mut f = std::pin::pin!(f);
        let waker = futures::task::noop_waker();
        // Polled once, the read is queued behind the writes in flight: the settle below puts
        // them all on the wire at once.
        let first = f.as_mut().poll(&mut std::task::Context::from_waker(&waker));
        let settled = self.settle();
        let r = match first {
            std::task::Poll::Ready(r) => r,
            std::task::Poll::Pending => self.client.drive(f),
        };
        // A write that failed aborted the transaction: its error is the cause.
        settled?;
        self.seen(r.map_err(db))
    }

    pub(crate) fn query(&self, sql: &str, params: &[P<'_>]) -> Result<Vec<Row>> {
        let st = self.stmt(sql)?;
        self.read(self.client.raw().query(&st, params))
    }

    pub(crate) fn opt(&self, sql: &str, params: &[P<'_>]) -> Result<Option<Row>> {
        let st = self.stmt(sql)?;
        self.read(self.client.raw().query_opt(&st, params))
    }

    pub(crate) fn one(&self, sql: &str, params: &[P<'_>]) -> Result<Row> {
        if !sql.trim_start().starts_with("SELECT") {
            // INSERT ... RETURNING
            self.in_batch()?;
        }
        let st = self.stmt(sql)?;
        self.read(self.client.raw().query_one(&st, params))
    }

    pub(crate) fn exec(&self, sql: &str, params: &[P<'_>]) -> Result<u64> {
        self.in_batch()?;
        self.settle()?;
        let st = self.stmt(sql)?;
        let n = self.seen(self.client.execute(&st, params))?;
        self.wrote.set(true);
        Ok(n)
    }

    fn simple(&self, sql: &str) -> Result<()> {
        self.settle()?;
        self.seen(self.client.batch(sql))
    }

    /// The epoch this store writes under (0 without a lease).
    pub(crate) fn epoch(&self) -> i64 {
        self.epoch.unwrap_or(0)
    }
}

impl Batch for PgStore {
    fn begin(&self) -> Result<()> {
        self.settle()?;
        self.send_simple("BEGIN")?;
        self.in_tx.set(true);
        self.poisoned.set(false);
        self.savepoints.set(0);
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
        if self.poisoned.get() {
            self.rollback();
            return Err(StoreError::Backend("the transaction failed (see the error before): nothing of this batch was committed".into()));
        }
        // Behind the batch's last writes, in the same round trip.
        let committed = self.read(self.client.raw().batch_execute("COMMIT"));
        if committed.is_err() {
            self.rollback();
        }
        committed?;
        self.in_tx.set(false);
        // COMMIT returned: with synchronous_commit = on the WAL record is flushed.
        Ok(Committed::Durable)
    }

    fn rollback(&self) {
        // What was sent is undone with the transaction; its answers are not wanted.
        let _ = self.settle();
        self.savepoints.set(0);
        if self.in_tx.replace(false) {
            let _ = self.simple("ROLLBACK");
        }
    }

    fn savepoint(&self) -> Result<()> {
        self.send_simple("SAVEPOINT req")?;
        self.savepoints.set(self.savepoints.get() + 1);
        Ok(())
    }

    fn release_savepoint(&self) -> Result<()> {
        // The request's writes must have succeeded before it counts as done.
        self.settle()?;
        self.send_simple("RELEASE SAVEPOINT req")?;
        self.savepoints.set(self.savepoints.get().saturating_sub(1));
        Ok(())
    }

    fn rollback_savepoint(&self) -> Result<()> {
        if self.savepoints.get() == 0 {
            return Ok(());
        }
        self.savepoints.set(self.savepoints.get() - 1);
        // The request failed: the errors of what it sent are why, and are undone here.
        let _ = self.settle();
        self.simple("ROLLBACK TO SAVEPOINT req; RELEASE SAVEPOINT req")?;
        // Back to where the request began: whatever the server refused inside it is undone.
        self.poisoned.set(false);
        Ok(())
    }
}

impl EventStore for PgStore {
    fn counter(&self, name: &str) -> Result<i64> {
        Ok(self.opt("SELECT value FROM counters WHERE name = $1", &[&name])?.map_or(0, |r| r.get(0)))
    }

    fn set_counter(&self, name: &str, value: i64) -> Result<()> {
        self.send("INSERT INTO counters (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value", vec![own(name.to_string()), own(value)])?;
        Ok(())
    }

    fn last_event_id(&self) -> Result<i64> {
        Ok(self.one("SELECT coalesce(max(id), 0)::bigint FROM events", &[])?.get(0))
    }

    fn insert_event(&self, id: i64, at_ms: i64, kind: &str, data: &serde_json::Value) -> Result<()> {
        self.send("INSERT INTO events (id, at_ms, kind, data) VALUES ($1, $2, $3, $4)", vec![own(id), own(at_ms), own(kind.to_string()), own(data.to_string())])?;
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
