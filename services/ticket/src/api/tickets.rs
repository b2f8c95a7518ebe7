//! `support.v1.TicketService`.
//!
//! Who may do what (docs/architecture.md): users act on their own tickets
//! only, and another user's ticket is NOT_FOUND, never PERMISSION_DENIED;
//! staff and admins act on all; services create, read, edit and assign.

use helpdesk_events::outbox::Waker;
use helpdesk_kit::{
    auth::{Caller, Role},
    clock::{SharedClock, from_timestamp},
    error::{ApiError, ApiResult, Violations},
    idempotency::{self, Key, parse_request_id},
    page_token::{self, Cursor},
};
use helpdesk_proto::support::v1::{self as pb, ticket_service_server::TicketService};
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{
    convert::{self, optional, priority_from_pb, status_from_pb},
    events::Context,
};
use crate::{
    domain::{
        Change, Message, Priority, Status as TicketStatus, Ticket,
        fields::{self, SUBJECT_MAX, TEXT_MAX},
        ticket::{AuthorRole, RuleError},
        ticket_number,
    },
    platform::Platform,
    storage::{
        messages,
        tickets::{self, ListFilter, TicketKey},
    },
};

const DEFAULT_CATEGORY: &str = "other";
const TICKETS_PAGE: (i64, i64) = (20, 100);
const MESSAGES_PAGE: (i64, i64) = (50, 100);

pub struct TicketApi {
    pool: PgPool,
    platform: Platform,
    clock: SharedClock,
    /// Every write enqueues events: commit through it to wake the relay.
    outbox: Waker,
}

impl TicketApi {
    pub fn new(pool: PgPool, platform: Platform, clock: SharedClock, outbox: Waker) -> Self {
        Self {
            pool,
            platform,
            clock,
            outbox,
        }
    }
}

/// A ticket named by UUID or by human id.
fn ticket_key(raw: &str) -> Result<TicketKey, String> {
    if raw.is_empty() {
        return Err("is required".into());
    }
    if let Ok(id) = Uuid::parse_str(raw) {
        return Ok(TicketKey::Id(id));
    }
    if ticket_number::looks_like(raw) {
        return Ok(TicketKey::HumanId(raw.to_owned()));
    }
    Err("must be a ticket UUID or a TKT- id".into())
}

/// Whether `caller` may see `ticket` at all.
fn visible(caller: &Caller, ticket: &Ticket) -> bool {
    caller.is_staff() || caller.is_service() || caller.account_id() == Some(ticket.user_id)
}

/// Staff, admins and our own services see internal notes; users and other
/// teams' services never do.
fn sees_internal(caller: &Caller) -> bool {
    caller.is_staff() || caller.is_trusted_service()
}

fn rule(err: RuleError) -> ApiError {
    ApiError::precondition(err.to_string())
}

fn staff_or_service(caller: &Caller, what: &str) -> ApiResult<()> {
    if caller.is_staff() || caller.is_trusted_service() {
        Ok(())
    } else {
        Err(ApiError::denied(format!("only staff may {what}")))
    }
}

fn key_for(
    caller: &Caller,
    method: &'static str,
    request_id: Option<Uuid>,
    request: &impl prost::Message,
) -> Option<Key> {
    request_id.map(|id| Key::new(&caller.subject(), method, id, request))
}

/// A fingerprint binding a page token to the caller and the request's filters.
fn list_fingerprint(caller: &Caller, filters: &impl prost::Message) -> u64 {
    page_token::fingerprint(&[caller.subject().as_bytes(), &filters.encode_to_vec()])
}

fn next_page<T>(
    items: &mut Vec<T>,
    limit: i64,
    fingerprint: u64,
    cursor: impl Fn(&T) -> Cursor,
) -> String {
    if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items
            .last()
            .map(|last| page_token::encode(cursor(last), fingerprint))
            .unwrap_or_default()
    } else {
        String::new()
    }
}

/// What an edit (UpdateTicket or AssignTicket) asks for, validated.
struct Edit {
    key: TicketKey,
    change: Change,
    etag: Option<i64>,
    idempotency: Option<Key>,
}

