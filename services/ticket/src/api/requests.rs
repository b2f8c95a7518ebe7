//! One parse function per request: protobuf in, a domain command out, or
//! every field violation at once (`google.rpc.BadRequest`). Handlers start
//! from the command, so nothing after parsing can hold an invalid value.

use helpdesk_kit::{
    auth::Caller,
    clock::from_timestamp,
    error::{ApiError, ApiResult, Violations},
    idempotency::{Key, parse_request_id},
    page_token::{self, Cursor, PageSize},
};
use helpdesk_proto::support::v1 as pb;
use uuid::Uuid;

use super::{
    access,
    convert::{optional, priority_from_pb, status_from_pb},
};
use crate::domain::{
    AccountId, Category, CategoryDescription, CategoryId, CategoryName, Change, ListFilter,
    Priority, Rating, Status, Subject, Text, TicketKey,
    attachment::{FileName, NewUpload},
    commands::{CategoryEdit, NewMessage, NewRating, NewTicket, Owner, TicketEdit},
    values::{optional_uuid, uuid},
};

const TICKETS_PAGE: PageSize = PageSize {
    default: 20,
    max: 100,
};
const MESSAGES_PAGE: PageSize = PageSize {
    default: 50,
    max: 100,
};
const ATTACHMENTS_PAGE: PageSize = PageSize {
    default: 50,
    max: 100,
};

/// A parsed write and its idempotency key (when the caller sent `request_id`).
pub struct Parsed<C> {
    pub command: C,
    pub idempotency: Option<Key>,
}

/// One page of a list: how many rows, after which, and the fingerprint
/// binding the next token to the caller and the filters.
pub struct Page {
    pub limit: i64,
    pub cursor: Option<Cursor>,
    pub fingerprint: u64,
}

/// The command when every field parsed; otherwise every violation at once.
/// (`command` is `None` only when a field failed, so `v` is not empty then.)
fn finish<T>(v: Violations, command: Option<T>) -> ApiResult<T> {
    match command {
        Some(command) if v.is_empty() => Ok(command),
        _ => Err(ApiError::InvalidArgument(v)),
    }
}

fn request_id(v: &mut Violations, raw: &str) -> Option<Uuid> {
    v.take("request_id", parse_request_id(raw)).flatten()
}

fn idempotency(
    caller: &Caller,
    method: &'static str,
    request_id: Option<Uuid>,
    request: &impl prost::Message,
) -> Option<Key> {
    request_id.map(|id| Key::new(&caller.subject(), method, id, request))
}

/// The page size and token of a list whose filters are `filters`.
fn page(
    v: &mut Violations,
    caller: &Caller,
    policy: PageSize,
    size: i32,
    token: &str,
    filters: &impl prost::Message,
) -> Option<Page> {
    let fingerprint =
        page_token::fingerprint(&[caller.subject().as_bytes(), &filters.encode_to_vec()]);
    let limit = v.take("page_size", policy.resolve(size));
    let cursor = v.take("page_token", page_token::decode(token, fingerprint));
    Some(Page {
        limit: limit?,
        cursor: cursor?,
        fingerprint,
    })
}

fn timestamp(
    v: &mut Violations,
    field: &str,
    t: Option<&prost_types::Timestamp>,
) -> Option<Option<chrono::DateTime<chrono::Utc>>> {
    match t {
        None => Some(None),
        Some(t) => v
            .take(
                field,
                from_timestamp(t).ok_or_else(|| "is out of range".to_owned()),
            )
            .map(Some),
    }
}

/// Whose ticket: users file for themselves (an explicit `user_id` must be
/// their own), staff and services name the user.
fn owner(v: &mut Violations, caller: &Caller, raw: &str) -> ApiResult<Option<Owner>> {
    if !access::is_user(caller) {
        return Ok(v.take("user_id", AccountId::parse(raw)).map(Owner::Named));
    }
    let own = access::own_account(caller)?;
    match v.take("user_id", AccountId::parse_optional(raw)) {
        Some(Some(named)) if named != own => {
            Err(ApiError::denied("users create tickets for themselves only"))
        }
        _ => Ok(Some(Owner::Caller(own))),
    }
}

