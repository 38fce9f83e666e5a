//! The derived index beside the vault: a SQLite file with the notes' metadata, an FTS5 table for
//! keyword search, and a sqlite-vec `vec0` table holding the embeddings.
//!
//! The note files are the truth; everything here can be rebuilt with [`Index::reindex`], and
//! [`Index::sync`] brings the index up to date with hand edits by comparing content hashes, so only
//! the files that changed are parsed and embedded again.
//!
//! Vector search does not use sqlite-vec's exact KNN on the hot path (about 50 ms at 100k notes):
//! the vectors are loaded once into memory with a sign code of each (one bit per dimension, 768) (centred on the corpus
//! mean, which keeps far more neighbours than raw signs), the codes are scanned by Hamming distance
//! to pick a few hundred candidates, and those are re-ranked by the exact dot product.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Instant;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::embed::{dot, Embedder, DIM, MODEL_NAME};
use crate::error::{MemoryError, Result};
use crate::note::{read_capped, Note};
use crate::redact::redact;

const SCHEMA_VERSION: &str = "2";
const WORDS: usize = DIM / 64;
/// Candidates taken from the Hamming scan per search before the exact re-rank (at least).
pub const DEFAULT_CANDIDATES: usize = 400;
/// Notes a keyword query may rank with bm25 before common words stop choosing candidates.
pub const KEYWORD_BUDGET: usize = 4000;

/// What one indexed note looks like from the index.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexedNote {
    pub id: String,
    pub path: String,
    pub hash: String,
    pub title: String,
    pub kind: String,
    pub tags: Vec<String>,
    pub created: String,
    pub updated: String,
    pub superseded_by: Option<String>,
    pub embedded: bool,
    /// `pin: true` in the note's front matter: injected into every session.
    pub pinned: bool,
    /// `forgotten:` in the front matter (`kite vault forget`): kept on record, never recalled.
    pub forgotten: bool,
}

impl IndexedNote {
    /// Neither superseded nor forgotten: a note recall may return.
    pub fn is_active(&self) -> bool {
        self.superseded_by.is_none() && !self.forgotten
    }
}

/// What a sync or reindex did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SyncReport {
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
    pub unchanged: usize,
    /// Notes indexed without a vector because no model was available.
    pub without_vector: usize,
    /// Notes already indexed that got their vector now.
    pub embedded_later: usize,
    /// Files that could not be read as notes: (file, reason). They are left untouched.
    pub skipped: Vec<(String, String)>,
}

/// What a sync has to do (see [`Index::plan_sync`]).
#[derive(Debug, Default)]
pub struct SyncPlan {
    report: SyncReport,
    changed: Vec<(Note, String, String, bool)>,
    needs_vector: Vec<(Note, String, String)>,
    removals: Vec<String>,
    model_changed: bool,
}

impl SyncPlan {
    /// Whether applying the plan needs the embedding model.
    pub fn needs_embedder(&self) -> bool {
        !self.changed.is_empty() || !self.needs_vector.is_empty() || self.model_changed
    }

    /// Whether applying the plan changes anything at all.
    pub fn is_noop(&self) -> bool {
        self.changed.is_empty() && self.needs_vector.is_empty() && self.removals.is_empty() && !self.model_changed
    }
}

/// Index statistics.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IndexStats {
    pub notes: usize,
    pub superseded: usize,
    pub with_vector: usize,
    pub by_kind: Vec<(String, usize)>,
    pub index_bytes: u64,
}

/// sqlite-vec is statically linked; it is registered as an auto extension so that every
/// connection opened afterwards has `vec0`.
#[allow(unsafe_code)]
fn register_sqlite_vec() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: `sqlite3_vec_init` is the extension entry point compiled into this binary by the
        // sqlite-vec crate, with the signature SQLite expects of an auto extension
        // (db, error message, api routines) -> int; transmuting the fn pointer only restores that
        // signature, which the crate declares without arguments.
        unsafe {
            rusqlite::ffi::sqlite3_auto_extension(Some(std::mem::transmute::<
                *const (),
                unsafe extern "C" fn(
                    *mut rusqlite::ffi::sqlite3,
                    *mut *mut std::os::raw::c_char,
                    *const rusqlite::ffi::sqlite3_api_routines,
                ) -> std::os::raw::c_int,
            >(sqlite_vec::sqlite3_vec_init as *const ())));
        }
    });
}

