//! `kite sched templates`, `kite sched tick` and `kite spawn`: kite-sched's strategy loop and
//! runner driven from the command line.
//! Inside the daemon the same two run as `kite_daemon::sched::Sched`, set up by [`background`].
//!
//! Everything goes through [`kite_daemon::queue::ClientQueue`], kite-sched's `Queue` over the client library.
//! Settings come from kite.toml (`[sched]`, `[runner]`; `KITE_AGENT_COMMAND` wins for the agent
//! command). Agents run with `sh -c` in a worktree of the project root, with `KITE_HOME` set to
//! this home.

use super::Ctx;
use crate::output;
use anyhow::{Context, Result};
use kite_proto::Client;
use kite_runner::runner::Attempt;
use kite_runner::{RunOutcome, RunReport, Runner, RunnerConfig};
use kite_strategy::plan::Target;
use kite_strategy::schedule::Cadence;
use kite_strategy::{
    BoxFuture, Decision, ListFilter, NewTask, NoteSource, PruneNote, Queue, QueueError,
    SchedConfig, Scheduler, Score, Task, TickOptions, TickReport, TrackRecord,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub(crate) use kite_daemon::queue::ClientQueue;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum SchedCmd {
    /// List the templates (built-in and the project's prompts/) with their schedules, where each
    /// comes from, and, with a daemon running, how their tasks fared.
    Templates,
    /// Write a built-in template (or prompt) into the project's prompts/ for editing; the file
    /// then overrides the built-in.
    Eject {
        /// The template's name (see `kite sched templates`), or session-start / extract.
        name: String,
        /// Replace a file that is already there.
        #[arg(long)]
        force: bool,
    },
    /// Run one round of the strategy loop now, every template whatever its schedule: candidates,
    /// scores and their parts, and what was queued, superseded or pruned and why.
    Tick {
        /// Plan and report only: nothing is created or pruned.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(clap::Args, Debug)]
pub(crate) struct SpawnArgs {
    /// The task to start an agent session for.
    pub(crate) task: i64,
}

/// The vault as the strategy loop sees it (templates with a `topic` get matching notes as
/// `vault`): the daemon's warm vault, else the vault opened in process.
pub(crate) fn note_source(ctx: &Ctx) -> Option<Arc<dyn NoteSource>> {
    let c = super::memory_client(
        ctx,
        std::time::Duration::from_secs(5),
        kite_daemon::memory_client::Fallback::InProcess,
    );
    Some(Arc::new(kite_daemon::memory_client::Notes(Arc::new(c))))
}

/// `[sched]` from kite.toml.
pub(crate) fn sched_config(ctx: &Ctx) -> Result<SchedConfig> {
    let mut c = ctx.config.sched.clone();
    // The tests provider's scratch worktree lives in the home, beside the task worktrees.
    c.state_dir = Some(ctx.places.home.clone());
    c.claude = ctx.config.runner.claude.clone();
    c.target = ctx.config.merge.target.clone();
    Ok(c)
}

/// `[runner]` from kite.toml, then `KITE_AGENT_COMMAND`.
pub(crate) fn runner_config(ctx: &Ctx) -> Result<RunnerConfig> {
    let mut c = ctx.config.runner.clone().apply_env();
    c.merge = ctx.config.merge.clone();
    c.merge.claude = c.claude.clone();
    if c.merge.review {
        // The project's review prompt overrides the built-in (`kite sched eject review`).
        let own = ctx
            .places
            .root
            .join(&ctx.config.sched.prompts_dir)
            .join("review.md.tera");
        c.merge.review_prompt = Some(match std::fs::read_to_string(&own) {
            Ok(text) => text,
            Err(_) => kite_land::review::PROMPT.to_string(),
        });
    }
    c.prices = ctx.config.prices();
    c.merge.prices = c.prices.clone();
    c.templates = (
        ctx.config.sched.prompts_dir.clone(),
        ctx.config.sched.builtin_templates,
    );
    // The agents' hooks and MCP server run this kite.
    c.kite_exe = Some(crate::share::kite_exe()?);
    Ok(c)
}

/// Done / failed / pruned tasks per template (for `kite status` and `kite sched templates`).
/// With the landed work's signals when `ctx` is given (`kite sched templates`; `kite status`
/// keeps to the counts).
pub(crate) async fn template_counts(
    client: &Client,
    ctx: Option<&Ctx>,
) -> Result<BTreeMap<String, TrackRecord>> {
    let quality = ctx.map(|ctx| {
        kite_daemon::quality::QualitySource::new(&ctx.places.root, ctx.config.merge.clone())
    });
    Ok(kite_daemon::queue::stats(client, quality.as_ref())
        .await?
        .by_template)
}

pub(crate) async fn run(ctx: &Ctx, cmd: SchedCmd) -> Result<()> {
    match cmd {
        SchedCmd::Templates => templates(ctx).await,
        SchedCmd::Eject { name, force } => eject(ctx, &name, force),
        SchedCmd::Tick { dry_run } => tick(ctx, dry_run).await,
    }
}

// ---------------------------------------------------------------------------------------------
// kite sched templates

/// A queue for listing templates without a daemon: loading templates never touches it.
struct NoQueue;

impl Queue for NoQueue {
    fn list<'a>(&'a self, _: &'a ListFilter) -> BoxFuture<'a, Result<Vec<Task>, QueueError>> {
        Box::pin(async { Err(QueueError::Unavailable("no daemon".into())) })
    }
    fn create(&self, _: NewTask) -> BoxFuture<'_, Result<i64, QueueError>> {
        Box::pin(async { Err(QueueError::Unavailable("no daemon".into())) })
    }
    fn prune(&self, _: i64, _: PruneNote) -> BoxFuture<'_, Result<(), QueueError>> {
        Box::pin(async { Err(QueueError::Unavailable("no daemon".into())) })
    }
    fn register_session<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<String, QueueError>> {
        Box::pin(async { Err(QueueError::Unavailable("no daemon".into())) })
    }
    fn claim<'a>(
        &'a self,
        _: i64,
        _: &'a str,
    ) -> BoxFuture<'a, Result<kite_strategy::Claim, QueueError>> {
        Box::pin(async { Err(QueueError::Unavailable("no daemon".into())) })
    }
    fn done<'a>(
        &'a self,
        _: &'a kite_strategy::Claim,
        _: &'a str,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async { Err(QueueError::Unavailable("no daemon".into())) })
    }
    fn fail<'a>(
        &'a self,
        _: &'a kite_strategy::Claim,
        _: &'a str,
        _: bool,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async { Err(QueueError::Unavailable("no daemon".into())) })
    }
    fn requeue_uncounted<'a>(
        &'a self,
        _: &'a kite_strategy::Claim,
        _: &'a str,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async { Err(QueueError::Unavailable("no daemon".into())) })
    }
    fn stop_order<'a>(
        &'a self,
        _: &'a str,
        _: Option<f64>,
    ) -> BoxFuture<'a, Result<Option<(String, String)>, QueueError>> {
        Box::pin(async { Err(QueueError::Unavailable("no daemon".into())) })
    }
    fn record_cost<'a>(
        &'a self,
        _: &'a kite_strategy::AttemptCost,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async { Err(QueueError::Unavailable("no daemon".into())) })
    }
    fn agent_spend_today(&self) -> BoxFuture<'_, Result<f64, QueueError>> {
        Box::pin(async { Err(QueueError::Unavailable("no daemon".into())) })
    }
}

