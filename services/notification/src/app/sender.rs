//! The sender: claims due email and push deliveries and sends them, off the
//! consumer's path, so a slow SMTP server never stalls event intake and any
//! number of replicas share the work (storage::outgoing has the claim and
//! its lease).
//!
//! Each pass claims up to `SENDER_BATCH` due rows and sends them side by side
//! (at most `SENDER_CONCURRENCY` at once). Each outcome is one small
//! statement:
//!
//! - **sent**;
//! - **skipped** with a reason: `no_address` (no account, no email, no push
//!   token), `inactive_account`, `unregistered_token` (every token the
//!   person has was reported dead), `no_gateway` (push, with no
//!   `PUSH_GATEWAY_URL`);
//! - **transient** (SMTP 4xx, timeouts, refused connections, push 5xx, the
//!   accounts service down): due again after exponential backoff with
//!   jitter ([`RetryPolicy`]), or **failed** once past the budget counted
//!   from the delivery's creation;
//! - **permanent** (SMTP 5xx, a push 4xx, a template that does not render):
//!   **failed** at once, with `last_error`.
//!
//! Texts are rendered now, not at intake, in the recipient's current
//! locale, from the notification's stored params plus `recipient_name` and
//! `url` (`APP_BASE_URL` + the deep link).
//!
//! Between passes it sleeps until [`Sender::wake`] (intake queued something)
//! or `SENDER_POLL_MS` (retries coming due, other replicas' rows), whichever
//! is first; a full batch goes straight on to the next.

use std::{
    collections::HashSet,
    hash::{BuildHasher, BuildHasherDefault, DefaultHasher},
    sync::Arc,
    time::Duration,
};

use futures_util::{StreamExt, future::join_all, stream};
use helpdesk_kit::{
    clock::SharedClock,
    config::{millis_or, string_or, var_or},
    telemetry::{self, Causes},
};
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::{
    channels::{
        SendError,
        email::{Email, Mailer, SmtpConfig},
        push::{PushConfig, PushData, PushGateway, PushMessage, PushOutcome},
    },
    clients::accounts::{Contact, Directory},
    domain::{Kind, retry::RetryPolicy},
    storage::outgoing::{self, Claimed},
    templates::Templates,
};

/// How long a woken sender waits before its pass: intake wakes it just
/// before its transaction commits, and a burst of events then shares a pass.
const GATHER: Duration = Duration::from_millis(20);

/// Why a delivery was skipped (besides intake's `preference`).
pub mod reason {
    /// No account, no email address, or no push token.
    pub const NO_ADDRESS: &str = "no_address";
    /// The account is deactivated.
    pub const INACTIVE_ACCOUNT: &str = "inactive_account";
    /// Every push token of the person was reported unregistered.
    pub const UNREGISTERED_TOKEN: &str = "unregistered_token";
    /// Push with no `PUSH_GATEWAY_URL` configured.
    pub const NO_GATEWAY: &str = "no_gateway";
}

/// `SENDER_*`, `APP_BASE_URL` and `RETRY_*` settings plus the channels'.
#[derive(Clone, Debug)]
pub struct SenderConfig {
    pub smtp: SmtpConfig,
    pub push: PushConfig,
    /// `RETRY_FIRST_MS` (default 10000), `RETRY_MAX_MS` (default 3600000),
    /// `RETRY_BUDGET_SECS` (default 86400).
    pub retry: RetryPolicy,
    /// `SENDER_POLL_MS` (default 1000): the longest sleep between passes.
    pub poll: Duration,
    /// `SENDER_BATCH` (default 32): deliveries claimed per pass.
    pub batch: usize,
    /// `SENDER_CONCURRENCY` (default 8): sends in flight at once.
    pub concurrency: usize,
    /// `SENDER_LEASE_SECS` (default 60): how long a claim keeps other
    /// senders off a row; must outlast a send (twice each channel timeout).
    pub lease: Duration,
    /// `APP_BASE_URL` (default `http://localhost:8080`): `url` in the texts
    /// is this plus the notification's deep link.
    pub app_base_url: String,
}

