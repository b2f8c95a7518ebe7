//! Intake: the consumer's handler. Each ticket event becomes the
//! notifications of "who hears what" (domain::audience) and their email
//! and push deliveries, in the consumer's transaction that also records
//! the event id, so a redelivered event creates nothing new.
//!
//! Per event, whatever the audience's size: the contacts it names (cached,
//! see clients::accounts), one preferences read, then one statement that
//! stores every notification and delivery (last, under the feed lock; see
//! storage::notifications). Texts are rendered once per
//! kind and locale. Sending happens later, off this path (app::sender).

use std::{collections::HashMap, sync::Arc};

use helpdesk_events::consumer::{Decoded, Handler, HandlerError, Meta, decode_as, record_ticket};
use helpdesk_kit::{clock::SharedClock, error::ApiError};
use helpdesk_proto::support::v1 as pb;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    app::sender::Sender,
    clients::accounts::{Contact, Directory},
    domain::{
        Channel, Kind,
        audience::{self, Fact, Groups, StaffAudience, TicketPeople},
        preferences::Policy,
    },
    storage::{
        deliveries::NewDelivery,
        notifications::{self, EventPart, NewNotification},
        preferences, ticket_staff,
    },
    templates::{Templates, Text},
};

/// The routing keys the notification queue is bound to.
pub const BINDINGS: [&str; 7] = [
    "ticket.created",
    "ticket.assigned",
    "ticket.status_changed",
    "ticket.message_posted",
    "ticket.escalated",
    "ticket.overdue",
    "ticket.rating_requested",
];

/// The configured audiences.
#[derive(Clone, Debug)]
pub struct Audiences {
    pub new_ticket: StaffAudience,
    pub triage: Vec<Uuid>,
    pub escalation: Vec<Uuid>,
}

/// An event reduced to what intake needs.
#[derive(Debug)]
pub struct TicketEvent {
    header: pb::EventHeader,
    ticket: pb::TicketSnapshot,
    fact: Fact,
    /// Kind-specific template variables (`excerpt`, `reason`, ...).
    extra: serde_json::Value,
}

pub struct Intake {
    templates: Arc<Templates>,
    directory: Directory,
    audiences: Audiences,
    policy: Policy,
    sender: Sender,
    clock: SharedClock,
}

impl Intake {
    pub fn new(
        templates: Arc<Templates>,
        directory: Directory,
        audiences: Audiences,
        policy: Policy,
        sender: Sender,
        clock: SharedClock,
    ) -> Self {
        Self {
            templates,
            directory,
            audiences,
            policy,
            sender,
            clock,
        }
    }
}

fn event(
    header: Option<pb::EventHeader>,
    ticket: Option<pb::TicketSnapshot>,
    fact: Fact,
    extra: serde_json::Value,
) -> Decoded<TicketEvent> {
    match (header, ticket) {
        (Some(header), Some(ticket)) => Decoded::Event(TicketEvent {
            header,
            ticket,
            fact,
            extra,
        }),
        _ => Decoded::Invalid("the event has no header or ticket snapshot".into()),
    }
}

/// `TICKET_STATUS_RESOLVED` → `resolved`.
fn name_of(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix)
        .unwrap_or(full)
        .to_ascii_lowercase()
}

fn optional_id(raw: &str) -> Option<Uuid> {
    Uuid::parse_str(raw).ok()
}

fn transient(err: ApiError) -> HandlerError {
    HandlerError::Transient(anyhow::anyhow!("{err}"))
}

impl Handler for Intake {
    type Event = TicketEvent;

