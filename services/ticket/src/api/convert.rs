//! Domain ↔ protobuf conversions.

use helpdesk_kit::clock::to_timestamp;
use helpdesk_proto::support::v1 as pb;

use crate::domain::{
    Category, Message, Priority, Status, Ticket, attachment::Attachment, ticket::AuthorRole,
};

pub fn status_to_pb(s: Status) -> pb::TicketStatus {
    match s {
        Status::Open => pb::TicketStatus::Open,
        Status::InProgress => pb::TicketStatus::InProgress,
        Status::WaitingUser => pb::TicketStatus::WaitingUser,
        Status::Resolved => pb::TicketStatus::Resolved,
        Status::Closed => pb::TicketStatus::Closed,
    }
}

/// A wire status; `Err` for UNSPECIFIED or an unknown number.
pub fn status_from_pb(raw: i32) -> Result<Status, String> {
    match pb::TicketStatus::try_from(raw) {
        Ok(pb::TicketStatus::Open) => Ok(Status::Open),
        Ok(pb::TicketStatus::InProgress) => Ok(Status::InProgress),
        Ok(pb::TicketStatus::WaitingUser) => Ok(Status::WaitingUser),
        Ok(pb::TicketStatus::Resolved) => Ok(Status::Resolved),
        Ok(pb::TicketStatus::Closed) => Ok(Status::Closed),
        Ok(pb::TicketStatus::Unspecified) => Err("must be specified".into()),
        Err(_) => Err(format!("unknown status {raw}")),
    }
}

pub fn priority_to_pb(p: Priority) -> pb::TicketPriority {
    match p {
        Priority::Low => pb::TicketPriority::Low,
        Priority::Medium => pb::TicketPriority::Medium,
        Priority::High => pb::TicketPriority::High,
        Priority::Urgent => pb::TicketPriority::Urgent,
    }
}

/// A wire priority; `Err` for UNSPECIFIED or an unknown number.
pub fn priority_from_pb(raw: i32) -> Result<Priority, String> {
    match pb::TicketPriority::try_from(raw) {
        Ok(pb::TicketPriority::Low) => Ok(Priority::Low),
        Ok(pb::TicketPriority::Medium) => Ok(Priority::Medium),
        Ok(pb::TicketPriority::High) => Ok(Priority::High),
        Ok(pb::TicketPriority::Urgent) => Ok(Priority::Urgent),
        Ok(pb::TicketPriority::Unspecified) => Err("must be specified".into()),
        Err(_) => Err(format!("unknown priority {raw}")),
    }
}

/// An optional filter: UNSPECIFIED (0) means "any".
pub fn optional<T>(raw: i32, parse: fn(i32) -> Result<T, String>) -> Result<Option<T>, String> {
    if raw == 0 {
        Ok(None)
    } else {
        parse(raw).map(Some)
    }
}

pub fn author_role_to_pb(r: AuthorRole) -> pb::AuthorRole {
    match r {
        AuthorRole::User => pb::AuthorRole::User,
        AuthorRole::Staff => pb::AuthorRole::Staff,
    }
}

/// An optional value on the wire: empty when absent.
pub fn or_empty(id: Option<impl ToString>) -> String {
    id.map(|u| u.to_string()).unwrap_or_default()
}

/// 1-5 once rated, 0 before.
pub fn rating(t: &Ticket) -> i32 {
    t.rating.map_or(0, |r| i32::from(r.stars()))
}

pub fn ticket(t: &Ticket) -> pb::Ticket {
    pb::Ticket {
        id: t.id.to_string(),
        human_id: t.human_id.to_string(),
        user_id: t.user_id.to_string(),
        ride_id: or_empty(t.ride_id),
        category_id: t.category_id.to_string(),
        subject: t.subject.to_string(),
        description: t.description.to_string(),
        priority: priority_to_pb(t.priority).into(),
        status: status_to_pb(t.status).into(),
        assignee_id: or_empty(t.assignee_id),
        rating: rating(t),
        rating_feedback: or_empty(t.rating_feedback.as_ref()),
        first_response_at: t.first_response_at.map(to_timestamp),
        resolved_at: t.resolved_at.map(to_timestamp),
        closed_at: t.closed_at.map(to_timestamp),
        rated_at: t.rated_at.map(to_timestamp),
        create_time: Some(to_timestamp(t.created_at)),
        update_time: Some(to_timestamp(t.updated_at)),
        etag: t.version.to_string(),
    }
}

pub fn message(m: &Message) -> pb::TicketMessage {
    pb::TicketMessage {
        id: m.id.to_string(),
        ticket_id: m.ticket_id.to_string(),
        author_id: m.author_id.to_string(),
        author_role: author_role_to_pb(m.author_role).into(),
        body: m.body.to_string(),
        internal: m.internal,
        create_time: Some(to_timestamp(m.created_at)),
    }
}

pub fn attachment(a: &Attachment) -> pb::Attachment {
    pb::Attachment {
        id: a.id.to_string(),
        ticket_id: a.ticket_id.to_string(),
        message_id: a.message_id.map(|m| m.to_string()).unwrap_or_default(),
        file_name: a.file_name.to_string(),
        content_type: a.content_type.clone(),
        size_bytes: a.size_bytes,
        sha256: a.sha256_hex(),
        uploader_id: a.uploader_id.to_string(),
        internal: a.internal,
        create_time: Some(to_timestamp(a.created_at)),
    }
}

/// How events name a file.
pub fn attached_file(a: &Attachment) -> pb::AttachedFile {
    pb::AttachedFile {
        id: a.id.to_string(),
        file_name: a.file_name.to_string(),
        content_type: a.content_type.clone(),
        size_bytes: a.size_bytes,
    }
}

pub fn snapshot(t: &Ticket) -> pb::TicketSnapshot {
    pb::TicketSnapshot {
        ticket_id: t.id.to_string(),
        human_id: t.human_id.to_string(),
        user_id: t.user_id.to_string(),
        assignee_id: or_empty(t.assignee_id),
        category_id: t.category_id.to_string(),
        priority: priority_to_pb(t.priority).into(),
        status: status_to_pb(t.status).into(),
        subject: t.subject.to_string(),
        ride_id: or_empty(t.ride_id),
        create_time: Some(to_timestamp(t.created_at)),
        version: t.version,
    }
}

pub fn category(c: Category) -> pb::Category {
    pb::Category {
        id: c.id.to_string(),
        name: c.name.to_string(),
        description: or_empty(c.description),
        active: Some(c.active),
        sort_order: c.sort_order,
    }
}
