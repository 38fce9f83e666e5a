//! `kite-bench --report-only`: `kite report`'s latency with 10,000 finished tasks, as a person
//! runs it (the process, its connection, the task list, each task's cost, the target's history),
//! against `kite task list --all` on the same daemon in the same run (the same records read,
//! without the figures).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

fn kite(root: &Path, args: &[&str]) -> Result<Duration> {
    let exe = std::env::current_exe()?.with_file_name("kite");
    let t = Instant::now();
    let out = Command::new(&exe).args(args).current_dir(root).env_remove("KITE_HOME").output().with_context(|| format!("cannot run {}", exe.display()))?;
    let took = t.elapsed();
    anyhow::ensure!(out.status.success(), "kite {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(took)
}

fn median_of(root: &Path, args: &[&str], runs: usize) -> Result<f64> {
    let mut v = (0..runs).map(|_| kite(root, args).map(|d| d.as_secs_f64() * 1000.0)).collect::<Result<Vec<_>>>()?;
    v.sort_by(f64::total_cmp);
    Ok(v[v.len() / 2])
}

pub(crate) async fn report_bench(dir: &Path, tasks: u64) -> Result<String> {
    let root = dir.join("report");
    std::fs::create_dir_all(&root)?;
    for args in [&["init", "-q", "-b", "main"][..], &["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "--allow-empty", "-m", "initial"]] {
        anyhow::ensure!(Command::new("git").args(args).current_dir(&root).status()?.success(), "git {args:?}");
    }
    let mut child = super::spawn_daemon(&root, &["--no-memory", "--tick", "0"])?;
    let socket = root.join(".kite/kite.sock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        anyhow::ensure!(Instant::now() < deadline, "the daemon did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!("[report] {tasks} tasks through create → start → done");
    let done = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for i in 0..32 {
        let (socket, done) = (socket.clone(), done.clone());
        clients.push(tokio::spawn(async move { super::task_cycles(&socket, i, &done, tasks).await }));
    }
    for c in clients {
        c.await??;
    }
    eprintln!("[report] kite report --json and kite task list --all --json, 5 runs each");
    let report = median_of(&root, &["report", "--json"], 5)?;
    let list = median_of(&root, &["task", "list", "--all", "--json"], 5)?;
    let _ = child.kill();
    let _ = child.wait();
    Ok(format!(
        "## kite report\n\n`target/release/kite-bench --report-only`: {tasks} finished tasks in the daemon (created, started \
         and done by 32 clients), then the whole `kite report --json` process, median of 5 runs, against `kite task list \
         --all --json` (the same tasks read, no figures) on the same daemon in the same run.\n\n\
         | finished tasks | kite report | kite task list --all | ratio |\n|---|---|---|---|\n| {tasks} | {report:.0} ms | {list:.0} ms | {:.2}x |\n",
        report / list
    ))
}
