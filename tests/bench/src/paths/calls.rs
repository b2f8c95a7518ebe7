//! Each hot path twice: the call through the service over gRPC, and the
//! database limit: the smallest transaction doing the same durable work
//! (writes) or the same query (reads), issued straight from a pool.

use helpdesk_kit::clock::to_timestamp;
use helpdesk_proto::support::v1::{
    self as pb, faq_service_client::FaqServiceClient,
    statistics_service_client::StatisticsServiceClient,
};
use std::sync::atomic::Ordering;

use ticket_service::domain::{
    AccountId, ListFilter, Priority, TicketKey, TicketNumber, stats::StatsQuery,
};
use uuid::Uuid;

use super::fixture::{Fixture, PAGE, staff_filter};
use crate::{faq, load::authorized, search, world};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    CreateTicket,
    StaffReply,
    UserReply,
    GetTicket,
    ListOwn,
    ListStaff,
    ListStaffDeep,
    SearchTickets,
    SearchFaqs,
    Stats30Days,
}

impl Path {
    pub const ALL: [Path; 10] = [
        Path::CreateTicket,
        Path::StaffReply,
        Path::UserReply,
        Path::GetTicket,
        Path::ListOwn,
        Path::ListStaff,
        Path::ListStaffDeep,
        Path::SearchTickets,
        Path::SearchFaqs,
        Path::Stats30Days,
    ];

    pub fn label(self, f: &Fixture) -> String {
        match self {
            Path::CreateTicket => "CreateTicket".into(),
            Path::StaffReply => "PostMessage staff reply".into(),
            Path::UserReply => "PostMessage user reply".into(),
            Path::GetTicket => "GetTicket".into(),
            Path::ListOwn => "ListTickets own".into(),
            Path::ListStaff => "ListTickets staff filter".into(),
            Path::ListStaffDeep => format!("ListTickets staff p{}", f.deep.0),
            Path::SearchTickets => "SearchTickets staff".into(),
            Path::SearchFaqs => "SearchFaqs".into(),
            Path::Stats30Days => "GetTicketStats 30 days".into(),
        }
    }

    /// Writes commit a transaction and an event; the broker's limit
    /// applies to them too.
    pub fn writes(self) -> bool {
        matches!(
            self,
            Path::CreateTicket | Path::StaffReply | Path::UserReply
        )
    }

    /// Connections one direct call holds at once: GetTicketStats runs
    /// three statements on one snapshot together.
    pub fn connections_per_call(self) -> usize {
        match self {
            Path::Stats30Days => 3,
            _ => 1,
        }
    }

