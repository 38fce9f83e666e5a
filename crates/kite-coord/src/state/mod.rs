//! The single owner of the daemon's state. It takes commands from every connection over one
//! channel and handles them in batches: one transaction per batch, one savepoint per request, then
//! one commit, and only after the commit the replies and pushes go out. This is group commit:
//! under load one fsync covers many requests, and an acknowledged change is always on disk.
//!
//! It is a task on the daemon's single-threaded runtime, beside the connection tasks, and does
//! its SQLite work inline. That is deliberate: every request is serialized through this owner
//! anyway, and on the 2-core VMs kite runs on, each hop between threads (connection thread →
//! state thread → writer thread) cost 50–100 µs of scheduler time, ten times the work itself
//! (measured with perf; see docs/BENCHMARKS.md). While it commits, new frames wait in the socket
//! buffers and arrive together as the next batch.
//!
//! The op handlers live in the submodules, grouped by what they touch.

mod costs;
mod events;
mod gc;
mod locks;
mod merge;
mod news;
mod outlet;
mod pending;
mod sessions;
mod tasks;
mod tokens;
#[cfg(test)]
mod tests;

use crate::{DaemonConfig, DaemonError};
use kite_core::LockTable;
use kite_proto::{ErrorBody, LogEvent, Op, Operation, Pushed, Refusal, Request, ServerMessage};
use kite_store::prelude::*;
use kite_store::{Committed, Store};
use outlet::{Delivery, Outlet};
use pending::{Mark, Pending};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;
use tokio::sync::{mpsc, oneshot};

pub(crate) type ConnId = u64;

pub(crate) use tokens::Revoked;

/// What connections tell the owner.
pub(crate) enum Command {
    Connect { conn: ConnId, out: crate::outbound::Outbound },
    /// A remote connection's `auth`: the token's hash; answered with the token's name.
    Authenticate { hash: String, reply: oneshot::Sender<Result<String, kite_proto::Refusal>> },
    Request { conn: ConnId, req: Request },
    Disconnect { conn: ConnId },
    Shutdown,
}

/// A cheap, cloneable way to reach the owner.
#[derive(Clone)]
pub(crate) struct StateHandle {
    tx: mpsc::UnboundedSender<Command>,
    revoked: Revoked,
    done: std::sync::Arc<std::sync::Mutex<Option<oneshot::Receiver<()>>>>,
}

impl StateHandle {
    /// Opens the store, restores the state and starts the owner's task.
    /// `epoch`: the lease this daemon writes a PostgreSQL store under.
    pub(crate) fn start(config: &DaemonConfig, accept: std::sync::Arc<crate::server::AcceptStats>, epoch: Option<i64>) -> Result<StateHandle, DaemonError> {
        let store: Box<dyn Storage> = match &config.backend {
            crate::Backend::Sqlite => Box::new(Store::open(&config.db_path(), config.durability)?),
            crate::Backend::Postgres { url, .. } => Box::new(kite_store_pg::PgStore::open(url, epoch)?),
        };
        let outlet = Outlet::new(store.durable()).map_err(DaemonError::io("cannot start the WAL sync thread"))?;
        let mut state = State::restore(store, outlet, config)?;
        state.accept = accept;
        state.store_info = store_info(config, epoch);
        let revoked = state.revoked.clone();
        let (tx, rx) = mpsc::unbounded_channel();
        let (done_tx, done_rx) = oneshot::channel();
        tokio::spawn(async move {
            state.run(rx).await;
            let _ = done_tx.send(());
        });
        Ok(StateHandle { tx, revoked, done: std::sync::Arc::new(std::sync::Mutex::new(Some(done_rx))) })
    }

    /// Token names revoked while the daemon runs (see [`Revoked`]).
    pub(crate) fn revoked(&self) -> &Revoked {
        &self.revoked
    }

    pub(crate) fn send(&self, cmd: Command) {
        // Fails only after shutdown, when there is no one left to answer.
        let _ = self.tx.send(cmd);
    }

