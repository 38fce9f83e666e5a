//! The offline extractor: notes a later session can act on, from what a session says in so many
//! words, with no model.
//!
//! Judged on real Claude Code transcripts (docs/BENCHMARKS.md, "What the extractor keeps"), the
//! lessons of a session sit in a few places, and everything else is noise:
//! - **Compaction summaries.** When Claude Code compacts a conversation it writes a summary with
//!   an "Errors and fixes" section: one bullet per failure, with its cause and its fix in words.
//!   These are the densest lessons; each bullet that is not routine becomes a note.
//! - **Diagnoses.** The assistant's sentences that say why something failed or how something
//!   works ("the LiveView process can't access the SQL sandbox", "the root cause was ...",
//!   "X does not support Y"), with the sentence after it (usually the fix).
//! - **Decisions with a reason** ("let's use SQLite instead of Redis, it is one less service").
//! - **Preferences the user stated** ("always run the full suite", "never force-push"), and the
//!   user's answers to the assistant's questions.
//! - **The outcome, when it changes the project** (Claude Code's session title, or a closing
//!   statement that something was implemented, landed or replaced).
//!
//! Dropped as noise: confirmations ("all pushed", "tests pass"), progress chatter ("Let me ...",
//! "Now ..."), bare exit codes and tool errors (a file too large to read, a string not found, a
//! first push without upstream), formatting fixes, self-inflicted compile errors mid-edit, and
//! lists of files touched. A note is titled by its lesson, and near-duplicates within one
//! transcript are kept once.

use std::collections::HashSet;
use std::sync::OnceLock;

use regex::Regex;

use super::{Extractor, ProposedNote};
use crate::error::Result;
use crate::note::{clean_title, Kind, NewNote};
use crate::redact::redact;
use crate::transcript::{truncate_chars, Event, Role, Transcript};

/// The offline extractor: no model, only what the session states.
#[derive(Debug, Clone)]
pub struct BuiltinExtractor {
    /// Notes from compaction summaries.
    pub max_fixes: usize,
    /// Diagnoses from the assistant's text.
    pub max_lessons: usize,
    pub max_decisions: usize,
    pub max_preferences: usize,
}

impl Default for BuiltinExtractor {
    fn default() -> Self {
        BuiltinExtractor { max_fixes: 8, max_lessons: 5, max_decisions: 4, max_preferences: 4 }
    }
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).unwrap_or_else(|e| panic!("pattern {pattern:?} does not compile: {e}")))
}

