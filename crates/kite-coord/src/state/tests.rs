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
            backend: Default::default(),
            listen: None,
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

#[tokio::test(start_paused = true)]
async fn costs_are_kept_per_task_and_summed_for_today_and_the_lifetime() {
    let mut h = Harness::start(Duration::from_secs(300));
    let mut a = h.connect();
    let s = register(&h, &mut a, "agent").await;
    let t = h.call(&mut a, "task.create", json!({"title": "t"})).await.unwrap()["id"].as_i64().unwrap();
    let first = json!({
        "session": s, "task": t, "attempt": 1, "source": "agent", "usd": 0.25, "input_tokens": 100, "output_tokens": 20,
        "cache_creation_input_tokens": 300, "cache_read_input_tokens": 4000, "model": "claude-sonnet-4-5", "turns": 3,
        "duration_ms": 9000, "agent_session": "cc-1", "outcome": "transient",
    });
    let id = h.call(&mut a, "cost.record", first).await.unwrap()["id"].as_i64().unwrap();
    let second = json!({"session": s, "task": t, "attempt": 2, "source": "agent", "usd": 0.5, "input_tokens": 10, "outcome": "finished", "unpriced": ["claude-next"]});
    assert_eq!(h.call(&mut a, "cost.record", second).await.unwrap()["id"].as_i64(), Some(id + 1));
    h.call(&mut a, "cost.record", json!({"session": "cc-person", "source": "interactive", "usd": 1.0, "output_tokens": 7})).await.unwrap();

    // Refused records change nothing: no row, no event, no counter.
    for (args, code) in [
        (json!({"session": s, "task": 999, "source": "agent", "usd": 1.0}), "NotFound"),
        (json!({"session": s, "source": "agent", "usd": -1.0}), "BadRequest"),
        (json!({"session": s, "source": "robot", "usd": 1.0}), "BadRequest"),
        (json!({"session": s, "source": "agent", "usd": 1.0, "dollars": 2}), "BadRequest"),
    ] {
        assert_eq!(h.call(&mut a, "cost.record", args.clone()).await, Err(code.to_string()), "{args}");
    }

    let shown = h.call(&mut a, "task.show", json!({"task": t})).await.unwrap();
    let costs = shown["costs"].as_array().unwrap();
    assert_eq!(costs.iter().map(|c| c["attempt"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2], "{shown}");
    assert_eq!((costs[0]["model"].as_str(), costs[0]["agent_session"].as_str(), costs[0]["turns"].as_u64()), (Some("claude-sonnet-4-5"), Some("cc-1"), Some(3)));
    assert_eq!(costs[1]["unpriced"], json!(["claude-next"]));
    assert_eq!(shown["cost"]["usd"].as_f64(), Some(0.75));
    assert_eq!((shown["cost"]["runs"].as_u64(), shown["cost"]["input_tokens"].as_u64()), (Some(2), Some(110)));

    let summary = h.call(&mut a, "cost.summary", json!({})).await.unwrap();
    assert_eq!(summary["agents_today_usd"].as_f64(), Some(0.75), "{summary}");
    for period in ["today", "lifetime"] {
        let p = &summary[period];
        assert_eq!((p["usd"].as_f64(), p["agents_usd"].as_f64(), p["interactive_usd"].as_f64()), (Some(1.75), Some(0.75), Some(1.0)), "{period}: {p}");
        assert_eq!((p["runs"].as_u64(), p["output_tokens"].as_u64(), p["cache_read_input_tokens"].as_u64()), (Some(3), Some(27), Some(4000)), "{period}");
    }
    let day = summary["day_start_ms"].as_i64().unwrap();
    assert_eq!(day % 86_400_000, 0);
    assert!(now_ms() - day < 86_400_000);
    let status = h.call(&mut a, "status", json!({})).await.unwrap();
    assert_eq!(status["cost"], summary);

    let events = h.call(&mut a, "events.list", json!({})).await.unwrap();
    let recorded: Vec<&Value> = events["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "cost.recorded").collect();
    assert_eq!(recorded.len(), 3);
    assert_eq!(recorded[0]["data"]["task"].as_i64(), Some(t));
    assert_eq!(recorded[0]["data"]["tokens"], json!({"input": 100, "output": 20, "cache_creation": 300, "cache_read": 4000}));
    assert_eq!(recorded[2]["data"]["task"], Value::Null);
}

#[tokio::test(start_paused = true)]
async fn news_is_told_once_to_the_right_session_and_a_pruned_task_stops_its_agent() {
    let mut h = Harness::start(Duration::from_secs(60));
    let mut c = h.connect();
    let agent = register(&h, &mut c, "agent").await;
    let other = register(&h, &mut c, "other").await;
    let person = register(&h, &mut c, "person").await;
    let news = |s: &str| json!({"session": s, "deliver": true});
    // Nothing new: nothing said.
    assert_eq!(h.call(&mut c, "session.news", news(&agent)).await.unwrap()["items"], json!([]));
    h.call(&mut c, "broadcast", json!({"message": "main is frozen", "from": person})).await.unwrap();
    h.call(&mut c, "message", json!({"to": other, "text": "for other only"})).await.unwrap();
    let got = h.call(&mut c, "session.news", news(&agent)).await.unwrap();
    let items = got["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{got}");
    assert!(items[0]["text"].as_str().unwrap().contains("BROADCAST from person") && items[0]["text"].as_str().unwrap().contains("main is frozen"));
    assert_eq!(h.call(&mut c, "session.news", news(&agent)).await.unwrap()["items"], json!([]), "told once");
    // Not delivering (before a tool runs) keeps the items for later.
    h.call(&mut c, "message", json!({"to": agent, "text": "look at #12"})).await.unwrap();
    assert_eq!(h.call(&mut c, "session.news", json!({"session": agent})).await.unwrap()["items"], json!([]));
    let got = h.call(&mut c, "session.news", news(&agent)).await.unwrap();
    assert!(got["items"][0]["text"].as_str().unwrap().contains("MESSAGE from a person: look at #12"), "{got}");
    // The sender does not hear its own broadcast; the other session hears both.
    assert_eq!(h.call(&mut c, "session.news", news(&person)).await.unwrap()["items"], json!([]));
    assert_eq!(h.call(&mut c, "session.news", news(&other)).await.unwrap()["items"].as_array().unwrap().len(), 2);
    // A message to a session that is not live, or an empty one, is refused.
    assert_eq!(h.call(&mut c, "message", json!({"to": "s99", "text": "hi"})).await.unwrap_err(), "NotFound");
    assert_eq!(h.call(&mut c, "message", json!({"to": agent, "text": "  "})).await.unwrap_err(), "BadRequest");
    // A task pruned while the agent works on it: told, and ordered to stop at every ask.
    let t = h.call(&mut c, "task.create", json!({"title": "t"})).await.unwrap()["id"].as_i64().unwrap();
    h.call(&mut c, "task.start", json!({"task": t, "session": agent})).await.unwrap();
    h.call(&mut c, "task.prune", json!({"task": t, "reason": "cancelled: not needed"})).await.unwrap();
    let got = h.call(&mut c, "session.news", json!({"session": agent})).await.unwrap();
    assert!(got["stop"].as_str().unwrap().contains("cancelled: not needed"), "{got}");
    assert_eq!(got["stop_kind"], "pruned");
    assert!(h.call(&mut c, "session.news", news(&agent)).await.unwrap()["stop"].is_string(), "the order stands");
    // A stoppable session that is being stopped is not handed its news (the stop would hide it).
    h.call(&mut c, "message", json!({"to": agent, "text": "kept"})).await.unwrap();
    let got = h.call(&mut c, "session.news", json!({"session": agent, "deliver": true, "stop_on_budget": true})).await.unwrap();
    assert_eq!(got["items"], json!([]), "{got}");
    // A person's stop order is told to them as well (they are not stopped without stop_people).
    h.call(&mut c, "session.stop", json!({"session": person, "reason": "lunch"})).await.unwrap();
    let got = h.call(&mut c, "session.news", news(&person)).await.unwrap();
    assert_eq!((got["stop"].as_str(), got["stop_kind"].as_str()), (Some("lunch"), Some("ordered")));
    assert!(got["items"][0]["text"].as_str().unwrap().contains("STOP requested: lunch"), "{got}");
    // session.list shows what was told.
    let list = h.call(&mut c, "session.list", json!({})).await.unwrap();
    let a = list["sessions"].as_array().unwrap().iter().find(|s| s["id"] == agent.as_str()).unwrap().clone();
    assert!(a["told"].as_array().unwrap().len() >= 3, "{a}");
    assert!(a["stop"].is_string());
}

#[tokio::test(start_paused = true)]
async fn a_write_to_a_path_another_session_holds_is_denied_and_an_ask_reaches_the_holder() {
    let mut h = Harness::start(Duration::from_secs(60));
    let mut c = h.connect();
    let alice = register(&h, &mut c, "alice").await;
    let agent = register(&h, &mut c, "agent").await;
    h.call(&mut c, "lock.acquire", json!({"path": "src", "session": alice})).await.unwrap();
    let got = h.call(&mut c, "session.news", json!({"session": agent, "write_path": "src/a.rs"})).await.unwrap();
    let deny = got["deny"].as_str().unwrap();
    assert!(deny.contains("src/a.rs is locked by session") && deny.contains("alice") && deny.contains("kite_lock"), "{deny}");
    // Its own locks and unlocked paths are never denied.
    assert!(h.call(&mut c, "session.news", json!({"session": alice, "write_path": "src/a.rs"})).await.unwrap().get("deny").is_none());
    assert!(h.call(&mut c, "session.news", json!({"session": agent, "write_path": "docs/x.md"})).await.unwrap().get("deny").is_none());
    // A shared lock does not deny a write.
    h.call(&mut c, "lock.acquire", json!({"path": "docs", "session": alice, "mode": "shared"})).await.unwrap();
    assert!(h.call(&mut c, "session.news", json!({"session": agent, "write_path": "docs/x.md"})).await.unwrap().get("deny").is_none());
    // Asking for it tells the holder.
    assert_eq!(h.call(&mut c, "lock.ask", json!({"path": "src/a.rs", "by": agent})).await.unwrap()["delivered"], 1);
    let got = h.call(&mut c, "session.news", json!({"session": alice, "deliver": true})).await.unwrap();
    assert!(got["items"][0]["text"].as_str().unwrap().contains("wants the lock on src/a.rs"), "{got}");
}

#[tokio::test(start_paused = true)]
async fn a_running_agents_spend_counts_against_the_daily_budget_until_its_cost_is_recorded() {
    let mut h = Harness::start(Duration::from_secs(60));
    let mut c = h.connect();
    let a = register(&h, &mut c, "a").await;
    let b = register(&h, &mut c, "b").await;
    let ask = |s: &str, running: f64| json!({"session": s, "daily_budget_usd": 10.0, "stop_on_budget": true, "running_usd": running});
    assert!(h.call(&mut c, "session.news", ask(&a, 4.0)).await.unwrap().get("stop").is_none());
    let got = h.call(&mut c, "session.news", ask(&b, 7.0)).await.unwrap();
    assert_eq!(got["stop_kind"], "budget", "4 + 7 running: {got}");
    // a's run ends and records its $4: its running figure is in the record now, not twice.
    h.call(&mut c, "cost.record", json!({"session": a, "source": "agent", "usd": 4.0})).await.unwrap();
    assert!(h.call(&mut c, "session.news", ask(&b, 5.0)).await.unwrap().get("stop").is_none(), "4 recorded + 5 running");
    // A person's session is warned at 80%, once, and never stopped by the budget.
    let p = register(&h, &mut c, "person").await;
    let got = h.call(&mut c, "session.news", json!({"session": p, "deliver": true, "daily_budget_usd": 10.0})).await.unwrap();
    assert!(got.get("stop").is_none());
    assert!(got["items"][0]["text"].as_str().unwrap().starts_with("BUDGET"), "{got}");
    let got = h.call(&mut c, "session.news", json!({"session": p, "deliver": true, "daily_budget_usd": 10.0})).await.unwrap();
    assert_eq!(got["items"], json!([]), "warned once a day");
    // Absurd token counts are refused (their sums would overflow).
    let err = h.call(&mut c, "cost.record", json!({"session": a, "source": "agent", "usd": 0.0, "input_tokens": u64::MAX})).await.unwrap_err();
    assert_eq!(err, "BadRequest");
}
