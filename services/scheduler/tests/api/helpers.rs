//! `spawn_with(Setup)`: a fresh database, a shared manual clock, and any
//! number of scheduler replicas on it, each with its own [`Worker`] that
//! records every call into one [`Recorder`]. A replica is a full
//! `Application` (gRPC on port 0) or, for crash tests, a bare tick loop the
//! test can abort (a process killed: nothing gets to clean up).

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use helpdesk_kit::{
    auth::{AuthConfig, Role},
    clock::ManualClock,
    config::CommonConfig,
    tasks::TaskContext,
};
use helpdesk_proto::support::v1::scheduler_service_client::SchedulerServiceClient;
use helpdesk_testkit::{Bearer, TcpProxy, TestDb};
pub use helpdesk_testkit::{expect_code, violated_fields};
use scheduler_service::{
    MIGRATOR,
    app::scheduler::Scheduler,
    clients::tickets::{Progress, RunContext, SlaTargets, TicketWork, WorkError},
    config::Config,
    domain::{CatchUp, JobKind, JobSpec, Overlap, Schedule, stats::DailyStats},
    startup::Application,
};
use tokio::{sync::oneshot, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tonic::{service::interceptor::InterceptedService, transport::Channel};
use uuid::Uuid;

pub type Client = SchedulerServiceClient<InterceptedService<Channel, Bearer>>;

pub const ADMIN: &str = "0c000000-0000-4000-8000-000000000001";
pub const STAFF: &str = "0b000000-0000-4000-8000-000000000001";
pub const USER: &str = "0a000000-0000-4000-8000-000000000001";

pub fn utc(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, s).unwrap()
}

/// One call a worker received.
#[derive(Clone, Debug)]
pub struct Call {
    pub replica: String,
    pub job: &'static str,
    pub run: RunContext,
    /// The threshold the job computed (resolved before, opened before, …).
    pub threshold: Option<DateTime<Utc>>,
    /// Whether the call returned (a killed replica's call never does).
    pub completed: bool,
}

/// Every call of every replica, and the knobs of the fake work.
#[derive(Default)]
pub struct Recorder {
    calls: Mutex<Vec<Call>>,
    /// Pages each paged run has.
    pub pages: Mutex<u32>,
    /// (replica, checkpoint): that replica's call for that page hangs
    /// until this is cleared (or the replica is killed).
    pub hang: Mutex<Option<(String, Option<String>)>>,
}

impl Recorder {
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn calls_of(&self, job: JobKind) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.job == job.name())
            .collect()
    }

    /// Completed calls per (run, checkpoint): each page of a run must have
    /// been done exactly once.
    pub fn completed_pages(&self) -> HashMap<(Uuid, Option<String>), usize> {
        let mut out = HashMap::new();
        for c in self.calls().into_iter().filter(|c| c.completed) {
            *out.entry((c.run.run_id, c.run.checkpoint.clone()))
                .or_insert(0) += 1;
        }
        out
    }
}

/// A replica's ticket-service stand-in.
pub struct Worker {
    pub replica: String,
    pub recorder: Arc<Recorder>,
}

