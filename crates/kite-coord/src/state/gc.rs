//! Retention: events and finished tasks older than the configured age leave the live database
//! for JSON Lines files in `HOME/archive/` (`events.jsonl`, `tasks.jsonl`), so a long-running
//! project keeps a small database and a fast restart without losing its history.
//!
//! Order makes it safe: the rows are appended to the archive and the file is synced before the
//! rows are deleted in the batch's transaction. A crash between the two leaves a row in both
//! places; the next run archives it again, so an archive may hold a record twice (same id),
//! never lose one. Work is done in chunks, one per batch, so a large backlog never holds the
//! state owner for long: the daemon runs a chunk every [`GC_EVERY`] and again at the next batch
//! while more is due; `kite gc` calls the `gc` operation until it says `more: false`.

use super::{Handled, State};
use kite_proto::ops::{Gc, GcReport};
use kite_proto::{ErrorBody, Refusal};
use serde_json::json;
use std::io::Write;
use std::time::Duration;
use tokio::time::Instant;

/// The most events, and tasks, one chunk moves.
const CHUNK: u32 = 250;
/// How often the daemon looks for what is due.
pub(super) const GC_EVERY: Duration = Duration::from_secs(600);

/// Oldest allowed time (ms since the epoch) for a retention, or none for "forever".
fn cutoff(now_ms: i64, keep: Option<Duration>) -> Option<i64> {
    keep.map(|k| now_ms.saturating_sub(i64::try_from(k.as_millis()).unwrap_or(i64::MAX)))
}

impl State {
    pub(super) fn gc(&mut self, a: Gc) -> Handled<kite_proto::ops::GcReport> {
        let retention = match a.older_than_secs {
            Some(s) => {
                let d = Some(Duration::from_secs(s));
                crate::Retention { events: d, tasks: d }
            }
            None => self.retention,
        };
        Ok(self.gc_chunk(retention, a.dry_run)?)
    }

    /// The periodic run: one chunk now; when more is due, the next batch runs another (the caller
    /// has set the next period already).
    pub(super) fn gc_tick(&mut self, now: Instant) -> Result<(), ErrorBody> {
        let report = self.gc_chunk(self.retention, false)?;
        if report.events + report.tasks > 0 {
            tracing::info!(events = report.events, tasks = report.tasks, more = report.more, archive = %report.archive, "archived old events and finished tasks");
        }
        if report.more {
            self.next_gc = now;
        }
        Ok(())
    }

    fn gc_chunk(&mut self, retention: crate::Retention, dry_run: bool) -> Result<GcReport, ErrorBody> {
        // Events of this batch are rows first, so "the newest event stays" holds for them too.
        self.pending.flush_events(self.store.as_ref()).map_err(super::internal)?;
        let dir = crate::Home::new(&self.home).archive();
        let mut report = GcReport {
            dry_run,
            archive: dir.display().to_string(),
            events_older_than_secs: retention.events.map(|d| d.as_secs()),
            tasks_older_than_secs: retention.tasks.map(|d| d.as_secs()),
            ..Default::default()
        };
        if let Some(cut) = cutoff(self.now_ms, retention.events) {
            let events = self.store.events_older_than(cut, CHUNK).map_err(super::internal)?;
            report.events = events.len() as u64;
            report.more |= events.len() == CHUNK as usize;
            if let (false, Some(last)) = (dry_run, events.last().map(|e| e.0)) {
                let lines = events.iter().map(|(id, at_ms, kind, data)| json!({"id": id, "at_ms": at_ms, "kind": kind, "data": data}));
                append(&dir, "events.jsonl", lines)?;
                self.store.delete_events_through(last).map_err(super::internal)?;
            }
        }
        if let Some(cut) = cutoff(self.now_ms, retention.tasks) {
            // A task another depends on goes once its dependents went: pass again while a pass
            // moved something, so a finished chain leaves in one call.
            loop {
                let left = CHUNK - report.tasks as u32;
                let ids = self.store.finished_tasks_older_than(cut, left).map_err(super::internal)?;
                report.tasks += ids.len() as u64;
                if ids.len() == left as usize {
                    report.more = true;
                }
                if dry_run || ids.is_empty() {
                    break;
                }
                let mut lines = Vec::with_capacity(ids.len());
                for &id in &ids {
                    let task = self.store.task(id).map_err(super::internal)?;
                    let history = self.store.history(id).map_err(super::internal)?;
                    let details = self.store.prune_details(id).map_err(super::internal)?;
                    lines.push(json!({"task": task, "history": history, "prune_details": details}));
                }
                append(&dir, "tasks.jsonl", lines.into_iter())?;
                for id in ids {
                    self.store.delete_task(id).map_err(super::internal)?;
                }
                if report.more {
                    break;
                }
            }
        }
        // A dry run moves nothing, so asking again would count the same rows.
        report.more &= !dry_run;
        Ok(report)
    }
}

/// Appends one JSON line per record to `dir/name` and syncs the file before returning.
fn append(dir: &std::path::Path, name: &str, records: impl Iterator<Item = serde_json::Value>) -> Result<(), ErrorBody> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let fail = |what: &str, e: std::io::Error| -> ErrorBody {
        Refusal::ArchiveFailed { what: what.to_string(), path: dir.join(name).display().to_string(), why: e.to_string() }.into()
    };
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| fail("create the archive directory for", e))?;
    let mut buf = Vec::new();
    for r in records {
        serde_json::to_writer(&mut buf, &r).map_err(|e| fail("encode a record for", e.into()))?;
        buf.push(b'\n');
    }
    let mut f = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(dir.join(name)).map_err(|e| fail("open", e))?;
    f.write_all(&buf).map_err(|e| fail("write", e))?;
    f.sync_data().map_err(|e| fail("sync", e))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_retention_is_a_cutoff_in_the_past_and_none_keeps_forever() {
        use std::time::Duration;
        assert_eq!(super::cutoff(10_000, Some(Duration::from_secs(3))), Some(7_000));
        assert_eq!(super::cutoff(10_000, None), None);
        assert_eq!(super::cutoff(10_000, Some(Duration::MAX)), Some(10_000 - i64::MAX));
    }
}
