//! Every field is validated: each bad value is INVALID_ARGUMENT with a
//! `google.rpc.BadRequest` violation naming the field, all bad fields of a
//! request are reported at once, a rejected write leaves no trace, and no
//! input at all makes the server fail with INTERNAL.
//!
//! Table-driven: each RPC has a `*_table()` of [`Case`] rows (one per bad
//! value of each field, built by [`each`], plus an "all wrong" row), and
//! [`Batch::run`] sends a table as one caller, checking every row and
//! collecting every failure. A new case is one more value in a list.

use std::fmt::Debug;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use helpdesk_proto::support::v1 as pb;
use prost_types::Timestamp;
use tonic::{Code, Response, Status};

use crate::helpers::{
    ALICE, BOB_RIDE, CAROL_INACTIVE, SAM, TestApp, UMA_INACTIVE_STAFF, UNKNOWN, mask, new_ticket,
    set_status, spawn, ticket_for, violated_fields,
};

/// A string for a failure message: long ones are cut.
fn short(s: &str) -> String {
    let chars = s.chars().count();
    if chars <= 24 {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(12).collect();
        format!("{head:?}…({chars} chars)")
    }
}

/// Everything a rejected call could have written.
#[derive(Debug, PartialEq)]
struct Footprint {
    tickets: i64,
    messages: i64,
    outbox: i64,
    idempotency_keys: i64,
    categories: String,
    /// The watched ticket's whole row.
    ticket: Option<String>,
}

impl Footprint {
    async fn of(app: &TestApp, ticket_id: Option<&str>) -> Self {
        let ticket = match ticket_id {
            Some(id) => sqlx::query_scalar("SELECT t::text FROM tickets t WHERE t.id = $1::uuid")
                .bind(id)
                .fetch_optional(&app.db.pool)
                .await
                .unwrap(),
            None => None,
        };
        Self {
            tickets: app.count("SELECT count(*) FROM tickets").await,
            messages: app.count("SELECT count(*) FROM ticket_messages").await,
            outbox: app.count("SELECT count(*) FROM outbox").await,
            idempotency_keys: app.count("SELECT count(*) FROM idempotency_keys").await,
            categories: sqlx::query_scalar(
                "SELECT coalesce(string_agg(c::text, ',' ORDER BY c.id), '') FROM categories c",
            )
            .fetch_one(&app.db.pool)
            .await
            .unwrap(),
            ticket,
        }
    }
}

/// A run of calls that must all be rejected: each one is checked for
/// INVALID_ARGUMENT naming the expected fields and for leaving the database
/// exactly as it was when the batch started. Failures are collected so one
/// run reports them all.
struct Batch<'a> {
    app: &'a TestApp,
    ticket: Option<String>,
    before: Footprint,
    failures: Vec<String>,
}

impl<'a> Batch<'a> {
    async fn start(app: &'a TestApp, ticket: Option<&str>) -> Self {
        Self {
            app,
            ticket: ticket.map(str::to_owned),
            before: Footprint::of(app, ticket).await,
            failures: Vec::new(),
        }
    }

    /// `result` must be INVALID_ARGUMENT naming every one of `fields`.
    async fn reject<T: Debug>(
        &mut self,
        case: impl Into<String>,
        result: Result<Response<T>, Status>,
        fields: &[&str],
    ) {
        let case = case.into();
        match result {
            Ok(response) => {
                let mut shown = format!("{:?}", response.into_inner());
                shown.truncate(300);
                self.failures.push(format!(
                    "{case}: expected INVALID_ARGUMENT on {fields:?}, got OK: {shown}"
                ));
            }
            Err(status) => {
                let got = violated_fields(&status);
                let missing: Vec<&&str> = fields
                    .iter()
                    .filter(|f| !got.iter().any(|g| g == *f))
                    .collect();
                if status.code() != Code::InvalidArgument || !missing.is_empty() {
                    let mut message = status.message().to_owned();
                    message.truncate(300);
                    self.failures.push(format!(
                        "{case}: expected INVALID_ARGUMENT on {fields:?}, got {:?} with violations {got:?} ({message})",
                        status.code()
                    ));
                }
            }
        }
        let after = Footprint::of(self.app, self.ticket.as_deref()).await;
        if after != self.before {
            self.failures.push(format!(
                "{case}: rejected, yet the database changed:\n  before {:?}\n  after  {after:?}",
                self.before
            ));
            self.before = after;
        }
    }

    fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} case(s) failed:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }

    /// Sends every case of a table through `call`; each must be rejected.
    async fn run<R, T: Debug>(
        &mut self,
        cases: Vec<Case<R>>,
        mut call: impl AsyncFnMut(R) -> Result<Response<T>, Status>,
    ) {
        for case in cases {
            let result = call(case.request).await;
            self.reject(case.name, result, case.fields).await;
        }
    }
}

/// One row of a table: a bad request and the fields it must be refused on.
struct Case<R> {
    name: String,
    request: R,
    fields: &'static [&'static str],
}

impl<R> Case<R> {
    fn new(name: impl Into<String>, request: R, fields: &'static [&'static str]) -> Self {
        Self {
            name: name.into(),
            request,
            fields,
        }
    }
}

/// One row per bad value of `field`: `build` puts the value into an
/// otherwise valid request.
fn each<R, V: Debug>(
    rpc: &str,
    field: &'static str,
    fields: &'static [&'static str],
    values: impl IntoIterator<Item = V>,
    build: impl Fn(V) -> R,
) -> Vec<Case<R>> {
    values
        .into_iter()
        .map(|value| {
            let name = format!("{rpc} {field}={}", short(&format!("{value:?}")));
            Case::new(name, build(value), fields)
        })
        .collect()
}

/// Admin deactivates a category (to check that it is refused for new use).
async fn deactivate(app: &TestApp, id: &str) {
    app.ada()
        .categories
        .update_category(pb::UpdateCategoryRequest {
            category: Some(pb::Category {
                id: id.into(),
                active: Some(false),
                ..Default::default()
            }),
            update_mask: mask(&["active"]),
            request_id: String::new(),
        })
        .await
        .expect("deactivate category");
}