/// Little-endian f32 blob, the form sqlite-vec binds.
pub fn vector_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn blob_vector(b: &[u8]) -> Option<Vec<f32>> {
    (b.len() == DIM * 4).then(|| b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// Content hash of a file's bytes.
pub fn content_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SQLite index.
pub struct Index {
    conn: Connection,
    path: PathBuf,
    vectors: Option<VectorCache>,
    /// `PRAGMA data_version` when the vectors were loaded: it changes when another connection
    /// (the daemon, a CLI call) commits, and then the in-memory vectors are reloaded.
    vectors_version: i64,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").field("path", &self.path).finish()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS notes(
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL,
    title TEXT NOT NULL,
    kind TEXT NOT NULL,
    tags TEXT NOT NULL,
    project TEXT,
    source TEXT,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    superseded_by TEXT,
    body TEXT NOT NULL,
    embedded INTEGER NOT NULL DEFAULT 0,
    pinned INTEGER NOT NULL DEFAULT 0,
    forgotten INTEGER NOT NULL DEFAULT 0
);
CREATE VIRTUAL TABLE IF NOT EXISTS notes_fts USING fts5(title, body, tags, tokenize = 'porter unicode61 remove_diacritics 2');
";

/// The vector table, sized for the model's [`DIM`].
fn vec_table() -> String {
    format!("CREATE VIRTUAL TABLE IF NOT EXISTS notes_vec USING vec0(embedding float[{DIM}]);")
}

impl Index {
    /// Opens (creating if needed) the index at `path`.
    pub fn open(path: &Path) -> Result<Index> {
        register_sqlite_vec();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| MemoryError::io("creating directory", dir, e))?;
        }
        let conn = Connection::open(path).map_err(|e| MemoryError::Index { path: path.into(), source: e })?;
        Self::setup(conn, path.to_path_buf())
    }

    /// An index in memory, for tests and benchmarks.
    pub fn open_in_memory() -> Result<Index> {
        register_sqlite_vec();
        let conn = Connection::open_in_memory().map_err(|e| MemoryError::Index { path: ":memory:".into(), source: e })?;
        Self::setup(conn, PathBuf::from(":memory:"))
    }

    fn setup(conn: Connection, path: PathBuf) -> Result<Index> {
        let index = Index { conn, path, vectors: None, vectors_version: 0 };
        index
            .conn
            .execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;")
            .map_err(|e| index.err(e))?;
        index.conn.execute_batch(SCHEMA).map_err(|e| index.err(e))?;
        // Vectors of another model (another size) are dropped, never searched beside this
        // model's: the table is made again and every note is embedded again at the next sync.
        // Checked and changed in one write transaction: a hook opening the index at the same
        // moment as the daemon sees the table before or after, never half way.
        index.conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| index.err(e))?;
        let migrated = (|| -> rusqlite::Result<()> {
            let declared: Option<String> =
                index.conn.query_row("SELECT sql FROM sqlite_master WHERE name = 'notes_vec'", [], |r| r.get(0)).optional()?;
            if let Some(sql) = declared.filter(|s| !s.contains(&format!("float[{DIM}]"))) {
                tracing::warn!(was = %sql, dim = DIM, "the index holds vectors of another model; they are dropped and every note is embedded again");
                index.conn.execute_batch("DROP TABLE IF EXISTS notes_vec; UPDATE notes SET embedded = 0;")?;
            }
            index.conn.execute_batch(&vec_table())
        })();
        let end = if migrated.is_ok() { "COMMIT" } else { "ROLLBACK" };
        index.conn.execute_batch(end).map_err(|e| index.err(e))?;
        migrated.map_err(|e| index.err(e))?;
        let version: Option<String> = index.meta("schema")?;
        if version.as_deref() != Some(SCHEMA_VERSION) {
            // Schema 1 had no pin or forgotten columns: add them, and make the next sync read
            // every file again (the hashes no longer match) so they are filled in.
            let has_pinned: bool = index
                .conn
                .query_row("SELECT count(*) FROM pragma_table_info('notes') WHERE name = 'pinned'", [], |r| r.get::<_, i64>(0))
                .map(|n| n > 0)
                .map_err(|e| index.err(e))?;
            if !has_pinned {
                index
                    .conn
                    .execute_batch(
                        "ALTER TABLE notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
                         ALTER TABLE notes ADD COLUMN forgotten INTEGER NOT NULL DEFAULT 0;
                         UPDATE notes SET hash = '';",
                    )
                    .map_err(|e| index.err(e))?;
            }
            index.set_meta("schema", SCHEMA_VERSION)?;
        }
        Ok(index)
    }

    fn err(&self, source: rusqlite::Error) -> MemoryError {
        MemoryError::Index { path: self.path.clone(), source }
    }

    /// Where the index lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn meta(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute("INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value", [key, value])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Number of notes indexed.
    pub fn len(&self) -> Result<usize> {
        self.conn.query_row("SELECT count(*) FROM notes", [], |r| r.get::<_, i64>(0)).map(|n| n as usize).map_err(|e| self.err(e))
    }

    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Inserts or replaces a note (keyed by id). `path` is relative to the vault directory. The
    /// body and title are redacted before they are stored.
    pub fn upsert(&mut self, note: &Note, path: &str, hash: &str, vector: Option<&[f32]>) -> Result<()> {
        let tx = self.conn.unchecked_transaction().map_err(|e| MemoryError::Index { path: self.path.clone(), source: e })?;
        let rowid = upsert_row(&tx, note, path, hash, vector.is_some()).map_err(|e| MemoryError::Index { path: self.path.clone(), source: e })?;
        if let Some(v) = vector {
            write_vector(&tx, rowid, v).map_err(|e| MemoryError::Index { path: self.path.clone(), source: e })?;
        }
        tx.commit().map_err(|e| MemoryError::Index { path: self.path.clone(), source: e })?;
        if let Some(cache) = self.vectors.as_mut() {
            match vector {
                Some(v) => cache.upsert(rowid, v, note.is_active()),
                None => cache.set_active(rowid, false),
            }
        }
        Ok(())
    }

    /// Removes a note by id; true if it was there.
    pub fn remove(&mut self, id: &str) -> Result<bool> {
        let rowid: Option<i64> = self
            .conn
            .query_row("SELECT rowid FROM notes WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        let Some(rowid) = rowid else { return Ok(false) };
        let tx = self.conn.unchecked_transaction().map_err(|e| MemoryError::Index { path: self.path.clone(), source: e })?;
        delete_row(&tx, rowid).map_err(|e| MemoryError::Index { path: self.path.clone(), source: e })?;
        tx.commit().map_err(|e| MemoryError::Index { path: self.path.clone(), source: e })?;
        if let Some(cache) = self.vectors.as_mut() {
            cache.set_active(rowid, false);
        }
        Ok(true)
    }

    /// Looks a note up by id.
    pub fn get(&self, id: &str) -> Result<Option<IndexedNote>> {
        self.conn
            .query_row(
                "SELECT id, path, hash, title, kind, tags, created, updated, superseded_by, embedded, pinned, forgotten FROM notes WHERE id = ?1",
                [id],
                row_to_indexed,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Looks notes up by their index row ids.
    fn by_rowids(&self, rowids: &[i64]) -> Result<HashMap<i64, IndexedNote>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, path, hash, title, kind, tags, created, updated, superseded_by, embedded, pinned, forgotten FROM notes WHERE rowid = ?1")
            .map_err(|e| self.err(e))?;
        let mut out = HashMap::new();
        for &r in rowids {
            if let Some(n) = stmt.query_row([r], row_to_indexed).optional().map_err(|e| MemoryError::Index { path: self.path.clone(), source: e })? {
                out.insert(r, n);
            }
        }
        Ok(out)
    }

    /// All indexed notes.
    pub fn all(&self) -> Result<Vec<IndexedNote>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, path, hash, title, kind, tags, created, updated, superseded_by, embedded, pinned, forgotten FROM notes ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], row_to_indexed).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| self.err(e))
    }

    /// The active notes that could be pinned: preferences, status notes and `pin: true` ones
    /// (the injection policy decides which status notes are fresh enough).
    pub fn pin_candidates(&self) -> Result<Vec<IndexedNote>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, path, hash, title, kind, tags, created, updated, superseded_by, embedded, pinned, forgotten FROM notes
                 WHERE (kind IN ('preference', 'status') OR pinned = 1) AND superseded_by IS NULL AND forgotten = 0
                 ORDER BY updated DESC LIMIT 1000",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], row_to_indexed).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| self.err(e))
    }

    /// Keyword search with FTS5 and bm25: (note, bm25 score; higher is better), best first.
    ///
    /// bm25 costs a few microseconds per matching note, so on a large index a query made of
    /// common words would take tens of milliseconds. Like Lucene's common-terms query, the words
    /// are split by document frequency: the rare ones (together matching at most
    /// [`KEYWORD_BUDGET`] notes) choose the candidates, and every word still counts in the score.
    /// When every word is common, the candidates are the notes holding all of them.
    pub fn keyword_search(&self, query: &str, k: usize, include_superseded: bool) -> Result<Vec<(IndexedNote, f64)>> {
        let words = query_words(query);
        if words.is_empty() {
            return Ok(vec![]);
        }
        let quoted = |ws: &[&String]| ws.iter().map(|w| format!("\"{w}\"")).collect::<Vec<_>>();
        let all: Vec<&String> = words.iter().collect();
        let any_all = quoted(&all).join(" OR ");
        if words.len() == 1 || self.len()? <= KEYWORD_BUDGET {
            return self.fts(&any_all, k, include_superseded);
        }
        let mut by_df: Vec<(usize, &String)> = vec![];
        for w in &words {
            let df = self.doc_frequency(w)?;
            if df > 0 {
                by_df.push((df, w));
            }
        }
        by_df.sort();
        let Some(&(rarest, _)) = by_df.first() else { return Ok(vec![]) };
        if rarest <= KEYWORD_BUDGET {
            let mut total = 0;
            let rare: Vec<&String> = by_df
                .iter()
                .take_while(|(df, _)| {
                    total += df;
                    total <= KEYWORD_BUDGET
                })
                .map(|(_, w)| *w)
                .collect();
            let rare = if rare.is_empty() { vec![by_df[0].1] } else { rare };
            if rare.len() == by_df.len() {
                return self.fts(&any_all, k, include_superseded);
            }
            let q = format!("({}) AND ({any_all})", quoted(&rare).join(" OR "));
            return self.fts(&q, k, include_superseded);
        }
        // Only common words: notes holding all of them, then the two rarest, then the rarest.
        let present: Vec<&String> = by_df.iter().map(|(_, w)| *w).collect();
        let mut sizes = vec![present.len()];
        sizes.extend([2, 1].into_iter().filter(|n| *n < present.len()));
        for n in sizes {
            let q = format!("({}) AND ({any_all})", quoted(&present[..n]).join(" AND "));
            let hits = self.fts(&q, k, include_superseded)?;
            if !hits.is_empty() || n == 1 {
                return Ok(hits);
            }
        }
        Ok(vec![])
    }

    fn fts(&self, fts: &str, k: usize, include_superseded: bool) -> Result<Vec<(IndexedNote, f64)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT n.id, n.path, n.hash, n.title, n.kind, n.tags, n.created, n.updated, n.superseded_by, n.embedded, n.pinned, n.forgotten,
                        bm25(notes_fts, 2.0, 1.0, 1.0) AS score
                 FROM notes_fts JOIN notes n ON n.rowid = notes_fts.rowid
                 WHERE notes_fts MATCH ?1 AND (?2 OR (n.superseded_by IS NULL AND n.forgotten = 0))
                 ORDER BY score LIMIT ?3",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![fts, include_superseded, k as i64], |r| Ok((row_to_indexed(r)?, -r.get::<_, f64>(12)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| self.err(e))
    }

    /// Number of notes whose text holds `word` (after the same stemming as the index).
    pub fn doc_frequency(&self, word: &str) -> Result<usize> {
        let Some(q) = fts_query(word) else { return Ok(0) };
        let mut stmt = self.conn.prepare_cached("SELECT count(*) FROM notes_fts WHERE notes_fts MATCH ?1").map_err(|e| self.err(e))?;
        stmt.query_row([q], |r| r.get::<_, i64>(0)).map(|n| n as usize).map_err(|e| self.err(e))
    }

    fn data_version(&self) -> Result<i64> {
        self.conn.query_row("PRAGMA data_version", [], |r| r.get(0)).map_err(|e| self.err(e))
    }

    fn ensure_vectors(&mut self) -> Result<&VectorCache> {
        let version = self.data_version()?;
        if self.vectors.is_some() && version != self.vectors_version {
            tracing::debug!("index changed by another connection; reloading vectors");
            self.vectors = None;
        }
        if self.vectors.is_none() {
            self.vectors_version = version;
            let started = Instant::now();
            let mut stmt = self
                .conn
                .prepare("SELECT v.rowid, v.embedding, n.superseded_by IS NULL AND n.forgotten = 0 FROM notes_vec v JOIN notes n ON n.rowid = v.rowid")
                .map_err(|e| MemoryError::Index { path: self.path.clone(), source: e })?;
            let mut rows = stmt.query([]).map_err(|e| MemoryError::Index { path: self.path.clone(), source: e })?;
            let (mut rowids, mut active, mut vecs) = (vec![], vec![], vec![]);
            while let Some(row) = rows.next().map_err(|e| MemoryError::Index { path: self.path.clone(), source: e })? {
                let rowid: i64 = row.get(0).map_err(|e| MemoryError::Index { path: self.path.clone(), source: e })?;
                let blob: Vec<u8> = row.get(1).map_err(|e| MemoryError::Index { path: self.path.clone(), source: e })?;
                let is_active: bool = row.get(2).map_err(|e| MemoryError::Index { path: self.path.clone(), source: e })?;
                if let Some(v) = blob_vector(&blob) {
                    rowids.push(rowid);
                    active.push(is_active);
                    vecs.extend_from_slice(&v);
                }
            }
            drop(rows);
            drop(stmt);
            tracing::debug!(vectors = rowids.len(), elapsed_ms = started.elapsed().as_millis() as u64, "vector cache loaded");
            self.vectors = Some(VectorCache::new(rowids, active, vecs));
        }
        self.vectors.as_ref().ok_or_else(|| MemoryError::Embed("vector cache missing".into()))
    }

    /// Loads the vectors into memory now (otherwise done on the first vector search).
    pub fn warm(&mut self) -> Result<()> {
        self.ensure_vectors().map(|_| ())
    }

    /// Approximate nearest neighbours (Hamming candidates + exact re-rank): (note, cosine), best first.
    pub fn vector_search(&mut self, q: &[f32], k: usize, include_superseded: bool) -> Result<Vec<(IndexedNote, f32)>> {
        let hits = self.vector_search_ids(q, k, DEFAULT_CANDIDATES, include_superseded)?;
        self.resolve(hits)
    }

    /// Vector search returning index row ids only (the benchmark's hot path).
    pub fn vector_search_ids(&mut self, q: &[f32], k: usize, candidates: usize, include_superseded: bool) -> Result<Vec<(i64, f32)>> {
        check_dim(q)?;
        Ok(self.ensure_vectors()?.search(q, k, candidates, include_superseded))
    }

    /// Exact nearest neighbours by a full dot-product scan (reference for recall).
    pub fn exact_search_ids(&mut self, q: &[f32], k: usize, include_superseded: bool) -> Result<Vec<(i64, f32)>> {
        check_dim(q)?;
        Ok(self.ensure_vectors()?.exact(q, k, include_superseded))
    }

    /// Exact KNN through sqlite-vec itself (for the benchmark's comparison).
    pub fn sqlite_vec_knn(&self, q: &[f32], k: usize) -> Result<Vec<(i64, f32)>> {
        check_dim(q)?;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT rowid, distance FROM notes_vec WHERE embedding MATCH ?1 AND k = ?2 ORDER BY distance")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![vector_blob(q), k as i64], |r| {
                let d: f64 = r.get(1)?;
                // L2 distance between unit vectors: cos = 1 - d^2/2.
                Ok((r.get::<_, i64>(0)?, (1.0 - d * d / 2.0) as f32))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| self.err(e))
    }

    fn resolve(&self, hits: Vec<(i64, f32)>) -> Result<Vec<(IndexedNote, f32)>> {
        let rowids: Vec<i64> = hits.iter().map(|h| h.0).collect();
        let mut notes = self.by_rowids(&rowids)?;
        Ok(hits.into_iter().filter_map(|(r, s)| notes.remove(&r).map(|n| (n, s))).collect())
    }

    /// The stored vector of a note, if any.
    pub fn vector_of(&self, id: &str) -> Result<Option<Vec<f32>>> {
        let blob: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT v.embedding FROM notes_vec v JOIN notes n ON n.rowid = v.rowid WHERE n.id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(blob.and_then(|b| blob_vector(&b)))
    }

    /// Counts for `kite vault stats`.
    pub fn stats(&self) -> Result<IndexStats> {
        let q = |sql: &str| self.conn.query_row(sql, [], |r| r.get::<_, i64>(0)).map(|n| n as usize).map_err(|e| self.err(e));
        let mut stmt = self.conn.prepare("SELECT kind, count(*) FROM notes GROUP BY kind ORDER BY count(*) DESC, kind").map_err(|e| self.err(e))?;
        let by_kind = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as usize)))
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))?;
        let index_bytes = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
            + std::fs::metadata(self.path.with_extension("db-wal")).map(|m| m.len()).unwrap_or(0);
        Ok(IndexStats {
            notes: q("SELECT count(*) FROM notes")?,
            superseded: q("SELECT count(*) FROM notes WHERE superseded_by IS NOT NULL")?,
            with_vector: q("SELECT count(*) FROM notes WHERE embedded = 1")?,
            by_kind,
            index_bytes,
        })
    }

    /// Drops every row (files are untouched).
    pub fn clear(&mut self) -> Result<()> {
        self.conn
            .execute_batch("BEGIN; DELETE FROM notes; DELETE FROM notes_fts; DELETE FROM notes_vec; COMMIT;")
            .map_err(|e| self.err(e))?;
        self.vectors = None;
        Ok(())
    }

    /// Inserts many notes in one transaction (reindex and benchmarks). Each item: note, relative
    /// path, content hash, vector.
    pub fn insert_batch(&mut self, items: &[(Note, String, String, Option<Vec<f32>>)]) -> Result<()> {
        let tx = self.conn.unchecked_transaction().map_err(|e| MemoryError::Index { path: self.path.clone(), source: e })?;
        let mut written = Vec::with_capacity(items.len());
        for (note, path, hash, vector) in items {
            let rowid = upsert_row(&tx, note, path, hash, vector.is_some()).map_err(|e| MemoryError::Index { path: self.path.clone(), source: e })?;
            if let Some(v) = vector {
                write_vector(&tx, rowid, v).map_err(|e| MemoryError::Index { path: self.path.clone(), source: e })?;
            }
            written.push(rowid);
        }
        tx.commit().map_err(|e| MemoryError::Index { path: self.path.clone(), source: e })?;
        if let Some(cache) = self.vectors.as_mut() {
            for ((note, _, _, vector), rowid) in items.iter().zip(written) {
                match vector {
                    Some(v) => cache.upsert(rowid, v, note.is_active()),
                    None => cache.set_active(rowid, false),
                }
            }
        }
        Ok(())
    }
}

