//! Reaching the daemon's memory component from a client process (the hooks, the MCP server's
//! vault tools, the strategy loop's note source); the component itself is
//! `kite_daemon::memory`.

use kite_proto::ErrorBody;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

pub(crate) use kite_daemon::memory::{enqueue, inject, recall, Job, Recalled};

/// One request on kite.sock without a client library (for synchronous callers: the MCP
/// server's vault tools, the strategy loop's note source). `Err` says why, and whether a daemon
/// answered at all (`None`: nothing listens).
pub(crate) fn call(socket: &Path, op: &str, args: Value, timeout: Duration) -> Result<Value, Option<ErrorBody>> {
    let mut s = UnixStream::connect(socket).map_err(|_| None)?;
    s.set_read_timeout(Some(timeout)).map_err(|_| None)?;
    s.set_write_timeout(Some(timeout)).map_err(|_| None)?;
    let req = serde_json::json!({"id": 1, "op": op, "args": args});
    s.write_all(format!("{req}\n").as_bytes()).map_err(|_| None)?;
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(|_| None)? == 0 {
            return Err(None);
        }
        match kite_proto::ServerMessage::decode(line.trim_end()) {
            Ok(kite_proto::ServerMessage::Reply { id: Some(1), result }) => return result.map_err(Some),
            Ok(_) => continue,
            Err(_) => return Err(None),
        }
    }
}

/// Asks the running daemon's warm vault for the best notes. `None` when no daemon (or no memory
/// component) answers: the caller searches in process.
pub(crate) fn remote_recall(home: &Path, query: &str, k: usize, timeout: Duration) -> Option<Vec<Recalled>> {
    let v = call(&kite_coord::Home::new(home).socket(), "memory.recall", serde_json::json!({"query": query, "k": k}), timeout).ok()?;
    serde_json::from_value::<kite_proto::ops::Recalled>(v).ok().map(|r| r.notes)
}

