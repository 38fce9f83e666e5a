//! The landed work's signals for the strategy loop's track record: each template's landed tasks
//! weigh by what survived, and reverted or rewritten work throttles its template
//! ([`kite_strategy::TrackRecord`]).
//!
//! Read in the background loop's tick, never on a request's path. Incremental: what git says of a
//! landing (its files, its blames, the head as of a past day, the renames since) is kept across
//! ticks, so a tick after nothing landed re-reads the target's log and nothing else, and after a
//! landing or a person's commit only the files at the new head are blamed again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kite_quality::blame::Blamer;
use kite_quality::{History, Signals};
use kite_strategy::TrackRecord;

/// The repository the signals are read from, and what was read before.
pub struct QualitySource {
    root: PathBuf,
    merge: kite_land::MergeConfig,
    cache: tokio::sync::Mutex<Cache>,
}

struct Cache {
    blamer: Blamer,
    /// The head the last read blamed at (its blames go once the head moves on).
    head: Option<String>,
}

impl QualitySource {
    pub fn new(root: &Path, merge: kite_land::MergeConfig) -> QualitySource {
        QualitySource {
            root: root.to_path_buf(),
            merge,
            cache: tokio::sync::Mutex::new(Cache {
                blamer: Blamer::new(root),
                head: None,
            }),
        }
    }

    /// Every landed task's signals on the merge target, as of now.
    pub async fn signals(&self) -> Result<Vec<Signals>, ReportError> {
        let Some(history) = history(&self.root, &self.merge).await? else {
            return Ok(Vec::new());
        };
        let mut cache = self.cache.lock().await;
        if let Some(old) = cache
            .head
            .replace(history.head.clone())
            .filter(|old| *old != history.head)
        {
            cache.blamer.forget(&old);
        }
        Ok(kite_quality::signals::compute_with(
            &history,
            None,
            kite_quality::unix_now(),
            &mut cache.blamer,
        )
        .await?)
    }
}

/// Adds the landed tasks' signals to the track records of their templates (`template_of`: task id
/// → template).
pub fn add_to_records(
    records: &mut BTreeMap<String, TrackRecord>,
    template_of: &BTreeMap<i64, String>,
    signals: &[Signals],
) {
    let mut s7: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for s in signals {
        let Some(name) = template_of.get(&s.task) else {
            continue;
        };
        let r = records.entry(name.clone()).or_default();
        if s.reverted() {
            r.reverted += 1;
        }
        if let Some(x) = s.survival_7d {
            r.measured += 1;
            r.survived += x;
            s7.entry(name).or_default().push(x);
        }
    }
    for (name, v) in s7 {
        if let Some(r) = records.get_mut(name) {
            r.median_survival_7d = kite_quality::report::median(v.into_iter());
        }
    }
}

