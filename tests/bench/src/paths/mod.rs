//! `bench paths`: every hot path of the ticket service through the real
//! binaries, each beside its limits measured in the same run.
//!
//! Starts the stand-in and the ticket, assignment, notification and
//! scheduler binaries from the bench's own target directory (the e2e
//! suite's `Stack`: fresh databases, a private exchange and queues), the
//! ticket service on a loaded data set (`dataset`); or `--target` a running
//! ticket service and `--target-db` its database. Then, for each path and
//! each concurrency, closed-loop callers over several HTTP/2 connections
//! run for a bounded time after a warm-up, and so do the limits:
//! (a) the database: the same durable work or query issued straight from
//! a pool at the same concurrency (`calls`), (b) gRPC: an empty unary call
//! through the same server stack, (c) the broker: persistent publishes with
//! confirms (`limits`).
//!
//! ```text
//! cargo run --release -p helpdesk-bench -- paths [--tickets N] [--reuse]
//!     [--secs S] [--warmup S] [--concurrency 1,8,32] [--connections N]
//!     [--only create,get,...] [--json FILE] [--smoke]
//!     [--target http://HOST:PORT --target-db postgres://...]
//!     [--env PROCESS:NAME=VALUE ...] [--tally] [--pause PROCESS,...]
//! ```
//! Where a write's cost goes: `--tally` prints under each write row the
//! commits and rows it left in each service's database per call (`tally`);
//! `--pause assignment,notification` stops those processes (SIGSTOP) while
//! each write row's calls run and resumes them before the drain, so the row
//! shows what the ticket service does without them on the same cores.
//! `--smoke` (CI): a tiny data set in a database of its own, c = 1 and 2,
//! 0.1 s warm-up and 0.2 s per row (about a second per path); fails unless every call succeeded. It asserts no
//! timing.

mod calls;
mod fixture;
mod limits;
pub mod relay_lag;
mod tally;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use helpdesk_e2e::{Options, Stack};
use serde_json::json;

use crate::{
    dataset::{self, Shape},
    gauges::Gauges,
    load::{Run, timed},
    report::ms,
};
pub use calls::Path;
pub use fixture::Fixture;

/// The processes `--pause` may stop: the ones a call to the ticket
/// service does not wait for.
const PAUSABLE: [&str; 3] = ["assignment", "notification", "scheduler"];

/// The direct pool: one connection per caller at the highest concurrency.
const DIRECT_POOL: u32 = 32;

struct Args {
    shape: Shape,
    reuse: bool,
    smoke: bool,
    warmup: Duration,
    measure: Duration,
    concurrency: Vec<usize>,
    connections: usize,
    only: Option<Vec<String>>,
    json: Option<std::path::PathBuf>,
    target: Option<(String, String)>,
    /// More environment for the stack's processes (`--env`).
    env: Vec<Env>,
    /// Each write row's work per call in every service's database.
    tally: bool,
    /// Processes stopped while each write row's calls run (`--pause`).
    pause: Vec<String>,
}

