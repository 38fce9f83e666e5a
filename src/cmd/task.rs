//! `kite task ...`: create, depend, list, show, start, next, done, fail, prune.

use super::Ctx;
use crate::output::{self, when};
use anyhow::{Context, Result};
use kite_core::duration::{ceil_secs, parse_duration};
use kite_core::{Task, TaskStatus};
use kite_proto::ops::{Claim, TaskCreate, TaskCreated, TaskDepend, TaskDetail, TaskFinish, TaskList, TaskNext, TaskPrune, TaskRef, TaskStart, Tasks};
use serde_json::Value;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum TaskCmd {
    /// Create a pending task.
    Create {
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "")]
        body: String,
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        priority: i64,
        /// A task that must be done first (repeatable).
        #[arg(long = "depends-on", value_name = "ID")]
        depends_on: Vec<i64>,
        /// A file the task will touch (repeatable).
        #[arg(long = "file", value_name = "PATH")]
        files: Vec<String>,
        #[arg(long)]
        dedup_key: Option<String>,
        /// Prune the task if still pending after this long (e.g. 2h, 7d).
        #[arg(long, value_name = "DUR")]
        stale_after: Option<String>,
        #[arg(long)]
        workstream: Option<String>,
    },
    /// Make ID depend on OTHER.
    Depend {
        id: i64,
        #[arg(long)]
        on: i64,
    },
    /// List tasks.
    /// Open tasks (pending and active) by default; --status or --all for others.
    List {
        #[arg(long, conflicts_with = "all")]
        status: Option<TaskStatus>,
        /// Every task ever made, finished ones too.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        workstream: Option<String>,
    },
    /// Show one task with dependencies, attempts, history, prune reason and what its attempts cost.
    Show { id: i64 },
    /// Claim a task for a session (refused while a dependency is not done).
    Start {
        id: i64,
        #[arg(long)]
        session: String,
    },
    /// Claim the best ready task.
    Next {
        #[arg(long)]
        session: String,
        #[arg(long)]
        workstream: Option<String>,
    },
    /// Mark a claimed task done.
    Done {
        id: i64,
        #[arg(long)]
        session: String,
        #[arg(long)]
        result: Option<String>,
        /// The claim token from start/next; refused if superseded.
        #[arg(long)]
        claim: Option<u64>,
    },
    /// Mark a claimed task failed (or, with --transient, put it back to pending).
    Fail {
        id: i64,
        #[arg(long)]
        session: String,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        transient: bool,
        #[arg(long)]
        claim: Option<u64>,
    },
    /// Prune a pending task.
    Prune {
        id: i64,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Cancel a task, pending or active: it is pruned with the reason, and an agent working on
    /// it is stopped at its next tool call (its work stays in its worktree).
    Cancel {
        id: i64,
        #[arg(long)]
        reason: Option<String>,
    },
}

fn print_task(t: &Task) -> Result<()> {
    output::line(format!("{}\t{}\tp{}\t{}", t.id, t.status, t.priority, t.title))
}

fn print_claim(ctx: &Ctx, c: &Claim) -> Result<()> {
    if ctx.json {
        output::json(c)
    } else {
        output::line(format!("{}\tactive\tclaim {}\t{}", c.task.id, c.claim, c.task.title))
    }
}

/// A task's cost lines: one per recorded attempt, then the total.
fn print_costs(d: &TaskDetail) -> Result<()> {
    for c in &d.costs {
        let attempt = c.attempt.map(|a| format!(" attempt {a}")).unwrap_or_default();
        let outcome = c.outcome.as_deref().map(|o| format!(" {o}")).unwrap_or_default();
        let model = c.model.as_deref().map(|m| format!(" {m}")).unwrap_or_default();
        let unpriced = if c.unpriced.is_empty() { String::new() } else { format!(" (unpriced: {})", c.unpriced.join(", ")) };
        output::line(format!(
            "  cost {}{attempt}{outcome}: {} {}{model}, {} turns, {}s{unpriced}",
            when(c.at_ms),
            output::usd(c.usd),
            output::tokens(c.input_tokens, c.output_tokens, c.cache_creation_input_tokens, c.cache_read_input_tokens),
            c.turns,
            c.duration_ms / 1000,
        ))?;
    }
    let t = &d.cost;
    if t.runs > 0 {
        output::line(format!(
            "  cost total: {} over {} run(s), {}",
            output::usd(t.usd),
            t.runs,
            output::tokens(t.input_tokens, t.output_tokens, t.cache_creation_input_tokens, t.cache_read_input_tokens)
        ))?;
    }
    Ok(())
}

