//! The Claude Code adapter: every place kite runs `claude` builds its command line here, from a
//! profile, and reads how the run ended from its result JSON.
//!
//! Why a known agent and not a shell string: a spawned agent must get kite's hooks, kite's MCP
//! server and the permissions its task needs in a directory nobody trusted (every new worktree)
//! and with nothing committed, and Claude Code takes all of that on its command line
//! (`--settings`, `--mcp-config`, `--allowedTools`). And an exit code says too little: an API
//! overload exits 1 like a real failure, and a spent budget exits like a finished run. The
//! result JSON (`--output-format json`) says which (`subtype`, `terminal_reason`,
//! `api_error_status`), and what it cost.
//!
//! `--mcp-config` and `--allowedTools` take several values and would swallow a prompt written
//! after them, so the prompt always goes on stdin.
//!
//! Profiles restrict what each use gets: `--allowedTools` only pre-approves, so the read-only
//! profiles take tools away with `--tools`, keep MCP servers to the ones given
//! (`--strict-mcp-config`) and read no settings files that might hold kite's hooks
//! (`--setting-sources`). The extractor must run no SessionEnd hook of kite's: its own session's
//! end would queue its own transcript for extraction, in a loop.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::cost::{Cost, PriceTable, Usage};
use kite_git::proc::Exit;

/// Who runs Claude Code, and so what it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// The runner's agents: kite's hooks and MCP tools, and the permissions of `[runner] allow`.
    Agent,
    /// The `strategy-audit` template: read-only tools, no kite hooks.
    Audit,
    /// `[hooks] extract_command`: no hooks, no tools.
    Extractor,
    /// A review gate: read-only tools, no kite hooks.
    Reviewer,
}

/// The tools a read-only profile keeps.
const READ_ONLY: &str = "Read,Grep,Glob";

/// What `[runner] allow` is when kite.toml says nothing: kite's tools, editing files, and git in
/// the worktree. The verify command is added to it when one is known.
pub fn default_allow() -> Vec<String> {
    [
        "mcp__kite",
        "Read",
        "Edit",
        "Write",
        "MultiEdit",
        "NotebookEdit",
        "Glob",
        "Grep",
        "Bash(git add:*)",
        "Bash(git commit:*)",
        "Bash(git status:*)",
        "Bash(git diff:*)",
        "Bash(git log:*)",
        "Bash(git show:*)",
        "Bash(git rebase:*)",
        "Bash(git restore:*)",
        "Bash(git mv:*)",
        "Bash(git rm:*)",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The rule that lets an agent run a project's verify or test command (`cargo test` allows
/// `cargo test` with any arguments). `None` for a command a prefix rule cannot describe (a
/// pipeline, several commands): Claude Code asks about each part of those anyway.
pub fn command_rule(command: &str) -> Option<String> {
    let c = command.trim();
    if c.is_empty() || c.contains(['|', '&', ';', '>', '<', '`', '$', '\n']) {
        return None;
    }
    Some(format!("Bash({c}:*)"))
}

/// The files kite writes in its home for the agents it starts (`<home>/claude/`): hooks as a
/// settings file and its MCP server as an MCP config. They name the running kite executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wiring {
    pub settings: PathBuf,
    pub mcp_config: PathBuf,
}

/// Kite's hook events and the `kite` subcommand each runs (the same as `kite install` writes, so
/// Claude Code runs one of each when a project's committed settings name them too).
pub const HOOKS: &[(&str, &str, u32)] = &[
    ("SessionStart", "hook session-start", 10),
    ("UserPromptSubmit", "hook user-prompt", 5),
    ("SessionEnd", "hook session-end", 5),
    ("PreCompact", "hook session-end", 5),
    // Before a tool runs: a stop order, or a write to a path another session holds.
    ("PreToolUse", "hook tool", 5),
    // Once after all the tool calls of a turn, failed ones included, before the next request:
    // what the session has not been told yet, each item once.
    ("PostToolBatch", "hook tool", 5),
];

/// The hooks object of a settings file running `kite`.
pub fn hooks_json(kite: &str) -> Value {
    let mut hooks = serde_json::Map::new();
    for (event, sub, timeout) in HOOKS {
        hooks.insert(event.to_string(), json!([{"hooks": [{"type": "command", "command": format!("{kite} {sub}"), "timeout": timeout}]}]));
    }
    Value::Object(hooks)
}

/// The `mcpServers` entry of kite's server.
pub fn mcp_server_json(kite: &str) -> Value {
    json!({"type": "stdio", "command": kite, "args": ["mcp"]})
}

impl Wiring {
    /// Writes (or rewrites, when they differ) the two files under `home/claude/`.
    pub fn write(home: &Path, kite: &Path) -> std::io::Result<Wiring> {
        let dir = home.join("claude");
        std::fs::create_dir_all(&dir)?;
        let kite = kite.to_string_lossy();
        let w = Wiring { settings: dir.join("agent-settings.json"), mcp_config: dir.join("agent-mcp.json") };
        write_if_changed(&w.settings, &json!({"hooks": hooks_json(&kite)}))?;
        write_if_changed(&w.mcp_config, &json!({"mcpServers": {"kite": mcp_server_json(&kite)}}))?;
        Ok(w)
    }
}

fn write_if_changed(path: &Path, v: &Value) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(v).expect("JSON values serialize") + "\n";
    if std::fs::read_to_string(path).ok().as_deref() == Some(text.as_str()) {
        return Ok(());
    }
    // One temporary name per process: two runners writing at once never share one.
    let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}