/// A function returning a regex compiled once (the patterns are constants, pinned by the tests).
macro_rules! regex_fn {
    ($(#[$doc:meta])* $name:ident, $pattern:expr) => {
        $(#[$doc])*
        fn $name() -> &'static Regex {
            static RE: OnceLock<Regex> = OnceLock::new();
            re(&RE, $pattern)
        }
    };
}

regex_fn!(
    /// A sentence that states why something fails or how something works.
    lesson_re, r"(?i)\b(the|this|real) (root cause|issue|problem|bug) (is|was)\b|\broot cause\b|\bturns out\b|\b(doesn't|does not|isn't|is not|won't|can't|cannot|can not|couldn't|didn't) (support|include|render|contain|handle|work|access|accept|track|see|reach|exist|allow|run)\b|\b(is|are) (missing|gitignored|not tracked)\b|\b(will|would) fail\b|\bfails? (if|when|on|because|unless)\b|\bby default\b|\bneeds? to be\b|\bmust (be|run|use)\b|\bonly works\b");

regex_fn!(
    /// A sentence that states a decision.
    decision_re, r"(?i)(\bwe(?:'ve| have)? decided\b|\bi(?:'ve| have)? decided\b|\bdecided to\b|\bdecision:|\blet'?s (?:use|go with|keep|stick with|switch to)\b|\bgoing with\b|\bwe(?:'ll| will) use\b|\bwe chose\b|\bopted for\b|\bsettled on\b|\bfrom now on\b)");

regex_fn!(
    /// A reason given with a decision.
    reason_re, r"(?i)\bbecause\b|\bsince\b|\bso that\b|\bto avoid\b|\binstead of\b|\brather than\b|\bone less\b|\bsimpler\b|\bfaster\b|\bsafer\b|, (it|which) (is|keeps|avoids|means)\b");

regex_fn!(
    /// A preference stated by the user.
    preference_re, r"(?i)^(please\s+)?(always|never|don'?t|do not|make sure|avoid)\b|\bi (prefer|want|would like|'d like|like it when|hate it when)\b|\bfrom now on\b|\bin this (project|repo)\b.*\b(use|don'?t)\b|\bwe (always|never)\b");

regex_fn!(
    /// Sentences that report progress or confirm, never a lesson.
    chatter_re, r"(?i)^(let me|let's (now|check|look|see|run|try|read|start)|now\b|next\b|good\b|great\b|perfect\b|excellent\b|ok\b|okay\b|done\b|all (done|set|good|pushed)\b|yes\b|sure\b|i'll\b|i will\b|first,)|\btests? (pass|passed|passing)\b|\ball \d+ tests\b|\btest result\b|\b(compile|compiles|credo|build) (is )?clean\b|\beverything is (pushed|committed|clean)\b");

regex_fn!(
    /// A fix bullet that is routine: nothing a later session would need.
    routine_fix_re, r"(?i)\bexpected\b|\bnot (a )?real errors?\b|\bunused (variable|alias|import|function|module)s?\b|\bmix format\b|\bcargo fmt\b|\bprettier\b|\bformat(ting)? (check|failure|issue)s?\b|\bno upstream\b|\btypo\b|\bwhitespace\b|\bsibling tool call\b|\bstring to replace not found\b|\bexceeds maximum allowed tokens\b|^current\b|^(compile error: )?undefined function\b|\bundefined\b.*\b(renam|remov)|\bneeded to be renamed\b|\blength/1\b");

/// Splits text into sentences (on `.`, `!`, `?` followed by a space, and on line breaks);
/// Markdown list marks and emphasis are dropped.
pub(crate) fn sentences(text: &str) -> Vec<String> {
    let mut out = vec![];
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code || line.trim_start().starts_with('|') {
            continue;
        }
        let line = line.trim().trim_start_matches(['-', '*', '#', '>', ' ']).replace("**", "");
        let mut cur = String::new();
        let mut in_tick = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            cur.push(c);
            if c == '`' {
                in_tick = !in_tick;
            }
            if !in_tick && matches!(c, '.' | '!' | '?') && chars.peek().is_none_or(|n| n.is_whitespace()) {
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

/// The words of a title, for near-duplicate checks.
fn words(s: &str) -> HashSet<String> {
    s.split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() > 2).map(str::to_lowercase).collect()
}

/// Whether `title` says nearly what one of `seen` says (most of its words are there).
fn repeats(seen: &[HashSet<String>], title: &str) -> bool {
    overlaps(seen, title, 6)
}

/// Whether at least `tenths`/10 of the smaller word set of `title` and one of `seen` is shared.
fn overlaps(seen: &[HashSet<String>], title: &str, tenths: usize) -> bool {
    let w = words(title);
    !w.is_empty() && seen.iter().any(|s| w.intersection(s).count() * 10 >= w.len().min(s.len()).max(1) * tenths)
}

/// One "Errors and fixes" (or "Problem Solving") bullet of a compaction summary: its bold
/// lead and the rest, with any sub-bullets folded in.
struct Bullet {
    lead: String,
    rest: String,
    /// From "Problem Solving" (a design choice), not "Errors and fixes" (a failure).
    solving: bool,
}

/// The bullets of the lesson sections of a compaction summary.
fn summary_bullets(summary: &str) -> Vec<Bullet> {
    static HEAD: OnceLock<Regex> = OnceLock::new();
    let head = re(&HEAD, r"^\s{0,3}\d+\.\s+([A-Z][A-Za-z /&-]{2,40}):\s*$");
    let mut out: Vec<Bullet> = vec![];
    let mut in_section = false;
    let mut solving = false;
    let mut indent = 0usize;
    for line in summary.lines() {
        if let Some(c) = head.captures(line) {
            let name = c[1].to_ascii_lowercase();
            solving = name.starts_with("problem solving");
            in_section = name.starts_with("errors and fix") || solving;
            continue;
        }
        if !in_section {
            continue;
        }
        let trimmed = line.trim_start();
        let Some(item) = trimmed.strip_prefix("- ").or_else(|| trimmed.strip_prefix("* ")) else {
            if let Some(last) = out.last_mut() {
                if !trimmed.is_empty() {
                    last.rest.push(' ');
                    last.rest.push_str(trimmed);
                }
            }
            continue;
        };
        let this_indent = line.len() - trimmed.len();
        if let Some(last) = out.last_mut().filter(|_| this_indent > indent) {
            last.rest.push_str(&format!("; {}", item.trim()));
            continue;
        }
        indent = this_indent;
        let (lead, rest) = match item.strip_prefix("**").and_then(|r| r.split_once("**")) {
            Some((lead, rest)) => (lead.trim().trim_end_matches(':').to_string(), rest.trim_start_matches([':', ' ', '-', '—']).trim().to_string()),
            None => match item.split_once(": ") {
                Some((lead, rest)) if lead.len() <= 80 => (lead.trim().to_string(), rest.trim().to_string()),
                _ => (String::new(), item.trim().to_string()),
            },
        };
        out.push(Bullet { lead, rest, solving });
    }
    out
}

fn note(kind: Kind, title: &str, body: String, tags: &[&str], source: &str) -> ProposedNote {
    NewNote {
        kind,
        title: clean_title(&truncate_chars(title.trim().trim_end_matches(['.', ':']), 140)),
        tags: std::iter::once("extracted").chain(tags.iter().copied()).map(str::to_string).collect(),
        project: None,
        source: Some(source.to_string()),
        body,
    }
}

fn negative(text: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    re(&RE, r"(?i)\b(doesn't|does not|don't|do not|isn't|is not|can't|cannot|never|not supported|unsupported|wrong|failed|fails|unresolved|no such)\b").is_match(text)
}

/// The user's own words: text records, not tool results, compaction summaries or injected text.
fn user_texts(t: &Transcript) -> impl Iterator<Item = &str> {
    t.events.iter().filter_map(|e| match e {
        Event::Text { role: Role::User, text, sidechain: false } if !text.starts_with("This session is being continued") && !text.starts_with('<') => Some(text.as_str()),
        _ => None,
    })
}

fn assistant_texts(t: &Transcript) -> impl Iterator<Item = &str> {
    t.events.iter().filter_map(|e| match e {
        Event::Text { role: Role::Assistant, text, sidechain: false } => Some(text.as_str()),
        _ => None,
    })
}

impl BuiltinExtractor {
    /// Failures with their cause and fix, from the compaction summaries' lesson sections.
    fn from_compactions(&self, t: &Transcript, source: &str, seen: &mut Vec<HashSet<String>>) -> Vec<ProposedNote> {
        let mut out = vec![];
        for summary in &t.compactions {
            for b in summary_bullets(summary) {
                if out.len() >= self.max_fixes {
                    return out;
                }
                let all = format!("{} {}", b.lead, b.rest);
                if b.rest.chars().count() < 20 && !b.solving || routine_fix_re().is_match(&all) {
                    continue;
                }
                if b.solving {
                    // A design choice is kept with its reason, not as a report of what was done.
                    static WHY: OnceLock<Regex> = OnceLock::new();
                    let why = re(&WHY, r"(?i)\b(to (avoid|prevent|keep|guarantee|ensure|make)|for (safe|coverage|idempot)|because|instead of|rather than|so that|so (it|the|that))\b");
                    let text = if b.lead.is_empty() { b.rest.clone() } else { all.clone() };
                    if !why.is_match(&text) || repeats(seen, &text) {
                        continue;
                    }
                    seen.push(words(&text));
                    let title = sentences(&text).into_iter().next().unwrap_or(text.clone());
                    out.push(note(Kind::Decision, &title, format!("{text}\n\n(From the session's compaction summary, problem solving.)"), &["decision"], source));
                    continue;
                }
                // The lead names the failure; when it is short, the first clause of the rest (the
                // cause, before "Fixed by") makes the title a lesson.
                let cause = sentences(&b.rest).into_iter().next().unwrap_or_default();
                static FIX_VERB: OnceLock<Regex> = OnceLock::new();
                let fix_verb = re(&FIX_VERB, r"(?i)^(fixed|rewrote|added|changed|used|using|removed|replaced|ran|switched|moved|resolved|renamed|converted|extracted|created)\b");
                let fits = b.lead.chars().count() + cause.chars().count() <= 170;
                let title = if b.lead.is_empty() {
                    cause.clone()
                } else if cause.is_empty() || !fits || (fix_verb.is_match(&cause) && b.lead.split_whitespace().count() >= 5) {
                    b.lead.clone()
                } else {
                    format!("{}: {}", b.lead, cause.trim_end_matches('.'))
                };
                if title.is_empty() || repeats(seen, &title) {
                    continue;
                }
                seen.push(words(&all));
                let kind = if negative(&all) { Kind::Antipattern } else { Kind::Pattern };
                let body = format!("{}{}\n\n(From the session's compaction summary, errors and fixes.)", if b.lead.is_empty() { String::new() } else { format!("{}: ", b.lead) }, b.rest);
                out.push(note(kind, &title, body, &["error-fix"], source));
            }
        }
        out
    }

    /// The assistant's diagnoses, each with the sentence after it.
    fn lessons(&self, t: &Transcript, source: &str, seen: &mut Vec<HashSet<String>>) -> Vec<ProposedNote> {
        let mut found: Vec<(String, String)> = vec![];
        for text in assistant_texts(t) {
            let ss = sentences(text);
            for (i, s) in ss.iter().enumerate() {
                let n = s.chars().count();
                if !(30..=300).contains(&n) || s.ends_with('?') || s.ends_with(':') || chatter_re().is_match(s) || routine_fix_re().is_match(s) || !lesson_re().is_match(s) {
                    continue;
                }
                let title = s
                    .trim_start_matches("I see the issue")
                    .trim_start_matches("The issue is clear")
                    .trim_start_matches(['.', ' ', '—', '-', ':', ','])
                    .to_string();
                let next = ss.get(i + 1).filter(|n| !chatter_re().is_match(n) || n.to_ascii_lowercase().contains("fix")).cloned().unwrap_or_default();
                found.push((title, next));
            }
        }
        // A later diagnosis corrects an earlier guess: prefer the last ones.
        let mut out = vec![];
        for (title, next) in found.into_iter().rev() {
            if out.len() >= self.max_lessons {
                break;
            }
            // Guesses in a chain of diagnoses share their subject: keep the last one.
            if overlaps(seen, &title, 4) {
                continue;
            }
            seen.push(words(&title));
            let kind = if negative(&title) { Kind::Antipattern } else { Kind::Fact };
            let body = format!("{title}{}\n\n(Said by the assistant while working.)", if next.is_empty() { String::new() } else { format!(" {next}") });
            out.push(note(kind, &title, body, &["lesson"], source));
        }
        out.reverse();
        out
    }

    /// Decisions stated with a reason (in the sentence or the next one).
    fn decisions(&self, t: &Transcript, source: &str, seen: &mut Vec<HashSet<String>>) -> Vec<ProposedNote> {
        let mut out = vec![];
        for e in &t.events {
            let Event::Text { role, text, sidechain: false } = e else { continue };
            let ss = sentences(text);
            for (i, s) in ss.iter().enumerate() {
                if out.len() >= self.max_decisions {
                    return out;
                }
                if s.ends_with('?') || s.chars().count() < 20 || !decision_re().is_match(s) {
                    continue;
                }
                let next = ss.get(i + 1).cloned().unwrap_or_default();
                if !reason_re().is_match(s) && !reason_re().is_match(&next) {
                    continue;
                }
                if repeats(seen, s) {
                    continue;
                }
                seen.push(words(s));
                let who = if *role == Role::User { "the user" } else { "the assistant" };
                let body = format!("{s}{}\n\n(Stated by {who} in the session.)", if reason_re().is_match(s) { String::new() } else { format!(" {next}") });
                out.push(note(Kind::Decision, s, body, &["decision"], source));
            }
        }
        out
    }

    /// What the user said they want, and their answers to the assistant's questions.
    fn preferences(&self, t: &Transcript, source: &str, seen: &mut Vec<HashSet<String>>) -> Vec<ProposedNote> {
        let mut out = vec![];
        for text in user_texts(t) {
            for s in sentences(text) {
                if out.len() >= self.max_preferences {
                    return out;
                }
                if s.split_whitespace().count() < 4 || s.ends_with('?') || !preference_re().is_match(&s) || repeats(seen, &s) {
                    continue;
                }
                seen.push(words(&s));
                out.push(note(Kind::Preference, &s, format!("{s}\n\n(Said by the user.)"), &["preference"], source));
            }
        }
        // AskUserQuestion answers come back as a tool result: `"question"="answer"` pairs.
        static ANSWER: OnceLock<Regex> = OnceLock::new();
        let answer = re(&ANSWER, r#""([^"]{5,300})"\s*=\s*"([^"]{2,300})""#);
        for e in &t.events {
            let Event::ToolResult { text, sidechain: false, .. } = e else { continue };
            if !text.starts_with("User has answered your questions") {
                continue;
            }
            for c in answer.captures_iter(text) {
                if out.len() >= self.max_preferences {
                    return out;
                }
                let (q, a) = (c[1].trim(), c[2].trim());
                let title = format!("{q} → {a}");
                if repeats(seen, &title) {
                    continue;
                }
                seen.push(words(&title));
                out.push(note(Kind::Preference, &title, format!("Asked: {q}\nThe user chose: {a}"), &["preference", "answer"], source));
            }
        }
        out
    }

    /// The outcome, when it changed the project: Claude Code's session title, or a closing
    /// statement that something was implemented, landed or replaced.
    fn outcome(&self, t: &Transcript, source: &str) -> Option<ProposedNote> {
        static CHANGE: OnceLock<Regex> = OnceLock::new();
        let change = re(&CHANGE, r"(?i)\b(implemented|landed|merged|migrated|moved|replaced|now uses?|switched|added|removed|fixed|rewritten|introduced)\b");
        static LANDED: OnceLock<Regex> = OnceLock::new();
        let landed = re(&LANDED, r"(?i)\b(fully implemented|is (now )?complete|are (now )?complete|landed|merged|migrated|replaced|now uses?|switched to|is done and pushed)\b");
        let texts: Vec<&str> = assistant_texts(t).collect();
        let closing = texts.last().map(|s| s.to_string());
        let (title, body) = if let Some(s) = t.summaries.last().filter(|s| change.is_match(s)) {
            (s.clone(), closing.map(|c| truncate_chars(c.trim(), 1200)).unwrap_or_default())
        } else {
            // The statement that the work landed is often followed by a question or two ("did
            // you push?"): look back over the last few texts.
            let (text, first) = texts.iter().rev().take(8).find_map(|text| {
                let first = sentences(text).into_iter().find(|s| s.chars().count() >= 25 && !chatter_re().is_match(s) && landed.is_match(s))?;
                Some((text.to_string(), first))
            })?;
            (first, truncate_chars(text.trim(), 1200))
        };
        if chatter_re().is_match(&title) {
            return None;
        }
        let asked = user_texts(t).next().map(|a| format!("\n\nThe session started from: {}", truncate_chars(a.trim(), 300))).unwrap_or_default();
        Some(note(Kind::Status, &title, format!("{body}{asked}"), &["outcome"], source))
    }
}

impl Extractor for BuiltinExtractor {
    fn name(&self) -> &str {
        "builtin"
    }

    fn extract(&self, t: &Transcript, source: &str) -> Result<Vec<ProposedNote>> {
        let mut seen = vec![];
        let mut notes = self.preferences(t, source, &mut seen);
        notes.extend(self.from_compactions(t, source, &mut seen));
        notes.extend(self.decisions(t, source, &mut seen));
        notes.extend(self.lessons(t, source, &mut seen));
        notes.extend(self.outcome(t, source));
        for n in &mut notes {
            n.title = redact(&n.title).into_owned();
            n.body = redact(&n.body).into_owned();
        }
        Ok(notes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript(lines: &[&str]) -> Transcript {
        Transcript::parse(&lines.join("\n"))
    }

    fn titles(notes: &[ProposedNote]) -> Vec<String> {
        notes.iter().map(|n| n.title.clone()).collect()
    }

    #[test]
    fn sentences_split_and_skip_code_and_tables() {
        assert_eq!(sentences("One. Two! v1.2 is out? Yes\nnext"), vec!["One.", "Two!", "v1.2 is out?", "Yes", "next"]);
        assert_eq!(sentences("**Bold** lead.\n```\nlet x = 1. y\n```\n| a | b |\nafter"), vec!["Bold lead.", "after"]);
    }

    const COMPACTION: &str = r#"{"type":"user","isCompactSummary":true,"message":{"role":"user","content":"This session is being continued from a previous conversation.\n\nSummary:\n1. Primary Request and Intent:\n   Implement the review page.\n\n4. Errors and fixes:\n   - **Compile errors for missing AnnotationMessageRef**: Expected during incremental editing. Fixed by creating the module file.\n   - **Auto-generated migration uses ALTER TABLE MODIFY (unsupported in SQLite for nullability)**: Rewrote migration manually using the table rename+recreate+copy pattern.\n   - **LiveView test: sandbox isolation (Project not found)**: LiveView process can't access test sandbox checkout. Fixed by using `Sandbox.mode(Repo, {:shared, self()})` instead of just `Sandbox.checkout`.\n   - **Pre-commit format check failure**: Fixed by running `mix format` before re-committing.\n   - **Dialyzer false positive (UNRESOLVED)**: the span context specs are incomplete. Attempted fixes that all failed:\n     - Adding `@spec` annotation\n     - Using `--no-verify` flag (pre-commit hook still runs)\n\n5. Problem Solving:\n   Solved the migration.\n\n6. All user messages:\n   - \"Implement it\"\n"}}"#;

    #[test]
    fn compaction_fixes_become_lessons_and_routine_ones_are_dropped() {
        let t = transcript(&[COMPACTION]);
        assert!(t.events.is_empty(), "a compaction summary is not the user's text");
        let notes = BuiltinExtractor::default().extract(&t, "s").unwrap();
        let titles = titles(&notes);
        assert!(titles.iter().any(|t| t == "LiveView test: sandbox isolation (Project not found): LiveView process can't access test sandbox checkout"), "{titles:?}");
        assert!(titles.iter().any(|t| t.starts_with("Auto-generated migration uses ALTER TABLE MODIFY")), "{titles:?}");
        let dialyzer = notes.iter().find(|n| n.title.starts_with("Dialyzer false positive")).expect("the unresolved one is kept");
        assert_eq!(dialyzer.kind, Kind::Antipattern);
        assert!(dialyzer.body.contains("--no-verify"), "sub-bullets are folded in: {}", dialyzer.body);
        assert!(!titles.iter().any(|t| t.contains("Compile errors for missing") || t.contains("format check")), "routine fixes are noise: {titles:?}");
        assert!(!titles.iter().any(|t| t.contains("Implement it")), "the summary's list of user messages is not a preference");
    }

    fn assistant(text: &str) -> String {
        serde_json::json!({"type": "assistant", "message": {"content": [{"type": "text", "text": text}]}}).to_string()
    }

    fn user(text: &str) -> String {
        serde_json::json!({"type": "user", "message": {"content": text}}).to_string()
    }

    fn tool_result(id: &str, text: &str, is_error: bool) -> String {
        serde_json::json!({"type": "user", "message": {"content": [{"type": "tool_result", "tool_use_id": id, "content": text, "is_error": is_error}]}}).to_string()
    }

    #[test]
    fn diagnoses_are_kept_with_their_fix_and_chatter_exit_codes_and_confirmations_are_not() {
        let lines = [
            user("Add LiveView tests for the review page."),
            assistant("Let me run the tests."),
            tool_result("a", "Exit code 2", true),
            tool_result("b", "<tool_use_error>Sibling tool call errored</tool_use_error>", true),
            assistant("The issue is clear — the LiveView process can't access the SQL sandbox from the test process. I need to use shared sandbox mode."),
            assistant("Now let me update the test setup."),
            assistant("Perfect! All 43 tests pass."),
            assistant("Yes — everything is pushed and clean."),
        ];
        let t = transcript(&lines.iter().map(String::as_str).collect::<Vec<_>>());
        let notes = BuiltinExtractor::default().extract(&t, "s").unwrap();
        assert_eq!(titles(&notes), vec!["the LiveView process can't access the SQL sandbox from the test process"], "{notes:#?}");
        assert!(notes[0].body.contains("shared sandbox mode"), "the fix comes along: {}", notes[0].body);
        assert_eq!(notes[0].kind, Kind::Antipattern);
    }

    #[test]
    fn decisions_need_a_reason_and_preferences_come_from_the_user() {
        let lines = [
            user("Let's use the job queue in SQLite with WAL instead of Redis for now, it is one less service to run."),
            assistant("We decided to rewrite everything in Go."),
            user("Always run the full test suite before you commit. continue"),
            user("did you push?"),
            tool_result("q", "User has answered your questions: \"The pre-commit gate fails on pre-existing issues. What should I do?\"=\"main was clean; fix the issues\". You can now continue.", false),
        ];
        let t = transcript(&lines.iter().map(String::as_str).collect::<Vec<_>>());
        let notes = BuiltinExtractor::default().extract(&t, "s").unwrap();
        let got: Vec<(String, String)> = notes.iter().map(|n| (n.kind.to_string(), n.title.clone())).collect();
        assert!(got.iter().any(|(k, t)| k == "decision" && t.contains("SQLite with WAL")), "{got:?}");
        assert!(!got.iter().any(|(_, t)| t.contains("Go")), "a decision without a reason is not kept: {got:?}");
        assert!(got.iter().any(|(k, t)| k == "preference" && t == "Always run the full test suite before you commit"), "{got:?}");
        assert!(got.iter().any(|(k, t)| k == "preference" && t.ends_with("→ main was clean; fix the issues")), "{got:?}");
        assert!(!got.iter().any(|(_, t)| t.contains("push")), "{got:?}");
    }

    #[test]
    fn the_outcome_is_kept_only_when_it_changed_the_project() {
        let landed = [user("Implement spotter-gqc"), assistant("The spotter-gqc epic is fully implemented and pushed: annotations now have message refs.")];
        let t = transcript(&landed.iter().map(String::as_str).collect::<Vec<_>>());
        let notes = BuiltinExtractor::default().extract(&t, "s").unwrap();
        assert!(notes.iter().any(|n| n.kind == Kind::Status && n.title.contains("fully implemented")), "{notes:#?}");
        let chatter = [user("did you push?"), assistant("Yes — everything is pushed and clean.")];
        let t = transcript(&chatter.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(BuiltinExtractor::default().extract(&t, "s").unwrap().is_empty());
    }
}
