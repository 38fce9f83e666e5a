//! The strategy loop: one tick gathers context, renders the due templates, plans, and applies the
//! plan to the queue; [`Scheduler::run`] ticks until shutdown.
//!
//! Everything a tick decides lands in a [`TickReport`] (`kite sched tick --dry-run --json`): the
//! candidates with their score parts, what was queued, left unchanged, superseded or pruned and
//! why, and every provider, template or queue error. Failures are collected, never fatal: a round
//! with a broken provider still runs the templates that do not need it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::audit::{run_audit, run_claude_audit};
use crate::config::SchedConfig;
use crate::context::{git_context, queue_context, shell_context, NoteSource, Provided, ProviderError};
use crate::plan::{plan, Candidate, Decision, Plan, PlanInput, Target, Unchanged};
use crate::queue::{ListFilter, PruneNote, Queue, QueueStats};
use crate::schedule::Cadence;
use crate::score::Score;
use crate::task::{Task, TaskStatus};
use crate::template::{Template, TemplateError, TemplateInfo, TemplateSet};

/// How to run a tick.
#[derive(Debug, Clone, Copy, Default)]
pub struct TickOptions {
    /// Plan and report only: nothing is created or pruned, schedules do not advance.
    pub dry_run: bool,
    /// Run every template now, whatever its schedule (`kite sched tick`).
    pub all: bool,
    /// The time the round is for; default: now.
    pub now: Option<DateTime<Utc>>,
}

/// What one template did this round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateRun {
    pub name: String,
    pub candidates: usize,
    pub skipped: Option<String>,
    pub error: Option<String>,
    /// Why its open tasks are held to one (its record: [`crate::score::TrackRecord::throttle`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttled: Option<String>,
}

/// A candidate with its score and fate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateReport {
    pub index: usize,
    #[serde(flatten)]
    pub candidate: Candidate,
    pub score: Score,
    /// `queued`, `unchanged`, `superseded` or `pruned`.
    pub outcome: String,
    /// The created task, once queued (not in a dry run).
    pub task_id: Option<i64>,
    /// Why it exists, in words: its template's description and what the template found.
    #[serde(default)]
    pub why: String,
    /// Its score in words ([`Score::explain`]).
    #[serde(default)]
    pub scored: String,
}

/// A queued candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Queued {
    pub index: usize,
    pub title: String,
    pub template: String,
    pub id: Option<i64>,
}

/// Milliseconds spent per phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    pub context_ms: f64,
    pub render_ms: f64,
    pub plan_ms: f64,
    pub apply_ms: f64,
}

/// Everything one round decided and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TickReport {
    pub at: DateTime<Utc>,
    pub dry_run: bool,
    pub templates: Vec<TemplateRun>,
    pub candidates: Vec<CandidateReport>,
    pub queued: Vec<Queued>,
    pub unchanged: Vec<Unchanged>,
    pub superseded: Vec<Decision>,
    pub pruned: Vec<Decision>,
    /// What a provider found and set aside, with why (a marker gated on a future condition).
    pub not_queued: Vec<NotQueued>,
    pub errors: Vec<ProviderError>,
    pub timings: Timings,
}

/// Something a provider found that is not work for today.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotQueued {
    pub file: String,
    pub line: u64,
    pub text: String,
    pub why: String,
}

/// Rounds kept for the dashboard.
const ROUNDS_KEPT: usize = 20;

/// The strategy loop over a queue.
pub struct Scheduler {
    cfg: SchedConfig,
    repo: PathBuf,
    queue: Arc<dyn Queue>,
    notes: Option<Arc<dyn NoteSource>>,
    set: TemplateSet,
    fingerprint: Vec<(PathBuf, Option<std::time::SystemTime>, u64)>,
    next_due: HashMap<String, DateTime<Utc>>,
}

impl Scheduler {
    /// Loads the built-in templates (unless `builtin_templates` is off) and those in
    /// `repo/<prompts_dir>`.
    pub fn new(cfg: SchedConfig, repo: impl Into<PathBuf>, queue: Arc<dyn Queue>, notes: Option<Arc<dyn NoteSource>>) -> Self {
        let repo = repo.into();
        let dir = repo.join(&cfg.prompts_dir);
        let set = TemplateSet::load(cfg.builtin_templates, &dir);
        let fingerprint = fingerprint(&dir);
        Scheduler { cfg, repo, queue, notes, set, fingerprint, next_due: HashMap::new() }
    }

