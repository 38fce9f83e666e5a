//! kite-store-pg: the coordinator's durable state in PostgreSQL, for a team whose daemons on
//! several machines share one queue, one lock table and one cost ledger. It implements the same
//! domain-verb traits as the SQLite backend (`kite_store::Storage`), so the daemon's state owner
//! does not know which one it writes to; `[store] url = "postgres://..."` chooses this one.
//!
//! The guarantees are the SQLite backend's:
//! - **Group commit.** The owner groups a batch of requests into one transaction with a
//!   savepoint per request, and replies only once its COMMIT is on disk: the batches commit
//!   without waiting for the disk, and a second connection's synchronous commit flushes the WAL
//!   past a group of them before their replies go ([`sync`], pipelined as with SQLite's
//!   `--sync full`).
//! - **Fencing.** Ids and claim tokens never repeat: ids come from identity columns (sequences),
//!   counters are rows written in the batch that used them.
//! - **One writer.** A daemon writes only under the lease ([`lease`]): each batch reads the lease's
//!   epoch `FOR SHARE` in its own transaction and is refused when another daemon took over.
//!
//! The client is tokio-postgres, behind a synchronous face ([`conn::Conn`]) because the `Storage`
//! traits are synchronous: the state owner calls them one after another inside its batch.

mod cache;
pub mod cluster;
pub mod conn;
mod costs;
pub mod lease;
mod locks;
mod merge;
mod retention;
mod sessions;
pub mod sync;
mod tasks;
mod tokens;
mod writes;

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
type InFlight = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

type Result<T> = std::result::Result<T, StoreError>;

const MIGRATIONS: &[&str] = &[include_str!("../migrations/0001_init.sql"), include_str!("../migrations/0002_tokens.sql"), include_str!("../migrations/0003_sync.sql")];

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
/// A round trip to the server costs more than the server's work on a busy machine, so a batch
/// makes as few as it can:
/// - **Writes are held, then pipelined.** A request's writes wait in memory until it ends: a
///   refused request's are dropped without a word to the server, and a kept one's are sent
///   without waiting for their answers. Only when a read needs them on the server first is a
///   savepoint opened and the request's writes sent ahead of it.
/// - **Reads the daemon makes most come from memory**: the open tasks ([`cache`]) and the task
///   ids, taken from their sequence in blocks.
/// - **The lease's epoch is checked in the batch's transaction**, sent behind `BEGIN` and read
///   before `COMMIT` is sent.
///
/// So a batch of creates, claims and finishes costs one round trip, its COMMIT. PostgreSQL runs
/// one connection's statements in order, so a read sees every write sent before it.
///
/// Errors: any error the server reports, or a write that finds a row otherwise than the cache
/// said, fails the whole batch (every request in it gets the error; nothing of it commits).
/// A refused request (refused by the daemon's own checks, before any error) is undone alone.
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
    /// A batch's statements and COMMIT not waited for: it wrote only what needs no answer
    /// before anyone is told (a recorded lock wait). Their answers are read with the next
    /// batch's, and an error is logged: nothing was promised on them.
    trailing: RefCell<Vec<InFlight>>,
    /// The server reported an error in this transaction (or a write found its row changed).
    /// PostgreSQL answers COMMIT of a failed transaction by rolling back, without an error, so
    /// the commit is refused here instead.
    poisoned: Cell<bool>,
    /// The epoch check found another daemon's lease: this batch must not commit.
    deposed: Cell<Option<(i64, i64)>>,
    /// The savepoints open (one per request), innermost last, with the writes they hold.
    frames: RefCell<Vec<Frame>>,
    /// Writes of requests that ended, not yet sent (see [`writes`]).
    ready: RefCell<Vec<Write>>,
    cache: RefCell<cache::TaskCache>,
    /// Task ids taken from the sequence and not yet used.
    ids: RefCell<std::collections::VecDeque<i64>>,
    /// The connection whose commits make the batches' commits durable ([`sync`]).
    durable: std::sync::Arc<sync::PgSync>,
    /// More requests wait behind this batch: its commit leaves the flush to the syncer.
    busy: Cell<bool>,
    /// The open batch's BEGIN went to the server (with its first statement).
    begun: Cell<bool>,
    /// The open batch wrote something that needs no flush of its own ([`PgStore::send_lazy`]).
    lazy: Cell<bool>,
    /// A batch not waited for found another daemon's lease.
    deposed_late: Cell<Option<(i64, i64)>>,
}

use writes::Write;

