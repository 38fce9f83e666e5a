//! kite-land: the merge queue. A finished task's branch lands on the project's target branch,
//! verified, one at a time.
//!
//! A task is worth something only when its change is on the target and still passes the
//! project's checks, so an agent's exit 0 is not the end: its branch is rebased (or merged) onto
//! the current target in a worktree of kite's own ([`kite_core::Home::merge_worktree`]), the
//! verify command runs there, and only then does the target move, to exactly the commit that was
//! verified. A person's files are never touched behind their back: when the target is checked
//! out in a worktree, kite moves it with `git merge --ff-only` (what a person would do) and only
//! when that worktree has no uncommitted changes to tracked files; otherwise it waits and says
//! so. It never resets, stashes, checks out or overwrites anything of a person's.
//!
//! The book (every entry and the lifetime counts) lives in the coordinator's database, reached
//! through [`MergeBook`] (the `merge.*` operations): the CLI, the dashboard, `kite status` and the
//! strategy loop's track record read the same book, and the one discard rule
//! ([`kite_core::discard_refusal`]) is checked there. Before the target moves, the entry records
//! the commit it moves to and the head it moves from; the move itself is one compare-and-swap of
//! the ref (`update-ref NEW OLD`, or a fast-forward). So a daemon killed in the middle leaves the
//! target before or after the change, never between, and [`Lander::land`] on restart sees which
//! and lands the entry once. One landing at a time uses the merge worktree, through a lock file
//! beside it (the worktree is this machine's).

mod baseline;
mod book;
mod discard;
mod lander;
pub mod review;
#[cfg(test)]
mod tests;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use book::{BoxFuture, MemBook, MergeBook};
pub use discard::discard;
pub use kite_core::{MergeCounts, MergeEntry, MergeState, MergeTally};
pub use lander::Lander;

/// `[merge]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MergeConfig {
    /// Land finished tasks (false: a task is done when its agent exits 0, as before).
    pub land: bool,
    /// The branch work lands on; default: the branch the project's main worktree has checked out.
    pub target: Option<String>,
    /// A shared remote (`"origin"`) whose target branch is the one that moves: a team's workers
    /// on several machines land there. Each landing fetches it, builds and verifies on what it
    /// has, and moves it with a compare-and-swap push (`--force-with-lease` on the head it
    /// verified against): a landing never overwrites another one, it lands again on top. Task
    /// branches are pushed there too. Default: none (the local target moves).
    pub remote: Option<String>,
    /// Run in kite's merge worktree on the candidate commit; exit 0 lands it. Default: the test
    /// command the strategy loop detects (`cargo test`, `go test`, ...); `""`: land unverified.
    pub verify: Option<String>,
    #[serde(with = "kite_core::duration::serde_human")]
    pub verify_timeout: Duration,
    /// `rebase` (linear history) or `merge` (a merge commit per task).
    pub strategy: Strategy,
    /// How often a landing waiting on a person's uncommitted changes looks again.
    #[serde(with = "kite_core::duration::serde_human")]
    pub wait_poll: Duration,
    /// Longest a landing waits on them before the task goes back with that reason.
    #[serde(with = "kite_core::duration::serde_human")]
    pub wait_max: Duration,
    /// The review gate: before a verified candidate lands, a reviewer (Claude Code, read-only
    /// tools) reads the task, the diff and the verify output; a `blocker` finding sends the task
    /// back with the findings.
    pub review: bool,
    #[serde(with = "kite_core::duration::serde_human")]
    pub review_timeout: Duration,
    /// The Claude Code binary the reviewer runs (`[runner] claude`; set by the binary).
    #[serde(skip)]
    pub claude: Option<std::path::PathBuf>,
    /// The review prompt: the project's `prompts/review.md.tera`, else the built-in (set by the
    /// binary).
    #[serde(skip)]
    pub review_prompt: Option<String>,
    /// Model prices, to put the reviewer's tokens in dollars (set by the binary).
    #[serde(skip)]
    pub prices: kite_agent::cost::PriceTable,
}

impl Default for MergeConfig {
    fn default() -> Self {
        MergeConfig {
            land: true,
            target: None,
            remote: None,
            verify: None,
            verify_timeout: Duration::from_secs(30 * 60),
            strategy: Strategy::Rebase,
            wait_poll: Duration::from_secs(5),
            wait_max: Duration::from_secs(3600),
            review: false,
            review_timeout: Duration::from_secs(600),
            claude: None,
            review_prompt: None,
            prices: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    Rebase,
    Merge,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LandError {
    #[error(transparent)]
    Git(#[from] kite_git::GitError),
    /// The book (the coordinator) could not be asked or answered with an error.
    #[error("merge book: {0}")]
    Book(String),
    #[error("{0}")]
    Target(String),
    /// The one discard rule said no; the sentence says when it can be.
    #[error("{0}")]
    Refused(String),
}

/// How one landing ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Landing {
    Landed {
        commit: String,
        target: String,
        verified: bool,
    },
    /// Its commits do not apply on the target: files and hunks, for the next attempt.
    Conflict {
        target: String,
        files: Vec<String>,
        context: String,
    },
    /// The verify command failed on the candidate: its output's tail.
    Rejected { command: String, output: String },
    /// The branch has no commit the target lacks.
    NoChanges { uncommitted: Vec<String> },
    /// Waited [`MergeConfig::wait_max`] on a person's uncommitted changes.
    Waited { detail: String },
    /// The review gate found a blocker, or could not judge (never a pass).
    Blocked { review: kite_core::Review },
}

impl Landing {
    /// The sentence a task carries when it goes back (or fails) because of this landing.
    pub fn reason(&self) -> String {
        match self {
            Landing::Landed { commit, target, verified } => {
                format!("landed {} on {target}{}", short(commit), if *verified { ", verified" } else { " (not verified)" })
            }
            Landing::Conflict { target, files, context } => format!(
                "its branch conflicts with {target} (where other work landed meanwhile) in {}; rebase onto {target} \
                 and resolve, keeping both changes:\n{context}",
                files.join(", ")
            ),
            Landing::Rejected { command, output } => format!("the verify command `{command}` failed on it:\n{output}"),
            Landing::NoChanges { uncommitted } if uncommitted.is_empty() => "the agent exited 0 but committed nothing".into(),
            Landing::NoChanges { uncommitted } => format!(
                "the agent exited 0 but committed nothing; it left uncommitted changes in {} (kept in its worktree)",
                uncommitted.join(", ")
            ),
            Landing::Waited { detail } => detail.clone(),
            Landing::Blocked { review } => review::reason(review),
        }
    }
}

pub(crate) fn short(sha: &str) -> &str {
    &sha[..sha.len().min(10)]
}

/// Characters of a conflict's hunks or a verify's output kept for the next attempt.
pub(crate) const CONTEXT_CHARS: usize = 4000;

/// The target branch: configured, or what the main worktree (the first listed) has checked out.
pub async fn target_branch(repo: &std::path::Path, cfg: &MergeConfig) -> Result<String, LandError> {
    if let Some(t) = &cfg.target {
        return Ok(t.clone());
    }
    match kite_git::main_branch(repo).await? {
        Some(b) => Ok(b),
        None => Err(LandError::Target(
            "the project's main worktree has no branch checked out (detached HEAD); set [merge] target in kite.toml".into(),
        )),
    }
}
