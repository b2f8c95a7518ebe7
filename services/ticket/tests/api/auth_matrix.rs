//! The whole matrix of callers × RPCs.
//!
//! First who gets in at all: every RPC of both services answers
//! UNAUTHENTICATED to a missing, malformed, forged, expired or misdirected
//! token, while health and reflection stay open. Then what each role may do,
//! as tables of expected codes per role: another user's ticket is NOT_FOUND
//! (never PERMISSION_DENIED), role limits are PERMISSION_DENIED, and no
//! refused call writes anything.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Duration;
use helpdesk_kit::auth::{AuthConfig, Minter, Role};
use helpdesk_proto::support::v1 as pb;
use helpdesk_testkit::minter;
use tonic::{
    Code, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    transport::Channel,
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::{
    ADA, ALICE, As, BOB, BOB_RIDE, SAM, SERVICE, TestApp, UNKNOWN, expect_code, mask, new_ticket,
    set_status, spawn, ticket_for,
};

// ---------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------

/// The 15 RPCs of TicketService, CategoryService and OperationsService.
const RPC_COUNT: usize = 15;

/// Calls every RPC this server serves once with empty requests.
async fn call_every_rpc(c: &mut As) -> Vec<(&'static str, Result<(), Status>)> {
    fn done<T>(result: Result<tonic::Response<T>, Status>) -> Result<(), Status> {
        result.map(|_| ())
    }
    let t = &mut c.tickets;
    let mut out = vec![
        (
            "CreateTicket",
            done(t.create_ticket(pb::CreateTicketRequest::default()).await),
        ),
        (
            "GetTicket",
            done(t.get_ticket(pb::GetTicketRequest::default()).await),
        ),
        (
            "ListTickets",
            done(t.list_tickets(pb::ListTicketsRequest::default()).await),
        ),
        (
            "UpdateTicket",
            done(t.update_ticket(pb::UpdateTicketRequest::default()).await),
        ),
        (
            "AssignTicket",
            done(t.assign_ticket(pb::AssignTicketRequest::default()).await),
        ),
        (
            "BatchAssignTickets",
            done(
                t.batch_assign_tickets(pb::BatchAssignTicketsRequest::default())
                    .await,
            ),
        ),
        (
            "PostMessage",
            done(t.post_message(pb::PostMessageRequest::default()).await),
        ),
        (
            "GetMessage",
            done(t.get_message(pb::GetMessageRequest::default()).await),
        ),
        (
            "ListMessages",
            done(t.list_messages(pb::ListMessagesRequest::default()).await),
        ),
        (
            "RateTicket",
            done(t.rate_ticket(pb::RateTicketRequest::default()).await),
        ),
    ];
    let k = &mut c.categories;
    out.extend([
        (
            "ListCategories",
            done(
                k.list_categories(pb::ListCategoriesRequest::default())
                    .await,
            ),
        ),
        (
            "GetCategory",
            done(k.get_category(pb::GetCategoryRequest::default()).await),
        ),
        (
            "CreateCategory",
            done(
                k.create_category(pb::CreateCategoryRequest::default())
                    .await,
            ),
        ),
        (
            "UpdateCategory",
            done(
                k.update_category(pb::UpdateCategoryRequest::default())
                    .await,
            ),
        ),
    ]);
    out.push((
        "GetOutboxStatus",
        done(
            c.operations
                .get_outbox_status(pb::GetOutboxStatusRequest::default())
                .await,
        ),
    ));
    out
}

/// A token signed with the right secret but edited afterwards: the payload
/// of Alice's user token swapped for one claiming `admin`.
fn tampered_token() -> String {
    let genuine = minter().mint(ALICE, Role::User, Duration::hours(1));
    let parts: Vec<&str> = genuine.split('.').collect();
    let exp = (chrono::Utc::now() + Duration::hours(1)).timestamp();
    let payload = format!(
        r#"{{"sub":"{ALICE}","role":"admin","exp":{exp},"iss":"{}","aud":"{}"}}"#,
        helpdesk_kit::auth::DEFAULT_ISSUER,
        helpdesk_kit::auth::DEFAULT_AUDIENCE
    );
    format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload),
        parts[2]
    )
}

