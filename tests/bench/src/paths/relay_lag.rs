//! Commit → event on the broker, under a write row's own load.
//!
//! Every outbox row the service wrote during the row carries `created_at`
//! (its transaction's start) and, once the relay had the broker's confirm,
//! `sent_at` (the marking statement's start). Their difference, read from
//! the database after the relay caught up, is an upper bound on commit →
//! confirmed on the broker: it also holds the writing transaction itself.
//! Measured on the rows, not on a sample, so a p99 has every event behind it.
//! With the stack at hand, the relay's own histogram (scraped before and
//! after) says how much of that was the broker's confirm.

use std::time::{Duration, Instant};

use helpdesk_e2e::Process;
use serde_json::json;
use sqlx::PgPool;

/// The outbox's last id before a row started, and the relay's confirm
/// histogram's sum and count then (when the stack is at hand).
pub struct Mark(i64, Option<(f64, f64)>);

/// How long the row's events took to reach the broker.
pub struct Lag {
    pub events: i64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    /// The broker's confirm, averaged over the row's events (ms).
    pub confirm_mean: Option<f64>,
}

impl Mark {
    pub async fn now(db: &PgPool, ticket: Option<&Process>) -> sqlx::Result<Self> {
        let id = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM outbox")
            .fetch_one(db)
            .await?;
        Ok(Self(id, confirms(ticket).await))
    }

    /// The lag of every event written since the mark, once all are sent
    /// (waiting up to two minutes for the relay).
    pub async fn lag(&self, db: &PgPool, ticket: Option<&Process>) -> anyhow::Result<Lag> {
        let started = Instant::now();
        loop {
            let unsent: i64 =
                sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL AND id > $1")
                    .bind(self.0)
                    .fetch_one(db)
                    .await?;
            if unsent == 0 {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(120),
                "{unsent} events still unsent after two minutes"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.lag_until(&Self::now(db, ticket).await?, db).await
    }

    /// The lag of the events written between this mark and `end`, all sent.
    pub async fn lag_until(&self, end: &Mark, db: &PgPool) -> anyhow::Result<Lag> {
        let (events, p50, p99, max): (i64, Option<f64>, Option<f64>, Option<f64>) = sqlx::query_as(
            "WITH lag AS (
                   SELECT extract(epoch FROM sent_at - created_at)::float8 * 1000 AS ms
                   FROM outbox WHERE id > $1 AND id <= $2
                 )
                 SELECT count(*),
                        percentile_cont(0.5) WITHIN GROUP (ORDER BY ms),
                        percentile_cont(0.99) WITHIN GROUP (ORDER BY ms),
                        max(ms)
                 FROM lag",
        )
        .bind(self.0)
        .bind(end.0)
        .fetch_one(db)
        .await?;
        let confirm_mean = match (self.1, end.1) {
            (Some((sum0, n0)), Some((sum1, n1))) if n1 > n0 => {
                Some(1000.0 * (sum1 - sum0) / (n1 - n0))
            }
            _ => None,
        };
        Ok(Lag {
            events,
            p50: p50.unwrap_or_default(),
            p99: p99.unwrap_or_default(),
            max: max.unwrap_or_default(),
            confirm_mean,
        })
    }
}

/// The relay's `outbox_publish_confirm_seconds` sum and count, as the
/// ticket service serves them now.
async fn confirms(ticket: Option<&Process>) -> Option<(f64, f64)> {
    let text = ticket?.metrics().await;
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    };
    Some((
        value("outbox_publish_confirm_seconds_sum")?,
        value("outbox_publish_confirm_seconds_count")?,
    ))
}

impl Lag {
    pub fn print(&self) {
        println!(
            "{:<32} commit → broker (transaction start → confirmed), {}",
            "",
            self.summary()
        );
    }

    /// The events, p50, p99, max and the broker's mean confirm, on a line.
    pub fn summary(&self) -> String {
        format!(
            "{} events: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms{}",
            self.events,
            self.p50,
            self.p99,
            self.max,
            self.confirm_mean.map_or(String::new(), |c| format!(
                "; the broker's confirm: mean {c:.2} ms"
            ))
        )
    }

    pub fn json(&self) -> serde_json::Value {
        json!({
            "events": self.events,
            "p50_ms": self.p50,
            "p99_ms": self.p99,
            "max_ms": self.max,
            "broker_confirm_mean_ms": self.confirm_mean,
        })
    }
}
