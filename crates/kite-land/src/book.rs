//! Where the lander keeps its book: the coordinator's `merge.*` operations, through the
//! [`MergeBook`] trait. The daemon's client implements it (the book lives in kite.db, with the
//! tasks it lands); [`MemBook`] keeps one in memory for this crate's tests and the landing
//! benchmark, which measure git work and need no daemon.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use kite_core::{discard_refusal, MergeCounts, MergeEntry, MergeState};
use kite_proto::ops::{
    MergeBook as BookPage, MergeDiscard, MergeEnqueue, MergeList, MergeShown, MergeStep,
};
use kite_proto::Client;

use crate::LandError;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The merge queue's book as the lander, the CLI and the dashboard use it.
pub trait MergeBook: Send + Sync {
    fn enqueue(&self, a: MergeEnqueue) -> BoxFuture<'_, Result<MergeEntry, LandError>>;
    fn step(&self, a: MergeStep) -> BoxFuture<'_, Result<MergeEntry, LandError>>;
    /// The task's newest entry.
    fn entry(&self, task: i64) -> BoxFuture<'_, Result<Option<MergeEntry>, LandError>>;
    /// Entries in flight and the newest `finished` finished ones, with the lifetime counts.
    fn list(&self, finished: u32) -> BoxFuture<'_, Result<BookPage, LandError>>;
    /// Records the task's work as discarded, if the one discard rule allows it.
    fn discard(&self, task: i64, detail: String) -> BoxFuture<'_, Result<MergeEntry, LandError>>;
    /// The task's body (what the review gate shows its reviewer beside the title); `None` when
    /// the book cannot say.
    fn task_body(&self, _task: i64) -> BoxFuture<'_, Option<String>> {
        Box::pin(async { None })
    }
    /// Records what the review gate's reviewer cost, in the cost ledger as source `review`
    /// (so that the task's cost and the daily budget count it). A book without a ledger drops it.
    fn record_review_cost(
        &self,
        _entry: &MergeEntry,
        _cost: &kite_agent::cost::Cost,
    ) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

fn book_error(e: kite_proto::ClientError) -> LandError {
    LandError::Book(e.to_string())
}

impl MergeBook for Client {
    fn record_review_cost(
        &self,
        entry: &MergeEntry,
        cost: &kite_agent::cost::Cost,
    ) -> BoxFuture<'_, ()> {
        let u = &cost.usage;
        let record = kite_proto::ops::CostRecord {
            session: entry
                .session
                .clone()
                .unwrap_or_else(|| "kite-review".into()),
            task: Some(entry.task_id),
            attempt: (entry.attempts > 0).then_some(entry.attempts),
            source: "review".into(),
            usd: cost.usd,
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
            cache_creation_input_tokens: u.cache_creation_input_tokens,
            cache_read_input_tokens: u.cache_read_input_tokens,
            model: cost.model.clone(),
            turns: cost.turns,
            duration_ms: cost.duration_ms,
            agent_session: cost.agent_session.clone(),
            outcome: Some("review".into()),
            unpriced: cost.unpriced.clone(),
        };
        let task = entry.task_id;
        Box::pin(async move {
            if let Err(e) = self.request::<kite_proto::op::CostRecord>(record).await {
                tracing::warn!(task, "the review's cost is not in the ledger: {e}");
            }
        })
    }

    fn task_body(&self, task: i64) -> BoxFuture<'_, Option<String>> {
        Box::pin(async move {
            self.request::<kite_proto::op::TaskShow>(kite_proto::ops::TaskRef { task })
                .await
                .ok()
                .map(|d| d.task.body)
        })
    }

    fn enqueue(&self, a: MergeEnqueue) -> BoxFuture<'_, Result<MergeEntry, LandError>> {
        Box::pin(async move {
            self.request::<kite_proto::op::MergeEnqueue>(a)
                .await
                .map_err(book_error)
        })
    }

    fn step(&self, a: MergeStep) -> BoxFuture<'_, Result<MergeEntry, LandError>> {
        Box::pin(async move {
            self.request::<kite_proto::op::MergeStep>(a)
                .await
                .map_err(book_error)
        })
    }

    fn entry(&self, task: i64) -> BoxFuture<'_, Result<Option<MergeEntry>, LandError>> {
        Box::pin(async move {
            let r: MergeShown = self
                .request::<kite_proto::op::MergeShow>(kite_proto::ops::TaskRef { task })
                .await
                .map_err(book_error)?;
            Ok(r.entry)
        })
    }

    fn list(&self, finished: u32) -> BoxFuture<'_, Result<BookPage, LandError>> {
        Box::pin(async move {
            self.request::<kite_proto::op::MergeList>(MergeList {
                finished: Some(finished),
            })
            .await
            .map_err(book_error)
        })
    }

    fn discard(&self, task: i64, detail: String) -> BoxFuture<'_, Result<MergeEntry, LandError>> {
        Box::pin(async move {
            self.request::<kite_proto::op::MergeDiscard>(MergeDiscard { task, detail })
                .await
                .map_err(|e| match e {
                    // The rule's refusal is the answer a person reads, as it is.
                    kite_proto::ClientError::Daemon(b) => LandError::Refused(b.message),
                    e => book_error(e),
                })
        })
    }
}

