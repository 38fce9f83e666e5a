//! `kite doctor [--json]`: is kite set up for this project, and if not, what to do. Each check
//! names what it looked at and, when it fails, the command or edit that fixes it. The exit code is
//! 1 when anything is broken (a warning alone is not broken: a stopped daemon starts itself).

use super::Ctx;
use crate::output;
use anyhow::Result;
use serde::Serialize;
use serde_json::Value;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    status: Status,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check { name, status: Status::Ok, detail: detail.into(), fix: None }
    }
    fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { name, status: Status::Warn, detail: detail.into(), fix: Some(fix.into()) }
    }
    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { name, status: Status::Fail, detail: detail.into(), fix: Some(fix.into()) }
    }
}

const INSTALL_MODEL: &str = "run `make install` in kite's checkout (it puts the model and the ONNX runtime in ~/.local/share/kite), or set [memory] model_dir and ort_dylib in kite.toml";

/// Runs every check. `config_error` is a kite.toml that did not load (the defaults are used for
/// the other checks).
pub(crate) async fn run(ctx: &Ctx, config_error: Option<String>) -> Result<()> {
    let mut checks = Vec::new();
    checks.push(match config_error {
        None if ctx.places.config_file().exists() => Check::ok("config", format!("{} is valid", ctx.places.config_file().display())),
        None => Check::ok("config", format!("no {}; the defaults apply", ctx.places.config_file().display())),
        Some(e) => Check::fail("config", e, format!("fix the named key in {} (docs/CLI.md lists the settings)", ctx.places.config_file().display())),
    });
    checks.extend(model(ctx));
    checks.push(daemon(ctx).await);
    checks.extend(claude(ctx));
    checks.push(templates(ctx));
    checks.push(vault(ctx));
    checks.push(permissions(&ctx.places.home));
    let broken = checks.iter().any(|c| c.status == Status::Fail);
    if ctx.json {
        output::json(&serde_json::json!({"ok": !broken, "checks": checks}))?;
    } else {
        for c in &checks {
            let mark = match c.status {
                Status::Ok => "ok  ",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
            };
            output::line(format!("{mark}  {:<12} {}", c.name, c.detail))?;
            if let Some(f) = &c.fix {
                output::line(format!("      {:<12} fix: {f}", ""))?;
            }
        }
    }
    if broken {
        anyhow::bail!("kite doctor found a problem; see the fixes above");
    }
    Ok(())
}

/// The model's files, then the runtime actually loading it and embedding a sentence.
fn model(ctx: &Ctx) -> Vec<Check> {
    let located = crate::share::model(&ctx.config.memory, &ctx.config.file);
    let Some(place) = located.found else {
        return vec![
            Check::fail("model", format!("no embedding model found; looked in {}", located.explain()), INSTALL_MODEL),
            Check::fail("runtime", "not checked: no model", INSTALL_MODEL),
        ];
    };
    let found = Check::ok("model", format!("{} (from {})", place.config.model_dir.display(), place.origin));
    let started = std::time::Instant::now();
    let loaded = kite_memory::Embedder::load(&place.config).and_then(|e| e.embed_one("kite doctor checks the model"));
    let runtime = match loaded {
        Ok(v) if v.len() == kite_memory::DIM => Check::ok(
            "runtime",
            format!("{} loads the model and embeds ({} ms)", place.config.ort_dylib.display(), started.elapsed().as_millis()),
        ),
        Ok(v) => Check::fail("runtime", format!("the model gave {} dimensions, not {}", v.len(), kite_memory::DIM), INSTALL_MODEL),
        Err(e) => Check::fail("runtime", format!("{e}"), INSTALL_MODEL),
    };
    vec![found, runtime]
}

async fn daemon(ctx: &Ctx) -> Check {
    match crate::autostart::connect(&ctx.places.socket(), Duration::from_secs(2)).await {
        Some((_, h)) if h.version != env!("CARGO_PKG_VERSION") => Check::fail(
            "daemon",
            format!("pid {} runs kite {}, this is {}", h.pid, h.version, env!("CARGO_PKG_VERSION")),
            "restart it: `kite daemon --stop` (the next hook starts the new one, or `kite daemon --detach`)",
        ),
        Some((_, h)) => Check::ok("daemon", format!("running (pid {}, kite {}) on {}", h.pid, h.version, ctx.places.socket().display())),
        None if ctx.config.daemon.autostart => Check::warn("daemon", "not running; hooks and `kite mcp` start it when they need it", "or start it now: `kite daemon --detach`"),
        None => Check::warn("daemon", "not running, and autostart is off in kite.toml", "start it: `kite daemon --detach`"),
    }
}

fn read_json(path: &Path) -> Option<Result<Value, String>> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(serde_json::from_str(&text).map_err(|e| format!("{} is not valid JSON: {e}", path.display())))
}


