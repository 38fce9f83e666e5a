//! What waits to be written to one connection, bounded. The state owner never blocks on a
//! client, so it queues replies and pushes for the connection's writer; a client that sends
//! requests and never reads its replies would make that queue, and the daemon, grow without
//! bound (1,500 unread 1 MB replies took a daemon to 2 GB). So the bytes waiting are counted:
//! above [`SOFT_CAP`] the connection's reader stops taking requests (backpressure: the client's
//! own socket fills and its writes block), a connection that makes no progress for [`STUCK`] is
//! dropped, and one whose queue passes [`HARD_CAP`] anyway (pushes it did not ask for, such as
//! the event stream of a follower that stopped reading) is dropped at once. Dropping frees the
//! queued messages.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// Above this many bytes waiting, the connection's requests are not read.
pub(crate) const SOFT_CAP: usize = 8 << 20;
/// Above this many bytes waiting, the connection is dropped.
pub(crate) const HARD_CAP: usize = 64 << 20;
/// A connection over [`SOFT_CAP`] whose writer makes no progress for this long is dropped.
pub(crate) const STUCK: Duration = Duration::from_secs(30);
/// Requests read from one connection and not yet handled. Without this bound a pipelining
/// client could hand the owner thousands of requests between two checks of the queue, and their
/// replies would all land in it.
pub(crate) const MAX_IN_FLIGHT: usize = 64;
/// The bytes of the replies in hand count as well as the count: each request in flight is
/// reckoned at the connection's largest recent message, so 64 requests for a 1 MB task are not
/// 64 MB more on top of [`SOFT_CAP`].
const SMALL: usize = 4 << 10;

#[derive(Debug, Default)]
struct Queued {
    bytes: AtomicUsize,
    /// Requests handed to the owner or a service and not yet handled.
    in_flight: AtomicUsize,
    /// The largest message queued lately (it decays by an eighth with each smaller one): what a
    /// request in flight is expected to add.
    largest: AtomicUsize,
    /// Over the hard cap: the connection is being dropped.
    dead: AtomicBool,
    /// Signalled when bytes leave the queue or a request is handled, only while a reader waits
    /// for room (so the hot path pays nothing for it).
    changed: Notify,
    room_waiters: AtomicUsize,
    /// Signalled once, when the connection is dropped.
    death: Notify,
}

impl Queued {
    fn progressed(&self) {
        if self.room_waiters.load(Ordering::Acquire) > 0 {
            self.changed.notify_waiters();
        }
    }
}

/// Counts a reader waiting for room for as long as it lives.
struct RoomWaiter<'a>(&'a AtomicUsize);

impl Drop for RoomWaiter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The sending side, held by the state owner, the syncer and services.
#[derive(Debug, Clone)]
pub(crate) struct Outbound {
    tx: mpsc::UnboundedSender<String>,
    queued: Arc<Queued>,
}

/// The writer's side.
pub(crate) struct Inbound {
    rx: mpsc::UnboundedReceiver<String>,
    queued: Arc<Queued>,
}

/// A connection's bounded outgoing queue.
pub(crate) fn channel() -> (Outbound, Inbound) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(Queued::default());
    (Outbound { tx, queued: queued.clone() }, Inbound { rx, queued })
}

