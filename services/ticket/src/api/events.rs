//! Turns what happened to a ticket into outbox rows (events.proto), inside
//! the caller's transaction.

use chrono::{DateTime, Utc};
use helpdesk_events::outbox::{self, Outgoing};
use helpdesk_kit::{auth::Caller, clock::to_timestamp};
use helpdesk_proto::{Event, support::v1 as pb};
use sqlx::PgConnection;
use uuid::Uuid;

use super::convert::{
    attached_file, author_role_to_pb, or_empty, priority_to_pb, rating, snapshot, status_to_pb,
};
use crate::domain::{DomainEvent, Message, Ticket, attachment::Attachment};

/// Who and when, shared by the events of one change.
pub struct Context<'a> {
    pub caller: &'a Caller,
    pub now: DateTime<Utc>,
}

impl Context<'_> {
    fn header(&self, event_id: Uuid) -> Option<pb::EventHeader> {
        Some(pb::EventHeader {
            event_id: event_id.to_string(),
            occurred_at: Some(to_timestamp(self.now)),
            actor_id: self.caller.subject(),
            actor_role: self.caller.role().as_str().to_owned(),
        })
    }

    /// The outbox row of one event about `ticket` (its snapshot as it is now).
    fn row<E: Event>(
        &self,
        ticket: &Ticket,
        build: impl FnOnce(Option<pb::EventHeader>, Option<pb::TicketSnapshot>) -> E,
    ) -> Outgoing {
        let event_id = Uuid::now_v7();
        Outgoing::new(
            event_id,
            ticket.id,
            &build(self.header(event_id), Some(snapshot(ticket))),
        )
    }

    async fn emit<E: Event>(
        &self,
        conn: &mut PgConnection,
        ticket: &Ticket,
        build: impl FnOnce(Option<pb::EventHeader>, Option<pb::TicketSnapshot>) -> E,
    ) -> sqlx::Result<()> {
        let event_id = Uuid::now_v7();
        let event = build(self.header(event_id), Some(snapshot(ticket)));
        outbox::enqueue(conn, event_id, ticket.id, &event).await
    }

    /// The outbox row of a new ticket, for the statement that creates it.
    pub fn created(&self, t: &Ticket) -> Outgoing {
        self.row(t, |header, ticket| pb::TicketCreated { header, ticket })
    }

    /// One event per domain event, in order.
    pub async fn changed(
        &self,
        conn: &mut PgConnection,
        t: &Ticket,
        events: &[DomainEvent],
    ) -> sqlx::Result<()> {
        outbox::enqueue_all(conn, &self.changed_rows(t, events)).await
    }

    /// The outbox rows of [`Context::changed`], not yet written: a batch
    /// collects those of all its items and writes them in one statement.
    pub fn changed_rows(&self, t: &Ticket, events: &[DomainEvent]) -> Vec<Outgoing> {
        events
            .iter()
            .map(|event| match event {
                DomainEvent::StatusChanged { from, to } => {
                    self.row(t, |header, ticket| pb::TicketStatusChanged {
                        header,
                        ticket,
                        from: status_to_pb(*from).into(),
                        to: status_to_pb(*to).into(),
                    })
                }
                DomainEvent::PriorityChanged { from, to } => {
                    self.row(t, |header, ticket| pb::TicketPriorityChanged {
                        header,
                        ticket,
                        from: priority_to_pb(*from).into(),
                        to: priority_to_pb(*to).into(),
                    })
                }
                DomainEvent::CategoryChanged { from, to } => {
                    self.row(t, |header, ticket| pb::TicketCategoryChanged {
                        header,
                        ticket,
                        from: from.to_string(),
                        to: to.to_string(),
                    })
                }
                DomainEvent::Assigned { previous, assignee } => {
                    self.row(t, |header, ticket| pb::TicketAssigned {
                        header,
                        ticket,
                        previous_assignee_id: or_empty(*previous),
                        assignee_id: or_empty(*assignee),
                    })
                }
            })
            .collect()
    }

    /// The outbox row of a posted message, for the statement that writes it.
    pub fn message_posted(
        &self,
        t: &Ticket,
        m: &Message,
        first_response: bool,
        attachments: &[Attachment],
    ) -> Outgoing {
        self.row(t, |header, ticket| pb::MessagePosted {
            header,
            ticket,
            message_id: m.id.to_string(),
            author_role: author_role_to_pb(m.author_role).into(),
            internal: m.internal,
            // Internal notes carry no text on the bus: one careless consumer
            // must not be able to show staff-only words to the user.
            excerpt: if m.internal {
                String::new()
            } else {
                m.body.as_str().chars().take(200).collect()
            },
            first_response,
            attachments: attachments.iter().map(attached_file).collect(),
        })
    }

    pub async fn attachment_added(
        &self,
        conn: &mut PgConnection,
        t: &Ticket,
        a: &Attachment,
    ) -> sqlx::Result<()> {
        self.emit(conn, t, |header, ticket| pb::AttachmentAdded {
            header,
            ticket,
            file: Some(attached_file(a)),
            internal: a.internal,
        })
        .await
    }

    pub async fn rated(&self, conn: &mut PgConnection, t: &Ticket) -> sqlx::Result<()> {
        self.emit(conn, t, |header, ticket| pb::TicketRated {
            header,
            ticket,
            rating: rating(t),
            feedback: or_empty(t.rating_feedback.as_ref()),
        })
        .await
    }
}
