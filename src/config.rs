//! `kite.toml` in the home: defaults, then the file, then flags. One settings struct per area,
//! each with a `Default`, so a missing file or section means the documented defaults. Every
//! section refuses a key it does not know, so a typo is an error naming the key and the file
//! instead of a setting that silently does nothing.

use anyhow::{Context, Result};
use kite_runner::RunnerConfig;
use kite_strategy::SchedConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    pub(crate) daemon: DaemonSettings,
    pub(crate) client: ClientSettings,
    pub(crate) store: StoreSettings,
    pub(crate) vault: VaultSettings,
    pub(crate) memory: MemorySettings,
    pub(crate) runner: RunnerConfig,
    pub(crate) sched: SchedConfig,
    pub(crate) hooks: HookSettings,
    /// Landing: the merge queue's target, verify command and strategy.
    pub(crate) merge: kite_land::MergeConfig,
    /// The dashboard (`kite ui`).
    pub(crate) ui: kite_daemon::ui::UiConfig,
    /// Model prices, dollars per million tokens, over the shipped table (`[prices."MODEL"]`).
    pub(crate) prices: std::collections::BTreeMap<String, kite_agent::cost::Price>,
    /// The file this came from (for messages); not a key.
    #[serde(skip)]
    pub(crate) file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct DaemonSettings {
    pub(crate) heartbeat_timeout: u64,
    /// Hooks and `kite mcp` start the daemon in the background when none answers.
    pub(crate) autostart: bool,
    /// A TCP address for clients on other machines ("0.0.0.0:7777"); none by default.
    pub(crate) listen: Option<String>,
    /// TLS on the listener (false only on a loopback address).
    pub(crate) tls: bool,
    /// The certificate and key the listener presents (PEM); default HOME/tls/, made on first use.
    pub(crate) tls_cert: Option<PathBuf>,
    pub(crate) tls_key: Option<PathBuf>,
    /// The address other machines reach the listener at, for `kite token create` ("host:port");
    /// default this host's name and the listener's port.
    pub(crate) advertise: Option<String>,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        DaemonSettings {
            heartbeat_timeout: 300,
            autostart: true,
            listen: None,
            tls: true,
            tls_cert: None,
            tls_key: None,
            advertise: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct StoreSettings {
    /// "normal" (survives kill -9) or "full" (survives power loss).
    pub(crate) synchronous: String,
    /// How long events stay in the live database before they move to HOME/archive
    /// ("30d", or "forever").
    #[serde(deserialize_with = "keep")]
    pub(crate) keep_events: Option<std::time::Duration>,
    /// How long a finished task (done, failed, pruned) stays before it moves to the archive.
    #[serde(deserialize_with = "keep")]
    pub(crate) keep_tasks: Option<std::time::Duration>,
    /// A team's PostgreSQL database (`postgres://user:password@host/db`) instead of HOME/kite.db.
    pub(crate) url: Option<String>,
}

impl Default for StoreSettings {
    fn default() -> Self {
        let r = kite_coord::Retention::default();
        StoreSettings {
            synchronous: "normal".into(),
            keep_events: r.events,
            keep_tasks: r.tasks,
            url: None,
        }
    }
}

/// A retention: a duration ("30d", "12h") or "forever".
fn keep<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<std::time::Duration>, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().eq_ignore_ascii_case("forever") {
        return Ok(None);
    }
    match kite_core::duration::parse_duration(&s) {
        Ok(d) if d.is_zero() => Err(serde::de::Error::custom("a retention of 0 would archive everything at once; give a duration like \"30d\" or \"forever\"")),
        Ok(d) => Ok(Some(d)),
        Err(e) => Err(serde::de::Error::custom(format!("{e}, or \"forever\""))),
    }
}

/// `[client]`: where a CLI, hook or `kite mcp` on another machine finds the team's daemon
/// (else `KITE_URL`, `KITE_TOKEN`, `KITE_CERT_SHA256`; else the local socket).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ClientSettings {
    pub(crate) url: Option<String>,
    pub(crate) token: Option<String>,
    pub(crate) cert_sha256: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct VaultSettings {
    pub(crate) dir: Option<PathBuf>,
}

/// `[memory]`: where the embedding model and the ONNX runtime are, when not in a standard place.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct MemorySettings {
    /// A directory with model.onnx and the tokenizer files (relative to the home).
    pub(crate) model_dir: Option<PathBuf>,
    /// The ONNX runtime library; default `<model_dir>/../libonnxruntime.so`.
    pub(crate) ort_dylib: Option<PathBuf>,
}

