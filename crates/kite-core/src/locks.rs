//! The lock table: who holds which path, who waits, in what order, and what a release hands on.
//!
//! Rules, all enforced here and nowhere else:
//! - shared locks coexist; an exclusive lock conflicts with any other session's lock on an
//!   overlapping path (see [`LockPath::overlaps`]); a session never conflicts with itself;
//! - waiting is first come, first served: a request that conflicts with an earlier waiter queues
//!   behind it even if the holders would let it in, so writers are not starved by readers;
//! - a wait that would close a cycle of sessions waiting on each other is refused (deadlock),
//!   naming the cycle;
//! - every grant of a path carries a fencing token one greater than the last grant of that path.
//!
//! The table is pure state: the daemon persists grants and pushes them to waiters.

use crate::paths::LockPath;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet, VecDeque};

/// Read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    Shared,
    #[default]
    Exclusive,
}

impl LockMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Shared => "shared",
            LockMode::Exclusive => "exclusive",
        }
    }
    pub fn parse(s: &str) -> Option<LockMode> {
        match s {
            "shared" | "read" => Some(LockMode::Shared),
            "exclusive" | "write" => Some(LockMode::Exclusive),
            _ => None,
        }
    }
}

/// A lock someone holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub path: LockPath,
    pub mode: LockMode,
    pub session: String,
    pub token: u64,
}

/// A request waiting its turn.
#[derive(Debug, Clone)]
pub struct Waiter {
    pub ticket: u64,
    pub path: LockPath,
    pub mode: LockMode,
    pub session: String,
    /// A wait recorded before a restart or a take-over whose client has not asked again yet:
    /// it keeps its place (those behind it stay behind) and is granted nothing until it asks.
    pub absent: bool,
}

/// A grant made now: to a new request, or to a waiter when someone let go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub path: String,
    pub mode: LockMode,
    pub session: String,
    pub token: u64,
    /// The waiter's ticket when the grant went to a queued request.
    pub ticket: Option<u64>,
}

/// What a request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    Granted(Grant),
    /// The session already holds the path in this mode (or a stronger one): nothing changes.
    AlreadyHeld(Grant),
    /// Queued behind `blockers` (sessions); the grant comes later from a release.
    Queued { ticket: u64, blockers: Vec<String> },
}

/// A refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    #[error("'{path}' is held by {}", .holders.join(", "))]
    Busy { path: String, holders: Vec<String> },
    #[error("waiting for '{path}' would deadlock: {}", crate::deps::format_cycle(.cycle))]
    Deadlock { path: String, cycle: Vec<String> },
    #[error("session {session} does not hold '{path}'")]
    NotHeld { path: String, session: String },
}

/// Holders, waiters and fencing counters.
#[derive(Debug, Default)]
pub struct LockTable {
    held: Vec<Held>,
    waiting: VecDeque<Waiter>,
    tokens: HashMap<String, u64>,
    next_ticket: u64,
}

fn conflicts(path: &LockPath, mode: LockMode, session: &str, o_path: &LockPath, o_mode: LockMode, o_session: &str) -> bool {
    session != o_session
        && !(mode == LockMode::Shared && o_mode == LockMode::Shared)
        && path.overlaps(o_path)
}

impl LockTable {
    pub fn new() -> LockTable {
        LockTable::default()
    }

    /// Rebuilds the table from persisted holders and counters (after a restart; waiters do not
    /// survive one, their connections did not either).
    pub fn restore(held: Vec<Held>, tokens: HashMap<String, u64>) -> LockTable {
        LockTable { held, waiting: VecDeque::new(), tokens, next_ticket: 0 }
    }

    /// Puts back the waits recorded before a restart or a take-over, first come first, as
    /// places kept for their clients (see [`Waiter::absent`]): a client that asks again takes
    /// its old place, a new request queues behind them, and a session that never comes back
    /// loses them when it is reaped.
    pub fn restore_waits(&mut self, waits: Vec<(LockPath, LockMode, String)>) {
        for (path, mode, session) in waits {
            self.next_ticket += 1;
            self.waiting.push_back(Waiter { ticket: self.next_ticket, path, mode, session, absent: true });
        }
    }

