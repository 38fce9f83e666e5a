//! Bad input on the socket gets a clear error and changes nothing; a silent client stalls no one.

use crate::support::Daemon;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn raw(d: &Daemon) -> (UnixStream, BufReader<UnixStream>) {
    let s = UnixStream::connect(d.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let r = BufReader::new(s.try_clone().unwrap());
    (s, r)
}

fn send(s: &mut UnixStream, r: &mut BufReader<UnixStream>, line: &[u8]) -> Value {
    s.write_all(line).unwrap();
    s.write_all(b"\n").unwrap();
    let mut buf = String::new();
    r.read_line(&mut buf).unwrap();
    serde_json::from_str(&buf).unwrap_or_else(|e| panic!("bad reply {buf:?}: {e}"))
}

#[test]
fn malformed_unknown_and_oversized_frames_get_errors_and_the_connection_lives_on() {
    let d = Daemon::start();
    let (mut s, mut r) = raw(&d);
    let v = send(&mut s, &mut r, b"{this is not json");
    assert_eq!((v["ok"].as_bool(), v["error"]["code"].as_str()), (Some(false), Some("bad_request")));
    let v = send(&mut s, &mut r, br#"{"id": 3, "op": "task.explode"}"#);
    assert_eq!((v["id"].as_u64(), v["error"]["code"].as_str()), (Some(3), Some("unknown_op")));
    assert!(v["error"]["message"].as_str().unwrap().contains("task.explode"));
    let v = send(&mut s, &mut r, br#"{"id": 4, "op": "task.create", "args": {"title": 5}}"#);
    assert_eq!(v["error"]["code"], "bad_request");
    assert!(v["error"]["message"].as_str().unwrap().contains("task.create"));
    let v = send(&mut s, &mut r, br#"{"id": 5, "op": "task.create", "args": {"title": "x", "surprise": 1}}"#);
    assert_eq!(v["error"]["code"], "bad_request", "unknown fields are refused: {v}");
    let v = send(&mut s, &mut r, br#"{"id": 6, "op": "task.show", "args": {"task": 77}}"#);
    assert_eq!(v["error"]["code"], "not_found");
    let v = send(&mut s, &mut r, br#"{"id": 7, "op": "task.start", "args": {"task": 1, "session": "nobody"}}"#);
    assert_eq!(v["error"]["code"], "not_found");
    assert!(v["error"]["message"].as_str().unwrap().contains("kite session register"), "says what to do: {v}");
    let huge = format!(r#"{{"id": 8, "op": "task.create", "args": {{"title": "{}"}}}}"#, "x".repeat(2 << 20));
    let v = send(&mut s, &mut r, huge.as_bytes());
    assert_eq!(v["error"]["code"], "too_large");
    let v = send(&mut s, &mut r, br#"{"id": 9, "op": "hello"}"#);
    assert_eq!((v["id"].as_u64(), v["ok"].as_bool(), v["result"]["protocol"].as_u64()), (Some(9), Some(true), Some(1)));
    // None of it changed anything.
    assert_eq!(d.ok(&["task", "list"])["tasks"], serde_json::json!([]));
    assert_eq!(d.ok(&["events"])["events"], serde_json::json!([]));
}

#[test]
fn a_client_that_says_nothing_stalls_no_one() {
    let d = Daemon::start();
    let silent: Vec<UnixStream> = (0..20).map(|_| UnixStream::connect(d.socket()).unwrap()).collect();
    let (mut half, _r) = raw(&d);
    half.write_all(br#"{"id": 1, "op": "sta"#).unwrap(); // half a frame, never finished
    let s = d.session("busy");
    d.task("still works", &[]);
    d.ok(&["lock", "acquire", "f", "--session", &s]);
    drop(silent);
}

#[test]
fn invalid_utf8_is_refused_and_the_daemon_goes_on() {
    let d = Daemon::start();
    let (mut s, mut r) = raw(&d);
    let v = send(&mut s, &mut r, b"{\"id\": 1, \"op\": \"\xff\xfe\"}");
    assert_eq!(v["error"]["code"], "bad_request");
    d.task("fine", &[]);
}

#[test]
fn the_home_is_private_and_a_second_daemon_refuses_to_start() {
    let d = Daemon::start();
    let mode = std::fs::metadata(&d.home).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let out = d.cli(&["daemon"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already running") && err.contains(&d.pid().to_string()), "{err}");
    // The first one is unharmed.
    d.task("ok", &[]);
}

#[test]
fn a_command_without_a_daemon_says_how_to_start_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(crate::support::KITE)
        .args(["status"])
        .current_dir(dir.path())
        .env_remove("KITE_HOME")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kite daemon"));
    let out = std::process::Command::new(crate::support::KITE).args(["task", "frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}

/// Regression (torture run, finding 8): the protocol is as strict as docs/PROTOCOL.md says.
#[test]
fn lax_requests_are_refused_and_create_nothing() {
    let d = Daemon::start();
    let (mut s, mut r) = raw(&d);
    for (line, why) in [
        (&br#"{"id": 1, "op": "hello", "args": {"surprise": 1}}"#[..], "unknown field"),
        (br#"{"id": 2, "op": "lock.list", "args": {"surprise": 1}}"#, "unknown field"),
        (br#"{"id": 3, "op": "task.create", "args": ["positional"]}"#, "must be a JSON object"),
        (br#"{"id": 4, "op": "task.create", "args": {"title": "first", "title": "second"}}"#, "duplicate field"),
        (br#"{"id": 5, "op": "task.create", "args": {"title": "nul \u0000 inside"}}"#, "NUL"),
        (br#"{"id": 6, "op": "status", "op": "hello"}"#, "duplicate field"),
    ] {
        let v = send(&mut s, &mut r, line);
        assert_eq!(v["error"]["code"], "bad_request", "{}: {v}", String::from_utf8_lossy(line));
        assert!(v["error"]["message"].as_str().unwrap().contains(why), "{}: {v}", String::from_utf8_lossy(line));
    }
    let tasks = d.ok(&["task", "list", "--status", "pending"]);
    assert_eq!(tasks["tasks"].as_array().unwrap().len(), 0, "nothing was created: {tasks}");
}

/// Regression (torture run, finding 9): a session that sends only refused requests is reaped.
#[test]
fn refused_requests_are_not_heartbeats() {
    let d = Daemon::start_with(&["--heartbeat-timeout", "0.5"]);
    let sid = d.session("noisy");
    let (mut s, mut r) = raw(&d);
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(1500) {
        // Refused every time: no such task.
        let line = format!(r#"{{"id": 1, "op": "task.start", "args": {{"task": 999, "session": "{sid}"}}}}"#);
        let v = send(&mut s, &mut r, line.as_bytes());
        if v["error"]["code"] == "session_gone" {
            return;
        }
        assert_eq!(v["error"]["code"], "not_found", "{v}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let sessions = d.ok(&["session", "list"]);
    let state = sessions["sessions"].as_array().unwrap().iter().find(|x| x["id"] == sid.as_str()).unwrap()["state"].clone();
    assert_eq!(state, "reaped", "a session sending only refused requests was kept alive: {sessions}");
}

/// CPU seconds a process has used (utime + stime from /proc, at 100 ticks per second).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

/// Regression (torture run, finding 4): out of file descriptors, the accept loop waits instead of
/// spinning, logs once per interval, and `kite status` says connections were refused.
#[test]
fn out_of_descriptors_the_daemon_backs_off_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir(root.join(".git")).unwrap();
    let kite = crate::support::KITE;
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n 64 && exec {kite} daemon --no-memory --tick 0"))
        .current_dir(&root)
        .env_remove("KITE_HOME")
        .env("KITE_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let sock = root.join(".kite/kite.sock");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while UnixStream::connect(&sock).is_err() {
        assert!(std::time::Instant::now() < deadline, "daemon did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut held = Vec::new();
    for _ in 0..100 {
        if let Ok(s) = UnixStream::connect(&sock) {
            held.push(s);
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_secs(child.id());
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_secs(child.id()) - before;
    assert!(used < 0.3, "the daemon spun for {used:.2} s of CPU in one second while out of descriptors");
    held.truncate(10);
    let out = std::process::Command::new(kite).args(["status", "--json"]).current_dir(&root).env_remove("KITE_HOME").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(status["refused"]["total"].as_u64().unwrap_or(0) > 0, "{status}");
    assert_eq!(status["refused"]["fd_limit"], 64, "{status}");
    let human = std::process::Command::new(kite).args(["status"]).current_dir(&root).env_remove("KITE_HOME").output().unwrap();
    assert!(String::from_utf8_lossy(&human.stdout).contains("connections refused"), "{}", String::from_utf8_lossy(&human.stdout));
    let log = std::fs::read_to_string(root.join(".kite/kite.log")).unwrap();
    let warnings = log.lines().filter(|l| l.contains("cannot accept")).count();
    assert!((1..=2).contains(&warnings), "{warnings} accept warnings: the log is flooded or silent");
    let _ = child.kill();
    let _ = child.wait();
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    kb / 1024.0
}

/// Regression (torture run, finding 3): a client that sends requests and never reads the
/// replies does not grow the daemon without bound, and others are served meanwhile.
#[test]
fn a_client_that_never_reads_is_held_back_not_buffered() {
    let d = Daemon::start_with(&["--no-memory", "--tick", "0"]);
    let (mut c, mut cr) = raw(&d);
    let create = serde_json::json!({"id": 1, "op": "task.create", "args": {"title": "big", "body": "b".repeat(900_000)}}).to_string();
    let v = send(&mut c, &mut cr, create.as_bytes());
    let id = v["result"]["id"].as_i64().unwrap_or_else(|| panic!("{v}"));
    let base = rss_mib(d.pid());
    let mut s = UnixStream::connect(d.socket()).unwrap();
    let writer = std::thread::spawn(move || {
        let line = format!("{{\"id\": 1, \"op\": \"task.show\", \"args\": {{\"task\": {id}}}}}\n");
        s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut sent = 0;
        for _ in 0..1500 {
            if s.write_all(line.as_bytes()).is_err() {
                break; // the daemon stopped reading us: backpressure
            }
            sent += 1;
        }
        (s, sent)
    });
    let (s, sent) = writer.join().unwrap();
    let peak = rss_mib(d.pid());
    assert!(peak - base < 200.0, "daemon RSS grew from {base:.0} to {peak:.0} MiB for one client that does not read");
    assert!(sent < 1500, "every request was read although no reply was");
    // A bystander is served at once.
    let t = std::time::Instant::now();
    let (mut b, mut br) = raw(&d);
    let v = send(&mut b, &mut br, br#"{"id": 9, "op": "hello"}"#);
    assert_eq!(v["ok"], true);
    assert!(t.elapsed() < Duration::from_secs(1), "a bystander waited {:?}", t.elapsed());
    // The client leaves: what was queued for it is given back.
    drop(s);
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_mib(d.pid());
    assert!(after - base < 60.0, "RSS {after:.0} MiB after the client left (base {base:.0})");
}
