//! Claude Code transcripts (JSONL) read into a flat list of events.
//!
//! The format is internal to Claude Code and changes between versions, so this reads what it
//! knows and skips the rest: records of type `user`, `assistant` and `summary` are used; `system`,
//! `progress`, `file-history-snapshot` and any type not known yet are skipped; a line that is not
//! JSON (typically the last, cut off while the session was writing) is skipped with a warning.
//! `message.content` is either a string or a list of blocks (`text`, `thinking`, `tool_use`,
//! `tool_result`); unknown block types are skipped too.

use std::path::Path;

use serde_json::Value;

use crate::error::{MemoryError, Result};

/// Largest transcript read (transcripts of long sessions are big, but not this big).
const MAX_TRANSCRIPT_BYTES: u64 = 512 * 1024 * 1024;
/// Tool result text kept per event.
const MAX_RESULT_CHARS: usize = 4000;

/// Who said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// One thing that happened in a session, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Plain text from the user or the assistant.
    Text { role: Role, text: String, sidechain: bool },
    /// A tool call by the assistant.
    ToolUse { id: String, name: String, input: Value, sidechain: bool },
    /// The result of a tool call.
    ToolResult { tool_use_id: String, text: String, is_error: bool, sidechain: bool },
}

impl Event {
    pub fn sidechain(&self) -> bool {
        match self {
            Event::Text { sidechain, .. } | Event::ToolUse { sidechain, .. } | Event::ToolResult { sidechain, .. } => *sidechain,
        }
    }
}

/// A parsed transcript.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transcript {
    pub session_id: Option<String>,
    pub cwd: Option<String>,
    pub git_branch: Option<String>,
    pub events: Vec<Event>,
    /// `summary` records (Claude Code's one-line title of a session), in order.
    pub summaries: Vec<String>,
    /// The summaries Claude Code writes when it compacts a conversation (user records marked
    /// `isCompactSummary`): machine-written, so kept apart from what the user said.
    pub compactions: Vec<String>,
    /// Lines skipped because they were not valid JSON: (1-based line number, error).
    pub bad_lines: Vec<(usize, String)>,
    /// Records skipped because their type is not used.
    pub skipped_records: usize,
}

impl Transcript {
    /// Reads a transcript file.
    pub fn read(path: &Path) -> Result<Transcript> {
        let meta = std::fs::metadata(path).map_err(|e| MemoryError::io("reading transcript", path, e))?;
        if meta.len() > MAX_TRANSCRIPT_BYTES {
            return Err(MemoryError::Transcript { path: path.into(), reason: format!("{} bytes is too large", meta.len()) });
        }
        let bytes = std::fs::read(path).map_err(|e| MemoryError::io("reading transcript", path, e))?;
        let text = String::from_utf8_lossy(&bytes);
        let t = Transcript::parse(&text);
        for (line, err) in &t.bad_lines {
            tracing::warn!(file = %path.display(), line, error = %err, "skipping malformed transcript line");
        }
        if t.events.is_empty() && t.summaries.is_empty() && t.compactions.is_empty() && !t.bad_lines.is_empty() {
            return Err(MemoryError::Transcript { path: path.into(), reason: "no readable record in the file".into() });
        }
        Ok(t)
    }

