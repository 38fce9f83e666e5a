//! `kite hook session-start` and `kite hook session-end`: Claude Code hooks. They are on a
//! person's critical path, so every failure is a warning on stderr and exit 0: a broken memory
//! must never stop a session. session-start asks the running daemon (whose model is warm) and
//! falls back to searching in process; user-prompt adds the notes a prompt brings up (through a
//! warm daemon only); session-end only queues the transcript and returns.

use super::Ctx;
use anyhow::{Context, Result};
use kite_daemon::memory::{self, Job};
use kite_proto::ops::{
    Events, EventsQuery, Locks, SessionId, SessionRef, SessionRegister, TaskRef,
};
use kite_proto::Client;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// Claude Code caps additionalContext at 10,000 characters; stay under it.
const HARD_CAP: usize = 9_500;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum HookCmd {
    /// SessionStart: prints the JSON that adds the best notes as context.
    SessionStart,
    /// UserPromptSubmit: adds the notes that match the prompt and were not given yet.
    UserPrompt,
    /// SessionEnd / PreCompact: queues the transcript for extraction and returns at once.
    SessionEnd,
    /// PreToolUse and PostToolBatch: a stop order or a lock before a tool runs; after a turn's
    /// tool calls, what this session has not been told yet.
    Tool,
}

/// The fields of Claude Code's hook input kite reads; the rest is ignored.
#[derive(Debug, Deserialize)]
struct HookInput {
    session_id: Option<String>,
    transcript_path: Option<String>,
    cwd: Option<String>,
    hook_event_name: Option<String>,
    /// SessionStart's source: "startup", "resume", "clear" or "compact".
    source: Option<String>,
    /// UserPromptSubmit's prompt.
    prompt: Option<String>,
    /// SessionEnd's reason: "clear", "logout", "prompt_input_exit", "other".
    reason: Option<String>,
    /// PreToolUse's tool and its input.
    tool_name: Option<String>,
    tool_input: Option<Value>,
}

pub(crate) fn run(ctx: &Ctx, cmd: HookCmd) -> Result<()> {
    // A Claude Code kite runs for itself (a strategy audit, an extraction) gets no kite hooks,
    // whatever settings file named them: an extractor's SessionEnd would extract itself.
    if std::env::var_os("KITE_HOOKS_OFF").is_some_and(|v| v == "1") {
        return Ok(());
    }
    // Even a bug must not fail the person's session: a panic becomes a warning too.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match cmd {
        HookCmd::SessionStart => session_start(ctx),
        HookCmd::UserPrompt => user_prompt(ctx),
        HookCmd::SessionEnd => session_end(ctx),
        HookCmd::Tool => tool(ctx),
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
    std::io::stdin()
        .take(1 << 20)
        .read_to_string(&mut buf)
        .context("cannot read the hook input")?;
    serde_json::from_str(&buf).context("the hook input is not the JSON Claude Code sends")
}

fn session_file(home: &Path, claude_id: &str) -> std::path::PathBuf {
    let safe: String = claude_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(100)
        .collect();
    kite_coord::Home::new(home)
        .claude_sessions()
        .join(format!("{safe}.json"))
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
        let mut file = SessionFile::load(&ctx.places.home, sid);
        match crate::agent::runner_session() {
            // An agent the runner started: its session is the runner's (one per agent).
            Some(id) => {
                file.kite_session = Some(id);
                file.runner = true;
            }
            None => {
                let r: SessionId = c
                    .request::<kite_proto::op::SessionRegister>(SessionRegister {
                        name: format!("claude-{sid}"),
                        attach: false,
                        key: crate::agent::key(),
                    })
                    .await?;
                file.kite_session = Some(r.id);
            }
        }
        file.save(&ctx.places.home, sid)?;
    }
    if !context {
        return Ok(live);
    }
    if let Some(id) = std::env::var("KITE_TASK_ID")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
    {
        if let Ok(d) = c
            .request::<kite_proto::op::TaskShow>(TaskRef { task: id })
            .await
        {
            live.task = Some(
                json!({"id": d.task.id, "title": d.task.title, "body": d.task.body, "files": d.task.files, "status": d.task.status, "dependencies": d.dependencies}),
            );
        }
    }
    let locks: Locks = c
        .request::<kite_proto::op::LockList>(kite_proto::NoArgs {})
        .await?;
    live.locks = locks
        .held
        .iter()
        .map(|h| json!({"path": h.path, "mode": h.mode.as_str(), "session": h.session}))
        .collect();
    let events: Events = c
        .request::<kite_proto::op::EventsList>(EventsQuery {
            since: None,
            limit: Some(500),
        })
        .await?;
    live.broadcasts = events
        .events
        .iter()
        .filter(|e| e.kind == kite_proto::ops::EventKind::Broadcast)
        .rev()
        .take(5)
        .map(|e| e.data.clone())
        .collect();
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
    let remote = crate::remote::is_remote(ctx);
    match ctx.client().await {
        Ok(c) => Some(c),
        // The team's daemon on another machine is not this hook's to start.
        Err(e) if remote => {
            eprintln!("kite: warning: the team's daemon did not answer: {e:#}");
            None
        }
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

/// What kite keeps per Claude Code session: its kite session and the notes it was given (so a
/// prompt never brings a note twice).
#[derive(Debug, Default, Serialize, Deserialize)]
struct SessionFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kite_session: Option<String>,
    /// The session is the runner's, which ends it after landing the task: SessionEnd leaves it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    runner: bool,
    #[serde(default)]
    injected: Vec<String>,
}

