//! Tasks: dependencies, cycles, claims, fencing, races.

use crate::support::Daemon;
use kite_proto::ops::{Claim, TaskNext};
use serde_json::json;

#[test]
fn a_task_cannot_start_before_its_dependencies_are_done_and_the_refusal_names_them() {
    let d = Daemon::start();
    let s = d.session("w");
    let a = d.task("write the parser", &[]);
    let b = d.task("test the parser", &["--depends-on", &a.to_string()]);
    let err = d.err(&["task", "start", &b.to_string(), "--session", &s]);
    assert!(err.contains("blocked") && err.contains(&format!("{a} 'write the parser' (pending)")), "{err}");
    // Nothing changed.
    assert_eq!(d.ok(&["task", "show", &b.to_string()])["status"], "pending");
    d.ok(&["task", "start", &a.to_string(), "--session", &s]);
    d.ok(&["task", "done", &a.to_string(), "--session", &s, "--result", "parsed"]);
    let claim = d.ok(&["task", "start", &b.to_string(), "--session", &s]);
    assert_eq!(claim["task"]["status"], "active");
}

#[test]
fn unknown_dependencies_and_cycles_are_refused_naming_the_cycle() {
    let d = Daemon::start();
    let err = d.err(&["task", "create", "--title", "x", "--depends-on", "42"]);
    assert!(err.contains("unknown task") && err.contains("42"), "{err}");
    assert_eq!(d.ok(&["task", "list"])["tasks"].as_array().unwrap().len(), 0, "the refused task was not created");
    let a = d.task("a", &[]);
    let b = d.task("b", &["--depends-on", &a.to_string()]);
    let c = d.task("c", &["--depends-on", &b.to_string()]);
    let err = d.err(&["task", "depend", &a.to_string(), "--on", &c.to_string()]);
    assert!(err.contains(&format!("{a} → {c} → {b} → {a}")), "{err}");
    let err = d.err(&["task", "depend", &a.to_string(), "--on", &a.to_string()]);
    assert!(err.contains("cycle"), "{err}");
    assert!(d.err(&["task", "depend", &a.to_string(), "--on", "999"]).contains("no task 999"));
    // A later dependency that closes no cycle is fine and blocks the start.
    let e = d.task("e", &[]);
    d.ok(&["task", "depend", &e.to_string(), "--on", &c.to_string()]);
    let s = d.session("w");
    assert!(d.err(&["task", "start", &e.to_string(), "--session", &s]).contains(&format!("{c} 'c'")));
    assert_eq!(d.ok(&["task", "show", &a.to_string()])["dependents"], json!([b]));
}

#[test]
fn next_claims_the_best_ready_task_and_show_has_the_history() {
    let d = Daemon::start();
    let s = d.session("w");
    let low = d.task("low", &["--priority", "1"]);
    let high = d.task("high", &["--priority", "5"]);
    let blocked = d.task("blocked", &["--priority", "9", "--depends-on", &low.to_string()]);
    let c = d.ok(&["task", "next", "--session", &s]);
    assert_eq!(c["task"]["id"], high);
    let c = d.ok(&["task", "next", "--session", &s]);
    assert_eq!(c["task"]["id"], low);
    assert_eq!(d.ok(&["task", "next", "--session", &s]), json!(null), "{blocked} is blocked");
    d.ok(&["task", "fail", &low.to_string(), "--session", &s, "--reason", "flaky network", "--transient"]);
    let shown = d.ok(&["task", "show", &low.to_string()]);
    assert_eq!(shown["status"], "pending");
    assert_eq!(shown["attempts"], 1);
    let c = d.ok(&["task", "next", "--session", &s]);
    assert_eq!(c["task"]["id"], low);
    assert_eq!(c["task"]["attempts"], 2);
    d.ok(&["task", "fail", &low.to_string(), "--session", &s, "--reason", "really broken"]);
    let shown = d.ok(&["task", "show", &low.to_string()]);
    assert_eq!(shown["status"], "failed");
    assert_eq!(shown["reason"], "really broken");
    let moves: Vec<String> = shown["history"].as_array().unwrap().iter().map(|h| h["to"].as_str().unwrap().to_string()).collect();
    assert_eq!(moves, ["pending", "active", "pending", "active", "failed"]);
    // Terminal states stay terminal.
    assert!(d.err(&["task", "prune", &low.to_string()]).contains("failed task cannot become pruned"));
    d.ok(&["task", "prune", &blocked.to_string(), "--reason", "superseded by a better plan"]);
    let shown = d.ok(&["task", "show", &blocked.to_string()]);
    assert_eq!((shown["status"].as_str(), shown["reason"].as_str()), (Some("pruned"), Some("superseded by a better plan")));
    let status = d.ok(&["status"]);
    assert_eq!(status["counters"], json!({"completed": 0, "pruned": 1, "failed": 1}));
}

