//! Every error reply the daemon sends, built in one place.
//!
//! A refusal is a typed value: the variant says what went wrong, its fields carry the facts, the
//! `#[error]` text is the sentence a user reads (saying what to do where there is something to
//! do), and [`Refusal::code`] is the one match from a refusal to its wire [`ErrorCode`]. Handlers
//! never spell a code and a message side by side, so the same failure reads the same wherever it
//! happens, and a new kind of failure is one new variant the compiler makes you give a code.

use crate::frame::{ErrorBody, ErrorCode, MAX_FRAME};
use kite_core::{LockError, PathError};

/// Why the daemon refused a request (or could not finish it).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    // The frame itself.
    #[error("frame is not valid JSON: {0}")]
    NotJson(String),
    #[error("frame is not a request ({{\"id\", \"op\", \"args\"}}): {0}")]
    NotRequest(String),
    #[error("frame is not valid UTF-8")]
    NotUtf8,
    #[error("frame larger than {MAX_FRAME} bytes was discarded")]
    FrameTooLarge,
    #[error("unknown operation '{op}' (known: {known})")]
    UnknownOp { op: String, known: String },
    #[error("bad arguments for {op}: {why}")]
    BadArgs { op: String, why: String },
    #[error("{op}: limit must be at least 1")]
    PageTooSmall { op: String },
    #[error("{op}: limit must be at most {max} (page with the `next` cursor)")]
    PageTooLarge { op: String, max: u32 },

    // Tasks.
    #[error("a task needs a non-empty title")]
    EmptyTitle,
    #[error("a task title is at most {max} characters")]
    TitleTooLong { max: usize },
    #[error("no task {0}")]
    NoTask(i64),
    #[error("cannot depend on unknown task(s): {0}")]
    UnknownDependencies(String),
    #[error("task {task} is {is}: only a pending task can {to}")]
    NotPending { task: i64, is: String, to: &'static str },
    #[error("task {task} depending on {on} would close a cycle: {cycle}")]
    Cycle { task: i64, on: i64, cycle: String },
    #[error("task {task} is blocked by unfinished dependencies: {blockers}")]
    Blocked { task: i64, blockers: String },
    #[error("task {task} cannot be finished by {session}: {why}")]
    Fenced { task: i64, session: String, why: String },
    #[error("task {task}: {why}")]
    Transition { task: i64, why: String },

    // Sessions.
    #[error("a session needs a non-empty name")]
    EmptySessionName,
    #[error("no session {0}; register one with `kite session register --name NAME`")]
    NoSession(String),
    #[error("no live session {0}")]
    NoLiveSession(String),
    #[error("session {session} was {state}; register a new one with `kite session register`")]
    SessionGone { session: String, state: String },
    #[error("session {session} was {how} while waiting")]
    GoneWhileWaiting { session: String, how: String },

    // Events.
    #[error("a broadcast needs a message")]
    EmptyBroadcast,
    #[error("a broadcast is at most {max} bytes")]
    BroadcastTooLong { max: usize },
    #[error("a message needs text")]
    EmptyMessage,
    #[error("a message is at most {max} bytes")]
    MessageTooLong { max: usize },
    #[error("more events since {since} than one page; read them with events.list (page with `next`), then follow from the last one")]
    FollowTooFar { since: i64 },

    // Costs.
    #[error("bad cost record: {0}")]
    BadCost(String),

    // The merge queue.
    #[error("task {0} is not in the merge queue")]
    NotInMergeQueue(i64),
    #[error("task {task}'s landing already ended: {state}")]
    LandingEnded { task: i64, state: String },
    #[error("{0}")]
    MayNotDiscard(String),
    #[error("bad merge step: {0}")]
    BadMergeStep(String),

    // Locks and paths.
    #[error("{0}")]
    Lock(LockError),
    #[error("cwd '{0}' must be absolute")]
    CwdNotAbsolute(String),
    #[error("{error}{}", link_note(.error, .resolved))]
    Path { error: PathError, resolved: Option<String> },
    #[error("timed out waiting for '{0}'")]
    LockTimeout(String),

    // Memory.
    #[error("k must be between 1 and {max} (got {k})")]
    RecallSize { k: usize, max: usize },
    #[error("the memory component has {0} requests queued; try again shortly")]
    MemoryBusy(usize),
    #[error("the memory component is off; see kite.log in the home")]
    MemoryOff,
    #[error("the memory component is off: {0}")]
    MemoryFailed(String),
    #[error("{0}")]
    BadQuery(String),
    #[error("{0}")]
    BadNote(String),

    // The daemon's own failures.
    #[error("the change could not be committed: {0}")]
    CommitFailed(String),
    #[error("the change may not be on disk (fdatasync failed: {0}); the daemon is stopping: check the disk, start it again with `kite daemon`, and retry")]
    SyncFailed(String),
    #[error("cannot {what} {path}: {why}; nothing was removed")]
    ArchiveFailed { what: String, path: String, why: String },
    // Remote access (the TLS listener).
    #[error("authenticate first: send `auth` with a token (KITE_TOKEN; `kite token create NAME` on the daemon's machine makes one)")]
    NotAuthenticated,
    #[error("the token is not valid (unknown, or mistyped): ask for a new one with `kite token create NAME` on the daemon's machine")]
    BadToken,
    #[error("the token '{0}' was revoked: ask for a new one with `kite token create NAME` on the daemon's machine")]
    TokenRevoked(String),
    #[error("{0} is only answered on the daemon's local socket, not over the network")]
    LocalOnly(String),
    #[error("a token named '{0}' exists: revoke it first (`kite token revoke {0}`) or choose another name")]
    TokenExists(String),
    #[error("no live token named '{0}'")]
    NoToken(String),
    #[error("a token name is 1-64 letters, digits, '-', '_' or '.'")]
    BadTokenName,
    #[error("internal error: {0}")]
    Internal(String),
}