fn check_dim(q: &[f32]) -> Result<()> {
    if q.len() == DIM {
        Ok(())
    } else {
        Err(MemoryError::Embed(format!("query vector has {} dimensions, expected {DIM}", q.len())))
    }
}

fn row_to_indexed(r: &rusqlite::Row<'_>) -> rusqlite::Result<IndexedNote> {
    let tags: String = r.get(5)?;
    Ok(IndexedNote {
        id: r.get(0)?,
        path: r.get(1)?,
        hash: r.get(2)?,
        title: r.get(3)?,
        kind: r.get(4)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        created: r.get(6)?,
        updated: r.get(7)?,
        superseded_by: r.get(8)?,
        embedded: r.get(9)?,
        pinned: r.get(10)?,
        forgotten: r.get(11)?,
    })
}

fn upsert_row(conn: &Connection, note: &Note, path: &str, hash: &str, embedded: bool) -> rusqlite::Result<i64> {
    let title = redact(&note.title).into_owned();
    let body = redact(&note.body).into_owned();
    let tags = serde_json::to_string(&note.tags).unwrap_or_else(|_| "[]".into());
    // Another row may hold this path under an older id (the caller normally removed it).
    conn.execute("DELETE FROM notes WHERE path = ?1 AND id != ?2", params![path, note.id])?;
    let existing: Option<i64> = conn.query_row("SELECT rowid FROM notes WHERE id = ?1", [&note.id], |r| r.get(0)).optional()?;
    if let Some(rowid) = existing {
        // The row keeps its rowid; its keyword entry is written again below, its vector by the caller.
        conn.execute("DELETE FROM notes_fts WHERE rowid = ?1", [rowid])?;
        conn.execute("DELETE FROM notes_vec WHERE rowid = ?1", [rowid])?;
    }
    conn.execute(
        "INSERT INTO notes(id, path, hash, title, kind, tags, project, source, created, updated, superseded_by, body, embedded, pinned, forgotten)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
         ON CONFLICT(id) DO UPDATE SET path=excluded.path, hash=excluded.hash, title=excluded.title, kind=excluded.kind,
             tags=excluded.tags, project=excluded.project, source=excluded.source, created=excluded.created,
             updated=excluded.updated, superseded_by=excluded.superseded_by, body=excluded.body, embedded=excluded.embedded,
             pinned=excluded.pinned, forgotten=excluded.forgotten",
        params![
            note.id,
            path,
            hash,
            title,
            note.kind.as_str(),
            tags,
            note.project,
            note.source,
            note.created.to_rfc3339(),
            note.updated.to_rfc3339(),
            note.superseded_by,
            body,
            embedded,
            note.pinned(),
            note.forgotten().is_some()
        ],
    )?;
    let rowid = existing.unwrap_or_else(|| conn.last_insert_rowid());
    conn.execute(
        "INSERT INTO notes_fts(rowid, title, body, tags) VALUES (?1, ?2, ?3, ?4)",
        params![rowid, title, body, redact(&note.tags.join(" ")).into_owned()],
    )?;
    Ok(rowid)
}

