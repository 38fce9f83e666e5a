//! `kite token create|revoke|list`: bearer tokens for clients on other machines. Only on the
//! daemon's own machine (the daemon refuses them over the network); `create` prints what the
//! other machine needs as environment assignments.

use super::Ctx;
use crate::output;
use anyhow::Result;
use kite_proto::ops::{TokenCreated, TokenName, Tokens};

#[derive(clap::Subcommand, Debug)]
pub(crate) enum TokenCmd {
    /// Make a token for a person or machine; prints KITE_URL, KITE_TOKEN and KITE_CERT_SHA256
    /// for the other machine's environment (the token is shown this once).
    Create { name: String },
    /// Revoke a token: its clients are refused from their next request.
    Revoke { name: String },
    /// Tokens by name (never the tokens themselves).
    List,
}

pub(crate) async fn run(ctx: &Ctx, cmd: TokenCmd) -> Result<()> {
    anyhow::ensure!(!crate::remote::is_remote(ctx), "tokens are made and revoked on the daemon's own machine (unset KITE_URL)");
    let c = ctx.client().await?;
    match cmd {
        TokenCmd::Create { name } => {
            // Checked before the token is made, so a daemon without a listener makes none.
            let settings = crate::remote::client_settings(ctx)?;
            let t = c.request::<kite_proto::op::TokenCreate>(TokenName { name }).await?;
            if ctx.json {
                let mut v = serde_json::json!({"name": t.name, "token": t.token, "KITE_TOKEN": t.token});
                for (k, val) in &settings {
                    v[k] = serde_json::Value::String(val.clone());
                }
                return output::json(&v);
            }
            print_settings(&settings, &t)
        }
        TokenCmd::Revoke { name } => {
            c.request::<kite_proto::op::TokenRevoke>(TokenName { name: name.clone() }).await?;
            if ctx.json {
                return output::json(&serde_json::json!({"revoked": name}));
            }
            output::line(format!("token '{name}' revoked"))
        }
        TokenCmd::List => {
            let t: Tokens = c.request::<kite_proto::op::TokenList>(kite_proto::NoArgs {}).await?;
            if ctx.json {
                return output::json(&t);
            }
            for x in &t.tokens {
                let state = if x.revoked_ms.is_some() { "revoked" } else { "live" };
                output::line(format!("{} {state}", x.name))?;
            }
            Ok(())
        }
    }
}

fn print_settings(settings: &[(String, String)], t: &TokenCreated) -> Result<()> {
    for (k, v) in settings {
        output::line(format!("{k}={v}"))?;
    }
    output::line(format!("KITE_TOKEN={}", t.token))
}
