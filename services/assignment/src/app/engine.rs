//! The assignment decisions, in one place: who gets a ticket, the waiting
//! queue, manual assignment, escalation and the steps of redistribution and
//! rebalancing.
//!
//! **Decisions under one lock.** Every decision runs in a transaction that
//! first takes one PostgreSQL advisory lock ([`DECISION_LOCK`]), so all
//! decisions of all replicas happen one at a time: each choice sees every
//! earlier one, which is what makes it exactly least-loaded and keeps
//! everyone within capacity. The lock is waited for at most
//! [`LOCK_TIMEOUT`] (then UNAVAILABLE, or a retried event).
//!
//! **Decide first, tell the ticket service after.** A decision commits the
//! projection it leads to (holder, workloads) together with a pending
//! *move* whose request id is fixed by the decision; no call is made under
//! the lock. The mover ([`super::mover`]) then tells the ticket service,
//! many moves at once, retrying with the same request id until it answers,
//! so a retry after a timeout is the same move, and a handler dropped by a
//! client deadline or a restarted process loses nothing. Several decisions
//! can share one transaction ([`Engine::drain`] serves up to
//! [`DRAIN_BATCH`] waiting tickets per transaction): choices are made
//! against candidates loaded once and updated as the batch goes, exactly
//! as one-by-one decisions would make them.
//!
//! **Workload stays true.** `agents.open_tickets` moves with every statement
//! that changes the assignments it counts, in the same transaction (a
//! trigger: migration `workload_by_trigger`); reconciliation checks both
//! against the ticket service, the source of truth.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use helpdesk_kit::{
    clock::SharedClock,
    error::{ApiError, ApiResult},
    pg,
    telemetry::{self, Causes},
};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use tokio::sync::Notify;
use tracing::Instrument;
use uuid::Uuid;

use crate::{
    clients::tickets::TicketClient,
    domain::{Assignment, TicketRef, Tier, choose, rebalance, request_id},
    storage::{
        agents, assignments, escalations,
        moves::{self, NewMove},
        operations,
    },
};

/// The advisory lock every decision holds ("assign" in ASCII).
pub const DECISION_LOCK: i64 = 0x6173_7369_676e;

/// How long a transaction waits for [`DECISION_LOCK`] (`lock_timeout`):
/// well above one decision, far below forever.
pub const LOCK_TIMEOUT: &str = "5s";

/// Most waiting tickets one transaction decides: enough to keep up with
/// intake, few enough to hold the lock for milliseconds.
pub const DRAIN_BATCH: i64 = 64;

/// Configurable behaviour.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Give an agent's open tickets to others when they go off shift or
    /// leave (`REDISTRIBUTE_ON_UNAVAILABLE`); otherwise they keep them.
    pub redistribute_on_unavailable: bool,
    /// The tier escalated tickets go to (`ESCALATION_TIER`).
    pub escalation_tier: Tier,
}

/// Whom a manual assignment goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Agent(Uuid),
    /// The least-loaded available agent other than the holder.
    Auto,
}

/// What an escalation decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escalation {
    /// To this agent of the escalation tier.
    MovedTo(Uuid),
    /// Already held by the escalation tier.
    AlreadyThere,
    /// Nobody of the tier was free; recorded, and the holder keeps it.
    NoneFree,
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    tickets: TicketClient,
    clock: SharedClock,
    policy: Policy,
    drain_wanted: Notify,
    moves_wanted: Notify,
    operations_wanted: Notify,
    /// Per ticket, the span whose work the next step continues: the event
    /// that queued it, then the decision its move carries out.
    causes: Causes<Uuid>,
}

/// Tickets whose cause is remembered at most (see [`Causes`]).
const CAUSES: usize = 10_000;