impl SenderConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        let config = Self {
            smtp: SmtpConfig::from_env()?,
            push: PushConfig::from_env()?,
            retry: RetryPolicy {
                first: millis_or("RETRY_FIRST_MS", Duration::from_secs(10))?,
                max: millis_or("RETRY_MAX_MS", Duration::from_secs(3600))?,
                budget: Duration::from_secs(var_or("RETRY_BUDGET_SECS", 86_400)?),
            },
            poll: millis_or("SENDER_POLL_MS", Duration::from_secs(1))?,
            batch: var_or("SENDER_BATCH", 32)?,
            concurrency: var_or("SENDER_CONCURRENCY", 8)?,
            lease: Duration::from_secs(var_or("SENDER_LEASE_SECS", 60)?),
            app_base_url: string_or("APP_BASE_URL", "http://localhost:8080"),
        };
        config.check()?;
        Ok(config)
    }

    /// Settings that cannot work together fail at start.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.batch >= 1, "SENDER_BATCH must be at least 1");
        anyhow::ensure!(
            self.concurrency >= 1,
            "SENDER_CONCURRENCY must be at least 1"
        );
        anyhow::ensure!(!self.poll.is_zero(), "SENDER_POLL_MS must be above 0");
        anyhow::ensure!(
            !self.retry.first.is_zero() && self.retry.first <= self.retry.max,
            "RETRY_FIRST_MS must be above 0 and at most RETRY_MAX_MS"
        );
        // A lease shorter than a send lets a second sender start the same
        // delivery while the first is still talking to the server.
        let longest = self.smtp.timeout.max(self.push.timeout);
        anyhow::ensure!(
            self.lease >= longest * 2,
            "SENDER_LEASE_SECS ({} s) must be at least twice SMTP_TIMEOUT_MS and PUSH_TIMEOUT_MS",
            self.lease.as_secs()
        );
        Ok(())
    }
}

/// The delivery worker; clones share the channels and the wake-up.
#[derive(Clone)]
pub struct Sender {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    templates: Arc<Templates>,
    directory: Directory,
    config: SenderConfig,
    clock: SharedClock,
    mailer: Mailer,
    push: Option<PushGateway>,
    wake: Notify,
    /// Per notification, the event's span its deliveries continue.
    causes: Causes<Uuid>,
}

/// Notifications whose cause is remembered at most (see [`Causes`]).
const CAUSES: usize = 20_000;

/// What became of one claimed delivery.
#[derive(Debug)]
enum Outcome {
    /// `tokens`: the push tokens reached (empty for email).
    Sent {
        tokens: Vec<String>,
    },
    Skipped(&'static str),
    Transient {
        error: String,
        tokens: Vec<String>,
    },
    Permanent {
        error: String,
        tokens: Vec<String>,
    },
}

impl Outcome {
    fn from_error(err: SendError, tokens: Vec<String>) -> Self {
        match err {
            SendError::Transient(error) => Self::Transient { error, tokens },
            SendError::Permanent(error) => Self::Permanent { error, tokens },
        }
    }