#[test]
fn only_the_current_claim_may_finish_a_task() {
    let d = Daemon::start();
    let a = d.session("a");
    let b = d.session("b");
    let t = d.task("t", &[]);
    let first = d.ok(&["task", "start", &t.to_string(), "--session", &a]);
    let err = d.err(&["task", "done", &t.to_string(), "--session", &b]);
    assert!(err.contains("held by") && err.contains(&a), "{err}");
    // a's session ends: the task goes back; b takes over; a's late done is refused.
    d.ok(&["session", "end", &a]);
    let second = d.ok(&["task", "start", &t.to_string(), "--session", &b]);
    assert!(second["claim"].as_u64() > first["claim"].as_u64());
    let err = d.err(&["task", "done", &t.to_string(), "--session", &a]);
    assert!(err.contains("cannot be finished by"), "{err}");
    // A stale claim token from the same session is refused too.
    let stale = first["claim"].to_string();
    assert!(d.err(&["task", "done", &t.to_string(), "--session", &b, "--claim", &stale]).contains("superseded"));
    d.ok(&["task", "done", &t.to_string(), "--session", &b, "--claim", &second["claim"].to_string(), "--result", "ok"]);
    assert_eq!(d.ok(&["task", "show", &t.to_string()])["result"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_many_sessions_race_for_tasks_each_is_claimed_exactly_once() {
    let d = Daemon::start();
    for i in 0..10 {
        d.task(&format!("t{i}"), &[]);
    }
    let mut joins = Vec::new();
    for i in 0..24 {
        let c = d.client().await;
        joins.push(tokio::spawn(async move {
            let s: kite_proto::ops::SessionId =
                c.call("session.register", json!({"name": format!("racer{i}")})).await.unwrap();
            let mut won = Vec::new();
            while let Some(claim) = c
                .call::<_, Option<Claim>>("task.next", TaskNext { session: s.id.clone(), workstream: None })
                .await
                .unwrap()
            {
                won.push(claim.task.id);
            }
            won
        }));
    }
    let mut all = Vec::new();
    for j in joins {
        all.extend(j.await.unwrap());
    }
    all.sort();
    assert_eq!(all, (1..=10).collect::<Vec<i64>>());
}

/// Regression (torture run, finding 6): list replies are pages under the frame cap; the CLI
/// pages through them; `kite task list` shows open tasks unless asked for more.
#[test]
fn task_lists_are_paged_under_the_frame_cap() {
    use std::io::{BufRead, BufReader, Write};
    let d = Daemon::start_with(&["--no-memory", "--tick", "0"]);
    let mut s = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let n = 260;
    let body = "x".repeat(10_000);
    for i in 0..n {
        let f = serde_json::json!({"id": i, "op": "task.create", "args": {"title": format!("t{i}"), "body": body}});
        s.write_all(format!("{f}\n").as_bytes()).unwrap();
    }
    for _ in 0..n {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.contains("\"ok\":true"), "{line}");
    }
    let mut ask = |f: serde_json::Value| {
        s.write_all(format!("{f}\n").as_bytes()).unwrap();
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.len() <= kite_proto::MAX_FRAME, "a reply of {} bytes", line.len());
        serde_json::from_str::<serde_json::Value>(&line).unwrap()
    };
    let page = ask(serde_json::json!({"id": 1, "op": "task.list"}));
    let got = page["result"]["tasks"].as_array().unwrap().len();
    assert!(got < 200, "10 KB bodies: the page is cut by size, not at 200 ({got})");
    let next = page["result"]["next"].as_i64().expect("a cursor to the rest");
    let second = ask(serde_json::json!({"id": 2, "op": "task.list", "args": {"after": next, "limit": 3}}));
    assert_eq!(second["result"]["tasks"][0]["id"], next + 1, "{second}");
    assert_eq!(second["result"]["tasks"].as_array().unwrap().len(), 3);
    let refused = ask(serde_json::json!({"id": 3, "op": "task.list", "args": {"limit": 1_000_000}}));
    assert_eq!(refused["error"]["code"], "bad_request", "{refused}");
    // The CLI pages through everything; finished tasks only with --all.
    let sid = d.session("w");
    d.ok(&["task", "start", "1", "--session", &sid]);
    d.ok(&["task", "done", "1", "--session", &sid]);
    let open = d.ok(&["task", "list"]);
    assert_eq!(open["tasks"].as_array().unwrap().len(), n - 1);
    assert!(open["tasks"].as_array().unwrap().iter().all(|t| t["status"] != "done"));
    let all = d.ok(&["task", "list", "--all"]);
    assert_eq!(all["tasks"].as_array().unwrap().len(), n);
    let events = d.ok(&["events", "--since", "0"]);
    assert!(events["events"].as_array().unwrap().len() > n, "every event since 0");
}
