//! One landed task's signals, from git alone.
//!
//! - **added**: the lines blame gives to the task's commits at its landing (the denominator, fixed
//!   then).
//! - **survival**: of those, the share still given to its commits at the target's head now, and
//!   at the target's head as of 1, 7 and 30 wall-clock days after the landing (once those days
//!   have passed).
//! - **churn**: the share that other commits changed within 14 days of the landing (GitClear's
//!   definition: 1 − survival at 14 days); until 14 days have passed, what changed so far, marked
//!   partial.
//! - **reverted**: the commit that reverts it, if one does.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::blame::Blamer;
use crate::history::{History, Landed};
use crate::QualityError;

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// The days after a landing survival is given for.
pub const SURVIVAL_DAYS: [i64; 3] = [1, 7, 30];
/// GitClear's churn window.
pub const CHURN_DAYS: i64 = 14;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signals {
    pub task: i64,
    pub landing: String,
    /// Unix seconds.
    pub landed_at: i64,
    pub commits: Vec<String>,
    pub files: Vec<String>,
    /// Lines the task's commits hold at its landing.
    pub added: u64,
    /// Of those, how many its commits still hold at the target's head.
    pub surviving: u64,
    /// `surviving / added`; `None` when it added no line.
    pub survival_now: Option<f64>,
    pub survival_1d: Option<f64>,
    pub survival_7d: Option<f64>,
    pub survival_30d: Option<f64>,
    /// The share other commits changed within 14 days of the landing.
    pub churn_14d: Option<f64>,
    /// False while 14 days have not passed: `churn_14d` is what changed so far.
    pub churn_complete: bool,
    pub reverted_by: Option<String>,
}

impl Signals {
    pub fn reverted(&self) -> bool {
        self.reverted_by.is_some()
    }
}

/// The signals of every task in `history` (or only `only`), as of `now` (Unix seconds).
pub async fn compute(repo: &Path, history: &History, only: Option<&[i64]>, now: i64) -> Result<Vec<Signals>, QualityError> {
    compute_with(history, only, now, &mut Blamer::new(repo)).await
}

/// [`compute`] with blames kept from an earlier call (a background loop's).
pub async fn compute_with(history: &History, only: Option<&[i64]>, now: i64, blamer: &mut Blamer) -> Result<Vec<Signals>, QualityError> {
    let mut out = Vec::new();
    for landed in history.tasks.values() {
        if only.is_some_and(|ids| !ids.contains(&landed.task)) {
            continue;
        }
        out.push(of_task(history, landed, now, blamer).await?);
    }
    tracing::debug!(tasks = out.len(), blames = blamer.runs, "quality signals computed");
    Ok(out)
}

