//! Turning a finished session's transcript into proposed notes.
//!
//! Two extractors behind one trait: [`BuiltinExtractor`] works offline with no model, from
//! patterns anyone can check (decisions stated in so many words, an error and the step that fixed
//! it, the files most worked on, the session's outcome); [`CommandExtractor`] hands a rendered
//! prompt to a command such as `claude -p` and reads JSON notes back. Either way the vault redacts
//! and de-duplicates what comes out before anything is written.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::{MemoryError, Result};
use crate::note::{clean_title, Kind, NewNote, MAX_BODY_BYTES};
use crate::redact::redact;
use crate::transcript::{truncate_chars, Event, Role, Transcript};

/// A note proposed by an extractor.
pub type ProposedNote = NewNote;

/// The default extraction prompt (prompts/extract.md.tera), built in so that the binary works
/// from any directory.
pub const DEFAULT_PROMPT: &str = include_str!("../../../prompts/extract.md.tera");

/// What an extractor's proposals become before they are stored, the same on every path that
/// extracts (`kite vault extract`, the daemon's extraction queue), so one transcript gives the
/// same notes either way: secrets redacted from title and body, the source filled in, an
/// oversized body cut, and a proposal that still is not a valid note set aside with the reason
/// (one bad proposal does not cost the good ones).
pub fn prepare(proposed: Vec<ProposedNote>, source: &str) -> (Vec<NewNote>, Vec<String>) {
    let mut notes = Vec::with_capacity(proposed.len());
    let mut skipped = Vec::new();
    for mut n in proposed {
        n.title = redact(&n.title).into_owned();
        n.body = redact(&n.body).into_owned();
        n.source.get_or_insert_with(|| source.to_string());
        if n.body.len() > MAX_BODY_BYTES {
            n.body = truncate_chars(&n.body, MAX_BODY_BYTES / 4);
        }
        match n.validate() {
            Ok(()) => notes.push(n),
            Err(e) => skipped.push(format!("{:?}: {e}", truncate_chars(&n.title, 80))),
        }
    }
    (notes, skipped)
}

/// Something that proposes notes from a transcript.
pub trait Extractor {
    /// A short name for logs and reports.
    fn name(&self) -> &str;
    /// Proposes notes; `source` is what the notes should name as their origin.
    fn extract(&self, transcript: &Transcript, source: &str) -> Result<Vec<ProposedNote>>;
}

/// The offline extractor: no model, only patterns.
#[derive(Debug, Clone)]
pub struct BuiltinExtractor {
    pub max_decisions: usize,
    pub max_fixes: usize,
    pub max_files: usize,
}

impl Default for BuiltinExtractor {
    fn default() -> Self {
        BuiltinExtractor { max_decisions: 5, max_fixes: 5, max_files: 6 }
    }
}

fn decision_re() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(
            r"(?i)(\bwe(?:'ve| have)? decided\b|\bi(?:'ve| have)? decided\b|\bdecided to\b|\bdecision:|\blet'?s (?:use|go with|keep|stick with|switch to)\b|\bgoing with\b|\bwe(?:'ll| will) use\b|\bwe chose\b|\bopted for\b|\bsettled on\b|\bfrom now on\b)",
        )
        .unwrap_or_else(|e| panic!("decision pattern does not compile: {e}"))
    })
}

fn error_re() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"(?im)^(?:error\b|error\[|fatal:|traceback \(most recent call last\)|.*\bpanicked at\b|.*\bfailed to compile\b|.*\btest result: FAILED\b|FAILED\b|.*\bcommand not found\b|.*\bno such file or directory\b)")
            .unwrap_or_else(|e| panic!("error pattern does not compile: {e}"))
    })
}

/// Splits text into sentences (on `.`, `!`, `?` followed by a space, and on line breaks).
fn sentences(text: &str) -> Vec<String> {
    let mut out = vec![];
    for line in text.lines() {
        let line = line.trim().trim_start_matches(['-', '*', '#', '>', ' ']);
        let mut cur = String::new();
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            cur.push(c);
            if matches!(c, '.' | '!' | '?') && chars.peek().is_none_or(|n| n.is_whitespace()) {
                let s = cur.trim().to_string();
                if !s.is_empty() {
                    out.push(s);
                }
                cur.clear();
            }
        }
        let s = cur.trim().to_string();
        if !s.is_empty() {
            out.push(s);
        }
    }
    out
}

