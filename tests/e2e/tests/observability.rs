//! Traces, metrics and logs of the real binaries (issue 12), on one stack:
//!
//! - a real OTLP receiver ([`helpdesk_e2e::otlp::Collector`]) gets the spans
//!   every process exports, and one CreateTicket is one trace from the
//!   ticket service's handler, through its validation calls, the relay's
//!   publish, the assignment decision and its BatchAssignTickets call, to
//!   the notification service's email delivery, each span the child of the
//!   one before; a scheduler run and its TicketJobsService call are one too;
//! - each service's metrics endpoint serves the named series, and they move
//!   when tickets are created, when the ticket service loses the broker (a
//!   `TcpProxy` cut) and when a poison message is dead-lettered;
//! - the JSON log lines carry the trace's ids, and none of them holds a
//!   token, a message body, an email address or the SMTP password the
//!   test used.

use std::time::{Duration, Instant};

use helpdesk_e2e::{
    Options, Process, Stack,
    otlp::{Collector, Received},
};
use helpdesk_kit::auth::Role;
use helpdesk_proto::support::v1::{
    self as pb, JobRunState, scheduler_service_client::SchedulerServiceClient,
    ticket_service_client::TicketServiceClient,
};
use helpdesk_testkit::{Bearer, TcpProxy, amqp_url, minter};
use tonic::{service::interceptor::InterceptedService, transport::Channel};

const ALICE: &str = "0a000000-0000-4000-8000-000000000001";
const ALICE_RIDE: &str = "0d000000-0000-4000-8000-000000000001";
const ADA: &str = "0c000000-0000-4000-8000-000000000001";
const SMTP_PASSWORD: &str = "smtp-Pa55word-e2e-7f3a";
const DESCRIPTION: &str = "My phone is still in the back seat, description-9c1e.";
const REPLY: &str = "We found it; reply-body-52d0 with the driver.";

/// The token presented, kept so the logs can be searched for it.
fn token(sub: &str, role: Role) -> (String, Bearer) {
    let value = minter().bearer(sub, role);
    let text = value.to_str().expect("ASCII").to_owned();
    let jwt = text.trim_start_matches("Bearer ").to_owned();
    (jwt, Bearer::raw(Some(&text)))
}

type Tickets = TicketServiceClient<InterceptedService<Channel, Bearer>>;

async fn channel(addr: String) -> Channel {
    Channel::from_shared(addr).unwrap().connect().await.unwrap()
}

/// Waits (bounded) until `find` finds something in what `get` returns.
async fn eventually<T, U>(
    what: &str,
    mut get: impl AsyncFnMut() -> T,
    find: impl Fn(&T) -> Option<U>,
) -> U {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = get().await;
        if let Some(found) = find(&got) {
            return found;
        }
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The sum of `name`'s samples whose labels include every `k="v"` of `labels`.
fn sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in exposition.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (series_name, series_labels) = match series.split_once('{') {
            Some((n, l)) => (n, l),
            None => (series, ""),
        };
        if series_name != name
            || !labels
                .iter()
                .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")))
        {
            continue;
        }
        if let Ok(value) = value.parse::<f64>() {
            *found.get_or_insert(0.0) += value;
        }
    }
    found
}

async fn metric(process: &Process, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(&process.metrics().await, name, labels).unwrap_or(0.0)
}

/// Waits until `name{labels}` on `process` satisfies `ok`; returns it.
async fn metric_until(
    process: &Process,
    name: &str,
    labels: &[(&str, &str)],
    ok: impl Fn(f64) -> bool,
) -> f64 {
    eventually(
        &format!("{name} {labels:?} as expected"),
        async || metric(process, name, labels).await,
        |v| ok(*v).then_some(*v),
    )
    .await
}

/// The span of `service` named `name` in `trace` whose parent is `parent`.
fn child<'a>(
    spans: &'a [Received],
    service: &str,
    name: &str,
    parent: &Received,
) -> Option<&'a Received> {
    spans.iter().find(|s| {
        s.service() == service && s.span.name == name && s.parent_id() == parent.span_id()
    })
}