impl Engine {
    pub fn new(pool: PgPool, tickets: TicketClient, clock: SharedClock, policy: Policy) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                tickets,
                clock,
                policy,
                drain_wanted: Notify::new(),
                moves_wanted: Notify::new(),
                operations_wanted: Notify::new(),
                causes: Causes::new(CAUSES),
            }),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    pub fn tickets(&self) -> &TicketClient {
        &self.inner.tickets
    }

    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    pub fn policy(&self) -> Policy {
        self.inner.policy
    }

    /// The span that led to the pending work on `ticket` (tracing only).
    pub fn causes(&self) -> &Causes<Uuid> {
        &self.inner.causes
    }

    /// Asks this replica's drainer to serve the queue. Called inside a
    /// transaction holding the decision lock, the drainer's pass starts
    /// only once that transaction ended. Never lost: a wake-up during a
    /// pass makes another pass.
    pub fn wake_drainer(&self) {
        self.inner.drain_wanted.notify_one();
    }

    /// Completes when [`Self::wake_drainer`] was called.
    pub async fn drain_wanted(&self) {
        self.inner.drain_wanted.notified().await;
    }

    /// Asks this replica's mover to tell the ticket service of new moves
    /// (call it after the decision committed).
    pub fn wake_mover(&self) {
        self.inner.moves_wanted.notify_one();
    }

    /// Completes when [`Self::wake_mover`] was called.
    pub async fn mover_wanted(&self) {
        self.inner.moves_wanted.notified().await;
    }

    /// Asks this replica's operations worker to look for new operations.
    pub fn wake_operations(&self) {
        self.inner.operations_wanted.notify_one();
    }

    /// Completes when [`Self::wake_operations`] was called.
    pub async fn operations_wanted(&self) {
        self.inner.operations_wanted.notified().await;
    }

    /// A transaction holding the decision lock exclusively (UNAVAILABLE
    /// when it could not be had within [`LOCK_TIMEOUT`]).
    ///
    /// Its commit does not wait for the disk (`synchronous_commit = off`),
    /// so the lock is held for the work, not for a flush: every decision
    /// waits for the one before, and a flush per decision capped them at a
    /// few hundred a second. Nothing is sent on a decision before it is on
    /// disk: the mover's claim, which precedes every call, commits
    /// synchronously, and that flushes all the log before it. A database
    /// crash can lose the last fraction of a second of decisions not yet
    /// sent (they are made again) or of answers recorded (the moves are
    /// resent with the same request ids and replayed).
    pub async fn begin(&self) -> ApiResult<Transaction<'static, Postgres>> {
        self.begin_holding(Hold::Exclusive).await
    }

    /// [`Self::begin`], holding the lock as `hold` says.
    pub async fn begin_holding(&self, hold: Hold) -> ApiResult<Transaction<'static, Postgres>> {
        let mut tx = self.inner.pool.begin().await?;
        lock_unflushed(&mut tx, hold).await.map_err(busy)?;
        Ok(tx)
    }

    /// Records decisions in the caller's locked transaction: the holders
    /// they lead to, their moves, the workloads. Returns the moves' ids.
    /// Wake the mover once the transaction committed.
    pub async fn decide(
        &self,
        conn: &mut PgConnection,
        decided: &[NewMove],
    ) -> sqlx::Result<Vec<i64>> {
        let now = self.inner.clock.now();
        // The mover's call continues the decision's trace.
        for m in decided {
            self.inner.causes.remember(m.ticket_id);
        }
        moves::decide(conn, decided, now).await
    }

    /// Decides for up to [`DRAIN_BATCH`] waiting tickets, most urgent and
    /// oldest first, in one transaction. Returns how many were decided.
    async fn serve_batch(&self) -> ApiResult<usize> {
        let mut tx = self.begin().await?;
        let waiting = assignments::next_waiting(&mut tx, DRAIN_BATCH).await?;
        if waiting.is_empty() {
            return Ok(0);
        }
        let mut candidates = agents::candidates(&mut tx).await?;
        let now = self.inner.clock.now();
        let mut decided = Vec::with_capacity(waiting.len());
        for a in &waiting {
            // Nobody free for the head (the choice falls back to anyone):
            // nobody is free for the rest either.
            let Some(agent) = choose(&mut candidates, &a.category_id, None, None) else {
                break;
            };
            let to = agent.take(now);
            decided.push(NewMove {
                ticket_id: a.ticket_id,
                from: None,
                to: Some(to),
                request_id: request_id(Uuid::now_v7(), a.ticket_id, Some(to)),
                operation: None,
            });
        }
        if decided.is_empty() {
            return Ok(0);
        }
        // The decision continues the trace of each event that queued a
        // ticket (a child of it, or linked to each when a batch serves many).
        let span = tracing::info_span!(
            "assignment.decide",
            tickets = decided.len(),
            human_id = tracing::field::Empty,
        );
        if let [one] = &waiting[..decided.len()] {
            span.record("human_id", one.human_id.as_str());
        }
        telemetry::follow(
            &span,
            decided
                .iter()
                .filter_map(|m| self.inner.causes.get(&m.ticket_id)),
        );
        async {
            self.decide(&mut tx, &decided).await?;
            tx.commit().await?;
            tracing::info!(tickets = decided.len(), "waiting tickets given an agent");
            Ok::<_, sqlx::Error>(())
        }
        .instrument(span)
        .await?;
        self.wake_mover();
        Ok(decided.len())
    }

    /// Serves the waiting queue until it is empty or nobody is free, in
    /// batches. A failure (the database away, the lock busy) stops the
    /// pass, logged; the rest waits for the drainer's next pass. Returns
    /// how many tickets were given an agent.
    pub async fn drain(&self) -> usize {
        let mut decided = 0;
        loop {
            match self.serve_batch().await {
                Ok(0) => return decided,
                Ok(n) => decided += n,
                Err(error) => {
                    tracing::warn!(%error, decided, "serving the waiting queue stopped; the rest waits for the next pass");
                    return decided;
                }
            }
        }
    }

    /// A manual assignment: decides the move and returns its id, or `None`
    /// when there is nothing to do (the agent holds it already, or the
    /// request was seen before). `request` makes a retry of the same
    /// request recognised as such.
    pub async fn assign(
        &self,
        ticket: &TicketRef,
        target: Target,
        request: Option<Uuid>,
    ) -> ApiResult<(Assignment, Option<i64>)> {
        let mut tx = self.begin().await?;
        let a = assignments::find(&mut *tx, ticket)
            .await?
            .ok_or_else(|| ApiError::not_found("ticket"))?;
        let replay = request.map(|r| request_id(r, a.ticket_id, None));
        if let Some(rid) = replay
            && moves::exists(&mut *tx, rid).await?
        {
            return Ok((a, None));
        }
        if !a.open {
            return Err(ApiError::precondition("ticket is resolved or closed"));
        }
        if moves::pending_for(&mut *tx, a.ticket_id).await? {
            return Err(ApiError::Unavailable(
                "the ticket is being moved; retry shortly".into(),
            ));
        }
        let to = match target {
            Target::Agent(id) => {
                let agent = agents::get(&mut *tx, id)
                    .await?
                    .ok_or_else(|| ApiError::not_found(format!("agent {id}")))?;
                if !agent.active {
                    return Err(ApiError::precondition(format!(
                        "agent {id} is not active staff"
                    )));
                }
                if a.agent_id == Some(id) {
                    return Ok((a, None));
                }
                id
            }
            Target::Auto => {
                let mut candidates = agents::candidates(&mut tx).await?;
                choose(&mut candidates, &a.category_id, None, a.agent_id)
                    .ok_or_else(|| ApiError::precondition("no agent available"))?
                    .id
            }
        };
        let decided = NewMove {
            ticket_id: a.ticket_id,
            from: a.agent_id,
            to: Some(to),
            request_id: replay.unwrap_or_else(|| request_id(Uuid::now_v7(), a.ticket_id, Some(to))),
            operation: None,
        };
        let ids = self.decide(&mut tx, &[decided]).await?;
        tx.commit().await?;
        // The mover is not woken: the caller sends this move itself and
        // answers with the outcome; dropped, it leaves it to the mover's poll.
        Ok((a, ids.first().copied()))
    }

    /// Applies what an event says about a known ticket (`holder`, whether
    /// it counts), unless an event at least as new was applied already.
    /// Returns whether it was applied. A reopened ticket goes back to
    /// whoever had it, even over capacity.
    pub async fn apply_event(
        &self,
        conn: &mut PgConnection,
        a: &Assignment,
        holder: Option<Uuid>,
        open: bool,
        at: DateTime<Utc>,
        event: Uuid,
    ) -> sqlx::Result<bool> {
        let now = self.inner.clock.now();
        if let Some(h) = holder {
            agents::ensure_known(conn, &[h], now).await?;
        }
        assignments::apply_event(conn, a.ticket_id, holder, open, at, event, now).await
    }

    /// Stores a ticket seen for the first time (from an event's snapshot,
    /// as of that event).
    pub async fn track(
        &self,
        conn: &mut PgConnection,
        a: &Assignment,
        at: DateTime<Utc>,
        event: Uuid,
    ) -> sqlx::Result<bool> {
        let now = self.inner.clock.now();
        if let Some(h) = a.agent_id {
            agents::ensure_known(conn, &[h], now).await?;
        }
        let inserted = assignments::insert(conn, a, at, event, now).await?;
        if inserted && a.agent_id.is_none() {
            // Waiting: its decision continues this (the event's) trace.
            self.inner.causes.remember(a.ticket_id);
        }
        Ok(inserted)
    }

    /// Decides to move `a` to the least-loaded free agent of the
    /// escalation tier (never back to its holder), and records the
    /// escalation; in the event's locked transaction, with a request id
    /// derived from the event (`seed`). UNAVAILABLE (the event is retried)
    /// while another move of the ticket is pending.
    pub async fn escalate(
        &self,
        conn: &mut PgConnection,
        a: &Assignment,
        reason: &str,
        seed: Uuid,
    ) -> ApiResult<Escalation> {
        let tier = self.inner.policy.escalation_tier;
        let now = self.inner.clock.now();
        if let Some(holder) = a.agent_id
            && agents::get(&mut *conn, holder)
                .await?
                .is_some_and(|h| h.tier == tier)
        {
            tracing::info!(ticket = %a.human_id, %holder, %tier, "escalated ticket already held at the escalation tier");
            return Ok(Escalation::AlreadyThere);
        }
        if moves::pending_for(&mut *conn, a.ticket_id).await? {
            return Err(ApiError::Unavailable(
                "the ticket is being moved; the escalation is retried".into(),
            ));
        }
        let mut candidates = agents::candidates(conn).await?;
        let Some(to) =
            choose(&mut candidates, &a.category_id, Some(tier), a.agent_id).map(|c| c.id)
        else {
            escalations::record(conn, a.ticket_id, a.agent_id, None, reason, now).await?;
            tracing::warn!(ticket = %a.human_id, %tier, "escalation: no agent of the tier is free; the holder keeps the ticket");
            return Ok(Escalation::NoneFree);
        };
        let decided = NewMove {
            ticket_id: a.ticket_id,
            from: a.agent_id,
            to: Some(to),
            request_id: request_id(seed, a.ticket_id, Some(to)),
            operation: None,
        };
        self.decide(conn, &[decided]).await?;
        escalations::record(conn, a.ticket_id, a.agent_id, Some(to), reason, now).await?;
        tracing::info!(ticket = %a.human_id, from = ?a.agent_id, %to, "ticket escalated");
        Ok(Escalation::MovedTo(to))
    }

    /// One step of redistributing `from`'s open tickets (operation `op`):
    /// the latest one goes to whoever is free, or, when nobody is, is left
    /// unassigned to wait. Returns whether a step was made; `false` (and
    /// the operation finished) once nothing is left or `from` is back on
    /// shift.
    pub async fn redistribute_step(&self, op: Uuid, from: Uuid) -> ApiResult<bool> {
        let mut tx = self.begin().await?;
        let now = self.inner.clock.now();
        let off = agents::get(&mut *tx, from)
            .await?
            .is_some_and(|h| !(h.active && h.available));
        let next = if off {
            assignments::latest_of(&mut tx, from).await?
        } else {
            None
        };
        let Some(a) = next else {
            operations::finish(&mut tx, op, now).await?;
            tx.commit().await?;
            return Ok(false);
        };
        let mut candidates = agents::candidates(&mut tx).await?;
        let to = choose(&mut candidates, &a.category_id, None, Some(from)).map(|c| c.id);
        let decided = NewMove {
            ticket_id: a.ticket_id,
            from: Some(from),
            to,
            request_id: request_id(Uuid::now_v7(), a.ticket_id, to),
            operation: Some(op),
        };
        self.decide(&mut tx, &[decided]).await?;
        operations::stepped(&mut tx, op, 1, now).await?;
        tx.commit().await?;
        self.wake_mover();
        Ok(true)
    }

    /// One step of rebalancing (operation `op`): the most recently assigned
    /// open ticket of the most loaded agent on shift goes to the least
    /// loaded, while they differ by more than one. Returns whether a step
    /// was made; `false` (and the operation finished) once even.
    pub async fn rebalance_step(&self, op: Uuid) -> ApiResult<bool> {
        let mut tx = self.begin().await?;
        let now = self.inner.clock.now();
        let loads = agents::loads(&mut tx).await?;
        let next = match rebalance::next_move(&loads) {
            Some((from, to)) => assignments::latest_of(&mut tx, from)
                .await?
                .map(|a| (a, from, to)),
            None => None,
        };
        let Some((a, from, to)) = next else {
            // Even, or the rest of the busiest agent's tickets are being
            // moved already: done (a later Rebalance continues).
            operations::finish(&mut tx, op, now).await?;
            tx.commit().await?;
            return Ok(false);
        };
        let decided = NewMove {
            ticket_id: a.ticket_id,
            from: Some(from),
            to: Some(to),
            request_id: request_id(Uuid::now_v7(), a.ticket_id, Some(to)),
            operation: Some(op),
        };
        self.decide(&mut tx, &[decided]).await?;
        operations::stepped(&mut tx, op, 1, now).await?;
        tx.commit().await?;
        self.wake_mover();
        Ok(true)
    }
}