    /// Call `i` of caller `caller` through the service.
    pub async fn grpc(self, f: &Fixture, caller: usize, i: u64) -> anyhow::Result<()> {
        let mut tickets = f.tickets_client(caller);
        let n = i as usize;
        match self {
            Path::CreateTicket => {
                tickets
                    .create_ticket(authorized(world::create_request(), &f.alice))
                    .await?;
            }
            Path::StaffReply | Path::UserReply => {
                let (ticket, _, owner) = &f.open[n % f.open.len()];
                let token: &str = if self == Path::StaffReply {
                    &f.staff
                } else {
                    owner
                };
                let request = pb::PostMessageRequest {
                    ticket_id: ticket.to_string(),
                    body: reply_body(self).into(),
                    request_id: Uuid::new_v4().to_string(),
                    ..Default::default()
                };
                tickets.post_message(authorized(request, token)).await?;
            }
            Path::GetTicket => {
                let id = f.tickets[n % f.tickets.len()].to_string();
                tickets
                    .get_ticket(authorized(pb::GetTicketRequest { id }, &f.staff))
                    .await?;
            }
            Path::ListOwn => {
                let (_, token) = &f.heavy[n % f.heavy.len()];
                let request = pb::ListTicketsRequest {
                    page_size: PAGE,
                    ..Default::default()
                };
                tickets.list_tickets(authorized(request, token)).await?;
            }
            Path::ListStaff | Path::ListStaffDeep => {
                let page_token = if self == Path::ListStaffDeep {
                    f.deep.1.clone()
                } else {
                    String::new()
                };
                let request = pb::ListTicketsRequest {
                    page_token,
                    ..staff_filter()
                };
                let page = tickets.list_tickets(authorized(request, &f.staff)).await?;
                anyhow::ensure!(!page.get_ref().tickets.is_empty(), "an empty page");
            }
            Path::SearchTickets => {
                let request = search::request(&search_kind(), i);
                tickets
                    .search_tickets(authorized(request, &f.staff))
                    .await?;
            }
            Path::SearchFaqs => {
                let request = pb::SearchFaqsRequest {
                    query: faq::QUERIES[n % faq::QUERIES.len()].into(),
                    ..Default::default()
                };
                let found = FaqServiceClient::new(f.channel(caller))
                    .search_faqs(authorized(request, &f.alice))
                    .await?;
                anyhow::ensure!(!found.get_ref().results.is_empty(), "found nothing");
            }
            Path::Stats30Days => {
                let request = pb::GetTicketStatsRequest {
                    start_time: Some(to_timestamp(f.stats_until - chrono::Duration::days(30))),
                    end_time: Some(to_timestamp(f.stats_until)),
                    ..Default::default()
                };
                StatisticsServiceClient::new(f.channel(caller))
                    .get_ticket_stats(authorized(request, &f.staff))
                    .await?;
            }
        }
        Ok(())
    }

    /// Call `i` done straight against the database: the limit.
    pub async fn direct(self, f: &Fixture, i: u64) -> anyhow::Result<()> {
        let (pool, n) = (&f.direct, i as usize);
        match self {
            Path::CreateTicket => {
                let number = f.direct_numbers.fetch_add(1, Ordering::Relaxed);
                create_directly(pool, number).await?;
            }
            Path::StaffReply | Path::UserReply => {
                let (ticket, owner, _) = &f.open[n % f.open.len()];
                let staff: Uuid = super::fixture::STAFF.parse()?;
                let (author, role, status) = if self == Path::StaffReply {
                    (staff, "staff", "waiting_user")
                } else {
                    (*owner, "user", "in_progress")
                };
                message_directly(pool, *ticket, author, role, status, reply_body(self)).await?;
            }
            Path::GetTicket => {
                let key = TicketKey::Id(f.tickets[n % f.tickets.len()]);
                ticket_service::storage::tickets::find(&f.direct_kept, &key).await?;
            }
            Path::ListOwn => {
                let filter = ListFilter {
                    user_id: Some(AccountId::from(f.heavy[n % f.heavy.len()].0)),
                    ..Default::default()
                };
                list(&f.direct_kept, &filter, None).await?;
            }
            Path::ListStaff | Path::ListStaffDeep => {
                let filter = ListFilter {
                    priority: Some(Priority::High),
                    ..Default::default()
                };
                let cursor = if self == Path::ListStaffDeep {
                    f.deep.2
                } else {
                    None
                };
                list(&f.direct_kept, &filter, cursor).await?;
            }
            Path::SearchTickets => {
                let request = search::request(&search_kind(), i);
                search::directly(pool, &f.search_stats, &request, None).await?;
            }
            Path::SearchFaqs => {
                let reader = ticket_service::storage::faqs::Reader {
                    account: Some(world::ALICE.parse()?),
                    admin: false,
                };
                faq::search_directly(pool, faq::QUERIES[n % faq::QUERIES.len()], reader).await?;
            }
            Path::Stats30Days => {
                let until = f.stats_until;
                let query = StatsQuery::new(
                    Some(until - chrono::Duration::days(30)),
                    Some(until),
                    until,
                    None,
                    None,
                )
                .map_err(|(field, why)| anyhow::anyhow!("{field}: {why}"))?;
                let targets = helpdesk_kit::sla::SlaTargets::default();
                ticket_service::storage::stats::figures(pool, &query, &targets, until).await?;
            }
        }
        Ok(())
    }
}