    /// Waits until the owner has committed its last batch and stopped.
    pub(crate) async fn join(&self) {
        let rx = self.done.lock().expect("join lock").take();
        if let Some(rx) = rx {
            let _ = rx.await;
        }
    }
}

/// Where the state is kept, and with a shared store what a take-over elsewhere would not have.
fn store_info(config: &DaemonConfig, epoch: Option<i64>) -> kite_proto::ops::StoreInfo {
    match &config.backend {
        crate::Backend::Sqlite => kite_proto::ops::StoreInfo { backend: "sqlite".into(), location: config.db_path().display().to_string(), epoch: None, local_only: Vec::new() },
        crate::Backend::Postgres { url, .. } => kite_proto::ops::StoreInfo {
            backend: "postgres".into(),
            location: kite_store_pg::redact_url(url),
            epoch,
            local_only: vec![
                format!("vault notes not yet committed to git (in {})", config.root.join("vault").display()),
                format!("agents' worktrees and their uncommitted work (in {})", config.home.join("worktrees").display()),
                "the vault's search index (rebuilt where it is missing)".into(),
            ],
        },
    }
}

/// A live session.
struct Live {
    name: String,
    /// The agent process it stands for (`session.register`'s `key`).
    key: Option<String>,
    last_seen: Instant,
    conns: HashSet<ConnId>,
    /// What it will be told at its next tool call, and what it was told (see `news`).
    news: news::Inbox,
}

impl Live {
    fn new(name: String, key: Option<String>) -> Live {
        Live { name, key, last_seen: Instant::now(), conns: HashSet::new(), news: news::Inbox::default() }
    }
}

/// A connection as the owner knows it.
struct Conn {
    out: crate::outbound::Outbound,
    sessions: HashSet<String>,
    /// Following the event log: the id of the last event sent to it.
    follow: Option<i64>,
}

/// A lock request waiting for its grant.
struct Wait {
    conn: ConnId,
    req_id: u64,
    deadline: Option<Instant>,
}

/// An outgoing message held until the batch commits.
struct Out {
    conn: ConnId,
    /// The request it answers, if it is a reply (so a failed commit can turn it into an error).
    req_id: Option<u64>,
    msg: ServerMessage,
}

/// A handler's answer: a reply now, or later (a queued lock request).
pub(crate) enum Answer<T = Value> {
    Now(T),
    Later,
}

type OpResult = Result<Answer, ErrorBody>;

/// What a handler returns: its operation's reply type ([`Operation::Reply`]), or the refusal.
/// [`State::dispatch`] holds each handler to its operation's reply type at compile time.
pub(crate) type Handled<T> = Result<T, ErrorBody>;

/// A typed reply as it goes on the wire; `O` names the operation, so a handler whose reply type
/// is not `O::Reply` does not compile.
fn now<O: Operation>(r: Handled<O::Reply>) -> OpResult {
    r.and_then(|v| serde_json::to_value(v).map(Answer::Now).map_err(internal))
}

pub(crate) struct State {
    store: Box<dyn Storage>,
    outlet: Outlet,
    root: PathBuf,
    home: PathBuf,
    heartbeat_timeout: Duration,
    locks: LockTable,
    /// The last refused deadlocks (see `locks_view`).
    deadlocks: Vec<kite_proto::ops::RefusedDeadlock>,
    live: HashMap<String, Live>,
    /// What recently ended sessions were told (see `news`), for `session.list`.
    told_ended: news::ToldEnded,
    conns: HashMap<ConnId, Conn>,
    waits: HashMap<u64, Wait>,
    /// Until when the places kept for waits recorded before a restart wait for their clients.
    kept_until: Option<Instant>,
    outbox: Vec<Out>,
    /// Counters and events of this batch, written right before its commit.
    pending: Pending,
    /// Sessions the request being handled named; they count as heard from if it succeeds.
    touched: Vec<String>,
    /// What the accept loop refused (shown by `status`).
    accept: std::sync::Arc<crate::server::AcceptStats>,
    /// Where the state is kept, for `status`.
    store_info: kite_proto::ops::StoreInfo,
    /// Tokens revoked while this daemon runs.
    revoked: Revoked,
    now_ms: i64,
    retention: crate::Retention,
    /// When the next retention chunk is due.
    next_gc: Instant,
}

