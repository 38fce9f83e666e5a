//! kite-quality: what a landed task's work was worth, from the repository's own history.
//!
//! kite counted volume (landed, pruned, failed); volume says nothing of whether the work stayed.
//! Every commit kite lands carries a `Kite-Task: N` trailer, so what a task added can be found, and
//! followed, in git alone: [`history`] reads the target's log once (each task's commits, its
//! landing, the commits that revert it), [`blame`] counts a task's lines at a revision (`git blame
//! -w -M -C`, cached per revision and file, so tasks touching the same file share one blame), and
//! [`signals`] turns that into survival as of now and 1, 7 and 30 days after landing, churn within
//! 14 days (GitClear's definition) and whether it was reverted. [`report`] aggregates signals with
//! the daemon's records (outcomes, the merge book, costs) into what `kite report` prints; it is
//! pure, so the numbers are pinned by unit tests.

pub mod blame;
pub mod history;
pub mod report;
pub mod signals;
pub mod snapshot;

pub use history::{History, Landed};
pub use report::{Report, TaskRecord};
pub use signals::{Signals, DAY};
pub use snapshot::Snapshot;

/// Now, in Unix seconds (what survival's days are counted from).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Why signals could not be read.
#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    #[error(transparent)]
    Git(#[from] kite_git::GitError),
    /// The target has no commit kite could read (an unborn branch, a missing ref).
    #[error("no branch {0} to measure")]
    NoTarget(String),
}