    /// A waiter whose request is still open takes back its kept place (after the table was
    /// rebuilt under it); its ticket, or `None` when no place was kept for it.
    pub fn reclaim(&mut self, session: &str, path: &LockPath, mode: LockMode) -> Option<u64> {
        let w = self.waiting.iter_mut().find(|w| w.absent && w.session == session && w.path == *path && w.mode == mode)?;
        w.absent = false;
        Some(w.ticket)
    }

    /// Gives up the kept places nobody came back for (their clients had long enough to ask
    /// again): returns them, and the grants their leaving hands on.
    pub fn drop_absent(&mut self) -> (Vec<Waiter>, Vec<Grant>) {
        let (gone, kept): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiting).into_iter().partition(|w| w.absent);
        self.waiting = kept.into();
        let grants = if gone.is_empty() { Vec::new() } else { self.promote() };
        (gone, grants)
    }

    pub fn held(&self) -> &[Held] {
        &self.held
    }

    pub fn waiting(&self) -> impl Iterator<Item = &Waiter> {
        self.waiting.iter()
    }

    pub fn waiter(&self, ticket: u64) -> Option<&Waiter> {
        self.waiting.iter().find(|w| w.ticket == ticket)
    }

    /// The last token handed out for `path` (0 if never granted).
    pub fn last_token(&self, path: &str) -> u64 {
        self.tokens.get(path).copied().unwrap_or(0)
    }

    /// Holders, then waiters ahead of queue position `queued_before`, that conflict with a request.
    fn conflicting<'a>(
        &'a self,
        path: &'a LockPath,
        mode: LockMode,
        session: &'a str,
        queued_before: usize,
    ) -> impl Iterator<Item = &'a String> + 'a {
        let holders = self.held.iter().map(|h| (&h.path, h.mode, &h.session));
        let ahead = self.waiting.iter().take(queued_before).map(|w| (&w.path, w.mode, &w.session));
        holders.chain(ahead).filter(move |(p, m, s)| conflicts(path, mode, session, p, *m, s)).map(|(_, _, s)| s)
    }

    /// The distinct sessions standing in the way of a request, in order.
    fn blockers(&self, path: &LockPath, mode: LockMode, session: &str, queued_before: usize) -> Vec<String> {
        let mut seen = HashSet::new();
        self.conflicting(path, mode, session, queued_before).filter(|s| seen.insert(*s)).cloned().collect()
    }

    /// Whether anything stands in the way (stops at the first conflict: this runs for every
    /// waiter on every release).
    fn is_blocked(&self, path: &LockPath, mode: LockMode, session: &str, queued_before: usize) -> bool {
        self.conflicting(path, mode, session, queued_before).next().is_some()
    }

    fn grant(&mut self, path: LockPath, mode: LockMode, session: String, ticket: Option<u64>) -> Grant {
        let token = self.tokens.entry(path.as_str().to_string()).or_insert(0);
        *token += 1;
        let grant = Grant { path: path.as_str().to_string(), mode, session: session.clone(), token: *token, ticket };
        self.held.push(Held { path, mode, session, token: grant.token });
        grant
    }

    /// Asks for `path` in `mode` for `session`. Without `wait`, a conflict is refused at once
    /// naming the holders; with it, the request queues unless that would deadlock.
    pub fn request(&mut self, session: &str, path: LockPath, mode: LockMode, wait: bool) -> Result<Requested, LockError> {
        if let Some(h) = self.held.iter().find(|h| {
            h.session == session && h.path == path && (h.mode == mode || h.mode == LockMode::Exclusive)
        }) {
            return Ok(Requested::AlreadyHeld(Grant {
                path: h.path.as_str().to_string(),
                mode: h.mode,
                session: h.session.clone(),
                token: h.token,
                ticket: None,
            }));
        }
        if let Some(i) = self.waiting.iter().position(|w| w.absent && w.session == session && w.path == path && w.mode == mode) {
            // Back after a restart or a take-over: its old place, or the lock if its turn came.
            let ticket = self.waiting[i].ticket;
            if !self.is_blocked(&path, mode, session, i) {
                let w = self.waiting.remove(i).expect("index in range");
                return Ok(Requested::Granted(self.grant(w.path, w.mode, w.session, Some(ticket))));
            }
            let blockers = self.blockers(&path, mode, session, i);
            if !wait {
                // Not a wait: refused as any busy request, and the place stays kept.
                return Err(LockError::Busy { path: path.as_str().to_string(), holders: blockers });
            }
            self.waiting[i].absent = false;
            return Ok(Requested::Queued { ticket, blockers });
        }
        if !self.is_blocked(&path, mode, session, self.waiting.len()) {
            return Ok(Requested::Granted(self.grant(path, mode, session.to_string(), None)));
        }
        let blockers = self.blockers(&path, mode, session, self.waiting.len());
        if !wait {
            return Err(LockError::Busy { path: path.as_str().to_string(), holders: blockers });
        }
        if let Some(cycle) = self.wait_cycle(session, &blockers) {
            return Err(LockError::Deadlock { path: path.as_str().to_string(), cycle });
        }
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        self.waiting.push_back(Waiter { ticket, path, mode, session: session.to_string(), absent: false });
        Ok(Requested::Queued { ticket, blockers })
    }

    /// The sessions `s` waits for: those blocking any of its queued requests.
    fn waits_of(&self, s: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (i, w) in self.waiting.iter().enumerate().filter(|(_, w)| w.session == s) {
            for b in self.conflicting(&w.path, w.mode, &w.session, i) {
                if !out.contains(b) {
                    out.push(b.clone());
                }
            }
        }
        out
    }

    /// Whether some waiter is blocked by `session` (by a lock it holds, or a request of its
    /// queued ahead): only then can a new wait of `session` close a cycle.
    fn someone_waits_for(&self, session: &str) -> bool {
        // What `session` has in the way of others: its holds, and its own queued requests (with
        // their place in the queue). Few, so each waiter is checked against few.
        let holds: Vec<(&LockPath, LockMode)> = self.held.iter().filter(|h| h.session == session).map(|h| (&h.path, h.mode)).collect();
        let queued: Vec<(usize, &LockPath, LockMode)> =
            self.waiting.iter().enumerate().filter(|(_, w)| w.session == session).map(|(i, w)| (i, &w.path, w.mode)).collect();
        if holds.is_empty() && queued.is_empty() {
            return false;
        }
        self.waiting.iter().enumerate().any(|(i, w)| {
            w.session != session
                && (holds.iter().any(|(p, m)| conflicts(&w.path, w.mode, &w.session, p, *m, session))
                    || queued.iter().any(|(j, p, m)| *j < i && conflicts(&w.path, w.mode, &w.session, p, *m, session)))
        })
    }

    /// If `session` waiting on `blockers` closes a cycle, returns it: `[session, b, ..., session]`.
    ///
    /// This runs on the state owner for every queued request, so it must cost about the size of
    /// the cycle it could close, not the whole graph: when nobody waits for `session` (the
    /// common case: agents holding their own files and queueing on one shared path) no cycle
    /// can close and nothing is searched. Otherwise a breadth-first search from the blockers
    /// computes each session's edges only when it reaches it, and keeps one parent link per
    /// session instead of a path per branch.
    fn wait_cycle(&self, session: &str, blockers: &[String]) -> Option<Vec<String>> {
        if !self.someone_waits_for(session) {
            return None;
        }
        let mut parent: HashMap<String, Option<String>> = HashMap::new();
        let mut queue: VecDeque<String> = VecDeque::new();
        for b in blockers {
            if parent.insert(b.clone(), None).is_none() {
                queue.push_back(b.clone());
            }
        }
        while let Some(cur) = queue.pop_front() {
            for next in self.waits_of(&cur) {
                if next == session {
                    let mut back = vec![cur.clone()];
                    while let Some(Some(p)) = parent.get(back.last().expect("never empty")) {
                        back.push(p.clone());
                    }
                    back.reverse();
                    let mut cycle = vec![session.to_string()];
                    cycle.extend(back);
                    cycle.push(session.to_string());
                    return Some(cycle);
                }
                if !parent.contains_key(&next) {
                    parent.insert(next.clone(), Some(cur.clone()));
                    queue.push_back(next);
                }
            }
        }
        None
    }

    /// Hands freed paths to waiters, in queue order.
    fn promote(&mut self) -> Vec<Grant> {
        let mut grants = Vec::new();
        let mut i = 0;
        while i < self.waiting.len() {
            let w = &self.waiting[i];
            // A kept place whose client is not back yet gets nothing, and holds its place.
            if !w.absent && !self.is_blocked(&w.path, w.mode, &w.session, i) {
                let w = self.waiting.remove(i).expect("index in range");
                grants.push(self.grant(w.path, w.mode, w.session, Some(w.ticket)));
            } else {
                i += 1;
            }
        }
        grants
    }

    /// Releases `session`'s locks on exactly `path`; returns the grants this hands on.
    pub fn release(&mut self, session: &str, path: &LockPath) -> Result<Vec<Grant>, LockError> {
        let before = self.held.len();
        self.held.retain(|h| !(h.session == session && h.path == *path));
        if self.held.len() == before {
            return Err(LockError::NotHeld { path: path.as_str().to_string(), session: session.to_string() });
        }
        Ok(self.promote())
    }

    /// Drops everything `session` holds or waits for (it ended or was reaped). Returns the paths
    /// it held, the tickets of its dropped waits, and the grants this hands on.
    pub fn release_all(&mut self, session: &str) -> (Vec<String>, Vec<u64>, Vec<Grant>) {
        let mut released = Vec::new();
        self.held.retain(|h| {
            let mine = h.session == session;
            if mine {
                released.push(h.path.as_str().to_string());
            }
            !mine
        });
        let mut dropped = Vec::new();
        self.waiting.retain(|w| {
            let mine = w.session == session;
            if mine {
                dropped.push(w.ticket);
            }
            !mine
        });
        let grants = self.promote();
        (released, dropped, grants)
    }

    /// Withdraws a queued request (its client left or its timeout passed).
    pub fn cancel(&mut self, ticket: u64) -> Vec<Grant> {
        let before = self.waiting.len();
        self.waiting.retain(|w| w.ticket != ticket);
        if self.waiting.len() == before {
            return Vec::new();
        }
        self.promote()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LockMode::*;

    fn p(s: &str) -> LockPath {
        LockPath::from_normalized(s).unwrap()
    }

    fn granted(r: Result<Requested, LockError>) -> Grant {
        match r {
            Ok(Requested::Granted(g)) => g,
            other => panic!("expected a grant, got {other:?}"),
        }
    }

    fn queued(r: Result<Requested, LockError>) -> u64 {
        match r {
            Ok(Requested::Queued { ticket, .. }) => ticket,
            other => panic!("expected to queue, got {other:?}"),
        }
    }

    #[test]
    fn exclusive_conflicts_and_names_the_holder() {
        let mut t = LockTable::new();
        granted(t.request("a", p("src/x.rs"), Exclusive, false));
        let err = t.request("b", p("src/x.rs"), Exclusive, false).unwrap_err();
        assert_eq!(err, LockError::Busy { path: "src/x.rs".into(), holders: vec!["a".into()] });
        assert!(err.to_string().contains("held by a"));
    }

    #[test]
    fn shared_locks_coexist_and_block_writers() {
        let mut t = LockTable::new();
        granted(t.request("a", p("f"), Shared, false));
        granted(t.request("b", p("f"), Shared, false));
        assert!(t.request("c", p("f"), Exclusive, false).is_err());
    }

    #[test]
    fn release_hands_on_in_fifo_order_with_growing_tokens() {
        let mut t = LockTable::new();
        assert_eq!(granted(t.request("a", p("f"), Exclusive, false)).token, 1);
        let tb = queued(t.request("b", p("f"), Exclusive, true));
        let _tc = queued(t.request("c", p("f"), Exclusive, true));
        let g = t.release("a", &p("f")).unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!((g[0].session.as_str(), g[0].token, g[0].ticket), ("b", 2, Some(tb)));
        let g = t.release("b", &p("f")).unwrap();
        assert_eq!((g[0].session.as_str(), g[0].token), ("c", 3));
    }

    #[test]
    fn readers_queue_behind_a_waiting_writer() {
        let mut t = LockTable::new();
        granted(t.request("r1", p("f"), Shared, false));
        queued(t.request("w", p("f"), Exclusive, true));
        // r2 would be compatible with r1, but the writer came first.
        queued(t.request("r2", p("f"), Shared, true));
        let g = t.release("r1", &p("f")).unwrap();
        assert_eq!(g.iter().map(|g| g.session.as_str()).collect::<Vec<_>>(), ["w"]);
        let g = t.release("w", &p("f")).unwrap();
        assert_eq!(g.iter().map(|g| g.session.as_str()).collect::<Vec<_>>(), ["r2"]);
    }

    #[test]
    fn directory_lock_waits_for_a_file_below_it() {
        let mut t = LockTable::new();
        granted(t.request("a", p("src/x.rs"), Exclusive, false));
        queued(t.request("b", p("src"), Exclusive, true));
        granted(t.request("c", p("docs/readme.md"), Exclusive, false));
        let g = t.release("a", &p("src/x.rs")).unwrap();
        assert_eq!(g[0].path, "src");
    }

    #[test]
    fn a_two_session_deadlock_is_refused_naming_the_cycle() {
        let mut t = LockTable::new();
        granted(t.request("a", p("x"), Exclusive, false));
        granted(t.request("b", p("y"), Exclusive, false));
        queued(t.request("a", p("y"), Exclusive, true));
        let err = t.request("b", p("x"), Exclusive, true).unwrap_err();
        assert_eq!(err, LockError::Deadlock { path: "x".into(), cycle: vec!["b".into(), "a".into(), "b".into()] });
        // Nothing changed: b is not queued.
        assert_eq!(t.waiting().count(), 1);
    }

    #[test]
    fn queueing_twice_for_one_path_is_not_a_deadlock_with_oneself() {
        let mut t = LockTable::new();
        granted(t.request("b", p("x"), LockMode::Exclusive, false));
        granted(t.request("a", p("mine"), LockMode::Exclusive, false));
        queued(t.request("a", p("x"), LockMode::Exclusive, true));
        queued(t.request("a", p("x"), LockMode::Exclusive, true));
    }

    /// Regression (torture run, finding 2): W sessions holding their own files and queueing on
    /// one shared path cost a scan each, not a graph; and a real cycle among them is still found.
    #[test]
    fn many_waiters_on_one_shared_path_queue_fast_and_a_real_cycle_is_still_found() {
        let mut t = LockTable::new();
        granted(t.request("holder", p("Cargo.lock"), LockMode::Exclusive, false));
        for i in 0..1000 {
            let s = format!("s{i}");
            granted(t.request(&s, p(&format!("src/f{i}.rs")), LockMode::Exclusive, false));
            queued(t.request(&s, p("Cargo.lock"), LockMode::Exclusive, true));
        }
        // The holder now waits for a file of the last waiter: that closes holder -> s999 -> holder.
        match t.request("holder", p("src/f999.rs"), LockMode::Exclusive, true) {
            Err(LockError::Deadlock { cycle, .. }) => {
                assert_eq!(cycle.first().map(String::as_str), Some("holder"));
                assert_eq!(cycle.last().map(String::as_str), Some("holder"));
                assert!(cycle.contains(&"s999".to_string()), "{cycle:?}");
            }
            other => panic!("expected a deadlock, got {other:?}"),
        }
    }

    #[test]
    fn a_three_session_deadlock_is_found() {
        let mut t = LockTable::new();
        for (s, f) in [("a", "x"), ("b", "y"), ("c", "z")] {
            granted(t.request(s, p(f), Exclusive, false));
        }
        queued(t.request("a", p("y"), Exclusive, true));
        queued(t.request("b", p("z"), Exclusive, true));
        let err = t.request("c", p("x"), Exclusive, true).unwrap_err();
        match err {
            LockError::Deadlock { cycle, .. } => assert_eq!(cycle, ["c", "a", "b", "c"]),
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn release_all_drops_holds_and_waits_and_hands_on() {
        let mut t = LockTable::new();
        granted(t.request("a", p("x"), Exclusive, false));
        granted(t.request("b", p("y"), Exclusive, false));
        let ta = queued(t.request("a", p("y"), Exclusive, true));
        queued(t.request("c", p("x"), Exclusive, true));
        let (released, dropped, grants) = t.release_all("a");
        assert_eq!(released, ["x"]);
        assert_eq!(dropped, [ta]);
        assert_eq!(grants.len(), 1);
        assert_eq!(grants[0].session, "c");
    }

    #[test]
    fn relocking_what_you_hold_is_idempotent_and_releasing_what_you_do_not_is_an_error() {
        let mut t = LockTable::new();
        let g = granted(t.request("a", p("x"), Exclusive, false));
        assert_eq!(t.request("a", p("x"), Shared, false), Ok(Requested::AlreadyHeld(g)));
        assert!(matches!(t.release("b", &p("x")), Err(LockError::NotHeld { .. })));
    }

    #[test]
    fn restored_waits_keep_their_places_until_their_clients_ask_again() {
        // Before the take-over: a holds; b, then c, waited. The new daemon knows a's hold and
        // the two waits, in that order.
        let mut t = LockTable::restore(vec![Held { path: p("f"), mode: Exclusive, session: "a".into(), token: 1 }], HashMap::from([("f".to_string(), 1)]));
        t.restore_waits(vec![(p("f"), Exclusive, "b".into()), (p("f"), Exclusive, "c".into())]);
        // c asks again first, and a newcomer d asks: both queue behind b's kept place.
        let c = queued(t.request("c", p("f"), Exclusive, true));
        let d = queued(t.request("d", p("f"), Exclusive, true));
        // a lets go while b is still away: nobody is granted (b's turn is kept).
        assert_eq!(t.release("a", &p("f")).unwrap(), vec![]);
        // b is back: its turn had come, so it is granted at once.
        let g = granted(t.request("b", p("f"), Exclusive, true));
        assert_eq!((g.session.as_str(), g.token), ("b", 2));
        // Then c, then d, in their order.
        let g = t.release("b", &p("f")).unwrap();
        assert_eq!((g[0].session.as_str(), g[0].ticket), ("c", Some(c)));
        let g = t.release("c", &p("f")).unwrap();
        assert_eq!((g[0].session.as_str(), g[0].ticket), ("d", Some(d)));
        // Asked without waiting, a kept place that is not yet free is refused, and stays kept.
        let mut t = LockTable::restore(vec![Held { path: p("h"), mode: Exclusive, session: "a".into(), token: 1 }], HashMap::new());
        t.restore_waits(vec![(p("h"), Exclusive, "b".into())]);
        assert!(matches!(t.request("b", p("h"), Exclusive, false), Err(LockError::Busy { .. })));
        assert_eq!(t.waiting().filter(|w| w.absent).count(), 1);
        // Places nobody came back for are given up, and what they held back moves on.
        let c = queued(t.request("c", p("h"), Exclusive, true));
        assert_eq!(t.release("a", &p("h")).unwrap(), vec![]);
        let (gone, grants) = t.drop_absent();
        assert_eq!((gone.len(), grants[0].ticket), (1, Some(c)));
        // A kept place whose session never comes back goes with it.
        let mut t = LockTable::new();
        t.restore_waits(vec![(p("g"), Exclusive, "gone".into())]);
        queued(t.request("e", p("g"), Exclusive, true));
        let (_, dropped, grants) = t.release_all("gone");
        assert_eq!((dropped.len(), grants[0].session.as_str()), (1, "e"));
    }

    #[test]
    fn cancelling_a_waiter_lets_the_ones_behind_it_through() {
        let mut t = LockTable::new();
        granted(t.request("r1", p("f"), Shared, false));
        let tw = queued(t.request("w", p("f"), Exclusive, true));
        queued(t.request("r2", p("f"), Shared, true));
        let g = t.cancel(tw);
        assert_eq!(g.iter().map(|g| g.session.as_str()).collect::<Vec<_>>(), ["r2"]);
    }

    proptest::proptest! {
        /// Under any sequence of requests and releases, no two sessions ever hold conflicting
        /// locks, and tokens of a path strictly grow.
        #[test]
        fn holders_never_conflict(ops in proptest::collection::vec((0u8..4, 0u8..3, 0u8..4, proptest::bool::ANY), 1..80)) {
            let paths = ["a", "a/b", "c", "a/*"];
            let mut t = LockTable::new();
            let mut last: HashMap<String, u64> = HashMap::new();
            for (s, op, pi, shared) in ops {
                let session = format!("s{s}");
                let path = p(paths[pi as usize]);
                let mode = if shared { Shared } else { Exclusive };
                let grants = match op {
                    0 | 1 => match t.request(&session, path, mode, op == 1) {
                        Ok(Requested::Granted(g)) => vec![g],
                        _ => vec![],
                    },
                    _ => t.release(&session, &path).unwrap_or_default(),
                };
                for g in grants {
                    let prev = last.insert(g.path.clone(), g.token).unwrap_or(0);
                    proptest::prop_assert!(g.token > prev);
                }
                let h = t.held();
                for (i, x) in h.iter().enumerate() {
                    for y in &h[i + 1..] {
                        proptest::prop_assert!(!conflicts(&x.path, x.mode, &x.session, &y.path, y.mode, &y.session),
                            "{x:?} conflicts with {y:?}");
                    }
                }
            }
        }
    }
}
