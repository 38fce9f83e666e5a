//! The daemon's memory component on kite.sock: `memory.*` answered beside the state owner, with
//! every size a client gives bounded before it sizes anything.

use crate::support::{with_model, Daemon, KITE};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

/// Sends raw frames and reads one reply per frame (matched by id).
fn ask(d: &Daemon, frames: &[Value]) -> Vec<Value> {
    let mut s = UnixStream::connect(d.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    for f in frames {
        s.write_all(format!("{f}\n").as_bytes()).unwrap();
    }
    let mut r = BufReader::new(s);
    let mut out: Vec<Value> = Vec::new();
    while out.len() < frames.len() {
        let mut line = String::new();
        assert!(r.read_line(&mut line).unwrap() > 0, "the daemon closed the connection");
        let v: Value = serde_json::from_str(&line).unwrap();
        if v.get("id").is_some() {
            out.push(v);
        }
    }
    out.sort_by_key(|v| v["id"].as_u64());
    out
}

fn wait_memory(d: &Daemon) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = ask(d, &[json!({"id": 1, "op": "memory.recall", "args": {"query": "warm up", "k": 1}})]);
        if r[0]["ok"] == true {
            return;
        }
        assert!(Instant::now() < deadline, "memory never answered: {}", r[0]);
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn memory_is_served_on_kite_sock_and_a_huge_k_is_refused_not_allocated() {
    let d = Daemon::start();
    d.ok(&["vault", "add", "--title", "Queue durability", "--kind", "decision", "--body", "Replies are sent only after the SQLite commit."]);
    wait_memory(&d);
    assert!(!d.home.join("memory.sock").exists(), "memory has no socket of its own");

    let r = ask(
        &d,
        &[
            json!({"id": 1, "op": "memory.recall", "args": {"query": "x", "k": 1_000_000_000_000u64}}),
            json!({"id": 2, "op": "memory.recall", "args": {"query": "x", "k": 1u64 << 62}}),
            json!({"id": 3, "op": "memory.recall", "args": {"query": "x", "k": 0}}),
            json!({"id": 4, "op": "memory.recall", "args": {"query": "what keeps acknowledged work safe after a crash", "k": 3}}),
            json!({"id": 5, "op": "memory.recall", "args": {"query": "x", "k": 3, "extra": true}}),
            json!({"id": 6, "op": "hello"}),
        ],
    );
    for bad in &r[..3] {
        assert_eq!(bad["error"]["code"], "bad_request", "{bad}");
        assert!(bad["error"]["message"].as_str().unwrap().contains("between 1 and 100"), "{bad}");
    }
    assert_eq!(r[3]["ok"], true, "{}", r[3]);
    assert_eq!(r[3]["result"]["notes"][0]["title"], "Queue durability", "{}", r[3]);
    assert!(r[3]["result"]["notes"][0]["similarity"].as_f64().is_some(), "found by meaning: {}", r[3]);
    assert_eq!(r[4]["error"]["code"], "bad_request", "unknown args are refused: {}", r[4]);
    assert_eq!(r[5]["ok"], true, "the coordinator still answers");

    // memory.add writes a note file through the daemon's vault; an unknown memory op is named.
    let r = ask(
        &d,
        &[
            json!({"id": 1, "op": "memory.add", "args": {"title": "Deploys on Tuesdays", "body": "We deploy on Tuesdays only.", "kind": "decision"}}),
            json!({"id": 2, "op": "memory.nope"}),
        ],
    );
    assert_eq!(r[0]["ok"], true, "{}", r[0]);
    assert!(std::path::Path::new(r[0]["result"]["path"].as_str().unwrap()).is_file());
    assert_eq!(r[1]["error"]["code"], "unknown_op", "{}", r[1]);
    // Memory still answers after all of it.
    wait_memory(&d);

    // The CLI bounds k too, with an error instead of an abort.
    let out = with_model(&mut Command::new(KITE)).args(["vault", "search", "x", "-k", "1000000000000"]).current_dir(&d.root).env_remove("KITE_HOME").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("between 1 and 1000"), "{}", String::from_utf8_lossy(&out.stderr));
}
