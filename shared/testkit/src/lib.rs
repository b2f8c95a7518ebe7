//! Test support shared by every service's tests: a fresh, migrated database
//! per test (dropped afterwards) and tokens for any role.

#![warn(missing_docs, unreachable_pub)]

pub mod python_server;
pub mod s3;
pub mod smtp;

use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::{Connection, Executor, PgConnection, PgPool, migrate::Migrator};
use uuid::Uuid;

use helpdesk_kit::auth::{AuthConfig, Minter, Role};

/// The server tests create their databases on (`TEST_DATABASE_URL`).
pub fn admin_url() -> String {
    helpdesk_kit::config::string_or(
        "TEST_DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/postgres",
    )
}

/// A database that exists for one test.
pub struct TestDb {
    /// The database name (`test_<uuid>`).
    pub name: String,
    /// Its connection URL.
    pub url: String,
    /// A pool on it, migrated.
    pub pool: PgPool,
    dropped: AtomicBool,
}

impl TestDb {
    /// Creates `test_<uuid>` and applies the kit's and `service`'s migrations.
    pub async fn create(service: &Migrator) -> anyhow::Result<Self> {
        let admin = admin_url();
        let name = format!("test_{}", Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin).await?;
        conn.execute(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
            .await?;
        conn.close().await?;
        let url = with_database(&admin, &name);
        let pool = helpdesk_kit::db::connect(&url, 8).await?;
        helpdesk_kit::db::migrate(&pool, service).await?;
        Ok(Self {
            name,
            url,
            pool,
            dropped: AtomicBool::new(false),
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.dropped.swap(true, Ordering::SeqCst) {
            return;
        }
        let name = self.name.clone();
        let admin = admin_url();
        // Drop runs outside any runtime guarantee: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&admin).await {
                    let _ = conn
                        .execute(sqlx::AssertSqlSafe(format!(
                            r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
                        )))
                        .await;
                }
            });
        })
        .join();
    }
}

/// Replaces the database name in a `postgres://` URL.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Mints tokens with the dev configuration every test server uses.
pub fn minter() -> Minter {
    Minter::new(&AuthConfig::dev())
}

/// A `Bearer` value for `sub` with `role`.
pub fn bearer(sub: &str, role: Role) -> tonic::metadata::MetadataValue<tonic::metadata::Ascii> {
    minter().bearer(sub, role)
}

/// A TCP proxy a test can cut: stands between a service and a real server
/// (RabbitMQ, PostgreSQL) so one test can take "the broker" down and bring
/// it back without touching the shared server other tests use.
pub struct TcpProxy {
    /// Where clients connect instead of the target.
    pub addr: std::net::SocketAddr,
    up: tokio::sync::watch::Sender<bool>,
    /// Connections being forwarded now.
    live: std::sync::Arc<tokio::sync::watch::Sender<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Starts forwarding a free local port to `target`.
    pub async fn start(target: std::net::SocketAddr) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (up, up_rx) = tokio::sync::watch::channel(true);
        let live = std::sync::Arc::new(tokio::sync::watch::Sender::new(0usize));
        let counted = live.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !*up_rx.borrow() {
                    // Down: the connection is refused by closing it at once.
                    drop(client);
                    continue;
                }
                let mut up_rx = up_rx.clone();
                let live = counted.clone();
                live.send_modify(|n| *n += 1);
                tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(target).await {
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = up_rx.wait_for(|up| !*up) => {}
                        }
                    }
                    // Both sockets closed before the connection stops counting.
                    drop(client);
                    live.send_modify(|n| *n -= 1);
                });
            }
        });
        Ok(Self {
            addr,
            up,
            live,
            task,
        })
    }

    /// Cuts every open connection and refuses new ones; returns once every
    /// cut connection is closed on both sides, so what the test does next
    /// cannot still pass through one of them.
    pub async fn down(&self) {
        let _ = self.up.send(false);
        let mut live = self.live.subscribe();
        let _ = live.wait_for(|n| *n == 0).await;
    }

    /// Accepts connections again.
    pub fn up(&self) {
        let _ = self.up.send(true);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
        let _ = self.up.send(false);
    }
}