/// `[hooks]`: what the Claude Code hooks inject and how extraction runs.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct HookSettings {
    /// false: SessionStart registers the session and adds no context.
    pub(crate) inject: bool,
    /// The context budget in tokens (about four characters each), always under Claude Code's cap.
    pub(crate) budget_tokens: usize,
    /// Notes less similar to the session than this are left out.
    pub(crate) min_similarity: f32,
    /// Notes recalled before the threshold and the budget cut.
    pub(crate) notes: usize,
    /// The extraction command (an LLM in print mode); default: the built-in offline extractor.
    pub(crate) extract_command: Option<String>,
    /// A status note not updated for this many days is no longer given.
    pub(crate) status_days: u32,
    /// A fresh status note is given to a session with a task when it is at least this similar to
    /// the task or the recent work (a session without a task gets the three most recent).
    pub(crate) status_min_similarity: f32,
    /// What the notes a prompt brings up may take, in tokens.
    pub(crate) prompt_budget_tokens: usize,
    /// Notes less similar to a prompt than this are left out.
    pub(crate) prompt_min_similarity: f32,
    /// The tool hook denies a Write or Edit to a path another live session holds exclusively.
    pub(crate) enforce_locks: bool,
    /// A person's own session is stopped (not only told) when its task is pruned or the daily
    /// budget is spent; kite's agents always are.
    pub(crate) stop_people: bool,
    /// How long the tool hook waits for the daemon before it says nothing (milliseconds).
    pub(crate) tool_deadline_ms: u64,
}

impl Default for HookSettings {
    fn default() -> Self {
        HookSettings {
            inject: true,
            budget_tokens: 1500,
            min_similarity: 0.25,
            notes: 8,
            extract_command: None,
            status_days: 14,
            status_min_similarity: kite_memory::inject::STATUS_SIMILARITY,
            prompt_budget_tokens: 400,
            prompt_min_similarity: 0.30,
            enforce_locks: true,
            stop_people: false,
            tool_deadline_ms: 200,
        }
    }
}

impl Config {
    /// The price table: the shipped one with `[prices]` over it.
    pub(crate) fn prices(&self) -> kite_agent::cost::PriceTable {
        kite_agent::cost::PriceTable::with_overrides(&self.prices)
    }
}

impl HookSettings {
    /// The values clamped to what makes sense (a budget of at least 50 tokens, 1–50 notes).
    pub(crate) fn clamped(&self) -> (usize, usize) {
        (self.budget_tokens.max(50), self.notes.clamp(1, 50))
    }
}

