//! Notes as files: one Markdown file per note with a small front matter block.
//!
//! The files are the truth of the vault, read and edited by people, so the format is deliberately
//! plain: `key: value` lines, lists as `[a, b]` (or `- item` lines), strings double-quoted only when
//! they need it. Parsing is lenient about what people write and strict about what makes a note
//! unusable (no closing `---`, no title); such files are reported and skipped, never touched.
//! Writes go to a temporary file in the same directory and are renamed over the target, so a crash
//! leaves either the old or the new note, never half of one.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{MemoryError, Result};

/// Largest note body accepted (64 KiB). A note is a memory, not a document.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest note file read from disk; anything bigger is skipped with a warning.
pub(crate) const MAX_FILE_BYTES: u64 = (MAX_BODY_BYTES as u64) + 16 * 1024;
const MAX_TITLE_CHARS: usize = 200;

/// What a note is about. Unknown kinds written by people are kept as they are.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Kind {
    Decision,
    Status,
    Pattern,
    Antipattern,
    Preference,
    #[default]
    Fact,
    Other(String),
}

impl Kind {
    pub fn as_str(&self) -> &str {
        match self {
            Kind::Decision => "decision",
            Kind::Status => "status",
            Kind::Pattern => "pattern",
            Kind::Antipattern => "antipattern",
            Kind::Preference => "preference",
            Kind::Fact => "fact",
            Kind::Other(s) => s,
        }
    }

    /// Parses a kind; anything unknown becomes `Other` (lower-cased, trimmed).
    pub fn parse(s: &str) -> Kind {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "decision" => Kind::Decision,
            "status" => Kind::Status,
            "pattern" => Kind::Pattern,
            "antipattern" | "anti-pattern" => Kind::Antipattern,
            "preference" => Kind::Preference,
            "fact" | "" => Kind::Fact,
            _ => Kind::Other(s),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for Kind {
    fn from(s: String) -> Self {
        Kind::parse(&s)
    }
}

impl From<Kind> for String {
    fn from(k: Kind) -> Self {
        k.as_str().to_string()
    }
}

/// A note as stored in the vault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    pub id: String,
    pub kind: Kind,
    pub title: String,
    pub tags: Vec<String>,
    pub project: Option<String>,
    /// Where it came from: a task, a session or a transcript.
    pub source: Option<String>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub supersedes: Vec<String>,
    pub superseded_by: Option<String>,
    pub body: String,
    /// Front matter keys we do not know, kept so that a rewrite does not lose them.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub extra: Vec<(String, String)>,
}

/// What a caller gives to create a note; the vault fills in id and dates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewNote {
    pub kind: Kind,
    pub title: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub body: String,
}

impl NewNote {
    /// Checks the limits a note must respect (title present, body size).
    pub fn validate(&self) -> Result<()> {
        if self.title.trim().is_empty() {
            return Err(MemoryError::Invalid("a note needs a non-empty title".into()));
        }
        if self.body.len() > MAX_BODY_BYTES {
            return Err(MemoryError::TooLarge { size: self.body.len(), limit: MAX_BODY_BYTES });
        }
        Ok(())
    }
}

impl Note {
    /// The text that is embedded and searched: title, then body.
    pub fn search_text(&self) -> String {
        embed_text(&self.title, &self.body)
    }

    pub fn is_superseded(&self) -> bool {
        self.superseded_by.is_some()
    }

    /// Neither superseded nor forgotten: recall may return it.
    pub fn is_active(&self) -> bool {
        self.superseded_by.is_none() && self.forgotten().is_none()
    }

    fn extra(&self, key: &str) -> Option<&str> {
        self.extra.iter().find(|(k, _)| k == key).map(|(_, v)| v.trim().trim_matches('"'))
    }