    /// Reloads the templates (edits in prompts/ take effect); schedules carry over by name.
    pub fn reload(&mut self) {
        self.set = TemplateSet::load(self.cfg.builtin_templates, &self.repo.join(&self.cfg.prompts_dir));
        self.fingerprint = fingerprint(&self.repo.join(&self.cfg.prompts_dir));
    }

    /// Reloads only when a template file was added, removed or modified since the last load
    /// (a stat per file instead of re-compiling every template every tick).
    pub fn reload_if_changed(&mut self) -> bool {
        let now = fingerprint(&self.repo.join(&self.cfg.prompts_dir));
        if now == self.fingerprint {
            return false;
        }
        self.reload();
        true
    }

    pub fn templates(&self) -> &[Template] {
        &self.set.templates
    }

    pub fn template_errors(&self) -> &[TemplateError] {
        &self.set.errors
    }

    /// For `kite sched templates`: each template and when it next runs.
    pub fn template_infos(&self) -> Vec<(TemplateInfo, Option<DateTime<Utc>>)> {
        let now = Utc::now();
        self.set
            .templates
            .iter()
            .map(|t| (t.info(), self.next_due.get(&t.name).copied().or_else(|| first_due(&t.cadence, now))))
            .collect()
    }

    fn due(&mut self, now: DateTime<Utc>, all: bool) -> Vec<usize> {
        let mut v = Vec::new();
        for (i, t) in self.set.templates.iter().enumerate() {
            let next = *self.next_due.entry(t.name.clone()).or_insert_with(|| first_due(&t.cadence, now).unwrap_or(now));
            if all || next <= now {
                v.push(i);
            }
        }
        v
    }

