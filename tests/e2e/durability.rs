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
    assert!(acked.len() > 100, "the stream made progress ({} acks)", acked.len());
}