fn link_note(error: &PathError, resolved: &Option<String>) -> String {
    match (error, resolved) {
        (PathError::OutsideRoot(..), Some(r)) => format!(" (it resolves to {r} through a symbolic link)"),
        _ => String::new(),
    }
}

impl Refusal {
    /// An internal failure, from anything that displays (a store error, an encoding error).
    pub fn internal(e: impl std::fmt::Display) -> Refusal {
        Refusal::Internal(e.to_string())
    }

    /// The wire code: the one place a failure is given its code.
    pub fn code(&self) -> ErrorCode {
        use Refusal::*;
        match self {
            NotJson(_) | NotRequest(_) | NotUtf8 | BadArgs { .. } | PageTooSmall { .. } | PageTooLarge { .. } => ErrorCode::BadRequest,
            FrameTooLarge => ErrorCode::TooLarge,
            UnknownOp { .. } => ErrorCode::UnknownOp,
            EmptyTitle | TitleTooLong { .. } | EmptySessionName | EmptyBroadcast | BroadcastTooLong { .. } | EmptyMessage | MessageTooLong { .. } | FollowTooFar { .. } => {
                ErrorCode::BadRequest
            }
            NoTask(_) | UnknownDependencies(_) | NoSession(_) | NoLiveSession(_) => ErrorCode::NotFound,
            NotPending { .. } | Transition { .. } => ErrorCode::InvalidTransition,
            Cycle { .. } => ErrorCode::Cycle,
            Blocked { .. } => ErrorCode::Blocked,
            Fenced { .. } => ErrorCode::Fenced,
            SessionGone { .. } | GoneWhileWaiting { .. } => ErrorCode::SessionGone,
            Lock(LockError::Busy { .. }) => ErrorCode::Busy,
            Lock(LockError::Deadlock { .. }) => ErrorCode::Deadlock,
            Lock(LockError::NotHeld { .. }) => ErrorCode::NotFound,
            BadCost(_) | BadMergeStep(_) => ErrorCode::BadRequest,
            NotInMergeQueue(_) => ErrorCode::NotFound,
            LandingEnded { .. } | MayNotDiscard(_) => ErrorCode::InvalidTransition,
            CwdNotAbsolute(_) => ErrorCode::BadRequest,
            Path { error: PathError::OutsideRoot(..), .. } => ErrorCode::OutsideRoot,
            Path { .. } => ErrorCode::BadRequest,
            LockTimeout(_) => ErrorCode::Timeout,
            RecallSize { .. } | BadQuery(_) | BadNote(_) => ErrorCode::BadRequest,
            MemoryBusy(_) => ErrorCode::Busy,
            MemoryOff | MemoryFailed(_) => ErrorCode::Internal,
            CommitFailed(_) | SyncFailed(_) | ArchiveFailed { .. } | Internal(_) => ErrorCode::Internal,
            NotAuthenticated | BadToken | TokenRevoked(_) | LocalOnly(_) => ErrorCode::Unauthorized,
            TokenExists(_) => ErrorCode::Exists,
            NoToken(_) => ErrorCode::NotFound,
            BadTokenName => ErrorCode::BadRequest,
        }
    }

    /// The body that goes on the wire.
    pub fn body(&self) -> ErrorBody {
        ErrorBody { code: self.code(), message: self.to_string() }
    }
}

impl From<Refusal> for ErrorBody {
    fn from(r: Refusal) -> ErrorBody {
        r.body()
    }
}

impl From<LockError> for Refusal {
    fn from(e: LockError) -> Refusal {
        Refusal::Lock(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_carries_its_code_and_sentence() {
        let body: ErrorBody = Refusal::Cycle { task: 3, on: 1, cycle: "1 -> 2 -> 3 -> 1".into() }.into();
        assert_eq!(body.code, ErrorCode::Cycle);
        assert_eq!(body.message, "task 3 depending on 1 would close a cycle: 1 -> 2 -> 3 -> 1");
        let busy = Refusal::from(LockError::Busy { path: "a.rs".into(), holders: vec!["s1".into()] });
        assert_eq!(busy.code(), ErrorCode::Busy);
        assert_eq!(busy.to_string(), "'a.rs' is held by s1");
        assert_eq!(Refusal::NoSession("x".into()).code(), ErrorCode::NotFound);
        assert_eq!(Refusal::MemoryBusy(64).code(), ErrorCode::Busy);
    }

    #[test]
    fn a_path_outside_the_root_says_where_a_link_led() {
        let error = PathError::OutsideRoot("link/x".into(), "/p".into());
        let direct = Refusal::Path { error: error.clone(), resolved: None };
        assert_eq!(direct.code(), ErrorCode::OutsideRoot);
        assert_eq!(direct.to_string(), "path 'link/x' is outside the project root /p");
        let via = Refusal::Path { error, resolved: Some("/etc/x".into()) };
        assert!(via.to_string().ends_with("(it resolves to /etc/x through a symbolic link)"), "{via}");
        assert_eq!(Refusal::Path { error: PathError::Empty, resolved: None }.code(), ErrorCode::BadRequest);
    }
}
