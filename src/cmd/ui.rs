//! `kite ui [--open] [--json]`: the dashboard's address, with the home's token.

use anyhow::{Context, Result};
use clap::Args as ClapArgs;
use kite_daemon::ui::{token, UiAddr};

use super::Ctx;
use crate::output;

#[derive(ClapArgs, Debug)]
pub(crate) struct Args {
    /// Open it in the browser (xdg-open, or open on macOS).
    #[arg(long)]
    open: bool,
}

pub(crate) async fn run(ctx: &Ctx, a: Args) -> Result<()> {
    if !ctx.config.ui.enabled {
        anyhow::bail!("the dashboard is off: [ui] enabled = false in {}", ctx.config.file.display());
    }
    // The page is served by the daemon: it must be running, and be the one that wrote ui.json.
    let client = ctx.client().await?;
    let hello: kite_proto::ops::Hello = client.request::<kite_proto::op::Hello>(kite_proto::NoArgs {}).await?;
    let home = &ctx.places.home;
    let addr = UiAddr::load(home)
        .filter(|x| x.pid == hello.pid)
        .with_context(|| format!("the daemon (pid {}) has not started its dashboard; see {}", hello.pid, home.join("daemon.log").display()))?;
    let url = addr.url(&token(home).context("cannot read the dashboard's token")?);
    if ctx.json {
        output::json(&serde_json::json!({"url": url, "port": addr.port}))?;
    } else {
        output::line(&url)?;
    }
    if a.open {
        let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
        std::process::Command::new(opener)
            .arg(&url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .with_context(|| format!("cannot run {opener}; open the address above by hand"))?;
    }
    Ok(())
}
