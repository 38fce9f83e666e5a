//! kite-core: the domain types and pure rules of kite — the task state machine, dependency cycle
//! checks, lock paths and the lock table with its FIFO queues and deadlock detection.
//!
//! Nothing here does I/O. The daemon (kite-coord) owns the state and persists it through
//! kite-store; the rules that decide what is allowed live here so they can be unit- and
//! property-tested without a socket or a database.

pub mod deps;
pub mod duration;
pub mod files;
pub mod home;
pub mod locks;
pub mod merge;
pub mod paths;
pub mod task;

pub use home::Home;
pub use locks::{Grant, LockError, LockMode, LockTable, Requested};
pub use merge::{
    discard_refusal, Finding, MergeCounts, MergeEntry, MergeState, MergeTally, Review,
    ReviewOutcome, TestDelta,
};
pub use paths::{normalize, LockPath, PathError};
pub use task::{HistoryEntry, NewTask, Task, TaskStatus, TransitionError};
