//! The ticket service, as the assignment service calls it: AssignTicket,
//! unassigning through UpdateTicket, and listing open tickets (and
//! confirming single ones with GetTicket) for reconciliation. Calls carry a
//! service token (subject `SERVICE_IDENTITY`) and a deadline; the ticket
//! service's answers are translated into [`Outcome`]s the engine decides
//! on, and anything that may pass with time into UNAVAILABLE (the caller
//! rolls back and retries).

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
use prost::Message;
use tonic::{Code, Status, service::interceptor::InterceptedService, transport::Channel};
use tonic_types::StatusExt;
use uuid::Uuid;

use crate::{api::convert::priority_from_pb, domain::Priority};

/// The default subject of the tokens we present (`SERVICE_IDENTITY`); the
/// ticket service records it as the actor of the changes we make, which is
/// how we recognise our own events.
pub const SERVICE_SUBJECT: &str = "assignment-service";

/// How a change the ticket service was asked for turned out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done (or already so); the ticket as the answer describes it.
    Done(Answer),
    /// The ticket is closed: it takes no more changes.
    Closed,
    /// No such ticket.
    Missing,
    /// The ticket service refused the assignee (not active staff): a
    /// field violation on `assignee_id`.
    AssigneeRejected(String),
    /// The ticket service refused the request for another reason (a field
    /// violation on anything but `assignee_id`): retrying cannot help.
    Invalid(String),
}

/// What the ticket service answered a change with (empty for an unassign,
/// whose answer the engine does not use).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// The ticket still counts toward a workload (not resolved or closed).
    pub open: bool,
    /// When the ticket last changed (`update_time`).
    pub at: Option<DateTime<Utc>>,
}

/// One ticket as GetTicket shows it now (reconciliation's confirmation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Current {
    /// Open, in progress or waiting for the user.
    Open,
    /// Resolved or closed.
    Done,
    /// NOT_FOUND.
    Missing,
}

/// One open ticket, as reconciliation needs it.
#[derive(Debug, Clone)]
pub struct OpenTicket {
    pub id: Uuid,
    pub human_id: String,
    pub category_id: String,
    pub priority: Priority,
    pub created_at: DateTime<Utc>,
    pub assignee: Option<Uuid>,
}

/// A cheap-to-clone client (one HTTP/2 channel underneath).
#[derive(Clone)]
pub struct TicketClient {
    inner: TicketServiceClient<InterceptedService<Channel, ServiceToken>>,
    timeout: Duration,
}

