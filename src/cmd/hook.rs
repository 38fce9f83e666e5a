//! `kite hook ...`: placeholder until wired.

use super::Ctx;
use anyhow::Result;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum HookCmd {
    /// SessionStart: prints the JSON that adds the best notes as context.
    SessionStart,
    /// SessionEnd / PreCompact: queues the transcript for extraction and returns at once.
    SessionEnd,
}

pub(crate) fn run(_ctx: &Ctx, _cmd: HookCmd) -> Result<()> {
    Ok(())
}