    /// `pin: true` in the front matter: the note is injected into every session.
    pub fn pinned(&self) -> bool {
        self.extra("pin").is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "yes" | "1"))
    }

    /// When `kite vault forget` retired the note (`forgotten:` in the front matter): it stays on
    /// record and is never recalled or injected again.
    pub fn forgotten(&self) -> Option<&str> {
        self.extra("forgotten").filter(|v| !v.is_empty() && *v != "false")
    }

    /// Records that the note changed now.
    pub fn mark_updated(&mut self) {
        self.updated = Utc::now();
    }

    /// Sets (or, with `None`, removes) a front matter key kite does not model as a field.
    pub fn set_extra(&mut self, key: &str, value: Option<String>) {
        self.extra.retain(|(k, _)| k != key);
        if let Some(v) = value {
            self.extra.push((key.to_string(), v));
        }
    }

    /// The file name of this note in the vault.
    pub fn file_name(&self) -> String {
        format!("{}.md", self.id)
    }

    /// Serializes to the Markdown file form.
    pub fn to_markdown(&self) -> String {
        let mut out = String::with_capacity(self.body.len() + 256);
        out.push_str("---\n");
        push_kv(&mut out, "id", &scalar(&self.id));
        push_kv(&mut out, "kind", &scalar(self.kind.as_str()));
        push_kv(&mut out, "title", &scalar(&self.title));
        push_kv(&mut out, "tags", &list(&self.tags));
        if let Some(p) = &self.project {
            push_kv(&mut out, "project", &scalar(p));
        }
        if let Some(s) = &self.source {
            push_kv(&mut out, "source", &scalar(s));
        }
        push_kv(&mut out, "created", &self.created.to_rfc3339_opts(SecondsFormat::Secs, true));
        push_kv(&mut out, "updated", &self.updated.to_rfc3339_opts(SecondsFormat::Secs, true));
        if !self.supersedes.is_empty() {
            push_kv(&mut out, "supersedes", &list(&self.supersedes));
        }
        if let Some(s) = &self.superseded_by {
            push_kv(&mut out, "superseded_by", &scalar(s));
        }
        for (k, v) in &self.extra {
            push_kv(&mut out, k, v);
        }
        out.push_str("---\n\n");
        out.push_str(self.body.trim_end());
        out.push('\n');
        out
    }

    /// Parses a note file. `path` is only used in error messages and for the fallback id.
    pub fn parse(text: &str, path: &Path) -> Result<Note> {
        let bad = |reason: &str| MemoryError::BadNote { path: path.to_path_buf(), reason: reason.to_string() };
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.trim().is_empty() {
            return Err(bad("file is empty"));
        }
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("").to_string();
        let (front, body) = if text.starts_with("---") && text.lines().next().map(str::trim) == Some("---") {
            split_front_matter(text).ok_or_else(|| bad("front matter has no closing `---` line (half-written file?)"))?
        } else {
            // A plain Markdown file written by hand: the first heading is the title.
            (String::new(), text.to_string())
        };
        let mut note = Note {
            id: String::new(),
            kind: Kind::Fact,
            title: String::new(),
            tags: vec![],
            project: None,
            source: None,
            created: DateTime::<Utc>::UNIX_EPOCH,
            updated: DateTime::<Utc>::UNIX_EPOCH,
            supersedes: vec![],
            superseded_by: None,
            body: String::new(),
            extra: vec![],
        };
        let mut lines = front.lines().peekable();
        while let Some(line) = lines.next() {
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                return Err(bad(&format!("front matter line is not `key: value`: {line:?}")));
            };
            let key = key.trim();
            let mut value = value.trim().to_string();
            // Block list: `key:` followed by `- item` lines.
            if value.is_empty() {
                let mut items = vec![];
                while let Some(next) = lines.peek() {
                    let t = next.trim_start();
                    if let Some(item) = t.strip_prefix("- ").or_else(|| (t == "-").then_some("")) {
                        items.push(unquote(item.trim()).map_err(|e| bad(&e))?);
                        lines.next();
                    } else {
                        break;
                    }
                }
                if !items.is_empty() {
                    value = list(&items);
                }
            }
            match key {
                "id" => note.id = unquote(&value).map_err(|e| bad(&e))?,
                "kind" => note.kind = Kind::parse(&unquote(&value).map_err(|e| bad(&e))?),
                "title" => note.title = unquote(&value).map_err(|e| bad(&e))?,
                "tags" => note.tags = parse_list(&value).map_err(|e| bad(&e))?,
                "project" => note.project = non_empty(unquote(&value).map_err(|e| bad(&e))?),
                "source" => note.source = non_empty(unquote(&value).map_err(|e| bad(&e))?),
                "created" => note.created = parse_time(&value).ok_or_else(|| bad(&format!("bad created date {value:?}")))?,
                "updated" => note.updated = parse_time(&value).ok_or_else(|| bad(&format!("bad updated date {value:?}")))?,
                "supersedes" => note.supersedes = parse_list(&value).map_err(|e| bad(&e))?,
                "superseded_by" => note.superseded_by = non_empty(unquote(&value).map_err(|e| bad(&e))?),
                _ => note.extra.push((key.to_string(), value)),
            }
        }
        let body = body.trim_matches('\n').trim_end().to_string();
        if body.len() > MAX_BODY_BYTES {
            return Err(bad(&format!("body is {} bytes, more than the limit of {MAX_BODY_BYTES}", body.len())));
        }
        if note.title.trim().is_empty() {
            note.title = body
                .lines()
                .find_map(|l| l.strip_prefix("# "))
                .map(|t| t.trim().to_string())
                .ok_or_else(|| bad("no title in front matter and no `# heading` in the body"))?;
        }
        if note.id.trim().is_empty() {
            if stem.is_empty() {
                return Err(bad("no id"));
            }
            note.id = stem;
        }
        if !valid_id(&note.id) {
            return Err(bad(&format!("id {:?} may only hold letters, digits, '-', '_' and '.'", note.id)));
        }
        if note.updated < note.created {
            note.updated = note.created;
        }
        note.body = body;
        Ok(note)
    }

    /// Reads and parses a note file, refusing files too large to be notes.
    pub fn read(path: &Path) -> Result<Note> {
        let text = read_capped(path)?;
        Note::parse(&text, path)
    }

    /// Writes the note into `dir` atomically (temporary file + rename) and returns its path.
    pub fn write_to(&self, dir: &Path) -> Result<PathBuf> {
        let path = dir.join(self.file_name());
        atomic_write(&path, self.to_markdown().as_bytes())?;
        Ok(path)
    }
}

