//! The small slice of the coordinator the scheduler and runner need, as a trait.
//!
//! The strategy loop and the runner are written against [`Queue`], not against the client library,
//! so they can be tested with an in-memory queue and wired to the daemon by whoever owns the client.
//! Methods return boxed `Send` futures so the trait is object safe (`Arc<dyn Queue>`) and usable from
//! spawned tokio tasks.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

use crate::score::{Score, TrackRecord};
use crate::task::{NewTask, Task, TaskStatus};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What went wrong talking to the queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The coordinator refused the request (unfinished dependencies, claim lost, ...).
    #[error("refused: {0}")]
    Refused(String),
    #[error("no task {0}")]
    NotFound(i64),
    /// The coordinator could not be reached or answered garbage.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
}

/// Which tasks to list. Empty `statuses` means every status; `ids` restricts to those ids; results
/// are in id order, or newest (highest id) first with `newest_first`, then cut to `limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListFilter {
    #[serde(default)]
    pub statuses: Vec<TaskStatus>,
    #[serde(default)]
    pub ids: Option<Vec<i64>>,
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub newest_first: bool,
}

impl ListFilter {
    pub fn statuses(statuses: &[TaskStatus]) -> Self {
        ListFilter { statuses: statuses.to_vec(), ..Default::default() }
    }

    pub fn ids(ids: Vec<i64>) -> Self {
        ListFilter { ids: Some(ids), ..Default::default() }
    }

    /// Whether a task passes the filter (ignoring `limit`).
    pub fn matches(&self, t: &Task) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&t.status))
            && self.ids.as_ref().is_none_or(|ids| ids.contains(&t.id))
    }
}

/// Why a task was pruned, to be recorded with it (`kite task show`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PruneKind {
    /// A newer task or candidate carries the same dedup key.
    Superseded,
    /// Older than its stale-after.
    Stale,
    /// The queue (or its template's share) was over capacity and this scored lowest.
    OverCapacity,
    /// A dependency failed or was pruned, so this can never start.
    DependencyFailed,
}

/// The record handed to [`Queue::prune`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PruneNote {
    pub kind: PruneKind,
    /// One human sentence.
    pub reason: String,
    /// The task that replaces this one, for supersessions.
    pub superseded_by: Option<i64>,
    /// The pruned task's score when the decision was made.
    pub score: Option<Score>,
}

/// Proof that a session holds a task; finishing the task requires it (fencing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub task_id: i64,
    pub session_id: String,
    /// Opaque fencing token from the coordinator.
    pub token: u64,
}

/// Task counts by status, overall and per template (`kite status`, the score's track record).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueStats {
    pub by_status: BTreeMap<TaskStatus, u64>,
    pub by_template: BTreeMap<String, TrackRecord>,
}

impl QueueStats {
    /// Counts over a list of tasks (what the default [`Queue::stats`] does).
    pub fn from_tasks<'a>(tasks: impl IntoIterator<Item = &'a Task>) -> Self {
        let mut s = QueueStats::default();
        for t in tasks {
            *s.by_status.entry(t.status).or_default() += 1;
            if let Some(name) = &t.template {
                let r = s.by_template.entry(name.clone()).or_default();
                match t.status {
                    TaskStatus::Done => r.done += 1,
                    TaskStatus::Failed => r.failed += 1,
                    TaskStatus::Pruned => r.pruned += 1,
                    _ => {}
                }
            }
        }
        s
    }
}

/// The coordinator as the scheduler and the runner use it.
pub trait Queue: Send + Sync {
    /// Tasks matching the filter, in id order.
    fn list<'a>(&'a self, filter: &'a ListFilter) -> BoxFuture<'a, Result<Vec<Task>, QueueError>>;

    /// Creates a task and returns its id.
    fn create(&self, task: NewTask) -> BoxFuture<'_, Result<i64, QueueError>>;

    /// Prunes a pending task, recording why.
    fn prune(&self, id: i64, note: PruneNote) -> BoxFuture<'_, Result<(), QueueError>>;

    /// Registers an agent session and returns its id.
    fn register_session<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<String, QueueError>>;

    /// Claims a pending, ready task for a session (it becomes active). Refused while a dependency is
    /// not done or someone else holds it.
    fn claim<'a>(&'a self, task_id: i64, session_id: &'a str) -> BoxFuture<'a, Result<Claim, QueueError>>;

    /// Marks the claimed task done with a result.
    fn done<'a>(&'a self, claim: &'a Claim, result: &'a str) -> BoxFuture<'a, Result<(), QueueError>>;

    /// Fails the claimed task. `transient`: back to pending with `attempts + 1` for a retry;
    /// otherwise it is failed for good with `error` as the reason.
    fn fail<'a>(&'a self, claim: &'a Claim, error: &'a str, transient: bool) -> BoxFuture<'a, Result<(), QueueError>>;

    /// Puts the claimed task back to pending without counting the attempt: kite stopped the
    /// agent (the daily budget), it did not fail.
    fn requeue_uncounted<'a>(&'a self, claim: &'a Claim, reason: &'a str) -> BoxFuture<'a, Result<(), QueueError>>;

    /// The stop order standing for a session, as the tool hook sees it: `(kind, reason)` with
    /// kind `pruned`, `ordered` or `budget` (measured against `daily_budget_usd`).
    fn stop_order<'a>(&'a self, session: &'a str, daily_budget_usd: Option<f64>) -> BoxFuture<'a, Result<Option<(String, String)>, QueueError>>;

    /// Keeps a running agent's session alive for the reaper. Default: nothing to do.
    fn heartbeat<'a>(&'a self, _session_id: &'a str) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async { Ok(()) })
    }

    /// Ends a session the runner registered. Default: nothing to do.
    fn end_session<'a>(&'a self, _session_id: &'a str) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async { Ok(()) })
    }

    /// Records what one agent attempt cost (kept per attempt and summed per task and per day).
    fn record_cost<'a>(&'a self, cost: &'a AttemptCost) -> BoxFuture<'a, Result<(), QueueError>>;

    /// Dollars spent today (UTC) by the agents kite started: what `[runner] daily_budget_usd`
    /// is measured against.
    fn agent_spend_today(&self) -> BoxFuture<'_, Result<f64, QueueError>>;

    /// Counts by status and template. The default lists every task; a coordinator with counters
    /// should answer directly.
    fn stats(&self) -> BoxFuture<'_, Result<QueueStats, QueueError>> {
        Box::pin(async move {
            let all = self.list(&ListFilter::default()).await?;
            Ok(QueueStats::from_tasks(&all))
        })
    }
}

/// What one agent attempt cost, as the runner records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptCost {
    pub task_id: i64,
    /// The kite session of the attempt.
    pub session: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    #[serde(flatten)]
    pub cost: kite_agent::cost::Cost,
    /// How the attempt ended, in a word: finished, transient, stopped, failed.
    pub outcome: String,
}
