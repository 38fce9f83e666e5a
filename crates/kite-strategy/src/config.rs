//! Settings of the strategy loop (`[sched]` in kite.toml).
//!
//! Every field has a default so an empty or missing section works; durations are written like
//! "90s" or "2h" (or a bare number of seconds). The binary layers defaults, kite.toml and `KITE_`
//! environment variables.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::serde_human;
use crate::score::ScoreWeights;

/// A shell command whose stdout (JSON) becomes context under its name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShellProviderConfig {
    pub command: String,
    /// Overrides `[sched] provider_timeout`.
    #[serde(default, with = "crate::duration::serde_human_opt")]
    pub timeout: Option<Duration>,
}

/// `[sched]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedConfig {
    /// How often the loop wakes up to run the templates that are due.
    #[serde(with = "serde_human")]
    pub tick: Duration,
    /// Where the project's templates live, relative to the repository root. They add to the
    /// built-in templates and replace a built-in one of the same name.
    pub prompts_dir: PathBuf,
    /// Load the templates shipped in the binary (false: only the project's own).
    pub builtin_templates: bool,
    /// Cap on all open (pending + active) tasks; lowest scores are pruned beyond it.
    pub max_open: Option<usize>,
    /// Shell context providers by name (`[sched.providers.tests] command = "..."`). They run only
    /// in rounds where a due template needs them (`uses`, or the root of `for_each`).
    pub providers: BTreeMap<String, ShellProviderConfig>,
    #[serde(with = "serde_human")]
    pub provider_timeout: Duration,
    /// Time a strategy-audit command may take.
    #[serde(with = "serde_human")]
    pub audit_timeout: Duration,
    /// Recent commits the git provider reports (and whose changed files it scans for markers).
    pub git_commits: usize,
    /// Cap on TODO/FIXME markers the git provider reports.
    pub max_markers: usize,
    /// Notes per vault search when a template names a topic.
    pub vault_k: usize,
    pub weights: ScoreWeights,
    /// When a template's landed work counts as poor (`[sched.quality]`).
    pub quality: crate::score::QualityRule,
    /// The built-in `tests` provider (`[sched.tests]`).
    pub tests: kite_testrun::TestsConfig,
    /// The built-in `issues` provider (`[sched.issues]`).
    pub issues: crate::issues::IssuesConfig,
    /// Where kite keeps its own state (`<KITE_HOME>`): the tests provider's scratch worktree
    /// lives under it. Set by the binary, not read from kite.toml.
    #[serde(skip)]
    pub state_dir: Option<PathBuf>,
    /// The Claude Code binary audits run (`[runner] claude`; set by the binary). Default: PATH.
    #[serde(skip)]
    pub claude: Option<PathBuf>,
    /// Where landed work lands (`[merge] target`; set by the binary), for the `quality` source.
    /// Default: the branch the repository has checked out.
    #[serde(skip)]
    pub target: Option<String>,
}

impl Default for SchedConfig {
    fn default() -> Self {
        SchedConfig {
            tick: Duration::from_secs(60),
            prompts_dir: PathBuf::from("prompts"),
            builtin_templates: true,
            max_open: Some(200),
            providers: BTreeMap::new(),
            provider_timeout: Duration::from_secs(600),
            audit_timeout: Duration::from_secs(900),
            git_commits: 20,
            max_markers: 200,
            vault_k: 5,
            weights: ScoreWeights::default(),
            quality: Default::default(),
            tests: Default::default(),
            issues: Default::default(),
            state_dir: None,
            claude: None,
            target: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        #[serde(default)]
        sched: SchedConfig,
    }

    #[test]
    fn empty_sections_are_defaults() {
        let f: File = toml::from_str("").unwrap();
        assert_eq!(f.sched, SchedConfig::default());
    }

    #[test]
    fn reads_kite_toml() {
        let f: File = toml::from_str(
            r#"
            [sched]
            tick = "30s"
            max_open = 50
            [sched.providers.tests]
            command = "scripts/test-json.sh"
            timeout = "5m"
            [sched.weights]
            age = 2.0
            "#,
        )
        .unwrap();
        assert_eq!(f.sched.tick, Duration::from_secs(30));
        assert_eq!(f.sched.max_open, Some(50));
        assert_eq!(f.sched.providers["tests"].timeout, Some(Duration::from_secs(300)));
        assert_eq!(f.sched.weights.age, 2.0);
        assert_eq!(f.sched.weights.priority, 1.0);
    }

    #[test]
    fn typos_are_errors() {
        assert!(toml::from_str::<File>("[sched]\nmax_opn = 3").is_err());
        assert!(toml::from_str::<File>("[sched]\ntick = \"soon\"").is_err());
    }
}
