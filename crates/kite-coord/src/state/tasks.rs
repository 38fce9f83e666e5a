//! Task operations. The rules: a task starts only when every dependency is done (the refusal
//! names the blockers); dependencies must exist and may not close a cycle (the refusal names it);
//! every start hands out a new claim token, and only the holder of the current claim may finish
//! the task — a session that was reaped or superseded is refused (fencing).

use super::{Handled, State};
use kite_core::deps::{cycle_if_added, format_cycle};
use kite_core::{Task, TaskStatus};
use kite_proto::ops::{
    Claim, DepInfo, TaskCreate, TaskCreated, TaskDepend, TaskDetail, TaskFinish, TaskList, TaskNext, TaskPrune, TaskRef,
    TaskStart, Tasks,
};
use kite_proto::{ErrorBody, LogEvent, Refusal};
use kite_store::{HistoryRow, NewTaskRow, TaskState};

const MAX_TITLE: usize = 500;

impl State {
    pub(super) fn load_task(&self, id: i64) -> Result<Task, ErrorBody> {
        self.store.task(id).map_err(super::internal)?.ok_or_else(|| Refusal::NoTask(id).into())
    }

    pub(super) fn task_create(&mut self, a: TaskCreate) -> Handled<kite_proto::ops::TaskCreated> {
        let title = a.title.trim();
        if title.is_empty() {
            return Err(Refusal::EmptyTitle.into());
        }
        if title.chars().count() > MAX_TITLE {
            return Err(Refusal::TitleTooLong { max: MAX_TITLE }.into());
        }
        let unknown: Vec<String> = a
            .depends_on
            .iter()
            .filter(|d| !self.store.task_exists(**d).unwrap_or(false))
            .map(|d| d.to_string())
            .collect();
        if !unknown.is_empty() {
            return Err(Refusal::UnknownDependencies(unknown.join(", ")).into());
        }
        // Declared files follow the lock paths' one rule (links resolved, kept inside the root).
        let mut files = Vec::with_capacity(a.files.len().min(1024));
        for f in &a.files {
            files.push(self.lock_path(a.cwd.as_deref(), f)?.as_str().to_string());
        }
        let mut deps = a.depends_on.clone();
        deps.sort_unstable();
        deps.dedup();
        let row = NewTaskRow {
            title,
            body: &a.body,
            priority: a.priority,
            depends_on: &deps,
            files: &files,
            dedup_key: a.dedup_key.as_deref(),
            stale_after_secs: a.stale_after_secs,
            workstream: a.workstream.as_deref(),
            template: a.template.as_deref(),
        };
        let id = self.store.insert_task(&row, self.now_ms).map_err(super::internal)?;
        self.event(LogEvent::TaskCreated { task: id, title: title.to_string(), depends_on: deps.clone() })?;
        Ok(TaskCreated { id, status: TaskStatus::Pending })
    }

    pub(super) fn task_depend(&mut self, a: TaskDepend) -> Handled<kite_core::Task> {
        let task = self.load_task(a.task)?;
        self.load_task(a.on)?;
        if task.status != TaskStatus::Pending {
            return Err(Refusal::NotPending { task: task.id, is: task.status.to_string(), to: "gain dependencies" }.into());
        }
        let store = &self.store;
        if let Some(cycle) = cycle_if_added(a.task, a.on, |n| store.deps_of(n).unwrap_or_default()) {
            return Err(Refusal::Cycle { task: a.task, on: a.on, cycle: format_cycle(&cycle) }.into());
        }
        self.store.add_dep(a.task, a.on).map_err(super::internal)?;
        self.event(LogEvent::TaskDepended { task: a.task, on: a.on })?;
        Ok(self.load_task(a.task)?)
    }

    /// One page of tasks in id order; `next` says where the following page starts.
    pub(super) fn task_list(&mut self, a: TaskList) -> Handled<kite_proto::ops::Tasks> {
        let limit = super::page_size("task.list", a.limit)?;
        let tasks = self.store.list_tasks(a.status, a.workstream.as_deref(), a.after, limit + 1).map_err(super::internal)?;
        let (tasks, next) = super::page(tasks, limit, |t| t.id);
        Ok(Tasks { tasks, next })
    }

