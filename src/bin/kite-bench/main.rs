//! `kite-bench`: measures the coordinator on this machine and prints a Markdown section for
//! docs/BENCHMARKS.md. Every figure is reported beside a baseline measured in the same run:
//! lock hand-off latency against a bare Unix-socket round trip, durable task operations against
//! plain SQLite insert-and-commit at the same synchronous level.
//!
//! It starts the real `kite` daemon binary (next to this one) on a temporary home.

use anyhow::{Context, Result};
use kite_proto::ops::{Claim, SessionId, TaskCreate, TaskCreated, TaskFinish, TaskStart};
use kite_proto::Client;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

mod longrun;
mod report;
mod sessions;
mod team;
mod versus;

use sessions::{hook_bench, mcp_bench, memory_ready_blocking, nonreader_bench, waiters_bench};

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

struct Daemon {
    child: std::process::Child,
    socket: PathBuf,
}

impl Daemon {
    fn start(root: &Path, sync: &str) -> Result<Daemon> {
        Daemon::start_with(&std::env::current_exe()?.with_file_name("kite"), root, sync)
    }

    /// The daemon of the `kite` binary at `exe` (another build, for a comparison in one session).
    fn start_with(exe: &Path, root: &Path, sync: &str) -> Result<Daemon> {
        let child = spawn_daemon_of(exe, root, &["--sync", sync])?;
        let socket = root.join(".kite/kite.sock");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "daemon did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
        // Measure the steady state: the memory component loads the embedding model on another
        // thread at start (about a second of CPU on a 2-core machine); wait until it serves.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !memory_ready_blocking(&socket) {
            if Instant::now() > deadline {
                eprintln!("      (the memory component did not start; measuring without it)");
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Daemon { child, socket })
    }
}

/// `kite daemon ARGS` (the binary beside this one) on a project at `root`, logging warnings only.
fn spawn_daemon(root: &Path, args: &[&str]) -> Result<std::process::Child> {
    spawn_daemon_of(&std::env::current_exe()?.with_file_name("kite"), root, args)
}

