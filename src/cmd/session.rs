//! `kite session ...`: register, heartbeat, list, end.

use super::Ctx;
use crate::output::{self, when};
use anyhow::Result;
use kite_proto::ops::{SessionId, SessionRef, SessionRegister};
use serde_json::Value;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum SessionCmd {
    /// Register a session; prints its id.
    Register {
        #[arg(long)]
        name: String,
    },
    /// Tell the daemon the session is alive.
    Heartbeat { id: String },
    /// List sessions.
    List,
    /// End a session: its locks are released and its active tasks requeued.
    End { id: String },
    /// Stop a session at its next tool call (an agent's task then fails with the reason).
    Stop {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
}

pub(crate) async fn run(ctx: &Ctx, cmd: SessionCmd) -> Result<()> {
    let c = ctx.client().await?;
    match cmd {
        SessionCmd::Register { name } => {
            // A one-shot CLI call does not stay to receive pushes.
            let r: SessionId = c.request::<kite_proto::op::SessionRegister>(SessionRegister { name, attach: false, key: None }).await?;
            if ctx.json { output::json(&r) } else { output::line(&r.id) }
        }
        SessionCmd::Heartbeat { id } => {
            let _: Value = c.request::<kite_proto::op::SessionHeartbeat>(SessionRef { session: id }).await?;
            if ctx.json { output::json(&serde_json::json!({"ok": true})) } else { Ok(()) }
        }
        SessionCmd::End { id } => {
            let r: Value = c.request::<kite_proto::op::SessionEnd>(SessionRef { session: id }).await?;
            if ctx.json { output::json(&r) } else { output::line(format!("ended {}", r["session"].as_str().unwrap_or(""))) }
        }
        SessionCmd::List => {
            let l = c.request::<kite_proto::op::SessionList>(kite_proto::NoArgs {}).await?;
            if ctx.json {
                return output::json(&l);
            }
            for s in &l.sessions {
                output::line(format!("{}\t{}\t{}\tsince {}", s.id, s.state, s.name, when(s.registered_at_ms)))?;
                if let Some(why) = &s.stop {
                    output::line(format!("  stop ordered: {why}"))?;
                }
                for t in &s.told {
                    output::line(format!("  told {}: {}", when(t.at_ms), t.text))?;
                }
            }
            Ok(())
        }
        SessionCmd::Stop { id, reason } => {
            let _: Value = c.request::<kite_proto::op::SessionStop>(kite_proto::ops::SessionStop { session: id.clone(), reason }).await?;
            if ctx.json { output::json(&serde_json::json!({"stopping": id})) } else { output::line(format!("{id} stops at its next tool call")) }
        }
    }
}
