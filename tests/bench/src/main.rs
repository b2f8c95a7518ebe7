//! `bench <name>`: benchmarks that print their figures beside a baseline
//! measured in the same run on the same machine (docs/performance.md).
//!
//! - `relay`: drains 10,000 outbox rows through the relay, next to raw
//!   publish-with-confirms of the same messages; then commit→broker latency.
//! - `tickets`: CreateTicket, GetTicket and ListTickets (page 1 and 1,000 on
//!   1,000,000 tickets) over gRPC, next to the same SQL issued directly.
//! - `assignment`: CreateTicket at 32 concurrent callers for a minute with
//!   the assignment service serving the tickets: create rate, time to
//!   assignment and backlog, in the same run.
//! - `notification`: one TicketCreated fanned out to 1,000 staff next to
//!   the bare insert of the same rows; creation → receipt streamed under
//!   CreateTicket at 32 concurrent callers.
//! - `scheduler`: auto-close over 100,000 resolved tickets, events
//!   included, through the scheduler's call path next to the bare
//!   set-based SQL.
//! - `faq`: SearchFaqs on 1,000 entries at 8 concurrent callers (full text
//!   and the misspelt-word fallback) next to the same statements issued
//!   directly.
//!
//! - `dataset --tickets N --messages M`: loads the benchmark data set
//!   (1,000,000 tickets and 5,000,000 messages by default) with COPY into a
//!   database of its own, reused by `search`.
//! - `search`: SearchTickets over gRPC at 1, 8 and 32 concurrent callers
//!   on that data set, next to the same SQL issued directly.
//!
//! - `paths`: every hot path through the real binaries at 1, 8 and 32
//!   concurrent callers, each beside the database, gRPC and broker limits
//!   measured in the same run (`--smoke`: the CI check that every call
//!   succeeds; see docs/performance.md).
//! - `capacity`: the whole system under a stepped, open-loop mixed load:
//!   the highest rate at which every queue stays bounded and every p99
//!   budget holds.
//!
//! Needs the local PostgreSQL and RabbitMQ (`TEST_DATABASE_URL`, `TEST_AMQP_URL`).

mod assignment;
mod capacity;
mod dataset;
mod faq;
mod gauges;
mod load;
mod notification;
mod paths;
mod relay;
mod report;
mod scheduler;
mod search;
mod tickets;
mod world;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Interrupted (Ctrl-C, SIGTERM), the benchmark is dropped rather than
    // the process ended where it stands, so the services it started and the
    // databases it created go with it instead of lingering.
    tokio::select! {
        result = bench() => result,
        () = helpdesk_kit::shutdown::signal() => {
            eprintln!("interrupted: the services and databases of this run are removed");
            std::process::exit(130)
        }
    }
}

async fn bench() -> anyhow::Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some("relay") => relay::run().await,
        Some("tickets") => tickets::run().await,
        Some("assignment") => assignment::run().await,
        Some("notification") => notification::run().await,
        Some("scheduler") => scheduler::run().await,
        Some("faq") => faq::run().await,
        Some("dataset") => dataset::run().await,
        Some("search") => search::run().await,
        Some("paths") => paths::run().await,
        Some("capacity") => capacity::run().await,
        _ => anyhow::bail!(
            "usage: bench relay|tickets|assignment|notification|scheduler|faq|dataset|search|paths|capacity"
        ),
    }
}
