//! Tasks, their dependencies, declared files and history. The rules (which moves are allowed,
//! cycles, blockers) are decided by the daemon with kite-core; this module only reads and writes.

use crate::{Result, Store, StoreError};
use kite_core::{HistoryEntry, Task, TaskStatus};
use rusqlite::{params, OptionalExtension, Row};
use std::collections::BTreeMap;

/// What a new task is made of.
#[derive(Debug, Clone, Default)]
pub struct NewTaskRow<'a> {
    pub title: &'a str,
    pub body: &'a str,
    pub priority: i64,
    pub depends_on: &'a [i64],
    pub files: &'a [String],
    pub dedup_key: Option<&'a str>,
    pub stale_after_secs: Option<u64>,
    pub workstream: Option<&'a str>,
    pub template: Option<&'a str>,
}

/// A task's row after a status change: where it is, who holds it, and what it came to.
#[derive(Debug, Clone, Copy)]
pub struct TaskState<'a> {
    pub to: TaskStatus,
    pub claim_session: Option<&'a str>,
    pub claim_token: Option<u64>,
    pub attempts: u32,
    pub result: Option<&'a str>,
    pub reason: Option<&'a str>,
}

/// One entry of a task's history.
#[derive(Debug, Clone, Copy)]
pub struct HistoryRow<'a> {
    pub from: Option<TaskStatus>,
    pub to: TaskStatus,
    pub session: Option<&'a str>,
    pub note: Option<&'a str>,
}

const TASK_COLUMNS: &str = "t.id, t.title, t.body, t.status, t.priority, t.dedup_key, t.stale_after_secs,
    t.workstream, t.template, t.attempts, t.claim_session, t.claim_token, t.result, t.reason,
    t.created_at_ms, t.updated_at_ms,
    (SELECT group_concat(dep) FROM task_deps WHERE task = t.id),
    (SELECT group_concat(path, char(10)) FROM task_files WHERE task = t.id)";

// The dependency queries, named so the test that pins their preparation uses the very same text.
// No ORDER BY on task_deps: with one, SQLite 3.54 re-prepared the statement on most calls (seen
// in perf as a quarter of task.start); the ids are sorted in Rust.
const DEPS_WITH_STATUS: &str =
    "SELECT t.id, t.title, t.status FROM tasks t WHERE t.id IN (SELECT dep FROM task_deps WHERE task = ?1) ORDER BY t.id";
const DEPS_OF: &str = "SELECT dep FROM task_deps WHERE task = ?1";
const DEPENDENTS_OF: &str = "SELECT task FROM task_deps WHERE dep = ?1";
// Served by the partial indexes tasks_pending and tasks_active (migration 0002); a test checks
// the plans.
const NEXT_READY: &str = "SELECT t.id FROM tasks t
    WHERE t.status = 'pending' AND (?1 IS NULL OR t.workstream = ?1)
      AND NOT EXISTS (SELECT 1 FROM task_deps d JOIN tasks x ON x.id = d.dep
                      WHERE d.task = t.id AND x.status != 'done')
    ORDER BY t.priority DESC, t.id LIMIT 1";
const ACTIVE_OF: &str = "SELECT id FROM tasks WHERE status = 'active' AND claim_session = ?1 ORDER BY id";

fn task_from_row(r: &Row<'_>) -> rusqlite::Result<Task> {
    let status: String = r.get(3)?;
    let deps: Option<String> = r.get(16)?;
    let files: Option<String> = r.get(17)?;
    Ok(Task {
        id: r.get(0)?,
        title: r.get(1)?,
        body: r.get(2)?,
        status: status.parse().map_err(|e: String| {
            rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, e.into())
        })?,
        priority: r.get(4)?,
        dedup_key: r.get(5)?,
        stale_after_secs: r.get::<_, Option<i64>>(6)?.map(|v| v as u64),
        workstream: r.get(7)?,
        template: r.get(8)?,
        attempts: r.get::<_, i64>(9)? as u32,
        claim_session: r.get(10)?,
        claim_token: r.get::<_, Option<i64>>(11)?.map(|v| v as u64),
        result: r.get(12)?,
        reason: r.get(13)?,
        created_at_ms: r.get(14)?,
        updated_at_ms: r.get(15)?,
        depends_on: deps.map(|d| d.split(',').filter_map(|x| x.parse().ok()).collect()).unwrap_or_default(),
        files: files.map(|f| f.split('\n').map(str::to_string).collect()).unwrap_or_default(),
    })
}

