//! Tasks, their dependencies, declared files and history, on PostgreSQL. The same queries as the
//! SQLite backend's, in PostgreSQL's dialect; the ready-task query locks the row it returns
//! (`FOR UPDATE SKIP LOCKED`), so a second writer (a person's psql, a migration) can neither
//! claim it too nor make this claim wait.

use crate::writes::{self, Write};
use crate::{own, PgStore, Result};
use kite_core::{HistoryEntry, Task, TaskStatus};
use kite_store::{HistoryRow, NewTaskRow, StoreError, TaskState, TaskStore};
use tokio_postgres::Row;
use std::collections::BTreeMap;

const TASK_COLUMNS: &str = "t.id, t.title, t.body, t.status, t.priority, t.dedup_key, t.stale_after_secs,
    t.workstream, t.template, t.attempts, t.claim_session, t.claim_token, t.result, t.reason,
    t.created_at_ms, t.updated_at_ms,
    (SELECT string_agg(dep::text, ',') FROM task_deps WHERE task = t.id),
    (SELECT string_agg(path, E'\\n') FROM task_files WHERE task = t.id)";

const NEXT_READY: &str = "SELECT t.id FROM tasks t
    WHERE t.status = 'pending' AND ($1::text IS NULL OR t.workstream = $1)
      AND NOT EXISTS (SELECT 1 FROM task_deps d JOIN tasks x ON x.id = d.dep
                      WHERE d.task = t.id AND x.status != 'done')
    ORDER BY t.priority DESC, t.id LIMIT 1
    FOR UPDATE OF t SKIP LOCKED";

fn status(s: &str) -> Result<TaskStatus> {
    s.parse().map_err(StoreError::Corrupt)
}

fn task_from_row(r: &Row) -> Result<Task> {
    let deps: Option<String> = r.get(16);
    let files: Option<String> = r.get(17);
    Ok(Task {
        id: r.get(0),
        title: r.get(1),
        body: r.get(2),
        status: status(r.get(3))?,
        priority: r.get(4),
        dedup_key: r.get(5),
        stale_after_secs: r.get::<_, Option<i64>>(6).map(|v| v as u64),
        workstream: r.get(7),
        template: r.get(8),
        attempts: r.get::<_, i64>(9) as u32,
        claim_session: r.get(10),
        claim_token: r.get::<_, Option<i64>>(11).map(|v| v as u64),
        result: r.get(12),
        reason: r.get(13),
        created_at_ms: r.get(14),
        updated_at_ms: r.get(15),
        depends_on: deps.map(|d| {
            let mut v: Vec<i64> = d.split(',').filter_map(|x| x.parse().ok()).collect();
            v.sort_unstable();
            v
        })
        .unwrap_or_default(),
        files: files.map(|f| f.split('\n').map(str::to_string).collect()).unwrap_or_default(),
    })
}

fn ids(rows: Vec<Row>) -> Vec<i64> {
    let mut v: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    v.sort_unstable();
    v
}

impl TaskStore for PgStore {
    fn insert_task(&self, t: &NewTaskRow<'_>, now_ms: i64) -> Result<i64> {
        let id = self.next_task_id()?;
        self.hold(Write::NewTask(writes::NewTask {
            id,
            title: t.title.to_string(),
            body: t.body.to_string(),
            priority: t.priority,
            dedup_key: t.dedup_key.map(str::to_string),
            stale_after_secs: t.stale_after_secs.map(|v| v as i64),
            workstream: t.workstream.map(str::to_string),
            template: t.template.map(str::to_string),
            at_ms: now_ms,
        }))?;
        let mut files: Vec<String> = Vec::with_capacity(t.files.len());
        for f in t.files {
            self.send("INSERT INTO task_files (task, path) VALUES ($1, $2) ON CONFLICT DO NOTHING", vec![own(id), own(f.clone())])?;
            if !files.contains(f) {
                files.push(f.clone());
            }
        }
        // As the row will read back (files in the order given, without repeats).
        self.cache().put(
            id,
            Some(Task {
                id,
                title: t.title.to_string(),
                body: t.body.to_string(),
                status: TaskStatus::Pending,
                priority: t.priority,
                depends_on: Vec::new(),
                files,
                dedup_key: t.dedup_key.map(str::to_string),
                stale_after_secs: t.stale_after_secs,
                workstream: t.workstream.map(str::to_string),
                template: t.template.map(str::to_string),
                attempts: 0,
                claim_session: None,
                claim_token: None,
                result: None,
                reason: None,
                created_at_ms: now_ms,
                updated_at_ms: now_ms,
            }),
        );
        for dep in t.depends_on {
            self.add_dep(id, *dep)?;
        }
        self.add_history(id, &HistoryRow { from: None, to: TaskStatus::Pending, session: None, note: None }, now_ms)?;
        Ok(id)
    }

