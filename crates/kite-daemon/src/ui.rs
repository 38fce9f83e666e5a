//! The dashboard (`kite ui`): a local web page served by the daemon, live from the event log.
//!
//! Why in the daemon: the page shows what only the daemon knows (who waits on whom, why a task
//! was pruned, what a session was given), and it must not add a process to keep alive. It reads
//! everything through the same operations the CLI uses, as a client of the daemon's own socket
//! (so the state owner stays the one owner of state; the merge queue's book too, through
//! `merge.*`), plus the files the home keeps beside the database (the strategy loop's last
//! rounds, the sessions' injected notes).
//!
//! Security: it listens on 127.0.0.1 only, on `[ui] port` or a free port chosen once and kept in
//! `<home>/ui.json` (so a page left open finds the daemon again after a restart); every request
//! needs the home's token (`<home>/ui-token`, 0600, random, made once) and a loopback `Host`
//! header (a page on another site cannot reach it through DNS rebinding). Read-only unless
//! `[ui] actions = true`; then prune, discard and stopping a session go through the same
//! operations as the CLI.
//! Everything the page needs is compiled in: no CDN, no external asset.

use crate::ComponentError;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kite_proto::Client;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{Component, StopFuture};

/// `[ui]` in kite.toml.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UiConfig {
    /// Serve the dashboard from the daemon.
    pub enabled: bool,
    /// 0: a free port, chosen once and kept in `<home>/ui.json`.
    pub port: u16,
    /// Let the page prune tasks, discard unlanded work and stop sessions (off: read-only).
    pub actions: bool,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            enabled: true,
            port: 0,
            actions: false,
        }
    }
}

/// Where the dashboard listens (`<home>/ui.json`), for `kite ui`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UiAddr {
    pub port: u16,
    pub pid: u32,
}

impl UiAddr {
    pub fn path(home: &Path) -> PathBuf {
        home.join("ui.json")
    }

    pub fn load(home: &Path) -> Option<UiAddr> {
        serde_json::from_slice(&std::fs::read(UiAddr::path(home)).ok()?).ok()
    }

    /// The page's address with the token.
    pub fn url(&self, token: &str) -> String {
        format!("http://127.0.0.1:{}/?token={token}", self.port)
    }
}

/// The home's token as the daemon wrote it (`kite ui` only reads it: a token made by a client
/// would not be the running daemon's).
pub fn read_token(home: &Path) -> Option<String> {
    let t = std::fs::read_to_string(home.join("ui-token")).ok()?;
    let t = t.trim().to_string();
    (t.len() >= 32).then_some(t)
}

/// The daemon's token: made once (random), written to a temporary file and renamed into place,
/// and kept 0600 (an existing file's mode is set again); the same across restarts.
pub fn token(home: &Path) -> std::io::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let p = home.join("ui-token");
    if let Some(t) = read_token(home) {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
        return Ok(t);
    }
    let t: String = (0..32)
        .map(|_| format!("{:x}", rand::random::<u8>() & 0xf))
        .collect();
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = home.join("ui-token.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(t.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &p)?;
    Ok(t)
}

/// What the dashboard needs from the daemon.
pub struct UiParts {
    pub cfg: UiConfig,
    pub home: PathBuf,
    pub root: PathBuf,
    pub socket: PathBuf,
    /// Where landed work lands (the quality panel reads its history).
    pub merge: kite_land::MergeConfig,
}

/// The dashboard component: its own thread and runtime, so serving a page (serializing
/// thousands of tasks) never runs on the coordinator's thread.
pub struct Ui {
    parts: Option<UiParts>,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ui {
    pub fn new(parts: UiParts) -> Ui {
        Ui {
            parts: Some(parts),
            stop: None,
            thread: None,
        }
    }
}

impl Component for Ui {
    fn name(&self) -> &'static str {
        "ui"
    }