impl TicketApi {
    async fn create(&self, caller: &Caller, req: pb::CreateTicketRequest) -> ApiResult<pb::Ticket> {
        let mut v = Violations::default();
        let subject = v.take("subject", fields::text(&req.subject, SUBJECT_MAX));
        let description = v.take("description", fields::text(&req.description, TEXT_MAX));
        let ride_id = v
            .take("ride_id", fields::optional_uuid(&req.ride_id))
            .flatten();
        let category_id = if req.category_id.is_empty() {
            Some(DEFAULT_CATEGORY.to_owned())
        } else {
            v.take("category_id", fields::category_id(&req.category_id))
        };
        // UNSPECIFIED means "the default" here; unknown numbers are rejected.
        let priority = v
            .take("priority", optional(req.priority, priority_from_pb))
            .map(|p| p.unwrap_or(Priority::Medium));
        let request_id = v
            .take("request_id", parse_request_id(&req.request_id))
            .flatten();
        let user_id = match caller.role() {
            Role::User => {
                let own = caller
                    .account_id()
                    .ok_or_else(|| ApiError::denied("no account"))?;
                match v.take("user_id", fields::optional_uuid(&req.user_id)) {
                    Some(Some(id)) if id != own => {
                        return Err(ApiError::denied("users create tickets for themselves only"));
                    }
                    _ => Some(own),
                }
            }
            _ => v.take("user_id", fields::uuid(&req.user_id)),
        };
        v.into_result()?;
        let (Some(subject), Some(description), Some(category_id), Some(priority), Some(user_id)) =
            (subject, description, category_id, priority, user_id)
        else {
            unreachable!("violations were empty, so every field parsed");
        };

        let key = key_for(caller, "CreateTicket", request_id, &req);
        if let Err(error) = self.check_references(caller, user_id, ride_id).await {
            return self.replay_or(key.as_ref(), error).await;
        }

        let now = self.clock.now();
        let mut tx = self.pool.begin().await?;
        if let Some(done) = idempotency::claim_opt(&mut tx, key.as_ref()).await? {
            return Ok(done);
        }
        let number = tickets::next_number(&mut tx).await?;
        let ticket = Ticket {
            id: Uuid::now_v7(),
            human_id: ticket_number::format(u64::try_from(number).map_err(ApiError::internal)?),
            user_id,
            ride_id,
            category_id,
            subject,
            description,
            priority,
            status: TicketStatus::Open,
            assignee_id: None,
            rating: None,
            rating_feedback: None,
            first_response_at: None,
            resolved_at: None,
            closed_at: None,
            rated_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        if !tickets::insert(&mut tx, &ticket, number).await? {
            return Err(ApiError::invalid("category_id", "no such active category"));
        }
        Context { caller, now }.created(&mut tx, &ticket).await?;
        let response = convert::ticket(&ticket);
        idempotency::complete_opt(&mut tx, key.as_ref(), &response).await?;
        self.outbox.commit(tx).await?;
        tracing::info!(ticket = %ticket.human_id, "ticket created");
        Ok(response)
    }

    /// Validates the foreign references of a new ticket: both calls at
    /// once, before any database connection is taken.
    async fn check_references(
        &self,
        caller: &Caller,
        user_id: Uuid,
        ride_id: Option<Uuid>,
    ) -> ApiResult<()> {
        let ride_lookup = async {
            match ride_id {
                Some(id) => self.platform.ride(id).await,
                None => Ok(None),
            }
        };
        let (user, ride) = tokio::join!(self.platform.user(user_id), ride_lookup);
        let (user, ride) = (user?, ride?);
        let mut v = Violations::default();
        match user {
            None => v.add("user_id", "no such account"),
            Some(u) if !u.active => v.add("user_id", "account is deactivated"),
            Some(_) => {}
        }
        if ride_id.is_some() {
            let own_ride = ride
                .as_ref()
                .is_some_and(|r| r.rider_id == user_id.to_string());
            // Users learn nothing about other people's rides.
            if ride.is_none() || (matches!(caller, Caller::User(_)) && !own_ride) {
                v.add("ride_id", "no such ride for this user");
            }
        }
        v.into_result()
    }

    /// A request that failed before its transaction may be the retry of one
    /// that succeeded: answer that (even while a dependency is down, or the
    /// account changed since); otherwise report `error`. Checked only on
    /// failure, so the usual path costs no extra query.
    async fn replay_or<R: prost::Message + Default>(
        &self,
        key: Option<&Key>,
        error: ApiError,
    ) -> ApiResult<R> {
        if let Some(key) = key
            && let Some(done) = idempotency::replayed(&self.pool, key).await?
        {
            return Ok(done);
        }
        Err(error)
    }

    async fn get(&self, caller: &Caller, req: pb::GetTicketRequest) -> ApiResult<pb::Ticket> {
        let key = ticket_key(&req.id).map_err(|why| ApiError::invalid("id", why))?;
        match tickets::find(&self.pool, &key).await? {
            Some(t) if visible(caller, &t) => Ok(convert::ticket(&t)),
            _ => Err(ApiError::not_found(format!("ticket {}", req.id))),
        }
    }

    async fn list(
        &self,
        caller: &Caller,
        req: pb::ListTicketsRequest,
    ) -> ApiResult<pb::ListTicketsResponse> {
        let mut v = Violations::default();
        let limit = v.take(
            "page_size",
            fields::page_size(req.page_size, TICKETS_PAGE.0, TICKETS_PAGE.1),
        );
        let filter = ListFilter {
            user_id: v
                .take("user_id", fields::optional_uuid(&req.user_id))
                .flatten(),
            status: v
                .take("status", optional(req.status, status_from_pb))
                .flatten(),
            priority: v
                .take("priority", optional(req.priority, priority_from_pb))
                .flatten(),
            category_id: if req.category_id.is_empty() {
                None
            } else {
                v.take("category_id", fields::category_id(&req.category_id))
            },
            assignee_id: v
                .take("assignee_id", fields::optional_uuid(&req.assignee_id))
                .flatten(),
            ride_id: v
                .take("ride_id", fields::optional_uuid(&req.ride_id))
                .flatten(),
            created_after: timestamp(&mut v, "created_after", req.created_after.as_ref()),
            created_before: timestamp(&mut v, "created_before", req.created_before.as_ref()),
        };
        let filters = pb::ListTicketsRequest {
            page_size: 0,
            page_token: String::new(),
            ..req.clone()
        };
        let fingerprint = list_fingerprint(caller, &filters);
        let cursor = v
            .take(
                "page_token",
                page_token::decode(&req.page_token, fingerprint),
            )
            .flatten();
        v.into_result()?;
        let limit = limit.unwrap_or(TICKETS_PAGE.0);

        let mut filter = filter;
        if matches!(caller, Caller::User(_)) {
            let own = caller.account_id();
            if filter.user_id.is_some() && filter.user_id != own {
                return Err(ApiError::denied("users list their own tickets only"));
            }
            filter.user_id = own;
        }
        let mut rows = tickets::list(&self.pool, &filter, cursor, limit + 1).await?;
        let next_page_token = next_page(&mut rows, limit, fingerprint, |t| Cursor {
            at: t.created_at,
            id: t.id,
        });
        Ok(pb::ListTicketsResponse {
            tickets: rows.iter().map(convert::ticket).collect(),
            next_page_token,
        })
    }

    fn parse_update(&self, caller: &Caller, req: &pb::UpdateTicketRequest) -> ApiResult<Edit> {
        let mut v = Violations::default();
        let request_id = v
            .take("request_id", parse_request_id(&req.request_id))
            .flatten();
        let Some(t) = req.ticket.as_ref() else {
            return Err(ApiError::invalid("ticket", "is required"));
        };
        let key = v.take("ticket.id", ticket_key(&t.id));
        let etag = if t.etag.is_empty() {
            None
        } else {
            v.take(
                "ticket.etag",
                t.etag
                    .parse::<i64>()
                    .map_err(|_| "is not an etag from this service".to_owned()),
            )
        };
        let mut change = Change::default();
        match req.update_mask.as_ref().map(|m| m.paths.as_slice()) {
            None | Some([]) => v.add("update_mask", "must name at least one field"),
            Some(paths) => {
                for path in paths {
                    match path.as_str() {
                        "status" => change.status = v.take("ticket.status", status_from_pb(t.status)),
                        "priority" => change.priority = v.take("ticket.priority", priority_from_pb(t.priority)),
                        "category_id" => {
                            change.category_id = v.take("ticket.category_id", fields::category_id(&t.category_id))
                        }
                        "assignee_id" => {
                            change.assignee = v.take("ticket.assignee_id", fields::optional_uuid(&t.assignee_id))
                        }
                        other => v.add(
                            "update_mask",
                            format!("{other:?} cannot be updated (status, priority, category_id, assignee_id)"),
                        ),
                    }
                }
            }
        }
        v.into_result()?;
        Ok(Edit {
            key: key.expect("validated"),
            change,
            etag,
            idempotency: key_for(caller, "UpdateTicket", request_id, req),
        })
    }

    /// Validates a new assignee against the accounts service: an active staff member.
    async fn check_assignee(&self, assignee: Option<Option<Uuid>>, field: &str) -> ApiResult<()> {
        let Some(Some(id)) = assignee else {
            return Ok(());
        };
        match self.platform.user(id).await? {
            Some(u) if u.active && u.is_staff => Ok(()),
            Some(u) if u.is_staff => Err(ApiError::invalid(field, "staff account is deactivated")),
            _ => Err(ApiError::invalid(field, "no such staff account")),
        }
    }

    /// Applies a staff edit in one transaction: lock, check etag and rules,
    /// write, emit, record the idempotency key.
    async fn edit(
        &self,
        caller: &Caller,
        edit: Edit,
        assignee_field: &str,
    ) -> ApiResult<pb::Ticket> {
        if let Err(error) = self
            .check_assignee(edit.change.assignee, assignee_field)
            .await
        {
            return self.replay_or(edit.idempotency.as_ref(), error).await;
        }

        let mut tx = self.pool.begin().await?;
        if let Some(done) = idempotency::claim_opt(&mut tx, edit.idempotency.as_ref()).await? {
            return Ok(done);
        }
        let mut ticket = tickets::lock(&mut tx, &edit.key)
            .await?
            .ok_or_else(|| ApiError::not_found("ticket"))?;
        // After the lock: writes to one ticket get times in the order they ran.
        let now = self.clock.now();
        if let Some(etag) = edit.etag
            && etag != ticket.version
        {
            return Err(ApiError::Aborted(format!(
                "ticket changed since it was read (etag {etag}, now {}); re-read and retry",
                ticket.version
            )));
        }
        let events = ticket.apply(&edit.change, now).map_err(rule)?;
        if !events.is_empty() {
            if !tickets::save(&mut tx, &mut ticket).await? {
                return Err(ApiError::invalid(
                    "ticket.category_id",
                    "no such active category",
                ));
            }
            Context { caller, now }
                .changed(&mut tx, &ticket, &events)
                .await?;
        }
        let response = convert::ticket(&ticket);
        idempotency::complete_opt(&mut tx, edit.idempotency.as_ref(), &response).await?;
        self.outbox.commit(tx).await?;
        Ok(response)
    }

    async fn post_message(
        &self,
        caller: &Caller,
        req: pb::PostMessageRequest,
    ) -> ApiResult<pb::TicketMessage> {
        let role = match caller.role() {
            Role::User if req.internal => {
                return Err(ApiError::denied("only staff may post internal notes"));
            }
            Role::User => AuthorRole::User,
            Role::Staff | Role::Admin => AuthorRole::Staff,
            Role::Service => return Err(ApiError::denied("services may not post messages")),
        };
        let author_id = caller
            .account_id()
            .ok_or_else(|| ApiError::denied("no account"))?;
        let mut v = Violations::default();
        let key = v.take("ticket_id", ticket_key(&req.ticket_id));
        let body = v.take("body", fields::text(&req.body, TEXT_MAX));
        let request_id = v
            .take("request_id", parse_request_id(&req.request_id))
            .flatten();
        v.into_result()?;
        let (Some(key), Some(body)) = (key, body) else {
            unreachable!("violations were empty");
        };
        let idem = key_for(caller, "PostMessage", request_id, &req);

        let mut tx = self.pool.begin().await?;
        if let Some(done) = idempotency::claim_opt(&mut tx, idem.as_ref()).await? {
            return Ok(done);
        }
        let mut ticket = match tickets::lock(&mut tx, &key).await? {
            Some(t) if visible(caller, &t) => t,
            _ => return Err(ApiError::not_found(format!("ticket {}", req.ticket_id))),
        };
        // After the lock: writes to one ticket get times in the order they ran.
        let now = self.clock.now();
        let (events, first_response) = ticket.on_message(role, req.internal, now).map_err(rule)?;
        let message = Message {
            id: Uuid::now_v7(),
            ticket_id: ticket.id,
            author_id,
            author_role: role,
            body,
            internal: req.internal,
            created_at: now,
        };
        messages::insert(&mut tx, &message).await?;
        // An internal note leaves the ticket as it was: its etag must not
        // change under the user (or abort a colleague's pending update).
        if !req.internal {
            tickets::save(&mut tx, &mut ticket).await?;
        }
        let context = Context { caller, now };
        context
            .message_posted(&mut tx, &ticket, &message, first_response)
            .await?;
        context.changed(&mut tx, &ticket, &events).await?;
        let response = convert::message(&message);
        idempotency::complete_opt(&mut tx, idem.as_ref(), &response).await?;
        self.outbox.commit(tx).await?;
        Ok(response)
    }

    /// The ticket named by `raw`, if `caller` may see it.
    async fn visible_ticket(&self, caller: &Caller, raw: &str) -> ApiResult<Ticket> {
        let key = ticket_key(raw).map_err(|why| ApiError::invalid("ticket_id", why))?;
        match tickets::find(&self.pool, &key).await? {
            Some(t) if visible(caller, &t) => Ok(t),
            _ => Err(ApiError::not_found(format!("ticket {raw}"))),
        }
    }

    async fn get_message(
        &self,
        caller: &Caller,
        req: pb::GetMessageRequest,
    ) -> ApiResult<pb::TicketMessage> {
        let mut v = Violations::default();
        v.take("ticket_id", ticket_key(&req.ticket_id));
        let message_id = v.take("message_id", fields::uuid(&req.message_id));
        v.into_result()?;
        let ticket = self.visible_ticket(caller, &req.ticket_id).await?;
        let message_id = message_id.expect("validated");
        messages::get(&self.pool, ticket.id, message_id, sees_internal(caller))
            .await?
            .map(|m| convert::message(&m))
            .ok_or_else(|| ApiError::not_found(format!("message {message_id}")))
    }

    async fn list_messages(
        &self,
        caller: &Caller,
        req: pb::ListMessagesRequest,
    ) -> ApiResult<pb::ListMessagesResponse> {
        let mut v = Violations::default();
        v.take("ticket_id", ticket_key(&req.ticket_id));
        let limit = v.take(
            "page_size",
            fields::page_size(req.page_size, MESSAGES_PAGE.0, MESSAGES_PAGE.1),
        );
        let fingerprint = list_fingerprint(caller, &req.ticket_id);
        let cursor = v
            .take(
                "page_token",
                page_token::decode(&req.page_token, fingerprint),
            )
            .flatten();
        v.into_result()?;
        let limit = limit.unwrap_or(MESSAGES_PAGE.0);
        let ticket = self.visible_ticket(caller, &req.ticket_id).await?;
        let mut rows = messages::list(
            &self.pool,
            ticket.id,
            sees_internal(caller),
            cursor,
            limit + 1,
        )
        .await?;
        let next_page_token = next_page(&mut rows, limit, fingerprint, |m| Cursor {
            at: m.created_at,
            id: m.id,
        });
        Ok(pb::ListMessagesResponse {
            messages: rows.iter().map(convert::message).collect(),
            next_page_token,
        })
    }

    async fn rate(&self, caller: &Caller, req: pb::RateTicketRequest) -> ApiResult<pb::Ticket> {
        if !matches!(caller, Caller::User(_)) {
            return Err(ApiError::denied("only the ticket's owner may rate it"));
        }
        let mut v = Violations::default();
        let key = v.take("ticket_id", ticket_key(&req.ticket_id));
        let rating = v.take("rating", fields::rating(req.rating));
        let feedback = v.take("feedback", fields::optional_text(&req.feedback, TEXT_MAX));
        let request_id = v
            .take("request_id", parse_request_id(&req.request_id))
            .flatten();
        v.into_result()?;
        let (Some(key), Some(rating), Some(feedback)) = (key, rating, feedback) else {
            unreachable!("violations were empty");
        };
        let idem = key_for(caller, "RateTicket", request_id, &req);

        let mut tx = self.pool.begin().await?;
        if let Some(done) = idempotency::claim_opt(&mut tx, idem.as_ref()).await? {
            return Ok(done);
        }
        let mut ticket = match tickets::lock(&mut tx, &key).await? {
            Some(t) if visible(caller, &t) => t,
            _ => return Err(ApiError::not_found(format!("ticket {}", req.ticket_id))),
        };
        // After the lock: writes to one ticket get times in the order they ran.
        let now = self.clock.now();
        ticket.rate(rating, feedback, now).map_err(rule)?;
        tickets::save(&mut tx, &mut ticket).await?;
        Context { caller, now }.rated(&mut tx, &ticket).await?;
        let response = convert::ticket(&ticket);
        idempotency::complete_opt(&mut tx, idem.as_ref(), &response).await?;
        self.outbox.commit(tx).await?;
        Ok(response)
    }
}

fn timestamp(
    v: &mut Violations,
    field: &str,
    t: Option<&prost_types::Timestamp>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let t = t?;
    v.take(
        field,
        from_timestamp(t).ok_or_else(|| "is out of range".to_owned()),
    )
}

#[tonic::async_trait]
impl TicketService for TicketApi {
    async fn create_ticket(
        &self,
        request: Request<pb::CreateTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = Caller::from_request(&request)?;
        Ok(Response::new(
            self.create(&caller, request.into_inner()).await?,
        ))
    }