/// One run's command line.
#[derive(Debug, Clone, Default)]
pub struct Invocation<'a> {
    /// Kite's hooks and MCP server (the agent profile).
    pub wiring: Option<&'a Wiring>,
    /// Pre-approved tools (the agent profile).
    pub allow: &'a [String],
    /// `--permission-mode bypassPermissions`: only when the user opted in.
    pub bypass_permissions: bool,
    pub max_budget_usd: Option<f64>,
    pub max_turns: Option<u32>,
    pub model: Option<&'a str>,
}

/// The argument vector (program first) for `profile`. The prompt is not in it: it goes on stdin.
pub fn argv(binary: &Path, profile: Profile, inv: &Invocation) -> Vec<String> {
    let mut a: Vec<String> = vec![binary.to_string_lossy().into_owned(), "-p".into(), "--output-format".into(), "json".into()];
    let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| s.to_string()));
    match profile {
        Profile::Agent => {
            if let Some(w) = inv.wiring {
                push(&["--settings", &w.settings.to_string_lossy(), "--mcp-config", &w.mcp_config.to_string_lossy()]);
            }
            if inv.bypass_permissions {
                push(&["--permission-mode", "bypassPermissions"]);
            } else {
                push(&["--permission-mode", "acceptEdits"]);
            }
            if !inv.allow.is_empty() {
                a.push("--allowedTools".into());
                a.extend(inv.allow.iter().cloned());
            }
        }
        Profile::Audit | Profile::Reviewer => {
            push(&["--tools", READ_ONLY, "--strict-mcp-config", "--setting-sources", ""]);
        }
        Profile::Extractor => {
            push(&["--tools", "", "--strict-mcp-config", "--setting-sources", ""]);
        }
    }
    if let Some(b) = inv.max_budget_usd.filter(|b| *b > 0.0) {
        a.push("--max-budget-usd".into());
        a.push(format!("{b}"));
    }
    if let Some(t) = inv.max_turns.filter(|t| *t > 0) {
        a.push("--max-turns".into());
        a.push(t.to_string());
    }
    if let Some(m) = inv.model {
        a.push("--model".into());
        a.push(m.to_string());
    }
    a
}

