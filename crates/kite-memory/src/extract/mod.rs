//! Turning a finished session's transcript into proposed notes.
//!
//! Two extractors behind one trait: [`BuiltinExtractor`] (in `builtin`) works offline with no
//! model, from what a session says in so many words; [`CommandExtractor`] hands a rendered
//! prompt to a command such as `claude -p` and reads JSON notes back. Either way the vault redacts
//! and de-duplicates what comes out before anything is written.

mod builtin;

pub use builtin::BuiltinExtractor;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::{MemoryError, Result};
use crate::note::{clean_title, Kind, NewNote, MAX_BODY_BYTES};
use crate::redact::redact;
use crate::transcript::{truncate_chars, Transcript};

/// A note proposed by an extractor.
pub type ProposedNote = NewNote;

/// The default extraction prompt (prompts/extract.md.tera), built in so that the binary works
/// from any directory.
pub const DEFAULT_PROMPT: &str = include_str!("../../../../prompts/extract.md.tera");

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

/// Runs a command (through `sh -c`) with the rendered prompt on stdin and reads JSON notes from its
/// stdout: a list of `{"kind", "title", "body", "tags"}` or `{"notes": [...]}`, optionally inside
/// a Markdown code fence. Anything else is an error and nothing is written.
#[derive(Debug, Clone)]
pub struct CommandExtractor {
    pub command: String,
    /// Tera source of the prompt.
    pub template: String,
    pub timeout: Duration,
    /// Transcript characters given to one prompt; a longer transcript goes in parts.
    pub max_transcript_chars: usize,
    /// Prompts one transcript may take (the first and the last parts are kept beyond that).
    pub max_parts: usize,
}

impl CommandExtractor {
    pub fn new(command: impl Into<String>) -> CommandExtractor {
        CommandExtractor {
            command: command.into(),
            template: DEFAULT_PROMPT.to_string(),
            timeout: Duration::from_secs(300),
            max_transcript_chars: 60_000,
            max_parts: 6,
        }
    }

    /// Renders the prompt for a transcript (redacted: it leaves the process); the first part
    /// when the transcript is long.
    pub fn render_prompt(&self, t: &Transcript, source: &str) -> Result<String> {
        let parts = t.condensed_parts(self.max_transcript_chars, self.max_parts);
        self.render_part(t, source, parts.first().map(String::as_str).unwrap_or(""), 1, parts.len().max(1))
    }

    fn render_part(&self, t: &Transcript, source: &str, text: &str, part: usize, parts: usize) -> Result<String> {
        let mut ctx = tera::Context::new();
        ctx.insert("transcript", &redact(text).into_owned());
        ctx.insert("source", source);
        ctx.insert("session_id", &t.session_id.clone().unwrap_or_default());
        ctx.insert("cwd", &t.cwd.clone().unwrap_or_default());
        ctx.insert("kinds", &["decision", "status", "pattern", "antipattern", "preference", "fact"]);
        ctx.insert("max_notes", &8);
        ctx.insert("part", &part);
        ctx.insert("parts", &parts);
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

    /// One prompt's notes: a malformed answer is asked for once more, saying what was wrong; a
    /// second malformed answer is an error.
    fn ask(&self, prompt: &str, source: &str) -> Result<Vec<ProposedNote>> {
        let first = self.run(prompt)?;
        match parse_notes_json(&first, source) {
            Ok(notes) => Ok(notes),
            Err(e) => {
                tracing::warn!(command = %self.command, "the extraction command's answer is malformed, asking once more: {e}");
                let again = format!(
                    "{prompt}\n\nYour previous answer could not be used ({e}). Answer again with the JSON list only, nothing around it."
                );
                let second = self.run(&again)?;
                parse_notes_json(&second, source).map_err(|e2| {
                    MemoryError::Extract(format!("`{}` answered with malformed JSON twice (first: {e}; then: {e2}); nothing was written", self.command))
                })
            }
        }
    }

    fn run(&self, prompt: &str) -> Result<String> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            // An extraction is kite's own agent run: kite's hooks do nothing in it (its SessionEnd
            // would queue its own transcript, in a loop).
            .env("KITE_HOOKS_OFF", "1")
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
        let parts = t.condensed_parts(self.max_transcript_chars, self.max_parts);
        let mut notes: Vec<ProposedNote> = vec![];
        let mut titles = std::collections::HashSet::new();
        for (i, text) in parts.iter().enumerate() {
            if parts.len() > 1 {
                tracing::info!(part = i + 1, parts = parts.len(), "extraction: asking `{}`", self.command);
            }
            let prompt = self.render_part(t, source, text, i + 1, parts.len())?;
            for n in self.ask(&prompt, source)? {
                // Two parts may propose the same note: it is kept once.
                if titles.insert(n.title.to_lowercase()) {
                    notes.push(n);
                }
            }
        }
        Ok(notes)
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
