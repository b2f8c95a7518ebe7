//! Reacting to the ticket service's events (kit consumer: each event is
//! handled once, inside a transaction that also records its id).
//!
//! - `TicketCreated`: the ticket joins the waiting queue, then the queue is
//!   served, so a new ticket never jumps older or more urgent waiting ones.
//! - `TicketAssigned` by anyone but us (staff reassigning by hand): the
//!   workload follows. Our own assignments are already recorded, and their
//!   events may describe states we have since moved past, so they are skipped.
//! - `TicketStatusChanged`: resolved/closed frees a slot; reopened takes one
//!   again with the same agent, even over capacity.
//! - `TicketEscalated`: to the escalation tier.
//!
//! An event about a ticket we never saw (its `TicketCreated` is late or was
//! lost) tracks it from the event's snapshot first. A dependency that is
//! down is a transient error: the transaction rolls back and the kit
//! retries the event later.

use chrono::{DateTime, Utc};
use helpdesk_kit::{
    clock::from_timestamp,
    consumer::{Decoded, Handler, HandlerError, Meta, decode_as},
    error::ApiError,
};
use helpdesk_proto::support::v1::{self as pb, TicketStatus};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    domain::Assignment,
    engine::{self, Engine},
    storage::assignments,
    tickets::SERVICE_SUBJECT,
};

/// The routing keys the assignment queue is bound to.
pub const BINDINGS: [&str; 4] = [
    "ticket.created",
    "ticket.assigned",
    "ticket.status_changed",
    "ticket.escalated",
];

/// The events this consumer handles.
#[derive(Debug)]
pub enum TicketEvent {
    Created(pb::TicketCreated),
    Assigned(pb::TicketAssigned),
    StatusChanged(pb::TicketStatusChanged),
    Escalated(pb::TicketEscalated),
}

pub struct TicketEvents {
    engine: Engine,
}

impl TicketEvents {
    pub fn new(engine: Engine) -> Self {
        Self { engine }
    }
}

impl Handler for TicketEvents {
    type Event = TicketEvent;

    fn decode(&self, message_type: &str, payload: &[u8]) -> Decoded<TicketEvent> {
        let decoded = decode_as(message_type, payload)
            .map(|r| r.map(TicketEvent::Created))
            .or_else(|| decode_as(message_type, payload).map(|r| r.map(TicketEvent::Assigned)))
            .or_else(|| decode_as(message_type, payload).map(|r| r.map(TicketEvent::StatusChanged)))
            .or_else(|| decode_as(message_type, payload).map(|r| r.map(TicketEvent::Escalated)));
        match decoded {
            Some(Ok(event)) => Decoded::Event(event),
            Some(Err(why)) => Decoded::Invalid(why),
            None => Decoded::Unknown,
        }
    }

    async fn handle(
        &self,
        tx: &mut PgConnection,
        meta: &Meta,
        event: TicketEvent,
    ) -> Result<(), HandlerError> {
        let seed = meta.event_id;
        match event {
            TicketEvent::Created(e) => {
                let a = tracked(e.ticket.as_ref())?;
                engine::lock(tx).await?;
                if !self.engine.track(tx, &a).await? {
                    tracing::debug!(ticket = %a.human_id, "ticket already tracked");
                }
            }
            TicketEvent::Assigned(e) => {
                if is_ours(e.header.as_ref()) {
                    return Ok(());
                }
                let holder = optional_uuid(&e.assignee_id).map_err(permanent)?;
                let snapshot = tracked(e.ticket.as_ref())?;
                engine::lock(tx).await?;
                match assignments::get(&mut *tx, snapshot.ticket_id).await? {
                    Some(a) => {
                        self.engine.record_holder(tx, &a, holder).await?;
                        tracing::info!(ticket = %a.human_id, from = ?a.agent_id, to = ?holder, "manual reassignment recorded");
                    }
                    None => {
                        let a = Assignment {
                            agent_id: holder,
                            ..snapshot
                        };
                        self.engine.track(tx, &a).await?;
                    }
                }
            }
            TicketEvent::StatusChanged(e) => {
                let open = counts(e.to);
                let snapshot = tracked(e.ticket.as_ref())?;
                engine::lock(tx).await?;
                match assignments::get(&mut *tx, snapshot.ticket_id).await? {
                    Some(a) => self.engine.set_open(tx, &a, open).await?,
                    None => {
                        self.engine
                            .track(tx, &Assignment { open, ..snapshot })
                            .await?;
                    }
                }
            }
            TicketEvent::Escalated(e) => {
                let snapshot = tracked(e.ticket.as_ref())?;
                engine::lock(tx).await?;
                self.engine.track(tx, &snapshot).await?;
                let a = assignments::get(&mut *tx, snapshot.ticket_id)
                    .await?
                    .ok_or_else(|| permanent("tracked ticket vanished".to_owned()))?;
                if a.open {
                    self.engine
                        .escalate(tx, &a, &e.reason, seed)
                        .await
                        .map_err(from_api)?;
                } else {
                    tracing::info!(ticket = %a.human_id, "escalation of a resolved or closed ticket ignored");
                }
            }
        }
        // A freed slot, a new ticket or a returned one: serve the queue.
        self.engine.drain(tx, seed).await.map_err(from_api)?;
        Ok(())
    }
}

/// Whether the event records a change we made ourselves.
fn is_ours(header: Option<&pb::EventHeader>) -> bool {
    header.is_some_and(|h| h.actor_role == "service" && h.actor_id == SERVICE_SUBJECT)
}

/// Whether a ticket in `status` counts toward a workload.
fn counts(status: i32) -> bool {
    !matches!(
        TicketStatus::try_from(status),
        Ok(TicketStatus::Resolved | TicketStatus::Closed)
    )
}

/// The ticket as an event's snapshot describes it.
fn tracked(snapshot: Option<&pb::TicketSnapshot>) -> Result<Assignment, HandlerError> {
    let s = snapshot.ok_or_else(|| permanent("event has no ticket snapshot".to_owned()))?;
    let ticket_id = Uuid::parse_str(&s.ticket_id)
        .map_err(|_| permanent(format!("ticket_id {:?} is not a UUID", s.ticket_id)))?;
    let created: DateTime<Utc> = s
        .create_time
        .as_ref()
        .and_then(from_timestamp)
        .ok_or_else(|| permanent("snapshot has no valid create_time".to_owned()))?;
    let agent_id = optional_uuid(&s.assignee_id).map_err(permanent)?;
    Ok(Assignment {
        ticket_id,
        human_id: s.human_id.clone(),
        category_id: s.category_id.clone(),
        priority: i16::try_from(s.priority)
            .map_err(|_| permanent(format!("priority {} out of range", s.priority)))?,
        ticket_created_at: created,
        agent_id,
        open: counts(s.status),
        assigned_at: agent_id.map(|_| created),
    })
}

fn optional_uuid(raw: &str) -> Result<Option<Uuid>, String> {
    if raw.is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(raw)
        .map(Some)
        .map_err(|_| format!("{raw:?} is not a UUID"))
}

fn permanent(why: String) -> HandlerError {
    HandlerError::Permanent(anyhow::anyhow!(why))
}

/// Dependency and database trouble may pass: retry. Anything else means
/// the event does not fit our state, and retrying cannot help.
fn from_api(err: ApiError) -> HandlerError {
    match err {
        ApiError::Unavailable(_) | ApiError::Aborted(_) | ApiError::Internal(_) => {
            HandlerError::Transient(err.into())
        }
        other => HandlerError::Permanent(other.into()),
    }
}
