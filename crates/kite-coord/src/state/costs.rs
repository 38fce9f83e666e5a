//! What agents cost: `cost.record` keeps one row per agent attempt or person's session, and the
//! totals are read back per task (`task.show`), for today and for the lifetime (`cost.summary`,
//! `status`). The runner checks its daily budget against today's agent dollars.
//!
//! Lifetime totals are counters (in `pending`, written once per batch like completed/failed),
//! not a SUM over the table: `status` is polled by the dashboard every few seconds and by every
//! `kite status`, and a SUM scans every cost ever recorded on the owner's thread, where nothing
//! else runs meanwhile. Today's totals are a SUM over the `at_ms` index, bounded by one day's
//! rows. Dollars are counted in micro-dollars (the counters are integers); the rounding, half a
//! micro-dollar per record, is far below the four decimals anything shows.

use super::{Handled, State};
use kite_proto::event::EventTokens;
use kite_proto::ops::{
    day_start_ms, CostEntry, CostRecord, CostSummary, CostTotals, COST_SOURCES, MAX_TASK_COSTS,
};
use kite_proto::{ErrorBody, LogEvent, Refusal};
use kite_store::{CostRow, CostSums};
use serde_json::json;

/// The longest text a cost record may carry in one field (a model id, a session id, an outcome).
const MAX_TEXT: usize = 256;
/// The most unpriced model ids one record may name.
const MAX_UNPRICED: usize = 32;
/// The most one record may cost: more is a bug in whoever priced it, and would only skew the
/// totals (and could overflow the micro-dollar counters).
const MAX_USD: f64 = 1_000_000.0;

fn totals(s: CostSums) -> CostTotals {
    CostTotals {
        usd: s.usd,
        input_tokens: s.input_tokens,
        output_tokens: s.output_tokens,
        cache_creation_input_tokens: s.cache_creation_input_tokens,
        cache_read_input_tokens: s.cache_read_input_tokens,
        runs: s.runs,
        agents_usd: s.agents_usd,
        interactive_usd: s.interactive_usd,
    }
}

fn entry(c: CostRow) -> CostEntry {
    CostEntry {
        at_ms: c.at_ms,
        session: c.session,
        source: c.source,
        attempt: c.attempt,
        usd: c.usd,
        input_tokens: c.input_tokens,
        output_tokens: c.output_tokens,
        cache_creation_input_tokens: c.cache_creation_input_tokens,
        cache_read_input_tokens: c.cache_read_input_tokens,
        model: c.model,
        turns: c.turns,
        duration_ms: c.duration_ms,
        agent_session: c.agent_session,
        outcome: c.outcome,
        unpriced: c.unpriced,
    }
}

fn micro(usd: f64) -> i64 {
    (usd * 1e6).round() as i64
}

/// A token count as a counter's increment.
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Why a record is refused, if it is.
/// The most tokens (of one kind) one record may carry: a trillion, far beyond any real run.
const MAX_TOKENS: u64 = 1_000_000_000_000;

fn check(a: &CostRecord) -> Result<(), String> {
    if a.session.trim().is_empty() {
        return Err("session is empty".into());
    }
    if !COST_SOURCES.contains(&a.source.as_str()) {
        return Err(format!(
            "source must be one of {} (got '{}')",
            COST_SOURCES.join(", "),
            a.source
        ));
    }
    if !a.usd.is_finite() || a.usd < 0.0 || a.usd > MAX_USD {
        return Err(format!(
            "usd must be a number from 0 to {MAX_USD} (got {})",
            a.usd
        ));
    }
    // Sums of these must not overflow SQLite's integers, whatever a transcript said.
    let tokens = [
        a.input_tokens,
        a.output_tokens,
        a.cache_creation_input_tokens,
        a.cache_read_input_tokens,
        a.turns,
    ];
    if tokens.iter().any(|t| *t > MAX_TOKENS) {
        return Err(format!("a token or turn count is over {MAX_TOKENS}"));
    }
    let texts = [
        Some(&a.session),
        a.model.as_ref(),
        a.agent_session.as_ref(),
        a.outcome.as_ref(),
    ];
    if texts
        .into_iter()
        .flatten()
        .chain(&a.unpriced)
        .any(|t| t.chars().count() > MAX_TEXT)
    {
        return Err(format!("a text field is longer than {MAX_TEXT} characters"));
    }
    if a.unpriced.len() > MAX_UNPRICED {
        return Err(format!("unpriced names more than {MAX_UNPRICED} models"));
    }
    Ok(())
}