/// Reads a file as UTF-8, refusing anything larger than a note file can be.
pub(crate) fn read_capped(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).map_err(|e| MemoryError::io("reading", path, e))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(MemoryError::BadNote {
            path: path.to_path_buf(),
            reason: format!("file is {} bytes, more than a note may be ({MAX_FILE_BYTES})", meta.len()),
        });
    }
    let bytes = std::fs::read(path).map_err(|e| MemoryError::io("reading", path, e))?;
    String::from_utf8(bytes).map_err(|_| MemoryError::BadNote { path: path.to_path_buf(), reason: "not valid UTF-8".into() })
}

/// The text embedded for a note.
pub fn embed_text(title: &str, body: &str) -> String {
    if body.trim().is_empty() {
        title.trim().to_string()
    } else {
        format!("{}\n\n{}", title.trim(), body.trim())
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| MemoryError::io("creating directory", dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".kite-tmp-")
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(|e| MemoryError::io("creating temporary file in", dir, e))?;
    tmp.write_all(bytes).map_err(|e| MemoryError::io("writing", tmp.path().to_path_buf(), e))?;
    tmp.as_file().sync_all().map_err(|e| MemoryError::io("syncing", tmp.path().to_path_buf(), e))?;
    tmp.persist(path).map_err(|e| MemoryError::io("renaming into", path, e.error))?;
    Ok(())
}

/// Ids are used as file names, so they are kept to a safe alphabet.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A readable id: the date and a slug of the title (`2026-11-25-use-sqlite-wal`).
pub fn make_id(title: &str, now: DateTime<Utc>) -> String {
    let mut slug = String::new();
    let mut dash = false;
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            if dash && !slug.is_empty() {
                slug.push('-');
            }
            slug.push(c.to_ascii_lowercase());
            dash = false;
        } else {
            dash = true;
        }
        if slug.len() >= 48 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        format!("{}-note", now.format("%Y-%m-%d"))
    } else {
        format!("{}-{}", now.format("%Y-%m-%d"), slug)
    }
}

