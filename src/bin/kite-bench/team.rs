//! A team's store on PostgreSQL: durable task operations with 32 clients against the SQLite
//! backend (at synchronous=full, the same promise as PostgreSQL's synchronous_commit=on) and a
//! bare PostgreSQL insert-and-commit loop, all in one run on one throwaway cluster; and the time
//! a standby takes to answer after the active daemon is killed with -9.

use anyhow::{Context, Result};
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
    Ok(md)
}