/// Timestamps no list filter can take: beyond chrono, negative or too many
/// nanos, and outside the range `google.protobuf.Timestamp` defines
/// (0001-01-01 to 9999-12-31), including years PostgreSQL cannot store.
fn bad_timestamps() -> Vec<(&'static str, Timestamp)> {
    let at = |seconds, nanos| Timestamp { seconds, nanos };
    vec![
        ("seconds i64::MAX", at(i64::MAX, 0)),
        ("seconds i64::MIN", at(i64::MIN, 0)),
        ("nanos -1", at(0, -1)),
        ("nanos 1e9", at(0, 1_000_000_000)),
        ("nanos i32::MIN", at(0, i32::MIN)),
        (
            "year -29719 (before PostgreSQL's 4713 BC)",
            at(-1_000_000_000_000, 0),
        ),
        ("0000-12-31T23:59:59Z (before 0001)", at(-62_135_596_801, 0)),
        ("10000-01-01T00:00:00Z (after 9999)", at(253_402_300_800, 0)),
    ]
}

// ---------------------------------------------------------------------------
// CreateTicket
// ---------------------------------------------------------------------------

/// A valid CreateTicketRequest for Alice without a ride (rows change one field).
fn create_base() -> pb::CreateTicketRequest {
    pb::CreateTicketRequest {
        ride_id: String::new(),
        ..new_ticket("")
    }
}

/// CreateTicket as Alice: one row per bad value of each field.
fn create_ticket_as_user_table() -> Vec<Case<pb::CreateTicketRequest>> {
    let rpc = "CreateTicket";
    let subjects = [
        String::new(),
        "   ".into(),
        " \t\n\r ".into(),
        "a".repeat(201),
        "é".repeat(201),
        "🚗".repeat(201),
        "a\0b".into(),
        "\0".into(),
        "\0\0\0".into(),
    ];
    let descriptions = [
        String::new(),
        "  \n ".into(),
        "x".repeat(10_001),
        "é".repeat(10_001),
        "line one\0".into(),
        "\0".into(),
    ];
    let rides = [
        "not-a-uuid",
        "0d000000-0000-4000-8000-00000000000",
        "0d000000-0000-4000-8000-0000000000011",
        " 0d000000-0000-4000-8000-000000000001",
        "0d000000-0000-4000-8000-00000000000g",
        "\0",
        // Well-formed, but no such ride, or not Alice's.
        UNKNOWN,
        BOB_RIDE,
    ];
    let categories = [
        "Ride_Issue".to_owned(),
        "ride-issue".into(),
        "ride issue".into(),
        "ride_issue ".into(),
        "x".repeat(65),
        "é".into(),
        "ride_issue\0".into(),
        // Slugs, but no such category, or no longer active.
        "no_such_category".into(),
        "lost_item".into(),
    ];
    let request_ids = [
        "abc",
        "12345",
        "0a000000-0000-4000-8000-00000000000g",
        "0a000000-0000-4000-8000-0000000000011",
        "\0",
    ];
    // A malformed user_id is invalid for a user too (not "someone else").
    let user_ids = ["alice", "\0", "0a000000-0000-4000-8000-00000000000"];
    let mut table = Vec::new();
    table.extend(each(rpc, "subject", &["subject"], subjects, |subject| {
        pb::CreateTicketRequest {
            subject,
            ..create_base()
        }
    }));
    table.extend(each(
        rpc,
        "description",
        &["description"],
        descriptions,
        |description| pb::CreateTicketRequest {
            description,
            ..create_base()
        },
    ));
    table.extend(each(rpc, "ride_id", &["ride_id"], rides, |ride_id| {
        pb::CreateTicketRequest {
            ride_id: ride_id.into(),
            ..create_base()
        }
    }));
    table.extend(each(
        rpc,
        "category_id",
        &["category_id"],
        categories,
        |category_id| pb::CreateTicketRequest {
            category_id,
            ..create_base()
        },
    ));
    table.extend(each(
        rpc,
        "priority",
        &["priority"],
        [99, -1, 5, i32::MAX],
        |priority| pb::CreateTicketRequest {
            priority,
            ..create_base()
        },
    ));
    table.extend(each(
        rpc,
        "request_id",
        &["request_id"],
        request_ids,
        |request_id| pb::CreateTicketRequest {
            request_id: request_id.into(),
            ..create_base()
        },
    ));
    table.extend(each(rpc, "user_id", &["user_id"], user_ids, |user_id| {
        pb::CreateTicketRequest {
            user_id: user_id.into(),
            ..create_base()
        }
    }));
    // Everything wrong at once: every field reported in one status.
    table.push(Case::new(
        "CreateTicket as alice, all wrong",
        create_all_wrong(),
        CREATE_FIELDS,
    ));
    table
}

const CREATE_FIELDS: &[&str] = &[
    "user_id",
    "ride_id",
    "category_id",
    "subject",
    "description",
    "priority",
    "request_id",
];

fn create_all_wrong() -> pb::CreateTicketRequest {
    pb::CreateTicketRequest {
        user_id: "x".into(),
        ride_id: "x".into(),
        category_id: "X".into(),
        subject: String::new(),
        description: "\0".into(),
        priority: 99,
        request_id: "x".into(),
    }
}

/// CreateTicket as staff: they must name an existing, active account.
fn create_ticket_as_staff_table() -> Vec<Case<pb::CreateTicketRequest>> {
    let mut table = each(
        "CreateTicket as sam",
        "user_id",
        &["user_id"],
        ["", "alice", UNKNOWN, CAROL_INACTIVE],
        ticket_for,
    );
    table.push(Case::new(
        "CreateTicket as sam, all wrong",
        pb::CreateTicketRequest {
            user_id: String::new(),
            ..create_all_wrong()
        },
        CREATE_FIELDS,
    ));
    table
}

#[tokio::test]
async fn bad_input_create_ticket_validates_every_field() {
    let app = spawn().await;
    deactivate(&app, "lost_item").await;
    let mut batch = Batch::start(&app, None).await;
    batch
        .run(create_ticket_as_user_table(), async |req| {
            app.alice().tickets.create_ticket(req).await
        })
        .await;
    batch
        .run(create_ticket_as_staff_table(), async |req| {
            app.sam().tickets.create_ticket(req).await
        })
        .await;
    batch.finish();
    assert_eq!(app.count("SELECT count(*) FROM tickets").await, 0);

    // The limits count characters, not bytes; UNSPECIFIED priority is the default.
    for (subject, description) in [
        ("é".repeat(200), "é".repeat(10_000)),
        ("🚗".repeat(200), "🚗".repeat(10_000)),
    ] {
        let created = app
            .alice()
            .tickets
            .create_ticket(pb::CreateTicketRequest {
                subject: subject.clone(),
                description: description.clone(),
                priority: pb::TicketPriority::Unspecified.into(),
                ..create_base()
            })
            .await
            .unwrap_or_else(|s| panic!("subject {}: {s:?}", short(&subject)))
            .into_inner();
        assert_eq!(created.subject, subject);
        assert_eq!(created.description, description);
        assert_eq!(created.priority(), pb::TicketPriority::Medium);
    }
}

