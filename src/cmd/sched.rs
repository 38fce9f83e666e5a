//! `kite sched ...` and `kite spawn`: being wired to kite-sched (placeholder until then).

use super::Ctx;
use anyhow::Result;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum SchedCmd {
    /// List the templates found in prompts/ with their schedules.
    Templates,
    /// Run one round of the strategy loop now.
    Tick {
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(clap::Args, Debug)]
pub(crate) struct SpawnArgs {
    /// The task to start an agent session for.
    pub(crate) task: i64,
}

pub(crate) async fn run(_ctx: &Ctx, _cmd: SchedCmd) -> Result<()> {
    anyhow::bail!("kite sched is not wired yet")
}

pub(crate) async fn spawn(_ctx: &Ctx, _a: SpawnArgs) -> Result<()> {
    anyhow::bail!("kite spawn is not wired yet")
}
