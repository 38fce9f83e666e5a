//! The MCP tools. Each has a JSON schema derived from its parameter struct; descriptions are
//! written for the agent that reads them.

use kite_core::{LockMode, TaskStatus};
use kite_proto::ops::{
    Broadcast, LockAcquire, LockRelease, TaskCreate, TaskFinish, TaskList, TaskNext,
};
use kite_proto::Operation;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{schemars, tool, tool_handler, tool_router, ErrorData, ServerHandler};
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// What the MCP server needs from the memory vault.
pub trait VaultTools: Send + Sync + 'static {
    fn search(&self, query: &str, k: usize) -> Result<Value, String>;
    fn add(&self, title: &str, body: &str, kind: Option<&str>, tags: &[String]) -> Result<Value, String>;
}

#[derive(Clone)]
pub struct KiteMcp {
    link: Arc<crate::link::Link>,
    session: String,
    cwd: PathBuf,
    worktree: PathBuf,
    kite_exe: PathBuf,
    vault: Option<Arc<dyn VaultTools>>,
    /// Pushed grants and broadcasts not yet shown to the agent.
    inbox: Arc<Mutex<Vec<String>>>,
    tool_router: ToolRouter<Self>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct CreateArgs {
    /// A short imperative title.
    pub(crate) title: String,
    /// What done looks like, context, links.
    #[serde(default)]
    pub(crate) body: Option<String>,
    /// Higher runs first (default 0).
    #[serde(default)]
    pub(crate) priority: Option<i64>,
    /// Ids of tasks that must be done first.
    #[serde(default)]
    pub(crate) depends_on: Option<Vec<i64>>,
    /// Files the task will touch (tasks with overlapping files do not run at once).
    #[serde(default)]
    pub(crate) files: Option<Vec<String>>,
    /// A key shared by tasks that mean the same thing; a newer one supersedes an older one.
    #[serde(default)]
    pub(crate) dedup_key: Option<String>,
    #[serde(default)]
    pub(crate) workstream: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct MessageArgs {
    /// The session it is for (an id like s3).
    pub(crate) to: String,
    /// What to tell it.
    pub(crate) text: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct ListArgs {
    /// pending, active, done, failed or pruned; all when omitted.
    #[serde(default)]
    pub(crate) status: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct NextArgs {
    #[serde(default)]
    pub(crate) workstream: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct DoneArgs {
    pub(crate) task: i64,
    /// What was done: commits, findings.
    #[serde(default)]
    pub(crate) result: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct FailArgs {
    pub(crate) task: i64,
    #[serde(default)]
    pub(crate) reason: Option<String>,
    /// True if retrying later may work (the task goes back to pending).
    #[serde(default)]
    pub(crate) transient: Option<bool>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct SpawnArgs {
    /// The task to start a new agent session for.
    pub(crate) task: i64,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct BroadcastArgs {
    pub(crate) message: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct LockArgs {
    /// A file, a directory (covers everything below) or a glob, relative to the project.
    pub(crate) path: String,
    /// Wait for the lock instead of failing when it is held.
    #[serde(default)]
    pub(crate) wait: Option<bool>,
    /// Give up waiting after this many seconds (default 120).
    #[serde(default)]
    pub(crate) timeout_secs: Option<u64>,
    /// A shared (read) lock instead of an exclusive one.
    #[serde(default)]
    pub(crate) shared: Option<bool>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct UnlockArgs {
    pub(crate) path: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct SearchArgs {
    /// What you want to recall, in plain words.
    pub(crate) query: String,
    /// How many notes, 1 to 50 (default 5).
    #[serde(default)]
    pub(crate) k: Option<usize>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct AddNoteArgs {
    pub(crate) title: String,
    pub(crate) body: String,
    /// decision, status, pattern, antipattern, preference or fact.
    #[serde(default)]
    pub(crate) kind: Option<String>,
    #[serde(default)]
    pub(crate) tags: Option<Vec<String>>,
}

impl KiteMcp {
    pub(crate) fn new(
        link: Arc<crate::link::Link>,
        inbox: Arc<Mutex<Vec<String>>>,
        session: String,
        cwd: PathBuf,
        worktree: PathBuf,
        kite_exe: PathBuf,
        vault: Option<Arc<dyn VaultTools>>,
    ) -> KiteMcp {
        KiteMcp { link, session, cwd, worktree, kite_exe, vault, inbox, tool_router: Self::tool_router() }
    }

    /// A successful result, with any pushed news appended.
    fn ok(&self, v: Value) -> Result<CallToolResult, ErrorData> {
        let mut content = vec![ContentBlock::text(serde_json::to_string_pretty(&v).unwrap_or_default())];
        let news: Vec<String> = std::mem::take(&mut *self.inbox.lock().expect("inbox lock"));
        if !news.is_empty() {
            content.push(ContentBlock::text(format!("Since your last kite call:\n{}", news.join("\n"))));
        }
        Ok(CallToolResult::success(content))
    }

    fn fail(&self, msg: impl std::fmt::Display) -> Result<CallToolResult, ErrorData> {
        Ok(CallToolResult::error(vec![ContentBlock::text(msg.to_string())]))
    }

    /// Runs an operation and hands its reply to the agent as JSON.
    async fn request<O: Operation>(&self, args: O::Args) -> Result<CallToolResult, ErrorData>
    where
        O::Reply: serde::Serialize,
    {
        match self.link.client().await.request::<O>(args).await {
            Ok(v) => self.ok(serde_json::to_value(v).unwrap_or_default()),
            Err(e) => self.fail(e),
        }
    }

    /// A path as the daemon takes it: relative to this work tree's top (see `McpConfig`).
    fn repo_path(&self, path: &str) -> Result<String, String> {
        kite_core::paths::repo_relative(&self.worktree, &self.cwd, path).map_err(|e| e.to_string())
    }

    fn vault(&self) -> Result<Arc<dyn VaultTools>, String> {
        self.vault.clone().ok_or_else(|| "the memory vault is not available in this kite build or configuration".to_string())
    }
}

#[tool_router(router = tool_router)]
impl KiteMcp {
    #[tool(description = "Create a task in the shared kite queue. Returns its id. Dependencies must exist; a dependency cycle is refused.")]
    async fn kite_task_create(&self, Parameters(a): Parameters<CreateArgs>) -> Result<CallToolResult, ErrorData> {
        let files = match a.files.unwrap_or_default().iter().map(|f| self.repo_path(f)).collect::<Result<Vec<_>, _>>() {
            Ok(f) => f,
            Err(e) => return self.fail(e),
        };
        let args = TaskCreate {
            title: a.title,
            body: a.body.unwrap_or_default(),
            priority: a.priority.unwrap_or(0),
            depends_on: a.depends_on.unwrap_or_default(),
            files,
            dedup_key: a.dedup_key,
            workstream: a.workstream,
            cwd: None,
            ..Default::default()
        };
        self.request::<kite_proto::op::TaskCreate>(args).await
    }

    #[tool(description = "List tasks in the kite queue, optionally only those with one status (pending, active, done, failed, pruned).")]
    async fn kite_task_list(&self, Parameters(a): Parameters<ListArgs>) -> Result<CallToolResult, ErrorData> {
        let status = match a.status.as_deref().map(str::parse::<TaskStatus>).transpose() {
            Ok(s) => s,
            Err(e) => return self.fail(e),
        };
        self.request::<kite_proto::op::TaskList>(TaskList { status, workstream: None, limit: Some(200), after: None }).await
    }

    #[tool(description = "Claim the best ready task (pending, all dependencies done, highest priority) for this session. Returns the task and its claim, or null when nothing is ready.")]
    async fn kite_task_next(&self, Parameters(a): Parameters<NextArgs>) -> Result<CallToolResult, ErrorData> {
        match self.link.client().await.request::<kite_proto::op::TaskNext>(TaskNext { session: self.session.clone(), workstream: a.workstream }).await {
            Ok(c) => self.ok(serde_json::to_value(c).unwrap_or_default()),
            Err(e) => self.fail(e),
        }
    }

    #[tool(description = "Mark a task this session claimed as done, with what was done.")]
    async fn kite_task_done(&self, Parameters(a): Parameters<DoneArgs>) -> Result<CallToolResult, ErrorData> {
        self.request::<kite_proto::op::TaskDone>(TaskFinish { task: a.task, session: self.session.clone(), claim: None, text: a.result, transient: false, uncounted: false }).await
    }

    #[tool(description = "Mark a task this session claimed as failed. With transient=true it goes back to the queue to be retried.")]
    async fn kite_task_fail(&self, Parameters(a): Parameters<FailArgs>) -> Result<CallToolResult, ErrorData> {
        let args = TaskFinish { task: a.task, session: self.session.clone(), claim: None, text: a.reason, transient: a.transient.unwrap_or(false), uncounted: false };
        self.request::<kite_proto::op::TaskFail>(args).await
    }

    #[tool(description = "Start a new agent session (in its own git worktree) to work on a task. Returns at once; the new session reports through the queue.")]
    async fn kite_spawn(&self, Parameters(a): Parameters<SpawnArgs>) -> Result<CallToolResult, ErrorData> {
        let child = tokio::process::Command::new(&self.kite_exe)
            .arg("spawn")
            .arg(a.task.to_string())
            .current_dir(&self.cwd)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        match child {
            Ok(c) => self.ok(json!({"task": a.task, "spawned": true, "pid": c.id()})),
            Err(e) => self.fail(format!("cannot run {} spawn: {e}", self.kite_exe.display())),
        }
    }

    #[tool(description = "Send a short message to every other connected agent session (for example: 'I am refactoring src/db, avoid it for an hour').")]
    async fn kite_broadcast(&self, Parameters(a): Parameters<BroadcastArgs>) -> Result<CallToolResult, ErrorData> {
        self.request::<kite_proto::op::Broadcast>(Broadcast { message: a.message, from: Some(self.session.clone()) }).await
    }

    #[tool(description = "Send a short message to one other session (by its id, as kite_task_list or `kite session list` show it); it is told at its next tool call.")]
    async fn kite_message(&self, Parameters(a): Parameters<MessageArgs>) -> Result<CallToolResult, ErrorData> {
        self.request::<kite_proto::op::Message>(kite_proto::ops::Message { to: a.to, text: a.text, from: Some(self.session.clone()) }).await
    }

    #[tool(description = "Take an advisory lock on a file, directory or glob before editing it, so other sessions do not edit it at the same time. Returns a fencing token. With wait=true, waits (first come, first served) until the holder releases it.")]
    async fn kite_lock(&self, Parameters(a): Parameters<LockArgs>) -> Result<CallToolResult, ErrorData> {
        let wait = a.wait.unwrap_or(false);
        let path = match self.repo_path(&a.path) {
            Ok(p) => p,
            Err(e) => return self.fail(e),
        };
        let args = LockAcquire {
            path,
            session: self.session.clone(),
            cwd: None,
            mode: if a.shared.unwrap_or(false) { LockMode::Shared } else { LockMode::Exclusive },
            wait,
            timeout_ms: wait.then(|| a.timeout_secs.unwrap_or(120) * 1000),
        };
        self.request::<kite_proto::op::LockAcquire>(args).await
    }

    #[tool(description = "Release a lock this session holds; the next waiter gets it at once.")]
    async fn kite_unlock(&self, Parameters(a): Parameters<UnlockArgs>) -> Result<CallToolResult, ErrorData> {
        let path = match self.repo_path(&a.path) {
            Ok(p) => p,
            Err(e) => return self.fail(e),
        };
        self.request::<kite_proto::op::LockRelease>(LockRelease { path, session: self.session.clone(), cwd: None }).await
    }

    #[tool(description = "Search the project's memory vault (decisions, status, patterns that worked or failed, preferences recorded by earlier sessions). Returns the best notes with scores.")]
    async fn kite_vault_search(&self, Parameters(a): Parameters<SearchArgs>) -> Result<CallToolResult, ErrorData> {
        let vault = match self.vault() {
            Ok(v) => v,
            Err(e) => return self.fail(e),
        };
        let k = a.k.unwrap_or(5);
        if !(1..=50).contains(&k) {
            return self.fail(format!("k must be between 1 and 50 (got {k})"));
        }
        match tokio::task::spawn_blocking(move || vault.search(&a.query, k)).await {
            Ok(Ok(v)) => self.ok(v),
            Ok(Err(e)) => self.fail(e),
            Err(e) => self.fail(format!("vault search crashed: {e}")),
        }
    }

    #[tool(description = "Record a note in the project's memory vault for future sessions: a decision and its reason, the project's status, a pattern that worked or failed, a preference. Secrets are redacted; a near-duplicate updates the older note.")]
    async fn kite_vault_add(&self, Parameters(a): Parameters<AddNoteArgs>) -> Result<CallToolResult, ErrorData> {
        let vault = match self.vault() {
            Ok(v) => v,
            Err(e) => return self.fail(e),
        };
        let tags = a.tags.unwrap_or_default();
        match tokio::task::spawn_blocking(move || vault.add(&a.title, &a.body, a.kind.as_deref(), &tags)).await {
            Ok(Ok(v)) => self.ok(v),
            Ok(Err(e)) => self.fail(e),
            Err(e) => self.fail(format!("vault add crashed: {e}")),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for KiteMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("kite", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "kite coordinates the agent sessions working on this repository: a shared task queue, \
                 advisory file locks, broadcasts, and a memory vault of what earlier sessions learned.",
            )
    }
}
