//! Measures one strategy-loop tick with 100 templates and 10,000 pending tasks (target: under
//! 50 ms), so `make bench` can keep the planner honest as rules are added.
//!
//! Prints a Markdown section on stdout (for docs/BENCHMARKS.md) and progress on stderr. Phases:
//! loading and compiling the templates, rendering them (500 candidates), planning (pure), and a
//! whole dry-run tick through [`Scheduler::tick`] over a read-only in-process queue, which adds the
//! git, queue and one shell context provider (process spawns) to the cost.
//!
//! Usage: `kite-sched-bench [--iterations N]`.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use kite_strategy::queue::{AttemptCost, BoxFuture, Claim, ListFilter, PruneNote, Queue, QueueError};
use kite_strategy::{
    plan, Candidate, NewTask, Plan, PlanInput, SchedConfig, Scheduler, ScoreWeights, Task, TaskStatus, TemplateSet,
    TickOptions, TickReport, TrackRecord,
};
use serde_json::json;

const TEMPLATES: usize = 100;
const TASKS: usize = 10_000;
const ITEMS_PER_TEMPLATE: usize = 5;

/// Answers lists and stats from a fixed snapshot; writes are refused (the bench ticks dry).
struct Snapshot(Vec<Task>);

impl Queue for Snapshot {
    fn list<'a>(&'a self, f: &'a ListFilter) -> BoxFuture<'a, Result<Vec<Task>, QueueError>> {
        Box::pin(async move {
            let mut v: Vec<Task> = self.0.iter().filter(|t| f.matches(t)).cloned().collect();
            if f.newest_first {
                v.reverse();
            }
            if let Some(n) = f.limit {
                v.truncate(n);
            }
            Ok(v)
        })
    }
    fn create(&self, _: NewTask) -> BoxFuture<'_, Result<i64, QueueError>> {
        Box::pin(async { Err(QueueError::Refused("read-only".into())) })
    }
    fn prune(&self, _: i64, _: PruneNote) -> BoxFuture<'_, Result<(), QueueError>> {
        Box::pin(async { Err(QueueError::Refused("read-only".into())) })
    }
    fn register_session<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<String, QueueError>> {
        Box::pin(async { Err(QueueError::Refused("read-only".into())) })
    }
    fn claim<'a>(&'a self, _: i64, _: &'a str) -> BoxFuture<'a, Result<Claim, QueueError>> {
        Box::pin(async { Err(QueueError::Refused("read-only".into())) })
    }
    fn done<'a>(&'a self, _: &'a Claim, _: &'a str) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async { Err(QueueError::Refused("read-only".into())) })
    }
    fn fail<'a>(&'a self, _: &'a Claim, _: &'a str, _: bool) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async { Err(QueueError::Refused("read-only".into())) })
    }
    fn requeue_uncounted<'a>(&'a self, _: &'a Claim, _: &'a str) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async { Err(QueueError::Refused("read-only".into())) })
    }
    fn stop_order<'a>(&'a self, _: &'a str, _: Option<f64>) -> BoxFuture<'a, Result<Option<(String, String)>, QueueError>> {
        Box::pin(async { Err(QueueError::Refused("read-only".into())) })
    }
    // A dry tick starts no agent, so nothing here costs anything: costs are neither kept nor
    // spent (the snapshot is read-only).
    fn record_cost<'a>(&'a self, _: &'a AttemptCost) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async { Ok(()) })
    }
    fn agent_spend_today(&self) -> BoxFuture<'_, Result<f64, QueueError>> {
        Box::pin(async { Ok(0.0) })
    }
}

fn tasks(now_ms: i64) -> Vec<Task> {
    (1..=TASKS as i64)
        .map(|id| Task {
            id,
            title: format!("task {id}"),
            body: "body".into(),
            status: if id % 50 == 0 { TaskStatus::Active } else { TaskStatus::Pending },
            priority: id % 20,
            depends_on: if id % 10 == 0 { vec![id - 1] } else { vec![] },
            files: vec![format!("src/m{}.rs", id % 300)],
            // Unique per task; this round's candidates (items 0..5) re-key the first 500 tasks.
            dedup_key: Some(format!("t{}:item{}", id % TEMPLATES as i64, id / TEMPLATES as i64)),
            stale_after_secs: Some(7 * 86_400),
            workstream: None,
            attempts: 0,
            claim_session: None,
            claim_token: None,
            result: None,
            reason: None,
            created_at_ms: now_ms - (id % 500) * 60_000,
            updated_at_ms: now_ms,
            template: Some(format!("t{}", id % TEMPLATES as i64)),
        })
        .collect()
}