/// The settings files Claude Code reads in `dir` (project, then local) and the user's, with
/// their JSON (a file that is not JSON is reported by the check that reads it).
fn settings_files(dir: &Path) -> Vec<(PathBuf, Result<Value, String>)> {
    let mut files = vec![dir.join(".claude/settings.json"), dir.join(".claude/settings.local.json")];
    if let Some(home) = std::env::var_os("HOME") {
        files.push(PathBuf::from(home).join(".claude/settings.json"));
    }
    files.into_iter().filter_map(|f| read_json(&f).map(|v| (f, v))).collect()
}

/// Claude Code itself, and whether this work tree is wired: kite's hooks (from the project's,
/// the local or the user's settings), its MCP server (the work tree's .mcp.json), the grant of
/// its tools, and trust. Run in a linked work tree, it checks that work tree: a `claude -w`
/// session there reads that work tree's files, not the main checkout's.
fn claude(ctx: &Ctx) -> Vec<Check> {
    let dir = &ctx.places.worktree;
    let install = if *dir == ctx.places.root {
        format!("run `kite install` in {}", dir.display())
    } else {
        format!("commit .claude/settings.json and .mcp.json (which `kite install` wrote in {}) so every work tree has them, or put kite's hooks in ~/.claude/settings.json", ctx.places.root.display())
    };
    let mut checks = vec![claude_binary(ctx)];
    let settings = settings_files(dir);
    let mut missing = Vec::new();
    let mut stale = Vec::new();
    let mut found_in = Vec::new();
    for (event, sub, _) in kite_agent::claude::HOOKS {
        let commands: Vec<(PathBuf, String)> = settings
            .iter()
            .filter_map(|(f, v)| v.as_ref().ok().map(|v| (f, v)))
            .flat_map(|(f, s)| {
                s["hooks"][event]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|g| g["hooks"].as_array().cloned().unwrap_or_default())
                    .filter_map(|h| h["command"].as_str().map(str::to_string))
                    .filter(|c| c.ends_with(sub))
                    .map(|c| (f.clone(), c))
                    .collect::<Vec<_>>()
            })
            .collect();
        match commands.iter().find(|(_, c)| kite_strategy::audit::missing_program(c, dir).is_none()) {
            Some((f, _)) => found_in.push(f.display().to_string()),
            None if commands.is_empty() => missing.push(*event),
            None => stale.push(commands[0].1.clone()),
        }
    }
    let broken: Vec<String> = settings.iter().filter_map(|(_, v)| v.as_ref().err().cloned()).collect();
    found_in.sort();
    found_in.dedup();
    checks.push(if !broken.is_empty() {
        Check::fail("hooks", broken.join("; "), format!("fix the JSON, then {install}"))
    } else if !missing.is_empty() {
        Check::fail("hooks", format!("no kite hook for {} in {}'s settings", missing.join(", "), dir.display()), install.clone())
    } else if !stale.is_empty() {
        Check::fail("hooks", format!("hook command not found: {}", stale.join(", ")), format!("{install} again to point the hooks at the installed kite"))
    } else {
        Check::ok("hooks", format!("{}: {}", found_in.join(", "), kite_agent::claude::HOOKS.iter().map(|(e, _, _)| *e).collect::<Vec<_>>().join(", ")))
    });
    let mcp_path = dir.join(".mcp.json");
    checks.push(match read_json(&mcp_path) {
        None => Check::fail("mcp", format!("no {}", mcp_path.display()), install.clone()),
        Some(Err(e)) => Check::fail("mcp", e, format!("fix the JSON, then {install}")),
        Some(Ok(m)) => match m["mcpServers"]["kite"]["command"].as_str() {
            None => Check::fail("mcp", format!("{} has no 'kite' server", mcp_path.display()), install.clone()),
            Some(c) if !kite_strategy::audit::missing_program(c, dir).is_none() => Check::fail("mcp", format!("the MCP command {c} is not there"), format!("{install} again")),
            Some(c) => Check::ok("mcp", format!("{}: {c} mcp", mcp_path.display())),
        },
    });
    let granted = settings.iter().filter_map(|(_, v)| v.as_ref().ok()).any(|s| {
        s["permissions"]["allow"].as_array().is_some_and(|a| a.iter().any(|r| r.as_str().is_some_and(|r| r == "mcp__kite" || r.starts_with("mcp__kite__"))))
    });
    checks.push(if granted {
        Check::ok("grant", "kite's MCP tools are allowed (permissions.allow: mcp__kite)")
    } else {
        Check::fail("grant", "kite's MCP tools are not allowed: Claude Code asks before each one, and print mode refuses them", install)
    });
    checks.push(trust(dir));
    checks
}

