//! The scheduler's Prometheus series ([`helpdesk_kit::metrics`]), by
//! `job_name` (not `job`, which Prometheus sets to the scrape job):
//!
//! - `scheduler_runs_total{job_name, outcome}`: runs this replica ended,
//!   `outcome` one of `succeeded`, `nothing_to_do`, `retry` (failed, to be
//!   tried again), `failed` (for good), `taken_over` (another replica holds
//!   it now), `given_back` (at shutdown) and `interrupted` (our database
//!   failed mid-run; the lease brings it back);
//! - `scheduler_run_duration_seconds{job_name}`: how long each of those took here;
//! - `scheduler_windows_skipped_total{job_name}`: windows planned as skipped
//!   (paused, overlapping, too late);
//! - `scheduler_last_success_timestamp_seconds{job_name}`: Unix time of the
//!   job's last run that succeeded (or had nothing to do): set when a run
//!   ends here, and raised from the run history (see [`sample_last_success`])
//!   so it is right after a restart and on replicas that did not run it.

use std::{sync::LazyLock, time::Instant};

use helpdesk_kit::metrics::{FloatGauge, LatencyFamily, latency_family, register};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    job_name: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    job_name: String,
}

struct Metrics {
    runs: Family<RunLabels, Counter>,
    duration: LatencyFamily<JobLabels>,
    skipped: Family<JobLabels, Counter>,
    last_success: Family<JobLabels, FloatGauge>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let m = Metrics {
        runs: Family::default(),
        duration: latency_family(),
        skipped: Family::default(),
        last_success: Family::default(),
    };
    register(|r| {
        r.register(
            "scheduler_runs",
            "Job runs ended on this replica, by job and outcome",
            m.runs.clone(),
        );
        r.register(
            "scheduler_run_duration_seconds",
            "Time a run took on this replica",
            m.duration.clone(),
        );
        r.register(
            "scheduler_windows_skipped",
            "Schedule windows planned as skipped",
            m.skipped.clone(),
        );
        r.register(
            "scheduler_last_success_timestamp_seconds",
            "Unix time of the job's last successful run (any replica)",
            m.last_success.clone(),
        );
    });
    m
});

/// Records a run of `job` that began at `started` and ended with `outcome`.
pub(crate) fn run_ended(job: &str, outcome: &'static str, started: Instant) {
    let labels = JobLabels {
        job_name: job.to_owned(),
    };
    METRICS
        .runs
        .get_or_create(&RunLabels {
            job_name: job.to_owned(),
            outcome,
        })
        .inc();
    METRICS
        .duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    if matches!(outcome, "succeeded" | "nothing_to_do") {
        // At once here; the sampler below brings other replicas' runs and
        // the history from before a restart.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        raise_last_success(labels, now);
    }
}

/// Sets the job's last success to `at` unless it is already later.
fn raise_last_success(labels: JobLabels, at: f64) {
    let gauge = METRICS.last_success.get_or_create(&labels);
    if gauge.get() < at {
        gauge.set(at);
    }
}

/// How often the last successes are read from the run history.
const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

/// Keeps `scheduler_last_success_timestamp_seconds` equal to the run
/// history's, at start and every [`SAMPLE_EVERY`], until `stop`.
pub(crate) async fn sample_last_success(
    pool: sqlx::PgPool,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        match crate::storage::runs::last_completed(&pool).await {
            Ok(jobs) => {
                for (job, at) in jobs {
                    raise_last_success(
                        JobLabels { job_name: job },
                        at.timestamp_millis() as f64 / 1000.0,
                    );
                }
            }
            Err(error) => tracing::warn!(%error, "reading the last successful runs failed"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(SAMPLE_EVERY) => {}
        }
    }
}

/// Counts a window of `job` planned as skipped.
pub(crate) fn window_skipped(job: &str) {
    METRICS
        .skipped
        .get_or_create(&JobLabels {
            job_name: job.to_owned(),
        })
        .inc();
}