async fn of_task(history: &History, landed: &Landed, now: i64, blamer: &mut Blamer) -> Result<Signals, QualityError> {
    let commits: HashSet<String> = landed.commits.iter().cloned().collect();
    let files = blamer.files_of(&landed.landing, &landed.commits).await?;
    let added = blamer.count(&landed.landing, &files, &commits).await?;
    // Blame's `-M`/`-C` may give the task a line it copied within a file as well: never more
    // than it added.
    let surviving = blamer.count_since(&landed.landing, &history.head, &files, &commits).await?.min(added);
    let share = |n: u64| (added > 0).then(|| n as f64 / added as f64);
    let at_day = |days: i64| {
        let when = landed.landed_at + days * DAY;
        (now >= when).then_some(when)
    };
    let mut survival = [None; SURVIVAL_DAYS.len()];
    for (slot, days) in survival.iter_mut().zip(SURVIVAL_DAYS) {
        if let Some(when) = at_day(days) {
            if let Some(rev) = blamer.head_as_of(&history.head, when).await? {
                *slot = share(blamer.count_since(&landed.landing, &rev, &files, &commits).await?.min(added));
            }
        }
    }
    let (churn_rev, churn_complete) = match at_day(CHURN_DAYS) {
        Some(when) => (blamer.head_as_of(&history.head, when).await?, true),
        None => (Some(history.head.clone()), false),
    };
    let churn_14d = match churn_rev {
        Some(rev) => share(blamer.count_since(&landed.landing, &rev, &files, &commits).await?.min(added)).map(|s| 1.0 - s),
        None => None,
    };
    Ok(Signals {
        task: landed.task,
        landing: landed.landing.clone(),
        landed_at: landed.landed_at,
        commits: landed.commits.clone(),
        files,
        added,
        surviving,
        survival_now: share(surviving),
        survival_1d: survival[0],
        survival_7d: survival[1],
        survival_30d: survival[2],
        churn_14d,
        churn_complete,
        reverted_by: landed.reverted_by.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kite_git::fixture::git_repo;
    use std::process::Command;

    /// Commits everything in `dir` at `when` (Unix seconds) with `message`.
    fn commit_at(dir: &Path, when: i64, message: &str) -> String {
        let date = format!("@{when} +0000");
        let run = |args: &[&str]| {
            let o = Command::new("git")
                .args(args)
                .current_dir(dir)
                .env("GIT_AUTHOR_DATE", &date)
                .env("GIT_COMMITTER_DATE", &date)
                .output()
                .unwrap();
            assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        };
        run(&["add", "-A"]);
        run(&["commit", "-q", "-m", message]);
        run(&["rev-parse", "HEAD"])
    }

    fn lines(n: usize, tag: &str) -> String {
        (1..=n).map(|i| format!("{tag} line {i}\n")).collect()
    }

    /// Hand-counted: task 1 adds 10 lines, a person rewrites 4 of them on day 3 and 2 more on day
    /// 20; task 2 adds 6 lines and is reverted on day 2; task 3 adds 5 and is left alone.
    #[tokio::test]
    async fn survival_churn_and_reverts_are_what_blame_counts_by_hand() {
        let repo = git_repo();
        let p = repo.path();
        let t0 = 1_700_000_000;
        std::fs::write(p.join("one.txt"), lines(10, "one")).unwrap();
        commit_at(p, t0, "task one\n\nKite-Task: 1");
        std::fs::write(p.join("two.txt"), lines(6, "two")).unwrap();
        let two = commit_at(p, t0 + 60, "task two\n\nKite-Task: 2");
        std::fs::write(p.join("three.txt"), lines(5, "three")).unwrap();
        commit_at(p, t0 + 120, "task three\n\nKite-Task: 3");
        // Day 2: task two is reverted (git revert's message).
        std::fs::remove_file(p.join("two.txt")).unwrap();
        let revert = commit_at(p, t0 + 2 * DAY, &format!("Revert \"task two\"\n\nThis reverts commit {two}."));
        // Day 3: four of task one's lines rewritten; day 20: two more.
        let mut text: Vec<String> = lines(10, "one").lines().map(str::to_string).collect();
        for l in text.iter_mut().take(4) {
            *l = format!("{l} (rewritten)");
        }
        std::fs::write(p.join("one.txt"), text.join("\n") + "\n").unwrap();
        commit_at(p, t0 + 3 * DAY, "a person's rewrite");
        for l in text.iter_mut().skip(8) {
            *l = format!("{l} (again)");
        }
        std::fs::write(p.join("one.txt"), text.join("\n") + "\n").unwrap();
        commit_at(p, t0 + 20 * DAY, "a person's second rewrite");
        // Day 25: task three's file is moved: its lines are still its own.
        std::fs::create_dir_all(p.join("docs")).unwrap();
        std::fs::rename(p.join("three.txt"), p.join("docs/three.txt")).unwrap();
        commit_at(p, t0 + 25 * DAY, "move three.txt");

        let h = History::read(p, "main").await.unwrap();
        let now = t0 + 40 * DAY;
        let s = compute(p, &h, None, now).await.unwrap();
        let by = |id: i64| s.iter().find(|x| x.task == id).unwrap().clone();
        let one = by(1);
        assert_eq!((one.added, one.surviving), (10, 4));
        assert_eq!(one.survival_1d, Some(1.0));
        assert_eq!(one.survival_7d, Some(0.6));
        assert_eq!(one.survival_30d, Some(0.4));
        assert_eq!(one.survival_now, Some(0.4));
        assert_eq!((one.churn_14d, one.churn_complete), (Some(0.4), true), "4 of 10 changed within 14 days");
        assert_eq!(one.reverted_by, None);
        let two = by(2);
        assert_eq!((two.added, two.surviving, two.survival_7d, two.churn_14d), (6, 0, Some(0.0), Some(1.0)));
        assert_eq!(two.reverted_by.as_deref(), Some(revert.as_str()));
        let three = by(3);
        assert_eq!((three.added, three.survival_now, three.survival_30d, three.churn_14d), (5, Some(1.0), Some(1.0), Some(0.0)));

        // Five days after the landing: no 7- or 30-day figure yet, churn so far and partial.
        let early = compute(p, &h, Some(&[1]), t0 + 5 * DAY).await.unwrap();
        assert_eq!((early[0].survival_1d, early[0].survival_7d, early[0].survival_30d), (Some(1.0), None, None));
        assert_eq!((early[0].churn_14d, early[0].churn_complete), (Some(0.6), false), "measured at the head");
    }
}
