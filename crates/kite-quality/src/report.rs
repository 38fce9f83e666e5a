//! `kite report`: the daemon's records (outcomes, the merge book, costs) and the git signals of
//! each landed task, aggregated over a window, overall and per template, with the best and worst
//! tasks and why. Pure: the caller gathers [`TaskRecord`]s, this only counts.

use std::collections::BTreeMap;

use kite_core::{MergeState, Review, ReviewOutcome, TaskStatus, TestDelta};
use serde::{Deserialize, Serialize};

use crate::Signals;

/// What is known of one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub id: i64,
    pub title: String,
    pub template: Option<String>,
    pub status: TaskStatus,
    /// How many times it was started (a transient retry is an attempt).
    pub attempts: u32,
    /// The merge book's entries for it, oldest first.
    pub landings: Vec<MergeState>,
    /// The review gate's verdicts on its landings, oldest first.
    #[serde(default)]
    pub reviews: Vec<Review>,
    /// What its attempts and its reviews cost, summed.
    pub usd: f64,
    /// Their tokens (input, output, cache writes and reads).
    #[serde(default)]
    pub tokens: u64,
    /// What its landing did to the tests (its verify run against the target's last one).
    #[serde(default)]
    pub tests: Option<TestDelta>,
    /// Its signals, when its work is on the target.
    pub signals: Option<Signals>,
}

impl TaskRecord {
    pub fn landed(&self) -> bool {
        self.landings.contains(&MergeState::Landed) || self.signals.is_some()
    }

    /// Landed on its first verify, at its first attempt: nothing conflicted, failed its verify
    /// or was retried before.
    pub fn first_try(&self) -> bool {
        self.landed()
            && self.attempts <= 1
            && self
                .landings
                .first()
                .is_none_or(|s| *s == MergeState::Landed)
    }
}

/// The figures of a set of tasks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub tasks: u64,
    /// The seed's three numbers: done, pruned, failed.
    pub completed: u64,
    pub pruned: u64,
    pub failed: u64,
    pub landed: u64,
    pub landed_first_try: u64,
    pub first_try_rate: Option<f64>,
    /// Finished landings tried (landed, conflicted, failed verify, failed).
    pub landing_attempts: u64,
    /// Of the landings tried, the share whose verify failed, and the share that conflicted.
    pub verify_fail_rate: Option<f64>,
    pub conflict_rate: Option<f64>,
    pub median_survival_now: Option<f64>,
    pub median_survival_7d: Option<f64>,
    pub median_survival_30d: Option<f64>,
    pub median_churn_14d: Option<f64>,
    pub reverted: u64,
    pub revert_rate: Option<f64>,
    /// The review gate's findings by severity, over every review of the window's tasks.
    pub review_findings: BTreeMap<String, u64>,
    /// Reviews that sent a task back with a blocker, and reviews that could not judge.
    pub review_blocked: u64,
    pub review_failed: u64,
    /// The test delta summed over the landings compared with the run of the very commit they were
    /// built on (`tests_compared`, of which `tests_by_counts` compared counts, not names); the
    /// landings compared across other commits (`tests_across`: left out of the sums, their
    /// changes are in them), and those whose verify output could not be read as a test report.
    pub tests_compared: u64,
    #[serde(default)]
    pub tests_across: u64,
    pub tests_by_counts: u64,
    pub tests_added: u64,
    pub tests_now_pass: u64,
    pub tests_broke: u64,
    pub tests_removed: u64,
    pub tests_unreadable: u64,
    pub usd: f64,
    pub tokens: u64,
    pub tokens_per_landed_task: Option<f64>,
    pub usd_per_landed_task: Option<f64>,
    /// Lines of landed work still on the target.
    pub surviving_lines: u64,
    pub usd_per_surviving_line: Option<f64>,
}

/// One of the best or worst tasks, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranked {
    pub task: i64,
    pub title: String,
    pub template: Option<String>,
    pub why: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Tasks changed since this time (Unix milliseconds), if a window was asked for.
    pub since_ms: Option<i64>,
    pub template: Option<String>,
    pub totals: Figures,
    pub by_template: BTreeMap<String, Figures>,
    pub best: Vec<Ranked>,
    pub worst: Vec<Ranked>,
    /// Landed work by the week it landed (weeks from Monday, UTC), oldest first: the figures over
    /// time (the dashboard's charts).
    pub weeks: Vec<Week>,
    /// Each task of the window: its outcome, its landings (every conflict and failed verify
    /// before it landed), attempts, cost and signals.
    pub tasks: Vec<TaskRecord>,
}

/// One week's landed work.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Week {
    /// Monday 00:00 UTC, in Unix seconds.
    pub start: i64,
    pub landed: u64,
    pub reverted: u64,
    pub median_survival_now: Option<f64>,
    /// What the week's landed tasks cost.
    pub usd: f64,
}

