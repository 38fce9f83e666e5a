//! Retention: which old events and finished tasks may leave the live database, and removing
//! them once the caller has archived them. The store never drops a row on its own; the daemon
//! writes each row to the archive (and syncs it) before it asks for the delete.
//!
//! Both scans walk the table in id order and stop at the first row too young to go: ids grow
//! with time, so a run over a large database costs the rows it archives, not the table.

use super::{Result, Store};
use rusqlite::params;

/// An event row: id, time (ms since the epoch), kind, data.
pub type EventRow = (i64, i64, String, serde_json::Value);

/// What retention may move out, and removing it once archived.
pub trait RetentionStore {
    /// The oldest events written before `cutoff_ms`, at most `limit`, stopping at the first
    /// younger one. The newest event always stays: the next event's id is one above it.
    fn events_older_than(&self, cutoff_ms: i64, limit: u32) -> Result<Vec<EventRow>>;

    /// Removes the events up to and including `last`.
    fn delete_events_through(&self, last: i64) -> Result<usize>;

    /// Finished tasks (done, failed, pruned) last changed before `cutoff_ms` that no task depends
    /// on, oldest first, at most `limit`. The newest task always stays, so an id is never given
    /// out twice; a task some other task depends on stays until that one has gone.
    fn finished_tasks_older_than(&self, cutoff_ms: i64, limit: u32) -> Result<Vec<i64>>;

    /// Removes a task with its history, files and dependencies.
    fn delete_task(&self, id: i64) -> Result<()>;
}

impl RetentionStore for Store {
    fn events_older_than(&self, cutoff_ms: i64, limit: u32) -> Result<Vec<EventRow>> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, at_ms, kind, data FROM events WHERE id < (SELECT max(id) FROM events) ORDER BY id LIMIT ?1",
        )?;
        let mut rows = st.query(params![i64::from(limit)])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let at_ms: i64 = r.get(1)?;
            if at_ms >= cutoff_ms {
                break;
            }
            let data: String = r.get(3)?;
            out.push((r.get(0)?, at_ms, r.get(2)?, serde_json::from_str(&data).unwrap_or(serde_json::Value::Null)));
        }
        Ok(out)
    }

    fn delete_events_through(&self, last: i64) -> Result<usize> {
        Ok(self.conn.prepare_cached("DELETE FROM events WHERE id <= ?1")?.execute([last])?)
    }

    fn finished_tasks_older_than(&self, cutoff_ms: i64, limit: u32) -> Result<Vec<i64>> {
        let mut st = self.conn.prepare_cached(
            "SELECT t.id, t.created_at_ms, t.updated_at_ms,
                    t.status IN ('done', 'failed', 'pruned')
                    AND NOT EXISTS (SELECT 1 FROM task_deps d WHERE d.dep = t.id)
             FROM tasks t WHERE t.id < (SELECT max(id) FROM tasks) ORDER BY t.id",
        )?;
        let mut rows = st.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let (id, created, updated, may_go): (i64, i64, i64, bool) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            if created >= cutoff_ms || out.len() >= limit as usize {
                break;
            }
            if may_go && updated < cutoff_ms {
                out.push(id);
            }
        }
        Ok(out)
    }

    fn delete_task(&self, id: i64) -> Result<()> {
        for sql in [
            "DELETE FROM task_history WHERE task = ?1",
            "DELETE FROM task_files WHERE task = ?1",
            "DELETE FROM task_deps WHERE task = ?1",
            "DELETE FROM tasks WHERE id = ?1",
        ] {
            self.conn.prepare_cached(sql)?.execute([id])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::{NewTaskRow, Store};
    use kite_core::TaskStatus;

    fn task(s: &Store, title: &str, deps: &[i64], at: i64) -> i64 {
        let row = NewTaskRow { title, depends_on: deps, ..Default::default() };
        s.insert_task(&row, at).unwrap()
    }

    #[test]
    fn old_events_go_oldest_first_and_the_newest_stays() {
        let s = Store::open_in_memory().unwrap();
        for id in 1..=5 {
            s.insert_event(id, id * 100, "broadcast", &serde_json::json!({"n": id})).unwrap();
        }
        let old = s.events_older_than(350, 10).unwrap();
        assert_eq!(old.iter().map(|e| e.0).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(s.events_older_than(350, 2).unwrap().len(), 2, "the limit holds");
        // Everything is old, and still the newest stays.
        assert_eq!(s.events_older_than(10_000, 10).unwrap().len(), 4);
        assert_eq!(s.delete_events_through(3).unwrap(), 3);
        assert_eq!(s.events(0, None, false).unwrap().len(), 2);
        assert_eq!(s.last_event_id().unwrap(), 5);
    }

    #[test]
    fn only_old_finished_tasks_nobody_depends_on_may_go() {
        let s = Store::open_in_memory().unwrap();
        let base = task(&s, "base", &[], 10);
        let top = task(&s, "top", &[base], 10);
        let open = task(&s, "open", &[], 10);
        let young = task(&s, "young", &[], 10);
        let _newest = task(&s, "newest", &[], 10);
        let done = crate::TaskState { to: TaskStatus::Done, claim_session: None, claim_token: None, attempts: 1, result: None, reason: None };
        for id in [base, top] {
            s.set_task_state(id, &done, 20).unwrap();
        }
        s.set_task_state(young, &done, 500).unwrap();
        // `base` has a dependent, `open` is not finished, `young` changed after the cutoff.
        assert_eq!(s.finished_tasks_older_than(100, 10).unwrap(), vec![top]);
        s.delete_task(top).unwrap();
        assert_eq!(s.finished_tasks_older_than(100, 10).unwrap(), vec![base], "once its dependent went, it may go");
        s.delete_task(base).unwrap();
        assert!(s.task(base).unwrap().is_none());
        assert!(s.history(base).unwrap().is_empty());
        assert!(s.task(open).unwrap().is_some());
    }
}
