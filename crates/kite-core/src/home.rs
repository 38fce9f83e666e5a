//! The kite home's layout: every file kite keeps in a home, named once. The daemon, its
//! components, the hooks and the CLI all find their files through [`Home`], so a file is
//! renamed in one place and no two parts can disagree about where it is.

use std::path::{Path, PathBuf};

/// A kite home directory (`.kite/` at the project root unless set otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home(PathBuf);

impl Home {
    pub fn new(dir: impl Into<PathBuf>) -> Home {
        Home(dir.into())
    }

    pub fn dir(&self) -> &Path {
        &self.0
    }

    /// The daemon's Unix socket.
    pub fn socket(&self) -> PathBuf {
        self.0.join("kite.sock")
    }

    /// The coordinator's database (its WAL is this path plus `-wal`).
    pub fn db(&self) -> PathBuf {
        self.0.join("kite.db")
    }

    /// Holds the running daemon's pid, locked while it runs.
    pub fn pidfile(&self) -> PathBuf {
        self.0.join("kite.pid")
    }

    /// The daemon's log.
    pub fn log(&self) -> PathBuf {
        self.0.join("kite.log")
    }

    /// stdout and stderr of a daemon started in the background.
    pub fn daemon_log(&self) -> PathBuf {
        self.0.join("daemon.log")
    }

    /// The project's settings.
    pub fn config(&self) -> PathBuf {
        self.0.join("kite.toml")
    }

    /// Where retention moves old events and finished tasks.
    pub fn archive(&self) -> PathBuf {
        self.0.join("archive")
    }

    /// Transcripts waiting for extraction (one job file each).
    pub fn memory_queue(&self) -> PathBuf {
        self.0.join("memory-queue")
    }

    /// Up to which byte each transcript was extracted.
    pub fn memory_done(&self) -> PathBuf {
        self.0.join("memory-done.json")
    }

    /// The vault's derived search index.
    pub fn vault_index(&self) -> PathBuf {
        self.0.join("vault-index.db")
    }

    /// Which kite session each Claude Code session got (for its SessionEnd hook).
    pub fn claude_sessions(&self) -> PathBuf {
        self.0.join("claude-sessions")
    }

    /// The merge queue's git side: kite's own worktree where candidates are rebased and
    /// verified, and the lock that lets one landing at a time use it.
    pub fn merge_dir(&self) -> PathBuf {
        self.0.join("merge")
    }

    pub fn merge_worktree(&self) -> PathBuf {
        self.merge_dir().join("worktree")
    }

    pub fn merge_lock(&self) -> PathBuf {
        self.merge_dir().join("lock")
    }

    /// Where a verify run's test report goes (the runner's `{report}`).
    pub fn verify_report(&self) -> PathBuf {
        self.merge_dir().join("verify-report")
    }

    /// The book of kite before it moved into kite.db (imported once, then renamed).
    pub fn old_merge_book(&self) -> PathBuf {
        self.merge_dir().join("book.json")
    }

    /// The task worktrees (`task-<id>` each).
    pub fn worktrees(&self) -> PathBuf {
        self.0.join("worktrees")
    }

    /// The strategy loop's round log (JSON Lines, one per tick).
    pub fn rounds(&self) -> PathBuf {
        self.0.join("sched").join("rounds.jsonl")
    }
}
