//! The vault facade: note files in a directory plus the derived index, behind the handful of
//! operations the CLI, the daemon and the hooks need.
//!
//! Order of writes is chosen so that a crash at any point loses nothing: the note file is written
//! first (atomically), then the files it supersedes, then the index; the next sync repairs an
//! index that missed any of it. The embedding model is loaded only when something has to be
//! embedded, and its absence degrades search to keywords instead of failing.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::embed::{EmbedConfig, Embedder};
use crate::error::{MemoryError, Result};
use crate::extract::Extractor;
use crate::index::{content_hash, Index, IndexStats, SyncReport};
use crate::inject::{Ask, Injection, Match, PinCandidate, Reason};
use crate::note::{clean_title, make_id, NewNote, Note};
use crate::redact::redact;
use crate::search::{fuse, SearchMode, SearchOptions, SearchResults};
use crate::transcript::Transcript;

/// Default cosine similarity above which a new note supersedes an existing one. Measured on
/// all-mpnet-base-v2 (int8): a close rewording of one statement 0.87 ("the queue is stored in
/// SQLite with WAL" / "we keep the queue in a SQLite database in WAL mode"); different statements
/// on the same subject at 0.8 and below ("use SQLite for the queue" / "use PostgreSQL for the
/// queue": 0.797, the closest pair measured). A reversed statement ("deploys are (not) allowed on Fridays": 0.93) also supersedes,
/// which is what a changed decision should do. (all-MiniLM-L6-v2 put these at 0.91, 0.66 and
/// 0.97, with a bar of 0.9.)
pub const DEFAULT_DUPLICATE_THRESHOLD: f32 = 0.85;

/// How to open a vault.
#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// The directory of note files (the truth).
    pub dir: PathBuf,
    /// The SQLite index file (derived).
    pub index_path: PathBuf,
    /// Model directory; `None` means `KITE_MODEL_DIR`.
    pub model_dir: Option<PathBuf>,
    /// ONNX runtime library; `None` means `KITE_ORT_DYLIB`, `ORT_DYLIB_PATH`, then
    /// `<model_dir>/../libonnxruntime.so`.
    pub ort_dylib: Option<PathBuf>,
    /// Why no model directory was given (where the caller looked), for messages.
    pub model_missing: Option<String>,
    /// An embedder already loaded (shared by a daemon's vaults, or by tests).
    pub embedder: Option<Embedder>,
    /// Set false to never load a model (keyword search only).
    pub use_model: bool,
    /// Cosine similarity at which a new note supersedes an existing one.
    pub duplicate_threshold: f32,
    /// Pick up hand edits when opening.
    pub sync_on_open: bool,
}

impl VaultConfig {
    pub fn new(dir: impl Into<PathBuf>, index_path: impl Into<PathBuf>) -> VaultConfig {
        VaultConfig {
            dir: dir.into(),
            index_path: index_path.into(),
            model_dir: None,
            ort_dylib: None,
            model_missing: None,
            embedder: None,
            use_model: true,
            duplicate_threshold: DEFAULT_DUPLICATE_THRESHOLD,
            sync_on_open: true,
        }
    }
}

/// A note that was superseded by an add.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Superseded {
    pub id: String,
    pub title: String,
    pub similarity: f32,
}

/// What `add` did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AddOutcome {
    pub id: String,
    pub path: PathBuf,
    /// False when the same note (same title and body) was already there: nothing was written.
    pub created: bool,
    /// Notes this one supersedes (near-duplicates), with their similarity.
    pub superseded: Vec<Superseded>,
    /// Whether the note has a vector (false without a model).
    pub embedded: bool,
}

/// What `extract` did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExtractReport {
    pub transcript: PathBuf,
    pub source: String,
    pub extractor: String,
    pub events: usize,
    pub bad_lines: usize,
    /// Notes proposed by the extractor (after redaction).
    pub proposed: Vec<NewNote>,
    /// One per written note (empty on a dry run).
    pub added: Vec<AddOutcome>,
    /// Proposals that were not valid notes, with why (nothing else was lost for them).
    pub skipped: Vec<String>,
}

