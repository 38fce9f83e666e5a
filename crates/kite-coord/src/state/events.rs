//! Broadcasts and the event log. A broadcast is pushed to every connection bound to a live
//! session and logged; followers of the log get every event after the commit that made it.

use kite_proto::ops::EventKind;
use super::{json, ConnId, OpResult, State};
use kite_proto::ops::{Broadcast, Delivered, Event, Events, EventsQuery};
use kite_proto::{ErrorBody, ErrorCode};
use serde_json::json;
use std::collections::HashSet;

const MAX_MESSAGE: usize = 64 * 1024;

impl State {
    pub(super) fn broadcast(&mut self, a: Broadcast) -> OpResult {
        if a.message.trim().is_empty() {
            return Err(ErrorBody::new(ErrorCode::BadRequest, "a broadcast needs a message"));
        }
        if a.message.len() > MAX_MESSAGE {
            return Err(ErrorBody::new(ErrorCode::BadRequest, format!("a broadcast is at most {MAX_MESSAGE} bytes")));
        }
        if let Some(from) = &a.from {
            let _ = self.touch(from);
        }
        let data = json!({"message": a.message, "from": a.from, "at_ms": self.now_ms});
        let mut conns: HashSet<ConnId> = HashSet::new();
        let mut delivered = 0;
        for live in self.live.values() {
            if !live.conns.is_empty() {
                delivered += 1;
                conns.extend(live.conns.iter().copied());
            }
        }
        for c in conns {
            self.push(c, "broadcast", data.clone());
        }
        self.event(EventKind::Broadcast, data)?;
        json(Delivered { delivered })
    }

    fn load_events(&mut self, q: &EventsQuery, default_limit: u32) -> Result<Vec<Event>, ErrorBody> {
        // This batch's events so far are read too (a client sees its own writes).
        self.pending.flush_events(&self.store).map_err(super::internal)?;
        let limit = if q.since.is_some() { q.limit } else { Some(q.limit.unwrap_or(default_limit)) };
        Ok(self
            .store
            .events(q.since.unwrap_or(0), limit)
            .map_err(super::internal)?
            .into_iter()
            .map(|(id, at_ms, kind, data)| Event { id, at_ms, kind: EventKind::parse(&kind), data })
            .collect())
    }

    pub(super) fn events_list(&mut self, q: EventsQuery) -> OpResult {
        json(Events { events: self.load_events(&q, 1000)? })
    }

    /// Replies with the backlog and marks the connection as a follower from its last event on.
    pub(super) fn events_follow(&mut self, conn: ConnId, q: EventsQuery) -> OpResult {
        let events = self.load_events(&q, 100)?;
        let last = events.last().map(|e| e.id).unwrap_or(q.since.unwrap_or(0));
        // Events of this batch not yet committed are in the backlog already (same transaction);
        // following from `last` keeps them from being pushed twice.
        if let Some(c) = self.conns.get_mut(&conn) {
            c.follow = Some(last);
        }
        json(Events { events })
    }
}
