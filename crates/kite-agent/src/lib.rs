//! kite-agent: how kite runs a coding agent and reads what it did. [`claude`] is the Claude Code
//! adapter (the argv and settings for each profile, the wiring of hooks and kite's MCP server,
//! the result JSON and how a run ended); [`cost`] prices its usage by model.
//!
//! It sits beneath both the runner (which starts agents on tasks) and the strategy loop (whose
//! audit templates hand a prompt to an agent), so neither has to depend on the other for it.

pub mod claude;
pub mod cost;
