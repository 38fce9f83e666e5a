//! Retention on PostgreSQL: which old events and finished tasks may leave, and removing them once
//! the daemon has archived them. The same scans as the SQLite backend's, in id order, stopping at
//! the first row too young to go.

use crate::{own, PgStore, Result};
use kite_store::{EventRow, RetentionStore};

impl RetentionStore for PgStore {
    fn events_older_than(&self, cutoff_ms: i64, limit: u32) -> Result<Vec<EventRow>> {
        let rows = self.query("SELECT id, at_ms, kind, data FROM events WHERE id < (SELECT max(id) FROM events) ORDER BY id LIMIT $1", &[&i64::from(limit)])?;
        let mut out = Vec::new();
        for r in rows {
            let at_ms: i64 = r.get(1);
            if at_ms >= cutoff_ms {
                break;
            }
            out.push((r.get(0), at_ms, r.get(2), serde_json::from_str(r.get(3)).unwrap_or(serde_json::Value::Null)));
        }
        Ok(out)
    }

    fn delete_events_through(&self, last: i64) -> Result<usize> {
        Ok(self.exec("DELETE FROM events WHERE id <= $1", &[&last])? as usize)
    }

    fn finished_tasks_older_than(&self, cutoff_ms: i64, limit: u32) -> Result<Vec<i64>> {
        // In pages, not the whole table at once: the scan stops early.
        let mut out = Vec::new();
        let mut after = 0i64;
        loop {
            let rows = self.query(
                "SELECT t.id, t.created_at_ms, t.updated_at_ms,
                        t.status IN ('done', 'failed', 'pruned') AND NOT EXISTS (SELECT 1 FROM task_deps d WHERE d.dep = t.id)
                 FROM tasks t WHERE t.id > $1 AND t.id < (SELECT max(id) FROM tasks) ORDER BY t.id LIMIT 500",
                &[&after],
            )?;
            if rows.is_empty() {
                return Ok(out);
            }
            for r in rows {
                let (id, created, updated, may_go): (i64, i64, i64, bool) = (r.get(0), r.get(1), r.get(2), r.get(3));
                if created >= cutoff_ms || out.len() >= limit as usize {
                    return Ok(out);
                }
                if may_go && updated < cutoff_ms {
                    out.push(id);
                }
                after = id;
            }
        }
    }

    fn delete_task(&self, id: i64) -> Result<()> {
        for sql in [
            "DELETE FROM task_history WHERE task = $1",
            "DELETE FROM task_files WHERE task = $1",
            "DELETE FROM task_deps WHERE task = $1",
            "DELETE FROM tasks WHERE id = $1",
        ] {
            self.send(sql, vec![own(id)])?;
        }
        self.cache().put(id, None);
        Ok(())
    }
}
