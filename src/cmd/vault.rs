//! `kite vault ...`: the memory vault from the command line (CLI.md, Memory). Works on the files
//! and the index directly; it does not need the daemon.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use super::Ctx;
use anyhow::{Context, Result};
use kite_memory::search::{SearchMode, SearchResults};
use kite_memory::{BuiltinExtractor, CommandExtractor, Extractor, Kind, NewNote, SearchOptions, Vault, VaultConfig};

#[derive(clap::Subcommand, Debug)]
pub(crate) enum VaultCmd {
    /// Add a note (the body comes from --body or standard input).
    Add {
        /// One-line title.
        #[arg(long)]
        title: String,
        /// decision, status, pattern, antipattern, preference, fact, or your own word.
        #[arg(long, default_value = "fact")]
        kind: String,
        /// A tag (repeatable).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// The body; without it, standard input is read (unless it is a terminal).
        #[arg(long)]
        body: Option<String>,
        /// The project the note belongs to.
        #[arg(long)]
        project: Option<String>,
        /// Where the note comes from (task, session, transcript).
        #[arg(long)]
        source: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Search notes (hybrid: meaning and keywords).
    Search {
        /// What to look for.
        #[arg(required = true, num_args = 1..)]
        query: Vec<String>,
        /// How many results.
        #[arg(short = 'k', long = "limit", default_value_t = 10)]
        k: usize,
        /// hybrid, vector or keyword.
        #[arg(long, default_value = "hybrid", value_parser = parse_mode)]
        mode: SearchMode,
        /// Also show superseded notes.
        #[arg(long)]
        all: bool,
        /// Favour recent notes, with this half-life in days.
        #[arg(long, value_name = "DAYS")]
        recent: Option<f64>,
        #[arg(long)]
        json: bool,
    },
    /// Print a note.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Rebuild the index from the note files.
    Reindex {
        #[arg(long)]
        json: bool,
    },
    /// Counts, index size, model state.
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// Extract notes from a Claude Code transcript (JSONL).
    Extract {
        transcript: PathBuf,
        /// Run this command (for example `claude -p`) with the extraction prompt on stdin and read
        /// JSON notes from its output, instead of the built-in offline extractor.
        #[arg(long)]
        command: Option<String>,
        /// A tera template to use instead of the built-in prompts/extract.md.tera.
        #[arg(long, requires = "command")]
        prompt: Option<PathBuf>,
        /// Show what would be added, write nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
}

fn parse_mode(s: &str) -> Result<SearchMode, String> {
    match s {
        "hybrid" => Ok(SearchMode::Hybrid),
        "vector" => Ok(SearchMode::Vector),
        "keyword" => Ok(SearchMode::Keyword),
        _ => Err(format!("unknown mode {s:?}: use hybrid, vector or keyword")),
    }
}

impl VaultCmd {
    fn json(&self) -> bool {
        match self {
            VaultCmd::Add { json, .. }
            | VaultCmd::Search { json, .. }
            | VaultCmd::Show { json, .. }
            | VaultCmd::Reindex { json }
            | VaultCmd::Stats { json }
            | VaultCmd::Extract { json, .. } => *json,
        }
    }
}

/// How this project's vault opens: its directory, its index in the home, and the model found
/// where kite looks for one (see `share`).
pub(crate) fn config(ctx: &Ctx) -> VaultConfig {
    let mut config = VaultConfig::new(&ctx.places.vault, ctx.places.index());
    let located = crate::share::model(&ctx.config.memory, &ctx.config.file);
    match located.found {
        Some(place) => {
            config.model_dir = Some(place.config.model_dir);
            config.ort_dylib = Some(place.config.ort_dylib);
        }
        None => config.model_missing = Some(format!("no model found ({})", located.explain())),
    }
    config
}

/// Opens a vault from a [`config`].
pub(crate) fn open_with(config: VaultConfig) -> Result<Vault> {
    let dir = config.dir.clone();
    Vault::open(config).with_context(|| format!("cannot open the vault in {}", dir.display()))
}

pub(crate) fn open(ctx: &Ctx) -> Result<Vault> {
    open_with(config(ctx))
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

fn warn_skipped(vault: &Vault) {
    if let Ok(stats) = vault.stats() {
        for (file, reason) in &stats.last_sync.skipped {
            eprintln!("kite: warning: skipped note file {file}: {reason}");
        }
    }
}

/// Runs a `kite vault` subcommand (index at `home/vault-index.db`); the global `--json` or the
/// subcommand's asks for JSON.
pub(crate) fn run_with(cmd: VaultCmd, ctx: &Ctx) -> Result<()> {
    let json = ctx.json || cmd.json();
    let mut vault = match &cmd {
        // reindex rebuilds anyway: skip the sync on open.
        VaultCmd::Reindex { .. } => {
            let mut config = config(ctx);
            config.sync_on_open = false;
            open_with(config)?
        }
        _ => open(ctx)?,
    };
    if !json {
        warn_skipped(&vault);
    }
    let mut out = std::io::stdout().lock();
    match cmd {
        VaultCmd::Add { title, kind, tags, body, project, source, .. } => {
            let body = match body {
                Some(b) => b,
                None if !std::io::stdin().is_terminal() => {
                    let mut s = String::new();
                    std::io::stdin().read_to_string(&mut s).context("cannot read the note body from standard input")?;
                    s
                }
                None => String::new(),
            };
            let outcome = vault.add(NewNote { kind: Kind::parse(&kind), title, tags, project, source, body })?;
            if json {
                return print_json(&outcome);
            }
            if outcome.created {
                writeln!(out, "added {}", outcome.id)?;
            } else {
                writeln!(out, "unchanged {} (the same note is already there)", outcome.id)?;
            }
            for s in &outcome.superseded {
                writeln!(out, "supersedes {} {:?} (similarity {:.2})", s.id, s.title, s.similarity)?;
            }
            if !outcome.embedded {
                writeln!(out, "note: no embedding model, so the note is found by keywords only until `kite vault reindex` runs with one")?;
            }
        }
        VaultCmd::Search { query, k, mode, all, recent, .. } => {
            let opts = SearchOptions { k, mode, include_superseded: all, recency_half_life_days: recent, ..SearchOptions::default() };
            let results = vault.search(&query.join(" "), &opts)?;
            if json {
                return print_json(&results);
            }
            print_results(&mut out, &results)?;
        }
        VaultCmd::Show { id, .. } => {
            let note = vault.show(&id)?;
            if json {
                return print_json(&note);
            }
            write!(out, "{}", note.to_markdown())?;
        }
        VaultCmd::Reindex { .. } => {
            let report = vault.reindex()?;
            if json {
                return print_json(&report);
            }
            writeln!(
                out,
                "indexed {} notes ({} without vectors), skipped {} files",
                report.added + report.updated,
                report.without_vector,
                report.skipped.len()
            )?;
            for (file, reason) in &report.skipped {
                eprintln!("kite: warning: skipped note file {file}: {reason}");
            }
        }
        VaultCmd::Stats { .. } => {
            let stats = vault.stats()?;
            if json {
                return print_json(&stats);
            }
            writeln!(out, "vault       {}", stats.dir.display())?;
            writeln!(out, "index       {} ({} KiB)", stats.index_path.display(), stats.index.index_bytes / 1024)?;
            writeln!(out, "notes       {} ({} superseded, {} with vectors, {} files)", stats.index.notes, stats.index.superseded, stats.index.with_vector, stats.files)?;
            let kinds: Vec<String> = stats.index.by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
            writeln!(out, "kinds       {}", if kinds.is_empty() { "-".to_string() } else { kinds.join(", ") })?;
            writeln!(out, "model       {}", stats.model)?;
        }
        VaultCmd::Extract { transcript, command, prompt, dry_run, .. } => {
            let extractor: Box<dyn Extractor> = match command {
                Some(c) => {
                    let mut e = CommandExtractor::new(c);
                    if let Some(p) = prompt {
                        e.template = std::fs::read_to_string(&p).with_context(|| format!("cannot read prompt template {}", p.display()))?;
                    }
                    Box::new(e)
                }
                None => Box::new(BuiltinExtractor::default()),
            };
            let report = vault.extract(&transcript, extractor.as_ref(), dry_run)?;
            if json {
                return print_json(&report);
            }
            if report.bad_lines > 0 {
                eprintln!("kite: warning: skipped {} malformed line(s) in {}", report.bad_lines, transcript.display());
            }
            for why in &report.skipped {
                eprintln!("kite: warning: a proposed note was set aside: {why}");
            }
            if dry_run {
                writeln!(out, "{} note(s) proposed from {} (dry run, nothing written):", report.proposed.len(), report.source)?;
                for n in &report.proposed {
                    writeln!(out, "  [{}] {}", n.kind, n.title)?;
                }
            } else {
                writeln!(out, "{} note(s) from {}:", report.added.len(), report.source)?;
                for (n, a) in report.proposed.iter().zip(&report.added) {
                    let what = if a.created { "added" } else { "unchanged" };
                    writeln!(out, "  {what} {} [{}] {}", a.id, n.kind, n.title)?;
                    for s in &a.superseded {
                        writeln!(out, "    supersedes {} (similarity {:.2})", s.id, s.similarity)?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn print_results(out: &mut impl Write, results: &SearchResults) -> Result<()> {
    if let Some(w) = &results.warning {
        eprintln!("kite: warning: {w}");
    }
    if results.hits.is_empty() {
        writeln!(out, "no matching notes")?;
        return Ok(());
    }
    for h in &results.hits {
        let mut parts = vec![];
        if let Some(s) = h.similarity {
            parts.push(format!("cos {s:.2}"));
        }
        if let Some(r) = h.keyword_rank {
            parts.push(format!("kw #{r}"));
        }
        if let Some(by) = &h.superseded_by {
            parts.push(format!("superseded by {by}"));
        }
        writeln!(out, "{:.4}  {:<11} {}  {}  ({})", h.score, h.kind, h.id, h.title, parts.join(", "))?;
    }
    Ok(())
}
