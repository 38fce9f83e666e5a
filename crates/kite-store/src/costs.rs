//! Costs: what each agent attempt and each person's Claude Code session cost, one row each
//! (migration 0004). The daemon validates a record before it gets here; this module only writes
//! rows and sums them. Rows are never deleted: retention archives a task but keeps its costs, so
//! a day's or a lifetime's spend does not shrink when old tasks leave.

use crate::{Result, Store};
use rusqlite::{params, Row};

/// One cost as stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CostRow {
    pub at_ms: i64,
    /// The kite session that ran.
    pub session: String,
    pub task_id: Option<i64>,
    pub attempt: Option<u32>,
    /// `agent` or `interactive`.
    pub source: String,
    pub usd: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub model: Option<String>,
    pub turns: u64,
    pub duration_ms: u64,
    /// Claude Code's own session id.
    pub agent_session: Option<String>,
    pub outcome: Option<String>,
    /// Models the price table did not know.
    pub unpriced: Vec<String>,
}

/// Costs summed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CostSums {
    pub usd: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
    /// Rows summed.
    pub runs: u64,
    /// Of `usd`, sources `agent` and `review`: what the agents kite started cost.
    pub agents_usd: f64,
    /// Of `usd`, source `interactive`.
    pub interactive_usd: f64,
}

/// Recorded costs.
pub trait CostStore {
    /// Writes one cost; returns its id.
    fn insert_cost(&self, c: &CostRow) -> Result<i64>;

    /// A task's costs, oldest first: the newest `limit` of them.
    fn costs_of_task(&self, task: i64, limit: u32) -> Result<Vec<CostRow>>;

    /// Every cost of a task, summed.
    fn task_cost_totals(&self, task: i64) -> Result<CostSums>;

    /// Costs recorded at or after `since_ms`, summed (`i64::MIN`: every cost ever recorded, a
    /// scan of the table).
    fn cost_totals_since(&self, since_ms: i64) -> Result<CostSums>;
}

const COLUMNS: &str = "at_ms, session, task_id, attempt, source, usd, input_tokens, output_tokens,
    cache_creation_input_tokens, cache_read_input_tokens, model, turns, duration_ms, agent_session, outcome, unpriced";

// One aggregate for both filters, so task and time totals cannot drift apart. total() is 0.0 on
// no rows where sum() would be NULL.
const SUMS: &str = "total(usd), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
    coalesce(sum(cache_creation_input_tokens), 0), coalesce(sum(cache_read_input_tokens), 0), count(*),
    total(CASE WHEN source IN ('agent', 'review') THEN usd END), total(CASE WHEN source = 'interactive' THEN usd END)";

fn cost_from_row(r: &Row<'_>) -> rusqlite::Result<CostRow> {
    let unpriced: String = r.get(15)?;
    Ok(CostRow {
        at_ms: r.get(0)?,
        session: r.get(1)?,
        task_id: r.get(2)?,
        attempt: r.get::<_, Option<i64>>(3)?.map(|a| a as u32),
        source: r.get(4)?,
        usd: r.get(5)?,
        input_tokens: r.get::<_, i64>(6)? as u64,
        output_tokens: r.get::<_, i64>(7)? as u64,
        cache_creation_input_tokens: r.get::<_, i64>(8)? as u64,
        cache_read_input_tokens: r.get::<_, i64>(9)? as u64,
        model: r.get(10)?,
        turns: r.get::<_, i64>(11)? as u64,
        duration_ms: r.get::<_, i64>(12)? as u64,
        agent_session: r.get(13)?,
        outcome: r.get(14)?,
        // Written by `insert_cost` as a JSON array; anything else reads as none.
        unpriced: serde_json::from_str(&unpriced).unwrap_or_default(),
    })
}

fn sums_from_row(r: &Row<'_>) -> rusqlite::Result<CostSums> {
    Ok(CostSums {
        usd: r.get(0)?,
        input_tokens: r.get::<_, i64>(1)? as u64,
        output_tokens: r.get::<_, i64>(2)? as u64,
        cache_creation_input_tokens: r.get::<_, i64>(3)? as u64,
        cache_read_input_tokens: r.get::<_, i64>(4)? as u64,
        runs: r.get::<_, i64>(5)? as u64,
        agents_usd: r.get(6)?,
        interactive_usd: r.get(7)?,
    })
}

