//! What a session is given from the vault, and why.
//!
//! One policy for every hook, with one budget and a reason on each note:
//! - **pinned**: active preferences and any note with `pin: true` in its front matter, newest
//!   first, within their share of the budget. They pass no similarity threshold: a person's
//!   preferences matter to every session.
//! - **status notes** (updated recently enough) earn their place: one is given to a session when
//!   it bears on the session's task or work, by the same similarity as matches with a lower bar
//!   (`status_similarity`). Pinned into every session, six statuses filled the pinned share
//!   whatever the task and were most of what sessions got. A session without a task (a person's)
//!   gets the few most recent ones instead, pinned.
//! - **task**: notes that match the task the session was spawned for (title, body, files).
//! - **prompt**: notes that match what the person just asked (the UserPromptSubmit hook).
//! - **work**: notes that match what is being worked on (changed files, branch, commit subjects).
//!
//! A matched note must be close enough to its query (cosine similarity, when the model is there)
//! and not already given to the session (`exclude`). The budget counts the characters of what is
//! shown (title and trimmed body), so the rendered context stays well under Claude Code's
//! 10,000-character cap. [`plan`] is the pure rule; [`crate::Vault::inject`] feeds it.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// The longest body shown for one note; longer ones are cut at a word with an ellipsis.
pub const NOTE_CHARS: usize = 600;
/// What each note costs beyond its title and body (kind, date, punctuation).
const OVERHEAD: usize = 40;

/// Why a note is injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    Pinned,
    Task,
    Prompt,
    Work,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Pinned => "pinned",
            Reason::Task => "task",
            Reason::Prompt => "prompt",
            Reason::Work => "work",
        }
    }

    /// The reason from its wire name (`pinned`, `task`, `prompt`, `work`).
    pub fn parse(s: &str) -> Option<Reason> {
        [Reason::Pinned, Reason::Task, Reason::Prompt, Reason::Work]
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    /// The reason in words, as the debug log and `kite vault inject` show it.
    /// A reason named on the wire (`task`), in words; an unknown name is "recalled".
    pub fn describe_name(name: &str) -> &'static str {
        Reason::parse(name).map_or("recalled", Reason::describe)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Reason::Pinned => "pinned",
            Reason::Task => "matched the task",
            Reason::Prompt => "matched the prompt",
            Reason::Work => "matched the recent work",
        }
    }
}

/// What a session asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ask {
    /// Include the pinned notes.
    pub pinned: bool,
    /// The task's title, body and declared files.
    pub task: Option<String>,
    /// The prompt a person just submitted.
    pub prompt: Option<String>,
    /// What is being worked on: changed files, branch, commit subjects.
    pub work: Option<String>,
    /// Notes the session already has.
    pub exclude: Vec<String>,
    /// Characters all notes together may take.
    pub budget: usize,
    /// The pinned notes' share of the budget, 0 to 1.
    pub pinned_share: f64,
    /// Matched notes less similar to their query than this are left out.
    pub min_similarity: f32,
    /// Matched notes scoring under this fraction of their query's best hit are left out: in a
    /// vault about one project every note is somewhat similar to every query, so the absolute
    /// threshold alone lets in notes that only share the project's vocabulary.
    pub relative: f64,
    /// A status note not updated for this many days is no longer given.
    pub status_days: u32,
    /// A fresh status note is given to a session with a task when it is at least this similar to
    /// the task or the recent work (lower than `min_similarity`: a project's state bears on more
    /// than the notes that answer the task).
    pub status_similarity: f32,
    /// A session without a task gets this many of the most recent status notes, pinned.
    pub recent_status: usize,
    /// Candidates recalled per query before the threshold and the budget.
    pub k: usize,
}

impl Default for Ask {
    fn default() -> Self {
        Ask {
            pinned: true,
            task: None,
            prompt: None,
            work: None,
            exclude: vec![],
            budget: 6000,
            pinned_share: 0.4,
            min_similarity: 0.25,
            relative: 0.7,
            status_days: 14,
            status_similarity: STATUS_SIMILARITY,
            recent_status: 3,
            k: 8,
        }
    }
}

