//! The subcommands, and what they share: finding the home and connecting to the daemon.

pub(crate) mod daemon;
pub(crate) mod hook;
pub(crate) mod install;
pub(crate) mod mcp;
pub(crate) mod sched;
pub(crate) mod lock;
pub(crate) mod session;
pub(crate) mod status;
pub(crate) mod task;
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
    let first = home::resolve(cli.home.clone(), cli.root.clone(), None, None)?;
    let config = Config::load(&first.home)?;
    let places = home::resolve(cli.home, cli.root, cli.vault, config.vault.dir.clone())?;
    let ctx = Ctx { places, config, json: cli.json };
    let command = match cli.command {
        Command::Daemon(args) => return daemon::run(&ctx, args),
        Command::Vault(c) => return vault::run_with(c, &ctx.places.vault, &ctx.places.home, ctx.json),
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
            Command::Session(c) => session::run(&ctx, c).await,
            Command::Task(c) => task::run(&ctx, c).await,
            Command::Lock(c) => lock::run(&ctx, c).await,
            Command::Mcp(a) => mcp::run(&ctx, a).await,
            Command::Install(a) => install::run(&ctx, a),
            Command::Sched(c) => sched::run(&ctx, c).await,
            Command::Spawn(a) => sched::spawn(&ctx, a).await,
        }
    })
}

/// The vault as the MCP server sees it: opened on first use (the model loads then, not at
/// start-up), one call at a time.
struct McpVault {
    vault_dir: std::path::PathBuf,
    home: std::path::PathBuf,
    vault: std::sync::Mutex<Option<kite_memory::Vault>>,
}

impl McpVault {
    fn with<T>(&self, f: impl FnOnce(&mut kite_memory::Vault) -> Result<T, String>) -> Result<T, String> {
        let mut guard = self.vault.lock().map_err(|_| "the vault lock was poisoned".to_string())?;
        if guard.is_none() {
            *guard = Some(vault::open(&self.vault_dir, &self.home).map_err(|e| format!("{e:#}"))?);
        }
        f(guard.as_mut().expect("opened above"))
    }
}

impl kite_mcp::VaultTools for McpVault {
    fn search(&self, query: &str, k: usize) -> Result<serde_json::Value, String> {
        self.with(|v| {
            let notes = crate::memory::recall(v, query, k)?;
            serde_json::to_value(notes).map_err(|e| e.to_string())
        })
    }

    fn add(&self, title: &str, body: &str, kind: Option<&str>, tags: &[String]) -> Result<serde_json::Value, String> {
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
    Some(std::sync::Arc::new(McpVault { vault_dir: ctx.places.vault.clone(), home: ctx.places.home.clone(), vault: Default::default() }))
}
