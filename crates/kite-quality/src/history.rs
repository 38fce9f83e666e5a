//! The target's history as kite reads it: which commits belong to which task (the `Kite-Task`
//! trailer), when each task landed, and which later commits revert it (`git revert`'s "This
//! reverts commit <sha>", or a `Reverts-Kite-Task: N` trailer). One `git log` for all tasks.

use std::collections::BTreeMap;
use std::path::Path;

use crate::QualityError;

/// One task's work on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landed {
    pub task: i64,
    /// Its commits, newest first (each carries `Kite-Task: task`).
    pub commits: Vec<String>,
    /// The newest of them: where its landing ended.
    pub landing: String,
    /// When it landed: the landing commit's committer time, in Unix seconds.
    pub landed_at: i64,
    /// The first later commit that reverts it, if any.
    pub reverted_by: Option<String>,
}

/// Every task found on the target, by id.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub target: String,
    /// The target's head when it was read.
    pub head: String,
    pub tasks: BTreeMap<i64, Landed>,
}

const SEP: char = '\u{1f}';
const END: char = '\u{1e}';

impl History {
    /// Reads `target`'s whole log.
    pub async fn read(repo: &Path, target: &str) -> Result<History, QualityError> {
        let head = kite_git::git(repo, &["rev-parse", "--verify", "-q", &format!("{target}^{{commit}}")])
            .await
            .map_err(|_| QualityError::NoTarget(target.to_string()))?;
        let format = "--format=%H%x1f%ct%x1f%(trailers:key=Kite-Task,valueonly,separator=%x2C)%x1f%(trailers:key=Reverts-Kite-Task,valueonly,separator=%x2C)%x1f%B%x1e";
        // Children before parents whatever the clocks said: a revert is found after what it reverts.
        let log = kite_git::git(repo, &["log", "--topo-order", format, &head]).await?;
        Ok(History::parse(target, head.trim(), &log))
    }

    /// [`History::read`], with no target yet (an unborn branch) as `None`: nothing has landed.
    pub async fn read_if_any(repo: &Path, target: &str) -> Result<Option<History>, QualityError> {
        match History::read(repo, target).await {
            Ok(h) => Ok(Some(h)),
            Err(QualityError::NoTarget(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Reads the log printed with the format of [`History::read`] (newest first).
    pub fn parse(target: &str, head: &str, log: &str) -> History {
        let mut tasks: BTreeMap<i64, Landed> = BTreeMap::new();
        // Reverts seen so far, newest first: (reverting commit, reverted sha or its prefix, task).
        let mut reverts: Vec<(String, Option<String>, Option<i64>)> = Vec::new();
        // For each task, how many reverts are newer than its landing (only those can revert it).
        let mut newer: BTreeMap<i64, usize> = BTreeMap::new();
        for record in log.split(END) {
            let mut f = record.trim_start_matches('\n').splitn(5, SEP);
            let (Some(sha), Some(ct), Some(task), Some(reverts_task), Some(body)) = (f.next(), f.next(), f.next(), f.next(), f.next()) else {
                continue;
            };
            let sha = sha.trim().to_string();
            if sha.is_empty() {
                continue;
            }
            let ct: i64 = ct.trim().parse().unwrap_or(0);
            if let Some(id) = task.split(',').find_map(|t| t.trim().parse::<i64>().ok()) {
                newer.entry(id).or_insert(reverts.len());
                let e = tasks.entry(id).or_insert_with(|| Landed {
                    task: id,
                    commits: Vec::new(),
                    landing: sha.clone(),
                    landed_at: ct,
                    reverted_by: None,
                });
                e.commits.push(sha.clone());
            }
            for t in reverts_task.split(',').filter_map(|t| t.trim().parse::<i64>().ok()) {
                reverts.push((sha.clone(), None, Some(t)));
            }
            for reverted in reverted_shas(body) {
                reverts.push((sha.clone(), Some(reverted), None));
            }
        }
        // The log is newest first: of the reverts newer than the landing, the nearest to it is
        // the last one listed.
        for landed in tasks.values_mut() {
            let n = newer.get(&landed.task).copied().unwrap_or(0);
            let by = reverts[..n].iter().rev().find(|(_, sha, task)| {
                *task == Some(landed.task) || sha.as_ref().is_some_and(|s| landed.commits.iter().any(|c| c.starts_with(s.as_str())))
            });
            landed.reverted_by = by.map(|(by, ..)| by.clone());
        }
        History { target: target.to_string(), head: head.to_string(), tasks }
    }
}

/// The commits a message says it reverts ("This reverts commit <sha>.").
fn reverted_shas(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find("This reverts commit ") {
        rest = &rest[i + "This reverts commit ".len()..];
        let sha: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        if sha.len() >= 7 {
            out.push(sha.to_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(sha: &str, ct: i64, task: &str, reverts: &str, body: &str) -> String {
        format!("{sha}{SEP}{ct}{SEP}{task}{SEP}{reverts}{SEP}{body}{END}\n")
    }

    #[test]
    fn tasks_their_landing_and_what_reverts_them() {
        let log = [
            rec("f0", 50, "", "2", "Undo the cache\n\nReverts-Kite-Task: 2\n"),
            rec("e0", 40, "", "", "Revert \"parser\"\n\nThis reverts commit a1b2c3d4e5.\n"),
            rec("d0", 30, "", "", "a person's change"),
            rec("c0", 20, "2", "", "cache\n\nKite-Task: 2\n"),
            rec("b0", 11, "1", "", "parser, merge\n\nKite-Task: 1\n"),
            rec("a1b2c3d4e5f6", 10, "1", "", "parser\n\nKite-Task: 1\n"),
        ]
        .concat();
        let h = History::parse("main", "f0", &log);
        let one = &h.tasks[&1];
        assert_eq!((one.landing.as_str(), one.landed_at, one.commits.len()), ("b0", 11, 2));
        assert_eq!(one.reverted_by.as_deref(), Some("e0"), "by the sha of one of its commits");
        assert_eq!(h.tasks[&2].reverted_by.as_deref(), Some("f0"), "by the trailer");
        assert_eq!(reverted_shas("This reverts commit abc.\nThis reverts commit 0123456789."), vec!["0123456789".to_string()]);
    }
}