/// The Monday (00:00 UTC) of the week `t` (Unix seconds) falls in; 1970-01-05 was a Monday.
fn week_of(t: i64) -> i64 {
    const WEEK: i64 = 7 * crate::DAY;
    const MONDAY: i64 = 4 * crate::DAY;
    (t - MONDAY).div_euclid(WEEK) * WEEK + MONDAY
}

fn weeks(records: &[TaskRecord]) -> Vec<Week> {
    let mut by: BTreeMap<i64, (Week, Vec<f64>)> = BTreeMap::new();
    for r in records {
        let Some(s) = &r.signals else { continue };
        let start = week_of(s.landed_at);
        let (w, survival) = by.entry(start).or_insert_with(|| {
            (
                Week {
                    start,
                    ..Default::default()
                },
                Vec::new(),
            )
        });
        w.landed += 1;
        w.reverted += u64::from(s.reverted());
        w.usd += r.usd;
        survival.extend(s.survival_now);
    }
    by.into_values()
        .map(|(w, survival)| Week {
            median_survival_now: median(survival.into_iter()),
            ..w
        })
        .collect()
}

/// The template name tasks filed by hand are grouped under.
pub const BY_HAND: &str = "(by hand)";

impl Report {
    pub fn build(records: &[TaskRecord], since_ms: Option<i64>, template: Option<&str>) -> Report {
        let mut groups: BTreeMap<String, Vec<&TaskRecord>> = BTreeMap::new();
        for r in records {
            groups
                .entry(r.template.clone().unwrap_or_else(|| BY_HAND.into()))
                .or_default()
                .push(r);
        }
        let all: Vec<&TaskRecord> = records.iter().collect();
        let (best, worst) = best_and_worst(records);
        Report {
            since_ms,
            template: template.map(str::to_string),
            totals: figures(&all),
            by_template: groups
                .iter()
                .map(|(k, v)| (k.clone(), figures(v)))
                .collect(),
            best,
            worst,
            weeks: weeks(records),
            tasks: records.to_vec(),
        }
    }
}

fn figures(rs: &[&TaskRecord]) -> Figures {
    let landed: Vec<&&TaskRecord> = rs.iter().filter(|r| r.landed()).collect();
    let signals: Vec<&Signals> = landed.iter().filter_map(|r| r.signals.as_ref()).collect();
    let count = |f: &dyn Fn(&TaskRecord) -> bool| rs.iter().filter(|r| f(r)).count() as u64;
    let finished: Vec<MergeState> = rs
        .iter()
        .flat_map(|r| r.landings.iter().copied())
        .filter(|s| !s.in_flight())
        .collect();
    let tried = finished
        .iter()
        .filter(|s| {
            matches!(
                s,
                MergeState::Landed
                    | MergeState::Conflict
                    | MergeState::Rejected
                    | MergeState::Failed
            )
        })
        .count() as u64;
    let share = |n: u64, of: u64| (of > 0).then(|| n as f64 / of as f64);
    let usd: f64 = rs.iter().map(|r| r.usd).sum();
    let surviving_lines: u64 = signals.iter().map(|s| s.surviving).sum();
    let landed_n = landed.len() as u64;
    let reverted = signals.iter().filter(|s| s.reverted()).count() as u64;
    let first_try = landed.iter().filter(|r| r.first_try()).count() as u64;
    let landed_usd: f64 = landed.iter().map(|r| r.usd).sum();
    let reviews: Vec<&Review> = rs.iter().flat_map(|r| r.reviews.iter()).collect();
    let mut review_findings = BTreeMap::new();
    for f in reviews.iter().flat_map(|r| r.findings.iter()) {
        *review_findings.entry(f.severity.clone()).or_default() += 1;
    }
    let review_count = |o: ReviewOutcome| reviews.iter().filter(|r| r.outcome == o).count() as u64;
    let deltas: Vec<&TestDelta> = landed.iter().filter_map(|r| r.tests.as_ref()).collect();
    let with_baseline = |d: &&&TestDelta| d.unreadable.is_none() && d.baseline.is_some();
    let compared: Vec<&&TestDelta> = deltas.iter().filter(with_baseline).filter(|d| d.behind == 0).collect();
    let across = deltas.iter().filter(with_baseline).filter(|d| d.behind > 0).count() as u64;
    let sum = |f: &dyn Fn(&TestDelta) -> u64| compared.iter().map(|d| f(d)).sum::<u64>();
    let landed_tokens: u64 = landed.iter().map(|r| r.tokens).sum();
    Figures {
        tasks: rs.len() as u64,
        completed: count(&|r| r.status == TaskStatus::Done),
        pruned: count(&|r| r.status == TaskStatus::Pruned),
        failed: count(&|r| r.status == TaskStatus::Failed),
        landed: landed_n,
        landed_first_try: first_try,
        first_try_rate: share(first_try, landed_n),
        landing_attempts: tried,
        verify_fail_rate: share(
            finished
                .iter()
                .filter(|s| **s == MergeState::Rejected)
                .count() as u64,
            tried,
        ),
        conflict_rate: share(
            finished
                .iter()
                .filter(|s| **s == MergeState::Conflict)
                .count() as u64,
            tried,
        ),
        median_survival_now: median(signals.iter().filter_map(|s| s.survival_now)),
        median_survival_7d: median(signals.iter().filter_map(|s| s.survival_7d)),
        median_survival_30d: median(signals.iter().filter_map(|s| s.survival_30d)),
        median_churn_14d: median(
            signals
                .iter()
                .filter(|s| s.churn_complete)
                .filter_map(|s| s.churn_14d),
        ),
        reverted,
        revert_rate: share(reverted, signals.len() as u64),
        review_findings,
        review_blocked: review_count(ReviewOutcome::Blocked),
        review_failed: review_count(ReviewOutcome::Failed),
        tests_compared: compared.len() as u64,
        tests_across: across,
        tests_by_counts: compared.iter().filter(|d| !d.by_name).count() as u64,
        tests_added: sum(&|d| d.added),
        tests_now_pass: sum(&|d| d.now_pass),
        tests_broke: sum(&|d| d.broke),
        tests_removed: sum(&|d| d.removed),
        tests_unreadable: deltas.iter().filter(|d| d.unreadable.is_some()).count() as u64,
        usd,
        tokens: rs.iter().map(|r| r.tokens).sum(),
        tokens_per_landed_task: (landed_n > 0).then(|| landed_tokens as f64 / landed_n as f64),
        usd_per_landed_task: (landed_n > 0).then(|| landed_usd / landed_n as f64),
        surviving_lines,
        usd_per_surviving_line: (surviving_lines > 0).then(|| landed_usd / surviving_lines as f64),
    }
}