/// A count as SQLite stores it (a u64 past i64::MAX is clamped: no token count gets there).
fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl CostStore for Store {
    fn insert_cost(&self, c: &CostRow) -> Result<i64> {
        let unpriced = serde_json::to_string(&c.unpriced).unwrap_or_else(|_| "[]".into());
        self.conn
            .prepare_cached(&format!("INSERT INTO costs ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"))?
            .execute(params![
                c.at_ms,
                c.session,
                c.task_id,
                c.attempt.map(i64::from),
                c.source,
                c.usd,
                int(c.input_tokens),
                int(c.output_tokens),
                int(c.cache_creation_input_tokens),
                int(c.cache_read_input_tokens),
                c.model,
                int(c.turns),
                int(c.duration_ms),
                c.agent_session,
                c.outcome,
                unpriced,
            ])?;
        Ok(self.conn.last_insert_rowid())
    }

    fn costs_of_task(&self, task: i64, limit: u32) -> Result<Vec<CostRow>> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM (SELECT id, {COLUMNS} FROM costs WHERE task_id = ?1 ORDER BY id DESC LIMIT ?2) ORDER BY id"
        ))?;
        let rows = st.query_map(params![task, i64::from(limit)], cost_from_row)?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    fn task_cost_totals(&self, task: i64) -> Result<CostSums> {
        Ok(self
            .conn
            .prepare_cached(&format!("SELECT {SUMS} FROM costs WHERE task_id = ?1"))?
            .query_row([task], sums_from_row)?)
    }

    fn cost_totals_since(&self, since_ms: i64) -> Result<CostSums> {
        Ok(self
            .conn
            .prepare_cached(&format!("SELECT {SUMS} FROM costs WHERE at_ms >= ?1"))?
            .query_row([since_ms], sums_from_row)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    fn cost(at_ms: i64, task: Option<i64>, source: &str, usd: f64, tokens: u64) -> CostRow {
        CostRow {
            at_ms,
            session: "s1".into(),
            task_id: task,
            attempt: task.map(|_| 1),
            source: source.into(),
            usd,
            input_tokens: tokens,
            output_tokens: tokens * 2,
            cache_creation_input_tokens: tokens * 3,
            cache_read_input_tokens: tokens * 4,
            ..CostRow::default()
        }
    }

    #[test]
    fn a_cost_round_trips() {
        let s = Store::open_in_memory().unwrap();
        let row = CostRow {
            model: Some("claude-sonnet-4-5".into()),
            turns: 7,
            duration_ms: 42_000,
            agent_session: Some("cc-1".into()),
            outcome: Some("finished".into()),
            unpriced: vec!["claude-next".into()],
            ..cost(100, Some(3), "agent", 0.25, 10)
        };
        let id = s.insert_cost(&row).unwrap();
        assert_eq!(
            s.insert_cost(&cost(101, None, "interactive", 0.5, 1))
                .unwrap(),
            id + 1
        );
        assert_eq!(s.costs_of_task(3, 10).unwrap(), vec![row]);
        assert!(s.costs_of_task(4, 10).unwrap().is_empty());
    }

    #[test]
    fn a_tasks_costs_are_its_newest_oldest_first_and_its_totals_are_all_of_them() {
        let s = Store::open_in_memory().unwrap();
        for i in 1..=5 {
            s.insert_cost(&CostRow {
                attempt: Some(i),
                ..cost(i64::from(i), Some(1), "agent", 0.5, 1)
            })
            .unwrap();
        }
        s.insert_cost(&cost(9, Some(2), "agent", 9.0, 100)).unwrap();
        let attempts: Vec<Option<u32>> = s
            .costs_of_task(1, 3)
            .unwrap()
            .iter()
            .map(|c| c.attempt)
            .collect();
        assert_eq!(attempts, [Some(3), Some(4), Some(5)]);
        let t = s.task_cost_totals(1).unwrap();
        assert_eq!(
            (
                t.usd,
                t.runs,
                t.input_tokens,
                t.output_tokens,
                t.cache_creation_input_tokens,
                t.cache_read_input_tokens
            ),
            (2.5, 5, 5, 10, 15, 20)
        );
        assert_eq!((t.agents_usd, t.interactive_usd), (2.5, 0.0));
        assert_eq!(
            s.task_cost_totals(7).unwrap(),
            CostSums::default(),
            "no costs sum to zero"
        );
    }

    #[test]
    fn totals_since_a_time_split_agents_and_people() {
        let s = Store::open_in_memory().unwrap();
        assert_eq!(s.cost_totals_since(i64::MIN).unwrap(), CostSums::default());
        s.insert_cost(&cost(50, Some(1), "agent", 1.0, 10)).unwrap();
        s.insert_cost(&cost(100, Some(1), "agent", 0.25, 1))
            .unwrap();
        s.insert_cost(&cost(150, None, "interactive", 0.5, 2))
            .unwrap();
        let today = s.cost_totals_since(100).unwrap();
        assert_eq!(
            (
                today.usd,
                today.runs,
                today.agents_usd,
                today.interactive_usd
            ),
            (0.75, 2, 0.25, 0.5)
        );
        assert_eq!((today.input_tokens, today.cache_read_input_tokens), (3, 12));
        let lifetime = s.cost_totals_since(i64::MIN).unwrap();
        assert_eq!(
            (
                lifetime.usd,
                lifetime.runs,
                lifetime.agents_usd,
                lifetime.output_tokens
            ),
            (1.75, 3, 1.25, 26)
        );
        // A reviewer kite started is agents' spend too.
        s.insert_cost(&cost(200, Some(1), "review", 0.5, 1)).unwrap();
        let later = s.cost_totals_since(200).unwrap();
        assert_eq!((later.usd, later.agents_usd, later.interactive_usd), (0.5, 0.5, 0.0));
    }

    #[test]
    fn costs_stay_when_their_task_is_archived() {
        let s = Store::open_in_memory().unwrap();
        let t = s
            .insert_task(
                &crate::NewTaskRow {
                    title: "t",
                    ..Default::default()
                },
                1,
            )
            .unwrap();
        s.insert_cost(&cost(2, Some(t), "agent", 1.0, 1)).unwrap();
        s.delete_task(t).unwrap();
        assert_eq!(s.task_cost_totals(t).unwrap().runs, 1);
        assert_eq!(s.cost_totals_since(0).unwrap().usd, 1.0);
    }

    #[test]
    fn cost_queries_use_their_indexes() {
        let s = Store::open_in_memory().unwrap();
        for (sql, index) in [
            (
                format!("SELECT {SUMS} FROM costs WHERE task_id = ?1"),
                "costs_task",
            ),
            (
                format!("SELECT {SUMS} FROM costs WHERE at_ms >= ?1"),
                "costs_at",
            ),
        ] {
            let mut st = s
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let plan: Vec<String> = st
                .query_map([1], |r| r.get::<_, String>(3))
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            assert!(plan.join("; ").contains(index), "{sql}: {plan:?}");
        }
    }
}