impl State {
    pub(super) fn cost_record(&mut self, a: CostRecord) -> Handled<serde_json::Value> {
        check(&a).map_err(|why| ErrorBody::from(Refusal::BadCost(why)))?;
        if let Some(task) = a.task {
            if !self.store.task_exists(task).map_err(super::internal)? {
                return Err(Refusal::NoTask(task).into());
            }
        }
        // The run's cost is recorded now: what its session reported as running spend is in it.
        if let Some(l) = self.live.get_mut(&a.session) {
            l.news.running_usd = 0.0;
        }
        let row = CostRow {
            at_ms: self.now_ms,
            session: a.session,
            task_id: a.task,
            attempt: a.attempt,
            source: a.source,
            usd: a.usd,
            input_tokens: a.input_tokens,
            output_tokens: a.output_tokens,
            cache_creation_input_tokens: a.cache_creation_input_tokens,
            cache_read_input_tokens: a.cache_read_input_tokens,
            model: a.model,
            turns: a.turns,
            duration_ms: a.duration_ms,
            agent_session: a.agent_session,
            outcome: a.outcome,
            unpriced: a.unpriced,
        };
        let id = self.store.insert_cost(&row).map_err(super::internal)?;
        let p = &mut self.pending;
        p.bump("cost_runs", 1);
        p.bump(
            if row.source != "interactive" {
                "cost_agents_micro_usd"
            } else {
                "cost_interactive_micro_usd"
            },
            micro(row.usd),
        );
        p.bump("cost_input_tokens", count(row.input_tokens));
        p.bump("cost_output_tokens", count(row.output_tokens));
        p.bump(
            "cost_cache_creation_tokens",
            count(row.cache_creation_input_tokens),
        );
        p.bump("cost_cache_read_tokens", count(row.cache_read_input_tokens));
        let tokens = EventTokens {
            input: row.input_tokens,
            output: row.output_tokens,
            cache_creation: row.cache_creation_input_tokens,
            cache_read: row.cache_read_input_tokens,
        };
        self.event(LogEvent::CostRecorded {
            session: row.session,
            task: row.task_id,
            attempt: row.attempt,
            source: row.source,
            usd: row.usd,
            tokens,
        })?;
        Ok(json!({"id": id}))
    }

    pub(super) fn cost_summary(&mut self) -> Handled<kite_proto::ops::CostSummary> {
        Ok(self.cost_view()?)
    }

    /// Today's totals (since UTC midnight of the batch's clock) and the lifetime counters.
    pub(super) fn cost_view(&self) -> Result<CostSummary, ErrorBody> {
        let day_start_ms = day_start_ms(self.now_ms);
        let today = totals(
            self.store
                .cost_totals_since(day_start_ms)
                .map_err(super::internal)?,
        );
        let c = |n: &str| self.pending.counter(n);
        let agents_usd = c("cost_agents_micro_usd") as f64 / 1e6;
        let interactive_usd = c("cost_interactive_micro_usd") as f64 / 1e6;
        let lifetime = CostTotals {
            usd: agents_usd + interactive_usd,
            input_tokens: c("cost_input_tokens") as u64,
            output_tokens: c("cost_output_tokens") as u64,
            cache_creation_input_tokens: c("cost_cache_creation_tokens") as u64,
            cache_read_input_tokens: c("cost_cache_read_tokens") as u64,
            runs: c("cost_runs") as u64,
            agents_usd,
            interactive_usd,
        };
        Ok(CostSummary {
            agents_today_usd: today.agents_usd,
            today,
            lifetime,
            day_start_ms,
        })
    }

    /// A task's newest costs (oldest first) and the sum of all of them, for `task.show`.
    pub(super) fn task_costs(&self, task: i64) -> Result<(Vec<CostEntry>, CostTotals), ErrorBody> {
        let rows = self
            .store
            .costs_of_task(task, MAX_TASK_COSTS)
            .map_err(super::internal)?;
        let sums = self.store.task_cost_totals(task).map_err(super::internal)?;
        Ok((rows.into_iter().map(entry).collect(), totals(sums)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(source: &str, usd: f64) -> CostRecord {
        CostRecord {
            session: "s1".into(),
            source: source.into(),
            usd,
            ..CostRecord::default()
        }
    }

    #[test]
    fn a_record_is_checked_before_it_is_kept() {
        assert_eq!(check(&record("agent", 0.0)), Ok(()));
        assert_eq!(check(&record("interactive", 12.5)), Ok(()));
        for (bad, why) in [
            (record("agent", -0.01), "from 0"),
            (record("agent", f64::NAN), "from 0"),
            (record("agent", f64::INFINITY), "from 0"),
            (record("agent", MAX_USD * 2.0), "from 0"),
            (record("robot", 1.0), "source"),
            (
                CostRecord {
                    session: " ".into(),
                    ..record("agent", 1.0)
                },
                "session",
            ),
            (
                CostRecord {
                    model: Some("m".repeat(MAX_TEXT + 1)),
                    ..record("agent", 1.0)
                },
                "longer",
            ),
            (
                CostRecord {
                    unpriced: vec!["m".into(); MAX_UNPRICED + 1],
                    ..record("agent", 1.0)
                },
                "unpriced",
            ),
        ] {
            let e = check(&bad).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn dollars_count_in_micro_dollars() {
        assert_eq!(micro(0.123_456_7), 123_457);
        assert_eq!(micro(0.0), 0);
        assert_eq!(micro(1.5), 1_500_000);
    }
}
