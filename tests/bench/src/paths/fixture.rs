//! What the path runs call with: HTTP/2 connections to the ticket service,
//! tokens, samples of the data set (tickets to read and to reply on, the
//! heaviest users, page 1,000's token) and a direct pool to its database.

use std::sync::{Arc, atomic::AtomicI64};

use chrono::{DateTime, Utc};
use helpdesk_kit::{auth::Role, page_token::Cursor};
use helpdesk_proto::support::v1::{self as pb, ticket_service_client::TicketServiceClient};
use helpdesk_testkit::minter;
use sqlx::PgPool;
use ticket_service::domain::search::LexemeStats;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::{faq, load::authorized, world};

/// The staff account every staff call runs as (staff see every ticket).
pub const STAFF: &str = "0b000000-0000-4000-8000-000000000001";
/// Tickets per page in every listing.
pub const PAGE: i32 = 20;
/// The deep page: ListTickets page 1,000 of the staff filter.
pub const DEEP_PAGE: usize = 1_000;

pub struct Fixture {
    /// Several HTTP/2 connections, as a gateway holds; caller k uses
    /// connection k mod n.
    pub channels: Vec<Channel>,
    /// The ticket service's database, straight (the limits' side).
    pub direct: PgPool,
    /// The same with generic plans, for the statements the service runs on
    /// its generic-plan pool (GetTicket's lookup, ListTickets).
    pub direct_kept: PgPool,
    pub staff: String,
    pub alice: String,
    /// Tickets to read (any status).
    pub tickets: Vec<Uuid>,
    /// Tickets that take replies (not closed), with their owner's token.
    pub open: Vec<(Uuid, Uuid, Arc<str>)>,
    /// The users with the most tickets, with their tokens.
    pub heavy: Vec<(Uuid, String)>,
    /// The staff filter's deep page: its number (page 1,000, or the last
    /// page of a smaller data set), its page token, and the cursor the
    /// service decodes from it.
    pub deep: (usize, String, Option<Cursor>),
    pub search_stats: Arc<(LexemeStats, LexemeStats)>,
    /// GetTicketStats covers the 30 days before this.
    pub stats_until: DateTime<Utc>,
    /// The next ticket number of the direct creates: from a block reserved
    /// on the service's own sequence, so neither side takes the other's.
    pub direct_numbers: AtomicI64,
}

/// The staff filter: high priority (a fifth of the data set).
pub fn staff_filter() -> pb::ListTicketsRequest {
    pb::ListTicketsRequest {
        page_size: PAGE,
        priority: pb::TicketPriority::High.into(),
        ..Default::default()
    }
}