impl SessionFile {
    fn load(home: &Path, claude_id: &str) -> SessionFile {
        std::fs::read(session_file(home, claude_id))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save(&self, home: &Path, claude_id: &str) -> Result<()> {
        kite_core::files::write_atomic(&session_file(home, claude_id), &serde_json::to_vec(self)?)?;
        Ok(())
    }
}

fn task_query(task: &Value) -> String {
    let files: Vec<String> = task["files"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|x| x.as_str())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    kite_memory::work::task_query(
        task["title"].as_str().unwrap_or(""),
        task["body"].as_str().unwrap_or(""),
        &files,
    )
}

fn session_start(ctx: &Ctx) -> Result<()> {
    let input = read_input()?;
    let settings = &ctx.config.hooks;
    let (budget_tokens, k) = settings.clamped();
    let source = input.source.as_deref().unwrap_or("startup");
    // After a compaction or on resume, the conversation lost (or may have lost) what was
    // injected: give the pinned and task notes again, not the work notes.
    let lost = matches!(source, "compact" | "resume");
    let root = input
        .cwd
        .as_deref()
        .map(Path::new)
        .filter(|p| p.is_dir())
        .unwrap_or(&ctx.places.root)
        .to_path_buf();
    let git_facts = settings
        .inject
        .then(|| kite_memory::work::GitFacts::start(&root));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let asked = async {
        let c = daemon_or_start(ctx).await?;
        Some(
            tokio::time::timeout(
                Duration::from_millis(1500),
                ask_daemon(ctx, c, &input, settings.inject),
            )
            .await,
        )
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
    let project = ctx
        .places
        .root
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (branch, work) = git_facts
        .map(kite_memory::work::GitFacts::finish)
        .unwrap_or_default();
    let budget = (budget_tokens * 4).min(HARD_CAP);
    let ask = kite_proto::ops::MemoryInject {
        pinned: true,
        task: live.task.as_ref().map(task_query),
        work: if lost { None } else { work },
        // The notes get about two thirds of the context; the rest is the task, locks, broadcasts.
        budget: Some((budget * 2 / 3).max(200)),
        min_similarity: Some(settings.min_similarity),
        status_days: Some(settings.status_days),
        status_similarity: Some(settings.status_min_similarity),
        k: Some(k),
        ..Default::default()
    };
    let client = super::memory_client(
        ctx,
        Duration::from_secs(3),
        kite_daemon::memory_client::Fallback::InProcess,
    );
    let injection = client.inject(ask)?;
    if let Some(w) = &injection.warning {
        tracing::debug!("{w}");
    }
    if lost {
        tracing::info!(
            source,
            notes = injection.notes.len(),
            "re-injecting the pinned and task notes after {source}"
        );
        eprintln!(
            "kite: {source}: re-injected {} pinned and task notes",
            injection.notes.len()
        );
    }
    let shown: Vec<Value> = injection
        .notes
        .iter()
        .map(|n| {
            tracing::debug!(note = %n.id, reason = %n.reason, similarity = ?n.similarity, "injected");
            json!({"id": n.id, "title": n.title, "kind": n.kind, "updated": n.updated, "body": n.body, "score": n.score, "reason": n.reason, "why": kite_memory::Reason::describe_name(&n.reason)})
        })
        .collect();
    if shown.is_empty()
        && live.task.is_none()
        && live.locks.is_empty()
        && live.broadcasts.is_empty()
    {
        record(ctx, input.session_id.as_deref(), vec![], true);
        return Ok(());
    }
    let template = std::fs::read_to_string(
        ctx.places
            .root
            .join(&ctx.config.sched.prompts_dir)
            .join("session-start.md.tera"),
    )
    .unwrap_or_else(|_| {
        kite_strategy::builtin::prompt("session-start")
            .map(|b| b.text)
            .unwrap_or_default()
            .to_string()
    });
    let vars = [
        ("project", json!(project)),
        ("branch", json!(branch)),
        ("source", json!(source)),
        ("task", json!(live.task)),
        ("locks", json!(live.locks)),
        ("broadcasts", json!(live.broadcasts)),
    ];
    let (text, shown) = kite_memory::render_within(&template, &vars, shown, budget)
        .map_err(|e| anyhow::anyhow!("cannot render prompts/session-start.md.tera: {e}"))?;
    // What the session was given, after the budget cut: a note cut here can still come with a
    // prompt. A fresh context (startup, clear, compact) starts the record over.
    record(
        ctx,
        input.session_id.as_deref(),
        shown
            .iter()
            .filter_map(|n| n["id"].as_str().map(str::to_string))
            .collect(),
        true,
    );
    let out =
        json!({"hookSpecificOutput": {"hookEventName": "SessionStart", "additionalContext": text}});
    println!("{out}");
    Ok(())
}

/// Replaces (`replace`) or extends the record of the notes a Claude session was given; a
/// failure to write it is a warning, never a reason to withhold the context.
fn record(ctx: &Ctx, sid: Option<&str>, ids: Vec<String>, replace: bool) {
    let Some(sid) = sid.filter(|s| !s.is_empty()) else {
        return;
    };
    let mut file = SessionFile::load(&ctx.places.home, sid);
    if replace {
        file.injected = ids;
    } else {
        file.injected.extend(ids);
    }
    if let Err(e) = file.save(&ctx.places.home, sid) {
        eprintln!("kite: warning: cannot record the injected notes: {e:#}");
    }
}

/// UserPromptSubmit: the notes that match the prompt and that this session was not given yet.
/// It never starts the daemon nor loads the model for a prompt: with no daemon, it adds nothing
/// (the SessionStart hook has started one by then).
fn user_prompt(ctx: &Ctx) -> Result<()> {
    let input = read_input()?;
    let settings = &ctx.config.hooks;
    if !settings.inject {
        return Ok(());
    }
    let Some(prompt) = input
        .prompt
        .as_deref()
        .map(str::trim)
        .filter(|p| p.split_whitespace().count() >= 3)
    else {
        return Ok(());
    };
    // A slash command or a one-word answer is not a topic.
    if prompt.starts_with('/') {
        return Ok(());
    }
    let sid = input.session_id.clone().unwrap_or_default();
    let file = if sid.is_empty() {
        SessionFile::default()
    } else {
        SessionFile::load(&ctx.places.home, &sid)
    };
    let ask = kite_proto::ops::MemoryInject {
        pinned: false,
        prompt: Some(one_line(prompt, 2000)),
        exclude: file.injected.clone(),
        budget: Some(settings.prompt_budget_tokens.clamp(50, 2000) * 4),
        min_similarity: Some(settings.prompt_min_similarity),
        k: Some(4),
        ..Default::default()
    };
    // Never the model in process for a prompt: with no daemon's memory, nothing is added.
    let client = super::memory_client(
        ctx,
        Duration::from_millis(1500),
        kite_daemon::memory_client::Fallback::Nothing,
    );
    let injection = match client.inject(ask) {
        Ok(i) => i,
        Err(e) => {
            tracing::debug!("no notes for this prompt: {e}");
            return Ok(());
        }
    };
    if injection.notes.is_empty() {
        return Ok(());
    }
    let mut text = String::from("kite: notes from this project's vault that match this prompt\n");
    for n in &injection.notes {
        tracing::debug!(note = %n.id, reason = %n.reason, similarity = ?n.similarity, "injected");
        text.push_str(&format!(
            "- [{}] {} (updated {}): {}\n",
            n.kind,
            n.title,
            n.updated.get(..10).unwrap_or(&n.updated),
            n.body
        ));
    }
    record(
        ctx,
        Some(&sid),
        injection.notes.iter().map(|n| n.id.clone()).collect(),
        false,
    );
    let out = json!({"hookSpecificOutput": {"hookEventName": "UserPromptSubmit", "additionalContext": text.trim_end()}});
    println!("{out}");
    Ok(())
}

fn session_end(ctx: &Ctx) -> Result<()> {
    let input = read_input()?;
    let event = input
        .hook_event_name
        .clone()
        .unwrap_or_else(|| "SessionEnd".into());
    if let Some(path) = input.transcript_path.as_ref().filter(|_| crate::remote::is_remote(ctx)) {
        // A session working for a team's daemon on another machine: that daemon cannot read
        // this machine's transcript, and the transcript should not travel. Extract here, in the
        // background, and give the daemon the notes.
        if let Err(e) = crate::autostart::spawn_remote_extract(&ctx.places, Path::new(path), ctx.config.hooks.extract_command.as_deref()) {
            eprintln!("kite: warning: the session's notes were not extracted: {e:#}");
        }
    } else if let Some(path) = &input.transcript_path {
        let job = Job {
            transcript: path.into(),
            session_id: input.session_id.clone(),
            event: event.clone(),
        };
        memory::enqueue(&ctx.places.home, &job)?;
        // The job waits in the queue for a daemon; make sure one comes.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        drop(rt.block_on(daemon_or_start(ctx)));
    }
    // A person's session's cost comes from its transcript, recorded at every SessionEnd, /clear
    // included (Claude Code starts a new transcript after it); the runner records its agents'
    // costs from their result JSON, so theirs are not counted twice.
    if event == "SessionEnd" {
        if let Some(sid) = &input.session_id {
            let clear = input.reason.as_deref() == Some("clear");
            let file = session_file(&ctx.places.home, sid);
            let record = SessionFile::load(&ctx.places.home, sid);
            let cost = match (&record.kite_session, record.runner, &input.transcript_path) {
                (Some(id), false, Some(path)) => interactive_cost(ctx, id, sid, Path::new(path)),
                _ => None,
            };
            // The session is over (not on /clear, after which the same agent process and its
            // MCP server go on): end its kite session so its locks go to others.
            let end = record
                .kite_session
                .clone()
                .filter(|_| !record.runner && !clear);
            if cost.is_some() || end.is_some() {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let _ = rt.block_on(async {
                    tokio::time::timeout(Duration::from_millis(800), async {
                        let c = ctx.client().await?;
                        if let Some(cost) = cost {
                            if let Err(e) = c.request::<kite_proto::op::CostRecord>(cost).await {
                                eprintln!(
                                    "kite: warning: the session's cost was not recorded: {e}"
                                );
                            }
                        }
                        if let Some(id) = end {
                            c.request::<kite_proto::op::SessionEnd>(SessionRef { session: id })
                                .await?;
                        }
                        Ok::<_, anyhow::Error>(())
                    })
                    .await
                });
            }
            if !clear {
                let _ = std::fs::remove_file(&file);
            }
        }
    }
    Ok(())
}

/// The tools that write a file, and the input field naming it.
const WRITES: &[(&str, &str)] = &[
    ("Write", "file_path"),
    ("Edit", "file_path"),
    ("MultiEdit", "file_path"),
    ("NotebookEdit", "notebook_path"),
];

/// `kite hook tool`: the hot path, after (PostToolBatch) and before (PreToolUse) every tool call
/// of every session.
///
/// Why these two events: PostToolBatch fires once after all the tool calls of a turn, failed or
/// refused ones included, right before the next model request, and its additionalContext is in
/// that request: "each item once, at the next request, whatever the tool and whether it failed".
/// PostToolUse misses failed calls (those fire PostToolUseFailure) and calls a hook denied (they
/// fire neither), and both fire per call, not per turn. PreToolUse is the only point before a tool
/// runs: it denies a write to a locked path, and carries a stop order (with the call denied, or
/// the call would still run). It asks the warm daemon one question (`session.news`), loads no model,
/// opens no database, never starts a daemon, and gives up silently at its deadline: a daemon
/// that does not answer in time means nothing to say, never a blocked agent.
fn tool(ctx: &Ctx) -> Result<()> {
    let input = read_input()?;
    let event = input.hook_event_name.as_deref().unwrap_or("");
    let pre = event == "PreToolUse";
    let runner = crate::agent::runner_session();
    let session = match (&runner, &input.session_id) {
        (Some(id), _) => id.clone(),
        (None, Some(sid)) => match SessionFile::load(&ctx.places.home, sid).kite_session {
            Some(id) => id,
            None => return Ok(()),
        },
        (None, None) => return Ok(()),
    };
    let settings = &ctx.config.hooks;
    // Kite's own agents are stopped; a person's session only with `stop_people`.
    let may_stop = runner.is_some() || settings.stop_people;
    let write_path = match (
        pre && settings.enforce_locks,
        input.tool_name.as_deref(),
        &input.tool_input,
    ) {
        (true, Some(tool), Some(args)) => WRITES
            .iter()
            .find(|(t, _)| *t == tool)
            .and_then(|(_, field)| args[*field].as_str())
            .and_then(|p| {
                let cwd = input
                    .cwd
                    .as_deref()
                    .map(std::path::PathBuf::from)
                    .unwrap_or_else(|| ctx.places.worktree.clone());
                ctx.places.repo_path(&cwd, p).ok()
            }),
        _ => None,
    };
    // An agent's spend so far counts against the daily budget before its run ends: priced from
    // its transcript (only when a budget is set; a person's sessions are counted, not limited).
    let running_usd = match (
        &runner,
        ctx.config.runner.daily_budget_usd,
        &input.transcript_path,
    ) {
        (Some(_), Some(_), Some(t)) => kite_agent::cost::transcript_usage(Path::new(t))
            .ok()
            .map(|u| kite_agent::cost::price_by_model(&ctx.config.prices(), &u).usd),
        _ => None,
    };
    let ask = kite_proto::ops::SessionNews {
        session,
        deliver: !pre,
        write_path,
        daily_budget_usd: ctx.config.runner.daily_budget_usd,
        stop_on_budget: may_stop,
        running_usd,
    };
    let running_usd = ask.running_usd;
    let deadline = Duration::from_millis(settings.tool_deadline_ms.clamp(10, 5_000));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let news = rt.block_on(async {
        tokio::time::timeout(deadline, async {
            let c = ctx.client().await.ok()?;
            c.request::<kite_proto::op::SessionNews>(ask).await.ok()
        })
        .await
        .ok()
        .flatten()
    });
    if let Some(log) = std::env::var_os("KITE_HOOK_LOG") {
        // A trace for whoever debugs the hook: what it asked and what came back.
        use std::io::Write as _;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = writeln!(
                f,
                "{}",
                json!({"event": event, "tool": input.tool_name, "running_usd": running_usd, "news": news})
            );
        }
    }
    let Some(news) = news else { return Ok(()) };
    if let (Some(why), true) = (&news.stop, may_stop) {
        // `continue: false` alone ends the session only after the tool ran; with the call
        // denied too, it does not run (Claude Code 2.1.328). After a batch it ends the session
        // before the next request.
        let reason = format!("kite stopped this session: {why}");
        let mut out = json!({"continue": false, "stopReason": reason});
        if pre {
            out["hookSpecificOutput"] = json!({"hookEventName": "PreToolUse", "permissionDecision": "deny", "permissionDecisionReason": reason});
        }
        println!("{out}");
        return Ok(());
    }
    if pre {
        if let Some(why) = news.deny {
            let out = json!({"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "deny", "permissionDecisionReason": format!("kite: {why}")}});
            println!("{out}");
        }
        return Ok(());
    }
    if news.items.is_empty() {
        return Ok(());
    }
    let mut text = String::from("kite: news for this session since its last tool call\n");
    for i in &news.items {
        text.push_str(&format!("- {}\n", one_line(&i.text, 600)));
    }
    let text: String = text.trim_end().chars().take(HARD_CAP).collect();
    let out = json!({"hookSpecificOutput": {"hookEventName": event, "additionalContext": text}});
    println!("{out}");
    Ok(())
}

/// A person's session's cost, read from its transcript: each response counted once, priced
/// by the table (`[prices]` over the shipped one). Interactive sessions are counted, not limited.
fn interactive_cost(
    ctx: &Ctx,
    session: &str,
    claude_id: &str,
    transcript: &Path,
) -> Option<kite_proto::ops::CostRecord> {
    let by_model = match kite_agent::cost::transcript_usage(transcript) {
        Ok(u) if !u.is_empty() => u,
        Ok(_) => return None,
        Err(e) => {
            eprintln!("kite: warning: cannot read the transcript for its cost: {e}");
            return None;
        }
    };
    let prices = ctx.config.prices();
    let c = kite_agent::cost::price_by_model(&prices, &by_model);
    Some(kite_proto::ops::CostRecord {
        session: session.to_string(),
        task: None,
        attempt: None,
        source: "interactive".into(),
        usd: c.usd,
        input_tokens: c.usage.input_tokens,
        output_tokens: c.usage.output_tokens,
        cache_creation_input_tokens: c.usage.cache_creation_input_tokens,
        cache_read_input_tokens: c.usage.cache_read_input_tokens,
        model: c.model,
        turns: 0,
        duration_ms: 0,
        agent_session: Some(claude_id.to_string()),
        outcome: None,
        unpriced: c.unpriced,
    })
}
