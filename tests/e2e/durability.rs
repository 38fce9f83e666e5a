//! Restart restores everything; kill -9 at any moment loses no acknowledged change.

use crate::support::Daemon;
use kite_proto::ops::{TaskCreate, TaskCreated};
use serde_json::json;
use std::time::Duration;

#[test]
fn a_restart_restores_tasks_sessions_locks_and_tokens() {
    let mut d = Daemon::start();
    let s = d.session("keeper");
    let a = d.task("a", &["--file", "src/a.rs"]);
    let b = d.task("b", &["--depends-on", &a.to_string()]);
    d.ok(&["task", "start", &a.to_string(), "--session", &s]);
    d.ok(&["lock", "acquire", "src/a.rs", "--session", &s]);
    d.restart();
    let shown = d.ok(&["task", "show", &a.to_string()]);
    assert_eq!((shown["status"].as_str(), shown["claim_session"].as_str()), (Some("active"), Some(s.as_str())));
    assert_eq!(shown["files"], json!(["src/a.rs"]));
    assert_eq!(d.ok(&["task", "show", &b.to_string()])["depends_on"], json!([a]));
    assert_eq!(d.ok(&["lock", "list"])["held"][0]["token"], 1);
    d.ok(&["task", "done", &a.to_string(), "--session", &s]);
    d.ok(&["lock", "release", "src/a.rs", "--session", &s]);
    assert_eq!(d.ok(&["lock", "acquire", "src/a.rs", "--session", &s])["token"], 2, "tokens continue after a restart");
    let st = d.stop();
    assert!(st.success(), "clean shutdown: {st}");
    assert!(!d.socket().exists(), "the socket is removed at shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_stream_of_creations_loses_no_acknowledged_task() {
    kill_9_rounds(Daemon::start(), 1).await;
}

/// With `--sync full` the replies wait for the WAL's fsync on another thread while the daemon
/// serves the next batch; several writers keep that pipeline full when the plug is pulled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_sync_full_loses_no_acknowledged_task() {
    kill_9_rounds(Daemon::start_with(&["--sync", "full"]), 3).await;
}

async fn kill_9_rounds(mut d: Daemon, writers: usize) {
    let mut acked: Vec<i64> = Vec::new();
    for round in 0..12u64 {
        let mut streams = Vec::new();
        for w in 0..writers {
            let c = d.client().await;
            streams.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                for i in 0.. {
                    let args = TaskCreate { title: format!("r{round} w{w} t{i}"), ..Default::default() };
                    match c.call::<_, TaskCreated>("task.create", args).await {
                        Ok(t) => mine.push(t.id),
                        Err(_) => break,
                    }
                }
                mine
            }));
        }
        // Let some acknowledged creations pile up, then pull the plug mid-stream.
        tokio::time::sleep(Duration::from_millis(20 + (round * 37) % 60)).await;
        d.kill9();
        for s in streams {
            acked.extend(s.await.unwrap());
        }
        d.restart();
        let tasks = d.ok(&["task", "list"]);
        let stored: std::collections::HashSet<i64> =
            tasks["tasks"].as_array().unwrap().iter().map(|t| t["id"].as_i64().unwrap()).collect();
        let lost: Vec<&i64> = acked.iter().filter(|id| !stored.contains(id)).collect();
        assert!(lost.is_empty(), "round {round}: acknowledged tasks lost after kill -9: {lost:?}");
    }
    // Each round streams for 20-80 ms after a restart; on PostgreSQL a restart also connects and
    // takes the lease, and every commit waits for the server's WAL flush.
    let progress = if crate::support::on_postgres() { 20 } else { 100 };
    assert!(acked.len() > progress, "the stream made progress ({} acks)", acked.len());
}

