//! Reacting to the ticket service's events (kit consumer: each event is
//! handled once, inside a transaction that also records its id).
//!
//! A handler applies only its event's own effect (the assignment row and
//! the workloads it touches) and then wakes this replica's drainer, which
//! serves the waiting queue in its own transactions once the handler
//! committed. So an event never fails, is retried or dead-lettered because
//! the ticket service is away while tickets wait; and a new ticket never
//! jumps older or more urgent waiting ones.
//!
//! - `TicketCreated`: the ticket joins the waiting queue.
//! - `TicketAssigned` by anyone but us (staff reassigning by hand) and
//!   `TicketStatusChanged`: the row takes the holder and openness of the
//!   event's snapshot (the ticket as of the event), so resolved/closed frees
//!   a slot and reopened takes one again with the same agent, even over
//!   capacity. Our own assignments are already recorded, and their events
//!   may describe states we have since moved past, so they are skipped
//!   (recognised by `SERVICE_IDENTITY`).
//! - `TicketEscalated`: to the escalation tier (one AssignTicket, a single
//!   decision, in the handler).
//!
//! **Stale events.** Events are retried and may arrive out of order. Each
//! row remembers the newest event applied to it (`last_event_at`, from the
//! header's `occurred_at` or else the UUIDv7 event id's time, with the
//! event id breaking ties); a state-setting event not newer than that is
//! ignored.
//!
//! An event about a ticket we never saw (its `TicketCreated` is late or was
//! lost) tracks it from the event's snapshot first. A dependency that is
//! down is a transient error: the transaction rolls back and the kit
//! retries the event later.

use chrono::{DateTime, Utc};
use helpdesk_events::consumer::{
    Decoded, Handler, HandlerError, Item, Meta, decode_as, record_ticket,
};
use helpdesk_kit::{clock::from_timestamp, error::ApiError};
use helpdesk_proto::support::v1 as pb;
use sqlx::PgConnection;
use tracing::Instrument;
use uuid::Uuid;

use crate::{
    api::convert::priority_from_pb,
    app::engine::{self, Engine, Hold},
    clients::tickets::counts,
    domain::Assignment,
    storage::assignments,
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
    /// `SERVICE_IDENTITY`: the actor id of our own changes.
    identity: String,
}

impl TicketEvents {
    pub fn new(engine: Engine, identity: String) -> Self {
        Self { engine, identity }
    }

