//! The built-in `issues` context provider: the project's open GitHub issues that carry a label,
//! through `gh issue list --json`.
//!
//! kite does not talk to GitHub itself: `gh` holds the person's login, knows the repository from
//! its remotes and handles enterprise hosts. A machine without `gh`, or with `gh` not logged in,
//! skips the issues template with that reason (once per round, not as an error); a `gh` that
//! fails while logged in is a provider error and the round goes on.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::context::Provided;
use crate::SourceError;
use kite_git::proc::{self, Exit, Shell};

/// `[sched.issues]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IssuesConfig {
    /// Only issues carrying this label become tasks.
    pub label: String,
    /// Issues asked for per round; a round that gets this many may not have seen them all, so
    /// it retires nothing.
    pub limit: usize,
    /// The `gh` program (a path, or a name on PATH).
    pub gh: String,
}

impl Default for IssuesConfig {
    fn default() -> Self {
        IssuesConfig { label: "kite".into(), limit: 100, gh: "gh".into() }
    }
}

const GH_TIMEOUT: Duration = Duration::from_secs(60);
/// Characters of an issue's body kept in the task.
const BODY_CHARS: usize = 4000;

async fn gh(repo: &Path, cfg: &IssuesConfig, args: &str) -> std::io::Result<proc::Output> {
    proc::run(Shell {
        command: proc::Program::Sh(&format!("{} {args}", cfg.gh)),
        cwd: repo,
        env: vec![("GH_PROMPT_DISABLED".into(), "1".into()), ("NO_COLOR".into(), "1".into())],
        stdin: None,
        timeout: Some(GH_TIMEOUT),
        cap: 16 << 20,
    })
    .await
}

/// `issues`: `{label, complete, open: [{number, title, body, labels, url}]}`, oldest first.
pub async fn issues_context(repo: &Path, cfg: &IssuesConfig) -> Result<Provided, SourceError> {
    if let Some(program) = crate::audit::missing_program(&cfg.gh, repo) {
        return Ok(Provided::Unavailable(format!("`{program}` is not installed (not on PATH); the issues template runs once it is")));
    }
    let auth = gh(repo, cfg, "auth status").await.map_err(|source| SourceError::Spawn { program: cfg.gh.clone(), source })?;
    if auth.exit != Exit::Code(0) {
        return Ok(Provided::Unavailable(format!("`{} auth status` says it is not logged in; run `gh auth login`", cfg.gh)));
    }
    let label = cfg.label.replace('\'', "");
    let args = format!(
        "issue list --state open --label '{label}' --limit {} --json number,title,body,labels,url",
        cfg.limit
    );
    let o = gh(repo, cfg, &args).await.map_err(|source| SourceError::Spawn { program: cfg.gh.clone(), source })?;
    if o.exit != Exit::Code(0) {
        return Err(SourceError::Failed { command: format!("{} {args}", cfg.gh), exit: o.exit, stderr: proc::tail(o.stderr.trim(), 400).into() });
    }
    let listed: Vec<Value> = serde_json::from_str(&o.stdout).map_err(|e| SourceError::Unreadable {
        what: format!("`{} issue list`", cfg.gh),
        expected: "a JSON list",
        why: e.to_string(),
    })?;
    let mut open: Vec<Value> = listed
        .iter()
        .filter_map(|i| {
            let number = i["number"].as_u64()?;
            let body: String = i["body"].as_str().unwrap_or_default().chars().take(BODY_CHARS).collect();
            let labels: Vec<&str> = i["labels"].as_array().into_iter().flatten().filter_map(|l| l["name"].as_str()).collect();
            Some(json!({
                "number": number, "title": i["title"].as_str().unwrap_or_default(), "body": body.trim(),
                "labels": labels, "url": i["url"].as_str().unwrap_or_default(),
            }))
        })
        .collect();
    open.sort_by_key(|i| i["number"].as_u64());
    Ok(Provided::Context(json!({"label": cfg.label, "complete": listed.len() < cfg.limit, "open": open})))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for `gh` (the real one needs a GitHub login): it answers `auth status` as
    /// told and prints the issue list it was given.
    fn fake_gh(dir: &Path, logged_in: bool, list: &str) -> IssuesConfig {
        let script = dir.join("gh");
        let auth = if logged_in { "exit 0" } else { "echo 'You are not logged into any GitHub hosts.' >&2; exit 1" };
        std::fs::write(
            &script,
            format!("#!/bin/sh\ncase \"$1 $2\" in\n  'auth status') {auth} ;;\n  'issue list') echo \"$*\" > {}/args; cat <<'JSON'\n{list}\nJSON\n ;;\nesac\n", dir.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        IssuesConfig { gh: script.display().to_string(), label: "agent".into(), limit: 3 }
    }

    #[tokio::test]
    async fn open_labelled_issues_become_the_context() {
        let dir = tempfile::tempdir().unwrap();
        let list = r#"[{"number": 12, "title": "Crash on empty input", "body": "Steps:\n1. run\n", "labels": [{"name": "agent"}, {"name": "bug"}], "url": "https://github.com/o/r/issues/12"},
                       {"number": 7, "title": "Docs typo", "body": "", "labels": [], "url": "u"}]"#;
        let cfg = fake_gh(dir.path(), true, list);
        let Provided::Context(v) = issues_context(dir.path(), &cfg).await.unwrap() else { panic!("listed") };
        assert_eq!(v["open"][0]["number"], 7, "oldest first");
        assert_eq!(v["open"][1]["labels"], json!(["agent", "bug"]));
        assert_eq!(v["open"][1]["body"], "Steps:\n1. run");
        assert_eq!(v["complete"], true);
        let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
        assert!(args.contains("--label agent") && args.contains("--state open") && args.contains("--json"), "{args}");
    }

    #[tokio::test]
    async fn no_gh_or_no_login_skips_and_a_failure_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = IssuesConfig { gh: "kite-no-such-gh".into(), ..Default::default() };
        let Provided::Unavailable(why) = issues_context(dir.path(), &missing).await.unwrap() else { panic!() };
        assert!(why.contains("not installed"), "{why}");
        let cfg = fake_gh(dir.path(), false, "[]");
        let Provided::Unavailable(why) = issues_context(dir.path(), &cfg).await.unwrap() else { panic!() };
        assert!(why.contains("gh auth login"), "{why}");
        let cfg = fake_gh(dir.path(), true, "not json");
        let e = issues_context(dir.path(), &cfg).await.unwrap_err();
        assert!(e.to_string().contains("did not print a JSON list"), "{e}");
        // As many as the limit: maybe not all of them, so the listing is not complete.
        let cfg = fake_gh(dir.path(), true, r#"[{"number": 1}, {"number": 2}, {"number": 3}]"#);
        let Provided::Context(v) = issues_context(dir.path(), &cfg).await.unwrap() else { panic!() };
        assert_eq!(v["complete"], false);
    }
}
