//! The merge queue's book: `merge.*`. The lander (kite-land, in the daemon's runner) does the git
//! work and records each step here; the CLI, the dashboard, `status` and the strategy loop read
//! the book here. It is in kite.db with the tasks it lands, so a step and the task's own change
//! can never disagree after a crash, and the one discard rule ([`kite_core::discard_refusal`]) is
//! checked where the task's status is known for certain.
//!
//! A daemon upgraded from the days of `<home>/merge/book.json` imports that file once at start
//! ([`import_book`]) and renames it, so landings in flight resume.

use super::{Handled, State};
use kite_core::{discard_refusal, MergeCounts, MergeEntry, MergeState};
use kite_proto::ops::{
    MergeBook, MergeDiscard, MergeEnqueue, MergeList, MergeShown, MergeStep, TaskRef, MAX_PAGE,
};
use kite_proto::{ErrorBody, LogEvent, Refusal};
use kite_store::Storage;
use std::collections::BTreeMap;
use std::path::Path;

/// Finished entries `merge.list` shows by default.
const DEFAULT_FINISHED: u32 = 20;
/// The longest detail kept with an entry (a verify output's tail is cut well before this).
const MAX_DETAIL: usize = 16 * 1024;

impl State {
    fn merge_latest(&self, task: i64) -> Result<Option<MergeEntry>, ErrorBody> {
        self.store.merge_entry(task).map_err(super::internal)
    }

    fn merge_event(&mut self, e: &MergeEntry) -> Result<(), ErrorBody> {
        let detail: String = e
            .detail
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        self.event(LogEvent::Merge {
            task: e.task_id,
            state: e.state,
            detail,
        })
    }

    pub(super) fn merge_enqueue(&mut self, a: MergeEnqueue) -> Handled<kite_core::MergeEntry> {
        let task = self.load_task(a.task)?;
        let fenced = |why: String| -> Handled<MergeEntry> {
            Err(Refusal::Fenced {
                task: a.task,
                session: a.session.clone(),
                why,
            }
            .into())
        };
        if task.status != kite_core::TaskStatus::Active {
            return fenced(format!(
                "it is {}; only an active task's work is queued for landing",
                task.status
            ));
        }
        if task.claim_session.as_deref() != Some(a.session.as_str())
            || task.claim_token != Some(a.token)
        {
            return fenced(format!(
                "its current claim is {} of {}",
                task.claim_token.unwrap_or(0),
                task.claim_session.as_deref().unwrap_or("no one")
            ));
        }
        if a.branch.trim().is_empty() || a.target.trim().is_empty() {
            return Err(
                Refusal::BadMergeStep("a landing needs a branch and a target".into()).into(),
            );
        }
        // One entry per task in flight: an earlier attempt's (cut short) gives way to this one.
        self.store
            .drop_in_flight_merge_entries(a.task)
            .map_err(super::internal)?;
        let mut e = self.new_entry(
            &task,
            a.branch,
            Some(a.target),
            MergeState::Queued,
            String::new(),
        );
        (e.session, e.token) = (Some(a.session), Some(a.token));
        self.store.insert_merge_entry(&e).map_err(super::internal)?;
        self.merge_event(&e)?;
        Ok(e)
    }

    pub(super) fn merge_step(&mut self, a: MergeStep) -> Handled<kite_core::MergeEntry> {
        let mut e = self
            .merge_latest(a.task)?
            .ok_or(Refusal::NotInMergeQueue(a.task))?;
        if !e.state.in_flight() {
            return Err(Refusal::LandingEnded {
                task: a.task,
                state: e.state.to_string(),
            }
            .into());
        }
        if a.tally.is_some() && a.state.in_flight() {
            return Err(Refusal::BadMergeStep(format!(
                "a landing that is still {} has no outcome to count",
                a.state
            ))
            .into());
        }
        if a.state == MergeState::Discarded {
            return Err(
                Refusal::BadMergeStep("work is discarded with merge.discard".into()).into(),
            );
        }
        e.state = a.state;
        e.detail = cut(a.detail);
        e.base = a.base.or(e.base);
        e.new = a.new.or(e.new);
        e.verified = a.verified.unwrap_or(e.verified);
        if a.state == MergeState::Queued {
            // Landing again (the target moved meanwhile): the last candidate's verdict and test
            // delta were not this landing's.
            e.review = None;
            e.tests = None;
        }
        e.review = a.review.or(e.review);
        e.tests = a.tests.or(e.tests);
        e.updated_at_ms = self.now_ms;
        self.store.update_merge_entry(&e).map_err(super::internal)?;
        if let Some(t) = a.tally {
            self.store
                .tally_merge(e.template.as_deref(), t)
                .map_err(super::internal)?;
        }
        self.merge_event(&e)?;
        Ok(e)
    }

