//! The in-app feed: listing, counts, marking read, and the live stream that
//! resumes from a cursor without losing or repeating an item.

use std::time::Duration;

use helpdesk_proto::support::v1::{self as pb, NotificationKind as K};
use tokio_stream::StreamExt;
use tonic::Streaming;

use crate::helpers::*;

/// Publishes a rating request for `ticket`: one notification for its user.
async fn rating_request(env: &TestEnv, ticket: &pb::Ticket, reminder: i32) {
    let (id, header, snapshot) = header_and_snapshot(ticket);
    env.publish(
        &id,
        &pb::RatingRequested {
            header: Some(header),
            ticket: Some(snapshot),
            reminder,
        },
    )
    .await;
}

async fn next(
    stream: &mut Streaming<pb::StreamNotificationsResponse>,
) -> pb::StreamNotificationsResponse {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("a stream message within 10 s")
        .expect("the stream is open")
        .expect("a message, not an error")
}

async fn unread(env: &TestEnv, who: &str) -> i64 {
    env.notifications_as(who, role_of(who))
        .get_unread_count(pb::GetUnreadCountRequest {})
        .await
        .unwrap()
        .into_inner()
        .unread_count
}

#[tokio::test]
async fn the_stream_delivers_live_and_resumes_from_the_cursor_with_exactly_what_was_missed() {
    let env = spawn().await;
    let ticket = env.alice_opens("Charged twice").await;
    wait_until("the receipt", || async { env.feed(ALICE).await.len() == 1 }).await;

    let mut stream = env
        .user(ALICE)
        .stream_notifications(pb::StreamNotificationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let first = next(&mut stream).await;
    assert!(first.notification.is_none());
    assert_eq!(
        first.unread_count, 1,
        "the stream starts with the true unread count"
    );

    // Live.
    rating_request(&env, &ticket, 0).await;
    let live = next(&mut stream).await;
    let live_item = live.notification.expect("a notification");
    assert_eq!(live_item.kind(), K::RatingRequested);
    assert_eq!(live.unread_count, 2);
    assert_eq!(live.cursor, live_item.cursor);

    // Disconnect; three notifications arrive meanwhile.
    drop(stream);
    for reminder in 1..=3 {
        rating_request(&env, &ticket, reminder).await;
    }
    wait_until("three more stored", || async {
        env.feed(ALICE).await.len() == 5
    })
    .await;

    // Reconnect with the cursor: exactly those three, oldest first.
    let mut resumed = env
        .user(ALICE)
        .stream_notifications(pb::StreamNotificationsRequest {
            cursor: live.cursor.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let head = next(&mut resumed).await;
    assert!(head.notification.is_none());
    assert_eq!(head.unread_count, 5);
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let message = next(&mut resumed).await;
        bodies.push(message.notification.expect("a notification").kind());
    }
    assert_eq!(bodies, [K::RatingReminder; 3]);
    // Nothing more: no repeats.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), resumed.next())
            .await
            .is_err(),
        "nothing beyond the missed three"
    );

    // Reading on another device updates the open stream's badge.
    env.user(ALICE)
        .mark_all_read(pb::MarkAllReadRequest {})
        .await
        .unwrap();
    let badge = next(&mut resumed).await;
    assert!(badge.notification.is_none());
    assert_eq!(badge.unread_count, 0);
}

#[tokio::test]
async fn listing_pages_newest_first_and_filters_by_unread_and_ticket() {
    let env = spawn().await;
    let first = env.alice_opens("First").await;
    let second = env.alice_opens("Second").await;
    for reminder in 0..3 {
        rating_request(&env, &first, reminder).await;
    }
    wait_until("five notifications", || async {
        env.feed(ALICE).await.len() == 5
    })
    .await;

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = env
            .user(ALICE)
            .list_notifications(pb::ListNotificationsRequest {
                page_size: 2,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.unread_count, 5);
        seen.extend(page.notifications);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 5);
    let cursors: Vec<i64> = seen.iter().map(|n| n.cursor.parse().unwrap()).collect();
    assert!(
        cursors.windows(2).all(|w| w[0] > w[1]),
        "newest first: {cursors:?}"
    );

    // By ticket, named by its human id in any case.
    let of_second = env
        .user(ALICE)
        .list_notifications(pb::ListNotificationsRequest {
            ticket_id: second.human_id.to_lowercase(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .notifications;
    assert_eq!(of_second.len(), 1);
    assert_eq!(of_second[0].ticket_id, second.id);

    // Mark one, then all of the first ticket's.
    let one = env
        .user(ALICE)
        .mark_read(pb::MarkReadRequest {
            ids: vec![of_second[0].id.clone()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one.unread_count, 4);
    let rest = env
        .user(ALICE)
        .mark_read(pb::MarkReadRequest {
            ticket_id: first.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.unread_count, 0);
    let unread_only = env
        .user(ALICE)
        .list_notifications(pb::ListNotificationsRequest {
            unread_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(unread_only.notifications.is_empty());
    assert!(env.feed(ALICE).await.iter().all(|n| n.read_time.is_some()));
    assert_eq!(unread(&env, ALICE).await, 0);
}