impl TicketClient {
    /// `identity` is the subject of locally minted tokens (ignored when the
    /// token comes from `SERVICE_TOKEN_FILE`).
    pub fn new(
        addr: &str,
        timeout: Duration,
        auth: &AuthConfig,
        identity: &'static str,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            inner: TicketServiceClient::with_interceptor(
                channel(addr, timeout)?,
                ServiceToken::new(auth, identity),
            ),
            timeout,
        })
    }

    /// The deadline of each call.
    pub fn timeout(&self) -> Duration {
        self.timeout
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

    /// Assigns each `(ticket, agent, request_id)` in one BatchAssignTickets
    /// call (one transaction in the ticket service), each answered as
    /// [`TicketClient::assign`] would answer it. `Err` when the call as a
    /// whole failed: nothing was applied, and the status says why (see
    /// [`batch_refused`]).
    pub async fn assign_all(
        &self,
        moves: &[(Uuid, Uuid, Uuid)],
    ) -> Result<Vec<ApiResult<Outcome>>, Status> {
        let request = pb::BatchAssignTicketsRequest {
            requests: moves
                .iter()
                .map(|(ticket, agent, request_id)| pb::AssignTicketRequest {
                    ticket_id: ticket.to_string(),
                    assignee_id: agent.to_string(),
                    request_id: request_id.to_string(),
                })
                .collect(),
        };
        let results = self
            .inner
            .clone()
            .batch_assign_tickets(request)
            .await?
            .into_inner()
            .results;
        if results.len() != moves.len() {
            return Err(Status::internal(format!(
                "BatchAssignTickets answered {} results for {} requests",
                results.len(),
                moves.len()
            )));
        }
        Ok(results.into_iter().map(item_outcome).collect())
    }

    /// Whether `ticket` still counts, as the ticket service says now.
    pub async fn current(&self, ticket: Uuid) -> ApiResult<Current> {
        let request = pb::GetTicketRequest {
            id: ticket.to_string(),
        };
        match self.inner.clone().get_ticket(request).await {
            Ok(t) => Ok(if counts(t.get_ref().status) {
                Current::Open
            } else {
                Current::Done
            }),
            Err(s) if s.code() == Code::NotFound => Ok(Current::Missing),
            Err(s) => Err(unavailable("ticket", &s)),
        }
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
    /// waiting for the user), `page_size` at a time.
    pub fn open_tickets(&self, page_size: i32) -> OpenTickets {
        OpenTickets {
            client: self.clone(),
            page_size,
            page_token: String::new(),
            done: false,
        }
    }
}

/// The open tickets, one page per [`OpenTickets::next`]: memory stays one
/// page whatever the number of open tickets.
pub struct OpenTickets {
    client: TicketClient,
    page_size: i32,
    page_token: String,
    /// The last page was served.
    done: bool,
}

impl OpenTickets {
    /// The next page (possibly empty); `None` once everything was listed.
    pub async fn next(&mut self) -> ApiResult<Option<Vec<OpenTicket>>> {
        if self.done {
            return Ok(None);
        }
        // `open`: every status that counts toward a workload, in one listing.
        let request = pb::ListTicketsRequest {
            page_size: self.page_size,
            page_token: std::mem::take(&mut self.page_token),
            open: true,
            ..pb::ListTicketsRequest::default()
        };
        let page = self
            .client
            .inner
            .clone()
            .list_tickets(request)
            .await
            .map_err(|s| unavailable("ticket", &s))?
            .into_inner();
        if page.next_page_token.is_empty() {
            self.done = true;
        } else {
            self.page_token = page.next_page_token;
        }
        Ok(Some(page.tickets.iter().filter_map(open_ticket).collect()))
    }
}

/// Whether a ticket in `status` counts toward a workload.
pub fn counts(status: i32) -> bool {
    !matches!(
        TicketStatus::try_from(status),
        Ok(TicketStatus::Resolved | TicketStatus::Closed)
    )
}

fn outcome(result: Result<tonic::Response<pb::Ticket>, Status>) -> ApiResult<Outcome> {
    match result {
        Ok(t) => Ok(Outcome::Done(Answer {
            open: counts(t.get_ref().status),
            at: t.get_ref().update_time.as_ref().and_then(from_timestamp),
        })),
        Err(s) => match s.code() {
            Code::FailedPrecondition => Ok(Outcome::Closed),
            Code::NotFound => Ok(Outcome::Missing),
            Code::InvalidArgument if names_assignee(&s) => {
                Ok(Outcome::AssigneeRejected(s.message().to_owned()))
            }
            Code::InvalidArgument => Ok(Outcome::Invalid(s.message().to_owned())),
            _ => Err(unavailable("ticket", &s)),
        },
    }
}

/// One item of a BatchAssignTickets answer, read exactly as the answer of
/// the single AssignTicket it stands for: its error is rebuilt into the
/// status that call would have failed with (details included).
fn item_outcome(item: pb::BatchAssignTicketsResult) -> ApiResult<Outcome> {
    use pb::batch_assign_tickets_result::Result as Item;
    match item.result {
        Some(Item::Ticket(ticket)) => outcome(Ok(tonic::Response::new(ticket))),
        Some(Item::Error(error)) => {
            let status = Status::with_details(
                Code::from(error.code),
                error.message.clone(),
                error.encode_to_vec().into(),
            );
            outcome(Err(status))
        }
        None => outcome(Err(Status::internal("empty BatchAssignTickets result"))),
    }
}

/// Whether a BatchAssignTickets call failed because this ticket service
/// cannot take the batch at all (an older version without the method, or a
/// batch it refuses as a whole): then the moves go one by one instead.
/// Anything else (UNAVAILABLE, a deadline, ABORTED) is a failed attempt of
/// every move in it, retried later.
pub fn batch_refused(status: &Status) -> bool {
    matches!(status.code(), Code::Unimplemented | Code::InvalidArgument)
}

/// Whether an INVALID_ARGUMENT blames the assignee: only then is the agent
/// at fault (a malformed ticket or request id must not cost an agent their
/// place on the roster).
fn names_assignee(s: &Status) -> bool {
    s.get_error_details().bad_request().is_some_and(|b| {
        b.field_violations
            .iter()
            .any(|v| v.field == "assignee_id" || v.field == "ticket.assignee_id")
    })
}

/// A listed ticket; `None` (skipped, logged) when the ticket service sent
/// something unparsable, which would be its bug, not a reason to stop.
fn open_ticket(t: &pb::Ticket) -> Option<OpenTicket> {
    let parsed = (|| {
        Some(OpenTicket {
            id: Uuid::parse_str(&t.id).ok()?,
            human_id: t.human_id.clone(),
            category_id: t.category_id.clone(),
            priority: priority_from_pb(t.priority)?,
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

#[cfg(test)]
mod tests {
    use tonic_types::ErrorDetails;

    use super::*;

    fn invalid(field: &str) -> Result<tonic::Response<pb::Ticket>, Status> {
        Err(Status::with_error_details(
            Code::InvalidArgument,
            "invalid request",
            ErrorDetails::with_bad_request_violation(field, "is wrong"),
        ))
    }

    #[test]
    fn only_a_violation_on_the_assignee_rejects_the_agent() {
        assert!(matches!(
            outcome(invalid("assignee_id")),
            Ok(Outcome::AssigneeRejected(_))
        ));
        assert!(matches!(
            outcome(invalid("ticket.assignee_id")),
            Ok(Outcome::AssigneeRejected(_))
        ));
        assert!(matches!(
            outcome(invalid("ticket_id")),
            Ok(Outcome::Invalid(_))
        ));
        assert!(matches!(
            outcome(Err(Status::invalid_argument("no details"))),
            Ok(Outcome::Invalid(_))
        ));
        assert!(outcome(Err(Status::unavailable("down"))).is_err());
    }

    /// A batch item's error as the ticket service sends it: the status
    /// (details included) a failed single AssignTicket would carry.
    fn item_error(status: Status) -> pb::BatchAssignTicketsResult {
        let error = if status.details().is_empty() {
            helpdesk_proto::google::rpc::Status {
                code: status.code() as i32,
                message: status.message().to_owned(),
                details: Vec::new(),
            }
        } else {
            helpdesk_proto::google::rpc::Status::decode(status.details()).unwrap()
        };
        pb::BatchAssignTicketsResult {
            result: Some(pb::batch_assign_tickets_result::Result::Error(error)),
        }
    }

    #[test]
    fn a_batch_item_is_read_as_the_single_call_it_stands_for() {
        let ticket = pb::Ticket {
            status: TicketStatus::InProgress.into(),
            ..pb::Ticket::default()
        };
        assert!(matches!(
            item_outcome(pb::BatchAssignTicketsResult {
                result: Some(pb::batch_assign_tickets_result::Result::Ticket(ticket)),
            }),
            Ok(Outcome::Done(Answer { open: true, .. }))
        ));
        let rejected = item_outcome(item_error(invalid("assignee_id").unwrap_err()));
        assert!(matches!(rejected, Ok(Outcome::AssigneeRejected(_))));
        let invalid_ticket = item_outcome(item_error(invalid("ticket_id").unwrap_err()));
        assert!(matches!(invalid_ticket, Ok(Outcome::Invalid(_))));
        assert!(matches!(
            item_outcome(item_error(Status::failed_precondition("closed"))),
            Ok(Outcome::Closed)
        ));
        assert!(matches!(
            item_outcome(item_error(Status::not_found("ticket"))),
            Ok(Outcome::Missing)
        ));
        assert!(item_outcome(item_error(Status::unavailable("accounts down"))).is_err());
        assert!(item_outcome(pb::BatchAssignTicketsResult { result: None }).is_err());
    }
}