// ---------------------------------------------------------------------------
// GetTicket and ListTickets
// ---------------------------------------------------------------------------

/// Ids no request can take (malformed, not a shape of either id).
const BAD_TICKET_IDS: &[&str] = &[
    "",
    " ",
    "nope",
    "123",
    "TKT-",
    "TKT-AB12",
    "tkt-ab123",
    "TKT-ABC12",
    "TKT-ABC1234",
    "TKT-ABC123 ",
    "tkt-abc12x",
    "0a000000-0000-4000-8000-00000000000",
    "0a000000-0000-4000-8000-0000000000001",
    "\0",
];

/// ListTickets as staff: one row per bad value of each filter, the page
/// size, and `token` (a real token of staff's unfiltered list) mangled or
/// replayed with other filters.
fn list_tickets_table(token: &str) -> Vec<Case<pb::ListTicketsRequest>> {
    let rpc = "ListTickets";
    let none = pb::ListTicketsRequest::default;
    let mut table = each(
        rpc,
        "page_size",
        &["page_size"],
        [-1, i32::MIN],
        |page_size| pb::ListTicketsRequest {
            page_size,
            ..none()
        },
    );
    let mut wrong_version = URL_SAFE_NO_PAD.decode(token).unwrap();
    wrong_version[0] = 99;
    let garbage = [
        "garbage".to_owned(),
        "!!!!".into(),
        "AAAA".into(),
        URL_SAFE_NO_PAD.encode([0_u8; 33]),
        URL_SAFE_NO_PAD.encode([1_u8; 32]),
        URL_SAFE_NO_PAD.encode(wrong_version),
        format!("{token}A"),
        token[..token.len() - 1].to_owned(),
        "\0".into(),
    ];
    table.extend(each(
        rpc,
        "page_token",
        &["page_token"],
        garbage,
        |page_token| pb::ListTicketsRequest {
            page_token,
            ..none()
        },
    ));
    let other_filters = [
        (
            "status",
            pb::ListTicketsRequest {
                statuses: vec![pb::TicketStatus::Open.into()],
                ..none()
            },
        ),
        (
            "open",
            pb::ListTicketsRequest {
                open: true,
                ..none()
            },
        ),
        (
            "user_id",
            pb::ListTicketsRequest {
                user_id: ALICE.into(),
                ..none()
            },
        ),
        (
            "category_id",
            pb::ListTicketsRequest {
                category_id: "ride_issue".into(),
                ..none()
            },
        ),
        (
            "created_after",
            pb::ListTicketsRequest {
                created_after: Some(Timestamp {
                    seconds: 0,
                    nanos: 0,
                }),
                ..none()
            },
        ),
    ];
    for (filter, req) in other_filters {
        table.push(Case::new(
            format!("ListTickets page token reused with {filter} set"),
            pb::ListTicketsRequest {
                page_size: 1,
                page_token: token.to_owned(),
                ..req
            },
            &["page_token"],
        ));
    }
    table.extend(each(
        rpc,
        "statuses",
        &["statuses"],
        [99, -1, 6, 0],
        |status| pb::ListTicketsRequest {
            statuses: vec![pb::TicketStatus::Open.into(), status],
            ..none()
        },
    ));
    table.extend(each(
        rpc,
        "priority",
        &["priority"],
        [99, -1, 5],
        |priority| pb::ListTicketsRequest { priority, ..none() },
    ));
    table.extend(each(
        rpc,
        "category_id",
        &["category_id"],
        ["Bad!", "ride-issue", "RIDE_ISSUE", "\0"],
        |category_id| pb::ListTicketsRequest {
            category_id: category_id.into(),
            ..none()
        },
    ));
    let bad_uuids = ["x", "sam", "0b000000-0000-4000-8000-00000000000", "\0"];
    table.extend(each(rpc, "assignee_id", &["assignee_id"], bad_uuids, |v| {
        pb::ListTicketsRequest {
            assignee_id: v.into(),
            ..none()
        }
    }));
    table.extend(each(rpc, "ride_id", &["ride_id"], bad_uuids, |v| {
        pb::ListTicketsRequest {
            ride_id: v.into(),
            ..none()
        }
    }));
    table.extend(each(rpc, "user_id", &["user_id"], bad_uuids, |v| {
        pb::ListTicketsRequest {
            user_id: v.into(),
            ..none()
        }
    }));
    for (label, t) in bad_timestamps() {
        table.push(Case::new(
            format!("ListTickets created_after {label}"),
            pb::ListTicketsRequest {
                created_after: Some(t),
                ..none()
            },
            &["created_after"],
        ));
        table.push(Case::new(
            format!("ListTickets created_before {label}"),
            pb::ListTicketsRequest {
                created_before: Some(t),
                ..none()
            },
            &["created_before"],
        ));
    }
    table.push(Case::new(
        "ListTickets, all wrong",
        pb::ListTicketsRequest {
            page_size: -1,
            page_token: "x".into(),
            statuses: vec![99],
            open: true,
            priority: 99,
            category_id: "X".into(),
            assignee_id: "x".into(),
            ride_id: "x".into(),
            user_id: "x".into(),
            created_after: Some(Timestamp {
                seconds: 0,
                nanos: -1,
            }),
            created_before: Some(Timestamp {
                seconds: i64::MAX,
                nanos: 0,
            }),
        },
        &[
            "page_size",
            "page_token",
            "statuses",
            "priority",
            "category_id",
            "assignee_id",
            "ride_id",
            "user_id",
            "created_after",
            "created_before",
        ],
    ));
    table
}