impl Fixture {
    pub async fn prepare(
        addr: &str,
        database_url: &str,
        connections: usize,
        pool: u32,
    ) -> anyhow::Result<Self> {
        let mut channels = Vec::new();
        for _ in 0..connections {
            channels.push(Channel::from_shared(addr.to_owned())?.connect().await?);
        }
        let direct = helpdesk_kit::db::connect(database_url, pool).await?;
        let direct_kept = helpdesk_kit::db::connect_lazy_generic(database_url, pool)?;
        let hours = chrono::Duration::hours(4);
        let staff = minter().mint(STAFF, Role::Staff, hours);
        let alice = minter().mint(world::ALICE, Role::User, hours);

        let total: i64 = sqlx::query_scalar("SELECT count(*) FROM tickets")
            .fetch_one(&direct)
            .await?;
        anyhow::ensure!(total > 0, "the database holds no tickets: load a data set");
        // About 8,000 rows sampled evenly, whatever the size.
        let percent = (800_000.0 / total as f64).clamp(0.001, 100.0);
        let sample: Vec<(Uuid, Uuid, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT id, user_id, status FROM tickets TABLESAMPLE BERNOULLI ({percent}) LIMIT 8000"
        )))
        .fetch_all(&direct)
        .await?;
        let tickets: Vec<Uuid> = sample.iter().map(|(id, _, _)| *id).take(2_000).collect();
        let mut open = Vec::new();
        let mut tokens = std::collections::HashMap::new();
        for (id, user, _) in sample.iter().filter(|(_, _, s)| s != "closed").take(2_000) {
            let token: &Arc<str> = tokens
                .entry(*user)
                .or_insert_with(|| minter().mint(&user.to_string(), Role::User, hours).into());
            open.push((*id, *user, token.clone()));
        }
        anyhow::ensure!(!open.is_empty(), "no ticket that takes a reply");
        let heavy_users: Vec<Uuid> = sqlx::query_scalar(
            "SELECT user_id FROM tickets GROUP BY user_id ORDER BY count(*) DESC LIMIT 10",
        )
        .fetch_all(&direct)
        .await?;
        let heavy = heavy_users
            .into_iter()
            .map(|u| (u, minter().mint(&u.to_string(), Role::User, hours)))
            .collect();

        // A block of a million numbers for the direct creates.
        let block: i64 = sqlx::query_scalar(
            "SELECT setval('ticket_number_seq', nextval('ticket_number_seq') + 1000000) - 1000000",
        )
        .fetch_one(&direct)
        .await?;
        let mut fixture = Self {
            channels,
            direct,
            direct_kept,
            staff,
            alice,
            tickets,
            open,
            heavy,
            deep: (1, String::new(), None),
            search_stats: Arc::new((LexemeStats::default(), LexemeStats::default())),
            stats_until: Utc::now(),
            direct_numbers: AtomicI64::new(block + 1),
        };
        fixture.deep = fixture.walk_to_deep_page().await?;
        fixture.search_stats =
            Arc::new(ticket_service::storage::search::lexeme_stats(&fixture.direct).await?);
        fixture.seed_faqs().await?;
        Ok(fixture)
    }

    pub fn tickets_client(&self, caller: usize) -> TicketServiceClient<Channel> {
        TicketServiceClient::new(self.channels[caller % self.channels.len()].clone())
    }

    pub fn channel(&self, caller: usize) -> Channel {
        self.channels[caller % self.channels.len()].clone()
    }

    /// Walks the staff filter page by page to page 1,000 (or the last
    /// page): its token, and the cursor the same SQL continues from.
    async fn walk_to_deep_page(&self) -> anyhow::Result<(usize, String, Option<Cursor>)> {
        let mut client = self.tickets_client(0);
        let (mut page, mut token) = (1, String::new());
        while page < DEEP_PAGE {
            let next = client
                .list_tickets(authorized(
                    pb::ListTicketsRequest {
                        page_token: token.clone(),
                        ..staff_filter()
                    },
                    &self.staff,
                ))
                .await?
                .into_inner()
                .next_page_token;
            if next.is_empty() {
                break;
            }
            (page, token) = (page + 1, next);
        }
        // The last row before the page, in the listing's order.
        let cursor: Option<(DateTime<Utc>, Uuid)> = sqlx::query_as(
            "SELECT created_at, id FROM tickets WHERE priority = 'high'
             ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT 1",
        )
        .bind(((page - 1) * PAGE as usize) as i64 - 1)
        .fetch_optional(&self.direct)
        .await?;
        let cursor = cursor
            .filter(|_| page > 1)
            .map(|(at, id)| Cursor { at, id });
        Ok((page, token, cursor))
    }

    /// The FAQ bench's 1,000 published entries, unless already there.
    async fn seed_faqs(&self) -> anyhow::Result<()> {
        let have: i64 = sqlx::query_scalar("SELECT count(*) FROM faqs WHERE published")
            .fetch_one(&self.direct)
            .await?;
        if have < faq::ENTRIES {
            sqlx::query(faq::SEED)
                .bind(faq::ENTRIES)
                .execute(&self.direct)
                .await?;
            sqlx::query("ANALYZE faqs").execute(&self.direct).await?;
        }
        Ok(())
    }
}
