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
        let child = spawn_daemon(root, &["--sync", sync])?;
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
    let exe = std::env::current_exe()?.with_file_name("kite");
    std::fs::create_dir_all(root.join(".git"))?;
    std::process::Command::new(&exe)
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
    let base = Instant::now();
    let release_sent = Arc::new(AtomicU64::new(0));
    let remaining = Arc::new(AtomicU64::new(handoffs as u64));
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<f64>();
    let mut clients = Vec::new();
    for i in 0..sessions {
        let c = Client::connect(socket).await?;
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

/// kite installed the way `make install` does it, used from an unrelated repository with a clean
/// environment (HOME elsewhere, no KITE_* variable): the set-up a user's hooks run in.
struct Installed {
    kite: PathBuf,
    home: PathBuf,
    root: PathBuf,
}

impl Installed {
    fn new(dir: &Path) -> Result<Installed> {
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR"));
        let prefix = dir.join("prefix");
        let built = std::env::current_exe()?.with_file_name("kite");
        let st = std::process::Command::new("bash")
            .arg(checkout.join("scripts/install.sh"))
            .arg(&prefix)
            .arg(checkout.join("models"))
            .arg(&built)
            .stdout(std::process::Stdio::null())
            .status()?;
        anyhow::ensure!(st.success(), "scripts/install.sh failed");
        let (home, root) = (dir.join("home"), dir.join("proj-hook"));
        std::fs::create_dir_all(&home)?;
        std::fs::create_dir_all(&root)?;
        let st = std::process::Command::new("git").args(["init", "-q"]).current_dir(&root).status()?;
        anyhow::ensure!(st.success(), "git init failed");
        Ok(Installed { kite: prefix.join("bin/kite"), home, root })
    }

    fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(&self.kite);
        c.args(args).current_dir(&self.root).env_clear().env("PATH", "/usr/local/bin:/usr/bin:/bin").env("HOME", &self.home);
        c
    }

    fn kite_home(&self) -> PathBuf {
        self.root.join(".kite")
    }

    /// Starts `kite hook WHICH` with `payload` on its stdin.
    fn spawn_hook_with(&self, which: &str, payload: &str) -> Result<std::process::Child> {
        let mut child = self
            .cmd(&["hook", which])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        std::io::Write::write_all(&mut child.stdin.take().context("stdin")?, payload.as_bytes())?;
        Ok(child)
    }

    /// Starts `kite hook session-start` with a real-shaped payload on its stdin.
    fn spawn_hook(&self) -> Result<std::process::Child> {
        let payload = json!({"session_id": "bench", "transcript_path": self.root.join("t.jsonl"), "cwd": self.root,
            "hook_event_name": "SessionStart", "source": "startup"}).to_string();
        self.spawn_hook_with("session-start", &payload)
    }

    /// The whole hook process, once.
    fn hook(&self) -> Result<f64> {
        let t = Instant::now();
        let o = self.spawn_hook()?.wait_with_output()?;
        anyhow::ensure!(o.status.success(), "the hook failed");
        Ok(t.elapsed().as_secs_f64() * 1e3)
    }

    /// The whole `kite hook user-prompt` process, once, for a new session (so it searches and
    /// prints, not only skips what the session already has).
    fn prompt_hook(&self, session: &str, prompt: &str) -> Result<f64> {
        let payload = json!({"session_id": session, "cwd": self.root, "hook_event_name": "UserPromptSubmit", "prompt": prompt}).to_string();
        let t = Instant::now();
        let o = self.spawn_hook_with("user-prompt", &payload)?.wait_with_output()?;
        anyhow::ensure!(o.status.success() && !o.stdout.is_empty(), "the user-prompt hook failed or injected nothing");
        Ok(t.elapsed().as_secs_f64() * 1e3)
    }

    fn hooks(&self, n: usize) -> Result<Vec<f64>> {
        let mut out = (0..n).map(|_| self.hook()).collect::<Result<Vec<f64>>>()?;
        out.sort_by(f64::total_cmp);
        Ok(out)
    }

    fn stop_daemon(&self) -> Result<()> {
        let st = self.cmd(&["daemon", "--stop"]).stdout(std::process::Stdio::null()).status()?;
        anyhow::ensure!(st.success(), "kite daemon --stop failed");
        Ok(())
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = self.stop_daemon();
    }
}

