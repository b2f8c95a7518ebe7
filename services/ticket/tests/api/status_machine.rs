//! The status machine (docs/status-machine.md), every pair over the wire.

use helpdesk_proto::support::v1::{self as pb, TicketStatus as S};
use tonic::Code;

use crate::helpers::*;

const ALL: [S; 5] = [
    S::Open,
    S::InProgress,
    S::WaitingUser,
    S::Resolved,
    S::Closed,
];

fn legal(from: S, to: S) -> bool {
    from == to
        || matches!(
            (from, to),
            (
                S::Open,
                S::InProgress | S::WaitingUser | S::Resolved | S::Closed
            ) | (S::InProgress, S::WaitingUser | S::Resolved | S::Closed)
                | (S::WaitingUser, S::InProgress | S::Resolved | S::Closed)
                | (S::Resolved, S::InProgress | S::Closed)
        )
}

/// A new ticket moved to `status` along a legal path.
async fn ticket_in(app: &TestApp, status: S) -> pb::Ticket {
    let t = app.alice_ticket().await;
    if status == S::Open {
        return t;
    }
    app.sam()
        .tickets
        .update_ticket(set_status(&t.id, status))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn every_transition_is_allowed_or_refused_as_documented() {
    let app = spawn().await;
    let mut sam = app.sam();
    for from in ALL {
        for to in ALL {
            let t = ticket_in(&app, from).await;
            let result = sam.tickets.update_ticket(set_status(&t.id, to)).await;
            if legal(from, to) {
                let after = result
                    .unwrap_or_else(|e| panic!("{from:?} -> {to:?} refused: {e:?}"))
                    .into_inner();
                assert_eq!(after.status, to as i32);
            } else {
                let status = expect_code(result, Code::FailedPrecondition);
                let name = |s: S| {
                    s.as_str_name()
                        .trim_start_matches("TICKET_STATUS_")
                        .to_lowercase()
                };
                assert!(
                    status.message().contains(&name(from)) && status.message().contains(&name(to)),
                    "message must name both states: {}",
                    status.message()
                );
                let unchanged = sam
                    .tickets
                    .get_ticket(pb::GetTicketRequest { id: t.id.clone() })
                    .await
                    .unwrap()
                    .into_inner();
                assert_eq!(unchanged.status, from as i32);
                assert_eq!(unchanged.etag, t.etag);
            }
        }
    }
}

#[tokio::test]
async fn resolution_and_closing_stamp_their_times_and_reopening_clears_resolution() {
    let app = spawn().await;
    let mut sam = app.sam();
    let t = app.alice_ticket().await;
    assert!(t.resolved_at.is_none() && t.closed_at.is_none());
    let resolved = sam
        .tickets
        .update_ticket(set_status(&t.id, S::Resolved))
        .await
        .unwrap()
        .into_inner();
    assert!(resolved.resolved_at.is_some());
    let reopened = sam
        .tickets
        .update_ticket(set_status(&t.id, S::InProgress))
        .await
        .unwrap()
        .into_inner();
    assert!(reopened.resolved_at.is_none());
    let closed = sam
        .tickets
        .update_ticket(set_status(&t.id, S::Closed))
        .await
        .unwrap()
        .into_inner();
    assert!(closed.closed_at.is_some());
    // Closed is terminal for every kind of edit.
    let bump = pb::UpdateTicketRequest {
        ticket: Some(pb::Ticket {
            id: t.id.clone(),
            priority: pb::TicketPriority::Low.into(),
            ..Default::default()
        }),
        update_mask: mask(&["priority"]),
        request_id: String::new(),
    };
    expect_code(
        sam.tickets.update_ticket(bump).await,
        Code::FailedPrecondition,
    );
    expect_code(
        sam.tickets
            .assign_ticket(pb::AssignTicketRequest {
                ticket_id: t.id.clone(),
                assignee_id: SAM.into(),
                request_id: String::new(),
            })
            .await,
        Code::FailedPrecondition,
    );
}

fn reply(ticket: &pb::Ticket, internal: bool) -> pb::PostMessageRequest {
    pb::PostMessageRequest {
        ticket_id: ticket.id.clone(),
        body: "Thanks, looking into it.".into(),
        internal,
        request_id: String::new(),
        attachment_ids: Vec::new(),
    }
}

async fn current(app: &TestApp, id: &str) -> pb::Ticket {
    app.sam()
        .tickets
        .get_ticket(pb::GetTicketRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn replies_drive_the_status_and_the_first_response() {
    let app = spawn().await;
    let (mut sam, mut alice) = (app.sam(), app.alice());
    let t = app.alice_ticket().await;

    // An internal note neither answers the user nor moves the ticket.
    sam.tickets.post_message(reply(&t, true)).await.unwrap();
    let after_note = current(&app, &t.id).await;
    assert_eq!(after_note.status, S::Open as i32);
    assert!(after_note.first_response_at.is_none());

    // The first staff reply: open -> waiting_user, first response stamped.
    app.clock.advance(chrono::Duration::minutes(5));
    sam.tickets.post_message(reply(&t, false)).await.unwrap();
    let answered = current(&app, &t.id).await;
    assert_eq!(answered.status, S::WaitingUser as i32);
    let first = answered.first_response_at.expect("first response");

    // The user answers: waiting_user -> in_progress.
    alice.tickets.post_message(reply(&t, false)).await.unwrap();
    assert_eq!(current(&app, &t.id).await.status, S::InProgress as i32);

    // A later staff reply moves it again but keeps the first response time.
    app.clock.advance(chrono::Duration::minutes(5));
    sam.tickets.post_message(reply(&t, false)).await.unwrap();
    let later = current(&app, &t.id).await;
    assert_eq!(later.status, S::WaitingUser as i32);
    assert_eq!(later.first_response_at, Some(first));

    // A user reply reopens a resolved ticket.
    sam.tickets
        .update_ticket(set_status(&t.id, S::Resolved))
        .await
        .unwrap();
    alice.tickets.post_message(reply(&t, false)).await.unwrap();
    let reopened = current(&app, &t.id).await;
    assert_eq!(reopened.status, S::InProgress as i32);
    assert!(reopened.resolved_at.is_none());

    // Nobody writes on a closed ticket.
    sam.tickets
        .update_ticket(set_status(&t.id, S::Closed))
        .await
        .unwrap();
    let messages_before = app.count("SELECT count(*) FROM ticket_messages").await;
    expect_code(
        alice.tickets.post_message(reply(&t, false)).await,
        Code::FailedPrecondition,
    );
    expect_code(
        sam.tickets.post_message(reply(&t, true)).await,
        Code::FailedPrecondition,
    );
    assert_eq!(
        app.count("SELECT count(*) FROM ticket_messages").await,
        messages_before
    );

    let keys = app.outbox_keys().await;
    let posted = keys
        .iter()
        .filter(|k| *k == "ticket.message_posted")
        .count();
    assert_eq!(posted, 5, "{keys:?}");
}

/// Sixteen replies at once, staff and user alternately, to one ticket. Each
/// must be decided on the ticket as the reply before it left it: all land,
/// their events carry the versions one after another (two replies decided
/// on the same version would carry the same one, the second overwriting
/// the first's change), and the status is the last reply's doing.
#[tokio::test]
async fn concurrent_replies_each_build_on_the_one_before() {
    let app = spawn().await;
    let t = app.alice_ticket().await;
    let calls: Vec<_> = (0..16)
        .map(|i| {
            let mut client = if i % 2 == 0 { app.sam() } else { app.alice() }.tickets;
            let request = reply(&t, false);
            tokio::spawn(async move { client.post_message(request).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().expect("every reply lands");
    }
    let events: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT payload FROM outbox WHERE routing_key = 'ticket.message_posted' ORDER BY id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    let mut posted: Vec<pb::MessagePosted> = events
        .iter()
        .map(|p| <pb::MessagePosted as prost::Message>::decode(&p[..]).unwrap())
        .collect();
    posted.sort_by_key(|e| e.ticket.as_ref().unwrap().version);
    let versions: Vec<i64> = posted
        .iter()
        .map(|e| e.ticket.as_ref().unwrap().version)
        .collect();
    let first = versions[0];
    assert_eq!(
        versions,
        (first..first + 16).collect::<Vec<_>>(),
        "each reply on its own version"
    );
    let stored: i64 = sqlx::query_scalar("SELECT version FROM tickets")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        stored,
        first + 15,
        "the ticket is at the last reply's version"
    );
    let last = &posted[15];
    let expected = match last.author_role() {
        pb::AuthorRole::Staff => S::WaitingUser,
        _ => S::InProgress,
    };
    assert_eq!(
        current(&app, &t.id).await.status,
        expected as i32,
        "the last reply ({:?}) set the status",
        last.author_role()
    );
}