    /// Parses JSONL text; never fails, bad lines are recorded in `bad_lines`.
    pub fn parse(text: &str) -> Transcript {
        let mut t = Transcript::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let record: Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(e) => {
                    t.bad_lines.push((i + 1, e.to_string()));
                    continue;
                }
            };
            t.add_record(&record);
        }
        t
    }

    fn add_record(&mut self, r: &Value) {
        let kind = r.get("type").and_then(Value::as_str).unwrap_or("");
        if self.session_id.is_none() {
            self.session_id = r.get("sessionId").and_then(Value::as_str).map(str::to_string);
        }
        if self.cwd.is_none() {
            self.cwd = r.get("cwd").and_then(Value::as_str).map(str::to_string);
        }
        if self.git_branch.is_none() {
            self.git_branch = r.get("gitBranch").and_then(Value::as_str).map(str::to_string);
        }
        let sidechain = r.get("isSidechain").and_then(Value::as_bool).unwrap_or(false);
        // Text Claude Code injects as the user (a skill's instructions, a command's expansion).
        if r.get("isMeta").and_then(Value::as_bool).unwrap_or(false) {
            self.skipped_records += 1;
            return;
        }
        if r.get("isCompactSummary").and_then(Value::as_bool).unwrap_or(false) {
            let content = r.get("message").and_then(|m| m.get("content"));
            let text = match content {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(blocks)) => blocks.iter().filter_map(|b| b.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("\n"),
                _ => String::new(),
            };
            if !text.trim().is_empty() {
                self.compactions.push(text);
            }
            return;
        }
        match kind {
            "summary" => {
                if let Some(s) = r.get("summary").and_then(Value::as_str) {
                    if !s.trim().is_empty() {
                        self.summaries.push(s.trim().to_string());
                    }
                }
            }
            "user" | "assistant" => {
                let role = if kind == "user" { Role::User } else { Role::Assistant };
                let Some(content) = r.get("message").and_then(|m| m.get("content")) else {
                    self.skipped_records += 1;
                    return;
                };
                match content {
                    Value::String(s) => self.push_text(role, s, sidechain),
                    Value::Array(blocks) => {
                        for b in blocks {
                            self.add_block(role, b, sidechain);
                        }
                    }
                    _ => self.skipped_records += 1,
                }
            }
            _ => self.skipped_records += 1,
        }
    }

    fn push_text(&mut self, role: Role, text: &str, sidechain: bool) {
        let text = text.trim();
        // Claude Code's own markers ("[Request interrupted by user]", command echoes) are noise.
        if text.is_empty() || (text.starts_with('[') && text.ends_with(']')) || text.starts_with("<command-") || text.starts_with("<local-command") {
            return;
        }
        self.events.push(Event::Text { role, text: text.to_string(), sidechain });
    }

    fn add_block(&mut self, role: Role, b: &Value, sidechain: bool) {
        match b.get("type").and_then(Value::as_str).unwrap_or("") {
            "text" => {
                if let Some(s) = b.get("text").and_then(Value::as_str) {
                    self.push_text(role, s, sidechain);
                }
            }
            "tool_use" => self.events.push(Event::ToolUse {
                id: str_field(b, "id"),
                name: str_field(b, "name"),
                input: b.get("input").cloned().unwrap_or(Value::Null),
                sidechain,
            }),
            "tool_result" => {
                let text = match b.get("content") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Array(parts)) => parts
                        .iter()
                        .filter_map(|p| p.get("text").and_then(Value::as_str))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    _ => String::new(),
                };
                self.events.push(Event::ToolResult {
                    tool_use_id: str_field(b, "tool_use_id"),
                    text: truncate_chars(&text, MAX_RESULT_CHARS),
                    is_error: b.get("is_error").and_then(Value::as_bool).unwrap_or(false),
                    sidechain,
                });
            }
            // thinking, images, and whatever comes next: not used.
            _ => {}
        }
    }

    /// The transcript as plain-text lines for an extraction prompt: summaries and compaction
    /// summaries first, then the session, tool calls and their output trimmed.
    fn condensed_lines(&self) -> Vec<String> {
        let mut lines = vec![];
        for s in &self.summaries {
            lines.push(format!("[summary] {s}"));
        }
        for c in &self.compactions {
            lines.push(format!("[compaction summary] {}", truncate_chars(c, 8000)));
        }
        for e in &self.events {
            if e.sidechain() {
                continue;
            }
            match e {
                Event::Text { role: Role::User, text, .. } => lines.push(format!("[user] {}", truncate_chars(text, 1500))),
                Event::Text { role: Role::Assistant, text, .. } => lines.push(format!("[assistant] {}", truncate_chars(text, 1500))),
                Event::ToolUse { name, input, .. } => lines.push(format!("[tool {name}] {}", truncate_chars(&input.to_string(), 300))),
                Event::ToolResult { text, is_error, .. } => {
                    let tag = if *is_error { "[tool error]" } else { "[tool result]" };
                    lines.push(format!("{tag} {}", truncate_chars(text, 400)));
                }
            }
        }
        lines
    }

    /// The condensed transcript in parts of at most `max_chars` each (a long session does not
    /// fit one prompt); at most `max_parts`, keeping the first part (the summaries and the
    /// request) and the last ones (where a session ends up) when there would be more.
    pub fn condensed_parts(&self, max_chars: usize, max_parts: usize) -> Vec<String> {
        let max_chars = max_chars.max(200);
        let mut parts: Vec<String> = vec![];
        let mut cur = String::new();
        let mut cur_len = 0usize;
        for line in self.condensed_lines() {
            let line = truncate_chars(&line, max_chars - 1);
            let n = line.chars().count() + 1;
            if cur_len + n > max_chars && !cur.is_empty() {
                parts.push(std::mem::take(&mut cur));
                cur_len = 0;
            }
            cur.push_str(&line);
            cur.push('\n');
            cur_len += n;
        }
        if !cur.is_empty() {
            parts.push(cur);
        }
        let max_parts = max_parts.max(1);
        if parts.len() > max_parts {
            let left_out = parts.len() - max_parts;
            let mut kept = vec![parts.remove(0)];
            kept.extend(parts.split_off(left_out));
            tracing::info!(left_out, "a long transcript: the middle parts are left out of extraction");
            kept.truncate(max_parts);
            return kept;
        }
        parts
    }

    /// A compact plain-text rendering (for the extraction prompt), at most `max_chars`; when too
    /// long, the start and the end are kept.
    pub fn condensed(&self, max_chars: usize) -> String {
        let all = self.condensed_lines().join("\n");
        if all.chars().count() <= max_chars {
            return all;
        }
        let head: String = all.chars().take(max_chars / 3).collect();
        let tail_len = max_chars - max_chars / 3;
        let total = all.chars().count();
        let tail: String = all.chars().skip(total - tail_len).collect();
        format!("{head}\n[... middle of the session left out ...]\n{tail}")
    }
}

