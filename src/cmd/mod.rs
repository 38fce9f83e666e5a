//! The subcommands, and what they share: finding the home and connecting to the daemon.

pub(crate) mod config;
pub(crate) mod daemon;
pub(crate) mod doctor;
pub(crate) mod gc;
pub(crate) mod hook;
pub(crate) mod install;
pub(crate) mod mcp;
pub(crate) mod merge;
pub(crate) mod report;
pub(crate) mod sched;
pub(crate) mod lock;
pub(crate) mod session;
pub(crate) mod status;
pub(crate) mod task;
pub(crate) mod token;
pub(crate) mod ui;
pub(crate) mod vault;
pub(crate) mod worker;

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
    /// A connection to the daemon: the local socket, or the team's daemon on another machine
    /// (`KITE_URL`, see [`crate::remote::endpoint`]).
    pub(crate) async fn client(&self) -> Result<Client> {
        Ok(Client::connect_to(&crate::remote::endpoint(self)?).await?)
    }
}

pub(crate) fn run(cli: Cli) -> Result<()> {
    if let Command::Worker(a) = &cli.command {
        worker::prepare(a);
    }
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
        (Err(e), Command::Doctor | Command::Config(_)) => (Config { file: first.config_file(), ..Config::default() }, Some(format!("{e:#}"))),
        (Err(e), _) => return Err(e),
    };
    let places = home::resolve(cli.home, root, cli.vault, config.vault.dir.clone())?;
    let ctx = Ctx { places, config, json: cli.json };
    let command = match cli.command {
        Command::Daemon(args) => return daemon::run(&ctx, args),
        Command::Config(c) => return config::run(&ctx, c),
        Command::Vault(c) => return vault::run_with(c, &ctx),
        Command::Hook(c) => return hook::run(&ctx, c),
        other => other,
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        match command {
            Command::Daemon(_) | Command::Vault(_) | Command::Hook(_) | Command::Config(_) => unreachable!("handled above"),
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
            Command::Token(c) => token::run(&ctx, c).await,
            Command::Worker(a) => worker::run(&ctx, a).await,
            Command::Report(a) => report::run(&ctx, a).await,
            Command::Ui(a) => ui::run(&ctx, a).await,
        }
    })
}

/// The vault for the MCP server's memory tools.
pub(crate) fn vault_tools(ctx: &Ctx) -> Option<std::sync::Arc<dyn kite_mcp::VaultTools>> {
    Some(std::sync::Arc::new(memory_client(ctx, kite_daemon::memory_client::PATIENT, kite_daemon::memory_client::Fallback::InProcess)))
}

/// The vault through the daemon's memory component, else in process (see
/// [`kite_daemon::memory_client`]), with the caller's deadline.
pub(crate) fn memory_client(
    ctx: &Ctx,
    deadline: std::time::Duration,
    fallback: kite_daemon::memory_client::Fallback,
) -> kite_daemon::memory_client::MemoryClient {
    // The team's daemon when this session works for one (its memory is the team's), else the
    // home's socket.
    let to = crate::remote::endpoint(ctx).unwrap_or_else(|_| kite_proto::Endpoint::Unix(ctx.places.socket()));
    kite_daemon::memory_client::MemoryClient::new(to, vault::config(ctx), deadline, fallback)
}