/// Whether a tool result reads as a failure.
fn looks_like_error(text: &str, is_error: bool) -> bool {
    is_error || error_re().is_match(text)
}

/// The user refusing a tool call is not an error worth remembering.
fn is_rejection(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("doesn't want to proceed") || t.contains("tool use was rejected") || t.contains("user rejected")
}

fn first_error_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| error_re().is_match(l))
        .or_else(|| text.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("");
    truncate_chars(line, 160)
}

/// A short, readable description of a tool call's input.
fn describe_input(name: &str, input: &Value) -> String {
    for key in ["command", "file_path", "path", "notebook_path", "pattern", "url", "query"] {
        if let Some(s) = input.get(key).and_then(Value::as_str) {
            return format!("{name} `{}`", truncate_chars(s.lines().next().unwrap_or(s), 200));
        }
    }
    format!("{name} {}", truncate_chars(&input.to_string(), 200))
}

/// The file a tool call works on: `file_path`/`notebook_path`, or a `path` that names a file
/// (search tools pass directories there).
fn file_of(input: &Value) -> Option<String> {
    let named = ["file_path", "notebook_path"].iter().find_map(|k| input.get(*k).and_then(Value::as_str));
    let path = input.get("path").and_then(Value::as_str).filter(|p| {
        let last = p.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        !p.ends_with('/') && last.contains('.') && !last.starts_with('.')
    });
    named.or(path).filter(|s| !s.is_empty()).map(str::to_string)
}

/// What makes two tool calls "the same step": the tool and, for shell commands, the program and
/// its first argument (`cargo build`), for file tools the file.
fn step_key(name: &str, input: &Value) -> String {
    if let Some(cmd) = input.get("command").and_then(Value::as_str) {
        let words: Vec<&str> = cmd.split_whitespace().filter(|w| !w.contains('=') || w.starts_with('-')).take(2).collect();
        return format!("{name} {}", words.join(" "));
    }
    match file_of(input) {
        Some(f) => format!("{name} {f}"),
        None => name.to_string(),
    }
}

fn is_edit_tool(name: &str) -> bool {
    matches!(name, "Edit" | "Write" | "MultiEdit" | "NotebookEdit" | "str_replace_based_edit_tool" | "apply_patch")
}

/// A closing statement, not a plan ("Let me look at ...") or a one-word reply.
fn is_outcome_like(text: &str) -> bool {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    t.chars().count() >= 30 && !["let me ", "i'll ", "i will ", "now i", "next, i", "first, "].iter().any(|p| lower.starts_with(p))
}

impl BuiltinExtractor {
    fn decisions(&self, t: &Transcript, source: &str) -> Vec<ProposedNote> {
        let mut out: Vec<ProposedNote> = vec![];
        for e in &t.events {
            let Event::Text { role, text, sidechain: false } = e else { continue };
            for s in sentences(text) {
                if out.len() >= self.max_decisions {
                    return out;
                }
                if s.ends_with('?') || s.chars().count() < 12 || !decision_re().is_match(&s) {
                    continue;
                }
                let title = clean_title(&truncate_chars(s.trim_end_matches('.'), 100));
                if out.iter().any(|n| n.title == title) {
                    continue;
                }
                let who = if *role == Role::User { "the user" } else { "the assistant" };
                out.push(NewNote {
                    kind: Kind::Decision,
                    title,
                    tags: vec!["extracted".into(), "decision".into()],
                    project: None,
                    source: Some(source.to_string()),
                    body: format!("{s}\n\n(Stated by {who} in the session.)"),
                });
            }
        }
        out
    }

