//! The accept loop and the daemon's lifetime: claim the home, open the store, start the state
//! owner, bind the socket, serve until `shutdown` resolves, then stop in order (no new
//! connections, the owner commits its last batch, the socket file goes away).

use crate::connection::serve_connection;
use crate::service::Services;
use crate::state::{Command, StateHandle};
use crate::{instance, DaemonConfig, DaemonError};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
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
    let state = StateHandle::start(&config)?;
    let _checkpointer = kite_store::Checkpointer::start(&config.db_path(), std::time::Duration::from_millis(500))?;
    let listener = UnixListener::bind(&socket).map_err(DaemonError::io(format!("cannot bind {}", socket.display())))?;
    tracing::info!(socket = %socket.display(), root = %config.root.display(), pid = std::process::id(), "kite daemon listening");
    listening();
    let own_uid = rustix::process::geteuid().as_raw();
    let next_conn = AtomicU64::new(1);

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
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
                tokio::spawn(serve_connection(id, stream, state.clone(), services.clone()));
            }
        }
    }
    tracing::info!("shutting down");
    drop(listener);
    let _ = std::fs::remove_file(&socket);
    state.send(Command::Shutdown);
    state.join().await;
    Ok(())
}
