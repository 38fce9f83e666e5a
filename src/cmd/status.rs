//! `kite status`, `kite events` and `kite broadcast`: what is going on, and telling everyone.

use super::Ctx;
use crate::output::{self, when};
use anyhow::Result;
use kite_proto::ops::{Broadcast, CostTotals, Delivered, Event, Events, EventsQuery, Status};

#[derive(clap::Args, Debug)]
pub(crate) struct EventsArgs {
    /// Keep streaming new events as they happen.
    #[arg(long, short)]
    follow: bool,
    /// Only events after this id.
    #[arg(long)]
    since: Option<i64>,
    /// The newest N events (default 100 when following, 1000 otherwise).
    #[arg(long, short = 'n')]
    limit: Option<u32>,
}

#[derive(clap::Args, Debug)]
pub(crate) struct BroadcastArgs {
    message: String,
    /// The sending session.
    #[arg(long)]
    from: Option<String>,
}

pub(crate) async fn status(ctx: &Ctx) -> Result<()> {
    let c = ctx.client().await?;
    let s: Status = c.request::<kite_proto::op::Status>(kite_proto::NoArgs {}).await?;
    let templates = super::sched::template_counts(&c, None).await.unwrap_or_default();
    // The merge queue's book, from the daemon (in kite.db); an error is reported, not hidden.
    let book = c.request::<kite_proto::op::MergeList>(kite_proto::ops::MergeList { finished: Some(0) }).await;
    if ctx.json {
        let mut v = serde_json::to_value(&s)?;
        v["templates"] = serde_json::to_value(&templates)?;
        v["merge"] = match &book {
            Ok(b) => serde_json::json!({
                "total": b.total, "by_template": b.by_template,
                "in_flight": b.entries.iter().filter(|e| e.state.in_flight()).collect::<Vec<_>>(),
            }),
            Err(e) => serde_json::json!({"error": e.to_string()}),
        };
        v["budget"] = serde_json::to_value(budget(ctx, &s))?;
        return output::json(&v);
    }
    output::line(format!("kite {} (pid {}) on {}", s.version, s.pid, s.root))?;
    let q = s.queue.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ");
    output::line(format!("queue: {q}"))?;
    output::line(format!(
        "lifetime: completed {}, pruned {}, failed {}",
        s.counters.completed, s.counters.pruned, s.counters.failed
    ))?;
    for (name, r) in &templates {
        output::line(format!("  template {name}: done {}, failed {}, pruned {}", r.done, r.failed, r.pruned))?;
    }
    output::line(format!("cost: today {}; lifetime {}", cost_totals(&s.cost.today), cost_totals(&s.cost.lifetime)))?;
    if let Some(b) = budget(ctx, &s) {
        output::line(b.line)?;
    }
    match &book {
        Ok(b) => {
            let t = b.total;
            output::line(format!(
                "landing: landed {} ({} not verified), rejected {}, conflicted {}",
                t.landed, t.not_verified, t.rejected, t.conflicted
            ))?;
            for (name, c) in &b.by_template {
                output::line(format!("  template {name}: landed {}, rejected {}, conflicted {}", c.landed, c.rejected, c.conflicted))?;
            }
            for e in b.entries.iter().filter(|e| e.state.in_flight()) {
                let detail = e.detail.lines().next().unwrap_or_default();
                output::line(format!("  #{} {}: {} {detail}", e.task_id, e.title, e.state))?;
            }
        }
        Err(e) => output::line(format!("landing: {e}"))?,
    }
    output::line(format!("sessions: {}", s.sessions.len()))?;
    for x in &s.sessions {
        output::line(format!("  {} {} idle {} ms", x.id, x.name, x.idle_ms.unwrap_or(0)))?;
    }
    output::line(format!("locks: {} held, {} waiting", s.locks.held.len(), s.locks.waiting.len()))?;
    for h in &s.locks.held {
        output::line(format!("  {} {} by {} (token {})", h.path, h.mode.as_str(), h.session, h.token))?;
    }
    for w in &s.locks.waiting {
        output::line(format!("  {} {} wanted by {}", w.path, w.mode.as_str(), w.session))?;
    }
    if s.store.backend == "postgres" {
        output::line(format!("store: PostgreSQL {} (lease epoch {})", s.store.location, s.store.epoch.unwrap_or(0)))?;
        output::line("  a take-over by a daemon on another machine would not have:".to_string())?;
        for what in &s.store.local_only {
            output::line(format!("    {what}"))?;
        }
    }
    if let Some(r) = &s.refused {
        output::line(format!(
            "warning: {} connections refused for want of file descriptors (limit {}), the last at {}; raise `ulimit -n` and restart the daemon",
            r.total,
            r.fd_limit,
            when(r.last_at_ms)
        ))?;
    }
    Ok(())
}

