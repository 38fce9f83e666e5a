//! The strategy loop and the runner through the real binary: `kite sched templates`, `kite sched
//! tick`, `kite spawn` with fake agents in a real git repository, and the daemon running both on
//! its own.

use crate::support::KITE;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A real git repository (one commit) with its kite home at `.kite/`, and maybe a daemon on it.
struct Project {
    root: PathBuf,
    home: PathBuf,
    /// Outside the repository: fake agents and their notes.
    aux: PathBuf,
    daemon: Option<Child>,
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=kite-test", "-c", "user.email=kite@test", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Project {
    fn new() -> Project {
        let dir = tempfile::Builder::new().prefix("kite-sched-e2e").tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let root = base.join("repo");
        let aux = base.join("aux");
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir_all(&aux).unwrap();
        git(&root, &["init", "-q"]);
        std::fs::write(root.join(".gitignore"), ".kite/\n").unwrap();
        std::fs::write(root.join("src/lib.rs"), "pub fn answer() -> u32 { 42 }\n").unwrap();
        git(&root, &["add", "."]);
        git(&root, &["commit", "-q", "-m", "initial"]);
        let home = root.join(".kite");
        std::fs::create_dir_all(&home).unwrap();
        Project { root, home, aux, daemon: None, env: vec![], _dir: dir }
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn config(&self, toml: &str) {
        std::fs::write(self.home.join("kite.toml"), toml).unwrap();
    }

    /// A fake agent: `sh <aux>/<name>.sh`.
    fn agent(&self, name: &str, script: &str) -> String {
        let p = self.aux.join(format!("{name}.sh"));
        std::fs::write(&p, script).unwrap();
        format!("sh {}", p.display())
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(KITE);
        c.args(args)
            .current_dir(&self.root)
            .env_remove("KITE_HOME")
            .env_remove("KITE_ROOT")
            .env_remove("KITE_VAULT")
            .env_remove("KITE_AGENT_COMMAND")
            .env("KITE_LOG", "warn");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    fn start(&mut self, args: &[&str]) {
        let child = self.cmd(&[&["daemon"], args].concat()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        self.daemon = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        let pid = self.daemon.as_ref().unwrap().id();
        // Ready when it answers hello itself (a connection alone may reach a dying listener).
        let answers = |sock: &std::path::Path| {
            matches!(kite_proto::client::blocking::request::<kite_proto::op::Hello>(sock, kite_proto::NoArgs {}, Duration::from_secs(5)), Ok(h) if h.pid == pid)
        };
        while !answers(&self.home.join("kite.sock")) {
            if let Some(st) = self.daemon.as_mut().unwrap().try_wait().unwrap() {
                panic!("daemon exited early: {st}");
            }
            assert!(Instant::now() < deadline, "daemon did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGTERM and wait for a clean exit.
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.daemon.take().unwrap();
        Command::new("kill").arg("-TERM").arg(c.id().to_string()).status().unwrap();
        c.wait().unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> Value {
        let out = self.run(&[args, &["--json"]].concat());
        assert!(out.status.success(), "kite {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("kite {args:?}: bad JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
    }

    fn text(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "kite {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn tasks(&self) -> Vec<Value> {
        self.ok(&["task", "list", "--all"])["tasks"].as_array().unwrap().clone()
    }

    fn task(&self, id: i64) -> Value {
        self.ok(&["task", "show", &id.to_string()])
    }

    /// Polls until `f` holds (deadline 30 s: a hung loop fails, a slow machine does not).
    fn until(&self, what: &str, mut f: impl FnMut(&Project) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !f(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One candidate per item the `chores` provider prints.
const CHORES: &str = r#"+++
description = "One task per chore in chores.json."
workstream = "chores"
priority = 7
title = 'Chore {{ item.name }}'
dedup_key = 'chore:{{ item.name }}'
files = ['src/{{ item.name }}.rs']
for_each = "chores.items"
+++
Do chore {{ item.name }}.
"#;

const CHORES_TOML: &str = r#"
[sched.providers.chores]
command = "cat chores.json"
"#;

fn strs(v: &Value, key: &str) -> Vec<String> {
    v.as_array().unwrap().iter().map(|x| x[key].as_str().unwrap_or_default().to_string()).collect()
}

#[test]
fn templates_lists_the_shipped_templates_with_schedules_and_broken_ones_with_errors() {
    let mut p = Project::new();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
    std::fs::create_dir_all(p.root.join("prompts")).unwrap();
    for e in std::fs::read_dir(&shipped).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), p.root.join("prompts").join(e.file_name())).unwrap();
        }
    }
    p.write("prompts/broken.md.tera", "+++\nschedule = \"every now and then\"\ntitle = \"x\"\n+++\nbody\n");

    // No daemon needed to list them.
    let v = p.ok(&["sched", "templates"]);
    let names = strs(&v["templates"], "name");
    for want in ["fix-failing-tests", "resolve-todo-markers", "strategy-audit"] {
        assert!(names.iter().any(|n| n == want), "missing {want}: {v}");
    }
    assert!(!names.iter().any(|n| n == "extract" || n == "session-start"), "prompts without front matter are not templates");
    let by_name = |name: &str| v["templates"].as_array().unwrap().iter().find(|t| t["name"] == name).unwrap().clone();
    let t = by_name("fix-failing-tests");
    assert_eq!(t["schedule"], "*/15 * * * *");
    assert_eq!(t["workstream"], "tests");
    assert!(t["file"].as_str().unwrap().ends_with("prompts/fix-failing-tests.md.tera"));
    assert!(t["next_run"].as_str().is_some_and(|n| n.contains('T')), "cron templates say when they run next: {t}");
    assert_eq!(t["track_record"], Value::Null, "no daemon, no track record");
    assert_eq!(by_name("strategy-audit")["agent"], "claude", "the audit names its agent");
    assert!(by_name("resolve-todo-markers")["command"].is_null());
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{v}");
    assert!(errors[0]["file"].as_str().unwrap().ends_with("broken.md.tera"));
    assert!(errors[0]["message"].as_str().unwrap().contains("every now and then"), "{v}");

    let text = p.text(&["sched", "templates"]);
    for want in ["NAME", "fix-failing-tests", "*/15 * * * *", "resolve-todo-markers", "strategy-audit", "broken templates:", "broken.md.tera"] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }

    // With a daemon, each template's record (none yet) comes along.
    p.start(&[]);
    let v = p.ok(&["sched", "templates"]);
    for t in v["templates"].as_array().unwrap() {
        let none = serde_json::json!({
            "done": 0, "failed": 0, "pruned": 0, "rejected": 0, "conflicted": 0,
            "measured": 0, "survived": 0.0, "median_survival_7d": null, "reverted": 0
        });
        assert_eq!(t["track_record"], none, "{t}");
    }
}

#[test]
fn tick_queues_candidates_once_and_a_dry_run_queues_nothing() {
    let mut p = Project::new();
    p.write("prompts/chores.md.tera", CHORES);
    p.write("chores.json", r#"{"items": [{"name": "alpha"}, {"name": "beta"}]}"#);
    p.config(CHORES_TOML);
    // The daemon is needed: the round reads the queue.
    let out = p.run(&["sched", "tick"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kite daemon"));
    p.start(&["--tick", "0"]); // no loop of its own: these rounds are ours

    let dry = p.ok(&["sched", "tick", "--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(strs(&dry["queued"], "title"), ["Chore alpha", "Chore beta"], "{dry}");
    assert!(dry["queued"].as_array().unwrap().iter().all(|q| q["id"].is_null()));
    let c = &dry["candidates"][0];
    assert_eq!(c["outcome"], "queued");
    assert_eq!(c["priority"], 7);
    assert_eq!(c["score"]["priority"], 7.0);
    assert!(c["score"]["total"].is_number() && c["score"]["track_record"].is_number(), "{c}");
    assert!(p.tasks().is_empty(), "a dry run creates nothing");
    let text = p.text(&["sched", "tick", "--dry-run"]);
    for want in ["dry run", "chores: 2 candidates", "\"Chore alpha\"", "scored: 7.0 from its priority", "why: chores", "would queue:"] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(p.tasks().is_empty());

    let first = p.ok(&["sched", "tick"]);
    assert_eq!(first["errors"], serde_json::json!([]), "{first}");
    let ids: Vec<i64> = first["queued"].as_array().unwrap().iter().map(|q| q["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 2);
    let tasks = p.tasks();
    assert_eq!(tasks.len(), 2);
    for t in &tasks {
        assert_eq!(t["status"], "pending");
        assert_eq!(t["template"], "chores");
        assert_eq!(t["workstream"], "chores");
        assert_eq!(t["priority"], 7);
    }
    assert_eq!(tasks[0]["dedup_key"], "chore:alpha");
    assert_eq!(tasks[0]["files"], serde_json::json!(["src/alpha.rs"]));
    assert_eq!(tasks[0]["body"].as_str().unwrap().trim(), "Do chore alpha.");

    // Same candidates again: unchanged, not duplicated.
    let second = p.ok(&["sched", "tick"]);
    assert_eq!(second["queued"], serde_json::json!([]), "{second}");
    assert_eq!(second["unchanged"].as_array().unwrap().len(), 2);
    assert_eq!(p.tasks().len(), 2);
    let text = p.text(&["sched", "tick"]);
    assert!(text.contains("unchanged:") && text.contains("already open as #"), "{text}");
    assert_eq!(p.tasks().len(), 2);
}

#[test]
fn prunes_record_their_kind_reason_and_score_parts() {
    let mut p = Project::new();
    let template = |body: &str, max_open: &str| {
        format!("+++\nname = \"notes\"\npriority = 3\ntitle = 'Write the notes'\ndedup_key = 'notes'\n{max_open}+++\n{body}\n")
    };
    p.write("prompts/notes.md.tera", &template("Version one.", ""));
    p.write("prompts/chores.md.tera", CHORES);
    p.write("chores.json", r#"{"items": [{"name": "alpha"}, {"name": "beta"}]}"#);
    p.config(CHORES_TOML);
    p.start(&["--tick", "0"]);
    let first = p.ok(&["sched", "tick"]);
    assert_eq!(first["queued"].as_array().unwrap().len(), 3, "{first}");
    let old = p.tasks().iter().find(|t| t["template"] == "notes").unwrap()["id"].as_i64().unwrap();

    // New content under the same dedup key supersedes the pending task.
    p.write("prompts/notes.md.tera", &template("Version two.", ""));
    let second = p.ok(&["sched", "tick"]);
    let new = second["queued"][0]["id"].as_i64().unwrap();
    assert_eq!(second["queued"].as_array().unwrap().len(), 1, "{second}");
    let sup = &second["superseded"][0];
    assert_eq!(sup["target"], serde_json::json!({"type": "task", "id": old}));
    assert_eq!(sup["superseded_by"], serde_json::json!({"type": "task", "id": new}));

    let shown = p.task(old);
    assert_eq!(shown["status"], "pruned");
    let reason = shown["reason"].as_str().unwrap();
    assert!(!reason.is_empty());
    let d = &shown["prune_details"];
    assert_eq!(d["kind"], "superseded", "{shown}");
    assert_eq!(d["reason"], reason);
    assert_eq!(d["superseded_by"], new);
    for part in ["priority", "age", "unblocks", "conflicts", "track_record", "total"] {
        assert!(d["score"][part].is_number(), "missing score part {part}: {d}");
    }
    assert_eq!(d["score"]["priority"], 3.0);
    let text = p.text(&["task", "show", &old.to_string()]);
    assert!(text.contains(reason) && text.contains("superseded") && text.contains("track_record"), "{text}");
    assert_eq!(p.task(new)["body"].as_str().unwrap().trim(), "Version two.");

    // A cap on the chores template cuts the lowest-scoring one.
    p.write("prompts/chores.md.tera", &CHORES.replacen("+++\n", "+++\nmax_open = 1\n", 1));
    let third = p.ok(&["sched", "tick"]);
    let pruned = third["pruned"].as_array().unwrap();
    assert_eq!(pruned.len(), 1, "{third}");
    assert_eq!(pruned[0]["kind"], "over_capacity");
    let id = pruned[0]["target"]["id"].as_i64().unwrap();
    let shown = p.task(id);
    assert_eq!(shown["status"], "pruned");
    assert_eq!(shown["prune_details"]["kind"], "over_capacity");
    assert!(shown["prune_details"]["score"]["total"].is_number());
    let open = p.tasks().into_iter().filter(|t| t["template"] == "chores" && t["status"] == "pending").count();
    assert_eq!(open, 1);
    // From now on the capped template's extra candidate is cut before it is queued; no task is.
    let again = p.ok(&["sched", "tick"]);
    assert_eq!(again["pruned"][0]["target"]["type"], "candidate", "{again}");
    assert_eq!(again["queued"], serde_json::json!([]));
    let text = p.text(&["sched", "tick", "--dry-run"]);
    assert!(text.contains("pruned:") && text.contains("over_capacity: template chores holds"), "{text}");
}

#[test]
fn spawn_runs_the_agent_in_the_tasks_worktree_and_marks_it_done_with_its_output() {
    let mut p = Project::new();
    p.start(&[]);
    let agent = p.agent(
        "ok",
        r#"read first
echo "noise that the tail may keep"
echo "task=$KITE_TASK_ID session=$KITE_SESSION_ID home=$KITE_HOME"
echo "branch=$(git rev-parse --abbrev-ref HEAD) dir=$(pwd)"
echo "stdin=$first"
printf '%s' "$KITE_TASK_PROMPT" | grep -q 'Make it better' && echo prompt-ok
echo work > work.txt && git add work.txt && git -c user.name=a -c user.email=a@a commit -q -m work && echo committed
"#,
    );
    let id = p.ok(&["task", "create", "--title", "Improve lib", "--body", "Make it better.", "--file", "src/lib.rs"])["id"]
        .as_i64()
        .unwrap();
    p.env.push(("KITE_AGENT_COMMAND".into(), agent));
    let out = p.run(&["spawn", &id.to_string()]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "spawn failed: {} {stdout}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("task {id}: done after 1 attempt")), "{stdout}");
    assert!(stdout.contains(&format!("branch kite/task-{id}")), "{stdout}");

    let t = p.task(id);
    assert_eq!(t["status"], "done");
    assert_eq!(t["attempts"], 1);
    let result = t["result"].as_str().unwrap();
    let home = p.home.display().to_string();
    assert!(result.contains(&format!("task={id} session=s")), "{result}");
    assert!(result.contains(&format!("home={home}")), "{result}");
    assert!(result.contains(&format!("branch=kite/task-{id} dir={home}/worktrees/task-{id}")), "{result}");
    assert!(result.contains("stdin=# Improve lib"), "{result}");
    assert!(result.contains("prompt-ok") && result.trim_end().ends_with("committed"), "{result}");
    // It landed (no test runner here, so not verified): the commit is on main, main's checkout
    // moved with it, and the worktree and branch are gone because nothing in them is unlanded.
    assert!(result.starts_with("landed ") && result.contains("(not verified)"), "{result}");
    assert!(!p.home.join(format!("worktrees/task-{id}")).exists());
    assert_eq!(git(&p.root, &["log", "-1", "--format=%s", "main"]).trim(), "work");
    assert!(p.root.join("work.txt").exists());
    assert!(git(&p.root, &["branch", "--list", "kite/*"]).trim().is_empty());
    // Its session was ended.
    let sessions = p.ok(&["session", "list"]);
    assert!(sessions["sessions"].as_array().unwrap().iter().all(|s| s["state"] == "ended"), "{sessions}");

    // A task that is not pending is refused.
    let out = p.run(&["spawn", &id.to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not pending") && err.trim().lines().count() == 1, "{err}");
    let out = p.run(&["spawn", "999"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("999"));
}

#[test]
fn spawn_retries_a_transient_failure_and_fails_a_permanent_one() {
    let mut p = Project::new();
    // The retry waits a little; the config takes human durations.
    // Retries are the runner's own rule: with landing off, exit 0 is done.
    p.config("[runner]\nbackoff_base = \"100ms\"\nbackoff_max = \"200ms\"\nmax_attempts = 3\n\n[merge]\nland = false\n");
    p.start(&[]);
    let count = r#"f="$KITE_HOME/count-$KITE_TASK_ID"; n=$(( $(cat "$f" 2>/dev/null || echo 0) + 1 )); echo $n > "$f"
"#;
    let flaky = p.agent("flaky", &format!("{count}if [ $n -eq 1 ]; then echo 'busy, later' >&2; exit 75; fi\necho \"made it on attempt $n\"\n"));
    let id = p.ok(&["task", "create", "--title", "Flaky"])["id"].as_i64().unwrap();
    p.env.push(("KITE_AGENT_COMMAND".into(), flaky));
    let r = p.ok(&["spawn", &id.to_string()]);
    assert_eq!(r["outcome"], "done", "{r}");
    assert_eq!(r["result"], "made it on attempt 2");
    let attempts = r["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{r}");
    assert_eq!(attempts[0]["transient"], true);
    assert!(attempts[0]["exit"].as_str().unwrap().contains("exit code 75"), "{r}");
    assert!(attempts[0]["backoff_ms"].as_u64().is_some());
    assert_ne!(attempts[0]["session_id"], attempts[1]["session_id"], "each attempt is a new session");
    assert_eq!(r["worktree"]["branch"], format!("kite/task-{id}"));
    let t = p.task(id);
    assert_eq!(t["status"], "done");
    assert_eq!(t["attempts"], 2);
    let history: Vec<String> = t["history"].as_array().unwrap().iter().map(|h| h["to"].as_str().unwrap().to_string()).collect();
    assert_eq!(history, ["pending", "active", "pending", "active", "done"], "{t}");

    // A permanent failure: exit 1 from kite spawn, the task failed with the agent's exit and stderr.
    p.env.clear();
    p.env.push(("KITE_AGENT_COMMAND".into(), p.agent("broken", "echo 'cannot do this' >&2\nexit 3\n")));
    let id = p.ok(&["task", "create", "--title", "Doomed"])["id"].as_i64().unwrap();
    let out = p.run(&["spawn", &id.to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("failed") && err.contains("exit code 3") && err.trim().lines().count() == 1, "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("after 1 attempt"));
    let t = p.task(id);
    assert_eq!(t["status"], "failed");
    assert_eq!(t["attempts"], 1);
    let reason = t["reason"].as_str().unwrap();
    assert!(reason.contains("exit code 3") && reason.contains("cannot do this"), "{reason}");

    // Transient every time: retried up to max_attempts, then failed.
    p.env.clear();
    p.env.push(("KITE_AGENT_COMMAND".into(), p.agent("always-busy", "exit 75\n")));
    let id = p.ok(&["task", "create", "--title", "Never free"])["id"].as_i64().unwrap();
    let out = p.run(&["spawn", &id.to_string(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["outcome"], "failed");
    assert_eq!(r["attempts"].as_array().unwrap().len(), 3);
    assert!(r["error"].as_str().unwrap().contains("attempt 3 of 3"), "{r}");
    assert_eq!(p.task(id)["status"], "failed");
    assert_eq!(p.ok(&["status"])["counters"]["failed"], 2);
}

#[test]
fn the_daemon_runs_the_strategy_loop_and_the_runner_and_stops_them_cleanly() {
    let mut p = Project::new();
    p.write("prompts/chores.md.tera", CHORES);
    p.write("chores.json", r#"{"items": [{"name": "alpha"}]}"#);
    // The loop and the runner's life cycle; landing is pinned by its own tests.
    p.config(&format!("{CHORES_TOML}\n[runner]\npoll = \"50ms\"\n\n[merge]\nland = false\n"));
    let agent = p.agent("daemon-agent", "case \"$KITE_TASK_PROMPT\" in *Hangs*) sleep 60 ;; esac\necho \"did $KITE_TASK_ID\"\n");
    p.env.push(("KITE_AGENT_COMMAND".into(), agent));
    p.start(&["--tick", "0.2", "--max-agents", "1"]);

    // The loop queues the chore on its own, and the runner does it.
    p.until("the loop to queue and the runner to finish a chore", |p| {
        p.tasks().iter().any(|t| t["template"] == "chores" && t["status"] == "done")
    });
    let done = p.tasks().into_iter().find(|t| t["template"] == "chores" && t["status"] == "done").unwrap();
    assert_eq!(done["result"], format!("did {}", done["id"]));
    let listed = p.ok(&["sched", "templates"]);
    let chores = listed["templates"].as_array().unwrap().iter().find(|t| t["name"] == "chores").unwrap();
    assert!(chores["track_record"]["done"].as_u64().unwrap() >= 1, "{listed}");

    // A hand-filed task is picked up too.
    let id = p.ok(&["task", "create", "--title", "By hand"])["id"].as_i64().unwrap();
    p.until("the runner to finish the hand-filed task", |p| p.task(id)["status"] == "done");

    // Stop the loop from refilling, then give the runner an agent that hangs: a shutdown kills it
    // and its task goes back to pending at once.
    p.write("chores.json", r#"{"items": []}"#);
    let id = p.ok(&["task", "create", "--title", "Hangs"])["id"].as_i64().unwrap();
    p.until("the hanging task to start", |p| p.task(id)["status"] == "active");
    let st = p.stop();
    assert!(st.success(), "daemon exit: {st}");
    p.start(&[]);
    let t = p.task(id);
    assert_eq!(t["status"], "pending", "{t}");
    assert!(p.ok(&["session", "list"])["sessions"].as_array().unwrap().iter().all(|s| s["state"] == "ended"));
}

/// With no configuration, a cargo project's failing test becomes a task: the daemon's round runs
/// `cargo test` in a scratch worktree under the home with the uncommitted change, and the
/// person's checkout gets no `target/` and keeps its change unstaged. A passing run resolves it.
#[test]
fn a_failing_test_becomes_a_task_with_no_configuration_and_passing_resolves_it() {
    let mut p = Project::new();
    p.write("Cargo.toml", "[package]\nname = \"answer\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[workspace]\n");
    p.write(".gitignore", ".kite/\ntarget/\n");
    let lib = "pub fn answer() -> u32 { 42 }\n#[test]\nfn answers() { assert_eq!(answer(), 42, \"the answer\"); }\n";
    p.write("src/lib.rs", lib);
    git(&p.root, &["add", "."]);
    git(&p.root, &["commit", "-q", "-m", "a test"]);
    p.write("src/lib.rs", &lib.replace("{ 42 }", "{ 41 }"));
    p.start(&["--tick", "0"]);

    let r = p.ok(&["sched", "tick"]);
    let queued: Vec<&Value> = r["queued"].as_array().unwrap().iter().filter(|q| q["template"] == "fix-failing-tests").collect();
    assert_eq!(queued.len(), 1, "{r}");
    assert_eq!(queued[0]["title"], "Fix failing test answer::answers");
    let task = p.task(queued[0]["id"].as_i64().unwrap());
    let body = task["body"].as_str().unwrap();
    assert!(body.contains("(at src/lib.rs:3)") && body.contains("the answer") && body.contains("left: 41"), "{body}");
    assert!(!p.root.join("target").exists(), "the tests ran elsewhere");
    assert!(p.home.join("scratch").is_dir());
    assert_eq!(git(&p.root, &["status", "--porcelain", "--", "src"]), " M src/lib.rs\n");

    // Same tree: the round reuses the run (nothing new), and the task stays.
    let again = p.ok(&["sched", "tick", "--dry-run"]);
    let c = again["candidates"].as_array().unwrap().iter().find(|c| c["template"] == "fix-failing-tests").unwrap();
    assert_eq!(c["outcome"], "unchanged", "{c}");

    // Fixed: the next round runs again and resolves the task.
    p.write("src/lib.rs", lib);
    let r = p.ok(&["sched", "tick"]);
    let resolved = &r["superseded"][0];
    assert_eq!(resolved["title"], "Fix failing test answer::answers", "{r}");
    assert!(resolved["reason"].as_str().unwrap().starts_with("resolved:"), "{resolved}");
    assert_eq!(p.task(queued[0]["id"].as_i64().unwrap())["status"], "pruned");
}

/// Landing through the real binary, with fake agents that edit and commit: two tasks on
/// different files both land; two that edit the same line: one lands, the other goes back with
/// the conflict in its next prompt and lands after its next run; a failing verify is not landed
/// and says why; an agent that commits nothing is not done; the person's uncommitted change in
/// the main checkout is never touched, and kite waits for it before moving main.
#[test]
fn finished_work_lands_verified_and_nothing_of_a_persons_is_touched() {
    let mut p = Project::new();
    p.write("check.sh", "test ! -e broken.txt\n");
    git(&p.root, &["add", "check.sh"]);
    git(&p.root, &["commit", "-q", "-m", "a check"]);
    p.config("[runner]\nbackoff_base = \"50ms\"\nbackoff_max = \"100ms\"\nmax_attempts = 3\n\n[merge]\nverify = \"sh check.sh\"\nwait_poll = \"100ms\"\n");
    p.start(&[]);
    let agent = p.agent(
        "edit",
        r#"set -e
g() { git -c user.name=agent -c user.email=agent@test "$@"; }
prompt=$(cat)
case "$prompt" in
  *"Break it"*) echo "oops $$" > broken.txt ;;
  *"did not land"*) git reset -q --hard main; echo "and $KITE_TASK_ID" >> shared.txt ;;
  *"Edit one"*) echo one > one.txt ;;
  *"Edit two"*) echo two > two.txt ;;
  *"Edit three"*) echo three > three.txt ;;
  *"Edit shared"*) echo "shared by $KITE_TASK_ID" > shared.txt ;;
  *"Do nothing"*) exit 0 ;;
esac
g add -A && g commit -q -m "task $KITE_TASK_ID"
"#,
    );
    p.env.push(("KITE_AGENT_COMMAND".into(), agent));
    let create = |title: &str| p.ok(&["task", "create", "--title", title])["id"].as_i64().unwrap();
    let spawn = |id: i64| p.cmd(&["spawn", &id.to_string(), "--json"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let report = |c: Child| -> Value {
        let out = c.wait_with_output().unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)))
    };

    // Two on different files, at once: both land.
    let (a, b) = (create("Edit one"), create("Edit two"));
    let (ra, rb) = (spawn(a), spawn(b));
    for r in [report(ra), report(rb)] {
        assert_eq!(r["outcome"], "done", "{r}");
        assert_eq!(r["landing"]["outcome"], "landed", "{r}");
        assert_eq!(r["landing"]["verified"], true, "{r}");
        assert_eq!(r["worktree_kept"], false, "{r}");
    }
    let log = git(&p.root, &["log", "--format=%s", "main"]);
    assert!(log.contains(&format!("task {a}")) && log.contains(&format!("task {b}")), "{log}");
    assert!(p.root.join("one.txt").exists() && p.root.join("two.txt").exists(), "main's checkout moved with it");
    let shown = p.task(a);
    assert_eq!(shown["status"], "done");
    assert_eq!(shown["landing"]["state"], "landed");
    assert!(shown["result"].as_str().unwrap().starts_with("landed "), "{shown}");

    // Two on the same line, at once: one lands, the other comes back with the conflict.
    let (c, d) = (create("Edit shared"), create("Edit shared too"));
    let (rc, rd) = (spawn(c), spawn(d));
    let (rc, rd) = (report(rc), report(rd));
    for r in [&rc, &rd] {
        assert_eq!(r["outcome"], "done", "{r}");
    }
    let attempts = |r: &Value| r["attempts"].as_array().unwrap().len();
    let (first, second) = if attempts(&rc) == 1 { (c, &rd) } else { (d, &rc) };
    assert_eq!(attempts(second), 2, "{second}");
    let exit = second["attempts"][0]["exit"].as_str().unwrap();
    assert!(exit.contains("conflicts with main") && exit.contains("in shared.txt"), "{second}");
    let other = second["task_id"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(p.root.join("shared.txt")).unwrap(), format!("shared by {first}\nand {other}\n"));

    // A verify that fails: not landed, and why.
    let e = create("Break it");
    let r = report(spawn(e));
    assert_eq!(r["outcome"], "failed", "{r}");
    let why = r["error"].as_str().unwrap();
    assert!(why.contains("not landed after 3 attempts") && why.contains("`sh check.sh` failed"), "{why}");
    assert!(!p.root.join("broken.txt").exists());
    let wts = p.ok(&["worktrees"]);
    let kept = wts["worktrees"].as_array().unwrap().iter().find(|w| w["task"] == e).expect("its branch is listed");
    assert_eq!(kept["unmerged"].as_array().unwrap().len(), 3, "each attempt committed: {kept}");
    let merge = p.ok(&["merge", "list"]);
    assert_eq!(merge["total"]["rejected"], 3, "{merge}");
    assert_eq!(merge["total"]["conflicted"], 1, "{merge}");

    // Nothing committed: not done.
    let f = create("Do nothing");
    let r = report(spawn(f));
    assert_eq!(r["outcome"], "failed");
    assert_eq!(r["error"], "the agent exited 0 but committed nothing");

    // Discarding the rejected work removes its branch (and only on request).
    let out = p.ok(&["merge", "discard", &e.to_string()]);
    assert!(out["removed"].to_string().contains(&format!("kite/task-{e}")), "{out}");
    let left = git(&p.root, &["branch", "--list", "kite/*"]);
    assert!(left.trim().is_empty(), "{left}");

    // A person's uncommitted change in main's checkout: kite waits, never touches it.
    p.write("src/lib.rs", "my own edit\n");
    let g = create("Edit three");
    let child = spawn(g);
    p.until("the landing to wait on the person", |p| {
        p.ok(&["merge", "list"])["entries"].as_array().unwrap().iter().any(|x| x["task_id"] == g && x["state"] == "waiting")
    });
    let status = p.text(&["status"]);
    assert!(status.contains("waiting: main is checked out in") && status.contains("src/lib.rs"), "{status}");
    assert_eq!(std::fs::read_to_string(p.root.join("src/lib.rs")).unwrap(), "my own edit\n");
    git(&p.root, &["-c", "user.name=me", "-c", "user.email=me@x", "commit", "-qam", "mine"]);
    let r = report(child);
    assert_eq!(r["outcome"], "done", "{r}");
    assert_eq!(std::fs::read_to_string(p.root.join("src/lib.rs")).unwrap(), "my own edit\n");
    assert_eq!(git(&p.root, &["log", "-2", "--format=%s", "main"]), format!("task {g}\nmine\n"));
}

/// kill -9 of the daemon while its runner is landing (the verify is running), then a restart: main
/// is before or after the change, never between, and the entry lands once.
#[test]
fn a_landing_cut_by_kill_9_lands_once_after_a_restart() {
    let mut p = Project::new();
    p.config("[runner]\nmax_agents = 1\npoll = \"50ms\"\n\n[merge]\nverify = \"sleep 2\"\n");
    let agent = p.agent("edit", "echo landed > landed.txt && git add -A && git -c user.name=a -c user.email=a@a commit -qm \"task $KITE_TASK_ID\"\n");
    p.env.push(("KITE_AGENT_COMMAND".into(), agent));
    p.start(&["--tick", "0"]);
    let before = git(&p.root, &["rev-parse", "main"]);
    let id = p.ok(&["task", "create", "--title", "Land me"])["id"].as_i64().unwrap();
    p.until("the landing to verify", |p| {
        p.ok(&["merge", "list"])["entries"].as_array().unwrap().iter().any(|x| x["task_id"] == id && x["state"] == "verifying")
    });
    let mut d = p.daemon.take().unwrap();
    Command::new("kill").arg("-9").arg(d.id().to_string()).status().unwrap();
    d.wait().unwrap();
    assert_eq!(git(&p.root, &["rev-parse", "main"]), before, "cut before the move: main is as it was");
    // The runner's verify was its child: kill it too, as the machine's restart would.
    let _ = Command::new("pkill").args(["-9", "-f", "sleep 2"]).status();

    p.start(&["--tick", "0"]);
    p.until("the task to be done", |p| p.task(id)["status"] == "done");
    let log = git(&p.root, &["log", "--format=%s", "main"]);
    assert_eq!(log.matches(&format!("task {id}")).count(), 1, "landed once: {log}");
    assert_eq!(p.task(id)["landing"]["state"], "landed");
    assert!(p.root.join("landed.txt").exists());
}

/// Issue 24: five tasks land (forty days ago, by their commit dates); then a person reverts one on
/// day 2 and rewrites half of another on day 3. `kite report --json` gives the survival, churn and
/// revert figures that counting blame by hand gives, and `kite task show` the task's own.
#[test]
fn the_report_gives_what_blame_counts_by_hand() {
    let mut p = Project::new();
    let day = 86_400_i64;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let landed_at = now - 40 * day;
    let at = |t: i64| format!("@{t} +0000");
    p.env.push(("GIT_COMMITTER_DATE".into(), at(landed_at)));
    p.env.push(("GIT_AUTHOR_DATE".into(), at(landed_at)));
    p.config("[runner]\nmax_attempts = 1\n");
    p.start(&[]);
    let agent = p.agent(
        "ten",
        r#"set -e
for i in 1 2 3 4 5 6 7 8 9 10; do echo "task $KITE_TASK_ID line $i"; done > "f$KITE_TASK_ID.txt"
git -c user.name=agent -c user.email=agent@test add -A
git -c user.name=agent -c user.email=agent@test commit -q -m "task $KITE_TASK_ID"
"#,
    );
    p.env.push(("KITE_AGENT_COMMAND".into(), agent));
    let ids: Vec<i64> = (1..=5).map(|i| p.ok(&["task", "create", "--title", &format!("Write f{i}")])["id"].as_i64().unwrap()).collect();
    for id in &ids {
        let out = p.cmd(&["spawn", &id.to_string(), "--json"]).output().unwrap();
        let r: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(r["landing"]["outcome"], "landed", "{r}");
    }
    // A person, later: task 3 reverted on day 2, half of task 2's lines rewritten on day 3.
    let person = |args: &[&str], when: i64| {
        let o = Command::new("git")
            .args(["-c", "user.name=me", "-c", "user.email=me@x"])
            .args(args)
            .current_dir(&p.root)
            .env("GIT_COMMITTER_DATE", at(when))
            .env("GIT_AUTHOR_DATE", at(when))
            .output()
            .unwrap();
        assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let third = person(&["log", "-1", "--format=%H", "--grep", &format!("^Kite-Task: {}$", ids[2]), "main"], now);
    person(&["revert", "--no-edit", &third], landed_at + 2 * day);
    let f2 = format!("f{}.txt", ids[1]);
    let text: String = (1..=10).map(|i| if i <= 5 { format!("mine {i}\n") } else { format!("task {} line {i}\n", ids[1]) }).collect();
    p.write(&f2, &text);
    person(&["commit", "-qam", "half of it, my way"], landed_at + 3 * day);

    let r = p.ok(&["report"]);
    let t = &r["totals"];
    assert_eq!((t["tasks"].as_u64(), t["completed"].as_u64(), t["landed"].as_u64(), t["landed_first_try"].as_u64()), (Some(5), Some(5), Some(5), Some(5)), "{t}");
    assert_eq!((t["reverted"].as_u64(), t["revert_rate"].as_f64()), (Some(1), Some(0.2)), "{t}");
    assert_eq!(t["median_survival_7d"].as_f64(), Some(1.0), "1, 0.5, 0, 1, 1: {t}");
    assert_eq!(t["median_churn_14d"].as_f64(), Some(0.0), "0, 0.5, 1, 0, 0: {t}");
    assert_eq!(t["surviving_lines"].as_u64(), Some(35), "10 + 5 + 0 + 10 + 10: {t}");
    let by = |id: i64| r["tasks"].as_array().unwrap().iter().find(|s| s["id"] == id).unwrap()["signals"].clone();
    for (id, added, surviving, s1, s7, s30, churn) in [
        (ids[0], 10, 10, 1.0, 1.0, 1.0, 0.0),
        (ids[1], 10, 5, 1.0, 0.5, 0.5, 0.5),
        (ids[2], 10, 0, 1.0, 0.0, 0.0, 1.0),
    ] {
        let s = by(id);
        let got = (s["added"].as_u64(), s["surviving"].as_u64(), s["survival_1d"].as_f64(), s["survival_7d"].as_f64(), s["survival_30d"].as_f64(), s["churn_14d"].as_f64());
        assert_eq!(got, (Some(added), Some(surviving), Some(s1), Some(s7), Some(s30), Some(churn)), "task {id}: {s}");
    }
    assert!(by(ids[2])["reverted_by"].is_string() && by(ids[0])["reverted_by"].is_null());
    assert_eq!(r["worst"][0]["task"], ids[2], "the reverted task is the worst: {}", r["worst"]);
    let record = r["tasks"].as_array().unwrap().iter().find(|x| x["id"] == ids[0]).unwrap().clone();
    assert_eq!((record["landings"].clone(), record["attempts"].as_u64()), (serde_json::json!(["landed"]), Some(1)), "{record}");
    let shown = p.task(ids[1]);
    assert_eq!(shown["signals"]["survival_7d"].as_f64(), Some(0.5), "{shown}");
    let text = p.text(&["task", "show", &ids[1].to_string()]);
    assert!(text.contains("landed work: 50% of its 10 line(s) survive; 50% changed within 14 days"), "{text}");
    let text = p.text(&["report"]);
    assert!(text.contains("tasks 5: 5 completed, 0 pruned, 0 failed") && text.contains("reverted: 1 (20%)"), "{text}");
    // The window and the template narrow what is counted; a bad window says what it wants.
    assert_eq!(p.ok(&["report", "--since", "1h"])["totals"]["tasks"], 5);
    assert_eq!(p.ok(&["report", "--template", "(by hand)"])["totals"]["landed"], 5);
    assert_eq!(p.ok(&["report", "--template", "chores"])["totals"]["tasks"], 0);
    let bad = p.run(&["report", "--since", "lately"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("--since") && err.contains("lately"), "{err}");
}

/// Issue 24: a template whose landed work is reverted is throttled, and the tick says why.
#[test]
fn a_template_whose_landed_work_is_reverted_is_throttled_and_says_why() {
    let mut p = Project::new();
    p.write("prompts/chores.md.tera", CHORES);
    p.write("chores.json", r#"{"items": [{"name": "alpha"}, {"name": "beta"}, {"name": "gamma"}]}"#);
    p.config(&format!("{CHORES_TOML}\n[runner]\nmax_attempts = 1\n"));
    p.start(&["--tick", "0"]);
    let agent = p.agent(
        "chore",
        r#"set -e
for i in 1 2 3 4; do echo "chore $KITE_TASK_ID line $i"; done > "chore-$KITE_TASK_ID.txt"
git -c user.name=agent -c user.email=agent@test add -A
git -c user.name=agent -c user.email=agent@test commit -q -m "chore $KITE_TASK_ID"
"#,
    );
    p.env.push(("KITE_AGENT_COMMAND".into(), agent));
    let first = p.ok(&["sched", "tick"]);
    let ids: Vec<i64> = first["queued"].as_array().unwrap().iter().map(|q| q["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 3, "{first}");
    for id in &ids {
        let out = p.cmd(&["spawn", &id.to_string(), "--json"]).output().unwrap();
        let r: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(r["landing"]["outcome"], "landed", "{r}");
    }
    let quiet = p.ok(&["sched", "tick", "--dry-run"]);
    assert!(quiet["templates"].as_array().unwrap().iter().all(|r| r["throttled"].is_null()), "landed work that stays: {quiet}");
    // A person reverts two of the three.
    for id in &ids[..2] {
        let sha = git(&p.root, &["log", "-1", "--format=%H", "--grep", &format!("^Kite-Task: {id}$"), "main"]);
        git(&p.root, &["revert", "--no-edit", sha.trim()]);
    }
    p.write("chores.json", r#"{"items": [{"name": "alpha"}, {"name": "beta"}, {"name": "gamma"}, {"name": "delta"}]}"#);
    let tick = p.ok(&["sched", "tick", "--dry-run"]);
    let run = tick["templates"].as_array().unwrap().iter().find(|r| r["name"] == "chores").unwrap().clone();
    let why = run["throttled"].as_str().unwrap_or_else(|| panic!("throttled: {tick}"));
    assert!(why.contains("2 of its landed tasks were reverted"), "{why}");
    // Each reverted task proposes its own follow-up (the built-in quality-followups template),
    // with the reason; the one left alone does not.
    let followups: Vec<Value> = tick["candidates"].as_array().unwrap().iter().filter(|c| c["template"] == "quality-followups").cloned().collect();
    let titles: Vec<&str> = followups.iter().map(|c| c["title"].as_str().unwrap()).collect();
    assert_eq!(titles, [format!("Follow up on #{}: Chore alpha", ids[0]), format!("Follow up on #{}: Chore beta", ids[1])], "{tick}");
    assert!(followups[0]["body"].as_str().unwrap().contains("a later commit ("), "{}", followups[0]);
    assert!(quiet["candidates"].as_array().unwrap().iter().all(|c| c["template"] != "quality-followups"), "nothing to follow up before: {quiet}");
    let templates = p.ok(&["sched", "templates"]);
    let chores = templates["templates"].as_array().unwrap().iter().find(|t| t["name"] == "chores").unwrap().clone();
    assert_eq!(chores["track_record"]["reverted"], 2, "{chores}");
    assert!(chores["throttled"].as_str().unwrap().contains("reverted"), "{chores}");
}
