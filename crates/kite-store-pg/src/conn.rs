//! A synchronous face on tokio-postgres, callable from anywhere, the daemon's async runtime
//! included.
//!
//! The state owner calls its store synchronously from a task on the daemon's runtime (as it does
//! SQLite). The `postgres` crate cannot be called there: it blocks on a runtime of its own, and
//! tokio refuses to start one inside another. Here each connection's I/O runs on one shared
//! background runtime (thread `kite-pg`), and a call waits for its result with
//! `futures::executor::block_on`, which parks the calling thread the way a SQLite call blocks
//! it, without entering a runtime.

use kite_store::StoreError;
use std::future::Future;
use std::sync::OnceLock;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row, Statement, ToStatement};

type Result<T> = std::result::Result<T, StoreError>;
pub(crate) type P<'a> = &'a (dyn ToSql + Sync);

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("kite-pg")
            .enable_all()
            .build()
            .expect("the PostgreSQL client's runtime")
    })
}

pub(crate) fn wait<F: Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

/// A driver error as a store error, with PostgreSQL's own message where there is one.
pub(crate) fn db(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(d) => StoreError::Backend(format!("PostgreSQL: {} ({})", d.message(), d.code().code())),
        None => StoreError::Backend(format!("PostgreSQL: {e}")),
    }
}

/// One connection.
pub struct Conn {
    client: std::sync::Arc<tokio_postgres::Client>,
}

impl Conn {
    /// Connects with the URL's settings (no TLS on the wire to the database: run it on a private
    /// network or a Unix socket; the daemon's own listener is where kite speaks TLS).
    pub fn connect(url: &str) -> Result<Conn> {
        let u = url.to_string();
        let connected = wait(runtime().spawn(async move {
            let (client, connection) = tokio_postgres::connect(&u, NoTls).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!("PostgreSQL connection ended: {e}");
                }
            });
            Ok::<_, tokio_postgres::Error>(client)
        }));
        match connected {
            Ok(Ok(client)) => Ok(Conn { client: std::sync::Arc::new(client) }),
            Ok(Err(e)) => Err(StoreError::Backend(format!("cannot connect to the database {}: {}", crate::redact_url(url), db(e)))),
            Err(e) => Err(StoreError::Backend(format!("cannot connect to the database {}: {e}", crate::redact_url(url)))),
        }
    }

    /// Runs statements without parameters (one round trip).
    pub fn batch(&self, sql: &str) -> Result<()> {
        wait(self.client.batch_execute(sql)).map_err(db)
    }

    pub fn prepare(&self, sql: &str) -> Result<Statement> {
        wait(self.client.prepare(sql)).map_err(db)
    }

    pub fn query<T: ?Sized + ToStatement>(&self, st: &T, params: &[P<'_>]) -> Result<Vec<Row>> {
        wait(self.client.query(st, params)).map_err(db)
    }

    pub fn query_opt<T: ?Sized + ToStatement>(&self, st: &T, params: &[P<'_>]) -> Result<Option<Row>> {
        wait(self.client.query_opt(st, params)).map_err(db)
    }

    pub fn query_one<T: ?Sized + ToStatement>(&self, st: &T, params: &[P<'_>]) -> Result<Row> {
        wait(self.client.query_one(st, params)).map_err(db)
    }

    pub fn execute<T: ?Sized + ToStatement>(&self, st: &T, params: &[P<'_>]) -> Result<u64> {
        wait(self.client.execute(st, params)).map_err(db)
    }

    /// The client itself, for a request that outlives the call that sent it (see
    /// `PgStore::send`).
    pub(crate) fn shared(&self) -> std::sync::Arc<tokio_postgres::Client> {
        self.client.clone()
    }

    pub(crate) fn raw(&self) -> &tokio_postgres::Client {
        &self.client
    }

    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}