    fn fixes(&self, t: &Transcript, source: &str) -> Vec<ProposedNote> {
        let mut uses: HashMap<&str, (&str, &Value)> = HashMap::new();
        // Open errors, by tool name: (error line, failing call, assistant text seen since).
        let mut open: Vec<(String, String, String, Vec<String>)> = vec![];
        let mut out: Vec<ProposedNote> = vec![];
        for e in t.events.iter().filter(|e| !e.sidechain()) {
            match e {
                Event::ToolUse { id, name, input, .. } => {
                    uses.insert(id.as_str(), (name.as_str(), input));
                }
                Event::Text { role: Role::Assistant, text, .. } => {
                    for o in &mut open {
                        o.3.push(text.clone());
                    }
                }
                Event::ToolResult { tool_use_id, text, is_error, .. } => {
                    let Some((name, input)) = uses.get(tool_use_id.as_str()).copied() else { continue };
                    if is_rejection(text) {
                        continue;
                    }
                    let key = step_key(name, input);
                    if looks_like_error(text, *is_error) {
                        let line = first_error_line(text);
                        if !open.iter().any(|o| o.0 == key && o.1 == line) {
                            open.push((key, line, describe_input(name, input), vec![]));
                        }
                        continue;
                    }
                    // A success of the same step (same program and subcommand, or same file) fixes
                    // the errors it had; an unrelated success fixes nothing.
                    let fixed: Vec<_> = open.iter().filter(|o| o.0 == key).cloned().collect();
                    open.retain(|o| o.0 != key);
                    for (_, line, failing, said) in fixed {
                        if out.len() >= self.max_fixes || out.iter().any(|n: &NewNote| n.body.contains(&line)) {
                            continue;
                        }
                        let explanation = said
                            .iter()
                            .rev()
                            .find(|s| s.trim().chars().count() > 10)
                            .map(|s| format!("\n\nWhat changed: {}", truncate_chars(s.trim(), 600)))
                            .unwrap_or_default();
                        out.push(NewNote {
                            kind: Kind::Pattern,
                            title: clean_title(&format!("Fix for: {}", truncate_chars(&line, 90))),
                            tags: vec!["extracted".into(), "error-fix".into(), name.to_lowercase()],
                            project: None,
                            source: Some(source.to_string()),
                            body: format!(
                                "Error from {failing}:\n\n    {line}\n\nFixed by a later successful {}.{explanation}",
                                describe_input(name, input)
                            ),
                        });
                    }
                }
                _ => {}
            }
        }
        out
    }

    fn files(&self, t: &Transcript, source: &str) -> Option<ProposedNote> {
        let mut counts: HashMap<String, (usize, usize)> = HashMap::new();
        for e in &t.events {
            if let Event::ToolUse { name, input, .. } = e {
                if let Some(mut f) = file_of(input) {
                    if let Some(cwd) = &t.cwd {
                        if let Some(rel) = f.strip_prefix(&format!("{}/", cwd.trim_end_matches('/'))) {
                            f = rel.to_string();
                        }
                    }
                    let c = counts.entry(f).or_default();
                    if is_edit_tool(name) {
                        c.0 += 1;
                    } else {
                        c.1 += 1;
                    }
                }
            }
        }
        if counts.is_empty() {
            return None;
        }
        let mut files: Vec<(String, (usize, usize))> = counts.into_iter().collect();
        files.sort_by(|a, b| (b.1 .0 * 2 + b.1 .1).cmp(&(a.1 .0 * 2 + a.1 .1)).then(a.0.cmp(&b.0)));
        files.truncate(self.max_files);
        let names: Vec<&str> = files.iter().take(3).map(|f| f.0.as_str()).collect();
        let mut body = String::from("Files touched most in this session (edits, reads):\n\n");
        for (f, (edits, reads)) in &files {
            body.push_str(&format!("- {f} ({edits} edits, {reads} reads)\n"));
        }
        Some(NewNote {
            kind: Kind::Status,
            title: clean_title(&format!("Files most worked on: {}", names.join(", "))),
            tags: vec!["extracted".into(), "files".into()],
            project: None,
            source: Some(source.to_string()),
            body,
        })
    }

