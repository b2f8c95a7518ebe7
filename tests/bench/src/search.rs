//! SearchTickets on the benchmark data set (`dataset`: 1,000,000 tickets,
//! 5,000,000 messages by default), through the ticket service over gRPC
//! and, beside it, the same three statements issued directly (parse and
//! estimate, the page, its rows and snippets: `ticket_service::storage::search`).
//!
//! Each kind of search runs at 1 and 8 concurrent callers (32 with
//! `BENCH_C32=1`); then a mix
//! of all of them at 8, the figure the performance target is about.
//!
//! `cargo run --release -p helpdesk-bench -- search [--tickets N --messages M]`
//! (`BENCH_CALLS`: calls per row, default 1,000).

use std::sync::Arc;

use helpdesk_kit::{auth::Role, clock::SystemClock};
use helpdesk_proto::support::v1::{self as pb, ticket_service_client::TicketServiceClient};
use helpdesk_testkit::minter;
use ticket_service::{
    config::Config,
    domain::{
        AccountId, ListFilter, Status,
        search::{LexemeStats, Search, SearchOrder, SearchText, choose_order, tree_words, walk},
    },
    startup::Application,
    storage::search as sql,
};
use tonic::transport::Channel;

use crate::{
    dataset::{self, Shape},
    load::{authorized, drive},
    report::{rate, row},
    world,
};

const POOL: u32 = 10;
const STAFF: &str = "0b000000-0000-4000-8000-000000000001";

/// One kind of search: who asks what.
#[derive(Clone)]
pub struct Kind {
    pub label: &'static str,
    /// `None`: staff; `Some(n)`: user n of the data set.
    pub user: Option<u64>,
    /// The query of call i.
    pub query: fn(u64) -> String,
    pub open: bool,
}

pub fn kinds() -> Vec<Kind> {
    vec![
        Kind {
            label: "staff, a receipt number (1 match)",
            user: None,
            query: |i| dataset::receipt((i * 7_777) % 300_000),
            open: false,
        },
        Kind {
            label: "staff, two words (few matches)",
            user: None,
            query: |i| {
                [
                    "umbrella airport",
                    "glasses stadium",
                    "keys harbour",
                    "dog museum",
                ][(i % 4) as usize]
                    .into()
            },
            open: false,
        },
        Kind {
            label: "staff, one common word (newest first)",
            user: None,
            query: |i| {
                ["refund", "driver", "wallet", "airport", "charged"][(i % 5) as usize].into()
            },
            open: false,
        },
        Kind {
            label: "staff, common word, open tickets only",
            user: None,
            query: |i| {
                ["refund", "driver", "wallet", "airport", "charged"][(i % 5) as usize].into()
            },
            open: true,
        },
        Kind {
            label: "user, own tickets (heaviest users)",
            user: Some(0),
            query: |i| {
                ["refund", "driver", "phone", "charged twice", "airport"][(i % 5) as usize].into()
            },
            open: false,
        },
    ]
}

pub fn request(kind: &Kind, i: u64) -> pb::SearchTicketsRequest {
    pb::SearchTicketsRequest {
        query: (kind.query)(i),
        open: kind.open,
        ..Default::default()
    }
}

/// The user of call i: the heaviest few users of the data set, in turn.
fn user_of(kind: &Kind, i: u64) -> Option<u64> {
    kind.user.map(|base| base + i % 10)
}

/// The same statements the service issues for `req` as `user` (or staff).
pub async fn directly(
    pool: &sqlx::PgPool,
    stats: &(LexemeStats, LexemeStats),
    req: &pb::SearchTicketsRequest,
    user: Option<uuid::Uuid>,
) -> anyhow::Result<usize> {
    let mut filter = ListFilter {
        user_id: user.map(AccountId::from),
        ..Default::default()
    };
    if req.open {
        filter.add_statuses(Status::open_group());
    }
    let search = Search {
        text: SearchText::parse(&req.query).map_err(anyhow::Error::msg)?,
        filter,
        notes: user.is_none(),
    };
    let mut conn = pool.acquire().await?;
    let parsed = sql::parse(&mut *conn, &search.text).await?;
    let (words, any_of) = tree_words(&parsed.tree);
    let (in_tickets, in_messages) = (
        stats.0.estimate(&words, any_of),
        stats.1.estimate(&words, any_of),
    );
    let order = choose_order(None, user.is_none().then_some(in_tickets + in_messages));
    let ids: Vec<uuid::Uuid> = match order {
        SearchOrder::Relevance => sql::relevance_page(&mut *conn, &search, None, 21)
            .await?
            .into_iter()
            .map(|r| r.0)
            .take(20)
            .collect(),
        SearchOrder::Newest => sql::newest_page(
            &mut *conn,
            &search,
            None,
            21,
            walk(in_tickets),
            walk(in_messages),
        )
        .await?
        .into_iter()
        .map(|r| r.0)
        .take(20)
        .collect(),
    };
    Ok(sql::found(&mut *conn, &search.text, search.notes, &ids)
        .await?
        .len())
}