/// SearchTickets' kind: staff, two words with few matches (the search
/// bench's second kind).
fn search_kind() -> search::Kind {
    search::kinds().swap_remove(1)
}

fn reply_body(path: Path) -> &'static str {
    if path == Path::StaffReply {
        "We have issued a refund, it should arrive in 3 to 5 business days."
    } else {
        "Thanks, but I still have not received it."
    }
}

/// One page (and the look-ahead row) of the listing, as the service reads it.
async fn list(
    pool: &sqlx::PgPool,
    filter: &ListFilter,
    cursor: Option<helpdesk_kit::page_token::Cursor>,
) -> anyhow::Result<()> {
    ticket_service::storage::tickets::list(pool, filter, cursor, i64::from(PAGE) + 1).await?;
    Ok(())
}

/// A create's durable work in one statement: the ticket row (its number
/// from a block reserved on the service's sequence) and its outbox row.
/// The outbox row is written as already sent, so the running relay does
/// not publish it; it lands in the same table and indexes all the same.
/// The ticket is written closed: an open one is adopted by the assignment
/// service's next reconciliation, and tens of thousands of those (a c=32
/// row's worth) flooded the rows after it with assignments and their
/// notifications. It skips one index entry the service's create makes
/// (the partial `tickets_unresolved`), so the limit errs high, never low.
async fn create_directly(pool: &sqlx::PgPool, number: i64) -> anyhow::Result<()> {
    let human_id = TicketNumber::from_sequence(u64::try_from(number)?);
    sqlx::query(
        "WITH t AS (
           INSERT INTO tickets (id, number, human_id, user_id, ride_id, category_id, subject,
                                description, priority, status, created_at, updated_at,
                                closed_at, version)
           VALUES ($1, $2, $3, $4, $5, 'ride_issue', 'Direct', $6, 'high', 'closed', now(), now(),
                   now(), 1)
           RETURNING id)
         INSERT INTO outbox (event_id, aggregate_id, routing_key, message_type, payload, sent_at)
         SELECT $7, t.id, 'ticket.created', 'support.v1.TicketCreated', $8, now() FROM t",
    )
    .bind(Uuid::now_v7())
    .bind(number)
    .bind(human_id.as_str())
    .bind(Uuid::parse_str(world::ALICE)?)
    .bind(Uuid::parse_str(world::ALICE_RIDE)?)
    .bind("The trip took 40 minutes instead of 15.")
    .bind(Uuid::now_v7())
    .bind(vec![0u8; 200])
    .execute(pool)
    .await?;
    Ok(())
}

/// A reply's durable work in one statement: the message row, the ticket's
/// status and version, and the outbox row (written as sent, as above).
async fn message_directly(
    pool: &sqlx::PgPool,
    ticket: Uuid,
    author: Uuid,
    role: &str,
    status: &str,
    body: &str,
) -> anyhow::Result<()> {
    sqlx::query(
        "WITH m AS (
           INSERT INTO ticket_messages (id, ticket_id, author_id, author_role, body, internal,
                                        created_at)
           VALUES ($1, $2, $3, $4, $5, false, now())
           RETURNING ticket_id),
         u AS (
           UPDATE tickets SET status = $6, updated_at = now(), version = version + 1
           WHERE id = (SELECT ticket_id FROM m)
           RETURNING id)
         INSERT INTO outbox (event_id, aggregate_id, routing_key, message_type, payload, sent_at)
         SELECT $7, u.id, 'message.posted', 'support.v1.MessagePosted', $8, now() FROM u",
    )
    .bind(Uuid::now_v7())
    .bind(ticket)
    .bind(author)
    .bind(role)
    .bind(body)
    .bind(status)
    .bind(Uuid::now_v7())
    .bind(vec![0u8; 200])
    .execute(pool)
    .await?;
    Ok(())
}
