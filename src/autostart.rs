//! Starting the daemon when something needs it. Hooks and `kite mcp` run inside a person's Claude
//! Code session in any repository; asking that person to run `kite daemon` first is how a tool
//! quietly stops working. So when no daemon answers they start one in the background (detached in
//! its own process group, stdout and stderr to `HOME/daemon.log`) and go on: a hook answers
//! in process this time, `kite mcp` waits for it. Two starters racing start one daemon: the
//! home's pidfile lock admits one, and a daemon started with `--autostarted` that finds another
//! holding the home exits quietly.

use crate::home::Places;
use anyhow::{bail, Context, Result};
use kite_proto::ops::Hello;
use kite_proto::Client;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The detached daemon's stdout and stderr.
pub(crate) fn log_path(home: &Path) -> std::path::PathBuf {
    kite_coord::Home::new(home).daemon_log()
}

/// Starts `kite daemon` for these places in the background and returns its pid at once.
/// `daemon_args` go after `kite daemon` (the flags of `kite daemon --detach`, or `--autostarted`).
pub(crate) fn spawn(places: &Places, daemon_args: &[String]) -> Result<u32> {
    let mut args = vec!["daemon".to_string()];
    args.extend_from_slice(daemon_args);
    let pid = spawn_detached(places, &log_path(&places.home), &args).context("cannot start the kite daemon")?;
    tracing::info!(pid, home = %places.home.display(), "started the daemon in the background");
    Ok(pid)
}

/// Runs `kite vault extract TRANSCRIPT --send` in the background for a session working for a
/// team's daemon on another machine: the transcript is read here, and only the notes go to the
/// daemon (see `kite vault extract --send`). Returns its pid at once; its output goes to the
/// home's `remote-extract.log`.
pub(crate) fn spawn_remote_extract(places: &Places, transcript: &Path, command: Option<&str>) -> Result<u32> {
    let mut args = vec!["vault".to_string(), "extract".to_string(), transcript.display().to_string(), "--send".to_string()];
    if let Some(c) = command {
        args.extend(["--command".to_string(), c.to_string()]);
    }
    spawn_detached(places, &places.home.join("remote-extract.log"), &args).context("cannot start the extraction")
}

/// Starts this kite with `args` for these places, in the background, its output appended to
/// `log_file`, in a process group of its own: a Ctrl-C in the person's terminal, or the hook's
/// process group being killed at its timeout, does not take it along.
fn spawn_detached(places: &Places, log_file: &Path, args: &[String]) -> Result<u32> {
    use std::os::unix::process::CommandExt;
    kite_coord::instance::private_dir(&places.home)?;
    let exe = std::env::current_exe().context("cannot find the kite executable")?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_file)
        .with_context(|| format!("cannot open {}", log_file.display()))?;
    let child = Command::new(exe)
        .arg("--home")
        .arg(&places.home)
        .arg("--root")
        .arg(&places.root)
        .arg("--vault")
        .arg(&places.vault)
        .args(args)
        .current_dir(&places.root)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()?;
    Ok(child.id())
}

/// Connects and says hello within `timeout`; `None` when nothing answers.
pub(crate) async fn connect(socket: &Path, timeout: Duration) -> Option<(Client, Hello)> {
    let attempt = async {
        let c = Client::connect(socket).await.ok()?;
        let h: Hello = c.request::<kite_proto::op::Hello>(kite_proto::NoArgs {}).await.ok()?;
        Some((c, h))
    };
    tokio::time::timeout(timeout, attempt).await.ok().flatten()
}

/// Waits until a daemon answers on the socket, up to `timeout`. `pid` is the process that was
/// started: when it exits before answering (and no other daemon answers), the error carries the
/// tail of its log.
pub(crate) async fn wait_ready(places: &Places, pid: Option<u32>, timeout: Duration) -> Result<(Client, Hello)> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(ok) = connect(&places.socket(), Duration::from_millis(500)).await {
            return Ok(ok);
        }
        if let Some(pid) = pid {
            if !alive(pid) && Instant::now() + Duration::from_millis(200) < deadline {
                // It may have lost a start race to a daemon that is about to answer.
                tokio::time::sleep(Duration::from_millis(200)).await;
                if let Some(ok) = connect(&places.socket(), Duration::from_millis(500)).await {
                    return Ok(ok);
                }
                bail!("the daemon exited before it answered: {}", log_tail(&places.home));
            }
        }
        if Instant::now() >= deadline {
            bail!("the daemon did not answer within {:.0?}: {}", timeout, log_tail(&places.home));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether a process exists (and is not a zombie of ours).
pub(crate) fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the field after the parenthesized command name.
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The last lines of the detached daemon's log, on one line.
pub(crate) fn log_tail(home: &Path) -> String {
    let text = std::fs::read_to_string(log_path(home)).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(3)..].join(" | ");
    if tail.is_empty() {
        format!("see {}", log_path(home).display())
    } else {
        format!("{tail} (from {})", log_path(home).display())
    }
}

/// The pid in the home's pidfile, if a daemon holds it.
pub(crate) fn running_pid(home: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(kite_coord::Home::new(home).pidfile()).ok()?.trim().parse().ok()?;
    alive(pid).then_some(pid)
}
