//! The ticket service, as the assignment service calls it: AssignTicket,
//! unassigning through UpdateTicket, and listing open tickets for
//! reconciliation. Calls carry a service token (subject
//! [`SERVICE_SUBJECT`]) and a deadline; the ticket service's answers are
//! translated into [`Outcome`]s the engine decides on, and anything that
//! may pass with time into UNAVAILABLE (the caller rolls back and retries).

use std::time::Duration;

use chrono::{DateTime, Utc};
use helpdesk_kit::{
    auth::AuthConfig,
    client::{ServiceToken, channel, unavailable},
    clock::from_timestamp,
    error::ApiResult,
};
use helpdesk_proto::support::v1::{
    self as pb, TicketStatus, ticket_service_client::TicketServiceClient,
};
use tonic::{Code, Status, service::interceptor::InterceptedService, transport::Channel};
use uuid::Uuid;

/// The subject of the tokens we present; the ticket service records it as
/// the actor of the changes we make, which is how we recognise our own events.
pub const SERVICE_SUBJECT: &str = "assignment-service";

/// Page size of the reconciliation listing (the ticket service's maximum).
const PAGE_SIZE: i32 = 100;

/// How a change the ticket service was asked for turned out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done (or already so).
    Done,
    /// The ticket is closed: it takes no more changes.
    Closed,
    /// No such ticket.
    Missing,
    /// The ticket service refused the assignee (not active staff).
    AssigneeRejected(String),
}

/// One open ticket, as reconciliation needs it.
#[derive(Debug, Clone)]
pub struct OpenTicket {
    pub id: Uuid,
    pub human_id: String,
    pub category_id: String,
    pub priority: i16,
    pub created_at: DateTime<Utc>,
    pub assignee: Option<Uuid>,
}

/// A cheap-to-clone client (one HTTP/2 channel underneath).
#[derive(Clone)]
pub struct TicketClient {
    inner: TicketServiceClient<InterceptedService<Channel, ServiceToken>>,
}

impl TicketClient {
    pub fn new(addr: &str, timeout: Duration, auth: &AuthConfig) -> anyhow::Result<Self> {
        Ok(Self {
            inner: TicketServiceClient::with_interceptor(
                channel(addr, timeout)?,
                ServiceToken::new(auth, SERVICE_SUBJECT),
            ),
        })
    }

    /// Assigns `ticket` to `agent`. Idempotent: the same `request_id` is
    /// answered from the ticket service's record, never applied twice.
    pub async fn assign(&self, ticket: Uuid, agent: Uuid, request_id: Uuid) -> ApiResult<Outcome> {
        let request = pb::AssignTicketRequest {
            ticket_id: ticket.to_string(),
            assignee_id: agent.to_string(),
            request_id: request_id.to_string(),
        };
        outcome(self.inner.clone().assign_ticket(request).await)
    }

    /// Leaves `ticket` without an assignee.
    pub async fn unassign(&self, ticket: Uuid, request_id: Uuid) -> ApiResult<Outcome> {
        let request = pb::UpdateTicketRequest {
            ticket: Some(pb::Ticket {
                id: ticket.to_string(),
                assignee_id: String::new(),
                ..pb::Ticket::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["assignee_id".to_owned()],
            }),
            request_id: request_id.to_string(),
        };
        outcome(self.inner.clone().update_ticket(request).await)
    }

    /// Every ticket that counts toward a workload (open, in progress,
    /// waiting for the user), page by page.
    pub async fn open_tickets(&self) -> ApiResult<Vec<OpenTicket>> {
        let mut out = Vec::new();
        for status in [
            TicketStatus::Open,
            TicketStatus::InProgress,
            TicketStatus::WaitingUser,
        ] {
            let mut page_token = String::new();
            loop {
                let request = pb::ListTicketsRequest {
                    page_size: PAGE_SIZE,
                    page_token: page_token.clone(),
                    status: status.into(),
                    ..pb::ListTicketsRequest::default()
                };
                let page = self
                    .inner
                    .clone()
                    .list_tickets(request)
                    .await
                    .map_err(|s| unavailable("ticket", &s))?
                    .into_inner();
                out.extend(page.tickets.iter().filter_map(open_ticket));
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
        }
        Ok(out)
    }
}

fn outcome<T>(result: Result<tonic::Response<T>, Status>) -> ApiResult<Outcome> {
    match result {
        Ok(_) => Ok(Outcome::Done),
        Err(s) => match s.code() {
            Code::FailedPrecondition => Ok(Outcome::Closed),
            Code::NotFound => Ok(Outcome::Missing),
            Code::InvalidArgument => Ok(Outcome::AssigneeRejected(s.message().to_owned())),
            _ => Err(unavailable("ticket", &s)),
        },
    }
}

/// A listed ticket; `None` (skipped, logged) when the ticket service sent
/// something unparsable, which would be its bug, not a reason to stop.
fn open_ticket(t: &pb::Ticket) -> Option<OpenTicket> {
    let parsed = (|| {
        Some(OpenTicket {
            id: Uuid::parse_str(&t.id).ok()?,
            human_id: t.human_id.clone(),
            category_id: t.category_id.clone(),
            priority: i16::try_from(t.priority).ok()?,
            created_at: from_timestamp(t.create_time.as_ref()?)?,
            assignee: match t.assignee_id.as_str() {
                "" => None,
                raw => Some(Uuid::parse_str(raw).ok()?),
            },
        })
    })();
    if parsed.is_none() {
        tracing::warn!(ticket = %t.id, "skipping a listed ticket that does not parse");
    }
    parsed
}
