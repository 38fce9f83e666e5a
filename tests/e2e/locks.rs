//! Locks: pushed grants, FIFO, fencing tokens, modes, directories and globs, deadlocks, paths.

use crate::support::Daemon;
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn a_waiter_returns_a_fraction_of_a_second_after_the_release() {
    waiter_returns_soon_after_release(Daemon::start());
}

/// The same with `--sync full`: the grant waits for the WAL's fsync, on the syncer thread.
#[test]
fn with_sync_full_a_waiter_returns_a_fraction_of_a_second_after_the_release() {
    waiter_returns_soon_after_release(Daemon::start_with(&["--sync", "full"]));
}

fn waiter_returns_soon_after_release(d: Daemon) {
    let a = d.session("a");
    let b = d.session("b");
    let g = d.ok(&["lock", "acquire", "src/lib.rs", "--session", &a]);
    assert_eq!(g["token"], 1);
    let waiter = d
        .cli_cmd(&["lock", "acquire", "src/lib.rs", "--session", &b, "--wait", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the request is queued (visible in the lock list), then release.
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.ok(&["lock", "list"])["waiting"].as_array().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the waiter never queued");
        std::thread::sleep(Duration::from_millis(10));
    }
    let released = Instant::now();
    d.ok(&["lock", "release", "src/lib.rs", "--session", &a]);
    let out = waiter.wait_with_output().unwrap();
    let after = released.elapsed();
    assert!(out.status.success());
    let g: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((g["path"].as_str(), g["token"].as_u64(), g["session"].as_str()), (Some("src/lib.rs"), Some(2), Some(b.as_str())));
    // Generous bound: the grant is pushed, not polled; this only catches a polling regression.
    assert!(after < Duration::from_millis(900), "waiter took {after:?} after the release");
}

#[test]
fn without_wait_a_held_lock_is_refused_naming_the_holder_and_tokens_grow_per_path() {
    let d = Daemon::start();
    let a = d.session("a");
    let b = d.session("b");
    d.ok(&["lock", "acquire", "src/x.rs", "--session", &a]);
    let err = d.err(&["lock", "acquire", "./src/../src/x.rs", "--session", &b]);
    assert!(err.contains("held by") && err.contains(&a), "{err}");
    let mut last = 1;
    for _ in 0..3 {
        d.ok(&["lock", "release", "src/x.rs", "--session", &a]);
        let t = d.ok(&["lock", "acquire", "src/x.rs", "--session", &a])["token"].as_u64().unwrap();
        assert!(t > last);
        last = t;
    }
    assert_eq!(d.ok(&["lock", "acquire", "src/y.rs", "--session", &a])["token"], 1, "tokens count per path");
    assert!(d.err(&["lock", "release", "src/y.rs", "--session", &b]).contains("does not hold"));
}

#[test]
fn shared_locks_coexist_and_directories_and_globs_cover_their_files() {
    let d = Daemon::start();
    let a = d.session("a");
    let b = d.session("b");
    d.ok(&["lock", "acquire", "docs/guide.md", "--session", &a, "--shared"]);
    d.ok(&["lock", "acquire", "docs/guide.md", "--session", &b, "--shared"]);
    assert!(d.err(&["lock", "acquire", "docs", "--session", &b]).contains("held by"));
    d.ok(&["lock", "acquire", "src/**/*.rs", "--session", &a]);
    assert!(d.err(&["lock", "acquire", "src/deep/mod.rs", "--session", &b]).contains("held by"));
    d.ok(&["lock", "acquire", "src/README.md", "--session", &b]);
    // Relative to where the command runs, normalized to the root.
    let out = d.cli_in(&d.root.join("src"), &["lock", "acquire", "../tests/t.rs", "--session", &b, "--json"]);
    let g: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(g["path"], "tests/t.rs");
}

#[test]
fn paths_outside_the_project_are_refused() {
    let d = Daemon::start();
    let a = d.session("a");
    for p in ["../elsewhere", "/etc/passwd", "src/../../x"] {
        let err = d.err(&["lock", "acquire", p, "--session", &a]);
        assert!(err.contains("outside the project root"), "{p}: {err}");
    }
    assert!(d.err(&["lock", "acquire", "src/[bad", "--session", &a]).contains("bad glob"));
    // A task's declared files follow the same rule, and a refused task is not created.
    assert!(d.err(&["task", "create", "--title", "t", "--file", "../../etc/hosts"]).contains("outside the project root"));
    assert_eq!(d.ok(&["task", "list"])["tasks"], json!([]));
    assert_eq!(d.ok(&["lock", "list"])["held"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_that_would_deadlock_is_refused_naming_the_cycle() {
    let d = Daemon::start();
    let a = d.session("a");
    let b = d.session("b");
    d.ok(&["lock", "acquire", "x", "--session", &a]);
    d.ok(&["lock", "acquire", "y", "--session", &b]);
    let c = d.client().await;
    let a2 = a.clone();
    let pending = tokio::spawn(async move {
        c.call::<_, Value>("lock.acquire", json!({"path": "y", "session": a2, "wait": true})).await
    });
    while d.ok(&["lock", "list"])["waiting"].as_array().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let err = d.err(&["lock", "acquire", "x", "--session", &b, "--wait"]);
    assert!(err.contains("deadlock") && err.contains(&format!("{b} → {a} → {b}")), "{err}");
    // The lock list remembers the refusal and its cycle (the dashboard shows it); no lock changed.
    let list = d.ok(&["lock", "list"]);
    assert_eq!(list["deadlocks"][0]["cycle"], json!([b, a, b]), "{list}");
    assert_eq!(list["deadlocks"][0]["session"], b.as_str());
    assert_eq!(list["held"].as_array().unwrap().len(), 2);
    // b gives up y; a's wait is granted.
    d.ok(&["lock", "release", "y", "--session", &b]);
    let g = pending.await.unwrap().unwrap();
    assert_eq!(g["session"], a.as_str());
}

#[test]
fn a_wait_times_out_with_a_clear_error_and_leaves_the_queue() {
    let d = Daemon::start();
    let a = d.session("a");
    let b = d.session("b");
    d.ok(&["lock", "acquire", "f", "--session", &a]);
    let err = d.err(&["lock", "acquire", "f", "--session", &b, "--wait", "--timeout", "0.2"]);
    assert!(err.contains("timed out"), "{err}");
    assert_eq!(d.ok(&["lock", "list"])["waiting"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_waiters_are_served_first_come_first_served() {
    let d = Daemon::start();
    let holder = d.session("holder");
    d.ok(&["lock", "acquire", "hot", "--session", &holder]);
    let mut order = Vec::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..8 {
        let c = d.client().await;
        let s: Value = c.call("session.register", json!({"name": format!("w{i}")})).await.unwrap();
        let id = s["id"].as_str().unwrap().to_string();
        order.push(id.clone());
        let tx = tx.clone();
        tokio::spawn(async move {
            let g: Value = c.call("lock.acquire", json!({"path": "hot", "session": id, "wait": true})).await.unwrap();
            tx.send((id.clone(), g["token"].as_u64().unwrap(), c)).unwrap();
        });
        // Make the arrival order certain.
        while d.ok(&["lock", "list"])["waiting"].as_array().unwrap().len() < i + 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut releaser = holder;
    let mut got = Vec::new();
    for _ in 0..8 {
        d.ok(&["lock", "release", "hot", "--session", &releaser]);
        let (id, token, c) = rx.recv().await.unwrap();
        got.push((id.clone(), token));
        releaser = id;
        drop(c);
    }
    let want: Vec<(String, u64)> = order.into_iter().zip(2..).collect();
    assert_eq!(got, want);
}

/// Regression (torture run, finding 7): a lock path is the file it names, not its spelling.
#[test]
fn a_symbolic_link_is_the_file_it_points_to_and_a_link_out_is_refused() {
    let d = Daemon::start();
    std::fs::write(d.root.join("src/a.rs"), "fn a() {}\n").unwrap();
    std::os::unix::fs::symlink(d.root.join("src"), d.root.join("alias")).unwrap();
    std::os::unix::fs::symlink("/etc", d.root.join("link_out")).unwrap();
    let s1 = d.session("one");
    let s2 = d.session("two");
    let g = d.ok(&["lock", "acquire", "src/a.rs", "--session", &s1]);
    assert_eq!(g["path"], "src/a.rs");
    let err = d.err(&["lock", "acquire", "alias/a.rs", "--session", &s2]);
    assert!(err.contains("src/a.rs") && err.contains(&s1), "the same file through a link is held: {err}");
    let err = d.err(&["lock", "acquire", "link_out/passwd", "--session", &s2]);
    assert!(err.contains("outside the project") && err.contains("symbolic link"), "{err}");
    let err = d.err(&["lock", "acquire", "src/{a,../../x}", "--session", &s2]);
    assert!(err.contains("may not contain `..`"), "{err}");
}

/// Waiters keep their first-come order across a daemon's death: each wait is recorded with when
/// it queued, the new daemon keeps their places, and each waiting `kite lock acquire --wait`
/// asks again once a daemon answers and takes its own place back (a newcomer stays behind). On
/// PostgreSQL the restart is a take-over of the store's lease.
#[test]
fn waiters_keep_their_first_come_order_across_a_kill_9_and_a_restart() {
    let mut d = Daemon::start();
    let (a, b, c, x) = (d.session("a"), d.session("b"), d.session("c"), d.session("x"));
    d.ok(&["lock", "acquire", "f", "--session", &a]);
    let waiting = |d: &Daemon| -> Vec<String> {
        d.ok(&["lock", "list"])["waiting"].as_array().unwrap().iter().map(|w| w["session"].as_str().unwrap().to_string()).collect()
    };
    let wait_for = |d: &Daemon, who: &[&String]| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while waiting(d) != who.iter().map(|s| s.to_string()).collect::<Vec<_>>() {
            assert!(Instant::now() < deadline, "waiting: {:?}, expected {who:?}", waiting(d));
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let ask = |d: &Daemon, s: &str| {
        d.cli_cmd(&["lock", "acquire", "f", "--session", s, "--wait", "--json"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    };
    let got = |w: std::process::Child| -> String {
        let out = w.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["session"].as_str().unwrap().to_string()
    };
    let b_waits = ask(&d, &b);
    wait_for(&d, &[&b]);
    let c_waits = ask(&d, &c);
    wait_for(&d, &[&b, &c]);

    d.kill9();
    d.restart();
    // The new daemon kept both places, in order, and a newcomer queues behind them whether or
    // not their clients have asked again yet.
    let x_waits = ask(&d, &x);
    wait_for(&d, &[&b, &c, &x]);
    // The holder lets go: b's turn (at once if its client is back, else when it asks again).
    d.ok(&["lock", "release", "f", "--session", &a]);
    assert_eq!(got(b_waits), b);
    d.ok(&["lock", "release", "f", "--session", &b]);
    assert_eq!(got(c_waits), c);
    d.ok(&["lock", "release", "f", "--session", &c]);
    assert_eq!(got(x_waits), x);
    // Nothing is left waiting, in memory or on record.
    assert!(waiting(&d).is_empty());
    d.kill9();
    d.restart();
    assert!(waiting(&d).is_empty(), "a granted wait came back");
}
