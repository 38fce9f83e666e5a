//! Workers on other machines: a daemon on one clone with a TLS listener, and `kite worker
//! --connect` in two other clones (each its own HOME), all of one bare "origin". Their agents
//! (scripted: they write a file and commit) run in the workers' worktrees; the work lands on
//! origin's main with a compare-and-swap push.

use crate::support::KITE;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").arg("-C").arg(dir).args(["-c", "user.name=t", "-c", "user.email=t@t"]).args(args).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A process that is killed when the test ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.0.try_wait() {
            return;
        }
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Team {
    dir: tempfile::TempDir,
    origin: PathBuf,
    hq: PathBuf,
    daemon: Killed,
    agent: String,
    /// The suite's PostgreSQL store for this team, on the PostgreSQL pass.
    store: Option<String>,
    port: u16,
}

impl Team {
    fn new() -> Team {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let origin = base.join("origin.git");
        git(&base, &["init", "-q", "--bare", "-b", "main", origin.to_str().unwrap()]);
        let seed = base.join("seed");
        git(&base, &["clone", "-q", origin.to_str().unwrap(), seed.to_str().unwrap()]);
        std::fs::write(seed.join("README"), "team\n").unwrap();
        std::fs::write(seed.join(".gitignore"), ".kite/\n").unwrap();
        git(&seed, &["add", "-A"]);
        git(&seed, &["commit", "-q", "-m", "start"]);
        git(&seed, &["push", "-q", "origin", "HEAD:main"]);
        let hq = base.join("hq");
        git(&base, &["clone", "-q", origin.to_str().unwrap(), hq.to_str().unwrap()]);
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        std::fs::create_dir_all(hq.join(".kite")).unwrap();
        let mut toml = format!("[daemon]\nlisten = \"127.0.0.1:{port}\"\n");
        let store = crate::support::test_pg_database();
        if let Some(url) = &store {
            toml.push_str(&format!("\n[store]\nurl = \"{url}\"\n"));
        }
        std::fs::write(hq.join(".kite/kite.toml"), toml).unwrap();
        let daemon = Command::new(KITE)
            .args(["daemon", "--no-memory", "--tick", "0", "--max-agents", "0"])
            .current_dir(&hq)
            .env_remove("KITE_HOME")
            .env("KITE_LOG", "warn")
            .env("HOME", base.join("hq-home"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let team = Team { agent: String::new(), dir, origin, hq, daemon: Killed(daemon), store, port };
        team.until("the daemon to answer", || team.kite_in(&team.hq, &[], &["status", "--json"]).status.success());
        let agent = base.join("agent.sh");
        std::fs::write(&agent, "set -e\necho \"work of task $KITE_TASK_ID\" > \"task-$KITE_TASK_ID.txt\"\ngit add -A\ngit -c user.name=agent -c user.email=agent@test commit -q -m \"task $KITE_TASK_ID\"\n").unwrap();
        Team { agent: format!("sh {}", agent.display()), ..team }
    }

    fn base(&self) -> PathBuf {
        self.dir.path().canonicalize().unwrap()
    }

    fn kite_in(&self, dir: &Path, env: &[(String, String)], args: &[&str]) -> std::process::Output {
        Command::new(KITE).args(args).current_dir(dir).env_remove("KITE_HOME").envs(env.iter().cloned()).output().unwrap()
    }

    fn hq(&self, args: &[&str]) -> Value {
        let out = self.kite_in(&self.hq, &[], &[args, &["--json"]].concat());
        assert!(out.status.success(), "kite {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn until(&self, what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A token's settings for a machine, as `kite token create` prints them.
    fn token(&self, name: &str) -> Vec<(String, String)> {
        let v = self.hq(&["token", "create", name]);
        ["KITE_URL", "KITE_TOKEN", "KITE_CERT_SHA256"].iter().map(|k| (k.to_string(), v[*k].as_str().unwrap().to_string())).collect()
    }

    /// Another machine: a clone of origin and a HOME of its own, running `kite worker`.
    fn worker(&self, name: &str, settings: &[(String, String)]) -> (Killed, PathBuf) {
        let base = self.base();
        let clone = base.join(name);
        git(&base, &["clone", "-q", self.origin.to_str().unwrap(), clone.to_str().unwrap()]);
        std::fs::create_dir_all(clone.join(".kite")).unwrap();
        std::fs::write(clone.join(".kite/kite.toml"), "[runner]\npoll = \"50ms\"\n\n[merge]\nverify = \"test -s README\"\n").unwrap();
        let env: HashMap<&str, &str> = settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let log = std::fs::File::create(base.join(format!("{name}.log"))).unwrap();
        let child = Command::new(KITE)
            .args(["worker", "--connect", env["KITE_URL"], "--max-agents", "1"])
            .current_dir(&clone)
            .env_remove("KITE_HOME")
            .env_remove("KITE_URL")
            .env("KITE_TOKEN", env["KITE_TOKEN"])
            .env("KITE_CERT_SHA256", env["KITE_CERT_SHA256"])
            .env("KITE_AGENT_COMMAND", &self.agent)
            .env("HOME", base.join(format!("{name}-home")))
            .env("KITE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        (Killed(child), clone)
    }

    /// A standby daemon in a clone of its own, on the team's store, presenting the active
    /// daemon's certificate; its listener's port.
    fn standby(&self) -> (Killed, PathBuf, u16) {
        let base = self.base();
        let clone = base.join("hq2");
        git(&base, &["clone", "-q", self.origin.to_str().unwrap(), clone.to_str().unwrap()]);
        std::fs::create_dir_all(clone.join(".kite")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let tls = self.hq.join(".kite/tls");
        std::fs::write(
            clone.join(".kite/kite.toml"),
            format!(
                "[daemon]\nlisten = \"127.0.0.1:{port}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\n[store]\nurl = \"{}\"\n",
                tls.join("cert.pem").display(),
                tls.join("key.pem").display(),
                self.store.as_deref().unwrap()
            ),
        )
        .unwrap();
        let child = Command::new(KITE)
            .args(["daemon", "--no-memory", "--tick", "0", "--max-agents", "0", "--standby"])
            .current_dir(&clone)
            .env_remove("KITE_HOME")
            .env("KITE_LOG", "warn")
            .env("HOME", base.join("hq2-home"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        (Killed(child), clone, port)
    }

    fn status_of(&self, id: i64) -> String {
        self.hq(&["task", "show", &id.to_string()])["status"].as_str().unwrap().to_string()
    }
}

#[test]
fn workers_on_two_other_machines_land_every_task_on_origin_and_a_revoked_token_is_refused() {
    let team = Team::new();
    let (_b, b_clone) = team.worker("laptop", &team.token("laptop"));

    // One task: a worker elsewhere runs it and it lands on origin's main, its branch pushed too.
    let first = team.hq(&["task", "create", "--title", "Write a file"])["id"].as_i64().unwrap();
    team.until("the first task to be done", || team.status_of(first) == "done");
    let log = git(&team.origin, &["log", "--format=%s", "main"]);
    assert!(log.contains(&format!("task {first}")), "{log}");
    assert!(git(&team.origin, &["branch", "--list", &format!("kite/task-{first}")]).contains("kite/task"), "the task's branch is on origin");
    let shown = team.hq(&["task", "show", &first.to_string()]);
    assert_eq!(shown["landing"]["state"], "landed", "{shown}");
    assert!(!b_clone.join(format!("task-{first}.txt")).exists() || git(&b_clone, &["status", "--porcelain"]).is_empty(), "the worker's own checkout is left alone");

    // Two workers at once, six tasks: every one lands, one after the other, and none is lost.
    let (_c, _) = team.worker("build-box", &team.token("build-box"));
    let ids: Vec<i64> = (0..6).map(|i| team.hq(&["task", "create", "--title", &format!("Write file {i}")])["id"].as_i64().unwrap()).collect();
    team.until("six tasks to be done", || ids.iter().all(|id| team.status_of(*id) == "done"));
    let log = git(&team.origin, &["log", "--format=%s", "main"]);
    for id in ids.iter().chain([&first]) {
        assert!(log.contains(&format!("task {id}\n")), "task {id} is on origin's main:\n{log}");
    }
    let files = git(&team.origin, &["ls-tree", "--name-only", "main"]);
    assert_eq!(files.lines().filter(|f| f.starts_with("task-")).count(), 7, "{files}");
    assert_eq!(git(&team.origin, &["rev-list", "--merges", "--count", "main"]).trim(), "0", "rebased, linear");
    for name in ["laptop", "build-box"] {
        let log = std::fs::read_to_string(team.base().join(format!("{name}.log"))).unwrap();
        assert!(log.contains("landing: landed"), "both workers landed work; {name}'s log:\n{log}");
    }

    // A revoked token: a worker with it is refused at once with one clear error.
    let settings = team.token("old-box");
    team.hq(&["token", "revoke", "old-box"]);
    let env: HashMap<&str, &str> = settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = Command::new(KITE)
        .args(["worker", "--connect", env["KITE_URL"]])
        .current_dir(&b_clone)
        .env_remove("KITE_HOME")
        .env("KITE_TOKEN", env["KITE_TOKEN"])
        .env("KITE_CERT_SHA256", env["KITE_CERT_SHA256"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("'old-box' was revoked"), "{stderr}");
}

/// A worker across a take-over: the active daemon is killed with -9, the standby (same store,
/// same certificate) takes over, and the worker, whose KITE_URL lists both, connects again and
/// lands the next task. PostgreSQL pass only (a standby needs the shared store).
#[test]
fn a_worker_connects_again_after_a_take_over_and_goes_on_landing() {
    if !crate::support::on_postgres() {
        return;
    }
    let mut team = Team::new();
    let (_standby, hq2, port2) = team.standby();
    let mut settings = team.token("laptop");
    for (k, v) in settings.iter_mut() {
        if k == "KITE_URL" {
            *v = format!("kite://127.0.0.1:{},kite://127.0.0.1:{port2}", team.port);
        }
    }
    let (_w, _) = team.worker("laptop", &settings);
    let first = team.hq(&["task", "create", "--title", "Before"])["id"].as_i64().unwrap();
    team.until("the first task to be done", || team.status_of(first) == "done");

    let _ = team.daemon.0.kill();
    let _ = team.daemon.0.wait();
    let at_standby = |args: &[&str]| team.kite_in(&hq2, &[], &[args, &["--json"]].concat());
    team.until("the standby to answer", || at_standby(&["status"]).status.success());
    let out = at_standby(&["task", "create", "--title", "After"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let second = serde_json::from_slice::<Value>(&out.stdout).unwrap()["id"].as_i64().unwrap();
    team.until("the worker to land the task the standby queued", || {
        let out = at_standby(&["task", "show", &second.to_string()]);
        out.status.success() && serde_json::from_slice::<Value>(&out.stdout).unwrap()["status"] == "done"
    });
    let log = git(&team.origin, &["log", "--format=%s", "main"]);
    assert!(log.contains(&format!("task {first}\n")) && log.contains(&format!("task {second}\n")), "{log}");
    let worker_log = std::fs::read_to_string(team.base().join("laptop.log")).unwrap();
    assert!(worker_log.contains("connected to the team's daemon again"), "{worker_log}");
}
