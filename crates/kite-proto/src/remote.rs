//! Reaching a daemon on another machine: its TCP listener, over TLS pinned to the daemon's
//! certificate, with a bearer token sent as the connection's first request (`auth`).
//!
//! Why a pinned certificate and not a CA: a team's daemon is one known service, and its
//! certificate's SHA-256 (`KITE_CERT_SHA256`, printed by `kite token create`) says exactly which
//! one. The name in the URL is not checked: the pin already is.

use crate::client::ClientError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::Digest;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a client finds the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// The local socket.
    Unix(PathBuf),
    /// A daemon's TCP listener.
    Remote(Remote),
}

/// A remote daemon: `kite://host:port` (TLS) or `kite+plain://127.0.0.1:port` (loopback only).
/// Several comma-separated addresses (`kite://a:7777,kite://b:7777`: an active daemon and its
/// standby) are tried in order; only the one holding the store's lease listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub url: String,
    /// Host and port of each address, in the order they are tried.
    pub addrs: Vec<(String, u16)>,
    pub tls: bool,
    pub token: String,
    /// The daemon certificate's SHA-256, hex (TLS only).
    pub cert_sha256: Option<String>,
}

impl Remote {
    /// Parses `url` and checks that what TLS needs is there.
    pub fn new(url: &str, token: &str, cert_sha256: Option<&str>) -> Result<Remote, String> {
        let mut addrs = Vec::new();
        let mut schemes = Vec::new();
        for one in url.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            let (tls, host, port) = parse_one(one)?;
            schemes.push(tls);
            addrs.push((host, port));
        }
        let Some(&tls) = schemes.first() else { return Err("KITE_URL is empty".into()) };
        if schemes.iter().any(|t| *t != tls) {
            return Err(format!("KITE_URL '{url}' mixes kite:// and kite+plain:// addresses"));
        }
        if token.trim().is_empty() {
            return Err("KITE_URL is set but KITE_TOKEN is not: `kite token create NAME` on the daemon's machine prints both".into());
        }
        let cert_sha256 = cert_sha256.map(|c| c.trim().to_ascii_lowercase().replace(':', ""));
        if tls {
            match &cert_sha256 {
                Some(c) if c.len() == 64 && c.chars().all(|x| x.is_ascii_hexdigit()) => {}
                Some(c) => return Err(format!("KITE_CERT_SHA256 '{c}' is not a SHA-256 in hex (64 digits)")),
                None => return Err("KITE_URL is a TLS address but KITE_CERT_SHA256 is not set: `kite token create NAME` on the daemon's machine prints it".into()),
            }
        } else if let Some((host, _)) = addrs.iter().find(|(h, _)| !matches!(h.as_str(), "127.0.0.1" | "::1" | "localhost")) {
            return Err(format!("kite+plain:// is for loopback only; {host} needs kite:// (TLS)"));
        }
        Ok(Remote { url: url.to_string(), addrs, tls, token: token.trim().to_string(), cert_sha256 })
    }
}

/// One `kite://host:port` or `kite+plain://host:port`.
fn parse_one(url: &str) -> Result<(bool, String, u16), String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("kite://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("kite+plain://") {
        (false, r)
    } else {
        return Err(format!("KITE_URL '{url}' must start with kite:// (TLS) or kite+plain:// (loopback only)"));
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest.rsplit_once(':').ok_or_else(|| format!("KITE_URL '{url}' needs a port, like kite://host:7777"))?;
    let port: u16 = port.parse().map_err(|_| format!("KITE_URL '{url}': bad port '{port}'"))?;
    Ok((tls, host.trim_start_matches('[').trim_end_matches(']').to_string(), port))
}

/// Accepts exactly the certificate whose SHA-256 is pinned, and checks the handshake's
/// signatures with it.
#[derive(Debug)]
struct Pinned {
    sha256: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(&self, end_entity: &CertificateDer<'_>, _: &[CertificateDer<'_>], _: &ServerName<'_>, _: &[u8], _: UnixTime) -> Result<ServerCertVerified, rustls::Error> {
        let got: String = sha2::Sha256::digest(end_entity.as_ref()).iter().map(|b| format!("{b:02x}")).collect();
        if got == self.sha256 {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!("the daemon's certificate (SHA-256 {got}) is not the pinned one (KITE_CERT_SHA256 {})", self.sha256)))
        }
    }

    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A byte stream to a remote daemon.
pub type Stream = Box<dyn AsyncStream>;

/// What a remote daemon's stream is: TLS over TCP, or plain TCP on loopback.
pub trait AsyncStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> AsyncStream for T {}

/// Opens the TCP connection and the TLS session (not yet authenticated) to the first address
/// that answers.
pub async fn open(r: &Remote) -> Result<Stream, ClientError> {
    let mut why = Vec::new();
    for (host, port) in &r.addrs {
        match open_one(r, host, *port).await {
            Ok(s) => return Ok(s),
            Err(e) => why.push(format!("{host}:{port}: {e}")),
        }
    }
    Err(ClientError::Remote { url: r.url.clone(), detail: why.join("; ") })
}

async fn open_one(r: &Remote, host: &str, port: u16) -> Result<Stream, String> {
    let tcp = tokio::time::timeout(std::time::Duration::from_secs(10), tokio::net::TcpStream::connect((host, port)))
        .await
        .map_err(|_| "no answer within 10 s".to_string())?
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    if !r.tls {
        return Ok(Box::new(tcp));
    }
    // *ring*, as the daemon's listener (see kite-coord's remote module for why).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(Pinned { sha256: r.cert_sha256.clone().unwrap_or_default(), provider: provider.clone() });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string()).unwrap_or_else(|_| ServerName::try_from("kite.invalid").expect("a valid name"));
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.map_err(|e| format!("TLS: {e}"))?;
    Ok(Box::new(tls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_before_anything_is_sent() {
        let pin = "ab".repeat(32);
        let r = Remote::new("kite://build-box:7777", "kite_x", Some(&pin)).unwrap();
        assert_eq!((r.addrs.clone(), r.tls), (vec![("build-box".to_string(), 7777)], true));
        let two = Remote::new("kite://a:1, kite://b:2", "kite_x", Some(&pin)).unwrap();
        assert_eq!(two.addrs, vec![("a".to_string(), 1), ("b".to_string(), 2)]);
        assert!(Remote::new("kite://a:1,kite+plain://127.0.0.1:2", "t", Some(&pin)).unwrap_err().contains("mixes"));
        assert!(Remote::new("kite://build-box:7777", "kite_x", None).unwrap_err().contains("KITE_CERT_SHA256"));
        assert!(Remote::new("kite://build-box:7777", "", Some(&pin)).unwrap_err().contains("KITE_TOKEN"));
        assert!(Remote::new("kite+plain://build-box:7777", "t", None).unwrap_err().contains("loopback"));
        assert!(Remote::new("kite+plain://127.0.0.1:7777", "t", None).is_ok());
        assert!(Remote::new("https://x:1", "t", Some(&pin)).is_err());
        assert!(Remote::new("kite://x", "t", Some(&pin)).unwrap_err().contains("port"));
        assert!(Remote::new("kite://x:1", "t", Some("abc")).unwrap_err().contains("64"));
    }
}