/// One open savepoint.
#[derive(Default)]
struct Frame {
    held: Vec<Write>,
    /// Whether `SAVEPOINT` went to the server (a read needed this request's writes there).
    opened: bool,
}

/// Writes of ended requests sent as one group once this many wait (before that, at the next
/// read or the commit).
const READY_MAX: usize = 64;

/// How many task ids one trip to the sequence takes.
const ID_BLOCK: i64 = 64;

impl PgStore {
    /// Connects to `url` and brings the schema up to date. Writes are checked against the
    /// lease's `epoch` when one is given (see [`lease::Lease`]).
    pub fn open(url: &str, epoch: Option<i64>) -> Result<PgStore> {
        let client = connect(url)?;
        migrate(&client)?;
        // The batches' commits do not wait for the disk; the replies do (see [`sync`]).
        client.batch("SET synchronous_commit = off")?;
        let durable = std::sync::Arc::new(sync::PgSync::open(url)?);
        Ok(PgStore {
            durable,
            busy: Cell::new(false),
            begun: Cell::new(false),
            lazy: Cell::new(false),
            deposed_late: Cell::new(None),
            client,
            stmts: RefCell::default(),
            epoch,
            wrote: Cell::new(false),
            in_tx: Cell::new(false),
            in_flight: RefCell::default(),
            trailing: RefCell::default(),
            poisoned: Cell::new(false),
            deposed: Cell::new(None),
            frames: RefCell::default(),
            ready: RefCell::default(),
            cache: RefCell::default(),
            ids: RefCell::default(),
        })
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

    /// Notes an error in the open transaction: the batch will not commit.
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

    /// A write whose result is not read: held with the request, then pipelined.
    pub(crate) fn send(&self, sql: &str, params: Vec<Owned>) -> Result<()> {
        self.in_batch()?;
        let st = self.stmt(sql)?;
        self.hold(Write::Plain { st, params })
    }

    /// A write that needs no flush of its own: it commits with its batch and is on disk with
    /// the next flush (a recorded lock wait: nobody is told anything when it is written).
    pub(crate) fn send_lazy(&self, sql: &str, params: Vec<Owned>) -> Result<()> {
        self.in_batch()?;
        let st = self.stmt(sql)?;
        self.lazy.set(true);
        self.put(Write::Plain { st, params })
    }

    /// Holds a write with the open request (or the batch, between requests).
    pub(crate) fn hold(&self, w: Write) -> Result<()> {
        self.in_batch()?;
        self.wrote.set(true);
        self.put(w)
    }

    fn put(&self, w: Write) -> Result<()> {
        match self.frames.borrow_mut().last_mut() {
            Some(f) => f.held.push(w),
            None => self.ready.borrow_mut().push(w),
        }
        Ok(())
    }

    /// Sends writes as few statements as their order allows ([`writes::coalesce`]), without
    /// waiting for the answers.
    fn send_writes(&self, ws: Vec<Write>) -> Result<()> {
        if ws.is_empty() {
            return Ok(());
        }
        for out in writes::coalesce(ws) {
            let (st, params) = match out {
                writes::Out::Prepared(st, params) => (st, params),
                writes::Out::Text(sql, params) => (self.stmt(sql)?, params),
            };
            let client = self.client.shared();
            self.defer(Box::pin(async move { client.execute_raw(&st, params).await.map(|_| ()).map_err(db) }))?;
        }
        Ok(())
    }

    /// Sends a statement without parameters and returns without waiting for its answer.
    fn send_simple(&self, sql: &'static str) -> Result<()> {
        let client = self.client.shared();
        self.defer(Box::pin(async move { client.batch_execute(sql).await.map_err(db) }))
    }

    /// Puts every held write on the wire, each request's after its savepoint: a read is about to
    /// need them on the server. A request whose writes went is undone by its savepoint.
    fn flush(&self) -> Result<()> {
        self.flush_to(false)
    }

    /// As [`PgStore::flush`], before a write that goes at once (its result is read): every open
    /// request's savepoint goes to the server first, so that a refused request's write is undone.
    fn flush_for_write(&self) -> Result<()> {
        self.flush_to(true)
    }

    fn flush_to(&self, every_savepoint: bool) -> Result<()> {
        let ready = std::mem::take(&mut *self.ready.borrow_mut());
        self.send_writes(ready)?;
        let mut frames = self.frames.borrow_mut();
        // Savepoints nest: an inner request's writes on the server need the outer ones opened.
        let top = if every_savepoint { frames.len().checked_sub(1) } else { frames.iter().rposition(|f| !f.held.is_empty()) };
        let Some(top) = top else { return Ok(()) };
        for f in frames.iter_mut().take(top + 1) {
            if !f.opened {
                self.send_simple("SAVEPOINT req")?;
                f.opened = true;
            }
            self.send_writes(std::mem::take(&mut f.held))?;
        }
        Ok(())
    }

    /// Polls `f` once, which puts its request on the wire (behind the batch's BEGIN), and keeps
    /// it until the next [`PgStore::settle`].
    fn defer(&self, f: InFlight) -> Result<()> {
        self.open_tx()?;
        self.defer_raw(f)
    }

    /// Sends the open batch's BEGIN, with the lease's epoch check, before its first statement:
    /// a batch that needs nothing of the server (a `hello`, a lock list, a claim's reads from
    /// memory that write nothing) costs it nothing.
    fn open_tx(&self) -> Result<()> {
        if !self.in_tx.get() || self.begun.replace(true) {
            return Ok(());
        }
        let Some(mine) = self.epoch else {
            let client = self.client.shared();
            return self.defer_raw(Box::pin(async move { client.batch_execute("BEGIN").await.map_err(db) }));
        };
        // FOR SHARE: a take-over (which updates the row) waits for this batch to end, and this
        // batch cannot commit after a take-over committed: the server fails the check, and the
        // COMMIT pipelined behind it rolls back. (A prepared statement: as part of a simple
        // query it was planned again for every batch.)
        // One row whatever the table holds, so that even a missing lease row fails on the server
        // (a client-side error would be seen only after the pipelined COMMIT had committed).
        let st = self.stmt(
            "SELECT kite_check(coalesce((SELECT epoch = $1 FROM lease WHERE id = 1 FOR SHARE), false),
                               'kite-deposed ' || coalesce((SELECT epoch FROM lease WHERE id = 1), 0))",
        )?;
        let client = self.client.shared();
        self.defer_raw(Box::pin(async move { client.batch_execute("BEGIN").await.map_err(db) }))?;
        let client = self.client.shared();
        self.defer_raw(Box::pin(async move {
            match client.query_one(&st, &[&mine]).await {
                Ok(_) => Ok(()),
                Err(e) => {
                    let current = e.as_db_error().and_then(|d| d.message().strip_prefix("kite-deposed ")?.parse().ok());
                    Err(current.map_or_else(|| db(e), |current| StoreError::Deposed { mine, current }))
                }
            }
        }))
    }

