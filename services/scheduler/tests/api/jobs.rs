//! Each job's effect through the real call path: RunJobNow → the claimed
//! run → `TicketJobsClient` → the ticket service's `TicketJobsService` →
//! PostgreSQL and the outbox → RabbitMQ. Boundaries are crossed by moving
//! the shared manual clock; every job is re-run to show a re-run changes
//! nothing.

use std::{collections::HashSet, time::Duration as StdDuration};

use chrono::{DateTime, Duration, Utc};
use helpdesk_kit::auth::Role;
use helpdesk_proto::support::v1::{self as pb, TicketPriority as P, TicketStatus as S};
use scheduler_service::{
    clients::tickets::{RunContext, TicketWork, WorkError},
    domain::JobKind,
};
use uuid::Uuid;

use crate::{
    helpers::utc,
    world::{ALICE, SAM, World},
};

#[allow(non_snake_case)]
fn T0() -> DateTime<Utc> {
    utc(2026, 3, 2, 8, 0, 0)
}

/// A series' value in this process's metrics (0 when absent).
fn series(name: &str) -> f64 {
    helpdesk_kit::metrics::value(&helpdesk_kit::metrics::encode(), name).unwrap_or(0.0)
}

#[tokio::test]
async fn auto_close_closes_what_was_resolved_over_seven_days_ago_once() {
    let w = World::start(T0(), 500).await;
    let now = T0() + Duration::days(10);
    // Resolved 7 d 1 h before `now`: closed. 6 d 23 h: stays resolved.
    let old = w.ticket(P::Medium).await;
    w.set_clock(now - Duration::days(7) - Duration::hours(1));
    w.set_status(&old, S::Resolved).await;
    let recent = w.ticket(P::Medium).await;
    w.set_clock(now - Duration::days(6) - Duration::hours(23));
    w.set_status(&recent, S::Resolved).await;
    w.set_clock(now);

    let mut tap = w.tap("ticket.status_changed").await;
    let succeeded =
        r#"scheduler_runs_total{job_name="auto_close_resolved_tickets",outcome="succeeded"}"#;
    let before = series(succeeded);
    let run = w.run(JobKind::AutoCloseResolvedTickets).await;
    assert_eq!(run.processed, 1);
    // The run is counted once it ended (other tests may run this job too).
    let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
    while series(succeeded) < before + 1.0 {
        assert!(std::time::Instant::now() < deadline, "run not counted");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    assert!(
        series(
            r#"scheduler_last_success_timestamp_seconds{job_name="auto_close_resolved_tickets"}"#
        ) > 0.0
    );
    // What a restarted replica (or one that did not run it) reads back.
    let completed = scheduler_service::storage::runs::last_completed(&w.db.pool)
        .await
        .unwrap();
    assert!(
        completed
            .iter()
            .any(|(job, at)| job == "auto_close_resolved_tickets" && *at >= now),
        "{completed:?}"
    );
    assert_eq!(w.get(&old).await.status(), S::Closed);
    assert_eq!(w.get(&recent).await.status(), S::Resolved);

    // The user hears of it like of a manual close: the event is on the bus.
    let got = tap.take(1).await;
    let e: pb::TicketStatusChanged = got[0].decode();
    assert_eq!(e.ticket.as_ref().unwrap().ticket_id, old);
    assert_eq!((e.from(), e.to()), (S::Resolved, S::Closed));
    let header = e.header.unwrap();
    assert_eq!(
        (header.actor_id.as_str(), header.actor_role.as_str()),
        ("scheduler-service", "service")
    );

    // A re-run changes nothing and says nothing.
    let again = w.run(JobKind::AutoCloseResolvedTickets).await;
    assert_eq!(again.processed, 0);
    tap.assert_quiet(StdDuration::from_millis(500)).await;
    assert_eq!(w.get(&recent).await.status(), S::Resolved);

    // Two hours later the other one is past seven days too.
    w.set_clock(now + Duration::hours(2));
    assert_eq!(w.run(JobKind::AutoCloseResolvedTickets).await.processed, 1);
    assert_eq!(w.get(&recent).await.status(), S::Closed);
}

#[tokio::test]
async fn an_sla_breach_alerts_once_and_a_new_breach_alerts_again() {
    let w = World::start(T0(), 500).await;
    // High: first response within 4 h, resolution within 24 h (defaults).
    let late = w.ticket(P::High).await;
    let answered = w.ticket(P::High).await;
    w.set_clock(T0() + Duration::hours(1));
    w.staff_reply(&answered).await;

    w.set_clock(T0() + Duration::hours(5));
    assert_eq!(w.run(JobKind::SendOverdueTicketAlerts).await.processed, 1);
    let alerts = w.outbox::<pb::TicketOverdue>().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].ticket.as_ref().unwrap().ticket_id, late);
    assert_eq!(alerts[0].breach(), pb::SlaBreach::FirstResponse);
    assert_eq!(
        alerts[0].due_at,
        Some(helpdesk_kit::clock::to_timestamp(T0() + Duration::hours(4)))
    );

    // Still breaching an hour later: nothing new.
    w.set_clock(T0() + Duration::hours(6));
    assert_eq!(w.run(JobKind::SendOverdueTicketAlerts).await.processed, 0);
    w.set_clock(T0() + Duration::hours(7));
    w.staff_reply(&late).await;

    // Past the resolution target: a new breach for both, once.
    w.set_clock(T0() + Duration::hours(25));
    assert_eq!(w.run(JobKind::SendOverdueTicketAlerts).await.processed, 2);
    w.set_clock(T0() + Duration::hours(26));
    assert_eq!(w.run(JobKind::SendOverdueTicketAlerts).await.processed, 0);
    let alerts: HashSet<(String, pb::SlaBreach)> = w
        .outbox::<pb::TicketOverdue>()
        .await
        .into_iter()
        .map(|a| (a.ticket.as_ref().unwrap().ticket_id.clone(), a.breach()))
        .collect();
    let expected: HashSet<(String, pb::SlaBreach)> = [
        (late.clone(), pb::SlaBreach::FirstResponse),
        (late.clone(), pb::SlaBreach::Resolution),
        (answered.clone(), pb::SlaBreach::Resolution),
    ]
    .into();
    assert_eq!(alerts, expected);
    assert_eq!(w.outbox_count("ticket.overdue").await, 3);
}

