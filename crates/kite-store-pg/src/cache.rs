//! The task rows the daemon is working with, kept in memory, so that a claim or a finish reads
//! nothing from the server: each read would be a round trip, and on a busy machine round trips,
//! not the server's work, were what bounded a batch (about 23 a batch of 6 requests before).
//!
//! It is safe because one daemon writes under the lease, and it stays correct if another writer
//! appears anyway (a person's psql): every status change the daemon makes is conditional on the
//! row being as the cache says (`WHERE status = .. AND claim_token IS NOT DISTINCT FROM ..`),
//! and a change that finds the row otherwise fails the batch, which empties the cache. Reads
//! that write nothing (`kite task show`) may see a row as the daemon last knew it.
//!
//! The cache follows the transaction: every change is journaled, a savepoint's rollback puts the
//! rows back as they were when it began, and a rolled-back batch forgets everything. Finished
//! tasks leave it at the commit that finished them, so it holds the open tasks and little more.

use kite_core::{Task, TaskStatus};
use std::collections::HashMap;

/// More rows than this at a commit and the cache starts over (open tasks are rarely that many).
const MAX_ROWS: usize = 100_000;

#[derive(Default)]
pub(crate) struct TaskCache {
    rows: HashMap<i64, Task>,
    /// Each change of this transaction: the row's id and what it was before.
    journal: Vec<(i64, Option<Task>)>,
    /// Where each open savepoint's changes begin in the journal.
    marks: Vec<usize>,
}

impl TaskCache {
    pub(crate) fn get(&self, id: i64) -> Option<&Task> {
        self.rows.get(&id)
    }

    /// Sets (or with `None`, forgets) a row, journaled.
    pub(crate) fn put(&mut self, id: i64, row: Option<Task>) {
        let before = match row {
            Some(t) => self.rows.insert(id, t),
            None => self.rows.remove(&id),
        };
        self.journal.push((id, before));
    }

    /// Changes a cached row in place, journaled; a row not cached stays so.
    pub(crate) fn update(&mut self, id: i64, f: impl FnOnce(&mut Task)) {
        if let Some(mut t) = self.rows.get(&id).cloned() {
            f(&mut t);
            self.put(id, Some(t));
        }
    }

    pub(crate) fn begin(&mut self) {
        self.journal.clear();
        self.marks.clear();
    }

    pub(crate) fn savepoint(&mut self) {
        self.marks.push(self.journal.len());
    }

    /// The savepoint's changes stay, as part of the enclosing transaction or savepoint.
    pub(crate) fn release(&mut self) {
        self.marks.pop();
    }

    /// Puts back what the savepoint's changes replaced.
    pub(crate) fn rollback_savepoint(&mut self) {
        let Some(m) = self.marks.pop() else { return };
        while self.journal.len() > m {
            let (id, before) = self.journal.pop().expect("journal longer than its mark");
            match before {
                Some(t) => self.rows.insert(id, t),
                None => self.rows.remove(&id),
            };
        }
    }

    /// The transaction committed: finished tasks leave, and the journal starts again.
    pub(crate) fn commit(&mut self) {
        for (id, _) in std::mem::take(&mut self.journal) {
            if self.rows.get(&id).is_some_and(|t| is_finished(t.status)) {
                self.rows.remove(&id);
            }
        }
        self.marks.clear();
        if self.rows.len() > MAX_ROWS {
            self.rows.clear();
        }
    }

    /// The transaction rolled back (or failed): nothing in memory can be trusted.
    pub(crate) fn forget(&mut self) {
        self.rows.clear();
        self.journal.clear();
        self.marks.clear();
    }
}

fn is_finished(s: TaskStatus) -> bool {
    matches!(s, TaskStatus::Done | TaskStatus::Failed | TaskStatus::Pruned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: i64, status: TaskStatus) -> Task {
        Task {
            id,
            title: format!("t{id}"),
            body: String::new(),
            status,
            priority: 0,
            depends_on: Vec::new(),
            files: Vec::new(),
            dedup_key: None,
            stale_after_secs: None,
            workstream: None,
            template: None,
            attempts: 0,
            claim_session: None,
            claim_token: None,
            result: None,
            reason: None,
            created_at_ms: 0,
            updated_at_ms: 0,
        }
    }

    #[test]
    fn a_savepoint_rollback_puts_rows_back_and_a_commit_lets_finished_tasks_go() {
        let mut c = TaskCache::default();
        c.begin();
        c.put(1, Some(task(1, TaskStatus::Pending)));
        c.savepoint();
        c.update(1, |t| t.status = TaskStatus::Active);
        c.put(2, Some(task(2, TaskStatus::Pending)));
        c.rollback_savepoint();
        assert_eq!(c.get(1).map(|t| t.status), Some(TaskStatus::Pending));
        assert!(c.get(2).is_none());
        c.savepoint();
        c.update(1, |t| t.status = TaskStatus::Done);
        c.update(3, |t| t.status = TaskStatus::Done);
        c.release();
        assert!(c.get(3).is_none(), "a row not cached stays so");
        c.commit();
        assert!(c.get(1).is_none(), "a finished task leaves at its commit");
        c.begin();
        c.put(4, Some(task(4, TaskStatus::Pending)));
        c.forget();
        assert!(c.get(4).is_none());
    }
}
