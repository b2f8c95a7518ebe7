//! Supervised background tasks: the relay, consumers, drainers, roster sync,
//! reconciliation and pruning of every service run here, never as a bare
//! `tokio::spawn` whose panic nobody sees.
//!
//! Each [`Task`] is a factory: the supervisor calls it, runs the future in its
//! own tokio task (so a panic is caught, not propagated), and when it panics,
//! returns an error, or returns at all before the stop signal, logs that with
//! the task's name and starts it again after an exponential backoff. A task
//! that keeps failing (`failure_limit` times without one healthy run in
//! between) is reported to [`Health`], which turns the process NOT_SERVING,
//! liveness included, so Kubernetes restarts it. A task may also declare a
//! watchdog: if it stops calling [`TaskContext::beat`] for that long it is
//! wedged, which is reported the same way.
//!
//! Stopping is ordered: [`Supervisor::stop`] cancels the tasks one at a time
//! in registration order and waits for each to return (a consumer finishes
//! the message in hand, the relay its batch) before cancelling the next, so a
//! service registers the work that writes before the relay that publishes it.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use tokio::{task::JoinHandle, time::Instant};
use tokio_util::sync::CancellationToken;

use crate::health::Health;

type TaskFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;
type TaskFactory = Arc<dyn Fn(TaskContext) -> TaskFuture + Send + Sync>;

/// A named background task the supervisor can start again after a failure.
pub struct Task {
    name: Arc<str>,
    factory: TaskFactory,
    watchdog: Option<Duration>,
}

impl Task {
    /// `run` is called for every (re)start. The future should run until
    /// [`TaskContext::stop`] is cancelled; returning earlier counts as a
    /// failure, because a service's background work never finishes by itself.
    pub fn new<F, Fut>(name: impl Into<Arc<str>>, run: F) -> Self
    where
        F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        Self {
            name: name.into(),
            factory: Arc::new(move |ctx| Box::pin(run(ctx))),
            watchdog: None,
        }
    }

    /// A task from a loop that runs until its stop token is cancelled and
    /// reports its own errors: `run(state.clone(), stop)` on every start.
    pub fn from_loop<S, F, Fut>(name: impl Into<Arc<str>>, state: S, run: F) -> Self
    where
        S: Clone + Send + Sync + 'static,
        F: Fn(S, CancellationToken) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::from_worker(name, state, move |state, ctx| {
            run(state, ctx.stop().clone())
        })
    }

    /// [`Self::from_loop`] for a loop that also beats its heartbeat (give it
    /// a watchdog): `run(state.clone(), context)` on every start.
    pub fn from_worker<S, F, Fut>(name: impl Into<Arc<str>>, state: S, run: F) -> Self
    where
        S: Clone + Send + Sync + 'static,
        F: Fn(S, TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::new(name, move |ctx| {
            let running = run(state.clone(), ctx);
            async move {
                running.await;
                Ok(())
            }
        })
    }

    /// Declares the task wedged when it has not called
    /// [`TaskContext::beat`] for `silence` (a loop that waits at most N
    /// seconds between rounds beats once a round; pick a few rounds).
    pub fn with_watchdog(mut self, silence: Duration) -> Self {
        self.watchdog = Some(silence);
        self
    }

    /// The name used in logs and health reports.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.name)
            .field("watchdog", &self.watchdog)
            .finish_non_exhaustive()
    }
}

/// What a running task gets: its stop signal and its heartbeat.
#[derive(Clone, Debug)]
pub struct TaskContext {
    stop: CancellationToken,
    heartbeat: Heartbeat,
}

impl TaskContext {
    /// A context for running a task's function outside the supervisor
    /// (tests, benchmarks): stopped by `stop`, its heartbeat unwatched.
    pub fn detached(stop: CancellationToken) -> Self {
        Self {
            stop,
            heartbeat: Heartbeat::new(),
        }
    }

    /// Cancelled when the service stops; finish the unit of work in hand.
    pub fn stop(&self) -> &CancellationToken {
        &self.stop
    }

    /// Proves the task is making progress (see [`Task::with_watchdog`]).
    pub fn beat(&self) {
        self.heartbeat.beat();
    }

    /// A heartbeat to hand to code that takes no [`TaskContext`].
    pub fn heartbeat(&self) -> Heartbeat {
        self.heartbeat.clone()
    }
}

/// The time of a task's last sign of progress.
#[derive(Clone, Debug)]
pub struct Heartbeat {
    origin: Instant,
    last_millis: Arc<AtomicI64>,
}

impl Heartbeat {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            last_millis: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Records progress now.
    pub fn beat(&self) {
        let millis = i64::try_from(self.origin.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.last_millis.store(millis, Ordering::Relaxed);
    }

    fn silent_for(&self) -> Duration {
        let last = Duration::from_millis(
            u64::try_from(self.last_millis.load(Ordering::Relaxed)).unwrap_or(0),
        );
        self.origin.elapsed().saturating_sub(last)
    }
}

/// How the supervisor restarts failing tasks.
#[derive(Clone, Copy, Debug)]
pub struct RestartPolicy {
    /// The first restart's delay; doubled after each failure.
    pub min_backoff: Duration,
    /// The longest delay between restarts.
    pub max_backoff: Duration,
    /// Consecutive failures after which the task counts as dead.
    pub failure_limit: u32,
    /// A run at least this long resets the failure count.
    pub healthy_run: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            failure_limit: 5,
            healthy_run: Duration::from_secs(60),
        }
    }
}