pub fn create_ticket(
    caller: &Caller,
    req: &pb::CreateTicketRequest,
) -> ApiResult<Parsed<NewTicket>> {
    let mut v = Violations::default();
    let subject = v.take("subject", Subject::parse(&req.subject));
    let description = v.take("description", Text::parse(&req.description));
    let ride_id = v.take("ride_id", optional_uuid(&req.ride_id));
    let category_id = v
        .take("category_id", CategoryId::parse_optional(&req.category_id))
        .map(|c| c.unwrap_or_else(CategoryId::other));
    // UNSPECIFIED means "the default" here; unknown numbers are rejected.
    let priority = v
        .take("priority", optional(req.priority, priority_from_pb))
        .map(|p| p.unwrap_or(Priority::Medium));
    let request_id = request_id(&mut v, &req.request_id);
    let owner = owner(&mut v, caller, &req.user_id)?;
    let command = (|| {
        Some(NewTicket {
            owner: owner?,
            ride_id: ride_id?,
            category_id: category_id?,
            subject: subject?,
            description: description?,
            priority: priority?,
        })
    })();
    Ok(Parsed {
        command: finish(v, command)?,
        idempotency: idempotency(caller, "CreateTicket", request_id, req),
    })
}

/// A ticket named in `field`.
pub fn ticket_key(field: &str, raw: &str) -> ApiResult<TicketKey> {
    TicketKey::parse(raw).map_err(|why| ApiError::invalid(field, why))
}

/// The ListTickets filters, as ListTickets and SearchTickets both take them.
pub struct FilterFields<'a> {
    pub user_id: &'a str,
    pub statuses: &'a [i32],
    pub priority: i32,
    pub category_id: &'a str,
    pub assignee_id: &'a str,
    pub ride_id: &'a str,
    pub created_after: Option<&'a prost_types::Timestamp>,
    pub created_before: Option<&'a prost_types::Timestamp>,
    pub open: bool,
}

/// Parses the filters, recording a violation per bad field; `None` when
/// any is bad.
pub fn list_filter(v: &mut Violations, f: FilterFields<'_>) -> Option<ListFilter> {
    let user_id = v.take("user_id", AccountId::parse_optional(f.user_id));
    let statuses: Vec<Status> = f
        .statuses
        .iter()
        .filter_map(|raw| v.take("statuses", status_from_pb(*raw)))
        .collect();
    let priority = v.take("priority", optional(f.priority, priority_from_pb));
    let category_id = v.take("category_id", CategoryId::parse_optional(f.category_id));
    let assignee_id = v.take("assignee_id", AccountId::parse_optional(f.assignee_id));
    let ride_id = v.take("ride_id", optional_uuid(f.ride_id));
    let created_after = timestamp(v, "created_after", f.created_after);
    let created_before = timestamp(v, "created_before", f.created_before);
    let mut filter = ListFilter {
        user_id: user_id?,
        statuses: Vec::new(),
        priority: priority?,
        category_id: category_id?,
        assignee_id: assignee_id?,
        ride_id: ride_id?,
        created_after: created_after?,
        created_before: created_before?,
    };
    filter.add_statuses(statuses);
    if f.open {
        filter.add_statuses(Status::open_group());
    }
    Some(filter)
}

pub fn list_tickets(
    caller: &Caller,
    req: &pb::ListTicketsRequest,
) -> ApiResult<(ListFilter, Page)> {
    let mut v = Violations::default();
    let filter = list_filter(
        &mut v,
        FilterFields {
            user_id: &req.user_id,
            statuses: &req.statuses,
            priority: req.priority,
            category_id: &req.category_id,
            assignee_id: &req.assignee_id,
            ride_id: &req.ride_id,
            created_after: req.created_after.as_ref(),
            created_before: req.created_before.as_ref(),
            open: req.open,
        },
    );
    // Every field but the page's own binds the token.
    let filters = pb::ListTicketsRequest {
        page_size: 0,
        page_token: String::new(),
        ..req.clone()
    };
    let page = page(
        &mut v,
        caller,
        TICKETS_PAGE,
        req.page_size,
        &req.page_token,
        &filters,
    );
    let command = (|| Some((filter?, page?)))();
    finish(v, command)
}

