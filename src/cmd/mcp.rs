//! `kite mcp`: the MCP server on stdio for one agent session. Logs go to stderr (stdout carries
//! JSON-RPC).

use super::Ctx;
use anyhow::{Context, Result};
use kite_mcp::McpConfig;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The session's name in `kite status` (default: from CLAUDE_SESSION_ID, else mcp-PID).
    #[arg(long)]
    name: Option<String>,
    /// Seconds between heartbeats.
    #[arg(long, default_value_t = 30)]
    heartbeat: u64,
}

pub(crate) async fn run(ctx: &Ctx, a: Args) -> Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("KITE_LOG").unwrap_or_else(|_| "warn".into()))
        .try_init();
    let name = a
        .name
        .or_else(|| std::env::var("CLAUDE_SESSION_ID").ok().map(|id| format!("claude-{id}")))
        .unwrap_or_else(|| format!("mcp-{}", std::process::id()));
    let daemon = crate::remote::endpoint(ctx)?;
    // An agent's MCP server is useless without the daemon: start one when none answers (a
    // remote one is the team's to run).
    let local = matches!(daemon, kite_proto::Endpoint::Unix(_));
    if local && crate::autostart::connect(&ctx.places.socket(), Duration::from_millis(500)).await.is_none() {
        if !ctx.config.daemon.autostart {
            anyhow::bail!("no kite daemon for {}; start it with `kite daemon --detach` (autostart is off in kite.toml)", ctx.places.root.display());
        }
        let pid = crate::autostart::spawn(&ctx.places, &["--autostarted".to_string()])?;
        tracing::info!(pid, "started the kite daemon");
        crate::autostart::wait_ready(&ctx.places, Some(pid), Duration::from_secs(20)).await?;
    }
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let config = McpConfig {
        daemon,
        cwd: cwd.canonicalize().unwrap_or(cwd),
        worktree: ctx.places.worktree.clone(),
        session_name: name,
        attach_to: crate::agent::runner_session(),
        session_key: crate::agent::key(),
        heartbeat_every: Duration::from_secs(a.heartbeat.max(1)),
        kite_exe: std::env::current_exe().context("cannot find the kite executable")?,
    };
    kite_mcp::serve_stdio(config, super::vault_tools(ctx)).await?;
    Ok(())
}
