//! A team's store on PostgreSQL: an active daemon and a standby on one database, the active one
//! killed with -9 in the middle of a mixed workload. These run in the suite's PostgreSQL pass
//! (`make test` runs it under `kite-pg-cluster`, which sets `KITE_TEST_PG`); in the SQLite pass
//! there is no cluster and they return at once.

use crate::support::{on_postgres, test_pg_database, Daemon};
use kite_proto::ops::{TaskCreate, TaskCreated};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Everything acknowledged before the kill, by kind.
#[derive(Default)]
struct Acked {
    created: Vec<i64>,
    done: Vec<i64>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_within_5_s_of_a_kill_9_and_nothing_acknowledged_is_lost() {
    if !on_postgres() {
        return;
    }
    let url = test_pg_database().unwrap();
    // Sessions are reaped 2 s after their last heartbeat, on either daemon.
    let mut active = Daemon::start_on(Some(url.clone()), &["--heartbeat-timeout", "2"]);
    let mut standby = Daemon::start_on(Some(url.clone()), &["--heartbeat-timeout", "2", "--standby"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(!standby.socket().exists(), "a standby does not serve while the lease is held");

    // A claim made before the take-over, by a session that will go silent.
    let c = active.client().await;
    let silent: String = c.call::<_, Value>("session.register", json!({"name": "silent"})).await.unwrap()["id"].as_str().unwrap().into();
    let held = c.call::<_, TaskCreated>("task.create", TaskCreate { title: "held".into(), ..Default::default() }).await.unwrap().id;
    let claim = c.call::<_, Value>("task.start", json!({"task": held, "session": silent})).await.unwrap()["claim"].as_u64().unwrap();
    c.call::<_, Value>("lock.acquire", json!({"path": "src/held.rs", "session": silent})).await.unwrap();

    // A mixed workload: creators, workers claiming and finishing, and lockers with waiters.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Acked::default()));
    let mut streams = Vec::new();
    for w in 0..3 {
        let c = active.client().await;
        let acked = acked.clone();
        streams.push(tokio::spawn(async move {
            for i in 0.. {
                match c.call::<_, TaskCreated>("task.create", TaskCreate { title: format!("w{w} t{i}"), ..Default::default() }).await {
                    Ok(t) => acked.lock().unwrap().created.push(t.id),
                    Err(_) => return,
                }
            }
        }));
    }
    for w in 0..2 {
        let c = active.client().await;
        let acked = acked.clone();
        streams.push(tokio::spawn(async move {
            let Ok(s) = c.call::<_, Value>("session.register", json!({"name": format!("worker{w}")})).await else { return };
            let s = s["id"].as_str().unwrap().to_string();
            loop {
                let Ok(next) = c.call::<_, Value>("task.next", json!({"session": s})).await else { return };
                if next.is_null() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                let id = next["task"]["id"].as_i64().unwrap();
                match c.call::<_, Value>("task.done", json!({"task": id, "session": s, "claim": next["claim"]})).await {
                    Ok(_) => acked.lock().unwrap().done.push(id),
                    Err(_) => return,
                }
            }
        }));
    }
    for w in 0..3 {
        let c = active.client().await;
        streams.push(tokio::spawn(async move {
            let Ok(s) = c.call::<_, Value>("session.register", json!({"name": format!("locker{w}")})).await else { return };
            let s = s["id"].as_str().unwrap().to_string();
            loop {
                // All three queue on one file: each waits for the one before to release.
                if c.call::<_, Value>("lock.acquire", json!({"path": "src/shared.rs", "session": s, "wait": true})).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
                if c.call::<_, Value>("lock.release", json!({"path": "src/shared.rs", "session": s})).await.is_err() {
                    return;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    active.kill9();
    for s in streams {
        s.await.unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(acked.created.len() > 20 && !acked.done.is_empty(), "the workload ran ({} created, {} done)", acked.created.len(), acked.done.len());

    // The standby answers within 5 s of the kill.
    let took = standby.answers_within(Duration::from_secs(5));
    eprintln!("the standby answered {took:?} after the kill");

    // Its status names the store, the new epoch and what a take-over elsewhere would not have.
    let status = standby.ok(&["status"]);
    assert_eq!((status["store"]["backend"].as_str(), status["store"]["epoch"].as_i64()), (Some("postgres"), Some(2)), "{status}");
    assert!(status["store"]["local_only"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains("worktrees")), "{status}");
    let text = String::from_utf8(standby.cli(&["status"]).stdout).unwrap();
    assert!(text.contains("store: PostgreSQL") && text.contains("lease epoch 2") && text.contains("would not have"), "{text}");

    // Every acknowledged change is there.
    let tasks = standby.ok(&["task", "list", "--all"]);
    let by_id: HashMap<i64, String> =
        tasks["tasks"].as_array().unwrap().iter().map(|t| (t["id"].as_i64().unwrap(), t["status"].as_str().unwrap().to_string())).collect();
    let lost: Vec<&i64> = acked.created.iter().filter(|id| !by_id.contains_key(id)).collect();
    assert!(lost.is_empty(), "acknowledged creations lost in the take-over: {lost:?}");
    let undone: Vec<&i64> = acked.done.iter().filter(|id| by_id.get(id).map(String::as_str) != Some("done")).collect();
    assert!(undone.is_empty(), "acknowledged finishes lost in the take-over: {undone:?}");

    // The silent session is reaped by the new daemon; its claim from before the take-over no
    // longer finishes the task, and its lock is free.
    std::thread::sleep(Duration::from_millis(3500));
    let err = standby.err(&["task", "done", &held.to_string(), "--session", &silent, "--claim", &claim.to_string()]);
    assert!(err.contains("claim") || err.contains("reaped"), "{err}");
    assert_eq!(standby.ok(&["task", "show", &held.to_string()])["status"], "pending");

    // No exclusive lock was ever held twice: replay the database's own history of grants and
    // releases, across both epochs.
    let db = kite_store_pg::connect(&url).unwrap();
    let rows = db.query("SELECT path, session, mode, event, epoch FROM lock_history ORDER BY id", &[]).unwrap();
    assert!(rows.iter().any(|r| r.get::<_, i64>(4) == 2), "the new daemon granted or released locks too");
    let mut holders: HashMap<String, HashSet<(String, String)>> = HashMap::new();
    for r in &rows {
        let (path, session, mode, event): (String, String, String, String) = (r.get(0), r.get(1), r.get(2), r.get(3));
        let now = holders.entry(path.clone()).or_default();
        if event == "grant" {
            let others: Vec<_> = now.iter().filter(|(s, _)| *s != session).collect();
            assert!(
                others.is_empty() || (mode == "shared" && others.iter().all(|(_, m)| m == "shared")),
                "{path} granted {mode} to {session} while {others:?} held it"
            );
            now.insert((session, mode));
        } else {
            now.retain(|(s, _)| *s != session);
        }
    }
    assert!(rows.len() > 10, "the lockers took turns ({} grants and releases)", rows.len());
    drop(standby);
}

#[test]
fn a_second_active_daemon_on_one_store_is_refused_naming_the_holder() {
    if !on_postgres() {
        return;
    }
    let url = test_pg_database().unwrap();
    let first = Daemon::start_on(Some(url.clone()), &[]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir(root.join(".git")).unwrap();
    let home = root.join(".kite");
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(0o700).create(&home).unwrap();
    }
    std::fs::write(home.join("kite.toml"), format!("[store]\nurl = \"{url}\"\n")).unwrap();
    let out = first.cli_cmd(&["daemon"]).current_dir(&root).env("KITE_LOG", "off").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("another kite daemon is active for this store") && stderr.contains(&first.home.display().to_string()) && stderr.contains("--standby"), "{stderr}");
    // It changed nothing: the first still serves.
    first.ok(&["status"]);
}

/// Clients that pinned the active daemon's certificate reach the standby after a take-over: both
/// present the same certificate, the token lives in the shared store, and KITE_URL lists both
/// addresses.
#[test]
fn after_a_take_over_remote_clients_reach_the_standby_with_the_same_pin_and_token() {
    if !on_postgres() {
        return;
    }
    let url = test_pg_database().unwrap();
    let port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (pa, pb) = (port(), port());
    let mut active = Daemon::start_configured(Some(url.clone()), &format!("[daemon]\nlisten = \"127.0.0.1:{pa}\"\n"), &[]);
    let tls = active.home.join("tls");
    let standby_toml = format!(
        "[daemon]\nlisten = \"127.0.0.1:{pb}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
        tls.join("cert.pem").display(),
        tls.join("key.pem").display()
    );
    let mut standby = Daemon::start_configured(Some(url), &standby_toml, &["--standby"]);
    let created = active.ok(&["token", "create", "laptop"]);
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::create_dir(elsewhere.path().join(".git")).unwrap();
    let remote = |args: &[&str]| {
        let out = std::process::Command::new(crate::support::KITE)
            .args(args)
            .arg("--json")
            .current_dir(elsewhere.path())
            .env_remove("KITE_HOME")
            .env("HOME", elsewhere.path())
            .env("KITE_URL", format!("kite://127.0.0.1:{pa},kite://127.0.0.1:{pb}"))
            .env("KITE_TOKEN", created["KITE_TOKEN"].as_str().unwrap())
            .env("KITE_CERT_SHA256", created["KITE_CERT_SHA256"].as_str().unwrap())
            .output()
            .unwrap();
        assert!(out.status.success(), "kite {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let id = remote(&["task", "create", "--title", "before the take-over"])["id"].as_i64().unwrap();
    active.kill9();
    standby.answers_within(Duration::from_secs(5));
    let listed = remote(&["task", "list"]);
    assert!(listed["tasks"].as_array().unwrap().iter().any(|t| t["id"] == id), "{listed}");
    let after = remote(&["task", "create", "--title", "after the take-over"])["id"].as_i64().unwrap();
    assert!(after > id);
}

/// `kite daemon --standby --detach` returns once the standby runs and waits (it answers only
/// when it holds the lease); a clean stop of the active daemon hands it the lease at once.
#[test]
fn a_detached_standby_waits_and_takes_over_when_the_active_daemon_stops() {
    if !on_postgres() {
        return;
    }
    let url = test_pg_database().unwrap();
    let mut active = Daemon::start_on(Some(url.clone()), &[]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir(root.join(".git")).unwrap();
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(0o700).create(root.join(".kite")).unwrap();
    }
    std::fs::write(root.join(".kite/kite.toml"), format!("[store]\nurl = \"{url}\"\n")).unwrap();
    let kite = |args: &[&str]| crate::support::with_model(&mut std::process::Command::new(crate::support::KITE)).args(args).current_dir(&root).env_remove("KITE_HOME").output().unwrap();
    let started = std::time::Instant::now();
    let out = kite(&["daemon", "--standby", "--detach", "--no-memory"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("waiting for the store's lease"));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!kite(&["status"]).status.success(), "a standby does not answer yet");
    assert!(active.stop().success());
    let stopped = std::time::Instant::now();
    while !kite(&["status"]).status.success() {
        assert!(stopped.elapsed() < Duration::from_secs(5), "the standby did not take over");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status: Value = serde_json::from_slice(&kite(&["status", "--json"]).stdout).unwrap();
    assert_eq!(status["store"]["epoch"], 2, "{status}");
    assert!(kite(&["daemon", "--stop"]).status.success());
}