#[tokio::test]
async fn bad_input_get_and_list_tickets_validate_ids_filters_and_pages() {
    let app = spawn().await;
    for _ in 0..3 {
        app.alice_ticket().await;
    }
    let mut batch = Batch::start(&app, None).await;

    let get_table = each("GetTicket", "id", &["id"], BAD_TICKET_IDS, |id| {
        pb::GetTicketRequest { id: (*id).into() }
    });
    batch
        .run(get_table, async |req| {
            app.sam().tickets.get_ticket(req).await
        })
        .await;
    // Well-formed ids of tickets that do not exist are NOT_FOUND, not invalid.
    for id in [UNKNOWN, "TKT-ZZZ999"] {
        let status = app
            .sam()
            .tickets
            .get_ticket(pb::GetTicketRequest { id: id.into() })
            .await
            .expect_err("missing ticket");
        assert_eq!(status.code(), Code::NotFound, "GetTicket {id}: {status:?}");
    }

    let shared = &app;
    let list = move |req: pb::ListTicketsRequest| async move {
        shared.sam().tickets.list_tickets(req).await
    };
    let first = list(pb::ListTicketsRequest {
        page_size: 1,
        ..Default::default()
    })
    .await
    .expect("first page")
    .into_inner();
    let token = first.next_page_token;
    assert!(!token.is_empty(), "3 tickets, page size 1: a next page");
    batch.run(list_tickets_table(&token), list).await;
    // Another caller's token, and a user's malformed user_id filter (invalid,
    // not "someone else's").
    batch
        .run(
            vec![Case::new(
                "ListTickets page token of sam's replayed by ada",
                pb::ListTicketsRequest {
                    page_size: 1,
                    page_token: token.clone(),
                    ..Default::default()
                },
                &["page_token"],
            )],
            async |req| app.ada().tickets.list_tickets(req).await,
        )
        .await;
    batch
        .run(
            vec![Case::new(
                "ListTickets as alice user_id=\"alice\"",
                pb::ListTicketsRequest {
                    user_id: "alice".into(),
                    ..Default::default()
                },
                &["user_id"],
            )],
            async |req| app.alice().tickets.list_tickets(req).await,
        )
        .await;
    batch.finish();

    // The edges that are fine: sizes 1 and 100, above the maximum (served as
    // the maximum, AIP-158), and the same token with
    // another page size (page size is not a filter).
    for page_size in [1, 100, 101, i32::MAX] {
        list(pb::ListTicketsRequest {
            page_size,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|s| panic!("page_size {page_size}: {s:?}"));
    }
    let second = list(pb::ListTicketsRequest {
        page_size: 2,
        page_token: token,
        ..Default::default()
    })
    .await
    .expect("same filters, other page size")
    .into_inner();
    assert_eq!(second.tickets.len(), 2);
}

// ---------------------------------------------------------------------------
// UpdateTicket and AssignTicket
// ---------------------------------------------------------------------------

fn update(t: pb::Ticket, paths: Option<&[&str]>, request_id: &str) -> pb::UpdateTicketRequest {
    pb::UpdateTicketRequest {
        ticket: Some(t),
        update_mask: paths.and_then(mask),
        request_id: request_id.into(),
    }
}

/// UpdateTicket by staff on the ticket `id`: one row per bad value of each
/// field, of the mask, and everything at once.
fn update_ticket_table(id: &str) -> Vec<Case<pb::UpdateTicketRequest>> {
    let rpc = "UpdateTicket";
    // The ticket moved to in progress: rows change one field of it.
    let in_progress = || pb::Ticket {
        id: id.to_owned(),
        status: pb::TicketStatus::InProgress.into(),
        ..Default::default()
    };
    let status_update = |t: pb::Ticket| update(t, Some(&["status"]), "");
    let mut table = vec![
        Case::new(
            "UpdateTicket without ticket",
            pb::UpdateTicketRequest {
                ticket: None,
                update_mask: mask(&["status"]),
                request_id: String::new(),
            },
            &["ticket"],
        ),
        // A missing resource does not hide the request's other violations.
        Case::new(
            "UpdateTicket without ticket, bad request_id",
            pb::UpdateTicketRequest {
                ticket: None,
                update_mask: mask(&["status"]),
                request_id: "not-a-uuid".into(),
            },
            &["ticket", "request_id"],
        ),
    ];
    table.extend(each(
        rpc,
        "ticket.id",
        &["ticket.id"],
        ["", "nope", "TKT-", "TKT-AB1", "\0"],
        |bad_id| {
            status_update(pb::Ticket {
                id: bad_id.into(),
                ..in_progress()
            })
        },
    ));
    table.extend(each(
        rpc,
        "ticket.etag",
        &["ticket.etag"],
        ["abc", "1.5", "W/\"1\"", "\0"],
        |etag| {
            status_update(pb::Ticket {
                etag: etag.into(),
                ..in_progress()
            })
        },
    ));
    let masks: [Option<&'static [&'static str]>; 9] = [
        None,
        Some(&[]),
        Some(&["subject"]),
        Some(&["description"]),
        Some(&["user_id"]),
        Some(&["Status"]),
        Some(&[""]),
        Some(&["ticket.status"]),
        Some(&["status", "bogus"]),
    ];
    table.extend(each(rpc, "update_mask", &["update_mask"], masks, |paths| {
        update(in_progress(), paths, "")
    }));
    table.extend(each(
        rpc,
        "ticket.status",
        &["ticket.status"],
        [0, 99, -3],
        |status| {
            status_update(pb::Ticket {
                status,
                ..in_progress()
            })
        },
    ));
    table.extend(each(
        rpc,
        "ticket.priority",
        &["ticket.priority"],
        [0, 99, -1],
        |priority| {
            update(
                pb::Ticket {
                    priority,
                    ..in_progress()
                },
                Some(&["priority"]),
                "",
            )
        },
    ));
    table.extend(each(
        rpc,
        "ticket.category_id",
        &["ticket.category_id"],
        [
            String::new(),
            "Bad".into(),
            "ride-issue".into(),
            "x".repeat(65),
            "no_such_category".into(),
            "lost_item".into(),
        ],
        |category_id| {
            update(
                pb::Ticket {
                    category_id,
                    ..in_progress()
                },
                Some(&["category_id"]),
                "",
            )
        },
    ));
    // Malformed, unknown, not staff, deactivated staff.
    table.extend(each(
        rpc,
        "ticket.assignee_id",
        &["ticket.assignee_id"],
        ["nope", "\0", UNKNOWN, ALICE, UMA_INACTIVE_STAFF],
        |assignee| {
            update(
                pb::Ticket {
                    assignee_id: assignee.into(),
                    ..in_progress()
                },
                Some(&["assignee_id"]),
                "",
            )
        },
    ));
    table.extend(each(
        rpc,
        "request_id",
        &["request_id"],
        ["x", "12345", "\0"],
        |request_id| update(in_progress(), Some(&["status"]), request_id),
    ));
    table.push(Case::new(
        "UpdateTicket, all wrong",
        update(
            pb::Ticket {
                id: "nope".into(),
                etag: "x".into(),
                status: 0,
                priority: 99,
                category_id: "X".into(),
                assignee_id: "x".into(),
                ..Default::default()
            },
            Some(&["status", "priority", "category_id", "assignee_id", "bogus"]),
            "x",
        ),
        &[
            "ticket.id",
            "ticket.etag",
            "ticket.status",
            "ticket.priority",
            "ticket.category_id",
            "ticket.assignee_id",
            "update_mask",
            "request_id",
        ],
    ));
    table
}