impl Args {
    fn parse() -> anyhow::Result<Self> {
        let mut args = Args {
            shape: Shape {
                tickets: 1_000_000,
                messages: 5_000_000,
                users: 100_000,
                staff: 200,
            },
            reuse: false,
            smoke: false,
            warmup: Duration::from_secs(2),
            measure: Duration::from_secs(8),
            concurrency: vec![1, 8, 32],
            connections: 4,
            only: None,
            json: None,
            target: None,
            env: Vec::new(),
            tally: false,
            pause: Vec::new(),
        };
        let (mut addr, mut db, mut messages) = (None, None, None);
        let mut it = std::env::args().skip(2);
        while let Some(flag) = it.next() {
            let mut value = || {
                it.next()
                    .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))
            };
            let secs = |v: String| v.parse::<f64>().map(Duration::from_secs_f64);
            match flag.as_str() {
                "--tickets" => args.shape.tickets = value()?.replace('_', "").parse()?,
                "--messages" => messages = Some(value()?.replace('_', "").parse()?),
                "--reuse" => args.reuse = true,
                "--smoke" => args.smoke = true,
                "--secs" => args.measure = secs(value()?)?,
                "--warmup" => args.warmup = secs(value()?)?,
                "--concurrency" => {
                    args.concurrency = value()?
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<_, _>>()?
                }
                "--connections" => args.connections = value()?.parse()?,
                "--only" => args.only = Some(value()?.split(',').map(str::to_owned).collect()),
                "--json" => args.json = Some(value()?.into()),
                "--target" => addr = Some(value()?),
                "--target-db" => db = Some(value()?),
                "--env" => args.env.push(parse_env(&value()?)?),
                "--tally" => args.tally = true,
                "--pause" => {
                    args.pause = value()?.split(',').map(str::to_owned).collect();
                    if let Some(p) = args.pause.iter().find(|p| !PAUSABLE.contains(&p.as_str())) {
                        anyhow::bail!(
                            "--pause {p}: only {} can be paused (the ticket service's calls need it and the stand-in)",
                            PAUSABLE.join(", ")
                        );
                    }
                }
                other => {
                    anyhow::bail!("unknown flag {other} (see `bench paths` in docs/performance.md)")
                }
            }
        }
        if args.smoke {
            args.shape.tickets = 2_000;
            args.concurrency = vec![1, 2];
            args.warmup = Duration::from_millis(100);
            args.measure = Duration::from_millis(200);
        }
        args.shape.messages = messages.unwrap_or(args.shape.tickets * 5);
        args.shape.users = (args.shape.tickets / 10).max(100);
        args.target = match (addr, db) {
            (Some(addr), Some(db)) => Some((addr, db)),
            (None, None) => None,
            _ => anyhow::bail!("--target needs --target-db (the ticket service's database)"),
        };
        anyhow::ensure!(!args.concurrency.is_empty() && args.connections > 0);
        anyhow::ensure!(
            args.target.is_none() || (!args.tally && args.pause.is_empty()),
            "--tally and --pause need the bench's own stack, not --target"
        );
        Ok(args)
    }

    fn paths(&self) -> Vec<Path> {
        Path::ALL
            .into_iter()
            .filter(|p| {
                self.only.as_ref().is_none_or(|only| {
                    let name = format!("{p:?}").to_lowercase();
                    only.iter().any(|o| name.contains(&o.to_lowercase()))
                })
            })
            .collect()
    }
}

/// One row of the report.
struct Row {
    path: String,
    c: usize,
    run: Run,
    /// The database doing the same work, at the same concurrency.
    db: Option<(usize, Run)>,
    grpc: f64,
    broker: Option<f64>,
    /// Commit → broker of the events the row wrote (write rows).
    relay: Option<relay_lag::Lag>,
    /// The work it left in each service's database, per call (`--tally`).
    work: Option<Vec<tally::PerCall>>,
}

impl Row {
    fn print(&self) {
        let l = &self.run.latencies;
        let db = self.db.as_ref().map(|(_, r)| r.rate());
        println!(
            "{:<28} {:>3} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>6} | {:>9} {:>6} | {:>9.0} {:>6.0}% | {:>9}",
            self.path,
            self.c,
            self.run.rate(),
            ms(l.percentile(50.0)),
            ms(l.percentile(99.0)),
            ms(l.percentile(99.9)),
            self.run.errors,
            db.map_or("-".into(), |d| format!("{d:.0}")),
            db.map_or("-".into(), |d| format!(
                "{:.0}%",
                100.0 * self.run.rate() / d
            )),
            self.grpc,
            100.0 * self.run.rate() / self.grpc,
            self.broker.map_or("-".into(), |b| format!("{b:.0}")),
        );
        if let Some(lag) = &self.relay {
            lag.print();
        }
        if let Some(work) = &self.work {
            tally::print(work);
        }
    }

