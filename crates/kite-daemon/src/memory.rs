//! The daemon's memory component: keeps the vault open with the embedding model warm and answers
//! the `memory.*` operations on kite.sock from its own thread (so a hook pays a socket round trip,
//! not a model load, and twenty agent sessions share one model instead of loading twenty), and
//! works through the extraction queue that the SessionEnd and PreCompact hooks fill.
//!
//! The queue is a directory of small job files (`HOME/memory-queue/*.json`) written atomically by
//! the hook, so a hook returns at once and a job survives a daemon restart. Which transcripts were
//! done, and up to which byte, is recorded in `HOME/memory-done.json`: a transcript that grows
//! (a resumed session, a compaction) is read again from where the last extraction stopped, and
//! nothing is extracted twice.

use crate::ComponentError;
use kite_coord::{Reply, Service};
use kite_memory::{BuiltinExtractor, CommandExtractor, Extractor, Transcript, Vault, VaultConfig};
use kite_proto::ops::{MAX_RECALL_K, MEMORY_OPS};
use kite_proto::{ErrorBody, MemoryOp, Refusal, Request};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use kite_proto::ops::RecalledNote as Recalled;

/// Requests waiting for the memory thread; beyond this a request is refused as busy, so a flood
/// of recalls cannot grow the daemon.
const QUEUE: usize = 256;

/// One transcript to extract notes from.
#[derive(Debug, Serialize, Deserialize)]
pub struct Job {
    pub transcript: PathBuf,
    pub session_id: Option<String>,
    pub event: String,
}

pub fn queue_dir(home: &Path) -> PathBuf {
    kite_coord::Home::new(home).memory_queue()
}

/// Queues a job (atomically: write then rename) and returns at once.
pub fn enqueue(home: &Path, job: &Job) -> Result<PathBuf, ComponentError> {
    let dir = queue_dir(home);
    std::fs::create_dir_all(&dir).map_err(ComponentError::io("create", &dir))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let path = dir.join(format!("{stamp}-{}.json", std::process::id()));
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(job)?).map_err(ComponentError::io("write", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(ComponentError::io("move a job into", &path))?;
    // Wake the worker if the daemon is up (no need to wait for the answer); it also scans on its own.
    if let Ok(mut s) = UnixStream::connect(kite_coord::Home::new(home).socket()) {
        let _ = s.set_write_timeout(Some(Duration::from_millis(100)));
        let _ = s.write_all(b"{\"id\":1,\"op\":\"memory.poke\"}\n");
    }
    Ok(path)
}

/// The best active notes for `query`, with their bodies.
pub fn recall(vault: &mut Vault, query: &str, k: usize) -> Result<Vec<Recalled>, String> {
    check_k(k).map_err(|e| e.message)?;
    let hits = vault.recall(query, k).map_err(|e| e.to_string())?;
    Ok(hits
        .hits
        .into_iter()
        .filter_map(|h| {
            let note = vault.show(&h.id).ok()?;
            Some(Recalled {
                id: h.id,
                title: h.title,
                kind: h.kind,
                score: h.score,
                similarity: h.similarity,
                updated: h.updated,
                body: note.body,
            })
        })
        .collect())
}

/// The injection policy for one ask on the wire (the daemon's `memory.inject`, and a hook's
/// in-process fallback when no daemon can be had).
pub fn inject(
    vault: &mut Vault,
    a: kite_proto::ops::MemoryInject,
) -> Result<kite_proto::ops::Injection, String> {
    let d = kite_memory::Ask::default();
    let ask = kite_memory::Ask {
        pinned: a.pinned,
        task: a.task,
        prompt: a.prompt,
        work: a.work,
        exclude: a.exclude,
        budget: a.budget.unwrap_or(d.budget),
        pinned_share: d.pinned_share,
        min_similarity: a.min_similarity.unwrap_or(d.min_similarity),
        relative: d.relative,
        status_days: a.status_days.unwrap_or(d.status_days),
        status_similarity: a.status_similarity.unwrap_or(d.status_similarity),
        recent_status: d.recent_status,
        k: a.k.unwrap_or(d.k),
    };
    let got = vault.inject(&ask).map_err(|e| e.to_string())?;
    for n in &got.notes {
        tracing::debug!(note = %n.id, reason = n.reason.describe(), similarity = ?n.similarity, "injected");
    }
    let notes = got
        .notes
        .into_iter()
        .map(|n| kite_proto::ops::InjectedNote {
            id: n.id,
            title: n.title,
            kind: n.kind,
            updated: n.updated,
            body: n.body,
            reason: n.reason.as_str().to_string(),
            score: n.score,
            similarity: n.similarity,
        })
        .collect();
    Ok(kite_proto::ops::Injection {
        notes,
        warning: got.warning,
    })
}

fn check_k(k: usize) -> Result<(), ErrorBody> {
    if (1..=MAX_RECALL_K).contains(&k) {
        Ok(())
    } else {
        Err(Refusal::RecallSize {
            k,
            max: MAX_RECALL_K,
        }
        .into())
    }
}

/// The memory component as a service of the daemon: requests go to its thread through a bounded
/// queue.
pub struct MemoryService {
    tx: SyncSender<(Request, Reply)>,
}

impl Service for MemoryService {
    fn ops(&self) -> &'static [&'static str] {
        MEMORY_OPS
    }

    fn submit(&self, req: Request, reply: Reply) {
        match self.tx.try_send((req, reply)) {
            Ok(()) => {}
            Err(TrySendError::Full((_, reply))) => {
                reply.send(Err(Refusal::MemoryBusy(QUEUE).into()))
            }
            Err(TrySendError::Disconnected((_, reply))) => {
                reply.send(Err(Refusal::MemoryOff.into()))
            }
        }
    }
}

