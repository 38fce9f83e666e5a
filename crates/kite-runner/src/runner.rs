//! The runner: turns ready tasks into agent sessions, each in its own worktree, and retries
//! transient failures.
//!
//! The agent contract (docs/CLI.md): the configured command runs with `sh -c` in the task's
//! worktree, with `KITE_TASK_ID`, `KITE_SESSION_ID`, `KITE_HOME` and `KITE_TASK_PROMPT` (the prompt
//! is also on stdin). Exit 0 marks the task done with stdout's tail as its result. A configured
//! transient exit code (default 75), death by a signal (also seen as exit code 128 + N from the
//! wrapping shell), or a timeout is retried with exponential
//! backoff and jitter, each attempt a new session, until `max_attempts`; then the task fails with
//! the last error. Any other exit code fails it at once.
//!
//! Two tasks whose declared files overlap never run at the same time: the runner keeps the files of
//! every task it is running (including one waiting out a backoff) and skips or refuses overlaps.
//! On its own the runner starts agents only when `max_agents > 0`; [`Runner::spawn`] starts one
//! for a given task regardless.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use kite_agent::claude::{self, Ending, ResultJson};
use kite_agent::cost::Cost;
use kite_git::proc::{self, Exit, Shell};
use kite_git::worktree::{self, Worktree};
use kite_land::{Lander, Landing, MergeBook};
use kite_strategy::queue::{AttemptCost, Claim, ListFilter, Queue, QueueError};
use kite_strategy::task::{files_overlap, Task, TaskStatus};

use crate::config::RunnerConfig;

const MIN_PERIOD: Duration = Duration::from_millis(10);

/// Why the runner could not start a task.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunnerError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("no task {0}")]
    NotFound(i64),
    #[error("task {id} is {status}, not pending")]
    NotPending { id: i64, status: TaskStatus },
    #[error("task {0} is already running here")]
    AlreadyRunning(i64),
    #[error("task {task} declares files that running task {other} also declares: {files:?}")]
    Overlap { task: i64, other: i64, files: Vec<String> },
    #[error("the daily budget is spent: ${spent:.2} of ${budget:.2} today (UTC); no agent starts until midnight UTC")]
    BudgetSpent { spent: f64, budget: f64 },
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RunOutcome {
    Done { result: String },
    Failed { error: String },
    /// The task could not be (re)claimed or the queue refused to record the end (e.g. the claim was
    /// reaped); someone else owns its fate now.
    Lost { reason: String },
    /// kite stopped the agent at a tool call: its task was pruned or cancelled (it stays
    /// pruned), or the daily budget is spent (it is pending again, the attempt not counted).
    /// Not the agent's failure; nothing of the run lands and its worktree keeps the work.
    Stopped { reason: String },
}

/// One attempt: a session, its exit and the backoff that followed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub session_id: String,
    pub exit: String,
    pub transient: bool,
    pub duration_ms: u64,
    pub backoff_ms: Option<u64>,
    /// The API's status when an API error ended the attempt (529 overloaded, 429, 5xx).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_status: Option<u16>,
    /// What the attempt cost (Claude Code reports it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    /// Tool calls the agent was refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denials: Vec<String>,
}

/// What running one task did (`kite spawn --json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub task_id: i64,
    #[serde(flatten)]
    pub outcome: RunOutcome,
    pub attempts: Vec<Attempt>,
    pub worktree: Option<Worktree>,
    pub worktree_kept: bool,
    /// Why the worktree was kept (unlanded commits, uncommitted changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_because: Option<String>,
    /// The last landing (with `[merge] land`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landing: Option<Landing>,
}

/// The runner. Cheap to share: `Arc<Runner>`.
pub struct Runner {
    cfg: RunnerConfig,
    repo: PathBuf,
    home: PathBuf,
    queue: Arc<dyn Queue>,
    /// Task id → declared files, for tasks this runner holds (running or backing off).
    running: Arc<Mutex<HashMap<i64, Vec<String>>>>,
    /// The merge queue, unless `[merge] land = false`.
    lander: Option<Arc<Lander>>,
}

