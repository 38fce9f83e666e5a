//! Clients on other machines: the daemon's TCP listener over TLS with bearer tokens. The "other
//! machine" is another directory with its own HOME, reaching the daemon only through KITE_URL,
//! KITE_TOKEN and KITE_CERT_SHA256, as `kite token create` prints them.

use crate::support::{Daemon, KITE};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A machine elsewhere: its own directory (a git repository) and HOME, no kite home, no daemon.
struct Elsewhere {
    dir: tempfile::TempDir,
    env: HashMap<String, String>,
}

impl Elsewhere {
    fn new(env: HashMap<String, String>) -> Elsewhere {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("clone/.git")).unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        Elsewhere { dir, env }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut c = Command::new(KITE);
        c.args(args).current_dir(self.dir.path().join("clone")).env("HOME", self.dir.path().join("home"));
        for k in ["KITE_HOME", "KITE_ROOT", "KITE_VAULT", "KITE_URL", "KITE_TOKEN", "KITE_CERT_SHA256"] {
            c.env_remove(k);
        }
        c.envs(&self.env).output().unwrap()
    }

    /// A Claude Code hook on this machine, with `input` on stdin.
    fn hook(&self, which: &str, input: &Value) -> Output {
        let mut c = Command::new(KITE);
        c.args(["hook", which]).current_dir(self.dir.path().join("clone")).env("HOME", self.dir.path().join("home"));
        for k in ["KITE_HOME", "KITE_ROOT", "KITE_VAULT", "KITE_URL", "KITE_TOKEN", "KITE_CERT_SHA256", "KITE_TASK_ID"] {
            c.env_remove(k);
        }
        let mut child = c.envs(&self.env).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> Value {
        let out = self.run(&[args, &["--json"]].concat());
        assert!(out.status.success(), "kite {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn err(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(1), "kite {args:?} should fail: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one-line error expected: {stderr}");
        stderr
    }
}

fn settings(created: &Value) -> HashMap<String, String> {
    ["KITE_URL", "KITE_TOKEN", "KITE_CERT_SHA256"].iter().filter_map(|k| Some((k.to_string(), created[*k].as_str()?.to_string()))).collect()
}

#[test]
fn a_client_elsewhere_works_with_its_token_over_tls_and_is_refused_without_it() {
    let port = free_port();
    let d = Daemon::start_toml(&format!("[daemon]\nlisten = \"127.0.0.1:{port}\"\n"), &[]);

    // The printed assignments are what the other machine needs, one per line.
    let out = d.cli(&["token", "create", "laptop"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: HashMap<String, String> = text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(lines.get("KITE_URL").map(String::as_str), Some(format!("kite://127.0.0.1:{port}").as_str()), "{text}");
    assert_eq!(lines["KITE_CERT_SHA256"].len(), 64);
    assert!(lines["KITE_TOKEN"].starts_with("kite_"));
    // Only the hash is kept.
    let db = std::fs::read(d.home.join("kite.db")).unwrap_or_default();
    assert!(!String::from_utf8_lossy(&db).contains(&lines["KITE_TOKEN"]), "the token itself is not stored");

    let laptop = Elsewhere::new(lines.clone());
    let created = laptop.ok(&["task", "create", "--title", "from the laptop"]);
    let id = created["id"].as_i64().unwrap();
    assert_eq!(d.ok(&["task", "show", &id.to_string()])["title"], "from the laptop");
    assert!(laptop.ok(&["task", "list"])["tasks"].as_array().unwrap().iter().any(|t| t["id"] == id));
    assert!(laptop.err(&["token", "list"]).contains("daemon's own machine"));

    // A bad token, a wrong pin, a missing pin: one clear error each, and nothing is created.
    let before = d.ok(&["task", "list", "--all"])["tasks"].as_array().unwrap().len();
    let mut bad = lines.clone();
    bad.insert("KITE_TOKEN".into(), "kite_0000".into());
    let e = Elsewhere::new(bad).err(&["task", "create", "--title", "intruder"]);
    assert!(e.contains("token is not valid"), "{e}");
    let mut pin = lines.clone();
    pin.insert("KITE_CERT_SHA256".into(), "00".repeat(32));
    let e = Elsewhere::new(pin).err(&["task", "create", "--title", "intruder"]);
    assert!(e.contains("not the pinned one"), "{e}");
    let mut nopin = lines.clone();
    nopin.remove("KITE_CERT_SHA256");
    let e = Elsewhere::new(nopin).err(&["task", "create", "--title", "intruder"]);
    assert!(e.contains("KITE_CERT_SHA256"), "{e}");
    assert_eq!(d.ok(&["task", "list", "--all"])["tasks"].as_array().unwrap().len(), before);

    // Revoked: refused from the next request, with the token's name.
    d.ok(&["token", "revoke", "laptop"]);
    let e = laptop.err(&["task", "create", "--title", "after revoke"]);
    assert!(e.contains("'laptop' was revoked"), "{e}");
    assert_eq!(d.ok(&["task", "list", "--all"])["tasks"].as_array().unwrap().len(), before);
    let listed = d.ok(&["token", "list"]);
    assert!(listed["tokens"][0]["revoked_ms"].is_i64(), "{listed}");
    // A second token for the same name once the first is revoked; its json has the settings too.
    let again = d.ok(&["token", "create", "laptop"]);
    assert_eq!(settings(&again).len(), 3);
    Elsewhere::new(settings(&again)).ok(&["task", "list"]);
}

#[test]
fn over_the_network_nothing_is_answered_before_auth_and_tokens_are_local_only() {
    let port = free_port();
    let d = Daemon::start_toml(&format!("[daemon]\nlisten = \"127.0.0.1:{port}\"\ntls = false\n"), &[]);
    let token = d.ok(&["token", "create", "probe"])["KITE_TOKEN"].as_str().unwrap().to_string();
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut ask = |line: &str| {
        (&s).write_all(format!("{line}\n").as_bytes()).unwrap();
        let mut reply = String::new();
        r.read_line(&mut reply).unwrap();
        serde_json::from_str::<Value>(&reply).unwrap()
    };
    let refused = ask(r#"{"id":1,"op":"task.create","args":{"title":"sneaky"}}"#);
    assert_eq!(refused["error"]["code"], "unauthorized", "{refused}");
    let refused = ask(r#"{"id":2,"op":"memory.recall","args":{"query":"x"}}"#);
    assert_eq!(refused["error"]["code"], "unauthorized", "services are behind auth too: {refused}");
    let bad = ask(r#"{"id":3,"op":"auth","args":{"token":"kite_nope"}}"#);
    assert_eq!(bad["error"]["code"], "unauthorized");
    let ok = ask(&format!(r#"{{"id":4,"op":"auth","args":{{"token":"{token}"}}}}"#));
    assert_eq!(ok["result"]["name"], "probe", "{ok}");
    let local_only = ask(r#"{"id":5,"op":"token.create","args":{"name":"mine"}}"#);
    assert_eq!(local_only["error"]["code"], "unauthorized", "{local_only}");
    assert!(ask(r#"{"id":6,"op":"task.list","args":{}}"#)["result"]["tasks"].as_array().unwrap().is_empty(), "nothing sneaked in");
}

#[test]
fn plain_tcp_is_refused_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir(root.join(".git")).unwrap();
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(0o700).create(root.join(".kite")).unwrap();
    }
    std::fs::write(root.join(".kite/kite.toml"), format!("[daemon]\nlisten = \"0.0.0.0:{}\"\ntls = false\n", free_port())).unwrap();
    let out = Command::new(KITE).arg("daemon").current_dir(&root).env_remove("KITE_HOME").env("KITE_LOG", "off").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("in clear") && stderr.contains("loopback"), "{stderr}");

    // An address in use: the daemon does not start without its listener, and says why.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    std::fs::write(root.join(".kite/kite.toml"), format!("[daemon]\nlisten = \"127.0.0.1:{port}\"\n")).unwrap();
    let out = Command::new(KITE).args(["daemon", "--no-memory"]).current_dir(&root).env_remove("KITE_HOME").env("KITE_LOG", "off").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")), "{stderr}");
    assert!(!root.join(".kite/kite.sock").exists(), "nothing was served");
}

/// `kite config set`: the README's team steps are one command each, on a kite.toml `kite install`
/// wrote (comments and sections kept); what kite would not accept is refused and changes nothing.
#[test]
fn config_set_edits_kite_toml_in_place_and_refuses_what_kite_would_not_accept() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir(root.join(".git")).unwrap();
    std::fs::create_dir(root.join(".kite")).unwrap();
    let toml = root.join(".kite/kite.toml");
    std::fs::write(&toml, "# my settings\n[daemon]\n# listen = \"0.0.0.0:7777\"\nheartbeat_timeout = 60\n").unwrap();
    let kite = |args: &[&str]| Command::new(KITE).args(args).current_dir(&root).env_remove("KITE_HOME").output().unwrap();
    for (k, v) in [("daemon.listen", "0.0.0.0:7777"), ("store.url", "postgres://kite@db/kite"), ("merge.remote", "origin"), ("daemon.tls", "false")] {
        let out = kite(&["config", "set", k, v]);
        // tls = false off loopback is the daemon's to refuse at start, not the file's.
        assert!(out.status.success(), "{k}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = std::fs::read_to_string(&toml).unwrap();
    assert!(text.starts_with("# my settings\n[daemon]\n"), "{text}");
    assert!(text.contains("heartbeat_timeout = 60") && text.contains("listen = \"0.0.0.0:7777\"") && text.contains("tls = false"), "{text}");
    assert!(text.contains("[store]\nurl = \"postgres://kite@db/kite\"") && text.contains("[merge]\nremote = \"origin\""), "{text}");
    for (k, v, why) in [("daemon.nope", "1", "kite would not accept"), ("daemon.heartbeat_timeout", "soon", "kite would not accept"), ("listen", "x", "SECTION.KEY")] {
        let out = kite(&["config", "set", k, v]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{k}");
        assert!(stderr.contains(why), "{k}: {stderr}");
    }
    assert_eq!(std::fs::read_to_string(&toml).unwrap(), text, "refused settings change nothing");
}

#[test]
fn a_remote_session_recalls_through_the_teams_daemon_and_its_notes_are_extracted_where_it_ran() {
    let port = free_port();
    let d = Daemon::start_toml(&format!("[daemon]\nlisten = \"127.0.0.1:{port}\"\n"), &[]);
    let laptop = Elsewhere::new(settings(&d.ok(&["token", "create", "laptop"])));
    // The team's vault knows something; the laptop's clone has no note and no model.
    d.ok(&["vault", "add", "--title", "Uploads go straight to object storage", "--kind", "decision",
        "--body", "Receipts and other uploads go straight to object storage with presigned URLs; the app server never proxies file bytes."]);
    let sid = "9d3b6f10-2c4e-4f7a-8b1d-0e5c7a9f3b21";
    let cwd = laptop.dir.path().join("clone");
    let out = laptop.hook("user-prompt", &serde_json::json!({"session_id": sid, "cwd": cwd, "hook_event_name": "UserPromptSubmit",
        "prompt": "let users attach receipts: where do uploaded files go, object storage?"}));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let given = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(given.contains("Uploads go straight to object storage"), "the team's note was not given: {given} / {}", String::from_utf8_lossy(&out.stderr));

    // The session ends on the laptop: its transcript is read there, and the notes go to the
    // team's daemon, redacted.
    let transcript = laptop.dir.path().join("session.jsonl");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/transcripts/upload-worker-session.jsonl"), &transcript).unwrap();
    let out = laptop.hook("session-end", &serde_json::json!({"session_id": sid, "transcript_path": transcript, "cwd": cwd, "hook_event_name": "SessionEnd", "reason": "exit"}));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let count = || d.ok(&["vault", "stats"])["notes"].as_u64().unwrap_or(0);
    while count() < 2 {
        assert!(std::time::Instant::now() < deadline, "no note reached the team's vault: {}", std::fs::read_to_string(laptop.dir.path().join("clone/.kite/remote-extract.log")).unwrap_or_default());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    for entry in std::fs::read_dir(d.root.join("vault")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for secret in ["AKIAZ3EXAMPLEKEY7Q2W", "sk-ant-api03-Zx9Qv7LmN4pR2sT8uW1yB6cD3eF5gH0jK"] {
            assert!(!text.contains(secret), "a secret reached the team's vault");
        }
    }
    // Nothing was written into the laptop's own clone.
    let local: Vec<_> = std::fs::read_dir(cwd.join("vault")).map(|r| r.collect()).unwrap_or_default();
    assert!(local.is_empty(), "notes were written on the laptop");
}