/// Cleans a title: one line, trimmed, bounded.
pub(crate) fn clean_title(title: &str) -> String {
    let one_line: String = title.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > MAX_TITLE_CHARS {
        let mut t: String = one_line.chars().take(MAX_TITLE_CHARS - 1).collect();
        t.push('…');
        t
    } else {
        one_line
    }
}

fn split_front_matter(text: &str) -> Option<(String, String)> {
    let mut front = String::new();
    let mut rest = text.split_inclusive('\n');
    rest.next()?; // the opening ---
    let mut consumed = text.lines().next()?.len();
    consumed += 1;
    for line in rest {
        if line.trim_end() == "---" {
            let body_start = (consumed + line.len()).min(text.len());
            return Some((front, text[body_start..].to_string()));
        }
        consumed += line.len();
        front.push_str(line);
    }
    None
}

fn push_kv(out: &mut String, key: &str, value: &str) {
    out.push_str(key);
    out.push_str(": ");
    out.push_str(value);
    out.push('\n');
}

fn needs_quotes(s: &str) -> bool {
    s.is_empty()
        || s != s.trim()
        || s.contains(|c: char| matches!(c, ':' | '#' | '"' | '\'' | '[' | ']' | '{' | '}' | ',' | '\\') || c.is_control())
        || s.starts_with(['-', '&', '*', '!', '|', '>', '%', '@', '`', '?'])
}

fn scalar(s: &str) -> String {
    if needs_quotes(s) {
        serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
    } else {
        s.to_string()
    }
}

fn list(items: &[String]) -> String {
    let parts: Vec<String> = items.iter().map(|s| scalar(s)).collect();
    format!("[{}]", parts.join(", "))
}

fn non_empty(s: String) -> Option<String> {
    let t = s.trim();
    (!t.is_empty() && t != "null" && t != "~").then(|| t.to_string())
}

fn unquote(v: &str) -> std::result::Result<String, String> {
    let v = v.trim();
    if v.starts_with('"') {
        serde_json::from_str::<String>(v).map_err(|e| format!("bad quoted string {v:?}: {e}"))
    } else if let Some(inner) = v.strip_prefix('\'') {
        let inner = inner.strip_suffix('\'').ok_or_else(|| format!("unterminated quoted string {v:?}"))?;
        Ok(inner.replace("''", "'"))
    } else {
        Ok(v.to_string())
    }
}

fn parse_list(v: &str) -> std::result::Result<Vec<String>, String> {
    let v = v.trim();
    if v.is_empty() || v == "[]" || v == "~" || v == "null" {
        return Ok(vec![]);
    }
    let Some(inner) = v.strip_prefix('[') else {
        // A single value or a comma-separated line.
        return Ok(v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect());
    };
    let inner = inner.strip_suffix(']').ok_or_else(|| format!("list {v:?} has no closing ']'"))?;
    let mut items = vec![];
    let mut cur = String::new();
    let mut chars = inner.chars().peekable();
    let mut in_dq = false;
    let mut in_sq = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if !in_sq => {
                in_dq = !in_dq;
                cur.push(c);
            }
            '\\' if in_dq => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '\'' if !in_dq => {
                in_sq = !in_sq;
                cur.push(c);
            }
            ',' if !in_dq && !in_sq => {
                items.push(std::mem::take(&mut cur));
            }
            _ => cur.push(c),
        }
    }
    if in_dq || in_sq {
        return Err(format!("list {v:?} has an unterminated quote"));
    }
    items.push(cur);
    items
        .into_iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| unquote(&s))
        .collect()
}

