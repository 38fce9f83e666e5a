//! `kite merge list|discard` and `kite worktrees`: the merge queue's book (asked of the daemon,
//! which keeps it in kite.db) and kite's worktrees and branches (read from git).

use anyhow::{Context, Result};
use clap::Subcommand;
use kite_core::MergeState as State;
use serde::Serialize;

use super::Ctx;
use crate::output;

#[derive(Subcommand, Debug)]
pub(crate) enum MergeCmd {
    /// The merge queue: each task's landing (queued, verifying, moving, waiting, landed, conflict,
    /// rejected, no changes, discarded) and the lifetime counts.
    List {
        /// Also the finished entries (default: in flight and the last 20).
        #[arg(long)]
        all: bool,
    },
    /// Give up a task's unlanded work: remove its worktree (uncommitted changes too) and branch.
    Discard {
        /// The task id.
        task: i64,
    },
}

pub(crate) async fn run(ctx: &Ctx, cmd: MergeCmd) -> Result<()> {
    match cmd {
        MergeCmd::List { all } => list(ctx, all).await,
        MergeCmd::Discard { task } => discard(ctx, task).await,
    }
}

fn ago(ms: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let secs = ((now - ms) / 1000).max(0) as u64;
    kite_core::duration::format_duration(std::time::Duration::from_secs(secs))
}

async fn list(ctx: &Ctx, all: bool) -> Result<()> {
    let c = ctx.client().await?;
    let finished = if all { kite_proto::ops::MAX_PAGE } else { 20 };
    let book = c.request::<kite_proto::op::MergeList>(kite_proto::ops::MergeList { finished: Some(finished) }).await?;
    if ctx.json {
        return output::json(&book);
    }
    let t = book.total;
    output::line(format!(
        "merge queue: {} in flight; lifetime: {} landed ({} not verified), {} rejected, {} conflicted",
        book.entries.iter().filter(|e| e.state.in_flight()).count(),
        t.landed,
        t.not_verified,
        t.rejected,
        t.conflicted
    ))?;
    for e in &book.entries {
        let detail = e.detail.lines().next().unwrap_or_default();
        output::line(format!("  #{} {} — {} ({} ago) {}", e.task_id, e.title, e.state, ago(e.updated_at_ms), detail))?;
    }
    for (name, c) in &book.by_template {
        output::line(format!("  template {name}: {} landed, {} rejected, {} conflicted", c.landed, c.rejected, c.conflicted))?;
    }
    Ok(())
}

/// The one discard (kite-land's), which the daemon's book rules on: not while the task's agent
/// works in the worktree or a landing of it is in flight.
async fn discard(ctx: &Ctx, task: i64) -> Result<()> {
    let client = ctx.client().await?;
    let gone = kite_land::discard(&client, &ctx.places.root, task).await.with_context(|| format!("cannot discard task {task}'s work"))?;
    if ctx.json {
        return output::json(&serde_json::json!({"task": task, "removed": gone}));
    }
    output::line(format!("discarded task {task}'s work: removed {}", gone.join(" and ")))
}

/// One kite worktree or branch (`kite worktrees`).
#[derive(Debug, Serialize)]
struct KiteWorktree {
    branch: String,
    task: Option<i64>,
    /// None: a branch with no worktree.
    path: Option<String>,
    /// Commits the target lacks (`abc1234 subject`).
    unmerged: Vec<String>,
    /// Uncommitted files in the worktree.
    uncommitted: Vec<String>,
    /// The merge queue's word on it.
    landing: Option<State>,
}

#[derive(Debug, Serialize)]
struct WorktreesOut {
    target: String,
    worktrees: Vec<KiteWorktree>,
}

pub(crate) async fn worktrees(ctx: &Ctx) -> Result<()> {
    let root = &ctx.places.root;
    let target = kite_land::target_branch(root, &ctx.config.merge).await?;
    // The book's word on each, when a daemon is there to ask (worktrees are read from git alone).
    let book = match ctx.client().await {
        Ok(c) => c.request::<kite_proto::op::MergeList>(kite_proto::ops::MergeList { finished: Some(kite_proto::ops::MAX_PAGE) }).await.ok(),
        Err(_) => None,
    };
    let listed = kite_git::worktrees(root).await?;
    let branches = kite_git::worktree::kite_branches(root).await?;
    let mut out = Vec::new();
    for branch in branches {
        let task = branch.strip_prefix("kite/task-").and_then(|n| n.parse::<i64>().ok());
        let wt = listed.iter().find(|w| w.branch.as_deref() == Some(branch.as_str()));
        let uncommitted = match wt {
            Some(w) => kite_git::uncommitted(&w.path).await.unwrap_or_default(),
            None => vec![],
        };
        out.push(KiteWorktree {
            unmerged: kite_git::unmerged(root, &target, &branch).await.unwrap_or_default(),
            landing: task.and_then(|t| book.as_ref()?.entry(t)).map(|e| e.state),
            path: wt.map(|w| w.path.display().to_string()),
            uncommitted,
            task,
            branch,
        });
    }
    if ctx.json {
        return output::json(&WorktreesOut { target, worktrees: out });
    }
    if out.is_empty() {
        return output::line(format!("no kite worktrees or branches (target: {target})"));
    }
    output::line(format!("kite worktrees and branches (target: {target}):"))?;
    for w in &out {
        let at = w.path.as_deref().unwrap_or("(no worktree)");
        let landing = w.landing.map(|s| format!(", landing: {s}")).unwrap_or_default();
        output::line(format!(
            "  {} {at}: {} unmerged commit(s), {} uncommitted file(s){landing}",
            w.branch,
            w.unmerged.len(),
            w.uncommitted.len()
        ))?;
        for c in &w.unmerged {
            output::line(format!("      {c}"))?;
        }
    }
    Ok(())
}
