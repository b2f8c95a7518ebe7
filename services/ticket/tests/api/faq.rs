//! `FaqService`: search (stemming, ranking, the trigram fallback), who sees
//! drafts and who writes, field violations, votes and views counted exactly
//! under concurrency, the analytics windows, and the events.

use chrono::Duration;
use helpdesk_kit::{auth::Role, clock::to_timestamp};
use helpdesk_proto::support::v1::{
    self as pb, FaqVote, ticket_jobs_service_client::TicketJobsServiceClient,
};
use helpdesk_testkit::Bearer;
use tonic::{Code, transport::Channel};
use uuid::Uuid;

use crate::helpers::*;

fn entry(question: &str, answer: &str) -> pb::Faq {
    pb::Faq {
        question: question.into(),
        answer: answer.into(),
        category_id: "payment_issue".into(),
        ..Default::default()
    }
}

/// Ada creates and publishes an entry.
async fn published(app: &TestApp, question: &str, answer: &str) -> pb::Faq {
    let mut ada = app.ada().faqs;
    let f = ada
        .create_faq(pb::CreateFaqRequest {
            faq: Some(entry(question, answer)),
            request_id: String::new(),
        })
        .await
        .expect("create")
        .into_inner();
    ada.publish_faq(pb::PublishFaqRequest { id: f.id })
        .await
        .expect("publish")
        .into_inner()
}

fn search(query: &str) -> pb::SearchFaqsRequest {
    pb::SearchFaqsRequest {
        query: query.into(),
        ..Default::default()
    }
}

fn questions(r: &pb::SearchFaqsResponse) -> Vec<String> {
    r.results
        .iter()
        .map(|h| h.faq.as_ref().unwrap().question.clone())
        .collect()
}

