//! Lock operations. The lock table (kite-core) decides; this module persists grants, answers
//! queued requests the moment they are granted (the grant is pushed as the reply to the waiting
//! request, over its open connection — nobody polls), and tells the session's other connections.

use super::{Answer, ConnId, Handled, State, Wait};
use kite_core::{normalize, Grant, LockPath, Requested};
use kite_proto::ops::{LockAcquire, LockGranted, LockRelease, LockWaiting, Locks, RefusedDeadlock, Released};

/// Refused deadlocks `lock.list` and `status` remember.
const DEADLOCKS_KEPT: usize = 10;
use kite_proto::{ErrorBody, LogEvent, Pushed, Refusal};
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

fn granted(g: &Grant) -> LockGranted {
    LockGranted { path: g.path.clone(), mode: g.mode, session: g.session.clone(), token: g.token }
}

impl State {
    pub(super) fn lock_path(&self, cwd: Option<&str>, path: &str) -> Result<LockPath, ErrorBody> {
        let cwd = match cwd {
            Some(c) if Path::new(c).is_absolute() => Path::new(c).to_path_buf(),
            Some(c) => return Err(Refusal::CwdNotAbsolute(c.to_string()).into()),
            None => self.root.clone(),
        };
        let resolved = resolve_existing(&self.root, &cwd, path);
        normalize(&self.root, &cwd, &resolved)
            .map_err(|error| Refusal::Path { error, resolved: (resolved != path).then(|| resolved.clone()) }.into())
    }

    pub(super) fn lock_acquire(&mut self, conn: ConnId, req_id: u64, a: LockAcquire) -> Handled<Answer<kite_proto::ops::LockGranted>> {
        self.touch(&a.session)?;
        let path = self.lock_path(a.cwd.as_deref(), &a.path)?;
        let requested = match self.locks.request(&a.session, path, a.mode, a.wait) {
            Ok(r) => r,
            Err(e) => {
                // A refused deadlock is worth seeing after the fact (the dashboard shows its
                // cycle). The refusal changes nothing durable, so it is kept in memory only.
                if let kite_core::LockError::Deadlock { path, cycle } = &e {
                    let at_ms = self.now_ms;
                    self.deadlocks.push(RefusedDeadlock { path: path.clone(), session: a.session.clone(), cycle: cycle.clone(), at_ms });
                    let over = self.deadlocks.len().saturating_sub(DEADLOCKS_KEPT);
                    self.deadlocks.drain(..over);
                }
                return Err(Refusal::from(e).into());
            }
        };
        match requested {
            Requested::Granted(g) => {
                if g.ticket.is_some() {
                    // A kept place whose turn had come while its client was away.
                    self.store.delete_wait(&g.path, &g.session).map_err(super::internal)?;
                }
                self.persist_grant(&g)?;
                Ok(Answer::Now(granted(&g)))
            }
            Requested::AlreadyHeld(g) => Ok(Answer::Now(granted(&g))),
            Requested::Queued { ticket, blockers } => {
                // Its place survives a restart or a take-over (a kept place asked again keeps
                // its first time).
                let path = self.locks.waiter(ticket).map(|w| w.path.as_str().to_string()).unwrap_or_default();
                self.store.insert_wait(&path, &a.session, a.mode, self.now_ms).map_err(super::internal)?;
                // A timeout too large to be a point in time waits without one.
                let deadline = a.timeout_ms.and_then(|ms| Instant::now().checked_add(Duration::from_millis(ms)));
                self.waits.insert(ticket, Wait { conn, req_id, deadline });
                tracing::debug!(session = a.session, path = a.path, ?blockers, "lock request queued");
                Ok(Answer::Later)
            }
        }
    }

    /// The recorded wait of queued request `ticket` goes (it was withdrawn or timed out).
    pub(super) fn forget_wait(&mut self, ticket: u64) -> Result<(), ErrorBody> {
        match self.locks.waiter(ticket) {
            Some(w) => self.store.delete_wait(w.path.as_str(), &w.session).map_err(super::internal),
            None => Ok(()),
        }
    }

    fn persist_grant(&mut self, g: &Grant) -> Result<(), ErrorBody> {
        self.store.insert_lock(&g.path, &g.session, g.mode, g.token, self.now_ms).map_err(super::internal)?;
        self.event(LogEvent::LockGranted { path: g.path.to_string(), session: g.session.clone(), mode: g.mode, token: g.token })
    }

    /// Persists grants handed on by a release and answers their waiting requests.
    pub(super) fn apply_grants(&mut self, grants: Vec<Grant>) -> Result<(), ErrorBody> {
        for g in grants {
            self.persist_grant(&g)?;
            let pushed = Pushed::LockGranted(granted(&g));
            let data = serde_json::to_value(granted(&g)).map_err(super::internal)?;
            let waiter = g.ticket.and_then(|t| self.waits.remove(&t));
            if g.ticket.is_some() {
                self.store.delete_wait(&g.path, &g.session).map_err(super::internal)?;
                self.tell(&g.session, "lock.granted", format!("the lock on {} you waited for is yours now (token {})", g.path, g.token));
            }
            if let Some(w) = &waiter {
                self.reply(w.conn, w.req_id, Ok(data.clone()));
            }
            // The session's other connections (its MCP server, say) hear of it too.
            let others: Vec<ConnId> = self
                .live
                .get(&g.session)
                .map(|l| l.conns.iter().copied().filter(|c| waiter.as_ref().is_none_or(|w| w.conn != *c)).collect())
                .unwrap_or_default();
            for c in others {
                self.push(c, &pushed);
            }
        }
        Ok(())
    }

