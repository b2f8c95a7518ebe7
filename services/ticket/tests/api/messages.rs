//! Messages and internal notes, and ratings.

use helpdesk_proto::support::v1::{self as pb, TicketStatus as S};
use tonic::Code;

use crate::helpers::*;

fn post(ticket: &pb::Ticket, body: &str, internal: bool) -> pb::PostMessageRequest {
    pb::PostMessageRequest {
        ticket_id: ticket.id.clone(),
        body: body.into(),
        internal,
        request_id: String::new(),
        attachment_ids: Vec::new(),
    }
}

#[tokio::test]
async fn internal_notes_are_for_staff_eyes_only() {
    let app = spawn().await;
    let (mut alice, mut sam) = (app.alice(), app.sam());
    let t = app.alice_ticket().await;
    let public = sam
        .tickets
        .post_message(post(&t, "We are on it", false))
        .await
        .unwrap()
        .into_inner();
    let note = sam
        .tickets
        .post_message(post(&t, "Driver has 3 similar reports", true))
        .await
        .unwrap()
        .into_inner();
    assert!(note.internal);
    assert_eq!(note.author_role, pb::AuthorRole::Staff as i32);
    assert_eq!(note.author_id, SAM);

    let list = |client: &mut Tickets| {
        let mut client = client.clone();
        let id = t.id.clone();
        async move {
            client
                .list_messages(pb::ListMessagesRequest {
                    ticket_id: id,
                    page_size: 0,
                    page_token: String::new(),
                })
                .await
                .unwrap()
                .into_inner()
                .messages
        }
    };
    assert_eq!(list(&mut alice.tickets).await, vec![public.clone()]);
    assert_eq!(
        list(&mut sam.tickets).await,
        vec![public.clone(), note.clone()]
    );

    let get = |id: &str| pb::GetMessageRequest {
        ticket_id: t.id.clone(),
        message_id: id.into(),
    };
    expect_code(
        alice.tickets.get_message(get(&note.id)).await,
        Code::NotFound,
    );
    assert_eq!(
        sam.tickets
            .get_message(get(&note.id))
            .await
            .unwrap()
            .into_inner(),
        note
    );
    assert_eq!(
        alice
            .tickets
            .get_message(get(&public.id))
            .await
            .unwrap()
            .into_inner(),
        public
    );
    expect_code(
        alice.tickets.get_message(get(UNKNOWN)).await,
        Code::NotFound,
    );
}

/// The original's flat `GET /api/support/messages/{id}/`: GetMessage
/// without a ticket id finds the message by its id alone, with the same
/// rules as within its ticket.
#[tokio::test]
async fn a_message_is_found_by_its_id_alone_by_whoever_may_see_it() {
    let app = spawn().await;
    let (mut alice, mut bob, mut sam) = (app.alice(), app.bob(), app.sam());
    let mut rides = app.as_("rides-service", helpdesk_kit::auth::Role::Service);
    let t = app.alice_ticket().await;
    let reply = alice
        .tickets
        .post_message(post(&t, "Still waiting", false))
        .await
        .unwrap()
        .into_inner();
    let note = sam
        .tickets
        .post_message(post(&t, "Refund approved", true))
        .await
        .unwrap()
        .into_inner();
    let by_id = |id: &str| pb::GetMessageRequest {
        ticket_id: String::new(),
        message_id: id.into(),
    };

    // The owner and staff read the reply; staff alone read the note.
    for client in [&mut alice, &mut sam, &mut rides] {
        let got = client.tickets.get_message(by_id(&reply.id)).await.unwrap();
        assert_eq!(got.into_inner(), reply);
    }
    let got = sam.tickets.get_message(by_id(&note.id)).await.unwrap();
    assert_eq!(got.into_inner(), note);

    // Another user's message, a note, and a missing message answer alike:
    // nothing tells bob (or alice, for the note) that it exists.
    let missing = expect_code(
        bob.tickets.get_message(by_id(UNKNOWN)).await,
        Code::NotFound,
    );
    for (mut client, id) in [
        (bob.tickets.clone(), &reply.id),
        (bob.tickets.clone(), &note.id),
        (alice.tickets.clone(), &note.id),
        (rides.tickets.clone(), &note.id),
    ] {
        let status = expect_code(client.get_message(by_id(id)).await, Code::NotFound);
        assert_eq!(
            status.message(),
            missing.message().replace(UNKNOWN, id),
            "the same answer as for a missing message"
        );
    }
}

#[tokio::test]
async fn messages_page_oldest_first() {
    let app = spawn().await;
    let mut alice = app.alice();
    let t = app.alice_ticket().await;
    let mut posted = Vec::new();
    for i in 0..5 {
        app.clock.advance(chrono::Duration::seconds(1));
        posted.push(
            alice
                .tickets
                .post_message(post(&t, &format!("message {i}"), false))
                .await
                .unwrap()
                .into_inner()
                .id,
        );
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = alice
            .tickets
            .list_messages(pb::ListMessagesRequest {
                ticket_id: t.id.clone(),
                page_size: 2,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.messages.into_iter().map(|m| m.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, posted);
}

#[tokio::test]
async fn the_owner_rates_a_resolved_ticket_once() {
    let app = spawn().await;
    let (mut alice, mut sam) = (app.alice(), app.sam());
    let t = app.alice_ticket().await;
    let rate = |rating: i32| pb::RateTicketRequest {
        ticket_id: t.id.clone(),
        rating,
        feedback: "Sorted quickly".into(),
        request_id: String::new(),
    };
    let refused = expect_code(
        alice.tickets.rate_ticket(rate(5)).await,
        Code::FailedPrecondition,
    );
    assert!(refused.message().contains("open"), "{}", refused.message());

    sam.tickets
        .update_ticket(set_status(&t.id, S::Resolved))
        .await
        .unwrap();
    let rated = alice
        .tickets
        .rate_ticket(rate(4))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rated.rating, 4);
    assert_eq!(rated.rating_feedback, "Sorted quickly");
    assert!(rated.rated_at.is_some());
    expect_code(
        alice.tickets.rate_ticket(rate(1)).await,
        Code::FailedPrecondition,
    );

    // Closed tickets can be rated too (a different ticket).
    let t2 = app.alice_ticket().await;
    sam.tickets
        .update_ticket(set_status(&t2.id, S::Closed))
        .await
        .unwrap();
    let mut r = rate(3);
    r.ticket_id = t2.id.clone();
    r.feedback = String::new();
    let rated = alice.tickets.rate_ticket(r).await.unwrap().into_inner();
    assert_eq!(rated.rating_feedback, "");
    assert!(
        app.outbox_keys()
            .await
            .iter()
            .filter(|k| *k == "ticket.rated")
            .count()
            == 2
    );
}