/// The bar a status note clears to be given to a session with a task (chosen on the judged set,
/// `kite-inject-bench`).
pub const STATUS_SIMILARITY: f32 = 0.20;

/// The most characters one ask may budget: a hook's output must stay under Claude Code's cap.
pub const MAX_BUDGET: usize = 9_000;

impl Ask {
    /// Refuses sizes that make no sense, saying which and what is allowed.
    pub fn validate(&self) -> Result<(), String> {
        if self.budget == 0 || self.budget > MAX_BUDGET {
            return Err(format!(
                "budget must be between 1 and {MAX_BUDGET} characters (got {})",
                self.budget
            ));
        }
        if !(0.0..=1.0).contains(&self.relative) {
            return Err(format!(
                "relative must be between 0 and 1 (got {})",
                self.relative
            ));
        }
        if !(0.0..=1.0).contains(&self.pinned_share) {
            return Err(format!(
                "pinned_share must be between 0 and 1 (got {})",
                self.pinned_share
            ));
        }
        if self.recent_status > 20 {
            return Err(format!(
                "recent_status must be at most 20 (got {})",
                self.recent_status
            ));
        }
        if self.k == 0 || self.k > 100 {
            return Err(format!("k must be between 1 and 100 (got {})", self.k));
        }
        if self.exclude.len() > 10_000 {
            return Err("exclude holds at most 10000 ids".into());
        }
        Ok(())
    }
}

/// A note to inject, with why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Injected {
    pub id: String,
    pub title: String,
    pub kind: String,
    pub updated: String,
    /// The body, trimmed to [`NOTE_CHARS`] on one line.
    pub body: String,
    pub reason: Reason,
    /// The search score and cosine similarity of a matched note; `None` for pinned ones.
    pub score: Option<f64>,
    pub similarity: Option<f32>,
}

/// What [`crate::Vault::inject`] chose, and a warning when it had to search by keywords only.
#[derive(Debug, Clone, Serialize)]
pub struct Injection {
    pub notes: Vec<Injected>,
    pub warning: Option<String>,
}

/// A note that could be pinned.
#[derive(Debug, Clone)]
pub struct PinCandidate {
    pub id: String,
    pub title: String,
    pub kind: String,
    pub updated: DateTime<Utc>,
    pub pinned: bool,
    pub body: String,
    /// For a status note: how similar it is to the session's closest query (task, work or
    /// prompt), and that query's reason; `None` when the session asked nothing or there is no model.
    pub bears: Option<(Reason, f32)>,
}

/// A note a query matched.
#[derive(Debug, Clone)]
pub struct Match {
    pub id: String,
    pub title: String,
    pub kind: String,
    pub updated: String,
    pub body: String,
    pub score: f64,
    /// `None` when found by keywords only.
    pub similarity: Option<f32>,
}

/// Whether a candidate is always pinned: marked `pin: true`, or a preference.
pub fn always_pinned(c: &PinCandidate) -> bool {
    c.pinned || c.kind == "preference"
}

/// Whether a candidate is a status note updated within `status_days` of `now` (given when it
/// bears on the session, or to a session without a task).
pub fn fresh_status(c: &PinCandidate, status_days: u32, now: DateTime<Utc>) -> bool {
    !always_pinned(c) && c.kind == "status" && now - c.updated <= Duration::days(status_days as i64)
}

/// Whether a candidate may be given without a search: pinned, or a fresh status note.
pub fn is_pinned(c: &PinCandidate, status_days: u32, now: DateTime<Utc>) -> bool {
    always_pinned(c) || fresh_status(c, status_days, now)
}