/// How a transaction holds [`DECISION_LOCK`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    /// Decisions, and changes of what they read made from outside (events,
    /// the roster): one at a time, after every transaction in progress.
    Exclusive,
    /// Writes that decide nothing, each in one statement (new unheld
    /// tickets joining the queue, answers confirming the decided moves),
    /// so their workload changes lock agents in one order: side by side
    /// with each other, never during a decision. A decision waits for
    /// every one in progress, so it sees their rows and a reconciliation
    /// mark still covers them.
    Shared,
}

/// Takes the decision lock for the rest of the transaction, waiting at
/// most [`LOCK_TIMEOUT`]; the commit flushes as configured.
pub async fn lock(conn: &mut PgConnection, hold: Hold) -> sqlx::Result<()> {
    take(conn, hold, None).await
}

/// [`lock`], and lets this transaction's commit return before its log
/// reaches the disk (`synchronous_commit = off`, this transaction only):
/// the lock is released sooner; a database crash may lose the transaction
/// (see [`Engine::begin`]).
pub async fn lock_unflushed(conn: &mut PgConnection, hold: Hold) -> sqlx::Result<()> {
    take(conn, hold, Some("off")).await
}

/// The settings and the lock in one statement (its expressions run in
/// order, so the timeout bounds the wait): every locked transaction starts
/// with it, and under load each round trip is a wait for a core.
async fn take(
    conn: &mut PgConnection,
    hold: Hold,
    synchronous_commit: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "SELECT set_config('lock_timeout', $1, true) AS lock_timeout,
                set_config('synchronous_commit',
                           COALESCE($2, current_setting('synchronous_commit')), true) AS commit,
                CASE WHEN $3 THEN pg_advisory_xact_lock_shared($4)
                     ELSE pg_advisory_xact_lock($4) END AS locked",
        LOCK_TIMEOUT,
        synchronous_commit,
        hold == Hold::Shared,
        DECISION_LOCK,
    )
    .fetch_one(conn)
    .await?;
    Ok(())
}

/// Undoes [`lock_unflushed`]'s commit setting for the rest of the transaction.
pub async fn commit_with_flush(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query_scalar!("SELECT set_config('synchronous_commit', 'on', true)")
        .fetch_one(conn)
        .await?;
    Ok(())
}

/// A lock wait that timed out is "busy, retry", not a bug.
fn busy(err: sqlx::Error) -> ApiError {
    match &err {
        _ if pg::is(&err, pg::LOCK_NOT_AVAILABLE) => {
            ApiError::Unavailable("assignment decisions are busy, retry later".into())
        }
        _ => err.into(),
    }
}