/// AssignTicket by staff on the ticket `id`.
fn assign_ticket_table(id: &str) -> Vec<Case<pb::AssignTicketRequest>> {
    let rpc = "AssignTicket";
    let assign = |ticket_id: &str, assignee_id: &str, request_id: &str| pb::AssignTicketRequest {
        ticket_id: ticket_id.into(),
        assignee_id: assignee_id.into(),
        request_id: request_id.into(),
    };
    let mut table = each(
        rpc,
        "ticket_id",
        &["ticket_id"],
        ["", "nope", "TKT-", "\0"],
        |ticket_id| assign(ticket_id, SAM, ""),
    );
    table.extend(each(
        rpc,
        "assignee_id",
        &["assignee_id"],
        ["", "nope", "\0", UNKNOWN, ALICE, UMA_INACTIVE_STAFF],
        |assignee| assign(id, assignee, ""),
    ));
    table.push(Case::new(
        "AssignTicket request_id=\"x\"",
        assign(id, SAM, "x"),
        &["request_id"],
    ));
    table.push(Case::new(
        "AssignTicket, all wrong",
        assign("nope", "nope", "nope"),
        &["ticket_id", "assignee_id", "request_id"],
    ));
    table
}

#[tokio::test]
async fn bad_input_update_and_assign_validate_and_change_nothing() {
    let app = spawn().await;
    deactivate(&app, "lost_item").await;
    let ticket = app.alice_ticket().await;
    let id = ticket.id.clone();
    let mut batch = Batch::start(&app, Some(&id)).await;
    batch
        .run(update_ticket_table(&id), async |req| {
            app.sam().tickets.update_ticket(req).await
        })
        .await;
    batch
        .run(assign_ticket_table(&id), async |req| {
            app.sam().tickets.assign_ticket(req).await
        })
        .await;
    batch.finish();

    // Read back over the API too: same version, same fields.
    let now = app
        .sam()
        .tickets
        .get_ticket(pb::GetTicketRequest { id: id.clone() })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(now.etag, ticket.etag);
    assert_eq!(now.status(), ticket.status());
    assert_eq!(now.priority(), ticket.priority());
    assert_eq!(now.category_id, ticket.category_id);
    assert_eq!(now.assignee_id, ticket.assignee_id);
    assert_eq!(
        app.count("SELECT count(*) FROM outbox").await,
        1,
        "only the creation"
    );
}

// ---------------------------------------------------------------------------
// Messages and ratings
// ---------------------------------------------------------------------------

fn post(ticket_id: &str, body: &str, request_id: &str) -> pb::PostMessageRequest {
    pb::PostMessageRequest {
        ticket_id: ticket_id.into(),
        body: body.into(),
        internal: false,
        request_id: request_id.into(),
        attachment_ids: Vec::new(),
    }
}

fn rate(ticket_id: &str, rating: i32, feedback: &str, request_id: &str) -> pb::RateTicketRequest {
    pb::RateTicketRequest {
        ticket_id: ticket_id.into(),
        rating,
        feedback: feedback.into(),
        request_id: request_id.into(),
    }
}

fn list_messages(ticket_id: &str, page_size: i32, page_token: &str) -> pb::ListMessagesRequest {
    pb::ListMessagesRequest {
        ticket_id: ticket_id.into(),
        page_size,
        page_token: page_token.into(),
    }
}

/// Message bodies no message can have.
fn bad_bodies() -> [String; 7] {
    [
        String::new(),
        "  ".into(),
        "\n\t\r".into(),
        "\0".into(),
        "hi\0".into(),
        "x".repeat(10_001),
        "é".repeat(10_001),
    ]
}

/// PostMessage by the owner on the ticket `id`.
fn post_message_table(id: &str) -> Vec<Case<pb::PostMessageRequest>> {
    let rpc = "PostMessage";
    let mut table = each(
        rpc,
        "ticket_id",
        &["ticket_id"],
        ["", "nope", "TKT-", "TKT-ABC12", "\0"],
        |ticket_id| post(ticket_id, "Hello", ""),
    );
    table.extend(each(rpc, "body", &["body"], bad_bodies(), |body| {
        post(id, &body, "")
    }));
    table.extend(each(
        rpc,
        "request_id",
        &["request_id"],
        ["x", "\0", "0a000000-0000-4000-8000-00000000000"],
        |request_id| post(id, "Hello", request_id),
    ));
    table.push(Case::new(
        "PostMessage, all wrong",
        post("x", "", "x"),
        &["ticket_id", "body", "request_id"],
    ));
    table
}

/// GetMessage by the owner: ticket `id`, message `message_id`.
fn get_message_table(id: &str, message_id: &str) -> Vec<Case<pb::GetMessageRequest>> {
    let get = |ticket_id: &str, message_id: &str| pb::GetMessageRequest {
        ticket_id: ticket_id.into(),
        message_id: message_id.into(),
    };
    let mut table = each(
        "GetMessage",
        "ticket_id",
        &["ticket_id"],
        // Empty is fine: the message is then found by its id alone.
        ["nope", "\0"],
        |ticket_id| get(ticket_id, message_id),
    );
    table.extend(each(
        "GetMessage",
        "message_id",
        &["message_id"],
        ["", "nope", "TKT-ABC123", "\0"],
        |bad| get(id, bad),
    ));
    table.push(Case::new(
        "GetMessage, all wrong",
        get("x", "y"),
        &["ticket_id", "message_id"],
    ));
    table
}

