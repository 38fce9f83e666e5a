//! `kite vault ...`: the memory vault from the command line (CLI.md, Memory). Works on the files
//! and the index directly; it does not need the daemon.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use super::Ctx;
use anyhow::{Context, Result};
use kite_memory::search::{SearchMode, SearchResults};
use kite_memory::{
    BuiltinExtractor, CommandExtractor, Extractor, Kind, NewNote, SearchOptions, Vault, VaultConfig,
};

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
    /// List notes, newest first.
    List {
        /// Only notes of this kind (decision, status, preference, ...).
        #[arg(long)]
        kind: Option<String>,
        /// Also the superseded and forgotten ones.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Edit a note in $VISUAL or $EDITOR; it is checked and re-indexed on save.
    Edit { id: String },
    /// Retire a note: its file stays (marked forgotten), and it is never injected or recalled again.
    Forget {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Pin a note: it is injected into every session (`--off`: unpin it).
    Pin {
        id: String,
        #[arg(long)]
        off: bool,
    },
    /// A note's lineage: what it superseded, and what superseded it.
    History {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// What a session would be given from the vault now, and why each note.
    Inject {
        /// The task's title and body, as a session spawned for it would be asked about.
        #[arg(long)]
        task: Option<String>,
        /// A prompt, as the UserPromptSubmit hook would see it.
        #[arg(long)]
        prompt: Option<String>,
        /// Leave out the notes matching the recent work in this repository (branch, changed files, commits).
        #[arg(long)]
        no_work: bool,
        /// Leave out the pinned notes.
        #[arg(long)]
        no_pinned: bool,
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
        /// Give the notes to the daemon (the team's, for a session working for one) instead of
        /// writing them into this clone's vault: what a remote session's SessionEnd hook runs.
        #[arg(long, conflicts_with = "dry_run")]
        send: bool,
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
            | VaultCmd::Extract { json, .. }
            | VaultCmd::List { json, .. }
            | VaultCmd::Forget { json, .. }
            | VaultCmd::History { json, .. }
            | VaultCmd::Inject { json, .. } => *json,
            VaultCmd::Edit { .. } | VaultCmd::Pin { .. } => false,
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
    if let VaultCmd::Extract { transcript, command, prompt, send: true, .. } = &cmd {
        return extract_and_send(ctx, json, transcript, command.clone(), prompt.clone());
    }
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
        VaultCmd::Add {
            title,
            kind,
            tags,
            body,
            project,
            source,
            ..
        } => {
            return add(
                &mut vault,
                &mut out,
                json,
                NewNote {
                    kind: Kind::parse(&kind),
                    title,
                    tags,
                    project,
                    source,
                    body: body_or_stdin(body)?,
                },
            );
        }
        VaultCmd::Search {
            query,
            k,
            mode,
            all,
            recent,
            ..
        } => {
            let opts = SearchOptions {
                k,
                mode,
                include_superseded: all,
                recency_half_life_days: recent,
                ..SearchOptions::default()
            };
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
            writeln!(
                out,
                "index       {} ({} KiB)",
                stats.index_path.display(),
                stats.index.index_bytes / 1024
            )?;
            writeln!(
                out,
                "notes       {} ({} superseded, {} with vectors, {} files)",
                stats.index.notes, stats.index.superseded, stats.index.with_vector, stats.files
            )?;
            let kinds: Vec<String> = stats
                .index
                .by_kind
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            writeln!(
                out,
                "kinds       {}",
                if kinds.is_empty() {
                    "-".to_string()
                } else {
                    kinds.join(", ")
                }
            )?;
            writeln!(out, "model       {}", stats.model)?;
        }
        VaultCmd::List { kind, all, .. } => return list(&vault, &mut out, json, kind, all),
        VaultCmd::Edit { id } => return edit(ctx, &mut vault, &id),
        VaultCmd::Forget { id, .. } => {
            let note = vault.forget(&id)?;
            if json {
                return print_json(&note);
            }
            writeln!(
                out,
                "forgot {} {:?}: kept in {}, never injected or recalled again",
                note.id,
                note.title,
                vault.note_path(&note.id)?.display()
            )?;
        }
        VaultCmd::Pin { id, off } => {
            let changed = vault.pin(&id, !off)?;
            let what = if off { "unpinned" } else { "pinned" };
            if changed {
                writeln!(out, "{what} {}", id.trim().trim_end_matches(".md"))?;
            } else {
                writeln!(out, "already {what}: {}", id.trim().trim_end_matches(".md"))?;
            }
        }
        VaultCmd::History { id, .. } => return history(&vault, &mut out, json, &id),
        VaultCmd::Inject {
            task,
            prompt,
            no_work,
            no_pinned,
            ..
        } => {
            drop(vault);
            return show_injection(ctx, &mut out, json, task, prompt, no_work, no_pinned);
        }
        VaultCmd::Extract {
            transcript,
            command,
            prompt,
            dry_run,
            ..
        } => {
            return extract(
                &mut vault,
                &mut out,
                json,
                &transcript,
                command,
                prompt,
                dry_run,
            );
        }
    }
    Ok(())
}

/// The note body given, else standard input when it is not a terminal.
fn body_or_stdin(body: Option<String>) -> Result<String> {
    Ok(match body {
        Some(b) => b,
        None if !std::io::stdin().is_terminal() => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("cannot read the note body from standard input")?;
            s
        }
        None => String::new(),
    })
}

/// `kite vault add`.
fn add(vault: &mut Vault, out: &mut impl Write, json: bool, note: NewNote) -> Result<()> {
    let outcome = vault.add(note)?;
    if json {
        return print_json(&outcome);
    }
    if outcome.created {
        writeln!(out, "added {}", outcome.id)?;
    } else {
        writeln!(
            out,
            "unchanged {} (the same note is already there)",
            outcome.id
        )?;
    }
    for s in &outcome.superseded {
        writeln!(
            out,
            "supersedes {} {:?} (similarity {:.2})",
            s.id, s.title, s.similarity
        )?;
    }
    if !outcome.embedded {
        writeln!(out, "note: no embedding model, so the note is found by keywords only until `kite vault reindex` runs with one")?;
    }
    Ok(())
}

/// `kite vault list`.
fn list(
    vault: &Vault,
    out: &mut impl Write,
    json: bool,
    kind: Option<String>,
    all: bool,
) -> Result<()> {
    let notes = vault.list(kind.as_deref(), all)?;
    if json {
        return print_json(&notes);
    }
    if notes.is_empty() {
        writeln!(
            out,
            "no notes{}",
            kind.map(|k| format!(" of kind {k}")).unwrap_or_default()
        )?;
    }
    for n in &notes {
        let mut marks = vec![];
        if n.pinned {
            marks.push("pinned".to_string());
        }
        if n.forgotten {
            marks.push("forgotten".to_string());
        }
        if let Some(by) = &n.superseded_by {
            marks.push(format!("superseded by {by}"));
        }
        let marks = if marks.is_empty() {
            String::new()
        } else {
            format!("  ({})", marks.join(", "))
        };
        writeln!(
            out,
            "{}  {:<11} {}  {}{marks}",
            n.updated.get(..10).unwrap_or(&n.updated),
            n.kind,
            n.id,
            n.title
        )?;
    }
    Ok(())
}

/// `kite vault history`: the note's chain of versions, this one starred.
fn history(vault: &Vault, out: &mut impl Write, json: bool, id: &str) -> Result<()> {
    let chain = vault.history(id)?;
    if json {
        return print_json(&chain);
    }
    for n in &chain {
        let here = if n.id == id.trim().trim_end_matches(".md") {
            "*"
        } else {
            " "
        };
        let state = match (&n.superseded_by, n.forgotten()) {
            (_, Some(when)) => format!("forgotten {when}"),
            (Some(by), None) => format!("superseded by {by}"),
            (None, None) => "active".to_string(),
        };
        writeln!(
            out,
            "{here} {}  {}  {}  ({state})",
            n.created.format("%Y-%m-%d"),
            n.id,
            n.title
        )?;
    }
    Ok(())
}

/// `kite vault inject`: what a session would be given, and why.
fn show_injection(
    ctx: &Ctx,
    out: &mut impl Write,
    json: bool,
    task: Option<String>,
    prompt: Option<String>,
    no_work: bool,
    no_pinned: bool,
) -> Result<()> {
    let ask = kite_proto::ops::MemoryInject {
        pinned: !no_pinned,
        task,
        prompt,
        work: if no_work {
            None
        } else {
            kite_memory::work::GitFacts::start(&ctx.places.root)
                .finish()
                .1
        },
        min_similarity: Some(ctx.config.hooks.min_similarity),
        status_days: Some(ctx.config.hooks.status_days),
        status_similarity: Some(ctx.config.hooks.status_min_similarity),
        ..Default::default()
    };
    let got = inject(ctx, ask)?;
    if json {
        return print_json(&got);
    }
    if let Some(w) = &got.warning {
        eprintln!("kite: warning: {w}");
    }
    if got.notes.is_empty() {
        writeln!(out, "nothing would be injected")?;
    }
    for n in &got.notes {
        let sim = n
            .similarity
            .map(|s| format!(", cos {s:.2}"))
            .unwrap_or_default();
        writeln!(
            out,
            "{:<24} {:<11} {}  {}",
            format!("{}{sim}", kite_memory::Reason::describe_name(&n.reason)),
            n.kind,
            n.id,
            n.title
        )?;
    }
    Ok(())
}

/// Extracts notes from a transcript on this machine and gives them to the daemon.
///
/// For a session working for a team's daemon on another machine: its transcript stays here (it
/// holds the session's whole conversation and tool output), and only the notes leave, redacted
/// and capped by the same preparation as every extraction (`kite_memory::extract::prepare`), so
/// they join the team's vault and are recalled by everyone's sessions.
fn extract_and_send(ctx: &Ctx, json: bool, transcript: &Path, command: Option<String>, prompt: Option<PathBuf>) -> Result<()> {
    let extractor = extractor(command, prompt)?;
    let t = kite_memory::Transcript::read(transcript).with_context(|| format!("cannot read {}", transcript.display()))?;
    let name = transcript.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let source = format!("transcript:{}", t.session_id.clone().unwrap_or(name));
    let (notes, skipped) = kite_memory::extract::prepare(extractor.extract(&t, &source)?, &source);
    let client = super::memory_client(ctx, kite_daemon::memory_client::PATIENT, kite_daemon::memory_client::Fallback::Nothing);
    let mut added = Vec::new();
    for n in notes {
        let add = kite_proto::ops::MemoryAdd { title: n.title, body: n.body, kind: Some(n.kind.to_string()), tags: n.tags, source: n.source };
        added.push(client.add(add).map_err(|e| {
            anyhow::anyhow!("the daemon did not take the note: {e} (is it running, and are KITE_URL, KITE_TOKEN and KITE_CERT_SHA256 the ones `kite token create` printed?)")
        })?);
    }
    if json {
        return print_json(&serde_json::json!({"source": source, "sent": added, "skipped": skipped}));
    }
    println!("{} note(s) from {} given to the daemon", added.len(), source);
    Ok(())
}

fn extractor(command: Option<String>, prompt: Option<PathBuf>) -> Result<Box<dyn Extractor>> {
    Ok(match command {
        Some(c) => {
            let mut e = CommandExtractor::new(c);
            if let Some(p) = prompt {
                e.template = std::fs::read_to_string(&p).with_context(|| format!("cannot read prompt template {}", p.display()))?;
            }
            Box::new(e)
        }
        None => Box::new(BuiltinExtractor::default()),
    })
}

/// `kite vault extract`: notes from a transcript, with the built-in extractor or a command.
fn extract(
    vault: &mut Vault,
    out: &mut impl Write,
    json: bool,
    transcript: &Path,
    command: Option<String>,
    prompt: Option<PathBuf>,
    dry_run: bool,
) -> Result<()> {
    let extractor = extractor(command, prompt)?;
    let report = vault.extract(transcript, extractor.as_ref(), dry_run)?;
    if json {
        return print_json(&report);
    }
    if report.bad_lines > 0 {
        eprintln!(
            "kite: warning: skipped {} malformed line(s) in {}",
            report.bad_lines,
            transcript.display()
        );
    }
    for why in &report.skipped {
        eprintln!("kite: warning: a proposed note was set aside: {why}");
    }
    if dry_run {
        writeln!(
            out,
            "{} note(s) proposed from {} (dry run, nothing written):",
            report.proposed.len(),
            report.source
        )?;
        for n in &report.proposed {
            writeln!(out, "  [{}] {}", n.kind, n.title)?;
        }
    } else {
        writeln!(
            out,
            "{} note(s) from {}:",
            report.added.len(),
            report.source
        )?;
        for (n, a) in report.proposed.iter().zip(&report.added) {
            let what = if a.created { "added" } else { "unchanged" };
            writeln!(out, "  {what} {} [{}] {}", a.id, n.kind, n.title)?;
            for s in &a.superseded {
                writeln!(
                    out,
                    "    supersedes {} (similarity {:.2})",
                    s.id, s.similarity
                )?;
            }
        }
    }
    Ok(())
}

/// Asks the daemon's warm vault for an injection (a person at the CLI can wait); with no daemon
/// listening, runs the same policy in process.
fn inject(ctx: &Ctx, ask: kite_proto::ops::MemoryInject) -> Result<kite_proto::ops::Injection> {
    let c = super::memory_client(
        ctx,
        kite_daemon::memory_client::PATIENT,
        kite_daemon::memory_client::Fallback::InProcess,
    );
    Ok(c.inject(ask)?)
}

/// `kite vault edit`: the note is edited in a copy; a copy that no longer parses is kept, and the
/// note is left as it was.
fn edit(ctx: &Ctx, vault: &mut Vault, id: &str) -> Result<()> {
    let path = vault.note_path(id)?;
    let before = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let original = kite_memory::Note::parse(&before, &path)?;
    let copy = ctx.places.home.join(format!("edit-{}.md", original.id));
    std::fs::create_dir_all(&ctx.places.home)?;
    std::fs::write(&copy, &before).with_context(|| format!("cannot write {}", copy.display()))?;
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".to_string());
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&copy)
        .status()
        .with_context(|| format!("cannot run the editor {editor:?} (set VISUAL or EDITOR)"))?;
    if !status.success() {
        anyhow::bail!("the editor {editor:?} exited with {status}; the note was not changed (your copy is {})", copy.display());
    }
    let after = std::fs::read_to_string(&copy)
        .with_context(|| format!("cannot read {}", copy.display()))?;
    if after == before {
        let _ = std::fs::remove_file(&copy);
        println!("unchanged {}", original.id);
        return Ok(());
    }
    let mut edited = match kite_memory::Note::parse(&after, &path) {
        Ok(n) => n,
        Err(e) => anyhow::bail!("{e}; the note was not changed, and your edit is kept in {} (fix it and copy it over {})", copy.display(), path.display()),
    };
    if edited.id != original.id {
        anyhow::bail!(
            "the id cannot change in an edit ({} became {}); the note was not changed, and your edit is kept in {}",
            original.id,
            edited.id,
            copy.display()
        );
    }
    if (&edited.title, &edited.body, &edited.kind, &edited.tags)
        != (
            &original.title,
            &original.body,
            &original.kind,
            &original.tags,
        )
    {
        edited.mark_updated();
    }
    kite_memory::note::atomic_write(&path, edited.to_markdown().as_bytes())?;
    let _ = std::fs::remove_file(&copy);
    vault.sync()?;
    println!("saved {} (re-indexed)", edited.id);
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
        writeln!(
            out,
            "{:.4}  {:<11} {}  {}  ({})",
            h.score,
            h.kind,
            h.id,
            h.title,
            parts.join(", ")
        )?;
    }
    Ok(())
}
