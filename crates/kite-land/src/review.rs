//! The review gate (`[merge] review`): tests passing is not enough (maintainers would not merge
//! about half of the agent changes that pass a benchmark's tests), so before a verified candidate
//! lands a reviewer reads it. The reviewer is Claude Code through the adapter's reviewer profile:
//! read-only tools only (`--tools Read,Grep,Glob`, not merely pre-approved), no kite hooks. It is
//! given the task, the diff and the verify output (`prompts/review.md.tera`, built in, ejectable
//! with `kite sched eject review`) and answers with findings as JSON. A `blocker` sends the task
//! back with the findings as the next attempt's context; other findings are recorded on the
//! landing. A malformed or missing answer is asked again once, then recorded as a failed review,
//! which never counts as a pass: the task goes back too.

use std::path::Path;

use kite_agent::claude;
use kite_agent::cost::Cost;
use kite_core::{Finding, Review, ReviewOutcome};
use kite_git::proc::{self, Shell};

use crate::MergeConfig;

/// The built-in review prompt.
pub const PROMPT: &str = include_str!("../../../prompts/review.md.tera");

/// Characters of the diff the reviewer is given (it can read the files for the rest).
const DIFF_CHARS: usize = 40_000;

/// What the reviewer is shown.
pub struct Shown<'a> {
    pub task_id: i64,
    pub title: &'a str,
    pub body: &'a str,
    pub target: &'a str,
    pub diff: &'a str,
    pub verify_command: Option<&'a str>,
    pub verify_output: &'a str,
}

/// The review prompt for `shown`.
pub fn render(template: &str, shown: &Shown<'_>) -> Result<String, String> {
    let mut diff: String = shown.diff.chars().take(DIFF_CHARS).collect();
    let diff_cut = diff.len() < shown.diff.len();
    if diff_cut {
        diff.push_str("\n[...]");
    }
    let mut ctx = tera::Context::new();
    ctx.insert("task_id", &shown.task_id);
    ctx.insert("title", shown.title);
    ctx.insert("body", shown.body);
    ctx.insert("target", shown.target);
    ctx.insert("diff", &diff);
    ctx.insert("diff_cut", &diff_cut);
    ctx.insert("verify_command", &shown.verify_command);
    ctx.insert(
        "verify_output",
        proc::tail(shown.verify_output.trim(), 4000),
    );
    tera::Tera::one_off(template, &ctx, false)
        .map_err(|e| format!("the review prompt does not render: {e:?}"))
}

/// Runs the reviewer in `dir` (the candidate checked out) and reads its verdict; asks twice at
/// most. The verdict and what every try cost together.
pub async fn review(cfg: &MergeConfig, dir: &Path, prompt: &str) -> (Review, Cost) {
    let mut spent = Cost::default();
    let binary = match claude::find(cfg.claude.as_deref()) {
        Ok(b) => b,
        Err(e) => return (failed(format!("no reviewer: {e}"), &spent), spent),
    };
    let mut why = String::new();
    for attempt in 1..=2 {
        let (answer, cost) = ask(&binary, cfg, dir, prompt).await;
        spent.add(&cost);
        match answer {
            Ok(findings) => {
                let blocked = findings.iter().any(|f| f.severity == "blocker");
                let outcome = if blocked {
                    ReviewOutcome::Blocked
                } else {
                    ReviewOutcome::Passed
                };
                let review = Review {
                    outcome,
                    findings,
                    detail: None,
                    usd: spent.usd,
                    tokens: spent.usage.total(),
                };
                return (review, spent);
            }
            Err(e) => {
                tracing::warn!(attempt, "the review gave no verdict: {e}");
                why = e;
            }
        }
    }
    (
        failed(format!("no readable verdict after 2 tries: {why}"), &spent),
        spent,
    )
}

/// A review that could not judge (which never passes), with what it cost so far.
pub fn failed(detail: String, spent: &Cost) -> Review {
    Review {
        outcome: ReviewOutcome::Failed,
        findings: vec![],
        detail: Some(detail),
        usd: spent.usd,
        tokens: spent.usage.total(),
    }
}

