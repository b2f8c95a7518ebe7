//! The assignment decisions, in one place: who gets a ticket, the waiting
//! queue, redistribution, escalation and rebalancing.
//!
//! **One decision per transaction.** A decision (serve the head of the
//! queue, move one ticket) runs in its own transaction that first takes one
//! PostgreSQL advisory lock ([`DECISION_LOCK`]), so all decisions of all
//! replicas happen one at a time: each choice sees every earlier one, which
//! is what makes it exactly least-loaded and keeps everyone within capacity.
//! The choice, the ticket service's AssignTicket call and our rows commit
//! together: lock, pick, call, update rows and recount, commit. Never two
//! calls in one transaction: if a later call failed, the rollback would
//! forget earlier ones the ticket service had applied, and a retry could
//! choose differently (two `ticket.assigned`, wrong workloads). Loops
//! (drain, redistribute, rebalance) are loops of such transactions; a failed
//! call stops the loop and the rest waits for later (the drainer's next
//! pass, the next roster sync, a retried request).
//!
//! The lock is waited for at most [`LOCK_TIMEOUT`] (then UNAVAILABLE, or a
//! retried event), so waiters cannot pile up behind a stuck decision.
//! Decisions are a few milliseconds each, so one lock is far from a
//! bottleneck at help-desk volumes, and it is much simpler to trust than
//! row locks spread over agents and tickets.
//!
//! **The drainer.** Event handlers only apply their event's own effect and
//! wake this replica's drainer ([`run_drainer`]), which serves the queue in
//! its own transactions after the handler committed (it waits for the
//! handler's lock). It also runs every `DRAIN_SECS`, so waiting tickets are
//! served once the ticket service is back after an outage.
//!
//! **Workload stays true.** `agents.open_tickets` is refreshed from the
//! assignments it counts in the same transaction as every change
//! (`storage::agents::recount`); reconciliation checks both against the
//! ticket service, the source of truth.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use helpdesk_kit::{
    clock::SharedClock,
    error::{ApiError, ApiResult},
    pg,
};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    domain::{Assignment, Tier, rebalance, request_id},
    storage::{agents, assignments, escalations},
    tickets::{Outcome, TicketClient},
};

/// The advisory lock every decision holds ("assign" in ASCII).
pub const DECISION_LOCK: i64 = 0x6173_7369_676e;

/// How long a transaction waits for [`DECISION_LOCK`] (`lock_timeout`):
/// well above one decision (at most one call's deadline), far below forever.
pub const LOCK_TIMEOUT: &str = "5s";

/// Most moves one Rebalance makes (a guard; it converges long before).
const MAX_REBALANCE_MOVES: i32 = 10_000;

/// Configurable behaviour.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Give an agent's open tickets to others when they go off shift or
    /// leave (`REDISTRIBUTE_ON_UNAVAILABLE`); otherwise they keep them.
    pub redistribute_on_unavailable: bool,
    /// The tier escalated tickets go to (`ESCALATION_TIER`).
    pub escalation_tier: Tier,
}

/// How giving a ticket to an agent turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Given {
    Assigned,
    /// The ticket turned out closed; it no longer counts anywhere.
    TicketClosed,
    /// The ticket service does not know the ticket, or refused the request
    /// for the ticket's sake; dropped from the queue.
    TicketMissing,
    /// The ticket service refused the agent; they are deactivated here
    /// until the roster says otherwise.
    AgentRejected,
}

/// What an escalation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escalation {
    /// Moved to this agent of the escalation tier.
    MovedTo(Uuid),
    /// Already held by the escalation tier.
    AlreadyThere,
    /// Nobody of the tier was free; recorded, and the holder keeps it.
    NoneFree,
    /// The ticket is closed or unknown to the ticket service.
    Gone,
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
    /// Wakes this replica's drainer.
    drain_wanted: Notify,
}

impl Engine {
    pub fn new(pool: PgPool, tickets: TicketClient, clock: SharedClock, policy: Policy) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                tickets,
                clock,
                policy,
                drain_wanted: Notify::new(),
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

    /// Asks this replica's drainer to serve the queue. Called inside a
    /// transaction holding the decision lock, the drainer's pass starts
    /// only once that transaction ended. Never lost: a wake-up during a
    /// pass makes another pass.
    pub fn wake_drainer(&self) {
        self.inner.drain_wanted.notify_one();
    }

