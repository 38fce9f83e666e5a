//! Sessions: registration, heartbeats, binding connections for pushes, the end of a session and
//! the reaper. A session's end — asked for or reaped — releases its locks (waiters get them) and
//! puts its active tasks back to pending; its claims die with it, so a late `done` is refused.

use super::{ConnId, Handled, Live, State};
use kite_core::TaskStatus;
use kite_proto::ops::{SessionId, SessionInfo, SessionRef, SessionRegister, Status};
use kite_proto::{LogEvent, SessionEnd};
use kite_proto::{ErrorBody, Refusal};
use serde_json::json;
use tokio::time::Instant;

impl State {
    pub(super) fn hello(&mut self) -> Handled<kite_proto::ops::Hello> {
        Ok(crate::service::hello(&self.root, &self.home))
    }

    pub(super) fn status(&mut self) -> Handled<kite_proto::ops::Status> {
        let sessions = self.session_infos(true)?;
        let queue = self.store.counts_by_status().map_err(super::internal)?;
        Ok(Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            root: self.root.display().to_string(),
            sessions,
            queue,
            locks: self.locks_view(),
            counters: self.counters()?,
            cost: self.cost_view()?,
            store: self.store_info.clone(),
            refused: match self.accept.refused.load(std::sync::atomic::Ordering::Relaxed) {
                0 => None,
                total => Some(kite_proto::ops::Refused {
                    total,
                    last_at_ms: self.accept.last_ms.load(std::sync::atomic::Ordering::Relaxed),
                    fd_limit: self.accept.fd_limit,
                }),
            },
        })
    }

    pub(super) fn counters(&self) -> Result<kite_proto::ops::Counters, ErrorBody> {
        let c = |n: &str| self.pending.counter(n) as u64;
        Ok(kite_proto::ops::Counters { completed: c("completed"), pruned: c("pruned"), failed: c("failed") })
    }

    fn session_infos(&self, live_only: bool) -> Result<Vec<SessionInfo>, ErrorBody> {
        let now = Instant::now();
        Ok(self
            .store
            .sessions(live_only)
            .map_err(super::internal)?
            .into_iter()
            .map(|row| {
                let live = self.live.get(&row.id);
                SessionInfo {
                    idle_ms: live.map(|l| now.duration_since(l.last_seen).as_millis() as i64),
                    connections: live.map_or(0, |l| l.conns.len()),
                    told: match live {
                        Some(l) => l.news.told().cloned().collect(),
                        None => self.told_ended.get(&row.id),
                    },
                    stop: live.and_then(|l| l.news.stop.clone()),
                    id: row.id,
                    name: row.name,
                    state: row.state,
                    registered_at_ms: row.registered_at_ms,
                }
            })
            .collect())
    }

    pub(super) fn session_register(&mut self, conn: ConnId, a: SessionRegister) -> Handled<kite_proto::ops::SessionId> {
        let name = a.name.trim();
        if name.is_empty() {
            return Err(Refusal::EmptySessionName.into());
        }
        let key = a.key.as_deref().map(str::trim).filter(|k| !k.is_empty());
        if let Some(key) = key {
            // The same agent process registering again (its hook, then its MCP server, or a
            // resumed session): its live session. A registration that does not attach (a hook,
            // which knows the Claude session's id) names it; an attaching one keeps the name.
            let found = self.live.iter().find(|(_, l)| l.key.as_deref() == Some(key)).map(|(id, _)| id.clone());
            if let Some(id) = found {
                if !a.attach && self.live[&id].name != name {
                    self.store.rename_session(&id, name).map_err(super::internal)?;
                    self.live.get_mut(&id).expect("found above").name = name.to_string();
                }
                self.touched.push(id.clone());
                if a.attach {
                    self.bind(conn, &id);
                }
                return Ok(SessionId { id });
            }
        }
        let n = self.pending.bump("session_seq", 1);
        let id = format!("s{n}");
        self.store.insert_session(&id, name, key, self.now_ms).map_err(super::internal)?;
        self.live.insert(id.clone(), Live::new(name.to_string(), key.map(str::to_string)));
        if a.attach {
            self.bind(conn, &id);
        }
        self.event(LogEvent::SessionRegistered { session: id.to_string(), name: name.to_string() })?;
        Ok(SessionId { id })
    }

    fn bind(&mut self, conn: ConnId, session: &str) {
        if let (Some(c), Some(l)) = (self.conns.get_mut(&conn), self.live.get_mut(session)) {
            c.sessions.insert(session.to_string());
            l.conns.insert(conn);
        }
    }

    /// Checks that `session` is live; the request counts as its heartbeat once it succeeds (a
    /// refused request is no sign of life: a session sending only those is still reaped).
    pub(super) fn touch(&mut self, session: &str) -> Result<(), ErrorBody> {
        if self.live.contains_key(session) {
            self.touched.push(session.to_string());
            return Ok(());
        }
        Err(match self.store.session(session).map_err(super::internal)? {
            Some(s) => Refusal::SessionGone { session: session.to_string(), state: s.state.to_string() }.into(),
            None => Refusal::NoSession(session.to_string()).into(),
        })
    }

    pub(super) fn session_attach(&mut self, conn: ConnId, a: SessionRef) -> Handled<serde_json::Value> {
        self.touch(&a.session)?;
        self.bind(conn, &a.session);
        Ok(json!({}))
    }

    pub(super) fn session_heartbeat(&mut self, a: SessionRef) -> Handled<serde_json::Value> {
        self.touch(&a.session)?;
        Ok(json!({}))
    }

    pub(super) fn session_end(&mut self, a: SessionRef) -> Handled<serde_json::Value> {
        self.touch(&a.session)?;
        let summary = self.end_session(&a.session, SessionEnd::Ended)?;
        Ok(summary)
    }

    pub(super) fn session_list(&mut self) -> Handled<kite_proto::ops::Sessions> {
        Ok(kite_proto::ops::Sessions { sessions: self.session_infos(false)? })
    }

    /// Ends a live session: releases its locks, cancels its waits, requeues its active tasks.
    pub(super) fn end_session(&mut self, session: &str, how: SessionEnd) -> Result<serde_json::Value, ErrorBody> {
        let Some(live) = self.live.remove(session) else { return Err(Refusal::NoLiveSession(session.to_string()).into()) };
        self.told_ended.keep(session, &live.news);
        for conn in &live.conns {
            if let Some(c) = self.conns.get_mut(conn) {
                c.sessions.remove(session);
            }
        }
        let (released, dropped, grants) = self.locks.release_all(session);
        self.store.delete_locks_of(session).map_err(super::internal)?;
        self.store.delete_waits_of(session).map_err(super::internal)?;
        for path in &released {
            self.event(LogEvent::LockReleased { path: path.clone(), session: session.to_string(), reason: Some(format!("session {how}")) })?;
        }
        for ticket in dropped {
            if let Some(w) = self.waits.remove(&ticket) {
                let err = ErrorBody::from(Refusal::GoneWhileWaiting { session: session.to_string(), how: how.to_string() });
                self.reply(w.conn, w.req_id, Err(err));
            }
        }
        self.apply_grants(grants)?;
        let mut requeued = Vec::new();
        for id in self.store.active_tasks_of(session).map_err(super::internal)? {
            let t = self.store.task(id).map_err(super::internal)?.ok_or_else(|| ErrorBody::from(Refusal::NoTask(id)))?;
            let note = format!("session {session} {how}");
            let back = super::tasks::Move { to: TaskStatus::Pending, attempts: t.attempts, reason: Some(&note), by: Some(session), note: Some(&note), ..Default::default() };
            self.move_task(&t, back)?;
            self.event(LogEvent::TaskRequeued { task: id, session: session.to_string(), reason: note.clone(), attempts: t.attempts })?;
            requeued.push(id);
        }
        self.store.set_session_state(session, how.as_str(), self.now_ms).map_err(super::internal)?;
        let (session_s, name, released_v, requeued_v) = (session.to_string(), live.name.clone(), released.clone(), requeued.clone());
        self.event(match how {
            SessionEnd::Reaped => LogEvent::SessionReaped { session: session_s, name, released: released_v, requeued: requeued_v },
            SessionEnd::Ended => LogEvent::SessionEnded { session: session_s, name, released: released_v, requeued: requeued_v },
        })?;
        tracing::info!(session, how = %how, ?released, ?requeued, "session over");
        Ok(json!({"session": session, "released": released, "requeued": requeued}))
    }

    /// Reaps every session silent for longer than the heartbeat timeout.
    pub(super) fn reap(&mut self, now: Instant) -> Result<(), ErrorBody> {
        let dead: Vec<String> = self
            .live
            .iter()
            .filter(|(_, l)| now.duration_since(l.last_seen) > self.heartbeat_timeout)
            .map(|(id, _)| id.clone())
            .collect();
        for id in dead {
            self.end_session(&id, SessionEnd::Reaped)?;
        }
        Ok(())
    }
}