/// Where to return to when a request or a housekeeping step is undone.
#[derive(Clone, Copy)]
struct Undo {
    outbox: usize,
    pending: Mark,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The most requests one transaction takes.
const MAX_BATCH: usize = 1024;
/// A batch stops taking commands after this long (then commits and lets the connections run).
const BATCH_TIME: Duration = Duration::from_millis(2);

/// With `--sync full`: once this many messages wait for the disk, or once the oldest has waited
/// this long, their fsync starts even if more requests are coming.
const SYNC_GROUP: usize = 48;
const SYNC_HOLD: Duration = Duration::from_millis(2);

impl State {
    fn restore(store: Box<dyn Storage>, outlet: Outlet, config: &DaemonConfig) -> Result<State, DaemonError> {
        if let Err(e) = merge::import_book(store.as_ref(), &config.home) {
            tracing::error!("merge queue: {e}");
        }
        let (held, tokens) = store.load_locks()?;
        let pending = Pending::load(store.as_ref())?;
        let now = Instant::now();
        // Sessions get a fresh timeout after a restart: the daemon, not they, was away.
        let live: HashMap<String, Live> = store
            .sessions(true)?
            .into_iter()
            .map(|s| (s.id, Live { last_seen: now, ..Live::new(s.name, s.key) }))
            .collect();
        // Waits recorded before the restart (or the take-over) keep their places for their
        // clients, first come first; a wait of a session that is no longer live has nobody to
        // come back for it.
        let mut locks = LockTable::restore(held, tokens);
        locks.restore_waits(store.load_waits()?.into_iter().filter(|(_, _, s)| live.contains_key(s)).collect());
        Ok(State {
            store,
            outlet,
            root: config.root.clone(),
            home: config.home.clone(),
            heartbeat_timeout: config.heartbeat_timeout,
            locks,
            deadlocks: Vec::new(),
            live,
            told_ended: Default::default(),
            conns: HashMap::new(),
            waits: HashMap::new(),
            kept_until: Some(Instant::now() + config.heartbeat_timeout.max(Duration::from_secs(60))),
            outbox: Vec::new(),
            pending,
            touched: Vec::new(),
            accept: Default::default(),
            store_info: Default::default(),
            revoked: Revoked::default(),
            now_ms: now_ms(),
            retention: config.retention,
            // Soon after a start, so a database that grew while retention was off shrinks.
            next_gc: now + Duration::from_secs(5),
        })
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        let tick = (self.heartbeat_timeout / 4).clamp(Duration::from_millis(20), Duration::from_secs(1));
        let mut next_reap = Instant::now() + tick;
        let mut stopping = false;
        while !stopping {
            let wake = self.waits.values().filter_map(|w| w.deadline).chain(self.kept_until).fold(next_reap.min(self.next_gc), Instant::min);
            let first = tokio::select! {
                biased;
                c = rx.recv() => match c {
                    Some(c) => Some(c),
                    None => break,
                },
                _ = tokio::time::sleep_until(wake) => None,
            };
            let quiet = first.is_none();
            self.now_ms = now_ms();
            match self.store.begin() {
                Ok(()) => {}
                Err(e @ kite_store::StoreError::Deposed { .. }) => {
                    // Another daemon serves the store now. Not one more request may be
                    // answered from here: every client reconnects to the active daemon.
                    tracing::error!("{e}; this daemon stops");
                    std::process::exit(3);
                }
                Err(e) => tracing::error!("cannot begin a transaction: {e}"),
            }
            // Take what has arrived, up to a batch's size or time: a burst (a thousand lock
            // waiters at once) is handled over several batches, with the connections let run in
            // between, so they keep reading and the priority lane keeps answering.
            let started = Instant::now();
            let (mut next, mut taken, mut cut) = (first, 0, false);
            while let Some(cmd) = next.take() {
                taken += 1;
                match cmd {
                    Command::Connect { conn, out } => {
                        self.conns.insert(conn, Conn { out, sessions: HashSet::new(), follow: None });
                    }
                    Command::Request { conn, req } => self.request(conn, req),
                    Command::Authenticate { hash, reply } => {
                        let _ = reply.send(self.authenticate(&hash));
                    }
                    Command::Disconnect { conn } => self.guarded(|s| s.disconnect(conn)),
                    Command::Shutdown => stopping = true,
                }
                if taken >= MAX_BATCH || started.elapsed() >= BATCH_TIME {
                    cut = true;
                    break;
                }
                next = rx.try_recv().ok();
            }
            let now = Instant::now();
            if now >= next_reap {
                next_reap = now + tick;
                self.guarded(|s| s.reap(now));
            }
            if now >= self.next_gc {
                // After an error, again at the next period; with more due, at the next batch.
                self.next_gc = now + gc::GC_EVERY;
                self.guarded(|s| s.gc_tick(now));
            }
            self.guarded(|s| s.expire_waits(now));
            // No request is queued behind this batch: a backend may commit it synchronously
            // (see `Storage::more_waiting`).
            self.store.more_waiting(!rx.is_empty());
            self.commit_and_flush();
            if let (n, Some(since)) = self.outlet.staged() {
                // Let the connections bring the next requests; while they keep coming, the
                // next batch joins this one's fsync (fewer fsyncs, each one for more work),
                // up to a group's size or age.
                tokio::task::yield_now().await;
                if rx.is_empty() || n >= SYNC_GROUP || since.elapsed() >= SYNC_HOLD || stopping {
                    self.outlet.release();
                }
            }
            if self.outlet.staged().1.is_none() {
                self.store.after_batch(quiet);
            }
            if cut && !rx.is_empty() {
                tokio::task::yield_now().await;
            }
        }
        std::mem::replace(&mut self.outlet, Outlet::Direct).finish().await;
        tracing::info!("state owner stopped");
    }