    pub(super) fn merge_list(&mut self, a: MergeList) -> Handled<kite_proto::ops::MergeBook> {
        let finished = a.finished.unwrap_or(DEFAULT_FINISHED);
        if finished > MAX_PAGE {
            return Err(Refusal::PageTooLarge {
                op: "merge.list".into(),
                max: MAX_PAGE,
            }
            .into());
        }
        let mut entries = self
            .store
            .merge_finished(finished)
            .map_err(super::internal)?;
        entries.extend(self.store.merge_in_flight().map_err(super::internal)?);
        let (total, by_template) = self.store.merge_counts().map_err(super::internal)?;
        super::fit_frame(&mut entries);
        Ok(MergeBook {
            entries,
            total,
            by_template,
        })
    }

    pub(super) fn merge_show(&mut self, a: TaskRef) -> Handled<kite_proto::ops::MergeShown> {
        Ok(MergeShown {
            entry: self.merge_latest(a.task)?,
        })
    }

    pub(super) fn merge_discard(&mut self, a: MergeDiscard) -> Handled<kite_core::MergeEntry> {
        let task = self.load_task(a.task)?;
        let latest = self.merge_latest(a.task)?;
        if let Some(why) = discard_refusal(a.task, Some(task.status), latest.as_ref()) {
            return Err(Refusal::MayNotDiscard(why).into());
        }
        let detail = cut(format!("discarded by hand: {}", a.detail.trim()));
        let e = match latest {
            Some(mut e) => {
                e.state = MergeState::Discarded;
                e.detail = detail;
                e.updated_at_ms = self.now_ms;
                self.store.update_merge_entry(&e).map_err(super::internal)?;
                e
            }
            // Work that never reached the queue (an agent's worktree left behind): recorded too.
            None => {
                let e = self.new_entry(
                    &task,
                    format!("kite/task-{}", a.task),
                    None,
                    MergeState::Discarded,
                    detail,
                );
                self.store.insert_merge_entry(&e).map_err(super::internal)?;
                e
            }
        };
        self.merge_event(&e)?;
        Ok(e)
    }

    /// A fresh entry for `task`, as of now.
    fn new_entry(
        &self,
        task: &kite_core::Task,
        branch: String,
        target: Option<String>,
        state: MergeState,
        detail: String,
    ) -> MergeEntry {
        let fresh = MergeEntry::fresh(task.id, task.title.clone(), branch, self.now_ms);
        MergeEntry {
            template: task.template.clone(),
            target,
            state,
            detail,
            attempts: task.attempts,
            ..fresh
        }
    }
}

fn cut(mut s: String) -> String {
    if s.len() > MAX_DETAIL {
        let mut at = MAX_DETAIL;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
    }
    s
}

/// The book as `<home>/merge/book.json` held it (kite before the book moved into kite.db).
#[derive(serde::Deserialize)]
struct OldBook {
    entries: Vec<MergeEntry>,
    #[serde(default)]
    total: MergeCounts,
    #[serde(default)]
    by_template: BTreeMap<String, MergeCounts>,
}

/// Imports `<home>/merge/book.json` into the store when the store's book is empty, then renames
/// the file to `book.json.imported` (kept, never deleted). A file that does not parse is left
/// where it is and reported: the daemon starts with an empty book rather than not at all.
pub(crate) fn import_book(store: &dyn Storage, home: &Path) -> Result<usize, String> {
    let path = home.join("merge").join("book.json");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let old: OldBook = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "{} does not parse ({e}); it was not imported",
            path.display()
        )
    })?;
    let (total, _) = store.merge_counts().map_err(|e| e.to_string())?;
    let empty = total == MergeCounts::default()
        && store
            .merge_finished(1)
            .map_err(|e| e.to_string())?
            .is_empty()
        && store
            .merge_in_flight()
            .map_err(|e| e.to_string())?
            .is_empty();
    if empty {
        store.begin().map_err(|e| e.to_string())?;
        let wrote = (|| -> Result<(), kite_store::StoreError> {
            for e in &old.entries {
                store.insert_merge_entry(e)?;
            }
            store.add_merge_counts("", &old.total)?;
            for (name, c) in &old.by_template {
                store.add_merge_counts(name, c)?;
            }
            Ok(())
        })();
        match wrote {
            Ok(()) => {
                if store.commit_deferred().map_err(|e| e.to_string())?
                    == kite_store::Committed::NeedsSync
                {
                    if let Some(d) = store.durable() {
                        d.sync()
                            .map_err(|e| format!("cannot sync the imported book: {e}"))?;
                    }
                }
            }
            Err(e) => {
                store.rollback();
                return Err(format!("cannot import {}: {e}", path.display()));
            }
        }
    }
    let to = path.with_extension("json.imported");
    std::fs::rename(&path, &to)
        .map_err(|e| format!("cannot rename {} to {}: {e}", path.display(), to.display()))?;
    tracing::info!(
        "imported the merge queue's book ({} entries) from {} into kite.db",
        old.entries.len(),
        to.display()
    );
    Ok(if empty { old.entries.len() } else { 0 })
}
