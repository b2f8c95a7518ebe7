//! The mover: tells the ticket service of decided moves. Each replica runs
//! [`SENDERS`] senders; moves are leased (`storage::moves::claim`), so
//! senders and replicas share the work and a crashed replica's moves are
//! resumed once their lease lapses.
//!
//! A batch of up to [`BATCH`] moves is sent in one BatchAssignTickets call
//! (one transaction in the ticket service, each move answered on its own),
//! outside any lock; the answers are then recorded in one transaction
//! under the decision lock (shared when every move was done as decided,
//! see [`perform`]). Every attempt of a move sends the request id fixed
//! when it was decided, so the ticket service applies it
//! once however often it is retried (a timeout after the ticket service
//! committed, a restart, two replicas). What the ticket service answers:
//!
//! - done: the row takes its state (holder, open or not); the move is done.
//! - the ticket is closed or unknown, or the request refused for the
//!   ticket's sake: the row stops counting; done.
//! - the agent refused (not active staff): they are deactivated until the
//!   roster says otherwise, the ticket goes back to the holder the ticket
//!   service still has (to the queue, for a new ticket), and it is decided
//!   again (the drainer, the operation's next step); done.
//! - no answer: the move stays pending and is retried after its lease,
//!   growing with each attempt.

use std::time::Duration;

use futures_util::future::join_all;
use helpdesk_kit::{
    client::unavailable,
    error::{ApiError, ApiResult},
    telemetry,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use super::engine::{Engine, Hold};
use crate::{
    clients::tickets::{Outcome, batch_refused},
    domain::Move,
    storage::{
        agents,
        assignments::{self, Answered},
        moves,
    },
};

/// Most moves sent at once.
pub const BATCH: i64 = 64;

/// Batches in flight at once per replica. Each batch's call and the
/// recording of its answers take tens of milliseconds of waiting on the
/// ticket service and the lock; a second sender overlaps them. Safe:
/// claims are leased, and a ticket has at most one pending move (unique
/// index), so no two batches hold moves of one ticket.
const SENDERS: usize = 2;

/// How often pending moves are looked for when nothing woke the mover
/// (retries of failed moves come due).
const POLL: Duration = Duration::from_millis(500);

/// Answered moves are pruned about every this many passes.
const PRUNE_EVERY: u32 = 7200;

/// How one move turned out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moved {
    /// The ticket service holds the ticket as decided.
    Done,
    /// The ticket is closed or gone; it no longer counts anywhere.
    TicketGone,
    /// The ticket service refused the agent.
    AgentRejected,
    /// No answer; retried later.
    Pending,
}

/// Sends due moves (`only`: just that one) and records the answers.
/// Returns each move claimed with how it turned out (empty: nothing due).
pub async fn perform(engine: &Engine, only: Option<i64>) -> ApiResult<Vec<(Move, Moved)>> {
    let lease = engine.tickets().timeout().as_secs_f64() + 1.0;
    let claimed = {
        let mut conn = engine.pool().acquire().await?;
        moves::claim(&mut conn, BATCH, only, lease).await?
    };
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    if claimed.len() as i64 == BATCH {
        // More may be due: another sender can take them meanwhile.
        engine.wake_mover();
    }
    // The call continues the decisions' traces (one trace: its child;
    // several: linked to each), and the ticket service continues it.
    let span = tracing::info_span!(
        "assignment.send_moves",
        moves = claimed.len(),
        ticket_id = tracing::field::Empty,
    );
    if let [one] = &claimed[..] {
        span.record("ticket_id", tracing::field::display(one.ticket_id));
    }
    let causes = engine.causes();
    telemetry::follow(
        &span,
        claimed.iter().filter_map(|m| causes.get(&m.ticket_id)),
    );
    let answers = send(engine, &claimed).instrument(span).await;

    let now = engine.clock().now();
    // Shared when every move is done as decided: one statement records the
    // batch (the workloads it moves are locked in one order), so the
    // batches of both senders and new tickets are recorded side by side,
    // and decisions wait for them. Any other answer takes several
    // statements (and may deactivate an agent): exclusively, so no two
    // such transactions lock agents in different orders.
    let hold = if answers.iter().all(|a| matches!(a, Ok(Outcome::Done(_)))) {
        Hold::Shared
    } else {
        Hold::Exclusive
    };
    let mut tx = engine.begin_holding(hold).await?;
    let (mut finished, mut results) = (Vec::new(), Vec::new());
    // The usual answer is recorded for the whole batch in one statement
    // below: the lock is held for a handful of statements, not one per move.
    let mut answered = Vec::new();
    for (m, answer) in claimed.into_iter().zip(answers) {
        let moved = match answer {
            Ok(Outcome::Done(answer)) => {
                answered.push(Answered {
                    ticket: m.ticket_id,
                    agent: m.to,
                    open: answer.open,
                    at: answer.at,
                });
                Moved::Done
            }
            Ok(Outcome::Closed | Outcome::Missing) => {
                assignments::set_open(&mut tx, m.ticket_id, false, now).await?;
                tracing::info!(ticket = %m.ticket_id, "ticket is closed or unknown to the ticket service; no longer counted");
                Moved::TicketGone
            }
            Ok(Outcome::Invalid(why)) => {
                assignments::set_open(&mut tx, m.ticket_id, false, now).await?;
                tracing::error!(ticket = %m.ticket_id, reason = %why, "the ticket service refused to move this ticket; no longer counted");
                Moved::TicketGone
            }
            Ok(Outcome::AssigneeRejected(why)) => {
                if let Some(agent) = m.to {
                    agents::deactivate(&mut tx, agent, now).await?;
                    tracing::warn!(%agent, reason = %why, "the ticket service refused this agent; deactivated until the roster confirms them");
                }
                assignments::revert_holder(&mut tx, m.ticket_id, m.to, m.from, now).await?;
                Moved::AgentRejected
            }
            Err(error) => {
                tracing::warn!(ticket = %m.ticket_id, %error, "move not confirmed by the ticket service; retried later");
                results.push((m, Moved::Pending));
                continue;
            }
        };
        finished.push(m.id);
        causes.forget(&m.ticket_id);
        results.push((m, moved));
    }
    assignments::record_answers(&mut tx, &answered, now).await?;
    moves::finish(&mut tx, &finished, now).await?;
    tx.commit().await?;
    if results.iter().any(|(_, r)| *r == Moved::AgentRejected) {
        // The refused tickets are decided again.
        engine.wake_drainer();
        engine.wake_operations();
    }
    Ok(results)
}

