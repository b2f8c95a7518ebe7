//! The stand-in over real gRPC: started in-process on a free port, called
//! through the generated tonic clients with a service token, as the ticket
//! service will call it.

use std::time::Duration;

use helpdesk_kit::auth::Role;
use helpdesk_proto::platform::{
    accounts::v1::{
        GetUserRequest, ListStaffRequest, User, accounts_service_client::AccountsServiceClient,
    },
    rides::v1::{GetRideRequest, RideStatus, rides_service_client::RidesServiceClient},
};
use helpdesk_testkit::bearer;
use platform_standin::{DemoData, Options};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{Code, Request, transport::Channel};

const ALICE: &str = "0a000000-0000-4000-8000-000000000001";
const BOB: &str = "0a000000-0000-4000-8000-000000000002";
const UNKNOWN: &str = "0f000000-0000-4000-8000-000000000099";

/// A running stand-in and a channel to it.
struct Standin {
    addr: std::net::SocketAddr,
    channel: Channel,
    stop: oneshot::Sender<()>,
    server: JoinHandle<anyhow::Result<()>>,
}

impl Standin {
    async fn start(options: Options) -> Self {
        helpdesk_kit::telemetry::init_for_tests();
        let listener = helpdesk_kit::server::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(platform_standin::run(
            listener,
            DemoData::demo(),
            options,
            async move {
                let _ = stopped.await;
            },
        ));
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Self {
            addr,
            channel,
            stop,
            server,
        }
    }

    fn accounts(&self) -> AccountsServiceClient<Channel> {
        AccountsServiceClient::new(self.channel.clone())
    }

    fn rides(&self) -> RidesServiceClient<Channel> {
        RidesServiceClient::new(self.channel.clone())
    }

    /// Stops the server and checks it stopped cleanly.
    async fn stop(self) {
        drop(self.channel);
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.server)
            .await
            .expect("server stops promptly")
            .expect("server task does not panic")
            .expect("server stops without error");
    }
}

/// A request carrying a service token, as the ticket service sends.
fn authed<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", bearer("ticket-service", Role::Service));
    request
}

fn get_user(id: &str) -> Request<GetUserRequest> {
    authed(GetUserRequest { id: id.to_owned() })
}

fn list_staff(page_size: i32, page_token: &str) -> Request<ListStaffRequest> {
    authed(ListStaffRequest {
        page_size,
        page_token: page_token.to_owned(),
    })
}

fn ids(users: &[User]) -> Vec<&str> {
    users.iter().map(|u| u.id.as_str()).collect()
}

const STAFF: [&str; 5] = [
    "0b000000-0000-4000-8000-000000000001",
    "0b000000-0000-4000-8000-000000000002",
    "0b000000-0000-4000-8000-000000000003",
    "0b000000-0000-4000-8000-000000000004",
    "0c000000-0000-4000-8000-000000000001",
];

#[tokio::test]
async fn reflection_lists_exactly_the_services_served() {
    let standin = Standin::start(Options::default()).await;
    let listed = helpdesk_testkit::reflected_services(standin.addr)
        .await
        .unwrap();
    assert_eq!(
        listed,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
            "platform.accounts.v1.AccountsService",
            "platform.rides.v1.RidesService",
        ]
    );
    standin.stop().await;
}

#[tokio::test]
async fn get_user_returns_the_seeded_account() {
    let standin = Standin::start(Options::default()).await;

    let alice = standin
        .accounts()
        .get_user(get_user(ALICE))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(alice.id, ALICE);
    assert_eq!(alice.email, "alice@example.com");
    assert_eq!(alice.locale, "en-GB");
    assert_eq!(alice.push_tokens, ["push-alice-1"]);
    assert!(alice.active);
    assert!(!alice.is_staff);
    assert!(!alice.display_name.is_empty());
    assert!(alice.create_time.is_some());

    let bob = standin
        .accounts()
        .get_user(get_user(BOB))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bob.locale, "fr-FR");

    standin.stop().await;
}

