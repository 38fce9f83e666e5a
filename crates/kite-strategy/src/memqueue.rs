//! An in-memory [`Queue`] for the tests of the loop and the runner (kite-runner), never for use.
//!
//! It follows the coordinator's rules that the scheduler and runner rely on (claims refuse unfinished
//! dependencies, finishing needs the current claim, transient failures requeue with attempts + 1)
//! and records every prune note and every call so tests can assert on them.

use std::sync::{Arc, Mutex};

use crate::queue::{AttemptCost, BoxFuture, Claim, ListFilter, PruneNote, Queue, QueueError};
use crate::task::{NewTask, Task, TaskStatus};

#[derive(Debug, Default)]
pub struct MemState {
    pub tasks: Vec<Task>,
    pub prunes: Vec<(i64, PruneNote)>,
    pub claims: Vec<Claim>,
    pub results: Vec<(i64, String)>,
    pub failures: Vec<(i64, String, bool)>,
    /// Every recorded cost with when it was recorded (`now_ms` then).
    pub costs: Vec<(i64, AttemptCost)>,
    pub sessions: u64,
    pub token: u64,
    pub now_ms: i64,
}

#[derive(Debug, Clone, Default)]
pub struct MemQueue {
    pub state: Arc<Mutex<MemState>>,
}

impl MemQueue {
    pub fn new(now_ms: i64) -> Self {
        let q = MemQueue::default();
        q.state.lock().unwrap().now_ms = now_ms;
        q
    }

    /// Inserts a task as is (tests set ids, statuses and ages directly).
    pub fn insert(&self, t: Task) {
        self.state.lock().unwrap().tasks.push(t);
    }

    pub fn task(&self, id: i64) -> Task {
        self.state.lock().unwrap().tasks.iter().find(|t| t.id == id).cloned().expect("task")
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut MemState) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }
}

/// A pending task with sensible defaults for tests.
pub fn snap(id: i64, title: &str) -> Task {
    Task::pending(id, NewTask { title: title.to_string(), ..Default::default() }, 0)
}

impl Queue for MemQueue {
    fn list<'a>(&'a self, filter: &'a ListFilter) -> BoxFuture<'a, Result<Vec<Task>, QueueError>> {
        let s = self.state.lock().unwrap();
        let mut out: Vec<_> = s.tasks.iter().filter(|t| filter.matches(t)).cloned().collect();
        out.sort_by_key(|t| t.id);
        if filter.newest_first {
            out.reverse();
        }
        if let Some(n) = filter.limit {
            out.truncate(n);
        }
        Box::pin(async move { Ok(out) })
    }

