//! What agents cost, one row each, on PostgreSQL (the SQLite backend's costs, same sums).

use crate::{int, PgStore, Result};
use kite_store::{CostRow, CostStore, CostSums};
use tokio_postgres::Row;

const COLUMNS: &str = "at_ms, session, task_id, attempt, source, usd, input_tokens, output_tokens,
    cache_creation_input_tokens, cache_read_input_tokens, model, turns, duration_ms, agent_session, outcome, unpriced";

const SUMS: &str = "coalesce(sum(usd), 0)::float8, coalesce(sum(input_tokens), 0)::bigint, coalesce(sum(output_tokens), 0)::bigint,
    coalesce(sum(cache_creation_input_tokens), 0)::bigint, coalesce(sum(cache_read_input_tokens), 0)::bigint, count(*),
    coalesce(sum(CASE WHEN source IN ('agent', 'review') THEN usd END), 0)::float8,
    coalesce(sum(CASE WHEN source = 'interactive' THEN usd END), 0)::float8";

fn cost_from_row(r: &Row) -> CostRow {
    CostRow {
        at_ms: r.get(0),
        session: r.get(1),
        task_id: r.get(2),
        attempt: r.get::<_, Option<i64>>(3).map(|a| a as u32),
        source: r.get(4),
        usd: r.get(5),
        input_tokens: r.get::<_, i64>(6) as u64,
        output_tokens: r.get::<_, i64>(7) as u64,
        cache_creation_input_tokens: r.get::<_, i64>(8) as u64,
        cache_read_input_tokens: r.get::<_, i64>(9) as u64,
        model: r.get(10),
        turns: r.get::<_, i64>(11) as u64,
        duration_ms: r.get::<_, i64>(12) as u64,
        agent_session: r.get(13),
        outcome: r.get(14),
        unpriced: serde_json::from_str(r.get(15)).unwrap_or_default(),
    }
}

fn sums_from_row(r: &Row) -> CostSums {
    CostSums {
        usd: r.get(0),
        input_tokens: r.get::<_, i64>(1) as u64,
        output_tokens: r.get::<_, i64>(2) as u64,
        cache_creation_input_tokens: r.get::<_, i64>(3) as u64,
        cache_read_input_tokens: r.get::<_, i64>(4) as u64,
        runs: r.get::<_, i64>(5) as u64,
        agents_usd: r.get(6),
        interactive_usd: r.get(7),
    }
}

impl CostStore for PgStore {
    fn insert_cost(&self, c: &CostRow) -> Result<i64> {
        let unpriced = serde_json::to_string(&c.unpriced).unwrap_or_else(|_| "[]".into());
        let id = self
            .one(
                &format!("INSERT INTO costs ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id"),
                &[
                    &c.at_ms,
                    &c.session,
                    &c.task_id,
                    &c.attempt.map(i64::from),
                    &c.source,
                    &c.usd,
                    &int(c.input_tokens),
                    &int(c.output_tokens),
                    &int(c.cache_creation_input_tokens),
                    &int(c.cache_read_input_tokens),
                    &c.model,
                    &int(c.turns),
                    &int(c.duration_ms),
                    &c.agent_session,
                    &c.outcome,
                    &unpriced,
                ],
            )?
            .get(0);
        self.wrote.set(true);
        Ok(id)
    }

    fn costs_of_task(&self, task: i64, limit: u32) -> Result<Vec<CostRow>> {
        Ok(self
            .query(
                &format!("SELECT {COLUMNS} FROM (SELECT id, {COLUMNS} FROM costs WHERE task_id = $1 ORDER BY id DESC LIMIT $2) c ORDER BY id"),
                &[&task, &i64::from(limit)],
            )?
            .iter()
            .map(cost_from_row)
            .collect())
    }

    fn task_cost_totals(&self, task: i64) -> Result<CostSums> {
        Ok(sums_from_row(&self.one(&format!("SELECT {SUMS} FROM costs WHERE task_id = $1"), &[&task])?))
    }

    fn cost_totals_since(&self, since_ms: i64) -> Result<CostSums> {
        Ok(sums_from_row(&self.one(&format!("SELECT {SUMS} FROM costs WHERE at_ms >= $1"), &[&since_ms])?))
    }
}