/// Tasks, their dependencies, files and history.
pub trait TaskStore {
    /// Inserts a pending task with its dependencies and files; returns its id.
    fn insert_task(&self, t: &NewTaskRow<'_>, now_ms: i64) -> Result<i64>;

    fn add_dep(&self, task: i64, on: i64) -> Result<()>;

    fn task(&self, id: i64) -> Result<Option<Task>>;

    fn task_exists(&self, id: i64) -> Result<bool>;

    /// Tasks in id order, after the id `after`, at most `limit`.
    fn list_tasks(&self, status: Option<TaskStatus>, workstream: Option<&str>, after: Option<i64>, limit: u32) -> Result<Vec<Task>>;

    /// The ids `id` depends on.
    fn deps_of(&self, id: i64) -> Result<Vec<i64>>;

    /// The ids that depend on `id`.
    fn dependents_of(&self, id: i64) -> Result<Vec<i64>>;

    /// `(id, title, status)` of each dependency of `id`.
    fn deps_with_status(&self, id: i64) -> Result<Vec<(i64, String, TaskStatus)>>;

    /// The best ready task: pending, every dependency done, highest priority, oldest first.
    fn next_ready(&self, workstream: Option<&str>) -> Result<Option<i64>>;

    /// Claims the best ready task for `session` with the fencing token `token`: it becomes active,
    /// one attempt more. Returns the task as claimed. One step for the caller; a backend with
    /// more than one writer makes it one statement (PostgreSQL: `UPDATE ... RETURNING` over
    /// `FOR UPDATE SKIP LOCKED`).
    fn claim_next(&self, workstream: Option<&str>, session: &str, token: u64, now_ms: i64) -> Result<Option<Task>> {
        let Some(id) = self.next_ready(workstream)? else { return Ok(None) };
        let Some(t) = self.task(id)? else { return Ok(None) };
        let attempts = t.attempts + 1;
        let st = TaskState { to: TaskStatus::Active, claim_session: Some(session), claim_token: Some(token), attempts, result: None, reason: None };
        self.set_task_state(id, &st, now_ms)?;
        Ok(Some(Task {
            status: TaskStatus::Active,
            claim_session: Some(session.to_string()),
            claim_token: Some(token),
            attempts,
            result: None,
            reason: None,
            updated_at_ms: now_ms,
            ..t
        }))
    }

    /// Moves a task to `st.to` and records the claim, result and reason as given.
    fn set_task_state(&self, id: i64, st: &TaskState<'_>, now_ms: i64) -> Result<()>;

    fn set_prune_details(&self, id: i64, details: &serde_json::Value) -> Result<()>;

    fn prune_details(&self, id: i64) -> Result<Option<serde_json::Value>>;

    /// Records a status change of `task` (`from` is `None` at creation).
    fn add_history(&self, task: i64, h: &HistoryRow<'_>, now_ms: i64) -> Result<()>;

    fn history(&self, task: i64) -> Result<Vec<HistoryEntry>>;

    /// Ids of the tasks `session` holds a claim on.
    fn active_tasks_of(&self, session: &str) -> Result<Vec<i64>>;

    /// Task counts by status (every status present, zero included).
    fn counts_by_status(&self) -> Result<BTreeMap<String, u64>>;
}

impl TaskStore for Store {
    fn insert_task(&self, t: &NewTaskRow<'_>, now_ms: i64) -> Result<i64> {
        self.conn
            .prepare_cached(
                "INSERT INTO tasks (title, body, status, priority, dedup_key, stale_after_secs, workstream, template,
                                    created_at_ms, updated_at_ms)
                 VALUES (?1, ?2, 'pending', ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
            )?
            .execute(params![t.title, t.body, t.priority, t.dedup_key, t.stale_after_secs.map(|v| v as i64), t.workstream, t.template, now_ms])?;
        let id = self.conn.last_insert_rowid();
        for dep in t.depends_on {
            self.add_dep(id, *dep)?;
        }
        let mut st = self.conn.prepare_cached("INSERT OR IGNORE INTO task_files (task, path) VALUES (?1, ?2)")?;
        for f in t.files {
            st.execute(params![id, f])?;
        }
        self.add_history(id, &HistoryRow { from: None, to: TaskStatus::Pending, session: None, note: None }, now_ms)?;
        Ok(id)
    }

    fn add_dep(&self, task: i64, on: i64) -> Result<()> {
        self.conn.prepare_cached("INSERT OR IGNORE INTO task_deps (task, dep) VALUES (?1, ?2)")?.execute(params![task, on])?;
        Ok(())
    }

    fn task(&self, id: i64) -> Result<Option<Task>> {
        Ok(self
            .conn
            .prepare_cached(&format!("SELECT {TASK_COLUMNS} FROM tasks t WHERE t.id = ?1"))?
            .query_row([id], task_from_row)
            .optional()?)
    }

    fn task_exists(&self, id: i64) -> Result<bool> {
        Ok(self.conn.prepare_cached("SELECT 1 FROM tasks WHERE id = ?1")?.exists([id])?)
    }

    fn list_tasks(&self, status: Option<TaskStatus>, workstream: Option<&str>, after: Option<i64>, limit: u32) -> Result<Vec<Task>> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {TASK_COLUMNS} FROM tasks t
             WHERE (?1 IS NULL OR t.status = ?1) AND (?2 IS NULL OR t.workstream = ?2) AND t.id > ?3
             ORDER BY t.id LIMIT ?4"
        ))?;
        let rows = st.query_map(
            params![status.map(|s| s.as_str()), workstream, after.unwrap_or(0), i64::from(limit)],
            task_from_row,
        )?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    fn deps_of(&self, id: i64) -> Result<Vec<i64>> {
        let mut st = self.conn.prepare_cached(DEPS_OF)?;
        let rows = st.query_map([id], |r| r.get(0))?;
        let mut out: Vec<i64> = rows.collect::<std::result::Result<_, _>>()?;
        out.sort_unstable();
        Ok(out)
    }

    fn dependents_of(&self, id: i64) -> Result<Vec<i64>> {
        let mut st = self.conn.prepare_cached(DEPENDENTS_OF)?;
        let rows = st.query_map([id], |r| r.get(0))?;
        let mut out: Vec<i64> = rows.collect::<std::result::Result<_, _>>()?;
        out.sort_unstable();
        Ok(out)
    }

    fn deps_with_status(&self, id: i64) -> Result<Vec<(i64, String, TaskStatus)>> {
        let mut st = self.conn.prepare_cached(DEPS_WITH_STATUS)?;
        let rows = st.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, title, status) = row?;
            out.push((id, title, status.parse().map_err(StoreError::Corrupt)?));
        }
        Ok(out)
    }

    fn next_ready(&self, workstream: Option<&str>) -> Result<Option<i64>> {
        Ok(self
            .conn
            .prepare_cached(NEXT_READY)?
            .query_row(params![workstream], |r| r.get(0))
            .optional()?)
    }

    fn set_task_state(&self, id: i64, st: &TaskState<'_>, now_ms: i64) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE tasks SET status = ?2, claim_session = ?3, claim_token = ?4, attempts = ?5,
                                  result = ?6, reason = ?7, updated_at_ms = ?8 WHERE id = ?1",
            )?
            .execute(params![
                id,
                st.to.as_str(),
                st.claim_session,
                st.claim_token.map(|v| v as i64),
                st.attempts,
                st.result,
                st.reason,
                now_ms
            ])?;
        Ok(())
    }

    fn set_prune_details(&self, id: i64, details: &serde_json::Value) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE tasks SET prune_details = ?2 WHERE id = ?1")?
            .execute(params![id, details.to_string()])?;
        Ok(())
    }

    fn prune_details(&self, id: i64) -> Result<Option<serde_json::Value>> {
        let s: Option<String> = self
            .conn
            .prepare_cached("SELECT prune_details FROM tasks WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?
            .flatten();
        Ok(s.and_then(|s| serde_json::from_str(&s).ok()))
    }

    fn add_history(&self, task: i64, h: &HistoryRow<'_>, now_ms: i64) -> Result<()> {
        self.conn
            .prepare_cached("INSERT INTO task_history (task, at_ms, from_st, to_st, session, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
            .execute(params![task, now_ms, h.from.map(|s| s.as_str()), h.to.as_str(), h.session, h.note])?;
        Ok(())
    }

    fn history(&self, task: i64) -> Result<Vec<HistoryEntry>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT at_ms, from_st, to_st, session, note FROM task_history WHERE task = ?1 ORDER BY id")?;
        let rows = st.query_map([task], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, String>(2)?, r.get(3)?, r.get(4)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (at_ms, from, to, session, note) = row?;
            out.push(HistoryEntry {
                at_ms,
                from: from.map(|f| f.parse()).transpose().map_err(StoreError::Corrupt)?,
                to: to.parse().map_err(StoreError::Corrupt)?,
                session,
                note,
            });
        }
        Ok(out)
    }

    fn active_tasks_of(&self, session: &str) -> Result<Vec<i64>> {
        let mut st = self
            .conn
            .prepare_cached(ACTIVE_OF)?;
        let rows = st.query_map([session], |r| r.get(0))?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    fn counts_by_status(&self) -> Result<BTreeMap<String, u64>> {
        let mut out: BTreeMap<String, u64> = TaskStatus::ALL.iter().map(|s| (s.as_str().to_string(), 0)).collect();
        let mut st = self.conn.prepare_cached("SELECT status, count(*) FROM tasks GROUP BY status")?;
        for row in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (s, n) = row?;
            out.insert(s, n as u64);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use super::*;

    fn new<'a>(title: &'a str, deps: &'a [i64]) -> NewTaskRow<'a> {
        NewTaskRow { title, depends_on: deps, ..Default::default() }
    }

    #[test]
    fn a_task_round_trips_with_its_dependencies_and_files() {
        let s = Store::open_in_memory().unwrap();
        let a = s.insert_task(&new("a", &[]), 1).unwrap();
        let files = vec!["src/x.rs".to_string(), "src/y.rs".to_string()];
        let b = s
            .insert_task(&NewTaskRow { title: "b", depends_on: &[a], files: &files, priority: 3, ..Default::default() }, 2)
            .unwrap();
        let t = s.task(b).unwrap().unwrap();
        assert_eq!((t.title.as_str(), t.status, t.priority), ("b", TaskStatus::Pending, 3));
        assert_eq!(t.depends_on, vec![a]);
        assert_eq!(t.files, files);
        assert_eq!(s.history(b).unwrap().len(), 1);
        assert!(s.task(999).unwrap().is_none());
    }

    #[test]
    fn next_ready_skips_tasks_with_unfinished_dependencies() {
        let s = Store::open_in_memory().unwrap();
        let a = s.insert_task(&new("a", &[]), 1).unwrap();
        let b = s.insert_task(&NewTaskRow { title: "b", depends_on: &[a], priority: 10, ..Default::default() }, 2).unwrap();
        assert_eq!(s.next_ready(None).unwrap(), Some(a));
        let done = TaskState { to: TaskStatus::Done, claim_session: None, claim_token: None, attempts: 1, result: None, reason: None };
        s.set_task_state(a, &done, 3).unwrap();
        assert_eq!(s.next_ready(None).unwrap(), Some(b));
    }

    #[test]
    fn savepoints_undo_one_request_and_keep_the_rest() {
        let s = Store::open_in_memory().unwrap();
        s.begin().unwrap();
        s.savepoint().unwrap();
        s.insert_task(&new("kept", &[]), 1).unwrap();
        s.release_savepoint().unwrap();
        s.savepoint().unwrap();
        s.insert_task(&new("undone", &[]), 1).unwrap();
        s.rollback_savepoint().unwrap();
        s.commit().unwrap();
        let titles: Vec<_> = s.list_tasks(None, None, None, 100).unwrap().into_iter().map(|t| t.title).collect();
        assert_eq!(titles, ["kept"]);
    }

    #[test]
    fn counters_and_events() {
        let s = Store::open_in_memory().unwrap();
        assert_eq!(s.counter("completed").unwrap(), 0);
        s.set_counter("completed", 3).unwrap();
        assert_eq!(s.counter("completed").unwrap(), 3);
        assert_eq!(s.last_event_id().unwrap(), 0);
        for i in 1..=5 {
            s.insert_event(i, i, "x", &serde_json::json!({"i": i})).unwrap();
        }
        assert_eq!(s.last_event_id().unwrap(), 5);
        assert!(s.insert_event(5, 0, "x", &serde_json::json!({})).is_err(), "an id is written once");
        let ev = s.events(0, Some(2), true).unwrap();
        assert_eq!(ev.iter().map(|e| e.0).collect::<Vec<_>>(), [4, 5]);
    }

    /// The plan's detail lines for `sql`, parameters bound to NULL.
    fn plan(s: &Store, sql: &str) -> String {
        let mut st = s.conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let n = st.parameter_count();
        let rows = st.query_map(rusqlite::params_from_iter(std::iter::repeat_n(rusqlite::types::Null, n)), |r| r.get::<_, String>(3));
        rows.unwrap().map(|r| r.unwrap()).collect::<Vec<_>>().join("; ")
    }

    #[test]
    fn hot_queries_use_the_partial_indexes_and_are_prepared_once() {
        let s = Store::open_in_memory().unwrap();
        let ready = plan(&s, NEXT_READY);
        assert!(ready.contains("USING INDEX tasks_pending"), "{ready}");
        let active = plan(&s, ACTIVE_OF);
        assert!(active.contains("tasks_active"), "{active}");
        // A re-prepare on every call once cost a quarter of task.start (perf): pin that the
        // dependency queries stay prepared.
        let a = s.insert_task(&new("a", &[]), 1).unwrap();
        for i in 0..20 {
            s.insert_task(&new("b", &[a]), 2).unwrap();
            s.deps_with_status(a + i).unwrap();
            s.deps_of(a + i).unwrap();
            s.dependents_of(a).unwrap();
        }
        for sql in [DEPS_WITH_STATUS, DEPS_OF, DEPENDENTS_OF] {
            let st = s.conn.prepare_cached(sql).unwrap();
            assert_eq!(st.get_status(rusqlite::StatementStatus::RePrepare), 0, "{sql}");
        }
    }
}
