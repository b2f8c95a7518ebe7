//! Reconciliation: every `RECONCILE_SECS`, the workload projection is
//! checked against the ticket service, the source of truth, and corrected.
//! Events cover every change in normal operation; this catches what they
//! cannot (a change made while an event was dead-lettered, a bug, a hand
//! edit of the database) and logs each correction so drift is visible.
//!
//! The open tickets are listed a page at a time ([`PAGE_SIZE`]), each page
//! applied in its own short transaction under the decision lock (a long
//! listing must not stall assignment), so memory and statements stay one
//! page whatever the number of open tickets. To stay right anyway, a
//! revision mark is taken under the lock before listing: rows changed after
//! it are newer than the listing and left alone; every other row is made to
//! match. Each page notes its tickets in `reconcile_seen` (per pass), so
//! the rows absent from the whole listing are one anti-join at the end.
//!
//! The listing is one keyset walk over the open group while tickets keep
//! changing, so a ticket can be missing from it without being closed. A
//! row is therefore marked not open only after GetTicket confirms the
//! ticket resolved, closed or gone: one call each, at most
//! [`MAX_CONFIRMATIONS`] per pass (the rest next pass), made outside the
//! lock. A ticket the call finds open, or that cannot be asked about, is
//! left alone.

use std::time::Duration;

use helpdesk_kit::error::ApiResult;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    app::engine::Engine,
    clients::tickets::{Current, OpenTicket},
    storage::{agents, assignments},
};

/// Tickets per listing call (the ticket service's largest page).
pub const PAGE_SIZE: i32 = 100;

/// Most unlisted rows confirmed with GetTicket in one pass.
pub const MAX_CONFIRMATIONS: i64 = 500;

/// What one reconciliation found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Open tickets in the ticket service.
    pub open_tickets: usize,
    /// Assignment rows corrected.
    pub tickets_corrected: u64,
    /// Agents whose stored workload was wrong.
    pub drift: Vec<agents::Drift>,
    /// Waiting tickets assigned afterwards.
    pub assigned: usize,
}

/// One reconciliation pass, listing `page_size` tickets per call.
pub async fn once(engine: &Engine, page_size: i32) -> ApiResult<Report> {
    let pass = Uuid::new_v4();
    let result = pass_through(engine, pass, page_size).await;
    // Scratch rows go whatever happened (`forget_pass` also removes those
    // of passes killed midway).
    let mut conn = engine.pool().acquire().await?;
    assignments::forget_pass(&mut conn, pass).await?;
    result
}

async fn pass_through(engine: &Engine, pass: Uuid, page_size: i32) -> ApiResult<Report> {
    let mark = {
        let mut tx = engine.begin().await?;
        let mark = assignments::revision_mark(&mut tx).await?;
        tx.commit().await?;
        mark
    };
    let mut report = Report::default();
    let mut pages = engine.tickets().open_tickets(page_size);
    while let Some(page) = pages.next().await? {
        report.open_tickets += page.len();
        report.tickets_corrected += apply_page(engine, pass, mark, &page).await?;
    }

    // Rows open here but not listed: confirm each before closing it.
    let unlisted = {
        let mut conn = engine.pool().acquire().await?;
        assignments::unlisted(&mut conn, pass, mark, MAX_CONFIRMATIONS).await?
    };
    let mut done = Vec::new();
    for ticket in unlisted {
        match engine.tickets().current(ticket).await {
            Ok(Current::Done | Current::Missing) => done.push(ticket),
            Ok(Current::Open) => {
                tracing::debug!(%ticket, "unlisted ticket is open (it changed while the listing ran)")
            }
            Err(error) => {
                tracing::warn!(%ticket, %error, "could not confirm an unlisted ticket; left for the next pass")
            }
        }
    }

    let now = engine.clock().now();
    let mut tx = engine.begin().await?;
    report.tickets_corrected += assignments::close_unchanged(&mut tx, &done, mark, now).await?;
    report.drift = agents::recount_all(&mut tx, now).await?;
    for d in &report.drift {
        tracing::warn!(agent = %d.agent, stored = d.stored, actual = d.actual, "workload drift corrected");
    }
    tx.commit().await?;
    report.assigned = engine.drain().await;
    if report.tickets_corrected > 0 {
        tracing::warn!(
            tickets = report.tickets_corrected,
            "assignments corrected from the ticket service"
        );
    }
    Ok(report)
}

/// Makes the rows of one listed page match it (one short transaction under
/// the decision lock, so decisions interleave with a long pass) and notes
/// the page's tickets as listed. Returns how many rows changed.
async fn apply_page(engine: &Engine, pass: Uuid, mark: i64, page: &[OpenTicket]) -> ApiResult<u64> {
    let ids: Vec<Uuid> = page.iter().map(|t| t.id).collect();
    let human_ids: Vec<String> = page.iter().map(|t| t.human_id.clone()).collect();
    let categories: Vec<String> = page.iter().map(|t| t.category_id.clone()).collect();
    let priorities: Vec<i16> = page.iter().map(|t| t.priority.rank()).collect();
    let created: Vec<_> = page.iter().map(|t| t.created_at).collect();
    let assignees: Vec<Uuid> = page
        .iter()
        .map(|t| t.assignee.unwrap_or(Uuid::nil()))
        .collect();
    let held_by: Vec<Uuid> = page.iter().filter_map(|t| t.assignee).collect();
    let now = engine.clock().now();
    let mut tx = engine.begin().await?;
    agents::ensure_known(&mut tx, &held_by, now).await?;
    let listed = assignments::Listed {
        ids: &ids,
        human_ids: &human_ids,
        categories: &categories,
        priorities: &priorities,
        created: &created,
        assignees: &assignees,
    };
    let changed = assignments::match_listing(&mut tx, &listed, mark, now).await?;
    assignments::note_listed(&mut tx, pass, &ids).await?;
    tx.commit().await?;
    Ok(changed)
}

/// Reconciles every `every` (first after one interval: events keep the
/// projection current; this is the safety net), until `shutdown`.
pub async fn run(engine: Engine, every: Duration, shutdown: CancellationToken) {
    // A first pass soon after start catches what no event told us (tickets
    // created before our queue existed, events lost to a dead-lettering);
    // then every interval.
    let first = every.min(Duration::from_secs(10));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + first, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match once(&engine, PAGE_SIZE).await {
            Ok(report) => tracing::debug!(?report, "reconciled"),
            Err(error) => {
                tracing::warn!(%error, "reconciliation failed; retrying at the next interval")
            }
        }
    }
}
