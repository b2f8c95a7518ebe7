//! The assignment decisions, in one place: who gets a ticket, the waiting
//! queue, redistribution, escalation and rebalancing.
//!
//! **Race-free across replicas.** Every decision runs in a transaction that
//! first takes one PostgreSQL advisory lock ([`DECISION_LOCK`]), so all
//! decisions of all replicas happen one at a time: each choice sees every
//! earlier one, which is what makes it exactly least-loaded and keeps
//! everyone within capacity. The choice, the ticket service's AssignTicket
//! call and the workload change commit together or not at all (a failed
//! call rolls the transaction back; a retry asks again with the same
//! request id, which the ticket service answers from its record).
//! Decisions are a few milliseconds each, so one lock is far from a
//! bottleneck at help-desk volumes, and it is much simpler to trust than
//! row locks spread over agents and tickets.
//!
//! **Workload stays true.** `agents.open_tickets` is refreshed from the
//! assignments it counts in the same transaction as every change
//! (`storage::agents::recount`); reconciliation checks both against the
//! ticket service, the source of truth.

use std::sync::Arc;

use helpdesk_kit::{
    clock::SharedClock,
    error::{ApiError, ApiResult},
};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::{
    domain::{Assignment, Tier, rebalance, request_id},
    storage::{agents, assignments, escalations},
    tickets::{Outcome, TicketClient},
};

/// The advisory lock every decision holds ("assign" in ASCII).
pub const DECISION_LOCK: i64 = 0x6173_7369_676e;

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
    /// The ticket service does not know the ticket; dropped from the queue.
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
}

impl Engine {
    pub fn new(pool: PgPool, tickets: TicketClient, clock: SharedClock, policy: Policy) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                tickets,
                clock,
                policy,
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

