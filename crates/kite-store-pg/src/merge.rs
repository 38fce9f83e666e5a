//! The merge queue's book on PostgreSQL: one row per landing, lifetime counts per template.

use crate::{int, own, PgStore, Result};
use kite_core::{MergeCounts, MergeEntry, MergeState};
use kite_store::{MergeStore, StoreError};
use tokio_postgres::Row;
use std::collections::BTreeMap;

const COLUMNS: &str = "task_id, title, template, branch, target, state, detail, base, new, verified, session, token,
    queued_at_ms, updated_at_ms, attempts, review, tests";

const IN_FLIGHT: &str = "state IN ('queued', 'verifying', 'moving', 'waiting')";

fn entry_from_row(r: &Row) -> Result<MergeEntry> {
    let state: &str = r.get(5);
    let state = MergeState::parse(state).ok_or_else(|| StoreError::Corrupt(format!("unknown merge state `{state}`")))?;
    Ok(MergeEntry {
        task_id: r.get(0),
        title: r.get(1),
        template: r.get(2),
        branch: r.get(3),
        target: r.get(4),
        state,
        detail: r.get(6),
        base: r.get(7),
        new: r.get(8),
        verified: r.get(9),
        session: r.get(10),
        token: r.get::<_, Option<i64>>(11).map(|t| t as u64),
        queued_at_ms: r.get(12),
        updated_at_ms: r.get(13),
        attempts: r.get::<_, i64>(14) as u32,
        review: r.get::<_, Option<&str>>(15).and_then(|s| serde_json::from_str(s).ok()),
        tests: r.get::<_, Option<&str>>(16).and_then(|s| serde_json::from_str(s).ok()),
    })
}

fn counts_from_row(r: &Row) -> MergeCounts {
    MergeCounts {
        landed: r.get::<_, i64>(1) as u64,
        rejected: r.get::<_, i64>(2) as u64,
        conflicted: r.get::<_, i64>(3) as u64,
        not_verified: r.get::<_, i64>(4) as u64,
    }
}

/// Runs `sql` with an entry's columns as $1..$17 in `COLUMNS` order.
fn with_entry<T>(e: &MergeEntry, f: impl FnOnce(&[&(dyn tokio_postgres::types::ToSql + Sync)]) -> Result<T>) -> Result<T> {
    let state = e.state.as_str();
    let token = e.token.map(|t| t as i64);
    let attempts = i64::from(e.attempts);
    let review = e.review.as_ref().and_then(|v| serde_json::to_string(v).ok());
    let tests = e.tests.as_ref().and_then(|v| serde_json::to_string(v).ok());
    f(&[
        &e.task_id, &e.title, &e.template, &e.branch, &e.target, &state, &e.detail, &e.base, &e.new, &e.verified, &e.session, &token,
        &e.queued_at_ms, &e.updated_at_ms, &attempts, &review, &tests,
    ])
}

impl MergeStore for PgStore {
    fn insert_merge_entry(&self, e: &MergeEntry) -> Result<i64> {
        let id = with_entry(e, |p| {
            self.one(
                &format!("INSERT INTO merge_entries ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id"),
                p,
            )
        })?
        .get(0);
        self.wrote.set(true);
        Ok(id)
    }

    fn update_merge_entry(&self, e: &MergeEntry) -> Result<()> {
        // Every column but queued_at_ms ($13), which is dropped from the list.
        with_entry(e, |p| {
            let p: Vec<_> = p.iter().enumerate().filter(|(i, _)| *i != 12).map(|(_, v)| *v).collect();
            self.exec(
                "UPDATE merge_entries SET title = $2, template = $3, branch = $4, target = $5, state = $6, detail = $7,
                 base = $8, new = $9, verified = $10, session = $11, token = $12, updated_at_ms = $13, attempts = $14,
                 review = $15, tests = $16 WHERE id = (SELECT max(id) FROM merge_entries WHERE task_id = $1)",
                &p,
            )
        })?;
        Ok(())
    }

    fn merge_entry(&self, task: i64) -> Result<Option<MergeEntry>> {
        self.opt(&format!("SELECT {COLUMNS} FROM merge_entries WHERE task_id = $1 ORDER BY id DESC LIMIT 1"), &[&task])?
            .as_ref()
            .map(entry_from_row)
            .transpose()
    }

    fn merge_in_flight(&self) -> Result<Vec<MergeEntry>> {
        self.query(&format!("SELECT {COLUMNS} FROM merge_entries WHERE {IN_FLIGHT} ORDER BY id"), &[])?.iter().map(entry_from_row).collect()
    }

    fn merge_finished(&self, limit: u32) -> Result<Vec<MergeEntry>> {
        let mut v: Vec<MergeEntry> = self
            .query(&format!("SELECT {COLUMNS} FROM merge_entries WHERE NOT ({IN_FLIGHT}) ORDER BY id DESC LIMIT $1"), &[&i64::from(limit)])?
            .iter()
            .map(entry_from_row)
            .collect::<Result<_>>()?;
        v.reverse();
        Ok(v)
    }

    fn drop_in_flight_merge_entries(&self, task: i64) -> Result<usize> {
        Ok(self.exec(&format!("DELETE FROM merge_entries WHERE task_id = $1 AND {IN_FLIGHT}"), &[&task])? as usize)
    }

    fn add_merge_counts(&self, template: &str, c: &MergeCounts) -> Result<()> {
        self.send(
            "INSERT INTO merge_counts (template, landed, rejected, conflicted, not_verified) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (template) DO UPDATE SET landed = merge_counts.landed + excluded.landed,
             rejected = merge_counts.rejected + excluded.rejected, conflicted = merge_counts.conflicted + excluded.conflicted,
             not_verified = merge_counts.not_verified + excluded.not_verified",
            vec![own(template.to_string()), own(int(c.landed)), own(int(c.rejected)), own(int(c.conflicted)), own(int(c.not_verified))],
        )?;
        Ok(())
    }

    fn merge_counts(&self) -> Result<(MergeCounts, BTreeMap<String, MergeCounts>)> {
        let mut total = MergeCounts::default();
        let mut by = BTreeMap::new();
        for r in self.query("SELECT template, landed, rejected, conflicted, not_verified FROM merge_counts", &[])? {
            let name: String = r.get(0);
            if name.is_empty() {
                total = counts_from_row(&r);
            } else {
                by.insert(name, counts_from_row(&r));
            }
        }
        Ok((total, by))
    }
}
