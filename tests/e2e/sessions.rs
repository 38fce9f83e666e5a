//! Sessions: heartbeats, the reaper, and what a dropped connection does (nothing, until the
//! timeout).

use crate::support::Daemon;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn the_reaper_hands_a_dead_sessions_lock_to_the_waiter_and_requeues_its_task() {
    let d = Daemon::start_with(&["--heartbeat-timeout", "1"]);
    let dead = d.session("dead");
    let alive = d.session("alive");
    let t = d.task("t", &[]);
    d.ok(&["task", "start", &t.to_string(), "--session", &dead]);
    d.ok(&["lock", "acquire", "src/main.rs", "--session", &dead]);
    // The waiter keeps its own session alive while it waits.
    let hb = {
        let root = d.root.clone();
        let alive = alive.clone();
        std::thread::spawn(move || {
            for _ in 0..8 {
                std::process::Command::new(crate::support::KITE)
                    .args(["session", "heartbeat", &alive])
                    .current_dir(&root)
                    .output()
                    .unwrap();
                std::thread::sleep(Duration::from_millis(250));
            }
        })
    };
    let started = Instant::now();
    let out = d.cli(&["lock", "acquire", "src/main.rs", "--session", &alive, "--wait", "--timeout", "10", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let g: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((g["session"].as_str(), g["token"].as_u64()), (Some(alive.as_str()), Some(2)));
    assert!(started.elapsed() >= Duration::from_millis(900), "granted before the timeout");
    hb.join().unwrap();
    let shown = d.ok(&["task", "show", &t.to_string()]);
    assert_eq!((shown["status"].as_str(), shown["attempts"].as_u64()), (Some("pending"), Some(1)));
    let sessions = d.ok(&["session", "list"]);
    let state = sessions["sessions"].as_array().unwrap().iter().find(|s| s["id"] == dead.as_str()).unwrap()["state"].clone();
    assert_eq!(state, "reaped");
    // The reaped session cannot come back to finish anything.
    assert!(d.err(&["session", "heartbeat", &dead]).contains("reaped"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_not_reaped_before_the_timeout() {
    let d = Daemon::start_with(&["--heartbeat-timeout", "3"]);
    let id = {
        let c = d.client().await;
        let r: serde_json::Value = c.call("session.register", json!({"name": "flaky"})).await.unwrap();
        c.call::<_, serde_json::Value>("lock.acquire", json!({"path": "a", "session": r["id"]})).await.unwrap();
        r["id"].as_str().unwrap().to_string()
    }; // connection dropped here
    // Come back on a new connection well within the timeout: still the holder.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = d.client().await;
    let _: serde_json::Value = c.call("session.attach", json!({"session": id})).await.unwrap();
    let locks = d.ok(&["lock", "list"]);
    assert_eq!(locks["held"][0]["session"], id.as_str());
}

#[test]
fn heartbeats_keep_a_session_alive_past_the_timeout() {
    let d = Daemon::start_with(&["--heartbeat-timeout", "1"]);
    let s = d.session("steady");
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(300));
        d.ok(&["session", "heartbeat", &s]);
    }
    let list = d.ok(&["session", "list"]);
    assert_eq!(list["sessions"][0]["state"], "live");
}

#[test]
fn events_follow_streams_what_happens() {
    let d = Daemon::start();
    d.task("before", &[]);
    let mut follow = d.cli_cmd(&["events", "--follow", "--json"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["kind"], "task.created");
    d.task("after", &[]);
    d.ok(&["broadcast", "hello all"]);
    let next: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!((next["kind"].as_str(), next["data"]["title"].as_str()), (Some("task.created"), Some("after")));
    let next: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!((next["kind"].as_str(), next["data"]["message"].as_str()), (Some("broadcast"), Some("hello all")));
    follow.kill().unwrap();
    follow.wait().unwrap();
}
