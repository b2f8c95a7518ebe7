//! `request_id`: a retry returns the first result with no second effect.

use helpdesk_proto::support::v1::{self as pb, TicketStatus as S};
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn a_retried_create_returns_the_same_ticket_once() {
    let app = spawn().await;
    let mut alice = app.alice();
    let request = new_ticket(&new_request_id());
    let first = alice
        .tickets
        .create_ticket(request.clone())
        .await
        .unwrap()
        .into_inner();
    let retry = alice
        .tickets
        .create_ticket(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, retry);
    assert_eq!(app.count("SELECT count(*) FROM tickets").await, 1);
    assert_eq!(app.outbox_keys().await, vec!["ticket.created"]);

    // The same key with a different request is refused, and writes nothing.
    let mut changed = request.clone();
    changed.subject = "something else".into();
    expect_violation(alice.tickets.create_ticket(changed).await, "request_id");
    assert_eq!(app.count("SELECT count(*) FROM tickets").await, 1);

    // Keys belong to their caller: Bob's identical key is a separate request.
    let mut bob_request = request;
    bob_request.ride_id = BOB_RIDE.into();
    let bobs = app
        .bob()
        .tickets
        .create_ticket(bob_request)
        .await
        .unwrap()
        .into_inner();
    assert_ne!(bobs.id, first.id);
}

