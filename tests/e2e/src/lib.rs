//! Runs the real binaries (`platform-standin`, `ticket`, `assignment`,
//! `notification`, `scheduler`) as child processes with their own databases, a private
//! exchange and queues, and free ports, exactly as an operator would run
//! them, with a real SMTP server (the aiosmtpd sink) and the stand-in's push
//! gateway; tests talk to them over gRPC and read the mail the sink got. The binaries come from the same `target/` directory as the
//! test (a workspace test run builds them; otherwise `cargo build --bins`).
//! `TEST_LOG=1` shows their logs; `E2E_RUST_LOG` sets their filter.

use std::{
    collections::HashMap,
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use helpdesk_testkit::{
    admin_url, amqp_url, delete_broker_objects, smtp::SmtpSink, unique_exchange, with_database,
};
use sqlx::{Connection, Executor, PgConnection};
use tonic_health::pb::health_check_response::ServingStatus;
use uuid::Uuid;

/// Where cargo put this test's sibling binaries.
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// A free local port (bound, then released for the child to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One running binary.
pub struct Process {
    name: &'static str,
    env: HashMap<String, String>,
    child: Option<Child>,
    pub port: u16,
}

impl Process {
    fn spawn(name: &'static str, env: HashMap<String, String>, port: u16) -> Self {
        let mut process = Self {
            name,
            env,
            child: None,
            port,
        };
        process.start();
        process
    }

    /// Starts (or restarts) the binary with its environment.
    pub fn start(&mut self) {
        // Services log to stdout; shown with TEST_LOG=1.
        let output = || {
            if std::env::var_os("TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            }
        };
        let child = Command::new(binary(self.name))
            .envs(&self.env)
            .env("LOG_FORMAT", "text")
            .stdout(output())
            .stderr(output())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.name));
        self.child = Some(child);
    }

    pub fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGTERM, then the exit status (bounded wait).
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "{} ignored SIGTERM", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: the process dies mid-whatever.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until the health service reports SERVING (bounded).
    pub async fn wait_serving(&self) {
        helpdesk_testkit::wait_for_health(
            self.addr(),
            "",
            ServingStatus::Serving,
            Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|e| panic!("{} never became healthy: {e:#}", self.name));
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The stand-in, the ticket, assignment and notification services, and the
/// SMTP sink, wired.
pub struct Stack {
    pub standin: Process,
    pub ticket: Process,
    pub assignment: Process,
    pub notification: Process,
    pub scheduler: Process,
    /// Every email the notification service sent.
    pub mail: SmtpSink,
    databases: Vec<String>,
    exchange: String,
    queues: Vec<String>,
    /// The ticket service's attachment directory (removed at the end).
    attachments: std::path::PathBuf,
}

async fn create_database() -> (String, String) {
    let name = format!("e2e_{}", Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&admin_url()).await.expect("postgres");
    conn.execute(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
        .await
        .expect("create database");
    (with_database(&admin_url(), &name), name)
}

fn common_env(port: u16) -> HashMap<String, String> {
    HashMap::from([
        ("LISTEN_ADDR".into(), format!("127.0.0.1:{port}")),
        ("HELPDESK_DEV".into(), "true".into()),
        // Its own metrics port: tests run side by side, and beside a local stack.
        ("METRICS_ADDR".into(), format!("127.0.0.1:{}", free_port())),
        (
            "RUST_LOG".into(),
            std::env::var("E2E_RUST_LOG").unwrap_or_else(|_| "info".into()),
        ),
    ])
}

/// Waits until `queue` has a consumer (bounded): then its bindings exist.
async fn wait_for_queue(queue: &str) {
    let connection = helpdesk_events::amqp::connect(&amqp_url(), "e2e")
        .await
        .expect("broker");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let channel = connection.create_channel().await.expect("channel");
        let passive = lapin::options::QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        if channel
            .queue_declare(queue.into(), passive, Default::default())
            .await
            .is_ok()
        {
            let _ = connection.close(200, "done".into()).await;
            return;
        }
        assert!(Instant::now() < deadline, "queue {queue} never declared");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Stack {
    pub async fn start() -> Self {
        let exchange = unique_exchange();
        let queue = format!("e2e.assignment.{}", Uuid::new_v4().simple());
        let notification_queue = format!("e2e.notification.{}", Uuid::new_v4().simple());
        let (ticket_db, ticket_name) = create_database().await;
        let (assignment_db, assignment_name) = create_database().await;
        let (notification_db, notification_name) = create_database().await;
        let (scheduler_db, scheduler_name) = create_database().await;

        let standin_port = free_port();
        let push_port = free_port();
        let mut env = common_env(standin_port);
        env.insert("PUSH_LISTEN_ADDR".into(), format!("127.0.0.1:{push_port}"));
        let standin = Process::spawn("platform-standin", env, standin_port);
        standin.wait_serving().await;

        let ticket_port = free_port();
        let mut env = common_env(ticket_port);
        let attachments = std::env::temp_dir().join(format!("e2e-attachments-{}", Uuid::new_v4()));
        env.extend([
            (
                "ATTACHMENTS_STORE".into(),
                attachments.display().to_string(),
            ),
            ("DATABASE_URL".into(), ticket_db),
            ("ACCOUNTS_ADDR".into(), standin.addr()),
            ("RIDES_ADDR".into(), standin.addr()),
            ("AMQP_URL".into(), amqp_url()),
            ("EVENTS_EXCHANGE".into(), exchange.clone()),
        ]);
        let ticket = Process::spawn("ticket", env, ticket_port);
        ticket.wait_serving().await;

        let assignment_port = free_port();
        let mut env = common_env(assignment_port);
        env.extend([
            ("DATABASE_URL".into(), assignment_db),
            ("ACCOUNTS_ADDR".into(), standin.addr()),
            ("TICKET_ADDR".into(), ticket.addr()),
            ("AMQP_URL".into(), amqp_url()),
            ("EVENTS_EXCHANGE".into(), exchange.clone()),
            ("CONSUMER_QUEUE".into(), queue.clone()),
            ("DRAIN_SECS".into(), "1".into()),
        ]);
        let assignment = Process::spawn("assignment", env, assignment_port);
        assignment.wait_serving().await;
        let mail = SmtpSink::start();
        let notification_port = free_port();
        let mut env = common_env(notification_port);
        env.extend([
            ("DATABASE_URL".into(), notification_db),
            ("ACCOUNTS_ADDR".into(), standin.addr()),
            ("AMQP_URL".into(), amqp_url()),
            ("EVENTS_EXCHANGE".into(), exchange.clone()),
            ("CONSUMER_QUEUE".into(), notification_queue.clone()),
            ("SMTP_HOST".into(), "127.0.0.1".into()),
            ("SMTP_PORT".into(), mail.port.to_string()),
            (
                "PUSH_GATEWAY_URL".into(),
                format!("http://127.0.0.1:{push_port}/v1/push"),
            ),
            ("SENDER_POLL_MS".into(), "200".into()),
        ]);
        let notification = Process::spawn("notification", env, notification_port);
        notification.wait_serving().await;

        let scheduler_port = free_port();
        let mut env = common_env(scheduler_port);
        env.extend([
            ("DATABASE_URL".into(), scheduler_db),
            ("TICKET_ADDR".into(), ticket.addr()),
            ("TICK_MS".into(), "200".into()),
        ]);
        let scheduler = Process::spawn("scheduler", env, scheduler_port);
        scheduler.wait_serving().await;
        // Serving gRPC comes before the consumers have declared their queues
        // and bindings; events published before that would not reach them.
        wait_for_queue(&queue).await;
        wait_for_queue(&notification_queue).await;

        Self {
            standin,
            ticket,
            assignment,
            notification,
            scheduler,
            mail,
            databases: vec![
                ticket_name,
                assignment_name,
                notification_name,
                scheduler_name,
            ],
            exchange,
            queues: vec![queue, notification_queue],
            attachments,
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.scheduler.kill();
        self.notification.kill();
        self.assignment.kill();
        self.ticket.kill();
        self.standin.kill();
        let _ = std::fs::remove_dir_all(&self.attachments);
        let mut queues = Vec::new();
        for queue in &self.queues {
            queues.extend([queue.clone(), format!("{queue}.dead")]);
            queues.extend((1..10).map(|n| format!("{queue}.retry.{n}")));
        }
        delete_broker_objects(Some(self.exchange.clone()), queues);
        let databases = std::mem::take(&mut self.databases);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&admin_url()).await {
                    for name in databases {
                        let _ = conn
                            .execute(sqlx::AssertSqlSafe(format!(
                                r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
                            )))
                            .await;
                    }
                }
            });
        })
        .join();
    }
}
