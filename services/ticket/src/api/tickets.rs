//! `support.v1.TicketService`: each handler checks who may call it
//! (`access`), parses its request into a command (`requests`), calls the
//! platform before taking a connection, then writes, emits and records its
//! idempotency key in one transaction. `batch` is BatchAssignTickets,
//! `search` SearchTickets.

mod batch;
mod search;

use helpdesk_events::outbox::{Columns, Waker};
use helpdesk_kit::{
    auth::Caller,
    clock::SharedClock,
    error::{ApiError, ApiResult, Violations},
    idempotency::{self, Finished, Key},
    page_token::{self, Cursor},
};
use helpdesk_proto::support::v1::{self as pb, ticket_service_server::TicketService};
use sqlx::{PgConnection, PgPool};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{
    access::{self, sees_internal, staff_or_service, visible},
    convert,
    events::Context,
    requests::{self, Page, Parsed},
};
use crate::{
    clients::Platform,
    domain::{
        AccountId, Message, Ticket, TicketKey, TicketNumber,
        attachment::Attachment,
        commands::{NewMessage, NewRating, NewTicket, Owner, TicketEdit},
        ticket::{AuthorRole, RuleError},
    },
    storage::{
        attachments, messages,
        numbers::Numbers,
        tickets::{self, Created},
    },
};

pub struct TicketApi {
    pool: PgPool,
    /// Generic plans (`db::connect_lazy_generic`): ticket lookups and every
    /// ListTickets statement, whose plans never depend on the values.
    lookups: PgPool,
    platform: Platform,
    clock: SharedClock,
    /// Every write enqueues events: commit through it to wake the relay.
    outbox: Waker,
    /// CreateTicket's numbers, reserved a block at a time.
    numbers: Numbers,
    /// SearchTickets' lexeme statistics, re-read now and then.
    search_stats: search::StatsCache,
}

impl TicketApi {
    /// `lookups`: a pool with generic plans on the same database.
    pub fn new(
        pool: PgPool,
        lookups: PgPool,
        platform: Platform,
        clock: SharedClock,
        outbox: Waker,
    ) -> Self {
        Self {
            pool,
            lookups,
            platform,
            clock,
            outbox,
            numbers: Numbers::default(),
            search_stats: search::StatsCache::default(),
        }
    }
}

fn rule(err: RuleError) -> ApiError {
    ApiError::precondition(err.to_string())
}

/// A key taken by a request whose answer is not stored: unreachable in
/// practice, as a key and its answer are written by one statement.
fn in_progress() -> ApiError {
    ApiError::Aborted("request in progress, retry".into())
}

/// How PostMessage reads the ticket it decides on.
#[derive(Clone, Copy)]
enum Read {
    /// Without a lock; the write checks the version it read.
    Optimistic,
    /// Locked until the write commits.
    Locked,
}

/// What PostMessage did.
enum Posted {
    Yes(pb::TicketMessage),
    /// Nothing written: the request's key was taken (a replay).
    KeyTaken,
}

/// Cuts one extra row off `items` and returns the token of the next page
/// (empty on the last).
pub(super) fn next_page<T>(
    items: &mut Vec<T>,
    page: &Page,
    cursor: impl Fn(&T) -> Cursor,
) -> String {
    if items.len() as i64 > page.limit {
        items.truncate(page.limit as usize);
        items
            .last()
            .map(|last| page_token::encode(cursor(last), page.fingerprint))
            .unwrap_or_default()
    } else {
        String::new()
    }
}

impl TicketApi {
    async fn create(&self, caller: &Caller, req: pb::CreateTicketRequest) -> ApiResult<pb::Ticket> {
        let Parsed {
            command: new,
            idempotency: key,
        } = requests::create_ticket(caller, &req)?;
        if let Err(error) = self.check_references(&new).await {
            return self.replay_or(key.as_ref(), error).await;
        }

        let n = self.numbers.next(&self.pool).await?;
        let number = TicketNumber::from_sequence(u64::try_from(n).map_err(ApiError::internal)?);
        let ticket = Ticket::open(Uuid::now_v7(), number, new, self.clock.now());
        let response = convert::ticket(&ticket);
        let event = Context {
            caller,
            now: ticket.created_at,
        }
        .created(&ticket);
        // One statement: the ticket, its event and its idempotency record.
        let created = tickets::create(
            &self.pool,
            &ticket,
            n,
            &Columns::of(std::slice::from_ref(&event)),
            &Finished::new(key.as_ref(), &response),
        )
        .await?;
        match created {
            Created::Yes => {
                self.outbox.wake();
                tracing::info!(ticket = %ticket.human_id, "ticket created");
                Ok(response)
            }
            Created::NoCategory => {
                let error = ApiError::invalid("category_id", "no such active category");
                self.replay_or(key.as_ref(), error).await
            }
            Created::KeyTaken => self.replay_or(key.as_ref(), in_progress()).await,
        }
    }

