//! `kite worker --connect URL`: the runner on another machine. It claims tasks from the team's
//! daemon over TLS, runs agents in worktrees of this machine's clone, and lands their work on
//! the shared remote (`[merge] remote`, "origin" by default here) with a compare-and-swap push.
//! The agents it starts reach the same daemon: they inherit KITE_URL, KITE_TOKEN and
//! KITE_CERT_SHA256.

use super::Ctx;
use anyhow::{Context, Result};
use kite_daemon::queue::ClientQueue;
use kite_runner::Runner;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The team's daemon (kite://host:port, from `kite token create`); default KITE_URL or
    /// [client] url. The token and certificate pin come from KITE_TOKEN and KITE_CERT_SHA256
    /// (or [client] token and cert_sha256).
    #[arg(long, value_name = "URL")]
    connect: Option<String>,
    /// Agents at once on this machine (default [runner] max_agents, or 1).
    #[arg(long, value_name = "N")]
    max_agents: Option<usize>,
}

/// Sets the daemon's address for this process and the agents it starts. Called before any
/// thread exists.
pub(crate) fn prepare(args: &Args) {
    if let Some(url) = &args.connect {
        std::env::set_var("KITE_URL", url);
    }
    // What it runs and lands, on stderr (KITE_LOG sets the level, default info).
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("KITE_LOG").unwrap_or_else(|_| "info".into()))
        .try_init();
}

pub(crate) async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    anyhow::ensure!(
        crate::remote::is_remote(ctx),
        "a worker works for a daemon on another machine: give --connect kite://host:port (with KITE_TOKEN and KITE_CERT_SHA256), or run the daemon here"
    );
    let mut cfg = super::sched::runner_config(ctx)?;
    cfg.max_agents = args.max_agents.unwrap_or(if cfg.max_agents == 0 { 1 } else { cfg.max_agents });
    if cfg.merge.land && cfg.merge.remote.is_none() {
        // Work landed only in this clone would reach no one.
        cfg.merge.remote = Some("origin".into());
    }
    let client = Arc::new(ctx.client().await.context("cannot reach the team's daemon")?);
    let hello = client.request::<kite_proto::op::Hello>(kite_proto::NoArgs {}).await?;
    tracing::info!(daemon = %hello.root, max_agents = cfg.max_agents, remote = ?cfg.merge.remote, "worker on");
    eprintln!(
        "kite worker: {} agent(s) for the daemon of {} (pid {}), landing on {}; Ctrl-C stops",
        cfg.max_agents,
        hello.root,
        hello.pid,
        cfg.merge.remote.as_deref().map_or("nothing (landing is off)".to_string(), |r| format!("{r}'s target"))
    );
    let stop = tokio::sync::watch::channel(false);
    let stopper = stop.0.clone();
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => return,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        let _ = stopper.send(true);
    });
    let stopped = || {
        let mut rx = stop.1.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut client = client;
    loop {
        let queue = Arc::new(ClientQueue::new(client.clone()));
        let runner = Runner::new(cfg.clone(), &ctx.places.root, &ctx.places.home, queue.clone(), client.clone());
        // Until Ctrl-C, or until the connection is gone (the daemon stopped, or a standby took
        // its lease over): then its agents stop, and the worker connects again, to whichever
        // address of KITE_URL answers.
        let lost = {
            let c = client.clone();
            async move { c.closed().await }
        };
        let cut = async {
            tokio::select! {
                _ = stopped() => {}
                _ = lost => {}
            }
        };
        runner.run(cut).await;
        queue.end_all_sessions().await;
        if *stop.1.borrow() {
            return Ok(());
        }
        tracing::warn!("lost the team's daemon; connecting again");
        client = loop {
            tokio::select! {
                _ = stopped() => return Ok(()),
                _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
            }
            match ctx.client().await {
                Ok(c) => break Arc::new(c),
                Err(e) => tracing::debug!("the team's daemon does not answer yet: {e:#}"),
            }
        };
        tracing::info!("connected to the team's daemon again");
    }
}

