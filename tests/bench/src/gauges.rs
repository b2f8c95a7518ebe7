//! The system's queues, read from outside: the ticket service's unsent
//! outbox rows, the assignment service's waiting tickets, and the two
//! consumers' broker queues. `bench capacity` samples them to find what
//! saturates; `bench paths` waits for them to drain between rows.

use std::time::{Duration, Instant};

use helpdesk_e2e::Stack;
use lapin::options::QueueDeclareOptions;
use sqlx::PgPool;

/// The queues' depths at one moment.
#[derive(Clone, Copy, Default, Debug)]
pub struct Depths {
    pub outbox: i64,
    pub waiting: i64,
    pub assignment_queue: u32,
    pub notification_queue: u32,
}

impl Depths {
    pub fn max(self, o: Self) -> Self {
        Self {
            outbox: self.outbox.max(o.outbox),
            waiting: self.waiting.max(o.waiting),
            assignment_queue: self.assignment_queue.max(o.assignment_queue),
            notification_queue: self.notification_queue.max(o.notification_queue),
        }
    }

    /// Nothing left for any service to do.
    pub fn drained(self) -> bool {
        self.named().iter().all(|(_, n)| *n == 0)
    }

    /// The queues in a fixed order, named.
    pub fn named(self) -> [(&'static str, i64); 4] {
        [
            ("outbox unsent", self.outbox),
            ("assignment waiting", self.waiting),
            ("assignment queue", i64::from(self.assignment_queue)),
            ("notification queue", i64::from(self.notification_queue)),
        ]
    }
}

/// Reads the queues' depths.
pub struct Gauges {
    ticket: PgPool,
    assignment: PgPool,
    channel: lapin::Channel,
    queues: (String, String),
}

impl Gauges {
    pub async fn open(stack: &Stack) -> anyhow::Result<Self> {
        let connection =
            helpdesk_events::amqp::connect(&helpdesk_testkit::amqp_url(), "bench-gauges").await?;
        Ok(Self {
            ticket: helpdesk_kit::db::connect(&stack.ticket_database_url, 2).await?,
            assignment: helpdesk_kit::db::connect(&stack.assignment_database_url, 2).await?,
            channel: connection.create_channel().await?,
            queues: (
                stack.assignment_queue.clone(),
                stack.notification_queue.clone(),
            ),
        })
    }

    pub async fn read(&self) -> anyhow::Result<Depths> {
        let outbox = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            .fetch_one(&self.ticket)
            .await?;
        let waiting =
            sqlx::query_scalar("SELECT count(*) FROM assignments WHERE agent_id IS NULL AND open")
                .fetch_one(&self.assignment)
                .await?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let mut depth = Vec::new();
        for queue in [&self.queues.0, &self.queues.1] {
            let q = self
                .channel
                .queue_declare(queue.as_str().into(), passive, Default::default())
                .await?;
            depth.push(q.message_count());
        }
        Ok(Depths {
            outbox,
            waiting,
            assignment_queue: depth[0],
            notification_queue: depth[1],
        })
    }

    /// Waits until every queue is empty or `limit` passed; how long it took,
    /// and the depths when it stopped.
    pub async fn drain(&self, limit: Duration) -> anyhow::Result<(Duration, Depths)> {
        let started = Instant::now();
        loop {
            let depths = self.read().await?;
            if depths.drained() || started.elapsed() >= limit {
                return Ok((started.elapsed(), depths));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
