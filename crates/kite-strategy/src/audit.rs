//! Strategy audits: a template with a `command` hands its rendered prompt to that command (an LLM in
//! print mode, say) and reads candidate tasks back as JSON.
//!
//! The answer is untrusted text. It must be a JSON array of `{title, body, priority?, files?,
//! dedup_key?}` (or `{"tasks": [...]}`, or such an array inside a ```json fence, since models like
//! fences). Output that is not JSON is reported and nothing from it is queued; within a valid
//! array, an item without a usable title is reported and skipped.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::SourceError;
use kite_git::proc::{self, Exit, Shell};

/// One task proposed by an audit.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AuditTask {
    pub title: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub priority: Option<i64>,
    #[serde(default)]
    pub files: Vec<String>,
    #[serde(default)]
    pub dedup_key: Option<String>,
}

/// What came back: the usable tasks and a note per rejected item.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditOutput {
    pub tasks: Vec<AuditTask>,
    pub rejected: Vec<String>,
}

/// Runs the command with the prompt on stdin (and in `KITE_TASK_PROMPT`) in `cwd`.
/// The program a shell command runs first, when it cannot be found: a bare name not on PATH, or
/// a path (relative to `cwd`) that does not exist. A built-in audit template names an agent CLI
/// (`claude`) that many machines do not have; that is a reason to skip it, not an error per round.
pub fn missing_program(command: &str, cwd: &Path) -> Option<String> {
    let program = command.split_whitespace().find(|w| !(w.contains('=') && !w.starts_with('=')))?;
    let found = if program.contains('/') {
        cwd.join(program).exists()
    } else {
        std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
    };
    (!found).then(|| program.to_string())
}

/// Runs an audit through Claude Code's audit profile (read-only tools, no kite hooks, no MCP
/// servers); its result text is the audit's answer.
pub async fn run_claude_audit(binary: &Path, prompt: &str, cwd: &Path, timeout: Duration) -> Result<AuditOutput, SourceError> {
    let argv = kite_agent::claude::argv(binary, kite_agent::claude::Profile::Audit, &kite_agent::claude::Invocation::default());
    let mut env = kite_agent::claude::env(kite_agent::claude::Profile::Audit);
    env.push(("KITE_TASK_PROMPT".into(), prompt.to_string()));
    let o = proc::run(Shell { command: proc::Program::Exec(&argv), cwd, env, stdin: Some(prompt.to_string()), timeout: Some(timeout), cap: 4 << 20 })
        .await
        .map_err(|source| SourceError::Spawn { program: binary.display().to_string(), source })?;
    let result = kite_agent::claude::ResultJson::parse(&o.stdout);
    match kite_agent::claude::ending(o.exit, result.as_ref(), &o.stderr) {
        kite_agent::claude::Ending::Finished { result, .. } => parse_audit_output(&result),
        other => Err(SourceError::AuditUnfinished(format!("{other:?}"))),
    }
}

pub async fn run_audit(command: &str, prompt: &str, cwd: &Path, timeout: Duration) -> Result<AuditOutput, SourceError> {
    let o = proc::run(Shell {
        command: proc::Program::Sh(command),
        cwd,
        env: vec![("KITE_TASK_PROMPT".into(), prompt.to_string())],
        stdin: Some(prompt.to_string()),
        timeout: Some(timeout),
        cap: 4 << 20,
    })
    .await
    .map_err(|source| SourceError::Spawn { program: format!("{command:?}"), source })?;
    if o.exit != Exit::Code(0) {
        return Err(SourceError::Failed { command: command.into(), exit: o.exit, stderr: proc::tail(o.stderr.trim(), 300).into() });
    }
    if o.stdout_truncated {
        return Err(SourceError::TooLong { command: command.into(), mib: 4 });
    }
    parse_audit_output(&o.stdout)
}

/// Reads an audit's stdout. See the module documentation for what is accepted.
pub fn parse_audit_output(stdout: &str) -> Result<AuditOutput, SourceError> {
    let items = kite_agent::claude::answer_list(stdout, "tasks").map_err(SourceError::BadAudit)?;
    let mut out = AuditOutput::default();
    for (i, item) in items.into_iter().enumerate() {
        match serde_json::from_value::<AuditTask>(item) {
            Ok(t) if t.title.trim().is_empty() => out.rejected.push(format!("item {i}: empty title")),
            Ok(mut t) => {
                t.title = t.title.split_whitespace().collect::<Vec<_>>().join(" ");
                out.tasks.push(t);
            }
            Err(e) => out.rejected.push(format!("item {i}: {e}")),
        }
    }
    Ok(out)
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_is_named_and_an_installed_one_is_not() {
        let here = Path::new("/");
        assert_eq!(missing_program("no-such-agent-cli -p --x", here).as_deref(), Some("no-such-agent-cli"));
        assert_eq!(missing_program("FOO=1 no-such-agent-cli -p", here).as_deref(), Some("no-such-agent-cli"));
        assert_eq!(missing_program("sh -c 'echo []'", here), None);
        assert_eq!(missing_program("./nope.sh", here).as_deref(), Some("./nope.sh"));
    }

    fn titles(s: &str) -> Result<(Vec<String>, usize), String> {
        parse_audit_output(s)
            .map(|o| (o.tasks.into_iter().map(|t| t.title).collect(), o.rejected.len()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_arrays_objects_and_fences() {
        assert_eq!(titles(r#"[{"title": "a", "priority": 3}, {"title": "b\n c", "files": ["x"]}]"#), Ok((vec!["a".into(), "b c".into()], 0)));
        assert_eq!(titles(r#"{"tasks": [{"title": "a"}]}"#), Ok((vec!["a".into()], 0)));
        assert_eq!(titles("Here you go:\n```json\n[{\"title\": \"a\"}]\n```\n"), Ok((vec!["a".into()], 0)));
        assert_eq!(titles("[]"), Ok((vec![], 0)));
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", "sure! I think you should", "[{\"title\": ", "{\"x\": 1}", "42", "```json\n[{]\n```"] {
            assert!(matches!(parse_audit_output(bad), Err(SourceError::BadAudit(_))), "{bad:?}");
        }
        // Bad items are rejected one by one.
        let r = titles(r#"[{"title": ""}, {"body": "no title"}, {"title": "ok"}, {"title": "p", "priority": "high"}]"#).unwrap();
        assert_eq!(r, (vec!["ok".into()], 3));
    }

    #[tokio::test]
    async fn runs_the_command_with_the_prompt() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = r#"read line; printf '[{"title": "from %s"}]' "$line""#;
        let o = run_audit(cmd, "prompt\n", dir.path(), Duration::from_secs(20)).await.unwrap();
        assert_eq!(o.tasks[0].title, "from prompt");
        let e = run_audit("echo oops >&2; exit 1", "p", dir.path(), Duration::from_secs(20)).await.unwrap_err();
        assert!(matches!(&e, SourceError::Failed { stderr, .. } if stderr == "oops"), "{e:?}");
        assert!(e.to_string().contains("exit code 1"), "{e}");
    }
}
