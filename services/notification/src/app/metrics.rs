//! The notification service's Prometheus series ([`helpdesk_kit::metrics`]):
//!
//! - `notification_deliveries_total{channel, outcome}`: delivery attempts
//!   recorded, `outcome` one of `sent`, `skipped`, `retry` (a transient
//!   failure, tried again later) and `failed` (permanent, or retries spent);
//! - `notification_deliveries_queued`: deliveries not yet settled, and of
//!   those `notification_deliveries_retrying` (failed at least once);
//! - `notification_oldest_queued_age_seconds`: age of the oldest of them.
//!
//! The backlog gauges are sampled by the sender loop every few seconds.

use std::{
    sync::LazyLock,
    time::{Duration, Instant},
};

use helpdesk_kit::metrics::{FloatGauge, register};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
};
use sqlx::PgPool;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    channel: String,
    outcome: &'static str,
}

struct Metrics {
    deliveries: Family<DeliveryLabels, Counter>,
    queued: Gauge,
    retrying: Gauge,
    oldest: FloatGauge,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let m = Metrics {
        deliveries: Family::default(),
        queued: Gauge::default(),
        retrying: Gauge::default(),
        oldest: FloatGauge::default(),
    };
    register(|r| {
        r.register(
            "notification_deliveries",
            "Delivery attempts recorded, by channel and outcome (sent, skipped, retry, failed)",
            m.deliveries.clone(),
        );
        r.register(
            "notification_deliveries_queued",
            "Deliveries not yet sent, skipped or failed",
            m.queued.clone(),
        );
        r.register(
            "notification_deliveries_retrying",
            "Queued deliveries that failed at least once",
            m.retrying.clone(),
        );
        r.register(
            "notification_oldest_queued_age_seconds",
            "Age of the oldest queued delivery (0 when none)",
            m.oldest.clone(),
        );
    });
    m
});

/// Counts one recorded delivery outcome.
pub(crate) fn delivery(channel: &str, outcome: &'static str) {
    METRICS
        .deliveries
        .get_or_create(&DeliveryLabels {
            channel: channel.to_owned(),
            outcome,
        })
        .inc();
}

const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Samples the queued backlog at most every few seconds.
#[derive(Debug, Default)]
pub(crate) struct BacklogSampler {
    last: Option<Instant>,
}

impl BacklogSampler {
    pub(crate) async fn sample(&mut self, pool: &PgPool) {
        if self.last.is_some_and(|at| at.elapsed() < SAMPLE_EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        let row: Result<(i64, i64, Option<f64>), _> = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE attempts > 0),
                    extract(epoch FROM now() - min(create_time))::float8
             FROM deliveries WHERE state = 'queued'",
        )
        .fetch_one(pool)
        .await;
        match row {
            Ok((queued, retrying, oldest)) => {
                METRICS.queued.set(queued);
                METRICS.retrying.set(retrying);
                METRICS.oldest.set(oldest.unwrap_or(0.0).max(0.0));
            }
            Err(error) => tracing::debug!(%error, "sampling the delivery backlog failed"),
        }
    }
}
