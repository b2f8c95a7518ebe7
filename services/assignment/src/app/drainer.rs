//! The drainer: each replica serves the waiting queue in a task of its own.
//! Event handlers only apply their event's own effect and wake it
//! ([`Engine::wake_drainer`]); it serves the queue in its own transactions
//! after the handler committed (it waits for the handler's lock). It also
//! runs every `DRAIN_SECS`, so waiting tickets are served once the ticket
//! service is back after an outage.

use std::time::Duration;

/// How long a woken drainer lets more wake-ups gather before its pass: one
/// pass then decides for a burst of new tickets under one lock, instead of
/// taking the lock once per ticket while new tickets queue behind it.
const GATHER: Duration = Duration::from_millis(10);

use tokio_util::sync::CancellationToken;

use super::engine::Engine;

/// Serves the waiting queue whenever woken and every `every` (a safety
/// net, and the retry after a ticket-service outage), until `shutdown`.
pub async fn run(engine: Engine, every: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut waiting = super::metrics::WaitingSampler::default();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = engine.drain_wanted() => tokio::time::sleep(GATHER).await,
            _ = ticks.tick() => {}
        }
        let assigned = engine.drain().await;
        if assigned > 0 {
            super::metrics::drained(assigned);
            tracing::debug!(assigned, "waiting tickets served");
        }
        waiting.sample(engine.pool()).await;
    }
}
