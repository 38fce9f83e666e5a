//! kite as a new user meets it: installed into a prefix, then used in an unrelated git
//! repository with HOME elsewhere and no KITE_* variable. Nothing here points the binary at the
//! checkout: it has to find its model, templates and daemon on its own.

use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A prefix with kite installed by the same script `make install` runs, a HOME, and a project.
struct Installed {
    prefix: PathBuf,
    home: PathBuf,
    project: PathBuf,
    _dir: tempfile::TempDir,
}

impl Installed {
    fn new() -> Installed {
        let dir = tempfile::Builder::new().prefix("kite-user").tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let (prefix, home, project) = (base.join("prefix"), base.join("home"), base.join("work/shop"));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&project).unwrap();
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = Command::new("bash")
            .arg(checkout.join("scripts/install.sh"))
            .arg(&prefix)
            .arg(checkout.join("models"))
            .arg(env!("CARGO_BIN_EXE_kite"))
            .output()
            .unwrap();
        assert!(out.status.success(), "install.sh: {}", String::from_utf8_lossy(&out.stderr));
        for f in ["bin/kite", "share/kite/libonnxruntime.so", "share/kite/all-mpnet-base-v2/model.onnx", "share/kite/all-mpnet-base-v2/tokenizer.json"] {
            let m = std::fs::symlink_metadata(prefix.join(f)).unwrap();
            assert!(m.file_type().is_file(), "{f} must be a real file, not a link into a virtual environment");
        }
        let git = |args: &[&str]| {
            let st = Command::new("git").args(args).current_dir(&project).env("HOME", &home).stdout(Stdio::null()).status().unwrap();
            assert!(st.success(), "git {args:?}");
        };
        git(&["init", "-q", "-b", "main"]);
        std::fs::write(project.join("README.md"), "# shop\nA small web shop.\n").unwrap();
        git(&["add", "."]);
        git(&["-c", "user.name=u", "-c", "user.email=u@example.com", "commit", "-qm", "first commit"]);
        Installed { prefix, home, project, _dir: dir }
    }

    /// `kite ARGS` the way a user's shell runs it: the installed binary on PATH, a clean
    /// environment, in the project.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.prefix.join("bin/kite"));
        c.args(args)
            .current_dir(&self.project)
            .env_clear()
            .env("PATH", format!("{}:/usr/local/bin:/usr/bin:/bin", self.prefix.join("bin").display()))
            .env("HOME", &self.home);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> Value {
        let out = self.run(&[args, &["--json"]].concat());
        assert!(out.status.success(), "kite {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("kite {args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
    }

    fn hook(&self, which: &str, payload: &Value) -> Output {
        let mut child = self.cmd(&["hook", which]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(payload.to_string().as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    fn kite_home(&self) -> PathBuf {
        self.project.join(".kite")
    }

    /// Pids of live daemons serving this project's home.
    fn daemons(&self) -> Vec<u32> {
        let home = self.kite_home().display().to_string();
        let mut pids = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
            let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else { continue };
            let args: Vec<String> = cmdline.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
            let zombie = std::fs::read_to_string(e.path().join("stat")).map(|s| s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z'))).unwrap_or(true);
            if !zombie && args.iter().any(|a| a == "daemon") && args.iter().any(|a| *a == home) {
                pids.push(pid);
            }
        }
        pids
    }

    /// Starts the daemon again (`--detach`) and waits for it.
    fn wait_for_daemon_start(&self) {
        assert!(self.run(&["daemon", "--detach"]).status.success());
        self.wait_for_daemon();
    }

    fn wait_for_daemon(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.run(&["status"]).status.success() {
            assert!(Instant::now() < deadline, "no daemon answered: {}", std::fs::read_to_string(self.kite_home().join("daemon.log")).unwrap_or_default());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = self.run(&["daemon", "--stop"]);
        for pid in self.daemons() {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
    }
}

fn start_payload(i: &Installed, sid: &str) -> Value {
    json!({"session_id": sid, "transcript_path": i.project.join("t.jsonl"), "cwd": i.project, "hook_event_name": "SessionStart", "source": "startup"})
}

#[test]
fn installed_kite_works_in_an_unrelated_repository_with_no_variables() {
    let i = Installed::new();

    // kite install: hooks and MCP naming the installed binary, the home, .gitignore, a daemon.
    let report = i.ok(&["install"]);
    let kite = i.prefix.join("bin/kite").display().to_string();
    assert_eq!(report["kite"], kite.as_str(), "{report}");
    let settings: Value = serde_json::from_str(&std::fs::read_to_string(i.project.join(".claude/settings.json")).unwrap()).unwrap();
    assert_eq!(settings["hooks"]["SessionStart"][0]["hooks"][0]["command"], format!("{kite} hook session-start").as_str());
    let mcp: Value = serde_json::from_str(&std::fs::read_to_string(i.project.join(".mcp.json")).unwrap()).unwrap();
    assert_eq!(mcp["mcpServers"]["kite"]["command"], kite.as_str());
    let toml = std::fs::read_to_string(i.kite_home().join("kite.toml")).unwrap();
    assert!(toml.contains("# autostart = true"), "a commented kite.toml: {toml}");
    assert!(std::fs::read_to_string(i.project.join(".gitignore")).unwrap().lines().any(|l| l == ".kite/"));
    assert_eq!(report["daemon"]["started"], true, "{report}");
    assert_eq!(i.daemons().len(), 1);
    // A second install changes nothing and starts nothing.
    let again = i.ok(&["install"]);
    assert_eq!(again["home"]["changes"], json!([]));
    assert_eq!(again["daemon"]["started"], false);

    // Stop it; a SessionStart hook finds no daemon, starts one and still answers at once.
    let out = i.run(&["daemon", "--stop"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(i.daemons().is_empty());
    let started = Instant::now();
    let out = i.hook("session-start", &start_payload(&i, "s1"));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("started the daemon"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(started.elapsed() < Duration::from_secs(5), "the hook waited for the daemon");
    i.wait_for_daemon();
    assert_eq!(i.daemons().len(), 1);

    // Notes are found by meaning: the query shares no word with the note.
    i.ok(&["vault", "add", "--title", "Queue durability", "--kind", "decision", "--body", "Replies are sent only after the SQLite commit."]);
    i.ok(&["vault", "add", "--title", "Release checklist", "--kind", "pattern", "--body", "Tag the version, then publish the changelog."]);
    let out = i.run(&["vault", "search", "what keeps acknowledged work safe when the machine crashes", "--json"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("keyword"), "fell back to keywords: {stderr}");
    let found: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(found["mode"], "hybrid", "{found}");
    assert_eq!(found["hits"][0]["title"], "Queue durability", "{found}");

    // The built-in templates are there with no prompts/ in the project.
    let t = i.ok(&["sched", "templates"]);
    let names: Vec<&str> = t["templates"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    for n in ["fix-failing-tests", "resolve-todo-markers", "strategy-audit"] {
        assert!(names.contains(&n), "{names:?}");
    }
    assert!(t["templates"].as_array().unwrap().iter().all(|t| t["origin"] == "built-in"), "{t}");
    // Ejected, a template is the project's own and overrides the built-in.
    i.ok(&["sched", "eject", "resolve-todo-markers"]);
    assert!(i.project.join("prompts/resolve-todo-markers.md.tera").is_file());
    let t = i.ok(&["sched", "templates"]);
    let row = t["templates"].as_array().unwrap().iter().find(|t| t["name"] == "resolve-todo-markers").unwrap().clone();
    assert_eq!(row["overrides"], true, "{row}");
    assert!(row["origin"].as_str().unwrap().ends_with("prompts/resolve-todo-markers.md.tera"), "{row}");
    assert_eq!(i.run(&["sched", "eject", "resolve-todo-markers"]).status.code(), Some(1), "an ejected file is not overwritten");
    let out = i.run(&["sched", "eject", "no-such-template"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("built-in: fix-failing-tests"), "names what exists: {}", String::from_utf8_lossy(&out.stderr));
    // Stopping twice is not an error, and says so.
    assert!(i.run(&["daemon", "--stop"]).status.success());
    let out = i.run(&["daemon", "--stop"]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("no kite daemon is running"), "{}", String::from_utf8_lossy(&out.stdout));
    i.wait_for_daemon_start();

    // kite doctor passes; with the model files gone it fails and names the fix.
    let out = i.run(&["doctor"]);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let doc = i.ok(&["doctor"]);
    assert_eq!(doc["ok"], true, "{doc}");
    std::fs::remove_file(i.prefix.join("share/kite/all-mpnet-base-v2/model.onnx")).unwrap();
    let out = i.run(&["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let model = doc["checks"].as_array().unwrap().iter().find(|c| c["name"] == "model").unwrap().clone();
    assert_eq!(model["status"], "fail", "{doc}");
    assert!(model["fix"].as_str().unwrap().contains("make install"), "{model}");
    assert!(model["detail"].as_str().unwrap().contains("model.onnx"), "says what is missing: {model}");
    let out = i.run(&["vault", "search", "durability"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("make install") && stderr.contains("kite doctor"), "{stderr}");
    assert!(!stderr.contains("make setup"), "{stderr}");
}

#[test]
fn two_hooks_racing_start_one_daemon_and_autostart_can_be_turned_off() {
    let i = Installed::new();
    i.ok(&["install", "--no-start"]);
    assert!(i.daemons().is_empty());
    let hooks: Vec<_> = (0..4)
        .map(|n| {
            let mut child = i.cmd(&["hook", "session-start"]).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
            child.stdin.take().unwrap().write_all(start_payload(&i, &format!("race{n}")).to_string().as_bytes()).unwrap();
            child
        })
        .collect();
    for mut h in hooks {
        assert!(h.wait().unwrap().success());
    }
    i.wait_for_daemon();
    // Losers of the race exit on their own; give them the time to.
    let deadline = Instant::now() + Duration::from_secs(10);
    while i.daemons().len() > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(i.daemons().len(), 1, "one daemon serves the home");
    let log = std::fs::read_to_string(i.kite_home().join("daemon.log")).unwrap_or_default();
    assert!(!log.contains("ERROR"), "{log}");

    // autostart = false: the hook warns, names the command, and starts nothing.
    assert!(i.run(&["daemon", "--stop"]).status.success());
    std::fs::write(i.kite_home().join("kite.toml"), "[daemon]\nautostart = false\n").unwrap();
    let out = i.hook("session-start", &start_payload(&i, "off"));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("kite daemon --detach"), "{}", String::from_utf8_lossy(&out.stderr));
    std::thread::sleep(Duration::from_millis(300));
    assert!(i.daemons().is_empty());
    // --detach starts it and returns once it answers.
    let out = i.ok(&["daemon", "--detach"]);
    assert!(out["pid"].as_u64().is_some(), "{out}");
    assert!(i.run(&["status"]).status.success());
    // A typo in any section is refused, naming the key and the file.
    std::fs::write(i.kite_home().join("kite.toml"), "[hooks]\nbudget_token = 10\n").unwrap();
    let out = i.run(&["status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("budget_token") && stderr.contains("kite.toml"), "{stderr}");
}
