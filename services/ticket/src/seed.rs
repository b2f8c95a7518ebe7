//! `ticket seed-demo`: creates a few demo tickets for the stand-in's demo
//! accounts through the running service's own API, with fixed `request_id`s,
//! so running it twice creates nothing new.

use helpdesk_kit::auth::{Minter, Role};
use helpdesk_proto::support::v1::{self as pb, ticket_service_client::TicketServiceClient};
use tonic::transport::Channel;

use crate::config::Config;

const ALICE: &str = "0a000000-0000-4000-8000-000000000001";
const BOB: &str = "0a000000-0000-4000-8000-000000000002";
const SAM: &str = "0b000000-0000-4000-8000-000000000001";

struct Demo {
    request_id: &'static str,
    user: &'static str,
    ride: &'static str,
    category: &'static str,
    subject: &'static str,
    description: &'static str,
    priority: pb::TicketPriority,
}

const DEMOS: [Demo; 3] = [
    Demo {
        request_id: "5eed0000-0000-4000-8000-000000000001",
        user: ALICE,
        ride: "0d000000-0000-4000-8000-000000000001",
        category: "payment_issue",
        subject: "Charged twice for my ride",
        description: "My card shows two charges for the same trip yesterday evening.",
        priority: pb::TicketPriority::High,
    },
    Demo {
        request_id: "5eed0000-0000-4000-8000-000000000002",
        user: ALICE,
        ride: "",
        category: "account",
        subject: "Cannot change my phone number",
        description: "The app says the number is already in use.",
        priority: pb::TicketPriority::Medium,
    },
    Demo {
        request_id: "5eed0000-0000-4000-8000-000000000003",
        user: BOB,
        ride: "0d000000-0000-4000-8000-000000000003",
        category: "lost_item",
        subject: "Left my umbrella in the car",
        description: "Black umbrella, back seat.",
        priority: pb::TicketPriority::Low,
    },
];

pub async fn demo(config: &Config) -> anyhow::Result<()> {
    let target = helpdesk_kit::config::string_or("SEED_TARGET", "http://127.0.0.1:50051");
    let mut client = TicketServiceClient::new(Channel::from_shared(target)?.connect().await?);
    let minter = Minter::new(&config.common.auth);
    for demo in &DEMOS {
        let mut request = tonic::Request::new(pb::CreateTicketRequest {
            user_id: demo.user.into(),
            ride_id: demo.ride.into(),
            category_id: demo.category.into(),
            subject: demo.subject.into(),
            description: demo.description.into(),
            priority: demo.priority.into(),
            request_id: demo.request_id.into(),
        });
        request
            .metadata_mut()
            .insert("authorization", minter.bearer(SAM, Role::Staff));
        let ticket = client.create_ticket(request).await?.into_inner();
        println!("{}  {}  {}", ticket.human_id, ticket.id, ticket.subject);
    }
    Ok(())
}
