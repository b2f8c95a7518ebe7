//! Foreign references validated against the (stand-in) accounts and rides
//! services, and what happens when they are down or slow.

use std::time::Duration;

use helpdesk_kit::auth::Role;
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn unknown_or_deactivated_users_are_invalid_arguments() {
    let app = spawn().await;
    let mut sam = app.sam();
    expect_violation(
        sam.tickets.create_ticket(ticket_for(UNKNOWN)).await,
        "user_id",
    );
    expect_violation(
        sam.tickets.create_ticket(ticket_for(CAROL_INACTIVE)).await,
        "user_id",
    );
    assert_eq!(app.count("SELECT count(*) FROM tickets").await, 0);
}

#[tokio::test]
async fn a_token_for_an_unknown_or_deactivated_account_is_told_so_in_its_own_terms() {
    let app = spawn().await;
    // Neither sends user_id: the problem is the caller's own account, not a field.
    for (who, says) in [
        (UNKNOWN, "your account does not exist"),
        (CAROL_INACTIVE, "your account is deactivated"),
    ] {
        let status = expect_code(
            app.as_(who, Role::User)
                .tickets
                .create_ticket(new_ticket(""))
                .await,
            Code::PermissionDenied,
        );
        assert_eq!(status.message(), says);
        assert!(violated_fields(&status).is_empty());
    }
    assert_eq!(app.count("SELECT count(*) FROM tickets").await, 0);
}

#[tokio::test]
async fn rides_must_exist_and_be_the_users_own() {
    let app = spawn().await;
    let mut alice = app.alice();
    let mut other = new_ticket("");
    other.ride_id = BOB_RIDE.into();
    let status = expect_code(
        alice.tickets.create_ticket(other.clone()).await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["ride_id"]);
    let mut unknown = new_ticket("");
    unknown.ride_id = UNKNOWN.into();
    expect_violation(alice.tickets.create_ticket(unknown).await, "ride_id");
    // Unknown user and unknown ride are reported together.
    let mut both = ticket_for(UNKNOWN);
    both.ride_id = UNKNOWN.into();
    let status = expect_code(
        app.sam().tickets.create_ticket(both).await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), vec!["user_id", "ride_id"]);
    assert_eq!(app.count("SELECT count(*) FROM tickets").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM outbox").await, 0);
}

#[tokio::test]
async fn a_stopped_dependency_is_unavailable_and_nothing_is_written() {
    let mut app = spawn().await;
    app.stop_standin().await;
    let status = expect_code(
        app.alice().tickets.create_ticket(new_ticket("")).await,
        Code::Unavailable,
    );
    assert!(
        status.message().contains("unavailable"),
        "{}",
        status.message()
    );
    assert_eq!(app.count("SELECT count(*) FROM tickets").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM outbox").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM idempotency_keys").await, 0);
}

#[tokio::test]
async fn a_slow_dependency_hits_the_deadline_and_is_unavailable() {
    // A minute's delay against a 100 ms deadline: the call can only end in
    // time by giving up at the deadline (no wall-clock bound to flake on).
    let app = spawn_with(Setup {
        standin_delay: Duration::from_secs(60),
        platform_timeout: Some(Duration::from_millis(100)),
        ..Setup::default()
    })
    .await;
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        app.alice().tickets.create_ticket(new_ticket("")),
    )
    .await
    .expect("the deadline was not applied");
    expect_code(result, Code::Unavailable);
    assert_eq!(app.count("SELECT count(*) FROM tickets").await, 0);
}

#[tokio::test]
async fn a_ride_must_be_the_ticket_users_whoever_files_it() {
    let app = spawn().await;
    // Staff and services filing for Bob cannot attach Alice's ride.
    for mut caller in [app.sam(), app.service()] {
        let mut request = ticket_for(BOB);
        request.ride_id = ALICE_RIDE.into();
        let status = expect_code(
            caller.tickets.create_ticket(request).await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), vec!["ride_id"]);
    }
    assert_eq!(app.count("SELECT count(*) FROM tickets").await, 0);
    // For Alice herself it is fine.
    let mut request = ticket_for(ALICE);
    request.ride_id = ALICE_RIDE.into();
    app.sam().tickets.create_ticket(request).await.unwrap();
}

#[tokio::test]
async fn drivers_file_tickets_about_the_rides_they_drove() {
    let app = spawn().await;
    let mut dan = app.as_(DAN_DRIVER, Role::User);
    let mut request = new_ticket("");
    request.category_id = "driver_issue".into();
    for ride in [ALICE_RIDE, DAVE_RIDE] {
        request.ride_id = ride.into();
        let ticket = dan
            .tickets
            .create_ticket(request.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (ticket.user_id.as_str(), ticket.ride_id.as_str()),
            (DAN_DRIVER, ride)
        );
    }
    // Staff filing for a driver: the same rule.
    let mut for_dina = ticket_for(DINA_DRIVER);
    for_dina.ride_id = ALICE_CANCELLED_RIDE.into();
    app.sam().tickets.create_ticket(for_dina).await.unwrap();
    // Not a ride Dan drove.
    request.ride_id = BOB_RIDE.into();
    expect_violation(dan.tickets.create_ticket(request).await, "ride_id");
}

#[tokio::test]
async fn tickets_about_a_cancelled_ride_are_accepted() {
    let app = spawn().await;
    let mut request = new_ticket("");
    request.ride_id = ALICE_CANCELLED_RIDE.into();
    request.subject = "Charged a cancellation fee for a no-show driver".into();
    let ticket = app
        .alice()
        .tickets
        .create_ticket(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ticket.ride_id, ALICE_CANCELLED_RIDE);
}
