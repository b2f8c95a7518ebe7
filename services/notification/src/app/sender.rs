//! Sends queued deliveries (stub: its owner replaces it).

use std::sync::Arc;

use helpdesk_kit::clock::SharedClock;
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{
    channels::{email::SmtpConfig, push::PushConfig},
    clients::accounts::Directory,
    domain::retry::RetryPolicy,
    templates::Templates,
};

/// `SENDER_*` settings plus the channels' and the retry policy.
#[derive(Clone, Debug)]
pub struct SenderConfig {
    pub smtp: SmtpConfig,
    pub push: PushConfig,
    pub retry: RetryPolicy,
}

impl SenderConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            smtp: SmtpConfig::from_env()?,
            push: PushConfig::from_env()?,
            retry: RetryPolicy {
                first: std::time::Duration::from_secs(10),
                max: std::time::Duration::from_secs(3600),
                budget: std::time::Duration::from_secs(24 * 3600),
            },
        })
    }
}

/// The delivery worker; clones share the wake-up.
#[derive(Clone)]
pub struct Sender {
    wake: Arc<Notify>,
}

impl Sender {
    pub fn new(
        _pool: PgPool,
        _templates: Arc<Templates>,
        _directory: Directory,
        _config: SenderConfig,
        _clock: SharedClock,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            wake: Arc::new(Notify::new()),
        })
    }

    /// New deliveries were committed: look now instead of at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Claims and sends due deliveries until `stop`.
pub async fn run(sender: Sender, stop: CancellationToken) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = sender.wake.notified() => {}
    }
}
