//! Load drivers shared by the benches: a fixed number of calls
//! ([`drive`]), closed-loop callers for a fixed time after a warm-up
//! ([`timed`]), and a fixed arrival rate that never waits for answers
//! ([`open_loop`]).

use std::{
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tonic::Request;

use crate::report::Latencies;

/// Runs `total` calls of `call` from `concurrency` tasks; returns the wall
/// time and each call's latency. The first failure ends the run.
pub async fn drive<F, Fut>(
    concurrency: usize,
    total: usize,
    call: F,
) -> anyhow::Result<(Duration, Latencies)>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let call = Arc::new(call);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (call, next) = (call.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, anyhow::Error>(samples);
                }
                let t = Instant::now();
                call(i).await?;
                samples.push(t.elapsed());
            }
        }));
    }
    let mut all = Vec::with_capacity(total);
    for task in tasks {
        all.extend(task.await??);
    }
    Ok((started.elapsed(), Latencies::new(all)))
}

/// A request with the caller's bearer token.
pub fn authorized<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    request
}

/// What a timed run measured (the warm-up excluded).
pub struct Run {
    /// Calls that succeeded.
    pub ops: usize,
    pub errors: usize,
    /// The first error, for the report.
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Every call made, the warm-up's included: what the work a run left
    /// behind (rows, events) is divided by.
    pub issued: u64,
    /// The successful calls' latencies.
    pub latencies: Latencies,
}

impl Run {
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
}

/// `concurrency` callers, each calling `call(caller, i)` back to back
/// (closed loop): first for `warmup` unmeasured, then for `measure` (and
/// at least one measured call each). Calls that fail are counted, not
/// retried, and do not stop the run.
pub async fn timed<F, Fut>(concurrency: usize, warmup: Duration, measure: Duration, call: F) -> Run
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let call = Arc::new(call);
    let next = Arc::new(AtomicU64::new(0));
    let measuring = Instant::now() + warmup;
    let end = measuring + measure;
    let mut tasks = Vec::new();
    for caller in 0..concurrency {
        let (call, next) = (call.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let (mut samples, mut errors, mut first_error) = (Vec::new(), 0, None);
            loop {
                let t = Instant::now();
                // Each caller makes at least one measured call, however slow.
                if t >= end && (samples.len() + errors) > 0 {
                    break;
                }
                let result = call(caller, next.fetch_add(1, Ordering::Relaxed)).await;
                if t < measuring {
                    continue;
                }
                match result {
                    Ok(()) => samples.push(t.elapsed()),
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
            (samples, errors, first_error)
        }));
    }
    let mut run = Run {
        ops: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        issued: 0,
        latencies: Latencies::new(Vec::new()),
    };
    let mut all = Vec::new();
    for task in tasks {
        match task.await {
            Ok((samples, errors, first)) => {
                all.extend(samples);
                run.errors += errors;
                if run.first_error.is_none() {
                    run.first_error = first;
                }
            }
            Err(e) => {
                run.errors += 1;
                run.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    // Calls still running at `end` finish late: the span is until the last.
    run.elapsed = measuring.elapsed().max(measure);
    run.ops = all.len();
    run.issued = next.load(Ordering::Relaxed);
    run.latencies = Latencies::new(all);
    run
}

/// What an open-loop run measured, per kind of call.
pub struct Arrivals {
    /// Per kind: the successful calls' latencies, from when each call was
    /// due (so a late start counts against the call), and the failures.
    pub kinds: Vec<(Latencies, usize)>,
    /// Calls still unanswered when the run gave up waiting.
    pub unanswered: usize,
}

/// Calls at a fixed `rate` per second for `duration`: call i is due at
/// i / rate and is started then whether or not earlier calls have answered
/// (open loop). `call(i)` returns the call's kind (an index below `kinds`)
/// and its future. Waits up to `grace` after the last arrival for answers.
pub async fn open_loop<F, Fut>(
    rate: f64,
    duration: Duration,
    kinds: usize,
    grace: Duration,
    call: F,
) -> Arrivals
where
    F: Fn(u64) -> (usize, Fut),
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    type Samples = Arc<Mutex<Vec<(Vec<Duration>, usize)>>>;
    let samples: Samples = Arc::new(Mutex::new(vec![(Vec::new(), 0); kinds]));
    let outstanding = Arc::new(AtomicUsize::new(0));
    let started = tokio::time::Instant::now();
    let total = (rate * duration.as_secs_f64()).round() as u64;
    for i in 0..total {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due).await;
        let (kind, future) = call(i);
        let (samples, outstanding) = (samples.clone(), outstanding.clone());
        outstanding.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let result = future.await;
            let took = due.elapsed();
            let mut samples = samples.lock().expect("not poisoned");
            match result {
                Ok(()) => samples[kind].0.push(took),
                Err(_) => samples[kind].1 += 1,
            }
            outstanding.fetch_sub(1, Ordering::Relaxed);
        });
    }
    let last = tokio::time::Instant::now();
    while outstanding.load(Ordering::Relaxed) > 0 && last.elapsed() < grace {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let unanswered = outstanding.load(Ordering::Relaxed);
    let kinds = std::mem::take(&mut *samples.lock().expect("not poisoned"))
        .into_iter()
        .map(|(s, errors)| (Latencies::new(s), errors))
        .collect();
    Arrivals { kinds, unanswered }
}