    fn json(&self) -> serde_json::Value {
        let l = &self.run.latencies;
        let db = self.db.as_ref().map(|(c, r)| (*c, r.rate(), r.errors));
        json!({
            "path": self.path,
            "c": self.c,
            "ops_per_s": self.run.rate(),
            "p50_ms": ms(l.percentile(50.0)),
            "p99_ms": ms(l.percentile(99.0)),
            "p999_ms": ms(l.percentile(99.9)),
            "ops": self.run.ops,
            "errors": self.run.errors,
            "db_limit_per_s": db.map(|d| d.1),
            "db_limit_c": db.map(|d| d.0),
            "db_ratio": db.map(|d| self.run.rate() / d.1),
            "grpc_limit_per_s": self.grpc,
            "grpc_ratio": self.run.rate() / self.grpc,
            "broker_limit_per_s": self.broker,
            "commit_to_broker": self.relay.as_ref().map(relay_lag::Lag::json),
            "work_per_call": self.work.as_deref().map(tally::json),
        })
    }

    /// Every call of the row and of its limit succeeded.
    fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (what, run) in [
            ("service", Some(&self.run)),
            ("database", self.db.as_ref().map(|d| &d.1)),
        ] {
            let Some(run) = run else { continue };
            if run.errors > 0 || run.ops == 0 {
                out.push(format!(
                    "{} c={} {what}: {} ok, {} failed; first: {}",
                    self.path,
                    self.c,
                    run.ops,
                    run.errors,
                    run.first_error.as_deref().unwrap_or("-")
                ));
            }
        }
        out
    }
}

fn header() {
    println!(
        "\n{:<28} {:>3} {:>9} {:>8} {:>8} {:>8} {:>6} | {:>9} {:>6} | {:>9} {:>7} | {:>9}",
        "path",
        "c",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "p99.9",
        "errors",
        "db/s",
        "÷db",
        "grpc/s",
        "÷grpc",
        "broker/s"
    );
}

/// The machine's load average (1, 5, 15 minutes), for the report.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