/// Whether Claude Code is installed, and its version.
fn claude_binary(ctx: &Ctx) -> Check {
    let path = match kite_agent::claude::find(ctx.config.runner.claude.as_deref()) {
        Ok(p) => p,
        Err(e) => return Check::warn("claude", e.to_string(), "spawned agents need Claude Code (or a [runner] command of your own)"),
    };
    match std::process::Command::new(&path).arg("--version").stdin(std::process::Stdio::null()).output() {
        Ok(o) if o.status.success() => Check::ok("claude", format!("{} ({})", String::from_utf8_lossy(&o.stdout).trim(), path.display())),
        Ok(o) => Check::fail("claude", format!("{} --version failed: {}", path.display(), String::from_utf8_lossy(&o.stderr).trim()), "reinstall Claude Code"),
        Err(e) => Check::fail("claude", format!("cannot run {}: {e}", path.display()), "reinstall Claude Code"),
    }
}

/// Whether a person accepted Claude Code's trust dialog for `dir` (`~/.claude.json`). kite's
/// own agents do not need it (they get everything on their command line); a person's session in
/// an untrusted directory is asked first.
fn trust(dir: &Path) -> Check {
    let Some(home) = std::env::var_os("HOME") else { return Check::warn("trust", "HOME is not set", "") };
    let file = PathBuf::from(home).join(".claude.json");
    let key = dir.display().to_string();
    let trusted = read_json(&file).and_then(Result::ok).is_some_and(|v| {
        v["projects"].as_object().is_some_and(|p| {
            p.iter().any(|(k, e)| e["hasTrustDialogAccepted"].as_bool() == Some(true) && (key == *k || key.starts_with(&format!("{}/", k.trim_end_matches('/')))))
        })
    });
    if trusted {
        Check::ok("trust", format!("{key} is trusted by Claude Code"))
    } else {
        Check::warn("trust", format!("Claude Code has not been told to trust {key}"), format!("start `claude` in {key} once and accept the trust dialog (kite's own agents do not need it)"))
    }
}

fn templates(ctx: &Ctx) -> Check {
    let cfg = &ctx.config.sched;
    let dir = ctx.places.root.join(&cfg.prompts_dir);
    let set = kite_strategy::TemplateSet::load(cfg.builtin_templates, &dir);
    if !set.errors.is_empty() {
        let errs: Vec<String> = set.errors.iter().map(|e| e.to_string().replace('\n', " ")).collect();
        return Check::fail("templates", errs.join("; "), "fix the named template (or delete it to get the built-in back); `kite sched templates` lists them");
    }
    let builtin = set.templates.iter().filter(|t| t.origin == kite_strategy::Origin::Builtin).count();
    let own = set.templates.len() - builtin;
    if set.templates.is_empty() {
        return Check::warn("templates", format!("none: built-ins are off and {} has none", dir.display()), "set [sched] builtin_templates = true, or add templates to prompts/");
    }
    Check::ok("templates", format!("{} loaded ({builtin} built-in, {own} from {})", set.templates.len(), dir.display()))
}

fn vault(ctx: &Ctx) -> Check {
    if !ctx.places.home.is_dir() {
        return Check::warn("vault", format!("no index yet: {} does not exist", ctx.places.home.display()), "`kite install` creates the home; the index is built from vault/ on first use");
    }
    let config = super::vault::config(ctx);
    let has_model = config.model_dir.is_some();
    let v = match super::vault::open_with(config) {
        Ok(v) => v,
        Err(e) => return Check::fail("vault", format!("{e:#}"), format!("move the broken file away, then `kite vault reindex` (the notes in {} are the truth)", ctx.places.vault.display())),
    };
    let stats = match v.stats() {
        Ok(s) => s,
        Err(e) => return Check::fail("vault", e.to_string(), "`kite vault reindex` rebuilds the index from the note files"),
    };
    let detail = format!("{} notes in {}, {} indexed, {} with vectors", stats.files, stats.dir.display(), stats.index.notes, stats.index.with_vector);
    if !stats.last_sync.skipped.is_empty() {
        let names: Vec<String> = stats.last_sync.skipped.iter().map(|(f, why)| format!("{f} ({why})")).collect();
        return Check::warn("vault", format!("{detail}; skipped: {}", names.join(", ")), "fix or remove the named note files");
    }
    if has_model && stats.index.with_vector < stats.index.notes {
        // The open above embeds what it can; what is left could not be embedded.
        return Check::warn("vault", detail, "`kite vault reindex` embeds the notes that have no vector");
    }
    Check::ok("vault", detail)
}

fn permissions(home: &Path) -> Check {
    let meta = match std::fs::metadata(home) {
        Ok(m) => m,
        Err(_) => return Check::warn("home", format!("{} does not exist yet", home.display()), "`kite install` creates it (mode 0700)"),
    };
    let mode = meta.permissions().mode() & 0o777;
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Check::fail("home", format!("{} belongs to uid {}, not you ({me})", home.display(), meta.uid()), format!("chown {me} {}", home.display()));
    }
    if mode & 0o077 != 0 {
        return Check::fail("home", format!("{} has mode {mode:o}: other users could reach the socket", home.display()), format!("chmod 700 {}", home.display()));
    }
    Check::ok("home", format!("{} is private (mode {mode:o})", home.display()))
}