/// One try: the findings, and what the try cost (nothing when the reviewer did not report).
async fn ask(
    binary: &Path,
    cfg: &MergeConfig,
    dir: &Path,
    prompt: &str,
) -> (Result<Vec<Finding>, String>, Cost) {
    let argv = claude::argv(
        binary,
        claude::Profile::Reviewer,
        &claude::Invocation::default(),
    );
    let env = claude::env(claude::Profile::Reviewer);
    let ran = proc::run(Shell {
        command: proc::Program::Exec(&argv),
        cwd: dir,
        env,
        stdin: Some(prompt.to_string()),
        timeout: Some(cfg.review_timeout),
        cap: 4 << 20,
    })
    .await;
    let o = match ran {
        Ok(o) => o,
        Err(e) => {
            return (
                Err(format!("cannot run {}: {e}", binary.display())),
                Cost::default(),
            )
        }
    };
    let result = claude::ResultJson::parse(&o.stdout);
    let cost = result
        .as_ref()
        .map(|r| r.cost(&cfg.prices))
        .unwrap_or_default();
    let answer = match claude::ending(o.exit, result.as_ref(), &o.stderr) {
        claude::Ending::Finished { result, .. } => parse(&result),
        other => Err(format!("the reviewer did not finish: {other:?}")),
    };
    (answer, cost)
}

/// Reads a reviewer's answer: a JSON list of findings, or `{"findings": [...]}`, bare or in a
/// fenced block. Severities are lower-cased; a finding without `what` is malformed.
pub fn parse(answer: &str) -> Result<Vec<Finding>, String> {
    let items = claude::answer_list(answer, "findings")?;
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let mut f: Finding =
                serde_json::from_value(item).map_err(|e| format!("finding {i}: {e}"))?;
            f.severity = f.severity.trim().to_lowercase();
            if f.what.trim().is_empty() || f.severity.is_empty() {
                return Err(format!("finding {i}: no severity or no text"));
            }
            Ok(f)
        })
        .collect()
}

/// The findings in words, one per line (for the task's next attempt and the book).
pub fn describe(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| {
            let at = match (&f.file, f.line) {
                (Some(file), Some(line)) => format!(" {file}:{line}"),
                (Some(file), None) => format!(" {file}"),
                _ => String::new(),
            };
            format!("- [{}]{at}: {}", f.severity, f.what.trim())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The sentence a task carries when the review sends it back.
pub fn reason(r: &Review) -> String {
    match r.outcome {
        ReviewOutcome::Failed => format!(
            "the review gate could not judge it: {} (check that Claude Code runs: `kite doctor`; or set [merge] review = false)",
            r.detail.as_deref().unwrap_or("no verdict")
        ),
        _ => format!("the review gate found a blocker; address these findings:\n{}", describe(&r.findings)),
    }
}

/// Findings counted by severity, in words (`1 major, 2 minor`).
pub fn tally(findings: &[Finding]) -> String {
    let mut by: std::collections::BTreeMap<&str, usize> = Default::default();
    for f in findings {
        *by.entry(f.severity.as_str()).or_default() += 1;
    }
    by.iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_are_read_from_lists_objects_and_fences_and_bad_answers_are_errors() {
        let f = parse(r#"[{"severity": "Blocker", "file": "a.rs", "line": 3, "what": "drops the error"}, {"severity": "nit", "what": "name"}]"#).unwrap();
        assert_eq!(
            (f[0].severity.as_str(), f[0].line, f[1].file.as_deref()),
            ("blocker", Some(3), None)
        );
        assert_eq!(
            parse("Here:\n```json\n{\"findings\": []}\n```").unwrap(),
            vec![]
        );
        for bad in [
            "looks good to me",
            "{\"ok\": true}",
            "[{\"severity\": \"major\"}]",
            "[{\"severity\": \"\", \"what\": \"x\"}]",
            "42",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let r = Review {
            outcome: ReviewOutcome::Blocked,
            findings: f.clone(),
            detail: None,
            usd: 0.0,
            tokens: 0,
        };
        assert!(
            reason(&r).contains("- [blocker] a.rs:3: drops the error\n- [nit]: name"),
            "{}",
            reason(&r)
        );
        assert_eq!(tally(&f), "1 blocker, 1 nit");
    }

    #[test]
    fn the_prompt_shows_the_task_the_diff_and_the_verify_run() {
        let shown = Shown {
            task_id: 7,
            title: "Add a cache",
            body: "Keep the last 10.",
            target: "main",
            diff: "+fn cache() {}",
            verify_command: Some("cargo test"),
            verify_output: "ok",
        };
        let p = render(PROMPT, &shown).unwrap();
        for want in [
            "#7",
            "Add a cache",
            "Keep the last 10.",
            "+fn cache() {}",
            "`cargo test` passed",
            "on `main`",
            "\"severity\"",
        ] {
            assert!(p.contains(want), "missing {want:?} in:\n{p}");
        }
    }
}
