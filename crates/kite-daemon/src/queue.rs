//! kite-sched's [`Queue`] over the client library: how the strategy loop and the runner talk to
//! the daemon (`kite sched tick`, `kite spawn`, and the daemon's own background loop).
//!
//! The daemon's task list filters by one status at a time and not by id, so [`list`] asks once per
//! status (or looks a handful of ids up with `task.show`) and filters, orders and cuts the rest
//! here. Daemon refusals map to [`QueueError::Refused`] (or [`QueueError::NotFound`] for an
//! unknown task); anything that is not an answer from the daemon is [`QueueError::Unavailable`].
//! What an agent attempt cost goes to `cost.record` as source `agent`; the runner's daily budget
//! reads today's agent dollars from `cost.summary`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use kite_proto::ops::{
    Claim as WireClaim, CostRecord, CostSummary, SessionId, SessionRef, SessionRegister,
    TaskCreated, TaskFinish, TaskList, TaskPrune, TaskRef, TaskStart, Tasks,
};
use kite_proto::{Client, ClientError, ErrorCode};
use kite_strategy::{
    AttemptCost, BoxFuture, Claim, ListFilter, NewTask, PruneNote, Queue, QueueError, QueueStats,
    Task, TaskStatus,
};
use serde_json::Value;

/// Up to this many ids are looked up one by one (`task.show`); more, and the whole list is cheaper.
const SHOW_MAX: usize = 16;

/// The queue as the daemon holds it, over one connection.
pub struct ClientQueue {
    client: Arc<Client>,
    /// Where the landed work's signals come from, for the track records in [`Queue::stats`].
    quality: Option<Arc<crate::quality::QualitySource>>,
    /// Sessions registered here and not ended yet, so that a shutdown can end them: their tasks
    /// then go back to pending at once instead of after the reaper's timeout.
    sessions: Mutex<BTreeSet<String>>,
}

impl ClientQueue {
    pub fn new(client: Arc<Client>) -> ClientQueue {
        ClientQueue {
            client,
            quality: None,
            sessions: Mutex::default(),
        }
    }

    /// The track records also weigh landed work by what survived, read by `source` (shared with
    /// the background refresh, so one cache of blames serves both).
    pub fn with_quality(mut self, source: Arc<crate::quality::QualitySource>) -> ClientQueue {
        self.quality = Some(source);
        self
    }

    /// Ends every session this queue registered and did not end (their active tasks go back to
    /// pending). Errors are ignored: this is clean-up on the way out.
    pub async fn end_all_sessions(&self) {
        let open: Vec<String> = self
            .sessions
            .lock()
            .map(|mut s| std::mem::take(&mut *s).into_iter().collect())
            .unwrap_or_default();
        for session in open {
            let r: Result<Value, _> = self
                .client
                .request::<kite_proto::op::SessionEnd>(SessionRef {
                    session: session.clone(),
                })
                .await;
            if let Err(e) = r {
                tracing::debug!(session, error = %e, "could not end runner session");
            }
        }
    }

    fn forget(&self, session: &str) {
        if let Ok(mut s) = self.sessions.lock() {
            s.remove(session);
        }
    }
}

/// The finish request for a claim: done (`transient` false) or failed.
fn finish(claim: &Claim, text: &str, transient: bool) -> TaskFinish {
    TaskFinish {
        task: claim.task_id,
        session: claim.session_id.clone(),
        claim: Some(claim.token),
        text: Some(text.to_string()),
        transient,
        uncounted: false,
    }
}

/// The `cost.record` request for what one of the runner's agents cost.
fn cost_record(c: &AttemptCost) -> CostRecord {
    let k = &c.cost;
    CostRecord {
        session: c.session.clone(),
        task: Some(c.task_id),
        attempt: Some(c.attempt),
        source: "agent".into(),
        usd: k.usd,
        input_tokens: k.usage.input_tokens,
        output_tokens: k.usage.output_tokens,
        cache_creation_input_tokens: k.usage.cache_creation_input_tokens,
        cache_read_input_tokens: k.usage.cache_read_input_tokens,
        model: k.model.clone(),
        turns: k.turns,
        duration_ms: k.duration_ms,
        agent_session: k.agent_session.clone(),
        outcome: Some(c.outcome.clone()),
        unpriced: k.unpriced.clone(),
    }
}