#[tokio::test]
async fn concurrent_duplicates_create_one_ticket() {
    let app = spawn().await;
    let request = new_ticket(&new_request_id());
    let calls = (0..8).map(|_| {
        let mut client = app.alice().tickets;
        let request = request.clone();
        tokio::spawn(async move { client.create_ticket(request).await.map(|r| r.into_inner()) })
    });
    let mut ids = std::collections::HashSet::new();
    for call in calls {
        ids.insert(call.await.unwrap().expect("every duplicate succeeds").id);
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(app.count("SELECT count(*) FROM tickets").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM outbox").await, 1);
}

#[tokio::test]
async fn a_retry_is_answered_even_while_a_dependency_is_down() {
    let mut app = spawn().await;
    let request = new_ticket(&new_request_id());
    let first = app
        .alice()
        .tickets
        .create_ticket(request.clone())
        .await
        .unwrap()
        .into_inner();
    app.stop_standin().await;
    let retry = app
        .alice()
        .tickets
        .create_ticket(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, retry);
    // A new request now needs the dependency.
    expect_code(
        app.alice().tickets.create_ticket(new_ticket("")).await,
        Code::Unavailable,
    );
}

#[tokio::test]
async fn retried_messages_and_ratings_have_one_effect() {
    let app = spawn().await;
    let (mut alice, mut sam) = (app.alice(), app.sam());
    let t = app.alice_ticket().await;

    let post = keyed_reply(&t.id, "Any news?");
    let m1 = alice
        .tickets
        .post_message(post.clone())
        .await
        .unwrap()
        .into_inner();
    let m2 = alice.tickets.post_message(post).await.unwrap().into_inner();
    assert_eq!(m1, m2);
    assert_eq!(app.count("SELECT count(*) FROM ticket_messages").await, 1);

    sam.tickets
        .update_ticket(set_status(&t.id, S::Resolved))
        .await
        .unwrap();
    let rate = pb::RateTicketRequest {
        ticket_id: t.id.clone(),
        rating: 5,
        feedback: "Quick and kind".into(),
        request_id: new_request_id(),
    };
    let r1 = alice
        .tickets
        .rate_ticket(rate.clone())
        .await
        .unwrap()
        .into_inner();
    let r2 = alice
        .tickets
        .rate_ticket(rate.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r1, r2);
    let rated = app
        .outbox_keys()
        .await
        .iter()
        .filter(|k| *k == "ticket.rated")
        .count();
    assert_eq!(rated, 1);
    // Without the key, rating again is refused: once only.
    let mut again = rate;
    again.request_id = String::new();
    expect_code(
        alice.tickets.rate_ticket(again).await,
        Code::FailedPrecondition,
    );
}

#[tokio::test]
async fn retried_updates_and_assignments_replay() {
    let app = spawn().await;
    let mut sam = app.sam();
    let t = app.alice_ticket().await;
    let mut update = set_status(&t.id, S::InProgress);
    update.request_id = new_request_id();
    let u1 = sam
        .tickets
        .update_ticket(update.clone())
        .await
        .unwrap()
        .into_inner();
    // Meanwhile the ticket moves on...
    sam.tickets
        .update_ticket(set_status(&t.id, S::WaitingUser))
        .await
        .unwrap();
    // ...and the retry still answers what the first call did, changing nothing.
    let u2 = sam
        .tickets
        .update_ticket(update)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(u1, u2);
    let now = sam
        .tickets
        .get_ticket(pb::GetTicketRequest { id: t.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now.status, S::WaitingUser as i32);
}

#[tokio::test]
async fn expired_keys_are_pruned() {
    let app = spawn().await;
    app.alice()
        .tickets
        .create_ticket(new_ticket(&new_request_id()))
        .await
        .unwrap();
    assert_eq!(app.count("SELECT count(*) FROM idempotency_keys").await, 1);
    let cutoff = chrono::Utc::now() - chrono::Duration::hours(48);
    assert_eq!(
        helpdesk_kit::idempotency::prune(&app.db.pool, cutoff)
            .await
            .unwrap(),
        0
    );
    sqlx::query("UPDATE idempotency_keys SET created_at = now() - interval '49 hours'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        helpdesk_kit::idempotency::prune(&app.db.pool, cutoff)
            .await
            .unwrap(),
        1
    );
}

/// Create claims its key in the statement that writes the ticket: a create
/// refused for its category leaves no key behind, so the same request runs
/// again once the category is active.
#[tokio::test]
async fn a_create_refused_for_its_category_keeps_no_key() {
    let app = spawn().await;
    let mut ada = app.ada().categories;
    let set_active = |active: bool| pb::UpdateCategoryRequest {
        category: Some(pb::Category {
            id: "ride_issue".into(),
            active: Some(active),
            ..Default::default()
        }),
        update_mask: mask(&["active"]),
        request_id: String::new(),
    };
    ada.update_category(set_active(false)).await.unwrap();
    let request = new_ticket(&new_request_id());
    expect_violation(
        app.alice().tickets.create_ticket(request.clone()).await,
        "category_id",
    );
    assert_eq!(app.count("SELECT count(*) FROM tickets").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM idempotency_keys").await, 0);
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE routing_key = 'ticket.created'")
            .await,
        0
    );

    ada.update_category(set_active(true)).await.unwrap();
    let created = app
        .alice()
        .tickets
        .create_ticket(request.clone())
        .await
        .unwrap()
        .into_inner();
    // And that key now replays, also once the category is retired again.
    ada.update_category(set_active(false)).await.unwrap();
    let retry = app
        .alice()
        .tickets
        .create_ticket(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created, retry);
    assert_eq!(app.count("SELECT count(*) FROM tickets").await, 1);
}

/// PostMessage claims its key in the statement that writes the message: eight
/// concurrent copies of one request post once, and each is answered with
/// that message.
#[tokio::test]
async fn concurrent_duplicate_messages_post_once() {
    let app = spawn().await;
    let t = app.alice_ticket().await;
    let post = keyed_reply(&t.id, "Any news?");
    let calls = (0..8).map(|_| {
        let mut client = app.alice().tickets;
        let post = post.clone();
        tokio::spawn(async move { client.post_message(post).await.map(|r| r.into_inner()) })
    });
    let mut ids = std::collections::HashSet::new();
    for call in calls {
        ids.insert(call.await.unwrap().expect("every duplicate succeeds").id);
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(app.count("SELECT count(*) FROM ticket_messages").await, 1);
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE routing_key = 'ticket.message_posted'")
            .await,
        1
    );
}

/// A retry finds the ticket as the first attempt left it: closed since, it
/// would refuse a new message, but the retry gets the first answer.
#[tokio::test]
async fn a_retried_message_is_answered_after_the_ticket_closed() {
    let app = spawn().await;
    let (mut alice, mut sam) = (app.alice(), app.sam());
    let t = app.alice_ticket().await;
    let post = keyed_reply(&t.id, "Thanks, all sorted.");
    let first = alice
        .tickets
        .post_message(post.clone())
        .await
        .unwrap()
        .into_inner();
    for status in [S::Resolved, S::Closed] {
        sam.tickets
            .update_ticket(set_status(&t.id, status))
            .await
            .unwrap();
    }
    let retry = alice
        .tickets
        .post_message(post.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, retry);
    // A new request is refused: the ticket is closed.
    let mut new = post;
    new.request_id = new_request_id();
    expect_code(
        alice.tickets.post_message(new).await,
        Code::FailedPrecondition,
    );
}

/// A user's reply to `ticket_id` carrying a fresh `request_id`.
fn keyed_reply(ticket_id: &str, body: &str) -> pb::PostMessageRequest {
    pb::PostMessageRequest {
        ticket_id: ticket_id.into(),
        body: body.into(),
        internal: false,
        request_id: new_request_id(),
        attachment_ids: Vec::new(),
    }
}