/// Numbers for `kite vault stats`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub dir: PathBuf,
    pub index_path: PathBuf,
    #[serde(flatten)]
    pub index: IndexStats,
    pub files: usize,
    /// "loaded", "available" or why it is not.
    pub model: String,
    pub last_sync: SyncReport,
}

enum Model {
    NotLoaded,
    Loaded(Embedder),
    Missing(String),
}

/// The memory vault.
pub struct Vault {
    config: VaultConfig,
    index: Index,
    model: Model,
    last_sync: SyncReport,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("dir", &self.config.dir)
            .field("index", &self.config.index_path)
            .finish()
    }
}

impl Vault {
    /// Opens the vault (creating the directory and index if needed) and, unless disabled, syncs
    /// the index with the files.
    pub fn open(mut config: VaultConfig) -> Result<Vault> {
        std::fs::create_dir_all(&config.dir)
            .map_err(|e| MemoryError::io("creating vault directory", &config.dir, e))?;
        let index = Index::open(&config.index_path)?;
        let model = match config.embedder.take() {
            Some(e) => Model::Loaded(e),
            None if !config.use_model => Model::Missing("disabled by configuration".into()),
            None => Model::NotLoaded,
        };
        let mut vault = Vault {
            config,
            index,
            model,
            last_sync: SyncReport::default(),
        };
        if vault.config.sync_on_open {
            vault.sync()?;
        }
        Ok(vault)
    }

    /// The vault directory.
    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    /// The index (for benchmarks and advanced callers).
    pub fn index_mut(&mut self) -> &mut Index {
        &mut self.index
    }

    /// The embedder, loading it on first use. The error says how to get a model.
    pub fn embedder(&mut self) -> Result<Embedder> {
        if let Model::NotLoaded = self.model {
            self.model = match EmbedConfig::resolve(
                self.config.model_dir.as_deref(),
                self.config.ort_dylib.as_deref(),
            ) {
                None => Model::Missing(
                    self.config
                        .model_missing
                        .clone()
                        .unwrap_or_else(|| "no model found".into()),
                ),
                Some(cfg) => match Embedder::load(&cfg) {
                    // Another model's vectors are never stored beside this index's.
                    Ok(e) if e.dim() != crate::embed::DIM => Model::Missing(format!(
                        "the model in {} makes {}-dimensional vectors; kite's index holds {} ({}): run `make setup` or `make install` in kite's checkout",
                        cfg.model_dir.display(),
                        e.dim(),
                        crate::embed::DIM,
                        crate::embed::MODEL_NAME
                    )),
                    Ok(e) => Model::Loaded(e),
                    Err(MemoryError::ModelMissing { reason }) => Model::Missing(reason),
                    Err(e) => Model::Missing(e.to_string()),
                },
            };
            if let Model::Missing(reason) = &self.model {
                tracing::warn!(%reason, "embedding model not available; keyword search only");
            }
        }
        match &self.model {
            Model::Loaded(e) => Ok(e.clone()),
            Model::Missing(reason) => Err(MemoryError::ModelMissing {
                reason: reason.clone(),
            }),
            Model::NotLoaded => Err(MemoryError::ModelMissing {
                reason: "not loaded".into(),
            }),
        }
    }

    fn embedder_opt(&mut self) -> Option<Embedder> {
        self.embedder().ok()
    }

    /// Picks up files added, edited or deleted by hand (by content hash).
    pub fn sync(&mut self) -> Result<SyncReport> {
        let plan = self.index.plan_sync(&self.config.dir)?;
        let embedder = if plan.needs_embedder() {
            self.embedder_opt()
        } else {
            None
        };
        let report = self.index.apply_sync(plan, embedder.as_ref())?;
        self.last_sync = report.clone();
        Ok(report)
    }

    /// Rebuilds the index from the files.
    pub fn reindex(&mut self) -> Result<SyncReport> {
        let embedder = self.embedder_opt();
        let report = self.index.reindex(&self.config.dir, embedder.as_ref())?;
        self.last_sync = report.clone();
        Ok(report)
    }

