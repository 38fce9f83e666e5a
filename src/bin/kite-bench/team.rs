//! A team's store on PostgreSQL: durable task operations with 32 clients against the SQLite
//! backend (at synchronous=full, the same promise as PostgreSQL's synchronous_commit=on) and a
//! bare PostgreSQL insert-and-commit loop, all in one run on one throwaway cluster; and the time
//! a standby takes to answer after the active daemon is killed with -9.

use anyhow::{Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use kite_store_pg::cluster::TempCluster;
use std::path::Path;
use std::time::{Duration, Instant};

/// A daemon for this section: no memory component (no model to load), on a project whose store
/// is `url` (SQLite in its home without).
struct Plain {
    child: std::process::Child,
    socket: std::path::PathBuf,
}

impl Plain {
    fn spawn(root: &Path, url: Option<&str>, args: &[&str]) -> Result<Plain> {
        let home = root.join(".kite");
        std::fs::create_dir_all(&home)?;
        if let Some(url) = url {
            std::fs::write(home.join("kite.toml"), format!("[store]\nurl = \"{url}\"\n"))?;
        }
        let mut all = vec!["--no-memory", "--tick", "0"];
        all.extend_from_slice(args);
        let child = super::spawn_daemon(root, &all)?;
        Ok(Plain { child, socket: home.join("kite.sock") })
    }

    /// Waits until it answers hello itself; how long that took.
    fn ready(&mut self, limit: Duration) -> Result<Duration> {
        let started = Instant::now();
        let pid = self.child.id();
        loop {
            if let Ok(h) = kite_proto::client::blocking::request::<kite_proto::op::Hello>(&self.socket, kite_proto::NoArgs {}, Duration::from_secs(1)) {
                if h.pid == pid {
                    return Ok(started.elapsed());
                }
            }
            if let Some(st) = self.child.try_wait()? {
                anyhow::bail!("the daemon exited: {st}");
            }
            anyhow::ensure!(started.elapsed() < limit, "the daemon did not answer within {limit:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Plain {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One row inserted and committed per transaction, one connection, as fast as it goes.
fn bare_pg(url: &str, secs: f64) -> Result<f64> {
    let c = kite_store_pg::connect(url)?;
    c.batch("CREATE TABLE IF NOT EXISTS bare (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title TEXT NOT NULL, status TEXT NOT NULL)")?;
    let insert = c.prepare("INSERT INTO bare (title, status) VALUES ($1, 'pending')")?;
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut n = 0u64;
    while Instant::now() < deadline {
        c.batch("BEGIN")?;
        c.execute(&insert, &[&"bench"])?;
        c.batch("COMMIT")?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// The TLS baseline's other end, in its own process like the daemon: a TLS echo on a loopback
/// port with the daemon's certificate. Run as `kite-bench --tls-echo-server CERT KEY`; prints
/// the port.
pub(crate) async fn tls_echo_server(cert: &Path, key: &Path) -> Result<()> {
    let identity = kite_coord::remote::Identity { cert: cert.to_path_buf(), key: key.to_path_buf() };
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(kite_coord::remote::server_config(&identity)?));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?.port());
    let (tcp, _) = listener.accept().await?;
    tcp.set_nodelay(true)?;
    let tls = acceptor.accept(tcp).await?;
    let (r, mut w) = tokio::io::split(tls);
    let mut lines = BufReader::new(r).lines();
    while let Some(l) = lines.next_line().await? {
        w.write_all(format!("{{\"id\":1,\"ok\":true,\"result\":{l}}}\n").as_bytes()).await?;
        w.flush().await?;
    }
    Ok(())
}

/// `n` round trips of one small line over TLS to the echo (after a warm-up), in µs, sorted.
async fn tls_round_trips(identity: &kite_coord::remote::Identity, n: usize) -> Result<Vec<f64>> {
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .arg("--tls-echo-server")
        .arg(&identity.cert)
        .arg(&identity.key)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut ready = BufReader::new(child.stdout.take().context("echo stdout")?).lines();
    let port: u16 = ready.next_line().await?.context("the echo's port")?.parse()?;
    let pin = kite_coord::remote::fingerprint(identity)?;
    let remote = kite_proto::Remote::new(&format!("kite://127.0.0.1:{port}"), "unused", Some(&pin)).map_err(anyhow::Error::msg)?;
    let stream = kite_proto::remote::open(&remote).await?;
    let (r, mut w) = tokio::io::split(stream);
    let mut lines = BufReader::new(r).lines();
    let mut out = Vec::with_capacity(n);
    for i in 0..n + 200 {
        let t = Instant::now();
        w.write_all(b"{\"id\":1,\"op\":\"lock.release\",\"args\":{\"path\":\"hot\",\"session\":\"s1\"}}\n").await?;
        w.flush().await?;
        lines.next_line().await?;
        if i >= 200 {
            out.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    out.sort_by(f64::total_cmp);
    let _ = child.kill().await;
    Ok(out)
}

/// Lock hand-offs between 64 sessions whose clients reach the daemon over TLS with a token.
async fn tls_handoff(root: &Path, url: Option<&str>, handoffs: usize) -> Result<(Vec<f64>, kite_coord::remote::Identity)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let home = root.join(".kite");
    std::fs::create_dir_all(&home)?;
    let mut toml = format!("[daemon]\nlisten = \"127.0.0.1:{port}\"\n");
    if let Some(url) = url {
        toml.push_str(&format!("\n[store]\nurl = \"{url}\"\n"));
    }
    std::fs::write(home.join("kite.toml"), toml)?;
    let mut d = Plain::spawn(root, None, &[])?;
    d.ready(Duration::from_secs(30))?;
    let out = std::process::Command::new(std::env::current_exe()?.with_file_name("kite"))
        .args(["token", "create", "bench", "--json"])
        .current_dir(root)
        .env_remove("KITE_HOME")
        .output()?;
    anyhow::ensure!(out.status.success(), "kite token create: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let field = |k: &str| v[k].as_str().map(str::to_string).with_context(|| format!("{k} in {v}"));
    let remote = kite_proto::Remote::new(&field("KITE_URL")?, &field("KITE_TOKEN")?, Some(&field("KITE_CERT_SHA256")?)).map_err(anyhow::Error::msg)?;
    let samples = super::lock_handoff_at(&kite_proto::Endpoint::Remote(remote), "hot", 64, handoffs).await?;
    drop(d);
    Ok((samples, kite_coord::remote::Identity { cert: home.join("tls/cert.pem"), key: home.join("tls/key.pem") }))
}

pub(crate) async fn team_bench(dir: &Path, quick: bool) -> Result<String> {
    let cluster = match TempCluster::start() {
        Ok(c) => c,
        Err(e) => return Ok(format!("## A team's store on PostgreSQL\n\nNot measured: {e}.\n")),
    };
    let (fsync, commit) = (cluster.setting("fsync")?, cluster.setting("synchronous_commit")?);
    let (rounds, secs) = if quick { (2, 1.0) } else { (3, 3.0) };
    let mut rows = Vec::new();
    for round in 0..rounds {
        eprintln!("      round {}/{rounds}: kite on PostgreSQL, kite on SQLite (full), bare PostgreSQL commits", round + 1);
        let url = cluster.create_database(&format!("ops{round}"))?;
        let pg_root = dir.join(format!("pg{round}"));
        let mut pg = Plain::spawn(&pg_root, Some(&url), &[])?;
        pg.ready(Duration::from_secs(30))?;
        let pg_ops = super::task_ops(&pg.socket, 32, secs).await?;
        drop(pg);
        let lite_root = dir.join(format!("lite{round}"));
        let mut lite = Plain::spawn(&lite_root, None, &["--sync", "full"])?;
        lite.ready(Duration::from_secs(30))?;
        let lite_ops = super::task_ops(&lite.socket, 32, secs).await?;
        drop(lite);
        let bare = bare_pg(&cluster.create_database(&format!("bare{round}"))?, secs)?;
        eprintln!("      {pg_ops:.0} ops/s on PostgreSQL, {lite_ops:.0} on SQLite, {bare:.0} bare PostgreSQL commits/s");
        rows.push((pg_ops, lite_ops, bare));
    }
    let med = |f: &dyn Fn(&(f64, f64, f64)) -> f64| {
        let mut v: Vec<f64> = rows.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };

    eprintln!("      take-over: kill -9 the active daemon, time until the standby answers");
    let mut takeovers = Vec::new();
    for trial in 0..if quick { 2 } else { 3 } {
        let url = cluster.create_database(&format!("takeover{trial}"))?;
        let mut active = Plain::spawn(&dir.join(format!("active{trial}")), Some(&url), &[])?;
        active.ready(Duration::from_secs(30))?;
        let mut standby = Plain::spawn(&dir.join(format!("standby{trial}")), Some(&url), &["--standby"])?;
        // The standby is up and polling the lease.
        std::thread::sleep(Duration::from_millis(500));
        active.child.kill().context("kill -9")?;
        let killed = Instant::now();
        active.child.wait()?;
        let _ = standby.ready(Duration::from_secs(30))?;
        takeovers.push(killed.elapsed().as_secs_f64());
    }
    takeovers.sort_by(f64::total_cmp);

    eprintln!("      lock hand-off over TLS (64 sessions), against a bare TLS round trip");
    let handoffs = if quick { 500 } else { 1_000 };
    let (lite_tls, identity) = tls_handoff(&dir.join("tls-lite"), None, handoffs).await?;
    let (pg_tls, _) = tls_handoff(&dir.join("tls-pg"), Some(&cluster.create_database("tls")?), handoffs).await?;
    let bare_tls = tls_round_trips(&identity, if quick { 2_000 } else { 4_000 }).await?;
    let p = super::pct;

    let mut md = String::from("## A team's store on PostgreSQL\n\n");
    md.push_str(&format!(
        "`kite-bench` starts a throwaway PostgreSQL 15 cluster (initdb; `fsync = {fsync}`, `synchronous_commit = {commit}`, as the server \
         reports them). {rounds} rounds, each {secs:.0} s per measurement: 32 clients each loop create → start → done on a daemon whose \
         store is a database of that cluster; the same on a daemon with the SQLite backend at `--sync full` (fsync before every reply, \
         the same promise); and a bare loop on one connection inserting and committing one row per transaction. Medians of the rounds.\n\n"
    ));
    md.push_str("| | task ops/s (32 clients) | vs kite on SQLite (full) | vs bare PostgreSQL commits/s |\n|---|---|---|---|\n");
    let (pg, lite, bare) = (med(&|r| r.0), med(&|r| r.1), med(&|r| r.2));
    md.push_str(&format!("| kite on PostgreSQL | {pg:.0} | {:.2}x | {:.2}x |\n", pg / lite, pg / bare));
    md.push_str(&format!("| kite on SQLite, --sync full | {lite:.0} | 1.00x | {:.2}x |\n", lite / bare));
    md.push_str(&format!("| bare PostgreSQL insert + commit | {bare:.0} commits/s | | 1.00x |\n\n"));
    md.push_str(&format!(
        "Take-over: an active daemon and a standby (`kite daemon --standby`) on one database; the active one killed with -9; time from \
         the kill to the standby's first answered request, {} trials: {}. The lease expires {} s after its last renewal and a standby \
         looks every {} ms, so the bound is about {:.1} s plus the standby's start.\n",
        takeovers.len(),
        takeovers.iter().map(|t| format!("{t:.2} s")).collect::<Vec<_>>().join(", "),
        kite_store_pg::lease::TTL.as_secs(),
        kite_store_pg::lease::POLL.as_millis(),
        (kite_store_pg::lease::TTL + kite_store_pg::lease::POLL).as_secs_f64(),
    ));
    md.push_str(&format!(
        "\nLock hand-off over TLS: 64 sessions whose clients connect to the daemon's listener (`[daemon] listen`, TLS with the \
         certificate it made, a token from `kite token create`) contend for one path; each grant is timed from the previous \
         holder's release to the waiter's client receiving the grant, {handoffs} hand-offs. The baseline is a bare TLS round \
         trip of one small line to an echo in another process presenting the same certificate.\n\n\
         | | p50 | p99 | p99 / bare TLS p99 |\n|---|---|---|---|\n\
         | bare TLS round trip | {:.0} µs | {:.0} µs | 1.00x |\n\
         | hand-off over TLS, SQLite store | {:.0} µs | {:.0} µs | {:.2}x |\n\
         | hand-off over TLS, PostgreSQL store | {:.0} µs | {:.0} µs | {:.2}x |\n",
        p(&bare_tls, 0.5),
        p(&bare_tls, 0.99),
        p(&lite_tls, 0.5),
        p(&lite_tls, 0.99),
        p(&lite_tls, 0.99) / p(&bare_tls, 0.99),
        p(&pg_tls, 0.5),
        p(&pg_tls, 0.99),
        p(&pg_tls, 0.99) / p(&bare_tls, 0.99),
    ));
    Ok(md)
}