    fn permanent(error: impl ToString) -> Self {
        Self::Permanent {
            error: error.to_string(),
            tokens: Vec::new(),
        }
    }
}

impl Sender {
    /// Builds the SMTP pool and the push client; nothing connects yet.
    pub fn new(
        pool: PgPool,
        templates: Arc<Templates>,
        directory: Directory,
        config: SenderConfig,
        clock: SharedClock,
    ) -> anyhow::Result<Self> {
        config.check()?;
        let mailer = Mailer::new(&config.smtp)?;
        let push = PushGateway::new(&config.push)?;
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                templates,
                directory,
                config,
                clock,
                mailer,
                push,
                wake: Notify::new(),
                causes: Causes::new(CAUSES),
            }),
        })
    }

    /// Remembers the current span (intake's) as the cause of the deliveries
    /// of `notification`, so their sends continue its trace.
    pub fn remember(&self, notification: Uuid) {
        self.inner.causes.remember(notification);
    }

    /// New deliveries were committed: look now instead of at the next poll.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// One pass: claims the deliveries due now (at most a batch), sends
    /// them and records each outcome; returns how many were claimed. The
    /// loop is [`run`]; tests call this after moving their clock.
    pub async fn send_due(&self) -> anyhow::Result<usize> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let lease = chrono::Duration::from_std(inner.config.lease)?;
        let claimed = outgoing::claim(
            &inner.pool,
            now,
            now + lease,
            i64::try_from(inner.config.batch).unwrap_or(i64::MAX),
        )
        .await?;
        let count = claimed.len();
        stream::iter(claimed)
            .for_each_concurrent(inner.config.concurrency, |delivery| {
                // One span per send, continuing the event's trace. Ids
                // only: no address, text or token.
                let span = tracing::info_span!(
                    "notification.deliver",
                    otel.name = format!("deliver {}", delivery.channel),
                    otel.kind = "client",
                    channel = %delivery.channel,
                    delivery_id = %delivery.id,
                    notification_id = %delivery.notification_id,
                    kind = %delivery.kind,
                    ticket_id = %delivery.ticket_id,
                    human_id = %delivery.human_id,
                    attempt = delivery.attempts,
                );
                telemetry::follow(&span, inner.causes.get(&delivery.notification_id));
                async move {
                    let outcome = match delivery.channel.as_str() {
                        "email" => self.email(&delivery).await,
                        "push" => self.push(&delivery).await,
                        other => Outcome::permanent(format!("unknown channel {other:?}")),
                    };
                    self.record(&delivery, outcome).await;
                }
                .instrument(span)
            })
            .await;
        Ok(count)
    }

    /// The recipient, or the outcome that ends the delivery without one.
    async fn contact(&self, delivery: &Claimed) -> Result<Contact, Outcome> {
        match self.inner.directory.contact(delivery.recipient_id).await {
            Err(e) => Err(Outcome::Transient {
                error: format!("accounts: {e}"),
                tokens: delivery.sent_tokens.clone(),
            }),
            Ok(None) => Err(Outcome::Skipped(reason::NO_ADDRESS)),
            Ok(Some(contact)) if !contact.active => Err(Outcome::Skipped(reason::INACTIVE_ACCOUNT)),
            Ok(Some(contact)) => Ok(contact),
        }
    }

    /// The stored template variables plus `recipient_name` and `url`.
    fn params(&self, delivery: &Claimed, contact: &Contact) -> serde_json::Value {
        let mut params = delivery.params.clone();
        if let Some(map) = params.as_object_mut() {
            map.insert("recipient_name".into(), contact.display_name.clone().into());
            let base = self.inner.config.app_base_url.trim_end_matches('/');
            map.insert("url".into(), format!("{base}{}", delivery.link).into());
        }
        params
    }

    async fn email(&self, delivery: &Claimed) -> Outcome {
        let contact = match self.contact(delivery).await {
            Ok(contact) => contact,
            Err(outcome) => return outcome,
        };
        if contact.email.trim().is_empty() {
            return Outcome::Skipped(reason::NO_ADDRESS);
        }
        let kind: Kind = match delivery.kind.parse() {
            Ok(kind) => kind,
            Err(e) => return Outcome::permanent(e),
        };
        let params = self.params(delivery, &contact);
        let content = match self.inner.templates.email(&contact.locale, kind, &params) {
            Ok(content) => content,
            Err(e) => return Outcome::permanent(e),
        };
        let mailer = &self.inner.mailer;
        let message = mailer.message(&Email {
            delivery_id: delivery.id,
            ticket_id: delivery.ticket_id,
            to_name: &contact.display_name,
            to_address: contact.email.trim(),
            content: &content,
            date: self.inner.clock.now(),
        });
        match message {
            Ok(message) => match mailer.send(&message).await {
                Ok(()) => Outcome::Sent { tokens: Vec::new() },
                Err(e) => Outcome::from_error(e, Vec::new()),
            },
            Err(e) => Outcome::from_error(e, Vec::new()),
        }
    }

    async fn push(&self, delivery: &Claimed) -> Outcome {
        let Some(gateway) = &self.inner.push else {
            return Outcome::Skipped(reason::NO_GATEWAY);
        };
        let contact = match self.contact(delivery).await {
            Ok(contact) => contact,
            Err(outcome) => return outcome,
        };
        let mut tokens: Vec<String> = Vec::new();
        for token in contact.push_tokens.iter().map(|t| t.trim()) {
            if !token.is_empty() && !tokens.iter().any(|t| t == token) {
                tokens.push(token.to_owned());
            }
        }
        if tokens.is_empty() {
            return Outcome::Skipped(reason::NO_ADDRESS);
        }
        let mut reached = delivery.sent_tokens.clone();
        let transient = |error: String, reached: &Vec<String>| Outcome::Transient {
            error,
            tokens: reached.clone(),
        };
        let dead: HashSet<String> = match outgoing::unregistered(&self.inner.pool, &tokens).await {
            Ok(dead) => dead.into_iter().collect(),
            Err(e) => return transient(format!("reading unregistered tokens: {e}"), &reached),
        };
        tokens.retain(|t| !dead.contains(t));
        if tokens.is_empty() {
            return Outcome::Skipped(reason::UNREGISTERED_TOKEN);
        }
        // A retry after a partial failure reaches only the rest.
        let pending: Vec<&String> = tokens.iter().filter(|t| !reached.contains(t)).collect();
        if pending.is_empty() {
            return Outcome::Sent { tokens: reached };
        }

        let kind: Kind = match delivery.kind.parse() {
            Ok(kind) => kind,
            Err(e) => return Outcome::permanent(e),
        };
        let params = self.params(delivery, &contact);
        let text = match self.inner.templates.in_app(&contact.locale, kind, &params) {
            Ok(text) => text,
            Err(e) => return Outcome::permanent(e),
        };
        let message = |token| PushMessage {
            token,
            title: &text.title,
            body: &text.body,
            collapse_key: format!("ticket-{}", delivery.ticket_id),
            data: PushData {
                notification_id: delivery.notification_id.to_string(),
                ticket_id: delivery.ticket_id.to_string(),
                human_id: &delivery.human_id,
                kind: &delivery.kind,
                link: &delivery.link,
            },
        };
        let answers = join_all(pending.iter().map(|token| {
            let message = message(token.as_str());
            async move { gateway.send(&message).await }
        }))
        .await;

        let (mut newly_dead, mut later, mut never) = (Vec::new(), None, None);
        for (token, answer) in pending.into_iter().zip(answers) {
            match answer {
                PushOutcome::Sent => reached.push(token.clone()),
                PushOutcome::Unregistered => newly_dead.push(token.clone()),
                PushOutcome::Failed(SendError::Transient(e)) => later = Some(e),
                PushOutcome::Failed(SendError::Permanent(e)) => never = Some(e),
            }
        }
        if !newly_dead.is_empty() {
            tracing::info!(
                account_id = %delivery.recipient_id,
                tokens = newly_dead.len(),
                "push tokens unregistered"
            );
            let now = self.inner.clock.now();
            if let Err(e) =
                outgoing::unregister(&self.inner.pool, delivery.recipient_id, &newly_dead, now)
                    .await
            {
                return transient(format!("recording unregistered tokens: {e}"), &reached);
            }
        }
        // A refused payload will be refused for the other tokens too.
        if let Some(error) = never {
            return Outcome::Permanent {
                error,
                tokens: reached,
            };
        }
        if let Some(error) = later {
            return transient(error, &reached);
        }
        if reached.is_empty() {
            return Outcome::Skipped(reason::UNREGISTERED_TOKEN);
        }
        Outcome::Sent { tokens: reached }
    }

    /// Stores the outcome, fenced by the attempt (storage::outgoing).
    async fn record(&self, delivery: &Claimed, outcome: Outcome) {
        let inner = &self.inner;
        let (pool, id, attempt) = (&inner.pool, delivery.id, delivery.attempts);
        let now = inner.clock.now();
        let (stored, label) = match &outcome {
            Outcome::Sent { tokens } => {
                (outgoing::sent(pool, id, attempt, tokens, now).await, "sent")
            }
            Outcome::Skipped(why) => (outgoing::skipped(pool, id, attempt, why).await, "skipped"),
            Outcome::Permanent { error, tokens } => (
                outgoing::failed(pool, id, attempt, error, tokens).await,
                "failed",
            ),
            Outcome::Transient { error, tokens } => {
                let next = inner.config.retry.next_attempt(
                    delivery.create_time,
                    now,
                    u32::try_from(attempt).unwrap_or(u32::MAX),
                    jitter(id, attempt),
                );
                match next {
                    Some(next) => (
                        outgoing::retry(pool, id, attempt, next, error, tokens).await,
                        "retry",
                    ),
                    None => {
                        let error = format!("gave up after {attempt} attempts: {error}");
                        (
                            outgoing::failed(pool, id, attempt, &error, tokens).await,
                            "failed",
                        )
                    }
                }
            }
        };
        let channel = delivery.channel.as_str();
        if matches!(stored, Ok(true)) {
            super::metrics::delivery(channel, label);
        }
        match stored {
            Ok(true) => match &outcome {
                Outcome::Sent { .. } => tracing::debug!(delivery_id = %id, channel, "sent"),
                Outcome::Skipped(why) => {
                    tracing::debug!(delivery_id = %id, channel, reason = why, "skipped")
                }
                Outcome::Transient { error, .. } => {
                    tracing::info!(delivery_id = %id, channel, attempt, error, "send failed; will retry")
                }
                Outcome::Permanent { error, .. } => {
                    tracing::warn!(delivery_id = %id, channel, attempt, error, "send failed for good")
                }
            },
            // Our lease lapsed and another sender claimed the row: its
            // outcome counts, not ours.
            Ok(false) => tracing::warn!(
                delivery_id = %id,
                channel,
                attempt,
                outcome = label,
                "lease lost before the outcome was recorded"
            ),
            // The lease brings the row back; an email may then go out twice,
            // with the same Message-ID.
            Err(e) => tracing::warn!(
                delivery_id = %id,
                channel,
                error = %e,
                outcome = label,
                "could not record the outcome; the delivery comes due again when its lease lapses"
            ),
        }
    }
}