/// Environment every adapter run gets, beside the caller's.
pub fn env(profile: Profile) -> Vec<(String, String)> {
    let mut env = vec![];
    if profile != Profile::Agent {
        // Belt and braces: kite's hooks do nothing in these runs even when some settings file
        // the flags above did not exclude names them.
        env.push(("KITE_HOOKS_OFF".to_string(), "1".to_string()));
    }
    env
}

/// `[hooks] extract_command` through the extractor profile: a command that runs Claude Code
/// gets no tools, no MCP servers and no settings files (so none of kite's hooks: its own
/// SessionEnd would queue its own transcript for extraction, in a loop). Another command is
/// left as it is.
pub fn extractor_command(command: &str) -> String {
    let program = command.split_whitespace().next().unwrap_or("");
    let is_claude = Path::new(program).file_name().is_some_and(|n| n == "claude");
    if !is_claude || command.contains("--setting-sources") {
        return command.to_string();
    }
    format!("{command} --tools '' --strict-mcp-config --setting-sources ''")
}

/// Why Claude Code was not found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotFound {
    #[error("[runner] claude = {} is not a file", .0.display())]
    NotAFile(PathBuf),
    #[error("Claude Code (`claude`) is not on PATH; install it (npm install -g @anthropic-ai/claude-code) or set [runner] claude in kite.toml")]
    NotOnPath,
}

/// Finds the binary: the configured path, else `claude` on PATH.
pub fn find(configured: Option<&Path>) -> Result<PathBuf, NotFound> {
    if let Some(p) = configured {
        return if p.is_file() { Ok(p.to_path_buf()) } else { Err(NotFound::NotAFile(p.to_path_buf())) };
    }
    std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|d| d.join("claude")).find(|c| c.is_file()))
        .ok_or(NotFound::NotOnPath)
}

/// The list an agent was asked to answer with: JSON, bare or in a fenced block (models like to
/// fence it), either a list or an object holding the list under `key` (`tasks`, `findings`).
/// The strategy audit and the review gate read their answers with it.
pub fn answer_list(answer: &str, key: &str) -> Result<Vec<serde_json::Value>, String> {
    use serde_json::Value;
    let text = answer.trim();
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(first) => {
            let inner = fenced(text).ok_or_else(|| format!("not JSON ({first}); starts with {:?}", text.chars().take(80).collect::<String>()))?;
            serde_json::from_str(inner).map_err(|e| format!("malformed JSON in a fenced block: {e}"))?
        }
    };
    match value {
        Value::Array(a) => Ok(a),
        Value::Object(mut m) => match m.remove(key) {
            Some(Value::Array(a)) => Ok(a),
            _ => Err(format!("a JSON object without a \"{key}\" list")),
        },
        other => Err(format!("expected a JSON list of {key}, got {other}")),
    }
}

/// The inside of the first fenced block (```json or bare ```).
fn fenced(text: &str) -> Option<&str> {
    let start = text.find("```json").map(|i| i + 7).or_else(|| text.find("```").map(|i| i + 3))?;
    let rest = &text[start..];
    Some(rest[..rest.find("```")?].trim())
}

/// Claude Code's result JSON, the fields kite reads.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct ResultJson {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub subtype: Option<String>,
    pub is_error: bool,
    pub result: Option<String>,
    pub terminal_reason: Option<String>,
    pub api_error_status: Option<u16>,
    pub total_cost_usd: Option<f64>,
    pub usage: Option<Value>,
    #[serde(rename = "modelUsage")]
    pub model_usage: Option<Value>,
    pub num_turns: Option<u64>,
    pub duration_ms: Option<u64>,
    pub session_id: Option<String>,
    pub permission_denials: Vec<Value>,
    pub errors: Vec<Value>,
}

