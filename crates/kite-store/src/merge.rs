//! The merge queue's book (migration 0005): one row per landing of a task's branch and the
//! lifetime counts per template. The coordinator is the only writer, like every other table, so
//! the book is in the same transactions and the same file as the tasks it lands; a team's store
//! on another engine carries it the same way.

use crate::{Result, Store};
use kite_core::{MergeCounts, MergeEntry, MergeState, MergeTally};
use rusqlite::{params, OptionalExtension, Row};
use std::collections::BTreeMap;

/// The merge queue's book.
pub trait MergeStore {
    /// Appends an entry; returns its row id.
    fn insert_merge_entry(&self, e: &MergeEntry) -> Result<i64>;

    /// Rewrites the task's newest entry (every field but the task id and when it was queued).
    fn update_merge_entry(&self, e: &MergeEntry) -> Result<()>;

    /// The task's newest entry.
    fn merge_entry(&self, task: i64) -> Result<Option<MergeEntry>>;

    /// Entries in flight, oldest first.
    fn merge_in_flight(&self) -> Result<Vec<MergeEntry>>;

    /// The newest `limit` finished entries, oldest first.
    fn merge_finished(&self, limit: u32) -> Result<Vec<MergeEntry>>;

    /// Removes the task's entries that are in flight (a new attempt's entry replaces them).
    fn drop_in_flight_merge_entries(&self, task: i64) -> Result<usize>;

    /// Adds a landing's outcome to the lifetime counts: of every template, and of `template`.
    fn tally_merge(&self, template: Option<&str>, t: MergeTally) -> Result<()> {
        let mut c = MergeCounts::default();
        c.add(t);
        self.add_merge_counts("", &c)?;
        if let Some(name) = template.filter(|n| !n.is_empty()) {
            self.add_merge_counts(name, &c)?;
        }
        Ok(())
    }

    /// Adds raw counts to one row of the counts: `""` is every template together. (The import of
    /// an old book's counts; live landings use [`MergeStore::tally_merge`].)
    fn add_merge_counts(&self, template: &str, c: &MergeCounts) -> Result<()>;

    /// The counts of every template together, and of each template.
    fn merge_counts(&self) -> Result<(MergeCounts, BTreeMap<String, MergeCounts>)>;
}

const COLUMNS: &str =
    "task_id, title, template, branch, target, state, detail, base, new, verified, session, token,
    queued_at_ms, updated_at_ms, attempts, review, tests";

const IN_FLIGHT: &str = "state IN ('queued', 'verifying', 'moving', 'waiting')";

fn entry_from_row(r: &Row<'_>) -> rusqlite::Result<MergeEntry> {
    let state: String = r.get(5)?;
    let state = MergeState::parse(&state).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            5,
            rusqlite::types::Type::Text,
            format!("unknown merge state `{state}`").into(),
        )
    })?;
    Ok(MergeEntry {
        task_id: r.get(0)?,
        title: r.get(1)?,
        template: r.get(2)?,
        branch: r.get(3)?,
        target: r.get(4)?,
        state,
        detail: r.get(6)?,
        base: r.get(7)?,
        new: r.get(8)?,
        verified: r.get(9)?,
        session: r.get(10)?,
        token: r.get::<_, Option<i64>>(11)?.map(|t| t as u64),
        queued_at_ms: r.get(12)?,
        updated_at_ms: r.get(13)?,
        attempts: r.get(14)?,
        review: r
            .get::<_, Option<String>>(15)?
            .and_then(|s| serde_json::from_str(&s).ok()),
        tests: r
            .get::<_, Option<String>>(16)?
            .and_then(|s| serde_json::from_str(&s).ok()),
    })
}

fn counts_from_row(r: &Row<'_>) -> rusqlite::Result<MergeCounts> {
    Ok(MergeCounts {
        landed: r.get::<_, i64>(1)? as u64,
        rejected: r.get::<_, i64>(2)? as u64,
        conflicted: r.get::<_, i64>(3)? as u64,
        not_verified: r.get::<_, i64>(4)? as u64,
    })
}

/// An entry's columns in `COLUMNS` order, ?1 to ?17 (an update leaves ?13, `queued_at_ms`, alone).
fn entry_params(e: &MergeEntry) -> [Box<dyn rusqlite::ToSql + '_>; 17] {
    [
        Box::new(e.task_id),
        Box::new(&e.title),
        Box::new(&e.template),
        Box::new(&e.branch),
        Box::new(&e.target),
        Box::new(e.state.as_str()),
        Box::new(&e.detail),
        Box::new(&e.base),
        Box::new(&e.new),
        Box::new(e.verified),
        Box::new(&e.session),
        Box::new(e.token.map(|t| t as i64)),
        Box::new(e.queued_at_ms),
        Box::new(e.updated_at_ms),
        Box::new(e.attempts),
        Box::new(
            e.review
                .as_ref()
                .and_then(|v| serde_json::to_string(v).ok()),
        ),
        Box::new(e.tests.as_ref().and_then(|v| serde_json::to_string(v).ok())),
    ]
}