/// The broker tests use (`TEST_AMQP_URL`).
pub fn amqp_url() -> String {
    helpdesk_kit::config::string_or("TEST_AMQP_URL", helpdesk_events::amqp::DEFAULT_URL)
}

/// A fresh exchange name, so tests never see each other's events.
pub fn unique_exchange() -> String {
    format!("test.events.{}", Uuid::new_v4().simple())
}

/// Deletes an exchange and queues a test declared (best effort).
pub fn delete_broker_objects(exchange: Option<String>, queues: Vec<String>) {
    let url = amqp_url();
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let Ok(connection) = helpdesk_events::amqp::connect(&url, "test-cleanup").await else {
                return;
            };
            let Ok(channel) = connection.create_channel().await else {
                return;
            };
            for queue in queues {
                let _ = channel
                    .queue_delete(
                        queue.as_str().into(),
                        lapin::options::QueueDeleteOptions::default(),
                    )
                    .await;
            }
            if let Some(exchange) = exchange {
                let _ = channel
                    .exchange_delete(
                        exchange.as_str().into(),
                        lapin::options::ExchangeDeleteOptions::default(),
                    )
                    .await;
            }
            let _ = connection.close(200, "done".into()).await;
        });
    })
    .join();
}

/// Reads every event published to an exchange, through a private queue.
pub struct EventTap {
    _connection: lapin::Connection,
    consumer: lapin::Consumer,
}

/// One event as it arrived on the broker.
#[derive(Debug, Clone)]
pub struct Received {
    /// The routing key it was published with.
    pub routing_key: String,
    /// The AMQP `type` property.
    pub message_type: String,
    /// The AMQP `message_id` property.
    pub message_id: String,
    /// The AMQP `content_type` property.
    pub content_type: String,
    /// Whether it was published persistent (delivery mode 2).
    pub persistent: bool,
    /// The AMQP headers (trace context, retry counts).
    pub headers: Option<lapin::types::FieldTable>,
    /// The encoded protobuf.
    pub payload: Vec<u8>,
}

impl Received {
    /// Decodes as `E`, checking the `type` property names `E`.
    pub fn decode<E: helpdesk_proto::Event>(&self) -> E {
        assert_eq!(self.message_type, E::full_name(), "unexpected event type");
        E::decode(self.payload.as_slice()).expect("decodable event")
    }
}

impl EventTap {
    /// Binds a private, auto-deleted queue to `exchange` for `pattern`.
    pub async fn start(exchange: &str, pattern: &str) -> anyhow::Result<Self> {
        use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
        let connection = helpdesk_events::amqp::connect(&amqp_url(), "test-tap").await?;
        let channel = connection.create_channel().await?;
        helpdesk_events::amqp::declare_exchange(&channel, exchange).await?;
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await?;
        channel
            .queue_bind(
                queue.name().clone(),
                exchange.into(),
                pattern.into(),
                QueueBindOptions::default(),
                lapin::types::FieldTable::default(),
            )
            .await?;
        let consumer = channel
            .basic_consume(
                queue.name().clone(),
                "tap".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                lapin::types::FieldTable::default(),
            )
            .await?;
        Ok(Self {
            _connection: connection,
            consumer,
        })
    }

    /// The next event, or `None` after `within`.
    pub async fn next(&mut self, within: std::time::Duration) -> Option<Received> {
        use futures_util::StreamExt;
        let delivery = tokio::time::timeout(within, self.consumer.next())
            .await
            .ok()??
            .ok()?;
        let p = &delivery.properties;
        Some(Received {
            routing_key: delivery.routing_key.as_str().to_owned(),
            message_type: p
                .kind()
                .as_ref()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            message_id: p
                .message_id()
                .as_ref()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            content_type: p
                .content_type()
                .as_ref()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            persistent: *p.delivery_mode() == Some(2),
            headers: p.headers().clone(),
            payload: delivery.data.clone(),
        })
    }