#[tokio::test]
async fn escalation_raises_one_level_per_threshold_and_stops_at_urgent() {
    let w = World::start(T0(), 500).await;
    let low = w.ticket(P::Low).await;
    let high = w.ticket(P::High).await;
    let urgent = w.ticket(P::Urgent).await;
    let resolved = w.ticket(P::Low).await;
    w.set_status(&resolved, S::Resolved).await;
    w.set_clock(T0() + Duration::hours(2));
    let younger = w.ticket(P::Medium).await;
    let priority = |id: String| {
        let w = &w;
        async move { w.get(&id).await.priority() }
    };

    // 49 h: the three open since T0 are past 48 h; urgent stays as it is.
    w.set_clock(T0() + Duration::hours(49));
    assert_eq!(w.run(JobKind::EscalateOldOpenTickets).await.processed, 2);
    assert_eq!(priority(low.clone()).await, P::Medium);
    assert_eq!(priority(high.clone()).await, P::Urgent);
    assert_eq!(priority(urgent.clone()).await, P::Urgent);
    assert_eq!(priority(younger.clone()).await, P::Medium);
    assert_eq!(priority(resolved.clone()).await, P::Low);
    let escalated = w.outbox::<pb::TicketEscalated>().await;
    assert_eq!(escalated.len(), 2);
    let low_event = escalated
        .iter()
        .find(|e| e.ticket.as_ref().unwrap().ticket_id == low)
        .unwrap();
    assert_eq!(low_event.from_priority(), P::Low);
    assert_eq!(low_event.ticket.as_ref().unwrap().priority(), P::Medium);
    assert_eq!(w.outbox_count("ticket.priority_changed").await, 2);

    // A re-run changes nothing.
    assert_eq!(w.run(JobKind::EscalateOldOpenTickets).await.processed, 0);

    // Another 48 h: one more level each, then urgent is the ceiling.
    w.set_clock(T0() + Duration::hours(98));
    assert_eq!(w.run(JobKind::EscalateOldOpenTickets).await.processed, 2);
    assert_eq!(priority(low.clone()).await, P::High);
    assert_eq!(priority(younger.clone()).await, P::High);
    w.set_clock(T0() + Duration::hours(147));
    assert_eq!(w.run(JobKind::EscalateOldOpenTickets).await.processed, 2);
    w.set_clock(T0() + Duration::hours(196));
    assert_eq!(w.run(JobKind::EscalateOldOpenTickets).await.processed, 0);
    for id in [low, high, urgent, younger] {
        assert_eq!(priority(id).await, P::Urgent);
    }
    assert_eq!(w.outbox_count("ticket.escalated").await, 6);
}