    pub(super) fn task_show(&mut self, a: TaskRef) -> Handled<kite_proto::ops::TaskDetail> {
        let task = self.load_task(a.task)?;
        let dependencies = self
            .store
            .deps_with_status(a.task)
            .map_err(super::internal)?
            .into_iter()
            .map(|(id, title, status)| DepInfo { id, title, status })
            .collect();
        let (costs, cost) = self.task_costs(a.task)?;
        Ok(TaskDetail {
            costs,
            cost,
            dependents: self.store.dependents_of(a.task).map_err(super::internal)?,
            history: self.store.history(a.task).map_err(super::internal)?,
            prune_details: self.store.prune_details(a.task).map_err(super::internal)?,
            dependencies,
            task,
        })
    }

    /// Claims a pending, unblocked task for `session`.
    fn claim(&mut self, id: i64, session: &str) -> Handled<kite_proto::ops::Claim> {
        self.touch(session)?;
        let task = self.load_task(id)?;
        if task.status != TaskStatus::Pending {
            let who = task.claim_session.as_deref().map(|s| format!(", claimed by {s}")).unwrap_or_default();
            return Err(Refusal::NotPending { task: id, is: format!("{}{who}", task.status), to: "be started" }.into());
        }
        let deps = if task.depends_on.is_empty() { Vec::new() } else { self.store.deps_with_status(id).map_err(super::internal)? };
        let blockers: Vec<String> = deps
            .into_iter()
            .filter(|(_, _, st)| *st != TaskStatus::Done)
            .map(|(d, title, st)| format!("{d} '{title}' ({st})"))
            .collect();
        if !blockers.is_empty() {
            return Err(Refusal::Blocked { task: id, blockers: blockers.join(", ") }.into());
        }
        let claim = self.pending.bump("claim_seq", 1) as u64;
        let attempts = task.attempts + 1;
        let note = format!("claim {claim}");
        self.move_task(&task, Move { to: TaskStatus::Active, claim: Some((session, claim)), attempts, by: Some(session), note: Some(&note), ..Move::default() })?;
        self.event(LogEvent::TaskStarted { task: id, session: session.to_string(), claim, attempt: attempts })?;
        // The row as just written, without reading it back.
        let task = Task {
            status: TaskStatus::Active,
            claim_session: Some(session.to_string()),
            claim_token: Some(claim),
            attempts,
            result: None,
            reason: None,
            updated_at_ms: self.now_ms,
            ..task
        };
        Ok(Claim { task, claim })
    }

    pub(super) fn task_start(&mut self, a: TaskStart) -> Handled<kite_proto::ops::Claim> {
        self.claim(a.task, &a.session)
    }

    /// Claims the best ready task in one step of the store (one statement on PostgreSQL), not
    /// a read of the ready task followed by a write.
    pub(super) fn task_next(&mut self, a: TaskNext) -> Handled<Option<kite_proto::ops::Claim>> {
        self.touch(&a.session)?;
        let claim = self.pending.counter("claim_seq") as u64 + 1;
        let Some(task) = self.store.claim_next(a.workstream.as_deref(), &a.session, claim, self.now_ms).map_err(super::internal)? else {
            return Ok(None);
        };
        self.pending.bump("claim_seq", 1);
        let note = format!("claim {claim}");
        let h = HistoryRow { from: Some(TaskStatus::Pending), to: TaskStatus::Active, session: Some(&a.session), note: Some(&note) };
        self.store.add_history(task.id, &h, self.now_ms).map_err(super::internal)?;
        self.event(LogEvent::TaskStarted { task: task.id, session: a.session.clone(), claim, attempt: task.attempts })?;
        Ok(Some(Claim { task, claim }))
    }

    /// Checks that `a.session` holds the task's current claim.
    fn fenced(&self, a: &TaskFinish) -> Result<Task, ErrorBody> {
        let task = self.load_task(a.task)?;
        let holder = task.claim_session.as_deref();
        let refuse = |why: String| Err(Refusal::Fenced { task: a.task, session: a.session.clone(), why }.into());
        if task.status != TaskStatus::Active {
            return refuse(format!("it is {} (its claim was reaped, released or finished)", task.status));
        }
        if holder != Some(a.session.as_str()) {
            return refuse(format!("its current claim is held by {}", holder.unwrap_or("no one")));
        }
        if let Some(c) = a.claim {
            if task.claim_token != Some(c) {
                return refuse(format!("claim {c} was superseded by claim {}", task.claim_token.unwrap_or(0)));
            }
        }
        Ok(task)
    }