    fn add_dep(&self, task: i64, on: i64) -> Result<()> {
        self.send("INSERT INTO task_deps (task, dep) VALUES ($1, $2) ON CONFLICT DO NOTHING", vec![own(task), own(on)])?;
        self.cache().update(task, |t| {
            if let Err(at) = t.depends_on.binary_search(&on) {
                t.depends_on.insert(at, on);
            }
        });
        Ok(())
    }

    fn task(&self, id: i64) -> Result<Option<Task>> {
        if let Some(t) = self.cache().get(id) {
            return Ok(Some(t.clone()));
        }
        let t = self.opt(&format!("SELECT {TASK_COLUMNS} FROM tasks t WHERE t.id = $1"), &[&id])?.as_ref().map(task_from_row).transpose()?;
        if let Some(t) = &t {
            self.cache().put(id, Some(t.clone()));
        }
        Ok(t)
    }

    fn task_exists(&self, id: i64) -> Result<bool> {
        if self.cache().get(id).is_some() {
            return Ok(true);
        }
        Ok(self.opt("SELECT 1 FROM tasks WHERE id = $1", &[&id])?.is_some())
    }

    fn list_tasks(&self, status: Option<TaskStatus>, workstream: Option<&str>, after: Option<i64>, limit: u32) -> Result<Vec<Task>> {
        let rows = self.query(
            &format!(
                "SELECT {TASK_COLUMNS} FROM tasks t
                 WHERE ($1::text IS NULL OR t.status = $1) AND ($2::text IS NULL OR t.workstream = $2) AND t.id > $3
                 ORDER BY t.id LIMIT $4"
            ),
            &[&status.map(|s| s.as_str()), &workstream, &after.unwrap_or(0), &i64::from(limit)],
        )?;
        rows.iter().map(task_from_row).collect()
    }

    fn deps_of(&self, id: i64) -> Result<Vec<i64>> {
        Ok(ids(self.query("SELECT dep FROM task_deps WHERE task = $1", &[&id])?))
    }

    fn dependents_of(&self, id: i64) -> Result<Vec<i64>> {
        Ok(ids(self.query("SELECT task FROM task_deps WHERE dep = $1", &[&id])?))
    }

    fn deps_with_status(&self, id: i64) -> Result<Vec<(i64, String, TaskStatus)>> {
        self.query("SELECT t.id, t.title, t.status FROM tasks t WHERE t.id IN (SELECT dep FROM task_deps WHERE task = $1) ORDER BY t.id", &[&id])?
            .iter()
            .map(|r| Ok((r.get(0), r.get(1), status(r.get(2))?)))
            .collect()
    }

    fn next_ready(&self, workstream: Option<&str>) -> Result<Option<i64>> {
        Ok(self.opt(NEXT_READY, &[&workstream])?.map(|r| r.get(0)))
    }

    fn claim_next(&self, workstream: Option<&str>, session: &str, token: u64, now_ms: i64) -> Result<Option<Task>> {
        // One statement: the row the ready query locked (skipping rows another writer holds)
        // is the row it changes, with nothing read by the daemon in between.
        let sql = format!(
            "UPDATE tasks t SET status = 'active', claim_session = $2, claim_token = $3, attempts = t.attempts + 1,
                                result = NULL, reason = NULL, updated_at_ms = $4
             WHERE t.id = ({NEXT_READY}) RETURNING {TASK_COLUMNS}"
        );
        let token = token as i64;
        let row = self.one_opt_write(&sql, &[&workstream, &session, &token, &now_ms])?;
        let Some(t) = row.as_ref().map(task_from_row).transpose()? else { return Ok(None) };
        self.cache().put(t.id, Some(t.clone()));
        Ok(Some(t))
    }