/// Retention: old events and finished tasks move to JSON Lines files in the archive, synced
/// before they leave the database; what is still open, depended on or newest stays, and no id
/// is given out twice afterwards.
#[test]
fn gc_archives_old_events_and_finished_tasks_and_keeps_the_rest() {
    let mut d = Daemon::start();
    let s = d.session("worker");
    let base = d.task("base", &[]);
    let top = d.task("top", &["--depends-on", &base.to_string()]);
    let open = d.task("still open", &[]);
    let solo = d.task("solo", &[]);
    let newest = d.task("newest", &[]);
    for t in [base, top, solo, newest] {
        d.ok(&["task", "start", &t.to_string(), "--session", &s]);
        d.ok(&["task", "done", &t.to_string(), "--session", &s, "--result", "shipped"]);
    }
    let last_event = d.ok(&["events", "-n", "1"])["events"][0]["id"].as_i64().unwrap();
    std::thread::sleep(Duration::from_millis(30));

    // The configured retention (30 days) finds nothing; a dry run with an age moves nothing.
    assert_eq!(d.ok(&["gc"])["tasks"], 0);
    let dry = d.ok(&["gc", "--dry-run", "--older-than", "10ms"]);
    assert_eq!((dry["events"].as_i64(), dry["tasks"].as_i64(), dry["dry_run"].as_bool()), (Some(last_event - 1), Some(2), Some(true)));
    assert!(d.ok(&["task", "show", &top.to_string()])["id"].is_i64(), "a dry run moves nothing");

    let done = d.ok(&["gc", "--older-than", "10ms"]);
    assert_eq!(done["tasks"], 3, "top and solo, then base once its dependent went: {done}");
    assert_eq!(done["events"].as_i64(), Some(last_event - 1), "every event but the newest");
    for gone in [base, top, solo] {
        let err = d.err(&["task", "show", &gone.to_string()]);
        assert!(err.contains("not found") || err.contains("no task"), "{err}");
    }
    assert_eq!(d.ok(&["task", "show", &open.to_string()])["status"], "pending");
    assert_eq!(d.ok(&["task", "show", &newest.to_string()])["status"], "done", "the newest task stays");
    let left = d.ok(&["events"]);
    assert_eq!(left["events"].as_array().unwrap().len(), 1);
    assert_eq!(left["events"][0]["id"].as_i64(), Some(last_event));

    // The archive holds every row, readable JSON, with the tasks' history.
    let archive = d.home.join("archive");
    let tasks: Vec<serde_json::Value> =
        std::fs::read_to_string(archive.join("tasks.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let ids: Vec<i64> = tasks.iter().map(|t| t["task"]["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 3);
    for id in [base, top, solo] {
        assert!(ids.contains(&id), "task {id} archived: {ids:?}");
    }
    let solo_rec = tasks.iter().find(|t| t["task"]["id"] == solo).unwrap();
    assert_eq!(solo_rec["task"]["result"], "shipped");
    assert_eq!(solo_rec["history"].as_array().unwrap().len(), 3, "pending, active, done: {solo_rec}");
    let events = std::fs::read_to_string(archive.join("events.jsonl")).unwrap();
    assert_eq!(events.lines().count() as i64, last_event - 1);
    assert!(events.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"].is_string()));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(archive.join("tasks.jsonl")).unwrap().permissions().mode() & 0o777, 0o600);

    // Nothing more to do; ids continue after a restart.
    assert_eq!(d.ok(&["gc", "--older-than", "10ms"])["tasks"], 0);
    d.restart();
    assert!(d.task("after", &[]) > newest, "no task id is given out twice");
    let ev = d.ok(&["events", "-n", "1"])["events"][0]["id"].as_i64().unwrap();
    assert!(ev > last_event, "event ids continue: {ev} after {last_event}");
}

/// A retention in kite.toml is a duration or "forever"; anything else stops the daemon with a
/// message naming the key.
#[test]
fn a_bad_retention_in_kite_toml_is_refused_with_the_key() {
    let mut d = Daemon::start();
    std::fs::write(d.home.join("kite.toml"), "[store]\nkeep_events = \"a month\"\n").unwrap();
    let err = d.err(&["gc"]);
    assert!(err.contains("keep_events") && err.contains("forever"), "{err}");
    std::fs::write(d.home.join("kite.toml"), "[store]\nkeep_events = \"forever\"\nkeep_tasks = \"12h\"\n").unwrap();
    d.restart();
    let r = d.ok(&["gc"]);
    assert!(r["events_older_than_secs"].is_null(), "{r}");
    assert_eq!(r["tasks_older_than_secs"], 12 * 3600);
}

/// The daemon gives the WAL's space back when it goes quiet (the owner truncates it after a tick
/// with no request), and nothing committed is lost by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_daemon_truncates_its_wal_and_keeps_every_task() {
    if crate::support::on_postgres() {
        return; // SQLite's WAL file: PostgreSQL's is the server's business.
    }
    let mut d = Daemon::start();
    let c = d.client().await;
    for i in 0..500 {
        let args = TaskCreate { title: format!("t{i}"), body: "x".repeat(2_000), ..Default::default() };
        c.call::<_, TaskCreated>("task.create", args).await.unwrap();
    }
    let wal = d.home.join("kite.db-wal");
    assert!(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) > 0, "the creations went through the WAL");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) > 0 {
        assert!(std::time::Instant::now() < deadline, "the WAL was not truncated after the daemon went quiet");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(c);
    d.restart();
    let all = d.ok(&["task", "list", "--all"]);
    assert_eq!(all["tasks"].as_array().map(Vec::len), Some(500), "every task survived");
}

#[test]
fn kite_gc_refuses_a_bad_age_and_says_what_it_expects() {
    let d = Daemon::start();
    let err = d.err(&["gc", "--older-than", "a while"]);
    assert!(err.contains("--older-than") && err.contains("30m"), "{err}");
}
