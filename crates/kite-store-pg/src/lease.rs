//! One active daemon per team database: the lease.
//!
//! The active daemon holds a row (`lease`: epoch, holder, address) and keeps its expiry
//! (`lease_renewal`) a few seconds ahead, renewing every second on a connection of its own. A
//! standby polls; when the expiry has passed it takes the lease over in one transaction, with
//! the epoch incremented. Why a row and not only an advisory lock: a partitioned holder keeps an
//! advisory lock until TCP keepalive notices, hours by default, while a row's expiry passes on
//! the database's clock whatever the holder's network does.
//!
//! What makes a deposed daemon harmless is not the expiry but the epoch: every batch of the
//! store reads it `FOR SHARE` in its own transaction ([`crate::PgStore`]), the take-over's
//! `UPDATE` waits for a batch in flight, and the next batch of the old daemon is refused. Its
//! renewal fails too, and it stops.

use crate::{connect, Conn, Result};
use kite_store::StoreError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How far ahead each renewal sets the expiry.
pub const TTL: Duration = Duration::from_secs(3);
/// How often the holder renews.
pub const RENEW_EVERY: Duration = Duration::from_millis(1000);
/// How often a standby looks.
pub const POLL: Duration = Duration::from_millis(200);

/// Who holds the lease now.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseInfo {
    pub epoch: i64,
    pub holder: String,
    pub address: String,
    /// Milliseconds until it expires (negative: expired that long ago).
    pub expires_in_ms: i64,
}

/// What one attempt to take the lease found.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// Taken, with this epoch.
    Won(i64),
    /// Another daemon holds it.
    Held(LeaseInfo),
}

fn ensure_rows(c: &Conn) -> Result<()> {
    c.batch(
        "INSERT INTO lease (id, epoch, holder) VALUES (1, 0, '') ON CONFLICT DO NOTHING;
         INSERT INTO lease_renewal (id, expires_at) VALUES (1, '-infinity') ON CONFLICT DO NOTHING;",
    )
}

/// Who holds the lease of the database at `c` (`None` before any daemon took it).
pub fn info(c: &Conn) -> Result<Option<LeaseInfo>> {
    let row = c.query_opt(
            "SELECT l.epoch, l.holder, l.address,
                    CASE WHEN r.expires_at = '-infinity' THEN -1
                         ELSE (extract(epoch FROM r.expires_at - now()) * 1000)::bigint END
             FROM lease l JOIN lease_renewal r ON r.id = l.id WHERE l.id = 1 AND l.epoch > 0",
            &[],
        )?;
    Ok(row.map(|r| LeaseInfo { epoch: r.get(0), holder: r.get(1), address: r.get(2), expires_in_ms: r.get(3) }))
}

/// Who a daemon is: the place it serves (`place`: host and home, which one daemon at a time holds
/// through the home's pidfile lock) and its pid. A daemon that finds the lease held by its own
/// place holds that place's pidfile lock, so the holder is provably dead (killed, crashed) and
/// the lease is taken over at once instead of after it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub place: String,
    pub pid: u32,
}

impl Holder {
    fn text(&self) -> String {
        format!("{} pid {}", self.place, self.pid)
    }

    /// Whether `text` (a lease's holder) names another process of this place.
    fn same_place(&self, text: &str) -> bool {
        text.strip_prefix(self.place.as_str()).is_some_and(|rest| rest.starts_with(" pid ")) && text != self.text()
    }
}

/// One attempt: takes the lease when it is free or expired, or held by a dead daemon of the same
/// place.
pub fn try_take(c: &Conn, holder: &Holder, address: &str) -> Result<Attempt> {
    ensure_rows(c)?;
    c.batch("BEGIN")?;
    let r = take_in_tx(c, holder, address);
    let end = match &r {
        Ok(Attempt::Won(_)) => c.batch("COMMIT"),
        _ => c.batch("ROLLBACK"),
    };
    let r = r?;
    end?;
    if let Attempt::Won(epoch) = r {
        if epoch > 1 {
            tracing::warn!(epoch, "took the store's lease over from a daemon whose lease had expired");
        }
    }
    Ok(r)
}