    fn set_task_state(&self, id: i64, st: &TaskState<'_>, now_ms: i64) -> Result<()> {
        let known = self.cache().get(id).map(|t| (t.status, t.claim_token));
        match known {
            // Conditional: the row changes only if it is still what the daemon decided on (a
            // claim of a task someone else claimed meanwhile fails the batch).
            Some((was_status, was_token)) => {
                self.hold(Write::Change(writes::Change {
                    id,
                    status: st.to,
                    claim_session: st.claim_session.map(str::to_string),
                    claim_token: st.claim_token.map(|v| v as i64),
                    attempts: i64::from(st.attempts),
                    result: st.result.map(str::to_string),
                    reason: st.reason.map(str::to_string),
                    at_ms: now_ms,
                    was_status,
                    was_token: was_token.map(|v| v as i64),
                }))?;
                self.cache().update(id, |t| {
                    t.status = st.to;
                    t.claim_session = st.claim_session.map(str::to_string);
                    t.claim_token = st.claim_token;
                    t.attempts = st.attempts;
                    t.result = st.result.map(str::to_string);
                    t.reason = st.reason.map(str::to_string);
                    t.updated_at_ms = now_ms;
                });
                Ok(())
            }
            None => self.send(
                "UPDATE tasks SET status = $2, claim_session = $3, claim_token = $4, attempts = $5,
                                  result = $6, reason = $7, updated_at_ms = $8 WHERE id = $1",
                vec![
                    own(id),
                    own(st.to.as_str().to_string()),
                    own(st.claim_session.map(str::to_string)),
                    own(st.claim_token.map(|v| v as i64)),
                    own(i64::from(st.attempts)),
                    own(st.result.map(str::to_string)),
                    own(st.reason.map(str::to_string)),
                    own(now_ms),
                ],
            ),
        }
    }

    fn set_prune_details(&self, id: i64, details: &serde_json::Value) -> Result<()> {
        self.send("UPDATE tasks SET prune_details = $2 WHERE id = $1", vec![own(id), own(details.to_string())])?;
        Ok(())
    }

    fn prune_details(&self, id: i64) -> Result<Option<serde_json::Value>> {
        let s: Option<String> = self.opt("SELECT prune_details FROM tasks WHERE id = $1", &[&id])?.and_then(|r| r.get(0));
        Ok(s.and_then(|s| serde_json::from_str(&s).ok()))
    }

    fn add_history(&self, task: i64, h: &HistoryRow<'_>, now_ms: i64) -> Result<()> {
        self.hold(Write::History(writes::History {
            task,
            at_ms: now_ms,
            from: h.from,
            to: h.to,
            session: h.session.map(str::to_string),
            note: h.note.map(str::to_string),
        }))
    }

    fn history(&self, task: i64) -> Result<Vec<HistoryEntry>> {
        self.query("SELECT at_ms, from_st, to_st, session, note FROM task_history WHERE task = $1 ORDER BY id", &[&task])?
            .iter()
            .map(|r| {
                Ok(HistoryEntry {
                    at_ms: r.get(0),
                    from: r.get::<_, Option<&str>>(1).map(status).transpose()?,
                    to: status(r.get(2))?,
                    session: r.get(3),
                    note: r.get(4),
                })
            })
            .collect()
    }

    fn active_tasks_of(&self, session: &str) -> Result<Vec<i64>> {
        Ok(ids(self.query("SELECT id FROM tasks WHERE status = 'active' AND claim_session = $1", &[&session])?))
    }

    fn counts_by_status(&self) -> Result<BTreeMap<String, u64>> {
        let mut out: BTreeMap<String, u64> = TaskStatus::ALL.iter().map(|s| (s.as_str().to_string(), 0)).collect();
        for r in self.query("SELECT status, count(*) FROM tasks GROUP BY status", &[])? {
            out.insert(r.get(0), r.get::<_, i64>(1) as u64);
        }
        Ok(out)
    }
}
