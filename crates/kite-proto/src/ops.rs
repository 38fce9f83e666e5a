//! The operations: one argument struct (and result struct where it is not a core type) per op,
//! shared by the daemon, which parses them, and the client, which builds them. Field names are the
//! protocol; docs/PROTOCOL.md lists them for people.

use kite_core::{HistoryEntry, LockMode, Task, TaskStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::request::{MEMORY_OPS, OPS};

mod merge;
pub use merge::*;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    pub version: String,
    pub protocol: u32,
    pub pid: u32,
    pub root: String,
    pub home: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRegister {
    pub name: String,
    /// Bind this connection to the new session so it receives pushes (the default).
    #[serde(default = "yes")]
    pub attach: bool,
    /// The agent process this session stands for. A registration whose key names a live
    /// session gets that session back (and the newer name) instead of a second one: a Claude
    /// Code session's SessionStart hook and its MCP server are one kite session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRef {
    pub session: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionId {
    pub id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sessions {
    pub sessions: Vec<SessionInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SessionInfo {
    pub id: String,
    pub name: String,
    /// live, ended or reaped
    pub state: String,
    pub registered_at_ms: i64,
    /// Milliseconds since the last heartbeat (live sessions).
    pub idle_ms: Option<i64>,
    /// Connections currently bound to it.
    pub connections: usize,
    /// What it was told at its tool calls, newest last (live sessions; the last few).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub told: Vec<NewsItem>,
    /// A stop order not carried out yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
}

/// `task.create`'s arguments: kite-core's one new-task type.
pub type TaskCreate = kite_core::NewTask;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskCreated {
    pub id: i64,
    pub status: TaskStatus,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDepend {
    pub task: i64,
    pub on: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskList {
    #[serde(default)]
    pub status: Option<TaskStatus>,
    #[serde(default)]
    pub workstream: Option<String>,
    /// Tasks per page: default [`DEFAULT_PAGE`], at most [`MAX_PAGE`].
    #[serde(default)]
    pub limit: Option<u32>,
    /// The cursor: only tasks with a larger id (the `next` of the previous page).
    #[serde(default)]
    pub after: Option<i64>,
}

/// Tasks or events per page when the client does not say.
pub const DEFAULT_PAGE: u32 = 200;
/// The most a client may ask for per page. A page also ends early to keep its reply under
/// [`crate::MAX_FRAME`].
pub const MAX_PAGE: u32 = 1000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tasks {
    pub tasks: Vec<Task>,
    /// Set when there are more: pass it as `after` for the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRef {
    pub task: i64,
}

/// A dependency as shown with a task.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DepInfo {
    pub id: i64,
    pub title: String,
    pub status: TaskStatus,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskDetail {
    #[serde(flatten)]
    pub task: Task,
    pub dependencies: Vec<DepInfo>,
    pub dependents: Vec<i64>,
    pub history: Vec<HistoryEntry>,
    /// Structured details of a prune (score parts, the superseding task), if any.
    pub prune_details: Option<Value>,
    /// What its attempts cost, oldest first: the newest [`MAX_TASK_COSTS`] of them.
    #[serde(default)]
    pub costs: Vec<CostEntry>,
    /// The sum over every cost recorded for the task (not only the ones in `costs`).
    #[serde(default)]
    pub cost: CostTotals,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskStart {
    pub task: i64,
    pub session: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskNext {
    pub session: String,
    #[serde(default)]
    pub workstream: Option<String>,
}

/// A claim on a task: the task and the fencing token that finishing it may present.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claim {
    pub task: Task,
    pub claim: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskFinish {
    pub task: i64,
    pub session: String,
    /// The claim token; when given it must be the current claim's.
    #[serde(default)]
    pub claim: Option<u64>,
    /// The result (done) or the reason (fail).
    #[serde(default)]
    pub text: Option<String>,
    /// For fail: put the task back to pending instead of failing it.
    #[serde(default)]
    pub transient: bool,
    /// For a transient fail: the attempt does not count (kite stopped the agent, as when the
    /// daily budget is spent; it was not the agent's failure).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub uncounted: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskPrune {
    pub task: i64,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub details: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockAcquire {
    pub path: String,
    pub session: String,
    /// The directory a relative `path` is resolved from (the client's working directory).
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub mode: LockMode,
    #[serde(default)]
    pub wait: bool,
    /// Give up waiting after this long (with `wait`).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LockGranted {
    pub path: String,
    pub mode: LockMode,
    pub session: String,
    pub token: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockRelease {
    pub path: String,
    pub session: String,
    #[serde(default)]
    pub cwd: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Released {
    pub path: String,
    /// Grants this release handed on.
    pub granted: Vec<LockGranted>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LockWaiting {
    pub path: String,
    pub mode: LockMode,
    pub session: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Locks {
    pub held: Vec<LockGranted>,
    pub waiting: Vec<LockWaiting>,
    /// The last waits refused as deadlocks since the daemon started (newest last), with their
    /// cycles: kept in memory only, since a refused request changes nothing durable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deadlocks: Vec<RefusedDeadlock>,
}

/// A wait the lock table refused because it would close a cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefusedDeadlock {
    pub path: String,
    pub session: String,
    pub cycle: Vec<String>,
    pub at_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Broadcast {
    pub message: String,
    #[serde(default)]
    pub from: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivered {
    pub delivered: usize,
}

/// `message`: a short message to one session (`kite message`, `kite_message`), told at its next
/// tool call.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// The session it is for.
    pub to: String,
    pub text: String,
    /// The sending session, when a session sends it.
    #[serde(default)]
    pub from: Option<String>,
}

/// `lock.ask`: tells the holders of a path that someone wants it (`kite lock ask`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockAsk {
    pub path: String,
    /// Who asks: a session id, or a person's name.
    pub by: String,
    #[serde(default)]
    pub cwd: Option<String>,
}

/// `session.news`: what the tool hook asks after (and before) each tool call.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionNews {
    pub session: String,
    /// Hand over (and mark told) what this session has not been told yet. False: only the
    /// stop order and the lock check (before a tool runs).
    #[serde(default)]
    pub deliver: bool,
    /// A path the session is about to write: `deny` says who holds it exclusively.
    #[serde(default)]
    pub write_path: Option<String>,
    /// `[runner] daily_budget_usd`, as the hook's kite.toml says: a warning at 80% (once a day),
    /// and a stop order once spent when `stop_on_budget`.
    #[serde(default)]
    pub daily_budget_usd: Option<f64>,
    /// Whether this session is stopped by stop orders and a spent daily budget (kite's agents;
    /// a person's only with `[hooks] stop_people`). A stoppable session that is stopped is not
    /// handed its news.
    #[serde(default)]
    pub stop_on_budget: bool,
    /// What this run has spent so far (from its transcript, priced by the hook's table), for a
    /// session kite's runner started: counted against the daily budget until the run's own cost
    /// is recorded.
    #[serde(default)]
    pub running_usd: Option<f64>,
}

/// One thing a session is told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewsItem {
    pub at_ms: i64,
    /// broadcast, message, lock.granted, lock.asked, task, budget, stop
    pub kind: String,
    pub text: String,
}

/// `session.news`'s reply.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct News {
    /// What the session had not been told yet (empty unless `deliver`), oldest first.
    #[serde(default)]
    pub items: Vec<NewsItem>,
    /// Why the write must not happen: another live session holds the path exclusively.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny: Option<String>,
    /// Why the session must stop now (its task pruned or cancelled, a stop order, the budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    /// What the stop is: `pruned` (its task), `ordered` (a person's `session.stop`) or `budget`
    /// (the daily budget), so the runner knows what becomes of the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_kind: Option<String>,
}

/// `session.stop`: a stop order, carried out at the session's next tool call.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionStop {
    pub session: String,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only events with an id greater than this.
    #[serde(default)]
    pub since: Option<i64>,
    /// The newest this many (events.list).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// `gc`: moves events and finished tasks older than the retention to the archive.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gc {
    /// Count what would go, move nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Instead of the configured retention: everything older than this many seconds.
    #[serde(default)]
    pub older_than_secs: Option<u64>,
}

/// What one `gc` call moved (or, with `dry_run`, would move). One call moves at most a chunk of
/// each; `more` says to call again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GcReport {
    pub events: u64,
    pub tasks: u64,
    pub more: bool,
    pub dry_run: bool,
    /// The archive directory (JSON Lines: `events.jsonl`, `tasks.jsonl`).
    pub archive: String,
    /// The retention applied, in seconds (none: kept forever).
    pub events_older_than_secs: Option<u64>,
    pub tasks_older_than_secs: Option<u64>,
}

/// One entry of the event log; pushed as `event` to followers.
/// What an event in the log records. Kinds a newer daemon adds arrive as `Other`, with their name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "task.created")]
    TaskCreated,
    #[serde(rename = "task.depended")]
    TaskDepended,
    #[serde(rename = "task.started")]
    TaskStarted,
    #[serde(rename = "task.done")]
    TaskDone,
    #[serde(rename = "task.failed")]
    TaskFailed,
    #[serde(rename = "task.requeued")]
    TaskRequeued,
    #[serde(rename = "task.pruned")]
    TaskPruned,
    #[serde(rename = "lock.granted")]
    LockGranted,
    #[serde(rename = "lock.released")]
    LockReleased,
    #[serde(rename = "session.registered")]
    SessionRegistered,
    #[serde(rename = "session.ended")]
    SessionEnded,
    #[serde(rename = "session.reaped")]
    SessionReaped,
    #[serde(rename = "broadcast")]
    Broadcast,
    #[serde(rename = "cost.recorded")]
    CostRecorded,
    #[serde(rename = "message")]
    Message,
    #[serde(rename = "lock.asked")]
    LockAsked,
    #[serde(rename = "session.stop")]
    SessionStopOrdered,
    #[serde(rename = "merge")]
    Merge,
    #[serde(untagged)]
    Other(String),
}

impl EventKind {
    /// The name in the log and on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            EventKind::TaskCreated => "task.created",
            EventKind::TaskDepended => "task.depended",
            EventKind::TaskStarted => "task.started",
            EventKind::TaskDone => "task.done",
            EventKind::TaskFailed => "task.failed",
            EventKind::TaskRequeued => "task.requeued",
            EventKind::TaskPruned => "task.pruned",
            EventKind::LockGranted => "lock.granted",
            EventKind::LockReleased => "lock.released",
            EventKind::SessionRegistered => "session.registered",
            EventKind::SessionEnded => "session.ended",
            EventKind::SessionReaped => "session.reaped",
            EventKind::Broadcast => "broadcast",
            EventKind::CostRecorded => "cost.recorded",
            EventKind::Message => "message",
            EventKind::LockAsked => "lock.asked",
            EventKind::SessionStopOrdered => "session.stop",
            EventKind::Merge => "merge",
            EventKind::Other(s) => s,
        }
    }

    /// The kind named `s` (a name this build does not know is `Other`).
    pub fn parse(s: &str) -> EventKind {
        serde_json::from_value(Value::String(s.to_string()))
            .unwrap_or_else(|_| EventKind::Other(s.to_string()))
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub id: i64,
    pub at_ms: i64,
    pub kind: EventKind,
    pub data: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Events {
    pub events: Vec<Event>,
    /// Set when there are more: pass it as `since` for the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Counters {
    pub completed: u64,
    pub pruned: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub pid: u32,
    pub root: String,
    pub sessions: Vec<SessionInfo>,
    /// Task counts by status.
    pub queue: std::collections::BTreeMap<String, u64>,
    pub locks: Locks,
    /// Lifetime counters.
    pub counters: Counters,
    /// Connections the daemon could not accept (out of file descriptors), when any were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refused>,
    /// What agents and people's sessions cost, today and over the daemon's lifetime.
    #[serde(default)]
    pub cost: CostSummary,
    /// Where the state is kept.
    #[serde(default)]
    pub store: StoreInfo,
}

/// Where the daemon keeps its state (`status`).
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct StoreInfo {
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// The database file, or the database's URL without its password.
    pub location: String,
    /// With a shared store: the lease epoch this daemon writes under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<i64>,
    /// With a shared store: what lives only on this daemon's machine, which a daemon taking
    /// over on another machine does not have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub local_only: Vec<String>,
}

/// Connections refused because the daemon ran out of file descriptors.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Refused {
    pub total: u64,
    /// When the last one was refused (ms since the epoch).
    pub last_at_ms: i64,
    /// The daemon's open-file limit.
    pub fd_limit: u64,
}

/// `cost.record`: what one agent attempt (source `agent`) or one person's Claude Code session
/// (source `interactive`) cost. Kept per record, summed per task, per day and for the lifetime.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostRecord {
    /// The kite session that ran.
    pub session: String,
    /// The task it worked on, if any (it must exist).
    #[serde(default)]
    pub task: Option<i64>,
    /// Which attempt at the task (1 for the first).
    #[serde(default)]
    pub attempt: Option<u32>,
    /// [`COST_SOURCES`]: `agent` for the runner's agents, `review` for the review gate's reviewer,
    /// `interactive` for a person's session.
    pub source: String,
    /// Dollars: finite, not negative.
    pub usd: f64,
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_creation_input_tokens: u64,
    #[serde(default)]
    pub cache_read_input_tokens: u64,
    /// The model that did most of the work.
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub turns: u64,
    #[serde(default)]
    pub duration_ms: u64,
    /// Claude Code's own session id.
    #[serde(default)]
    pub agent_session: Option<String>,
    /// How the attempt ended: finished, transient, stopped or failed.
    #[serde(default)]
    pub outcome: Option<String>,
    /// Model ids the price table did not know: their tokens are counted, their dollars are not.
    #[serde(default)]
    pub unpriced: Vec<String>,
}

/// The sources a cost may have.
pub const COST_SOURCES: [&str; 3] = ["agent", "interactive", "review"];

/// The most cost entries `task.show` returns (the newest); its `cost` sums them all.
pub const MAX_TASK_COSTS: u32 = 100;

/// One recorded cost, as `task.show` lists it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CostEntry {
    pub at_ms: i64,
    pub session: String,
    pub source: String,
    pub attempt: Option<u32>,
    pub usd: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub model: Option<String>,
    pub turns: u64,
    pub duration_ms: u64,
    pub agent_session: Option<String>,
    pub outcome: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unpriced: Vec<String>,
}

/// Costs summed: dollars and tokens by kind, how many records, and the dollars split by source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CostTotals {
    pub usd: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
    /// Records summed (agent attempts and interactive sessions).
    pub runs: u64,
    pub agents_usd: f64,
    pub interactive_usd: f64,
}

/// `cost.summary` (and `status`'s `cost`): today's and the lifetime's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CostSummary {
    /// Since `day_start_ms`.
    pub today: CostTotals,
    pub lifetime: CostTotals,
    /// Today's dollars of the runner's agents: what `[runner] daily_budget_usd` is measured against.
    pub agents_today_usd: f64,
    /// UTC midnight of today, by the daemon's clock (ms since the epoch).
    pub day_start_ms: i64,
}

/// UTC midnight before `now_ms` (both in ms since the epoch).
pub fn day_start_ms(now_ms: i64) -> i64 {
    now_ms - now_ms.rem_euclid(86_400_000)
}

/// The most notes one recall returns. A size a client gives never sizes an allocation unchecked.
pub const MAX_RECALL_K: usize = 100;

fn default_k() -> usize {
    8
}

/// `memory.recall`: the best active notes for a query, with their bodies.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryRecall {
    pub query: String,
    /// 1 to [`MAX_RECALL_K`].
    #[serde(default = "default_k")]
    pub k: usize,
}