/// ListMessages by the owner on ticket `id` (`other` is another of theirs,
/// `token` a real token of `id`'s messages).
fn list_messages_table(id: &str, other: &str, token: &str) -> Vec<Case<pb::ListMessagesRequest>> {
    let rpc = "ListMessages";
    let mut table = each(
        rpc,
        "ticket_id",
        &["ticket_id"],
        ["", "nope", "\0"],
        |ticket_id| list_messages(ticket_id, 0, ""),
    );
    table.extend(each(
        rpc,
        "page_size",
        &["page_size"],
        [-1, i32::MIN],
        |page_size| list_messages(id, page_size, ""),
    ));
    table.extend(each(
        rpc,
        "page_token",
        &["page_token"],
        [
            "garbage".to_owned(),
            "AAAA".into(),
            "\0".into(),
            format!("{token}A"),
        ],
        |page_token| list_messages(id, 1, &page_token),
    ));
    // A token of one ticket's messages replayed on another ticket.
    table.push(Case::new(
        "ListMessages page token replayed on another ticket",
        list_messages(other, 1, token),
        &["page_token"],
    ));
    table.push(Case::new(
        "ListMessages, all wrong",
        list_messages("", -1, "x"),
        &["ticket_id", "page_size", "page_token"],
    ));
    table
}

/// RateTicket by the owner on the resolved ticket `id`.
fn rate_ticket_table(id: &str) -> Vec<Case<pb::RateTicketRequest>> {
    let rpc = "RateTicket";
    let mut table = each(
        rpc,
        "rating",
        &["rating"],
        [0, 6, -1, i32::MAX, i32::MIN],
        |rating| rate(id, rating, "", ""),
    );
    table.extend(each(
        rpc,
        "feedback",
        &["feedback"],
        [
            "x".repeat(10_001),
            "é".repeat(10_001),
            "\0".into(),
            "ok\0".into(),
        ],
        |feedback| rate(id, 5, &feedback, ""),
    ));
    table.extend(each(
        rpc,
        "ticket_id",
        &["ticket_id"],
        ["", "nope", "\0"],
        |ticket_id| rate(ticket_id, 5, "", ""),
    ));
    table.push(Case::new(
        "RateTicket request_id=\"x\"",
        rate(id, 5, "", "x"),
        &["request_id"],
    ));
    table.push(Case::new(
        "RateTicket, all wrong",
        rate("x", 0, "\0", "x"),
        &["ticket_id", "rating", "feedback", "request_id"],
    ));
    table
}

