//! `kite install [--dir PROJECT]`: everything a project needs to use kite, in one idempotent
//! command. It writes kite's hooks into PROJECT/.claude/settings.json and its MCP server into
//! PROJECT/.mcp.json, creates the home with a commented kite.toml, keeps `.kite/` out of git (the
//! vault stays tracked: its notes are meant to be committed) and starts the daemon.
//!
//! It merges: every key a user wrote stays, kite's entries are added only where missing, and a
//! second run changes nothing. A file that is not valid JSON is left alone with an error, never
//! overwritten. The hooks name the installed binary (not a build directory's), so they keep
//! working after `cargo clean`.

use super::Ctx;
use crate::output;
use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The project to install into (default: the project root).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The command hooks and the MCP server run (default: the installed kite, else this
    /// executable's absolute path).
    #[arg(long)]
    kite: Option<String>,
    /// Do not start the daemon (hooks and `kite mcp` start it when they need it).
    #[arg(long)]
    no_start: bool,
}

impl Args {
    pub(crate) fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }
}

/// Whether an executable sits in a cargo build directory (`.../target/{release,debug}/kite`).
fn in_build_dir(exe: &Path) -> bool {
    let parts: Vec<&str> = exe.iter().filter_map(|c| c.to_str()).collect();
    parts.windows(2).any(|w| w[0] == "target" && (w[1] == "release" || w[1] == "debug"))
}

/// The kite the hooks should run: this executable when it is installed; when it is a build
/// directory's, the installed one on PATH or in ~/.local/bin (with a note saying which).
fn installed_kite() -> Result<(String, Option<String>)> {
    let exe = std::env::current_exe().context("cannot find the kite executable")?;
    let exe = exe.canonicalize().unwrap_or(exe);
    if !in_build_dir(&exe) {
        return Ok((exe.display().to_string(), None));
    }
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).map(|d| d.join("kite")).collect()).unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".local/bin/kite"));
    }
    let installed = candidates.into_iter().filter_map(|c| c.canonicalize().ok()).find(|c| c.is_file() && !in_build_dir(c) && *c != exe);
    Ok(match installed {
        Some(k) => (k.display().to_string(), Some(format!("hooks run the installed {} (this one is a build directory's)", k.display()))),
        None => (
            exe.display().to_string(),
            Some(format!("warning: the hooks run {}, a build directory's binary; run `make install` in kite's checkout so they survive `cargo clean`", exe.display())),
        ),
    })
}

/// Adds `entry` to `dir/.gitignore` unless a line already ignores it; returns whether it changed.
fn ignore_in_git(dir: &Path, entry: &str) -> Result<bool> {
    let path = dir.join(".gitignore");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let bare = entry.trim_matches('/');
    if text.lines().map(str::trim).any(|l| l.trim_matches('/') == bare) {
        return Ok(false);
    }
    let mut out = text;
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!("# kite's home: socket, database, logs (the vault/ beside it is meant to be committed)\n{entry}\n"));
    std::fs::write(&path, out).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(true)
}

fn read_json(path: &Path) -> Result<Value> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Ok(json!({})),
        Ok(text) => {
            let v: Value = serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON; fix it or move it away, kite did not touch it", path.display()))?;
            if !v.is_object() {
                bail!("{} is not a JSON object; kite did not touch it", path.display());
            }
            Ok(v)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({})),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn write_json(path: &Path, v: &Value) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = path.with_extension("json.kite-tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(v)? + "\n").with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}

fn obj<'a>(v: &'a mut Value, key: &str, file: &Path) -> Result<&'a mut Map<String, Value>> {
    let m = v.as_object_mut().expect("checked object");
    let e = m.entry(key.to_string()).or_insert_with(|| json!({}));
    e.as_object_mut().with_context(|| format!("'{key}' in {} is not an object; kite did not touch the file", file.display()))
}

