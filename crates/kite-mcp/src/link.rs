//! The MCP server's connection to the daemon, made again when it is gone.
//!
//! An agent's `kite mcp` lives as long as its Claude Code session, often longer than one
//! daemon: on a team's store the active daemon can die and a standby take over (issue: a team on
//! several machines), and locally a daemon can be restarted. When the connection is gone, the
//! link connects again, through the configured addresses in order (`KITE_URL` may list the
//! active daemon and its standby), attaches the same session, and the next tool call goes to
//! the daemon that now serves the store. A call made while it reconnects waits for it, a while.

use kite_proto::ops::SessionRef;
use kite_proto::{Client, Endpoint};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How long a tool call waits for a connection being made again.
const RECONNECT_WAIT: Duration = Duration::from_secs(20);

pub(crate) struct Link {
    current: watch::Receiver<Arc<Client>>,
}

impl Link {
    /// Keeps `first` (connected to `to`, with `session` registered or attached) connected, and
    /// forwards every pushed message to `inbox`.
    pub(crate) fn keep(to: Endpoint, first: Arc<Client>, session: String, inbox: Arc<Mutex<Vec<String>>>) -> Link {
        forward_pushes(&first, &inbox);
        let (tx, current) = watch::channel(first.clone());
        tokio::spawn(async move {
            let mut client = first;
            loop {
                client.closed().await;
                tracing::warn!("the connection to the kite daemon is gone; connecting again");
                client = reconnect(&to, &session).await;
                forward_pushes(&client, &inbox);
                if tx.send(client.clone()).is_err() {
                    return;
                }
            }
        });
        Link { current }
    }

    /// The connection to use: the current one, or, while it is being made again, the next one.
    pub(crate) async fn client(&self) -> Arc<Client> {
        let mut rx = self.current.clone();
        let c = rx.borrow_and_update().clone();
        if !c.is_closed() {
            return c;
        }
        let _ = tokio::time::timeout(RECONNECT_WAIT, rx.changed()).await;
        let c = rx.borrow().clone();
        c
    }
}

/// Connects until a daemon answers, then attaches `session` to the new connection.
async fn reconnect(to: &Endpoint, session: &str) -> Arc<Client> {
    let mut pause = Duration::from_millis(200);
    loop {
        match Client::connect_to(to).await {
            Ok(c) => {
                match c.request::<kite_proto::op::SessionAttach>(SessionRef { session: session.to_string() }).await {
                    Ok(_) => tracing::info!(session, "connected to the kite daemon again"),
                    // Its calls will say why (a session reaped while no daemon served it).
                    Err(e) => tracing::warn!(session, "connected again, but the session could not be attached: {e}"),
                }
                return Arc::new(c);
            }
            Err(e) => {
                tracing::debug!("no kite daemon answers yet: {e}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
}

fn forward_pushes(client: &Client, inbox: &Arc<Mutex<Vec<String>>>) {
    if let Some(mut pushes) = client.take_pushes() {
        let inbox = inbox.clone();
        tokio::spawn(async move {
            while let Some(p) = pushes.recv().await {
                inbox.lock().expect("inbox lock").push(format!("{}: {}", p.push, p.data));
            }
        });
    }
}