/// The fields UpdateTicket can change.
const EDITABLE: &str = "status, priority, category_id, assignee_id";

pub fn update_ticket(
    caller: &Caller,
    req: &pb::UpdateTicketRequest,
) -> ApiResult<Parsed<TicketEdit>> {
    let mut v = Violations::default();
    let request_id = request_id(&mut v, &req.request_id);
    let Some(t) = req.ticket.as_ref() else {
        v.add("ticket", "is required");
        return Err(ApiError::InvalidArgument(v));
    };
    let key = v.take("ticket.id", TicketKey::parse(&t.id));
    let etag = if t.etag.is_empty() {
        Some(None)
    } else {
        v.take(
            "ticket.etag",
            t.etag
                .parse::<i64>()
                .map(Some)
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
                    "priority" => {
                        change.priority = v.take("ticket.priority", priority_from_pb(t.priority))
                    }
                    "category_id" => {
                        change.category_id =
                            v.take("ticket.category_id", CategoryId::parse(&t.category_id))
                    }
                    "assignee_id" => {
                        change.assignee = v.take(
                            "ticket.assignee_id",
                            AccountId::parse_optional(&t.assignee_id),
                        )
                    }
                    other => v.add(
                        "update_mask",
                        format!("{other:?} cannot be updated ({EDITABLE})"),
                    ),
                }
            }
        }
    }
    let command = (|| {
        Some(TicketEdit {
            key: key?,
            change,
            etag: etag?,
        })
    })();
    Ok(Parsed {
        command: finish(v, command)?,
        idempotency: idempotency(caller, "UpdateTicket", request_id, req),
    })
}

pub fn assign_ticket(
    caller: &Caller,
    req: &pb::AssignTicketRequest,
) -> ApiResult<Parsed<TicketEdit>> {
    let mut v = Violations::default();
    let parsed = assign(&mut v, caller, "", req);
    finish(v, parsed)
}

/// Most requests in one BatchAssignTickets.
pub const MAX_BATCH: usize = 100;

/// Each item parsed as AssignTicket parses it, with the same idempotency
/// key; its field violations are named `requests[i].field`.
pub fn batch_assign_tickets(
    caller: &Caller,
    req: &pb::BatchAssignTicketsRequest,
) -> ApiResult<Vec<Parsed<TicketEdit>>> {
    let mut v = Violations::default();
    if req.requests.is_empty() {
        v.add("requests", "must hold at least one request");
    }
    if req.requests.len() > MAX_BATCH {
        v.add(
            "requests",
            format!("holds {}; at most {MAX_BATCH}", req.requests.len()),
        );
        return Err(ApiError::InvalidArgument(v));
    }
    let mut first_use = std::collections::HashMap::new();
    let mut items = Vec::with_capacity(req.requests.len());
    for (i, item) in req.requests.iter().enumerate() {
        let at = format!("requests[{i}].");
        if let Ok(Some(id)) = parse_request_id(&item.request_id)
            && let Some(first) = first_use.insert(id, i)
        {
            v.add(
                format!("{at}request_id"),
                format!("repeats requests[{first}].request_id"),
            );
        }
        items.push(assign(&mut v, caller, &at, item));
    }
    let items: Option<Vec<_>> = items.into_iter().collect();
    finish(v, items)
}

/// One AssignTicket request; `at` prefixes its fields' names.
fn assign(
    v: &mut Violations,
    caller: &Caller,
    at: &str,
    req: &pb::AssignTicketRequest,
) -> Option<Parsed<TicketEdit>> {
    let key = v.take(&format!("{at}ticket_id"), TicketKey::parse(&req.ticket_id));
    let assignee = v.take(
        &format!("{at}assignee_id"),
        AccountId::parse(&req.assignee_id),
    );
    let request_id = v
        .take(
            &format!("{at}request_id"),
            parse_request_id(&req.request_id),
        )
        .flatten();
    Some(Parsed {
        command: TicketEdit {
            key: key?,
            change: Change {
                assignee: Some(Some(assignee?)),
                ..Change::default()
            },
            etag: None,
        },
        idempotency: idempotency(caller, "AssignTicket", request_id, req),
    })
}