/// The median (the mean of the middle two for an even count); `None` for none.
pub fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// How many best and worst tasks are shown.
const RANKED: usize = 5;

/// The best and the worst landed tasks (at most five each, and never one task in both: of a
/// handful, the better half is the best). Reverted ones are the worst; then by survival (the
/// 7-day figure where there is one), then by lines kept.
fn best_and_worst(records: &[TaskRecord]) -> (Vec<Ranked>, Vec<Ranked>) {
    let mut scored: Vec<(f64, u64, &TaskRecord, &Signals)> = records
        .iter()
        .filter_map(|r| r.signals.as_ref().filter(|s| s.added > 0).map(|s| (r, s)))
        .map(|(r, s)| {
            let survival = if s.reverted() {
                -1.0
            } else {
                s.survival_7d.or(s.survival_now).unwrap_or(0.0)
            };
            (survival, s.surviving, r, s)
        })
        .collect();
    // Best first.
    scored.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(b.1.cmp(&a.1))
            .then(a.2.id.cmp(&b.2.id))
    });
    let show = |(_, _, r, s): &(f64, u64, &TaskRecord, &Signals)| Ranked {
        task: r.id,
        title: r.title.clone(),
        template: r.template.clone(),
        why: why(s),
    };
    let n_best = RANKED.min(scored.len().div_ceil(2));
    let n_worst = RANKED.min(scored.len() - n_best);
    let best = scored[..n_best].iter().map(show).collect();
    let worst = scored.iter().rev().take(n_worst).map(show).collect();
    (best, worst)
}