    /// A transaction holding the decision lock (UNAVAILABLE when it could
    /// not be had within [`LOCK_TIMEOUT`]).
    pub async fn begin(&self) -> ApiResult<Transaction<'static, Postgres>> {
        let mut tx = self.inner.pool.begin().await?;
        lock(&mut tx).await.map_err(busy)?;
        Ok(tx)
    }

    /// Gives `a` to `agent`: the ticket service first (exactly one call),
    /// then our rows. The agent may end up over capacity (manual
    /// assignment); automatic callers only pass agents [`agents::pick`]
    /// chose.
    pub async fn give(
        &self,
        conn: &mut PgConnection,
        a: &Assignment,
        agent: Uuid,
        seed: Uuid,
    ) -> ApiResult<Given> {
        let now = self.inner.clock.now();
        let call = self
            .inner
            .tickets
            .assign(
                a.ticket_id,
                agent,
                request_id(seed, a.ticket_id, Some(agent)),
            )
            .await?;
        match call {
            Outcome::Done(answer) => {
                // The answer is the ticket's state as of the call: it also
                // says whether the ticket still counts (it may have been
                // resolved meanwhile, and that event is now older than us).
                assignments::record_answer(conn, a.ticket_id, agent, answer.open, answer.at, now)
                    .await?;
                agents::touch_assigned(conn, agent, now).await?;
                let mut touched = vec![agent];
                touched.extend(a.agent_id);
                agents::recount(conn, &touched).await?;
                tracing::info!(ticket = %a.human_id, %agent, previous = ?a.agent_id, "ticket assigned");
                Ok(Given::Assigned)
            }
            Outcome::Closed => {
                self.close(conn, a).await?;
                tracing::info!(ticket = %a.human_id, "ticket is closed, no longer assigned");
                Ok(Given::TicketClosed)
            }
            Outcome::Missing => {
                self.close(conn, a).await?;
                tracing::error!(ticket = %a.human_id, ticket_id = %a.ticket_id, "the ticket service does not know this ticket; dropped from the queue");
                Ok(Given::TicketMissing)
            }
            Outcome::Invalid(why) => {
                self.close(conn, a).await?;
                tracing::error!(ticket = %a.human_id, ticket_id = %a.ticket_id, reason = %why, "the ticket service refused to assign this ticket; dropped from the queue");
                Ok(Given::TicketMissing)
            }
            Outcome::AssigneeRejected(why) => {
                agents::deactivate(conn, agent, now).await?;
                tracing::warn!(%agent, reason = %why, "the ticket service refused this agent; deactivated until the roster confirms them");
                Ok(Given::AgentRejected)
            }
        }
    }

    /// Leaves `a` without an assignee in the ticket service and puts it in
    /// the waiting queue (one call).
    async fn release(&self, conn: &mut PgConnection, a: &Assignment, seed: Uuid) -> ApiResult<()> {
        let now = self.inner.clock.now();
        match self
            .inner
            .tickets
            .unassign(a.ticket_id, request_id(seed, a.ticket_id, None))
            .await?
        {
            Outcome::Done(answer) => {
                assignments::set_agent(conn, a.ticket_id, None, now).await?;
                if !answer.open {
                    assignments::set_open(conn, a.ticket_id, false, now).await?;
                }
                agents::recount(conn, &a.agent_id.into_iter().collect::<Vec<_>>()).await?;
                Ok(())
            }
            Outcome::Closed | Outcome::Missing => Ok(self.close(conn, a).await?),
            Outcome::Invalid(why) | Outcome::AssigneeRejected(why) => {
                Err(ApiError::internal(anyhow::anyhow!(
                    "the ticket service refused to unassign {}: {why}",
                    a.human_id
                )))
            }
        }
    }

    /// Marks `a` as no longer counting toward a workload.
    async fn close(&self, conn: &mut PgConnection, a: &Assignment) -> sqlx::Result<()> {
        assignments::set_open(conn, a.ticket_id, false, self.inner.clock.now()).await?;
        if let Some(holder) = a.agent_id {
            agents::recount(conn, &[holder]).await?;
        }
        Ok(())
    }

    /// One decision in its own transaction: the head of the waiting queue
    /// to whoever [`agents::pick`] chooses. `None` when the queue is empty
    /// or nobody is free.
    async fn serve_next(&self) -> ApiResult<Option<Given>> {
        let mut tx = self.begin().await?;
        let Some(next) = assignments::next_waiting(&mut tx).await? else {
            return Ok(None);
        };
        let Some(agent) = agents::pick(&mut tx, &next.category_id, None, None).await? else {
            return Ok(None);
        };
        let given = self.give(&mut tx, &next, agent, Uuid::now_v7()).await?;
        tx.commit().await?;
        Ok(Some(given))
    }

    /// Serves the waiting queue, most urgent and oldest first, one decision
    /// per transaction, until it is empty or nobody is free. A failure (the
    /// ticket service or the database away) stops the pass, logged; the
    /// rest waits for the drainer's next pass. Returns how many tickets
    /// were assigned.
    pub async fn drain(&self) -> usize {
        let mut assigned = 0;
        // Each round assigns a ticket, drops one from the queue or
        // deactivates an agent, so the loop ends.
        loop {
            match self.serve_next().await {
                Ok(Some(Given::Assigned)) => assigned += 1,
                Ok(Some(_)) => {}
                Ok(None) => return assigned,
                Err(error) => {
                    tracing::warn!(%error, assigned, "serving the waiting queue stopped; the rest waits for the next pass");
                    return assigned;
                }
            }
        }
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
        if !assignments::apply_event(conn, a.ticket_id, holder, open, at, event, now).await? {
            return Ok(false);
        }
        let touched: Vec<Uuid> = a.agent_id.into_iter().chain(holder).collect();
        agents::recount(conn, &touched).await?;
        Ok(true)
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
        if inserted && let Some(h) = a.agent_id {
            agents::recount(conn, &[h]).await?;
        }
        Ok(inserted)
    }

    /// Takes every open ticket away from `from` (off shift or gone), one
    /// decision per ticket: each goes straight to whoever is free (one
    /// AssignTicket), or, when nobody is, is unassigned in the ticket
    /// service and waits. Stops for an agent who is back on shift. A failed
    /// call stops the whole pass (logged); what is left stays with its
    /// holder until the next pass (roster sync, a repeated UpdateAgent).
    /// Returns how many tickets were taken away.
    pub async fn redistribute(&self, from: &[Uuid]) -> ApiResult<usize> {
        let mut moved = 0;
        for agent in from {
            loop {
                let mut tx = self.begin().await?;
                if agents::get(&mut *tx, *agent)
                    .await?
                    .is_none_or(|h| h.active && h.available)
                {
                    break;
                }
                let Some(a) = assignments::latest_of(&mut tx, *agent).await? else {
                    break;
                };
                let seed = Uuid::now_v7();
                // Whether the ticket left `agent` (a rejected pick did not:
                // that agent is deactivated and the next round picks again).
                let taken = match agents::pick(&mut tx, &a.category_id, None, Some(*agent)).await? {
                    Some(to) => self
                        .give(&mut tx, &a, to, seed)
                        .await
                        .map(|given| given != Given::AgentRejected),
                    None => self.release(&mut tx, &a, seed).await.map(|()| true),
                };
                match taken {
                    Ok(taken) => {
                        tx.commit().await?;
                        if taken {
                            moved += 1;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, %agent, moved, "redistribution stopped; the rest stays with its holder for now");
                        return Ok(moved);
                    }
                }
            }
        }
        if moved > 0 {
            tracing::info!(agents = ?from, tickets = moved, "open tickets redistributed");
        }
        Ok(moved)
    }

    /// Moves `a` to the least-loaded free agent of the escalation tier
    /// (never back to its holder), and records the escalation. One
    /// successful call at most (a rejected agent's call changed nothing),
    /// so it may run inside the event's transaction.
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
        loop {
            let Some(to) = agents::pick(conn, &a.category_id, Some(tier), a.agent_id).await? else {
                escalations::record(conn, a.ticket_id, a.agent_id, None, reason, now).await?;
                tracing::warn!(ticket = %a.human_id, %tier, "escalation: no agent of the tier is free; the holder keeps the ticket");
                return Ok(Escalation::NoneFree);
            };
            match self.give(conn, a, to, seed).await? {
                Given::Assigned => {
                    escalations::record(conn, a.ticket_id, a.agent_id, Some(to), reason, now)
                        .await?;
                    tracing::info!(ticket = %a.human_id, from = ?a.agent_id, %to, "ticket escalated");
                    return Ok(Escalation::MovedTo(to));
                }
                Given::AgentRejected => continue,
                Given::TicketClosed | Given::TicketMissing => return Ok(Escalation::Gone),
            }
        }
    }

    /// Moves open tickets from the most to the least loaded agents on shift
    /// until workloads differ by at most one, one move per transaction. A
    /// failed call stops (logged); a later Rebalance continues. Returns how
    /// many moved.
    pub async fn rebalance(&self) -> ApiResult<i32> {
        let mut moved = 0;
        for _ in 0..MAX_REBALANCE_MOVES {
            let mut tx = self.begin().await?;
            let loads = agents::loads(&mut tx).await?;
            let Some((from, to)) = rebalance::next_move(&loads) else {
                break;
            };
            let Some(a) = assignments::latest_of(&mut tx, from).await? else {
                // Only a stale count can say "more" with no rows: fix it.
                agents::recount(&mut tx, &[from]).await?;
                tx.commit().await?;
                continue;
            };
            match self.give(&mut tx, &a, to, Uuid::now_v7()).await {
                Ok(given) => {
                    tx.commit().await?;
                    if given == Given::Assigned {
                        moved += 1;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, moved, "rebalancing stopped; run it again later");
                    break;
                }
            }
        }
        if moved > 0 {
            tracing::info!(moved, "workloads rebalanced");
        }
        Ok(moved)
    }
}

/// Takes the decision lock for the rest of the transaction, waiting at
/// most [`LOCK_TIMEOUT`] (`SET LOCAL`: this transaction only).
pub async fn lock(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query_scalar!("SELECT set_config('lock_timeout', $1, true)", LOCK_TIMEOUT)
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query!("SELECT pg_advisory_xact_lock($1)", DECISION_LOCK)
        .execute(conn)
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

/// This replica's drainer: serves the waiting queue whenever woken
/// ([`Engine::wake_drainer`]) and every `every` (a safety net, and the
/// retry after a ticket-service outage), until `shutdown`.
pub async fn run_drainer(engine: Engine, every: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = engine.inner.drain_wanted.notified() => {}
            _ = ticks.tick() => {}
        }
        let assigned = engine.drain().await;
        if assigned > 0 {
            tracing::debug!(assigned, "waiting tickets served");
        }
    }
}