/// The policy. `pins` are every active note that could be pinned; `matches` each query's hits
/// in rank order; `keyword_only` says the model was not there (then similarity cannot be
/// checked and keyword hits are taken as they rank).
pub fn plan(
    ask: &Ask,
    pins: Vec<PinCandidate>,
    matches: Vec<(Reason, Vec<Match>)>,
    keyword_only: bool,
    now: DateTime<Utc>,
) -> Vec<Injected> {
    let mut picked = Picker {
        seen: ask.exclude.iter().cloned().collect(),
        used: 0,
        out: vec![],
    };
    if ask.pinned {
        let share = ((ask.budget as f64) * ask.pinned_share) as usize;
        let (mut always, mut statuses): (Vec<PinCandidate>, Vec<PinCandidate>) = pins
            .into_iter()
            .filter(|c| is_pinned(c, ask.status_days, now))
            .partition(always_pinned);
        let newest =
            |a: &PinCandidate, b: &PinCandidate| b.updated.cmp(&a.updated).then(a.id.cmp(&b.id));
        always.sort_by(newest);
        statuses.sort_by(newest);
        for c in always {
            picked.take(c.into_match(None), Reason::Pinned, share);
        }
        if ask.task.is_none() {
            // A person's session: the project's latest state.
            for c in statuses.into_iter().take(ask.recent_status) {
                picked.take(c.into_match(None), Reason::Pinned, share);
            }
        } else {
            // The closest first, within the pinned share: the project's state never crowds out
            // the notes that answer the task.
            let mut bearing: Vec<(PinCandidate, Reason, f32)> = statuses
                .into_iter()
                .filter_map(|c| c.bears.filter(|(_, s)| *s >= ask.status_similarity).map(|(r, s)| (c, r, s)))
                .collect();
            bearing.sort_by(|a, b| b.2.total_cmp(&a.2));
            for (c, reason, sim) in bearing {
                picked.take(c.into_match(Some(sim)), reason, share);
            }
        }
    }
    for (reason, hits) in matches {
        let best = hits.iter().map(|m| m.score).fold(0.0f64, f64::max);
        // With the pinned notes asked for, a status note was judged above, by its own bar (and a
        // stale one stays out); it does not come in again as an ordinary match.
        let hits = hits.into_iter().filter(|m| !(ask.pinned && m.kind == "status"));
        for m in hits.take(ask.k) {
            let close = match m.similarity {
                Some(s) => s >= ask.min_similarity,
                None => keyword_only,
            } && m.score >= ask.relative * best;
            if close {
                picked.take(m, reason, ask.budget);
            }
        }
    }
    picked.out
}

impl PinCandidate {
    fn into_match(self, similarity: Option<f32>) -> Match {
        Match {
            id: self.id,
            title: self.title,
            kind: self.kind,
            updated: self.updated.to_rfc3339(),
            body: self.body,
            score: similarity.map_or(0.0, f64::from),
            similarity,
        }
    }
}

/// What has been chosen so far, and what it costs.
struct Picker {
    seen: HashSet<String>,
    used: usize,
    out: Vec<Injected>,
}

impl Picker {
    /// Takes the note when the session does not have it yet and it fits under `limit`
    /// characters together with what was taken before.
    fn take(&mut self, m: Match, reason: Reason, limit: usize) {
        if self.seen.contains(&m.id) {
            return;
        }
        let body = shorten(&m.body, NOTE_CHARS);
        let cost = cost(&m.title, &body);
        if self.used + cost > limit {
            return;
        }
        self.used += cost;
        self.seen.insert(m.id.clone());
        let matched = reason != Reason::Pinned;
        self.out.push(Injected {
            id: m.id,
            title: m.title,
            kind: m.kind,
            updated: m.updated,
            body,
            reason,
            score: matched.then_some(m.score),
            similarity: m.similarity,
        });
    }
}

/// Words that carry no topic: a prompt made of them ("continue until all are done", "did you
/// push?") is small talk and brings no notes.
const FILLER: &[&str] = &[
    "the",
    "and",
    "but",
    "for",
    "you",
    "your",
    "are",
    "was",
    "were",
    "did",
    "does",
    "done",
    "not",
    "yes",
    "yeah",
    "all",
    "any",
    "can",
    "could",
    "would",
    "should",
    "will",
    "this",
    "that",
    "these",
    "those",
    "with",
    "from",
    "into",
    "then",
    "than",
    "now",
    "just",
    "also",
    "please",
    "thanks",
    "thank",
    "okay",
    "sure",
    "good",
    "great",
    "nice",
    "looks",
    "look",
    "continue",
    "until",
    "keep",
    "going",
    "again",
    "next",
    "more",
    "what",
    "why",
    "how",
    "when",
    "where",
    "who",
    "which",
    "there",
    "here",
    "have",
    "has",
    "had",
    "let",
    "lets",
    "let's",
    "ok",
    "its",
    "it's",
    "out",
    "get",
    "got",
    "go",
    "do",
    "it",
    "is",
    "me",
    "my",
    "we",
    "our",
    "us",
    "so",
    "to",
    "of",
    "in",
    "on",
    "at",
    "be",
    "an",
    "a",
    "i",
    "push",
    "pushed",
    "commit",
    "committed",
    "run",
    "ran",
    "try",
    "start",
    "stop",
    "fix",
    "finish",
    "finished",
];

