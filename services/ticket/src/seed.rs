//! `ticket seed-demo`: creates a few demo tickets for the stand-in's demo
//! accounts, and a few published FAQ entries, through the running service's
//! own API, with fixed `request_id`s, so running it twice creates nothing new.

use helpdesk_kit::auth::{Minter, Role};
use helpdesk_proto::support::v1::{
    self as pb, faq_service_client::FaqServiceClient, ticket_service_client::TicketServiceClient,
};
use tonic::transport::Channel;

use crate::config::Config;

const ALICE: &str = "0a000000-0000-4000-8000-000000000001";
const BOB: &str = "0a000000-0000-4000-8000-000000000002";
const SAM: &str = "0b000000-0000-4000-8000-000000000001";
const ADA: &str = "0c000000-0000-4000-8000-000000000001";

/// (request_id, category, language, question, answer) of the demo FAQ.
const FAQS: [(&str, &str, &str, &str, &str); 5] = [
    (
        "5eed0000-0000-4000-8000-00000000fa01",
        "payment_issue",
        "en",
        "How do I get a refund for a ride?",
        "Open the ride in your trip history, tap Help, then Request a refund. Refunds go back \
         to the card you paid with within 5 business days.",
    ),
    (
        "5eed0000-0000-4000-8000-00000000fa02",
        "payment_issue",
        "en",
        "Why was I charged a cancellation fee?",
        "A cancellation fee applies when you cancel more than two minutes after a driver \
         accepted. If the driver was late or never came, ask for a refund from the ride.",
    ),
    (
        "5eed0000-0000-4000-8000-00000000fa03",
        "lost_item",
        "en",
        "I left something in the car. What do I do?",
        "Open the ride, tap Help, then Report a lost item: we put you in touch with the driver.",
    ),
    (
        "5eed0000-0000-4000-8000-00000000fa04",
        "account",
        "en",
        "How do I change my phone number?",
        "Go to Settings, Account, Phone number, and confirm the new number with the code we send.",
    ),
    (
        "5eed0000-0000-4000-8000-00000000fa05",
        "payment_issue",
        "pt",
        "Como peço o reembolso de uma corrida?",
        "Abra a corrida no histórico, toque em Ajuda e depois em Pedir reembolso.",
    ),
];

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
    let mut client =
        TicketServiceClient::new(Channel::from_shared(target.clone())?.connect().await?);
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
    faqs(target, &minter).await
}

/// Creates and publishes the demo FAQ entries as Ada (admin); publishing a
/// published entry changes nothing, so this too can run twice.
async fn faqs(target: String, minter: &Minter) -> anyhow::Result<()> {
    let mut client = FaqServiceClient::new(Channel::from_shared(target)?.connect().await?);
    let admin = minter.bearer(ADA, Role::Admin);
    for (request_id, category, language, question, answer) in FAQS {
        let mut create = tonic::Request::new(pb::CreateFaqRequest {
            faq: Some(pb::Faq {
                question: question.into(),
                answer: answer.into(),
                category_id: category.into(),
                language_code: language.into(),
                ..Default::default()
            }),
            request_id: request_id.into(),
        });
        create.metadata_mut().insert("authorization", admin.clone());
        let faq = client.create_faq(create).await?.into_inner();
        let mut publish = tonic::Request::new(pb::PublishFaqRequest { id: faq.id.clone() });
        publish
            .metadata_mut()
            .insert("authorization", admin.clone());
        client.publish_faq(publish).await?;
        println!("FAQ {}  {}  {}", faq.number, faq.id, faq.question);
    }
    Ok(())
}