pub fn post_message(
    caller: &Caller,
    req: &pb::PostMessageRequest,
) -> ApiResult<Parsed<NewMessage>> {
    let mut v = Violations::default();
    let key = v.take("ticket_id", TicketKey::parse(&req.ticket_id));
    let body = v.take("body", Text::parse(&req.body));
    let request_id = request_id(&mut v, &req.request_id);
    let attachments = attachment_ids(&mut v, &req.attachment_ids);
    let command = (|| {
        Some(NewMessage {
            key: key?,
            body: body?,
            internal: req.internal,
            attachments: attachments?,
        })
    })();
    Ok(Parsed {
        command: finish(v, command)?,
        idempotency: idempotency(caller, "PostMessage", request_id, req),
    })
}

/// Most attachments one message links.
pub const MAX_MESSAGE_ATTACHMENTS: usize = 20;

/// PostMessage's `attachment_ids`: UUIDs, each once.
fn attachment_ids(v: &mut Violations, raw: &[String]) -> Option<Vec<Uuid>> {
    if raw.len() > MAX_MESSAGE_ATTACHMENTS {
        v.add(
            "attachment_ids",
            format!("holds {}; at most {MAX_MESSAGE_ATTACHMENTS}", raw.len()),
        );
        return None;
    }
    let mut ids = Vec::with_capacity(raw.len());
    let mut ok = true;
    for (i, id) in raw.iter().enumerate() {
        match v.take(&format!("attachment_ids[{i}]"), uuid(id)) {
            Some(id) if ids.contains(&id) => {
                v.add(format!("attachment_ids[{i}]"), "is named twice");
                ok = false;
            }
            Some(id) => ids.push(id),
            None => ok = false,
        }
    }
    ok.then_some(ids)
}

/// GetMessage: the message, within its ticket when `ticket_id` is set
/// (`None` = by its id alone, the original's flat path).
pub fn get_message(req: &pb::GetMessageRequest) -> ApiResult<(Option<TicketKey>, Uuid)> {
    let mut v = Violations::default();
    let key = if req.ticket_id.is_empty() {
        Some(None)
    } else {
        v.take("ticket_id", TicketKey::parse(&req.ticket_id))
            .map(Some)
    };
    let message_id = v.take("message_id", uuid(&req.message_id));
    let command = (|| Some((key?, message_id?)))();
    finish(v, command)
}

pub fn list_messages(
    caller: &Caller,
    req: &pb::ListMessagesRequest,
) -> ApiResult<(TicketKey, Page)> {
    ticket_page(
        caller,
        MESSAGES_PAGE,
        &req.ticket_id,
        req.page_size,
        &req.page_token,
    )
}

/// ListMessages and ListAttachments: which ticket, and the page of what it
/// holds (the token bound to the ticket as sent).
fn ticket_page(
    caller: &Caller,
    policy: PageSize,
    ticket_id: &str,
    page_size: i32,
    page_token: &str,
) -> ApiResult<(TicketKey, Page)> {
    let mut v = Violations::default();
    let key = v.take("ticket_id", TicketKey::parse(ticket_id));
    // Bound to the id as a String message, as it always was (tokens stay valid).
    let bound = ticket_id.to_owned();
    let page = page(&mut v, caller, policy, page_size, page_token, &bound);
    let command = (|| Some((key?, page?)))();
    finish(v, command)
}

/// UploadAttachment's first message (its fields are named `metadata.*`).
pub fn upload_attachment(
    caller: &Caller,
    meta: &pb::AttachmentUpload,
) -> ApiResult<Parsed<NewUpload>> {
    let mut v = Violations::default();
    let key = v.take("metadata.ticket_id", TicketKey::parse(&meta.ticket_id));
    let file_name = v.take("metadata.file_name", FileName::parse(&meta.file_name));
    let request_id = v
        .take("metadata.request_id", parse_request_id(&meta.request_id))
        .flatten();
    let command = (|| {
        Some(NewUpload {
            key: key?,
            file_name: file_name?,
            internal: meta.internal,
        })
    })();
    Ok(Parsed {
        command: finish(v, command)?,
        idempotency: idempotency(caller, "UploadAttachment", request_id, meta),
    })
}