/// [`memory_ready`] for synchronous callers: one raw frame on the socket.
fn memory_ready_blocking(socket: &Path) -> bool {
    use std::io::{BufRead, Write};
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(socket) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    if s.write_all(b"{\"id\":1,\"op\":\"memory.recall\",\"args\":{\"query\":\"ready\",\"k\":1}}\n").is_err() {
        return false;
    }
    let mut line = String::new();
    std::io::BufReader::new(s).read_line(&mut line).is_ok() && line.contains("\"ok\":true")
}

/// `waiters` sessions that each hold their own file and then queue on one shared path (agents
/// holding their files and waiting on Cargo.lock): the time until all are queued, and a
/// bystander's `hello` latency meanwhile.
async fn waiters_bench(dir: &Path, waiters: usize) -> Result<String> {
    let root = dir.join("proj-waiters");
    let d = Daemon::start(&root, "normal")?;
    let holder = Client::connect(&d.socket).await?;
    let h: SessionId = holder.call("session.register", json!({"name": "holder"})).await?;
    let _: serde_json::Value = holder.call("lock.acquire", json!({"path": "Cargo.lock", "session": h.id})).await?;
    let mut clients = Vec::new();
    for i in 0..waiters {
        let c = Client::connect(&d.socket).await?;
        let s: SessionId = c.call("session.register", json!({"name": format!("w{i}")})).await?;
        let _: serde_json::Value = c.call("lock.acquire", json!({"path": format!("src/f{i}.rs"), "session": s.id})).await?;
        clients.push((Arc::new(c), s.id));
    }
    let stop = Arc::new(AtomicBool::new(false));
    // The bystander runs on a thread and runtime of its own, so the load this process makes
    // (a thousand clients) does not count against its latency.
    let bystander = {
        let (socket, stop) = (d.socket.clone(), stop.clone());
        std::thread::spawn(move || -> Result<Vec<f64>> {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async move {
                let c = Client::connect(&socket).await?;
                let mut lat = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let _: serde_json::Value = c.call("hello", json!({})).await?;
                    lat.push(t.elapsed().as_secs_f64() * 1e6);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Ok(lat)
            })
        })
    };
    let started = Instant::now();
    let mut pending = Vec::new();
    for (c, s) in &clients {
        let (c, s) = (c.clone(), s.clone());
        pending.push(tokio::spawn(async move {
            let _ = c.call::<_, serde_json::Value>("lock.acquire", json!({"path": "Cargo.lock", "session": s, "wait": true})).await;
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let l: serde_json::Value = holder.call("lock.list", json!({})).await?;
        if l["waiting"].as_array().map_or(0, |w| w.len()) >= waiters {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the waiters did not all queue");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let queued_ms = started.elapsed().as_secs_f64() * 1e3;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let mut lat = bystander.join().map_err(|_| anyhow::anyhow!("the bystander panicked"))??;
    lat.sort_by(f64::total_cmp);
    for p in pending {
        p.abort();
    }
    drop(d);
    let mut md = format!("## Lock waiters\n\n{waiters} sessions each hold their own file, then all queue on one shared path held by another (agents waiting on Cargo.lock), through the daemon; a bystander sends `hello` every 2 ms meanwhile.\n\n");
    md.push_str("| waiters | all queued after | bystander hello p50 | p99 | max | bystander calls |\n|---|---|---|---|---|---|\n");
    md.push_str(&format!(
        "| {waiters} | {queued_ms:.0} ms | {:.0} µs | {:.0} µs | {:.0} µs | {} |\n",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN),
        lat.len()
    ));
    Ok(md)
}

/// Daemon memory under a client that sends requests and never reads the replies: 1,500
/// pipelined `task.show` of a task with a 900 KB body (finding 3 of the torture run: 17 MB to
/// 2 GB before the outgoing queue was bounded).
async fn nonreader_bench(dir: &Path) -> Result<String> {
    use std::io::Write;
    let root = dir.join("proj-nonreader");
    let d = Daemon::start(&root, "normal")?;
    let pid = d.child.id();
    let c = Client::connect(&d.socket).await?;
    let created: TaskCreated = c.call("task.create", json!({"title": "big", "body": "b".repeat(900_000)})).await?;
    let base = rss_mib(pid)?;
    let socket = d.socket.clone();
    let id = created.id;
    let writer = std::thread::spawn(move || -> Result<(std::os::unix::net::UnixStream, usize)> {
        let mut s = std::os::unix::net::UnixStream::connect(&socket)?;
        s.set_write_timeout(Some(Duration::from_secs(3)))?;
        let line = format!("{{\"id\": 1, \"op\": \"task.show\", \"args\": {{\"task\": {id}}}}}\n");
        let mut sent = 0;
        for _ in 0..1500 {
            if s.write_all(line.as_bytes()).is_err() {
                break;
            }
            sent += 1;
        }
        Ok((s, sent))
    });
    let mut peak = base;
    while !writer.is_finished() {
        peak = peak.max(rss_mib(pid)?);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (s, sent) = writer.join().map_err(|_| anyhow::anyhow!("the writer panicked"))??;
    peak = peak.max(rss_mib(pid)?);
    let t = Instant::now();
    let _: serde_json::Value = c.call("hello", json!({})).await?;
    let bystander_ms = t.elapsed().as_secs_f64() * 1e3;
    drop(s);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_mib(pid)?;
    drop(d);
    let mut md = String::from("## A client that never reads\n\nOne connection pipelines 1,500 `task.show` requests for a task with a 900 KB body and reads nothing (the daemon with its memory component, model loaded).\n\n");
    md.push_str("| daemon RSS before | peak | after the client left | requests the daemon read | a bystander's hello meanwhile |\n|---|---|---|---|---|\n");
    md.push_str(&format!("| {base:.0} MiB | {peak:.0} MiB | {after:.0} MiB | {sent} of 1500 (then backpressure) | {bystander_ms:.1} ms |\n"));
    Ok(md)
}

/// Resident memory of a process, in MiB (VmRSS).
fn rss_mib(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")?;
    Ok(kb / 1024.0)
}

/// One `kite mcp` process driven over stdio the way Claude Code does: initialize, then one
/// `kite_vault_search` call. Returns the child (kept alive) once the search answered.
fn mcp_session(inst: &Installed, n: usize) -> Result<std::process::Child> {
    use std::io::{BufRead, Write};
    let mut child = inst
        .cmd(&["mcp", "--name", &format!("bench-{n}")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let mut stdout = std::io::BufReader::new(child.stdout.take().context("stdout")?);
    let mut send = |v: serde_json::Value| writeln!(stdin, "{v}");
    send(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "kite-bench", "version": "1"}}}))?;
    let mut line = String::new();
    stdout.read_line(&mut line)?;
    anyhow::ensure!(line.contains("\"result\""), "MCP initialize failed: {line}");
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
    send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "kite_vault_search", "arguments": {"query": "how is the task queue kept durable", "k": 3}}}))?;
    loop {
        line.clear();
        anyhow::ensure!(stdout.read_line(&mut line)? > 0, "kite mcp exited");
        if line.contains("\"id\":2") {
            anyhow::ensure!(!line.contains("\"isError\":true"), "vault search failed: {line}");
            break;
        }
    }
    // Keep the pipes open (the server lives as long as its stdin does).
    std::mem::forget(stdin);
    std::mem::forget(stdout);
    Ok(child)
}