    async fn get_ticket(
        &self,
        request: Request<pb::GetTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = Caller::from_request(&request)?;
        Ok(Response::new(
            self.get(&caller, request.into_inner()).await?,
        ))
    }

    async fn list_tickets(
        &self,
        request: Request<pb::ListTicketsRequest>,
    ) -> Result<Response<pb::ListTicketsResponse>, Status> {
        let caller = Caller::from_request(&request)?;
        Ok(Response::new(
            self.list(&caller, request.into_inner()).await?,
        ))
    }

    async fn update_ticket(
        &self,
        request: Request<pb::UpdateTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = Caller::from_request(&request)?;
        staff_or_service(&caller, "update tickets")?;
        let edit = self.parse_update(&caller, request.get_ref())?;
        Ok(Response::new(
            self.edit(&caller, edit, "ticket.assignee_id").await?,
        ))
    }

    async fn assign_ticket(
        &self,
        request: Request<pb::AssignTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = Caller::from_request(&request)?;
        staff_or_service(&caller, "assign tickets")?;
        let req = request.into_inner();
        let mut v = Violations::default();
        let key = v.take("ticket_id", ticket_key(&req.ticket_id));
        let assignee = v.take("assignee_id", fields::uuid(&req.assignee_id));
        let request_id = v
            .take("request_id", parse_request_id(&req.request_id))
            .flatten();
        v.into_result().map_err(Status::from)?;
        let edit = Edit {
            key: key.expect("validated"),
            change: Change {
                assignee: Some(assignee),
                ..Change::default()
            },
            etag: None,
            idempotency: key_for(&caller, "AssignTicket", request_id, &req),
        };
        Ok(Response::new(
            self.edit(&caller, edit, "assignee_id").await?,
        ))
    }

    async fn post_message(
        &self,
        request: Request<pb::PostMessageRequest>,
    ) -> Result<Response<pb::TicketMessage>, Status> {
        let caller = Caller::from_request(&request)?;
        Ok(Response::new(
            TicketApi::post_message(self, &caller, request.into_inner()).await?,
        ))
    }

    async fn get_message(
        &self,
        request: Request<pb::GetMessageRequest>,
    ) -> Result<Response<pb::TicketMessage>, Status> {
        let caller = Caller::from_request(&request)?;
        Ok(Response::new(
            TicketApi::get_message(self, &caller, request.into_inner()).await?,
        ))
    }

    async fn list_messages(
        &self,
        request: Request<pb::ListMessagesRequest>,
    ) -> Result<Response<pb::ListMessagesResponse>, Status> {
        let caller = Caller::from_request(&request)?;
        Ok(Response::new(
            TicketApi::list_messages(self, &caller, request.into_inner()).await?,
        ))
    }

    async fn rate_ticket(
        &self,
        request: Request<pb::RateTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = Caller::from_request(&request)?;
        Ok(Response::new(
            self.rate(&caller, request.into_inner()).await?,
        ))
    }
}