/// GetAttachment and DownloadAttachment: which ticket, which attachment.
pub fn attachment_ref(ticket_id: &str, attachment_id: &str) -> ApiResult<(TicketKey, Uuid)> {
    let mut v = Violations::default();
    let key = v.take("ticket_id", TicketKey::parse(ticket_id));
    let id = v.take("attachment_id", uuid(attachment_id));
    let command = (|| Some((key?, id?)))();
    finish(v, command)
}

pub fn list_attachments(
    caller: &Caller,
    req: &pb::ListAttachmentsRequest,
) -> ApiResult<(TicketKey, Page)> {
    ticket_page(
        caller,
        ATTACHMENTS_PAGE,
        &req.ticket_id,
        req.page_size,
        &req.page_token,
    )
}

pub fn rate_ticket(caller: &Caller, req: &pb::RateTicketRequest) -> ApiResult<Parsed<NewRating>> {
    let mut v = Violations::default();
    let key = v.take("ticket_id", TicketKey::parse(&req.ticket_id));
    let rating = v.take("rating", Rating::parse(req.rating));
    let feedback = v.take("feedback", Text::parse_optional(&req.feedback));
    let request_id = request_id(&mut v, &req.request_id);
    let command = (|| {
        Some(NewRating {
            key: key?,
            rating: rating?,
            feedback: feedback?,
        })
    })();
    Ok(Parsed {
        command: finish(v, command)?,
        idempotency: idempotency(caller, "RateTicket", request_id, req),
    })
}

pub fn create_category(
    caller: &Caller,
    req: &pb::CreateCategoryRequest,
) -> ApiResult<Parsed<Category>> {
    let mut v = Violations::default();
    let request_id = request_id(&mut v, &req.request_id);
    let Some(c) = req.category.as_ref() else {
        v.add("category", "is required");
        return Err(ApiError::InvalidArgument(v));
    };
    let id = v.take("category.id", CategoryId::parse(&c.id));
    let name = v.take("category.name", CategoryName::parse(&c.name));
    let description = v.take(
        "category.description",
        CategoryDescription::parse_optional(&c.description),
    );
    let command = (|| {
        Some(Category {
            id: id?,
            name: name?,
            description: description?,
            // Unset means active: a proto3 bool would have meant inactive.
            active: c.active.unwrap_or(true),
            sort_order: c.sort_order,
        })
    })();
    Ok(Parsed {
        command: finish(v, command)?,
        idempotency: idempotency(caller, "CreateCategory", request_id, req),
    })
}

pub fn update_category(
    caller: &Caller,
    req: &pb::UpdateCategoryRequest,
) -> ApiResult<Parsed<(CategoryId, CategoryEdit)>> {
    let mut v = Violations::default();
    let request_id = request_id(&mut v, &req.request_id);
    let Some(c) = req.category.as_ref() else {
        v.add("category", "is required");
        return Err(ApiError::InvalidArgument(v));
    };
    let id = v.take("category.id", CategoryId::parse(&c.id));
    let mut edit = CategoryEdit::default();
    match req.update_mask.as_ref().map(|m| m.paths.as_slice()) {
        None | Some([]) => v.add("update_mask", "must name at least one field"),
        Some(paths) => {
            for path in paths {
                match path.as_str() {
                    "name" => edit.name = v.take("category.name", CategoryName::parse(&c.name)),
                    "description" => {
                        edit.description = v.take(
                            "category.description",
                            CategoryDescription::parse_optional(&c.description),
                        )
                    }
                    // Named in the mask, so it must say which.
                    "active" => {
                        edit.active = v.take(
                            "category.active",
                            c.active
                                .ok_or_else(|| "must be set when update_mask names it".to_owned()),
                        )
                    }
                    "sort_order" => edit.sort_order = Some(c.sort_order),
                    other => v.add("update_mask", format!("{other:?} cannot be updated")),
                }
            }
        }
    }
    let command = (|| Some((id?, edit)))();
    Ok(Parsed {
        command: finish(v, command)?,
        idempotency: idempotency(caller, "UpdateCategory", request_id, req),
    })
}
