//! `bench capacity`: the whole system under a steady mixed load.
//!
//! Every service runs (the e2e stack on the data set, as `bench paths`
//! starts it). An open-loop client offers a fixed arrival rate of creates,
//! replies (staff and user), GetTicket and ListTickets (own and a staff
//! filter), each call started when due whether or not earlier ones have
//! answered, so a slow system cannot slow the load down. The rate steps up
//! (`--rates 100,200,...`, `--step-secs` each); at each step: the achieved
//! rate, each kind's p99 (from when the call was due) and errors, and the
//! queues: the outbox's unsent rows, assignment's waiting tickets and the
//! broker queues of the assignment and notification consumers. After the
//! last step, commit → broker for each step's events (`paths::relay_lag`).
//!
//! The capacity is the highest step at which every queue stays bounded
//! (ends the step holding less than one second of arrivals), every call
//! succeeded, the achieved rate is within 5% of the offered one and every
//! p99 budget holds (`KINDS`, issue 14 and docs/performance.md). Steps go
//! on past missed budgets until the system no longer keeps up (a queue
//! grows, calls fail, or the rate is not achieved): that step says what
//! saturates first.
//!
//! `cargo run --release -p helpdesk-bench -- capacity [--tickets N] [--reuse]
//!     [--rates 100,200,300] [--step-secs 15] [--json FILE]
//!     [--env PROCESS:NAME=VALUE ...]`

use std::{sync::Arc, time::Duration};

use helpdesk_e2e::Stack;
use serde_json::json;

use crate::{
    dataset::Shape,
    gauges::{Depths, Gauges},
    load::open_loop,
    paths::{self, Fixture, Path, relay_lag::Mark},
    report::ms,
};

/// The kinds of call in the mix, their share (percent of arrivals) and
/// their p99 budget.
struct Kind {
    name: &'static str,
    budget: Duration,
}

const KINDS: [Kind; 4] = [
    Kind {
        name: "CreateTicket",
        budget: Duration::from_millis(50),
    },
    Kind {
        name: "PostMessage",
        budget: Duration::from_millis(30),
    },
    Kind {
        name: "GetTicket",
        budget: Duration::from_millis(5),
    },
    Kind {
        name: "ListTickets",
        budget: Duration::from_millis(5),
    },
];

/// Call i's path and kind: per 20 arrivals, 3 creates, 2 staff and 2 user
/// replies, 7 GetTicket, 3 own and 3 staff listings.
fn pick(i: u64) -> (Path, usize) {
    match i % 20 {
        0..=2 => (Path::CreateTicket, 0),
        3..=4 => (Path::StaffReply, 1),
        5..=6 => (Path::UserReply, 1),
        7..=13 => (Path::GetTicket, 2),
        14..=16 => (Path::ListOwn, 3),
        _ => (Path::ListStaff, 3),
    }
}

struct Args {
    shape: Shape,
    reuse: bool,
    rates: Vec<f64>,
    step: Duration,
    json: Option<std::path::PathBuf>,
    env: Vec<paths::Env>,
}

