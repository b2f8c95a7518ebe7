//! The two limits that are not the database's: an empty unary gRPC call
//! through the ticket service's server stack, and the broker's persistent
//! publish with confirms.

use helpdesk_events::amqp;
use helpdesk_testkit::{amqp_url, delete_broker_objects, unique_exchange};
use lapin::{
    BasicProperties, Channel,
    options::{BasicPublishOptions, ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions},
    types::FieldTable,
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use uuid::Uuid;

use super::fixture::Fixture;

/// grpc.health.v1.Health/Check on the ticket service's port: the same
/// connection, HTTP/2 and tonic server, and the same tower layers (trace
/// span, gRPC-Web, in-flight count, metrics, the auth layer, which lets
/// health through without verifying a token), but no JWT check, no
/// handler work and no database.
pub async fn empty_call(f: &Fixture, caller: usize) -> anyhow::Result<()> {
    HealthClient::new(f.channel(caller))
        .check(HealthCheckRequest::default())
        .await?;
    Ok(())
}

/// A durable exchange bound to one quorum queue, on a channel in confirm
/// mode: a persistent message is confirmed once the queue has it on disk,
/// as the relay's are.
pub struct Broker {
    channel: Channel,
    exchange: String,
    queue: String,
    body: Vec<u8>,
}

impl Broker {
    pub async fn open() -> anyhow::Result<Self> {
        let connection = amqp::connect(&amqp_url(), "bench-paths").await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let exchange = unique_exchange();
        let queue = format!("bench.paths.{}", Uuid::new_v4().simple());
        amqp::declare_exchange(&channel, &exchange).await?;
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        // A quorum queue, as every consumer of ours declares (consumer kit).
        let quorum = amqp::headers([("x-queue-type", amqp::string_value("quorum"))]);
        channel
            .queue_declare(queue.as_str().into(), durable, quorum)
            .await?;
        channel
            .queue_bind(
                queue.as_str().into(),
                exchange.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(Self {
            channel,
            exchange,
            queue,
            // About a TicketCreated event's size.
            body: vec![7u8; 300],
        })
    }

    /// One persistent publish, waiting for its confirm.
    pub async fn publish(&self) -> anyhow::Result<()> {
        let confirm = self
            .channel
            .basic_publish(
                self.exchange.as_str().into(),
                "ticket.created".into(),
                BasicPublishOptions::default(),
                &self.body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await?
            .await?;
        anyhow::ensure!(confirm.is_ack(), "the broker refused a publish");
        Ok(())
    }

    pub fn remove(self) {
        delete_broker_objects(Some(self.exchange), vec![self.queue]);
    }
}