#[tokio::test]
async fn one_create_ticket_is_one_trace_and_metrics_and_logs_tell_the_same_story() {
    let collector = Collector::start().await;
    // The ticket service reaches the broker through a proxy the test cuts.
    let url = amqp_url();
    let (head, tail) = url.split_once('@').expect("user@host in AMQP_URL");
    let (broker, vhost) = tail.split_once('/').unwrap_or((tail, ""));
    let broker_addr = tokio::net::lookup_host(broker)
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = TcpProxy::start(broker_addr).await.unwrap();
    let stack = Stack::start_with(Options {
        otlp_endpoint: Some(collector.endpoint.clone()),
        smtp_auth: Some(("helpdesk-mailer".into(), SMTP_PASSWORD.into())),
        ticket_amqp_url: Some(format!("{head}@{}/{vhost}", proxy.addr)),
        ..Default::default()
    })
    .await;
    let (alice_jwt, alice_bearer) = token(ALICE, Role::User);
    let mut alice: Tickets =
        TicketServiceClient::with_interceptor(channel(stack.ticket.addr()).await, alice_bearer);

    // Every service serves its series (the scheduler's per-job ones appear
    // with its first run, below).
    for process in [&stack.scheduler] {
        metric_until(process, "db_pool_max_connections", &[], |v| v > 0.0).await;
    }
    for (process, series) in [
        (&stack.ticket, "outbox_unsent_events"),
        (&stack.assignment, "assignment_waiting_tickets"),
        (&stack.notification, "notification_deliveries_queued"),
    ] {
        metric_until(process, "db_pool_max_connections", &[], |v| v > 0.0).await;
        let exposition = process.metrics().await;
        assert!(
            exposition.contains(&format!("# TYPE {series} ")),
            "{series} missing"
        );
    }
    let created_ok = [
        ("grpc_service", "support.v1.TicketService"),
        ("grpc_method", "CreateTicket"),
        ("grpc_code", "OK"),
    ];
    let assignment_queue = [("queue", stack.assignment_queue.as_str())];
    let notification_queue = [("queue", stack.notification_queue.as_str())];
    let emails_sent = [("channel", "email"), ("outcome", "sent")];
    let before = (
        metric(&stack.ticket, "grpc_server_handled_total", &created_ok).await,
        metric(&stack.ticket, "outbox_published_total", &[]).await,
        metric(
            &stack.assignment,
            "events_consumed_total",
            &assignment_queue,
        )
        .await,
        metric(&stack.assignment, "assignment_drained_tickets_total", &[]).await,
        metric(
            &stack.notification,
            "events_consumed_total",
            &notification_queue,
        )
        .await,
        metric(
            &stack.notification,
            "notification_deliveries_total",
            &emails_sent,
        )
        .await,
    );

    // One CreateTicket ...
    let created = alice
        .create_ticket(pb::CreateTicketRequest {
            ride_id: ALICE_RIDE.into(),
            category_id: "ride_issue".into(),
            subject: "Phone left in the car".into(),
            description: DESCRIPTION.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let assigned = eventually(
        "the ticket is assigned",
        async || {
            alice
                .get_ticket(pb::GetTicketRequest {
                    id: created.id.clone(),
                })
                .await
                .unwrap()
                .into_inner()
        },
        |t| (!t.assignee_id.is_empty()).then(|| t.clone()),
    )
    .await;
    eventually(
        "Alice's receipt is mailed",
        async || stack.mail.messages(),
        |mail| {
            mail.iter()
                .any(|m| m.header("to").contains("alice@example.com"))
                .then_some(())
        },
    )
    .await;

    // ... is one trace: every hop the child of the one before.
    let hops = eventually(
        "the whole CreateTicket trace reached the collector",
        async || collector.spans(),
        |spans| {
            let create = spans.iter().find(|s| {
                s.service() == "ticket"
                    && s.span.name == "support.v1.TicketService/CreateTicket"
                    && s.span.kind == 2 // SERVER
            })?;
            let trace = create.trace_id();
            let spans: Vec<Received> = spans
                .iter()
                .filter(|s| s.trace_id() == trace)
                .cloned()
                .collect();
            let validation = spans
                .iter()
                .find(|s| s.service() == "platform-standin" && s.parent_id() == create.span_id())?
                .clone();
            let publish = spans
                .iter()
                .find(|s| s.service() == "ticket" && s.span.name == "ticket.created publish")?
                .clone();
            let consumed = child(
                &spans,
                "assignment",
                &format!("{} process", stack.assignment_queue),
                &publish,
            )?;
            let decided = child(&spans, "assignment", "assignment.decide", consumed)?;
            let sent = child(&spans, "assignment", "assignment.send_moves", decided)?;
            let batch = child(
                &spans,
                "ticket",
                "support.v1.TicketService/BatchAssignTickets",
                sent,
            )?;
            let heard = child(
                &spans,
                "notification",
                &format!("{} process", stack.notification_queue),
                &publish,
            )?;
            let mailed = child(&spans, "notification", "deliver email", heard)?;
            Some((
                create.clone(),
                validation,
                publish,
                consumed.clone(),
                decided.clone(),
                batch.clone(),
                mailed.clone(),
                spans,
            ))
        },
    )
    .await;
    let (create, validation, publish, consumed, decided, batch, mailed, trace) = hops;
    // The publish span continues the handler (its parent is in the handler).
    let mut up = publish.clone();
    while up.span_id() != create.span_id() {
        up = trace
            .iter()
            .find(|s| s.span_id() == up.parent_id())
            .unwrap_or_else(|| panic!("publish does not lead to CreateTicket: {up:?}"))
            .clone();
    }
    assert!(
        validation.span.name.starts_with("platform."),
        "{validation:?}"
    );
    assert_eq!(
        consumed.attribute("human_id").as_deref(),
        Some(created.human_id.as_str())
    );
    assert_eq!(
        decided.attribute("human_id").as_deref(),
        Some(created.human_id.as_str())
    );
    assert_eq!(
        mailed.attribute("human_id").as_deref(),
        Some(created.human_id.as_str())
    );
    assert_eq!(mailed.attribute("channel").as_deref(), Some("email"));
    assert_eq!(
        batch.attribute("rpc.method").as_deref(),
        Some("BatchAssignTickets")
    );
    for service in ["ticket", "assignment", "notification", "platform-standin"] {
        let span = trace
            .iter()
            .find(|s| s.service() == service)
            .unwrap_or_else(|| panic!("no span of {service}"));
        assert!(span.resource.contains_key("service.version"), "{span:?}");
        assert!(
            span.resource.contains_key("service.instance.id"),
            "{span:?}"
        );
    }

    // The counters moved with the ticket.
    metric_until(
        &stack.ticket,
        "grpc_server_handled_total",
        &created_ok,
        |v| v >= before.0 + 1.0,
    )
    .await;
    metric_until(&stack.ticket, "outbox_published_total", &[], |v| {
        v >= before.1 + 2.0 // created, assigned
    })
    .await;
    metric_until(
        &stack.assignment,
        "events_consumed_total",
        &assignment_queue,
        |v| v >= before.2 + 1.0,
    )
    .await;
    metric_until(
        &stack.assignment,
        "assignment_drained_tickets_total",
        &[],
        |v| v >= before.3 + 1.0,
    )
    .await;
    metric_until(
        &stack.notification,
        "events_consumed_total",
        &notification_queue,
        |v| v >= before.4 + 1.0,
    )
    .await;
    metric_until(
        &stack.notification,
        "notification_deliveries_total",
        &emails_sent,
        |v| v >= before.5 + 1.0,
    )
    .await;

    // A staff reply (a body the logs must not hold).
    let (staff_jwt, staff_bearer) = token(&assigned.assignee_id, Role::Staff);
    let mut staff: Tickets =
        TicketServiceClient::with_interceptor(channel(stack.ticket.addr()).await, staff_bearer);
    staff
        .post_message(pb::PostMessageRequest {
            ticket_id: created.id.clone(),
            body: REPLY.into(),
            ..Default::default()
        })
        .await
        .unwrap();

    // A scheduler run is a trace of its own holding its TicketJobsService calls.
    let (admin_jwt, admin_bearer) = token(ADA, Role::Admin);
    let mut scheduler = SchedulerServiceClient::with_interceptor(
        channel(stack.scheduler.addr()).await,
        admin_bearer,
    );
    let job = [("job_name", "auto_close_resolved_tickets")];
    let runs_before = metric(&stack.scheduler, "scheduler_runs_total", &job).await;
    let run = scheduler
        .run_job_now(pb::RunJobNowRequest {
            job: "auto_close_resolved_tickets".into(),
            as_of_time: None,
        })
        .await
        .unwrap()
        .into_inner();
    eventually(
        "the manual run succeeded",
        async || {
            scheduler
                .list_job_runs(pb::ListJobRunsRequest {
                    job: "auto_close_resolved_tickets".into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .runs
        },
        |runs| {
            runs.iter()
                .any(|r| r.id == run.id && r.state() == JobRunState::Succeeded)
                .then_some(())
        },
    )
    .await;
    metric_until(&stack.scheduler, "scheduler_runs_total", &job, |v| {
        v >= runs_before + 1.0
    })
    .await;
    metric_until(
        &stack.scheduler,
        "scheduler_last_success_timestamp_seconds",
        &job,
        |v| v > 0.0,
    )
    .await;
    eventually(
        "the run and its CloseResolvedTickets call are one trace",
        async || collector.spans(),
        |spans| {
            let ran = spans.iter().find(|s| {
                s.service() == "scheduler"
                    && s.span.name == "run auto_close_resolved_tickets"
                    && s.attribute("run_id").as_deref() == Some(run.id.as_str())
            })?;
            child(
                spans,
                "ticket",
                "support.v1.TicketJobsService/CloseResolvedTickets",
                ran,
            )
            .map(|_| ())
        },
    )
    .await;

    // The broker cut away from the ticket service: the outbox holds the
    // next ticket, and the backlog gauges say so; back, it drains.
    proxy.down().await;
    let second = alice
        .create_ticket(pb::CreateTicketRequest {
            ride_id: ALICE_RIDE.into(),
            category_id: "ride_issue".into(),
            subject: "While the broker is away".into(),
            description: DESCRIPTION.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    metric_until(&stack.ticket, "outbox_unsent_events", &[], |v| v >= 1.0).await;
    metric_until(
        &stack.ticket,
        "outbox_oldest_unsent_age_seconds",
        &[],
        |v| v > 0.0,
    )
    .await;
    proxy.up();
    metric_until(&stack.ticket, "outbox_unsent_events", &[], |v| v == 0.0).await;
    eventually(
        "the ticket created during the cut is assigned",
        async || {
            alice
                .get_ticket(pb::GetTicketRequest {
                    id: second.id.clone(),
                })
                .await
                .unwrap()
                .into_inner()
        },
        |t| (!t.assignee_id.is_empty()).then_some(()),
    )
    .await;

    // A poison message on the assignment queue is dead-lettered, counted,
    // and the dead-letter queue's depth shows it.
    let undecodable = [
        ("queue", stack.assignment_queue.as_str()),
        ("reason", "undecodable"),
    ];
    let dead_before = metric(
        &stack.assignment,
        "events_dead_lettered_total",
        &undecodable,
    )
    .await;
    let connection = helpdesk_events::amqp::connect(&url, "e2e-poison")
        .await
        .unwrap();
    let publisher = connection.create_channel().await.unwrap();
    publisher
        .basic_publish(
            "".into(),
            stack.assignment_queue.as_str().into(),
            Default::default(),
            // Field 1, length 5, and only two bytes: not a TicketCreated.
            b"\x0a\x05ab",
            lapin::BasicProperties::default()
                .with_type("support.v1.TicketCreated".into())
                .with_message_id(uuid::Uuid::now_v7().to_string().into()),
        )
        .await
        .unwrap();
    metric_until(
        &stack.assignment,
        "events_dead_lettered_total",
        &undecodable,
        |v| v >= dead_before + 1.0,
    )
    .await;
    metric_until(
        &stack.assignment,
        "events_dead_letter_queue_messages",
        &assignment_queue,
        |v| v >= 1.0,
    )
    .await;
    let _ = connection.close(200, "done".into()).await;

    // The logs: JSON lines, the trace's ids on the lines of its spans ...
    let lines = stack.log_lines();
    assert!(lines.len() > 20, "too few log lines: {}", lines.len());
    for (process, line) in &lines {
        assert!(
            line.starts_with('{'),
            "{process} logged a line that is not JSON: {line}"
        );
    }
    let trace = create.trace_id();
    for service in ["ticket", "assignment", "notification"] {
        assert!(
            lines
                .iter()
                .any(|(p, l)| p == service && l.contains(&format!(r#""trace_id":"{trace}""#))),
            "no {service} log line carries the CreateTicket trace id {trace}"
        );
    }
    // ... and nothing secret, personal or private in any of them.
    let demo = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../services/platform-standin/data/demo.json"),
    )
    .unwrap();
    let people: serde_json::Value = serde_json::from_str(&demo).unwrap();
    let mut secrets: Vec<(String, String)> = vec![
        ("Alice's JWT".into(), alice_jwt),
        ("the agent's JWT".into(), staff_jwt),
        ("the admin's JWT".into(), admin_jwt),
        ("the SMTP password".into(), SMTP_PASSWORD.into()),
        ("the ticket description".into(), DESCRIPTION.into()),
        ("the reply's body".into(), REPLY.into()),
    ];
    for user in people["users"].as_array().unwrap() {
        secrets.push((
            "an email address".into(),
            user["email"].as_str().unwrap().into(),
        ));
        for push in user["push_tokens"].as_array().into_iter().flatten() {
            secrets.push(("a push token".into(), push.as_str().unwrap().into()));
        }
    }
    for (what, secret) in &secrets {
        if let Some((process, line)) = lines.iter().find(|(_, l)| l.contains(secret.as_str())) {
            panic!("{process} logged {what}: {line}");
        }
    }
}
