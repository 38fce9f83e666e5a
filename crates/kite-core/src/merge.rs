//! The merge queue's domain: an entry per landing of a task's branch, where it is, the lifetime
//! counts, and the one rule for when a task's unlanded work may be discarded.
//!
//! The book lives in the coordinator's database (kite-store), the git work in kite-land; both
//! speak these types, so the CLI, the dashboard, `kite status` and the strategy loop's track
//! record read one book through one set of `merge.*` operations. The discard rule lives here,
//! once, because two front ends (the CLI and the dashboard) used to decide it each their own way.

use serde::{Deserialize, Serialize};

use crate::TaskStatus;

/// Where an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeState {
    Queued,
    Verifying,
    /// Verified; the target is being moved to `new` from `base`.
    Moving,
    /// The target is checked out with uncommitted changes; kite waits for the person.
    Waiting,
    Landed,
    Conflict,
    Rejected,
    /// The agent committed nothing.
    NoChanges,
    /// A person gave the work up (`kite merge discard`).
    Discarded,
    /// Landing itself failed (git refused something kite did not expect); the task went back.
    Failed,
    /// The review gate found a blocker (or could not judge); the task went back with its findings.
    Blocked,
}

impl MergeState {
    pub const ALL: [MergeState; 11] = [
        MergeState::Queued,
        MergeState::Verifying,
        MergeState::Moving,
        MergeState::Waiting,
        MergeState::Landed,
        MergeState::Conflict,
        MergeState::Rejected,
        MergeState::NoChanges,
        MergeState::Discarded,
        MergeState::Failed,
        MergeState::Blocked,
    ];

    /// Still to be landed (a restart resumes these).
    pub fn in_flight(self) -> bool {
        matches!(
            self,
            MergeState::Queued | MergeState::Verifying | MergeState::Moving | MergeState::Waiting
        )
    }

    /// The name in the book and on the wire (`no_changes`).
    pub fn as_str(self) -> &'static str {
        match self {
            MergeState::Queued => "queued",
            MergeState::Verifying => "verifying",
            MergeState::Moving => "moving",
            MergeState::Waiting => "waiting",
            MergeState::Landed => "landed",
            MergeState::Conflict => "conflict",
            MergeState::Rejected => "rejected",
            MergeState::NoChanges => "no_changes",
            MergeState::Discarded => "discarded",
            MergeState::Failed => "failed",
            MergeState::Blocked => "blocked",
        }
    }

    pub fn parse(s: &str) -> Option<MergeState> {
        MergeState::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

impl std::fmt::Display for MergeState {
    /// In words: `no changes`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_str().replace('_', " "))
    }
}

/// One landing of a task's branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeEntry {
    pub task_id: i64,
    pub title: String,
    #[serde(default)]
    pub template: Option<String>,
    pub branch: String,
    /// The branch it lands on, fixed when it was queued (a person switching their checkout
    /// later does not change where queued work goes).
    #[serde(default)]
    pub target: Option<String>,
    pub state: MergeState,
    /// What happened, in words (the conflict's files, the verify output's tail, where it waits).
    #[serde(default)]
    pub detail: String,
    /// The target head it was verified against, and the commit the target moves to.
    #[serde(default)]
    pub base: Option<String>,
    #[serde(default)]
    pub new: Option<String>,
    /// Whether a verify command passed (false: landed "not verified").
    #[serde(default)]
    pub verified: bool,
    /// The claim the runner holds while the entry lands, so a restart can finish the task.
    #[serde(default)]
    pub session: Option<String>,
    #[serde(default)]
    pub token: Option<u64>,
    pub queued_at_ms: i64,
    pub updated_at_ms: i64,
    #[serde(default)]
    pub attempts: u32,
    /// What the review gate said (`[merge] review`): `{outcome, findings: [...]}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
    /// What the landing did to the tests, from its verify run against the target's last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<TestDelta>,
}

