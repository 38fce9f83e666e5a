//! `kite ui [--open] [--json]`: the dashboard's address, with the home's token.

use anyhow::{Context, Result};
use clap::Args as ClapArgs;
use kite_daemon::ui::{read_token, UiAddr};

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
    let token = read_token(home).with_context(|| format!("no dashboard token in {} (the daemon writes it when it starts the dashboard)", home.display()))?;
    let url = addr.url(&token);
    if ctx.json {
        output::json(&serde_json::json!({"url": url, "port": addr.port}))?;
    } else {
        output::line(&url)?;
    }
    if a.open {
        // The browser gets a file of the home's (0600) that forwards to the address, not the
        // address itself: a command line is readable by every local user, the token must not be.
        let page = home.join("ui-open.html");
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&page)?;
            write!(f, "<!doctype html><meta http-equiv=\"refresh\" content=\"0; url={url}\"><a href=\"{url}\">kite ui</a>\n")?;
        }
        let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
        std::process::Command::new(opener)
            .arg(&page)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .with_context(|| format!("cannot run {opener}; open the address above by hand"))?;
    }
    Ok(())
}