    /// A transaction holding the decision lock.
    pub async fn begin(&self) -> sqlx::Result<Transaction<'static, Postgres>> {
        let mut tx = self.inner.pool.begin().await?;
        lock(&mut tx).await?;
        Ok(tx)
    }

    /// Gives `a` to `agent`: the ticket service first, then our rows. The
    /// agent may end up over capacity (manual assignment); automatic
    /// callers only pass agents [`agents::pick`] chose.
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
            Outcome::Done => {
                assignments::set_agent(conn, a.ticket_id, Some(agent), now).await?;
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
            Outcome::AssigneeRejected(why) => {
                agents::deactivate(conn, agent, now).await?;
                tracing::warn!(%agent, reason = %why, "the ticket service refused this agent; deactivated until the roster confirms them");
                Ok(Given::AgentRejected)
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

    /// Serves the waiting queue, most urgent and oldest first, until it is
    /// empty or nobody is free. Returns how many tickets were assigned.
    pub async fn drain(&self, conn: &mut PgConnection, seed: Uuid) -> ApiResult<usize> {
        let mut assigned = 0;
        // Each round assigns a ticket, drops one from the queue or
        // deactivates an agent, so the loop ends.
        while let Some(next) = assignments::next_waiting(conn).await? {
            let Some(agent) = agents::pick(conn, &next.category_id, None, None).await? else {
                break;
            };
            if self.give(conn, &next, agent, seed).await? == Given::Assigned {
                assigned += 1;
            }
        }
        Ok(assigned)
    }

    /// Sets whether a ticket counts (resolved/closed or reopened), keeping
    /// its holder either way: a reopened ticket goes back to whoever had it,
    /// even over capacity.
    pub async fn set_open(
        &self,
        conn: &mut PgConnection,
        a: &Assignment,
        open: bool,
    ) -> sqlx::Result<()> {
        if a.open == open {
            return Ok(());
        }
        assignments::set_open(conn, a.ticket_id, open, self.inner.clock.now()).await?;
        if let Some(holder) = a.agent_id {
            agents::recount(conn, &[holder]).await?;
        }
        Ok(())
    }

    /// Records a holder chosen elsewhere (staff reassigned the ticket in the
    /// ticket service): no call, just our rows and both workloads.
    pub async fn record_holder(
        &self,
        conn: &mut PgConnection,
        a: &Assignment,
        holder: Option<Uuid>,
    ) -> sqlx::Result<()> {
        if a.agent_id == holder {
            return Ok(());
        }
        let now = self.inner.clock.now();
        if let Some(h) = holder {
            agents::ensure_known(conn, &[h], now).await?;
        }
        assignments::set_agent(conn, a.ticket_id, holder, now).await?;
        let touched: Vec<Uuid> = a.agent_id.into_iter().chain(holder).collect();
        agents::recount(conn, &touched).await?;
        Ok(())
    }

    /// Stores a ticket seen for the first time (from an event's snapshot).
    pub async fn track(&self, conn: &mut PgConnection, a: &Assignment) -> sqlx::Result<bool> {
        let now = self.inner.clock.now();
        if let Some(h) = a.agent_id {
            agents::ensure_known(conn, &[h], now).await?;
        }
        let inserted = assignments::insert(conn, a, now).await?;
        if inserted && let Some(h) = a.agent_id {
            agents::recount(conn, &[h]).await?;
        }
        Ok(inserted)
    }

    /// Takes every open ticket away from `from` (off shift or gone): each
    /// goes to whoever is free in queue order (straight from the old holder
    /// to the new one, one AssignTicket each), and what nobody can take is
    /// unassigned in the ticket service and waits. Returns how many tickets
    /// were taken away.
    pub async fn redistribute(
        &self,
        conn: &mut PgConnection,
        from: &[Uuid],
        seed: Uuid,
    ) -> ApiResult<usize> {
        let now = self.inner.clock.now();
        let mut released = Vec::new();
        for agent in from {
            for a in assignments::open_of(conn, *agent).await? {
                assignments::set_agent(conn, a.ticket_id, None, now).await?;
                released.push(a);
            }
        }
        agents::recount(conn, from).await?;
        self.drain(conn, seed).await?;
        for a in &released {
            let Some(now_held) = assignments::get(&mut *conn, a.ticket_id).await? else {
                continue;
            };
            if !now_held.waiting() {
                continue;
            }
            match self
                .inner
                .tickets
                .unassign(a.ticket_id, request_id(seed, a.ticket_id, None))
                .await?
            {
                Outcome::Done => {}
                Outcome::Closed | Outcome::Missing => {
                    assignments::set_open(conn, a.ticket_id, false, now).await?;
                }
                Outcome::AssigneeRejected(why) => {
                    return Err(ApiError::internal(anyhow::anyhow!(
                        "the ticket service refused to unassign {}: {why}",
                        a.human_id
                    )));
                }
            }
        }
        if !released.is_empty() {
            tracing::info!(agents = ?from, tickets = released.len(), "open tickets redistributed");
        }
        Ok(released.len())
    }

    /// Moves `a` to the least-loaded free agent of the escalation tier
    /// (never back to its holder), and records the escalation.
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
    /// until workloads differ by at most one. Returns how many moved.
    pub async fn rebalance(&self, conn: &mut PgConnection, seed: Uuid) -> ApiResult<i32> {
        let mut moved = 0;
        for _ in 0..MAX_REBALANCE_MOVES {
            let loads = agents::loads(conn).await?;
            let Some((from, to)) = rebalance::next_move(&loads) else {
                break;
            };
            let Some(a) = assignments::latest_of(conn, from).await? else {
                // Only a stale count can say "more" with no rows: fix it.
                agents::recount(conn, &[from]).await?;
                continue;
            };
            if self.give(conn, &a, to, seed).await? == Given::Assigned {
                moved += 1;
            }
        }
        if moved > 0 {
            tracing::info!(moved, "workloads rebalanced");
        }
        Ok(moved)
    }
}

/// Takes the decision lock for the rest of the transaction.
pub async fn lock(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query!("SELECT pg_advisory_xact_lock($1)", DECISION_LOCK)
        .execute(conn)
        .await?;
    Ok(())
}