#[tokio::test]
async fn a_rating_is_requested_once_and_reminded_up_to_the_maximum() {
    let w = World::start(T0(), 500).await;
    let unrated = w.ticket(P::Medium).await;
    let rated = w.ticket(P::Medium).await;
    w.set_status(&unrated, S::Resolved).await;
    w.set_status(&rated, S::Resolved).await;
    w.set_clock(T0() + Duration::hours(1));
    w.tickets_as(ALICE, Role::User)
        .rate_ticket(pb::RateTicketRequest {
            ticket_id: rated.clone(),
            rating: 5,
            ..Default::default()
        })
        .await
        .unwrap();

    // Resolved 47 h ago: too early. 49 h: asked, once.
    w.set_clock(T0() + Duration::hours(47));
    assert_eq!(w.run(JobKind::SendRatingRequests).await.processed, 0);
    w.set_clock(T0() + Duration::hours(49));
    assert_eq!(w.run(JobKind::SendRatingRequests).await.processed, 1);
    assert_eq!(w.run(JobKind::SendRatingRequests).await.processed, 0);

    // Reminders every 72 h after the last ask, two in all (defaults).
    let mut at = T0() + Duration::hours(49);
    for expected in [1, 1, 0] {
        at += Duration::hours(73);
        w.set_clock(at);
        assert_eq!(
            w.run(JobKind::SendUnratedTicketReminders).await.processed,
            expected
        );
        assert_eq!(
            w.run(JobKind::SendUnratedTicketReminders).await.processed,
            0,
            "a re-run reminds nobody"
        );
    }
    let sent: Vec<(String, i32)> = w
        .outbox::<pb::RatingRequested>()
        .await
        .into_iter()
        .map(|r| (r.ticket.unwrap().ticket_id, r.reminder))
        .collect();
    assert_eq!(
        sent,
        vec![(unrated.clone(), 0), (unrated.clone(), 1), (unrated, 2)]
    );
}

#[tokio::test]
async fn tickets_resolved_before_the_rating_window_are_never_asked() {
    let w = World::start(T0(), 500).await;
    // A backlog (imported, or resolved while the scheduler was down): 15
    // and 10 days before T0. The window is 14 days (the default).
    resolved_tickets(&w, 3, T0() - Duration::days(15)).await;
    resolved_tickets(&w, 2, T0() - Duration::days(10)).await;
    let recent = w.ticket(P::Medium).await;
    w.set_status(&recent, S::Resolved).await;

    // At T0 + 49 h the backlog is 16 and 12 days old: only the younger
    // two and the recent ticket are asked.
    w.set_clock(T0() + Duration::hours(49));
    assert_eq!(w.run(JobKind::SendRatingRequests).await.processed, 3);
    let asked: Vec<String> = w
        .outbox::<pb::RatingRequested>()
        .await
        .into_iter()
        .map(|r| r.ticket.unwrap().human_id)
        .collect();
    assert_eq!(asked.len(), 3);
    assert_eq!(asked.iter().filter(|h| h.starts_with("BULK-")).count(), 2);
    // Nor later: the old ones only fall further out of the window.
    w.set_clock(T0() + Duration::days(3));
    assert_eq!(w.run(JobKind::SendRatingRequests).await.processed, 0);
}

/// Inserts `n` tickets resolved at `resolved_at` (minus i seconds each).
async fn resolved_tickets(w: &World, n: i32, resolved_at: DateTime<Utc>) {
    sqlx::query(
        "INSERT INTO tickets (id, number, human_id, user_id, category_id, subject, description,
                              priority, status, resolved_at, created_at, updated_at)
         SELECT gen_random_uuid(), 1000000 + i + (SELECT count(*) FROM tickets),
                'BULK-' || (i + (SELECT count(*) FROM tickets)), $1, 'other', 'bulk', 'bulk',
                'medium', 'resolved', $2 - make_interval(secs => i), $2 - interval '1 day',
                $2 - make_interval(secs => i)
         FROM generate_series(1, $3) AS i",
    )
    .bind(Uuid::parse_str(ALICE).unwrap())
    .bind(resolved_at)
    .bind(n)
    .execute(&w.ticket_db.pool)
    .await
    .unwrap();
}

