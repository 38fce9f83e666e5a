//! The landed work's signals for the strategy loop's track record: each template's landed tasks
//! weigh by what survived, and reverted or rewritten work throttles its template
//! ([`kite_strategy::TrackRecord`]).
//!
//! Read in the background, never on a request's path: the daemon's background thread reads them
//! again every [`REFRESH`] and keeps them in `<home>/quality/signals.json` ([`Snapshot`]), which
//! `kite report`, `kite task show` and the dashboard read while it is current (the target's head
//! unchanged, taken within two refreshes); without a running daemon they are read from git on
//! demand. Incremental: what git says of a landing (its files, its blames, the head as of a past
//! day, the renames since) is kept across reads, so a read after nothing landed re-reads the
//! target's log and nothing else, and after a landing or a person's commit only the files at the
//! new head are blamed again. A landing or a person's commit counts within [`REFRESH`].

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
        Ok(self.read().await?.map(|(_, s)| s).unwrap_or_default())
    }

    /// Reads the signals again and keeps them in `home`'s snapshot; how many tasks they cover.
    pub async fn refresh(&self, home: &Path) -> Result<usize, ReportError> {
        let Some((history, signals)) = self.read().await? else {
            return Ok(0);
        };
        let n = signals.len();
        let snap = Snapshot { target: history.target, head: history.head, computed_at: kite_quality::unix_now(), signals };
        kite_quality::snapshot::write(home, &snap)
            .map_err(|source| ReportError::Snapshot { path: snapshot_path(home), source })?;
        Ok(n)
    }

    /// The target's history and every landed task's signals, as of now.
    async fn read(&self) -> Result<Option<(History, Vec<Signals>)>, ReportError> {
        let Some(history) = history(&self.root, &self.merge).await? else {
            return Ok(None);
        };
        let mut cache = self.cache.lock().await;
        if let Some(old) = cache
            .head
            .replace(history.head.clone())
            .filter(|old| *old != history.head)
        {
            cache.blamer.forget(&old);
        }
        let signals = kite_quality::signals::compute_with(
            &history,
            None,
            kite_quality::unix_now(),
            &mut cache.blamer,
        )
        .await?;
        Ok(Some((history, signals)))
    }
}

pub use kite_quality::snapshot::{path as snapshot_path, REFRESH};
pub use kite_quality::Snapshot;

/// How long after the daemon starts the signals are first read.
const FIRST_READ: std::time::Duration = std::time::Duration::from_secs(5);

/// The background thread's loop: reads the signals every [`REFRESH`] until `stop` resolves.
pub async fn refresh_loop(
    source: std::sync::Arc<QualitySource>,
    home: PathBuf,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    // Not while the daemon is starting (its first requests and a restarted client's waits come
    // first); until the first read, readers read git themselves.
    tokio::select! {
        _ = &mut stop => return,
        _ = tokio::time::sleep(FIRST_READ) => {}
    }
    // A failure is said once until it changes (a project with no target yet fails every time).
    let mut last_error = None;
    loop {
        tokio::select! {
            _ = &mut stop => return,
            read = source.refresh(&home) => match read {
                Ok(n) => {
                    tracing::debug!(tasks = n, "landed work's signals read again");
                    last_error = None;
                }
                Err(e) => {
                    let e = e.to_string();
                    if last_error.as_ref() != Some(&e) {
                        tracing::warn!("the landed work's signals could not be read: {e}");
                    }
                    last_error = Some(e);
                }
            },
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(REFRESH) => {}
        }
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
    #[error("keeping the signals in {path}: {source}")]
    Snapshot {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The merge target's history (`None` before its first commit).
async fn history(
    root: &Path,
    merge: &kite_land::MergeConfig,
) -> Result<Option<History>, ReportError> {
    let target = kite_land::target_branch(root, merge).await?;
    Ok(History::read_if_any(root, &target).await?)
}

/// The git signals of the tasks among `ids` whose work is on the merge target of `root`: the
/// daemon's snapshot in `home` when it is current, else read from git now.
pub async fn signals_of(
    root: &Path,
    home: &Path,
    merge: &kite_land::MergeConfig,
    ids: &[i64],
) -> Result<BTreeMap<i64, Signals>, ReportError> {
    let target = kite_land::target_branch(root, merge).await?;
    if let Some(snap) = kite_quality::snapshot::current(root, home, &target, kite_quality::unix_now()).await {
        let wanted: std::collections::BTreeSet<i64> = ids.iter().copied().collect();
        return Ok(snap
            .signals
            .into_iter()
            .filter(|s| wanted.contains(&s.task))
            .map(|s| (s.task, s))
            .collect());
    }
    let Some(history) = History::read_if_any(root, &target).await? else {
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
    home: &Path,
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
    let signals = signals_of(
        root,
        home,
        merge,
        &tasks.iter().map(|t| t.id).collect::<Vec<_>>(),
    )
    .await?;
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

    #[tokio::test]
    async fn reports_read_the_daemons_snapshot_while_the_head_has_not_moved() {
        use kite_git::fixture::{git, git_repo, write};
        let repo = git_repo();
        let root = repo.path();
        let home = tempfile::tempdir().unwrap();
        let main = git(root, &["rev-parse", "--abbrev-ref", "HEAD"])
            .trim()
            .to_string();
        let merge = kite_land::MergeConfig {
            target: Some(main),
            ..Default::default()
        };
        write(root, "a.txt", "one\ntwo\nthree\n");
        git(root, &["add", "-A"]);
        git(root, &["commit", "-qm", "task 7\n\nKite-Task: 7"]);
        let source = QualitySource::new(root, merge.clone());
        assert_eq!(source.refresh(home.path()).await.unwrap(), 1);
        let got = signals_of(root, home.path(), &merge, &[7]).await.unwrap();
        assert_eq!(got[&7].added, 3);
        // What the snapshot says is what is reported (marked here so that it shows).
        let path = snapshot_path(home.path());
        let mut snap: Snapshot = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        snap.signals[0].added = 999;
        std::fs::write(&path, serde_json::to_vec(&snap).unwrap()).unwrap();
        assert_eq!(
            signals_of(root, home.path(), &merge, &[7]).await.unwrap()[&7].added,
            999
        );
        assert!(
            signals_of(root, home.path(), &merge, &[8])
                .await
                .unwrap()
                .is_empty(),
            "only the tasks asked for"
        );
        // Older than two refreshes (no daemon refreshing it): not trusted.
        let mut old = snap;
        old.computed_at -= 3 * REFRESH.as_secs() as i64;
        std::fs::write(&path, serde_json::to_vec(&old).unwrap()).unwrap();
        assert_eq!(
            signals_of(root, home.path(), &merge, &[7]).await.unwrap()[&7].added,
            3
        );
        // A person's commit moves the head: the snapshot is not current; git is read now.
        write(root, "a.txt", "one\n2\nthree\n");
        git(root, &["commit", "-qam", "a person's edit"]);
        let now = signals_of(root, home.path(), &merge, &[7]).await.unwrap();
        assert_eq!((now[&7].added, now[&7].surviving), (3, 2));
        // The next refresh reads it too.
        source.refresh(home.path()).await.unwrap();
        let snap: Snapshot = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(snap.signals[0].surviving, 2);
    }
}
