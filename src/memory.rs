//! The daemon's memory component: keeps the vault open with the embedding model warm, answers
//! recall queries from the SessionStart hook on `HOME/memory.sock` (so a hook pays a socket round
//! trip, not a model load), and works through the extraction queue that the SessionEnd and
//! PreCompact hooks fill.
//!
//! The queue is a directory of small job files (`HOME/memory-queue/*.json`) written atomically by
//! the hook, so a hook returns at once and a job survives a daemon restart. Which transcripts were
//! done, and up to which byte, is recorded in `HOME/memory-done.json`: a transcript that grows
//! (a resumed session, a compaction) is read again from where the last extraction stopped, and
//! nothing is extracted twice.

use anyhow::{Context, Result};
use kite_memory::{BuiltinExtractor, CommandExtractor, Extractor, Transcript, Vault};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One transcript to extract notes from.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Job {
    pub(crate) transcript: PathBuf,
    pub(crate) session_id: Option<String>,
    pub(crate) event: String,
}

pub(crate) fn queue_dir(home: &Path) -> PathBuf {
    home.join("memory-queue")
}

pub(crate) fn socket(home: &Path) -> PathBuf {
    home.join("memory.sock")
}

/// Queues a job (atomically: write then rename) and returns at once.
pub(crate) fn enqueue(home: &Path, job: &Job) -> Result<PathBuf> {
    let dir = queue_dir(home);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let path = dir.join(format!("{stamp}-{}.json", std::process::id()));
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(job)?).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path)?;
    // Wake the worker if the daemon is up; it also scans on its own.
    if let Ok(mut s) = UnixStream::connect(socket(home)) {
        let _ = s.set_write_timeout(Some(Duration::from_millis(100)));
        let _ = s.write_all(b"{\"op\":\"poke\"}\n");
    }
    Ok(path)
}

/// A recalled note, with what the hook needs to show it and to judge its relevance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Recalled {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) kind: String,
    pub(crate) score: f64,
    /// Cosine similarity to the query; `None` when found by keywords only.
    pub(crate) similarity: Option<f32>,
    pub(crate) updated: String,
    pub(crate) body: String,
}

/// The best active notes for `query`, with their bodies.
pub(crate) fn recall(vault: &mut Vault, query: &str, k: usize) -> Result<Vec<Recalled>, String> {
    let hits = vault.recall(query, k).map_err(|e| e.to_string())?;
    Ok(hits
        .hits
        .into_iter()
        .filter_map(|h| {
            let note = vault.show(&h.id).ok()?;
            Some(Recalled { id: h.id, title: h.title, kind: h.kind, score: h.score, similarity: h.similarity, updated: h.updated, body: note.body })
        })
        .collect())
}

/// Asks the running daemon's warm vault for the best notes. `None` when no daemon answers.
pub(crate) fn remote_recall(home: &Path, query: &str, k: usize, timeout: Duration) -> Option<Vec<Recalled>> {
    let mut s = UnixStream::connect(socket(home)).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    let req = serde_json::json!({"op": "recall", "query": query, "k": k});
    s.write_all(format!("{req}\n").as_bytes()).ok()?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).ok()?;
    serde_json::from_str::<Result<Vec<Recalled>, String>>(&line).ok()?.ok()
}

/// Runs the memory component until the process ends: the recall server and the queue worker.
/// Returns the shared vault, so the daemon can quiesce it before exiting.
pub(crate) fn start(home: PathBuf, config: kite_memory::VaultConfig, extract_command: Option<String>) -> Result<Arc<Mutex<Vault>>> {
    let vault_dir = config.dir.clone();
    let mut vault = crate::cmd::vault::open_with(config)?;
    // Load the model now, so the first hook does not pay for it.
    if let Err(e) = vault.embedder() {
        tracing::warn!("no embedding model, recall is keyword-only: {e}");
    }
    let vault = Arc::new(Mutex::new(vault));
    let sock = socket(&home);
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).with_context(|| format!("cannot bind {}", sock.display()))?;
    let (poke_tx, poke_rx) = std::sync::mpsc::channel::<()>();
    {
        let vault = vault.clone();
        std::thread::Builder::new().name("kite-recall".into()).spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Err(e) = serve(stream, &vault, &poke_tx) {
                    tracing::debug!("recall connection: {e}");
                }
            }
        })?;
    }
    let worker_vault = vault.clone();
    std::thread::Builder::new().name("kite-memory-worker".into()).spawn(move || loop {
        if let Err(e) = drain_queue(&home, &worker_vault, extract_command.as_deref()) {
            tracing::warn!("memory worker: {e:#}");
        }
        let _ = poke_rx.recv_timeout(Duration::from_secs(2));
    })?;
    tracing::info!(vault = %vault_dir.display(), "memory component ready");
    Ok(vault)
}

