//! kite-mcp: the MCP server an agent session runs (`kite mcp`, stdio). It is the session's live
//! client: it registers a session with the daemon, heartbeats while it runs, receives pushed
//! lock grants and broadcasts (shown to the agent with the result of its next tool call), and ends
//! the session when the agent goes away, so its locks are released and its task requeued.
//!
//! Tools are thin: each one is a call through the kite-proto client (or the vault, for memory),
//! and a refusal comes back as a tool result with `isError` and the daemon's reason.

mod link;
mod tools;

pub use tools::{KiteMcp, VaultTools};

use kite_proto::ops::{SessionId, SessionRef, SessionRegister};
use kite_proto::Client;
use rmcp::ServiceExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How the MCP server finds and talks to the daemon.
pub struct McpConfig {
    /// Where the daemon is: the local socket, or the team's daemon on another machine.
    pub daemon: kite_proto::Endpoint,
    /// The directory relative lock paths are resolved from.
    pub cwd: PathBuf,
    /// The top of the work tree `cwd` is in: paths go to the daemon relative to it, so a file is
    /// one lock from every work tree of the repository.
    pub worktree: PathBuf,
    pub session_name: String,
    /// A session someone else owns (the runner's, for the agent it started): the server attaches
    /// to it instead of registering one, and leaves it live when the agent goes (the runner ends
    /// it once it has finished the task).
    pub attach_to: Option<String>,
    /// The agent process this server works for (see `session.register`'s `key`).
    pub session_key: Option<String>,
    pub heartbeat_every: Duration,
    /// The `kite` executable, for `kite_spawn`.
    pub kite_exe: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error(transparent)]
    Client(#[from] kite_proto::ClientError),
    #[error("MCP transport: {0}")]
    Transport(String),
}

/// Serves MCP on stdin/stdout until the client leaves.
pub async fn serve_stdio(config: McpConfig, vault: Option<Arc<dyn VaultTools>>) -> Result<(), McpError> {
    let client = Arc::new(Client::connect_to(&config.daemon).await?);
    // The runner's session, unless it is gone (a stale variable in a person's shell): then a
    // session of its own, as for any agent.
    let attached = match &config.attach_to {
        Some(id) => match client.request::<kite_proto::op::SessionAttach>(SessionRef { session: id.clone() }).await {
            Ok(_) => {
                tracing::info!(session = id, "MCP server attached to the runner's session");
                Some(id.clone())
            }
            Err(e) => {
                tracing::warn!(session = id, "not attached to the runner's session ({e}); registering one");
                None
            }
        },
        None => None,
    };
    let owned = attached.is_none();
    let session = match attached {
        Some(id) => id,
        None => {
            let reg: SessionId = client
                .request::<kite_proto::op::SessionRegister>(SessionRegister { name: config.session_name.clone(), attach: true, key: config.session_key.clone() })
                .await?;
            tracing::info!(session = reg.id, "MCP session registered");
            reg.id
        }
    };
    let inbox: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let link = Arc::new(link::Link::keep(config.daemon.clone(), client, session.clone(), inbox.clone()));
    let server = KiteMcp::new(link.clone(), inbox, session.clone(), config.cwd.clone(), config.worktree.clone(), config.kite_exe.clone(), vault);
    let hb_link = link.clone();
    let hb_session = session.clone();
    let heartbeat = tokio::spawn(async move {
        let mut tick = tokio::time::interval(config.heartbeat_every);
        loop {
            tick.tick().await;
            if let Err(e) = hb_link.client().await.call::<_, serde_json::Value>("session.heartbeat", SessionRef { session: hb_session.clone() }).await {
                tracing::warn!("heartbeat failed: {e}");
            }
        }
    });

    let running = server.serve(rmcp::transport::stdio()).await.map_err(|e| McpError::Transport(e.to_string()))?;
    let reason = running.waiting().await;
    tracing::info!(?reason, "MCP client left");
    heartbeat.abort();
    // The agent is gone: end its session so its locks and tasks go to others now, not after the
    // reaper's timeout. The runner's session is the runner's to end: it still has to land the
    // task with that session's claim.
    if owned {
        let _: Result<serde_json::Value, _> = link.client().await.request::<kite_proto::op::SessionEnd>(SessionRef { session }).await;
    }
    Ok(())
}