/// An unsigned token (`alg: none`) with otherwise valid admin claims.
fn unsigned_token() -> String {
    let exp = (chrono::Utc::now() + Duration::hours(1)).timestamp();
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"sub":"{ADA}","role":"admin","exp":{exp},"iss":"{}","aud":"{}"}}"#,
        helpdesk_kit::auth::DEFAULT_ISSUER,
        helpdesk_kit::auth::DEFAULT_AUDIENCE
    ));
    format!("{header}.{payload}.")
}

/// `authorization` values that must not get anyone in, with a label.
fn bad_credentials() -> Vec<(&'static str, Option<String>)> {
    let dev = AuthConfig::dev;
    let hour = Duration::hours(1);
    let other_secret = Minter::new(&AuthConfig {
        secret: "other".into(),
        ..dev()
    });
    let other_audience = Minter::new(&AuthConfig {
        audience: "someone-else".into(),
        ..dev()
    });
    let other_issuer = Minter::new(&AuthConfig {
        issuer: "someone-else".into(),
        ..dev()
    });
    let bearer = |token: String| Some(format!("Bearer {token}"));
    vec![
        ("no authorization header", None),
        ("Bearer garbage", Some("Bearer garbage".into())),
        ("Bearer without a token", Some("Bearer ".into())),
        (
            "a valid token without the Bearer scheme",
            Some(minter().mint(ADA, Role::Admin, hour)),
        ),
        (
            "a valid token under the Basic scheme",
            Some(format!("Basic {}", minter().mint(ADA, Role::Admin, hour))),
        ),
        (
            "signed with another secret",
            bearer(other_secret.mint(ADA, Role::Admin, hour)),
        ),
        (
            "expired two hours ago",
            bearer(minter().mint(ADA, Role::Admin, Duration::hours(-2))),
        ),
        (
            "for another audience",
            bearer(other_audience.mint(ADA, Role::Admin, hour)),
        ),
        (
            "from another issuer",
            bearer(other_issuer.mint(ADA, Role::Admin, hour)),
        ),
        (
            "user token whose sub is not a UUID",
            bearer(minter().mint("alice", Role::User, hour)),
        ),
        (
            "staff token whose sub is not a UUID",
            bearer(minter().mint("sam", Role::Staff, hour)),
        ),
        (
            "admin token whose sub is empty",
            bearer(minter().mint("", Role::Admin, hour)),
        ),
        ("payload edited after signing", bearer(tampered_token())),
        ("unsigned (alg none)", bearer(unsigned_token())),
    ]
}