/// The memory component's vault as the daemon sees it at exit.
enum Slot {
    /// Not opened yet (the daemon is not listening yet, or the model is loading: the loader
    /// holds the slot's lock meanwhile).
    Pending,
    Open(Arc<Mutex<Vault>>),
    /// The daemon is exiting: never open it.
    Closed,
}

/// What the daemon keeps of the memory component: the service to route to, and the vault's slot
/// (so it can quiesce it before exiting).
pub struct Memory {
    service: Arc<MemoryService>,
    slot: Arc<Mutex<Slot>>,
    /// Tells the thread the daemon holds the home (see [`crate::Component::listening`]).
    listening: Option<std::sync::mpsc::Sender<()>>,
}

impl crate::Component for Memory {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn services(&self) -> Vec<Arc<dyn Service>> {
        vec![self.service.clone()]
    }

    fn listening(&mut self) {
        if let Some(tx) = self.listening.take() {
            let _ = tx.send(());
        }
    }

    fn finish(&mut self) {
        self.listening = None;
        self.quiesce();
    }
}

impl Memory {
    /// Makes sure no embedding call is in flight or can start, for the rest of the process:
    /// onnxruntime aborts the process if its environment is torn down at exit under a running
    /// session (seen once as SIGABRT on SIGTERM during the model load). Waits for a model load in
    /// progress, then holds the vault's lock through exit.
    fn quiesce(&self) {
        let Ok(mut slot) = self.slot.lock() else {
            return;
        };
        if let Slot::Open(vault) = std::mem::replace(&mut *slot, Slot::Closed) {
            if let Ok(guard) = vault.lock() {
                std::mem::forget(guard);
            }
        }
        std::mem::forget(slot);
    }
}