    fn listening(&mut self) {
        let Some(parts) = self.parts.take() else {
            return;
        };
        if !parts.cfg.enabled {
            tracing::info!("dashboard off ([ui] enabled = false)");
            return;
        }
        let (tx, mut rx) = tokio::sync::watch::channel(false);
        self.stop = Some(tx);
        let spawned = std::thread::Builder::new()
            .name("kite-ui".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => return tracing::error!("dashboard off: no runtime: {e}"),
                };
                rt.block_on(async move {
                tokio::select! {
                    r = serve(parts) => if let Err(e) = r { tracing::error!("dashboard off: {e}") },
                    _ = rx.wait_for(|s| *s) => {}
                }
            });
            });
        match spawned {
            Ok(t) => self.thread = Some(t),
            Err(e) => tracing::error!("dashboard off: no thread: {e}"),
        }
    }

    fn stop(&mut self) -> StopFuture<'_> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(true);
        }
        Box::pin(async {})
    }

    fn finish(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct App {
    client: Client,
    token: String,
    port: u16,
    home: PathBuf,
    root: PathBuf,
    merge: kite_land::MergeConfig,
    actions: bool,
}

/// Read-only operations the page may ask for.
const READ_OPS: &[&str] = &[
    "status",
    "task.list",
    "task.show",
    "events.list",
    "session.list",
    "lock.list",
    "memory.recall",
];

const PAGE: &str = include_str!("ui/index.html");

async fn serve(parts: UiParts) -> Result<(), ComponentError> {
    let token = token(&parts.home).map_err(ComponentError::io(
        "keep the token in",
        parts.home.join("ui-token"),
    ))?;
    let client = crate::sched::connect_own(&parts.socket).await;
    // The configured port, else the one this home used before, else a free one.
    let wanted = if parts.cfg.port != 0 {
        parts.cfg.port
    } else {
        UiAddr::load(&parts.home).map_or(0, |a| a.port)
    };
    let listener = match tokio::net::TcpListener::bind(SocketAddr::from((
        Ipv4Addr::LOCALHOST,
        wanted,
    )))
    .await
    {
        Ok(l) => l,
        Err(e) if parts.cfg.port == 0 => {
            tracing::info!("dashboard: port {wanted} is taken ({e}); choosing another");
            tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
                .await
                .map_err(|source| ComponentError::Listen { port: 0, source })?
        }
        Err(source) => {
            return Err(ComponentError::Listen {
                port: wanted,
                source,
            })
        }
    };
    let port = listener
        .local_addr()
        .map_err(|source| ComponentError::Listen {
            port: wanted,
            source,
        })?
        .port();
    let addr = UiAddr {
        port,
        pid: std::process::id(),
    };
    let addr_file = UiAddr::path(&parts.home);
    std::fs::write(&addr_file, serde_json::to_vec(&addr)?)
        .map_err(ComponentError::io("write", &addr_file))?;
    tracing::info!(
        port,
        "dashboard on http://127.0.0.1:{port}/ (`kite ui` prints the address with its token)"
    );
    let app = Arc::new(App {
        client,
        token,
        port,
        home: parts.home,
        root: parts.root,
        merge: parts.merge,
        actions: parts.cfg.actions,
    });
    let router = Router::new()
        .route("/", get(page))
        .route("/api/op/{op}", get(op))
        .route("/api/merge", get(merge))
        .route("/api/rounds", get(rounds))
        .route("/api/templates", get(templates))
        .route("/api/quality", get(quality))
        .route("/api/injected", get(injected))
        .route("/api/config", get(config))
        .route("/api/events", get(events))
        .route("/api/action/{action}/{id}", post(action))
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app);
    axum::serve(listener, router)
        .await
        .map_err(ComponentError::Serve)
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Refuses a request without the token, or addressed to a name other than loopback.
async fn guard(
    State(app): State<Arc<App>>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let loopback = [
        format!("127.0.0.1:{}", app.port),
        format!("localhost:{}", app.port),
    ];
    if !loopback.iter().any(|h| h == host) {
        return (StatusCode::FORBIDDEN, "kite ui answers only on 127.0.0.1\n").into_response();
    }
    let given = q.token.unwrap_or_default();
    // Compared in constant time: the token is the only secret between a page and the daemon.
    let same = given.len() == app.token.len()
        && given
            .bytes()
            .zip(app.token.bytes())
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            == 0;
    if !same {
        return (
            StatusCode::FORBIDDEN,
            "kite ui: this address needs the home's token; `kite ui` prints the whole address\n",
        )
            .into_response();
    }
    next.run(req).await
}

/// What the page may offer: actions only when `[ui] actions = true`.
async fn config(State(app): State<Arc<App>>) -> Json<Value> {
    Json(json!({"actions": app.actions}))
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

fn fail(e: impl std::fmt::Display) -> Response {
    (
        StatusCode::BAD_GATEWAY,
        Json(json!({"error": e.to_string()})),
    )
        .into_response()
}

#[derive(Deserialize)]
struct OpQuery {
    args: Option<String>,
}

async fn op(
    State(app): State<Arc<App>>,
    UrlPath(op): UrlPath<String>,
    Query(q): Query<OpQuery>,
) -> Response {
    if !READ_OPS.contains(&op.as_str()) {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("the page may not call `{op}`")})),
        )
            .into_response();
    }
    let args: Value = match q.args.as_deref().map(serde_json::from_str).transpose() {
        Ok(a) => a.unwrap_or_else(|| json!({})),
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("args is not JSON: {e}")})),
            )
                .into_response()
        }
    };
    match app.client.call_value(&op, args).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => fail(e),
    }
}