fn spawn_daemon_of(exe: &Path, root: &Path, args: &[&str]) -> Result<std::process::Child> {
    std::fs::create_dir_all(root.join(".git"))?;
    std::process::Command::new(exe)
        .arg("daemon")
        .args(args)
        .current_dir(root)
        .env("KITE_LOG", "warn")
        .env_remove("KITE_HOME")
        .stdout(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The echo server for the baseline: a separate process, like the daemon, answering each line
/// with a reply line. Run as `kite-bench --echo-server SOCKET`.
async fn echo_server(path: &Path) -> Result<()> {
    let listener = tokio::net::UnixListener::bind(path)?;
    println!("ready");
    let (s, _) = listener.accept().await?;
    let (r, mut w) = s.into_split();
    let mut lines = BufReader::new(r).lines();
    while let Some(l) = lines.next_line().await? {
        let reply = format!("{{\"id\":1,\"ok\":true,\"result\":{l}}}\n");
        w.write_all(reply.as_bytes()).await?;
    }
    Ok(())
}

/// The baseline's other end: an echo server in another process, like the daemon, kept for the
/// whole run so each round measures the same thing.
struct Echo {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    w: tokio::net::unix::OwnedWriteHalf,
}

impl Echo {
    async fn start(dir: &Path) -> Result<Echo> {
        let path = dir.join("echo.sock");
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .arg("--echo-server")
            .arg(&path)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let mut ready = BufReader::new(child.stdout.take().context("echo server stdout")?).lines();
        ready.next_line().await?;
        let (r, w) = tokio::net::UnixStream::connect(&path).await?.into_split();
        Ok(Echo { child, lines: BufReader::new(r).lines(), w })
    }

    /// `n` round trips of one small NDJSON line (after a warm-up): the floor any request to the
    /// daemon pays. Sorted, in µs.
    async fn round(&mut self, n: usize) -> Result<Vec<f64>> {
        let mut out = Vec::with_capacity(n);
        for i in 0..n + 200 {
            let t = Instant::now();
            self.w.write_all(b"{\"id\":1,\"op\":\"lock.release\",\"args\":{\"path\":\"hot\",\"session\":\"s1\"}}\n").await?;
            self.lines.next_line().await?;
            if i >= 200 {
                out.push(t.elapsed().as_secs_f64() * 1e6);
            }
        }
        out.sort_by(f64::total_cmp);
        Ok(out)
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// 64 sessions contend for one path; each grant is measured from the moment the previous holder
/// sent its release to the moment the waiter's client received the grant.
async fn lock_handoff(socket: &Path, path: &str, sessions: usize, handoffs: usize) -> Result<Vec<f64>> {
    lock_handoff_at(&kite_proto::Endpoint::Unix(socket.to_path_buf()), path, sessions, handoffs).await
}

/// [`lock_handoff`] with the clients wherever `at` says (the local socket, or TLS).
async fn lock_handoff_at(at: &kite_proto::Endpoint, path: &str, sessions: usize, handoffs: usize) -> Result<Vec<f64>> {
    let base = Instant::now();
    let release_sent = Arc::new(AtomicU64::new(0));
    let remaining = Arc::new(AtomicU64::new(handoffs as u64));
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<f64>();
    let mut clients = Vec::new();
    for i in 0..sessions {
        let c = Client::connect_to(at).await?;
        let s: SessionId = c.call("session.register", json!({"name": format!("bench{i}")})).await?;
        clients.push((Arc::new(c), s.id));
    }
    // The first holder takes the lock before anyone queues.
    let (c0, s0) = clients[0].clone();
    let _: serde_json::Value = c0.call("lock.acquire", json!({"path": path, "session": s0})).await?;
    let mut tasks = Vec::new();
    for (c, s) in clients.into_iter().skip(1) {
        let (release_sent, remaining, stop, tx) = (release_sent.clone(), remaining.clone(), stop.clone(), tx.clone());
        let path = path.to_string();
        tasks.push(tokio::spawn(async move {
            loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let r: Result<serde_json::Value, _> =
                    c.call("lock.acquire", json!({"path": path, "session": s, "wait": true})).await;
                if r.is_err() {
                    break;
                }
                let got = base.elapsed().as_nanos() as u64;
                let sent = release_sent.load(Ordering::Acquire);
                let _ = tx.send((got.saturating_sub(sent)) as f64 / 1e3);
                if remaining.fetch_sub(1, Ordering::AcqRel) <= 1 {
                    stop.store(true, Ordering::Relaxed);
                }
                release_sent.store(base.elapsed().as_nanos() as u64, Ordering::Release);
                let _: Result<serde_json::Value, _> = c.call("lock.release", json!({"path": path, "session": s})).await;
            }
        }));
    }
    // Let every waiter queue, then start the chain.
    tokio::time::sleep(Duration::from_millis(300)).await;
    release_sent.store(base.elapsed().as_nanos() as u64, Ordering::Release);
    let _: serde_json::Value = c0.call("lock.release", json!({"path": path, "session": s0})).await?;
    drop(tx);
    let mut out = Vec::new();
    while out.len() < handoffs {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Some(v)) => out.push(v),
            _ => break,
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.abort();
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}

/// 32 clients each loop create → start → done for `secs`; returns operations per second.
async fn task_ops(socket: &Path, clients: usize, secs: f64) -> Result<f64> {
    let ops = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for i in 0..clients {
        let c = Client::connect(socket).await?;
        let s: SessionId = c.call("session.register", json!({"name": format!("ops{i}")})).await?;
        let ops = ops.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let t: TaskCreated = c.call("task.create", TaskCreate { title: format!("bench {i}"), ..Default::default() }).await?;
                let _: Claim = c.call("task.start", TaskStart { task: t.id, session: s.id.clone() }).await?;
                let _: serde_json::Value = c
                    .call("task.done", TaskFinish { task: t.id, session: s.id.clone(), claim: None, text: None, transient: false, uncounted: false })
                    .await?;
                ops.fetch_add(3, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    let start = Instant::now();
    for t in tasks {
        t.await??;
    }
    Ok(ops.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

/// One client's share of a fixed amount of work: create → start → done until `done` reaches
/// `total` tasks.
async fn task_cycles(socket: &Path, i: usize, done: &AtomicU64, total: u64) -> Result<()> {
    let c = Client::connect(socket).await?;
    let s: SessionId = c.call("session.register", json!({"name": format!("long{i}")})).await?;
    while done.fetch_add(1, Ordering::Relaxed) < total {
        let t: TaskCreated = c.call("task.create", TaskCreate { title: format!("long {i}"), ..Default::default() }).await?;
        let _: Claim = c.call("task.start", TaskStart { task: t.id, session: s.id.clone() }).await?;
        let _: serde_json::Value = c
            .call("task.done", TaskFinish { task: t.id, session: s.id.clone(), claim: None, text: None, transient: false, uncounted: false })
            .await?;
    }
    done.fetch_sub(1, Ordering::Relaxed);
    Ok(())
}

/// One round of every measurement, for one durability level.
struct Round {
    bare: Vec<f64>,
    handoff: Vec<f64>,
    ops: f64,
    base: f64,
    cpu: CpuUse,
}

struct SyncResult {
    sync: &'static str,
    rounds: Vec<Round>,
}

/// The median of a few rounds, with the lowest and highest.
struct Spread {
    median: f64,
    low: f64,
    high: f64,
}

impl Spread {
    fn of(mut v: Vec<f64>) -> Spread {
        v.sort_by(f64::total_cmp);
        Spread { median: pct(&v, 0.5), low: v.first().copied().unwrap_or(f64::NAN), high: v.last().copied().unwrap_or(f64::NAN) }
    }

    fn show(&self, decimals: usize) -> String {
        format!("{:.d$} ({:.d$}–{:.d$})", self.median, self.low, self.high, d = decimals)
    }
}

/// [`task_ops`] with the CPU it cost: the daemon's, its main thread's, this process's, and how
/// idle the machine was.
async fn task_ops_measured(d: &Daemon, clients: usize, secs: f64) -> Result<(f64, CpuUse)> {
    let pid = d.child.id();
    let (daemon, main) = (format!("/proc/{pid}/stat"), format!("/proc/{pid}/task/{pid}/stat"));
    let (cpu0, main0, me0, idle0, t0) = (cpu_secs(&daemon), cpu_secs(&main), cpu_secs("/proc/self/stat"), idle_secs(), Instant::now());
    let ops = task_ops(&d.socket, clients, secs).await?;
    let wall = t0.elapsed().as_secs_f64();
    let per_op = |secs: f64| secs * 1e6 / (ops * wall);
    let cores = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
    let cpu = CpuUse {
        daemon_us: per_op(cpu_secs(&daemon) - cpu0),
        main_busy: (cpu_secs(&main) - main0) * 100.0 / wall,
        clients_us: per_op(cpu_secs("/proc/self/stat") - me0),
        idle: (idle_secs() - idle0) * 100.0 / (wall * cores),
    };
    Ok((ops, cpu))
}

/// CPU spent during the task-ops run.
struct CpuUse {
    /// All daemon threads, per task operation.
    daemon_us: f64,
    /// The state owner's thread: near 100% means the daemon is CPU-bound.
    main_busy: f64,
    /// This process (the 32 clients), per task operation.
    clients_us: f64,
    /// Both cores idle or waiting for I/O.
    idle: f64,
}

/// Seconds all CPUs have been idle (or waiting for I/O) since boot, from /proc/stat.
fn idle_secs() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/stat") else { return f64::NAN };
    let f: Vec<f64> = s.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    (f.get(3).unwrap_or(&f64::NAN) + f.get(4).unwrap_or(&f64::NAN)) / 100.0
}

/// User plus system CPU seconds from a /proc `stat` file (NaN where there is none).
fn cpu_secs(path: &str) -> f64 {
    let Ok(s) = std::fs::read_to_string(path) else { return f64::NAN };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12th and 13th after the name; in clock
    // ticks, 100 per second on Linux.
    match (f.get(11).and_then(|x| x.parse::<f64>().ok()), f.get(12).and_then(|x| x.parse::<f64>().ok())) {
        (Some(u), Some(st)) => (u + st) / 100.0,
        _ => f64::NAN,
    }
}

/// Plain SQLite: one row inserted and committed per transaction, WAL, at `sync`.
fn sqlite_baseline(path: &Path, sync: &str, secs: f64) -> Result<f64> {
    let conn = rusqlite::Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", sync)?;
    conn.execute_batch("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, title TEXT NOT NULL, status TEXT NOT NULL)")?;
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut n = 0u64;
    while Instant::now() < deadline {
        let tx = conn.unchecked_transaction()?;
        tx.prepare_cached("INSERT INTO t (title, status) VALUES (?1, 'pending')")?.execute(["bench"])?;
        tx.commit()?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--tls-echo-server") {
        return team::tls_echo_server(Path::new(args.get(2).context("--tls-echo-server CERT KEY")?), Path::new(args.get(3).context("--tls-echo-server CERT KEY")?)).await;
    }
    if args.get(1).map(String::as_str) == Some("--echo-server") {
        return echo_server(Path::new(args.get(2).context("--echo-server SOCKET")?)).await;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    // One section on its own: `--NAME-only` (see `one_section`).
    if let Some(only) = args.iter().find_map(|a| a.strip_prefix("--").and_then(|a| a.strip_suffix("-only"))) {
        println!("{}", one_section(&args, only, quick).await?);
        return Ok(());
    }
    // Rounds interleave the baseline with the measurement, so a noisy moment on a shared VM
    // (steal time comes in bursts of tens of milliseconds) hits one round, not one side of a ratio;
    // the headline is the median round, and the spread is shown.
    let rounds = if quick { 2 } else { 5 };
    let (bare_n, handoffs, secs) = if quick { (2_000, 500, 1.0) } else { (4_000, 1_000, 2.0) };
    let sessions: usize = std::env::var("KITE_BENCH_SESSIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(64);
    let dir = tempfile::tempdir()?;
    let mut echo = Echo::start(dir.path()).await?;

    let mut results = Vec::new();
    for (i, sync) in ["normal", "full"].into_iter().enumerate() {
        let root = dir.path().join(format!("proj-{sync}"));
        std::fs::create_dir_all(&root)?;
        let d = Daemon::start(&root, sync)?;
        let mut r = SyncResult { sync, rounds: Vec::new() };
        for round in 0..rounds {
            eprintln!("[{}/5] synchronous={sync}, round {}/{rounds}: bare round trip, lock hand-off, task ops, plain SQLite", i + 1, round + 1);
            let bare = echo.round(bare_n).await?;
            let handoff = lock_handoff(&d.socket, &format!("hot{round}"), sessions, handoffs).await?;
            let (ops, cpu) = task_ops_measured(&d, 32, secs).await?;
            let base = sqlite_baseline(&dir.path().join(format!("plain-{sync}.db")), sync, secs)?;
            eprintln!(
                "      bare p99 {:.0} µs, hand-off p99 {:.0} µs ({:.2}x); {ops:.0} ops/s vs {base:.0} commits/s ({:.2}x); \
                 daemon CPU {:.1} µs/op, main thread {:.0}% busy, machine idle {:.0}%",
                pct(&bare, 0.99),
                pct(&handoff, 0.99),
                pct(&handoff, 0.99) / pct(&bare, 0.99),
                ops / base,
                cpu.daemon_us,
                cpu.main_busy,
                cpu.idle
            );
            r.rounds.push(Round { bare, handoff, ops, base, cpu });
        }
        results.push(r);
    }
    echo.stop().await;

    let mut md = String::new();
    md.push_str("## Coordinator\n\n");
    md.push_str(&format!(
        "{rounds} rounds per durability level; each round measures, one after the other, the bare Unix-socket \
         round trip (the baseline: one small NDJSON line to an echo server in another process, {bare_n} round \
         trips), the lock hand-off ({handoffs} hand-offs, 64 sessions contending for one path; latency from the \
         holder sending `lock.release` to the waiter's client receiving the pushed grant), durable task \
         operations (32 clients each looping create → start → done for {secs} s; every reply is sent only after \
         its commit, and with full only after the WAL's fdatasync), and plain SQLite (one row inserted and \
         committed per transaction, WAL, the same synchronous level, one writer, {secs} s). Ratios are taken \
         within a round. Each figure is the median over the rounds, with the lowest and highest in brackets \
         (figures of one row may come from different rounds).\n\n"
    ));
    md.push_str("| synchronous | bare p50 / p99 | hand-off p50 | hand-off p99 | hand-off p99 / bare p99 | task ops/s | plain SQLite commits/s | task ops / plain SQLite |\n");
    md.push_str("|---|---|---|---|---|---|---|---|\n");
    for r in &results {
        let m = |f: &dyn Fn(&Round) -> f64| Spread::of(r.rounds.iter().map(f).collect());
        md.push_str(&format!(
            "| {} | {:.0} / {:.0} µs | {:.0} µs | {} µs | {}x | {} | {:.0} | {}x |\n",
            r.sync,
            m(&|x| pct(&x.bare, 0.5)).median,
            m(&|x| pct(&x.bare, 0.99)).median,
            m(&|x| pct(&x.handoff, 0.5)).median,
            m(&|x| pct(&x.handoff, 0.99)).show(0),
            m(&|x| pct(&x.handoff, 0.99) / pct(&x.bare, 0.99)).show(2),
            m(&|x| x.ops).show(0),
            m(&|x| x.base).median,
            m(&|x| x.ops / x.base).show(2),
        ));
    }
    md.push_str("\nWhere the time goes (medians over the rounds):\n\n");
    md.push_str("| synchronous | hand-off p90 | hand-off p99.9 | daemon CPU per task op | daemon main thread busy | clients' CPU per task op | machine idle |\n");
    md.push_str("|---|---|---|---|---|---|---|\n");
    for r in &results {
        let m = |f: &dyn Fn(&Round) -> f64| Spread::of(r.rounds.iter().map(f).collect()).median;
        md.push_str(&format!(
            "| {} | {:.0} µs | {:.0} µs | {:.1} µs | {:.0}% | {:.1} µs | {:.0}% |\n",
            r.sync,
            m(&|x| pct(&x.handoff, 0.9)),
            m(&|x| pct(&x.handoff, 0.999)),
            m(&|x| x.cpu.daemon_us),
            m(&|x| x.cpu.main_busy),
            m(&|x| x.cpu.clients_us),
            m(&|x| x.cpu.idle),
        ));
    }
    println!("{md}");
    if !args.iter().any(|a| a == "--no-hook") {
        the_other_sections(dir.path(), quick).await?;
    }
    Ok(())
}

/// `--NAME-only`: one section on its own.
async fn one_section(args: &[String], only: &str, quick: bool) -> Result<String> {
    let dir = tempfile::tempdir()?;
    Ok(match only {
        "nonreader" => nonreader_bench(dir.path()).await?,
        "waiters" => waiters_bench(dir.path(), 1000).await?,
        "longrun" => longrun::longrun_bench(dir.path(), if quick { 30_000 } else { 334_000 }).await?,
        "mcp" => mcp_bench(dir.path(), 10).await?,
        "hook" => hook_bench(dir.path(), if quick { 1_000 } else { 10_000 }).await?,
        "report" => report::report_bench(dir.path(), if quick { 1_000 } else { 10_000 }).await?,
        "team" => team::team_bench(dir.path(), quick).await?,
        "versus" => {
            let other = args.iter().skip_while(|a| *a != "--versus-only").nth(1).context("--versus-only OTHER_KITE")?;
            versus::versus_bench(dir.path(), Path::new(other), if quick { 2 } else { 5 }).await?
        }
        other => anyhow::bail!(
            "no benchmark section {other:?}: use --nonreader-only, --waiters-only, --longrun-only, --mcp-only, --hook-only, --report-only, --team-only or --versus-only OTHER_KITE"
        ),
    })
}

/// Every section after the coordinator's, in `make bench`'s order.
async fn the_other_sections(dir: &Path, quick: bool) -> Result<()> {
    eprintln!("[3/5] lock waiters on one shared path");
    println!("{}", waiters_bench(&dir.join("waiters"), 1000).await?);
    eprintln!("      a client that never reads");
    println!("{}", nonreader_bench(&dir.join("nonreader")).await?);
    eprintln!("      a long run, then a restart");
    println!("{}", longrun::longrun_bench(&dir.join("longrun"), if quick { 30_000 } else { 334_000 }).await?);
    eprintln!("      kite report with many finished tasks");
    println!("{}", report::report_bench(&dir.join("report"), if quick { 1_000 } else { 10_000 }).await?);
    eprintln!("      a team's store on PostgreSQL");
    println!("{}", team::team_bench(&dir.join("team"), quick).await?);
    eprintln!("[4/5] SessionStart hook latency");
    println!("{}", hook_bench(&dir.join("hook"), if quick { 1_000 } else { 10_000 }).await?);
    eprintln!("[5/5] memory of agent sessions");
    println!("{}", mcp_bench(&dir.join("mcp"), 10).await?);
    Ok(())
}