fn write_templates(dir: &Path) {
    std::fs::create_dir_all(dir).expect("prompts dir");
    for i in 0..TEMPLATES {
        let text = format!(
            "+++\nname = \"t{i}\"\nschedule = \"*/5 * * * *\"\npriority = {p}\nmax_open = 150\nstale_after = \"7d\"\n\
             title = \"Item {{{{ item.n }}}} of t{i}\"\ndedup_key = \"t{i}:item{{{{ item.n }}}}\"\n\
             files = [\"src/m{{{{ item.n }}}}.rs\"]\nfor_each = \"bench.items\"\n+++\n\
             Work on item {{{{ item.n }}}} (branch {{{{ git.branch | default(value='?') }}}}).\n",
            p = i % 10
        );
        std::fs::write(dir.join(format!("t{i}.md.tera")), text).expect("template");
    }
}

struct Stats {
    median: f64,
    p95: f64,
    max: f64,
}

fn stats(mut v: Vec<f64>) -> Stats {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Stats { median: at(0.5), p95: at(0.95), max: v[v.len() - 1] }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// The number of iterations from `--iterations N` (20 by default, at least 1).
fn parse_iterations() -> usize {
    let mut iterations = 20usize;
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--iterations") {
        iterations = args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(iterations).max(1);
    }
    iterations
}

/// Makes `dir` a git repository for the git context provider; whether that worked.
fn git_init(dir: &Path) -> bool {
    std::process::Command::new("git")
        .args(["init", "-q"])
        .current_dir(dir)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Per-iteration timings (ms) of each measured phase.
struct Timings {
    load: Vec<f64>,
    render: Vec<f64>,
    planning: Vec<f64>,
    tick: Vec<f64>,
}

/// Renders every template against `context` into `candidates` (cleared first).
fn render_candidates(set: &TemplateSet, context: &serde_json::Value, candidates: &mut Vec<Candidate>) {
    candidates.clear();
    for tpl in &set.templates {
        for r in tpl.render(context).expect("render").items {
            candidates.push(Candidate {
                template: tpl.name.clone(),
                title: r.title,
                body: r.body,
                priority: tpl.meta.priority,
                files: r.files,
                dedup_key: r.dedup_key.unwrap_or_default(),
                stale_after_secs: tpl.stale_after.map(kite_strategy::duration::ceil_secs),
                workstream: None,
            });
        }
    }
}

/// The pure phases, `iterations` times each: load + compile, render, plan. Fills the load,
/// render and planning timings; returns the last plan.
fn measure_planning(prompts: &Path, snapshot: &[Task], now_ms: i64, iterations: usize, times: &mut Timings) -> Option<Plan> {
    let track: std::collections::BTreeMap<String, TrackRecord> = (0..TEMPLATES)
        .map(|i| (format!("t{i}"), TrackRecord { done: i as u64, failed: 3, pruned: 5, ..Default::default() }))
        .collect();
    let context = json!({
        "bench": {"items": (0..ITEMS_PER_TEMPLATE).map(|n| json!({"n": n})).collect::<Vec<_>>()},
        "git": {"branch": "main"},
    });
    let mut last_plan = None;
    let mut candidates: Vec<Candidate> = vec![];
    for it in 0..iterations {
        eprintln!("iteration {}/{iterations}", it + 1);
        let t = Instant::now();
        let set = TemplateSet::load_dir(prompts);
        times.load.push(ms(t));
        assert_eq!(set.templates.len(), TEMPLATES, "{:?}", set.errors);

        let t = Instant::now();
        render_candidates(&set, &context, &mut candidates);
        times.render.push(ms(t));

        let max_open = set.templates.iter().filter_map(|t| t.meta.max_open.map(|m| (t.name.clone(), m))).collect();
        let weights = ScoreWeights::default();
        let t = Instant::now();
        let p = plan(&PlanInput {
            now_ms,
            tasks: snapshot,
            candidates: &candidates,
            max_open: &max_open,
            max_open_global: Some(8_000),
            track: &track,
            weights: &weights,
            complete: &Default::default(),
        });
        times.planning.push(ms(t));
        last_plan = Some(p);
    }
    last_plan
}

/// Whole dry-run ticks: context providers, render, plan, over the read-only queue. Fills the
/// tick timings; returns the last tick's report.
fn measure_ticks(
    dir: &Path,
    snapshot: &[Task],
    now: chrono::DateTime<chrono::Utc>,
    iterations: usize,
    times: &mut Timings,
) -> Option<TickReport> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mut cfg = SchedConfig { builtin_templates: false, max_open: Some(8_000), ..SchedConfig::default() };
    let items = json!({"items": (0..ITEMS_PER_TEMPLATE).map(|n| json!({"n": n})).collect::<Vec<_>>()});
    cfg.providers.insert(
        "bench".into(),
        kite_strategy::ShellProviderConfig { command: format!("echo '{items}'"), timeout: None },
    );
    let queue: Arc<dyn Queue> = Arc::new(Snapshot(snapshot.to_vec()));
    let mut sched = Scheduler::new(cfg, dir, queue, None);
    let mut last_report = None;
    for it in 0..iterations {
        eprintln!("tick {}/{iterations}", it + 1);
        let t = Instant::now();
        let r = rt.block_on(sched.tick(TickOptions { dry_run: true, all: true, now: Some(now) }));
        times.tick.push(ms(t));
        last_report = Some(r);
    }
    last_report
}

