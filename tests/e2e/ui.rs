//! The dashboard in headless Chromium (Debian's package; `.ci/run` installs it), driven by
//! Playwright from the project's virtual environment: token, live updates, a lock's waiter,
//! messages and what sessions were told, stopping a session (refused read-only, then with
//! `[ui] actions = true`), a reconnect across a daemon restart. The browser side is
//! tests/ui/ui_test.py.

use crate::support::KITE;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn python() -> String {
    std::env::var("KITE_PYTHON").unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python").to_string())
}

fn kite(root: &Path, args: &[&str]) -> std::process::Output {
    Command::new(KITE).args(args).current_dir(root).env_remove("KITE_HOME").env("KITE_LOG", "warn").output().unwrap()
}

/// Stops the detached daemon however the test ends.
struct Stop<'a>(&'a Path);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        let _ = kite(self.0, &["daemon", "--stop"]);
    }
}

#[test]
fn the_dashboard_is_live_in_a_real_browser_and_refused_without_its_token() {
    let chromium = std::env::var("KITE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(Path::new(&chromium).exists(), "{chromium} is missing: `apt-get install chromium` (.ci/run does)");
    let dir = tempfile::Builder::new().prefix("kite-ui").tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let git = |args: &[&str]| assert!(Command::new("git").args(args).current_dir(&root).status().unwrap().success());
    git(&["init", "-q", "-b", "main"]);
    git(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "init"]);
    std::fs::create_dir_all(root.join("src")).unwrap();
    let out = kite(&root, &["daemon", "--detach", "--no-memory"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _stop = Stop(&root);
    for t in ["Plan the schema", "Write the migration"] {
        assert!(kite(&root, &["task", "create", "--title", t]).status.success());
    }

    let shot = root.join("shot.png");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ui/ui_test.py");
    let out = Command::new(python())
        .args([script, KITE, root.to_str().unwrap(), shot.to_str().unwrap()])
        .env_remove("KITE_HOME")
        .env("KITE_CHROMIUM", &chromium)
        .current_dir(&root)
        .output()
        .expect("run the Playwright test (make setup installs playwright)");
    assert!(out.status.success(), "ui test failed: {}\n{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    let last = out.stdout.rsplit(|b| *b == b'\n').find(|l| !l.is_empty()).unwrap();
    let v: Value = serde_json::from_slice(last).unwrap();
    assert_eq!(v["refused_without_token"], 403, "{v}");
    assert_eq!(v["refused_bad_token"], 403, "{v}");
    assert_eq!(v["browser_without_token"], 403, "{v}");
    assert!(v["quality"].as_str().unwrap_or_default().starts_with("0 landed, – on the first try"), "the quality panel: {v}");
    assert_eq!(v["action_refused"], 403, "read-only unless [ui] actions: {v}");
    // Live: the CLI's task and the lock's waiter appear within a second of the change.
    assert!(v["task_appeared_ms"].as_u64().unwrap() < 1000, "{v}");
    assert!(v["waiter_shown_ms"].as_u64().unwrap() < 1000, "{v}");
    assert!(v["wait_for_text"].as_str().unwrap().contains("wait-for"), "{v}");
    assert!(v["detail"].as_str().unwrap().contains("history:"), "{v}");
    assert_eq!(v["deadlock_refused"], true, "{v}");
    assert!(v["deadlock_text"].as_str().unwrap().contains(" → "), "the cycle is shown: {v}");
    assert_eq!(v["granted_shown"], true);
    // The messages view: a message with its recipient, a broadcast to everyone, newest first.
    assert!(v["message_shown_ms"].as_u64().unwrap() < 1000, "{v}");
    let (holder, waiter) = (v["holder"].as_str().unwrap(), v["waiter"].as_str().unwrap());
    assert!(v["message_to"].as_str().unwrap().starts_with(&format!("{waiter} waiter")), "to the waiter: {v}");
    assert!(v["message_row"].as_str().unwrap().contains(&format!("{holder} holder")), "from the holder: {v}");
    assert_eq!(v["broadcast_to"], "everyone", "{v}");
    assert_eq!(v["messages_newest_first"], true, "{v}");
    // What the waiter was told at its tool call.
    assert_eq!(v["hook_told"], true, "{v}");
    let told = v["told_shown"].as_str().unwrap();
    assert!(told.contains("Please rebase on main") && told.contains("main is frozen for the release"), "{v}");
    // Stopping a session: refused while read-only (no button, the daemon refuses, no order)...
    assert_eq!(v["stop_buttons_read_only"], 0, "{v}");
    assert_eq!(v["stop_refused"], 403, "{v}");
    assert!(v["stop_after_refusal"].is_null(), "{v}");
    assert!(v["reconnected_ms"].is_u64(), "{v}");
    // ...and with [ui] actions = true, the button records the order with its reason.
    assert_eq!(v["stop_order"], "enough for today", "{v}");
    assert_eq!(v["stop_button_gone"], true, "{v}");
    assert!(v["stop_shown_ms"].as_u64().unwrap() < 5000, "{v}");
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "a screenshot was taken");
}
