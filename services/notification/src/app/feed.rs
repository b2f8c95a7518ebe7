//! The live feed: one `LISTEN` per replica on the feed channel
//! (storage::notifications), fanned out to the open streams of the
//! recipients each change names. A stream only learns *that* its feed
//! changed and then reads it from the database after its cursor, so a
//! missed wake-up costs latency, never an item: on a lost listener
//! connection every stream is woken to re-read. Streams keep their unread
//! count by adding what they read, and count again only when told that
//! notifications were read: counting a large unread backlog on every new
//! notification would cost a scan each time.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use sqlx::{PgPool, postgres::PgListener};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::storage::notifications::{CHANNEL, READ_PREFIX};

/// A stream's wake-up, and whether it must count its unread ones again.
#[derive(Default)]
struct Waker {
    notify: Notify,
    recount: AtomicBool,
}

type Subscribers = HashMap<Uuid, Vec<(u64, Arc<Waker>)>>;

/// The streams open on this replica; clones share them.
#[derive(Clone, Default)]
pub struct Feed {
    subscribers: Arc<Mutex<Subscribers>>,
    next_id: Arc<AtomicU64>,
}

/// One open stream's wake-up; unsubscribes when dropped.
pub struct Subscription {
    feed: Feed,
    recipient: Uuid,
    id: u64,
    waker: Arc<Waker>,
}

impl Subscription {
    /// Waits until the recipient's feed may have changed since the last
    /// wake-up (a change before the first wait counts).
    pub async fn changed(&self) {
        self.waker.notify.notified().await;
    }

    /// Whether notifications may have been read since the last call (or
    /// changes may have been missed): then the stream counts again rather
    /// than adding what it reads.
    pub fn take_recount(&self) -> bool {
        self.waker.recount.swap(false, Ordering::AcqRel)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut subscribers = self.feed.subscribers.lock().expect("feed lock");
        if let Some(list) = subscribers.get_mut(&self.recipient) {
            list.retain(|(id, _)| *id != self.id);
            if list.is_empty() {
                subscribers.remove(&self.recipient);
            }
        }
    }
}

impl Feed {
    pub fn subscribe(&self, recipient: Uuid) -> Subscription {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let waker = Arc::new(Waker::default());
        self.subscribers
            .lock()
            .expect("feed lock")
            .entry(recipient)
            .or_default()
            .push((id, waker.clone()));
        Subscription {
            feed: self.clone(),
            recipient,
            id,
            waker,
        }
    }

    /// Open streams on this replica.
    pub fn open_streams(&self) -> usize {
        self.subscribers
            .lock()
            .expect("feed lock")
            .values()
            .map(Vec::len)
            .sum()
    }

    /// Wakes the streams a payload names: ids (new notifications),
    /// `read:<id>` (notifications read), or `*` (anything may have changed:
    /// all of them, counting again).
    fn wake(&self, payload: &str) {
        let subscribers = self.subscribers.lock().expect("feed lock");
        // `notify_one` keeps a permit when the stream is busy reading, so a
        // change during a read is not lost.
        let wake = |waker: &Waker, recount: bool| {
            if recount {
                waker.recount.store(true, Ordering::Release);
            }
            waker.notify.notify_one();
        };
        if payload == "*" {
            subscribers
                .values()
                .flatten()
                .for_each(|(_, w)| wake(w, true));
            return;
        }
        let (ids, recount) = match payload.strip_prefix(READ_PREFIX) {
            Some(ids) => (ids, true),
            None => (payload, false),
        };
        for id in ids.split(',').filter_map(|s| Uuid::parse_str(s).ok()) {
            for (_, waker) in subscribers.get(&id).into_iter().flatten() {
                wake(waker, recount);
            }
        }
    }

    /// Listens until `stop`, reconnecting after a lost connection.
    pub async fn listen(self, pool: PgPool, stop: CancellationToken) -> anyhow::Result<()> {
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        // Anything committed before the listener was up is re-read.
        self.wake("*");
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                next = listener.try_recv() => next,
            };
            match next {
                Ok(Some(notification)) => self.wake(notification.payload()),
                // The connection dropped; the next try_recv reconnects and
                // re-listens. What changed meanwhile is re-read by everyone.
                Ok(None) => self.wake("*"),
                Err(err) => {
                    tracing::warn!(error = %err, "feed listener failed; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    self.wake("*");
                }
            }
        }
    }
}