    pub(super) fn task_done(&mut self, a: TaskFinish) -> Handled<kite_core::Task> {
        let task = self.fenced(&a)?;
        let _ = self.touch(&a.session);
        self.move_task(&task, Move { to: TaskStatus::Done, attempts: task.attempts, result: a.text.as_deref(), by: Some(&a.session), ..Move::default() })?;
        self.pending.bump("completed", 1);
        self.event(LogEvent::TaskDone { task: a.task, session: a.session.clone() })?;
        Ok(Task { status: TaskStatus::Done, claim_session: None, result: a.text, reason: None, updated_at_ms: self.now_ms, ..task })
    }

    pub(super) fn task_fail(&mut self, a: TaskFinish) -> Handled<kite_core::Task> {
        let task = self.fenced(&a)?;
        let _ = self.touch(&a.session);
        let reason = a.text.as_deref().unwrap_or(if a.transient { "transient failure" } else { "failed" });
        let to = if a.transient { TaskStatus::Pending } else { TaskStatus::Failed };
        // An attempt kite stopped (not the agent's failure) is given back.
        let attempts = if a.transient && a.uncounted { task.attempts.saturating_sub(1) } else { task.attempts };
        self.move_task(&task, Move { to, attempts, reason: Some(reason), by: Some(&a.session), note: Some(reason), ..Move::default() })?;
        if a.transient {
            self.event(LogEvent::TaskRequeued { task: a.task, session: a.session.clone(), reason: reason.to_string(), attempts: task.attempts })?;
        } else {
            self.pending.bump("failed", 1);
            self.event(LogEvent::TaskFailed { task: a.task, session: a.session.clone(), reason: reason.to_string() })?;
        }
        Ok(self.load_task(a.task)?)
    }

    pub(super) fn task_prune(&mut self, a: TaskPrune) -> Handled<kite_core::Task> {
        let task = self.load_task(a.task)?;
        let reason = a.reason.as_deref().unwrap_or("pruned by hand");
        self.move_task(&task, Move { to: TaskStatus::Pruned, attempts: task.attempts, reason: Some(reason), note: Some(reason), ..Move::default() })?;
        if let Some(d) = &a.details {
            self.store.set_prune_details(a.task, d).map_err(super::internal)?;
        }
        self.pending.bump("pruned", 1);
        self.event(LogEvent::TaskPruned { task: a.task, reason: reason.to_string(), details: a.details.clone() })?;
        // A task pruned while an agent works on it: the agent stops at its next tool call (its
        // work stays in its worktree; nothing of it lands).
        if let Some(holder) = task.claim_session.as_deref().filter(|_| task.status == TaskStatus::Active) {
            let why = format!("task {} was pruned: {reason}", a.task);
            self.tell(holder, "task", why.clone());
            self.order_stop(holder, "pruned", why);
        }
        Ok(self.load_task(a.task)?)
    }

    /// Every status change goes through here: kite-core's state machine decides whether the
    /// move is allowed, and the row and its history entry are written together.
    pub(super) fn move_task(&mut self, task: &Task, m: Move<'_>) -> Result<(), ErrorBody> {
        task.status
            .transition(m.to)
            .map_err(|e| ErrorBody::from(Refusal::Transition { task: task.id, why: e.to_string() }))?;
        // A claim is set when a task starts; afterwards the last token stays for the record.
        let (holder, token) = match m.claim {
            Some((session, token)) => (Some(session), Some(token)),
            None => (None, task.claim_token),
        };
        let row = TaskState { to: m.to, claim_session: holder, claim_token: token, attempts: m.attempts, result: m.result, reason: m.reason };
        self.store.set_task_state(task.id, &row, self.now_ms).map_err(super::internal)?;
        let h = HistoryRow { from: Some(task.status), to: m.to, session: m.by, note: m.note };
        self.store.add_history(task.id, &h, self.now_ms).map_err(super::internal)
    }
}

/// A status change: where to, and what the row and its history entry record.
#[derive(Default)]
pub(super) struct Move<'a> {
    pub(super) to: TaskStatus,
    /// The new claim (session, token), when the task starts.
    pub(super) claim: Option<(&'a str, u64)>,
    pub(super) attempts: u32,
    pub(super) result: Option<&'a str>,
    pub(super) reason: Option<&'a str>,
    /// The session that made the change (history).
    pub(super) by: Option<&'a str>,
    pub(super) note: Option<&'a str>,
}