pub async fn run() -> anyhow::Result<()> {
    let shape = Shape::from_args()?;
    // Calls per row (BENCH_CALLS, default 1,000).
    let calls: usize = std::env::var("BENCH_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000);
    let url = dataset::ensure(shape).await?;
    let (standin_addr, standin) = world::standin(Vec::new()).await?;
    let app = Application::build(
        Config::for_tests(world::common(&url, POOL)?, &standin_addr, None),
        Arc::new(SystemClock),
    )
    .await?;
    let addr = format!("http://127.0.0.1:{}", app.port());
    let server = world::spawn(|stopped| {
        app.run(async move {
            let _ = stopped.await;
        })
    });
    // Several HTTP/2 connections, as a gateway would hold.
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(TicketServiceClient::new(
            Channel::from_shared(addr.clone())?.connect().await?,
        ));
    }
    let clients = Arc::new(clients);
    let direct = helpdesk_kit::db::connect(&url, POOL).await?;
    // Read once, as the service holds them (it re-reads every 5 minutes).
    let stats = Arc::new(sql::lexeme_stats(&direct).await?);
    let token_of = |user: Option<u64>| {
        let (sub, role) = match user {
            Some(n) => (dataset::user_id(n).to_string(), Role::User),
            None => (STAFF.to_owned(), Role::Staff),
        };
        minter().mint(&sub, role, chrono::Duration::hours(2))
    };
    let tokens: Arc<Vec<String>> = Arc::new(
        std::iter::once(token_of(None))
            .chain((0..10).map(|n| token_of(Some(n))))
            .collect(),
    );

    println!(
        "\nSearchTickets on {} tickets and {} messages (pool {POOL}, {calls} calls per row, page size 20)",
        shape.tickets, shape.messages
    );
    let mut mix = Vec::new();
    for kind in kinds() {
        // What the kind looks like: the order chosen and one page's size.
        let probe = request(&kind, 0);
        let mut c = clients[0].clone();
        let first = c
            .search_tickets(authorized(
                probe.clone(),
                &tokens[user_of(&kind, 0).map_or(0, |n| n as usize + 1)],
            ))
            .await?
            .into_inner();
        println!(
            "\n{} (e.g. {:?}: {:?} order, {} results on page 1)",
            kind.label,
            probe.query,
            pb::SearchOrder::try_from(first.order).unwrap_or_default(),
            first.results.len()
        );
        for concurrency in concurrencies() {
            let (k, pool, stats) = (kind.clone(), direct.clone(), stats.clone());
            let (t, l) = drive(concurrency, calls, move |i| {
                let i = i as u64;
                let (k, pool, stats) = (k.clone(), pool.clone(), stats.clone());
                async move {
                    let user = user_of(&k, i).map(dataset::user_id);
                    directly(&pool, &stats, &request(&k, i), user).await?;
                    Ok(())
                }
            })
            .await?;
            row(
                &format!("c={concurrency:<2} the same SQL directly"),
                format!("{:>7.0} q/s     {}", rate(calls, t), l.summary()),
            );
            let (k, clients, tokens) = (kind.clone(), clients.clone(), tokens.clone());
            let (t, l) = drive(concurrency, calls, move |i| {
                let i = i as u64;
                let (k, clients, tokens) = (k.clone(), clients.clone(), tokens.clone());
                async move {
                    let mut c = clients[i as usize % clients.len()].clone();
                    let token = &tokens[user_of(&k, i).map_or(0, |n| n as usize + 1)];
                    c.search_tickets(authorized(request(&k, i), token)).await?;
                    Ok(())
                }
            })
            .await?;
            row(
                &format!("c={concurrency:<2} SearchTickets over gRPC"),
                format!("{:>7.0} calls/s {}", rate(calls, t), l.summary()),
            );
        }
        mix.push(kind);
    }

    println!(
        "\nall kinds mixed in turn, 8 concurrent callers, {} calls",
        calls * 2
    );
    let (mix, clients2, tokens2) = (Arc::new(mix), clients.clone(), tokens.clone());
    let (t, l) = drive(8, calls * 2, move |i| {
        let i = i as u64;
        let (mix, clients, tokens) = (mix.clone(), clients2.clone(), tokens2.clone());
        async move {
            let k = &mix[i as usize % mix.len()];
            let mut c = clients[i as usize % clients.len()].clone();
            let token = &tokens[user_of(k, i / mix.len() as u64).map_or(0, |n| n as usize + 1)];
            c.search_tickets(authorized(request(k, i / mix.len() as u64), token))
                .await?;
            Ok(())
        }
    })
    .await?;
    row(
        "c=8  SearchTickets over gRPC, mixed",
        format!("{:>7.0} calls/s {}", rate(calls * 2, t), l.summary()),
    );

    server.stop().await;
    standin.stop().await;
    Ok(())
}

/// The concurrencies of each row: 1 and 8 (the target's), and 32 with
/// `BENCH_C32=1` (on 2 cores, with a pool of 10, the direct runs at 32
/// have hit the pool's 3 s acquire timeout).
fn concurrencies() -> Vec<usize> {
    if std::env::var_os("BENCH_C32").is_some() {
        vec![1, 8, 32]
    } else {
        vec![1, 8]
    }
}
