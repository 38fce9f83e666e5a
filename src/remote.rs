//! Where a command finds the daemon, and what the daemon's listener presents: the glue between
//! kite.toml / the environment and kite-proto's remote client and kite-coord's listener.

use crate::cmd::Ctx;
use anyhow::{Context, Result};
use kite_proto::{Endpoint, Remote};

/// The daemon this command talks to: `KITE_URL` (with `KITE_TOKEN` and `KITE_CERT_SHA256`), else
/// `[client] url` (with its token and cert_sha256), else the home's local socket.
pub(crate) fn endpoint(ctx: &Ctx) -> Result<Endpoint> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let c = &ctx.config.client;
    let Some(url) = env("KITE_URL").or_else(|| c.url.clone()) else {
        return Ok(Endpoint::Unix(ctx.places.socket()));
    };
    let token = env("KITE_TOKEN").or_else(|| c.token.clone()).unwrap_or_default();
    let pin = env("KITE_CERT_SHA256").or_else(|| c.cert_sha256.clone());
    Ok(Endpoint::Remote(Remote::new(&url, &token, pin.as_deref()).map_err(anyhow::Error::msg)?))
}

/// Whether this command talks to a daemon on another machine.
pub(crate) fn is_remote(ctx: &Ctx) -> bool {
    matches!(endpoint(ctx), Ok(Endpoint::Remote(_)))
}

/// The certificate and key the listener presents: `[daemon] tls_cert` and `tls_key` (relative
/// to the home), else the home's own, made on first use.
pub(crate) fn identity(ctx: &Ctx) -> Result<kite_coord::remote::Identity> {
    let d = &ctx.config.daemon;
    let home = &ctx.places.home;
    match (&d.tls_cert, &d.tls_key) {
        (Some(cert), Some(key)) => Ok(kite_coord::remote::Identity { cert: home.join(cert), key: home.join(key) }),
        (None, None) => {
            let names: Vec<String> = advertised_host(ctx).into_iter().collect();
            Ok(kite_coord::remote::home_identity(home, &names)?)
        }
        _ => anyhow::bail!("[daemon] tls_cert and tls_key go together (in {})", ctx.config.file.display()),
    }
}

fn advertised_host(ctx: &Ctx) -> Option<String> {
    let a = ctx.config.daemon.advertise.as_deref()?;
    Some(a.rsplit_once(':').map_or(a, |(h, _)| h).to_string())
}

/// What a client on another machine needs, as `KEY=value` lines: the URL, and the pin of the
/// certificate with TLS (the token is the caller's).
pub(crate) fn client_settings(ctx: &Ctx) -> Result<Vec<(String, String)>> {
    let d = &ctx.config.daemon;
    let listen = d.listen.as_deref().with_context(|| format!("this daemon has no listener for other machines: set [daemon] listen in {}", ctx.config.file.display()))?;
    let addr: std::net::SocketAddr = listen.parse().with_context(|| format!("[daemon] listen '{listen}' is not an address and port"))?;
    let at = match &d.advertise {
        Some(a) => a.clone(),
        None if addr.ip().is_unspecified() => format!("{}:{}", kite_coord::remote::hostname(), addr.port()),
        None => addr.to_string(),
    };
    let mut out = Vec::new();
    if d.tls {
        out.push(("KITE_URL".into(), format!("kite://{at}")));
        out.push(("KITE_CERT_SHA256".into(), kite_coord::remote::fingerprint(&identity(ctx)?)?));
    } else {
        out.push(("KITE_URL".into(), format!("kite+plain://{at}")));
    }
    Ok(out)
}
