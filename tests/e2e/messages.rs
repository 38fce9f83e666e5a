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
