//! `kite hook session-start` and `kite hook session-end`: Claude Code hooks. They are on a
//! person's critical path, so every failure is a warning on stderr and exit 0: a broken memory
//! must never stop a session. session-start asks the running daemon (whose model is warm) and
//! falls back to searching in process; session-end only queues the transcript and returns.

use super::Ctx;
use crate::memory::{self, Job, Recalled};
use anyhow::{Context, Result};
use kite_proto::ops::{Events, EventsQuery, Locks, SessionId, SessionRef, SessionRegister, TaskRef};
use kite_proto::Client;
use serde::Deserialize;
use serde_json::{json, Value};
use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// Claude Code caps additionalContext at 10,000 characters; stay under it.
const HARD_CAP: usize = 9_500;
const NOTE_CHARS: usize = 600;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum HookCmd {
    /// SessionStart: prints the JSON that adds the best notes as context.
    SessionStart,
    /// SessionEnd / PreCompact: queues the transcript for extraction and returns at once.
    SessionEnd,
}

/// The fields of Claude Code's hook input kite reads; the rest is ignored.
#[derive(Debug, Deserialize)]
struct HookInput {
    session_id: Option<String>,
    transcript_path: Option<String>,
    cwd: Option<String>,
    hook_event_name: Option<String>,
    #[allow(dead_code)]
    source: Option<String>,
    /// SessionEnd's reason: "clear", "logout", "prompt_input_exit", "other".
    reason: Option<String>,
}

pub(crate) fn run(ctx: &Ctx, cmd: HookCmd) -> Result<()> {
    // Even a bug must not fail the person's session: a panic becomes a warning too.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match cmd {
        HookCmd::SessionStart => session_start(ctx),
        HookCmd::SessionEnd => session_end(ctx),
    }));
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("kite: warning: hook skipped: {e:#}"),
        Err(_) => eprintln!("kite: warning: hook skipped after an internal error"),
    }
    Ok(())
}

fn read_input() -> Result<HookInput> {
    let mut buf = String::new();
    std::io::stdin().take(1 << 20).read_to_string(&mut buf).context("cannot read the hook input")?;
    serde_json::from_str(&buf).context("the hook input is not the JSON Claude Code sends")
}

fn session_file(home: &Path, claude_id: &str) -> std::path::PathBuf {
    let safe: String = claude_id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').take(100).collect();
    kite_coord::Home::new(home).claude_sessions().join(format!("{safe}.json"))
}

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git").arg("-C").arg(root).args(args).stderr(std::process::Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// What the daemon knows that a new session should see. Empty when no daemon answers in time.
#[derive(Default)]
struct Live {
    task: Option<Value>,
    locks: Vec<Value>,
    broadcasts: Vec<Value>,
}

/// Registers the session and, when `context` is set, reads what the injected text shows.
async fn ask_daemon(ctx: &Ctx, c: Client, input: &HookInput, context: bool) -> Result<Live> {
    let mut live = Live::default();
    if let Some(sid) = &input.session_id {
        let r: SessionId = c.request::<kite_proto::op::SessionRegister>(SessionRegister { name: format!("claude-{sid}"), attach: false, key: crate::agent::key() }).await?;
        let path = session_file(&ctx.places.home, sid);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, json!({"kite_session": r.id}).to_string())?;
    }
    if !context {
        return Ok(live);
    }
    if let Some(id) = std::env::var("KITE_TASK_ID").ok().and_then(|s| s.parse::<i64>().ok()) {
        if let Ok(d) = c.request::<kite_proto::op::TaskShow>(TaskRef { task: id }).await {
            live.task = Some(json!({"id": d.task.id, "title": d.task.title, "body": d.task.body, "status": d.task.status, "dependencies": d.dependencies}));
        }
    }
    let locks: Locks = c.request::<kite_proto::op::LockList>(kite_proto::NoArgs {}).await?;
    live.locks = locks.held.iter().map(|h| json!({"path": h.path, "mode": h.mode.as_str(), "session": h.session})).collect();
    let events: Events = c.request::<kite_proto::op::EventsList>(EventsQuery { since: None, limit: Some(500) }).await?;
    live.broadcasts = events.events.iter().filter(|e| e.kind == kite_proto::ops::EventKind::Broadcast).rev().take(5).map(|e| e.data.clone()).collect();
    live.broadcasts.reverse();
    Ok(live)
}

fn one_line(s: &str, max: usize) -> String {
    let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        format!("{}…", flat.chars().take(max).collect::<String>())
    }
}

/// Connects to the daemon; when none listens, starts one in the background (unless
/// `[daemon] autostart = false`) and returns `None`: this hook answers without it.
async fn daemon_or_start(ctx: &Ctx) -> Option<Client> {
    match Client::connect(&ctx.places.socket()).await {
        Ok(c) => Some(c),
        Err(e) if !ctx.config.daemon.autostart => {
            eprintln!("kite: warning: no daemon ({e}); start it with `kite daemon --detach` (autostart is off in kite.toml)");
            None
        }
        Err(_) => {
            match crate::autostart::spawn(&ctx.places, &["--autostarted".to_string()]) {
                Ok(pid) => eprintln!("kite: started the daemon in the background (pid {pid}); this hook answers without it"),
                Err(e) => eprintln!("kite: warning: no daemon, and it could not be started: {e:#}"),
            }
            None
        }
    }
}

