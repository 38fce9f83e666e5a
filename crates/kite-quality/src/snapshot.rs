//! The signals as the daemon last read them, kept in `<home>/quality/signals.json`: reading them
//! means blaming every landed task's files, which is done once in the daemon's background (every
//! [`REFRESH`]) rather than by each reader. Readers (`kite report`, `kite task show`, the
//! dashboard, the strategy loop's `quality` source) take the snapshot while it is current, read at
//! the target's present head within two refreshes, and read git themselves otherwise.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Signals;

/// How often the daemon reads the landed work's signals again.
pub const REFRESH: Duration = Duration::from_secs(30);

#[derive(Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub target: String,
    /// The target's head they were read at.
    pub head: String,
    /// When (Unix seconds).
    pub computed_at: i64,
    pub signals: Vec<Signals>,
}

/// Where the daemon keeps them.
pub fn path(home: &Path) -> PathBuf {
    home.join("quality").join("signals.json")
}

/// The snapshot in `home`, when it is current for `target` of `repo`: read at its present head
/// (one `git rev-parse`, not the log), within two refreshes (`now` in Unix seconds).
pub async fn current(repo: &Path, home: &Path, target: &str, now: i64) -> Option<Snapshot> {
    let snap: Snapshot = serde_json::from_slice(&std::fs::read(path(home)).ok()?).ok()?;
    let fresh = (0..=2 * REFRESH.as_secs() as i64).contains(&(now - snap.computed_at));
    if !fresh || snap.target != target {
        return None;
    }
    let head = kite_git::git(repo, &["rev-parse", "--verify", &format!("refs/heads/{target}^{{commit}}")]).await.ok()?;
    (head.trim() == snap.head).then_some(snap)
}

/// Writes `snap` as `home`'s snapshot, whole or not at all ([`kite_core::files::write_atomic`]).
pub fn write(home: &Path, snap: &Snapshot) -> std::io::Result<PathBuf> {
    let path = path(home);
    kite_core::files::write_atomic(&path, &serde_json::to_vec(snap).map_err(std::io::Error::other)?)?;
    Ok(path)
}
