//! `support.v1.StatisticsService`: the staff dashboard (stats.proto). Staff,
//! admins and our own services read it; users and other teams' services get
//! PERMISSION_DENIED. Nothing is written.

use helpdesk_kit::{
    auth::Caller,
    clock::{SharedClock, from_timestamp, to_timestamp},
    error::{ApiError, ApiResult, Violations},
    sla::SlaTargets,
};
use helpdesk_proto::support::v1::{self as pb, statistics_service_server::StatisticsService};
use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};

use crate::{
    domain::{
        AccountId, CategoryId,
        stats::{DurationFigures, StatsQuery, TicketFigures},
    },
    storage::stats,
};

pub struct StatisticsApi {
    pool: PgPool,
    clock: SharedClock,
    targets: SlaTargets,
    /// Dashboards computed at once. Each holds three connections together
    /// (`storage::stats`); unbounded, ten callers on a pool of ten each took
    /// a first connection and waited for the others until the pool timed
    /// out (UNAVAILABLE to all), starving every other RPC meanwhile. The
    /// rest queue here instead, and the dashboards leave at least half of
    /// the pool to the other calls.
    gate: Arc<Semaphore>,
}

impl StatisticsApi {
    pub fn new(pool: PgPool, clock: SharedClock, targets: SlaTargets) -> Self {
        let at_once = (pool.options().get_max_connections() as usize / 6).max(1);
        Self {
            pool,
            clock,
            targets,
            gate: Arc::new(Semaphore::new(at_once)),
        }
    }

    async fn ticket_stats(
        &self,
        caller: &Caller,
        req: &pb::GetTicketStatsRequest,
    ) -> ApiResult<pb::TicketStats> {
        if !(caller.is_staff() || caller.is_trusted_service()) {
            return Err(ApiError::denied("only staff may read statistics"));
        }
        let query = parse(req, self.clock.now())?;
        let _turn = self
            .gate
            .acquire()
            .await
            .map_err(|_| ApiError::Unavailable("shutting down".into()))?;
        let figures = stats::figures(&self.pool, &query, &self.targets, self.clock.now()).await?;
        Ok(to_pb(&query, figures, self.clock.now()))
    }
}

/// Every field checked at once, then the range (domain::stats::StatsQuery).
fn parse(
    req: &pb::GetTicketStatsRequest,
    now: chrono::DateTime<chrono::Utc>,
) -> ApiResult<StatsQuery> {
    let mut v = Violations::default();
    let from = v.take("start_time", optional_time(req.start_time.as_ref()));
    let until = v.take("end_time", optional_time(req.end_time.as_ref()));
    let category = v.take(
        "category_id",
        CategoryId::parse_optional(req.category_id.trim()),
    );
    let agent = v.take("agent_id", AccountId::parse_optional(req.agent_id.trim()));
    let (Some(from), Some(until), Some(category), Some(agent)) = (from, until, category, agent)
    else {
        return Err(ApiError::InvalidArgument(v));
    };
    StatsQuery::new(from, until, now, category, agent)
        .map_err(|(field, why)| ApiError::invalid(field, why))
}

/// Unset is `None` (the default applies); set but out of range is an error.
fn optional_time(
    t: Option<&prost_types::Timestamp>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
    t.map(|t| from_timestamp(t).ok_or_else(|| "is not a valid time".to_owned()))
        .transpose()
}

fn to_pb(
    query: &StatsQuery,
    f: TicketFigures,
    now: chrono::DateTime<chrono::Utc>,
) -> pb::TicketStats {
    let counts = |list: Vec<(String, i64)>| {
        list.into_iter()
            .map(|(key, count)| pb::CountByKey { key, count })
            .collect()
    };
    let rating_count = f.rating_count();
    pb::TicketStats {
        start_time: Some(to_timestamp(query.from)),
        end_time: Some(to_timestamp(query.until)),
        category_id: query
            .category
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default(),
        agent_id: query.agent.map(|a| a.to_string()).unwrap_or_default(),
        total: f.total,
        by_status: counts(f.by_status),
        by_priority: counts(f.by_priority),
        by_category: counts(f.by_category),
        first_response: Some(durations(&f.first_response)),
        resolution: Some(durations(&f.resolution)),
        ratings: Some(pb::RatingStats {
            count: rating_count,
            average: f.average_rating.unwrap_or(0.0),
            distribution: f.rating_distribution.to_vec(),
        }),
        agents: f
            .agents
            .into_iter()
            .map(|a| pb::AgentStats {
                agent_id: a.agent.to_string(),
                assigned: a.assigned,
                resolved: a.resolved,
                first_response_median: a.first_response_median.map(duration),
                average_rating: a.average_rating.unwrap_or(0.0),
                rating_count: a.rating_count,
            })
            .collect(),
        compute_time: Some(to_timestamp(now)),
    }
}

fn durations(f: &DurationFigures) -> pb::DurationStats {
    pb::DurationStats {
        count: f.count,
        median: f.median.map(duration),
        p90: f.p90.map(duration),
        within_target_share: f.within_target_share(),
        target_known: f.target_known,
    }
}

/// Spans here are never negative (a reply or resolution follows creation);
/// a clock skew that made one so shows as zero.
fn duration(d: chrono::Duration) -> prost_types::Duration {
    prost_types::Duration::try_from(d.to_std().unwrap_or_default()).unwrap_or_default()
}

#[tonic::async_trait]
impl StatisticsService for StatisticsApi {
    async fn get_ticket_stats(
        &self,
        request: Request<pb::GetTicketStatsRequest>,
    ) -> Result<Response<pb::TicketStats>, Status> {
        let caller = Caller::from_request(&request)?;
        Ok(Response::new(
            self.ticket_stats(&caller, request.get_ref()).await?,
        ))
    }
}