#[tokio::test]
async fn search_stems_ranks_highlights_and_falls_back_to_similar_questions() {
    let app = spawn().await;
    published(
        &app,
        "How do I get a refund?",
        "Open the ride in your history and tap Request refund.",
    )
    .await;
    published(
        &app,
        "Why was I charged a cancellation fee?",
        "A fee applies after two minutes; if it was wrong we refund it.",
    )
    .await;
    published(&app, "How do I change my phone number?", "Go to Settings.").await;
    let mut alice = app.alice().faqs;

    // "refunds" finds "refund" (English stemming); the question's match
    // outranks the answer's.
    let found = alice
        .search_faqs(search("refunds"))
        .await
        .unwrap()
        .into_inner();
    assert!(!found.fuzzy);
    assert_eq!(
        questions(&found),
        [
            "How do I get a refund?",
            "Why was I charged a cancellation fee?"
        ]
    );
    assert!(found.results[0].score > found.results[1].score);
    assert_eq!(
        found.results[0].question_snippet,
        "How do I get a <b>refund</b>?"
    );
    assert!(found.results[0].answer_snippet.contains("<b>refund</b>"));

    // Pages of one: the token carries on after the best.
    let mut first = search("refunds");
    first.page_size = 1;
    let page1 = alice.search_faqs(first.clone()).await.unwrap().into_inner();
    assert_eq!(questions(&page1), ["How do I get a refund?"]);
    let page2 = alice
        .search_faqs(pb::SearchFaqsRequest {
            page_token: page1.next_page_token.clone(),
            ..first.clone()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(questions(&page2), ["Why was I charged a cancellation fee?"]);
    assert!(page2.next_page_token.is_empty());

    // A misspelt word: full text finds nothing, the trigram fallback does.
    let typo = alice
        .search_faqs(search("refnud"))
        .await
        .unwrap()
        .into_inner();
    assert!(typo.fuzzy);
    assert_eq!(questions(&typo)[0], "How do I get a refund?");
    let typo = alice
        .search_faqs(search("phone numbr"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(questions(&typo), ["How do I change my phone number?"]);

    // Nothing like it at all: empty, not an error.
    let none = alice
        .search_faqs(search("zebra"))
        .await
        .unwrap()
        .into_inner();
    assert!(none.results.is_empty());

    // Another language's entries are searched in that language only.
    let mut ada = app.ada().faqs;
    let pt = ada
        .create_faq(pb::CreateFaqRequest {
            faq: Some(pb::Faq {
                language_code: "pt-BR".into(),
                ..entry(
                    "Como peço um reembolso?",
                    "Abra a corrida e toque em reembolsos.",
                )
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pt.language_code, "pt");
    ada.publish_faq(pb::PublishFaqRequest { id: pt.id })
        .await
        .unwrap();
    let found = alice
        .search_faqs(pb::SearchFaqsRequest {
            language_code: "pt".into(),
            ..search("reembolsos")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(questions(&found), ["Como peço um reembolso?"]);
    assert!(!found.fuzzy, "Portuguese stemming: reembolsos → reembols");
}

/// A repeated search is a kept page (api/faqs/cache.rs), and every change
/// to what a search can return is seen by the next search, also one made
/// by another replica (here: straight in the database), while counts and
/// the reader's own vote are always current.
#[tokio::test]
async fn kept_search_pages_never_outlive_an_edit_and_counts_stay_current() {
    let app = spawn().await;
    let f = published(&app, "How do I get a refund?", "Tap Request refund.").await;
    let mut alice = app.alice().faqs;
    async fn refund(alice: &mut Faqs) -> pb::SearchFaqsResponse {
        alice
            .search_faqs(search("refund"))
            .await
            .unwrap()
            .into_inner()
    }
    let snippet = |r: &pb::SearchFaqsResponse| r.results[0].question_snippet.clone();
    let first = refund(&mut alice).await;
    assert_eq!(snippet(&first), "How do I get a <b>refund</b>?");

    // The page is kept: a change made behind the generation's back (its
    // trigger off) is not seen.
    let pool = &app.db.pool;
    let behind_its_back = [
        "ALTER TABLE faqs DISABLE TRIGGER faqs_search_changed",
        "UPDATE faqs SET question = 'How do I get my refund back?'",
        "ALTER TABLE faqs ENABLE TRIGGER faqs_search_changed",
    ];
    for sql in behind_its_back {
        sqlx::query(sql).execute(pool).await.unwrap();
    }
    let kept = refund(&mut alice).await;
    assert_eq!(snippet(&kept), "How do I get a <b>refund</b>?");

    // Votes and views are read for every answer, kept page or not.
    alice
        .mark_faq_helpful(pb::MarkFaqHelpfulRequest { id: f.id.clone() })
        .await
        .unwrap();
    let counted = refund(&mut alice).await;
    let entry = counted.results[0].faq.as_ref().unwrap();
    assert_eq!(
        (entry.helpful_count, entry.my_vote),
        (1, FaqVote::Helpful as i32)
    );

    // Another replica's edit, committed: the next search here sees it.
    sqlx::query("UPDATE faqs SET question = 'How do I get my money back?'")
        .execute(pool)
        .await
        .unwrap();
    let edited = refund(&mut alice).await;
    assert_eq!(snippet(&edited), "How do I get my money back?");
    assert!(!edited.results[0].answer_snippet.is_empty());

    // Unpublished through the API: gone from the next search.
    app.ada()
        .faqs
        .unpublish_faq(pb::UnpublishFaqRequest { id: f.id.clone() })
        .await
        .unwrap();
    let gone = refund(&mut alice).await;
    assert!(gone.results.is_empty(), "{gone:?}");
}

#[tokio::test]
async fn users_and_staff_never_see_drafts_and_only_admins_write() {
    let app = spawn().await;
    let mut ada = app.ada().faqs;
    let draft = ada
        .create_faq(pb::CreateFaqRequest {
            faq: Some(entry("How do I get a refund?", "Ask us.")),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!draft.published);
    assert!(draft.number > 0);

    for mut who in [app.alice().faqs, app.sam().faqs] {
        for id in [draft.id.clone(), draft.number.to_string()] {
            expect_code(
                who.get_faq(pb::GetFaqRequest { id: id.clone() }).await,
                Code::NotFound,
            );
            expect_code(
                who.mark_faq_helpful(pb::MarkFaqHelpfulRequest { id }).await,
                Code::NotFound,
            );
        }
        let listed = who
            .list_faqs(pb::ListFaqsRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert!(listed.faqs.is_empty());
        let found = who
            .search_faqs(search("refund"))
            .await
            .unwrap()
            .into_inner();
        assert!(found.results.is_empty());
        expect_code(
            who.list_faqs(pb::ListFaqsRequest {
                show_unpublished: true,
                ..Default::default()
            })
            .await,
            Code::PermissionDenied,
        );
        expect_code(
            who.create_faq(pb::CreateFaqRequest {
                faq: Some(entry("Q?", "A.")),
                request_id: String::new(),
            })
            .await,
            Code::PermissionDenied,
        );
        expect_code(
            who.update_faq(pb::UpdateFaqRequest {
                faq: Some(pb::Faq {
                    id: draft.id.clone(),
                    question: "Mine now?".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["question"]),
                request_id: String::new(),
            })
            .await,
            Code::PermissionDenied,
        );
        for result in [
            who.publish_faq(pb::PublishFaqRequest {
                id: draft.id.clone(),
            })
            .await,
            who.unpublish_faq(pb::UnpublishFaqRequest {
                id: draft.id.clone(),
            })
            .await,
        ] {
            expect_code(result, Code::PermissionDenied);
        }
    }

    // Admins see drafts by UUID or number, and in lists when they ask.
    let by_number = ada
        .get_faq(pb::GetFaqRequest {
            id: draft.number.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_number.id, draft.id);
    let all = ada
        .list_faqs(pb::ListFaqsRequest {
            show_unpublished: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.faqs.len(), 1);

    // Published: everyone sees it; unpublished again: gone again.
    ada.publish_faq(pb::PublishFaqRequest {
        id: draft.id.clone(),
    })
    .await
    .unwrap();
    let mut alice = app.alice().faqs;
    alice
        .get_faq(pb::GetFaqRequest {
            id: draft.id.clone(),
        })
        .await
        .unwrap();
    ada.unpublish_faq(pb::UnpublishFaqRequest {
        id: draft.id.clone(),
    })
    .await
    .unwrap();
    expect_code(
        alice.get_faq(pb::GetFaqRequest { id: draft.id }).await,
        Code::NotFound,
    );
}

#[tokio::test]
async fn bad_input_is_refused_field_by_field() {
    let app = spawn().await;
    let mut ada = app.ada().faqs;
    let bad = ada
        .create_faq(pb::CreateFaqRequest {
            faq: Some(pb::Faq {
                question: " ".into(),
                answer: "a\0b".into(),
                category_id: "Not A Slug".into(),
                language_code: "english".into(),
                published: true,
                ..Default::default()
            }),
            request_id: "nope".into(),
        })
        .await;
    let status = expect_code(bad, Code::InvalidArgument);
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(
        fields,
        [
            "faq.answer",
            "faq.category_id",
            "faq.language_code",
            "faq.published",
            "faq.question",
            "request_id"
        ]
    );
    expect_violation(
        ada.create_faq(pb::CreateFaqRequest {
            faq: Some(pb::Faq {
                category_id: "no_such_category".into(),
                ..entry("Q?", "A.")
            }),
            request_id: String::new(),
        })
        .await,
        "faq.category_id",
    );
    for id in ["", "0", "FAQ-7", "12ab"] {
        expect_violation(ada.get_faq(pb::GetFaqRequest { id: id.into() }).await, "id");
    }
    expect_code(
        ada.get_faq(pb::GetFaqRequest {
            id: "424242".into(),
        })
        .await,
        Code::NotFound,
    );
    expect_violation(
        ada.update_faq(pb::UpdateFaqRequest {
            faq: Some(pb::Faq {
                id: "1".into(),
                ..Default::default()
            }),
            update_mask: mask(&["published", "view_count"]),
            request_id: String::new(),
        })
        .await,
        "update_mask",
    );
    let mut alice = app.alice().faqs;
    expect_violation(alice.search_faqs(search(" ")).await, "query");
    expect_violation(
        alice
            .search_faqs(pb::SearchFaqsRequest {
                page_token: "garbage".into(),
                ..search("refund")
            })
            .await,
        "page_token",
    );
    expect_violation(
        alice
            .list_faqs(pb::ListFaqsRequest {
                page_size: -1,
                category_id: "X".into(),
                ..Default::default()
            })
            .await,
        "category_id",
    );
}

#[tokio::test]
async fn admins_edit_with_a_mask_and_lists_page_by_sort_order() {
    let app = spawn().await;
    let mut ada = app.ada().faqs;
    let mut ids = Vec::new();
    for (i, order) in [30, 10, 20, 10].into_iter().enumerate() {
        let f = published(&app, &format!("Question {i}?"), "Answer.").await;
        let f = ada
            .update_faq(pb::UpdateFaqRequest {
                faq: Some(pb::Faq {
                    id: f.number.to_string(),
                    sort_order: order,
                    question: "ignored: not in the mask".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["sort_order"]),
                request_id: new_request_id(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(f.question, format!("Question {i}?"));
        ids.push((order, f.id));
    }
    ids.sort();
    let mut alice = app.alice().faqs;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = alice
            .list_faqs(pb::ListFaqsRequest {
                page_size: 3,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.faqs.into_iter().map(|f| (f.sort_order, f.id)));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen, ids);
    let other = alice
        .list_faqs(pb::ListFaqsRequest {
            category_id: "account".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(other.faqs.is_empty());
}

#[tokio::test]
async fn one_vote_per_person_changeable_and_withdrawable_with_exact_counts() {
    let app = spawn().await;
    let f = published(&app, "How do I get a refund?", "Tap Refund.").await;
    let id = || f.id.clone();
    let (mut alice, mut bob) = (app.alice().faqs, app.bob().faqs);

    let after = alice
        .mark_faq_helpful(pb::MarkFaqHelpfulRequest { id: id() })
        .await
        .unwrap();
    let after = after.into_inner();
    assert_eq!((after.helpful_count, after.not_helpful_count), (1, 0));
    assert_eq!(after.my_vote(), FaqVote::Helpful);
    // The same vote again: nothing changes.
    let again = alice
        .mark_faq_helpful(pb::MarkFaqHelpfulRequest { id: id() })
        .await
        .unwrap();
    assert_eq!(again.into_inner().helpful_count, 1);
    // Changed: moves from one count to the other.
    let changed = alice
        .mark_faq_not_helpful(pb::MarkFaqNotHelpfulRequest {
            id: f.number.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((changed.helpful_count, changed.not_helpful_count), (0, 1));
    assert_eq!(changed.my_vote(), FaqVote::NotHelpful);
    let bobs = bob
        .mark_faq_helpful(pb::MarkFaqHelpfulRequest { id: id() })
        .await
        .unwrap();
    let bobs = bobs.into_inner();
    assert_eq!((bobs.helpful_count, bobs.not_helpful_count), (1, 1));
    assert_eq!(bobs.my_vote(), FaqVote::Helpful);
    // Withdrawn: gone from the counts; withdrawing twice changes nothing.
    for _ in 0..2 {
        let cleared = alice
            .clear_faq_vote(pb::ClearFaqVoteRequest { id: id() })
            .await
            .unwrap();
        let cleared = cleared.into_inner();
        assert_eq!((cleared.helpful_count, cleared.not_helpful_count), (1, 0));
        assert_eq!(cleared.my_vote(), FaqVote::Unspecified);
    }
    // Services have no vote.
    expect_code(
        app.service()
            .faqs
            .mark_faq_helpful(pb::MarkFaqHelpfulRequest { id: id() })
            .await,
        Code::PermissionDenied,
    );
}

#[tokio::test]
async fn concurrent_votes_from_many_people_are_counted_exactly() {
    let app = spawn().await;
    let f = published(&app, "How do I get a refund?", "Tap Refund.").await;
    // 60 people; each votes helpful, then a third change to not helpful and
    // a sixth of those withdraw, all at once and each person twice over.
    let people: Vec<String> = (0..60).map(|_| Uuid::new_v4().to_string()).collect();
    let mut calls = Vec::new();
    for (i, who) in people.iter().enumerate() {
        let mut client = app.as_(who, Role::User).faqs;
        let id = f.id.clone();
        calls.push(tokio::spawn(async move {
            for _ in 0..2 {
                client
                    .mark_faq_helpful(pb::MarkFaqHelpfulRequest { id: id.clone() })
                    .await?;
            }
            if i % 3 == 0 {
                client
                    .mark_faq_not_helpful(pb::MarkFaqNotHelpfulRequest { id: id.clone() })
                    .await?;
            }
            if i % 6 == 0 {
                client
                    .clear_faq_vote(pb::ClearFaqVoteRequest { id })
                    .await?;
            }
            Ok::<_, tonic::Status>(())
        }));
    }
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let now = app
        .alice()
        .faqs
        .get_faq(pb::GetFaqRequest { id: f.id.clone() })
        .await
        .unwrap()
        .into_inner();
    // 60 voted; 20 (i % 3 == 0) changed; 10 of those (i % 6 == 0) withdrew.
    assert_eq!((now.helpful_count, now.not_helpful_count), (40, 10));
    let stored = app
        .count("SELECT count(*) FILTER (WHERE helpful) * 1000 + count(*) FILTER (WHERE NOT helpful) FROM faq_votes")
        .await;
    assert_eq!(stored, 40_010, "the counts equal the votes");
}

#[tokio::test]
async fn two_hundred_concurrent_views_are_all_counted() {
    let app = spawn().await;
    let f = published(&app, "How do I get a refund?", "Tap Refund.").await;
    let mut calls = Vec::new();
    for i in 0..200 {
        let mut client = if i % 2 == 0 {
            app.alice().faqs
        } else {
            app.bob().faqs
        };
        let id = if i % 3 == 0 {
            f.number.to_string()
        } else {
            f.id.clone()
        };
        calls.push(tokio::spawn(async move {
            client
                .get_faq(pb::GetFaqRequest { id })
                .await
                .map(|r| r.into_inner().view_count)
        }));
    }
    let mut shown = Vec::new();
    for call in calls {
        shown.push(call.await.unwrap().unwrap());
    }
    // Each reader's count includes its own view; the last one sees them all.
    assert!(shown.iter().all(|&n| (1..=200).contains(&n)));
    assert_eq!(shown.iter().max(), Some(&200));
    let after = app
        .alice()
        .faqs
        .get_faq(pb::GetFaqRequest { id: f.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.view_count, 201);
    let shards = app.count("SELECT count(*) FROM faq_views").await;
    assert!(shards > 1, "views spread over shards, got {shards} row(s)");
}

async fn jobs(
    app: &TestApp,
) -> TicketJobsServiceClient<tonic::service::interceptor::InterceptedService<Channel, Bearer>> {
    let channel = Channel::from_shared(app.addr.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    TicketJobsServiceClient::with_interceptor(
        channel,
        Bearer::token("scheduler-service", Role::Service),
    )
}

#[tokio::test]
async fn analytics_report_the_seven_and_thirty_days_before_the_run() {
    use helpdesk_kit::clock::Clock;
    let app = spawn().await;
    let start = app.clock.now();
    let f = published(&app, "How do I get a refund?", "Tap Refund.").await;
    let quiet = published(&app, "How do I change my phone number?", "Settings.").await;
    let as_of = start + Duration::days(40);
    let view = |days_before: i64, n: usize| {
        let app = &app;
        let id = f.id.clone();
        async move {
            app.clock.set(as_of - Duration::days(days_before));
            for _ in 0..n {
                app.alice()
                    .faqs
                    .get_faq(pb::GetFaqRequest { id: id.clone() })
                    .await
                    .unwrap();
            }
        }
    };
    view(35, 4).await; // outside both windows
    view(30, 2).await; // the first day of the 30-day window
    view(8, 3).await; // 30 only
    view(7, 5).await; // the first day of the 7-day window
    view(1, 1).await; // yesterday
    view(0, 6).await; // the run's own day: not yet
    let vote = |days_before: i64, who: &'static str, helpful: bool| {
        let app = &app;
        let id = f.id.clone();
        async move {
            app.clock.set(as_of - Duration::days(days_before));
            let mut c = app.as_(who, Role::User).faqs;
            if helpful {
                c.mark_faq_helpful(pb::MarkFaqHelpfulRequest { id })
                    .await
                    .unwrap();
            } else {
                c.mark_faq_not_helpful(pb::MarkFaqNotHelpfulRequest { id })
                    .await
                    .unwrap();
            }
        }
    };
    vote(20, ALICE, true).await; // 30 only
    vote(3, BOB, true).await; // 7 and 30
    vote(2, DAVE, false).await; // 7 and 30
    vote(40, SAM, true).await; // cast long ago...
    vote(5, SAM, false).await; // ...changed recently: counts on its new day
    app.clock.set(as_of);

    let run_id = Uuid::now_v7().to_string();
    let request = |fence: i64| pb::ComputeFaqAnalyticsRequest {
        run_id: run_id.clone(),
        fencing_token: fence,
        as_of_time: Some(to_timestamp(as_of)),
    };
    let mut jobs = jobs(&app).await;
    let done = jobs
        .compute_faq_analytics(request(1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.entries, 2);
    // Repeated: the same figures; a stale claim: refused.
    jobs.compute_faq_analytics(request(2)).await.unwrap();
    expect_code(jobs.compute_faq_analytics(request(1)).await, Code::Aborted);

    let mut ada = app.ada().faqs;
    let seen = ada
        .get_faq(pb::GetFaqRequest { id: f.id.clone() })
        .await
        .unwrap()
        .into_inner();
    let a = seen.analytics.expect("admins see analytics");
    assert_eq!(a.as_of_date, as_of.format("%Y-%m-%d").to_string());
    assert_eq!((a.views_last_7_days, a.views_last_30_days), (6, 11));
    assert_eq!((a.helpful_last_7_days, a.helpful_last_30_days), (1, 2));
    assert_eq!(
        (a.not_helpful_last_7_days, a.not_helpful_last_30_days),
        (2, 2)
    );
    // The total is untouched by the compaction of old shards into one row a day.
    assert_eq!(seen.view_count, 4 + 2 + 3 + 5 + 1 + 6 + 1);
    let old_rows = app
        .count(
            "SELECT count(*) FROM faq_views
              WHERE shard <> 0 AND day < (SELECT max(day) FROM faq_views) - 1",
        )
        .await;
    assert_eq!(old_rows, 0, "days before yesterday hold shard 0 only");
    let q = ada
        .get_faq(pb::GetFaqRequest { id: quiet.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(q.analytics.map(|a| a.views_last_30_days), Some(0));
    // Users and staff never see them.
    let user_view = app
        .alice()
        .faqs
        .get_faq(pb::GetFaqRequest { id: f.id.clone() })
        .await;
    assert!(user_view.unwrap().into_inner().analytics.is_none());
    // An older as-of does not replace the newer figures.
    let older = pb::ComputeFaqAnalyticsRequest {
        run_id: Uuid::now_v7().to_string(),
        fencing_token: 1,
        as_of_time: Some(to_timestamp(as_of - Duration::days(20))),
    };
    jobs.compute_faq_analytics(older).await.unwrap();
    let still = ada
        .get_faq(pb::GetFaqRequest { id: f.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still.analytics.unwrap().views_last_30_days, 11);
    // Only our own services run it.
    let mut sam = TicketJobsServiceClient::with_interceptor(
        Channel::from_shared(app.addr.clone())
            .unwrap()
            .connect()
            .await
            .unwrap(),
        Bearer::token(SAM, Role::Staff),
    );
    expect_code(
        sam.compute_faq_analytics(request(3)).await,
        Code::PermissionDenied,
    );
}

#[tokio::test]
async fn each_admin_change_is_published_as_its_event() {
    let app = spawn().await;
    let mut tap = app.tap().await;
    let mut ada = app.ada().faqs;
    let f = ada
        .create_faq(pb::CreateFaqRequest {
            faq: Some(entry("How do I get a refund?", "Tap Refund.")),
            request_id: new_request_id(),
        })
        .await
        .unwrap()
        .into_inner();
    ada.publish_faq(pb::PublishFaqRequest { id: f.id.clone() })
        .await
        .unwrap();
    // Publishing again is a no-op: no second event.
    ada.publish_faq(pb::PublishFaqRequest { id: f.id.clone() })
        .await
        .unwrap();
    ada.update_faq(pb::UpdateFaqRequest {
        faq: Some(pb::Faq {
            id: f.id.clone(),
            answer: "Open the ride, then tap Refund.".into(),
            sort_order: 0,
            ..Default::default()
        }),
        // sort_order is unchanged (0): only the answer is reported.
        update_mask: mask(&["answer", "sort_order"]),
        request_id: String::new(),
    })
    .await
    .unwrap();
    ada.unpublish_faq(pb::UnpublishFaqRequest { id: f.id.clone() })
        .await
        .unwrap();
    // Reads and votes say nothing.
    ada.get_faq(pb::GetFaqRequest { id: f.id.clone() })
        .await
        .unwrap();
    ada.mark_faq_helpful(pb::MarkFaqHelpfulRequest { id: f.id.clone() })
        .await
        .unwrap();

    let got = tap.take(4).await;
    let keys: Vec<&str> = got.iter().map(|e| e.routing_key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "faq.created",
            "faq.published",
            "faq.updated",
            "faq.unpublished"
        ]
    );
    let created: pb::FaqCreated = got[0].decode();
    let header = created.header.unwrap();
    assert_eq!(
        (header.actor_id.as_str(), header.actor_role.as_str()),
        (ADA, "admin")
    );
    let snap = created.faq.unwrap();
    assert_eq!(
        (snap.faq_id.as_str(), snap.published, snap.version),
        (f.id.as_str(), false, 1)
    );
    let published: pb::FaqPublished = got[1].decode();
    assert!(published.faq.unwrap().published);
    let updated: pb::FaqUpdated = got[2].decode();
    assert_eq!(updated.changed_fields, ["answer"]);
    assert_eq!(updated.faq.unwrap().version, 3);
    let unpublished: pb::FaqUnpublished = got[3].decode();
    assert!(!unpublished.faq.unwrap().published);
    tap.assert_quiet(std::time::Duration::from_millis(300))
        .await;
}
