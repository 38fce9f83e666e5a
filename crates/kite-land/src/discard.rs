//! `kite merge discard` and the dashboard's discard action, in one place: give up a task's
//! unlanded work (its worktree, uncommitted changes too, and its branch).
//!
//! The order keeps bad input harmless: first git is read (nothing to remove is an error, and
//! nothing changes); then the book is asked, which applies the one discard rule
//! ([`kite_core::discard_refusal`]: not while an agent works in it or a landing of it is in
//! flight) and records the discard; only then is anything removed.

use std::path::Path;

use kite_git::{branch_name, commit_of, git, worktrees};

use crate::{LandError, MergeBook};

/// Discards the task's work; returns what was removed, in words.
pub async fn discard(book: &dyn MergeBook, repo: &Path, task: i64) -> Result<Vec<String>, LandError> {
    let branch = branch_name(task);
    let trees: Vec<_> = worktrees(repo).await?.into_iter().filter(|w| w.branch.as_deref() == Some(branch.as_str())).collect();
    let has_branch = commit_of(repo, &format!("refs/heads/{branch}")).await.is_some();
    if trees.is_empty() && !has_branch {
        return Err(LandError::Target(format!("task {task} has no kite worktree or branch")));
    }
    let mut what: Vec<String> = trees.iter().map(|w| format!("worktree {}", w.path.display())).collect();
    if has_branch {
        what.push(format!("branch {branch}"));
    }
    book.discard(task, what.join(", ")).await?;
    for w in &trees {
        let _turn = kite_git::worktree::turn().await;
        git(repo, &["worktree", "remove", "--force", &w.path.to_string_lossy()]).await?;
    }
    if has_branch {
        git(repo, &["branch", "-D", &branch]).await?;
    }
    Ok(what)
}
