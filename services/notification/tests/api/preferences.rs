//! Preferences decide which channels a notification goes out on; mandatory
//! kinds ignore opt-outs; staff read every delivery record of a ticket.

use helpdesk_kit::auth::Role;
use helpdesk_proto::support::v1::{self as pb, Channel, DeliveryState, NotificationKind as K};
use tonic::Code;

use crate::helpers::*;

fn setting(kind: K, channel: Channel, enabled: bool) -> pb::ChannelSetting {
    pb::ChannelSetting {
        kind: kind.into(),
        channel: channel.into(),
        enabled,
        mandatory: false,
    }
}

fn enabled(prefs: &pb::Preferences, kind: K, channel: Channel) -> (bool, bool) {
    let s = prefs
        .channels
        .iter()
        .find(|s| s.kind() == kind && s.channel() == channel)
        .expect("listed");
    (s.enabled, s.mandatory)
}

#[tokio::test]
async fn opt_outs_skip_a_channel_and_mandatory_kinds_ignore_them() {
    let env = spawn_with(Setup {
        mandatory: "ticket_resolved:email",
        ..Setup::default()
    })
    .await;
    let alice = env.user(ALICE);
    let defaults = alice
        .clone()
        .get_preferences(pb::GetPreferencesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        defaults.channels.len(),
        14,
        "seven user kinds by email and push"
    );
    assert_eq!(
        enabled(&defaults, K::StaffReply, Channel::Push),
        (true, false)
    );
    assert_eq!(
        enabled(&defaults, K::TicketResolved, Channel::Email),
        (true, true)
    );
    // Staff are not mailed or buzzed for every new ticket unless they opt in.
    let sam = env
        .staff(SAM)
        .get_preferences(pb::GetPreferencesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(enabled(&sam, K::NewTicket, Channel::Email), (false, false));
    assert_eq!(enabled(&sam, K::NewTicket, Channel::Push), (false, false));
    assert_eq!(enabled(&sam, K::UserReply, Channel::Push), (true, false));

    // A mandatory pair cannot be turned off; in-app has no setting.
    let status = alice
        .clone()
        .update_preferences(pb::UpdatePreferencesRequest {
            preferences: Some(pb::Preferences {
                channels: vec![
                    setting(K::TicketResolved, Channel::Email, false),
                    setting(K::StaffReply, Channel::InApp, false),
                    setting(K::NewTicket, Channel::Email, true),
                ],
            }),
            update_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        [
            "preferences.channels[0].enabled",
            "preferences.channels[1].channel",
            "preferences.channels[2].kind"
        ]
    );

    // Alice turns off push for staff replies and email for resolutions.
    let updated = alice
        .clone()
        .update_preferences(pb::UpdatePreferencesRequest {
            preferences: Some(pb::Preferences {
                channels: vec![setting(K::StaffReply, Channel::Push, false)],
            }),
            update_mask: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        enabled(&updated, K::StaffReply, Channel::Push),
        (false, false)
    );
    assert_eq!(
        enabled(&updated, K::StaffReply, Channel::Email),
        (true, false)
    );

    let ticket = env.alice_opens("Charged twice").await;
    env.post(&ticket, SAM, Role::Staff, "Refunded", false).await;
    env.set_status(&ticket, SAM, pb::TicketStatus::Resolved)
        .await;
    wait_until("the resolution", || async {
        env.kinds(ALICE, &ticket).await.contains(&K::TicketResolved)
    })
    .await;

    // Sam reads the ticket's delivery records: what went where, and why not.
    let records = env
        .staff(SAM)
        .list_deliveries(pb::ListDeliveriesRequest {
            ticket_id: ticket.human_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .deliveries;
    let of = |kind: K, channel: Channel| {
        records
            .iter()
            .find(|d| d.kind() == kind && d.channel() == channel && d.recipient_id == ALICE)
            .unwrap_or_else(|| panic!("{kind:?} {channel:?} in {records:#?}"))
    };
    assert_eq!(
        of(K::StaffReply, Channel::InApp).state(),
        DeliveryState::Sent
    );
    let push = of(K::StaffReply, Channel::Push);
    assert_eq!(
        (push.state(), push.reason.as_str()),
        (DeliveryState::Skipped, "preference")
    );
    assert_ne!(
        of(K::StaffReply, Channel::Email).state(),
        DeliveryState::Skipped
    );
    assert_ne!(
        of(K::TicketResolved, Channel::Email).state(),
        DeliveryState::Skipped
    );
    // Sam's own "new ticket" email is off by default.
    let sam_email = records
        .iter()
        .find(|d| {
            d.kind() == K::NewTicket && d.channel() == Channel::Email && d.recipient_id == SAM
        })
        .expect("Sam's new-ticket email record");
    assert_eq!(sam_email.reason, "preference");
    // Declined channels are marked on the notification, not stored as
    // delivery rows (a new ticket told to every staff member wrote one each).
    // (The sender may skip queued rows for its own reasons, say no_gateway.)
    let declined_rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM deliveries WHERE state = 'skipped' AND reason = 'preference'",
    )
    .fetch_one(&env.db.pool)
    .await
    .unwrap();
    assert_eq!(declined_rows, 0);
}