/// Prints the Markdown section: the phase table, the last plan and tick, and the verdict.
fn print_report(iterations: usize, git_ok: bool, times: Timings, p: &Plan, r: &TickReport) {
    let (l, re, pl, tk) = (stats(times.load), stats(times.render), stats(times.planning), stats(times.tick));
    // A tick reloads templates only when a file changed (Scheduler::reload_if_changed), so the
    // steady-state planning cost is render + plan; the reload is shown beside it.
    let planning_total = re.median + pl.median;
    let with_reload = planning_total + l.median;
    println!("## Strategy loop: one tick (kite-sched-bench)\n");
    println!(
        "{TEMPLATES} templates (each emitting {ITEMS_PER_TEMPLATE} candidates), {TASKS} open tasks \
         (2% active, 10% with a dependency), per-template and global capacity limits; \
         {iterations} iterations, release build.\n"
    );
    println!("| phase | median ms | p95 ms | max ms |");
    println!("|---|---:|---:|---:|");
    for (name, s) in [
        ("load + compile 100 templates (only when prompts/ changed)", &l),
        ("render 500 candidates", &re),
        ("plan (score, supersede, stale, deps, capacity)", &pl),
    ] {
        println!("| {name} | {:.2} | {:.2} | {:.2} |", s.median, s.p95, s.max);
    }
    println!("| **tick planning (render + plan)** | **{planning_total:.2}** | | |");
    println!("| tick planning with a template reload | {with_reload:.2} | | |");
    println!(
        "| whole dry-run tick (git, queue and shell context; render; plan) | {:.2} | {:.2} | {:.2} |",
        tk.median, tk.p95, tk.max
    );
    println!();
    println!(
        "Last plan: {} queued, {} unchanged, {} superseded, {} pruned. Last tick: {} queued, {} pruned, \
         {} errors; phases context {:.2} ms, render {:.2} ms, plan {:.2} ms{}.",
        p.queue.len(),
        p.unchanged.len(),
        p.superseded.len(),
        p.pruned.len(),
        r.queued.len(),
        r.pruned.len() + r.superseded.len(),
        r.errors.len(),
        r.timings.context_ms,
        r.timings.render_ms,
        r.timings.plan_ms,
        if git_ok { "" } else { " (git unavailable: context without git)" },
    );
    let verdict = |x: f64| if x < 50.0 { "meets" } else { "MISSES" };
    println!(
        "\nTarget: one tick's planning under 50 ms: {} ({planning_total:.2} ms median; {} with a reload, {with_reload:.2} ms).",
        verdict(planning_total),
        verdict(with_reload)
    );
}

fn main() {
    let iterations = parse_iterations();
    let dir = std::env::temp_dir().join(format!("kite-sched-bench-{}", std::process::id()));
    let prompts = dir.join("prompts");
    write_templates(&prompts);
    let git_ok = git_init(&dir);

    let now = chrono::Utc::now();
    let now_ms = now.timestamp_millis();
    let snapshot = tasks(now_ms);
    let mut times = Timings { load: vec![], render: vec![], planning: vec![], tick: vec![] };
    let last_plan = measure_planning(&prompts, &snapshot, now_ms, iterations, &mut times);
    let last_report = measure_ticks(&dir, &snapshot, now, iterations, &mut times);
    let _ = std::fs::remove_dir_all(&dir);

    let p = last_plan.expect("at least one iteration");
    let r = last_report.expect("at least one tick");
    for e in &r.errors {
        eprintln!("tick error: {}: {}", e.source, e.message);
    }
    print_report(iterations, git_ok, times, &p, &r);
}
