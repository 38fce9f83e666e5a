//! kite-inject-bench: how good is what the hooks inject? Runs the injection policy
//! ([`kite_memory::Vault::inject`], the code the daemon's `memory.inject` runs) with the real model
//! over the judged set in `bench/judged/inject.json` and prints a Markdown section for
//! docs/BENCHMARKS.md: how often the note a session most needs is injected, and what fraction of
//! what is injected is relevant, for sessions with a task, sessions without one, and prompts, at
//! the shipped thresholds and at their neighbours, and the policy before status notes had to earn
//! their place (every fresh status pinned into every session), in the same run. Pinned notes are
//! judged like every other note: relevant only where the judged set says so.
//!
//! The asks are built as the hooks build them: a session start asks for the pinned notes, the
//! task (title, body, files) and the recent work within 4,000 characters at similarity 0.25 (a
//! fresh status note at the lower 0.20); a prompt asks for the prompt's notes only, within 1,600
//! characters at similarity 0.30; a matched note must also score at least 0.7 of its query's best
//! hit.
//! `--grid` prints one line per combination of thresholds, the sweep they were chosen from.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::{Duration, SecondsFormat, Utc};
use kite_memory::{Ask, EmbedConfig, Reason, Vault, VaultConfig};
use serde::Deserialize;

#[derive(Deserialize)]
struct Judged {
    notes: Vec<JudgedNote>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct JudgedNote {
    id: String,
    kind: String,
    title: String,
    body: String,
    /// Days since the note was last updated.
    days: i64,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    #[serde(default)]
    task: Option<String>,
    #[serde(default)]
    work: Option<String>,
    #[serde(default)]
    prompt: Option<String>,
    needed: Option<String>,
    relevant: Vec<String>,
}

#[derive(Default)]
struct Tally {
    cases: usize,
    with_needed: usize,
    needed_hit: usize,
    injected: usize,
    injected_relevant: usize,
    matched: usize,
    matched_relevant: usize,
    chars: usize,
    nothing_wanted: usize,
    nothing_given: usize,
    misses: Vec<String>,
    strays: Vec<String>,
}

impl Tally {
    fn frac(a: usize, b: usize) -> String {
        if b == 0 {
            "–".into()
        } else {
            format!("{:.0}% ({a}/{b})", 100.0 * a as f64 / b as f64)
        }
    }

