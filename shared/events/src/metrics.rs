//! The Prometheus series of the outbox relay and the consumers, registered
//! in the kit's process-wide registry ([`helpdesk_kit::metrics`]).
//!
//! Consumers, labelled by `queue`:
//! - `events_consumed_total`: deliveries settled without retry or dead
//!   letter (handled, duplicates, and events the consumer skips);
//! - `events_retried_total`: deliveries sent to a delay queue;
//! - `events_dead_lettered_total{reason}`: deliveries moved to `queue.dead`,
//!   `reason` one of `malformed`, `unknown_type`, `undecodable`, `rejected`,
//!   `exhausted`;
//! - `events_requeued_total`: deliveries returned because our database was away;
//! - `events_handling_seconds`: from delivery to settlement;
//! - `events_dead_letter_queue_messages`: depth of `queue.dead`, sampled
//!   every few seconds by the consumer.
//!
//! Relay:
//! - `outbox_unsent_events` and `outbox_oldest_unsent_age_seconds`: the
//!   backlog, sampled every few seconds by the relay of every replica
//!   (leading, standing by, or waiting for the broker);
//! - `outbox_published_total`: events confirmed by the broker;
//! - `outbox_publish_confirm_seconds`: from publishing a batch to the
//!   broker's last confirm for it, observed once per event.

use std::{
    sync::LazyLock,
    time::{Duration, Instant},
};

use helpdesk_kit::metrics::{
    FloatGauge, LatencyFamily, latency_family, latency_histogram, register,
};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
};

use crate::outbox::Backlog;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct QueueLabels {
    queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeadLabels {
    queue: String,
    reason: &'static str,
}

/// Why a delivery was dead-lettered (the `reason` label).
#[derive(Clone, Copy, Debug)]
pub(crate) enum DeadReason {
    Malformed,
    UnknownType,
    Undecodable,
    Rejected,
    Exhausted,
}

impl DeadReason {
    fn label(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnknownType => "unknown_type",
            Self::Undecodable => "undecodable",
            Self::Rejected => "rejected",
            Self::Exhausted => "exhausted",
        }
    }
}

struct EventMetrics {
    consumed: Family<QueueLabels, Counter>,
    retried: Family<QueueLabels, Counter>,
    dead_lettered: Family<DeadLabels, Counter>,
    requeued: Family<QueueLabels, Counter>,
    handling: LatencyFamily<QueueLabels>,
    dead_letter_depth: Family<QueueLabels, Gauge>,
    unsent: Gauge,
    oldest_age: FloatGauge,
    published: Counter,
    confirm: Histogram,
}

static METRICS: LazyLock<EventMetrics> = LazyLock::new(|| {
    let m = EventMetrics {
        consumed: Family::default(),
        retried: Family::default(),
        dead_lettered: Family::default(),
        requeued: Family::default(),
        handling: latency_family(),
        dead_letter_depth: Family::default(),
        unsent: Gauge::default(),
        oldest_age: FloatGauge::default(),
        published: Counter::default(),
        confirm: latency_histogram(),
    };
    register(|r| {
        r.register(
            "events_consumed",
            "Deliveries settled without retry or dead letter",
            m.consumed.clone(),
        );
        r.register(
            "events_retried",
            "Deliveries sent to a delay queue for a later attempt",
            m.retried.clone(),
        );
        r.register(
            "events_dead_lettered",
            "Deliveries moved to the dead-letter queue, by reason",
            m.dead_lettered.clone(),
        );
        r.register(
            "events_requeued",
            "Deliveries returned to the queue because the service's database was away",
            m.requeued.clone(),
        );
        r.register(
            "events_handling_seconds",
            "Time from delivery to settlement",
            m.handling.clone(),
        );
        r.register(
            "events_dead_letter_queue_messages",
            "Messages waiting in the dead-letter queue",
            m.dead_letter_depth.clone(),
        );
        r.register(
            "outbox_unsent_events",
            "Outbox rows not yet confirmed by the broker",
            m.unsent.clone(),
        );
        r.register(
            "outbox_oldest_unsent_age_seconds",
            "Age of the oldest unsent outbox row (0 when none)",
            m.oldest_age.clone(),
        );
        r.register(
            "outbox_published",
            "Outbox events confirmed by the broker",
            m.published.clone(),
        );
        r.register(
            "outbox_publish_confirm_seconds",
            "Time from publishing a batch to the broker's last confirm, per event",
            m.confirm.clone(),
        );
    });
    m
});

/// Registers the consumer's series for `queue`, so they read 0 before the
/// first delivery (alerts on `increase()` need the first sample).
pub(crate) fn consumer_started(queue: &str) -> QueueLabels {
    let labels = QueueLabels {
        queue: queue.to_owned(),
    };
    let m = &*METRICS;
    let _ = m.consumed.get_or_create(&labels);
    let _ = m.retried.get_or_create(&labels);
    let _ = m.requeued.get_or_create(&labels);
    labels
}

pub(crate) fn consumed(queue: &QueueLabels, started: Instant) {
    METRICS.consumed.get_or_create(queue).inc();
    handled(queue, started);
}

pub(crate) fn retried(queue: &QueueLabels, started: Instant) {
    METRICS.retried.get_or_create(queue).inc();
    handled(queue, started);
}

pub(crate) fn requeued(queue: &QueueLabels) {
    METRICS.requeued.get_or_create(queue).inc();
}

pub(crate) fn dead_lettered(queue: &QueueLabels, reason: DeadReason, started: Instant) {
    METRICS
        .dead_lettered
        .get_or_create(&DeadLabels {
            queue: queue.queue.clone(),
            reason: reason.label(),
        })
        .inc();
    handled(queue, started);
}

fn handled(queue: &QueueLabels, started: Instant) {
    METRICS
        .handling
        .get_or_create(queue)
        .observe(started.elapsed().as_secs_f64());
}

pub(crate) fn dead_letter_depth(queue: &QueueLabels, messages: u32) {
    METRICS
        .dead_letter_depth
        .get_or_create(queue)
        .set(i64::from(messages));
}

pub(crate) fn published(confirmed_after: Duration) {
    METRICS.published.inc();
    METRICS.confirm.observe(confirmed_after.as_secs_f64());
}

/// How often the relay samples the backlog at most.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Samples the outbox backlog into its gauges, at most every few seconds.
#[derive(Debug, Default)]
pub(crate) struct BacklogSampler {
    last: Option<Instant>,
}

impl BacklogSampler {
    pub(crate) fn due(&self) -> bool {
        self.last.is_none_or(|at| at.elapsed() >= SAMPLE_EVERY)
    }

    pub(crate) fn record(&mut self, backlog: &Backlog) {
        self.last = Some(Instant::now());
        METRICS.unsent.set(backlog.unsent);
        #[allow(clippy::cast_precision_loss)]
        METRICS
            .oldest_age
            .set(backlog.oldest_age_ms() as f64 / 1000.0);
    }

    /// Samples over `db` when due; a failure is only logged (the relay
    /// reports its own errors).
    pub(crate) async fn sample<'c>(&mut self, db: impl sqlx::PgExecutor<'c>) {
        if !self.due() {
            return;
        }
        match crate::outbox::backlog(db).await {
            Ok(backlog) => self.record(&backlog),
            Err(error) => tracing::debug!(%error, "sampling the outbox backlog failed"),
        }
    }
}
