//! `kite daemon`: runs the coordinator in the foreground until SIGINT or SIGTERM. Logs go to
//! stderr and to `kite.log` in the home (`KITE_LOG` sets the level, default info).

use super::Ctx;
use anyhow::{Context, Result};
use kite_coord::{DaemonConfig, Durability};
use std::time::Duration;
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Reap a session after this many seconds without a heartbeat (default 300, or kite.toml).
    #[arg(long, value_name = "SECS")]
    heartbeat_timeout: Option<f64>,
    /// Seconds between strategy-loop ticks (default 60, or kite.toml [sched] tick). 0 turns the
    /// loop off: then only `kite sched tick` runs a round.
    #[arg(long, value_name = "SECS")]
    tick: Option<f64>,
    /// Agents the runner may start on its own (default 0, or kite.toml [runner] max_agents; 0: only
    /// `kite spawn` starts one).
    #[arg(long, value_name = "N")]
    max_agents: Option<u32>,
    /// Commit durability: normal (survives kill -9) or full (fsync per commit; survives power loss).
    #[arg(long, value_name = "LEVEL")]
    sync: Option<String>,
    /// Start the daemon in the background (logs in HOME/daemon.log) and return once it answers.
    #[arg(long, conflicts_with = "stop")]
    detach: bool,
    /// Stop the running daemon (SIGTERM) and wait until it has exited.
    #[arg(long)]
    stop: bool,
    /// Run without the memory component (no model in the daemon): recalls then run in each
    /// client's own process, each loading the model.
    #[arg(long)]
    no_memory: bool,
    /// With a PostgreSQL store ([store] url): wait while another daemon holds the store's lease,
    /// and take over when it stops or its lease expires.
    #[arg(long)]
    standby: bool,
    /// Started by a hook or `kite mcp`: losing a start race to another daemon is not an error.
    #[arg(long, hide = true)]
    autostarted: bool,
}

impl Args {
    /// The flags a detached daemon is started with (the same as this command's, minus --detach).
    fn forwarded(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(t) = self.heartbeat_timeout {
            out.extend(["--heartbeat-timeout".to_string(), t.to_string()]);
        }
        if let Some(t) = self.tick {
            out.extend(["--tick".to_string(), t.to_string()]);
        }
        if let Some(n) = self.max_agents {
            out.extend(["--max-agents".to_string(), n.to_string()]);
        }
        if let Some(s) = &self.sync {
            out.extend(["--sync".to_string(), s.clone()]);
        }
        if self.no_memory {
            out.push("--no-memory".to_string());
        }
        if self.standby {
            out.push("--standby".to_string());
        }
        out
    }
}

/// `kite daemon --detach`: start in the background, wait until it answers.
fn detach(ctx: &Ctx, args: &Args) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        if let Some((_, h)) = crate::autostart::connect(&ctx.places.socket(), Duration::from_millis(500)).await {
            return crate::output::line(format!("kite daemon already running (pid {}) for {}", h.pid, ctx.places.root.display()));
        }
        let started = std::time::Instant::now();
        let pid = crate::autostart::spawn(&ctx.places, &args.forwarded())?;
        if args.standby {
            // A standby answers only once it holds the store's lease, maybe hours from now: it
            // is started when it runs and waits.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            anyhow::ensure!(crate::autostart::alive(pid), "the standby daemon exited: {}", crate::autostart::log_tail(&ctx.places.home));
            if ctx.json {
                return crate::output::json(&serde_json::json!({"pid": pid, "standby": true, "log": crate::autostart::log_path(&ctx.places.home)}));
            }
            return crate::output::line(format!(
                "kite standby daemon (pid {pid}) waiting for the store's lease; it takes over when the active daemon stops; logs in {}",
                crate::autostart::log_path(&ctx.places.home).display()
            ));
        }
        let (_, h) = crate::autostart::wait_ready(&ctx.places, Some(pid), Duration::from_secs(30)).await?;
        if ctx.json {
            return crate::output::json(&serde_json::json!({"pid": h.pid, "home": h.home, "root": h.root, "log": crate::autostart::log_path(&ctx.places.home), "ready_ms": started.elapsed().as_millis() as u64}));
        }
        crate::output::line(format!(
            "kite daemon running (pid {}) for {}; logs in {}; stop it with `kite daemon --stop`",
            h.pid,
            ctx.places.root.display(),
            crate::autostart::log_path(&ctx.places.home).display()
        ))
    })
}