/// Whether a prompt has too few topic words to look anything up by (fewer than three words
/// that are not filler).
pub fn is_small_talk(prompt: &str) -> bool {
    let words = prompt
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '_' || c == '.' || c == ':'))
        .map(|w| {
            w.trim_matches(|c: char| c == '.' || c == ':' || c == '\'')
                .to_lowercase()
        })
        .filter(|w| w.chars().count() >= 2 && !FILLER.contains(&w.as_str()))
        .count();
    words < 3
}

fn cost(title: &str, body: &str) -> usize {
    title.chars().count() + body.chars().count() + OVERHEAD
}

/// The text on one line, cut at a word boundary to at most `max` characters.
pub fn shorten(s: &str, max: usize) -> String {
    let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    let at = cut.rfind(' ').filter(|&i| i > max / 2).unwrap_or(cut.len());
    format!("{}…", cut[..at].trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-12-01T12:00:00Z".parse().unwrap()
    }

    fn pin(id: &str, kind: &str, days_old: i64, pinned: bool) -> PinCandidate {
        PinCandidate {
            id: id.into(),
            title: format!("title {id}"),
            kind: kind.into(),
            updated: now() - Duration::days(days_old),
            pinned,
            body: "body".into(),
            bears: None,
        }
    }

    fn hit(id: &str, sim: Option<f32>) -> Match {
        Match {
            id: id.into(),
            title: format!("title {id}"),
            kind: "decision".into(),
            updated: "2026-11-30".into(),
            body: "b".into(),
            score: 1.0,
            similarity: sim,
        }
    }

    fn ids(v: &[Injected]) -> Vec<(&str, Reason)> {
        v.iter().map(|i| (i.id.as_str(), i.reason)).collect()
    }

    #[test]
    fn without_a_task_preferences_marked_notes_and_the_freshest_statuses_are_pinned_newest_first() {
        let pins = vec![
            pin("pref-old", "preference", 300, false),
            pin("status-new", "status", 1, false),
            pin("status-stale", "status", 40, false),
            pin("fact", "fact", 0, false),
            pin("marked", "decision", 5, true),
            pin("status-2", "status", 2, false),
            pin("status-3", "status", 3, false),
            pin("status-4", "status", 4, false),
        ];
        let got = plan(&Ask::default(), pins, vec![], false, now());
        assert_eq!(
            ids(&got),
            vec![
                ("marked", Reason::Pinned),
                ("pref-old", Reason::Pinned),
                ("status-new", Reason::Pinned),
                ("status-2", Reason::Pinned),
                ("status-3", Reason::Pinned),
            ],
            "the three most recent status notes, after the notes that are always pinned"
        );
    }

    #[test]
    fn with_a_task_a_status_note_is_given_only_when_it_bears_on_the_work() {
        let bearing = |id: &str, sim: f32| PinCandidate {
            bears: Some((Reason::Task, sim)),
            ..pin(id, "status", 1, false)
        };
        let pins = vec![
            pin("pref", "preference", 3, false),
            bearing("status-close", 0.41),
            bearing("status-far", 0.12),
            pin("status-unknown", "status", 1, false),
            PinCandidate {
                bears: Some((Reason::Work, 0.5)),
                ..pin("status-stale", "status", 40, false)
            },
        ];
        let ask = Ask {
            task: Some("Add a column".into()),
            ..Ask::default()
        };
        // Found by the task's search as well, above the bar for matches: still only by its own bar.
        let as_hit = |id: &str, sim: f32| Match { kind: "status".into(), ..hit(id, Some(sim)) };
        let matches = vec![(Reason::Task, vec![as_hit("status-far", 0.9), as_hit("status-stale", 0.9), hit("fact", Some(0.5))])];
        let got = plan(&ask, pins, matches, false, now());
        assert_eq!(ids(&got), vec![("pref", Reason::Pinned), ("status-close", Reason::Task), ("fact", Reason::Task)]);
        assert_eq!(got[1].similarity, Some(0.41));
    }

    #[test]
    fn marked_and_preference_notes_stay_pinned_whatever_the_task() {
        let pins = vec![
            pin("pref-old", "preference", 300, false),
            pin("marked", "status", 5, true),
        ];
        let ask = Ask {
            task: Some("Translate the app".into()),
            ..Ask::default()
        };
        let got = plan(&ask, pins, vec![], false, now());
        assert_eq!(
            ids(&got),
            vec![("marked", Reason::Pinned), ("pref-old", Reason::Pinned)]
        );
    }

    #[test]
    fn a_status_note_stops_being_pinned_after_the_configured_time() {
        let ask = Ask {
            status_days: 60,
            ..Ask::default()
        };
        let got = plan(
            &ask,
            vec![pin("status-stale", "status", 40, false)],
            vec![],
            false,
            now(),
        );
        assert_eq!(got.len(), 1);
        let ask = Ask {
            status_days: 30,
            ..Ask::default()
        };
        assert!(plan(
            &ask,
            vec![pin("status-stale", "status", 40, false)],
            vec![],
            false,
            now()
        )
        .is_empty());
    }

    #[test]
    fn pinned_notes_keep_to_their_share_of_the_budget() {
        let pins: Vec<PinCandidate> = (0..50)
            .map(|i| pin(&format!("p{i:02}"), "preference", i, false))
            .collect();
        let ask = Ask {
            budget: 1000,
            pinned_share: 0.4,
            ..Ask::default()
        };
        let got = plan(
            &ask,
            pins,
            vec![(Reason::Task, vec![hit("t", Some(0.9))])],
            false,
            now(),
        );
        let pinned_chars: usize = got
            .iter()
            .filter(|i| i.reason == Reason::Pinned)
            .map(|i| cost(&i.title, &i.body))
            .sum();
        assert!(pinned_chars <= 400, "{pinned_chars}");
        assert!(
            got.iter().any(|i| i.id == "t" && i.reason == Reason::Task),
            "the task note still fits"
        );
        let total: usize = got.iter().map(|i| cost(&i.title, &i.body)).sum();
        assert!(total <= 1000);
    }

    #[test]
    fn matched_notes_need_the_threshold_and_come_once_with_the_first_reason() {
        let matches = vec![
            (
                Reason::Task,
                vec![hit("a", Some(0.8)), hit("weak", Some(0.2)), hit("kw", None)],
            ),
            (Reason::Work, vec![hit("a", Some(0.9)), hit("b", Some(0.5))]),
        ];
        let got = plan(
            &Ask {
                pinned: false,
                ..Ask::default()
            },
            vec![],
            matches,
            false,
            now(),
        );
        assert_eq!(ids(&got), vec![("a", Reason::Task), ("b", Reason::Work)]);
    }

    #[test]
    fn without_the_model_keyword_hits_are_taken_as_they_rank() {
        let got = plan(
            &Ask {
                pinned: false,
                ..Ask::default()
            },
            vec![],
            vec![(Reason::Prompt, vec![hit("kw", None)])],
            true,
            now(),
        );
        assert_eq!(ids(&got), vec![("kw", Reason::Prompt)]);
    }

    #[test]
    fn notes_the_session_already_has_are_not_given_twice() {
        let ask = Ask {
            pinned: true,
            exclude: vec!["a".into(), "pref".into()],
            ..Ask::default()
        };
        let got = plan(
            &ask,
            vec![pin("pref", "preference", 1, false)],
            vec![(
                Reason::Prompt,
                vec![hit("a", Some(0.9)), hit("c", Some(0.6))],
            )],
            false,
            now(),
        );
        assert_eq!(ids(&got), vec![("c", Reason::Prompt)]);
    }

    #[test]
    fn matches_far_below_their_querys_best_hit_are_left_out() {
        let mut weak = hit("weak", Some(0.35));
        weak.score = 0.3;
        let mut best = hit("best", Some(0.7));
        best.score = 0.9;
        let got = plan(
            &Ask {
                pinned: false,
                ..Ask::default()
            },
            vec![],
            vec![(Reason::Task, vec![best, weak])],
            false,
            now(),
        );
        assert_eq!(
            ids(&got),
            vec![("best", Reason::Task)],
            "0.3 is under 0.7 of 0.9"
        );
    }

    #[test]
    fn small_talk_is_told_from_a_question() {
        for p in [
            "continue until all are done",
            "did you push?",
            "ok thanks, looks good",
            "yes",
        ] {
            assert!(is_small_talk(p), "{p}");
        }
        for p in [
            "mix phx.server doesnt seem to start",
            "Spark DSL error: Cannot accept [:state]",
            "why does credo reject length/1 here",
        ] {
            assert!(!is_small_talk(p), "{p}");
        }
    }

    #[test]
    fn long_bodies_are_cut_at_a_word() {
        let s = shorten(&"word ".repeat(400), 100);
        assert!(s.chars().count() <= 100 && s.ends_with("word…"), "{s}");
        assert_eq!(shorten("  a\n b  ", 10), "a b");
    }

    #[test]
    fn sizes_are_checked() {
        assert!(Ask {
            budget: 0,
            ..Ask::default()
        }
        .validate()
        .is_err());
        assert!(Ask {
            budget: 20_000,
            ..Ask::default()
        }
        .validate()
        .unwrap_err()
        .contains("9000"));
        assert!(Ask {
            k: 0,
            ..Ask::default()
        }
        .validate()
        .is_err());
        assert!(Ask::default().validate().is_ok());
    }
}

