//! The subcommands, and what they share: finding the home and connecting to the daemon.

pub(crate) mod daemon;
pub(crate) mod doctor;
pub(crate) mod gc;
pub(crate) mod hook;
pub(crate) mod install;
pub(crate) mod mcp;
pub(crate) mod merge;
pub(crate) mod sched;
pub(crate) mod lock;
pub(crate) mod session;
pub(crate) mod status;
pub(crate) mod task;
pub(crate) mod ui;
pub(crate) mod vault;

use crate::config::Config;
use crate::home::{self, Places};
use crate::{Cli, Command};
use anyhow::Result;
use kite_proto::Client;

/// What every command gets: where things are, the config, and whether to print JSON.
pub(crate) struct Ctx {
    pub(crate) places: Places,
    pub(crate) config: Config,
    pub(crate) json: bool,
}

impl Ctx {
    pub(crate) async fn client(&self) -> Result<Client> {
        Ok(Client::connect(&self.places.socket()).await?)
    }
}

pub(crate) fn run(cli: Cli) -> Result<()> {
    // `kite install --dir P` works on P's home, wherever it is run from.
    let root = match (&cli.root, &cli.command) {
        (None, Command::Install(a)) => a.dir().map(|d| {
            let d = d.canonicalize().unwrap_or_else(|_| d.to_path_buf());
            home::git_root(&d).unwrap_or(d)
        }),
        (r, _) => r.clone(),
    };
    let first = home::resolve(cli.home.clone(), root.clone(), None, None)?;
    // The doctor reports a broken kite.toml as one of its checks instead of stopping at it.
    let (config, config_error) = match (Config::load(&first.home), &cli.command) {
        (Ok(c), _) => (c, None),
        (Err(e), Command::Doctor) => (Config { file: first.config_file(), ..Config::default() }, Some(format!("{e:#}"))),
        (Err(e), _) => return Err(e),
    };
    let places = home::resolve(cli.home, root, cli.vault, config.vault.dir.clone())?;
    let ctx = Ctx { places, config, json: cli.json };
    let command = match cli.command {
        Command::Daemon(args) => return daemon::run(&ctx, args),
        Command::Vault(c) => return vault::run_with(c, &ctx),
        Command::Hook(c) => return hook::run(&ctx, c),
        other => other,
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        match command {
            Command::Daemon(_) | Command::Vault(_) | Command::Hook(_) => unreachable!("handled above"),
            Command::Status => status::status(&ctx).await,
            Command::Events(a) => status::events(&ctx, a).await,
            Command::Broadcast(a) => status::broadcast(&ctx, a).await,
            Command::Message(a) => status::message(&ctx, a).await,
            Command::Session(c) => session::run(&ctx, c).await,
            Command::Task(c) => task::run(&ctx, c).await,
            Command::Lock(c) => lock::run(&ctx, c).await,
            Command::Mcp(a) => mcp::run(&ctx, a).await,
            Command::Install(a) => install::run(&ctx, a).await,
            Command::Doctor => doctor::run(&ctx, config_error).await,
            Command::Gc(a) => gc::run(&ctx, a).await,
            Command::Sched(c) => sched::run(&ctx, c).await,
            Command::Spawn(a) => sched::spawn(&ctx, a).await,
            Command::Merge(c) => merge::run(&ctx, c).await,
            Command::Worktrees => merge::worktrees(&ctx).await,
            Command::Ui(a) => ui::run(&ctx, a).await,
        }
    })
}

/// The vault as the MCP server sees it: through the daemon's memory component (one warm model
/// for every agent session), and only when no daemon's memory answers, opened in this process on
/// first use (the model loads then, not at start-up), one call at a time.
struct McpVault {
    socket: std::path::PathBuf,
    config: kite_memory::VaultConfig,
    vault: std::sync::Mutex<Option<kite_memory::Vault>>,
}

/// A recall or an add may wait behind an extraction on the memory thread.
const MEMORY_CALL: std::time::Duration = std::time::Duration::from_secs(30);

impl McpVault {
    fn with<T>(&self, f: impl FnOnce(&mut kite_memory::Vault) -> Result<T, String>) -> Result<T, String> {
        let mut guard = self.vault.lock().map_err(|_| "the vault lock was poisoned".to_string())?;
        if guard.is_none() {
            *guard = Some(vault::open_with(self.config.clone()).map_err(|e| format!("{e:#}"))?);
        }
        f(guard.as_mut().expect("opened above"))
    }

    /// Asks the daemon; `None` when no daemon or memory component answers (then in process). A
    /// refusal of the request itself (a bad `k`) is the answer.
    fn remote(&self, op: &str, args: serde_json::Value) -> Option<Result<serde_json::Value, String>> {
        match crate::memory::call(&self.socket, op, args, MEMORY_CALL) {
            Ok(v) => Some(Ok(v)),
            Err(Some(e)) if e.code == kite_proto::ErrorCode::BadRequest => Some(Err(e.message)),
            Err(Some(e)) => {
                tracing::debug!("daemon memory unavailable ({}), using the vault in process", e.message);
                None
            }
            Err(None) => None,
        }
    }
}

impl kite_mcp::VaultTools for McpVault {
    fn search(&self, query: &str, k: usize) -> Result<serde_json::Value, String> {
        if let Some(r) = self.remote("memory.recall", serde_json::json!({"query": query, "k": k})) {
            return r.map(|v| v["notes"].clone());
        }
        self.with(|v| {
            let notes = crate::memory::recall(v, query, k)?;
            serde_json::to_value(notes).map_err(|e| e.to_string())
        })
    }

    fn add(&self, title: &str, body: &str, kind: Option<&str>, tags: &[String]) -> Result<serde_json::Value, String> {
        let args = serde_json::json!({"title": title, "body": body, "kind": kind, "tags": tags, "source": "mcp"});
        if let Some(r) = self.remote("memory.add", args) {
            return r;
        }
        self.with(|v| {
            let note = kite_memory::NewNote {
                kind: kite_memory::Kind::parse(kind.unwrap_or("fact")),
                title: title.to_string(),
                tags: tags.to_vec(),
                project: None,
                source: Some("mcp".into()),
                body: body.to_string(),
            };
            let outcome = v.add(note).map_err(|e| e.to_string())?;
            serde_json::to_value(outcome).map_err(|e| e.to_string())
        })
    }
}

/// The vault for the MCP server's memory tools.
pub(crate) fn vault_tools(ctx: &Ctx) -> Option<std::sync::Arc<dyn kite_mcp::VaultTools>> {
    Some(std::sync::Arc::new(McpVault { socket: ctx.places.socket(), config: vault::config(ctx), vault: Default::default() }))
}