    pub(super) fn lock_release(&mut self, a: LockRelease) -> Handled<kite_proto::ops::Released> {
        self.touch(&a.session)?;
        let path = self.lock_path(a.cwd.as_deref(), &a.path)?;
        let grants = self.locks.release(&a.session, &path).map_err(|e| ErrorBody::from(Refusal::from(e)))?;
        self.store.delete_lock(path.as_str(), &a.session).map_err(super::internal)?;
        self.event(LogEvent::LockReleased { path: path.as_str().to_string(), session: a.session.clone(), reason: None })?;
        let handed: Vec<LockGranted> = grants.iter().map(granted).collect();
        self.apply_grants(grants)?;
        Ok(Released { path: path.as_str().to_string(), granted: handed })
    }

    pub(super) fn locks_view(&self) -> Locks {
        Locks {
            held: self
                .locks
                .held()
                .iter()
                .map(|h| LockGranted { path: h.path.as_str().to_string(), mode: h.mode, session: h.session.clone(), token: h.token })
                .collect(),
            waiting: self
                .locks
                .waiting()
                .map(|w| LockWaiting { path: w.path.as_str().to_string(), mode: w.mode, session: w.session.clone() })
                .collect(),
            deadlocks: self.deadlocks.clone(),
        }
    }

    pub(super) fn lock_list(&mut self) -> Handled<kite_proto::ops::Locks> {
        Ok(self.locks_view())
    }

    /// Answers waits whose timeout passed with an error, and hands on what their leaving frees.
    pub(super) fn expire_waits(&mut self, now: Instant) -> Result<(), ErrorBody> {
        if self.kept_until.is_some_and(|d| d <= now) {
            // The places kept since a restart whose clients did not ask again in time go, and
            // whoever they held back moves on.
            self.kept_until = None;
            let (gone, grants) = self.locks.drop_absent();
            for w in &gone {
                tracing::info!(session = w.session, path = w.path.as_str(), "a kept lock-wait place was given up: its client did not ask again");
                self.store.delete_wait(w.path.as_str(), &w.session).map_err(super::internal)?;
            }
            self.apply_grants(grants)?;
        }
        let expired: Vec<u64> =
            self.waits.iter().filter(|(_, w)| w.deadline.is_some_and(|d| d <= now)).map(|(t, _)| *t).collect();
        for t in expired {
            let Some(w) = self.waits.remove(&t) else { continue };
            let path = self.locks.waiter(t).map(|x| x.path.as_str().to_string()).unwrap_or_default();
            self.forget_wait(t)?;
            let grants = self.locks.cancel(t);
            self.reply(w.conn, w.req_id, Err(Refusal::LockTimeout(path.to_string()).into()));
            self.apply_grants(grants)?;
        }
        Ok(())
    }
}

/// The path as the file system sees it: the part that exists is resolved, symbolic links
/// included, so two spellings of one file (`src/a.rs`, `alias/a.rs` with `alias -> src`) are
/// one lock path, and a link that leads out of the project is seen to. The part that does not
/// exist yet, and everything from the first glob pattern on, is kept as written for the lexical
/// normalization that follows.
fn resolve_existing(root: &Path, cwd: &Path, input: &str) -> String {
    use std::path::{Component, PathBuf};
    if input.contains(['\0', '\n', '\r']) {
        return input.to_string();
    }
    let joined = if Path::new(input).is_absolute() { PathBuf::from(input) } else { cwd.join(input) };
    // The root is canonical already: start there when the path is under it, so a lock request
    // costs one stat per component inside the project (this runs on the state owner).
    let (mut out, rest) = match joined.strip_prefix(root) {
        Ok(rest) => (root.to_path_buf(), rest.to_path_buf()),
        Err(_) => (PathBuf::from("/"), joined.clone()),
    };
    let mut resolving = true;
    for c in rest.components() {
        match c {
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
            Component::ParentDir if resolving => {
                out.pop();
            }
            Component::ParentDir => out.push(".."),
            Component::Normal(part) => {
                let glob = part.to_str().is_none_or(|p| p.contains(['*', '?', '[', '{']));
                if resolving && !glob {
                    let next = out.join(part);
                    match std::fs::symlink_metadata(&next) {
                        Ok(m) if m.file_type().is_symlink() => {
                            out = next.canonicalize().unwrap_or(next);
                            continue;
                        }
                        Ok(_) => {
                            out = next;
                            continue;
                        }
                        Err(_) => {}
                    }
                }
                resolving = false;
                out.push(part);
            }
        }
    }
    out.to_str().map(str::to_string).unwrap_or_else(|| input.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (torture run, finding 7): lock paths are checked by what they name.
    #[test]
    fn symbolic_links_are_resolved_before_normalizing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("src")).unwrap();
        std::fs::write(root.join("src/a.rs"), "").unwrap();
        std::os::unix::fs::symlink(root.join("src"), root.join("alias")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("link_out")).unwrap();
        let norm = |p: &str| normalize(&root, &root, &resolve_existing(&root, &root, p)).map(|l| l.as_str().to_string());
        assert_eq!(norm("alias/a.rs").unwrap(), "src/a.rs");
        assert_eq!(norm("alias/new.rs").unwrap(), "src/new.rs", "a file not there yet, in a linked directory");
        assert_eq!(norm("alias/*.rs").unwrap(), "src/*.rs");
        assert_eq!(norm("alias/../src/a.rs").unwrap(), "src/a.rs");
        assert!(matches!(norm("link_out/passwd"), Err(kite_core::PathError::OutsideRoot(..))));
        assert_eq!(norm("not/there/yet/../x").unwrap(), "not/there/x");
    }
}