async fn merge(State(app): State<Arc<App>>) -> Response {
    match app
        .client
        .request::<kite_proto::op::MergeList>(kite_proto::ops::MergeList { finished: Some(50) })
        .await
    {
        Ok(b) => Json(b).into_response(),
        Err(e) => fail(e),
    }
}

async fn rounds(State(app): State<Arc<App>>) -> Response {
    let text =
        std::fs::read_to_string(kite_core::Home::new(&app.home).rounds()).unwrap_or_default();
    let v: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    Json(v).into_response()
}

async fn templates(State(app): State<Arc<App>>) -> Response {
    match crate::queue::stats(&app.client, None).await {
        Ok(s) => Json(s.by_template).into_response(),
        Err(e) => fail(e),
    }
}

/// `kite report --json` for the quality panel: the figures overall and per template, and the
/// landed work by week.
async fn quality(State(app): State<Arc<App>>) -> Response {
    match crate::quality::records(&app.client, &app.root, &app.home, &app.merge, None, None).await {
        Ok(records) => Json(kite_quality::Report::build(&records, None, None)).into_response(),
        Err(e) => fail(e),
    }
}

/// What each Claude Code session was given from the vault (the hooks' records).
async fn injected(State(app): State<Arc<App>>) -> Response {
    let mut out = Vec::new();
    if let Ok(dir) = std::fs::read_dir(app.home.join("claude-sessions")) {
        for e in dir.flatten() {
            let Ok(b) = std::fs::read(e.path()) else {
                continue;
            };
            // A record that is not a JSON object is not one of the hooks': skipped.
            let Ok(mut v @ Value::Object(_)) = serde_json::from_slice::<Value>(&b) else {
                continue;
            };
            let modified = e.metadata().and_then(|m| m.modified()).ok();
            let ms = modified
                .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as i64);
            v["claude_session"] = json!(e
                .path()
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned()));
            v["updated_ms"] = json!(ms);
            out.push(v);
        }
    }
    out.sort_by_key(|v| std::cmp::Reverse(v["updated_ms"].as_i64()));
    out.truncate(50);
    Json(out).into_response()
}

#[derive(Deserialize)]
struct SinceQuery {
    since: Option<i64>,
}

