//! kite-git: the one way kite runs git, and the child-process runner beneath it.
//!
//! Five places used to run git, each trimming output and setting the environment its own way,
//! and porcelain status was read three ways (one without renames). Here git runs once: [`git`]
//! (async, with [`GitOptions`] for the rare extra environment or timeout) and [`spawn`] (blocking,
//! for a hook that starts several at once so their time overlaps). Every run gets the same
//! environment: no terminal prompt, no editor, stdin closed. Output is trimmed at the end only —
//! a porcelain status line starts with a meaningful space. [`status`] is the one reader of
//! `git status --porcelain -z` (renames by their new name, unusual file names unquoted).
//!
//! [`proc`] runs any child (a verify command, an agent, a provider) with a timeout that kills the
//! whole process group and a cap on what is kept; [`worktree`] holds the task worktrees, branches
//! and the `Kite-Task` trailer. [`fixture`] builds real repositories for tests.

pub mod fixture;
pub mod proc;
pub mod status;
pub mod worktree;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use status::{changed_files, uncommitted, Change};
pub use worktree::{branch_name, trailer, Worktree};

/// A git command that failed (or could not start).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("git {args}: {message}")]
pub struct GitError {
    pub args: String,
    pub message: String,
}

/// What a few callers add to a git run.
#[derive(Debug, Clone, Default)]
pub struct GitOptions<'a> {
    /// Extra environment (`GIT_INDEX_FILE` for a scratch index, say).
    pub env: &'a [(&'a str, String)],
    /// Killed after this long (default: no limit).
    pub timeout: Option<Duration>,
}

fn command(cwd: &Path, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new("git");
    c.args(args)
        .current_dir(cwd)
        // kite's own commits (a rebase, a merge) never open an editor or ask for a password.
        .env("GIT_EDITOR", "true")
        .env("GIT_TERMINAL_PROMPT", "0")
        // Its messages in English: kite reads some of them (a clash between worktree adds).
        .env_remove("LC_ALL")
        .env_remove("LANGUAGE")
        .env("LC_MESSAGES", "C")
        .stdin(std::process::Stdio::null());
    c
}

fn output(args: &[&str], o: std::process::Output) -> Result<String, GitError> {
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).trim_end().to_string())
    } else {
        let mut message = String::from_utf8_lossy(&o.stderr).trim().to_string();
        if message.is_empty() {
            message = String::from_utf8_lossy(&o.stdout).trim().to_string();
        }
        if message.is_empty() {
            message = format!("exited with {}", o.status);
        }
        Err(GitError { args: args.join(" "), message })
    }
}

/// Runs git in `cwd`; its stdout, trimmed at the end, on success.
pub async fn git(cwd: &Path, args: &[&str]) -> Result<String, GitError> {
    git_with(cwd, args, GitOptions::default()).await
}

/// [`git`] with extra environment or a timeout.
pub async fn git_with(cwd: &Path, args: &[&str], opts: GitOptions<'_>) -> Result<String, GitError> {
    let mut c = tokio::process::Command::from(command(cwd, args));
    for (k, v) in opts.env {
        c.env(k, v);
    }
    c.kill_on_drop(true);
    let run = c.output();
    let o = match opts.timeout {
        Some(t) => match tokio::time::timeout(t, run).await {
            Ok(r) => r,
            Err(_) => return Err(GitError { args: args.join(" "), message: format!("timed out after {}s", t.as_secs_f64()) }),
        },
        None => run.await,
    }
    .map_err(|e| GitError { args: args.join(" "), message: e.to_string() })?;
    output(args, o)
}

/// A git run started without waiting (blocking API): [`Spawned::finish`] collects it. For
/// callers that start several and wait for all, so their time overlaps (a hook's git facts).
pub struct Spawned {
    args: Vec<String>,
    child: std::io::Result<std::process::Child>,
}