/// Renders a session's context from `template` (Tera) with `vars` and `notes`, within `budget`
/// characters: blank lines go, and while it is over budget the last note is dropped and it is
/// rendered again; with no note left, the text is cut. Returns the text and the notes it kept
/// (what the session was given, after the cut).
pub fn render_within(
    template: &str,
    vars: &[(&str, serde_json::Value)],
    mut notes: Vec<serde_json::Value>,
    budget: usize,
) -> std::result::Result<(String, Vec<serde_json::Value>), String> {
    loop {
        let mut ctx = tera::Context::new();
        for (k, v) in vars {
            ctx.insert(*k, v);
        }
        ctx.insert("notes", &notes);
        let text = tera::Tera::one_off(template, &ctx, false).map_err(|e| {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            msg
        })?;
        let text = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        if text.chars().count() <= budget {
            return Ok((text, notes));
        }
        if notes.pop().is_none() {
            return Ok((text.chars().take(budget).collect(), notes));
        }
    }
}

#[cfg(test)]
mod render_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn over_budget_the_last_notes_go_first_then_the_text_is_cut() {
        let t = "# {{ project }}\n\n{% for n in notes %}- {{ n.title }}\n{% endfor %}";
        let notes = vec![
            json!({"title": "aaaa"}),
            json!({"title": "bbbb"}),
            json!({"title": "cccc"}),
        ];
        let vars = [("project", json!("p"))];
        let (text, kept) = render_within(t, &vars, notes.clone(), 100).unwrap();
        assert_eq!(
            (text.as_str(), kept.len()),
            ("# p\n- aaaa\n- bbbb\n- cccc", 3)
        );
        let (text, kept) = render_within(t, &vars, notes.clone(), 16).unwrap();
        assert_eq!((text.as_str(), kept.len()), ("# p\n- aaaa", 1));
        let (text, kept) = render_within(t, &vars, notes, 2).unwrap();
        assert_eq!((text.as_str(), kept.len()), ("# ", 0));
        assert!(render_within("{{ nope", &vars, vec![], 10).is_err());
    }
}