    /// Sets the row to the event's snapshot (holder, openness) unless a
    /// newer event was applied; tracks the ticket when unknown.
    async fn apply_snapshot(
        &self,
        tx: &mut PgConnection,
        snapshot: Assignment,
        at: DateTime<Utc>,
        event: Uuid,
    ) -> Result<(), HandlerError> {
        engine::lock(tx, Hold::Exclusive).await?;
        match assignments::get(&mut *tx, snapshot.ticket_id).await? {
            Some(a) => {
                let (holder, open) = (snapshot.agent_id, snapshot.open);
                if self
                    .engine
                    .apply_event(tx, &a, holder, open, at, event)
                    .await?
                {
                    if a.agent_id != holder {
                        tracing::info!(ticket = %a.human_id, from = ?a.agent_id, to = ?holder, "reassignment recorded");
                    }
                } else {
                    tracing::info!(ticket = %a.human_id, %event, %at, "stale event ignored: a newer one was applied");
                }
            }
            None => {
                self.engine.track(tx, &snapshot, at, event).await?;
            }
        }
        Ok(())
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
            // Our own assignments: recorded when we decided them.
            Some(Ok(TicketEvent::Assigned(e))) if is_ours(e.header.as_ref(), &self.identity) => {
                Decoded::Skip
            }
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
        let id = meta.event_id;
        if let Some(t) = snapshot(&event) {
            record_ticket(&t.ticket_id, &t.human_id);
        }
        match event {
            TicketEvent::Created(e) => {
                let a = tracked(e.ticket.as_ref())?;
                let at = occurred_at(e.header.as_ref(), id)?;
                // An unheld ticket only joins the queue: such tickets go in
                // side by side, and their commits do not wait for the disk
                // (a decision waits for them). A database crash can lose
                // the last moments of them, acked: reconciliation finds
                // those tickets in the ticket service and queues them
                // (logged). A ticket created with a holder moves a
                // workload: exclusively, as other events that do.
                let hold = if a.agent_id.is_some() {
                    Hold::Exclusive
                } else {
                    Hold::Shared
                };
                engine::lock_unflushed(tx, hold).await?;
                if !self.engine.track(tx, &a, at, id).await? {
                    tracing::debug!(ticket = %a.human_id, "ticket already tracked");
                }
            }
            TicketEvent::Assigned(e) => {
                let at = occurred_at(e.header.as_ref(), id)?;
                let snapshot = tracked(e.ticket.as_ref())?;
                self.apply_snapshot(tx, snapshot, at, id).await?;
            }
            TicketEvent::StatusChanged(e) => {
                let at = occurred_at(e.header.as_ref(), id)?;
                let snapshot = tracked(e.ticket.as_ref())?;
                self.apply_snapshot(tx, snapshot, at, id).await?;
            }
            TicketEvent::Escalated(e) => {
                let at = occurred_at(e.header.as_ref(), id)?;
                let snapshot = tracked(e.ticket.as_ref())?;
                engine::lock(tx, Hold::Exclusive).await?;
                self.engine.track(tx, &snapshot, at, id).await?;
                let a = assignments::get(&mut *tx, snapshot.ticket_id)
                    .await?
                    .ok_or_else(|| permanent("tracked ticket vanished".to_owned()))?;
                if a.open {
                    self.engine
                        .escalate(tx, &a, &e.reason, id)
                        .await
                        .map_err(from_api)?;
                } else {
                    tracing::info!(ticket = %a.human_id, "escalation of a resolved or closed ticket ignored");
                }
            }
        }
        // A freed slot, a new ticket or a returned one: the queue may move,
        // after this transaction (the drainer waits for our lock).
        self.engine.wake_drainer();
        Ok(())
    }

    async fn handle_batch(
        &self,
        tx: &mut PgConnection,
        items: Vec<Item<TicketEvent>>,
    ) -> Result<(), HandlerError> {
        if only_new_waiting(&items) {
            return self.track_new_tickets(tx, &items).await;
        }
        // A mixed burst, event by event, under the decision lock taken
        // exclusively first: some event needs it (two lanes holding it
        // shared and each asking for it exclusively would deadlock).
        engine::lock(tx, Hold::Exclusive).await?;
        for item in items {
            self.handle(tx, &item.meta, item.event)
                .instrument(item.span)
                .await?;
        }
        // A new ticket's handler lets its commit skip the flush; the other
        // events of this burst must not lose that guarantee.
        engine::commit_with_flush(tx).await?;
        Ok(())
    }
}

impl TicketEvents {
    /// A burst of new tickets, none held yet (the usual burst: intake
    /// outruns decisions): one shared lock and one insert for all of them.
    async fn track_new_tickets(
        &self,
        tx: &mut PgConnection,
        items: &[Item<TicketEvent>],
    ) -> Result<(), HandlerError> {
        let mut tickets = Vec::with_capacity(items.len());
        for item in items {
            let TicketEvent::Created(e) = &item.event else {
                return Err(permanent("not a new ticket".to_owned()));
            };
            let a = tracked(e.ticket.as_ref())?;
            let at = occurred_at(e.header.as_ref(), item.meta.event_id)?;
            item.span
                .in_scope(|| record_ticket(&a.ticket_id.to_string(), &a.human_id));
            tickets.push((a, at, item.meta.event_id));
        }
        // As for one new ticket (see `handle`): shared lock, no flush wait.
        engine::lock_unflushed(tx, Hold::Shared).await?;
        let stored = assignments::insert_waiting(tx, &tickets, self.engine.clock().now()).await?;
        if stored.len() < tickets.len() {
            tracing::debug!(
                known = tickets.len() - stored.len(),
                "tickets already tracked"
            );
        }
        // Each waiting ticket's decision continues its own event's trace.
        for (item, (a, ..)) in items.iter().zip(&tickets) {
            if stored.contains(&a.ticket_id) {
                item.span
                    .in_scope(|| self.engine.causes().remember(a.ticket_id));
            }
        }
        self.engine.wake_drainer();
        Ok(())
    }
}