    /// Ticks every `cfg.tick` until `shutdown` resolves, reloading templates that changed.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        // A zero period would panic in tokio; a typo in kite.toml must not.
        let mut interval = tokio::time::interval(self.cfg.tick.max(std::time::Duration::from_millis(100)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = interval.tick() => {
                    if self.reload_if_changed() {
                        tracing::info!(templates = self.set.templates.len(), errors = self.set.errors.len(), "templates reloaded");
                    }
                    let r = self.tick(TickOptions::default()).await;
                    self.record_round(&r);
                    tracing::info!(
                        templates = r.templates.len(), queued = r.queued.len(), superseded = r.superseded.len(),
                        pruned = r.pruned.len(), errors = r.errors.len(), "strategy tick"
                    );
                    for e in &r.errors {
                        tracing::warn!(source = %e.source, "{}", e.message);
                    }
                }
            }
        }
    }

    /// Keeps the last rounds (what each queued, superseded and pruned, and why) in
    /// `<state_dir>/sched/rounds.jsonl` for the dashboard.
    fn record_round(&self, r: &TickReport) {
        let Some(dir) = &self.cfg.state_dir else { return };
        let path = kite_core::Home::new(dir).rounds();
        let line = json!({
            "at": r.at, "templates": r.templates, "queued": r.queued, "superseded": r.superseded,
            "pruned": r.pruned, "not_queued": r.not_queued.len(), "errors": r.errors,
            "candidates": r.candidates.len(), "timings": r.timings,
        });
        let mut lines: Vec<String> = std::fs::read_to_string(&path).unwrap_or_default().lines().map(str::to_string).collect();
        lines.push(line.to_string());
        let keep = lines.len().saturating_sub(ROUNDS_KEPT);
        let text = lines[keep..].join("\n") + "\n";
        let written = kite_core::files::write_atomic(&path, text.as_bytes());
        if let Err(e) = written {
            tracing::debug!("rounds not kept in {}: {e}", path.display());
        }
    }

    /// One round. See the module documentation: context, render, plan, apply, each a phase
    /// below with the round's errors and timings carried in a [`Round`].
    #[tracing::instrument(skip_all, fields(dry_run = opts.dry_run))]
    pub async fn tick(&mut self, opts: TickOptions) -> TickReport {
        let now = opts.now.unwrap_or_else(Utc::now);
        let errors = self.set.errors.iter().map(|e| ProviderError { source: "template".into(), message: e.to_string() }).collect();
        let mut r = Round { now, dry_run: opts.dry_run, errors, ..Round::default() };
        let due = self.due(now, opts.all);

        let t0 = Instant::now();
        let mut tctx = self.context(&due, &mut r).await;
        r.timings.context_ms = ms(t0);

        let t0 = Instant::now();
        for &i in &due {
            self.render_template(i, &mut tctx, &mut r).await;
            let t = &self.set.templates[i];
            if let (false, Some(next)) = (r.dry_run, t.cadence.next_after(now)) {
                self.next_due.insert(t.name.clone(), next);
            }
        }
        r.timings.render_ms = ms(t0);

        let (tasks, stats) = match self.load_tasks().await {
            Ok(x) => x,
            Err(message) => {
                r.errors.push(ProviderError { source: "queue".into(), message: format!("cannot plan: {message}") });
                return r.report(vec![], vec![], vec![], vec![], vec![]);
            }
        };
        let t0 = Instant::now();
        let mut max_open: HashMap<String, usize> =
            self.set.templates.iter().filter_map(|t| t.meta.max_open.map(|m| (t.name.clone(), m))).collect();
        // A template whose work keeps failing or being pruned gets one open task at a time.
        for run in r.runs.iter_mut() {
            if let Some(why) = stats.by_template.get(&run.name).and_then(|r| r.throttle(&self.cfg.quality)) {
                let m = max_open.entry(run.name.clone()).or_insert(1);
                *m = (*m).min(1);
                tracing::info!(template = %run.name, "{why}");
                run.throttled = Some(why);
            }
        }
        let p = plan(&PlanInput {
            now_ms: now.timestamp_millis(),
            tasks: &tasks,
            candidates: &r.candidates,
            max_open: &max_open,
            max_open_global: self.cfg.max_open,
            track: &stats.by_template,
            weights: &self.cfg.weights,
            complete: &r.complete,
        });
        r.timings.plan_ms = ms(t0);

        let t0 = Instant::now();
        let (created, superseded, pruned) = self.apply(&p, &mut r).await;
        r.timings.apply_ms = ms(t0);

        let mut outcome: HashMap<usize, &str> = p.queue.iter().map(|&i| (i, "queued")).collect();
        for u in &p.unchanged {
            outcome.insert(u.index, "unchanged");
        }
        for (list, what) in [(&superseded, "superseded"), (&pruned, "pruned")] {
            for d in list.iter() {
                if let Target::Candidate { index } = d.target {
                    outcome.insert(index, what);
                }
            }
        }
        let candidate_reports = r
            .candidates
            .iter()
            .enumerate()
            .map(|(i, c)| CandidateReport {
                index: i,
                candidate: c.clone(),
                score: p.candidate_scores[i],
                outcome: outcome.get(&i).copied().unwrap_or("dropped").to_string(),
                task_id: created.get(&i).copied(),
                why: self.why(c),
                scored: p.candidate_scores[i].explain(),
            })
            .collect();
        let queued = p
            .queue
            .iter()
            .map(|&i| Queued {
                index: i,
                title: r.candidates[i].title.clone(),
                template: r.candidates[i].template.clone(),
                id: created.get(&i).copied(),
            })
            .collect();
        r.report(candidate_reports, queued, p.unchanged, superseded, pruned)
    }

    /// The round's context: the clock and repository, and, when a template is due, git, the
    /// queue, the providers the due templates need and the vault's notes for their topics.
    async fn context(&self, due: &[usize], r: &mut Round) -> tera::Context {
        let mut ctx = serde_json::Map::new();
        ctx.insert("now".into(), json!(r.now.to_rfc3339()));
        ctx.insert("repo".into(), json!(self.repo.display().to_string()));
        if !due.is_empty() {
            match git_context(&self.repo, self.cfg.git_commits, self.cfg.max_markers).await {
                Ok(v) => {
                    r.not_queued = serde_json::from_value(v["markers_not_queued"].clone()).unwrap_or_default();
                    ctx.insert("git".into(), v);
                }
                Err(e) => r.errors.push(ProviderError { source: "git".into(), message: e.to_string() }),
            }
            match queue_context(self.queue.as_ref()).await {
                Ok(v) => drop(ctx.insert("queue".into(), v)),
                Err(e) => r.errors.push(ProviderError { source: "queue".into(), message: e.to_string() }),
            }
            let needed: HashSet<String> = due.iter().flat_map(|&i| self.set.templates[i].needs()).collect();
            self.providers(&needed, &mut ctx, r).await;
        }
        self.vault_topics(due, r).await;
        // One tera context for the whole round; templates set their own keys in it.
        let mut tctx = tera::Context::new();
        for (k, v) in &ctx {
            tctx.insert(k.as_str(), v);
        }
        tctx
    }

    /// The configured providers the due templates need, then the built-in ones (`tests`,
    /// `issues`) for the names no configured provider takes.
    async fn providers(&self, needed: &HashSet<String>, ctx: &mut serde_json::Map<String, Value>, r: &mut Round) {
        for (name, p) in &self.cfg.providers {
            if !needed.contains(name) {
                continue;
            }
            match shell_context(&self.repo, p, self.cfg.provider_timeout).await {
                Ok(v) => drop(ctx.insert(name.clone(), v)),
                Err(e) => r.errors.push(ProviderError { source: name.clone(), message: e.to_string() }),
            }
        }
        for name in ["tests", "issues", "quality"] {
            if !needed.contains(name) || self.cfg.providers.contains_key(name) {
                continue;
            }
            let got = match name {
                "tests" if !self.cfg.tests.detect => Ok(Provided::Unavailable(
                    "[sched.tests] detect is off and no [sched.providers.tests] is configured".into(),
                )),
                "tests" => {
                    let state = self.cfg.state_dir.clone().unwrap_or_else(std::env::temp_dir);
                    kite_testrun::tests_context(&self.repo, &state, &self.cfg.tests).await.map_err(crate::SourceError::from)
                }
                "quality" => crate::quality::quality_context(&self.repo, self.cfg.state_dir.as_deref(), self.cfg.target.as_deref(), self.queue.as_ref(), &self.cfg.quality).await,
                _ => crate::issues::issues_context(&self.repo, &self.cfg.issues).await,
            };
            match got {
                Ok(Provided::Context(v)) => drop(ctx.insert(name.into(), v)),
                Ok(Provided::Unavailable(why)) => drop(r.unavailable.insert(name.to_string(), why)),
                Err(e) => r.errors.push(ProviderError { source: name.into(), message: e.to_string() }),
            }
        }
    }

    /// The vault's notes for each due template's topic (once per topic).
    async fn vault_topics(&self, due: &[usize], r: &mut Round) {
        for &i in due {
            let Some(topic) = self.set.templates[i].meta.topic.clone() else { continue };
            if r.vault.contains_key(&topic) {
                continue;
            }
            let k = self.set.templates[i].meta.vault_k.unwrap_or(self.cfg.vault_k);
            let hits = match &self.notes {
                None => json!([]),
                Some(n) => match n.search(&topic, k).await {
                    Ok(h) => json!(h),
                    Err(e) => {
                        r.errors.push(ProviderError { source: "vault".into(), message: e.to_string() });
                        json!([])
                    }
                },
            };
            r.vault.insert(topic, hits);
        }
    }

    /// Why template `i` cannot run here (an audit program missing, a built-in provider
    /// unavailable), if it cannot.
    fn cannot_run(&self, i: usize, r: &Round) -> Option<String> {
        let t = &self.set.templates[i];
        let missing = match (&t.meta.agent, &t.meta.command) {
            (Some(_), _) => kite_agent::claude::find(self.cfg.claude.as_deref()).err().map(|_| "claude".to_string()),
            (None, Some(c)) => crate::audit::missing_program(c, &self.repo),
            (None, None) => None,
        };
        match missing {
            Some(program) => Some(format!("`{program}` is not installed (not on PATH); the audit runs once it is")),
            None => t.needs().iter().find_map(|n| r.unavailable.get(n)).cloned(),
        }
    }

    /// Renders template `i` into candidates (through its audit, when it has one).
    async fn render_template(&self, i: usize, tctx: &mut tera::Context, r: &mut Round) {
        let t = &self.set.templates[i];
        let mut run = TemplateRun { name: t.name.clone(), candidates: 0, skipped: None, error: None, throttled: None };
        match &t.meta.topic {
            Some(topic) => tctx.insert("vault", r.vault.get(topic).unwrap_or(&json!([]))),
            None => drop(tctx.remove("vault")),
        }
        let before = r.candidates.len();
        // A template whose audit program or built-in provider cannot run here is skipped with
        // the reason (and its schedule moves on), not reported as an error every round.
        if let Some(why) = self.cannot_run(i, r) {
            run.skipped = Some(why);
        } else {
            let mut listed: Option<String> = None;
            match t.render_in(tctx) {
                Err(e) => run.error = Some(e.to_string()),
                Ok(out) => {
                    // A provider says when its list may be partial (a build that failed, a
                    // listing cut at its limit): then nothing is resolved by absence.
                    listed = match (t.meta.retire_missing, &out.skipped, &t.meta.for_each) {
                        (true, None, Some(list)) => {
                            let root = list.split('.').next().unwrap_or_default();
                            (tctx.get(root).and_then(|v| v.get("complete")) != Some(&Value::Bool(false))).then(|| list.clone())
                        }
                        _ => None,
                    };
                    run.skipped = out.skipped;
                    for item in out.items {
                        self.candidates_of(t, item, &mut run, r).await;
                    }
                }
            }
            if let Some(e) = &run.error {
                r.errors.push(ProviderError { source: format!("template:{}", t.name), message: e.clone() });
            }
            // Complete only when every item made it into candidates (an audit that failed
            // dropped some: their tasks are not resolved by that).
            if let (Some(list), None) = (listed, &run.error) {
                r.complete.insert(t.name.clone(), list);
            }
            run.candidates = r.candidates.len() - before;
        }
        r.runs.push(run);
    }

    /// One rendered item's candidates: itself, or what its audit proposed.
    async fn candidates_of(&self, t: &Template, item: crate::template::Rendered, run: &mut TemplateRun, r: &mut Round) {
        let audit = match (&t.meta.agent, &t.meta.command) {
            (None, None) => None,
            (Some(_), _) => Some(match kite_agent::claude::find(self.cfg.claude.as_deref()) {
                Ok(binary) => run_claude_audit(&binary, &item.body, &self.repo, self.cfg.audit_timeout).await,
                Err(e) => Err(crate::SourceError::NoAgent(e)),
            }),
            (None, Some(cmd)) => Some(run_audit(cmd, &item.body, &self.repo, self.cfg.audit_timeout).await),
        };
        match audit {
            None => r.candidates.push(candidate(t, item.title, item.body, None, item.files, item.dedup_key)),
            Some(Err(e)) => run.error = Some(format!("strategy audit: {e}")),
            Some(Ok(a)) => {
                for why in a.rejected {
                    r.errors.push(ProviderError { source: format!("template:{}", t.name), message: format!("audit output rejected: {why}") });
                }
                for x in a.tasks {
                    let files = if x.files.is_empty() { item.files.clone() } else { x.files };
                    r.candidates.push(candidate(t, x.title, x.body, x.priority, files, x.dedup_key));
                }
            }
        }
    }

    /// Applies a plan: creates first, so supersessions can name the task that replaces the old
    /// one, then prunes. Returns the created tasks by candidate, and the supersessions and prunes
    /// with those names. A dry run changes nothing.
    async fn apply(&self, p: &Plan, r: &mut Round) -> (HashMap<usize, i64>, Vec<Decision>, Vec<Decision>) {
        let mut created: HashMap<usize, i64> = HashMap::new();
        let mut superseded = p.superseded.clone();
        let mut pruned = p.pruned.clone();
        if r.dry_run {
            return (created, superseded, pruned);
        }
        for &i in &p.queue {
            match self.queue.create(r.candidates[i].to_new_task()).await {
                Ok(id) => drop(created.insert(i, id)),
                Err(e) => r.errors.push(ProviderError { source: "queue".into(), message: format!("create {:?}: {e}", r.candidates[i].title) }),
            }
        }
        for d in superseded.iter_mut().chain(pruned.iter_mut()) {
            if let Some(Target::Candidate { index }) = d.superseded_by {
                if let Some(id) = created.get(&index) {
                    d.superseded_by = Some(Target::Task { id: *id });
                }
            }
            let Target::Task { id } = d.target else { continue };
            let by = match d.superseded_by {
                Some(Target::Task { id }) => Some(id),
                _ => None,
            };
            let note = PruneNote { kind: d.kind, reason: d.reason.clone(), superseded_by: by, score: Some(d.score) };
            if let Err(e) = self.queue.prune(id, note).await {
                r.errors.push(ProviderError { source: "queue".into(), message: format!("prune #{id}: {e}") });
            }
        }
        (created, superseded, pruned)
    }

    /// Why a candidate exists, in words: its template's description and the first line of what
    /// it found (the rendered body).
    fn why(&self, c: &Candidate) -> String {
        let about = self
            .set
            .templates
            .iter()
            .find(|t| t.name == c.template)
            .and_then(|t| t.meta.description.as_deref().map(|d| d.trim().trim_end_matches('.').to_string()));
        // The body's first line, and the next when the first introduces it ("... a file:").
        let mut lines = c.body.lines().map(str::trim).filter(|l| !l.is_empty());
        let found = lines.next().map(|first| match (first.ends_with(':'), lines.next()) {
            (true, Some(next)) => format!("{first} {next}"),
            _ => first.to_string(),
        });
        let found = found.map(|f| f.chars().take(200).collect::<String>());
        match (about, found) {
            (Some(a), Some(f)) => format!("{} ({a}): {f}", c.template),
            (Some(a), None) => format!("{} ({a})", c.template),
            (None, Some(f)) => format!("{}: {f}", c.template),
            (None, None) => c.template.clone(),
        }
    }

    /// Open tasks plus the tasks they depend on, and the per-template track record.
    async fn load_tasks(&self) -> Result<(Vec<Task>, QueueStats), String> {
        let mut tasks = self
            .queue
            .list(&ListFilter::statuses(&[TaskStatus::Pending, TaskStatus::Active]))
            .await
            .map_err(|e| e.to_string())?;
        let known: HashSet<i64> = tasks.iter().map(|t| t.id).collect();
        let mut missing: Vec<i64> =
            tasks.iter().flat_map(|t| t.depends_on.iter().copied()).filter(|d| !known.contains(d)).collect();
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            tasks.extend(self.queue.list(&ListFilter::ids(missing)).await.map_err(|e| e.to_string())?);
        }
        // The track record: kite.db's task counts and the merge queue's, per template.
        let stats = self.queue.stats().await.map_err(|e| e.to_string())?;
        Ok((tasks, stats))
    }
}

