//! SearchTickets: stemming, ranking, filters, keyset pages, who finds and
//! sees what, freshness, and bad input.

use std::collections::HashSet;

use helpdesk_proto::support::v1::{
    self as pb, SearchOrder, TicketStatus as S, ticket_search_result::Fragment,
};
use tonic::Code;

use crate::helpers::*;

fn query(q: &str) -> pb::SearchTicketsRequest {
    pb::SearchTicketsRequest {
        query: q.into(),
        ..Default::default()
    }
}

async fn search(client: &mut Tickets, req: pb::SearchTicketsRequest) -> pb::SearchTicketsResponse {
    client.search_tickets(req).await.unwrap().into_inner()
}

/// The ids of the tickets found (one page).
async fn found(client: &mut Tickets, req: pb::SearchTicketsRequest) -> Vec<String> {
    search(client, req)
        .await
        .results
        .into_iter()
        .map(|r| r.ticket.unwrap().id)
        .collect()
}

async fn file(client: &mut Tickets, user: &str, subject: &str, description: &str) -> pb::Ticket {
    client
        .create_ticket(pb::CreateTicketRequest {
            subject: subject.into(),
            description: description.into(),
            ..ticket_for(user)
        })
        .await
        .unwrap()
        .into_inner()
}

async fn post(client: &mut Tickets, ticket: &pb::Ticket, body: &str, internal: bool) -> String {
    client
        .post_message(pb::PostMessageRequest {
            ticket_id: ticket.id.clone(),
            body: body.into(),
            internal,
            request_id: String::new(),
            attachment_ids: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .id
}

/// Every fragment's text, highlighted ones in [brackets].
fn marked(fragments: &[Fragment]) -> String {
    fragments
        .iter()
        .map(|f| {
            if f.highlighted {
                format!("[{}]", f.text)
            } else {
                f.text.clone()
            }
        })
        .collect()
}

#[tokio::test]
async fn finds_a_ticket_by_a_stemmed_word_the_moment_it_is_created() {
    let app = spawn().await;
    let mut alice = app.alice();
    let t = alice
        .tickets
        .create_ticket(pb::CreateTicketRequest {
            subject: "Refunds never arrived".into(),
            description: "I was refunded twice on paper but my bank shows nothing.".into(),
            ..new_ticket("")
        })
        .await
        .unwrap()
        .into_inner();
    for q in ["refund", "REFUNDING", "refunds bank"] {
        let page = search(&mut alice.tickets, query(q)).await;
        assert_eq!(page.results.len(), 1, "{q}");
        let hit = &page.results[0];
        assert_eq!(hit.ticket.as_ref().unwrap().id, t.id);
        assert!(hit.relevance > 0.0);
        assert_eq!(page.order, SearchOrder::Relevance as i32);
    }
    let hit = &search(&mut alice.tickets, query("refund")).await.results[0];
    assert_eq!(marked(&hit.subject), "[Refunds] never arrived");
    assert!(
        marked(&hit.snippet).contains("[refunded]"),
        "{:?}",
        hit.snippet
    );
    assert_eq!(hit.message_id, "");
    assert!(
        found(&mut alice.tickets, query("umbrella"))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn the_best_match_comes_first() {
    let app = spawn().await;
    let mut sam = app.sam();
    let in_message = file(
        &mut sam.tickets,
        ALICE,
        "Question",
        "About a trip last week.",
    )
    .await;
    post(
        &mut sam.tickets,
        &in_message,
        "Did you lose a wallet?",
        false,
    )
    .await;
    let in_description = file(&mut sam.tickets, BOB, "Lost item", "My wallet is gone.").await;
    let in_subject = file(
        &mut sam.tickets,
        ALICE,
        "Wallet left in the car",
        "Brown leather wallet on the back seat.",
    )
    .await;
    let page = search(&mut sam.tickets, query("wallet")).await;
    let ids: Vec<&str> = page
        .results
        .iter()
        .map(|r| r.ticket.as_ref().unwrap().id.as_str())
        .collect();
    assert_eq!(ids, [&in_subject.id, &in_description.id, &in_message.id]);
    assert!(page.results[0].relevance > page.results[1].relevance);
    assert!(page.results[1].relevance > page.results[2].relevance);
}

#[tokio::test]
async fn filters_combine_with_the_query() {
    let app = spawn().await;
    let mut sam = app.sam();
    let ride = file(
        &mut sam.tickets,
        ALICE,
        "Airport trip",
        "Too long to the airport.",
    )
    .await;
    let payment = sam
        .tickets
        .create_ticket(pb::CreateTicketRequest {
            category_id: "payment_issue".into(),
            subject: "Airport fee".into(),
            description: "Charged an airport fee twice.".into(),
            ..ticket_for(BOB)
        })
        .await
        .unwrap()
        .into_inner();
    let assigned = file(
        &mut sam.tickets,
        BOB,
        "Airport pickup",
        "Driver at the airport.",
    )
    .await;
    sam.tickets
        .assign_ticket(pb::AssignTicketRequest {
            ticket_id: assigned.id.clone(),
            assignee_id: SUE.into(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    sam.tickets
        .update_ticket(set_status(&ride.id, S::Resolved))
        .await
        .unwrap();
    let _unrelated = file(&mut sam.tickets, BOB, "Broken seat", "Seat belt broken.").await;

    let with = |f: pb::SearchTicketsRequest| pb::SearchTicketsRequest {
        query: "airport".into(),
        ..f
    };
    let all = found(&mut sam.tickets, query("airport")).await;
    assert_eq!(all.len(), 3);
    let by_category = pb::SearchTicketsRequest {
        category_id: "payment_issue".into(),
        ..Default::default()
    };
    assert_eq!(
        found(&mut sam.tickets, with(by_category)).await,
        std::slice::from_ref(&payment.id)
    );
    let by_assignee = pb::SearchTicketsRequest {
        assignee_id: SUE.into(),
        ..Default::default()
    };
    assert_eq!(
        found(&mut sam.tickets, with(by_assignee)).await,
        std::slice::from_ref(&assigned.id)
    );
    let by_status = pb::SearchTicketsRequest {
        statuses: vec![S::Resolved.into()],
        ..Default::default()
    };
    assert_eq!(
        found(&mut sam.tickets, with(by_status)).await,
        std::slice::from_ref(&ride.id)
    );
    let open_of_bob = pb::SearchTicketsRequest {
        open: true,
        user_id: BOB.into(),
        ..Default::default()
    };
    let mut got = found(&mut sam.tickets, with(open_of_bob)).await;
    got.sort();
    let mut want = vec![payment.id, assigned.id];
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn pages_cover_every_match_once_in_either_order() {
    let app = spawn().await;
    let mut sam = app.sam();
    let mut all = HashSet::new();
    for i in 0..7 {
        // Some share a rank exactly (the id breaks the tie), some do not.
        let description = if i % 3 == 0 {
            "Charger forgotten, a phone charger.".to_owned()
        } else {
            format!("Left a charger in car {i}.")
        };
        let t = file(&mut sam.tickets, ALICE, &format!("Item {i}"), &description).await;
        all.insert(t.id);
    }
    file(&mut sam.tickets, ALICE, "Other", "Nothing to see.").await;
    for order in [SearchOrder::Relevance, SearchOrder::Newest] {
        let (mut seen, mut token, mut pages) = (Vec::new(), String::new(), 0);
        loop {
            let page = search(
                &mut sam.tickets,
                pb::SearchTicketsRequest {
                    page_size: 3,
                    page_token: token,
                    order: order.into(),
                    ..query("charger")
                },
            )
            .await;
            assert_eq!(page.order, order as i32);
            pages += 1;
            seen.extend(page.results.into_iter().map(|r| r.ticket.unwrap().id));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(pages, 3, "{order:?}");
        assert_eq!(seen.len(), 7, "{order:?}: {seen:?}");
        assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), all);
    }
}

#[tokio::test]
async fn users_find_only_their_own_tickets() {
    let app = spawn().await;
    let (mut alice, mut bob, mut sam) = (app.alice(), app.bob(), app.sam());
    let bobs = file(
        &mut sam.tickets,
        BOB,
        "Umbrella forgotten",
        "A red umbrella.",
    )
    .await;
    assert!(
        found(&mut alice.tickets, query("umbrella"))
            .await
            .is_empty()
    );
    assert_eq!(
        found(&mut bob.tickets, query("umbrella")).await,
        std::slice::from_ref(&bobs.id)
    );
    assert_eq!(found(&mut sam.tickets, query("umbrella")).await, [bobs.id]);
    expect_code(
        alice
            .tickets
            .search_tickets(pb::SearchTicketsRequest {
                user_id: BOB.into(),
                ..query("umbrella")
            })
            .await,
        Code::PermissionDenied,
    );
}

#[tokio::test]
async fn internal_notes_are_searched_and_quoted_for_staff_only() {
    let app = spawn().await;
    let (mut alice, mut sam) = (app.alice(), app.sam());
    let t = app.alice_ticket().await;
    let note = post(
        &mut sam.tickets,
        &t,
        "Possible chargeback, refund held.",
        true,
    )
    .await;
    // Only the note says "chargeback": the user finds nothing.
    assert!(
        found(&mut alice.tickets, query("chargeback"))
            .await
            .is_empty()
    );
    let staff = search(&mut sam.tickets, query("chargeback")).await;
    assert_eq!(staff.results.len(), 1);
    assert_eq!(staff.results[0].message_id, note);
    assert!(marked(&staff.results[0].snippet).contains("[chargeback]"));

    // Both a reply and the note say "refund": the user finds the ticket,
    // quoted from the reply, never from the note.
    let reply = post(&mut sam.tickets, &t, "Your refund is on its way.", false).await;
    let user = search(&mut alice.tickets, query("refund")).await;
    assert_eq!(user.results.len(), 1);
    let hit = &user.results[0];
    assert_eq!(hit.message_id, reply);
    let quoted = marked(&hit.snippet);
    assert!(quoted.contains("[refund]"), "{quoted}");
    assert!(
        !quoted.contains("chargeback") && !quoted.contains("held"),
        "{quoted}"
    );
    // A phrase only the note holds finds nothing either.
    assert!(
        found(&mut alice.tickets, query("\"refund held\""))
            .await
            .is_empty()
    );
    assert_eq!(
        found(&mut sam.tickets, query("\"refund held\"")).await,
        [t.id]
    );
}

#[tokio::test]
async fn a_message_makes_its_ticket_findable() {
    let app = spawn().await;
    let (mut alice, mut sam) = (app.alice(), app.sam());
    let t = app.alice_ticket().await;
    assert!(
        found(&mut alice.tickets, query("sunglasses"))
            .await
            .is_empty()
    );
    let reply = post(
        &mut alice.tickets,
        &t,
        "I also left my sunglasses there.",
        false,
    )
    .await;
    for client in [&mut alice.tickets, &mut sam.tickets] {
        let page = search(client, query("sunglasses")).await;
        assert_eq!(page.results.len(), 1);
        assert_eq!(page.results[0].message_id, reply);
        assert_eq!(
            marked(&page.results[0].snippet),
            "I also left my [sunglasses] there."
        );
    }
}

#[tokio::test]
async fn broad_queries_are_listed_newest_first_and_say_so() {
    let app = spawn().await;
    let mut sam = app.sam();
    // More matches than are ranked in full (RANK_AT_MOST), written directly.
    sqlx::query(
        "INSERT INTO tickets (id, number, human_id, user_id, category_id, subject, description,
                              priority, status, created_at, updated_at)
         SELECT gen_random_uuid(), 1000000 + n, 'TKT-ZZZZ' || lpad(n::text, 4, '0'),
                '0a000000-0000-4000-8000-000000000002', 'other', 'Zebra ' || n,
                'A zebra crossing.', 'low', 'closed',
                timestamptz '2020-01-01' + n * interval '1 minute',
                timestamptz '2020-01-01' + n * interval '1 minute'
         FROM generate_series(1, 2500) AS n",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE tickets")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let newest = file(
        &mut sam.tickets,
        BOB,
        "Zebra, zebra",
        "Another zebra, a zebra.",
    )
    .await;
    let page = search(&mut sam.tickets, query("zebra")).await;
    assert_eq!(page.order, SearchOrder::Newest as i32);
    assert_eq!(page.results.len(), 20);
    assert_eq!(page.results[0].ticket.as_ref().unwrap().id, newest.id);
    assert!(page.results.iter().all(|r| r.relevance == 0.0));
    // Asked for, relevance ranks them all all the same.
    let ranked = search(
        &mut sam.tickets,
        pb::SearchTicketsRequest {
            order: SearchOrder::Relevance.into(),
            ..query("zebra")
        },
    )
    .await;
    assert_eq!(ranked.order, SearchOrder::Relevance as i32);
    assert_eq!(ranked.results[0].ticket.as_ref().unwrap().id, newest.id);
}

#[tokio::test]
async fn bad_queries_and_tokens_are_field_violations() {
    let app = spawn().await;
    let mut sam = app.sam();
    let _t = file(&mut sam.tickets, ALICE, "Charger", "Phone charger left.").await;
    for (q, why) in [
        ("", "empty"),
        ("   ", "blank"),
        (&"x".repeat(201) as &str, "too long"),
        ("the and of", "only stop words"),
        ("-charger", "only exclusions"),
    ] {
        let status = expect_code(
            sam.tickets.search_tickets(query(q)).await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), ["query"], "{why}");
    }
    expect_violation(
        sam.tickets
            .search_tickets(pb::SearchTicketsRequest {
                page_token: "not-a-token".into(),
                ..query("charger")
            })
            .await,
        "page_token",
    );
    expect_violation(
        sam.tickets
            .search_tickets(pb::SearchTicketsRequest {
                page_size: -1,
                ..query("charger")
            })
            .await,
        "page_size",
    );
    expect_violation(
        sam.tickets
            .search_tickets(pb::SearchTicketsRequest {
                order: 9,
                ..query("charger")
            })
            .await,
        "order",
    );
    // A token from one query does not page another.
    file(&mut sam.tickets, ALICE, "Charger again", "Another charger.").await;
    let first = search(
        &mut sam.tickets,
        pb::SearchTicketsRequest {
            page_size: 1,
            ..query("charger")
        },
    )
    .await;
    assert!(!first.next_page_token.is_empty());
    expect_violation(
        sam.tickets
            .search_tickets(pb::SearchTicketsRequest {
                page_size: 1,
                page_token: first.next_page_token,
                ..query("phone")
            })
            .await,
        "page_token",
    );
}
