//! How much a task or candidate is worth doing, as a sum of named parts.
//!
//! Every prune must explain itself, so a score is never a bare number: it keeps its parts (priority,
//! age, what it unblocks, file conflicts with active work, the template's track record) next to the
//! total. Pure arithmetic, no I/O.

use serde::{Deserialize, Serialize};

/// Weights of the score parts (`[sched.weights]` in kite.toml).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScoreWeights {
    /// Points per unit of priority.
    pub priority: f64,
    /// Points gained by a task as it waits, reached at `age_full_hours` and capped there.
    pub age: f64,
    pub age_full_hours: f64,
    /// Points per open task that (directly) depends on this one.
    pub unblocks: f64,
    /// Points (subtracted) per declared file that an active task also declares.
    pub conflict: f64,
    /// Maximum points (either sign) from the template's track record.
    pub track_record: f64,
}

impl Default for ScoreWeights {
    fn default() -> Self {
        ScoreWeights {
            priority: 1.0,
            age: 10.0,
            age_full_hours: 48.0,
            unblocks: 5.0,
            conflict: 5.0,
            track_record: 10.0,
        }
    }
}

/// Completions, failures and prunes of one template's tasks, and (from the merge queue's book)
/// how many of its landings were rejected by the verify command or conflicted. With landing on,
/// `done` means landed.
///
/// With the landed work's signals (from git, `kite_quality`), landed work weighs by what survived,
/// not by count: a landed task whose lines were mostly rewritten within a week counts for little,
/// a reverted one counts against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TrackRecord {
    pub done: u64,
    pub failed: u64,
    pub pruned: u64,
    #[serde(default)]
    pub rejected: u64,
    #[serde(default)]
    pub conflicted: u64,
    /// Landed tasks with a 7-day survival figure (7 days have passed since they landed).
    #[serde(default)]
    pub measured: u64,
    /// The sum of those tasks' 7-day survival (each in [0, 1]).
    #[serde(default)]
    pub survived: f64,
    #[serde(default)]
    pub median_survival_7d: Option<f64>,
    /// Landed tasks a later commit reverted.
    #[serde(default)]
    pub reverted: u64,
}

/// When a template's landed work counts as poor (`[sched.quality]`): it is then throttled to one
/// open task, as a template whose tasks keep failing is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QualityRule {
    /// Landed tasks with a 7-day figure a template needs before its survival can throttle it.
    pub min_landed: u64,
    /// Throttled when the median 7-day survival of its landed tasks is under this share.
    pub min_survival_7d: f64,
    /// Throttled once this many of its landed tasks were reverted.
    pub reverted: u64,
}

impl Default for QualityRule {
    fn default() -> Self {
        QualityRule { min_landed: 5, min_survival_7d: 0.5, reverted: 2 }
    }
}

/// Finished tasks a template needs before its record can throttle it.
pub const THROTTLE_AFTER: u64 = 5;

impl TrackRecord {
    /// Why the template is held to one open task at a time, when most of its finished tasks
    /// (at least [`THROTTLE_AFTER`], 60% or more) failed or were pruned: its work is not landing,
    /// so it gets one chance at a time until a completion lifts its record.
    /// Its landed work counts as poor by `q` as well: reverted, or mostly rewritten within a week.
    pub fn throttle(&self, q: &QualityRule) -> Option<String> {
        let n = self.done + self.failed + self.pruned;
        let bad = self.failed + self.pruned;
        if n >= THROTTLE_AFTER && bad * 10 >= n * 6 {
            return Some(format!(
                "throttled to one open task: {bad} of its {n} finished tasks failed or were pruned ({} done, {} failed, {} pruned)",
                self.done, self.failed, self.pruned
            ));
        }
        if q.reverted > 0 && self.reverted >= q.reverted {
            return Some(format!("throttled to one open task: {} of its landed tasks were reverted", self.reverted));
        }
        match self.median_survival_7d {
            Some(m) if self.measured >= q.min_landed && m < q.min_survival_7d => Some(format!(
                "throttled to one open task: of the lines its {} landed tasks added, a median {:.0}% were still there after 7 days \
                 (under {:.0}%): most of its work gets rewritten",
                self.measured,
                m * 100.0,
                q.min_survival_7d * 100.0
            )),
            _ => None,
        }
    }

