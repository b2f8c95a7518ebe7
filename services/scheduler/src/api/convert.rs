//! Rows and domain values to protobuf.

use chrono::{DateTime, Utc};
use helpdesk_kit::clock::to_timestamp;
use helpdesk_proto::support::v1 as pb;

use crate::{
    domain::{CatchUp, JobSpec, Overlap, RunState, Trigger},
    storage::{jobs::JobRow, runs::RunRow, stats::StoredDay},
};

pub fn overlap(o: Overlap) -> pb::OverlapPolicy {
    match o {
        Overlap::Skip => pb::OverlapPolicy::Skip,
        Overlap::Queue => pb::OverlapPolicy::Queue,
    }
}

pub fn catch_up(c: CatchUp) -> pb::CatchUpPolicy {
    match c {
        CatchUp::Skip => pb::CatchUpPolicy::Skip,
        CatchUp::Latest => pb::CatchUpPolicy::Latest,
        CatchUp::All => pb::CatchUpPolicy::All,
    }
}

fn state(raw: &str) -> pb::JobRunState {
    match raw.parse::<RunState>() {
        Ok(RunState::Queued) => pb::JobRunState::Queued,
        Ok(RunState::Running) => pb::JobRunState::Running,
        Ok(RunState::Succeeded) => pb::JobRunState::Succeeded,
        Ok(RunState::Failed) => pb::JobRunState::Failed,
        Ok(RunState::Skipped) => pb::JobRunState::Skipped,
        Err(_) => pb::JobRunState::Unspecified,
    }
}

fn trigger(raw: &str) -> pb::JobRunTrigger {
    match Trigger::parse(raw) {
        Some(Trigger::Schedule) => pb::JobRunTrigger::Schedule,
        Some(Trigger::CatchUp) => pb::JobRunTrigger::CatchUp,
        Some(Trigger::Manual) => pb::JobRunTrigger::Manual,
        None => pb::JobRunTrigger::Unspecified,
    }
}

pub fn run(r: &RunRow) -> pb::JobRun {
    pb::JobRun {
        id: r.id.to_string(),
        job: r.job.clone(),
        fire_time: Some(to_timestamp(r.fire_at)),
        as_of_time: Some(to_timestamp(r.as_of)),
        trigger: trigger(&r.trigger) as i32,
        state: state(&r.state) as i32,
        reason: r.reason.clone().unwrap_or_default(),
        requested_by: r.requested_by.clone().unwrap_or_default(),
        processed: r.processed,
        checkpoint: r.checkpoint.clone().unwrap_or_default(),
        attempts: r.attempts,
        fencing_token: r.fence,
        error: r.error.clone().unwrap_or_default(),
        start_time: r.started_at.map(to_timestamp),
        end_time: r.finished_at.map(to_timestamp),
        create_time: Some(to_timestamp(r.created_at)),
    }
}

/// How many next fire times ListJobs shows.
const NEXT_RUNS: usize = 3;

pub fn job(spec: &JobSpec, row: &JobRow, last: Option<&RunRow>, now: DateTime<Utc>) -> pb::Job {
    let next_run_times = if row.paused {
        Vec::new()
    } else {
        spec.schedule
            .upcoming(now, NEXT_RUNS)
            .into_iter()
            .map(to_timestamp)
            .collect()
    };
    pb::Job {
        name: spec.kind.name().into(),
        description: spec.kind.description().into(),
        schedule: spec.schedule.expression().into(),
        time_zone: spec.schedule.zone().name().into(),
        paused: row.paused,
        paused_by: row.paused_by.clone().unwrap_or_default(),
        pause_time: row.paused_at.map(to_timestamp),
        next_run_times,
        overlap_policy: overlap(spec.overlap) as i32,
        catch_up_policy: catch_up(spec.catch_up) as i32,
        max_lateness_seconds: i64::try_from(spec.max_lateness.as_secs()).unwrap_or(i64::MAX),
        last_run: last.map(run),
    }
}

pub fn day(d: &StoredDay) -> pb::DailyStats {
    let s = &d.stats;
    let counts = |v: &[(String, i64)]| {
        v.iter()
            .map(|(key, count)| pb::CountByKey {
                key: key.clone(),
                count: *count,
            })
            .collect()
    };
    pb::DailyStats {
        date: d.day.to_string(),
        time_zone: d.time_zone.clone(),
        created: s.created,
        resolved: s.resolved,
        closed: s.closed,
        created_by_category: counts(&s.created_by_category),
        created_by_priority: counts(&s.created_by_priority),
        first_response_median_seconds: s.first_response_median_seconds,
        first_response_p90_seconds: s.first_response_p90_seconds,
        resolution_median_seconds: s.resolution_median_seconds,
        resolution_p90_seconds: s.resolution_p90_seconds,
        average_rating: s.average_rating,
        rating_count: s.rating_count,
        agents: s
            .agents
            .iter()
            .map(|a| pb::AgentDayStats {
                agent_id: a.agent_id.clone(),
                assigned: a.assigned,
                resolved: a.resolved,
                replies: a.replies,
            })
            .collect(),
        compute_time: Some(to_timestamp(d.computed_at)),
    }
}