/// Adds kite's hooks to a settings document; returns what changed.
pub(crate) fn merge_settings(settings: &mut Value, kite: &str, file: &Path) -> Result<Vec<String>> {
    let mut changed = Vec::new();
    let hooks = obj(settings, "hooks", file)?;
    for (event, sub, timeout) in kite_agent::claude::HOOKS {
        let command = format!("{kite} {sub}");
        let list = hooks.entry(event.to_string()).or_insert_with(|| json!([]));
        let list = list.as_array_mut().with_context(|| format!("hooks.{event} in {} is not a list; kite did not touch the file", file.display()))?;
        let present = list.iter().any(|group| {
            group["hooks"].as_array().is_some_and(|hs| hs.iter().any(|h| h["command"].as_str() == Some(command.as_str())))
        });
        if !present {
            // SessionEnd hooks get 1.5 s by default; ours returns at once, the timeout is a ceiling.
            list.push(json!({"hooks": [{"type": "command", "command": command, "timeout": timeout}]}));
            changed.push(format!("added hook {event}: {command}"));
        }
    }
    // Claude Code asks before an MCP tool runs, and refuses in print mode: grant kite's tools
    // (the rule `mcp__kite` is every tool of the server named kite) and approve the server
    // .mcp.json names, so neither a person's session nor `claude -p` is asked or refused.
    let perms = obj(settings, "permissions", file)?;
    let allow = perms.entry("allow").or_insert_with(|| json!([]));
    let allow = allow.as_array_mut().with_context(|| format!("permissions.allow in {} is not a list; kite did not touch the file", file.display()))?;
    if !allow.iter().any(|r| r.as_str() == Some("mcp__kite")) {
        allow.push(json!("mcp__kite"));
        changed.push("granted kite's MCP tools (permissions.allow: mcp__kite)".to_string());
    }
    let m = settings.as_object_mut().expect("checked object");
    let servers = m.entry("enabledMcpjsonServers").or_insert_with(|| json!([]));
    let servers = servers.as_array_mut().with_context(|| format!("enabledMcpjsonServers in {} is not a list; kite did not touch the file", file.display()))?;
    if !servers.iter().any(|s| s.as_str() == Some("kite")) {
        servers.push(json!("kite"));
        changed.push("approved the .mcp.json server kite (enabledMcpjsonServers)".to_string());
    }
    Ok(changed)
}

/// Adds kite's MCP server to an .mcp.json document; returns what changed.
pub(crate) fn merge_mcp(doc: &mut Value, kite: &str, file: &Path) -> Result<Vec<String>> {
    let servers = obj(doc, "mcpServers", file)?;
    let want = kite_agent::claude::mcp_server_json(kite);
    match servers.get("kite") {
        Some(have) if *have == want => Ok(vec![]),
        Some(_) => {
            servers.insert("kite".into(), want);
            Ok(vec![format!("updated MCP server 'kite' to run {kite} mcp")])
        }
        None => {
            servers.insert("kite".into(), want);
            Ok(vec![format!("added MCP server 'kite': {kite} mcp")])
        }
    }
}

