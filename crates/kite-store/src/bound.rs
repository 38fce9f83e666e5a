//! Keeps the WAL bounded (the SQLite backend's own upkeep, run by [`crate::Storage::after_batch`]). The background checkpointer copies frames into the database off the
//! request path, but under sustained writes it never catches up, so the WAL never starts over;
//! a long run left a 2.4 GB WAL and a restart that first had to read it all (docs/BENCHMARKS.md).
//! Between two batches the state owner is the only writer and writes nothing, so a checkpoint it
//! runs there completes: it copies the few frames the background one has not, and the next
//! batch starts the WAL over. When the daemon has been quiet for a tick, it also truncates the
//! file, giving the disk space back.

use crate::{CheckpointMode, Store};
use std::cell::Cell;
use std::time::{Duration, Instant};

/// A WAL over this size is checkpointed by the owner after the batch that grew it.
const LIMIT: u64 = 32 << 20;
/// The WAL's size is looked at no more often than this.
const LOOK_EVERY: Duration = Duration::from_millis(50);
/// How long a truncation waits for the background checkpointer to finish its pass.
const TRUNCATE_WAIT: Duration = Duration::from_millis(20);

pub(crate) struct WalBound {
    looked: Cell<Instant>,
    /// The WAL was truncated and nothing was written since.
    empty: Cell<bool>,
}

impl WalBound {
    pub(crate) fn new() -> WalBound {
        WalBound { looked: Cell::new(Instant::now()), empty: Cell::new(false) }
    }

    /// After a batch's commit. `wrote`: the batch changed something; `quiet`: it was a tick
    /// with no request in it.
    pub(crate) fn after_batch(&self, store: &Store, wrote: bool, quiet: bool) {
        if wrote {
            self.empty.set(false);
        }
        if quiet && !self.empty.get() {
            let t = Instant::now();
            match store.checkpoint(CheckpointMode::Truncate(TRUNCATE_WAIT)) {
                Ok(c) if c.complete => {
                    self.empty.set(true);
                    tracing::debug!(frames = c.frames, ms = t.elapsed().as_secs_f64() * 1e3, "quiet: WAL checkpointed and truncated");
                }
                Ok(_) => tracing::debug!("quiet: the WAL could not be truncated yet (a reader or checkpoint in progress)"),
                Err(e) => tracing::warn!("cannot truncate the WAL: {e}"),
            }
            return;
        }
        if !wrote || self.looked.get().elapsed() < LOOK_EVERY {
            return;
        }
        self.looked.set(Instant::now());
        let len = store.wal_len();
        if len <= LIMIT {
            return;
        }
        let t = Instant::now();
        match store.checkpoint(CheckpointMode::Passive) {
            Ok(c) => tracing::debug!(
                wal_mib = len >> 20,
                frames = c.frames,
                complete = c.complete,
                ms = t.elapsed().as_secs_f64() * 1e3,
                "WAL over its limit: checkpointed between batches"
            ),
            Err(e) => tracing::warn!("cannot checkpoint the WAL: {e}"),
        }
    }
}