    /// Validates the foreign references of a new ticket: both calls at
    /// once, before any database connection is taken.
    async fn check_references(&self, new: &NewTicket) -> ApiResult<()> {
        let user_id = new.owner.id().as_uuid();
        let ride_lookup = async {
            match new.ride_id {
                Some(id) => self.platform.ride(id).await,
                None => Ok(None),
            }
        };
        let (user, ride) = tokio::join!(self.platform.account(user_id), ride_lookup);
        let (user, ride) = (user?, ride?);
        let mut v = Violations::default();
        // (what a field violation says, what the account's owner is told)
        let problem = match user {
            None => Some(("no such account", "your account does not exist")),
            Some(u) if !u.active => Some(("account is deactivated", "your account is deactivated")),
            Some(_) => None,
        };
        match (problem, new.owner) {
            // A user filing for themselves may not even have sent `user_id`:
            // the problem is their account, not a field.
            (Some((_, yours)), Owner::Caller(_)) => return Err(ApiError::denied(yours)),
            (Some((why, _)), Owner::Named(_)) => v.add("user_id", why),
            (None, _) => {}
        }
        // Whoever files the ticket: a ride of someone else is as unknown as
        // a ride that does not exist (nobody learns about other people's rides).
        if new.ride_id.is_some() && !ride.is_some_and(|r| r.belongs_to(user_id)) {
            v.add("ride_id", "no such ride for this user");
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
        let key = requests::ticket_key("id", &req.id)?;
        let ticket = visible_ticket(&self.lookups, caller, &key, &req.id).await?;
        Ok(convert::ticket(&ticket))
    }

    async fn list(
        &self,
        caller: &Caller,
        req: pb::ListTicketsRequest,
    ) -> ApiResult<pb::ListTicketsResponse> {
        let (mut filter, page) = requests::list_tickets(caller, &req)?;
        if access::is_user(caller) {
            let own = access::own_account(caller)?;
            if filter.user_id.is_some_and(|named| named != own) {
                return Err(ApiError::denied("users list their own tickets only"));
            }
            filter.user_id = Some(own);
        }
        // A statement per filter combination, planned once per connection.
        let mut rows = tickets::list(&self.lookups, &filter, page.cursor, page.limit + 1).await?;
        let next_page_token = next_page(&mut rows, &page, |t| Cursor {
            at: t.created_at,
            id: t.id,
        });
        Ok(pb::ListTicketsResponse {
            tickets: rows.iter().map(convert::ticket).collect(),
            next_page_token,
        })
    }

    /// Validates a new assignee against the accounts service: an active staff member.
    async fn check_assignee(
        &self,
        assignee: Option<Option<AccountId>>,
        field: &str,
    ) -> ApiResult<()> {
        let Some(Some(id)) = assignee else {
            return Ok(());
        };
        match self.platform.account(id.as_uuid()).await? {
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
        parsed: Parsed<TicketEdit>,
        assignee_field: &str,
    ) -> ApiResult<pb::Ticket> {
        let Parsed {
            command: edit,
            idempotency: key,
        } = parsed;
        if let Err(error) = self
            .check_assignee(edit.change.assignee, assignee_field)
            .await
        {
            return self.replay_or(key.as_ref(), error).await;
        }

        let mut tx = self.pool.begin().await?;
        if let Some(done) = idempotency::claim_opt(&mut tx, key.as_ref()).await? {
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
        idempotency::complete_opt(&mut tx, key.as_ref(), &response).await?;
        self.outbox.commit(tx).await?;
        Ok(response)
    }

    async fn post_message(
        &self,
        caller: &Caller,
        req: pb::PostMessageRequest,
    ) -> ApiResult<pb::TicketMessage> {
        let (author_id, role) = access::author(caller, req.internal)?;
        let Parsed {
            command: new,
            idempotency: key,
        } = requests::post_message(caller, &req)?;
        match self
            .post(caller, author_id, role, new, key.as_ref(), &req.ticket_id)
            .await
        {
            // A retry finds the ticket as the first attempt left it (closed,
            // say): answer what that attempt answered.
            Err(error) => self.replay_or(key.as_ref(), error).await,
            Ok(Posted::Yes(message)) => Ok(message),
            Ok(Posted::KeyTaken) => self.replay_or(key.as_ref(), in_progress()).await,
        }
    }

    /// PostMessage: read the ticket, apply the rules, then one statement
    /// writes the message, the ticket, the events and the key if the ticket
    /// is still as read. A reply without attachments is two round trips,
    /// the read (a kept plan) and the write, with no transaction and no
    /// lock held between them. If another write won in between, nothing was
    /// written and the second attempt decides again holding the ticket's
    /// lock, so it cannot lose again and concurrent writers queue fairly.
    async fn post(
        &self,
        caller: &Caller,
        author_id: AccountId,
        role: AuthorRole,
        new: NewMessage,
        key: Option<&Key>,
        raw_ticket_id: &str,
    ) -> ApiResult<Posted> {
        // Linking attachments needs a transaction anyway: lock at once.
        let first = match new.attachments.is_empty() {
            true => Read::Optimistic,
            false => Read::Locked,
        };
        for read in [first, Read::Locked] {
            let attempt = self
                .post_once(read, caller, author_id, role, &new, key, raw_ticket_id)
                .await?;
            if let Some(posted) = attempt {
                return Ok(posted);
            }
        }
        Err(ApiError::Internal(anyhow::anyhow!(
            "ticket {raw_ticket_id} changed under its lock while a message was posted"
        )))
    }

    /// One attempt of [`Self::post`]; `None` when the ticket changed
    /// between the read and the write (nothing written).
    #[allow(clippy::too_many_arguments)]
    async fn post_once(
        &self,
        read: Read,
        caller: &Caller,
        author_id: AccountId,
        role: AuthorRole,
        new: &NewMessage,
        key: Option<&Key>,
        raw_ticket_id: &str,
    ) -> ApiResult<Option<Posted>> {
        let (mut tx, mut ticket) = match read {
            Read::Optimistic => (
                None,
                visible_ticket(&self.lookups, caller, &new.key, raw_ticket_id).await?,
            ),
            Read::Locked => {
                let mut tx = self.pool.begin().await?;
                let found = tickets::lock(&mut tx, &new.key).await?;
                (Some(tx), seen(found, caller, raw_ticket_id)?)
            }
        };
        let read_version = ticket.version;
        // After the read: the version check orders writes to one ticket,
        // so the times they carry follow that order.
        let now = self.clock.now();
        let (events, first_response) = ticket.on_message(role, new.internal, now).map_err(rule)?;
        let message = Message {
            id: Uuid::now_v7(),
            ticket_id: ticket.id,
            author_id,
            author_role: role,
            body: new.body.clone(),
            internal: new.internal,
            created_at: now,
        };
        // Linked before the message exists (its event lists them); the
        // attachment → message reference is checked at commit.
        let linked = match &mut tx {
            Some(tx) if !new.attachments.is_empty() => {
                self.link_attachments(tx, &ticket, &message, &new.attachments)
                    .await?
            }
            _ => Vec::new(),
        };
        // An internal note leaves the ticket as it was: its etag must not
        // change under the user (or abort a colleague's pending update).
        if !new.internal {
            ticket.version += 1;
        }
        let context = Context { caller, now };
        let mut rows = vec![context.message_posted(&ticket, &message, first_response, &linked)];
        rows.extend(context.changed_rows(&ticket, &events));
        let response = convert::message(&message);
        let (events, finished) = (Columns::of(&rows), Finished::new(key, &response));
        let write = messages::Write {
            message: &message,
            read_version,
            ticket: (!new.internal).then_some(&ticket),
            events: &events,
            key: &finished,
        };
        let posted = match &mut tx {
            None => messages::post(&self.pool, &write).await?,
            Some(tx) => messages::post(&mut **tx, &write).await?,
        };
        if posted == messages::Posted::Written {
            match tx {
                Some(tx) => self.outbox.commit(tx).await?,
                None => self.outbox.wake(),
            }
        }
        Ok(match posted {
            messages::Posted::Written => Some(Posted::Yes(response)),
            messages::Posted::KeyTaken => Some(Posted::KeyTaken),
            messages::Posted::Stale => None,
        })
    }

    /// Links the caller's uploads to `message`: every one, or
    /// INVALID_ARGUMENT naming those that are not theirs to link.
    async fn link_attachments(
        &self,
        tx: &mut PgConnection,
        ticket: &Ticket,
        message: &Message,
        ids: &[Uuid],
    ) -> ApiResult<Vec<Attachment>> {
        let linked = attachments::link(
            tx,
            ticket.id,
            message.id,
            message.author_id,
            message.internal,
            ids,
        )
        .await?;
        if linked.len() == ids.len() {
            return Ok(linked);
        }
        let mut v = Violations::default();
        for (i, id) in ids.iter().enumerate() {
            if !linked.iter().any(|a| a.id == *id) {
                v.add(
                    format!("attachment_ids[{i}]"),
                    "is not an attachment you uploaded to this ticket and not yet \
                     on a message (staff-only ones go on internal notes only)",
                );
            }
        }
        Err(ApiError::InvalidArgument(v))
    }

    async fn get_message(
        &self,
        caller: &Caller,
        req: pb::GetMessageRequest,
    ) -> ApiResult<pb::TicketMessage> {
        let (key, message_id) = requests::get_message(&req)?;
        let found = match key {
            Some(key) => {
                let ticket = visible_ticket(&self.lookups, caller, &key, &req.ticket_id).await?;
                messages::get(&self.pool, ticket.id, message_id, sees_internal(caller)).await?
            }
            // By its id alone: the ticket's visibility is checked in the same
            // statement, so another user's message is missing like any other.
            None => {
                messages::find(
                    &self.pool,
                    message_id,
                    access::owner_filter(caller),
                    sees_internal(caller),
                )
                .await?
            }
        };
        found
            .map(|m| convert::message(&m))
            .ok_or_else(|| ApiError::not_found(format!("message {message_id}")))
    }

    async fn list_messages(
        &self,
        caller: &Caller,
        req: pb::ListMessagesRequest,
    ) -> ApiResult<pb::ListMessagesResponse> {
        let (key, page) = requests::list_messages(caller, &req)?;
        let ticket = visible_ticket(&self.lookups, caller, &key, &req.ticket_id).await?;
        let mut rows = messages::list(
            &self.pool,
            ticket.id,
            sees_internal(caller),
            page.cursor,
            page.limit + 1,
        )
        .await?;
        let next_page_token = next_page(&mut rows, &page, |m| Cursor {
            at: m.created_at,
            id: m.id,
        });
        Ok(pb::ListMessagesResponse {
            messages: rows.iter().map(convert::message).collect(),
            next_page_token,
        })
    }

    async fn rate(&self, caller: &Caller, req: pb::RateTicketRequest) -> ApiResult<pb::Ticket> {
        if !access::is_user(caller) {
            return Err(ApiError::denied("only the ticket's owner may rate it"));
        }
        let Parsed {
            command:
                NewRating {
                    key,
                    rating,
                    feedback,
                },
            idempotency: idem,
        } = requests::rate_ticket(caller, &req)?;

        let mut tx = self.pool.begin().await?;
        if let Some(done) = idempotency::claim_opt(&mut tx, idem.as_ref()).await? {
            return Ok(done);
        }
        let mut ticket = seen(tickets::lock(&mut tx, &key).await?, caller, &req.ticket_id)?;
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

    async fn search_tickets(
        &self,
        request: Request<pb::SearchTicketsRequest>,
    ) -> Result<Response<pb::SearchTicketsResponse>, Status> {
        let caller = Caller::from_request(&request)?;
        Ok(Response::new(
            self.search(&caller, request.into_inner()).await?,
        ))
    }

    async fn update_ticket(
        &self,
        request: Request<pb::UpdateTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        let caller = Caller::from_request(&request)?;
        staff_or_service(&caller, "update tickets")?;
        let edit = requests::update_ticket(&caller, request.get_ref())?;
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
        let edit = requests::assign_ticket(&caller, request.get_ref())?;
        Ok(Response::new(
            self.edit(&caller, edit, "assignee_id").await?,
        ))
    }

    async fn batch_assign_tickets(
        &self,
        request: Request<pb::BatchAssignTicketsRequest>,
    ) -> Result<Response<pb::BatchAssignTicketsResponse>, Status> {
        let caller = Caller::from_request(&request)?;
        if !caller.is_trusted_service() {
            return Err(ApiError::denied("only our own services may assign in batches").into());
        }
        let items = requests::batch_assign_tickets(&caller, request.get_ref())?;
        Ok(Response::new(self.batch_assign(&caller, items).await?))
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

/// The ticket `key` names, if `caller` may see it (else NOT_FOUND, `raw`
/// being how the caller named it). Callers pass the generic-plan pool: the
/// lookup's plan (either key's unique index) never depends on the values.
pub(super) async fn visible_ticket(
    lookups: &PgPool,
    caller: &Caller,
    key: &TicketKey,
    raw: &str,
) -> ApiResult<Ticket> {
    seen(tickets::find(lookups, key).await?, caller, raw)
}

/// A ticket found, if `caller` may see it; else NOT_FOUND (`raw` being how
/// the caller named it), the same answer as for one that does not exist.
fn seen(found: Option<Ticket>, caller: &Caller, raw: &str) -> ApiResult<Ticket> {
    match found {
        Some(t) if visible(caller, &t) => Ok(t),
        _ => Err(ApiError::not_found(format!("ticket {raw}"))),
    }
}