fn fingerprint(dir: &Path) -> Vec<(PathBuf, Option<std::time::SystemTime>, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
    let mut v: Vec<_> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".md.tera")))
        .map(|e| {
            let m = e.metadata().ok();
            (e.path(), m.as_ref().and_then(|m| m.modified().ok()), m.map_or(0, |m| m.len()))
        })
        .collect();
    v.sort();
    v
}

fn first_due(c: &Cadence, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match c {
        // Interval and every-tick templates run in the first round; cron ones wait for their time.
        Cadence::EveryTick | Cadence::Every(_) => Some(now),
        Cadence::Cron(_) => c.next_after(now),
    }
}

fn candidate(
    t: &Template,
    title: String,
    body: String,
    priority: Option<i64>,
    files: Vec<String>,
    dedup_key: Option<String>,
) -> Candidate {
    let dedup_key = dedup_key.filter(|k| !k.trim().is_empty()).unwrap_or_else(|| format!("{}:{}", t.name, title));
    Candidate {
        template: t.name.clone(),
        title,
        body,
        priority: priority.unwrap_or(t.meta.priority),
        files,
        dedup_key,
        stale_after_secs: t.stale_after.map(crate::duration::ceil_secs),
        workstream: t.meta.workstream.clone(),
    }
}

/// What a round gathers as it goes: its errors, timings and template runs, what the context
/// said, and the candidates.
#[derive(Default)]
struct Round {
    now: DateTime<Utc>,
    dry_run: bool,
    errors: Vec<ProviderError>,
    timings: Timings,
    not_queued: Vec<NotQueued>,
    /// Built-in providers that cannot run here, and why: their templates are skipped.
    unavailable: HashMap<String, String>,
    /// Templates whose list this round is complete (`retire_missing`), and the list.
    complete: HashMap<String, String>,
    /// The vault's notes per topic.
    vault: BTreeMap<String, Value>,
    runs: Vec<TemplateRun>,
    candidates: Vec<Candidate>,
}

impl Round {
    fn report(
        self,
        candidates: Vec<CandidateReport>,
        queued: Vec<Queued>,
        unchanged: Vec<Unchanged>,
        superseded: Vec<Decision>,
        pruned: Vec<Decision>,
    ) -> TickReport {
        TickReport {
            at: self.now,
            dry_run: self.dry_run,
            templates: self.runs,
            candidates,
            queued,
            unchanged,
            superseded,
            pruned,
            not_queued: self.not_queued,
            errors: self.errors,
            timings: self.timings,
        }
    }
}

fn ms(t0: Instant) -> f64 {
    (t0.elapsed().as_secs_f64() * 1e6).round() / 1e3
}

#[cfg(test)]
mod tests;
