//! `kite lock ...`: acquire (at once, or waiting for the pushed grant), release, list.

use super::Ctx;
use crate::output;
use anyhow::{Context, Result};
use kite_core::LockMode;
use kite_proto::ops::{LockAcquire, LockGranted, LockRelease, Locks, Released};

#[derive(clap::Subcommand, Debug)]
pub(crate) enum LockCmd {
    /// Take a lock; prints {"path", "token"} on grant.
    Acquire {
        path: String,
        #[arg(long)]
        session: String,
        /// Queue for the lock and return when it is granted.
        #[arg(long)]
        wait: bool,
        /// Give up waiting after this many seconds.
        #[arg(long, value_name = "SECS")]
        timeout: Option<f64>,
        /// A shared (read) lock instead of an exclusive one.
        #[arg(long)]
        shared: bool,
    },
    /// Release a lock.
    Release {
        path: String,
        #[arg(long)]
        session: String,
    },
    /// Holders and waiters.
    List,
    /// Ask the holders of a path for it: they are told at their next tool call.
    Ask {
        path: String,
        /// Who asks (a session id, or your name).
        #[arg(long, default_value = "a person")]
        by: String,
    },
}

/// The path as the daemon takes it: relative to the top of this work tree, so a lock taken from
/// a linked work tree is the same lock as from the main checkout.
fn repo_path(ctx: &Ctx, path: &str) -> Result<String> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    ctx.places.repo_path(&cwd.canonicalize().unwrap_or(cwd), path)
}

/// Waits for a lock; when the daemon goes away meanwhile (a restart, or a take-over by a team's
/// standby), asks again of whichever daemon answers next, for up to a minute: the new daemon
/// kept this wait's place, and asking again takes it back.
async fn wait_across_restarts(ctx: &Ctx, mut c: kite_proto::Client, args: LockAcquire) -> Result<LockGranted> {
    let started = std::time::Instant::now();
    loop {
        let mut asked = args.clone();
        // A timeout counts from the first ask.
        asked.timeout_ms = args.timeout_ms.map(|t| t.saturating_sub(started.elapsed().as_millis() as u64));
        match c.request::<kite_proto::op::LockAcquire>(asked).await {
            Err(kite_proto::ClientError::Closed | kite_proto::ClientError::Io(_)) => {
                eprintln!("kite: the daemon went away while waiting for '{}'; asking again when one answers", args.path);
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                c = loop {
                    match ctx.client().await {
                        Ok(c) => break c,
                        Err(e) if std::time::Instant::now() >= deadline => return Err(e.context("no daemon answered within a minute")),
                        Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
                    }
                };
            }
            r => return Ok(r?),
        }
    }
}

pub(crate) async fn run(ctx: &Ctx, cmd: LockCmd) -> Result<()> {
    let c = ctx.client().await?;
    match cmd {
        LockCmd::Acquire { path, session, wait, timeout, shared } => {
            let timeout_ms = match timeout {
                Some(t) if t.is_finite() && t >= 0.0 => Some((t * 1000.0) as u64),
                Some(_) => anyhow::bail!("--timeout must be a non-negative number of seconds"),
                None => None,
            };
            let mode = if shared { LockMode::Shared } else { LockMode::Exclusive };
            let args = LockAcquire { path: repo_path(ctx, &path)?, session, cwd: None, mode, wait, timeout_ms };
            let g = if wait { wait_across_restarts(ctx, c, args).await? } else { c.request::<kite_proto::op::LockAcquire>(args).await? };
            if ctx.json { output::json(&g) } else { output::line(format!("{}\ttoken {}", g.path, g.token)) }
        }
        LockCmd::Release { path, session } => {
            let r: Released = c.request::<kite_proto::op::LockRelease>(LockRelease { path: repo_path(ctx, &path)?, session, cwd: None }).await?;
            if ctx.json {
                return output::json(&r);
            }
            output::line(format!("released {}", r.path))?;
            for g in &r.granted {
                output::line(format!("  granted to {} (token {})", g.session, g.token))?;
            }
            Ok(())
        }
        LockCmd::Ask { path, by } => {
            let d: kite_proto::ops::Delivered = c.request::<kite_proto::op::LockAsk>(kite_proto::ops::LockAsk { path: repo_path(ctx, &path)?, by, cwd: None }).await?;
            if ctx.json { output::json(&d) } else { output::line(format!("asked {} holder(s)", d.delivered)) }
        }
        LockCmd::List => {
            let l: Locks = c.request::<kite_proto::op::LockList>(kite_proto::NoArgs {}).await?;
            if ctx.json {
                return output::json(&l);
            }
            for h in &l.held {
                output::line(format!("{}\t{}\t{}\ttoken {}", h.path, h.mode.as_str(), h.session, h.token))?;
            }
            for w in &l.waiting {
                output::line(format!("{}\t{}\t{}\twaiting", w.path, w.mode.as_str(), w.session))?;
            }
            Ok(())
        }
    }
}