    fn create(&self, task: NewTask) -> BoxFuture<'_, Result<i64, QueueError>> {
        let mut s = self.state.lock().unwrap();
        let id = s.tasks.iter().map(|t| t.id).max().unwrap_or(0) + 1;
        let now = s.now_ms;
        s.tasks.push(Task::pending(id, task, now));
        Box::pin(async move { Ok(id) })
    }

    fn prune(&self, id: i64, note: PruneNote) -> BoxFuture<'_, Result<(), QueueError>> {
        let mut s = self.state.lock().unwrap();
        let r = match s.tasks.iter_mut().find(|t| t.id == id) {
            None => Err(QueueError::NotFound(id)),
            Some(t) if t.status != TaskStatus::Pending => {
                Err(QueueError::Refused(format!("task {id} is {}", t.status)))
            }
            Some(t) => {
                t.status = TaskStatus::Pruned;
                s.prunes.push((id, note));
                Ok(())
            }
        };
        Box::pin(async move { r })
    }

    fn register_session<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<String, QueueError>> {
        let mut s = self.state.lock().unwrap();
        s.sessions += 1;
        let id = format!("{name}-{}", s.sessions);
        Box::pin(async move { Ok(id) })
    }

    fn claim<'a>(&'a self, task_id: i64, session_id: &'a str) -> BoxFuture<'a, Result<Claim, QueueError>> {
        let mut guard = self.state.lock().unwrap();
        let s = &mut *guard;
        let r = (|| {
            let t = s.tasks.iter().find(|t| t.id == task_id).ok_or(QueueError::NotFound(task_id))?;
            if t.status != TaskStatus::Pending {
                return Err(QueueError::Refused(format!("task {task_id} is {}", t.status)));
            }
            let unfinished: Vec<i64> = t
                .depends_on
                .iter()
                .filter(|d| s.tasks.iter().find(|x| x.id == **d).is_none_or(|x| x.status != TaskStatus::Done))
                .copied()
                .collect();
            if !unfinished.is_empty() {
                return Err(QueueError::Refused(format!("unfinished dependencies {unfinished:?}")));
            }
            s.token += 1;
            let claim = Claim { task_id, session_id: session_id.to_string(), token: s.token };
            s.tasks.iter_mut().find(|t| t.id == task_id).unwrap().status = TaskStatus::Active;
            s.claims.push(claim.clone());
            Ok(claim)
        })();
        Box::pin(async move { r })
    }

    fn done<'a>(&'a self, claim: &'a Claim, result: &'a str) -> BoxFuture<'a, Result<(), QueueError>> {
        let mut s = self.state.lock().unwrap();
        let r = check_claim(&s, claim).map(|_| {
            s.tasks.iter_mut().find(|t| t.id == claim.task_id).unwrap().status = TaskStatus::Done;
            s.results.push((claim.task_id, result.to_string()));
        });
        Box::pin(async move { r })
    }

    fn fail<'a>(&'a self, claim: &'a Claim, error: &'a str, transient: bool) -> BoxFuture<'a, Result<(), QueueError>> {
        let mut s = self.state.lock().unwrap();
        let r = check_claim(&s, claim).map(|_| {
            let t = s.tasks.iter_mut().find(|t| t.id == claim.task_id).unwrap();
            t.attempts += 1;
            t.status = if transient { TaskStatus::Pending } else { TaskStatus::Failed };
            s.failures.push((claim.task_id, error.to_string(), transient));
        });
        Box::pin(async move { r })
    }

    fn requeue_uncounted<'a>(&'a self, claim: &'a Claim, reason: &'a str) -> BoxFuture<'a, Result<(), QueueError>> {
        let mut s = self.state.lock().unwrap();
        let r = check_claim(&s, claim).map(|_| {
            let t = s.tasks.iter_mut().find(|t| t.id == claim.task_id).unwrap();
            t.status = TaskStatus::Pending;
            s.failures.push((claim.task_id, reason.to_string(), true));
        });
        Box::pin(async move { r })
    }

    fn stop_order<'a>(&'a self, _session: &'a str, daily_budget_usd: Option<f64>) -> BoxFuture<'a, Result<Option<(String, String)>, QueueError>> {
        // The in-memory queue has no stop orders of its own; the budget is measured as the
        // daemon does, on what was recorded today.
        Box::pin(async move {
            let spent = self.agent_spend_today().await?;
            Ok(daily_budget_usd.filter(|b| spent >= *b).map(|b| ("budget".to_string(), format!("the daily budget is spent (${spent:.2} of ${b:.2})"))))
        })
    }

    fn record_cost<'a>(&'a self, cost: &'a AttemptCost) -> BoxFuture<'a, Result<(), QueueError>> {
        let mut s = self.state.lock().unwrap();
        let at = s.now_ms;
        s.costs.push((at, cost.clone()));
        Box::pin(async move { Ok(()) })
    }

    /// As the coordinator: the costs recorded since UTC midnight of the queue's clock.
    fn agent_spend_today(&self) -> BoxFuture<'_, Result<f64, QueueError>> {
        let s = self.state.lock().unwrap();
        let day_start = s.now_ms - s.now_ms.rem_euclid(86_400_000);
        let usd: f64 = s.costs.iter().filter(|(at, _)| *at >= day_start).map(|(_, c)| c.cost.usd).sum();
        Box::pin(async move { Ok(usd) })
    }
}

fn check_claim(s: &MemState, claim: &Claim) -> Result<(), QueueError> {
    let t = s.tasks.iter().find(|t| t.id == claim.task_id).ok_or(QueueError::NotFound(claim.task_id))?;
    let last = s.claims.iter().rev().find(|c| c.task_id == claim.task_id);
    if t.status != TaskStatus::Active || last != Some(claim) {
        return Err(QueueError::Refused(format!("claim on task {} is not current", claim.task_id)));
    }
    Ok(())
}