impl MergeStore for Store {
    fn insert_merge_entry(&self, e: &MergeEntry) -> Result<i64> {
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO merge_entries ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
            ))?
            .execute(rusqlite::params_from_iter(entry_params(e)))?;
        Ok(self.conn.last_insert_rowid())
    }

    fn update_merge_entry(&self, e: &MergeEntry) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE merge_entries SET title = ?2, template = ?3, branch = ?4, target = ?5, state = ?6, detail = ?7,
                 base = ?8, new = ?9, verified = ?10, session = ?11, token = ?12, updated_at_ms = ?14, attempts = ?15,
                 review = ?16, tests = ?17 WHERE id = (SELECT max(id) FROM merge_entries WHERE task_id = ?1)",
            )?
            .execute(rusqlite::params_from_iter(entry_params(e)))?;
        Ok(())
    }

    fn merge_entry(&self, task: i64) -> Result<Option<MergeEntry>> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM merge_entries WHERE task_id = ?1 ORDER BY id DESC LIMIT 1"
            ))?
            .query_row([task], entry_from_row)
            .optional()?)
    }

    fn merge_in_flight(&self) -> Result<Vec<MergeEntry>> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM merge_entries WHERE {IN_FLIGHT} ORDER BY id"
        ))?;
        let rows = st.query_map([], entry_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn merge_finished(&self, limit: u32) -> Result<Vec<MergeEntry>> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM merge_entries WHERE NOT ({IN_FLIGHT}) ORDER BY id DESC LIMIT ?1"
        ))?;
        let rows = st.query_map([limit], entry_from_row)?;
        let mut v: Vec<MergeEntry> = rows.collect::<rusqlite::Result<_>>()?;
        v.reverse();
        Ok(v)
    }

    fn drop_in_flight_merge_entries(&self, task: i64) -> Result<usize> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "DELETE FROM merge_entries WHERE task_id = ?1 AND {IN_FLIGHT}"
            ))?
            .execute([task])?)
    }

    fn add_merge_counts(&self, template: &str, c: &MergeCounts) -> Result<()> {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.conn
            .prepare_cached(
                "INSERT INTO merge_counts (template, landed, rejected, conflicted, not_verified) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (template) DO UPDATE SET landed = landed + ?2, rejected = rejected + ?3,
                 conflicted = conflicted + ?4, not_verified = not_verified + ?5",
            )?
            .execute(params![template, n(c.landed), n(c.rejected), n(c.conflicted), n(c.not_verified)])?;
        Ok(())
    }

    fn merge_counts(&self) -> Result<(MergeCounts, BTreeMap<String, MergeCounts>)> {
        let mut st = self.conn.prepare_cached(
            "SELECT template, landed, rejected, conflicted, not_verified FROM merge_counts",
        )?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, counts_from_row(r)?)))?;
        let mut total = MergeCounts::default();
        let mut by = BTreeMap::new();
        for row in rows {
            let (name, c) = row?;
            if name.is_empty() {
                total = c;
            } else {
                by.insert(name, c);
            }
        }
        Ok((total, by))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(task: i64, state: MergeState) -> MergeEntry {
        let fresh = MergeEntry::fresh(
            task,
            format!("task {task}"),
            format!("kite/task-{task}"),
            10,
        );
        MergeEntry {
            template: Some("todo".into()),
            target: Some("main".into()),
            state,
            session: Some("s1".into()),
            token: Some(u64::MAX >> 1),
            attempts: 2,
            ..fresh
        }
    }

    #[test]
    fn the_book_keeps_entries_in_flight_and_finished_apart_and_counts_per_template() {
        let s = Store::open_in_memory().unwrap();
        s.insert_merge_entry(&entry(1, MergeState::Queued)).unwrap();
        s.insert_merge_entry(&entry(2, MergeState::Landed)).unwrap();
        let mut e = entry(1, MergeState::Moving);
        e.new = Some("abc".into());
        e.updated_at_ms = 20;
        s.update_merge_entry(&e).unwrap();
        assert_eq!(s.merge_entry(1).unwrap(), Some(e.clone()));
        assert_eq!(s.merge_in_flight().unwrap(), vec![e]);
        assert_eq!(
            s.merge_finished(10)
                .unwrap()
                .iter()
                .map(|e| e.task_id)
                .collect::<Vec<_>>(),
            vec![2]
        );
        // A new attempt's entry replaces the one in flight; finished ones stay.
        assert_eq!(s.drop_in_flight_merge_entries(1).unwrap(), 1);
        assert_eq!(s.drop_in_flight_merge_entries(2).unwrap(), 0);
        assert_eq!(s.merge_entry(1).unwrap(), None);

        s.tally_merge(Some("todo"), MergeTally::LandedNotVerified)
            .unwrap();
        s.tally_merge(Some("todo"), MergeTally::Conflicted).unwrap();
        s.tally_merge(None, MergeTally::Rejected).unwrap();
        let (total, by) = s.merge_counts().unwrap();
        assert_eq!(
            total,
            MergeCounts {
                landed: 1,
                rejected: 1,
                conflicted: 1,
                not_verified: 1
            }
        );
        assert_eq!(
            by["todo"],
            MergeCounts {
                landed: 1,
                rejected: 0,
                conflicted: 1,
                not_verified: 1
            }
        );
        assert_eq!(by.len(), 1);
    }
}
