//! Where a committed batch's replies and pushes go. With `--sync normal` they go straight to the
//! connections' writers. With `--sync full` they are staged while the owner still has requests
//! in hand (at most 48 messages or 2 ms), then go to the syncer thread, which fdatasyncs the WAL
//! and only then hands them on: the state owner is already applying the next batch while the
//! disk works, and one fsync covers every batch that queued up meanwhile (pipelined group
//! commit; the reasoning for why this is as safe as SQLite's FULL is on [`kite_store::WalSync`]).
//!
//! Order is kept: once anything is queued at the syncer, everything after it is queued there too,
//! even a read-only batch, whose replies may show state that is not yet on disk.

use kite_proto::{ErrorBody, Refusal, ServerMessage};
use kite_store::Durable;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// One encoded message for one connection's writer.
pub(crate) struct Delivery {
    pub(crate) out: crate::outbound::Outbound,
    /// The request it answers, if it is a reply: a failed fsync turns it into an error.
    pub(crate) req_id: Option<u64>,
    pub(crate) line: String,
}

pub(crate) struct Batch {
    needs_sync: bool,
    deliveries: Vec<Delivery>,
}

pub(crate) enum Outlet {
    Direct,
    Synced { syncer: Syncer, staged: Vec<Batch>, since: Option<std::time::Instant> },
}

impl Outlet {
    pub(crate) fn new(wal: Option<Arc<dyn Durable>>) -> std::io::Result<Outlet> {
        Ok(match wal {
            None => Outlet::Direct,
            Some(wal) => Outlet::Synced { syncer: Syncer::start(wal)?, staged: Vec::new(), since: None },
        })
    }

    /// Takes a committed batch's messages: sent at once when nothing needs the disk first,
    /// otherwise held until [`Outlet::release`] hands them to the syncer.
    pub(crate) fn deliver(&mut self, needs_sync: bool, deliveries: Vec<Delivery>) {
        match self {
            Outlet::Synced { syncer, staged, since } if needs_sync || !staged.is_empty() || syncer.in_flight.load(Ordering::Acquire) > 0 => {
                since.get_or_insert_with(std::time::Instant::now);
                staged.push(Batch { needs_sync, deliveries })
            }
            _ => {
                for d in deliveries {
                    d.out.send(d.line);
                }
            }
        }
    }

    /// How many messages are held for the syncer, and since when.
    pub(crate) fn staged(&self) -> (usize, Option<std::time::Instant>) {
        match self {
            Outlet::Synced { staged, since, .. } => (staged.iter().map(|b| b.deliveries.len()).sum(), *since),
            Outlet::Direct => (0, None),
        }
    }

    /// Hands the held batches to the syncer: one fsync will cover them all.
    pub(crate) fn release(&mut self) {
        if let Outlet::Synced { syncer, staged, since } = self {
            *since = None;
            for b in staged.drain(..) {
                syncer.queue(b);
            }
        }
    }

    /// Delivers everything still queued and stops the syncer.
    pub(crate) async fn finish(mut self) {
        self.release();
        if let Outlet::Synced { syncer, .. } = self {
            syncer.finish().await;
        }
    }
}

pub(crate) struct Syncer {
    tx: Option<std::sync::mpsc::Sender<Batch>>,
    /// Batches queued and not yet delivered.
    in_flight: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
    deliverer: Option<tokio::task::JoinHandle<()>>,
}

impl Syncer {
    /// Starts the syncer thread and, on the daemon's runtime, the task that hands its batches to
    /// the writers: one cross-thread wake-up per fsync instead of one per message.
    fn start(wal: Arc<dyn Durable>) -> std::io::Result<Syncer> {
        let (tx, rx) = std::sync::mpsc::channel::<Batch>();
        let (synced_tx, mut synced_rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Vec<Delivery>)>();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let counter = in_flight.clone();
        let deliverer = tokio::spawn(async move {
            while let Some((n, deliveries)) = synced_rx.recv().await {
                for d in deliveries {
                    d.out.send(d.line);
                }
                // After the sends: the owner delivers directly only when nothing queued before
                // it can still be on its way.
                counter.fetch_sub(n, Ordering::AcqRel);
            }
        });
        let thread = std::thread::Builder::new().name("kite-wal-sync".into()).spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut batches = vec![first];
                batches.extend(rx.try_iter());
                let n = batches.len();
                if batches.iter().any(|b| b.needs_sync) {
                    if let Err(e) = wal.sync() {
                        fail(&e, batches);
                    }
                }
                let deliveries: Vec<Delivery> = batches.into_iter().flat_map(|b| b.deliveries).collect();
                if synced_tx.send((n, deliveries)).is_err() {
                    return;
                }
            }
        })?;
        Ok(Syncer { tx: Some(tx), in_flight, thread: Some(thread), deliverer: Some(deliverer) })
    }

    fn queue(&self, batch: Batch) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        if let Some(tx) = &self.tx {
            let _ = tx.send(batch);
        }
    }

    async fn finish(mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(d) = self.deliverer.take() {
            let _ = d.await;
        }
    }
}

/// A failed fsync is fatal. The kernel may already have dropped the dirty pages, so nothing can
/// say which commits are on disk (the PostgreSQL "fsyncgate" lesson): answer every waiting
/// request with an error, give the writers a moment to send it, and exit. The next daemon
/// recovers from what the disk really holds.
fn fail(e: &std::io::Error, batches: Vec<Batch>) -> ! {
    tracing::error!("fdatasync of the WAL failed: {e}; stopping the daemon so it restarts from what is on disk");
    for d in batches.into_iter().flat_map(|b| b.deliveries) {
        if let Some(id) = d.req_id {
            let err = ErrorBody::from(Refusal::SyncFailed(e.to_string()));
            d.out.send(ServerMessage::Reply { id: Some(id), result: Err(err) }.encode());
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    std::process::exit(70);
}
