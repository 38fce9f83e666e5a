//! Why a source of context, an audit or the vault gave nothing this round.
//!
//! The tick records these per source (`ProviderError`) and goes on: a broken test command must not
//! stop the TODO template. They are typed so a caller can tell "the program is missing" from "it
//! ran and printed garbage", and so a message is worded once.

use kite_git::proc::Exit;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The program could not be started (missing, not executable).
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// It ran and failed; `stderr` is the tail of what it said.
    #[error("{command:?} failed ({exit}): {stderr}")]
    Failed { command: String, exit: Exit, stderr: String },
    #[error("{command:?} timed out")]
    TimedOut { command: String },
    /// Its output passed the cap and was cut: not read as an answer.
    #[error("{command:?}: output over {mib} MiB")]
    TooLong { command: String, mib: u64 },
    /// It ran but its output is not what the source reads.
    #[error("{what} did not print {expected}: {why}")]
    Unreadable { what: String, expected: &'static str, why: String },
    /// An audit's answer was not a list of tasks.
    #[error("{0}")]
    BadAudit(String),
    /// An agent audit ended without an answer (limits, errors, refusals).
    #[error("Claude Code did not finish the audit: {0}")]
    AuditUnfinished(String),
    #[error(transparent)]
    NoAgent(#[from] kite_agent::claude::NotFound),
    #[error(transparent)]
    Git(#[from] kite_git::GitError),
    #[error(transparent)]
    Tests(#[from] kite_testrun::TestrunError),
    /// The merge target's history could not be read.
    #[error(transparent)]
    Quality(#[from] kite_quality::QualityError),
    #[error(transparent)]
    Queue(#[from] crate::queue::QueueError),
    /// The vault could not be searched.
    #[error("{0}")]
    Vault(String),
}
