//! Honest health over `grpc.health.v1`: what each status name means, decided
//! in one place from what the process knows about itself.
//!
//! - `""` and every served service name (for example
//!   `support.v1.TicketService`): **readiness**. SERVING only once the
//!   service is started (migrations checked, pools connected, background
//!   tasks running) and while none of its tasks is dead or wedged; NOT_SERVING
//!   while starting, as soon as a stop begins, and while a task is failing.
//! - [`LIVENESS`]: SERVING unless a supervised task is dead (failed
//!   `failure_limit` times in a row) or wedged. Kubernetes restarts a process
//!   whose liveness fails; starting and stopping do not fail it.
//! - `dependency.<name>` (for example `dependency.postgres`): the state of a
//!   dependency, for operators and dashboards. No probe uses it on purpose: a
//!   database outage shared by every replica must not take them all out of
//!   the load balancer, where callers get a retryable UNAVAILABLE instead of
//!   connection errors (docs/operations.md).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use tokio::sync::watch;
use tonic_health::{ServingStatus, server::HealthReporter};

/// The status name of the liveness probe.
pub const LIVENESS: &str = "liveness";

/// The status name of dependency `name`.
pub fn dependency_name(name: &str) -> String {
    format!("dependency.{name}")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Starting,
    Ready,
    Stopping,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// Tasks currently dead or wedged, with why.
    failing: BTreeMap<String, String>,
    /// Dependencies by name: up or down.
    dependencies: BTreeMap<String, bool>,
}

/// The process's health, shared by the server, the supervisor and probes.
#[derive(Clone, Debug)]
pub struct Health {
    state: Arc<Mutex<State>>,
    reporter: HealthReporter,
    /// The readiness names: `""` and every served service.
    served: Arc<Vec<String>>,
    /// The latest statuses to publish; one publisher applies them in order.
    desired: Arc<watch::Sender<Vec<(String, ServingStatus)>>>,
}

impl Health {
    /// Health for a server serving `services` (full gRPC names), starting
    /// NOT_SERVING, and the `grpc.health.v1` service that reports it.
    pub async fn new(
        services: &[&str],
    ) -> (
        Self,
        tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
    ) {
        let (reporter, service) = tonic_health::server::health_reporter();
        let mut served: Vec<String> = services.iter().map(|s| (*s).to_owned()).collect();
        served.push(String::new());
        let state = State {
            phase: Phase::Starting,
            failing: BTreeMap::new(),
            dependencies: BTreeMap::new(),
        };
        let initial = statuses(&state, &served);
        // Applied before the server can answer: the reporter's own default
        // for "" is SERVING.
        apply(&reporter, &initial).await;
        let (desired, updates) = watch::channel(initial);
        tokio::spawn(publish(reporter.clone(), updates));
        let health = Self {
            state: Arc::new(Mutex::new(state)),
            reporter,
            served: Arc::new(served),
            desired: Arc::new(desired),
        };
        (health, service)
    }

    /// The service has started: readiness may turn SERVING.
    pub fn ready(&self) {
        self.update(|state| {
            if state.phase == Phase::Starting {
                state.phase = Phase::Ready;
            }
        });
    }

    /// A stop began: readiness turns NOT_SERVING for good, applied before
    /// this returns, so load balancers hear it before the listener closes.
    pub async fn stopping(&self) {
        self.update(|state| state.phase = Phase::Stopping);
        let latest = self.desired.borrow().clone();
        apply(&self.reporter, &latest).await;
    }

    /// Task `name` is dead or wedged.
    pub fn task_failed(&self, name: &str, why: &str) {
        self.update(|state| {
            state.failing.insert(name.to_owned(), why.to_owned());
        });
    }

    /// Task `name` is making progress again.
    pub fn task_recovered(&self, name: &str) {
        self.update(|state| {
            state.failing.remove(name);
        });
    }

    /// Records whether dependency `name` answers (reported, never probed).
    pub fn dependency(&self, name: &str, up: bool) {
        let changed = {
            let state = self.state.lock().expect("health state lock");
            state.dependencies.get(name) != Some(&up)
        };
        if changed {
            if up {
                tracing::info!(dependency = name, "dependency is up");
            } else {
                tracing::warn!(dependency = name, "dependency is down");
            }
            self.update(|state| {
                state.dependencies.insert(name.to_owned(), up);
            });
        }
    }

    fn update(&self, change: impl FnOnce(&mut State)) {
        let mut state = self.state.lock().expect("health state lock");
        let before = readiness(&state);
        change(&mut state);
        let after = readiness(&state);
        if before != after {
            tracing::info!(phase = ?state.phase, failing = ?state.failing, "readiness is now {}", name_of(after));
        }
        // Sent under the lock, so updates reach the publisher in order.
        self.desired.send_replace(statuses(&state, &self.served));
    }
}

fn readiness(state: &State) -> ServingStatus {
    if state.phase == Phase::Ready && state.failing.is_empty() {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

fn statuses(state: &State, served: &[String]) -> Vec<(String, ServingStatus)> {
    let ready = readiness(state);
    let live = if state.failing.is_empty() {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    let mut all: Vec<(String, ServingStatus)> =
        served.iter().map(|name| (name.clone(), ready)).collect();
    all.push((LIVENESS.to_owned(), live));
    for (name, up) in &state.dependencies {
        let status = if *up {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        all.push((dependency_name(name), status));
    }
    all
}

fn name_of(status: ServingStatus) -> &'static str {
    match status {
        ServingStatus::Serving => "SERVING",
        ServingStatus::NotServing => "NOT_SERVING",
        ServingStatus::Unknown => "UNKNOWN",
    }
}

async fn apply(reporter: &HealthReporter, statuses: &[(String, ServingStatus)]) {
    for (name, status) in statuses {
        reporter.set_service_status(name.as_str(), *status).await;
    }
}

/// Applies the latest desired statuses whenever they change.
async fn publish(
    reporter: HealthReporter,
    mut updates: watch::Receiver<Vec<(String, ServingStatus)>>,
) {
    while updates.changed().await.is_ok() {
        let latest = updates.borrow_and_update().clone();
        apply(&reporter, &latest).await;
    }
}
