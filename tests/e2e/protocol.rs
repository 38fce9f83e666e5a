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