#[derive(Serialize)]
struct TemplateRow {
    #[serde(flatten)]
    info: kite_strategy::TemplateInfo,
    /// When it next runs (RFC 3339); `None` for templates that run on every tick or interval
    /// (they run in the loop's next round).
    next_run: Option<String>,
    /// How its tasks fared; `None` without a running daemon.
    track_record: Option<TrackRecord>,
    /// Why the loop holds it to one open task, when its record does.
    #[serde(skip_serializing_if = "Option::is_none")]
    throttled: Option<String>,
}

#[derive(Serialize)]
struct TemplatesOut {
    dir: String,
    templates: Vec<TemplateRow>,
    errors: Vec<kite_strategy::TemplateError>,
}

async fn templates(ctx: &Ctx) -> Result<()> {
    let cfg = sched_config(ctx)?;
    let dir = ctx.places.root.join(&cfg.prompts_dir);
    let s = Scheduler::new(cfg, &ctx.places.root, Arc::new(NoQueue), None);
    // Track records only when a daemon answers; listing works without one.
    let track = match ctx.client().await {
        Ok(c) => template_counts(&c, Some(ctx)).await.ok(),
        Err(_) => None,
    };
    let mut rows = Vec::new();
    let mut next_human = Vec::new();
    for (t, (info, next)) in s.templates().iter().zip(s.template_infos()) {
        let next = match t.cadence {
            Cadence::Cron(_) => next,
            Cadence::EveryTick | Cadence::Every(_) => None,
        };
        next_human.push(
            next.map(|n| n.to_string())
                .unwrap_or_else(|| "next tick".into()),
        );
        rows.push(TemplateRow {
            next_run: next.map(|n| n.to_rfc3339()),
            track_record: track
                .as_ref()
                .map(|m| m.get(&t.name).copied().unwrap_or_default()),
            throttled: track
                .as_ref()
                .and_then(|m| m.get(&t.name))
                .and_then(|r| r.throttle(&ctx.config.sched.quality)),
            info,
        });
    }
    let out = TemplatesOut {
        dir: dir.display().to_string(),
        templates: rows,
        errors: s.template_errors().to_vec(),
    };
    if ctx.json {
        return output::json(&out);
    }
    if out.templates.is_empty() && out.errors.is_empty() {
        return output::line(format!("no templates in {}", out.dir));
    }
    let table: Vec<[String; 5]> = out
        .templates
        .iter()
        .zip(next_human)
        .map(|(r, next)| {
            [
                r.info.name.clone(),
                r.info.schedule.clone(),
                next,
                r.info.workstream.clone().unwrap_or_else(|| "-".into()),
                match (r.info.origin.as_str(), r.info.overrides) {
                    ("built-in", _) => "built-in".to_string(),
                    (f, true) => format!(
                        "{} (overrides the built-in)",
                        relative(&ctx.places.root, Path::new(f))
                    ),
                    (f, false) => relative(&ctx.places.root, Path::new(f)),
                },
            ]
        })
        .collect();
    let header = ["NAME", "SCHEDULE", "NEXT RUN", "WORKSTREAM", "ORIGIN"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &table {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    for (i, row) in std::iter::once(&header).chain(&table).enumerate() {
        let mut line = String::new();
        for (j, (c, w)) in row.iter().zip(widths).enumerate() {
            if j + 1 == row.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  "));
            }
        }
        output::line(line.trim_end())?;
        if i > 0 {
            let r = &out.templates[i - 1];
            let mut extra = vec![format!("priority {}", r.info.priority)];
            if let Some(m) = r.info.max_open {
                extra.push(format!("max_open {m}"));
            }
            if let Some(st) = &r.info.stale_after {
                extra.push(format!("stale after {st}"));
            }
            if let Some(f) = &r.info.for_each {
                extra.push(format!("for each {f}"));
            }
            if let Some(c) = &r.info.command {
                extra.push(format!("audit by `{c}`"));
            }
            if let Some(a) = &r.info.agent {
                extra.push(format!("audit by {a} (read-only)"));
            }
            if let Some(t) = &r.track_record {
                extra.push(format!(
                    "{} done, {} failed, {} pruned",
                    t.done, t.failed, t.pruned
                ));
                if let Some(m) = t.median_survival_7d {
                    extra.push(format!(
                        "{:.0}% of its landed lines kept after 7 days (median of {})",
                        m * 100.0,
                        t.measured
                    ));
                }
                if t.reverted > 0 {
                    extra.push(format!("{} reverted", t.reverted));
                }
            }
            if let Some(why) = &r.throttled {
                extra.push(why.clone());
            }
            output::line(format!("    {}", extra.join(", ")))?;
        }
    }
    if !out.errors.is_empty() {
        output::line("broken templates:")?;
        for e in &out.errors {
            output::line(format!(
                "  {}: {}",
                relative(&ctx.places.root, Path::new(&e.file)),
                e.message.replace('\n', " ")
            ))?;
        }
    }
    Ok(())
}

fn eject(ctx: &Ctx, name: &str, force: bool) -> Result<()> {
    let Some(b) = kite_strategy::builtin::prompt(name) else {
        let names: Vec<&str> = kite_strategy::builtin::PROMPTS
            .iter()
            .map(|b| b.name())
            .collect();
        anyhow::bail!(
            "no built-in template or prompt named {name:?}; built-in: {}",
            names.join(", ")
        );
    };
    let dir = ctx.places.root.join(&ctx.config.sched.prompts_dir);
    let path = dir.join(b.file);
    if path.exists() && !force {
        anyhow::bail!("{} already exists; it already overrides the built-in (use --force to replace it with the built-in text)", path.display());
    }
    kite_core::files::write_atomic(&path, b.text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    if ctx.json {
        return output::json(&serde_json::json!({"name": b.name(), "path": path}));
    }
    output::line(format!(
        "wrote {}; edit it there, it now overrides the built-in {}",
        path.display(),
        b.name()
    ))
}

fn relative(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

// ---------------------------------------------------------------------------------------------
// kite sched tick

async fn tick(ctx: &Ctx, dry_run: bool) -> Result<()> {
    let cfg = sched_config(ctx)?;
    let client = Arc::new(ctx.client().await?);
    let queue = Arc::new(ClientQueue::new(client).with_quality(Arc::new(
        kite_daemon::quality::QualitySource::new(&ctx.places.root, ctx.config.merge.clone()),
    )));
    let mut s = Scheduler::new(cfg, &ctx.places.root, queue, note_source(ctx));
    let r = s
        .tick(TickOptions {
            dry_run,
            all: true,
            now: None,
        })
        .await;
    if ctx.json {
        output::json(&r)
    } else {
        print_tick(&r)
    }
}

fn score_parts(s: &Score) -> String {
    // `+ 0.0` turns a negative zero (no conflicts) into a plain one.
    format!(
        "score {:.2} = priority {:.2} + age {:.2} + unblocks {:.2} + conflicts {:.2} + track record {:.2}",
        s.total + 0.0,
        s.priority + 0.0,
        s.age + 0.0,
        s.unblocks + 0.0,
        s.conflicts + 0.0,
        s.track_record + 0.0
    )
}

fn target(t: &Target) -> String {
    match t {
        Target::Task { id } => format!("#{id}"),
        Target::Candidate { index } => format!("candidate [{index}]"),
    }
}

fn decision(d: &Decision) -> String {
    let by = d
        .superseded_by
        .as_ref()
        .map(|b| format!(" by {}", target(b)))
        .unwrap_or_default();
    let tpl = d
        .template
        .as_deref()
        .map(|t| format!(" ({t})"))
        .unwrap_or_default();
    let kind = serde_json::to_value(d.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    format!(
        "{} {:?}{tpl}: {kind}{by}: {}; {}",
        target(&d.target),
        d.title,
        d.reason,
        score_parts(&d.score)
    )
}

fn print_tick(r: &TickReport) -> Result<()> {
    let mode = if r.dry_run {
        " (dry run: nothing created or pruned)"
    } else {
        ""
    };
    output::line(format!(
        "tick at {}{mode}: {} templates, {} candidates, {} queued, {} superseded, {} pruned, {} errors",
        r.at,
        r.templates.len(),
        r.candidates.len(),
        r.queued.len(),
        r.superseded.len(),
        r.pruned.len(),
        r.errors.len()
    ))?;
    if !r.templates.is_empty() {
        output::line("templates:")?;
        for t in &r.templates {
            let mut s = format!("  {}: {} candidates", t.name, t.candidates);
            if let Some(why) = &t.skipped {
                s.push_str(&format!(", skipped ({why})"));
            }
            if let Some(e) = &t.error {
                s.push_str(&format!(", error: {}", e.replace('\n', " ")));
            }
            if let Some(why) = &t.throttled {
                s.push_str(&format!(", {why}"));
            }
            output::line(s)?;
        }
    }
    if !r.candidates.is_empty() {
        output::line("candidates:")?;
        for c in &r.candidates {
            let id = c.task_id.map(|id| format!(" #{id}")).unwrap_or_default();
            output::line(format!(
                "  [{}] {:?} ({}): {}{id}",
                c.index, c.candidate.title, c.candidate.template, c.outcome
            ))?;
            output::line(format!("      why: {}", c.why))?;
            output::line(format!("      scored: {}", c.scored))?;
        }
    }
    if !r.queued.is_empty() {
        output::line(if r.dry_run { "would queue:" } else { "queued:" })?;
        for q in &r.queued {
            let id = q.id.map(|id| format!("#{id} ")).unwrap_or_default();
            output::line(format!("  {id}{:?} ({})", q.title, q.template))?;
        }
    }
    if !r.unchanged.is_empty() {
        output::line("unchanged:")?;
        for u in &r.unchanged {
            output::line(format!(
                "  [{}] already open as #{}: {}",
                u.index, u.task_id, u.reason
            ))?;
        }
    }
    if !r.superseded.is_empty() {
        output::line("superseded:")?;
        for d in &r.superseded {
            output::line(format!("  {}", decision(d)))?;
        }
    }
    if !r.pruned.is_empty() {
        output::line("pruned:")?;
        for d in &r.pruned {
            output::line(format!("  {}", decision(d)))?;
        }
    }
    if !r.not_queued.is_empty() {
        output::line("not queued:")?;
        for n in &r.not_queued {
            output::line(format!("  {}:{}: {:?}: {}", n.file, n.line, n.text, n.why))?;
        }
    }
    if !r.errors.is_empty() {
        output::line("errors:")?;
        for e in &r.errors {
            output::line(format!("  {}: {}", e.source, e.message.replace('\n', " ")))?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// kite spawn

/// Runs an agent for the task now and waits for it: exit 0 when the task is done, 1 otherwise.
/// Interrupted (SIGINT/SIGTERM), the agent is killed and its session ended, so the task goes back
/// to pending.
pub(crate) async fn spawn(ctx: &Ctx, a: SpawnArgs) -> Result<()> {
    let cfg = runner_config(ctx)?;
    let client = Arc::new(ctx.client().await?);
    let queue = Arc::new(ClientQueue::new(client.clone()));
    let runner = Runner::new(
        cfg,
        &ctx.places.root,
        &ctx.places.home,
        queue.clone(),
        client,
    );
    let mut handle = runner
        .spawn(a.task)
        .await
        .with_context(|| format!("cannot start an agent for task {}", a.task))?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let finished = tokio::select! {
        r = &mut handle => Some(r.context("the agent run stopped unexpectedly")?),
        _ = tokio::signal::ctrl_c() => None,
        _ = term.recv() => None,
    };
    let Some(report) = finished else {
        // Dropping the run kills the agent's process group; ending its session requeues the task.
        handle.abort();
        let _ = handle.await;
        queue.end_all_sessions().await;
        anyhow::bail!(
            "interrupted: the agent for task {} was stopped and the task put back to pending",
            a.task
        );
    };
    if ctx.json {
        output::json(&report)?;
    } else {
        print_run(&report)?;
    }
    match &report.outcome {
        RunOutcome::Done { .. } => Ok(()),
        RunOutcome::Failed { error } => anyhow::bail!("task {} failed: {error}", report.task_id),
        RunOutcome::Lost { reason } => {
            anyhow::bail!("task {}: the run was lost: {reason}", report.task_id)
        }
        RunOutcome::Stopped { reason } => {
            anyhow::bail!("task {}: the agent was stopped: {reason}", report.task_id)
        }
    }
}

fn print_run(r: &RunReport) -> Result<()> {
    let n = r.attempts.len();
    let what = match &r.outcome {
        RunOutcome::Done { .. } => "done".to_string(),
        RunOutcome::Failed { .. } => "failed".to_string(),
        RunOutcome::Lost { reason } => format!("lost ({reason})"),
        RunOutcome::Stopped { reason } => format!("stopped ({reason})"),
    };
    output::line(format!(
        "task {}: {what} after {n} attempt{}",
        r.task_id,
        if n == 1 { "" } else { "s" }
    ))?;
    for (i, at) in r.attempts.iter().enumerate() {
        output::line(format!("  {}", attempt_line(i + 1, at)))?;
    }
    if let Some(w) = &r.worktree {
        let fate = if r.worktree_kept {
            "kept"
        } else {
            "removed; the branch stays"
        };
        output::line(format!(
            "  worktree {} on branch {} ({fate})",
            w.dir.display(),
            w.branch
        ))?;
    }
    match &r.outcome {
        RunOutcome::Done { result } if !result.is_empty() => {
            output::line("result:")?;
            for l in result.lines() {
                output::line(format!("  {l}"))?;
            }
        }
        RunOutcome::Failed { error } => output::line(format!("error: {error}"))?,
        _ => {}
    }
    Ok(())
}

fn attempt_line(n: usize, a: &Attempt) -> String {
    let mut s = format!(
        "attempt {n} (session {}, {} ms): {}",
        a.session_id,
        a.duration_ms,
        a.exit.replace('\n', " ")
    );
    if a.transient {
        s.push_str(", transient");
    }
    if let Some(b) = a.backoff_ms {
        s.push_str(&format!("; retried after {b} ms"));
    }
    if let Some(c) = &a.cost {
        s.push_str(&format!("; ${:.4}, {} tokens", c.usd, c.usage.total()));
    }
    if !a.denials.is_empty() {
        s.push_str(&format!("; refused: {}", a.denials.join("; ")));
    }
    s
}

// ---------------------------------------------------------------------------------------------
// In the daemon

/// The strategy loop (every `tick`, else `[sched] tick`; a zero tick leaves it off) and, when
/// `max_agents` (else `[runner] max_agents`) is above 0, the runner, as the daemon's component.
/// A bad `[sched]` or `[runner]` section is logged and leaves that part off.
pub(crate) fn background(
    ctx: &Ctx,
    tick: Option<Duration>,
    max_agents: Option<usize>,
) -> kite_daemon::sched::Sched {
    let sched = match sched_config(ctx) {
        Ok(mut c) => {
            if let Some(t) = tick {
                c.tick = t;
            }
            if c.tick.is_zero() {
                tracing::info!("strategy loop off (tick 0): only `kite sched tick` runs a round");
            }
            (!c.tick.is_zero()).then_some(c)
        }
        Err(e) => {
            tracing::error!("strategy loop off: {e:#}");
            None
        }
    };
    let runner = match runner_config(ctx) {
        Ok(mut c) => {
            if let Some(n) = max_agents {
                c.max_agents = n;
            }
            // A landing a killed process left half done is finished by the daemon's runner,
            // even one that starts no agents of its own (the book is asked once it runs).
            (c.max_agents > 0 || c.merge.land).then_some(c)
        }
        Err(e) => {
            tracing::error!("runner off: {e:#}");
            None
        }
    };
    kite_daemon::sched::Sched::start(kite_daemon::sched::SchedParts {
        sched,
        runner,
        root: ctx.places.root.clone(),
        home: ctx.places.home.clone(),
        socket: ctx.places.socket(),
        notes: note_source(ctx),
        merge: ctx.config.merge.clone(),
    })
}