/// Starts the memory component: the service answers at once; its thread opens the vault and
/// loads the model, then answers what queued meanwhile. A vault that cannot be opened leaves the
/// component answering every request with the reason.
/// The thread waits for [`crate::Component::listening`]; if it never comes (the daemon was
/// refused), the vault is never opened.
pub fn start(
    home: PathBuf,
    config: VaultConfig,
    extract_command: Option<String>,
) -> Result<Memory, ComponentError> {
    let (listening_tx, listening) = std::sync::mpsc::channel::<()>();
    let (tx, rx) = sync_channel::<(Request, Reply)>(QUEUE);
    let shared = Arc::new(Mutex::new(Slot::Pending));
    let slot = shared.clone();
    std::thread::Builder::new()
        .name("kite-memory".into())
        .spawn(move || {
            if listening.recv().is_err() {
                return;
            }
            let vault_dir = config.dir.clone();
            let Ok(mut held) = slot.lock() else { return };
            if matches!(*held, Slot::Closed) {
                return;
            }
            let vault = match Vault::open(config) {
                Ok(mut v) => {
                    // Load the model now, so the first hook does not pay for it.
                    if let Err(e) = v.embedder() {
                        tracing::warn!("no embedding model, recall is keyword-only: {e}");
                    }
                    Arc::new(Mutex::new(v))
                }
                Err(e) => {
                    drop(held);
                    let why = format!("cannot open the vault in {}: {e}", vault_dir.display());
                    tracing::warn!("the memory component is off: {why}");
                    for (_, reply) in rx {
                        reply.send(Err(Refusal::MemoryFailed(why.clone()).into()));
                    }
                    return;
                }
            };
            *held = Slot::Open(vault.clone());
            drop(held);
            let (poke_tx, poke_rx) = std::sync::mpsc::channel::<()>();
            let worker_vault = vault.clone();
            let spawned = std::thread::Builder::new()
                .name("kite-memory-worker".into())
                .spawn(move || loop {
                    if let Err(e) = drain_queue(&home, &worker_vault, extract_command.as_deref()) {
                        tracing::warn!("memory worker: {e}");
                    }
                    if let Err(std::sync::mpsc::RecvTimeoutError::Disconnected) =
                        poke_rx.recv_timeout(Duration::from_secs(2))
                    {
                        return;
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!("extraction worker off: {e}");
            }
            tracing::info!(vault = %vault_dir.display(), "memory component ready");
            serve(rx, &vault, &poke_tx);
        })
        .map_err(|source| ComponentError::Thread {
            name: "kite-memory",
            source,
        })?;
    Ok(Memory {
        service: Arc::new(MemoryService { tx }),
        slot: shared,
        listening: Some(listening_tx),
    })
}

fn serve(rx: Receiver<(Request, Reply)>, vault: &Mutex<Vault>, poke: &std::sync::mpsc::Sender<()>) {
    for (req, reply) in rx {
        let result = handle(&req, vault, poke);
        reply.send(result);
    }
}

fn handle(
    req: &Request,
    vault: &Mutex<Vault>,
    poke: &std::sync::mpsc::Sender<()>,
) -> Result<Value, ErrorBody> {
    let lock = || {
        vault
            .lock()
            .map_err(|_| ErrorBody::from(Refusal::internal("the vault lock was poisoned")))
    };
    match MemoryOp::parse(&req.op, req.args.as_deref())? {
        MemoryOp::Poke(_) => {
            let _ = poke.send(());
            Ok(serde_json::json!({}))
        }
        MemoryOp::Recall(a) => {
            let mut v = lock()?;
            let notes = recall(&mut v, &a.query, a.k)
                .map_err(|e| ErrorBody::from(Refusal::BadQuery(e.to_string())))?;
            let warning = v.embedder().err().map(|e| e.to_string());
            Ok(
                serde_json::to_value(kite_proto::ops::Recalled { notes, warning })
                    .unwrap_or_default(),
            )
        }
        MemoryOp::Inject(a) => {
            let got =
                inject(&mut *lock()?, a).map_err(|e| ErrorBody::from(Refusal::BadQuery(e)))?;
            Ok(serde_json::to_value(got).unwrap_or_default())
        }
        MemoryOp::Add(a) => {
            let outcome = lock()?
                .add(new_note(a))
                .map_err(|e| ErrorBody::from(Refusal::BadNote(e.to_string())))?;
            Ok(serde_json::to_value(outcome).unwrap_or_default())
        }
    }
}

fn done_path(home: &Path) -> PathBuf {
    kite_coord::Home::new(home).memory_done()
}

fn load_done(home: &Path) -> BTreeMap<String, u64> {
    std::fs::read(done_path(home))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn save_done(home: &Path, done: &BTreeMap<String, u64>) -> Result<(), ComponentError> {
    let tmp = done_path(home).with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(done)?)
        .map_err(ComponentError::io("write", &tmp))?;
    std::fs::rename(&tmp, done_path(home))
        .map_err(ComponentError::io("replace", done_path(home)))?;
    Ok(())
}

/// Works through every queued job, oldest first.
fn drain_queue(
    home: &Path,
    vault: &Mutex<Vault>,
    extract_command: Option<&str>,
) -> Result<(), ComponentError> {
    let dir = queue_dir(home);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    let mut jobs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    jobs.sort();
    for path in jobs {
        let job: Job = match std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
        {
            Some(j) => j,
            None => {
                tracing::warn!(job = %path.display(), "unreadable extraction job, set aside");
                let _ = std::fs::rename(&path, path.with_extension("bad"));
                continue;
            }
        };
        match extract_job(home, vault, &job, extract_command) {
            Ok(n) => tracing::info!(transcript = %job.transcript.display(), notes = n, "extracted"),
            Err(e) => {
                tracing::warn!(transcript = %job.transcript.display(), "extraction failed: {e}")
            }
        }
        let _ = std::fs::remove_file(&path);
    }
    Ok(())
}

/// What a file holds past `offset`; `None` when it has not grown.
fn read_from(path: &Path, offset: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len <= offset {
        return Ok(None);
    }
    f.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    f.take(len - offset).read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// Extracts the part of a transcript not done before; returns how many notes were written.
pub fn extract_job(
    home: &Path,
    vault: &Mutex<Vault>,
    job: &Job,
    extract_command: Option<&str>,
) -> Result<usize, ComponentError> {
    let key = job.transcript.display().to_string();
    let mut done = load_done(home);
    let offset = done.get(&key).copied().unwrap_or(0);
    let Some(bytes) =
        read_from(&job.transcript, offset).map_err(ComponentError::io("read", &job.transcript))?
    else {
        return Ok(0);
    };
    // Only whole lines: a line still being written is read next time.
    let Some(end) = bytes.iter().rposition(|b| *b == b'\n') else {
        return Ok(0);
    };
    let text = String::from_utf8_lossy(&bytes[..=end]);
    let transcript = Transcript::parse(&text);
    let source = format!(
        "transcript:{}",
        job.session_id
            .clone()
            .or(transcript.session_id.clone())
            .unwrap_or_else(|| key.clone())
    );
    let extractor: Box<dyn Extractor> = match extract_command {
        Some(c) => Box::new(CommandExtractor::new(
            kite_agent::claude::extractor_command(c),
        )),
        None => Box::new(BuiltinExtractor::default()),
    };
    // The extractor may run a command for minutes: the vault is locked only to add.
    let (notes, skipped) =
        kite_memory::extract::prepare(extractor.extract(&transcript, &source)?, &source);
    for why in &skipped {
        tracing::warn!(transcript = %job.transcript.display(), "a proposed note was set aside: {why}");
    }
    let written = notes.len();
    {
        let mut v = vault.lock().map_err(|_| ComponentError::Poisoned)?;
        for n in notes {
            v.add(n)?;
        }
    }
    done.insert(key, offset + end as u64 + 1);
    save_done(home, &done)?;
    Ok(written)
}

/// The note a `memory.add` asks for (kind `fact` unless it says otherwise).
pub(crate) fn new_note(a: kite_proto::ops::MemoryAdd) -> kite_memory::NewNote {
    kite_memory::NewNote {
        kind: kite_memory::Kind::parse(a.kind.as_deref().unwrap_or("fact")),
        title: a.title,
        tags: a.tags,
        project: None,
        source: a.source,
        body: a.body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recall_size_is_bounded_before_anything_is_allocated() {
        assert!(check_k(1).is_ok() && check_k(MAX_RECALL_K).is_ok());
        for k in [0, MAX_RECALL_K + 1, 1_000_000_000_000, 1 << 62] {
            let e = check_k(k).unwrap_err();
            assert_eq!(e.code, kite_proto::ErrorCode::BadRequest);
            assert!(e.message.contains("between 1 and 100"), "{}", e.message);
        }
    }
}