#[tokio::test]
async fn auth_matrix_every_rpc_rejects_missing_or_invalid_credentials() {
    let app = spawn().await;
    let mut failures = Vec::new();
    for (label, header) in bad_credentials() {
        let mut client = app.with_header(header.as_deref());
        let outcomes = call_every_rpc(&mut client).await;
        assert_eq!(outcomes.len(), RPC_COUNT);
        for (rpc, outcome) in outcomes {
            let code = outcome.as_ref().err().map_or(Code::Ok, Status::code);
            if code != Code::Unauthenticated {
                failures.push(format!(
                    "{rpc} with {label}: expected Unauthenticated, got {code:?}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "credentials that got through:\n{}",
        failures.join("\n")
    );
    for table in ["tickets", "ticket_messages", "outbox", "idempotency_keys"] {
        let count: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&app.db.pool)
                .await
                .unwrap();
        assert_eq!(count, 0, "{table} written by an unauthenticated call");
    }

    // The same RPCs do let a valid token in (the rejections above were about
    // the credentials, not the requests).
    let listed = app
        .alice()
        .tickets
        .list_tickets(pb::ListTicketsRequest::default())
        .await;
    assert!(listed.is_ok(), "{listed:?}");
}

#[tokio::test]
async fn auth_matrix_health_and_reflection_need_no_token() {
    let app = spawn().await;
    let channel = Channel::from_shared(app.addr.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();

    let mut health = HealthClient::new(channel.clone());
    for service in ["", "support.v1.TicketService", "support.v1.CategoryService"] {
        let response = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|s| panic!("health check of {service:?} without a token: {s:?}"));
        assert_eq!(
            response.into_inner().status(),
            ServingStatus::Serving,
            "{service:?}"
        );
    }
    // A broken token does not matter to the probes either.
    let mut probed = HealthClient::with_interceptor(channel.clone(), |mut r: tonic::Request<()>| {
        r.metadata_mut()
            .insert("authorization", "Bearer garbage".parse().unwrap());
        Ok(r)
    });
    let response = probed
        .check(HealthCheckRequest {
            service: "support.v1.TicketService".into(),
        })
        .await
        .expect("health with a garbage token");
    assert_eq!(response.into_inner().status(), ServingStatus::Serving);

    // Reflection (v1 and v1alpha) lists the services without a token.
    for path in [
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ] {
        let services = list_services_by_reflection(channel.clone(), path).await;
        assert!(
            services.contains("support.v1.TicketService")
                && services.contains("support.v1.CategoryService"),
            "{path}: {services:?}"
        );
    }
}

/// Sends one `ServerReflectionRequest { list_services: "" }` (hand-encoded:
/// field 7, empty string) and returns the response as lossy text.
async fn list_services_by_reflection(channel: Channel, path: &'static str) -> String {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("channel ready");
    let request = tonic::Request::new(futures_util::stream::iter([vec![0x3a_u8, 0x00]]));
    let mut stream = grpc
        .streaming(
            request,
            tonic::codegen::http::uri::PathAndQuery::from_static(path),
            RawCodec,
        )
        .await
        .unwrap_or_else(|s| panic!("reflection {path} without a token: {s:?}"))
        .into_inner();
    let message = stream
        .message()
        .await
        .expect("reflection response")
        .expect("one message");
    String::from_utf8_lossy(&message).into_owned()
}

/// Passes message bytes through untouched.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        use prost::bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        use prost::bytes::Buf;
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

// ---------------------------------------------------------------------------
// Authorization
// ---------------------------------------------------------------------------

/// The callers of the matrix. `Owner` is Alice, who owns the fixture ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Owner,
    OtherUser,
    Staff,
    Admin,
    Service,
}

/// The column order of every row.
const ROLES: [Who; 5] = [
    Who::Owner,
    Who::OtherUser,
    Who::Staff,
    Who::Admin,
    Who::Service,
];

impl Who {
    fn client(self, app: &TestApp) -> As {
        match self {
            Who::Owner => app.alice(),
            Who::OtherUser => app.bob(),
            Who::Staff => app.sam(),
            Who::Admin => app.ada(),
            Who::Service => app.service(),
        }
    }

    fn sub(self) -> &'static str {
        match self {
            Who::Owner => ALICE,
            Who::OtherUser => BOB,
            Who::Staff => SAM,
            Who::Admin => ADA,
            Who::Service => SERVICE,
        }
    }
}

/// One request shape per row.
#[derive(Clone, Copy, Debug)]
enum Rpc {
    GetTicket,
    GetTicketByHumanId,
    ListTickets,
    ListTicketsOfAlice,
    UpdateTicket,
    AssignTicket,
    PostMessage,
    PostInternalNote,
    GetMessage,
    GetInternalNote,
    ListMessages,
    RateTicket,
    CreateTicketWithoutUserId,
    CreateTicketForAlice,
    ListCategories,
    GetCategory,
    CreateCategory,
    UpdateCategory,
    GetOutboxStatus,
}

const OK: Code = Code::Ok;
const NOT_FOUND: Code = Code::NotFound;
const DENIED: Code = Code::PermissionDenied;
const INVALID: Code = Code::InvalidArgument;

/// An RPC and the code each role gets, in [`ROLES`] order:
/// owner, other user, staff, admin, service.
type Row = (Rpc, [Code; 5]);

const TICKET_ROWS: &[Row] = &[
    (Rpc::GetTicket, [OK, NOT_FOUND, OK, OK, OK]),
    (Rpc::GetTicketByHumanId, [OK, NOT_FOUND, OK, OK, OK]),
    (Rpc::ListTickets, [OK, OK, OK, OK, OK]),
    (Rpc::ListTicketsOfAlice, [OK, DENIED, OK, OK, OK]),
    (Rpc::UpdateTicket, [DENIED, DENIED, OK, OK, OK]),
    (Rpc::AssignTicket, [DENIED, DENIED, OK, OK, OK]),
    (Rpc::PostMessage, [OK, NOT_FOUND, OK, OK, DENIED]),
    (Rpc::PostInternalNote, [DENIED, DENIED, OK, OK, DENIED]),
    (Rpc::GetMessage, [OK, NOT_FOUND, OK, OK, OK]),
    (Rpc::GetInternalNote, [NOT_FOUND, NOT_FOUND, OK, OK, OK]),
    (Rpc::ListMessages, [OK, NOT_FOUND, OK, OK, OK]),
    (Rpc::RateTicket, [OK, NOT_FOUND, DENIED, DENIED, DENIED]),
];

const CREATE_AND_CATEGORY_ROWS: &[Row] = &[
    // Users default to themselves; staff and services must name the user.
    (
        Rpc::CreateTicketWithoutUserId,
        [OK, OK, INVALID, INVALID, INVALID],
    ),
    (Rpc::CreateTicketForAlice, [OK, DENIED, OK, OK, OK]),
    (Rpc::ListCategories, [OK, OK, OK, OK, OK]),
    (Rpc::GetCategory, [OK, OK, OK, OK, OK]),
    (Rpc::CreateCategory, [DENIED, DENIED, DENIED, OK, DENIED]),
    (Rpc::UpdateCategory, [DENIED, DENIED, DENIED, OK, DENIED]),
    // The outbox backlog: operators (admins) and services, for alerts.
    (Rpc::GetOutboxStatus, [DENIED, DENIED, DENIED, OK, OK]),
];

/// Alice's open ticket with a public reply of hers and an internal note of
/// Sam's, plus Bob's own ticket.
struct Fixture {
    ticket: pb::Ticket,
    bobs: pb::Ticket,
    public_message: pb::TicketMessage,
    internal_note: pb::TicketMessage,
}

async fn fixture(app: &TestApp) -> Fixture {
    let ticket = app.alice_ticket().await;
    let bobs = app
        .bob()
        .tickets
        .create_ticket(pb::CreateTicketRequest {
            ride_id: BOB_RIDE.into(),
            ..new_ticket("")
        })
        .await
        .expect("bob's ticket")
        .into_inner();
    let public_message = app
        .alice()
        .tickets
        .post_message(message(&ticket.id, false))
        .await
        .expect("alice's reply")
        .into_inner();
    let internal_note = app
        .sam()
        .tickets
        .post_message(message(&ticket.id, true))
        .await
        .expect("sam's internal note")
        .into_inner();
    Fixture {
        ticket,
        bobs,
        public_message,
        internal_note,
    }
}

fn message(ticket_id: &str, internal: bool) -> pb::PostMessageRequest {
    pb::PostMessageRequest {
        ticket_id: ticket_id.into(),
        body: if internal {
            "Checked the trip log: detour confirmed."
        } else {
            "Any news on this?"
        }
        .into(),
        internal,
        request_id: String::new(),
        attachment_ids: Vec::new(),
    }
}

/// A fresh ticket of Alice's, resolved by Sam: rateable once.
async fn resolved_ticket(app: &TestApp) -> pb::Ticket {
    let ticket = app.alice_ticket().await;
    app.sam()
        .tickets
        .update_ticket(set_status(&ticket.id, pb::TicketStatus::Resolved))
        .await
        .expect("resolve")
        .into_inner()
}

/// Everything a call could have written: row counts and the target ticket.
#[derive(Debug, PartialEq)]
struct Footprint {
    counts: Vec<i64>,
    categories: String,
    target: Option<String>,
}

impl Footprint {
    async fn take(app: &TestApp, ticket_id: &str) -> Self {
        let counts = vec![
            app.count("SELECT count(*) FROM tickets").await,
            app.count("SELECT count(*) FROM ticket_messages").await,
            app.count("SELECT count(*) FROM outbox").await,
            app.count("SELECT count(*) FROM idempotency_keys").await,
        ];
        let categories: String = sqlx::query_scalar(
            "SELECT coalesce(string_agg(c::text, ',' ORDER BY c.id), '') FROM categories c",
        )
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        let target: Option<String> =
            sqlx::query_scalar("SELECT t::text FROM tickets t WHERE t.id = $1::uuid")
                .bind(ticket_id)
                .fetch_optional(&app.db.pool)
                .await
                .unwrap();
        Self {
            counts,
            categories,
            target,
        }
    }
}

/// Makes `rpc` as `who` against `target`, checking what an allowed call returns.
async fn call(
    app: &TestApp,
    fx: &Fixture,
    target: &pb::Ticket,
    rpc: Rpc,
    who: Who,
) -> Result<(), Status> {
    let mut c = who.client(app);
    let sees_all = !matches!(who, Who::Owner | Who::OtherUser);
    match rpc {
        Rpc::GetTicket | Rpc::GetTicketByHumanId => {
            let id = match rpc {
                Rpc::GetTicket => target.id.clone(),
                _ => target.human_id.clone(),
            };
            let got = c
                .tickets
                .get_ticket(pb::GetTicketRequest { id })
                .await?
                .into_inner();
            assert_eq!(got.id, target.id, "{rpc:?} as {who:?}");
        }
        Rpc::ListTickets | Rpc::ListTicketsOfAlice => {
            let user_id = match rpc {
                Rpc::ListTickets => String::new(),
                _ => ALICE.to_owned(),
            };
            let listed = c
                .tickets
                .list_tickets(pb::ListTicketsRequest {
                    page_size: 100,
                    user_id: user_id.clone(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            let ids: Vec<&str> = listed.tickets.iter().map(|t| t.id.as_str()).collect();
            let owners: Vec<&str> = listed.tickets.iter().map(|t| t.user_id.as_str()).collect();
            match who {
                Who::Owner | Who::OtherUser => {
                    let me = who.sub();
                    assert!(
                        owners.iter().all(|o| *o == me),
                        "{rpc:?} as {who:?} shows others' tickets: {owners:?}"
                    );
                    let (mine, theirs) = match who {
                        Who::Owner => (&fx.ticket.id, &fx.bobs.id),
                        _ => (&fx.bobs.id, &fx.ticket.id),
                    };
                    assert!(ids.contains(&mine.as_str()), "{rpc:?} as {who:?}: {ids:?}");
                    assert!(
                        !ids.contains(&theirs.as_str()),
                        "{rpc:?} as {who:?}: {ids:?}"
                    );
                }
                _ => {
                    assert!(
                        ids.contains(&fx.ticket.id.as_str()),
                        "{rpc:?} as {who:?}: {ids:?}"
                    );
                    if user_id.is_empty() {
                        assert!(
                            ids.contains(&fx.bobs.id.as_str()),
                            "{rpc:?} as {who:?}: {ids:?}"
                        );
                    } else {
                        assert!(
                            owners.iter().all(|o| *o == ALICE),
                            "{rpc:?} as {who:?}: {owners:?}"
                        );
                    }
                }
            }
        }
        Rpc::UpdateTicket => {
            let updated = c
                .tickets
                .update_ticket(pb::UpdateTicketRequest {
                    ticket: Some(pb::Ticket {
                        id: target.id.clone(),
                        priority: pb::TicketPriority::Urgent.into(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["priority"]),
                    request_id: String::new(),
                })
                .await?
                .into_inner();
            assert_eq!(updated.priority(), pb::TicketPriority::Urgent);
        }
        Rpc::AssignTicket => {
            let assigned = c
                .tickets
                .assign_ticket(pb::AssignTicketRequest {
                    ticket_id: target.id.clone(),
                    assignee_id: SAM.into(),
                    request_id: String::new(),
                })
                .await?
                .into_inner();
            assert_eq!(assigned.assignee_id, SAM);
        }
        Rpc::PostMessage | Rpc::PostInternalNote => {
            let internal = matches!(rpc, Rpc::PostInternalNote);
            let posted = c
                .tickets
                .post_message(message(&target.id, internal))
                .await?
                .into_inner();
            assert_eq!(posted.internal, internal);
            assert_eq!(posted.author_id, who.sub());
        }
        Rpc::GetMessage | Rpc::GetInternalNote => {
            let wanted = match rpc {
                Rpc::GetMessage => &fx.public_message,
                _ => &fx.internal_note,
            };
            let got = c
                .tickets
                .get_message(pb::GetMessageRequest {
                    ticket_id: target.id.clone(),
                    message_id: wanted.id.clone(),
                })
                .await?
                .into_inner();
            assert_eq!(got.id, wanted.id);
        }
        Rpc::ListMessages => {
            let listed = c
                .tickets
                .list_messages(pb::ListMessagesRequest {
                    ticket_id: target.id.clone(),
                    page_size: 100,
                    page_token: String::new(),
                })
                .await?
                .into_inner();
            let ids: Vec<&str> = listed.messages.iter().map(|m| m.id.as_str()).collect();
            assert!(
                ids.contains(&fx.public_message.id.as_str()),
                "{who:?}: {ids:?}"
            );
            assert_eq!(
                ids.contains(&fx.internal_note.id.as_str()),
                sees_all,
                "ListMessages as {who:?}: internal note visibility ({ids:?})"
            );
            if !sees_all {
                assert!(listed.messages.iter().all(|m| !m.internal), "{who:?}");
            }
        }
        Rpc::RateTicket => {
            let rated = c
                .tickets
                .rate_ticket(pb::RateTicketRequest {
                    ticket_id: target.id.clone(),
                    rating: 4,
                    feedback: "Sorted quickly.".into(),
                    request_id: String::new(),
                })
                .await?
                .into_inner();
            assert_eq!(rated.rating, 4);
        }
        Rpc::CreateTicketWithoutUserId | Rpc::CreateTicketForAlice => {
            let (user_id, owner) = match rpc {
                Rpc::CreateTicketForAlice => (ALICE, ALICE),
                _ => ("", who.sub()),
            };
            let created = c
                .tickets
                .create_ticket(pb::CreateTicketRequest {
                    user_id: user_id.into(),
                    ride_id: String::new(),
                    ..new_ticket("")
                })
                .await?
                .into_inner();
            assert_eq!(created.user_id, owner, "{rpc:?} as {who:?}");
        }
        Rpc::ListCategories => {
            let listed = c
                .categories
                .list_categories(pb::ListCategoriesRequest::default())
                .await?
                .into_inner();
            assert!(
                listed.categories.iter().any(|k| k.id == "ride_issue"),
                "{who:?}: {listed:?}"
            );
        }
        Rpc::GetCategory => {
            let got = c
                .categories
                .get_category(pb::GetCategoryRequest {
                    id: "ride_issue".into(),
                })
                .await?
                .into_inner();
            assert_eq!(got.id, "ride_issue");
        }
        Rpc::CreateCategory => {
            let id = format!("matrix_{}", format!("{who:?}").to_lowercase());
            let created = c
                .categories
                .create_category(pb::CreateCategoryRequest {
                    category: Some(pb::Category {
                        id: id.clone(),
                        name: "Matrix".into(),
                        description: "Created by the role matrix".into(),
                        active: Some(true),
                        sort_order: 99,
                    }),
                    request_id: String::new(),
                })
                .await?
                .into_inner();
            assert_eq!(created.id, id);
        }
        Rpc::UpdateCategory => {
            let updated = c
                .categories
                .update_category(pb::UpdateCategoryRequest {
                    category: Some(pb::Category {
                        id: "other".into(),
                        name: "Something else".into(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["name"]),
                    request_id: String::new(),
                })
                .await?
                .into_inner();
            assert_eq!(updated.name, "Something else");
        }
        Rpc::GetOutboxStatus => {
            let status = c
                .operations
                .get_outbox_status(pb::GetOutboxStatusRequest::default())
                .await?
                .into_inner();
            assert_eq!(status.unsent == 0, status.oldest_unsent_time.is_none());
        }
    }
    Ok(())
}

/// Walks `rows` role by role, in [`ROLES`] order (so denied attempts come
/// before allowed ones on the same ticket), and reports every mismatch at
/// once. A refused call must leave no trace.
async fn walk(app: &TestApp, fx: &Fixture, rows: &[Row]) {
    let mut mismatches = Vec::new();
    for &(rpc, expected) in rows {
        for (who, want) in ROLES.into_iter().zip(expected) {
            // Rating is once per ticket: every attempt gets its own.
            let target = match rpc {
                Rpc::RateTicket => resolved_ticket(app).await,
                _ => fx.ticket.clone(),
            };
            let before = Footprint::take(app, &target.id).await;
            let outcome = call(app, fx, &target, rpc, who).await;
            let code = outcome.as_ref().err().map_or(Code::Ok, Status::code);
            if code != Code::Ok {
                assert_eq!(
                    Footprint::take(app, &target.id).await,
                    before,
                    "{rpc:?} as {who:?} failed with {code:?} yet wrote something"
                );
            }
            if code != want {
                let detail = outcome.err().map(|s| s.message().to_owned());
                mismatches.push(format!(
                    "{rpc:?} as {who:?}: expected {want:?}, got {code:?} {detail:?}"
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "role matrix mismatches:\n{}",
        mismatches.join("\n")
    );
}

#[tokio::test]
async fn auth_matrix_ticket_and_message_rpcs_by_role() {
    let app = spawn().await;
    let fx = fixture(&app).await;
    walk(&app, &fx, TICKET_ROWS).await;

    // Bob's NOT_FOUND for Alice's ticket is the one for a ticket that does
    // not exist: nothing tells him it is there.
    let theirs = app
        .bob()
        .tickets
        .get_ticket(pb::GetTicketRequest {
            id: fx.ticket.id.clone(),
        })
        .await
        .expect_err("bob reads alice's ticket");
    let missing = app
        .bob()
        .tickets
        .get_ticket(pb::GetTicketRequest { id: UNKNOWN.into() })
        .await
        .expect_err("bob reads a missing ticket");
    assert_eq!(theirs.code(), missing.code());
    assert_eq!(
        theirs.message().replace(&fx.ticket.id, "<id>"),
        missing.message().replace(UNKNOWN, "<id>")
    );
}

#[tokio::test]
async fn auth_matrix_creation_and_category_rpcs_by_role() {
    let app = spawn().await;
    let fx = fixture(&app).await;
    walk(&app, &fx, CREATE_AND_CATEGORY_ROWS).await;
}

/// Other teams' services (not in TRUSTED_SERVICES) open tickets for users
/// and read them; they do not edit, assign, read internal notes or the ops view.
#[tokio::test]
async fn auth_matrix_other_teams_services_get_no_staff_powers() {
    let app = spawn().await;
    let mut payments = app.as_("payments-service", Role::Service);
    let ticket = payments
        .tickets
        .create_ticket(ticket_for(ALICE))
        .await
        .expect("a platform service opens a ticket for a user")
        .into_inner();
    payments
        .tickets
        .get_ticket(pb::GetTicketRequest {
            id: ticket.id.clone(),
        })
        .await
        .expect("and reads it");
    let note = app
        .sam()
        .tickets
        .post_message(pb::PostMessageRequest {
            ticket_id: ticket.id.clone(),
            body: "Refund approved by finance".into(),
            internal: true,
            request_id: String::new(),
            attachment_ids: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let get_note = pb::GetMessageRequest {
        ticket_id: ticket.id.clone(),
        message_id: note.id.clone(),
    };
    expect_code(
        payments.tickets.get_message(get_note.clone()).await,
        Code::NotFound,
    );
    let listed = payments
        .tickets
        .list_messages(pb::ListMessagesRequest {
            ticket_id: ticket.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed.messages.is_empty(),
        "internal notes leaked: {listed:?}"
    );
    expect_code(
        payments
            .tickets
            .update_ticket(set_status(&ticket.id, pb::TicketStatus::Closed))
            .await,
        Code::PermissionDenied,
    );
    expect_code(
        payments
            .tickets
            .assign_ticket(pb::AssignTicketRequest {
                ticket_id: ticket.id.clone(),
                assignee_id: SAM.into(),
                request_id: String::new(),
            })
            .await,
        Code::PermissionDenied,
    );
    // Our own services keep their powers.
    app.service()
        .tickets
        .get_message(get_note)
        .await
        .expect("a trusted service reads notes");
    // An internal note changes nothing the user can see, not even the etag.
    let after = app
        .alice()
        .tickets
        .get_ticket(pb::GetTicketRequest {
            id: ticket.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.etag, ticket.etag);
}
