//! One git worktree per task, on its own branch `kite/task-<id>`.
//!
//! Agents running side by side must not see each other's half-written files, and their work must
//! stay reviewable and mergeable: a worktree per task gives both. A retry reuses the task's worktree
//! (and branch), so work an attempt committed is not lost. Removing a worktree keeps its branch.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{git, uncommitted, GitError};

/// A task's worktree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Worktree {
    pub dir: PathBuf,
    pub branch: String,
}

/// The branch a task's work goes on.
pub fn branch_name(task_id: i64) -> String {
    format!("kite/task-{task_id}")
}

/// Creates (or reuses) the worktree for a task under `root`, branching from `start` (the merge
/// target, so the work lands on what it was written against; `HEAD` when landing is off).
pub async fn ensure(repo: &Path, root: &Path, task_id: i64, start: &str) -> Result<Worktree, GitError> {
    let dir = root.join(format!("task-{task_id}"));
    let branch = branch_name(task_id);
    if dir.join(".git").exists() {
        return Ok(Worktree { dir, branch });
    }
    tokio::fs::create_dir_all(root)
        .await
        .map_err(|e| GitError { args: "worktree add".into(), message: format!("{}: {e}", root.display()) })?;
    // git reads every other worktree's metadata while it adds one, and fails on an entry another
    // `worktree add` is half-way through writing; `prune` may even drop such an entry. Within this
    // process adds take turns; a clash with another process (a person's git, `claude -w`) is
    // retried.
    let _turn = MUTATIONS.lock().await;
    // A worktree directory deleted by hand leaves an entry that blocks re-adding it.
    let _ = git(repo, &["worktree", "prune"]).await;
    let dir_s = dir.to_string_lossy().into_owned();
    let was_there = dir.exists();
    let mut attempt = 0;
    loop {
        let exists = git(repo, &["rev-parse", "--verify", "-q", &format!("refs/heads/{branch}")]).await.is_ok();
        let added = if exists {
            git(repo, &["worktree", "add", &dir_s, &branch]).await
        } else {
            git(repo, &["worktree", "add", "-b", &branch, &dir_s, start]).await
        };
        match added {
            Ok(_) => return Ok(Worktree { dir, branch }),
            Err(e) if attempt < 3 && is_clash(&e) => {
                attempt += 1;
                tracing::debug!(task_id, attempt, error = %e, "worktree add met another worktree half-made; retrying");
                // The failed add may have left its own half-made entry and directory (never remove
                // a directory that was there before: it is someone's).
                if !was_there {
                    let _ = tokio::fs::remove_dir_all(&dir).await;
                }
                let _ = git(repo, &["worktree", "prune"]).await;
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Worktree additions and removals in this process, one at a time.
static MUTATIONS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits for this process's turn to add or remove a worktree (every `git worktree add` and
/// `remove` kite runs holds it: the task worktrees, the merge worktree, the tests' scratch one).
pub async fn turn() -> tokio::sync::MutexGuard<'static, ()> {
    MUTATIONS.lock().await
}

/// Whether a failed `worktree add` tripped over another worktree's metadata being written.
fn is_clash(e: &GitError) -> bool {
    e.message.contains("failed to read .git/worktrees/") || e.message.contains("failed to read worktree")
}

/// Removes a worktree only when that loses nothing: no uncommitted changes (untracked files
/// count) and no commit that `target` lacks. Returns why it was kept otherwise. Its branch is
/// deleted too when all its commits are on `target`.
pub async fn remove_if_safe(repo: &Path, wt: &Worktree, target: &str) -> Result<Option<String>, GitError> {
    let dirty = uncommitted(&wt.dir).await?;
    if !dirty.is_empty() {
        return Ok(Some(format!("it has uncommitted changes ({})", dirty.join(", "))));
    }
    let ahead = git(repo, &["rev-list", "--count", &format!("{target}..refs/heads/{}", wt.branch)]).await?;
    let ahead: u64 = ahead.trim().parse().unwrap_or(1);
    if ahead > 0 {
        return Ok(Some(format!("{} has {ahead} commit(s) not on {target}", wt.branch)));
    }
    // Commits made on a detached HEAD are on no branch: only the worktree's HEAD knows them.
    let loose = git(&wt.dir, &["rev-list", "--count", &format!("{target}..HEAD")]).await?;
    if loose.trim().parse::<u64>().unwrap_or(1) > 0 {
        return Ok(Some(format!("its HEAD has {} commit(s) on no branch and not on {target}", loose.trim())));
    }
    {
        let _turn = MUTATIONS.lock().await;
        git(repo, &["worktree", "remove", &wt.dir.to_string_lossy()]).await?;
    }
    git(repo, &["branch", "-D", &wt.branch]).await?;
    Ok(None)
}

/// Every `kite/*` branch, in name order.
pub async fn kite_branches(repo: &Path) -> Result<Vec<String>, GitError> {
    let out = git(repo, &["for-each-ref", "--format=%(refname:short)", "refs/heads/kite/"]).await?;
    Ok(out.lines().map(str::to_string).filter(|b| !b.is_empty()).collect())
}

/// The trailer on every commit kite lands: the task it belongs to, so what a task did can be
/// found (and measured) from git alone.
pub fn trailer(task_id: i64) -> String {
    format!("Kite-Task: {task_id}")
}

/// Commits everything an agent left uncommitted in its worktree (untracked files too, ignored
/// ones not) on the task's branch, so no finished work is lost. The message is the task's
/// title with the `Kite-Task` trailer. Returns the new commit, or `None` when nothing was left.
/// The project's commit hooks do not run (the merge queue's verify judges the work), and an
/// identity is lent when the person set none.
pub async fn commit_all(dir: &Path, task_id: i64, title: &str) -> Result<Option<String>, GitError> {
    if uncommitted(dir).await?.is_empty() {
        return Ok(None);
    }
    git(dir, &["add", "-A"]).await?;
    let subject: String = title.lines().next().unwrap_or("kite task").chars().take(72).collect();
    let message = format!("{subject}\n\nCommitted by kite: the agent finished with these changes uncommitted.\n\n{}\n", trailer(task_id));
    let mut args: Vec<&str> = vec!["-c", "commit.gpgsign=false"];
    if git(dir, &["config", "user.email"]).await.is_err() {
        args.extend(["-c", "user.name=kite", "-c", "user.email=kite@localhost"]);
    }
    args.extend(["commit", "-q", "--no-verify", "-m", &message]);
    git(dir, &args).await?;
    Ok(Some(git(dir, &["rev-parse", "HEAD"]).await?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::git_repo;

    /// Agents start side by side: many worktrees added at once all come up, each on its branch
    /// (git reads every other worktree's metadata while it adds one).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn worktrees_added_at_once_all_come_up() {
        let repo = git_repo();
        let root = repo.path().join(".kite-wt");
        let adds = (1..=12).map(|id| {
            let (repo, root) = (repo.path().to_path_buf(), root.clone());
            tokio::spawn(async move { ensure(&repo, &root, id, "HEAD").await })
        });
        for (id, add) in (1..=12).zip(adds.collect::<Vec<_>>()) {
            let wt = add.await.unwrap().unwrap_or_else(|e| panic!("task {id}: {e}"));
            assert!(wt.dir.join("README.md").exists());
            assert_eq!(wt.branch, branch_name(id));
        }
        // And a second ensure reuses each one.
        let again = ensure(repo.path(), &root, 3, "HEAD").await.unwrap();
        assert_eq!(again.dir, root.join("task-3"));
    }
}