/// A client error as the scheduler sees it. `task`: the task the request was about, so that a
/// "no task N" answer becomes [`QueueError::NotFound`].
fn queue_error(e: ClientError, task: Option<i64>) -> QueueError {
    match e {
        ClientError::Daemon(b) => match (b.code, task) {
            (ErrorCode::NotFound, Some(id)) if b.message.starts_with("no task") => {
                QueueError::NotFound(id)
            }
            (ErrorCode::Internal, _) => QueueError::Unavailable(b.message),
            _ => QueueError::Refused(b.message),
        },
        other => QueueError::Unavailable(other.to_string()),
    }
}

/// Tasks matching `filter`, in id order (newest first on request), cut to its limit.
pub async fn list(client: &Client, filter: &ListFilter) -> Result<Vec<Task>, QueueError> {
    let mut tasks: Vec<Task> = Vec::new();
    match &filter.ids {
        Some(ids) if ids.len() <= SHOW_MAX => {
            let ids: BTreeSet<i64> = ids.iter().copied().collect();
            for id in ids {
                match client
                    .request::<kite_proto::op::TaskShow>(TaskRef { task: id })
                    .await
                {
                    Ok(d) => tasks.push(d.task),
                    Err(e) if e.code() == Some(ErrorCode::NotFound) => {}
                    Err(e) => return Err(queue_error(e, Some(id))),
                }
            }
        }
        _ => {
            let statuses: BTreeSet<TaskStatus> = filter.statuses.iter().copied().collect();
            // The daemon can cut the list itself only when it is asked for exactly what we want.
            let limit = if statuses.len() == 1 && filter.ids.is_none() && !filter.newest_first {
                // One page is all a request may ask for; beyond it, page through (and cut below).
                filter
                    .limit
                    .and_then(|l| u32::try_from(l).ok())
                    .filter(|l| *l <= kite_proto::ops::MAX_PAGE)
            } else {
                None
            };
            let asks: Vec<Option<TaskStatus>> = if statuses.is_empty() {
                vec![None]
            } else {
                statuses.into_iter().map(Some).collect()
            };
            for status in asks {
                let args = TaskList {
                    status,
                    workstream: None,
                    limit,
                    after: None,
                };
                if limit.is_some() {
                    let r: Tasks = client
                        .request::<kite_proto::op::TaskList>(args)
                        .await
                        .map_err(|e| queue_error(e, None))?;
                    tasks.extend(r.tasks);
                } else {
                    tasks.extend(
                        client
                            .all_tasks(args)
                            .await
                            .map_err(|e| queue_error(e, None))?,
                    );
                }
            }
        }
    }
    tasks.retain(|t| filter.matches(t));
    tasks.sort_by_key(|t| t.id);
    tasks.dedup_by_key(|t| t.id);
    if filter.newest_first {
        tasks.reverse();
    }
    if let Some(l) = filter.limit {
        tasks.truncate(l);
    }
    Ok(tasks)
}

/// Counts by status and per template (done / failed / pruned), from the whole task list.
/// Task counts per template from kite.db's tasks, with the merge queue's rejected and conflicted
/// landings (which count against a template too).
pub async fn stats(
    client: &Client,
    quality: Option<&crate::quality::QualitySource>,
) -> Result<QueueStats, QueueError> {
    let all = list(client, &ListFilter::default()).await?;
    let mut stats = QueueStats::from_tasks(&all);
    if let Some(q) = quality {
        // The signals are a refinement: without them the record is the counts, as before.
        match q.signals().await {
            Ok(signals) => {
                let template_of = all
                    .iter()
                    .filter_map(|t| Some((t.id, t.template.clone()?)))
                    .collect();
                crate::quality::add_to_records(&mut stats.by_template, &template_of, &signals);
            }
            Err(e) => tracing::warn!("the landed work's signals could not be read: {e}"),
        }
    }
    let book = client
        .request::<kite_proto::op::MergeList>(kite_proto::ops::MergeList { finished: Some(0) })
        .await
        .map_err(|e| queue_error(e, None))?;
    for (name, c) in book.by_template {
        let r = stats.by_template.entry(name).or_default();
        r.rejected = c.rejected;
        r.conflicted = c.conflicted;
    }
    Ok(stats)
}

