//! The benchmarks of kite as sessions meet it: installed as `make install` does (hooks and `kite
//! mcp` from an unrelated repository with a clean environment), a thousand lock waiters beside a
//! bystander, and a client that sends and never reads.

use super::*;

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
        let st = std::process::Command::new("git")
            .args(["init", "-q"])
            .current_dir(&root)
            .status()?;
        anyhow::ensure!(st.success(), "git init failed");
        Ok(Installed {
            kite: prefix.join("bin/kite"),
            home,
            root,
        })
    }

    fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(&self.kite);
        c.args(args)
            .current_dir(&self.root)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &self.home);
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
        std::io::Write::write_all(
            &mut child.stdin.take().context("stdin")?,
            payload.as_bytes(),
        )?;
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
        let o = self
            .spawn_hook_with("user-prompt", &payload)?
            .wait_with_output()?;
        anyhow::ensure!(
            o.status.success() && !o.stdout.is_empty(),
            "the user-prompt hook failed or injected nothing"
        );
        Ok(t.elapsed().as_secs_f64() * 1e3)
    }

    fn hooks(&self, n: usize) -> Result<Vec<f64>> {
        let mut out = (0..n).map(|_| self.hook()).collect::<Result<Vec<f64>>>()?;
        out.sort_by(f64::total_cmp);
        Ok(out)
    }

    fn stop_daemon(&self) -> Result<()> {
        let st = self
            .cmd(&["daemon", "--stop"])
            .stdout(std::process::Stdio::null())
            .status()?;
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
pub(crate) fn memory_ready_blocking(socket: &Path) -> bool {
    use std::io::{BufRead, Write};
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(socket) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    if s.write_all(b"{\"id\":1,\"op\":\"memory.recall\",\"args\":{\"query\":\"ready\",\"k\":1}}\n")
        .is_err()
    {
        return false;
    }
    let mut line = String::new();
    std::io::BufReader::new(s).read_line(&mut line).is_ok() && line.contains("\"ok\":true")
}

/// `waiters` sessions that each hold their own file and then queue on one shared path (agents
/// holding their files and waiting on Cargo.lock): the time until all are queued, and a
/// bystander's `hello` latency meanwhile.
pub(crate) async fn waiters_bench(dir: &Path, waiters: usize) -> Result<String> {
    let root = dir.join("proj-waiters");
    let d = Daemon::start(&root, "normal")?;
    let holder = Client::connect(&d.socket).await?;
    let h: SessionId = holder
        .call("session.register", json!({"name": "holder"}))
        .await?;
    let _: serde_json::Value = holder
        .call(
            "lock.acquire",
            json!({"path": "Cargo.lock", "session": h.id}),
        )
        .await?;
    let mut clients = Vec::new();
    for i in 0..waiters {
        let c = Client::connect(&d.socket).await?;
        let s: SessionId = c
            .call("session.register", json!({"name": format!("w{i}")}))
            .await?;
        let _: serde_json::Value = c
            .call(
                "lock.acquire",
                json!({"path": format!("src/f{i}.rs"), "session": s.id}),
            )
            .await?;
        clients.push((Arc::new(c), s.id));
    }
    let stop = Arc::new(AtomicBool::new(false));
    // The bystander runs on a thread and runtime of its own, so the load this process makes
    // (a thousand clients) does not count against its latency.
    let bystander = {
        let (socket, stop) = (d.socket.clone(), stop.clone());
        std::thread::spawn(move || -> Result<Vec<f64>> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
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
            let _ = c
                .call::<_, serde_json::Value>(
                    "lock.acquire",
                    json!({"path": "Cargo.lock", "session": s, "wait": true}),
                )
                .await;
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
    let mut lat = bystander
        .join()
        .map_err(|_| anyhow::anyhow!("the bystander panicked"))??;
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
pub(crate) async fn nonreader_bench(dir: &Path) -> Result<String> {
    use std::io::Write;
    let root = dir.join("proj-nonreader");
    let d = Daemon::start(&root, "normal")?;
    let pid = d.child.id();
    let c = Client::connect(&d.socket).await?;
    let created: TaskCreated = c
        .call(
            "task.create",
            json!({"title": "big", "body": "b".repeat(900_000)}),
        )
        .await?;
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
    let (s, sent) = writer
        .join()
        .map_err(|_| anyhow::anyhow!("the writer panicked"))??;
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
    send(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "kite-bench", "version": "1"}}}),
    )?;
    let mut line = String::new();
    stdout.read_line(&mut line)?;
    anyhow::ensure!(line.contains("\"result\""), "MCP initialize failed: {line}");
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
    send(
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "kite_vault_search", "arguments": {"query": "how is the task queue kept durable", "k": 3}}}),
    )?;
    loop {
        line.clear();
        anyhow::ensure!(stdout.read_line(&mut line)? > 0, "kite mcp exited");
        if line.contains("\"id\":2") {
            anyhow::ensure!(
                !line.contains("\"isError\":true"),
                "vault search failed: {line}"
            );
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
pub(crate) async fn mcp_bench(dir: &Path, n: usize) -> Result<String> {
    let inst = Installed::new(dir)?;
    let add = inst
        .cmd(&[
            "vault",
            "add",
            "--title",
            "Queue durability",
            "--kind",
            "decision",
            "--body",
            "Replies are sent only after the SQLite commit.",
        ])
        .output()?;
    anyhow::ensure!(add.status.success(), "vault add failed");
    let mut rows = Vec::new();
    for (label, flags) in [
        (
            "daemon holds the model (memory.recall on kite.sock)",
            vec![],
        ),
        (
            "each session loads the model (`kite daemon --no-memory`)",
            vec!["--no-memory"],
        ),
    ] {
        eprintln!("      {n} MCP sessions: {label}");
        let mut args = vec!["daemon", "--detach"];
        args.extend(flags.iter());
        let st = inst
            .cmd(&args)
            .stdout(std::process::Stdio::null())
            .status()?;
        anyhow::ensure!(st.success(), "kite daemon --detach failed");
        if flags.is_empty() {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !memory_ready(&kite_coord::Home::new(inst.kite_home()).socket()).await {
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "the memory component did not start"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let mut children = Vec::new();
        for i in 0..n {
            children.push(mcp_session(&inst, i)?);
        }
        let mut rss: Vec<f64> = children
            .iter()
            .map(|c| rss_mib(c.id()))
            .collect::<Result<_>>()?;
        rss.sort_by(f64::total_cmp);
        let daemon_pid: u32 =
            std::fs::read_to_string(kite_coord::Home::new(inst.kite_home()).pidfile())?
                .trim()
                .parse()?;
        let daemon = rss_mib(daemon_pid)?;
        let total: f64 = rss.iter().sum::<f64>() + daemon;
        rows.push(format!(
            "| {label} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.0} MiB |",
            pct(&rss, 0.5),
            rss[rss.len() - 1],
            daemon,
            total
        ));
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
    let Ok(c) = Client::connect(socket).await else {
        return false;
    };
    c.call::<_, serde_json::Value>("memory.recall", json!({"query": "ready", "k": 1}))
        .await
        .is_ok()
}

/// The topics of the generated notes, which the prompts of the user-prompt runs ask about.
const HOOK_TOPICS: [&str; 10] = [
    "upload worker",
    "task queue",
    "lock manager",
    "session reaper",
    "vault index",
    "strategy loop",
    "MCP server",
    "hook budget",
    "sqlite WAL",
    "git worktrees",
];

/// SessionStart hook latency over a vault of `notes` notes, in the installed set-up: daemon warm,
/// the time from a hook finding no daemon to the daemon it started answering, and no daemon.
pub(crate) async fn hook_bench(dir: &Path, notes: usize) -> Result<String> {
    let inst = Installed::new(dir)?;
    let home = inst.kite_home();
    std::fs::create_dir_all(&home)?;
    fill_vault(&inst, &home, notes)?;
    let auto = auto_start_rounds(&inst, &home).await?;
    inst.hooks(3)?;
    let warm = inst.hooks(30)?;
    let mut prompts = (0..30)
        .map(|i| {
            inst.prompt_hook(
                &format!("bench-prompt-{i}"),
                &format!(
                    "why does the {} keep its state in SQLite?",
                    HOOK_TOPICS[i % HOOK_TOPICS.len()]
                ),
            )
        })
        .collect::<Result<Vec<f64>>>()?;
    prompts.sort_by(f64::total_cmp);
    inst.stop_daemon()?;
    std::fs::write(
        kite_coord::Home::new(&home).config(),
        "[daemon]\nautostart = false\n",
    )?;
    let cold = inst.hooks(15)?;
    Ok(render_hook_bench(notes, &warm, &prompts, &cold, auto))
}

/// Adds `notes` generated notes to the vault of the installed project (kite home `home`).
fn fill_vault(inst: &Installed, home: &Path, notes: usize) -> Result<()> {
    let mut config = kite_memory::VaultConfig::new(
        inst.root.join("vault"),
        kite_coord::Home::new(home).vault_index(),
    );
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    config.model_dir = Some(models.join(kite_memory::embed::MODEL_SUBDIR));
    config.ort_dylib = Some(models.join("libonnxruntime.so"));
    config.duplicate_threshold = 2.0; // every note stays: this measures size, not merging
    let mut vault = kite_memory::Vault::open(config)?;
    let topics = HOOK_TOPICS;
    let verbs = [
        "retries with backoff",
        "must stay idempotent",
        "logs every attempt",
        "was rewritten in March",
        "is owned by the platform team",
        "has a flaky test",
        "needs a benchmark",
        "keeps its state in SQLite",
    ];
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
            body: format!(
                "The {t} {v}; observation number {i} from session {}.",
                i % 97
            ),
        })?;
        if i % 1000 == 999 {
            eprintln!(
                "      {} notes added ({:.0} s)",
                i + 1,
                start.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

/// Auto-start timings over the rounds, in ms, each sorted.
struct AutoStart {
    /// Until the daemon answered `hello`.
    answered: Vec<f64>,
    /// Until its memory component served recalls.
    warm_after: Vec<f64>,
    /// Until the hook that started it exited.
    hook_ms: Vec<f64>,
}

/// Five rounds of a hook finding no daemon and starting one; the daemon of the last round is
/// left running.
async fn auto_start_rounds(inst: &Installed, home: &Path) -> Result<AutoStart> {
    let mut auto = AutoStart {
        answered: Vec::new(),
        warm_after: Vec::new(),
        hook_ms: Vec::new(),
    };
    for round in 0..5 {
        eprintln!("      auto-start round {}", round + 1);
        auto_start_round(inst, home, &mut auto).await?;
        if round < 4 {
            inst.stop_daemon()?;
        }
    }
    for v in [&mut auto.answered, &mut auto.warm_after, &mut auto.hook_ms] {
        v.sort_by(f64::total_cmp);
    }
    Ok(auto)
}

/// Auto-start: the hook finds no daemon and starts one; time until the daemon answers hello,
/// and until its memory component (the model warm) serves recalls. One entry per series in `auto`.
async fn auto_start_round(inst: &Installed, home: &Path, auto: &mut AutoStart) -> Result<()> {
    let t = Instant::now();
    let mut hook = Some(inst.spawn_hook()?);
    let deadline = t + Duration::from_secs(60);
    loop {
        if let Ok(c) = Client::connect(&kite_coord::Home::new(home).socket()).await {
            if c.call::<_, serde_json::Value>("hello", json!({}))
                .await
                .is_ok()
            {
                break;
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the auto-started daemon did not answer"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    auto.answered.push(t.elapsed().as_secs_f64() * 1e3);
    loop {
        if let Some(h) = hook.as_mut() {
            if h.try_wait()?.is_some() {
                auto.hook_ms.push(t.elapsed().as_secs_f64() * 1e3);
                hook = None;
            }
        }
        if memory_ready(&kite_coord::Home::new(home).socket()).await {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the memory component did not start"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    auto.warm_after.push(t.elapsed().as_secs_f64() * 1e3);
    if let Some(h) = hook {
        anyhow::ensure!(h.wait_with_output()?.status.success(), "the hook failed");
        auto.hook_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(())
}

/// The Markdown section of [`hook_bench`] (every series sorted).
fn render_hook_bench(
    notes: usize,
    warm: &[f64],
    prompts: &[f64],
    cold: &[f64],
    auto: AutoStart,
) -> String {
    let AutoStart {
        answered,
        warm_after,
        hook_ms,
    } = auto;
    let mut md = format!(
        "## SessionStart hook\n\nWhole `kite hook session-start` process, real-shaped payload, {notes} notes in the vault, in the installed \
         set-up: kite installed into a prefix by `scripts/install.sh` (what `make install` runs), an unrelated git repository, HOME \
         elsewhere, no KITE_* variable.\n\n"
    );
    md.push_str("| daemon | p50 | p99 | runs |\n|---|---|---|---|\n");
    let rows: [(&str, &[f64], f64); 4] = [
        ("running (model warm)", warm, 0.99),
        (
            "running, `kite hook user-prompt` (a matching prompt, a new session each run)",
            prompts,
            0.99,
        ),
        (
            "none, autostart off (in-process search, model loaded per call)",
            cold,
            0.99,
        ),
        (
            "none, autostart on (the hook starts the daemon, answers in process)",
            &hook_ms,
            1.0,
        ),
    ];
    for (what, runs, top) in rows {
        md.push_str(&format!(
            "| {what} | {:.1} ms | {:.1} ms | {} |\n",
            pct(runs, 0.5),
            pct(runs, top),
            runs.len()
        ));
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
    md
}