/// What a landing did to the tests: its verify run read with kite's test report readers and
/// compared with the target's last verify run (the one kept from the previous landing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestDelta {
    /// Tests that passed and failed in this landing's verify run.
    pub passed: u64,
    pub failed: u64,
    /// The commit whose verify run this one is compared with; `None`: there was none (the
    /// target's first verified landing), so nothing is counted as added, fixed or broken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    /// Compared test by test (the runner names its passing tests), or by counts only (ExUnit's
    /// summary, or a baseline read by counts): then `added` is the growth of the count, `now_pass`
    /// the fall of the failures and `broke` their rise, and no names are listed.
    pub by_name: bool,
    pub added: u64,
    pub now_pass: u64,
    pub broke: u64,
    /// Tests the baseline ran that this run does not (deleted, renamed or no longer run).
    #[serde(default)]
    pub removed: u64,
    /// Commits between the baseline's and this landing's base (a person's commits, a landing
    /// that was not verified or whose output was unreadable): their changes to the tests are in
    /// the counts too, so `kite report` leaves such a delta out of its sums. 0: compared with the
    /// run of the very commit this one was built on.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub behind: u64,
    /// Some of the names behind the counts (at most [`TestDelta::NAMES`] each).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub now_pass_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub broke_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_names: Vec<String>,
    /// Why the verify output could not be read as a test report (then every count is 0 and
    /// means nothing: recorded as unreadable, not guessed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

impl TestDelta {
    /// Names kept per list.
    pub const NAMES: usize = 20;

    /// A verify run whose output kite could not read as a test report.
    pub fn unreadable(why: impl Into<String>) -> Self {
        Self {
            unreadable: Some(why.into()),
            ..Self::default()
        }
    }

    /// The delta in words (`+2 tests, 1 now passes, none broke`), for the book and `task show`.
    pub fn describe(&self) -> String {
        if let Some(why) = &self.unreadable {
            return format!("test results unreadable ({why})");
        }
        let run = format!("{} passed, {} failed", self.passed, self.failed);
        let Some(base) = &self.baseline else {
            return format!("{run}; no earlier verify run to compare with");
        };
        let how = if self.by_name { "by name" } else { "by counts" };
        let base: String = base.chars().take(10).collect();
        let across = match self.behind {
            0 => String::new(),
            u64::MAX => ", across commits no longer known".to_string(),
            n => format!(", across {n} other commit(s)"),
        };
        let mut s = format!(
            "{run}; against {base} ({how}{across}): {} added, {} now pass, {} broke",
            self.added, self.now_pass, self.broke
        );
        if self.removed > 0 {
            s.push_str(&format!(", {} no longer run", self.removed));
        }
        s
    }
}

/// The review gate's verdict on a landing (`[merge] review`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub outcome: ReviewOutcome,
    #[serde(default)]
    pub findings: Vec<Finding>,
    /// Why the review failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// What the reviewer cost (every try), also in the cost ledger as source `review`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usd: f64,
    /// Its input and output tokens (cache reads and writes included).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub tokens: u64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

fn is_zero_u64(x: &u64) -> bool {
    *x == 0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewOutcome {
    /// No blocker: it lands, its other findings recorded.
    Passed,
    /// A blocker: the task goes back with the findings.
    Blocked,
    /// The reviewer's answer could not be read, twice: never a pass.
    Failed,
}

/// One thing a reviewer found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// `blocker`, `major`, `minor` or `nit` (lower case).
    pub severity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    pub what: String,
}

impl MergeEntry {
    /// A new entry for task `task_id` on `branch`, queued at `now_ms`, nothing done yet.
    pub fn fresh(task_id: i64, title: String, branch: String, now_ms: i64) -> Self {
        Self {
            task_id,
            title,
            template: None,
            branch,
            target: None,
            state: MergeState::Queued,
            detail: String::new(),
            base: None,
            new: None,
            verified: false,
            session: None,
            token: None,
            queued_at_ms: now_ms,
            updated_at_ms: now_ms,
            attempts: 0,
            review: None,
            tests: None,
        }
    }
}