    fn mark(&self) -> Undo {
        Undo { outbox: self.outbox.len(), pending: self.pending.mark() }
    }

    /// Undoes everything since `m`: the savepoint's rows, and the pushes, events and counter
    /// bumps held for the commit.
    fn undo(&mut self, m: Undo) {
        let _ = self.store.rollback_savepoint();
        self.outbox.truncate(m.outbox);
        self.pending.undo(m.pending);
    }

    /// Runs housekeeping in its own savepoint; an error is logged and undone.
    fn guarded(&mut self, f: impl FnOnce(&mut State) -> Result<(), ErrorBody>) {
        let m = self.mark();
        if let Err(e) = self.store.savepoint() {
            tracing::error!("savepoint failed: {e}");
            return;
        }
        match f(self) {
            Ok(()) => {
                let _ = self.store.release_savepoint();
            }
            Err(e) => {
                tracing::error!("housekeeping failed: {}", e.message);
                self.undo(m);
            }
        }
    }

    fn request(&mut self, conn: ConnId, req: Request) {
        let m = self.mark();
        let result = match Op::parse(&req.op, req.args.as_deref()) {
            Err(e) => Err(e),
            Ok(op) => match self.store.savepoint() {
                Ok(()) => self.dispatch(conn, req.id, op),
                Err(e) => Err(internal(e)),
            },
        };
        let reply = match result {
            Ok(answer) => match self.store.release_savepoint() {
                Ok(()) => Ok(answer),
                Err(e) => Err(internal(e)),
            },
            Err(e) => Err(e),
        };
        if let Some(c) = self.conns.get(&conn) {
            c.out.handled();
        }
        let touched = std::mem::take(&mut self.touched);
        if reply.is_ok() {
            let now = Instant::now();
            for s in touched {
                if let Some(l) = self.live.get_mut(&s) {
                    l.last_seen = now;
                }
            }
        }
        match reply {
            Ok(Answer::Now(v)) => self.reply(conn, req.id, Ok(v)),
            Ok(Answer::Later) => {}
            Err(e) => {
                // Nothing of a refused request may stay: undo its rows, its pushes and events.
                self.undo(m);
                self.reply(conn, req.id, Err(e));
            }
        }
    }

