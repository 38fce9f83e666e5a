//! A long run and a restart: what a daemon that has served hundreds of thousands of tasks looks
//! like (database and WAL size while the load runs), and how fast it comes back after a crash
//! (kill -9) with that database: time until it answers, throughput in its first second against
//! the steady throughput of the same daemon a few seconds later.

use anyhow::Result;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A daemon without its memory component: loading the model takes a core for a second at start
/// and would be measured as the coordinator's restart.
struct Bare {
    child: std::process::Child,
    socket: PathBuf,
}

impl Bare {
    fn spawn(root: &Path) -> Result<Bare> {
        let child = super::spawn_daemon(root, &["--no-memory", "--tick", "0"])?;
        Ok(Bare { child, socket: root.join(".kite/kite.sock") })
    }

    /// Waits until `hello` is answered; returns how long that took from `since`.
    async fn ready(&self, since: Instant) -> Result<Duration> {
        let deadline = since + Duration::from_secs(120);
        loop {
            if let Ok(c) = kite_proto::Client::connect(&self.socket).await {
                if c.call_value("hello", serde_json::json!({})).await.is_ok() {
                    return Ok(since.elapsed());
                }
            }
            anyhow::ensure!(Instant::now() < deadline, "the daemon did not answer within 120 s");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn file_mib(p: &Path) -> f64 {
    std::fs::metadata(p).map(|m| m.len() as f64 / (1024.0 * 1024.0)).unwrap_or(0.0)
}

/// Runs `tasks` tasks through create → start → done with 32 clients, kills the daemon, restarts
/// it on the same home and measures the restart.
pub(crate) async fn longrun_bench(dir: &Path, tasks: u64) -> Result<String> {
    let root = dir.join("proj-longrun");
    let home = root.join(".kite");
    let files = kite_coord::Home::new(&home);
    let (db, wal) = (files.db(), home.join("kite.db-wal"));
    let load = load_then_crash(&root, &db, &wal, tasks).await?;
    let (d, restart) = restart_after_crash(&root).await?;
    let retention = retention_by_hand(&root, d, &files).await?;
    Ok(render(&load, &restart, &retention))
}

/// What the load left: tasks done and in how long, the WAL's peak, and the database's files and
/// rows at the kill.
struct Load {
    n: u64,
    load_secs: f64,
    wal_max: f64,
    db_at_kill: f64,
    wal_at_kill: f64,
    task_rows: i64,
    event_rows: i64,
}

/// Starts a daemon on `root`, runs the load, and after a quiet moment kills it (kill -9).
async fn load_then_crash(root: &Path, db: &Path, wal: &Path, tasks: u64) -> Result<Load> {
    let d = Bare::spawn(root)?;
    d.ready(Instant::now()).await?;
    let (n, load_secs, wal_max) = run_load(&d.socket, wal, tasks).await?;
    // A second of quiet, as between bursts of agent work, then a crash.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (db_at_kill, wal_at_kill) = (file_mib(db), file_mib(wal));
    d.kill();
    let (task_rows, event_rows) = count_rows(db)?;
    Ok(Load { n, load_secs, wal_max, db_at_kill, wal_at_kill, task_rows, event_rows })
}

/// The load, with the WAL's size sampled every 50 ms: tasks done, seconds taken, WAL peak in MiB.
async fn run_load(socket: &Path, wal: &Path, tasks: u64) -> Result<(u64, f64, f64)> {
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (stop, wal) = (stop.clone(), wal.to_path_buf());
        std::thread::spawn(move || {
            let mut max: f64 = 0.0;
            while !stop.load(Ordering::Relaxed) {
                max = max.max(file_mib(&wal));
                std::thread::sleep(Duration::from_millis(50));
            }
            max
        })
    };
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut clients = Vec::new();
    for i in 0..32 {
        let (socket, done) = (socket.to_path_buf(), done.clone());
        clients.push(tokio::spawn(async move { super::task_cycles(&socket, i, &done, tasks).await }));
    }
    while clients.iter().any(|c| !c.is_finished()) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if last_report.elapsed() > Duration::from_secs(5) {
            last_report = Instant::now();
            eprintln!("      {} of {tasks} tasks done, WAL {:.1} MiB", done.load(Ordering::Relaxed), file_mib(wal));
        }
    }
    for c in clients {
        c.await??;
    }
    let load_secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let wal_max = sampler.join().map_err(|_| anyhow::anyhow!("the sampler panicked"))?;
    Ok((done.load(Ordering::Relaxed), load_secs, wal_max))
}

/// Rows in the tasks and in the events table of the database at `db`, opened read-only.
fn count_rows(db: &Path) -> Result<(i64, i64)> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    Ok((c.query_row("SELECT count(*) FROM tasks", [], |r| r.get(0))?, c.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?))
}

/// The restart after the crash: time until `hello` answers; task ops/s in the first second
/// and in the three after it.
struct Restart {
    ready: Duration,
    first: f64,
    steady: f64,
}