/// `kite daemon --stop`: SIGTERM to the daemon holding this home, then wait for it to exit.
fn stop(ctx: &Ctx) -> Result<()> {
    let Some(pid) = crate::autostart::running_pid(&ctx.places.home) else {
        return crate::output::line(format!("no kite daemon is running for {}", ctx.places.root.display()));
    };
    let target = rustix::process::Pid::from_raw(pid as i32).context("bad pid in the pidfile")?;
    rustix::process::kill_process(target, rustix::process::Signal::TERM).with_context(|| format!("cannot stop the daemon (pid {pid})"))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while crate::autostart::alive(pid) {
        if std::time::Instant::now() > deadline {
            anyhow::bail!("the daemon (pid {pid}) did not exit within 30 s; see {}", kite_coord::Home::new(&ctx.places.home).log().display());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    crate::output::line(format!("kite daemon (pid {pid}) stopped"))
}

fn init_logs(home: &std::path::Path) -> Result<()> {
    kite_coord::instance::private_dir(home)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(kite_coord::Home::new(home).log())
        .with_context(|| format!("cannot open {}", kite_coord::Home::new(home).log().display()))?;
    let filter = || EnvFilter::try_from_env("KITE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).with_writer(std::io::stderr).with_filter(filter()))
        .with(tracing_subscriber::fmt::layer().with_ansi(false).with_writer(std::sync::Mutex::new(file)).with_filter(filter()))
        .init();
    Ok(())
}

/// The TCP listener `[daemon] listen` asks for, with its TLS identity.
fn listen(ctx: &Ctx) -> Result<Option<kite_coord::remote::Listen>> {
    let d = &ctx.config.daemon;
    let Some(addr) = &d.listen else { return Ok(None) };
    let addr: std::net::SocketAddr = addr.parse().with_context(|| format!("[daemon] listen in {} must be an address and port, like \"0.0.0.0:7777\"", ctx.config.file.display()))?;
    let tls = if d.tls { Some(crate::remote::identity(ctx)?) } else { None };
    Ok(Some(kite_coord::remote::Listen::new(addr, tls)?))
}

pub(crate) fn run(ctx: &Ctx, args: Args) -> Result<()> {
    if args.stop {
        return stop(ctx);
    }
    if args.detach {
        return detach(ctx, &args);
    }
    if args.autostarted {
        if let Some(pid) = crate::autostart::running_pid(&ctx.places.home) {
            // Lost a start race: the other daemon serves this home.
            eprintln!("kite: daemon (pid {pid}) already serves {}; this one exits", ctx.places.home.display());
            return Ok(());
        }
    }
    init_logs(&ctx.places.home)?;
    let sync = args.sync.as_deref().unwrap_or(&ctx.config.store.synchronous);
    let durability =
        Durability::parse(sync).with_context(|| format!("unknown sync level '{sync}' (expected normal or full)"))?;
    let timeout = args.heartbeat_timeout.unwrap_or(ctx.config.daemon.heartbeat_timeout as f64);
    if !(timeout.is_finite() && timeout > 0.0) {
        anyhow::bail!("--heartbeat-timeout must be a positive number of seconds");
    }
    let config = DaemonConfig {
        home: ctx.places.home.clone(),
        root: ctx.places.root.clone(),
        heartbeat_timeout: Duration::from_secs_f64(timeout),
        durability,
        retention: kite_coord::Retention { events: ctx.config.store.keep_events, tasks: ctx.config.store.keep_tasks },
        backend: match &ctx.config.store.url {
            Some(url) => {
                anyhow::ensure!(url.starts_with("postgres://") || url.starts_with("postgresql://"), "[store] url in {} must be a postgres:// URL", ctx.config.file.display());
                kite_coord::Backend::Postgres { url: url.clone(), standby: args.standby }
            }
            None if args.standby => anyhow::bail!("--standby needs a shared store: set [store] url in {}", ctx.config.file.display()),
            None => kite_coord::Backend::Sqlite,
        },
        listen: listen(ctx)?,
    };
    let tick = match args.tick {
        Some(t) if !(t.is_finite() && t >= 0.0) => anyhow::bail!("--tick must be a number of seconds (0: no strategy loop)"),
        t => t.map(Duration::from_secs_f64),
    };
    // One thread for the coordinator: see kite-coord's state module for why. The strategy loop
    // and the runner get a thread of their own and reach the coordinator through its socket.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut components: Vec<Box<dyn kite_daemon::Component>> = Vec::new();
    if !args.no_memory {
        let vault = crate::cmd::vault::config(ctx);
        match kite_daemon::memory::start(ctx.places.home.clone(), vault, ctx.config.hooks.extract_command.clone()) {
            Ok(m) => components.push(Box::new(m)),
            Err(e) => tracing::warn!("memory component off: {e:#}"),
        }
    }
    components.push(Box::new(super::sched::background(ctx, tick, args.max_agents.map(|n| n as usize))));
    components.push(Box::new(kite_daemon::ui::Ui::new(kite_daemon::ui::UiParts {
        cfg: ctx.config.ui.clone(),
        home: ctx.places.home.clone(),
        root: ctx.places.root.clone(),
        socket: ctx.places.socket(),
        merge: ctx.config.merge.clone(),
    })));
    let served = rt.block_on(kite_daemon::run(config, components, async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }));
    match served {
        Err(kite_coord::DaemonError::AlreadyRunning { pid, .. }) if args.autostarted => {
            tracing::info!(%pid, "another daemon won the start race; exiting");
            return Ok(());
        }
        other => other?,
    }
    Ok(())
}