fn parse() -> anyhow::Result<Args> {
    let mut args = Args {
        shape: Shape {
            tickets: 1_000_000,
            messages: 5_000_000,
            users: 100_000,
            staff: 200,
        },
        reuse: false,
        rates: (1..=10).map(|k| f64::from(k) * 100.0).collect(),
        step: Duration::from_secs(15),
        json: None,
        env: Vec::new(),
    };
    let mut it = std::env::args().skip(2);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--tickets" => args.shape.tickets = value()?.replace('_', "").parse()?,
            "--reuse" => args.reuse = true,
            "--rates" => {
                args.rates = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--step-secs" => args.step = Duration::from_secs_f64(value()?.parse()?),
            "--json" => args.json = Some(value()?.into()),
            "--env" => args.env.push(paths::parse_env(&value()?)?),
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    args.shape.messages = args.shape.tickets * 5;
    args.shape.users = (args.shape.tickets / 10).max(100);
    Ok(args)
}

pub async fn run() -> anyhow::Result<()> {
    let args = parse()?;
    let url = paths::data_set(args.shape, args.reuse).await?;
    let stack = Stack::start_with(paths::stack_options(&url, &args.env)?).await;
    let f = Arc::new(Fixture::prepare(&stack.ticket.addr(), &url, 4, 4).await?);
    let gauges = Arc::new(Gauges::open(&stack).await?);
    println!(
        "bench capacity: open-loop mix per 20 calls: 3 CreateTicket, 4 PostMessage (2 staff, 2 user), \
         7 GetTicket, 6 ListTickets (3 own, 3 staff filter); {:.0} s per step; load average {}",
        args.step.as_secs_f64(),
        paths::load_average()
    );
    println!(
        "\n{:>7} {:>9} | {:>16} {:>16} {:>16} {:>16} | {:>8} {:>8} {:>8} {:>8} | verdict",
        "offered",
        "achieved",
        "create p99/err",
        "message p99/err",
        "get p99/err",
        "list p99/err",
        "outbox",
        "waiting",
        "q assign",
        "q notif"
    );
    let mut steps = Vec::new();
    // The highest step within every budget; the highest the system kept up
    // with (queues bounded, no errors, the rate achieved), budgets aside.
    let (mut capacity, mut first_failure) = (None, None);
    let (mut sustained, mut first_overload) = (None, None);
    // Where each step's events start in the outbox: commit → broker per step.
    let mut marks = Vec::new();
    for &rate in &args.rates {
        marks.push(Mark::now(&f.direct, Some(&stack.ticket)).await?);
        // The queues, sampled every second while the step runs.
        let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let sampler = {
            let (gauges, sampling) = (gauges.clone(), sampling.clone());
            tokio::spawn(async move {
                let mut peak = Depths::default();
                while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok(d) = gauges.read().await {
                        peak = peak.max(d);
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                peak
            })
        };
        let f2 = f.clone();
        let arrivals = open_loop(
            rate,
            args.step,
            KINDS.len(),
            Duration::from_secs(5),
            move |i| {
                let (path, kind) = pick(i);
                let f = f2.clone();
                (kind, async move { path.grpc(&f, i as usize, i).await })
            },
        )
        .await;
        // The queues as the step ends (its last arrival answered or given up).
        let end = gauges.read().await?;
        sampling.store(false, std::sync::atomic::Ordering::Relaxed);
        let peak = sampler.await?.max(end);

        let answered: usize = arrivals.kinds.iter().map(|(l, e)| l.len() + e).sum();
        let achieved = arrivals.kinds.iter().map(|(l, _)| l.len()).sum::<usize>() as f64
            / args.step.as_secs_f64();
        // What the system could not keep up with, then the budgets missed.
        let (mut problems, mut over_budget) = (Vec::new(), Vec::new());
        let mut cells = Vec::new();
        for (kind, (latencies, errors)) in KINDS.iter().zip(&arrivals.kinds) {
            let p99 = latencies.percentile(99.0);
            cells.push(format!("{:>9.1}/{:<6}", ms(p99), errors));
            if *errors > 0 {
                problems.push(format!("{} {errors} errors", kind.name));
            }
            if p99 > kind.budget {
                over_budget.push(format!(
                    "{} p99 {:.1} ms > {} ms",
                    kind.name,
                    ms(p99),
                    kind.budget.as_millis()
                ));
            }
        }
        if arrivals.unanswered > 0 {
            problems.push(format!(
                "{} calls unanswered 5 s after the step",
                arrivals.unanswered
            ));
        }
        if achieved < 0.95 * rate {
            problems.push(format!("achieved {achieved:.0}/s of {rate:.0}/s offered"));
        }
        // Bounded: less than a second of arrivals left in each queue.
        for (name, depth) in end.named() {
            if depth as f64 > rate {
                problems.push(format!(
                    "{name} holds {depth} (peak in step {})",
                    peak_of(peak, name)
                ));
            }
        }
        if problems.is_empty() {
            sustained = Some(rate);
        } else if first_overload.is_none() {
            first_overload = Some((rate, problems.clone()));
        }
        let all: Vec<String> = problems.iter().chain(&over_budget).cloned().collect();
        let verdict = if all.is_empty() {
            capacity = Some(rate);
            "ok".to_owned()
        } else {
            if first_failure.is_none() {
                first_failure = Some((rate, all.clone()));
            }
            all.join("; ")
        };
        println!(
            "{rate:>7.0} {achieved:>9.0} | {} | {:>8} {:>8} {:>8} {:>8} | {verdict}",
            cells.join(" "),
            end.outbox,
            end.waiting,
            end.assignment_queue,
            end.notification_queue,
        );
        steps.push(json!({
            "offered_per_s": rate,
            "achieved_per_s": achieved,
            "answered": answered,
            "unanswered": arrivals.unanswered,
            "kinds": KINDS.iter().zip(&arrivals.kinds).map(|(k, (l, e))| json!({
                "kind": k.name,
                "ok": l.len(),
                "errors": e,
                "p50_ms": ms(l.percentile(50.0)),
                "p99_ms": ms(l.percentile(99.0)),
                "budget_ms": k.budget.as_millis(),
            })).collect::<Vec<_>>(),
            "queues_end": end.named().iter().map(|(n, d)| json!({"queue": n, "depth": d})).collect::<Vec<_>>(),
            "queues_peak": peak.named().iter().map(|(n, d)| json!({"queue": n, "depth": d})).collect::<Vec<_>>(),
            "overload": problems,
            "over_budget": over_budget,
            "load_average": paths::load_average(),
        }));
        // Once the system no longer keeps up, higher steps only pile up.
        if first_overload.is_some() {
            break;
        }
        // Let the queues drain before the next step.
        let drain = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::time::Instant::now() < drain {
            let d = gauges.read().await?;
            if d.named().iter().all(|(_, depth)| *depth as f64 <= rate) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    // Commit → broker per step, once the relay has sent everything.
    let (took, left) = gauges.drain(Duration::from_secs(120)).await?;
    anyhow::ensure!(
        left.outbox == 0,
        "the outbox still held {} events {:.0} s after the last step",
        left.outbox,
        took.as_secs_f64()
    );
    marks.push(Mark::now(&f.direct, Some(&stack.ticket)).await?);
    println!("\ncommit → broker (transaction start → confirmed), per step:");
    for (k, step) in steps.iter_mut().enumerate() {
        let lag = marks[k].lag_until(&marks[k + 1], &f.direct).await?;
        println!("{:>7.0}/s  {}", args.rates[k], lag.summary());
        step["commit_to_broker"] = lag.json();
    }
    println!("\nload average at the end: {}", paths::load_average());
    match capacity {
        Some(rate) => println!("capacity: {rate:.0} calls/s of this mix"),
        None => println!("capacity: below the lowest step"),
    }
    if let Some((rate, problems)) = &first_failure {
        println!(
            "first over a budget at {rate:.0}/s: {}",
            problems.join("; ")
        );
    }
    match sustained {
        Some(rate) => println!("kept up (queues bounded, no errors) up to {rate:.0} calls/s"),
        None => println!("kept up with no step"),
    }
    if let Some((rate, problems)) = &first_overload {
        println!("saturates first at {rate:.0}/s: {}", problems.join("; "));
    }
    if let Some(file) = &args.json {
        let doc = json!({
            "tickets": args.shape.tickets,
            "step_s": args.step.as_secs_f64(),
            "capacity_per_s": capacity,
            "first_over_budget": first_failure.map(|(r, p)| json!({"offered_per_s": r, "problems": p})),
            "sustained_per_s": sustained,
            "first_overload": first_overload.map(|(r, p)| json!({"offered_per_s": r, "problems": p})),
            "steps": steps,
        });
        std::fs::write(file, serde_json::to_string_pretty(&doc)?)?;
    }
    drop(stack);
    Ok(())
}

fn peak_of(peak: Depths, name: &str) -> i64 {
    peak.named()
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(0, |(_, d)| *d)
}