/// Whether a burst is only new tickets that nobody holds yet.
fn only_new_waiting(items: &[Item<TicketEvent>]) -> bool {
    items.iter().all(|item| {
        matches!(&item.event, TicketEvent::Created(e)
            if e.ticket.as_ref().is_some_and(|t| t.assignee_id.is_empty()))
    })
}

/// The ticket an event describes.
fn snapshot(event: &TicketEvent) -> Option<&pb::TicketSnapshot> {
    match event {
        TicketEvent::Created(e) => e.ticket.as_ref(),
        TicketEvent::Assigned(e) => e.ticket.as_ref(),
        TicketEvent::StatusChanged(e) => e.ticket.as_ref(),
        TicketEvent::Escalated(e) => e.ticket.as_ref(),
    }
}

/// Whether the event records a change we made ourselves (`identity`:
/// `SERVICE_IDENTITY`, the subject the ticket service saw on our calls).
fn is_ours(header: Option<&pb::EventHeader>, identity: &str) -> bool {
    header.is_some_and(|h| h.actor_role == "service" && h.actor_id == identity)
}

/// When the event happened: the header's `occurred_at`, else the time in
/// its UUIDv7 id.
fn occurred_at(header: Option<&pb::EventHeader>, id: Uuid) -> Result<DateTime<Utc>, HandlerError> {
    if let Some(at) = header
        .and_then(|h| h.occurred_at.as_ref())
        .and_then(from_timestamp)
    {
        return Ok(at);
    }
    id.get_timestamp()
        .and_then(|t| {
            let (secs, nanos) = t.to_unix();
            DateTime::from_timestamp(i64::try_from(secs).ok()?, nanos)
        })
        .ok_or_else(|| permanent(format!("event {id} has no occurred_at and is not a UUIDv7")))
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
        priority: priority_from_pb(s.priority)
            .ok_or_else(|| permanent(format!("priority {} is not a priority", s.priority)))?,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn header(actor: &str, role: &str) -> pb::EventHeader {
        pb::EventHeader {
            actor_id: actor.into(),
            actor_role: role.into(),
            ..pb::EventHeader::default()
        }
    }

    #[test]
    fn our_events_are_recognised_by_the_configured_identity() {
        let idp = "idp|svc-assignment";
        assert!(is_ours(Some(&header(idp, "service")), idp));
        assert!(!is_ours(
            Some(&header("assignment-service", "service")),
            idp
        ));
        assert!(!is_ours(Some(&header(idp, "staff")), idp));
        assert!(!is_ours(None, idp));
    }

    #[test]
    fn an_event_without_occurred_at_is_dated_by_its_uuidv7() {
        let id = Uuid::now_v7();
        let at = occurred_at(None, id).unwrap();
        assert!((Utc::now() - at).num_seconds().abs() < 5);
        let stamped = pb::EventHeader {
            occurred_at: Some(helpdesk_kit::clock::to_timestamp(
                DateTime::from_timestamp(1_000, 0).unwrap(),
            )),
            ..pb::EventHeader::default()
        };
        assert_eq!(
            occurred_at(Some(&stamped), id).unwrap(),
            DateTime::from_timestamp(1_000, 0).unwrap()
        );
        assert!(occurred_at(None, Uuid::new_v4()).is_err());
    }
}