    /// In [-1, 1]: completions count for, failures against, prunes half against; smoothed so that a
    /// template with no history scores 0 and a couple of outcomes do not swing it to the extremes.
    pub fn ratio(&self) -> f64 {
        // A landed task whose 7-day survival is known counts by that share; one reverted counts
        // as a failure.
        let good = self.done.saturating_sub(self.measured) as f64 + self.survived;
        // A rejected or conflicted landing is an attempt that did not land: half a failure (the
        // task may land on its next attempt, and then counts as done too).
        let bad = (self.failed + self.reverted) as f64 + 0.5 * (self.pruned + self.rejected + self.conflicted) as f64;
        let n = (self.done + self.failed + self.pruned) as f64;
        (good - bad) / (n + 2.0)
    }
}

/// A score and the parts it is the sum of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub priority: f64,
    pub age: f64,
    pub unblocks: f64,
    pub conflicts: f64,
    pub track_record: f64,
    pub total: f64,
}

/// The raw facts a score is computed from.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScoreInput {
    pub priority: i64,
    pub age_ms: i64,
    pub unblocks: usize,
    pub conflicting_files: usize,
    pub track: Option<TrackRecord>,
}

impl Score {
    /// The score in plain words: what counted for and against the candidate, each part with its
    /// points, then the total.
    pub fn explain(&self) -> String {
        let mut parts = vec![format!("{:.1} from its priority", self.priority + 0.0)];
        let signed = |v: f64| if v >= 0.0 { format!("+{v:.1}") } else { format!("{v:.1}") };
        if self.age.abs() >= 0.05 {
            parts.push(format!("{} for how long it has waited", signed(self.age)));
        }
        if self.unblocks.abs() >= 0.05 {
            parts.push(format!("{} for the tasks waiting on it", signed(self.unblocks)));
        }
        if self.conflicts.abs() >= 0.05 {
            parts.push(format!("{} because active work holds some of its files", signed(self.conflicts)));
        }
        if self.track_record.abs() >= 0.05 {
            let how = if self.track_record > 0.0 { "its template's tasks mostly get done" } else { "its template's tasks often fail or are pruned" };
            parts.push(format!("{} because {how}", signed(self.track_record)));
        }
        if parts.len() == 1 {
            parts.push("nothing else counts for or against it yet".into());
        }
        format!("{}; {:.1} in all", parts.join(", "), self.total + 0.0)
    }

    pub fn compute(input: &ScoreInput, w: &ScoreWeights) -> Score {
        let priority = w.priority * input.priority as f64;
        let hours = input.age_ms.max(0) as f64 / 3_600_000.0;
        let age = if w.age_full_hours > 0.0 {
            w.age * (hours / w.age_full_hours).min(1.0)
        } else {
            0.0
        };
        let unblocks = w.unblocks * input.unblocks as f64;
        let conflicts = -w.conflict * input.conflicting_files as f64;
        let track_record = input.track.map(|t| w.track_record * t.ratio()).unwrap_or(0.0);
        let total = priority + age + unblocks + conflicts + track_record;
        Score { priority, age, unblocks, conflicts, track_record, total: round3(total) }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: ScoreInput, expected_total: f64) {
        let s = Score::compute(&input, &ScoreWeights::default());
        assert!((s.total - expected_total).abs() < 1e-3, "{input:?} -> {s:?}");
        let sum = s.priority + s.age + s.unblocks + s.conflicts + s.track_record;
        assert!((sum - s.total).abs() < 1e-3);
    }

