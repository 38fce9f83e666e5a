//! `kite install [--dir PROJECT]`: writes kite's hooks into PROJECT/.claude/settings.json and its
//! MCP server into PROJECT/.mcp.json. It merges: every key a user wrote stays, kite's entries are
//! added only where missing, and a second run changes nothing. A file that is not valid JSON is
//! left alone with an error, never overwritten.

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
    /// The command hooks and the MCP server run (default: this kite executable's absolute path).
    #[arg(long)]
    kite: Option<String>,
}

/// The hook events kite listens to and the subcommand each runs.
const HOOKS: &[(&str, &str)] = &[("SessionStart", "hook session-start"), ("SessionEnd", "hook session-end"), ("PreCompact", "hook session-end")];

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
    for (event, sub) in HOOKS {
        let command = format!("{kite} {sub}");
        let list = hooks.entry(event.to_string()).or_insert_with(|| json!([]));
        let list = list.as_array_mut().with_context(|| format!("hooks.{event} in {} is not a list; kite did not touch the file", file.display()))?;
        let present = list.iter().any(|group| {
            group["hooks"].as_array().is_some_and(|hs| hs.iter().any(|h| h["command"].as_str() == Some(command.as_str())))
        });
        if !present {
            // SessionEnd hooks get 1.5 s by default; ours returns at once, the timeout is a ceiling.
            let timeout = if *event == "SessionStart" { 10 } else { 5 };
            list.push(json!({"hooks": [{"type": "command", "command": command, "timeout": timeout}]}));
            changed.push(format!("added hook {event}: {command}"));
        }
    }
    Ok(changed)
}

/// Adds kite's MCP server to an .mcp.json document; returns what changed.
pub(crate) fn merge_mcp(doc: &mut Value, kite: &str, file: &Path) -> Result<Vec<String>> {
    let servers = obj(doc, "mcpServers", file)?;
    let want = json!({"type": "stdio", "command": kite, "args": ["mcp"]});
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

pub(crate) fn run(ctx: &Ctx, a: Args) -> Result<()> {
    let dir = a.dir.unwrap_or_else(|| ctx.places.root.clone());
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let kite = match a.kite {
        Some(k) => k,
        None => std::env::current_exe().context("cannot find the kite executable")?.display().to_string(),
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
    let report = json!({
        "settings": {"path": settings_path, "changes": s_changes},
        "mcp": {"path": mcp_path, "changes": m_changes},
    });
    if ctx.json {
        return output::json(&report);
    }
    if s_changes.is_empty() && m_changes.is_empty() {
        return output::line(format!("kite is already installed in {}; nothing changed", dir.display()));
    }
    for c in &s_changes {
        output::line(format!("{}: {c}", settings_path.display()))?;
    }
    for c in &m_changes {
        output::line(format!("{}: {c}", mcp_path.display()))?;
    }
    Ok(())
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
        assert_eq!(first.len(), 3);
        assert_eq!(s["model"], "opus");
        assert_eq!(s["hooks"]["SessionStart"][0]["hooks"][0]["command"], "echo hi");
        assert_eq!(s["hooks"]["SessionStart"][1]["hooks"][0]["command"], "/bin/kite hook session-start");
        let again = s.clone();
        assert!(merge_settings(&mut s, "/bin/kite", f).unwrap().is_empty());
        assert_eq!(s, again);
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