pub(crate) async fn run(ctx: &Ctx, a: Args) -> Result<()> {
    let dir = a.dir.clone().unwrap_or_else(|| ctx.places.root.clone());
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let (kite, kite_note) = match a.kite {
        Some(k) => (k, None),
        None => installed_kite()?,
    };
    let settings_path = dir.join(".claude").join("settings.json");
    let mcp_path = dir.join(".mcp.json");
    // Read and merge both before writing either, so an invalid file stops everything.
    let mut settings = read_json(&settings_path)?;
    let mut mcp = read_json(&mcp_path)?;
    let s_changes = merge_settings(&mut settings, &kite, &settings_path)?;
    let m_changes = merge_mcp(&mut mcp, &kite, &mcp_path)?;
    if !s_changes.is_empty() {
        write_json(&settings_path, &settings)?;
    }
    if !m_changes.is_empty() {
        write_json(&mcp_path, &mcp)?;
    }
    let mut home_changes = Vec::new();
    let home = &ctx.places.home;
    if !home.is_dir() {
        home_changes.push(format!("created the home {}", home.display()));
    }
    kite_coord::instance::private_dir(home)?;
    let config = ctx.places.config_file();
    if !config.exists() {
        std::fs::write(&config, crate::config::COMMENTED).with_context(|| format!("cannot write {}", config.display()))?;
        home_changes.push(format!("wrote {} (every setting, commented out at its default)", config.display()));
    }
    if let Ok(rel) = home.strip_prefix(&dir) {
        let entry = format!("{}/", rel.display());
        if ignore_in_git(&dir, &entry)? {
            home_changes.push(format!("added {entry} to {}", dir.join(".gitignore").display()));
        }
    }
    let daemon = if a.no_start {
        json!({"started": false})
    } else if let Some((_, h)) = crate::autostart::connect(&ctx.places.socket(), std::time::Duration::from_millis(500)).await {
        json!({"started": false, "pid": h.pid, "running": true})
    } else {
        let pid = crate::autostart::spawn(&ctx.places, &[])?;
        let (_, h) = crate::autostart::wait_ready(&ctx.places, Some(pid), std::time::Duration::from_secs(30)).await?;
        json!({"started": true, "pid": h.pid, "running": true, "log": crate::autostart::log_path(home)})
    };
    let report = json!({
        "kite": kite,
        "note": kite_note,
        "settings": {"path": settings_path, "changes": s_changes},
        "mcp": {"path": mcp_path, "changes": m_changes},
        "home": {"path": home, "changes": home_changes},
        "daemon": daemon,
    });
    if ctx.json {
        return output::json(&report);
    }
    if s_changes.is_empty() && m_changes.is_empty() && home_changes.is_empty() {
        output::line(format!("kite is already installed in {}; nothing changed", dir.display()))?;
    }
    for c in &s_changes {
        output::line(format!("{}: {c}", settings_path.display()))?;
    }
    for c in &m_changes {
        output::line(format!("{}: {c}", mcp_path.display()))?;
    }
    for c in &home_changes {
        output::line(c)?;
    }
    if let Some(n) = &kite_note {
        output::line(n)?;
    }
    match (daemon["started"].as_bool(), daemon["pid"].as_u64()) {
        (Some(true), Some(pid)) => output::line(format!("started the daemon (pid {pid}); it logs to {}", crate::autostart::log_path(home).display()))?,
        (_, Some(pid)) => output::line(format!("the daemon is running (pid {pid})"))?,
        _ => output::line("the daemon starts when a hook or `kite mcp` needs it (or run `kite daemon --detach`)")?,
    }
    output::line("next: start Claude Code in this project; `kite doctor` checks the set-up, `kite status` shows sessions and tasks, `kite vault add` records a note")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_user_settings_and_is_idempotent() {
        let f = Path::new("settings.json");
        let mut s = json!({
            "model": "opus",
            "hooks": {"SessionStart": [{"matcher": "startup", "hooks": [{"type": "command", "command": "echo hi"}]}]}
        });
        let first = merge_settings(&mut s, "/bin/kite", f).unwrap();
        assert_eq!(first.len(), 8, "{first:?}");
        assert_eq!(s["permissions"]["allow"], json!(["mcp__kite"]));
        assert_eq!(s["enabledMcpjsonServers"], json!(["kite"]));
        assert_eq!(s["hooks"]["UserPromptSubmit"][0]["hooks"][0]["command"], "/bin/kite hook user-prompt");
        assert_eq!(s["model"], "opus");
        assert_eq!(s["hooks"]["SessionStart"][0]["hooks"][0]["command"], "echo hi");
        assert_eq!(s["hooks"]["SessionStart"][1]["hooks"][0]["command"], "/bin/kite hook session-start");
        let again = s.clone();
        assert!(merge_settings(&mut s, "/bin/kite", f).unwrap().is_empty());
        assert_eq!(s, again);
    }

    #[test]
    fn build_directories_are_recognized() {
        assert!(in_build_dir(Path::new("/src/kite/target/release/kite")));
        assert!(in_build_dir(Path::new("/src/kite/target/debug/kite")));
        assert!(!in_build_dir(Path::new("/home/me/.local/bin/kite")));
        assert!(!in_build_dir(Path::new("/opt/target/kite")));
    }

    #[test]
    fn gitignore_gets_the_home_once_and_keeps_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".gitignore"), "target").unwrap();
        assert!(ignore_in_git(dir.path(), ".kite/").unwrap());
        assert!(!ignore_in_git(dir.path(), ".kite/").unwrap());
        let text = std::fs::read_to_string(dir.path().join(".gitignore")).unwrap();
        assert!(text.starts_with("target\n") && text.ends_with(".kite/\n"), "{text}");
        std::fs::write(dir.path().join(".gitignore"), "/.kite\n").unwrap();
        assert!(!ignore_in_git(dir.path(), ".kite/").unwrap(), "an equivalent line counts");
    }

    #[test]
    fn a_hooks_value_of_the_wrong_shape_is_an_error_not_an_overwrite() {
        let mut s = json!({"hooks": "nope"});
        assert!(merge_settings(&mut s, "k", Path::new("x")).is_err());
    }

    #[test]
    fn mcp_servers_are_merged_by_name() {
        let f = Path::new(".mcp.json");
        let mut m = json!({"mcpServers": {"other": {"command": "x"}}});
        assert_eq!(merge_mcp(&mut m, "/bin/kite", f).unwrap().len(), 1);
        assert_eq!(m["mcpServers"]["other"]["command"], "x");
        assert!(merge_mcp(&mut m, "/bin/kite", f).unwrap().is_empty());
        assert!(merge_mcp(&mut m, "/opt/kite", f).unwrap()[0].starts_with("updated"));
    }
}
