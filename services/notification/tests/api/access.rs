//! Nobody sees or changes what is not theirs; bad input is named field by
//! field.

use helpdesk_kit::auth::Role;
use helpdesk_proto::support::v1 as pb;
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn a_user_cannot_read_count_stream_or_mark_another_users_notifications() {
    let env = spawn().await;
    let ticket = env.alice_opens("Charged twice").await;
    wait_until("the receipt", || async { env.feed(ALICE).await.len() == 1 }).await;
    let alices = env.feed(ALICE).await[0].clone();

    // Bob names Alice's notification and ticket: nothing matches.
    let bob = env.user(BOB);
    let marked = bob
        .clone()
        .mark_read(pb::MarkReadRequest {
            ids: vec![alices.id.clone()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(marked.unread_count, 0);
    bob.clone()
        .mark_read(pb::MarkReadRequest {
            ticket_id: ticket.human_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let listed = bob
        .clone()
        .list_notifications(pb::ListNotificationsRequest {
            ticket_id: ticket.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.notifications.is_empty());
    assert_eq!(listed.unread_count, 0);
    // Alice's stays unread.
    assert!(env.feed(ALICE).await[0].read_time.is_none());

    // A service token has no feed; users read no delivery records.
    let service = env.notifications_as("rides-service", Role::Service);
    expect_code(
        service
            .clone()
            .get_unread_count(pb::GetUnreadCountRequest {})
            .await,
        Code::PermissionDenied,
    );
    expect_code(
        service
            .clone()
            .stream_notifications(pb::StreamNotificationsRequest::default())
            .await,
        Code::PermissionDenied,
    );
    expect_code(
        env.user(ALICE)
            .list_deliveries(pb::ListDeliveriesRequest {
                ticket_id: ticket.id.clone(),
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
    );
}

#[tokio::test]
async fn bad_input_is_invalid_argument_with_every_field_named() {
    let env = spawn().await;
    let alice = env.user(ALICE);
    let status = alice
        .clone()
        .mark_read(pb::MarkReadRequest {
            ids: vec!["0190b6a0-0000-7000-8000-000000000001".into(), "nope".into()],
            ticket_id: "TKT-ABC123".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(fields, ["ids[1]", "ticket_id"]);

    let status = alice
        .clone()
        .mark_read(pb::MarkReadRequest::default())
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["ids"]);
    let status = alice
        .clone()
        .mark_read(pb::MarkReadRequest {
            ticket_id: "TKT-1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["ticket_id"]);

    let status = alice
        .clone()
        .stream_notifications(pb::StreamNotificationsRequest {
            cursor: "yesterday".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["cursor"]);

    let status = alice
        .clone()
        .list_notifications(pb::ListNotificationsRequest {
            page_size: -1,
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(fields, ["page_size", "page_token"]);
}