#[tokio::test]
async fn bad_input_messages_and_ratings_validate_and_change_nothing() {
    let app = spawn().await;
    let ticket = app.alice_ticket().await;
    let other = app.alice_ticket().await;
    let id = ticket.id.clone();
    for body in ["First", "Second"] {
        app.alice()
            .tickets
            .post_message(post(&id, body, ""))
            .await
            .expect("post");
    }
    let page = app
        .alice()
        .tickets
        .list_messages(list_messages(&id, 1, ""))
        .await
        .expect("first page")
        .into_inner();
    let message_id = page.messages[0].id.clone();
    let token = page.next_page_token;
    assert!(!token.is_empty());

    let mut batch = Batch::start(&app, Some(&id)).await;
    batch
        .run(post_message_table(&id), async |req| {
            app.alice().tickets.post_message(req).await
        })
        .await;
    // Staff's internal notes obey the same body rules.
    let notes = each(
        "PostMessage internal",
        "body",
        &["body"],
        bad_bodies(),
        |body| pb::PostMessageRequest {
            internal: true,
            ..post(&id, &body, "")
        },
    );
    batch
        .run(notes, async |req| app.sam().tickets.post_message(req).await)
        .await;
    batch
        .run(get_message_table(&id, &message_id), async |req| {
            app.alice().tickets.get_message(req).await
        })
        .await;
    batch
        .run(list_messages_table(&id, &other.id, &token), async |req| {
            app.alice().tickets.list_messages(req).await
        })
        .await;
    // The same token replayed by someone else.
    let by_sam = vec![Case::new(
        "ListMessages page token of alice's replayed by sam",
        list_messages(&id, 1, &token),
        &["page_token"],
    )];
    batch
        .run(by_sam, async |req| {
            app.sam().tickets.list_messages(req).await
        })
        .await;
    batch.finish();

    // Ratings, on a resolved ticket.
    let resolved = app
        .sam()
        .tickets
        .update_ticket(set_status(&other.id, pb::TicketStatus::Resolved))
        .await
        .expect("resolve")
        .into_inner();
    let mut batch = Batch::start(&app, Some(&other.id)).await;
    batch
        .run(rate_ticket_table(&other.id), async |req| {
            app.alice().tickets.rate_ticket(req).await
        })
        .await;
    batch.finish();

    let still = app
        .alice()
        .tickets
        .get_ticket(pb::GetTicketRequest {
            id: other.id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(still.rating, 0);
    assert_eq!(still.etag, resolved.etag);
    assert_eq!(still.status(), pb::TicketStatus::Resolved);

    // The edges that are fine: 10,000 characters (not bytes).
    let long = "é".repeat(10_000);
    let posted = app
        .alice()
        .tickets
        .post_message(post(&id, &long, ""))
        .await
        .expect("10,000 characters of body")
        .into_inner();
    assert_eq!(posted.body, long);
    let rated = app
        .alice()
        .tickets
        .rate_ticket(rate(&other.id, 5, &long, ""))
        .await
        .expect("10,000 characters of feedback")
        .into_inner();
    assert_eq!(rated.rating, 5);
    assert_eq!(rated.rating_feedback, long);
}

// ---------------------------------------------------------------------------
// Categories
// ---------------------------------------------------------------------------

fn category(id: &str, name: &str, description: &str) -> pb::Category {
    pb::Category {
        id: id.into(),
        name: name.into(),
        description: description.into(),
        active: Some(true),
        sort_order: 5,
    }
}

/// Category ids no request can take.
fn bad_slugs() -> [String; 7] {
    [
        String::new(),
        "Ride_Issue".into(),
        "ride-issue".into(),
        "ride issue".into(),
        "x".repeat(65),
        "é".into(),
        "\0".into(),
    ]
}

fn create_category(c: Option<pb::Category>, request_id: &str) -> pb::CreateCategoryRequest {
    pb::CreateCategoryRequest {
        category: c,
        request_id: request_id.into(),
    }
}

fn update_category(
    c: Option<pb::Category>,
    paths: Option<&[&str]>,
    request_id: &str,
) -> pb::UpdateCategoryRequest {
    pb::UpdateCategoryRequest {
        category: c,
        update_mask: paths.and_then(mask),
        request_id: request_id.into(),
    }
}

fn create_category_table() -> Vec<Case<pb::CreateCategoryRequest>> {
    let rpc = "CreateCategory";
    let mut table = vec![Case::new(
        "CreateCategory without category",
        create_category(None, ""),
        &["category"],
    )];
    table.extend(each(
        rpc,
        "category.id",
        &["category.id"],
        bad_slugs(),
        |id| create_category(Some(category(&id, "Name", "")), ""),
    ));
    table.extend(each(
        rpc,
        "category.name",
        &["category.name"],
        [
            String::new(),
            "  ".into(),
            "x".repeat(101),
            "é".repeat(101),
            "\0".into(),
        ],
        |name| create_category(Some(category("fresh", &name, "")), ""),
    ));
    table.extend(each(
        rpc,
        "category.description",
        &["category.description"],
        ["x".repeat(1_001), "é".repeat(1_001), "\0".into()],
        |description| create_category(Some(category("fresh", "Fresh", &description)), ""),
    ));
    table.push(Case::new(
        "CreateCategory request_id=\"x\"",
        create_category(Some(category("fresh", "Fresh", "")), "x"),
        &["request_id"],
    ));
    table.push(Case::new(
        "CreateCategory, all wrong",
        create_category(Some(category("X", "", "\0")), "x"),
        &[
            "category.id",
            "category.name",
            "category.description",
            "request_id",
        ],
    ));
    table
}

fn update_category_table() -> Vec<Case<pb::UpdateCategoryRequest>> {
    let rpc = "UpdateCategory";
    let renamed = || Some(category("other", "Renamed", "Renamed"));
    let mut table = vec![Case::new(
        "UpdateCategory without category",
        update_category(None, Some(&["name"]), ""),
        &["category"],
    )];
    let masks: [Option<&'static [&'static str]>; 6] = [
        None,
        Some(&[]),
        Some(&["id"]),
        Some(&["bogus"]),
        Some(&["Name"]),
        Some(&["name", "created_at"]),
    ];
    table.extend(each(rpc, "update_mask", &["update_mask"], masks, |paths| {
        update_category(renamed(), paths, "")
    }));
    table.extend(each(
        rpc,
        "category.id",
        &["category.id"],
        bad_slugs(),
        |id| update_category(Some(category(&id, "Renamed", "")), Some(&["name"]), ""),
    ));
    table.extend(each(
        rpc,
        "category.name",
        &["category.name"],
        [String::new(), "x".repeat(101), "\0".into()],
        |name| update_category(Some(category("other", &name, "")), Some(&["name"]), ""),
    ));
    table.push(Case::new(
        "UpdateCategory category.description of 1,001 characters",
        update_category(
            Some(category("other", "Other", &"x".repeat(1_001))),
            Some(&["description"]),
            "",
        ),
        &["category.description"],
    ));
    // Named in the mask, so it must say which.
    table.push(Case::new(
        "UpdateCategory active unset though masked",
        update_category(
            Some(pb::Category {
                active: None,
                ..category("other", "Other", "")
            }),
            Some(&["active"]),
            "",
        ),
        &["category.active"],
    ));
    table.push(Case::new(
        "UpdateCategory, all wrong",
        update_category(
            Some(category("X", "", &"x".repeat(1_001))),
            Some(&["name", "description", "bogus"]),
            "x",
        ),
        &[
            "category.id",
            "category.name",
            "category.description",
            "update_mask",
            "request_id",
        ],
    ));
    table
}

#[tokio::test]
async fn bad_input_category_rpcs_validate_and_change_nothing() {
    let app = spawn().await;
    let mut batch = Batch::start(&app, None).await;
    let get_table = each("GetCategory", "id", &["id"], bad_slugs(), |id| {
        pb::GetCategoryRequest { id }
    });
    batch
        .run(get_table, async |req| {
            app.alice().categories.get_category(req).await
        })
        .await;
    batch
        .run(create_category_table(), async |req| {
            app.ada().categories.create_category(req).await
        })
        .await;
    batch
        .run(update_category_table(), async |req| {
            app.ada().categories.update_category(req).await
        })
        .await;
    batch.finish();

    // The edges that are fine: 100 characters of name, 1,000 of description.
    let created = app
        .ada()
        .categories
        .create_category(create_category(
            Some(category("edge_case", &"é".repeat(100), &"é".repeat(1_000))),
            "",
        ))
        .await
        .expect("edge lengths")
        .into_inner();
    assert_eq!(created.name.chars().count(), 100);
}

// ---------------------------------------------------------------------------
// No input is an internal error
// ---------------------------------------------------------------------------

/// Strings a careless server could choke on.
fn odd_strings() -> Vec<String> {
    vec![
        "a".repeat(100_000),
        "é".repeat(100_000),
        "🎫".repeat(100_000),
        "\0".into(),
        "\0".repeat(1_000),
        "👩‍👩‍👧‍👦 family".into(),
        "\u{202e}reversed\u{202c}".into(),
        "\u{feff}\u{200b}\u{2060}".into(),
        "\u{10ffff}\u{fffd}".into(),
        "'; DROP TABLE tickets; --".into(),
        "%s%n%x\\x00".into(),
        "\r\n\r\n".into(),
        format!("TKT-{}{}", "A".repeat(50_000), "1".repeat(50_000)),
        format!("{UNKNOWN}\0"),
        "00000000-0000-0000-0000-000000000000".into(),
        "ffffffff-ffff-ffff-ffff-ffffffffffff".into(),
        "null".into(),
    ]
}

/// A real page token with its cursor time replaced by `micros` (the
/// filters' fingerprint left intact, so only the time is off).
fn retimed(token: &str, micros: i64) -> String {
    let mut bytes = URL_SAFE_NO_PAD.decode(token).expect("page token is base64");
    bytes[1..9].copy_from_slice(&micros.to_be_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Who sends a probe.
#[derive(Clone, Copy, Debug)]
enum Sender {
    Alice,
    Sam,
}

/// Any request of the ticket server, for probes that only look at the code.
enum Probe {
    CreateTicket(pb::CreateTicketRequest),
    GetTicket(pb::GetTicketRequest),
    ListTickets(pb::ListTicketsRequest),
    PostMessage(pb::PostMessageRequest),
    GetMessage(pb::GetMessageRequest),
    ListMessages(pb::ListMessagesRequest),
    GetCategory(pb::GetCategoryRequest),
}

/// Sends `probe` as `sender`; the status code it got.
async fn send(app: &TestApp, sender: Sender, probe: Probe) -> Code {
    fn code_of<T>(r: Result<Response<T>, Status>) -> Code {
        r.map_or_else(|s| s.code(), |_| Code::Ok)
    }
    let mut c = match sender {
        Sender::Alice => app.alice(),
        Sender::Sam => app.sam(),
    };
    match probe {
        Probe::CreateTicket(r) => code_of(c.tickets.create_ticket(r).await),
        Probe::GetTicket(r) => code_of(c.tickets.get_ticket(r).await),
        Probe::ListTickets(r) => code_of(c.tickets.list_tickets(r).await),
        Probe::PostMessage(r) => code_of(c.tickets.post_message(r).await),
        Probe::GetMessage(r) => code_of(c.tickets.get_message(r).await),
        Probe::ListMessages(r) => code_of(c.tickets.list_messages(r).await),
        Probe::GetCategory(r) => code_of(c.categories.get_category(r).await),
    }
}

/// Every field an odd string `s` can be sent in, on ticket `id`.
fn odd_string_table(s: &str, id: &str) -> Vec<(String, Sender, Probe)> {
    use Probe::*;
    use Sender::*;
    let label = short(s);
    let create = |f: fn(&mut pb::CreateTicketRequest, String)| {
        let mut req = new_ticket("");
        f(&mut req, s.to_owned());
        CreateTicket(req)
    };
    let rows: Vec<(&str, Sender, Probe)> = vec![
        ("CreateTicket subject", Alice, create(|r, s| r.subject = s)),
        (
            "CreateTicket description",
            Alice,
            create(|r, s| r.description = s),
        ),
        ("CreateTicket ride_id", Alice, create(|r, s| r.ride_id = s)),
        (
            "CreateTicket category_id",
            Alice,
            create(|r, s| r.category_id = s),
        ),
        ("CreateTicket user_id", Alice, create(|r, s| r.user_id = s)),
        (
            "CreateTicket request_id",
            Alice,
            create(|r, s| r.request_id = s),
        ),
        (
            "CreateTicket user_id (staff)",
            Sam,
            create(|r, s| {
                r.user_id = s;
                r.ride_id = String::new();
            }),
        ),
        ("PostMessage body", Alice, PostMessage(post(id, s, ""))),
        (
            "PostMessage ticket_id",
            Alice,
            PostMessage(post(s, "Hello", "")),
        ),
        (
            "PostMessage request_id",
            Alice,
            PostMessage(post(id, "Hello", s)),
        ),
        (
            "GetTicket as alice id",
            Alice,
            GetTicket(pb::GetTicketRequest { id: s.into() }),
        ),
        (
            "GetTicket as sam id",
            Sam,
            GetTicket(pb::GetTicketRequest { id: s.into() }),
        ),
        (
            "GetMessage message_id",
            Alice,
            GetMessage(pb::GetMessageRequest {
                ticket_id: id.into(),
                message_id: s.into(),
            }),
        ),
        (
            "ListTickets category_id",
            Sam,
            ListTickets(pb::ListTicketsRequest {
                category_id: s.into(),
                ..Default::default()
            }),
        ),
        (
            "ListTickets page_token",
            Sam,
            ListTickets(pb::ListTicketsRequest {
                page_token: s.into(),
                ..Default::default()
            }),
        ),
        (
            "ListMessages page_token",
            Alice,
            ListMessages(list_messages(id, 0, s)),
        ),
        (
            "GetCategory id",
            Alice,
            GetCategory(pb::GetCategoryRequest { id: s.into() }),
        ),
    ];
    rows.into_iter()
        .map(|(name, sender, probe)| (format!("{name}={label}"), sender, probe))
        .collect()
}

/// Out-of-range times, as filters and smuggled inside real page tokens.
fn odd_time_table(
    id: &str,
    tickets_token: &str,
    messages_token: &str,
) -> Vec<(String, Sender, Probe)> {
    let mut table: Vec<(String, Sender, Probe)> = bad_timestamps()
        .into_iter()
        .map(|(label, t)| {
            (
                format!("ListTickets created_after/before {label}"),
                Sender::Sam,
                Probe::ListTickets(pb::ListTicketsRequest {
                    created_after: Some(t),
                    created_before: Some(t),
                    ..Default::default()
                }),
            )
        })
        .collect();
    for micros in [
        i64::MIN,
        i64::MAX,
        -8_000_000_000_000_000_000, // ~253,000 BC: chrono can, PostgreSQL cannot
        8_000_000_000_000_000_000,  // ~255,000 AD
        -1,
    ] {
        table.push((
            format!("ListTickets page token at {micros} µs"),
            Sender::Alice,
            Probe::ListTickets(pb::ListTicketsRequest {
                page_size: 1,
                page_token: retimed(tickets_token, micros),
                ..Default::default()
            }),
        ));
        table.push((
            format!("ListMessages page token at {micros} µs"),
            Sender::Alice,
            Probe::ListMessages(list_messages(id, 1, &retimed(messages_token, micros))),
        ));
    }
    table
}

#[tokio::test]
async fn bad_input_odd_inputs_never_fail_internally() {
    let app = spawn().await;
    let ticket = app.alice_ticket().await;
    app.alice_ticket().await;
    let id = ticket.id.clone();
    let tickets_token = app
        .alice()
        .tickets
        .list_tickets(pb::ListTicketsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .next_page_token;
    for body in ["One", "Two"] {
        app.alice()
            .tickets
            .post_message(post(&id, body, ""))
            .await
            .expect("post");
    }
    let messages_token = app
        .alice()
        .tickets
        .list_messages(list_messages(&id, 1, ""))
        .await
        .expect("list messages")
        .into_inner()
        .next_page_token;
    assert!(!tickets_token.is_empty() && !messages_token.is_empty());

    let mut table: Vec<(String, Sender, Probe)> = odd_strings()
        .iter()
        .flat_map(|s| odd_string_table(s, &id))
        .collect();
    table.extend(odd_time_table(&id, &tickets_token, &messages_token));
    let mut failures = Vec::new();
    for (case, sender, probe) in table {
        let code = send(&app, sender, probe).await;
        if matches!(code, Code::Internal | Code::Unknown) {
            failures.push(format!("{case}: {code:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "inputs that made the server fail internally:\n{}",
        failures.join("\n")
    );
}
