//! What callers hit when they use the API as a newcomer would: ids read off
//! a phone call, generous page sizes, categories created without every
//! field, and "my open tickets" in one listing.

use helpdesk_proto::support::v1 as pb;

use crate::helpers::*;

#[tokio::test]
async fn human_ids_work_in_any_letter_case_wherever_a_ticket_id_is_taken() {
    let app = spawn().await;
    let ticket = app.alice_ticket().await;
    let lower = ticket.human_id.to_lowercase();
    let mixed = format!("tkt-{}", &ticket.human_id[4..]);
    let mut alice = app.alice();
    for id in [&lower, &mixed] {
        let got = alice
            .tickets
            .get_ticket(pb::GetTicketRequest { id: id.clone() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.id, ticket.id);
    }
    alice
        .tickets
        .post_message(pb::PostMessageRequest {
            ticket_id: lower.clone(),
            body: "Any news?".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let messages = alice
        .tickets
        .list_messages(pb::ListMessagesRequest {
            ticket_id: lower.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(messages.messages.len(), 1);
    let updated = app
        .sam()
        .tickets
        .update_ticket(set_status(&lower, pb::TicketStatus::InProgress))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.id, ticket.id);
}

#[tokio::test]
async fn a_page_size_above_the_maximum_is_served_as_the_maximum() {
    let app = spawn().await;
    let ticket = app.alice_ticket().await;
    // 120 tickets and 120 messages, written directly: only the page size matters here.
    sqlx::query(
        "INSERT INTO tickets (id, number, human_id, user_id, category_id, subject, description,
                              priority, status, created_at, updated_at)
         SELECT gen_random_uuid(), 1000 + n, 'TKT-ZZZ' || lpad(n::text, 3, '0'), user_id,
                category_id, subject, description, priority, status,
                created_at - n * interval '1 second', updated_at
         FROM tickets, generate_series(1, 120) AS n",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO ticket_messages (id, ticket_id, author_id, author_role, body, created_at)
         SELECT gen_random_uuid(), $1::uuid, $2::uuid, 'user', 'm' || n, now() + n * interval '1 second'
         FROM generate_series(1, 120) AS n",
    )
    .bind(&ticket.id)
    .bind(ALICE)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let mut alice = app.alice();
    for page_size in [101, 1000, i32::MAX] {
        let page = alice
            .tickets
            .list_tickets(pb::ListTicketsRequest {
                page_size,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.tickets.len(), 100, "page_size {page_size}");
        assert!(!page.next_page_token.is_empty());
        let page = alice
            .tickets
            .list_messages(pb::ListMessagesRequest {
                ticket_id: ticket.id.clone(),
                page_size,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.messages.len(), 100, "page_size {page_size}");
        assert!(!page.next_page_token.is_empty());
    }
}

#[tokio::test]
async fn a_category_created_without_active_is_active() {
    let app = spawn().await;
    let created = app
        .ada()
        .categories
        .create_category(pb::CreateCategoryRequest {
            category: Some(pb::Category {
                id: "safety".into(),
                name: "Safety".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.active, Some(true));
    // Users see it and can file tickets in it.
    let mut request = new_ticket("");
    request.category_id = "safety".into();
    app.alice().tickets.create_ticket(request).await.unwrap();
    // An update naming `active` must say which.
    let result = app
        .ada()
        .categories
        .update_category(pb::UpdateCategoryRequest {
            category: Some(pb::Category {
                id: "safety".into(),
                ..Default::default()
            }),
            update_mask: mask(&["active"]),
            request_id: String::new(),
        })
        .await;
    expect_violation(result, "category.active");
}

#[tokio::test]
async fn my_open_tickets_are_one_listing_and_tokens_stay_bound_to_the_statuses() {
    let app = spawn().await;
    let mut sam = app.sam();
    let mut tickets = Vec::new();
    for status in [
        pb::TicketStatus::Open,
        pb::TicketStatus::InProgress,
        pb::TicketStatus::WaitingUser,
        pb::TicketStatus::Resolved,
        pb::TicketStatus::Closed,
    ] {
        app.clock.advance(chrono::Duration::seconds(1));
        let t = app.alice_ticket().await;
        if status != pb::TicketStatus::Open {
            sam.tickets
                .update_ticket(set_status(&t.id, status))
                .await
                .unwrap();
        }
        tickets.push(t.id);
    }
    // Bob's open ticket never shows in Alice's listing.
    app.bob()
        .tickets
        .create_ticket(ticket_for(""))
        .await
        .unwrap();
    let mut alice = app.alice();
    let mut list = async |req: pb::ListTicketsRequest| {
        let page = alice.tickets.list_tickets(req).await?.into_inner();
        Ok::<_, tonic::Status>((
            page.tickets.into_iter().map(|t| t.id).collect::<Vec<_>>(),
            page.next_page_token,
        ))
    };
    let newest_first = |ids: &[String]| ids.iter().rev().cloned().collect::<Vec<_>>();

    let (open, _) = list(pb::ListTicketsRequest {
        open: true,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(open, newest_first(&tickets[..3]));

    let (some, _) = list(pb::ListTicketsRequest {
        statuses: vec![
            pb::TicketStatus::Closed.into(),
            pb::TicketStatus::Open.into(),
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(some, vec![tickets[4].clone(), tickets[0].clone()]);

    // The group and a status add up.
    let (open_or_resolved, _) = list(pb::ListTicketsRequest {
        open: true,
        statuses: vec![pb::TicketStatus::Resolved.into()],
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(open_or_resolved, newest_first(&tickets[..4]));

    // Pages of the open group, and a token refused for other statuses.
    let (first, token) = list(pb::ListTicketsRequest {
        open: true,
        page_size: 2,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(first.len(), 2);
    let (second, last) = list(pb::ListTicketsRequest {
        open: true,
        page_size: 2,
        page_token: token.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!([first, second].concat(), open);
    assert!(last.is_empty());
    let result = list(pb::ListTicketsRequest {
        statuses: vec![pb::TicketStatus::Closed.into()],
        page_size: 2,
        page_token: token,
        ..Default::default()
    })
    .await;
    let status = expect_code(
        result.map(tonic::Response::new),
        tonic::Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["page_token"]);
}
