//! The strategy loop and the runner inside the daemon, on a thread of their own (with its own
//! runtime: the daemon's single thread must stay free for requests). They reach the coordinator
//! through its socket, like any client, once it answers as this very process (a second daemon
//! refused on a busy home must not drive the first one's queue). The same thread reads the landed
//! work's signals again every 30 s ([`crate::quality::refresh_loop`]), whether the loop and the
//! runner are on or not. Their errors are logged, never fatal to the daemon.

use crate::queue::ClientQueue;
use kite_proto::Client;
use kite_runner::{Runner, RunnerConfig};
use kite_strategy::{NoteSource, SchedConfig, Scheduler};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long a stop waits for the loop and the runner (an agent being killed, a tick in flight).
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What the loop and the runner are started with; either may be off (`None`).
pub struct SchedParts {
    /// The strategy loop, when on.
    pub sched: Option<SchedConfig>,
    /// The runner, when on (max_agents above 0, or landing on: then it only resumes landings).
    pub runner: Option<RunnerConfig>,
    pub root: PathBuf,
    pub home: PathBuf,
    pub socket: PathBuf,
    /// Where the loop's templates recall notes from.
    pub notes: Option<Arc<dyn NoteSource>>,
    /// Where landed work lands: its signals weigh each template's record.
    pub merge: kite_land::MergeConfig,
}

/// The component: its thread, and the signals to stop it and to learn it stopped.
pub struct Sched {
    stop: tokio::sync::watch::Sender<bool>,
    done: tokio::sync::watch::Receiver<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sched {
    /// Starts the thread; it waits for the coordinator to answer as this process.
    pub fn start(parts: SchedParts) -> Sched {
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let (done_tx, done_rx) = tokio::sync::watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("kite-sched".into())
            .spawn(move || {
                background(parts, stop_rx);
                let _ = done_tx.send(true);
            });
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!("strategy loop and runner off: cannot start their thread: {e}");
                None
            }
        };
        let done = if thread.is_some() {
            done_rx
        } else {
            tokio::sync::watch::channel(true).1
        };
        Sched { stop, done, thread }
    }
}

impl crate::Component for Sched {
    fn name(&self) -> &'static str {
        "strategy loop and runner"
    }

    /// Asks them to stop and waits (without blocking the runtime) until they have: the runner's
    /// agents are killed and their sessions ended while the daemon still answers, so their tasks
    /// go back to pending now rather than after the reaper's timeout.
    fn stop(&mut self) -> crate::StopFuture<'_> {
        Box::pin(async move {
            let _ = self.stop.send(true);
            if tokio::time::timeout(STOP_GRACE, self.done.wait_for(|d| *d))
                .await
                .is_err()
            {
                tracing::warn!("strategy loop and runner did not stop in time");
            }
        })
    }

    /// Stops them (if not yet) and joins their thread, waiting at most [`STOP_GRACE`].
    fn finish(&mut self) {
        let _ = self.stop.send(true);
        let Some(t) = self.thread.take() else { return };
        let deadline = std::time::Instant::now() + STOP_GRACE;
        while !t.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if t.is_finished() {
            let _ = t.join();
        } else {
            tracing::warn!("strategy loop and runner did not stop in time; leaving them behind");
        }
    }
}

/// Resolves once a stop was asked for (or the daemon side went away).
async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Connects to the socket once the daemon answering on it is this process.
pub(crate) async fn connect_own(socket: &Path) -> Client {
    let me = std::process::id();
    loop {
        if let Ok(c) = Client::connect(socket).await {
            if let Ok(h) = c
                .request::<kite_proto::op::Hello>(kite_proto::NoArgs {})
                .await
            {
                if h.pid == me {
                    return c;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn background(parts: SchedParts, stop: tokio::sync::watch::Receiver<bool>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("strategy loop and runner off: no runtime: {e}");
            return;
        }
    };
    rt.block_on(async move {
        let client = tokio::select! {
            c = connect_own(&parts.socket) => c,
            _ = stopped(stop.clone()) => return,
        };
        let client = Arc::new(client);
        // The landed work's signals, read again in the background whatever else runs (one cache
        // of blames for this and the loop's track records).
        let quality = Arc::new(crate::quality::QualitySource::new(&parts.root, parts.merge.clone()));
        let refresh = crate::quality::refresh_loop(quality.clone(), parts.home.clone(), stopped(stop.clone()));
        let queue = Arc::new(ClientQueue::new(client.clone()).with_quality(quality));
        let sched = parts.sched.map(|c| {
            tracing::info!(tick = ?c.tick, prompts = %parts.root.join(&c.prompts_dir).display(), "strategy loop on");
            Scheduler::new(c, &parts.root, queue.clone(), parts.notes.clone())
        });
        let runner = parts.runner.map(|c| {
            tracing::info!(max_agents = c.max_agents, command = c.command.as_deref().unwrap_or("claude (the adapter)"), "runner on");
            Runner::new(c, &parts.root, &parts.home, queue.clone(), client.clone())
        });
        let agents = runner.as_ref().is_some_and(|r| r.config().max_agents > 0);
        if !agents {
            tracing::info!("runner off (max_agents = 0): only `kite spawn` starts agents");
        }
        let work = async {
            let s = async {
                if let Some(s) = sched {
                    s.run(stopped(stop.clone())).await;
                }
            };
            let r = async {
                match runner {
                    Some(r) if agents => r.run(stopped(stop.clone())).await,
                    // Landing on, no agents of its own: it finishes the landings a killed
                    // process left in the merge queue, and stops.
                    Some(r) => tokio::select! {
                        _ = r.resume_landings() => {}
                        _ = stopped(stop.clone()) => {}
                    },
                    None => {}
                }
            };
            tokio::join!(s, r, refresh);
        };
        // A tick in flight (a slow provider or audit) does not hold the daemon's shutdown up.
        let cut = async {
            stopped(stop.clone()).await;
            tokio::time::sleep(STOP_GRACE / 2).await;
        };
        tokio::select! {
            _ = work => {}
            _ = cut => tracing::warn!("strategy loop cut short by shutdown"),
        }
        queue.end_all_sessions().await;
    });
    // Whatever is still running (agents of an aborted run) is dropped, which kills it.
    rt.shutdown_timeout(Duration::from_secs(1));
}