    fn outcome(&self, t: &Transcript, source: &str) -> Option<ProposedNote> {
        let text = t.summaries.last().cloned().or_else(|| {
            t.events.iter().rev().find_map(|e| match e {
                Event::Text { role: Role::Assistant, text, sidechain: false } if is_outcome_like(text) => Some(text.clone()),
                _ => None,
            })
        })?;
        let first = sentences(&text).into_iter().next().unwrap_or_else(|| text.clone());
        let mut body = truncate_chars(text.trim(), 1500);
        if let Some(first_ask) = t.events.iter().find_map(|e| match e {
            Event::Text { role: Role::User, text, sidechain: false } => Some(text.clone()),
            _ => None,
        }) {
            body.push_str(&format!("\n\nThe session started from: {}", truncate_chars(first_ask.trim(), 300)));
        }
        Some(NewNote {
            kind: Kind::Status,
            title: clean_title(&format!("Session outcome: {}", truncate_chars(first.trim_end_matches('.'), 100))),
            tags: vec!["extracted".into(), "outcome".into()],
            project: None,
            source: Some(source.to_string()),
            body,
        })
    }
}

impl Extractor for BuiltinExtractor {
    fn name(&self) -> &str {
        "builtin"
    }

    fn extract(&self, t: &Transcript, source: &str) -> Result<Vec<ProposedNote>> {
        let mut notes = self.decisions(t, source);
        notes.extend(self.fixes(t, source));
        notes.extend(self.files(t, source));
        notes.extend(self.outcome(t, source));
        for n in &mut notes {
            n.title = redact(&n.title).into_owned();
            n.body = redact(&n.body).into_owned();
        }
        Ok(notes)
    }
}

/// Runs a command (through `sh -c`) with the rendered prompt on stdin and reads JSON notes from its
/// stdout: a list of `{"kind", "title", "body", "tags"}` or `{"notes": [...]}`, optionally inside
/// a Markdown code fence. Anything else is an error and nothing is written.
#[derive(Debug, Clone)]
pub struct CommandExtractor {
    pub command: String,
    /// Tera source of the prompt.
    pub template: String,
    pub timeout: Duration,
    /// Transcript characters given to the prompt.
    pub max_transcript_chars: usize,
}

impl CommandExtractor {
    pub fn new(command: impl Into<String>) -> CommandExtractor {
        CommandExtractor {
            command: command.into(),
            template: DEFAULT_PROMPT.to_string(),
            timeout: Duration::from_secs(300),
            max_transcript_chars: 60_000,
        }
    }

    /// Renders the prompt for a transcript (redacted: it leaves the process).
    pub fn render_prompt(&self, t: &Transcript, source: &str) -> Result<String> {
        let mut ctx = tera::Context::new();
        ctx.insert("transcript", &redact(&t.condensed(self.max_transcript_chars)).into_owned());
        ctx.insert("source", source);
        ctx.insert("session_id", &t.session_id.clone().unwrap_or_default());
        ctx.insert("cwd", &t.cwd.clone().unwrap_or_default());
        ctx.insert("kinds", &["decision", "status", "pattern", "antipattern", "preference", "fact"]);
        ctx.insert("max_notes", &8);
        tera::Tera::one_off(&self.template, &ctx, false).map_err(|e| {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            MemoryError::Template(msg)
        })
    }

    fn run(&self, prompt: &str) -> Result<String> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| MemoryError::Extract(format!("cannot run `{}`: {e}", self.command)))?;
        let mut stdin = child.stdin.take().ok_or_else(|| MemoryError::Extract("no stdin".into()))?;
        let prompt = prompt.to_string();
        let writer = std::thread::spawn(move || {
            // A command that does not read its input is fine: ignore the broken pipe.
            let _ = stdin.write_all(prompt.as_bytes());
        });
        let mut stdout = child.stdout.take().ok_or_else(|| MemoryError::Extract("no stdout".into()))?;
        let mut stderr = child.stderr.take().ok_or_else(|| MemoryError::Extract("no stderr".into()))?;
        let reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = stdout.read_to_end(&mut s);
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = stderr.read_to_end(&mut s);
            s
        });
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() > self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(MemoryError::Extract(format!("`{}` did not finish within {:?}", self.command, self.timeout)));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(MemoryError::Extract(format!("waiting for `{}`: {e}", self.command))),
            }
        };
        let _ = writer.join();
        let out = reader.join().unwrap_or_default();
        let err = err_reader.join().unwrap_or_default();
        if !status.success() {
            let err = String::from_utf8_lossy(&err);
            return Err(MemoryError::Extract(format!(
                "`{}` failed ({status}): {}",
                self.command,
                truncate_chars(err.trim(), 500)
            )));
        }
        String::from_utf8(out).map_err(|_| MemoryError::Extract(format!("`{}` printed invalid UTF-8", self.command)))
    }
}