/// Why `kite report` (or the dashboard's quality panel) has no figures.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Client(#[from] kite_proto::ClientError),
    #[error(transparent)]
    Land(#[from] kite_land::LandError),
    #[error("reading the target's history: {0}")]
    Quality(#[from] kite_quality::QualityError),
}

/// The merge target's history (`None` before its first commit).
async fn history(
    root: &Path,
    merge: &kite_land::MergeConfig,
) -> Result<Option<History>, ReportError> {
    let target = kite_land::target_branch(root, merge).await?;
    Ok(History::read_if_any(root, &target).await?)
}

/// The git signals of the tasks among `ids` whose work is on the merge target of `root`.
pub async fn signals_of(
    root: &Path,
    merge: &kite_land::MergeConfig,
    ids: &[i64],
) -> Result<BTreeMap<i64, Signals>, ReportError> {
    let Some(history) = history(root, merge).await? else {
        return Ok(BTreeMap::new());
    };
    let computed =
        kite_quality::signals::compute(root, &history, Some(ids), kite_quality::unix_now()).await?;
    Ok(computed.into_iter().map(|s| (s.task, s)).collect())
}

/// What `kite report` counts: the tasks changed since `since_ms` (of `template`, if given), each
/// with its merge-book entries and reviews, its cost and its git signals.
pub async fn records(
    client: &kite_proto::Client,
    root: &Path,
    merge: &kite_land::MergeConfig,
    since_ms: Option<i64>,
    template: Option<&str>,
) -> Result<Vec<kite_quality::TaskRecord>, ReportError> {
    use futures::StreamExt;
    use kite_proto::ops::{MergeList, TaskList, TaskRef, MAX_PAGE};
    let tasks = client
        .all_tasks(TaskList {
            status: None,
            workstream: None,
            limit: None,
            after: None,
        })
        .await?;
    let tasks: Vec<_> = tasks
        .into_iter()
        .filter(|t| since_ms.is_none_or(|s| t.updated_at_ms >= s))
        .filter(|t| {
            template.is_none_or(|name| {
                t.template
                    .as_deref()
                    .unwrap_or(kite_quality::report::BY_HAND)
                    == name
            })
        })
        .collect();
    let book = client
        .request::<kite_proto::op::MergeList>(MergeList {
            finished: Some(MAX_PAGE),
        })
        .await?;
    let mut landings: BTreeMap<i64, Vec<kite_core::MergeState>> = BTreeMap::new();
    let mut reviews: BTreeMap<i64, Vec<kite_core::Review>> = BTreeMap::new();
    let mut tests: BTreeMap<i64, kite_core::TestDelta> = BTreeMap::new();
    for e in &book.entries {
        landings.entry(e.task_id).or_default().push(e.state);
        if let Some(r) = &e.review {
            reviews.entry(e.task_id).or_default().push(r.clone());
        }
        if let (kite_core::MergeState::Landed, Some(d)) = (e.state, &e.tests) {
            tests.insert(e.task_id, d.clone());
        }
    }
    let signals = signals_of(root, merge, &tasks.iter().map(|t| t.id).collect::<Vec<_>>()).await?;
    // Each task's cost, 64 requests in flight on the one connection (replies carry their ids).
    let ids: Vec<i64> = tasks.iter().map(|t| t.id).collect();
    let costs: Vec<kite_proto::ops::CostTotals> = futures::stream::iter(
        ids.into_iter()
            .map(|task| client.request::<kite_proto::op::TaskShow>(TaskRef { task })),
    )
    .buffered(64)
    .map(|r| r.map(|d| d.cost))
    .collect::<Vec<_>>()
    .await
    .into_iter()
    .collect::<Result<_, _>>()?;
    Ok(tasks
        .into_iter()
        .zip(costs)
        .map(|(t, cost)| kite_quality::TaskRecord {
            landings: landings.remove(&t.id).unwrap_or_default(),
            reviews: reviews.remove(&t.id).unwrap_or_default(),
            tests: tests.remove(&t.id),
            tokens: cost
                .input_tokens
                .saturating_add(cost.output_tokens)
                .saturating_add(cost.cache_creation_input_tokens)
                .saturating_add(cost.cache_read_input_tokens),
            usd: cost.usd,
            signals: signals.get(&t.id).cloned(),
            id: t.id,
            title: t.title,
            template: t.template,
            status: t.status,
            attempts: t.attempts,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_go_to_their_templates_records() {
        let sig = |task: i64, s7: Option<f64>, reverted: bool| Signals {
            task,
            landing: String::new(),
            landed_at: 0,
            commits: vec![],
            files: vec![],
            added: 10,
            surviving: 5,
            survival_now: Some(0.5),
            survival_1d: None,
            survival_7d: s7,
            survival_30d: None,
            churn_14d: None,
            churn_complete: false,
            reverted_by: reverted.then(|| "abc".into()),
        };
        let template_of: BTreeMap<i64, String> = [
            (1, "todo".to_string()),
            (2, "todo".into()),
            (3, "todo".into()),
            (4, "tests".into()),
        ]
        .into();
        let mut records = BTreeMap::new();
        add_to_records(
            &mut records,
            &template_of,
            &[
                sig(1, Some(0.2), false),
                sig(2, Some(0.6), true),
                sig(3, None, false),
                sig(4, Some(1.0), false),
                sig(9, Some(0.0), true),
            ],
        );
        let todo = records["todo"];
        assert_eq!(
            (todo.measured, todo.reverted, todo.median_survival_7d),
            (2, 1, Some(0.4))
        );
        assert!((todo.survived - 0.8).abs() < 1e-9);
        assert_eq!(records["tests"].measured, 1);
        assert_eq!(
            records.len(),
            2,
            "a task of no known template counts nowhere"
        );
    }
}
