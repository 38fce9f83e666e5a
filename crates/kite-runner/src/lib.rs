//! kite-runner: turns ready tasks into agent sessions. It claims a task, runs the agent (Claude
//! Code through kite-agent's adapter, or a configured command) in a git worktree of the task's
//! own, retries transient failures with backoff, records what each attempt cost, and hands
//! finished work to the merge queue (kite-land).
//!
//! It reaches the coordinator through kite-strategy's [`kite_strategy::Queue`] trait and the merge
//! queue's book through [`kite_land::MergeBook`], so its tests run on in-memory ones.

pub mod config;
pub mod runner;

pub use config::RunnerConfig;
pub use runner::{RunOutcome, RunReport, Runner, RunnerError};