/// One period's cost: `$1.2345 (agents $1.0000, interactive $0.2345), in .. out .. cache ..w/..r`.
fn cost_totals(t: &CostTotals) -> String {
    format!(
        "{} (agents {}, interactive {}), {}",
        output::usd(t.usd),
        output::usd(t.agents_usd),
        output::usd(t.interactive_usd),
        output::tokens(t.input_tokens, t.output_tokens, t.cache_creation_input_tokens, t.cache_read_input_tokens)
    )
}

fn print_event(ctx: &Ctx, e: &Event) -> Result<()> {
    if ctx.json {
        output::json(e)
    } else {
        output::line(format!("{} #{} {} {}", when(e.at_ms), e.id, e.kind, e.data))
    }
}

pub(crate) async fn events(ctx: &Ctx, a: EventsArgs) -> Result<()> {
    let c = ctx.client().await?;
    let q = EventsQuery { since: a.since, limit: a.limit };
    if !a.follow {
        let mut ev: Events = c.request::<kite_proto::op::EventsList>(q.clone()).await?;
        // From a point on, every event after it: page by page.
        while let Some(next) = ev.next.take() {
            let page = c.request::<kite_proto::op::EventsList>(EventsQuery { since: Some(next), ..q.clone() }).await?;
            ev.events.extend(page.events);
            ev.next = page.next;
        }
        if ctx.json {
            return output::json(&ev);
        }
        for e in &ev.events {
            print_event(ctx, e)?;
        }
        return Ok(());
    }
    let mut pushes = c.take_pushes().expect("fresh client");
    let mut q = q;
    // From a point on: page up to now with events.list, then follow from the last one.
    if q.since.is_some() {
        loop {
            let page = c.request::<kite_proto::op::EventsList>(q.clone()).await?;
            for e in &page.events {
                print_event(ctx, e)?;
            }
            q.since = page.events.last().map(|e| e.id).or(q.since);
            if page.next.is_none() {
                break;
            }
        }
    }
    let ev: Events = c.request::<kite_proto::op::EventsFollow>(q).await?;
    for e in &ev.events {
        print_event(ctx, e)?;
    }
    while let Some(p) = pushes.recv().await {
        if p.push == "event" {
            if let Ok(e) = serde_json::from_value::<Event>(p.data) {
                print_event(ctx, &e)?;
            }
        }
    }
    anyhow::bail!("the daemon closed the connection")
}

#[derive(clap::Args, Debug)]
pub(crate) struct MessageArgs {
    /// The session it is for.
    to: String,
    text: String,
    /// The sending session.
    #[arg(long)]
    from: Option<String>,
}

/// `kite message SESSION TEXT`: one session hears it at its next tool call.
pub(crate) async fn message(ctx: &Ctx, a: MessageArgs) -> Result<()> {
    let c = ctx.client().await?;
    let d: Delivered = c.request::<kite_proto::op::Message>(kite_proto::ops::Message { to: a.to.clone(), text: a.text, from: a.from }).await?;
    if ctx.json { output::json(&d) } else { output::line(format!("{} hears it at its next tool call", a.to)) }
}

pub(crate) async fn broadcast(ctx: &Ctx, a: BroadcastArgs) -> Result<()> {
    let c = ctx.client().await?;
    let d: Delivered = c.request::<kite_proto::op::Broadcast>(Broadcast { message: a.message, from: a.from }).await?;
    if ctx.json {
        output::json(&d)
    } else {
        output::line(format!("delivered to {} session(s)", d.delivered))
    }
}

/// Where `[runner] daily_budget_usd` stands today: what the agents spent, and, once it is spent,
/// that no agent starts until the next UTC midnight.
#[derive(serde::Serialize)]
struct Budget {
    daily_usd: f64,
    spent_usd: f64,
    spent: bool,
    /// When agents may start again (ms since the epoch), once spent.
    resumes_at_ms: Option<i64>,
    #[serde(skip)]
    line: String,
}

fn budget(ctx: &Ctx, s: &Status) -> Option<Budget> {
    let daily = ctx.config.runner.daily_budget_usd?;
    let spent = s.cost.agents_today_usd;
    let next_day = s.cost.day_start_ms + 24 * 3600 * 1000;
    let over = spent >= daily;
    let line = if over {
        let left_ms = (next_day - now_ms()).max(0);
        format!(
            "daily budget spent: ${spent:.4} of ${daily:.2} today (UTC); no agent starts until midnight UTC, in {}h{:02}m",
            left_ms / 3_600_000,
            (left_ms / 60_000) % 60
        )
    } else {
        format!("daily budget: ${spent:.4} of ${daily:.2} spent today (UTC)")
    };
    Some(Budget { daily_usd: daily, spent_usd: spent, spent: over, resumes_at_ms: over.then_some(next_day), line })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