impl Config {
    /// Reads `home/kite.toml`; a missing file is the defaults, a broken one an error naming it.
    pub(crate) fn load(home: &Path) -> Result<Config> {
        let path = kite_coord::Home::new(home).config();
        let mut config = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .with_context(|| format!("invalid config {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Config::default(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        config.file = path;
        Ok(config)
    }
}

/// The kite.toml `kite install` writes into a new home: every setting, commented out at its
/// default, so a user sees what can be changed. It must parse to the defaults (a test pins it).
pub(crate) const COMMENTED: &str = r#"# kite's settings for this project. Every line is optional; the values shown are the defaults.
# docs/CLI.md in kite's repository explains each one.

[daemon]
# heartbeat_timeout = 300      # seconds without a heartbeat before a session is reaped
# autostart = true             # hooks and `kite mcp` start the daemon when none is running
# listen = "0.0.0.0:7777"      # a TLS listener for other machines (README: kite for a team)
# tls = true                   # false only on a loopback address
# tls_cert = "tls/cert.pem"    # with tls_key: the identity to present (default: made in .kite/tls/)
# advertise = "host:7777"      # the address `kite token create` gives other machines

[store]
# synchronous = "normal"       # "full": fsync before every reply (survives power loss)
# keep_events = "30d"          # then events move to .kite/archive/events.jsonl ("forever": never)
# keep_tasks = "30d"           # finished tasks, the same way, to .kite/archive/tasks.jsonl
# url = "postgres://kite:PASSWORD@db.example:5432/kite"   # a team's shared store (README: kite for a team)

[hooks]
# inject = true                # false: SessionStart adds no context
# budget_tokens = 1500         # context budget, always under Claude Code's 10,000-character cap
# min_similarity = 0.25        # notes less related to the session than this are left out
# status_days = 14             # a status note not updated for this long is no longer given
# status_min_similarity = 0.20 # a fresh status note is given when this related to the task or work
# prompt_budget_tokens = 400   # what the notes a prompt brings up may take
# prompt_min_similarity = 0.30 # notes less related to a prompt than this are left out
# extract_command = "claude -p"  # default: the built-in offline extractor
# enforce_locks = true         # the tool hook denies a Write/Edit to a path another session holds
# stop_people = false          # true: a person's session is stopped too (task pruned, budget spent), not only told
# tool_deadline_ms = 200       # the tool hook says nothing when the daemon has not answered by then

[sched]
# tick = "60s"                 # how often the strategy loop wakes up
# builtin_templates = true     # false: only the templates in this project's prompts/
# prompts_dir = "prompts"      # templates here add to the built-in ones and override by name

[sched.tests]
# detect = true                # run the detected test runner (cargo, go, pytest, jest, vitest, mix, maven, gradle)
# timeout = "20m"              # in a scratch worktree, when the working state changed; longer runs are stopped
# command = "..."              # replaces the detected command

[sched.issues]
# label = "kite"               # open GitHub issues with this label become tasks (needs `gh`, logged in)
# limit = 100

[sched.quality]
# min_landed = 5               # a template is throttled when, over this many landed tasks,
# min_survival_7d = 0.5        # the median share of lines still there after 7 days is under this,
# reverted = 2                 # or once this many of its landed tasks were reverted

[runner]
# max_agents = 0               # agents the runner starts on its own; 0: only `kite spawn`
# claude = "/path/to/claude"    # default: `claude` on PATH; agents run Claude Code through kite's adapter
# command = "my-agent --flag"  # another agent or a script instead (sh -c, prompt on stdin, judged by exit code)
# allow = ["mcp__kite", "Edit", "Write", "Bash(git commit:*)"]  # default: kite's tools, edits, git, the verify command
# bypass_permissions = false   # true: every tool unasked (Claude Code refuses it as root)
# max_budget_usd = 5.0         # per attempt (--max-budget-usd); spent, the task fails with that reason
# daily_budget_usd = 50.0      # all agents kite starts, per UTC day; spent, no new agent starts
# max_turns = 200              # per attempt (--max-turns)
# model = "claude-sonnet-5-5"  # default: Claude Code's
# max_attempts = 3             # transient failures (API overloads, rate limits) are retried with backoff

# [prices."my-model"]          # dollars per million tokens, over the shipped table
# input = 3.0
# output = 15.0
# cache_write_5m = 3.75
# cache_write_1h = 6.0
# cache_read = 0.30

[merge]
# land = true                  # a task is done once its branch is on the target and verified
# target = "main"              # default: the branch the project's main worktree has checked out
# verify = "make test"         # default: the detected test command; "": land without verifying
# verify_timeout = "30m"
# strategy = "rebase"          # or "merge": a merge commit per task
# review = false               # true: a reviewer (Claude Code, read-only) reads each change first;
#                              # a blocker finding sends the task back (prompts/review.md.tera)
# review_timeout = "10m"

[ui]
# enabled = true               # the dashboard, on 127.0.0.1 with a token (`kite ui` prints the address)
# port = 0                     # 0: a free port, chosen once and kept
# actions = false              # true: the page may prune tasks, discard unlanded work and stop sessions

# [memory]                     # only when the model is not where `make install` put it
# model_dir = "/path/to/all-mpnet-base-v2"
# ort_dylib = "/path/to/libonnxruntime.so"

# [vault]
# dir = "vault"                # the notes, relative to the project root
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commented_config_parses_to_the_defaults() {
        let c: Config = toml::from_str(COMMENTED).unwrap();
        assert!(c.daemon.autostart);
        assert_eq!(c.daemon.heartbeat_timeout, 300);
        assert!(c.sched.builtin_templates);
        assert_eq!(c.sched.tests, kite_testrun::TestsConfig::default());
        assert_eq!(c.sched.issues.label, "kite");
    }

    #[test]
    fn an_unknown_key_in_any_section_is_refused_with_its_name() {
        for (text, key) in [
            ("[hooks]\ninjct = false\n", "injct"),
            ("[daemon]\nautostrat = false\n", "autostrat"),
            ("[memory]\nmodel = \"x\"\n", "model"),
            ("[sched]\ntik = \"1s\"\n", "tik"),
            ("[runner]\nmax = 1\n", "max"),
            ("[nope]\n", "nope"),
        ] {
            let e = toml::from_str::<Config>(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }
}
