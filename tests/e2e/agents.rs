//! Agents plug in: `kite mcp` driven by the official Python MCP client, and `kite install`.

use crate::support::{Daemon, KITE};
use serde_json::{json, Value};

fn python() -> String {
    std::env::var("KITE_PYTHON").unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python").to_string())
}

#[test]
fn a_real_mcp_client_initializes_lists_tools_creates_a_task_locks_and_searches() {
    let d = Daemon::start();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp/client.py");
    let out = crate::support::with_model(&mut std::process::Command::new(python()))
        .args([script, KITE, d.root.to_str().unwrap()])
        .env("KITE_VAULT", d.root.join("vault"))
        .output()
        .expect("run the Python MCP client (make setup installs it)");
    assert!(out.status.success(), "client failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(out.stdout.rsplit(|b| *b == b'\n').find(|l| !l.is_empty()).unwrap()).unwrap();
    assert_eq!(v["server"], "kite");
    let tools: Vec<&str> = v["tools"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    for t in ["kite_task_create", "kite_task_list", "kite_task_next", "kite_task_done", "kite_task_fail", "kite_spawn",
        "kite_broadcast", "kite_lock", "kite_unlock", "kite_vault_search", "kite_vault_add"] {
        assert!(tools.contains(&t), "missing tool {t}");
    }
    assert_eq!(v["schemas_ok"], true);
    assert_eq!((v["create_error"].as_bool(), v["created"]["status"].as_str()), (Some(false), Some("pending")));
    assert_eq!(v["bad_create_error"], true);
    assert!(v["bad_create_text"].as_str().unwrap().contains("999"));
    assert_eq!((v["lock_error"].as_bool(), v["lock"]["token"].as_u64()), (Some(false), Some(1)));
    assert_eq!(v["outside_error"], true);
    assert_eq!(v["next"]["task"]["title"], "from mcp");
    assert_eq!(v["add_error"], false, "{}", v["add_text"]);
    assert_eq!(v["search_error"], false, "{}", v["search_text"]);
    assert!(v["search_text"].as_str().unwrap().contains("Use sqlite WAL"), "{}", v["search_text"]);
    assert_eq!(v["huge_k_error"], true, "a huge k is refused: {}", v["huge_k_text"]);
    assert!(v["huge_k_text"].as_str().unwrap().contains("between 1 and 50"), "{}", v["huge_k_text"]);
    // The MCP process was the session's live client: its end released its lock and requeued its task.
    assert_eq!(d.ok(&["lock", "list"])["held"], json!([]));
    let task = d.ok(&["task", "show", "1"]);
    assert_eq!(task["status"], "pending");
    let sessions = d.ok(&["session", "list"]);
    assert_eq!(sessions["sessions"][0]["name"], "py-agent");
    assert_eq!(sessions["sessions"][0]["state"], "ended");
}

#[test]
fn an_mcp_server_goes_on_working_after_its_daemon_is_killed_and_restarted() {
    use std::io::BufRead;
    let mut d = Daemon::start();
    let flag = d.root.join("restarted.flag");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp/reconnect.py");
    let mut child = crate::support::with_model(&mut std::process::Command::new(python()))
        .args([script, KITE, d.root.to_str().unwrap(), flag.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the Python MCP client (make setup installs it)");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "created");
    // The daemon dies under the agent's MCP server, and a new one starts on the same home.
    d.restart();
    std::fs::write(&flag, "").unwrap();
    let last = lines.map_while(Result::ok).last().expect("the client's report");
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "client failed: {err}");
    let v: Value = serde_json::from_str(&last).unwrap();
    assert_eq!(v["before_error"], false);
    assert_eq!(v["list_error"], false, "{}", v["list_text"]);
    assert!(v["list_text"].as_str().unwrap().contains("before the restart"), "{}", v["list_text"]);
    assert_eq!(v["after_error"], false, "{}", v["after_text"]);
    let titles: Vec<String> = d.ok(&["task", "list", "--all"])["tasks"].as_array().unwrap().iter().map(|t| t["title"].as_str().unwrap().to_string()).collect();
    assert_eq!(titles, vec!["before the restart", "after the restart"]);
}

#[test]
fn install_merges_with_existing_settings_and_a_second_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir(p.join(".claude")).unwrap();
    std::fs::write(p.join(".claude/settings.json"), r#"{"permissions": {"allow": ["Bash(ls)"]}, "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "say done"}]}]}}"#).unwrap();
    std::fs::write(p.join(".mcp.json"), r#"{"mcpServers": {"db": {"command": "dbmcp"}}}"#).unwrap();
    let run = || {
        let out = std::process::Command::new(KITE).args(["install", "--no-start", "--dir", p.to_str().unwrap(), "--json"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let first = run();
    assert_eq!(first["settings"]["changes"].as_array().unwrap().len(), 8);
    assert_eq!(first["mcp"]["changes"].as_array().unwrap().len(), 1);
    let s: Value = serde_json::from_str(&std::fs::read_to_string(p.join(".claude/settings.json")).unwrap()).unwrap();
    assert_eq!(s["permissions"]["allow"][0], "Bash(ls)");
    assert_eq!(s["hooks"]["Stop"][0]["hooks"][0]["command"], "say done");
    assert!(s["hooks"]["SessionStart"][0]["hooks"][0]["command"].as_str().unwrap().ends_with("kite hook session-start"));
    assert!(s["hooks"]["SessionEnd"][0]["hooks"][0]["command"].as_str().unwrap().ends_with("kite hook session-end"));
    assert!(s["hooks"]["UserPromptSubmit"][0]["hooks"][0]["command"].as_str().unwrap().ends_with("kite hook user-prompt"));
    let m: Value = serde_json::from_str(&std::fs::read_to_string(p.join(".mcp.json")).unwrap()).unwrap();
    assert_eq!(m["mcpServers"]["db"]["command"], "dbmcp");
    assert_eq!(m["mcpServers"]["kite"]["args"], json!(["mcp"]));
    let before = (std::fs::read(p.join(".claude/settings.json")).unwrap(), std::fs::read(p.join(".mcp.json")).unwrap());
    let second = run();
    assert_eq!(second["settings"]["changes"], json!([]));
    assert_eq!(second["mcp"]["changes"], json!([]));
    let after = (std::fs::read(p.join(".claude/settings.json")).unwrap(), std::fs::read(p.join(".mcp.json")).unwrap());
    assert_eq!(before, after, "a second install rewrote the files");
}

#[test]
fn install_leaves_an_invalid_settings_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir(p.join(".claude")).unwrap();
    std::fs::write(p.join(".claude/settings.json"), "{ not json").unwrap();
    let out = std::process::Command::new(KITE).args(["install", "--no-start", "--dir", p.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid JSON"));
    assert_eq!(std::fs::read_to_string(p.join(".claude/settings.json")).unwrap(), "{ not json");
    assert!(!p.join(".mcp.json").exists(), "nothing was written");
}
