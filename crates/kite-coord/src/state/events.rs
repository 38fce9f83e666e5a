//! Broadcasts and the event log. A broadcast is pushed to every connection bound to a live
//! session and logged; followers of the log get every event after the commit that made it.

use super::{ConnId, Handled, State};
use kite_proto::ops::{Broadcast, Delivered, Event, EventKind, Events, EventsQuery};
use kite_proto::{ErrorBody, LogEvent, Pushed, Refusal};
use std::collections::HashSet;

const MAX_MESSAGE: usize = 64 * 1024;

impl State {
    pub(super) fn broadcast(&mut self, a: Broadcast) -> Handled<kite_proto::ops::Delivered> {
        if a.message.trim().is_empty() {
            return Err(Refusal::EmptyBroadcast.into());
        }
        if a.message.len() > MAX_MESSAGE {
            return Err(Refusal::BroadcastTooLong { max: MAX_MESSAGE }.into());
        }
        if let Some(from) = &a.from {
            let _ = self.touch(from);
        }
        let pushed = Pushed::Broadcast { message: a.message.clone(), from: a.from.clone(), at_ms: self.now_ms };
        let mut conns: HashSet<ConnId> = HashSet::new();
        let mut delivered = 0;
        for live in self.live.values() {
            if !live.conns.is_empty() {
                delivered += 1;
                conns.extend(live.conns.iter().copied());
            }
        }
        for c in conns {
            self.push(c, &pushed);
        }
        self.event(LogEvent::Broadcast { message: a.message.clone(), from: a.from.clone(), at_ms: self.now_ms })?;
        // Agents busy with other tools hear it at their next tool call (the tool hook).
        let from = self.sender_name(a.from.as_deref());
        self.tell_all(a.from.as_deref(), "broadcast", &format!("BROADCAST from {from}: {}", a.message.trim()));
        Ok(Delivered { delivered })
    }

    /// A page of the log: after `since` (or the newest `limit` without it), at most a page and
    /// under the frame cap; `next` is set when more follow.
    fn load_events(&mut self, q: &EventsQuery, default_limit: u32) -> Result<Events, ErrorBody> {
        // This batch's events so far are read too (a client sees its own writes).
        self.pending.flush_events(self.store.as_ref()).map_err(super::internal)?;
        let limit = super::page_size("events", Some(q.limit.unwrap_or(default_limit)))?;
        let forward = q.since.is_some();
        let ask = if forward { limit + 1 } else { limit };
        let mut events: Vec<Event> = self
            .store
            .events(q.since.unwrap_or(0), Some(ask), !forward)
            .map_err(super::internal)?
            .into_iter()
            .map(|(id, at_ms, kind, data)| Event { id, at_ms, kind: EventKind::parse(&kind), data })
            .collect();
        if !forward {
            // The newest events: when the frame cap cuts, it cuts the oldest.
            events.reverse();
            super::fit_frame(&mut events);
            events.reverse();
            return Ok(Events { events, next: None });
        }
        let (events, next) = super::page(events, limit, |e| e.id);
        Ok(Events { events, next })
    }

    pub(super) fn events_list(&mut self, q: EventsQuery) -> Handled<kite_proto::ops::Events> {
        Ok(self.load_events(&q, kite_proto::ops::MAX_PAGE)?)
    }

    /// Replies with the backlog and marks the connection as a follower from its last event on.
    /// With `since`, the backlog must be whole (pushes start after it): more than a page is
    /// refused, to be read with `events.list` first.
    pub(super) fn events_follow(&mut self, conn: ConnId, q: EventsQuery) -> Handled<kite_proto::ops::Events> {
        let page = self.load_events(&q, if q.since.is_some() { kite_proto::ops::MAX_PAGE } else { 100 })?;
        if let (Some(since), Some(_)) = (q.since, page.next) {
            return Err(Refusal::FollowTooFar { since }.into());
        }
        let events = page.events;
        let last = events.last().map(|e| e.id).unwrap_or(q.since.unwrap_or(0));
        // Events of this batch not yet committed are in the backlog already (same transaction);
        // following from `last` keeps them from being pushed twice.
        if let Some(c) = self.conns.get_mut(&conn) {
            c.follow = Some(last);
        }
        Ok(Events { events, next: None })
    }
}