fn write_vector(conn: &Connection, rowid: i64, v: &[f32]) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM notes_vec WHERE rowid = ?1", [rowid])?;
    conn.execute("INSERT INTO notes_vec(rowid, embedding) VALUES (?1, ?2)", params![rowid, vector_blob(v)])?;
    Ok(())
}

fn delete_row(conn: &Connection, rowid: i64) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM notes_fts WHERE rowid = ?1", [rowid])?;
    conn.execute("DELETE FROM notes_vec WHERE rowid = ?1", [rowid])?;
    conn.execute("DELETE FROM notes WHERE rowid = ?1", [rowid])?;
    Ok(())
}

const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "do", "does", "for", "from", "has", "have", "how", "i", "in", "is",
    "it", "its", "of", "on", "or", "that", "the", "this", "to", "was", "we", "were", "what", "when", "where", "which",
    "who", "why", "will", "with",
];

/// The words of a free-text query, lower-cased, without stop words (unless that leaves none) and
/// without duplicates. Each is later quoted, so no FTS5 syntax leaks through.
pub(crate) fn query_words(text: &str) -> Vec<String> {
    let split = || text.split(|c: char| !c.is_alphanumeric() && c != '_').filter(|w| !w.is_empty()).map(str::to_lowercase);
    let mut words: Vec<String> = vec![];
    for w in split() {
        if !STOPWORDS.contains(&w.as_str()) && !words.contains(&w) {
            words.push(w);
        }
    }
    if words.is_empty() {
        for w in split() {
            if !words.contains(&w) {
                words.push(w);
            }
        }
    }
    words
}

/// Turns free text into an FTS5 query: every word quoted, OR-ed.
pub(crate) fn fts_query(text: &str) -> Option<String> {
    let words = query_words(text);
    (!words.is_empty()).then(|| words.iter().map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(" OR "))
}

mod sync;
mod vectors;
#[cfg(test)]
mod tests;

use vectors::VectorCache;
pub use sync::note_files;