    fn dispatch(&mut self, conn: ConnId, id: u64, op: Op) -> OpResult {
        use kite_proto::op;
        match op {
            Op::Hello(_) => now::<op::Hello>(self.hello()),
            // On the local socket the user is the home's owner.
            Op::Auth(_) => now::<op::Auth>(Ok(kite_proto::ops::Authed { name: "local".into() })),
            Op::TokenCreate(a) => now::<op::TokenCreate>(self.token_create(a)),
            Op::TokenRevoke(a) => now::<op::TokenRevoke>(self.token_revoke(a)),
            Op::TokenList(_) => now::<op::TokenList>(self.token_list()),
            Op::Status(_) => now::<op::Status>(self.status()),
            Op::SessionRegister(a) => now::<op::SessionRegister>(self.session_register(conn, a)),
            Op::SessionAttach(a) => now::<op::SessionAttach>(self.session_attach(conn, a)),
            Op::SessionHeartbeat(a) => now::<op::SessionHeartbeat>(self.session_heartbeat(a)),
            Op::SessionEnd(a) => now::<op::SessionEnd>(self.session_end(a)),
            Op::SessionList(_) => now::<op::SessionList>(self.session_list()),
            Op::TaskCreate(a) => now::<op::TaskCreate>(self.task_create(a)),
            Op::TaskDepend(a) => now::<op::TaskDepend>(self.task_depend(a)),
            Op::TaskList(a) => now::<op::TaskList>(self.task_list(a)),
            Op::TaskShow(a) => now::<op::TaskShow>(self.task_show(a)),
            Op::TaskStart(a) => now::<op::TaskStart>(self.task_start(a)),
            Op::TaskNext(a) => now::<op::TaskNext>(self.task_next(a)),
            Op::TaskDone(a) => now::<op::TaskDone>(self.task_done(a)),
            Op::TaskFail(a) => now::<op::TaskFail>(self.task_fail(a)),
            Op::TaskPrune(a) => now::<op::TaskPrune>(self.task_prune(a)),
            Op::LockAcquire(a) => match self.lock_acquire(conn, id, a)? {
                Answer::Now(g) => now::<op::LockAcquire>(Ok(g)),
                Answer::Later => Ok(Answer::Later),
            },
            Op::LockRelease(a) => now::<op::LockRelease>(self.lock_release(a)),
            Op::LockList(_) => now::<op::LockList>(self.lock_list()),
            Op::Broadcast(a) => now::<op::Broadcast>(self.broadcast(a)),
            Op::EventsList(a) => now::<op::EventsList>(self.events_list(a)),
            Op::EventsFollow(a) => now::<op::EventsFollow>(self.events_follow(conn, a)),
            Op::Gc(a) => now::<op::Gc>(self.gc(a)),
            Op::CostRecord(a) => now::<op::CostRecord>(self.cost_record(a)),
            Op::CostSummary(_) => now::<op::CostSummary>(self.cost_summary()),
            Op::Message(a) => now::<op::Message>(self.message(a)),
            Op::LockAsk(a) => now::<op::LockAsk>(self.lock_ask(a)),
            Op::SessionNews(a) => now::<op::SessionNews>(self.session_news(a)),
            Op::SessionStop(a) => now::<op::SessionStop>(self.session_stop(a)),
            Op::MergeEnqueue(a) => now::<op::MergeEnqueue>(self.merge_enqueue(a)),
            Op::MergeStep(a) => now::<op::MergeStep>(self.merge_step(a)),
            Op::MergeList(a) => now::<op::MergeList>(self.merge_list(a)),
            Op::MergeShow(a) => now::<op::MergeShow>(self.merge_show(a)),
            Op::MergeDiscard(a) => now::<op::MergeDiscard>(self.merge_discard(a)),
        }
    }

