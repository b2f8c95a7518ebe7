//! The assignment service's Prometheus series ([`helpdesk_kit::metrics`]):
//!
//! - `assignment_waiting_tickets`: open tickets without an agent;
//! - `assignment_oldest_waiting_age_seconds`: age of the oldest of them
//!   (from the ticket's creation; 0 when none);
//! - `assignment_drained_tickets_total`: waiting tickets given an agent by
//!   the drainer of this replica.
//!
//! The gauges are sampled by the drainer every few seconds.

use std::{
    sync::LazyLock,
    time::{Duration, Instant},
};

use helpdesk_kit::metrics::{FloatGauge, register};
use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
use sqlx::PgPool;

struct Metrics {
    waiting: Gauge,
    oldest: FloatGauge,
    drained: Counter,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let m = Metrics {
        waiting: Gauge::default(),
        oldest: FloatGauge::default(),
        drained: Counter::default(),
    };
    register(|r| {
        r.register(
            "assignment_waiting_tickets",
            "Open tickets waiting for an agent",
            m.waiting.clone(),
        );
        r.register(
            "assignment_oldest_waiting_age_seconds",
            "Age of the oldest waiting ticket (0 when none)",
            m.oldest.clone(),
        );
        r.register(
            "assignment_drained_tickets",
            "Waiting tickets given an agent by this replica's drainer",
            m.drained.clone(),
        );
    });
    m
});

/// Counts tickets the drainer assigned.
pub(crate) fn drained(assigned: usize) {
    METRICS
        .drained
        .inc_by(u64::try_from(assigned).unwrap_or(u64::MAX));
}

const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Samples the waiting queue at most every few seconds.
#[derive(Debug, Default)]
pub(crate) struct WaitingSampler {
    last: Option<Instant>,
}

impl WaitingSampler {
    pub(crate) async fn sample(&mut self, pool: &PgPool) {
        if self.last.is_some_and(|at| at.elapsed() < SAMPLE_EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        let row: Result<(i64, Option<f64>), _> = sqlx::query_as(
            "SELECT count(*), extract(epoch FROM now() - min(ticket_created_at))::float8
             FROM assignments WHERE agent_id IS NULL AND open",
        )
        .fetch_one(pool)
        .await;
        match row {
            Ok((waiting, oldest)) => {
                METRICS.waiting.set(waiting);
                METRICS.oldest.set(oldest.unwrap_or(0.0).max(0.0));
            }
            Err(error) => tracing::debug!(%error, "sampling the waiting queue failed"),
        }
    }
}
