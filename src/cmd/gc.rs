//! `kite gc`: runs the retention now. The daemon does it on its own every ten minutes; this is
//! for a person who wants the database small now, or wants to see what would go.

use super::Ctx;
use crate::output;
use anyhow::{Context, Result};
use kite_proto::ops::{Gc, GcReport};

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Count what would move to the archive; move nothing.
    #[arg(long)]
    dry_run: bool,
    /// Instead of kite.toml's keep_events / keep_tasks: everything older than this ("7d", "12h").
    #[arg(long, value_name = "DURATION")]
    older_than: Option<String>,
}

pub(crate) async fn run(ctx: &Ctx, a: Args) -> Result<()> {
    let older_than_secs = match &a.older_than {
        None => None,
        Some(s) => Some(kite_core::duration::parse_duration(s).with_context(|| "--older-than")?.as_secs()),
    };
    let c = ctx.client().await?;
    let mut total = GcReport { dry_run: a.dry_run, ..Default::default() };
    let started = std::time::Instant::now();
    loop {
        let r = c.request::<kite_proto::op::Gc>(Gc { dry_run: a.dry_run, older_than_secs }).await?;
        total.events += r.events;
        total.tasks += r.tasks;
        total.archive = r.archive;
        total.events_older_than_secs = r.events_older_than_secs;
        total.tasks_older_than_secs = r.tasks_older_than_secs;
        if !r.more {
            break;
        }
        if !ctx.json && started.elapsed().as_secs() >= 1 {
            eprintln!("kite gc: {} events and {} tasks archived so far", total.events, total.tasks);
        }
    }
    if ctx.json {
        return output::json(&total);
    }
    let age = |s: Option<u64>| s.map_or("never (kept forever)".to_string(), |s| format!("older than {}", kite_core::duration::format_duration(std::time::Duration::from_secs(s))));
    let verb = if a.dry_run { "would archive" } else { "archived" };
    output::line(format!(
        "{verb} {} events ({}) and {} finished tasks ({}) to {}",
        total.events,
        age(total.events_older_than_secs),
        total.tasks,
        age(total.tasks_older_than_secs),
        total.archive
    ))
}
