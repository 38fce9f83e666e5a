//! Why a test run gave no report: the strategy loop shows it as the `tests` source's error and the
//! merge queue's verify as its detail, so each case is worded once here.

use kite_git::proc::Exit;

#[derive(Debug, thiserror::Error)]
pub enum TestrunError {
    #[error(transparent)]
    Git(#[from] kite_git::GitError),
    /// The scratch directory or the index copy could not be written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run {command:?}: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{command:?} took longer than {limit} and was stopped; raise [sched.tests] timeout")]
    TimedOut { command: String, limit: String },
    /// A runner that writes a report file wrote none.
    #[error("{command:?} ({exit}) wrote no report: {output}")]
    NoReport { command: String, exit: Exit, output: String },
    /// A report directory runner (maven, gradle) left no XML.
    #[error("the run ({exit}) left no report under {dirs}: {output}")]
    NoReportUnder { dirs: String, exit: Exit, output: String },
    /// The report is not in the runner's format.
    #[error("not {format}: {why}")]
    BadReport { format: &'static str, why: String },
    /// A failed run whose output names no failing test: a failure kite could not read, never a
    /// green run.
    #[error("{command:?} failed ({exit}) and kite found no failing test in its output: {output}")]
    Unread { command: String, exit: Exit, output: String },
}
