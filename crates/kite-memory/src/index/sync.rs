//! Bringing the index up to date with the note files: what changed (by content hash), parsed and
//! embedded again; a full rebuild.

use super::*;

/// The files a sync found and the ids they hold (a second file with a taken id is skipped).
#[derive(Default)]
struct Seen {
    paths: HashSet<String>,
    /// id → the file that holds it.
    ids: HashMap<String, String>,
}

impl Seen {
    fn insert(&mut self, id: &str, rel: &str) {
        self.paths.insert(rel.to_string());
        self.ids.insert(id.to_string(), rel.to_string());
    }
}

impl Index {
    /// Brings the index up to date with the files in `dir`: new and changed files (by content
    /// hash) are parsed and embedded, deleted files are dropped, unreadable files are skipped with
    /// a warning (their last good version stays indexed). Without an embedder, notes are indexed
    /// for keyword search only and embedded on a later sync that has one.
    pub fn sync(&mut self, dir: &Path, embedder: Option<&Embedder>) -> Result<SyncReport> {
        let plan = self.plan_sync(dir)?;
        self.apply_sync(plan, embedder)
    }

    /// Reads the vault and works out what a sync has to do, without changing anything.
    pub fn plan_sync(&self, dir: &Path) -> Result<SyncPlan> {
        let mut plan = SyncPlan::default();
        let known: HashMap<String, (String, String, bool)> = {
            let mut stmt = self.conn.prepare("SELECT path, id, hash, embedded FROM notes").map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, (r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, bool>(3)?))))
                .map_err(|e| self.err(e))?;
            rows.collect::<rusqlite::Result<HashMap<_, _>>>().map_err(|e| self.err(e))?
        };
        let model_changed = self.meta("model")?.is_some_and(|m| m != MODEL_NAME);
        let mut seen = Seen::default();
        for file in note_files(dir)? {
            let rel = file.strip_prefix(dir).unwrap_or(&file).to_string_lossy().into_owned();
            let old = known.get(&rel);
            let text = match read_capped(&file) {
                Ok(text) => text,
                Err(e) => {
                    skip(&mut plan.report, &rel, &e.to_string(), old.is_some());
                    // An indexed note that cannot be read now keeps its place in the index.
                    if let Some((id, ..)) = old {
                        seen.insert(id, &rel);
                    }
                    continue;
                }
            };
            let hash = content_hash(text.as_bytes());
            let unchanged = old.is_some_and(|(_, h, _)| *h == hash);
            if let (true, Some((id, _, embedded))) = (unchanged, old) {
                if let Some(other) = seen.ids.get(id) {
                    skip(&mut plan.report, &rel, &format!("id {id:?} is already used by {other}"), false);
                    continue;
                }
                seen.insert(id, &rel);
                if *embedded && !model_changed {
                    plan.report.unchanged += 1;
                    continue;
                }
            }
            let note = match Note::parse(&text, &file) {
                Ok(n) => n,
                Err(e) => {
                    skip(&mut plan.report, &rel, &e.to_string(), old.is_some());
                    // An indexed note that cannot be read now keeps its place in the index.
                    if let Some((id, ..)) = old {
                        seen.insert(id, &rel);
                    }
                    continue;
                }
            };
            if unchanged {
                plan.needs_vector.push((note, rel, hash));
                continue;
            }
            if let Some(other) = seen.ids.get(&note.id) {
                skip(&mut plan.report, &rel, &format!("id {:?} is already used by {other}", note.id), false);
                continue;
            }
            seen.insert(&note.id, &rel);
            if let Some((old_id, ..)) = old {
                if *old_id != note.id {
                    plan.removals.push(old_id.clone());
                }
            }
            plan.changed.push((note, rel, hash, old.is_some()));
        }
        // Removals go first, so that an id that moved to another file is not deleted after its upsert.
        for (path, (id, ..)) in &known {
            if !seen.paths.contains(path) && !plan.removals.contains(id) {
                plan.removals.push(id.clone());
            }
        }
        plan.model_changed = model_changed;
        Ok(plan)
    }

    /// Applies a plan made by [`Index::plan_sync`].
    pub fn apply_sync(&mut self, plan: SyncPlan, embedder: Option<&Embedder>) -> Result<SyncReport> {
        let started = Instant::now();
        let SyncPlan { mut report, changed, needs_vector, removals, model_changed } = plan;
        if model_changed && embedder.is_some() {
            tracing::warn!(new = MODEL_NAME, "embedding model changed; re-embedding every note");
            self.conn.execute_batch("DELETE FROM notes_vec; UPDATE notes SET embedded = 0;").map_err(|e| self.err(e))?;
            self.vectors = None;
        }
        for id in &removals {
            if self.remove(id)? {
                report.removed += 1;
            }
        }
        let mut todo: Vec<(Note, String, String, Option<bool>)> =
            changed.into_iter().map(|(n, r, h, existed)| (n, r, h, Some(existed))).collect();
        if embedder.is_some() {
            todo.extend(needs_vector.into_iter().map(|(n, r, h)| (n, r, h, None)));
        } else {
            report.unchanged += needs_vector.len();
            report.without_vector += needs_vector.len();
        }
        let total = todo.len();
        let mut done = 0usize;
        for chunk in todo.chunks(256) {
            let vectors: Vec<Option<Vec<f32>>> = match embedder {
                Some(e) => {
                    let texts: Vec<String> = chunk.iter().map(|(n, ..)| redact(&n.search_text()).into_owned()).collect();
                    e.embed(&texts)?.into_iter().map(Some).collect()
                }
                None => vec![None; chunk.len()],
            };
            let items: Vec<(Note, String, String, Option<Vec<f32>>)> = chunk
                .iter()
                .zip(vectors)
                .map(|((n, rel, hash, _), v)| (n.clone(), rel.clone(), hash.clone(), v))
                .collect();
            self.insert_batch(&items)?;
            for (_, _, _, existed) in chunk {
                match existed {
                    Some(true) => report.updated += 1,
                    Some(false) => report.added += 1,
                    None => report.embedded_later += 1,
                }
            }
            if embedder.is_none() {
                report.without_vector += chunk.len();
            }
            done += chunk.len();
            if total > 256 {
                tracing::info!(done, total, "indexing notes");
            }
        }
        if embedder.is_some() {
            self.set_meta("model", MODEL_NAME)?;
        }
        tracing::debug!(
            added = report.added,
            updated = report.updated,
            removed = report.removed,
            unchanged = report.unchanged,
            skipped = report.skipped.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "index synced"
        );
        Ok(report)
    }

    /// Rebuilds the index from the files.
    pub fn reindex(&mut self, dir: &Path, embedder: Option<&Embedder>) -> Result<SyncReport> {
        tracing::info!(dir = %dir.display(), "rebuilding the index");
        self.clear()?;
        self.sync(dir, embedder)
    }
}

pub(super) fn skip(report: &mut SyncReport, rel: &str, reason: &str, kept_old: bool) {
    if kept_old {
        tracing::warn!(file = rel, reason, "skipping unreadable note file; its last good version stays indexed");
    } else {
        tracing::warn!(file = rel, reason, "skipping unreadable note file");
    }
    report.skipped.push((rel.to_string(), reason.to_string()));
}


/// The note files of a vault directory (`*.md`, not hidden, not our temporary files), sorted.
pub fn note_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = vec![];
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(MemoryError::io("listing", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| MemoryError::io("listing", dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || !name.ends_with(".md") || name.eq_ignore_ascii_case("README.md") {
            continue;
        }
        if entry.file_type().map(|t| t.is_file() || t.is_symlink()).unwrap_or(false) {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

