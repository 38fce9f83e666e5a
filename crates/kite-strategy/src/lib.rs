//! kite-strategy: the strategy loop that keeps the queue full of work worth doing.
//!
//! The loop, once per tick: [`schedule`] says which [`template`]s are due; [`context`] providers
//! gather the project's state; templates render candidates (or hand a prompt to a command, see
//! [`audit`]); the pure [planner](mod@plan) scores ([`score`]) and prunes; [`scheduler`] applies
//! the plan to the [`Queue`] and returns a [`TickReport`]. The runner (kite-runner) claims the
//! tasks it proposed.
//!
//! Everything that talks to the coordinator goes through the [`Queue`] trait, and the vault through
//! [`NoteSource`], so the binary wires in the real client and tests use in-memory ones. The runner
//! uses the same trait (it is defined here, where its first user is); git, the test runners and
//! the agent adapter are crates of their own beneath both (kite-git, kite-testrun, kite-agent).
//!
//! Invariant: the planner ([`plan()`]) does no I/O and reads no clock.

pub mod audit;
pub mod builtin;
pub mod config;
pub mod context;
pub mod error;
pub mod issues;
pub mod markers;
pub mod plan;
pub mod quality;
pub mod queue;
pub mod schedule;
pub mod scheduler;
pub mod score;
pub mod task;
pub mod template;
#[doc(hidden)]
pub mod memqueue;

pub use config::{SchedConfig, ShellProviderConfig};
pub use context::{NoteHit, NoteSource, Provided, ProviderError};
pub use error::SourceError;
/// The workspace's one human-duration parser, re-exported so `crate::duration::...` keeps working.
pub use kite_core::duration;
pub use plan::{plan, Candidate, Decision, Plan, PlanInput, Target, Unchanged};
pub use queue::{AttemptCost, BoxFuture, Claim, ListFilter, PruneKind, PruneNote, Queue, QueueError, QueueStats};
pub use scheduler::{Scheduler, TickOptions, TickReport};
pub use score::{QualityRule, Score, ScoreWeights, TrackRecord};
pub use task::{NewTask, Task, TaskStatus};
pub use template::{Origin, Template, TemplateError, TemplateInfo, TemplateSet};