/// Parses an extraction command's output into notes; strict, so bad output writes nothing.
pub fn parse_notes_json(output: &str, source: &str) -> Result<Vec<ProposedNote>> {
    let bad = |why: String| MemoryError::Extract(format!("the command's output is not a JSON list of notes: {why}"));
    let mut text = output.trim();
    if let Some(start) = text.find("```") {
        let after = &text[start + 3..];
        let after = after.find('\n').map(|i| &after[i + 1..]).unwrap_or(after);
        text = after.find("```").map(|end| &after[..end]).unwrap_or(after).trim();
    }
    let start = text.find(['[', '{']).ok_or_else(|| bad(format!("no JSON in {:?}", truncate_chars(text, 200))))?;
    let value: Value = serde_json::Deserializer::from_str(&text[start..])
        .into_iter::<Value>()
        .next()
        .ok_or_else(|| bad("empty output".into()))?
        .map_err(|e| bad(e.to_string()))?;
    let items = match value {
        Value::Array(items) => items,
        Value::Object(mut o) => match o.remove("notes") {
            Some(Value::Array(items)) => items,
            _ => return Err(bad("an object without a \"notes\" list".into())),
        },
        _ => return Err(bad("neither a list nor an object".into())),
    };
    let mut notes = vec![];
    for (i, item) in items.into_iter().enumerate() {
        let Value::Object(o) = item else { return Err(bad(format!("item {i} is not an object"))) };
        let title = o.get("title").and_then(Value::as_str).map(str::trim).filter(|t| !t.is_empty());
        let Some(title) = title else { return Err(bad(format!("item {i} has no title"))) };
        let body = match o.get("body") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(bad(format!("item {i}: body is not a string"))),
        };
        if body.len() > MAX_BODY_BYTES {
            return Err(MemoryError::TooLarge { size: body.len(), limit: MAX_BODY_BYTES });
        }
        let tags = match o.get("tags") {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(t)) => t.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            Some(_) => return Err(bad(format!("item {i}: tags is not a list"))),
        };
        notes.push(NewNote {
            kind: Kind::parse(o.get("kind").and_then(Value::as_str).unwrap_or("fact")),
            title: redact(&clean_title(title)).into_owned(),
            tags,
            project: None,
            source: Some(source.to_string()),
            body: redact(&body).into_owned(),
        });
    }
    Ok(notes)
}

impl Extractor for CommandExtractor {
    fn name(&self) -> &str {
        "command"
    }

