//! The merge queue's operations (`merge.*`): the lander records each step of a landing; the CLI,
//! the dashboard, `status` and the strategy loop read the book.

use serde::{Deserialize, Serialize};

/// `merge.enqueue`: a finished task's branch joins the merge queue (replacing an entry of the
/// same task that is still in flight: one entry per task in flight).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MergeEnqueue {
    pub task: i64,
    pub branch: String,
    /// The branch it lands on (resolved by the lander when it queues).
    pub target: String,
    /// The claim the lander holds while it lands.
    pub session: String,
    pub token: u64,
}

/// `merge.step`: where a landing is now. `tally` (only with a finished state) adds the outcome
/// to the lifetime counts, in the same transaction as the state change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MergeStep {
    pub task: i64,
    pub state: kite_core::MergeState,
    #[serde(default)]
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tally: Option<kite_core::MergeTally>,
    /// The review gate's verdict on this landing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<kite_core::Review>,
    /// What this landing did to the tests (its verify run against the target's last one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<kite_core::TestDelta>,
}

/// `merge.list`'s arguments.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MergeList {
    /// Finished entries to include, the newest (default 20, at most [`super::MAX_PAGE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<u32>,
}

/// The merge queue's book: entries (in flight, and the newest finished ones; oldest first) and
/// the lifetime counts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MergeBook {
    pub entries: Vec<kite_core::MergeEntry>,
    pub total: kite_core::MergeCounts,
    pub by_template: std::collections::BTreeMap<String, kite_core::MergeCounts>,
}

impl MergeBook {
    /// The task's newest entry in this page of the book.
    pub fn entry(&self, task: i64) -> Option<&kite_core::MergeEntry> {
        self.entries.iter().rev().find(|e| e.task_id == task)
    }
}

/// `merge.show`'s reply.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MergeShown {
    pub entry: Option<kite_core::MergeEntry>,
}

/// `merge.discard`: records that the task's unlanded work is given up, if the one discard rule
/// ([`kite_core::discard_refusal`]) allows it; the caller then removes the worktree and branch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MergeDiscard {
    pub task: i64,
    /// What is being removed, in words (kept as the entry's detail).
    #[serde(default)]
    pub detail: String,
}