    fn defer_raw(&self, mut f: InFlight) -> Result<()> {
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(r) => self.failed(r),
            std::task::Poll::Pending => {
                self.in_flight.borrow_mut().push(f);
                Ok(())
            }
        }
    }

    /// Notes what an answered write says: any error fails the batch.
    fn failed(&self, r: Result<()>) -> Result<()> {
        if let Err(e) = &r {
            if let StoreError::Deposed { mine, current } = e {
                self.deposed.set(Some((*mine, *current)));
            }
            if self.in_tx.get() {
                self.poisoned.set(true);
            }
        }
        r
    }

    /// Waits for the answer to every statement sent; the first error, if any.
    fn settle(&self) -> Result<()> {
        let trailing = std::mem::take(&mut *self.trailing.borrow_mut());
        if !trailing.is_empty() {
            for r in self.client.drive(futures::future::join_all(trailing)) {
                match r {
                    // Found late, and not let go: the next batch is refused (see `begin`).
                    Err(StoreError::Deposed { mine, current }) => self.deposed_late.set(Some((mine, current))),
                    Err(e) => tracing::warn!("a batch not waited for (a recorded lock wait) was not written: {e}"),
                    Ok(()) => {}
                }
            }
        }
        let sent = std::mem::take(&mut *self.in_flight.borrow_mut());
        if sent.is_empty() {
            return Ok(());
        }
        let answers = self.client.drive(futures::future::join_all(sent));
        let mut first = Ok(());
        for r in answers {
            if let Err(e) = self.failed(r) {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }

    /// A read: the held writes are sent first, and the read behind them (one round trip for all
    /// of them), answered after them.
    fn read<T>(&self, f: impl Future<Output = std::result::Result<T, tokio_postgres::Error>>) -> Result<T> {
        self.open_tx()?;
        self.flush()?;
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
            let st = self.write_now(sql)?;
            return self.read(self.client.raw().query_one(&st, params));
        }
        let st = self.stmt(sql)?;
        self.read(self.client.raw().query_one(&st, params))
    }

    /// A write that returns at most one row (`UPDATE ... RETURNING`).
    pub(crate) fn one_opt_write(&self, sql: &str, params: &[P<'_>]) -> Result<Option<Row>> {
        let st = self.write_now(sql)?;
        self.read(self.client.raw().query_opt(&st, params))
    }

    /// A write whose count of rows is read.
    pub(crate) fn exec(&self, sql: &str, params: &[P<'_>]) -> Result<u64> {
        let st = self.write_now(sql)?;
        self.read(self.client.raw().execute(&st, params))
    }

    /// Readies a write whose result is read, so sent at once: inside the batch, and inside
    /// every open request's savepoint (so that a refused request's write is undone).
    fn write_now(&self, sql: &str) -> Result<Statement> {
        self.in_batch()?;
        let st = self.stmt(sql)?;
        self.wrote.set(true);
        self.open_tx()?;
        self.flush_for_write()?;
        Ok(st)
    }

    /// Why a batch failed: another daemon's lease when the epoch check found one (whatever
    /// else failed with it), else `e`.
    fn deposed_or(&self, e: StoreError) -> StoreError {
        match self.deposed.get() {
            Some((mine, current)) => StoreError::Deposed { mine, current },
            None => e,
        }
    }

    /// The epoch this store writes under (0 without a lease).
    pub(crate) fn epoch(&self) -> i64 {
        self.epoch.unwrap_or(0)
    }

    /// The next task id, from the identity column's sequence, a block at a time: a sequence
    /// never gives a number twice, rolled back or not, so an id is never reused.
    pub(crate) fn next_task_id(&self) -> Result<i64> {
        if let Some(id) = self.ids.borrow_mut().pop_front() {
            return Ok(id);
        }
        let rows = self.query("SELECT nextval(pg_get_serial_sequence('tasks', 'id')) FROM generate_series(1, $1::bigint)", &[&ID_BLOCK])?;
        let mut ids = self.ids.borrow_mut();
        ids.extend(rows.iter().map(|r| r.get::<_, i64>(0)));
        ids.pop_front().ok_or_else(|| StoreError::Backend("the task id sequence gave no number".into()))
    }

    pub(crate) fn cache(&self) -> std::cell::RefMut<'_, cache::TaskCache> {
        self.cache.borrow_mut()
    }
}

impl Batch for PgStore {
    fn begin(&self) -> Result<()> {
        // What a failed batch left is not wanted.
        let _ = self.settle();
        if let Some((mine, current)) = self.deposed_late.get() {
            return Err(StoreError::Deposed { mine, current });
        }
        self.frames.borrow_mut().clear();
        self.ready.borrow_mut().clear();
        self.cache.borrow_mut().begin();
        self.poisoned.set(false);
        self.deposed.set(None);
        self.wrote.set(false);
        self.begun.set(false);
        self.lazy.set(false);
        // BEGIN goes with the batch's first statement (`open_tx`).
        self.in_tx.set(true);
        Ok(())
    }

    fn commit_deferred(&self) -> Result<Committed> {
        let failed = || StoreError::Backend("the transaction failed (see the error before): nothing of this batch was committed".into());
        let refused = |e: StoreError| {
            let e = self.deposed_or(e);
            self.rollback();
            e
        };
        // An error the server never saw (a client-side one) would let COMMIT commit.
        if self.poisoned.get() {
            return Err(refused(failed()));
        }
        self.flush().map_err(&refused)?;
        if self.poisoned.get() {
            return Err(refused(failed()));
        }
        // COMMIT goes behind the batch's statements, in the same round trip. After a statement
        // the server failed (the epoch check, a task row not as remembered, any error) the
        // transaction is aborted and PostgreSQL answers COMMIT by rolling back: the failed
        // statement's answer, which comes first, says so.
        // Nobody waits behind this batch: it commits synchronously, in the same round trip,
        // instead of leaving the flush to the syncer's (see [`sync`]).
        let now = self.wrote.get() && !self.busy.get();
        if !self.begun.get() {
            // Nothing of this batch went to the server: nothing to commit.
            self.in_tx.set(false);
            self.cache.borrow_mut().commit();
            return Ok(Committed::Durable);
        }
        if !self.wrote.get() && self.lazy.get() {
            // Only writes nobody waits on (a recorded lock wait): COMMIT goes, and its answer is
            // read with the next batch's; the daemon goes on at once.
            self.send_simple("COMMIT").map_err(&refused)?;
            self.client.poke();
            let sent = std::mem::take(&mut *self.in_flight.borrow_mut());
            self.trailing.borrow_mut().extend(sent);
            self.in_tx.set(false);
            self.begun.set(false);
            self.cache.borrow_mut().commit();
            return Ok(Committed::Durable);
        }
        // In a failed transaction the SET fails and the COMMIT after it is skipped: the failure
        // is seen below, and a ROLLBACK ends the transaction.
        self.send_simple(if now { "SET LOCAL synchronous_commit = on; COMMIT" } else { "COMMIT" }).map_err(&refused)?;
        let settled = self.settle();
        self.in_tx.set(false);
        self.begun.set(false);
        if let Err(e) = settled {
            // Whatever happened, no transaction stays open (a warning only, when none is).
            let _ = self.client.batch("ROLLBACK");
            self.frames.borrow_mut().clear();
            self.ready.borrow_mut().clear();
            self.cache.borrow_mut().forget();
            return Err(self.deposed_or(e));
        }
        self.cache.borrow_mut().commit();
        // The commit is in the WAL, and visible; it is on disk once the syncer's next commit
        // returned.
        Ok(if self.wrote.get() && !now { Committed::NeedsSync } else { Committed::Durable })
    }

    fn rollback(&self) {
        // What was sent is undone with the transaction; its answers are not wanted.
        let _ = self.settle();
        self.frames.borrow_mut().clear();
        self.ready.borrow_mut().clear();
        self.cache.borrow_mut().forget();
        if self.in_tx.replace(false) && self.begun.replace(false) {
            let _ = self.client.batch("ROLLBACK");
        }
    }

    fn savepoint(&self) -> Result<()> {
        // Nothing is sent until the request's writes must be on the server (see `flush`).
        self.frames.borrow_mut().push(Frame::default());
        self.cache.borrow_mut().savepoint();
        Ok(())
    }

    fn release_savepoint(&self) -> Result<()> {
        let Some(f) = self.frames.borrow_mut().pop() else { return Ok(()) };
        self.cache.borrow_mut().release();
        if f.opened {
            self.send_writes(f.held)?;
            self.send_simple("RELEASE SAVEPOINT req")?;
            self.client.poke();
            return Ok(());
        }
        // Never on the server: its writes join the enclosing request's, or the batch's.
        let mut frames = self.frames.borrow_mut();
        match frames.last_mut() {
            Some(outer) => outer.held.extend(f.held),
            None => {
                drop(frames);
                let mut ready = self.ready.borrow_mut();
                ready.extend(f.held);
                if ready.len() >= READY_MAX {
                    // The server works on a group while the next requests are handled.
                    let group = std::mem::take(&mut *ready);
                    drop(ready);
                    self.send_writes(group)?;
                    self.client.poke();
                }
            }
        }
        Ok(())
    }

    fn rollback_savepoint(&self) -> Result<()> {
        // A request refused before its savepoint (a frame that is no request) has none: in
        // PostgreSQL a rollback to no savepoint would abort the whole transaction.
        let Some(f) = self.frames.borrow_mut().pop() else { return Ok(()) };
        self.cache.borrow_mut().rollback_savepoint();
        if f.opened {
            self.send_simple("ROLLBACK TO SAVEPOINT req; RELEASE SAVEPOINT req")?;
        }
        // Held writes are dropped unsent. An error the server reported stays: it may be another
        // request's, whose writes were pipelined, so the batch still fails.
        Ok(())
    }
}

impl EventStore for PgStore {
    fn counter(&self, name: &str) -> Result<i64> {
        Ok(self.opt("SELECT value FROM counters WHERE name = $1", &[&name])?.map_or(0, |r| r.get(0)))
    }

    fn set_counter(&self, name: &str, value: i64) -> Result<()> {
        self.hold(Write::Counter(name.to_string(), value))
    }

    fn last_event_id(&self) -> Result<i64> {
        Ok(self.one("SELECT coalesce(max(id), 0)::bigint FROM events", &[])?.get(0))
    }

    fn insert_event(&self, id: i64, at_ms: i64, kind: &str, data: &serde_json::Value) -> Result<()> {
        self.hold(Write::Event(writes::Event { id, at_ms, kind: kind.to_string(), data: data.to_string() }))
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
        Some(self.durable.clone())
    }

    fn after_batch(&self, quiet: bool) {
        // A quiet daemon reads the answers of a batch it did not wait for now rather than later.
        if quiet && !self.trailing.borrow().is_empty() {
            let _ = self.settle();
        }
    }

    fn more_waiting(&self, waiting: bool) {
        self.busy.set(waiting);
    }
}

/// A count as the database stores it (clamped: no count gets past i64::MAX).
pub(crate) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
