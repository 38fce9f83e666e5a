//! Claude Code hooks with real-shaped payloads: SessionStart prints the context JSON of the hook
//! contract; SessionEnd queues the transcript and the daemon's memory worker extracts it.

use crate::support::{with_model, Daemon, KITE};
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn hook(d: &Daemon, which: &str, input: &str, env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(KITE);
    with_model(&mut c).args(["hook", which]).current_dir(&d.root).env_remove("KITE_HOME").env_remove("KITE_TASK_ID");
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn start_payload(d: &Daemon, sid: &str) -> String {
    json!({"session_id": sid, "transcript_path": d.root.join("t.jsonl"), "cwd": d.root, "hook_event_name": "SessionStart", "source": "startup"}).to_string()
}

fn add_note(d: &Daemon, title: &str, body: &str) {
    d.ok(&["vault", "add", "--title", title, "--kind", "decision", "--body", body]);
}

/// Checks the printed JSON against the SessionStart hook contract and returns the context.
fn context_of(out: &Output) -> String {
    assert!(out.status.success(), "hooks always exit 0: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(v["hookSpecificOutput"]["hookEventName"], "SessionStart");
    let ctx = v["hookSpecificOutput"]["additionalContext"].as_str().unwrap().to_string();
    assert!(ctx.chars().count() <= 10_000);
    ctx
}

#[test]
fn session_start_injects_relevant_notes_task_locks_and_broadcasts_but_not_tangents() {
    let d = Daemon::start();
    add_note(&d, "Uploads go through the worker queue", "The upload worker retries S3 uploads with exponential backoff; never upload from the request handler.");
    add_note(&d, "Favourite lunch spot", "The team likes the ramen place on 5th street on Fridays.");
    let other = d.session("other");
    d.ok(&["lock", "acquire", "src/upload.rs", "--session", &other]);
    d.ok(&["broadcast", "main is frozen until the release is tagged"]);
    let t = d.task("Make S3 uploads resumable in the upload worker", &["--body", "Large uploads fail halfway; resume them."]);
    let out = hook(&d, "session-start", &start_payload(&d, "abc-123"), &[("KITE_TASK_ID", &t.to_string())]);
    let ctx = context_of(&out);
    assert!(ctx.contains("Uploads go through the worker queue"), "{ctx}");
    assert!(!ctx.contains("ramen"), "a tangential note was injected: {ctx}");
    assert!(ctx.contains("Make S3 uploads resumable"), "{ctx}");
    assert!(ctx.contains("src/upload.rs"), "{ctx}");
    assert!(ctx.contains("main is frozen"), "{ctx}");
    // The hook registered the Claude session.
    let sessions = d.ok(&["session", "list"]);
    assert!(sessions["sessions"].as_array().unwrap().iter().any(|s| s["name"] == "claude-abc-123"));
}

#[test]
fn session_start_stays_within_its_budget() {
    let d = Daemon::start();
    for i in 0..12 {
        add_note(&d, &format!("Upload worker rule {i}"), &format!("Rule {i} for the S3 upload worker: {}", "retry uploads with backoff and log the attempt. ".repeat(15)));
    }
    std::fs::write(d.home.join("kite.toml"), "[hooks]\nbudget_tokens = 300\nmin_similarity = 0.0\n").unwrap();
    let t = d.task("Fix the S3 upload worker retries", &[]);
    let out = hook(&d, "session-start", &start_payload(&d, "b1"), &[("KITE_TASK_ID", &t.to_string())]);
    let ctx = context_of(&out);
    assert!(ctx.chars().count() <= 1200, "over budget: {} chars", ctx.chars().count());
    assert!(ctx.contains("Upload worker rule"), "{ctx}");
    // What the session is recorded as having is what it was shown.
    let file: Value = serde_json::from_slice(&std::fs::read(d.home.join("claude-sessions/b1.json")).unwrap()).unwrap();
    for id in file["injected"].as_array().unwrap() {
        let note = d.ok(&["vault", "show", id.as_str().unwrap()]);
        assert!(ctx.contains(note["title"].as_str().unwrap()), "{id} is recorded but was not shown: {ctx}");
    }
}

#[test]
fn session_start_without_a_daemon_still_answers_and_bad_input_is_harmless() {
    let mut d = Daemon::start();
    add_note(&d, "Use SQLite WAL for the queue", "We keep the task queue in SQLite with WAL for durability.");
    d.stop();
    // Without autostart (the install tests cover starting it): the hook answers on its own.
    std::fs::write(d.home.join("kite.toml"), "[daemon]\nautostart = false\n").unwrap();
    let out = hook(&d, "session-start", &start_payload(&d, "c1"), &[("KITE_TASK_ID", "")]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning"), "says the daemon is missing");
    let out = hook(&d, "session-start", "{ not json", &[]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty(), "nothing harmful on stdout");
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning"));
}

#[test]
fn a_project_can_turn_injection_off() {
    let d = Daemon::start();
    add_note(&d, "Use SQLite WAL for the queue", "We keep the task queue in SQLite with WAL.");
    d.ok(&["broadcast", "hello"]);
    std::fs::write(d.home.join("kite.toml"), "[hooks]\ninject = false\n").unwrap();
    let out = hook(&d, "session-start", &start_payload(&d, "off"), &[]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
    let sessions = d.ok(&["session", "list"]);
    assert!(sessions["sessions"].as_array().unwrap().iter().any(|s| s["name"] == "claude-off"), "still registered");
}

#[test]
fn session_end_queues_the_transcript_and_the_daemon_extracts_it_once_without_secrets() {
    let mut d = Daemon::start();
    let transcript = d.root.join("session.jsonl");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/transcripts/upload-worker-session.jsonl"), &transcript).unwrap();
    let sid = "3f1c2a9e-7b4d-4e61-9a0c-5d2e8b7f1a44";
    assert!(hook(&d, "session-start", &start_payload(&d, sid), &[]).status.success());
    let payload = json!({"session_id": sid, "transcript_path": transcript, "cwd": d.root, "hook_event_name": "SessionEnd", "reason": "exit"}).to_string();
    let started = Instant::now();
    let out = hook(&d, "session-end", &payload, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(started.elapsed() < Duration::from_millis(1500), "SessionEnd hooks get 1.5 s");
    // The memory worker picks the job up in the background.
    let deadline = Instant::now() + Duration::from_secs(30);
    let count = |d: &Daemon| d.ok(&["vault", "stats"])["notes"].as_u64().unwrap_or(0);
    while count(&d) == 0 {
        assert!(Instant::now() < deadline, "no notes were extracted");
        std::thread::sleep(Duration::from_millis(200));
    }
    while d.home.join("memory-queue").read_dir().map(|mut r| r.next().is_some()).unwrap_or(false) {
        assert!(Instant::now() < deadline, "the job was not finished");
        std::thread::sleep(Duration::from_millis(100));
    }
    let notes = count(&d);
    // One extraction path: `kite vault extract` proposes exactly the notes the daemon wrote.
    let files: Vec<String> = std::fs::read_dir(d.root.join("vault")).unwrap().map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect();
    let dry = d.ok(&["vault", "extract", transcript.to_str().unwrap(), "--dry-run"]);
    let proposed = dry["proposed"].as_array().unwrap();
    assert_eq!(proposed.len() as u64, notes, "{dry}");
    for p in proposed {
        let title = p["title"].as_str().unwrap();
        assert!(files.iter().any(|f| f.contains(title)), "the daemon wrote no note titled {title:?}");
    }
    // The session ended: its kite session is gone.
    let sessions = d.ok(&["session", "list"]);
    let s = sessions["sessions"].as_array().unwrap().iter().find(|s| s["name"] == format!("claude-{sid}").as_str()).unwrap().clone();
    assert_eq!(s["state"], "ended");
    // No secret reached a note file or the index.
    for entry in std::fs::read_dir(d.root.join("vault")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for secret in ["AKIAZ3EXAMPLEKEY7Q2W", "sk-ant-api03-Zx9Qv7LmN4pR2sT8uW1yB6cD3eF5gH0jK"] {
            assert!(!text.contains(secret), "secret in a note file");
        }
    }
    let db = std::fs::read(d.home.join("vault-index.db")).unwrap();
    assert!(!db.windows(20).any(|w| w == b"AKIAZ3EXAMPLEKEY7Q2W"), "secret in the index");
    // Restart, queue the same transcript again (PreCompact of a resumed session): nothing new.
    d.restart();
    let payload = json!({"session_id": sid, "transcript_path": transcript, "hook_event_name": "PreCompact", "trigger": "auto"}).to_string();
    assert!(hook(&d, "session-end", &payload, &[]).status.success());
    while d.home.join("memory-queue").read_dir().map(|mut r| r.next().is_some()).unwrap_or(false) {
        assert!(Instant::now() < deadline + Duration::from_secs(30), "the second job was not finished");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(count(&d), notes, "the transcript was extracted twice");
}

/// One Claude Code session is one kite session: its MCP server (a child of the agent) and its
/// SessionStart hook (run by the agent through a shell) register with the same agent-process
/// key, whichever comes first; the hook names it. `/clear` keeps it (the agent goes on).
#[test]
fn a_claude_sessions_hook_and_mcp_server_share_one_kite_session() {
    let d = Daemon::start();
    // This test process plays Claude Code: `kite mcp` is its child...
    let mut mcp = with_model(&mut Command::new(KITE))
        .arg("mcp")
        .current_dir(&d.root)
        .env_remove("KITE_HOME")
        .env_remove("CLAUDE_SESSION_ID")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let live = |d: &Daemon| -> Vec<Value> {
        d.ok(&["session", "list"])["sessions"].as_array().unwrap().iter().filter(|s| s["state"] == "live").cloned().collect()
    };
    while live(&d).is_empty() {
        assert!(Instant::now() < deadline, "the MCP server did not register");
        std::thread::sleep(Duration::from_millis(20));
    }
    // ...and the hook runs through a shell, as Claude Code runs hook commands.
    let run_hook = |payload: String| {
        let mut c = Command::new("sh");
        with_model(&mut c).args(["-c", "\"$0\" hook session-start; true", KITE]).current_dir(&d.root).env_remove("KITE_HOME");
        let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(payload.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    run_hook(start_payload(&d, "one-1"));
    let sessions = live(&d);
    assert_eq!(sessions.len(), 1, "one kite session for one Claude session: {sessions:?}");
    assert_eq!(sessions[0]["name"], "claude-one-1", "the hook names it");
    assert_eq!(sessions[0]["connections"], 1, "the MCP server's connection is bound to it");

    // /clear: SessionEnd (reason clear), then SessionStart with a new id; still one session.
    let end = json!({"session_id": "one-1", "cwd": d.root, "hook_event_name": "SessionEnd", "reason": "clear"});
    let out = hook(&d, "session-end", &end.to_string(), &[]);
    assert!(out.status.success());
    run_hook(start_payload(&d, "one-2"));
    let after = live(&d);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0]["id"], sessions[0]["id"]);

    // A plain registration (no key) is a session of its own, as before.
    d.session("by hand");
    assert_eq!(live(&d).len(), 2);
    drop(mcp.stdin.take());
    let _ = mcp.wait();
}

fn note_file(d: &Daemon, id: &str, kind: &str, title: &str, updated: &str, extra: &str, body: &str) {
    let dir = d.root.join("vault");
    std::fs::create_dir_all(&dir).unwrap();
    let text = format!("---\nid: {id}\nkind: {kind}\ntitle: {title}\ncreated: {updated}\nupdated: {updated}\n{extra}---\n\n{body}\n");
    std::fs::write(dir.join(format!("{id}.md")), text).unwrap();
}

fn prompt(d: &Daemon, sid: &str, text: &str) -> Option<String> {
    let out = hook(d, "user-prompt", &json!({"session_id": sid, "cwd": d.root, "hook_event_name": "UserPromptSubmit", "prompt": text}).to_string(), &[]);
    assert!(out.status.success(), "hooks always exit 0: {}", String::from_utf8_lossy(&out.stderr));
    if out.stdout.is_empty() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(v["hookSpecificOutput"]["hookEventName"], "UserPromptSubmit");
    Some(v["hookSpecificOutput"]["additionalContext"].as_str().unwrap().to_string())
}

#[test]
fn a_session_without_a_task_starts_with_the_pinned_notes_and_a_stale_status_is_not_pinned() {
    let d = Daemon::start();
    let now = chrono_like_now();
    note_file(&d, "pref-tabs", "preference", "Indent Go code with tabs", &now, "", "The user wants gofmt defaults everywhere.");
    note_file(&d, "status-now", "status", "Current state: billing migration half done", &now, "", "Webhooks moved; refunds still on the old path.");
    note_file(&d, "status-old", "status", "Current state: the old CI is being replaced", "2020-01-01T00:00:00Z", "", "Jenkins is going away.");
    note_file(&d, "marked", "decision", "All money amounts are integer cents", "2025-06-01T00:00:00Z", "pin: true\n", "Never floats for money.");
    note_file(&d, "plain", "decision", "The search page uses server-side rendering", &now, "", "SSR for SEO.");
    d.ok(&["vault", "reindex"]);
    let ctx = context_of(&hook(&d, "session-start", &start_payload(&d, "p1"), &[]));
    for wanted in ["Indent Go code with tabs", "billing migration half done", "integer cents"] {
        assert!(ctx.contains(wanted), "{wanted} missing: {ctx}");
    }
    assert!(ctx.contains("(pinned;"), "the reason is shown: {ctx}");
    assert!(!ctx.contains("old CI"), "a status note not updated for years is not pinned: {ctx}");
    assert!(!ctx.contains("server-side rendering"), "an unpinned, unmatched note is not injected: {ctx}");
    // The same choice, with reasons, from the CLI.
    let preview = d.ok(&["vault", "inject", "--no-work"]);
    let notes = preview["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 3, "{preview}");
    assert!(notes.iter().all(|n| n["reason"] == "pinned"), "{preview}");
    // A forgotten note is never injected again.
    d.ok(&["vault", "forget", "pref-tabs"]);
    let ctx = context_of(&hook(&d, "session-start", &start_payload(&d, "p2"), &[]));
    assert!(!ctx.contains("Indent Go code with tabs"), "{ctx}");
    assert!(std::fs::read_to_string(d.root.join("vault/pref-tabs.md")).unwrap().contains("forgotten:"), "the file is kept, marked");
    // Pinned by hand, a note comes into every session; unpinned, it goes.
    assert!(d.cli(&["vault", "pin", "plain"]).status.success());
    let ctx = context_of(&hook(&d, "session-start", &start_payload(&d, "p3"), &[]));
    assert!(ctx.contains("server-side rendering"), "{ctx}");
    assert!(d.cli(&["vault", "pin", "plain", "--off"]).status.success());
    let ctx = context_of(&hook(&d, "session-start", &start_payload(&d, "p4"), &[]));
    assert!(!ctx.contains("server-side rendering"), "{ctx}");
}

/// Now as RFC 3339, from the system clock (the tests have no chrono dependency).
fn chrono_like_now() -> String {
    let out = Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn a_prompt_brings_its_notes_once_and_small_talk_brings_none() {
    let d = Daemon::start();
    add_note(&d, "LiveView tests need the sandbox allowed for the LiveView process", "A LiveView test fails with DBConnection.OwnershipError unless Ecto.Adapters.SQL.Sandbox.allow is called for the LiveView pid.");
    add_note(&d, "HTTP retries use full-jitter exponential backoff", "Synchronized retries overloaded the upstream; every client retry waits a random time up to an exponential cap.");
    let first = prompt(&d, "u1", "my LiveView test fails with an ownership error from the database").expect("the matching note");
    assert!(first.contains("LiveView tests need the sandbox"), "{first}");
    assert!(!first.contains("retries"), "only what matches the prompt: {first}");
    assert_eq!(prompt(&d, "u1", "the LiveView test still fails with the DBConnection ownership error"), None, "the same topic twice injects nothing twice");
    let second = prompt(&d, "u1", "how should the HTTP client retry requests when the upstream fails?").expect("a new topic brings its note");
    assert!(second.contains("full-jitter"), "{second}");
    assert_eq!(prompt(&d, "u1", "ok thanks, looks good"), None);
    assert_eq!(prompt(&d, "u1", "/compact"), None);
    // Another session has its own record.
    assert!(prompt(&d, "u2", "my LiveView test fails with an ownership error from the database").is_some());
}

#[test]
fn after_a_compaction_the_pinned_and_task_notes_come_back_and_the_log_says_so() {
    let d = Daemon::start();
    note_file(&d, "pref-commits", "preference", "Commit messages say why, not what", &chrono_like_now(), "", "The user reads history by reasons.");
    add_note(&d, "Uploads go through the worker queue", "The upload worker retries S3 uploads with exponential backoff; never upload from the request handler.");
    d.ok(&["vault", "reindex"]);
    let t = d.task("Make S3 uploads resumable in the upload worker", &["--body", "Large uploads fail halfway; resume them."]);
    let task_env = [("KITE_TASK_ID", t.to_string())];
    let env: Vec<(&str, &str)> = task_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let start = context_of(&hook(&d, "session-start", &start_payload(&d, "c1"), &env));
    assert!(start.contains("Commit messages say why") && start.contains("Uploads go through the worker queue"), "{start}");
    // The prompt hook knows the session has them.
    assert_eq!(prompt(&d, "c1", "where do the S3 uploads of the upload worker happen?"), None);
    let compact = json!({"session_id": "c1", "cwd": d.root, "hook_event_name": "SessionStart", "source": "compact"}).to_string();
    let out = hook(&d, "session-start", &compact, &env);
    let again = context_of(&out);
    assert!(again.contains("Commit messages say why") && again.contains("Uploads go through the worker queue"), "{again}");
    assert!(again.contains("compacted"), "{again}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("compact: re-injected 2 pinned and task notes"), "{}", String::from_utf8_lossy(&out.stderr));
}
