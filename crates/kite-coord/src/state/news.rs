//! What a running session is told at its next tool call, and stop orders.
//!
//! An agent busy editing and testing may never call a kite tool, so what it must hear (a
//! broadcast, a message to it, a lock it waited for, a person asking for a lock it holds, its
//! task pruned) waits in its inbox here until the tool hook (`kite hook tool`) asks with
//! `session.news` after its next tool call: each item is handed over once, then kept among the
//! last few "told" for `session.list`. A stop order (its task pruned or cancelled, a person's
//! `session.stop`, the daily budget) is answered to every ask until the session ends, so the
//! hook stops it before its next tool runs.
//!
//! The inbox lives in the owner's memory beside the session's liveness: what was not told when
//! the daemon stops is not told after it restarts (nothing is ever told twice). The hook path
//! stays cheap: no SQL but the day's cost sum, and only when a budget is given.

use std::collections::VecDeque;

use kite_proto::ops::{Delivered, LockAsk, Message, News, NewsItem, SessionNews, SessionStop};
use kite_proto::{ErrorBody, LogEvent, Pushed, Refusal};
use serde_json::json;

use super::{Handled, State};

/// Items an inbox keeps; beyond it the oldest go, and the next delivery says how many.
const INBOX_MAX: usize = 50;
/// Told items `session.list` shows per session.
const TOLD_KEPT: usize = 20;
/// The longest message.
const MAX_TEXT: usize = 4 * 1024;
/// Where the budget warning starts.
const BUDGET_WARN: f64 = 0.8;

/// One session's news.
#[derive(Debug, Default)]
pub(super) struct Inbox {
    pending: VecDeque<NewsItem>,
    dropped: usize,
    told: VecDeque<NewsItem>,
    /// The stop order, once given: told at every ask until the session ends.
    pub(super) stop: Option<String>,
    /// Why: `pruned` (its task) or `ordered` (a person).
    stop_kind: Option<&'static str>,
    /// The UTC day (its start, ms) the budget warning was given.
    budget_warned: Option<i64>,
    /// What a running agent has spent so far (its last report), not yet recorded as a cost.
    pub(super) running_usd: f64,
}

impl Inbox {
    fn push(&mut self, item: NewsItem) {
        if self.pending.len() >= INBOX_MAX {
            self.pending.pop_front();
            self.dropped += 1;
        }
        self.pending.push_back(item);
    }

    fn take(&mut self, now_ms: i64) -> Vec<NewsItem> {
        let mut out: Vec<NewsItem> = self.pending.drain(..).collect();
        if self.dropped > 0 {
            out.insert(0, NewsItem { at_ms: now_ms, kind: "note".into(), text: format!("{} older items were dropped", self.dropped) });
            self.dropped = 0;
        }
        for i in &out {
            if self.told.len() >= TOLD_KEPT {
                self.told.pop_front();
            }
            self.told.push_back(i.clone());
        }
        out
    }

    pub(super) fn told(&self) -> impl Iterator<Item = &NewsItem> {
        self.told.iter()
    }
}

/// Sessions whose told items `session.list` still shows after they ended.
const ENDED_KEPT: usize = 64;

/// What the last [`ENDED_KEPT`] ended sessions were told (memory only, like the inbox).
#[derive(Debug, Default)]
pub(super) struct ToldEnded(VecDeque<(String, Vec<NewsItem>)>);

impl ToldEnded {
    pub(super) fn keep(&mut self, session: &str, inbox: &Inbox) {
        if inbox.told.is_empty() {
            return;
        }
        if self.0.len() >= ENDED_KEPT {
            self.0.pop_front();
        }
        self.0.push_back((session.to_string(), inbox.told.iter().cloned().collect()));
    }

    pub(super) fn get(&self, session: &str) -> Vec<NewsItem> {
        self.0.iter().rev().find(|(s, _)| s == session).map(|(_, t)| t.clone()).unwrap_or_default()
    }
}

impl State {
    /// Queues `text` for `session` (when it is live).
    pub(super) fn tell(&mut self, session: &str, kind: &str, text: String) {
        let at_ms = self.now_ms;
        if let Some(l) = self.live.get_mut(session) {
            l.news.push(NewsItem { at_ms, kind: kind.to_string(), text });
        }
    }

    /// Orders `session` to stop at its next tool call; `kind` says why (`pruned`, `ordered`).
    pub(super) fn order_stop(&mut self, session: &str, kind: &'static str, reason: String) {
        if let Some(l) = self.live.get_mut(session) {
            if l.news.stop.is_none() {
                l.news.stop = Some(reason);
                l.news.stop_kind = Some(kind);
            }
        }
    }

    /// Every live session but `except` hears a broadcast at its next tool call.
    pub(super) fn tell_all(&mut self, except: Option<&str>, kind: &str, text: &str) {
        let ids: Vec<String> = self.live.keys().filter(|id| Some(id.as_str()) != except).cloned().collect();
        for id in ids {
            self.tell(&id, kind, text.to_string());
        }
    }

    /// Who sent something, in words: a session's name and id, or "a person".
    pub(super) fn sender_name(&self, from: Option<&str>) -> String {
        match from {
            Some(id) => match self.live.get(id) {
                Some(l) => format!("{} ({id})", l.name),
                None => id.to_string(),
            },
            None => "a person".to_string(),
        }
    }