/// A book in memory, with the coordinator's rules for steps (not its task checks: it knows no
/// tasks). For tests and the landing benchmark.
#[derive(Default)]
pub struct MemBook {
    inner: Mutex<(
        Vec<MergeEntry>,
        MergeCounts,
        std::collections::BTreeMap<String, MergeCounts>,
    )>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl MemBook {
    /// Queues a task as the runner would, with a title and template of its own.
    pub fn enqueue_task(
        &self,
        task: i64,
        title: &str,
        template: Option<&str>,
        branch: &str,
        target: &str,
    ) {
        let mut g = self.inner.lock().expect("book lock");
        g.0.retain(|e| !(e.task_id == task && e.state.in_flight()));
        let fresh = MergeEntry::fresh(task, title.into(), branch.into(), now_ms());
        g.0.push(MergeEntry {
            template: template.map(str::to_string),
            target: Some(target.into()),
            session: Some("s".into()),
            token: Some(1),
            attempts: 1,
            ..fresh
        });
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> Vec<MergeEntry> {
        self.inner.lock().expect("book lock").0.clone()
    }

    /// The lifetime counts, and by template.
    pub fn counts(&self) -> (MergeCounts, std::collections::BTreeMap<String, MergeCounts>) {
        let g = self.inner.lock().expect("book lock");
        (g.1, g.2.clone())
    }
}

impl MergeBook for MemBook {
    fn enqueue(&self, a: MergeEnqueue) -> BoxFuture<'_, Result<MergeEntry, LandError>> {
        self.enqueue_task(
            a.task,
            &format!("task {}", a.task),
            None,
            &a.branch,
            &a.target,
        );
        Box::pin(async move { Ok(self.entries().into_iter().next_back().expect("just queued")) })
    }

    fn step(&self, a: MergeStep) -> BoxFuture<'_, Result<MergeEntry, LandError>> {
        let r = (|| {
            let mut g = self.inner.lock().expect("book lock");
            let (entries, total, by) = &mut *g;
            let e = entries
                .iter_mut()
                .rev()
                .find(|e| e.task_id == a.task)
                .ok_or_else(|| {
                    LandError::Book(format!("task {} is not in the merge queue", a.task))
                })?;
            if !e.state.in_flight() {
                return Err(LandError::Book(format!(
                    "task {}'s landing already ended: {}",
                    a.task, e.state
                )));
            }
            e.state = a.state;
            e.detail = a.detail;
            e.base = a.base.or(e.base.take());
            e.new = a.new.or(e.new.take());
            e.verified = a.verified.unwrap_or(e.verified);
            if a.state == MergeState::Queued {
                (e.review, e.tests) = (None, None);
            }
            e.review = a.review.or(e.review.take());
            e.tests = a.tests.or(e.tests.take());
            e.updated_at_ms = now_ms();
            if let Some(t) = a.tally {
                total.add(t);
                if let Some(name) = &e.template {
                    by.entry(name.clone()).or_default().add(t);
                }
            }
            Ok(e.clone())
        })();
        Box::pin(async move { r })
    }

    fn entry(&self, task: i64) -> BoxFuture<'_, Result<Option<MergeEntry>, LandError>> {
        let e = self.entries().into_iter().rev().find(|e| e.task_id == task);
        Box::pin(async move { Ok(e) })
    }

    fn list(&self, finished: u32) -> BoxFuture<'_, Result<BookPage, LandError>> {
        let (total, by_template) = self.counts();
        let all = self.entries();
        let done: Vec<MergeEntry> = all
            .iter()
            .filter(|e| !e.state.in_flight())
            .cloned()
            .collect();
        let mut entries: Vec<MergeEntry> =
            done[done.len().saturating_sub(finished as usize)..].to_vec();
        entries.extend(all.into_iter().filter(|e| e.state.in_flight()));
        Box::pin(async move {
            Ok(BookPage {
                entries,
                total,
                by_template,
            })
        })
    }

    fn discard(&self, task: i64, detail: String) -> BoxFuture<'_, Result<MergeEntry, LandError>> {
        let r = (|| {
            let mut g = self.inner.lock().expect("book lock");
            let latest = g.0.iter_mut().rev().find(|e| e.task_id == task);
            if let Some(why) = discard_refusal(task, None, latest.as_deref()) {
                return Err(LandError::Refused(why));
            }
            let detail = format!("discarded by hand: {detail}");
            match latest {
                Some(e) => {
                    e.state = MergeState::Discarded;
                    e.detail = detail;
                    Ok(e.clone())
                }
                None => Err(LandError::Book(format!(
                    "task {task} is not in this book ({detail})"
                ))),
            }
        })();
        Box::pin(async move { r })
    }
}