/// Starts git in `cwd` with stdout captured.
pub fn spawn(cwd: &Path, args: &[&str]) -> Spawned {
    let child = command(cwd, args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn();
    Spawned { args: args.iter().map(|s| s.to_string()).collect(), child }
}

impl Spawned {
    /// Waits for it: stdout trimmed at the end, as [`git`].
    pub fn finish(self) -> Result<String, GitError> {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let child = self.child.map_err(|e| GitError { args: args.join(" "), message: e.to_string() })?;
        let o = child.wait_with_output().map_err(|e| GitError { args: args.join(" "), message: e.to_string() })?;
        output(&args, o)
    }
}

/// Whether a git identity (user.email) is configured where `repo` is.
pub async fn has_identity(repo: &Path) -> bool {
    git(repo, &["config", "user.email"]).await.is_ok()
}

/// One worktree of `git worktree list --porcelain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitWorktree {
    pub path: PathBuf,
    pub head: Option<String>,
    /// `main`, not `refs/heads/main`; `None` when detached.
    pub branch: Option<String>,
}

/// Every worktree of the repository, the main one first.
pub async fn worktrees(repo: &Path) -> Result<Vec<GitWorktree>, GitError> {
    let out = git(repo, &["worktree", "list", "--porcelain"]).await?;
    let mut v = Vec::new();
    for block in out.split("\n\n") {
        let mut w = GitWorktree { path: PathBuf::new(), head: None, branch: None };
        for line in block.lines() {
            if let Some(p) = line.strip_prefix("worktree ") {
                w.path = PathBuf::from(p);
            } else if let Some(h) = line.strip_prefix("HEAD ") {
                w.head = Some(h.to_string());
            } else if let Some(b) = line.strip_prefix("branch ") {
                w.branch = Some(b.strip_prefix("refs/heads/").unwrap_or(b).to_string());
            }
        }
        if !w.path.as_os_str().is_empty() {
            v.push(w);
        }
    }
    Ok(v)
}

/// The branch the main worktree (the first listed) has checked out; `None` when detached.
pub async fn main_branch(repo: &Path) -> Result<Option<String>, GitError> {
    Ok(worktrees(repo).await?.into_iter().next().and_then(|w| w.branch))
}

/// Commits on `branch` that `target` lacks (`%h %s` each).
pub async fn unmerged(repo: &Path, target: &str, branch: &str) -> Result<Vec<String>, GitError> {
    let out = git(repo, &["log", "--format=%h %s", &format!("refs/heads/{target}..refs/heads/{branch}")]).await?;
    Ok(out.lines().map(str::to_string).collect())
}

/// Whether `a` is an ancestor of (or equal to) `b`.
pub async fn is_ancestor(repo: &Path, a: &str, b: &str) -> bool {
    git(repo, &["merge-base", "--is-ancestor", a, b]).await.is_ok()
}

/// The commit a revision names, if it names one.
pub async fn commit_of(repo: &Path, rev: &str) -> Option<String> {
    git(repo, &["rev-parse", "--verify", "-q", &format!("{rev}^{{commit}}")]).await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_is_trimmed_at_the_end_only_and_failures_say_what_git_said() {
        let repo = fixture::git_repo();
        fixture::write(repo.path(), "README.md", "changed\n");
        let s = git(repo.path(), &["status", "--porcelain"]).await.unwrap();
        assert_eq!(s, " M README.md");
        let e = git(repo.path(), &["rev-parse", "--verify", "no-such-ref"]).await.unwrap_err();
        assert_eq!(e.args, "rev-parse --verify no-such-ref");
        assert!(e.message.contains("fatal"), "{e}");
        assert_eq!(spawn(repo.path(), &["status", "--porcelain"]).finish().unwrap(), " M README.md");
        let w = worktrees(repo.path()).await.unwrap();
        assert_eq!(w[0].branch.as_deref(), Some("main"));
        assert_eq!(main_branch(repo.path()).await.unwrap().as_deref(), Some("main"));
        let head = commit_of(repo.path(), "HEAD").await.unwrap();
        assert!(is_ancestor(repo.path(), &head, "main").await);
        let t = git_with(repo.path(), &["log", "-1", "--format=%s"], GitOptions { env: &[], timeout: Some(Duration::from_secs(10)) }).await;
        assert_eq!(t.unwrap(), "initial");
    }
}
