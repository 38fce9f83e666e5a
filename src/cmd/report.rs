//! `kite report`: what the work was worth, not only how much of it there was. Gathers the daemon's
//! records (each task's outcome, its entries in the merge book, what it cost) and reads each
//! landed task's signals from git ([`kite_quality`]); the figures are computed there.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use clap::Args as ClapArgs;
use kite_proto::ops::{MergeList, TaskList, TaskRef, MAX_PAGE};
use kite_quality::report::{Figures, Ranked, BY_HAND};
use kite_quality::{History, Report, TaskRecord};

use super::Ctx;
use crate::output;

#[derive(ClapArgs, Debug)]
pub(crate) struct Args {
    /// Only tasks that changed within this long (30d, 2w, 12h); default: all.
    #[arg(long)]
    since: Option<String>,
    /// Only this template's tasks (`(by hand)` for tasks filed by hand).
    #[arg(long)]
    template: Option<String>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The records of the tasks in the window, with their git signals.
pub(crate) async fn gather(ctx: &Ctx, c: &kite_proto::Client, since_ms: Option<i64>, template: Option<&str>) -> Result<Vec<TaskRecord>> {
    let tasks = c.all_tasks(TaskList { status: None, workstream: None, limit: None, after: None }).await?;
    let tasks: Vec<_> = tasks
        .into_iter()
        .filter(|t| since_ms.is_none_or(|s| t.updated_at_ms >= s))
        .filter(|t| template.is_none_or(|name| t.template.as_deref().unwrap_or(BY_HAND) == name))
        .collect();
    let book = c.request::<kite_proto::op::MergeList>(MergeList { finished: Some(MAX_PAGE) }).await?;
    let mut landings: BTreeMap<i64, Vec<kite_core::MergeState>> = BTreeMap::new();
    let mut reviews: BTreeMap<i64, Vec<kite_core::Review>> = BTreeMap::new();
    for e in &book.entries {
        landings.entry(e.task_id).or_default().push(e.state);
        if let Some(r) = &e.review {
            reviews.entry(e.task_id).or_default().push(r.clone());
        }
    }
    let signals = signals(ctx, &tasks.iter().map(|t| t.id).collect::<Vec<_>>()).await?;
    // Each task's cost, 64 requests in flight on the one connection (replies carry their ids).
    use futures::StreamExt;
    let costs: Vec<f64> = futures::stream::iter(tasks.iter().map(|t| c.request::<kite_proto::op::TaskShow>(TaskRef { task: t.id })))
        .buffered(64)
        .map(|r| r.map(|d| d.cost.usd))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(tasks.len());
    for (t, usd) in tasks.into_iter().zip(costs) {
        out.push(TaskRecord {
            landings: landings.remove(&t.id).unwrap_or_default(),
            reviews: reviews.remove(&t.id).unwrap_or_default(),
            signals: signals.get(&t.id).cloned(),
            id: t.id,
            title: t.title,
            template: t.template,
            status: t.status,
            attempts: t.attempts,
            usd,
        })
    }
    Ok(out)
}

/// The git signals of the tasks among `ids` whose work is on the merge target.
pub(crate) async fn signals(ctx: &Ctx, ids: &[i64]) -> Result<BTreeMap<i64, kite_quality::Signals>> {
    let root = &ctx.places.root;
    let target = kite_land::target_branch(root, &ctx.config.merge).await?;
    let history = match History::read(root, &target).await {
        Ok(h) => h,
        Err(kite_quality::QualityError::NoTarget(_)) => return Ok(BTreeMap::new()),
        Err(e) => return Err(e.into()),
    };
    let now = now_ms() / 1000;
    let computed = kite_quality::signals::compute(root, &history, Some(ids), now).await.context("reading the target's history")?;
    Ok(computed.into_iter().map(|s| (s.task, s)).collect())
}

pub(crate) async fn run(ctx: &Ctx, a: Args) -> Result<()> {
    let since_ms = match &a.since {
        Some(s) => Some(now_ms() - kite_core::duration::parse_duration(s).context("--since")?.as_millis() as i64),
        None => None,
    };
    let c = ctx.client().await?;
    let records = gather(ctx, &c, since_ms, a.template.as_deref()).await?;
    let report = Report::build(&records, since_ms, a.template.as_deref());
    if ctx.json {
        return output::json(&report);
    }
    let window = a.since.as_deref().map(|s| format!("the last {s}")).unwrap_or_else(|| "all time".into());
    let which = a.template.as_deref().map(|t| format!("template {t}")).unwrap_or_else(|| "all templates".into());
    output::line(format!("kite report: {window}, {which}"))?;
    print_figures(&report.totals)?;
    if report.by_template.len() > 1 || a.template.is_none() {
        output::line("")?;
        output::line(format!("  {:<18} {:>5} {:>6} {:>9} {:>8} {:>8} {:>8} {:>9}", "template", "tasks", "landed", "first try", "surv 7d", "churn", "reverted", "cost"))?;
        for (name, f) in &report.by_template {
            output::line(format!(
                "  {:<18} {:>5} {:>6} {:>9} {:>8} {:>8} {:>8} {:>9}",
                name,
                f.tasks,
                f.landed,
                pct(f.first_try_rate),
                pct(f.median_survival_7d),
                pct(f.median_churn_14d),
                f.reverted,
                output::usd(f.usd)
            ))?;
        }
    }
    print_ranked("best", &report.best)?;
    print_ranked("worst", &report.worst)
}

fn pct(x: Option<f64>) -> String {
    x.map(|x| format!("{:.0}%", x * 100.0)).unwrap_or_else(|| "—".into())
}

fn print_figures(f: &Figures) -> Result<()> {
    output::line(format!("  tasks {}: {} completed, {} pruned, {} failed", f.tasks, f.completed, f.pruned, f.failed))?;
    output::line(format!(
        "  landed {}: {} on the first try ({}); of {} landing(s) tried, {} failed verify and {} conflicted",
        f.landed,
        f.landed_first_try,
        pct(f.first_try_rate),
        f.landing_attempts,
        pct(f.verify_fail_rate),
        pct(f.conflict_rate)
    ))?;
    output::line(format!(
        "  survival (median share of a task's lines still there): now {}, after 7 days {}, after 30 days {}",
        pct(f.median_survival_now),
        pct(f.median_survival_7d),
        pct(f.median_survival_30d)
    ))?;
    output::line(format!("  churn within 14 days (median): {}; reverted: {} ({})", pct(f.median_churn_14d), f.reverted, pct(f.revert_rate)))?;
    if !f.review_findings.is_empty() || f.review_blocked + f.review_failed > 0 {
        let by: Vec<String> = f.review_findings.iter().map(|(s, n)| format!("{n} {s}")).collect();
        output::line(format!(
            "  review: {} sent back with a blocker, {} could not judge; findings: {}",
            f.review_blocked,
            f.review_failed,
            if by.is_empty() { "none".into() } else { by.join(", ") }
        ))?;
    }
    let per = |x: Option<f64>| x.map(output::usd).unwrap_or_else(|| "—".into());
    output::line(format!(
        "  cost {}: {} per landed task, {} per surviving line ({} lines)",
        output::usd(f.usd),
        per(f.usd_per_landed_task),
        per(f.usd_per_surviving_line),
        f.surviving_lines
    ))
}

fn print_ranked(what: &str, tasks: &[Ranked]) -> Result<()> {
    if tasks.is_empty() {
        return Ok(());
    }
    output::line(format!("\n  {what}:"))?;
    for r in tasks {
        output::line(format!("    #{} {} — {}", r.task, r.title, r.why))?;
    }
    Ok(())
}