/// Starts the daemon again on `root` and measures it; returns it still running.
async fn restart_after_crash(root: &Path) -> Result<(Bare, Restart)> {
    let t0 = Instant::now();
    let d = Bare::spawn(root)?;
    let ready = d.ready(t0).await?;
    let first = super::task_ops(&d.socket, 32, 1.0).await?;
    let steady = super::task_ops(&d.socket, 32, 3.0).await?;
    Ok((d, Restart { ready, first, steady }))
}

/// The retention by hand and a restart after it.
struct Retention {
    archived_events: u64,
    archived_tasks: u64,
    gc_secs: f64,
    /// The bystander's `hello` latencies in ms, sorted.
    lat: Vec<f64>,
    archive_mib: f64,
    ready_after_gc: Duration,
}

/// Retention by hand: everything older than a second goes to the archive (what `kite gc
/// --older-than 1s` does), while a bystander sends `hello` every 2 ms; then `d` is killed and a
/// restart timed.
async fn retention_by_hand(root: &Path, d: Bare, files: &kite_coord::Home) -> Result<Retention> {
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let c = kite_proto::Client::connect(&d.socket).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let bystander = spawn_bystander(d.socket.clone(), stop.clone());
    let t = Instant::now();
    let (mut archived_events, mut archived_tasks) = (0, 0);
    loop {
        let r = c.request::<kite_proto::op::Gc>(kite_proto::ops::Gc { dry_run: false, older_than_secs: Some(1) }).await?;
        archived_events += r.events;
        archived_tasks += r.tasks;
        if !r.more {
            break;
        }
    }
    let gc_secs = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut lat = bystander.await??;
    lat.sort_by(f64::total_cmp);
    let archive_mib = file_mib(&files.archive().join("events.jsonl")) + file_mib(&files.archive().join("tasks.jsonl"));
    d.kill();
    let t0 = Instant::now();
    let d = Bare::spawn(root)?;
    let ready_after_gc = d.ready(t0).await?;
    d.kill();
    Ok(Retention { archived_events, archived_tasks, gc_secs, lat, archive_mib, ready_after_gc })
}

/// A client that sends `hello` every 2 ms until `stop`; its latencies in ms.
fn spawn_bystander(socket: PathBuf, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Result<Vec<f64>>> {
    tokio::spawn(async move {
        let c = kite_proto::Client::connect(&socket).await?;
        let mut lat = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            c.call_value("hello", serde_json::json!({})).await?;
            lat.push(t.elapsed().as_secs_f64() * 1e3);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        anyhow::Ok(lat)
    })
}

/// The Markdown section.
fn render(load: &Load, restart: &Restart, retention: &Retention) -> String {
    let Load { n, load_secs, wal_max, db_at_kill, wal_at_kill, task_rows, event_rows } = *load;
    let Restart { ready, first, steady } = *restart;
    let Retention { archived_events, archived_tasks, gc_secs, ref lat, archive_mib, ready_after_gc } = *retention;
    let mut md = String::from("## A long run, then a restart\n\n");
    md.push_str(&format!(
        "`kite-bench --longrun-only`: 32 clients run {n} tasks through create → start → done ({:.0} ops/s over {load_secs:.0} s; \
         synchronous=normal, the daemon without its memory component), leaving {task_rows} tasks and {event_rows} events in the \
         database. After 1.5 s of quiet the daemon is killed (kill -9) and started again on the same home; the first second \
         of task operations after it answers is compared with the next three seconds of the same daemon.\n\n",
        n as f64 * 3.0 / load_secs
    ));
    md.push_str("| WAL max during the load | database at the kill | WAL at the kill | restart until `hello` answers | task ops/s, first second | task ops/s, steady | first / steady |\n");
    md.push_str("|---|---|---|---|---|---|---|\n");
    md.push_str(&format!(
        "| {wal_max:.1} MiB | {db_at_kill:.0} MiB | {wal_at_kill:.1} MiB | {:.0} ms | {first:.0} | {steady:.0} | {:.2}x |\n",
        ready.as_secs_f64() * 1e3,
        first / steady
    ));
    md.push_str(&format!(
        "\nThen the retention by hand (the `gc` operation in chunks, as `kite gc --older-than 1s` runs it): {archived_events} events \
         and {archived_tasks} finished tasks moved to the archive ({archive_mib:.0} MiB of JSON Lines) in {gc_secs:.1} s; a bystander's \
         `hello` meanwhile: p50 {:.2} ms, p99 {:.1} ms, max {:.1} ms ({} calls). The database file keeps its size (SQLite reuses the \
         freed pages); a restart after it answers in {:.0} ms.\n",
        super::pct(lat, 0.5),
        super::pct(lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN),
        lat.len(),
        ready_after_gc.as_secs_f64() * 1e3
    ));
    md
}
