//! BatchAssignTickets: many AssignTicket requests in one transaction, each
//! answered on its own (as AssignTicket would answer it), idempotent per
//! item, for our own services only, and refused as a whole when malformed.

use helpdesk_kit::auth::Role;
use helpdesk_proto::{
    google::rpc::Status as ItemError,
    support::v1::{self as pb, batch_assign_tickets_result::Result as Item},
};
use prost::Message;
use tonic::Code;
use tonic_types::pb::BadRequest;

use crate::helpers::{
    ALICE, As, SAM, SUE, TestApp, UMA_INACTIVE_STAFF, UNKNOWN, expect_code, expect_violation,
    new_request_id, set_status, spawn, violated_fields,
};

fn assign(ticket_id: &str, assignee_id: &str, request_id: &str) -> pb::AssignTicketRequest {
    pb::AssignTicketRequest {
        ticket_id: ticket_id.into(),
        assignee_id: assignee_id.into(),
        request_id: request_id.into(),
    }
}

fn batch(requests: Vec<pb::AssignTicketRequest>) -> pb::BatchAssignTicketsRequest {
    pb::BatchAssignTicketsRequest { requests }
}

async fn send(
    c: &mut As,
    requests: Vec<pb::AssignTicketRequest>,
) -> Vec<Result<pb::Ticket, ItemError>> {
    c.tickets
        .batch_assign_tickets(batch(requests))
        .await
        .expect("the batch call succeeds")
        .into_inner()
        .results
        .into_iter()
        .map(|r| match r.result.expect("every result is set") {
            Item::Ticket(t) => Ok(t),
            Item::Error(e) => Err(e),
        })
        .collect()
}

#[track_caller]
fn ok(result: &Result<pb::Ticket, ItemError>) -> &pb::Ticket {
    result
        .as_ref()
        .unwrap_or_else(|e| panic!("expected a ticket, got {e:?}"))
}

#[track_caller]
fn error(result: &Result<pb::Ticket, ItemError>, code: Code) -> &ItemError {
    match result {
        Ok(t) => panic!("expected {code:?}, got the ticket {t:?}"),
        Err(e) => {
            assert_eq!(Code::from(e.code), code, "{e:?}");
            e
        }
    }
}

/// The fields an item's INVALID_ARGUMENT names (its `google.rpc.BadRequest`).
fn item_fields(e: &ItemError) -> Vec<String> {
    e.details
        .iter()
        .filter_map(|any| BadRequest::decode(any.value.as_slice()).ok())
        .flat_map(|b| b.field_violations.into_iter().map(|v| v.field))
        .collect()
}

async fn assigned_events(app: &TestApp) -> i64 {
    app.count("SELECT count(*) FROM outbox WHERE routing_key = 'ticket.assigned'")
        .await
}

async fn closed_ticket(app: &TestApp) -> pb::Ticket {
    let t = app.alice_ticket().await;
    app.sam()
        .tickets
        .update_ticket(set_status(&t.id, pb::TicketStatus::Closed))
        .await
        .expect("close");
    t
}

