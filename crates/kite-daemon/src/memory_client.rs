//! The one way a client process reaches the vault: the daemon's memory component (one warm model
//! for every session), else the vault opened in this process. Used by the hooks, the MCP server's
//! vault tools, the strategy loop's note source and the CLI.
//!
//! One rule decides between them, and each caller chooses only its deadline and whether it may
//! open the vault itself ([`Fallback`]): a CLI can wait; a hook cannot, and the prompt hook must
//! never load the model. The rule: the daemon's answer is the answer, and so is its refusal of the
//! request itself (a bad `k`, an empty query); no daemon listening, a memory component that is
//! off, busy or failing, a lost connection or a passed deadline fall back.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use kite_memory::{Vault, VaultConfig};
use kite_proto::client::blocking;
use kite_proto::ops::{Injection, MemoryAdd, MemoryInject, MemoryRecall};
use kite_proto::{memory_op, ClientError, ErrorCode, Operation};
use serde_json::Value;

use crate::memory::Recalled;

/// Why the vault gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum VaultCallError {
    /// The daemon refused the request itself (a bad `k`, an empty query): that is the answer.
    #[error(transparent)]
    Refused(ClientError),
    /// The daemon did not answer and this caller may not open the vault itself.
    #[error("the daemon's memory did not answer: {0}")]
    NoAnswer(ClientError),
    #[error("cannot open the vault in {}: {source}", dir.display())]
    Open {
        dir: PathBuf,
        #[source]
        source: kite_memory::MemoryError,
    },
    #[error("the vault lock was poisoned")]
    Poisoned,
    /// The vault in this process refused or failed the request.
    #[error("{0}")]
    Here(String),
}

/// What to do when the daemon cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Open the vault here (on first use; the model loads then) and answer from it.
    InProcess,
    /// Give up with the reason (a prompt hook adds nothing rather than load a model).
    Nothing,
}

/// The vault, through the daemon or in process.
pub struct MemoryClient {
    /// The daemon: the home's socket, or the team's daemon on another machine.
    to: kite_proto::Endpoint,
    deadline: Duration,
    fallback: Fallback,
    config: VaultConfig,
    vault: Mutex<Option<Vault>>,
}

/// A recall or an add may wait behind an extraction on the memory thread: what a caller that can
/// wait (the CLI, the MCP server) gives it.
pub const PATIENT: Duration = Duration::from_secs(30);

/// Whether a daemon's failure means "ask the vault here" (`true`) or is the answer (`false`).
fn falls_back(e: &ClientError) -> bool {
    match e {
        ClientError::Daemon(b) => !matches!(b.code, ErrorCode::BadRequest | ErrorCode::NotFound),
        _ => true,
    }
}

impl MemoryClient {
    pub fn new(to: kite_proto::Endpoint, config: VaultConfig, deadline: Duration, fallback: Fallback) -> MemoryClient {
        MemoryClient { to, deadline, fallback, config, vault: Mutex::new(None) }
    }

    /// Asks the daemon; on a failure the rule says to fall back on, runs `here` on the vault in
    /// this process (or says why not).
    fn ask<O: Operation>(&self, args: O::Args, here: impl FnOnce(&mut Vault) -> Result<O::Reply, String>) -> Result<O::Reply, VaultCallError>
    where
        O::Args: Send + 'static,
        O::Reply: Send + 'static,
    {
        match blocking::request_to::<O>(&self.to, args, self.deadline) {
            Ok(r) => return Ok(r),
            Err(e) if !falls_back(&e) => return Err(VaultCallError::Refused(e)),
            Err(e) if self.fallback == Fallback::Nothing => return Err(VaultCallError::NoAnswer(e)),
            Err(e) => tracing::debug!("{}: the daemon's memory did not answer ({e}); using the vault in process", O::NAME),
        }
        let mut guard = self.vault.lock().map_err(|_| VaultCallError::Poisoned)?;
        if guard.is_none() {
            let v = Vault::open(self.config.clone()).map_err(|source| VaultCallError::Open { dir: self.config.dir.clone(), source })?;
            *guard = Some(v);
        }
        here(guard.as_mut().expect("opened above")).map_err(VaultCallError::Here)
    }