impl ResultJson {
    /// The result object in stdout: the whole of it, or (after anything else printed) its last
    /// line that is one.
    pub fn parse(stdout: &str) -> Option<ResultJson> {
        let ok = |v: Value| (v.get("type").and_then(Value::as_str) == Some("result")).then(|| serde_json::from_value(v).ok()).flatten();
        if let Ok(v) = serde_json::from_str::<Value>(stdout.trim()) {
            // stream-json prints a list of messages; json prints one object.
            if let Some(items) = v.as_array() {
                return items.iter().rev().find_map(|i| ok(i.clone()));
            }
            return ok(v);
        }
        stdout.lines().rev().filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok()).find_map(ok)
    }

    /// What the run cost: Claude Code's own total (the table's when it gave none), with the
    /// tokens of each model in `modelUsage` (camelCase there), else the run's `usage`.
    pub fn cost(&self, prices: &PriceTable) -> Cost {
        let by_model: std::collections::BTreeMap<String, Usage> = self
            .model_usage
            .as_ref()
            .and_then(Value::as_object)
            .map(|models| {
                models
                    .iter()
                    .map(|(model, m)| {
                        let n = |k: &str| m.get(k).and_then(Value::as_u64).unwrap_or(0);
                        let u = Usage {
                            input_tokens: n("inputTokens"),
                            output_tokens: n("outputTokens"),
                            cache_creation_input_tokens: n("cacheCreationInputTokens"),
                            cache_read_input_tokens: n("cacheReadInputTokens"),
                            cache_creation_1h: 0,
                        };
                        (model.clone(), u)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut c = crate::cost::price_by_model(prices, &by_model);
        if by_model.is_empty() {
            c.usage = self.usage.as_ref().map(Usage::from_api).unwrap_or_default();
        }
        c.usd = self.total_cost_usd.unwrap_or(c.usd);
        c.turns = self.num_turns.unwrap_or(0);
        c.duration_ms = self.duration_ms.unwrap_or(0);
        c.agent_session = self.session_id.clone();
        c
    }

    /// The permission denials, one line each (`Bash: git push`).
    pub fn denials(&self) -> Vec<String> {
        self.permission_denials
            .iter()
            .map(|d| {
                let tool = d.get("tool_name").and_then(Value::as_str).unwrap_or("a tool");
                let input = d.get("tool_input").cloned().unwrap_or(Value::Null);
                let what = input
                    .get("command")
                    .or_else(|| input.get("file_path"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| if input.is_null() { String::new() } else { input.to_string() });
                let what: String = what.chars().take(160).collect();
                if what.is_empty() { tool.to_string() } else { format!("{tool}: {what}") }
            })
            .collect()
    }
}

/// How a run ended, as the runner acts on it.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// The agent finished on its own: its work may land. `denials` lists what it was refused.
    Finished { result: String, denials: Vec<String> },
    /// Worth another attempt later: an API overload, rate limit, 5xx or connection failure.
    Transient { why: String, status: Option<u16> },
    /// Stopped before it finished (a hook's stop order, a spent budget, a turn limit): nothing
    /// of it lands.
    Stopped { why: String, by: StoppedBy },
    /// Failed for good.
    Failed { why: String },
}

/// What stopped a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoppedBy {
    /// A hook's `continue: false`: kite's stop order (its task pruned, a person, the daily
    /// budget); the daemon says which.
    Hook,
    /// Its own `--max-budget-usd`.
    Budget,
    /// Its `--max-turns`.
    Turns,
}

impl Ending {
    /// The ending in a word, as costs record it.
    pub fn word(&self) -> &'static str {
        match self {
            Ending::Finished { .. } => "finished",
            Ending::Transient { .. } => "transient",
            Ending::Stopped { .. } => "stopped",
            Ending::Failed { .. } => "failed",
        }
    }
}

/// Whether an API status is worth retrying: rate limits, overloads and server errors.
fn transient_status(s: u16) -> bool {
    s == 408 || s == 409 || s == 429 || s >= 500
}

/// Reads how a run ended from its exit and its result JSON (when it printed one).
pub fn ending(exit: Exit, r: Option<&ResultJson>, stderr: &str) -> Ending {
    let stderr_tail = kite_git::proc::tail(stderr.trim(), 300).to_string();
    let Some(r) = r else {
        return match exit {
            Exit::Code(0) => Ending::Failed { why: "Claude Code exited 0 without a result (is this Claude Code?)".into() },
            Exit::Signal(_) | Exit::TimedOut => Ending::Transient { why: format!("{exit}"), status: None },
            Exit::Code(c) => Ending::Failed { why: format!("Claude Code failed (exit code {c}) without a result; stderr: {stderr_tail}") },
        };
    };
    let text = r.result.clone().unwrap_or_default();
    let message = || {
        let m = if text.trim().is_empty() { r.errors.iter().map(|e| e.as_str().map(str::to_string).unwrap_or_else(|| e.to_string())).collect::<Vec<_>>().join("; ") } else { text.clone() };
        kite_git::proc::tail(m.trim(), 500).to_string()
    };
    let subtype = r.subtype.as_deref().unwrap_or("");
    let reason = r.terminal_reason.as_deref().unwrap_or("");
    if subtype == "error_max_budget_usd" || reason.contains("budget") {
        return Ending::Stopped { why: format!("its budget was spent ({})", non_empty(subtype, reason)), by: StoppedBy::Budget };
    }
    if subtype == "error_max_turns" || reason.contains("max_turns") {
        return Ending::Stopped { why: format!("it reached its turn limit ({})", non_empty(subtype, reason)), by: StoppedBy::Turns };
    }
    if reason.contains("hook") || reason.contains("stop") {
        return Ending::Stopped { why: format!("a hook stopped it ({reason})"), by: StoppedBy::Hook };
    }
    if let Some(s) = r.api_error_status {
        if r.is_error {
            let why = format!("API error {s}: {}", message());
            return if transient_status(s) { Ending::Transient { why, status: Some(s) } } else { Ending::Failed { why } };
        }
    }
    if r.is_error && (reason == "api_error" || subtype == "error_during_execution" && looks_like_connection(&message())) {
        return Ending::Transient { why: format!("API unreachable: {}", message()), status: None };
    }
    match exit {
        Exit::Code(0) if !r.is_error => Ending::Finished { result: text, denials: r.denials() },
        Exit::Signal(_) | Exit::TimedOut => Ending::Transient { why: format!("{exit}"), status: None },
        _ => Ending::Failed { why: format!("{} ({exit}): {}", non_empty(subtype, "error"), message()) },
    }
}

fn non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() { b } else { a }
}