async fn statuses(w: &World) -> Vec<(String, i64)> {
    sqlx::query_as::<_, (String, i64)>(
        "SELECT status, count(*) FROM tickets GROUP BY status ORDER BY status",
    )
    .fetch_all(&w.ticket_db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn more_tickets_than_a_page_are_all_closed_each_once() {
    let w = World::start(T0(), 500).await;
    let now = T0() + Duration::days(30);
    resolved_tickets(&w, 1250, now - Duration::days(8)).await;
    resolved_tickets(&w, 7, now - Duration::days(6)).await;
    w.set_clock(now);
    let run = w.run(JobKind::AutoCloseResolvedTickets).await;
    assert_eq!(run.processed, 1250);
    assert_eq!(
        statuses(&w).await,
        vec![("closed".into(), 1250), ("resolved".into(), 7)]
    );
    let distinct: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT aggregate_id) FROM outbox WHERE routing_key = 'ticket.status_changed'",
    )
    .fetch_one(&w.ticket_db.pool)
    .await
    .unwrap();
    assert_eq!(distinct, 1250);
    assert_eq!(w.outbox_count("ticket.status_changed").await, 1250);
}

#[tokio::test]
async fn a_run_resumed_from_its_checkpoint_does_not_repeat_a_page_and_a_stale_holder_is_refused() {
    let w = World::start(T0(), 500).await;
    let now = T0() + Duration::days(30);
    resolved_tickets(&w, 250, now - Duration::days(8)).await;
    w.set_clock(now);
    let client = w.jobs_client(100);
    let before = now - Duration::days(7);
    let run_id = Uuid::now_v7();
    let ctx = |fence: i64, checkpoint: Option<String>| RunContext {
        run_id,
        fencing_token: fence,
        as_of: now,
        checkpoint,
    };

    let p1 = client.close_resolved(&ctx(1, None), before).await.unwrap();
    assert_eq!((p1.processed, p1.done), (100, false));
    let p2 = client
        .close_resolved(&ctx(1, p1.checkpoint.clone()), before)
        .await
        .unwrap();
    assert_eq!((p2.processed, p2.done), (100, false));

    // The holder dies before storing p2's checkpoint; the next one (token 2)
    // resumes from p1's: page 2 is not done again, only what is left.
    let p2_again = client
        .close_resolved(&ctx(2, p1.checkpoint.clone()), before)
        .await
        .unwrap();
    assert_eq!((p2_again.processed, p2_again.done), (50, true));
    let last = client
        .close_resolved(&ctx(2, p2_again.checkpoint.clone()), before)
        .await
        .unwrap();
    assert_eq!((last.processed, last.done), (0, true));
    assert_eq!(statuses(&w).await, vec![("closed".into(), 250)]);
    assert_eq!(w.outbox_count("ticket.status_changed").await, 250);

    // The stale holder (token 1) is refused, and changes nothing.
    resolved_tickets(&w, 5, now - Duration::days(8)).await;
    let stale = client.close_resolved(&ctx(1, None), before).await;
    assert!(matches!(stale, Err(WorkError::Failed(_))), "{stale:?}");
    assert_eq!(
        statuses(&w).await,
        vec![("closed".into(), 250), ("resolved".into(), 5)]
    );
}