impl Queue for ClientQueue {
    fn list<'a>(&'a self, filter: &'a ListFilter) -> BoxFuture<'a, Result<Vec<Task>, QueueError>> {
        Box::pin(list(&self.client, filter))
    }

    fn create(&self, task: NewTask) -> BoxFuture<'_, Result<i64, QueueError>> {
        Box::pin(async move {
            let r: TaskCreated = self
                .client
                .request::<kite_proto::op::TaskCreate>(task)
                .await
                .map_err(|e| queue_error(e, None))?;
            Ok(r.id)
        })
    }

    fn prune(&self, id: i64, note: PruneNote) -> BoxFuture<'_, Result<(), QueueError>> {
        Box::pin(async move {
            // The whole note (kind, reason, score parts, superseded_by) is what `kite task show`
            // prints as the prune details.
            let details =
                serde_json::to_value(&note).map_err(|e| QueueError::Unavailable(e.to_string()))?;
            let args = TaskPrune {
                task: id,
                reason: Some(note.reason),
                details: Some(details),
            };
            self.client
                .request::<kite_proto::op::TaskPrune>(args)
                .await
                .map_err(|e| queue_error(e, Some(id)))?;
            Ok(())
        })
    }

    fn register_session<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<String, QueueError>> {
        Box::pin(async move {
            // Not attached: one connection serves many runner sessions, and each lives exactly as
            // long as its attempt (heartbeats while the agent runs, `session.end` after).
            let args = SessionRegister {
                name: name.to_string(),
                attach: false,
                key: None,
            };
            let r: SessionId = self
                .client
                .request::<kite_proto::op::SessionRegister>(args)
                .await
                .map_err(|e| queue_error(e, None))?;
            if let Ok(mut s) = self.sessions.lock() {
                s.insert(r.id.clone());
            }
            Ok(r.id)
        })
    }

    fn claim<'a>(
        &'a self,
        task_id: i64,
        session_id: &'a str,
    ) -> BoxFuture<'a, Result<Claim, QueueError>> {
        Box::pin(async move {
            let args = TaskStart {
                task: task_id,
                session: session_id.to_string(),
            };
            let r: WireClaim = self
                .client
                .request::<kite_proto::op::TaskStart>(args)
                .await
                .map_err(|e| queue_error(e, Some(task_id)))?;
            Ok(Claim {
                task_id,
                session_id: session_id.to_string(),
                token: r.claim,
            })
        })
    }

    fn done<'a>(
        &'a self,
        claim: &'a Claim,
        result: &'a str,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            let args = finish(claim, result, false);
            self.client
                .request::<kite_proto::op::TaskDone>(args)
                .await
                .map_err(|e| queue_error(e, Some(claim.task_id)))?;
            Ok(())
        })
    }

    fn fail<'a>(
        &'a self,
        claim: &'a Claim,
        error: &'a str,
        transient: bool,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            let args = finish(claim, error, transient);
            self.client
                .request::<kite_proto::op::TaskFail>(args)
                .await
                .map_err(|e| queue_error(e, Some(claim.task_id)))?;
            Ok(())
        })
    }

    fn stop_order<'a>(
        &'a self,
        session: &'a str,
        daily_budget_usd: Option<f64>,
    ) -> BoxFuture<'a, Result<Option<(String, String)>, QueueError>> {
        Box::pin(async move {
            let args = kite_proto::ops::SessionNews {
                session: session.to_string(),
                daily_budget_usd,
                stop_on_budget: true,
                ..Default::default()
            };
            let n = self
                .client
                .request::<kite_proto::op::SessionNews>(args)
                .await
                .map_err(|e| queue_error(e, None))?;
            Ok(n.stop
                .map(|why| (n.stop_kind.unwrap_or_else(|| "ordered".into()), why)))
        })
    }

    fn requeue_uncounted<'a>(
        &'a self,
        claim: &'a Claim,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            let args = TaskFinish {
                uncounted: true,
                ..finish(claim, reason, true)
            };
            self.client
                .request::<kite_proto::op::TaskFail>(args)
                .await
                .map_err(|e| queue_error(e, Some(claim.task_id)))?;
            Ok(())
        })
    }

    fn heartbeat<'a>(&'a self, session_id: &'a str) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            let args = SessionRef {
                session: session_id.to_string(),
            };
            let _: Value = self
                .client
                .request::<kite_proto::op::SessionHeartbeat>(args)
                .await
                .map_err(|e| queue_error(e, None))?;
            Ok(())
        })
    }

    fn end_session<'a>(&'a self, session_id: &'a str) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            self.forget(session_id);
            let args = SessionRef {
                session: session_id.to_string(),
            };
            let _: Value = self
                .client
                .request::<kite_proto::op::SessionEnd>(args)
                .await
                .map_err(|e| queue_error(e, None))?;
            Ok(())
        })
    }

    fn record_cost<'a>(&'a self, cost: &'a AttemptCost) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            let _: Value = self
                .client
                .request::<kite_proto::op::CostRecord>(cost_record(cost))
                .await
                .map_err(|e| queue_error(e, Some(cost.task_id)))?;
            Ok(())
        })
    }

    fn agent_spend_today(&self) -> BoxFuture<'_, Result<f64, QueueError>> {
        Box::pin(async move {
            let s: CostSummary = self
                .client
                .request::<kite_proto::op::CostSummary>(kite_proto::NoArgs {})
                .await
                .map_err(|e| queue_error(e, None))?;
            Ok(s.agents_today_usd)
        })
    }

    fn stats(&self) -> BoxFuture<'_, Result<QueueStats, QueueError>> {
        Box::pin(stats(&self.client, self.quality.as_deref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kite_proto::ErrorBody;

    #[test]
    fn daemon_errors_map_to_queue_errors() {
        let daemon = |code, msg: &str| ClientError::Daemon(ErrorBody::new(code, msg));
        assert_eq!(
            queue_error(daemon(ErrorCode::NotFound, "no task 7"), Some(7)),
            QueueError::NotFound(7)
        );
        assert!(matches!(
            queue_error(daemon(ErrorCode::NotFound, "no session s1"), Some(7)),
            QueueError::Refused(_)
        ));
        assert!(
            matches!(queue_error(daemon(ErrorCode::Blocked, "blocked by 2"), Some(7)), QueueError::Refused(m) if m.contains("blocked"))
        );
        assert!(matches!(
            queue_error(daemon(ErrorCode::Fenced, "fenced"), Some(7)),
            QueueError::Refused(_)
        ));
        assert!(matches!(
            queue_error(daemon(ErrorCode::Internal, "disk"), None),
            QueueError::Unavailable(_)
        ));
        assert!(matches!(
            queue_error(ClientError::Closed, None),
            QueueError::Unavailable(_)
        ));
    }

    #[test]
    fn an_attempts_cost_becomes_an_agent_cost_record() {
        let usage = kite_agent::cost::Usage {
            input_tokens: 1,
            output_tokens: 2,
            cache_creation_input_tokens: 3,
            cache_read_input_tokens: 4,
            ..Default::default()
        };
        let cost = kite_agent::cost::Cost {
            usd: 0.5,
            usage,
            model: Some("claude-sonnet-4-5".into()),
            turns: 6,
            duration_ms: 7000,
            agent_session: Some("cc-1".into()),
            unpriced: vec!["claude-next".into()],
        };
        let a = AttemptCost {
            task_id: 9,
            session: "s4".into(),
            attempt: 2,
            cost,
            outcome: "finished".into(),
        };
        let r = cost_record(&a);
        assert_eq!(
            (
                r.session.as_str(),
                r.task,
                r.attempt,
                r.source.as_str(),
                r.usd
            ),
            ("s4", Some(9), Some(2), "agent", 0.5)
        );
        assert_eq!(
            (
                r.input_tokens,
                r.output_tokens,
                r.cache_creation_input_tokens,
                r.cache_read_input_tokens
            ),
            (1, 2, 3, 4)
        );
        assert_eq!(
            (
                r.model.as_deref(),
                r.turns,
                r.duration_ms,
                r.agent_session.as_deref()
            ),
            (Some("claude-sonnet-4-5"), 6, 7000, Some("cc-1"))
        );
        assert_eq!(
            (r.outcome.as_deref(), r.unpriced),
            (Some("finished"), vec!["claude-next".to_string()])
        );
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            TaskStatus::Pending,
            TaskStatus::Active,
            TaskStatus::Done,
            TaskStatus::Failed,
            TaskStatus::Pruned,
        ] {
            assert_eq!(s, s);
            assert_eq!(s.as_str(), s.as_str());
        }
    }
}