pub async fn run() -> anyhow::Result<()> {
    let args = Args::parse()?;
    // The data set, and the stack on it (unless targeting a running one).
    let mut smoke_db = None;
    let (stack, addr, url) = match &args.target {
        Some((addr, db)) => (None, addr.clone(), db.clone()),
        None => {
            let url = if args.smoke {
                let name = format!("helpdesk_bench_smoke_{}", uuid::Uuid::new_v4().simple());
                smoke_db = Some(name.clone());
                dataset::load_into(args.shape, &name).await?
            } else {
                data_set(args.shape, args.reuse).await?
            };
            let stack = Stack::start_with(stack_options(&url, &args.env)?).await;
            let addr = stack.ticket.addr();
            (Some(stack), addr, url)
        }
    };
    let gauges = match &stack {
        Some(stack) => Some(Gauges::open(stack).await?),
        None => None,
    };
    let result = measure(&args, &addr, &url, gauges.as_ref(), stack.as_ref()).await;
    drop(stack);
    if let Some(name) = smoke_db {
        let mut conn =
            <sqlx::PgConnection as sqlx::Connection>::connect(&helpdesk_testkit::admin_url())
                .await?;
        sqlx::Executor::execute(
            &mut conn,
            sqlx::AssertSqlSafe(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#)),
        )
        .await?;
    }
    result
}

/// The data set of `shape`, loaded afresh, or with `reuse` a complete
/// one already loaded; its URL.
pub async fn data_set(shape: Shape, reuse: bool) -> anyhow::Result<String> {
    if !reuse {
        return dataset::load_into(shape, &shape.database()).await;
    }
    let url = dataset::ensure(shape).await?;
    // Events an earlier run's relay left unsent were for that run's
    // exchange, now gone; published now, they would load this run's
    // consumers with a backlog it did not cause.
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await?;
    sqlx::query("UPDATE outbox SET sent_at = now() WHERE sent_at IS NULL")
        .execute(&mut conn)
        .await?;
    // Tickets earlier runs created are open, and assigned (if at all) in an
    // assignment database that is gone: this run's assignment service would
    // adopt them all at its first reconciliation, a flood this run did not
    // cause. Closed, they stay out of its way (the data set's own are kept).
    sqlx::query(
        "UPDATE tickets SET status = 'closed', resolved_at = coalesce(resolved_at, now()),
                closed_at = now(), updated_at = now(), version = version + 1
         WHERE number > $1 AND status <> 'closed'",
    )
    .bind(i64::try_from(shape.tickets)?)
    .execute(&mut conn)
    .await?;
    // Earlier runs' writes left dead rows behind (a million in the outbox
    // after a few runs); autovacuum would have removed them on a live desk,
    // but test machines run with it off, and a run on a bloated database
    // measured a capacity of 300 calls/s where a vacuumed one measures 500.
    let started = Instant::now();
    sqlx::query("VACUUM (ANALYZE) tickets, ticket_messages, outbox, idempotency_keys")
        .execute(&mut conn)
        .await?;
    println!(
        "(vacuumed what earlier runs changed: {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(url)
}

/// The stack every run starts: the e2e suite's, on the data set, logging
/// warnings only (a log line per call would be measured too); the
/// stand-in knows the data set's 200 staff besides the demo accounts, and
/// each agent takes up to 1,000 tickets (the most the service allows), so
/// assignment keeps up instead of queueing tickets for want of room.
pub fn stack_options(ticket_database_url: &str, more: &[Env]) -> anyhow::Result<Options> {
    let mut env = vec![
        (
            "platform-standin",
            "STANDIN_DATA".into(),
            standin_data()?.display().to_string(),
        ),
        ("assignment", "DEFAULT_CAPACITY".into(), "1000".into()),
    ];
    env.extend_from_slice(more);
    Ok(Options {
        ticket_database_url: Some(ticket_database_url.to_owned()),
        log_filter: Some("warn".into()),
        env,
        ..Default::default()
    })
}

/// One `--env PROCESS:NAME=VALUE`: more environment for one of the stack's
/// processes, e.g. `notification:NEW_TICKET_AUDIENCE=assignee_only`.
pub type Env = (&'static str, String, String);

pub fn parse_env(raw: &str) -> anyhow::Result<Env> {
    let processes = helpdesk_e2e::PROCESSES;
    let usage = || {
        anyhow::anyhow!("--env wants PROCESS:NAME=VALUE, PROCESS one of {processes:?}; got {raw:?}")
    };
    let (process, setting) = raw.split_once(':').ok_or_else(usage)?;
    let (name, value) = setting.split_once('=').ok_or_else(usage)?;
    let process = processes
        .into_iter()
        .find(|p| *p == process)
        .ok_or_else(usage)?;
    Ok((process, name.to_owned(), value.to_owned()))
}

/// The stand-in's demo data with the data set's 200 staff added, as a
/// file the stand-in reads.
fn standin_data() -> anyhow::Result<std::path::PathBuf> {
    let mut data: serde_json::Value = serde_json::from_str(include_str!(
        "../../../../services/platform-standin/data/demo.json"
    ))?;
    let users = data["users"]
        .as_array_mut()
        .ok_or_else(|| anyhow::anyhow!("demo.json has no users"))?;
    for n in 0..200 {
        users.push(json!({
            "id": dataset::staff_id(n).to_string(),
            "display_name": format!("Agent {n}"),
            "email": format!("agent{n}@support.example.com"),
            "locale": "en-GB",
            "push_tokens": [],
            "active": true,
            "is_staff": true,
            "create_time": "2024-01-01T09:00:00Z",
        }));
    }
    // One file for every run (the same content each time), replaced whole
    // so a run starting beside another never reads half of it.
    let path = std::env::temp_dir().join("helpdesk-bench-standin.json");
    let partial = path.with_extension(format!("{}.part", uuid::Uuid::new_v4().simple()));
    std::fs::write(&partial, serde_json::to_string(&data)?)?;
    std::fs::rename(&partial, &path)?;
    Ok(path)
}

async fn measure(
    args: &Args,
    addr: &str,
    url: &str,
    gauges: Option<&Gauges>,
    stack: Option<&Stack>,
) -> anyhow::Result<()> {
    let ticket = stack.map(|s| &s.ticket);
    let databases = stack.map(|s| s.service_databases());
    let paused: Vec<&helpdesk_e2e::Process> = stack
        .map(|s| args.pause.iter().filter_map(|p| s.process(p)).collect())
        .unwrap_or_default();
    let f = Arc::new(Fixture::prepare(addr, url, args.connections, DIRECT_POOL).await?);
    let broker = Arc::new(limits::Broker::open().await?);
    println!(
        "bench paths: {} tickets in the database; {} HTTP/2 connections; {:.1} s warm-up, {:.1} s per row; load average {}",
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM tickets")
            .fetch_one(&f.direct)
            .await?,
        args.connections,
        args.warmup.as_secs_f64(),
        args.measure.as_secs_f64(),
        load_average()
    );
    let (warmup, secs) = (args.warmup, args.measure);
    let load_start = load_average();

    // The limits that do not depend on the path, at each concurrency.
    let (mut grpc, mut publish, mut limit_rows) = (Vec::new(), Vec::new(), Vec::new());
    let mut failures = Vec::new();
    for &c in &args.concurrency {
        let f2 = f.clone();
        let run = timed(c, warmup, secs, move |caller, _| {
            let f = f2.clone();
            async move { limits::empty_call(&f, caller).await }
        })
        .await;
        println!(
            "limit gRPC empty call (Health/Check)  c={c:<3} {:>9.0}/s  p50 {:.2} ms  p99 {:.2} ms  errors {}",
            run.rate(),
            ms(run.latencies.percentile(50.0)),
            ms(run.latencies.percentile(99.0)),
            run.errors
        );
        check("gRPC empty call", c, &run, &mut failures);
        grpc.push(run.rate());
        let b = broker.clone();
        let run = timed(c, warmup, secs, move |_, _| {
            let b = b.clone();
            async move { b.publish().await }
        })
        .await;
        println!(
            "limit broker publish + confirm        c={c:<3} {:>9.0}/s  p50 {:.2} ms  p99 {:.2} ms  errors {}",
            run.rate(),
            ms(run.latencies.percentile(50.0)),
            ms(run.latencies.percentile(99.0)),
            run.errors
        );
        check("broker publish", c, &run, &mut failures);
        publish.push(run.rate());
        limit_rows.push(json!({
            "c": c,
            "grpc_empty_call_per_s": grpc[grpc.len() - 1],
            "broker_publish_confirm_per_s": run.rate(),
            "broker_p50_ms": ms(run.latencies.percentile(50.0)),
            "broker_p99_ms": ms(run.latencies.percentile(99.0)),
        }));
    }

    header();
    let mut rows = Vec::new();
    // Earlier runs' writes count too (`--reuse`).
    let mut dirty = true;
    for path in args.paths() {
        for (k, &c) in args.concurrency.iter().enumerate() {
            if dirty && !path.writes() {
                settle_visibility(&f.direct).await?;
                dirty = false;
            }
            dirty |= path.writes();
            let db_c = c.min(DIRECT_POOL as usize / path.connections_per_call());
            let f2 = f.clone();
            let db = timed(db_c, warmup, secs, move |_, i| {
                let f = f2.clone();
                async move { path.direct(&f, i).await }
            })
            .await;
            let tallied = databases.as_ref().filter(|_| args.tally && path.writes());
            let before = match tallied {
                Some(dbs) => Some(tally::Snapshot::take(&f.direct, dbs).await?),
                None => None,
            };
            let mark = match path.writes() {
                true => Some(relay_lag::Mark::now(&f.direct, ticket).await?),
                false => None,
            };
            let pausing = if path.writes() { &paused[..] } else { &[] };
            pausing.iter().for_each(|p| p.pause());
            let f2 = f.clone();
            let run = timed(c, warmup, secs, move |caller, i| {
                let f = f2.clone();
                async move { path.grpc(&f, caller, i).await }
            })
            .await;
            pausing.iter().for_each(|p| p.resume());
            // A write row leaves work downstream (relay, assignment,
            // notifications); the next row must not share the cores with it.
            if path.writes()
                && let Some(g) = gauges
            {
                drain(g).await?;
            }
            let relay = match mark {
                Some(mark) => Some(mark.lag(&f.direct, ticket).await?),
                None => None,
            };
            let work = match (before, tallied) {
                (Some(before), Some(dbs)) => {
                    let after = tally::Snapshot::take(&f.direct, dbs).await?;
                    Some(before.per_call(&after, run.issued))
                }
                _ => None,
            };
            let row = Row {
                path: path.label(&f),
                c,
                run,
                db: Some((db_c, db)),
                grpc: grpc[k],
                broker: path.writes().then_some(publish[k]),
                relay,
                work,
            };
            row.print();
            failures.extend(row.failures());
            rows.push(row);
        }
    }
    println!("load average at the end: {}", load_average());
    if let Some(file) = &args.json {
        let doc = json!({
            "tickets": args.shape.tickets,
            "connections": args.connections,
            "warmup_s": warmup.as_secs_f64(),
            "measure_s": secs.as_secs_f64(),
            "load_average_start": load_start,
            "load_average_end": load_average(),
            "limits": limit_rows,
            "rows": rows.iter().map(Row::json).collect::<Vec<_>>(),
        });
        std::fs::write(file, serde_json::to_string_pretty(&doc)?)?;
        println!("rows written to {}", file.display());
    }
    if let Ok(b) = Arc::try_unwrap(broker) {
        b.remove();
    }
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("FAILED {f}");
        }
        anyhow::bail!("{} rows had failed calls", failures.len());
    }
    if args.smoke {
        println!("smoke: every call succeeded");
    }
    Ok(())
}

/// Waits (at most two minutes) until the stack has nothing left to do.
async fn drain(gauges: &Gauges) -> anyhow::Result<()> {
    let (took, left) = gauges.drain(Duration::from_secs(120)).await?;
    if left.drained() {
        println!("(downstream drained in {:.1} s)", took.as_secs_f64());
    } else {
        println!(
            "(downstream not drained after {:.0} s: {left:?})",
            took.as_secs_f64()
        );
    }
    Ok(())
}

/// Vacuums the tables the reads use before the first read row and after
/// write rows, as autovacuum would on a live desk: index-only scans (the
/// statistics, listings) skip the heap only for pages marked all-visible,
/// and writes (earlier runs' included, with `--reuse`) clear those marks.
/// Machines that run PostgreSQL with `autovacuum = off`, as this project's
/// test machines do, would otherwise measure every read with heap fetches.
async fn settle_visibility(db: &sqlx::PgPool) -> anyhow::Result<()> {
    let started = Instant::now();
    sqlx::query("VACUUM (ANALYZE) tickets, ticket_messages")
        .execute(db)
        .await?;
    println!(
        "(vacuumed tickets and messages before the reads: {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn check(what: &str, c: usize, run: &Run, failures: &mut Vec<String>) {
    if run.errors > 0 || run.ops == 0 {
        failures.push(format!(
            "{what} c={c}: {} ok, {} failed; first: {}",
            run.ops,
            run.errors,
            run.first_error.as_deref().unwrap_or("-")
        ));
    }
}
