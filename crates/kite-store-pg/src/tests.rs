//! The PostgreSQL backend against a real cluster (initdb'd into a temporary directory).

use super::*;
use crate::cluster::TempCluster;
use crate::lease::{try_take, Attempt, Holder, Lease};
use kite_core::{LockMode, TaskStatus};
use kite_store::prelude::*;
use kite_store::{CostRow, HistoryRow, NewTaskRow, TaskState};
use std::sync::Arc;

fn cluster() -> TempCluster {
    TempCluster::start().expect("a PostgreSQL cluster (install Debian's postgresql package)")
}

fn holder(place: &str, pid: u32) -> Holder {
    Holder { place: place.into(), pid }
}

/// Commits a batch, and makes it durable as the daemon's syncer does before any reply.
fn commit(s: &PgStore) {
    if s.commit_deferred().unwrap() == Committed::NeedsSync {
        s.durable().unwrap().sync().unwrap();
    }
}

fn new<'a>(title: &'a str, deps: &'a [i64]) -> NewTaskRow<'a> {
    NewTaskRow { title, depends_on: deps, ..Default::default() }
}

#[test]
fn the_store_keeps_tasks_sessions_locks_costs_and_events_and_a_savepoint_undoes_one_request() {
    let pg = cluster();
    let url = pg.create_database("kite").unwrap();
    let s = PgStore::open(&url, None).unwrap();
    // A second open finds the schema current.
    drop(PgStore::open(&url, None).unwrap());

    s.begin().unwrap();
    let files = vec!["src/a.rs".to_string(), "src/b.rs".to_string()];
    let a = s.insert_task(&NewTaskRow { title: "a", body: "body", priority: 2, files: &files, workstream: Some("ws"), ..Default::default() }, 10).unwrap();
    let b = s.insert_task(&new("b", &[a]), 11).unwrap();
    commit(&s);

    let t = s.task(a).unwrap().unwrap();
    assert_eq!((t.title.as_str(), t.body.as_str(), t.priority, t.status), ("a", "body", 2, TaskStatus::Pending));
    assert_eq!(t.files, files);
    assert_eq!(s.task(b).unwrap().unwrap().depends_on, vec![a]);
    assert_eq!(s.deps_of(b).unwrap(), vec![a]);
    assert_eq!(s.dependents_of(a).unwrap(), vec![b]);
    assert!(s.task_exists(a).unwrap() && !s.task_exists(999).unwrap());
    assert_eq!(s.list_tasks(None, Some("ws"), None, 10).unwrap().len(), 1);
    assert_eq!(s.list_tasks(Some(TaskStatus::Pending), None, Some(a), 10).unwrap().iter().map(|t| t.id).collect::<Vec<_>>(), vec![b]);

    // b waits for a; a is claimed, then done, then b is ready.
    s.begin().unwrap();
    assert_eq!(s.next_ready(None).unwrap(), Some(a));
    s.insert_session("s1", "worker", Some("key"), 12).unwrap();
    s.set_task_state(a, &TaskState { to: TaskStatus::Active, claim_session: Some("s1"), claim_token: Some(7), attempts: 1, result: None, reason: None }, 13).unwrap();
    s.add_history(a, &HistoryRow { from: Some(TaskStatus::Pending), to: TaskStatus::Active, session: Some("s1"), note: None }, 13).unwrap();
    commit(&s);
    assert_eq!(s.next_ready(None).unwrap(), None);
    assert_eq!(s.active_tasks_of("s1").unwrap(), vec![a]);
    assert_eq!(s.task(a).unwrap().unwrap().claim_token, Some(7));
    assert_eq!(s.history(a).unwrap().len(), 2);
    assert_eq!(s.counts_by_status().unwrap()["active"], 1);
    assert_eq!(s.session("s1").unwrap().unwrap().key.as_deref(), Some("key"));
    assert_eq!(s.sessions(true).unwrap().len(), 1);

    // A request the daemon refuses rolls back alone; the batch's other work commits. Its
    // writes were held and never sent.
    s.begin().unwrap();
    s.savepoint().unwrap();
    s.set_counter("completed", 5).unwrap();
    s.release_savepoint().unwrap();
    s.savepoint().unwrap();
    s.set_counter("completed", 99).unwrap();
    s.rollback_savepoint().unwrap();
    // One whose writes a read sent ahead of it (its savepoint then went too) rolls back alone
    // as well.
    s.savepoint().unwrap();
    s.set_counter("read", 1).unwrap();
    assert_eq!(s.counter("read").unwrap(), 1, "a read sees its request's writes");
    s.rollback_savepoint().unwrap();
    s.insert_event(1, 15, "task.done", &serde_json::json!({"task": a})).unwrap();
    s.insert_event(2, 16, "task.created", &serde_json::json!({"task": b})).unwrap();
    commit(&s);
    assert_eq!(s.counter("completed").unwrap(), 5);
    assert_eq!(s.counter("read").unwrap(), 0);
    assert_eq!(s.last_event_id().unwrap(), 2);
    assert_eq!(s.events(0, Some(1), true).unwrap()[0].0, 2);
    assert_eq!(s.events(0, None, false).unwrap().len(), 2);

    // An error the server reports fails the whole batch, with its own message: the writes were
    // pipelined, so the error cannot be pinned on one request.
    s.begin().unwrap();
    s.savepoint().unwrap();
    s.set_counter("completed", 6).unwrap();
    s.release_savepoint().unwrap();
    s.savepoint().unwrap();
    s.insert_session("s1", "again", None, 14).unwrap();
    s.release_savepoint().unwrap();
    let refused = s.commit_deferred().expect_err("a duplicate id fails the batch");
    assert!(refused.to_string().contains("duplicate key"), "{refused}");
    assert_eq!(s.counter("completed").unwrap(), 5);

    // A task changed by another writer behind the daemon's back: the daemon's conditional
    // change finds it otherwise and fails the batch; the next batch reads the row again.
    assert_eq!(s.task(b).unwrap().unwrap().status, TaskStatus::Pending);
    let other = connect(&url).unwrap();
    other.execute("UPDATE tasks SET status = 'pruned' WHERE id = $1", &[&b]).unwrap();
    s.begin().unwrap();
    assert_eq!(s.task(b).unwrap().unwrap().status, TaskStatus::Pending, "as the daemon last knew it");
    s.set_task_state(b, &TaskState { to: TaskStatus::Active, claim_session: Some("s1"), claim_token: Some(8), attempts: 1, result: None, reason: None }, 15).unwrap();
    let changed = s.commit_deferred().expect_err("the row was not as the cache said");
    assert!(changed.to_string().contains("another writer"), "{changed}");
    assert_eq!(s.task(b).unwrap().unwrap().status, TaskStatus::Pruned);
    other.execute("UPDATE tasks SET status = 'pending' WHERE id = $1", &[&b]).unwrap();

    // Locks and their fencing counters survive a reopen; grants and releases are in the history.
    s.begin().unwrap();
    s.insert_lock("src/a.rs", "s1", LockMode::Exclusive, 3, 20).unwrap();
    s.insert_lock("src/b.rs", "s1", LockMode::Shared, 4, 21).unwrap();
    s.delete_lock("src/b.rs", "s1").unwrap();
    commit(&s);
    let reopened = PgStore::open(&url, None).unwrap();
    let (held, tokens) = reopened.load_locks().unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!((tokens["src/a.rs"], tokens["src/b.rs"]), (3, 4));
    let c = connect(&url).unwrap();
    let events: Vec<String> = c.query("SELECT event FROM lock_history ORDER BY id", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(events, vec!["grant", "grant", "release"]);

    // Costs sum as the SQLite backend's do.
    s.begin().unwrap();
    for (source, usd) in [("agent", 0.5), ("review", 0.25), ("interactive", 1.0)] {
        s.insert_cost(&CostRow { at_ms: 30, session: "s1".into(), task_id: Some(a), source: source.into(), usd, input_tokens: 10, ..Default::default() }).unwrap();
    }
    commit(&s);
    let sums = s.task_cost_totals(a).unwrap();
    assert_eq!((sums.usd, sums.agents_usd, sums.interactive_usd, sums.input_tokens, sums.runs), (1.75, 0.75, 1.0, 30, 3));
    assert_eq!(s.costs_of_task(a, 2).unwrap().iter().map(|c| c.source.as_str()).collect::<Vec<_>>(), vec!["review", "interactive"]);
    assert_eq!(s.cost_totals_since(31).unwrap().runs, 0);

    // Tokens: one live token per name, kept as a hash.
    s.begin().unwrap();
    assert!(s.insert_token("ci", "h1", 1).unwrap());
    assert!(!s.insert_token("ci", "h2", 2).unwrap());
    assert!(s.revoke_token("ci", 3).unwrap());
    assert_eq!(s.token_by_hash("h1").unwrap().unwrap().revoked_ms, Some(3));
    assert!(s.insert_token("ci", "h3", 4).unwrap());
    commit(&s);
    assert_eq!(s.tokens().unwrap().len(), 1);
}

#[test]
fn the_ready_query_skips_a_task_another_writer_has_locked() {
    let pg = cluster();
    let url = pg.create_database("kite").unwrap();
    let s = PgStore::open(&url, None).unwrap();
    s.begin().unwrap();
    let first = s.insert_task(&NewTaskRow { title: "first", priority: 5, ..Default::default() }, 1).unwrap();
    let second = s.insert_task(&new("second", &[]), 2).unwrap();
    commit(&s);
    // A person's psql holds the best task's row.
    let other = connect(&url).unwrap();
    other.batch("BEGIN").unwrap();
    other.execute("SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE", &[&first]).unwrap();
    s.begin().unwrap();
    assert_eq!(s.next_ready(None).unwrap(), Some(second), "the locked row is skipped, not waited for");
    s.rollback();
    // A claim in a request the daemon then refuses is undone with it (the claim went to the
    // server at once, inside the request's savepoint).
    s.begin().unwrap();
    s.savepoint().unwrap();
    assert!(s.claim_next(None, "s0", 8, 3).unwrap().is_some());
    s.rollback_savepoint().unwrap();
    commit(&s);
    let fresh = connect(&url).unwrap();
    let statuses: Vec<String> = fresh.query("SELECT status FROM tasks ORDER BY id", &[]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(statuses, vec!["pending", "pending"], "the database's own rows");
    // A claim is one statement over the same query: the locked row is skipped there too, and
    // the row comes back as claimed.
    s.begin().unwrap();
    let claimed = s.claim_next(None, "s1", 9, 3).unwrap().expect("a ready task");
    assert_eq!((claimed.id, claimed.status, claimed.claim_session.as_deref(), claimed.claim_token, claimed.attempts), (second, TaskStatus::Active, Some("s1"), Some(9), 1));
    commit(&s);
    assert_eq!(s.task(second).unwrap().unwrap().status, TaskStatus::Active);
    other.batch("ROLLBACK").unwrap();
    s.begin().unwrap();
    assert_eq!(s.next_ready(None).unwrap(), Some(first));
    s.rollback();
}

#[test]
fn one_daemon_holds_the_lease_a_standby_takes_it_over_and_the_deposed_store_cannot_commit() {
    let pg = cluster();
    let url = pg.create_database("kite").unwrap();
    let lost = Arc::new(std::sync::Mutex::new(None::<String>));
    let seen = lost.clone();
    let first = Lease::take(&url, &holder("host-a", 1), "https://a:7777", false, |_| {}, move |why| *seen.lock().unwrap() = Some(why)).unwrap();
    assert_eq!(first.epoch(), 1);
    let old = PgStore::open(&url, Some(first.epoch())).unwrap();
    old.begin().unwrap();
    old.set_counter("claim", 1).unwrap();
    commit(&old);

    // A second daemon is refused, naming the holder; a standby waits.
    let refused = Lease::take(&url, &holder("host-b", 2), "", false, |_| {}, |_| {}).err().expect("refused");
    assert!(refused.to_string().contains("host-a pid 1") && refused.to_string().contains("--standby"), "{refused}");
    let c = connect(&url).unwrap();
    assert!(matches!(try_take(&c, &holder("host-b", 2), "").unwrap(), Attempt::Held(i) if i.epoch == 1 && i.expires_in_ms > 0));

    // The holder dies (its renewals stop, and it never releases): the standby takes over once
    // the lease expires.
    drop(first);
    let started = std::time::Instant::now();
    let mut waited = None;
    let second = Lease::take(&url, &holder("host-b", 2), "", true, |i| waited = Some(i.holder.clone()), |_| {}).unwrap();
    assert_eq!(waited.as_deref(), Some("host-a pid 1"));
    assert_eq!(second.epoch(), 2);
    assert!(started.elapsed() < lease::TTL + std::time::Duration::from_secs(1), "took over in {:?}", started.elapsed());

    // The old store's next batch is refused at its commit, and nothing it tried is written.
    old.begin().unwrap();
    old.set_counter("claim", 2).unwrap();
    match old.commit_deferred() {
        Err(StoreError::Deposed { mine: 1, current: 2 }) => {}
        other => panic!("the deposed store committed a batch: {other:?}"),
    }
    let new = PgStore::open(&url, Some(second.epoch())).unwrap();
    new.begin().unwrap();
    assert_eq!(new.counter("claim").unwrap(), 1, "what the old daemon committed is there");
    commit(&new);
    let info = lease::info(&c).unwrap().unwrap();
    assert_eq!((info.epoch, info.holder.as_str()), (2, "host-b pid 2"));

    // The same place restarting after a crash (it holds the home's pidfile lock, so the old
    // process is dead) takes over at once, without waiting for the expiry.
    drop(second);
    let restarted = Lease::take(&url, &holder("host-b", 22), "", false, |_| {}, |_| {}).unwrap();
    assert_eq!(restarted.epoch(), 3);

    // A clean stop lets the next daemon in at once.
    restarted.release();
    let third = Lease::take(&url, &holder("host-c", 3), "", false, |_| {}, |_| {}).unwrap();
    assert_eq!(third.epoch(), 4);
}

#[test]
fn a_batch_in_flight_holds_a_take_over_back_until_it_commits() {
    let pg = cluster();
    let url = pg.create_database("kite").unwrap();
    let first = Lease::take(&url, &holder("a", 1), "", false, |_| {}, |_| {}).unwrap();
    let store = PgStore::open(&url, Some(first.epoch())).unwrap();
    store.begin().unwrap();
    store.set_counter("x", 1).unwrap();
    // A read puts the batch's statements, its epoch check first, on the server.
    assert_eq!(store.counter("x").unwrap(), 1);
    // The lease expires while the batch is open; a take-over must wait for the batch.
    let c = connect(&url).unwrap();
    c.execute("UPDATE lease_renewal SET expires_at = now() - interval '1 second'", &[]).unwrap();
    let taker = std::thread::spawn({
        let url = url.clone();
        move || {
            let c = connect(&url).unwrap();
            let started = std::time::Instant::now();
            (try_take(&c, &holder("b", 2), "").unwrap(), started.elapsed())
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    commit(&store);
    let (got, waited) = taker.join().unwrap();
    assert_eq!(got, Attempt::Won(2));
    assert!(waited >= std::time::Duration::from_millis(250), "the take-over waited for the batch ({waited:?})");
    // Deposed: its next batch that touches the store is refused (one that needs nothing of the
    // server sends nothing).
    store.begin().unwrap();
    store.set_counter("x", 2).unwrap();
    assert!(matches!(store.commit_deferred(), Err(StoreError::Deposed { .. })));
    store.begin().unwrap();
    assert!(matches!(store.counter("x"), Err(StoreError::Deposed { .. })), "a read in a batch is refused too");
    store.rollback();
    drop(first);
}

#[test]
fn an_error_no_savepoint_undid_refuses_the_commit_and_writes_need_a_batch() {
    let pg = cluster();
    let url = pg.create_database("kite").unwrap();
    let s = PgStore::open(&url, None).unwrap();
    // Outside a batch nothing is written.
    assert!(s.set_counter("x", 1).is_err());
    // An error outside any savepoint: PostgreSQL would answer COMMIT by rolling back silently;
    // the store refuses the commit instead, and nothing of the batch is there.
    s.begin().unwrap();
    s.set_counter("x", 1).unwrap();
    assert!(s.query("SELECT no_such_column FROM counters", &[]).is_err());
    assert!(s.commit_deferred().is_err());
    assert_eq!(s.counter("x").unwrap(), 0);
    // The next batch is clean. A request refused before its savepoint (a frame that is no
    // request) is undone with a rollback to no savepoint: that must not cost the batch.
    s.begin().unwrap();
    s.set_counter("x", 2).unwrap();
    s.rollback_savepoint().unwrap();
    commit(&s);
    assert_eq!(s.counter("x").unwrap(), 2);
}

#[test]
fn under_load_a_batch_commits_without_waiting_for_the_disk_and_the_syncer_flushes_past_it() {
    let pg = cluster();
    let url = pg.create_database("kite").unwrap();
    let s = PgStore::open(&url, None).unwrap();
    let other = connect(&url).unwrap();
    s.more_waiting(true);
    s.begin().unwrap();
    s.set_counter("x", 1).unwrap();
    assert_eq!(s.commit_deferred().unwrap(), Committed::NeedsSync, "a batch that wrote needs the syncer");
    assert_eq!(other.query_one("SELECT value FROM counters WHERE name = 'x'", &[]).unwrap().get::<_, i64>(0), 1, "committed");
    let written: String = other.query_one("SELECT pg_current_wal_insert_lsn()::text", &[]).unwrap().get(0);
    s.durable().unwrap().sync().unwrap();
    let flushed: bool = other.query_one("SELECT pg_current_wal_flush_lsn() >= $1::text::pg_lsn", &[&written]).unwrap().get(0);
    assert!(flushed, "the WAL is on disk past the batch's commit");
    // A batch that only read needs nothing more.
    s.begin().unwrap();
    assert_eq!(s.counter("x").unwrap(), 1);
    assert_eq!(s.commit_deferred().unwrap(), Committed::Durable);
    // Nor does one that nobody waits behind: it committed synchronously.
    s.more_waiting(false);
    s.begin().unwrap();
    s.set_counter("x", 2).unwrap();
    assert_eq!(s.commit_deferred().unwrap(), Committed::Durable);
    let written: String = other.query_one("SELECT pg_current_wal_insert_lsn()::text", &[]).unwrap().get(0);
    let flushed: bool = other.query_one("SELECT pg_current_wal_flush_lsn() >= $1::text::pg_lsn", &[&written]).unwrap().get(0);
    assert!(flushed, "the WAL is on disk past the synchronous commit");
}

#[test]
fn recorded_waits_commit_without_being_waited_for_and_come_back_first_come_first() {
    let pg = cluster();
    let url = pg.create_database("kite").unwrap();
    let s = PgStore::open(&url, None).unwrap();
    s.begin().unwrap();
    s.insert_wait("f", "late", LockMode::Exclusive, 20).unwrap();
    // Nothing waits on it: the batch's COMMIT is not waited for.
    assert_eq!(s.commit_deferred().unwrap(), Committed::Durable);
    s.begin().unwrap();
    s.insert_wait("f", "early", LockMode::Shared, 10).unwrap();
    // Asked again: the first time stays.
    s.insert_wait("f", "late", LockMode::Exclusive, 30).unwrap();
    assert_eq!(s.commit_deferred().unwrap(), Committed::Durable);
    let order = |s: &PgStore| s.load_waits().unwrap().into_iter().map(|(p, m, who)| format!("{}:{}:{who}", p.as_str(), m.as_str())).collect::<Vec<_>>();
    assert_eq!(order(&s), vec!["f:shared:early", "f:exclusive:late"]);
    s.begin().unwrap();
    s.delete_wait("f", "early").unwrap();
    commit(&s);
    assert_eq!(order(&s), vec!["f:exclusive:late"]);
    s.begin().unwrap();
    s.delete_waits_of("late").unwrap();
    commit(&s);
    assert!(order(&s).is_empty());
}

#[test]
fn a_password_is_not_shown_in_messages() {
    assert_eq!(redact_url("postgres://kite:secret@db:5432/kite"), "postgres://kite:***@db:5432/kite");
    assert_eq!(redact_url("postgres://kite@db/kite"), "postgres://kite@db/kite");
}
