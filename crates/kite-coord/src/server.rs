//! The accept loop and the daemon's lifetime: claim the home, open the store, start the state
//! owner, bind the socket, serve until `shutdown` resolves, then stop in order (no new
//! connections, the owner commits its last batch, the socket file goes away).

use crate::connection::serve_connection;
use crate::service::Services;
use crate::state::{Command, StateHandle};
use crate::{instance, DaemonConfig, DaemonError};
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UnixListener;

/// Runs a daemon until `shutdown` completes. Returns once everything is committed and closed.
pub async fn run(config: DaemonConfig, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
    run_with(config, Services::default(), || {}, shutdown).await
}

/// [`run`], with services answering their operations beside the state owner. `listening` is
/// called once this process holds the home and its socket is bound, before the first request is
/// read: components that must not start on a home another daemon holds wait for it (no polling),
/// and see it never come when this daemon is refused.
pub async fn run_with(
    config: DaemonConfig,
    services: Services,
    listening: impl FnOnce(),
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    instance::private_dir(&config.home)?;
    let _guard = instance::acquire(&config.home)?;
    let socket = config.socket_path();
    // We hold the pidfile lock, so a socket file here is a leftover of a dead daemon.
    let _ = std::fs::remove_file(&socket);
    let fd_limit = raise_fd_limit();
    let accept = Arc::new(AcceptStats { fd_limit, ..AcceptStats::default() });
    tokio::pin!(shutdown);
    let lease = match &config.backend {
        crate::Backend::Sqlite => None,
        crate::Backend::Postgres { url, standby } => {
            let taking = tokio::task::spawn_blocking({
                let (url, standby) = (url.clone(), *standby);
                let holder = kite_store_pg::lease::Holder { place: place_name(&config.home), pid: std::process::id() };
                move || {
                    kite_store_pg::lease::Lease::take(
                        &url,
                        &holder,
                        "",
                        standby,
                        |held| tracing::info!(holder = %held.holder, epoch = held.epoch, "standby: another daemon holds the store's lease; waiting to take over"),
                        |why| {
                            // The store refuses this daemon's batches from now on; it must not
                            // answer anything more.
                            tracing::error!("{why}; this daemon stops");
                            std::process::exit(3);
                        },
                    )
                }
            });
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                taken = taking => Some(taken.map_err(|e| DaemonError::Io { what: "the lease thread failed".into(), source: std::io::Error::other(e.to_string()) })??),
            }
        }
    };
    if let Some(l) = &lease {
        tracing::info!(epoch = l.epoch(), "holding the store's lease");
    }
    let bound = match &config.listen {
        Some(l) => Some(crate::remote::bind(l).await?),
        None => None,
    };
    let state = StateHandle::start(&config, accept.clone(), lease.as_ref().map(|l| l.epoch()))?;
    let services = services.with_first(Arc::new(crate::service::Door::new(&config.root, &config.home)));
    let listener = UnixListener::bind(&socket).map_err(DaemonError::io(format!("cannot bind {}", socket.display())))?;
    tracing::info!(socket = %socket.display(), root = %config.root.display(), pid = std::process::id(), "kite daemon listening");
    listening();
    let own_uid = rustix::process::geteuid().as_raw();
    let next_conn = std::sync::Arc::new(AtomicU64::new(1));
    let remote = bound.map(|b| crate::remote::serve(b, state.clone(), services.clone(), next_conn.clone()));

    let mut backoff = Backoff::default();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => {
                        backoff.succeeded();
                        s
                    }
                    Err(e) => {
                        // Out of descriptors: the pending connection stays in the backlog and
                        // accept fails again at once. Wait instead of spinning, and say so once
                        // per interval, not once per attempt.
                        let exhausted = matches!(e.raw_os_error(), Some(EMFILE | ENFILE));
                        if exhausted {
                            accept.refused.fetch_add(1, Ordering::Relaxed);
                            accept.last_ms.store(crate::state::now_ms(), Ordering::Relaxed);
                        }
                        let wait = backoff.failed(&e, fd_limit);
                        tokio::select! {
                            _ = &mut shutdown => break,
                            _ = tokio::time::sleep(wait) => {}
                        }
                        continue;
                    }
                };
                // Serve only our own user, even if the directory's mode was loosened by hand.
                match stream.peer_cred() {
                    Ok(cred) if cred.uid() == own_uid => {}
                    Ok(cred) => {
                        tracing::warn!(uid = cred.uid(), "refused a connection from another user");
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!("cannot read peer credentials: {e}");
                        continue;
                    }
                }
                let id = next_conn.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(serve_connection(id, stream, crate::connection::Peer::Local, state.clone(), services.clone()));
            }
        }
    }
    tracing::info!("shutting down");
    drop(listener);
    if let Some(r) = remote {
        r.abort();
    }
    let _ = std::fs::remove_file(&socket);
    state.send(Command::Shutdown);
    state.join().await;
    if let Some(l) = lease {
        // A standby takes over at once instead of waiting for the lease to expire.
        let _ = tokio::task::spawn_blocking(move || l.release()).await;
    }
    Ok(())
}

/// The place a daemon serves, as a lease names its holder: host and home. This process holds the
/// home's pidfile lock, so no other live daemon has the same place.
fn place_name(home: &std::path::Path) -> String {
    format!("{}:{}", crate::remote::hostname(), home.display())
}

const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

/// What the accept loop tells `status`: connections refused for want of descriptors.
#[derive(Debug, Default)]
pub(crate) struct AcceptStats {
    pub(crate) refused: AtomicU64,
    pub(crate) last_ms: AtomicI64,
    pub(crate) fd_limit: u64,
}

/// Raises the soft open-file limit to the hard one (every connection is a descriptor); returns
/// the limit in force.
fn raise_fd_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let lim = getrlimit(Resource::Nofile);
    if lim.current < lim.maximum {
        let raised = Rlimit { current: lim.maximum, maximum: lim.maximum };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return lim.maximum.unwrap_or(u64::MAX);
        }
    }
    lim.current.unwrap_or(u64::MAX)
}

/// Accept failures: an exponential wait (1 ms to 500 ms), and one warning per 5 s with the
/// number of failures since the last one.
#[derive(Default)]
struct Backoff {
    wait: Duration,
    since_log: u64,
    last_log: Option<Instant>,
}

impl Backoff {
    const MAX: Duration = Duration::from_millis(500);
    const LOG_EVERY: Duration = Duration::from_secs(5);

    fn succeeded(&mut self) {
        self.wait = Duration::ZERO;
    }

    fn failed(&mut self, e: &std::io::Error, fd_limit: u64) -> Duration {
        self.wait = (self.wait * 2).clamp(Duration::from_millis(1), Self::MAX);
        self.since_log += 1;
        if self.last_log.is_none_or(|t| t.elapsed() >= Self::LOG_EVERY) {
            tracing::warn!(failures = self.since_log, fd_limit, "cannot accept connections: {e}; waiting for descriptors to free up");
            self.since_log = 0;
            self.last_log = Some(Instant::now());
        }
        self.wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_failures_back_off_and_log_once_per_interval() {
        let mut b = Backoff::default();
        let e = std::io::Error::from_raw_os_error(EMFILE);
        let waits: Vec<Duration> = (0..12).map(|_| b.failed(&e, 256)).collect();
        assert_eq!(waits[0], Duration::from_millis(1));
        assert!(waits.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(*waits.last().unwrap(), Backoff::MAX);
        // The first failure logged; the other eleven wait for the interval.
        assert_eq!(b.since_log, 11);
        b.succeeded();
        assert_eq!(b.failed(&e, 256), Duration::from_millis(1));
    }
}