#[tokio::test]
async fn get_user_rejects_unknown_and_malformed_ids_and_missing_tokens() {
    let standin = Standin::start(Options::default()).await;
    let mut accounts = standin.accounts();

    let status = accounts.get_user(get_user(UNKNOWN)).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    let status = accounts.get_user(get_user("not-a-uuid")).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    let status = accounts
        .get_user(Request::new(GetUserRequest {
            id: ALICE.to_owned(),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

#[tokio::test]
async fn list_staff_returns_every_staff_account_in_id_order() {
    let standin = Standin::start(Options::default()).await;
    let mut accounts = standin.accounts();

    let page = accounts
        .list_staff(list_staff(0, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&page.staff), STAFF);
    assert!(page.staff.iter().all(|u| u.is_staff));
    assert!(
        page.staff
            .iter()
            .any(|u| u.id == "0b000000-0000-4000-8000-000000000004" && !u.active),
        "former staff (uma) is listed too"
    );
    assert_eq!(page.next_page_token, "");
}

#[tokio::test]
async fn list_staff_paginates() {
    let standin = Standin::start(Options::default()).await;
    let mut accounts = standin.accounts();

    let first = accounts
        .list_staff(list_staff(2, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&first.staff), STAFF[..2]);
    assert_ne!(first.next_page_token, "");

    let second = accounts
        .list_staff(list_staff(2, &first.next_page_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&second.staff), STAFF[2..4]);
    assert_ne!(second.next_page_token, "");

    let third = accounts
        .list_staff(list_staff(2, &second.next_page_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&third.staff), STAFF[4..]);
    assert_eq!(third.next_page_token, "", "the last page says so");

    for (page_size, token) in [(-1, ""), (2, "garbage")] {
        let status = accounts
            .list_staff(list_staff(page_size, token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    }
}

#[tokio::test]
async fn get_ride_returns_rider_and_status() {
    let standin = Standin::start(Options::default()).await;
    let mut rides = standin.rides();

    let ride = rides
        .get_ride(authed(GetRideRequest {
            id: "0d000000-0000-4000-8000-000000000004".to_owned(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ride.rider_id, "0a000000-0000-4000-8000-000000000004");
    assert_eq!(ride.status(), RideStatus::InProgress);
    assert!(ride.driver_id.starts_with("0e000000-"));
    assert!(ride.requested_at.is_some() && ride.started_at.is_some());
    assert!(ride.completed_at.is_none());

    let ride = rides
        .get_ride(authed(GetRideRequest {
            id: "0d000000-0000-4000-8000-000000000002".to_owned(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ride.rider_id, ALICE);
    assert_eq!(ride.status(), RideStatus::Cancelled);

    for (id, code) in [
        (UNKNOWN, Code::NotFound),
        ("not-a-uuid", Code::InvalidArgument),
    ] {
        let status = rides
            .get_ride(authed(GetRideRequest { id: id.to_owned() }))
            .await
            .unwrap_err();
        assert_eq!(status.code(), code, "{status:?}");
    }
}

#[tokio::test]
async fn delay_makes_a_call_miss_the_callers_deadline() {
    // A minute's delay against a 100 ms deadline: the call can only end in
    // time by giving up at the deadline (no wall-clock bound to flake on).
    let standin = Standin::start(Options::with_delay(Duration::from_secs(60))).await;

    let mut request = get_user(ALICE);
    request.set_timeout(Duration::from_millis(100));
    let status = tokio::time::timeout(
        Duration::from_secs(30),
        standin.accounts().get_user(request),
    )
    .await
    .expect("gave up at the deadline, long before the stand-in answered")
    .expect_err("the stand-in answers after the deadline");

    // tonic 0.14 reports its own expired `grpc-timeout` as CANCELLED
    // ("Timeout expired"), not DEADLINE_EXCEEDED; other gRPC stacks send the
    // latter. Callers must treat both as "the dependency is too slow".
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
}