/// Server-sent events from the event log: every new event, within a poll (250 ms) of being
/// written. The browser's EventSource reconnects on its own (after `retry`), also across a
/// daemon restart, and resumes from the last id it saw.
async fn events(
    State(app): State<Arc<App>>,
    Query(q): Query<SinceQuery>,
    headers: HeaderMap,
) -> impl IntoResponse {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<i64>().ok());
    let start = resume.or(q.since);
    let state = (app, start, std::collections::VecDeque::<Value>::new());
    let stream = futures_util::stream::unfold(state, |(app, mut since, mut queue)| async move {
        loop {
            if let Some(e) = queue.pop_front() {
                let id = e["id"].as_i64().unwrap_or(0);
                since = Some(id);
                let ev = Event::default()
                    .id(id.to_string())
                    .event("kite")
                    .data(e.to_string())
                    .retry(Duration::from_millis(1000));
                return Some((
                    Ok::<Event, std::convert::Infallible>(ev),
                    (app, since, queue),
                ));
            }
            // First connection with no position: start at the end of the log.
            let args = match since {
                Some(s) => json!({"since": s, "limit": 500}),
                None => json!({"limit": 1}),
            };
            match app.client.call_value("events.list", args).await {
                Ok(v) => {
                    let evs = v["events"].as_array().cloned().unwrap_or_default();
                    if since.is_none() {
                        since = Some(
                            evs.iter()
                                .filter_map(|e| e["id"].as_i64())
                                .max()
                                .unwrap_or(0),
                        );
                    } else {
                        queue.extend(evs.into_iter().filter(|e| e["id"].as_i64() > since));
                    }
                }
                Err(e) => tracing::debug!("dashboard events: {e}"),
            }
            if queue.is_empty() {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
}

#[derive(Deserialize)]
struct ActionQuery {
    reason: Option<String>,
}

/// Actions, only with `[ui] actions = true`: `prune` a pending task, `discard` a task's unlanded
/// work (both by task id), `stop` a session at its next tool call (by session id, with an
/// optional `reason`). Through the same operations as the CLI.
async fn action(
    State(app): State<Arc<App>>,
    UrlPath((action, id)): UrlPath<(String, String)>,
    Query(q): Query<ActionQuery>,
) -> Response {
    if !app.actions {
        return (StatusCode::FORBIDDEN, Json(json!({"error": "the dashboard is read-only; set [ui] actions = true in kite.toml"})))
            .into_response();
    }
    let task = || {
        id.parse::<i64>().map_err(|_| {
            (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("`{id}` is not a task id")})),
            )
                .into_response()
        })
    };
    match action.as_str() {
        "prune" => {
            let id = match task() {
                Ok(id) => id,
                Err(r) => return r,
            };
            match app
                .client
                .call_value(
                    "task.prune",
                    json!({"task": id, "reason": "pruned from the dashboard"}),
                )
                .await
            {
                Ok(v) => Json(v).into_response(),
                Err(e) => fail(e),
            }
        }
        "discard" => {
            let id = match task() {
                Ok(id) => id,
                Err(r) => return r,
            };
            // The CLI's discard, with the daemon's one rule (not while an agent works in it or a
            // landing of it is in flight).
            match kite_land::discard(&app.client, &app.root, id).await {
                Ok(gone) => Json(json!({"removed": gone})).into_response(),
                Err(e @ kite_land::LandError::Refused(_)) => {
                    (StatusCode::CONFLICT, Json(json!({"error": e.to_string()}))).into_response()
                }
                Err(e) => fail(e),
            }
        }
        "stop" => {
            let reason = q
                .reason
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .unwrap_or("stopped from the dashboard");
            match app
                .client
                .call_value("session.stop", json!({"session": id, "reason": reason}))
                .await
            {
                Ok(v) => Json(v).into_response(),
                Err(e) => fail(e),
            }
        }
        other => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no action `{other}`")})),
        )
            .into_response(),
    }
}