#[tokio::test]
async fn each_item_of_a_batch_is_applied_or_refused_on_its_own() {
    let app = spawn().await;
    let (first, second) = (app.alice_ticket().await, app.alice_ticket().await);
    let closed = closed_ticket(&app).await;
    let before = assigned_events(&app).await;

    let results = send(
        &mut app.service(),
        vec![
            assign(&first.id, SAM, ""),
            assign(UNKNOWN, SAM, ""),
            assign(&closed.id, SAM, ""),
            assign(&second.id, ALICE, ""),
            assign(&second.human_id.to_lowercase(), UMA_INACTIVE_STAFF, ""),
            assign(&second.human_id, SUE, ""),
        ],
    )
    .await;

    assert_eq!(results.len(), 6, "one result per request, in order");
    assert_eq!(ok(&results[0]).assignee_id, SAM);
    assert_eq!(ok(&results[0]).id, first.id);
    error(&results[1], Code::NotFound);
    error(&results[2], Code::FailedPrecondition);
    // As AssignTicket alone: the assignee is the field at fault, named
    // relative to the item.
    let refused = error(&results[3], Code::InvalidArgument);
    assert_eq!(item_fields(refused), ["assignee_id"]);
    let inactive = error(&results[4], Code::InvalidArgument);
    assert_eq!(item_fields(inactive), ["assignee_id"]);
    assert_eq!(ok(&results[5]).assignee_id, SUE);
    assert_eq!(ok(&results[5]).id, second.id, "found by its human id");

    // Exactly the applied items were written, each with its event.
    assert_eq!(assigned_events(&app).await, before + 2);
    let mut staff = app.sam();
    for (ticket, assignee) in [(&first, SAM), (&second, SUE)] {
        let now = staff
            .tickets
            .get_ticket(pb::GetTicketRequest {
                id: ticket.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(now.assignee_id, assignee);
        assert_ne!(now.etag, ticket.etag, "the version moved");
    }
    let closed_now = staff
        .tickets
        .get_ticket(pb::GetTicketRequest {
            id: closed.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(closed_now.assignee_id, "", "a refused item changes nothing");
}

#[tokio::test]
async fn items_naming_the_same_ticket_apply_in_order() {
    let app = spawn().await;
    let t = app.alice_ticket().await;
    let results = send(
        &mut app.service(),
        vec![
            assign(&t.id, SAM, ""),
            assign(&t.id, SUE, ""),
            assign(&t.id, SUE, ""),
        ],
    )
    .await;
    let (a, b, c) = (ok(&results[0]), ok(&results[1]), ok(&results[2]));
    assert_eq!((a.assignee_id.as_str(), b.assignee_id.as_str()), (SAM, SUE));
    assert_ne!(a.etag, b.etag, "each change has its own version");
    assert_eq!(b.etag, c.etag, "assigning the holder again changes nothing");
    assert_eq!(
        app.outbox_keys().await,
        ["ticket.created", "ticket.assigned", "ticket.assigned"]
    );
    // The events carry each change's own snapshot, in order.
    let payloads: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT payload FROM outbox WHERE routing_key = 'ticket.assigned' ORDER BY id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    let events: Vec<pb::TicketAssigned> = payloads
        .iter()
        .map(|p| pb::TicketAssigned::decode(p.as_slice()).unwrap())
        .collect();
    assert_eq!(
        events
            .iter()
            .map(|e| (e.previous_assignee_id.as_str(), e.assignee_id.as_str()))
            .collect::<Vec<_>>(),
        [("", SAM), (SAM, SUE)]
    );
    assert_eq!(events[1].ticket.as_ref().unwrap().assignee_id, SUE);
}

#[tokio::test]
async fn a_retried_batch_applies_each_item_once() {
    let app = spawn().await;
    let (first, second, third) = (
        app.alice_ticket().await,
        app.alice_ticket().await,
        app.alice_ticket().await,
    );
    let ids: Vec<String> = (0..4).map(|_| new_request_id()).collect();
    let requests = vec![
        assign(&first.id, SAM, &ids[0]),
        assign(&second.id, SUE, &ids[1]),
        assign(&third.id, UMA_INACTIVE_STAFF, &ids[2]),
        assign(UNKNOWN, SAM, &ids[3]),
    ];
    let mut service = app.service();
    let once = send(&mut service, requests.clone()).await;
    let events = assigned_events(&app).await;
    let keys = app.count("SELECT count(*) FROM idempotency_keys").await;

    // Meanwhile someone else moves the first ticket: the retry must not
    // move it back.
    app.sam()
        .tickets
        .assign_ticket(assign(&first.id, SUE, ""))
        .await
        .unwrap();
    let events = events + 1;

    let twice = send(&mut service, requests.clone()).await;
    assert_eq!(ok(&twice[0]), ok(&once[0]), "answered from the record");
    assert_eq!(ok(&twice[1]), ok(&once[1]));
    // Failed items were not recorded (as a rolled-back AssignTicket): they
    // run again, and fail again the same way.
    error(&twice[2], Code::InvalidArgument);
    error(&twice[3], Code::NotFound);
    assert_eq!(assigned_events(&app).await, events, "nothing applied twice");
    assert_eq!(
        app.count("SELECT count(*) FROM idempotency_keys").await,
        keys,
        "only the applied items hold keys"
    );
    assert_eq!(keys, 2);

    // Each item's key is AssignTicket's: the single call with the same
    // request is answered from the batch's record, and the reverse.
    let single = service
        .tickets
        .assign_ticket(requests[1].clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(&single, ok(&once[1]));
    let solo = assign(&third.id, SAM, &new_request_id());
    let alone = service
        .tickets
        .assign_ticket(solo.clone())
        .await
        .unwrap()
        .into_inner();
    let events = events + 1;
    let again = send(&mut service, vec![solo]).await;
    assert_eq!(ok(&again[0]), &alone);
    assert_eq!(assigned_events(&app).await, events);

    // The same request id for a different request is that item's error.
    let reused = send(&mut service, vec![assign(&second.id, SAM, &ids[1])]).await;
    let e = error(&reused[0], Code::InvalidArgument);
    assert_eq!(item_fields(e), ["request_id"]);
}

#[tokio::test]
async fn only_our_own_services_assign_in_batches() {
    let app = spawn().await;
    let t = app.alice_ticket().await;
    let request = || batch(vec![assign(&t.id, SAM, "")]);
    for mut caller in [
        app.alice(),
        app.sam(),
        app.ada(),
        app.as_("payments-service", Role::Service),
    ] {
        expect_code(
            caller.tickets.batch_assign_tickets(request()).await,
            Code::PermissionDenied,
        );
    }
    assert_eq!(
        assigned_events(&app).await,
        0,
        "refused calls write nothing"
    );
    app.service()
        .tickets
        .batch_assign_tickets(request())
        .await
        .expect("our own service");
    assert_eq!(assigned_events(&app).await, 1);
}

#[tokio::test]
async fn a_malformed_batch_is_refused_whole_naming_each_item() {
    let app = spawn().await;
    let t = app.alice_ticket().await;
    let mut service = app.service();
    let repeated = new_request_id();

    let status = expect_code(
        service
            .tickets
            .batch_assign_tickets(batch(vec![
                assign(&t.id, SAM, &repeated),
                assign("not a ticket", SAM, ""),
                assign(&t.id, SUE, &repeated),
                assign(&t.id, "nobody", ""),
                assign(&t.id, SAM, "x"),
            ]))
            .await,
        Code::InvalidArgument,
    );
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(
        fields,
        [
            "requests[1].ticket_id",
            "requests[2].request_id",
            "requests[3].assignee_id",
            "requests[4].request_id",
        ]
    );
    assert_eq!(assigned_events(&app).await, 0, "nothing of it applied");

    expect_violation(
        service
            .tickets
            .batch_assign_tickets(batch(Vec::new()))
            .await,
        "requests",
    );
    expect_violation(
        service
            .tickets
            .batch_assign_tickets(batch(vec![assign(&t.id, SAM, ""); 101]))
            .await,
        "requests",
    );
    service
        .tickets
        .batch_assign_tickets(batch(vec![assign(&t.id, SAM, ""); 100]))
        .await
        .expect("100 is the most");
}