fn serve(stream: UnixStream, vault: &Mutex<Vault>, poke: &std::sync::mpsc::Sender<()>) -> Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new(stream.try_clone()?).take(64 * 1024).read_line(&mut line)?;
    let req: serde_json::Value = serde_json::from_str(&line)?;
    match req["op"].as_str() {
        Some("poke") => {
            let _ = poke.send(());
            Ok(())
        }
        Some("recall") => {
            let query = req["query"].as_str().unwrap_or_default();
            let k = req["k"].as_u64().unwrap_or(8) as usize;
            let result = match vault.lock() {
                Ok(mut v) => recall(&mut v, query, k),
                Err(_) => Err("vault lock poisoned".to_string()),
            };
            let mut out = stream;
            out.write_all(serde_json::to_string(&result)?.as_bytes())?;
            out.write_all(b"\n")?;
            Ok(())
        }
        other => anyhow::bail!("unknown memory op {other:?}"),
    }
}

fn done_path(home: &Path) -> PathBuf {
    home.join("memory-done.json")
}

fn load_done(home: &Path) -> BTreeMap<String, u64> {
    std::fs::read(done_path(home)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

fn save_done(home: &Path, done: &BTreeMap<String, u64>) -> Result<()> {
    let tmp = done_path(home).with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(done)?)?;
    std::fs::rename(&tmp, done_path(home))?;
    Ok(())
}

/// Works through every queued job, oldest first.
fn drain_queue(home: &Path, vault: &Mutex<Vault>, extract_command: Option<&str>) -> Result<()> {
    let dir = queue_dir(home);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(()) };
    let mut jobs: Vec<PathBuf> =
        entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
    jobs.sort();
    for path in jobs {
        let job: Job = match std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
            Some(j) => j,
            None => {
                tracing::warn!(job = %path.display(), "unreadable extraction job, set aside");
                let _ = std::fs::rename(&path, path.with_extension("bad"));
                continue;
            }
        };
        match extract_job(home, vault, &job, extract_command) {
            Ok(n) => tracing::info!(transcript = %job.transcript.display(), notes = n, "extracted"),
            Err(e) => tracing::warn!(transcript = %job.transcript.display(), "extraction failed: {e:#}"),
        }
        let _ = std::fs::remove_file(&path);
    }
    Ok(())
}

/// Extracts the part of a transcript not done before; returns how many notes were written.
pub(crate) fn extract_job(home: &Path, vault: &Mutex<Vault>, job: &Job, extract_command: Option<&str>) -> Result<usize> {
    let key = job.transcript.display().to_string();
    let mut done = load_done(home);
    let offset = done.get(&key).copied().unwrap_or(0);
    let mut f = std::fs::File::open(&job.transcript).with_context(|| format!("cannot open {}", job.transcript.display()))?;
    let len = f.metadata()?.len();
    if len <= offset {
        return Ok(0);
    }
    f.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    f.take(len - offset).read_to_end(&mut bytes)?;
    // Only whole lines: a line still being written is read next time.
    let Some(end) = bytes.iter().rposition(|b| *b == b'\n') else { return Ok(0) };
    let text = String::from_utf8_lossy(&bytes[..=end]);
    let transcript = Transcript::parse(&text);
    let source = format!("transcript:{}", job.session_id.clone().or(transcript.session_id.clone()).unwrap_or_else(|| key.clone()));
    let extractor: Box<dyn Extractor> = match extract_command {
        Some(c) => Box::new(CommandExtractor::new(c)),
        None => Box::new(BuiltinExtractor::default()),
    };
    let proposed = extractor.extract(&transcript, &source)?;
    let mut written = 0;
    {
        let mut v = vault.lock().map_err(|_| anyhow::anyhow!("vault lock poisoned"))?;
        for mut n in proposed {
            n.title = kite_memory::redact::redact(&n.title).into_owned();
            n.body = kite_memory::redact::redact(&n.body).into_owned();
            n.source.get_or_insert(source.clone());
            if n.validate().is_err() {
                continue;
            }
            v.add(n)?;
            written += 1;
        }
    }
    done.insert(key, offset + end as u64 + 1);
    save_done(home, &done)?;
    Ok(written)
}