    pub(super) fn message(&mut self, a: Message) -> Handled<kite_proto::ops::Delivered> {
        let text = a.text.trim();
        if text.is_empty() {
            return Err(Refusal::EmptyMessage.into());
        }
        if text.len() > MAX_TEXT {
            return Err(Refusal::MessageTooLong { max: MAX_TEXT }.into());
        }
        if !self.live.contains_key(&a.to) {
            return Err(Refusal::NoLiveSession(a.to.clone()).into());
        }
        if let Some(from) = &a.from {
            let _ = self.touch(from);
        }
        let from = self.sender_name(a.from.as_deref());
        let pushed = Pushed::Message { to: a.to.clone(), from: a.from.clone(), text: text.to_string(), at_ms: self.now_ms };
        let conns: Vec<_> = self.live[&a.to].conns.iter().copied().collect();
        for c in conns {
            self.push(c, &pushed);
        }
        self.event(LogEvent::Message { to: a.to.clone(), from: a.from.clone(), text: text.to_string(), at_ms: self.now_ms })?;
        self.tell(&a.to, "message", format!("MESSAGE from {from}: {text}"));
        Ok(Delivered { delivered: 1 })
    }

    pub(super) fn lock_ask(&mut self, a: LockAsk) -> Handled<kite_proto::ops::Delivered> {
        let path = self.lock_path(a.cwd.as_deref(), &a.path)?;
        let holders: Vec<String> =
            self.locks.held().iter().filter(|h| h.path.overlaps(&path) && h.session != a.by).map(|h| h.session.clone()).collect();
        let who = self.sender_name(Some(&a.by));
        for h in &holders {
            self.tell(h, "lock.asked", format!("{who} wants the lock on {} that you hold; release it (kite_unlock) when you can", path.as_str()));
        }
        self.event(LogEvent::LockAsked { path: path.as_str().to_string(), by: a.by.clone(), holders: holders.clone() })?;
        Ok(Delivered { delivered: holders.len() })
    }

    pub(super) fn session_stop(&mut self, a: SessionStop) -> Handled<serde_json::Value> {
        if !self.live.contains_key(&a.session) {
            return Err(Refusal::NoLiveSession(a.session.clone()).into());
        }
        let reason = a.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()).unwrap_or("a person stopped this session").to_string();
        // Told too: a person's own session (not stopped without `stop_people`) hears it.
        self.tell(&a.session, "stop", format!("STOP requested: {reason}"));
        self.order_stop(&a.session, "ordered", reason.clone());
        self.event(LogEvent::SessionStopOrdered { session: a.session.clone(), reason: reason.to_string() })?;
        Ok(json!({}))
    }

    pub(super) fn session_news(&mut self, a: SessionNews) -> Handled<kite_proto::ops::News> {
        self.touch(&a.session)?;
        let mut news = News::default();
        // A path the lock table cannot take (outside the project) is no lock of anyone's.
        if let Some(path) = a.write_path.as_deref().and_then(|p| self.lock_path(None, p).ok()) {
            let holder = self.locks.held().iter().find(|h| h.session != a.session && h.mode == kite_core::LockMode::Exclusive && h.path.overlaps(&path)).cloned();
            if let Some(h) = holder {
                let name = self.live.get(&h.session).map(|l| l.name.clone()).unwrap_or_default();
                news.deny = Some(format!(
                    "{} is locked by session {} ({name}) for {}; wait for it with kite_lock (wait: true) or work on something else",
                    path.as_str(),
                    h.session,
                    h.path.as_str()
                ));
            }
        }
        if let Some(r) = a.running_usd.filter(|r| r.is_finite() && *r >= 0.0) {
            self.live.get_mut(&a.session).expect("touched above").news.running_usd = r;
        }
        let mut budget_stop = None;
        if let Some(daily) = a.daily_budget_usd.filter(|d| d.is_finite() && *d > 0.0) {
            let day = kite_proto::ops::day_start_ms(self.now_ms);
            // Recorded costs, and what the agents still running have spent so far (a run's own
            // cost is recorded when it ends, which zeroes its running figure). A failure to sum
            // is no budget news, never a refused ask: the stop order and the lock check stand.
            let running: f64 = self.live.values().map(|l| l.news.running_usd).sum();
            match self.agents_spent_since(day) {
                Err(e) => tracing::warn!("the day's spend could not be summed: {}", e.message),
                Ok(recorded) => {
                    let spent = recorded + running;
                    if spent >= daily && a.stop_on_budget {
                        budget_stop = Some(format!("the daily budget is spent (${spent:.2} of ${daily:.2} today, UTC)"));
                    } else if spent >= daily * BUDGET_WARN {
                        let l = self.live.get_mut(&a.session).expect("touched above");
                        if l.news.budget_warned != Some(day) {
                            l.news.budget_warned = Some(day);
                            let pct = (spent / daily * 100.0).round();
                            self.tell(&a.session, "budget", format!("BUDGET: the agents have spent ${spent:.2} of today's ${daily:.2} ({pct}%)"));
                        }
                    }
                }
            }
        }
        let l = self.live.get_mut(&a.session).expect("touched above");
        match (&l.news.stop, budget_stop) {
            (Some(why), _) => {
                news.stop = Some(why.clone());
                news.stop_kind = l.news.stop_kind.map(str::to_string);
            }
            (None, Some(why)) => {
                news.stop = Some(why);
                news.stop_kind = Some("budget".into());
            }
            (None, None) => {}
        }
        // A session that is being stopped is not handed its news: the stop would hide it.
        if a.deliver && !(news.stop.is_some() && a.stop_on_budget) {
            news.items = l.news.take(self.now_ms);
        }
        Ok(news)
    }

    /// Dollars the agents kite started spent since `since_ms`.
    fn agents_spent_since(&self, since_ms: i64) -> Result<f64, ErrorBody> {
        let sums = self.store.cost_totals_since(since_ms).map_err(super::internal)?;
        Ok(sums.agents_usd)
    }
}
