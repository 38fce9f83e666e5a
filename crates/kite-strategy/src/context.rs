//! Context providers: what templates render against.
//!
//! `git` (branch, recent commits, changed files, the work markers in their comments), `queue` (counts and
//! titles), `vault` (notes matching a template's topic, through [`NoteSource`]) and configured shell
//! commands whose JSON stdout becomes context under their name. A provider that fails is reported
//! as a [`ProviderError`] and the round goes on without it: a broken test command must not stop
//! the TODO template.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::ShellProviderConfig;
use crate::SourceError;
use kite_git::proc::{self, Exit, Shell};
use crate::queue::{BoxFuture, ListFilter, Queue};
use crate::task::TaskStatus;

/// A provider (or template, or queue call) that failed this round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderError {
    /// `git`, `queue`, `vault`, a shell provider's name, or `template:<name>`.
    pub source: String,
    pub message: String,
}

pub use kite_testrun::Provided;

/// One vault note found for a topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoteHit {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub score: f64,
    /// The note's body or a snippet of it.
    #[serde(default)]
    pub body: String,
}

/// The vault as the strategy loop sees it (wired to kite-memory by the binary).
pub trait NoteSource: Send + Sync {
    fn search<'a>(&'a self, topic: &'a str, k: usize) -> BoxFuture<'a, Result<Vec<NoteHit>, SourceError>>;
}

const GIT_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_MARKER_FILE: u64 = 1 << 20;

async fn git(repo: &Path, args: &[&str]) -> Result<String, SourceError> {
    Ok(kite_git::git_with(repo, args, kite_git::GitOptions { env: &[], timeout: Some(GIT_TIMEOUT) }).await?)
}

/// `git`: `{branch, head, commits: [{sha, author, time, subject}], changed_files, dirty_files,
/// markers: [{file, line, kind, text}], markers_not_queued: [{file, line, text, why}]}`. Changed
/// files are those touched by the recent commits plus uncommitted ones; markers are the work
/// markers opening a comment in them ([`crate::markers`]), and those gated on a future condition
/// are listed apart with the reason.
pub async fn git_context(repo: &Path, commits: usize, max_markers: usize) -> Result<Value, SourceError> {
    // symbolic-ref works on an unborn branch (a fresh repository); a detached HEAD has no name.
    let branch = match git(repo, &["symbolic-ref", "--short", "-q", "HEAD"]).await {
        Ok(b) => b.trim().to_string(),
        Err(_) => git(repo, &["rev-parse", "--abbrev-ref", "HEAD"]).await?.trim().to_string(),
    };
    // An empty repository has no HEAD commit yet: no commits, not an error.
    let head = git(repo, &["rev-parse", "-q", "--verify", "HEAD"]).await.ok().map(|s| s.trim().to_string());
    let mut log = Vec::new();
    let mut changed: Vec<String> = Vec::new();
    if head.is_some() {
        let out = git(repo, &["log", "-n", &commits.to_string(), "--format=%H%x1f%an%x1f%ct%x1f%s"]).await?;
        for line in out.lines() {
            let f: Vec<&str> = line.splitn(4, '\u{1f}').collect();
            if f.len() == 4 {
                log.push(json!({"sha": f[0], "author": f[1], "time": f[2].parse::<i64>().unwrap_or(0), "subject": f[3]}));
            }
        }
        let names = git(repo, &["log", "-n", &commits.to_string(), "--name-only", "--format="]).await?;
        changed.extend(names.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string));
    }
    let dirty = kite_git::changed_files(repo, true).await?;
    changed.extend(dirty.iter().cloned());
    let mut seen = HashSet::new();
    changed.retain(|f| seen.insert(f.clone()));

    let mut markers = Vec::new();
    let mut not_queued = Vec::new();
    for file in &changed {
        if markers.len() >= max_markers {
            break;
        }
        if let Some(why) = crate::markers::skipped_path(file) {
            tracing::debug!(file = %file, "markers not read: {why}");
            continue;
        }
        let path = repo.join(file);
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() && m.len() <= MAX_MARKER_FILE => {}
            _ => continue,
        }
        let Ok(text) = tokio::fs::read_to_string(&path).await else { continue };
        for m in crate::markers::scan(file, &text) {
            let item = json!({"file": file, "line": m.line, "kind": m.kind, "text": m.text});
            match m.gated {
                Some(why) => not_queued.push(json!({"file": file, "line": m.line, "text": m.text, "why": why})),
                None if markers.len() < max_markers => markers.push(item),
                None => break,
            }
        }
    }
    Ok(json!({
        "branch": branch, "head": head, "commits": log, "changed_files": changed,
        "dirty_files": dirty, "markers": markers, "markers_not_queued": not_queued,
    }))
}

/// Titles listed per finished status in the `queue` context.
const QUEUE_TITLES: usize = 20;
/// Open tasks listed (newest first) in the `queue` context; `counts` has them all.
const QUEUE_OPEN_TITLES: usize = 100;

