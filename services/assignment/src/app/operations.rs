//! Long work as durable operations. An RPC (UpdateAgent taking an agent off
//! shift, Rebalance) or the roster sync records an intent and returns its
//! id at once; this worker carries it out one decision per transaction
//! (`Engine::redistribute_step`, `Engine::rebalance_step`), and the mover
//! tells the ticket service. Callers poll `GetAssignmentOperation`.
//!
//! Each replica runs a worker; an operation is leased by the one working on
//! it (renewed every step), released when it stops, and taken over by
//! another once a crashed replica's lease lapses: a restart resumes it.

use std::time::Duration;

use helpdesk_kit::error::ApiResult;
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::engine::Engine;
use crate::{domain::OperationKind, storage::operations};

/// How often unfinished operations are looked for when nothing woke the
/// worker (another replica's lease may have lapsed).
const POLL: Duration = Duration::from_secs(1);

/// Most steps one operation makes (a guard: rebalancing converges long
/// before).
const MAX_STEPS: u32 = 10_000;

/// Records the operation in the caller's locked transaction, unless the
/// same one is unfinished (then that one's id): repeating a request joins
/// the operation it started. Wake the worker once committed.
pub async fn start(
    engine: &Engine,
    conn: &mut PgConnection,
    kind: OperationKind,
) -> sqlx::Result<Uuid> {
    if let Some(id) = operations::running(conn, kind).await? {
        return Ok(id);
    }
    let id = Uuid::now_v7();
    operations::create(conn, id, kind, engine.clock().now()).await?;
    Ok(id)
}

/// Carries out operations whenever woken and every [`POLL`], until
/// `shutdown` (the operation in hand is released after its current step).
pub async fn run(engine: Engine, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = engine.operations_wanted() => {}
            _ = ticks.tick() => {}
        }
        if let Err(error) = carry_out_all(&engine, &shutdown).await {
            tracing::warn!(%error, "operations paused; retrying shortly");
        }
    }
}

/// Takes and carries out unfinished operations until none is free.
pub async fn carry_out_all(engine: &Engine, shutdown: &CancellationToken) -> ApiResult<()> {
    loop {
        let claimed = {
            let mut conn = engine.pool().acquire().await?;
            operations::claim(&mut conn).await?
        };
        let Some((id, kind)) = claimed else {
            return Ok(());
        };
        let result = carry_out(engine, id, kind, shutdown).await;
        if result.is_err() || shutdown.is_cancelled() {
            let mut conn = engine.pool().acquire().await?;
            operations::release(&mut conn, id).await?;
        }
        result?;
        if shutdown.is_cancelled() {
            return Ok(());
        }
    }
}

async fn carry_out(
    engine: &Engine,
    id: Uuid,
    kind: OperationKind,
    shutdown: &CancellationToken,
) -> ApiResult<()> {
    for _ in 0..MAX_STEPS {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        let more = match kind {
            OperationKind::Redistribute(agent) => engine.redistribute_step(id, agent).await?,
            OperationKind::Rebalance => engine.rebalance_step(id).await?,
        };
        if !more {
            tracing::info!(operation = %id, ?kind, "operation decided");
            return Ok(());
        }
    }
    let mut tx = engine.begin().await?;
    operations::finish(&mut tx, id, engine.clock().now()).await?;
    tx.commit().await?;
    tracing::warn!(operation = %id, ?kind, "operation stopped after {MAX_STEPS} steps");
    Ok(())
}