fn parse_time(v: &str) -> Option<DateTime<Utc>> {
    let v = unquote(v).ok()?;
    let v = v.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%d %H:%M:%S") {
        return Some(t.and_utc());
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S") {
        return Some(t.and_utc());
    }
    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Note {
        let t = DateTime::parse_from_rfc3339("2026-11-25T04:27:09Z").unwrap().with_timezone(&Utc);
        Note {
            id: "2026-11-25-use-wal".into(),
            kind: Kind::Decision,
            title: "Use WAL: always, \"really\"".into(),
            tags: vec!["sqlite".into(), "a, b".into()],
            project: Some("kite".into()),
            source: Some("transcript:abc".into()),
            created: t,
            updated: t,
            supersedes: vec!["old-1".into()],
            superseded_by: None,
            body: "We decided to use WAL.\n\n---\n\nA rule above is fine.".into(),
            extra: vec![("owner".into(), "marco".into())],
        }
    }

    #[test]
    fn round_trip() {
        let n = sample();
        let text = n.to_markdown();
        let back = Note::parse(&text, Path::new("x.md")).unwrap();
        assert_eq!(back, n);
    }

    #[test]
    fn block_lists_and_single_quotes() {
        let text = "---\nid: a1\ntitle: 'It''s fine'\ntags:\n  - one\n  - \"two\"\nkind: Anti-Pattern\n---\nbody\n";
        let n = Note::parse(text, Path::new("a1.md")).unwrap();
        assert_eq!(n.title, "It's fine");
        assert_eq!(n.tags, vec!["one", "two"]);
        assert_eq!(n.kind, Kind::Antipattern);
        assert_eq!(n.body, "body");
    }

    #[test]
    fn plain_markdown_uses_heading_and_stem() {
        let n = Note::parse("# Deploys happen on Fridays\n\nNever.", Path::new("/v/deploys.md")).unwrap();
        assert_eq!(n.id, "deploys");
        assert_eq!(n.title, "Deploys happen on Fridays");
    }

    #[test]
    fn corrupt_files_are_errors() {
        for (text, why) in [
            ("", "empty"),
            ("---\nid: x\ntitle: half", "closing"),
            ("---\nid: x\nthis line has no colon\n---\nb", "key: value"),
            ("---\nid: x\n---\nno heading", "title"),
            ("---\nid: ../etc\ntitle: t\n---\n", "id"),
            ("---\nid: x\ntitle: t\ntags: [a, \"b\n---\n", "list"),
        ] {
            let err = Note::parse(text, Path::new("x.md")).unwrap_err().to_string();
            assert!(err.contains(why) || err.contains("quote"), "{text:?}: {err}");
        }
    }

    #[test]
    fn huge_body_is_refused() {
        let n = NewNote { title: "t".into(), body: "x".repeat(MAX_BODY_BYTES + 1), ..Default::default() };
        assert!(matches!(n.validate(), Err(MemoryError::TooLarge { .. })));
    }

    #[test]
    fn ids() {
        let t = DateTime::parse_from_rfc3339("2026-11-25T04:27:09Z").unwrap().with_timezone(&Utc);
        assert_eq!(make_id("Use SQLite's WAL mode!", t), "2026-11-25-use-sqlite-s-wal-mode");
        assert_eq!(make_id("???", t), "2026-11-25-note");
        assert!(valid_id("2026-11-25-note"));
        assert!(!valid_id("a/b"));
    }

    #[test]
    fn atomic_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("n.md");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