fn take_in_tx(c: &Conn, holder: &Holder, address: &str) -> Result<Attempt> {
    // FOR UPDATE waits for a batch of the current holder in flight (it holds FOR SHARE).
    let row = c.query_one("SELECT epoch, holder, address FROM lease WHERE id = 1 FOR UPDATE", &[])?;
    let (epoch, old_holder, old_address): (i64, String, String) = (row.get(0), row.get(1), row.get(2));
    let left: i64 = c
        .query_one(
            "SELECT CASE WHEN expires_at = '-infinity' THEN -1 ELSE (extract(epoch FROM expires_at - now()) * 1000)::bigint END
             FROM lease_renewal WHERE id = 1",
            &[],
        )?
        .get(0);
    if left > 0 && !holder.same_place(&old_holder) {
        return Ok(Attempt::Held(LeaseInfo { epoch, holder: old_holder, address: old_address, expires_in_ms: left }));
    }
    let ttl_ms = TTL.as_millis() as i64;
    c.execute("UPDATE lease SET epoch = epoch + 1, holder = $1, address = $2, since = now() WHERE id = 1", &[&holder.text(), &address])?;
    c.execute("UPDATE lease_renewal SET expires_at = now() + make_interval(secs => $1::bigint / 1000.0) WHERE id = 1", &[&ttl_ms])?;
    Ok(Attempt::Won(epoch + 1))
}

/// Why the lease was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("another kite daemon is active for this store: {holder} (epoch {epoch}{address}); start this one with `kite daemon --standby` to take over when it stops")]
    Active { holder: String, epoch: i64, address: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The lease, held and renewed in the background until [`Lease::release`] or drop.
pub struct Lease {
    epoch: i64,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    url: String,
}

impl Lease {
    /// Takes the lease of the database at `url` as `holder` (reachable at `address`, for
    /// `kite status`). When another daemon holds it: with `standby`, waits until its lease
    /// expires (calling `waiting` once with who holds it), else refuses. `lost` is called, on the
    /// renewal thread, if the lease is ever lost: the daemon must stop serving.
    pub fn take(url: &str, holder: &Holder, address: &str, standby: bool, mut waiting: impl FnMut(&LeaseInfo), lost: impl Fn(String) + Send + 'static) -> std::result::Result<Lease, LeaseError> {
        let c = connect(url)?;
        crate::migrate(&c)?;
        let mut told = false;
        let epoch = loop {
            match try_take(&c, holder, address)? {
                Attempt::Won(e) => break e,
                Attempt::Held(info) if standby => {
                    if !told {
                        waiting(&info);
                        told = true;
                    }
                    std::thread::sleep(POLL);
                }
                Attempt::Held(info) => {
                    let address = if info.address.is_empty() { String::new() } else { format!(", at {}", info.address) };
                    return Err(LeaseError::Active { holder: info.holder, epoch: info.epoch, address });
                }
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("kite-lease".into())
            .spawn({
                let url = url.to_string();
                move || renew(c, url, epoch, flag, lost)
            })
            .map_err(|e| StoreError::Backend(format!("cannot start the lease thread: {e}")))?;
        Ok(Lease { epoch, stop, thread: Some(thread), url: url.to_string() })
    }

    /// The epoch this daemon writes under.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// Stops renewing and lets the lease expire now, so a standby takes over at once.
    pub fn release(mut self) {
        self.stop_thread();
        match connect(&self.url) {
            Ok(c) => {
                let r = c.execute(
                    "UPDATE lease_renewal SET expires_at = now() - interval '1 millisecond'
                     WHERE id = 1 AND (SELECT epoch FROM lease WHERE id = 1) = $1",
                    &[&self.epoch],
                );
                if let Err(e) = r {
                    tracing::warn!("cannot release the store's lease (a standby waits for it to expire): {e}");
                }
            }
            Err(e) => tracing::warn!("cannot release the store's lease (a standby waits for it to expire): {e}"),
        }
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// The renewal loop. The lease is lost when the epoch moved on, or when no renewal succeeded for
/// a whole TTL (a standby may have taken over meanwhile).
fn renew(mut c: Conn, url: String, epoch: i64, stop: Arc<AtomicBool>, lost: impl Fn(String)) {
    let ttl_ms = TTL.as_millis() as i64;
    let mut renewed = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        std::thread::park_timeout(RENEW_EVERY);
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let r = c.execute(
            "UPDATE lease_renewal SET expires_at = now() + make_interval(secs => $2::bigint / 1000.0)
             WHERE id = 1 AND (SELECT epoch FROM lease WHERE id = 1) = $1",
            &[&epoch, &ttl_ms],
        );
        match r {
            Ok(1) => renewed = Instant::now(),
            Ok(_) => return lost(format!("another daemon took the store's lease over (this one had epoch {epoch})")),
            Err(e) => {
                tracing::warn!("cannot renew the store's lease: {e}");
                if renewed.elapsed() >= TTL {
                    return lost(format!("the store's lease could not be renewed for {} s", TTL.as_secs()));
                }
                if c.is_closed() {
                    // The connection is gone: a new one, if the database answers.
                    if let Ok(fresh) = connect(&url) {
                        c = fresh;
                    }
                }
            }
        }
    }
}