    /// The next `n` events (panics if they do not arrive within 10 s).
    pub async fn take(&mut self, n: usize) -> Vec<Received> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match self.next(std::time::Duration::from_secs(10)).await {
                Some(r) => out.push(r),
                None => panic!(
                    "expected {n} events, got {}: {:?}",
                    out.len(),
                    out.iter().map(|r| &r.routing_key).collect::<Vec<_>>()
                ),
            }
        }
        out
    }

    /// Asserts nothing more arrives within `within`.
    pub async fn assert_quiet(&mut self, within: std::time::Duration) {
        if let Some(extra) = self.next(within).await {
            panic!("unexpected event {}", extra.routing_key);
        }
    }
}

/// A client interceptor sending a fixed `authorization` value (or none):
/// tests act as any caller, or as a broken one.
#[derive(Clone)]
pub struct Bearer(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl Bearer {
    /// A valid dev token for `sub` with `role`.
    pub fn token(sub: &str, role: Role) -> Self {
        Self(Some(bearer(sub, role)))
    }

    /// Exactly this header value, or no header at all.
    pub fn raw(value: Option<&str>) -> Self {
        Self(value.map(|v| v.parse().expect("ASCII header value")))
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// Asserts the code of a failed call and returns the status.
#[track_caller]
pub fn expect_code<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, tonic::Status>,
    code: tonic::Code,
) -> tonic::Status {
    match result {
        Ok(response) => panic!("expected {code:?}, got OK: {:?}", response.into_inner()),
        Err(status) => {
            assert_eq!(status.code(), code, "unexpected status: {status:?}");
            status
        }
    }
}

/// The fields named by a status's `google.rpc.BadRequest` details.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// What the health service at `addr` reports for status name `name`
/// (`""` readiness, `liveness`, `dependency.postgres`, a service name).
pub async fn health_status(
    addr: impl std::fmt::Display,
    name: &str,
) -> Result<tonic_health::pb::health_check_response::ServingStatus, tonic::Status> {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let channel = tonic::transport::Endpoint::from_shared(endpoint(addr))
        .map_err(|e| tonic::Status::internal(e.to_string()))?
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: name.to_owned(),
        })
        .await?;
    Ok(response.into_inner().status())
}

/// Polls `condition` every 20 ms until it holds; panics naming `what` after
/// `within`. For effects that arrive asynchronously (an event consumed, a
/// row written): a test waits on the condition, never for a fixed time.
pub async fn wait_until<F, Fut>(what: &str, within: std::time::Duration, condition: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if condition().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Polls [`health_status`] until it reports `want`, for at most `within`.
pub async fn wait_for_health(
    addr: impl std::fmt::Display,
    name: &str,
    want: tonic_health::pb::health_check_response::ServingStatus,
    within: std::time::Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let got = health_status(&addr, name).await;
        if matches!(&got, Ok(status) if *status == want) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("health {name:?} is {got:?}, still not {want:?} after {within:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The services the server at `addr` lists over reflection (v1), sorted.
pub async fn reflected_services(addr: impl std::fmt::Display) -> anyhow::Result<Vec<String>> {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let channel = tonic::transport::Endpoint::from_shared(endpoint(addr))?
        .connect()
        .await?;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::once(request))
        .await?
        .into_inner();
    let response = responses
        .message()
        .await?
        .ok_or_else(|| anyhow::anyhow!("no reflection response"))?;
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        anyhow::bail!("unexpected reflection response: {response:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    Ok(names)
}

/// `http://host:port` for a socket address or a URL given either way.
fn endpoint(addr: impl std::fmt::Display) -> String {
    let addr = addr.to_string();
    if addr.starts_with("http://") || addr.starts_with("https://") {
        addr
    } else {
        format!("http://{addr}")
    }
}
