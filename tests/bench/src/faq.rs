//! SearchFaqs over gRPC on 1,000 published entries at 8 concurrent callers,
//! with and without the service's page cache (the queries repeat, as riders'
//! do, so with it every search after the first of each query is a kept
//! page), next to the same two statements (the ranked, highlighted page, then its
//! entries with their counts) issued straight from a pool of the same size
//! through the service's own storage functions. Full-text queries (the
//! target: p99 ≤ 5 ms) and misspelt ones (the trigram fallback, which runs
//! the full-text statement first and finds nothing) separately.
//!
//! Run it release-built: `cargo run --release -p helpdesk-bench -- faq`.

use std::sync::Arc;

use helpdesk_kit::{auth::Role, clock::SystemClock};
use helpdesk_proto::support::v1::{self as pb, faq_service_client::FaqServiceClient};
use helpdesk_testkit::{TestDb, minter};
use ticket_service::{
    MIGRATOR,
    config::Config,
    domain::faq::{Language, SearchQuery},
    startup::Application,
    storage::faqs::{self, Reader, SearchQueryParams},
};
use tokio::sync::oneshot;
use tonic::transport::Channel;

use crate::{
    load::{authorized, drive},
    report::{rate, row},
    world,
};

const POOL: u32 = 10;
pub const ENTRIES: i64 = 1_000;
const CONCURRENCY: usize = 8;
const CALLS: usize = 4_000;
const ALICE: &str = "0a000000-0000-4000-8000-000000000001";

/// What riders ask, as they type it.
pub const QUERIES: [&str; 8] = [
    "refunds",
    "driver late",
    "lost phone",
    "payment card declined",
    "cancellation fee",
    "change email address",
    "receipt",
    "promo code",
];
const TYPOS: [&str; 4] = ["refnud", "recepit", "cancelatoin", "promocode"];

/// 1,000 published English entries: topics × phrasings, so a query matches
/// a few dozen of them and ranking has work to do.
pub const SEED: &str = "
INSERT INTO faqs (id, question, answer, category_id, language, published, sort_order,
                  created_at, updated_at)
SELECT gen_random_uuid(),
       format('%s %s (%s)', (ARRAY['How do I','Why can''t I','When will I','Can I',
              'What if I cannot'])[1 + i % 5],
              (ARRAY['get a refund for my ride','see my receipt','use a promo code',
               'pay with another card','change my email address','find a lost phone',
               'report a driver who was late','avoid a cancellation fee',
               'update my payment card declined at pickup','rate my driver',
               'add a stop to my trip','split the fare'])[1 + i % 12], i),
       format('Entry %s. %s Our support team answers within a day.', i,
              (ARRAY['Open the ride in your history and tap Help.',
               'Go to Settings, then Account.',
               'Card payments are retried once; a declined card must be replaced.',
               'Drivers who are late more than 10 minutes waive the cancellation fee.',
               'Lost items: we connect you with the driver by phone.'])[1 + i % 5]),
       (ARRAY['payment_issue','account','lost_item','driver_issue','ride_issue'])[1 + i % 5],
       'en', true, i, now(), now()
  FROM generate_series(1, $1) AS i";

pub async fn run() -> anyhow::Result<()> {
    let db = TestDb::create(&MIGRATOR).await?;
    let direct = helpdesk_kit::db::connect(&db.url, POOL).await?;
    sqlx::query(SEED).bind(ENTRIES).execute(&direct).await?;
    sqlx::query("ANALYZE faqs").execute(&direct).await?;
    // The platform is never called by FaqService; the stand-in keeps the
    // config honest.
    let (standin_addr, standin) = world::standin(Vec::new()).await?;
    // Two instances of the service on the same database: one keeps search
    // pages (as deployed), the other ranks every search afresh.
    let mut clients = Vec::new();
    let mut servers = Vec::new();
    for pages in [0, ticket_service::config::FAQ_SEARCH_CACHE] {
        let config = Config {
            faq_search_cache: pages,
            ..Config::for_tests(world::common(&db.url, POOL)?, &standin_addr, None)
        };
        let app = Application::build(config, Arc::new(SystemClock)).await?;
        let addr = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = oneshot::channel::<()>();
        servers.push((
            stop,
            tokio::spawn(app.run(async move {
                let _ = stopped.await;
            })),
        ));
        clients.push(FaqServiceClient::new(
            Channel::from_shared(addr)?.connect().await?,
        ));
    }
    let alice = minter().mint(ALICE, Role::User, chrono::Duration::hours(2));
    let reader = Reader {
        account: Some(ALICE.parse()?),
        admin: false,
    };

    println!("FAQ search benchmark ({ENTRIES} published entries, pool {POOL} connections)");
    for (label, queries) in [
        ("full text", &QUERIES[..]),
        ("misspelt (fallback)", &TYPOS[..]),
    ] {
        println!("\nSearchFaqs, {label}, 10 per page, {CALLS} calls, {CONCURRENCY} concurrent");
        let queries: Arc<Vec<&'static str>> = Arc::new(queries.to_vec());
        // Warm both paths (plans, caches) before measuring.
        for q in queries.iter() {
            search_directly(&direct, q, reader).await?;
        }
        let (pool, qs) = (direct.clone(), queries.clone());
        let (t, l) = drive(CONCURRENCY, CALLS, move |i| {
            let (pool, q) = (pool.clone(), qs[i % qs.len()]);
            async move { search_directly(&pool, q, reader).await }
        })
        .await?;
        row(
            "database only (same statements)",
            format!("{:>8.0} q/s     {}", rate(CALLS, t), l.summary()),
        );
        for (client, label) in clients.iter().zip([
            "SearchFaqs over gRPC, every search ranked (FAQ_SEARCH_CACHE=0)",
            "SearchFaqs over gRPC, pages kept (the default)",
        ]) {
            let (c, token, qs) = (client.clone(), alice.clone(), queries.clone());
            let (t, l) = drive(CONCURRENCY, CALLS, move |i| {
                let (mut c, token, q) = (c.clone(), token.clone(), qs[i % qs.len()]);
                async move {
                    let request = pb::SearchFaqsRequest {
                        query: q.into(),
                        ..Default::default()
                    };
                    let found = c
                        .search_faqs(authorized(request, &token))
                        .await?
                        .into_inner();
                    anyhow::ensure!(!found.results.is_empty(), "{q:?} found nothing");
                    Ok(())
                }
            })
            .await?;
            row(
                label,
                format!("{:>8.0} calls/s {}", rate(CALLS, t), l.summary()),
            );
        }
    }

    for (stop, server) in servers {
        let _ = stop.send(());
        server.await??;
    }
    standin.stop().await;
    Ok(())
}

/// What the service does for one SearchFaqs call, minus gRPC: the full-text
/// page, the fallback when it is empty, then the page's entries.
pub async fn search_directly(pool: &sqlx::PgPool, q: &str, reader: Reader) -> anyhow::Result<()> {
    let query = SearchQuery::parse(q).map_err(anyhow::Error::msg)?;
    let mut params = SearchQueryParams::first_page(query, Language::english(), 11);
    let mut hits = faqs::search_text(pool, &params).await?;
    if hits.is_empty() {
        params.fuzzy = true;
        hits = faqs::search_similar(pool, &params).await?;
    }
    anyhow::ensure!(!hits.is_empty(), "{q:?} found nothing");
    hits.truncate(10);
    let ids: Vec<_> = hits.iter().map(|h| h.id).collect();
    faqs::get_many(pool, &ids, reader, None).await?;
    Ok(())
}