/// Sends the claimed moves and returns the answers in their order: the
/// assignments in one BatchAssignTickets call (one transaction in the ticket
/// service), the unassignments (rare: nobody could take the ticket) one
/// UpdateTicket each, alongside it. A batch the ticket service cannot take
/// at all (an older version without the method, or refused as a whole) is
/// sent one AssignTicket per move instead; a batch call that failed
/// otherwise is a failed attempt of each of its moves.
async fn send(engine: &Engine, claimed: &[Move]) -> Vec<ApiResult<Outcome>> {
    let tickets = engine.tickets();
    let assigns: Vec<(Uuid, Uuid, Uuid)> = claimed
        .iter()
        .filter_map(|m| m.to.map(|agent| (m.ticket_id, agent, m.request_id)))
        .collect();
    let batch = async {
        if assigns.is_empty() {
            return Vec::new();
        }
        match tickets.assign_all(&assigns).await {
            Ok(answers) => answers,
            Err(status) if batch_refused(&status) => {
                tracing::warn!(code = ?status.code(), message = status.message(), "the ticket service did not take the batch; sending its moves one by one");
                join_all(
                    assigns.iter().map(|&(ticket, agent, request_id)| {
                        tickets.assign(ticket, agent, request_id)
                    }),
                )
                .await
            }
            Err(status) => {
                let why = match unavailable("ticket", &status) {
                    ApiError::Unavailable(why) => why,
                    other => other.to_string(),
                };
                assigns
                    .iter()
                    .map(|_| Err(ApiError::Unavailable(why.clone())))
                    .collect()
            }
        }
    };
    let unassigns = join_all(
        claimed
            .iter()
            .filter(|m| m.to.is_none())
            .map(|m| tickets.unassign(m.ticket_id, m.request_id)),
    );
    let (batch, unassigns) = tokio::join!(batch, unassigns);
    let (mut batch, mut unassigns) = (batch.into_iter(), unassigns.into_iter());
    claimed
        .iter()
        .map(|m| {
            let answer = if m.to.is_some() {
                batch.next()
            } else {
                unassigns.next()
            };
            answer
                .unwrap_or_else(|| Err(ApiError::internal(anyhow::anyhow!("move left unanswered"))))
        })
        .collect()
}

/// Sends moves whenever woken and every [`POLL`], until `shutdown`; the
/// batch in hand is finished first.
pub async fn run(engine: Engine, shutdown: CancellationToken) {
    join_all((0..SENDERS).map(|n| sender(&engine, &shutdown, n == 0))).await;
}

/// One sender: sends what is due whenever woken (or every [`POLL`]) until
/// nothing is; `prunes`: also prunes answered moves now and then.
async fn sender(engine: &Engine, shutdown: &CancellationToken, prunes: bool) {
    let mut ticks = tokio::time::interval(POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut passes = 0u32;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = engine.mover_wanted() => {}
            _ = ticks.tick() => {}
        }
        loop {
            match perform(engine, None).await {
                // Stop when nothing was due, or nothing got through (the
                // ticket service is away: the leases space the retries).
                Ok(done) if done.iter().all(|(_, r)| *r == Moved::Pending) => break,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "sending moves failed; retrying shortly");
                    break;
                }
            }
        }
        passes = passes.wrapping_add(1);
        if prunes && passes.is_multiple_of(PRUNE_EVERY) {
            prune(engine).await;
        }
    }
}

async fn prune(engine: &Engine) {
    let pruned = match engine.pool().acquire().await {
        Ok(mut conn) => moves::prune(&mut conn).await.map_err(anyhow::Error::from),
        Err(e) => Err(e.into()),
    };
    match pruned {
        Ok(n) if n > 0 => tracing::debug!(pruned = n, "answered moves pruned"),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "pruning answered moves failed"),
    }
}
