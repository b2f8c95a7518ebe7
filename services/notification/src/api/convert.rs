//! Rows and domain values to protobuf and back.

use helpdesk_kit::clock::to_timestamp;
use helpdesk_proto::support::v1 as pb;

use crate::{
    domain::{Channel, Kind},
    storage::{deliveries::TicketDelivery, notifications::FeedItem},
};

pub fn kind_to_pb(kind: Kind) -> pb::NotificationKind {
    use pb::NotificationKind as K;
    match kind {
        Kind::TicketCreated => K::TicketCreated,
        Kind::NewTicket => K::NewTicket,
        Kind::TicketAssigned => K::TicketAssigned,
        Kind::AgentAssigned => K::AgentAssigned,
        Kind::StaffReply => K::StaffReply,
        Kind::UserReply => K::UserReply,
        Kind::InternalNote => K::InternalNote,
        Kind::TicketResolved => K::TicketResolved,
        Kind::TicketClosed => K::TicketClosed,
        Kind::RatingRequested => K::RatingRequested,
        Kind::RatingReminder => K::RatingReminder,
        Kind::TicketOverdue => K::TicketOverdue,
        Kind::TicketEscalated => K::TicketEscalated,
    }
}

pub fn kind_from_pb(kind: pb::NotificationKind) -> Option<Kind> {
    Kind::ALL.iter().copied().find(|k| kind_to_pb(*k) == kind)
}

pub fn channel_to_pb(channel: Channel) -> pb::Channel {
    match channel {
        Channel::Email => pb::Channel::Email,
        Channel::Push => pb::Channel::Push,
    }
}

pub fn channel_from_pb(channel: pb::Channel) -> Option<Channel> {
    match channel {
        pb::Channel::Email => Some(Channel::Email),
        pb::Channel::Push => Some(Channel::Push),
        pb::Channel::InApp | pb::Channel::Unspecified => None,
    }
}

fn stored_kind(name: &str) -> i32 {
    name.parse::<Kind>()
        .map(kind_to_pb)
        .unwrap_or(pb::NotificationKind::Unspecified) as i32
}

/// A feed cursor: the notification's position, opaque to callers.
pub fn cursor(seq: i64) -> String {
    seq.to_string()
}

/// Parses a cursor a stream was given; empty means "from now".
pub fn parse_cursor(raw: &str) -> Result<Option<i64>, String> {
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .map(Some)
        .ok_or_else(|| "is not a cursor this service issued".into())
}

pub fn notification(item: &FeedItem) -> pb::Notification {
    pb::Notification {
        id: item.id.to_string(),
        kind: stored_kind(&item.kind),
        ticket_id: item.ticket_id.to_string(),
        human_id: item.human_id.clone(),
        title: item.title.clone(),
        body: item.body.clone(),
        link: item.link.clone(),
        create_time: Some(to_timestamp(item.create_time)),
        read_time: item.read_time.map(to_timestamp),
        cursor: cursor(item.seq),
    }
}

fn state(name: &str) -> pb::DeliveryState {
    match name {
        "queued" => pb::DeliveryState::Queued,
        "sent" => pb::DeliveryState::Sent,
        "failed" => pb::DeliveryState::Failed,
        "skipped" => pb::DeliveryState::Skipped,
        _ => pb::DeliveryState::Unspecified,
    }
}

/// A ticket delivery row: the in-app entry (no channel row) or one channel.
pub fn delivery(row: &TicketDelivery, in_app: bool) -> pb::Delivery {
    let base = pb::Delivery {
        notification_id: row.notification_id.to_string(),
        recipient_id: row.recipient_id.to_string(),
        kind: stored_kind(&row.kind),
        create_time: Some(to_timestamp(row.notified_at)),
        ..Default::default()
    };
    if in_app {
        return pb::Delivery {
            channel: pb::Channel::InApp as i32,
            state: pb::DeliveryState::Sent as i32,
            sent_time: Some(to_timestamp(row.notified_at)),
            read_time: row.read_time.map(to_timestamp),
            ..base
        };
    }
    pb::Delivery {
        channel: row
            .channel
            .as_deref()
            .and_then(|c| c.parse().ok())
            .map(channel_to_pb)
            .unwrap_or(pb::Channel::Unspecified) as i32,
        state: row.state.as_deref().map(state).unwrap_or_default() as i32,
        reason: row.reason.clone().unwrap_or_default(),
        attempts: row.attempts.unwrap_or(0),
        last_error: row.last_error.clone().unwrap_or_default(),
        sent_time: row.sent_time.map(to_timestamp),
        next_attempt_time: row
            .next_attempt_at
            .filter(|_| row.state.as_deref() == Some("queued"))
            .map(to_timestamp),
        ..base
    }
}