    fn decode(&self, message_type: &str, payload: &[u8]) -> Decoded<TicketEvent> {
        macro_rules! try_as {
            ($ty:ty, |$e:ident| $body:expr) => {
                if let Some(decoded) = decode_as::<$ty>(message_type, payload) {
                    return match decoded {
                        Ok($e) => $body,
                        Err(why) => Decoded::Invalid(why),
                    };
                }
            };
        }
        try_as!(pb::TicketCreated, |e| event(
            e.header,
            e.ticket,
            Fact::Created,
            json!({})
        ));
        try_as!(pb::TicketAssigned, |e| match optional_id(&e.assignee_id) {
            Some(to) => event(
                e.header,
                e.ticket,
                Fact::Assigned { to: Some(to) },
                json!({})
            ),
            None => Decoded::Skip,
        });
        try_as!(pb::TicketStatusChanged, |e| {
            let fact = match e.to() {
                pb::TicketStatus::Resolved => Fact::Resolved,
                pb::TicketStatus::Closed => Fact::Closed,
                _ => return Decoded::Skip,
            };
            event(e.header, e.ticket, fact, json!({}))
        });
        try_as!(pb::MessagePosted, |e| {
            let fact = Fact::Message {
                by_staff: e.author_role() == pb::AuthorRole::Staff,
                internal: e.internal,
            };
            event(e.header, e.ticket, fact, json!({ "excerpt": e.excerpt }))
        });
        try_as!(pb::TicketEscalated, |e| event(
            e.header,
            e.ticket,
            Fact::Escalated,
            json!({ "reason": e.reason })
        ));
        try_as!(pb::TicketOverdue, |e| {
            let due = e
                .due_at
                .as_ref()
                .and_then(helpdesk_kit::clock::from_timestamp)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            event(e.header, e.ticket, Fact::Overdue, json!({ "due_at": due }))
        });
        try_as!(pb::RatingRequested, |e| event(
            e.header,
            e.ticket,
            Fact::RatingRequested {
                reminder: e.reminder > 0
            },
            json!({ "reminder": e.reminder })
        ));
        Decoded::Unknown
    }

