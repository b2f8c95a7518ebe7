//! The roster: agents come from the accounts service's staff directory, at
//! start and every `ROSTER_SYNC_SECS`. New staff join with the defaults
//! (on shift, `DEFAULT_CAPACITY`, tier L1); known agents get their name and
//! active flag refreshed (settings made here are kept); staff who left or
//! were deactivated stop receiving tickets, and under
//! `REDISTRIBUTE_ON_UNAVAILABLE` their open tickets go to others (an
//! operation per agent, carried out in the background).

use std::time::Duration;

use helpdesk_kit::error::ApiResult;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    app::{engine::Engine, operations},
    clients::accounts::AccountsClient,
    domain::OperationKind,
    storage::agents,
};

/// What one sync changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Staff accounts listed (active or not).
    pub staff: usize,
    /// Agents new to the roster.
    pub added: u64,
    /// Agents who left or were deactivated since the last sync.
    pub deactivated: usize,
    /// Deactivated agents whose open tickets are being handed on (one
    /// operation each).
    pub handing_on: usize,
    /// Waiting tickets given an agent afterwards.
    pub assigned: usize,
}

#[derive(Clone)]
pub struct Roster {
    engine: Engine,
    accounts: AccountsClient,
    default_capacity: i32,
}

impl Roster {
    pub fn new(engine: Engine, accounts: AccountsClient, default_capacity: i32) -> Self {
        Self {
            engine,
            accounts,
            default_capacity,
        }
    }

    /// One sync: the directory is read first (no lock held during the
    /// calls) and applied in one decision transaction, which also records
    /// an operation handing on the tickets of each agent who left
    /// (`app::operations`); then the queue is served.
    pub async fn sync(&self) -> ApiResult<SyncReport> {
        let staff = self.accounts.staff().await?;
        let now = self.engine.clock().now();
        let ids: Vec<Uuid> = staff.iter().map(|s| s.id).collect();
        let names: Vec<String> = staff.iter().map(|s| s.display_name.clone()).collect();
        let active: Vec<bool> = staff.iter().map(|s| s.active).collect();

        let mut tx = self.engine.begin().await?;
        let mut report = SyncReport {
            staff: staff.len(),
            added: agents::upsert_roster(
                &mut tx,
                &ids,
                &names,
                &active,
                self.default_capacity,
                now,
            )
            .await?,
            ..SyncReport::default()
        };
        if staff.is_empty() {
            // An empty directory is far likelier an accounts-side fault than
            // everyone quitting: do not strip every agent of their work.
            tracing::warn!("accounts listed no staff at all; nobody deactivated");
        } else {
            let still_active: Vec<Uuid> = staff.iter().filter(|s| s.active).map(|s| s.id).collect();
            let left = agents::deactivate_others(&mut tx, &still_active, now).await?;
            report.deactivated = left.len();
        }
        if self.engine.policy().redistribute_on_unavailable {
            for agent in agents::inactive_holding_work(&mut tx).await? {
                operations::start(&self.engine, &mut tx, OperationKind::Redistribute(agent))
                    .await?;
                report.handing_on += 1;
            }
        }
        tx.commit().await?;
        if report.handing_on > 0 {
            self.engine.wake_operations();
        }
        // New or returning agents may take waiting tickets.
        report.assigned = self.engine.drain().await;
        if report.added > 0 || report.deactivated > 0 || report.handing_on > 0 {
            tracing::info!(?report, "roster synced");
        }
        Ok(report)
    }
}

/// Syncs now and then every `every`, until `shutdown`.
pub async fn run(roster: Roster, every: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(error) = roster.sync().await {
            tracing::warn!(%error, "roster sync failed; retrying at the next interval");
        }
    }
}