fn looks_like_connection(m: &str) -> bool {
    let m = m.to_ascii_lowercase();
    ["connection", "econnrefused", "timed out", "timeout", "network", "socket"].iter().any(|w| m.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(v: Value) -> ResultJson {
        ResultJson::parse(&v.to_string()).expect("a result")
    }

    #[test]
    fn a_finished_run_lists_its_denials() {
        let j = r(json!({"type": "result", "subtype": "success", "is_error": false, "result": "done it",
            "permission_denials": [{"tool_name": "Bash", "tool_use_id": "t", "tool_input": {"command": "git push"}}]}));
        assert_eq!(ending(Exit::Code(0), Some(&j), ""), Ending::Finished { result: "done it".into(), denials: vec!["Bash: git push".into()] });
    }

    #[test]
    fn overloads_rate_limits_and_server_errors_are_transient_a_bad_request_is_not() {
        for s in [529u16, 429, 500, 503] {
            let j = r(json!({"type": "result", "subtype": "success", "is_error": true, "api_error_status": s, "terminal_reason": "api_error", "result": "Overloaded"}));
            assert!(matches!(ending(Exit::Code(1), Some(&j), ""), Ending::Transient { status: Some(x), .. } if x == s), "{s}");
        }
        let j = r(json!({"type": "result", "is_error": true, "api_error_status": 400, "result": "bad"}));
        assert!(matches!(ending(Exit::Code(1), Some(&j), ""), Ending::Failed { .. }));
        let j = r(json!({"type": "result", "is_error": true, "terminal_reason": "api_error", "result": "Connection error."}));
        assert!(matches!(ending(Exit::Code(1), Some(&j), ""), Ending::Transient { status: None, .. }));
    }

    #[test]
    fn budgets_and_turn_limits_stop_the_run() {
        let j = r(json!({"type": "result", "subtype": "error_max_budget_usd", "is_error": true}));
        assert!(matches!(ending(Exit::Code(1), Some(&j), ""), Ending::Stopped { .. }));
        let j = r(json!({"type": "result", "subtype": "error_max_turns", "is_error": true}));
        assert!(matches!(ending(Exit::Code(0), Some(&j), ""), Ending::Stopped { .. }));
    }

    #[test]
    fn no_result_json_is_judged_by_the_exit() {
        assert!(matches!(ending(Exit::TimedOut, None, ""), Ending::Transient { .. }));
        assert!(matches!(ending(Exit::Code(2), None, "boom"), Ending::Failed { why } if why.contains("boom")));
    }

    #[test]
    fn the_result_is_found_after_other_output_and_costs_come_from_model_usage() {
        let out = format!("warning: something\n{}\n", json!({"type": "result", "subtype": "success", "is_error": false, "result": "ok", "total_cost_usd": 0.25, "num_turns": 3,
            "modelUsage": {"claude-sonnet-4-5": {"inputTokens": 10, "outputTokens": 20, "cacheReadInputTokens": 30, "cacheCreationInputTokens": 40}}}));
        let j = ResultJson::parse(&out).unwrap();
        let c = j.cost(&PriceTable::default());
        assert_eq!(c.usd, 0.25);
        assert_eq!((c.usage.input_tokens, c.usage.output_tokens, c.usage.cache_read_input_tokens, c.usage.cache_creation_input_tokens), (10, 20, 30, 40));
        assert_eq!(c.model.as_deref(), Some("claude-sonnet-4-5"));
        assert_eq!(c.turns, 3);
    }

    #[test]
    fn the_prompt_is_never_on_the_command_line_and_profiles_restrict() {
        let w = Wiring { settings: "/h/claude/s.json".into(), mcp_config: "/h/claude/m.json".into() };
        let allow = default_allow();
        let a = argv(Path::new("/bin/claude"), Profile::Agent, &Invocation { wiring: Some(&w), allow: &allow, max_budget_usd: Some(2.5), ..Default::default() });
        assert_eq!(&a[..4], ["/bin/claude", "-p", "--output-format", "json"]);
        assert!(a.windows(2).any(|x| x == ["--settings", "/h/claude/s.json"]));
        assert!(a.windows(2).any(|x| x == ["--allowedTools", "mcp__kite"]));
        assert!(a.windows(2).any(|x| x == ["--max-budget-usd", "2.5"]));
        assert!(!a.iter().any(|x| x == "bypassPermissions"));
        let audit = argv(Path::new("claude"), Profile::Audit, &Invocation::default());
        assert!(audit.windows(2).any(|x| x == ["--tools", READ_ONLY]));
        assert!(audit.iter().any(|x| x == "--strict-mcp-config"));
        assert!(!audit.iter().any(|x| x == "--settings"));
        assert_eq!(env(Profile::Extractor), vec![("KITE_HOOKS_OFF".to_string(), "1".to_string())]);
    }

    #[test]
    fn the_extractor_gets_no_tools_and_no_settings() {
        assert_eq!(extractor_command("claude -p"), "claude -p --tools '' --strict-mcp-config --setting-sources ''");
        assert_eq!(extractor_command("/opt/bin/claude -p"), "/opt/bin/claude -p --tools '' --strict-mcp-config --setting-sources ''");
        assert_eq!(extractor_command("llm -m x"), "llm -m x");
    }

    #[test]
    fn command_rules_only_for_a_plain_command() {
        assert_eq!(command_rule("cargo test"), Some("Bash(cargo test:*)".into()));
        assert_eq!(command_rule("make test && echo ok"), None);
        assert_eq!(command_rule(" "), None);
    }
}