/// `kite task show`: the task, where its work is on the way to the target, its history and costs.
async fn show(ctx: &Ctx, c: &kite_proto::Client, id: i64) -> Result<()> {
    let d: TaskDetail = c.request::<kite_proto::op::TaskShow>(TaskRef { task: id }).await?;
    // Where its work is on the way to the target (the merge queue's book).
    let landing = c.request::<kite_proto::op::MergeShow>(TaskRef { task: id }).await?.entry;
    // What its landed work was worth, read from git (nothing when it has not landed).
    let signals = match super::report::signals(ctx, &[id]).await {
        Ok(mut s) => s.remove(&id),
        Err(e) => {
            tracing::warn!("the task's signals could not be read: {e:#}");
            None
        }
    };
    if ctx.json {
        let mut v = serde_json::to_value(&d)?;
        v["landing"] = serde_json::to_value(&landing)?;
        v["signals"] = serde_json::to_value(&signals)?;
        return output::json(&v);
    }
    let t = &d.task;
    output::line(format!("task {} [{}] p{} — {}", t.id, t.status, t.priority, t.title))?;
    if let Some(l) = &landing {
        let detail = l.detail.lines().next().unwrap_or_default();
        output::line(format!("  landing: {} {detail}", l.state))?;
        if let Some(tests) = &l.tests {
            output::line(format!("  tests: {}", tests.describe()))?;
            for (what, names) in [("added", &tests.added_names), ("now pass", &tests.now_pass_names), ("broke", &tests.broke_names), ("no longer run", &tests.removed_names)] {
                if !names.is_empty() {
                    output::line(format!("    {what}: {}", names.join(", ")))?;
                }
            }
        }
        if let Some(r) = &l.review {
            let found = if r.findings.is_empty() { "no findings".to_string() } else { kite_land::review::tally(&r.findings) };
            let outcome = match r.outcome {
                kite_core::ReviewOutcome::Passed => "passed",
                kite_core::ReviewOutcome::Blocked => "sent back with a blocker",
                kite_core::ReviewOutcome::Failed => "could not judge",
            };
            output::line(format!("  review: {outcome}, {found} ({})", output::usd(r.usd)))?;
        }
    }
    if let Some(s) = &signals {
        output::line(format!("  landed work: {}", kite_quality::report::why(s)))?;
    }
    if !t.body.is_empty() {
        output::line(format!("  {}", t.body.replace('\n', "\n  ")))?;
    }
    output::line(format!("  attempts: {}", t.attempts))?;
    if let Some(s) = &t.claim_session {
        output::line(format!("  claimed by {s} (claim {})", t.claim_token.unwrap_or(0)))?;
    }
    for dep in &d.dependencies {
        output::line(format!("  depends on {} [{}] {}", dep.id, dep.status, dep.title))?;
    }
    if !t.files.is_empty() {
        output::line(format!("  files: {}", t.files.join(", ")))?;
    }
    if let Some(r) = &t.result {
        output::line(format!("  result: {r}"))?;
    }
    if let Some(r) = &t.reason {
        output::line(format!("  reason: {r}"))?;
    }
    if let Some(p) = &d.prune_details {
        output::line(format!("  prune details: {p}"))?;
    }
    for h in &d.history {
        let from = h.from.map(|f| f.to_string()).unwrap_or_else(|| "new".into());
        let by = h.session.as_deref().map(|s| format!(" by {s}")).unwrap_or_default();
        let note = h.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
        output::line(format!("  {} {from} → {}{by}{note}", when(h.at_ms), h.to))?;
    }
    print_costs(&d)
}

