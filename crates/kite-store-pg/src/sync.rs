//! Pipelined group commit on PostgreSQL, as the SQLite backend does it with `--sync full`.
//!
//! A batch's COMMIT waiting for the WAL flush kept the state owner idle for the flush's length
//! after every batch. So the owner's connection commits with `synchronous_commit = off`: the
//! COMMIT returns once its record is in the WAL, and the owner goes on with the next batch. Its
//! replies are held (the owner's outlet) until this syncer, on a connection of its own with
//! `synchronous_commit = on`, commits a one-row update: PostgreSQL writes the WAL in order, so
//! that commit's flush covers every commit made before it, and one flush covers every batch
//! that queued up meanwhile.
//!
//! The promise is unchanged: a reply is sent only once its commit is on disk. A batch
//! committed and not yet flushed when the server crashes is lost, and nobody was told it
//! happened (the daemon's connection breaks, and it starts again from what the server holds).

use crate::{Conn, Result};
use kite_store::Durable;
use std::sync::Mutex;

/// The durability connection.
pub struct PgSync {
    conn: Mutex<Conn>,
    url: String,
}

impl PgSync {
    pub(crate) fn open(url: &str) -> Result<PgSync> {
        Ok(PgSync { conn: Mutex::new(PgSync::connect(url)?), url: url.to_string() })
    }

    fn connect(url: &str) -> Result<Conn> {
        let conn = crate::connect(url)?;
        // Whatever the server's default: this connection's commits are the flushes.
        conn.batch("SET synchronous_commit = on")?;
        Ok(conn)
    }
}

impl Durable for PgSync {
    fn sync(&self) -> std::io::Result<()> {
        const FLUSH: &str = "UPDATE kite_sync SET n = n + 1 WHERE id = 1";
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        match conn.batch(FLUSH) {
            Ok(()) => Ok(()),
            // An idle connection the server or the network dropped: a new one's synchronous
            // commit flushes past every earlier commit just the same.
            Err(first) => {
                tracing::warn!("the durability connection failed ({first}); connecting again");
                *conn = PgSync::connect(&self.url).map_err(|e| std::io::Error::other(e.to_string()))?;
                conn.batch(FLUSH).map_err(|e| std::io::Error::other(e.to_string()))
            }
        }
    }
}
