//! The landed work's signals for the strategy loop's track record: each template's landed tasks
//! weigh by what survived, and reverted or rewritten work throttles its template
//! ([`kite_strategy::TrackRecord`]).
//!
//! Read in the background loop's tick, never on a request's path. Incremental: blames are kept
//! per (revision, file) across ticks, so a tick after nothing landed re-reads only the target's
//! log, and after a landing or a person's commit only the files at the new head are blamed again.

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
        QualitySource { root: root.to_path_buf(), merge, cache: tokio::sync::Mutex::new(Cache { blamer: Blamer::new(root), head: None }) }
    }

    /// Every landed task's signals on the merge target, as of now.
    pub async fn signals(&self) -> Result<Vec<Signals>, String> {
        let target = kite_land::target_branch(&self.root, &self.merge).await.map_err(|e| e.to_string())?;
        let history = match History::read(&self.root, &target).await {
            Ok(h) => h,
            Err(kite_quality::QualityError::NoTarget(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.to_string()),
        };
        let mut cache = self.cache.lock().await;
        if let Some(old) = cache.head.replace(history.head.clone()).filter(|old| *old != history.head) {
            cache.blamer.forget(&old);
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        kite_quality::signals::compute_with(&self.root, &history, None, now, &mut cache.blamer).await.map_err(|e| e.to_string())
    }
}

/// Adds the landed tasks' signals to the track records of their templates (`template_of`: task id
/// → template).
pub fn add_to_records(records: &mut BTreeMap<String, TrackRecord>, template_of: &BTreeMap<i64, String>, signals: &[Signals]) {
    let mut s7: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for s in signals {
        let Some(name) = template_of.get(&s.task) else { continue };
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
        let template_of: BTreeMap<i64, String> = [(1, "todo".to_string()), (2, "todo".into()), (3, "todo".into()), (4, "tests".into())].into();
        let mut records = BTreeMap::new();
        add_to_records(&mut records, &template_of, &[sig(1, Some(0.2), false), sig(2, Some(0.6), true), sig(3, None, false), sig(4, Some(1.0), false), sig(9, Some(0.0), true)]);
        let todo = records["todo"];
        assert_eq!((todo.measured, todo.reverted, todo.median_survival_7d), (2, 1, Some(0.4)));
        assert!((todo.survived - 0.8).abs() < 1e-9);
        assert_eq!(records["tests"].measured, 1);
        assert_eq!(records.len(), 2, "a task of no known template counts nowhere");
    }
}