/// Releases a task's slot when its run ends, however it ends.
struct Slot {
    running: Arc<Mutex<HashMap<i64, Vec<String>>>>,
    id: i64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.running.lock() {
            m.remove(&self.id);
        }
    }
}

impl Runner {
    /// `repo`: the main repository; `home`: KITE_HOME (worktrees go to `home/worktrees` unless
    /// configured); `book`: the merge queue's (the coordinator's `merge.*`), used when landing
    /// is on.
    pub fn new(cfg: RunnerConfig, repo: impl Into<PathBuf>, home: impl Into<PathBuf>, queue: Arc<dyn Queue>, book: Arc<dyn MergeBook>) -> Arc<Self> {
        let (repo, home) = (repo.into(), home.into());
        let lander = cfg.merge.land.then(|| Arc::new(Lander::new(cfg.merge.clone(), &repo, &home, book)));
        Arc::new(Runner { cfg, repo, home, queue, running: Arc::default(), lander })
    }

    pub fn config(&self) -> &RunnerConfig {
        &self.cfg
    }

    /// Ids of the tasks this runner holds now.
    pub fn running(&self) -> Vec<i64> {
        let mut v: Vec<i64> = self.running.lock().map(|m| m.keys().copied().collect()).unwrap_or_default();
        v.sort_unstable();
        v
    }

    fn worktree_root(&self) -> PathBuf {
        self.cfg.worktree_dir.clone().unwrap_or_else(|| kite_core::Home::new(&self.home).worktrees())
    }

    fn reserve(&self, t: &Task) -> Result<Slot, RunnerError> {
        let mut m = self.running.lock().map_err(|_| RunnerError::AlreadyRunning(t.id))?;
        if m.contains_key(&t.id) {
            return Err(RunnerError::AlreadyRunning(t.id));
        }
        for (other, files) in m.iter() {
            if files_overlap(&t.files, files) {
                let shared = t.files.iter().filter(|f| files_overlap(&[(*f).clone()], files)).cloned().collect();
                return Err(RunnerError::Overlap { task: t.id, other: *other, files: shared });
            }
        }
        m.insert(t.id, t.files.clone());
        Ok(Slot { running: self.running.clone(), id: t.id })
    }

    /// Starts an agent for one task now (`kite spawn`), whatever `max_agents` says. Refused when
    /// the task is not pending, already running here, or overlaps a running task's files.
    pub async fn spawn(self: &Arc<Self>, task_id: i64) -> Result<JoinHandle<RunReport>, RunnerError> {
        let mut found = self.queue.list(&ListFilter::ids(vec![task_id])).await?;
        let task = found.pop().ok_or(RunnerError::NotFound(task_id))?;
        if task.status != TaskStatus::Pending {
            return Err(RunnerError::NotPending { id: task_id, status: task.status });
        }
        self.check_budget().await?;
        let slot = self.reserve(&task)?;
        let me = self.clone();
        Ok(tokio::spawn(async move { me.run_reserved(task, slot).await }))
    }

    /// Refuses to start an agent once `[runner] daily_budget_usd` is spent today.
    async fn check_budget(&self) -> Result<(), RunnerError> {
        let Some(budget) = self.cfg.daily_budget_usd else { return Ok(()) };
        let spent = self.queue.agent_spend_today().await?;
        if spent >= budget {
            return Err(RunnerError::BudgetSpent { spent, budget });
        }
        Ok(())
    }