/// `queue`: `{counts: {pending, active, done, failed, pruned}, open: [{id, title, status,
/// template}] (newest 100), recent: {done: [...], failed: [...], pruned: [...]} (newest 20 each)}`.
pub async fn queue_context(queue: &dyn Queue) -> Result<Value, SourceError> {
    let stats = queue.stats().await?;
    let mut counts = serde_json::Map::new();
    for s in [TaskStatus::Pending, TaskStatus::Active, TaskStatus::Done, TaskStatus::Failed, TaskStatus::Pruned] {
        counts.insert(s.to_string(), json!(stats.by_status.get(&s).copied().unwrap_or(0)));
    }
    let open = queue
        .list(&ListFilter::statuses(&[TaskStatus::Pending, TaskStatus::Active]))
        .await?;
    // Titles of the newest open tasks only: a prompt does not need 10,000 of them.
    let open: Vec<Value> = open
        .iter()
        .rev()
        .take(QUEUE_OPEN_TITLES)
        .map(|t| json!({"id": t.id, "title": t.title, "status": t.status, "template": t.template}))
        .collect();
    let mut recent = serde_json::Map::new();
    for s in [TaskStatus::Done, TaskStatus::Failed, TaskStatus::Pruned] {
        let f = ListFilter { statuses: vec![s], newest_first: true, limit: Some(QUEUE_TITLES), ..Default::default() };
        let tasks = queue.list(&f).await?;
        recent.insert(s.to_string(), json!(tasks.iter().map(|t| json!({"id": t.id, "title": t.title})).collect::<Vec<_>>()));
    }
    Ok(json!({"counts": counts, "open": open, "recent": recent}))
}

/// Runs a shell provider in the repository root; its stdout must be JSON. A non-zero exit with JSON
/// on stdout is accepted (a test runner exits non-zero exactly when there is something to report).
pub async fn shell_context(repo: &Path, cfg: &ShellProviderConfig, default_timeout: Duration) -> Result<Value, SourceError> {
    let o = proc::run(Shell {
        command: proc::Program::Sh(&cfg.command),
        cwd: repo,
        env: vec![],
        stdin: None,
        timeout: Some(cfg.timeout.unwrap_or(default_timeout)),
        cap: 16 << 20,
    })
    .await
    .map_err(|source| SourceError::Spawn { program: format!("{:?}", cfg.command), source })?;
    let status = o.exit;
    if status == Exit::TimedOut {
        return Err(SourceError::TimedOut { command: cfg.command.clone() });
    }
    if o.stdout_truncated {
        return Err(SourceError::TooLong { command: cfg.command.clone(), mib: 16 });
    }
    serde_json::from_str(&o.stdout).map_err(|e| SourceError::Unreadable {
        what: format!("{:?} ({status})", cfg.command),
        expected: "JSON",
        why: format!("{e}; stderr: {}", proc::tail(o.stderr.trim(), 300)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn git_context_in_empty_and_real_repositories() {
        let empty = tempfile::tempdir().unwrap();
        kite_git::fixture::git(empty.path(), &["init", "-q", "-b", "trunk"]);
        std::fs::write(empty.path().join("new.rs"), "// FIXME: start\n").unwrap();
        let v = git_context(empty.path(), 5, 10).await.unwrap();
        assert_eq!(v["branch"], "trunk");
        assert_eq!(v["head"], Value::Null);
        assert_eq!(v["dirty_files"], json!(["new.rs"]));
        assert_eq!(v["markers"][0]["kind"], "FIXME");

        let repo = kite_git::fixture::git_repo();
        let v = git_context(repo.path(), 5, 10).await.unwrap();
        assert_eq!(v["branch"], "main");
        assert_eq!(v["commits"][0]["subject"], "initial");
        assert_eq!(v["changed_files"], json!(["README.md"]));
        let none = tempfile::tempdir().unwrap();
        assert!(git_context(none.path(), 5, 10).await.is_err());
    }

    #[tokio::test]
    async fn shell_provider_json_and_failures() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = |c: &str| ShellProviderConfig { command: c.to_string(), timeout: None };
        let t = Duration::from_secs(20);
        let v = shell_context(dir.path(), &cfg("echo '{\"failures\": [1]}'; exit 101"), t).await.unwrap();
        assert_eq!(v["failures"][0], 1);
        let e = shell_context(dir.path(), &cfg("echo nope; echo why >&2; exit 2"), t).await.unwrap_err();
        assert!(matches!(e, SourceError::Unreadable { expected: "JSON", .. }), "{e:?}");
        let e = e.to_string();
        assert!(e.contains("did not print JSON") && e.contains("exit code 2") && e.contains("why"), "{e}");
        let e = shell_context(dir.path(), &cfg("sleep 20"), Duration::from_millis(200)).await.unwrap_err();
        assert!(matches!(e, SourceError::TimedOut { .. }), "{e:?}");
    }
}
