//! The service skeleton over a real socket: supervised tasks restarted
//! after panics and errors, health that tells the truth about them, the
//! database reported as a dependency, and tasks stopped in order.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use helpdesk_kit::{
    auth::{AuthConfig, Verifier},
    health::LIVENESS,
    service::Service,
    tasks::{RestartPolicy, Task},
};
use helpdesk_testkit::{TestDb, health_status, wait_for_health};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic_health::pb::health_check_response::ServingStatus;

const WITHIN: Duration = Duration::from_secs(10);

/// Restarts within milliseconds, so a test sees several failures quickly.
fn quick_restarts(failure_limit: u32) -> RestartPolicy {
    RestartPolicy {
        min_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        failure_limit,
        healthy_run: Duration::from_secs(60),
    }
}

struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    served: JoinHandle<anyhow::Result<()>>,
}

async fn start(service: Service) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let verifier = Verifier::new(&AuthConfig::dev()).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(service.run(listener, verifier, async {
        let _ = stopped.await;
    }));
    Running { addr, stop, served }
}

impl Running {
    /// Waits (bounded) until readiness and liveness both report `status`.
    async fn wait_ready_and_live(&self, status: ServingStatus) {
        for name in ["", LIVENESS] {
            wait_for_health(self.addr, name, status, WITHIN)
                .await
                .unwrap();
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.served.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn a_healthy_service_is_ready_and_live() {
    let running = start(
        Service::new().task(Task::from_loop("idle", (), |(), stop| async move {
            stop.cancelled().await;
        })),
    )
    .await;
    running.wait_ready_and_live(ServingStatus::Serving).await;
    running.stop().await;
}

#[tokio::test]
async fn a_task_that_keeps_panicking_is_restarted_then_fails_readiness_and_liveness() {
    let starts = Arc::new(AtomicU32::new(0));
    let counted = starts.clone();
    let service = Service::new()
        .restart_policy(quick_restarts(3))
        .task(Task::new("doomed", move |_ctx| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move { panic!("relay lost its mind") }
        }));
    let running = start(service).await;
    running.wait_ready_and_live(ServingStatus::NotServing).await;
    assert!(
        starts.load(Ordering::SeqCst) >= 3,
        "restarted until the limit"
    );
    running.stop().await;
}

#[tokio::test]
async fn a_task_that_fails_a_few_times_then_runs_keeps_the_service_serving() {
    let starts = Arc::new(AtomicU32::new(0));
    let counted = starts.clone();
    let service = Service::new()
        .restart_policy(quick_restarts(5))
        .task(Task::new("flaky", move |ctx| {
            let attempt = counted.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                anyhow::ensure!(attempt > 2, "broker not there yet (attempt {attempt})");
                ctx.stop().cancelled().await;
                Ok(())
            }
        }));
    let running = start(service).await;
    let deadline = tokio::time::Instant::now() + WITHIN;
    while starts.load(Ordering::SeqCst) < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "third start never came"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    running.wait_ready_and_live(ServingStatus::Serving).await;
    running.stop().await;
}

#[tokio::test]
async fn a_wedged_task_fails_readiness_until_it_beats_again() {
    let (unwedge, unwedged) = tokio::sync::watch::channel(false);
    let service = Service::new().task(
        Task::new("stuck", move |ctx| {
            let mut unwedged = unwedged.clone();
            async move {
                // Silent until released, then beating steadily.
                let _ = unwedged.wait_for(|released| *released).await;
                loop {
                    ctx.beat();
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(10)) => {}
                        () = ctx.stop().cancelled() => return Ok(()),
                    }
                }
            }
        })
        .with_watchdog(Duration::from_millis(200)),
    );
    let running = start(service).await;
    running.wait_ready_and_live(ServingStatus::NotServing).await;
    unwedge.send(true).unwrap();
    running.wait_ready_and_live(ServingStatus::Serving).await;
    running.stop().await;
}

#[tokio::test]
async fn tasks_stop_one_at_a_time_in_declaration_order() {
    let order = Arc::new(Mutex::new(Vec::new()));
    let task = |name: &'static str| {
        Task::from_loop(name, order.clone(), move |order, stop| async move {
            stop.cancelled().await;
            // Slow to finish: the next one must not be told to stop meanwhile.
            tokio::time::sleep(Duration::from_millis(30)).await;
            order.lock().unwrap().push(name);
        })
    };
    let running = start(Service::new().task(task("consumer")).task(task("relay"))).await;
    wait_for_health(running.addr, "", ServingStatus::Serving, WITHIN)
        .await
        .unwrap();
    running.stop().await;
    assert_eq!(*order.lock().unwrap(), ["consumer", "relay"]);
}

#[tokio::test]
async fn the_database_is_reported_as_a_named_dependency_not_as_readiness() {
    let db = TestDb::create(&sqlx::migrate::Migrator::DEFAULT)
        .await
        .unwrap();
    let running = start(Service::new().database(db.pool.clone())).await;
    wait_for_health(
        running.addr,
        "dependency.postgres",
        ServingStatus::Serving,
        WITHIN,
    )
    .await
    .unwrap();
    assert_eq!(
        health_status(running.addr, "").await.unwrap(),
        ServingStatus::Serving
    );
    running.stop().await;
}
