//! kite-inject-bench: how good is what the hooks inject? Runs the injection policy
//! ([`kite_memory::Vault::inject`], the code the daemon's `memory.inject` runs) with the real model
//! over the judged set in `bench/judged/inject.json` and prints a Markdown section for
//! docs/BENCHMARKS.md: how often the note a session most needs is injected, and what fraction of
//! what is injected is relevant, for sessions with a task, sessions without one, and prompts, at
//! the shipped thresholds and at their neighbours.
//!
//! The asks are built as the hooks build them: a session start asks for the pinned notes, the
//! task (title, body, files) and the recent work within 4,000 characters at similarity 0.30; a
//! prompt asks for the prompt's notes only, within 1,600 characters at similarity 0.35; a matched note must also score at least 0.6 of its query's best hit.

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
            if n.reason == Reason::Pinned {
                self.injected_relevant += 1;
                continue;
            }
            self.matched += 1;
            if relevant {
                self.matched_relevant += 1;
                self.injected_relevant += 1;
            } else {
                self.strays.push(format!("{} ← {}", c.name, n.id));
            }
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
        .unwrap_or_else(|| models.join("all-minilm-l6-v2"));
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
         hand: each names the note the session most needs and every note a reviewer would want. Pinned notes ({} here: \
         the preferences and the fresh status notes) are relevant by policy, so precision is shown with them and for the \
         matched notes alone.\n\n",
        judged.notes.len(),
        judged.cases.len(),
        pinnable.len()
    ));
    let mut rows = vec![];
    // The first row is the policy before this round, as a baseline: one recall of the task and
    // the recent work together at similarity 0.30, no pinned notes, no relative cut, and no prompt
    // hook at all.
    for (session_sim, prompt_sim) in [(-1.0f32, -1.0f32), (0.30, 0.35), (0.25, 0.30), (0.35, 0.40)]
    {
        rows.push((
            session_sim,
            prompt_sim,
            tally_cases(&mut vault, &judged.cases, session_sim, prompt_sim)?,
        ));
    }
    push_table(&mut md, &rows);
    push_shipped_summary(&mut md, &rows[1].2);
    println!("{md}");
    Ok(())
}

/// Tallies per kind of case: sessions with a task, sessions without one, prompts.
type Tallies = [(&'static str, Tally); 3];

/// What a hook asks for case `c` at these thresholds, and the tally slot the case counts in; a
/// negative `session_sim` stands for the policy before this round.
fn ask_for(c: &Case, session_sim: f32, prompt_sim: f32) -> (usize, Ask) {
    let before = session_sim < 0.0;
    if let Some(p) = &c.prompt {
        (
            2,
            Ask {
                pinned: false,
                prompt: Some(p.clone()),
                budget: 1600,
                min_similarity: prompt_sim,
                k: 4,
                ..Ask::default()
            },
        )
    } else {
        let slot = if c.task.is_some() { 0 } else { 1 };
        if before {
            let both = format!(
                "{} {}",
                c.task.clone().unwrap_or_default(),
                c.work.clone().unwrap_or_default()
            );
            (
                slot,
                Ask {
                    pinned: false,
                    work: Some(both),
                    budget: 4000,
                    min_similarity: 0.30,
                    relative: 0.0,
                    k: 8,
                    ..Ask::default()
                },
            )
        } else {
            (
                slot,
                Ask {
                    pinned: true,
                    task: c.task.clone(),
                    work: c.work.clone(),
                    budget: 4000,
                    min_similarity: session_sim,
                    k: 8,
                    ..Ask::default()
                },
            )
        }
    }
}

/// Runs every case through the injection policy at these thresholds and tallies the results.
fn tally_cases(
    vault: &mut Vault,
    cases: &[Case],
    session_sim: f32,
    prompt_sim: f32,
) -> Result<Tallies, String> {
    let before = session_sim < 0.0;
    let mut tallies: Tallies = [
        ("sessions with a task", Tally::default()),
        ("sessions without a task", Tally::default()),
        ("prompts", Tally::default()),
    ];
    for c in cases {
        let (slot, ask) = ask_for(c, session_sim, prompt_sim);
        let got = if before && slot == 2 {
            kite_memory::Injection {
                notes: vec![],
                warning: None,
            }
        } else {
            vault.inject(&ask).map_err(|e| e.to_string())?
        };
        tallies[slot].1.record(c, &got);
    }
    Ok(tallies)
}

/// Appends the table: one row per thresholds and kind of case.
fn push_table(md: &mut String, rows: &[(f32, f32, Tallies)]) {
    md.push_str("| thresholds (session / prompt) | cases | most needed note injected | injected notes relevant (pinned count) | matched notes relevant | prompts with nothing to find that injected nothing | characters per case |\n|---|---|---|---|---|---|---|\n");
    for (s, p, tallies) in rows {
        for (what, t) in tallies {
            let label = if *s < 0.0 {
                "before this round (0.30, one recall, no pins, no prompt hook)".to_string()
            } else {
                format!(
                    "{s:.2} / {p:.2}{}",
                    if (*s, *p) == (0.30, 0.35) {
                        " (shipped)"
                    } else {
                        ""
                    }
                )
            };
            md.push_str(&format!(
                "| {label}: {what} | {} | {} | {} | {} | {} | {} |\n",
                t.cases,
                Tally::frac(t.needed_hit, t.with_needed),
                Tally::frac(t.injected_relevant, t.injected),
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

/// Appends the totals at the shipped thresholds and the cases they missed or strayed on.
fn push_shipped_summary(md: &mut String, shipped: &Tallies) {
    let misses: Vec<&String> = shipped.iter().flat_map(|(_, t)| &t.misses).collect();
    let strays: Vec<&String> = shipped.iter().flat_map(|(_, t)| &t.strays).collect();
    let total = |f: &dyn Fn(&Tally) -> usize| shipped.iter().map(|(_, t)| f(t)).sum::<usize>();
    md.push_str(&format!(
        "\nAt the shipped thresholds, over all cases: the most needed note is injected in {}, and {} of the injected notes \
         are relevant ({} of the matched ones).\n",
        Tally::frac(total(&|t| t.needed_hit), total(&|t| t.with_needed)),
        Tally::frac(total(&|t| t.injected_relevant), total(&|t| t.injected)),
        Tally::frac(total(&|t| t.matched_relevant), total(&|t| t.matched)),
    ));
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
