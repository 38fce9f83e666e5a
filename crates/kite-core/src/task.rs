//! The task state machine. Tasks move pending → active → done | failed, may be pruned while
//! pending, and go back to pending when their session dies or fails transiently. Every other
//! move is refused here, once, so the daemon cannot drift into states no one designed.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a task is in its life; a new task is pending.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    #[default]
    Pending,
    Active,
    Done,
    Failed,
    Pruned,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 5] = [
        TaskStatus::Pending,
        TaskStatus::Active,
        TaskStatus::Done,
        TaskStatus::Failed,
        TaskStatus::Pruned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Active => "active",
            TaskStatus::Done => "done",
            TaskStatus::Failed => "failed",
            TaskStatus::Pruned => "pruned",
        }
    }

    /// Done, failed and pruned tasks never change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, TaskStatus::Done | TaskStatus::Failed | TaskStatus::Pruned)
    }

    /// Pending or active: counts toward capacity and toward file conflicts.
    pub fn is_open(self) -> bool {
        matches!(self, TaskStatus::Pending | TaskStatus::Active)
    }

    /// Failed or pruned: a dependency in this state will never be done.
    pub fn is_dead(self) -> bool {
        matches!(self, TaskStatus::Failed | TaskStatus::Pruned)
    }

    /// Whether the machine allows `self → to`.
    pub fn can_become(self, to: TaskStatus) -> bool {
        use TaskStatus::*;
        matches!(
            (self, to),
            (Pending, Active)
                | (Pending, Pruned)
                | (Active, Done)
                | (Active, Failed)
                | (Active, Pending)
                // A person cancels (or the loop prunes) a task an agent is on: the agent is
                // stopped at its next tool call.
                | (Active, Pruned)
        )
    }

    /// Checks a move, with an error that names both ends.
    pub fn transition(self, to: TaskStatus) -> Result<TaskStatus, TransitionError> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(TransitionError { from: self, to })
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!("unknown task status '{s}' (expected pending, active, done, failed or pruned)")
            })
    }
}

/// A move the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {from} task cannot become {to}")]
pub struct TransitionError {
    pub from: TaskStatus,
    pub to: TaskStatus,
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaskStatus::*;

    #[test]
    fn terminal_states_never_move() {
        for from in [Done, Failed, Pruned] {
            for to in TaskStatus::ALL {
                assert!(from.transition(to).is_err(), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn the_designed_moves_are_allowed() {
        let ok = [(Pending, Active), (Pending, Pruned), (Active, Done), (Active, Failed), (Active, Pending), (Active, Pruned)];
        for from in TaskStatus::ALL {
            for to in TaskStatus::ALL {
                assert_eq!(from.can_become(to), ok.contains(&(from, to)), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn status_round_trips_through_text() {
        for st in TaskStatus::ALL {
            assert_eq!(st.as_str().parse::<TaskStatus>().unwrap(), st);
        }
        assert!("paused".parse::<TaskStatus>().unwrap_err().contains("paused"));
    }
}

/// A task to create: what `task.create` carries on the wire, what the strategy loop proposes and
/// what the queue stores. One type for all three, so a new field is added once.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    pub title: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub priority: i64,
    #[serde(default)]
    pub depends_on: Vec<i64>,
    #[serde(default)]
    pub files: Vec<String>,
    #[serde(default)]
    pub dedup_key: Option<String>,
    #[serde(default)]
    pub stale_after_secs: Option<u64>,
    #[serde(default)]
    pub workstream: Option<String>,
    #[serde(default)]
    pub template: Option<String>,
    /// Directory relative paths in `files` are resolved from (defaults to the project root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

/// A task as stored and as shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: i64,
    pub title: String,
    #[serde(default)]
    pub body: String,
    pub status: TaskStatus,
    #[serde(default)]
    pub priority: i64,
    #[serde(default)]
    pub depends_on: Vec<i64>,
    #[serde(default)]
    pub files: Vec<String>,
    #[serde(default)]
    pub dedup_key: Option<String>,
    #[serde(default)]
    pub stale_after_secs: Option<u64>,
    #[serde(default)]
    pub workstream: Option<String>,
    /// The strategy-loop template that produced the task, if any.
    #[serde(default)]
    pub template: Option<String>,
    /// How many times the task was started.
    #[serde(default)]
    pub attempts: u32,
    /// The session holding the current claim, while active.
    #[serde(default)]
    pub claim_session: Option<String>,
    /// The fencing token of the current (or last) claim.
    #[serde(default)]
    pub claim_token: Option<u64>,
    #[serde(default)]
    pub result: Option<String>,
    /// Why it failed or was pruned.
    #[serde(default)]
    pub reason: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl Task {
    /// A new task as the queue first stores it: pending, never started.
    pub fn pending(id: i64, t: NewTask, now_ms: i64) -> Task {
        Task {
            id,
            title: t.title,
            body: t.body,
            status: TaskStatus::Pending,
            priority: t.priority,
            depends_on: t.depends_on,
            files: t.files,
            dedup_key: t.dedup_key,
            stale_after_secs: t.stale_after_secs,
            workstream: t.workstream,
            template: t.template,
            attempts: 0,
            claim_session: None,
            claim_token: None,
            result: None,
            reason: None,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        }
    }
}

/// One transition in a task's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at_ms: i64,
    pub from: Option<TaskStatus>,
    pub to: TaskStatus,
    pub session: Option<String>,
    pub note: Option<String>,
}