    fn reply(&mut self, conn: ConnId, id: u64, result: Result<Value, ErrorBody>) {
        self.outbox.push(Out { conn, req_id: Some(id), msg: ServerMessage::Reply { id: Some(id), result } });
    }

    fn push(&mut self, conn: ConnId, p: &Pushed) {
        self.outbox.push(Out { conn, req_id: None, msg: ServerMessage::Push(p.frame()) });
    }

    /// Appends to the event log (inside the request's savepoint).
    fn event(&mut self, e: LogEvent) -> Result<(), ErrorBody> {
        self.pending.event(self.now_ms, e.kind(), e.data());
        Ok(())
    }

    fn commit_and_flush(&mut self) {
        let committed = match self.pending.write(self.store.as_ref()).and_then(|()| self.store.commit_deferred()) {
            Ok(c) => c,
            Err(e) => return self.commit_failed(e),
        };
        let mut deliveries = Vec::with_capacity(self.outbox.len());
        for o in std::mem::take(&mut self.outbox) {
            if let Some(c) = self.conns.get(&o.conn) {
                deliveries.push(Delivery { out: c.out.clone(), req_id: o.req_id, line: o.msg.encode() });
            }
        }
        let events = self.pending.committed();
        if !events.is_empty() && self.conns.values().any(|c| c.follow.is_some()) {
            // Encoded once, whatever the number of followers.
            let lines: Vec<String> = events
                .iter()
                .map(|ev| ServerMessage::Push(Pushed::Event(serde_json::to_value(ev).unwrap_or_default()).frame()).encode())
                .collect();
            for c in self.conns.values_mut().filter(|c| c.follow.is_some()) {
                for (ev, line) in events.iter().zip(&lines) {
                    if c.follow.is_some_and(|last| ev.id > last) {
                        c.follow = Some(ev.id);
                        deliveries.push(Delivery { out: c.out.clone(), req_id: None, line: line.clone() });
                    }
                }
            }
        }
        self.outlet.deliver(committed == Committed::NeedsSync, deliveries);
    }

    /// Nothing of this batch is durable: every reply becomes an error, pushes are dropped, and
    /// the in-memory lock table is rebuilt from what the database still says.
    fn commit_failed(&mut self, e: kite_store::StoreError) {
        if matches!(e, kite_store::StoreError::Deposed { .. }) {
            // Found by the batch's own epoch check: another daemon serves the store now, and
            // nothing of this batch committed. Not one more request may be answered from here.
            tracing::error!("{e}; this daemon stops");
            std::process::exit(3);
        }
        tracing::error!("commit failed: {e}");
        self.store.rollback();
        let mut deliveries = Vec::new();
        for o in std::mem::take(&mut self.outbox) {
            if let (Some(id), Some(c)) = (o.req_id, self.conns.get(&o.conn)) {
                let err = ErrorBody::from(Refusal::CommitFailed(e.to_string()));
                let line = ServerMessage::Reply { id: Some(id), result: Err(err) }.encode();
                deliveries.push(Delivery { out: c.out.clone(), req_id: Some(id), line });
            }
        }
        self.outlet.deliver(false, deliveries);
        self.pending.reload(self.store.as_ref());
        // The requests still waiting on their connections, to take their places back below.
        let open: Vec<(String, kite_core::LockPath, kite_core::LockMode, Wait)> = std::mem::take(&mut self.waits)
            .into_iter()
            .filter_map(|(t, w)| self.locks.waiter(t).map(|x| (x.session.clone(), x.path.clone(), x.mode, w)))
            .collect();
        match self.store.load_locks() {
            Ok((held, tokens)) => {
                self.locks = LockTable::restore(held, tokens);
                match self.store.load_waits() {
                    Ok(w) => {
                        self.locks.restore_waits(w);
                        self.kept_until = Some(Instant::now() + self.keep_places_for());
                    }
                    Err(e) => tracing::error!("cannot reload lock waits: {e}"),
                }
            }
            Err(e) => tracing::error!("cannot reload locks: {e}"),
        }
        let mut deliveries = Vec::new();
        for (session, path, mode, w) in open {
            match self.locks.reclaim(&session, &path, mode) {
                Some(t) => {
                    self.waits.insert(t, w);
                }
                // Its wait was recorded in the batch that failed: it is told, and may ask again.
                None => {
                    if let Some(c) = self.conns.get(&w.conn) {
                        let err = ErrorBody::from(Refusal::CommitFailed(e.to_string()));
                        deliveries.push(Delivery { out: c.out.clone(), req_id: Some(w.req_id), line: ServerMessage::Reply { id: Some(w.req_id), result: Err(err) }.encode() });
                    }
                }
            }
        }
        self.outlet.deliver(false, deliveries);
    }