    fn extract(&self, t: &Transcript, source: &str) -> Result<Vec<ProposedNote>> {
        let prompt = self.render_prompt(t, source)?;
        let output = self.run(&prompt)?;
        parse_notes_json(&output, source)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn prepare_redacts_fills_the_source_cuts_and_sets_invalid_proposals_aside() {
        let good = NewNote { title: "Use token ghp_abcdefghijklmnopqrstuvwxyz0123456789AB".into(), body: "x".repeat(MAX_BODY_BYTES + 10), ..Default::default() };
        let bad = NewNote { title: "   ".into(), body: "no title".into(), ..Default::default() };
        let (notes, skipped) = super::prepare(vec![good, bad], "transcript:s1");
        assert_eq!(notes.len(), 1);
        assert!(!notes[0].title.contains("ghp_"), "{}", notes[0].title);
        assert_eq!(notes[0].source.as_deref(), Some("transcript:s1"));
        assert!(notes[0].body.len() <= MAX_BODY_BYTES);
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].contains("title"), "{skipped:?}");
    }
    use super::*;

    fn transcript(lines: &[&str]) -> Transcript {
        Transcript::parse(&lines.join("\n"))
    }

    #[test]
    fn sentences_split() {
        assert_eq!(sentences("One. Two! v1.2 is out? Yes\nnext"), vec!["One.", "Two!", "v1.2 is out?", "Yes", "next"]);
    }

    #[test]
    fn builtin_finds_decisions_fixes_files_and_outcome() {
        let t = transcript(&[
            r#"{"type":"user","cwd":"/p","sessionId":"s","message":{"content":"Which store? We decided to use SQLite with WAL for the queue."}}"#,
            r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"a","name":"Bash","input":{"command":"cargo test"}}]}}"#,
            r#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"a","content":"error[E0425]: cannot find value `x`","is_error":true}]}}"#,
            r#"{"type":"assistant","message":{"content":[{"type":"text","text":"The variable was renamed; I updated the call site."},{"type":"tool_use","id":"b","name":"Edit","input":{"file_path":"/p/src/lib.rs"}}]}}"#,
            r#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"b","content":"ok"}]}}"#,
            r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"c","name":"Bash","input":{"command":"cargo test"}}]}}"#,
            r#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"c","content":"test result: ok. 3 passed"}]}}"#,
            r#"{"type":"assistant","message":{"content":[{"type":"text","text":"All tests pass now after renaming the variable."}]}}"#,
        ]);
        let notes = BuiltinExtractor::default().extract(&t, "transcript:s").unwrap();
        let kinds: Vec<_> = notes.iter().map(|n| (n.kind.as_str().to_string(), n.title.clone())).collect();
        assert!(kinds.iter().any(|(k, t)| k == "decision" && t.contains("SQLite with WAL")), "{kinds:?}");
        let fix = notes.iter().find(|n| n.title.starts_with("Fix for")).expect("a fix note");
        assert!(fix.body.contains("E0425") && fix.body.contains("renamed"), "{}", fix.body);
        assert!(notes.iter().any(|n| n.title.contains("src/lib.rs")));
        assert!(notes.iter().any(|n| n.title.starts_with("Session outcome: All tests pass")));
        assert!(notes.iter().all(|n| n.source.as_deref() == Some("transcript:s")));
    }

    #[test]
    fn rejected_tool_use_is_not_an_error() {
        let t = transcript(&[
            r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"a","name":"Bash","input":{"command":"ls"}}]}}"#,
            r#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"a","content":"The user doesn't want to proceed with this tool use.","is_error":true}]}}"#,
            r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"b","name":"Bash","input":{"command":"ls"}}]}}"#,
            r#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"b","content":"a b"}]}}"#,
        ]);
        assert!(BuiltinExtractor::default().fixes(&t, "s").is_empty());
    }

    #[test]
    fn an_unrelated_success_is_not_a_fix() {
        let t = transcript(&[
            r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"a","name":"Bash","input":{"command":"curl https://x.test"}}]}}"#,
            r#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"a","content":"curl: (6) Could not resolve host","is_error":true}]}}"#,
            r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"b","name":"Bash","input":{"command":"cargo test"}}]}}"#,
            r#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"b","content":"ok"}]}}"#,
        ]);
        assert!(BuiltinExtractor::default().fixes(&t, "s").is_empty());
        assert_eq!(step_key("Bash", &serde_json::json!({"command": "RUST_LOG=debug cargo build -p x"})), "Bash cargo build");
        assert_eq!(file_of(&serde_json::json!({"path": "/p/src"})), None);
        assert_eq!(file_of(&serde_json::json!({"path": "/p/src/a.rs"})).as_deref(), Some("/p/src/a.rs"));
    }

    #[test]
    fn parse_command_output() {
        let ok = "Here you go:\n```json\n[{\"kind\":\"decision\",\"title\":\"Use WAL\",\"body\":\"password=hunter2\",\"tags\":[\"db\"]}]\n```";
        let notes = parse_notes_json(ok, "src").unwrap();
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].kind, Kind::Decision);
        assert_eq!(notes[0].body, "password=[REDACTED]");
        assert_eq!(parse_notes_json("{\"notes\": []}", "s").unwrap().len(), 0);
        for bad in ["", "sorry, no", "[{\"body\":\"x\"}]", "{\"x\":1}", "[1]", "[{\"title\":\"t\",\"tags\":\"a\"}]", "[{\"title\":"] {
            assert!(parse_notes_json(bad, "s").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn prompt_renders_redacted_transcript() {
        let t = transcript(&[r#"{"type":"user","message":{"content":"my key is sk-ant-api03-SECRETSECRETSECRET1234"}}"#]);
        let p = CommandExtractor::new("cat").render_prompt(&t, "transcript:x").unwrap();
        assert!(!p.contains("SECRETSECRET"), "{p}");
        assert!(p.contains("[REDACTED]"));
    }
}