/// A jitter in `[0, 1)` derived from the delivery and attempt: spread like
/// a random one, with no RNG to carry around, and reproducible in tests.
fn jitter(id: Uuid, attempt: i32) -> f64 {
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one((id, attempt));
    // The top 53 bits, as a fraction of 2^53 (all an f64 holds exactly).
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

/// Claims and sends due deliveries until `stop`. A send in flight when
/// `stop` comes finishes (each has its timeout); rows claimed but never
/// recorded come back when their lease lapses.
pub async fn run(sender: Sender, stop: CancellationToken) {
    let config = &sender.inner.config;
    let mut backlog = super::metrics::BacklogSampler::default();
    while !stop.is_cancelled() {
        backlog.sample(&sender.inner.pool).await;
        let claimed = match sender.send_due().await {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(error = %e, "claiming deliveries failed; trying again at the next poll");
                0
            }
        };
        // A full batch: more may be due already.
        if claimed >= config.batch {
            continue;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = sender.inner.wake.notified() => tokio::time::sleep(GATHER).await,
            () = tokio::time::sleep(config.poll) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_spreads_within_the_unit_interval() {
        let values: Vec<f64> = (0..200)
            .map(|i| jitter(Uuid::from_u128(i as u128), 1))
            .collect();
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
        let low = values.iter().filter(|v| **v < 0.5).count();
        assert!((60..140).contains(&low), "{low} of 200 below 0.5");
        assert_eq!(jitter(Uuid::nil(), 3), jitter(Uuid::nil(), 3));
    }
}
