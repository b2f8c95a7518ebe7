//! Faults: the database going away mid-flight. Calls fail as UNAVAILABLE
//! (retryable), nothing is half-written, and everything recovers, events
//! included. The outage is a TCP proxy this test cuts, so the shared
//! PostgreSQL other tests use is untouched.

use std::time::{Duration, Instant};

use helpdesk_proto::support::v1 as pb;
use tonic::Code;

use crate::helpers::*;

#[tokio::test]
async fn a_database_outage_is_unavailable_half_writes_nothing_and_recovers() {
    let app = spawn_with(Setup {
        database_proxy: true,
        ..Setup::default()
    })
    .await;
    let database = app.database.as_ref().expect("proxied database");
    let mut tap = app.tap().await;
    let first = app.alice_ticket().await;
    let first_event = tap.take(1).await.remove(0).message_id;

    database.down().await;
    // Callers are told promptly, not left hanging: a generous bound, far
    // above any pool or connect timeout, only catches a hang.
    let retry = new_ticket(&new_request_id());
    let (created, read) = tokio::time::timeout(Duration::from_secs(60), async {
        let created = app.alice().tickets.create_ticket(retry.clone()).await;
        let read = app
            .alice()
            .tickets
            .get_ticket(pb::GetTicketRequest {
                id: first.id.clone(),
            })
            .await;
        (created, read)
    })
    .await
    .expect("callers were left waiting on a dead database");
    let status = expect_code(created, Code::Unavailable);
    assert!(!status.message().contains("SELECT") && !status.message().contains("INSERT"));
    expect_code(read, Code::Unavailable);

    database.up();
    // The client retries its request: it succeeds, once.
    let deadline = Instant::now() + Duration::from_secs(15);
    let created = loop {
        match app.alice().tickets.create_ticket(retry.clone()).await {
            Ok(response) => break response.into_inner(),
            Err(status) if status.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => panic!("did not recover: {status:?}"),
        }
    };
    let again = app
        .alice()
        .tickets
        .create_ticket(retry)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.id, created.id);
    assert_eq!(app.count("SELECT count(*) FROM tickets").await, 2);
    assert_eq!(app.count("SELECT count(*) FROM outbox").await, 2);

    // The relay reconnected on its own and publishes the new event. The cut
    // may have come between the first event's confirm and its "sent" mark:
    // then it is published again (at least once; consumers dedupe by id).
    loop {
        let received = tap.take(1).await.remove(0);
        let event: pb::TicketCreated = received.decode();
        if event.ticket.unwrap().ticket_id == created.id {
            break;
        }
        assert_eq!(
            received.message_id, first_event,
            "only a redelivery may come first"
        );
    }
}