    /// Counts one case's injection against its judgement.
    fn record(&mut self, c: &Case, got: &kite_memory::Injection) {
        self.cases += 1;
        let ids: Vec<&str> = got.notes.iter().map(|n| n.id.as_str()).collect();
        if let Some(need) = &c.needed {
            self.with_needed += 1;
            if ids.contains(&need.as_str()) {
                self.needed_hit += 1;
            } else {
                self.misses.push(format!("{} (needed {need})", c.name));
            }
        } else {
            self.nothing_wanted += 1;
            if ids.is_empty() {
                self.nothing_given += 1;
            }
        }
        for n in &got.notes {
            self.injected += 1;
            self.chars += n.title.chars().count() + n.body.chars().count();
            let relevant = c.relevant.contains(&n.id) || c.needed.as_deref() == Some(n.id.as_str());
            self.injected_relevant += usize::from(relevant);
            if !relevant {
                self.strays.push(format!("{} ← {}", c.name, n.id));
            }
            if n.reason == Reason::Pinned {
                continue;
            }
            self.matched += 1;
            self.matched_relevant += usize::from(relevant);
        }
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("kite-inject-bench: {e}");
        std::process::exit(1);
    }
}

fn model() -> Result<EmbedConfig, String> {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let dir = std::env::var_os("KITE_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| models.join(kite_memory::embed::MODEL_SUBDIR));
    let ort = std::env::var_os("KITE_ORT_DYLIB")
        .map(PathBuf::from)
        .unwrap_or_else(|| models.join("libonnxruntime.so"));
    if !dir.join("model.onnx").is_file() {
        return Err(format!("no model in {} (run `make setup`)", dir.display()));
    }
    Ok(EmbedConfig {
        model_dir: dir,
        ort_dylib: ort,
    })
}

/// The judged set, `bench/judged/inject.json`.
fn load_judged() -> Result<Judged, String> {
    let set = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/judged/inject.json");
    serde_json::from_str(
        &std::fs::read_to_string(&set).map_err(|e| format!("{}: {e}", set.display()))?,
    )
    .map_err(|e| format!("{}: {e}", set.display()))
}

/// Writes the judged notes as Markdown files under `tmp/vault`, dated `days` ago, and opens a
/// vault over them with the real model.
fn open_vault(tmp: &Path, notes: &[JudgedNote]) -> Result<Vault, String> {
    let dir = tmp.join("vault");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let now = Utc::now();
    for n in notes {
        let when = (now - Duration::days(n.days)).to_rfc3339_opts(SecondsFormat::Secs, true);
        let text = format!(
            "---\nid: {}\nkind: {}\ntitle: {}\ncreated: {when}\nupdated: {when}\n---\n\n{}\n",
            n.id,
            n.kind,
            serde_json::to_string(&n.title).map_err(|e| e.to_string())?,
            n.body
        );
        std::fs::write(dir.join(format!("{}.md", n.id)), text).map_err(|e| e.to_string())?;
    }
    let cfg = model()?;
    let mut config = VaultConfig::new(&dir, tmp.join("index.db"));
    config.model_dir = Some(cfg.model_dir.clone());
    config.ort_dylib = Some(cfg.ort_dylib.clone());
    Vault::open(config).map_err(|e| e.to_string())
}

fn run() -> Result<(), String> {
    let judged = load_judged()?;
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut vault = open_vault(tmp.path(), &judged.notes)?;
    eprintln!(
        "vault of {} notes indexed; {} cases",
        judged.notes.len(),
        judged.cases.len()
    );
    let pinnable: HashSet<String> = {
        let probe = vault
            .inject(&Ask {
                pinned: true,
                ..Ask::default()
            })
            .map_err(|e| e.to_string())?;
        probe
            .notes
            .into_iter()
            .filter(|n| n.reason == Reason::Pinned)
            .map(|n| n.id)
            .collect()
    };

    let mut md = String::from("## What the hooks inject (judged set)\n\n");
    md.push_str(&format!(
        "`target/release/kite-inject-bench` (run by `make bench`): the injection policy with the real model over \
         `bench/judged/inject.json`, a vault of {} notes for a Phoenix/Ash/SQLite project (lessons as real sessions on \
         such a project recorded them, preferences, status notes, one stale, and unrelated notes) and {} cases I judged by \
         hand: each names the note the session most needs and every note a reviewer would want. Every injected note is \
         judged, pinned ones too ({} notes are pinned into a session without a task here).\n\n",
        judged.notes.len(),
        judged.cases.len(),
        pinnable.len()
    ));
    let mut rows = vec![];
    // The first row is the policy before this round: every fresh status note pinned into every
    // session (a bar no note misses, and all of them for a session without a task).
    let before = Policy {
        status: -1.0,
        recent_status: 20,
        ..Policy::default()
    };
    if std::env::args().any(|a| a == "--grid") {
        return grid(&mut vault, &judged.cases);
    }
    let shipped = Policy::default();
    for p in [
        before,
        shipped,
        Policy { status: 0.15, ..shipped },
        Policy { status: 0.25, ..shipped },
        Policy { status: 0.35, ..shipped },
        Policy { session: 0.20, prompt: 0.25, ..shipped },
        Policy { session: 0.30, prompt: 0.35, ..shipped },
        Policy { relative: 0.6, ..shipped },
    ] {
        rows.push((p, tally_cases(&mut vault, &judged.cases, &p)?));
    }
    push_table(&mut md, &rows);
    push_shipped_summary(&mut md, &rows[0].1, &rows[1].1);
    println!("{md}");
    Ok(())
}

/// The thresholds a row runs at: a session's matches, a prompt's, a status note's, and how many
/// status notes a session without a task gets.
#[derive(Clone, Copy, PartialEq)]
struct Policy {
    session: f32,
    prompt: f32,
    status: f32,
    recent_status: usize,
    relative: f64,
}

impl Default for Policy {
    /// What kite ships.
    fn default() -> Self {
        let d = Ask::default();
        Policy {
            session: SESSION,
            prompt: PROMPT,
            status: d.status_similarity,
            recent_status: d.recent_status,
            relative: d.relative,
        }
    }
}

impl Policy {
    fn label(&self) -> String {
        if self.status < 0.0 {
            return "before: every fresh status pinned".into();
        }
        let shipped = if *self == Policy::default() {
            " (shipped)"
        } else {
            ""
        };
        format!(
            "{:.2} / {:.2} / status {:.2} / relative {:.1}{shipped}",
            self.session, self.prompt, self.status, self.relative
        )
    }
}

/// The thresholds the hooks ship (`[hooks] min_similarity`, `prompt_min_similarity`).
const SESSION: f32 = 0.25;
const PROMPT: f32 = 0.30;

/// `--grid`: one line per combination of thresholds, for choosing them (not in the report).
fn grid(vault: &mut Vault, cases: &[Case]) -> Result<(), String> {
    println!("session prompt status relative | needed | relevant | matched share");
    for session in [0.25f32, 0.30, 0.35, 0.40, 0.45] {
        for status in [0.15f32, 0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50] {
            for relative in [0.5f64, 0.6, 0.7] {
                let p = Policy {
                    session,
                    prompt: session + 0.05,
                    status,
                    relative,
                    ..Policy::default()
                };
                let t = tally_cases(vault, cases, &p)?;
                let f = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
                println!(
                    "{session:.2} {:.2} {status:.2} {relative:.1} | {:.0} | {:.0} | {:.0}",
                    session + 0.05,
                    f(total(&t, &|t| t.needed_hit), total(&t, &|t| t.with_needed)),
                    f(
                        total(&t, &|t| t.injected_relevant),
                        total(&t, &|t| t.injected)
                    ),
                    f(total(&t, &|t| t.matched), total(&t, &|t| t.injected)),
                );
            }
        }
    }
    Ok(())
}

/// Tallies per kind of case: sessions with a task, sessions without one, prompts.
type Tallies = [(&'static str, Tally); 3];

/// What a hook asks for case `c` under policy `p`, and the tally slot the case counts in.
fn ask_for(c: &Case, p: &Policy) -> (usize, Ask) {
    if let Some(prompt) = &c.prompt {
        return (
            2,
            Ask {
                pinned: false,
                prompt: Some(prompt.clone()),
                budget: 1600,
                min_similarity: p.prompt,
                relative: p.relative,
                k: 4,
                ..Ask::default()
            },
        );
    }
    let slot = if c.task.is_some() { 0 } else { 1 };
    let ask = Ask {
        pinned: true,
        task: c.task.clone(),
        work: c.work.clone(),
        budget: 4000,
        min_similarity: p.session,
        status_similarity: p.status,
        recent_status: p.recent_status,
        relative: p.relative,
        k: 8,
        ..Ask::default()
    };
    (slot, ask)
}

/// Runs every case through the injection policy and tallies the results.
fn tally_cases(vault: &mut Vault, cases: &[Case], p: &Policy) -> Result<Tallies, String> {
    let mut tallies: Tallies = [
        ("sessions with a task", Tally::default()),
        ("sessions without a task", Tally::default()),
        ("prompts", Tally::default()),
    ];
    for c in cases {
        let (slot, ask) = ask_for(c, p);
        let got = vault.inject(&ask).map_err(|e| e.to_string())?;
        tallies[slot].1.record(c, &got);
    }
    Ok(tallies)
}

/// Appends the table: one row per policy and kind of case.
fn push_table(md: &mut String, rows: &[(Policy, Tallies)]) {
    md.push_str("| thresholds (session / prompt / status / relative) | cases | most needed note injected | injected notes relevant | matched notes of those injected | matched notes relevant | prompts with nothing to find that injected nothing | characters per case |\n|---|---|---|---|---|---|---|---|\n");
    for (p, tallies) in rows {
        for (what, t) in tallies {
            md.push_str(&format!(
                "| {}: {what} | {} | {} | {} | {} | {} | {} | {} |\n",
                p.label(),
                t.cases,
                Tally::frac(t.needed_hit, t.with_needed),
                Tally::frac(t.injected_relevant, t.injected),
                Tally::frac(t.matched, t.injected),
                Tally::frac(t.matched_relevant, t.matched),
                if t.nothing_wanted == 0 {
                    "–".to_string()
                } else {
                    Tally::frac(t.nothing_given, t.nothing_wanted)
                },
                t.chars / t.cases.max(1)
            ));
        }
    }
}

/// All cases together.
fn total(t: &Tallies, f: &dyn Fn(&Tally) -> usize) -> usize {
    t.iter().map(|(_, t)| f(t)).sum()
}

/// Appends the totals before and at the shipped thresholds, and the cases the shipped policy
/// missed or strayed on.
fn push_shipped_summary(md: &mut String, before: &Tallies, shipped: &Tallies) {
    md.push_str("\n| over all cases | before (every fresh status pinned) | shipped | target |\n|---|---|---|---|\n");
    for (what, target, f) in [
        (
            "most needed note injected",
            "≥ 90%",
            (&|t: &Tally| (t.needed_hit, t.with_needed)) as &dyn Fn(&Tally) -> (usize, usize),
        ),
        ("injected notes relevant", "≥ 60%", &|t: &Tally| {
            (t.injected_relevant, t.injected)
        }),
        (
            "matched notes of those injected (by count)",
            "≥ 50%",
            &|t: &Tally| (t.matched, t.injected),
        ),
        ("matched notes relevant", "", &|t: &Tally| {
            (t.matched_relevant, t.matched)
        }),
    ] {
        let cell = |ts: &Tallies| Tally::frac(total(ts, &|t| f(t).0), total(ts, &|t| f(t).1));
        md.push_str(&format!(
            "| {what} | {} | {} | {target} |\n",
            cell(before),
            cell(shipped)
        ));
    }
    let misses: Vec<&String> = shipped.iter().flat_map(|(_, t)| &t.misses).collect();
    let strays: Vec<&String> = shipped.iter().flat_map(|(_, t)| &t.strays).collect();
    if !misses.is_empty() {
        md.push_str(&format!(
            "\nMissed: {}.\n",
            misses
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    if !strays.is_empty() {
        md.push_str(&format!(
            "\nInjected but not judged relevant: {}.\n",
            strays
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
}
