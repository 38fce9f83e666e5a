//! `kite report`: what the work was worth, not only how much of it there was. Gathers the daemon's
//! records (each task's outcome, its entries in the merge book, what it cost) and reads each
//! landed task's signals from git ([`kite_quality`]); the figures are computed there.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use clap::Args as ClapArgs;
use kite_quality::report::{Figures, Ranked};
use kite_quality::Report;

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
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The git signals of the tasks among `ids` whose work is on the merge target.
pub(crate) async fn signals(
    ctx: &Ctx,
    ids: &[i64],
) -> Result<BTreeMap<i64, kite_quality::Signals>> {
    Ok(
        kite_daemon::quality::signals_of(
            &ctx.places.root,
            &ctx.places.home,
            &ctx.config.merge,
            ids,
        )
        .await?,
    )
}

pub(crate) async fn run(ctx: &Ctx, a: Args) -> Result<()> {
    let since_ms = match &a.since {
        Some(s) => Some(
            now_ms().saturating_sub(
                i64::try_from(
                    kite_core::duration::parse_duration(s)
                        .context("--since")?
                        .as_millis(),
                )
                .unwrap_or(i64::MAX),
            ),
        ),
        None => None,
    };
    let c = ctx.client().await?;
    let records = kite_daemon::quality::records(
        &c,
        &ctx.places.root,
        &ctx.places.home,
        &ctx.config.merge,
        since_ms,
        a.template.as_deref(),
    )
    .await?;
    let report = Report::build(&records, since_ms, a.template.as_deref());
    if ctx.json {
        return output::json(&report);
    }
    let window = a
        .since
        .as_deref()
        .map(|s| format!("the last {s}"))
        .unwrap_or_else(|| "all time".into());
    let which = a
        .template
        .as_deref()
        .map(|t| format!("template {t}"))
        .unwrap_or_else(|| "all templates".into());
    output::line(format!("kite report: {window}, {which}"))?;
    print_figures(&report.totals)?;
    if report.by_template.len() > 1 || a.template.is_none() {
        output::line("")?;
        output::line(format!(
            "  {:<18} {:>5} {:>6} {:>9} {:>8} {:>8} {:>8} {:>9}",
            "template", "tasks", "landed", "first try", "surv 7d", "churn", "reverted", "cost"
        ))?;
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
    print_ranked("worst", &report.worst)?;
    // Where the money went, task by task.
    let mut costly: Vec<&kite_quality::TaskRecord> =
        report.tasks.iter().filter(|t| t.usd > 0.0).collect();
    costly.sort_by(|a, b| b.usd.total_cmp(&a.usd));
    if !costly.is_empty() {
        output::line("\n  most expensive:")?;
        for t in costly.iter().take(5) {
            let landed = if t.landed() { "landed" } else { "not landed" };
            let template = t
                .template
                .as_deref()
                .unwrap_or(kite_quality::report::BY_HAND);
            output::line(format!(
                "    #{} {} ({template}) — {}, {} tokens, over {} attempt(s), {landed}",
                t.id,
                t.title,
                output::usd(t.usd),
                t.tokens,
                t.attempts
            ))?;
        }
    }
    Ok(())
}

fn pct(x: Option<f64>) -> String {
    x.map(|x| format!("{:.0}%", x * 100.0))
        .unwrap_or_else(|| "—".into())
}

fn print_figures(f: &Figures) -> Result<()> {
    output::line(format!(
        "  tasks {}: {} completed, {} pruned, {} failed",
        f.tasks, f.completed, f.pruned, f.failed
    ))?;
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
    output::line(format!(
        "  churn within 14 days (median): {}; reverted: {} ({})",
        pct(f.median_churn_14d),
        f.reverted,
        pct(f.revert_rate)
    ))?;
    if !f.review_findings.is_empty() || f.review_blocked + f.review_failed > 0 {
        let by: Vec<String> = f
            .review_findings
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect();
        output::line(format!(
            "  review: {} sent back with a blocker, {} could not judge; findings: {}",
            f.review_blocked,
            f.review_failed,
            if by.is_empty() {
                "none".into()
            } else {
                by.join(", ")
            }
        ))?;
    }
    if f.tests_compared + f.tests_across + f.tests_unreadable > 0 {
        let counts = if f.tests_by_counts > 0 {
            format!(" ({} by counts only)", f.tests_by_counts)
        } else {
            String::new()
        };
        output::line(format!(
            "  tests, over {} landing(s) compared with the verify run of the commit they were built on{counts}: {} added, {} now pass, {} broke, {} no longer run; {} compared across other commits (not summed); {} verify output(s) unreadable",
            f.tests_compared, f.tests_added, f.tests_now_pass, f.tests_broke, f.tests_removed, f.tests_across, f.tests_unreadable
        ))?;
    }
    let per = |x: Option<f64>| x.map(output::usd).unwrap_or_else(|| "—".into());
    output::line(format!(
        "  cost {} ({} tokens): {} and {} tokens per landed task, {} per surviving line ({} lines)",
        output::usd(f.usd),
        f.tokens,
        per(f.usd_per_landed_task),
        f.tokens_per_landed_task
            .map(|t| format!("{t:.0}"))
            .unwrap_or_else(|| "—".into()),
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
