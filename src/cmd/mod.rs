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

/// The vault as the MCP server sees it; `None` until the vault is wired in.
pub(crate) fn vault_tools(_ctx: &Ctx) -> Option<std::sync::Arc<dyn kite_mcp::VaultTools>> {
    None
}