    /// Adds a note. Secrets are redacted first. If an active note says nearly the same
    /// (cosine >= the threshold), the new note supersedes it: the old file stays, marked
    /// `superseded_by`, and drops out of default searches.
    pub fn add(&mut self, new: NewNote) -> Result<AddOutcome> {
        new.validate()?;
        let now = Utc::now();
        let mut new = new;
        new.title = redact(&clean_title(&new.title)).into_owned();
        new.body = redact(new.body.trim()).into_owned();
        let mut tags: Vec<String> = vec![];
        for t in &new.tags {
            let t = redact(t.trim()).into_owned();
            if !t.is_empty() && !tags.contains(&t) {
                tags.push(t);
            }
        }
        new.tags = tags;
        new.project = new.project.map(|p| redact(&p).into_owned());
        new.source = new.source.map(|s| redact(&s).into_owned());
        // Every field, the kind too: it lands in the front matter and the index.
        if let crate::note::Kind::Other(k) = &new.kind {
            let k = redact(k);
            if let std::borrow::Cow::Owned(k) = k {
                new.kind = crate::note::Kind::Other(k);
            }
        }

        let text = crate::note::embed_text(&new.title, &new.body);
        let vector = match self.embedder() {
            Ok(e) => Some(e.embed_one(&text)?),
            Err(MemoryError::ModelMissing { .. }) => None,
            Err(e) => return Err(e),
        };

        // Near-duplicates among the active notes.
        let mut superseded: Vec<(Note, String, f32)> = vec![];
        if let Some(v) = &vector {
            for (hit, sim) in self.index.vector_search(v, 5, false)? {
                if sim < self.config.duplicate_threshold {
                    continue;
                }
                let path = self.config.dir.join(&hit.path);
                let old = match Note::read(&path) {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(file = %path.display(), error = %e, "near-duplicate note is unreadable; leaving it alone");
                        continue;
                    }
                };
                if old.title == new.title && old.body == new.body && old.kind == new.kind {
                    return Ok(AddOutcome {
                        id: old.id,
                        path,
                        created: false,
                        superseded: vec![],
                        embedded: true,
                    });
                }
                superseded.push((old, hit.path, sim));
            }
        }

