//! The real Claude Code binary drives kite end to end, answered by the scripted Messages API
//! stand-in (`tests/claude/stand_in.py`) on loopback. Each test has a fresh git repository, HOME
//! in a temporary directory (no trust granted unless the test is about a trusted session), no
//! KITE_* variables, and `kite install` as a user would run it; `claude` is found on PATH.
//!
//! The binary comes from `make setup` (npm, pinned, `--ignore-scripts`): its native build in
//! `node_modules/@anthropic-ai/claude-code-linux-x64/claude`, or `KITE_TEST_CLAUDE`.

use crate::support::{with_model, KITE};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn claude_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("KITE_TEST_CLAUDE") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/node_modules/@anthropic-ai/claude-code-linux-x64/claude"));
    assert!(p.is_file(), "Claude Code is not installed at {}: run `make setup`", p.display());
    p
}

/// The Messages API stand-in, serving one script, logging every request.
struct StandIn {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl StandIn {
    fn start(dir: &Path, script: &Value) -> StandIn {
        let script_file = dir.join("script.json");
        std::fs::write(&script_file, script.to_string()).unwrap();
        let log = dir.join("api-log.jsonl");
        let port_file = dir.join("api-port");
        let child = Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/claude/stand_in.py"))
            .arg("--script")
            .arg(&script_file)
            .arg("--log")
            .arg(&log)
            .arg("--port-file")
            .arg(&port_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                if let Ok(p) = p.trim().parse() {
                    break p;
                }
            }
            assert!(Instant::now() < deadline, "the stand-in did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        StandIn { child, port, log }
    }

    /// Every request, in order.
    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    fn main_requests(&self) -> Vec<Value> {
        self.requests().into_iter().filter(|r| r["kind"] == "main").collect()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A user's machine: a project (a git repository with one commit), a HOME, `claude` on PATH,
/// the stand-in, and kite installed in the project.
struct Machine {
    dir: tempfile::TempDir,
    repo: PathBuf,
    home: PathBuf,
    bin: PathBuf,
    api: StandIn,
}

impl Machine {
    fn new(script: Value) -> Machine {
        Machine::with_config(script, "")
    }

    /// `runner` holds `[runner]` settings, put in the kite.toml `kite install` writes.
    fn with_config(script: Value, runner: &str) -> Machine {
        let dir = tempfile::Builder::new().prefix("kite-claude").tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let (repo, home, bin) = (base.join("project"), base.join("home"), base.join("bin"));
        for d in [&repo, &home, &bin] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::os::unix::fs::symlink(claude_binary(), bin.join("claude")).unwrap();
        std::os::unix::fs::symlink(KITE, bin.join("kite")).unwrap();
        let api = StandIn::start(&base, &script);
        let m = Machine { dir, repo, home, bin, api };
        m.git(&["init", "-q", "-b", "main"]);
        std::fs::write(m.repo.join("README.md"), "# a project\n").unwrap();
        m.git(&["add", "-A"]);
        m.git(&["commit", "-q", "-m", "first"]);
        let out = m.kite(&["install"]);
        assert!(out.status.success(), "kite install: {}", String::from_utf8_lossy(&out.stderr));
        // These tests are about what is told and stopped, not about the hook's latency (that is
        // benchmarked): a loaded CI machine must not turn a late answer into silence.
        let f = m.repo.join(".kite/kite.toml");
        let text = std::fs::read_to_string(&f).unwrap().replacen("\n[hooks]\n", "\n[hooks]\ntool_deadline_ms = 3000\n", 1);
        std::fs::write(&f, text).unwrap();
        if !runner.is_empty() {
            let f = m.repo.join(".kite/kite.toml");
            let text = std::fs::read_to_string(&f).unwrap().replacen("\n[runner]\n", &format!("\n[runner]\n{runner}\n"), 1);
            std::fs::write(f, text).unwrap();
        }
        m
    }

    /// The environment every process of this machine runs with.
    fn env(&self, c: &mut Command) {
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("KITE_") {
                c.env_remove(&k);
            }
        }
        with_model(c);
        c.env("HOME", &self.home)
            .env("PATH", format!("{}:/usr/local/bin:/usr/bin:/bin", self.bin.display()))
            .env("ANTHROPIC_BASE_URL", format!("http://127.0.0.1:{}", self.api.port))
            .env("ANTHROPIC_API_KEY", "sk-test-stand-in")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .env("CLAUDE_CODE_MAX_RETRIES", "0")
            .env("GIT_CONFIG_GLOBAL", self.home.join(".gitconfig"))
            .env("GIT_AUTHOR_NAME", "A Person")
            .env("GIT_AUTHOR_EMAIL", "person@example.com")
            .env("GIT_COMMITTER_NAME", "A Person")
            .env("GIT_COMMITTER_EMAIL", "person@example.com");
    }

    fn git(&self, args: &[&str]) -> String {
        let mut c = Command::new("git");
        self.env(&mut c);
        let out = c.args(args).current_dir(&self.repo).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }

    fn kite_in(&self, dir: &Path, args: &[&str]) -> Output {
        let mut c = Command::new(self.bin.join("kite"));
        self.env(&mut c);
        c.args(args).current_dir(dir).stdin(Stdio::null()).output().unwrap()
    }

    fn kite(&self, args: &[&str]) -> Output {
        self.kite_in(&self.repo, args)
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.kite(&[args, &["--json"]].concat());
        assert!(out.status.success(), "kite {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("kite {args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
    }

    fn task(&self, title: &str) -> i64 {
        self.json(&["task", "create", "--title", title])["id"].as_i64().unwrap()
    }

    /// `kite spawn N --json`: the run report (and whether it exited 0).
    fn spawn(&self, id: i64) -> (bool, Value) {
        let out = self.kite(&["spawn", &id.to_string(), "--json"]);
        let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.success(), report)
    }

    /// `claude -p` run by a person in `dir`, the prompt on stdin.
    fn claude(&self, dir: &Path, args: &[&str], prompt: &str) -> (Output, Value) {
        let mut c = Command::new(self.bin.join("claude"));
        self.env(&mut c);
        let mut child = c
            .args(["-p", "--output-format", "json"])
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(prompt.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out, v)
    }

    /// Marks `dir` trusted, as accepting Claude Code's trust dialog does.
    fn trust(&self, dir: &Path) {
        let f = self.home.join(".claude.json");
        let mut v: Value = std::fs::read_to_string(&f).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(json!({}));
        v["projects"][dir.display().to_string()] = json!({"hasTrustDialogAccepted": true});
        std::fs::write(f, v.to_string()).unwrap();
    }

    fn stop_daemon(&self) {
        let _ = self.kite(&["daemon", "--stop"]);
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        self.stop_daemon();
        let _ = &self.dir;
    }
}

fn write(path: &str, content: &str) -> Value {
    json!({"tool_use": {"name": "Write", "input": {"file_path": path, "content": content}}})
}

fn bash(command: &str) -> Value {
    json!({"tool_use": {"name": "Bash", "input": {"command": command, "description": "run"}}})
}

fn text(t: &str) -> Value {
    json!({"text": t})
}

/// The messages of a request as one string (what the model was sent).
fn sent(req: &Value) -> String {
    req["body"]["messages"].to_string()
}

#[test]
fn a_spawned_agent_edits_commits_and_lands_on_default_settings() {
    let m = Machine::new(json!({"turns": [
        write("GREETING.md", "hello from the agent\n"),
        bash("git add -A && git commit -m 'Add a greeting'"),
        text("Added GREETING.md and committed it."),
    ]}));
    let id = m.task("Add a greeting file");
    let (ok, report) = m.spawn(id);
    assert!(ok, "{report:#}");
    assert_eq!(report["outcome"], "done", "{report:#}");
    // On main, the person's checkout moved with it, and the commit names its task.
    assert_eq!(std::fs::read_to_string(m.repo.join("GREETING.md")).unwrap(), "hello from the agent\n");
    let log = m.git(&["log", "-1", "--format=%s%n%(trailers:key=Kite-Task,valueonly)", "main"]);
    assert_eq!(log, format!("Add a greeting\n{id}"));
    let task = m.json(&["task", "show", &id.to_string()]);
    assert_eq!(task["status"], "done");
    assert!(task["result"].as_str().unwrap_or_default().contains("Added GREETING.md"), "{task:#}");
    // The agent's Bash call was allowed: no denial anywhere.
    assert_eq!(report["attempts"][0].get("denials"), None, "{report:#}");
    // Cost and tokens are recorded, per attempt and on the task.
    let cost = &report["attempts"][0]["cost"];
    assert!(cost["usd"].as_f64().unwrap() > 0.0, "{report:#}");
    assert!(cost["output_tokens"].as_u64().unwrap() > 0, "{report:#}");
    assert!(task["cost"]["usd"].as_f64().unwrap() > 0.0, "{task:#}");
    assert_eq!(task["costs"].as_array().map(Vec::len), Some(1), "{task:#}");
    let status = m.json(&["status"]);
    assert!(status["cost"]["today"]["usd"].as_f64().unwrap() > 0.0, "{status:#}");
    assert!(status["cost"]["agents_today_usd"].as_f64().unwrap() > 0.0, "{status:#}");
}

#[test]
fn an_agent_that_leaves_its_change_uncommitted_lands() {
    let m = Machine::new(json!({"turns": [write("notes/plan.md", "the plan\n"), text("Wrote the plan.")]}));
    let id = m.task("Write the plan");
    let (ok, report) = m.spawn(id);
    assert!(ok, "{report:#}");
    assert_eq!(std::fs::read_to_string(m.repo.join("notes/plan.md")).unwrap(), "the plan\n");
    let log = m.git(&["log", "-1", "--format=%s%n%(trailers:key=Kite-Task,valueonly)", "main"]);
    assert_eq!(log, format!("Write the plan\n{id}"));
    assert_eq!(report["worktree_kept"], false, "landed: nothing in the worktree to lose");
}

#[test]
fn a_spawned_agent_hears_the_vault_and_uses_kites_tools_in_the_same_queue() {
    let m = Machine::new(json!({"turns": [
        {"tool_use": {"name": "mcp__kite__kite_task_create", "input": {"title": "Follow-up: document the greeting", "files": ["docs/greeting.md"]}}},
        write("GREETING.md", "hi\n"),
        text("Done, and filed a follow-up."),
    ]}));
    let out = m.kite(&["vault", "add", "--kind", "preference", "--title", "Greetings are lowercase", "--body", "Every greeting in this project is written in lowercase, never shouted."]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = m.task("Add a greeting file");
    let (ok, report) = m.spawn(id);
    assert!(ok, "{report:#}");
    let main = m.api.main_requests();
    assert!(!main.is_empty());
    // The first model request already carries the preference SessionStart injected.
    assert!(sent(&main[0]).contains("Greetings are lowercase"), "{}", sent(&main[0]));
    // The agent's kite_task_create ran (permitted, in an untrusted worktree) against the one queue.
    assert!(sent(&main[1]).contains("Follow-up: document the greeting"), "the tool's result: {}", sent(&main[1]));
    let tasks = m.json(&["task", "list"]);
    let follow = tasks["tasks"].as_array().unwrap().iter().find(|t| t["title"] == "Follow-up: document the greeting").cloned();
    let follow = follow.unwrap_or_else(|| panic!("the follow-up is not in the queue: {tasks:#}"));
    assert_eq!(follow["files"], json!(["docs/greeting.md"]), "repository-relative, from the agent's worktree");
    // One kite session per agent: the runner's, which the hooks and MCP server attached to.
    let sessions = m.json(&["session", "list"]);
    let names: Vec<&str> = sessions["sessions"].as_array().unwrap().iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names.iter().filter(|n| n.starts_with("runner-task-")).count(), 1, "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("claude-") || n.starts_with("mcp-")), "{names:?}");
    // No second home in the worktree.
    let wt = m.repo.join(".kite/worktrees").join(format!("task-{id}"));
    assert!(!wt.join(".kite").exists());
}

#[test]
fn an_overload_is_retried_with_backoff_then_lands() {
    let m = Machine::with_config(
        json!({"turns": [
            {"error": {"status": 529, "type": "overloaded_error", "message": "Overloaded"}},
            write("GREETING.md", "hello\n"),
            text("Done."),
        ]}),
        "backoff_base = \"100ms\"\nbackoff_max = \"200ms\"",
    );
    let id = m.task("Add a greeting file");
    let (ok, report) = m.spawn(id);
    assert!(ok, "{report:#}");
    let attempts = report["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{report:#}");
    assert_eq!(attempts[0]["transient"], true);
    assert_eq!(attempts[0]["api_status"], 529);
    assert!(attempts[0]["exit"].as_str().unwrap().contains("529"), "{report:#}");
    assert!(m.repo.join("GREETING.md").exists());
}

/// Issue 24: the review gate. A reviewer (the real Claude Code, read-only tools) finds a blocker:
/// the task goes back with the findings, the agent's next attempt addresses them and lands, its
/// review's minor finding recorded on the landing.
#[test]
fn a_blocker_review_finding_sends_the_task_back_and_its_next_attempt_lands() {
    let blocker = json!([{"severity": "blocker", "file": "GREETING.md", "line": 1, "what": "It greets nobody: say hello to the world."}]).to_string();
    let minor = json!([{"severity": "minor", "file": "GREETING.md", "line": 1, "what": "No full stop."}]).to_string();
    let m = Machine::new(json!({
        "scripts": {"You are reviewing a change before it lands": {"turns": [text(&blocker), text(&minor)]}},
        "turns": [
            write("GREETING.md", "hello\n"),
            bash("git add -A && git commit -m 'Add a greeting'"),
            text("Done."),
            write("GREETING.md", "hello, world\n"),
            bash("git add -A && git commit -m 'Greet the world'"),
            text("Done again."),
        ],
    }));
    review_on(&m);
    let id = m.json(&["task", "create", "--title", "Add a greeting file", "--body", "It must greet the whole world."])["id"].as_i64().unwrap();
    let (ok, report) = m.spawn(id);
    assert!(ok, "{report:#}");
    let attempts = report["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{report:#}");
    assert!(attempts[0]["exit"].as_str().unwrap().contains("review gate found a blocker"), "{report:#}");
    assert_eq!(std::fs::read_to_string(m.repo.join("GREETING.md")).unwrap(), "hello, world\n");
    // The reviewer ran read-only, and the agent's second attempt was given the finding.
    let reviews: Vec<Value> = m.api.main_requests().into_iter().filter(|r| sent(r).contains("You are reviewing a change")).collect();
    assert_eq!(reviews.len(), 2);
    let tools: Vec<&str> = reviews[0]["body"]["tools"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(!tools.iter().any(|t| ["Write", "Edit", "Bash"].contains(t)), "{tools:?}");
    assert!(sent(&reviews[0]).contains("+hello"), "the reviewer sees the diff");
    assert!(sent(&reviews[0]).contains("It must greet the whole world."), "and the task's body");
    let second = m.api.main_requests().into_iter().find(|r| sent(r).contains("Greet") || sent(r).contains("say hello to the world")).unwrap();
    assert!(sent(&second).contains("say hello to the world"), "the findings are the next attempt's context");
    // The book keeps both verdicts; the report counts the findings.
    let shown = m.json(&["task", "show", &id.to_string()]);
    assert_eq!(shown["landing"]["state"], "landed", "{shown:#}");
    assert_eq!(shown["landing"]["review"]["outcome"], "passed", "{shown:#}");
    assert_eq!(shown["landing"]["review"]["findings"][0]["severity"], "minor", "{shown:#}");
    let r = m.json(&["report"]);
    assert_eq!(r["totals"]["review_findings"], json!({"blocker": 1, "minor": 1}), "{:#}", r["totals"]);
    assert_eq!(r["totals"]["review_blocked"], 1, "{:#}", r["totals"]);
    // What the reviewer cost is the task's cost too: in the ledger as source `review`.
    let costs = shown["costs"].as_array().unwrap();
    let of = |source: &str| costs.iter().filter(|c| c["source"] == source).map(|c| c["usd"].as_f64().unwrap()).collect::<Vec<f64>>();
    let (agents, reviews) = (of("agent"), of("review"));
    assert_eq!((agents.len(), reviews.len()), (2, 2), "{costs:#?}");
    assert!(reviews.iter().all(|u| *u > 0.0), "{costs:#?}");
    assert!(shown["landing"]["review"]["usd"].as_f64().unwrap() > 0.0, "{shown:#}");
    let task_usd = r["tasks"].as_array().unwrap().iter().find(|t| t["id"] == id).unwrap()["usd"].as_f64().unwrap();
    let sum: f64 = agents.iter().chain(&reviews).sum();
    assert!((task_usd - sum).abs() < 1e-9, "the report's cost of the task is its attempts' and its reviews': {task_usd} vs {sum}");
    assert!(r["totals"]["tokens"].as_u64().unwrap() > 0, "{:#}", r["totals"]);
}

/// Turns the review gate on in the project's kite.toml.
fn review_on(m: &Machine) {
    let toml = m.repo.join(".kite/kite.toml");
    let t = std::fs::read_to_string(&toml).unwrap().replacen("\n[merge]\n", "\n[merge]\nreview = true\n", 1);
    assert!(t.contains("review = true"), "kite install writes a [merge] section: {t}");
    std::fs::write(&toml, t).unwrap();
}

/// A reviewer whose answer is not the JSON asked for is asked once more, then the review is
/// recorded as failed, never as a pass: the task goes back, saying the gate could not judge it,
/// and lands once a review passes.
#[test]
fn a_review_with_no_readable_verdict_is_asked_again_then_fails_and_never_passes() {
    let m = Machine::new(json!({
        "scripts": {"You are reviewing a change before it lands": {"turns": [text("Looks good to me!"), text("I think it is fine."), text("[]")]}},
        "turns": [
            write("GREETING.md", "hello\n"),
            bash("git add -A && git commit -m 'Add a greeting'"),
            text("Done."),
            write("GREETING.md", "hello, world\n"),
            bash("git add -A && git commit -m 'Greet the world'"),
            text("Done again."),
        ],
    }));
    review_on(&m);
    let id = m.json(&["task", "create", "--title", "Add a greeting file"])["id"].as_i64().unwrap();
    let (ok, report) = m.spawn(id);
    assert!(ok, "{report:#}");
    let attempts = report["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{report:#}");
    assert!(attempts[0]["exit"].as_str().unwrap().contains("could not judge"), "{report:#}");
    // Two tries at the first review, one at the second.
    let reviews = m.api.main_requests().into_iter().filter(|r| sent(r).contains("You are reviewing a change")).count();
    assert_eq!(reviews, 3);
    let shown = m.json(&["task", "show", &id.to_string()]);
    assert_eq!(shown["landing"]["state"], "landed", "{shown:#}");
    assert_eq!(shown["landing"]["review"]["outcome"], "passed", "{shown:#}");
    let r = m.json(&["report"]);
    assert_eq!(r["totals"]["review_failed"], 1, "{:#}", r["totals"]);
}

#[test]
fn a_spent_budget_stops_the_agent_and_nothing_lands() {
    let m = Machine::with_config(
        json!({"turns": [write("A.md", "a\n"), write("B.md", "b\n"), text("Done.")]}),
        "max_budget_usd = 0.0001",
    );
    let id = m.task("Write two files");
    let (ok, report) = m.spawn(id);
    assert!(!ok, "{report:#}");
    assert!(report["error"].as_str().unwrap().contains("budget"), "{report:#}");
    assert!(!m.repo.join("A.md").exists(), "a stopped run lands nothing");
    // Claude Code usually runs the call it was answering before it stops at the budget; when it
    // did, the work is kept in the worktree (when it did not, there is nothing to keep).
    let wt = m.repo.join(".kite/worktrees").join(format!("task-{id}"));
    if wt.join("A.md").exists() {
        assert_eq!(report["worktree_kept"], true, "its work is kept: {report:#}");
    }
    // Spent, the daily budget stops the next agent before it starts.
    let toml = m.repo.join(".kite/kite.toml");
    let text = std::fs::read_to_string(&toml).unwrap().replace("max_budget_usd = 0.0001", "daily_budget_usd = 0.0001");
    std::fs::write(&toml, text).unwrap();
    let other = m.task("Another");
    let out = m.kite(&["spawn", &other.to_string()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("daily budget is spent"), "{}", String::from_utf8_lossy(&out.stderr));
    let status = String::from_utf8_lossy(&m.kite(&["status"]).stdout).to_string();
    assert!(status.contains("daily budget"), "{status}");
}

#[test]
fn a_trusted_persons_session_may_call_kites_tools() {
    let m = Machine::new(json!({"turns": [
        {"tool_use": {"name": "mcp__kite__kite_task_create", "input": {"title": "Filed by a person's session"}}},
        text("Filed."),
    ]}));
    m.trust(&m.repo);
    let (out, result) = m.claude(&m.repo, &[], "file a task");
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(result["permission_denials"], json!([]), "{result:#}");
    let tasks = m.json(&["task", "list"]);
    assert!(tasks["tasks"].as_array().unwrap().iter().any(|t| t["title"] == "Filed by a person's session"), "{tasks:#}");
    // Its cost was read from its transcript at SessionEnd.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = m.json(&["status"]);
        if status["cost"]["today"]["interactive_usd"].as_f64().unwrap_or(0.0) > 0.0 {
            break;
        }
        assert!(Instant::now() < deadline, "no interactive cost recorded: {status:#}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_claude_w_session_joins_the_same_daemon_queue_and_vault() {
    let m = Machine::new(json!({"turns": [
        {"tool_use": {"name": "mcp__kite__kite_task_create", "input": {"title": "Filed from a claude -w worktree", "files": ["src/lib.rs"]}}},
        {"tool_use": {"name": "mcp__kite__kite_vault_add", "input": {"title": "Worktrees share one vault", "body": "A note written from a claude -w session lands in the main vault.", "kind": "fact"}}},
        text("Done."),
    ]}));
    // The documented way: commit what `kite install` wrote, so every worktree has it.
    m.git(&["add", ".claude/settings.json", ".mcp.json", ".gitignore"]);
    m.git(&["commit", "-q", "-m", "Wire kite"]);
    m.trust(&m.repo);
    let daemon = m.json(&["status"]);
    let (out, result) = m.claude(&m.repo, &["-w", "feature"], "file a task");
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(result["permission_denials"], json!([]), "{result:#}");
    let wt = m.repo.join(".claude/worktrees/feature");
    assert!(wt.is_dir(), "claude -w made its worktree");
    assert!(!wt.join(".kite").exists(), "no second home in the worktree");
    let tasks = m.json(&["task", "list"]);
    let t = tasks["tasks"].as_array().unwrap().iter().find(|t| t["title"] == "Filed from a claude -w worktree").cloned();
    let t = t.unwrap_or_else(|| panic!("not in the main queue: {tasks:#}"));
    assert_eq!(t["files"], json!(["src/lib.rs"]));
    assert_eq!(m.json(&["status"])["pid"], daemon["pid"], "the same daemon");
    let found = m.json(&["vault", "search", "notes from worktree sessions"]);
    assert!(found.to_string().contains("Worktrees share one vault"), "{found:#}");
    // kite in the worktree reaches the same daemon, and locks are one lock from anywhere.
    let s = m.json(&["session", "register", "--name", "person"])["id"].as_str().unwrap().to_string();
    let out = m.kite_in(&wt, &["lock", "acquire", "src/lib.rs", "--session", &s, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let held = m.json(&["lock", "list"]);
    assert_eq!(held["held"][0]["path"], "src/lib.rs", "{held:#}");
    let doctor = m.kite_in(&wt, &["doctor"]);
    let text = String::from_utf8_lossy(&doctor.stdout).to_string();
    assert!(text.contains(&wt.join(".mcp.json").display().to_string()), "the doctor checks the worktree's wiring: {text}");
}

#[test]
fn the_strategy_audit_gets_candidates_from_a_scripted_answer() {
    let answer = json!([{"title": "Write a contributor guide", "body": "CONTRIBUTING.md is missing.", "priority": 3}]).to_string();
    let m = Machine::new(json!({"turns": [text(&answer)]}));
    // Only this tick runs the audit: the daemon's own loop is off.
    let toml = m.repo.join(".kite/kite.toml");
    let text = std::fs::read_to_string(&toml).unwrap().replacen("\n[sched]\n", "\n[sched]\ntick = 0\n", 1);
    std::fs::write(&toml, text).unwrap();
    m.stop_daemon();
    assert!(m.kite(&["daemon", "--detach"]).status.success());
    // The built-in audit runs every six hours: eject it and make it due now.
    let out = m.kite(&["sched", "eject", "strategy-audit"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let f = m.repo.join("prompts/strategy-audit.md.tera");
    let t = std::fs::read_to_string(&f).unwrap().replace("schedule = \"0 */6 * * *\"", "schedule = \"@every 1h\"");
    std::fs::write(&f, t).unwrap();
    let out = m.kite(&["sched", "tick", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let tasks = m.json(&["task", "list"]);
    assert!(tasks["tasks"].as_array().unwrap().iter().any(|t| t["title"] == "Write a contributor guide"), "{report:#}\n{tasks:#}");
    // The audit ran read-only: its request offered no tool that writes.
    let req = &m.api.main_requests()[0];
    let tools: Vec<&str> = req["body"]["tools"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(!tools.iter().any(|t| ["Write", "Edit", "Bash"].contains(t)), "{tools:?}");
}

// --- Reaching a running agent at its next tool call (kite hook tool) ---------------------------

impl Machine {
    /// Waits until the stand-in holds the request named `name`, runs `during`, then releases it.
    fn while_held(&self, name: &str, during: impl FnOnce()) {
        let base = self.dir.path().canonicalize().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !base.join(format!("{name}.waiting")).exists() {
            assert!(Instant::now() < deadline, "the agent never reached the held request {name}");
            std::thread::sleep(Duration::from_millis(20));
        }
        during();
        std::fs::write(base.join(name), "").unwrap();
    }

    /// `kite spawn N` in the background.
    fn spawn_bg(&self, id: i64) -> std::thread::JoinHandle<(bool, Value)> {
        let mut c = Command::new(self.bin.join("kite"));
        self.env(&mut c);
        c.args(["spawn", &id.to_string(), "--json"]).current_dir(&self.repo).stdin(Stdio::null());
        std::thread::spawn(move || {
            let out = c.output().unwrap();
            (out.status.success(), serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
        })
    }
}

impl Machine {
    /// Waits until a Claude Code transcript under HOME holds `needle`.
    fn wait_for_transcript(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let projects = self.home.join(".claude/projects");
            let found = std::fs::read_dir(&projects).into_iter().flatten().flatten().any(|d| {
                std::fs::read_dir(d.path()).into_iter().flatten().flatten().any(|f| std::fs::read_to_string(f.path()).is_ok_and(|t| t.contains(needle)))
            });
            if found {
                return;
            }
            assert!(Instant::now() < deadline, "no transcript has {needle}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn a_broadcast_reaches_a_busy_agent_at_its_next_tool_call_once_and_a_message_to_another_does_not() {
    let m = Machine::new(json!({"turns": [
        write("a.txt", "a\n"),
        {"tool_use": {"name": "Bash", "input": {"command": "exit 3", "description": "fails"}}, "hold": "second"},
        bash("echo still working"),
        write("b.txt", "b\n"),
        text("Done."),
    ]}));
    let other = m.json(&["session", "register", "--name", "other"])["id"].as_str().unwrap().to_string();
    let id = m.task("Write two files");
    let run = m.spawn_bg(id);
    m.while_held("second", || {
        assert!(m.kite(&["broadcast", "stop touching src/parser.rs"]).status.success());
        assert!(m.kite(&["message", &other, "for the other session only"]).status.success());
    });
    let (ok, report) = run.join().unwrap();
    assert!(ok, "{report:#}");
    let main = m.api.main_requests();
    assert!(main.len() >= 5, "{} requests", main.len());
    // Sent while the second request was held: told after the failing Bash call, in the third
    // request, and never again (later requests carry it once, as history).
    assert_eq!(count(&sent(&main[1]), "stop touching src/parser.rs"), 0);
    assert_eq!(count(&sent(&main[2]), "stop touching src/parser.rs"), 1, "{}", sent(&main[2]));
    for r in &main[3..] {
        assert_eq!(count(&sent(r), "stop touching src/parser.rs"), 1, "told once: {}", sent(r));
    }
    assert!(!main.iter().any(|r| sent(r).contains("for the other session only")), "a message to another session is not told");
    // kite session list shows what the agent's session was told, and when.
    let out = String::from_utf8_lossy(&m.kite(&["session", "list"]).stdout).to_string();
    assert!(out.contains("told ") && out.contains("BROADCAST from a person: stop touching src/parser.rs"), "{out}");
}

#[test]
fn a_write_to_a_file_another_session_holds_is_denied_with_the_holders_name() {
    let m = Machine::new(json!({"turns": [write("src/parser.rs", "// the agent's version\n"), text("Could not write it.")]}));
    std::fs::create_dir_all(m.repo.join("src")).unwrap();
    std::fs::write(m.repo.join("src/parser.rs"), "// the person's version\n").unwrap();
    m.git(&["add", "-A"]);
    m.git(&["commit", "-q", "-m", "parser"]);
    let alice = m.json(&["session", "register", "--name", "alice"])["id"].as_str().unwrap().to_string();
    assert!(m.kite(&["lock", "acquire", "src/parser.rs", "--session", &alice]).status.success());
    let id = m.task("Rewrite the parser");
    let (_, report) = m.spawn(id);
    let main = m.api.main_requests();
    let second = sent(&main[1]);
    assert!(second.contains("src/parser.rs is locked by session") && second.contains("alice"), "{second}");
    assert!(second.contains("kite_lock"), "says how to wait: {second}");
    let wt = m.repo.join(".kite/worktrees").join(format!("task-{id}"));
    let kept = std::fs::read_to_string(wt.join("src/parser.rs")).unwrap_or_else(|_| std::fs::read_to_string(m.repo.join("src/parser.rs")).unwrap());
    assert_eq!(kept, "// the person's version\n", "the file is unchanged: {report:#}");
}

#[test]
fn a_task_cancelled_while_its_agent_runs_stops_it_at_the_next_tool_call() {
    let m = Machine::new(json!({"turns": [
        write("first.txt", "first\n"),
        {"tool_use": {"name": "Write", "input": {"file_path": "second.txt", "content": "second\n"}}, "hold": "second"},
        text("Done."),
    ]}));
    let id = m.task("Write two files");
    let run = m.spawn_bg(id);
    m.while_held("second", || {
        assert!(m.kite(&["task", "cancel", &id.to_string(), "--reason", "not needed any more"]).status.success());
    });
    let (ok, report) = run.join().unwrap();
    assert!(!ok);
    assert_eq!(report["outcome"], "stopped", "{report:#}");
    let task = m.json(&["task", "show", &id.to_string()]);
    assert_eq!(task["status"], "pruned");
    assert!(task["history"].to_string().contains("cancelled: not needed any more"), "{task:#}");
    let wt = m.repo.join(".kite/worktrees").join(format!("task-{id}"));
    assert_eq!(std::fs::read_to_string(wt.join("first.txt")).unwrap(), "first\n", "the worktree keeps the work");
    assert!(!wt.join("second.txt").exists(), "the next tool call did not run");
    assert!(!m.repo.join("first.txt").exists(), "nothing of a stopped run lands");
    assert_eq!(m.api.main_requests().len(), 2, "no request after the stop");
}

#[test]
fn a_daily_budget_reached_during_a_run_stops_the_agent_and_requeues_its_task() {
    // A request of 20,000 input tokens costs $0.08 on the default model. The hook reads a run's
    // spend from its transcript, which Claude Code writes a moment after each response: the
    // third answer is held until the transcript has the second's usage, so nothing is left to
    // timing.
    let m = Machine::with_config(
        json!({"turns": [
            write("first.txt", "first\n"),
            {"tool_use": {"name": "Write", "input": {"file_path": "second.txt", "content": "second\n"}}, "usage": {"input_tokens": 20000}},
            {"tool_use": {"name": "Write", "input": {"file_path": "third.txt", "content": "third\n"}}, "hold": "third"},
            text("Done."),
        ]}),
        "daily_budget_usd = 0.05",
    );
    let id = m.task("Write three files");
    let run = m.spawn_bg(id);
    // The hook after the second call may already see the spend and stop the run before the
    // third request; otherwise the third answer waits until the transcript has it.
    let held = m.dir.path().canonicalize().unwrap().join("third.waiting");
    while !run.is_finished() && !held.exists() {
        std::thread::sleep(Duration::from_millis(20));
    }
    if held.exists() {
        m.wait_for_transcript("\"input_tokens\":20000");
        std::fs::write(held.with_extension(""), "").unwrap();
    }
    let (ok, report) = run.join().unwrap();
    assert!(!ok);
    assert_eq!(report["outcome"], "stopped", "{report:#}");
    let task = m.json(&["task", "show", &id.to_string()]);
    assert_eq!(task["status"], "pending", "{task:#}");
    assert_eq!(task["attempts"], 0, "the attempt is not counted: {task:#}");
    assert!(task["reason"].as_str().unwrap().contains("daily budget"), "{task:#}");
    let wt = m.repo.join(".kite/worktrees").join(format!("task-{id}"));
    assert!(wt.join("second.txt").exists(), "the work so far stays in the worktree");
    assert!(!wt.join("third.txt").exists(), "stopped before its next tool ran");
    assert!(!m.repo.join("first.txt").exists(), "nothing of a stopped run lands");
}

#[test]
fn a_persons_session_is_told_through_the_same_hook_and_not_stopped_by_the_budget() {
    let m = Machine::with_config(
        json!({
            "scripts": {
                "AGENT-TASK": {"turns": [text("Nothing to do.")]},
                "OPTED-IN": {"turns": [write("more.txt", "m\n"), write("again.txt", "a\n"), text("Done.")]},
            },
            "turns": [
                write("notes.txt", "n\n"),
                {"tool_use": {"name": "Bash", "input": {"command": "echo hi", "description": "hi"}}, "hold": "second"},
                text("Done."),
            ],
        }),
        "daily_budget_usd = 0.001",
    );
    m.trust(&m.repo);
    // An agent spends today's budget (its run costs about a cent).
    let agent = m.task("AGENT-TASK look around");
    let _ = m.spawn(agent);
    let status = m.json(&["status"]);
    assert!(status["budget"]["spent"] == true, "{status:#}");
    let repo = m.repo.clone();
    let (out, result) = std::thread::scope(|scope| {
        let h = scope.spawn(|| m.claude(&repo, &[], "take notes"));
        m.while_held("second", || {
            assert!(m.kite(&["broadcast", "deploy freeze until noon"]).status.success());
        });
        h.join().unwrap()
    });
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(result["terminal_reason"], "completed", "a person's session is not stopped: {result:#}");
    let main: Vec<Value> = m.api.main_requests().into_iter().filter(|r| !sent(r).contains("AGENT-TASK")).collect();
    assert_eq!(main.len(), 3, "the person's three requests");
    assert!(sent(&main[2]).contains("deploy freeze until noon"), "told through the tool hook: {}", sent(&main[2]));
    // With `[hooks] stop_people`, a person's session is stopped too, before its tool runs.
    let toml = m.repo.join(".kite/kite.toml");
    let t = std::fs::read_to_string(&toml).unwrap().replacen("\n[hooks]\n", "\n[hooks]\nstop_people = true\n", 1);
    std::fs::write(&toml, t).unwrap();
    let (out, result) = m.claude(&m.repo, &[], "OPTED-IN take more notes");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(result["terminal_reason"], "hook_stopped", "{result:#}");
    assert!(!m.repo.join("more.txt").exists(), "stopped before its first tool ran");
}
