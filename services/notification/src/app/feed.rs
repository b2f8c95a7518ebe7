//! The live feed: one `LISTEN` per replica on the feed channel
//! (storage::notifications), fanned out to the open streams of the
//! recipients each change names. A stream only learns *that* its feed
//! changed and then reads it from the database after its cursor, so a
//! missed wake-up costs latency, never an item: on a lost listener
//! connection every stream is woken to re-read.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use sqlx::{PgPool, postgres::PgListener};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::storage::notifications::CHANNEL;

type Subscribers = HashMap<Uuid, Vec<(u64, Arc<Notify>)>>;

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
    notify: Arc<Notify>,
}

impl Subscription {
    /// Waits until the recipient's feed may have changed since the last
    /// wake-up (a change before the first wait counts).
    pub async fn changed(&self) {
        self.notify.notified().await;
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
        let notify = Arc::new(Notify::new());
        self.subscribers
            .lock()
            .expect("feed lock")
            .entry(recipient)
            .or_default()
            .push((id, notify.clone()));
        Subscription {
            feed: self.clone(),
            recipient,
            id,
            notify,
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

    /// Wakes the streams a payload names (`*`: all of them).
    fn wake(&self, payload: &str) {
        let subscribers = self.subscribers.lock().expect("feed lock");
        // `notify_one` keeps a permit when the stream is busy reading, so a
        // change during a read is not lost.
        if payload == "*" {
            subscribers
                .values()
                .flatten()
                .for_each(|(_, n)| n.notify_one());
            return;
        }
        for id in payload.split(',').filter_map(|s| Uuid::parse_str(s).ok()) {
            for (_, notify) in subscribers.get(&id).into_iter().flatten() {
                notify.notify_one();
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
