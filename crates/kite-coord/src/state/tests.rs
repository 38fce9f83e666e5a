//! The state owner in process: an in-memory store, connections as channels, and tokio's paused
//! clock, so timeouts (the reaper, lock waits) are tested at their exact edges without sleeping.

use super::*;
use serde_json::json;
use std::time::Duration;

struct Harness {
    tx: mpsc::UnboundedSender<Command>,
    next_conn: ConnId,
    _dir: tempfile::TempDir,
}

struct TestConn {
    id: ConnId,
    inbound: crate::outbound::Inbound,
    next_req: u64,
}

impl Harness {
    fn start(heartbeat_timeout: Duration) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let config = DaemonConfig {
            home: root.join(".kite"),
            root,
            heartbeat_timeout,
            durability: kite_store::Durability::Normal,
            retention: crate::Retention::default(),
        };
        let state = State::restore(Box::new(Store::open_in_memory().unwrap()), Outlet::Direct, &config).unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(state.run(rx));
        Harness { tx, next_conn: 1, _dir: dir }
    }

    fn connect(&mut self) -> TestConn {
        let (out, inbound) = crate::outbound::channel();
        let id = self.next_conn;
        self.next_conn += 1;
        self.tx.send(Command::Connect { conn: id, out }).unwrap();
        TestConn { id, inbound, next_req: 1 }
    }

    /// Sends a request; returns its id.
    fn send(&self, c: &mut TestConn, op: &str, args: Value) -> u64 {
        let id = c.next_req;
        c.next_req += 1;
        let req = kite_proto::frame::parse_request(&json!({"id": id, "op": op, "args": args}).to_string()).unwrap();
        self.tx.send(Command::Request { conn: c.id, req }).unwrap();
        id
    }

    /// Sends a request and returns its answer (Ok result or the error's code).
    async fn call(&self, c: &mut TestConn, op: &str, args: Value) -> Result<Value, String> {
        let id = self.send(c, op, args);
        reply_to(c, id).await.unwrap_or_else(|| panic!("no reply to {op}"))
    }
}

/// Lets the owner run (no time passes), then takes the reply to `id` if it came.
async fn reply_to(c: &mut TestConn, id: u64) -> Option<Result<Value, String>> {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    while let Some(line) = c.inbound.try_recv() {
        c.inbound.written(line.len());
        if let Ok(ServerMessage::Reply { id: Some(got), result }) = ServerMessage::decode(&line) {
            if got == id {
                return Some(result.map_err(|e| format!("{:?}", e.code)));
            }
        }
    }
    None
}

async fn register(h: &Harness, c: &mut TestConn, name: &str) -> String {
    h.call(c, "session.register", json!({"name": name})).await.unwrap()["id"].as_str().unwrap().to_string()
}

async fn state_of(h: &Harness, c: &mut TestConn, session: &str) -> String {
    let list = h.call(c, "session.list", json!({})).await.unwrap();
    list["sessions"].as_array().unwrap().iter().find(|s| s["id"] == session).unwrap()["state"].as_str().unwrap().to_string()
}

#[tokio::test(start_paused = true)]
async fn a_silent_session_is_reaped_at_its_timeout_and_its_lock_goes_to_the_waiter() {
    let mut h = Harness::start(Duration::from_secs(10));
    let (mut a, mut b) = (h.connect(), h.connect());
    let sa = register(&h, &mut a, "silent").await;
    let sb = register(&h, &mut b, "waiter").await;
    h.call(&mut a, "lock.acquire", json!({"path": "src/a.rs", "session": sa})).await.unwrap();
    let wait = h.send(&mut b, "lock.acquire", json!({"path": "src/a.rs", "session": sb, "wait": true}));
    assert!(reply_to(&mut b, wait).await.is_none(), "queued behind the holder");

    // B heartbeats every 4 s; A says nothing. Just before A's timeout, nothing has moved.
    for _ in 0..2 {
        tokio::time::advance(Duration::from_secs(4)).await;
        h.call(&mut b, "session.heartbeat", json!({"session": sb})).await.unwrap();
    }
    tokio::time::advance(Duration::from_millis(1_500)).await;
    assert!(reply_to(&mut b, wait).await.is_none(), "9.5 s: the holder is not reaped yet");
    assert_eq!(state_of(&h, &mut b, &sa).await, "live");

    // Past the timeout (plus at most one reaper tick): A is reaped and B is granted at once.
    tokio::time::advance(Duration::from_millis(3_000)).await;
    let granted = reply_to(&mut b, wait).await.expect("the waiter is granted when the holder is reaped").unwrap();
    assert_eq!(granted["session"], sb.as_str());
    assert_eq!(state_of(&h, &mut b, &sa).await, "reaped");
    assert_eq!(state_of(&h, &mut b, &sb).await, "live", "heartbeats kept the waiter alive");
}

#[tokio::test(start_paused = true)]
async fn a_lock_wait_times_out_at_its_deadline_and_not_before() {
    let mut h = Harness::start(Duration::from_secs(300));
    let (mut a, mut b) = (h.connect(), h.connect());
    let sa = register(&h, &mut a, "holder").await;
    let sb = register(&h, &mut b, "impatient").await;
    h.call(&mut a, "lock.acquire", json!({"path": "Cargo.lock", "session": sa})).await.unwrap();
    let wait = h.send(&mut b, "lock.acquire", json!({"path": "Cargo.lock", "session": sb, "wait": true, "timeout_ms": 5_000}));
    assert!(reply_to(&mut b, wait).await.is_none(), "queued (the owner has taken the request: its clock starts now)");
    tokio::time::advance(Duration::from_millis(4_990)).await;
    assert!(reply_to(&mut b, wait).await.is_none(), "still waiting at 4.99 s");
    tokio::time::advance(Duration::from_millis(20)).await;
    assert_eq!(reply_to(&mut b, wait).await.expect("answered at the deadline"), Err("Timeout".to_string()));
    // The holder still holds; the expired waiter left no trace in the queue.
    let locks = h.call(&mut a, "lock.list", json!({})).await.unwrap();
    assert_eq!(locks["held"].as_array().unwrap().len(), 1);
    assert!(locks["waiting"].as_array().unwrap().is_empty(), "{locks}");
}

#[tokio::test(start_paused = true)]
async fn a_reaped_sessions_task_goes_back_to_pending_with_its_attempt_counted() {
    let mut h = Harness::start(Duration::from_secs(10));
    let mut a = h.connect();
    let s = register(&h, &mut a, "worker").await;
    let t = h.call(&mut a, "task.create", json!({"title": "t"})).await.unwrap()["id"].as_i64().unwrap();
    h.call(&mut a, "task.start", json!({"task": t, "session": s})).await.unwrap();
    tokio::time::advance(Duration::from_secs(12)).await;
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    let shown = h.call(&mut a, "task.show", json!({"task": t})).await.unwrap();
    assert_eq!((shown["status"].as_str(), shown["attempts"].as_u64()), (Some("pending"), Some(1)), "{shown}");
    // The late finish from the reaped session is refused (fenced), and changes nothing.
    assert_eq!(h.call(&mut a, "task.done", json!({"task": t, "session": s})).await, Err("Fenced".to_string()));
    let history = shown["history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["to"], "pending");
}