    async fn handle(
        &self,
        tx: &mut PgConnection,
        meta: &Meta,
        event: TicketEvent,
    ) -> Result<(), HandlerError> {
        let snapshot = &event.ticket;
        record_ticket(&snapshot.ticket_id, &snapshot.human_id);
        let (Some(ticket_id), Some(user_id)) = (
            optional_id(&snapshot.ticket_id),
            optional_id(&snapshot.user_id),
        ) else {
            return Err(HandlerError::Permanent(anyhow::anyhow!(
                "the snapshot's ticket_id or user_id is not a UUID"
            )));
        };
        let actor = optional_id(&event.header.actor_id);
        let assignee = optional_id(&snapshot.assignee_id);

        // Remember who worked on the ticket: the audience of internal notes.
        match (&event.fact, actor) {
            (Fact::Assigned { to: Some(agent) }, _) => {
                ticket_staff::add(tx, ticket_id, *agent).await?
            }
            (Fact::Message { by_staff: true, .. }, Some(author)) => {
                ticket_staff::add(tx, ticket_id, author).await?
            }
            _ => {}
        }
        let people = TicketPeople {
            user_id,
            assignee_id: assignee,
            staff: match event.fact {
                Fact::Message { internal: true, .. } => ticket_staff::of(tx, ticket_id).await?,
                _ => Vec::new(),
            },
        };
        let all_staff =
            if audience::needs_all_staff(&event.fact, &people, self.audiences.new_ticket) {
                self.directory.active_staff().await.map_err(transient)?
            } else {
                Arc::default()
            };
        let all_staff_ids: Vec<Uuid> = all_staff.iter().map(|c| c.id).collect();
        let groups = Groups {
            new_ticket: self.audiences.new_ticket,
            all_staff: &all_staff_ids,
            triage: &self.audiences.triage,
            escalation: &self.audiences.escalation,
        };
        let recipients = audience::recipients(&event.fact, &people, actor, &groups);
        if recipients.is_empty() {
            return Ok(());
        }

        // Contacts: names for the texts, locales to render in.
        let known: HashMap<Uuid, &Contact> = all_staff.iter().map(|c| (c.id, c)).collect();
        let mut contacts: HashMap<Uuid, Contact> = HashMap::new();
        let wanted = recipients
            .iter()
            .map(|(id, _)| *id)
            .chain([user_id])
            .chain(actor)
            .chain(assignee);
        for id in wanted {
            if contacts.contains_key(&id) {
                continue;
            }
            let contact = match known.get(&id) {
                Some(c) => Some((*c).clone()),
                None => self.directory.contact(id).await.map_err(transient)?,
            };
            if let Some(contact) = contact {
                contacts.insert(id, contact);
            }
        }
        let name = |id: Option<Uuid>| {
            id.and_then(|id| contacts.get(&id))
                .map(|c| c.display_name.clone())
                .unwrap_or_default()
        };
        let link = format!("/support/tickets/{}", snapshot.human_id);
        let mut params = json!({
            "ticket": {
                "id": ticket_id.to_string(),
                "human_id": snapshot.human_id,
                "subject": snapshot.subject,
                "status": name_of(snapshot.status().as_str_name(), "TICKET_STATUS_"),
                "priority": name_of(snapshot.priority().as_str_name(), "TICKET_PRIORITY_"),
            },
            "actor_name": name(actor),
            "user_name": name(Some(user_id)),
            "assignee_name": name(assignee),
            "excerpt": "",
            "reminder": 0,
            "due_at": "",
            "reason": "",
            "link": link,
        });
        if let (Some(params), Some(extra)) = (params.as_object_mut(), event.extra.as_object()) {
            params.extend(extra.clone());
        }

        // Texts, once per kind and locale.
        let mut texts: HashMap<(Kind, String), Text> = HashMap::new();
        let mut items = Vec::with_capacity(recipients.len());
        for (recipient, kind) in &recipients {
            let locale = contacts
                .get(recipient)
                .map(|c| c.locale.clone())
                .unwrap_or_default();
            let text = match texts.get(&(*kind, locale.clone())) {
                Some(text) => text.clone(),
                None => {
                    let text = self
                        .templates
                        .in_app(&locale, *kind, &params)
                        .map_err(|e| HandlerError::Permanent(e.into()))?;
                    texts.insert((*kind, locale), text.clone());
                    text
                }
            };
            items.push(NewNotification {
                id: Uuid::now_v7(),
                recipient_id: *recipient,
                kind: kind.as_str(),
                title: text.title,
                body: text.body,
                declined: 0,
            });
        }

        // Everyone's own choices, one read, before the feed lock is taken.
        let choices = preferences::for_recipients(&mut *tx, &recipients).await?;

        // Deliveries queued where the recipient's preferences allow; the
        // channels they turn off are marked on the notification instead.
        let mut outgoing = Vec::with_capacity(items.len() * 2);
        let none = HashMap::new();
        for (item, (recipient, kind)) in items.iter_mut().zip(&recipients) {
            let own = choices.get(recipient).unwrap_or(&none);
            for channel in Channel::ALL {
                if self.policy.enabled((*kind, channel), own) {
                    outgoing.push(NewDelivery {
                        notification_id: item.id,
                        channel: channel.as_str(),
                    });
                } else {
                    item.declined |= channel.bit();
                }
            }
        }
        let stored = notifications::store(
            tx,
            &EventPart {
                event_id: meta.event_id,
                ticket_id,
                human_id: &snapshot.human_id,
                link: &link,
                params: &params,
                create_time: self.clock.now(),
            },
            &items,
            &outgoing,
        )
        .await?;
        let Some(queued) = stored else {
            return Ok(());
        };
        for item in &items {
            self.sender.remember(item.id);
        }
        tracing::info!(
            event_id = %meta.event_id,
            notifications = items.len(),
            queued,
            "notifications stored"
        );
        if queued > 0 {
            // Before commit: the sender finds nothing until then and looks
            // again at its next poll; usually the commit wins the race.
            self.sender.wake();
        }
        Ok(())
    }
}