impl Worker {
    async fn page(
        &self,
        job: JobKind,
        run: &RunContext,
        threshold: Option<DateTime<Utc>>,
    ) -> Result<Progress, WorkError> {
        let index = {
            let mut calls = self.recorder.calls.lock().unwrap();
            calls.push(Call {
                replica: self.replica.clone(),
                job: job.name(),
                run: run.clone(),
                threshold,
                completed: false,
            });
            calls.len() - 1
        };
        // Hangs while the test says so (a killed replica never comes back).
        let me = Some((self.replica.clone(), run.checkpoint.clone()));
        while *self.recorder.hang.lock().unwrap() == me {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // A page takes a moment, so replicas overlap in time.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let pages = *self.recorder.pages.lock().unwrap();
        let done_so_far: u32 = run.checkpoint.as_deref().map_or(0, |c| c.parse().unwrap());
        let now = done_so_far + 1;
        self.recorder.calls.lock().unwrap()[index].completed = true;
        Ok(Progress {
            processed: 10,
            checkpoint: Some(now.to_string()),
            done: now >= pages,
        })
    }
}

#[tonic::async_trait]
impl TicketWork for Worker {
    async fn close_resolved(
        &self,
        run: &RunContext,
        resolved_before: DateTime<Utc>,
    ) -> Result<Progress, WorkError> {
        self.page(
            JobKind::AutoCloseResolvedTickets,
            run,
            Some(resolved_before),
        )
        .await
    }
    async fn alert_overdue(&self, run: &RunContext, _: &SlaTargets) -> Result<Progress, WorkError> {
        self.page(JobKind::SendOverdueTicketAlerts, run, None).await
    }
    async fn escalate_open(
        &self,
        run: &RunContext,
        opened_before: DateTime<Utc>,
    ) -> Result<Progress, WorkError> {
        self.page(JobKind::EscalateOldOpenTickets, run, Some(opened_before))
            .await
    }
    async fn request_ratings(
        &self,
        run: &RunContext,
        resolved_before: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<Progress, WorkError> {
        self.page(JobKind::SendRatingRequests, run, Some(resolved_before))
            .await
    }
    async fn remind_unrated(
        &self,
        run: &RunContext,
        asked_before: DateTime<Utc>,
        _: u32,
    ) -> Result<Progress, WorkError> {
        self.page(JobKind::SendUnratedTicketReminders, run, Some(asked_before))
            .await
    }
    async fn daily_statistics(
        &self,
        run: &RunContext,
        day: NaiveDate,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<DailyStats, WorkError> {
        self.recorder.calls.lock().unwrap().push(Call {
            replica: self.replica.clone(),
            job: JobKind::GenerateSupportStatistics.name(),
            run: run.clone(),
            threshold: Some(from),
            completed: true,
        });
        use chrono::Datelike;
        Ok(DailyStats {
            created: i64::from(day.day()),
            resolved: (until - from).num_hours(),
            average_rating: 4.5,
            rating_count: 2,
            created_by_priority: vec![("high".into(), 3)],
            ..Default::default()
        })
    }
    async fn faq_analytics(&self, run: &RunContext) -> Result<Progress, WorkError> {
        self.page(JobKind::UpdateFaqAnalytics, run, None).await
    }
}

/// A job as a test wants it.
pub fn job(
    kind: JobKind,
    schedule: &str,
    zone: &str,
    overlap: Overlap,
    catch_up: CatchUp,
) -> JobSpec {
    JobSpec {
        kind,
        schedule: Schedule::parse(schedule, zone).unwrap(),
        overlap,
        catch_up,
        max_lateness: Duration::from_secs(3 * 3600),
    }
}

/// Knobs for a test's world.
pub struct Setup {
    pub start: DateTime<Utc>,
    /// `None`: the seven jobs with their defaults.
    pub jobs: Option<Vec<JobSpec>>,
    /// Full replicas started at once.
    pub replicas: usize,
    pub pages: u32,
    pub grace: Duration,
    /// Replicas reach PostgreSQL through a [`TcpProxy`] the test can cut
    /// ([`TestEnv::database_proxy`]).
    pub database_proxy: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            start: utc(2026, 3, 1, 9, 0, 30),
            jobs: None,
            replicas: 1,
            pages: 1,
            grace: Duration::from_secs(60),
            database_proxy: false,
        }
    }
}

pub struct Replica {
    pub name: String,
    channel: Option<Channel>,
    stop: Option<oneshot::Sender<()>>,
    bare_stop: Option<CancellationToken>,
    task: JoinHandle<()>,
}

pub struct TestEnv {
    pub clock: Arc<ManualClock>,
    pub db: TestDb,
    pub recorder: Arc<Recorder>,
    pub replicas: Vec<Replica>,
    jobs: Option<Vec<JobSpec>>,
    grace: Duration,
    database_proxy: Option<TcpProxy>,
}

pub async fn spawn() -> TestEnv {
    spawn_with(Setup::default()).await
}

pub async fn spawn_with(setup: Setup) -> TestEnv {
    helpdesk_kit::telemetry::init_for_tests();
    let recorder = Arc::new(Recorder::default());
    *recorder.pages.lock().unwrap() = setup.pages;
    let mut env = TestEnv {
        clock: Arc::new(ManualClock::new(setup.start)),
        db: TestDb::create(&MIGRATOR).await.expect("scheduler database"),
        recorder,
        replicas: Vec::new(),
        jobs: setup.jobs,
        grace: setup.grace,
        database_proxy: None,
    };
    if setup.database_proxy {
        env.database_proxy = Some(
            TcpProxy::start(([127, 0, 0, 1], 5432).into())
                .await
                .expect("database proxy"),
        );
    }
    for i in 0..setup.replicas {
        env.start_replica(&format!("r{i}")).await;
    }
    env
}

impl TestEnv {
    fn config(&self) -> Config {
        let common = CommonConfig {
            listen_addr: "127.0.0.1:0".parse().unwrap(),
            database_url: match &self.database_proxy {
                Some(proxy) => self
                    .db
                    .url
                    .replace("127.0.0.1:5432", &proxy.addr.to_string()),
                None => self.db.url.clone(),
            },
            database_max_connections: 8,
            auth: AuthConfig::dev(),
            otlp_endpoint: None,
            metrics_addr: None,
        };
        let mut config = Config::with_common(common).expect("config");
        if let Some(jobs) = &self.jobs {
            config.jobs = jobs.clone();
        }
        config.scheduler.tick = Duration::from_millis(20);
        config.scheduler.renew_every = Duration::from_millis(100);
        config.scheduler.grace = self.grace;
        config
    }

    fn worker(&self, name: &str) -> Arc<Worker> {
        Arc::new(Worker {
            replica: name.into(),
            recorder: self.recorder.clone(),
        })
    }