/// One recalled note: what a hook needs to show it and to judge its relevance. The one hit type
/// of every recall path (hook, strategy loop, MCP).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecalledNote {
    pub id: String,
    pub title: String,
    pub kind: String,
    pub score: f64,
    /// Cosine similarity to the query; `None` when found by keywords only.
    pub similarity: Option<f32>,
    pub updated: String,
    pub body: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recalled {
    pub notes: Vec<RecalledNote>,
    /// Set when the search fell back to keywords (no model), saying why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// `memory.inject`: what a session should be given from the vault, and why (the policy is
/// kite-memory's `inject` module). Every field is optional; sizes are bounded by the daemon.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryInject {
    /// Include the pinned notes (preferences, `pin: true`) and the status notes that bear on the
    /// session (the most recent ones when it has no task).
    pub pinned: bool,
    pub task: Option<String>,
    pub prompt: Option<String>,
    pub work: Option<String>,
    /// Notes the session already has.
    pub exclude: Vec<String>,
    /// Characters all notes together may take (default 6000, at most 9000).
    pub budget: Option<usize>,
    pub min_similarity: Option<f32>,
    /// Days after which a status note is no longer given (default 14).
    pub status_days: Option<u32>,
    /// How similar to the task or the work a fresh status note must be (default 0.20).
    pub status_similarity: Option<f32>,
    /// Candidates per query (default 8, at most 100).
    pub k: Option<usize>,
}

