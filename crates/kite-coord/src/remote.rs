//! The TCP listener: the same protocol as the Unix socket, for clients on other machines, over
//! TLS (rustls) with bearer tokens.
//!
//! - **Identity.** The daemon presents a certificate from `HOME/tls/` (made on first start,
//!   self-signed) or the files `[daemon] tls_cert` and `tls_key` name. Clients pin its SHA-256
//!   (`KITE_CERT_SHA256`, printed by `kite token create`), so no CA is involved; a standby that
//!   must keep pinned clients working after a take-over presents the same files.
//! - **Tokens.** A connection is answered only after `auth` with a live token (see
//!   `connection::Peer`); tokens are made and revoked on the local socket only.
//! - **Plain TCP** is refused unless the address is a loopback one and it was asked for
//!   (`[daemon] tls = false`): nothing leaves the machine in clear.

use crate::connection::{serve_connection, Peer};
use crate::service::Services;
use crate::state::StateHandle;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How the listener is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    pub addr: SocketAddr,
    /// `None`: plain TCP (only on a loopback address).
    pub tls: Option<Identity>,
}

/// The certificate and key files the listener presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why the listener cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("plain TCP on {0} would send tasks and tokens in clear: use TLS, or a loopback address (127.0.0.1) with `tls = false`")]
    PlainNotLoopback(SocketAddr),
    #[error("{what} {}: {detail}", path.display())]
    File { what: &'static str, path: PathBuf, detail: String },
    #[error("cannot make the TLS certificate: {0}")]
    Generate(String),
    #[error("the TLS certificate or key is unusable: {0}")]
    Tls(String),
}

/// This machine's name (what other machines are told to reach, and what a lease names).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "localhost".into())
}

impl Listen {
    /// Checks the rule on plain TCP.
    pub fn new(addr: SocketAddr, tls: Option<Identity>) -> Result<Listen, RemoteError> {
        if tls.is_none() && !addr.ip().is_loopback() {
            return Err(RemoteError::PlainNotLoopback(addr));
        }
        Ok(Listen { addr, tls })
    }
}

/// The files of the home's own certificate: `HOME/tls/cert.pem` and `key.pem`, made (self-signed,
/// for `localhost`, this host's name and `names`) when missing. The key file is the user's only.
pub fn home_identity(home: &Path, names: &[String]) -> Result<Identity, RemoteError> {
    let dir = home.join("tls");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert.exists() && key.exists() {
        return Ok(Identity { cert, key });
    }
    fn file_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RemoteError + 'a {
        move |e| RemoteError::File { what, path: path.to_path_buf(), detail: e.to_string() }
    }
    crate::instance::private_dir(&dir).map_err(|e| RemoteError::File { what: "cannot create", path: dir.clone(), detail: e.to_string() })?;
    let mut sans = vec!["localhost".to_string(), "127.0.0.1".to_string(), hostname()];
    sans.extend(names.iter().cloned());
    let made = rcgen::generate_simple_self_signed(sans).map_err(|e| RemoteError::Generate(e.to_string()))?;
    kite_core::files::write_atomic(&cert, made.cert.pem().as_bytes()).map_err(file_err("cannot write", &cert))?;
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = key.with_extension("pem.tmp");
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(file_err("cannot write", &tmp))?;
        f.write_all(made.key_pair.serialize_pem().as_bytes()).and_then(|()| f.sync_all()).map_err(file_err("cannot write", &tmp))?;
        std::fs::rename(&tmp, &key).map_err(file_err("cannot write", &key))?;
    }
    tracing::info!(cert = %cert.display(), "made a self-signed TLS certificate for the listener");
    Ok(Identity { cert, key })
}

fn read_pem(path: &Path, what: &'static str) -> Result<Vec<u8>, RemoteError> {
    std::fs::read(path).map_err(|e| RemoteError::File { what, path: path.to_path_buf(), detail: e.to_string() })
}

/// The SHA-256 of the certificate (DER), in hex: what clients pin.
pub fn fingerprint(identity: &Identity) -> Result<String, RemoteError> {
    use rustls::pki_types::pem::PemObject;
    let pem = read_pem(&identity.cert, "cannot read the certificate")?;
    let der = rustls::pki_types::CertificateDer::from_pem_slice(&pem).map_err(|e| RemoteError::Tls(format!("{}: {e}", identity.cert.display())))?;
    use sha2::Digest;
    Ok(crate::tokens::hex(&sha2::Sha256::digest(der.as_ref())))
}

/// The listener's TLS configuration for `identity` (also what a benchmark's TLS echo presents).
pub fn server_config(identity: &Identity) -> Result<rustls::ServerConfig, RemoteError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read_pem(&identity.cert, "cannot read the certificate")?)
        .collect::<Result<_, _>>()
        .map_err(|e| RemoteError::Tls(format!("{}: {e}", identity.cert.display())))?;
    let key = PrivateKeyDer::from_pem_slice(&read_pem(&identity.key, "cannot read the key")?).map_err(|e| RemoteError::Tls(format!("{}: {e}", identity.key.display())))?;
    rustls::ServerConfig::builder_with_provider(Arc::new(crypto()))
        .with_safe_default_protocol_versions()
        .map_err(|e| RemoteError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| RemoteError::Tls(e.to_string()))
}

/// rustls with *ring*: it builds with only a C compiler (aws-lc-rs needs more), and its TLS 1.3
/// suites are what the clients (kite-proto, same provider) speak. rustls marks the constructor
/// deprecated for lacking post-quantum key exchange, which is its only difference here.
#[allow(deprecated)]
pub(crate) fn crypto() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// How long a client has for the TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// The listener, bound (before the daemon starts anything else: an address in use is an error
/// at start, not a daemon without its listener).
pub(crate) struct Bound {
    tcp: tokio::net::TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
}

/// Sets up TLS and binds the address.
pub(crate) async fn bind(listen: &Listen) -> Result<Bound, crate::DaemonError> {
    let acceptor = match &listen.tls {
        Some(identity) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(server_config(identity).map_err(|e| crate::DaemonError::Io {
            what: "cannot set up TLS".into(),
            source: std::io::Error::other(e.to_string()),
        })?))),
        None => None,
    };
    let tcp = tokio::net::TcpListener::bind(listen.addr).await.map_err(crate::DaemonError::io(format!("cannot listen on {}", listen.addr)))?;
    tracing::info!(addr = %listen.addr, tls = acceptor.is_some(), "listening for remote clients");
    Ok(Bound { tcp, acceptor })
}

/// Accepts on the bound listener until the returned task is aborted.
pub(crate) fn serve(bound: Bound, state: StateHandle, services: Services, next_conn: Arc<AtomicU64>) -> tokio::task::JoinHandle<()> {
    let Bound { tcp, acceptor } = bound;
    tokio::spawn(async move {
        loop {
            let (stream, addr) = match tcp.accept().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("accept on the TCP listener failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let id = next_conn.fetch_add(1, Ordering::Relaxed);
            let (state, services, acceptor) = (state.clone(), services.clone(), acceptor.clone());
            tokio::spawn(async move {
                let peer = Peer::Remote { addr, authed: None };
                match acceptor {
                    Some(acceptor) => match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => serve_connection(id, tls, peer, state, services).await,
                        Ok(Err(e)) => tracing::info!(%addr, "TLS handshake refused: {e}"),
                        Err(_) => tracing::info!(%addr, "TLS handshake timed out"),
                    },
                    None => serve_connection(id, stream, peer, state, services).await,
                }
            });
        }
    })
}