    /// Starts agents for ready tasks (all dependencies done, best priority first, oldest first)
    /// until `max_agents` run, skipping tasks whose files overlap a running one. Returns what it
    /// started.
    pub async fn fill(self: &Arc<Self>) -> Result<Vec<(i64, JoinHandle<RunReport>)>, RunnerError> {
        let busy = self.running.lock().map(|m| m.len()).unwrap_or(usize::MAX);
        if self.cfg.max_agents == 0 || busy >= self.cfg.max_agents {
            return Ok(vec![]);
        }
        if let Err(e) = self.check_budget().await {
            tracing::info!("no agent started: {e}");
            return Ok(vec![]);
        }
        let mut free = self.cfg.max_agents - busy;
        let pending = self.queue.list(&ListFilter::statuses(&[TaskStatus::Pending])).await?;
        let ids: HashSet<i64> = pending.iter().map(|t| t.id).collect();
        let mut deps: Vec<i64> = pending.iter().flat_map(|t| t.depends_on.iter().copied()).collect();
        deps.sort_unstable();
        deps.dedup();
        // A dependency that is itself pending is not done; ask only about the others.
        let others: Vec<i64> = deps.into_iter().filter(|d| !ids.contains(d)).collect();
        let done: HashSet<i64> = if others.is_empty() {
            HashSet::new()
        } else {
            self.queue
                .list(&ListFilter::ids(others))
                .await?
                .into_iter()
                .filter(|t| t.status == TaskStatus::Done)
                .map(|t| t.id)
                .collect()
        };
        let mut ready: Vec<Task> =
            pending.into_iter().filter(|t| t.depends_on.iter().all(|d| done.contains(d))).collect();
        ready.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.created_at_ms.cmp(&b.created_at_ms)).then(a.id.cmp(&b.id)));
        let mut started = Vec::new();
        for t in ready {
            if free == 0 {
                break;
            }
            let Ok(slot) = self.reserve(&t) else { continue };
            let id = t.id;
            let me = self.clone();
            started.push((id, tokio::spawn(async move { me.run_reserved(t, slot).await })));
            free -= 1;
        }
        Ok(started)
    }

    /// Fills every `poll` until `shutdown` resolves. Agents still running then are killed (their
    /// sessions stop heart-beating, so the coordinator's reaper requeues their tasks).
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        // Interrupted landings resume beside the loop (one waiting on a person must not hold up
        // every other task); their tasks are still active, so no agent starts on them.
        let resume = tokio::spawn(self.clone().resume_landings());
        // A zero period would panic in tokio; a typo in kite.toml must not.
        let mut interval = tokio::time::interval(self.cfg.poll.max(MIN_PERIOD));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut set = tokio::task::JoinSet::new();
        let mut runs: Vec<tokio::task::AbortHandle> = Vec::new();
        
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                Some(r) = set.join_next(), if !set.is_empty() => {
                    if let Ok(r) = r {
                        let r: RunReport = r;
                        tracing::info!(task = r.task_id, outcome = ?r.outcome, attempts = r.attempts.len(), "agent run finished");
                    }
                }
                _ = interval.tick() => match self.fill().await {
                    Ok(started) => {
                        for (id, h) in started {
                            tracing::info!(task = id, "agent started");
                            runs.retain(|a| !a.is_finished());
                            runs.push(h.abort_handle());
                            set.spawn(async move { h.await.unwrap_or_else(|e| lost(id, e.to_string())) });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "runner could not list ready tasks"),
                },
            }
        }
        resume.abort();
        // Dropping a run kills its agent's process group (see proc) and releases its slot.
        for a in runs {
            a.abort();
        }
        set.shutdown().await;
    }

    /// The whole life of one task's run: attempts, backoff, done or failed, worktree clean-up.
    async fn run_reserved(self: Arc<Self>, task: Task, slot: Slot) -> RunReport {
        let id = task.id;
        let mut report = RunReport {
            task_id: id,
            outcome: RunOutcome::Lost { reason: String::new() },
            attempts: vec![],
            worktree: None,
            worktree_kept: false,
            kept_because: None,
            landing: None,
        };
        let mut failures = task.attempts;
        let mut prompt = prompt_for(&task);
        // Work starts from (and lands on) the target; without landing, from the checkout's HEAD.
        let target = match &self.lander {
            Some(l) => match kite_land::target_branch(&self.repo, &l.cfg).await {
                Ok(t) => t,
                Err(e) => {
                    report.outcome = RunOutcome::Lost { reason: format!("landing: {e}") };
                    return report;
                }
            },
            None => "HEAD".to_string(),
        };
        tracing::info!(task = id, title = %task.title, "starting agent");
        report.outcome = loop {
            let session = match self.queue.register_session(&format!("runner-task-{id}")).await {
                Ok(s) => s,
                Err(e) => break RunOutcome::Lost { reason: format!("register session: {e}") },
            };
            let claim = match self.queue.claim(id, &session).await {
                Ok(c) => c,
                Err(e) => {
                    let _ = self.queue.end_session(&session).await;
                    break RunOutcome::Lost { reason: format!("claim: {e}") };
                }
            };
            if report.worktree.is_none() {
                match worktree::ensure(&self.repo, &self.worktree_root(), id, &target).await {
                    Ok(w) => report.worktree = Some(w),
                    Err(e) => {
                        let error = format!("worktree: {e}");
                        let out = self.finish_failed(&claim, &error).await;
                        let _ = self.queue.end_session(&session).await;
                        break out;
                    }
                }
            }
            let wt = report.worktree.clone().expect("worktree set above");
            let started = Instant::now();
            let run = self.run_agent(&task, &session, &wt, &prompt).await;
            let mut attempt = Attempt {
                session_id: session.clone(),
                exit: String::new(),
                transient: false,
                duration_ms: started.elapsed().as_millis() as u64,
                backoff_ms: None,
                api_status: None,
                cost: None,
                denials: vec![],
            };
            let outcome = match run {
                Err(e) => {
                    attempt.exit = format!("could not start: {e}");
                    Some(self.finish_failed(&claim, &attempt.exit).await)
                }
                Ok(run) => {
                    attempt.exit = run.exit.to_string();
                    if let Some(cost) = &run.cost {
                        attempt.cost = Some(cost.clone());
                        self.record_cost(id, &session, failures + 1, cost, run.ending.word()).await;
                    }
                    match run.ending {
                        Ending::Finished { result, denials } => {
                            attempt.denials = denials.clone();
                            self.finished(&task, &wt, &claim, result, &denials, &mut report, &mut attempt, &mut failures, &mut prompt).await
                        }
                        Ending::Transient { why, status } => {
                            attempt.api_status = status;
                            failures += 1;
                            self.transient(&claim, why, failures, &mut attempt).await
                        }
                        // Nothing of a stopped run lands: its worktree is kept for a person (or a
                        // later attempt) to pick up.
                        Ending::Stopped { why, by } => {
                            attempt.exit = format!("stopped: {why}");
                            Some(self.stopped(id, &claim, &why, by).await)
                        }
                        Ending::Failed { why } => {
                            attempt.exit = why.clone();
                            Some(self.finish_failed(&claim, &why).await)
                        }
                    }
                }
            };
            let _ = self.queue.end_session(&session).await;
            let wait = attempt.backoff_ms;
            report.attempts.push(attempt);
            match outcome {
                Some(o) => break o,
                None => tokio::time::sleep(Duration::from_millis(wait.unwrap_or(0))).await,
            }
        };
        self.clean_up(&mut report, &target).await;
        tracing::info!(task = id, outcome = ?report.outcome, attempts = report.attempts.len(), "agent run ended");
        drop(slot);
        report
    }

    /// Records what an attempt cost (a failure to is logged: the run goes on).
    async fn record_cost(&self, task_id: i64, session: &str, attempt: u32, cost: &Cost, outcome: &str) {
        let rec = AttemptCost { task_id, session: session.to_string(), attempt, cost: cost.clone(), outcome: outcome.to_string() };
        if let Err(e) = self.queue.record_cost(&rec).await {
            tracing::warn!(task = task_id, error = %e, "could not record the attempt's cost");
        }
    }

    /// A transient failure (an API overload, a transient exit code): the task goes back with a
    /// backoff before the next attempt, or fails once `max_attempts` are spent. `None`: try
    /// again (after `attempt.backoff_ms`).
    async fn transient(&self, claim: &Claim, why: String, failures: u32, attempt: &mut Attempt) -> Option<RunOutcome> {
        attempt.exit = why.clone();
        attempt.transient = true;
        if failures >= self.cfg.max_attempts {
            let error = format!("{why} (attempt {failures} of {})", self.cfg.max_attempts);
            return Some(self.finish_failed(claim, &error).await);
        }
        match self.queue.fail(claim, &why, true).await {
            Ok(()) => {
                let wait = backoff(&self.cfg, failures);
                attempt.backoff_ms = Some(wait.as_millis() as u64);
                tracing::info!(task = claim.task_id, attempt = failures, wait_ms = wait.as_millis() as u64, error = %why, "transient failure; retrying");
                None
            }
            Err(e) => Some(RunOutcome::Lost { reason: format!("fail: {e}") }),
        }
    }

    /// After the run: the task's worktree is kept (configured, or something in it would be
    /// lost) or removed.
    async fn clean_up(&self, report: &mut RunReport, target: &str) {
        let Some(wt) = report.worktree.clone() else { return };
        if self.cfg.keep_worktrees {
            report.worktree_kept = true;
        } else {
            // Removed only when nothing in it would be lost: its commits are on the target
            // (landed) or it has none, and nothing is left uncommitted.
            match worktree::remove_if_safe(&self.repo, &wt, target).await {
                Ok(None) => {}
                Ok(Some(why)) => {
                    tracing::info!(task = report.task_id, dir = %wt.dir.display(), "worktree kept: {why}");
                    report.worktree_kept = true;
                    report.kept_because = Some(why);
                }
                Err(e) => {
                    tracing::warn!(task = report.task_id, error = %e, "could not remove worktree");
                    report.worktree_kept = true;
                    report.kept_because = Some(e.to_string());
                }
            }
        }
    }

    /// An agent that finished on its own: whatever it left uncommitted is committed on its
    /// branch (nothing finished is lost), then the work lands (or, without landing, the task is
    /// done). `None`: it goes back for another attempt.
    #[allow(clippy::too_many_arguments)]
    async fn finished(
        &self,
        task: &Task,
        wt: &Worktree,
        claim: &Claim,
        result: String,
        denials: &[String],
        report: &mut RunReport,
        attempt: &mut Attempt,
        failures: &mut u32,
        prompt: &mut String,
    ) -> Option<RunOutcome> {
        let id = task.id;
        let mut result = proc::tail(result.trim_end(), self.cfg.result_tail).to_string();
        if !denials.is_empty() {
            result = format!("{result}\n(permission denied: {})", denials.join("; "));
        }
        match worktree::commit_all(&wt.dir, id, &task.title).await {
            Ok(Some(commit)) => tracing::info!(task = id, commit = %commit, "committed what the agent left uncommitted"),
            Ok(None) => {}
            Err(e) => {
                let error = format!("the agent finished, but its uncommitted changes could not be committed (kept in its worktree): {e}");
                return Some(self.finish_failed(claim, &error).await);
            }
        }
        // Pruned or cancelled while the agent finished: its work stays in the worktree, unlanded.
        if let Some(t) = self.task_now(id).await.filter(|t| t.status == TaskStatus::Pruned) {
            let reason = t.reason.unwrap_or_else(|| "pruned".into());
            return Some(RunOutcome::Stopped { reason: format!("task {id} was pruned while its agent ran: {reason}") });
        }
        let Some(l) = &self.lander else {
            return Some(match self.queue.done(claim, &result).await {
                Ok(()) => RunOutcome::Done { result },
                Err(e) => RunOutcome::Lost { reason: format!("done: {e}") },
            });
        };
        let landing = self.land(l, task, wt, claim).await;
        report.landing = landing.as_ref().ok().cloned();
        match landing {
            Ok(Landing::Landed { .. }) => {
                let why = report.landing.as_ref().map(Landing::reason).unwrap_or_default();
                let result = if result.is_empty() { why } else { format!("{why}\n{result}") };
                Some(match self.queue.done(claim, &result).await {
                    Ok(()) => RunOutcome::Done { result },
                    Err(e) => RunOutcome::Lost { reason: format!("done: {e}") },
                })
            }
            Ok(Landing::NoChanges { uncommitted }) if uncommitted.is_empty() && !self.expects_change(task) => {
                let result = format!("no changes (its template expects none)\n{result}");
                Some(match self.queue.done(claim, result.trim_end()).await {
                    Ok(()) => RunOutcome::Done { result },
                    Err(e) => RunOutcome::Lost { reason: format!("done: {e}") },
                })
            }
            Ok(no @ Landing::NoChanges { .. }) => {
                let mut why = no.reason();
                if !denials.is_empty() {
                    why = format!("{why}; it was refused permission for: {}", denials.join("; "));
                }
                Some(self.finish_failed(claim, &why).await)
            }
            // Back to pending with what went wrong as the next attempt's context.
            other => {
                let why = match other {
                    Ok(l) => l.reason(),
                    Err(e) => format!("landing failed: {e}"),
                };
                attempt.exit = format!("exit code 0; not landed: {}", why.lines().next().unwrap_or_default());
                *failures += 1;
                if *failures >= self.cfg.max_attempts {
                    let error = format!("not landed after {failures} attempts: {why}");
                    Some(self.finish_failed(claim, &error).await)
                } else {
                    *prompt = format!("{}\n## The last attempt did not land\n\n{why}\n", prompt_for(task));
                    match self.queue.fail(claim, &why, true).await {
                        Ok(()) => {
                            let wait = backoff(&self.cfg, *failures);
                            attempt.backoff_ms = Some(wait.as_millis() as u64);
                            tracing::info!(task = id, attempt = *failures, "not landed; the agent gets another attempt");
                            None
                        }
                        Err(e) => Some(RunOutcome::Lost { reason: format!("fail: {e}") }),
                    }
                }
            }
        }
    }

    /// After a stopped run. A run that spent its own budget or turns fails with that reason.
    /// One kite stopped at a tool call asks the daemon which stop it was, before the session
    /// ends: a task pruned or cancelled stays pruned; the daily budget puts the task back to
    /// pending with the attempt not counted; a person's stop order fails it with their reason.
    async fn stopped(&self, id: i64, claim: &Claim, why: &str, by: claude::StoppedBy) -> RunOutcome {
        if by != claude::StoppedBy::Hook {
            return self.finish_failed(claim, &format!("the agent was stopped: {why}")).await;
        }
        let order = self.queue.stop_order(&claim.session_id, self.cfg.daily_budget_usd).await.ok().flatten();
        let pruned = self.task_now(id).await.filter(|t| t.status == TaskStatus::Pruned);
        match (order, pruned) {
            (_, Some(t)) => {
                let reason = t.reason.unwrap_or_else(|| "pruned".into());
                tracing::info!(task = id, %reason, "the agent was stopped: its task was pruned");
                RunOutcome::Stopped { reason: format!("task {id} was pruned while its agent ran: {reason}") }
            }
            (Some((kind, reason)), None) if kind == "budget" => {
                let reason = format!("stopped: {reason}; it starts again when the budget allows");
                match self.queue.requeue_uncounted(claim, &reason).await {
                    Ok(()) => RunOutcome::Stopped { reason },
                    Err(e) => RunOutcome::Lost { reason: format!("requeue: {e}") },
                }
            }
            (Some((_, reason)), None) => self.finish_failed(claim, &format!("the agent was stopped: {reason}")).await,
            (None, None) => self.finish_failed(claim, &format!("the agent was stopped: {why}")).await,
        }
    }

    /// The task as the queue has it now.
    async fn task_now(&self, id: i64) -> Option<Task> {
        self.queue.list(&ListFilter::ids(vec![id])).await.ok()?.pop()
    }

    /// Whether the task's template expects a change (`expects_change`, default true). A task
    /// filed by hand expects one.
    fn expects_change(&self, task: &Task) -> bool {
        let Some(name) = &task.template else { return true };
        let (dir, builtin) = &self.cfg.templates;
        let set = kite_strategy::TemplateSet::load(*builtin, &self.repo.join(dir));
        set.templates.iter().find(|t| &t.name == name).and_then(|t| t.meta.expects_change).unwrap_or(true)
    }

    /// Puts the task in the merge queue and lands it, heart-beating its session meanwhile (a
    /// verify can take as long as the project's tests).
    async fn land(&self, l: &Lander, task: &Task, wt: &Worktree, claim: &Claim) -> Result<Landing, kite_land::LandError> {
        // Queued behind another landing's verify can take longer than the reaper's timeout.
        self.with_heartbeat(&claim.session_id, async {
            l.enqueue(task.id, &wt.branch, &claim.session_id, claim.token).await?;
            l.land(task.id).await
        })
        .await
    }

    async fn with_heartbeat<T>(&self, session: &str, work: impl Future<Output = T>) -> T {
        tokio::pin!(work);
        let mut beat = tokio::time::interval(self.cfg.heartbeat.max(MIN_PERIOD));
        beat.tick().await;
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = beat.tick() => {
                    if let Err(e) = self.queue.heartbeat(session).await {
                        tracing::warn!(session, error = %e, "heartbeat failed");
                    }
                }
            }
        }
    }

    /// Finishes the landings a stopped or killed process left in the merge queue: each lands
    /// (once: the book knows whether the target already moved) and its task is finished with
    /// the claim it had, or, when the reaper requeued the task meanwhile, with a new claim.
    pub async fn resume_landings(self: Arc<Self>) {
        let Some(l) = self.lander.clone() else { return };
        let entries = match l.in_flight().await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!("merge queue not resumed: {e}");
                return;
            }
        };
        for e in entries {
            tracing::info!(task = e.task_id, state = %e.state, "resuming an interrupted landing");
            let session = e.session.clone().unwrap_or_default();
            let landing = self.with_heartbeat(&session, l.land(e.task_id)).await;
            let old = Claim { task_id: e.task_id, session_id: session.clone(), token: e.token.unwrap_or(0) };
            let finish = |claim: Claim| {
                let landing = landing.clone();
                let me = self.clone();
                async move {
                    match &landing {
                        Ok(ok @ Landing::Landed { .. }) => me.queue.done(&claim, &ok.reason()).await,
                        Ok(other) => me.queue.fail(&claim, &other.reason(), !matches!(other, Landing::NoChanges { .. })).await,
                        Err(err) => me.queue.fail(&claim, &format!("landing failed: {err}"), true).await,
                    }
                }
            };
            if finish(old).await.is_ok() {
                let _ = self.queue.end_session(&session).await;
                continue;
            }
            // The old claim is gone (its session was reaped): claim the task again to finish it.
            let result = async {
                let s = self.queue.register_session(&format!("runner-task-{}", e.task_id)).await?;
                let c = self.queue.claim(e.task_id, &s).await;
                let r = match c {
                    Ok(c) => finish(c).await,
                    Err(err) => Err(err),
                };
                let _ = self.queue.end_session(&s).await;
                r
            }
            .await;
            if let Err(err) = result {
                tracing::warn!(task = e.task_id, "landing resumed but the task could not be finished: {err}");
            }
        }
    }

    async fn finish_failed(&self, claim: &Claim, error: &str) -> RunOutcome {
        match self.queue.fail(claim, error, false).await {
            Ok(()) => RunOutcome::Failed { error: error.to_string() },
            Err(e) => RunOutcome::Lost { reason: format!("fail: {e}") },
        }
    }
}