struct Running {
    name: Arc<str>,
    stop: CancellationToken,
    handle: JoinHandle<()>,
}

/// Runs [`Task`]s, restarts them when they fail, and stops them in order.
#[derive(Default)]
pub struct Supervisor {
    running: Vec<Running>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.running.iter().map(|r| &*r.name).collect();
        f.debug_struct("Supervisor").field("tasks", &names).finish()
    }
}

impl Supervisor {
    /// Starts `task` under supervision, reporting its failures to `health`.
    pub fn start(&mut self, task: Task, policy: RestartPolicy, health: &Health) {
        let stop = CancellationToken::new();
        let name = task.name.clone();
        let handle = tokio::spawn(supervise(task, policy, health.clone(), stop.clone()));
        self.running.push(Running { name, stop, handle });
    }

    /// Stops every task, one at a time in the order they were started.
    pub async fn stop(self) {
        for task in self.running {
            task.stop.cancel();
            if let Err(e) = task.handle.await {
                tracing::error!(task = &*task.name, error = %e, "supervisor of task failed");
            }
            tracing::debug!(task = &*task.name, "task stopped");
        }
    }
}

/// Runs one task until `stop`, restarting it after every failure.
async fn supervise(task: Task, policy: RestartPolicy, health: Health, stop: CancellationToken) {
    let name: &str = &task.name;
    let mut failures = 0u32;
    let mut backoff = policy.min_backoff;
    loop {
        let heartbeat = Heartbeat::new();
        heartbeat.beat();
        let context = TaskContext {
            stop: stop.clone(),
            heartbeat: heartbeat.clone(),
        };
        let run = tokio::spawn((task.factory)(context));
        let finished = async {
            match task.watchdog {
                Some(silence) => watch(run, &heartbeat, silence, name, &health).await,
                None => run.await,
            }
        };
        tokio::pin!(finished);
        let outcome = tokio::select! {
            outcome = &mut finished => outcome,
            () = tokio::time::sleep(policy.healthy_run) => {
                // Long enough to call this start a success: forget earlier failures.
                if failures > 0 {
                    failures = 0;
                    backoff = policy.min_backoff;
                    health.task_recovered(name);
                }
                finished.await
            }
        };
        if stop.is_cancelled() {
            match outcome {
                Ok(Err(e)) => {
                    tracing::warn!(task = name, error = %format!("{e:#}"), "task failed while stopping")
                }
                Err(e) if e.is_panic() => {
                    tracing::error!(task = name, panic = %panic_message(e), "task panicked while stopping")
                }
                _ => {}
            }
            return;
        }
        match outcome {
            Ok(Ok(())) => tracing::error!(task = name, "task returned before the service stopped"),
            Ok(Err(e)) => tracing::error!(task = name, error = %format!("{e:#}"), "task failed"),
            Err(e) if e.is_panic() => {
                tracing::error!(task = name, panic = %panic_message(e), "task panicked");
            }
            Err(e) => tracing::error!(task = name, error = %e, "task was cancelled"),
        }
        failures += 1;
        if failures >= policy.failure_limit {
            health.task_failed(name, &format!("failed {failures} times in a row"));
        }
        tracing::info!(
            task = name,
            failures,
            backoff_ms = backoff.as_millis(),
            "restarting task"
        );
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stop.cancelled() => return,
        }
        backoff = (backoff * 2).min(policy.max_backoff);
    }
}

/// Awaits `run`, reporting the task wedged while its heartbeat is silent
/// for longer than `silence`, and recovered once it beats again.
async fn watch(
    mut run: JoinHandle<anyhow::Result<()>>,
    heartbeat: &Heartbeat,
    silence: Duration,
    name: &str,
    health: &Health,
) -> Result<anyhow::Result<()>, tokio::task::JoinError> {
    let check_every = (silence / 4).max(Duration::from_millis(10));
    let mut wedged = false;
    loop {
        tokio::select! {
            outcome = &mut run => {
                if wedged {
                    health.task_recovered(name);
                }
                return outcome;
            }
            () = tokio::time::sleep(check_every) => {
                let quiet = heartbeat.silent_for();
                if quiet > silence && !wedged {
                    wedged = true;
                    tracing::error!(task = name, silent_ms = quiet.as_millis(), "task is wedged");
                    health.task_failed(name, "wedged: no progress within its watchdog");
                } else if quiet <= silence && wedged {
                    wedged = false;
                    tracing::info!(task = name, "task made progress again");
                    health.task_recovered(name);
                }
            }
        }
    }
}

fn panic_message(error: tokio::task::JoinError) -> String {
    let payload = error.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}
