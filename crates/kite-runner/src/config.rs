//! The runner's settings (`[runner]` in kite.toml). Every field has a default so an empty or
//! missing section works; [`RunnerConfig::apply_env`] is the one environment override.

use std::path::PathBuf;
use std::time::Duration;

use kite_core::duration::serde_human;
use serde::{Deserialize, Serialize};

/// `[runner]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunnerConfig {
    /// Agents the runner starts on its own. 0: none; only an explicit spawn starts one.
    pub max_agents: usize,
    /// Another agent (or a script): run with `sh -c` in the task's worktree, the prompt on stdin
    /// and in `KITE_TASK_PROMPT`, judged by its exit code. Unset: Claude Code, through the
    /// adapter (`kite_agent::claude`), judged by its result JSON.
    pub command: Option<String>,
    /// The Claude Code binary; default `claude` on PATH.
    pub claude: Option<PathBuf>,
    /// What a Claude Code agent may do without asking (`--allowedTools` rules). Default:
    /// [`kite_agent::claude::default_allow`] (kite's tools, editing files, git in its worktree) and the
    /// verify command.
    pub allow: Option<Vec<String>>,
    /// `--permission-mode bypassPermissions` instead of `acceptEdits` plus `allow`: every tool,
    /// unasked. Off unless you opt in. Claude Code refuses it when run as root.
    pub bypass_permissions: bool,
    /// Dollars one attempt may spend (`--max-budget-usd`); spent, the run stops and the task fails.
    pub max_budget_usd: Option<f64>,
    /// Dollars all the agents kite starts may spend in a day (UTC); spent, no new agent starts
    /// until midnight.
    pub daily_budget_usd: Option<f64>,
    /// Turns one attempt may take (`--max-turns`).
    pub max_turns: Option<u32>,
    /// The model agents use (`--model`); default: Claude Code's.
    pub model: Option<String>,
    /// Exit codes that mean "try again later" (75 is EX_TEMPFAIL).
    pub transient_exit_codes: Vec<i32>,
    /// Longest an agent session may run before it is killed and retried.
    #[serde(with = "serde_human")]
    pub timeout: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Retry n waits about `backoff_base * 2^(n-1)` (with jitter), at most `backoff_max`.
    #[serde(with = "serde_human")]
    pub backoff_base: Duration,
    #[serde(with = "serde_human")]
    pub backoff_max: Duration,
    /// Keep finished tasks' worktrees (for inspection or merge). Branches are always kept.
    pub keep_worktrees: bool,
    /// Where worktrees go; default `<KITE_HOME>/worktrees`.
    pub worktree_dir: Option<PathBuf>,
    /// How often the runner looks for ready tasks.
    #[serde(with = "serde_human")]
    pub poll: Duration,
    /// How often a running session's heartbeat is sent.
    #[serde(with = "serde_human")]
    pub heartbeat: Duration,
    /// Bytes of stdout kept as the task's result.
    pub result_tail: usize,
    /// Landing (`[merge]` in kite.toml, set by the binary): a finished task is done once its
    /// branch is on the target.
    #[serde(skip)]
    pub merge: kite_land::MergeConfig,
    /// The `kite` executable agents' hooks and MCP server run (set by the binary).
    #[serde(skip)]
    pub kite_exe: Option<PathBuf>,
    /// Model prices (the shipped table with kite.toml's `[prices]`; set by the binary).
    #[serde(skip)]
    pub prices: kite_agent::cost::PriceTable,
    /// Where the project's templates are and whether the built-in ones count (`[sched]
    /// prompts_dir` and `builtin_templates`; set by the binary): a task's template says whether
    /// it expects a change.
    #[serde(skip)]
    pub templates: (PathBuf, bool),
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            max_agents: 0,
            command: None,
            claude: None,
            allow: None,
            bypass_permissions: false,
            max_budget_usd: None,
            daily_budget_usd: None,
            max_turns: None,
            model: None,
            transient_exit_codes: vec![75],
            timeout: Duration::from_secs(3600),
            max_attempts: 3,
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(600),
            keep_worktrees: false,
            worktree_dir: None,
            poll: Duration::from_secs(5),
            heartbeat: Duration::from_secs(15),
            result_tail: 4000,
            merge: Default::default(),
            kite_exe: None,
            prices: Default::default(),
            templates: (PathBuf::from("prompts"), true),
        }
    }
}

impl RunnerConfig {
    /// `KITE_AGENT_COMMAND` wins over the configured command.
    pub fn apply_env(mut self) -> Self {
        if let Ok(c) = std::env::var("KITE_AGENT_COMMAND") {
            if !c.trim().is_empty() {
                self.command = Some(c);
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        #[serde(default)]
        runner: RunnerConfig,
    }

    #[test]
    fn reads_kite_toml_and_an_empty_section_is_the_defaults() {
        let f: File = toml::from_str("").unwrap();
        assert_eq!(f.runner, RunnerConfig::default());
        let f: File = toml::from_str(
            r#"
            [runner]
            max_agents = 4
            command = "my-agent"
            transient_exit_codes = [75, 111]
            timeout = 1800
            backoff_base = "500ms"
            keep_worktrees = true
            "#,
        )
        .unwrap();
        assert_eq!(f.runner.max_agents, 4);
        assert_eq!(f.runner.transient_exit_codes, vec![75, 111]);
        assert_eq!(f.runner.timeout, Duration::from_secs(1800));
        assert_eq!(f.runner.backoff_base, Duration::from_millis(500));
        assert!(f.runner.keep_worktrees);
        let back = toml::to_string(&f.runner).unwrap();
        assert!(back.contains("timeout = \"30m\""), "{back}");
    }

    #[test]
    fn typos_are_errors() {
        assert!(toml::from_str::<File>("[runner]\nmax_agent = 3").is_err());
        assert!(toml::from_str::<File>("[runner]\ntimeout = \"soon\"").is_err());
    }
}
