//! What a batch writes only once, at its end: the lifetime counters (session and claim
//! sequences, completed/failed/pruned, what agents cost) and the event log's new rows.
//!
//! Why: an UPSERT ... RETURNING per counter bump and an INSERT ... RETURNING per event cost a
//! fifth of the daemon's time per task operation (perf, docs/BENCHMARKS.md). The owner is the
//! only writer, so it can keep the counters and the next event id in memory, hand out values at
//! once, and write the rows in the batch's own transaction just before COMMIT: nothing is
//! acknowledged before that commit, so durability is unchanged. A refused request undoes its
//! share through a [`Mark`], like its savepoint undoes its rows.

use kite_proto::ops::{Event, EventKind};
use kite_store::prelude::*;
use kite_store::StoreError;
use serde_json::Value;
use std::collections::HashMap;

/// Every counter the daemon keeps (the `cost_*` ones: see `state/costs.rs`).
pub(super) const COUNTERS: [&str; 12] = [
    "session_seq",
    "claim_seq",
    "completed",
    "failed",
    "pruned",
    "cost_runs",
    "cost_agents_micro_usd",
    "cost_interactive_micro_usd",
    "cost_input_tokens",
    "cost_output_tokens",
    "cost_cache_creation_tokens",
    "cost_cache_read_tokens",
];

pub(super) struct Pending {
    /// Events of this batch, in order; pushed to followers after the commit.
    pub(super) events: Vec<Event>,
    /// How many of `events` are already rows (a read of the log flushes them first).
    inserted: usize,
    next_event: i64,
    counters: HashMap<&'static str, i64>,
    /// Old values of the counters bumped in this batch, newest last.
    undo: Vec<(&'static str, i64)>,
}

/// A point to return to when a request is refused.
#[derive(Clone, Copy)]
pub(super) struct Mark {
    events: usize,
    inserted: usize,
    next_event: i64,
    undo: usize,
}

impl Pending {
    pub(super) fn load(store: &dyn Storage) -> Result<Pending, StoreError> {
        let mut counters = HashMap::new();
        for name in COUNTERS {
            counters.insert(name, store.counter(name)?);
        }
        Ok(Pending { events: Vec::new(), inserted: 0, next_event: store.last_event_id()? + 1, counters, undo: Vec::new() })
    }

    pub(super) fn mark(&self) -> Mark {
        Mark { events: self.events.len(), inserted: self.inserted, next_event: self.next_event, undo: self.undo.len() }
    }

    /// Forgets everything after `m`. Rows flushed after `m` were rolled back with the savepoint.
    pub(super) fn undo(&mut self, m: Mark) {
        self.events.truncate(m.events);
        self.inserted = m.inserted.min(self.inserted);
        self.next_event = m.next_event;
        while self.undo.len() > m.undo {
            let (name, old) = self.undo.pop().expect("longer than the mark");
            self.counters.insert(name, old);
        }
    }

    pub(super) fn counter(&self, name: &str) -> i64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    /// Adds `by` to a counter and returns the new value.
    pub(super) fn bump(&mut self, name: &'static str, by: i64) -> i64 {
        let v = self.counters.entry(name).or_insert(0);
        self.undo.push((name, *v));
        // Saturating: a token counter fed by clients must not wrap around.
        *v = v.saturating_add(by);
        *v
    }

    /// Appends an event; its id is final once the batch commits.
    pub(super) fn event(&mut self, at_ms: i64, kind: EventKind, data: Value) {
        let id = self.next_event;
        self.next_event += 1;
        self.events.push(Event { id, at_ms, kind, data });
    }

    /// Writes the events not yet written, so a read of the log in this transaction sees them.
    pub(super) fn flush_events(&mut self, store: &dyn Storage) -> Result<(), StoreError> {
        for ev in &self.events[self.inserted..] {
            store.insert_event(ev.id, ev.at_ms, ev.kind.as_str(), &ev.data)?;
        }
        self.inserted = self.events.len();
        Ok(())
    }

    /// Writes everything of the batch; called inside its transaction, right before COMMIT.
    pub(super) fn write(&mut self, store: &dyn Storage) -> Result<(), StoreError> {
        self.flush_events(store)?;
        let mut written: Vec<&'static str> = Vec::new();
        for (name, _) in &self.undo {
            if !written.contains(name) {
                store.set_counter(name, self.counter(name))?;
                written.push(name);
            }
        }
        Ok(())
    }

    /// The batch committed: its events go to the followers, and a new batch starts.
    pub(super) fn committed(&mut self) -> Vec<Event> {
        self.undo.clear();
        self.inserted = 0;
        std::mem::take(&mut self.events)
    }

    /// The batch did not commit: start again from what the database holds.
    pub(super) fn reload(&mut self, store: &dyn Storage) {
        match Pending::load(store) {
            Ok(p) => *self = p,
            Err(e) => {
                tracing::error!("cannot reload counters after a failed commit: {e}");
                // Keep the in-memory values, minus this batch's changes.
                self.undo(Mark { events: 0, inserted: 0, next_event: self.next_event - self.events.len() as i64, undo: 0 });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_refused_request_takes_back_its_counters_and_events() {
        let store = kite_store::Store::open_in_memory().unwrap();
        let mut p = Pending::load(&store).unwrap();
        store.begin().unwrap();
        assert_eq!(p.bump("claim_seq", 1), 1);
        p.event(1, EventKind::Other("a".into()), json!({}));
        let m = p.mark();
        store.savepoint().unwrap();
        assert_eq!(p.bump("claim_seq", 1), 2);
        p.bump("completed", 1);
        p.event(2, EventKind::Other("b".into()), json!({}));
        // A read of the log inside the refused request flushed rows; the savepoint takes them.
        p.flush_events(&store).unwrap();
        store.rollback_savepoint().unwrap();
        p.undo(m);
        assert_eq!((p.counter("claim_seq"), p.counter("completed")), (1, 0));
        p.event(3, EventKind::Other("c".into()), json!({}));
        p.write(&store).unwrap();
        store.commit().unwrap();
        let events = p.committed();
        assert_eq!(events.iter().map(|e| (e.id, e.kind.as_str())).collect::<Vec<_>>(), [(1, "a"), (2, "c")]);
        let rows: Vec<(i64, String)> = store.events(0, None, false).unwrap().into_iter().map(|e| (e.0, e.2)).collect();
        assert_eq!(rows, [(1, "a".to_string()), (2, "c".to_string())]);
        assert_eq!((store.counter("claim_seq").unwrap(), store.counter("completed").unwrap()), (1, 0));
        let again = Pending::load(&store).unwrap();
        assert_eq!((again.counter("claim_seq"), again.next_event), (1, 3));
    }
}