/// RSS of `n` MCP sessions that have each run a vault search: the daemon holding the one model,
/// against every session loading its own (`kite daemon --no-memory`, as before memory moved
/// into the daemon).
async fn mcp_bench(dir: &Path, n: usize) -> Result<String> {
    let inst = Installed::new(dir)?;
    let add = inst.cmd(&["vault", "add", "--title", "Queue durability", "--kind", "decision", "--body", "Replies are sent only after the SQLite commit."]).output()?;
    anyhow::ensure!(add.status.success(), "vault add failed");
    let mut rows = Vec::new();
    for (label, flags) in [("daemon holds the model (memory.recall on kite.sock)", vec![]), ("each session loads the model (`kite daemon --no-memory`)", vec!["--no-memory"])] {
        eprintln!("      {n} MCP sessions: {label}");
        let mut args = vec!["daemon", "--detach"];
        args.extend(flags.iter());
        let st = inst.cmd(&args).stdout(std::process::Stdio::null()).status()?;
        anyhow::ensure!(st.success(), "kite daemon --detach failed");
        if flags.is_empty() {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !memory_ready(&kite_coord::Home::new(inst.kite_home()).socket()).await {
                anyhow::ensure!(Instant::now() < deadline, "the memory component did not start");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let mut children = Vec::new();
        for i in 0..n {
            children.push(mcp_session(&inst, i)?);
        }
        let mut rss: Vec<f64> = children.iter().map(|c| rss_mib(c.id())).collect::<Result<_>>()?;
        rss.sort_by(f64::total_cmp);
        let daemon_pid: u32 = std::fs::read_to_string(kite_coord::Home::new(inst.kite_home()).pidfile())?.trim().parse()?;
        let daemon = rss_mib(daemon_pid)?;
        let total: f64 = rss.iter().sum::<f64>() + daemon;
        rows.push(format!("| {label} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.0} MiB |", pct(&rss, 0.5), rss[rss.len() - 1], daemon, total));
        for mut c in children {
            let _ = c.kill();
            let _ = c.wait();
        }
        inst.stop_daemon()?;
    }
    let mut md = format!("## Memory of {n} agent sessions\n\n{n} `kite mcp` processes (the installed set-up), each after one `kite_vault_search` call, with the daemon running.\n\n");
    md.push_str("| recall | RSS per session, median | max | daemon | all together |\n|---|---|---|---|---|\n");
    for r in rows {
        md.push_str(&r);
        md.push('\n');
    }
    Ok(md)
}

/// Whether the daemon's memory component answers a recall (its model loaded).
async fn memory_ready(socket: &Path) -> bool {
    let Ok(c) = Client::connect(socket).await else { return false };
    c.call::<_, serde_json::Value>("memory.recall", json!({"query": "ready", "k": 1})).await.is_ok()
}

/// SessionStart hook latency over a vault of `notes` notes, in the installed set-up: daemon warm,
/// the time from a hook finding no daemon to the daemon it started answering, and no daemon.
async fn hook_bench(dir: &Path, notes: usize) -> Result<String> {
    let inst = Installed::new(dir)?;
    let home = inst.kite_home();
    std::fs::create_dir_all(&home)?;
    let mut config = kite_memory::VaultConfig::new(inst.root.join("vault"), kite_coord::Home::new(&home).vault_index());
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    config.model_dir = Some(models.join("all-minilm-l6-v2"));
    config.ort_dylib = Some(models.join("libonnxruntime.so"));
    config.duplicate_threshold = 2.0; // every note stays: this measures size, not merging
    let mut vault = kite_memory::Vault::open(config)?;
    let topics = ["upload worker", "task queue", "lock manager", "session reaper", "vault index", "strategy loop",
        "MCP server", "hook budget", "sqlite WAL", "git worktrees"];
    let verbs = ["retries with backoff", "must stay idempotent", "logs every attempt", "was rewritten in March",
        "is owned by the platform team", "has a flaky test", "needs a benchmark", "keeps its state in SQLite"];
    let start = Instant::now();
    for i in 0..notes {
        let t = topics[i % topics.len()];
        let v = verbs[(i / topics.len()) % verbs.len()];
        vault.add(kite_memory::NewNote {
            kind: kite_memory::Kind::parse("fact"),
            title: format!("{t} note {i}"),
            tags: vec![],
            project: None,
            source: None,
            body: format!("The {t} {v}; observation number {i} from session {}.", i % 97),
        })?;
        if i % 1000 == 999 {
            eprintln!("      {} notes added ({:.0} s)", i + 1, start.elapsed().as_secs_f64());
        }
    }
    drop(vault);

    // Auto-start: the hook finds no daemon and starts one; time until the daemon answers hello,
    // and until its memory component (the model warm) serves recalls.
    let mut answered = Vec::new();
    let mut warm_after = Vec::new();
    let mut hook_ms = Vec::new();
    for round in 0..5 {
        eprintln!("      auto-start round {}", round + 1);
        let t = Instant::now();
        let mut hook = Some(inst.spawn_hook()?);
        let deadline = t + Duration::from_secs(60);
        loop {
            if let Ok(c) = Client::connect(&kite_coord::Home::new(&home).socket()).await {
                if c.call::<_, serde_json::Value>("hello", json!({})).await.is_ok() {
                    break;
                }
            }
            anyhow::ensure!(Instant::now() < deadline, "the auto-started daemon did not answer");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        answered.push(t.elapsed().as_secs_f64() * 1e3);
        loop {
            if let Some(h) = hook.as_mut() {
                if h.try_wait()?.is_some() {
                    hook_ms.push(t.elapsed().as_secs_f64() * 1e3);
                    hook = None;
                }
            }
            if memory_ready(&kite_coord::Home::new(&home).socket()).await {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "the memory component did not start");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        warm_after.push(t.elapsed().as_secs_f64() * 1e3);
        if let Some(h) = hook {
            anyhow::ensure!(h.wait_with_output()?.status.success(), "the hook failed");
            hook_ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        if round < 4 {
            inst.stop_daemon()?;
        }
    }
    inst.hooks(3)?;
    let warm = inst.hooks(30)?;
    let mut prompts = (0..30)
        .map(|i| inst.prompt_hook(&format!("bench-prompt-{i}"), &format!("why does the {} keep its state in SQLite?", topics[i % topics.len()])))
        .collect::<Result<Vec<f64>>>()?;
    prompts.sort_by(f64::total_cmp);
    inst.stop_daemon()?;
    std::fs::write(kite_coord::Home::new(&home).config(), "[daemon]\nautostart = false\n")?;
    let cold = inst.hooks(15)?;
    for v in [&mut answered, &mut warm_after, &mut hook_ms] {
        v.sort_by(f64::total_cmp);
    }
    let mut md = format!(
        "## SessionStart hook\n\nWhole `kite hook session-start` process, real-shaped payload, {notes} notes in the vault, in the installed \
         set-up: kite installed into a prefix by `scripts/install.sh` (what `make install` runs), an unrelated git repository, HOME \
         elsewhere, no KITE_* variable.\n\n"
    );
    md.push_str("| daemon | p50 | p99 | runs |\n|---|---|---|---|\n");
    let rows: [(&str, &[f64], f64); 4] = [
        ("running (model warm)", &warm, 0.99),
        ("running, `kite hook user-prompt` (a matching prompt, a new session each run)", &prompts, 0.99),
        ("none, autostart off (in-process search, model loaded per call)", &cold, 0.99),
        ("none, autostart on (the hook starts the daemon, answers in process)", &hook_ms, 1.0),
    ];
    for (what, runs, top) in rows {
        md.push_str(&format!("| {what} | {:.1} ms | {:.1} ms | {} |\n", pct(runs, 0.5), pct(runs, top), runs.len()));
    }
    md.push_str(&format!(
        "\nAuto-start, from the hook starting with no daemon ({} rounds, median [min–max]): the daemon answers `hello` after \
         {:.0} ms [{:.0}–{:.0}]; its memory component serves recalls (model loaded) after {:.0} ms [{:.0}–{:.0}].\n",
        answered.len(),
        pct(&answered, 0.5),
        answered[0],
        answered[answered.len() - 1],
        pct(&warm_after, 0.5),
        warm_after[0],
        warm_after[warm_after.len() - 1],
    ));
    Ok(md)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--echo-server") {
        return echo_server(Path::new(args.get(2).context("--echo-server SOCKET")?)).await;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    // One section on its own: `--nonreader-only`, `--waiters-only`, `--longrun-only`,
    // `--mcp-only`, `--hook-only`.
    if let Some(only) = args.iter().find_map(|a| a.strip_prefix("--").and_then(|a| a.strip_suffix("-only"))) {
        let dir = tempfile::tempdir()?;
        let section = match only {
            "nonreader" => nonreader_bench(dir.path()).await?,
            "waiters" => waiters_bench(dir.path(), 1000).await?,
            "longrun" => longrun::longrun_bench(dir.path(), if quick { 30_000 } else { 334_000 }).await?,
            "mcp" => mcp_bench(dir.path(), 10).await?,
            "hook" => hook_bench(dir.path(), if quick { 1_000 } else { 10_000 }).await?,
            other => anyhow::bail!("no benchmark section {other:?}: use --nonreader-only, --waiters-only, --longrun-only, --mcp-only or --hook-only"),
        };
        println!("{section}");
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
        eprintln!("[3/5] lock waiters on one shared path");
        println!("{}", waiters_bench(&dir.path().join("waiters"), 1000).await?);
        eprintln!("      a client that never reads");
        println!("{}", nonreader_bench(&dir.path().join("nonreader")).await?);
        eprintln!("      a long run, then a restart");
        println!("{}", longrun::longrun_bench(&dir.path().join("longrun"), if quick { 30_000 } else { 334_000 }).await?);
        eprintln!("[4/5] SessionStart hook latency");
        println!("{}", hook_bench(&dir.path().join("hook"), if quick { 1_000 } else { 10_000 }).await?);
        eprintln!("[5/5] memory of agent sessions");
        println!("{}", mcp_bench(&dir.path().join("mcp"), 10).await?);
    }
    Ok(())
}