    #[test]
    fn parts_add_up() {
        check(ScoreInput { priority: 10, ..Default::default() }, 10.0);
        // Half of the full age earns half of the age points.
        check(ScoreInput { age_ms: 24 * 3_600_000, ..Default::default() }, 5.0);
        // Age is capped.
        check(ScoreInput { age_ms: 1000 * 3_600_000, ..Default::default() }, 10.0);
        check(ScoreInput { age_ms: -5, ..Default::default() }, 0.0);
        check(ScoreInput { unblocks: 2, ..Default::default() }, 10.0);
        check(ScoreInput { conflicting_files: 3, ..Default::default() }, -15.0);
        // 2 done, 0 failed: (2 - 0) / (2 + 2) * 10
        let track = Some(TrackRecord { done: 2, failed: 0, pruned: 0, ..Default::default() });
        check(ScoreInput { track, ..Default::default() }, 5.0);
        let track = Some(TrackRecord { done: 0, failed: 3, pruned: 2, ..Default::default() });
        check(ScoreInput { track, ..Default::default() }, -40.0 / 7.0);
    }

    #[test]
    fn a_score_is_explained_in_words() {
        let s = Score { priority: 5.0, age: 0.0, unblocks: 2.0, conflicts: -3.0, track_record: -1.5, total: 2.5 };
        assert_eq!(
            s.explain(),
            "5.0 from its priority, +2.0 for the tasks waiting on it, -3.0 because active work holds some of its files, -1.5 because its template's tasks often fail or are pruned; 2.5 in all"
        );
        let plain = Score { priority: 5.0, total: 5.0, ..Score::default() };
        assert_eq!(plain.explain(), "5.0 from its priority, nothing else counts for or against it yet; 5.0 in all");
    }

    #[test]
    fn a_template_whose_work_keeps_failing_is_throttled_and_recovers() {
        let q = QualityRule::default();
        assert_eq!(TrackRecord { done: 0, failed: 2, pruned: 2, ..Default::default() }.throttle(&q), None, "too few outcomes to judge");
        let bad = TrackRecord { done: 2, failed: 3, pruned: 2, ..Default::default() }.throttle(&q).expect("5 of 7 went wrong");
        assert!(bad.contains("5 of its 7") && bad.contains("2 done, 3 failed, 2 pruned"), "{bad}");
        assert_eq!(TrackRecord { done: 4, failed: 3, pruned: 2, ..Default::default() }.throttle(&q), None, "4 of 9 done lifts it");
        // Landings rejected by the verify command or conflicted count against its ratio.
        let landed = TrackRecord { done: 4, ..Default::default() };
        let bounced = TrackRecord { done: 4, rejected: 4, conflicted: 2, ..Default::default() };
        assert!(bounced.ratio() < landed.ratio(), "{} vs {}", bounced.ratio(), landed.ratio());
    }

    /// Issue 24: landed work that is reverted or rewritten throttles its template, with the reason
    /// in words; landed work weighs by what survived.
    #[test]
    fn a_template_whose_landed_work_is_reverted_or_rewritten_is_throttled() {
        let q = QualityRule::default();
        let landed = |measured: u64, survived: f64, median: f64, reverted: u64| TrackRecord {
            done: 6,
            measured,
            survived,
            median_survival_7d: Some(median),
            reverted,
            ..Default::default()
        };
        assert_eq!(landed(6, 5.4, 0.9, 0).throttle(&q), None, "work that stays");
        let why = landed(6, 6.0, 1.0, 2).throttle(&q).expect("two reverted");
        assert!(why.contains("2 of its landed tasks were reverted"), "{why}");
        let why = landed(5, 1.5, 0.3, 0).throttle(&q).expect("rewritten");
        assert!(why.contains("its 5 landed tasks") && why.contains("a median 30%") && why.contains("under 50%"), "{why}");
        assert_eq!(landed(4, 1.2, 0.3, 0).throttle(&q), None, "too few measured to judge");
        assert_eq!(landed(6, 1.8, 0.3, 1).throttle(&QualityRule { min_survival_7d: 0.2, ..q.clone() }), None, "configurable");
        // What survived is what counts: six landed tasks of which little stayed score below six
        // whose work stayed, and a reverted one counts against.
        assert!(landed(6, 1.8, 0.3, 0).ratio() < landed(6, 5.4, 0.9, 0).ratio());
        assert!(landed(6, 5.4, 0.9, 1).ratio() < landed(6, 5.4, 0.9, 0).ratio());
    }

    #[test]
    fn no_history_is_neutral() {
        assert_eq!(TrackRecord::default().ratio(), 0.0);
    }
}