impl Outbound {
    /// Queues one line. False when the connection is gone or has just been dropped for holding
    /// more than [`HARD_CAP`].
    pub(crate) fn send(&self, line: String) -> bool {
        if self.queued.dead.load(Ordering::Acquire) {
            return false;
        }
        let total = self.queued.bytes.fetch_add(line.len(), Ordering::AcqRel) + line.len();
        if total > HARD_CAP {
            self.queued.bytes.fetch_sub(line.len(), Ordering::AcqRel);
            self.kill();
            tracing::warn!(bytes = total, "dropping a connection that does not read its replies");
            return false;
        }
        let len = line.len();
        let _ = self.queued.largest.fetch_update(Ordering::AcqRel, Ordering::Acquire, |m| Some(len.max(m - m / 8)));
        if self.tx.send(line).is_err() {
            self.queued.bytes.fetch_sub(len, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// A request of this connection was handed on.
    pub(crate) fn sent_request(&self) {
        self.queued.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    /// A request of this connection was handled (answered, refused, or queued as a lock wait).
    pub(crate) fn handled(&self) {
        let _ = self.queued.in_flight.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        self.queued.progressed();
    }

    /// Whether the reader must wait before taking another request: the bytes waiting, with the
    /// replies expected for the requests in hand, over [`SOFT_CAP`], or too many requests in hand.
    pub(crate) fn full(&self) -> bool {
        let in_flight = self.queued.in_flight.load(Ordering::Acquire);
        let expected = in_flight * self.queued.largest.load(Ordering::Acquire).max(SMALL);
        self.waiting() + expected > SOFT_CAP || in_flight >= MAX_IN_FLIGHT
    }

    /// Bytes waiting.
    pub(crate) fn waiting(&self) -> usize {
        self.queued.bytes.load(Ordering::Acquire)
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.queued.dead.load(Ordering::Acquire)
    }

    /// Waits until the reader may take another request: the queue under [`SOFT_CAP`] and fewer
    /// than [`MAX_IN_FLIGHT`] requests in hand. False when the connection should be dropped: it
    /// died, or nothing left its full queue for [`STUCK`].
    pub(crate) async fn room(&self) -> bool {
        self.queued.room_waiters.fetch_add(1, Ordering::AcqRel);
        let _counted = RoomWaiter(&self.queued.room_waiters);
        loop {
            let changed = self.queued.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.is_dead() {
                return false;
            }
            if !self.full() {
                return true;
            }
            let before = self.waiting();
            if before <= SOFT_CAP {
                // Only requests in hand: they are being handled, wait for them.
                changed.await;
                continue;
            }
            if tokio::time::timeout(STUCK, changed).await.is_err() && self.waiting() >= before {
                tracing::warn!(bytes = before, "dropping a connection whose replies have not been read for {STUCK:?}");
                self.kill();
                return false;
            }
        }
    }

    /// Resolves once the connection has been dropped for its queue.
    pub(crate) async fn died(&self) {
        loop {
            let death = self.queued.death.notified();
            tokio::pin!(death);
            death.as_mut().enable();
            if self.is_dead() {
                return;
            }
            death.await;
        }
    }

    fn kill(&self) {
        self.queued.dead.store(true, Ordering::Release);
        self.queued.death.notify_waiters();
        self.queued.changed.notify_waiters();
    }
}

impl Inbound {
    /// The next line to write; `None` when every sender is gone.
    pub(crate) async fn recv(&mut self) -> Option<String> {
        self.rx.recv().await
    }

    /// The next line if one is queued now.
    pub(crate) fn try_recv(&mut self) -> Option<String> {
        self.rx.try_recv().ok()
    }

    /// Counts a written line out of the queue.
    pub(crate) fn written(&self, len: usize) {
        self.queued.bytes.fetch_sub(len, Ordering::AcqRel);
        self.queued.progressed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_queue_is_counted_and_a_full_one_kills_the_connection() {
        let (out, mut inb) = channel();
        assert!(out.send("x".repeat(10)));
        assert_eq!(out.waiting(), 10);
        let line = inb.recv().await.unwrap();
        inb.written(line.len());
        assert_eq!(out.waiting(), 0);
        assert!(out.room().await);
        // Past the hard cap: dropped, and the writer sees it.
        let big = "y".repeat(1 << 20);
        let mut sent = 0;
        while out.send(big.clone()) {
            sent += 1;
        }
        assert_eq!(sent, HARD_CAP >> 20);
        assert!(out.is_dead() && !out.room().await);
        out.died().await;
        drop(inb);
    }

    /// Requests in hand count at the size of the connection's large replies, not only by number:
    /// a client pipelining requests for a 1 MB task gets 9 in hand (until 8 MiB is passed), not 64.
    #[tokio::test]
    async fn requests_in_hand_are_reckoned_at_the_size_of_recent_replies() {
        let (out, mut inb) = channel();
        let mut taken = 0;
        while !out.full() {
            out.sent_request();
            taken += 1;
        }
        assert_eq!(taken, MAX_IN_FLIGHT, "small replies: bounded by the count");
        for _ in 0..taken {
            out.handled();
        }
        // One 1 MB reply, read at once: the queue is empty, yet requests now count 1 MB each.
        assert!(out.send("r".repeat(1 << 20)));
        let line = inb.recv().await.unwrap();
        inb.written(line.len());
        assert_eq!(out.waiting(), 0);
        let mut taken = 0;
        while !out.full() {
            out.sent_request();
            taken += 1;
        }
        assert_eq!(taken, (SOFT_CAP >> 20) + 1, "large replies: bounded by the bytes they will bring");
        // Small replies again: the estimate decays and the count is the bound once more.
        for _ in 0..taken {
            out.handled();
        }
        for _ in 0..64 {
            assert!(out.send("s".into()));
            let line = inb.recv().await.unwrap();
            inb.written(line.len());
        }
        assert!(out.queued.largest.load(Ordering::Acquire) < SMALL);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_over_the_soft_cap_waits_and_a_stuck_one_is_dropped() {
        let (out, inb) = channel();
        let big = "z".repeat(SOFT_CAP + 1);
        assert!(out.send(big.clone()));
        // Progress lets it go on.
        let waiter = tokio::spawn({
            let out = out.clone();
            async move { out.room().await }
        });
        tokio::task::yield_now().await;
        inb.written(big.len());
        assert!(waiter.await.unwrap());
        // No progress for STUCK: dropped.
        assert!(out.send(big));
        let started = tokio::time::Instant::now();
        assert!(!out.room().await);
        assert!(started.elapsed() >= STUCK);
        assert!(out.is_dead());
        drop(inb);
    }
}