    /// Starts a full replica (gRPC and the tick loop).
    pub async fn start_replica(&mut self, name: &str) {
        let mut config = self.config();
        config.holder = name.into();
        let app = Application::build(config, self.clock.clone(), self.worker(name))
            .await
            .expect("scheduler");
        let port = app.port();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            app.run(async move {
                let _ = stopped.await;
            })
            .await
            .expect("scheduler run");
        });
        let channel = Channel::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        self.replicas.push(Replica {
            name: name.into(),
            channel: Some(channel),
            stop: Some(stop),
            bare_stop: None,
            task,
        });
    }

    /// A scheduler on this database without starting its loop.
    pub fn bare_scheduler(&self, name: &str) -> Scheduler {
        let config = self.config();
        Scheduler::new(
            self.db.pool.clone(),
            self.clock.clone(),
            config.jobs,
            self.worker(name),
            config.thresholds,
            config.scheduler,
            name.into(),
        )
    }

    /// Starts only a tick loop (no server): a replica the test may kill.
    pub async fn start_bare_replica(&mut self, name: &str) {
        let scheduler = self.bare_scheduler(name);
        scheduler.register().await.unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(scheduler.run(TaskContext::detached(stop.clone())));
        self.replicas.push(Replica {
            name: name.into(),
            channel: None,
            stop: None,
            bare_stop: Some(stop),
            task,
        });
    }

    /// Kills a replica: its tasks are aborted mid-whatever, nothing is
    /// given back (its leases simply run out).
    pub fn kill(&mut self, name: &str) {
        let i = self.replicas.iter().position(|r| r.name == name).unwrap();
        let replica = self.replicas.remove(i);
        assert!(replica.channel.is_none(), "kill works on bare replicas");
        replica.task.abort();
    }

    /// Stops a replica gracefully and waits for it.
    pub async fn stop(&mut self, name: &str) {
        let i = self.replicas.iter().position(|r| r.name == name).unwrap();
        let mut replica = self.replicas.remove(i);
        if let Some(stop) = replica.stop.take() {
            let _ = stop.send(());
        }
        if let Some(stop) = replica.bare_stop.take() {
            stop.cancel();
        }
        tokio::time::timeout(Duration::from_secs(30), replica.task)
            .await
            .expect("replica stops")
            .expect("replica task");
    }

    /// The API of the first full replica as `sub` with `role`.
    pub fn as_role(&self, sub: &str, role: Role) -> Client {
        let channel = self
            .replicas
            .iter()
            .find_map(|r| r.channel.clone())
            .expect("a full replica");
        SchedulerServiceClient::with_interceptor(channel, Bearer::token(sub, role))
    }

    pub fn admin(&self) -> Client {
        self.as_role(ADMIN, Role::Admin)
    }

    /// The proxy between the replicas and PostgreSQL (`Setup::database_proxy`).
    pub fn database_proxy(&self) -> &TcpProxy {
        self.database_proxy
            .as_ref()
            .expect("spawned with Setup::database_proxy")
    }

    pub fn staff(&self) -> Client {
        self.as_role(STAFF, Role::Staff)
    }

    pub fn clock_now(&self) -> DateTime<Utc> {
        use helpdesk_kit::clock::Clock;
        self.clock.now()
    }

    pub fn set_clock(&self, t: DateTime<Utc>) {
        self.clock.set(t);
    }

    /// Every run row of `job`, oldest window first.
    pub async fn runs(&self, job: JobKind) -> Vec<RunView> {
        sqlx::query_as!(
            RunView,
            r#"SELECT id, fire_at, trigger, state, reason, fence, attempts, processed, checkpoint
               FROM job_runs WHERE job = $1 ORDER BY fire_at"#,
            job.name()
        )
        .fetch_all(&self.db.pool)
        .await
        .unwrap()
    }

    /// Waits until `job` has `n` rows and none is queued or running.
    pub async fn settled(&self, job: JobKind, n: usize) -> Vec<RunView> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let runs = self.runs(job).await;
            if runs.len() == n
                && runs
                    .iter()
                    .all(|r| r.state != "queued" && r.state != "running")
            {
                return runs;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {n} settled runs of {job}; have {runs:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        for replica in self.replicas.drain(..) {
            if let Some(stop) = replica.stop {
                let _ = stop.send(());
            }
            if let Some(stop) = replica.bare_stop {
                stop.cancel();
            }
            replica.task.abort();
        }
    }
}

#[derive(Debug, Clone)]
pub struct RunView {
    pub id: Uuid,
    pub fire_at: DateTime<Utc>,
    pub trigger: String,
    pub state: String,
    pub reason: Option<String>,
    pub fence: i64,
    pub attempts: i32,
    pub processed: i64,
    pub checkpoint: Option<String>,
}

/// Polls `condition` for at most 20 s (testkit `wait_until`).
pub async fn wait_until<F, Fut>(what: &str, condition: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    helpdesk_testkit::wait_until(what, Duration::from_secs(20), condition).await
}

/// Lets a few ticks pass (to show that nothing happens).
pub async fn a_few_ticks() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

pub fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    helpdesk_kit::clock::to_timestamp(t)
}