    /// The best notes for `query`.
    pub fn recall(&self, query: &str, k: usize) -> Result<Vec<Recalled>, VaultCallError> {
        let args = MemoryRecall { query: query.to_string(), k };
        let r = self.ask::<memory_op::Recall>(args, |v| {
            Ok(kite_proto::ops::Recalled { notes: crate::memory::recall(v, query, k)?, warning: None })
        })?;
        Ok(r.notes)
    }

    /// The injection policy for one ask.
    pub fn inject(&self, ask: MemoryInject) -> Result<Injection, VaultCallError> {
        let here = ask.clone();
        self.ask::<memory_op::Inject>(ask, move |v| crate::memory::inject(v, here))
    }

    /// Adds a note (as `memory.add`).
    pub fn add(&self, a: MemoryAdd) -> Result<Value, VaultCallError> {
        let here = a.clone();
        self.ask::<memory_op::Add>(a, move |v| {
            let outcome = v.add(crate::memory::new_note(here)).map_err(|e| e.to_string())?;
            serde_json::to_value(outcome).map_err(|e| e.to_string())
        })
    }
}

/// The MCP server's vault tools.
impl kite_mcp::VaultTools for MemoryClient {
    fn search(&self, query: &str, k: usize) -> Result<Value, String> {
        serde_json::to_value(self.recall(query, k).map_err(|e| e.to_string())?).map_err(|e| e.to_string())
    }

    fn add(&self, title: &str, body: &str, kind: Option<&str>, tags: &[String]) -> Result<Value, String> {
        let a = MemoryAdd { title: title.into(), body: body.into(), kind: kind.map(str::to_string), tags: tags.to_vec(), source: Some("mcp".into()) };
        MemoryClient::add(self, a).map_err(|e| e.to_string())
    }
}

/// The strategy loop's note source (templates with a `topic` get matching notes): the client
/// shared with the blocking thread each search runs on.
pub struct Notes(pub std::sync::Arc<MemoryClient>);

impl kite_strategy::NoteSource for Notes {
    fn search<'a>(&'a self, topic: &'a str, k: usize) -> kite_strategy::BoxFuture<'a, Result<Vec<kite_strategy::NoteHit>, kite_strategy::SourceError>> {
        let (me, topic) = (self.0.clone(), topic.to_string());
        Box::pin(async move {
            let vault = |e: String| kite_strategy::SourceError::Vault(e);
            let notes = tokio::task::spawn_blocking(move || me.recall(&topic, k))
                .await
                .map_err(|e| vault(e.to_string()))?
                .map_err(|e| vault(e.to_string()))?;
            Ok(notes
                .into_iter()
                .map(|n| kite_strategy::NoteHit { id: n.id, title: n.title, kind: Some(n.kind), score: n.score, body: n.body })
                .collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daemons_refusal_of_the_request_is_the_answer_and_anything_else_falls_back() {
        let refusal = |code| ClientError::Daemon(kite_proto::ErrorBody::new(code, "no"));
        assert!(!falls_back(&refusal(ErrorCode::BadRequest)));
        assert!(!falls_back(&refusal(ErrorCode::NotFound)));
        assert!(falls_back(&refusal(ErrorCode::Busy)));
        assert!(falls_back(&refusal(ErrorCode::Internal)));
        assert!(falls_back(&ClientError::NoDaemon("/nowhere".into())));
        assert!(falls_back(&ClientError::Io(std::io::Error::from(std::io::ErrorKind::TimedOut))));
    }

    #[test]
    fn with_no_daemon_and_no_fallback_it_says_so_without_opening_anything() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = VaultConfig::new(dir.path().join("vault"), dir.path().join("index.db"));
        let c = MemoryClient::new(kite_proto::Endpoint::Unix(dir.path().join("kite.sock")), cfg, Duration::from_millis(100), Fallback::Nothing);
        let e = c.recall("anything", 3).unwrap_err();
        assert!(matches!(e, VaultCallError::NoAnswer(_)), "{e}");
        assert!(!dir.path().join("index.db").exists(), "nothing was opened");
    }
}