fn lost(task_id: i64, reason: String) -> RunReport {
    RunReport {
        task_id,
        outcome: RunOutcome::Lost { reason },
        attempts: vec![],
        worktree: None,
        worktree_kept: false,
        kept_because: None,
        landing: None,
    }
}

/// The prompt an agent gets: the task's title and body.
pub fn prompt_for(task: &Task) -> String {
    let mut p = format!("# {}\n", task.title);
    if !task.body.trim().is_empty() {
        p.push('\n');
        p.push_str(task.body.trim());
        p.push('\n');
    }
    if !task.files.is_empty() {
        p.push_str(&format!("\nFiles: {}\n", task.files.join(", ")));
    }
    // A task back from an attempt that did not land (or failed transiently) says why.
    if let (true, Some(why)) = (task.attempts > 0 && task.status == TaskStatus::Pending, &task.reason) {
        p.push_str(&format!("\n## The last attempt did not finish\n\n{}\n", why.trim()));
    }
    p.push_str(&format!("\n(kite task {}; commit your work on this worktree's branch.)\n", task.id));
    p
}

/// Wait before retry number `failures` (1 = after the first failure): `base * 2^(failures-1)`
/// capped at `backoff_max`, then scaled by a random factor in [0.5, 1] so that agents failing
/// together do not retry together.
pub fn backoff(cfg: &RunnerConfig, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let raw = cfg.backoff_base.saturating_mul(1u32 << exp).min(cfg.backoff_max);
    raw.mul_f64(0.5 + 0.5 * rand::random::<f64>())
}

mod agent;
#[cfg(test)]
mod tests;

