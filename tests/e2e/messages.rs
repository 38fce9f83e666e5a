//! Broadcasts reach every connected session and are logged.

use crate::support::Daemon;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_reaches_every_connected_session_and_is_logged() {
    let d = Daemon::start();
    let mut listeners = Vec::new();
    for i in 0..3 {
        let c = d.client().await;
        let _: Value = c.call("session.register", json!({"name": format!("l{i}")})).await.unwrap();
        let pushes = c.take_pushes().unwrap();
        listeners.push((c, pushes));
    }
    let out = d.ok(&["broadcast", "main is frozen for the release", "--from", "lead"]);
    assert_eq!(out["delivered"], 3);
    for (_c, pushes) in &mut listeners {
        let p = tokio::time::timeout(std::time::Duration::from_secs(5), pushes.recv()).await.unwrap().unwrap();
        assert_eq!(p.push, "broadcast");
        assert_eq!(p.data["message"], "main is frozen for the release");
    }
    let events = d.ok(&["events"]);
    let last = events["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["kind"].as_str(), last["data"]["from"].as_str()), (Some("broadcast"), Some("lead")));
    assert!(d.err(&["broadcast", "  "]).contains("needs a message"));
}

/// Event rows are written at the end of a batch; a read of the log sent right behind a change
/// (same connection, no waiting, so usually the same batch) still sees the change's event, and the
/// ids stay dense and increasing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_log_shows_a_change_to_a_read_sent_right_behind_it() {
    let d = Daemon::start();
    let c = d.client().await;
    for round in 0..20 {
        let title = format!("pipelined {round}");
        let (created, events) = tokio::join!(
            c.call::<_, Value>("task.create", json!({"title": title})),
            c.call::<_, Value>("events.list", json!({"limit": 5}))
        );
        let id = created.unwrap()["id"].as_i64().unwrap();
        let events = events.unwrap();
        let seen = events["events"].as_array().unwrap().iter().any(|e| e["kind"] == "task.created" && e["data"]["task"] == id);
        assert!(seen, "round {round}: the read did not see task {id}'s event: {events}");
    }
    let all = d.ok(&["events", "--limit", "1000"]);
    let ids: Vec<i64> = all["events"].as_array().unwrap().iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "event ids are dense and increasing: {ids:?}");
}