#[tokio::test]
async fn daily_statistics_match_the_figures_worked_out_by_hand() {
    let day = utc(2026, 3, 10, 0, 0, 0);
    let at = |h: i64, m: i64| day + Duration::hours(h) + Duration::minutes(m);
    let w = World::start(day - Duration::hours(1), 500).await;
    let sam = w.tickets_as(SAM, Role::Staff);
    let alice = w.tickets_as(ALICE, Role::User);
    // The day before: not counted.
    w.ticket(P::Low).await;

    w.set_clock(at(1, 0));
    let t1 = w.ticket(P::High).await;
    sam.clone()
        .assign_ticket(pb::AssignTicketRequest {
            ticket_id: t1.clone(),
            assignee_id: SAM.into(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    w.set_clock(at(1, 30));
    w.staff_reply(&t1).await; // first response 1800 s
    w.set_clock(at(2, 0));
    let t2 = w
        .tickets_as(ALICE, Role::User)
        .create_ticket(pb::CreateTicketRequest {
            category_id: "payment_issue".into(),
            subject: "Charged twice".into(),
            description: "Two charges for one ride.".into(),
            priority: P::Low.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .id;
    w.set_clock(at(3, 0));
    let t3 = w.ticket(P::High).await;
    w.set_clock(at(3, 10));
    w.staff_reply(&t3).await; // 600 s
    w.set_clock(at(4, 0));
    w.staff_reply(&t2).await; // 7200 s
    w.set_clock(at(5, 0));
    w.set_status(&t1, S::Resolved).await; // 14400 s
    w.set_clock(at(6, 0));
    let rate = |id: &str, stars: i32| pb::RateTicketRequest {
        ticket_id: id.into(),
        rating: stars,
        ..Default::default()
    };
    alice.clone().rate_ticket(rate(&t1, 5)).await.unwrap();
    w.set_clock(at(9, 0));
    w.set_status(&t3, S::Resolved).await; // 21600 s
    w.set_clock(at(10, 0));
    alice.clone().rate_ticket(rate(&t3, 3)).await.unwrap();
    w.set_clock(at(11, 0));
    w.set_status(&t3, S::Closed).await;
    // The next day's first instant: not counted.
    w.set_clock(at(24, 0));
    w.ticket(P::Urgent).await;

    w.set_clock(at(24, 0) + Duration::seconds(30));
    w.run(JobKind::GenerateSupportStatistics).await;
    let days = w
        .scheduler()
        .get_daily_stats(pb::GetDailyStatsRequest {
            start_date: "2026-03-09".into(),
            end_date: "2026-03-11".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .days;
    assert_eq!(days.len(), 1, "{days:#?}");
    let d = &days[0];
    assert_eq!(
        (d.date.as_str(), d.time_zone.as_str()),
        ("2026-03-10", "UTC")
    );
    assert_eq!((d.created, d.resolved, d.closed), (3, 2, 1));
    let counts = |list: &[pb::CountByKey]| {
        list.iter()
            .map(|c| (c.key.clone(), c.count))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        counts(&d.created_by_category),
        vec![("payment_issue".into(), 1), ("ride_issue".into(), 2)]
    );
    assert_eq!(
        counts(&d.created_by_priority),
        vec![("high".into(), 2), ("low".into(), 1)]
    );
    // First responses 600, 1800, 7200 s: median 1800; p90 (linear) 1800 + 0.8 × 5400.
    assert_eq!(d.first_response_median_seconds, 1800);
    assert_eq!(d.first_response_p90_seconds, 6120);
    // Resolutions 14400 and 21600 s: median 18000; p90 14400 + 0.9 × 7200.
    assert_eq!(d.resolution_median_seconds, 18000);
    assert_eq!(d.resolution_p90_seconds, 20880);
    assert_eq!((d.average_rating, d.rating_count), (4.0, 2));
    assert_eq!(d.agents.len(), 1, "{:#?}", d.agents);
    let a = &d.agents[0];
    assert_eq!(
        (a.agent_id.as_str(), a.assigned, a.resolved, a.replies),
        (SAM, 1, 1, 3)
    );
}

#[tokio::test]
async fn faq_analytics_runs_through_the_ticket_service() {
    let w = World::start(T0(), 500).await;
    let admin = crate::helpers::ADMIN;
    let mut faqs = w.faqs_as(admin, Role::Admin);
    let faq = faqs
        .create_faq(pb::CreateFaqRequest {
            faq: Some(pb::Faq {
                question: "How do I get a refund?".into(),
                answer: "Open the ride and tap Refund.".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    faqs.publish_faq(pb::PublishFaqRequest { id: faq.id.clone() })
        .await
        .unwrap();
    let mut alice = w.faqs_as(ALICE, Role::User);
    // Views 10 days and 3 days before the run, and on its own day (outside
    // both windows: they end the day before).
    for (days_ago, views) in [(10, 2), (3, 3), (0, 1)] {
        w.set_clock(T0() - Duration::days(days_ago));
        for _ in 0..views {
            alice
                .get_faq(pb::GetFaqRequest { id: faq.id.clone() })
                .await
                .unwrap();
        }
    }
    w.set_clock(T0() - Duration::days(2));
    alice
        .mark_faq_helpful(pb::MarkFaqHelpfulRequest { id: faq.id.clone() })
        .await
        .unwrap();
    w.set_clock(T0());

    let run = w.run(JobKind::UpdateFaqAnalytics).await;
    assert_eq!(run.processed, 1, "one entry");
    let seen = faqs
        .get_faq(pb::GetFaqRequest { id: faq.id.clone() })
        .await
        .unwrap()
        .into_inner();
    let a = seen.analytics.expect("admins see the analytics");
    assert_eq!(a.as_of_date, "2026-03-02");
    assert_eq!((a.views_last_7_days, a.views_last_30_days), (3, 5));
    assert_eq!((a.helpful_last_7_days, a.not_helpful_last_7_days), (1, 0));
    let users_see = alice
        .get_faq(pb::GetFaqRequest { id: faq.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(users_see.analytics.is_none());
}