        let id = self.unique_id(&make_id(&new.title, now))?;
        let note = Note {
            id: id.clone(),
            kind: new.kind,
            title: new.title,
            tags: new.tags,
            project: new.project,
            source: new.source,
            created: now,
            updated: now,
            supersedes: superseded.iter().map(|(n, ..)| n.id.clone()).collect(),
            superseded_by: None,
            body: new.body,
            extra: vec![],
        };
        let path = note.write_to(&self.config.dir)?;
        let rel = note.file_name();
        let hash = content_hash(note.to_markdown().as_bytes());
        self.index.upsert(&note, &rel, &hash, vector.as_deref())?;
        let mut report = vec![];
        for (mut old, old_rel, sim) in superseded {
            old.superseded_by = Some(id.clone());
            old.updated = now;
            let old_path = self.config.dir.join(&old_rel);
            crate::note::atomic_write(&old_path, old.to_markdown().as_bytes())?;
            let old_hash = content_hash(old.to_markdown().as_bytes());
            let old_vector = self.index.vector_of(&old.id)?;
            self.index
                .upsert(&old, &old_rel, &old_hash, old_vector.as_deref())?;
            tracing::info!(new = %id, old = %old.id, similarity = sim, "new note supersedes a near-duplicate");
            report.push(Superseded {
                id: old.id,
                title: old.title,
                similarity: sim,
            });
        }
        Ok(AddOutcome {
            id,
            path,
            created: true,
            superseded: report,
            embedded: vector.is_some(),
        })
    }

    fn unique_id(&self, base: &str) -> Result<String> {
        let mut id = base.to_string();
        let mut n = 2;
        while self.config.dir.join(format!("{id}.md")).exists() || self.index.get(&id)?.is_some() {
            id = format!("{base}-{n}");
            n += 1;
        }
        Ok(id)
    }

    /// Searches the vault. An empty query is an error. Without a model, hybrid and vector
    /// searches fall back to keywords (the results say so).
    pub fn search(&mut self, query: &str, opts: &SearchOptions) -> Result<SearchResults> {
        Ok(self.search_embedded(query, opts)?.0)
    }

    /// [`Vault::search`], with the query's vector (none when searching by keywords only).
    fn search_embedded(
        &mut self,
        query: &str,
        opts: &SearchOptions,
    ) -> Result<(SearchResults, Option<Vec<f32>>)> {
        let query = query.trim();
        if query.is_empty() || !query.chars().any(char::is_alphanumeric) {
            return Err(MemoryError::EmptyQuery);
        }
        for (what, n) in [("k", opts.k), ("depth", opts.depth)] {
            if n == 0 || n > crate::search::MAX_K {
                return Err(MemoryError::Invalid(format!(
                    "{what} must be between 1 and {} (got {n})",
                    crate::search::MAX_K
                )));
            }
        }
        let depth = opts.depth.max(opts.k);
        let mut mode = opts.mode;
        let mut warning = None;
        let mut vector = vec![];
        let mut qvec = None;
        if mode != SearchMode::Keyword {
            match self.embedder() {
                Ok(e) => {
                    let q = e.embed_one(query)?;
                    vector = self
                        .index
                        .vector_search(&q, depth, opts.include_superseded)?;
                    qvec = Some(q);
                }
                Err(MemoryError::ModelMissing { reason }) => {
                    warning = Some(format!("embedding model not available ({reason}); keyword search only. Install it with `make install` in kite's checkout, or run `kite doctor`."));
                    mode = SearchMode::Keyword;
                }
                Err(e) => return Err(e),
            }
        }
        let keyword = if mode != SearchMode::Vector {
            self.index
                .keyword_search(query, depth, opts.include_superseded)?
        } else {
            vec![]
        };
        let hits = fuse(&vector, &keyword, opts, Utc::now());
        Ok((
            SearchResults {
                hits,
                mode,
                warning,
            },
            qvec,
        ))
    }

    /// Vector search with a query vector already embedded (benchmarks, callers with a cache).
    pub fn search_vector(
        &mut self,
        q: &[f32],
        k: usize,
    ) -> Result<Vec<(crate::index::IndexedNote, f32)>> {
        self.index.vector_search(q, k, false)
    }

    /// Reads a note from its file (the truth).
    pub fn show(&self, id: &str) -> Result<Note> {
        let id = id.trim().trim_end_matches(".md");
        if !crate::note::valid_id(id) {
            return Err(MemoryError::NotFound(id.to_string()));
        }
        let path = match self.index.get(id)? {
            Some(n) => self.config.dir.join(n.path),
            None => self.config.dir.join(format!("{id}.md")),
        };
        if !path.exists() {
            return Err(MemoryError::NotFound(id.to_string()));
        }
        Note::read(&path)
    }

    /// Numbers about the vault.
    pub fn stats(&self) -> Result<Stats> {
        let model = match &self.model {
            Model::Loaded(_) => "loaded".to_string(),
            Model::Missing(r) => format!("missing: {r}"),
            Model::NotLoaded => match EmbedConfig::resolve(
                self.config.model_dir.as_deref(),
                self.config.ort_dylib.as_deref(),
            ) {
                Some(c) if c.model_dir.join("model.onnx").is_file() && c.ort_dylib.is_file() => {
                    format!("available ({})", c.model_dir.display())
                }
                Some(c) => format!(
                    "missing: no model.onnx in {} or no runtime at {}",
                    c.model_dir.display(),
                    c.ort_dylib.display()
                ),
                None => format!(
                    "missing: {}",
                    self.config
                        .model_missing
                        .as_deref()
                        .unwrap_or("no model found")
                ),
            },
        };
        Ok(Stats {
            dir: self.config.dir.clone(),
            index_path: self.config.index_path.clone(),
            index: self.index.stats()?,
            files: crate::index::note_files(&self.config.dir)?.len(),
            model,
            last_sync: self.last_sync.clone(),
        })
    }

    /// Extracts notes from a transcript and adds them (unless `dry_run`); see
    /// [`crate::extract::prepare`] for what happens to the proposals on the way.
    pub fn extract(
        &mut self,
        transcript: &Path,
        extractor: &dyn Extractor,
        dry_run: bool,
    ) -> Result<ExtractReport> {
        let t = Transcript::read(transcript)?;
        let name = transcript
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let source = format!("transcript:{}", t.session_id.clone().unwrap_or(name));
        let (proposed, skipped) = crate::extract::prepare(extractor.extract(&t, &source)?, &source);
        let mut added = vec![];
        if !dry_run {
            for n in &proposed {
                added.push(self.add(n.clone())?);
            }
        }
        Ok(ExtractReport {
            transcript: transcript.to_path_buf(),
            source,
            extractor: extractor.name().to_string(),
            events: t.events.len(),
            bad_lines: t.bad_lines.len(),
            proposed,
            added,
            skipped,
        })
    }

    /// The most relevant active notes for a new session (for the SessionStart hook).
    pub fn recall(&mut self, query: &str, k: usize) -> Result<SearchResults> {
        let opts = SearchOptions {
            k,
            recency_half_life_days: Some(30.0),
            ..SearchOptions::default()
        };
        self.search(query, &opts)
    }

    /// The indexed notes, newest first: of one kind when `kind` is given, and without the
    /// superseded and forgotten ones unless `all`.
    pub fn list(&self, kind: Option<&str>, all: bool) -> Result<Vec<crate::index::IndexedNote>> {
        let kind = kind.map(|k| crate::note::Kind::parse(k).as_str().to_string());
        let mut notes: Vec<_> = self
            .index
            .all()?
            .into_iter()
            .filter(|n| all || n.is_active())
            .filter(|n| kind.as_deref().is_none_or(|k| n.kind == k))
            .collect();
        notes.sort_by(|a, b| b.updated.cmp(&a.updated).then(a.id.cmp(&b.id)));
        Ok(notes)
    }

    /// The file a note lives in.
    pub fn note_path(&self, id: &str) -> Result<PathBuf> {
        let id = id.trim().trim_end_matches(".md");
        match self.index.get(id)? {
            Some(n) => Ok(self.config.dir.join(n.path)),
            None if crate::note::valid_id(id)
                && self.config.dir.join(format!("{id}.md")).is_file() =>
            {
                Ok(self.config.dir.join(format!("{id}.md")))
            }
            None => Err(MemoryError::NotFound(id.to_string())),
        }
    }

    /// Retires a note: its file stays, marked `forgotten:` with the time, and it is never
    /// recalled or injected again. Forgetting a forgotten note changes nothing.
    pub fn forget(&mut self, id: &str) -> Result<Note> {
        let path = self.note_path(id)?;
        let mut note = Note::read(&path)?;
        if note.forgotten().is_none() {
            note.set_extra(
                "forgotten",
                Some(Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            );
            crate::note::atomic_write(&path, note.to_markdown().as_bytes())?;
            self.sync()?;
        }
        Ok(note)
    }

    /// Pins a note (`pin: true` in its front matter: injected into every session) or, with
    /// `on` false, unpins it. Returns whether the file changed.
    pub fn pin(&mut self, id: &str, on: bool) -> Result<bool> {
        let path = self.note_path(id)?;
        let mut note = Note::read(&path)?;
        if note.pinned() == on {
            return Ok(false);
        }
        note.set_extra("pin", on.then(|| "true".to_string()));
        crate::note::atomic_write(&path, note.to_markdown().as_bytes())?;
        self.sync()?;
        Ok(true)
    }

    /// A note's lineage: the notes it superseded (older first, followed through their own
    /// `supersedes`), the note, and the notes that superseded it (newer last).
    pub fn history(&self, id: &str) -> Result<Vec<Note>> {
        let note = self.show(id)?;
        let mut seen: std::collections::HashSet<String> = [note.id.clone()].into();
        let mut older = vec![];
        let mut queue: Vec<String> = note.supersedes.clone();
        while let Some(old) = queue.pop() {
            if !seen.insert(old.clone()) || seen.len() > 1000 {
                continue;
            }
            if let Ok(n) = self.show(&old) {
                queue.extend(n.supersedes.iter().cloned());
                older.push(n);
            }
        }
        older.sort_by(|a, b| a.created.cmp(&b.created));
        let mut newer = vec![];
        let mut next = note.superseded_by.clone();
        while let Some(n) = next.take() {
            if !seen.insert(n.clone()) {
                break;
            }
            if let Ok(n) = self.show(&n) {
                next = n.superseded_by.clone();
                newer.push(n);
            }
        }
        older.push(note);
        older.extend(newer);
        Ok(older)
    }

    /// What a session should be given, and why: see [`crate::inject`] for the policy.
    pub fn inject(&mut self, ask: &Ask) -> Result<Injection> {
        ask.validate().map_err(MemoryError::Invalid)?;
        let now = Utc::now();
        let mut pins = vec![];
        if ask.pinned {
            for n in self.index.pin_candidates()? {
                let Ok(updated) =
                    DateTime::parse_from_rfc3339(&n.updated).map(|t| t.with_timezone(&Utc))
                else {
                    continue;
                };
                let c = PinCandidate {
                    id: n.id.clone(),
                    title: n.title.clone(),
                    kind: n.kind.clone(),
                    updated,
                    pinned: n.pinned,
                    body: String::new(),
                    bears: None,
                };
                if !n.is_active() || !crate::inject::is_pinned(&c, ask.status_days, now) {
                    continue;
                }
                if let Ok(note) = self.show(&n.id) {
                    pins.push(PinCandidate {
                        body: note.body,
                        ..c
                    });
                }
            }
        }
        let mut matches = vec![];
        let mut queries: Vec<(Reason, Vec<f32>)> = vec![];
        let mut keyword_only = false;
        let mut warning = None;
        // A task is looked up by its whole text and by its title alone (the text before the first
        // ". "): a long body dilutes what the title says the task is about.
        let title = ask
            .task
            .as_deref()
            .and_then(|t| t.split_once(". "))
            .map(|(title, _)| title.to_string());
        for (reason, query) in [
            (Reason::Task, &ask.task),
            (Reason::Task, &title),
            (Reason::Prompt, &ask.prompt),
            (Reason::Work, &ask.work),
        ] {
            let Some(query) = query
                .as_deref()
                .filter(|q| q.chars().any(char::is_alphanumeric))
            else {
                continue;
            };
            if reason == Reason::Prompt && crate::inject::is_small_talk(query) {
                continue;
            }
            let opts = SearchOptions {
                k: ask.k,
                recency_half_life_days: Some(30.0),
                ..SearchOptions::default()
            };
            let (found, qvec) = self.search_embedded(query, &opts)?;
            if let Some(q) = qvec {
                queries.push((reason, q));
            }
            keyword_only |= found.mode == SearchMode::Keyword;
            warning = warning.or(found.warning);
            let hits = found
                .hits
                .into_iter()
                .filter_map(|h| {
                    let note = self.show(&h.id).ok()?;
                    Some(Match {
                        id: h.id,
                        title: h.title,
                        kind: h.kind,
                        updated: h.updated,
                        body: note.body,
                        score: h.score,
                        similarity: h.similarity,
                    })
                })
                .collect();
            matches.push((reason, hits));
        }
        // How closely each fresh status note bears on the session: its best similarity to any of
        // the session's queries.
        for c in pins
            .iter_mut()
            .filter(|c| crate::inject::fresh_status(c, ask.status_days, now))
        {
            let Some(v) = self.index.vector_of(&c.id)? else {
                continue;
            };
            c.bears = queries
                .iter()
                .map(|(reason, q)| (*reason, crate::embed::dot(q, &v)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
        }
        let notes = crate::inject::plan(ask, pins, matches, keyword_only, now);
        Ok(Injection { notes, warning })
    }

    /// When the vault was last changed, as the newest `updated` of its notes.
    pub fn last_updated(&self) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .index
            .all()?
            .iter()
            .filter_map(|n| DateTime::parse_from_rfc3339(&n.updated).ok())
            .map(|t| t.with_timezone(&Utc))
            .max())
    }
}