/// One injected note and why it is there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InjectedNote {
    pub id: String,
    pub title: String,
    pub kind: String,
    pub updated: String,
    pub body: String,
    /// "pinned", "task", "prompt" or "work".
    pub reason: String,
    #[serde(default)]
    pub score: Option<f64>,
    #[serde(default)]
    pub similarity: Option<f32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Injection {
    pub notes: Vec<InjectedNote>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// `memory.add`: a note written into the vault (redacted, deduplicated, embedded).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryAdd {
    pub title: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub source: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_kinds_round_trip_and_unknown_ones_keep_their_name() {
        for k in [
            EventKind::TaskCreated,
            EventKind::SessionReaped,
            EventKind::Broadcast,
            EventKind::CostRecorded,
            EventKind::Other("task.landed".into()),
        ] {
            let text = serde_json::to_string(&k).unwrap();
            assert_eq!(text, format!("\"{}\"", k.as_str()));
            assert_eq!(serde_json::from_str::<EventKind>(&text).unwrap(), k);
            assert_eq!(EventKind::parse(k.as_str()), k);
        }
    }

    /// A reply from a daemon before costs existed still parses (the new fields default).
    #[test]
    fn replies_without_costs_parse() {
        let detail = serde_json::json!({
            "id": 1, "title": "t", "body": "", "status": "done", "priority": 0, "depends_on": [], "files": [],
            "dedup_key": null, "stale_after_secs": null, "workstream": null, "template": null, "attempts": 1,
            "claim_session": null, "claim_token": null, "result": null, "reason": null, "created_at_ms": 0, "updated_at_ms": 0,
            "dependencies": [], "dependents": [], "history": [], "prune_details": null,
        });
        let d: TaskDetail = serde_json::from_value(detail).unwrap();
        assert!(d.costs.is_empty());
        assert_eq!(d.cost, CostTotals::default());
        let status = serde_json::json!({
            "version": "0", "pid": 1, "root": "/", "sessions": [], "queue": {}, "locks": {"held": [], "waiting": []},
            "counters": {"completed": 0, "pruned": 0, "failed": 0},
        });
        let s: Status = serde_json::from_value(status).unwrap();
        assert_eq!(s.cost, CostSummary::default());
    }

    #[test]
    fn a_cost_record_needs_its_session_source_and_dollars_and_nothing_unknown() {
        let r: CostRecord = serde_json::from_value(
            serde_json::json!({"session": "s1", "source": "agent", "usd": 0.5}),
        )
        .unwrap();
        assert_eq!(
            (r.input_tokens, r.turns, r.unpriced.len(), r.task),
            (0, 0, 0, None)
        );
        assert!(serde_json::from_value::<CostRecord>(
            serde_json::json!({"session": "s1", "source": "agent"})
        )
        .is_err());
        assert!(serde_json::from_value::<CostRecord>(
            serde_json::json!({"session": "s1", "source": "agent", "usd": 1, "cents": 3})
        )
        .is_err());
    }

    #[test]
    fn the_day_starts_at_utc_midnight() {
        assert_eq!(day_start_ms(0), 0);
        assert_eq!(day_start_ms(86_400_000 + 5), 86_400_000);
        assert_eq!(day_start_ms(2 * 86_400_000 - 1), 86_400_000);
        assert_eq!(day_start_ms(-1), -86_400_000);
    }
}

/// `auth`: the first request on a connection to the daemon's TCP listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub token: String,
}

/// Who the token says the client is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Authed {
    pub name: String,
}

/// `token.create` and `token.revoke`: a token's name (a person or a machine).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenName {
    pub name: String,
}

/// A new token: shown this once; the daemon keeps only its hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenCreated {
    pub name: String,
    pub token: String,
}

/// `token.list`: every token by name (never the token itself).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Tokens {
    pub tokens: Vec<TokenInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenInfo {
    pub name: String,
    pub created_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_ms: Option<i64>,
}
