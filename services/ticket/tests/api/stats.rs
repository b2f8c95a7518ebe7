//! The staff dashboard (`StatisticsService.GetTicketStats`): its figures
//! equal a direct computation over the tickets the test seeded (read back
//! through GetTicket), for the whole desk, one category and one agent; the
//! range is a cohort of creation; bad input names its field; users are
//! refused.

use chrono::{DateTime, Duration, Utc};
use helpdesk_kit::{
    auth::Role,
    clock::{Clock, from_timestamp, to_timestamp},
    sla::SlaTargets,
};
use helpdesk_proto::support::v1::{self as pb, statistics_service_client::StatisticsServiceClient};
use helpdesk_testkit::Bearer;
use tonic::{Code, service::interceptor::InterceptedService, transport::Channel};

use crate::helpers::*;

type Stats = StatisticsServiceClient<InterceptedService<Channel, Bearer>>;

async fn stats(app: &TestApp, sub: &str, role: Role) -> Stats {
    let channel = Channel::from_shared(app.addr.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    StatisticsServiceClient::with_interceptor(channel, Bearer::token(sub, role))
}

/// Seeds a varied desk: 14 tickets an hour apart, by two users, in three
/// priorities and two categories, some answered (after different delays),
/// assigned to Sam or Sue, resolved, closed or rated. Returns their ids.
async fn seed(app: &TestApp) -> Vec<String> {
    let priorities = [
        pb::TicketPriority::High,
        pb::TicketPriority::Low,
        pb::TicketPriority::Urgent,
    ];
    let mut ids = Vec::new();
    for i in 0..14i64 {
        let start = app.clock.now();
        let owner = if i % 2 == 0 { ALICE } else { BOB };
        let mut as_owner = app.as_(owner, Role::User);
        let mut request = ticket_for(owner);
        request.priority = priorities[i as usize % 3].into();
        request.category_id = if i % 3 == 0 {
            "payment_issue"
        } else {
            "ride_issue"
        }
        .into();
        let t = app
            .sam()
            .tickets
            .create_ticket(request)
            .await
            .unwrap()
            .into_inner();
        if i % 5 != 4 {
            let agent = if i % 2 == 0 { SAM } else { SUE };
            app.service()
                .tickets
                .assign_ticket(pb::AssignTicketRequest {
                    ticket_id: t.id.clone(),
                    assignee_id: agent.into(),
                    request_id: String::new(),
                })
                .await
                .unwrap();
            if i % 4 != 3 {
                // First replies after 10, 20, ... 140 minutes, some past the
                // urgent target (1 h).
                app.clock.advance(Duration::minutes(10 * (i + 1)));
                app.as_(agent, Role::Staff)
                    .tickets
                    .post_message(pb::PostMessageRequest {
                        ticket_id: t.id.clone(),
                        body: "Looking into it".into(),
                        internal: false,
                        request_id: String::new(),
                        attachment_ids: Vec::new(),
                    })
                    .await
                    .unwrap();
            }
            if i % 3 != 1 {
                app.clock.advance(Duration::hours(i + 1));
                app.sam()
                    .tickets
                    .update_ticket(set_status(&t.id, pb::TicketStatus::Resolved))
                    .await
                    .unwrap();
                if i % 2 == 0 {
                    as_owner
                        .tickets
                        .rate_ticket(pb::RateTicketRequest {
                            ticket_id: t.id.clone(),
                            rating: (i % 5 + 1) as i32,
                            feedback: String::new(),
                            request_id: String::new(),
                        })
                        .await
                        .unwrap();
                }
                if i % 4 == 0 {
                    app.sam()
                        .tickets
                        .update_ticket(set_status(&t.id, pb::TicketStatus::Closed))
                        .await
                        .unwrap();
                }
            }
        }
        // The next ticket an hour after this one was filed.
        let next = start + Duration::hours(1);
        if app.clock.now() < next {
            app.clock.set(next);
        }
        ids.push(t.id);
    }
    ids
}

async fn read_back(app: &TestApp, ids: &[String]) -> Vec<pb::Ticket> {
    let mut tickets = Vec::new();
    for id in ids {
        tickets.push(
            app.sam()
                .tickets
                .get_ticket(pb::GetTicketRequest { id: id.clone() })
                .await
                .unwrap()
                .into_inner(),
        );
    }
    tickets
}

fn time(t: &Option<prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    t.as_ref().and_then(from_timestamp)
}

fn secs(d: &Option<prost_types::Duration>) -> Option<f64> {
    d.as_ref()
        .map(|d| d.seconds as f64 + f64::from(d.nanos) / 1e9)
}

/// PostgreSQL's `percentile_cont`: linear interpolation between the two
/// nearest ranks.
fn percentile(values: &mut [f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = p * (values.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    Some(values[lo] + (values[hi] - values[lo]) * (rank - lo as f64))
}

fn counts(tickets: &[&pb::Ticket], key: impl Fn(&pb::Ticket) -> String) -> Vec<(String, i64)> {
    let mut map = std::collections::BTreeMap::new();
    for t in tickets {
        *map.entry(key(t)).or_insert(0i64) += 1;
    }
    map.into_iter().collect()
}

fn got(list: &[pb::CountByKey]) -> Vec<(String, i64)> {
    list.iter().map(|c| (c.key.clone(), c.count)).collect()
}

fn status_key(t: &pb::Ticket) -> String {
    t.status()
        .as_str_name()
        .trim_start_matches("TICKET_STATUS_")
        .to_lowercase()
}

fn priority_key(t: &pb::Ticket) -> String {
    t.priority()
        .as_str_name()
        .trim_start_matches("TICKET_PRIORITY_")
        .to_lowercase()
}

/// Asserts `stats` against the same figures computed here from `tickets`.
fn check(stats: &pb::TicketStats, tickets: &[&pb::Ticket], now: DateTime<Utc>) {
    let sla = SlaTargets::default();
    assert_eq!(stats.total, tickets.len() as i64);
    assert_eq!(got(&stats.by_status), counts(tickets, status_key));
    assert_eq!(got(&stats.by_priority), counts(tickets, priority_key));
    assert_eq!(
        got(&stats.by_category),
        counts(tickets, |t| t.category_id.clone())
    );

    let span = |t: &pb::Ticket, end: &Option<prost_types::Timestamp>| {
        time(end).map(|end| (end - time(&t.create_time).unwrap()).as_seconds_f64())
    };
    for (figures, end, pick) in [
        (
            stats.first_response.as_ref().unwrap(),
            (|t: &pb::Ticket| t.first_response_at) as fn(&pb::Ticket) -> _,
            0,
        ),
        (
            stats.resolution.as_ref().unwrap(),
            |t: &pb::Ticket| t.resolved_at,
            1,
        ),
    ] {
        let mut spans: Vec<f64> = tickets.iter().filter_map(|t| span(t, &end(t))).collect();
        assert_eq!(figures.count, spans.len() as i64);
        let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() < 0.002,
            (a, b) => a == b,
        };
        assert!(
            close(secs(&figures.median), percentile(&mut spans, 0.5)),
            "{figures:?}"
        );
        assert!(
            close(secs(&figures.p90), percentile(&mut spans, 0.9)),
            "{figures:?}"
        );

        // Met the target, of those whose outcome is known by now.
        let (mut known, mut within) = (0, 0);
        for t in tickets {
            let Some(targets) = sla.of(&priority_key(t)) else {
                continue;
            };
            let target = [targets.0, targets.1][pick].as_secs_f64();
            let age = (now - time(&t.create_time).unwrap()).as_seconds_f64();
            match span(t, &end(t)) {
                Some(s) => {
                    known += 1;
                    within += i64::from(s <= target);
                }
                None if age > target && !(pick == 1 && t.status() == pb::TicketStatus::Closed) => {
                    known += 1
                }
                None => {}
            }
        }
        assert_eq!(figures.target_known, known, "{figures:?}");
        let share = (known > 0).then(|| within as f64 / known as f64);
        assert_eq!(figures.within_target_share, share, "{figures:?}");
    }

    let ratings: Vec<i32> = tickets
        .iter()
        .map(|t| t.rating)
        .filter(|r| *r > 0)
        .collect();
    let r = stats.ratings.as_ref().unwrap();
    assert_eq!(r.count, ratings.len() as i64);
    let distribution: Vec<i64> = (1..=5)
        .map(|n| ratings.iter().filter(|r| **r == n).count() as i64)
        .collect();
    assert_eq!(r.distribution, distribution);
    if !ratings.is_empty() {
        let average = ratings.iter().sum::<i32>() as f64 / ratings.len() as f64;
        assert!((r.average - average).abs() < 1e-9);
    }

    // Per agent, most assigned first.
    let mut agents = counts(
        &tickets
            .iter()
            .copied()
            .filter(|t| !t.assignee_id.is_empty())
            .collect::<Vec<_>>(),
        |t| t.assignee_id.clone(),
    );
    agents.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    assert_eq!(
        stats
            .agents
            .iter()
            .map(|a| (a.agent_id.clone(), a.assigned))
            .collect::<Vec<_>>(),
        agents
    );
    for a in &stats.agents {
        let mine: Vec<&&pb::Ticket> = tickets
            .iter()
            .filter(|t| t.assignee_id == a.agent_id)
            .collect();
        assert_eq!(
            a.resolved,
            mine.iter().filter(|t| t.resolved_at.is_some()).count() as i64
        );
        let mut firsts: Vec<f64> = mine
            .iter()
            .filter_map(|t| span(t, &t.first_response_at))
            .collect();
        let median = percentile(&mut firsts, 0.5);
        assert!(
            match (secs(&a.first_response_median), median) {
                (Some(x), Some(y)) => (x - y).abs() < 0.002,
                (x, y) => x == y,
            },
            "{a:?}"
        );
        let rated: Vec<i32> = mine.iter().map(|t| t.rating).filter(|r| *r > 0).collect();
        assert_eq!(a.rating_count, rated.len() as i64);
    }
}

#[tokio::test]
async fn figures_equal_a_direct_computation_over_the_seeded_tickets() {
    let app = spawn().await;
    let from = app.clock.now();
    let ids = seed(&app).await;
    let tickets = read_back(&app, &ids).await;
    // Two days later: the open tickets are past every urgent and high target.
    app.clock.advance(Duration::days(2));
    let now = app.clock.now();
    let until = now;
    let mut client = stats(&app, SAM, Role::Staff).await;
    let ask = |category: &str, agent: &str| pb::GetTicketStatsRequest {
        start_time: Some(to_timestamp(from)),
        end_time: Some(to_timestamp(until)),
        category_id: category.into(),
        agent_id: agent.into(),
    };

    let all = client
        .get_ticket_stats(ask("", ""))
        .await
        .unwrap()
        .into_inner();
    let everything: Vec<&pb::Ticket> = tickets.iter().collect();
    check(&all, &everything, now);
    // The seed is varied enough that every figure is exercised.
    let (first, resolution) = (all.first_response.unwrap(), all.resolution.unwrap());
    assert!(
        first.count >= 5 && resolution.count >= 4,
        "{first:?} {resolution:?}"
    );
    let share = first.within_target_share.unwrap();
    assert!(share > 0.0 && share < 1.0, "{first:?}");
    assert!(all.ratings.unwrap().count >= 2);
    assert_eq!(all.agents.len(), 2);

    let payments = client
        .get_ticket_stats(ask("payment_issue", ""))
        .await
        .unwrap()
        .into_inner();
    let only: Vec<&pb::Ticket> = tickets
        .iter()
        .filter(|t| t.category_id == "payment_issue")
        .collect();
    check(&payments, &only, now);
    assert_eq!(payments.category_id, "payment_issue");

    // An agent id in upper case with braces is the same agent.
    let sue = client
        .get_ticket_stats(ask("", &format!("{{{}}}", SUE.to_uppercase())))
        .await
        .unwrap()
        .into_inner();
    let only: Vec<&pb::Ticket> = tickets.iter().filter(|t| t.assignee_id == SUE).collect();
    check(&sue, &only, now);
    assert_eq!(sue.agent_id, SUE);

    // The range is a cohort of creation: up to the sixth ticket's creation
    // holds the first five tickets only, whatever happened to them later.
    let sixth = time(&tickets[5].create_time).unwrap();
    let early = client
        .get_ticket_stats(pb::GetTicketStatsRequest {
            end_time: Some(to_timestamp(sixth)),
            ..ask("", "")
        })
        .await
        .unwrap()
        .into_inner();
    let only: Vec<&pb::Ticket> = tickets[..5].iter().collect();
    check(&early, &only, now);
}

#[tokio::test]
async fn an_empty_range_has_zeros_and_no_durations() {
    let app = spawn().await;
    let now = app.clock.now();
    let stats = stats(&app, ADA, Role::Admin)
        .await
        .get_ticket_stats(pb::GetTicketStatsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.total, 0);
    // The defaults: the last 30 days up to now.
    assert_eq!(time(&stats.end_time), Some(now));
    assert_eq!(time(&stats.start_time), Some(now - Duration::days(30)));
    let first = stats.first_response.unwrap();
    assert_eq!(
        (first.count, first.median, first.within_target_share),
        (0, None, None)
    );
    assert_eq!(stats.ratings.unwrap().distribution, [0, 0, 0, 0, 0]);
    assert!(stats.agents.is_empty());
}

#[tokio::test]
async fn bad_input_names_every_field_and_users_are_refused() {
    let app = spawn().await;
    let now = app.clock.now();
    let mut client = stats(&app, SAM, Role::Staff).await;
    let status = expect_code(
        client
            .get_ticket_stats(pb::GetTicketStatsRequest {
                start_time: Some(prost_types::Timestamp {
                    seconds: i64::MAX,
                    nanos: 0,
                }),
                end_time: None,
                category_id: "Payment Issue".into(),
                agent_id: "sam".into(),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&status),
        ["start_time", "category_id", "agent_id"]
    );
    for (from, until) in [
        (now, now),
        (now, now - Duration::hours(1)),
        (now - Duration::days(367), now),
    ] {
        expect_violation(
            client
                .get_ticket_stats(pb::GetTicketStatsRequest {
                    start_time: Some(to_timestamp(from)),
                    end_time: Some(to_timestamp(until)),
                    ..Default::default()
                })
                .await,
            "end_time",
        );
    }
    for (sub, role) in [(ALICE, Role::User), ("rides-service", Role::Service)] {
        expect_code(
            stats(&app, sub, role)
                .await
                .get_ticket_stats(pb::GetTicketStatsRequest::default())
                .await,
            Code::PermissionDenied,
        );
    }
}

#[tokio::test]
async fn many_dashboards_at_once_queue_instead_of_starving_the_pool() {
    // Each dashboard holds three connections at once; the test pool has 8.
    // Unbounded, a dozen at once each took one connection and waited for
    // the rest until the pool timed out: every call failed UNAVAILABLE.
    let app = spawn().await;
    seed(&app).await;
    app.clock.advance(Duration::minutes(1));
    let calls = (0..12).map(|_| async {
        stats(&app, ADA, Role::Admin)
            .await
            .get_ticket_stats(pb::GetTicketStatsRequest::default())
            .await
            .map(|r| r.into_inner().total)
    });
    let (answers, created) = tokio::join!(
        futures_util::future::join_all(calls),
        // Other calls still get connections meanwhile.
        app.alice_ticket(),
    );
    for answer in answers {
        // The seed, and Alice's new ticket if it was in first.
        let total = answer.expect("every dashboard is served");
        assert!((14..=15).contains(&total), "{total}");
    }
    assert!(!created.id.is_empty());
}