fn session_start(ctx: &Ctx) -> Result<()> {
    let input = read_input()?;
    let settings = &ctx.config.hooks;
    let (budget_tokens, k) = settings.clamped();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let asked = async {
        let c = daemon_or_start(ctx).await?;
        Some(tokio::time::timeout(Duration::from_millis(1500), ask_daemon(ctx, c, &input, settings.inject)).await)
    };
    let live = match rt.block_on(asked) {
        None => Live::default(),
        Some(Ok(Ok(l))) => l,
        Some(Ok(Err(e))) => {
            eprintln!("kite: warning: no daemon context ({e})");
            Live::default()
        }
        Some(Err(_)) => {
            eprintln!("kite: warning: the daemon did not answer in time");
            Live::default()
        }
    };
    if !settings.inject {
        // Registered; nothing to inject, so no git, queue or vault work either.
        return Ok(());
    }
    let root = input.cwd.as_deref().map(Path::new).filter(|p| p.is_dir()).unwrap_or(&ctx.places.root).to_path_buf();
    let project = ctx.places.root.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let branch = git(&root, &["rev-parse", "--abbrev-ref", "HEAD"]);
    let commits = git(&root, &["log", "-5", "--format=%s"]).unwrap_or_default();

    // The query: what this session is likely about.
    let mut query = format!("{project} {} {}", branch.clone().unwrap_or_default(), commits.replace('\n', " "));
    if let Some(t) = &live.task {
        query = format!("{} {} {query}", t["title"].as_str().unwrap_or(""), one_line(t["body"].as_str().unwrap_or(""), 300));
    }
    let notes = match memory::remote_recall(&ctx.places.home, &query, k, Duration::from_secs(2)) {
        Some(n) => n,
        None => {
            let mut vault = crate::cmd::vault::open(ctx)?;
            memory::recall(&mut vault, &query, k).map_err(anyhow::Error::msg)?
        }
    };
    // Tangential notes are worse than none: keep only those close enough to the query.
    let notes: Vec<Recalled> = notes
        .into_iter()
        .filter(|n| n.similarity.is_none_or(|s| s >= settings.min_similarity))
        .collect();

    let mut shown: Vec<Value> = notes
        .iter()
        .map(|n| json!({"id": n.id, "title": n.title, "kind": n.kind, "updated": n.updated, "body": one_line(&n.body, NOTE_CHARS), "score": n.score}))
        .collect();
    if shown.is_empty() && live.task.is_none() && live.locks.is_empty() && live.broadcasts.is_empty() {
        return Ok(());
    }
    let template = std::fs::read_to_string(ctx.places.root.join("prompts/session-start.md.tera"))
        .unwrap_or_else(|_| kite_sched::builtin::prompt("session-start").map(|b| b.text).unwrap_or_default().to_string());
    let budget = (budget_tokens * 4).min(HARD_CAP);
    let text = loop {
        let mut tctx = tera::Context::new();
        tctx.insert("project", &project);
        tctx.insert("branch", &branch);
        tctx.insert("task", &live.task);
        tctx.insert("notes", &shown);
        tctx.insert("locks", &live.locks);
        tctx.insert("broadcasts", &live.broadcasts);
        let text = tera::Tera::one_off(&template, &tctx, false).context("cannot render prompts/session-start.md.tera")?;
        let text = text.lines().filter(|l| !l.trim().is_empty()).collect::<Vec<_>>().join("\n");
        // Over budget: drop the weakest note and try again; with none left, cut.
        if text.chars().count() <= budget {
            break text;
        }
        if shown.pop().is_none() {
            break text.chars().take(budget).collect();
        }
    };
    let out = json!({"hookSpecificOutput": {"hookEventName": "SessionStart", "additionalContext": text}});
    println!("{out}");
    Ok(())
}

fn session_end(ctx: &Ctx) -> Result<()> {
    let input = read_input()?;
    let event = input.hook_event_name.clone().unwrap_or_else(|| "SessionEnd".into());
    if let Some(path) = &input.transcript_path {
        let job = Job { transcript: path.into(), session_id: input.session_id.clone(), event: event.clone() };
        memory::enqueue(&ctx.places.home, &job)?;
        // The job waits in the queue for a daemon; make sure one comes.
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        drop(rt.block_on(daemon_or_start(ctx)));
    }
    // The session is over (not on PreCompact, nor on /clear, after which the same agent process
    // and its MCP server go on): end its kite session so its locks go to others.
    if event == "SessionEnd" && input.reason.as_deref() != Some("clear") {
        if let Some(sid) = &input.session_id {
            let file = session_file(&ctx.places.home, sid);
            if let Some(id) = std::fs::read(&file).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok()).and_then(|v| v["kite_session"].as_str().map(str::to_string)) {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                let _ = rt.block_on(async {
                    tokio::time::timeout(Duration::from_millis(500), async {
                        let c = Client::connect(&ctx.places.socket()).await?;
                        c.request::<kite_proto::op::SessionEnd>(SessionRef { session: id }).await
                    })
                    .await
                });
                let _ = std::fs::remove_file(&file);
            }
        }
    }
    Ok(())
}