fn str_field(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_shapes_and_skips_the_rest() {
        let text = r#"{"type":"file-history-snapshot","snapshot":{}}
{"type":"user","sessionId":"s1","cwd":"/p","isSidechain":false,"message":{"role":"user","content":"fix the build"}}
{"type":"assistant","message":{"content":[{"type":"thinking","thinking":"hmm"},{"type":"text","text":"Let me look."},{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"cargo build"}}]}}
{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"error[E0433]"}],"is_error":true}]}}
{"type":"progress","data":{}}
{"type":"brand-new-type","x":1}
{"type":"summary","summary":"Fixed the build","leafUuid":"u"}
{"type":"assistant","message":{"content":[{"type":"text","text":"trunc"#;
        let t = Transcript::parse(text);
        assert_eq!(t.session_id.as_deref(), Some("s1"));
        assert_eq!(t.events.len(), 4);
        assert!(matches!(&t.events[3], Event::ToolResult { is_error: true, text, .. } if text == "error[E0433]"));
        assert_eq!(t.summaries, vec!["Fixed the build"]);
        assert_eq!(t.bad_lines.len(), 1);
        assert_eq!(t.bad_lines[0].0, 8);
        assert_eq!(t.skipped_records, 3);
    }

    #[test]
    fn condensed_keeps_head_and_tail() {
        let mut t = Transcript::default();
        for i in 0..200 {
            t.events.push(Event::Text { role: Role::User, text: format!("message number {i}"), sidechain: false });
        }
        let c = t.condensed(600);
        assert!(c.contains("message number 0"));
        assert!(c.contains("message number 199"));
        assert!(c.contains("left out"));
    }
}