/// A task's signals in words.
pub fn why(s: &Signals) -> String {
    let pct = |x: f64| format!("{:.0}%", x * 100.0);
    let mut parts = Vec::new();
    if let Some(by) = &s.reverted_by {
        parts.push(format!("reverted by {}", &by[..by.len().min(10)]));
    }
    if let Some(now) = s.survival_now {
        parts.push(format!("{} of its {} line(s) survive", pct(now), s.added));
    }
    if let Some(c) = s.churn_14d.filter(|c| *c > 0.0) {
        parts.push(format!(
            "{} changed within 14 days{}",
            pct(c),
            if s.churn_complete { "" } else { " so far" }
        ));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(task: i64, added: u64, surviving: u64, s7: Option<f64>, reverted: bool) -> Signals {
        Signals {
            task,
            landing: format!("{task:040}"),
            landed_at: 0,
            commits: vec![],
            files: vec![],
            added,
            surviving,
            survival_now: Some(surviving as f64 / added as f64),
            survival_1d: None,
            survival_7d: s7,
            survival_30d: None,
            churn_14d: s7.map(|s| 1.0 - s),
            churn_complete: s7.is_some(),
            reverted_by: reverted.then(|| "f".repeat(40)),
        }
    }

    fn rec(
        id: i64,
        template: Option<&str>,
        status: TaskStatus,
        landings: &[MergeState],
        attempts: u32,
        usd: f64,
        s: Option<Signals>,
    ) -> TaskRecord {
        TaskRecord {
            id,
            title: format!("t{id}"),
            template: template.map(str::to_string),
            status,
            attempts,
            landings: landings.to_vec(),
            reviews: vec![],
            usd,
            tokens: 0,
            tests: None,
            signals: s,
        }
    }

    #[test]
    fn the_figures_count_outcomes_landings_survival_and_money() {
        use MergeState::*;
        let rs = vec![
            rec(
                1,
                Some("todo"),
                TaskStatus::Done,
                &[Landed],
                1,
                1.0,
                Some(sig(1, 10, 10, Some(1.0), false)),
            ),
            rec(
                2,
                Some("todo"),
                TaskStatus::Done,
                &[Conflict, Landed],
                2,
                2.0,
                Some(sig(2, 10, 5, Some(0.5), false)),
            ),
            rec(
                3,
                Some("tests"),
                TaskStatus::Done,
                &[Rejected, Landed],
                1,
                3.0,
                Some(sig(3, 4, 0, Some(0.0), true)),
            ),
            rec(
                4,
                Some("tests"),
                TaskStatus::Failed,
                &[Rejected, Rejected],
                1,
                4.0,
                None,
            ),
            rec(5, None, TaskStatus::Pruned, &[], 0, 0.0, None),
        ];
        let mut rs = rs;
        let delta = |added, broke, by_name| TestDelta {
            baseline: Some("b".into()),
            by_name,
            added,
            broke,
            ..TestDelta::default()
        };
        rs[0].tests = Some(delta(2, 0, true));
        rs[1].tests = Some(delta(1, 1, false));
        rs[2].tests = Some(TestDelta::unreadable("no report"));
        // Not landed: its delta is not counted.
        rs[3].tests = Some(delta(9, 9, true));
        (rs[0].tokens, rs[1].tokens, rs[3].tokens) = (100, 200, 1000);
        let r = Report::build(&rs, None, None);
        let t = &r.totals;
        assert_eq!(
            (
                t.tests_compared,
                t.tests_by_counts,
                t.tests_added,
                t.tests_broke,
                t.tests_unreadable
            ),
            (2, 1, 3, 1, 1)
        );
        assert_eq!((t.tokens, t.tokens_per_landed_task), (1300, Some(100.0)));
        assert_eq!(
            (t.tasks, t.completed, t.pruned, t.failed, t.landed),
            (5, 3, 1, 1, 3)
        );
        assert_eq!((t.landed_first_try, t.first_try_rate), (1, Some(1.0 / 3.0)));
        assert_eq!(t.landing_attempts, 7);
        assert_eq!(
            (t.verify_fail_rate, t.conflict_rate),
            (Some(3.0 / 7.0), Some(1.0 / 7.0))
        );
        assert_eq!(
            (t.median_survival_now, t.median_survival_7d),
            (Some(0.5), Some(0.5))
        );
        assert_eq!(t.median_churn_14d, Some(0.5));
        assert_eq!((t.reverted, t.revert_rate), (1, Some(1.0 / 3.0)));
        assert_eq!((t.usd, t.usd_per_landed_task), (10.0, Some(2.0)));
        assert_eq!(
            (t.surviving_lines, t.usd_per_surviving_line),
            (15, Some(6.0 / 15.0))
        );
        assert_eq!(r.by_template["todo"].landed, 2);
        assert_eq!(r.by_template[BY_HAND].pruned, 1);
        assert_eq!(r.best[0].task, 1);
        assert_eq!(r.worst[0].task, 3);
        assert!(
            r.worst[0]
                .why
                .starts_with("reverted by ffffffffff; 0% of its 4 line(s) survive"),
            "{}",
            r.worst[0].why
        );
        assert_eq!(median([3.0, 1.0, 2.0, 10.0].into_iter()), Some(2.5));
        // All landed at 0 (a Thursday): one week, from Monday 1969-12-29.
        assert_eq!(r.weeks.len(), 1);
        assert_eq!(
            (r.weeks[0].start, r.weeks[0].landed, r.weeks[0].reverted),
            (-3 * crate::DAY, 3, 1)
        );
        assert_eq!(
            week_of(4 * crate::DAY + 3 * 7 * crate::DAY + 5),
            4 * crate::DAY + 3 * 7 * crate::DAY
        );
    }
}
