//! kite-daemon: the daemon put together. The coordinator (kite-coord) is opened first and
//! served after; beside it run components — the memory component, the strategy loop with the
//! runner, later the dashboard — each behind one small interface ([`Component`]). The binary
//! only reads flags and config, builds the components and calls [`run`].
//!
//! Lifecycle, in one place:
//! 1. every component's services are routed by the coordinator's connections;
//! 2. [`Component::listening`] runs once this process holds the home and its socket is bound
//!    (no polling; a daemon refused on a busy home never calls it, so its components never touch
//!    the other daemon's files);
//! 3. at shutdown, [`Component::stop`] runs while the coordinator still answers (the runner's
//!    agents end their sessions, so their tasks go back to pending at once);
//! 4. after the coordinator stopped, [`Component::finish`] (threads joined, the model quiesced).
//!
//! Stops and finishes go in the reverse order of the list, like drops: a component listed after
//! another may use it until it has stopped itself (the strategy loop recalls from memory).
//!
//! A component that fails logs why and leaves the others running: the coordinator never stops
//! for a component.

mod error;
pub mod memory;
pub mod memory_client;
pub mod quality;
pub mod queue;
pub mod sched;
pub mod ui;

pub use error::ComponentError;

use kite_coord::{DaemonConfig, DaemonError, Service, Services};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// A future a component returns from [`Component::stop`].
pub type StopFuture<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// A part of the daemon beside the coordinator.
pub trait Component: Send {
    /// For logs.
    fn name(&self) -> &'static str;

    /// Operations it answers on kite.sock (routed by the coordinator's connections).
    fn services(&self) -> Vec<Arc<dyn Service>> {
        Vec::new()
    }

    /// This process holds the home and listens. Runs on the daemon's runtime: must not block.
    fn listening(&mut self) {}

    /// Shutdown, while the coordinator still answers.
    fn stop(&mut self) -> StopFuture<'_> {
        Box::pin(async {})
    }

    /// After the coordinator stopped (it may block briefly: joining a thread).
    fn finish(&mut self) {}
}

/// Runs the coordinator with `components` until `shutdown` resolves, then stops everything in
/// order (see the module).
pub async fn run(config: DaemonConfig, components: Vec<Box<dyn Component>>, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
    let services = Services::new(components.iter().flat_map(|c| c.services()).collect());
    let components = Arc::new(Mutex::new(components));
    let on_listen = components.clone();
    let listening = move || {
        for c in on_listen.lock().unwrap_or_else(|p| p.into_inner()).iter_mut() {
            tracing::debug!(component = c.name(), "the daemon listens");
            c.listening();
        }
    };
    let stopping = components.clone();
    let shutdown = async move {
        shutdown.await;
        // Out of the lock while they stop (a stop awaits).
        let mut list = std::mem::take(&mut *stopping.lock().unwrap_or_else(|p| p.into_inner()));
        for c in list.iter_mut().rev() {
            tracing::debug!(component = c.name(), "stopping");
            c.stop().await;
        }
        *stopping.lock().unwrap_or_else(|p| p.into_inner()) = list;
    };
    let served = kite_coord::run_with(config, services, listening, shutdown).await;
    for c in components.lock().unwrap_or_else(|p| p.into_inner()).iter_mut().rev() {
        c.finish();
    }
    served
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    type Log = Arc<Mutex<Vec<String>>>;

    /// Records its lifecycle; the first one to hear `listening` may end the run.
    struct Probe {
        name: &'static str,
        log: Log,
        on_listen: Option<tokio::sync::oneshot::Sender<()>>,
    }

    impl Component for Probe {
        fn name(&self) -> &'static str {
            self.name
        }
        fn listening(&mut self) {
            self.log.lock().unwrap().push(format!("{} listening", self.name));
            if let Some(tx) = self.on_listen.take() {
                let _ = tx.send(());
            }
        }
        fn stop(&mut self) -> StopFuture<'_> {
            Box::pin(async move {
                // The coordinator still answers while a component stops.
                tokio::time::sleep(Duration::from_millis(5)).await;
                self.log.lock().unwrap().push(format!("{} stop", self.name));
            })
        }
        fn finish(&mut self) {
            self.log.lock().unwrap().push(format!("{} finish", self.name));
        }
    }

    fn config(home: &std::path::Path) -> DaemonConfig {
        DaemonConfig {
            home: home.to_path_buf(),
            root: home.parent().unwrap().to_path_buf(),
            heartbeat_timeout: Duration::from_secs(300),
            durability: kite_coord::Durability::Normal,
            retention: kite_coord::Retention::default(),
            backend: Default::default(),
            listen: None,
        }
    }

    #[tokio::test]
    async fn components_hear_listening_then_stop_and_finish_in_reverse_order_and_a_refused_daemon_never_listens() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().canonicalize().unwrap().join(".kite");
        let log: Log = Arc::default();
        let (listened, heard) = tokio::sync::oneshot::channel();
        let (end, ended) = tokio::sync::oneshot::channel::<()>();
        let first: Vec<Box<dyn Component>> = vec![
            Box::new(Probe { name: "a", log: log.clone(), on_listen: Some(listened) }),
            Box::new(Probe { name: "b", log: log.clone(), on_listen: None }),
        ];
        let daemon = run(config(&home), first, async move {
            let _ = ended.await;
        });
        let other: Log = Arc::default();
        let driver = async {
            heard.await.unwrap();
            // A second daemon on the same home is refused; its components never hear `listening`.
            let second: Vec<Box<dyn Component>> = vec![Box::new(Probe { name: "c", log: other.clone(), on_listen: None })];
            let refused = run(config(&home), second, std::future::pending()).await;
            assert!(matches!(refused, Err(DaemonError::AlreadyRunning { .. })), "{refused:?}");
            end.send(()).unwrap();
        };
        let (served, ()) = tokio::join!(daemon, driver);
        served.unwrap();
        assert_eq!(*other.lock().unwrap(), vec!["c finish"]);
        assert_eq!(*log.lock().unwrap(), vec!["a listening", "b listening", "b stop", "a stop", "b finish", "a finish"]);
    }
}