/// Lifetime counts (of every template, or one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeCounts {
    pub landed: u64,
    pub rejected: u64,
    pub conflicted: u64,
    #[serde(default)]
    pub not_verified: u64,
}

/// What a finished landing adds to the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeTally {
    Landed,
    LandedNotVerified,
    Rejected,
    Conflicted,
}

impl MergeCounts {
    pub fn add(&mut self, t: MergeTally) {
        match t {
            MergeTally::Landed => self.landed += 1,
            MergeTally::LandedNotVerified => {
                self.landed += 1;
                self.not_verified += 1;
            }
            MergeTally::Rejected => self.rejected += 1,
            MergeTally::Conflicted => self.conflicted += 1,
        }
    }
}

/// The one discard rule: a task's unlanded work (its worktree, uncommitted changes too, and its
/// branch) may be given up unless an agent works in it or a landing of it is in flight. `None`:
/// allowed; otherwise the refusal, which says when it can be.
pub fn discard_refusal(
    task: i64,
    status: Option<TaskStatus>,
    latest: Option<&MergeEntry>,
) -> Option<String> {
    if let Some(e) = latest.filter(|e| e.state.in_flight()) {
        return Some(format!(
            "task {task}'s landing is in flight ({} in the merge queue); it can be discarded once that landing ends \
             (see `kite merge list`)",
            e.state
        ));
    }
    if status == Some(TaskStatus::Active) {
        return Some(format!(
            "task {task} is active: its agent works in that worktree; it can be discarded once the agent stops \
             (`kite task cancel {task}` stops it)"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(state: MergeState) -> MergeEntry {
        let fresh = MergeEntry::fresh(7, "t".into(), "kite/task-7".into(), 0);
        MergeEntry {
            target: Some("main".into()),
            state,
            attempts: 1,
            ..fresh
        }
    }

    #[test]
    fn names_round_trip_and_show_in_words() {
        for s in MergeState::ALL {
            assert_eq!(MergeState::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        assert_eq!(MergeState::NoChanges.to_string(), "no changes");
        assert_eq!(MergeState::parse("landing"), None);
    }

    #[test]
    fn work_in_flight_or_in_use_is_not_discarded_and_the_refusal_says_when() {
        // In flight: refused whatever the task's status (a landing holds an active claim).
        for s in [
            MergeState::Queued,
            MergeState::Verifying,
            MergeState::Moving,
            MergeState::Waiting,
        ] {
            let why =
                discard_refusal(7, Some(TaskStatus::Active), Some(&entry(s))).expect("refused");
            assert!(why.contains("once that landing ends"), "{why}");
        }
        let why = discard_refusal(7, Some(TaskStatus::Active), None).expect("refused");
        assert!(why.contains("once the agent stops"), "{why}");
        let why = discard_refusal(
            7,
            Some(TaskStatus::Active),
            Some(&entry(MergeState::Conflict)),
        )
        .expect("refused");
        assert!(why.contains("active"), "{why}");
        for s in [
            MergeState::Landed,
            MergeState::Conflict,
            MergeState::Rejected,
            MergeState::NoChanges,
            MergeState::Failed,
        ] {
            assert_eq!(
                discard_refusal(7, Some(TaskStatus::Pending), Some(&entry(s))),
                None
            );
        }
        assert_eq!(discard_refusal(7, None, None), None);
    }

    #[test]
    fn tallies_count_what_they_say() {
        let mut c = MergeCounts::default();
        for t in [
            MergeTally::Landed,
            MergeTally::LandedNotVerified,
            MergeTally::Rejected,
            MergeTally::Conflicted,
        ] {
            c.add(t);
        }
        assert_eq!(
            c,
            MergeCounts {
                landed: 2,
                rejected: 1,
                conflicted: 1,
                not_verified: 1
            }
        );
    }
}