    /// How long places kept for waits recorded before a restart wait for their clients: a
    /// client asks again within a minute (`kite lock acquire --wait`), and a session whose agent
    /// is gone is reaped after its timeout.
    fn keep_places_for(&self) -> Duration {
        self.heartbeat_timeout.max(Duration::from_secs(60))
    }

    fn disconnect(&mut self, conn: ConnId) -> Result<(), ErrorBody> {
        let Some(c) = self.conns.remove(&conn) else { return Ok(()) };
        for s in &c.sessions {
            if let Some(live) = self.live.get_mut(s) {
                live.conns.remove(&conn);
            }
        }
        let tickets: Vec<u64> = self.waits.iter().filter(|(_, w)| w.conn == conn).map(|(t, _)| *t).collect();
        for t in tickets {
            self.waits.remove(&t);
            self.forget_wait(t)?;
            let grants = self.locks.cancel(t);
            self.apply_grants(grants)?;
        }
        Ok(())
    }
}

/// A page size a client asked for: default [`kite_proto::ops::DEFAULT_PAGE`], refused above
/// [`kite_proto::ops::MAX_PAGE`] (a size from a client never sizes an allocation unchecked).
fn page_size(op: &str, asked: Option<u32>) -> Result<u32, ErrorBody> {
    use kite_proto::ops::{DEFAULT_PAGE, MAX_PAGE};
    match asked.unwrap_or(DEFAULT_PAGE) {
        0 => Err(Refusal::PageTooSmall { op: op.to_string() }.into()),
        n if n > MAX_PAGE => Err(Refusal::PageTooLarge { op: op.to_string(), max: MAX_PAGE }.into()),
        n => Ok(n),
    }
}

/// A page of at most `limit` items from `items` (read with one extra to know whether there is
/// more), cut to the frame cap, and the cursor of the next page when there is one.
fn page<T: serde::Serialize>(mut items: Vec<T>, limit: u32, id: impl Fn(&T) -> i64) -> (Vec<T>, Option<i64>) {
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let cut = fit_frame(&mut items);
    let next = if more || cut { items.last().map(&id) } else { None };
    (items, next)
}

/// Cuts a page so that its reply stays under the frame cap (a margin is left for the
/// envelope); true when it cut. A page always keeps its first item: one item is under the cap
/// because it arrived in a request under it.
fn fit_frame<T: serde::Serialize>(items: &mut Vec<T>) -> bool {
    const BUDGET: usize = kite_proto::MAX_FRAME - 16 * 1024;
    let mut used = 0;
    for (i, item) in items.iter().enumerate() {
        used += serde_json::to_vec(item).map(|v| v.len() + 1).unwrap_or(0);
        if used > BUDGET && i > 0 {
            items.truncate(i);
            return true;
        }
    }
    false
}

pub(crate) fn internal(e: impl std::fmt::Display) -> ErrorBody {
    Refusal::internal(e).into()
}