pub(crate) async fn run(ctx: &Ctx, cmd: TaskCmd) -> Result<()> {
    let c = ctx.client().await?;
    match cmd {
        TaskCmd::Create { title, body, priority, depends_on, files, dedup_key, stale_after, workstream } => {
            // Stored as whole seconds: a sub-second remainder rounds up (250ms -> 1s), never down to 0.
            let stale_after_secs = stale_after.map(|s| parse_duration(&s).map(ceil_secs)).transpose().context("--stale-after")?;
            let cwd = std::env::current_dir().context("cannot read the current directory")?;
            let cwd = cwd.canonicalize().unwrap_or(cwd);
            // Repository-relative, so a task filed from any work tree names the same files.
            let files = files.iter().map(|f| ctx.places.repo_path(&cwd, f)).collect::<Result<Vec<_>>>()?;
            let args = TaskCreate {
                title,
                body,
                priority,
                depends_on,
                files,
                dedup_key,
                stale_after_secs,
                workstream,
                template: None,
                cwd: None,
            };
            let r: TaskCreated = c.request::<kite_proto::op::TaskCreate>(args).await?;
            if ctx.json { output::json(&r) } else { output::line(format!("{}\t{}", r.id, r.status)) }
        }
        TaskCmd::Depend { id, on } => {
            let t: Task = c.request::<kite_proto::op::TaskDepend>(TaskDepend { task: id, on }).await?;
            if ctx.json { output::json(&t) } else { output::line(format!("{} now depends on {:?}", t.id, t.depends_on)) }
        }
        TaskCmd::List { status, all, workstream } => {
            let statuses: Vec<Option<TaskStatus>> = match (status, all) {
                (Some(s), _) => vec![Some(s)],
                (None, true) => vec![None],
                (None, false) => vec![Some(TaskStatus::Pending), Some(TaskStatus::Active)],
            };
            let mut tasks = Vec::new();
            for status in statuses {
                tasks.extend(c.all_tasks(TaskList { status, workstream: workstream.clone(), limit: None, after: None }).await?);
            }
            tasks.sort_by_key(|t| t.id);
            let r = Tasks { tasks, next: None };
            if ctx.json {
                return output::json(&r);
            }
            for t in &r.tasks {
                print_task(t)?;
            }
            Ok(())
        }
        TaskCmd::Show { id } => show(ctx, &c, id).await,
        TaskCmd::Start { id, session } => {
            let r: Claim = c.request::<kite_proto::op::TaskStart>(TaskStart { task: id, session }).await?;
            print_claim(ctx, &r)
        }
        TaskCmd::Next { session, workstream } => {
            let r: Option<Claim> = c.request::<kite_proto::op::TaskNext>(TaskNext { session, workstream }).await?;
            match r {
                Some(claim) => print_claim(ctx, &claim),
                None if ctx.json => output::json(&Value::Null),
                None => output::line("no ready task"),
            }
        }
        TaskCmd::Done { id, session, result, claim } => {
            let t: Task = c.request::<kite_proto::op::TaskDone>(TaskFinish { task: id, session, claim, text: result, transient: false, uncounted: false }).await?;
            if ctx.json { output::json(&t) } else { print_task(&t) }
        }
        TaskCmd::Fail { id, session, reason, transient, claim } => {
            let t: Task = c.request::<kite_proto::op::TaskFail>(TaskFinish { task: id, session, claim, text: reason, transient, uncounted: false }).await?;
            if ctx.json { output::json(&t) } else { print_task(&t) }
        }
        TaskCmd::Cancel { id, reason } => {
            let reason = Some(format!("cancelled: {}", reason.as_deref().map(str::trim).filter(|r| !r.is_empty()).unwrap_or("by a person")));
            let t: Task = c.request::<kite_proto::op::TaskPrune>(TaskPrune { task: id, reason, details: None }).await?;
            if ctx.json { output::json(&t) } else { print_task(&t) }
        }
        TaskCmd::Prune { id, reason } => {
            let t: Task = c.request::<kite_proto::op::TaskPrune>(TaskPrune { task: id, reason, details: None }).await?;
            if ctx.json { output::json(&t) } else { print_task(&t) }
        }
    }
}
