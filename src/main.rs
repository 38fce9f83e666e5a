//! `kite`: the command line. Every subcommand lives in its own module under `cmd/` with its clap
//! definition and its `run`. Errors end here: one line on stderr and exit code 1 (clap's usage
//! errors exit 2); a closed stdout (`kite events | head`) is not an error.

mod agent;
mod autostart;
mod cmd;
mod config;
mod home;
mod output;
mod remote;
mod share;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "kite", version, about = "Coordinate many coding-agent sessions on one repository")]
pub(crate) struct Cli {
    /// The kite home (socket, database, config, logs). Default: .kite/ at the git root.
    #[arg(long, global = true, env = "KITE_HOME")]
    home: Option<PathBuf>,
    /// The project root lock paths are relative to. Default: the git root around the current directory.
    #[arg(long, global = true, env = "KITE_ROOT")]
    root: Option<PathBuf>,
    /// The vault directory. Default: vault/ beside the home.
    #[arg(long, global = true, env = "KITE_VAULT")]
    vault: Option<PathBuf>,
    /// Print one JSON document (or one JSON object per line for streams).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the daemon in the foreground until SIGINT/SIGTERM (--detach: in the background).
    Daemon(cmd::daemon::Args),
    /// Sessions, queue counts, locks and lifetime counters.
    Status,
    /// The event log.
    Events(cmd::status::EventsArgs),
    /// Register, heartbeat, list and end sessions.
    #[command(subcommand)]
    Session(cmd::session::SessionCmd),
    /// Create, inspect, claim and finish tasks.
    #[command(subcommand)]
    Task(cmd::task::TaskCmd),
    /// Acquire, release and list advisory file locks.
    #[command(subcommand)]
    Lock(cmd::lock::LockCmd),
    /// Move old events and finished tasks to the archive now (the daemon does it every 10 min).
    Gc(cmd::gc::Args),
    /// Send a message to every connected session.
    Broadcast(cmd::status::BroadcastArgs),
    /// Send a message to one session (told at its next tool call).
    Message(cmd::status::MessageArgs),
    /// The MCP server on stdio, for one agent session.
    Mcp(cmd::mcp::Args),
    /// Write kite's hooks and MCP server into a project's Claude Code settings.
    Install(cmd::install::Args),
    /// Check the set-up (model, runtime, daemon, hooks, MCP, templates, vault, permissions).
    Doctor,
    /// The memory vault: add, search, show, reindex, stats, extract.
    #[command(subcommand)]
    Vault(cmd::vault::VaultCmd),
    /// Claude Code hooks (read the hook JSON on stdin).
    #[command(subcommand)]
    Hook(cmd::hook::HookCmd),
    /// The strategy loop: templates and one round on demand.
    #[command(subcommand)]
    Sched(cmd::sched::SchedCmd),
    /// Start an agent session for a task now.
    Spawn(cmd::sched::SpawnArgs),
    /// The merge queue: where finished work is on its way to the target, and discarding work.
    #[command(subcommand)]
    Merge(cmd::merge::MergeCmd),
    /// kite's worktrees and branches, each with its commits not on the target.
    Worktrees,
    /// What the work was worth: outcomes, first-try landings, survival, churn, reverts and cost.
    Report(cmd::report::Args),
    /// The live dashboard's address (local, with a per-home token).
    Ui(cmd::ui::Args),
    /// Set one setting in the home's kite.toml (comments kept; refused if kite would not accept it).
    #[command(subcommand)]
    Config(cmd::config::ConfigCmd),
    /// Run agents on this machine for the team's daemon elsewhere (--connect kite://host:port).
    Worker(cmd::worker::Args),
    /// Tokens for clients on other machines ([daemon] listen): create, revoke, list.
    #[command(subcommand)]
    Token(cmd::token::TokenCmd),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // A hook must never fail a person's session: committed settings may name a kite that
            // does not know this hook (older or newer); its usage error would exit 2, which
            // Claude Code reads as "block this tool call".
            if e.use_stderr() && std::env::args().skip(1).any(|a| a == "hook") {
                eprintln!("kite: warning: hook skipped: {}", e.to_string().lines().next().unwrap_or_default());
                return ExitCode::SUCCESS;
            }
            e.exit()
        }
    };
    match cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)) {
                return ExitCode::SUCCESS;
            }
            let msg = e.chain().map(|c| c.to_string()).collect::<Vec<_>>().join(": ");
            eprintln!("kite: {}", msg.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
